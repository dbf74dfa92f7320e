// Q4_K, Q5_K and Q6_K weights x int8 activations (one scale per 256, quantize_act.h).
//
// A super-block of 256 weights carries 6/8-bit sub-block scales on top of
// one f16 scale d (and dmin for Q4_K's and Q5_K's mins):
//
//   Q4_K: w = d * sc[e/32] * q - dmin * m[e/32],   q in 0..15
//   Q5_K: the same with q in 0..31 (a 5th bit per quant in qh)
//   Q6_K: w = d * sc[e/16] * (q - 32),             q in 0..63, sc int8
//
// so against activations x = dx * qx (qx int8) one super-block contributes
//
//   Q4_K, Q5_K: dx * (d * S - dmin * sum_s m[s] * bsum32[s])
//   Q6_K: dx * d * (S - 32 * sum_s sc[s] * bsum16[s])
//   with S = sum_e scale(e) * q_e * qx_e          (exact int32)
//
// Rows in lanes, as in matmul_q8.cpp: a tile is 8 weight rows, int32 /
// f32 lane j is row j, and each super-block is unpacked to 64 vectors of
// 4 quants per row (q unsigned, so vpmaddubsw(q, qx) needs no sign trick).
// Products of 4 quants fit int16 loosely: Q4_K pairs are <= 2 * 15 * 127 =
// 3810, so a whole sub-block of 32 (8 groups) sums to <= 30480 in int16
// before one vpmaddwd with the 8 rows' sub-block scales; Q5_K pairs are
// <= 7874, so 4 groups (31496); Q6_K pairs are <= 16002, so 2 groups sum
// before the vpmaddwd. Each lane ends with the
// exact int32 totals of its row; one (Q6_K) or two (Q4_K) f32 roundings per
// super-block follow. Every output has the same bits whatever its lane,
// tile, M or target (no VNNI here: vpdpbusd cannot apply per-16 scales).
// Decode (M <= 4) on AVX3_DL takes matmul_kq_vnni.cpp instead, which
// keeps elements in lanes: there a vpdpbusd lane is 4 quants of one
// sub-block, so the scales apply per lane after it (same integers).
//
// Unpacked super-block of 8 rows (kPrepSuperBlockBytes = 2880):
//   q[64] (32 B each) | sc[16] int16 pairs per lane | corr[8] int16 pairs |
//   d[8] f32 | dmin[8] f32
// Q4_K and Q5_K use sc[0..7] (per 32) and corr[0..3] = (m[2t], m[2t+1]); Q6_K
// sc[0..15] (per 16) and corr[0..7] = (sc[2t], sc[2t+1]).
// Decode unpacks one super-block at a time into an L1 buffer and uses it at
// once; bigger batches unpack the whole tile once and reuse it per pass.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // compile the AVX-512 VNNI target (off by default in Highway 1.0.3)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_kq.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/amx.h"
#include "kernels/matmul-inl.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni,no-avxvnni")  // see matmul-inl.h
#endif
namespace tandem::kernels {
namespace HWY_NAMESPACE {

#if TANDEM_MATMUL_X86

constexpr int kLanes = 8;
constexpr size_t kSbBytes = detail::kPrepSuperBlockBytes;

enum class Kq { kQ4, kQ5, kQ6 };  // Q4_K, Q5_K, Q6_K
constexpr size_t kOffSc = 2048, kOffCorr = 2560, kOffD = 2816, kOffDmin = 2848;

// vpshufb indices per dword p (0..3 of each 128-bit half): bytes
// (4p + A, 4p + B, 4p + C, 4p + D); values >= 0x80 give zero.
HWY_INLINE __m256i DwordShuffle(int a, int b, int c, int d) {
  const auto byte = [](int p, int v) { return static_cast<char>(v >= 0x80 ? 0x80 : 4 * p + v); };
  return _mm256_setr_epi8(byte(0, a), byte(0, b), byte(0, c), byte(0, d), byte(1, a), byte(1, b), byte(1, c),
                          byte(1, d), byte(2, a), byte(2, b), byte(2, c), byte(2, d), byte(3, a), byte(3, b),
                          byte(3, c), byte(3, d), byte(0, a), byte(0, b), byte(0, c), byte(0, d), byte(1, a),
                          byte(1, b), byte(1, c), byte(1, d), byte(2, a), byte(2, b), byte(2, c), byte(2, d),
                          byte(3, a), byte(3, b), byte(3, c), byte(3, d));
}

// Bit B of every byte of V moved to bit 4 (the other bits cleared).
HWY_INLINE __m256i Bit4(__m256i v, int b) {
  // 16-bit shifts: what crosses into the other byte lands outside bit 4.
  const __m256i moved =
      b < 4 ? _mm256_sll_epi16(v, _mm_cvtsi32_si128(4 - b)) : _mm256_srl_epi16(v, _mm_cvtsi32_si128(b - 4));
  return _mm256_and_si256(moved, _mm256_set1_epi8(0x10));
}

// Q4_K block (144 bytes): d, dmin (f16), scales[12], qs[128]. Q5_K (Q5,
// 176 bytes) has qh[32] between the scales and qs: bit j of qh[e % 32] is
// the 5th bit of element e of sub-block j.
template <bool kQ5>
HWY_INLINE void UnpackQ4K(const uint8_t* const blk[kLanes], uint8_t* out) {
  // Header bytes 0..15 of each row, transposed: h[0] lane j = (d, dmin),
  // h[1..3] = scale words u0, u1, u2 of row j.
  __m256i hv[4], h[4];
  for (int j = 0; j < 4; ++j) hv[j] = Load2x128(blk[j], blk[j + 4]);
  Transpose4x4(hv, h);
  // ggml's kmask shuffle of 8 6-bit scales + 8 mins (see scale_min_k4 in
  // gguf/quant_k.cpp), on 8 rows at once: bytes of sc0..3 | sc4..7 | m0..3 | m4..7.
  const __m256i k1 = _mm256_set1_epi32(0x3f3f3f3f), k2 = _mm256_set1_epi32(0x0f0f0f0f),
                k3 = _mm256_set1_epi32(0x03030303);
  const __m256i sc_lo = _mm256_and_si256(h[1], k1);
  const __m256i m_lo = _mm256_and_si256(h[2], k1);
  const __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(h[3], k2),
                                        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h[1], 6), k3), 4));
  const __m256i m_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(h[3], 4), k2),
                                       _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h[2], 6), k3), 4));
  for (int s = 0; s < 4; ++s) {
    const __m256i idx = DwordShuffle(s, 0x80, s, 0x80);  // int16 pair (sc, sc)
    StoreI(out + kOffSc + 32 * s, _mm256_shuffle_epi8(sc_lo, idx));
    StoreI(out + kOffSc + 32 * (s + 4), _mm256_shuffle_epi8(sc_hi, idx));
  }
  for (int t = 0; t < 2; ++t) {
    const __m256i idx = DwordShuffle(2 * t, 0x80, 2 * t + 1, 0x80);  // int16 pair (m[2t], m[2t+1])
    StoreI(out + kOffCorr + 32 * t, _mm256_shuffle_epi8(m_lo, idx));
    StoreI(out + kOffCorr + 32 * (t + 2), _mm256_shuffle_epi8(m_hi, idx));
  }
  // d and dmin halves of h[0] -> 8 + 8 f16 -> f32.
  const __m256i dd = _mm256_permute4x64_epi64(
      _mm256_shuffle_epi8(h[0], _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9,
                                                 12, 13, 2, 3, 6, 7, 10, 11, 14, 15)),
      0xd8);  // d0..3 d4..7 | dmin0..3 dmin4..7
  _mm256_storeu_ps(reinterpret_cast<float*>(out + kOffD), _mm256_cvtph_ps(_mm256_castsi256_si128(dd)));
  _mm256_storeu_ps(reinterpret_cast<float*>(out + kOffDmin), _mm256_cvtph_ps(_mm256_extracti128_si256(dd, 1)));
  // Quants: bytes 32p..32p+31 hold elements 64p + i (low nibble) and
  // 64p + 32 + i (high nibble). The packed bytes are transposed first and
  // split into nibbles after: one transpose per 8 groups instead of two
  // (the shuffles are what limits decode, M = 1..4).
  // Q5_K: element 64p + 16 half + 4i + b takes bit 2p of qh[16 half + 4i
  // + b], element + 32 bit 2p + 1: the qh bytes transpose like the quants.
  constexpr int kQs = kQ5 ? 48 : 16;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i th[2][4];
  if constexpr (kQ5) {
    for (int half = 0; half < 2; ++half) {
      __m256i v[4];
      for (int j = 0; j < 4; ++j) v[j] = Load2x128(blk[j] + 16 + 16 * half, blk[j + 4] + 16 + 16 * half);
      Transpose4x4(v, th[half]);
    }
  }
  for (int p = 0; p < 4; ++p) {
    for (int half = 0; half < 2; ++half) {  // bytes 0..15, 16..31
      __m256i v[4], t[4];
      for (int j = 0; j < 4; ++j) {
        v[j] = Load2x128(blk[j] + kQs + 32 * p + 16 * half, blk[j + 4] + kQs + 32 * p + 16 * half);
      }
      Transpose4x4(v, t);
      const int g = 16 * p + 4 * half;
      for (int i = 0; i < 4; ++i) {
        __m256i lo = _mm256_and_si256(t[i], m4), hi = _mm256_and_si256(_mm256_srli_epi16(t[i], 4), m4);
        if constexpr (kQ5) {
          lo = _mm256_or_si256(lo, Bit4(th[half][i], 2 * p));
          hi = _mm256_or_si256(hi, Bit4(th[half][i], 2 * p + 1));
        }
        StoreI(out + 32 * (g + i), lo);
        StoreI(out + 32 * (g + 8 + i), hi);
      }
    }
  }
}

