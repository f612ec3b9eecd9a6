// ValidateWeights accepts consistent weights and names the first tensor or field that is not.
#include "model/weights_validation.h"

#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace kvmt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

RandomModelSpec Spec() {
  RandomModelSpec spec;
  spec.d_model = 8;
  spec.num_heads = 2;
  spec.ffn_dim = 12;
  spec.encoder_layers = 2;
  spec.decoder_layers = 3;
  spec.source_vocab = 11;
  spec.target_vocab = 9;
  spec.max_positions = 20;
  return spec;
}

absl::Status ValidateAfter(const std::function<void(Model&)>& change) {
  std::shared_ptr<Model> model = MakeRandomModel(Spec());
  change(*model);
  return ValidateWeights(model->config, model->weights, "my/model.bin");
}

void ExpectError(const std::function<void(Model&)>& change, const std::string& needle) {
  const absl::Status status = ValidateAfter(change);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << needle;
  EXPECT_THAT(status.ToString(), AllOf(HasSubstr("my/model.bin"), HasSubstr(needle)));
}

TEST(ValidateWeights, AcceptsConsistentWeights) {
  EXPECT_TRUE(ValidateAfter([](Model&) {}).ok());
  // Optional parts: biases and the final norms (post-norm models have none).
  EXPECT_TRUE(ValidateAfter([](Model& m) {
                m.weights.decoder_layers[1].ffn_inner.bias = Tensor();
                m.weights.output_projection.bias = Tensor();
                m.weights.encoder_final_norm = LayerNormWeights{};
                m.config.source_unk_id = 3;
                m.config.suppressed_target_ids = {0, 8};
              }).ok());
}

TEST(ValidateWeights, NamesTheTensorWithTheWrongShape) {
  ExpectError(
      [](Model& m) {
        m.weights.decoder_layers[2].cross_attention_kv.weight = Tensor({8, 8});
      },
      "tensor 'decoder_layers[2].cross_attention_kv.weight': expected shape [16, 8], got "
      "[8, 8]");
  ExpectError([](Model& m) { m.weights.encoder_layers[1].ffn_outer.bias = Tensor({12}); },
              "'encoder_layers[1].ffn_outer.bias': expected shape [8]");
  ExpectError([](Model& m) { m.weights.encoder_layers[0].self_attention_qkv.weight = Tensor(); },
              "'encoder_layers[0].self_attention_qkv.weight': expected shape [24, 8], got none");
  ExpectError([](Model& m) { m.weights.decoder_layers[0].ffn_norm.beta = Tensor(); },
              "'decoder_layers[0].ffn_norm.beta'");
  ExpectError([](Model& m) { m.weights.decoder_final_norm.beta = Tensor(); },
              "'decoder_final_norm.beta'");
  ExpectError(
      [](Model& m) {
        m.weights.output_projection.weight = Tensor({10, 8});
      },
      "'output_projection.weight': expected shape [9, 8]");
  ExpectError(
      [](Model& m) {
        m.weights.target_embeddings = Tensor({9, 7});
      },
      "'target_embeddings': expected shape [9, 8]");
  ExpectError([](Model& m) { m.weights.source_embeddings = Tensor({0, 8}); }, "source_embeddings");
  ExpectError([](Model& m) { m.weights.source_embeddings = Tensor({8}); }, "source_embeddings");
  ExpectError(
      [](Model& m) {
        m.weights.target_positions = Tensor({19, 8});
      },
      "'target_positions': expected shape [>= max_positions = 20, 8], got [19, 8]");
}

TEST(ValidateWeights, ChecksLayerCountsAndTheConfig) {
  ExpectError([](Model& m) { m.weights.decoder_layers.pop_back(); },
              "decoder_layers = 3 but there are 2");
  ExpectError([](Model& m) { m.config.encoder_layers = 0; }, "encoder_layers = 0");
  ExpectError([](Model& m) { m.config.num_heads = 3; }, "num_heads = 3");
  ExpectError([](Model& m) { m.config.d_model = 0; }, "d_model = 0");
  ExpectError([](Model& m) { m.config.ffn_dim = 0; }, "ffn_dim = 0");
  ExpectError([](Model& m) { m.config.layer_norm_epsilon = 0; }, "layer_norm_epsilon");
  ExpectError([](Model& m) { m.config.embedding_scale = std::nanf(""); }, "embedding_scale");
  ExpectError([](Model& m) { m.config.max_positions = 0; }, "max_positions = 0");
}

TEST(ValidateWeights, ChecksTokenIdsAgainstTheVocabularies) {
  ExpectError([](Model& m) { m.config.decoder_start_id = 9; }, "decoder_start_id = 9");
  ExpectError([](Model& m) { m.config.target_eos_id = -1; }, "target_eos_id = -1");
  ExpectError([](Model& m) { m.config.source_eos_id = 11; }, "source_eos_id = 11");
  ExpectError(
      [](Model& m) {
        m.config.add_source_bos = true;
        m.config.source_bos_id = -1;
      },
      "source_bos_id = -1");
  ExpectError([](Model& m) { m.config.target_unk_id = -2; }, "target_unk_id = -2");
  ExpectError([](Model& m) { m.config.suppressed_target_ids = {4, 9}; }, "suppressed_target_ids");
}

}  // namespace
}  // namespace kvmt
