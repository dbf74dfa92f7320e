// Scalar (de)quantization: the public entry points and the simple formats
// (float types, the 32-element q4/q5/q8 blocks and q8_K). The K-quants live
// in quant_k.cpp.
//
// Dequantization reproduces ggml's dequantize_row_* bit for bit: same block
// layouts and the same float operations (int quant converted to float, times
// the f32 scale, plus the f32 min).
//
// Quantization follows ggml's reference conventions (quantize_row_*_ref) with
// one deliberate difference: quants are computed against the scale as stored
// (rounded to f16, never smaller in magnitude than the exact one) rather than
// the unrounded f32 scale, so the rounding error bound holds for the values
// that are actually decoded.
#include "gguf/quant.h"

#include "gguf/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tandem::gguf {
namespace {

using namespace detail;

// ---- float formats ----------------------------------------------------------

void dequantize_f32(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f32(const float* src, uint8_t* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

template <float (*kToF32)(uint16_t)>
void dequantize_half(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = kToF32(h);
  }
}

template <uint16_t (*kFromF32)(float)>
void quantize_half(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = kFromF32(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

// ---- shared helpers for the 32-element blocks --------------------------------

// The signed value of largest magnitude: ggml's symmetric formats divide it
// by the most negative quant so that it lands exactly on that quant, which
// buys one extra level on the side that matters.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// floor(v) clamped to [0, hi]; ggml's (int)(x*id + 8.5) idiom is a
// round-half-up because the argument is never negative.
int floor_clamp(float v, int hi) {
  if (!(v > 0.0f)) return 0;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// 5th bit of element k of a q5 block: bit k of the little-endian u32 qh.
int q5_high_bit(const uint8_t qh[4], int k) { return (qh[k / 8] >> (k % 8)) & 1; }

// ---- q4_0 / q5_0: x = d * (q - 2^(bits-1)) ------------------------------------

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
      dst[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b.qs[j] & 0x0f) | (q5_high_bit(b.qh, j) << 4);
      const int hi = (b.qs[j] >> 4) | (q5_high_bit(b.qh, j + kQK / 2) << 4);
      dst[j] = static_cast<float>(lo - 16) * d;
      dst[j + kQK / 2] = static_cast<float>(hi - 16) * d;
    }
  }
}

// Quants in [0, 2*half) for a symmetric block with offset HALF (8 or 16).
// Returns the f16 scale bits.
uint16_t quantize_symmetric(const float* x, int half, uint8_t* q) {
  const float max = signed_absmax(x, kQK);
  const uint16_t d16 = f16_scale_at_least(max / static_cast<float>(-half));
  const float d = f16_to_f32(d16);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) {
    q[j] = static_cast<uint8_t>(floor_clamp(x[j] * id + static_cast<float>(half) + 0.5f, 2 * half - 1));
  }
  return d16;
}

void quantize_q4_0(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockQ4_0 b{};
    uint8_t q[kQK];
    b.d = quantize_symmetric(src, 8, q);
    for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
    store_block(dst, i, b);
  }
}

// Packs 5-bit quants: low nibbles like q4, 5th bits into the 32-bit qh.
template <typename Block>
void pack_q5(const uint8_t q[kQK], Block& b) {
  std::memset(b.qh, 0, sizeof(b.qh));
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kQK / 2] & 0x0f) << 4));
  for (int k = 0; k < kQK; ++k) b.qh[k / 8] = static_cast<uint8_t>(b.qh[k / 8] | ((q[k] >> 4) << (k % 8)));
}

void quantize_q5_0(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockQ5_0 b{};
    uint8_t q[kQK];
    b.d = quantize_symmetric(src, 16, q);
    pack_q5(q, b);
    store_block(dst, i, b);
  }
}

