// Sinusoidal position tables, [max_positions, d_model], row p for position p (from 0).
// Both flavours put the sines in the first half of a row and the cosines in the second; they
// differ in the frequencies.
#pragma once

#include "core/tensor.h"

namespace kvmt {

// CTranslate2 / OpenNMT: inv_freq_i = exp(-i * ln(10000) / (d/2 - 1)), i in [0, d/2).
Tensor OpenNmtSinusoidalPositions(int max_positions, int d_model);

// HuggingFace Marian: inv_freq_i = 10000^(-2i / d), i in [0, d/2).
Tensor MarianSinusoidalPositions(int max_positions, int d_model);

}  // namespace kvmt
