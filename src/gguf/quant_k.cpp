// Scalar (de)quantization of the K-quants: 256-element super-blocks split
// into sub-blocks of 16 or 32 elements, each sub-block with its own scale
// (and min for q2_K/q4_K/q5_K), the sub-block scales themselves quantized
// against one or two f16 super-block scales.
//
// Dequantization is bit-exact with ggml's dequantize_row_q*_K: same layouts,
// same float operations (products of an f16 scale and small integers are
// exact in f32, so each value is rounded once, as in ggml).
//
// Quantization follows ggml's reference quantizers (quantize_row_q*_K_ref):
// a per-sub-block scale search (weighted least squares over a small grid of
// candidate scales), then the sub-block scales rounded to 4/6/8 bits, then
// every element re-quantized against the scale it will actually be decoded
// with. Sums run in double so finite inputs of any magnitude cannot
// overflow the search into inf/NaN.
#include "gguf/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tandem::gguf::detail {
namespace {

// ---- packed scale fields ---------------------------------------------------------

// q4_K/q5_K: 8 scales and 8 mins of 6 bits in 12 bytes. Bytes 0-3 hold
// scales 0-3 and bytes 4-7 mins 0-3 in their low 6 bits; scales/mins 4-7
// keep their low nibbles in bytes 8-11 (scale low, min high) and their top
// 2 bits in the spare top bits of bytes 0-3 (scales) and 4-7 (mins).
void scale_min_k4(const uint8_t* s, int j, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void pack_scale_min_k4(const uint8_t scales[8], const uint8_t mins[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(scales[j] | ((scales[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(mins[j] | ((mins[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((mins[j + 4] & 0x0f) << 4));
  }
}

// q3_K: 16 scales of 6 bits (stored + 32) in 12 bytes. Low nibbles: scale j
// in byte j (j < 8, low nibble) or byte j-8 (high nibble). Top 2 bits:
// byte 8 + j%4, bit pair j/4. This is what ggml's kmask1/kmask2 shuffle
// produces.
int q3k_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | (high << 4);
}

void pack_q3k_scales(const uint8_t v[16], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 16; ++j) {
    out[j % 8] = static_cast<uint8_t>(out[j % 8] | ((v[j] & 0x0f) << (j < 8 ? 0 : 4)));
    out[8 + j % 4] = static_cast<uint8_t>(out[8 + j % 4] | ((v[j] >> 4) << (2 * (j / 4))));
  }
}

// q2_K/q3_K 2-bit field of element e: each 128-element half uses 32 bytes;
// byte l of the half holds elements l, l+32, l+64, l+96 at bit pairs 0..3.
int crumb(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

void set_crumb(uint8_t* qs, int e, int v) {
  uint8_t& byte = qs[32 * (e / 128) + e % 32];
  byte = static_cast<uint8_t>(byte | (v << (2 * ((e % 128) / 32))));
}

// q4_K/q5_K 4-bit field of element e: each 64-element chunk uses 32 bytes,
// the first 32 elements in the low nibbles, the next 32 in the high ones.
int nibble_k(const uint8_t* qs, int e) { return (qs[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 0x0f; }

void set_nibble_k(uint8_t* qs, int e, int v) {
  uint8_t& byte = qs[32 * (e / 64) + e % 32];
  byte = static_cast<uint8_t>(byte | (v << (4 * ((e % 64) / 32))));
}

// ---- scale search ------------------------------------------------------------------

struct ScaleMin {
  float scale;  // >= 0
  float min;    // >= 0, subtracted: x ~= scale * q - min
};

// Candidate grid for fit_scale_min: quants are first assigned with inverse
// scale (nmax + rmin + rdelta*i) / range for i in [0, nstep].
struct Grid {
  float rmin;
  float rdelta;
  int nstep;
};

// Finds scale and min for x ~= scale * q - min, q in [0, nmax], minimizing
// the squared error weighted by (rms + |x|) (ggml's make_qkx2_quants with
// the q4_K weights): for each candidate assignment of quants, the best
// scale and min follow from a 2x2 least-squares solve. min is kept >= 0,
// i.e. the offset never exceeds the block minimum clamped to 0, as in ggml.
ScaleMin fit_scale_min(const float* x, int n, int nmax, Grid grid) {
  double lo = x[0], hi = x[0], sum_x2 = 0;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, static_cast<double>(x[i]));
    hi = std::max(hi, static_cast<double>(x[i]));
    sum_x2 += static_cast<double>(x[i]) * x[i];
  }
  lo = std::min(lo, 0.0);
  if (hi <= lo) return {0.0f, static_cast<float>(-lo)};  // constant block <= 0: all quants 0

  const double rms = std::sqrt(sum_x2 / n);
  double w[kQKK / 8], sum_w = 0, sum_x = 0;
  for (int i = 0; i < n; ++i) {
    w[i] = rms + std::fabs(x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  auto error_of = [&](double scale, double offset, double iscale) {
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double l = std::clamp(std::nearbyint(iscale * (x[i] - lo)), 0.0, static_cast<double>(nmax));
      const double diff = scale * l + offset - x[i];
      err += w[i] * diff * diff;
    }
    return err;
  };

  // Start from the plain min/max fit, which covers the whole range.
  double best_scale = (hi - lo) / nmax;
  double best_offset = lo;
  double best_err = error_of(best_scale, best_offset, nmax / (hi - lo));
  for (int step = 0; step <= grid.nstep; ++step) {
    const double iscale = (nmax + grid.rmin + grid.rdelta * step) / (hi - lo);
    double sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const double l = std::clamp(std::nearbyint(iscale * (x[i] - lo)), 0.0, static_cast<double>(nmax));
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const double det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    double scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    double offset = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (offset > 0) {  // the format can only subtract: refit through 0
      offset = 0;
      scale = sum_xl / sum_l2;
    }
    if (!(scale > 0) || !std::isfinite(scale)) continue;
    const double err = error_of(scale, offset, iscale);
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_offset = offset;
    }
  }
  return {static_cast<float>(best_scale), static_cast<float>(-best_offset)};
}

// Finds a signed scale for x ~= scale * q, q in [-nmax, nmax-1], weighting
// the squared error by x^2 (ggml's make_qx_quants, rmse_type 1). The
// starting point maps the value of largest magnitude onto -nmax; nearby
// scales are tried and each refit by least squares.
float fit_signed_scale(const float* x, int n, int nmax) {
  float max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax == 0.0f) return 0.0f;
  auto sums = [&](double iscale, double& sum_lx, double& sum_l2) {
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const double l =
          std::clamp(std::nearbyint(iscale * x[i]), static_cast<double>(-nmax), static_cast<double>(nmax - 1));
      const double w = static_cast<double>(x[i]) * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
  };
  double sum_lx, sum_l2;
  sums(-nmax / static_cast<double>(max), sum_lx, sum_l2);
  double scale = sum_l2 > 0 ? sum_lx / sum_l2 : max / -static_cast<double>(nmax);
  double best = scale * sum_lx;  // = sum_lx^2 / sum_l2: larger is a better fit
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    sums(-(nmax + 0.1 * step) / max, sum_lx, sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return static_cast<float>(scale);
}

// ---- shared quantizer skeletons -------------------------------------------------------

// round_clamp for sub-block scales, except that a nonzero scale never
// becomes 0: a zero scale flattens the whole sub-block, while +-1 (a step
// of at least twice the wanted one) still keeps its values to within half
// that step. Matters when the super-block scale sits at the f16 floor.
int nonzero_round_clamp(float v, int lo, int hi) {
  const int r = round_clamp(v, lo, hi);
  if (r != 0 || v == 0.0f) return r;
  return v > 0 ? std::min(1, hi) : std::max(-1, lo);
}

// Quantizes one super-block of the affine formats (q2_K, q4_K, q5_K): SUB
// sub-blocks of kQKK/SUB elements, quants in [0, nmax], sub-block scales
// and mins in [0, scale_max]. Outputs the f16 super-block scales, the integer
// sub-block scales/mins and the element quants.
void quantize_affine_k(const float* x, int sub, int nmax, int scale_max, Grid grid, uint16_t& d16, uint16_t& dmin16,
                       uint8_t* ls, uint8_t* lm, uint8_t* q) {
  const int len = kQKK / sub;
  ScaleMin fit[16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < sub; ++j) {
    fit[j] = fit_scale_min(x + len * j, len, nmax, grid);
    max_scale = std::max(max_scale, fit[j].scale);
    max_min = std::max(max_min, fit[j].min);
  }
  // Rounding the super-block scales up keeps the largest sub-block scale
  // and min representable after rounding to f16.
  d16 = f16_scale_at_least(max_scale / static_cast<float>(scale_max));
  dmin16 = f16_scale_at_least(max_min / static_cast<float>(scale_max));
  const float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
  for (int j = 0; j < sub; ++j) {
    ls[j] = static_cast<uint8_t>(d > 0 ? nonzero_round_clamp(fit[j].scale / d, 0, scale_max) : 0);
    lm[j] = static_cast<uint8_t>(dmin > 0 ? round_clamp(fit[j].min / dmin, 0, scale_max) : 0);
    const float dl = d * static_cast<float>(ls[j]);
    const float ml = dmin * static_cast<float>(lm[j]);
    for (int i = 0; i < len; ++i) {
      q[len * j + i] = static_cast<uint8_t>(dl > 0 ? round_clamp((x[len * j + i] + ml) / dl, 0, nmax) : 0);
    }
  }
}

// Quantizes one super-block of the symmetric formats (q3_K, q6_K): 16
// sub-blocks of 16, quants in [-nmax, nmax-1], signed sub-block scales in
// [-scale_max, scale_max-1]. Like ggml, the sub-block scale of largest
// magnitude maps onto -scale_max.
void quantize_signed_k(const float* x, int nmax, int scale_max, uint16_t& d16, int* ls, int* q) {
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = fit_signed_scale(x + 16 * j, 16, nmax);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  d16 = f16_scale_at_least(max_scale / static_cast<float>(-scale_max));
  const float d = f16_to_f32(d16);
  for (int j = 0; j < 16; ++j) {
    ls[j] = d != 0 ? nonzero_round_clamp(scales[j] / d, -scale_max, scale_max - 1) : 0;
    const float dl = d * static_cast<float>(ls[j]);
    for (int i = 0; i < 16; ++i) q[16 * j + i] = dl != 0 ? round_clamp(x[16 * j + i] / dl, -nmax, nmax - 1) : 0;
  }
}

}  // namespace

// ---- q2_K: x = d * scale * q - dmin * min, q in [0, 3] ------------------------------------

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * static_cast<float>(b.scales[j] & 0x0f);
      const float ml = dmin * static_cast<float>(b.scales[j] >> 4);
      for (int e = 16 * j; e < 16 * j + 16; ++e) dst[e] = dl * static_cast<float>(crumb(b.qs, e)) - ml;
    }
  }
}

void quantize_q2_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ2_K b{};
    uint8_t ls[16], lm[16], q[kQKK];
    quantize_affine_k(src, 16, 3, 15, {-0.5f, 0.1f, 15}, b.d, b.dmin, ls, lm, q);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
    for (int e = 0; e < kQKK; ++e) set_crumb(b.qs, e, q[e]);
    store_block(dst, i, b);
  }
}

// ---- q3_K: x = d * (scale - 32) * (q - 4), q in [0, 7] --------------------------------------

void dequantize_q3_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d = f16_to_f32(b.d);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * static_cast<float>(q3k_scale(b.scales, j) - 32);
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        // hmask byte e%32, bit e/32 holds the 3rd bit; a clear bit means the
        // quant is negative (subtract 4).
        const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
        dst[e] = dl * static_cast<float>(crumb(b.qs, e) - (high ? 0 : 4));
      }
    }
  }
}

