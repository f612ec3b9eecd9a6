#include "tools/translate/progress.h"

#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace kvmt {
namespace {

TEST(ProgressLineTest, WithAKnownTotal) {
  ProgressFigures figures;
  figures.lines_done = 1500;  // 500 of them from a resumed run.
  figures.total_lines = 10000;
  figures.lines_this_run = 1000;
  figures.segments = 1000;
  figures.target_tokens = 25000;
  figures.seconds = 10;
  // 8500 lines left at 100 lines/s: 85 s.
  EXPECT_EQ(ProgressLine(figures),
            "1500/10000 lines (15.0%), 100 segments/s, 2500 target tokens/s, ETA 1:25");
  figures.seconds = 0;
  EXPECT_EQ(ProgressLine(figures),
            "1500/10000 lines (15.0%), 0 segments/s, 0 target tokens/s, ETA -");
  figures.lines_this_run = 1;
  figures.seconds = 1;
  EXPECT_NE(ProgressLine(figures).find("ETA 2:21:40"), std::string::npos) << ProgressLine(figures);
  figures.lines_done = 10000;
  EXPECT_NE(ProgressLine(figures).find("(100.0%)"), std::string::npos);
  EXPECT_NE(ProgressLine(figures).find("ETA 0:00"), std::string::npos);
}

TEST(ProgressLineTest, WithoutATotalNoPercentageAndNoEta) {
  ProgressFigures figures;
  figures.lines_done = 42;
  figures.lines_this_run = 42;
  figures.segments = 50;
  figures.target_tokens = 500;
  figures.seconds = 2;
  EXPECT_EQ(ProgressLine(figures), "42 lines, 25 segments/s, 250 target tokens/s");
}

TEST(ProgressTest, WithoutTheBarOnlyMessagesArePrinted) {
  std::ostringstream out;
  Progress progress(out, false, [] { return 0.0; });
  progress.Update(ProgressFigures{});
  progress.Message("a message");
  progress.Finish();
  EXPECT_EQ(out.str(), "a message\n");
}

TEST(ProgressTest, TheBarIsRedrawnAtMostEveryFifthOfASecond) {
  std::ostringstream out;
  double now = 100;
  Progress progress(out, true, [&now] { return now; });
  ProgressFigures figures;
  figures.lines_done = 1;
  progress.Update(figures);
  figures.lines_done = 2;
  now += 0.1;
  progress.Update(figures);  // Too soon.
  figures.lines_done = 3;
  now += 0.15;
  progress.Update(figures);
  const std::string erase = "\r\033[K";
  EXPECT_EQ(out.str(),
            erase + ProgressLine({.lines_done = 1}) + erase + ProgressLine({.lines_done = 3}));

  out.str("");
  progress.Message("bad line");  // Above the bar, which comes back.
  EXPECT_EQ(out.str(), erase + "bad line\n" + erase + ProgressLine({.lines_done = 3}));
  out.str("");
  progress.Finish();
  EXPECT_EQ(out.str(), erase);
}

}  // namespace
}  // namespace kvmt
