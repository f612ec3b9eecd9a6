#include "tools/translate/ordered_writer.h"

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

TEST(OrderedWriterTest, WritesLinesInOrderAsSoonAsTheirPredecessorsAreDone) {
  const std::string path = TempPath("output.txt");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Create(path);
  ASSERT_TRUE(output.ok()) << output.status();
  const std::string partial = (*output)->name();
  OrderedWriter writer(**output, 1);

  writer.Put(3, "three");
  writer.Put(2, "two");
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(ReadFile(partial), "");  // Line 1 is missing: nothing can be written.
  EXPECT_EQ(writer.waiting(), 2u);

  writer.Put(1, "one");
  writer.Put(5, "five");
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(ReadFile(partial), "one\ntwo\nthree\n");
  EXPECT_EQ(writer.next_line(), 4);
  EXPECT_EQ(writer.waiting(), 1u);

  writer.Put(4, "");
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(ReadFile(partial), "one\ntwo\nthree\n\nfive\n");
  EXPECT_EQ(writer.next_line(), 6);
}

TEST(OrderedWriterTest, StartsAfterTheResumedLines) {
  const std::string path = TempPath("output.txt");
  absl::StatusOr<std::unique_ptr<OutputFile>> output = OutputFile::Create(path);
  ASSERT_TRUE(output.ok());
  OrderedWriter writer(**output, 11);
  writer.Put(12, "b");
  writer.Put(11, "a");
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(ReadFile((*output)->name()), "a\nb\n");
}

}  // namespace
}  // namespace kvmt
