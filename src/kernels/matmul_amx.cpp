// Q8_0 and Q4_0 weights x int8 activations on the AMX tile unit (amx.h),
// bit-identical to the AVX-512 VNNI kernel of matmul_q8.cpp.
//
// One tile product per block of 32: the weights carry one scale per 32, so
// every block's exact int32 totals must come out of the tile unit before
// the f32 step the VNNI kernel performs per output:
//
//   acc += float(block total) * (d_w * d_x)       (cvt, mul, fma; block order)
//
// The tiles (A = weights, B = activations, C[i][j] = W row i . X row j):
//
//   A  16 weight rows x 32 int8: Q8_0 read in place (rows row_bytes apart),
//      Q4_0 and a short tile unpacked to 512 B; d_w as a 16 x f32 table
//   B  8 rows x 64 B: row r holds quants 4r..4r+3 of 16 activation rows
//      (the "VNNI" layout; a packed panel block: 512 B + 16 f32 d_x)
//   C  16 x 16 int32: tdpbssd (signed x signed, exact, no saturation)
//
// An output tile (16 weight rows x 16 activation rows) runs over all of K
// with its 16 accumulators in zmm registers (row i = weight row, lane j =
// activation row), then transposes once into Y (amx_tiles.h). Per block:
// 2 tile loads, tilezero, tdpbssd, a tile store (1 KB) and 16 x (load,
// cvt, mul by the broadcast d_w, fma). The next block's product is issued
// before this block's epilogue (four C tiles in rotation).
//
// Where the cycles go (Sapphire Rapids, isolated loops, TSC cycles at
// 2.6 GHz): tdpbssd at K = 32 takes as long as at K = 64 (~11 cycles: the
// per-32 scales leave half the unit idle), the tile work per block ~25,
// the epilogue's 48 f32 ops on ports 0 and 5 ~22-24, and the two do not
// overlap: ~50 per block (docs/BENCHMARKS.md).
//
// Determinism: C holds the same integers the VNNI kernel sums (integers are
// exact in any order), d_w and d_x are the same f32 values, and each output
// sees mul(d_w, d_x), then fma(float(total), scale, acc), block by block
// from 0: the same IEEE operations in the same order, so the same bits.
// Padding rows (past N or M) hold zeros and are never stored.
#include "kernels/matmul_internal.h"

#include <atomic>
#include <cstring>

namespace tandem::kernels::detail {
namespace {
std::atomic<uint64_t> amx_calls{0};
}  // namespace

void count_amx_call() { amx_calls.fetch_add(1, std::memory_order_relaxed); }
uint64_t amx_call_count() { return amx_calls.load(std::memory_order_relaxed); }

}  // namespace tandem::kernels::detail

#if TANDEM_HAVE_AMX_KERNEL

// Everything below runs only after amx_available(): compiled for AMX and
// AVX-512 here, without a global -march (the rest of the build must run
// on any x86-64). Apart from amx_tiles.h (made for this region) no inline
// function or template from a header is instantiated below this line, so
// none is emitted with these targets for other files to pick up.
#pragma GCC push_options
#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,prfchw")
// GCC 12's AVX-512 intrinsics pass `__m512 __Y = __Y;` ("undefined")
// vectors, which -Wuninitialized flags once they are inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/amx_tiles.h"

