#include "encoder/encoder.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/attention.h"
#include "core/ops.h"
#include "core/profile.h"
#include "core/status_macros.h"
#include "encoder/sublayer.h"

namespace kvmt {

Encoder::Encoder(const ModelConfig& config, const TransformerWeights& weights)
    : config_(config), weights_(weights) {}

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Create(const ModelConfig& config,
                                                         const TransformerWeights& weights,
                                                         ComputeType compute_type) {
  std::unique_ptr<Encoder> encoder(new Encoder(config, weights));
  for (const EncoderLayerWeights& layer : weights.encoder_layers) {
    Layer built;
    KVMT_ASSIGN_OR_RETURN(built.qkv, MakeLayerLinear(layer.self_attention_qkv, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.output, MakeLayerLinear(layer.self_attention_output, compute_type));
    KVMT_ASSIGN_OR_RETURN(built.ffn_inner,
                          MakeLayerLinear(layer.ffn_inner, compute_type, config.activation));
    KVMT_ASSIGN_OR_RETURN(built.ffn_outer, MakeLayerLinear(layer.ffn_outer, compute_type));
    encoder->layers_.push_back(std::move(built));
  }
  for (const DecoderLayerWeights& layer : weights.decoder_layers) {
    KVMT_ASSIGN_OR_RETURN(std::unique_ptr<Linear> kv,
                          MakeLayerLinear(layer.cross_attention_kv, compute_type));
    encoder->cross_attention_kv_.push_back(std::move(kv));
  }
  return encoder;
}

KVBlockLayout KVLayoutFor(const ModelConfig& config) {
  return KVBlockLayout{config.decoder_layers, config.d_model, 16};
}

absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> Encoder::Encode(
    const std::vector<std::vector<int32_t>>& source_ids, std::shared_ptr<BlockPool> pool) const {
  const ScopedStageTimer timer(Stage::kEncoder);
  const int batch = static_cast<int>(source_ids.size());
  if (batch == 0) return std::vector<std::shared_ptr<const EncodedSource>>();
  const int64_t d = config_.d_model;
  const int64_t vocab = weights_.source_embeddings.dim(0);
  for (int b = 0; b < batch; ++b) {
    const auto& ids = source_ids[b];
    if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat("source ", b, " is empty"));
    if (static_cast<int64_t>(ids.size()) > weights_.source_positions.dim(0)) {
      return absl::InvalidArgumentError(absl::StrCat("source ", b, " has ", ids.size(),
                                                     " tokens; the model's positions allow ",
                                                     weights_.source_positions.dim(0)));
    }
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("source ", b, ": id ", id, " is outside the vocabulary of ", vocab));
      }
    }
  }

  // The segments' rows back to back, without padding: segment b is rows [offsets[b],
  // offsets[b + 1]). Only attention needs to know where one ends.
  std::vector<int64_t> offsets(batch + 1, 0);
  std::vector<int32_t> lengths(batch);
  for (int b = 0; b < batch; ++b) {
    lengths[b] = static_cast<int32_t>(source_ids[b].size());
    offsets[b + 1] = offsets[b] + lengths[b];
  }
  const int64_t rows = offsets[batch];
  std::vector<int32_t> ids;
  std::vector<int32_t> positions;
  ids.reserve(rows);
  positions.reserve(rows);
  for (int b = 0; b < batch; ++b) {
    ids.insert(ids.end(), source_ids[b].begin(), source_ids[b].end());
    for (int32_t t = 0; t < lengths[b]; ++t) positions.push_back(t);
  }

  const AttentionShape shape{config_.num_heads, config_.d_model / config_.num_heads};
  Tensor x({rows, d});
  Tensor normed({rows, d});
  Tensor qkv({rows, 3 * d});
  Tensor context({rows, d});
  Tensor projected({rows, d});
  Tensor inner({rows, static_cast<int64_t>(config_.ffn_dim)});
  EmbedTokens(weights_.source_embeddings, ids, config_.embedding_scale, weights_.source_positions,
              positions, x.data());

  for (size_t l = 0; l < layers_.size(); ++l) {
    const EncoderLayerWeights& layer = weights_.encoder_layers[l];
    const Layer& linears = layers_[l];
    const float* attention_input =
        SublayerInput(config_, layer.self_attention_norm, x.data(), rows, normed.data());
    linears.qkv->Forward(attention_input, rows, qkv.data());
    PackedSequenceAttention(qkv.data(), 3 * d, qkv.data() + d, qkv.data() + 2 * d, 3 * d, offsets,
                            shape, context.data(), d);
    linears.output->Forward(context.data(), rows, projected.data());
    SublayerResidual(config_, layer.self_attention_norm, x.data(), projected.data(), rows);
    FeedForwardSublayer(config_, layer.ffn_norm, *linears.ffn_inner, *linears.ffn_outer, x.data(),
                        rows, normed.data(), inner.data(), projected.data());
  }
  FinalNorm(config_, weights_.encoder_final_norm, x.data(), rows);

  // Source K/V blocks for every segment, taken before any is written so a full pool fails the
  // batch cleanly; blocks already taken go back if one is missing.
  const KVBlockLayout kv_layout = KVLayoutFor(config_);
  if (pool == nullptr) {
    int64_t blocks = 0;
    for (int32_t length : lengths) blocks += kv_layout.blocks_for(length);
    pool = std::make_shared<BlockPool>(kv_layout.block_floats(),
                                       blocks * kv_layout.block_floats() * sizeof(float));
  }
  std::vector<std::vector<BlockId>> blocks(batch);
  for (int b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < kv_layout.blocks_for(lengths[b]); ++i) {
      absl::StatusOr<BlockId> block = pool->Allocate();
      if (!block.ok()) {
        for (const auto& taken : blocks) {
          for (BlockId id : taken) pool->Release(id);
        }
        return block.status();
      }
      blocks[b].push_back(*block);
    }
  }

  // The source K/V of every decoder layer, computed here once and never again while decoding.
  Tensor kv({rows, 2 * d});
  for (int l = 0; l < config_.decoder_layers; ++l) {
    cross_attention_kv_[l]->Forward(x.data(), rows, kv.data());
    for (int b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < lengths[b]; ++t) {
        const float* row = kv.data() + (offsets[b] + t) * 2 * d;
        float* block = pool->data(blocks[b][t / kv_layout.block_size]);
        const int slot = static_cast<int>(t % kv_layout.block_size);
        std::memcpy(block + kv_layout.offset(l, 0, slot), row, d * sizeof(float));
        std::memcpy(block + kv_layout.offset(l, 1, slot), row + d, d * sizeof(float));
      }
    }
  }

  std::vector<std::shared_ptr<const EncodedSource>> encoded;
  encoded.reserve(batch);
  for (int b = 0; b < batch; ++b) {
    Tensor output({lengths[b], d});
    std::memcpy(output.data(), x.data() + offsets[b] * d, lengths[b] * d * sizeof(float));
    encoded.push_back(std::make_shared<const EncodedSource>(
        pool, kv_layout, lengths[b], std::move(blocks[b]), std::move(output)));
  }
  return encoded;
}

}  // namespace kvmt
