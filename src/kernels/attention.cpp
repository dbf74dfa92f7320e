#include "kernels/attention.h"

#include "core/fp16.h"
#include "kernels/dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace tandem::kernels {
namespace {

size_t elem_bytes(KvType t) { return t == KvType::kF16 ? 2 : 4; }

}  // namespace

void attention(const AttentionArgs& a, int head_begin, int head_end) {
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t first = a.window > 0 ? std::max<int64_t>(0, a.pos - a.window + 1) : 0;
  const size_t eb = elem_bytes(a.kv_type);
  const size_t head_bytes = static_cast<size_t>(a.block_tokens) * static_cast<size_t>(a.head_dim) * eb;
  const size_t row_bytes = static_cast<size_t>(a.head_dim) * eb;
  for (int h = head_begin; h < head_end; ++h) {
    const float* q = a.q + static_cast<size_t>(h) * static_cast<size_t>(a.head_dim);
    float* out = a.out + static_cast<size_t>(h) * static_cast<size_t>(a.head_dim);
    std::memset(out, 0, static_cast<size_t>(a.head_dim) * sizeof(float));
    const int kvh = h / group;
    float running_max = -std::numeric_limits<float>::infinity();
    float running_sum = 0.0f;
    for (int64_t b = first / a.block_tokens; b <= a.pos / a.block_tokens; ++b) {
      const int64_t block_start = b * a.block_tokens;
      const int t0 = static_cast<int>(std::max(first, block_start) - block_start);
      const int t1 = static_cast<int>(std::min(a.pos, block_start + a.block_tokens - 1) - block_start);
      const uint8_t* kbase = a.k_blocks[b] + static_cast<size_t>(kvh) * head_bytes;
      const uint8_t* vbase = a.v_blocks[b] + static_cast<size_t>(kvh) * head_bytes;
      float block_max = -std::numeric_limits<float>::infinity();
      for (int t = t0; t <= t1; ++t) {
        const uint8_t* krow = kbase + static_cast<size_t>(t) * row_bytes;
        const float s = a.scale * (a.kv_type == KvType::kF16
                                       ? dot_f32_f16(q, reinterpret_cast<const uint16_t*>(krow), a.head_dim)
                                       : dot_f32(q, reinterpret_cast<const float*>(krow), a.head_dim));
        a.scratch[t] = s;
        block_max = std::max(block_max, s);
      }
      const float new_max = std::max(running_max, block_max);
      const float correction = std::exp(running_max - new_max);  // 0 on the first block
      if (correction != 1.0f) {
        for (int i = 0; i < a.head_dim; ++i) out[i] *= correction;
      }
      running_sum *= correction;
      for (int t = t0; t <= t1; ++t) {
        const float p = std::exp(a.scratch[t] - new_max);
        running_sum += p;
        const uint8_t* vrow = vbase + static_cast<size_t>(t) * row_bytes;
        if (a.kv_type == KvType::kF16) {
          axpy_f16(p, reinterpret_cast<const uint16_t*>(vrow), out, a.head_dim);
        } else {
          axpy_f32(p, reinterpret_cast<const float*>(vrow), out, a.head_dim);
        }
      }
      running_max = new_max;
    }
    const float inv = 1.0f / running_sum;
    for (int i = 0; i < a.head_dim; ++i) out[i] *= inv;
  }
}

void attention_reference(const AttentionArgs& a) {
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t first = a.window > 0 ? std::max<int64_t>(0, a.pos - a.window + 1) : 0;
  auto load = [&](const uint8_t* const* blocks, int kvh, int64_t pos, int i) -> double {
    const int64_t b = pos / a.block_tokens, t = pos % a.block_tokens;
    const size_t idx = (static_cast<size_t>(kvh) * a.block_tokens + static_cast<size_t>(t)) * a.head_dim + i;
    if (a.kv_type == KvType::kF16) {
      uint16_t h;
      std::memcpy(&h, blocks[b] + idx * 2, 2);
      return f16_to_f32(h);
    }
    float f;
    std::memcpy(&f, blocks[b] + idx * 4, 4);
    return f;
  };
  for (int h = 0; h < a.n_heads; ++h) {
    const int kvh = h / group;
    std::vector<double> s;
    double mx = -INFINITY;
    for (int64_t p = first; p <= a.pos; ++p) {
      double d = 0;
      for (int i = 0; i < a.head_dim; ++i) d += a.q[h * a.head_dim + i] * load(a.k_blocks, kvh, p, i);
      s.push_back(d * a.scale);
      mx = std::max(mx, s.back());
    }
    double sum = 0;
    for (double& v : s) sum += (v = std::exp(v - mx));
    for (int i = 0; i < a.head_dim; ++i) {
      double acc = 0;
      for (int64_t p = first; p <= a.pos; ++p) acc += s[static_cast<size_t>(p - first)] * load(a.v_blocks, kvh, p, i);
      a.out[h * a.head_dim + i] = static_cast<float>(acc / sum);
    }
  }
}

}  // namespace tandem::kernels
