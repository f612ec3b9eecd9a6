// The CTranslate2 reader on the real models of ../shared/models and on tiny models written by
// tests/model/ct2_model_writer.h (every binary version, dtype and malformation).
#include "model/ctranslate2_reader.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "tests/model/ct2_model_writer.h"
#include "tests/model/ct2_tiny_model.h"

namespace kvmt {
namespace {

namespace fs = std::filesystem;
using ::kvmt::testing::Ct2DType;
using ::kvmt::testing::Ct2ModelWriter;
using ::kvmt::testing::TinyModel;
using ::kvmt::testing::TinyModelOptions;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string SharedModel(const std::string& name) {
  return std::string(KVMT_SHARED_DIR) + "/models/" + name;
}

// A fresh empty directory per call.
fs::path NewDir(const std::string& name) {
  static int counter = 0;
  const fs::path dir =
      fs::path(::testing::TempDir()) /
      ("kvmt_ct2_" + std::to_string(::getpid()) + "_" + name + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// Every tensor of the weights under the CTranslate2 name it is read from; int8 linear weights
// (kept as stored) dequantised.
std::vector<std::pair<std::string, Tensor>> NamedTensors(const TransformerWeights& w) {
  std::vector<std::pair<std::string, Tensor>> named = {
      {"encoder/embeddings/weight", w.source_embeddings},
      {"decoder/embeddings/weight", w.target_embeddings},
      {"decoder/projection/weight", w.output_projection.Float32Weight()},
      {"decoder/projection/bias", w.output_projection.bias},
      {"encoder/layer_norm/gamma", w.encoder_final_norm.gamma},
      {"encoder/layer_norm/beta", w.encoder_final_norm.beta},
      {"decoder/layer_norm/gamma", w.decoder_final_norm.gamma},
      {"decoder/layer_norm/beta", w.decoder_final_norm.beta}};
  const auto linear = [&named](const std::string& scope, const LinearWeights& l) {
    named.emplace_back(scope + "/weight", l.Float32Weight());
    named.emplace_back(scope + "/bias", l.bias);
  };
  const auto norm = [&named](const std::string& scope, const LayerNormWeights& n) {
    named.emplace_back(scope + "/gamma", n.gamma);
    named.emplace_back(scope + "/beta", n.beta);
  };
  for (size_t i = 0; i < w.encoder_layers.size(); ++i) {
    const std::string p = "encoder/layer_" + std::to_string(i);
    const EncoderLayerWeights& l = w.encoder_layers[i];
    norm(p + "/self_attention/layer_norm", l.self_attention_norm);
    linear(p + "/self_attention/linear_0", l.self_attention_qkv);
    linear(p + "/self_attention/linear_1", l.self_attention_output);
    norm(p + "/ffn/layer_norm", l.ffn_norm);
    linear(p + "/ffn/linear_0", l.ffn_inner);
    linear(p + "/ffn/linear_1", l.ffn_outer);
  }
  for (size_t i = 0; i < w.decoder_layers.size(); ++i) {
    const std::string p = "decoder/layer_" + std::to_string(i);
    const DecoderLayerWeights& l = w.decoder_layers[i];
    norm(p + "/self_attention/layer_norm", l.self_attention_norm);
    linear(p + "/self_attention/linear_0", l.self_attention_qkv);
    linear(p + "/self_attention/linear_1", l.self_attention_output);
    norm(p + "/attention/layer_norm", l.cross_attention_norm);
    linear(p + "/attention/linear_0", l.cross_attention_query);
    linear(p + "/attention/linear_1", l.cross_attention_kv);
    linear(p + "/attention/linear_2", l.cross_attention_output);
    norm(p + "/ffn/layer_norm", l.ffn_norm);
    linear(p + "/ffn/linear_0", l.ffn_inner);
    linear(p + "/ffn/linear_1", l.ffn_outer);
  }
  return named;
}

bool IsQuantisable(const std::string& name) { return name.ends_with("weight"); }

// ---------------------------------------------------------------------------------------------
// The real models.

class SharedModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedModelTest, LoadsWithTheExpectedConfig) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(SharedModel(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config;
  EXPECT_EQ(c.format, "ctranslate2");
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.ffn_dim, 128);
  EXPECT_EQ(c.encoder_layers, 6);
  EXPECT_EQ(c.decoder_layers, 6);
  EXPECT_TRUE(c.pre_norm);
  EXPECT_EQ(c.activation, Activation::kRelu);
  EXPECT_FLOAT_EQ(c.layer_norm_epsilon, 1e-5f);
  EXPECT_FLOAT_EQ(c.embedding_scale, std::sqrt(32.0f));
  EXPECT_FALSE(c.add_source_bos);
  EXPECT_FALSE(c.add_source_eos);
  // The vocabulary files list <blank>, <s>, </s>, then characters; 50 and 42 lines, and
  // CTranslate2 appends <unk> to reach the 51 and 43 embedding rows.
  EXPECT_EQ((*model)->source_vocabulary.size(), 51);
  EXPECT_EQ((*model)->target_vocabulary.size(), 43);
  EXPECT_EQ((*model)->weights.source_embeddings.dim(0), 51);
  EXPECT_EQ((*model)->weights.target_embeddings.dim(0), 43);
  EXPECT_EQ((*model)->source_vocabulary.Token(0), "<blank>");
  EXPECT_EQ((*model)->source_vocabulary.Token(50), "<unk>");
  EXPECT_EQ(c.decoder_start_id, 1);
  EXPECT_EQ(c.target_eos_id, 2);
  EXPECT_EQ(c.source_eos_id, 2);
  EXPECT_EQ(c.source_unk_id, 50);
  EXPECT_EQ(c.target_unk_id, 42);
  EXPECT_EQ((*model)->target_vocabulary.Token(3), "a");
  EXPECT_GE(c.max_positions, 1024);
  EXPECT_EQ((*model)->weights.source_positions.dim(0), c.max_positions);
  EXPECT_FALSE((*model)->has_sentencepiece);
  ASSERT_NE((*model)->source_tokenizer, nullptr);
  ASSERT_NE((*model)->target_tokenizer, nullptr);
  absl::StatusOr<std::vector<std::string>> tokens = (*model)->source_tokenizer->Encode("آ ز ا");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, ::testing::ElementsAre("آ", "ز", "ا"));
  EXPECT_GE((*model)->source_vocabulary.Id("ز"), 3);
}

INSTANTIATE_TEST_SUITE_P(Models, SharedModelTest,
                         ::testing::Values("ct2-v2-aren-transliteration",
                                           "ct2-v2-aren-transliteration-i8",
                                           "ct2-v2-aren-transliteration-i16",
                                           "ct2-v1-aren-transliteration",
                                           "ct2-v1-aren-transliteration-i16"),
                         [](const auto& test_info) {
                           std::string name = test_info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

std::unique_ptr<Model> LoadShared(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(SharedModel(name));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

TEST(SharedModels, ValuesMatchAnIndependentReadingOfTheFile) {
  // Read from ct2-v2-aren-transliteration/model.bin with Python's struct module.
  const std::unique_ptr<Model> model = LoadShared("ct2-v2-aren-transliteration");
  ASSERT_NE(model, nullptr);
  const TransformerWeights& w = model->weights;
  EXPECT_FLOAT_EQ(w.target_embeddings.data()[0], 0.15134596824645996f);
  EXPECT_FLOAT_EQ(w.target_embeddings.data()[2], 0.19089779257774353f);
  EXPECT_FLOAT_EQ(w.target_embeddings.data()[43 * 32 - 1], -0.1486460119485855f);
  EXPECT_FLOAT_EQ(w.encoder_layers[3].ffn_outer.bias.data()[1], 0.08405040204524994f);
  EXPECT_FLOAT_EQ(w.decoder_layers[5].cross_attention_kv.weight.data()[1], 0.32208529114723206f);
  EXPECT_FLOAT_EQ(w.decoder_layers[5].cross_attention_kv.weight.data()[64 * 32 - 1],
                  0.42895281314849854f);
  EXPECT_FLOAT_EQ(w.output_projection.bias.data()[0], -2.3551573753356934f);
}

TEST(SharedModels, Version1And2Float32WeightsAreEqual) {
  const std::unique_ptr<Model> v1 = LoadShared("ct2-v1-aren-transliteration");
  const std::unique_ptr<Model> v2 = LoadShared("ct2-v2-aren-transliteration");
  ASSERT_NE(v1, nullptr);
  ASSERT_NE(v2, nullptr);
  const auto a = NamedTensors(v1->weights);
  const auto b = NamedTensors(v2->weights);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].second.shape(), b[i].second.shape()) << a[i].first;
    ASSERT_FALSE(a[i].second.empty()) << a[i].first;
    EXPECT_EQ(
        std::memcmp(a[i].second.data(), b[i].second.data(), sizeof(float) * a[i].second.size()), 0)
        << a[i].first;
  }
}

// Quantised weights are within one quantisation step of the float32 ones, towards zero:
// before binary version 5 the converter cast without rounding. Everything else is stored in
// float32 and is equal.
void ExpectWithinQuantisationError(const Model& quantised, const Model& reference,
                                   bool per_row_int8) {
  const auto q = NamedTensors(quantised.weights);
  const auto f = NamedTensors(reference.weights);
  ASSERT_EQ(q.size(), f.size());
  for (size_t i = 0; i < q.size(); ++i) {
    const Tensor& x = q[i].second;
    const Tensor& y = f[i].second;
    ASSERT_EQ(x.shape(), y.shape()) << q[i].first;
    if (!IsQuantisable(q[i].first)) {
      EXPECT_EQ(std::memcmp(x.data(), y.data(), sizeof(float) * x.size()), 0) << q[i].first;
      continue;
    }
    const int64_t depth = x.dim(1);
    double worst = 0;
    for (int64_t r = 0; r < x.dim(0); ++r) {
      float row_max = 0;
      for (int64_t j = 0; j < depth; ++j) {
        row_max = std::max(row_max, std::fabs(y.data()[r * depth + j]));
      }
      // int8: scale 127 / row max; int16: the global scale 1000.
      const double step = per_row_int8 ? row_max / 127.0 : 1.0 / 1000.0;
      for (int64_t j = 0; j < depth; ++j) {
        const float dequantised = x.data()[r * depth + j];
        const float original = y.data()[r * depth + j];
        const double diff = std::fabs(dequantised - original);
        worst = std::max(worst, diff / step);
        ASSERT_LE(diff, step * (1 + 1e-4) + 1e-7) << q[i].first << " row " << r;
        ASSERT_LE(std::fabs(dequantised), std::fabs(original) + step * 1e-4 + 1e-7)
            << q[i].first << " row " << r << ": not truncated towards zero";
      }
    }
    EXPECT_GT(worst, 0.5) << q[i].first << " looks unquantised";
  }
}

TEST(SharedModels, Int8IsWithinQuantisationErrorOfFloat32) {
  const std::unique_ptr<Model> i8 = LoadShared("ct2-v2-aren-transliteration-i8");
  const std::unique_ptr<Model> f32 = LoadShared("ct2-v2-aren-transliteration");
  ASSERT_NE(i8, nullptr);
  ASSERT_NE(f32, nullptr);
  ExpectWithinQuantisationError(*i8, *f32, /*per_row_int8=*/true);
}

TEST(SharedModels, Int16IsWithinQuantisationErrorOfFloat32) {
  const std::unique_ptr<Model> f32 = LoadShared("ct2-v2-aren-transliteration");
  ASSERT_NE(f32, nullptr);
  for (const char* name : {"ct2-v2-aren-transliteration-i16", "ct2-v1-aren-transliteration-i16"}) {
    SCOPED_TRACE(name);
    const std::unique_ptr<Model> i16 = LoadShared(name);
    ASSERT_NE(i16, nullptr);
    ExpectWithinQuantisationError(*i16, *f32, /*per_row_int8=*/false);
  }
}

TEST(SharedModels, GeneratedPositionsPutTheFirstTokenAtPositionOne) {
  // CTranslate2's SinusoidalPositionEncoder: row t holds sin((t + 1) * w_i) then
  // cos((t + 1) * w_i), w_i = exp(-i * ln(10000) / (d / 2 - 1)).
  const std::unique_ptr<Model> model = LoadShared("ct2-v2-aren-transliteration");
  ASSERT_NE(model, nullptr);
  const Tensor& table = model->weights.target_positions;
  ASSERT_EQ(table.dim(1), 32);
  for (int t : {0, 1, 7, 1000}) {
    for (int i : {0, 1, 5, 15}) {
      const double w = std::exp(-i * std::log(10000.0) / 15.0);
      EXPECT_NEAR(table.data()[t * 32 + i], std::sin((t + 1) * w), 2e-4) << t << " " << i;
      EXPECT_NEAR(table.data()[t * 32 + 16 + i], std::cos((t + 1) * w), 2e-4) << t << " " << i;
    }
  }
}

TEST(SharedModels, LoadModelPicksTheCTranslate2Reader) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(SharedModel("ct2-v1-aren-transliteration"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config.format, "ctranslate2");
}

TEST(LoadModel, SaysWhatItLookedFor) {
  const fs::path empty = NewDir("empty");
  absl::Status status = LoadModel(empty.string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("model.bin"), HasSubstr("model.safetensors"),
                                       HasSubstr(empty.string())));
  status = LoadModel((empty / "absent").string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  status = LoadCTranslate2Model(empty.string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.ToString(), HasSubstr("model.bin"));
}

// ---------------------------------------------------------------------------------------------
// Tiny models: every binary version and dtype.

struct TinyCase {
  std::string label;
  TinyModelOptions options;
  float tolerance_steps;  // Allowed error in quantisation steps of the weights (0: exact).
};

TinyModelOptions Options(uint32_t version, std::string spec, uint32_t revision, int heads,
                         Ct2DType weights, Ct2DType others = Ct2DType::kFloat32) {
  TinyModelOptions o;
  o.binary_version = version;
  o.spec = std::move(spec);
  o.spec_revision = revision;
  o.num_heads = heads;
  o.weight_dtype = weights;
  o.other_dtype = others;
  return o;
}

std::vector<TinyCase> TinyCases() {
  std::vector<TinyCase> cases = {
      {"v1_opennmt_tf_names", Options(1, "", 1, 8, Ct2DType::kFloat32), 0},
      {"v1_int16_global_scale", Options(1, "", 1, 8, Ct2DType::kInt16), 0.5f},
      {"v2_base_float32", Options(2, "TransformerBase", 2, 8, Ct2DType::kFloat32), 0},
      {"v2_base_int8", Options(2, "TransformerBase", 2, 8, Ct2DType::kInt8), 0.5f},
      {"v2_big", Options(2, "TransformerBig", 2, 16, Ct2DType::kFloat32), 0},
      {"v3_spec_r3_tied", Options(3, "TransformerSpec", 3, 4, Ct2DType::kFloat32), 0},
      {"v4_float16", Options(4, "TransformerSpec", 4, 2, Ct2DType::kFloat16, Ct2DType::kFloat16),
       0},
      {"v5_bfloat16", Options(5, "TransformerSpec", 5, 4, Ct2DType::kBFloat16, Ct2DType::kBFloat16),
       0},
      {"v6_int8_float16", Options(6, "TransformerSpec", 6, 4, Ct2DType::kInt8, Ct2DType::kFloat16),
       0.5f},
      {"v6_r7_int16", Options(6, "TransformerSpec", 7, 4, Ct2DType::kInt16), 0.5f},
      {"v6_r7_float32_tied", Options(6, "TransformerSpec", 7, 4, Ct2DType::kFloat32), 0},
  };
  cases[1].options.int16_with_scale = false;
  cases[5].options.tie_output_projection = true;
  cases[10].options.tie_output_projection = true;
  return cases;
}

void PrintTo(const TinyCase& tiny_case, std::ostream* os) { *os << tiny_case.label; }

class TinyModelTest : public ::testing::TestWithParam<TinyCase> {};

TEST_P(TinyModelTest, LoadsEveryTensorAsWritten) {
  const TinyCase& tc = GetParam();
  const TinyModel tiny(tc.options);
  const fs::path dir = NewDir(tc.label);
  tiny.Write(dir);
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();

  const ModelConfig& c = (*model)->config;
  EXPECT_EQ(c.d_model, 16);
  EXPECT_EQ(c.num_heads, tc.options.num_heads);
  EXPECT_EQ(c.ffn_dim, 32);
  EXPECT_EQ(c.encoder_layers, 1);
  EXPECT_EQ(c.decoder_layers, 2);
  EXPECT_TRUE(c.pre_norm);
  EXPECT_FLOAT_EQ(c.embedding_scale, 4.0f);
  EXPECT_FLOAT_EQ(c.layer_norm_epsilon, 1e-5f);
  // Source: 6 tokens in the file, then the appended <unk>; the target file has its own.
  EXPECT_EQ(c.source_unk_id, 6);
  EXPECT_EQ(c.target_unk_id, 0);
  EXPECT_EQ(c.decoder_start_id, 1);
  EXPECT_EQ(c.target_eos_id, 2);
  EXPECT_EQ(c.max_positions, 1024);

  for (const auto& [name, tensor] : NamedTensors((*model)->weights)) {
    const std::vector<float>& expected = tiny.values(name);
    ASSERT_EQ(tensor.size(), static_cast<int64_t>(expected.size())) << name;
    const bool quantised = IsQuantisable(name) && tc.tolerance_steps > 0;
    const int64_t depth = tensor.dim(-1);
    for (int64_t r = 0; r < tensor.size() / depth; ++r) {
      float row_max = 0;
      for (int64_t j = 0; j < depth; ++j)
        row_max = std::max(row_max, std::fabs(expected[r * depth + j]));
      double step = 0;
      if (quantised && tc.options.weight_dtype == Ct2DType::kInt8) step = row_max / 127.0;
      if (quantised && tc.options.weight_dtype == Ct2DType::kInt16) step = 1.0 / 1000.0;
      for (int64_t j = 0; j < depth; ++j) {
        ASSERT_NEAR(tensor.data()[r * depth + j], expected[r * depth + j],
                    tc.tolerance_steps * step * (1 + 1e-4) + 1e-7)
            << name << " [" << r << ", " << j << "]";
      }
    }
  }
  const TransformerWeights& w = (*model)->weights;
  if (tc.options.tie_output_projection) {
    EXPECT_EQ(w.output_projection.weight.data(), w.target_embeddings.data());
  } else {
    EXPECT_NE(w.output_projection.weight.data(), w.target_embeddings.data());
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, TinyModelTest, ::testing::ValuesIn(TinyCases()),
                         [](const auto& test_info) { return test_info.param.label; });

absl::StatusOr<std::unique_ptr<Model>> LoadTiny(const TinyModel& tiny, const std::string& label) {
  const fs::path dir = NewDir(label);
  tiny.Write(dir);
  return LoadCTranslate2Model(dir.string());
}

TEST(TinyModels, ReadsTheActivation) {
  const std::pair<int, Activation> known[] = {{0, Activation::kRelu},
                                              {1, Activation::kGeluTanh},
                                              {2, Activation::kSwish},
                                              {3, Activation::kGelu}};
  for (const auto& [id, activation] : known) {
    TinyModelOptions o;
    o.activation = id;
    absl::StatusOr<std::unique_ptr<Model>> model = LoadTiny(TinyModel(o), "activation");
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->config.activation, activation) << id;
  }
  TinyModelOptions o;
  o.activation = 5;
  const absl::Status status = LoadTiny(TinyModel(o), "tanh").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("encoder/activation"), HasSubstr("tanh")));
}

