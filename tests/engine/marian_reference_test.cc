// The engine against the independent PyTorch reference (tests/reference/marian_reference.py) on
// random HuggingFace Marian models written by tests/reference/make_marian_model.py: encoder
// output, teacher-forced logits, greedy and beam search with and without the KV cache, and text
// in and out through SentencePiece and vocab.json.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "decoder/decoder.h"
#include "encoder/encoder.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "nlohmann/json.hpp"
#include "tests/reference/cached_generation.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

namespace fs = std::filesystem;

struct Variant {
  const char* name;
  int seed;
  const char* flags;
};

// Pre- and post-norm; relu, gelu (erf and tanh) and swish; shared and separate vocabularies;
// 3, 4 and 5 heads; scaled and unscaled embeddings; tied and untied output projections.
const Variant kVariants[] = {
    {"PostNormSwishShared", 1, "--activation swish"},
    {"PreNormGeluSeparateFiveHeads", 2,
     "--pre-norm --activation gelu --separate-vocab --heads 5 --d-model 40 --ffn 80"},
    {"PostNormReluUnscaledThreeHeadsUntied", 3,
     "--activation relu --no-scale-embedding --heads 3 --d-model 24 --untied-lm-head"},
    {"PreNormSwishBfloat16UnevenLayers", 4,
     "--pre-norm --activation swish --dtype BF16 --encoder-layers 3 --decoder-layers 1"},
    {"PostNormGeluTanhSeparateUnscaled", 5,
     "--activation gelu_new --separate-vocab --no-scale-embedding"},
    {"PreNormReluThreeHeads", 6, "--pre-norm --activation relu --heads 3 --d-model 48 --ffn 96"},
};

void PrintTo(const Variant& variant, std::ostream* os) { *os << variant.name; }

constexpr float kTolerance = 1e-4f;

bool Close(float actual, float expected) {
  return std::abs(actual - expected) <= kTolerance * std::max(1.0f, std::abs(expected));
}

// Every element of `actual` (row-major) against the nested JSON array `expected`.
void ExpectAllClose(const Tensor& actual, const nlohmann::json& expected, const std::string& what) {
  ASSERT_EQ(actual.rank(), 2) << what;
  ASSERT_EQ(actual.dim(0), static_cast<int64_t>(expected.size())) << what;
  int reported = 0;
  for (int64_t r = 0; r < actual.dim(0); ++r) {
    const std::vector<float> row = expected[r].get<std::vector<float>>();
    ASSERT_EQ(actual.dim(1), static_cast<int64_t>(row.size())) << what;
    for (int64_t c = 0; c < actual.dim(1); ++c) {
      const float a = actual.data()[r * actual.dim(1) + c];
      if (!Close(a, row[c]) && reported++ < 5) {
        ADD_FAILURE() << what << ": row " << r << ", column " << c << ": engine " << a
                      << ", reference " << row[c];
      }
    }
  }
}

std::string Describe(const SearchHypothesis& h) {
  return absl::StrCat("[", absl::StrJoin(h.ids, " "), "] score ", h.score);
}

// The reference's search record against the engine's result for one segment.
void ExpectSameSearch(const SearchResult& actual, const nlohmann::json& expected,
                      const std::string& what) {
  const nlohmann::json& hypotheses = expected["hypotheses"];
  ASSERT_EQ(actual.hypotheses.size(), hypotheses.size()) << what;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const std::vector<int32_t> ids = hypotheses[i]["ids"].get<std::vector<int32_t>>();
    const float score = hypotheses[i]["score"];
    EXPECT_EQ(actual.hypotheses[i].ids, ids)
        << what << ", hypothesis " << i << ": engine " << Describe(actual.hypotheses[i])
        << ", reference [" << absl::StrJoin(ids, " ") << "] score " << score
        << " (smallest score gap at a decision of the reference: " << expected["min_margin"] << ")";
    EXPECT_NEAR(actual.hypotheses[i].score, score, kTolerance) << what << ", hypothesis " << i;
  }
}

