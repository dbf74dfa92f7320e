#include "matmul_test_data.h"

#include "core/fp16.h"
#include "gguf/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace tandem::kernels::test_data {

using gguf::TensorType;

uint16_t random_f16_scale(std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.002f, 0.02f);
  const float v = u(rng) * ((rng() & 1) ? 1.0f : -1.0f);
  return f32_to_f16(v);
}

QuantWeights make_quant_weights(TensorType type, int64_t n, int64_t k, uint32_t seed, bool raw) {
  std::mt19937 rng(seed);
  QuantWeights w;
  const size_t rb = *gguf::row_bytes(type, static_cast<uint64_t>(k));
  w.bytes.resize(rb * static_cast<size_t>(n) + 64);
  if (raw) {
    for (auto& b : w.bytes) b = static_cast<uint8_t>(rng());
    const auto info = gguf::type_info(type);
    const size_t blocks = static_cast<size_t>(n * k / info.block_size);
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* blk = w.bytes.data() + b * info.block_bytes;
      const uint16_t d = random_f16_scale(rng), dmin = random_f16_scale(rng);
      switch (type) {
        case TensorType::Q8_0:
        case TensorType::Q4_0: std::memcpy(blk, &d, 2); break;
        case TensorType::Q4_K:
        case TensorType::Q5_K:
          std::memcpy(blk, &d, 2);
          std::memcpy(blk + 2, &dmin, 2);
          break;
        case TensorType::Q6_K: std::memcpy(blk + 208, &d, 2); break;
        case TensorType::MXFP4:
          blk[0] = static_cast<uint8_t>(108 + rng() % 32);  // scales 2^-20 .. 2^11: every nibble, no overflow
          break;
        default: ADD_FAILURE() << "no raw mode for this type";
      }
    }
  } else {
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      for (auto& v : row) v = g(rng) * ((rng() % 64) == 0 ? 20.0f : 1.0f);
      EXPECT_TRUE(gguf::quantize(type, row.data(), w.bytes.data() + static_cast<size_t>(r) * rb, k).ok());
    }
  }
  w.m = Matrix{w.bytes.data(), type, n, k, rb};
  return w;
}

std::vector<float> make_acts(int64_t m, int64_t stride, uint32_t seed, ActsOptions options) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * stride));
  for (auto& v : x) {
    v = g(rng) * ((rng() % 50) == 0 ? 30.0f : 1.0f);
    if (options.small_blocks) v *= (rng() % 7) == 0 ? 1e-3f : 1.0f;
  }
  if (stride >= 64 && m > 1) std::fill(x.begin() + stride + 32, x.begin() + stride + 64, 0.0f);
  if (options.unit_row && m > 2) {
    for (int64_t i = 0; i < stride; ++i) x[static_cast<size_t>(2 * stride + i)] = (rng() & 1) ? 1.0f : -1.0f;
  }
  return x;
}

void expect_same_output_bits(const std::vector<float>& a, const std::vector<float>& b, int64_t m, int64_t y_stride,
                             const std::string& what, const char* name_a, const char* name_b) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < y_stride; ++j) {
      const size_t at = static_cast<size_t>(i * y_stride + j);
      uint32_t x, y;
      std::memcpy(&x, &a[at], 4);
      std::memcpy(&y, &b[at], 4);
      ASSERT_EQ(x, y) << what << " m=" << i << " n=" << j << ": " << name_a << " " << a[at] << " " << name_b << " "
                      << b[at];
    }
  }
}

}  // namespace tandem::kernels::test_data