TEST(TinyModels, UsesStoredPositionTablesAsTheyAre) {
  TinyModelOptions o;
  o.store_positions = true;
  const TinyModel tiny(o);
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTiny(tiny, "positions");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->config.max_positions, 10);
  const Tensor& source = (*model)->weights.source_positions;
  ASSERT_EQ(source.shape(), (std::vector<int64_t>{10, 16}));
  EXPECT_EQ(std::vector<float>(source.data(), source.data() + source.size()),
            tiny.values("encoder/position_encodings/encodings"));
  EXPECT_EQ((*model)->weights.target_positions.dim(0), 12);
}

TEST(TinyModels, ReadsScaleEmbeddings) {
  {
    TinyModel tiny{TinyModelOptions{}};
    tiny.writer().Remove("encoder/scale_embeddings");
    tiny.writer().Remove("decoder/scale_embeddings");
    tiny.writer().AddInt8Scalar("encoder/scale_embeddings", 0);
    tiny.writer().AddInt8Scalar("decoder/scale_embeddings", 0);
    absl::StatusOr<std::unique_ptr<Model>> model = LoadTiny(tiny, "no_scale");
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_FLOAT_EQ((*model)->config.embedding_scale, 1.0f);
  }
  {
    TinyModel tiny{TinyModelOptions{}};
    tiny.writer().Remove("encoder/scale_embeddings");
    tiny.writer().Remove("decoder/scale_embeddings");
    tiny.writer().AddScalar("encoder/scale_embeddings", 2.5f);
    tiny.writer().AddScalar("decoder/scale_embeddings", 2.5f);
    absl::StatusOr<std::unique_ptr<Model>> model = LoadTiny(tiny, "float_scale");
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_FLOAT_EQ((*model)->config.embedding_scale, 2.5f);
  }
  {
    TinyModel tiny{TinyModelOptions{}};
    tiny.writer().Remove("decoder/scale_embeddings");
    tiny.writer().AddInt8Scalar("decoder/scale_embeddings", 0);
    const absl::Status status = LoadTiny(tiny, "mixed_scale").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(status.ToString(), HasSubstr("embedding scale"));
  }
}

