// BearerToken: reading the token file and checking the authorization metadata.
#include "service/bearer_token.h"

#include <fstream>

#include "gtest/gtest.h"

namespace kvmt {
namespace {

TEST(BearerTokenTest, ConstantTimeEqualsIsEquality) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("ab\0", 3), "ab"));
}

TEST(BearerTokenTest, ChecksTheSchemeAndTheToken) {
  const BearerToken token("t0ken");
  EXPECT_TRUE(token.Check("Bearer t0ken").ok());
  EXPECT_TRUE(token.Check("bearer t0ken").ok());  // The scheme is case-insensitive (RFC 7235).
  EXPECT_EQ(token.Check(std::nullopt).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(token.Check("t0ken").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(token.Check("Bearer t0ke").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(token.Check("Bearer  t0ken").code(), absl::StatusCode::kUnauthenticated);
}

TEST(BearerTokenTest, ReadsTheFileWithoutSurroundingWhitespace) {
  const std::string path = testing::TempDir() + "/bearer_token_test_token";
  std::ofstream(path) << "  abc def\n\n";
  absl::StatusOr<BearerToken> token = BearerToken::FromFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_TRUE(token->Check("Bearer abc def").ok());

  std::ofstream(path, std::ios::trunc) << " \n";
  EXPECT_EQ(BearerToken::FromFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BearerToken::FromFile(path + ".missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvmt
