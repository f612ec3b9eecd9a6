#include "model/ctranslate2_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"
#include "model/file_io.h"
#include "model/position_encodings.h"
#include "model/sentencepiece_tokenizer.h"
#include "model/weights_validation.h"
#include "nlohmann/json.hpp"

namespace kvmt {
namespace {

static_assert(std::endian::native == std::endian::little,
              "model.bin stores little-endian data and is read in place");

namespace fs = std::filesystem;

// See python/ctranslate2/specs/model_spec.py (writer) and src/models/model.cc (reader) in
// CTranslate2. Binary versions 5 and 6 change no byte layout: 5 makes the converter round
// before casting when it quantises, 6 moves the special tokens and source flags from model.bin
// attributes to config.json.
constexpr uint32_t kMaxBinaryVersion = 6;
// TransformerSpec's revision in the newest CTranslate2 (src/models/transformer.cc).
constexpr uint32_t kMaxSpecRevision = 7;
// Transformer tensors have rank <= 2; this only bounds what an unknown variable may declare.
constexpr uint32_t kMaxRank = 8;
// Smallest possible record: name (uint16 length + NUL), rank, dtype or item size, byte count.
constexpr uint64_t kMinVariableBytes = 2 + 1 + 1 + 1 + 4;
constexpr uint64_t kMinAliasBytes = 2 * (2 + 1);
// ops::Quantize::global_int16_scale: the scale of int16 models saved without one.
constexpr float kGlobalInt16Scale = 1000.0f;
// Sinusoidal tables are generated for this many positions (the default max_input_length).
constexpr int kGeneratedPositions = 1024;
// CTranslate2 >= 3.0 normalises with 1e-5 when config.json gives no layer_norm_epsilon
// (src/layers/common.cc); 1e-6 is only its default for RMS norms, which kvmt does not read.
constexpr float kDefaultLayerNormEpsilon = 1e-5f;

// The DataType enum of include/ctranslate2/types.h: the ids stored from binary version 4 on.
enum class DType : uint8_t { kFloat32, kInt8, kInt16, kInt32, kFloat16, kBFloat16 };
constexpr uint8_t kNumDTypes = 6;

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kInt8:
      return "int8";
    case DType::kInt16:
      return "int16";
    case DType::kInt32:
      return "int32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

uint64_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kInt8:
      return 1;
    case DType::kInt16:
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
  }
  return 0;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[",
                      absl::StrJoin(shape, ", ",
                                    [](std::string* out, int64_t dim) {
                                      absl::StrAppend(out, dim < 0 ? "?" : absl::StrCat(dim));
                                    }),
                      "]");
}

float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float BFloat16ToFloat(uint16_t value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value) << 16);
}

template <typename T>
T LoadUnaligned(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// A read-only mapping of a whole file; pages are only touched when a tensor is converted.
class MappedFile {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(error));
      return error == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
    }
    struct stat info;
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
    }
    auto file = std::unique_ptr<MappedFile>(new MappedFile());
    file->size_ = static_cast<size_t>(info.st_size);
    if (file->size_ > 0) {
      void* data = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        const int error = errno;
        ::close(fd);
        return absl::InternalError(absl::StrCat(path, ": cannot map: ", std::strerror(error)));
      }
      file->data_ = data;
    }
    ::close(fd);
    return file;
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }

  absl::string_view bytes() const {
    return data_ == nullptr ? absl::string_view()
                            : absl::string_view(static_cast<char*>(data_), size_);
  }

 private:
  MappedFile() = default;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Bounds-checked sequential reads; every error names the file, the offset and what was read.
class ByteReader {
 public:
  ByteReader(absl::string_view bytes, absl::string_view file) : bytes_(bytes), file_(file) {}

  uint64_t remaining() const { return bytes_.size() - offset_; }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", what));
  }

  absl::Status Need(uint64_t n, absl::string_view what) const {
    if (n <= remaining()) return absl::OkStatus();
    return Error(absl::StrCat("truncated: ", what, " needs ", n, " bytes at offset ", offset_,
                              " but only ", remaining(), " are left"));
  }

  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    KVMT_RETURN_IF_ERROR(Need(sizeof(T), what));
    const T value = LoadUnaligned<T>(bytes_.data() + offset_);
    offset_ += sizeof(T);
    return value;
  }

  absl::StatusOr<absl::string_view> Bytes(uint64_t n, absl::string_view what) {
    KVMT_RETURN_IF_ERROR(Need(n, what));
    const absl::string_view bytes = bytes_.substr(offset_, n);
    offset_ += n;
    return bytes;
  }

  // uint16 length (the trailing NUL included), then the bytes.
  absl::StatusOr<std::string> String(absl::string_view what) {
    KVMT_ASSIGN_OR_RETURN(const uint16_t length, Read<uint16_t>(what));
    if (length == 0) return Error(absl::StrCat(what, ": string length 0 leaves no NUL byte"));
    KVMT_ASSIGN_OR_RETURN(const absl::string_view bytes, Bytes(length, what));
    if (bytes.back() != '\0') return Error(absl::StrCat(what, ": string is not NUL-terminated"));
    const absl::string_view text = bytes.substr(0, length - 1);
    if (text.find('\0') != absl::string_view::npos) {
      return Error(absl::StrCat(what, ": string holds a NUL byte"));
    }
    return std::string(text);
  }

 private:
  const absl::string_view bytes_;
  const absl::string_view file_;
  uint64_t offset_ = 0;
};

struct RawVariable {
  std::string name;  // After the revision-1 renaming.
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  absl::string_view data;  // Inside the mapping; exactly shape x dtype size bytes.
};

struct ModelBin {
  uint32_t binary_version = 0;
  std::string spec;
  uint32_t spec_revision = 1;
  std::vector<RawVariable> variables;
  std::vector<std::pair<std::string, std::string>> aliases;  // (alias, target)
};

// Revision 1 stored the OpenNMT-tf V1 names (map_v1_variable_name in transformer.cc): each
// rule replaces its first occurrence only.
std::string MapV1Name(std::string name) {
  const auto replace = [&name](const std::string& from, const std::string& to) {
    const size_t at = name.find(from);
    if (at != std::string::npos) name.replace(at, from.size(), to);
  };
  replace("transformer/", "");
  replace(":0", "");
  replace("w_embs", "embeddings/weight");
  replace("kernel", "weight");
  replace("LayerNorm", "layer_norm");
  replace("dense", "projection");
  replace("conv1d_", "linear_");
  replace("conv1d", "linear_0");
  if (name.find("encoder") != std::string::npos) {
    replace("multi_head", "self_attention");
  } else {
    replace("masked_multi_head", "self_attention");
    replace("multi_head", "attention");
  }
  return name;
}

