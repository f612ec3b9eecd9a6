#include "bench/torch_export.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace kvmt {
namespace {

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return "relu";
    case Activation::kGelu:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
    case Activation::kSwish:
      return "swish";
  }
  return "relu";
}

class TensorList {
 public:
  void Add(const std::string& name, const Tensor& tensor) {
    if (!tensor.empty()) tensors_.emplace_back(name, tensor);
  }
  void Add(const std::string& name, const LinearWeights& linear) {
    Add(name + ".weight", linear.Float32Weight());
    Add(name + ".bias", linear.bias);
  }
  void Add(const std::string& name, const LayerNormWeights& norm) {
    Add(name + ".gamma", norm.gamma);
    Add(name + ".beta", norm.beta);
  }

  // safetensors: an 8-byte little-endian header size, the JSON header, then the data.
  absl::Status Write(const std::string& path) const {
    nlohmann::json header = nlohmann::json::object();
    int64_t offset = 0;
    for (const auto& [name, tensor] : tensors_) {
      const int64_t bytes = tensor.size() * static_cast<int64_t>(sizeof(float));
      header[name] = {
          {"dtype", "F32"}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    const uint64_t size = text.size();
    out.write(reinterpret_cast<const char*>(&size), sizeof(size));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : tensors_) {
      out.write(reinterpret_cast<const char*>(tensor.data()),
                static_cast<std::streamsize>(tensor.size() * sizeof(float)));
    }
    out.close();
    if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
    return absl::OkStatus();
  }

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

}  // namespace

absl::Status WriteTorchReferenceModel(const Model& model, const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat(dir, ": ", error.message()));
  const ModelConfig& c = model.config;
  const TransformerWeights& w = model.weights;
  TensorList list;
  list.Add("source_embeddings", w.source_embeddings);
  list.Add("target_embeddings", w.target_embeddings);
  list.Add("source_positions", w.source_positions);
  list.Add("target_positions", w.target_positions);
  for (size_t l = 0; l < w.encoder_layers.size(); ++l) {
    const EncoderLayerWeights& layer = w.encoder_layers[l];
    const std::string p = absl::StrCat("encoder.", l);
    list.Add(p + ".self_attention_norm", layer.self_attention_norm);
    list.Add(p + ".self_attention_qkv", layer.self_attention_qkv);
    list.Add(p + ".self_attention_output", layer.self_attention_output);
    list.Add(p + ".ffn_norm", layer.ffn_norm);
    list.Add(p + ".ffn_inner", layer.ffn_inner);
    list.Add(p + ".ffn_outer", layer.ffn_outer);
  }
  for (size_t l = 0; l < w.decoder_layers.size(); ++l) {
    const DecoderLayerWeights& layer = w.decoder_layers[l];
    const std::string p = absl::StrCat("decoder.", l);
    list.Add(p + ".self_attention_norm", layer.self_attention_norm);
    list.Add(p + ".self_attention_qkv", layer.self_attention_qkv);
    list.Add(p + ".self_attention_output", layer.self_attention_output);
    list.Add(p + ".cross_attention_norm", layer.cross_attention_norm);
    list.Add(p + ".cross_attention_query", layer.cross_attention_query);
    list.Add(p + ".cross_attention_kv", layer.cross_attention_kv);
    list.Add(p + ".cross_attention_output", layer.cross_attention_output);
    list.Add(p + ".ffn_norm", layer.ffn_norm);
    list.Add(p + ".ffn_inner", layer.ffn_inner);
    list.Add(p + ".ffn_outer", layer.ffn_outer);
  }
  list.Add("encoder_final_norm", w.encoder_final_norm);
  list.Add("decoder_final_norm", w.decoder_final_norm);
  list.Add("output_projection", w.output_projection);
  if (absl::Status status = list.Write(dir + "/model.safetensors"); !status.ok()) return status;

  const nlohmann::json config = {{"d_model", c.d_model},
                                 {"num_heads", c.num_heads},
                                 {"encoder_layers", c.encoder_layers},
                                 {"decoder_layers", c.decoder_layers},
                                 {"pre_norm", c.pre_norm},
                                 {"layer_norm_epsilon", c.layer_norm_epsilon},
                                 {"embedding_scale", c.embedding_scale},
                                 {"activation", ActivationName(c.activation)},
                                 {"decoder_start_id", c.decoder_start_id},
                                 {"eos_id", c.target_eos_id}};
  std::ofstream out(dir + "/config.json", std::ios::trunc);
  out << config.dump(2) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat(dir, "/config.json: write failed"));
  return absl::OkStatus();
}

}  // namespace kvmt