void quantize_q3_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ3_K b{};
    int ls[16], q[kQKK];
    quantize_signed_k(src, 4, 32, b.d, ls, q);
    uint8_t biased[16];
    for (int j = 0; j < 16; ++j) biased[j] = static_cast<uint8_t>(ls[j] + 32);
    pack_q3k_scales(biased, b.scales);
    for (int e = 0; e < kQKK; ++e) {
      const int u = q[e] + 4;
      set_crumb(b.qs, e, u & 3);
      b.hmask[e % 32] = static_cast<uint8_t>(b.hmask[e % 32] | ((u >> 2) << (e / 32)));
    }
    store_block(dst, i, b);
  }
}

// ---- q4_K / q5_K: x = d * scale * q - dmin * min, 8 sub-blocks of 32 --------------------

void dequantize_q4_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      scale_min_k4(b.scales, j, sc, m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      for (int e = 32 * j; e < 32 * j + 32; ++e) dst[e] = dl * static_cast<float>(nibble_k(b.qs, e)) - ml;
    }
  }
}

void quantize_q4_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ4_K b{};
    uint8_t ls[8], lm[8], q[kQKK];
    quantize_affine_k(src, 8, 15, 63, {-1.0f, 0.1f, 20}, b.d, b.dmin, ls, lm, q);
    pack_scale_min_k4(ls, lm, b.scales);
    for (int e = 0; e < kQKK; ++e) set_nibble_k(b.qs, e, q[e]);
    store_block(dst, i, b);
  }
}

