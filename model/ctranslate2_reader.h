// Reads a CTranslate2 model directory: model.bin (binary versions 1 to 6), config.json when
// present, and the vocabularies ({source,target,shared}_vocabulary.{txt,json}).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace kvmt {

absl::StatusOr<std::unique_ptr<Model>> LoadCTranslate2Model(const std::string& dir);

}  // namespace kvmt
