// Vector dot products, dispatched at run time to the best SIMD target of
// the CPU (Highway). The summation order depends only on N and the target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

float dot_f32(const float* a, const float* b, size_t n);
// A: f32, B: IEEE half bits (KV cache rows).
float dot_f32_f16(const float* a, const uint16_t* b, size_t n);
// OUT[i] += w * B[i], B in f32 or half.
void axpy_f32(float w, const float* b, float* out, size_t n);
void axpy_f16(float w, const uint16_t* b, float* out, size_t n);
// OUT[i] = half B[i] as f32.
void f16_to_f32_row(const uint16_t* b, float* out, size_t n);
// Name of the SIMD target chosen for this CPU ("AVX2", "AVX3", "SSE4", ...).
const char* simd_target_name();

}  // namespace tandem::kernels
