// Sizes and counts read from model files are checked against what the files really hold before
// anything is allocated: crafted files of a few hundred bytes that declare gigabytes fail with an
// error, and the largest heap request made while loading them stays small. The largest request is
// seen by interposing malloc and friends (operator new and std::aligned_alloc go through them);
// under a sanitizer, whose runtime owns malloc, by the sanitizer's allocation hooks instead.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/ctranslate2_reader.h"
#include "model/marian_reader.h"
#include "model/safetensors.h"
#include "model/vocabulary.h"
#include "nlohmann/json.hpp"
#include "tests/model/ct2_tiny_model.h"
#include "tests/model/marian_tiny_model.h"
#include "tests/sanitizers/sanitized.h"

#ifdef KVMT_SANITIZED
#include <sanitizer/allocator_interface.h>
#endif

namespace {

std::atomic<bool> recording{false};
std::atomic<size_t> largest{0};
// While recording, larger requests are refused (the load then fails or throws std::bad_alloc),
// so that a regression fails this test instead of taking the machine's memory.
constexpr size_t kRefuseAbove = size_t{1} << 30;

// False when the request must be refused.
bool Record(size_t size) {
  if (!recording.load(std::memory_order_relaxed)) return true;
  size_t seen = largest.load(std::memory_order_relaxed);
  while (size > seen && !largest.compare_exchange_weak(seen, size)) {
  }
  return size <= kRefuseAbove;
}

}  // namespace

#ifdef KVMT_SANITIZED
namespace {
void MallocHook(const volatile void*, size_t size) { Record(size); }
void FreeHook(const volatile void*) {}
[[maybe_unused]] const int kHooksInstalled =
    __sanitizer_install_malloc_and_free_hooks(MallocHook, FreeHook);
}  // namespace
#else
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);

void* malloc(size_t size) { return Record(size) ? __libc_malloc(size) : nullptr; }
void* calloc(size_t count, size_t size) {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) bytes = SIZE_MAX;
  return Record(bytes) ? __libc_calloc(count, size) : nullptr;
}
void* realloc(void* ptr, size_t size) { return Record(size) ? __libc_realloc(ptr, size) : nullptr; }
void* memalign(size_t alignment, size_t size) {
  return Record(size) ? __libc_memalign(alignment, size) : nullptr;
}
void* aligned_alloc(size_t alignment, size_t size) {
  return Record(size) ? __libc_memalign(alignment, size) : nullptr;
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!Record(size)) return ENOMEM;
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif

