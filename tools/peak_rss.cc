#include "tools/peak_rss.h"

#include <sys/resource.h>

namespace kvmt {

int64_t PeakRssBytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  // Linux reports ru_maxrss in KiB.
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace kvmt
