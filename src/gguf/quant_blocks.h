// Internal to quant.cpp / quant_k.cpp: the GGML block structs (byte for byte
// as ggml-common.h lays them out), small helpers both files share, and the
// per-type block kernels. Not part of the public API; use quant.h.
//
// All multi-byte fields are little endian (GGUF files are little endian and
// so is every host we build for). Blocks are copied in and out with memcpy
// because a tensor row in a mapped file is not aligned to the struct: a q4_0
// block is 18 bytes, so every other block starts at an odd multiple of 2.
#pragma once

#include "core/fp16.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tandem::gguf::detail {

static_assert(std::endian::native == std::endian::little, "GGML blocks are little endian");

constexpr int kQK = 32;    // elements per block of the simple formats
constexpr int kQKK = 256;  // elements per K-quant super-block

// f16 fields are kept as raw bits (uint16_t) so the structs are trivially
// copyable and their layout does not depend on a half-float type.

struct BlockQ4_0 {
  uint16_t d;           // scale
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], j+16 in the high
};
static_assert(sizeof(BlockQ4_0) == 18);

// MXFP4 (OCP microscaling FP4, gpt-oss experts): 32 E2M1 values sharing an
// E8M0 exponent. Values are stored doubled (so all are integers) and the
// scale halved: element = kMxfp4Values[nibble] (quant.h) * 2^(e - 128).
struct BlockMxfp4 {
  uint8_t e;            // shared exponent (E8M0)
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], j+16 in the high
};
static_assert(sizeof(BlockMxfp4) == 17);

struct BlockQ4_1 {
  uint16_t d;  // scale
  uint16_t m;  // minimum (added)
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];        // bit k (little endian over the 4 bytes) = 5th bit of element k
  uint8_t qs[kQK / 2];  // low 4 bits, same nibble order as q4_0
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// x = d * (scales[i] & 15) * q - dmin * (scales[i] >> 4), 16 sub-blocks of 16.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // low nibble: scale, high nibble: min
  uint8_t qs[kQKK / 4];       // 2-bit quants, 4 per byte
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// x = d * (scale - 32) * (q - 4), 16 sub-blocks of 16, q = 2 low bits + hmask bit.
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];  // 3rd bit of the quants
  uint8_t qs[kQKK / 4];     // 2 low bits of the quants
  uint8_t scales[12];       // 16 x 6-bit scales, offset by 32
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// x = d * scale * q - dmin * min, 8 sub-blocks of 32, 6-bit scales and mins.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];  // 8 scales + 8 mins, 6 bits each (see scale_min_k4)
  uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];  // 5th bit of the quants
  uint8_t qs[kQKK / 2];  // 4 low bits
};
static_assert(sizeof(BlockQ5_K) == 176);

// x = d * scale * (q - 32), 16 sub-blocks of 16, int8 scales.
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];  // 4 low bits of the quants
  uint8_t qh[kQKK / 4];  // 2 high bits
  int8_t scales[kQKK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// The activation format of ggml's K-quant dot products: an f32 scale.
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // sum of each 16 quants (used by dot products)
};
static_assert(sizeof(BlockQ8_K) == 292);

template <typename Block>
inline Block load_block(const uint8_t* src, int64_t i) {
  Block b;
  std::memcpy(&b, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

template <typename Block>
inline void store_block(uint8_t* dst, int64_t i, const Block& b) {
  std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

// Rounds to nearest (ties to even, like ggml's nearest_int) and clamps to
// [lo, hi]. Clamps in float first, so huge or NaN inputs cannot overflow the
// int conversion.
inline int round_clamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;  // also catches NaN
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// f16 bits for a scale of magnitude at least |v| (same sign), so that the
// element whose value defined the scale still fits the quant range after
// the scale is rounded to f16. Saturates at the largest finite f16 (65504)
// instead of becoming inf: the result must never decode to inf or NaN.
inline uint16_t f16_scale_at_least(float v) {
  if (!(std::fabs(v) < 65504.0f)) return v < 0 ? 0xfbffu : 0x7bffu;
  uint16_t h = f32_to_f16(v);
  if (v != 0.0f && std::fabs(f16_to_f32(h)) < std::fabs(v)) ++h;  // next magnitude up
  return h;
}

// f16 bits nearest to v, saturated to the finite range.
inline uint16_t f16_saturate(float v) { return f32_to_f16(std::clamp(v, -65504.0f, 65504.0f)); }

// Per-block kernels. SRC/DST point at BLOCKS whole blocks; the public
// functions in quant.cpp validate sizes before calling these.
void dequantize_q2_k(const uint8_t* src, float* dst, int64_t blocks);
void dequantize_q3_k(const uint8_t* src, float* dst, int64_t blocks);
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t blocks);
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t blocks);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t blocks);

void quantize_q2_k(const float* src, uint8_t* dst, int64_t blocks);
void quantize_q3_k(const float* src, uint8_t* dst, int64_t blocks);
void quantize_q4_k(const float* src, uint8_t* dst, int64_t blocks);
void quantize_q5_k(const float* src, uint8_t* dst, int64_t blocks);
void quantize_q6_k(const float* src, uint8_t* dst, int64_t blocks);

}  // namespace tandem::gguf::detail
