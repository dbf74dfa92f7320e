// Q8_0 and Q4_0 weights repacked at load into the order the decode kernels
// read.
//
// In a GGUF file each weight row is a run of blocks of 32 elements (an f16
// scale, then 32 int8 quants (Q8_0, 34 bytes) or 16 bytes of nibble pairs
// (Q4_0, 18 bytes)). The rows-in-lanes kernels (matmul_q8.cpp) multiply 16
// rows at once, one row per 32-bit lane, so every block of every row had to
// be transposed in registers on each pass (~4 shuffles per vector, and a
// gather for the 16 scales), and a tile streamed from 16 places in memory.
// Packed, each group of 16 consecutive rows holds, for every block b of the
// row (16 x the block's bytes: the same bytes as the 16 rows' block b):
//
//   offset   0: the 16 rows' f16 scales, row r at 2r
//   offset  32: V[0..Q-1], 64 bytes each: V[g] bytes 4r..4r+3 = row r's
//               quant bytes 4g..4g+3 (Q = 8 for Q8_0, 4 for Q4_0)
//
// so a block is plain loads and the whole group one sequential stream. The
// 8-row kernels read half of each V[g] (rows 0-7 or 8-15). Rows past the
// last whole group keep the GGUF layout (Matrix::packed_rows says where the
// packed part ends). The arithmetic is the same integers and f32 operations
// per output: the same bits as the unpacked matrix.
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/matmul.h"

#include <cstdint>

namespace tandem::kernels {

inline constexpr int64_t kPackRows = 16;

// Q8_0 and Q4_0.
bool packable(gguf::TensorType type);

// Bytes of one packed block of 16 rows: 544 (Q8_0), 288 (Q4_0).
int64_t packed_block_bytes(gguf::TensorType type);

// Repacks the whole 16-row groups of the packable matrix at DATA (ROWS x
// COLS, GGUF layout) in place; returns how many rows are packed (a multiple
// of 16).
int64_t pack_rows16(gguf::TensorType type, uint8_t* data, int64_t rows, int64_t cols);

// Row N of W in its GGUF block layout (W.row_bytes bytes into OUT), packed
// or not.
void copy_gguf_row(const Matrix& w, int64_t n, uint8_t* out);

// Whether packing pays on this machine: the dispatched matmul target has the
// 16-row kernel (AVX-512 VNNI) and AMX, whose prefill kernels read the GGUF
// layout, is not in use. TANDEM_NO_PACK=1 says no (A/B).
bool packing_pays();

}  // namespace tandem::kernels