namespace kvmt {
namespace {

using testing::Ct2ModelWriter;
using ::testing::HasSubstr;
using testing::TinyModel;
using testing::TinyModelOptions;
namespace fs = std::filesystem;

// The largest single heap request `fn` makes.
template <typename Fn>
size_t LargestAllocation(Fn&& fn) {
  largest = 0;
  recording = true;
  fn();
  recording = false;
  return largest;
}

constexpr size_t kSmall = size_t{1} << 20;

fs::path NewDir(const std::string& name) {
  static int counter = 0;
  const fs::path dir = fs::path(::testing::TempDir()) /
                       absl::StrCat("kvmt_alloc_", getpid(), "_", name, "_", counter++);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(AllocationProbe, SeesTensorsAndVectors) {
  // Without this the tests below could not fail.
  EXPECT_GE(LargestAllocation([] { Tensor t({int64_t{1} << 22}); }), size_t{16} << 20);
  EXPECT_GE(LargestAllocation([] { std::vector<char> v(size_t{8} << 20); }), size_t{8} << 20);
  EXPECT_GT(kRefuseAbove, size_t{16} << 20);
}

// A version-6 model.bin header declaring `count` variables.
std::string Header(uint32_t count) {
  std::string out;
  Ct2ModelWriter::Append(out, uint32_t{6});
  Ct2ModelWriter::AppendString(out, "TransformerSpec");
  Ct2ModelWriter::Append(out, uint32_t{7});
  Ct2ModelWriter::Append(out, count);
  return out;
}

TEST(ModelFileLimits, CTranslate2FilesThatDeclareGigabytes) {
  std::vector<std::pair<std::string, std::string>> files;  // (what it declares, bytes)
  files.emplace_back("4294967295 variables", Header(0xffffffffu));
  {
    std::string bytes = Header(1);
    Ct2ModelWriter::AppendString(bytes, "x");
    Ct2ModelWriter::Append(bytes, uint8_t{3});
    for (int i = 0; i < 3; ++i) Ct2ModelWriter::Append(bytes, uint32_t{0xffffffffu});
    Ct2ModelWriter::Append(bytes, uint8_t{0});
    Ct2ModelWriter::Append(bytes, uint32_t{16});
    files.emplace_back("a [2^32-1]^3 shape", bytes + std::string(16, '\0'));
  }
  {
    std::string bytes = Header(1);
    Ct2ModelWriter::AppendString(bytes, "x");
    Ct2ModelWriter::Append(bytes, uint8_t{1});
    Ct2ModelWriter::Append(bytes, uint32_t{0x3fffffffu});
    Ct2ModelWriter::Append(bytes, uint8_t{0});
    Ct2ModelWriter::Append(bytes, uint32_t{0xfffffffcu});
    files.emplace_back("4 GiB of data", bytes + std::string(64, '\0'));
  }
  {
    std::string bytes = Header(1);
    Ct2ModelWriter::Append(bytes, uint16_t{0xffff});
    files.emplace_back("a 64 KiB name", bytes + std::string(64, 'a'));
  }
  {
    std::string bytes;  // Version 1: item size and element count.
    Ct2ModelWriter::Append(bytes, uint32_t{1});
    Ct2ModelWriter::Append(bytes, uint32_t{1});
    Ct2ModelWriter::AppendString(bytes, "x");
    Ct2ModelWriter::Append(bytes, uint8_t{1});
    Ct2ModelWriter::Append(bytes, uint32_t{0xffffffffu});
    Ct2ModelWriter::Append(bytes, uint8_t{4});
    Ct2ModelWriter::Append(bytes, uint32_t{0xffffffffu});
    files.emplace_back("16 GiB in version 1", bytes);
  }
  {
    std::string bytes = Header(1);
    Ct2ModelWriter::AppendString(bytes, "x");
    Ct2ModelWriter::Append(bytes, uint8_t{0});
    Ct2ModelWriter::Append(bytes, uint8_t{0});
    Ct2ModelWriter::Append(bytes, uint32_t{4});
    bytes += std::string(4, '\0');
    Ct2ModelWriter::Append(bytes, uint32_t{0xffffffffu});
    files.emplace_back("4294967295 aliases", bytes + std::string(16, '\0'));
  }
  for (const auto& [what, bytes] : files) {
    ASSERT_LT(bytes.size(), 200u) << what;
    const fs::path dir = NewDir("ct2");
    TinyModel(TinyModelOptions{}).Write(dir);
    TinyModel::WriteFile(dir / "model.bin", bytes);
    absl::Status status;
    const size_t peak =
        LargestAllocation([&] { status = LoadCTranslate2Model(dir.string()).status(); });
    EXPECT_FALSE(status.ok()) << what;
    EXPECT_THAT(status.message(), HasSubstr("model.bin")) << what;
    EXPECT_LT(peak, kSmall) << what << ": " << status;
  }
}

TEST(ModelFileLimits, SafetensorsHeadersThatDeclareGigabytes) {
  const auto file = [](const std::string& header, uint64_t header_size, size_t data) {
    std::string bytes(sizeof(header_size), '\0');
    std::memcpy(bytes.data(), &header_size, sizeof(header_size));
    return bytes + header + std::string(data, '\0');
  };
  const std::string huge_shape =
      R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})";
  const std::string huge_end = R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,9e18]}})";
  const std::string huge_range =
      R"({"x":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}})";
  const std::string zero_row =
      R"({"x":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"a 2^64-1 byte header", file("{}", UINT64_MAX, 8)},
      {"a 2^64-element shape", file(huge_shape, huge_shape.size(), 16)},
      {"offsets past 2^63", file(huge_end, huge_end.size(), 16)},
      {"4 GiB of data", file(huge_range, huge_range.size(), 16)},
      {"a zero-row tensor with 2^62-element rows", file(zero_row, zero_row.size(), 0)},
  };
  for (const auto& [what, bytes] : files) {
    ASSERT_LT(bytes.size(), 200u) << what;
    const fs::path path = NewDir("safetensors") / "model.safetensors";
    testing::WriteFileBytes(path, bytes);
    const size_t peak = LargestAllocation([&] {
      absl::StatusOr<SafetensorsFile> opened = SafetensorsFile::Open(path.string());
      if (!opened.ok()) return;
      for (const std::string& name : opened->Names()) (void)opened->ReadFloat(name);
    });
    EXPECT_LT(peak, kSmall) << what;
  }
}

