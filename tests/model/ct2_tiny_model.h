// A tiny CTranslate2 Transformer written from scratch for reader tests: every variable's
// values are kept here (the truth the loaded tensors are compared with), and the model can be
// written in any binary version, spec revision and weight dtype.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/model/ct2_model_writer.h"

namespace kvmt::testing {

struct TinyModelOptions {
  uint32_t binary_version = 6;
  std::string spec = "TransformerSpec";
  uint32_t spec_revision = 7;
  Ct2DType weight_dtype = Ct2DType::kFloat32;  // Linear and embedding weights.
  Ct2DType other_dtype = Ct2DType::kFloat32;   // Biases and norms: a float type.
  bool int16_with_scale = true;
  bool tie_output_projection = false;  // decoder/projection/weight aliases the embeddings.
  bool store_positions = false;
  int d_model = 16;
  int num_heads = 4;
  int ffn_dim = 32;
  int encoder_layers = 1;
  int decoder_layers = 2;
  int activation = 0;  // CTranslate2's Activation enum.
};

// The source vocabulary file lacks <unk>, so the source embeddings have one more row;
// the target vocabulary file lists <unk> itself.
inline const std::vector<std::string>& TinySourceTokens() {
  static const auto* tokens = new std::vector<std::string>{"<blank>", "<s>", "</s>", "a", "b", "c"};
  return *tokens;
}
inline const std::vector<std::string>& TinyTargetTokens() {
  static const auto* tokens = new std::vector<std::string>{"<unk>", "<s>", "</s>", "x", "y"};
  return *tokens;
}

// OpenNMT-tf V1 names, as CTranslate2 revision-1 models store them.
inline std::string V1Name(std::string name) {
  const bool decoder = name.rfind("decoder", 0) == 0;
  const auto replace = [&name](const std::string& from, const std::string& to) {
    const size_t at = name.find(from);
    if (at != std::string::npos) name.replace(at, from.size(), to);
  };
  replace("embeddings/weight", "w_embs");
  replace("projection/weight", "dense/kernel");
  replace("projection/bias", "dense/bias");
  replace("layer_norm", "LayerNorm");
  replace("/weight", "/kernel");
  replace("linear_0", "conv1d");
  replace("linear_1", "conv1d_1");
  replace("linear_2", "conv1d_2");
  replace("self_attention", decoder ? "masked_multi_head" : "multi_head");
  replace("/attention/", "/multi_head/");
  return "transformer/" + name + ":0";
}

class TinyModel {
 public:
  explicit TinyModel(TinyModelOptions options)
      : o_(std::move(options)), writer_(o_.binary_version, o_.spec, o_.spec_revision) {
    const int d = o_.d_model;
    const uint32_t source_rows = static_cast<uint32_t>(TinySourceTokens().size() + 1);
    const uint32_t target_rows = static_cast<uint32_t>(TinyTargetTokens().size());
    Weight("encoder/embeddings/weight", {source_rows, Dim(d)});
    Weight("decoder/embeddings/weight", {target_rows, Dim(d)});
    for (int i = 0; i < o_.encoder_layers; ++i) {
      const std::string p = "encoder/layer_" + std::to_string(i);
      Norm(p + "/self_attention/layer_norm");
      Linear(p + "/self_attention/linear_0", 3 * d, d);
      Linear(p + "/self_attention/linear_1", d, d);
      Norm(p + "/ffn/layer_norm");
      Linear(p + "/ffn/linear_0", o_.ffn_dim, d);
      Linear(p + "/ffn/linear_1", d, o_.ffn_dim);
    }
    for (int i = 0; i < o_.decoder_layers; ++i) {
      const std::string p = "decoder/layer_" + std::to_string(i);
      Norm(p + "/self_attention/layer_norm");
      Linear(p + "/self_attention/linear_0", 3 * d, d);
      Linear(p + "/self_attention/linear_1", d, d);
      Norm(p + "/attention/layer_norm");
      Linear(p + "/attention/linear_0", d, d);
      Linear(p + "/attention/linear_1", 2 * d, d);
      Linear(p + "/attention/linear_2", d, d);
      Norm(p + "/ffn/layer_norm");
      Linear(p + "/ffn/linear_0", o_.ffn_dim, d);
      Linear(p + "/ffn/linear_1", d, o_.ffn_dim);
    }
    Norm("encoder/layer_norm");
    Norm("decoder/layer_norm");
    if (o_.tie_output_projection) {
      writer_.AddAlias(Name("decoder/projection/weight"), Name("decoder/embeddings/weight"));
      values_["decoder/projection/weight"] = values_["decoder/embeddings/weight"];
    } else {
      Weight("decoder/projection/weight", {target_rows, Dim(d)});
    }
    Other("decoder/projection/bias", {target_rows});
    if (o_.store_positions) {
      Other("encoder/position_encodings/encodings", {10, Dim(d)});
      Other("decoder/position_encodings/encodings", {12, Dim(d)});
    }
    AddAttributes();
  }