TEST(TinyModels, ReadsConfigJson) {
  const TinyModel tiny{TinyModelOptions{}};
  const fs::path dir = NewDir("config");
  tiny.Write(dir);
  WriteText(dir / "config.json", R"({"add_source_bos": false, "add_source_eos": true,
      "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
      "decoder_start_token": "</s>", "layer_norm_epsilon": 0.001,
      "multi_query_attention": false, "extra": [1, 2]})");
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = (*model)->config;
  EXPECT_TRUE(c.add_source_eos);
  EXPECT_FALSE(c.add_source_bos);
  EXPECT_EQ(c.source_eos_id, 2);
  EXPECT_EQ(c.decoder_start_id, 2);
  EXPECT_FLOAT_EQ(c.layer_norm_epsilon, 0.001f);
}

TEST(TinyModels, ReadsLegacyTokenAttributesBeforeVersion6) {
  TinyModel tiny(Options(5, "TransformerSpec", 5, 4, Ct2DType::kFloat32));
  tiny.writer().AddInt8Scalar("with_source_bos", 1);
  tiny.writer().AddInt8Scalar("with_target_bos", 0);
  tiny.writer().AddString("eos_token", "</s>");
  absl::StatusOr<std::unique_ptr<Model>> model = LoadTiny(tiny, "legacy");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->config.add_source_bos);
  EXPECT_EQ((*model)->config.source_bos_id, 1);
  EXPECT_EQ((*model)->config.decoder_start_id, 2);  // Without target bos, </s> starts.
}

