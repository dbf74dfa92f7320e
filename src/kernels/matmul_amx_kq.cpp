// Q4_K and Q6_K weights x int8 activations (one scale per 256,
// quantize_act.h) on the AMX tile unit, bit-identical to matmul_kq.cpp.
//
// Unlike Q8_0, the K-quants are integers over a whole super-block of 256:
// per weight row and super-block matmul_kq.cpp forms the exact int32
//
//   S = sum_e w'_e * qx_e,  w'_e = sc[e/32] * q_e         (Q4_K, 0..945)
//                           w'_e = sc[e/16] * (q_e - 32)  (Q6_K, -4096..3937)
//   M = sum_s m[s] * bsum32[s]                           (Q4_K's mins)
//
// and then per output, in f32:
//
//   Q4_K: acc = fma(float(S), d * dx, acc);  acc = fnmadd(float(M), dmin * dx, acc)
//   Q6_K: acc = fma(float(S), d * dx, acc)
//
// w' does not fit int8, so each weight tile is prepared as two digit
// planes, w' = lo + 64 hi (lo = w' & 63 in 0..63, hi = w' >> 6 in -64..61),
// and the tile unit accumulates C_lo = lo . qx and C_hi = hi . qx over all
// 256 (four tdpbssd of K = 64 each: full tiles, where Q8_0 uses half of
// each); S = C_lo + 64 C_hi is exact. M comes from 4 vpdpwssd per row (the
// mins are per 32, the activation block sums already exist). One tile
// store pair and one short epilogue per 256 instead of per 32: the
// K-quants suit the tile unit better than Q8_0.
//
// Layouts (per 16 rows and super-block):
//   panel (activations, kPanelSbBytes): 4 B tiles (16 x 64 B: row r =
//     dword r of the chunk of 64, for act rows 0..15) | d_x[16] f32 |
//     bsum32 pairs[4] (lane j = int16 pair (bsum32[2p], bsum32[2p+1]))
//   weights (kWeightSbBytes): A_lo[4] (16 x 64 B) | A_hi[4] | d[16] |
//     dmin[16] | mins pairs[16][4] (int16 pair (m[2p], m[2p+1]))
#include "kernels/matmul_internal.h"

#include <cstring>

#if TANDEM_HAVE_AMX_KERNEL

// Compiled for AMX and AVX-512 (no global -march); runs only after
// amx_available(). See matmul_amx.cpp.
#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c,prfchw")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's `__m512 __Y = __Y;`, see matmul_amx.cpp
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/amx_tiles.h"

