// Generic matmul path: each thread owns a contiguous range of weight rows;
// a row is dequantized once into the thread's f32 buffer and dotted with
// every activation row. Types with a dedicated integer kernel will bypass
// this (see matmul_q8.cpp when present).
#include "kernels/matmul.h"

#include "gguf/quant.h"
#include "kernels/dot.h"

#include <cstring>

namespace tandem::kernels {

void MatmulScratch::reserve(int64_t max_rows, int64_t max_cols, int n_threads) {
  bytes.resize(static_cast<size_t>(max_rows * (max_cols + max_cols / 8 + 64)));
  floats.resize(static_cast<size_t>(max_cols) * static_cast<size_t>(n_threads));
}

bool matmul_supports(gguf::TensorType type) { return gguf::can_dequantize(type); }

void matmul(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
            ThreadPool& pool, MatmulScratch& scratch) {
  const int64_t k = w.cols;
  if (scratch.floats.size() < static_cast<size_t>(k * pool.size())) scratch.floats.resize(static_cast<size_t>(k * pool.size()));
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(w.rows, t, nt, &begin, &end);
    float* row = scratch.floats.data() + static_cast<size_t>(t) * static_cast<size_t>(k);
    for (int64_t n = begin; n < end; ++n) {
      const uint8_t* src = w.data + static_cast<size_t>(n) * w.row_bytes;
      const float* wrow;
      if (w.type == gguf::TensorType::F32) {
        wrow = reinterpret_cast<const float*>(src);  // GGUF data is 32-byte aligned
      } else {
        (void)gguf::dequantize(w.type, src, row, k);
        wrow = row;
      }
      for (int64_t i = 0; i < m; ++i) {
        y[i * y_stride + n] = dot_f32(x + i * x_stride, wrow, static_cast<size_t>(k));
      }
    }
  });
}

void matmul_reference(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t n = 0; n < w.rows; ++n) {
    (void)gguf::dequantize(w.type, w.data + static_cast<size_t>(n) * w.row_bytes, row.data(), w.cols);
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < w.cols; ++j) acc += static_cast<double>(x[i * x_stride + j]) * row[static_cast<size_t>(j)];
      y[i * y_stride + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace tandem::kernels
