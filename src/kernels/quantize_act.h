// Activation quantization of the integer matmul kernels.
//
// Before an integer matmul every activation row is quantized once, on its
// own, to int8 with one f32 scale per block of B values (what ggml does for
// its q8_0 / q8_K dot products):
//
//   amax = max |x|,  d = amax / 127,  q = nearbyint(x * (127 / amax))  in [-127, 127]
//
//   B = 32  for Q8_0, Q4_0 and MXFP4 weights (the weight block: one f32 product of
//           the two scales per 32 int8 x int8 products)
//   B = 256 for Q4_K, Q5_K and Q6_K weights (the super-block; the weights' 6-bit
//           sub-block scales are applied to the int32 sums)
//
// The SIMD code performs the same IEEE operations, so act_q8_dequantized()
// reproduces exactly the values the kernels multiply with: tests use it to
// separate activation rounding (expected, ~1/254 of a block's amax per
// element) from kernel errors (wrong scale, dropped block).
#pragma once

#include "gguf/tensor_type.h"

#include <cstdint>

namespace tandem::kernels {

// Block of the int8 activations the SIMD kernel of TYPE uses: 32, 256, or 0
// when that kernel multiplies f32 activations (F16, BF16, generic path).
int act_block_elems(gguf::TensorType type);

// OUT[i] = d_b * q_i: the activations as the integer kernels see them, for
// blocks of BLOCK (32 or 256) values. K must be a multiple of BLOCK.
void act_q8_dequantized(const float* x, int64_t k, int block, float* out);

}  // namespace tandem::kernels
