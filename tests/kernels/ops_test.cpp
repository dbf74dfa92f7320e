// Row operations and the thread pool against plain double-precision
// formulas.
#include "core/fp16.h"
#include "kernels/dot.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <atomic>
#include <bit>
#include <cstring>
#include <cmath>
#include <random>
#include <vector>

namespace tandem::kernels {
namespace {

// The vector f32 -> f16 row conversion (the f16 KV write) gives the scalar
// converter's bits on every target: normals, ties, subnormals, overflow,
// zeros and infinities; odd lengths take the scalar tail.
TEST(Ops, F32ToF16RowMatchesScalar) {
  std::mt19937 rng(5);
  std::vector<float> x;
  for (int i = 0; i < 20000; ++i) {
    const uint32_t bits = rng();
    const float f = std::bit_cast<float>(bits);
    if (!std::isnan(f)) x.push_back(f);  // any exponent: overflow, subnormals
  }
  for (int i = 0; i < 20000; ++i)
    x.push_back(std::ldexp(static_cast<float>(rng() % 4096) + 0.5f, -30 + static_cast<int>(rng() % 50)));
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite half and the midpoints above it
    const float lo = f16_to_f32(static_cast<uint16_t>(h)), hi = f16_to_f32(static_cast<uint16_t>(h + 1));
    x.push_back(lo);
    x.push_back(-(lo + (hi - lo) / 2));
  }
  for (float f : {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65520.0f, 65519.99f, 1e-8f, 2.98e-8f, 5.96e-8f})
    x.push_back(f);
  x.push_back(1.0f);  // odd length: a scalar tail
  std::vector<int64_t> targets{0};
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) targets.push_back(t);
  for (int64_t t : targets) {
    hwy::SetSupportedTargetsForTest(t);
    std::vector<uint16_t> got(x.size());
    f32_to_f16_row(x.data(), got.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(got[i], f32_to_f16(x[i]))
          << (t == 0 ? "default" : hwy::TargetName(t)) << " x=" << x[i] << " bits " << std::bit_cast<uint32_t>(x[i]);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Ops, RmsNorm) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 3);
  for (size_t n : {1u, 7u, 64u, 1000u, 4096u}) {
    std::vector<float> x(n), w(n), out(n);
    for (size_t i = 0; i < n; ++i) x[i] = nd(rng), w[i] = 1 + 0.1f * nd(rng);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1 / std::sqrt(ss / static_cast<double>(n) + 1e-6);
    rmsnorm(x.data(), w.data(), 1e-6f, out.data(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], x[i] * inv * w[i], 1e-5 * std::fabs(x[i] * inv * w[i]) + 1e-6);
    rmsnorm(x.data(), nullptr, 1e-6f, x.data(), n);  // in place, no weight
    EXPECT_NEAR(x[0], out[0] / w[0], 1e-4);
  }
}

TEST(Ops, Activations) {
  const std::vector<float> g{-20, -3, -0.5f, 0, 0.5f, 3, 20}, up{1, 2, 3, 4, 5, 6, 7};
  std::vector<float> out(g.size());
  silu_mul(g.data(), up.data(), out.data(), g.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * up[i], 1e-5);
  gelu_tanh_mul(g.data(), up.data(), out.data(), g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    const double ref = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * up[i];
    EXPECT_NEAR(out[i], ref, 1e-5);
  }
}

TEST(Ops, RopePairings) {
  const int n_rot = 8;
  std::vector<float> cs(n_rot / 2), sn(n_rot / 2);
  const std::vector<float> factors{1, 2, 4, 8};
  rope_cos_sin(7, n_rot, 10000, factors.data(), 2.0f, cs.data(), sn.data());
  for (int i = 0; i < n_rot / 2; ++i) {
    const double theta = 7 / 2.0 * std::pow(10000.0, -2.0 * i / n_rot) / factors[static_cast<size_t>(i)];
    EXPECT_NEAR(cs[static_cast<size_t>(i)], std::cos(theta), 1e-6);
    EXPECT_NEAR(sn[static_cast<size_t>(i)], std::sin(theta), 1e-6);
  }
  // head_dim 10 with n_rot 8: the last two values are not rotated.
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, adj = x, neox = x;
  rope(adj.data(), cs.data(), sn.data(), n_rot, RopePairing::kAdjacent);
  rope(neox.data(), cs.data(), sn.data(), n_rot, RopePairing::kNeox);
  for (int i = 0; i < n_rot / 2; ++i) {
    const size_t a = static_cast<size_t>(2 * i), b = a + 1;
    EXPECT_NEAR(adj[a], x[a] * cs[static_cast<size_t>(i)] - x[b] * sn[static_cast<size_t>(i)], 1e-6);
    EXPECT_NEAR(adj[b], x[a] * sn[static_cast<size_t>(i)] + x[b] * cs[static_cast<size_t>(i)], 1e-6);
    const size_t c = static_cast<size_t>(i), d = c + n_rot / 2;
    EXPECT_NEAR(neox[c], x[c] * cs[c] - x[d] * sn[c], 1e-6);
    EXPECT_NEAR(neox[d], x[c] * sn[c] + x[d] * cs[c], 1e-6);
  }
  EXPECT_EQ(adj[8], 9);
  EXPECT_EQ(neox[9], 10);
}