TEST(TinyModels, ReadsJsonAndSharedVocabularies) {
  // Shared vocabulary: both embeddings need its 5 rows; the source gets the target's values.
  TinyModel tiny{TinyModelOptions{}};
  kvmt::testing::Ct2Variable* source = tiny.writer().Find("encoder/embeddings/weight");
  *source = *tiny.writer().Find("decoder/embeddings/weight");
  source->name = "encoder/embeddings/weight";
  const fs::path dir = NewDir("shared");
  tiny.Write(dir);
  fs::remove(dir / "source_vocabulary.txt");
  fs::remove(dir / "target_vocabulary.txt");
  WriteText(dir / "shared_vocabulary.json", R"(["<unk>", "<s>", "</s>", "x\ny", "y"])");
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->source_vocabulary.tokens(), (*model)->target_vocabulary.tokens());
  EXPECT_EQ((*model)->source_vocabulary.Id("x\ny"), 3);
  EXPECT_EQ((*model)->config.source_unk_id, 0);
}

// ---------------------------------------------------------------------------------------------
// SentencePiece tokenizers beside the model or in its parent (Argos Translate packages).

class SentencePieceLayoutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path dir = NewDir("spm");
    spm_ = new std::string((dir / "m.model").string());
    const std::string command =
        std::string(KVMT_PYTHON) +
        " -c \"import sentencepiece as s; s.SentencePieceTrainer.train(input='" + KVMT_SHARED_DIR +
        "/testsets/flores200.devtest.eng_Latn', model_prefix='" + (dir / "m").string() +
        "', vocab_size=300, minloglevel=2)\"";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() { delete spm_; }
  static std::string* spm_;
};

