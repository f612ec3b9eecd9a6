// BlockPool: all K/V memory of a model — self-attention caches and source K/V — as fixed-size
// blocks carved once from one budget. Blocks are reference-counted so beams share them;
// admission reserves blocks up front so a running segment never finds the pool empty.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kvmt {

using BlockId = int32_t;

struct BlockPoolStats {
  int64_t block_bytes = 0;
  int64_t total_blocks = 0;
  int64_t used_blocks = 0;  // Referenced by a cache, a source or the source cache.
  int64_t peak_used_blocks = 0;
  int64_t reserved_blocks = 0;  // Promised to admitted segments.
  int64_t bytes_in_use() const { return used_blocks * block_bytes; }
  int64_t peak_bytes() const { return peak_used_blocks * block_bytes; }
};

class BlockPool {
 public:
  // `block_floats` floats per block, as many blocks as fit in `budget_bytes` (at least one).
  BlockPool(int64_t block_floats, int64_t budget_bytes);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // Admission: promises `blocks` to a caller, or returns false (and promises nothing) when the
  // promises would exceed the pool. Reserve waits up to `timeout` for others to unreserve
  // (absl::InfiniteDuration(): as long as it takes).
  bool TryReserve(int64_t blocks);
  bool Reserve(int64_t blocks, absl::Duration timeout);
  void Unreserve(int64_t blocks);

  // A block with one reference. When none is free, asks the evictor (the source cache) to let
  // go of idle blocks first; ResourceExhausted when the pool is still empty.
  absl::StatusOr<BlockId> Allocate();
  void AddRef(BlockId block);
  void Release(BlockId block);
  int RefCount(BlockId block) const;

  float* data(BlockId block) {
    return storage_.get() + static_cast<int64_t>(block) * block_floats_;
  }
  const float* data(BlockId block) const {
    return storage_.get() + static_cast<int64_t>(block) * block_floats_;
  }
  int64_t block_floats() const { return block_floats_; }
  int64_t total_blocks() const { return total_blocks_; }

  // Called without the pool's lock held; returns false when it has nothing left to free.
  void SetEvictor(std::function<bool()> evict_one);
  BlockPoolStats stats() const;

 private:
  const int64_t block_floats_;
  const int64_t total_blocks_;
  std::unique_ptr<float[], void (*)(float*)> storage_;
  mutable std::mutex mutex_;
  std::condition_variable unreserved_;
  std::vector<int32_t> refcounts_;
  std::vector<BlockId> free_;
  int64_t reserved_ = 0;
  int64_t peak_used_ = 0;
  std::function<bool()> evictor_;
};

}  // namespace kvmt
