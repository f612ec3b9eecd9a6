#include "tools/translate/line_reader.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/tools/temp_path.h"

namespace kvmt {
namespace {

std::vector<InputLine> ReadAll(const std::string& text, int64_t max_line_bytes,
                               size_t chunk_bytes) {
  std::istringstream in(text);
  LineReader reader(in, max_line_bytes, chunk_bytes);
  std::vector<InputLine> lines;
  InputLine line;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(line);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    lines.push_back(line);
  }
  EXPECT_EQ(reader.lines_read(), static_cast<int64_t>(lines.size()));
  return lines;
}

std::vector<std::string> Texts(const std::vector<InputLine>& lines) {
  std::vector<std::string> texts;
  for (const InputLine& line : lines) texts.push_back(line.text);
  return texts;
}

TEST(LineReaderTest, SplitsOnNewlinesWhateverTheChunkSize) {
  const std::string text = "first\n\nthird line\r\n\nlast without newline";
  const std::vector<std::string> expected = {"first", "", "third line\r", "",
                                             "last without newline"};
  for (size_t chunk : {1, 2, 3, 7, 64, 65536}) {
    const std::vector<InputLine> lines = ReadAll(text, 0, chunk);
    EXPECT_EQ(Texts(lines), expected) << "chunk " << chunk;
    for (size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i].number, static_cast<int64_t>(i + 1));
      EXPECT_EQ(lines[i].bytes, static_cast<int64_t>(expected[i].size()));
      EXPECT_FALSE(lines[i].over_limit);
    }
  }
}

TEST(LineReaderTest, AFinalNewlineAddsNoLine) {
  EXPECT_EQ(Texts(ReadAll("a\nb\n", 0, 3)), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ReadAll("", 0, 3).empty());
  EXPECT_EQ(Texts(ReadAll("\n", 0, 3)), (std::vector<std::string>{""}));
}

TEST(LineReaderTest, ALineOverTheLimitIsMeasuredNotKept) {
  const std::string long_line(100, 'x');
  for (size_t chunk : {1, 8, 1000}) {
    const std::vector<InputLine> lines = ReadAll("short\n" + long_line + "\nafter\n", 10, chunk);
    ASSERT_EQ(lines.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(lines[0].text, "short");
    EXPECT_TRUE(lines[1].over_limit);
    EXPECT_EQ(lines[1].bytes, 100);
    EXPECT_TRUE(lines[1].text.empty());
    EXPECT_EQ(lines[2].text, "after");
    EXPECT_FALSE(lines[2].over_limit);
  }
  // Exactly at the limit is fine.
  const std::vector<InputLine> at_limit = ReadAll(std::string(10, 'y') + "\n", 10, 4);
  ASSERT_EQ(at_limit.size(), 1u);
  EXPECT_FALSE(at_limit[0].over_limit);
}

TEST(LineReaderTest, SkipPassesLinesAndCountsThem) {
  std::istringstream in("1\n2\n\n4\n5");
  LineReader reader(in, 0, 2);
  absl::StatusOr<int64_t> skipped = reader.Skip(3);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 3);
  InputLine line;
  ASSERT_TRUE(*reader.Next(line));
  EXPECT_EQ(line.text, "4");
  EXPECT_EQ(line.number, 4);
  skipped = reader.Skip(10);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 1);  // Only "5" was left.
  EXPECT_FALSE(*reader.Next(line));
}

TEST(LineReaderTest, CountLinesCountsALastLineWithoutNewline) {
  const std::string path = TempPath("count.txt");
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << "a\n\nc";
  }
  absl::StatusOr<int64_t> count = CountLines(path);
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 3);
  EXPECT_EQ(CountLines(path + ".missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kvmt
