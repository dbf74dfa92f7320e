#include "kv/prefix_cache.h"

#include "core/check.h"

#include "kv/child_index.h"

#include <xxhash.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace tandem::kv {

BlockKey block_key(BlockKey parent, std::span<const int32_t> tokens) {
  const BlockKey k = XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
  return k == 0 ? 1 : k;  // 0 means "no key"
}

PrefixCache::PrefixCache(KvPool& pool, uint64_t fingerprint)
    : pool_(pool),
      fingerprint_(fingerprint),
      meta_(static_cast<size_t>(pool.n_blocks())),
      tokens_(static_cast<size_t>(pool.n_blocks()) * static_cast<size_t>(pool.shape().block_tokens)) {
  // The cache owns every block of the pool from now on.
  while (pool_.allocate()) {
  }
  for (BlockId b = 0; b < pool.n_blocks(); ++b) push_back(free_, b);
  free_count_ = static_cast<size_t>(pool.n_blocks());
}

BlockKey PrefixCache::root_key(uint64_t ns) const {
  const uint64_t parts[3] = {fingerprint_, kernels::kv_type_id(pool_.shape().type), ns};
  const BlockKey k = XXH3_64bits(parts, sizeof(parts));
  return k == 0 ? 1 : k;
}

PrefixCache::List& PrefixCache::list_of(Where w) {
  switch (w) {
    case Where::kCachedNormal: return cached_normal_;
    case Where::kCachedLonger: return cached_longer_;
    case Where::kCachedPinned: return cached_pinned_;
    default: return free_;
  }
}

namespace {
// The list a cached block of class R lives on.
constexpr uint8_t kWhereOfClass[] = {2, 3, 4};  // Where::kCachedNormal, kCachedLonger, kCachedPinned
}  // namespace

void PrefixCache::push_back(List& l, BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  m.prev = l.tail;
  m.next = -1;
  if (l.tail >= 0) meta_[static_cast<size_t>(l.tail)].next = b;
  else l.head = b;
  l.tail = b;
}

void PrefixCache::unlink(List& l, BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.prev >= 0) meta_[static_cast<size_t>(m.prev)].next = m.next;
  else l.head = m.next;
  if (m.next >= 0) meta_[static_cast<size_t>(m.next)].prev = m.prev;
  else l.tail = m.prev;
  m.prev = m.next = -1;
}

std::span<const int32_t> PrefixCache::tokens_of(BlockId b) const {
  const size_t bt = static_cast<size_t>(block_tokens());
  return std::span<const int32_t>(tokens_).subspan(static_cast<size_t>(b) * bt, bt);
}

bool PrefixCache::is_cached(BlockId b) const {
  const Where w = meta_[static_cast<size_t>(b)].where;
  return w == Where::kCachedNormal || w == Where::kCachedLonger || w == Where::kCachedPinned;
}

PrefixMatch PrefixCache::lookup(std::span<const int32_t> tokens, uint64_t ns) {
  ++stats_.lookups;
  PrefixMatch match;
  BlockKey parent = root_key(ns);
  const size_t bt = static_cast<size_t>(block_tokens());
  for (size_t start = 0; start + bt <= tokens.size(); start += bt) {
    const auto chunk = tokens.subspan(start, bt);
    const BlockKey key = block_key(parent, chunk);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    const BlockId b = it->second;
    const Meta& m = meta_[static_cast<size_t>(b)];
    // Verify: a colliding key must not serve another prefix's KV.
    const auto stored = tokens_of(b);
    if (m.parent != parent || !std::equal(stored.begin(), stored.end(), chunk.begin())) break;
    retain(b);
    match.blocks.push_back(b);
    parent = key;
  }
  match.last_key = parent;
  match.tokens = static_cast<int64_t>(match.blocks.size() * bt);
  stats_.hit_blocks += static_cast<int64_t>(match.blocks.size());
  return match;
}

void PrefixCache::retain(BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.ref == 0) {
    unlink(list_of(m.where), b);  // O(1): a hit leaves the middle of the eviction list
    --cached_count_;
    m.where = Where::kPinned;
  }
  ++m.ref;
}

std::optional<BlockId> PrefixCache::allocate() {
  BlockId b = -1;
  if (free_.head >= 0) {
    b = free_.head;
    unlink(free_, b);
    --free_count_;
  } else {
    List& victims = cached_normal_.head >= 0 ? cached_normal_
                    : cached_longer_.head >= 0 ? cached_longer_
                                               : cached_pinned_;
    if (victims.head < 0) return std::nullopt;
    b = victims.head;
    unlink(victims, b);
    --cached_count_;
    forget(b);
    ++stats_.evictions;
  }
  Meta& m = meta_[static_cast<size_t>(b)];
  m.where = Where::kPinned;
  m.ref = 1;
  m.key = m.parent = 0;
  m.tail_len = 0;
  m.released_as = m.floor = Retention::kNormal;
  return b;
}

