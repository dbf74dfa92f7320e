// The q8_0 KV write kernel against its scalar twin (identical bytes), the
// error bound it promises, and the layout helpers of kv_type.h.
#include "core/fp16.h"
#include "kernels/kv_quant.h"
#include "kernels/kv_type.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <random>
#include <vector>

namespace tandem::kernels {
namespace {

TEST(KvQuant, MatchesTwinAndStaysWithinHalfAStep) {
  std::mt19937 rng(11);
  for (int group : {8, 16, 32}) {
    for (int n : {group, 2 * group, 128, 256}) {
      if (n % group != 0) continue;
      for (ptrdiff_t stride : {1, 7, 32}) {
        for (float sigma : {1e-3f, 1.0f, 40.0f}) {
          std::normal_distribution<float> nd(0.0f, sigma);
          std::vector<float> x(static_cast<size_t>(n));
          for (auto& v : x) v = nd(rng);
          x[3] = 0.0f;  // exact zeros stay zero
          const size_t ng = static_cast<size_t>(n / group);
          std::vector<int8_t> q(static_cast<size_t>(n) * static_cast<size_t>(stride), 99), rq = q;
          std::vector<uint16_t> d(ng * static_cast<size_t>(stride), 7), rd = d;
          quantize_kv_q8(x.data(), n, group, q.data(), stride, d.data(), stride);
          quantize_kv_q8_reference(x.data(), n, group, rq.data(), stride, rd.data(), stride);
          ASSERT_EQ(q, rq) << "group " << group << " n " << n << " stride " << stride;
          ASSERT_EQ(d, rd) << "group " << group << " n " << n << " stride " << stride;
          for (size_t g = 0; g < ng; ++g) {
            const float scale = f16_to_f32(d[g * static_cast<size_t>(stride)]);
            float amax = 0;
            for (int i = 0; i < group; ++i)
              amax = std::max(amax, std::fabs(x[g * static_cast<size_t>(group) + static_cast<size_t>(i)]));
            EXPECT_GE(scale * 127, amax * (1 - 1e-7f)) << "scale is amax / 127 rounded up";
            EXPECT_NEAR(scale, amax / 127, amax / 127 * 1e-3 + 6e-8) << "... to the next f16";
            for (int i = 0; i < group; ++i) {
              const size_t e = g * static_cast<size_t>(group) + static_cast<size_t>(i);
              const int8_t v = q[e * static_cast<size_t>(stride)];
              ASSERT_GE(v, -127);
              ASSERT_LE(std::fabs(v * scale - x[e]), scale / 2 * (1 + 1e-6f)) << "element " << e;
            }
          }
          // Slots between the strided ones are untouched.
          if (stride > 1) {
            EXPECT_EQ(q[1], 99);
            EXPECT_EQ(d[1], 7);
          }
          EXPECT_EQ(q[3 * static_cast<size_t>(stride)], 0);
        }
      }
    }
  }
}

// Every SIMD target writes the twin's bytes (groups shorter than a vector
// take the scalar path with the same IEEE operations).
TEST(KvQuant, EveryTargetWritesTheSameBytes) {
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(256);
  for (auto& v : x) v = nd(rng);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int group : {8, 16, 32}) {
      std::vector<int8_t> q(256), rq(256);
      std::vector<uint16_t> d(32), rd(32);
      quantize_kv_q8(x.data(), 256, group, q.data(), 1, d.data(), 1);
      quantize_kv_q8_reference(x.data(), 256, group, rq.data(), 1, rd.data(), 1);
      EXPECT_EQ(q, rq) << hwy::TargetName(target) << " group " << group;
      EXPECT_EQ(d, rd) << hwy::TargetName(target) << " group " << group;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(KvQuant, ZeroAndHugeGroups) {
  std::vector<float> x(32, 0.0f);
  std::vector<int8_t> q(32, 5);
  std::vector<uint16_t> d(1, 5);
  quantize_kv_q8(x.data(), 32, 32, q.data(), 1, d.data(), 1);
  EXPECT_EQ(d[0], 0);
  for (int8_t v : q) EXPECT_EQ(v, 0);
  // A scale beyond f16's range saturates; values clamp to +-127 instead of becoming inf.
  x[0] = 1e9f;
  x[1] = -1e9f;
  x[2] = 1.0f;
  quantize_kv_q8(x.data(), 32, 32, q.data(), 1, d.data(), 1);
  EXPECT_EQ(d[0], 0x7bff);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -127);
  EXPECT_EQ(q[2], 0);
}

TEST(KvType, NamesIdsAndLayout) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kBF16})
    EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  EXPECT_FALSE(parse_kv_type("q8").has_value());
  EXPECT_FALSE(parse_kv_type("F16").has_value());
  // Stable ids: folded into prefix-cache keys and stored on disk.
  EXPECT_EQ(kv_type_id(KvType::kF32), 1u);
  EXPECT_EQ(kv_type_id(KvType::kF16), 2u);
  EXPECT_EQ(kv_type_id(KvType::kQ8_0), 3u);
  EXPECT_EQ(kv_type_id(KvType::kBF16), 4u);
  EXPECT_EQ(kv_head_bytes(KvType::kBF16, 128, 32), 128u * 32 * 2);
  EXPECT_EQ(kv_head_bytes(KvType::kBF16, 7, 32), 0u);  // pairs of dims
  EXPECT_EQ(kv_head_bytes(KvType::kBF16, 8, 7), 0u);   // pairs of keys
  EXPECT_EQ(kv_q8_group(128), 32);
  EXPECT_EQ(kv_q8_group(64), 32);
  EXPECT_EQ(kv_q8_group(16), 16);
  EXPECT_EQ(kv_q8_group(8), 8);
  EXPECT_EQ(kv_q8_group(80), 0);
  EXPECT_EQ(kv_q8_group(4), 0);
  EXPECT_EQ(kv_head_bytes(KvType::kF16, 128, 32), 128u * 32 * 2);
  EXPECT_EQ(kv_head_bytes(KvType::kQ8_0, 128, 32), 128u * 32 + 4 * 32 * 2);  // 53.1% of f16
  EXPECT_EQ(kv_head_bytes(KvType::kQ8_0, 8, 32), 8u * 32 + 32 * 2);

  // kv_load reads the layout the kernel writes: K transposed, V as rows.
  const int D = 64, T = 5, G = 32;
  std::vector<uint8_t> head(kv_head_bytes(KvType::kQ8_0, D, T));
  std::vector<float> row(D);
  for (int i = 0; i < D; ++i) row[static_cast<size_t>(i)] = static_cast<float>(i - 20) * 0.25f;
  auto* q = reinterpret_cast<int8_t*>(head.data());
  auto* d = reinterpret_cast<uint16_t*>(head.data() + D * T);
  quantize_kv_q8(row.data(), D, G, q + 3, T, d + 3, T);  // K of token 3
  for (int i = 0; i < D; ++i)
    EXPECT_NEAR(kv_load(KvType::kQ8_0, head.data(), true, D, T, 3, i), row[static_cast<size_t>(i)], 0.05f);
  quantize_kv_q8(row.data(), D, G, q + 2 * D, 1, d + 2 * (D / G), 1);  // V of token 2
  for (int i = 0; i < D; ++i)
    EXPECT_NEAR(kv_load(KvType::kQ8_0, head.data(), false, D, T, 2, i), row[static_cast<size_t>(i)], 0.05f);

  // bf16 pairs: K rows pair dims 2j, 2j+1 of each key; V rows pair keys 2j,
  // 2j+1 over all dims (the tile operand layout).
  EXPECT_EQ(kv_bf16_index(true, 64, 32, 0, 0), 0u);
  EXPECT_EQ(kv_bf16_index(true, 64, 32, 0, 1), 1u);
  EXPECT_EQ(kv_bf16_index(true, 64, 32, 1, 0), 2u);
  EXPECT_EQ(kv_bf16_index(true, 64, 32, 5, 3), (1u * 32 + 5) * 2 + 1);
  EXPECT_EQ(kv_bf16_index(false, 64, 32, 0, 0), 0u);
  EXPECT_EQ(kv_bf16_index(false, 64, 32, 1, 0), 1u);
  EXPECT_EQ(kv_bf16_index(false, 64, 32, 0, 1), 2u);
  EXPECT_EQ(kv_bf16_index(false, 64, 32, 5, 3), (2u * 64 + 3) * 2 + 1);
  std::vector<uint16_t> bf(static_cast<size_t>(64 * 32));
  bf[kv_bf16_index(false, 64, 32, 5, 3)] = f32_to_bf16(1.5f);
  EXPECT_EQ(kv_load(KvType::kBF16, reinterpret_cast<const uint8_t*>(bf.data()), false, 64, 32, 5, 3), 1.5f);
}

}  // namespace
}  // namespace tandem::kernels
