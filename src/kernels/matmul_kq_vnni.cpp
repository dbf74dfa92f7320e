// Decode path of the K-quant matmuls (Q4_K, Q5_K, Q6_K; M = 1..4 activation
// rows) on AVX-512 VNNI, bit-identical to matmul_kq.cpp.
//
// matmul_kq.cpp puts weight rows in lanes: each super-block of 8 rows is
// transposed (8 x 4 dword shuffles per 32 quants) and stored to L1 before
// the dot reads it back. At M = 1 that unpacking is most of the work, and
// the kernel's time came close to the time decode waits for memory, so the
// two overlapped badly (Q4_K decode at 63-69% of the bandwidth roofline).
//
// Here the elements stay in lanes, as they come from memory. Per weight row
// and super-block, 128 bytes of Q4_K nibbles are two 512-bit loads and four
// vectors of 64 quants (low / high nibbles); the activations are reordered
// once per call to match (PermuteActQ4K). Per pair of vectors of 64 quants
//
//   t0, t1 = vpdpbusd(0, q, qx)        int32 lane = sum of 4 products, |t| <= 7620
//   I = vpdpwssd(I, vpackssdw(t0, t1), sc)       + t * sc[sub-block of t]
//
// Each t fits int16, so packing is exact, and vpdpwssd adds the two
// products of each int16 pair with its scale: the lanes of I sum to the
// exact int32 S = sum_e sc[e/32] * q_e * qx_e, the integer matmul_kq.cpp
// forms. (Packing halves the vpdpwssd and scale shuffles: M = 1 went from
// 107 to 115 GFLOP/s per thread.)
//
// Rows meet lanes once per super-block: 16 rows' I vectors (16 lanes each)
// are reduced to one vector with row r in lane r (4 levels of shuffle +
// add, ~3 instructions per row), the mins term M = sum_s m[s] * bsum32[s]
// joins at the third level, and the f32 epilogue is the one of
// matmul_kq.cpp on 16 lanes:
//
//   acc = fma(float(S), d * dx, acc);  acc = fnmadd(float(M), dmin * dx, acc)
//
// Same integers, same f32 operations in the same order: same bits. The
// reduction order of the integer sums is free (int32 adds are exact).
// Q6_K (see its section) works the same way with per-16 scales. Q5_K is
// Q4_K with a 5th bit per quant (|t| <= 4 * 31 * 127 = 15748 still packs
// exactly): after the nibble split each byte of a vector of 64 quants
// takes bit 4 from the qh byte of its element (vptestmb + masked add).
//
// Measured (1 thread, thread CPU time, 1024 x 1024 from L2, best of 7):
//   Q4_K M=1  69 -> 115 GFLOP/s, M=2 104 -> 158, M=4 152 -> 180
//   Q6_K M=1  37 ->  80 GFLOP/s, M=2  62 -> 118, M=4 101 -> 128
// (M >= 5 keeps matmul_kq.cpp: at M = 8 it runs at 170 (Q4_K) and 132 (Q6_K)
// GFLOP/s, about what two passes of 4 rows here would give.)
//
// Compiled for AVX-512 VNNI + VBMI without a global -march; called only
// from the AVX3_DL target of matmul_kq.cpp (whose CPU check covers both).
#include "kernels/matmul_internal.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace tandem::kernels::detail {
namespace {
std::atomic<uint64_t> g_calls{0};
}  // namespace
}  // namespace tandem::kernels::detail

#if TANDEM_HAVE_KQ_VNNI_KERNEL

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's `__m512 __Y = __Y;`, see matmul_amx.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#define TANDEM_KQ_INLINE inline __attribute__((always_inline))

