// Paged attention of a bf16 or f16 KV cache on the AMX tile unit, BF16 tiles.
//
// The same online softmax as attention.cpp (keys in position order, a
// running max and sum per (query, head) row), with the two products on
// tiles of 16 rows: scores S = Q.K^T and P.V, 32 keys per step. Steps go
// in chunks of 4 (128 keys at absolute multiples of 128): S of a chunk's
// steps first, then one softmax update per row for the chunk, then P.V of
// the chunk summed in the accumulator tiles and added to the output once.
//
// Operands. A tile multiplies bf16 (8 significant bits) and accumulates in
// f32, so the f32 operands are split in two bf16 parts, x = hi + lo:
//   - Q and P (f32): hi the top 8 bits, lo the rest rounded to 8, so
//     hi + lo holds 16 bits (relative error <= 2^-17);
//   - bf16 K and V are stored in the B-tile pair layout (kv_type.h) and
//     loaded straight from the blocks: a product is hi.K + lo.K;
//   - f16 K and V (11 significant bits) are converted per step into hi +
//     lo tiles (hi the top 8 bits, lo the other 3, both exact), and a
//     product is hi.hi + hi.lo + lo.hi (lo.lo is below 2^-16 of it).
// Results differ from the f32 path on the same values by about 2^-16
// relative (bound and tests in tests/kernels/attention_test.cpp).
//
// Determinism. Every row of a tile product is computed on its own (the
// tile unit sums each output over the depth in a fixed order), padding
// rows are zero, V rows nobody sees are zero, and a row's softmax and
// output update read only that row: a (query, head)'s result does not
// depend on which rows share its tiles, on the number of queries in the
// call, or on the thread. This path is taken for every call that fits
// (decode steps too), never by batch size.
//
// Tiles (all 16 rows x 64 bytes), for two row tiles X and Y at a time (a
// tile register is not renamed: four independent accumulators keep the
// unit busy where one chain of dependent products would wait on each):
//   0-3  C: S of X, Y for keys 0-15, 16-31 (f32); or P.V of X, Y for 2 x 16 dims
//   4, 5 A: Q rows of X, Y (32 dims of bf16, hi or lo); or P rows (32 keys)
//   6, 7 B: K (16 dim pairs x 16 keys) or V (16 key pairs x 16 dims)
#include "kernels/attention_amx.h"

#include "kernels/amx.h"
#include "kernels/matmul_internal.h"  // TANDEM_HAVE_AMX_KERNEL
#include "kernels/thread_pool.h"      // (amx_tiles.h includes it; here outside the AMX region)

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace tandem::kernels::detail {

namespace {
// TANDEM_AMX_ATTENTION: unset, bf16 caches on tiles and f16 on the f32
// path; "1" both on tiles; "0" neither.
int env_setting() {
  const char* v = std::getenv("TANDEM_AMX_ATTENTION");
  if (v == nullptr || *v == '\0') return -1;
  return std::strcmp(v, "0") == 0 ? 0 : 1;
}
std::atomic<bool>& f16_slot() {
  static std::atomic<bool> on{env_setting() == 1};
  return on;
}
std::atomic<bool>& bf16_slot() {
  static std::atomic<bool> on{env_setting() != 0};
  return on;
}
}  // namespace

bool attention_amx_on(KvType type) {
  if (!TANDEM_HAVE_AMX_KERNEL || !amx_bf16_available() || amx_mode() == AmxMode::kOff) return false;
  if (type == KvType::kBF16) return bf16_slot().load(std::memory_order_relaxed);
  return type == KvType::kF16 && f16_slot().load(std::memory_order_relaxed);
}

void set_attention_amx(bool on) {
  f16_slot().store(on, std::memory_order_relaxed);
  bf16_slot().store(on, std::memory_order_relaxed);
}

void reset_attention_amx() {
  f16_slot().store(env_setting() == 1, std::memory_order_relaxed);
  bf16_slot().store(env_setting() != 0, std::memory_order_relaxed);
}

bool attention_amx_fits(const AttentionArgs& a) {
  return (a.kv_type == KvType::kF16 || a.kv_type == KvType::kBF16) && a.head_dim % 32 == 0 &&
         a.block_tokens % 32 == 0 && a.head_dim <= 256 && a.sinks == nullptr;
}

namespace {
constexpr size_t kRows = 16;  // (query, head) rows per tile
constexpr size_t kKeys = 32;  // keys per step
constexpr size_t kSteps = 4;  // steps per softmax chunk
constexpr size_t kChunkKeys = kSteps * kKeys;
constexpr size_t kTileBytes = 1024;

size_t rows_padded(int n_queries, int group) {
  const size_t r = static_cast<size_t>(n_queries) * static_cast<size_t>(std::max(group, 1));
  return (r + kRows - 1) / kRows * kRows;
}
}  // namespace

size_t attention_amx_scratch_floats(int head_dim, int n_queries, int group) {
  const size_t hd = static_cast<size_t>(head_dim), r = rows_padded(n_queries, group);
  // Q tiles (hi + lo bf16 = one float per element); per step of a chunk K
  // and V tiles of 32 keys (hi + lo); S and P of two row tiles for a chunk;
  // P.V of two row tiles; max and sum; alignment of each.
  return r * hd + kSteps * 2 * kKeys * hd + 2 * kRows * kChunkKeys + kSteps * 4 * kTileBytes / 4 + 2 * kRows * hd +
         2 * r + 16 * 16;
}

}  // namespace tandem::kernels::detail