namespace tandem::kernels::detail {
namespace {

using namespace amx;
constexpr size_t kBlockBytes = kAmxBlockBytes;  // 512 int8 + 16 f32 scales
static_assert(kBlockBytes == 512 + 16 * 4);

// Tiles: 0, 1 = A (weights, 16 x 32 B), 2, 3 = B (activations, 8 x 64 B),
// 4..7 = C (16 x 64 B).
void configure_q8_tiles() {
  const uint8_t rows[8] = {kTile, kTile, 8, 8, kTile, kTile, kTile, kTile};
  const uint16_t colsb[8] = {32, 32, 64, 64, 64, 64, 64, 64};
  configure_tiles(rows, colsb);
}

// ---- activation panels ---------------------------------------------------------

// Packs activation rows [m0, m0 + rows) (rows <= 16; quantized rows of the
// VNNI target: u8 = q + 128, then K/32 f32 scales) into K/32 panel blocks:
//   out[r] (64 B) = dword r of rows 0..15, for r < 8  |  d_x[16]
// Rows past ROWS are zero (quants and scales).
void pack_panel(const ScratchView& s, int64_t k, int64_t m0, int rows, uint8_t* out) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m512i lo_idx = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i hi_idx = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  const uint8_t* row[kTile];
  for (int j = 0; j < kTile; ++j) row[j] = j < rows ? s.act + static_cast<size_t>(m0 + j) * s.act_stride : nullptr;
  auto quants = [&](int j, int64_t b) {
    if (row[j] == nullptr) return _mm256_setzero_si256();
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[j] + 32 * b)), flip);
  };
  for (int64_t b = 0; b < k / 32; ++b) {
    // z[j] = row j | row j + 8; an 8x8 dword transpose within each 256-bit
    // half then gives dword r of rows 0..7 | rows 8..15 in one vector.
    __m512i z[8], t[8], u[8];
    for (int j = 0; j < 8; ++j) {
      z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(quants(j, b)), quants(j + 8, b), 1);
    }
    for (int j = 0; j < 8; j += 2) {
      t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
      t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
    }
    for (int h = 0; h < 8; h += 4) {  // rows 0..3 (h = 0), 4..7 (h = 4); u[h + g]: dwords g, g + 4
      u[h + 0] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
      u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
      u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
      u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    uint8_t* dst = out + static_cast<size_t>(b) * kBlockBytes;
    for (int g = 0; g < 4; ++g) {
      _mm512_storeu_si512(dst + 64 * g, _mm512_permutex2var_epi64(u[g], lo_idx, u[g + 4]));
      _mm512_storeu_si512(dst + 64 * (g + 4), _mm512_permutex2var_epi64(u[g], hi_idx, u[g + 4]));
    }
    float* dx = reinterpret_cast<float*>(dst + 512);
    for (int j = 0; j < kTile; ++j) {
      dx[j] = row[j] != nullptr ? reinterpret_cast<const float*>(row[j] + k)[b] : 0.0f;
    }
  }
}

// ---- weight tiles ----------------------------------------------------------------

// Where output_tile() finds block b of 16 weight rows: row i's 32 int8 at
// quants + b * block_step + i * stride, its d_w at dw[16 b + i].
struct WeightTile {
  const uint8_t* quants;
  size_t stride, block_step;
  const float* dw;
};

// d_w of weight rows [n0, n0 + rows) for every block, as f32 (exact, as
// the VNNI kernel's vcvtph2ps): DW[16 b + i]; rows past ROWS get 0.
void prepare_scales(const Matrix& w, int64_t n0, int rows, float* dw) {
  const int64_t block_bytes = w.type == gguf::TensorType::Q4_0 ? 18 : 34;
  const uint8_t* base = w.data + static_cast<size_t>(n0) * w.row_bytes;
  if (rows == kTile) {
    // One gather of the 16 rows' first 4 bytes (f16 d + a quant) per block.
    const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(static_cast<int>(w.row_bytes)));
    for (int64_t b = 0; b < w.cols / 32; ++b) {
      const __m512i v = _mm512_i32gather_epi32(offsets, base + b * block_bytes, 1);
      _mm512_storeu_ps(dw + 16 * b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
    }
    return;
  }
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    for (int i = 0; i < kTile; ++i) {
      uint16_t h = 0;
      if (i < rows) std::memcpy(&h, base + static_cast<size_t>(i) * w.row_bytes + b * block_bytes, 2);
      dw[16 * b + i] = _cvtsh_ss(h);
    }
  }
}

// Weight rows [n0, n0 + rows) as K/32 blocks of 16 rows x 32 int8 (512 B);
// rows past ROWS are zero. Q4_0 is unpacked to nibble - 8, the values the
// VNNI kernel multiplies. Needed for Q4_0 and for a ragged last tile
// (Q8_0 tiles of 16 rows are read in place).
void prepare_quants(const Matrix& w, int64_t n0, int rows, uint8_t* out) {
  const bool q4 = w.type == gguf::TensorType::Q4_0;
  const int64_t block_bytes = q4 ? 18 : 34;
  const __m128i m4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    for (int i = 0; i < kTile; ++i) {
      uint8_t* q = out + 512 * b + 32 * i;
      if (i >= rows) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_setzero_si256());
        continue;
      }
      const uint8_t* blk =
          w.data + static_cast<size_t>(n0 + i) * w.row_bytes + static_cast<size_t>(b * block_bytes) + 2;
      if (q4) {
        const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm_sub_epi8(_mm_and_si128(p, m4), eight));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16),
                         _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(p, 4), m4), eight));
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      }
    }
  }
}

