// Tests for the scalar GGML block (de)quantization in gguf/quant.h.
//
// Known-answer tests build block bytes by hand, bit by bit, from integer
// quants and scales, following the layouts as ggml-common.h and ggml-quants.c
// define them (restated independently below, per format), and expect the
// exact floats ggml's dequantize_row_* computes from those integers.
// Round-trip tests check quantize() against per-element error bounds derived
// for each format, and RMS error on Gaussian data.
#include "gguf/quant.h"

#include "core/fp16.h"
#include "gguf/tensor_type.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace tandem::gguf {
namespace {

// ---- hand-built blocks --------------------------------------------------------

// A byte buffer written field by field. Every bit may be written once, and
// expect_all_written() checks that a test's layout covers every bit of its
// blocks, so a test cannot leave a field at zero or overlap two fields.
class BlockBytes {
 public:
  explicit BlockBytes(size_t n) : bytes_(n, 0), written_(n, 0) {}

  // Writes the low NBITS bits of V into byte OFF from bit BIT (LSB = 0).
  // No field of these formats straddles a byte.
  void put_bits(size_t off, int bit, int nbits, int v) {
    ASSERT_LT(off, bytes_.size());
    ASSERT_LE(bit + nbits, 8);
    ASSERT_TRUE(v >= 0 && v < (1 << nbits)) << "value does not fit its field";
    const auto mask = static_cast<uint8_t>(((1u << nbits) - 1) << bit);
    EXPECT_EQ(written_[off] & mask, 0) << "bits written twice at byte " << off;
    written_[off] |= mask;
    bytes_[off] |= static_cast<uint8_t>(v << bit);
  }
  void put_u8(size_t off, int v) { put_bits(off, 0, 8, v & 0xff); }  // also int8 (two's complement)
  void put_u16(size_t off, uint16_t v) {                             // little endian
    put_u8(off, v & 0xff);
    put_u8(off + 1, v >> 8);
  }
  void put_f32(size_t off, float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) put_u8(off + i, static_cast<int>(u >> (8 * i)));
  }
  void expect_all_written() const {
    for (size_t i = 0; i < written_.size(); ++i) EXPECT_EQ(written_[i], 0xff) << "byte " << i << " not fully written";
  }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<uint8_t> written_;
};

uint16_t f16_bits(float v) { return f32_to_f16(v); }
float as_f16(float v) { return f16_to_f32(f32_to_f16(v)); }  // what an f16 field holds

// Random integers in [lo, hi].
std::vector<int> random_ints(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (int& x : v) x = dist(rng);
  return v;
}

// What one block's builder gets: where to write, its f16 scales (already
// rounded through f16), its index, the random source, and where to append
// the expected floats.
struct BlockCtx {
  BlockBytes& b;
  size_t base;
  float d;
  float dmin;
  int index;
  std::mt19937& rng;
  std::vector<float>& expected;
};

constexpr int kBlocks = 3;  // every known-answer test decodes 3 blocks, to check block stepping

// Builds kBlocks blocks with BUILD and checks dequantize() returns exactly the
// expected floats, for two sets of scales: one where every product is exact
// (so the expectation cannot depend on how the arithmetic is arranged), and
// one with full 11-bit f16 significands where the results do get rounded.
// (In every format d * scale is exact in f32 and each value then takes a
// single rounding, so any arrangement matches ggml bit for bit.)
template <typename Build>
void check_known_answer(TensorType type, uint32_t seed, Build build) {
  const size_t bytes = type_info(type).block_bytes;
  for (const auto& [d0, dmin0] : {std::pair{0.375f, 0.5f}, std::pair{0.0137f, 0.291f}}) {
    std::mt19937 rng(seed);
    BlockBytes b(bytes * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      build(BlockCtx{b, bytes * blk, as_f16(d0 * static_cast<float>(blk + 1)), as_f16(dmin0), blk, rng, expected});
    }
    b.expect_all_written();
    ASSERT_EQ(expected.size(), kBlocks * type_info(type).block_size);
    std::vector<float> out(expected.size(), std::numeric_limits<float>::quiet_NaN());
    ASSERT_TRUE(dequantize(type, b.data(), out.data(), static_cast<int64_t>(out.size())).ok());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(out[i], expected[i]) << type_name(type) << " element " << i << " (block "
                                     << i / type_info(type).block_size << ", position "
                                     << i % type_info(type).block_size << ")";
    }
  }
}