namespace tandem::kernels::detail {
namespace {

using namespace amx;

constexpr size_t kPanelSbBytes = kAmxKqPanelSbBytes;
constexpr size_t kPanelDx = 4096, kPanelBsums = 4160;
static_assert(kPanelSbBytes == 4096 + 64 + 256);
constexpr size_t kWeightSbBytes = kAmxKqWeightSbBytes;
constexpr size_t kWeightHi = 4096, kWeightD = 8192, kWeightDmin = 8256, kWeightMins = 8320;
static_assert(kWeightSbBytes == 8320 + 256);

float f16_to_f32(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // exact, as matmul_kq.cpp's vcvtph2ps
}

// ---- activation panels ---------------------------------------------------------

// Activation rows [m0, m0 + rows) (Q8_K-style rows, quantize_act.h: qs
// int8[K] | d f32[K/256] | bsum16 int16[K/16] | bsum32 int16[K/32]) as
// K/256 panel super-blocks; rows past ROWS are zero.
void pack_panel(const ScratchView& s, int64_t k, int64_t m0, int rows, uint8_t* out) {
  const int64_t nsb = k / 256;
  const uint8_t* row[kTile];
  for (int j = 0; j < kTile; ++j) row[j] = j < rows ? s.act + static_cast<size_t>(m0 + j) * s.act_stride : nullptr;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    uint8_t* dst = out + static_cast<size_t>(sb) * kPanelSbBytes;
    for (int c = 0; c < 4; ++c) {
      __m512 v[kTile], t[kTile];
      for (int j = 0; j < kTile; ++j) {
        v[j] = row[j] != nullptr ? _mm512_loadu_ps(row[j] + 256 * sb + 64 * c) : _mm512_setzero_ps();
      }
      transpose16(v, t);  // t[r] lane j = dword r of row j
      for (int r = 0; r < kTile; ++r) _mm512_storeu_ps(dst + 1024 * c + 64 * r, t[r]);
    }
    float* dx = reinterpret_cast<float*>(dst + kPanelDx);
    int32_t* pairs = reinterpret_cast<int32_t*>(dst + kPanelBsums);
    for (int j = 0; j < kTile; ++j) {
      if (row[j] == nullptr) {
        dx[j] = 0.0f;
        for (int p = 0; p < 4; ++p) pairs[16 * p + j] = 0;
        continue;
      }
      dx[j] = reinterpret_cast<const float*>(row[j] + k)[sb];
      const uint8_t* bsum32 = row[j] + k + 4 * nsb + 2 * (k / 16) + 2 * (8 * sb);
      for (int p = 0; p < 4; ++p) std::memcpy(&pairs[16 * p + j], bsum32 + 4 * p, 4);
    }
  }
}

// ---- weight tiles ------------------------------------------------------------------

// Groups 2c and 2c + 1 (64 weights w' as two vectors of 32 int16) as
// digits lo = w' & 63 and hi = w' >> 6, int8 (both fit), at row offset
// ROW of chunk C of the two planes. packs works per 128-bit lane: the
// qword permute puts group 2c's 32 bytes before group 2c + 1's.
void store_digits(__m512i w0, __m512i w1, uint8_t* planes, int c, int row) {
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), m63 = _mm512_set1_epi16(63);
  const __m512i lo = _mm512_packs_epi16(_mm512_and_si512(w0, m63), _mm512_and_si512(w1, m63));
  const __m512i hi = _mm512_packs_epi16(_mm512_srai_epi16(w0, 6), _mm512_srai_epi16(w1, 6));
  uint8_t* at = planes + 1024 * static_cast<size_t>(c) + 64 * static_cast<size_t>(row);
  _mm512_storeu_si512(at, _mm512_permutexvar_epi64(order, lo));
  _mm512_storeu_si512(at + kWeightHi, _mm512_permutexvar_epi64(order, hi));
}

// Q4_K block (144 B: d, dmin, scales[12], qs[128]) of weight row I.
void prepare_q4k_row(const uint8_t* blk, int i, uint8_t* out) {
  const uint8_t* sc6 = blk + 4;
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {  // 6-bit scales and mins (ggml's q4_K packing)
    if (j < 4) {
      sc[j] = sc6[j] & 63, mn[j] = sc6[j + 4] & 63;
    } else {
      sc[j] = (sc6[j + 4] & 0x0f) | ((sc6[j - 4] >> 6) << 4);
      mn[j] = (sc6[j + 4] >> 4) | ((sc6[j] >> 6) << 4);
    }
  }
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int c = 0; c < 4; ++c) {  // bytes 32c..32c+31: group 2c in the low nibbles, 2c + 1 in the high
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * c));
    const __m256i q0 = _mm256_and_si256(b, m4), q1 = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    const __m512i w0 = _mm512_mullo_epi16(_mm512_cvtepu8_epi16(q0), _mm512_set1_epi16(static_cast<int16_t>(sc[2 * c])));
    const __m512i w1 =
        _mm512_mullo_epi16(_mm512_cvtepu8_epi16(q1), _mm512_set1_epi16(static_cast<int16_t>(sc[2 * c + 1])));
    store_digits(w0, w1, out, c, i);
  }
  reinterpret_cast<float*>(out + kWeightD)[i] = f16_to_f32(blk);
  reinterpret_cast<float*>(out + kWeightDmin)[i] = f16_to_f32(blk + 2);
  int32_t* pairs = reinterpret_cast<int32_t*>(out + kWeightMins) + 4 * i;
  for (int p = 0; p < 4; ++p) pairs[p] = mn[2 * p] | (mn[2 * p + 1] << 16);
}