#if TANDEM_HAVE_AMX_KERNEL

// Compiled for AMX-BF16 and AVX-512 here only; runs after attention_amx_on().
// No inline function from a header is instantiated below (see matmul_amx.cpp).
#pragma GCC push_options
#pragma GCC target("amx-tile,amx-bf16,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include "kernels/amx_tiles.h"

namespace tandem::kernels::detail {
namespace {

void configure_all_tiles() {  // eight tiles of 16 rows x 64 bytes
  const uint8_t rows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
  const uint16_t colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
  amx::configure_tiles(rows, colsb);
}

// C tiles 0, 1 += A4 x B6, A4 x B7 (row tile X); with TWO, 2, 3 += A5 x
// B6, A5 x B7 (row tile Y). Four independent products in flight.
inline void dp_x_y(bool two) {
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  if (two) {
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// Loads A4 = AX, A5 = AY (with TWO; null: keep) and B6 = B0, B7 = B1 (rows
// STRIDE bytes apart), then dp_x_y.
inline void load_dp(const uint8_t* ax, const uint8_t* ay, const uint8_t* b0, const uint8_t* b1, long stride, bool two) {
  if (ax != nullptr) _tile_loadd(4, ax, 64);
  if (two && ay != nullptr) _tile_loadd(5, ay, 64);
  _tile_loadd(6, b0, stride);
  _tile_loadd(7, b1, stride);
  dp_x_y(two);
}

// The same products with new A tiles and the B tiles already loaded.
inline void load_a_dp(const uint8_t* ax, const uint8_t* ay, bool two) {
  _tile_loadd(4, ax, 64);
  if (two) _tile_loadd(5, ay, 64);
  dp_x_y(two);
}

inline void zero_c(bool two) {
  _tile_zero(0);
  _tile_zero(1);
  if (two) {
    _tile_zero(2);
    _tile_zero(3);
  }
}

inline __m512 top16(__m512 x) {  // x truncated to bf16, as f32
  return _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Lane k = (bf16 of A[k], bf16 of B[k]), both truncated: the pair layout of
// a B tile row. Exact for the hi and lo parts of f16 values.
inline __m512i pair_bf16(__m512 a, __m512 b) {
  return _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_srli_epi32(_mm512_castps_si512(a), 16), _mm512_castps_si512(b));
}

// 32 consecutive f32 (X0: 0-15, X1: 16-31) as 32 bf16 hi parts and 32 lo
// parts (the rest, rounded to nearest): rows of A tiles.
inline void split_row(__m512 x0, __m512 x1, void* hi, void* lo) {
  const __m512 h0 = top16(x0), h1 = top16(x1);
  _mm512_storeu_si512(hi, (__m512i)_mm512_cvtne2ps_pbh(h1, h0));
  _mm512_storeu_si512(lo, (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0)));
}

inline __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// B tile row of two f16 rows A and B (16 values each): hi and lo pairs.
inline void pair_rows(const uint16_t* a, const uint16_t* b, uint8_t* hi, uint8_t* lo) {
  const __m512 x = load_f16(a), y = load_f16(b);
  _mm512_store_si512(hi, pair_bf16(x, y));
  _mm512_store_si512(lo, pair_bf16(_mm512_sub_ps(x, top16(x)), _mm512_sub_ps(y, top16(y))));
}

// exp(x) for x <= 0 (scores minus their max), Cephes' polynomial, ~1 ulp;
// very negative x give 0 or a tiny number.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 range_mask(int64_t lo, int64_t hi, int64_t base) {  // lanes base..base+15 within [lo, hi]
  const int64_t from = lo - base < 0 ? 0 : (lo - base > 16 ? 16 : lo - base);
  const int64_t to = hi - base + 1 < 0 ? 0 : (hi - base + 1 > 16 ? 16 : hi - base + 1);
  if (to <= from) return 0;
  return static_cast<__mmask16>(((1u << to) - 1u) & ~((1u << from) - 1u));
}

// Local min/max: templates from headers instantiated under this target
// could be picked by the linker for other files.
inline int64_t max64(int64_t x, int64_t y) { return x > y ? x : y; }
inline int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
inline size_t min_size(size_t x, size_t y) { return x < y ? x : y; }
constexpr float kInf = __builtin_inff();

template <typename T>
T* carve(uint8_t*& at, size_t bytes) {
  T* p = reinterpret_cast<T*>(at);
  at += (bytes + 63) / 64 * 64;
  return p;
}

// One step of 32 keys (inside one block) as B tiles: K (keys 0-15 or
// 16-31, 32 dims from KC; hi, or lo of f16) and V (16 dims from DT; hi or
// lo), with their row strides.
struct StepKv {
  int64_t ks = 0;              // first key
  size_t slot = 0;             // step within its chunk
  const uint8_t* k = nullptr;  // bf16: the block's pairs at key ks; f16: converted tiles
  const uint8_t* v = nullptr;  // bf16 all seen: the block's pairs; else tiles in scratch
  long k_stride = 64, v_stride = 64;
  size_t bt = 0;  // keys per block
  bool k_direct = false, v_direct = false;

