// Core ops against naive double-precision computations written here, independently.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/activation.h"
#include "core/attention.h"
#include "core/ops.h"
#include "core/vectorize.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

Tensor RandomTensor(std::vector<int64_t> shape, unsigned seed) {
  Tensor t(std::move(shape));
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = normal(generator);
  return t;
}

TEST(LayerNormTest, MatchesNaive) {
  const int rows = 3, d = 10;
  Tensor x = RandomTensor({rows, d}, 6);
  Tensor gamma = RandomTensor({d}, 7);
  Tensor beta = RandomTensor({d}, 8);
  std::vector<float> y(rows * d);
  LayerNorm(x.data(), rows, d, gamma, beta, 1e-5f, y.data());
  for (int r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x.data()[r * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += std::pow(x.data()[r * d + i] - mean, 2);
    var /= d;
    for (int i = 0; i < d; ++i) {
      const double expected =
          (x.data()[r * d + i] - mean) / std::sqrt(var + 1e-5) * gamma.data()[i] + beta.data()[i];
      EXPECT_NEAR(y[r * d + i], expected, 1e-5);
    }
  }
}

TEST(LogSoftmaxTest, NormalisesAndKeepsDifferences) {
  std::vector<float> x = {1.0f, 2.0f, -3.0f, 1000.0f};
  std::vector<float> y(4);
  LogSoftmax(x.data(), 4, y.data());
  double total = 0;
  for (float v : y) total += std::exp(double{v});
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_NEAR(y[1] - y[0], 1.0, 1e-4);
  EXPECT_NEAR(y[3], 0.0, 1e-6);
}

TEST(ExpApproxTest, MatchesExpAndPassesNanAndInfinitiesThrough) {
  for (float x : {-100.0f, -87.5f, -10.0f, -1.0f, 0.0f, 0.5f, 3.0f, 80.0f}) {
    EXPECT_NEAR(ExpApprox(x), std::exp(x), 1e-6f * std::exp(x) + 1e-30f) << x;
  }
  // A model with NaN weights gives NaN logits: no undefined conversion, NaN out.
  EXPECT_TRUE(std::isnan(ExpApprox(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(ExpApprox(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isfinite(ExpApprox(std::numeric_limits<float>::infinity())));
}

TEST(ActivationTest, MatchesFormulas) {
  const std::vector<float> inputs = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f};
  for (float v : inputs) {
    float relu = v, gelu = v, gelu_tanh = v, swish = v;
    ApplyActivation(Activation::kRelu, &relu, 1);
    ApplyActivation(Activation::kGelu, &gelu, 1);
    ApplyActivation(Activation::kGeluTanh, &gelu_tanh, 1);
    ApplyActivation(Activation::kSwish, &swish, 1);
    EXPECT_FLOAT_EQ(relu, v > 0 ? v : 0);
    EXPECT_NEAR(gelu, 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))), 1e-6);
    EXPECT_NEAR(gelu_tanh,
                0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
    EXPECT_NEAR(swish, v / (1 + std::exp(-double{v})), 1e-6);
  }
}

// Naive attention of one query over n rows, all heads, in double.
std::vector<double> NaiveAttention(const float* q, const float* k, const float* v, int n, int heads,
                                   int hd) {
  const int d = heads * hd;
  std::vector<double> out(d, 0.0);
  for (int h = 0; h < heads; ++h) {
    std::vector<double> s(n);
    double max_s = -1e300;
    for (int r = 0; r < n; ++r) {
      s[r] = 0;
      for (int i = 0; i < hd; ++i) s[r] += double{q[h * hd + i]} * k[r * d + h * hd + i];
      s[r] /= std::sqrt(double(hd));
      max_s = std::max(max_s, s[r]);
    }
    double z = 0;
    for (double& e : s) z += (e = std::exp(e - max_s));
    for (int r = 0; r < n; ++r) {
      for (int i = 0; i < hd; ++i) out[h * hd + i] += s[r] / z * v[r * d + h * hd + i];
    }
  }
  return out;
}

TEST(AttentionTest, SplitRunsEqualNaive) {
  const int heads = 3, hd = 5, d = heads * hd, n = 11;
  Tensor q = RandomTensor({d}, 9);
  Tensor k = RandomTensor({n, d}, 10);
  Tensor v = RandomTensor({n, d}, 11);
  // Blocks of 4, 4 and 3 rows, as a KV cache stores them.
  std::vector<KeyValueRows> runs = {{k.data(), v.data(), 4, d},
                                    {k.data() + 4 * d, v.data() + 4 * d, 4, d},
                                    {k.data() + 8 * d, v.data() + 8 * d, 3, d}};
  std::vector<float> scores(n), out(d);
  AttendQuery(q.data(), runs, AttentionShape{heads, hd}, scores.data(), out.data());
  const std::vector<double> expected = NaiveAttention(q.data(), k.data(), v.data(), n, heads, hd);
  for (int i = 0; i < d; ++i) EXPECT_NEAR(out[i], expected[i], 1e-5);
}

TEST(AttentionTest, SequenceAttentionMasksPaddingAndFuture) {
  const int heads = 2, hd = 4, d = heads * hd, batch = 2, rows = 5;
  Tensor q = RandomTensor({batch * rows, d}, 12);
  Tensor k = RandomTensor({batch * rows, d}, 13);
  Tensor v = RandomTensor({batch * rows, d}, 14);
  const std::vector<int32_t> lengths = {5, 3};
  for (bool causal : {false, true}) {
    std::vector<float> out(batch * rows * d);
    SequenceAttention(q.data(), d, k.data(), v.data(), d, batch, rows, rows, lengths, causal,
                      AttentionShape{heads, hd}, out.data(), d);
    for (int b = 0; b < batch; ++b) {
      for (int t = 0; t < lengths[b]; ++t) {
        const int n = causal ? std::min(lengths[b], t + 1) : lengths[b];
        const auto expected = NaiveAttention(q.data() + (b * rows + t) * d, k.data() + b * rows * d,
                                             v.data() + b * rows * d, n, heads, hd);
        for (int i = 0; i < d; ++i) {
          EXPECT_NEAR(out[(b * rows + t) * d + i], expected[i], 1e-5) << causal << b << t;
        }
      }
    }
  }
}

TEST(AttentionTest, PackedSequencesAttendWithinThemselves) {
  const int heads = 2, hd = 4, d = heads * hd;
  const std::vector<int64_t> offsets = {0, 5, 6, 9};  // Lengths 5, 1 and 3, no padding.
  Tensor q = RandomTensor({9, d}, 15);
  Tensor k = RandomTensor({9, d}, 16);
  Tensor v = RandomTensor({9, d}, 17);
  std::vector<float> out(9 * d);
  PackedSequenceAttention(q.data(), d, k.data(), v.data(), d, offsets, AttentionShape{heads, hd},
                          out.data(), d);
  for (size_t b = 0; b + 1 < offsets.size(); ++b) {
    const int first = static_cast<int>(offsets[b]);
    const int n = static_cast<int>(offsets[b + 1] - offsets[b]);
    for (int row = first; row < first + n; ++row) {
      const auto expected = NaiveAttention(q.data() + row * d, k.data() + first * d,
                                           v.data() + first * d, n, heads, hd);
      for (int i = 0; i < d; ++i) EXPECT_NEAR(out[row * d + i], expected[i], 1e-5) << row;
    }
  }
}

}  // namespace
}  // namespace kvmt
