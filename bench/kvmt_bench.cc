// kvmt-bench: engine throughput on an OPUS-MT-shaped model, side by side with a PyTorch
// reference running the same weights on the same inputs in the same run (issue 6):
//  - target tokens/s at batch B beam K and batch B greedy, for each thread count;
//  - batch-1 greedy latency per segment, p50 and p95;
//  - float32 vs int8 vs bfloat16: speed ratios and token agreement with float32;
//  - a per-stage profile and the decoder step's achieved GFLOP/s next to oneDNN's GEMM peak;
//  - peak RSS of both processes.
// Output lengths are fixed (min = max decoding length), so that every engine does the same work.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/torch_export.h"
#include "core/compute_type.h"
#include "core/linear.h"
#include "core/ops.h"
#include "core/packed_matmul.h"
#include "core/parallel_for.h"
#include "core/profile.h"
#include "core/vectorize.h"
#include "decoder/decoder.h"
#include "encoder/encoder.h"
#include "model/random_model.h"
#include "nlohmann/json.hpp"
#include "tools/kebab_flags.h"
#include "tools/peak_rss.h"
#include "translator/translator.h"

ABSL_FLAG(std::string, threads, "1,2", "Thread counts to measure.");
ABSL_FLAG(std::string, compute_types, "float32,int8,bfloat16", "Compute types to measure.");
ABSL_FLAG(int, batch, 32, "Segments per batch in the throughput runs.");
ABSL_FLAG(int, beam, 4, "Beam size of the beam run.");
ABSL_FLAG(int, length, 32, "Target tokens per segment (min = max decoding length).");
ABSL_FLAG(int, latency_segments, 10, "Segments translated one by one for the latency figures.");
ABSL_FLAG(std::string, input, "../shared/testsets/newstest2021.en-de.src.en",
          "Sentences, one per line: the first --batch are the batch, the next ones the latency "
          "segments.");
ABSL_FLAG(int, vocabulary, 58101, "Source and target vocabulary size (OPUS-MT en-de: 58101).");
ABSL_FLAG(bool, torch, true, "Run the PyTorch reference (bench/torch_reference.py) as well.");
ABSL_FLAG(std::string, python, "/usr/bin/python3", "The Python with Debian's torch.");
ABSL_FLAG(std::string, work_dir, "", "Where the reference model goes; empty: a temporary folder.");
ABSL_FLAG(std::string, real_models, "../shared/models",
          "Folder of the ct2-v2-aren-transliteration models, for the agreement of int8 and bf16 "
          "with f32 on a real trained model; empty to skip.");
ABSL_FLAG(std::string, markdown, "", "Also write the results as Markdown to this file.");

namespace kvmt {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t CurrentRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// The 1-, 5- and 15-minute load averages: these figures are taken on shared machines.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

// User + system CPU time of this process so far: on a loaded machine the wall time includes the
// time other programs ran; the CPU time does not (with OMP_WAIT_POLICY=passive, waiting threads
// do not spin).
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p * static_cast<double>(values.size() - 1);
  const size_t low = static_cast<size_t>(std::floor(rank));
  const size_t high = std::min(values.size() - 1, low + 1);
  return values[low] + (rank - static_cast<double>(low)) * (values[high] - values[low]);
}

// Source ids from text without a SentencePiece model of this vocabulary: each word becomes
// pieces of up to 5 bytes (about OPUS-MT's 1.3-1.5 pieces per English word), each piece a
// hashed id; then </s>. The lengths are those of real sentences, which is what the cost depends on.
std::vector<int32_t> PseudoPieces(const std::string& line, int vocabulary, int32_t eos) {
  std::vector<int32_t> ids;
  for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    for (size_t begin = 0; begin < word.size(); begin += 5) {
      uint64_t hash = 1469598103934665603ull;
      for (char c : word.substr(begin, 5))
        hash = (hash ^ static_cast<uint8_t>(c)) * 1099511628211ull;
      ids.push_back(static_cast<int32_t>(2 + hash % static_cast<uint64_t>(vocabulary - 2)));
    }
  }
  if (ids.size() > 254) ids.resize(254);
  ids.push_back(eos);
  return ids;
}

std::vector<int> ParseInts(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value = 0;
    if (absl::SimpleAtoi(part, &value) && value > 0) values.push_back(value);
  }
  return values;
}

using Outputs = std::vector<std::vector<int32_t>>;