absl::Status CheckSpec(const ModelBin& bin, absl::string_view path) {
  if (bin.spec != "" && bin.spec != "TransformerBase" && bin.spec != "TransformerBig" &&
      bin.spec != "TransformerSpec") {
    return absl::UnimplementedError(
        absl::StrCat(path, ": model spec '", bin.spec,
                     "' is not supported (kvmt reads the encoder-decoder Transformer specs "
                     "TransformerBase, TransformerBig and TransformerSpec)"));
  }
  if (bin.spec_revision == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": spec revision 0 is not valid"));
  }
  if (bin.spec_revision > kMaxSpecRevision) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": spec revision ", bin.spec_revision, " of '", bin.spec,
                     "' is newer than the newest kvmt reads (", kMaxSpecRevision, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RawVariable> ParseVariable(ByteReader& in, uint32_t version, uint32_t index) {
  RawVariable v;
  KVMT_ASSIGN_OR_RETURN(v.name, in.String(absl::StrCat("the name of variable #", index)));
  const std::string label = absl::StrCat("variable '", v.name, "'");
  KVMT_ASSIGN_OR_RETURN(const uint8_t rank, in.Read<uint8_t>(absl::StrCat(label, ": rank")));
  if (rank > kMaxRank) {
    return in.Error(absl::StrCat(label, ": rank ", rank, " is larger than ", kMaxRank));
  }
  uint64_t elements = 1;
  bool overflow = false;
  for (uint8_t i = 0; i < rank; ++i) {
    KVMT_ASSIGN_OR_RETURN(const uint32_t dim, in.Read<uint32_t>(absl::StrCat(label, ": shape")));
    v.shape.push_back(dim);
    // Any count above 2^40 already exceeds the largest byte count a record can declare.
    if (dim != 0 && elements > (uint64_t{1} << 40) / dim) overflow = true;
    if (!overflow) elements *= dim;
  }
  uint64_t num_bytes = 0;
  if (version >= 4) {
    KVMT_ASSIGN_OR_RETURN(const uint8_t id, in.Read<uint8_t>(absl::StrCat(label, ": dtype")));
    if (id >= kNumDTypes) return in.Error(absl::StrCat(label, ": unknown dtype id ", id));
    v.dtype = static_cast<DType>(id);
    KVMT_ASSIGN_OR_RETURN(num_bytes, in.Read<uint32_t>(absl::StrCat(label, ": byte count")));
  } else {
    // Before version 4 only the item size was stored; CTranslate2 maps it to a dtype.
    KVMT_ASSIGN_OR_RETURN(const uint8_t item_size,
                          in.Read<uint8_t>(absl::StrCat(label, ": item size")));
    if (item_size == 4) {
      v.dtype = DType::kFloat32;
    } else if (item_size == 2) {
      v.dtype = DType::kInt16;
    } else if (item_size == 1) {
      v.dtype = DType::kInt8;
    } else {
      return in.Error(absl::StrCat(label, ": unknown item size ", item_size));
    }
    KVMT_ASSIGN_OR_RETURN(const uint32_t count,
                          in.Read<uint32_t>(absl::StrCat(label, ": element count")));
    num_bytes = uint64_t{count} * item_size;
  }
  if (overflow || elements * DTypeSize(v.dtype) != num_bytes) {
    return in.Error(absl::StrCat(label, ": shape ", ShapeString(v.shape), " of ",
                                 DTypeName(v.dtype), " does not match its ", num_bytes,
                                 " bytes of data"));
  }
  KVMT_ASSIGN_OR_RETURN(v.data, in.Bytes(num_bytes, absl::StrCat(label, ": data")));
  return v;
}

absl::StatusOr<ModelBin> ParseModelBin(absl::string_view bytes, const std::string& path) {
  ByteReader in(bytes, path);
  ModelBin bin;
  KVMT_ASSIGN_OR_RETURN(bin.binary_version, in.Read<uint32_t>("the binary version"));
  if (bin.binary_version == 0) return in.Error("binary version 0 is not valid");
  if (bin.binary_version > kMaxBinaryVersion) {
    return absl::UnimplementedError(absl::StrCat(path, ": binary version ", bin.binary_version,
                                                 " is newer than the newest kvmt reads (",
                                                 kMaxBinaryVersion, ")"));
  }
  if (bin.binary_version >= 2) {
    KVMT_ASSIGN_OR_RETURN(bin.spec, in.String("the spec name"));
    KVMT_ASSIGN_OR_RETURN(bin.spec_revision, in.Read<uint32_t>("the spec revision"));
  }
  KVMT_RETURN_IF_ERROR(CheckSpec(bin, path));

  KVMT_ASSIGN_OR_RETURN(const uint32_t count, in.Read<uint32_t>("the variable count"));
  if (count > in.remaining() / kMinVariableBytes) {
    return in.Error(absl::StrCat("the file declares ", count, " variables but only ",
                                 in.remaining(), " bytes are left to hold them"));
  }
  bin.variables.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    KVMT_ASSIGN_OR_RETURN(RawVariable variable, ParseVariable(in, bin.binary_version, i));
    if (bin.spec_revision == 1) variable.name = MapV1Name(std::move(variable.name));
    bin.variables.push_back(std::move(variable));
  }

  if (bin.binary_version >= 3) {
    KVMT_ASSIGN_OR_RETURN(const uint32_t aliases, in.Read<uint32_t>("the alias count"));
    if (aliases > in.remaining() / kMinAliasBytes) {
      return in.Error(absl::StrCat("the file declares ", aliases, " aliases but only ",
                                   in.remaining(), " bytes are left to hold them"));
    }
    for (uint32_t i = 0; i < aliases; ++i) {
      KVMT_ASSIGN_OR_RETURN(std::string alias, in.String(absl::StrCat("alias #", i)));
      KVMT_ASSIGN_OR_RETURN(std::string target,
                            in.String(absl::StrCat("the target of alias '", alias, "'")));
      if (bin.spec_revision == 1) {
        alias = MapV1Name(std::move(alias));
        target = MapV1Name(std::move(target));
      }
      bin.aliases.emplace_back(std::move(alias), std::move(target));
    }
  }
  if (in.remaining() != 0) {
    return in.Error(absl::StrCat(in.remaining(), " unexpected bytes after the last record"));
  }
  return bin;
}

// The variables of model.bin by name, aliases resolved. Every name the reader asks for is
// recorded, so that a variable nobody read (a feature kvmt does not implement) is an error
// instead of being dropped.
class Variables {
 public:
  static absl::StatusOr<Variables> Create(ModelBin bin, std::string file) {
    Variables vars;
    vars.file_ = std::move(file);
    vars.variables_ = std::move(bin.variables);
    for (size_t i = 0; i < vars.variables_.size(); ++i) {
      const std::string& name = vars.variables_[i].name;
      if (!vars.index_.try_emplace(name, i).second) {
        return vars.Error(absl::StrCat("variable '", name, "' is stored twice"));
      }
      vars.names_.push_back(name);
    }
    for (auto& [alias, target] : bin.aliases) {
      const auto it = vars.index_.find(target);
      if (it == vars.index_.end()) {
        return vars.Error(
            absl::StrCat("alias '", alias, "' refers to '", target, "', which does not exist"));
      }
      const size_t index = it->second;
      if (!vars.index_.try_emplace(alias, index).second) {
        return vars.Error(absl::StrCat("alias '", alias, "' repeats an existing name"));
      }
      vars.names_.push_back(alias);
      // CTranslate2 also aliases the quantisation scale of the target.
      const auto scale = vars.index_.find(target + "_scale");
      if (scale != vars.index_.end() &&
          vars.index_.try_emplace(alias + "_scale", scale->second).second) {
        vars.implicit_.insert(alias + "_scale");
      }
    }
    return vars;
  }