namespace tandem::kernels::detail {
namespace {

constexpr int kRows = 16;  // weight rows per tile: one f32 lane each

inline __m512i Zero() { return _mm512_setzero_si512(); }

// ---- the row -> lane reduction -------------------------------------------------
//
// Level l adds pairs of vectors and halves the lanes each row occupies.
// Rows of a tile are processed in groups k = 0..3 of {k, 4+k, 8+k, 12+k},
// so that after level 2 the vector of group k holds row 4L + k in its
// 128-bit lane L, and after level 4 lane r is row r.

// 16 + 16 lanes -> 8 + 8: rows a | b in the 256-bit halves.
inline __m512i Reduce1(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));
}
// halves (a0 | a1), (b0 | b1) -> 128-bit lanes a0, a1, b0, b1.
inline __m512i Reduce2(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i64x2(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
// Per 128-bit lane: 4 + 4 -> dwords (a, a, b, b).
inline __m512i Reduce3(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
// Per 128-bit lane: (a0, a0, a1, a1), (b0, b0, b1, b1) -> (a0, a1, b0, b1).
inline __m512i Reduce4(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
                          _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}

// ---- Q4_K ------------------------------------------------------------------------
//
// Block (144 bytes): d, dmin (f16) | scales[12] | qs[128]; qs byte 32p + i
// holds element 64p + i (low nibble) and 64p + 32 + i (high nibble). A
// 512-bit load of qs bytes 64h .. 64h + 63 gives
//   low nibbles:  elements 128h + [0, 32) and 128h + [64, 96)  (sub-blocks 4h, 4h + 2)
//   high nibbles: elements 128h + [32, 64) and 128h + [96, 128) (sub-blocks 4h + 1, 4h + 3)
// so the activations are stored with the 32-byte pieces of each super-block
// in the order 0 2 1 3 4 6 5 7: vector v = 2h + nibble of the weights
// meets bytes 64v .. 64v + 63 of the permuted row.

// One activation row (Q8_K-style, quantize_act.h) -> permuted quants.
void PermuteActQ4K(const uint8_t* xq, int64_t k, uint8_t* out) {
  static constexpr int kPiece[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int64_t sb = 0; sb < k / 256; ++sb) {
    for (int p = 0; p < 8; ++p) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 256 * sb + 32 * kPiece[p]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 256 * sb + 32 * p), v);
    }
  }
}

// vpermb indices of the scale vectors. The int32 dots t of vectors 2j and
// 2j + 1 of a row are packed into one vector of int16 (vpackssdw; |t| <=
// 7620): per 128-bit lane L, words 0..3 hold t_{2j} of dwords 4L..4L+3 and
// words 4..7 t_{2j+1}. Dwords 0..7 of vector v belong to sub-block
// first(v), 8..15 to first(v) + 2 (see above), so word w of lane L takes
// sc[first(2j + w / 4) + (L >= 2 ? 2 : 0)]; for the row in 128-bit lane R
// of S (ScalesQ4K) that is byte 16 R + the sub-block's byte. Byte 1 of
// each word is zeroed (mask), so the word is the int16 sc.
struct ScaleIndexTable {
  alignas(64) uint8_t idx[4][2][64];
  constexpr ScaleIndexTable() : idx{} {
    constexpr int kFirst[4] = {0, 1, 8, 9};  // byte of sc[4h + nibble] in S, v = 2h + nibble
    for (int row = 0; row < 4; ++row) {
      for (int j = 0; j < 2; ++j) {
        for (int i = 0; i < 64; ++i) {
          const int lane = i / 16, word = i % 16 / 2;
          idx[row][j][i] = static_cast<uint8_t>(16 * row + kFirst[2 * j + word / 4] + (lane >= 2 ? 2 : 0));
        }
      }
    }
  }
};
constexpr ScaleIndexTable kScaleIndex;
constexpr uint64_t kByte0OfWords = 0x5555555555555555ULL;

// Headers (bytes 0..15) of 4 blocks, one per 128-bit lane, dwords
// (d | dmin), u0, u1, u2 -> per lane the bytes sc0..3 | m0..3 | sc4..7 |
// m4..7 (ggml's get_scale_min_k4, as UnpackQ4K in matmul_kq.cpp):
//   sc0..3 = u0 & 0x3f,  m0..3 = u1 & 0x3f,
//   sc4..7 = (u2 & 0x0f) | (u0 >> 6) << 4,  m4..7 = (u2 >> 4 & 0x0f) | (u1 >> 6) << 4
inline __m512i ScalesQ4K(__m512i h) {
  const __m512i u = _mm512_shuffle_epi32(h, _MM_PERM_DDCB);  // u0, u1, u2, u2
  const __m512i shift = _mm512_set4_epi32(4, 0, 0, 0);       // (set4: last argument is dword 0)
  const __m512i keep = _mm512_set4_epi32(0x0f0f0f0f, 0x0f0f0f0f, 0x3f3f3f3f, 0x3f3f3f3f);
  const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(u, shift), keep);
  // (x >> 6 & 3) << 4 of every byte is (x >> 2) & 0x30.
  const __m512i hi = _mm512_srli_epi32(_mm512_shuffle_epi32(h, _MM_PERM_CBAA), 2);  // -, -, u0, u1
  const __m512i mask = _mm512_set4_epi32(0x30303030, 0x30303030, 0, 0);
  return _mm512_ternarylogic_epi32(lo, hi, mask, 0xF8);  // lo | (hi & mask)
}

