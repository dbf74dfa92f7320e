// Matrix multiplication of a (quantized) weight matrix with a batch of
// activation rows:
//
//   Y[m, n] = sum_k X[m, k] * W[n, k]      m < M (batch rows), n < N, k < K
//
// W is stored row by row in a GGML block format (W[n] is one row of K
// elements, `row_bytes` each). Every weight row is read once for all M
// activation rows: with a batch of decode tokens this is what turns memory
// bandwidth into throughput.
//
// Determinism: Y[m, n] depends only on X[m] and W[n]. The reduction order
// is fixed by K and the weight type, never by M, by the other rows in the
// batch, or by how threads split the work. (It may differ between CPU
// targets: the same binary on AVX2 and AVX-512 machines can give other bits.)
#pragma once

#include "gguf/tensor_type.h"
#include "kernels/thread_pool.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tandem::kernels {

// A weight matrix view: N rows of K elements in a GGML block format.
struct Matrix {
  const uint8_t* data = nullptr;
  gguf::TensorType type = gguf::TensorType::F32;
  int64_t rows = 0;  // N
  int64_t cols = 0;  // K (a multiple of the type's block size)
  size_t row_bytes = 0;
  // Affine weights (MLX-quantized folders, hf/mlx.h): element [n, k] is the
  // block format's value plus offsets[(k / offset_group) * offset_stride + n]
  // (group-major, so the term vectorizes over n). matmul() adds
  // offsets . (sums of X over each group), in f32 from X itself. Null: none.
  const float* offsets = nullptr;
  int64_t offset_group = 0;
  int64_t offset_stride = 0;  // rows of the whole matrix
  // Q8_0/Q4_0 rows [0, packed_rows) are in groups of pack_group (8 or 16)
  // rows in the layout of kernels/q8_pack.h (set at load when it pays);
  // the rest as in GGUF.
  int64_t packed_rows = 0;
  int pack_group = 0;
};

// Row N of W as f32 (offsets included).
void dequantize_row(const Matrix& w, int64_t n, float* out);

// Per-call scratch owned by the caller, sized once for the largest batch and
// K (no allocation inside the decode loop).
struct MatmulScratch {
  std::vector<uint8_t> bytes;  // quantized activations
  std::vector<float> floats;   // dequantized weight rows, per thread
  std::vector<float> group_sums;  // Matrix::offsets: sums of X per group
  void reserve(int64_t max_rows, int64_t max_cols, int n_threads);
};

// True when matmul() supports the type.
bool matmul_supports(gguf::TensorType type);

// Y (M rows, stride y_stride floats) = X (M rows, stride x_stride) * W^T.
void matmul(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride, ThreadPool& pool,
            MatmulScratch& scratch);

// Scalar reference twin: dequantizes each weight row to f32 (gguf/quant.h)
// and accumulates in double. Slow; for tests.
void matmul_reference(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride);

// Name of the SIMD target the matmul kernels were dispatched to on this CPU
// ("AVX2", "AVX3", "AVX3_DL", ...). On targets without dedicated kernels
// (older than AVX2) every type takes the generic path.
const char* matmul_target_name();

// On: every matmul takes the generic path (weights dequantized, f32
// activations, never rounded to 8 bits). Slow; for accuracy checks against
// references that do not round activations. Not while matmuls run.
void set_f32_activations(bool on);

// What the kernels run on, for people: "AVX-512 VNNI (Highway AVX3_ZEN4), no
// AMX" or "... AMX-INT8 + AMX-BF16 tiles".
std::string compute_path_summary();

}  // namespace tandem::kernels
