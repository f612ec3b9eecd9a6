// The Scheduler (continuous batching) against translating each request alone with the
// Translator, on the real CTranslate2 model and on random models: same results whatever joins
// or leaves the batch around a segment; cancellation, deadlines, queue limits and admission.
#include "translator/scheduler.h"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "encoder/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace kvmt {
namespace {

using ::testing::HasSubstr;

constexpr char kModelDir[] = KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";

std::vector<std::string> ReadLines(const std::string& path, size_t count) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; lines.size() < count && std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A random model with vocabularies "<s> </s> w2 w3 ..." and whitespace tokenizers, so that it
// can be driven with text requests.
std::shared_ptr<const Model> RandomTextModel(const RandomModelSpec& spec) {
  std::shared_ptr<Model> model = MakeRandomModel(spec);
  auto vocabulary = [](int size) {
    std::vector<std::string> tokens = {"<s>", "</s>"};
    for (int i = 2; i < size; ++i) tokens.push_back(absl::StrCat("w", i));
    return *Vocabulary::FromTokens(tokens, "test");
  };
  model->source_vocabulary = vocabulary(spec.source_vocab);
  model->target_vocabulary = vocabulary(spec.target_vocab);
  model->source_tokenizer = std::make_unique<WhitespaceTokenizer>();
  model->target_tokenizer = std::make_unique<WhitespaceTokenizer>();
  return model;
}

std::shared_ptr<const Translator> MakeTranslator(std::shared_ptr<const Model> model,
                                                 TranslatorOptions options = {}) {
  if (options.threads == 0) options.threads = 1;
  auto translator = Translator::Create(std::move(model), options);
  EXPECT_TRUE(translator.ok()) << translator.status();
  return std::shared_ptr<const Translator>(std::move(*translator));
}

// The most segments any step of any scheduler of this process has decoded together.
std::atomic<int> peak_batch{0};

std::unique_ptr<Scheduler> MakeScheduler(std::shared_ptr<const Translator> translator,
                                         SchedulerOptions options = {}) {
  options.on_step = [](int segments, int hypotheses) {
    int peak = peak_batch.load();
    while (segments > peak && !peak_batch.compare_exchange_weak(peak, segments)) {
    }
  };
  auto scheduler = Scheduler::Create(std::move(translator), options);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  return *std::move(scheduler);
}

// Records everything a request reports; Wait() blocks until OnDone.
class RecordingObserver : public TranslationObserver {
 public:
  explicit RecordingObserver(std::atomic<int>* finish_counter = nullptr)
      : finish_counter_(finish_counter) {}

  // The scheduler's thread stops in the OnToken call of token `count` until Resume(): the test
  // acts while the batch is known to be in the middle of decoding.
  void PauseAtToken(int count) { pause_at_ = count; }
  void Resume() {
    std::lock_guard<std::mutex> lock(mutex_);
    resumed_ = true;
    resume_cv_.notify_all();
  }

  // Every OnToken takes this long: a slow consumer holding up the scheduler's thread.
  void SlowTokens(absl::Duration delay) { token_delay_ = delay; }

  void OnToken(int segment, int32_t id, const std::string& token) override {
    absl::SleepFor(token_delay_);
    std::unique_lock<std::mutex> lock(mutex_);
    tokens_[segment].push_back(token);
    ++token_count_;
    token_seen_.notify_all();
    if (token_count_ == pause_at_) resume_cv_.wait(lock, [&] { return resumed_; });
  }
  void OnSegment(int segment, v1::SegmentResult result) override {
    std::lock_guard<std::mutex> lock(mutex_);
    results_[segment] = std::move(result);
  }
  void OnDone(absl::Status status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finish_counter_ != nullptr) finish_rank_ = (*finish_counter_)++;
    status_ = std::move(status);
    done_ = true;
    ++done_calls_;
    done_cv_.notify_all();
  }

