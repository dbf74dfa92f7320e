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

size_t attention_scratch_floats(int block_tokens, int head_dim, int n_queries, int group) {
  return 2 * static_cast<size_t>(block_tokens) * static_cast<size_t>(head_dim) + 2 * static_cast<size_t>(block_tokens) +
         2 * static_cast<size_t>(n_queries) * static_cast<size_t>(std::max(group, 1));
}

namespace {

// One query of one head inside a block: its visible keys [t0, t1].
struct Item {
  int head;
  int query;
  int64_t t0, t1;
  size_t state;  // index of its running max / sum
};

}  // namespace

void attention(const AttentionArgs& a, int head_begin, int head_end) {
  const int group = a.n_heads / a.n_kv_heads;
  const size_t hd = static_cast<size_t>(a.head_dim);
  const int64_t bt = a.block_tokens;
  const size_t eb = elem_bytes(a.kv_type);
  const size_t head_bytes = static_cast<size_t>(bt) * hd * eb;
  const int64_t last_pos = a.pos + a.n_queries - 1;
  auto first_visible = [&](int64_t pos) { return a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0; };
  float* kbuf = a.scratch;
  float* vbuf = kbuf + static_cast<size_t>(bt) * hd;
  float* scores[2] = {vbuf + static_cast<size_t>(bt) * hd, vbuf + static_cast<size_t>(bt) * hd + bt};
  float* run_max = scores[1] + bt;
  float* run_sum = run_max + static_cast<size_t>(a.n_queries) * static_cast<size_t>(group);
  auto q_of = [&](const Item& it) { return a.q + it.query * a.q_stride + static_cast<size_t>(it.head) * hd; };
  auto out_of = [&](const Item& it) { return a.out + it.query * a.out_stride + static_cast<size_t>(it.head) * hd; };
  // Online softmax of one item's scores S of this block; leaves the weights in S.
  auto softmax_step = [&](const Item& it, float* s) {
    const float block_max = scale_max_f32(s, static_cast<size_t>(it.t0), static_cast<size_t>(it.t1), a.scale);
    const float new_max = std::max(run_max[it.state], block_max);
    const float correction = std::exp(run_max[it.state] - new_max);  // 0 on the first block
    if (correction != 1.0f) {
      float* out = out_of(it);
      for (size_t d = 0; d < hd; ++d) out[d] *= correction;
    }
    run_sum[it.state] = run_sum[it.state] * correction +
                        exp_sum_f32(s, static_cast<size_t>(it.t0), static_cast<size_t>(it.t1), new_max);
    run_max[it.state] = new_max;
  };

  // Heads sharing a KV head convert each block once, and their queries go
  // through the kernels two at a time (sharing every K and V load). Each
  // query's arithmetic is the same alone or paired.
  for (int kvh = head_begin / group; kvh * group < head_end; ++kvh) {
    const int hb = std::max(head_begin, kvh * group), he = std::min(head_end, (kvh + 1) * group);
    for (int h = hb; h < he; ++h) {
      for (int i = 0; i < a.n_queries; ++i) {
        const size_t st = static_cast<size_t>(h - hb) * static_cast<size_t>(a.n_queries) + static_cast<size_t>(i);
        std::memset(a.out + i * a.out_stride + static_cast<size_t>(h) * hd, 0, hd * sizeof(float));
        run_max[st] = -std::numeric_limits<float>::infinity();
        run_sum[st] = 0.0f;
      }
    }
    for (int64_t b = first_visible(a.pos) / bt; b <= last_pos / bt; ++b) {
      const int64_t block_start = b * bt;
      // Keys of this block any query sees.
      const int64_t lo = std::max(first_visible(a.pos), block_start) - block_start;
      const int64_t hi = std::min(last_pos, block_start + bt - 1) - block_start;
      if (lo > hi) continue;
      // K of this head is stored transposed, [head_dim][block_tokens]; V as rows.
      const float* k_t;
      const float* vrows;
      if (a.kv_type == KvType::kF16) {
        const auto* kh = reinterpret_cast<const uint16_t*>(a.k_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
        const auto* vh = reinterpret_cast<const uint16_t*>(a.v_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
        f16_to_f32_row(kh, kbuf, static_cast<size_t>(bt) * hd);
        const size_t from = static_cast<size_t>(lo) * hd, count = static_cast<size_t>(hi - lo + 1) * hd;
        f16_to_f32_row(vh + from, vbuf + from, count);
        k_t = kbuf;
        vrows = vbuf;
      } else {
        k_t = reinterpret_cast<const float*>(a.k_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
        vrows = reinterpret_cast<const float*>(a.v_blocks[b] + static_cast<size_t>(kvh) * head_bytes);
      }
      Item pending{};  // a query waiting for a partner
      bool has_pending = false;
      auto run_pair = [&](const Item& x, const Item& y) {
        scores_block2_f32(q_of(x), q_of(y), k_t, hd, static_cast<size_t>(bt), scores[0], scores[1]);
        softmax_step(x, scores[0]);
        softmax_step(y, scores[1]);
        if (x.t0 == y.t0 && x.t1 == y.t1) {
          pv_block2_f32(scores[0], scores[1], vrows, static_cast<size_t>(x.t0), static_cast<size_t>(x.t1), hd, out_of(x),
                        out_of(y));
        } else {
          pv_block_f32(scores[0], vrows, static_cast<size_t>(x.t0), static_cast<size_t>(x.t1), hd, out_of(x));
          pv_block_f32(scores[1], vrows, static_cast<size_t>(y.t0), static_cast<size_t>(y.t1), hd, out_of(y));
        }
      };
      for (int h = hb; h < he; ++h) {
        for (int i = 0; i < a.n_queries; ++i) {
          const int64_t pos = a.pos + i;
          Item it{h, i, std::max(first_visible(pos), block_start) - block_start,
                  std::min(pos, block_start + bt - 1) - block_start,
                  static_cast<size_t>(h - hb) * static_cast<size_t>(a.n_queries) + static_cast<size_t>(i)};
          if (it.t0 > it.t1) continue;
          if (!has_pending) {
            pending = it;
            has_pending = true;
            continue;
          }
          run_pair(pending, it);
          has_pending = false;
        }
      }
      if (has_pending) {
        scores_block_f32(q_of(pending), k_t, hd, static_cast<size_t>(bt), scores[0]);
        softmax_step(pending, scores[0]);
        pv_block_f32(scores[0], vrows, static_cast<size_t>(pending.t0), static_cast<size_t>(pending.t1), hd,
                     out_of(pending));
      }
    }
    for (int h = hb; h < he; ++h) {
      for (int i = 0; i < a.n_queries; ++i) {
        const size_t st = static_cast<size_t>(h - hb) * static_cast<size_t>(a.n_queries) + static_cast<size_t>(i);
        float* out = a.out + i * a.out_stride + static_cast<size_t>(h) * hd;
        const float inv = 1.0f / run_sum[st];
        for (size_t d = 0; d < hd; ++d) out[d] *= inv;
      }
    }
  }
}

void attention_reference(const AttentionArgs& a) {
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t first = a.window > 0 ? std::max<int64_t>(0, a.pos - a.window + 1) : 0;
  // K is [kv_head][head_dim][token] in a block, V is [kv_head][token][head_dim].
  auto load = [&](const uint8_t* const* blocks, int kvh, int64_t pos, int i) -> double {
    const int64_t b = pos / a.block_tokens, t = pos % a.block_tokens;
    const bool is_k = blocks == a.k_blocks;
    const size_t idx = is_k ? (static_cast<size_t>(kvh) * a.head_dim + static_cast<size_t>(i)) * a.block_tokens +
                                  static_cast<size_t>(t)
                            : (static_cast<size_t>(kvh) * a.block_tokens + static_cast<size_t>(t)) * a.head_dim + i;
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