// ---- q4_1 / q5_1: x = d * q + m -----------------------------------------------

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = f16_to_f32(b.d);
    const float m = f16_to_f32(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
      dst[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = f16_to_f32(b.d);
    const float m = f16_to_f32(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (b.qs[j] & 0x0f) | (q5_high_bit(b.qh, j) << 4);
      const int hi = (b.qs[j] >> 4) | (q5_high_bit(b.qh, j + kQK / 2) << 4);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

// Quants in [0, nmax] over [min, max] of the block; writes the f16 scale and
// min. The min is rounded first and the scale is derived from the rounded
// min (rounded up), so [m, m + nmax*d] still covers the block's maximum.
void quantize_affine(const float* x, int nmax, uint16_t& d16, uint16_t& m16, uint8_t* q) {
  float min = x[0];
  float max = x[0];
  for (int j = 1; j < kQK; ++j) {
    min = std::fmin(min, x[j]);
    max = std::fmax(max, x[j]);
  }
  m16 = f16_saturate(min);
  const float m = f16_to_f32(m16);
  d16 = f16_scale_at_least(std::fmax(max - m, 0.0f) / static_cast<float>(nmax));
  const float d = f16_to_f32(d16);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) q[j] = static_cast<uint8_t>(floor_clamp((x[j] - m) * id + 0.5f, nmax));
}

void quantize_q4_1(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockQ4_1 b{};
    uint8_t q[kQK];
    quantize_affine(src, 15, b.d, b.m, q);
    for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
    store_block(dst, i, b);
  }
}

void quantize_q5_1(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockQ5_1 b{};
    uint8_t q[kQK];
    quantize_affine(src, 31, b.d, b.m, q);
    pack_q5(q, b);
    store_block(dst, i, b);
  }
}

// ---- q8_0: x = d * q ------------------------------------------------------------

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void quantize_q8_0(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockQ8_0 b{};
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(src[j]));
    b.d = f16_scale_at_least(amax / 127.0f);
    const float d = f16_to_f32(b.d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) {
      // ggml rounds half away from zero here (roundf), unlike the K-quants.
      // The comparison form clamps NaN too, which must not reach the cast.
      const float v = src[j] * id;
      b.qs[j] = static_cast<int8_t>(v >= -127.0f ? (v <= 127.0f ? std::round(v) : 127.0f) : -127.0f);
    }
    store_block(dst, i, b);
  }
}

// ---- q8_K: x = d * q with an f32 scale ------------------------------------------

void dequantize_q8_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ8_K>(src, i);
    for (int j = 0; j < kQKK; ++j) dst[j] = b.d * static_cast<float>(b.qs[j]);
  }
}

void quantize_q8_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ8_K b{};
    const float max = signed_absmax(src, kQKK);
    // ggml maps the largest-magnitude value to -127 (not -128, which its
    // IQ dot products cannot take). The scale stays f32, so compute the
    // inverse in double: 127 / a subnormal max overflows float.
    const double iscale = max != 0.0f ? -127.0 / static_cast<double>(max) : 0.0;
    b.d = iscale != 0.0 ? static_cast<float>(1.0 / iscale) : 0.0f;
    // Near FLT_MAX, d rounded up to float can make 127 * d overflow.
    if (!std::isfinite(127.0f * b.d)) b.d = std::nextafter(b.d, 0.0f);
    const double id = b.d != 0.0f ? 1.0 / static_cast<double>(b.d) : 0.0;
    for (int j = 0; j < kQKK; ++j) {
      b.qs[j] = static_cast<int8_t>(round_clamp(static_cast<float>(src[j] * id), -127, 127));
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b.qs[16 * g + j];
      b.bsums[g] = static_cast<int16_t>(sum);
    }
    store_block(dst, i, b);
  }
}

// ---- mxfp4 ----------------------------------------------------------------------

float mxfp4_scale(uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

void dequantize_mxfp4(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQK) {
    const auto b = load_block<BlockMxfp4>(src, i);
    const float d = mxfp4_scale(b.e);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>(kMxfp4Values[b.qs[j] & 0x0f]) * d;
      dst[j + kQK / 2] = static_cast<float>(kMxfp4Values[b.qs[j] >> 4]) * d;
    }
  }
}

// The exponent puts the block's largest magnitude in the top binade of the
// doubled values (ggml's rule: floor(log2(amax)) - 2, biased); each value
// takes the nearest representable one (ties: the first in the table).
void quantize_mxfp4(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQK) {
    BlockMxfp4 b{};
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(src[j]));
    const int e = amax > 0.0f && std::isfinite(amax) ? static_cast<int>(std::floor(std::log2(amax))) - 2 + 127 : 0;
    b.e = static_cast<uint8_t>(std::clamp(e, 0, 255));
    const float d = mxfp4_scale(b.e);
    auto nearest = [&](float x) {
      int best = 0;
      float best_err = std::fabs(static_cast<float>(kMxfp4Values[0]) * d - x);
      for (int q = 1; q < 16; ++q) {
        const float err = std::fabs(static_cast<float>(kMxfp4Values[q]) * d - x);
        if (err < best_err) best = q, best_err = err;
      }
      return static_cast<uint8_t>(best);
    };
    for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(nearest(src[j]) | nearest(src[j + kQK / 2]) << 4);
    store_block(dst, i, b);
  }
}

