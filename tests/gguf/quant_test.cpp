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

// A byte buffer written field by field. Every bit may be written once; at
// the end expect_all_written() checks the layout described by a test
// covers every bit of the block exactly, so a test cannot silently leave a
// field at zero or write two fields over each other.
class BlockBytes {
 public:
  explicit BlockBytes(size_t n) : bytes_(n, 0), written_(n, 0) {}

  // Writes the low NBITS bits of V into byte OFF starting at bit BIT
  // (LSB = bit 0). Fields never straddle bytes in these formats.
  void put_bits(size_t off, int bit, int nbits, uint32_t v) {
    ASSERT_LT(off, bytes_.size());
    ASSERT_LE(bit + nbits, 8);
    ASSERT_LT(v, 1u << nbits) << "value does not fit its field";
    const auto mask = static_cast<uint8_t>(((1u << nbits) - 1) << bit);
    EXPECT_EQ(written_[off] & mask, 0) << "bits written twice at byte " << off;
    written_[off] |= mask;
    bytes_[off] |= static_cast<uint8_t>(v << bit);
  }
  void put_u8(size_t off, uint8_t v) { put_bits(off, 0, 8, v); }
  void put_u16(size_t off, uint16_t v) {  // little endian
    put_u8(off, static_cast<uint8_t>(v & 0xff));
    put_u8(off + 1, static_cast<uint8_t>(v >> 8));
  }
  void put_f32(size_t off, float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) put_u8(off + i, static_cast<uint8_t>(u >> (8 * i)));
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

// f16 bits of a value; the tests choose scales that f16 holds exactly unless
// they say otherwise.
uint16_t f16_bits(float v) { return f32_to_f16(v); }

// Scales for the known-answer tests. The first set is exact in f16 and
// keeps every product exact, so the expected values do not depend on the
// order of float operations. The second uses values f16 rounds, and the
// expectations then follow ggml's order of operations (which quant.h
// promises to reproduce bit for bit).
struct Scales {
  float d;
  float dmin;
};
const Scales kScaleSets[] = {{0.375f, 0.5f}, {f16_to_f32(f16_bits(0.0137f)), f16_to_f32(f16_bits(0.291f))}};

// Random integers in [lo, hi], from a fixed seed.
std::vector<int> random_ints(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> v(n);
  for (int& x : v) x = dist(rng);
  return v;
}

void expect_dequantizes_to(TensorType type, const BlockBytes& bytes, const std::vector<float>& expected) {
  ASSERT_EQ(bytes.size(), *row_bytes(type, expected.size()));
  bytes.expect_all_written();
  std::vector<float> out(expected.size(), std::numeric_limits<float>::quiet_NaN());
  ASSERT_TRUE(dequantize(type, bytes.data(), out.data(), static_cast<int64_t>(out.size())).ok());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(out[i], expected[i]) << type_name(type) << " element " << i << " (block " << i / type_info(type).block_size
                                   << ", position " << i % type_info(type).block_size << ")";
  }
}

constexpr int kBlocks = 3;  // every known-answer test decodes 3 blocks, to check block stepping

// q4_0: [d f16][qs 16 bytes]. Element j < 16 in the low nibble of qs[j],
// element j + 16 in the high nibble. x = d * (q - 8).
TEST(QuantKnownAnswer, Q4_0) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(40);
    BlockBytes b(18 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 18 * blk;
      const float d = s.d * static_cast<float>(blk + 1);  // 1x, 2x, 3x: exact in f16
      b.put_u16(base, f16_bits(d));
      const auto q = random_ints(rng, 32, 0, 15);
      for (int e = 0; e < 32; ++e) b.put_bits(base + 2 + e % 16, 4 * (e / 16), 4, q[e]);
      for (int e = 0; e < 32; ++e) expected.push_back(static_cast<float>(q[e] - 8) * d);
    }
    expect_dequantizes_to(TensorType::Q4_0, b, expected);
  }
}

