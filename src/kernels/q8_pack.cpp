#include "kernels/q8_pack.h"

#include "core/env.h"
#include "kernels/amx.h"

#include <cstring>
#include <string_view>
#include <vector>

namespace tandem::kernels {
namespace {

// Byte offsets inside a packed block of row R: its scale, its quant bytes 4g..4g+3.
constexpr size_t scale_at(int r) { return static_cast<size_t>(2 * r); }
constexpr size_t quads_at(int r, int g) { return static_cast<size_t>(32 + 64 * g + 4 * r); }

int64_t block_bytes(gguf::TensorType type) { return type == gguf::TensorType::Q8_0 ? 34 : 18; }

}  // namespace

bool packable(gguf::TensorType type) { return type == gguf::TensorType::Q8_0 || type == gguf::TensorType::Q4_0; }

int64_t packed_block_bytes(gguf::TensorType type) { return kPackRows * block_bytes(type); }

int64_t pack_rows16(gguf::TensorType type, uint8_t* data, int64_t rows, int64_t cols) {
  if (!packable(type)) return 0;
  const int64_t blocks = cols / 32, bb = block_bytes(type), quads = (bb - 2) / 4;
  const size_t row_bytes = static_cast<size_t>(blocks * bb);
  const int64_t packed = rows / kPackRows * kPackRows;
  std::vector<uint8_t> group(row_bytes * kPackRows);
  for (int64_t n0 = 0; n0 < packed; n0 += kPackRows) {
    uint8_t* src = data + static_cast<size_t>(n0) * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* out = group.data() + static_cast<size_t>(b * kPackRows * bb);
      for (int r = 0; r < kPackRows; ++r) {
        const uint8_t* in = src + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b * bb);
        std::memcpy(out + scale_at(r), in, 2);
        for (int g = 0; g < quads; ++g) std::memcpy(out + quads_at(r, g), in + 2 + 4 * g, 4);
      }
    }
    std::memcpy(src, group.data(), group.size());
  }
  return packed;
}

void copy_gguf_row(const Matrix& w, int64_t n, uint8_t* out) {
  if (n >= w.packed_rows) {
    std::memcpy(out, w.data + static_cast<size_t>(n) * w.row_bytes, w.row_bytes);
    return;
  }
  const int64_t bb = block_bytes(w.type), quads = (bb - 2) / 4;
  const int r = static_cast<int>(n % kPackRows);
  const uint8_t* group = w.data + static_cast<size_t>(n - r) * w.row_bytes;
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const uint8_t* in = group + static_cast<size_t>(b * kPackRows * bb);
    uint8_t* o = out + static_cast<size_t>(b * bb);
    std::memcpy(o, in + scale_at(r), 2);
    for (int g = 0; g < quads; ++g) std::memcpy(o + 2 + 4 * g, in + quads_at(r, g), 4);
  }
}

// Only where the 16-row kernel runs (AVX-512 VNNI, matmul_q8.cpp). The
// 8-row kernels of AVX2 and plain AVX-512 read packed rows too (the same
// bits), but a tile then reads half of each line of its group and leaves
// the other half to the next tile: on Zen 5 through TANDEM_SIMD=avx2 that
// was 7-9% slower at 5 sequences than the GGUF rows (docs/BENCHMARKS.md).
bool packing_pays() {
  if (env_flag("TANDEM_NO_PACK") || amx_mode() != AmxMode::kOff) return false;
  return std::string_view(matmul_target_name()) == "AVX3_DL";
}

}  // namespace tandem::kernels