  const std::string& file() const { return file_; }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", what));
  }

  bool Contains(absl::string_view name) const { return index_.contains(name); }

  bool HasPrefix(absl::string_view prefix) const {
    for (const std::string& name : names_) {
      if (absl::StartsWith(name, prefix)) return true;
    }
    return false;
  }

  // Nullptr when absent. Marks `name` as read.
  const RawVariable* Use(absl::string_view name) {
    const auto it = index_.find(name);
    if (it == index_.end()) return nullptr;
    used_.insert(std::string(name));
    return &variables_[it->second];
  }

  absl::StatusOr<const RawVariable*> UseRequired(absl::string_view name) {
    const RawVariable* variable = Use(name);
    if (variable == nullptr) return Error(absl::StrCat("variable '", name, "' is missing"));
    return variable;
  }

  // Names with a path component (or suffix) that marks a feature kvmt does not implement, so
  // that such models fail on the feature rather than on a shape it changes. A false int8 flag
  // under such a name only says the feature is off.
  absl::Status CheckNoUnsupportedFeature() {
    static constexpr absl::string_view kComponents[] = {"layernorm_embedding",
                                                        "relative_position_keys",
                                                        "relative_position_values",
                                                        "relative_attention_bias",
                                                        "relative_asymmetric_position_keys",
                                                        "rotary_dim",
                                                        "num_heads_kv",
                                                        "head_dim",
                                                        "q_norm",
                                                        "k_norm",
                                                        "v_norm",
                                                        "linear_0_noact",
                                                        "shared_layer_norm",
                                                        "input_layer_norm",
                                                        "post_attention_layer_norm",
                                                        "pre_feedforward_layer_norm",
                                                        "post_feedforward_layer_norm",
                                                        "project_in",
                                                        "project_out",
                                                        "queries_scale",
                                                        "scale_outputs",
                                                        "sliding_window",
                                                        "embeddings_1"};
    for (const std::string& name : names_) {
      bool unsupported = absl::EndsWith(name, "_zero");
      for (absl::string_view component : absl::StrSplit(name, '/')) {
        for (const absl::string_view marker : kComponents) unsupported |= component == marker;
      }
      if (!unsupported) continue;
      const RawVariable& v = variables_[index_.at(name)];
      if (v.shape.empty() && v.dtype == DType::kInt8 && v.data[0] == 0) {
        used_.insert(name);
        continue;
      }
      return Unsupported(name);
    }
    return absl::OkStatus();
  }

  absl::Status CheckAllUsed() const {
    for (const std::string& name : names_) {
      if (!used_.contains(name)) return Unsupported(name);
    }
    return absl::OkStatus();
  }

 private:
  Variables() = default;

  absl::Status Unsupported(absl::string_view name) const {
    return absl::UnimplementedError(absl::StrCat(
        file_, ": variable '", name,
        "' belongs to a model feature kvmt does not implement (or to no known feature)"));
  }

  std::string file_;
  std::vector<RawVariable> variables_;
  absl::flat_hash_map<std::string, size_t> index_;  // Variable and alias names.
  std::vector<std::string> names_;                  // As stored: variables, then aliases.
  absl::flat_hash_set<std::string> implicit_;       // The scale aliases CTranslate2 adds.
  absl::flat_hash_set<std::string> used_;
};

// ---- Attributes: scalar variables (bools are int8, strings int8 arrays). ----

struct Scalar {
  double value = 0;
  bool integer = false;
};

absl::StatusOr<std::optional<Scalar>> ReadScalar(Variables& vars, absl::string_view name) {
  const RawVariable* v = vars.Use(name);
  if (v == nullptr) return std::nullopt;
  if (!v->shape.empty()) {
    return vars.Error(absl::StrCat("attribute '", name, "' should be a scalar, got shape ",
                                   ShapeString(v->shape)));
  }
  const char* p = v->data.data();
  switch (v->dtype) {
    case DType::kInt8:
      return Scalar{static_cast<double>(LoadUnaligned<int8_t>(p)), true};
    case DType::kInt16:
      return Scalar{static_cast<double>(LoadUnaligned<int16_t>(p)), true};
    case DType::kInt32:
      return Scalar{static_cast<double>(LoadUnaligned<int32_t>(p)), true};
    case DType::kFloat32:
      return Scalar{LoadUnaligned<float>(p), false};
    case DType::kFloat16:
      return Scalar{HalfToFloat(LoadUnaligned<uint16_t>(p)), false};
    case DType::kBFloat16:
      return Scalar{BFloat16ToFloat(LoadUnaligned<uint16_t>(p)), false};
  }
  return vars.Error(absl::StrCat("attribute '", name, "' has an unknown dtype"));
}

absl::StatusOr<std::optional<int64_t>> ReadInt(Variables& vars, absl::string_view name) {
  KVMT_ASSIGN_OR_RETURN(const std::optional<Scalar> scalar, ReadScalar(vars, name));
  if (!scalar.has_value()) return std::nullopt;
  if (!scalar->integer) {
    return vars.Error(absl::StrCat("attribute '", name, "' should be an integer"));
  }
  return static_cast<int64_t>(scalar->value);
}

absl::StatusOr<bool> ReadFlag(Variables& vars, absl::string_view name, bool default_value) {
  KVMT_ASSIGN_OR_RETURN(const std::optional<int64_t> value, ReadInt(vars, name));
  return value.has_value() ? *value != 0 : default_value;
}

// A flag whose `true` asks for a feature kvmt does not implement.
absl::Status RequireFlagOff(Variables& vars, absl::string_view name, absl::string_view feature) {
  KVMT_ASSIGN_OR_RETURN(const bool on, ReadFlag(vars, name, false));
  if (!on) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(vars.file(), ": attribute '", name, "' enables ",
                                               feature, ", which kvmt does not implement"));
}

absl::StatusOr<std::optional<std::string>> ReadStringAttribute(Variables& vars,
                                                               absl::string_view name) {
  const RawVariable* v = vars.Use(name);
  if (v == nullptr) return std::nullopt;
  if (v->dtype != DType::kInt8 || v->shape.size() != 1) {
    return vars.Error(absl::StrCat("attribute '", name,
                                   "' should be a string (a rank-1 int8 array), got ",
                                   DTypeName(v->dtype), " ", ShapeString(v->shape)));
  }
  return std::string(v->data);
}

// ---- Tensors ----

class WeightReader {
 public:
  explicit WeightReader(Variables& vars) : vars_(vars) {}

  Variables& vars() { return vars_; }

  // `name` as float32 with shape `expected` (-1: any size on that axis).
  absl::StatusOr<Tensor> Required(absl::string_view name, const std::vector<int64_t>& expected) {
    KVMT_ASSIGN_OR_RETURN(const RawVariable* v, vars_.UseRequired(name));
    return Convert(*v, name, expected);
  }

