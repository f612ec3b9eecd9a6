// The Linear implementations behind MakeLinear, one per compute type (core-internal).
#pragma once

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/linear.h"

namespace kvmt {

// weight: [n, k] float32.
absl::StatusOr<std::unique_ptr<Linear>> MakeFloat32Linear(Tensor weight, Tensor bias,
                                                          std::optional<Activation> activation);
absl::StatusOr<std::unique_ptr<Linear>> MakeBFloat16Linear(const Tensor& weight, Tensor bias,
                                                           std::optional<Activation> activation);
absl::StatusOr<std::unique_ptr<Linear>> MakeInt8Linear(const QuantizedMatrix& weight, Tensor bias,
                                                       std::optional<Activation> activation);

}  // namespace kvmt