// Q6_K block (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits),
// scales int8[16], d (f16). Per half of 128 elements, quant l of each 32:
//   e = l:      ql[l] & 15    | (qh[l] & 3) << 4
//   e = l + 32: ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4
//   e = l + 64: ql[l] >> 4    | (qh[l] >> 4 & 3) << 4
//   e = l + 96: ql[l+32] >> 4 | (qh[l] >> 6) << 4
HWY_INLINE void UnpackQ6K(const uint8_t* const blk[kLanes], uint8_t* out) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    for (int half = 0; half < 2; ++half) {  // l in 0..15, 16..31
      // The packed bytes are transposed first (3 transposes instead of 4
      // for the unpacked ones); the bit operations below act within bytes,
      // so they commute with moving whole dwords.
      __m256i ql0[4], ql1[4], qh[4], t0[4], t1[4], th[4];
      for (int j = 0; j < 4; ++j) {
        const int o = 16 * half;
        ql0[j] = Load2x128(blk[j] + 64 * h + o, blk[j + 4] + 64 * h + o);
        ql1[j] = Load2x128(blk[j] + 64 * h + 32 + o, blk[j + 4] + 64 * h + 32 + o);
        qh[j] = Load2x128(blk[j] + 128 + 32 * h + o, blk[j + 4] + 128 + 32 * h + o);
      }
      Transpose4x4(ql0, t0);
      Transpose4x4(ql1, t1);
      Transpose4x4(qh, th);
      const int g = 32 * h + 4 * half;  // group of element 128h + 16 half
      for (int i = 0; i < 4; ++i) {
        // 16-bit shifts move bits across bytes; the masks keep the wanted ones.
        const __m256i a = t0[i], b = t1[i], q = th[i];
        StoreI(out + 32 * (g + i),
               _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(q, 4), m2)));
        StoreI(out + 32 * (g + 8 + i),
               _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(q, 2), m2)));
        StoreI(out + 32 * (g + 16 + i),
               _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(q, m2)));
        StoreI(out + 32 * (g + 24 + i), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4),
                                                        _mm256_and_si256(_mm256_srli_epi16(q, 2), m2)));
      }
    }
  }
  // Scales: t[k] lane j = bytes sc[4k..4k+3] of row j. An int8 moved to the
  // high byte of an int16 and shifted right arithmetically is sign-extended.
  __m256i sv[4], t[4];
  for (int j = 0; j < 4; ++j) sv[j] = Load2x128(blk[j] + 192, blk[j + 4] + 192);
  Transpose4x4(sv, t);
  for (int s = 0; s < 16; ++s) {
    const __m256i pair = _mm256_shuffle_epi8(t[s / 4], DwordShuffle(0x80, s % 4, 0x80, s % 4));
    StoreI(out + kOffSc + 32 * s, _mm256_srai_epi16(pair, 8));
  }
  for (int p = 0; p < 8; ++p) {
    const int i = 2 * (p % 2);
    const __m256i pair = _mm256_shuffle_epi8(t[p / 2], DwordShuffle(0x80, i, 0x80, i + 1));
    StoreI(out + kOffCorr + 32 * p, _mm256_srai_epi16(pair, 8));
  }
  _mm256_storeu_ps(reinterpret_cast<float*>(out + kOffD), GatherF16(blk, 208));
  _mm256_storeu_ps(reinterpret_cast<float*>(out + kOffDmin), _mm256_setzero_ps());
}

