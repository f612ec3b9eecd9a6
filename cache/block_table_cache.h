// BlockTableCache: a SelfAttentionCache whose sequences own tables of fixed-size blocks taken
// from a free list. Blocks are allocated on first use and recycled afterwards, so steady-state
// decoding allocates nothing; reordering copies each child's used rows from its parent (a full
// gather — the baseline that block sharing improves on).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cache/self_attention_cache.h"

namespace kvmt {

class BlockTableCache : public SelfAttentionCache {
 public:
  BlockTableCache(int num_layers, int d_model, int block_size = 16);
  ~BlockTableCache() override;

  int block_size() const override { return block_size_; }
  int num_sequences() const override { return static_cast<int>(sequences_.size()); }
  int length(int seq) const override { return sequences_[seq].length; }

  int AddSequence() override;
  absl::StatusOr<int> Append(int seq) override;
  absl::Status Reorder(absl::Span<const int32_t> parents) override;

  float* KeyRow(int seq, int layer, int pos) override;
  float* ValueRow(int seq, int layer, int pos) override;
  const float* KeyBlock(int seq, int layer, int block) const override;
  const float* ValueBlock(int seq, int layer, int block) const override;

  int64_t bytes_reserved() const override;
  // Bytes copied by Reorder since construction.
  int64_t bytes_copied() const { return bytes_copied_; }

 private:
  struct Sequence {
    std::vector<float*> blocks;
    int length = 0;
  };

  float* TakeBlock();
  void ReleaseBlocks(Sequence& sequence);
  int64_t RowOffset(int layer, int kv, int row) const;

  const int num_layers_;
  const int d_model_;
  const int block_size_;
  const int64_t block_floats_;
  std::vector<Sequence> sequences_;
  std::vector<std::unique_ptr<float[]>> storage_;
  std::vector<float*> free_blocks_;
  int64_t bytes_copied_ = 0;
};

}  // namespace kvmt
