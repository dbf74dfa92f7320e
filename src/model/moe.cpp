#include "model/moe.h"

#include "kernels/ops.h"

#include <algorithm>
#include <atomic>
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

void MoeScratch::reserve(const ModelConfig& c, int max_rows, int n_threads) {
  const size_t R = static_cast<size_t>(max_rows), K = static_cast<size_t>(c.n_experts_used);
  const size_t D = static_cast<size_t>(c.dim), F = static_cast<size_t>(c.expert_ffn_dim);
  logits.resize(R * static_cast<size_t>(c.n_experts));
  expert.resize(R * K);
  weight.resize(R * K);
  counts.resize(static_cast<size_t>(c.n_experts) + 1);
  routed.resize(R * K);
  position.resize(R * K);
  x.resize(R * D);
  gate.resize(R * F);
  up.resize(R * F);
  y.resize(R * K * D);
  expert_rows.assign(static_cast<size_t>(c.n_experts), 0);
  next.resize(static_cast<size_t>(c.n_experts));
  order.reserve(static_cast<size_t>(c.n_experts));
  // A thread's expert never has more rows than the step.
  per_thread.resize(static_cast<size_t>(n_threads));
  for (auto& t : per_thread) {
    t.mm.reserve(max_rows, std::max(c.dim, c.expert_ffn_dim), 1);
    t.x.resize(R * D);
    t.gate.resize(R * F);
    t.up.resize(R * F);
  }
}

