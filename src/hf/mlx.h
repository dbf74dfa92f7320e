// MLX affine quantization, as mlx-lm writes it (config.json "quantization":
// {"group_size": G, "bits": B}, optionally per module). A quantized linear
// layer or embedding X stores
//   X.weight  U32 [out, in * B / 32]: B-bit codes q, element i of a row at
//             bits (i % (32 / B)) * B of word i / (32 / B) (little-endian)
//   X.scales, X.biases  [out, in / G] in the model's float dtype
// and w[o, i] = scales[o, i / G] * q[o, i] + biases[o, i / G].
//
// tandem converts these once at load into its own block formats plus a
// per-group offset (kernels::Matrix::offsets), so the SIMD kernels of Q4_0
// and Q8_0 run them:
//   4-bit: Q4_0 with d = scale and nibble = q (value d * (q - 8)), offset bias + 8 * scale
//   8-bit: Q8_0 with d = scale and int8 q - 128,                  offset bias + 128 * scale
// The codes are the same integers; a BF16 or F16 scale is stored as F16
// exactly when it is in F16's normal range (scales of real models are;
// MlxStats counts any that are not); the offset is rounded once, in f32.
// Group sizes 32, 64 and 128; other bit widths (2, 3, 5, 6) are refused.
#pragma once

#include "core/status.h"
#include "gguf/tensor_type.h"
#include "hf/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace tandem::hf {

struct MlxQuant {
  int bits = 0;  // 0: not quantized
  int group = 0;
};

// The quantization of module MODULE ("model.layers.0.mlp.down_proj") in
// CFG: its own entry of "quantization" (or "quantization_config"), else the
// default there; bits 0 when the folder is not quantized.
Result<MlxQuant> mlx_quant_of(const nlohmann::json& cfg, const std::string& module);

// A quantized matrix's three tensors (mlx-lm's stacked experts have a
// leading experts dimension: their rows are all experts' rows in order).
struct MlxMatrix {
  const StTensor* weight = nullptr;
  const StTensor* scales = nullptr;
  const StTensor* biases = nullptr;
  MlxQuant quant;
  int64_t rows = 0, cols = 0;  // out (x experts), in
};

// Checks the three tensors against each other and Q; sets rows and cols.
Status check_mlx_matrix(MlxMatrix* m);

gguf::TensorType mlx_block_type(const MlxQuant& q);  // Q4_0 or Q8_0

// Row R of M as a row of mlx_block_type() blocks (BLOCKS) and its
// cols / group offsets (OFFSETS[g * STRIDE], group-major as
// kernels::Matrix::offsets). Returns the scales not exact in F16.
int64_t mlx_convert_row(const MlxMatrix& m, int64_t r, uint8_t* blocks, float* offsets, int64_t stride);

// The writer's side (tests, tandem's own MLX folders): quantizes COLS
// floats W as mlx-lm does (per group: scale (max - min) / (2^bits - 1) and
// bias min, both rounded to BF16 first, codes rounded to nearest).
void mlx_quantize_row(const float* w, int64_t cols, const MlxQuant& q, uint32_t* packed, uint16_t* scales_bf16,
                      uint16_t* biases_bf16);

}  // namespace tandem::hf
