// Scenario tests of the prefix index with tiny pools: exact block ids, hit
// lengths and eviction order; invariants checked after every step.
#include "kv/prefix_index.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tandem::kv {
namespace {

constexpr int kBlockTokens = 4;

std::unique_ptr<KvPool> tiny_pool(int n_blocks) {
  KvShape s;
  s.n_layers = 1;
  s.n_kv_heads = 1;
  s.head_dim = 4;
  s.block_tokens = kBlockTokens;
  auto p = KvPool::create(s, s.block_bytes() * static_cast<size_t>(n_blocks));
  EXPECT_TRUE(p.ok());
  return std::move(*p);
}

#define CHECK_INVARIANTS(cache) ASSERT_EQ((cache).check_invariants(), "")

// Computes TOKENS "from scratch": allocates a block per full chunk, commits
// it, and returns the block table (pinned).
std::vector<BlockId> fill(PrefixIndex& c, const std::vector<int32_t>& tokens, uint64_t ns = 0) {
  std::vector<BlockId> table;
  BlockKey parent = c.root_key(ns);
  for (size_t start = 0; start + kBlockTokens <= tokens.size(); start += kBlockTokens) {
    auto b = c.blocks().allocate();
    EXPECT_TRUE(b.has_value());
    table.push_back(*b);
    parent = c.commit(*b, parent, std::span<const int32_t>(tokens).subspan(start, kBlockTokens));
  }
  return table;
}

void release_all(PrefixIndex& c, const std::vector<BlockId>& table, Retention r = Retention::kNormal) {
  for (BlockId b : table) c.blocks().release(b, r);
}

std::vector<int32_t> seq(int from, int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(PrefixIndex, HitMissPrefixHit) {
  auto pool = tiny_pool(8);
  PrefixIndex c(*pool, 42);
  CHECK_INVARIANTS(c);
  EXPECT_EQ(c.blocks().n_free(), 8);
  const auto tmpl = seq(100, 8);              // a shared "template": 2 blocks
  const auto p1 = concat(tmpl, seq(200, 6));  // + 1 full block + 2 tokens
  const auto p2 = concat(tmpl, seq(300, 5));  // same template, other tail
  const auto p3 = seq(400, 9);                // nothing shared

  // MISS: nothing cached yet.
  auto m = c.lookup(p1);
  EXPECT_EQ(m.tokens, 0);
  const auto t1 = fill(c, p1);
  EXPECT_EQ(t1, (std::vector<BlockId>{0, 1, 2}));  // free list hands out 0, 1, 2 ...
  CHECK_INVARIANTS(c);
  release_all(c, t1);
  EXPECT_EQ(c.blocks().n_cached(), 3);
  CHECK_INVARIANTS(c);

  // HIT: the same prompt again finds every full block (the 2-token tail is recomputed).
  m = c.lookup(p1);
  EXPECT_EQ(m.blocks, (std::vector<BlockId>{0, 1, 2}));
  EXPECT_EQ(m.tokens, 12);
  EXPECT_EQ(c.blocks().n_pinned(), 3);
  CHECK_INVARIANTS(c);
  release_all(c, m.blocks);

  // PREFIX HIT: exactly the shared template blocks.
  m = c.lookup(p2);
  EXPECT_EQ(m.blocks, (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(m.tokens, 8);
  release_all(c, m.blocks);

  // MISS: another prompt; another namespace also misses.
  EXPECT_EQ(c.lookup(p3).tokens, 0);
  EXPECT_EQ(c.lookup(p1, /*ns=*/7).tokens, 0);
  // Back to prompt 1: hit.
  m = c.lookup(p1);
  EXPECT_EQ(m.tokens, 12);
  release_all(c, m.blocks);
  CHECK_INVARIANTS(c);
  EXPECT_EQ(c.stats().hit_blocks, 3 + 2 + 3);
}

TEST(PrefixIndex, EvictsLeastRecentlyReleasedThenLongerRetention) {
  auto pool = tiny_pool(4);
  PrefixIndex c(*pool, 1);
  const auto a = fill(c, seq(0, 4)), b = fill(c, seq(10, 4)), d = fill(c, seq(20, 4)), e = fill(c, seq(30, 4));
  EXPECT_EQ(c.blocks().n_free(), 0);
  EXPECT_FALSE(c.blocks().allocate().has_value());  // all pinned: none (the caller preempts)
  // Release order: d (kept longer: a session waiting on a tool call), a, e, b.
  release_all(c, d, Retention::kLonger);
  release_all(c, a);
  release_all(c, e);
  release_all(c, b);
  CHECK_INVARIANTS(c);
  // A hit on a cached block takes it out of the middle of the list.
  auto hit = c.lookup(seq(20, 4));
  EXPECT_EQ(hit.blocks, d);
  release_all(c, hit.blocks, Retention::kLonger);
  EXPECT_EQ(*c.blocks().allocate(), a[0]);  // plain blocks first, oldest release first
  EXPECT_EQ(*c.blocks().allocate(), e[0]);
  EXPECT_EQ(*c.blocks().allocate(), b[0]);
  EXPECT_EQ(*c.blocks().allocate(), d[0]);  // longer retention goes last
  EXPECT_EQ(c.blocks().evictions(), 4);
  CHECK_INVARIANTS(c);
  EXPECT_EQ(c.lookup(seq(0, 4)).tokens, 0);  // evicted content is gone
}

TEST(PrefixIndex, SharedBlocksAndDuplicates) {
  auto pool = tiny_pool(6);
  PrefixIndex c(*pool, 1);
  const auto t = fill(c, seq(0, 8));
  // A second sequence shares the same blocks: refcounts, not copies.
  auto m = c.lookup(seq(0, 8));
  EXPECT_EQ(m.blocks, t);
  EXPECT_EQ(c.blocks().ref_count(t[0]), 2);
  release_all(c, t);
  EXPECT_EQ(c.blocks().n_pinned(), 2);  // still pinned by the second
  release_all(c, m.blocks);
  EXPECT_EQ(c.blocks().n_cached(), 2);
  CHECK_INVARIANTS(c);
  // Two sequences computing the same content at once: one copy is kept.
  auto x = fill(c, seq(50, 4));
  auto y = fill(c, seq(50, 4));
  EXPECT_NE(x[0], y[0]);
  release_all(c, x);
  release_all(c, y);
  EXPECT_EQ(c.blocks().n_cached(), 3);  // 2 + one copy of the duplicate
  EXPECT_EQ(c.blocks().n_free(), 3);
  CHECK_INVARIANTS(c);
  EXPECT_EQ(c.lookup(seq(50, 4)).blocks, x);
}

TEST(PrefixIndex, ChainedKeysNeverMatchAcrossParents) {
  auto pool = tiny_pool(4);
  PrefixIndex c(*pool, 1);
  // Block content "B" after "A" is another block than "B" at the start.
  release_all(c, fill(c, concat(seq(0, 4), seq(10, 4))));
  EXPECT_EQ(c.lookup(seq(10, 4)).tokens, 0);
  EXPECT_NE(block_key(1, seq(10, 4)), block_key(2, seq(10, 4)));
  // Another model fingerprint never matches.
  auto pool2 = tiny_pool(4);
  PrefixIndex other(*pool2, 2);
  EXPECT_NE(other.root_key(), c.root_key());
}

// A finished sequence's partial last block: cached after its parent, handed
// to one sequence whose prompt goes on with (some of) its tokens, evicted
// like any cached block, replaced by a newer tail of the same parent.
TEST(PrefixIndex, TailsGoToOneSequenceAtATime) {
  auto pool = tiny_pool(4);
  PrefixIndex c(*pool, 42);
  const auto p = seq(100, 7);  // 1 full block + a 3-token tail
  auto table = fill(c, p);
  const BlockKey parent = c.key_of(table[0]);
  auto tail = c.blocks().allocate();
  ASSERT_TRUE(tail.has_value());
  c.commit_tail(*tail, parent, std::span<const int32_t>(p).subspan(4, 3));
  EXPECT_FALSE(c.take_tail(parent, std::span<const int32_t>(p).subspan(4))) << "its sequence still holds it";
  c.blocks().release(*tail);
  release_all(c, table);
  EXPECT_EQ(c.blocks().n_cached(), 2);
  EXPECT_EQ(c.key_of(*tail), 0u) << "tails have no key: they never go to disk";
  CHECK_INVARIANTS(c);

  // Not after another parent, nor when the next token differs.
  EXPECT_FALSE(c.take_tail(c.root_key(), std::span<const int32_t>(p).subspan(4)));
  const std::vector<int32_t> other{999, 105};
  EXPECT_FALSE(c.take_tail(parent, other));
  // A prompt that agrees on 2 of the 3 positions takes the block: it will
  // overwrite the third.
  const std::vector<int32_t> diverging{104, 105, 7, 8};
  auto t = c.take_tail(parent, diverging);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->block, *tail);
  EXPECT_EQ(t->tokens, 2);
  EXPECT_EQ(c.blocks().ref_count(*tail), 1);
  EXPECT_EQ(c.blocks().n_cached(), 1);
  CHECK_INVARIANTS(c);
  EXPECT_FALSE(c.take_tail(parent, diverging)) << "a tail serves one sequence";
  // Its new owner ends with 3 positions again: a tail once more.
  c.commit_tail(*tail, parent, std::span<const int32_t>(diverging).first(3));
  c.blocks().release(*tail);
  CHECK_INVARIANTS(c);
  // A prompt shorter than the tail uses what it has.
  const std::vector<int32_t> one{104};
  t = c.take_tail(parent, one);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->tokens, 1);
  c.blocks().release(t->block);
  EXPECT_EQ(c.blocks().n_free(), 3) << "a taken tail released without a new commit is free";
  CHECK_INVARIANTS(c);

  // A newer tail of the same parent replaces the older; eviction forgets it.
  auto a = c.blocks().allocate(), b = c.blocks().allocate();
  c.commit_tail(*a, parent, std::span<const int32_t>(p).subspan(4, 1));
  c.blocks().release(*a);
  c.commit_tail(*b, parent, std::span<const int32_t>(p).subspan(4, 2));
  c.blocks().release(*b);
  EXPECT_EQ(c.blocks().n_cached(), 2);  // the full block and the newer tail
  CHECK_INVARIANTS(c);
  while (c.blocks().n_free() > 0) c.blocks().allocate();
  auto victim = c.blocks().allocate();  // the least recently released: the full block
  ASSERT_TRUE(victim.has_value());
  auto victim2 = c.blocks().allocate();  // then the tail
  ASSERT_TRUE(victim2.has_value());
  EXPECT_EQ(*victim2, *b);
  EXPECT_FALSE(c.take_tail(parent, std::span<const int32_t>(p).subspan(4)));
  CHECK_INVARIANTS(c);
}

// A prompt that leaves a cached conversation inside a full block finds the
// head it shares with that block (the caller copies it; the block stays).
TEST(PrefixIndex, LongestChildSharesAHead) {
  auto pool = tiny_pool(6);
  PrefixIndex c(*pool, 42);
  const auto a = seq(100, 8), b = concat(seq(100, 4), std::vector<int32_t>{104, 105, 900, 901});
  release_all(c, fill(c, a));
  release_all(c, fill(c, b));  // first block shared, second differs after 2 tokens
  EXPECT_EQ(c.blocks().n_cached(), 3);
  CHECK_INVARIANTS(c);
  const BlockKey parent = block_key(c.root_key(), std::span<const int32_t>(a).first(4));
  const std::vector<int32_t> goes_on{104, 105, 106, 0};
  auto m = c.longest_child(parent, goes_on);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->tokens, 3);  // a's second block: 104 105 106
  EXPECT_EQ(c.tokens_of(m->block)[2], 106);
  EXPECT_EQ(c.blocks().ref_count(m->block), 1);
  EXPECT_NE(c.key_of(m->block), 0u) << "still a cached, shared block";
  c.blocks().release(m->block);
  const std::vector<int32_t> other{104, 105, 900};
  m = c.longest_child(parent, other);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->tokens, 3);
  c.blocks().release(m->block);
  EXPECT_FALSE(c.longest_child(parent, std::vector<int32_t>{7}));
  EXPECT_FALSE(c.longest_child(c.root_key(), std::vector<int32_t>{999}));
  // Evicted blocks are no longer children.
  while (c.blocks().n_free() > 0) c.blocks().allocate();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.blocks().allocate().has_value());
  EXPECT_FALSE(c.longest_child(parent, goes_on));
  CHECK_INVARIANTS(c);
}

}  // namespace
}  // namespace tandem::kv
