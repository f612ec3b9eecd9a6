// The search of docs/DECODING.md on a scripted step model whose distributions are written here,
// so every expected output below is worked out by hand.
#include "decoder/search/search.h"

#include <cmath>
#include <functional>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

using ::testing::ElementsAre;

constexpr int32_t kStart = 0;
constexpr int32_t kEos = 1;
constexpr int64_t kVocab = 8;

// Logits as a function of (segment, target tokens so far).
using Script = std::function<std::vector<float>(int segment, const std::vector<int32_t>&)>;

class ScriptedModel : public StepModel {
 public:
  explicit ScriptedModel(Script script) : script_(std::move(script)) {}

  void AddHypothesis(std::shared_ptr<const EncodedSource>) override {
    hypotheses_.push_back({added_++, {}, false});
  }

  absl::StatusOr<absl::Span<float>> Logits(absl::Span<const int32_t> tokens) override {
    logits_.resize(tokens.size() * kVocab);
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (hypotheses_[i].started) hypotheses_[i].history.push_back(tokens[i]);
      hypotheses_[i].started = true;
      const std::vector<float> row = script_(hypotheses_[i].segment, hypotheses_[i].history);
      std::copy(row.begin(), row.end(), logits_.data() + i * kVocab);
    }
    ++steps;
    return absl::Span<float>(logits_);
  }

  absl::Status Reorder(absl::Span<const int32_t> parents) override {
    std::vector<Hyp> next;
    for (int32_t p : parents) next.push_back(hypotheses_[p]);
    hypotheses_ = std::move(next);
    return absl::OkStatus();
  }

  int steps = 0;

 private:
  struct Hyp {
    int segment;
    std::vector<int32_t> history;
    bool started;
  };
  Script script_;
  std::vector<Hyp> hypotheses_;
  std::vector<float> logits_;
  int added_ = 0;
};

// Log-probabilities from {token: probability}; the rest of the mass is spread evenly.
std::vector<float> Distribution(const std::map<int32_t, double>& probabilities) {
  double used = 0;
  for (const auto& [token, p] : probabilities) used += p;
  const double rest = (1.0 - used) / static_cast<double>(kVocab - probabilities.size());
  std::vector<float> row(kVocab);
  for (int32_t v = 0; v < kVocab; ++v) {
    auto it = probabilities.find(v);
    row[v] = static_cast<float>(std::log(it != probabilities.end() ? it->second : rest));
  }
  return row;
}

// Greedy goes 2 -> 4 -> </s> (p = 0.5 * 0.4 = 0.2); beam 2 finds 3 -> </s> (0.45 * 0.95).
std::vector<float> GardenPath(int, const std::vector<int32_t>& history) {
  if (history.empty()) return Distribution({{2, 0.5}, {3, 0.45}, {kEos, 0.04}});
  if (history == std::vector<int32_t>{2}) {
    return Distribution({{4, 0.4}, {5, 0.35}, {kEos, 0.24}});
  }
  if (history == std::vector<int32_t>{3}) return Distribution({{kEos, 0.95}});
  return Distribution({{kEos, 0.994}});
}

SearchVocabulary Vocab() { return SearchVocabulary{kStart, kEos, {}, kVocab}; }

SearchOptions Options(int beam) {
  SearchOptions o;
  o.beam_size = beam;
  o.length_penalty = 0.0f;
  return o;
}

std::vector<SearchResult> RunSearch(int segments, const Script& script, const SearchOptions& options,
                              std::vector<std::vector<int32_t>> prefixes = {}) {
  ScriptedModel model(script);
  if (prefixes.empty()) prefixes.resize(segments);
  absl::StatusOr<std::vector<SearchResult>> results =
      Search(model, std::vector<std::shared_ptr<const EncodedSource>>(segments), prefixes, options,
             Vocab());
  EXPECT_TRUE(results.ok()) << results.status();
  return *results;
}

TEST(SearchTest, GreedyFollowsTheArgmax) {
  const auto results = RunSearch(1, GardenPath, Options(1));
  ASSERT_EQ(results[0].hypotheses.size(), 1u);
  EXPECT_THAT(results[0].hypotheses[0].ids, ElementsAre(2, 4));
  EXPECT_NEAR(results[0].hypotheses[0].score, std::log(0.5) + std::log(0.4) + std::log(0.994),
              1e-5);
}

