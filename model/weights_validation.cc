#include "model/weights_validation.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"

namespace kvmt {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

class Validator {
 public:
  Validator(const ModelConfig& config, absl::string_view file) : config_(config), file_(file) {}

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", what));
  }

  absl::Status Shape(const Tensor& tensor, const std::vector<int64_t>& expected,
                     absl::string_view name) const {
    if (tensor.shape() == expected) return absl::OkStatus();
    return Error(absl::StrCat("tensor '", name, "': expected shape ", ShapeString(expected),
                              ", got ",
                              tensor.shape().empty() ? "none" : ShapeString(tensor.shape())));
  }

  absl::Status Linear(const LinearWeights& linear, int64_t out, int64_t in,
                      absl::string_view name) const {
    if (linear.weight.empty() && !linear.quantized.empty()) {
      if (linear.quantized.rows() != out || linear.quantized.cols() != in) {
        return Error(absl::StrCat("tensor '", name, ".weight': expected shape ",
                                  ShapeString({out, in}), ", got int8 [", linear.quantized.rows(),
                                  ", ", linear.quantized.cols(), "]"));
      }
    } else {
      KVMT_RETURN_IF_ERROR(Shape(linear.weight, {out, in}, absl::StrCat(name, ".weight")));
    }
    if (linear.bias.empty() && linear.bias.shape().empty()) return absl::OkStatus();
    return Shape(linear.bias, {out}, absl::StrCat(name, ".bias"));
  }

  absl::Status Norm(const LayerNormWeights& norm, absl::string_view name) const {
    KVMT_RETURN_IF_ERROR(Shape(norm.gamma, {config_.d_model}, absl::StrCat(name, ".gamma")));
    return Shape(norm.beta, {config_.d_model}, absl::StrCat(name, ".beta"));
  }

  // A final norm is either absent altogether or complete.
  absl::Status OptionalNorm(const LayerNormWeights& norm, absl::string_view name) const {
    if (norm.gamma.shape().empty() && norm.beta.shape().empty()) return absl::OkStatus();
    return Norm(norm, name);
  }

  absl::Status TokenId(int32_t id, int64_t vocabulary_size, bool required,
                       absl::string_view name) const {
    if (!required && id == -1) return absl::OkStatus();
    if (id >= 0 && id < vocabulary_size) return absl::OkStatus();
    return Error(absl::StrCat("config ", name, " = ", id, " is outside the vocabulary [0, ",
                              vocabulary_size, ")", required ? "" : " and is not -1"));
  }

 private:
  const ModelConfig& config_;
  const absl::string_view file_;
};

