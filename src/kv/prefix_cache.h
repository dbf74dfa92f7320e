// Content-addressed KV blocks over a KvPool: the prefix cache.
//
// A full block's key is hash(parent key, its tokens, namespace), chained
// from a root that folds in the model fingerprint and KV type, so equal
// prefixes give equal keys whoever computed them. lookup() returns the
// longest cached prefix in whole blocks, verifying the tokens and parent of
// every hit, so a hash collision can never return wrong KV.
//
// Block states (every block is in exactly one):
//   free     - no content; on the free list
//   pinned   - ref > 0: in the block table of a running sequence
//   cached   - ref == 0 with a key (or a tail, below): reusable, on an
//              eviction list
// Cached blocks are evicted least recently released first; blocks released
// with Retention::kLonger (sessions that will come back soon, e.g. after a
// tool call) go after all plain ones, and blocks of pinned sessions
// (a floor set with set_floor) after those. Order is by a logical counter,
// never by wall time.
//
// Tails: the partial last block of a finished sequence (its turn ended
// mid-block) is cached too, under its parent key, so the next turn of the
// conversation does not recompute up to block_tokens - 1 positions. The
// next sequence writes the rest of that block, so a tail is never shared:
// take_tail() hands it to one sequence, and the tail leaves the cache
// (it comes back as a full block or a new tail when that sequence ends).
// Tails have no key (key_of() == 0): they live in RAM only, never in the
// disk tier or a session manifest.
#pragma once

#include "kv/kv_pool.h"

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace tandem::kv {

using BlockKey = uint64_t;

// Eviction classes, evicted in this order.
enum class Retention : uint8_t { kNormal, kLonger, kPinned };

struct PrefixMatch {
  std::vector<BlockId> blocks;  // pinned (ref + 1 each); release them when done
  BlockKey last_key = 0;        // key of the last matched block (root key when none)
  int64_t tokens = 0;           // blocks.size() * block_tokens
};

struct CacheStats {
  int64_t lookups = 0, hit_blocks = 0, evictions = 0, commits = 0;
};

// A block whose first TOKENS positions match a prompt past its whole blocks.
struct PartialMatch {
  BlockId block = -1;
  int tokens = 0;
};

class PrefixCache {
 public:
  // FINGERPRINT identifies the model weights and KV layout; blocks of other
  // models never match.
  PrefixCache(KvPool& pool, uint64_t fingerprint);

  int block_tokens() const { return pool_.shape().block_tokens; }
  BlockKey root_key(uint64_t ns = 0) const;

  // The longest cached prefix of TOKENS (whole blocks only), pinned.
  PrefixMatch lookup(std::span<const int32_t> tokens, uint64_t ns = 0);

  // A block for new content, pinned (ref = 1): a free one, else the first
  // cached block in eviction order. nullopt when every block is pinned.
  std::optional<BlockId> allocate();

  // Registers a block whose block_tokens positions are now computed:
  // key = hash(parent, tokens). Returns the key (the next block's parent).
  // If that content is already cached in another block, BLOCK stays
  // unregistered (freed when released): one copy per content.
  BlockKey commit(BlockId block, BlockKey parent, std::span<const int32_t> tokens);

  // Caches BLOCK's first TOKENS.size() positions (0 < size < block_tokens)
  // as the tail after PARENT, replacing an older tail there. BLOCK stays
  // pinned by the caller until released.
  void commit_tail(BlockId block, BlockKey parent, std::span<const int32_t> tokens);
  // The cached tail after PARENT if TOKENS starts with at least one of its
  // tokens (at most TOKENS.size() are used): taken out of the cache (ref 1,
  // no longer cached) for the caller, who will overwrite the positions that
  // did not match.
  std::optional<PartialMatch> take_tail(BlockKey parent, std::span<const int32_t> tokens);
  // The cached full block after PARENT sharing the longest head with TOKENS
  // (at least one token, at most TOKENS.size()), pinned (ref + 1; release
  // it): a prompt that leaves a conversation inside a block copies that
  // head (the block stays shared, unchanged).
  std::optional<PartialMatch> longest_child(BlockKey parent, std::span<const int32_t> tokens);

  void retain(BlockId block);  // ref + 1 (a block table shared by a new sequence)
  // ref - 1; at 0 the block is cached (if committed) or freed. The last
  // release decides the eviction class (never below the block's floor).
  void release(BlockId block, Retention retention = Retention::kNormal);
  // ref - 1 keeping the class of the last release(): for references that
  // say nothing about reuse (the disk tier writing the block).
  void release_keep_class(BlockId block);
  // A floor under the block's eviction class while it keeps its content
  // (pinned sessions); a cached block moves to its new class's list.
  void set_floor(BlockId block, Retention floor);
  // Frees a cached block now (its content is forgotten). False when the
  // block is pinned or not cached.
  bool drop(BlockId block);

  // The block holding KEY's content, if any (no pin, no verification).
  std::optional<BlockId> find(BlockKey key) const;
  BlockKey key_of(BlockId b) const { return meta_[static_cast<size_t>(b)].key; }
  BlockKey parent_of(BlockId b) const { return meta_[static_cast<size_t>(b)].parent; }
  std::span<const int32_t> tokens_of(BlockId b) const;  // content of a committed block

  int32_t n_free() const { return static_cast<int32_t>(free_count_); }
  int32_t n_cached() const { return static_cast<int32_t>(cached_count_); }
  int32_t n_pinned() const { return pool_.n_blocks() - n_free() - n_cached(); }
  int32_t ref_count(BlockId b) const { return meta_[static_cast<size_t>(b)].ref; }
  bool is_cached(BlockId b) const;
  const CacheStats& stats() const { return stats_; }
  KvPool& pool() { return pool_; }

  // Debug check of every invariant (counts, lists, map); returns an empty
  // string when all hold, else what is wrong. Tests call it after every step.
  std::string check_invariants() const;

 private:
  enum class Where : uint8_t { kFree, kPinned, kCachedNormal, kCachedLonger, kCachedPinned };
  struct Meta {
    BlockKey key = 0;  // 0: not committed
    BlockKey parent = 0;
    int32_t tail_len = 0;  // > 0: a tail of that many positions after PARENT (key 0)
    int32_t ref = 0;
    Where where = Where::kFree;
    Retention released_as = Retention::kNormal;  // by the last release()
    Retention floor = Retention::kNormal;
    int32_t prev = -1, next = -1;  // intrusive list links (free or eviction lists)
  };
  struct List {
    int32_t head = -1, tail = -1;
  };

  void push_back(List& l, BlockId b);
  void unlink(List& l, BlockId b);
  List& list_of(Where w);
  void forget(BlockId b);  // drop its key (or tail entry) from the maps
  void unref(BlockId b);   // ref - 1; at 0 onto the list of its class (or free)

  KvPool& pool_;
  uint64_t fingerprint_;
  std::vector<Meta> meta_;
  std::vector<int32_t> tokens_;  // [block][block_tokens]: content of committed blocks
  std::unordered_map<BlockKey, BlockId> by_key_;
  std::unordered_map<BlockKey, BlockId> tail_by_parent_;
  std::unordered_multimap<BlockKey, BlockId> children_;  // parent -> committed full blocks
  List free_, cached_normal_, cached_longer_, cached_pinned_;
  size_t free_count_ = 0, cached_count_ = 0;
  CacheStats stats_;
};

// hash(parent, tokens): the block key function (exposed for tests).
BlockKey block_key(BlockKey parent, std::span<const int32_t> tokens);

}  // namespace tandem::kv
