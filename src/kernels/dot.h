// Vector dot products, dispatched at run time to the best SIMD target of
// the CPU (Highway). The summation order depends only on N and the target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

float dot_f32(const float* a, const float* b, size_t n);
// OUT[i] = half B[i] as f32.
void f16_to_f32_row(const uint16_t* b, float* out, size_t n);
// OUT[i] = X[i] rounded to the nearest half (even on ties), the bits of
// core/fp16.h's f32_to_f16 for every non-NaN X.
void f32_to_f16_row(const float* x, uint16_t* out, size_t n);
// Name of the SIMD target chosen for this CPU ("AVX2", "AVX3", "SSE4", ...).
const char* simd_target_name();

}  // namespace tandem::kernels