// gpt-oss's activation: the gate clamped above at 7, the up input to
// [-7, 7], g * sigmoid(1.702 g) * (u + 1). Known answers that a plain SiLU
// (alpha 1) or a missing clamp would miss.
TEST(Ops, SwigluOai) {
  const float gate[] = {1.0f, 10.0f, -3.0f, 0.5f}, up[] = {2.0f, -10.0f, 0.25f, 9.0f};
  float out[4];
  swiglu_oai(gate, up, out, 4);
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  EXPECT_NEAR(out[0], 1.0 * sig(1.702) * 3.0, 1e-6);
  EXPECT_NEAR(out[1], 7.0 * sig(1.702 * 7.0) * (-6.0), 1e-5) << "gate clamped to 7, up to -7";
  EXPECT_NEAR(out[2], -3.0 * sig(-3 * 1.702) * 1.25, 1e-6) << "no lower clamp on the gate";
  EXPECT_NEAR(out[3], 0.5 * sig(0.851) * 8.0, 1e-6) << "up clamped to 7";
  EXPECT_GT(std::fabs(out[0] - 1.0 * sig(1.0) * 3.0), 0.1) << "alpha 1.702 is not SiLU";
}

// YaRN with gpt-oss's numbers (64 rotated dims, base 150000, factor 32,
// 4096 original context, beta 32 and 1): dims 0..7 keep their angle, dims
// 18.. are slowed by 32, all scaled by 1 + 0.1 ln 32.
TEST(Ops, RopeYarn) {
  YarnParams y;
  y.factor = 32;
  y.original_ctx = 4096;
  float cos[32], sin[32];
  const int64_t pos = 1000;
  rope_cos_sin_yarn(pos, 64, 150000.0f, y, cos, sin);
  const double mscale = 1 + 0.1 * std::log(32.0);
  auto theta = [](int i) { return std::pow(150000.0, -2.0 * i / 64); };
  for (int i : {0, 3, 7}) {
    EXPECT_NEAR(cos[i], std::cos(pos * theta(i)) * mscale, 1e-5) << i;
    EXPECT_NEAR(sin[i], std::sin(pos * theta(i)) * mscale, 1e-5) << i;
  }
  for (int i : {18, 25, 31}) {
    EXPECT_NEAR(cos[i], std::cos(pos * theta(i) / 32) * mscale, 1e-5) << i;
    EXPECT_NEAR(sin[i], std::sin(pos * theta(i) / 32) * mscale, 1e-5) << i;
  }
  // Between, the angle lies between the two.
  const double keep = std::acos(std::cos(pos * theta(12))), slow = pos * theta(12) / 32;
  EXPECT_NE(std::fabs(cos[12] / mscale - std::cos(keep)) < 1e-6 || std::fabs(cos[12] / mscale - std::cos(slow)) < 1e-6,
            true);
  // Factor 1 is plain RoPE.
  y.factor = 1;
  float c1[32], s1[32], c0[32], s0[32];
  rope_cos_sin_yarn(pos, 64, 150000.0f, y, c1, s1);
  rope_cos_sin(pos, 64, 150000.0f, nullptr, 1.0f, c0, s0);
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR(c1[i], c0[i], 1e-6) << i;
    EXPECT_NEAR(s1[i], s0[i], 1e-6) << i;
  }
}

TEST(ThreadPool, EveryThreadRunsEveryRegion) {
  for (int n : {1, 2, 3}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    std::atomic<int64_t> sum{0};
    for (int region = 0; region < 2000; ++region) {
      pool.run([&](int t, int nt) {
        int64_t b, e;
        ThreadPool::split(1000, t, nt, &b, &e);
        int64_t local = 0;
        for (int64_t i = b; i < e; ++i) local += i;
        sum += local;
      });
    }
    EXPECT_EQ(sum.load(), 2000 * (999 * 1000 / 2)) << n << " threads";
  }
}

TEST(ThreadPool, SplitCoversEverythingOnce) {
  for (int64_t n : {0, 1, 5, 7, 100}) {
    for (int nt : {1, 2, 3, 7}) {
      int64_t next = 0;
      for (int t = 0; t < nt; ++t) {
        int64_t b, e;
        ThreadPool::split(n, t, nt, &b, &e);
        EXPECT_EQ(b, next);
        EXPECT_LE(e - b, n / nt + 1);
        next = e;
      }
      EXPECT_EQ(next, n);
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
