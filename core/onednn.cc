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

dnnl::primitive_attr ActivationAttr(std::optional<Activation> activation) {
  dnnl::primitive_attr attr;
  if (!activation.has_value()) return attr;
  dnnl::algorithm algorithm = dnnl::algorithm::eltwise_relu;
  float alpha = 0.0f;
  switch (*activation) {
    case Activation::kRelu:
      break;
    case Activation::kGelu:
      algorithm = dnnl::algorithm::eltwise_gelu_erf;
      break;
    case Activation::kGeluTanh:
      algorithm = dnnl::algorithm::eltwise_gelu_tanh;
      break;
    case Activation::kSwish:
      algorithm = dnnl::algorithm::eltwise_swish;
      alpha = 1.0f;  // x * sigmoid(alpha * x).
      break;
  }
  dnnl::post_ops post_ops;
  post_ops.append_eltwise(1.0f, algorithm, alpha, 0.0f);
  attr.set_post_ops(post_ops);
  return attr;
}

namespace {
std::atomic<int> one_dnn_call_depth{0};
}  // namespace

OneDnnCallScope::OneDnnCallScope() { ++one_dnn_call_depth; }
OneDnnCallScope::~OneDnnCallScope() { --one_dnn_call_depth; }
bool OneDnnCallScope::active() { return one_dnn_call_depth > 0; }

}  // namespace kvmt