  Ct2ModelWriter& writer() { return writer_; }
  const Ct2ModelWriter& writer() const { return writer_; }
  const TinyModelOptions& options() const { return o_; }

  // The values stored under the (revision >= 2) name, before any quantisation.
  const std::vector<float>& values(const std::string& name) const { return values_.at(name); }

  // model.bin and the vocabularies into `dir` (created).
  void Write(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    WriteFile(dir / "model.bin", writer_.Serialize());
    WriteLines(dir / "source_vocabulary.txt", TinySourceTokens());
    WriteLines(dir / "target_vocabulary.txt", TinyTargetTokens());
  }

  static void WriteFile(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  static void WriteLines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    WriteFile(path, text);
  }

 private:
  static uint32_t Dim(int n) { return static_cast<uint32_t>(n); }

  std::string Name(const std::string& name) const {
    return o_.spec_revision == 1 ? V1Name(name) : name;
  }

  // Multiples of 1/64 in [-1, 1]: exact in float16 and bfloat16.
  std::vector<float> Values(size_t n) {
    std::uniform_int_distribution<int> k(-64, 64);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(k(generator_)) / 64.0f;
    return v;
  }

  static size_t Count(const std::vector<uint32_t>& shape) {
    size_t n = 1;
    for (const uint32_t dim : shape) n *= dim;
    return n;
  }

  void Weight(const std::string& name, std::vector<uint32_t> shape) {
    const std::vector<float> v = Values(Count(shape));
    values_[name] = v;
    switch (o_.weight_dtype) {
      case Ct2DType::kInt8:
        writer_.AddInt8(Name(name), std::move(shape), v);
        break;
      case Ct2DType::kInt16:
        writer_.AddInt16(Name(name), std::move(shape), v, o_.int16_with_scale);
        break;
      default:
        writer_.AddFloats(Name(name), std::move(shape), v, o_.weight_dtype);
    }
  }

  void Other(const std::string& name, std::vector<uint32_t> shape) {
    const std::vector<float> v = Values(Count(shape));
    values_[name] = v;
    writer_.AddFloats(Name(name), std::move(shape), v, o_.other_dtype);
  }

  void Linear(const std::string& scope, int out, int in) {
    Weight(scope + "/weight", {Dim(out), Dim(in)});
    Other(scope + "/bias", {Dim(out)});
  }

  void Norm(const std::string& scope) {
    Other(scope + "/gamma", {Dim(o_.d_model)});
    Other(scope + "/beta", {Dim(o_.d_model)});
  }

  // As TransformerSpec writes them: revision >= 5 under encoder/ and decoder/, revisions 3
  // and 4 once at the top level, earlier revisions none (the spec name fixes the heads).
  void AddAttributes() {
    if (o_.spec_revision >= 5) {
      for (const std::string scope : {"encoder", "decoder"}) {
        writer_.AddInt16Scalar(scope + "/num_heads", static_cast<int16_t>(o_.num_heads));
        writer_.AddInt8Scalar(scope + "/pre_norm", 1);
        writer_.AddInt8Scalar(scope + "/activation", static_cast<int8_t>(o_.activation));
        writer_.AddInt8Scalar(scope + "/scale_embeddings", 1);
      }
      writer_.AddInt8Scalar("encoder/embeddings_merge", 0);
      writer_.AddInt8Scalar("encoder/multi_query_attention", 0);
      writer_.AddInt16Scalar("decoder/alignment_layer", -1);
      writer_.AddInt16Scalar("decoder/alignment_heads", 1);
      writer_.AddInt8Scalar("decoder/alibi", 0);
      writer_.AddInt8Scalar("decoder/alibi_use_positive_positions", 0);
      writer_.AddInt8Scalar("decoder/scale_alibi", 0);
      writer_.AddInt8Scalar("decoder/start_from_zero_embedding", 0);
    } else if (o_.spec_revision >= 3) {
      writer_.AddInt8Scalar("num_heads", static_cast<int8_t>(o_.num_heads));
      writer_.AddInt8Scalar("pre_norm", 1);
      writer_.AddInt8Scalar("activation", static_cast<int8_t>(o_.activation));
      writer_.AddInt8Scalar("embeddings_merge", 0);
      writer_.AddInt16Scalar("alignment_layer", -1);
      writer_.AddInt16Scalar("alignment_heads", 1);
    }
  }

  TinyModelOptions o_;
  Ct2ModelWriter writer_;
  std::mt19937 generator_{7};
  std::map<std::string, std::vector<float>> values_;
};

}  // namespace kvmt::testing