struct Run {
  double seconds = 0;
  double cpu_seconds = 0;  // User + system time of the whole process, all threads.
  int64_t target_tokens = 0;
  Outputs outputs;
  double tokens_per_second() const { return seconds > 0 ? target_tokens / seconds : 0; }
  double tokens_per_cpu_second() const { return cpu_seconds > 0 ? target_tokens / cpu_seconds : 0; }
};

struct Latency {
  std::vector<double> seconds;
  Outputs outputs;
};

struct StageTimes {
  std::map<Stage, double> seconds;
  double decoder_flops = 0;
};

struct EngineResult {
  std::string engine;  // "kvmt float32", "PyTorch float32", ...
  int threads = 0;
  Run beam;
  Run greedy;
  Latency latency;
  StageTimes beam_profile;
  int64_t rss_after_load = 0;
  std::string note;
};

// Agreement of two output sets: the share of target positions with the same token.
double TokenAgreement(const Outputs& a, const Outputs& b) {
  int64_t same = 0, total = 0;
  for (size_t s = 0; s < std::min(a.size(), b.size()); ++s) {
    const size_t n = std::max(a[s].size(), b[s].size());
    for (size_t t = 0; t < n; ++t) {
      same += t < a[s].size() && t < b[s].size() && a[s][t] == b[s][t];
      ++total;
    }
  }
  return total > 0 ? static_cast<double>(same) / static_cast<double>(total) : 0;
}

// Weights a decoder step multiplies each row by: every decoder layer's projections
// (self-attention Q, K, V, out; cross-attention Q, out; the two FFN layers) and the vocabulary
// projection. The source K/V projections run once, in the encoder step.
double DecoderStepWeights(const ModelConfig& c, int64_t vocab) {
  const double d = c.d_model, f = c.ffn_dim;
  return c.decoder_layers * (6 * d * d + 2 * d * f) + d * vocab;
}

// FLOPs of the decoder steps of a fixed-length search: every projection (2 per multiply-add)
// and the attention products (scores and weighted sum, over the cache and over the source).
double DecoderFlops(const ModelConfig& c, int64_t vocab, const std::vector<SegmentIds>& segments,
                    int beam, int length) {
  const double d = c.d_model;
  const double per_row_linear = 2 * DecoderStepWeights(c, vocab);
  double flops = 0;
  for (const SegmentIds& segment : segments) {
    for (int t = 0; t < length; ++t) {
      const double rows = t == 0 ? 1 : beam;
      const double attention = c.decoder_layers * 4 * d * (t + 1 + segment.source.size());
      flops += rows * (per_row_linear + attention);
    }
  }
  return flops;
}

// n: a multiple of 4.
KVMT_VECTORIZED float SumOf(const float* x, int64_t n) {
  // Four sums so that the adds of one are not waiting on the last: the loop must be bound by
  // the loads.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// Read bandwidth with `threads` threads, GB/s: the best of five sums over 256 MiB, more than a
// decoder step's weights. The rate at which a step that streams its weights can expect them.
double MemoryReadGbps(int threads) {
  SetNumThreads(threads);
  constexpr int64_t kChunks = 64;
  constexpr int64_t kChunkFloats = int64_t{1} << 20;
  std::vector<float> data(static_cast<size_t>(kChunks * kChunkFloats), 1.0f);
  std::vector<float> sums(kChunks);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const Clock::time_point start = Clock::now();
    ParallelFor(kChunks, kChunkFloats, [&](int64_t chunk) {
      sums[static_cast<size_t>(chunk)] = SumOf(data.data() + chunk * kChunkFloats, kChunkFloats);
    });
    const double seconds = SecondsSince(start);
    if (sums[0] != static_cast<float>(kChunkFloats)) return 0;  // Keeps the sums computed.
    best = std::max(best, 4.0 * kChunks * kChunkFloats / seconds / 1e9);
  }
  return best;
}

class Bench {
 public:
  Bench(std::shared_ptr<const Model> model, std::vector<SegmentIds> batch,
        std::vector<SegmentIds> latency)
      : model_(std::move(model)), batch_(std::move(batch)), latency_(std::move(latency)) {}

