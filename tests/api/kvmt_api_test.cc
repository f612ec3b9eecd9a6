// The public library API (include/kvmt/kvmt.h) on the real transliteration model, whose
// answers CTranslate2's own tests publish; the callback, batched and concurrent calls are
// checked against translating each segment alone.
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kvmt/kvmt.h"

namespace kvmt::api {
namespace {

constexpr char kModel[] = KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";

const Translator& Shared() {
  static const Translator* translator = [] {
    LoadOptions options;
    options.threads = 1;
    options.max_batch_size = 4;
    absl::StatusOr<std::unique_ptr<Translator>> loaded = Translator::Load(kModel, options);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? loaded->release() : nullptr;
  }();
  return *translator;
}

// Letters of the model's source alphabet, 1 to 8 of them, space-separated: segment i.
std::string Word(int i) {
  static const char* kLetters[] = {"ي", "ا", "و", "ر", "ن", "ل", "س", "ت", "ب", "ك", "م", "د"};
  std::string word;
  for (int j = 0; j <= (i * 7) % 8; ++j) {
    if (j > 0) word += " ";
    word += kLetters[(i * 5 + j * 3) % 12];
  }
  return word;
}

std::vector<std::string> Texts(const std::vector<SegmentResult>& results) {
  std::vector<std::string> texts;
  for (const SegmentResult& result : results) {
    EXPECT_FALSE(result.hypotheses.empty());
    texts.push_back(result.hypotheses.empty() ? "" : result.hypotheses[0].text);
  }
  return texts;
}

TEST(KvmtApiTest, KnownAnswersAndModelInfo) {
  absl::StatusOr<std::vector<SegmentResult>> results =
      Shared().TranslateTexts({"آ ت ز م و ن", "آ ز ا"});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(Texts(*results), (std::vector<std::string>{"a t z m o n", "a z z a"}));
  EXPECT_EQ((*results)[1].hypotheses[0].tokens, (std::vector<std::string>{"a", "z", "z", "a"}));

  const ModelInfo& info = Shared().info();
  EXPECT_EQ(info.format, "ctranslate2");
  EXPECT_EQ(info.encoder_layers, 6);
  EXPECT_EQ(info.decoder_layers, 6);
  EXPECT_EQ(info.d_model, 32);
  EXPECT_EQ(info.source_vocabulary_size, 51);
  EXPECT_EQ(info.target_vocabulary_size, 43);
  EXPECT_FALSE(info.sentencepiece);
  EXPECT_GT(info.cache_memory_bytes, 0);
  EXPECT_EQ(info.compute_type, "float32");
  // Per layer pair: attention (4 d^2 + 4 d biases) x 1 or 2, FFN (2 x 32 x 128 + 160), norms;
  // embeddings and projection. Between 0.5 and 2 MiB of float32 for this model.
  EXPECT_GT(info.weight_bytes, 512 * 1024);
  EXPECT_LT(info.weight_bytes, 2 * 1024 * 1024);
}

TEST(KvmtApiTest, BatchedAndCallbackResultsEqualTranslatingEachSegmentAlone) {
  std::vector<Segment> segments(11);
  std::vector<std::string> alone;
  for (int i = 0; i < 11; ++i) {
    segments[i].text = Word(i);
    absl::StatusOr<std::vector<SegmentResult>> one = Shared().TranslateTexts({Word(i)});
    ASSERT_TRUE(one.ok()) << one.status();
    alone.push_back(Texts(*one)[0]);
  }
  absl::StatusOr<std::vector<SegmentResult>> batched = Shared().Translate(segments);
  ASSERT_TRUE(batched.ok()) << batched.status();
  EXPECT_EQ(Texts(*batched), alone);

  std::vector<int> calls(segments.size(), 0);
  std::vector<std::string> streamed(segments.size());
  const absl::Status status =
      Shared().Translate(segments, {}, [&](size_t index, SegmentResult result) {
        ASSERT_LT(index, segments.size());
        ++calls[index];
        streamed[index] = result.hypotheses.at(0).text;
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(calls, std::vector<int>(segments.size(), 1));
  EXPECT_EQ(streamed, alone);
}

TEST(KvmtApiTest, ConcurrentCallersGetWhatTheyWouldAlone) {
  std::vector<std::string> texts;
  for (int i = 0; i < 6; ++i) texts.push_back(Word(i + 20));
  absl::StatusOr<std::vector<SegmentResult>> expected = Shared().TranslateTexts(texts);
  ASSERT_TRUE(expected.ok()) << expected.status();
  std::vector<std::vector<std::string>> got(4);
  std::vector<absl::Status> statuses(got.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        absl::StatusOr<std::vector<SegmentResult>> results = Shared().TranslateTexts(texts);
        if (!results.ok()) {
          statuses[t] = results.status();
          return;
        }
        got[t] = Texts(*results);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t t = 0; t < got.size(); ++t) {
    EXPECT_TRUE(statuses[t].ok()) << "thread " << t << ": " << statuses[t];
    EXPECT_EQ(got[t], Texts(*expected)) << "thread " << t;
  }
}

TEST(KvmtApiTest, TokensPrefixScoresAndSeveralHypotheses) {
  Segment tokens;
  tokens.tokens = {"آ", "ز", "ا"};
  Segment empty;
  TranslateOptions options;
  options.beam_size = 3;
  options.num_hypotheses = 2;
  options.return_scores = true;
  absl::StatusOr<std::vector<SegmentResult>> results = Shared().Translate({tokens, empty}, options);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ((*results)[0].hypotheses.size(), 2u);
  EXPECT_EQ((*results)[0].hypotheses[0].text, "a z z a");
  EXPECT_LT((*results)[0].hypotheses[0].score, 0.0f);
  EXPECT_GE((*results)[0].hypotheses[0].score, (*results)[0].hypotheses[1].score);
  ASSERT_EQ((*results)[1].hypotheses.size(), 1u);  // An empty segment: one empty hypothesis.
  EXPECT_EQ((*results)[1].hypotheses[0].text, "");

  Segment prefixed;
  prefixed.text = "آ ز ا";
  prefixed.target_prefix_tokens = {"e"};
  results = Shared().Translate({prefixed});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ((*results)[0].hypotheses[0].tokens.at(0), "e");
}

TEST(KvmtApiTest, ErrorsAreStatusesNamingTheCallersSegment) {
  std::vector<Segment> segments(6);
  for (int i = 0; i < 6; ++i) segments[i].text = Word(i);
  segments[5].text = "\xff";  // Sorted by length, it is not at position 5 of its batch.
  absl::StatusOr<std::vector<SegmentResult>> results = Shared().Translate(segments);
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(results.status().message().find("segment 5: "), std::string::npos) << results.status();
  EXPECT_NE(results.status().message().find("UTF-8"), std::string::npos) << results.status();

  TranslateOptions too_many;
  too_many.beam_size = 2;
  too_many.num_hypotheses = 3;
  EXPECT_EQ(Shared().TranslateTexts({"آ"}, too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
  TranslateOptions negative;
  negative.max_decoding_length = -1;
  EXPECT_EQ(Shared().TranslateTexts({"آ"}, negative).status().code(),
            absl::StatusCode::kInvalidArgument);

  Segment both;
  both.text = "آ";
  both.tokens = {"آ"};
  EXPECT_EQ(Shared().Translate({both}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvmtApiTest, Int8ModelKeepsItsInt8Weights) {
  LoadOptions options;
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<Translator>> int8 = Translator::Load(
      std::string(KVMT_SHARED_DIR) + "/models/ct2-v2-aren-transliteration-i8", options);
  ASSERT_TRUE(int8.ok()) << int8.status();
  EXPECT_EQ((*int8)->info().compute_type, "int8");
  // The linear layers' weights take a byte per value instead of four.
  EXPECT_LT((*int8)->info().weight_bytes, Shared().info().weight_bytes * 2 / 3);
  absl::StatusOr<std::vector<SegmentResult>> results = (*int8)->TranslateTexts({"آ ز ا"});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(Texts(*results)[0], "a z z a");

  options.compute_type = "float32";
  absl::StatusOr<std::unique_ptr<Translator>> as_float = Translator::Load(
      std::string(KVMT_SHARED_DIR) + "/models/ct2-v2-aren-transliteration-i8", options);
  ASSERT_TRUE(as_float.ok()) << as_float.status();
  EXPECT_EQ((*as_float)->info().compute_type, "float32");
  options.compute_type = "int4";
  EXPECT_EQ(Translator::Load(kModel, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KvmtApiTest, LoadErrorsNameTheDirectory) {
  absl::StatusOr<std::unique_ptr<Translator>> missing =
      Translator::Load(std::string(KVMT_SHARED_DIR) + "/models/no-such-model");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no-such-model"), std::string::npos)
      << missing.status();
  LoadOptions bad;
  bad.max_batch_size = 0;
  EXPECT_EQ(Translator::Load(kModel, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kvmt::api