absl::Status ValidateConfig(const ModelConfig& c, const Validator& v) {
  if (c.d_model <= 0) return v.Error(absl::StrCat("config d_model = ", c.d_model, " must be > 0"));
  if (c.num_heads <= 0 || c.d_model % c.num_heads != 0) {
    return v.Error(absl::StrCat("config num_heads = ", c.num_heads,
                                " must be > 0 and divide d_model = ", c.d_model));
  }
  if (c.ffn_dim <= 0) return v.Error(absl::StrCat("config ffn_dim = ", c.ffn_dim, " must be > 0"));
  if (c.encoder_layers <= 0 || c.decoder_layers <= 0) {
    return v.Error(absl::StrCat("config encoder_layers = ", c.encoder_layers,
                                " and decoder_layers = ", c.decoder_layers, " must both be > 0"));
  }
  if (!(c.layer_norm_epsilon > 0.0f) || !std::isfinite(c.layer_norm_epsilon)) {
    return v.Error(absl::StrCat("config layer_norm_epsilon = ", c.layer_norm_epsilon,
                                " must be finite and > 0"));
  }
  if (!(c.embedding_scale > 0.0f) || !std::isfinite(c.embedding_scale)) {
    return v.Error(
        absl::StrCat("config embedding_scale = ", c.embedding_scale, " must be finite and > 0"));
  }
  if (c.max_positions <= 0) {
    return v.Error(absl::StrCat("config max_positions = ", c.max_positions, " must be > 0"));
  }
  if (c.default_beam_size < 0) {
    return v.Error(
        absl::StrCat("config default_beam_size = ", c.default_beam_size, " must be >= 0"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTokenIds(const ModelConfig& c, const TransformerWeights& w,
                              const Validator& v) {
  const int64_t source_size = w.source_embeddings.dim(0);
  const int64_t target_size = w.target_embeddings.dim(0);
  KVMT_RETURN_IF_ERROR(v.TokenId(c.source_bos_id, source_size, c.add_source_bos, "source_bos_id"));
  KVMT_RETURN_IF_ERROR(v.TokenId(c.source_eos_id, source_size, c.add_source_eos, "source_eos_id"));
  KVMT_RETURN_IF_ERROR(v.TokenId(c.source_unk_id, source_size, false, "source_unk_id"));
  KVMT_RETURN_IF_ERROR(v.TokenId(c.decoder_start_id, target_size, true, "decoder_start_id"));
  KVMT_RETURN_IF_ERROR(v.TokenId(c.target_eos_id, target_size, true, "target_eos_id"));
  KVMT_RETURN_IF_ERROR(v.TokenId(c.target_unk_id, target_size, false, "target_unk_id"));
  for (const int32_t id : c.suppressed_target_ids) {
    KVMT_RETURN_IF_ERROR(v.TokenId(id, target_size, true, "suppressed_target_ids entry"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTables(const ModelConfig& c, const TransformerWeights& w, const Validator& v) {
  const int64_t d = c.d_model;
  if (w.source_embeddings.rank() != 2 || w.source_embeddings.dim(0) <= 0) {
    return v.Error(absl::StrCat("tensor 'source_embeddings': expected shape [vocabulary > 0, ", d,
                                "], got ", ShapeString(w.source_embeddings.shape())));
  }
  KVMT_RETURN_IF_ERROR(
      v.Shape(w.source_embeddings, {w.source_embeddings.dim(0), d}, "source_embeddings"));
  if (w.target_embeddings.rank() != 2 || w.target_embeddings.dim(0) <= 0) {
    return v.Error(absl::StrCat("tensor 'target_embeddings': expected shape [vocabulary > 0, ", d,
                                "], got ", ShapeString(w.target_embeddings.shape())));
  }
  const int64_t target_size = w.target_embeddings.dim(0);
  KVMT_RETURN_IF_ERROR(v.Shape(w.target_embeddings, {target_size, d}, "target_embeddings"));
  for (const auto& [table, name] :
       {std::pair<const Tensor&, const char*>{w.source_positions, "source_positions"},
        std::pair<const Tensor&, const char*>{w.target_positions, "target_positions"}}) {
    if (table.rank() != 2 || table.dim(0) < c.max_positions || table.dim(1) != d) {
      return v.Error(absl::StrCat("tensor '", name, "': expected shape [>= max_positions = ",
                                  c.max_positions, ", ", d, "], got ", ShapeString(table.shape())));
    }
  }
  return v.Linear(w.output_projection, target_size, d, "output_projection");
}

}  // namespace

absl::Status ValidateWeights(const ModelConfig& config, const TransformerWeights& weights,
                             std::string_view file) {
  const Validator v(config, absl::string_view(file.data(), file.size()));
  KVMT_RETURN_IF_ERROR(ValidateConfig(config, v));
  KVMT_RETURN_IF_ERROR(ValidateTables(config, weights, v));
  KVMT_RETURN_IF_ERROR(ValidateTokenIds(config, weights, v));

  const int64_t d = config.d_model;
  const int64_t ffn = config.ffn_dim;
  if (static_cast<int64_t>(weights.encoder_layers.size()) != config.encoder_layers) {
    return v.Error(absl::StrCat("config encoder_layers = ", config.encoder_layers,
                                " but there are ", weights.encoder_layers.size(),
                                " encoder layers"));
  }
  for (size_t i = 0; i < weights.encoder_layers.size(); ++i) {
    const EncoderLayerWeights& l = weights.encoder_layers[i];
    const std::string p = absl::StrCat("encoder_layers[", i, "].");
    KVMT_RETURN_IF_ERROR(v.Norm(l.self_attention_norm, p + "self_attention_norm"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.self_attention_qkv, 3 * d, d, p + "self_attention_qkv"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.self_attention_output, d, d, p + "self_attention_output"));
    KVMT_RETURN_IF_ERROR(v.Norm(l.ffn_norm, p + "ffn_norm"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.ffn_inner, ffn, d, p + "ffn_inner"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.ffn_outer, d, ffn, p + "ffn_outer"));
  }
  KVMT_RETURN_IF_ERROR(v.OptionalNorm(weights.encoder_final_norm, "encoder_final_norm"));

  if (static_cast<int64_t>(weights.decoder_layers.size()) != config.decoder_layers) {
    return v.Error(absl::StrCat("config decoder_layers = ", config.decoder_layers,
                                " but there are ", weights.decoder_layers.size(),
                                " decoder layers"));
  }
  for (size_t i = 0; i < weights.decoder_layers.size(); ++i) {
    const DecoderLayerWeights& l = weights.decoder_layers[i];
    const std::string p = absl::StrCat("decoder_layers[", i, "].");
    KVMT_RETURN_IF_ERROR(v.Norm(l.self_attention_norm, p + "self_attention_norm"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.self_attention_qkv, 3 * d, d, p + "self_attention_qkv"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.self_attention_output, d, d, p + "self_attention_output"));
    KVMT_RETURN_IF_ERROR(v.Norm(l.cross_attention_norm, p + "cross_attention_norm"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.cross_attention_query, d, d, p + "cross_attention_query"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.cross_attention_kv, 2 * d, d, p + "cross_attention_kv"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.cross_attention_output, d, d, p + "cross_attention_output"));
    KVMT_RETURN_IF_ERROR(v.Norm(l.ffn_norm, p + "ffn_norm"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.ffn_inner, ffn, d, p + "ffn_inner"));
    KVMT_RETURN_IF_ERROR(v.Linear(l.ffn_outer, d, ffn, p + "ffn_outer"));
  }
  return v.OptionalNorm(weights.decoder_final_norm, "decoder_final_norm");
}

}  // namespace kvmt