// q4_0: [d f16][qs 16]. Element e < 16 in the low nibble of qs[e], e >= 16 in
// the high nibble of qs[e - 16]. x = d * (q - 8).
TEST(QuantKnownAnswer, Q4_0) {
  check_known_answer(TensorType::Q4_0, 40, [](BlockCtx c) {
    c.b.put_u16(c.base, f16_bits(c.d));
    const auto q = random_ints(c.rng, 32, 0, 15);
    for (int e = 0; e < 32; ++e) c.b.put_bits(c.base + 2 + e % 16, 4 * (e / 16), 4, q[e]);
    for (int e = 0; e < 32; ++e) c.expected.push_back(static_cast<float>(q[e] - 8) * c.d);
  });
}

// q4_1: [d f16][m f16][qs 16], nibbles as q4_0. x = d * q + m.
TEST(QuantKnownAnswer, Q4_1) {
  check_known_answer(TensorType::Q4_1, 41, [](BlockCtx c) {
    const float m = as_f16(-c.dmin * static_cast<float>(2 * c.index + 1));
    c.b.put_u16(c.base, f16_bits(c.d));
    c.b.put_u16(c.base + 2, f16_bits(m));
    const auto q = random_ints(c.rng, 32, 0, 15);
    for (int e = 0; e < 32; ++e) c.b.put_bits(c.base + 4 + e % 16, 4 * (e / 16), 4, q[e]);
    for (int e = 0; e < 32; ++e) c.expected.push_back(static_cast<float>(q[e]) * c.d + m);
  });
}

// q5_0: [d f16][qh 4][qs 16]. The 5th bit of element e is bit e of qh as a
// little-endian u32 (byte e / 8, bit e % 8); the low 4 bits are nibbles as
// in q4_0. x = d * (q - 16).
TEST(QuantKnownAnswer, Q5_0) {
  check_known_answer(TensorType::Q5_0, 50, [](BlockCtx c) {
    c.b.put_u16(c.base, f16_bits(c.d));
    const auto q = random_ints(c.rng, 32, 0, 31);
    for (int e = 0; e < 32; ++e) {
      c.b.put_bits(c.base + 2 + e / 8, e % 8, 1, q[e] >> 4);
      c.b.put_bits(c.base + 6 + e % 16, 4 * (e / 16), 4, q[e] & 15);
    }
    for (int e = 0; e < 32; ++e) c.expected.push_back(static_cast<float>(q[e] - 16) * c.d);
  });
}

// q5_1: [d f16][m f16][qh 4][qs 16], bits as q5_0. x = d * q + m.
TEST(QuantKnownAnswer, Q5_1) {
  check_known_answer(TensorType::Q5_1, 51, [](BlockCtx c) {
    const float m = as_f16(c.dmin * static_cast<float>(c.index) - 1.0f);
    c.b.put_u16(c.base, f16_bits(c.d));
    c.b.put_u16(c.base + 2, f16_bits(m));
    const auto q = random_ints(c.rng, 32, 0, 31);
    for (int e = 0; e < 32; ++e) {
      c.b.put_bits(c.base + 4 + e / 8, e % 8, 1, q[e] >> 4);
      c.b.put_bits(c.base + 8 + e % 16, 4 * (e / 16), 4, q[e] & 15);
    }
    for (int e = 0; e < 32; ++e) c.expected.push_back(static_cast<float>(q[e]) * c.d + m);
  });
}

// q8_0: [d f16][32 x int8]. x = d * q.
TEST(QuantKnownAnswer, Q8_0) {
  check_known_answer(TensorType::Q8_0, 80, [](BlockCtx c) {
    c.b.put_u16(c.base, f16_bits(c.d));
    auto q = random_ints(c.rng, 32, -128, 127);
    q[c.index] = -128;  // the extremes, at different positions per block
    q[31 - c.index] = 127;
    for (int e = 0; e < 32; ++e) c.b.put_u8(c.base + 2 + e, q[e]);
    for (int e = 0; e < 32; ++e) c.expected.push_back(static_cast<float>(q[e]) * c.d);
  });
}

// q8_K: [d f32][256 x int8][16 x int16 bsums]. x = d * q; bsums (a dot
// product aid) take no part, so they hold junk here.
TEST(QuantKnownAnswer, Q8_K) {
  check_known_answer(TensorType::Q8_K, 88, [](BlockCtx c) {
    const float d = 0.0123f * static_cast<float>(c.index + 1);  // any f32: no f16 field
    c.b.put_f32(c.base, d);
    const auto q = random_ints(c.rng, 256, -128, 127);
    for (int e = 0; e < 256; ++e) c.b.put_u8(c.base + 4 + e, q[e]);
    for (int g = 0; g < 32; ++g) c.b.put_u8(c.base + 260 + g, 0xa5 ^ g);
    for (int e = 0; e < 256; ++e) c.expected.push_back(d * static_cast<float>(q[e]));
  });
}

