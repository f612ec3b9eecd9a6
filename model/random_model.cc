#include "model/random_model.h"

#include <cmath>
#include <random>

#include "model/position_encodings.h"

namespace kvmt {
namespace {

class Filler {
 public:
  explicit Filler(unsigned seed) : generator_(seed) {}

  Tensor Normal(std::vector<int64_t> shape, float stddev) {
    Tensor t(std::move(shape));
    std::normal_distribution<float> normal(0.0f, stddev);
    for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = normal(generator_);
    return t;
  }

  LinearWeights Linear(int64_t out, int64_t in) {
    return LinearWeights{Normal({out, in}, 1.0f / std::sqrt(static_cast<float>(in))),
                         Normal({out}, 0.1f)};
  }

  LayerNormWeights Norm(int64_t d) {
    LayerNormWeights norm{Normal({d}, 0.1f), Normal({d}, 0.1f)};
    for (int64_t i = 0; i < d; ++i) norm.gamma.data()[i] += 1.0f;
    return norm;
  }

 private:
  std::mt19937 generator_;
};

}  // namespace

std::shared_ptr<Model> MakeRandomModel(const RandomModelSpec& spec) {
  auto model = std::make_shared<Model>();
  ModelConfig& c = model->config;
  c.format = "random";
  c.d_model = spec.d_model;
  c.num_heads = spec.num_heads;
  c.ffn_dim = spec.ffn_dim;
  c.encoder_layers = spec.encoder_layers;
  c.decoder_layers = spec.decoder_layers;
  c.pre_norm = spec.pre_norm;
  c.activation = spec.activation;
  c.layer_norm_epsilon = 1e-5f;
  c.embedding_scale = std::sqrt(static_cast<float>(spec.d_model));
  c.add_source_eos = true;
  c.source_eos_id = 1;
  c.decoder_start_id = 0;
  c.target_eos_id = 1;
  c.max_positions = spec.max_positions;

  Filler f(spec.seed);
  const int64_t d = spec.d_model;
  TransformerWeights& w = model->weights;
  w.source_embeddings = f.Normal({spec.source_vocab, d}, 0.5f);
  w.target_embeddings = f.Normal({spec.target_vocab, d}, 0.5f);
  w.source_positions = OpenNmtSinusoidalPositions(spec.max_positions, spec.d_model);
  w.target_positions = w.source_positions;
  for (int l = 0; l < spec.encoder_layers; ++l) {
    w.encoder_layers.push_back(EncoderLayerWeights{f.Norm(d), f.Linear(3 * d, d), f.Linear(d, d),
                                                   f.Norm(d), f.Linear(spec.ffn_dim, d),
                                                   f.Linear(d, spec.ffn_dim)});
  }
  for (int l = 0; l < spec.decoder_layers; ++l) {
    w.decoder_layers.push_back(
        DecoderLayerWeights{f.Norm(d), f.Linear(3 * d, d), f.Linear(d, d), f.Norm(d),
                            f.Linear(d, d), f.Linear(2 * d, d), f.Linear(d, d), f.Norm(d),
                            f.Linear(spec.ffn_dim, d), f.Linear(d, spec.ffn_dim)});
  }
  if (spec.pre_norm) {
    w.encoder_final_norm = f.Norm(d);
    w.decoder_final_norm = f.Norm(d);
  }
  // A larger output scale keeps the distributions peaked enough for beams to differ.
  w.output_projection =
      LinearWeights{f.Normal({spec.target_vocab, d}, 1.0f), f.Normal({spec.target_vocab}, 0.5f)};
  return model;
}

}  // namespace kvmt
