#include "kernels/simd_limit.h"

#include "kernels/amx.h"
#include "kernels/dot.h"
#include "kernels/matmul.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <string>

namespace tandem::kernels {
namespace {

// Restores the dispatch and the AMX mode a limit changed, for the tests after.
struct RestoreTargets {
  AmxMode amx = amx_mode();
  ~RestoreTargets() {
    hwy::DisableTargets(0);
    set_amx_mode(amx);
  }
};

TEST(SimdLimit, CapsTheDispatchedTarget) {
  if ((hwy::SupportedTargets() & HWY_AVX2) == 0) GTEST_SKIP() << "this CPU has no AVX2";
  RestoreTargets restore;
  ASSERT_TRUE(limit_simd("AVX2").ok());
  EXPECT_STREQ(simd_target_name(), "AVX2");
  EXPECT_NE(std::string(matmul_target_name()).find("AVX2"), std::string::npos) << matmul_target_name();
  EXPECT_EQ(amx_mode(), AmxMode::kOff);
  // The product is still right (the AVX2 kernels run).
  const float a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 4, 3, 2, 1};
  EXPECT_EQ(dot_f32(a, b, 5), 35.0f);
}

TEST(SimdLimit, UnknownNameListsTheChoices) {
  RestoreTargets restore;
  Status s = limit_simd("avx1024");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("avx2"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace tandem::kernels
