// Peak resident memory of this process, for the tools' end-of-run summaries.
#pragma once

#include <cstdint>

namespace kvmt {

// The high-water mark of resident memory so far (getrusage's ru_maxrss), in bytes; 0 when the
// system does not say.
int64_t PeakRssBytes();

}  // namespace kvmt
