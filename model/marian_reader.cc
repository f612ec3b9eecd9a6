#include "model/marian_reader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/file_io.h"
#include "model/position_encodings.h"
#include "model/safetensors.h"
#include "model/sentencepiece_tokenizer.h"
#include "model/weights_validation.h"
#include "nlohmann/json.hpp"

namespace kvmt {
namespace {

// HuggingFace's Marian layers use nn.LayerNorm's default.
constexpr float kLayerNormEpsilon = 1e-5f;
// The position tables are generated, not read, so their size is not bounded by the file: a
// limit far above OPUS-MT's 512 keeps a 100-byte config.json from asking for gigabytes.
constexpr int kMaxPositions = 16384;

// config.json's fields, with errors that name the file and the field. A field set to null
// counts as absent (HuggingFace writes null for "use the default").
class Config {
 public:
  Config(std::string path, nlohmann::json json) : path_(std::move(path)), json_(std::move(json)) {}

  const std::string& path() const { return path_; }

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": field '", field, "' ", what));
  }

  absl::StatusOr<int> Int(absl::string_view field, std::optional<int> fallback = std::nullopt,
                          int minimum = 0, int maximum = INT32_MAX) const {
    const nlohmann::json* value = Find(field);
    if (value == nullptr) {
      if (fallback.has_value()) return *fallback;
      return Error(field, "is missing");
    }
    if (!value->is_number_integer()) return Error(field, "must be an integer");
    if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(maximum)) {
      return Error(field, absl::StrCat("= ", value->get<uint64_t>(), " exceeds ", maximum));
    }
    const int64_t number = value->get<int64_t>();
    if (number < minimum) return Error(field, absl::StrCat("= ", number, " must be >= ", minimum));
    if (number > maximum) return Error(field, absl::StrCat("= ", number, " exceeds ", maximum));
    return static_cast<int>(number);
  }

  absl::StatusOr<bool> Bool(absl::string_view field, bool fallback) const {
    const nlohmann::json* value = Find(field);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) return Error(field, "must be true or false");
    return value->get<bool>();
  }

  absl::StatusOr<std::string> String(absl::string_view field) const {
    const nlohmann::json* value = Find(field);
    if (value == nullptr) return Error(field, "is missing");
    if (!value->is_string()) return Error(field, "must be a string");
    return value->get<std::string>();
  }

 private:
  const nlohmann::json* Find(absl::string_view field) const {
    auto it = json_.find(std::string(field));
    if (it == json_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string path_;
  nlohmann::json json_;
};

absl::StatusOr<Activation> ParseActivation(const Config& config) {
  KVMT_ASSIGN_OR_RETURN(const std::string name, config.String("activation_function"));
  if (name == "swish" || name == "silu") return Activation::kSwish;
  if (name == "gelu") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  if (name == "relu") return Activation::kRelu;
  return config.Error("activation_function",
                      absl::StrCat("= '", name,
                                   "' is not supported (swish, silu, gelu, gelu_new, "
                                   "gelu_pytorch_tanh or relu)"));
}

// vocab.json: {piece: id} with ids exactly 0..n-1, as a Vocabulary in id order.
absl::StatusOr<Vocabulary> ReadMarianVocabulary(const std::string& path) {
  KVMT_ASSIGN_OR_RETURN(const nlohmann::json json, ReadJsonObject(path));
  const size_t size = json.size();
  std::vector<std::string> tokens(size);
  std::vector<bool> seen(size, false);
  for (const auto& [piece, value] : json.items()) {
    if (!value.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the id of '", piece, "' is not an integer"));
    }
    const int64_t id = value.get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(size)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", piece, "' has id ", id,
                                                     ", outside [0, ", size,
                                                     "): ids must be exactly 0..n-1"));
    }
    if (seen[id]) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": id ", id, " is given to both '",
                                                     tokens[id], "' and '", piece, "'"));
    }
    seen[id] = true;
    tokens[id] = piece;
  }
  return Vocabulary::FromTokens(std::move(tokens), path);
}

// MarianTokenizer's language codes: a leading ">>xxx<<" (the pattern ">>.+<<", greedy, within
// one line) is one token of its own; every such match is removed before SentencePiece runs.
class MarianSourceTokenizer : public Tokenizer {
 public:
  explicit MarianSourceTokenizer(std::unique_ptr<Tokenizer> pieces) : pieces_(std::move(pieces)) {}

