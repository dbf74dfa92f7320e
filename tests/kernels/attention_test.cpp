// Paged attention against its scalar reference twin (full softmax in
// double) over awkward shapes: positions around block edges, windows, odd
// head counts and group sizes, f16 and f32 caches.
#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/attention_amx.h"
#include "kernels/dot.h"
#include "kernels/kv_quant.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

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
  bool sinks = false;  // a random sink logit per head (gpt-oss)
};

// One layer's K or V of a block, N_KV_HEADS heads of unit-normal values, in
// TYPE's layout (q8_0: each token's row quantized by the KV write kernel).
std::vector<uint8_t> random_block(KvType type, int n_kv_heads, int head_dim, int block_tokens, bool is_k,
                                  std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t hb = kv_head_bytes(type, head_dim, block_tokens);
  const size_t D = static_cast<size_t>(head_dim), T = static_cast<size_t>(block_tokens);
  std::vector<uint8_t> mem(hb * static_cast<size_t>(n_kv_heads));
  for (size_t h = 0; h < static_cast<size_t>(n_kv_heads); ++h) {
    uint8_t* head = mem.data() + h * hb;
    if (type == KvType::kQ8_0) {
      const int g = kv_q8_group(head_dim);
      const size_t ng = D / static_cast<size_t>(g);
      auto* q = reinterpret_cast<int8_t*>(head);
      auto* d = reinterpret_cast<uint16_t*>(head + D * T);
      std::vector<float> row(D);
      for (size_t t = 0; t < T; ++t) {
        for (auto& x : row) x = nd(rng);
        if (is_k) {
          quantize_kv_q8(row.data(), head_dim, g, q + t, block_tokens, d + t, block_tokens);
        } else {
          quantize_kv_q8(row.data(), head_dim, g, q + t * D, 1, d + t * ng, 1);
        }
      }
      continue;
    }
    if (type == KvType::kBF16) {
      auto* p = reinterpret_cast<uint16_t*>(head);
      for (size_t t = 0; t < T; ++t) {
        for (size_t i = 0; i < D; ++i) p[kv_bf16_index(is_k, D, T, t, i)] = f32_to_bf16(nd(rng));
      }
      continue;
    }
    for (size_t i = 0; i < D * T; ++i) {
      const float x = nd(rng);
      if (type == KvType::kF16) {
        const uint16_t h16 = f32_to_f16(x);
        std::memcpy(head + i * 2, &h16, 2);
      } else {
        std::memcpy(head + i * 4, &x, 4);
      }
    }
  }
  return mem;
}

// The same blocks as f32: the values attention must see.
std::vector<uint8_t> as_f32(const std::vector<uint8_t>& mem, KvType type, int n_kv_heads, int head_dim,
                            int block_tokens, bool is_k) {
  const size_t hb = kv_head_bytes(type, head_dim, block_tokens),
               hb32 = kv_head_bytes(KvType::kF32, head_dim, block_tokens);
  std::vector<uint8_t> out(hb32 * static_cast<size_t>(n_kv_heads));
  for (int h = 0; h < n_kv_heads; ++h) {
    for (int t = 0; t < block_tokens; ++t) {
      for (int i = 0; i < head_dim; ++i) {
        const float x = kv_load(type, mem.data() + static_cast<size_t>(h) * hb, is_k, head_dim, block_tokens, t, i);
        const size_t idx = is_k ? static_cast<size_t>(i * block_tokens + t) : static_cast<size_t>(t * head_dim + i);
        std::memcpy(out.data() + static_cast<size_t>(h) * hb32 + idx * 4, &x, 4);
      }
    }
  }
  return out;
}