  // An empty Tensor when `name` is absent.
  absl::StatusOr<Tensor> Optional(absl::string_view name, const std::vector<int64_t>& expected) {
    const RawVariable* v = vars_.Use(name);
    if (v == nullptr) return Tensor();
    return Convert(*v, name, expected);
  }

  absl::StatusOr<LinearWeights> Linear(absl::string_view scope, int64_t out, int64_t in) {
    LinearWeights linear;
    const std::string weight = absl::StrCat(scope, "/weight");
    KVMT_ASSIGN_OR_RETURN(const RawVariable* v, vars_.UseRequired(weight));
    if (v->dtype == DType::kInt8) {
      // Kept as stored, for int8 computation; other compute types dequantise it.
      KVMT_RETURN_IF_ERROR(CheckShape(*v, weight, {out, in}));
      KVMT_ASSIGN_OR_RETURN(linear.quantized, Int8Matrix(*v, weight));
    } else {
      KVMT_ASSIGN_OR_RETURN(linear.weight, Convert(*v, weight, {out, in}));
    }
    KVMT_ASSIGN_OR_RETURN(linear.bias, Optional(absl::StrCat(scope, "/bias"), {out}));
    // Whether the converter kept this layer in float32 is moot: the compute type decides.
    KVMT_RETURN_IF_ERROR(ReadFlag(vars_, absl::StrCat(scope, "/keep_in_float32"), false).status());
    return linear;
  }

  absl::StatusOr<LayerNormWeights> Norm(absl::string_view scope, int64_t d) {
    const std::string beta = absl::StrCat(scope, "/beta");
    if (!vars_.Contains(beta) && vars_.Contains(absl::StrCat(scope, "/gamma"))) {
      return absl::UnimplementedError(
          absl::StrCat(vars_.file(), ": '", scope,
                       "' has a gamma but no beta: an RMS norm, which kvmt does not "
                       "implement"));
    }
    LayerNormWeights norm;
    KVMT_ASSIGN_OR_RETURN(norm.gamma, Required(absl::StrCat(scope, "/gamma"), {d}));
    KVMT_ASSIGN_OR_RETURN(norm.beta, Required(beta, {d}));
    return norm;
  }

  absl::StatusOr<LayerNormWeights> OptionalNorm(absl::string_view scope, int64_t d) {
    if (!vars_.Contains(absl::StrCat(scope, "/gamma")) &&
        !vars_.Contains(absl::StrCat(scope, "/beta"))) {
      return LayerNormWeights{};
    }
    return Norm(scope, d);
  }

 private:
  absl::Status CheckShape(const RawVariable& v, absl::string_view name,
                          const std::vector<int64_t>& expected) const {
    bool match = v.shape.size() == expected.size();
    for (size_t i = 0; match && i < expected.size(); ++i) {
      match = expected[i] < 0 || expected[i] == v.shape[i];
    }
    if (match) return absl::OkStatus();
    return vars_.Error(absl::StrCat("variable '", name, "': expected shape ", ShapeString(expected),
                                    ", got ", ShapeString(v.shape)));
  }

  absl::StatusOr<std::vector<float>> ReadScale(const RawVariable& scale, absl::string_view name,
                                               const std::vector<int64_t>& expected) {
    KVMT_RETURN_IF_ERROR(CheckShape(scale, name, expected));
    if (scale.dtype != DType::kFloat32 && scale.dtype != DType::kFloat16 &&
        scale.dtype != DType::kBFloat16) {
      return vars_.Error(absl::StrCat("variable '", name, "': a scale must be a float, got ",
                                      DTypeName(scale.dtype)));
    }
    std::vector<float> values(scale.data.size() / DTypeSize(scale.dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      const char* p = scale.data.data() + i * DTypeSize(scale.dtype);
      values[i] = scale.dtype == DType::kFloat32   ? LoadUnaligned<float>(p)
                  : scale.dtype == DType::kFloat16 ? HalfToFloat(LoadUnaligned<uint16_t>(p))
                                                   : BFloat16ToFloat(LoadUnaligned<uint16_t>(p));
      if (!(values[i] > 0.0f) || !std::isfinite(values[i])) {
        return vars_.Error(absl::StrCat("variable '", name, "': scale ", values[i], " at index ", i,
                                        " is not a finite positive number"));
      }
    }
    return values;
  }

  // An int8 variable with its per-row scales, 127 / max |row|: x = q / scale
  // (ops::Dequantize).
  absl::StatusOr<QuantizedMatrix> Int8Matrix(const RawVariable& v, absl::string_view name) {
    const std::string scale_name = absl::StrCat(name, "_scale");
    const RawVariable* scale = vars_.Use(scale_name);
    if (scale == nullptr) {
      return vars_.Error(
          absl::StrCat("variable '", name, "' is int8 but '", scale_name, "' is missing"));
    }
    if (v.shape.empty()) {
      return vars_.Error(absl::StrCat("variable '", name, "': an int8 scalar has no rows"));
    }
    int64_t n = 1;
    for (int64_t dim : v.shape) n *= dim;
    const int64_t depth = v.shape.back();
    const int64_t rows = depth == 0 ? 0 : n / depth;
    KVMT_ASSIGN_OR_RETURN(const std::vector<float> scales, ReadScale(*scale, scale_name, {rows}));
    QuantizedMatrix q(rows, depth);
    if (n > 0) std::memcpy(q.data(), v.data.data(), static_cast<size_t>(n));
    std::copy(scales.begin(), scales.end(), q.scales());
    return q;
  }

  absl::StatusOr<Tensor> Convert(const RawVariable& v, absl::string_view name,
                                 const std::vector<int64_t>& expected) {
    KVMT_RETURN_IF_ERROR(CheckShape(v, name, expected));
    const std::string scale_name = absl::StrCat(name, "_scale");
    const RawVariable* scale = nullptr;
    if (v.dtype == DType::kInt8 || v.dtype == DType::kInt16) scale = vars_.Use(scale_name);

    const auto cached = cache_.find(&v);
    if (cached != cache_.end()) return cached->second;

    Tensor tensor(v.shape);
    float* out = tensor.data();
    const int64_t n = tensor.size();
    const char* p = v.data.data();
    switch (v.dtype) {
      case DType::kFloat32:
        if (n > 0) std::memcpy(out, p, static_cast<size_t>(n) * sizeof(float));
        break;
      case DType::kFloat16:
        for (int64_t i = 0; i < n; ++i) out[i] = HalfToFloat(LoadUnaligned<uint16_t>(p + 2 * i));
        break;
      case DType::kBFloat16:
        for (int64_t i = 0; i < n; ++i) {
          out[i] = BFloat16ToFloat(LoadUnaligned<uint16_t>(p + 2 * i));
        }
        break;
      case DType::kInt8: {
        KVMT_ASSIGN_OR_RETURN(const QuantizedMatrix q, Int8Matrix(v, name));
        const Tensor dequantised = q.Dequantize();
        if (n > 0) std::memcpy(out, dequantised.data(), static_cast<size_t>(n) * sizeof(float));
        break;
      }
      case DType::kInt16: {
        // One scale for the tensor; models saved before scales were stored use the global one.
        float value = kGlobalInt16Scale;
        if (scale != nullptr) {
          KVMT_ASSIGN_OR_RETURN(const std::vector<float> scales, ReadScale(*scale, scale_name, {}));
          value = scales[0];
        }
        const float inverse = 1.0f / value;
        for (int64_t i = 0; i < n; ++i) {
          out[i] = static_cast<float>(LoadUnaligned<int16_t>(p + 2 * i)) * inverse;
        }
        break;
      }
      case DType::kInt32:
        return absl::UnimplementedError(
            absl::StrCat(vars_.file(), ": variable '", name, "': int32 weights are not supported"));
    }
    cache_.emplace(&v, tensor);
    return tensor;
  }

  Variables& vars_;
  absl::flat_hash_map<const RawVariable*, Tensor> cache_;
};

// ---- Architecture ----

struct Architecture {
  int num_heads = 0;
  bool pre_norm = true;
  Activation activation = Activation::kRelu;
  float embedding_scale = 1.0f;
};

absl::StatusOr<Activation> ToActivation(int64_t id, absl::string_view name, const Variables& vars) {
  // The Activation enum of python/ctranslate2/specs/common_spec.py.
  switch (id) {
    case 0:
      return Activation::kRelu;
    case 1:
      return Activation::kGeluTanh;
    case 2:
      return Activation::kSwish;
    case 3:
      return Activation::kGelu;
    case 4:
    case 5:
      return absl::UnimplementedError(absl::StrCat(vars.file(), ": attribute '", name, "' = ", id,
                                                   " selects the ",
                                                   id == 4 ? "sigmoid-approximated GELU" : "tanh",
                                                   " activation, which kvmt does not implement"));
    default:
      return vars.Error(absl::StrCat("attribute '", name, "' = ", id, " is not an activation"));
  }
}

class ArchitectureReader {
 public:
  ArchitectureReader(Variables& vars, const ModelBin& bin) : vars_(vars), bin_(bin) {}

