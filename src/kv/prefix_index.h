// Content-addressed KV blocks: the prefix index over a KvPool's blocks.
//
// A full block's key is hash(parent key, its tokens, namespace), chained
// from a root that folds in the model fingerprint and KV type, so equal
// prefixes give equal keys whoever computed them. lookup() returns the
// longest cached prefix in whole blocks, verifying the tokens and parent of
// every hit, so a hash collision can never return wrong KV.
//
// The index knows what blocks contain (keys, parents, children, tails);
// who holds them and which go first when memory runs out is the block
// pool's (kv/block_pool.h): the index marks the blocks it registers as
// holding content, and forgets a block when the pool evicts or drops it.
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

#include "kv/block_pool.h"
#include "kv/kv_pool.h"

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace tandem::kv {

using BlockKey = uint64_t;

struct PrefixMatch {
  std::vector<BlockId> blocks;  // pinned (ref + 1 each); release them when done
  BlockKey last_key = 0;        // key of the last matched block (root key when none)
  int64_t tokens = 0;           // blocks.size() * block_tokens
};

struct IndexStats {
  int64_t lookups = 0, hit_blocks = 0, commits = 0;
};

// A block whose first TOKENS positions match a prompt past its whole blocks.
struct PartialMatch {
  BlockId block = -1;
  int tokens = 0;
};

class PrefixIndex {
 public:
  // Indexes POOL's blocks (and listens to its block pool's evictions).
  // FINGERPRINT identifies the model weights and KV layout; blocks of other
  // models never match.
  PrefixIndex(KvPool& pool, uint64_t fingerprint);
  PrefixIndex(const PrefixIndex&) = delete;
  PrefixIndex& operator=(const PrefixIndex&) = delete;
  ~PrefixIndex();

  int block_tokens() const { return block_tokens_; }
  BlockKey root_key(uint64_t ns = 0) const;

  // The longest cached prefix of TOKENS (whole blocks only), pinned.
  PrefixMatch lookup(std::span<const int32_t> tokens, uint64_t ns = 0);

  // Registers a pinned block whose block_tokens positions are now computed:
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

  // The block holding KEY's content, if any (no pin, no verification).
  std::optional<BlockId> find(BlockKey key) const;
  BlockKey key_of(BlockId b) const { return meta_[static_cast<size_t>(b)].key; }
  BlockKey parent_of(BlockId b) const { return meta_[static_cast<size_t>(b)].parent; }
  std::span<const int32_t> tokens_of(BlockId b) const;  // content of a committed block
  // Every cached tail: (parent, block, its tokens), for storing them.
  struct TailView {
    BlockKey parent;
    BlockId block;
    std::span<const int32_t> tokens;
  };
  std::vector<TailView> tails() const;

  BlockPool& blocks() { return blocks_; }
  const BlockPool& blocks() const { return blocks_; }
  const IndexStats& stats() const { return stats_; }

  // Every invariant of the index and of its block pool (maps, children,
  // tails, and that exactly the indexed blocks are marked as holding
  // content); "" when all hold. Tests call it after every step.
  std::string check_invariants() const;

 private:
  struct Meta {
    BlockKey key = 0;  // 0: not committed
    BlockKey parent = 0;
    int32_t tail_len = 0;  // > 0: a tail of that many positions after PARENT (key 0)
  };

  void forget(BlockId b);  // drops its key (or tail entry) from the maps

  BlockPool& blocks_;
  int block_tokens_;
  uint64_t root_seed_[2];  // fingerprint, KV type id
  std::vector<Meta> meta_;
  std::vector<int32_t> tokens_;  // [block][block_tokens]: content of committed blocks
  std::unordered_map<BlockKey, BlockId> by_key_;
  std::unordered_map<BlockKey, BlockId> tail_by_parent_;
  std::unordered_multimap<BlockKey, BlockId> children_;  // parent -> committed full blocks
  IndexStats stats_;
};

// hash(parent, tokens): the block key function (exposed for tests).
BlockKey block_key(BlockKey parent, std::span<const int32_t> tokens);

}  // namespace tandem::kv