// ACC[c] += this super-block's contribution for activation rows XQ[c].
// PF (may be null): PF_BYTES of the next tile to prefetch along the way.
template <Kq F, int C>
HWY_INLINE void DotSuperBlock(const uint8_t* in, const uint8_t* const xq[C], const float* const xd[C],
                              const int16_t* const xb[C], int64_t sb, __m256 acc[C], const uint8_t* pf,
                              size_t pf_bytes) {
  constexpr bool kQ6 = F == Kq::kQ6;
  __m256i isum[C], corr[C];
  for (int c = 0; c < C; ++c) isum[c] = corr[c] = _mm256_setzero_si256();
  constexpr int kGroupsPerSum = kQ6 ? 2 : F == Kq::kQ5 ? 4 : 8;  // int16 headroom, see the top
  constexpr int kGroupsPerScale = kQ6 ? 4 : 8;
  for (int g0 = 0; g0 < 64; g0 += kGroupsPerSum) {
    PrefetchSlice(pf, pf_bytes, g0 / kGroupsPerSum, 64 / kGroupsPerSum);
    const __m256i sc = LoadI(in + kOffSc + 32 * (g0 / kGroupsPerScale));
    __m256i s16[C];
    for (int c = 0; c < C; ++c) s16[c] = _mm256_setzero_si256();
    for (int g = g0; g < g0 + kGroupsPerSum; ++g) {
      const __m256i q = LoadI(in + 32 * g);
      for (int c = 0; c < C; ++c) {
        s16[c] = Chain(_mm256_add_epi16(s16[c], _mm256_maddubs_epi16(q, Broadcast4(xq[c] + 256 * sb + 4 * g))));
      }
    }
    for (int c = 0; c < C; ++c) isum[c] = Chain(_mm256_add_epi32(isum[c], _mm256_madd_epi16(s16[c], sc)));
  }
  // Correction: pairs of (min or scale) x pairs of activation sums.
  constexpr int kPairs = kQ6 ? 8 : 4;
  for (int p = 0; p < kPairs; ++p) {
    const __m256i cw = LoadI(in + kOffCorr + 32 * p);
    for (int c = 0; c < C; ++c) {
      const int16_t* pair = kQ6 ? xb[c] + 16 * sb + 2 * p : xb[c] + 8 * sb + 2 * p;
      const __m256i bs = Broadcast4(reinterpret_cast<const uint8_t*>(pair));
      corr[c] = Chain(_mm256_add_epi32(corr[c], _mm256_madd_epi16(cw, bs)));
    }
  }
  const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(in + kOffD));
  const __m256 dmin = _mm256_loadu_ps(reinterpret_cast<const float*>(in + kOffDmin));
  for (int c = 0; c < C; ++c) {
    const __m256 dx = _mm256_broadcast_ss(xd[c] + sb);
    if constexpr (kQ6) {
      const __m256i s = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(corr[c], 5));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, dx), acc[c]);
    } else {
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, dx), acc[c]);
      acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(corr[c]), _mm256_mul_ps(dmin, dx), acc[c]);
    }
  }
}

