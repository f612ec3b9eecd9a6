#include "cache/encoded_source.h"

namespace kvmt {

EncodedSource::EncodedSource(std::shared_ptr<BlockPool> pool, KVBlockLayout layout, int length,
                             std::vector<BlockId> blocks, Tensor output)
    : pool_(std::move(pool)),
      layout_(layout),
      length_(length),
      blocks_(std::move(blocks)),
      output_(std::move(output)) {}

EncodedSource::~EncodedSource() {
  for (BlockId block : blocks_) pool_->Release(block);
}

}  // namespace kvmt
