// Paged attention against its scalar reference twin (full softmax in
// double) over awkward shapes: positions around block edges, windows, odd
// head counts and group sizes, f16 and f32 caches.
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/dot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace tandem::kernels {
namespace {

struct Case {
  int n_heads, n_kv_heads, head_dim, block_tokens;
  int64_t pos, window;
  KvType type;
};

void run_case(const Case& c, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_blocks = c.pos / c.block_tokens + 1;
  const size_t eb = c.type == KvType::kF16 ? 2 : 4;
  const size_t block_bytes = static_cast<size_t>(c.n_kv_heads) * c.block_tokens * c.head_dim * eb;
  // Blocks in shuffled memory order: the table, not the address, gives the order.
  std::vector<std::vector<uint8_t>> kmem(static_cast<size_t>(n_blocks)), vmem(static_cast<size_t>(n_blocks));
  std::vector<const uint8_t*> kptr, vptr;
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (auto* mem : {&kmem[static_cast<size_t>(b)], &vmem[static_cast<size_t>(b)]}) {
      mem->resize(block_bytes);
      for (size_t i = 0; i < block_bytes / eb; ++i) {
        const float x = nd(rng);
        if (c.type == KvType::kF16) {
          const uint16_t h = f32_to_f16(x);
          std::memcpy(mem->data() + i * 2, &h, 2);
        } else {
          std::memcpy(mem->data() + i * 4, &x, 4);
        }
      }
    }
    kptr.push_back(kmem[static_cast<size_t>(b)].data());
    vptr.push_back(vmem[static_cast<size_t>(b)].data());
  }
  std::vector<float> q(static_cast<size_t>(c.n_heads * c.head_dim)), out(q.size()), ref(q.size());
  for (auto& x : q) x = 0.5f * nd(rng);
  std::vector<float> scratch(attention_scratch_floats(c.block_tokens, c.head_dim, 1, c.n_heads / c.n_kv_heads));
  AttentionArgs a;
  a.q = q.data();
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.pos = c.pos;
  a.window = c.window;
  a.k_blocks = kptr.data();
  a.v_blocks = vptr.data();
  a.block_tokens = c.block_tokens;
  a.kv_type = c.type;
  a.scratch = scratch.data();
  a.out = out.data();
  // Heads in two ranges, as two threads would run them.
  attention(a, 0, c.n_heads / 2);
  attention(a, c.n_heads / 2, c.n_heads);
  a.out = ref.data();
  attention_reference(a);
  for (size_t i = 0; i < out.size(); ++i) {
    // Outputs are convex combinations of unit-normal values: |x| <~ 4; f32
    // accumulation over <= 200 keys stays within ~1e-5 of the double result.
    ASSERT_NEAR(out[i], ref[i], 2e-5) << "heads " << c.n_heads << "/" << c.n_kv_heads << " dim " << c.head_dim
                                      << " pos " << c.pos << " window " << c.window << " i " << i;
  }
}

TEST(Attention, MatchesReference) {
  std::mt19937 rng(5);
  for (KvType type : {KvType::kF16, KvType::kF32}) {
    for (auto [h, kvh] : {std::pair{1, 1}, {4, 2}, {6, 2}, {3, 1}, {8, 8}, {14, 2}}) {
      for (int hd : {16, 64, 80}) {
        for (int64_t pos : {0, 1, 31, 32, 33, 95, 150}) {
          for (int64_t window : {0, 1, 16, 40}) run_case({h, kvh, hd, 32, pos, window, type}, rng);
        }
      }
    }
  }
  run_case({4, 2, 32, 7, 60, 0, KvType::kF16}, rng);  // a block size that is not a power of two
}

// A window of 1 sees only the current token: the output is its V row.
TEST(Attention, WindowOfOneReturnsCurrentValue) {
  const int hd = 8;
  std::vector<float> k(static_cast<size_t>(32 * hd), 0.1f), v(static_cast<size_t>(32 * hd));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  std::vector<float> q(hd, 1.0f), out(hd), scratch(attention_scratch_floats(32, hd, 1));
  const uint8_t* kp = reinterpret_cast<const uint8_t*>(k.data());
  const uint8_t* vp = reinterpret_cast<const uint8_t*>(v.data());
  AttentionArgs a;
  a.q = q.data();
  a.out = out.data();
  a.n_heads = a.n_kv_heads = 1;
  a.head_dim = hd;
  a.pos = 5;
  a.window = 1;
  a.k_blocks = &kp;
  a.v_blocks = &vp;
  a.kv_type = KvType::kF32;
  a.scratch = scratch.data();
  attention(a, 0, 1);
  for (int i = 0; i < hd; ++i) EXPECT_EQ(out[static_cast<size_t>(i)], v[static_cast<size_t>(5 * hd + i)]);
}

}  // namespace
}  // namespace tandem::kernels