  // Before revision 5 the attributes were stored once, at the top level.
  std::string Attribute(absl::string_view scope, absl::string_view attribute) const {
    return bin_.spec_revision >= 5 ? absl::StrCat(scope, "/", attribute) : std::string(attribute);
  }

  absl::StatusOr<Architecture> Read(absl::string_view scope, int64_t d_model) {
    Architecture a;
    const std::string heads_name = Attribute(scope, "num_heads");
    KVMT_ASSIGN_OR_RETURN(const std::optional<int64_t> heads, ReadInt(vars_, heads_name));
    if (heads.has_value()) {
      a.num_heads = static_cast<int>(*heads);
    } else if (bin_.spec == "TransformerBig") {
      a.num_heads = 16;
    } else if (bin_.spec == "TransformerBase" || bin_.spec.empty()) {
      a.num_heads = 8;
    } else {
      return vars_.Error(absl::StrCat("attribute '", heads_name, "' is missing"));
    }
    if (a.num_heads <= 0 || a.num_heads > d_model || d_model % a.num_heads != 0) {
      return vars_.Error(absl::StrCat("attribute '", heads_name, "' = ", a.num_heads,
                                      " does not divide the model width ", d_model));
    }
    KVMT_ASSIGN_OR_RETURN(a.pre_norm, ReadFlag(vars_, Attribute(scope, "pre_norm"), true));
    const std::string activation_name = Attribute(scope, "activation");
    KVMT_ASSIGN_OR_RETURN(const std::optional<int64_t> activation, ReadInt(vars_, activation_name));
    KVMT_ASSIGN_OR_RETURN(a.activation,
                          ToActivation(activation.value_or(0), activation_name, vars_));
    KVMT_ASSIGN_OR_RETURN(a.embedding_scale, EmbeddingScale(scope, d_model));
    return a;
  }

 private:
  // scale_embeddings is a flag (sqrt(d_model) or nothing) or the scale itself; older models
  // have embeddings/multiply_by_sqrt_depth instead; without either, sqrt(d_model).
  absl::StatusOr<float> EmbeddingScale(absl::string_view scope, int64_t d_model) {
    const std::string name = absl::StrCat(scope, "/scale_embeddings");
    const std::string legacy = absl::StrCat(scope, "/embeddings/multiply_by_sqrt_depth");
    KVMT_ASSIGN_OR_RETURN(std::optional<Scalar> scale, ReadScalar(vars_, name));
    std::string used = name;
    if (!scale.has_value()) {
      KVMT_ASSIGN_OR_RETURN(scale, ReadScalar(vars_, legacy));
      used = legacy;
    }
    const float sqrt_depth = std::sqrt(static_cast<float>(d_model));
    if (!scale.has_value()) return sqrt_depth;
    if (scale->integer) return scale->value != 0 ? sqrt_depth : 1.0f;
    if (!(scale->value > 0) || !std::isfinite(scale->value)) {
      return vars_.Error(absl::StrCat("attribute '", used, "' = ", scale->value,
                                      " is not a finite positive scale"));
    }
    return static_cast<float>(scale->value);
  }

  Variables& vars_;
  const ModelBin& bin_;
};

// ---- config.json and the special tokens ----

struct RunConfig {
  std::string unk = "<unk>";
  std::string bos = "<s>";
  std::string eos = "</s>";
  std::string decoder_start = "<s>";
  bool add_source_bos = false;
  bool add_source_eos = false;
  float layer_norm_epsilon = kDefaultLayerNormEpsilon;
};

// config.json is optional: null when absent.
absl::StatusOr<nlohmann::json> ReadConfigJson(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return nlohmann::json(nullptr);
  return ReadJsonObject(path);
}

absl::Status FieldTypeError(const std::string& path, absl::string_view field,
                            absl::string_view expected, const nlohmann::json& value) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": field '", field, "' should be ", expected,
                                                 ", got ", value.type_name()));
}

