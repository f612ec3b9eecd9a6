// One Translator shared by several calling threads: each caller gets exactly what it gets when
// translating alone, also when the K/V pool holds one segment at a time (callers wait in
// admission) and when they share the source cache. Labelled `concurrency`: scripts/test.sh
// --tsan runs it under ThreadSanitizer.
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

constexpr int kCallers = 4;
constexpr int kRounds = 3;

std::shared_ptr<const Model> RealModel() {
  static const std::shared_ptr<const Model>* model = [] {
    auto loaded = LoadModel(std::string(KVMT_SHARED_DIR) + "/models/ct2-v2-aren-transliteration");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return new std::shared_ptr<const Model>(loaded.ok() ? std::move(*loaded) : nullptr);
  }();
  return *model;
}

// Requests that differ in sources, batch shape and options.
std::vector<v1::TranslateRequest> Requests() {
  const std::vector<std::vector<std::string>> texts = {
      {"آ ت ز م و ن"}, {"آ ز ا"}, {"آ ت ز م و ن", "آ ز ا", "م و ن"}, {"ز ا", "آ ت"}};
  std::vector<v1::TranslateRequest> requests;
  for (size_t i = 0; i < texts.size(); ++i) {
    for (const int beam : {1, 4}) {
      v1::TranslateRequest request;
      for (const std::string& text : texts[i]) request.add_segments()->set_text(text);
      request.mutable_options()->set_beam_size(beam);
      request.mutable_options()->set_num_hypotheses(beam == 4 ? 2 : 1);
      request.mutable_options()->set_return_scores(true);
      requests.push_back(request);
    }
  }
  return requests;
}

// Every caller translates every request kRounds times, each caller starting at a different one;
// each response must equal the one of translating that request alone.
void ExpectCallersGetWhatTheyGetAlone(const TranslatorOptions& options) {
  ASSERT_NE(RealModel(), nullptr);
  absl::StatusOr<std::unique_ptr<Translator>> created = Translator::Create(RealModel(), options);
  ASSERT_TRUE(created.ok()) << created.status();
  const Translator& translator = **created;
  const std::vector<v1::TranslateRequest> requests = Requests();
  std::vector<std::string> alone;
  for (const v1::TranslateRequest& request : requests) {
    absl::StatusOr<v1::TranslateResponse> response = translator.Translate(request);
    ASSERT_TRUE(response.ok()) << response.status();
    alone.push_back(response->SerializeAsString());
  }

  std::vector<std::vector<std::string>> errors(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (size_t k = 0; k < kRounds * requests.size(); ++k) {
        const size_t r = (k + static_cast<size_t>(c) * 3) % requests.size();
        absl::StatusOr<v1::TranslateResponse> response = translator.Translate(requests[r]);
        if (!response.ok()) {
          errors[c].push_back(std::string(response.status().ToString()));
        } else if (response->SerializeAsString() != alone[r]) {
          errors[c].push_back("request " + std::to_string(r) + ": " + response->DebugString());
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (int c = 0; c < kCallers; ++c) {
    EXPECT_TRUE(errors[c].empty()) << "caller " << c << ": " << errors[c].front();
  }
  const CacheStats stats = translator.cache_stats();
  EXPECT_EQ(stats.pool.reserved_blocks, 0);
  // Only the source cache may still hold blocks (its entries also count encoder outputs).
  EXPECT_LE(stats.pool.used_blocks * stats.pool.block_bytes, stats.source_cache.bytes);
}

TEST(TranslatorConcurrencyTest, CallersGetWhatTheyGetAlone) {
  TranslatorOptions options;
  options.threads = 2;
  ExpectCallersGetWhatTheyGetAlone(options);
}

TEST(TranslatorConcurrencyTest, CallersWaitForCacheMemoryAndAllGetThrough) {
  // 2 MiB holds one segment with beam 4 and the default 256 target positions: callers wait in
  // admission for each other's blocks.
  TranslatorOptions options;
  options.threads = 1;
  options.cache_memory_bytes = int64_t{2} << 20;
  options.source_cache_bytes = 0;
  ExpectCallersGetWhatTheyGetAlone(options);
}

TEST(TranslatorConcurrencyTest, CallersWithoutTheDecoderCacheGetWhatTheyGetAlone) {
  TranslatorOptions options;
  options.threads = 1;
  options.use_cache = false;
  ExpectCallersGetWhatTheyGetAlone(options);
}

}  // namespace
}  // namespace kvmt
