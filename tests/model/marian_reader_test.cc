#include "model/marian_reader.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "nlohmann/json.hpp"
#include "tests/model/marian_tiny_model.h"
#include "tests/reference/cached_generation.h"

namespace kvmt {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

nlohmann::json ReadJson(const fs::path& path) { return nlohmann::json::parse(ReadBytes(path)); }

void WriteJson(const fs::path& path, const nlohmann::json& json) { WriteBytes(path, json.dump()); }

// Rewrites model.safetensors with an edited header; the data section stays as it is.
void EditSafetensorsHeader(const fs::path& path, const std::function<void(nlohmann::json&)>& edit) {
  const std::string bytes = ReadBytes(path);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), sizeof(header_size));
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  edit(header);
  const std::string text = header.dump();
  const uint64_t size = text.size();
  WriteBytes(path, absl::StrCat(std::string(reinterpret_cast<const char*>(&size), sizeof(size)),
                                text, bytes.substr(8 + header_size)));
}

// Generated HF Marian directories (tests/reference/make_marian_model.py, shared by the test
// processes of a build) and the values the generator wrote, as it dumped them.
class MarianReaderTest : public ::testing::Test {
 protected:
  struct Variant {
    const char* name;
    const char* flags;
  };

  static void SetUpTestSuite() {
    const Variant variants[] = {
        {"shared", "--seed 11"},
        {"separate",
         "--seed 12 --pre-norm --activation gelu_new --separate-vocab --dtype F16 "
         "--untied-lm-head --heads 5 --d-model 40 --ffn 48 --encoder-layers 3"},
        {"bf16",
         "--seed 13 --activation relu --no-scale-embedding --dtype BF16 --embedding-names all "
         "--no-position-tensors"},
    };
    // The three generators run side by side; the loader needs no calibrated </s>.
    absl::StatusOr<std::string> generated =
        testing::CachedGeneration("marian_reader_test", [&](const std::string& out) {
          std::string command;
          for (const Variant& v : variants) {
            absl::StrAppend(&command, KVMT_PYTHON, " ", KVMT_SOURCE_DIR,
                            "/tests/reference/make_marian_model.py ", out, "/", v.name, " ",
                            v.flags, " --eos-step 0 --source-text ", KVMT_SHARED_DIR,
                            "/testsets/flores200.devtest.eng_Latn --target-text ", KVMT_SHARED_DIR,
                            "/testsets/flores200.devtest.deu_Latn --dump ", out, "/", v.name,
                            ".json & pids=\"$pids $!\"; ");
          }
          return command + "for p in $pids; do wait $p || exit 1; done";
        });
    ASSERT_TRUE(generated.ok()) << generated.status();
    generated_ = new fs::path(*generated);
    dumps_ = new std::map<std::string, nlohmann::json>();
    for (const Variant& v : variants) {
      const fs::path dump = *generated_ / (std::string(v.name) + ".json");
      ASSERT_TRUE(fs::exists(dump)) << "the generator failed for " << v.name;
      (*dumps_)[v.name] = ReadJson(dump);
    }
    std::string pattern = (fs::temp_directory_path() / "kvmt_marian_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = new fs::path(pattern);
  }

  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    delete generated_;
    delete dumps_;
  }

  static std::string Dir(const std::string& name) { return (*generated_ / name).string(); }
  static const nlohmann::json& Dump(const std::string& name) { return dumps_->at(name); }

