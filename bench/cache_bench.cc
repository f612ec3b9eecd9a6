// kvmt-cache-bench: what the KV cache buys, measured in one run on the same machine.
//  1. target tokens/s with the cache vs. the textbook decoder (--no-cache) at several target
//     lengths, greedy and beam 4 — on an OPUS-MT-shaped model (random weights) and on a real one;
//  2. cache bytes per target and per source token, measured from the pool, next to theory;
//  3. beam 4: bytes copied per decoding step with block sharing vs. a full gather;
//  4. peak RSS over many segments (flat after warm-up) and the pool's accounting.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/ops.h"
#include "decoder/search/batch_search.h"
#include "decoder/search/step_model.h"
#include "encoder/encoder.h"
#include "model/model.h"
#include "model/random_model.h"
#include "translator/translator.h"

ABSL_FLAG(std::string, real_model, "../shared/models/ct2-v2-aren-transliteration",
          "A model directory to measure besides the OPUS-MT-shaped one; empty to skip.");
ABSL_FLAG(std::string, lengths, "16,32,64,128,256", "Target lengths (min = max decoding length).");
ABSL_FLAG(int, batch, 1, "Segments per call in the length sweep.");
ABSL_FLAG(int, source_length, 24, "Source tokens per segment (random ids).");
ABSL_FLAG(int, threads, 2, "Compute threads.");
ABSL_FLAG(int, rss_segments, 10000, "Segments translated for the RSS curve (real model).");
ABSL_FLAG(bool, skip_uncached_over_128, false, "Skip the slowest uncached runs (length > 128).");

namespace kvmt {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t CurrentRssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

int64_t PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

std::vector<SegmentIds> RandomSegments(int count, int length, int64_t vocab, unsigned seed,
                                       int32_t eos) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int32_t> token(4, static_cast<int32_t>(vocab) - 1);
  std::vector<SegmentIds> segments(count);
  for (SegmentIds& segment : segments) {
    for (int i = 0; i < length; ++i) segment.source.push_back(token(generator));
    segment.source.push_back(eos);
  }
  return segments;
}

std::shared_ptr<const Model> OpusShapedModel() {
  RandomModelSpec spec;
  spec.d_model = 512;
  spec.num_heads = 8;
  spec.ffn_dim = 2048;
  spec.encoder_layers = 6;
  spec.decoder_layers = 6;
  spec.source_vocab = 58101;
  spec.target_vocab = 58101;
  spec.pre_norm = false;
  spec.activation = Activation::kSwish;
  spec.max_positions = 512;
  return MakeRandomModel(spec);
}

std::unique_ptr<Translator> MakeTranslator(std::shared_ptr<const Model> model, bool use_cache) {
  TranslatorOptions options;
  options.threads = absl::GetFlag(FLAGS_threads);
  options.use_cache = use_cache;
  options.source_cache_bytes = 0;  // Measure decoding, not source-cache hits.
  return std::move(Translator::Create(std::move(model), options)).value();
}

// Tokens/s of one configuration; every hypothesis has exactly `length` tokens.
double TokensPerSecond(const Translator& translator, const std::vector<SegmentIds>& segments,
                       int length, int beam) {
  SearchOptions options;
  options.beam_size = beam;
  options.min_decoding_length = length;
  options.max_decoding_length = length;
  const auto start = Clock::now();
  auto results = translator.TranslateIds(segments, options);
  const double seconds = Seconds(start);
  if (!results.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(results.status().message()).c_str());
    return 0;
  }
  int64_t tokens = 0;
  for (const SearchResult& result : *results) tokens += result.hypotheses[0].ids.size();
  return tokens / seconds;
}

