// Mutation fuzzing of the safetensors reader: seeded, deterministic, 12,000
// files. Run under AddressSanitizer + UndefinedBehaviorSanitizer by
// ./scripts/test, so an out-of-bounds read or an overflow fails the test.
// Byte mutations (tests/gguf/mutate.h) mostly break the JSON, so half the
// files get header-aware ones instead: a number, dtype or key of the header
// replaced, with the length prefix kept consistent. Every tensor of an
// accepted file is read to its last byte.
#include "../gguf/mutate.h"
#include "hf/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

namespace tandem::hf {
namespace {

constexpr int kIterations = 12000;

const char* const kNumbers[] = {"0",  "1",  "2",  "3",         "7",         "8",          "4294967296",
                                "-1", "-8", "1e30", "0.5",     "18446744073709551615", "18446744073709551616",
                                "9223372036854775807", "64", "128", "100000000000"};
const char* const kWords[] = {"\"F32\"", "\"BF16\"", "\"U8\"",  "\"F64\"", "\"BOOL\"", "\"X\"", "null",
                              "[]",      "{}",       "[0, 4]", "[4, 0]",  "[0]",      "[[1]]", "\"__metadata__\""};

// Splits BYTES into the header text and the data after it (nothing if the length is off).
bool split(const std::vector<uint8_t>& bytes, std::string* header, std::vector<uint8_t>* data) {
  if (bytes.size() < 8) return false;
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8) return false;
  header->assign(reinterpret_cast<const char*>(bytes.data() + 8), n);
  data->assign(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), bytes.end());
  return true;
}

std::vector<uint8_t> join(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(b.data() + 8 + header.size(), data.data(), data.size());
  return b;
}

// One header-aware mutation: a token of the JSON text replaced.
std::vector<uint8_t> mutate_header(const std::vector<uint8_t>& seed, std::mt19937_64& rng) {
  std::string h;
  std::vector<uint8_t> data;
  if (!split(seed, &h, &data) || h.empty()) return seed;
  const int n = 1 + static_cast<int>(rng() % 2);
  for (int m = 0; m < n; ++m) {
    size_t pos = rng() % h.size();
    if (rng() % 2) {  // a number
      while (pos < h.size() && !std::isdigit(static_cast<unsigned char>(h[pos]))) ++pos;
      if (pos == h.size()) continue;
      size_t end = pos;
      while (end < h.size() && std::isdigit(static_cast<unsigned char>(h[end]))) ++end;
      h.replace(pos, end - pos, kNumbers[rng() % std::size(kNumbers)]);
    } else {  // a string or value
      pos = h.find('"', pos);
      if (pos == std::string::npos) continue;
      const size_t end = h.find('"', pos + 1);
      if (end == std::string::npos) continue;
      h.replace(pos, end + 1 - pos, kWords[rng() % std::size(kWords)]);
    }
  }
  if (rng() % 4 == 0) data.resize(rng() % (data.size() + 1));
  return join(h, data);
}

TEST(SafetensorsFuzz, MutatedFilesNeverCrash) {
  std::vector<std::vector<uint8_t>> seeds;
  std::vector<uint8_t> a(24), b(6), c(16);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i);
  auto small = safetensors_bytes({{"a", Dtype::kF32, {2, 3}, a}, {"b", Dtype::kBF16, {3}, b}, {"c", Dtype::kU32, {2, 2}, c}},
                                 {{"format", "pt"}, {"model.embed", "a"}});
  ASSERT_TRUE(small.ok());
  seeds.push_back(*small);
  // The 1-D tensors of a real checkpoint, with its names and metadata.
  auto real = SafetensorsFile::open(tandem::test::data_path("story656k/model.safetensors"));
  ASSERT_TRUE(real.ok()) << real.message();
  std::vector<StWrite> norms;
  for (const auto& t : real->tensors())
    if (t.shape.size() == 1) norms.push_back({t.name, t.dtype, t.shape, t.data});
  auto small_real = safetensors_bytes(norms, real->metadata());
  ASSERT_TRUE(small_real.ok());
  seeds.push_back(*small_real);
  std::mt19937_64 rng(20261207);
  int accepted = 0, rejected = 0;
  uint64_t sink = 0;
  for (int it = 0; it < kIterations; ++it) {
    const auto& seed = seeds[static_cast<size_t>(it) % seeds.size()];
    const auto bytes = it % 2 ? mutate_header(seed, rng) : gguf::test::mutate(seed, rng);
    auto f = SafetensorsFile::parse(bytes, "fuzz");
    if (!f.ok()) {
      ++rejected;
      EXPECT_FALSE(f.message().empty());
      continue;
    }
    ++accepted;
    for (const auto& t : f->tensors()) {
      for (uint8_t x : t.data) sink += x;
      sink += t.shape.size() + t.n_elements;
    }
    for (const auto& [k, v] : f->metadata()) sink += k.size() + v.size();
  }
  EXPECT_GT(accepted, kIterations / 50);
  EXPECT_GT(rejected, kIterations / 50);
  EXPECT_GE(accepted + rejected, 10000);
  std::printf("%d accepted, %d rejected (checksum %llu)\n", accepted, rejected, static_cast<unsigned long long>(sink));
}

}  // namespace
}  // namespace tandem::hf