// Q6_K block (210 B: ql[128], qh[64], scales int8[16], d) of weight row I.
// Group g = 4h + t (elements 128h + 32t + l): ql[64h + 32(t&1) + l], low
// nibble for t < 2 else high, | bits 2t, 2t+1 of qh[32h + l] << 4.
void prepare_q6k_row(const uint8_t* blk, int i, uint8_t* out) {
  const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
  auto group = [&](int g) {  // w' of group g as 32 int16
    const int h = g / 4, t = g % 4;
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32 * (t & 1)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
    const __m256i lo = t < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
    const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * t)), m3);
    const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4));  // 0..63 (no carry across bytes)
    const __m512i qs = _mm512_sub_epi16(_mm512_cvtepu8_epi16(q), _mm512_set1_epi16(32));
    const __m512i scv = _mm512_inserti64x4(_mm512_set1_epi16(sc[2 * g]), _mm256_set1_epi16(sc[2 * g + 1]), 1);
    return _mm512_mullo_epi16(qs, scv);
  };
  for (int c = 0; c < 4; ++c) store_digits(group(2 * c), group(2 * c + 1), out, c, i);
  reinterpret_cast<float*>(out + kWeightD)[i] = f16_to_f32(blk + 208);
  reinterpret_cast<float*>(out + kWeightDmin)[i] = 0.0f;
  std::memset(out + kWeightMins + 16 * static_cast<size_t>(i), 0, 16);
}

// Weight rows [n0, n0 + rows) as K/256 prepared super-blocks; rows past
// ROWS are zero (digits, scales, mins).
void prepare_weights(const Matrix& w, int64_t n0, int rows, uint8_t* out) {
  const bool q6 = w.type == gguf::TensorType::Q6_K;
  const size_t block_bytes = q6 ? 210 : 144;
  for (int64_t sb = 0; sb < w.cols / 256; ++sb) {
    uint8_t* dst = out + static_cast<size_t>(sb) * kWeightSbBytes;
    for (int i = 0; i < kTile; ++i) {
      if (i >= rows) {
        for (int c = 0; c < 4; ++c) {
          std::memset(dst + 1024 * c + 64 * i, 0, 64);
          std::memset(dst + kWeightHi + 1024 * c + 64 * i, 0, 64);
        }
        reinterpret_cast<float*>(dst + kWeightD)[i] = 0.0f;
        reinterpret_cast<float*>(dst + kWeightDmin)[i] = 0.0f;
        std::memset(dst + kWeightMins + 16 * static_cast<size_t>(i), 0, 16);
        continue;
      }
      const uint8_t* blk = w.data + static_cast<size_t>(n0 + i) * w.row_bytes + static_cast<size_t>(sb) * block_bytes;
      q6 ? prepare_q6k_row(blk, i, dst) : prepare_q4k_row(blk, i, dst);
    }
  }
}

// ---- output tiles --------------------------------------------------------------------

// Tiles: 0, 1, 2 = A_lo, A_hi, B of even chunks, 3, 4, 5 of odd chunks
// (all 16 x 64 B); 6, 7 = C_lo, C_hi.
void configure_kq_tiles() {
  const uint8_t rows[8] = {kTile, kTile, kTile, kTile, kTile, kTile, kTile, kTile};
  const uint16_t colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
  configure_tiles(rows, colsb);
}

// C_lo, C_hi of one super-block (WA prepared weights, XB panel) into CBUF
// (2 x 16 x 16 int32).
void superblock_product(const uint8_t* wa, const uint8_t* xb, int32_t* cbuf) {
  _tile_zero(6);
  _tile_zero(7);
  for (int c = 0; c < 4; c += 2) {
    _tile_loadd(0, wa + 1024 * c, 64);
    _tile_loadd(1, wa + kWeightHi + 1024 * c, 64);
    _tile_loadd(2, xb + 1024 * c, 64);
    _tile_dpbssd(6, 0, 2);
    _tile_dpbssd(7, 1, 2);
    _tile_loadd(3, wa + 1024 * (c + 1), 64);
    _tile_loadd(4, wa + kWeightHi + 1024 * (c + 1), 64);
    _tile_loadd(5, xb + 1024 * (c + 1), 64);
    _tile_dpbssd(6, 3, 5);
    _tile_dpbssd(7, 4, 5);
  }
  _tile_stored(6, cbuf, 64);
  _tile_stored(7, cbuf + 256, 64);
}

