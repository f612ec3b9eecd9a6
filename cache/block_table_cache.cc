#include "cache/block_table_cache.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace kvmt {

BlockTableCache::BlockTableCache(int num_layers, int d_model, int block_size)
    : num_layers_(num_layers),
      d_model_(d_model),
      block_size_(block_size),
      block_floats_(static_cast<int64_t>(num_layers) * 2 * block_size * d_model) {}

BlockTableCache::~BlockTableCache() = default;

int BlockTableCache::AddSequence() {
  sequences_.emplace_back();
  return static_cast<int>(sequences_.size()) - 1;
}

float* BlockTableCache::TakeBlock() {
  if (free_blocks_.empty()) {
    storage_.push_back(std::make_unique<float[]>(block_floats_));
    return storage_.back().get();
  }
  float* block = free_blocks_.back();
  free_blocks_.pop_back();
  return block;
}

void BlockTableCache::ReleaseBlocks(Sequence& sequence) {
  free_blocks_.insert(free_blocks_.end(), sequence.blocks.begin(), sequence.blocks.end());
  sequence.blocks.clear();
  sequence.length = 0;
}

absl::StatusOr<int> BlockTableCache::Append(int seq) {
  Sequence& sequence = sequences_[seq];
  if (sequence.length == static_cast<int>(sequence.blocks.size()) * block_size_) {
    sequence.blocks.push_back(TakeBlock());
  }
  return sequence.length++;
}

absl::Status BlockTableCache::Reorder(absl::Span<const int32_t> parents) {
  for (int32_t parent : parents) {
    if (parent < 0 || parent >= num_sequences()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cache reorder: parent ", parent, " of ", num_sequences(), " sequences"));
    }
  }
  // The first child of a parent takes its blocks; further children copy the used rows. Blocks
  // of parents without children go back to the free list first, so the copies can reuse them.
  std::vector<bool> has_child(sequences_.size(), false);
  for (int32_t p : parents) has_child[p] = true;
  for (size_t p = 0; p < sequences_.size(); ++p) {
    if (!has_child[p]) ReleaseBlocks(sequences_[p]);
  }
  std::vector<Sequence> children(parents.size());
  std::vector<bool> taken(sequences_.size(), false);
  for (size_t i = 0; i < parents.size(); ++i) {
    const int32_t p = parents[i];
    Sequence& child = children[i];
    if (!taken[p]) {
      taken[p] = true;
      child = sequences_[p];
      continue;
    }
    const Sequence& parent = sequences_[p];
    child.length = parent.length;
    for (size_t b = 0; b < parent.blocks.size(); ++b) {
      float* block = TakeBlock();
      const int rows = std::min(block_size_, parent.length - static_cast<int>(b) * block_size_);
      for (int layer = 0; layer < num_layers_; ++layer) {
        for (int kv = 0; kv < 2; ++kv) {
          const int64_t offset = RowOffset(layer, kv, 0);
          std::memcpy(block + offset, parent.blocks[b] + offset, rows * d_model_ * sizeof(float));
        }
      }
      bytes_copied_ += static_cast<int64_t>(rows) * d_model_ * 2 * num_layers_ * sizeof(float);
      child.blocks.push_back(block);
    }
  }
  sequences_ = std::move(children);
  return absl::OkStatus();
}

int64_t BlockTableCache::RowOffset(int layer, int kv, int row) const {
  return ((static_cast<int64_t>(layer) * 2 + kv) * block_size_ + row) * d_model_;
}

float* BlockTableCache::KeyRow(int seq, int layer, int pos) {
  return sequences_[seq].blocks[pos / block_size_] + RowOffset(layer, 0, pos % block_size_);
}

float* BlockTableCache::ValueRow(int seq, int layer, int pos) {
  return sequences_[seq].blocks[pos / block_size_] + RowOffset(layer, 1, pos % block_size_);
}

const float* BlockTableCache::KeyBlock(int seq, int layer, int block) const {
  return sequences_[seq].blocks[block] + RowOffset(layer, 0, 0);
}

const float* BlockTableCache::ValueBlock(int seq, int layer, int block) const {
  return sequences_[seq].blocks[block] + RowOffset(layer, 1, 0);
}

int64_t BlockTableCache::bytes_reserved() const {
  return static_cast<int64_t>(storage_.size()) * block_floats_ * sizeof(float);
}

}  // namespace kvmt
