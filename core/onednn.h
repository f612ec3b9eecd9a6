// The process-wide oneDNN CPU engine and a per-thread stream (streams are not thread-safe;
// primitives are, so callers on any thread share them).
#pragma once

#include "oneapi/dnnl/dnnl.hpp"

namespace kvmt {

dnnl::engine& CpuEngine();
dnnl::stream& ThreadStream();

}  // namespace kvmt