TEST(SearchTest, BeamFindsTheBetterPath) {
  SearchOptions options = Options(2);
  options.num_hypotheses = 2;
  const auto results = RunSearch(1, GardenPath, options);
  ASSERT_EQ(results[0].hypotheses.size(), 2u);
  EXPECT_THAT(results[0].hypotheses[0].ids, ElementsAre(3));
  EXPECT_NEAR(results[0].hypotheses[0].score, std::log(0.45) + std::log(0.95), 1e-5);
  EXPECT_THAT(results[0].hypotheses[1].ids, ElementsAre(2, 4));
}

TEST(SearchTest, LengthPenaltyDividesByLength) {
  SearchOptions options = Options(2);
  options.length_penalty = 1.0f;
  const auto results = RunSearch(1, GardenPath, options);
  // 3 </s>: (ln .45 + ln .95) / 2 = -0.425 beats 2 4 </s>: (ln .5 + ln .4 + ln .994) / 3 = -0.538.
  EXPECT_THAT(results[0].hypotheses[0].ids, ElementsAre(3));
  EXPECT_NEAR(results[0].hypotheses[0].score, (std::log(0.45) + std::log(0.95)) / 2, 1e-5);
}

TEST(SearchTest, EndTokenReturnedOnRequest) {
  SearchOptions options = Options(1);
  options.return_end_token = true;
  EXPECT_THAT(RunSearch(1, GardenPath, options)[0].hypotheses[0].ids, ElementsAre(2, 4, kEos));
}

TEST(SearchTest, PrefixIsForcedAndScored) {
  const auto results = RunSearch(1, GardenPath, Options(2), {{3}});
  EXPECT_THAT(results[0].hypotheses[0].ids, ElementsAre(3));
  EXPECT_NEAR(results[0].hypotheses[0].score, std::log(0.45) + std::log(0.95), 1e-5);
  // A prefix of an unlikely token is still forced.
  const auto forced = RunSearch(1, GardenPath, Options(1), {{6, 7}});
  EXPECT_THAT(forced[0].hypotheses[0].ids, ElementsAre(6, 7));
}

std::vector<float> EagerToEnd(int, const std::vector<int32_t>& history) {
  return Distribution({{kEos, 0.7}, {static_cast<int32_t>(2 + history.size() % 5), 0.2}});
}

TEST(SearchTest, MinAndMaxDecodingLength) {
  SearchOptions options = Options(1);
  options.min_decoding_length = 3;
  EXPECT_THAT(RunSearch(1, EagerToEnd, options)[0].hypotheses[0].ids, ElementsAre(2, 3, 4));
  options.min_decoding_length = 0;
  EXPECT_TRUE(RunSearch(1, EagerToEnd, options)[0].hypotheses[0].ids.empty());
  options.min_decoding_length = 10;
  options.max_decoding_length = 4;
  EXPECT_THAT(RunSearch(1, EagerToEnd, options)[0].hypotheses[0].ids, ElementsAre(2, 3, 4, 5));
}

std::vector<float> LovesTwo(int, const std::vector<int32_t>&) {
  return {0.0f, -5.0f, 4.0f, 3.0f, 2.5f, 1.0f, 0.5f, 0.2f};
}

TEST(SearchTest, NoRepeatNgramAndRepetitionPenalty) {
  SearchOptions options = Options(1);
  options.max_decoding_length = 4;
  EXPECT_THAT(RunSearch(1, LovesTwo, options)[0].hypotheses[0].ids, ElementsAre(2, 2, 2, 2));
  options.no_repeat_ngram_size = 1;
  EXPECT_THAT(RunSearch(1, LovesTwo, options)[0].hypotheses[0].ids, ElementsAre(2, 3, 4, 5));
  options.no_repeat_ngram_size = 0;
  // Penalty 2: 2 (4), then 3 (3 > 4/2), then 4 (2.5 > 2), then 2 again (2 > 3/2, 2.5/2).
  options.repetition_penalty = 2.0f;
  EXPECT_THAT(RunSearch(1, LovesTwo, options)[0].hypotheses[0].ids, ElementsAre(2, 3, 4, 2));
}

TEST(SearchTest, SuppressedTokensAreNeverProduced) {
  ScriptedModel model(LovesTwo);
  SearchOptions options = Options(1);
  options.max_decoding_length = 2;
  SearchVocabulary vocabulary = Vocab();
  vocabulary.suppressed_ids = {2};
  auto results = Search(model, {nullptr}, {{}}, options, vocabulary);
  ASSERT_TRUE(results.ok());
  EXPECT_THAT((*results)[0].hypotheses[0].ids, ElementsAre(3, 3));
}