// q4_1: [d f16][m f16][qs 16 bytes], nibbles as q4_0. x = d * q + m.
TEST(QuantKnownAnswer, Q4_1) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(41);
    BlockBytes b(20 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 20 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      const float m = -s.dmin * static_cast<float>(2 * blk + 1);
      b.put_u16(base, f16_bits(d));
      b.put_u16(base + 2, f16_bits(m));
      const auto q = random_ints(rng, 32, 0, 15);
      for (int e = 0; e < 32; ++e) b.put_bits(base + 4 + e % 16, 4 * (e / 16), 4, q[e]);
      for (int e = 0; e < 32; ++e) expected.push_back(static_cast<float>(q[e]) * d + m);
    }
    expect_dequantizes_to(TensorType::Q4_1, b, expected);
  }
}

// q5_0: [d f16][qh 4 bytes][qs 16 bytes]. The 5th bit of element e is bit
// e of qh read as a little-endian u32 (byte e/8, bit e%8); the low 4 bits
// are nibbles as in q4_0. x = d * (q - 16).
TEST(QuantKnownAnswer, Q5_0) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(50);
    BlockBytes b(22 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 22 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      b.put_u16(base, f16_bits(d));
      const auto q = random_ints(rng, 32, 0, 31);
      for (int e = 0; e < 32; ++e) {
        b.put_bits(base + 2 + e / 8, e % 8, 1, q[e] >> 4);
        b.put_bits(base + 6 + e % 16, 4 * (e / 16), 4, q[e] & 15);
      }
      for (int e = 0; e < 32; ++e) expected.push_back(static_cast<float>(q[e] - 16) * d);
    }
    expect_dequantizes_to(TensorType::Q5_0, b, expected);
  }
}

// q5_1: [d f16][m f16][qh 4 bytes][qs 16 bytes], bits as q5_0. x = d * q + m.
TEST(QuantKnownAnswer, Q5_1) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(51);
    BlockBytes b(24 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 24 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      const float m = s.dmin * static_cast<float>(blk) - 1.0f;
      b.put_u16(base, f16_bits(d));
      b.put_u16(base + 2, f16_bits(m));
      const auto q = random_ints(rng, 32, 0, 31);
      for (int e = 0; e < 32; ++e) {
        b.put_bits(base + 4 + e / 8, e % 8, 1, q[e] >> 4);
        b.put_bits(base + 8 + e % 16, 4 * (e / 16), 4, q[e] & 15);
      }
      for (int e = 0; e < 32; ++e) expected.push_back(static_cast<float>(q[e]) * d + f16_to_f32(f16_bits(m)));
    }
    expect_dequantizes_to(TensorType::Q5_1, b, expected);
  }
}

// q8_0: [d f16][32 x int8]. x = d * q.
TEST(QuantKnownAnswer, Q8_0) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(80);
    BlockBytes b(34 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 34 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      b.put_u16(base, f16_bits(d));
      auto q = random_ints(rng, 32, -128, 127);
      q[blk] = -128;  // the extremes, at different positions per block
      q[31 - blk] = 127;
      for (int e = 0; e < 32; ++e) b.put_u8(base + 2 + e, static_cast<uint8_t>(q[e] & 0xff));
      for (int e = 0; e < 32; ++e) expected.push_back(static_cast<float>(q[e]) * d);
    }
    expect_dequantizes_to(TensorType::Q8_0, b, expected);
  }
}