class MarianReferenceTest : public ::testing::TestWithParam<Variant> {
 protected:
  static void SetUpTestSuite() {
    // Texts: a few short lines of real English, language codes (a leading one is a token, any
    // other is dropped), characters no piece covers.
    std::ifstream testset(std::string(KVMT_SHARED_DIR) + "/testsets/flores200.devtest.eng_Latn");
    std::string texts;
    int kept = 0;
    for (std::string line; kept < 3 && std::getline(testset, line);) {
      if (line.size() < 90) {
        absl::StrAppend(&texts, line, "\n");
        ++kept;
      }
    }
    ASSERT_EQ(kept, 3) << "no short lines in the test set";
    absl::StrAppend(&texts, ">>deu<< Hello world.\n", "A code >>fra<< inside is dropped.\n",
                    "Gr\u00fc\u00dfe aus M\u00fcnchen! \u65e5\u672c\n");

    // Generator then reference, for every variant at once.
    absl::StatusOr<std::string> generated =
        testing::CachedGeneration("marian_reference_test", [&texts](const std::string& out) {
          // A quoted here-document: the shell expands nothing in the texts.
          std::string command =
              absl::StrCat("cat > ", out, "/texts.txt <<'KVMT_TEXTS'\n", texts, "KVMT_TEXTS\n");
          const std::string python = KVMT_PYTHON;
          const std::string scripts = std::string(KVMT_SOURCE_DIR) + "/tests/reference/";
          const std::string testsets = std::string(KVMT_SHARED_DIR) + "/testsets/";
          for (const Variant& v : kVariants) {
            const std::string dir = absl::StrCat(out, "/", v.name);
            absl::StrAppend(&command, "(", python, " ", scripts, "make_marian_model.py ", dir,
                            " --seed ", v.seed, " --max-positions 128 ", v.flags, " --source-text ",
                            testsets, "flores200.devtest.eng_Latn --target-text ", testsets,
                            "flores200.devtest.deu_Latn && ", python, " ", scripts,
                            "marian_reference.py ", dir, " ", dir, ".json --seed ", v.seed,
                            " --texts-file ", out, "/texts.txt) & pids=\"$pids $!\"; ");
          }
          return command + "for p in $pids; do wait $p || exit 1; done";
        });
    ASSERT_TRUE(generated.ok()) << generated.status();
    root_ = new fs::path(*generated);
    results_ = new std::map<std::string, nlohmann::json>();
    for (const Variant& v : kVariants) {
      const fs::path result = *root_ / (std::string(v.name) + ".json");
      ASSERT_TRUE(fs::exists(result)) << "the Python scripts failed for " << v.name;
      std::ifstream in(result);
      (*results_)[v.name] = nlohmann::json::parse(in);
    }
  }

  static void TearDownTestSuite() {
    delete root_;
    delete results_;
  }

  void SetUp() override {
    ASSERT_NE(results_, nullptr);
    reference_ = &results_->at(GetParam().name);
    absl::StatusOr<std::unique_ptr<Model>> model = LoadModel((*root_ / GetParam().name).string());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }

  SearchOptions Options(const char* setting) const {
    const nlohmann::json& settings = (*reference_)["settings"];
    SearchOptions options;
    options.beam_size = settings[setting]["beam_size"];
    options.num_hypotheses = settings[setting]["num_hypotheses"];
    options.length_penalty = settings["length_penalty"];
    options.max_decoding_length = settings["max_decoding_length"];
    return options;
  }

  std::unique_ptr<Translator> MakeTranslator(bool use_cache) const {
    TranslatorOptions options;
    options.use_cache = use_cache;
    options.threads = 1;
    absl::StatusOr<std::unique_ptr<Translator>> translator = Translator::Create(model_, options);
    EXPECT_TRUE(translator.ok()) << translator.status();
    return translator.ok() ? std::move(*translator) : nullptr;
  }

  // Every source of the reference (random ids, then the tokenised texts), as segments.
  std::vector<SegmentIds> Segments() const {
    std::vector<SegmentIds> segments;
    for (const char* list : {"sources", "texts"}) {
      for (const nlohmann::json& item : (*reference_)[list]) {
        segments.push_back({item["ids"].get<std::vector<int32_t>>(), {}});
      }
    }
    return segments;
  }

  const nlohmann::json& Item(size_t i) const {
    const size_t sources = (*reference_)["sources"].size();
    return i < sources ? (*reference_)["sources"][i] : (*reference_)["texts"][i - sources];
  }

