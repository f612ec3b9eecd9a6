// ModelRegistry: the models a server serves, by name, each a Translator with its Scheduler
// (its own decoding thread). The first model is the default one, used when a request names none.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kvmt/v1/translation.pb.h"
#include "translator/scheduler.h"
#include "translator/translator.h"

namespace kvmt {

class Metrics;

struct ModelSpec {
  std::string name;
  std::string dir;
};

struct ServedModel {
  std::string name;
  std::string dir;
  std::shared_ptr<const Translator> translator;
  std::unique_ptr<Scheduler> scheduler;
};

class ModelRegistry {
 public:
  // "DIR" (named after the directory's last part) or "NAME=DIR".
  static absl::StatusOr<ModelSpec> ParseSpec(absl::string_view flag);

  // Loads every model, logging a line per model; names must be unique. Each scheduler reports
  // its batch sizes to `metrics`.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Load(const std::vector<ModelSpec>& specs,
                                                             const TranslatorOptions& engine,
                                                             const SchedulerOptions& scheduling,
                                                             Metrics& metrics);

  // The model called `name`, or the default one for an empty name; NOT_FOUND naming the models
  // served otherwise.
  absl::StatusOr<ServedModel*> Find(absl::string_view name) const;
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  v1::ListModelsResponse List() const;

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;
};

}  // namespace kvmt
