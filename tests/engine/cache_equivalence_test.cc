// The KV-cached decoder against the textbook decoder that recomputes the whole prefix at every
// step: same logits at every position, same search results, on random models of every
// architecture variant and compute type, across cache block boundaries, with beams forking and
// dying. int8 rows are quantised one by one and accumulate in exact integers, so a row's result
// does not depend on how many rows share the product; bfloat16 accumulates in float32 in an order
// fixed per row: both hold the same tolerance as float32.
#include <memory>
#include <random>
#include <string>

#include "decoder/decoder.h"
#include "decoder/search/search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace kvmt {
namespace {

struct Variant {
  bool pre_norm;
  Activation activation;
  int d_model;
  int num_heads;
  ComputeType compute_type = ComputeType::kFloat32;
};

class CacheEquivalenceTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (GetParam().compute_type == ComputeType::kBFloat16 && !CpuHasNativeBFloat16()) {
      GTEST_SKIP() << "no native bfloat16 on this CPU";
    }
    if (GetParam().compute_type == ComputeType::kInt8 && !CpuHasInt8Dot()) {
      GTEST_SKIP() << "no VNNI/AMX on this CPU";
    }
    RandomModelSpec spec;
    spec.pre_norm = GetParam().pre_norm;
    spec.activation = GetParam().activation;
    spec.d_model = GetParam().d_model;
    spec.num_heads = GetParam().num_heads;
    spec.seed = 17;
    model_ = MakeRandomModel(spec);
    absl::StatusOr<std::unique_ptr<Encoder>> encoder =
        Encoder::Create(model_->config, model_->weights, GetParam().compute_type);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    encoder_ = *std::move(encoder);
    absl::StatusOr<std::unique_ptr<Decoder>> decoder =
        Decoder::Create(model_->config, model_->weights, GetParam().compute_type);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    decoder_ = *std::move(decoder);
  }

  std::vector<std::vector<int32_t>> Sources() const {
    std::mt19937 generator(3);
    std::uniform_int_distribution<int32_t> token(2, 39);
    std::vector<std::vector<int32_t>> sources;
    for (int length : {7, 2, 12}) {
      std::vector<int32_t> ids;
      for (int i = 0; i < length; ++i) ids.push_back(token(generator));
      ids.push_back(1);
      sources.push_back(ids);
    }
    return sources;
  }

  std::vector<SearchResult> RunSearch(bool cached, const std::vector<std::vector<int32_t>>& sources,
                                      const std::vector<std::vector<int32_t>>& prefixes,
                                      const SearchOptions& options) {
    auto encoded = encoder_->Encode(sources);
    EXPECT_TRUE(encoded.ok()) << encoded.status();
    std::unique_ptr<StepModel> step_model =
        cached ? MakeCachedStepModel(
                     *decoder_, std::make_shared<BlockPool>(
                                    KVLayoutFor(model_->config).block_floats(), int64_t{64} << 20))
               : MakeUncachedStepModel(*decoder_);
    const SearchVocabulary vocabulary{0, 1, {}, 30};
    auto results = Search(*step_model, *encoded, prefixes, options, vocabulary);
    EXPECT_TRUE(results.ok()) << results.status();
    return *results;
  }

  std::shared_ptr<Model> model_;
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Decoder> decoder_;
};

TEST_P(CacheEquivalenceTest, ForcedLogitsEqualFullRecomputation) {
  auto encoded = encoder_->Encode(Sources());
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  // 20 steps: crosses the cache's 16-position block boundary.
  std::vector<int32_t> target;
  for (int i = 0; i < 20; ++i) target.push_back(2 + (i * 7) % 28);
  for (const auto& source : *encoded) {
    absl::StatusOr<Tensor> cached = decoder_->ForcedLogits(source, target);
    ASSERT_TRUE(cached.ok()) << cached.status();
    const int64_t vocab = cached->dim(1);
    for (size_t t = 0; t < target.size(); ++t) {
      std::vector<int32_t> inputs = {0};
      inputs.insert(inputs.end(), target.begin(), target.begin() + t);
      Tensor full;
      ASSERT_TRUE(decoder_->StepWithoutCache({inputs}, {source.get()}, full).ok());
      for (int64_t v = 0; v < vocab; ++v) {
        ASSERT_NEAR(cached->data()[t * vocab + v], full.data()[v], 1e-4) << "step " << t;
      }
    }
  }
}