// q8_K: [d f32][256 x int8][16 x int16 bsums]. x = d * q; bsums (a dot
// product aid) do not take part, so they are filled with junk here.
TEST(QuantKnownAnswer, Q8_K) {
  std::mt19937 rng(88);
  BlockBytes b(292 * kBlocks);
  std::vector<float> expected;
  for (int blk = 0; blk < kBlocks; ++blk) {
    const size_t base = 292 * blk;
    const float d = 0.0123f * static_cast<float>(blk + 1);  // any f32: no f16 rounding
    b.put_f32(base, d);
    const auto q = random_ints(rng, 256, -128, 127);
    for (int e = 0; e < 256; ++e) b.put_u8(base + 4 + e, static_cast<uint8_t>(q[e] & 0xff));
    for (int g = 0; g < 32; ++g) b.put_u8(base + 260 + g, static_cast<uint8_t>(0xa5 ^ g));
    for (int e = 0; e < 256; ++e) expected.push_back(d * static_cast<float>(q[e]));
  }
  expect_dequantizes_to(TensorType::Q8_K, b, expected);
}

// K-quants: within a 256-element super-block, element e sits in 128-element
// half h = e / 128, 32-element column k = (e % 128) / 32, row l = e % 32.

// q2_K: [scales 16][qs 64][d f16][dmin f16]. scales[j] for sub-block j =
// e / 16: low nibble = scale, high nibble = min. 2-bit quant of e in byte
// qs[32h + l] at bit 2k. x = d * scale * q - dmin * min.
TEST(QuantKnownAnswer, Q2_K) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(20);
    BlockBytes b(84 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 84 * blk;
      const float d = s.d * static_cast<float>(blk + 1), dmin = s.dmin;
      const auto sc = random_ints(rng, 16, 0, 15), mn = random_ints(rng, 16, 0, 15), q = random_ints(rng, 256, 0, 3);
      for (int j = 0; j < 16; ++j) {
        b.put_bits(base + j, 0, 4, sc[j]);
        b.put_bits(base + j, 4, 4, mn[j]);
      }
      for (int e = 0; e < 256; ++e) b.put_bits(base + 16 + 32 * (e / 128) + e % 32, 2 * ((e % 128) / 32), 2, q[e]);
      b.put_u16(base + 80, f16_bits(d));
      b.put_u16(base + 82, f16_bits(dmin));
      for (int e = 0; e < 256; ++e) {
        const float dl = d * static_cast<float>(sc[e / 16]), ml = dmin * static_cast<float>(mn[e / 16]);
        expected.push_back(dl * static_cast<float>(q[e]) - ml);
      }
    }
    expect_dequantizes_to(TensorType::Q2_K, b, expected);
  }
}

// q3_K: [hmask 32][qs 64][scales 12][d f16]. Quant v in [-4, 3] stored as
// u = v + 4: low 2 bits like q2_K; bit 2 of u in hmask[l] at bit e / 32
// (a clear bit means "subtract 4"). Sub-block scale s in [-32, 31] stored
// as 6-bit s + 32: low nibble in byte j % 8 (low nibble for j < 8, high for
// j >= 8), top 2 bits in byte 8 + j % 4 at bit 2 * (j / 4).
// x = d * s * v.
TEST(QuantKnownAnswer, Q3_K) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(30);
    BlockBytes b(110 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 110 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      auto sc = random_ints(rng, 16, -32, 31);
      sc[blk] = -32;
      sc[15 - blk] = 31;
      const auto v = random_ints(rng, 256, -4, 3);
      for (int e = 0; e < 256; ++e) {
        const int u = v[e] + 4;
        b.put_bits(base + 32 + 32 * (e / 128) + e % 32, 2 * ((e % 128) / 32), 2, u & 3);
        b.put_bits(base + e % 32, e / 32, 1, u >> 2);
      }
      for (int j = 0; j < 16; ++j) {
        const int u = sc[j] + 32;
        b.put_bits(base + 96 + j % 8, j < 8 ? 0 : 4, 4, u & 15);
        b.put_bits(base + 96 + 8 + j % 4, 2 * (j / 4), 2, u >> 4);
      }
      b.put_u16(base + 108, f16_bits(d));
      for (int e = 0; e < 256; ++e) {
        const float dl = d * static_cast<float>(sc[e / 16]);
        expected.push_back(dl * static_cast<float>(v[e]));
      }
    }
    expect_dequantizes_to(TensorType::Q3_K, b, expected);
  }
}

