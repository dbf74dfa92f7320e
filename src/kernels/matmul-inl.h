// SIMD pieces shared by the matmul kernels (matmul_q8.cpp, matmul_kq.cpp,
// matmul_f16.cpp), compiled once per CPU target through foreach_target.
//
// Kernels exist for the x86 targets AVX2, AVX3 (AVX-512) and AVX3_DL
// (AVX-512 + VNNI); on other targets (TANDEM_MATMUL_X86 is 0) they return
// false and matmul() takes the generic path. All three run the same 256-bit
// code. AVX-512 adds registers (32 instead of 16, so more activation rows
// per pass) and, with VNNI, a
// one-instruction int8 dot for Q8_0; the integer sums and every float
// operation per output are the same, so an output has the same bits on all
// three targets. (Zen 4 splits 512-bit instructions into two 256-bit halves
// anyway.)
//
// Structure of every kernel (per thread, over its static share of the N
// weight rows, in tiles of kRows):
//
//   for each tile of weight rows:
//     decode (M <= kCols): read and unpack the rows inside the tile pass
//     else: unpack the tile once into the thread's work area (L1/L2)
//     for each group of kCols activation rows (all M rows):
//       register tile over the whole of K, results stored into Y
//
// Each weight row is read from memory once per call, whatever M; the next
// tile is prefetched during the first pass. Each output (m, n) has its own
// accumulator lane and sees the same instruction sequence whatever the
// tile, M or the thread split, hence determinism.
//
// The int8 kernels (Q8_0/Q4_0, Q4_K/Q6_K) put weight rows in lanes: a tile
// is 8 rows, int32/f32 lane j is row j, and the weights are transposed so
// one vector holds 4 quants of each of the 8 rows (see matmul_q8.cpp).

// Per-target include guard (Highway's toggle idiom).
#if defined(TANDEM_KERNELS_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TANDEM_KERNELS_MATMUL_INL_H_
#undef TANDEM_KERNELS_MATMUL_INL_H_
#else
#define TANDEM_KERNELS_MATMUL_INL_H_
#endif

#ifndef HWY_WANT_AVX3_DL
#error "define HWY_WANT_AVX3_DL before including Highway (all matmul files must compile the same targets)"
#endif

#include <hwy/highway.h>

#include "kernels/matmul_internal.h"
#include "kernels/thread_pool.h"

#include <cstdint>
#include <cstring>

