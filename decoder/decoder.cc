#include "decoder/decoder.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "cache/paged_kv_cache.h"
#include "core/attention.h"
#include "core/ops.h"
#include "core/parallel_for.h"
#include "core/profile.h"
#include "core/status_macros.h"
#include "encoder/sublayer.h"

namespace kvmt {
namespace {

// Scratch slots of DecoderState.
enum Slot { kX, kNormed, kQkv, kContext, kProjected, kInner, kLogits };

// Per-thread attention buffers, kept across steps (OpenMP threads persist) and sized for the
// longest sequence up front, so that steps do not allocate once warmed up.
struct AttentionScratch {
  std::vector<KeyValueRows> runs;
  std::vector<float> scores;
};

AttentionScratch& ThreadAttentionScratch(int64_t max_rows, int block_size) {
  thread_local AttentionScratch scratch;
  if (static_cast<int64_t>(scratch.scores.size()) < max_rows) {
    scratch.scores.resize(max_rows);
    scratch.runs.reserve((max_rows + block_size - 1) / block_size);
  }
  return scratch;
}

absl::Status CheckTokens(absl::Span<const int32_t> tokens, int64_t vocab) {
  for (int32_t id : tokens) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("target id ", id, " is outside the vocabulary of ", vocab));
    }
  }
  return absl::OkStatus();
}

// Cross-attention of query row i over the source K/V blocks of layer `layer` of
// sources[i / rows_per_source].
void CrossAttend(const float* queries, int64_t rows, absl::Span<const EncodedSource* const> sources,
                 int64_t rows_per_source, int layer, AttentionShape shape, int64_t max_source,
                 float* context) {
  const int64_t d = static_cast<int64_t>(shape.num_heads) * shape.head_dim;
  ParallelFor(rows, 2 * sources[0]->length() * d, [&](int64_t row) {
    const EncodedSource& source = *sources[row / rows_per_source];
    const int block_size = source.layout().block_size;
    AttentionScratch& scratch = ThreadAttentionScratch(max_source, block_size);
    scratch.runs.clear();
    for (int b = 0; b < source.num_blocks(); ++b) {
      scratch.runs.push_back(KeyValueRows{source.KeyBlock(layer, b), source.ValueBlock(layer, b),
                                          std::min(block_size, source.length() - b * block_size),
                                          d});
    }
    AttendQuery(queries + row * d, scratch.runs, shape, scratch.scores.data(), context + row * d);
  });
}

}  // namespace