TEST(SearchTest, SegmentsOfABatchAreIndependent) {
  auto script = [](int segment, const std::vector<int32_t>& history) {
    return segment == 0 ? GardenPath(0, history) : EagerToEnd(0, history);
  };
  SearchOptions options = Options(2);
  options.min_decoding_length = 1;
  const auto together = RunSearch(2, script, options);
  const auto first = RunSearch(1, GardenPath, options);
  EXPECT_EQ(together[0].hypotheses[0].ids, first[0].hypotheses[0].ids);
  EXPECT_FLOAT_EQ(together[0].hypotheses[0].score, first[0].hypotheses[0].score);
  EXPECT_THAT(together[1].hypotheses[0].ids, ElementsAre(2));
}

TEST(SearchTest, SamplingIsSeededAndRestrictedToTopK) {
  SearchOptions options = Options(1);
  options.max_decoding_length = 30;
  options.sampling_topk = 2;
  options.seed = 7;
  auto flat = [](int, const std::vector<int32_t>&) {
    return std::vector<float>{0.0f, -9.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  };
  const auto a = RunSearch(1, flat, options);
  const auto b = RunSearch(1, flat, options);
  EXPECT_EQ(a[0].hypotheses[0].ids, b[0].hypotheses[0].ids);
  bool saw_two = false, saw_three = false;
  for (int32_t id : a[0].hypotheses[0].ids) {
    EXPECT_TRUE(id == 2 || id == 3) << id;
    saw_two |= id == 2;
    saw_three |= id == 3;
  }
  EXPECT_TRUE(saw_two && saw_three);
}

}  // namespace
}  // namespace kvmt

namespace kvmt {
namespace {

std::vector<float> ByAddOrder(int segment, const std::vector<int32_t>& history) {
  return segment % 2 == 0 ? GardenPath(segment, history) : EagerToEnd(segment, history);
}

TEST(BatchSearchTest, SegmentsJoiningLateDecodeAsIfAlone) {
  SearchOptions beam_options = Options(2);
  SearchOptions greedy_options = Options(1);
  greedy_options.min_decoding_length = 2;
  ScriptedModel model(ByAddOrder);
  BatchSearch search(model, Vocab());
  ASSERT_TRUE(search.Add(100, nullptr, {}, beam_options).ok());
  SearchStepOutput output;
  ASSERT_TRUE(search.Step(output).ok());
  ASSERT_TRUE(search.Add(200, nullptr, {}, greedy_options).ok());  // Joins at step 1.
  EXPECT_FALSE(search.Add(200, nullptr, {}, greedy_options).ok());
  std::map<uint64_t, SearchResult> results;
  std::vector<int32_t> streamed;
  while (!search.empty()) {
    ASSERT_TRUE(search.Step(output).ok());
    for (const auto& token : output.tokens) {
      EXPECT_EQ(token.segment, 200u);  // Only single-hypothesis segments stream tokens.
      streamed.push_back(token.id);
    }
    for (auto& done : output.finished) results[done.segment] = std::move(done.result);
  }
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[100].hypotheses[0].ids, RunSearch(1, GardenPath, beam_options)[0].hypotheses[0].ids);
  EXPECT_THAT(results[200].hypotheses[0].ids, ElementsAre(2, 3));
  EXPECT_EQ(streamed, results[200].hypotheses[0].ids);
  EXPECT_EQ(search.num_segments(), 0);
}

TEST(BatchSearchTest, CancelDropsTheSegmentsHypothesesAtOnce) {
  ScriptedModel model(LovesTwo);
  BatchSearch search(model, Vocab());
  SearchOptions options = Options(3);
  options.max_decoding_length = 50;
  ASSERT_TRUE(search.Add(1, nullptr, {}, options).ok());
  ASSERT_TRUE(search.Add(2, nullptr, {}, options).ok());
  SearchStepOutput output;
  ASSERT_TRUE(search.Step(output).ok());
  ASSERT_TRUE(search.Step(output).ok());
  EXPECT_EQ(search.num_hypotheses(), 6);
  ASSERT_TRUE(search.Cancel(1).ok());
  EXPECT_EQ(search.num_hypotheses(), 3);
  EXPECT_EQ(search.num_segments(), 1);
  EXPECT_EQ(search.Cancel(1).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(search.Cancel(2).ok());
  EXPECT_TRUE(search.empty());
}

}  // namespace
}  // namespace kvmt
