// KVBlockLayout: the shape of one pool block — `block_size` consecutive positions of K and V for
// every layer, [layer][K|V][position][d_model]. Self-attention caches and source K/V share it,
// so one pool serves both.
#pragma once

#include <cstdint>

namespace kvmt {

struct KVBlockLayout {
  int num_layers = 0;
  int d_model = 0;
  int block_size = 16;

  int64_t block_floats() const {
    return static_cast<int64_t>(num_layers) * 2 * block_size * d_model;
  }
  // Offset of `row` (0 <= row < block_size) of layer `layer`'s K (kv = 0) or V (kv = 1).
  int64_t offset(int layer, int kv, int row) const {
    return ((static_cast<int64_t>(layer) * 2 + kv) * block_size + row) * d_model;
  }
  int64_t blocks_for(int64_t positions) const { return (positions + block_size - 1) / block_size; }
};

}  // namespace kvmt