std::string* SentencePieceLayoutTest::spm_ = nullptr;

TEST_F(SentencePieceLayoutTest, LoadsSourceAndTargetSpm) {
  const fs::path dir = NewDir("spm_pair");
  TinyModel(TinyModelOptions{}).Write(dir);
  fs::copy_file(*spm_, dir / "source.spm");
  fs::copy_file(*spm_, dir / "target.spm");
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model(dir.string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->has_sentencepiece);
  absl::StatusOr<std::vector<std::string>> pieces =
      (*model)->source_tokenizer->Encode("Hello world");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  EXPECT_GT(pieces->size(), 2u);  // A whitespace split would give 2.
  EXPECT_EQ(pieces->front().rfind("\xE2\x96\x81", 0), 0u) << pieces->front();  // "▁" first.
}

TEST_F(SentencePieceLayoutTest, LoadsTheArgosPackageLayout) {
  const fs::path package = NewDir("argos");
  TinyModel(TinyModelOptions{}).Write(package / "model");
  fs::copy_file(*spm_, package / "sentencepiece.model");
  absl::StatusOr<std::unique_ptr<Model>> model = LoadCTranslate2Model((package / "model").string());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->has_sentencepiece);
  absl::StatusOr<std::vector<std::string>> pieces = (*model)->target_tokenizer->Encode("Hello");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  EXPECT_EQ(pieces->front().rfind("\xE2\x96\x81", 0), 0u) << pieces->front();
}

TEST_F(SentencePieceLayoutTest, ReportsAnIncompletePairAndABrokenModel) {
  const fs::path dir = NewDir("spm_half");
  TinyModel(TinyModelOptions{}).Write(dir);
  fs::copy_file(*spm_, dir / "source.spm");
  absl::Status status = LoadCTranslate2Model(dir.string()).status();
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("source.spm"), HasSubstr("target.spm")));
  WriteText(dir / "target.spm", "not a sentencepiece model");
  status = LoadCTranslate2Model(dir.string()).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.ToString(), HasSubstr("target.spm"));
}

