// Seeded mutations of file bytes for fuzz tests of parsers.
#pragma once

#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

namespace tandem::gguf::test {

// Values that stress size arithmetic when written over a count or length.
inline constexpr uint64_t kInteresting[] = {0,          1,          2,          31,         32,         255,
                                            256,        0x7fff,     0xffff,     0x7fffffff, 0xffffffff, 1ull << 32,
                                            1ull << 62, 1ull << 63, ~0ull >> 1, ~0ull,      ~0ull - 7,  ~0ull - 31};

inline std::vector<uint8_t> mutate(const std::vector<uint8_t>& seed, std::mt19937_64& rng) {
  std::vector<uint8_t> b = seed;
  const int n_mutations = 1 + static_cast<int>(rng() % 4);
  for (int m = 0; m < n_mutations && !b.empty(); ++m) {
    const size_t pos = rng() % b.size();
    switch (rng() % 6) {
      case 0: b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;  // bit flip
      case 1: b[pos] = static_cast<uint8_t>(rng()); break;               // random byte
      case 2: {                                                          // an interesting 8-byte or 4-byte value
        const uint64_t v = kInteresting[rng() % std::size(kInteresting)];
        const size_t width = (rng() % 2) ? 8 : 4;
        if (pos + width <= b.size()) std::memcpy(b.data() + pos, &v, width);
        break;
      }
      case 3: b.resize(pos); break;  // truncate
      case 4:
        b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos),
                b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), pos + 1 + rng() % 16)));
        break;
      case 5:
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), 1 + rng() % 16, static_cast<uint8_t>(rng()));
        break;
    }
  }
  return b;
}

}  // namespace tandem::gguf::test