  const uint8_t* k_tile(size_t kc, size_t half, size_t part) const {
    if (k_direct) return k + (kc * 16 * bt + half * 16) * 4;  // 16 dim pairs x 16 keys
    return k + ((kc * 2 + half) * 2 + part) * kTileBytes;
  }
  const uint8_t* v_tile(size_t dt, size_t part) const {
    if (v_direct) return v + dt * 16 * 4;  // 16 key pairs x 16 dims
    return v + (dt * 2 + part) * kTileBytes;
  }
};

// Points X at the K and V of keys X.ks .. X.ks + 31 (a block's keys T_IN..
// of heads KH, VH; [LO, HI] the ones anyone sees), converting into KT, VT
// where they cannot be read in place: f16 always (to bf16 hi + lo pairs);
// bf16 V when some of the keys are unseen, whose rows become zero so their
// zero weights cannot meet a stale non-finite value.
void prepare_step(StepKv& x, const uint16_t* kh, const uint16_t* vh, bool bf16, int64_t lo, int64_t hi, size_t t_in,
                  size_t bt, size_t hd, uint8_t* kt, uint8_t* vt) {
  const size_t n_kc = hd / 32, n_dt = hd / 16;
  x.bt = bt;
  const bool all_seen = lo == x.ks && hi == x.ks + static_cast<int64_t>(kKeys) - 1;
  x.k_direct = bf16;
  x.v_direct = bf16 && all_seen;
  if (bf16) {
    x.k = reinterpret_cast<const uint8_t*>(kh + t_in * 2);
    x.k_stride = static_cast<long>(bt) * 4;
  } else {
    // K: row d of the block holds its bt keys; a B row pairs dims 2j, 2j+1.
    for (size_t kc = 0; kc < n_kc; ++kc) {
      for (size_t half = 0; half < 2; ++half) {
        uint8_t* dst = kt + ((kc * 2 + half) * 2) * kTileBytes;
        for (size_t j = 0; j < 16; ++j) {
          const uint16_t* k0 = kh + (kc * 32 + 2 * j) * bt + t_in + half * 16;
          pair_rows(k0, k0 + bt, dst + j * 64, dst + kTileBytes + j * 64);
        }
      }
    }
    x.k = kt;
    x.k_stride = 64;
  }
  if (x.v_direct) {
    x.v = reinterpret_cast<const uint8_t*>(vh + t_in / 2 * hd * 2);
    x.v_stride = static_cast<long>(hd) * 4;
    return;
  }
  // V: a B row pairs keys 2j, 2j+1.
  for (size_t dt = 0; dt < n_dt; ++dt) {
    uint8_t* dst = vt + dt * 2 * kTileBytes;
    for (size_t j = 0; j < 16; ++j) {
      const int64_t t0 = x.ks + static_cast<int64_t>(2 * j);
      if (t0 + 1 < lo || t0 > hi) {
        _mm512_store_si512(dst + j * 64, _mm512_setzero_si512());
        _mm512_store_si512(dst + kTileBytes + j * 64, _mm512_setzero_si512());
        continue;
      }
      const size_t t = t_in + 2 * j;
      if (bf16) {
        _mm512_store_si512(dst + j * 64, _mm512_loadu_si512(vh + (t / 2 * hd + dt * 16) * 2));
      } else {
        const uint16_t* v0 = vh + t * hd + dt * 16;
        pair_rows(v0, v0 + hd, dst + j * 64, dst + kTileBytes + j * 64);
      }
      if (t0 < lo || t0 + 1 > hi) {  // one of the pair unseen: zero its half
        const __mmask32 keep = t0 < lo ? 0xAAAAAAAAu : 0x55555555u;
        for (size_t part = 0; part < (bf16 ? 1u : 2u); ++part) {
          uint8_t* row = dst + part * kTileBytes + j * 64;
          _mm512_store_si512(row, _mm512_maskz_mov_epi16(keep, _mm512_load_si512(row)));
        }
      }
    }
  }
  x.v = vt;
  x.v_stride = 64;
}

}  // namespace

void attention_amx(const AttentionArgs& a, int head_begin, int head_end) {
  const int group = a.n_heads / a.n_kv_heads;
  const size_t hd = static_cast<size_t>(a.head_dim);
  const size_t n_kc = hd / 32;  // depth steps of Q.K^T
  const size_t n_dt = hd / 16;  // output tiles of P.V
  const int64_t bt = a.block_tokens;
  const bool bf16 = a.kv_type == KvType::kBF16;  // else f16
  const size_t head_bytes = kv_head_bytes(a.kv_type, a.head_dim, a.block_tokens);
  const int64_t last_pos = a.pos + a.n_queries - 1;
  auto first_visible = [&](int64_t pos) { return a.window > 0 ? max64(0, pos - a.window + 1) : 0; };

  uint8_t* at = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(a.scratch) + 63) / 64 * 64);
  const size_t max_rows = rows_padded(a.n_queries, group);
  uint8_t* qt = carve<uint8_t>(at, max_rows / kRows * n_kc * 2 * kTileBytes);  // [tile][kc][hi, lo]
  const size_t kt_step = n_kc * 2 * 2 * kTileBytes, vt_step = n_dt * 2 * kTileBytes;
  uint8_t* kt = carve<uint8_t>(at, kSteps * kt_step);         // per step [kc][half][hi, lo] (f16)
  uint8_t* vt = carve<uint8_t>(at, kSteps * vt_step);         // per step [dt][hi, lo]
  float* s = carve<float>(at, 2 * kRows * kChunkKeys * 4);    // two row tiles x a chunk's keys
  uint8_t* pt = carve<uint8_t>(at, kSteps * 4 * kTileBytes);  // per step: P hi, lo of two row tiles
  float* pv = carve<float>(at, 2 * kRows * hd * 4);
  float* run_max = carve<float>(at, max_rows * 4);
  float* run_sum = carve<float>(at, max_rows * 4);

  configure_all_tiles();
  for (int kvh = head_begin / group; kvh * group < head_end; ++kvh) {
    const int hb = head_begin > kvh * group ? head_begin : kvh * group;
    const int he = head_end < (kvh + 1) * group ? head_end : (kvh + 1) * group;
    const size_t n_h = static_cast<size_t>(he - hb);
    const size_t n_rows = static_cast<size_t>(a.n_queries) * n_h;  // row r: query r / n_h, head hb + r % n_h
    const size_t n_tiles = (n_rows + kRows - 1) / kRows;
    auto q_of = [&](size_t r) { return a.q + static_cast<int64_t>(r / n_h) * a.q_stride + (hb + r % n_h) * hd; };
    auto out_of = [&](size_t r) { return a.out + static_cast<int64_t>(r / n_h) * a.out_stride + (hb + r % n_h) * hd; };
    // Q as A tiles, once for all keys; padding rows zero.
    for (size_t r = 0; r < n_tiles * kRows; ++r) {
      for (size_t kc = 0; kc < n_kc; ++kc) {
        uint8_t* hi = qt + ((r / kRows * n_kc + kc) * 2) * kTileBytes + (r % kRows) * 64;
        if (r < n_rows) {
          const float* q = q_of(r) + kc * 32;
          split_row(_mm512_loadu_ps(q), _mm512_loadu_ps(q + 16), hi, hi + kTileBytes);
        } else {
          std::memset(hi, 0, 64);
          std::memset(hi + kTileBytes, 0, 64);
        }
      }
      if (r < n_rows) {
        std::memset(out_of(r), 0, hd * sizeof(float));
        run_max[r] = -kInf;
        run_sum[r] = 0.0f;
      }
    }
    // Chunks of kSteps x 32 keys at multiples of their size (absolute
    // positions: the same chunks whatever the call's first query). One
    // softmax update and one output update per row and chunk; P.V of the
    // chunk's steps accumulates in the tiles.
    const int64_t chunk_keys = static_cast<int64_t>(kSteps * kKeys);
    for (int64_t cs = first_visible(a.pos) / chunk_keys * chunk_keys; cs <= last_pos; cs += chunk_keys) {
      // The chunk's steps anyone sees, their K and V.
      StepKv st[kSteps];
      size_t n_st = 0;
      for (size_t j = 0; j < kSteps; ++j) {
        const int64_t ks = cs + static_cast<int64_t>(j * kKeys);
        const int64_t lo = max64(first_visible(a.pos), ks), hi = min64(last_pos, ks + static_cast<int64_t>(kKeys) - 1);
        if (lo > hi) continue;
        StepKv& x = st[n_st];
        x.ks = ks;
        x.slot = j;
        const int64_t b = ks / bt, t_in = ks % bt;
        const auto* kh = reinterpret_cast<const uint16_t*>(a.k_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
        const auto* vh = reinterpret_cast<const uint16_t*>(a.v_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
        prepare_step(x, kh, vh, bf16, lo, hi, static_cast<size_t>(t_in), static_cast<size_t>(bt), hd,
                     kt + n_st * kt_step, vt + n_st * vt_step);
        ++n_st;
      }
      if (n_st == 0) continue;
      const int64_t chunk_end = cs + chunk_keys - 1;
      // Active row tiles, two at a time: four independent accumulator
      // tiles keep the tile unit busy (a tile register is not renamed).
      size_t active_tiles[2];
      size_t n_active = 0;
      for (size_t tile = 0; tile <= n_tiles; ++tile) {
        if (tile < n_tiles) {
          const size_t r0 = tile * kRows, r1 = min_size(n_rows, r0 + kRows);
          const int64_t pos_lo = a.pos + static_cast<int64_t>(r0 / n_h),
                        pos_hi = a.pos + static_cast<int64_t>((r1 - 1) / n_h);
          if (pos_hi < st[0].ks || first_visible(pos_lo) > chunk_end) continue;
          active_tiles[n_active++] = tile;
          if (n_active < 2) continue;
        }
        if (n_active == 0) break;
        const bool two = n_active == 2;
        const size_t tx = active_tiles[0], ty = two ? active_tiles[1] : active_tiles[0];
        n_active = 0;
        // S = Q.K^T per step: tiles 0, 1 = X's keys 0-15, 16-31; 2, 3 = Y's.
        // Row i of S holds the chunk's keys: step slot j at i * kChunkKeys + 32 j.
        for (size_t j = 0; j < n_st; ++j) {
          const StepKv& x = st[j];
          zero_c(two);
          for (size_t kc = 0; kc < n_kc; ++kc) {
            const uint8_t* qx = qt + ((tx * n_kc + kc) * 2) * kTileBytes;  // hi, lo
            const uint8_t* qy = qt + ((ty * n_kc + kc) * 2) * kTileBytes;
            load_dp(qx, qy, x.k_tile(kc, 0, 0), x.k_tile(kc, 1, 0), x.k_stride, two);  // hi x hi
            if (bf16) {
              load_a_dp(qx + kTileBytes, qy + kTileBytes, two);  // lo x K
              continue;
            }
            load_dp(nullptr, nullptr, x.k_tile(kc, 0, 1), x.k_tile(kc, 1, 1), 64, two);                  // hi x lo
            load_dp(qx + kTileBytes, qy + kTileBytes, x.k_tile(kc, 0, 0), x.k_tile(kc, 1, 0), 64, two);  // lo x hi
          }
          float* sj = s + x.slot * kKeys;
          const long row = static_cast<long>(kChunkKeys * 4);
          _tile_stored(0, sj, row);
          _tile_stored(1, sj + 16, row);
          if (two) {
            _tile_stored(2, sj + kRows * kChunkKeys, row);
            _tile_stored(3, sj + kRows * kChunkKeys + 16, row);
          }
        }
        // Online softmax per row over its own keys of the chunk; P rows
        // as bf16 hi, lo per step.
        float corr[2 * kRows];
        bool active[2 * kRows];
        const __m512 scale = _mm512_set1_ps(a.scale);
        const __m512 ninf = _mm512_set1_ps(-kInf);
        for (size_t i = 0; i < (two ? 2 : 1) * kRows; ++i) {
          const size_t r = (i < kRows ? tx : ty) * kRows + i % kRows;
          active[i] = false;
          int64_t t0 = 0, t1 = -1;
          if (r < n_rows) {
            const int64_t pos = a.pos + static_cast<int64_t>(r / n_h);
            t0 = max64(first_visible(pos), cs);
            t1 = min64(pos, chunk_end);
          }
          if (t0 > t1) {  // padding, or no key of this chunk for this row: zero weights
            for (size_t j = 0; j < n_st; ++j) {
              uint8_t* prow = pt + (j * 2 + i / kRows) * 2 * kTileBytes + (i % kRows) * 64;
              _mm512_store_si512(prow, _mm512_setzero_si512());
              _mm512_store_si512(prow + kTileBytes, _mm512_setzero_si512());
            }
            continue;
          }
          float* srow = s + i * kChunkKeys;
          __mmask16 m[kSteps][2];
          __m512 mx = ninf;
          for (size_t j = 0; j < n_st; ++j) {
            const int64_t ks = st[j].ks;
            float* x = srow + st[j].slot * kKeys;
            m[j][0] = range_mask(t0, t1, ks);
            m[j][1] = range_mask(t0, t1, ks + 16);
            const __m512 x0 = _mm512_mul_ps(_mm512_loadu_ps(x), scale),
                         x1 = _mm512_mul_ps(_mm512_loadu_ps(x + 16), scale);
            _mm512_storeu_ps(x, x0);
            _mm512_storeu_ps(x + 16, x1);
            mx = _mm512_max_ps(
                mx, _mm512_max_ps(_mm512_mask_mov_ps(ninf, m[j][0], x0), _mm512_mask_mov_ps(ninf, m[j][1], x1)));
          }
          active[i] = true;
          const float chunk_max = _mm512_reduce_max_ps(mx);
          const float old_max = run_max[r];
          const float new_max = old_max > chunk_max ? old_max : chunk_max;
          corr[i] = new_max == old_max ? 1.0f : __builtin_expf(old_max - new_max);  // 0 on the first keys
          const __m512 vm = _mm512_set1_ps(new_max);
          __m512 sum = _mm512_setzero_ps();
          for (size_t j = 0; j < n_st; ++j) {
            float* x = srow + st[j].slot * kKeys;
            const __m512 p0 = _mm512_maskz_mov_ps(m[j][0], exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x), vm)));
            const __m512 p1 = _mm512_maskz_mov_ps(m[j][1], exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + 16), vm)));
            sum = _mm512_add_ps(sum, _mm512_add_ps(p0, p1));
            uint8_t* prow = pt + (j * 2 + i / kRows) * 2 * kTileBytes + (i % kRows) * 64;
            split_row(p0, p1, prow, prow + kTileBytes);
          }
          run_sum[r] = run_sum[r] * corr[i] + _mm512_reduce_add_ps(sum);
          run_max[r] = new_max;
        }
        // P.V over the chunk's steps, two 16-dim tiles at a time: 0, 1 =
        // X's, 2, 3 = Y's.
        float* pvy = pv + kRows * hd;
        for (size_t dt = 0; dt < n_dt; dt += 2) {
          zero_c(two);
          for (size_t j = 0; j < n_st; ++j) {
            const StepKv& x = st[j];
            const uint8_t* px = pt + (j * 2) * 2 * kTileBytes;  // X hi, lo, then Y hi, lo
            load_dp(px, px + 2 * kTileBytes, x.v_tile(dt, 0), x.v_tile(dt + 1, 0), x.v_stride, two);  // hi x hi
            if (bf16) {
              load_a_dp(px + kTileBytes, px + 3 * kTileBytes, two);  // lo x V
            } else {
              load_dp(nullptr, nullptr, x.v_tile(dt, 1), x.v_tile(dt + 1, 1), 64, two);                      // hi x lo
              load_dp(px + kTileBytes, px + 3 * kTileBytes, x.v_tile(dt, 0), x.v_tile(dt + 1, 0), 64, two);  // lo x hi
            }
          }
          _tile_stored(0, pv + dt * 16, static_cast<long>(hd * 4));
          _tile_stored(1, pv + dt * 16 + 16, static_cast<long>(hd * 4));
          if (two) {
            _tile_stored(2, pvy + dt * 16, static_cast<long>(hd * 4));
            _tile_stored(3, pvy + dt * 16 + 16, static_cast<long>(hd * 4));
          }
        }
        for (size_t i = 0; i < (two ? 2 : 1) * kRows; ++i) {
          if (!active[i]) continue;
          float* out = out_of((i < kRows ? tx : ty) * kRows + i % kRows);
          const __m512 c = _mm512_set1_ps(corr[i]);
          for (size_t d = 0; d < hd; d += 16) {
            _mm512_storeu_ps(out + d, _mm512_fmadd_ps(_mm512_loadu_ps(out + d), c, _mm512_loadu_ps(pv + i * hd + d)));
          }
        }
      }
    }
    for (size_t r = 0; r < n_rows; ++r) {
      float* out = out_of(r);
      const __m512 inv = _mm512_set1_ps(1.0f / run_sum[r]);
      for (size_t d = 0; d < hd; d += 16) _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(out + d), inv));
    }
  }
  _tile_release();
}

}  // namespace tandem::kernels::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

namespace tandem::kernels::detail {
void attention_amx(const AttentionArgs&, int, int) {}
}  // namespace tandem::kernels::detail

#endif