// Writes q4_K/q5_K's 12 bytes of 6-bit scales and mins (sub-block j of 8)
// at OFF. j < 4: scale in byte j, min in byte j + 4, bits 0-5. j >= 4: low
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

// q4_K: [d f16][dmin f16][scales 12][qs 128]. Sub-block j = e / 32. Quant
// of e in qs[32 * (e / 64) + e % 32], low nibble for even j, high for odd.
// x = d * scale * q - dmin * min.
TEST(QuantKnownAnswer, Q4_K) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(44);
    BlockBytes b(144 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 144 * blk;
      const float d = s.d * static_cast<float>(blk + 1), dmin = s.dmin;
      auto sc = random_ints(rng, 8, 0, 63), mn = random_ints(rng, 8, 0, 63);
      sc[7 - blk] = 63;  // all high bits set somewhere in the upper half
      mn[4 + blk] = 63;
      const auto q = random_ints(rng, 256, 0, 15);
      b.put_u16(base, f16_bits(d));
      b.put_u16(base + 2, f16_bits(dmin));
      put_scales_k4(b, base + 4, sc, mn);
      for (int e = 0; e < 256; ++e) b.put_bits(base + 16 + 32 * (e / 64) + e % 32, 4 * ((e / 32) % 2), 4, q[e]);
      for (int e = 0; e < 256; ++e) {
        const float dl = d * static_cast<float>(sc[e / 32]), ml = dmin * static_cast<float>(mn[e / 32]);
        expected.push_back(dl * static_cast<float>(q[e]) - ml);
      }
    }
    expect_dequantizes_to(TensorType::Q4_K, b, expected);
  }
}

// q5_K: [d f16][dmin f16][scales 12][qh 32][qs 128]. Low 4 bits as q4_K;
// 5th bit of e in qh[e % 32] at bit e / 32. x = d * scale * q - dmin * min.
TEST(QuantKnownAnswer, Q5_K) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(55);
    BlockBytes b(176 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 176 * blk;
      const float d = s.d * static_cast<float>(blk + 1), dmin = s.dmin;
      auto sc = random_ints(rng, 8, 0, 63), mn = random_ints(rng, 8, 0, 63);
      sc[4 + blk] = 63;
      mn[7 - blk] = 63;
      const auto q = random_ints(rng, 256, 0, 31);
      b.put_u16(base, f16_bits(d));
      b.put_u16(base + 2, f16_bits(dmin));
      put_scales_k4(b, base + 4, sc, mn);
      for (int e = 0; e < 256; ++e) {
        b.put_bits(base + 16 + e % 32, e / 32, 1, q[e] >> 4);
        b.put_bits(base + 48 + 32 * (e / 64) + e % 32, 4 * ((e / 32) % 2), 4, q[e] & 15);
      }
      for (int e = 0; e < 256; ++e) {
        const float dl = d * static_cast<float>(sc[e / 32]), ml = dmin * static_cast<float>(mn[e / 32]);
        expected.push_back(dl * static_cast<float>(q[e]) - ml);
      }
    }
    expect_dequantizes_to(TensorType::Q5_K, b, expected);
  }
}

