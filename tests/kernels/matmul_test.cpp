// matmul() against its scalar twin over awkward shapes, for every type with
// a SIMD kernel (and one generic type), plus determinism and no-allocation.
//
// Two error budgets, both derived from the data:
//
// 1. Kernel arithmetic. Against a double-precision dot of the weights and
//    the activations *as the kernel quantized them* (act_q8_dequantized),
//    the only error is f32 rounding: the int8 dots are exact, then each of
//    the K/B block terms is rounded ~2 times and summed in f32 (F16/BF16:
//    K/8 terms per lane, 8 lanes), so
//      |y - ref_q| <= (K/B + 8) * 2^-23 * sum_i |xq_i| * mag_i
//    with mag_i = |w_i| (Q4_K: |d*sc*q| + |dmin*m|, its two rounded terms).
//    For K = 4096 that is ~1.6e-5 of sum |xq*w|; a dropped or mis-scaled
//    block of 32 moves y by ~1/sqrt(128 * 32) ~ 1.5e-2 of it.
// 2. Activation rounding. Against the f32 reference: element i is off by
//    at most step_b / 2 (step_b = max|x| of its block / 127), uniformly, so
//    the error is a sum of independent terms with variance w_i^2 step_b^2 / 12:
//      |y - ref| <= min(6 sigma, sum_i |w_i| step_b / 2) + budget 1
//    and never more than sqrt(B) / 254 * ||x|| * ||w|| (the same bound
//    through Cauchy-Schwarz: the norm form, for blocks of B).
#include "core/fp16.h"
#include "gguf/quant.h"
#include "kernels/dot.h"
#include "kernels/matmul.h"
#include "kernels/quantize_act.h"
#include "matmul_test_data.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tandem::kernels {
namespace {

using gguf::TensorType;

double worst_fp_ratio = 0;  // max |y - ref_q| / budget 1 seen, printed at the end

// The quantized matrix with what check() needs of it.
struct Weights : test_data::QuantWeights {
  std::vector<float> deq;  // dequantized, N x K
  std::vector<float> mag;  // magnitude of the terms the kernel rounds, N x K (see check())
};

// test_data::make_quant_weights, dequantized, with the magnitudes check() needs.
Weights make_weights(TensorType type, int64_t n, int64_t k, uint32_t seed, bool raw = false) {
  Weights w{test_data::make_quant_weights(type, n, k, seed, raw)};
  const size_t rb = w.m.row_bytes;
  w.deq.resize(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_TRUE(gguf::dequantize(type, w.bytes.data() + static_cast<size_t>(r) * rb, w.deq.data() + r * k, k).ok());
  }
  // Q4_K and Q5_K round d*sc*q and dmin*m separately (they may cancel in
  // w): get each part from the dequantizer with the other scale zeroed.
  w.mag.resize(w.deq.size());
  if (type == TensorType::Q4_K || type == TensorType::Q5_K) {
    const size_t block_bytes = type == TensorType::Q4_K ? 144 : 176;
    std::vector<uint8_t> no_min = w.bytes, no_scale = w.bytes;
    for (size_t b = 0; b < static_cast<size_t>(n * k / 256); ++b) {
      std::memset(no_min.data() + block_bytes * b + 2, 0, 2);
      std::memset(no_scale.data() + block_bytes * b, 0, 2);
    }
    std::vector<float> a(static_cast<size_t>(k)), c(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      EXPECT_TRUE(gguf::dequantize(type, no_min.data() + static_cast<size_t>(r) * rb, a.data(), k).ok());
      EXPECT_TRUE(gguf::dequantize(type, no_scale.data() + static_cast<size_t>(r) * rb, c.data(), k).ok());
      for (int64_t e = 0; e < k; ++e) w.mag[r * k + e] = std::fabs(a[e]) + std::fabs(c[e]);
    }
  } else {
    for (size_t i = 0; i < w.deq.size(); ++i) w.mag[i] = std::fabs(w.deq[i]);
  }
  return w;
}

// M rows of K activations: Gaussian, some outliers, one all-zero block.
std::vector<float> make_acts(int64_t m, int64_t k, uint32_t seed) { return test_data::make_acts(m, k, seed); }

// Checks Y (M x N, stride N) against both budgets for all rows.
void check(const Weights& w, const std::vector<float>& x, int64_t m, const std::vector<float>& y,
           const std::string& what) {
  const int64_t n = w.m.rows, k = w.m.cols;
  const int block = act_block_elems(w.m.type);
  const double eps = std::ldexp(1.0, -23);
  const double norm_eps = block > 0 ? std::sqrt(static_cast<double>(block)) / 254.0 : 0.0;
  std::vector<float> xq(static_cast<size_t>(k)), step(static_cast<size_t>(k), 0.0f);
  int failures = 0;
  for (int64_t i = 0; i < m && failures < 5; ++i) {
    const float* xr = x.data() + i * k;
    if (block > 0) {
      act_q8_dequantized(xr, k, block, xq.data());
      for (int64_t b0 = 0; b0 < k; b0 += block) {
        float amax = 0;
        for (int j = 0; j < block; ++j) amax = std::max(amax, std::fabs(xr[b0 + j]));
        std::fill(step.begin() + b0, step.begin() + b0 + block, amax / 127.0f);
      }
    } else {
      std::copy(xr, xr + k, xq.begin());
    }
    const int64_t terms = block > 0 ? k / block : k / 8;
    for (int64_t j = 0; j < n; ++j) {
      const float* wr = w.deq.data() + j * k;
      const float* mag = w.mag.data() + j * k;
      double ref = 0, ref_q = 0, terms_abs = 0, var = 0, hard = 0, xx = 0, ww = 0;
      for (int64_t e = 0; e < k; ++e) {
        ref += static_cast<double>(xr[e]) * wr[e];
        ref_q += static_cast<double>(xq[e]) * wr[e];
        terms_abs += std::fabs(xq[e]) * static_cast<double>(mag[e]);
        var += static_cast<double>(wr[e]) * wr[e] * step[e] * step[e] / 12.0;
        hard += std::fabs(wr[e]) * step[e] / 2.0;
        xx += static_cast<double>(xr[e]) * xr[e];
        ww += static_cast<double>(wr[e]) * wr[e];
      }
      const double got = y[i * n + j];
      const double fp = static_cast<double>(terms + 8) * eps * terms_abs + 1e-30;
      worst_fp_ratio = std::max(worst_fp_ratio, std::fabs(got - ref_q) / fp);
      const double act = std::min(6.0 * std::sqrt(var), hard) + fp;
      const bool ok = std::fabs(got - ref_q) <= fp && std::fabs(got - ref) <= act &&
                      std::fabs(got - ref) <= norm_eps * std::sqrt(xx * ww) + fp;
      if (!ok) {
        ++failures;
        ADD_FAILURE() << what << " m=" << i << " n=" << j << ": got " << got << " ref " << ref << " ref_q " << ref_q
                      << " (fp budget " << fp << ", act budget " << act << ")";
      }
    }
  }
}

struct TypeCase {
  TensorType type;
  std::vector<int64_t> ks;  // one block, a few blocks (awkward counts), large
};

const std::vector<TypeCase>& type_cases() {
  static const std::vector<TypeCase> cases = {
      {TensorType::Q8_0, {32, 96, 4096}},    {TensorType::Q4_0, {32, 160, 4096}},
      {TensorType::Q4_K, {256, 768, 4096}},  {TensorType::Q6_K, {256, 1280, 4096}},
      {TensorType::F16, {1, 13, 100, 4099}}, {TensorType::BF16, {7, 24, 4096}},
      {TensorType::MXFP4, {32, 96, 4096}},   {TensorType::Q5_K, {256, 768, 4096}},
  };
  return cases;
}

std::string name_of(TensorType t) { return std::string(gguf::type_name(t)); }

// Every M in 1..35 against the same 35 activation rows (rows are
// independent, so the first M rows of a bigger batch are the reference).
void run_shapes(TensorType type, int64_t n, int64_t k, bool raw, ThreadPool& pool) {
  const auto w = make_weights(type, n, k, static_cast<uint32_t>(n * 131 + k), raw);
  const int64_t max_m = 35;
  const auto x = make_acts(max_m, k, static_cast<uint32_t>(k * 7 + n));
  MatmulScratch scratch;
  scratch.reserve(max_m, k, pool.size());
  for (int64_t m = 1; m <= max_m; ++m) {
    std::vector<float> y(static_cast<size_t>(m * n), NAN);
    matmul(w.m, x.data(), m, k, y.data(), n, pool, scratch);
    check(w, x, m, y,
          name_of(type) + (raw ? " raw" : "") + " N=" + std::to_string(n) + " K=" + std::to_string(k) +
              " M=" + std::to_string(m));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(Matmul, MatchesReferenceOverAwkwardShapes) {
  ThreadPool pool(2);
  for (const auto& tc : type_cases()) {
    worst_fp_ratio = 0;
    for (int64_t k : tc.ks) {
      for (int64_t n : {1, 3, 17, 33}) run_shapes(tc.type, n, k, false, pool);
    }
    std::printf("  %-5s worst |y - ref_q| / rounding budget: %.3f\n", name_of(tc.type).c_str(), worst_fp_ratio);
  }
}

// Every SIMD target this CPU runs that has integer kernels (an AVX-512
// machine also checks the AVX2 and AVX3 paths: their int8 dot products
// differ). Older targets take the generic f32 path, which the check's
// quantized-activation budget does not describe.
TEST(Matmul, EveryTargetMatchesReference) {
  ThreadPool pool(2);
  // 0 first: the default dispatch. This file's target list lacks AVX3_DL,
  // which the kernels compile for themselves (HWY_WANT_AVX3_DL).
  std::vector<int64_t> targets{0};
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) targets.push_back(t);
  for (int64_t target : targets) {
    if (target > HWY_AVX2) continue;  // x86 targets: lower bits are the better ones
    hwy::SetSupportedTargetsForTest(target);
    const char* name = target == 0 ? matmul_target_name() : hwy::TargetName(target);
    SCOPED_TRACE(name);
    std::printf("  target %s\n", name);
    for (const auto& tc : type_cases()) {
      for (int64_t n : {3, 17}) run_shapes(tc.type, n, tc.ks[1], false, pool);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Matmul, RawBlocksReachIntegerExtremes) {
  ThreadPool pool(2);
  for (TensorType t :
       {TensorType::Q8_0, TensorType::Q4_0, TensorType::MXFP4, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    const int64_t k = act_block_elems(t) == 32 ? 1024 : 2048;
    run_shapes(t, 17, k, true, pool);
  }
}

// Strided X and Y: only the N columns of each Y row are written.
TEST(Matmul, HonoursStrides) {
  ThreadPool pool(2);
  for (const auto& tc : type_cases()) {
    const int64_t k = tc.ks[1], n = 17, m = 9, xs = k + 5, ys = n + 3;
    const auto w = make_weights(tc.type, n, k, 5);
    const auto packed = make_acts(m, k, 6);
    std::vector<float> x(static_cast<size_t>(m * xs), 1e30f);
    for (int64_t i = 0; i < m; ++i) std::copy_n(packed.data() + i * k, k, x.data() + i * xs);
    std::vector<float> y(static_cast<size_t>(m * ys), -7.0f), yp(static_cast<size_t>(m * n));
    MatmulScratch scratch;
    scratch.reserve(m, k, pool.size());
    matmul(w.m, x.data(), m, xs, y.data(), ys, pool, scratch);
    for (int64_t i = 0; i < m; ++i) {
      std::copy_n(y.data() + i * ys, n, yp.data() + i * n);
      for (int64_t j = n; j < ys; ++j) EXPECT_EQ(y[i * ys + j], -7.0f) << name_of(tc.type);
    }
    check(w, packed, m, yp, name_of(tc.type) + " strided");
  }
}

// Y[m, n] depends only on X[m] and W[n]: the same row alone, in batches of
// 2..16 (and 35, 64) at different positions among other random rows, with
// 1 and 2 threads, gives the same bits.
TEST(Matmul, DeterministicAcrossBatchAndThreads) {
  ThreadPool one(1), two(2);
  for (const auto& tc : type_cases()) {
    const int64_t k = tc.ks[1] * 3, n = 37;  // odd N: tail tiles, uneven thread split
    const auto w = make_weights(tc.type, n, k, 11);
    const auto target = make_acts(1, k, 12);
    MatmulScratch scratch;
    scratch.reserve(64, k, 2);
    std::vector<float> alone(static_cast<size_t>(n));
    matmul(w.m, target.data(), 1, k, alone.data(), n, one, scratch);
    for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 35, 64}) {
      for (int64_t pos : {int64_t{0}, m / 2, m - 1}) {
        auto x = make_acts(m, k, static_cast<uint32_t>(100 + m * 3 + pos));
        std::copy(target.begin(), target.end(), x.begin() + pos * k);
        for (ThreadPool* pool : {&one, &two}) {
          std::vector<float> y(static_cast<size_t>(m * n));
          matmul(w.m, x.data(), m, k, y.data(), n, *pool, scratch);
          ASSERT_EQ(0, std::memcmp(alone.data(), y.data() + pos * n, sizeof(float) * static_cast<size_t>(n)))
              << name_of(tc.type) << " M=" << m << " pos=" << pos << " threads=" << pool->size();
        }
      }
    }
  }
}

// Y[m, n] depends on W[n], not on which rows surround it: a view of rows
// [a, b) (shifting which rows share a register tile, and which fall in the
// ragged last tile) gives the same bits as the full matrix.
TEST(Matmul, RowViewsGiveTheSameBits) {
  ThreadPool pool(2);
  for (const auto& tc : type_cases()) {
    const int64_t k = tc.ks[1], n = 23, m = 5;
    const auto w = make_weights(tc.type, n, k, 21);
    const auto x = make_acts(m, k, 22);
    MatmulScratch scratch;
    scratch.reserve(m, k, 2);
    std::vector<float> full(static_cast<size_t>(m * n));
    matmul(w.m, x.data(), m, k, full.data(), n, pool, scratch);
    for (auto [a, b] : {std::pair<int64_t, int64_t>{1, 23}, {2, 22}, {3, 10}, {5, 6}, {7, 20}}) {
      Matrix view = w.m;
      view.data += static_cast<size_t>(a) * w.m.row_bytes;
      view.rows = b - a;
      std::vector<float> y(static_cast<size_t>(m * (b - a)));
      matmul(view, x.data(), m, k, y.data(), b - a, pool, scratch);
      for (int64_t i = 0; i < m; ++i) {
        ASSERT_EQ(
            0, std::memcmp(full.data() + i * n + a, y.data() + i * (b - a), sizeof(float) * static_cast<size_t>(b - a)))
            << name_of(tc.type) << " rows [" << a << ", " << b << ") m=" << i;
      }
    }
  }
}

// reserve() sizes everything: a call within the reservation never allocates.
TEST(Matmul, NoAllocationWithinReservation) {
  ThreadPool pool(2);
  for (const auto& tc : type_cases()) {
    const int64_t k = tc.ks.back(), n = 9;
    const auto w = make_weights(tc.type, n, k, 3);
    MatmulScratch scratch;
    scratch.reserve(16, k, pool.size());
    const auto* bytes = scratch.bytes.data();
    const auto* floats = scratch.floats.data();
    const size_t nb = scratch.bytes.size(), nf = scratch.floats.size();
    for (int64_t m : {1, 4, 16}) {
      const auto x = make_acts(m, k, 4);
      std::vector<float> y(static_cast<size_t>(m * n));
      matmul(w.m, x.data(), m, k, y.data(), n, pool, scratch);
    }
    EXPECT_EQ(bytes, scratch.bytes.data()) << name_of(tc.type);
    EXPECT_EQ(floats, scratch.floats.data()) << name_of(tc.type);
    EXPECT_EQ(nb, scratch.bytes.size());
    EXPECT_EQ(nf, scratch.floats.size());
  }
}

TEST(Matmul, DispatchesToSimdTarget) {
  const std::string target = matmul_target_name();
  const std::string dot_target = simd_target_name();
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_TRUE(target == "AVX2" || target == "AVX3" || target == "AVX3_DL") << target;
    EXPECT_TRUE(dot_target == "AVX2" || dot_target == "AVX3" || dot_target == "AVX3_DL") << dot_target;
  }
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    EXPECT_NE(target, "AVX2");
  }
#endif
  EXPECT_NE(target, "EMU128");
  EXPECT_NE(target, "SCALAR");
}

TEST(Matmul, ZeroRowsIsANoOp) {
  ThreadPool pool(2);
  const auto w = make_weights(TensorType::Q8_0, 3, 64, 1);
  MatmulScratch scratch;
  float y = 5.0f;
  matmul(w.m, nullptr, 0, 64, &y, 3, pool, scratch);
  EXPECT_EQ(y, 5.0f);
}

// Affine matrices (Matrix::offsets, MLX-quantized folders): the block
// format's product plus offsets . group sums of X. Against the same matmul
// without offsets plus that term in double: only f32 rounding of the sums
// and the final add; and, like every matmul, the same bits whatever the
// batch or the threads.
TEST(Matmul, AffineOffsetsAddTheirGroupTerm) {
  ThreadPool one(1), two(2);
  for (TensorType type : {TensorType::Q4_0, TensorType::Q8_0}) {
    for (int64_t group : {32, 64, 128}) {
      const int64_t n = 37, k = 256, groups = k / group;
      const auto w = make_weights(type, n, k, 31);
      std::mt19937 rng(32);
      std::normal_distribution<float> dist(0.0f, 0.05f);
      std::vector<float> offsets(static_cast<size_t>(n * groups));
      for (auto& o : offsets) o = dist(rng);
      Matrix affine = w.m;
      affine.offsets = offsets.data();  // group-major: [group][n]
      affine.offset_group = group;
      affine.offset_stride = n;
      const int64_t m = 9;
      const auto x = make_acts(m, k, 33);
      MatmulScratch scratch;
      scratch.reserve(64, k, 2);
      std::vector<float> plain(static_cast<size_t>(m * n)), y(plain.size());
      matmul(w.m, x.data(), m, k, plain.data(), n, two, scratch);
      matmul(affine, x.data(), m, k, y.data(), n, two, scratch);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double term = 0, scale = 0;
          for (int64_t e = 0; e < k; ++e) {
            term += static_cast<double>(x[i * k + e]) * offsets[e / group * n + j];
            scale += std::fabs(x[i * k + e] * offsets[e / group * n + j]);
          }
          ASSERT_NEAR(y[i * n + j], plain[i * n + j] + term, 1e-5 * (scale + std::fabs(plain[i * n + j])) + 1e-7)
              << name_of(type) << " group " << group << " m=" << i << " n=" << j;
        }
      }
      // The scalar twin and dequantize_row include the offsets too.
      std::vector<float> ref(plain.size()), ref_plain(plain.size()), row(static_cast<size_t>(k));
      matmul_reference(affine, x.data(), m, k, ref.data(), n);
      matmul_reference(w.m, x.data(), m, k, ref_plain.data(), n);
      dequantize_row(affine, 3, row.data());
      EXPECT_FLOAT_EQ(row[5], w.deq[3 * k + 5] + offsets[5 / group * n + 3]);
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(ref[i] - ref_plain[i], y[i] - plain[i], 1e-4 * (std::fabs(ref[i]) + 1)) << i;
      // Row 4 alone, with one thread: the same bits.
      std::vector<float> alone(static_cast<size_t>(n));
      matmul(affine, x.data() + 4 * k, 1, k, alone.data(), n, one, scratch);
      ASSERT_EQ(0, std::memcmp(alone.data(), y.data() + 4 * n, sizeof(float) * static_cast<size_t>(n)));
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
