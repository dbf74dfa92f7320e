#include "kv/block_pool.h"

#include "core/check.h"

#include <fmt/format.h>

#include <algorithm>

namespace tandem::kv {

BlockPool::BlockPool(int32_t n_blocks) : meta_(static_cast<size_t>(std::max(n_blocks, 0))) {
  for (BlockId b = 0; b < n_blocks; ++b) push_back(free_, b);
  free_count_ = n_blocks;
}

BlockPool::Where BlockPool::where_of(Retention r) {
  switch (r) {
    case Retention::kLonger: return Where::kCachedLonger;
    case Retention::kPinned: return Where::kCachedPinned;
    default: return Where::kCachedNormal;
  }
}

BlockPool::List& BlockPool::list_of(Where w) {
  switch (w) {
    case Where::kCachedNormal: return cached_normal_;
    case Where::kCachedLonger: return cached_longer_;
    case Where::kCachedPinned: return cached_pinned_;
    default: return free_;
  }
}

void BlockPool::push_back(List& l, BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  m.prev = l.tail;
  m.next = -1;
  if (l.tail >= 0) meta_[static_cast<size_t>(l.tail)].next = b;
  else l.head = b;
  l.tail = b;
}

void BlockPool::unlink(List& l, BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  if (m.prev >= 0) meta_[static_cast<size_t>(m.prev)].next = m.next;
  else l.head = m.next;
  if (m.next >= 0) meta_[static_cast<size_t>(m.next)].prev = m.prev;
  else l.tail = m.prev;
  m.prev = m.next = -1;
}

bool BlockPool::is_cached(BlockId b) const {
  const Where w = meta_[static_cast<size_t>(b)].where;
  return w == Where::kCachedNormal || w == Where::kCachedLonger || w == Where::kCachedPinned;
}

std::optional<Retention> BlockPool::eviction_class(BlockId b) const {
  switch (meta_[static_cast<size_t>(b)].where) {
    case Where::kCachedNormal: return Retention::kNormal;
    case Where::kCachedLonger: return Retention::kLonger;
    case Where::kCachedPinned: return Retention::kPinned;
    default: return std::nullopt;
  }
}

std::optional<BlockId> BlockPool::allocate() {
  BlockId b = -1;
  if (free_.head >= 0) {
    b = free_.head;
    unlink(free_, b);
    --free_count_;
  } else {
    List& victims = cached_normal_.head >= 0   ? cached_normal_
                    : cached_longer_.head >= 0 ? cached_longer_
                                               : cached_pinned_;
    if (victims.head < 0) return std::nullopt;
    b = victims.head;
    unlink(victims, b);
    --cached_count_;
    meta_[static_cast<size_t>(b)].has_content = false;
    ++evictions_;
    if (on_evict_) on_evict_(b);
  }
  Meta& m = meta_[static_cast<size_t>(b)];
  m.where = Where::kPinned;
  m.ref = 1;
  m.has_content = false;
  m.released_as = m.floor = Retention::kNormal;
  return b;
}

void BlockPool::retain(BlockId b) {
  TANDEM_DCHECK(b >= 0 && b < n_blocks(), "retaining block {} of a pool of {}", b, n_blocks());
  Meta& m = meta_[static_cast<size_t>(b)];
  TANDEM_DCHECK(m.where != Where::kFree, "retaining free block {}", b);
  if (m.ref == 0) {
    unlink(list_of(m.where), b);  // O(1): a hit leaves the middle of its eviction list
    --cached_count_;
    m.where = Where::kPinned;
  }
  ++m.ref;
}

void BlockPool::release(BlockId b, Retention retention) {
  TANDEM_DCHECK(b >= 0 && b < n_blocks(), "releasing block {} of a pool of {}", b, n_blocks());
  meta_[static_cast<size_t>(b)].released_as = retention;
  unref(b);
}

void BlockPool::release_keep_class(BlockId b) { unref(b); }

void BlockPool::unref(BlockId b) {
  TANDEM_DCHECK(b >= 0 && b < n_blocks(), "releasing block {} of a pool of {}", b, n_blocks());
  Meta& m = meta_[static_cast<size_t>(b)];
  TANDEM_DCHECK(m.ref > 0, "releasing block {} whose ref count is 0", b);
  if (--m.ref > 0) return;
  if (m.has_content) {
    m.where = where_of(std::max(m.released_as, m.floor));
    push_back(list_of(m.where), b);
    ++cached_count_;
  } else {
    m.where = Where::kFree;
    m.released_as = m.floor = Retention::kNormal;
    push_back(free_, b);
    ++free_count_;
  }
}

void BlockPool::set_floor(BlockId b, Retention floor) {
  Meta& m = meta_[static_cast<size_t>(b)];
  m.floor = floor;
  if (!is_cached(b)) return;
  const Where where = where_of(std::max(m.released_as, floor));
  if (where == m.where) return;
  unlink(list_of(m.where), b);
  m.where = where;
  push_back(list_of(where), b);
}

void BlockPool::to_free(BlockId b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  unlink(list_of(m.where), b);
  --cached_count_;
  m.has_content = false;
  m.where = Where::kFree;
  m.released_as = m.floor = Retention::kNormal;
  push_back(free_, b);
  ++free_count_;
}

bool BlockPool::drop(BlockId b) {
  if (!is_cached(b)) return false;
  to_free(b);
  if (on_evict_) on_evict_(b);
  return true;
}

void BlockPool::set_has_content(BlockId b, bool has) {
  Meta& m = meta_[static_cast<size_t>(b)];
  TANDEM_DCHECK(!has || m.where == Where::kPinned, "block {} gets content while not pinned", b);
  if (!has && is_cached(b)) {
    to_free(b);
    return;
  }
  m.has_content = has;
}

std::string BlockPool::check_invariants() const {
  int32_t free = 0, cached = 0, longer = 0, pinned_class = 0;
  for (BlockId b = 0; b < n_blocks(); ++b) {
    const Meta& m = meta_[static_cast<size_t>(b)];
    switch (m.where) {
      case Where::kFree:
        ++free;
        if (m.ref != 0 || m.has_content)
          return fmt::format("free block {} has ref {} content {}", b, m.ref, m.has_content);
        break;
      case Where::kPinned:
        if (m.ref <= 0) return fmt::format("pinned block {} has ref {}", b, m.ref);
        break;
      default:
        ++cached;
        longer += m.where == Where::kCachedLonger;
        pinned_class += m.where == Where::kCachedPinned;
        if (m.ref != 0 || !m.has_content) {
          return fmt::format("cached block {} has ref {} content {}", b, m.ref, m.has_content);
        }
        if (m.where != where_of(std::max(m.released_as, m.floor)))
          return fmt::format("cached block {} is on the wrong list", b);
        break;
    }
  }
  if (free != free_count_ || cached != cached_count_) {
    return fmt::format("counts: free {} vs {}, cached {} vs {}", free, free_count_, cached, cached_count_);
  }
  auto walk = [&](const List& l, Where w, int32_t expect) -> std::string {
    int32_t n = 0, prev = -1;
    for (int32_t b = l.head; b >= 0; b = meta_[static_cast<size_t>(b)].next) {
      const Meta& m = meta_[static_cast<size_t>(b)];
      if (m.where != w || m.prev != prev) return fmt::format("list corrupt at block {}", b);
      prev = b;
      if (++n > n_blocks()) return "list cycle";
    }
    if (prev != l.tail) return "list tail mismatch";
    return n == expect ? "" : fmt::format("list length {} != {}", n, expect);
  };
  if (auto e = walk(free_, Where::kFree, free); !e.empty()) return "free " + e;
  if (auto e = walk(cached_normal_, Where::kCachedNormal, cached - longer - pinned_class); !e.empty())
    return "normal " + e;
  if (auto e = walk(cached_longer_, Where::kCachedLonger, longer); !e.empty()) return "longer " + e;
  if (auto e = walk(cached_pinned_, Where::kCachedPinned, pinned_class); !e.empty()) return "pinned class " + e;
  return "";
}

}  // namespace tandem::kv
