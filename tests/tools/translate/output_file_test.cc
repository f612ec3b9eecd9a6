#include "tools/translate/output_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/tools/temp_path.h"

namespace kvmt {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
}

std::string Path(const std::string& name) {
  const std::string path = TempPath(name);
  std::filesystem::remove(path);
  std::filesystem::remove(OutputFile::PartialPath(path));
  return path;
}

TEST(OutputFileTest, WritesThePartialFileAndRenamesItOnCommit) {
  const std::string path = Path("commit.txt");
  WriteFile(path, "an older output\n");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Create(path);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ((*output)->name(), path + ".partial");
  ASSERT_TRUE((*output)->Append("a\nb\n").ok());
  EXPECT_EQ(ReadFile(path + ".partial"), "a\nb\n");
  EXPECT_EQ(ReadFile(path), "an older output\n");  // Untouched until the run is complete.
  ASSERT_TRUE((*output)->Commit().ok());
  EXPECT_EQ(ReadFile(path), "a\nb\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(OutputFileTest, ResumeKeepsTheCompleteLinesAndCutsATornOne) {
  const std::string path = Path("torn.txt");
  WriteFile(path + ".partial", "one\n\nthree\nfour, half wri");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Resume(path);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ((*output)->resumed_lines(), 3);
  EXPECT_EQ((*output)->dropped_bytes(), 14);
  EXPECT_EQ(ReadFile(path + ".partial"), "one\n\nthree\n");
  ASSERT_TRUE((*output)->Append("four\n").ok());
  ASSERT_TRUE((*output)->Commit().ok());
  EXPECT_EQ(ReadFile(path), "one\n\nthree\nfour\n");
}

TEST(OutputFileTest, ResumeOfACleanPartialFileDropsNothing) {
  const std::string path = Path("clean.txt");
  WriteFile(path + ".partial", "x\ny\n");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Resume(path);
  ASSERT_TRUE(output.ok());
  EXPECT_EQ((*output)->resumed_lines(), 2);
  EXPECT_EQ((*output)->dropped_bytes(), 0);
  EXPECT_EQ(ReadFile(path + ".partial"), "x\ny\n");
}

TEST(OutputFileTest, ResumeWithoutAPartialFileStartsAfresh) {
  const std::string path = Path("fresh.txt");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Resume(path);
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ((*output)->resumed_lines(), 0);
  EXPECT_TRUE(std::filesystem::exists(path + ".partial"));
}

TEST(OutputFileTest, ACreateFailureNamesThePath) {
  absl::StatusOr<std::unique_ptr<OutputFile>> output =
      OutputFile::Create(TempPath("no/such/dir/out.txt"));
  ASSERT_FALSE(output.ok());
  EXPECT_NE(output.status().message().find("no/such/dir/out.txt.partial"), std::string::npos)
      << output.status();
}

}  // namespace
}  // namespace kvmt
