// Test data shared by the matmul tests (scalar reference, AMX and VNNI
// decode paths): quantized weight matrices and activation rows that reach
// the awkward cases (outliers, all-zero blocks, integer extremes).
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/matmul.h"

#include <cstdint>
#include <random>
#include <vector>

namespace tandem::kernels::test_data {

struct QuantWeights {
  std::vector<uint8_t> bytes;  // N rows of row_bytes, plus 64 bytes of slack
  Matrix m;                    // views bytes
};

// Finite scale bits for raw-byte blocks: small positive or negative f16.
uint16_t random_f16_scale(std::mt19937& rng);

// N rows of K from random floats (Gaussian with a few 20x outliers), or -
// RAW - from random bytes with sane scale fields, which reaches the integer
// extremes quantizers avoid (q8 = -128, every nibble, 6-bit scales and mins
// of 63, Q6_K scales of -128). RAW supports Q8_0, Q4_0, Q4_K and Q6_K.
QuantWeights make_quant_weights(gguf::TensorType type, int64_t n, int64_t k, uint32_t seed, bool raw);

struct ActsOptions {
  bool small_blocks = false;  // one value in 7 scaled by 1e-3, so per-block scales differ widely
  bool unit_row = false;      // row 2 all +-1 (a block of equal magnitudes)
};

// M rows of STRIDE activations: Gaussian with 30x outliers and, from the
// second row, one all-zero block.
std::vector<float> make_acts(int64_t m, int64_t stride, uint32_t seed, ActsOptions options = {});

}  // namespace tandem::kernels::test_data
