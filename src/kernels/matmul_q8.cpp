// Q8_0, Q4_0 and MXFP4 weights x int8 activations (blocks of 32, quantize_act.h).
//
// Rows in lanes: a tile is 8 weight rows, and int32 / f32 lane j of every
// vector belongs to row j. Each block of the 8 rows is transposed into 8
// vectors, one per group of 4 quants:
//
//   V[g] = | row 0: q[4g..4g+3] | row 1: q[4g..4g+3] | ... | row 7: q[4g..4g+3] |
//
// and multiplied with the activation's 4 quants of group g broadcast to all
// lanes, so one int8 dot instruction serves 8 rows and the 8 groups add up
// to each row's exact int32 block total in its own lane. Per block:
//
//   acc[j] += float(block total of row j) * (d_w[j] * d_x)     (f32, lane j)
//
// No horizontal sums: the 8 results store straight into Y. The int8 dot:
//   AVX2, AVX3: vpmaddubsw(|w|, sign(x, w)) + vpmaddwd(ones): the u8 x s8
//               instruction wants an unsigned operand, so the sign moves to x.
//   AVX3_DL:    vpdpbusd(acc, x + 128, w): activations are stored biased by
//               +128 (u8); 128 * sum(w) per block is subtracted once.
// All give the same integers and the same f32 operations per lane, so an
// output has the same bits whatever its lane, tile, M or CPU target.
//
// Decode (M <= kCols) transposes in registers; bigger batches
// transpose each tile once into the thread's work area and reuse it for
// every group of kCols activation rows. Q4_0 is unpacked to int8
// (nibble - 8) on the way in and shares everything else; so is MXFP4 (gpt-oss
// experts: each nibble looked up in the doubled E2M1 values, which are all
// integers in [-12, 12], with the block's power-of-two scale as d_w).
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // compile the AVX-512 VNNI target (off by default in Highway 1.0.3)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_q8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "core/env.h"
#include "gguf/quant.h"
#include "kernels/amx.h"
#include "kernels/matmul-inl.h"

#include <array>
#include <cmath>
#include <cstring>

#ifndef TANDEM_Q8_16_SWITCH
#define TANDEM_Q8_16_SWITCH
namespace tandem::kernels {
// TANDEM_Q8_ROWS8=1: decode on the 8-row kernel (A/B of Q8Kern16, Q8_0 and Q4_0).
inline bool q8_16_disabled() {
  static const bool off = env_flag("TANDEM_Q8_ROWS8");
  return off;
}
}  // namespace tandem::kernels
#endif
HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni,no-avxvnni")  // see matmul-inl.h
#endif
namespace tandem::kernels {
namespace HWY_NAMESPACE {

#if TANDEM_MATMUL_X86

constexpr int kLanes = 8;  // weight rows per tile
// Prepared block of a tile: V[8] | aux[8] (AVX2: |V[g]|) or corr (VNNI) | d_w[8].
constexpr size_t kPrepBlockBytes = 544;
static_assert(detail::kPrepBlockBytesQ8 == kPrepBlockBytes);

enum class Fmt { kQ8, kQ4, kMx };  // Q8_0, Q4_0, MXFP4

template <Fmt F>
constexpr int64_t kBlockBytes = F == Fmt::kQ8   ? 34
                                : F == Fmt::kQ4 ? 18
                                                : 17;
template <Fmt F>
constexpr int64_t kQuantOffset = F == Fmt::kMx ? 1 : 2;  // after the f16 scale or the exponent byte

// 2^(e - 128) for every E8M0 byte e (the halved MXFP4 scale, exact).
HWY_INLINE const float* Mxfp4Scales() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int e = 0; e < 256; ++e) t[static_cast<size_t>(e)] = std::ldexp(1.0f, e - 128);
    return t;
  }();
  return table.data();
}

// Q4_0, MXFP4: V[0..3] hold the packed bytes (element e < 16 in the low
// nibble of byte e, e + 16 in the high one) of the 8 rows, transposed or
// loaded packed (bytewise ops commute with moving dwords); V[0..7] become
// the int8 values: nibble - 8, or MXFP4's doubled E2M1 value.
template <Fmt F>
HWY_INLINE void SplitNibbles8(__m256i v[kLanes]) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int g = 0; g < 4; ++g) {
    v[g + 4] = _mm256_and_si256(_mm256_srli_epi16(v[g], 4), m4);
    v[g] = _mm256_and_si256(v[g], m4);
  }
  if constexpr (F == Fmt::kQ4) {
    const __m256i eight = _mm256_set1_epi8(8);
    for (int g = 0; g < kLanes; ++g) v[g] = _mm256_sub_epi8(v[g], eight);
  } else {
    const __m256i values =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gguf::kMxfp4Values)));
    for (int g = 0; g < kLanes; ++g) v[g] = _mm256_shuffle_epi8(values, v[g]);
  }
}