// Rounding bound of an f32 kernel against the double twin, from norms (eps =
// 2^-24 relative rounding): each score sums HEAD_DIM products, so its error
// is <= (head_dim + 2) eps * scale * sum |q_i k_i|; a score error e moves
// the softmax-weighted mean by <= 2 e max |v|; the exp, the running sums
// and P.V add <= (n_keys + 16) eps * max |v| between them.
//
// On AMX tiles (attention_amx.cpp) Q, K, P and V enter as bf16 hi + lo
// pairs: each product keeps ~16 bits (K and V exactly). This worst-case
// bound is loose enough that the tile path passes it with eps = 2^-24;
// the tests give it 2^-22. Dropping one lo part (2^-9) fails it.
double tolerance(const AttentionArgs& a, int h, int64_t first, double eps) {
  const size_t hb = kv_head_bytes(a.kv_type, a.head_dim, a.block_tokens);
  const int kvh = h / (a.n_heads / a.n_kv_heads);
  double s_abs = 0, v_max = 0;
  for (int64_t p = first; p <= a.pos; ++p) {
    const uint8_t* kh = a.k_blocks[p / a.block_tokens] + static_cast<size_t>(kvh) * hb;
    const uint8_t* vh = a.v_blocks[p / a.block_tokens] + static_cast<size_t>(kvh) * hb;
    const int t = static_cast<int>(p % a.block_tokens);
    double s = 0;
    for (int i = 0; i < a.head_dim; ++i) {
      s += std::fabs(a.q[h * a.head_dim + i] * kv_load(a.kv_type, kh, true, a.head_dim, a.block_tokens, t, i));
      v_max = std::max<double>(v_max, std::fabs(kv_load(a.kv_type, vh, false, a.head_dim, a.block_tokens, t, i)));
    }
    s_abs = std::max(s_abs, s * a.scale);
  }
  const double n_keys = static_cast<double>(a.pos - first + 1);
  return eps * v_max * (2 * (a.head_dim + 2) * s_abs + n_keys + 16);
}

void run_case(const Case& c, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_blocks = c.pos / c.block_tokens + 1;
  // Blocks in shuffled memory order: the table, not the address, gives the order.
  std::vector<std::vector<uint8_t>> kmem, vmem, k32, v32;
  std::vector<const uint8_t*> kptr, vptr, kptr32, vptr32;
  for (int64_t b = 0; b < n_blocks; ++b) {
    kmem.push_back(random_block(c.type, c.n_kv_heads, c.head_dim, c.block_tokens, true, rng));
    vmem.push_back(random_block(c.type, c.n_kv_heads, c.head_dim, c.block_tokens, false, rng));
    k32.push_back(as_f32(kmem.back(), c.type, c.n_kv_heads, c.head_dim, c.block_tokens, true));
    v32.push_back(as_f32(vmem.back(), c.type, c.n_kv_heads, c.head_dim, c.block_tokens, false));
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    kptr.push_back(kmem[static_cast<size_t>(b)].data());
    vptr.push_back(vmem[static_cast<size_t>(b)].data());
    kptr32.push_back(k32[static_cast<size_t>(b)].data());
    vptr32.push_back(v32[static_cast<size_t>(b)].data());
  }
  std::vector<float> q(static_cast<size_t>(c.n_heads * c.head_dim)), out(q.size()), ref(q.size()), out32(q.size());
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
  std::vector<float> sinks(static_cast<size_t>(c.n_heads));
  for (auto& x : sinks) x = 2.0f * nd(rng);
  if (c.sinks) a.sinks = sinks.data();
  // Heads in two ranges, as two threads would run them.
  attention(a, 0, c.n_heads / 2);
  attention(a, c.n_heads / 2, c.n_heads);
  a.out = ref.data();
  attention_reference(a);
  const int64_t first = c.window > 0 ? std::max<int64_t>(0, c.pos - c.window + 1) : 0;
  const bool on_tiles = detail::attention_amx_fits(a) && detail::attention_amx_on(c.type);
  std::vector<double> tol(static_cast<size_t>(c.n_heads));
  for (int h = 0; h < c.n_heads; ++h) {
    tol[static_cast<size_t>(h)] = tolerance(a, h, first, std::ldexp(1.0, on_tiles ? -22 : -24));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], ref[i], tol[i / static_cast<size_t>(c.head_dim)])
        << kv_type_name(c.type) << " heads " << c.n_heads << "/" << c.n_kv_heads << " dim " << c.head_dim << " pos "
        << c.pos << " window " << c.window << " i " << i;
  }
  if (on_tiles) {
    // The f32 path on the same cache agrees within both bounds.
    detail::set_attention_amx(false);
    a.out = out32.data();
    attention(a, 0, c.n_heads);
    detail::set_attention_amx(true);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], out32[i], 2 * tol[i / static_cast<size_t>(c.head_dim)])
          << kv_type_name(c.type) << " on tiles vs f32 path, i " << i;
    }
    return;
  }
  // Every type runs the f32 arithmetic on the values it stores (an f16, a
  // bf16 or an int8 times an f16 scale is exact in f32): the same bits as
  // an f32 cache holding them.
  AttentionArgs a32 = a;
  a32.kv_type = KvType::kF32;
  a32.k_blocks = kptr32.data();
  a32.v_blocks = vptr32.data();
  a32.out = out32.data();
  attention(a32, 0, c.n_heads);
  ASSERT_EQ(std::memcmp(out.data(), out32.data(), out.size() * sizeof(float)), 0)
      << kv_type_name(c.type) << " heads " << c.n_heads << "/" << c.n_kv_heads << " dim " << c.head_dim << " pos "
      << c.pos << " window " << c.window;
}

