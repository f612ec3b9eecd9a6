// int8 and bfloat16 against float32 on the real trained model of ../shared/models: the int8
// CTranslate2 model run on its own int8 weights, the float32 model quantised at load, and the
// float32 model in bfloat16 all agree with the float32 model in float32 on >= 98% of the target
// tokens of 113 Arabic names and place names (tests/engine/arabic_names.txt, one character per
// token), and all give CTranslate2's published answers. The reference outputs come from the
// float32 path, whose own correctness the known-answer and PyTorch-reference tests establish.
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "translator/translator.h"

namespace kvmt {
namespace {

using Outputs = std::vector<std::vector<std::string>>;

std::shared_ptr<const Model> Load(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel(std::string(KVMT_SHARED_DIR) + "/models/" + name);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::shared_ptr<const Model>(*std::move(model)) : nullptr;
}

std::vector<std::string> Names() {
  std::ifstream in(std::string(KVMT_SOURCE_DIR) + "/tests/engine/arabic_names.txt");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

struct Translation {
  ComputeType type;
  Outputs outputs;
};

// Beam 4 over `lines` (space-separated tokens); the best hypothesis' tokens of each.
Translation Translate(std::shared_ptr<const Model> model, std::optional<ComputeType> compute_type,
                      const std::vector<std::string>& lines) {
  TranslatorOptions options;
  options.compute_type = compute_type;
  options.threads = 1;
  absl::StatusOr<std::unique_ptr<Translator>> translator = Translator::Create(model, options);
  EXPECT_TRUE(translator.ok()) << translator.status();
  if (!translator.ok()) return {};
  v1::TranslateRequest request;
  request.mutable_options()->set_beam_size(4);
  for (const std::string& line : lines) {
    v1::Segment* segment = request.add_segments();
    for (absl::string_view token : absl::StrSplit(line, ' ')) {
      segment->add_tokens(std::string(token));
    }
  }
  absl::StatusOr<v1::TranslateResponse> response = (*translator)->Translate(request);
  EXPECT_TRUE(response.ok()) << response.status();
  Translation run{(*translator)->compute_type().type, {}};
  if (!response.ok()) return run;
  for (const v1::SegmentResult& result : response->results()) {
    const auto& tokens = result.hypotheses(0).tokens();
    run.outputs.emplace_back(tokens.begin(), tokens.end());
  }
  return run;
}

// Share of target positions (over the longer of each pair) holding the same token.
double TokenAgreement(const Outputs& a, const Outputs& b) {
  int same = 0, total = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const size_t n = std::max(a[i].size(), b[i].size());
    for (size_t t = 0; t < n; ++t) {
      same += t < a[i].size() && t < b[i].size() && a[i][t] == b[i][t];
      ++total;
    }
  }
  return total > 0 ? static_cast<double>(same) / total : 0;
}

class ComputeTypeAgreementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    names_ = new std::vector<std::string>(Names());
    float32_model_ = new std::shared_ptr<const Model>(Load("ct2-v2-aren-transliteration"));
    int8_model_ = new std::shared_ptr<const Model>(Load("ct2-v2-aren-transliteration-i8"));
  }
  static void TearDownTestSuite() {
    delete names_;
    delete float32_model_;
    delete int8_model_;
  }
  static std::shared_ptr<const Model> Float32Model() { return *float32_model_; }
  static std::shared_ptr<const Model> Int8Model() { return *int8_model_; }

  void ExpectAgreement(const Translation& run, ComputeType expected_type) {
    if (expected_type == ComputeType::kBFloat16 && !CpuHasNativeBFloat16()) {
      GTEST_SKIP() << "no native bfloat16 on this CPU";
    }
    if (expected_type == ComputeType::kInt8 && !CpuHasInt8Dot()) {
      GTEST_SKIP() << "no VNNI/AMX on this CPU";
    }
    ASSERT_EQ(run.type, expected_type);
    const Translation reference = Translate(Float32Model(), ComputeType::kFloat32, *names_);
    ASSERT_EQ(reference.outputs.size(), names_->size());
    ASSERT_EQ(run.outputs.size(), names_->size());
    const double agreement = TokenAgreement(run.outputs, reference.outputs);
    std::printf("[ agreement ] %s: %.2f%% of target tokens equal to float32's\n",
                std::string(ComputeTypeName(run.type)).c_str(), 100 * agreement);
    EXPECT_GE(agreement, 0.98);
  }

  static std::vector<std::string>* names_;
  static std::shared_ptr<const Model>* float32_model_;
  static std::shared_ptr<const Model>* int8_model_;
};

std::vector<std::string>* ComputeTypeAgreementTest::names_ = nullptr;
std::shared_ptr<const Model>* ComputeTypeAgreementTest::float32_model_ = nullptr;
std::shared_ptr<const Model>* ComputeTypeAgreementTest::int8_model_ = nullptr;

TEST_F(ComputeTypeAgreementTest, Int8ModelRunsInt8ByDefaultAndAgreesWithFloat32) {
  ExpectAgreement(Translate(Int8Model(), std::nullopt, *names_), ComputeType::kInt8);
}

TEST_F(ComputeTypeAgreementTest, Float32ModelQuantisedAtLoadAgreesWithFloat32) {
  ExpectAgreement(Translate(Float32Model(), ComputeType::kInt8, *names_), ComputeType::kInt8);
}

TEST_F(ComputeTypeAgreementTest, BFloat16AgreesWithFloat32) {
  ExpectAgreement(Translate(Float32Model(), ComputeType::kBFloat16, *names_),
                  ComputeType::kBFloat16);
}

TEST_F(ComputeTypeAgreementTest, Float32ModelRunsFloat32ByDefault) {
  const Translation run = Translate(Float32Model(), std::nullopt, {"آ ز ا"});
  EXPECT_EQ(run.type, ComputeType::kFloat32);
}

TEST_F(ComputeTypeAgreementTest, EveryComputeTypeGivesThePublishedAnswers) {
  const std::vector<std::string> sources = {"آ ت ز م و ن", "آ ز ا"};
  const Outputs expected = {{"a", "t", "z", "m", "o", "n"}, {"a", "z", "z", "a"}};
  for (const auto& model : {Float32Model(), Int8Model()}) {
    for (ComputeType type : {ComputeType::kFloat32, ComputeType::kInt8, ComputeType::kBFloat16}) {
      const Translation run = Translate(model, type, sources);
      EXPECT_EQ(run.outputs, expected) << model->path << " " << ComputeTypeName(run.type);
    }
  }
}

}  // namespace
}  // namespace kvmt
