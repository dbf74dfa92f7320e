// The mixture-of-experts FFN (model/moe.h): routing, and the grouped
// computation against a per-row reference in double.
#include "model/moe.h"

#include "gguf/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace tandem::model {
namespace {

TEST(MoeRouting, TopKOfTheSoftmaxRenormalized) {
  // Row 0: experts 3 and 1 lead. Row 1: a tie between 0 and 2 (lower index first).
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 3.0f, 0.0f, 1.0f, -2.0f, 1.0f, 0.0f, 0.5f};
  std::vector<int32_t> expert(4);
  std::vector<float> weight(4);
  route_top_k(logits.data(), 2, 5, 2, expert.data(), weight.data());
  EXPECT_EQ(expert, (std::vector<int32_t>{3, 1, 0, 2}));
  // softmax over all five, then the two renormalized: e^3 / (e^3 + e^2).
  EXPECT_FLOAT_EQ(weight[0], static_cast<float>(std::exp(3.0) / (std::exp(3.0) + std::exp(2.0))));
  EXPECT_FLOAT_EQ(weight[0] + weight[1], 1.0f);
  EXPECT_FLOAT_EQ(weight[2], 0.5f);
  EXPECT_FLOAT_EQ(weight[3], 0.5f);
  // k = n: every expert, most probable first.
  std::vector<int32_t> all(5);
  std::vector<float> w(5);
  route_top_k(logits.data(), 1, 5, 5, all.data(), w.data());
  EXPECT_EQ(all, (std::vector<int32_t>{3, 1, 0, 4, 2}));
}

// A layer of N_EXP f32 experts with random weights.
struct Experts {
  ModelConfig c;
  LayerWeights L;
  std::vector<std::vector<float>> store;
  std::vector<std::vector<uint8_t>> quantized;

  // Expert matrices in TYPE (the router stays f32; only F32 experts have a reference()).
  Experts(int dim, int ffn, int n_exp, int used, uint32_t seed, gguf::TensorType type = gguf::TensorType::F32) {
    c.dim = dim;
    c.n_experts = n_exp;
    c.n_experts_used = used;
    c.expert_ffn_dim = ffn;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 0.3f);
    auto matrix = [&](int rows, int cols, gguf::TensorType t) {
      store.emplace_back(static_cast<size_t>(rows) * static_cast<size_t>(cols));
      for (auto& v : store.back()) v = nd(rng);
      kernels::Matrix m;
      m.type = t;
      m.rows = rows;
      m.cols = cols;
      m.row_bytes = *gguf::row_bytes(t, static_cast<uint64_t>(cols));
      if (t == gguf::TensorType::F32) {
        m.data = reinterpret_cast<const uint8_t*>(store.back().data());
        return m;
      }
      quantized.emplace_back(m.row_bytes * static_cast<size_t>(rows));
      for (int r = 0; r < rows; ++r) {
        (void)gguf::quantize(t, store.back().data() + static_cast<size_t>(r) * static_cast<size_t>(cols),
                             quantized.back().data() + static_cast<size_t>(r) * m.row_bytes, cols);
      }
      m.data = quantized.back().data();
      return m;
    };
    store.reserve(static_cast<size_t>(1 + 3 * n_exp));
    quantized.reserve(static_cast<size_t>(3 * n_exp));
    L.router = matrix(n_exp, dim, gguf::TensorType::F32);
    for (int e = 0; e < n_exp; ++e) {
      L.exp_gate.push_back(matrix(ffn, dim, type));
      L.exp_up.push_back(matrix(ffn, dim, type));
      L.exp_down.push_back(matrix(dim, ffn, type));
    }
  }

  static double dot(const kernels::Matrix& m, int64_t row, const double* x) {
    const float* w = reinterpret_cast<const float*>(m.data) + row * m.cols;
    double s = 0;
    for (int64_t j = 0; j < m.cols; ++j) s += w[j] * x[j];
    return s;
  }

  // One row in double: softmax, top k, renormalize, weighted SwiGLU experts.
  std::vector<double> reference(const float* x) const {
    std::vector<double> xd(x, x + c.dim), logits(static_cast<size_t>(c.n_experts));
    for (int e = 0; e < c.n_experts; ++e) logits[static_cast<size_t>(e)] = dot(L.router, e, xd.data());
    std::vector<int> order(static_cast<size_t>(c.n_experts));
    for (int e = 0; e < c.n_experts; ++e) order[static_cast<size_t>(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
    double z = 0;
    for (int j = 0; j < c.n_experts_used; ++j) z += std::exp(logits[static_cast<size_t>(order[j])]);
    std::vector<double> out(static_cast<size_t>(c.dim), 0.0), h(static_cast<size_t>(c.expert_ffn_dim));
    for (int j = 0; j < c.n_experts_used; ++j) {
      const int e = order[static_cast<size_t>(j)];
      const double w = std::exp(logits[static_cast<size_t>(e)]) / z;
      for (int i = 0; i < c.expert_ffn_dim; ++i) {
        const double g = dot(L.exp_gate[static_cast<size_t>(e)], i, xd.data());
        h[static_cast<size_t>(i)] = g / (1 + std::exp(-g)) * dot(L.exp_up[static_cast<size_t>(e)], i, xd.data());
      }
      for (int d = 0; d < c.dim; ++d)
        out[static_cast<size_t>(d)] += w * dot(L.exp_down[static_cast<size_t>(e)], d, h.data());
    }
    return out;
  }
};

// ROWS x DIM standard normal activations.
std::vector<float> random_rows(int rows, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * dim));
  for (auto& v : x) v = nd(rng);
  return x;
}

