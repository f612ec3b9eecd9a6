// SelfAttentionCache: the decoder's view of the self-attention K/V of every live hypothesis.
// Rows of one hypothesis are stored in blocks of block_size() consecutive positions; within a
// block, each layer's K and V rows are contiguous ([block_size, d_model], heads side by side),
// so attention reads them in place.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace kvmt {

class SelfAttentionCache {
 public:
  virtual ~SelfAttentionCache() = default;

  virtual int block_size() const = 0;
  virtual int num_sequences() const = 0;
  // Positions stored for sequence `seq` (the next one is written at this index).
  virtual int length(int seq) const = 0;

  // Adds an empty sequence at the end; returns its index.
  virtual int AddSequence() = 0;
  // Makes room for one more position of `seq` in every layer and returns its index; fails when
  // the cache's memory cannot hold it.
  virtual absl::StatusOr<int> Append(int seq) = 0;
  // New sequence i continues old sequence parents[i] (a parent may appear several times, or not
  // at all: its rows are then released).
  virtual absl::Status Reorder(absl::Span<const int32_t> parents) = 0;

  // Writable rows of position `pos` (< length) of `seq`, layer `layer`.
  virtual float* KeyRow(int seq, int layer, int pos) = 0;
  virtual float* ValueRow(int seq, int layer, int pos) = 0;
  // Rows of block `block` of `seq`: [block_size, d_model]; only the first
  // min(block_size, length - block * block_size) rows are valid.
  virtual const float* KeyBlock(int seq, int layer, int block) const = 0;
  virtual const float* ValueBlock(int seq, int layer, int block) const = 0;
};

}  // namespace kvmt