Decoder::Decoder(const ModelConfig& config, const TransformerWeights& weights)
    : config_(config), weights_(weights) {}

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Create(const ModelConfig& config,
                                                         const TransformerWeights& weights,
                                                         ComputeType compute_type) {
  std::unique_ptr<Decoder> decoder(new Decoder(config, weights));
  for (const DecoderLayerWeights& layer : weights.decoder_layers) {
    Layer built;
    KVMT_ASSIGN_OR_RETURN(built.self_attention_qkv,
                          MakeLayerLinear(layer.self_attention_qkv, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.self_attention_output,
                          MakeLayerLinear(layer.self_attention_output, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.cross_attention_query,
                          MakeLayerLinear(layer.cross_attention_query, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.cross_attention_output,
                          MakeLayerLinear(layer.cross_attention_output, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.ffn_inner,
                          MakeLayerLinear(layer.ffn_inner, compute_type, config.activation));
    KVMT_ASSIGN_OR_RETURN(built.ffn_outer, MakeLayerLinear(layer.ffn_outer, compute_type));
    decoder->layers_.push_back(std::move(built));
  }
  KVMT_ASSIGN_OR_RETURN(decoder->output_projection_,
                        MakeLayerLinear(weights.output_projection, compute_type));
  return decoder;
}

absl::StatusOr<absl::Span<float>> Decoder::Step(absl::Span<const int32_t> tokens,
                                                DecoderState& state) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n != state.num_hypotheses()) {
    return absl::InvalidArgumentError(
        absl::StrCat("decoder step: ", n, " tokens for ", state.num_hypotheses(), " hypotheses"));
  }
  const int64_t vocab = output_projection_->out_features();
  if (n == 0) return absl::Span<float>();
  if (absl::Status status = CheckTokens(tokens, weights_.target_embeddings.dim(0)); !status.ok()) {
    return status;
  }
  const int64_t d = config_.d_model;
  const AttentionShape shape{config_.num_heads, config_.d_model / config_.num_heads};
  SelfAttentionCache& cache = state.cache();

  std::vector<int32_t>& positions = state.positions();
  positions.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    if (state.length(i) >= weights_.target_positions.dim(0)) {
      return absl::OutOfRangeError(absl::StrCat("target length ", state.length(i) + 1,
                                                " exceeds the model's ",
                                                weights_.target_positions.dim(0), " positions"));
    }
    absl::StatusOr<int> position = cache.Append(i);
    if (!position.ok()) return position.status();
    positions[i] = *position;
  }

  float* x = state.Scratch(kX, n * d);
  float* normed = state.Scratch(kNormed, n * d);
  float* qkv = state.Scratch(kQkv, n * 3 * d);
  float* context = state.Scratch(kContext, n * d);
  float* projected = state.Scratch(kProjected, n * d);
  float* inner = state.Scratch(kInner, n * config_.ffn_dim);
  EmbedTokens(weights_.target_embeddings, tokens, config_.embedding_scale,
              weights_.target_positions, positions, x);

  std::vector<const EncodedSource*>& sources = state.source_pointers();
  sources.resize(n);
  for (int64_t i = 0; i < n; ++i) sources[i] = &state.source(i);
  const int block_size = cache.block_size();
  const int64_t max_target = weights_.target_positions.dim(0);
  const int64_t max_source = weights_.source_positions.dim(0);

  for (size_t l = 0; l < layers_.size(); ++l) {
    const int layer_index = static_cast<int>(l);
    const DecoderLayerWeights& layer = weights_.decoder_layers[l];
    const Layer& linears = layers_[l];

    // Self-attention: Q/K/V of the new token only; K/V go to the cache, Q attends over it.
    std::optional<ScopedStageTimer> timer(std::in_place, Stage::kSelfAttention);
    const float* input = SublayerInput(config_, layer.self_attention_norm, x, n, normed);
    linears.self_attention_qkv->Forward(input, n, qkv);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(cache.KeyRow(i, layer_index, positions[i]), qkv + i * 3 * d + d,
                  d * sizeof(float));
      std::memcpy(cache.ValueRow(i, layer_index, positions[i]), qkv + i * 3 * d + 2 * d,
                  d * sizeof(float));
    }
    ParallelFor(n, 2 * (positions[0] + 1) * d, [&](int64_t i) {
      const int length = positions[i] + 1;
      AttentionScratch& scratch = ThreadAttentionScratch(max_target, block_size);
      scratch.runs.clear();
      for (int b = 0; b * block_size < length; ++b) {
        scratch.runs.push_back(KeyValueRows{cache.KeyBlock(i, layer_index, b),
                                            cache.ValueBlock(i, layer_index, b),
                                            std::min(block_size, length - b * block_size), d});
      }
      AttendQuery(qkv + i * 3 * d, scratch.runs, shape, scratch.scores.data(), context + i * d);
    });
    linears.self_attention_output->Forward(context, n, projected);
    SublayerResidual(config_, layer.self_attention_norm, x, projected, n);

    // Cross-attention over the source K/V computed once by the encoder.
    timer.emplace(Stage::kCrossAttention);
    input = SublayerInput(config_, layer.cross_attention_norm, x, n, normed);
    linears.cross_attention_query->Forward(input, n, projected);
    CrossAttend(projected, n, sources, 1, layer_index, shape, max_source, context);
    linears.cross_attention_output->Forward(context, n, projected);
    SublayerResidual(config_, layer.cross_attention_norm, x, projected, n);

    timer.emplace(Stage::kFeedForward);
    FeedForwardSublayer(config_, layer.ffn_norm, *linears.ffn_inner, *linears.ffn_outer, x, n,
                        normed, inner, projected);
  }
  const ScopedStageTimer timer(Stage::kOutputProjection);
  FinalNorm(config_, weights_.decoder_final_norm, x, n);

  float* logits = state.Scratch(kLogits, n * vocab);
  output_projection_->Forward(x, n, logits);
  return absl::Span<float>(logits, static_cast<size_t>(n * vocab));
}