  EngineResult Measure(ComputeType type, int threads) {
    EngineResult result;
    result.threads = threads;
    TranslatorOptions options;
    options.threads = threads;
    options.compute_type = type;
    options.max_batch_size = static_cast<int>(batch_.size());
    options.cache_memory_bytes = int64_t{768} << 20;
    options.source_cache_bytes = 0;  // Every run encodes, as the reference does.
    absl::StatusOr<std::unique_ptr<Translator>> translator = Translator::Create(model_, options);
    if (!translator.ok()) {
      std::fprintf(stderr, "kvmt-bench: %s\n", translator.status().ToString().c_str());
      std::exit(1);
    }
    result.engine = absl::StrCat("kvmt ", ComputeTypeName((*translator)->compute_type().type));
    result.note = (*translator)->compute_type().note;
    result.rss_after_load = CurrentRssBytes();
    const int length = absl::GetFlag(FLAGS_length);
    // Warm-up: builds the primitives of the batch's row counts.
    Translate(**translator, {batch_.begin(), batch_.begin() + 2}, absl::GetFlag(FLAGS_beam), 2);

    Profile::Reset();
    Profile::Enable(true);
    result.beam = Translate(**translator, batch_, absl::GetFlag(FLAGS_beam), length);
    Profile::Enable(false);
    for (int s = 0; s < static_cast<int>(Stage::kCount); ++s) {
      result.beam_profile.seconds[static_cast<Stage>(s)] = Profile::Seconds(static_cast<Stage>(s));
    }
    result.beam_profile.decoder_flops =
        DecoderFlops(model_->config, model_->weights.output_projection.out_features(), batch_,
                     absl::GetFlag(FLAGS_beam), length);
    result.greedy = Translate(**translator, batch_, 1, length);
    for (const SegmentIds& segment : latency_) {
      const Run one = Translate(**translator, {segment}, 1, length);
      result.latency.seconds.push_back(one.seconds);
      result.latency.outputs.push_back(one.outputs[0]);
    }
    return result;
  }

  // The GEMM peak of oneDNN here: the fastest of a few large products, raw (no quantisation of
  // the input, no rescaling): what a decoder step's matmuls could reach at best.
  static double GemmPeakGflops(ComputeType type, int threads) {
    SetNumThreads(threads);
    double best = 0;
    for (const auto& [m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {128, 512, 2048}, {256, 512, 2048}, {256, 2048, 512}, {512, 512, 512}}) {
      std::vector<char> weights(static_cast<size_t>(n * k * 4), 1);
      std::vector<char> src(static_cast<size_t>(m * k * 4), 1);
      std::vector<float> dst(static_cast<size_t>(m * n));
      std::unique_ptr<Linear> f32;
      std::unique_ptr<PackedMatMul> packed;
      using dt = dnnl::memory::data_type;
      if (type == ComputeType::kFloat32) {
        Tensor w = Tensor::Zeros({n, k});
        f32 = *MakeLinear(LinearParameters{w, {}, Tensor(), std::nullopt}, type);
      } else {
        const PackedMatMul::Types types =
            type == ComputeType::kInt8
                ? PackedMatMul::Types{dt::u8, dt::s8, dt::s32, false, std::nullopt}
                : PackedMatMul::Types{dt::bf16, dt::bf16, dt::f32, false, std::nullopt};
        packed = *PackedMatMul::Create(k, n, types, weights.data());
      }
      auto run = [&] {
        if (f32) {
          f32->Forward(reinterpret_cast<const float*>(src.data()), m, dst.data());
        } else {
          packed->Execute(src.data(), m, dst.data(), nullptr);
        }
      };
      run();
      int reps = 0;
      const Clock::time_point start = Clock::now();
      while (SecondsSince(start) < 0.3) {
        run();
        ++reps;
      }
      best = std::max(best, 2.0 * m * k * n * reps / SecondsSince(start) / 1e9);
    }
    return best;
  }

 private:
  Run Translate(const Translator& translator, const std::vector<SegmentIds>& segments, int beam,
                int length) {
    SearchOptions options;
    options.beam_size = beam;
    options.num_hypotheses = 1;
    options.min_decoding_length = length;
    options.max_decoding_length = length;
    const Clock::time_point start = Clock::now();
    const double cpu_start = ProcessCpuSeconds();
    absl::StatusOr<std::vector<SearchResult>> results = translator.TranslateIds(segments, options);
    Run run;
    run.seconds = SecondsSince(start);
    run.cpu_seconds = ProcessCpuSeconds() - cpu_start;
    if (!results.ok()) {
      std::fprintf(stderr, "kvmt-bench: %s\n", results.status().ToString().c_str());
      std::exit(1);
    }
    for (const SearchResult& result : *results) {
      run.outputs.push_back(result.hypotheses.empty() ? std::vector<int32_t>()
                                                      : result.hypotheses[0].ids);
      run.target_tokens += static_cast<int64_t>(run.outputs.back().size());
    }
    return run;
  }