// ---------------------------------------------------------------------------------------------
// Malformed and unsupported files.

class MalformedTest : public ::testing::Test {
 protected:
  // A valid directory whose model.bin is `bytes`.
  absl::Status LoadBytes(const std::string& bytes, const std::string& label = "bytes") {
    const fs::path dir = NewDir(label);
    TinyModel(TinyModelOptions{}).Write(dir);
    TinyModel::WriteFile(dir / "model.bin", bytes);
    return LoadCTranslate2Model(dir.string()).status();
  }

  absl::Status LoadWriter(const TinyModel& tiny, const std::string& label = "writer") {
    return LoadTiny(tiny, label).status();
  }

  // The header and variable count of a version-6 TransformerSpec file.
  static std::string Header(uint32_t count, uint32_t version = 6) {
    std::string out;
    Ct2ModelWriter::Append(out, version);
    Ct2ModelWriter::AppendString(out, "TransformerSpec");
    Ct2ModelWriter::Append(out, uint32_t{7});
    Ct2ModelWriter::Append(out, count);
    return out;
  }
};

TEST_F(MalformedTest, EveryTruncationIsAnError) {
  for (const uint32_t version : {2u, 6u}) {
    // Version 2 stores item sizes (int16 weights here), version 6 dtype ids (float16) and an
    // alias.
    TinyModelOptions o =
        version == 2 ? Options(2, "TransformerSpec", 3, 2, Ct2DType::kInt16)
                     : Options(6, "TransformerSpec", 7, 2, Ct2DType::kFloat16, Ct2DType::kFloat16);
    o.tie_output_projection = version == 6;
    o.d_model = 4;
    o.ffn_dim = 4;
    o.decoder_layers = 1;
    const TinyModel tiny(o);
    const fs::path dir = NewDir("truncated");
    tiny.Write(dir);
    ASSERT_TRUE(LoadCTranslate2Model(dir.string()).ok());
    const std::string bytes = tiny.writer().Serialize();
    for (size_t length = 0; length < bytes.size(); ++length) {
      TinyModel::WriteFile(dir / "model.bin", bytes.substr(0, length));
      const absl::Status status = LoadCTranslate2Model(dir.string()).status();
      ASSERT_FALSE(status.ok()) << "version " << version << ", length " << length;
      ASSERT_THAT(status.ToString(), HasSubstr("model.bin")) << length;
    }
  }
}

TEST_F(MalformedTest, CorruptedBytesNeverCrash) {
  // Bytes changed anywhere (headers, counts, shapes, data) load or fail, never crash; the
  // mutations are dense in the first bytes, where the counts and shapes live.
  TinyModelOptions o = Options(6, "TransformerSpec", 7, 2, Ct2DType::kInt8, Ct2DType::kFloat16);
  o.d_model = 4;
  o.ffn_dim = 4;
  o.decoder_layers = 1;
  const TinyModel tiny(o);
  const fs::path dir = NewDir("corrupted");
  tiny.Write(dir);
  const std::string bytes = tiny.writer().Serialize();
  std::mt19937 generator(11);
  int failures = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string mutated = bytes;
    const size_t span = i % 2 == 0 ? 256 : mutated.size();
    for (int k = 0; k < 1 + i % 3; ++k) {
      mutated[generator() % span] = static_cast<char>(generator() & 0xff);
    }
    TinyModel::WriteFile(dir / "model.bin", mutated);
    failures += LoadCTranslate2Model(dir.string()).ok() ? 0 : 1;
  }
  EXPECT_GT(failures, 100);
}

TEST_F(MalformedTest, RejectsUnknownVersionsAndSpecs) {
  TinyModel tiny{TinyModelOptions{}};
  std::string bytes = tiny.writer().Serialize();
  bytes[0] = 7;
  absl::Status status = LoadBytes(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("model.bin"), HasSubstr("binary version 7")));
  bytes[0] = 0;
  EXPECT_THAT(LoadBytes(bytes).ToString(), HasSubstr("binary version 0"));

  const TinyModel whisper(Options(6, "WhisperSpec", 3, 4, Ct2DType::kFloat32));
  status = LoadWriter(whisper);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.ToString(), HasSubstr("'WhisperSpec'"));

  const TinyModel future(Options(6, "TransformerSpec", 8, 4, Ct2DType::kFloat32));
  EXPECT_THAT(LoadWriter(future).ToString(), HasSubstr("spec revision 8"));
}

