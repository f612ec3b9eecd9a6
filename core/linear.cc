#include "core/linear.h"

#include "absl/strings/str_cat.h"
#include "core/linear_implementations.h"

namespace kvmt {

absl::StatusOr<std::unique_ptr<Linear>> MakeLinear(const LinearParameters& p, ComputeType type) {
  const bool has_float = !p.weight.empty();
  if (has_float == !p.quantized.empty()) {
    return absl::InvalidArgumentError(
        "a linear layer needs exactly one of float32 and int8 weights");
  }
  const int64_t n = has_float ? p.weight.dim(0) : p.quantized.rows();
  if (has_float && p.weight.rank() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear weight must be [out, in], got ", p.weight.ShapeString()));
  }
  if (!p.bias.empty() && p.bias.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear bias ", p.bias.ShapeString(), " does not match ", n, " outputs"));
  }
  switch (type) {
    case ComputeType::kFloat32:
      return MakeFloat32Linear(has_float ? p.weight : p.quantized.Dequantize(), p.bias,
                               p.activation);
    case ComputeType::kBFloat16:
      return MakeBFloat16Linear(has_float ? p.weight : p.quantized.Dequantize(), p.bias,
                                p.activation);
    case ComputeType::kInt8:
      return MakeInt8Linear(has_float ? QuantizedMatrix::Quantize(p.weight) : p.quantized, p.bias,
                            p.activation);
  }
  return absl::InvalidArgumentError("unknown compute type");
}

}  // namespace kvmt
