// Highway dynamic dispatch: this file is compiled once per SIMD target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dot.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

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

// Scores of NQ (1 or 2) queries against one block of transposed keys. Four
// key vectors per step give four independent FMA chains per query (the
// scores loop is latency-bound otherwise); a second query reuses every K
// load. Each lane sums over d in order whatever NQ and the step, so a
// query's scores never depend on its partner.
template <int NQ>
void ScoresBlockN(const float* const* q, const float* k_t, size_t dims, size_t t, float* const* out) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t j = 0;
  for (; j + 4 * L <= t; j += 4 * L) {
    decltype(hn::Zero(d)) acc[NQ][4];
    for (int n = 0; n < NQ; ++n) {
      for (int v = 0; v < 4; ++v) acc[n][v] = hn::Zero(d);
    }
    for (size_t i = 0; i < dims; ++i) {
      const float* row = k_t + i * t + j;
      const auto k0 = hn::LoadU(d, row), k1 = hn::LoadU(d, row + L), k2 = hn::LoadU(d, row + 2 * L),
                 k3 = hn::LoadU(d, row + 3 * L);
      for (int n = 0; n < NQ; ++n) {
        const auto qi = hn::Set(d, q[n][i]);
        acc[n][0] = hn::MulAdd(qi, k0, acc[n][0]);
        acc[n][1] = hn::MulAdd(qi, k1, acc[n][1]);
        acc[n][2] = hn::MulAdd(qi, k2, acc[n][2]);
        acc[n][3] = hn::MulAdd(qi, k3, acc[n][3]);
      }
    }
    for (int n = 0; n < NQ; ++n) {
      for (int v = 0; v < 4; ++v) hn::StoreU(acc[n][v], d, out[n] + j + v * L);
    }
  }
  for (; j + L <= t; j += L) {
    for (int n = 0; n < NQ; ++n) {
      auto a0 = hn::Zero(d);
      for (size_t i = 0; i < dims; ++i) a0 = hn::MulAdd(hn::Set(d, q[n][i]), hn::LoadU(d, k_t + i * t + j), a0);
      hn::StoreU(a0, d, out[n] + j);
    }
  }
  for (; j < t; ++j) {  // block sizes that are not a multiple of a vector
    for (int n = 0; n < NQ; ++n) {
      float acc = 0.0f;
      for (size_t i = 0; i < dims; ++i) acc = std::fma(q[n][i], k_t[i * t + j], acc);
      out[n][j] = acc;
    }
  }
}

void ScoresBlockF32(const float* q, const float* k_t, size_t dims, size_t t, float* out) {
  ScoresBlockN<1>(&q, k_t, dims, t, &out);
}

void ScoresBlock2F32(const float* q0, const float* q1, const float* k_t, size_t dims, size_t t, float* out0,
                     float* out1) {
  const float* q[2] = {q0, q1};
  float* out[2] = {out0, out1};
  ScoresBlockN<2>(q, k_t, dims, t, out);
}

// OUT[n][c] += sum over t of P[n][t] * V[t][c] for NQ queries sharing the
// key range. Four dim vectors per step (independent chains), each lane
// summing over t in order: the same arithmetic as one axpy per t.
template <int NQ>
void PvBlockN(const float* const* p, const float* v, size_t t0, size_t t1, size_t dims, float* const* out) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  size_t c = 0;
  for (; c + 4 * L <= dims; c += 4 * L) {
    decltype(hn::Zero(d)) acc[NQ][4];
    for (int n = 0; n < NQ; ++n) {
      for (int k = 0; k < 4; ++k) acc[n][k] = hn::LoadU(d, out[n] + c + k * L);
    }
    for (size_t t = t0; t <= t1; ++t) {
      const float* row = v + t * dims + c;
      const auto v0 = hn::LoadU(d, row), v1 = hn::LoadU(d, row + L), v2 = hn::LoadU(d, row + 2 * L),
                 v3 = hn::LoadU(d, row + 3 * L);
      for (int n = 0; n < NQ; ++n) {
        const auto pt = hn::Set(d, p[n][t]);
        acc[n][0] = hn::MulAdd(pt, v0, acc[n][0]);
        acc[n][1] = hn::MulAdd(pt, v1, acc[n][1]);
        acc[n][2] = hn::MulAdd(pt, v2, acc[n][2]);
        acc[n][3] = hn::MulAdd(pt, v3, acc[n][3]);
      }
    }
    for (int n = 0; n < NQ; ++n) {
      for (int k = 0; k < 4; ++k) hn::StoreU(acc[n][k], d, out[n] + c + k * L);
    }
  }
  for (; c + L <= dims; c += L) {
    for (int n = 0; n < NQ; ++n) {
      auto acc = hn::LoadU(d, out[n] + c);
      for (size_t t = t0; t <= t1; ++t) acc = hn::MulAdd(hn::Set(d, p[n][t]), hn::LoadU(d, v + t * dims + c), acc);
      hn::StoreU(acc, d, out[n] + c);
    }
  }
  for (; c < dims; ++c) {
    for (int n = 0; n < NQ; ++n) {
      float acc = out[n][c];
      for (size_t t = t0; t <= t1; ++t) acc = std::fma(p[n][t], v[t * dims + c], acc);
      out[n][c] = acc;
    }
  }
}