  absl::Status Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
    return status_;
  }
  void WaitForTokens(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    token_seen_.wait(lock, [&] { return token_count_ >= count || done_; });
  }

  std::map<int, std::vector<std::string>> tokens() {
    std::lock_guard<std::mutex> lock(mutex_);
    return tokens_;
  }
  std::map<int, v1::SegmentResult> results() {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_;
  }
  int finish_rank() {
    std::lock_guard<std::mutex> lock(mutex_);
    return finish_rank_;
  }
  int done_calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_calls_;
  }

 private:
  std::atomic<int>* finish_counter_;
  int pause_at_ = -1;
  absl::Duration token_delay_;
  std::mutex mutex_;
  std::condition_variable resume_cv_;
  bool resumed_ = false;
  std::condition_variable done_cv_;
  std::condition_variable token_seen_;
  bool done_ = false;
  int done_calls_ = 0;
  int finish_rank_ = -1;
  int token_count_ = 0;
  absl::Status status_;
  std::map<int, std::vector<std::string>> tokens_;
  std::map<int, v1::SegmentResult> results_;
};

void ExpectSameResponse(const v1::TranslateResponse& actual, const v1::TranslateResponse& alone,
                        const std::string& what) {
  ASSERT_EQ(actual.results_size(), alone.results_size()) << what;
  for (int s = 0; s < alone.results_size(); ++s) {
    const auto& a = actual.results(s).hypotheses();
    const auto& e = alone.results(s).hypotheses();
    ASSERT_EQ(a.size(), e.size()) << what << " segment " << s;
    for (int h = 0; h < e.size(); ++h) {
      EXPECT_EQ(absl::StrJoin(a[h].tokens(), " "), absl::StrJoin(e[h].tokens(), " "))
          << what << " segment " << s << " hypothesis " << h;
      EXPECT_EQ(a[h].text(), e[h].text()) << what;
      EXPECT_NEAR(a[h].score(), e[h].score(), 1e-4) << what;
    }
  }
}

// Submits every request from `threads` threads, each waiting a random moment between its
// requests so that they join a batch that is already running, and compares each response with
// the one the Translator gives for that request alone. Returns the largest batch decoded.
int ExpectBatchedEqualsAlone(const Translator& translator, Scheduler& scheduler,
                             const std::vector<v1::TranslateRequest>& requests, int threads) {
  std::vector<v1::TranslateResponse> alone;
  for (const v1::TranslateRequest& request : requests) {
    auto response = translator.Translate(request);
    EXPECT_TRUE(response.ok()) << response.status();
    alone.push_back(response.value_or(v1::TranslateResponse()));
  }
  std::vector<absl::StatusOr<v1::TranslateResponse>> batched(requests.size());
  peak_batch = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      for (size_t i = static_cast<size_t>(t); i < requests.size(); i += threads) {
        std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
        batched[i] = scheduler.Translate(requests[i]);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(batched[i].ok()) << "request " << i << ": " << batched[i].status();
    if (batched[i].ok()) ExpectSameResponse(*batched[i], alone[i], absl::StrCat("request ", i));
  }
  return peak_batch.load();
}

class SchedulerRealModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = LoadModel(kModelDir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new std::shared_ptr<const Model>(std::move(*model));
  }
  static void TearDownTestSuite() { delete model_; }
  static std::shared_ptr<const Model>* model_;
};

std::shared_ptr<const Model>* SchedulerRealModelTest::model_ = nullptr;

// 64 requests of mixed lengths and options: Arabic names of the shared sample, several names
// run together, and English test-set sentences (words the model does not know).
std::vector<v1::TranslateRequest> MixedRequests() {
  const std::vector<std::string> names =
      ReadLines(KVMT_SOURCE_DIR "/scripts/samples/ar-transliteration.txt", 20);
  const std::vector<std::string> sentences =
      ReadLines(KVMT_SHARED_DIR "/testsets/flores200.devtest.eng_Latn", 16);
  std::vector<v1::TranslateRequest> requests;
  for (int i = 0; i < 64; ++i) {
    v1::TranslateRequest request;
    std::string text;
    switch (i % 4) {
      case 0:
      case 1:
        text = names[i % names.size()];
        break;
      case 2:
        text = absl::StrCat(names[i % names.size()], " ", names[(i * 7 + 3) % names.size()], " ",
                            names[(i * 3 + 1) % names.size()]);
        break;
      default:
        text = sentences[(i / 4) % sentences.size()];
    }
    request.add_segments()->set_text(text);
    if (i % 5 == 0) request.add_segments()->set_text(names[(i + 1) % names.size()]);
    request.mutable_options()->set_beam_size(i % 3 == 0 ? 1 : 4);
    request.mutable_options()->set_max_decoding_length(i % 4 == 3 ? 24 : 64);
    request.mutable_options()->set_return_scores(true);
    requests.push_back(request);
  }
  return requests;
}

