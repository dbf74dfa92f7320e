// Mutation fuzzing of the GGUF reader: seeded, deterministic, 10,000+ files.
// Run under AddressSanitizer + UndefinedBehaviorSanitizer by ./scripts/test,
// so any out-of-bounds read, overflow or leak fails the test. Every file the
// reader accepts is also walked completely (metadata rendering, every tensor
// byte, dequantization) to prove its views are in bounds.
#include "gguf/quant.h"
#include "gguf/reader.h"
#include "gguf_test_files.h"
#include "mutate.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace tandem::gguf {
namespace {

constexpr int kIterations = 12000;

// Touches everything a caller may touch in an accepted file.
uint64_t walk(const GgufFile& f) {
  uint64_t sum = 0;
  for (const auto& kv : f.metadata()) sum += kv.value.describe(4).size();
  std::vector<float> out;
  for (const auto& t : f.tensors()) {
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
    if (can_dequantize(t.type) && t.n_elements <= (1u << 20)) {
      out.resize(t.n_elements);
      if (dequantize(t.type, t.data, out.data(), static_cast<int64_t>(t.n_elements)).ok() && !out.empty()) {
        sum += static_cast<uint64_t>(out[0] == out[0]);
      }
    }
  }
  return sum;
}

TEST(GgufFuzz, MutatedFilesNeverCrash) {
  std::vector<std::vector<uint8_t>> seeds = {test::sample_bytes()};
  // The head of a real model file: metadata and tensor infos, data cut off.
  auto real = MappedFile::open(tandem::test::data_path("stories260K.gguf"));
  ASSERT_TRUE(real.ok());
  seeds.emplace_back(real->bytes().begin(), real->bytes().begin() + 16384);
  std::mt19937_64 rng(20261123);
  int accepted = 0, rejected = 0;
  uint64_t sink = 0;
  for (int it = 0; it < kIterations; ++it) {
    const auto bytes = test::mutate(seeds[static_cast<size_t>(it) % seeds.size()], rng);
    auto f = GgufFile::parse(bytes);
    if (f.ok()) {
      ++accepted;
      sink += walk(*f);
    } else {
      ++rejected;
      EXPECT_FALSE(f.message().empty());
    }
  }
  // Both outcomes must occur, or the mutations are too weak or too strong.
  EXPECT_GT(accepted, kIterations / 50);
  EXPECT_GT(rejected, kIterations / 50);
  std::printf("fuzz: %d accepted, %d rejected (checksum %llu)\n", accepted, rejected,
              static_cast<unsigned long long>(sink));
}

}  // namespace
}  // namespace tandem::gguf