// Block B of the 8 rows RP as V[0..7] and the 8 scales as f32 lanes.
template <Fmt F>
HWY_INLINE void LoadBlock8(const uint8_t* const rp[kLanes], int64_t b, __m256i v[kLanes], __m256* dw) {
  constexpr int64_t kBytes = kBlockBytes<F>;
  __m256i lo[4], hi[4];  // elements 0..15 and 16..31 (Q4_0, MXFP4: both in lo)
  for (int j = 0; j < 4; ++j) {
    const uint8_t* p0 = rp[j] + kBytes * b + kQuantOffset<F>;
    const uint8_t* p1 = rp[j + 4] + kBytes * b + kQuantOffset<F>;
    lo[j] = Load2x128(p0, p1);
    if constexpr (F == Fmt::kQ8) hi[j] = Load2x128(p0 + 16, p1 + 16);
  }
  Transpose4x4(lo, v);
  if constexpr (F == Fmt::kQ8) {
    Transpose4x4(hi, v + 4);
    *dw = GatherF16(rp, kBytes * b);
    return;
  }
  SplitNibbles8<F>(v);
  if constexpr (F == Fmt::kQ4) {
    *dw = GatherF16(rp, kBytes * b);
  } else {
    const float* scale = Mxfp4Scales();
    const int64_t off = kBytes * b;
    *dw = _mm256_setr_ps(scale[rp[0][off]], scale[rp[1][off]], scale[rp[2][off]], scale[rp[3][off]], scale[rp[4][off]],
                         scale[rp[5][off]], scale[rp[6][off]], scale[rp[7][off]]);
  }
}

// Rows 8H..8H+7 of a packed Q8_0 or Q4_0 block BLK of a group of G rows
// (kernels/q8_pack.h): part H of each V[g] and of the scales. The same V[g]
// and scales as LoadBlock8 gives for those rows unpacked.
template <Fmt F>
HWY_INLINE void LoadPacked8(const uint8_t* blk, int64_t group, int64_t h, __m256i v[kLanes], __m256* dw) {
  constexpr int kQuads = F == Fmt::kQ8 ? 8 : 4;
  for (int g = 0; g < kQuads; ++g) v[g] = LoadI(blk + 2 * group + 4 * group * g + 32 * h);
  if constexpr (F == Fmt::kQ4) SplitNibbles8<F>(v);
  *dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * h)));
}

// Packed groups (kernels/q8_pack.h) exist for these formats.
template <Fmt F>
constexpr bool kPackable = F == Fmt::kQ8 || F == Fmt::kQ4;

// One group: lane j += dot(row j's 4 quants, the activation's 4 quants).
// AUX is |v| (AVX2/AVX3; unused with VNNI).
HWY_INLINE __m256i GroupDot(__m256i isum, __m256i v, __m256i aux, const uint8_t* x4) {
  const __m256i xb = Broadcast4(x4);
#if HWY_TARGET == HWY_AVX3_DL
  (void)aux;
  return _mm256_dpbusd_epi32(isum, xb, v);
#else
  // Adjacent products sum to at most 2 * 128 * 127 = 32512 < 2^15: the
  // saturating vpmaddubsw never saturates (activations stay in [-127, 127]).
  return Chain(_mm256_add_epi32(
      isum, _mm256_madd_epi16(_mm256_maddubs_epi16(aux, _mm256_sign_epi8(xb, v)), _mm256_set1_epi16(1))));
#endif
}

// VNNI: 128 * (sum of each row's block), the bias of x + 128.
HWY_INLINE __m256i BiasTerm(const __m256i v[kLanes]) {
#if HWY_TARGET == HWY_AVX3_DL
  const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256i s = _mm256_setzero_si256();
  for (int g = 0; g < kLanes; ++g) s = _mm256_dpbusd_epi32(s, k128, v[g]);
  return s;
#else
  (void)v;
  return _mm256_setzero_si256();
#endif
}