namespace {

// Buffers and threads one expert's rows run with.
struct ExpertRun {
  kernels::ThreadPool& pool;
  kernels::MatmulScratch& mm;
  float* x;     // [n][dim]: the rows' inputs, gathered
  float* gate;  // [n][ffn]
  float* up;    // [n][ffn]
};

// Y[i] = expert E applied to the input row of routed pair PAIRS[i], i < N
// (unweighted). A pair is row * k + slot.
void run_expert(const LayerWeights& L, const ModelConfig& c, int e, const int32_t* pairs, int32_t n, const float* x,
                const ExpertRun& r, float* y) {
  const int k = c.n_experts_used;
  const size_t D = static_cast<size_t>(c.dim), F = static_cast<size_t>(c.expert_ffn_dim), ue = static_cast<size_t>(e);
  for (int32_t i = 0; i < n; ++i) {
    std::memcpy(r.x + static_cast<size_t>(i) * D, x + static_cast<size_t>(pairs[i] / k) * D, D * sizeof(float));
  }
  kernels::matmul(L.exp_gate[ue], r.x, n, c.dim, r.gate, c.expert_ffn_dim, r.pool, r.mm);
  kernels::matmul(L.exp_up[ue], r.x, n, c.dim, r.up, c.expert_ffn_dim, r.pool, r.mm);
  const bool bias = !L.exp_gate_bias.empty();
  r.pool.for_each(n, [&](int64_t i) {
    float* g = r.gate + static_cast<size_t>(i) * F;
    float* u = r.up + static_cast<size_t>(i) * F;
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
  kernels::matmul(L.exp_down[ue], r.gate, n, c.expert_ffn_dim, y, c.dim, r.pool, r.mm);
  if (bias) {
    r.pool.for_each(n, [&](int64_t i) {
      kernels::add_inplace(y + static_cast<size_t>(i) * D, L.exp_down_bias.data() + ue * D, D);
    });
  }
}

bool split_by_experts(MoeSplit split, int active_experts, int n_threads) {
  if (split != MoeSplit::kAuto) return split == MoeSplit::kExperts;
  return n_threads > 1 && active_experts >= 2 * n_threads;
}

}  // namespace

void moe_ffn(const LayerWeights& L, const ModelConfig& c, float* x, int64_t rows, float* out, kernels::ThreadPool& pool,
             kernels::MatmulScratch& mm, MoeScratch& s) {
  const int n_exp = c.n_experts, k = c.n_experts_used;
  const size_t D = static_cast<size_t>(c.dim);
  kernels::matmul(L.router, x, rows, c.dim, s.logits.data(), n_exp, pool, mm);
  if (!L.router_bias.empty()) {
    for (int64_t r = 0; r < rows; ++r)
      kernels::add_inplace(s.logits.data() + r * n_exp, L.router_bias.data(), static_cast<size_t>(n_exp));
  }
  route_top_k(s.logits.data(), rows, n_exp, k, s.expert.data(), s.weight.data());

  // Group (row, slot) pairs by expert, rows in order within each expert.
  std::fill(s.counts.begin(), s.counts.end(), 0);
  for (int64_t i = 0; i < rows * k; ++i) ++s.counts[static_cast<size_t>(s.expert[static_cast<size_t>(i)]) + 1];
  s.routed_total += rows * k;
  int active = 0;
  for (int e = 0; e < n_exp; ++e) {
    active += s.counts[static_cast<size_t>(e) + 1] > 0;
    s.expert_rows[static_cast<size_t>(e)] = s.counts[static_cast<size_t>(e) + 1];
    s.counts[static_cast<size_t>(e) + 1] += s.counts[static_cast<size_t>(e)];
  }
  s.expert_reads_total += active;
  std::copy(s.counts.begin(), s.counts.end() - 1, s.next.begin());
  for (int64_t i = 0; i < rows * k; ++i) {
    const size_t e = static_cast<size_t>(s.expert[static_cast<size_t>(i)]);
    s.position[static_cast<size_t>(i)] = s.next[e];
    s.routed[static_cast<size_t>(s.next[e]++)] = static_cast<int32_t>(i);
  }

  // Every pair's expert output into Y, in routed order.
  auto expert_pairs = [&](int e, int32_t* begin) {
    *begin = s.counts[static_cast<size_t>(e)];
    return s.counts[static_cast<size_t>(e) + 1] - *begin;
  };
  if (split_by_experts(s.split, active, pool.size())) {
    s.last_split = MoeSplit::kExperts;
    s.order.clear();
    for (int e = 0; e < n_exp; ++e) {
      if (s.expert_rows[static_cast<size_t>(e)] > 0) s.order.push_back(e);
    }
    // Most rows first: the claims then end with small experts (balance).
    std::stable_sort(s.order.begin(), s.order.end(), [&](int a, int b) {
      return s.expert_rows[static_cast<size_t>(a)] > s.expert_rows[static_cast<size_t>(b)];
    });
    std::atomic<size_t> claim{0};
    pool.run([&](int t, int) {
      MoeThreadScratch& ts = s.per_thread[static_cast<size_t>(t)];
      const ExpertRun run{s.serial, ts.mm, ts.x.data(), ts.gate.data(), ts.up.data()};
      for (size_t i = claim.fetch_add(1); i < s.order.size(); i = claim.fetch_add(1)) {
        int32_t begin;
        const int32_t n = expert_pairs(s.order[i], &begin);
        run_expert(L, c, s.order[i], s.routed.data() + begin, n, x, run, s.y.data() + static_cast<size_t>(begin) * D);
      }
    });
  } else {
    s.last_split = MoeSplit::kRows;
    const ExpertRun run{pool, mm, s.x.data(), s.gate.data(), s.up.data()};
    for (int e = 0; e < n_exp; ++e) {
      int32_t begin;
      const int32_t n = expert_pairs(e, &begin);
      if (n > 0) run_expert(L, c, e, s.routed.data() + begin, n, x, run, s.y.data() + static_cast<size_t>(begin) * D);
    }
  }

  // Each row's weighted sum, its experts in index order (the same bits
  // whatever the split and whatever other rows share the step). Every
  // expert has read X by now, so OUT may be X.
  pool.for_each(rows, [&](int64_t r) {
    int32_t slots[kMaxExpertsUsed];
    const int32_t* e = s.expert.data() + r * k;
    for (int j = 0; j < k; ++j) {
      int m = j;
      while (m > 0 && e[slots[m - 1]] > e[j]) {
        slots[m] = slots[m - 1];
        --m;
      }
      slots[m] = j;
    }
    float* a = out + static_cast<size_t>(r) * D;
    std::fill(a, a + D, 0.0f);
    for (int j = 0; j < k; ++j) {
      const size_t pair = static_cast<size_t>(r * k + slots[j]);
      const float w = s.weight[pair];
      const float* y = s.y.data() + static_cast<size_t>(s.position[pair]) * D;
      for (size_t d = 0; d < D; ++d) a[d] += w * y[d];
    }
  });
}

}  // namespace tandem::model
