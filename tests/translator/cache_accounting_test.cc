// The K/V block pool's accounting through whole translations: every block returns when a segment
// finishes, fails or is cancelled; a small pool splits batches without changing results; source
// cache hits give what a cold encoder and the no-cache decoder give, on both model formats.
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "decoder/decoder.h"
#include "decoder/search/batch_search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "tests/reference/cached_generation.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

using ::testing::HasSubstr;

std::vector<std::vector<int32_t>> RandomSources(int count, unsigned seed, int vocab) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int32_t> token(2, vocab - 1);
  std::uniform_int_distribution<int> length(1, 30);
  std::vector<std::vector<int32_t>> sources(count);
  for (auto& source : sources) {
    for (int i = length(generator); i > 0; --i) source.push_back(token(generator));
    source.push_back(1);
  }
  return sources;
}

std::vector<SegmentIds> AsSegments(const std::vector<std::vector<int32_t>>& sources) {
  std::vector<SegmentIds> segments;
  for (const auto& source : sources) segments.push_back({source, {}});
  return segments;
}

void ExpectPoolEmpty(const Translator& translator) {
  const BlockPoolStats pool = translator.cache_stats().pool;
  EXPECT_EQ(pool.used_blocks, 0);
  EXPECT_EQ(pool.reserved_blocks, 0);
}

std::unique_ptr<Translator> MakeTranslator(std::shared_ptr<const Model> model, bool use_cache,
                                           int64_t pool_bytes, int64_t source_cache_bytes) {
  TranslatorOptions options;
  options.threads = 1;
  options.use_cache = use_cache;
  options.cache_memory_bytes = pool_bytes;
  options.source_cache_bytes = source_cache_bytes;
  auto translator = Translator::Create(std::move(model), options);
  EXPECT_TRUE(translator.ok()) << translator.status();
  return translator.ok() ? std::move(*translator) : nullptr;
}

SearchOptions Beam(int beam_size, int max_length) {
  SearchOptions options;
  options.beam_size = beam_size;
  options.num_hypotheses = beam_size;
  options.max_decoding_length = max_length;
  return options;
}

void ExpectSameResults(const std::vector<SearchResult>& actual,
                       const std::vector<SearchResult>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_EQ(actual[i].hypotheses.size(), expected[i].hypotheses.size()) << "segment " << i;
    for (size_t h = 0; h < actual[i].hypotheses.size(); ++h) {
      EXPECT_EQ(actual[i].hypotheses[h].ids, expected[i].hypotheses[h].ids)
          << "segment " << i << " hypothesis " << h;
      EXPECT_NEAR(actual[i].hypotheses[h].score, expected[i].hypotheses[h].score, 1e-4)
          << "segment " << i << " hypothesis " << h;
    }
  }
}

class RandomModelPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RandomModelSpec spec;
    spec.seed = 23;
    model_ = MakeRandomModel(spec);
  }
  std::shared_ptr<Model> model_;
};

TEST_F(RandomModelPoolTest, CancellingASegmentReturnsItsBlocksAtOnceAndTheRestWhenAllEnd) {
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_encoder.ok()) << made_encoder.status();
  Encoder& encoder = **made_encoder;
  absl::StatusOr<std::unique_ptr<Decoder>> made_decoder =
      Decoder::Create(model_->config, model_->weights);
  ASSERT_TRUE(made_decoder.ok()) << made_decoder.status();
  Decoder& decoder = **made_decoder;
  const KVBlockLayout layout = KVLayoutFor(model_->config);
  auto pool = std::make_shared<BlockPool>(layout.block_floats(), int64_t{16} << 20);
  {
    CachedStepModel step_model(decoder, pool);
    BatchSearch search(step_model, SearchVocabulary{0, 1, {}, 30});
    auto encoded = encoder.Encode(RandomSources(3, 5, 40), pool);
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    const int64_t source_blocks = pool->stats().used_blocks;
    SearchOptions options = Beam(4, 60);
    options.min_decoding_length = 40;  // Past two block boundaries before anyone may finish.
    for (uint64_t i = 0; i < encoded->size(); ++i) {
      ASSERT_TRUE(search.Add(i, (*encoded)[i], {}, options).ok());
    }
    SearchStepOutput output;
    for (int step = 0; step < 20; ++step) ASSERT_TRUE(search.Step(output).ok());
    const int64_t decoding = pool->stats().used_blocks;
    ASSERT_GT(decoding, source_blocks);

    ASSERT_TRUE(search.Cancel(1).ok());
    const int64_t after_cancel = pool->stats().used_blocks;
    EXPECT_LT(after_cancel, decoding) << "the cancelled beams' blocks are still held";
    // Whatever the beams share, 20 positions fill one full block of the segment's history.
    EXPECT_LE(after_cancel, decoding - 2);

    while (!search.empty()) ASSERT_TRUE(search.Step(output).ok());
    EXPECT_EQ(pool->stats().used_blocks, source_blocks) << "finished segments keep blocks";
  }
  EXPECT_EQ(pool->stats().used_blocks, 0) << "the sources' blocks outlive their segments";
  EXPECT_EQ(pool->stats().reserved_blocks, 0);
}