  absl::StatusOr<std::vector<std::string>> Encode(std::string_view text) const override {
    std::vector<std::string> tokens;
    std::string rest;
    // A match ends at the last "<<" of its line, found once per line from where the scan
    // entered it (a "<<" further left could not close a match starting here): looking for it
    // again at every ">>" made a long line of ">>" quadratic.
    size_t line_end = 0;
    size_t last_close = std::string_view::npos;
    bool line_known = false;
    size_t position = 0;
    while (position < text.size()) {
      if (!line_known || position > line_end) {
        line_end = std::min(text.find('\n', position), text.size());
        const size_t close = text.substr(position, line_end - position).rfind("<<");
        last_close = close == std::string_view::npos ? close : position + close;
        line_known = true;
      }
      const bool match = text.substr(position, 2) == ">>" && last_close != std::string_view::npos &&
                         last_close >= position + 3;
      if (!match) {
        rest.push_back(text[position++]);
        continue;
      }
      if (position == 0) tokens.emplace_back(text.substr(0, last_close + 2));
      position = last_close + 2;
    }
    KVMT_ASSIGN_OR_RETURN(std::vector<std::string> pieces, pieces_->Encode(rest));
    tokens.insert(tokens.end(), std::make_move_iterator(pieces.begin()),
                  std::make_move_iterator(pieces.end()));
    return tokens;
  }

  absl::StatusOr<std::string> Decode(const std::vector<std::string>& tokens) const override {
    return pieces_->Decode(tokens);
  }

 private:
  std::unique_ptr<Tokenizer> pieces_;
};

// Reads tensors from model.safetensors with the shape the config implies.
class TensorReader {
 public:
  explicit TensorReader(const SafetensorsFile& file) : file_(file) {}

  absl::StatusOr<Tensor> Read(const std::string& name, const std::vector<int64_t>& shape) const {
    const SafetensorsFile::Entry* entry = file_.Find(name);
    if (entry == nullptr) {
      return absl::NotFoundError(absl::StrCat(file_.path(), ": tensor '", name, "' is missing"));
    }
    if (entry->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor '", name,
                                                     "' has shape ", ShapeString(entry->shape),
                                                     ", expected ", ShapeString(shape)));
    }
    return file_.ReadFloat(name);
  }

  absl::StatusOr<LinearWeights> Linear(const std::string& prefix, int64_t out, int64_t in) const {
    LinearWeights linear;
    KVMT_ASSIGN_OR_RETURN(linear.weight, Read(prefix + ".weight", {out, in}));
    KVMT_ASSIGN_OR_RETURN(linear.bias, Read(prefix + ".bias", {out}));
    return linear;
  }

  // Rows of the given projections stacked in order: Q, K, V -> [3 * out, in]. The parts are
  // read (and so checked against the file) before the fused tensor is allocated.
  absl::StatusOr<LinearWeights> Fused(const std::vector<std::string>& prefixes, int64_t out,
                                      int64_t in) const {
    std::vector<LinearWeights> parts;
    for (const std::string& prefix : prefixes) {
      KVMT_ASSIGN_OR_RETURN(LinearWeights part, Linear(prefix, out, in));
      parts.push_back(std::move(part));
    }
    const int64_t n = static_cast<int64_t>(parts.size());
    LinearWeights fused{Tensor({n * out, in}), Tensor({n * out})};
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(fused.weight.data() + i * out * in, parts[i].weight.data(),
                  static_cast<size_t>(out * in) * sizeof(float));
      std::memcpy(fused.bias.data() + i * out, parts[i].bias.data(),
                  static_cast<size_t>(out) * sizeof(float));
    }
    return fused;
  }

  absl::StatusOr<LayerNormWeights> Norm(const std::string& prefix, int64_t d) const {
    LayerNormWeights norm;
    KVMT_ASSIGN_OR_RETURN(norm.gamma, Read(prefix + ".weight", {d}));
    KVMT_ASSIGN_OR_RETURN(norm.beta, Read(prefix + ".bias", {d}));
    return norm;
  }

  static std::string ShapeString(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&text, i ? ", " : "", shape[i]);
    return text + "]";
  }

 private:
  const SafetensorsFile& file_;
};

struct MarianConfig {
  int d_model = 0;
  int encoder_layers = 0;
  int decoder_layers = 0;
  int heads = 0;
  int ffn_dim = 0;
  Activation activation = Activation::kSwish;
  bool scale_embedding = false;
  bool pre_norm = false;
  bool shared_embeddings = true;
  bool tie_word_embeddings = true;
  int vocab_size = 0;
  int decoder_vocab_size = 0;
  int pad_id = 0;
  int eos_id = 0;
  int decoder_start_id = 0;
  int max_positions = 0;
  int num_beams = 0;
};

absl::StatusOr<MarianConfig> ParseConfig(const Config& c) {
  MarianConfig m;
  KVMT_ASSIGN_OR_RETURN(m.d_model, c.Int("d_model", std::nullopt, 1));
  KVMT_ASSIGN_OR_RETURN(m.encoder_layers, c.Int("encoder_layers", std::nullopt, 1));
  KVMT_ASSIGN_OR_RETURN(m.decoder_layers, c.Int("decoder_layers", std::nullopt, 1));
  KVMT_ASSIGN_OR_RETURN(m.heads, c.Int("encoder_attention_heads", std::nullopt, 1));
  if (m.d_model % m.heads != 0) {
    return c.Error("encoder_attention_heads",
                   absl::StrCat("= ", m.heads, " does not divide d_model = ", m.d_model));
  }
  KVMT_ASSIGN_OR_RETURN(const int decoder_heads, c.Int("decoder_attention_heads", std::nullopt, 1));
  if (decoder_heads != m.heads) {
    return c.Error("decoder_attention_heads",
                   absl::StrCat("= ", decoder_heads, " differs from encoder_attention_heads = ",
                                m.heads, ", which is not supported"));
  }
  KVMT_ASSIGN_OR_RETURN(m.ffn_dim, c.Int("encoder_ffn_dim", std::nullopt, 1));
  KVMT_ASSIGN_OR_RETURN(const int decoder_ffn, c.Int("decoder_ffn_dim", std::nullopt, 1));
  if (decoder_ffn != m.ffn_dim) {
    return c.Error("decoder_ffn_dim",
                   absl::StrCat("= ", decoder_ffn, " differs from encoder_ffn_dim = ", m.ffn_dim,
                                ", which is not supported"));
  }
  KVMT_ASSIGN_OR_RETURN(m.activation, ParseActivation(c));
  // Defaults below are MarianConfig's own.
  KVMT_ASSIGN_OR_RETURN(m.scale_embedding, c.Bool("scale_embedding", false));
  KVMT_ASSIGN_OR_RETURN(m.pre_norm, c.Bool("normalize_before", false));
  KVMT_ASSIGN_OR_RETURN(m.shared_embeddings, c.Bool("share_encoder_decoder_embeddings", true));
  KVMT_ASSIGN_OR_RETURN(m.tie_word_embeddings, c.Bool("tie_word_embeddings", true));
  KVMT_ASSIGN_OR_RETURN(m.vocab_size, c.Int("vocab_size", std::nullopt, 1));
  KVMT_ASSIGN_OR_RETURN(m.decoder_vocab_size, c.Int("decoder_vocab_size", m.vocab_size, 1));
  if (m.shared_embeddings && m.decoder_vocab_size != m.vocab_size) {
    return c.Error("decoder_vocab_size",
                   absl::StrCat("= ", m.decoder_vocab_size, " differs from vocab_size = ",
                                m.vocab_size, " although share_encoder_decoder_embeddings"));
  }
  KVMT_ASSIGN_OR_RETURN(m.pad_id, c.Int("pad_token_id"));
  KVMT_ASSIGN_OR_RETURN(m.eos_id, c.Int("eos_token_id"));
  KVMT_ASSIGN_OR_RETURN(m.decoder_start_id, c.Int("decoder_start_token_id", m.pad_id));
  for (const auto& [field, id] : {std::pair<const char*, int>{"pad_token_id", m.pad_id},
                                  {"eos_token_id", m.eos_id},
                                  {"decoder_start_token_id", m.decoder_start_id}}) {
    if (id >= m.decoder_vocab_size) {
      return c.Error(field, absl::StrCat("= ", id, " is outside the target vocabulary of ",
                                         m.decoder_vocab_size));
    }
  }
  KVMT_ASSIGN_OR_RETURN(m.max_positions,
                        c.Int("max_position_embeddings", std::nullopt, 1, kMaxPositions));
  KVMT_ASSIGN_OR_RETURN(m.num_beams, c.Int("num_beams", 0));
  return m;
}