  // A private copy of the "shared" model to break.
  fs::path Copy() {
    const fs::path dir =
        *root_ / absl::StrCat("copy", copies_++, "_",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::copy(Dir("shared"), dir);
    return dir;
  }

  static absl::Status LoadStatus(const fs::path& dir) {
    return LoadMarianModel(dir.string()).status();
  }
  static std::string Message(const fs::path& dir) { return std::string(LoadStatus(dir).message()); }

  static fs::path* generated_;  // Shared, read only.
  static fs::path* root_;       // This process's copies.
  static std::map<std::string, nlohmann::json>* dumps_;
  int copies_ = 0;
};

fs::path* MarianReaderTest::generated_ = nullptr;
fs::path* MarianReaderTest::root_ = nullptr;
std::map<std::string, nlohmann::json>* MarianReaderTest::dumps_ = nullptr;

std::vector<float> Values(const nlohmann::json& dump, const std::string& tensor) {
  return dump["tensors"][tensor]["values"].get<std::vector<float>>();
}

std::vector<float> Rows(const Tensor& t, int64_t begin, int64_t end) {
  const int64_t width = t.rank() == 1 ? 1 : t.dim(1);
  return std::vector<float>(t.data() + begin * width, t.data() + end * width);
}

std::vector<float> All(const Tensor& t) {
  return std::vector<float>(t.data(), t.data() + t.size());
}

TEST_F(MarianReaderTest, LoadsSharedVocabularyPostNormModel) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(Dir("shared"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& model = **loaded;
  const nlohmann::json& dump = Dump("shared");
  const ModelConfig& c = model.config;
  const int d = 32;
  const int pad = dump["pad_id"];

  EXPECT_EQ(c.format, "marian");
  EXPECT_EQ(c.d_model, d);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.ffn_dim, 64);
  EXPECT_EQ(c.encoder_layers, 2);
  EXPECT_EQ(c.decoder_layers, 2);
  EXPECT_FALSE(c.pre_norm);
  EXPECT_EQ(c.activation, Activation::kSwish);
  EXPECT_EQ(c.layer_norm_epsilon, 1e-5f);
  EXPECT_FLOAT_EQ(c.embedding_scale, std::sqrt(32.0f));
  EXPECT_FALSE(c.add_source_bos);
  EXPECT_TRUE(c.add_source_eos);
  EXPECT_EQ(c.source_eos_id, 0);
  EXPECT_EQ(c.source_unk_id, 1);
  EXPECT_EQ(c.target_unk_id, 1);
  EXPECT_EQ(c.target_eos_id, 0);
  EXPECT_EQ(c.decoder_start_id, pad);
  EXPECT_THAT(c.suppressed_target_ids, ElementsAre(pad));
  EXPECT_EQ(c.default_beam_size, 4);
  EXPECT_EQ(c.max_positions, 64);
  EXPECT_TRUE(model.has_sentencepiece);

  const int vocab = dump["source_vocab_size"];
  EXPECT_EQ(model.source_vocabulary.size(), vocab);
  EXPECT_EQ(model.target_vocabulary.size(), vocab);
  EXPECT_EQ(model.source_vocabulary.Token(0), "</s>");
  EXPECT_EQ(model.source_vocabulary.Token(1), "<unk>");
  EXPECT_EQ(model.source_vocabulary.Token(pad), "<pad>");
  for (const std::string piece : dump["dropped_source_pieces"]) {
    EXPECT_EQ(model.source_vocabulary.Id(piece), -1) << piece;
  }

  const TransformerWeights& w = model.weights;
  EXPECT_THAT(w.source_embeddings.shape(), ElementsAre(vocab, d));
  EXPECT_EQ(w.source_embeddings.data(), w.target_embeddings.data());
  EXPECT_EQ(w.output_projection.weight.data(), w.target_embeddings.data());
  EXPECT_THAT(All(w.source_embeddings), ElementsAreArray(Values(dump, "model.shared.weight")));
  EXPECT_THAT(All(w.output_projection.bias), ElementsAreArray(Values(dump, "final_logits_bias")));

  const std::string e0 = "model.encoder.layers.0.";
  const EncoderLayerWeights& l0 = w.encoder_layers[0];
  EXPECT_THAT(l0.self_attention_qkv.weight.shape(), ElementsAre(3 * d, d));
  EXPECT_THAT(Rows(l0.self_attention_qkv.weight, 0, d),
              ElementsAreArray(Values(dump, e0 + "self_attn.q_proj.weight")));
  EXPECT_THAT(Rows(l0.self_attention_qkv.weight, d, 2 * d),
              ElementsAreArray(Values(dump, e0 + "self_attn.k_proj.weight")));
  EXPECT_THAT(Rows(l0.self_attention_qkv.weight, 2 * d, 3 * d),
              ElementsAreArray(Values(dump, e0 + "self_attn.v_proj.weight")));
  EXPECT_THAT(Rows(l0.self_attention_qkv.bias, 2 * d, 3 * d),
              ElementsAreArray(Values(dump, e0 + "self_attn.v_proj.bias")));
  EXPECT_THAT(All(l0.self_attention_norm.gamma),
              ElementsAreArray(Values(dump, e0 + "self_attn_layer_norm.weight")));
  EXPECT_THAT(All(l0.ffn_inner.weight), ElementsAreArray(Values(dump, e0 + "fc1.weight")));

  const std::string d1 = "model.decoder.layers.1.";
  const DecoderLayerWeights& l1 = w.decoder_layers[1];
  EXPECT_THAT(l1.cross_attention_kv.weight.shape(), ElementsAre(2 * d, d));
  EXPECT_THAT(Rows(l1.cross_attention_kv.weight, 0, d),
              ElementsAreArray(Values(dump, d1 + "encoder_attn.k_proj.weight")));
  EXPECT_THAT(Rows(l1.cross_attention_kv.bias, d, 2 * d),
              ElementsAreArray(Values(dump, d1 + "encoder_attn.v_proj.bias")));
  EXPECT_THAT(All(l1.ffn_norm.beta), ElementsAreArray(Values(dump, d1 + "final_layer_norm.bias")));
  EXPECT_TRUE(w.encoder_final_norm.gamma.empty());
  EXPECT_TRUE(w.decoder_final_norm.gamma.empty());

  // HuggingFace's sinusoids, computed by the generator from HF's own definition.
  const std::vector<float> positions = dump["positions"].get<std::vector<float>>();
  ASSERT_THAT(w.source_positions.shape(), ElementsAre(64, d));
  ASSERT_EQ(static_cast<int64_t>(positions.size()), w.source_positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    ASSERT_NEAR(w.source_positions.data()[i], positions[i], 1e-6) << "element " << i;
    ASSERT_NEAR(w.target_positions.data()[i], positions[i], 1e-6) << "element " << i;
  }
}

TEST_F(MarianReaderTest, LoadModelPicksTheMarianReader) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadModel(Dir("separate"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->config.format, "marian");
  EXPECT_EQ((*loaded)->target_vocabulary.size(), Dump("separate")["target_vocab_size"].get<int>());
}

TEST_F(MarianReaderTest, SourceTokenizerSplitsOffLanguageCodes) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(Dir("shared"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const nlohmann::json& sample = Dump("shared")["spm_samples"]["source.spm"][0];
  const std::vector<std::string> pieces = sample["pieces"];
  const std::string text = sample["text"];

  absl::StatusOr<std::vector<std::string>> plain = (*loaded)->source_tokenizer->Encode(text);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, pieces);

  absl::StatusOr<std::vector<std::string>> coded =
      (*loaded)->source_tokenizer->Encode(">>deu<< " + text);
  ASSERT_TRUE(coded.ok()) << coded.status();
  std::vector<std::string> expected = {">>deu<<"};
  expected.insert(expected.end(), pieces.begin(), pieces.end());
  EXPECT_EQ(*coded, expected);
  EXPECT_GE((*loaded)->source_vocabulary.Id(">>deu<<"), 0);
}

TEST_F(MarianReaderTest, LoadsSeparateVocabularyPreNormFloat16Model) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(Dir("separate"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& model = **loaded;
  const nlohmann::json& dump = Dump("separate");
  const ModelConfig& c = model.config;
  const int d = 40;
  EXPECT_TRUE(c.pre_norm);
  EXPECT_EQ(c.activation, Activation::kGeluTanh);
  EXPECT_EQ(c.num_heads, 5);
  EXPECT_EQ(c.ffn_dim, 48);
  EXPECT_EQ(c.encoder_layers, 3);
  EXPECT_EQ(c.decoder_layers, 2);
  EXPECT_FLOAT_EQ(c.embedding_scale, std::sqrt(40.0f));

  const int source_size = dump["source_vocab_size"];
  const int target_size = dump["target_vocab_size"];
  ASSERT_NE(source_size, target_size);
  EXPECT_EQ(model.source_vocabulary.size(), source_size);
  EXPECT_EQ(model.target_vocabulary.size(), target_size);
  EXPECT_EQ(model.target_vocabulary.Token(dump["pad_id"].get<int>()), "<pad>");
  EXPECT_THAT(c.suppressed_target_ids, ElementsAre(dump["pad_id"].get<int>()));

  const TransformerWeights& w = model.weights;
  EXPECT_THAT(w.source_embeddings.shape(), ElementsAre(source_size, d));
  EXPECT_THAT(w.target_embeddings.shape(), ElementsAre(target_size, d));
  EXPECT_THAT(All(w.source_embeddings),
              ElementsAreArray(Values(dump, "model.encoder.embed_tokens.weight")));
  EXPECT_THAT(All(w.target_embeddings),
              ElementsAreArray(Values(dump, "model.decoder.embed_tokens.weight")));
  EXPECT_NE(w.output_projection.weight.data(), w.target_embeddings.data());
  EXPECT_THAT(All(w.output_projection.weight), ElementsAreArray(Values(dump, "lm_head.weight")));
  EXPECT_THAT(Rows(w.encoder_layers[0].self_attention_qkv.weight, d, 2 * d),
              ElementsAreArray(Values(dump, "model.encoder.layers.0.self_attn.k_proj.weight")));
  EXPECT_THAT(w.encoder_final_norm.gamma.shape(), ElementsAre(d));
  EXPECT_THAT(w.decoder_final_norm.gamma.shape(), ElementsAre(d));
}

TEST_F(MarianReaderTest, LoadsBfloat16ModelWithEveryEmbeddingName) {
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(Dir("bf16"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& model = **loaded;
  const nlohmann::json& dump = Dump("bf16");
  EXPECT_EQ(model.config.activation, Activation::kRelu);
  EXPECT_EQ(model.config.embedding_scale, 1.0f);
  EXPECT_THAT(All(model.weights.source_embeddings),
              ElementsAreArray(Values(dump, "model.shared.weight")));
  EXPECT_EQ(model.weights.source_embeddings.data(), model.weights.target_embeddings.data());
  EXPECT_THAT(All(model.weights.encoder_layers[0].ffn_inner.weight),
              ElementsAreArray(Values(dump, "model.encoder.layers.0.fc1.weight")));
}

TEST_F(MarianReaderTest, ActivationNames) {
  const std::pair<const char*, Activation> names[] = {{"swish", Activation::kSwish},
                                                      {"silu", Activation::kSwish},
                                                      {"gelu", Activation::kGelu},
                                                      {"gelu_new", Activation::kGeluTanh},
                                                      {"gelu_pytorch_tanh", Activation::kGeluTanh},
                                                      {"relu", Activation::kRelu}};
  const fs::path dir = Copy();
  for (const auto& [name, activation] : names) {
    nlohmann::json config = ReadJson(dir / "config.json");
    config["activation_function"] = name;
    WriteJson(dir / "config.json", config);
    absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(dir.string());
    ASSERT_TRUE(loaded.ok()) << name << ": " << loaded.status();
    EXPECT_EQ((*loaded)->config.activation, activation) << name;
  }
}

TEST_F(MarianReaderTest, DefaultsFollowMarianConfig) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  const int pad = config["pad_token_id"];
  config.erase("decoder_start_token_id");
  config.erase("num_beams");
  config.erase("scale_embedding");
  config["decoder_vocab_size"] = nullptr;
  WriteJson(dir / "config.json", config);
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->config.decoder_start_id, pad);
  EXPECT_EQ((*loaded)->config.default_beam_size, 0);
  EXPECT_EQ((*loaded)->config.embedding_scale, 1.0f);
}

TEST_F(MarianReaderTest, MissingFinalLogitsBiasMeansNone) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors",
                        [](nlohmann::json& h) { h.erase("final_logits_bias"); });
  absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->weights.output_projection.bias.empty());
}

