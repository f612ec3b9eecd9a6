// kvmt_fuzz_seeds DIR: writes the seed corpora DIR/<target>/ (tests/fuzz/corpus/ is its output):
// small valid inputs built from the same tiny models the fuzz targets load, so that mutations
// start from files that get all the way through the readers and into a translation.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "kvmt/v1/translation.pb.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_support.h"
#include "tests/model/ct2_tiny_model.h"
#include "tests/model/marian_tiny_model.h"

namespace kvmt::fuzz {
namespace {

namespace fs = std::filesystem;
using testing::Ct2DType;
using testing::TinyModel;
using testing::TinyModelOptions;

void Write(const fs::path& root, const std::string& target, const std::string& name,
           const std::string& bytes) {
  fs::create_directories(root / target);
  WriteFile(root / target / name, bytes);
}

TinyModelOptions Small(uint32_t version, uint32_t revision, Ct2DType weights, Ct2DType others) {
  TinyModelOptions o;
  o.binary_version = version;
  o.spec = version == 1 ? "" : "TransformerSpec";
  o.spec_revision = revision;
  o.weight_dtype = weights;
  o.other_dtype = others;
  o.d_model = 4;
  o.num_heads = 2;
  o.ffn_dim = 4;
  o.decoder_layers = 1;
  return o;
}

void WriteSeeds(const fs::path& root) {
  TinyModelOptions tied = Small(6, 7, Ct2DType::kInt8, Ct2DType::kFloat16);
  tied.tie_output_projection = true;
  TinyModelOptions positions = Small(5, 5, Ct2DType::kBFloat16, Ct2DType::kFloat32);
  positions.store_positions = true;
  const std::pair<const char*, TinyModelOptions> models[] = {
      {"v6_float32", Small(6, 7, Ct2DType::kFloat32, Ct2DType::kFloat32)},
      {"v6_int8_float16_tied", tied},
      {"v5_bfloat16_positions", positions},
      {"v3_int16", Small(3, 3, Ct2DType::kInt16, Ct2DType::kFloat32)},
      {"v1_int16", Small(1, 1, Ct2DType::kInt16, Ct2DType::kFloat32)},
  };
  for (const auto& [name, options] : models) {
    Write(root, "ctranslate2_model", std::string(name) + ".bin",
          TinyModel(options).writer().Serialize());
  }

  const testing::TinyMarianOptions marian;
  Write(root, "safetensors", "tiny_marian.safetensors", testing::TinyMarianSafetensors(marian));
  nlohmann::json mixed = {{"__metadata__", {{"format", "pt"}}},
                          {"h", {{"dtype", "F16"}, {"shape", {2}}, {"data_offsets", {0, 4}}}},
                          {"b", {{"dtype", "BF16"}, {"shape", {1, 2}}, {"data_offsets", {4, 8}}}},
                          {"i", {{"dtype", "I64"}, {"shape", {}}, {"data_offsets", {8, 16}}}}};
  const std::string header = mixed.dump();
  const uint64_t header_size = header.size();
  std::string bytes(reinterpret_cast<const char*>(&header_size), sizeof(header_size));
  bytes += header + std::string("\x00\x3c\x00\xc0\x80\x3f\x00\x40", 8) + std::string(8, '\x01');
  Write(root, "safetensors", "dtypes.safetensors", bytes);

  const nlohmann::json ct2_config = {{"unk_token", "<unk>"},       {"bos_token", "<s>"},
                                     {"eos_token", "</s>"},        {"add_source_bos", false},
                                     {"add_source_eos", true},     {"decoder_start_token", "<s>"},
                                     {"layer_norm_epsilon", 1e-6}, {"multi_query_attention", false},
                                     {"quantization_type", 0}};
  Write(root, "config_json", "ctranslate2.json", ct2_config.dump(1));
  Write(root, "config_json", "marian.json", testing::TinyMarianConfig(marian).dump(1));

  std::string lines;
  nlohmann::json array = nlohmann::json::array();
  for (const std::string& token : testing::TinyTargetTokens()) {
    lines += token + "\n";
    array.push_back(token);
  }
  Write(root, "vocabulary", "target_vocabulary.txt", lines);
  Write(root, "vocabulary", "target_vocabulary.json", array.dump());
  nlohmann::json vocab = nlohmann::json::object();
  const std::vector<std::string> pieces = testing::TinyMarianPieces();
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  Write(root, "vocabulary", "marian_vocab.json", vocab.dump());

  // The first byte's bits: 1 Marian, 2 huge line, 4 also the target prefix, 8 tokens.
  const std::pair<const char*, std::string> texts[] = {
      {"ct2_text", std::string("\x00", 1) + "a b c a"},
      {"ct2_tokens_prefix", std::string("\x0c") + "a  b\tc"},
      {"ct2_control", std::string("\x00\x01\x02\t\r\n\x7f", 7) + "b"},
      {"marian_text", "\x01the cat sat on the mat"},
      {"marian_language_code", "\x01>>deu<< der Hund und die Katze"},
      {"marian_huge_line", "\x03le chat et le chien "},
      {"marian_prefix", "\x05ein kleiner Hund"},
      {"marian_invalid_utf8", "\x01the \xff\xfe cat \xc3\x28"},
      {"marian_arabic", "\x01\xd8\xa2 \xd8\xaa \xd8\xb2"},
  };
  for (const auto& [name, text] : texts) Write(root, "translate_text", name, text);

  // The first byte: even Translate, odd TranslateStream; then the request's wire bytes.
  const auto request = [](const std::string& model, const std::vector<std::string>& texts) {
    v1::TranslateRequest r;
    r.set_model(model);
    for (const std::string& text : texts) r.add_segments()->set_text(text);
    return r;
  };
  v1::TranslateRequest options = request("", {"a b c", "", "c a"});
  options.mutable_options()->set_beam_size(3);
  options.mutable_options()->set_num_hypotheses(2);
  options.mutable_options()->set_length_penalty(0.5f);
  options.mutable_options()->set_max_decoding_length(5);
  options.mutable_options()->set_return_scores(true);
  v1::TranslateRequest tokens = request("tiny", {});
  v1::Segment* segment = tokens.add_segments();
  segment->add_tokens("a");
  segment->add_tokens("b");
  segment->add_target_prefix_tokens("x");
  v1::TranslateRequest sampling = request("marian", {"the cat", ">>deu<< der Hund"});
  sampling.mutable_options()->set_beam_size(1);
  sampling.mutable_options()->set_sampling_topk(5);
  sampling.mutable_options()->set_sampling_temperature(0.7f);
  sampling.mutable_options()->set_seed(9);
  v1::TranslateRequest prefix = request("marian", {"le chat"});
  prefix.mutable_segments(0)->set_target_prefix("the");
  prefix.mutable_options()->set_no_repeat_ngram_size(2);
  prefix.mutable_options()->set_repetition_penalty(1.5f);
  const std::pair<const char*, std::string> calls[] = {
      {"unary_options", "\x00" + options.SerializeAsString()},
      {"stream_tokens", "\x01" + tokens.SerializeAsString()},
      {"unary_sampling", "\x00" + sampling.SerializeAsString()},
      {"stream_prefix", "\x01" + prefix.SerializeAsString()},
      {"unary_unknown_model", "\x00" + request("nope", {"a"}).SerializeAsString()},
      // A text that is not UTF-8: protobuf would refuse it; the service names the field.
      {"unary_invalid_utf8", std::string("\x00\x12\x04\x0a\x02\xc3\x28", 7)},
  };
  for (const auto& [name, bytes] : calls) Write(root, "service_request", name, bytes);

  const std::pair<const char*, const char*> jsonl_lines[] = {
      {"text", R"({"segments":[{"text":"a b c"},{"tokens":["c","a"]}]})"},
      {"options",
       R"({"model":"translate_jsonl","segments":[{"text":"b a","target_prefix":"x"}],)"
       R"("options":{"beamSize":3,"num_hypotheses":2,"length_penalty":0.5,"return_scores":true}})"},
      {"sampling", R"({"segments":[{"text":"a"}],"options":{"beam_size":1,"sampling_topk":3,)"
                   R"("sampling_temperature":0.5,"seed":"7","no_repeat_ngram_size":2}})"},
      {"prefix_tokens", R"({"segments":[{"tokens":["a","b"],"targetPrefixTokens":["x","y"]}]})"},
  };
  for (const auto& [name, line] : jsonl_lines) Write(root, "jsonl_request", name, line);
}

}  // namespace
}  // namespace kvmt::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kvmt_fuzz_seeds DIR (tests/fuzz/corpus)\n");
    return 1;
  }
  kvmt::fuzz::WriteSeeds(argv[1]);
  return 0;
}
