// The real trained CTranslate2 models of ../shared/models give the answers CTranslate2's own
// tests publish, in every saved precision and binary version, with and without the KV cache.
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

struct KnownAnswer {
  std::string source;
  std::string target;
};

const KnownAnswer kAnswers[] = {
    {"آ ت ز م و ن", "a t z m o n"},
    {"آ ز ا", "a z z a"},
    {"آ ت ش ي س و ن", "a c h i s o n"},
};

class KnownAnswersTest : public ::testing::TestWithParam<std::string> {};

v1::TranslateRequest Request(bool as_tokens, int beam_size) {
  v1::TranslateRequest request;
  request.mutable_options()->set_beam_size(beam_size);
  request.mutable_options()->set_return_scores(true);
  for (const KnownAnswer& answer : kAnswers) {
    v1::Segment* segment = request.add_segments();
    if (as_tokens) {
      for (absl::string_view token : absl::StrSplit(answer.source, ' ')) {
        segment->add_tokens(std::string(token));
      }
    } else {
      segment->set_text(answer.source);
    }
  }
  return request;
}

TEST_P(KnownAnswersTest, TranslatesLikeCTranslate2) {
  const std::string dir = std::string(KVMT_SHARED_DIR) + "/models/" + GetParam();
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  std::shared_ptr<const Model> shared = std::move(*model);
  for (bool use_cache : {true, false}) {
    TranslatorOptions options;
    options.use_cache = use_cache;
    options.threads = 1;
    absl::StatusOr<std::unique_ptr<Translator>> translator = Translator::Create(shared, options);
    ASSERT_TRUE(translator.ok()) << translator.status();
    for (int beam_size : {2, 4}) {
      for (bool as_tokens : {true, false}) {
        absl::StatusOr<v1::TranslateResponse> response =
            (*translator)->Translate(Request(as_tokens, beam_size));
        ASSERT_TRUE(response.ok()) << response.status();
        ASSERT_EQ(response->results_size(), 3);
        for (int i = 0; i < 3; ++i) {
          const v1::Hypothesis& best = response->results(i).hypotheses(0);
          EXPECT_EQ(best.text(), kAnswers[i].target)
              << GetParam() << " cache=" << use_cache << " beam=" << beam_size;
          EXPECT_THAT(best.tokens(),
                      ::testing::ElementsAreArray(absl::StrSplit(kAnswers[i].target, ' ')));
          EXPECT_LT(best.score(), 0.0f);
        }
      }
    }
  }
}

std::string ModelName(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(SharedModels, KnownAnswersTest,
                         ::testing::Values("ct2-v2-aren-transliteration",
                                           "ct2-v2-aren-transliteration-i8",
                                           "ct2-v2-aren-transliteration-i16",
                                           "ct2-v1-aren-transliteration",
                                           "ct2-v1-aren-transliteration-i16"),
                         ModelName);

TEST(KnownAnswersTest, GreedyAndScoresAgreeAcrossPrecisions) {
  // f32 vs int8: the same best tokens, scores within quantisation noise.
  std::vector<float> scores;
  for (const char* name : {"ct2-v2-aren-transliteration", "ct2-v2-aren-transliteration-i8"}) {
    auto model = LoadModel(std::string(KVMT_SHARED_DIR) + "/models/" + name);
    ASSERT_TRUE(model.ok()) << model.status();
    auto translator = Translator::Create(std::shared_ptr<const Model>(std::move(*model)), {});
    ASSERT_TRUE(translator.ok());
    auto response = (*translator)->Translate(Request(true, 1));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->results(0).hypotheses(0).text(), "a t z m o n") << name;
    scores.push_back(response->results(0).hypotheses(0).score());
  }
  EXPECT_NEAR(scores[0], scores[1], 0.05f);
}

}  // namespace
}  // namespace kvmt
