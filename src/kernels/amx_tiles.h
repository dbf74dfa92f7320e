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

// Y[j][i] = ACC[i] lane j for weight rows i < N_ROWS and activation rows
// j < M_ROWS (Y points at the tile's first output, rows Y_STRIDE apart).
inline void store_transposed(const __m512 acc[16], int n_rows, int m_rows, float* y, int64_t y_stride) {
  __m512 out[16];
  transpose16(acc, out);
  const __mmask16 mask = static_cast<__mmask16>((1u << n_rows) - 1);
  for (int j = 0; j < m_rows; ++j) _mm512_mask_storeu_ps(y + j * y_stride, mask, out[j]);
}

}  // namespace tandem::kernels::detail::amx
