// The elements-in-lanes decode kernel of the K-quants (matmul_kq_vnni.cpp)
// against the rows-in-lanes kernel of matmul_kq.cpp: bit-identical outputs
// over awkward shapes (ragged 16-row tiles, one to many super-blocks),
// extreme quants (random bytes), strides and thread counts. Both paths are
// also compared with the scalar reference in matmul_test.cpp (which runs
// the default, i.e. the new path for M <= 4). Skipped on CPUs without the
// AVX3_DL target.
#include "core/fp16.h"
#include "gguf/quant.h"
#include "kernels/amx.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "matmul_test_data.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tandem::kernels {
namespace {

using gguf::TensorType;

// AMX off (the batches it takes must compare the two AVX-512 paths) and the
// switch restored after each test.
class MatmulKqVnni : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(matmul_target_name()) != "AVX3_DL") GTEST_SKIP() << "no AVX-512 VNNI target on this CPU";
    saved_amx_ = amx_mode();
    set_amx_mode(AmxMode::kOff);
  }
  void TearDown() override {
    detail::set_kq_vnni_enabled(true);
    set_amx_mode(saved_amx_);
  }
  AmxMode saved_amx_ = AmxMode::kOff;
};

using test_data::make_quant_weights;
using Weights = test_data::QuantWeights;

std::vector<float> make_acts(int64_t m, int64_t stride, uint32_t seed) {
  return test_data::make_acts(m, stride, seed, {.small_blocks = true, .unit_row = true});
}

// Y from the rows-in-lanes kernel (new path off) and the default; the
// default must take the new path exactly when M <= kKqVnniMaxRows.
void expect_same_bits(const Weights& w, const std::vector<float>& x, int64_t m, int64_t x_stride, ThreadPool& pool,
                      MatmulScratch& scratch, const std::string& what, int64_t y_stride = 0) {
  const int64_t n = w.m.rows;
  if (y_stride == 0) y_stride = n + 3;
  const size_t count = static_cast<size_t>(m * y_stride);
  std::vector<float> off(count, -7.0f), on(count, -7.0f);
  detail::set_kq_vnni_enabled(false);
  const uint64_t calls = detail::kq_vnni_call_count();
  matmul(w.m, x.data(), m, x_stride, off.data(), y_stride, pool, scratch);
  ASSERT_EQ(calls, detail::kq_vnni_call_count()) << what << ": switched off, yet taken";
  detail::set_kq_vnni_enabled(true);
  matmul(w.m, x.data(), m, x_stride, on.data(), y_stride, pool, scratch);
  const bool expect_taken = m <= detail::kKqVnniMaxRows;  // Q4_K, Q5_K and Q6_K
  ASSERT_EQ(calls + (expect_taken ? 1 : 0), detail::kq_vnni_call_count()) << what << ": path taken or not";
  test_data::expect_same_output_bits(off, on, m, y_stride, what, "rows-in-lanes", "new");
}

TEST_F(MatmulKqVnni, BitIdenticalOverAwkwardShapes) {
  ThreadPool pool(2);
  const test_data::ShapeSweep sweep{
      {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}, {256, 768, 2816}, {1, 7, 15, 16, 17, 33, 50, 100}, 41, 3};
  test_data::for_each_shape(sweep, make_acts,
                            [&](const Weights& w, const std::vector<float>& x, int64_t m, MatmulScratch& scratch,
                                const std::string& what) { expect_same_bits(w, x, m, w.m.cols, pool, scratch, what); });
}

TEST_F(MatmulKqVnni, BitIdenticalOverStridesAndThreads) {
  ThreadPool one(1), two(2), three(3);
  for (TensorType type : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    const int64_t k = 1024, n = 131, x_stride = k + 40;
    const auto w = make_quant_weights(type, n, k, 5, false);
    const auto x = make_acts(4, x_stride, 6);
    MatmulScratch scratch;
    scratch.reserve(4, k, 3);
    for (ThreadPool* pool : {&one, &two, &three}) {
      for (int64_t m = 1; m <= 4; ++m) {
        expect_same_bits(
            w, x, m, x_stride, *pool, scratch,
            std::string(gguf::type_name(type)) + " M=" + std::to_string(m) + " threads=" + std::to_string(pool->size()),
            n + 29);
        if (HasFatalFailure()) return;
      }
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