  static fs::path* root_;  // Generated models and reference outputs, shared, read only.
  static std::map<std::string, nlohmann::json>* results_;
  const nlohmann::json* reference_ = nullptr;
  std::shared_ptr<const Model> model_;
};

fs::path* MarianReferenceTest::root_ = nullptr;
std::map<std::string, nlohmann::json>* MarianReferenceTest::results_ = nullptr;

// The random model must make the comparisons meaningful: varied outputs and no near-ties.
TEST_P(MarianReferenceTest, ReferenceOutputsAreUsable) {
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < Segments().size(); ++i) {
    for (const char* search : {"greedy", "beam"}) {
      EXPECT_GT(Item(i)[search]["min_margin"].get<double>(), 2 * kTolerance)
          << "segment " << i << " " << search << ": pick another seed";
      for (const nlohmann::json& h : Item(i)[search]["hypotheses"]) {
        for (int32_t id : h["ids"]) tokens.push_back(id);
      }
    }
  }
  std::sort(tokens.begin(), tokens.end());
  EXPECT_GE(std::unique(tokens.begin(), tokens.end()) - tokens.begin(), 5);
}

TEST_P(MarianReferenceTest, EncoderOutput) {
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_encoder.ok()) << made_encoder.status();
  const Encoder& encoder = **made_encoder;
  for (const nlohmann::json& source : (*reference_)["sources"]) {
    absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded =
        encoder.Encode({source["ids"].get<std::vector<int32_t>>()});
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    ExpectAllClose(
        (*encoded)[0]->output(), source["encoder_output"],
        absl::StrCat("encoder output of [",
                     absl::StrJoin(source["ids"].get<std::vector<int32_t>>(), " "), "]"));
  }
}

TEST_P(MarianReferenceTest, EncoderOutputInOneBatch) {
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_encoder.ok()) << made_encoder.status();
  const Encoder& encoder = **made_encoder;
  std::vector<std::vector<int32_t>> batch;
  for (const nlohmann::json& source : (*reference_)["sources"]) batch.push_back(source["ids"]);
  absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded = encoder.Encode(batch);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  for (size_t i = 0; i < batch.size(); ++i) {
    ExpectAllClose((*encoded)[i]->output(), (*reference_)["sources"][i]["encoder_output"],
                   absl::StrCat("encoder output of batch entry ", i));
  }
}

TEST_P(MarianReferenceTest, TeacherForcedLogits) {
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_encoder.ok()) << made_encoder.status();
  const Encoder& encoder = **made_encoder;
  absl::StatusOr<std::unique_ptr<Decoder>> made_decoder =
      Decoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_decoder.ok()) << made_decoder.status();
  const Decoder& decoder = **made_decoder;
  for (const nlohmann::json& source : (*reference_)["sources"]) {
    absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded =
        encoder.Encode({source["ids"].get<std::vector<int32_t>>()});
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    const std::vector<int32_t> target = source["target_ids"];
    absl::StatusOr<Tensor> logits = decoder.ForcedLogits((*encoded)[0], target);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ExpectAllClose(*logits, source["forced_logits"],
                   absl::StrCat("logits for target [", absl::StrJoin(target, " "), "]"));
  }
}

TEST_P(MarianReferenceTest, SearchWithAndWithoutCache) {
  const std::vector<SegmentIds> segments = Segments();
  std::map<bool, std::unique_ptr<Translator>> translators;
  for (bool use_cache : {true, false}) {
    translators[use_cache] = MakeTranslator(use_cache);
    ASSERT_NE(translators[use_cache], nullptr);
  }
  for (const char* search : {"greedy", "beam"}) {
    std::map<bool, std::vector<SearchResult>> results;
    for (bool use_cache : {true, false}) {
      absl::StatusOr<std::vector<SearchResult>> found =
          translators[use_cache]->TranslateIds(segments, Options(search));
      ASSERT_TRUE(found.ok()) << found.status();
      ASSERT_EQ(found->size(), segments.size());
      for (size_t i = 0; i < segments.size(); ++i) {
        ExpectSameSearch((*found)[i], Item(i)[search],
                         absl::StrCat(search, " search, segment ", i, ", cache ", use_cache));
      }
      results[use_cache] = *std::move(found);
    }
    for (size_t i = 0; i < segments.size(); ++i) {
      const auto& cached = results[true][i].hypotheses;
      const auto& uncached = results[false][i].hypotheses;
      ASSERT_EQ(cached.size(), uncached.size());
      for (size_t h = 0; h < cached.size(); ++h) {
        EXPECT_EQ(cached[h].ids, uncached[h].ids) << search << " segment " << i;
        EXPECT_NEAR(cached[h].score, uncached[h].score, kTolerance) << search << " segment " << i;
      }
    }
  }
}

