// Pieces shared by the AMX kernels (matmul_amx.cpp: Q8_0/Q4_0,
// matmul_amx_kq.cpp: Q4_K/Q6_K). Include only inside a region compiled for
// amx-tile, amx-int8 and AVX-512 (`#pragma GCC target`, see those files),
// after every other header: these inline functions exist for that target
// only and run only after amx_available().
//
// Both kernels compute 16 x 16 output tiles: C[i][j] = weight row i . act
// row j (tdpbssd), accumulated in 16 zmm registers (row i = weight row,
// lane j = activation row) over all of K, then transposed once into Y.
#pragma once

#include <immintrin.h>

#include "kernels/matmul_internal.h"
#include "kernels/thread_pool.h"

#include <cstdint>
#include <cstring>

namespace tandem::kernels::detail::amx {

constexpr int kTile = 16;  // rows of every tile, weight and activation side

// ldtilecfg's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(TileConfig) == 64);

// Tile t gets ROWS[t] rows of COLSB[t] bytes (t < 8). Per thread, before
// the first tile instruction; _tile_release() when done.
inline void configure_tiles(const uint8_t rows[8], const uint16_t colsb[8]) {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = rows[t], cfg.colsb[t] = colsb[t];
  // The intrinsic's asm declares only 8 bytes of CFG as read: keep the
  // compiler from dropping the other stores.
  asm volatile("" ::: "memory");
  _tile_loadconfig(&cfg);
}

// 16 x 16 transpose of 32-bit lanes (bit moves only): out[j] lane i = in[i] lane j.
inline void transpose16(const __m512 in[16], __m512 out[16]) {
  __m512 t[16], u[16];
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_ps(in[k], in[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(in[k], in[k + 1]);
  }
  for (int k = 0; k < 16; k += 4) {  // u[k + c], 128-bit lane L: column 4L + c of rows k..k+3
    u[k + 0] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
    u[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xee);
    u[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    u[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    out[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    out[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    out[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    out[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// Rows of the activation panel P (16 rows each, the last may be short).
inline int panel_rows(int64_t m, int64_t p) { return static_cast<int>(m - p * kTile < kTile ? m - p * kTile : kTile); }

// The N weight rows in tiles of 16, shifted so that each tile's 16 Y
// columns fill one cache line: a first, short tile of LEAD rows when Y's
// rows start inside a line. Otherwise each output tile's 16 row stores
// split across two lines: Q8_0 1024x3072 at M = 512 into a Y 16 bytes past
// a line (as a large std::vector is) ran at 367 instead of 539 GFLOP/s
// per core. Which tile a row falls in never changes its result.
struct TileGrid {
  int64_t n = 0, lead = 0;
  TileGrid(int64_t n_rows, const float* y, int64_t y_stride) : n(n_rows) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(y);
    if (a % 4 == 0 && y_stride % kTile == 0) lead = static_cast<int64_t>((kTile - (a / 4) % kTile) % kTile);
    if (lead >= n) lead = 0;
  }
  int64_t count() const { return (lead > 0 ? 1 : 0) + (n - lead + kTile - 1) / kTile; }
  int64_t begin(int64_t t) const { return lead > 0 ? (t == 0 ? 0 : lead + (t - 1) * kTile) : t * kTile; }
  int rows(int64_t t) const {
    const int64_t r = lead > 0 && t == 0 ? lead : n - begin(t);
    return static_cast<int>(r < kTile ? r : kTile);
  }
};

// Prefetches issued block by block while an output tile runs.
//
// The output tile's 16 Y lines are written once, cold: their misses
// (read-for-ownership) held up the tile loads and stores that follow
// (the tile unit waits for older stores): 523 -> 356 GFLOP/s per core for
// Q8_0 1024x3072 at M = 512 with a fresh Y per call, as in a forward pass.
// So the next output tile's lines are fetched for writing ahead.
struct Fetch {
  const uint8_t* weights = nullptr;  // 16 weight rows ROW_BYTES apart, one block of BLOCK_BYTES per step
  size_t row_bytes = 0, block_bytes = 0;
  const float* y = nullptr;  // the next output tile's first Y row
  int y_rows = 0;

  // The output tile after panel P of the tile at column N0 of Y: panel
  // P + 1, or panel 0 of the next weight tile (at NEXT_N0, < 0: none).
  static Fetch next_output(const float* y, int64_t y_stride, int64_t m, int64_t n0, int64_t p, int64_t n_panels,
                           int64_t next_n0) {
    Fetch f;
    if (p + 1 < n_panels) {
      f.y = y + (p + 1) * kTile * y_stride + n0, f.y_rows = panel_rows(m, p + 1);
    } else if (next_n0 >= 0) {
      f.y = y + next_n0, f.y_rows = panel_rows(m, 0);
    }
    return f;
  }

  // Step B of NB: weight block B and the Y rows B, B + NB, ... Always
  // inlined: as a call GCC deems a function of prefetches alone free of
  // effects and drops it.
  __attribute__((always_inline)) void block(int64_t b, int64_t nb, int64_t y_stride) const {
    if (weights != nullptr) {
      for (int i = 0; i < kTile; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(weights + i * row_bytes + b * block_bytes), _MM_HINT_T0);
      }
    }
    for (int64_t j = b; j < y_rows; j += nb) __builtin_prefetch(y + j * y_stride, 1, 3);
  }
};

// Y[j][i] = ACC[i] lane j for weight rows i < N_ROWS and activation rows
// j < M_ROWS (Y points at the tile's first output, rows Y_STRIDE apart).
inline void store_transposed(const __m512 acc[16], int n_rows, int m_rows, float* y, int64_t y_stride) {
  __m512 out[16];
  transpose16(acc, out);
  const __mmask16 mask = static_cast<__mmask16>((1u << n_rows) - 1);
  for (int j = 0; j < m_rows; ++j) _mm512_mask_storeu_ps(y + j * y_stride, mask, out[j]);
}

// The two phases of every AMX matmul: the M activation rows packed into
// panels of 16 rows (PACK_PANEL(scratch, k, first_row, rows, out), a panel
// of PANEL_BYTES per 16 rows), then the output tiles of GRID split across
// the threads (RUN_TILES(w, grid, begin, end, panels, m, y, y_stride, work)).
template <class PackPanel, class RunTiles>
void pack_then_run(const Matrix& w, int64_t m, size_t panel_bytes, float* y, int64_t y_stride, ThreadPool& pool,
                   const ScratchView& s, PackPanel pack_panel, RunTiles run_tiles) {
  const int64_t panels = (m + kTile - 1) / kTile;
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(panels, t, nt, &begin, &end);
    for (int64_t p = begin; p < end; ++p) {
      const int64_t rows = m - p * kTile < kTile ? m - p * kTile : kTile;
      pack_panel(s, w.cols, p * kTile, static_cast<int>(rows), s.panels + static_cast<size_t>(p) * panel_bytes);
    }
  });
  const TileGrid grid(w.rows, y, y_stride);
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(grid.count(), t, nt, &begin, &end);
    if (begin < end)
      run_tiles(w, grid, begin, end, s.panels, m, y, y_stride, s.work + static_cast<size_t>(t) * s.work_stride);
  });
}

}  // namespace tandem::kernels::detail::amx