TEST_F(SchedulerRealModelTest, ConcurrentRequestsEqualTranslatingAlone) {
  std::shared_ptr<const Translator> translator = MakeTranslator(*model_);
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
  EXPECT_GE(ExpectBatchedEqualsAlone(*translator, *scheduler, MixedRequests(), 8), 4)
      << "the requests never decoded together";
}

TEST(SchedulerInt8ModelTest, ConcurrentRequestsEqualTranslatingAlone) {
  // The int8 model computes in int8 (activations quantised row by row), so batching must not
  // change its results either.
  auto model = LoadModel(std::string(kModelDir) + "-i8");
  ASSERT_TRUE(model.ok()) << model.status();
  std::shared_ptr<const Translator> translator =
      MakeTranslator(std::shared_ptr<const Model>(*std::move(model)));
  ASSERT_EQ(translator->compute_type().type, ComputeType::kInt8);
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
  EXPECT_GE(ExpectBatchedEqualsAlone(*translator, *scheduler, MixedRequests(), 8), 4)
      << "the requests never decoded together";
}

TEST_F(SchedulerRealModelTest, SmallBatchesAndTwoThreadsEqualTranslatingAlone) {
  TranslatorOptions options;
  options.threads = 2;
  std::shared_ptr<const Translator> translator = MakeTranslator(*model_, options);
  SchedulerOptions scheduling;
  scheduling.max_batch_size = 5;
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator, scheduling);
  std::vector<v1::TranslateRequest> requests = MixedRequests();
  requests.resize(12);
  const int peak = ExpectBatchedEqualsAlone(*translator, *scheduler, requests, 6);
  EXPECT_GE(peak, 3) << "the requests never decoded together";
  EXPECT_LE(peak, 5) << "the batch outgrew max_batch_size";
}

TEST_F(SchedulerRealModelTest, KnownAnswers) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(*model_));
  v1::TranslateRequest request;
  request.add_segments()->set_text("آ ت ز م و ن");
  request.add_segments()->set_text("");
  request.add_segments()->add_tokens("آ");
  request.mutable_segments(2)->add_tokens("ز");
  request.mutable_segments(2)->add_tokens("ا");
  auto response = scheduler->Translate(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 3);
  EXPECT_EQ(response->results(0).hypotheses(0).text(), "a t z m o n");
  EXPECT_EQ(response->results(1).hypotheses_size(), 1);
  EXPECT_EQ(response->results(1).hypotheses(0).text(), "");
  EXPECT_EQ(response->results(2).hypotheses(0).text(), "a z z a");
}

TEST_F(SchedulerRealModelTest, LimitsAreInvalidArgumentNamingTheValue) {
  SchedulerOptions options;
  options.limits.max_segments = 2;
  options.limits.max_segment_tokens = 5;
  options.limits.max_segment_bytes = 40;
  options.limits.max_beam_size = 4;
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(*model_), options);
  RecordingObserver observer;
  auto submit = [&](const v1::TranslateRequest& request) {
    return scheduler->Submit(request, absl::InfiniteFuture(), &observer).status();
  };

  v1::TranslateRequest request;
  EXPECT_THAT(submit(request).message(), HasSubstr("no segments"));
  for (int i = 0; i < 3; ++i) request.add_segments()->set_text("آ ز ا");
  absl::Status status = submit(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("3 segments, more than the limit of 2"));

  request.mutable_segments()->RemoveLast();
  request.mutable_segments(1)->set_text("آ ز ا آ ز ا");
  status = submit(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("segment 1 has 6 source tokens, more than the limit of 5"));

  request.mutable_segments(1)->set_text(std::string(41, 'a'));
  status = submit(request);
  EXPECT_THAT(status.message(), HasSubstr("segment 1 has 41 bytes, more than the limit of 40"));

  request.mutable_segments(1)->set_text("\xC3\x28");
  status = submit(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("UTF-8"));

  request.mutable_segments(1)->set_text("آ");
  request.mutable_options()->set_beam_size(5);
  status = submit(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("beam_size 5 is more than the limit of 4"));

  EXPECT_EQ(observer.done_calls(), 0);  // Rejected requests never reach the observer.
  request.mutable_options()->set_beam_size(4);
  ASSERT_TRUE(submit(request).ok());
  EXPECT_TRUE(observer.Wait().ok());
}