TEST_P(MarianReferenceTest, TokenisesLikeMarianTokenizer) {
  const ModelConfig& config = model_->config;
  bool saw_unknown = false;
  for (const nlohmann::json& text : (*reference_)["texts"]) {
    absl::StatusOr<std::vector<std::string>> pieces =
        model_->source_tokenizer->Encode(text["text"].get<std::string>());
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    EXPECT_EQ(*pieces, text["pieces"].get<std::vector<std::string>>()) << text["text"];
    std::vector<int32_t> ids;
    for (const std::string& piece : *pieces) {
      const int32_t id = model_->source_vocabulary.Id(piece);
      ids.push_back(id >= 0 ? id : config.source_unk_id);
    }
    ids.push_back(config.source_eos_id);
    EXPECT_EQ(ids, text["ids"].get<std::vector<int32_t>>()) << text["text"];
    saw_unknown |= std::count(ids.begin(), ids.end(), config.source_unk_id) > 0;
  }
  EXPECT_TRUE(saw_unknown) << "no text exercised the unknown piece";
}

TEST_P(MarianReferenceTest, TranslatesTextLikeTheReference) {
  for (bool use_cache : {true, false}) {
    std::unique_ptr<Translator> translator = MakeTranslator(use_cache);
    ASSERT_NE(translator, nullptr);
    for (const char* search : {"greedy", "beam"}) {
      const SearchOptions options = Options(search);
      v1::TranslateRequest request;
      request.mutable_options()->set_beam_size(options.beam_size);
      request.mutable_options()->set_num_hypotheses(options.num_hypotheses);
      request.mutable_options()->set_max_decoding_length(options.max_decoding_length);
      request.mutable_options()->set_return_scores(true);
      for (const nlohmann::json& text : (*reference_)["texts"]) {
        request.add_segments()->set_text(text["text"].get<std::string>());
      }
      absl::StatusOr<v1::TranslateResponse> response = translator->Translate(request);
      ASSERT_TRUE(response.ok()) << response.status();
      ASSERT_EQ(response->results_size(), static_cast<int>((*reference_)["texts"].size()));
      for (int i = 0; i < response->results_size(); ++i) {
        const nlohmann::json& text = (*reference_)["texts"][i];
        const nlohmann::json& expected = text[search]["hypotheses"];
        const v1::SegmentResult& result = response->results(i);
        ASSERT_EQ(result.hypotheses_size(), static_cast<int>(expected.size()));
        for (int h = 0; h < result.hypotheses_size(); ++h) {
          const v1::Hypothesis& hypothesis = result.hypotheses(h);
          std::vector<int32_t> ids;
          for (const std::string& token : hypothesis.tokens()) {
            ids.push_back(model_->target_vocabulary.Id(token));
          }
          const std::string what = absl::StrCat(search, " '", text["text"].get<std::string>(),
                                                "' hypothesis ", h, " cache ", use_cache);
          EXPECT_EQ(ids, expected[h]["ids"].get<std::vector<int32_t>>()) << what;
          EXPECT_NEAR(hypothesis.score(), expected[h]["score"].get<float>(), kTolerance) << what;
          const std::string detokenised = std::string(search) == "greedy"
                                              ? text["greedy_text"].get<std::string>()
                                              : text["beam_texts"][h].get<std::string>();
          EXPECT_EQ(hypothesis.text(), detokenised) << what;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RandomMarianModels, MarianReferenceTest, ::testing::ValuesIn(kVariants),
                         [](const ::testing::TestParamInfo<Variant>& variant) {
                           return std::string(variant.param.name);
                         });

}  // namespace
}  // namespace kvmt