void dequantize_q5_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      scale_min_k4(b.scales, j, sc, m);
      const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
      for (int e = 32 * j; e < 32 * j + 32; ++e) {
        // The 5th bit of sub-block j's quants is bit j of qh[e % 32].
        const int q = nibble_k(b.qs, e) | (((b.qh[e % 32] >> j) & 1) << 4);
        dst[e] = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

void quantize_q5_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ5_K b{};
    uint8_t ls[8], lm[8], q[kQKK];
    quantize_affine_k(src, 8, 31, 63, {-0.5f, 0.1f, 15}, b.d, b.dmin, ls, lm, q);
    pack_scale_min_k4(ls, lm, b.scales);
    for (int e = 0; e < kQKK; ++e) {
      set_nibble_k(b.qs, e, q[e] & 0x0f);
      b.qh[e % 32] = static_cast<uint8_t>(b.qh[e % 32] | ((q[e] >> 4) << (e / 32)));
    }
    store_block(dst, i, b);
  }
}

// ---- q6_K: x = d * scale * (q - 32), 16 sub-blocks of 16, int8 scales -------------------
//
// Per 128-element half h: ql bytes [64h, 64h+64) and qh bytes [32h, 32h+32).
// Element 128h + 32k + l (k in 0..3, l in 0..31) keeps its low 4 bits in
// ql[64h + 32*(k&1) + l] (low nibble for k < 2, high for k >= 2) and its top
// 2 bits in qh[32h + l] at bit pair k.

