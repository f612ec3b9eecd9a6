// Linear in every compute type against naive double-precision products written here. float32
// must match to rounding; bfloat16 and int8 must stay within the worst-case error their
// rounding of inputs and weights allows (bounds derived per element below), and int8 must also
// equal, to float rounding, an integer simulation of the quantisation scheme it documents.
#include "core/linear.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/compute_type.h"
#include "gtest/gtest.h"

namespace kvmt {
namespace {

Tensor RandomTensor(std::vector<int64_t> shape, unsigned seed, float stddev = 1.0f) {
  Tensor t(std::move(shape));
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = normal(generator);
  return t;
}

double NaiveActivation(Activation activation, double v) {
  switch (activation) {
    case Activation::kRelu:
      return v > 0 ? v : 0;
    case Activation::kGelu:
      return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Activation::kGeluTanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case Activation::kSwish:
      return v / (1 + std::exp(-v));
  }
  return v;
}

// Largest |f'| of the activations over the reals (gelu's slope peaks near 1.13 and swish's
// near 1.1): an input error e moves the output by at most this times e.
constexpr double kMaxActivationSlope = 1.2;

std::unique_ptr<Linear> Make(const LinearParameters& parameters, ComputeType type) {
  absl::StatusOr<std::unique_ptr<Linear>> linear = MakeLinear(parameters, type);
  EXPECT_TRUE(linear.ok()) << linear.status();
  return linear.ok() ? *std::move(linear) : nullptr;
}

struct Case {
  int m;
  int k;
  int n;
  bool bias;
  std::optional<Activation> activation;
};

class LinearTest : public ::testing::TestWithParam<std::tuple<ComputeType, Case>> {
 protected:
  void SetUp() override {
    if (std::get<0>(GetParam()) == ComputeType::kBFloat16 && !CpuHasNativeBFloat16()) {
      GTEST_SKIP() << "no native bfloat16 on this CPU (" << CpuIsaName() << ")";
    }
    if (std::get<0>(GetParam()) == ComputeType::kInt8 && !CpuHasInt8Dot()) {
      GTEST_SKIP() << "no VNNI/AMX on this CPU (" << CpuIsaName() << ")";
    }
  }
};

TEST_P(LinearTest, WithinTheErrorBoundOfItsArithmetic) {
  const auto [type, c] = GetParam();
  const Tensor x = RandomTensor({c.m, c.k}, 1);
  const Tensor w = RandomTensor({c.n, c.k}, 2, 1.0f / std::sqrt(static_cast<float>(c.k)));
  const Tensor b = c.bias ? RandomTensor({c.n}, 3) : Tensor();
  std::unique_ptr<Linear> linear = Make(LinearParameters{w, {}, b, c.activation}, type);
  ASSERT_NE(linear, nullptr);
  EXPECT_EQ(linear->compute_type(), type);
  EXPECT_EQ(linear->in_features(), c.k);
  EXPECT_EQ(linear->out_features(), c.n);
  std::vector<float> y(static_cast<size_t>(c.m) * c.n);
  linear->Forward(x.data(), c.m, y.data());

  double worst_ratio = 0;
  for (int i = 0; i < c.m; ++i) {
    const float* xi = x.data() + i * c.k;
    double x_max = 0;
    for (int p = 0; p < c.k; ++p) x_max = std::max(x_max, std::fabs(double{xi[p]}));
    for (int j = 0; j < c.n; ++j) {
      const float* wj = w.data() + j * c.k;
      double w_max = 0, exact = c.bias ? b.data()[j] : 0.0, abs_sum = 0, x_abs = 0, w_abs = 0;
      for (int p = 0; p < c.k; ++p) w_max = std::max(w_max, std::fabs(double{wj[p]}));
      for (int p = 0; p < c.k; ++p) {
        exact += double{xi[p]} * wj[p];
        abs_sum += std::fabs(double{xi[p]} * wj[p]);
        x_abs += std::fabs(double{xi[p]});
        w_abs += std::fabs(double{wj[p]});
      }
      // float32 accumulation of k products: k * 2^-24 relative to the sum of magnitudes.
      double bound = (c.k + 2) * std::ldexp(1.0, -24) * (abs_sum + std::fabs(exact)) + 1e-6;
      if (type == ComputeType::kBFloat16) {
        // Both factors rounded to 8 significant bits: each product off by <= 2^-8 of itself.
        bound += (std::ldexp(1.0, -8) + std::ldexp(1.0, -18)) * abs_sum;
      } else if (type == ComputeType::kInt8) {
        // x off by <= half its row step x_max/127, w by <= half its row step w_max/127.
        const double sx = x_max / 127, sw = w_max / 127;
        bound += 0.5 * sw * x_abs + 0.5 * sx * w_abs + 0.25 * sx * sw * c.k;
      }
      double expected = exact;
      if (c.activation.has_value()) {
        expected = NaiveActivation(*c.activation, exact);
        bound = bound * kMaxActivationSlope + 1e-6;
      }
      const double error = std::fabs(y[i * c.n + j] - expected);
      worst_ratio = std::max(worst_ratio, error / bound);
      ASSERT_LE(error, bound) << ComputeTypeName(type) << " row " << i << " column " << j
                              << ": got " << y[i * c.n + j] << ", expected " << expected;
    }
  }
  // The bound is not vacuous: the quantised types use a good part of it.
  if (type != ComputeType::kFloat32) {
    EXPECT_GT(worst_ratio, 0.01);
  }
}

TEST_P(LinearTest, RowsDoNotDependOnTheRowCount) {
  const auto [type, c] = GetParam();
  const Tensor x = RandomTensor({c.m, c.k}, 4);
  const Tensor w = RandomTensor({c.n, c.k}, 5);
  const Tensor b = c.bias ? RandomTensor({c.n}, 6) : Tensor();
  std::unique_ptr<Linear> linear = Make(LinearParameters{w, {}, b, c.activation}, type);
  ASSERT_NE(linear, nullptr);
  std::vector<float> all(static_cast<size_t>(c.m) * c.n), one(c.n);
  linear->Forward(x.data(), c.m, all.data());
  for (int i : {0, c.m - 1}) {
    linear->Forward(x.data() + i * c.k, 1, one.data());
    for (int j = 0; j < c.n; ++j) {
      EXPECT_NEAR(all[i * c.n + j], one[j], 1e-5 * (1 + std::fabs(one[j]))) << i << "," << j;
    }
  }
}

std::string CaseName(const ::testing::TestParamInfo<std::tuple<ComputeType, Case>>& info) {
  const auto& [type, c] = info.param;
  return std::string(ComputeTypeName(type)) + "_m" + std::to_string(c.m) + "_k" +
         std::to_string(c.k) + "_n" + std::to_string(c.n) + (c.bias ? "_bias" : "") +
         (c.activation.has_value() ? "_act" + std::to_string(static_cast<int>(*c.activation)) : "");
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearTest,
    ::testing::Combine(
        ::testing::Values(ComputeType::kFloat32, ComputeType::kInt8, ComputeType::kBFloat16),
        ::testing::Values(Case{1, 16, 48, true, std::nullopt}, Case{7, 33, 5, false, std::nullopt},
                          Case{64, 32, 128, true, Activation::kRelu},
                          Case{3, 128, 32, true, Activation::kSwish},
                          Case{5, 64, 40, true, Activation::kGelu},
                          Case{4, 64, 40, false, Activation::kGeluTanh},
                          // More rows than one primitive takes: chunked.
                          Case{300, 64, 24, true, std::nullopt},
                          // Wider than two column blocks of the int8 layer.
                          Case{3, 32, 5000, true, Activation::kRelu})),
    CaseName);

// The documented int8 scheme, simulated with integers: weights per output row, activations per
// input row, symmetric, round to nearest even; dequantised by both scales.
TEST(Int8LinearTest, EqualsAnIntegerSimulationOfTheScheme) {
  if (!CpuHasInt8Dot()) GTEST_SKIP() << "no VNNI/AMX on this CPU";
  const int m = 9, k = 200, n = 70;
  const Tensor x = RandomTensor({m, k}, 7, 3.0f);
  const Tensor w = RandomTensor({n, k}, 8, 0.05f);
  const Tensor b = RandomTensor({n}, 9);
  std::unique_ptr<Linear> linear =
      Make(LinearParameters{w, {}, b, std::nullopt}, ComputeType::kInt8);
  ASSERT_NE(linear, nullptr);
  std::vector<float> y(m * n);
  linear->Forward(x.data(), m, y.data());
  auto quantise = [](const float* row, int size, std::vector<int>& q) {
    float max_abs = 0;
    for (int p = 0; p < size; ++p) max_abs = std::max(max_abs, std::fabs(row[p]));
    const float scale = 127.0f / max_abs;
    q.resize(size);
    for (int p = 0; p < size; ++p) q[p] = static_cast<int>(std::nearbyint(row[p] * scale));
    return scale;
  };
  std::vector<int> qx, qw;
  for (int i = 0; i < m; ++i) {
    const float sx = quantise(x.data() + i * k, k, qx);
    for (int j = 0; j < n; ++j) {
      const float sw = quantise(w.data() + j * k, k, qw);
      int64_t dot = 0;
      for (int p = 0; p < k; ++p) dot += int64_t{qx[p]} * qw[p];
      const double expected = static_cast<double>(dot) / (double{sx} * sw) + b.data()[j];
      ASSERT_NEAR(y[i * n + j], expected, 1e-5 * (1 + std::fabs(expected))) << i << "," << j;
    }
  }
}

TEST(Int8LinearTest, StoredInt8WeightsEqualQuantisingAtLoad) {
  if (!CpuHasInt8Dot()) GTEST_SKIP() << "no VNNI/AMX on this CPU";
  const Tensor x = RandomTensor({6, 48}, 10);
  const Tensor w = RandomTensor({20, 48}, 11);
  const QuantizedMatrix stored = QuantizedMatrix::Quantize(w);
  std::unique_ptr<Linear> from_float =
      Make(LinearParameters{w, {}, Tensor(), std::nullopt}, ComputeType::kInt8);
  std::unique_ptr<Linear> from_int8 =
      Make(LinearParameters{Tensor(), stored, Tensor(), std::nullopt}, ComputeType::kInt8);
  ASSERT_NE(from_float, nullptr);
  ASSERT_NE(from_int8, nullptr);
  std::vector<float> a(6 * 20), b(6 * 20);
  from_float->Forward(x.data(), 6, a.data());
  from_int8->Forward(x.data(), 6, b.data());
  EXPECT_EQ(a, b);
}

TEST(QuantizedMatrixTest, RoundTripWithinHalfAStep) {
  const Tensor w = RandomTensor({5, 30}, 12);
  const QuantizedMatrix q = QuantizedMatrix::Quantize(w);
  const Tensor back = q.Dequantize();
  for (int r = 0; r < 5; ++r) {
    float max_abs = 0;
    for (int j = 0; j < 30; ++j) max_abs = std::max(max_abs, std::fabs(w.data()[r * 30 + j]));
    EXPECT_FLOAT_EQ(q.scales()[r], 127.0f / max_abs);
    int extreme = 0;
    for (int j = 0; j < 30; ++j) {
      EXPECT_LE(std::fabs(back.data()[r * 30 + j] - w.data()[r * 30 + j]),
                0.5f * max_abs / 127 * (1 + 1e-5f));
      extreme = std::max(extreme, std::abs(int{q.data()[r * 30 + j]}));
    }
    EXPECT_EQ(extreme, 127);  // The largest magnitude maps to the end of the range.
  }
}

TEST(LinearTest, RejectsBothOrNeitherWeight) {
  const Tensor w = RandomTensor({4, 4}, 13);
  EXPECT_FALSE(MakeLinear(LinearParameters{}, ComputeType::kFloat32).ok());
  EXPECT_FALSE(MakeLinear(LinearParameters{w, QuantizedMatrix::Quantize(w), Tensor(), std::nullopt},
                          ComputeType::kFloat32)
                   .ok());
  EXPECT_FALSE(MakeLinear(LinearParameters{w, {}, RandomTensor({3}, 14), std::nullopt},
                          ComputeType::kFloat32)
                   .ok());
}

}  // namespace
}  // namespace kvmt
