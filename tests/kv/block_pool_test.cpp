// Scenario tests of the block pool alone (no index, no storage): exact block
// ids handed out, ref counts, the eviction order of the three classes, and
// what the pool tells its index. Invariants checked after every step.
#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace tandem::kv {
namespace {

#define CHECK_INVARIANTS(p) ASSERT_EQ((p).check_invariants(), "")

// Allocates N blocks that will hold content (as the index marks them).
std::vector<BlockId> take(BlockPool& p, int n, bool content = true) {
  std::vector<BlockId> out;
  for (int i = 0; i < n; ++i) {
    auto b = p.allocate();
    EXPECT_TRUE(b.has_value());
    if (!b) break;
    p.set_has_content(*b, content);
    out.push_back(*b);
  }
  return out;
}

TEST(BlockPool, HandsOutInOrderAndFreesBlocksWithoutContent) {
  BlockPool p(4);
  CHECK_INVARIANTS(p);
  EXPECT_EQ(take(p, 3, false), (std::vector<BlockId>{0, 1, 2}));
  EXPECT_EQ(p.n_free(), 1);
  EXPECT_EQ(p.n_pinned(), 3);
  p.release(1);
  EXPECT_EQ(p.n_free(), 2) << "no content: straight back to the free list";
  EXPECT_EQ(p.n_cached(), 0);
  EXPECT_EQ(*p.allocate(), 3) << "free blocks go out in the order they were freed";
  EXPECT_EQ(*p.allocate(), 1);
  EXPECT_FALSE(p.allocate().has_value()) << "all pinned: the caller preempts";
  EXPECT_EQ(p.evictions(), 0);
  CHECK_INVARIANTS(p);
}

TEST(BlockPool, RefCountsPinUntilTheLastRelease) {
  BlockPool p(2);
  const BlockId b = take(p, 1)[0];
  p.retain(b);  // a second sequence shares the block
  EXPECT_EQ(p.ref_count(b), 2);
  p.release(b);
  EXPECT_EQ(p.n_pinned(), 1);
  p.release(b);
  EXPECT_TRUE(p.is_cached(b));
  p.retain(b);  // a hit takes it off its eviction list
  EXPECT_EQ(p.n_cached(), 0);
  EXPECT_EQ(p.ref_count(b), 1);
  CHECK_INVARIANTS(p);
}

// Plain blocks go first (oldest release first), then blocks kept longer,
// then those of pinned sessions; the index hears of each eviction.
TEST(BlockPool, EvictsByClassThenByReleaseOrder) {
  BlockPool p(5);
  std::vector<BlockId> evicted;
  p.on_evict([&](BlockId b) { evicted.push_back(b); });
  const auto b = take(p, 5);
  p.set_floor(b[4], Retention::kPinned);
  p.release(b[4]);
  p.release(b[2], Retention::kLonger);
  p.release(b[0]);
  p.release(b[3]);
  p.release(b[1], Retention::kLonger);
  EXPECT_EQ(p.eviction_class(b[4]), Retention::kPinned) << "a floor lifts a plain release";
  EXPECT_EQ(p.eviction_class(b[2]), Retention::kLonger);
  EXPECT_EQ(p.eviction_class(b[0]), Retention::kNormal);
  CHECK_INVARIANTS(p);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(p.allocate().has_value());
  EXPECT_EQ(evicted, (std::vector<BlockId>{b[0], b[3], b[2], b[1], b[4]}));
  EXPECT_EQ(p.evictions(), 5);
  for (BlockId x : b) EXPECT_FALSE(p.has_content(x)) << "a new owner starts empty";
  CHECK_INVARIANTS(p);
}

// The undo path: a reference taken and given back without saying anything
// about reuse (a lookup for a request that must wait, the disk tier writing
// a block) leaves the block in the class its last real release chose.
TEST(BlockPool, ReleaseKeepClassLeavesTheClassAlone) {
  BlockPool p(3);
  const auto b = take(p, 2);
  p.release(b[0], Retention::kLonger);
  p.release(b[1]);
  p.retain(b[0]);
  p.release_keep_class(b[0]);
  EXPECT_EQ(p.eviction_class(b[0]), Retention::kLonger);
  p.retain(b[0]);
  p.release(b[0]);  // a real release says "plain" this time
  EXPECT_EQ(p.eviction_class(b[0]), Retention::kNormal);
  // Kept class also decides the order: b[1] (plain, released first) goes first.
  p.retain(b[1]);
  p.release_keep_class(b[1]);
  ASSERT_TRUE(p.allocate().has_value());  // the free block
  EXPECT_EQ(*p.allocate(), b[0]) << "b[0] was released before b[1] went back on the list";
  CHECK_INVARIANTS(p);
}

TEST(BlockPool, FloorsMoveCachedBlocksBetweenClasses) {
  BlockPool p(2);
  const auto b = take(p, 2);
  p.release(b[0]);
  p.release(b[1]);
  p.set_floor(b[0], Retention::kPinned);  // a session pinned after the fact
  EXPECT_EQ(p.eviction_class(b[0]), Retention::kPinned);
  CHECK_INVARIANTS(p);
  EXPECT_EQ(*p.allocate(), b[1]);
  p.set_floor(b[0], Retention::kNormal);  // unpinned again
  EXPECT_EQ(p.eviction_class(b[0]), Retention::kNormal);
  EXPECT_EQ(*p.allocate(), b[0]);
  CHECK_INVARIANTS(p);
}

TEST(BlockPool, DropAndClearingContentFreeCachedBlocks) {
  BlockPool p(3);
  std::vector<BlockId> evicted;
  p.on_evict([&](BlockId b) { evicted.push_back(b); });
  const auto b = take(p, 3);
  EXPECT_FALSE(p.drop(b[0])) << "pinned blocks are not dropped";
  p.release(b[0]);
  p.release(b[1]);
  EXPECT_TRUE(p.drop(b[0]));
  EXPECT_EQ(evicted, (std::vector<BlockId>{b[0]})) << "the index forgets a dropped block";
  EXPECT_EQ(p.n_free(), 1);
  p.set_has_content(b[1], false);  // the index forgot it by itself (a replaced tail)
  EXPECT_EQ(p.n_free(), 2);
  EXPECT_EQ(evicted.size(), 1u) << "content the index cleared is not reported back";
  p.set_has_content(b[2], false);  // pinned: freed at its release
  p.release(b[2]);
  EXPECT_EQ(p.n_free(), 3);
  EXPECT_EQ(p.evictions(), 0) << "drops are not evictions";
  CHECK_INVARIANTS(p);
}

}  // namespace
}  // namespace tandem::kv