// Random models rarely choose </s>, so min = max decoding length gives outputs of exactly that
// length: long requests whose duration the tests control.
class SchedulerRandomModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RandomModelSpec spec;
    spec.seed = 5;
    spec.max_positions = 160;
    model_ = RandomTextModel(spec);
  }

  static v1::TranslateRequest Request(const std::string& text, int length, int beam = 2) {
    v1::TranslateRequest request;
    request.add_segments()->set_text(text);
    request.mutable_options()->set_beam_size(static_cast<uint32_t>(beam));
    request.mutable_options()->set_max_decoding_length(static_cast<uint32_t>(length));
    request.mutable_options()->set_min_decoding_length(static_cast<uint32_t>(length));
    return request;
  }

  std::shared_ptr<const Translator> UncachedSourcesTranslator() {
    TranslatorOptions options;
    options.source_cache_bytes = 0;  // So that a free pool is an empty one.
    return MakeTranslator(model_, options);
  }

  std::shared_ptr<const Model> model_;
};

TEST_F(SchedulerRandomModelTest, ConcurrentRequestsEqualTranslatingAlone) {
  std::vector<v1::TranslateRequest> requests;
  std::mt19937 random(11);
  for (int i = 0; i < 40; ++i) {
    std::vector<std::string> words;
    const int length = 1 + static_cast<int>(random() % 12);
    for (int w = 0; w < length; ++w) words.push_back(absl::StrCat("w", 2 + random() % 38));
    v1::TranslateRequest request;
    request.add_segments()->set_text(absl::StrJoin(words, " "));
    if (i % 3 == 0) request.add_segments()->set_text("w3 w4");
    request.mutable_options()->set_beam_size(static_cast<uint32_t>(1 + i % 4));
    request.mutable_options()->set_num_hypotheses(static_cast<uint32_t>(1 + (i % 4) / 2));
    request.mutable_options()->set_max_decoding_length(static_cast<uint32_t>(4 + random() % 40));
    request.mutable_options()->set_return_scores(true);
    if (i % 7 == 0) request.mutable_segments(0)->set_target_prefix("w5 w6");
    requests.push_back(request);
  }
  for (int threads : {1, 2}) {
    for (const RandomModelSpec& spec :
         {RandomModelSpec{}, RandomModelSpec{15, 5, 24, 2, 2, 40, 30, false, Activation::kGelu}}) {
      RandomModelSpec with_seed = spec;
      with_seed.seed = 9;
      TranslatorOptions options;
      options.threads = threads;
      std::shared_ptr<const Translator> translator =
          MakeTranslator(RandomTextModel(with_seed), options);
      std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
      SCOPED_TRACE(absl::StrCat("threads ", threads, " d_model ", spec.d_model));
      // Two OpenMP threads crawl on a busy machine: fewer requests keep the test quick.
      std::vector<v1::TranslateRequest> some = requests;
      if (threads > 1) some.resize(16);
      EXPECT_GE(ExpectBatchedEqualsAlone(*translator, *scheduler, some, 5), 3);
    }
  }
}

TEST_F(SchedulerRandomModelTest, ShortRequestIsNotStuckBehindALongOne) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(model_));
  std::atomic<int> finished{0};
  RecordingObserver long_request(&finished);
  RecordingObserver short_request(&finished);
  long_request.PauseAtToken(3);
  ASSERT_TRUE(
      scheduler->Submit(Request("w2 w3 w4", 150, 1), absl::InfiniteFuture(), &long_request).ok());
  long_request.WaitForTokens(3);  // The long one is decoding when the short one arrives.
  ASSERT_TRUE(
      scheduler->Submit(Request("w5 w6", 3, 1), absl::InfiniteFuture(), &short_request).ok());
  long_request.Resume();
  ASSERT_TRUE(short_request.Wait().ok());
  ASSERT_TRUE(long_request.Wait().ok());
  EXPECT_EQ(short_request.finish_rank(), 0);
  EXPECT_EQ(long_request.finish_rank(), 1);
  EXPECT_EQ(long_request.results()[0].hypotheses(0).tokens_size(), 150);
}