void LengthSweep(const char* name, std::shared_ptr<const Model> model) {
  std::vector<int> lengths;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_lengths), ',')) {
    int value = 0;
    if (absl::SimpleAtoi(part, &value) && value > 0) lengths.push_back(value);
  }
  const int batch = absl::GetFlag(FLAGS_batch);
  const auto segments =
      RandomSegments(batch, absl::GetFlag(FLAGS_source_length),
                     model->weights.source_embeddings.dim(0), 1, model->config.target_eos_id);
  auto cached = MakeTranslator(model, true);
  auto uncached = MakeTranslator(model, false);
  std::printf("\n## %s: target tokens/s, cache vs. no cache (batch %d, source %d tokens)\n\n", name,
              batch, absl::GetFlag(FLAGS_source_length));
  std::printf("| target length | search | cached tok/s | uncached tok/s | speed-up |\n");
  std::printf("|---:|---|---:|---:|---:|\n");
  TokensPerSecond(*cached, segments, 8, 1);  // Warm-up: primitives, pages, threads.
  for (int beam : {1, 4}) {
    for (int length : lengths) {
      const double with_cache = TokensPerSecond(*cached, segments, length, beam);
      if (length > 128 && absl::GetFlag(FLAGS_skip_uncached_over_128)) {
        std::printf("| %d | %s | %.1f | skipped | |\n", length, beam == 1 ? "greedy" : "beam 4",
                    with_cache);
        continue;
      }
      const double without = TokensPerSecond(*uncached, segments, length, beam);
      std::printf("| %d | %s | %.1f | %.1f | %.1fx |\n", length, beam == 1 ? "greedy" : "beam 4",
                  with_cache, without, with_cache / without);
      std::fflush(stdout);
    }
  }
}

void BytesPerToken(const char* name, std::shared_ptr<const Model> model) {
  const KVBlockLayout layout = KVLayoutFor(model->config);
  const int64_t block_bytes = layout.block_floats() * static_cast<int64_t>(sizeof(float));
  const int64_t theory = 2LL * model->config.decoder_layers * model->config.d_model * 4;
  const int source_length = 64;
  const int target_length = 256;
  auto translator = MakeTranslator(model, true);
  const auto segments =
      RandomSegments(1, source_length - 1, model->weights.source_embeddings.dim(0), 2,
                     model->config.target_eos_id);
  TokensPerSecond(*translator, segments, target_length, 1);
  const BlockPoolStats stats = translator->cache_stats().pool;
  const int64_t source_blocks = layout.blocks_for(source_length);
  const double per_source = static_cast<double>(source_blocks * block_bytes) / source_length;
  const double per_target =
      static_cast<double>((stats.peak_used_blocks - source_blocks) * block_bytes) / target_length;
  std::printf("\n## %s: cache bytes per token (greedy, %d source and %d target tokens)\n\n", name,
              source_length, target_length);
  std::printf("| | measured | theory (2 x layers x d_model x 4 B) |\n|---|---:|---:|\n");
  std::printf("| per source token | %.0f B | %lld B |\n", per_source,
              static_cast<long long>(theory));
  std::printf("| per target token | %.0f B | %lld B |\n", per_target,
              static_cast<long long>(theory));
  std::printf("\nPool: %lld blocks of %lld KiB (%d positions), peak %lld blocks in use.\n",
              static_cast<long long>(stats.total_blocks),
              static_cast<long long>(block_bytes / 1024), layout.block_size,
              static_cast<long long>(stats.peak_used_blocks));
}

void SharingTraffic(const char* name, std::shared_ptr<const Model> model, int length) {
  SetNumThreads(absl::GetFlag(FLAGS_threads));
  absl::StatusOr<std::unique_ptr<Encoder>> made_encoder =
      Encoder::Create(model->config, model->weights);
  absl::StatusOr<std::unique_ptr<Decoder>> made_decoder =
      Decoder::Create(model->config, model->weights);
  if (!made_encoder.ok() || !made_decoder.ok()) {
    std::fprintf(stderr, "kvmt-cache-bench: %s %s\n", made_encoder.status().ToString().c_str(),
                 made_decoder.status().ToString().c_str());
    std::exit(1);
  }
  const Encoder& encoder = **made_encoder;
  const Decoder& decoder = **made_decoder;
  const KVBlockLayout layout = KVLayoutFor(model->config);
  auto pool = std::make_shared<BlockPool>(layout.block_floats(), int64_t{1} << 30);
  CachedStepModel step_model(decoder, pool);
  const int64_t vocab = model->weights.output_projection.out_features();
  BatchSearch search(step_model,
                     SearchVocabulary{model->config.decoder_start_id, model->config.target_eos_id,
                                      model->config.suppressed_target_ids, vocab});
  const auto segments = RandomSegments(4, 20, model->weights.source_embeddings.dim(0), 3,
                                       model->config.target_eos_id);
  std::vector<std::vector<int32_t>> sources;
  for (const auto& s : segments) sources.push_back(s.source);
  auto encoded = encoder.Encode(sources, pool);
  SearchOptions options;
  options.beam_size = 4;
  options.min_decoding_length = length;
  options.max_decoding_length = length;
  for (size_t i = 0; i < encoded->size(); ++i) {
    (void)search.Add(i, (*encoded)[i], {}, options);
  }
  SearchStepOutput output;
  int steps = 0;
  while (!search.empty()) {
    (void)search.Step(output);
    ++steps;
  }
  const ReorderTraffic& traffic = step_model.cache().traffic();
  std::printf("\n## %s: beam 4, 4 segments, %d steps: bytes copied per step\n\n", name, length);
  std::printf("| block sharing (copy-on-write) | full gather | ratio |\n|---:|---:|---:|\n");
  std::printf(
      "| %.0f B | %.0f B | %.1fx less |\n", static_cast<double>(traffic.bytes_copied) / steps,
      static_cast<double>(traffic.bytes_full_gather) / steps,
      static_cast<double>(traffic.bytes_full_gather) / std::max<int64_t>(1, traffic.bytes_copied));
}

