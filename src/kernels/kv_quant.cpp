// q8_0 quantization of KV rows (kv_quant.h). Highway dynamic dispatch; a
// group of 32 is two AVX-512 or four AVX2 vectors, groups shorter than a
// vector take the scalar path, which performs the same IEEE operations
// (max is exact, division and nearbyint are correctly rounded), so every
// target writes the same bytes.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/kv_quant.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "kernels/kv_quant.h"

#ifndef TANDEM_KERNELS_KV_QUANT_SCALE
#define TANDEM_KERNELS_KV_QUANT_SCALE
namespace tandem::kernels {
namespace {
// f16 bits of the scale of a group with max |x| = AMAX, and its f32 value.
// Rounded up to the next f16 when rounding to nearest went below amax / 127:
// then |x| / d <= 127 and no value is clamped, which matters for small
// groups whose scale is an f16 subnormal (1% steps at 6e-6).
uint16_t group_scale(float amax, float* value) {
  uint16_t h = f32_to_f16(amax / 127.0f);
  if (h < 0x7bff && f16_to_f32(h) * 127.0f < amax) ++h;
  if (h > 0x7bff) h = 0x7bff;  // overflow: the largest finite f16 (values clamp)
  *value = f16_to_f32(h);
  return h;
}
int8_t quantize_one(float x, float d) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(x / d), -127.0f, 127.0f));
}
}  // namespace
}  // namespace tandem::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace tandem::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void QuantizeKvQ8(const float* x, int n, int group, int8_t* q, ptrdiff_t q_stride, uint16_t* d, ptrdiff_t d_stride) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t L = hn::Lanes(df);
  const size_t g = static_cast<size_t>(group);
  for (size_t g0 = 0, gi = 0; g0 < static_cast<size_t>(n); g0 += g, ++gi) {
    const float* xg = x + g0;
    const bool vec = g % L == 0;
    float amax = 0.0f;
    if (vec) {
      auto m = hn::Zero(df);
      for (size_t i = 0; i < g; i += L) m = hn::Max(m, hn::Abs(hn::LoadU(df, xg + i)));
      amax = hn::GetLane(hn::MaxOfLanes(df, m));
    } else {
      for (size_t i = 0; i < g; ++i) amax = std::max(amax, std::fabs(xg[i]));
    }
    float scale;
    d[static_cast<ptrdiff_t>(gi) * d_stride] = group_scale(amax, &scale);
    int8_t* qg = q + static_cast<ptrdiff_t>(g0) * q_stride;
    if (scale == 0.0f) {
      for (size_t i = 0; i < g; ++i) qg[static_cast<ptrdiff_t>(i) * q_stride] = 0;
      continue;
    }
    if (vec) {
      const auto vd = hn::Set(df, scale);
      const auto lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
      alignas(64) int32_t tmp[64];
      for (size_t i = 0; i < g; i += L) {
        const auto r = hn::Min(hn::Max(hn::Round(hn::Div(hn::LoadU(df, xg + i), vd)), lo), hi);
        hn::Store(hn::ConvertTo(di, r), di, tmp);
        for (size_t k = 0; k < L; ++k) qg[static_cast<ptrdiff_t>(i + k) * q_stride] = static_cast<int8_t>(tmp[k]);
      }
    } else {
      for (size_t i = 0; i < g; ++i) qg[static_cast<ptrdiff_t>(i) * q_stride] = quantize_one(xg[i], scale);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tandem::kernels {

HWY_EXPORT(QuantizeKvQ8);

void quantize_kv_q8(const float* x, int n, int group, int8_t* q, ptrdiff_t q_stride, uint16_t* d, ptrdiff_t d_stride) {
  HWY_DYNAMIC_DISPATCH(QuantizeKvQ8)(x, n, group, q, q_stride, d, d_stride);
}

void quantize_kv_q8_reference(const float* x, int n, int group, int8_t* q, ptrdiff_t q_stride, uint16_t* d,
                              ptrdiff_t d_stride) {
  for (int g0 = 0, gi = 0; g0 < n; g0 += group, ++gi) {
    float amax = 0.0f;
    for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(x[g0 + i]));
    float scale;
    d[gi * d_stride] = group_scale(amax, &scale);
    for (int i = 0; i < group; ++i) {
      q[(g0 + i) * q_stride] = scale == 0.0f ? 0 : quantize_one(x[g0 + i], scale);
    }
  }
}

}  // namespace tandem::kernels
#endif
