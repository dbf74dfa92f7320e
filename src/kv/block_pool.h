// Who holds each KV block: ref counts, the free list and the eviction order.
// Knows nothing of what a block contains; the prefix index (kv/prefix_index.h)
// tells it which blocks hold reusable content and hears when content is
// taken away.
//
// Block states (every block is in exactly one):
//   free     - no content; on the free list
//   pinned   - ref > 0: in the block table of a running sequence (or
//              being written to disk)
//   cached   - ref == 0 and marked as holding content: reusable, on an
//              eviction list
// Cached blocks are evicted least recently released first; blocks released
// with Retention::kLonger (sessions that will come back soon, e.g. after a
// tool call) go after all plain ones, and blocks of pinned sessions (a
// floor set with set_floor) after those. Order is by a logical counter,
// never by wall time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tandem::kv {

using BlockId = int32_t;

// Eviction classes, evicted in this order.
enum class Retention : uint8_t { kNormal, kLonger, kPinned };

class BlockPool {
 public:
  explicit BlockPool(int32_t n_blocks);

  // Called with a cached block whose content is taken away (evicted by
  // allocate() or dropped): the prefix index forgets it.
  void on_evict(std::function<void(BlockId)> f) { on_evict_ = std::move(f); }

  // A block for new content, pinned (ref = 1): the free block released
  // longest ago (0, 1, 2, ... first), else the first cached block in
  // eviction order. nullopt when every block is pinned.
  std::optional<BlockId> allocate();
  void retain(BlockId b);  // ref + 1 (from cached: leaves its eviction list)
  // ref - 1; at 0 the block is cached (if it holds content) or freed. The
  // last release decides the eviction class (never below the block's floor).
  void release(BlockId b, Retention retention = Retention::kNormal);
  // ref - 1 keeping the class of the last release(): for references that
  // say nothing about reuse (the disk tier writing the block, a lookup
  // given back).
  void release_keep_class(BlockId b);
  // A floor under the block's eviction class while it keeps its content
  // (pinned sessions); a cached block moves to its new class's list.
  void set_floor(BlockId b, Retention floor);
  // Frees a cached block now (its content is forgotten). False when the
  // block is pinned or not cached.
  bool drop(BlockId b);

  // Whether B holds content worth keeping once unpinned (set by the index).
  // Clearing it on a cached block frees that block.
  void set_has_content(BlockId b, bool has);
  bool has_content(BlockId b) const { return meta_[static_cast<size_t>(b)].has_content; }

  int32_t n_blocks() const { return static_cast<int32_t>(meta_.size()); }
  int32_t n_free() const { return free_count_; }
  int32_t n_cached() const { return cached_count_; }
  int32_t n_pinned() const { return n_blocks() - n_free() - n_cached(); }
  int32_t ref_count(BlockId b) const { return meta_[static_cast<size_t>(b)].ref; }
  bool is_cached(BlockId b) const;
  // The class a cached block is evicted in (nullopt when not cached).
  std::optional<Retention> eviction_class(BlockId b) const;
  int64_t evictions() const { return evictions_; }

  // Every invariant (counts, list links and membership); "" when all hold.
  std::string check_invariants() const;

 private:
  enum class Where : uint8_t { kFree, kPinned, kCachedNormal, kCachedLonger, kCachedPinned };
  struct Meta {
    int32_t ref = 0;
    Where where = Where::kFree;
    bool has_content = false;
    Retention released_as = Retention::kNormal;  // by the last release()
    Retention floor = Retention::kNormal;
    int32_t prev = -1, next = -1;  // intrusive links of the list it is on
  };
  struct List {
    int32_t head = -1, tail = -1;
  };

  static Where where_of(Retention r);
  List& list_of(Where w);
  void push_back(List& l, BlockId b);
  void unlink(List& l, BlockId b);
  void unref(BlockId b);
  void to_free(BlockId b);  // from a cached list (content gone) to the free list

  std::vector<Meta> meta_;
  List free_, cached_normal_, cached_longer_, cached_pinned_;
  int32_t free_count_ = 0, cached_count_ = 0;
  int64_t evictions_ = 0;
  std::function<void(BlockId)> on_evict_;
};

}  // namespace tandem::kv