void PrefixCache::forget(BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.key != 0) {
    auto it = by_key_.find(m.key);
    if (it != by_key_.end() && it->second == b) {
      by_key_.erase(it);
      erase_child(children_, m.parent, b);
    }
  }
  if (m.tail_len > 0) {
    auto it = tail_by_parent_.find(m.parent);
    if (it != tail_by_parent_.end() && it->second == b) tail_by_parent_.erase(it);
  }
  m.key = m.parent = 0;
  m.tail_len = 0;
}

void PrefixCache::commit_tail(BlockId b, BlockKey parent, std::span<const int32_t> tokens) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (tokens.empty() || tokens.size() >= static_cast<size_t>(block_tokens()) || m.key != 0) return;
  // An older tail here is no longer one: freed now if unused, else when released.
  if (auto it = tail_by_parent_.find(parent); it != tail_by_parent_.end() && it->second != b && !drop(it->second)) {
    forget(it->second);
  }
  tail_by_parent_[parent] = b;
  m.parent = parent;
  m.tail_len = static_cast<int32_t>(tokens.size());
  std::memcpy(tokens_.data() + static_cast<size_t>(b) * static_cast<size_t>(block_tokens()), tokens.data(),
              tokens.size_bytes());
}

std::optional<PartialMatch> PrefixCache::longest_child(BlockKey parent, std::span<const int32_t> tokens) {
  PartialMatch best;
  for (auto [c, end] = children_.equal_range(parent); c != end; ++c) {
    const int same = common_prefix(tokens_of(c->second), tokens);
    if (same > best.tokens) best = PartialMatch{c->second, same};
  }
  if (best.tokens == 0) return std::nullopt;
  retain(best.block);
  return best;
}

std::optional<PartialMatch> PrefixCache::take_tail(BlockKey parent, std::span<const int32_t> tokens) {
  auto it = tail_by_parent_.find(parent);
  if (it == tail_by_parent_.end()) return std::nullopt;
  const BlockId b = it->second;
  const Meta& m = meta_[static_cast<size_t>(b)];
  if (m.ref != 0) return std::nullopt;  // not released yet
  const int same = common_prefix(tokens_of(b).first(static_cast<size_t>(m.tail_len)), tokens);
  if (same == 0) return std::nullopt;
  retain(b);
  forget(b);
  return PartialMatch{b, same};
}

BlockKey PrefixCache::commit(BlockId b, BlockKey parent, std::span<const int32_t> tokens) {
  const BlockKey key = block_key(parent, tokens);
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.key == key) return key;  // already committed (shared prefix block)
  auto [it, inserted] = by_key_.emplace(key, b);
  if (!inserted) return key;  // another block holds this content; this one stays private
  m.key = key;
  m.parent = parent;
  children_.emplace(parent, b);
  std::memcpy(tokens_.data() + static_cast<size_t>(b) * static_cast<size_t>(block_tokens()), tokens.data(),
              tokens.size_bytes());
  ++stats_.commits;
  return key;
}

void PrefixCache::release(BlockId b, Retention retention) {
  meta_[static_cast<size_t>(b)].released_as = retention;
  unref(b);
}

void PrefixCache::release_keep_class(BlockId b) { unref(b); }

void PrefixCache::unref(BlockId b) {
  TANDEM_DCHECK(b >= 0 && b < pool_.n_blocks(), "releasing block {} of a pool of {}", b, pool_.n_blocks());
  Meta& m = meta_[static_cast<size_t>(b)];
  TANDEM_DCHECK(m.ref > 0, "releasing block {} whose ref count is 0", b);
  if (--m.ref > 0) return;
  if (m.key != 0 || m.tail_len > 0) {
    const Retention r = std::max(m.released_as, m.floor);
    m.where = static_cast<Where>(kWhereOfClass[static_cast<size_t>(r)]);
    push_back(list_of(m.where), b);
    ++cached_count_;
  } else {
    m.where = Where::kFree;
    push_back(free_, b);
    ++free_count_;
  }
}