absl::Status ReadJsonString(const nlohmann::json& json, const std::string& path,
                            absl::string_view field, std::string& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_string()) return FieldTypeError(path, field, "a string", *it);
  out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadJsonBool(const nlohmann::json& json, const std::string& path,
                          absl::string_view field, bool& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldTypeError(path, field, "a boolean", *it);
  out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ApplyConfigJson(const nlohmann::json& json, const std::string& path,
                             bool tokens_from_json, RunConfig& tokens) {
  if (json.is_null()) return absl::OkStatus();
  if (tokens_from_json) {
    KVMT_RETURN_IF_ERROR(ReadJsonString(json, path, "unk_token", tokens.unk));
    KVMT_RETURN_IF_ERROR(ReadJsonString(json, path, "bos_token", tokens.bos));
    KVMT_RETURN_IF_ERROR(ReadJsonString(json, path, "eos_token", tokens.eos));
    KVMT_RETURN_IF_ERROR(ReadJsonBool(json, path, "add_source_bos", tokens.add_source_bos));
    KVMT_RETURN_IF_ERROR(ReadJsonBool(json, path, "add_source_eos", tokens.add_source_eos));
    tokens.decoder_start = tokens.bos;
    const auto start = json.find("decoder_start_token");
    if (start != json.end()) {
      if (start->is_null()) {
        return absl::UnimplementedError(absl::StrCat(
            path,
            ": field 'decoder_start_token' is null (the caller supplies the first target "
            "token), which kvmt does not implement"));
      }
      if (!start->is_string()) {
        return FieldTypeError(path, "decoder_start_token", "a string or null", *start);
      }
      tokens.decoder_start = start->get<std::string>();
    }
  }
  const auto epsilon = json.find("layer_norm_epsilon");
  if (epsilon != json.end() && !epsilon->is_null()) {
    if (!epsilon->is_number())
      return FieldTypeError(path, "layer_norm_epsilon", "a number", *epsilon);
    const double value = epsilon->get<double>();
    if (!(value > 0) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": field 'layer_norm_epsilon' = ", value,
                                                     " is not a finite positive number"));
    }
    tokens.layer_norm_epsilon = static_cast<float>(value);
  }
  bool multi_query = false;
  KVMT_RETURN_IF_ERROR(ReadJsonBool(json, path, "multi_query_attention", multi_query));
  if (multi_query) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": field 'multi_query_attention' is true, which kvmt does not implement"));
  }
  const auto quantization = json.find("quantization_type");
  if (quantization != json.end() && !quantization->is_null() &&
      !(quantization->is_number_integer() && quantization->get<int64_t>() == 0)) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": field 'quantization_type' = ", quantization->dump(),
                     " asks for a quantisation kvmt does not read"));
  }
  return absl::OkStatus();
}

// Before binary version 6 the tokens and source flags were model.bin attributes.
absl::Status ReadLegacyTokens(Variables& vars, RunConfig& tokens) {
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> unk,
                        ReadStringAttribute(vars, "unk_token"));
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> bos,
                        ReadStringAttribute(vars, "bos_token"));
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> eos,
                        ReadStringAttribute(vars, "eos_token"));
  tokens.unk = unk.value_or("<unk>");
  tokens.bos = bos.value_or("<s>");
  tokens.eos = eos.value_or("</s>");
  KVMT_ASSIGN_OR_RETURN(tokens.add_source_bos, ReadFlag(vars, "with_source_bos", false));
  KVMT_ASSIGN_OR_RETURN(tokens.add_source_eos, ReadFlag(vars, "with_source_eos", false));
  KVMT_RETURN_IF_ERROR(
      RequireFlagOff(vars, "user_decoder_start_tokens", "caller-supplied decoder start tokens"));
  KVMT_ASSIGN_OR_RETURN(const bool with_target_bos, ReadFlag(vars, "with_target_bos", true));
  tokens.decoder_start = with_target_bos ? tokens.bos : tokens.eos;
  return absl::OkStatus();
}

// ---- Vocabularies and tokenizers ----

// `<dir>/<stem>.json` or `<dir>/<stem>.txt`; nullopt when neither exists.
absl::StatusOr<std::optional<std::string>> FindVocabulary(const fs::path& dir,
                                                          absl::string_view stem) {
  std::error_code error;
  const fs::path json = dir / absl::StrCat(stem, ".json");
  const fs::path txt = dir / absl::StrCat(stem, ".txt");
  const bool has_json = fs::exists(json, error);
  const bool has_txt = fs::exists(txt, error);
  if (has_json && has_txt) {
    return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": both ", stem, ".json and ",
                                                   stem, ".txt exist; keep only one"));
  }
  if (has_json) return json.string();
  if (has_txt) return txt.string();
  return std::nullopt;
}

// CTranslate2 appends the unknown token when the file lacks it. A file whose own size already
// matches the embedding rows keeps its size, and then has no unknown token.
absl::StatusOr<Vocabulary> LoadVocabulary(const std::string& path, const std::string& unk,
                                          int64_t rows, absl::string_view variable,
                                          const std::string& model_file) {
  KVMT_ASSIGN_OR_RETURN(Vocabulary vocabulary, ReadVocabularyFile(path));
  if (vocabulary.Id(unk) < 0 && vocabulary.size() + 1 == rows) {
    std::vector<std::string> tokens = vocabulary.tokens();
    tokens.push_back(unk);
    KVMT_ASSIGN_OR_RETURN(vocabulary, Vocabulary::FromTokens(std::move(tokens), path));
  }
  if (vocabulary.size() != rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", vocabulary.size(), " tokens, but '", variable, "' in ", model_file,
                     " has ", rows, " rows",
                     vocabulary.Id(unk) < 0 ? absl::StrCat(" (the file has no '", unk, "')") : ""));
  }
  return vocabulary;
}

absl::Status LoadVocabularies(const fs::path& dir, const RunConfig& tokens,
                              absl::string_view source_variable, const std::string& model_file,
                              Model& model) {
  const TransformerWeights& weights = model.weights;
  const int64_t source_rows = weights.source_embeddings.dim(0);
  const int64_t target_rows = weights.target_embeddings.dim(0);
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> shared,
                        FindVocabulary(dir, "shared_vocabulary"));
  if (shared.has_value()) {
    KVMT_ASSIGN_OR_RETURN(model.source_vocabulary, LoadVocabulary(*shared, tokens.unk, source_rows,
                                                                  source_variable, model_file));
    KVMT_ASSIGN_OR_RETURN(
        model.target_vocabulary,
        LoadVocabulary(*shared, tokens.unk, target_rows, "decoder/embeddings/weight", model_file));
    return absl::OkStatus();
  }
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> source,
                        FindVocabulary(dir, "source_vocabulary"));
  KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> target,
                        FindVocabulary(dir, "target_vocabulary"));
  if (!source.has_value()) {
    KVMT_ASSIGN_OR_RETURN(const std::optional<std::string> feature,
                          FindVocabulary(dir, "source_1_vocabulary"));
    if (feature.has_value()) {
      return absl::UnimplementedError(
          absl::StrCat(*feature,
                       ": several source vocabularies (source features), which kvmt does not "
                       "implement"));
    }
  }
  if (!source.has_value() || !target.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(dir.string(), ": no ", source.has_value() ? "target" : "source",
                     " vocabulary: looked for shared_vocabulary.{json,txt}, then ",
                     source.has_value() ? "target" : "source", "_vocabulary.{json,txt}"));
  }
  KVMT_ASSIGN_OR_RETURN(model.source_vocabulary, LoadVocabulary(*source, tokens.unk, source_rows,
                                                                source_variable, model_file));
  KVMT_ASSIGN_OR_RETURN(
      model.target_vocabulary,
      LoadVocabulary(*target, tokens.unk, target_rows, "decoder/embeddings/weight", model_file));
  return absl::OkStatus();
}