// Q5_K: the qh bit of each byte of quant vector v (bytes 0..31: sub-block
// first(v), 32..63: first(v) + 2; first = 0, 1, 4, 5), for vptestmb with
// the 32 qh bytes broadcast to both halves.
struct HighBitTable {
  alignas(64) uint8_t bit[4][64];
  constexpr HighBitTable() : bit{} {
    constexpr int kFirst[4] = {0, 1, 4, 5};
    for (int v = 0; v < 4; ++v) {
      for (int i = 0; i < 64; ++i) bit[v][i] = static_cast<uint8_t>(1u << (kFirst[v] + (i >= 32 ? 2 : 0)));
    }
  }
};
constexpr HighBitTable kHighBit;

// Q4_K, or Q5_K with kQ5 (176-byte blocks: the header, qh[32], qs[128]).
template <int C, bool kQ5 = false>
struct Q4KDecode {
  static constexpr size_t kBlock = kQ5 ? 176 : 144;
  int64_t nsb;
  const uint8_t* xperm[C];  // permuted activation quants (PermuteActQ4K)
  const float* xd[C];       // activation scales, one per super-block
  const int16_t* xb32[C];   // activation sums per 32

  // Group k of a tile: rows 4L + k (L = 0..3). Returns per activation row
  // c the S partials with row 4L + k in 128-bit lane L (ISUM) and the
  // mins partials likewise (CORR); H gets the rows' header dword 0.
  TANDEM_KQ_INLINE void Group(const uint8_t* const rows[kRows], size_t off, int k, int64_t sb, __m512i isum[C],
                              __m512i corr[C], __m512i* h_out) const {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    // vpshufb within each 128-bit lane of S: the mins as int16 (m, 0).
    const __m512i min_idx =
        _mm512_broadcast_i32x4(_mm_setr_epi8(4, -1, 5, -1, 6, -1, 7, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    const auto hdr = [&](int lane) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * lane + k] + off));
    };
    __m512i h = _mm512_castsi128_si512(hdr(0));
    h = _mm512_inserti32x4(h, hdr(1), 1);
    h = _mm512_inserti32x4(h, hdr(2), 2);
    h = _mm512_inserti32x4(h, hdr(3), 3);
    *h_out = h;
    const __m512i s = ScalesQ4K(h);
    __m512i a[C], b[C];
    for (int lane = 0; lane < 4; ++lane) {
      const uint8_t* qs = rows[4 * lane + k] + off + (kQ5 ? 48 : 16);
      const __m512i p0 = _mm512_loadu_si512(qs), p1 = _mm512_loadu_si512(qs + 64);
      __m512i q[4] = {_mm512_and_si512(p0, m4), _mm512_and_si512(_mm512_srli_epi16(p0, 4), m4),
                      _mm512_and_si512(p1, m4), _mm512_and_si512(_mm512_srli_epi16(p1, 4), m4)};
      if constexpr (kQ5) {
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs - 32)));
        const __m512i b4 = _mm512_set1_epi8(0x10);
        for (int v = 0; v < 4; ++v) {
          // Bit 4 of a nibble is clear, so adding 16 where the bit is set is the or.
          const __mmask64 set = _mm512_test_epi8_mask(qh, _mm512_load_si512(kHighBit.bit[v]));
          q[v] = _mm512_mask_add_epi8(q[v], set, q[v], b4);
        }
      }
      __m512i r[C];
      for (int c = 0; c < C; ++c) r[c] = Zero();
      for (int j = 0; j < 2; ++j) {
        const __m512i sc = _mm512_maskz_permutexvar_epi8(kByte0OfWords, _mm512_load_si512(kScaleIndex.idx[lane][j]), s);
        for (int c = 0; c < C; ++c) {
          const __m512i x0 = _mm512_loadu_si512(xperm[c] + 256 * sb + 128 * j);
          const __m512i x1 = _mm512_loadu_si512(xperm[c] + 256 * sb + 128 * j + 64);
          const __m512i t = _mm512_packs_epi32(_mm512_dpbusd_epi32(Zero(), q[2 * j], x0),
                                               _mm512_dpbusd_epi32(Zero(), q[2 * j + 1], x1));
          r[c] = _mm512_dpwssd_epi32(r[c], t, sc);
        }
      }
      // Rows of lanes 0, 1 -> halves of a; 2, 3 -> halves of b; a, b -> lanes.
      for (int c = 0; c < C; ++c) {
        if (lane == 0) a[c] = r[c];
        if (lane == 1) a[c] = Reduce1(a[c], r[c]);
        if (lane == 2) b[c] = r[c];
        if (lane == 3) isum[c] = Reduce2(a[c], Reduce1(b[c], r[c]));
      }
    }
    const __m512i mins = _mm512_shuffle_epi8(s, min_idx);
    for (int c = 0; c < C; ++c) {
      const __m512i bs = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb32[c] + 8 * sb)));
      corr[c] = _mm512_dpwssd_epi32(Zero(), mins, bs);
    }
  }

  // acc[c] lane r += super-block SB of ROWS[r] against activation row c.
  TANDEM_KQ_INLINE void SuperBlock(const uint8_t* const rows[kRows], int64_t sb, __m512 acc[C]) const {
    const size_t off = kBlock * static_cast<size_t>(sb);
    __m512i is[C], cs[C], is01[C], cs01[C], h0, h1, h2, h3;
    Group(rows, off, 0, sb, is01, cs01, &h0);
    Group(rows, off, 1, sb, is, cs, &h1);
    for (int c = 0; c < C; ++c) is01[c] = Reduce3(is01[c], is[c]), cs01[c] = Reduce3(cs01[c], cs[c]);
    __m512i is23[C], cs23[C];
    Group(rows, off, 2, sb, is23, cs23, &h2);
    Group(rows, off, 3, sb, is, cs, &h3);
    // (d | dmin) of row 4L + k -> lane 4L + k.
    const __m512i dd = _mm512_unpacklo_epi64(_mm512_unpacklo_epi32(h0, h1), _mm512_unpacklo_epi32(h2, h3));
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
    for (int c = 0; c < C; ++c) {
      const __m512i isum = Reduce4(is01[c], Reduce3(is23[c], is[c]));
      const __m512i corr = Reduce4(cs01[c], Reduce3(cs23[c], cs[c]));
      const __m512 dx = _mm512_set1_ps(xd[c][sb]);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, dx), acc[c]);
      acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(corr), _mm512_mul_ps(dmin, dx), acc[c]);
    }
  }

  // Setup for a thread: activation rows c < C from S.act into WORK.
  void Setup(const ScratchView& s, int64_t k, uint8_t* work) {
    nsb = k / 256;
    for (int c = 0; c < C; ++c) {
      const uint8_t* xq = s.act + static_cast<size_t>(c) * s.act_stride;
      uint8_t* xp = work + static_cast<size_t>(c * k);
      PermuteActQ4K(xq, k, xp);
      xperm[c] = xp;
      xd[c] = reinterpret_cast<const float*>(xq + k);
      xb32[c] = reinterpret_cast<const int16_t*>(xq + k + 4 * nsb) + k / 16;
    }
  }
};