// q6_K: [ql 128][qh 64][scales 16 x int8][d f16]. Quant v in [-32, 31]
// stored as u = v + 32: low 4 bits in ql[64h + 32 * (k % 2) + l] (low
// nibble for k < 2, high for k >= 2), top 2 bits in qh[32h + l] at bit 2k.
// Sub-block scale: scales[e / 16]. x = d * scale * v (d * scale first).
TEST(QuantKnownAnswer, Q6_K) {
  for (const Scales& s : kScaleSets) {
    std::mt19937 rng(66);
    BlockBytes b(210 * kBlocks);
    std::vector<float> expected;
    for (int blk = 0; blk < kBlocks; ++blk) {
      const size_t base = 210 * blk;
      const float d = s.d * static_cast<float>(blk + 1);
      auto sc = random_ints(rng, 16, -128, 127);
      sc[blk] = -128;
      sc[15 - blk] = 127;
      const auto v = random_ints(rng, 256, -32, 31);
      for (int e = 0; e < 256; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32, u = v[e] + 32;
        b.put_bits(base + 64 * h + 32 * (k % 2) + l, 4 * (k / 2), 4, u & 15);
        b.put_bits(base + 128 + 32 * h + l, 2 * k, 2, u >> 4);
      }
      for (int j = 0; j < 16; ++j) b.put_u8(base + 192 + j, static_cast<uint8_t>(sc[j] & 0xff));
      b.put_u16(base + 208, f16_bits(d));
      for (int e = 0; e < 256; ++e) expected.push_back(d * static_cast<float>(sc[e / 16]) * static_cast<float>(v[e]));
    }
    expect_dequantizes_to(TensorType::Q6_K, b, expected);
  }
}

// Float formats decode with the core conversions, from unaligned bytes too.
TEST(QuantKnownAnswer, FloatFormats) {
  const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.1415926f, -1e30f};
  std::vector<uint8_t> raw(1 + 4 * values.size());
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(raw.data() + 1 + 4 * i, &values[i], 4);
  std::vector<float> out(values.size());
  ASSERT_TRUE(dequantize(TensorType::F32, raw.data() + 1, out.data(), static_cast<int64_t>(out.size())).ok());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(std::memcmp(&out[i], &values[i], 4), 0);

  for (TensorType t : {TensorType::F16, TensorType::BF16}) {
    const std::vector<uint16_t> bits = {0x0000, 0x8000, 0x3c00, 0xc0a0, 0x7bff, 0x0001, 0x4248, 0x7c00, 0x3f80, 0xff7f};
    std::vector<uint8_t> bytes(1 + 2 * bits.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      bytes[1 + 2 * i] = static_cast<uint8_t>(bits[i] & 0xff);
      bytes[2 + 2 * i] = static_cast<uint8_t>(bits[i] >> 8);
    }
    std::vector<float> got(bits.size());
    ASSERT_TRUE(dequantize(t, bytes.data() + 1, got.data(), static_cast<int64_t>(got.size())).ok());
    for (size_t i = 0; i < bits.size(); ++i) {
      EXPECT_EQ(got[i], t == TensorType::F16 ? f16_to_f32(bits[i]) : bf16_to_f32(bits[i])) << type_name(t) << " " << i;
    }
  }
}

// Block structs are read without alignment assumptions: decoding from an
// odd address gives the same result.
TEST(QuantKnownAnswer, UnalignedSourceDecodesTheSame) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q5_1, TensorType::Q3_K, TensorType::Q6_K, TensorType::Q8_K}) {
    const int64_t n = 512;
    const size_t size = *row_bytes(t, n);
    std::vector<uint8_t> buf(size + 1);
    for (auto& x : buf) x = static_cast<uint8_t>(byte(rng));
    if (t == TensorType::Q8_K) {  // keep the f32 scales finite
      const float d = 0.5f;
      std::memcpy(buf.data() + 1, &d, 4);
      std::memcpy(buf.data() + 1 + 292, &d, 4);
    }
    // Keep f16 scales finite: clear the exponent's top bit of every f16 is
    // format specific, so instead compare NaN-aware.
    std::vector<uint8_t> aligned(buf.begin() + 1, buf.end());
    std::vector<float> a(n), b(n);
    ASSERT_TRUE(dequantize(t, aligned.data(), a.data(), n).ok());
    ASSERT_TRUE(dequantize(t, buf.data() + 1, b.data(), n).ok());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), n * sizeof(float)), 0) << type_name(t);
  }
}

}  // namespace
}  // namespace tandem::gguf