// ---- dispatch -----------------------------------------------------------------

using DequantizeFn = void (*)(const uint8_t* src, float* dst, int64_t blocks);
using QuantizeFn = void (*)(const float* src, uint8_t* dst, int64_t blocks);

struct Codec {
  TensorType type;
  DequantizeFn dequantize;
  QuantizeFn quantize;
};

constexpr Codec kCodecs[] = {
    {TensorType::F32, dequantize_f32, quantize_f32},
    {TensorType::F16, dequantize_half<f16_to_f32>, quantize_half<f32_to_f16>},
    {TensorType::BF16, dequantize_half<bf16_to_f32>, quantize_half<f32_to_bf16>},
    {TensorType::Q4_0, dequantize_q4_0, quantize_q4_0},
    {TensorType::Q4_1, dequantize_q4_1, quantize_q4_1},
    {TensorType::Q5_0, dequantize_q5_0, quantize_q5_0},
    {TensorType::Q5_1, dequantize_q5_1, quantize_q5_1},
    {TensorType::Q8_0, dequantize_q8_0, quantize_q8_0},
    {TensorType::MXFP4, dequantize_mxfp4, quantize_mxfp4},
    {TensorType::Q2_K, dequantize_q2_k, quantize_q2_k},
    {TensorType::Q3_K, dequantize_q3_k, quantize_q3_k},
    {TensorType::Q4_K, dequantize_q4_k, quantize_q4_k},
    {TensorType::Q5_K, dequantize_q5_k, quantize_q5_k},
    {TensorType::Q6_K, dequantize_q6_k, quantize_q6_k},
    {TensorType::Q8_K, dequantize_q8_k, quantize_q8_k},
};

const Codec* find_codec(TensorType type) {
  for (const Codec& c : kCodecs) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

// Checks TYPE and N for OP ("dequantize"/"quantize"); on success sets CODEC
// and BLOCKS.
Status check_args(const char* op, TensorType type, const void* a, const void* b, int64_t n, const Codec*& codec,
                  int64_t& blocks) {
  const auto info = type_info(static_cast<uint32_t>(type));
  if (!info) return Status::errorf("{}: unknown tensor type id {}", op, static_cast<uint32_t>(type));
  codec = find_codec(type);
  if (codec == nullptr) return Status::errorf("{}: type {} is not supported", op, info->name);
  if (n < 0) return Status::errorf("{} {}: negative element count {}", op, info->name, n);
  if (n % info->block_size != 0) {
    return Status::errorf("{} {}: {} elements is not a multiple of the block size {}", op, info->name, n,
                          info->block_size);
  }
  if (n > 0 && (a == nullptr || b == nullptr)) return Status::errorf("{} {}: null buffer", op, info->name);
  blocks = n / info->block_size;
  return Status();
}

}  // namespace

bool can_dequantize(TensorType type) { return find_codec(type) != nullptr; }

bool can_quantize(TensorType type) { return find_codec(type) != nullptr; }

TensorType fit_type(TensorType requested, uint64_t row) {
  if (row % type_info(requested).block_size == 0) return requested;
  if (row % 32 == 0) return TensorType::Q8_0;
  return TensorType::F16;
}

Status dequantize(TensorType type, const void* src, float* dst, int64_t n) {
  const Codec* codec = nullptr;
  int64_t blocks = 0;
  TANDEM_RETURN_IF_ERROR(check_args("dequantize", type, src, dst, n, codec, blocks));
  if (blocks == 0) return Status();  // buffers may be null (an empty tensor)
  codec->dequantize(static_cast<const uint8_t*>(src), dst, blocks);
  return Status();
}

Status quantize(TensorType type, const float* src, void* dst, int64_t n) {
  const Codec* codec = nullptr;
  int64_t blocks = 0;
  TANDEM_RETURN_IF_ERROR(check_args("quantize", type, src, dst, n, codec, blocks));
  if (blocks == 0) return Status();
  codec->quantize(src, static_cast<uint8_t*>(dst), blocks);
  return Status();
}

}  // namespace tandem::gguf
