#include "kernels/q8_pack.h"

#include "core/env.h"
#include "kernels/amx.h"

#include <cstring>
#include <string_view>
#include <vector>

namespace tandem::kernels {
namespace {

// Byte offsets inside a packed block of a group of G rows, for row R: its
// scale, its quant bytes 4q..4q+3.
constexpr size_t scale_at(int r) { return static_cast<size_t>(2 * r); }
constexpr size_t quads_at(int g, int r, int q) { return static_cast<size_t>(2 * g + 4 * g * q + 4 * r); }

int64_t block_bytes(gguf::TensorType type) { return type == gguf::TensorType::Q8_0 ? 34 : 18; }

}  // namespace

bool packable(gguf::TensorType type) { return type == gguf::TensorType::Q8_0 || type == gguf::TensorType::Q4_0; }

int64_t pack_rows(gguf::TensorType type, int group, uint8_t* data, int64_t rows, int64_t cols, ThreadPool* pool) {
  if (!packable(type) || (group != 8 && group != 16)) return 0;
  const int64_t packed = rows / group * group;
  if (pool != nullptr && pool->size() > 1) {
    pool->run([&](int t, int nt) {
      int64_t begin, end;
      ThreadPool::split(packed / group, t, nt, &begin, &end);
      const size_t row_bytes = static_cast<size_t>(cols / 32 * block_bytes(type));
      pack_rows(type, group, data + static_cast<size_t>(begin * group) * row_bytes, (end - begin) * group, cols,
                nullptr);
    });
    return packed;
  }
  const int64_t blocks = cols / 32, bb = block_bytes(type), quads = (bb - 2) / 4;
  const size_t row_bytes = static_cast<size_t>(blocks * bb);
  std::vector<uint8_t> buf(row_bytes * static_cast<size_t>(group));
  for (int64_t n0 = 0; n0 < packed; n0 += group) {
    uint8_t* src = data + static_cast<size_t>(n0) * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* out = buf.data() + static_cast<size_t>(b * group * bb);
      for (int r = 0; r < group; ++r) {
        const uint8_t* in = src + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b * bb);
        std::memcpy(out + scale_at(r), in, 2);
        for (int q = 0; q < quads; ++q) std::memcpy(out + quads_at(group, r, q), in + 2 + 4 * q, 4);
      }
    }
    std::memcpy(src, buf.data(), buf.size());
  }
  return packed;
}

void copy_gguf_row(const Matrix& w, int64_t n, uint8_t* out) {
  if (n >= w.packed_rows) {
    std::memcpy(out, w.data + static_cast<size_t>(n) * w.row_bytes, w.row_bytes);
    return;
  }
  const int g = w.pack_group;
  const int64_t bb = block_bytes(w.type), quads = (bb - 2) / 4;
  const int r = static_cast<int>(n % g);
  const uint8_t* group = w.data + static_cast<size_t>(n - r) * w.row_bytes;
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const uint8_t* in = group + static_cast<size_t>(b * g * bb);
    uint8_t* o = out + static_cast<size_t>(b * bb);
    std::memcpy(o, in + scale_at(r), 2);
    for (int q = 0; q < quads; ++q) std::memcpy(o + 2 + 4 * q, in + quads_at(g, r, q), 4);
  }
}

// Groups of the dispatched decode kernel: 16 rows for AVX-512 VNNI's
// 16-row kernel, 8 for the 8-row kernels of AVX2 and plain AVX-512 (16-row
// groups read by those were 7-9% slower at 5 sequences than the file's
// rows: a tile read half of each line; docs/BENCHMARKS.md).
int packing_group() {
  if (env_flag("TANDEM_NO_PACK") || amx_mode() != AmxMode::kOff) return 0;
  const std::string_view target = matmul_target_name();
  if (target == "AVX3_DL") return 16;
  return target == "AVX2" || target == "AVX3" ? 8 : 0;
}

}  // namespace tandem::kernels
