// The internal invariants core/check.h guards, in the builds that check
// them (the sanitizer build, Debug): each violation aborts with its message
// instead of corrupting the cache. Skipped in Release, where the checks are
// compiled out of the hot paths.
#include "core/check.h"
#include "core/status.h"
#include "kv/kv_pool.h"
#include "kv/prefix_index.h"

#include <gtest/gtest.h>

#include <vector>

namespace tandem::kv {
namespace {

std::unique_ptr<KvPool> small_pool() {
  KvShape s;
  s.n_layers = 2;
  s.n_kv_heads = 2;
  s.head_dim = 8;
  s.block_tokens = 4;
  auto p = KvPool::create(s, s.block_bytes() * 4);
  EXPECT_TRUE(p.ok());
  return std::move(*p);
}

class DebugChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!TANDEM_DEBUG_CHECKS_ON) GTEST_SKIP() << "checks are compiled out of this build";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }
};

TEST_F(DebugChecks, ReleasingAFreeBlockAborts) {
  auto pool = small_pool();
  PrefixIndex cache(*pool, 1);
  const BlockId b = *cache.blocks().allocate();
  cache.blocks().release(b);
  EXPECT_DEATH(cache.blocks().release(b), "releasing block 0 whose ref count is 0");
}

TEST_F(DebugChecks, KvWriteOutsideTheBlockAborts) {
  auto pool = small_pool();
  const std::vector<float> row(16, 1.0f);
  pool->write(0, 1, 3, row.data(), row.data());  // the last slot of the last layer: fine
  EXPECT_DEATH(pool->write(0, 0, 4, row.data(), row.data()),
               "KV write out of range: block 0 of 4, layer 0 of 2, slot 4 of 4");
  EXPECT_DEATH(pool->write(4, 0, 0, row.data(), row.data()), "KV write out of range");
  EXPECT_DEATH(pool->write(0, 2, 0, row.data(), row.data()), "KV write out of range");
}

TEST_F(DebugChecks, AResultFromAnOkStatusAborts) {
  EXPECT_DEATH(
      {
        Result<int> r{Status()};
        (void)r;
      },
      "a Result built from an ok Status has no value");
  Result<int> fine{Status::error("no")};
  EXPECT_FALSE(fine.ok());
}

}  // namespace
}  // namespace tandem::kv