// K-quants: element e of a 256-element super-block sits in 128-element half
// h = e / 128, 32-element column k = (e % 128) / 32, row l = e % 32.

// q2_K: [scales 16][qs 64][d f16][dmin f16]. scales[e / 16]: low nibble =
// scale, high nibble = min. 2-bit quant in qs[32h + l] at bit 2k.
// x = d * scale * q - dmin * min.
TEST(QuantKnownAnswer, Q2_K) {
  check_known_answer(TensorType::Q2_K, 20, [](BlockCtx c) {
    const auto sc = random_ints(c.rng, 16, 0, 15), mn = random_ints(c.rng, 16, 0, 15);
    const auto q = random_ints(c.rng, 256, 0, 3);
    for (int j = 0; j < 16; ++j) {
      c.b.put_bits(c.base + j, 0, 4, sc[j]);
      c.b.put_bits(c.base + j, 4, 4, mn[j]);
    }
    for (int e = 0; e < 256; ++e) c.b.put_bits(c.base + 16 + 32 * (e / 128) + e % 32, 2 * ((e % 128) / 32), 2, q[e]);
    c.b.put_u16(c.base + 80, f16_bits(c.d));
    c.b.put_u16(c.base + 82, f16_bits(c.dmin));
    for (int e = 0; e < 256; ++e) {
      c.expected.push_back(c.d * static_cast<float>(sc[e / 16]) * static_cast<float>(q[e]) -
                           c.dmin * static_cast<float>(mn[e / 16]));
    }
  });
}

// q3_K: [hmask 32][qs 64][scales 12][d f16]. Quant v in [-4, 3] stored as
// u = v + 4: low 2 bits placed as in q2_K; bit 2 of u in hmask[l] at bit
// e / 32 (clear means "subtract 4"). Sub-block scale s = e / 16 in [-32, 31]
// stored as 6-bit s + 32: low nibble in byte j % 8 (low nibble for j < 8,
// high for j >= 8), top 2 bits in byte 8 + j % 4 at bit 2 * (j / 4).
// x = d * s * v.
TEST(QuantKnownAnswer, Q3_K) {
  check_known_answer(TensorType::Q3_K, 30, [](BlockCtx c) {
    auto sc = random_ints(c.rng, 16, -32, 31);
    sc[c.index] = -32;
    sc[15 - c.index] = 31;
    const auto v = random_ints(c.rng, 256, -4, 3);
    for (int e = 0; e < 256; ++e) {
      const int u = v[e] + 4;
      c.b.put_bits(c.base + 32 + 32 * (e / 128) + e % 32, 2 * ((e % 128) / 32), 2, u & 3);
      c.b.put_bits(c.base + e % 32, e / 32, 1, u >> 2);
    }
    for (int j = 0; j < 16; ++j) {
      const int u = sc[j] + 32;
      c.b.put_bits(c.base + 96 + j % 8, j < 8 ? 0 : 4, 4, u & 15);
      c.b.put_bits(c.base + 104 + j % 4, 2 * (j / 4), 2, u >> 4);
    }
    c.b.put_u16(c.base + 108, f16_bits(c.d));
    for (int e = 0; e < 256; ++e) c.expected.push_back(c.d * float(sc[e / 16]) * float(v[e]));
  });
}

// q4_K/q5_K's 12 bytes of 6-bit scales and mins for sub-blocks j = 0..7, at
// OFF. j < 4: scale in byte j, min in byte j + 4, bits 0-5. j >= 4: low
// nibbles in byte j + 4 (scale low, min high), top 2 bits in bits 6-7 of
// byte j - 4 (scale) and byte j (min).
void put_scales_k4(BlockBytes& b, size_t off, const std::vector<int>& sc, const std::vector<int>& mn) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      b.put_bits(off + j, 0, 6, sc[j]);
      b.put_bits(off + j + 4, 0, 6, mn[j]);
    } else {
      b.put_bits(off + j + 4, 0, 4, sc[j] & 15);
      b.put_bits(off + j + 4, 4, 4, mn[j] & 15);
      b.put_bits(off + j - 4, 6, 2, sc[j] >> 4);
      b.put_bits(off + j, 6, 2, mn[j] >> 4);
    }
  }
}

