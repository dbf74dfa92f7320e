// Scalar conversions between f32 and the 16-bit float formats (IEEE half,
// bfloat16). Exact (round to nearest even), for references and file I/O;
// the SIMD kernels have their own.
#pragma once

#include <cstdint>

namespace tandem {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even; overflow -> inf
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

}  // namespace tandem