  std::shared_ptr<const Model> model_;
  std::vector<SegmentIds> batch_;
  std::vector<SegmentIds> latency_;
};

// Runs bench/torch_reference.py on the same model and inputs; its results per thread count.
std::vector<EngineResult> RunTorch(const Model& model, const std::vector<SegmentIds>& batch,
                                   const std::vector<SegmentIds>& latency,
                                   const std::vector<int>& threads, int64_t* peak_rss) {
  std::string dir = absl::GetFlag(FLAGS_work_dir);
  const bool temporary = dir.empty();
  if (temporary) {
    dir = (std::filesystem::temp_directory_path() / absl::StrCat("kvmt-bench-", getpid())).string();
  }
  if (absl::Status status = WriteTorchReferenceModel(model, dir); !status.ok()) {
    std::fprintf(stderr, "kvmt-bench: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  nlohmann::json work;
  work["length"] = absl::GetFlag(FLAGS_length);
  work["beam_size"] = absl::GetFlag(FLAGS_beam);
  work["threads"] = threads;
  work["batch_sources"] = nlohmann::json::array();
  for (const SegmentIds& s : batch) work["batch_sources"].push_back(s.source);
  work["latency_sources"] = nlohmann::json::array();
  for (const SegmentIds& s : latency) work["latency_sources"].push_back(s.source);
  std::ofstream(dir + "/workload.json") << work.dump();
  const std::string script = std::string(KVMT_SOURCE_DIR) + "/bench/torch_reference.py";
  const std::string command = absl::StrCat(absl::GetFlag(FLAGS_python), " ", script, " ", dir, " ",
                                           dir, "/workload.json ", dir, "/out.json");
  std::fprintf(stderr, "kvmt-bench: running the PyTorch reference: %s\n", command.c_str());
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "kvmt-bench: the PyTorch reference failed\n");
    std::exit(1);
  }
  std::ifstream in(dir + "/out.json");
  const nlohmann::json out = nlohmann::json::parse(in);
  *peak_rss = out["peak_rss_bytes"].get<int64_t>();
  std::vector<EngineResult> results;
  for (int t : threads) {
    EngineResult r;
    r.engine = absl::StrCat("PyTorch ", out["torch"].get<std::string>(), " float32");
    r.threads = t;
    for (const nlohmann::json& entry : out["results"]) {
      if (entry["threads"].get<int>() != t) continue;
      const std::string workload = entry["workload"];
      if (workload == "latency") {
        r.latency.seconds = entry["latencies"].get<std::vector<double>>();
        r.latency.outputs = entry["outputs"].get<Outputs>();
        continue;
      }
      Run& run = workload == "beam" ? r.beam : r.greedy;
      run.seconds = entry["seconds"];
      run.cpu_seconds = entry["cpu_seconds"];
      run.target_tokens = entry["target_tokens"];
      run.outputs = entry["outputs"].get<Outputs>();
    }
    results.push_back(std::move(r));
  }
  if (temporary) std::filesystem::remove_all(dir);
  return results;
}