namespace tandem::kernels {
namespace {

// A group of consecutive queries (a prefill chunk) gives, bit for bit, what
// each query gives alone (a decode step): chunking never changes a result.
TEST(Attention, GroupEqualsSingleQueries) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = 4, KVH = 2, HD = 32, BT = 32, NQ = 45;
  const int64_t pos0 = 20;
  const int64_t n_blocks = (pos0 + NQ) / BT + 1;
  for (int64_t window : {0, 16}) {
    std::vector<std::vector<uint16_t>> k(static_cast<size_t>(n_blocks)), v(static_cast<size_t>(n_blocks));
    std::vector<const uint8_t*> kp, vp;
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (auto* m : {&k[static_cast<size_t>(b)], &v[static_cast<size_t>(b)]}) {
        m->resize(static_cast<size_t>(KVH * BT * HD));
        for (auto& x : *m) x = f32_to_f16(nd(rng));
      }
      kp.push_back(reinterpret_cast<const uint8_t*>(k[static_cast<size_t>(b)].data()));
      vp.push_back(reinterpret_cast<const uint8_t*>(v[static_cast<size_t>(b)].data()));
    }
    std::vector<float> q(static_cast<size_t>(NQ * H * HD)), group(q.size()), single(q.size());
    for (auto& x : q) x = nd(rng);
    std::vector<float> scratch(attention_scratch_floats(BT, HD, NQ, H / KVH));
    AttentionArgs a;
    a.n_heads = H;
    a.n_kv_heads = KVH;
    a.head_dim = HD;
    a.scale = 0.17f;
    a.window = window;
    a.k_blocks = kp.data();
    a.v_blocks = vp.data();
    a.block_tokens = BT;
    a.scratch = scratch.data();
    a.q_stride = a.out_stride = H * HD;
    a.q = q.data();
    a.out = group.data();
    a.pos = pos0;
    a.n_queries = NQ;
    attention(a, 0, H);
    for (int i = 0; i < NQ; ++i) {
      a.q = q.data() + i * H * HD;
      a.out = single.data() + i * H * HD;
      a.pos = pos0 + i;
      a.n_queries = 1;
      attention(a, 0, H);
    }
    ASSERT_EQ(std::memcmp(group.data(), single.data(), group.size() * sizeof(float)), 0) << "window " << window;
    // One head per call (no pairing across heads) gives the same bits too.
    std::vector<float> per_head(q.size());
    a.q = q.data();
    a.out = per_head.data();
    a.pos = pos0;
    a.n_queries = NQ;
    for (int h = 0; h < H; ++h) attention(a, h, h + 1);
    ASSERT_EQ(std::memcmp(group.data(), per_head.data(), group.size() * sizeof(float)), 0) << "window " << window;
  }
}

// The paired kernels share loads only: each query's result has the bits of
// the single-query kernel, for block sizes with and without a vector tail.
TEST(AttentionKernels, PairsEqualSingles) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (size_t t : {32u, 16u, 13u, 40u}) {
    for (size_t dims : {128u, 64u, 36u, 7u}) {
      std::vector<float> k(dims * t), q0(dims), q1(dims), v(t * dims);
      for (auto* x : {&k, &q0, &q1, &v}) {
        for (auto& e : *x) e = nd(rng);
      }
      std::vector<float> s0(t), s1(t), p0(t), p1(t);
      scores_block_f32(q0.data(), k.data(), dims, t, s0.data());
      scores_block_f32(q1.data(), k.data(), dims, t, s1.data());
      scores_block2_f32(q0.data(), q1.data(), k.data(), dims, t, p0.data(), p1.data());
      ASSERT_EQ(std::memcmp(s0.data(), p0.data(), t * 4), 0) << t << " " << dims;
      ASSERT_EQ(std::memcmp(s1.data(), p1.data(), t * 4), 0) << t << " " << dims;
      // Scalar reference of one score.
      double ref = 0;
      for (size_t i = 0; i < dims; ++i) ref += static_cast<double>(q0[i]) * k[i * t + 5];
      EXPECT_NEAR(s0[5], ref, 1e-4 * dims);

      std::vector<float> o0(dims, 0.5f), o1(dims, -0.25f), r0 = o0, r1 = o1;
      const size_t t0 = 1, t1 = t - 2;
      pv_block_f32(s0.data(), v.data(), t0, t1, dims, o0.data());
      pv_block_f32(s1.data(), v.data(), t0, t1, dims, o1.data());
      pv_block2_f32(s0.data(), s1.data(), v.data(), t0, t1, dims, r0.data(), r1.data());
      ASSERT_EQ(std::memcmp(o0.data(), r0.data(), dims * 4), 0);
      ASSERT_EQ(std::memcmp(o1.data(), r1.data(), dims * 4), 0);
      double pv = 0.5;
      for (size_t u = t0; u <= t1; ++u) pv += static_cast<double>(s0[u]) * v[u * dims + 2];
      EXPECT_NEAR(o0[2], pv, 1e-3 * t * dims);
    }
  }
}

TEST(AttentionKernels, ScaleMaxAndExpSumAgainstScalar) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd;
  for (size_t t0 : {0u, 3u, 9u}) {
    for (size_t t1 : {9u, 17u, 31u}) {
      if (t1 < t0) continue;
      std::vector<float> s(32);
      for (auto& e : s) e = 4 * nd(rng);
      std::vector<float> ref = s;
      const float m = scale_max_f32(s.data(), t0, t1, 0.125f);
      float rm = -INFINITY;
      for (size_t i = t0; i <= t1; ++i) rm = std::max(rm, ref[i] *= 0.125f);
      ASSERT_EQ(m, rm);
      for (size_t i = 0; i < 32; ++i) ASSERT_EQ(s[i], ref[i]) << "only [t0, t1] is scaled";
      const float sum = exp_sum_f32(s.data(), t0, t1, m);
      double rsum = 0;
      for (size_t i = t0; i <= t1; ++i) {
        const double e = std::exp(static_cast<double>(ref[i]) - m);
        EXPECT_NEAR(s[i], e, 2e-7 * std::max(1.0, e));
        rsum += e;
      }
      EXPECT_NEAR(sum, rsum, 1e-6 * rsum);
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