template <Fmt F, bool kDirect>
struct Q8Kern : TileOperands {
  static constexpr int kRows = kLanes;
  // Activation rows per pass. Registers: C int32 sums + C f32 accumulators
  // + group operands: 4 + 4 + 5 of 16 (AVX2), 8 + 8 + 5 of 32 (AVX-512).
  // (Measured on AVX2: C = 8 with the accumulators in memory was 20% slower.)
  static constexpr int kCols = kWideRegs ? 8 : 4;

  // Work area: [prepared blocks (not direct)] | zero row.
  uint8_t* ZeroRow(uint8_t* work) const { return work + (kDirect ? 0 : (k / 32) * kPrepBlockBytes); }

  bool Packed(int64_t n0) const { return kPackable<F> && n0 < packed_rows; }

  // Block B of the tile at N0 (rows RP when not packed).
  HWY_INLINE void LoadTileBlock(int64_t n0, const uint8_t* const rp[kLanes], int64_t b, __m256i v[kLanes],
                                __m256* dw) const {
    if constexpr (kPackable<F>) {
      if (Packed(n0)) return LoadPacked8<F>(PackedBlock(n0, b, kBlockBytes<F>), pack_group, n0 % pack_group / 8, v, dw);
    }
    LoadBlock8<F>(rp, b, v, dw);
  }

  void Prepare(int64_t n0, int rows, uint8_t* work) const {
    if constexpr (kDirect) return;
    const uint8_t* rp[kLanes];
    RowPointers(n0, rows, ZeroRow(work), rp);
    for (int64_t b = 0; b < k / 32; ++b) {
      uint8_t* out = work + b * kPrepBlockBytes;
      __m256i v[kLanes];
      __m256 dw;
      LoadTileBlock(n0, rp, b, v, &dw);
      for (int g = 0; g < kLanes; ++g) {
        StoreI(out + 32 * g, v[g]);
        if constexpr (!kVnni) StoreI(out + 256 + 32 * g, _mm256_sign_epi8(v[g], v[g]));
      }
      if constexpr (kVnni) StoreI(out + 256, BiasTerm(v));
      _mm256_storeu_ps(reinterpret_cast<float*>(out + 512), dw);
    }
  }

  template <int C>
  void Tile(int64_t n0, int rows, int64_t m0, const uint8_t* work) const {
    const uint8_t* xq[C];
    const float* xd[C];
    ActRows<C>(m0, xq, xd);
    uint8_t* buf = const_cast<uint8_t*>(work);
    const uint8_t* rp[kLanes];
    if constexpr (kDirect) RowPointers(n0, rows, ZeroRow(buf), rp);
    // The weights stream from DRAM: fetch the next two tiles while this one
    // computes, spread over the first pass (at a tile border the 8 row
    // streams jump to 8 new rows, which the hardware prefetcher picks up
    // late; and after a prepare burst memory would idle during the passes).
    // Two tiles, the next one asked for again (mostly in flight or cached
    // by then), keep more lines in flight than one: M = 1, 1024 x 3072 from
    // DRAM, 2 threads, A/B in one process on a Zen 5 VM: +8-9% (no
    // prefetch: 0.34x; only the tile after next: +4%; three tiles: +0%).
    // Packed rows stream by groups, each one stream: a group's first tile
    // fetches the next group (the one after too: 5-10% slower), a 16-row
    // group's second tile (reading it from cache) nothing.
    const int64_t unit = Packed(n0) ? pack_group : kLanes;
    const int64_t u0 = n0 - n0 % unit;
    const bool fetch = m0 == 0 && u0 == n0;
    const uint8_t* next =
        fetch && u0 + 2 * unit <= w_rows ? w + static_cast<size_t>(u0 + unit) * row_bytes : nullptr;
    const uint8_t* after_next = fetch && !Packed(n0) && u0 + 3 * unit <= w_rows
                                    ? w + static_cast<size_t>(u0 + 2 * unit) * row_bytes
                                    : nullptr;
    const size_t pf_step = static_cast<size_t>(unit) * kBlockBytes<F>;
    __m256 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / 32; ++b) {
      __m256i isum[C];
      for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
      __m256 dw;
      __m256i bias;
      if (next != nullptr) PrefetchSlice(next + b * pf_step, pf_step, 0, 1);
      if (after_next != nullptr) PrefetchSlice(after_next + b * pf_step, pf_step, 0, 1);
      if constexpr (kDirect) {
        __m256i v[kLanes];
        LoadTileBlock(n0, rp, b, v, &dw);
        bias = BiasTerm(v);
        for (int g = 0; g < kLanes; ++g) {
          const __m256i aux = kVnni ? v[g] : _mm256_sign_epi8(v[g], v[g]);
          for (int c = 0; c < C; ++c) isum[c] = GroupDot(isum[c], v[g], aux, xq[c] + 32 * b + 4 * g);
        }
      } else {
        const uint8_t* in = work + b * kPrepBlockBytes;
        dw = _mm256_loadu_ps(reinterpret_cast<const float*>(in + 512));
        bias = kVnni ? LoadI(in + 256) : _mm256_setzero_si256();
        for (int g = 0; g < kLanes; ++g) {
          const __m256i v = LoadI(in + 32 * g);
          const __m256i aux = kVnni ? v : LoadI(in + 256 + 32 * g);
          for (int c = 0; c < C; ++c) isum[c] = GroupDot(isum[c], v, aux, xq[c] + 32 * b + 4 * g);
        }
      }
      for (int c = 0; c < C; ++c) {
        if constexpr (kVnni) isum[c] = _mm256_sub_epi32(isum[c], bias);
        const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(xd[c] + b));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), scale, acc[c]);
      }
    }
    for (int c = 0; c < C; ++c) {
      float* out = y + (m0 + c) * y_stride + n0;
      StoreRows(out, acc[c], rows);
    }
  }
};

