#include "core/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace tandem {
namespace {

// Reference: the f16 nearest to F by exhaustive search over all finite halves
// (ties to the even bit pattern), computed in double.
uint16_t nearest_f16(float f) {
  uint16_t best = 0;
  double best_err = INFINITY;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;  // skip inf/NaN
    const double v = f16_to_f32(static_cast<uint16_t>(h));
    const double err = std::fabs(v - static_cast<double>(f));
    if (err < best_err || (err == best_err && (h & 1) == 0 && std::signbit(v) == std::signbit(f))) {
      best_err = err;
      best = static_cast<uint16_t>(h);
    }
  }
  return best;
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds to inf
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0) continue;  // NaN payloads
    EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  // Midpoints between adjacent halves and points near them, in normal and
  // subnormal ranges, checked against an exhaustive nearest search.
  const float samples[] = {1.00048828125f, 1.0014648f,     3.14159265f, 1e-5f,     6.0e-8f, 2.98e-8f,
                           3.0e-8f,        -7.77e-6f,      1234.5678f,  0.333333f, 60000.f, 5.96046e-8f,
                           2.9802322e-08f, 1.7881393e-07f, 65519.0f,    -0.1f};
  for (float f : samples) EXPECT_EQ(f32_to_f16(f), nearest_f16(f)) << f;
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is the midpoint between bf16 1.0 and 1.0078125: ties to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3f82);  // midpoint above odd 0x3f81 -> even 0x3f82
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; h += 7) {
    if (((h >> 7) & 0xff) == 0xff) continue;
    EXPECT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(h))), h);
  }
}

}  // namespace
}  // namespace tandem