// q4_K: [d f16][dmin f16][scales 12][qs 128]. Sub-block j = e / 32; quant
// in qs[32 * (e / 64) + e % 32], low nibble for even j, high for odd j.
// q5_K: [d f16][dmin f16][scales 12][qh 32][qs 128]: the same plus the 5th
// bit of e in qh[e % 32] at bit e / 32. x = d * scale * q - dmin * min.
void check_q45_k(TensorType type, uint32_t seed) {
  const bool five = type == TensorType::Q5_K;
  check_known_answer(type, seed, [five](BlockCtx c) {
    auto sc = random_ints(c.rng, 8, 0, 63), mn = random_ints(c.rng, 8, 0, 63);
    sc[7 - c.index] = 63;  // all high bits set somewhere in the upper half
    mn[4 + c.index] = 63;
    const auto q = random_ints(c.rng, 256, 0, five ? 31 : 15);
    c.b.put_u16(c.base, f16_bits(c.d));
    c.b.put_u16(c.base + 2, f16_bits(c.dmin));
    put_scales_k4(c.b, c.base + 4, sc, mn);
    const size_t qs = c.base + (five ? 48 : 16);
    for (int e = 0; e < 256; ++e) {
      c.b.put_bits(qs + 32 * (e / 64) + e % 32, 4 * ((e / 32) % 2), 4, q[e] & 15);
      if (five) c.b.put_bits(c.base + 16 + e % 32, e / 32, 1, q[e] >> 4);
    }
    for (int e = 0; e < 256; ++e) {
      c.expected.push_back(c.d * static_cast<float>(sc[e / 32]) * static_cast<float>(q[e]) -
                           c.dmin * static_cast<float>(mn[e / 32]));
    }
  });
}

TEST(QuantKnownAnswer, Q4_K) { check_q45_k(TensorType::Q4_K, 44); }
TEST(QuantKnownAnswer, Q5_K) { check_q45_k(TensorType::Q5_K, 55); }

// q6_K: [ql 128][qh 64][scales 16 x int8][d f16]. Quant v in [-32, 31]
// stored as u = v + 32: low 4 bits in ql[64h + 32 * (k % 2) + l] (low
// nibble for k < 2, high for k >= 2), top 2 bits in qh[32h + l] at bit 2k.
// x = d * scales[e / 16] * v.
TEST(QuantKnownAnswer, Q6_K) {
  check_known_answer(TensorType::Q6_K, 66, [](BlockCtx c) {
    auto sc = random_ints(c.rng, 16, -128, 127);
    sc[c.index] = -128;
    sc[15 - c.index] = 127;
    const auto v = random_ints(c.rng, 256, -32, 31);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32, u = v[e] + 32;
      c.b.put_bits(c.base + 64 * h + 32 * (k % 2) + l, 4 * (k / 2), 4, u & 15);
      c.b.put_bits(c.base + 128 + 32 * h + l, 2 * k, 2, u >> 4);
    }
    for (int j = 0; j < 16; ++j) c.b.put_u8(c.base + 192 + j, sc[j]);
    c.b.put_u16(c.base + 208, f16_bits(c.d));
    for (int e = 0; e < 256; ++e) c.expected.push_back(c.d * float(sc[e / 16]) * float(v[e]));
  });
}

// Float formats decode with the core conversions: every f16/bf16 bit pattern
// (NaNs and -0 compared bitwise), and f32 as a plain copy from an odd address.
TEST(QuantKnownAnswer, FloatFormats) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> got(all.size());
  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    ASSERT_TRUE(dequantize(t, all.data(), got.data(), static_cast<int64_t>(all.size())).ok());
    for (size_t i = 0; i < all.size(); ++i) {
      const float want = t == TensorType::F16 ? f16_to_f32(all[i]) : bf16_to_f32(all[i]);
      ASSERT_EQ(std::memcmp(&got[i], &want, 4), 0) << type_name(t) << " bits " << i;
    }
  }
  const float values[] = {0.0f, -0.0f, 1.0f, -2.5f, 1e-40f, -1e30f};
  uint8_t raw[1 + sizeof(values)];
  std::memcpy(raw + 1, values, sizeof(values));
  ASSERT_TRUE(dequantize(TensorType::F32, raw + 1, got.data(), 6).ok());
  EXPECT_EQ(std::memcmp(got.data(), values, sizeof(values)), 0);
}

