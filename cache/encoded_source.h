// EncodedSource: what the encoder computes once per source segment — its output and, for every
// decoder layer, the cross-attention K and V, stored in blocks of the model's BlockPool. Immutable
// and shared (by all beams of the segment, and by the source cache across requests); its blocks
// go back to the pool when the last owner lets go.
#pragma once

#include <memory>
#include <vector>

#include "cache/block_pool.h"
#include "cache/kv_block_layout.h"
#include "core/tensor.h"

namespace kvmt {

class EncodedSource {
 public:
  EncodedSource(std::shared_ptr<BlockPool> pool, KVBlockLayout layout, int length,
                std::vector<BlockId> blocks, Tensor output);
  ~EncodedSource();
  EncodedSource(const EncodedSource&) = delete;
  EncodedSource& operator=(const EncodedSource&) = delete;

  int length() const { return length_; }       // Source tokens, special tokens included.
  const Tensor& output() const { return output_; }  // [length, d_model]: encoder hidden states.
  const KVBlockLayout& layout() const { return layout_; }
  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  // Rows of layer `layer`'s K or V for positions [block * block_size, ...), d_model floats each.
  const float* KeyBlock(int layer, int block) const {
    return pool_->data(blocks_[block]) + layout_.offset(layer, 0, 0);
  }
  const float* ValueBlock(int layer, int block) const {
    return pool_->data(blocks_[block]) + layout_.offset(layer, 1, 0);
  }
  // Bytes of pool blocks holding this source's K/V.
  int64_t kv_bytes() const {
    return static_cast<int64_t>(blocks_.size()) * layout_.block_floats() *
           static_cast<int64_t>(sizeof(float));
  }

 private:
  std::shared_ptr<BlockPool> pool_;
  const KVBlockLayout layout_;
  const int length_;
  std::vector<BlockId> blocks_;
  Tensor output_;
};

}  // namespace kvmt