void RssOverSegments(const char* name, std::shared_ptr<const Model> model) {
  const int total = absl::GetFlag(FLAGS_rss_segments);
  if (total <= 0) return;
  TranslatorOptions options;
  options.threads = absl::GetFlag(FLAGS_threads);
  auto translator = std::move(Translator::Create(model, options)).value();
  std::mt19937 generator(4);
  std::uniform_int_distribution<int> length(3, 12);
  std::uniform_int_distribution<int32_t> token(4, model->weights.source_embeddings.dim(0) - 1);
  SearchOptions search;
  search.beam_size = 4;
  search.max_decoding_length = 64;
  std::printf("\n## %s: RSS over %d segments (batches of 32, beam 4, random sources)\n\n", name,
              total);
  std::printf("| segments | RSS | peak RSS | pool peak | source cache (entries, hit rate) |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  const auto start = Clock::now();
  for (int done = 0; done < total;) {
    std::vector<SegmentIds> batch(std::min(32, total - done));
    for (SegmentIds& segment : batch) {
      const int n = length(generator);
      for (int i = 0; i < n; ++i) segment.source.push_back(token(generator));
      segment.source.push_back(model->config.source_eos_id >= 0 ? model->config.source_eos_id
                                                                : token(generator));
    }
    if (!translator->TranslateIds(batch, search).ok()) return;
    const int before = done;
    done += static_cast<int>(batch.size());
    if (done / (total / 10) != before / (total / 10) || done == total) {
      const CacheStats stats = translator->cache_stats();
      std::printf("| %d | %.1f MiB | %.1f MiB | %.2f MiB | %lld, %.0f%% |\n", done,
                  CurrentRssKb() / 1024.0, PeakRssKb() / 1024.0,
                  stats.pool.peak_bytes() / 1048576.0,
                  static_cast<long long>(stats.source_cache.entries),
                  100.0 * stats.source_cache.hit_rate());
      std::fflush(stdout);
    }
  }
  std::printf(
      "\n%d segments in %.1f s; pool in use at the end: %lld blocks (must be 0 but for "
      "source-cache entries: %lld B).\n",
      total, Seconds(start), static_cast<long long>(translator->cache_stats().pool.used_blocks),
      static_cast<long long>(translator->cache_stats().source_cache.bytes));
}

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::printf("# kvmt-cache-bench (threads %d)\n", absl::GetFlag(FLAGS_threads));
  auto opus = kvmt::OpusShapedModel();
  kvmt::LengthSweep("OPUS-MT-shaped (d512, 6+6, FFN 2048, vocab 58101)", opus);
  kvmt::BytesPerToken("OPUS-MT-shaped", opus);
  kvmt::SharingTraffic("OPUS-MT-shaped", opus, 64);
  const std::string real = absl::GetFlag(FLAGS_real_model);
  if (!real.empty()) {
    auto loaded = kvmt::LoadModel(real);
    if (!loaded.ok()) {
      std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    std::shared_ptr<const kvmt::Model> model = std::move(*loaded);
    kvmt::LengthSweep(real.c_str(), model);
    kvmt::BytesPerToken(real.c_str(), model);
    kvmt::SharingTraffic(real.c_str(), model, 64);
    kvmt::RssOverSegments(real.c_str(), model);
  }
  return 0;
}
