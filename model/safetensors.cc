#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace kvmt {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is read in place");

class SafetensorsFile::Mapping {
 public:
  Mapping(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  ~Mapping() {
    if (size_ > 0) munmap(const_cast<uint8_t*>(data_), size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
};

namespace {

// Bytes per element of every dtype the format defines; 0 for an unknown name.
int DtypeSize(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "BOOL" || dtype == "U8" || dtype == "I8" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2") {
    return 1;
  }
  return 0;
}

float HalfToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // Inf or NaN.
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal half: shift the mantissa up until its leading one becomes implicit.
    int shift = 0;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

float Bfloat16ToFloat(uint16_t value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value) << 16);
}

absl::Status HeaderError(const std::string& path, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": tensor '", name, "' in the header: ", what));
}

absl::StatusOr<SafetensorsFile::Entry> ParseEntry(const std::string& path, const std::string& name,
                                                  const nlohmann::json& value, uint64_t data_size) {
  if (!value.is_object()) return HeaderError(path, name, "is not a JSON object");
  SafetensorsFile::Entry entry;

  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) {
    return HeaderError(path, name, "has no string 'dtype'");
  }
  entry.dtype = dtype->get<std::string>();
  const int element_size = DtypeSize(entry.dtype);
  if (element_size == 0) return HeaderError(path, name, "unknown dtype '" + entry.dtype + "'");

  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    return HeaderError(path, name, "has no array 'shape'");
  }
  uint64_t elements = 1;
  for (const nlohmann::json& dim : *shape) {
    if (!dim.is_number_unsigned()) {
      return HeaderError(path, name, "'shape' holds something other than non-negative integers");
    }
    const uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(elements, d, &elements)) {
      return HeaderError(path, name, "'shape' overflows");
    }
    entry.shape.push_back(static_cast<int64_t>(d));
  }

  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    return HeaderError(path, name, "'data_offsets' is not two non-negative integers");
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size) {
    return HeaderError(path, name,
                       absl::StrCat("data_offsets [", entry.begin, ", ", entry.end,
                                    "] fall outside the data section of ", data_size, " bytes"));
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<uint64_t>(element_size), &bytes) ||
      bytes != entry.end - entry.begin) {
    return HeaderError(path, name,
                       absl::StrCat("shape [", absl::StrJoin(entry.shape, ", "), "] of ",
                                    entry.dtype, " needs ", elements, " x ", element_size,
                                    " bytes but data_offsets span ", entry.end - entry.begin));
  }
  return entry;
}

}  // namespace

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat: ", std::strerror(error)));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": truncated: ", file_size, " bytes, shorter than the 8-byte header length"));
  }
  void* address = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  close(fd);
  if (address == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": cannot mmap: ", std::strerror(map_error)));
  }
  auto mapping = std::make_shared<const Mapping>(static_cast<const uint8_t*>(address), file_size);

  uint64_t header_size = 0;
  std::memcpy(&header_size, mapping->data(), sizeof(header_size));
  if (header_size > file_size - 8) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header length ", header_size,
                                                   " runs past the end of the file (", file_size,
                                                   " bytes)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(mapping->data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_size);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the header is not a JSON object"));
  }

  const uint64_t data_offset = 8 + header_size;
  const uint64_t data_size = file_size - data_offset;
  absl::flat_hash_map<std::string, Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    absl::StatusOr<Entry> entry = ParseEntry(path, name, value, data_size);
    if (!entry.ok()) return entry.status();
    entries.emplace(name, *std::move(entry));
  }
  return SafetensorsFile(path, std::move(mapping), data_offset, std::move(entries));
}

const SafetensorsFile::Entry* SafetensorsFile::Find(absl::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::pair<uint64_t, std::string>> ordered;
  ordered.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) ordered.emplace_back(entry.begin, name);
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> names;
  names.reserve(ordered.size());
  for (auto& [begin, name] : ordered) names.push_back(std::move(name));
  return names;
}

absl::StatusOr<Tensor> SafetensorsFile::ReadFloat(absl::string_view name) const {
  const Entry* entry = Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": tensor '", name, "' is missing"));
  }
  Tensor tensor(entry->shape);
  const uint8_t* bytes = mapping_->data() + data_offset_ + entry->begin;
  const int64_t n = tensor.size();
  float* out = tensor.data();
  if (entry->dtype == "F32") {
    if (n > 0) std::memcpy(out, bytes, static_cast<size_t>(n) * sizeof(float));
  } else if (entry->dtype == "F16" || entry->dtype == "BF16") {
    const bool half = entry->dtype == "F16";
    for (int64_t i = 0; i < n; ++i) {
      uint16_t value;
      std::memcpy(&value, bytes + 2 * i, sizeof(value));
      out[i] = half ? HalfToFloat(value) : Bfloat16ToFloat(value);
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor '", name, "' has dtype ",
                                                   entry->dtype,
                                                   "; only F32, F16 and BF16 are supported"));
  }
  return tensor;
}

}  // namespace kvmt
