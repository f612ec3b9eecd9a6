#include "model/safetensors.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Bytes(const void* data, size_t size) {
  return std::string(static_cast<const char*>(data), size);
}

std::string U64(uint64_t value) { return Bytes(&value, sizeof(value)); }

std::string F32s(const std::vector<float>& values) {
  return Bytes(values.data(), values.size() * sizeof(float));
}

std::string U16s(const std::vector<uint16_t>& values) {
  return Bytes(values.data(), values.size() * sizeof(uint16_t));
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kvmt_safetensors_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes raw bytes to a fresh file and returns its path.
  std::string WriteRaw(const std::string& bytes) {
    const std::string path = (dir_ / absl::StrCat("f", count_++, ".safetensors")).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // A well-formed file: length, header, data.
  std::string Write(const std::string& header, const std::string& data) {
    return WriteRaw(absl::StrCat(U64(header.size()), header, data));
  }

  std::filesystem::path dir_;
  int count_ = 0;
};

TEST_F(SafetensorsTest, ReadsF32F16AndBf16WithMetadata) {
  const std::string f32 = F32s({1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f});
  // float16: 1, -2, 0x3555 = 0.333251953125, smallest subnormal 2^-24, +inf, max 65504.
  const std::string f16 = U16s({0x3C00, 0xC000, 0x3555, 0x0001, 0x7C00, 0x7BFF});
  // bfloat16: 1, -5, 0x3EAB = 0.333984375.
  const std::string bf16 = U16s({0x3F80, 0xC0A0, 0x3EAB});
  const std::string scalar = F32s({42.0f});
  const size_t a = f32.size(), b = a + f16.size(), c = b + bf16.size(), d = c + scalar.size();
  const std::string header =
      absl::StrCat(R"({"__metadata__":{"format":"pt"},)",
                   R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,)", a, "]},",
                   R"("h":{"dtype":"F16","shape":[6],"data_offsets":[)", a, ",", b, "]},",
                   R"("b":{"dtype":"BF16","shape":[3,1],"data_offsets":[)", b, ",", c, "]},",
                   R"("s":{"dtype":"F32","shape":[],"data_offsets":[)", c, ",", d, "]},",
                   R"("empty":{"dtype":"F32","shape":[0,4],"data_offsets":[)", d, ",", d, "]}}   ");
  const std::string path = Write(header, f32 + f16 + bf16 + scalar);

  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->Contains("w"));
  EXPECT_FALSE(file->Contains("__metadata__"));
  EXPECT_THAT(file->Names(), ElementsAre("w", "h", "b", "s", "empty"));

  absl::StatusOr<Tensor> w = file->ReadFloat("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(w->shape(), ElementsAre(2, 3));
  EXPECT_THAT(std::vector<float>(w->data(), w->data() + 6),
              ElementsAre(1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f));

  absl::StatusOr<Tensor> h = file->ReadFloat("h");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->data()[0], 1.0f);
  EXPECT_EQ(h->data()[1], -2.0f);
  EXPECT_EQ(h->data()[2], 0.333251953125f);
  EXPECT_EQ(h->data()[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(h->data()[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h->data()[5], 65504.0f);

  absl::StatusOr<Tensor> bf = file->ReadFloat("b");
  ASSERT_TRUE(bf.ok()) << bf.status();
  EXPECT_THAT(bf->shape(), ElementsAre(3, 1));
  EXPECT_THAT(std::vector<float>(bf->data(), bf->data() + 3),
              ElementsAre(1.0f, -5.0f, 0.333984375f));

  absl::StatusOr<Tensor> s = file->ReadFloat("s");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->data()[0], 42.0f);

  absl::StatusOr<Tensor> empty = file->ReadFloat("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size(), 0);
}

TEST_F(SafetensorsTest, MissingFileNamesIt) {
  const std::string path = (dir_ / "absent.safetensors").string();
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

TEST_F(SafetensorsTest, TruncatedBeforeHeaderLength) {
  const std::string path = WriteRaw(std::string("\x10\x00\x00", 3));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("truncated")));
}

TEST_F(SafetensorsTest, HeaderLengthPastTheEnd) {
  const std::string path = WriteRaw(U64(1000) + R"({"a":1})");
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("header length 1000")));
}

