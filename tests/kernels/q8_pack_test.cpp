// Q8_0 and Q4_0 matrices repacked for the decode kernels (kernels/q8_pack.h): the
// packing loses nothing, and every kernel path (16-row and 8-row decode,
// prepared tiles for batches, the generic path, every SIMD target) gives
// the same bits as on the GGUF layout.
#include "kernels/q8_pack.h"

#include "gguf/quant.h"
#include "kernels/matmul.h"
#include "matmul_test_data.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstring>
#include <string>
#include <vector>

namespace tandem::kernels {
namespace {

using gguf::TensorType;
using test_data::make_acts;
using test_data::make_quant_weights;

struct Packed {
  test_data::QuantWeights plain, packed;
};

Packed make_pair(TensorType type, int group, int64_t n, int64_t k, uint32_t seed, bool raw) {
  Packed p{make_quant_weights(type, n, k, seed, raw), make_quant_weights(type, n, k, seed, raw)};
  p.packed.m.packed_rows = pack_rows(type, group, p.packed.bytes.data(), n, k);
  p.packed.m.pack_group = group;
  return p;
}

struct Layout {
  TensorType type;
  int group;
};
constexpr Layout kLayouts[] = {
    {TensorType::Q8_0, 16}, {TensorType::Q8_0, 8}, {TensorType::Q4_0, 16}, {TensorType::Q4_0, 8}};

std::string name_of(const Layout& l) { return std::string(gguf::type_name(l.type)) + "/" + std::to_string(l.group); }

TEST(Q8Pack, PacksWholeGroupsAndLosesNothing) {
  EXPECT_FALSE(packable(TensorType::Q4_K));
  EXPECT_EQ(pack_rows(TensorType::MXFP4, 16, nullptr, 64, 64), 0);
  for (const Layout& layout : kLayouts)
    for (int64_t n : {1, 15, 16, 37, 87}) {
      SCOPED_TRACE(name_of(layout));
      const int64_t k = 96;
      const Packed p = make_pair(layout.type, layout.group, n, k, 3, true);
      // Split over two threads: the same bytes.
      ThreadPool pool(2);
      auto split = make_quant_weights(layout.type, n, k, 3, true);
      EXPECT_EQ(pack_rows(layout.type, layout.group, split.bytes.data(), n, k, &pool), p.packed.m.packed_rows);
      EXPECT_EQ(split.bytes, p.packed.bytes);
      EXPECT_EQ(p.packed.m.packed_rows, n / layout.group * layout.group) << n;
      const size_t rb = p.plain.m.row_bytes;
      // Rows past the last whole group are left as they were.
      const size_t tail = static_cast<size_t>(p.packed.m.packed_rows) * rb;
      EXPECT_EQ(0, std::memcmp(p.plain.bytes.data() + tail, p.packed.bytes.data() + tail,
                               static_cast<size_t>(n) * rb - tail));
      if (n >= layout.group) {
        EXPECT_NE(0, std::memcmp(p.plain.bytes.data(), p.packed.bytes.data(), static_cast<size_t>(layout.group) * rb))
            << "the first group moved";
      }
      std::vector<uint8_t> row(rb);
      std::vector<float> a(static_cast<size_t>(k)), b(static_cast<size_t>(k));
      for (int64_t r = 0; r < n; ++r) {
        copy_gguf_row(p.packed.m, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), p.plain.bytes.data() + static_cast<size_t>(r) * rb, rb))
            << n << " row " << r;
        dequantize_row(p.plain.m, r, a.data());
        dequantize_row(p.packed.m, r, b.data());
        ASSERT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(float) * a.size())) << n << " row " << r;
      }
    }
}

// The packed and the plain matrix through matmul(): the same bits for M =
// 1..16, 35, 64 (decode kernels, prepared tiles), 1 and 2 threads, every
// SIMD target this CPU runs, quantized and raw weights, ragged N.
TEST(Q8Pack, EveryPathGivesTheSameBits) {
  ThreadPool one(1), two(2);
  // 0 first: the default dispatch (this test's own target list lacks
  // AVX3_DL, which matmul_q8.cpp compiles for itself: the 16-row kernel).
  std::vector<int64_t> targets{0};
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) targets.push_back(t);
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string target_name = target == 0 ? std::string(matmul_target_name()) : hwy::TargetName(target);
    SCOPED_TRACE(target_name);
    for (const Layout& layout : kLayouts)
      for (bool raw : {false, true}) {
        for (auto [n, k] : {std::pair<int64_t, int64_t>{16, 32}, {37, 256}, {87, 1024}, {128, 96}}) {
          const Packed p = make_pair(layout.type, layout.group, n, k, static_cast<uint32_t>(n + k), raw);
          MatmulScratch scratch;
          scratch.reserve(64, k, 2);
          for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 35, 64}) {
            const auto x = make_acts(m, k, static_cast<uint32_t>(m * 7 + k));
            for (ThreadPool* pool : {&one, &two}) {
              std::vector<float> a(static_cast<size_t>(m * n)), b(a.size());
              matmul(p.plain.m, x.data(), m, k, a.data(), n, *pool, scratch);
              matmul(p.packed.m, x.data(), m, k, b.data(), n, *pool, scratch);
              test_data::expect_same_output_bits(a, b, m, n,
                                                 target_name + " " + name_of(layout) + " N=" + std::to_string(n) +
                                                     " K=" + std::to_string(k) + " M=" + std::to_string(m) +
                                                     (raw ? " raw" : "") + " threads " + std::to_string(pool->size()),
                                                 "plain", "packed");
              if (HasFatalFailure()) return hwy::SetSupportedTargetsForTest(0);
            }
          }
        }
      }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The generic path (f32 activations) reads packed rows through the same
