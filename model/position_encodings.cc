#include "model/position_encodings.h"

#include <cmath>

namespace kvmt {
namespace {

template <typename InverseFrequency>
Tensor SinCosTable(int max_positions, int d_model, InverseFrequency inverse_frequency) {
  Tensor table({max_positions, d_model});
  const int half = d_model / 2;
  for (int p = 0; p < max_positions; ++p) {
    float* row = table.data() + static_cast<int64_t>(p) * d_model;
    for (int i = 0; i < half; ++i) {
      const double angle = p * inverse_frequency(i);
      row[i] = static_cast<float>(std::sin(angle));
      row[half + i] = static_cast<float>(std::cos(angle));
    }
    if (d_model % 2 == 1) row[d_model - 1] = 0.0f;
  }
  return table;
}

}  // namespace

Tensor OpenNmtSinusoidalPositions(int max_positions, int d_model) {
  const double increment = std::log(10000.0) / std::max(1, d_model / 2 - 1);
  return SinCosTable(max_positions, d_model,
                     [increment](int i) { return std::exp(-i * increment); });
}

Tensor MarianSinusoidalPositions(int max_positions, int d_model) {
  return SinCosTable(max_positions, d_model, [d_model](int i) {
    return std::pow(10000.0, -2.0 * i / static_cast<double>(d_model));
  });
}

}  // namespace kvmt
