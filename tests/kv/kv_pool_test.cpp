// KvPool storage: every type's write lands where kv_type.h says (read back
// with kv_load), q8_0 within half a quantization step, shapes a type cannot
// store refused, and the bytes per token of each type.
#include "kv/kv_pool.h"
#include "kv/prefix_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace tandem::kv {
namespace {

KvShape shape(kernels::KvType type, int head_dim, int block_tokens = 32) {
  KvShape s;
  s.n_layers = 3;
  s.n_kv_heads = 2;
  s.head_dim = head_dim;
  s.block_tokens = block_tokens;
  s.type = type;
  return s;
}

TEST(KvPool, WritesEveryTypeWhereTheLayoutSays) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (auto type : {kernels::KvType::kF32, kernels::KvType::kF16, kernels::KvType::kQ8_0, kernels::KvType::kBF16}) {
    for (int hd : {8, 16, 64, 128}) {
      const KvShape s = shape(type, hd, 16);
      auto pool = KvPool::create(s, s.block_bytes() * 2);
      ASSERT_TRUE(pool.ok()) << pool.message();
      const size_t row = static_cast<size_t>(s.n_kv_heads * hd);
      // Rows per (block, layer, slot), written in a scrambled order.
      std::vector<std::vector<float>> k_rows, v_rows;
      std::vector<std::tuple<BlockId, int, int>> where;
      for (BlockId b = 0; b < 2; ++b) {
        for (int l = 0; l < s.n_layers; ++l) {
          for (int t = 0; t < s.block_tokens; ++t) where.emplace_back(b, l, t);
        }
      }
      std::shuffle(where.begin(), where.end(), rng);
      for (auto [b, l, t] : where) {
        k_rows.emplace_back(row);
        v_rows.emplace_back(row);
        for (auto& x : k_rows.back()) x = nd(rng);
        for (auto& x : v_rows.back()) x = nd(rng);
        (*pool)->write(b, l, t, k_rows.back().data(), v_rows.back().data());
      }
      const size_t hb = s.head_bytes();
      for (size_t w = 0; w < where.size(); ++w) {
        auto [b, l, t] = where[w];
        for (int h = 0; h < s.n_kv_heads; ++h) {
          const float* kr = k_rows[w].data() + h * hd;
          const float* vr = v_rows[w].data() + h * hd;
          // q8_0: the group's step is amax / 127; f16: relative 2^-11; bf16: 2^-8.
          float kmax = 0, vmax = 0;
          for (int i = 0; i < hd; ++i) kmax = std::max(kmax, std::fabs(kr[i])), vmax = std::max(vmax, std::fabs(vr[i]));
          for (int i = 0; i < hd; ++i) {
            const float k =
                kernels::kv_load(type, (*pool)->k(b, l) + static_cast<size_t>(h) * hb, true, hd, s.block_tokens, t, i);
            const float v =
                kernels::kv_load(type, (*pool)->v(b, l) + static_cast<size_t>(h) * hb, false, hd, s.block_tokens, t, i);
            auto tol = [&](float x, float amax) {
              return type == kernels::KvType::kF32    ? 0.0f
                     : type == kernels::KvType::kF16  ? std::fabs(x) / 2048 + 3e-8f  // + half a subnormal step
                     : type == kernels::KvType::kBF16 ? std::fabs(x) / 256
                                                      : amax / 127 / 2 * 1.001f;
            };
            // (Groups of 32 have their own amax, at most the head's.)
            ASSERT_LE(std::fabs(k - kr[i]), tol(kr[i], kmax)) << kernels::kv_type_name(type) << " hd " << hd;
            ASSERT_LE(std::fabs(v - vr[i]), tol(vr[i], vmax)) << kernels::kv_type_name(type) << " hd " << hd;
          }
        }
      }
    }
  }
}

TEST(KvPool, BytesPerTokenAndRefusedShapes) {
  // Qwen3-0.6B: 28 layers, 8 KV heads of 128.
  KvShape s = shape(kernels::KvType::kF16, 128);
  s.n_layers = 28;
  s.n_kv_heads = 8;
  const size_t f16 = s.block_bytes() / 32;
  s.type = kernels::KvType::kQ8_0;
  const size_t q8 = s.block_bytes() / 32;
  EXPECT_EQ(f16, 28u * 2 * 8 * 128 * 2);
  EXPECT_EQ(q8, 28u * 2 * 8 * (128 + 4 * 2));
  EXPECT_LE(static_cast<double>(q8) / static_cast<double>(f16), 0.55);

  for (int hd : {80, 4, 24}) {
    auto pool = KvPool::create(shape(kernels::KvType::kQ8_0, hd), 1 << 20);
    ASSERT_FALSE(pool.ok()) << hd;
    EXPECT_NE(pool.message().find("q8_0 KV cache needs a head size that is a multiple of 32"), std::string::npos)
        << pool.message();
    EXPECT_TRUE(KvPool::create(shape(kernels::KvType::kF16, hd), 1 << 20).ok()) << hd;
  }
  auto odd = KvPool::create(shape(kernels::KvType::kBF16, 7), 1 << 20);
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.message().find("bf16 KV cache needs an even head size"), std::string::npos) << odd.message();
}

// Blocks of one type never serve another: the types' stable ids are folded
// into the prefix index's root key.
TEST(KvPool, TypesHaveTheirOwnCacheKeys) {
  std::vector<BlockKey> roots;
  for (auto type : {kernels::KvType::kF32, kernels::KvType::kF16, kernels::KvType::kQ8_0, kernels::KvType::kBF16}) {
    const KvShape s = shape(type, 32);
    auto pool = KvPool::create(s, s.block_bytes() * 2);
    ASSERT_TRUE(pool.ok());
    PrefixIndex cache(**pool, 7);
    for (BlockKey r : roots) EXPECT_NE(cache.root_key(), r) << kernels::kv_type_name(type);
    roots.push_back(cache.root_key());
  }
}

}  // namespace
}  // namespace tandem::kv