TEST_F(MalformedTest, RejectsAnUnknownDtype) {
  TinyModel tiny{TinyModelOptions{}};
  tiny.writer().Find("decoder/layer_1/ffn/linear_0/bias")->dtype = static_cast<Ct2DType>(9);
  const absl::Status status = LoadWriter(tiny);
  EXPECT_THAT(status.ToString(),
              AllOf(HasSubstr("decoder/layer_1/ffn/linear_0/bias"), HasSubstr("dtype id 9")));
  TinyModel int32{TinyModelOptions{}};
  int32.writer().Find("encoder/embeddings/weight")->bytes.resize(7 * 16 * 4);
  int32.writer().Find("encoder/embeddings/weight")->dtype = Ct2DType::kInt32;
  EXPECT_EQ(LoadWriter(int32).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(MalformedTest, AbsurdCountsFailBeforeAllocating) {
  // Each of these would ask for gigabytes if believed.
  EXPECT_THAT(LoadBytes(Header(0xffffffffu)).ToString(), HasSubstr("4294967295 variables"));

  std::string rank = Header(1);
  Ct2ModelWriter::AppendString(rank, "x");
  Ct2ModelWriter::Append(rank, uint8_t{200});
  rank += std::string(16, '\0');
  EXPECT_THAT(LoadBytes(rank).ToString(), AllOf(HasSubstr("variable 'x'"), HasSubstr("rank 200")));

  std::string dims = Header(1);
  Ct2ModelWriter::AppendString(dims, "x");
  Ct2ModelWriter::Append(dims, uint8_t{3});
  for (int i = 0; i < 3; ++i) Ct2ModelWriter::Append(dims, uint32_t{0xffffffffu});
  Ct2ModelWriter::Append(dims, uint8_t{0});
  Ct2ModelWriter::Append(dims, uint32_t{16});
  dims += std::string(16, '\0');
  EXPECT_THAT(LoadBytes(dims).ToString(),
              AllOf(HasSubstr("variable 'x'"), HasSubstr("does not match its 16 bytes")));

  std::string bytes = Header(1);
  Ct2ModelWriter::AppendString(bytes, "x");
  Ct2ModelWriter::Append(bytes, uint8_t{1});
  Ct2ModelWriter::Append(bytes, uint32_t{0x3fffffffu});
  Ct2ModelWriter::Append(bytes, uint8_t{0});
  Ct2ModelWriter::Append(bytes, uint32_t{0xfffffffcu});
  bytes += std::string(64, '\0');
  EXPECT_THAT(LoadBytes(bytes).ToString(),
              AllOf(HasSubstr("truncated"), HasSubstr("variable 'x': data"),
                    HasSubstr("4294967292 bytes")));

  std::string name = Header(1);
  Ct2ModelWriter::Append(name, uint16_t{0xffff});
  name += std::string(64, 'a');
  EXPECT_THAT(LoadBytes(name).ToString(), AllOf(HasSubstr("truncated"), HasSubstr("65535")));

  std::string elements;  // Version 1: item size and element count.
  Ct2ModelWriter::Append(elements, uint32_t{1});
  Ct2ModelWriter::Append(elements, uint32_t{1});
  Ct2ModelWriter::AppendString(elements, "x");
  Ct2ModelWriter::Append(elements, uint8_t{1});
  Ct2ModelWriter::Append(elements, uint32_t{0xffffffffu});
  Ct2ModelWriter::Append(elements, uint8_t{4});
  Ct2ModelWriter::Append(elements, uint32_t{0xffffffffu});
  EXPECT_THAT(LoadBytes(elements).ToString(), HasSubstr("17179869180 bytes"));

  TinyModel tiny{TinyModelOptions{}};
  std::string aliases = tiny.writer().Serialize();
  aliases.replace(aliases.size() - 4, 4, std::string(4, '\xff'));
  EXPECT_THAT(LoadBytes(aliases).ToString(), HasSubstr("4294967295 aliases"));
}

TEST_F(MalformedTest, RejectsBadRecords) {
  TinyModel tiny{TinyModelOptions{}};
  EXPECT_THAT(LoadBytes(tiny.writer().Serialize() + "x").ToString(),
              HasSubstr("1 unexpected bytes"));

  TinyModel twice{TinyModelOptions{}};
  twice.writer().AddScalar("decoder/layer_0/ffn/linear_0/bias", 1.0f);
  EXPECT_THAT(LoadWriter(twice).ToString(),
              HasSubstr("'decoder/layer_0/ffn/linear_0/bias' is stored twice"));

  TinyModel alias{TinyModelOptions{}};
  alias.writer().AddAlias("decoder/projection/weight2", "nowhere/weight");
  EXPECT_THAT(LoadWriter(alias).ToString(), HasSubstr("'nowhere/weight', which does not exist"));

  std::string unterminated = Header(1);
  Ct2ModelWriter::Append(unterminated, uint16_t{2});
  unterminated += "ab";
  unterminated += std::string(16, '\0');
  EXPECT_THAT(LoadBytes(unterminated).ToString(), HasSubstr("not NUL-terminated"));
}

TEST_F(MalformedTest, NamesAVariableWithTheWrongShape) {
  TinyModel tiny{TinyModelOptions{}};
  kvmt::testing::Ct2Variable* v = tiny.writer().Find("decoder/layer_1/attention/linear_1/weight");
  v->shape = {16, 16};
  v->bytes.resize(16 * 16 * 4);
  const absl::Status status = LoadWriter(tiny);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.ToString(),
              AllOf(HasSubstr("model.bin: variable 'decoder/layer_1/attention/linear_1/weight': "
                              "expected shape [32, 16], got [16, 16]")));
}

TEST_F(MalformedTest, NamesAMissingVariable) {
  TinyModel tiny{TinyModelOptions{}};
  ASSERT_TRUE(tiny.writer().Remove("decoder/layer_1/ffn/linear_1/weight"));
  EXPECT_THAT(LoadWriter(tiny).ToString(),
              HasSubstr("model.bin: variable 'decoder/layer_1/ffn/linear_1/weight' is missing"));
  TinyModel no_scale(Options(6, "TransformerSpec", 7, 4, Ct2DType::kInt8));
  ASSERT_TRUE(no_scale.writer().Remove("decoder/projection/weight_scale"));
  EXPECT_THAT(LoadWriter(no_scale).ToString(), HasSubstr("'decoder/projection/weight_scale'"));
}

TEST_F(MalformedTest, RefusesFeaturesItDoesNotImplement) {
  const auto expect_unimplemented = [this](TinyModel& tiny, const std::string& needle) {
    const absl::Status status = LoadWriter(tiny);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
    EXPECT_THAT(status.ToString(), HasSubstr(needle));
  };
  TinyModel layernorm_embedding{TinyModelOptions{}};
  layernorm_embedding.writer().AddFloats("encoder/layernorm_embedding/gamma", {16},
                                         std::vector<float>(16, 1.0f));
  expect_unimplemented(layernorm_embedding, "encoder/layernorm_embedding/gamma");

  TinyModel relative{TinyModelOptions{}};
  relative.writer().AddFloats("encoder/layer_0/self_attention/relative_position_keys", {5, 4},
                              std::vector<float>(20, 0.0f));
  expect_unimplemented(relative, "relative_position_keys");

  TinyModel unknown{TinyModelOptions{}};
  unknown.writer().AddScalar("decoder/mystery", 1.0f);
  expect_unimplemented(unknown, "decoder/mystery");

  TinyModel rms{TinyModelOptions{}};
  ASSERT_TRUE(rms.writer().Remove("encoder/layer_norm/beta"));
  expect_unimplemented(rms, "RMS");

  TinyModel features{TinyModelOptions{}};
  features.writer().AddFloats("encoder/embeddings_1/weight", {3, 16}, std::vector<float>(48, 0));
  expect_unimplemented(features, "encoder/embeddings_1/weight");

  TinyModel alibi{TinyModelOptions{}};
  alibi.writer().Find("decoder/alibi")->bytes = std::string(1, '\1');
  expect_unimplemented(alibi, "decoder/alibi");

  TinyModel off{TinyModelOptions{}};
  off.writer().AddInt8Scalar("layernorm_embedding", 0);  // A false flag: the feature is off.
  EXPECT_TRUE(LoadWriter(off).ok());

  TinyModel heads{TinyModelOptions{}};
  heads.writer().Remove("decoder/num_heads");
  heads.writer().AddInt16Scalar("decoder/num_heads", 8);
  expect_unimplemented(heads, "num_heads");
}

TEST_F(MalformedTest, ChecksTheVocabularies) {
  const TinyModel tiny{TinyModelOptions{}};
  const fs::path dir = NewDir("vocab");
  tiny.Write(dir);
  fs::remove(dir / "target_vocabulary.txt");
  absl::Status status = LoadCTranslate2Model(dir.string()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.ToString(), HasSubstr("target_vocabulary"));

  WriteText(dir / "target_vocabulary.txt", "<unk>\n<s>\n</s>\nx\ny\nz\n");
  status = LoadCTranslate2Model(dir.string()).status();
  EXPECT_THAT(status.ToString(),
              AllOf(HasSubstr("target_vocabulary.txt: 6 tokens"),
                    HasSubstr("'decoder/embeddings/weight'"), HasSubstr("5 rows")));

  WriteText(dir / "target_vocabulary.txt", "<unk>\n<s>\n</s>\nx\nx\n");
  EXPECT_THAT(LoadCTranslate2Model(dir.string()).status().ToString(),
              AllOf(HasSubstr("target_vocabulary.txt"), HasSubstr("'x' appears twice")));

  WriteText(dir / "target_vocabulary.txt", "<unk>\n<go>\n</s>\nx\ny\n");
  EXPECT_THAT(LoadCTranslate2Model(dir.string()).status().ToString(),
              HasSubstr("no decoder start token '<s>'"));

  WriteText(dir / "target_vocabulary.txt", "<unk>\n<s>\n</s>\nx\ny\n");
  WriteText(dir / "target_vocabulary.json", "[]");
  EXPECT_THAT(LoadCTranslate2Model(dir.string()).status().ToString(),
              HasSubstr("both target_vocabulary.json and target_vocabulary.txt"));
}

TEST_F(MalformedTest, ChecksConfigJson) {
  const TinyModel tiny{TinyModelOptions{}};
  const fs::path dir = NewDir("bad_config");
  tiny.Write(dir);
  const auto load_with = [&dir](const std::string& json) {
    WriteText(dir / "config.json", json);
    return LoadCTranslate2Model(dir.string()).status();
  };
  EXPECT_THAT(load_with("{").ToString(),
              AllOf(HasSubstr("config.json"), HasSubstr("not valid JSON")));
  EXPECT_THAT(load_with("[1]").ToString(), HasSubstr("expected a JSON object"));
  EXPECT_THAT(load_with(R"({"add_source_bos": "yes"})").ToString(),
              AllOf(HasSubstr("config.json"), HasSubstr("'add_source_bos' should be a boolean")));
  EXPECT_THAT(load_with(R"({"layer_norm_epsilon": -1})").ToString(),
              HasSubstr("'layer_norm_epsilon'"));
  EXPECT_EQ(load_with(R"({"decoder_start_token": null})").code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(load_with(R"({"add_source_bos": true, "bos_token": "<go>"})").ToString(),
              HasSubstr("source vocabulary has no start token '<go>'"));
  EXPECT_EQ(load_with(R"({"quantization_type": 1})").code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(load_with(R"({"layer_norm_epsilon": null})").ok());
}

}  // namespace
}  // namespace kvmt
