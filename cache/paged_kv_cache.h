// PagedKVCache: a SelfAttentionCache whose sequences hold tables of blocks from a BlockPool.
// Reordering beams shares the parent's blocks (reference counts) instead of copying them; only
// a shared, partially filled last block is copied, when a child first writes to it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cache/block_pool.h"
#include "cache/kv_block_layout.h"
#include "cache/self_attention_cache.h"

namespace kvmt {

// Bytes moved by beam reordering, for the benchmark's sharing-vs-gather comparison.
struct ReorderTraffic {
  int64_t bytes_copied = 0;       // Copy-on-write copies actually made.
  int64_t bytes_full_gather = 0;  // What gathering every child's rows would have copied.
};

class PagedKVCache : public SelfAttentionCache {
 public:
  PagedKVCache(std::shared_ptr<BlockPool> pool, KVBlockLayout layout);
  ~PagedKVCache() override;  // Every block goes back to the pool.

  int block_size() const override { return layout_.block_size; }
  int num_sequences() const override { return static_cast<int>(sequences_.size()); }
  int length(int seq) const override { return sequences_[seq].length; }

  int AddSequence() override;
  absl::StatusOr<int> Append(int seq) override;
  absl::Status Reorder(absl::Span<const int32_t> parents) override;

  float* KeyRow(int seq, int layer, int pos) override;
  float* ValueRow(int seq, int layer, int pos) override;
  const float* KeyBlock(int seq, int layer, int block) const override;
  const float* ValueBlock(int seq, int layer, int block) const override;

  const ReorderTraffic& traffic() const { return traffic_; }
  // Sequence tables held, in use or spare: at most twice the most sequences held at once.
  int64_t table_slots() const { return sequences_.size() + spare_.size(); }

 private:
  struct Sequence {
    std::vector<BlockId> blocks;
    int length = 0;
  };

  void ReleaseAll(Sequence& sequence);

  std::shared_ptr<BlockPool> pool_;
  const KVBlockLayout layout_;
  std::vector<Sequence> sequences_;
  std::vector<Sequence> spare_;  // Reused by Reorder so steady state does not allocate.
  ReorderTraffic traffic_;
};

}  // namespace kvmt
