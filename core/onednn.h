// The process-wide oneDNN CPU engine, a per-thread stream (streams are not thread-safe;
// primitives are, so callers on any thread share them), and the mapping of kvmt's activations
// to oneDNN post-ops.
#pragma once

#include <optional>

#include "core/activation.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace kvmt {

dnnl::engine& CpuEngine();
dnnl::stream& ThreadStream();

// Attributes whose post-ops apply `activation` to a primitive's output (none when nullopt).
dnnl::primitive_attr ActivationAttr(std::optional<Activation> activation);

// Marks code that prepares or runs a oneDNN primitive. oneDNN allocates at every execute (its
// argument map, and work buffers on its OpenMP threads); the allocation-counting test uses this
// to tell those allocations from kvmt's own. Process-wide, because oneDNN's worker threads
// allocate on the caller's behalf.
class OneDnnCallScope {
 public:
  OneDnnCallScope();
  ~OneDnnCallScope();
  OneDnnCallScope(const OneDnnCallScope&) = delete;
  OneDnnCallScope& operator=(const OneDnnCallScope&) = delete;
  static bool active();
};

}  // namespace kvmt