// gpt-oss's sinks: every type, windows, several blocks, against the reference.
TEST(Attention, SinksJoinEverySoftmaxDenominator) {
  std::mt19937 rng(9);
  for (KvType type : {KvType::kF32, KvType::kF16, KvType::kBF16, KvType::kQ8_0}) {
    for (int64_t pos : {0, 40, 150}) run_case({8, 2, 64, 32, pos, pos > 100 ? 64 : 0, type, true}, rng);
  }
  // Known answer: one key of logit x and value v, sink s: out = v e^x / (e^x + e^s).
  std::vector<float> k(64 * 32, 0.0f), v(64 * 32, 0.0f), q(64, 0.0f), out(64);
  q[0] = 2.0f;
  k[0] = 1.0f;  // K is [dim][token]: dim 0 of token 0; q.k = 2, x = 2 / 8
  for (int i = 0; i < 64; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);  // V is [token][dim]
  const uint8_t* kp = reinterpret_cast<const uint8_t*>(k.data());
  const uint8_t* vp = reinterpret_cast<const uint8_t*>(v.data());
  const float sink = 0.75f;
  std::vector<float> scratch(attention_scratch_floats(32, 64, 1, 1));
  AttentionArgs a;
  a.q = q.data();
  a.out = out.data();
  a.n_heads = a.n_kv_heads = 1;
  a.head_dim = 64;
  a.scale = 0.125f;
  a.k_blocks = &kp;
  a.v_blocks = &vp;
  a.kv_type = KvType::kF32;
  a.sinks = &sink;
  a.scratch = scratch.data();
  attention(a, 0, 1);
  const double p = std::exp(0.25) / (std::exp(0.25) + std::exp(0.75));
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(out[static_cast<size_t>(i)], i * p, 1e-5) << i;
}

// These tests run every case on the f32 path and, where the CPU has AMX,
// on the tile path (attention_amx.h: by default bf16 caches only).
std::vector<bool> amx_settings() {
  detail::set_attention_amx(true);
  const bool has = detail::attention_amx_on(KvType::kF16);
  detail::reset_attention_amx();
  return has ? std::vector<bool>{false, true} : std::vector<bool>{false};
}

TEST(Attention, MatchesReference) {
  for (bool amx : amx_settings()) {
    SCOPED_TRACE(amx ? "AMX tiles" : "f32 path");
    detail::set_attention_amx(amx);
    std::mt19937 rng(5);
    for (KvType type : {KvType::kF16, KvType::kF32, KvType::kQ8_0, KvType::kBF16}) {
      for (auto [h, kvh] : {std::pair{1, 1}, {4, 2}, {6, 2}, {3, 1}, {8, 8}, {14, 2}}) {
        // q8_0: heads of 8 and 16 (one scale per row), 32, 64, 96 (groups of 32).
        const std::vector<int> dims =
            type == KvType::kQ8_0 ? std::vector<int>{8, 16, 32, 64, 96} : std::vector<int>{16, 64, 80};
        for (int hd : dims) {
          for (int64_t pos : {0, 1, 31, 32, 33, 95, 150}) {
            for (int64_t window : {0, 1, 16, 40}) run_case({h, kvh, hd, 32, pos, window, type}, rng);
          }
        }
      }
    }
    // Heads of 128 in blocks of 64 (two 32-key steps per block on tiles).
    for (KvType type : {KvType::kF16, KvType::kBF16}) {
      for (int64_t pos : {0, 63, 64, 200}) {
        for (int64_t window : {0, 40}) run_case({4, 2, 128, 64, pos, window, type}, rng);
      }
    }
    // Block sizes that are not a power of two (nor a multiple of a vector).
    run_case({4, 2, 32, 7, 60, 0, KvType::kF16}, rng);
    run_case({4, 2, 32, 7, 60, 0, KvType::kQ8_0}, rng);
    run_case({6, 2, 64, 13, 70, 20, KvType::kQ8_0}, rng);
    run_case({4, 2, 64, 14, 60, 20, KvType::kBF16}, rng);  // bf16: even sizes only
  }
  detail::reset_attention_amx();
}