namespace {
int q6k_ql_index(int e) { return 64 * (e / 128) + 32 * ((e % 128) / 32 % 2) + e % 32; }
int q6k_ql_shift(int e) { return 4 * ((e % 128) / 64); }
int q6k_qh_index(int e) { return 32 * (e / 128) + e % 32; }
int q6k_qh_shift(int e) { return 2 * ((e % 128) / 32); }
}  // namespace

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, dst += kQKK) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < kQKK; ++e) {
      const int low = (b.ql[q6k_ql_index(e)] >> q6k_ql_shift(e)) & 0x0f;
      const int high = (b.qh[q6k_qh_index(e)] >> q6k_qh_shift(e)) & 3;
      // As ggml: (d * scale) * q. d * scale is exact in f32 (11 x 8 bit
      // significands), so the one rounding matches any evaluation order.
      dst[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32);
    }
  }
}

void quantize_q6_k(const float* src, uint8_t* dst, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, src += kQKK) {
    BlockQ6_K b{};
    int ls[16], q[kQKK];
    quantize_signed_k(src, 32, 128, b.d, ls, q);
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(ls[j]);
    for (int e = 0; e < kQKK; ++e) {
      const int u = q[e] + 32;
      b.ql[q6k_ql_index(e)] = static_cast<uint8_t>(b.ql[q6k_ql_index(e)] | ((u & 0x0f) << q6k_ql_shift(e)));
      b.qh[q6k_qh_index(e)] = static_cast<uint8_t>(b.qh[q6k_qh_index(e)] | ((u >> 4) << q6k_qh_shift(e)));
    }
    store_block(dst, i, b);
  }
}

}  // namespace tandem::gguf::detail