// SentencePiece models in the model directory, or in its parent (the Argos Translate package
// layout: <package>/model/ beside <package>/sentencepiece.model).
absl::Status LoadTokenizers(const fs::path& dir, Model& model) {
  std::error_code error;
  const fs::path parent = dir.parent_path();
  std::vector<fs::path> candidates = {dir};
  if (!parent.empty() && parent != dir) candidates.push_back(parent);
  for (const fs::path& d : candidates) {
    const fs::path source = d / "source.spm";
    const fs::path target = d / "target.spm";
    const bool has_source = fs::exists(source, error);
    const bool has_target = fs::exists(target, error);
    if (has_source || has_target) {
      if (!has_source || !has_target) {
        return absl::NotFoundError(
            absl::StrCat(d.string(), ": found ", has_source ? "source.spm" : "target.spm",
                         " but not ", has_source ? "target.spm" : "source.spm"));
      }
      KVMT_ASSIGN_OR_RETURN(model.source_tokenizer, LoadSentencePieceTokenizer(source.string()));
      KVMT_ASSIGN_OR_RETURN(model.target_tokenizer, LoadSentencePieceTokenizer(target.string()));
      model.has_sentencepiece = true;
      return absl::OkStatus();
    }
    const fs::path shared = d / "sentencepiece.model";
    if (fs::exists(shared, error)) {
      KVMT_ASSIGN_OR_RETURN(model.source_tokenizer, LoadSentencePieceTokenizer(shared.string()));
      KVMT_ASSIGN_OR_RETURN(model.target_tokenizer, LoadSentencePieceTokenizer(shared.string()));
      model.has_sentencepiece = true;
      return absl::OkStatus();
    }
  }
  model.source_tokenizer = std::make_unique<WhitespaceTokenizer>();
  model.target_tokenizer = std::make_unique<WhitespaceTokenizer>();
  model.has_sentencepiece = false;
  return absl::OkStatus();
}

// ---- Weights ----

// The number of consecutive `<scope>/layer_<i>/` groups from 0.
int CountLayers(const Variables& vars, absl::string_view scope) {
  int count = 0;
  while (vars.HasPrefix(absl::StrCat(scope, "/layer_", count, "/"))) ++count;
  return count;
}

// Stored tables start at position 0; generated ones follow CTranslate2's
// SinusoidalPositionEncoder, whose row t is the encoding of position t + 1 (OpenNMT-tf counts
// positions from 1).
absl::StatusOr<Tensor> PositionTable(WeightReader& reader, absl::string_view scope, int64_t d) {
  KVMT_ASSIGN_OR_RETURN(
      Tensor stored,
      reader.Optional(absl::StrCat(scope, "/position_encodings/encodings"), {-1, d}));
  if (!stored.shape().empty()) {
    if (stored.dim(0) == 0) {
      return reader.vars().Error(
          absl::StrCat("variable '", scope, "/position_encodings/encodings' has no rows"));
    }
    return stored;
  }
  if (d % 2 != 0) {
    return absl::UnimplementedError(absl::StrCat(reader.vars().file(), ": model width ", d,
                                                 " is odd; sinusoidal positions need an even one"));
  }
  const Tensor from_zero = OpenNmtSinusoidalPositions(kGeneratedPositions + 1, static_cast<int>(d));
  Tensor table({kGeneratedPositions, d});
  std::memcpy(table.data(), from_zero.data() + d, sizeof(float) * kGeneratedPositions * d);
  return table;
}

absl::StatusOr<std::string> EncoderEmbeddingName(const Variables& vars) {
  if (vars.Contains("encoder/embeddings/weight")) return std::string("encoder/embeddings/weight");
  if (vars.Contains("encoder/embeddings_0/weight")) {
    return std::string("encoder/embeddings_0/weight");
  }
  return vars.Error("variable 'encoder/embeddings/weight' is missing");
}

