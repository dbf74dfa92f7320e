// The AMX matmul path (kernels/amx.h, matmul_amx.cpp) against the AVX-512
// VNNI path: bit-identical outputs over awkward shapes, strides and thread
// counts, so a batch may take either path without changing any result.
// (The VNNI path is itself tested against the scalar reference in
// matmul_test.cpp.) Skipped on machines without AMX.
#include "core/fp16.h"
#include "gguf/quant.h"
#include "kernels/amx.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize_act.h"
#include "matmul_test_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tandem::kernels {
namespace {

using gguf::TensorType;

// Restores the start-up mode after each test.
class MatmulAmx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!amx_available()) GTEST_SKIP() << "no AMX on this machine (or TANDEM_NO_AMX / no OS permission)";
    saved_ = amx_mode();
  }
  void TearDown() override {
    if (amx_available()) set_amx_mode(saved_);
  }
  AmxMode saved_ = AmxMode::kOff;
};

int act_block(TensorType type) { return act_block_elems(type); }

using test_data::make_quant_weights;
using Weights = test_data::QuantWeights;

std::vector<float> make_acts(int64_t m, int64_t stride, uint32_t seed) {
  return test_data::make_acts(m, stride, seed, {.small_blocks = true});
}

// Y with AMX off and on; the AMX run must take the AMX path (call counter).
// Y rows Y_STRIDE apart (default N + 3) from SHIFT floats past a 64-byte
// boundary: with a stride of a multiple of 16, the AMX kernels shift their
// tiles to Y's cache lines (amx_tiles.h, TileGrid).
void expect_same_bits(const Weights& w, const std::vector<float>& x, int64_t m, int64_t x_stride, ThreadPool& pool,
                      MatmulScratch& scratch, const std::string& what, int64_t y_stride = 0, int shift = 0) {
  const int64_t n = w.m.rows;
  if (y_stride == 0) y_stride = n + 3;
  const size_t count = static_cast<size_t>(m * y_stride);
  std::vector<float> off_buf(count + 32, -7.0f), on_buf(off_buf);
  auto at = [&](std::vector<float>& b) {
    const auto a = reinterpret_cast<uintptr_t>(b.data());
    return b.data() + ((64 - a % 64) % 64) / 4 + shift;
  };
  float* off_y = at(off_buf);
  float* on_y = at(on_buf);
  std::vector<float> off(count), on(count);
  set_amx_mode(AmxMode::kOff);
  matmul(w.m, x.data(), m, x_stride, off_y, y_stride, pool, scratch);
  set_amx_mode(AmxMode::kAlways);
  const uint64_t calls = detail::amx_call_count();
  matmul(w.m, x.data(), m, x_stride, on_y, y_stride, pool, scratch);
  std::copy(off_y, off_y + count, off.begin());
  std::copy(on_y, on_y + count, on.begin());
  ASSERT_EQ(calls + 1, detail::amx_call_count()) << what << ": AMX path not taken";
  test_data::expect_same_output_bits(off, on, m, y_stride, what, "VNNI", "AMX");
}

TEST_F(MatmulAmx, BitIdenticalToVnniOverAwkwardShapes) {
  ThreadPool pool(2);
  // K: multiples of 32, not of 64 (but one); N: not multiples of 16 (ragged weight tiles).
  const test_data::ShapeSweep sweep{
      {TensorType::Q8_0, TensorType::Q4_0}, {32, 96, 160, 1056}, {1, 3, 17, 33, 50}, 31, 0};
  test_data::for_each_shape(sweep, make_acts,
                            [&](const Weights& w, const std::vector<float>& x, int64_t m, MatmulScratch& scratch,
                                const std::string& what) { expect_same_bits(w, x, m, w.m.cols, pool, scratch, what); });
}

TEST_F(MatmulAmx, KQuantsBitIdenticalOverAwkwardShapes) {
  ThreadPool pool(2);
  const test_data::ShapeSweep sweep{{TensorType::Q4_K, TensorType::Q6_K}, {256, 768, 1280}, {1, 3, 17, 33, 50}, 37, 1};
  test_data::for_each_shape(sweep, make_acts,
                            [&](const Weights& w, const std::vector<float>& x, int64_t m, MatmulScratch& scratch,
                                const std::string& what) { expect_same_bits(w, x, m, w.m.cols, pool, scratch, what); });
}

TEST_F(MatmulAmx, BitIdenticalForLargeBatchesStridesAndThreads) {
  ThreadPool one(1), two(2);
  for (TensorType type : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K}) {
    for (int64_t m : {64, 100, 512}) {
      const int64_t k = m == 512 ? 1024 : (act_block(type) == 256 ? 512 : 480), n = m == 512 ? 70 : 131;
      const int64_t x_stride = k + 8;
      const auto w = make_quant_weights(type, n, k, static_cast<uint32_t>(m), false);
      const auto x = make_acts(m, x_stride, static_cast<uint32_t>(m + 1));
      MatmulScratch scratch;
      scratch.reserve(m, k, 2);
      for (ThreadPool* pool : {&one, &two}) {
        expect_same_bits(w, x, m, x_stride, *pool, scratch,
                         std::string(gguf::type_name(type)) + " M=" + std::to_string(m) +
                             " threads=" + std::to_string(pool->size()));
        if (HasFatalFailure()) return;
        // Y rows a multiple of 16 floats apart, starting 0..15 floats into
        // a line: first tiles of 16 - shift rows.
        for (int shift : {0, 1, 4, 15}) {
          expect_same_bits(w, x, m, x_stride, *pool, scratch,
                           std::string(gguf::type_name(type)) + " M=" + std::to_string(m) +
                               " threads=" + std::to_string(pool->size()) + " Y shift " + std::to_string(shift),
                           (n + 15) / 16 * 16 + 16, shift);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// kAuto switches path at amx_min_rows(); a row's output must not notice.
TEST_F(MatmulAmx, AutoModeRowAloneEqualsRowInLargeBatch) {
  ThreadPool pool(2);
  const int64_t k = 2080, n = 45, m = 3 * amx_min_rows(TensorType::Q8_0) + 5;
  const auto w = make_quant_weights(TensorType::Q8_0, n, k, 9, false);
  const auto x = make_acts(m, k, 10);
  MatmulScratch scratch;
  scratch.reserve(m, k, 2);
  set_amx_mode(AmxMode::kAuto);
  std::vector<float> batch(static_cast<size_t>(m * n)), alone(static_cast<size_t>(n));
  const uint64_t calls = detail::amx_call_count();
  matmul(w.m, x.data(), m, k, batch.data(), n, pool, scratch);
  EXPECT_EQ(calls + 1, detail::amx_call_count());
  for (int64_t i : {int64_t{0}, m / 2, m - 1}) {
    matmul(w.m, x.data() + i * k, 1, k, alone.data(), n, pool, scratch);
    EXPECT_EQ(0, std::memcmp(alone.data(), batch.data() + i * n, sizeof(float) * static_cast<size_t>(n)))
        << "row " << i;
  }
  EXPECT_EQ(calls + 1, detail::amx_call_count()) << "a single row must take the VNNI path in kAuto";
}

}  // namespace
}  // namespace tandem::kernels