TEST_F(SchedulerRandomModelTest, OneRequestAtATimeMakesTheShortRequestWait) {
  SchedulerOptions options;
  options.one_request_at_a_time = true;
  peak_batch = 0;
  std::shared_ptr<const Translator> translator = MakeTranslator(model_);
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator, options);
  std::atomic<int> finished{0};
  RecordingObserver long_request(&finished);
  RecordingObserver short_request(&finished);
  long_request.PauseAtToken(3);
  v1::TranslateRequest two_segments = Request("w2 w3 w4", 150, 1);
  two_segments.add_segments()->set_text("w8 w9");
  ASSERT_TRUE(scheduler->Submit(two_segments, absl::InfiniteFuture(), &long_request).ok());
  long_request.WaitForTokens(3);
  ASSERT_TRUE(
      scheduler->Submit(Request("w5 w6", 3, 1), absl::InfiniteFuture(), &short_request).ok());
  long_request.Resume();
  ASSERT_TRUE(short_request.Wait().ok());
  ASSERT_TRUE(long_request.Wait().ok());
  EXPECT_EQ(long_request.finish_rank(), 0);
  EXPECT_EQ(short_request.finish_rank(), 1);
  EXPECT_EQ(peak_batch.load(), 2);  // The long request's two segments, together.

  std::vector<v1::TranslateRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(Request(absl::StrCat("w", 3 + i), 10 + i, 2));
  EXPECT_EQ(ExpectBatchedEqualsAlone(*translator, *scheduler, requests, 3), 1);
}

TEST_F(SchedulerRandomModelTest, StreamsTheTokensOfGreedySegmentsOnly) {
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(model_));
  v1::TranslateRequest greedy = Request("w2 w3 w4", 12, 1);
  greedy.add_segments()->set_text("w9");
  greedy.add_segments()->set_text("");
  RecordingObserver greedy_observer;
  ASSERT_TRUE(scheduler->Submit(greedy, absl::InfiniteFuture(), &greedy_observer).ok());
  ASSERT_TRUE(greedy_observer.Wait().ok());
  auto tokens = greedy_observer.tokens();
  auto results = greedy_observer.results();
  ASSERT_EQ(results.size(), 3u);
  for (int s = 0; s < 2; ++s) {
    const auto& final_tokens = results[s].hypotheses(0).tokens();
    EXPECT_EQ(tokens[s], std::vector<std::string>(final_tokens.begin(), final_tokens.end()));
    EXPECT_EQ(tokens[s].size(), 12u);
  }
  EXPECT_EQ(tokens.count(2), 0u);
  EXPECT_EQ(results[2].hypotheses(0).text(), "");

  RecordingObserver beam_observer;
  ASSERT_TRUE(
      scheduler->Submit(Request("w2 w3 w4", 12, 3), absl::InfiniteFuture(), &beam_observer).ok());
  ASSERT_TRUE(beam_observer.Wait().ok());
  EXPECT_TRUE(beam_observer.tokens().empty());
  EXPECT_EQ(beam_observer.results()[0].hypotheses(0).tokens_size(), 12);
}

TEST_F(SchedulerRandomModelTest, CancelStopsDecodingAndFreesTheBlocks) {
  std::shared_ptr<const Translator> translator = UncachedSourcesTranslator();
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
  RecordingObserver observer;
  observer.PauseAtToken(4);
  v1::TranslateRequest request = Request("w2 w3 w4 w5", 150, 1);
  request.add_segments()->set_text("w7 w8");
  absl::StatusOr<uint64_t> id = scheduler->Submit(request, absl::InfiniteFuture(), &observer);
  ASSERT_TRUE(id.ok()) << id.status();
  observer.WaitForTokens(4);
  EXPECT_GT(translator->cache_stats().pool.used_blocks, 0);
  scheduler->Cancel(*id);
  observer.Resume();
  EXPECT_EQ(observer.Wait().code(), absl::StatusCode::kCancelled);
  const BlockPoolStats pool = translator->cache_stats().pool;
  EXPECT_EQ(pool.used_blocks, 0);
  EXPECT_EQ(pool.reserved_blocks, 0);
  EXPECT_LT(observer.tokens()[0].size(), 150u);
  scheduler->Cancel(*id);  // Over already: nothing happens.
  EXPECT_EQ(observer.done_calls(), 1);
  EXPECT_EQ(scheduler->stats().live_requests, 0);
}