// --- Malformed directories: each error names the file and the field or tensor. ---------------

TEST_F(MarianReaderTest, MissingConfig) {
  const fs::path dir = Copy();
  fs::remove(dir / "config.json");
  const absl::Status status = LoadStatus(dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr((dir / "config.json").string()));
}

TEST_F(MarianReaderTest, ConfigNotJson) {
  const fs::path dir = Copy();
  WriteBytes(dir / "config.json", "{\"d_model\": 32,");
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("config.json"), HasSubstr("JSON")));
}

TEST_F(MarianReaderTest, ConfigFieldErrors) {
  struct Case {
    const char* field;
    nlohmann::json value;  // null: remove the field.
    const char* message;
  };
  const Case cases[] = {
      {"d_model", nullptr, "'d_model' is missing"},
      {"d_model", "32", "'d_model' must be an integer"},
      {"d_model", 0, "'d_model' = 0 must be >= 1"},
      {"activation_function", "tanh", "'activation_function' = 'tanh' is not supported"},
      {"activation_function", nullptr, "'activation_function' is missing"},
      {"decoder_attention_heads", 8, "'decoder_attention_heads' = 8 differs"},
      {"encoder_attention_heads", 5, "'encoder_attention_heads' = 5 does not divide"},
      {"decoder_ffn_dim", 32, "'decoder_ffn_dim' = 32 differs"},
      {"eos_token_id", nullptr, "'eos_token_id' is missing"},
      {"pad_token_id", 100000, "'pad_token_id' = 100000 is outside"},
      {"scale_embedding", "yes", "'scale_embedding' must be true or false"},
      {"max_position_embeddings", -4, "'max_position_embeddings' = -4 must be >= 1"},
  };
  for (const Case& c : cases) {
    const fs::path dir = Copy();
    nlohmann::json config = ReadJson(dir / "config.json");
    if (c.value.is_null()) {
      config.erase(c.field);
    } else {
      config[c.field] = c.value;
    }
    WriteJson(dir / "config.json", config);
    const absl::Status status = LoadStatus(dir);
    EXPECT_FALSE(status.ok()) << c.field;
    EXPECT_THAT(std::string(status.message()),
                AllOf(HasSubstr("config.json"), HasSubstr(c.message)))
        << c.field;
  }
}

