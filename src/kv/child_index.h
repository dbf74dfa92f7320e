// What the prefix cache (blocks in RAM) and the disk tier (stored blocks)
// both keep to find the block a prompt shares a head with: a parent key ->
// child multimap, and the count of leading tokens two blocks share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <unordered_map>

namespace tandem::kv {

// Removes the entry PARENT -> CHILD of M, if it is there.
template <typename Child>
void erase_child(std::unordered_multimap<uint64_t, Child>& m, uint64_t parent, Child child) {
  for (auto [c, end] = m.equal_range(parent); c != end; ++c) {
    if (c->second == child) {
      m.erase(c);
      return;
    }
  }
}

// How many leading tokens A and B share.
inline int common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  return static_cast<int>(std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin()).first -
                          a.begin());
}

}  // namespace tandem::kv
