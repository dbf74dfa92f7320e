#include "model/moe.h"

#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tandem::model {

void route_top_k(const float* logits, int64_t rows, int n_experts, int k, int32_t* expert, float* weight) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = logits + r * n_experts;
    int32_t* e = expert + r * k;
    float* w = weight + r * k;
    // Top K by logit (the softmax keeps the order), lower index first on ties.
    for (int j = 0; j < k; ++j) e[j] = -1;
    for (int i = 0; i < n_experts; ++i) {
      int j = k;
      while (j > 0 && (e[j - 1] < 0 || l[i] > l[e[j - 1]])) --j;
      if (j == k) continue;
      for (int m = k - 1; m > j; --m) e[m] = e[m - 1];
      e[j] = i;
    }
    // Softmax over all experts, then the chosen ones renormalized: the
    // full sum cancels, so p_j / sum_topk p = exp(l_j - max) / sum_topk exp(. - max).
    const float max = l[e[0]];
    float sum = 0;
    for (int j = 0; j < k; ++j) sum += w[j] = std::exp(l[e[j]] - max);
    for (int j = 0; j < k; ++j) w[j] /= sum;
  }
}

void MoeScratch::reserve(const ModelConfig& c, int max_rows) {
  const size_t R = static_cast<size_t>(max_rows), K = static_cast<size_t>(c.n_experts_used);
  const size_t D = static_cast<size_t>(c.dim), F = static_cast<size_t>(c.expert_ffn_dim);
  logits.resize(R * static_cast<size_t>(c.n_experts));
  expert.resize(R * K);
  weight.resize(R * K);
  counts.resize(static_cast<size_t>(c.n_experts) + 1);
  routed.resize(R * K);
  x.resize(R * D);
  gate.resize(R * F);
  up.resize(R * F);
  y.resize(R * D);
  acc.resize(R * D);
  expert_rows.assign(static_cast<size_t>(c.n_experts), 0);
}

void moe_ffn(const LayerWeights& L, const ModelConfig& c, float* x, int64_t rows, float* out,
             kernels::ThreadPool& pool, kernels::MatmulScratch& mm, MoeScratch& s) {
  const int n_exp = c.n_experts, k = c.n_experts_used;
  const size_t D = static_cast<size_t>(c.dim), F = static_cast<size_t>(c.expert_ffn_dim);
  kernels::matmul(L.router, x, rows, c.dim, s.logits.data(), n_exp, pool, mm);
  if (!L.router_bias.empty()) {
    for (int64_t r = 0; r < rows; ++r) kernels::add_inplace(s.logits.data() + r * n_exp, L.router_bias.data(), static_cast<size_t>(n_exp));
  }
  route_top_k(s.logits.data(), rows, n_exp, k, s.expert.data(), s.weight.data());

  // Group (row, slot) pairs by expert, rows in order within each expert.
  std::fill(s.counts.begin(), s.counts.end(), 0);
  for (int64_t i = 0; i < rows * k; ++i) ++s.counts[static_cast<size_t>(s.expert[static_cast<size_t>(i)]) + 1];
  s.routed_total += rows * k;
  for (int e = 0; e < n_exp; ++e) {
    s.expert_reads_total += s.counts[static_cast<size_t>(e) + 1] > 0;
    s.expert_rows[static_cast<size_t>(e)] = s.counts[static_cast<size_t>(e) + 1];
    s.counts[static_cast<size_t>(e) + 1] += s.counts[static_cast<size_t>(e)];
  }
  std::vector<int32_t> next(s.counts.begin(), s.counts.end() - 1);
  for (int64_t i = 0; i < rows * k; ++i) {
    const size_t e = static_cast<size_t>(s.expert[static_cast<size_t>(i)]);
    s.routed[static_cast<size_t>(next[e]++)] = static_cast<int32_t>(i);
  }

  std::fill(s.acc.begin(), s.acc.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(rows) * D), 0.0f);
  for (int e = 0; e < n_exp; ++e) {
    const int32_t begin = s.counts[static_cast<size_t>(e)], n = s.counts[static_cast<size_t>(e) + 1] - begin;
    if (n == 0) continue;
    const int32_t* pairs = s.routed.data() + begin;
    for (int32_t i = 0; i < n; ++i) {
      std::memcpy(s.x.data() + static_cast<size_t>(i) * D, x + static_cast<size_t>(pairs[i] / k) * D, D * sizeof(float));
    }
    const size_t ue = static_cast<size_t>(e);
    kernels::matmul(L.exp_gate[ue], s.x.data(), n, c.dim, s.gate.data(), c.expert_ffn_dim, pool, mm);
    kernels::matmul(L.exp_up[ue], s.x.data(), n, c.dim, s.up.data(), c.expert_ffn_dim, pool, mm);
    const bool bias = !L.exp_gate_bias.empty();
    pool.for_each(n, [&](int64_t i) {
      float* g = s.gate.data() + static_cast<size_t>(i) * F;
      float* u = s.up.data() + static_cast<size_t>(i) * F;
      if (bias) {
        kernels::add_inplace(g, L.exp_gate_bias.data() + ue * F, F);
        kernels::add_inplace(u, L.exp_up_bias.data() + ue * F, F);
      }
      if (c.swiglu_oai) {
        kernels::swiglu_oai(g, u, g, F);
      } else {
        kernels::silu_mul(g, u, g, F);
      }
    });
    kernels::matmul(L.exp_down[ue], s.gate.data(), n, c.expert_ffn_dim, s.y.data(), c.dim, pool, mm);
    if (bias) {
      pool.for_each(n, [&](int64_t i) { kernels::add_inplace(s.y.data() + static_cast<size_t>(i) * D, L.exp_down_bias.data() + ue * D, D); });
    }
    // Each row appears at most once per expert, so rows are disjoint here.
    pool.for_each(n, [&](int64_t i) {
      const int32_t pair = pairs[i];
      const float w = s.weight[static_cast<size_t>(pair)];
      float* a = s.acc.data() + static_cast<size_t>(pair / k) * D;
      const float* y = s.y.data() + static_cast<size_t>(i) * D;
      for (size_t j = 0; j < D; ++j) a[j] += w * y[j];
    });
  }
  std::memcpy(out, s.acc.data(), static_cast<size_t>(rows) * D * sizeof(float));
}

}  // namespace tandem::model
