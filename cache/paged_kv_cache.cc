#include "cache/paged_kv_cache.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvmt {

PagedKVCache::PagedKVCache(std::shared_ptr<BlockPool> pool, KVBlockLayout layout)
    : pool_(std::move(pool)), layout_(layout) {}

PagedKVCache::~PagedKVCache() {
  for (Sequence& sequence : sequences_) ReleaseAll(sequence);
}

void PagedKVCache::ReleaseAll(Sequence& sequence) {
  for (BlockId block : sequence.blocks) pool_->Release(block);
  sequence.blocks.clear();
  sequence.length = 0;
}

namespace {

// Block tables are sized for 1024 positions up front so that appending and reordering do not
// reallocate them while decoding.
constexpr size_t kReservedBlocksPerSequence = 64;

}  // namespace

int PagedKVCache::AddSequence() {
  // A spare table is reused: otherwise every sequence that ends in a Reorder would leave one
  // more spare behind, and a long-running scheduler's cache would grow without bound.
  if (!spare_.empty()) {
    sequences_.push_back(std::move(spare_.back()));
    spare_.pop_back();
  } else {
    sequences_.emplace_back();
    sequences_.back().blocks.reserve(kReservedBlocksPerSequence);
  }
  return static_cast<int>(sequences_.size()) - 1;
}

absl::StatusOr<int> PagedKVCache::Append(int seq) {
  Sequence& sequence = sequences_[seq];
  const int row = sequence.length % layout_.block_size;
  if (row == 0) {
    absl::StatusOr<BlockId> block = pool_->Allocate();
    if (!block.ok()) return block.status();
    sequence.blocks.push_back(*block);
  } else if (pool_->RefCount(sequence.blocks.back()) > 1) {
    // Copy-on-write: the last block is shared with a sibling beam; copy its used rows.
    absl::StatusOr<BlockId> copy = pool_->Allocate();
    if (!copy.ok()) return copy.status();
    const BlockId shared = sequence.blocks.back();
    for (int layer = 0; layer < layout_.num_layers; ++layer) {
      for (int kv = 0; kv < 2; ++kv) {
        const int64_t offset = layout_.offset(layer, kv, 0);
        std::memcpy(pool_->data(*copy) + offset, pool_->data(shared) + offset,
                    static_cast<size_t>(row) * layout_.d_model * sizeof(float));
      }
    }
    traffic_.bytes_copied +=
        static_cast<int64_t>(row) * layout_.d_model * 2 * layout_.num_layers * sizeof(float);
    pool_->Release(shared);
    sequence.blocks.back() = *copy;
  }
  return sequence.length++;
}

absl::Status PagedKVCache::Reorder(absl::Span<const int32_t> parents) {
  for (int32_t parent : parents) {
    if (parent < 0 || parent >= num_sequences()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cache reorder: parent ", parent, " of ", num_sequences(), " sequences"));
    }
  }
  if (spare_.size() < parents.size()) {
    spare_.resize(parents.size());
    for (Sequence& sequence : spare_) sequence.blocks.reserve(kReservedBlocksPerSequence);
  }
  for (size_t i = 0; i < parents.size(); ++i) {
    const Sequence& parent = sequences_[parents[i]];
    Sequence& child = spare_[i];
    child.blocks.assign(parent.blocks.begin(), parent.blocks.end());
    child.length = parent.length;
    for (BlockId block : child.blocks) pool_->AddRef(block);
    traffic_.bytes_full_gather += static_cast<int64_t>(parent.length) * layout_.d_model * 2 *
                                  layout_.num_layers * sizeof(float);
  }
  for (Sequence& sequence : sequences_) ReleaseAll(sequence);
  // Keep the surplus slots (and their reserved tables) in spare_ for the next reorder.
  const size_t count = parents.size();
  sequences_.swap(spare_);
  while (sequences_.size() > count) {
    spare_.push_back(std::move(sequences_.back()));
    sequences_.pop_back();
  }
  return absl::OkStatus();
}

float* PagedKVCache::KeyRow(int seq, int layer, int pos) {
  const Sequence& s = sequences_[seq];
  return pool_->data(s.blocks[pos / layout_.block_size]) +
         layout_.offset(layer, 0, pos % layout_.block_size);
}

float* PagedKVCache::ValueRow(int seq, int layer, int pos) {
  const Sequence& s = sequences_[seq];
  return pool_->data(s.blocks[pos / layout_.block_size]) +
         layout_.offset(layer, 1, pos % layout_.block_size);
}

const float* PagedKVCache::KeyBlock(int seq, int layer, int block) const {
  return pool_->data(sequences_[seq].blocks[block]) + layout_.offset(layer, 0, 0);
}

const float* PagedKVCache::ValueBlock(int seq, int layer, int block) const {
  return pool_->data(sequences_[seq].blocks[block]) + layout_.offset(layer, 1, 0);
}

}  // namespace kvmt