// ---- Q6_K ------------------------------------------------------------------------
//
// Block (210 bytes): ql[128] | qh[64] | scales int8[16] (per 16) | d (f16).
// Per half h of 128 elements, ql bytes 64h + i (i < 64) hold element
// 128h + i (low nibble) and 128h + 64 + i (high nibble), and qh byte 32h + l
// (l < 32) the high 2 bits of elements 128h + l, +32, +64, +96 (bits 0-1,
// 2-3, 4-5, 6-7). So vector v = 2h + nibble of 64 quants covers elements
// 64v .. 64v + 63 in order (the activations need no permutation), built
// from one ql load and the 32 qh bytes broadcast to both 256-bit halves:
//   v = 2h:     (ql & 15) | (qh << 4 & 0x30) (bytes < 32), (qh << 2 & 0x30) (>= 32)
//   v = 2h + 1: (ql >> 4 & 15) | (qh & 0x30) (< 32),      (qh >> 2 & 0x30) (>= 32)
// The offset -32 goes into the dot's accumulator: t = vpdpbusd(-32 * (sum
// of the 4 qx), q, qx) = sum of (q - 32) * qx, |t| <= 4 * 32 * 127, so
// sum_lanes sc * t is exactly S - 32 * sum_s sc[s] * bsum16[s], the
// integer matmul_kq.cpp forms.

