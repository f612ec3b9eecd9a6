// Request validation and option resolution of the Translator, on the real CTranslate2 model.
#include "translator/translator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "translator/utf8.h"

namespace kvmt {
namespace {

using ::testing::HasSubstr;

class TranslatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = LoadModel(std::string(KVMT_SHARED_DIR) + "/models/ct2-v2-aren-transliteration");
    ASSERT_TRUE(model.ok()) << model.status();
    auto translator = Translator::Create(std::shared_ptr<const Model>(std::move(*model)), {});
    ASSERT_TRUE(translator.ok()) << translator.status();
    translator_ = std::move(*translator).release();
  }
  static void TearDownTestSuite() { delete translator_; }

  static absl::Status Error(const v1::TranslateRequest& request) {
    return translator_->Translate(request).status();
  }

  static Translator* translator_;
};

Translator* TranslatorTest::translator_ = nullptr;

v1::TranslateRequest WithText(std::initializer_list<std::string> texts) {
  v1::TranslateRequest request;
  for (const std::string& text : texts) request.add_segments()->set_text(text);
  return request;
}

TEST_F(TranslatorTest, RejectsEmptyRequest) {
  EXPECT_THAT(Error(v1::TranslateRequest()).message(), HasSubstr("no segments"));
}

TEST_F(TranslatorTest, RejectsTextAndTokensTogether) {
  v1::TranslateRequest request = WithText({"آ ز ا"});
  request.mutable_segments(0)->add_tokens("آ");
  const absl::Status status = Error(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("segment 0"));
}

TEST_F(TranslatorTest, RejectsInvalidUtf8) {
  const absl::Status status = Error(WithText({"آ ز ا", "ok \xC3\x28 bad"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("segment 1"));
  EXPECT_THAT(status.message(), HasSubstr("UTF-8"));
}

TEST_F(TranslatorTest, UnknownTokenBecomesUnk) {
  // Like CTranslate2, the reader appends <unk> to vocabulary files that lack it.
  auto response = translator_->Translate(WithText({"آ Q ا"}));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results_size(), 1);
}

TEST(TranslatorWithoutUnkTest, RejectsUnknownToken) {
  RandomModelSpec spec;
  spec.source_vocab = 5;
  spec.target_vocab = 5;
  std::shared_ptr<Model> model = MakeRandomModel(spec);
  model->source_vocabulary = *Vocabulary::FromTokens({"<s>", "</s>", "a", "b", "c"}, "test");
  model->target_vocabulary = model->source_vocabulary;
  model->source_tokenizer = std::make_unique<WhitespaceTokenizer>();
  model->target_tokenizer = std::make_unique<WhitespaceTokenizer>();
  auto translator = Translator::Create(model, {});
  ASSERT_TRUE(translator.ok());
  const absl::Status status = (*translator)->Translate(WithText({"a b", "a z c"})).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("segment 1"));
  EXPECT_THAT(status.message(), HasSubstr("'z'"));
}

TEST_F(TranslatorTest, EmptySegmentGivesEmptyResultInPlace) {
  auto response = translator_->Translate(WithText({"", "آ ز ا", "   "}));
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 3);
  EXPECT_EQ(response->results(0).hypotheses(0).text(), "");
  EXPECT_EQ(response->results(1).hypotheses(0).text(), "a z z a");
  EXPECT_EQ(response->results(2).hypotheses(0).text(), "");
}

TEST_F(TranslatorTest, ResolvesDefaultsAndRejectsContradictions) {
  auto defaults = translator_->ResolveOptions(v1::DecodingOptions());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->beam_size, 4);
  EXPECT_EQ(defaults->num_hypotheses, 1);
  EXPECT_FLOAT_EQ(defaults->length_penalty, 1.0f);
  EXPECT_EQ(defaults->max_decoding_length, 256);

  v1::DecodingOptions options;
  options.set_beam_size(2);
  options.set_num_hypotheses(3);
  EXPECT_THAT(translator_->ResolveOptions(options).status().message(),
              HasSubstr("num_hypotheses (3) must not exceed beam_size (2)"));
  options.set_num_hypotheses(1);
  options.set_sampling_topk(5);
  EXPECT_THAT(translator_->ResolveOptions(options).status().message(),
              HasSubstr("requires beam_size 1"));
  options.set_beam_size(1);
  options.set_sampling_temperature(0.0f);
  EXPECT_THAT(translator_->ResolveOptions(options).status().message(),
              HasSubstr("sampling_temperature must be > 0"));
}

TEST_F(TranslatorTest, HugeOptionValuesSaturateInsteadOfWrapping) {
  v1::DecodingOptions options;
  options.set_max_decoding_length(UINT32_MAX);
  options.set_max_input_length(UINT32_MAX);
  auto resolved = translator_->ResolveOptions(options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_GT(resolved->max_decoding_length, 0);  // The model's position table's limit.

  v1::TranslateRequest request = WithText({"آ ز ا"});
  *request.mutable_options() = options;
  auto response = translator_->Translate(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results(0).hypotheses(0).text(), "a z z a");

  request.mutable_options()->set_beam_size(UINT32_MAX);
  EXPECT_EQ(Error(request).code(), absl::StatusCode::kResourceExhausted);  // Cannot ever fit.
}

TEST_F(TranslatorTest, TargetPrefixIsForced) {
  v1::TranslateRequest request = WithText({"آ ت ز م و ن"});
  request.mutable_segments(0)->set_target_prefix("e t");
  auto response = translator_->Translate(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(response->results(0).hypotheses(0).text(), ::testing::StartsWith("e t "));
}

TEST_F(TranslatorTest, NumHypothesesAndEndToken) {
  v1::TranslateRequest request = WithText({"آ ت ز م و ن"});
  request.mutable_options()->set_beam_size(3);
  request.mutable_options()->set_num_hypotheses(3);
  request.mutable_options()->set_return_end_token(true);
  request.mutable_options()->set_return_scores(true);
  auto response = translator_->Translate(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const auto& hypotheses = response->results(0).hypotheses();
  ASSERT_EQ(hypotheses.size(), 3);
  EXPECT_EQ(hypotheses[0].tokens(hypotheses[0].tokens_size() - 1), "</s>");
  EXPECT_EQ(hypotheses[0].text(), "a t z m o n");
  EXPECT_GE(hypotheses[0].score(), hypotheses[1].score());
  EXPECT_GE(hypotheses[1].score(), hypotheses[2].score());
}

TEST_F(TranslatorTest, MaxInputLengthTruncates) {
  v1::TranslateRequest request = WithText({"آ ت ز م و ن"});
  request.mutable_options()->set_max_input_length(2);
  auto truncated = translator_->Translate(request);
  ASSERT_TRUE(truncated.ok()) << truncated.status();
  auto short_input = translator_->Translate(WithText({"آ ت"}));
  ASSERT_TRUE(short_input.ok());
  EXPECT_EQ(truncated->results(0).hypotheses(0).text(),
            short_input->results(0).hypotheses(0).text());
}

TEST(Utf8Test, AcceptsValidAndRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("آ ت ز — 😀"));
  size_t offset = 0;
  EXPECT_FALSE(IsValidUtf8("ab\xC0\xAF", &offset));  // Overlong '/'.
  EXPECT_EQ(offset, 2u);
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // Surrogate.
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // Past U+10FFFF.
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));  // Truncated.
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

}  // namespace
}  // namespace kvmt