void PrefixCache::set_floor(BlockId b, Retention floor) {
  Meta& m = meta_[static_cast<size_t>(b)];
  m.floor = floor;
  if (!is_cached(b)) return;
  const auto where = static_cast<Where>(kWhereOfClass[static_cast<size_t>(std::max(m.released_as, floor))]);
  if (where == m.where) return;
  unlink(list_of(m.where), b);
  m.where = where;
  push_back(list_of(where), b);
}

bool PrefixCache::drop(BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (!is_cached(b)) return false;
  unlink(list_of(m.where), b);
  --cached_count_;
  forget(b);
  m.where = Where::kFree;
  m.released_as = m.floor = Retention::kNormal;
  push_back(free_, b);
  ++free_count_;
  return true;
}

std::optional<BlockId> PrefixCache::find(BlockKey key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

std::string PrefixCache::check_invariants() const {
  size_t free = 0, cached = 0, pinned = 0;
  for (BlockId b = 0; b < pool_.n_blocks(); ++b) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    switch (m.where) {
      case Where::kFree:
        ++free;
        if (m.ref != 0 || m.key != 0 || m.tail_len != 0) {
          return fmt::format("free block {} has ref {} key {} tail {}", b, m.ref, m.key, m.tail_len);
        }
        break;
      case Where::kPinned:
        ++pinned;
        if (m.ref <= 0) return fmt::format("pinned block {} has ref {}", b, m.ref);
        break;
      default:
        ++cached;
        if (m.ref != 0 || (m.key == 0) == (m.tail_len == 0)) {
          return fmt::format("cached block {} has ref {} key {} tail {}", b, m.ref, m.key, m.tail_len);
        }
        break;
    }
    if (m.key != 0) {
      auto it = by_key_.find(m.key);
      if (it == by_key_.end() || it->second != b) return fmt::format("block {} key is not in the map", b);
    }
  }
  if (free != free_count_ || cached != cached_count_) {
    return fmt::format("counts: free {} vs {}, cached {} vs {}", free, free_count_, cached, cached_count_);
  }
  if (free + cached + pinned != static_cast<size_t>(pool_.n_blocks())) return "free + cached + pinned != total";
  // Walk the lists: lengths and membership.
  auto walk = [&](const List& l, Where w, size_t expect) -> std::string {
    size_t n = 0;
    int32_t prev = -1;
    for (int32_t b = l.head; b >= 0; b = meta_[static_cast<size_t>(b)].next) {
      const Meta& m = meta_[static_cast<size_t>(b)];
      if (m.where != w || m.prev != prev) return fmt::format("list corrupt at block {}", b);
      prev = b;
      if (++n > meta_.size()) return "list cycle";
    }
    if (prev != l.tail) return "list tail mismatch";
    return n == expect ? "" : fmt::format("list length {} != {}", n, expect);
  };
  size_t longer = 0, pinned_class = 0;
  for (const Meta& m : meta_) {
    longer += m.where == Where::kCachedLonger;
    pinned_class += m.where == Where::kCachedPinned;
  }
  if (auto e = walk(free_, Where::kFree, free); !e.empty()) return "free " + e;
  if (auto e = walk(cached_normal_, Where::kCachedNormal, cached - longer - pinned_class); !e.empty()) {
    return "cached " + e;
  }
  if (auto e = walk(cached_longer_, Where::kCachedLonger, longer); !e.empty()) return "longer " + e;
  if (auto e = walk(cached_pinned_, Where::kCachedPinned, pinned_class); !e.empty()) return "pinned class " + e;
  for (const auto& [key, b] : by_key_) {
    if (meta_[static_cast<size_t>(b)].key != key) return fmt::format("map entry {} -> {} is stale", key, b);
  }
  size_t committed = 0;
  for (const Meta& m : meta_) committed += m.key != 0 && by_key_.contains(m.key) ? 1 : 0;
  if (children_.size() != committed) return fmt::format("{} child entries for {} committed blocks", children_.size(), committed);
  for (const auto& [parent, b] : children_) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.key == 0 || m.parent != parent) return fmt::format("child entry {} -> {} is stale", parent, b);
  }
  for (const auto& [parent, b] : tail_by_parent_) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.tail_len <= 0 || m.tail_len >= block_tokens() || m.parent != parent || m.key != 0) {
      return fmt::format("tail entry {} -> {} is stale", parent, b);
    }
  }
  for (BlockId b = 0; b < pool_.n_blocks(); ++b) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    if (m.tail_len == 0) continue;
    auto it = tail_by_parent_.find(m.parent);
    if (it == tail_by_parent_.end() || it->second != b) return fmt::format("tail block {} is not in the map", b);
  }
  return "";
}

}  // namespace tandem::kv