// One activation row -> per 4 quants the int32 -32 * their sum (K bytes).
void OffsetsQ6K(const uint8_t* xq, int64_t k, uint8_t* out) {
  const __m512i w32 = _mm512_set1_epi8(32);
  for (int64_t i = 0; i < k; i += 64) {
    const __m512i sum32 = _mm512_dpbusd_epi32(Zero(), w32, _mm512_loadu_si512(xq + i));
    _mm512_storeu_si512(out + i, _mm512_sub_epi32(Zero(), sum32));
  }
}

// vpermw indices of the scale vectors (as kScaleIndex for Q4_K): word w of
// 128-bit lane L of the packed dots of vectors 2j, 2j + 1 belongs to
// sub-block 4 (2j + w / 4) + L; the 16 sign-extended scales of the row in
// 128-bit lane R of S sit at words 16 (R % 2) .. of S's half R / 2.
struct ScaleIndexTable6 {
  alignas(64) uint16_t idx[2][2][32];
  constexpr ScaleIndexTable6() : idx{} {
    for (int row = 0; row < 2; ++row) {
      for (int j = 0; j < 2; ++j) {
        for (int i = 0; i < 32; ++i) {
          const int lane = i / 8, word = i % 8;
          idx[row][j][i] = static_cast<uint16_t>(16 * row + 4 * (2 * j + word / 4) + lane);
        }
      }
    }
  }
};
constexpr ScaleIndexTable6 kScaleIndex6;

template <int C>
struct Q6KDecode {
  static constexpr size_t kBlock = 210;
  int64_t nsb;
  const uint8_t* xq[C];  // activation quants
  const float* xd[C];    // activation scales, one per super-block
  const uint8_t* xo[C];  // -32 * sums of 4 quants (OffsetsQ6K)

