#include "engine/memory_budget.h"

#include <gtest/gtest.h>

namespace tandem::engine {
namespace {

TEST(MemoryBudget, ParsesMeminfo) {
  const std::string text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
  EXPECT_EQ(*parse_mem_available(text), 20000000ull * 1024);
  EXPECT_FALSE(parse_mem_available("MemTotal: 5 kB\n").ok());
  EXPECT_FALSE(parse_mem_available("MemAvailable: lots\n").ok());
}

TEST(MemoryBudget, ExplicitOrFraction) {
  EXPECT_EQ(*kv_budget_bytes(512, 0.2), 512ull << 20);
  auto frac = kv_budget_bytes(0, 0.2);  // this machine's /proc/meminfo
  ASSERT_TRUE(frac.ok()) << frac.message();
  EXPECT_GT(*frac, 0u);
  EXPECT_NE(kv_budget_bytes(-1, 0.2).message().find("--kv-memory-mb"), std::string::npos);
  EXPECT_NE(kv_budget_bytes(0, 1.5).message().find("--kv-memory-percent"), std::string::npos);
  EXPECT_NE(kv_budget_bytes(0, 0.2, "/nonexistent").message().find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace tandem::engine