// Why agreement on the random model says little: teacher-forced logits of a few segments (along
// float32's greedy output) in every compute type against float32's, next to the gap between the
// two best float32 logits, which is what an error has to exceed to change the argmax.
std::string LogitErrorSection(const Model& model, const std::vector<SegmentIds>& batch,
                              const Outputs& float32_greedy,
                              const std::vector<ComputeType>& types) {
  constexpr size_t kSegments = 4;
  constexpr size_t kSteps = 16;
  std::vector<Tensor> reference;
  std::string text =
      "\n### Logit error on the random model (teacher-forced, 4 segments x 16 steps)\n\n"
      "| compute type | RMS logit error vs. float32 | largest | argmax differs | median gap "
      "top-1 - top-2 (float32) | logit spread (std, float32) |\n|---|---|---|---|---|---|\n";
  std::vector<ComputeType> order = {ComputeType::kFloat32};  // The reference first.
  for (ComputeType type : types) {
    if (type != ComputeType::kFloat32) order.push_back(type);
  }
  for (ComputeType type : order) {
    absl::StatusOr<std::unique_ptr<Encoder>> encoder =
        Encoder::Create(model.config, model.weights, type);
    absl::StatusOr<std::unique_ptr<Decoder>> decoder =
        Decoder::Create(model.config, model.weights, type);
    if (!encoder.ok() || !decoder.ok()) return "\n(logit errors skipped)\n";
    double squares = 0, largest = 0, count = 0, flips = 0, rows = 0;
    std::vector<double> gaps, spreads;
    for (size_t s = 0; s < kSegments && s < batch.size() && s < float32_greedy.size(); ++s) {
      absl::StatusOr<std::vector<std::shared_ptr<const EncodedSource>>> encoded =
          (*encoder)->Encode({batch[s].source});
      if (!encoded.ok()) return "\n(logit errors skipped)\n";
      const std::vector<int32_t> target(
          float32_greedy[s].begin(),
          float32_greedy[s].begin() + std::min(kSteps, float32_greedy[s].size()));
      absl::StatusOr<Tensor> logits = (*decoder)->ForcedLogits((*encoded)[0], target);
      if (!logits.ok()) return "\n(logit errors skipped)\n";
      if (type == ComputeType::kFloat32) {
        reference.push_back(*logits);
        continue;
      }
      const Tensor& ref = reference[s];
      const int64_t vocab = ref.dim(1);
      for (int64_t t = 0; t < ref.dim(0); ++t) {
        const float* a = logits->data() + t * vocab;
        const float* b = ref.data() + t * vocab;
        for (int64_t v = 0; v < vocab; ++v) {
          const double e = a[v] - b[v];
          squares += e * e;
          largest = std::max(largest, std::fabs(e));
        }
        count += static_cast<double>(vocab);
        flips += std::max_element(a, a + vocab) - a != std::max_element(b, b + vocab) - b;
        ++rows;
      }
    }
    if (type == ComputeType::kFloat32) continue;
    for (const Tensor& ref : reference) {
      const int64_t vocab = ref.dim(1);
      for (int64_t t = 0; t < ref.dim(0); ++t) {
        std::vector<float> row(ref.data() + t * vocab, ref.data() + (t + 1) * vocab);
        std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<float>());
        gaps.push_back(row[0] - row[1]);
        double mean = 0, sq = 0;
        for (float v : row) mean += v;
        mean /= static_cast<double>(vocab);
        for (float v : row) sq += (v - mean) * (v - mean);
        spreads.push_back(std::sqrt(sq / static_cast<double>(vocab)));
      }
    }
    text += absl::StrFormat("| %s | %.3f | %.3f | %.0f%% | %.3f | %.1f |\n", ComputeTypeName(type),
                            std::sqrt(squares / count), largest, 100 * flips / rows,
                            Percentile(gaps, 0.5), Percentile(spreads, 0.5));
  }
  return text;
}

// The real trained model (float32 and its int8 save) on 113 Arabic names: token agreement of each
// compute type with float32, and tokens/s (beam 4, batch 32, 1 thread: a tiny model).
std::string RealModelSection() {
  const std::string dir = absl::GetFlag(FLAGS_real_models);
  std::ifstream in(std::string(KVMT_SOURCE_DIR) + "/tests/engine/arabic_names.txt");
  v1::TranslateRequest request;
  request.mutable_options()->set_beam_size(4);
  std::string line;
  while (std::getline(in, line)) {
    v1::Segment* segment = request.add_segments();
    for (absl::string_view token : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      segment->add_tokens(std::string(token));
    }
  }
  std::string text = absl::StrFormat(
      "\n### The real model: ct2-v2-aren-transliteration on %d Arabic names (beam 4, 1 thread)\n\n"
      "| model | compute type | tokens/s | agreement with the float32 model in float32 |\n"
      "|---|---|---|---|\n",
      request.segments_size());
  Outputs reference;
  for (const auto& [name, type] : std::vector<std::pair<std::string, ComputeType>>{
           {"ct2-v2-aren-transliteration", ComputeType::kFloat32},
           {"ct2-v2-aren-transliteration", ComputeType::kInt8},
           {"ct2-v2-aren-transliteration", ComputeType::kBFloat16},
           {"ct2-v2-aren-transliteration-i8", ComputeType::kInt8},
           {"ct2-v2-aren-transliteration-i8", ComputeType::kFloat32}}) {
    absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir + "/" + name);
    if (!model.ok())
      return absl::StrCat("\n(real model skipped: ", model.status().ToString(), ")\n");
    TranslatorOptions options;
    options.threads = 1;
    options.compute_type = type;
    options.source_cache_bytes = 0;
    absl::StatusOr<std::unique_ptr<Translator>> translator =
        Translator::Create(std::shared_ptr<const Model>(*std::move(model)), options);
    if (!translator.ok())
      return absl::StrCat("\n(real model skipped: ", translator.status().ToString(), ")\n");
    (void)(*translator)->Translate(request);  // Warm-up.
    const Clock::time_point start = Clock::now();
    absl::StatusOr<v1::TranslateResponse> response = (*translator)->Translate(request);
    const double seconds = SecondsSince(start);
    if (!response.ok())
      return absl::StrCat("\n(real model failed: ", response.status().ToString(), ")\n");
    Outputs outputs;
    int64_t tokens = 0;
    for (const v1::SegmentResult& result : response->results()) {
      std::vector<int32_t> ids;
      for (const std::string& token : result.hypotheses(0).tokens()) {
        ids.push_back((*translator)->model().target_vocabulary.Id(token));
      }
      tokens += static_cast<int64_t>(ids.size());
      outputs.push_back(std::move(ids));
    }
    if (reference.empty()) reference = outputs;
    text += absl::StrFormat("| %s | %s | %.0f | %.1f%% |\n", name,
                            ComputeTypeName((*translator)->compute_type().type), tokens / seconds,
                            100 * TokenAgreement(outputs, reference));
  }
  return text;
}