TEST_F(MarianReaderTest, VocabularyWithAGapInIds) {
  const fs::path dir = Copy();
  nlohmann::json vocab = ReadJson(dir / "vocab.json");
  vocab["<unk>"] = vocab.size();
  WriteJson(dir / "vocab.json", vocab);
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("vocab.json"), HasSubstr("'<unk>'"), HasSubstr("0..n-1")));
}

TEST_F(MarianReaderTest, VocabularyWithADuplicateId) {
  const fs::path dir = Copy();
  nlohmann::json vocab = ReadJson(dir / "vocab.json");
  vocab["<unk>"] = 0;
  WriteJson(dir / "vocab.json", vocab);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("vocab.json"), HasSubstr("id 0")));
}

TEST_F(MarianReaderTest, VocabularyWithANonIntegerId) {
  const fs::path dir = Copy();
  nlohmann::json vocab = ReadJson(dir / "vocab.json");
  vocab["<unk>"] = "1";
  WriteJson(dir / "vocab.json", vocab);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("vocab.json"), HasSubstr("'<unk>'")));
}

TEST_F(MarianReaderTest, VocabularySizeDiffersFromConfig) {
  const fs::path dir = Copy();
  nlohmann::json vocab = ReadJson(dir / "vocab.json");
  vocab["extra-piece"] = vocab.size();
  WriteJson(dir / "vocab.json", vocab);
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("vocab.json"), HasSubstr("config.json"), HasSubstr("vocab_size")));
}

