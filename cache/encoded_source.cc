#include "encoder/encoded_source.h"

namespace kvmt {

size_t EncodedSource::bytes() const {
  size_t total = output.size() * sizeof(float);
  for (const Tensor& k : keys) total += k.size() * sizeof(float);
  for (const Tensor& v : values) total += v.size() * sizeof(float);
  return total;
}

}  // namespace kvmt