std::string Mib(int64_t bytes) { return absl::StrFormat("%.0f MiB", bytes / 1048576.0); }

int Main() {
  const std::vector<int> threads = ParseInts(absl::GetFlag(FLAGS_threads));
  std::vector<ComputeType> types;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_compute_types), ',')) {
    absl::StatusOr<ComputeType> type = ParseComputeType(name);
    if (!type.ok()) {
      std::fprintf(stderr, "kvmt-bench: %s\n", type.status().ToString().c_str());
      return 1;
    }
    types.push_back(*type);
  }
  const int batch_size = absl::GetFlag(FLAGS_batch);
  const int length = absl::GetFlag(FLAGS_length);

  RandomModelSpec spec;
  spec.d_model = 512;
  spec.num_heads = 8;
  spec.ffn_dim = 2048;
  spec.encoder_layers = 6;
  spec.decoder_layers = 6;
  spec.source_vocab = absl::GetFlag(FLAGS_vocabulary);
  spec.target_vocab = absl::GetFlag(FLAGS_vocabulary);
  spec.pre_norm = false;  // OPUS-MT (Marian) is post-norm.
  spec.activation = Activation::kSwish;
  spec.max_positions = 512;
  spec.seed = 6;
  // Before the model exists, so that the 256 MiB read stays below the peak RSS reported.
  std::map<int, double> bandwidth;  // GB/s by thread count
  for (int t : threads) bandwidth[t] = MemoryReadGbps(t);
  const Clock::time_point start = Clock::now();
  std::shared_ptr<const Model> model = MakeRandomModel(spec);
  const int64_t model_rss = CurrentRssBytes();
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("kvmt-bench: load average at start %s; OMP_WAIT_POLICY=%s\n", LoadAverage().c_str(),
              wait_policy != nullptr ? wait_policy : "(unset)");
  std::printf(
      "kvmt-bench: OPUS-MT-shaped random model (d_model 512, 6+6 layers, 8 heads, FFN "
      "2048, vocabularies %d, swish, post-norm) made in %.1f s; oneDNN ISA %s; RSS %s\n",
      spec.target_vocab, SecondsSince(start), CpuIsaName().c_str(), Mib(model_rss).c_str());

  std::ifstream input(absl::GetFlag(FLAGS_input));
  if (!input) {
    std::fprintf(stderr, "kvmt-bench: cannot read --input %s\n",
                 absl::GetFlag(FLAGS_input).c_str());
    return 1;
  }
  std::vector<SegmentIds> batch, latency;
  std::string line;
  int64_t source_tokens = 0;
  while (std::getline(input, line) && static_cast<int>(batch.size() + latency.size()) <
                                          batch_size + absl::GetFlag(FLAGS_latency_segments)) {
    if (line.empty()) continue;
    SegmentIds segment{PseudoPieces(line, spec.source_vocab, model->config.source_eos_id), {}};
    if (static_cast<int>(batch.size()) < batch_size) {
      source_tokens += static_cast<int64_t>(segment.source.size());
      batch.push_back(std::move(segment));
    } else {
      latency.push_back(std::move(segment));
    }
  }
  std::printf(
      "kvmt-bench: %zu batch segments (%.1f source tokens on average) and %zu latency "
      "segments from %s; %d target tokens each; beam %d\n",
      batch.size(), static_cast<double>(source_tokens) / batch.size(), latency.size(),
      absl::GetFlag(FLAGS_input).c_str(), length, absl::GetFlag(FLAGS_beam));

  std::vector<EngineResult> torch_results;
  int64_t torch_peak_rss = 0;
  if (absl::GetFlag(FLAGS_torch)) {
    torch_results = RunTorch(*model, batch, latency, threads, &torch_peak_rss);
  }

  Bench bench(model, batch, latency);
  std::vector<EngineResult> results;
  std::map<std::pair<int, ComputeType>, double> peaks;
  for (int t : threads) {
    for (ComputeType type : types) {
      peaks[{t, type}] = Bench::GemmPeakGflops(type, t);
      results.push_back(bench.Measure(type, t));
      std::fprintf(stderr, "kvmt-bench: %s, %d threads: beam %.0f tokens/s, greedy %.0f\n",
                   results.back().engine.c_str(), t, results.back().beam.tokens_per_second(),
                   results.back().greedy.tokens_per_second());
    }
  }

  // ---- Report ----
  std::string md;
  auto emit = [&md](const std::string& text) {
    std::fputs(text.c_str(), stdout);
    md += text;
  };
  emit(absl::StrFormat(
      "\n### Throughput and latency (batch %d, %d target tokens per segment)\n\n"
      "Tokens/s as wall / per CPU-second of the process (CPU time leaves out what other programs "
      "took on a shared machine). Ratios likewise.\n\n"
      "| engine | threads | beam %d tokens/s | greedy tokens/s | batch-1 greedy s/segment p50 / "
      "p95 | vs PyTorch: beam | greedy | batch-1 p50 | vs kvmt f32: beam | greedy | agreement "
      "with kvmt f32: beam / greedy |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n",
      batch_size, length, absl::GetFlag(FLAGS_beam)));
  auto find = [](const std::vector<EngineResult>& list, int thread_count,
                 const std::string& prefix) -> const EngineResult* {
    for (const EngineResult& r : list) {
      if (r.threads == thread_count && r.engine.rfind(prefix, 0) == 0) return &r;
    }
    return nullptr;
  };
  auto ratio = [](const Run& a, const Run& b) {
    return absl::StrFormat("%.2fx / %.2fx", a.tokens_per_second() / b.tokens_per_second(),
                           a.tokens_per_cpu_second() / b.tokens_per_cpu_second());
  };
  for (int t : threads) {
    const EngineResult* torch = find(torch_results, t, "PyTorch");
    const EngineResult* f32 = find(results, t, "kvmt float32");
    std::vector<const EngineResult*> rows;
    if (torch != nullptr) rows.push_back(torch);
    for (const EngineResult& r : results) {
      if (r.threads == t) rows.push_back(&r);
    }
    for (const EngineResult* r : rows) {
      std::string versus_torch = "- | - | -";
      if (torch != nullptr && r != torch) {
        versus_torch = absl::StrFormat(
            "%s | %s | %.2fx", ratio(r->beam, torch->beam), ratio(r->greedy, torch->greedy),
            Percentile(torch->latency.seconds, 0.5) / Percentile(r->latency.seconds, 0.5));
      }
      std::string versus_f32 = "- | - | -";
      if (f32 != nullptr && r != f32) {
        versus_f32 = absl::StrFormat("%s | %s | %.1f%% / %.1f%%", ratio(r->beam, f32->beam),
                                     ratio(r->greedy, f32->greedy),
                                     100 * TokenAgreement(r->beam.outputs, f32->beam.outputs),
                                     100 * TokenAgreement(r->greedy.outputs, f32->greedy.outputs));
      }
      emit(absl::StrFormat("| %s | %d | %.0f / %.0f | %.0f / %.0f | %.3f / %.3f | %s | %s |\n",
                           r->engine, t, r->beam.tokens_per_second(),
                           r->beam.tokens_per_cpu_second(), r->greedy.tokens_per_second(),
                           r->greedy.tokens_per_cpu_second(), Percentile(r->latency.seconds, 0.5),
                           Percentile(r->latency.seconds, 0.95), versus_torch, versus_f32));
    }
  }

  emit(absl::StrFormat(
      "\n### Where the time goes (beam %d run; seconds per stage) and the decoder's GFLOP/s\n\n"
      "| engine | threads | encoder | self-attention | cross-attention | feed-forward | output "
      "projection | search | decoder GFLOP/s | oneDNN GEMM peak GFLOP/s |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n",
      absl::GetFlag(FLAGS_beam)));
  for (const EngineResult& r : results) {
    const auto& s = r.beam_profile.seconds;
    const double decoder = s.at(Stage::kSelfAttention) + s.at(Stage::kCrossAttention) +
                           s.at(Stage::kFeedForward) + s.at(Stage::kOutputProjection);
    ComputeType type = ComputeType::kFloat32;
    for (ComputeType candidate : types) {
      if (r.engine == absl::StrCat("kvmt ", ComputeTypeName(candidate))) type = candidate;
    }
    emit(absl::StrFormat("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |\n",
                         r.engine, r.threads, s.at(Stage::kEncoder), s.at(Stage::kSelfAttention),
                         s.at(Stage::kCrossAttention), s.at(Stage::kFeedForward),
                         s.at(Stage::kOutputProjection), s.at(Stage::kSearch),
                         r.beam_profile.decoder_flops / decoder / 1e9, peaks[{r.threads, type}]));
  }

  if (std::find(types.begin(), types.end(), ComputeType::kFloat32) != types.end()) {
    const EngineResult* f32 = find(results, threads.front(), "kvmt float32");
    emit(LogitErrorSection(*model, batch, f32->greedy.outputs, types));
  }
  if (!absl::GetFlag(FLAGS_real_models).empty()) emit(RealModelSection());

  emit("\n### Memory and notes\n\n");
  emit(absl::StrFormat("- load average (1, 5, 15 min) at the end: %s; OMP_WAIT_POLICY=%s\n",
                       LoadAverage(), wait_policy != nullptr ? wait_policy : "(unset)"));
  emit(
      absl::StrFormat("- kvmt-bench peak RSS %s (the float32 model alone: %s; every compute "
                      "type's translator built in turn in this one process)\n",
                      Mib(PeakRssBytes()), Mib(model_rss)));
  for (const EngineResult& r : results) {
    if (r.threads != threads.front()) continue;
    emit(absl::StrFormat("- %s: RSS after building the translator %s%s\n", r.engine,
                         Mib(r.rss_after_load),
                         r.note.empty() ? "" : absl::StrCat(" (", r.note, ")")));
  }
  const double step_bytes = 4 * DecoderStepWeights(model->config, spec.target_vocab);
  for (int t : threads) {
    const EngineResult* f32 = find(results, t, "kvmt float32");
    std::string float32_rate;
    if (f32 != nullptr) {
      float32_rate =
          absl::StrFormat("; at its batch-1 p50 kvmt float32 reads them at %.1f GB/s or more",
                          step_bytes * length / Percentile(f32->latency.seconds, 0.5) / 1e9);
    }
    emit(absl::StrFormat(
        "- %d threads: memory read bandwidth %.1f GB/s (best of 5 sums over 256 MiB); a decoder "
        "step reads %.0f MB of float32 weights (layers and vocabulary projection)%s\n",
        t, bandwidth[t], step_bytes / 1e6, float32_rate));
  }
  if (!torch_results.empty()) {
    emit(absl::StrFormat("- PyTorch reference peak RSS %s\n", Mib(torch_peak_rss)));
    for (int t : threads) {
      const EngineResult* torch = find(torch_results, t, "PyTorch");
      const EngineResult* f32 = find(results, t, "kvmt float32");
      if (torch == nullptr || f32 == nullptr) continue;
      emit(
          absl::StrFormat("- %d threads: kvmt float32 and PyTorch agree on %.1f%% (beam) / "
                          "%.1f%% (greedy) / %.1f%% (batch 1) of the target tokens\n",
                          t, 100 * TokenAgreement(f32->beam.outputs, torch->beam.outputs),
                          100 * TokenAgreement(f32->greedy.outputs, torch->greedy.outputs),
                          100 * TokenAgreement(f32->latency.outputs, torch->latency.outputs)));
    }
  }
  const std::string markdown = absl::GetFlag(FLAGS_markdown);
  if (!markdown.empty()) std::ofstream(markdown) << md;
  return 0;
}

}  // namespace
}  // namespace kvmt

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "kvmt-bench [--threads 1,2] [--compute-types float32,int8,bfloat16] [--batch 32] "
      "[--beam 4] [--length 32] [--latency-segments 10] [--notorch] [--markdown FILE]");
  std::vector<std::string> args = kvmt::KebabToSnakeArgs(argc, argv);
  if (kvmt::AsksForHelp(args)) {
    std::printf("%s", kvmt::KebabUsage(__FILE__).c_str());
    return 0;
  }
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  absl::ParseCommandLine(static_cast<int>(args.size()), arg_pointers.data());
  return kvmt::Main();
}