TEST_F(MarianReaderTest, MissingSourceSpm) {
  const fs::path dir = Copy();
  fs::remove(dir / "source.spm");
  const absl::Status status = LoadStatus(dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr((dir / "source.spm").string()));
}

TEST_F(MarianReaderTest, CorruptTargetSpm) {
  const fs::path dir = Copy();
  WriteBytes(dir / "target.spm", "\x0a\x03not a model");
  EXPECT_THAT(Message(dir), HasSubstr((dir / "target.spm").string()));
}

TEST_F(MarianReaderTest, MissingSafetensors) {
  const fs::path dir = Copy();
  fs::remove(dir / "model.safetensors");
  EXPECT_THAT(Message(dir), HasSubstr("model.safetensors"));
}

TEST_F(MarianReaderTest, MissingTensor) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors",
                        [](nlohmann::json& h) { h.erase("model.decoder.layers.1.fc2.bias"); });
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'model.decoder.layers.1.fc2.bias'"),
                    HasSubstr("missing")));
}

TEST_F(MarianReaderTest, WrongTensorShape) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors", [](nlohmann::json& h) {
    h["model.encoder.layers.0.fc1.weight"]["shape"] = {32, 64};
  });
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"),
                    HasSubstr("'model.encoder.layers.0.fc1.weight' has shape [32, 64], expected "
                              "[64, 32]")));
}

