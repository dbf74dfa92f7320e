// The q8_0 KV write: one token's K or V row of one KV head to int8 values
// and f16 scales (layout in kv_type.h). Per group of G consecutive values:
//
//   amax = max |x|,  d = amax / 127 rounded to the nearest f16 at or above it
//                    (the largest finite f16 if that overflows),
//   q = clamp(nearbyint(x / d), -127, 127)   (all 0 when d is 0)
//
// The scale is rounded to f16 before the values are divided by it, and up,
// so no value clamps and every value is within d / 2 of q * d. Each row is quantized on its own: its
// bytes depend only on its values, never on the batch or the chunking.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

// Quantizes X (N finite values, N a multiple of GROUP) and stores value i
// at Q[i * Q_STRIDE] and the f16 bits of group g's scale at
// D[g * D_STRIDE] (strides T for the transposed K of a block, 1 for V).
void quantize_kv_q8(const float* x, int n, int group, int8_t* q, ptrdiff_t q_stride, uint16_t* d, ptrdiff_t d_stride);

// Scalar twin (the same IEEE operations: identical bytes), for tests.
void quantize_kv_q8_reference(const float* x, int n, int group, int8_t* q, ptrdiff_t q_stride, uint16_t* d,
                              ptrdiff_t d_stride);

}  // namespace tandem::kernels
