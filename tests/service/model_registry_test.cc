// ModelRegistry: --model values, and loading failures that name the model.
#include "service/model_registry.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/metrics.h"

namespace kvmt {
namespace {

using ::testing::HasSubstr;

TEST(ModelRegistryTest, ParsesDirOrNameEqualsDir) {
  absl::StatusOr<ModelSpec> plain = ModelRegistry::ParseSpec("/models/en-de/");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "en-de");
  EXPECT_EQ(plain->dir, "/models/en-de/");
  absl::StatusOr<ModelSpec> named = ModelRegistry::ParseSpec("de=/models/a=b");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->name, "de");
  EXPECT_EQ(named->dir, "/models/a=b");
  absl::StatusOr<ModelSpec> equals_in_path = ModelRegistry::ParseSpec("/models/a=b");
  ASSERT_TRUE(equals_in_path.ok());
  EXPECT_EQ(equals_in_path->name, "a=b");
  EXPECT_FALSE(ModelRegistry::ParseSpec("=dir").ok());
  EXPECT_FALSE(ModelRegistry::ParseSpec("name=").ok());
}

TEST(ModelRegistryTest, RefusesDuplicateNamesAndNamesTheModelThatFailsToLoad) {
  Metrics metrics;
  const std::string dir = KVMT_SHARED_DIR "/models/ct2-v2-aren-transliteration";
  auto duplicate = ModelRegistry::Load({{"a", dir}, {"a", dir}}, {}, {}, metrics);
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(duplicate.status().message(), HasSubstr("two models are called 'a'"));
  auto missing = ModelRegistry::Load({{"gone", "/nonexistent/model"}}, {}, {}, metrics);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot load the model 'gone'"));

  auto loaded = ModelRegistry::Load({{"a", dir}}, {}, {}, metrics);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->Find("").ok());
  EXPECT_EQ((*loaded)->Find("b").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvmt
