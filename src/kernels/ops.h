// Row-wise operations of the forward pass. Each works on one row at a time
// in a fixed order, so results never depend on the batch. Scalar code: these
// are a small share of a step next to the matmuls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tandem::kernels {

// OUT = X / sqrt(mean(X^2) + eps) * W   (W may be null: no weight). OUT may alias X.
void rmsnorm(const float* x, const float* w, float eps, float* out, size_t n);

// OUT = silu(GATE) * UP, silu(g) = g / (1 + exp(-g)). OUT may alias GATE.
void silu_mul(const float* gate, const float* up, float* out, size_t n);
// OUT = gelu(GATE) * UP with the tanh approximation of GELU.
void gelu_tanh_mul(const float* gate, const float* up, float* out, size_t n);
// gpt-oss's clamped SwiGLU: with g = min(GATE, LIMIT) and u = clamp(UP,
// -LIMIT, LIMIT), OUT = g * sigmoid(ALPHA * g) * (u + 1). OUT may alias GATE.
void swiglu_oai(const float* gate, const float* up, float* out, size_t n, float alpha = 1.702f, float limit = 7.0f);
// OUT += X
void add_inplace(float* out, const float* x, size_t n);
// X *= s
void scale_inplace(float* x, float s, size_t n);

// RoPE on one head vector of HEAD_DIM values; the first N_ROT are rotated.
// Pairing: kAdjacent rotates (x[2i], x[2i+1]) (GGUF "llama" arch, whose Q/K
// rows are stored permuted); kNeox rotates (x[i], x[i + n_rot/2]) (qwen2,
// qwen3, gemma3). COS/SIN hold n_rot/2 values for this position.
enum class RopePairing { kAdjacent, kNeox };
void rope(float* x, const float* cos, const float* sin, int n_rot, RopePairing pairing);

// cos/sin of angle pos * theta_i for i < n_rot/2, theta_i = base^(-2i/n_rot)
// / factor_i (FACTORS may be null: all 1; Llama 3 rope scaling) and
// positions divided by LINEAR_SCALE (linear rope scaling; 1 = none).
void rope_cos_sin(int64_t pos, int n_rot, float base, const float* factors, float linear_scale, float* cos, float* sin);

// Llama 3 "llama3" rope scaling as the N_ROT / 2 factors rope_cos_sin
// takes (GGUF rope_freqs.weight): wavelengths longer than ORIGINAL_CTX /
// LOW_FREQ are slowed by FACTOR, those shorter than ORIGINAL_CTX / HIGH_FREQ
// kept, the band between interpolated smoothly.
std::vector<float> llama3_rope_factors(int n_rot, double base, double factor, double low_freq, double high_freq,
                                       double original_ctx);

// YaRN rope scaling (gpt-oss): frequencies whose wavelength fits the
// original context many times keep their angle (extrapolation), the longest
// ones are slowed by FACTOR (interpolation), a linear ramp between the
// dimensions where ORIGINAL_CTX holds BETA_FAST and BETA_SLOW turns; cos and
// sin are multiplied by 1 + 0.1 ln(FACTOR) to keep attention's temperature.
struct YarnParams {
  float factor = 1.0f;
  int64_t original_ctx = 0;
  float beta_fast = 32.0f, beta_slow = 1.0f;
};
void rope_cos_sin_yarn(int64_t pos, int n_rot, float base, const YarnParams& yarn, float* cos, float* sin);

}  // namespace tandem::kernels