  // Group k of a tile (rows 4L + k): S partials with row 4L + k in 128-bit lane L.
  TANDEM_KQ_INLINE void Group(const uint8_t* const rows[kRows], size_t off, int k, int64_t sb, __m512i isum[C]) const {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    const __m512i shl = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                         0x0004000400040004, 0x0004000400040004, 0x0004000400040004,
                                         0x0004000400040004);  // words: 4 (bytes < 32), 2
    const __m512i shr = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                         0, 0, 0, 0);  // words: 0, 2
    const auto scales = [&](int lane) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[4 * lane + k] + off + 192));
    };
    __m512i sr = _mm512_castsi128_si512(scales(0));
    sr = _mm512_inserti32x4(sr, scales(1), 1);
    sr = _mm512_inserti32x4(sr, scales(2), 2);
    sr = _mm512_inserti32x4(sr, scales(3), 3);
    const __m512i sw[2] = {_mm512_cvtepi8_epi16(_mm512_castsi512_si256(sr)),
                           _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(sr, 1))};
    __m512i a[C], b[C];
    for (int lane = 0; lane < 4; ++lane) {
      const uint8_t* blk = rows[4 * lane + k] + off;
      __m512i q[4];
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(blk + 64 * h);
        const __m512i qh =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h)));
        // (a & c) | b: imm 0xEC with a = ql, b = the high bits, c = 0x0f.
        q[2 * h] = _mm512_ternarylogic_epi32(ql, _mm512_and_si512(_mm512_sllv_epi16(qh, shl), m2), m4, 0xEC);
        q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4),
                                                 _mm512_and_si512(_mm512_srlv_epi16(qh, shr), m2), m4, 0xEC);
      }
      __m512i r[C];
      for (int c = 0; c < C; ++c) r[c] = Zero();
      for (int j = 0; j < 2; ++j) {
        const __m512i sc = _mm512_permutexvar_epi16(_mm512_load_si512(kScaleIndex6.idx[lane % 2][j]), sw[lane / 2]);
        for (int c = 0; c < C; ++c) {
          const size_t at = 256 * static_cast<size_t>(sb) + 128 * static_cast<size_t>(j);
          const __m512i t0 =
              _mm512_dpbusd_epi32(_mm512_loadu_si512(xo[c] + at), q[2 * j], _mm512_loadu_si512(xq[c] + at));
          const __m512i t1 = _mm512_dpbusd_epi32(_mm512_loadu_si512(xo[c] + at + 64), q[2 * j + 1],
                                                 _mm512_loadu_si512(xq[c] + at + 64));
          r[c] = _mm512_dpwssd_epi32(r[c], _mm512_packs_epi32(t0, t1), sc);
        }
      }
      for (int c = 0; c < C; ++c) {  // as in Q4KDecode::Group
        if (lane == 0) a[c] = r[c];
        if (lane == 1) a[c] = Reduce1(a[c], r[c]);
        if (lane == 2) b[c] = r[c];
        if (lane == 3) isum[c] = Reduce2(a[c], Reduce1(b[c], r[c]));
      }
    }
  }

  TANDEM_KQ_INLINE void SuperBlock(const uint8_t* const rows[kRows], int64_t sb, __m512 acc[C]) const {
    const size_t off = kBlock * static_cast<size_t>(sb);
    __m512i is[C], is01[C], is23[C];
    Group(rows, off, 0, sb, is01);
    Group(rows, off, 1, sb, is);
    for (int c = 0; c < C; ++c) is01[c] = Reduce3(is01[c], is[c]);
    Group(rows, off, 2, sb, is23);
    Group(rows, off, 3, sb, is);
    // d of row r -> lane r: dwords at block byte 206 (sc14, sc15, d), gathered
    // from the row pointers.
    const __m512i p0 = _mm512_loadu_si512(reinterpret_cast<const void*>(rows));
    const __m512i p1 = _mm512_loadu_si512(reinterpret_cast<const void*>(rows + 8));
    const void* base = reinterpret_cast<const void*>(static_cast<uintptr_t>(off + 206));
    const __m512i g = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_i64gather_epi32(p0, base, 1)),
                                         _mm512_i64gather_epi32(p1, base, 1), 1);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
    for (int c = 0; c < C; ++c) {
      const __m512i isum = Reduce4(is01[c], Reduce3(is23[c], is[c]));
      const __m512 dx = _mm512_set1_ps(xd[c][sb]);
      acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, dx), acc[c]);
    }
  }

  void Setup(const ScratchView& s, int64_t k, uint8_t* work) {
    nsb = k / 256;
    for (int c = 0; c < C; ++c) {
      xq[c] = s.act + static_cast<size_t>(c) * s.act_stride;
      uint8_t* xp = work + static_cast<size_t>(c * k);
      OffsetsQ6K(xq[c], k, xp);
      xo[c] = xp;
      xd[c] = reinterpret_cast<const float*>(xq[c] + k);
    }
  }
};

// Y[c][0 .. N_ROWS) for a tile of KERN. NEXT (or null): the next tile's
// first row, NEXT_ROWS rows ROW_BYTES apart, prefetched along the way.
template <int C, class Kern>
void Tile(const Kern& kern, const uint8_t* const rows[kRows], int n_rows, float* const y[C], const uint8_t* next,
          int next_rows, size_t row_bytes) {
  __m512 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < kern.nsb; ++sb) {
    // The super-block of the next tile's rows that the next tile will read
    // at this step: the prefetches mirror the demand loads one tile later.
    // Streaming Q4_K from DRAM, M = 1, 2 threads, pure reads 21-23 GB/s:
    //   1024 x 3072: 18.5 GB/s with the next tile's bytes prefetched in
    //     address order (the first version), 21.6 mirrored;
    //   3072 x 1024: 19.2 -> 22.5. matmul_bench down, M = 4: Q4_K 176 ->
    //     293 GFLOP/s, Q6_K 109 -> 193. Two tiles ahead was worse. Into
    //     L2 (T1) rather than L1, which keeps the activations and this tile:
    //     3072 x 1024 M = 1, 2: 20.9-21.5 / 19.8-21.2 GB/s vs T0's
    //     19.7-20.8 / 18.4-19.6; 1024 x 3072 the same.
    if (next != nullptr) {
      for (int r = 0; r < next_rows; ++r) {
        const uintptr_t begin = reinterpret_cast<uintptr_t>(next + r * row_bytes + Kern::kBlock * sb);
        for (uintptr_t p = begin & ~uintptr_t{63}; p < begin + Kern::kBlock; p += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
        }
      }
    }
    kern.SuperBlock(rows, sb, acc);
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << n_rows) - 1);
  for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(y[c], keep, acc[c]);
}

