// MXFP4 (gpt-oss experts): the scalar reference codec.
#include "gguf/quant.h"
#include "gguf/reader.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace tandem::gguf {
namespace {

// [e][16 bytes]: element j in the low nibble of byte j, j + 16 in the high
// one; x = kMxfp4Values[nibble] * 2^(e - 128) (the E2M1 values doubled,
// the scale halved).
TEST(Mxfp4, KnownAnswer) {
  std::vector<uint8_t> block(17);
  block[0] = 130;  // 2^2
  for (int j = 0; j < 16; ++j) block[1 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  std::vector<float> x(32);
  ASSERT_TRUE(dequantize(TensorType::MXFP4, block.data(), x.data(), 32).ok());
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[static_cast<size_t>(j)], e2m1[j] * 8) << j;  // E2M1 value x 2^(130 - 127)
    EXPECT_EQ(x[static_cast<size_t>(j + 16)], e2m1[15 - j] * 8) << j + 16;
  }
  // The smallest exponents give subnormal scales, exactly.
  for (uint8_t e : {0, 1, 2}) {
    block[0] = e;
    ASSERT_TRUE(dequantize(TensorType::MXFP4, block.data(), x.data(), 32).ok());
    EXPECT_EQ(x[7], 12 * std::ldexp(1.0f, e - 128)) << int(e);
  }
}

TEST(Mxfp4, QuantizesToTheNearestValueOfTheBlockScale) {
  std::vector<float> x(32, 0.0f);
  x[0] = 5.0f;   // amax 5: floor(log2 5) = 2, scale 2^(2 - 3) = 0.5, 5 = 10 x 0.5: between 8 and 12
  x[1] = -1.3f;  // -2.6 doubled steps: nearest -3 (x 0.5 = -1.5)
  x[2] = 0.1f;   // rounds to 0
  x[31] = 7.0f;  // beyond 12 x 0.5 = 6: clips to 6
  std::vector<uint8_t> q(17);
  ASSERT_TRUE(quantize(TensorType::MXFP4, x.data(), q.data(), 32).ok());
  EXPECT_EQ(q[0], 2 - 3 + 128);
  std::vector<float> y(32);
  ASSERT_TRUE(dequantize(TensorType::MXFP4, q.data(), y.data(), 32).ok());
  EXPECT_EQ(y[0], 4.0f) << "10 is as far from 8 as from 12: the first in the table wins";
  EXPECT_EQ(y[1], -1.5f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[31], 6.0f);
  std::vector<float> zeros(32, 0.0f);
  ASSERT_TRUE(quantize(TensorType::MXFP4, zeros.data(), q.data(), 32).ok());
  EXPECT_EQ(q, std::vector<uint8_t>(17, 0));
}

// The tiny gpt-oss model's experts were written by ggml's quantizer: decoding
// and quantizing them again with tandem's must give the same bytes.
TEST(Mxfp4, RequantizingGgmlBlocksGivesTheSameBytes) {
  auto f = GgufFile::open(test::data_path("gptoss-tiny-random.gguf"));
  ASSERT_TRUE(f.ok()) << f.message();
  int tensors = 0;
  for (const auto& t : f->tensors()) {
    if (t.type != TensorType::MXFP4) continue;
    ++tensors;
    const int64_t n = static_cast<int64_t>(t.n_bytes / 17 * 32);
    std::vector<float> x(static_cast<size_t>(n));
    ASSERT_TRUE(dequantize(TensorType::MXFP4, t.data, x.data(), n).ok());
    std::vector<uint8_t> again(t.n_bytes);
    ASSERT_TRUE(quantize(TensorType::MXFP4, x.data(), again.data(), n).ok());
    ASSERT_EQ(std::memcmp(again.data(), t.data, t.n_bytes), 0) << t.name;
  }
  EXPECT_EQ(tensors, 12) << "3 expert tensors in each of 4 layers";
}

}  // namespace
}  // namespace tandem::gguf
