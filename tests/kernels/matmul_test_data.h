// Test data shared by the matmul tests (scalar reference, AMX and VNNI
// decode paths): quantized weight matrices and activation rows that reach
// the awkward cases (outliers, all-zero blocks, integer extremes).
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
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

// Asserts that M rows of Y_STRIDE outputs of two kernel paths, A (NAME_A)
// and B (NAME_B), have the same bits; the first difference is reported.
void expect_same_output_bits(const std::vector<float>& a, const std::vector<float>& b, int64_t m, int64_t y_stride,
                             const std::string& what, const char* name_a, const char* name_b);

// Awkward shapes for comparing two kernel paths: every type, K and N, with
// quantized and with raw weights, and M = 1..35 rows of one set of
// activations per shape.
struct ShapeSweep {
  std::vector<gguf::TensorType> types;
  std::vector<int64_t> ks, ns;
  uint32_t weight_seed = 31;  // weights of a shape: seed K * weight_seed + N + raw
  uint32_t acts_seed = 0;     // its activations: seed K + N + acts_seed
  int threads = 2;            // the scratch is reserved for this many
};

// Calls CHECK(weights, acts, m, scratch, label) over SWEEP, the activations
// made by MAKE_ACTS(rows, stride, seed) with stride K; stops at the first
// fatal failure.
template <class MakeActs, class Check>
void for_each_shape(const ShapeSweep& sweep, MakeActs make_acts, Check check) {
  constexpr int64_t kMaxRows = 35;
  for (gguf::TensorType type : sweep.types) {
    for (int64_t k : sweep.ks) {
      for (int64_t n : sweep.ns) {
        for (bool raw : {false, true}) {
          const auto w = make_quant_weights(type, n, k, static_cast<uint32_t>(k * sweep.weight_seed + n + raw), raw);
          const auto x = make_acts(kMaxRows, k, static_cast<uint32_t>(k + n + sweep.acts_seed));
          MatmulScratch scratch;
          scratch.reserve(kMaxRows, k, sweep.threads);
          for (int64_t m = 1; m <= kMaxRows; ++m) {
            check(w, x, m, scratch,
                  std::string(gguf::type_name(type)) + (raw ? " raw" : "") + " N=" + std::to_string(n) +
                      " K=" + std::to_string(k) + " M=" + std::to_string(m));
            if (::testing::Test::HasFatalFailure()) return;
          }
        }
      }
    }
  }
}

}  // namespace tandem::kernels::test_data