template <Kq F, bool kDirect>
struct KqKern : TileOperands {
  static constexpr bool kQ6 = F == Kq::kQ6;
  static constexpr int kRows = kLanes;
  // Registers: C int32 sums + C int16 sums + C f32 accumulators + q + sc.
  static constexpr int kCols = kWideRegs ? 8 : 4;
  static constexpr int64_t kBlockBytes = kQ6 ? 210 : F == Kq::kQ5 ? 176 : 144;

  void UnpackSuperBlock(const uint8_t* const rp[kLanes], int64_t sb, uint8_t* out) const {
    const uint8_t* blk[kLanes];
    for (int j = 0; j < kLanes; ++j) blk[j] = rp[j] + kBlockBytes * sb;
    if constexpr (kQ6) {
      UnpackQ6K(blk, out);
    } else {
      UnpackQ4K<F == Kq::kQ5>(blk, out);
    }
  }

  // Work area: [unpacked super-blocks (prepared) or one (direct)] | zero row.
  uint8_t* ZeroRow(uint8_t* work) const { return work + (kDirect ? 1 : k / 256) * kSbBytes; }

  void Prepare(int64_t n0, int rows, uint8_t* work) const {
    if constexpr (kDirect) return;
    const uint8_t* rp[kLanes];
    RowPointers(n0, rows, ZeroRow(work), rp);
    for (int64_t sb = 0; sb < k / 256; ++sb) UnpackSuperBlock(rp, sb, work + sb * kSbBytes);
  }