// ---- output tiles ------------------------------------------------------------------

// C = A . B for one block of the prepared weights WA and the panel XB,
// stored to CBUF (16 x 16 int32). Tile numbers are literals in the
// intrinsics, hence one function per register set: block b uses A/B set
// b % 2 and C tile b % 4, so block b + 1's product never waits for block
// b's store to read its C. (Two C tiles measured the same: the kernel is
// not bound by the product's latency.)
#define TANDEM_AMX_BLOCK_PRODUCT(name, ta, tb, tc)                                          \
  inline void name(const uint8_t* wa, size_t wa_stride, const uint8_t* xb, int32_t* cbuf) { \
    _tile_loadd(ta, wa, wa_stride);                                                         \
    _tile_loadd(tb, xb, 64);                                                                \
    _tile_zero(tc);                                                                         \
    _tile_dpbssd(tc, ta, tb);                                                               \
    _tile_stored(tc, cbuf, 64);                                                             \
  }
TANDEM_AMX_BLOCK_PRODUCT(block_product0, 0, 2, 4)
TANDEM_AMX_BLOCK_PRODUCT(block_product1, 1, 3, 5)
TANDEM_AMX_BLOCK_PRODUCT(block_product2, 0, 2, 6)
TANDEM_AMX_BLOCK_PRODUCT(block_product3, 1, 3, 7)
#undef TANDEM_AMX_BLOCK_PRODUCT

inline void block_product(int64_t b, const uint8_t* wa, size_t wa_stride, const uint8_t* xb, int32_t* cbufs) {
  int32_t* cbuf = cbufs + 256 * (b & 3);
  switch (b & 3) {
    case 0: return block_product0(wa, wa_stride, xb, cbuf);
    case 1: return block_product1(wa, wa_stride, xb, cbuf);
    case 2: return block_product2(wa, wa_stride, xb, cbuf);
    default: return block_product3(wa, wa_stride, xb, cbuf);
  }
}

// acc[i] (lane j) += float(C[i][j]) * (d_w[i] * d_x[j]): exactly the
// VNNI kernel's mul(dw, dx) and fma(cvt(isum), scale, acc) per output.
#define TANDEM_AMX_EPILOGUE_ROW(i)                                                 \
  acc##i = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(cbuf + 16 * (i))), \
                           _mm512_mul_ps(_mm512_set1_ps(dw[i]), dx), acc##i)
#define TANDEM_AMX_ROWS(X) \
  X(0);                    \
  X(1);                    \
  X(2);                    \
  X(3);                    \
  X(4);                    \
  X(5);                    \
  X(6);                    \
  X(7);                    \
  X(8);                    \
  X(9);                    \
  X(10);                   \
  X(11);                   \
  X(12);                   \
  X(13);                   \
  X(14);                   \
  X(15)

// Y[m0 + j][n0 + i] for i < N_ROWS, j < M_ROWS, over all K/32 blocks of
// the weight tile WT and the packed panel XP, fetching F on the way.
void output_tile(const WeightTile& wt, const uint8_t* xp, int64_t nb, int n_rows, int m_rows, float* y,
                 int64_t y_stride, int32_t* cbufs, const Fetch& f) {
  __m512 acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15;
  acc0 = acc1 = acc2 = acc3 = acc4 = acc5 = acc6 = acc7 = _mm512_setzero_ps();
  acc8 = acc9 = acc10 = acc11 = acc12 = acc13 = acc14 = acc15 = _mm512_setzero_ps();
  block_product(0, wt.quants, wt.stride, xp, cbufs);
  for (int64_t b = 0; b < nb; ++b) {
    if (b + 1 < nb) {
      block_product(b + 1, wt.quants + static_cast<size_t>(b + 1) * wt.block_step, wt.stride,
                    xp + static_cast<size_t>(b + 1) * kBlockBytes, cbufs);
    }
    f.block(b, nb, y_stride);
    const int32_t* cbuf = cbufs + 256 * (b & 3);
    const float* dw = wt.dw + 16 * b;
    const __m512 dx = _mm512_loadu_ps(xp + static_cast<size_t>(b) * kBlockBytes + 512);
    TANDEM_AMX_ROWS(TANDEM_AMX_EPILOGUE_ROW);
  }
  const __m512 acc[16] = {acc0, acc1, acc2,  acc3,  acc4,  acc5,  acc6,  acc7,
                          acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15};
  store_transposed(acc, n_rows, m_rows, y, y_stride);
}

