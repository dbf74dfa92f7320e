#include "core/huge_buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <utility>

namespace tandem {
namespace {

TEST(HugeBuffer, AlignedZeroedAndWritable) {
  const size_t bytes = (size_t{5} << 20) + 123;  // not a whole number of huge pages
  HugeBuffer b = HugeBuffer::allocate(bytes);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.size(), bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u);
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(b.data()[i], 0) << i;
  EXPECT_EQ(b.data()[bytes - 1], 0);
  std::memset(b.data(), 0xab, bytes);
  EXPECT_EQ(b.data()[0], 0xab);
  EXPECT_EQ(b.data()[bytes - 1], 0xab);
}

TEST(HugeBuffer, MoveTransfersOwnership) {
  HugeBuffer a = HugeBuffer::allocate(4096);
  ASSERT_TRUE(a);
  a.data()[7] = 42;
  uint8_t* p = a.data();
  HugeBuffer b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is part of the contract
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.data()[7], 42);
  HugeBuffer c = HugeBuffer::allocate(8192);
  c = std::move(b);  // c's own region is unmapped, b's taken
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 4096u);
}

TEST(HugeBuffer, EmptyRequestIsEmpty) {
  HugeBuffer b = HugeBuffer::allocate(0);
  EXPECT_FALSE(b);
  EXPECT_EQ(b.size(), 0u);
}

}  // namespace
}  // namespace tandem