// unpacking as dequantize_row.
TEST(Q8Pack, GenericPathGivesTheSameBits) {
  ThreadPool pool(2);
  const int64_t n = 37, k = 256, m = 5;
  for (const Layout& layout : kLayouts) {
    const Packed p = make_pair(layout.type, layout.group, n, k, 9, false);
    const auto x = make_acts(m, k, 10);
    MatmulScratch scratch;
    scratch.reserve(m, k, 2);
    std::vector<float> a(static_cast<size_t>(m * n)), b(a.size());
    set_f32_activations(true);
    matmul(p.plain.m, x.data(), m, k, a.data(), n, pool, scratch);
    matmul(p.packed.m, x.data(), m, k, b.data(), n, pool, scratch);
    set_f32_activations(false);
    test_data::expect_same_output_bits(a, b, m, n, std::string("f32 activations ") + name_of(layout), "plain",
                                       "packed");
  }
}

// Affine matrices (MLX folders: Q4_0/Q8_0 codes + per-group offsets) pack
// their codes; the offsets term is added as before.
TEST(Q8Pack, AffineOffsetsStillAdd) {
  ThreadPool pool(2);
  const int64_t n = 48, k = 128, m = 3, group = 64;
  for (const Layout& layout : kLayouts) {
    Packed p = make_pair(layout.type, layout.group, n, k, 14, false);
    std::vector<float> offsets(static_cast<size_t>(k / group * n));
    for (size_t i = 0; i < offsets.size(); ++i) offsets[i] = 0.01f * static_cast<float>(i % 17) - 0.05f;
    for (Matrix* w : {&p.plain.m, &p.packed.m}) {
      w->offsets = offsets.data();
      w->offset_group = group;
      w->offset_stride = n;
    }
    const auto x = make_acts(m, k, 15);
    MatmulScratch scratch;
    scratch.reserve(m, k, 2);
    std::vector<float> a(static_cast<size_t>(m * n)), b(a.size());
    matmul(p.plain.m, x.data(), m, k, a.data(), n, pool, scratch);
    matmul(p.packed.m, x.data(), m, k, b.data(), n, pool, scratch);
    test_data::expect_same_output_bits(a, b, m, n, std::string("offsets ") + name_of(layout), "plain", "packed");
  }
}

// A view starting at a group boundary (an expert of a stacked tensor) is
// packed on its own and gives the same bits as the same rows unpacked.
TEST(Q8Pack, ViewsAtGroupBoundaries) {
  ThreadPool pool(2);
  const int64_t n = 64, k = 128, m = 3;
  for (const Layout& layout : kLayouts) {
    Packed p = make_pair(layout.type, layout.group, n, k, 12, false);
    // Repack as two "experts" of 32 rows each instead of one matrix.
    p.packed = make_quant_weights(layout.type, n, k, 12, false);
    const size_t half = static_cast<size_t>(32) * p.plain.m.row_bytes;
    Matrix e0 = p.packed.m, e1 = p.packed.m;
    e0.rows = e1.rows = 32;
    e1.data += half;
    e0.packed_rows = pack_rows(layout.type, layout.group, p.packed.bytes.data(), 32, k);
    e1.packed_rows = pack_rows(layout.type, layout.group, p.packed.bytes.data() + half, 32, k);
    e0.pack_group = e1.pack_group = layout.group;
    const auto x = make_acts(m, k, 13);
    MatmulScratch scratch;
    scratch.reserve(m, k, 2);
    std::vector<float> full(static_cast<size_t>(m * n)), y0(static_cast<size_t>(m * 32)), y1(y0.size());
    matmul(p.plain.m, x.data(), m, k, full.data(), n, pool, scratch);
    matmul(e0, x.data(), m, k, y0.data(), 32, pool, scratch);
    matmul(e1, x.data(), m, k, y1.data(), 32, pool, scratch);
    for (int64_t i = 0; i < m; ++i) {
      EXPECT_EQ(0, std::memcmp(full.data() + i * n, y0.data() + i * 32, 32 * sizeof(float))) << i;
      EXPECT_EQ(0, std::memcmp(full.data() + i * n + 32, y1.data() + i * 32, 32 * sizeof(float))) << i;
    }
  }
}

}  // namespace
}  // namespace tandem::kernels
