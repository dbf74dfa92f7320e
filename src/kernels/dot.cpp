// Highway dynamic dispatch: this file is compiled once per SIMD target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dot.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/fp16.h"
#include "kernels/dot.h"

HWY_BEFORE_NAMESPACE();
namespace tandem::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Four independent accumulators hide FMA latency; the tail is handled
// with a masked load so every element is summed in lane order.
float DotF32(const float* a, const float* b, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + L), hn::LoadU(d, b + i + L), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * L), hn::LoadU(d, b + i + 2 * L), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * L), hn::LoadU(d, b + i + 3 * L), s3);
  }
  for (; i + L <= n; i += L) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  if (i < n) {
    const auto mask = hn::FirstN(d, n - i);
    s1 = hn::MulAdd(hn::MaskedLoad(mask, d, a + i), hn::MaskedLoad(mask, d, b + i), s1);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
}

void F16ToF32Row(const uint16_t* b, float* out, size_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const size_t L = hn::Lanes(d);
  const auto* bh = reinterpret_cast<const hwy::float16_t*>(b);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, bh + i)), d, out + i);
  for (; i < n; ++i) out[i] = ::tandem::f16_to_f32(b[i]);
}

// Round to nearest even, as ::tandem::f32_to_f16 (checked on every target:
// ops_test): the F16C instruction from AVX2 up; below, Highway's emulation
// does not round overflow to infinity, so the scalar converter. NaNs keep
// the hardware's payload instead of the scalar's one quiet NaN; the KV
// never holds NaNs from a sane model.
void F32ToF16Row(const float* x, uint16_t* out, size_t n) {
  size_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const size_t L = hn::Lanes(d);
  auto* oh = reinterpret_cast<hwy::float16_t*>(out);
  for (; i + L <= n; i += L) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, x + i)), dh, oh + i);
#endif
  for (; i < n; ++i) out[i] = ::tandem::f32_to_f16(x[i]);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tandem::kernels {

HWY_EXPORT(DotF32);
HWY_EXPORT(F16ToF32Row);
HWY_EXPORT(F32ToF16Row);
HWY_EXPORT(TargetName);

float dot_f32(const float* a, const float* b, size_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n); }
void f16_to_f32_row(const uint16_t* b, float* out, size_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32Row)(b, out, n); }
void f32_to_f16_row(const float* x, uint16_t* out, size_t n) { HWY_DYNAMIC_DISPATCH(F32ToF16Row)(x, out, n); }
const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace tandem::kernels
#endif