// Block structs are read without alignment assumptions: decoding from an
// odd address gives the same bits (random bytes, so NaNs are compared
// bitwise too).
TEST(QuantKnownAnswer, UnalignedSourceDecodesTheSame) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (TensorType t : {TensorType::F16, TensorType::Q4_0, TensorType::Q5_1, TensorType::Q3_K, TensorType::Q5_K,
                       TensorType::Q6_K, TensorType::Q8_K}) {
    const int64_t n = 512;
    const size_t size = *row_bytes(t, n);
    std::vector<uint8_t> buf(size + 1);
    for (auto& x : buf) x = static_cast<uint8_t>(byte(rng));
    const std::vector<uint8_t> aligned(buf.begin() + 1, buf.end());
    std::vector<float> a(n), b(n);
    ASSERT_TRUE(dequantize(t, aligned.data(), a.data(), n).ok());
    ASSERT_TRUE(dequantize(t, buf.data() + 1, b.data(), n).ok());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(float)), 0) << type_name(t);
  }
}

// ---- round trips -----------------------------------------------------------------

// Largest f16 magnitude a quantizer may store for an exact scale v >= 0: the
// quantizers round scales up to f16 (so the largest element stays in range),
// which costs at most one f16 ulp: 2^-10 relative when normal, 2^-24
// absolute when subnormal.
double up16(double v) { return v * (1.0 + 0x1p-10) + 0x1p-24; }

double absmax(const float* x, int n) {
  double m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(x[i])));
  return m;
}

// Per-element error bound for element I of the type's block X.
using BoundFn = std::function<double(const float* x, int i)>;

// q8_0 / q4_0 / q5_0: d = max / -nmax rounded up to f16 (nmax = 127, 8, 16).
// q8_0 is symmetric and rounds: error <= d/2. q4_0/q5_0 put the largest
// magnitude on -nmax, so a value of the opposite sign near amax needs +nmax
// and is clamped to nmax - 1: error <= d.
BoundFn symmetric_bound(double nmax, bool clamps) {
  return [=](const float* x, int) {
    const double d = up16(absmax(x, 32) / nmax);
    return (clamps ? d : d / 2) * (1 + 1e-6);
  };
}

// q4_1 / q5_1: m = block min rounded to nearest f16 (error em), d = (max -
// m) / nmax rounded up. Values within [m, max] round to within d/2; values
// below m (when m rounded up) are off by at most em.
BoundFn affine_bound(double nmax) {
  return [=](const float* x, int) {
    const double mn = *std::min_element(x, x + 32), mx = *std::max_element(x, x + 32);
    const double em = std::fabs(mn) * 0x1p-11 + 0x1p-25;
    return up16((mx - mn + em) / nmax) / 2 + em + (std::fabs(mn) + std::fabs(mx)) * 1e-6;
  };
}

// K-quants, per element of sub-block j (LEN elements): the search may trade
// the sub-block's extremes for a lower weighted squared error (as ggml's
// does), so allow two steps of the sub-block's own plain grid (range / nmax
// for the affine formats, amax / nmax for the symmetric ones); plus the
// rounding of the sub-block scale and min to SCALE_MAX levels of the
// super-block scales, which moves the ends of the grid by about
// nmax * d/2 + dmin/2 <= 1.5 * amax / scale_max; plus the f16 floor of the
// super-block scale (2^-24), which limits tiny inputs.
BoundFn k_bound(int len, double nmax, bool affine, double scale_max) {
  return [=](const float* x, int i) {
    const float* sub = x + (i / len) * len;
    double step;
    if (affine) {
      const double lo = std::min(0.0, static_cast<double>(*std::min_element(sub, sub + len)));
      step = (*std::max_element(sub, sub + len) - lo) / nmax;
    } else {
      step = absmax(sub, len) / nmax;
    }
    return 2 * step + 1.5 * absmax(x, 256) / scale_max + (nmax + 2) * 0x1p-24;
  };
}

struct RoundTripCase {
  TensorType type;
  BoundFn bound;
  double rms_ratio;  // RMS error / RMS of N(0, 1) data must stay below this
};

// RMS limits: ~1.2x what the quantizers reach on N(0, 1). For reference, the
// uniform rounding error of a step s is s / sqrt(12); e.g. q4_0 with 32
// Gaussian values has amax ~ 2.1 so s ~ 0.26 and RMS ~ 0.077 before clamping.
std::vector<RoundTripCase> round_trip_cases() {
  return {
      {TensorType::Q8_0, symmetric_bound(127, false), 0.0065},
      {TensorType::Q4_0, symmetric_bound(8, true), 0.105},
      {TensorType::Q5_0, symmetric_bound(16, true), 0.052},
      {TensorType::Q4_1, affine_bound(15), 0.095},
      {TensorType::Q5_1, affine_bound(31), 0.046},
      {TensorType::Q8_K, [](const float* x, int) { return absmax(x, 256) / 127 / 2 * (1 + 1e-5); }, 0.0085},
      {TensorType::Q2_K, k_bound(16, 3, true, 15), 0.33},
      {TensorType::Q3_K, k_bound(16, 4, false, 32), 0.185},
      {TensorType::Q4_K, k_bound(32, 15, true, 63), 0.087},
      {TensorType::Q5_K, k_bound(32, 31, true, 63), 0.045},
      {TensorType::Q6_K, k_bound(16, 32, false, 128), 0.022},
  };
}

