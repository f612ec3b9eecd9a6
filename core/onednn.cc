#include "core/onednn.h"

#include <atomic>

namespace kvmt {

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream(CpuEngine());
  return stream;
}

namespace {
std::atomic<int> one_dnn_call_depth{0};
}  // namespace

OneDnnCallScope::OneDnnCallScope() { ++one_dnn_call_depth; }
OneDnnCallScope::~OneDnnCallScope() { --one_dnn_call_depth; }
bool OneDnnCallScope::active() { return one_dnn_call_depth > 0; }

}  // namespace kvmt
