// Paths for the tool tests' files: in gtest's temporary folder, unique to the running test and
// process, since other checkouts may run the same test at the same time.
#pragma once

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kvmt {

inline std::string TempPath(const std::string& name) {
  const testing::TestInfo* test = testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(testing::TempDir(), "/", test->test_suite_name(), "_", getpid(), "_",
                      test->name(), "_", name);
}

}  // namespace kvmt
