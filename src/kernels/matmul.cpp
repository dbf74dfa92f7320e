// matmul(): picks the SIMD kernel of the weight type (matmul_q8.cpp,
// matmul_kq.cpp (Q4_K, Q5_K, Q6_K), matmul_f16.cpp) and falls back to the generic path for
// the other types or CPUs without a kernel. Also the scratch layout and the
// scalar reference.
#include "kernels/matmul.h"

#include "gguf/quant.h"
#include "kernels/amx.h"
#include "kernels/dot.h"
#include "kernels/matmul_internal.h"
#include "kernels/q8_pack.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace tandem::kernels {
namespace {

std::atomic<bool> g_f32_activations{false};

// Row N of W's block format as f32, without the offsets; a packed row
// (kernels/q8_pack.h) is put back in GGUF order first.
void dequantize_blocks(const Matrix& w, int64_t n, float* out) {
  const uint8_t* src = w.data + static_cast<size_t>(n) * w.row_bytes;
  if (n < w.packed_rows) {
    thread_local std::vector<uint8_t> row;
    row.resize(w.row_bytes);
    copy_gguf_row(w, n, row.data());
    src = row.data();
  }
  (void)gguf::dequantize(w.type, src, out, w.cols);
}

// Generic path: each thread owns a contiguous range of weight rows; a row is
// dequantized once into the thread's f32 buffer and dotted with every
// activation row (dot_f32: the order depends only on K).
void matmul_generic(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                    ThreadPool& pool, MatmulScratch& scratch) {
  const int64_t k = w.cols;
  const size_t need = static_cast<size_t>(k) * static_cast<size_t>(pool.size());
  if (scratch.floats.size() < need) scratch.floats.resize(need);
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(w.rows, t, nt, &begin, &end);
    float* row = scratch.floats.data() + static_cast<size_t>(t) * static_cast<size_t>(k);
    for (int64_t n = begin; n < end; ++n) {
      const float* wrow;
      if (w.type == gguf::TensorType::F32) {
        // GGUF data is 32-byte aligned
        wrow = reinterpret_cast<const float*>(w.data + static_cast<size_t>(n) * w.row_bytes);
      } else {
        dequantize_blocks(w, n, row);
        wrow = row;
      }
      for (int64_t i = 0; i < m; ++i) {
        y[i * y_stride + n] = dot_f32(x + i * x_stride, wrow, static_cast<size_t>(k));
      }
    }
  });
}

// Y += offsets . group sums of X (Matrix::offsets). Each sum adds a group
// in 8 interleaved partial sums combined in a fixed order; each output
// accumulates the groups in order, 64 outputs at a time (vectorized over n,
// no reduction across lanes): Y[m, n] still depends only on X[m] and W[n].
void add_group_offsets(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                       ThreadPool& pool, MatmulScratch& scratch) {
  const int64_t g = w.offset_group, groups = w.cols / g;
  const size_t need = static_cast<size_t>(m * groups);
  if (scratch.group_sums.size() < need) scratch.group_sums.resize(need);
  float* sums = scratch.group_sums.data();
  auto sum_rows = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < groups; ++j) {
        const float* xs = x + i * x_stride + j * g;
        float part[8] = {};
        for (int64_t k = 0; k < g; k += 8)
          for (int l = 0; l < 8; ++l) part[l] += xs[k + l];
        sums[i * groups + j] = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      }
    }
  };
  if (m < 8) {
    sum_rows(0, m);
  } else {
    pool.run([&](int t, int nt) {
      int64_t begin, end;
      ThreadPool::split(m, t, nt, &begin, &end);
      sum_rows(begin, end);
    });
  }
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (w.rows + kChunk - 1) / kChunk;
  auto add_chunks = [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t n0 = c * kChunk, len = std::min(kChunk, w.rows - n0);
      for (int64_t i = 0; i < m; ++i) {
        float acc[kChunk] = {};
        for (int64_t j = 0; j < groups; ++j) {
          const float s = sums[i * groups + j];
          const float* o = w.offsets + j * w.offset_stride + n0;
          for (int64_t e = 0; e < len; ++e) acc[e] += s * o[e];
        }
        float* yr = y + i * y_stride + n0;
        for (int64_t e = 0; e < len; ++e) yr[e] += acc[e];
      }
    }
  };
  // A decode step's term is a few thousand multiply-adds per matrix: cheaper
  // than waking the pool (7 extra hand-offs per layer cost ~20% of decode).
  if (m * w.rows * groups < (int64_t{1} << 20)) return add_chunks(0, chunks);
  pool.run([&](int t, int nt) {
    int64_t begin, end;
    ThreadPool::split(chunks, t, nt, &begin, &end);
    add_chunks(begin, end);
  });
}

size_t scratch_bytes(int64_t rows, int64_t cols, int n_threads) {
  return 64 + static_cast<size_t>(rows) * detail::act_row_bytes(cols) +
         static_cast<size_t>(n_threads) * detail::work_bytes(cols) + detail::amx_panel_bytes(rows, cols);
}

}  // namespace

namespace detail {

size_t amx_panel_bytes(int64_t m, int64_t k) {
  if (!amx_available()) return 0;
  return static_cast<size_t>((m + 15) / 16) * (static_cast<size_t>(k) / 32) * kAmxBlockBytes;
}

ScratchView scratch_view(MatmulScratch& scratch, int64_t m, int64_t k, int n_threads) {
  const size_t need = scratch_bytes(m, k, n_threads);
  if (scratch.bytes.size() < need) scratch.bytes.resize(need);  // only when reserve() was too small
  const auto addr = reinterpret_cast<uintptr_t>(scratch.bytes.data());
  ScratchView v;
  v.act = scratch.bytes.data() + (round_up(addr, 64) - addr);
  v.act_stride = act_row_bytes(k);
  v.work = v.act + static_cast<size_t>(m) * v.act_stride;
  v.work_stride = work_bytes(k);
  if (amx_available()) v.panels = v.work + static_cast<size_t>(n_threads) * v.work_stride;
  return v;
}

}  // namespace detail

void MatmulScratch::reserve(int64_t max_rows, int64_t max_cols, int n_threads) {
  const size_t need = scratch_bytes(max_rows, max_cols, n_threads);
  if (bytes.size() < need) bytes.resize(need);
  const size_t need_floats = static_cast<size_t>(max_cols) * static_cast<size_t>(n_threads);
  if (floats.size() < need_floats) floats.resize(need_floats);
  const size_t need_sums = static_cast<size_t>(max_rows) * static_cast<size_t>(max_cols / 32);  // groups >= 32
  if (group_sums.size() < need_sums) group_sums.resize(need_sums);
}

bool matmul_supports(gguf::TensorType type) { return gguf::can_dequantize(type); }

void dequantize_row(const Matrix& w, int64_t n, float* out) {
  dequantize_blocks(w, n, out);
  if (w.offsets == nullptr) return;
  for (int64_t k = 0; k < w.cols; ++k) out[k] += w.offsets[k / w.offset_group * w.offset_stride + n];
}

// The block format part of matmul(): a SIMD kernel or the generic path.
static void matmul_blocks(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride,
                          ThreadPool& pool, MatmulScratch& scratch) {
  if (g_f32_activations.load(std::memory_order_relaxed))
    return matmul_generic(w, x, m, x_stride, y, y_stride, pool, scratch);
  using gguf::TensorType;
  bool (*kernel)(const Matrix&, const float*, int64_t, int64_t, float*, int64_t, ThreadPool&,
                 const detail::ScratchView&) = nullptr;
  switch (w.type) {
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::MXFP4: kernel = detail::matmul_q8; break;
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K: kernel = detail::matmul_kq; break;
    case TensorType::F16:
    case TensorType::BF16: kernel = detail::matmul_f16; break;
    default: break;
  }
  if (kernel != nullptr) {
    const auto view = detail::scratch_view(scratch, m, w.cols, pool.size());
    if (kernel(w, x, m, x_stride, y, y_stride, pool, view)) return;
  }
  matmul_generic(w, x, m, x_stride, y, y_stride, pool, scratch);
}

void matmul(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride, ThreadPool& pool,
            MatmulScratch& scratch) {
  if (m <= 0 || w.rows <= 0) return;
  matmul_blocks(w, x, m, x_stride, y, y_stride, pool, scratch);
  if (w.offsets != nullptr) add_group_offsets(w, x, m, x_stride, y, y_stride, pool, scratch);
}

void matmul_reference(const Matrix& w, const float* x, int64_t m, int64_t x_stride, float* y, int64_t y_stride) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t n = 0; n < w.rows; ++n) {
    dequantize_row(w, n, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < w.cols; ++j)
        acc += static_cast<double>(x[i * x_stride + j]) * row[static_cast<size_t>(j)];
      y[i * y_stride + n] = static_cast<float>(acc);
    }
  }
}

const char* matmul_target_name() { return detail::matmul_q8_target_name(); }

void set_f32_activations(bool on) { g_f32_activations.store(on); }

std::string compute_path_summary() {
  const std::string target = matmul_target_name();
  std::string isa = target;
  if (target == "AVX3_SPR") isa = "AVX-512 VNNI + BF16 + FP16";
  else if (target == "AVX3_ZEN4") isa = "AVX-512 VNNI + BF16";
  else if (target == "AVX3_DL") isa = "AVX-512 VNNI";
  else if (target == "AVX3") isa = "AVX-512";
  else if (target == "AVX2") isa = "AVX2 + FMA";
  else if (target == "EMU128" || target == "SCALAR") isa = "no SIMD";
  std::string s = isa + " (Highway " + target + ")";
  if (amx_bf16_available()) s += ", AMX-INT8 + AMX-BF16 tiles";
  else if (amx_available()) s += ", AMX-INT8 tiles";
  else s += ", no AMX";
  return s;
}

}  // namespace tandem::kernels