// All N rows of W against the C activation rows in S.act, on the pool in
// whole tiles of 16 rows.
template <int C, class Kern>
void Run(const Matrix& w, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s) {
  const int64_t k = w.cols, n = w.rows;
  const int64_t tiles = (n + kRows - 1) / kRows;
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(tiles, t, nt, &begin, &end);
    if (begin == end) return;
    // Work area: C prepared activation rows (K bytes each) | a zero row for
    // ragged tiles (<= 210 K / 256 bytes): inside work_bytes(K) (>= 12 K).
    uint8_t* work = s.work + static_cast<size_t>(t) * s.work_stride;
    Kern kern;
    kern.Setup(s, k, work);
    uint8_t* zero_row = work + static_cast<size_t>(C * k);
    if (end * kRows > n) std::memset(zero_row, 0, w.row_bytes);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t n0 = tile * kRows;
      const int n_rows = static_cast<int>(n - n0 < kRows ? n - n0 : kRows);
      const uint8_t* rows[kRows];
      for (int j = 0; j < kRows; ++j)
        rows[j] = j < n_rows ? w.data + static_cast<size_t>(n0 + j) * w.row_bytes : zero_row;
      float* out[C];
      for (int c = 0; c < C; ++c) out[c] = y + c * y_stride + n0;
      const int64_t next_rows = n - n0 - kRows < kRows ? n - n0 - kRows : kRows;
      Tile<C>(kern, rows, n_rows, out, next_rows > 0 ? rows[0] + kRows * w.row_bytes : nullptr,
              static_cast<int>(next_rows), w.row_bytes);
    }
  });
}

template <int C>
void RunType(const Matrix& w, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s) {
  if (w.type == gguf::TensorType::Q6_K) {
    Run<C, Q6KDecode<C>>(w, y, y_stride, pool, s);
  } else if (w.type == gguf::TensorType::Q5_K) {
    Run<C, Q4KDecode<C, true>>(w, y, y_stride, pool, s);
  } else {
    Run<C, Q4KDecode<C>>(w, y, y_stride, pool, s);
  }
}

}  // namespace

bool matmul_kq_vnni(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s) {
  const bool kq =
      w.type == gguf::TensorType::Q4_K || w.type == gguf::TensorType::Q5_K || w.type == gguf::TensorType::Q6_K;
  if (!kq_vnni_enabled() || !kq || m < 1 || m > kKqVnniMaxRows) return false;
  switch (m) {
    case 1: RunType<1>(w, y, y_stride, pool, s); break;
    case 2: RunType<2>(w, y, y_stride, pool, s); break;
    case 3: RunType<3>(w, y, y_stride, pool, s); break;
    default: RunType<4>(w, y, y_stride, pool, s); break;
  }
  g_calls.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace tandem::kernels::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // !TANDEM_HAVE_KQ_VNNI_KERNEL

namespace tandem::kernels::detail {
bool matmul_kq_vnni(const Matrix&, int64_t, float*, int64_t, ThreadPool&, const ScratchView&) { return false; }
}  // namespace tandem::kernels::detail

#endif  // TANDEM_HAVE_KQ_VNNI_KERNEL

namespace tandem::kernels::detail {
namespace {
// TANDEM_NO_KQ_VNNI=1 (any value but "0") starts with the path off, for A/B runs.
bool enabled_at_start() {
  const char* v = std::getenv("TANDEM_NO_KQ_VNNI");
  return v == nullptr || std::strcmp(v, "0") == 0;
}
std::atomic<bool> g_enabled{enabled_at_start()};
}  // namespace
bool kq_vnni_enabled() { return g_enabled.load(std::memory_order_relaxed); }
void set_kq_vnni_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
uint64_t kq_vnni_call_count() { return g_calls.load(std::memory_order_relaxed); }
}  // namespace tandem::kernels::detail
