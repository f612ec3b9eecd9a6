#include "cache/block_pool.h"

#include <cstdlib>
#include <new>

#include "absl/strings/str_cat.h"

namespace kvmt {
namespace {

float* AllocateStorage(int64_t floats) {
  const size_t bytes = ((static_cast<size_t>(floats) * sizeof(float) + 63) / 64) * 64;
  // Pages are only touched when a block is first written, so RSS follows actual use.
  void* ptr = std::aligned_alloc(64, bytes);
  if (ptr == nullptr) throw std::bad_alloc();
  return static_cast<float*>(ptr);
}

// Longer waits are waits without a deadline.
constexpr absl::Duration kLongestTimedWait = absl::Hours(24 * 365 * 100);

}  // namespace

BlockPool::BlockPool(int64_t block_floats, int64_t budget_bytes)
    : block_floats_(block_floats),
      total_blocks_(std::max<int64_t>(
          1, budget_bytes / (block_floats * static_cast<int64_t>(sizeof(float))))),
      storage_(AllocateStorage(block_floats_ * total_blocks_), [](float* p) { std::free(p); }),
      refcounts_(total_blocks_, 0) {
  free_.reserve(total_blocks_);
  // Lowest ids on top of the stack: reuse stays in the same pages.
  for (int64_t b = total_blocks_ - 1; b >= 0; --b) free_.push_back(static_cast<BlockId>(b));
}

BlockPool::~BlockPool() = default;

bool BlockPool::TryReserve(int64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reserved_ + blocks > total_blocks_) return false;
  reserved_ += blocks;
  return true;
}

bool BlockPool::Reserve(int64_t blocks, absl::Duration timeout) {
  if (blocks > total_blocks_) return false;
  std::unique_lock<std::mutex> lock(mutex_);
  const auto fits_now = [&] { return reserved_ + blocks <= total_blocks_; };
  // wait_for adds the timeout to steady_clock::now(): an infinite or century-long timeout would
  // overflow into a deadline in the past and give up at once.
  if (timeout >= kLongestTimedWait) {
    unreserved_.wait(lock, fits_now);
  } else if (!unreserved_.wait_for(lock, absl::ToChronoNanoseconds(timeout), fits_now)) {
    return false;
  }
  reserved_ += blocks;
  return true;
}

void BlockPool::Unreserve(int64_t blocks) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_ -= blocks;
  }
  unreserved_.notify_all();
}

absl::StatusOr<BlockId> BlockPool::Allocate() {
  while (true) {
    std::function<bool()> evictor;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        const BlockId block = free_.back();
        free_.pop_back();
        refcounts_[block] = 1;
        peak_used_ = std::max(peak_used_, total_blocks_ - static_cast<int64_t>(free_.size()));
        return block;
      }
      evictor = evictor_;
    }
    if (!evictor || !evictor()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("KV cache pool exhausted: all ", total_blocks_, " blocks of ",
                       block_floats_ * sizeof(float), " bytes are in use"));
    }
  }
}

void BlockPool::AddRef(BlockId block) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++refcounts_[block];
}

void BlockPool::Release(BlockId block) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--refcounts_[block] == 0) free_.push_back(block);
}

int BlockPool::RefCount(BlockId block) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return refcounts_[block];
}

void BlockPool::SetEvictor(std::function<bool()> evict_one) {
  std::lock_guard<std::mutex> lock(mutex_);
  evictor_ = std::move(evict_one);
}

BlockPoolStats BlockPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  BlockPoolStats s;
  s.block_bytes = block_floats_ * static_cast<int64_t>(sizeof(float));
  s.total_blocks = total_blocks_;
  s.used_blocks = total_blocks_ - static_cast<int64_t>(free_.size());
  s.peak_used_blocks = peak_used_;
  s.reserved_blocks = reserved_;
  return s;
}

}  // namespace kvmt