TEST(ModelFileLimits, MarianConfigsThatDeclareGigabytes) {
  struct Case {
    nlohmann::json fields;  // Replace the tiny model's.
    const char* error;
  };
  const Case cases[] = {
      // 2^31-1 generated positions of d_model 8: 64 GiB.
      {{{"max_position_embeddings", 2147483647}},
       "'max_position_embeddings' = 2147483647 exceeds 16384"},
      {{{"max_position_embeddings", 16385}}, "exceeds 16384"},
      {{{"max_position_embeddings", 1e30}}, "must be an integer"},
      {{{"d_model", 2147483646}}, "has shape [297, 8], expected [297, 2147483646]"},
      {{{"encoder_ffn_dim", 2147483647}, {"decoder_ffn_dim", 2147483647}},
       "has shape [16, 8], expected [2147483647, 8]"},
      {{{"vocab_size", 2147483647}}, "297 entries, but"},
      {{{"encoder_layers", 2147483647}}, "layers.1.self_attn_layer_norm.weight' is missing"},
  };
  for (const Case& c : cases) {
    const fs::path dir = NewDir("marian");
    testing::WriteTinyMarianModel(dir);
    nlohmann::json config = testing::TinyMarianConfig(testing::TinyMarianOptions{});
    config.update(c.fields);
    testing::WriteFileBytes(dir / "config.json", config.dump());
    absl::Status status;
    const size_t peak = LargestAllocation([&] { status = LoadMarianModel(dir.string()).status(); });
    EXPECT_THAT(status.message(), HasSubstr(c.error)) << c.fields;
    EXPECT_LT(peak, kSmall) << c.fields << ": " << status;
  }
}

TEST(ModelFileLimits, MarianWeightsAreCheckedBeforeTheyAreFused) {
  // d_model 32768 with a three-entry vocabulary: 393 KiB of embeddings, while one fused Q/K/V
  // projection of that width would be 12 GiB. The projections are missing, which must be found
  // before anything of their size is allocated.
  const fs::path dir = NewDir("marian_fused");
  testing::WriteTinyMarianModel(dir);
  const int d = 32768;
  nlohmann::json config = testing::TinyMarianConfig(testing::TinyMarianOptions{});
  config["d_model"] = d;
  config["encoder_attention_heads"] = 1;
  config["decoder_attention_heads"] = 1;
  config["vocab_size"] = 3;
  config["pad_token_id"] = 2;
  config["decoder_start_token_id"] = 2;
  testing::WriteFileBytes(dir / "config.json", config.dump());
  testing::WriteFileBytes(dir / "vocab.json", R"({"</s>":0,"<unk>":1,"<pad>":2})");
  const std::string norm = "model.encoder.layers.0.self_attn_layer_norm.";
  testing::WriteFileBytes(
      dir / "model.safetensors",
      testing::SafetensorsBytes({{"model.shared.weight", {{3, d}, std::vector<float>(3 * d, 0.5f)}},
                                 {norm + "weight", {{d}, std::vector<float>(d, 1.0f)}},
                                 {norm + "bias", {{d}, std::vector<float>(d, 0.0f)}}}));
  absl::Status status;
  const size_t peak = LargestAllocation([&] { status = LoadMarianModel(dir.string()).status(); });
  EXPECT_THAT(status.message(), HasSubstr("self_attn.q_proj.weight' is missing"));
  EXPECT_LT(peak, size_t{4} << 20) << status;
}

TEST(ModelFileLimits, VocabulariesAreProportionalToTheirFiles) {
  const fs::path dir = NewDir("vocabulary");
  const std::vector<std::pair<std::string, std::string>> files = {
      {"vocabulary.json", R"(["a","b",)" + std::string(100, '[')},
      {"vocabulary.txt", std::string(100, '\n')},
  };
  for (const auto& [name, bytes] : files) {
    const std::string path = (dir / name).string();
    testing::WriteFileBytes(path, bytes);
    const size_t peak = LargestAllocation([&path] { (void)ReadVocabularyFile(path); });
    EXPECT_LT(peak, size_t{64} << 10) << name;
  }
  testing::WriteTinyMarianModel(dir / "marian");
  testing::WriteFileBytes(dir / "marian" / "vocab.json", R"({"</s>":2147483647,"<unk>":1})");
  absl::Status status;
  const size_t peak =
      LargestAllocation([&] { status = LoadMarianModel((dir / "marian").string()).status(); });
  EXPECT_THAT(status.message(), HasSubstr("has id 2147483647"));
  EXPECT_LT(peak, kSmall);
}

}  // namespace
}  // namespace kvmt