absl::Status CheckVocabularySize(const Vocabulary& vocabulary, const std::string& path,
                                 int expected, const Config& config, absl::string_view field) {
  if (vocabulary.size() == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", vocabulary.size(), " entries, but ",
                                                 config.path(), " says ", field, " = ", expected));
}

absl::StatusOr<TransformerWeights> ReadWeights(const MarianConfig& m, const SafetensorsFile& file) {
  const TensorReader r(file);
  const int64_t d = m.d_model;
  const int64_t ffn = m.ffn_dim;
  TransformerWeights w;

  if (m.shared_embeddings) {
    // Saved tied tensors keep one of their names; any of the three is the shared table.
    std::string name = "model.shared.weight";
    for (const char* alias :
         {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}) {
      if (!file.Contains(name) && file.Contains(alias)) name = alias;
    }
    KVMT_ASSIGN_OR_RETURN(w.source_embeddings, r.Read(name, {m.vocab_size, d}));
    w.target_embeddings = w.source_embeddings;
  } else {
    KVMT_ASSIGN_OR_RETURN(w.source_embeddings,
                          r.Read("model.encoder.embed_tokens.weight", {m.vocab_size, d}));
    KVMT_ASSIGN_OR_RETURN(w.target_embeddings,
                          r.Read("model.decoder.embed_tokens.weight", {m.decoder_vocab_size, d}));
  }

  for (const auto& [side, count] :
       {std::pair<std::string, int>{"encoder", m.encoder_layers}, {"decoder", m.decoder_layers}}) {
    const std::string extra = absl::StrCat("model.", side, ".layers.", count, ".fc1.weight");
    if (file.Contains(extra)) {
      return absl::InvalidArgumentError(absl::StrCat(file.path(), ": tensor '", extra,
                                                     "' belongs to a layer beyond ", side,
                                                     "_layers = ", count, " in config.json"));
    }
  }

  for (int i = 0; i < m.encoder_layers; ++i) {
    const std::string p = absl::StrCat("model.encoder.layers.", i, ".");
    EncoderLayerWeights& l = w.encoder_layers.emplace_back();
    KVMT_ASSIGN_OR_RETURN(l.self_attention_norm, r.Norm(p + "self_attn_layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(
        l.self_attention_qkv,
        r.Fused({p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"}, d, d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_output, r.Linear(p + "self_attn.out_proj", d, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_norm, r.Norm(p + "final_layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_inner, r.Linear(p + "fc1", ffn, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_outer, r.Linear(p + "fc2", d, ffn));
  }
  for (int i = 0; i < m.decoder_layers; ++i) {
    const std::string p = absl::StrCat("model.decoder.layers.", i, ".");
    DecoderLayerWeights& l = w.decoder_layers.emplace_back();
    KVMT_ASSIGN_OR_RETURN(l.self_attention_norm, r.Norm(p + "self_attn_layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(
        l.self_attention_qkv,
        r.Fused({p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"}, d, d));
    KVMT_ASSIGN_OR_RETURN(l.self_attention_output, r.Linear(p + "self_attn.out_proj", d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_norm, r.Norm(p + "encoder_attn_layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_query, r.Linear(p + "encoder_attn.q_proj", d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_kv,
                          r.Fused({p + "encoder_attn.k_proj", p + "encoder_attn.v_proj"}, d, d));
    KVMT_ASSIGN_OR_RETURN(l.cross_attention_output, r.Linear(p + "encoder_attn.out_proj", d, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_norm, r.Norm(p + "final_layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_inner, r.Linear(p + "fc1", ffn, d));
    KVMT_ASSIGN_OR_RETURN(l.ffn_outer, r.Linear(p + "fc2", d, ffn));
  }
  if (m.pre_norm) {
    KVMT_ASSIGN_OR_RETURN(w.encoder_final_norm, r.Norm("model.encoder.layer_norm", d));
    KVMT_ASSIGN_OR_RETURN(w.decoder_final_norm, r.Norm("model.decoder.layer_norm", d));
  }

  if (file.Contains("lm_head.weight") || !m.tie_word_embeddings) {
    KVMT_ASSIGN_OR_RETURN(w.output_projection.weight,
                          r.Read("lm_head.weight", {m.decoder_vocab_size, d}));
  } else {
    w.output_projection.weight = w.target_embeddings;
  }
  // A registered buffer that HuggingFace treats as zeros when a checkpoint leaves it out.
  if (file.Contains("final_logits_bias")) {
    KVMT_ASSIGN_OR_RETURN(const Tensor bias,
                          r.Read("final_logits_bias", {1, m.decoder_vocab_size}));
    w.output_projection.bias = bias.Reshaped({m.decoder_vocab_size});
  }
  // embed_positions tensors, when saved, hold the same sinusoids; they are generated instead,
  // last, once the file has shown that d_model is real.
  w.source_positions = MarianSinusoidalPositions(m.max_positions, m.d_model);
  w.target_positions = w.source_positions;
  return w;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> LoadMarianModel(const std::string& dir) {
  const std::filesystem::path root(dir);
  const std::string config_path = (root / "config.json").string();
  KVMT_ASSIGN_OR_RETURN(nlohmann::json json, ReadJsonObject(config_path));
  const Config config(config_path, std::move(json));
  KVMT_ASSIGN_OR_RETURN(const MarianConfig m, ParseConfig(config));

  auto model = std::make_unique<Model>();
  model->path = dir;

  const std::string source_vocab_path = (root / "vocab.json").string();
  std::string target_vocab_path = (root / "target_vocab.json").string();
  std::error_code error;
  if (!std::filesystem::exists(target_vocab_path, error)) target_vocab_path = source_vocab_path;
  KVMT_ASSIGN_OR_RETURN(model->source_vocabulary, ReadMarianVocabulary(source_vocab_path));
  KVMT_RETURN_IF_ERROR(CheckVocabularySize(model->source_vocabulary, source_vocab_path,
                                           m.vocab_size, config, "vocab_size"));
  if (target_vocab_path == source_vocab_path) {
    model->target_vocabulary = model->source_vocabulary;
  } else {
    KVMT_ASSIGN_OR_RETURN(model->target_vocabulary, ReadMarianVocabulary(target_vocab_path));
  }
  KVMT_RETURN_IF_ERROR(CheckVocabularySize(model->target_vocabulary, target_vocab_path,
                                           m.decoder_vocab_size, config,
                                           "decoder_vocab_size (or vocab_size)"));

  KVMT_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> source_pieces,
                        LoadSentencePieceTokenizer((root / "source.spm").string()));
  model->source_tokenizer = std::make_unique<MarianSourceTokenizer>(std::move(source_pieces));
  KVMT_ASSIGN_OR_RETURN(model->target_tokenizer,
                        LoadSentencePieceTokenizer((root / "target.spm").string()));
  model->has_sentencepiece = true;

  const std::string weights_path = (root / "model.safetensors").string();
  KVMT_ASSIGN_OR_RETURN(const SafetensorsFile file, SafetensorsFile::Open(weights_path));
  KVMT_ASSIGN_OR_RETURN(model->weights, ReadWeights(m, file));

  ModelConfig& c = model->config;
  c.format = "marian";
  c.d_model = m.d_model;
  c.num_heads = m.heads;
  c.ffn_dim = m.ffn_dim;
  c.encoder_layers = m.encoder_layers;
  c.decoder_layers = m.decoder_layers;
  c.pre_norm = m.pre_norm;
  c.activation = m.activation;
  c.layer_norm_epsilon = kLayerNormEpsilon;
  c.embedding_scale = m.scale_embedding ? std::sqrt(static_cast<float>(m.d_model)) : 1.0f;
  c.add_source_eos = true;
  c.source_eos_id = model->source_vocabulary.Id("</s>");
  if (c.source_eos_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat(source_vocab_path, ": no '</s>' entry"));
  }
  c.source_unk_id = model->source_vocabulary.Id("<unk>");
  c.decoder_start_id = m.decoder_start_id;
  c.target_eos_id = m.eos_id;
  c.target_unk_id = model->target_vocabulary.Id("<unk>");
  c.suppressed_target_ids = {m.pad_id};
  c.default_beam_size = m.num_beams;
  c.max_positions = m.max_positions;

  KVMT_RETURN_IF_ERROR(ValidateWeights(c, model->weights, weights_path));
  return model;
}

}  // namespace kvmt