struct Dataset {
  std::string name;
  std::vector<float> x;
};

// 3 super-blocks (= 24 32-element blocks) per dataset.
std::vector<Dataset> datasets() {
  constexpr int n = 3 * 256;
  std::mt19937 rng(12345);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto make = [&](const std::string& name, const std::function<float(int)>& f) {
    Dataset d{name, std::vector<float>(n)};
    for (int i = 0; i < n; ++i) d.x[i] = f(i);
    return d;
  };
  std::vector<Dataset> out;
  out.push_back(make("normal", [&](int) { return normal(rng); }));
  out.push_back(make("uniform", [&](int) { return uniform(rng); }));
  for (float mag : {1e-6f, 1e-3f, 1e3f, 1e4f}) {
    out.push_back(make("normal*" + std::to_string(mag), [&](int) { return mag * normal(rng); }));
  }
  out.push_back(make("positive", [&](int) { return 1.0f + 0.5f * uniform(rng); }));
  out.push_back(make("negative", [&](int) { return -1.0f - 0.5f * uniform(rng); }));
  out.push_back(make("constant", [&](int i) { return i < 256 ? 0.7f : i < 512 ? -0.3f : 1e3f; }));
  out.push_back(make("zero block", [&](int i) { return i < 256 ? 0.0f : normal(rng); }));
  out.push_back(make("outlier", [&](int i) { return i == 100 ? 40.0f : i == 600 ? -60.0f : normal(rng); }));
  // Neighbouring sub-blocks four orders of magnitude apart: stresses the
  // rounding of sub-block scales to the super-block grid.
  out.push_back(make("mixed scales", [&](int i) { return std::pow(10.0f, float(i / 32 % 5 - 2)) * normal(rng); }));
  return out;
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(*row_bytes(type, x.size()), 0xcd);
  std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(quantize(type, x.data(), q.data(), n).ok());
  EXPECT_TRUE(dequantize(type, q.data(), y.data(), n).ok());
  return y;
}

TEST(QuantRoundTrip, ErrorWithinPerElementBound) {
  const auto data = datasets();
  for (const auto& c : round_trip_cases()) {
    const int block = static_cast<int>(type_info(c.type).block_size);
    for (const auto& d : data) {
      const auto y = round_trip(c.type, d.x);
      double worst = 0;  // largest error / bound, reported once per dataset
      size_t at = 0;
      for (size_t i = 0; i < d.x.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << type_name(c.type) << " " << d.name << " element " << i;
        const double err = std::fabs(static_cast<double>(y[i]) - d.x[i]);
        const double ratio = err / c.bound(d.x.data() + (i / block) * block, static_cast<int>(i % block));
        if (ratio > worst) worst = ratio, at = i;
      }
      EXPECT_LE(worst, 1.0) << type_name(c.type) << " " << d.name << " element " << at << ": x " << d.x[at] << " y "
                            << y[at];
    }
  }
}

TEST(QuantRoundTrip, RmsErrorOnGaussianData) {
  std::mt19937 rng(777);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 32);
  for (float& v : x) v = normal(rng);
  for (const auto& c : round_trip_cases()) {
    const auto y = round_trip(c.type, x);
    double se = 0, sx = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      se += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
      sx += static_cast<double>(x[i]) * x[i];
    }
    const double ratio = std::sqrt(se / sx);
    EXPECT_LT(ratio, c.rms_ratio) << type_name(c.type);
    EXPECT_GT(ratio, 0.0) << type_name(c.type);  // a lossy format that loses nothing is suspicious
  }
}

TEST(QuantRoundTrip, ZeroInputGivesZeroOutput) {
  const std::vector<float> x(512, 0.0f);
  for (const auto& c : round_trip_cases()) {
    const auto y = round_trip(c.type, x);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 0.0f) << type_name(c.type) << " " << i;
  }
}

