// F16 and BF16 weights x f32 activations: weights widened to f32 (exact)
// in registers, then FMA into one 8-lane accumulator per output; R = 4
// weight rows x C activation rows per register tile, one horizontal sum
// per output at the end. The K % 8 tail goes through zero-padded vectors
// (weights and masked activation loads), the same for every output.
//
// The weights are widened again on every pass over C activation rows
// (vcvtph2ps is 1 op per 8 weights against 2C FMAs): measured on Zen 3,
// that beat widening each tile once into an f32 copy (2.4-2.9 vs 3.1-5.2
// cycles per row x row x 32 weights, the copy costing L1 bandwidth).
//
// BF16 -> f32 is a 16-bit shift; F16 -> f32 is vcvtph2ps (F16C). Zen 4's
// vdpbf16ps would halve the instructions for BF16, but Highway 1.0.3 has no
// target for AVX512_BF16 (Ice Lake has AVX3_DL without it) and prefill on
// BF16 weights is not the benchmark; convert + FMA is exact and simple.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // compile the AVX-512 VNNI target (off by default in Highway 1.0.3)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_f16.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/matmul-inl.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni,no-avxvnni")  // see matmul-inl.h
#endif
namespace tandem::kernels {
namespace HWY_NAMESPACE {

#if TANDEM_MATMUL_X86

// 8 half / bfloat16 values -> f32.
template <bool kBf16>
HWY_INLINE __m256 Widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(h);
  }
}

// The last K % 8 values, zero-padded (a zero half / bfloat16 is +0.0f).
template <bool kBf16>
HWY_INLINE __m256 Widen8Tail(const uint16_t* p, int64_t n) {
  uint16_t tmp[8] = {};
  std::memcpy(tmp, p, static_cast<size_t>(n) * 2);
  return Widen8<kBf16>(tmp);
}

HWY_INLINE __m256i TailMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <bool kBf16>
struct F16Kern {
  // Registers: R*C accumulators + R weight vectors + x: 13 of 16 (AVX2), 29 of 32.
  static constexpr int kRows = 4;
  static constexpr int kCols = kWideRegs ? 6 : 2;

  const uint8_t* w;
  size_t row_bytes;
  int64_t w_rows;
  int64_t k;
  const float* x;
  int64_t x_stride;
  float* y;
  int64_t y_stride;

  void Prepare(int64_t, int, uint8_t*) const {}

  template <int C>
  void Tile(int64_t n0, int rows, int64_t m0, const uint8_t* work) const {
    RowTiles<kRows, C>(*this, n0, rows, m0, work);
  }

  // Rows n0 + r0 .. n0 + r0 + R - 1.
  template <int R, int C>
  void TileRc(int64_t n0, int r0, int64_t m0, const uint8_t*) const {
    const uint16_t* wh[R];
    const float* xr[C];
    for (int r = 0; r < R; ++r) {
      wh[r] = reinterpret_cast<const uint16_t*>(w + static_cast<size_t>(n0 + r0 + r) * row_bytes);
    }
    for (int c = 0; c < C; ++c) xr[c] = x + (m0 + c) * x_stride;
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    }
    // Rows are short streams (K = 1024: 32 lines per row) that the hardware
    // prefetcher ramps up on too late: during the first pass over a full
    // tile, fetch the next tile (kRows rows), a little per step of 8.
    const uint8_t* next = m0 == 0 && R == kRows && n0 + r0 + 2 * kRows <= w_rows
                              ? w + static_cast<size_t>(n0 + r0 + kRows) * row_bytes
                              : nullptr;
    const size_t pf_step = kRows * 16;  // bytes of the next tile per step of 8 weights
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
      if (next != nullptr && (i & 31) == 0) PrefetchSlice(next + (i / 8) * pf_step, 4 * pf_step, 0, 1);
      __m256 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = Widen8<kBf16>(wh[r] + i);
      for (int c = 0; c < C; ++c) {
        const __m256 xv = _mm256_loadu_ps(xr[c] + i);
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
      }
    }
    if (i < k) {
      const __m256i mask = TailMask(k - i);
      __m256 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = Widen8Tail<kBf16>(wh[r] + i, k - i);
      for (int c = 0; c < C; ++c) {
        const __m256 xv = _mm256_maskload_ps(xr[c] + i, mask);
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
      }
    }
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < R; ++r) y[(m0 + c) * y_stride + n0 + r0 + r] = ReduceF(acc[r][c]);
    }
  }
};

#endif  // TANDEM_MATMUL_X86

bool MatmulF16(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
               ThreadPool& pool, const detail::ScratchView& s) {
#if TANDEM_MATMUL_X86
  if (w.type == gguf::TensorType::BF16) {
    RunAll(F16Kern<true>{w.data, w.row_bytes, w.rows, w.cols, x, x_stride, y, y_stride}, w.rows, m, pool, s);
  } else {
    RunAll(F16Kern<false>{w.data, w.row_bytes, w.rows, w.cols, x, x_stride, y, y_stride}, w.rows, m, pool, s);
  }
  return true;
#else
  (void)w, (void)x, (void)m, (void)x_stride, (void)y, (void)y_stride, (void)pool, (void)s;
  return false;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tandem::kernels {

HWY_EXPORT(MatmulF16);

namespace detail {
bool matmul_f16(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                ThreadPool& pool, const ScratchView& s) {
  return HWY_DYNAMIC_DISPATCH(MatmulF16)(w, x, m, x_stride, y, y_stride, pool, s);
}
}  // namespace detail

}  // namespace tandem::kernels
#endif