  template <int C>
  void Tile(int64_t n0, int rows, int64_t m0, const uint8_t* work) const {
    const int64_t nsb = k / 256;
    const uint8_t* xq[C];
    const float* xd[C];
    const int16_t* xb[C];
    for (int c = 0; c < C; ++c) {
      xq[c] = act + static_cast<size_t>(m0 + c) * act_stride;
      xd[c] = reinterpret_cast<const float*>(xq[c] + k);
      xb[c] = reinterpret_cast<const int16_t*>(xq[c] + k + 4 * nsb);
      if constexpr (!kQ6) xb[c] += k / 16;  // bsum32
    }
    const uint8_t* rp[kLanes];
    uint8_t* buf = const_cast<uint8_t*>(work);
    if constexpr (kDirect) RowPointers(n0, rows, ZeroRow(buf), rp);
    // Fetch the next tile during the first pass (see matmul_q8.cpp).
    const uint8_t* next =
        m0 == 0 && n0 + 2 * kLanes <= w_rows ? w + static_cast<size_t>(n0 + kLanes) * row_bytes : nullptr;
    const size_t pf_step = kLanes * kBlockBytes;
    __m256 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* in;
      if constexpr (kDirect) {
        UnpackSuperBlock(rp, sb, buf);
        in = buf;
      } else {
        in = work + sb * kSbBytes;
      }
      DotSuperBlock<F, C>(in, xq, xd, xb, sb, acc, next == nullptr ? nullptr : next + sb * pf_step, pf_step);
    }
    for (int c = 0; c < C; ++c) {
      float* out = y + (m0 + c) * y_stride + n0;
      StoreRows(out, acc[c], rows);
    }
  }
};

template <Kq F, bool kDirect>
void RunKq(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const detail::ScratchView& s) {
  RunAll(KqKern<F, kDirect>{TileOperands::of(w, s, y, y_stride)}, w.rows, m, pool, s);
}

#endif  // TANDEM_MATMUL_X86

bool MatmulKq(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
              ThreadPool& pool, const detail::ScratchView& s) {
#if TANDEM_MATMUL_X86
  const int64_t k = w.cols;
  ForEachRow(pool, m, k, [&](int64_t i) { QuantizeRowB256(x + i * x_stride, k, s.act + i * s.act_stride); });
  // Batches on the AMX tile unit (matmul_amx_kq.cpp): the same bits as the
  // kernel below, from the same quantized rows.
  if (s.panels != nullptr && amx_use(w.type, m) && detail::matmul_kq_amx(w, m, y, y_stride, pool, s)) return true;
#if HWY_TARGET == HWY_AVX3_DL
  // Decode (M <= 4) with the elements in lanes (matmul_kq_vnni.cpp): the
  // same bits without the per-call transposes.
  if (detail::matmul_kq_vnni(w, m, y, y_stride, pool, s)) return true;
#endif
  const bool direct = m <= KqKern<Kq::kQ4, true>::kCols;
  auto run = [&]<Kq F>() {
    direct ? RunKq<F, true>(w, m, y, y_stride, pool, s) : RunKq<F, false>(w, m, y, y_stride, pool, s);
  };
  switch (w.type) {
    case gguf::TensorType::Q6_K: run.template operator()<Kq::kQ6>(); break;
    case gguf::TensorType::Q5_K: run.template operator()<Kq::kQ5>(); break;
    default: run.template operator()<Kq::kQ4>(); break;
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

HWY_EXPORT(MatmulKq);

namespace detail {
bool matmul_kq(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
               ThreadPool& pool, const ScratchView& s) {
  return HWY_DYNAMIC_DISPATCH(MatmulKq)(w, x, m, x_stride, y, y_stride, pool, s);
}
}  // namespace detail

}  // namespace tandem::kernels
#endif