// Finite inputs never decode to inf or NaN, however large or small: f16
// scales saturate at 65504 instead of overflowing (the values then clamp).
TEST(QuantRoundTrip, ExtremeFiniteInputsStayFinite) {
  const float big = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
  const float pattern[] = {big, -big, tiny, -1e30f, 1e-30f, 0.0f, 1.0f, 3e19f, -1e20f, -2 * tiny};
  std::vector<float> x(3 * 256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i < 512 ? pattern[i % 10] : tiny * static_cast<float>(i % 5);
  for (const auto& c : round_trip_cases()) {
    const auto y = round_trip(c.type, x);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << type_name(c.type) << " " << i;
  }
}

// Quantizing 3 blocks at once equals quantizing them one by one: each block
// is independent and written at the right offset.
TEST(QuantRoundTrip, BlocksAreIndependent) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& c : round_trip_cases()) {
    const size_t block = type_info(c.type).block_size, bytes = type_info(c.type).block_bytes;
    std::vector<float> x(3 * block);
    for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * static_cast<float>(1 + i / block);
    std::vector<uint8_t> all(3 * bytes), one(bytes);
    ASSERT_TRUE(quantize(c.type, x.data(), all.data(), static_cast<int64_t>(x.size())).ok());
    for (size_t b = 0; b < 3; ++b) {
      ASSERT_TRUE(quantize(c.type, x.data() + b * block, one.data(), static_cast<int64_t>(block)).ok());
      EXPECT_EQ(std::memcmp(one.data(), all.data() + b * bytes, bytes), 0) << type_name(c.type) << " block " << b;
    }
  }
}

TEST(QuantRoundTrip, FloatFormatsMatchCoreConversions) {
  std::mt19937 rng(16);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(300);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * std::pow(10.0f, static_cast<float>(i % 12) - 6.0f);
  x[0] = -0.0f;
  x[1] = 65520.0f;  // rounds to inf in f16, by the core contract
  x[2] = 1e-8f;     // f16 subnormal
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> f32(4 * x.size());
  ASSERT_TRUE(quantize(TensorType::F32, x.data(), f32.data(), n).ok());
  EXPECT_EQ(std::memcmp(f32.data(), x.data(), f32.size()), 0);
  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    const auto to = t == TensorType::F16 ? f32_to_f16 : f32_to_bf16;
    const auto from = t == TensorType::F16 ? f16_to_f32 : bf16_to_f32;
    std::vector<uint16_t> raw(x.size());
    std::vector<float> y(x.size());
    ASSERT_TRUE(quantize(t, x.data(), raw.data(), n).ok());
    ASSERT_TRUE(dequantize(t, raw.data(), y.data(), n).ok());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(raw[i], to(x[i])) << type_name(t) << " " << i;  // little-endian host, as the library
      ASSERT_EQ(y[i], from(to(x[i]))) << type_name(t) << " " << i;
    }
  }
}

// ---- ggml conventions in the quantized bytes ---------------------------------------

std::vector<uint8_t> quantize_normal(TensorType type, size_t n, uint32_t seed, size_t at, float value) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  x[at] = value;  // the value of largest magnitude
  std::vector<uint8_t> q(*row_bytes(type, n));
  EXPECT_TRUE(quantize(type, x.data(), q.data(), static_cast<int64_t>(n)).ok());
  return q;
}

float f16_at(const std::vector<uint8_t>& b, size_t off) { return f16_to_f32(uint16_t(b[off] | (b[off + 1] << 8))); }

// q8_0: d = amax / 127 (within an f16 ulp), the largest element on +-127.
// q4_0: d = max / -8 with max the signed value of largest magnitude, which
// lands on quant 0 (= -8 * d).
TEST(QuantConventions, SymmetricBlocksPutTheLargestValueOnTheEdge) {
  const auto q8 = quantize_normal(TensorType::Q8_0, 32, 1, 9, -5.0f);
  EXPECT_GE(f16_at(q8, 0), 5.0f / 127);
  EXPECT_LE(f16_at(q8, 0), 5.0f / 127 * (1 + 0x1p-10f));
  EXPECT_EQ(static_cast<int8_t>(q8[2 + 9]), -127);
  for (float sign : {1.0f, -1.0f}) {
    const auto q4 = quantize_normal(TensorType::Q4_0, 32, 2, 20, 4.0f * sign);
    EXPECT_EQ(f16_at(q4, 0), -0.5f * sign);  // 4 / -8, exact in f16
    EXPECT_EQ(q4[2 + 20 - 16] >> 4, 0);
  }
}