TEST_F(SchedulerRandomModelTest, DeadlineEndsTheRequestAndFreesTheBlocks) {
  std::shared_ptr<const Translator> translator = UncachedSourcesTranslator();
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
  RecordingObserver expired;
  ASSERT_TRUE(
      scheduler->Submit(Request("w2 w3", 150, 2), absl::Now() - absl::Seconds(1), &expired).ok());
  EXPECT_EQ(expired.Wait().code(), absl::StatusCode::kDeadlineExceeded);

  RecordingObserver running;
  running.PauseAtToken(1);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(20);
  ASSERT_TRUE(scheduler->Submit(Request("w2 w3 w4 w5", 150, 1), deadline, &running).ok());
  running.WaitForTokens(1);
  absl::SleepFor(deadline - absl::Now() + absl::Milliseconds(1));
  running.Resume();
  EXPECT_EQ(running.Wait().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(running.tokens()[0].size(), 150u);
  const BlockPoolStats pool = translator->cache_stats().pool;
  EXPECT_EQ(pool.used_blocks, 0);
  EXPECT_EQ(pool.reserved_blocks, 0);
}

TEST_F(SchedulerRandomModelTest, FullQueueIsResourceExhausted) {
  SchedulerOptions options;
  options.max_batch_size = 1;
  options.max_queued_segments = 2;
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(model_), options);
  v1::TranslateRequest two = Request("w2 w3", 150, 1);
  two.add_segments()->set_text("w4 w5");
  RecordingObserver first;
  first.PauseAtToken(1);
  absl::StatusOr<uint64_t> id = scheduler->Submit(two, absl::InfiniteFuture(), &first);
  ASSERT_TRUE(id.ok());
  first.WaitForTokens(1);  // One segment runs, one waits: 1 + 2 > 2.
  RecordingObserver second;
  const absl::Status status = scheduler->Submit(two, absl::InfiniteFuture(), &second).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("queue is full"));
  EXPECT_THAT(status.message(), HasSubstr("limit 2"));
  scheduler->Cancel(*id);
  first.Resume();
  EXPECT_EQ(first.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(second.done_calls(), 0);
}

TEST_F(SchedulerRandomModelTest, AdmissionWaitsForCacheMemory) {
  // Room for about one long segment at a time: the others wait for its blocks.
  TranslatorOptions options;
  options.threads = 1;
  options.source_cache_bytes = 0;
  const KVBlockLayout layout = KVLayoutFor(model_->config);
  options.cache_memory_bytes =
      (layout.blocks_for(4) + 2 * layout.blocks_for(100)) * layout.block_floats() * 4 + 1;
  std::shared_ptr<const Translator> translator = MakeTranslator(model_, options);
  std::unique_ptr<Scheduler> scheduler = MakeScheduler(translator);
  std::vector<v1::TranslateRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request(absl::StrCat("w", 3 + i, " w2"), 100, 2));
  EXPECT_EQ(ExpectBatchedEqualsAlone(*translator, *scheduler, requests, 4), 1);
  EXPECT_EQ(translator->cache_stats().pool.reserved_blocks, 0);

  RecordingObserver too_big;
  const absl::Status status =
      scheduler->Submit(Request("w2", 100, 3), absl::InfiniteFuture(), &too_big).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("more than the cache memory limit"));
}

TEST_F(SchedulerRandomModelTest, DestructionEndsRunningAndQueuedRequests) {
  SchedulerOptions options;
  options.max_batch_size = 1;
  RecordingObserver running;
  RecordingObserver queued;
  running.SlowTokens(absl::Milliseconds(5));  // 150 tokens: far longer than the test needs.
  {
    std::unique_ptr<Scheduler> scheduler = MakeScheduler(MakeTranslator(model_), options);
    ASSERT_TRUE(scheduler->Submit(Request("w2 w3", 150, 1), absl::InfiniteFuture(), &running).ok());
    ASSERT_TRUE(scheduler->Submit(Request("w4 w5", 150, 1), absl::InfiniteFuture(), &queued).ok());
    running.WaitForTokens(1);
  }
  EXPECT_EQ(running.Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(queued.Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(running.done_calls(), 1);
}

}  // namespace
}  // namespace kvmt