TEST_P(CacheEquivalenceTest, SearchResultsEqualWithAndWithoutCache) {
  const auto sources = Sources();
  const std::vector<std::vector<int32_t>> prefixes = {{}, {5, 6}, {}};
  for (int beam : {1, 4}) {
    SearchOptions options;
    options.beam_size = beam;
    options.num_hypotheses = beam;
    options.max_decoding_length = 24;
    const auto cached = RunSearch(true, sources, prefixes, options);
    const auto uncached = RunSearch(false, sources, prefixes, options);
    ASSERT_EQ(cached.size(), uncached.size());
    for (size_t s = 0; s < cached.size(); ++s) {
      ASSERT_EQ(cached[s].hypotheses.size(), uncached[s].hypotheses.size());
      ASSERT_EQ(cached[s].hypotheses.size(), static_cast<size_t>(beam));
      for (size_t h = 0; h < cached[s].hypotheses.size(); ++h) {
        EXPECT_EQ(cached[s].hypotheses[h].ids, uncached[s].hypotheses[h].ids)
            << "beam " << beam << " segment " << s << " hypothesis " << h;
        EXPECT_NEAR(cached[s].hypotheses[h].score, uncached[s].hypotheses[h].score, 1e-4);
      }
    }
    EXPECT_EQ(cached[1].hypotheses[0].ids[0], 5);
    EXPECT_EQ(cached[1].hypotheses[0].ids[1], 6);
  }
}

TEST_P(CacheEquivalenceTest, BatchingDoesNotChangeResults) {
  const auto sources = Sources();
  SearchOptions options;
  options.beam_size = 3;
  options.num_hypotheses = 2;
  options.max_decoding_length = 20;
  const auto together = RunSearch(true, sources, {{}, {}, {}}, options);
  for (size_t s = 0; s < sources.size(); ++s) {
    const auto alone = RunSearch(true, {sources[s]}, {{}}, options);
    for (size_t h = 0; h < alone[0].hypotheses.size(); ++h) {
      EXPECT_EQ(together[s].hypotheses[h].ids, alone[0].hypotheses[h].ids) << s;
      EXPECT_NEAR(together[s].hypotheses[h].score, alone[0].hypotheses[h].score, 1e-4);
    }
  }
}

std::string VariantName(const ::testing::TestParamInfo<Variant>& info) {
  const char* const activations[] = {"relu", "gelu", "gelutanh", "swish"};
  const Variant& v = info.param;
  return std::string(v.pre_norm ? "prenorm_" : "postnorm_") +
         activations[static_cast<int>(v.activation)] + "_d" + std::to_string(v.d_model) + "_h" +
         std::to_string(v.num_heads) + "_" + std::string(ComputeTypeName(v.compute_type));
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, CacheEquivalenceTest,
    ::testing::Values(Variant{true, Activation::kRelu, 16, 4},
                      Variant{false, Activation::kRelu, 16, 4},
                      Variant{true, Activation::kGelu, 15, 3},
                      Variant{false, Activation::kSwish, 15, 5},
                      Variant{false, Activation::kGeluTanh, 16, 2},
                      Variant{true, Activation::kRelu, 16, 4, ComputeType::kInt8},
                      Variant{false, Activation::kSwish, 15, 5, ComputeType::kInt8},
                      Variant{true, Activation::kGelu, 15, 3, ComputeType::kBFloat16},
                      Variant{false, Activation::kSwish, 15, 5, ComputeType::kBFloat16}),
    VariantName);

}  // namespace
}  // namespace kvmt
