// A tiny HuggingFace Marian directory written from C++, without Python: config.json, vocab.json
// (the pieces of tests/data/tiny_sentencepiece.model), source.spm and target.spm (that model) and
// model.safetensors with deterministic random float32 weights. For loader edge cases, the
// allocation-limit tests and the fuzz targets; the reference tests use the Python generator.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace kvmt::testing {

struct TinyMarianOptions {
  int d_model = 8;
  int heads = 2;
  int ffn_dim = 16;
  int encoder_layers = 1;
  int decoder_layers = 1;
  int max_positions = 64;
};

inline std::string TinyDataPath(const std::string& name) {
  return std::string(KVMT_SOURCE_DIR) + "/tests/data/" + name;
}

inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

inline void WriteFileBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A .safetensors file of float32 tensors: {name: (shape, values)}.
inline std::string SafetensorsBytes(
    const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(tensor.second.data()),
                tensor.second.size() * sizeof(float));
    header[name] = {
        {"dtype", "F32"}, {"shape", tensor.first}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string text = header.dump();
  const uint64_t size = text.size();
  std::string bytes(sizeof(size), '\0');
  std::memcpy(bytes.data(), &size, sizeof(size));
  return bytes + text + data;
}

// vocab.json's pieces in id order: </s>, <unk>, the SentencePiece pieces, <pad> last (as in
// OPUS-MT).
inline std::vector<std::string> TinyMarianPieces() {
  std::vector<std::string> pieces = {"</s>", "<unk>"};
  std::istringstream lines(ReadFileBytes(TinyDataPath("tiny_sentencepiece.pieces")));
  for (std::string piece; std::getline(lines, piece);) {
    if (piece != "<unk>" && piece != "<s>" && piece != "</s>") pieces.push_back(piece);
  }
  pieces.push_back("<pad>");
  return pieces;
}

inline nlohmann::json TinyMarianConfig(const TinyMarianOptions& o) {
  const int vocab = static_cast<int>(TinyMarianPieces().size());
  return {{"d_model", o.d_model},
          {"encoder_layers", o.encoder_layers},
          {"decoder_layers", o.decoder_layers},
          {"encoder_attention_heads", o.heads},
          {"decoder_attention_heads", o.heads},
          {"encoder_ffn_dim", o.ffn_dim},
          {"decoder_ffn_dim", o.ffn_dim},
          {"activation_function", "swish"},
          {"vocab_size", vocab},
          {"pad_token_id", vocab - 1},
          {"eos_token_id", 0},
          {"decoder_start_token_id", vocab - 1},
          {"max_position_embeddings", o.max_positions},
          {"scale_embedding", true},
          {"normalize_before", false},
          {"share_encoder_decoder_embeddings", true},
          {"num_beams", 2}};
}

// model.safetensors for `o`, with the layout LoadMarianModel reads.
inline std::string TinyMarianSafetensors(const TinyMarianOptions& o) {
  const int64_t d = o.d_model;
  const int64_t ffn = o.ffn_dim;
  const int64_t vocab = static_cast<int64_t>(TinyMarianPieces().size());
  std::mt19937 generator(5);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors;
  const auto add = [&](const std::string& name, std::vector<int64_t> shape, float offset = 0) {
    int64_t n = 1;
    for (const int64_t dim : shape) n *= dim;
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = offset + normal(generator);
    tensors[name] = {std::move(shape), std::move(values)};
  };
  const auto linear = [&](const std::string& prefix, int64_t out, int64_t in) {
    add(prefix + ".weight", {out, in});
    add(prefix + ".bias", {out});
  };
  const auto norm = [&](const std::string& prefix) {
    add(prefix + ".weight", {d}, 1.0f);
    add(prefix + ".bias", {d});
  };
  add("model.shared.weight", {vocab, d});
  add("final_logits_bias", {1, vocab});
  for (const auto& [side, layers] :
       {std::pair<std::string, int>{"encoder", o.encoder_layers}, {"decoder", o.decoder_layers}}) {
    for (int i = 0; i < layers; ++i) {
      const std::string p = "model." + side + ".layers." + std::to_string(i) + ".";
      norm(p + "self_attn_layer_norm");
      for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        linear(p + "self_attn." + projection, d, d);
      }
      if (side == "decoder") {
        norm(p + "encoder_attn_layer_norm");
        for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
          linear(p + "encoder_attn." + projection, d, d);
        }
      }
      norm(p + "final_layer_norm");
      linear(p + "fc1", ffn, d);
      linear(p + "fc2", d, ffn);
    }
  }
  return SafetensorsBytes(tensors);
}

// The whole directory at `dir` (created).
inline void WriteTinyMarianModel(const std::filesystem::path& dir,
                                 const TinyMarianOptions& o = TinyMarianOptions{}) {
  std::filesystem::create_directories(dir);
  WriteFileBytes(dir / "config.json", TinyMarianConfig(o).dump(2));
  nlohmann::json vocab = nlohmann::json::object();
  const std::vector<std::string> pieces = TinyMarianPieces();
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  WriteFileBytes(dir / "vocab.json", vocab.dump());
  const std::string spm = ReadFileBytes(TinyDataPath("tiny_sentencepiece.model"));
  WriteFileBytes(dir / "source.spm", spm);
  WriteFileBytes(dir / "target.spm", spm);
  WriteFileBytes(dir / "model.safetensors", TinyMarianSafetensors(o));
}

}  // namespace kvmt::testing