#if HWY_TARGET == HWY_AVX3_DL
// Decode (M <= 8) of Q8_0, Q4_0 and MXFP4 on AVX-512 VNNI with 16 weight rows in
// the lanes of 512-bit vectors: per block the 16 rows' 32 quants become 8
// vectors V[g] (lane r = row r's quants 4g..4g+3), so one vpdpbusd and one
// broadcast serve 16 rows instead of 8, and the transpose costs ~2 shuffles
// per row instead of ~4. Q4_0's and MXFP4's 16 packed bytes go through the
// same transpose and are split into nibbles after it (as Q8Kern does). Per lane
// the same integers and the same f32 operations as Q8Kern: the same bits.
template <Fmt F>
struct Q8Kern16 : TileOperands {
  static constexpr int kRows = 16;
  static constexpr int kCols = 8;

  void Prepare(int64_t, int, uint8_t*) const {}

  // Rows R and R + 8 of the tile as one vector each, then an 8 x 8 dword
  // transpose in each 256-bit half.
  static HWY_INLINE void LoadBlock16(const uint8_t* const rp[16], int64_t off, __m512i v[8]) {
    __m512i a[8], t[8], u[8];
    for (int j = 0; j < 8; ++j) {
      __m256i lo, hi;
      if constexpr (F == Fmt::kQ8) {
        lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rp[j] + off));
        hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rp[j + 8] + off));
      } else {  // 16 packed bytes: dwords 0-3 of the row, 4-7 empty until the split
        lo = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[j] + off)));
        hi = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[j + 8] + off)));
      }
      a[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    for (int j = 0; j < 8; j += 2) {
      t[j] = _mm512_unpacklo_epi32(a[j], a[j + 1]);
      t[j + 1] = _mm512_unpackhi_epi32(a[j], a[j + 1]);
    }
    // u[i] (i < 4): rows 0-3 (8-11 in lanes 2, 3) of dword i of each 128-bit
    // half-row; u[4 + i]: rows 4-7 (12-15).
    for (int h = 0; h < 2; ++h) {
      const int b = 4 * h;
      u[b + 0] = _mm512_unpacklo_epi64(t[b + 0], t[b + 2]);
      u[b + 1] = _mm512_unpackhi_epi64(t[b + 0], t[b + 2]);
      u[b + 2] = _mm512_unpacklo_epi64(t[b + 1], t[b + 3]);
      u[b + 3] = _mm512_unpackhi_epi64(t[b + 1], t[b + 3]);
    }
    // V[i] = u[i].lane0 | u[4+i].lane0 | u[i].lane2 | u[4+i].lane2; V[4+i] the same with lanes 1, 3.
    const __m512i idx_lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i idx_hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm512_permutex2var_epi32(u[i], idx_lo, u[4 + i]);
      if constexpr (F == Fmt::kQ8) v[4 + i] = _mm512_permutex2var_epi32(u[i], idx_hi, u[4 + i]);
    }
    if constexpr (F != Fmt::kQ8) SplitNibbles16(v);
  }

  // Q4_0, MXFP4: V[0..3] hold the packed bytes of the 16 rows (element e <
  // 16: low nibble of byte e; e + 16: its high nibble); V[0..7] become the
  // int8 values.
  static HWY_INLINE void SplitNibbles16(__m512i v[8]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int g = 0; g < 4; ++g) {
      v[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v[g], 4), m4);
      v[g] = _mm512_and_si512(v[g], m4);
    }
    // Q4_0: nibble - 8; MXFP4: the doubled E2M1 value of the nibble.
    const __m512i eight = _mm512_set1_epi8(8);
    const __m512i values =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gguf::kMxfp4Values)));
    for (int g = 0; g < 8; ++g)
      v[g] = F == Fmt::kQ4 ? _mm512_sub_epi8(v[g], eight) : _mm512_shuffle_epi8(values, v[g]);
  }

  // Block OFF of the 16 rows RP (ROWS real ones) as V[0..7] and their scales.
  static HWY_INLINE void LoadBlock16AndScales(const uint8_t* const rp[16], int64_t off, int rows,
                                              __m512i scale_offsets, __m512i v[8], __m512* dw) {
    LoadBlock16(rp, off + kQuantOffset<F>, v);
    if constexpr (F == Fmt::kMx) {  // the E8M0 bytes through the table of their powers of two
      const float* table = Mxfp4Scales();
      if (rows == 16) {
        const __m512i raw = _mm512_i32gather_epi32(scale_offsets, rp[0] + off, 1);
        *dw = _mm512_i32gather_ps(_mm512_and_si512(raw, _mm512_set1_epi32(0xff)), table, 4);
      } else {
        alignas(64) float d[16];
        for (int j = 0; j < 16; ++j) d[j] = table[rp[j][off]];
        *dw = _mm512_load_ps(d);
      }
    } else if (rows == 16) {
      const __m512i raw = _mm512_i32gather_epi32(scale_offsets, rp[0] + off, 1);
      *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
    } else {
      alignas(32) uint16_t h[16];
      for (int j = 0; j < 16; ++j) h[j] = LoadU16(rp[j] + off);
      *dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
    }
  }

  template <int C>
  void Tile(int64_t n0, int rows, int64_t m0, const uint8_t* work) const {
    const uint8_t* xq[C];
    const float* xd[C];
    ActRows<C>(m0, xq, xd);
    const uint8_t* rp[16];
    RowPointers(n0, rows, const_cast<uint8_t*>(work), rp);
    // Scales: one gather over the tile's rows (a full tile is evenly spaced).
    const __m512i scale_offsets =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
    const uint8_t* next =
        m0 == 0 && n0 + 2 * kRows <= w_rows ? w + static_cast<size_t>(n0 + kRows) * row_bytes : nullptr;
    // A packed group is one stream (kernels/q8_pack.h): the next group alone
    // is enough ahead (two groups: 5-10% slower decode on a Zen 5 VM).
    const bool packed = kPackable<F> && n0 < packed_rows;
    const uint8_t* after_next = !packed && m0 == 0 && n0 + 3 * kRows <= w_rows
                                    ? w + static_cast<size_t>(n0 + 2 * kRows) * row_bytes
                                    : nullptr;
    const size_t pf_step = kRows * kBlockBytes<F>;
    const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < k / 32; ++b) {
      if (next != nullptr) PrefetchSlice(next + b * pf_step, pf_step, 0, 1);
      if (after_next != nullptr) PrefetchSlice(after_next + b * pf_step, pf_step, 0, 1);
      const int64_t off = kBlockBytes<F> * b;
      __m512i v[8];
      __m512 dw;
      if (packed) {  // the vectors as stored
        const uint8_t* blk = PackedBlock(n0, b, kBlockBytes<F>);
        dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
        constexpr int kQuads = F == Fmt::kQ8 ? 8 : 4;
        for (int g = 0; g < kQuads; ++g) v[g] = _mm512_loadu_si512(blk + 32 + 64 * g);
        if constexpr (F == Fmt::kQ4) SplitNibbles16(v);
      } else {
        LoadBlock16AndScales(rp, off, rows, scale_offsets, v, &dw);
      }
      __m512i bias = _mm512_setzero_si512();
      for (int g = 0; g < 8; ++g) bias = _mm512_dpbusd_epi32(bias, k128, v[g]);
      __m512i isum[C];
      for (int c = 0; c < C; ++c) isum[c] = _mm512_setzero_si512();
      for (int g = 0; g < 8; ++g) {
        for (int c = 0; c < C; ++c) {
          int32_t x4;
          std::memcpy(&x4, xq[c] + 32 * b + 4 * g, 4);
          isum[c] = _mm512_dpbusd_epi32(isum[c], _mm512_set1_epi32(x4), v[g]);
        }
      }
      for (int c = 0; c < C; ++c) {
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[c][b]));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[c], bias)), scale, acc[c]);
      }
    }
    const __mmask16 keep = static_cast<__mmask16>((1u << rows) - 1);
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(y + (m0 + c) * y_stride + n0, keep, acc[c]);
  }
};
#endif

