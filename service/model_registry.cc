#include "service/model_registry.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/compute_type.h"
#include "core/status_macros.h"
#include "model/model.h"
#include "service/log.h"
#include "service/metrics.h"

namespace kvmt {

absl::StatusOr<ModelSpec> ModelRegistry::ParseSpec(absl::string_view flag) {
  ModelSpec spec;
  const size_t equals = flag.find('=');
  if (equals != absl::string_view::npos &&
      flag.substr(0, equals).find('/') == absl::string_view::npos) {
    spec.name = std::string(flag.substr(0, equals));
    spec.dir = std::string(flag.substr(equals + 1));
  } else {
    spec.dir = std::string(flag);
    std::filesystem::path path(spec.dir);
    if (!path.has_filename()) path = path.parent_path();
    spec.name = path.filename().string();
  }
  if (spec.name.empty() || spec.dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model '", flag, "': expected DIR or NAME=DIR"));
  }
  return spec;
}

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Load(
    const std::vector<ModelSpec>& specs, const TranslatorOptions& engine,
    const SchedulerOptions& scheduling, Metrics& metrics) {
  if (specs.empty()) return absl::InvalidArgumentError("no model to serve: give --model");
  auto registry = std::unique_ptr<ModelRegistry>(new ModelRegistry());
  for (const ModelSpec& spec : specs) {
    for (const auto& loaded : registry->models_) {
      if (loaded->name == spec.name) {
        return absl::InvalidArgumentError(absl::StrCat("two models are called '", spec.name, "' (",
                                                       loaded->dir, " and ", spec.dir,
                                                       "): name them with --model NAME=DIR"));
      }
    }
    LogInfo(absl::StrCat("loading model '", spec.name, "' from ", spec.dir));
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(spec.dir);
    if (!model.ok()) {
      return absl::Status(model.status().code(), absl::StrCat("cannot load the model '", spec.name,
                                                              "': ", model.status().message()));
    }
    auto served = std::make_unique<ServedModel>();
    served->name = spec.name;
    served->dir = spec.dir;
    KVMT_ASSIGN_OR_RETURN(
        std::unique_ptr<Translator> translator,
        Translator::Create(std::shared_ptr<const Model>(*std::move(model)), engine));
    served->translator = std::move(translator);
    SchedulerOptions options = scheduling;
    options.on_step = [&metrics, name = spec.name](int segments, int) {
      metrics.ObserveBatch(name, segments);
    };
    KVMT_ASSIGN_OR_RETURN(served->scheduler, Scheduler::Create(served->translator, options));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const ModelConfig& config = served->translator->model().config;
    const CacheStats cache = served->translator->cache_stats();
    const ComputeTypeChoice& compute = served->translator->compute_type();
    LogInfo(absl::StrFormat(
        "model '%s' ready in %.2f s: %s, %d encoder + %d decoder layers, d_model %d, %d heads, "
        "%s; compute type %s%s; KV cache %.1f MiB, source cache %.1f MiB",
        spec.name, seconds, config.format, config.encoder_layers, config.decoder_layers,
        config.d_model, config.num_heads,
        served->translator->model().has_sentencepiece ? "SentencePiece" : "pre-tokenised",
        ComputeTypeName(compute.type),
        compute.note.empty() ? "" : absl::StrCat(" (", compute.note, ")"),
        static_cast<double>(cache.pool.total_blocks * cache.pool.block_bytes) / (1 << 20),
        static_cast<double>(cache.source_cache.max_bytes) / (1 << 20)));
    registry->models_.push_back(std::move(served));
  }
  return registry;
}

absl::StatusOr<ServedModel*> ModelRegistry::Find(absl::string_view name) const {
  if (name.empty()) return models_.front().get();
  for (const auto& model : models_) {
    if (model->name == name) return model.get();
  }
  std::vector<std::string> names;
  for (const auto& model : models_) names.push_back(model->name);
  return absl::NotFoundError(
      absl::StrCat("model '", name, "' is not served here; models: ", absl::StrJoin(names, ", ")));
}

v1::ListModelsResponse ModelRegistry::List() const {
  v1::ListModelsResponse response;
  for (const auto& served : models_) {
    const Model& model = served->translator->model();
    v1::ModelInfo* info = response.add_models();
    info->set_name(served->name);
    info->set_is_default(served == models_.front());
    info->set_format(model.config.format);
    info->set_encoder_layers(static_cast<uint32_t>(model.config.encoder_layers));
    info->set_decoder_layers(static_cast<uint32_t>(model.config.decoder_layers));
    info->set_d_model(static_cast<uint32_t>(model.config.d_model));
    info->set_num_heads(static_cast<uint32_t>(model.config.num_heads));
    info->set_source_vocabulary_size(static_cast<uint32_t>(model.source_vocabulary.size()));
    info->set_target_vocabulary_size(static_cast<uint32_t>(model.target_vocabulary.size()));
    info->set_sentencepiece(model.has_sentencepiece);
    info->set_compute_type(std::string(ComputeTypeName(served->translator->compute_type().type)));
    absl::StatusOr<SearchOptions> defaults = served->translator->ResolveOptions({});
    if (defaults.ok()) {
      info->set_default_beam_size(static_cast<uint32_t>(defaults->beam_size));
      v1::DecodingOptions longest;
      longest.set_max_decoding_length(1u << 30);
      absl::StatusOr<SearchOptions> limit = served->translator->ResolveOptions(longest);
      if (limit.ok())
        info->set_max_decoding_length(static_cast<uint32_t>(limit->max_decoding_length));
    }
  }
  return response;
}

}  // namespace kvmt