// The same on every SIMD target this CPU runs (AVX2 machines take the
// 8-lane paths: q8_0 groups of 32 are 4 vectors there, not 2).
TEST(Attention, EveryTargetMatchesReference) {
  std::mt19937 rng(6);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::printf("  target %s\n", hwy::TargetName(target));
    for (KvType type : {KvType::kF16, KvType::kQ8_0, KvType::kBF16}) {
      for (auto [h, kvh] : {std::pair{4, 2}, {14, 2}}) {
        for (int hd : {16, 64}) {
          for (int64_t pos : {0, 33, 150}) run_case({h, kvh, hd, 32, pos, pos > 100 ? 40 : 0, type}, rng);
        }
      }
      run_case({4, 2, 32, type == KvType::kBF16 ? 14 : 7, 60, 0, type}, rng);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// --kv-type auto: bf16 exactly where its attention would run on tiles.
TEST(Attention, AutoKvTypeIsBf16WhereTilesRunIt) {
  const bool tiles = detail::attention_amx_on(KvType::kBF16);
  EXPECT_EQ(auto_kv_type(128, 32), tiles ? KvType::kBF16 : KvType::kF16);
  EXPECT_EQ(auto_kv_type(64, 64), tiles ? KvType::kBF16 : KvType::kF16);
  EXPECT_EQ(auto_kv_type(80, 32), KvType::kF16);  // not whole tiles: f16 reads faster there
  EXPECT_EQ(auto_kv_type(8, 32), KvType::kF16);
  EXPECT_EQ(auto_kv_type(128, 16), KvType::kF16);
  detail::set_attention_amx(false);
  EXPECT_EQ(auto_kv_type(128, 32), KvType::kF16);
  detail::reset_attention_amx();
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
// (The group converts each block to f32 scratch, single queries read the
// cache in registers: both paths give the same bits.)
TEST(Attention, GroupEqualsSingleQueries) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = 4, KVH = 2, NQ = 45;
  const int64_t pos0 = 20;
  // (On AMX the f16 cases run on tiles: 90 rows, 6 tiles, the last short.)
  for (bool amx : amx_settings())
    for (auto [HD, BT] : {std::pair{32, 32}, {128, 64}})
      for (KvType type : {KvType::kF16, KvType::kQ8_0, KvType::kF32, KvType::kBF16}) {
        detail::set_attention_amx(amx);
        const int64_t n_blocks = (pos0 + NQ) / BT + 1;
        for (int64_t window : {0, 16}) {
          std::vector<std::vector<uint8_t>> k, v;
          std::vector<const uint8_t*> kp, vp;
          for (int64_t b = 0; b < n_blocks; ++b) {
            k.push_back(random_block(type, KVH, HD, BT, true, rng));
            v.push_back(random_block(type, KVH, HD, BT, false, rng));
          }
          for (int64_t b = 0; b < n_blocks; ++b) {
            kp.push_back(k[static_cast<size_t>(b)].data());
            vp.push_back(v[static_cast<size_t>(b)].data());
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
          a.kv_type = type;
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
          const std::string what = std::string(kv_type_name(type)) + " window " + std::to_string(window) + " head " +
                                   std::to_string(HD) + (amx ? " on AMX tiles" : "");
          ASSERT_EQ(std::memcmp(group.data(), single.data(), group.size() * sizeof(float)), 0) << what;
          // One head per call (no pairing across heads), and chunks of 3 queries
          // (some tiles short, blocks read in registers), give the same bits too.
          std::vector<float> per_head(q.size()), chunked(q.size());
          a.q = q.data();
          a.out = per_head.data();
          a.pos = pos0;
          a.n_queries = NQ;
          for (int h = 0; h < H; ++h) attention(a, h, h + 1);
          ASSERT_EQ(std::memcmp(group.data(), per_head.data(), group.size() * sizeof(float)), 0) << what;
          for (int i = 0; i < NQ; i += 3) {
            a.q = q.data() + i * H * HD;
            a.out = chunked.data() + i * H * HD;
            a.pos = pos0 + i;
            a.n_queries = std::min(3, NQ - i);
            attention(a, 0, H);
          }
          ASSERT_EQ(std::memcmp(group.data(), chunked.data(), group.size() * sizeof(float)), 0) << what;
        }
      }
  detail::reset_attention_amx();
}

// Byte ranges of key T in one KV head of TYPE (K if IS_K): its values and
// (q8_0) its scales.
std::vector<std::pair<size_t, size_t>> token_bytes(KvType type, bool is_k, size_t D, size_t T, size_t t) {
  std::vector<std::pair<size_t, size_t>> out;
  const size_t es = type == KvType::kF32 ? 4 : type == KvType::kQ8_0 ? 1 : 2;
  for (size_t i = 0; i < D; ++i) {
    const size_t idx = type == KvType::kBF16 ? kv_bf16_index(is_k, D, T, t, i) : is_k ? i * T + t : t * D + i;
    out.emplace_back(idx * es, es);
  }
  if (type == KvType::kQ8_0) {
    const size_t g = static_cast<size_t>(kv_q8_group(static_cast<int>(D))), ng = D / g;
    for (size_t j = 0; j < ng; ++j) out.emplace_back(D * T + (is_k ? j * T + t : t * ng + j) * 2, 2);
  }
  return out;
}

// Keys nobody may see (after the last query, before the window) can hold
// anything a block held before, NaN included: the results are the same
// bits as with finite values there (a zero weight times NaN would not be).
TEST(Attention, UnseenKeysNeverReachTheOutput) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = 4, KVH = 2, HD = 64, BT = 32, NQ = 8;
  for (bool amx : amx_settings())
    for (KvType type : {KvType::kF16, KvType::kBF16, KvType::kQ8_0, KvType::kF32}) {
      detail::set_attention_amx(amx);
      for (int64_t window : {0, 12}) {
        for (int n_queries : {1, NQ}) {
          const int64_t pos = 41 - n_queries;  // queries up to 40: keys 41..63 unseen (window 12: 0..28 too)
          std::vector<std::vector<uint8_t>> k, v;
          for (int b = 0; b < 2; ++b) {
            k.push_back(random_block(type, KVH, HD, BT, true, rng));
            v.push_back(random_block(type, KVH, HD, BT, false, rng));
          }
          std::vector<float> q(static_cast<size_t>(NQ * H * HD)), clean(q.size()), poisoned(q.size());
          for (auto& x : q) x = nd(rng);
          std::vector<float> scratch(attention_scratch_floats(BT, HD, NQ, H / KVH));
          auto run = [&](float* out) {
            const uint8_t* kp[2] = {k[0].data(), k[1].data()};
            const uint8_t* vp[2] = {v[0].data(), v[1].data()};
            AttentionArgs a;
            a.q = q.data();
            a.out = out;
            a.n_queries = n_queries;
            a.q_stride = a.out_stride = H * HD;
            a.n_heads = H;
            a.n_kv_heads = KVH;
            a.head_dim = HD;
            a.scale = 0.125f;
            a.pos = pos;
            a.window = window;
            a.k_blocks = kp;
            a.v_blocks = vp;
            a.block_tokens = BT;
            a.kv_type = type;
            a.scratch = scratch.data();
            attention(a, 0, H);
          };
          run(clean.data());
          const size_t hb = kv_head_bytes(type, HD, BT);
          for (int64_t key = 0; key < 2 * BT; ++key) {
            if (key <= 40 && (window == 0 || key > pos - window)) continue;  // someone sees it
            for (int h = 0; h < KVH; ++h) {
              for (bool is_k : {true, false}) {
                uint8_t* head = (is_k ? k : v)[static_cast<size_t>(key / BT)].data() + static_cast<size_t>(h) * hb;
                for (auto [off, n] : token_bytes(type, is_k, HD, BT, static_cast<size_t>(key % BT)))
                  std::memset(head + off, 0xFF, n);
              }
            }
          }
          run(poisoned.data());
          ASSERT_EQ(std::memcmp(clean.data(), poisoned.data(), static_cast<size_t>(n_queries * H * HD) * sizeof(float)),
                    0)
              << kv_type_name(type) << " window " << window << " queries " << n_queries << (amx ? " on AMX tiles" : "");
        }
      }
    }
  detail::reset_attention_amx();
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
