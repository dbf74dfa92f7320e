// Scalar dequantization (type -> f32) and quantization (f32 -> type) of
// GGML block formats. These are the reference implementations: exact block
// layouts, no SIMD. The SIMD kernels (src/kernels/) are tested against them.
//
// N counts elements and must be a multiple of the type's block size.
#pragma once

#include "core/status.h"
#include "gguf/tensor_type.h"

#include <cstdint>

namespace tandem::gguf {

// True for the types dequantize() handles: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool can_dequantize(TensorType type);

// Dequantizes N elements stored at SRC (row_bytes(type, n) bytes) into DST.
Status dequantize(TensorType type, const void* src, float* dst, int64_t n);

// True for the types quantize() handles: at least F32, F16, BF16, Q8_0,
// Q4_0, Q4_K, Q6_K.
bool can_quantize(TensorType type);

// REQUESTED, or what a matrix of rows of ROW elements falls back to when
// they are not whole blocks of it: Q8_0, then F16 (as llama.cpp does, e.g.
// for Qwen2.5-0.5B's 896-wide rows under K-quants).
TensorType fit_type(TensorType requested, uint64_t row);

// Quantizes N floats from SRC into DST (row_bytes(type, n) bytes).
Status quantize(TensorType type, const float* src, void* dst, int64_t n);

// MXFP4's 16 E2M1 values, doubled so that all are integers (a block's value
// is kMxfp4Values[nibble] * 2^(e - 128), e its E8M0 exponent byte).
inline constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace tandem::gguf