TEST(MoeFfn, MatchesAPerRowReferenceAndDoesNotDependOnTheBatch) {
  const int dim = 48, ffn = 40, rows = 37;
  Experts ex(dim, ffn, 8, 3, 11);
  const std::vector<float> x = random_rows(rows, dim, 5);
  kernels::ThreadPool pool(2);
  kernels::MatmulScratch mm;
  mm.reserve(rows, 64, pool.size());
  MoeScratch s;
  s.reserve(ex.c, rows, pool.size());

  std::vector<float> batched = x;  // in place, as the forward pass calls it
  moe_ffn(ex.L, ex.c, batched.data(), rows, batched.data(), pool, mm, s);
  int64_t routed = 0;
  for (int64_t n : s.expert_rows) routed += n;
  EXPECT_EQ(routed, rows * 3) << "every row reached its 3 experts";
  EXPECT_EQ(s.routed_total, rows * 3);
  EXPECT_LE(s.expert_reads_total, 8) << "37 rows, one read of each expert they chose";
  for (int r = 0; r < rows; ++r) {
    const auto want = ex.reference(x.data() + r * dim);
    for (int d = 0; d < dim; ++d) {
      ASSERT_NEAR(batched[static_cast<size_t>(r * dim + d)], want[static_cast<size_t>(d)], 1e-4) << "row " << r;
    }
    // The same row alone gives the same bits.
    std::vector<float> alone(x.begin() + r * dim, x.begin() + (r + 1) * dim), out(static_cast<size_t>(dim));
    moe_ffn(ex.L, ex.c, alone.data(), 1, out.data(), pool, mm, s);
    ASSERT_EQ(std::memcmp(out.data(), batched.data() + r * dim, static_cast<size_t>(dim) * sizeof(float)), 0)
        << "row " << r;
  }
}

class MoeSplitTest : public ::testing::TestWithParam<gguf::TensorType> {};

TEST_P(MoeSplitTest, SplittingByExpertsOrByRowsGivesTheSameBits) {
  const int dim = 256, ffn = 512, rows = 5;
  Experts ex(dim, ffn, 8, 4, 3, GetParam());
  std::vector<float> x = random_rows(rows, dim, 9);
  kernels::ThreadPool pool(2);
  kernels::MatmulScratch mm;
  mm.reserve(rows, ffn, pool.size());
  std::vector<float> out[2];
  const MoeSplit splits[2] = {MoeSplit::kRows, MoeSplit::kExperts};
  for (int i = 0; i < 2; ++i) {
    MoeScratch s;
    s.reserve(ex.c, rows, pool.size());
    s.split = splits[i];
    out[i].resize(x.size());
    moe_ffn(ex.L, ex.c, x.data(), rows, out[i].data(), pool, mm, s);
    EXPECT_EQ(s.last_split, splits[i]);
  }
  ASSERT_EQ(std::memcmp(out[0].data(), out[1].data(), x.size() * sizeof(float)), 0);
  // Auto: one row's 4 experts on 2 threads are split by experts, 1 expert by rows.
  MoeScratch s;
  s.reserve(ex.c, rows, pool.size());
  std::vector<float> one(static_cast<size_t>(dim));
  moe_ffn(ex.L, ex.c, x.data(), 1, one.data(), pool, mm, s);
  EXPECT_EQ(s.last_split, MoeSplit::kExperts);
  EXPECT_EQ(std::memcmp(one.data(), out[0].data(), one.size() * sizeof(float)), 0) << "row 0 alone";
}

INSTANTIATE_TEST_SUITE_P(Types, MoeSplitTest,
                         ::testing::Values(gguf::TensorType::F32, gguf::TensorType::Q8_0, gguf::TensorType::Q4_K,
                                           gguf::TensorType::MXFP4),
                         [](const auto& info) { return std::string(gguf::type_name(info.param)); });

}  // namespace
}  // namespace tandem::model