void PvBlockF32(const float* p, const float* v, size_t t0, size_t t1, size_t dims, float* out) {
  PvBlockN<1>(&p, v, t0, t1, dims, &out);
}

void PvBlock2F32(const float* p0, const float* p1, const float* v, size_t t0, size_t t1, size_t dims, float* out0,
                 float* out1) {
  const float* p[2] = {p0, p1};
  float* out[2] = {out0, out1};
  PvBlockN<2>(p, v, t0, t1, dims, out);
}

// S[t] *= SCALE for t in [t0, t1]; returns the max of those.
float ScaleMax(float* s, size_t t0, size_t t1, float scale) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vs = hn::Set(d, scale);
  auto mx = hn::Set(d, -std::numeric_limits<float>::infinity());
  const size_t n = t1 - t0 + 1;
  float* x = s + t0;
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto v = hn::Mul(hn::LoadU(d, x + i), vs);
    hn::StoreU(v, d, x + i);
    mx = hn::Max(mx, v);
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, mx));
  for (; i < n; ++i) {
    x[i] *= scale;
    m = std::max(m, x[i]);
  }
  return m;
}

// S[t] = exp(S[t] - M) for t in [t0, t1]; returns their sum (lane partial
// sums, then the tail in order: fixed for a given t0, t1).
float ExpSum(float* s, size_t t0, size_t t1, float m) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vm = hn::Set(d, m);
  auto sum = hn::Zero(d);
  const size_t n = t1 - t0 + 1;
  float* x = s + t0;
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, x + i);
    sum = hn::Add(sum, e);
  }
  float total = hn::GetLane(hn::SumOfLanes(d, sum));
  if (i < n) {
    alignas(64) float tail[64] = {};
    const size_t r = n - i;
    for (size_t k = 0; k < L; ++k) tail[k] = k < r ? x[i + k] : m;
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, tail), vm));
    hn::StoreU(e, d, tail);
    for (size_t k = 0; k < r; ++k) {
      x[i + k] = tail[k];
      total += tail[k];
    }
  }
  return total;
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

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace tandem::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tandem::kernels {

HWY_EXPORT(DotF32);
HWY_EXPORT(F16ToF32Row);
HWY_EXPORT(ScoresBlockF32);
HWY_EXPORT(PvBlockF32);
HWY_EXPORT(ScoresBlock2F32);
HWY_EXPORT(PvBlock2F32);
HWY_EXPORT(ScaleMax);
HWY_EXPORT(ExpSum);
HWY_EXPORT(TargetName);

float dot_f32(const float* a, const float* b, size_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n); }
void scores_block_f32(const float* q, const float* k_t, size_t d, size_t t, float* out) {
  HWY_DYNAMIC_DISPATCH(ScoresBlockF32)(q, k_t, d, t, out);
}
void pv_block_f32(const float* p, const float* v, size_t t0, size_t t1, size_t d, float* out) {
  HWY_DYNAMIC_DISPATCH(PvBlockF32)(p, v, t0, t1, d, out);
}
void scores_block2_f32(const float* q0, const float* q1, const float* k_t, size_t d, size_t t, float* out0,
                       float* out1) {
  HWY_DYNAMIC_DISPATCH(ScoresBlock2F32)(q0, q1, k_t, d, t, out0, out1);
}
void pv_block2_f32(const float* p0, const float* p1, const float* v, size_t t0, size_t t1, size_t d, float* out0,
                   float* out1) {
  HWY_DYNAMIC_DISPATCH(PvBlock2F32)(p0, p1, v, t0, t1, d, out0, out1);
}
float scale_max_f32(float* s, size_t t0, size_t t1, float scale) { return HWY_DYNAMIC_DISPATCH(ScaleMax)(s, t0, t1, scale); }
float exp_sum_f32(float* s, size_t t0, size_t t1, float m) { return HWY_DYNAMIC_DISPATCH(ExpSum)(s, t0, t1, m); }
void f16_to_f32_row(const uint16_t* b, float* out, size_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32Row)(b, out, n); }
const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace tandem::kernels
#endif