// The same bytes as 32 int64 values: the shape no longer fits the model.
TEST_F(MarianReaderTest, Int64TensorInPlaceOfAFloatOne) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors", [](nlohmann::json& h) {
    h["model.encoder.layers.0.fc1.bias"]["dtype"] = "I64";
    h["model.encoder.layers.0.fc1.bias"]["shape"] = {32};
  });
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'model.encoder.layers.0.fc1.bias'"),
                    HasSubstr("[32]")));
}

TEST_F(MarianReaderTest, IntegerTensorWithTheRightShape) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors", [](nlohmann::json& h) {
    nlohmann::json& entry = h["model.encoder.layers.0.fc1.bias"];
    entry["dtype"] = "I32";  // Same element size as F32, so shape and bytes still agree.
  });
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'model.encoder.layers.0.fc1.bias'"),
                    HasSubstr("I32")));
}

TEST_F(MarianReaderTest, ShapeAndByteSizeDisagree) {
  const fs::path dir = Copy();
  EditSafetensorsHeader(dir / "model.safetensors", [](nlohmann::json& h) {
    h["model.encoder.layers.0.fc1.bias"]["shape"] = {65};
  });
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'model.encoder.layers.0.fc1.bias'"),
                    HasSubstr("data_offsets span")));
}

TEST_F(MarianReaderTest, TruncatedSafetensors) {
  const fs::path dir = Copy();
  const std::string bytes = ReadBytes(dir / "model.safetensors");
  WriteBytes(dir / "model.safetensors", bytes.substr(0, bytes.size() * 6 / 10));
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("tensor '"),
                                  HasSubstr("outside the data section")));
}

TEST_F(MarianReaderTest, SafetensorsHeaderLengthPastTheEnd) {
  const fs::path dir = Copy();
  std::string bytes = ReadBytes(dir / "model.safetensors");
  const uint64_t length = bytes.size();
  std::memcpy(bytes.data(), &length, sizeof(length));
  WriteBytes(dir / "model.safetensors", bytes);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("runs past the end")));
}

TEST_F(MarianReaderTest, SafetensorsHeaderNotJson) {
  const fs::path dir = Copy();
  std::string bytes = ReadBytes(dir / "model.safetensors");
  bytes[8] = 'x';
  WriteBytes(dir / "model.safetensors", bytes);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("not valid JSON")));
}

TEST_F(MarianReaderTest, FileHasMoreLayersThanConfig) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  config["encoder_layers"] = 1;
  WriteJson(dir / "config.json", config);
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("model.encoder.layers.1.fc1.weight"),
                    HasSubstr("encoder_layers = 1")));
}