#undef TANDEM_AMX_ROWS
#undef TANDEM_AMX_EPILOGUE_ROW

// One thread's weight tiles [BEGIN, END) against every panel, in the order
// (tile, panel). Tile t + 1
// is prepared before tile t runs (two slots in WORK): the tile loads then
// read data stored long before (a tile load does not take data from the
// store buffer; reading a just-written tile stalls). Tile t + 2 is fetched
// during tile t's first panel: at M = 16 the d_w gather of an unfetched
// tile (16 rows, one miss per block and row) took 38% of the time. The
// next output tile's 16 Y lines are fetched for writing (Fetch).
void run_weight_tiles(const Matrix& w, const TileGrid& grid, int64_t begin, int64_t end, const uint8_t* panels,
                      int64_t m, float* y, int64_t y_stride, uint8_t* work) {
  const int64_t nb = w.cols / 32, n_panels = (m + kTile - 1) / kTile;
  const size_t block_bytes = w.type == gguf::TensorType::Q4_0 ? 18 : 34;
  const size_t panel_bytes = static_cast<size_t>(nb) * kBlockBytes;
  // Work area: 2 slots of (d_w table K/32 x 64 B | quants K/32 x 512 B) | 4 KB C buffers.
  int32_t* cbufs = reinterpret_cast<int32_t*>(work + 2 * panel_bytes);  // 64-aligned
  auto setup = [&](int64_t tile) {
    uint8_t* slot = work + static_cast<size_t>(tile & 1) * panel_bytes;
    const int64_t n0 = grid.begin(tile);
    WeightTile wt{w.data + static_cast<size_t>(n0) * w.row_bytes + 2, w.row_bytes, 34, reinterpret_cast<float*>(slot)};
    const int rows = grid.rows(tile);
    prepare_scales(w, n0, rows, reinterpret_cast<float*>(slot));
    if (w.type == gguf::TensorType::Q4_0 || rows < kTile) {
      uint8_t* quants = slot + static_cast<size_t>(nb) * 64;
      prepare_quants(w, n0, rows, quants);
      wt.quants = quants, wt.stride = 32, wt.block_step = 512;
    }
    return wt;
  };
  configure_q8_tiles();
  WeightTile next = setup(begin);
  for (int64_t tile = begin; tile < end; ++tile) {
    const WeightTile wt = next;
    if (tile + 1 < end) next = setup(tile + 1);
    asm volatile("" ::: "memory");  // tileloadd's asm does not declare its memory read
    const int64_t n0 = grid.begin(tile);
    const int n_rows = grid.rows(tile);
    const bool fetch = tile + 2 < end && grid.rows(tile + 2) == kTile;
    for (int64_t p = 0; p < n_panels; ++p) {
      Fetch f = Fetch::next_output(y, y_stride, m, n0, p, n_panels, tile + 1 < end ? grid.begin(tile + 1) : -1);
      if (p == 0 && fetch) {
        f.weights = w.data + static_cast<size_t>(grid.begin(tile + 2)) * w.row_bytes;
        f.row_bytes = w.row_bytes, f.block_bytes = block_bytes;
      }
      output_tile(wt, panels + static_cast<size_t>(p) * panel_bytes, nb, n_rows, panel_rows(m, p),
                  y + p * kTile * y_stride + n0, y_stride, cbufs, f);
    }
  }
  _tile_release();
}

}  // namespace

bool matmul_q8_amx(const Matrix& w, int64_t m, float* y, int64_t y_stride, ThreadPool& pool, const ScratchView& s) {
  count_amx_call();
  pack_then_run(w, m, static_cast<size_t>(w.cols / 32) * kBlockBytes, y, y_stride, pool, s, pack_panel,
                run_weight_tiles);
  return true;
}

}  // namespace tandem::kernels::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else  // !TANDEM_HAVE_AMX_KERNEL

namespace tandem::kernels::detail {
bool matmul_q8_amx(const Matrix&, int64_t, float*, int64_t, ThreadPool&, const ScratchView&) { return false; }
}  // namespace tandem::kernels::detail

#endif
