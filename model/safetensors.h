// SafetensorsFile: a read-only view of a .safetensors file (8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then the raw data), memory-mapped so that
// only the tensors a reader asks for are touched. Every error names the file and, where one is at
// fault, the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace kvmt {

class SafetensorsFile {
 public:
  struct Entry {
    std::string dtype;           // As written: "F32", "F16", "BF16", "I64", ...
    std::vector<int64_t> shape;  // [] for a scalar.
    uint64_t begin = 0;          // Byte range in the data section, [begin, end).
    uint64_t end = 0;
  };

  // Maps `path` and checks the whole header: its length, its JSON, every entry's dtype, shape
  // and byte range against the file size.
  static absl::StatusOr<SafetensorsFile> Open(const std::string& path);

  const std::string& path() const { return path_; }
  bool Contains(absl::string_view name) const { return entries_.contains(name); }
  // Nullptr when absent.
  const Entry* Find(absl::string_view name) const;
  // Tensor names in the order of their data.
  std::vector<std::string> Names() const;

  // The tensor as float32, converted from F32, F16 or BF16; any other dtype is an error.
  absl::StatusOr<Tensor> ReadFloat(absl::string_view name) const;

 private:
  class Mapping;
  SafetensorsFile(std::string path, std::shared_ptr<const Mapping> mapping, uint64_t data_offset,
                  absl::flat_hash_map<std::string, Entry> entries)
      : path_(std::move(path)),
        mapping_(std::move(mapping)),
        data_offset_(data_offset),
        entries_(std::move(entries)) {}

  std::string path_;
  std::shared_ptr<const Mapping> mapping_;
  uint64_t data_offset_ = 0;  // Where the data section starts in the file.
  absl::flat_hash_map<std::string, Entry> entries_;
};

}  // namespace kvmt