#undef TANDEM_MATMUL_X86
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define TANDEM_MATMUL_X86 1
#include <immintrin.h>
#else
#define TANDEM_MATMUL_X86 0
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
// Highway 1.0.3 compiles this target with "avxvnni" (VEX-encoded VNNI,
// which Zen 4 and Ice Lake lack) while its CPUID check requires AVX512_VNNI.
// With both enabled GCC emits {vex} vpdpbusd (SIGILL on Zen 4): switch to
// the EVEX form. No Highway op is called from this code, so the changed
// attributes cannot break inlining.
#pragma GCC target("avx512vnni,no-avxvnni")
#endif
namespace tandem::kernels {
namespace HWY_NAMESPACE {

constexpr bool kVnni = HWY_TARGET == HWY_AVX3_DL;
// 16 ymm registers on AVX2, 32 with AVX-512 (EVEX): the tiles grow.
constexpr bool kWideRegs = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL;

inline const char* MatmulTargetName() { return hwy::TargetName(HWY_TARGET); }

#if TANDEM_MATMUL_X86

HWY_INLINE __m256i LoadI(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
HWY_INLINE void StoreI(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

// Pins V in a register at this point. GCC reassociates chains of integer
// adds (exact, so it may) into trees that keep every partial product live:
// in the int8 kernels that spilled 30 vectors per block. Called on running
// sums, it keeps the chain a chain.
HWY_INLINE __m256i Chain(__m256i v) {
  asm("" : "+v"(v));
  return v;
}

// Horizontal sum in a fixed order (halves, then pairs, then the last two).
HWY_INLINE float ReduceF(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- activation quantization (quantize_act.h has the scalar twin) -------------

HWY_INLINE __m256 AbsMax32(const float* x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a =
      _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x)), _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
  const __m256 b =
      _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)), _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
  return _mm256_max_ps(a, b);
}

HWY_INLINE float MaxLanes(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Scale and inverse scale of a block with max |x| = AMAX. Blocks below
// 1e-30 (and NaN) quantize to zero: 127 / amax would overflow.
HWY_INLINE void BlockScales(float amax, float* d, float* id) {
  const bool ok = amax >= 1e-30f;
  *d = ok ? amax / 127.0f : 0.0f;
  *id = ok ? 127.0f / amax : 0.0f;
}

// 32 floats -> 32 int8 in [-127, 127]; cvtps rounds to nearest even.
HWY_INLINE __m256i Quantize32(const float* x, __m256 id) {
  __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
  const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
  __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
  const __m256i e = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
  a = _mm256_packs_epi32(a, b);  // per 128-bit lane: a0-3 b0-3 | a4-7 b4-7
  c = _mm256_packs_epi32(c, e);
  a = _mm256_packs_epi16(a, c);  // dwords: a0-3 b0-3 c0-3 e0-3 | a4-7 b4-7 c4-7 e4-7
  return _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Q8_0-style row: qs int8[K] | d f32[K/32]. With VNNI the quants are stored
// biased by +128 (u8), the operand order vpdpbusd wants (see matmul_q8.cpp).
HWY_INLINE void QuantizeRowB32(const float* x, int64_t k, uint8_t* out) {
  float* ds = reinterpret_cast<float*>(out + k);
  const __m256i flip = _mm256_set1_epi8(kVnni ? static_cast<char>(0x80) : 0);
  for (int64_t b = 0; b < k / 32; ++b) {
    float d, id;
    BlockScales(MaxLanes(AbsMax32(x + 32 * b)), &d, &id);
    StoreI(out + 32 * b, _mm256_xor_si256(Quantize32(x + 32 * b, _mm256_set1_ps(id)), flip));
    ds[b] = d;
  }
}

// Q8_K-style row: qs int8[K] | d f32[K/256] | bsum16 int16[K/16] |
// bsum32 int16[K/32] (sums of each 16 / 32 quants, for the K-quants' min
// and offset terms).
HWY_INLINE void QuantizeRowB256(const float* x, int64_t k, uint8_t* out) {
  const int64_t nsb = k / 256;
  float* ds = reinterpret_cast<float*>(out + k);
  int16_t* bsums = reinterpret_cast<int16_t*>(out + k + 4 * nsb);
  int16_t* bsums32 = bsums + k / 16;
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const float* xs = x + 256 * sb;
    __m256 m = AbsMax32(xs);
    for (int j = 1; j < 8; ++j) m = _mm256_max_ps(m, AbsMax32(xs + 32 * j));
    float d, id;
    BlockScales(MaxLanes(m), &d, &id);
    ds[sb] = d;
    for (int j = 0; j < 8; ++j) {
      const __m256i q = Quantize32(xs + 32 * j, _mm256_set1_ps(id));
      StoreI(out + 256 * sb + 32 * j, q);
      // Sums of 4 quants (exact in int16 / int32), then of 16.
      alignas(32) int32_t s4[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(s4), _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16));
      bsums[16 * sb + 2 * j] = static_cast<int16_t>(s4[0] + s4[1] + s4[2] + s4[3]);
      bsums[16 * sb + 2 * j + 1] = static_cast<int16_t>(s4[4] + s4[5] + s4[6] + s4[7]);
      bsums32[8 * sb + j] = static_cast<int16_t>(bsums[16 * sb + 2 * j] + bsums[16 * sb + 2 * j + 1]);
    }
  }
}

// in[j] holds dwords (a, b, c, d) of rows j (low half) and j + 4 (high half);
// out[g] holds dword g of rows 0..3 (low half) and 4..7 (high half): the
// rows-in-lanes layout of the int8 kernels.
HWY_INLINE void Transpose4x4(const __m256i in[4], __m256i* out) {
  const __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]), t1 = _mm256_unpackhi_epi32(in[0], in[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]), t3 = _mm256_unpackhi_epi32(in[2], in[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}

HWY_INLINE __m256i Load2x128(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

HWY_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Prefetches slice I of N of [P, P + BYTES) (whole lines; P may be null).
// Spreading a tile's prefetches over the work keeps them from filling the
// ~24 L1 miss buffers in one burst.
HWY_INLINE void PrefetchSlice(const uint8_t* p, size_t bytes, int i, int n) {
  if (p == nullptr) return;
  const size_t begin = bytes * static_cast<size_t>(i) / static_cast<size_t>(n) / 64 * 64;
  const size_t end = bytes * static_cast<size_t>(i + 1) / static_cast<size_t>(n);
  for (size_t o = begin; o < end; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

// The 4 bytes at P broadcast to every int32 lane.
HWY_INLINE __m256i Broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// 8 f16 scales at P[j] + OFFSET (8 rows) as f32 lanes. Scalars go into the
// vector directly: 8 narrow stores + one wide load would stall store forwarding.
HWY_INLINE __m256 GatherF16(const uint8_t* const p[8], int64_t offset) {
  const __m128i h =
      _mm_setr_epi16(static_cast<int16_t>(LoadU16(p[0] + offset)), static_cast<int16_t>(LoadU16(p[1] + offset)),
                     static_cast<int16_t>(LoadU16(p[2] + offset)), static_cast<int16_t>(LoadU16(p[3] + offset)),
                     static_cast<int16_t>(LoadU16(p[4] + offset)), static_cast<int16_t>(LoadU16(p[5] + offset)),
                     static_cast<int16_t>(LoadU16(p[6] + offset)), static_cast<int16_t>(LoadU16(p[7] + offset)));
  return _mm256_cvtph_ps(h);
}

// Stores the first ROWS lanes of ACC (one output per weight row) to OUT;
// the last tile of a matrix may hold fewer than 8 rows.
HWY_INLINE void StoreRows(float* out, __m256 acc, int rows) {
  if (rows == 8) {
    _mm256_storeu_ps(out, acc);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, acc);
  for (int j = 0; j < rows; ++j) out[j] = tmp[j];
}

#endif  // TANDEM_MATMUL_X86

// Calls FN(row) for rows [0, M): on the pool when there is enough work to
// pay for a wake-up (~2 us), else on the caller (decode: M * K is small).
template <class Fn>
HWY_INLINE void ForEachRow(ThreadPool& pool, int64_t m, int64_t k, const Fn& fn) {
  if (pool.size() == 1 || m < 2 || m * k < (int64_t{1} << 16)) {
    for (int64_t i = 0; i < m; ++i) fn(i);
    return;
  }
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(m, t, nt, &begin, &end);
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

// ---- tile driver ------------------------------------------------------------------
//
// What the quantized kernels read and write: the weight rows, the quantized
// activation rows (scratch), the output. Each kernel derives from it.
struct TileOperands {
  const uint8_t* w;
  size_t row_bytes;
  int64_t w_rows;
  int64_t k;
  const uint8_t* act;
  size_t act_stride;
  float* y;
  int64_t y_stride;
  int64_t packed_rows;  // Matrix::packed_rows and pack_group (kernels/q8_pack.h)
  int64_t pack_group;

  static TileOperands of(const Matrix& m, const detail::ScratchView& s, float* y, int64_t y_stride) {
    return {m.data, m.row_bytes, m.rows, m.cols, s.act, s.act_stride, y, y_stride, m.packed_rows, m.pack_group};
  }

  // Block B of the packed group holding row N0 (N0 < packed_rows;
  // kernels/q8_pack.h), BLOCK_BYTES the format's bytes per row and block.
  const uint8_t* PackedBlock(int64_t n0, int64_t b, int64_t block_bytes) const {
    return w + static_cast<size_t>(n0 - n0 % pack_group) * row_bytes +
           static_cast<size_t>(b * pack_group * block_bytes);
  }

  // Pointers to weight rows N0 .. N0+R-1; missing rows of a ragged tile
  // (ROWS < R) read ZERO_ROW, zeroed here: zero quants and scales, so their
  // lanes stay 0 (they are not stored).
  template <int R>
  void RowPointers(int64_t n0, int rows, uint8_t* zero_row, const uint8_t* (&rp)[R]) const {
    if (rows < R) std::memset(zero_row, 0, row_bytes);
    for (int j = 0; j < R; ++j) rp[j] = j < rows ? w + static_cast<size_t>(n0 + j) * row_bytes : zero_row;
  }

  // The quants (XQ) and block scales (XD) of activation rows M0 .. M0+C-1
  // (QuantizeRowB32 rows).
  template <int C>
  void ActRows(int64_t m0, const uint8_t* xq[C], const float* xd[C]) const {
    for (int c = 0; c < C; ++c) {
      xq[c] = act + static_cast<size_t>(m0 + c) * act_stride;
      xd[c] = reinterpret_cast<const float*>(xq[c] + k);
    }
  }
};
//
// KERN provides kRows, kCols, and
//   void Prepare(int64_t n0, int rows, uint8_t* work) const;
//       unpack weight rows n0 .. n0+rows-1 (rows <= kRows) into WORK
//   template <int C> void Tile(int64_t n0, int rows, int64_t m0, const uint8_t* work) const;
//       Y[m0 .. m0+C-1][n0 .. n0+rows-1] from the prepared rows

template <class Kern, int C>
HWY_INLINE void TileTail(const Kern& kern, int64_t cols, int64_t n0, int rows, int64_t m0, const uint8_t* work) {
  if constexpr (C >= 1) {
    if (cols == C) {
      kern.template Tile<C>(n0, rows, m0, work);
    } else {
      TileTail<Kern, C - 1>(kern, cols, n0, rows, m0, work);
    }
  }
}

// Weight rows [n_begin, n_end) against all M activation rows.
template <class Kern>
HWY_INLINE void RunRows(const Kern& kern, int64_t n_begin, int64_t n_end, int64_t m, uint8_t* work) {
  for (int64_t n0 = n_begin; n0 < n_end; n0 += Kern::kRows) {
    const int rows = static_cast<int>(n_end - n0 < Kern::kRows ? n_end - n0 : Kern::kRows);
    kern.Prepare(n0, rows, work);
    int64_t m0 = 0;
    for (; m0 + Kern::kCols <= m; m0 += Kern::kCols) kern.template Tile<Kern::kCols>(n0, rows, m0, work);
    if (m0 < m) TileTail<Kern, Kern::kCols - 1>(kern, m - m0, n0, rows, m0, work);
  }
}

// Static split of the N weight rows over the pool, in whole tiles.
template <class Kern>
HWY_INLINE void RunAll(const Kern& kern, int64_t n, int64_t m, ThreadPool& pool, const detail::ScratchView& s) {
  const int64_t tiles = (n + Kern::kRows - 1) / Kern::kRows;
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(tiles, t, nt, &begin, &end);
    begin *= Kern::kRows;
    end = end * Kern::kRows < n ? end * Kern::kRows : n;
    RunRows(kern, begin, end, m, s.work + static_cast<size_t>(t) * s.work_stride);
  });
}

// For kernels with one output per register tile entry (R rows x C columns):
// a full tile runs Tile<R, C>, a ragged one row by row (same arithmetic).
template <int R, int C, class Kern>
HWY_INLINE void RowTiles(const Kern& kern, int64_t n0, int rows, int64_t m0, const uint8_t* work) {
  if (rows == R) {
    kern.template TileRc<R, C>(n0, 0, m0, work);
  } else {
    for (int r = 0; r < rows; ++r) kern.template TileRc<1, C>(n0, r, m0, work);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
