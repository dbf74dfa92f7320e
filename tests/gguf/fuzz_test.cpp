// Mutation fuzzing of the GGUF reader: seeded, deterministic, 10,000+ files.
// Run under AddressSanitizer + UndefinedBehaviorSanitizer by ./scripts/test,
// so any out-of-bounds read, overflow or leak fails the test. Every file the
// reader accepts is also walked completely (metadata rendering, every tensor
// byte, dequantization) to prove its views are in bounds.
#include "gguf/quant.h"
#include "gguf/reader.h"
#include "gguf_test_files.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace tandem::gguf {
namespace {

constexpr int kIterations = 12000;

// Values that stress size arithmetic when written over a count or length.
constexpr uint64_t kInteresting[] = {0,          1,          2,          31,          32,          255,
                                     256,        0x7fff,     0xffff,     0x7fffffff,  0xffffffff,  1ull << 32,
                                     1ull << 62, 1ull << 63, ~0ull >> 1, ~0ull,       ~0ull - 7,   ~0ull - 31};

std::vector<uint8_t> mutate(const std::vector<uint8_t>& seed, std::mt19937_64& rng) {
  std::vector<uint8_t> b = seed;
  const int n_mutations = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < n_mutations && !b.empty(); ++m) {
    const size_t pos = rng() % b.size();
    switch (rng() % 6) {
      case 0: b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;  // bit flip
      case 1: b[pos] = static_cast<uint8_t>(rng()); break;                // random byte
      case 2: {  // an interesting 8-byte or 4-byte value
        const uint64_t v = kInteresting[rng() % std::size(kInteresting)];
        const size_t width = (rng() % 2) ? 8 : 4;
        if (pos + width <= b.size()) std::memcpy(b.data() + pos, &v, width);
        break;
      }
      case 3: b.resize(pos); break;  // truncate
      case 4: b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos),
                      b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), pos + 1 + rng() % 16)));
        break;
      case 5: b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), 1 + rng() % 16, static_cast<uint8_t>(rng()));
        break;
    }
  }
  return b;
}

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
  auto real = MappedFile::open(tandem::test::shared_model("stories260K.gguf"));
  ASSERT_TRUE(real.ok());
  seeds.emplace_back(real->bytes().begin(), real->bytes().begin() + 16384);
  std::mt19937_64 rng(20261123);
  int accepted = 0, rejected = 0;
  uint64_t sink = 0;
  for (int it = 0; it < kIterations; ++it) {
    const auto bytes = mutate(seeds[static_cast<size_t>(it) % seeds.size()], rng);
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