TEST_F(RandomModelPoolTest, PoolIsEmptyAfterSuccessAndAfterFailure) {
  auto translator = MakeTranslator(model_, true, int64_t{4} << 20, /*source_cache_bytes=*/0);
  ASSERT_NE(translator, nullptr);
  const auto segments = AsSegments(RandomSources(9, 7, 40));
  for (int beam : {1, 4}) {
    ASSERT_TRUE(translator->TranslateIds(segments, Beam(beam, 50)).ok());
    ExpectPoolEmpty(*translator);
  }
  // A request that fails (a source longer than the model's positions) leaves nothing either.
  std::vector<SegmentIds> too_long = segments;
  too_long.push_back({std::vector<int32_t>(500, 3), {}});
  EXPECT_FALSE(translator->TranslateIds(too_long, Beam(4, 50)).ok());
  ExpectPoolEmpty(*translator);
}

TEST_F(RandomModelPoolTest, ASegmentThatCanNeverFitFailsNamingTheLimitAndFreesEverything) {
  // 3 blocks of 16 positions: no beam of 4 over 100 target tokens fits, however long it waits.
  const int64_t block_bytes = KVLayoutFor(model_->config).block_floats() * 4;
  auto translator = MakeTranslator(model_, true, 3 * block_bytes, 0);
  ASSERT_NE(translator, nullptr);
  SearchOptions options = Beam(4, 100);
  auto results = translator->TranslateIds(AsSegments(RandomSources(2, 9, 40)), options);
  ASSERT_EQ(results.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(results.status().message()), HasSubstr("cache memory limit"));
  ExpectPoolEmpty(*translator);
}

TEST_F(RandomModelPoolTest, ASmallPoolSplitsTheBatchWithoutChangingResults) {
  const auto segments = AsSegments(RandomSources(12, 11, 40));
  const SearchOptions options = Beam(4, 40);
  auto large = MakeTranslator(model_, true, int64_t{64} << 20, 0);
  // Room for about two segments of beam 4 at a time (source and 4 x 40 positions of K/V).
  const int64_t block_bytes = KVLayoutFor(model_->config).block_floats() * 4;
  auto small = MakeTranslator(model_, true, 30 * block_bytes, 0);
  ASSERT_NE(large, nullptr);
  ASSERT_NE(small, nullptr);
  auto expected = large->TranslateIds(segments, options);
  auto actual = small->TranslateIds(segments, options);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_TRUE(actual.ok()) << actual.status();
  ExpectSameResults(*actual, *expected);
  const BlockPoolStats pool = small->cache_stats().pool;
  EXPECT_LE(pool.peak_used_blocks, pool.total_blocks);
  EXPECT_LT(pool.peak_used_blocks, large->cache_stats().pool.peak_used_blocks)
      << "the small pool did not split the batch";
  ExpectPoolEmpty(*small);
}

