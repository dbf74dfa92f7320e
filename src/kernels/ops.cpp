#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tandem::kernels {

void rmsnorm(const float* x, const float* w, float eps, float* out, size_t n) {
  double ss = 0;  // double: a 4096-wide row of large activations must not lose precision
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  if (w != nullptr) {
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv;
  }
}

void silu_mul(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu_tanh_mul(const float* gate, const float* up, float* out, size_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void swiglu_oai(const float* gate, const float* up, float* out, size_t n, float alpha, float limit) {
  for (size_t i = 0; i < n; ++i) {
    const float g = std::min(gate[i], limit);
    const float u = std::clamp(up[i], -limit, limit);
    out[i] = g / (1.0f + std::exp(-alpha * g)) * (u + 1.0f);
  }
}

void add_inplace(float* out, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] += x[i];
}

void scale_inplace(float* x, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

void rope(float* x, const float* cos, const float* sin, int n_rot, RopePairing pairing) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    const int a = pairing == RopePairing::kAdjacent ? 2 * i : i;
    const int b = pairing == RopePairing::kAdjacent ? 2 * i + 1 : i + half;
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * cos[i] - x1 * sin[i];
    x[b] = x0 * sin[i] + x1 * cos[i];
  }
}

void rope_cos_sin(int64_t pos, int n_rot, float base, const float* factors, float linear_scale, float* cos,
                  float* sin) {
  const double p = static_cast<double>(pos) / linear_scale;
  for (int i = 0; i < n_rot / 2; ++i) {
    double theta = std::pow(static_cast<double>(base), -2.0 * i / n_rot);
    if (factors != nullptr) theta /= factors[i];
    const double angle = p * theta;
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

void rope_cos_sin_yarn(int64_t pos, int n_rot, float base, const YarnParams& y, float* cos, float* sin) {
  // The dimension (of N_ROT) whose wavelength fits ORIGINAL_CTX exactly BETA times.
  auto turn = [&](double beta) {
    return n_rot * std::log(static_cast<double>(y.original_ctx) / (beta * 2 * std::numbers::pi)) / (2 * std::log(base));
  };
  const double low = std::max(0.0, std::floor(turn(y.beta_fast)));
  const double high = std::min(static_cast<double>(n_rot - 1), std::ceil(turn(y.beta_slow)));
  const double mscale = 1.0 + 0.1 * std::log(static_cast<double>(y.factor));
  for (int i = 0; i < n_rot / 2; ++i) {
    const double extrapolated = static_cast<double>(pos) * std::pow(static_cast<double>(base), -2.0 * i / n_rot);
    const double interpolated = extrapolated / y.factor;
    // 1 below LOW (keep the angle), 0 above HIGH (interpolate), linear between.
    const double keep = 1.0 - std::clamp((i - low) / std::max(0.001, high - low), 0.0, 1.0);
    const double angle = interpolated * (1 - keep) + extrapolated * keep;
    cos[i] = static_cast<float>(std::cos(angle) * mscale);
    sin[i] = static_cast<float>(std::sin(angle) * mscale);
  }
}

std::vector<float> llama3_rope_factors(int n_rot, double base, double factor, double low_freq, double high_freq,
                                       double original_ctx) {
  const double low_wavelen = original_ctx / low_freq, high_wavelen = original_ctx / high_freq;
  std::vector<float> factors;
  for (int i = 0; i < n_rot / 2; ++i) {
    const double wavelen = 2 * std::numbers::pi * std::pow(base, 2.0 * i / n_rot);
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (original_ctx / wavelen - low_freq) / (high_freq - low_freq);
      f = 1.0 / ((1 - smooth) / factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

}  // namespace tandem::kernels