// Y[m0 + j][n0 + i] for i < N_ROWS, j < M_ROWS over all super-blocks,
// fetching F on the way.
template <bool kMins>
void output_tile(const uint8_t* wa, const uint8_t* xp, int64_t nsb, int n_rows, int m_rows, float* y, int64_t y_stride,
                 int32_t* cbuf, const Fetch& f) {
  __m512 acc[kTile];
  for (int i = 0; i < kTile; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* w = wa + static_cast<size_t>(sb) * kWeightSbBytes;
    const uint8_t* x = xp + static_cast<size_t>(sb) * kPanelSbBytes;
    superblock_product(w, x, cbuf);
    f.block(sb, nsb, y_stride);
    const __m512 dx = _mm512_loadu_ps(x + kPanelDx);
    const float* d = reinterpret_cast<const float*>(w + kWeightD);
    const float* dmin = reinterpret_cast<const float*>(w + kWeightDmin);
    const int32_t* mins = reinterpret_cast<const int32_t*>(w + kWeightMins);
    __m512i bs[4];
    for (int p = 0; p < 4; ++p) bs[p] = _mm512_loadu_si512(x + kPanelBsums + 64 * p);
#pragma GCC unroll 16
    for (int i = 0; i < kTile; ++i) {
      const __m512i s = _mm512_add_epi32(_mm512_load_si512(cbuf + 16 * i),
                                         _mm512_slli_epi32(_mm512_load_si512(cbuf + 256 + 16 * i), 6));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(_mm512_set1_ps(d[i]), dx), acc[i]);
      if constexpr (kMins) {
        __m512i mn = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) mn = _mm512_dpwssd_epi32(mn, bs[p], _mm512_set1_epi32(mins[4 * i + p]));
        acc[i] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mn), _mm512_mul_ps(_mm512_set1_ps(dmin[i]), dx), acc[i]);
      }
    }
  }
  store_transposed(acc, n_rows, m_rows, y, y_stride);
}

// One thread's weight tiles [BEGIN, END) against every panel; tile t + 1
// is prepared before tile t runs (two slots, see matmul_amx.cpp).
void run_weight_tiles(const Matrix& w, const TileGrid& grid, int64_t begin, int64_t end, const uint8_t* panels,
                      int64_t m, float* y, int64_t y_stride, uint8_t* work) {
  const int64_t nsb = w.cols / 256, n_panels = (m + kTile - 1) / kTile;
  const size_t slot_bytes = static_cast<size_t>(nsb) * kWeightSbBytes;
  const size_t panel_bytes = static_cast<size_t>(nsb) * kPanelSbBytes;
  int32_t* cbuf = reinterpret_cast<int32_t*>(work + 2 * slot_bytes);  // 64-aligned, 2 KB
  const bool mins = w.type == gguf::TensorType::Q4_K;
  auto slot = [&](int64_t tile) { return work + static_cast<size_t>(tile & 1) * slot_bytes; };
  configure_kq_tiles();
  prepare_weights(w, grid.begin(begin), grid.rows(begin), slot(begin));
  for (int64_t tile = begin; tile < end; ++tile) {
    const uint8_t* wa = slot(tile);
    if (tile + 1 < end) prepare_weights(w, grid.begin(tile + 1), grid.rows(tile + 1), slot(tile + 1));
    asm volatile("" ::: "memory");  // tileloadd's asm does not declare its memory read
    // (Fetching tile t + 2 ahead, as matmul_amx.cpp does, made no
    // difference here: the prepare reads each row in order.)
    const int64_t n0 = grid.begin(tile);
    const int n_rows = grid.rows(tile);
    for (int64_t p = 0; p < n_panels; ++p) {
      const int m_rows = panel_rows(m, p);
      float* yt = y + p * kTile * y_stride + n0;
      const uint8_t* xp = panels + static_cast<size_t>(p) * panel_bytes;
      const Fetch f = Fetch::next_output(y, y_stride, m, n0, p, n_panels, tile + 1 < end ? grid.begin(tile + 1) : -1);
      mins ? output_tile<true>(wa, xp, nsb, n_rows, m_rows, yt, y_stride, cbuf, f)
           : output_tile<false>(wa, xp, nsb, n_rows, m_rows, yt, y_stride, cbuf, f);
    }
  }
  _tile_release();
}

}  // namespace

bool matmul_kq_amx(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s) {
  count_amx_call();
  pack_then_run(w, m, static_cast<size_t>(w.cols / 256) * kPanelSbBytes, y, y_stride, pool, s, pack_panel,
                run_weight_tiles);
  return true;
}

}  // namespace tandem::kernels::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // !TANDEM_HAVE_AMX_KERNEL

namespace tandem::kernels::detail {
bool matmul_kq_amx(const Matrix&, int64_t, float*, int64_t, ThreadPool&, const ScratchView&) { return false; }
}  // namespace tandem::kernels::detail

#endif
