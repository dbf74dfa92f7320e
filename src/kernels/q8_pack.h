// Q8_0 and Q4_0 weights repacked at load into the order the decode kernels
// read.
//
// In a GGUF file each weight row is a run of blocks of 32 elements (an f16
// scale, then 32 int8 quants (Q8_0, 34 bytes) or 16 bytes of nibble pairs
// (Q4_0, 18 bytes)). The rows-in-lanes kernels (matmul_q8.cpp) multiply 8
// or 16 rows at once, one row per 32-bit lane, so every block of every row
// had to be transposed in registers on each pass (~4 shuffles per vector,
// and a gather for the scales), and a tile streamed from 8 or 16 places in
// memory. Packed, each group of G = 8 or 16 consecutive rows (the kernel's
// tile) holds, for every block b of the row (G x the block's bytes: the
// same bytes as the G rows' block b):
//
//   offset   0: the G rows' f16 scales, row r at 2r
//   offset  2G: V[0..Q-1], 4G bytes each: V[q] bytes 4r..4r+3 = row r's
//               quant bytes 4q..4q+3 (Q = 8 for Q8_0, 4 for Q4_0)
//
// so a block is plain loads and a tile one sequential stream. The 8-row
// kernels also read 16-row groups (half of each V[q]); the 16-row kernel
// reads 16-row groups only. Rows past the last whole group keep the GGUF
// layout (Matrix::packed_rows). The arithmetic is the same integers and f32
// operations per output: the same bits as the unpacked matrix.
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/matmul.h"

#include <cstdint>

namespace tandem::kernels {

// Q8_0 and Q4_0.
bool packable(gguf::TensorType type);

// Repacks the whole GROUP-row groups (8 or 16) of the packable matrix at
// DATA (ROWS x COLS, GGUF layout) in place, split over POOL's threads if
// given; returns how many rows are packed (a multiple of GROUP; 0 for other
// types or groups).
int64_t pack_rows(gguf::TensorType type, int group, uint8_t* data, int64_t rows, int64_t cols,
                  ThreadPool* pool = nullptr);

// Row N of W in its GGUF block layout (W.row_bytes bytes into OUT), packed
// or not.
void copy_gguf_row(const Matrix& w, int64_t n, uint8_t* out);

// The group size that pays on this machine (16 or 8), or 0: not with AMX,
// whose prefill kernels read the GGUF layout, nor below AVX2 (the generic
// path). TANDEM_NO_PACK=1 says 0 (A/B).
int packing_group();

}  // namespace tandem::kernels
