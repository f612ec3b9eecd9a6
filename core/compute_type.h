// ComputeType: the arithmetic of the linear layers (float32, int8 with float32 rescaling, or
// bfloat16 with float32 accumulation), and what this CPU runs natively.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kvmt {

enum class ComputeType { kFloat32, kInt8, kBFloat16 };

// "float32", "int8", "bfloat16".
absl::string_view ComputeTypeName(ComputeType type);
absl::StatusOr<ComputeType> ParseComputeType(absl::string_view name);

// Whether oneDNN runs bfloat16 matmuls with native instructions here (AVX512-BF16 or AMX);
// without them it would emulate them, slower than float32.
bool CpuHasNativeBFloat16();
// Whether int8 dot products run on VNNI or AMX. Without them oneDNN's u8 x s8 kernels add
// pairs in saturating int16 and can overflow.
bool CpuHasInt8Dot();
// The instruction set oneDNN dispatches to, for logs ("avx512_core_amx", ...).
std::string CpuIsaName();

}  // namespace kvmt