template <Fmt F, bool kDirect>
void RunQ8(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const detail::ScratchView& s) {
  RunAll(Q8Kern<F, kDirect>{TileOperands::of(w, s, y, y_stride)}, w.rows, m, pool, s);
}

#endif  // TANDEM_MATMUL_X86

bool MatmulQ8(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
              ThreadPool& pool, const detail::ScratchView& s) {
#if TANDEM_MATMUL_X86
  const int64_t k = w.cols;
  ForEachRow(pool, m, k, [&](int64_t i) { QuantizeRowB32(x + i * x_stride, k, s.act + i * s.act_stride); });
#if HWY_TARGET == HWY_AVX3_DL
  // Batches on the AMX tile unit (matmul_amx.cpp): the same bits as the
  // VNNI kernel below, from the same quantized rows. (It reads the GGUF
  // layout: packed matrices stay on the VNNI kernels.)
  if (s.panels != nullptr && w.packed_rows == 0 && amx_use(w.type, m) &&
      detail::matmul_q8_amx(w, m, y, y_stride, pool, s)) {
    return true;
  }
#endif
  const bool direct = m <= Q8Kern<Fmt::kQ8, true>::kCols;
#if HWY_TARGET == HWY_AVX3_DL
  // (Groups of 8 rows are for the 8-row kernel: the 16-row one reads 16.)
  if (direct && !q8_16_disabled() && (w.packed_rows == 0 || w.pack_group == 16)) {
    if (w.type == gguf::TensorType::Q8_0) {
      RunAll(Q8Kern16<Fmt::kQ8>{TileOperands::of(w, s, y, y_stride)}, w.rows, m, pool, s);
      return true;
    }
    if (w.type == gguf::TensorType::Q4_0) {
      RunAll(Q8Kern16<Fmt::kQ4>{TileOperands::of(w, s, y, y_stride)}, w.rows, m, pool, s);
      return true;
    }
    // MXFP4 alone (M = 1) stays on the 8-row kernel: there the 16-row one's
    // second gather (the scales' table) cost 4-11% of gpt-oss decode.
    if (w.type == gguf::TensorType::MXFP4 && m >= 2) {
      RunAll(Q8Kern16<Fmt::kMx>{TileOperands::of(w, s, y, y_stride)}, w.rows, m, pool, s);
      return true;
    }
  }
#endif
  auto run = [&]<Fmt F>() {
    direct ? RunQ8<F, true>(w, m, y, y_stride, pool, s) : RunQ8<F, false>(w, m, y, y_stride, pool, s);
  };
  switch (w.type) {
    case gguf::TensorType::Q4_0: run.template operator()<Fmt::kQ4>(); break;
    case gguf::TensorType::MXFP4: run.template operator()<Fmt::kMx>(); break;
    default: run.template operator()<Fmt::kQ8>(); break;
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

HWY_EXPORT(MatmulQ8);
HWY_EXPORT(MatmulTargetName);

namespace detail {
bool matmul_q8(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
               ThreadPool& pool, const ScratchView& s) {
  return HWY_DYNAMIC_DISPATCH(MatmulQ8)(w, x, m, x_stride, y, y_stride, pool, s);
}
const char* matmul_q8_target_name() { return HWY_DYNAMIC_DISPATCH(MatmulTargetName)(); }
}  // namespace detail

}  // namespace tandem::kernels
#endif
