// Writes CTranslate2 model.bin files (binary versions 1 to 6) for tests, following
// python/ctranslate2/specs/model_spec.py: the reader under test never produces these bytes.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace kvmt::testing {

// The DataType ids of CTranslate2's include/ctranslate2/types.h.
enum class Ct2DType : uint8_t {
  kFloat32 = 0,
  kInt8 = 1,
  kInt16 = 2,
  kInt32 = 3,
  kFloat16 = 4,
  kBFloat16 = 5
};

inline int Ct2DTypeSize(Ct2DType dtype) {
  switch (dtype) {
    case Ct2DType::kInt8:
      return 1;
    case Ct2DType::kInt16:
    case Ct2DType::kFloat16:
    case Ct2DType::kBFloat16:
      return 2;
    default:
      return 4;
  }
}

// Round to nearest even; the tests only store values that float16 holds exactly.
inline uint16_t FloatToHalf(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  const uint32_t mantissa = bits & 0x7fffffu;
  if (value == 0.0f) return static_cast<uint16_t>(sign);
  if (exponent <= 0) {                                       // Subnormal half.
    const float magnitude = std::fabs(value) * 16777216.0f;  // / 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(magnitude)));
  }
  uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(half);
}

inline uint16_t FloatToBFloat16(float value) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(value) >> 16);
}

struct Ct2Variable {
  std::string name;
  std::vector<uint32_t> shape;
  Ct2DType dtype = Ct2DType::kFloat32;
  std::string bytes;
};

class Ct2ModelWriter {
 public:
  Ct2ModelWriter(uint32_t binary_version, std::string spec, uint32_t spec_revision)
      : version_(binary_version), spec_(std::move(spec)), revision_(spec_revision) {}

  void AddRaw(std::string name, std::vector<uint32_t> shape, Ct2DType dtype, std::string bytes) {
    variables_.push_back({std::move(name), std::move(shape), dtype, std::move(bytes)});
  }

  // Stores `values` (row-major, `shape`) as float32, float16 or bfloat16.
  void AddFloats(std::string name, std::vector<uint32_t> shape, const std::vector<float>& values,
                 Ct2DType dtype = Ct2DType::kFloat32) {
    std::string bytes;
    for (const float v : values) {
      if (dtype == Ct2DType::kFloat32) {
        Append(bytes, v);
      } else if (dtype == Ct2DType::kFloat16) {
        Append(bytes, FloatToHalf(v));
      } else {
        Append(bytes, FloatToBFloat16(v));
      }
    }
    AddRaw(std::move(name), std::move(shape), dtype, std::move(bytes));
  }

  // int8 with one scale per row, as model_spec.py quantises: scale = 127 / max|row|.
  void AddInt8(const std::string& name, std::vector<uint32_t> shape,
               const std::vector<float>& values) {
    const size_t depth = shape.back();
    const size_t rows = values.size() / depth;
    std::string bytes;
    std::vector<float> scales(rows);
    for (size_t r = 0; r < rows; ++r) {
      float amax = 0.0f;
      for (size_t j = 0; j < depth; ++j) amax = std::max(amax, std::fabs(values[r * depth + j]));
      scales[r] = amax == 0.0f ? 1.0f : 127.0f / amax;
      for (size_t j = 0; j < depth; ++j) {
        Append(bytes, static_cast<int8_t>(std::nearbyint(values[r * depth + j] * scales[r])));
      }
    }
    AddRaw(name, std::move(shape), Ct2DType::kInt8, std::move(bytes));
    AddFloats(name + "_scale", {static_cast<uint32_t>(rows)}, scales);
  }

  // int16 with one scale: 2^10 / max|x| when `with_scale`, else the implicit global 1000.
  void AddInt16(const std::string& name, std::vector<uint32_t> shape,
                const std::vector<float>& values, bool with_scale) {
    float amax = 0.0f;
    for (const float v : values) amax = std::max(amax, std::fabs(v));
    const float scale = with_scale ? 1024.0f / amax : 1000.0f;
    std::string bytes;
    for (const float v : values) Append(bytes, static_cast<int16_t>(std::nearbyint(v * scale)));
    AddRaw(name, std::move(shape), Ct2DType::kInt16, std::move(bytes));
    if (with_scale) AddScalar(name + "_scale", scale);
  }

  void AddScalar(std::string name, float value) {
    std::string bytes;
    Append(bytes, value);
    AddRaw(std::move(name), {}, Ct2DType::kFloat32, std::move(bytes));
  }
  void AddInt8Scalar(std::string name, int8_t value) {
    AddRaw(std::move(name), {}, Ct2DType::kInt8, std::string(1, static_cast<char>(value)));
  }
  void AddInt16Scalar(std::string name, int16_t value) {
    std::string bytes;
    Append(bytes, value);
    AddRaw(std::move(name), {}, Ct2DType::kInt16, std::move(bytes));
  }
  // Strings are int8 arrays of their UTF-8 bytes.
  void AddString(std::string name, const std::string& value) {
    AddRaw(std::move(name), {static_cast<uint32_t>(value.size())}, Ct2DType::kInt8, value);
  }

  void AddAlias(std::string alias, std::string target) {
    aliases_.emplace_back(std::move(alias), std::move(target));
  }

  bool Remove(const std::string& name) {
    for (auto it = variables_.begin(); it != variables_.end(); ++it) {
      if (it->name == name) {
        variables_.erase(it);
        return true;
      }
    }
    return false;
  }

  Ct2Variable* Find(const std::string& name) {
    for (Ct2Variable& v : variables_) {
      if (v.name == name) return &v;
    }
    return nullptr;
  }

  std::vector<Ct2Variable>& variables() { return variables_; }

  std::string Serialize() const {
    std::string out;
    Append(out, version_);
    if (version_ >= 2) {
      AppendString(out, spec_);
      Append(out, revision_);
    }
    Append(out, static_cast<uint32_t>(variables_.size()));
    for (const Ct2Variable& v : variables_) {
      AppendString(out, v.name);
      Append(out, static_cast<uint8_t>(v.shape.size()));
      for (const uint32_t dim : v.shape) Append(out, dim);
      if (version_ >= 4) {
        Append(out, static_cast<uint8_t>(v.dtype));
        Append(out, static_cast<uint32_t>(v.bytes.size()));
      } else {
        const int item_size = Ct2DTypeSize(v.dtype);
        Append(out, static_cast<uint8_t>(item_size));
        Append(out, static_cast<uint32_t>(v.bytes.size() / item_size));
      }
      out += v.bytes;
    }
    if (version_ >= 3) {
      Append(out, static_cast<uint32_t>(aliases_.size()));
      for (const auto& [alias, target] : aliases_) {
        AppendString(out, alias);
        AppendString(out, target);
      }
    }
    return out;
  }

  template <typename T>
  static void Append(std::string& out, T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out.append(bytes, sizeof(T));
  }

  static void AppendString(std::string& out, const std::string& value) {
    Append(out, static_cast<uint16_t>(value.size() + 1));
    out += value;
    out.push_back('\0');
  }

 private:
  uint32_t version_;
  std::string spec_;
  uint32_t revision_;
  std::vector<Ct2Variable> variables_;
  std::vector<std::pair<std::string, std::string>> aliases_;
};

}  // namespace kvmt::testing