absl::Status Decoder::StepWithoutCache(const std::vector<std::vector<int32_t>>& inputs,
                                       const std::vector<const EncodedSource*>& sources,
                                       Tensor& logits) const {
  const int batch = static_cast<int>(inputs.size());
  if (static_cast<int>(sources.size()) != batch) {
    return absl::InvalidArgumentError("decoder: one source per input sequence is required");
  }
  const int64_t d = config_.d_model;
  const int64_t vocab = output_projection_->out_features();
  const AttentionShape shape{config_.num_heads, config_.d_model / config_.num_heads};
  int64_t max_length = 0;
  for (const auto& sequence : inputs) {
    if (sequence.empty()) return absl::InvalidArgumentError("decoder: empty input sequence");
    if (absl::Status status = CheckTokens(sequence, weights_.target_embeddings.dim(0));
        !status.ok()) {
      return status;
    }
    max_length = std::max<int64_t>(max_length, sequence.size());
  }
  if (max_length > weights_.target_positions.dim(0)) {
    return absl::OutOfRangeError(absl::StrCat("target length ", max_length, " exceeds the model's ",
                                              weights_.target_positions.dim(0), " positions"));
  }

  // Padded [batch, max_length, d]; every position is recomputed from scratch.
  const int64_t rows = batch * max_length;
  std::vector<int32_t> ids(rows, 0);
  std::vector<int32_t> positions(rows);
  std::vector<int32_t> lengths(batch);
  for (int b = 0; b < batch; ++b) {
    lengths[b] = static_cast<int32_t>(inputs[b].size());
    for (int64_t t = 0; t < max_length; ++t) {
      ids[b * max_length + t] = t < lengths[b] ? inputs[b][t] : 0;
      positions[b * max_length + t] = static_cast<int32_t>(t);
    }
  }
  Tensor x({rows, d});
  Tensor normed({rows, d});
  Tensor qkv({rows, 3 * d});
  Tensor context({rows, d});
  Tensor projected({rows, d});
  Tensor inner({rows, static_cast<int64_t>(config_.ffn_dim)});
  EmbedTokens(weights_.target_embeddings, ids, config_.embedding_scale, weights_.target_positions,
              positions, x.data());

  for (size_t l = 0; l < layers_.size(); ++l) {
    const DecoderLayerWeights& layer = weights_.decoder_layers[l];
    const Layer& linears = layers_[l];
    const float* input =
        SublayerInput(config_, layer.self_attention_norm, x.data(), rows, normed.data());
    linears.self_attention_qkv->Forward(input, rows, qkv.data());
    SequenceAttention(qkv.data(), 3 * d, qkv.data() + d, qkv.data() + 2 * d, 3 * d, batch,
                      max_length, max_length, lengths, /*causal=*/true, shape, context.data(), d);
    linears.self_attention_output->Forward(context.data(), rows, projected.data());
    SublayerResidual(config_, layer.self_attention_norm, x.data(), projected.data(), rows);

    input = SublayerInput(config_, layer.cross_attention_norm, x.data(), rows, normed.data());
    linears.cross_attention_query->Forward(input, rows, projected.data());
    CrossAttend(projected.data(), rows, sources, max_length, static_cast<int>(l), shape,
                weights_.source_positions.dim(0), context.data());
    linears.cross_attention_output->Forward(context.data(), rows, projected.data());
    SublayerResidual(config_, layer.cross_attention_norm, x.data(), projected.data(), rows);

    FeedForwardSublayer(config_, layer.ffn_norm, *linears.ffn_inner, *linears.ffn_outer, x.data(),
                        rows, normed.data(), inner.data(), projected.data());
  }

  Tensor last({batch, d});
  for (int b = 0; b < batch; ++b) {
    std::memcpy(last.data() + b * d, x.data() + (b * max_length + lengths[b] - 1) * d,
                d * sizeof(float));
  }
  FinalNorm(config_, weights_.decoder_final_norm, last.data(), batch);
  logits = Tensor({batch, vocab});
  output_projection_->Forward(last.data(), batch, logits.data());
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Decoder::ForcedLogits(std::shared_ptr<const EncodedSource> source,
                                             absl::Span<const int32_t> target_ids) const {
  const int64_t vocab = output_projection_->out_features();
  const int64_t steps = static_cast<int64_t>(target_ids.size());
  Tensor all({steps, vocab});
  const KVBlockLayout layout = source->layout();
  auto pool = std::make_shared<BlockPool>(
      layout.block_floats(), layout.blocks_for(steps) * layout.block_floats() * sizeof(float));
  DecoderState state(std::make_unique<PagedKVCache>(pool, layout));
  state.AddHypothesis(std::move(source));
  int32_t token = config_.decoder_start_id;
  for (int64_t t = 0; t < steps; ++t) {
    absl::StatusOr<absl::Span<float>> step_logits = Step(absl::MakeConstSpan(&token, 1), state);
    if (!step_logits.ok()) return step_logits.status();
    std::memcpy(all.data() + t * vocab, step_logits->data(), vocab * sizeof(float));
    token = target_ids[t];
  }
  return all;
}

}  // namespace kvmt