TEST_F(SafetensorsTest, HugeHeaderLengthDoesNotOverflow) {
  const std::string path =
      WriteRaw(absl::StrCat(U64(std::numeric_limits<uint64_t>::max() - 3), "{}"));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("runs past the end"));
}

TEST_F(SafetensorsTest, BadHeaderJson) {
  const std::string path = Write(R"({"w":{"dtype":"F32",)", F32s({1}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("not valid JSON")));
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  const std::string path = Write("[1,2]", "");
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("not a JSON object"));
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", F32s({1, 2, 3}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(path), HasSubstr("'w'"), HasSubstr("outside the data section")));
}

TEST_F(SafetensorsTest, OffsetsReversed) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", F32s({1, 2, 3}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr("'w'"), HasSubstr("data_offsets")));
}

TEST_F(SafetensorsTest, ShapeDoesNotMatchByteRange) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", F32s({1, 2, 3}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(path), HasSubstr("'w'"), HasSubstr("shape [2, 2] of F32")));
}

TEST_F(SafetensorsTest, OverflowingShape) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})",
            F32s({1}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr("'w'"), HasSubstr("overflows")));
}

TEST_F(SafetensorsTest, NegativeOrFractionalShape) {
  for (const char* shape : {"[-1]", "[1.5]", "\"3\""}) {
    const std::string path =
        Write(absl::StrCat(R"({"w":{"dtype":"F32","shape":)", shape, R"(,"data_offsets":[0,4]}})"),
              F32s({1}));
    absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
    EXPECT_FALSE(file.ok()) << shape;
    EXPECT_THAT(file.status().message(), AllOf(HasSubstr("'w'"), HasSubstr("shape"))) << shape;
  }
}

TEST_F(SafetensorsTest, UnknownDtypeFailsAtOpen) {
  const std::string path =
      Write(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", F32s({1}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr("'w'"), HasSubstr("unknown dtype 'Q7'")));
}

TEST_F(SafetensorsTest, IntegerDtypeFailsWhenReadAsFloat) {
  const int64_t ids[2] = {3, 4};
  const std::string path = Write(R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
                                 R"("w":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})",
                                 Bytes(ids, sizeof(ids)) + F32s({5}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<Tensor> tensor = file->ReadFloat("ids");
  EXPECT_FALSE(tensor.ok());
  EXPECT_THAT(tensor.status().message(),
              AllOf(HasSubstr(path), HasSubstr("'ids'"), HasSubstr("I64")));
  absl::StatusOr<Tensor> w = file->ReadFloat("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->data()[0], 5.0f);
}

TEST_F(SafetensorsTest, MissingTensorNamesFileAndTensor) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", F32s({1}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->Find("v"), nullptr);
  absl::StatusOr<Tensor> tensor = file->ReadFloat("v");
  EXPECT_EQ(tensor.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tensor.status().message(), AllOf(HasSubstr(path), HasSubstr("'v'")));
}

TEST_F(SafetensorsTest, EntryWithoutFields) {
  for (const char* entry : {R"("w":3)", R"("w":{"shape":[1],"data_offsets":[0,4]})",
                            R"("w":{"dtype":"F32","data_offsets":[0,4]})",
                            R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0]})"}) {
    const std::string path = Write(absl::StrCat("{", entry, "}"), F32s({1}));
    absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
    EXPECT_FALSE(file.ok()) << entry;
    EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("'w'"))) << entry;
  }
}

TEST_F(SafetensorsTest, TensorStaysReadableAfterTheFileObjectMoves) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", F32s({4, 5}));
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  SafetensorsFile moved = *std::move(file);
  absl::StatusOr<Tensor> w = moved.ReadFloat("w");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->data()[1], 5.0f);
}

}  // namespace
}  // namespace kvmt