// q4_K/q5_K put the largest sub-block scale on the top 6-bit level (63);
// q6_K puts the largest-magnitude sub-block scale on -128; q8_K stores the
// f32 scale max / -127 and bsums = sums of 16 quants.
TEST(QuantConventions, KQuantScales) {
  for (TensorType t : {TensorType::Q4_K, TensorType::Q5_K}) {
    const auto q = quantize_normal(t, 256, 3, 0, 0.5f);
    int max_scale = 0;
    for (int j = 0; j < 8; ++j) {  // layout as in QuantKnownAnswer.Q4_K
      max_scale = std::max(max_scale, j < 4 ? (q[4 + j] & 63) : ((q[8 + j] & 15) | ((q[j] >> 6) << 4)));
    }
    EXPECT_EQ(max_scale, 63) << type_name(t);
  }
  const auto q6 = quantize_normal(TensorType::Q6_K, 256, 3, 0, 0.5f);
  EXPECT_EQ(*std::min_element(q6.begin() + 192, q6.begin() + 208,
                              [](uint8_t a, uint8_t b) { return static_cast<int8_t>(a) < static_cast<int8_t>(b); }),
            0x80);
  const auto q8 = quantize_normal(TensorType::Q8_K, 256, 4, 77, 9.0f);
  float d;
  std::memcpy(&d, q8.data(), 4);
  EXPECT_FLOAT_EQ(d, 9.0f / -127);
  EXPECT_EQ(static_cast<int8_t>(q8[4 + 77]), -127);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int j = 0; j < 16; ++j) sum += static_cast<int8_t>(q8[4 + 16 * g + j]);
    EXPECT_EQ(static_cast<int16_t>(q8[260 + 2 * g] | (q8[261 + 2 * g] << 8)), sum) << g;
  }
}

// ---- errors and capabilities -----------------------------------------------------------

TEST(QuantErrors, NotAMultipleOfTheBlockSize) {
  std::vector<uint8_t> bytes(4096);
  std::vector<float> f(1024);
  const Status a = dequantize(TensorType::Q4_K, bytes.data(), f.data(), 100);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.message().find("q4_k"), std::string::npos) << a.message();
  EXPECT_NE(a.message().find("256"), std::string::npos) << a.message();
  const Status b = quantize(TensorType::Q8_0, f.data(), bytes.data(), 33);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.message().find("q8_0"), std::string::npos) << b.message();
  EXPECT_FALSE(dequantize(TensorType::Q4_0, bytes.data(), f.data(), -32).ok());
  EXPECT_TRUE(dequantize(TensorType::Q6_K, nullptr, nullptr, 0).ok());  // nothing to do is fine
  EXPECT_TRUE(quantize(TensorType::Q4_0, nullptr, nullptr, 0).ok());
}

TEST(QuantErrors, UnsupportedTypeIsNamed) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> f(256);
  using enum TensorType;
  for (TensorType t : {IQ2_XXS, Q8_1, IQ4_NL, I32, TQ2_0}) {
    EXPECT_FALSE(can_dequantize(t) || can_quantize(t)) << type_name(t);
    const std::string name(type_name(t));
    const Status a = dequantize(t, bytes.data(), f.data(), 256), b = quantize(t, f.data(), bytes.data(), 256);
    ASSERT_FALSE(a.ok() || b.ok()) << name;
    EXPECT_NE(a.message().find(name), std::string::npos) << a.message();
    EXPECT_NE(b.message().find(name), std::string::npos) << b.message();
  }
  const Status c = dequantize(static_cast<TensorType>(99), bytes.data(), f.data(), 32);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.message().find("99"), std::string::npos) << c.message();
}

TEST(QuantCapabilities, DocumentedTypes) {
  using enum TensorType;
  for (TensorType t : {F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}) {
    EXPECT_TRUE(can_dequantize(t)) << type_name(t);
  }
  for (TensorType t : {F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K}) EXPECT_TRUE(can_quantize(t)) << type_name(t);
}

}  // namespace
}  // namespace tandem::gguf

namespace tandem::gguf {
namespace {

// An empty tensor has no buffers: zero elements must succeed without
// touching (null) pointers. Found by the GGUF fuzz test under UBSan.
TEST(Quant, ZeroElementsWithNullBuffers) {
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_K}) {
    EXPECT_TRUE(dequantize(t, nullptr, nullptr, 0).ok()) << type_name(t);
    EXPECT_TRUE(quantize(t, nullptr, nullptr, 0).ok()) << type_name(t);
  }
}

}  // namespace
}  // namespace tandem::gguf