TEST_F(MarianReaderTest, ConfigHasMoreLayersThanFile) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  config["decoder_layers"] = 3;
  WriteJson(dir / "config.json", config);
  EXPECT_THAT(Message(dir),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("'model.decoder.layers.2.")));
}

// The tiny Marian directory written from C++ (no Python): its source tokenizer, and the plain
// SentencePiece tokenizer of the same model (target.spm is the same file).
class MarianLanguageCodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path dir =
        fs::path(::testing::TempDir()) / absl::StrCat("kvmt_marian_codes_", getpid());
    testing::WriteTinyMarianModel(dir);
    absl::StatusOr<std::unique_ptr<Model>> loaded = LoadMarianModel(dir.string());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    model_ = loaded->release();
    fs::remove_all(dir);
  }
  static void TearDownTestSuite() { delete model_; }

  static std::vector<std::string> Encode(const std::string& text) {
    absl::StatusOr<std::vector<std::string>> tokens = model_->source_tokenizer->Encode(text);
    EXPECT_TRUE(tokens.ok()) << tokens.status();
    return tokens.ok() ? *tokens : std::vector<std::string>{"<error>"};
  }

  static Model* model_;
};

Model* MarianLanguageCodeTest::model_ = nullptr;

TEST_F(MarianLanguageCodeTest, MatchesTransformersRegexOnRandomText) {
  // MarianTokenizer: code = re.match(">>.+<<", text), then re.sub(">>.+<<", "", text) goes to
  // SentencePiece. std::regex's '.' also stops at '\r', Python's only at '\n': no '\r' here.
  const std::regex code(">>.+<<");
  const char alphabet[] = {'>', '<', 'a', ' ', '\n'};
  std::mt19937 generator(3);
  for (int i = 0; i < 3000; ++i) {
    std::string text(generator() % 24, ' ');
    for (char& c : text) c = alphabet[generator() % sizeof(alphabet)];
    std::vector<std::string> expected;
    std::smatch leading;
    if (std::regex_search(text, leading, code, std::regex_constants::match_continuous)) {
      expected.push_back(leading.str());
    }
    absl::StatusOr<std::vector<std::string>> pieces =
        model_->target_tokenizer->Encode(std::regex_replace(text, code, ""));
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    expected.insert(expected.end(), pieces->begin(), pieces->end());
    ASSERT_EQ(Encode(text), expected) << "'" << text << "'";
  }
}

TEST_F(MarianLanguageCodeTest, LongLinesOfMarkersTakeLinearTime) {
  // Looking for the closing "<<" again at every ">>" took minutes for these.
  std::string many_lines = "<<\n";
  while (many_lines.size() < (size_t{256} << 10)) many_lines += ">>x\n";
  for (const std::string& text : {std::string(size_t{256} << 10, '>'), many_lines}) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(Encode(text).empty());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  }
}

TEST_F(MarianReaderTest, PreNormNeedsTheFinalLayerNorms) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  config["normalize_before"] = true;
  WriteJson(dir / "config.json", config);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"),
                                  HasSubstr("'model.encoder.layer_norm.weight'")));
}

TEST_F(MarianReaderTest, UntiedOutputNeedsLmHead) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  config["tie_word_embeddings"] = false;
  WriteJson(dir / "config.json", config);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"), HasSubstr("'lm_head.weight'")));
}

TEST_F(MarianReaderTest, SeparateVocabularyWithoutDecoderEmbeddings) {
  const fs::path dir = Copy();
  nlohmann::json config = ReadJson(dir / "config.json");
  config["share_encoder_decoder_embeddings"] = false;
  WriteJson(dir / "config.json", config);
  EXPECT_THAT(Message(dir), AllOf(HasSubstr("model.safetensors"),
                                  HasSubstr("'model.encoder.embed_tokens.weight'")));
}

}  // namespace
}  // namespace kvmt