// A request translated cold, then hot from the source cache, then by the textbook decoder: the
// same hypotheses every time.
void ExpectSourceCacheTransparent(std::shared_ptr<const Model> model,
                                  const v1::TranslateRequest& request, int distinct_sources) {
  auto cached = MakeTranslator(model, true, int64_t{64} << 20, int64_t{16} << 20);
  auto uncached = MakeTranslator(model, false, int64_t{64} << 20, 0);
  ASSERT_NE(cached, nullptr);
  ASSERT_NE(uncached, nullptr);
  auto cold = cached->Translate(request);
  ASSERT_TRUE(cold.ok()) << cold.status();
  const SourceCacheStats after_cold = cached->cache_stats().source_cache;
  EXPECT_EQ(after_cold.hits, 0);
  EXPECT_EQ(after_cold.entries, distinct_sources) << "a repeated source is encoded once";
  auto hot = cached->Translate(request);
  ASSERT_TRUE(hot.ok()) << hot.status();
  const SourceCacheStats after_hot = cached->cache_stats().source_cache;
  EXPECT_EQ(after_hot.hits, request.segments_size()) << "every source is a hit the second time";
  EXPECT_EQ(after_hot.entries, after_cold.entries);
  auto reference = uncached->Translate(request);
  ASSERT_TRUE(reference.ok()) << reference.status();

  ASSERT_EQ(cold->results_size(), request.segments_size());
  for (int i = 0; i < request.segments_size(); ++i) {
    const auto& c = cold->results(i);
    const auto& h = hot->results(i);
    const auto& r = reference->results(i);
    ASSERT_EQ(c.hypotheses_size(), r.hypotheses_size()) << "segment " << i;
    ASSERT_EQ(h.hypotheses_size(), r.hypotheses_size()) << "segment " << i;
    for (int k = 0; k < r.hypotheses_size(); ++k) {
      EXPECT_EQ(c.hypotheses(k).text(), r.hypotheses(k).text()) << "segment " << i;
      EXPECT_EQ(h.hypotheses(k).text(), c.hypotheses(k).text()) << "segment " << i;
      EXPECT_EQ(h.hypotheses(k).score(), c.hypotheses(k).score()) << "segment " << i;
      EXPECT_NEAR(c.hypotheses(k).score(), r.hypotheses(k).score(), 1e-4) << "segment " << i;
    }
  }
  const BlockPoolStats pool = cached->cache_stats().pool;
  EXPECT_EQ(pool.reserved_blocks, 0);
  // Blocks still in use belong to the source cache's entries (whose bytes also count the
  // encoder outputs, kept outside the pool).
  EXPECT_GT(pool.used_blocks, 0);
  EXPECT_LE(pool.used_blocks * pool.block_bytes, after_hot.bytes)
      << "beyond the source cache's entries, the pool holds nothing";
}

v1::TranslateRequest RequestFromLines(const std::string& path, int count, int beam) {
  v1::TranslateRequest request;
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < count && std::getline(in, line); ++i) {
    request.add_segments()->set_text(line);
  }
  request.mutable_options()->set_beam_size(beam);
  request.mutable_options()->set_num_hypotheses(beam > 1 ? 2 : 1);
  request.mutable_options()->set_return_scores(true);
  return request;
}

TEST(TranslatorSourceCacheTest, HotEqualsColdEqualsNoCacheOnTheCTranslate2Model) {
  auto model = LoadModel(std::string(KVMT_SHARED_DIR) + "/models/ct2-v2-aren-transliteration");
  ASSERT_TRUE(model.ok()) << model.status();
  std::shared_ptr<const Model> shared = std::move(*model);
  // Arabic words, one character per token; the same source with two target prefixes.
  v1::TranslateRequest request;
  for (const char* text : {"\u0622 \u062a \u0632 \u0645 \u0648 \u0646", "\u0622 \u0632 \u0627",
                           "\u0645 \u0648 \u0646 \u0627 \u0632 \u062a \u0622 \u0645"}) {
    request.add_segments()->set_text(text);
  }
  *request.add_segments() = request.segments(0);
  request.mutable_segments(3)->set_target_prefix("a");
  const int distinct_sources = 3;
  for (int beam : {1, 4}) {
    request.mutable_options()->set_beam_size(beam);
    request.mutable_options()->set_num_hypotheses(beam > 1 ? 2 : 1);
    request.mutable_options()->set_return_scores(true);
    SCOPED_TRACE(absl::StrCat("beam ", beam));
    ExpectSourceCacheTransparent(shared, request, distinct_sources);
  }
}

TEST(TranslatorSourceCacheTest, HotEqualsColdEqualsNoCacheOnAMarianModel) {
  absl::StatusOr<std::string> generated =
      testing::CachedGeneration("cache_accounting_test", [](const std::string& out) {
        return absl::StrCat(
            KVMT_PYTHON, " ", KVMT_SOURCE_DIR, "/tests/reference/make_marian_model.py ", out,
            "/model --seed 21 --activation swish --max-positions 256 --source-text ",
            KVMT_SHARED_DIR, "/testsets/flores200.devtest.eng_Latn --target-text ", KVMT_SHARED_DIR,
            "/testsets/flores200.devtest.deu_Latn");
      });
  ASSERT_TRUE(generated.ok()) << generated.status();
  auto model = LoadModel(*generated + "/model");
  ASSERT_TRUE(model.ok()) << model.status();
  std::shared_ptr<const Model> shared = std::move(*model);
  const std::string testset = std::string(KVMT_SHARED_DIR) + "/testsets/flores200.devtest.eng_Latn";
  for (int beam : {1, 4}) {
    SCOPED_TRACE(absl::StrCat("beam ", beam));
    ExpectSourceCacheTransparent(shared, RequestFromLines(testset, 4, beam), 4);
  }
}

}  // namespace
}  // namespace kvmt