absl::Status ReadLayers(WeightReader& r, const ModelConfig& c, TransformerWeights& w) {
  const int64_t d = c.d_model;
  const int64_t ffn = c.ffn_dim;
  for (int i = 0; i < c.encoder_layers; ++i) {
    const std::string p = absl::StrCat("encoder/layer_", i);
    EncoderLayerWeights l;
    KVMT_ASSIGN_OR_RETURN(l.self_attention_norm, r.Norm(p + "/self_attention/layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_qkv, r.Linear(p + "/self_attention/linear_0", 3 * d, d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_output, r.Linear(p + "/self_attention/linear_1", d, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_norm, r.Norm(p + "/ffn/layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_inner, r.Linear(p + "/ffn/linear_0", ffn, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_outer, r.Linear(p + "/ffn/linear_1", d, ffn));
    w.encoder_layers.push_back(std::move(l));
  }
  for (int i = 0; i < c.decoder_layers; ++i) {
    const std::string p = absl::StrCat("decoder/layer_", i);
    DecoderLayerWeights l;
    KVMT_ASSIGN_OR_RETURN(l.self_attention_norm, r.Norm(p + "/self_attention/layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_qkv, r.Linear(p + "/self_attention/linear_0", 3 * d, d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_output, r.Linear(p + "/self_attention/linear_1", d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_norm, r.Norm(p + "/attention/layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_query, r.Linear(p + "/attention/linear_0", d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_kv, r.Linear(p + "/attention/linear_1", 2 * d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_output, r.Linear(p + "/attention/linear_2", d, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_norm, r.Norm(p + "/ffn/layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_inner, r.Linear(p + "/ffn/linear_0", ffn, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_outer, r.Linear(p + "/ffn/linear_1", d, ffn));
    w.decoder_layers.push_back(std::move(l));
  }
  return absl::OkStatus();
}

// Attributes that only describe what kvmt ignores (alignment heads, how several source
// embeddings would merge) or must be off.
absl::Status ReadIgnoredAttributes(Variables& vars, const ArchitectureReader& arch) {
  for (const absl::string_view name :
       {arch.Attribute("encoder", "embeddings_merge"), arch.Attribute("decoder", "alignment_layer"),
        arch.Attribute("decoder", "alignment_heads")}) {
    KVMT_RETURN_IF_ERROR(ReadInt(vars, name).status());
  }
  KVMT_RETURN_IF_ERROR(
      RequireFlagOff(vars, "with_relative_position", "relative position representations"));
  KVMT_RETURN_IF_ERROR(
      RequireFlagOff(vars, "encoder/multi_query_attention", "multi-query attention"));
  KVMT_RETURN_IF_ERROR(RequireFlagOff(vars, "decoder/alibi", "ALiBi attention biases"));
  KVMT_RETURN_IF_ERROR(ReadFlag(vars, "decoder/alibi_use_positive_positions", false).status());
  KVMT_RETURN_IF_ERROR(ReadFlag(vars, "decoder/scale_alibi", false).status());
  return RequireFlagOff(vars, "decoder/start_from_zero_embedding",
                        "a zero embedding for the first decoder step");
}

absl::Status ReadWeights(Variables& vars, const ModelBin& bin, const std::string& model_file,
                         ModelConfig& c, TransformerWeights& w) {
  KVMT_RETURN_IF_ERROR(vars.CheckNoUnsupportedFeature());
  WeightReader r(vars);
  KVMT_ASSIGN_OR_RETURN(const std::string source_embeddings, EncoderEmbeddingName(vars));
  KVMT_ASSIGN_OR_RETURN(w.source_embeddings, r.Required(source_embeddings, {-1, -1}));
  const int64_t d = w.source_embeddings.dim(1);
  if (d <= 0 || w.source_embeddings.dim(0) <= 0) {
    return vars.Error(absl::StrCat("variable '", source_embeddings, "' has shape ",
                                   ShapeString(w.source_embeddings.shape()),
                                   "; it needs rows and columns"));
  }
  KVMT_ASSIGN_OR_RETURN(w.target_embeddings, r.Required("decoder/embeddings/weight", {-1, d}));
  if (w.target_embeddings.dim(0) <= 0) {
    return vars.Error("variable 'decoder/embeddings/weight' has no rows");
  }
  const int64_t target_size = w.target_embeddings.dim(0);

  ArchitectureReader arch(vars, bin);
  KVMT_ASSIGN_OR_RETURN(const Architecture encoder, arch.Read("encoder", d));
  KVMT_ASSIGN_OR_RETURN(const Architecture decoder, arch.Read("decoder", d));
  if (encoder.num_heads != decoder.num_heads || encoder.pre_norm != decoder.pre_norm ||
      encoder.activation != decoder.activation ||
      encoder.embedding_scale != decoder.embedding_scale) {
    return absl::UnimplementedError(absl::StrCat(
        model_file,
        ": the encoder and decoder differ in num_heads, pre_norm, activation or embedding scale "
        "(encoder ",
        encoder.num_heads, "/", encoder.pre_norm, "/", static_cast<int>(encoder.activation), "/",
        encoder.embedding_scale, ", decoder ", decoder.num_heads, "/", decoder.pre_norm, "/",
        static_cast<int>(decoder.activation), "/", decoder.embedding_scale,
        "), which kvmt does not implement"));
  }
  KVMT_RETURN_IF_ERROR(ReadIgnoredAttributes(vars, arch));

  c.d_model = static_cast<int>(d);
  c.num_heads = encoder.num_heads;
  c.pre_norm = encoder.pre_norm;
  c.activation = encoder.activation;
  c.embedding_scale = encoder.embedding_scale;
  c.encoder_layers = CountLayers(vars, "encoder");
  c.decoder_layers = CountLayers(vars, "decoder");
  if (c.encoder_layers == 0 || c.decoder_layers == 0) {
    return vars.Error(absl::StrCat("variable '", c.encoder_layers == 0 ? "encoder" : "decoder",
                                   "/layer_0/self_attention/linear_0/weight' is missing"));
  }
  {
    // The first encoder FFN fixes the inner width; every other FFN must agree.
    KVMT_ASSIGN_OR_RETURN(const Tensor inner,
                          r.Required("encoder/layer_0/ffn/linear_0/weight", {-1, d}));
    if (inner.dim(0) <= 0) {
      return vars.Error("variable 'encoder/layer_0/ffn/linear_0/weight' has no rows");
    }
    c.ffn_dim = static_cast<int>(inner.dim(0));
  }
  KVMT_RETURN_IF_ERROR(ReadLayers(r, c, w));
  KVMT_ASSIGN_OR_RETURN(w.encoder_final_norm, r.OptionalNorm("encoder/layer_norm", d));
  KVMT_ASSIGN_OR_RETURN(w.decoder_final_norm, r.OptionalNorm("decoder/layer_norm", d));
  KVMT_ASSIGN_OR_RETURN(w.output_projection, r.Linear("decoder/projection", target_size, d));
  KVMT_ASSIGN_OR_RETURN(w.source_positions, PositionTable(r, "encoder", d));
  KVMT_ASSIGN_OR_RETURN(w.target_positions, PositionTable(r, "decoder", d));
  c.max_positions =
      static_cast<int>(std::min(w.source_positions.dim(0), w.target_positions.dim(0)));
  return absl::OkStatus();
}

absl::Status SetTokenIds(const RunConfig& tokens, const std::string& model_dir, Model& model) {
  ModelConfig& c = model.config;
  const Vocabulary& source = model.source_vocabulary;
  const Vocabulary& target = model.target_vocabulary;
  c.add_source_bos = tokens.add_source_bos;
  c.add_source_eos = tokens.add_source_eos;
  c.source_bos_id = source.Id(tokens.bos);
  c.source_eos_id = source.Id(tokens.eos);
  c.source_unk_id = source.Id(tokens.unk);
  c.decoder_start_id = target.Id(tokens.decoder_start);
  c.target_eos_id = target.Id(tokens.eos);
  c.target_unk_id = target.Id(tokens.unk);
  const auto missing = [&model_dir](absl::string_view role, absl::string_view which,
                                    absl::string_view token) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_dir, ": the ", which, " vocabulary has no ", role, " token '", token, "'"));
  };
  if (c.add_source_bos && c.source_bos_id < 0) return missing("start", "source", tokens.bos);
  if (c.add_source_eos && c.source_eos_id < 0) return missing("end", "source", tokens.eos);
  if (c.decoder_start_id < 0) return missing("decoder start", "target", tokens.decoder_start);
  if (c.target_eos_id < 0) return missing("end", "target", tokens.eos);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadCTranslate2Model(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  }
  const fs::path directory = fs::absolute(fs::path(dir), error).lexically_normal();
  const fs::path normalized =
      directory.has_filename() ? directory : directory.parent_path();  // Drops a trailing '/'.
  const std::string model_file = (normalized / "model.bin").string();

  KVMT_ASSIGN_OR_RETURN(const std::unique_ptr<MappedFile> file, MappedFile::Open(model_file));
  KVMT_ASSIGN_OR_RETURN(ModelBin bin, ParseModelBin(file->bytes(), model_file));
  const uint32_t binary_version = bin.binary_version;
  ModelBin header;
  header.binary_version = bin.binary_version;
  header.spec = bin.spec;
  header.spec_revision = bin.spec_revision;
  KVMT_ASSIGN_OR_RETURN(Variables vars, Variables::Create(std::move(bin), model_file));

  auto model = std::make_unique<Model>();
  model->path = normalized.string();
  model->config.format = "ctranslate2";
  KVMT_RETURN_IF_ERROR(ReadWeights(vars, header, model_file, model->config, model->weights));

  RunConfig tokens;
  if (binary_version < 6) KVMT_RETURN_IF_ERROR(ReadLegacyTokens(vars, tokens));
  const std::string config_file = (normalized / "config.json").string();
  KVMT_ASSIGN_OR_RETURN(const nlohmann::json config_json, ReadConfigJson(config_file));
  KVMT_RETURN_IF_ERROR(ApplyConfigJson(config_json, config_file, binary_version >= 6, tokens));
  model->config.layer_norm_epsilon = tokens.layer_norm_epsilon;
  KVMT_RETURN_IF_ERROR(vars.CheckAllUsed());

  KVMT_ASSIGN_OR_RETURN(const std::string source_variable, EncoderEmbeddingName(vars));
  KVMT_RETURN_IF_ERROR(LoadVocabularies(normalized, tokens, source_variable, model_file, *model));
  KVMT_RETURN_IF_ERROR(SetTokenIds(tokens, model->path, *model));
  KVMT_RETURN_IF_ERROR(LoadTokenizers(normalized, *model));
  KVMT_RETURN_IF_ERROR(ValidateWeights(model->config, model->weights, model_file));
  return model;
}

}  // namespace kvmt
