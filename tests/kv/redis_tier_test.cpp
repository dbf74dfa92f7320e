// The Redis tier against a real redis-server: values verified on read
// (corrupt, truncated or foreign values are misses), chains read in one
// round trip, and Redis going away and coming back without an error
// reaching the caller.
#include "kv/redis_tier.h"
#include "redis_server.h"

#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include <numeric>

namespace tandem::kv {
namespace {

constexpr uint32_t kTokens = 4, kBytes = 64;

BlockMeta meta_of(uint64_t key, uint64_t parent, int32_t first) {
  BlockMeta m{key, parent, std::vector<int32_t>(kTokens)};
  std::iota(m.tokens.begin(), m.tokens.end(), first);
  return m;
}

std::vector<uint8_t> payload_of(uint8_t seed) {
  std::vector<uint8_t> p(kBytes);
  std::iota(p.begin(), p.end(), seed);
  return p;
}

RedisTierOptions options(const std::string& url) {
  RedisTierOptions o;
  o.url = url;
  o.key_prefix = "tandem-test";
  o.block_tokens = kTokens;
  o.block_bytes = kBytes;
  o.timeout = std::chrono::milliseconds(300);
  return o;
}

TEST(RedisTier, UrlsOfEveryForm) {
  auto a = parse_redis_url("redis://:secret@cache.local:6380/2");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->host, "cache.local");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  EXPECT_EQ(a->password, "secret");
  auto u = parse_redis_url("unix:///run/redis/redis.sock?db=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(u->db, 1);
  EXPECT_EQ(parse_redis_url("redis://127.0.0.1")->port, 6379);
  EXPECT_FALSE(parse_redis_url("http://x").ok());
  EXPECT_FALSE(parse_redis_url("redis://h:99999").ok());
  EXPECT_FALSE(parse_redis_url("redis://h/x").ok());
}

TEST(RedisTier, ValuesAreCheckedAgainstWhatWasAskedFor) {
  const BlockMeta m = meta_of(11, 7, 100);
  const auto payload = payload_of(3);
  const auto v = encode_block(m, payload);
  EXPECT_EQ(decode_block(v, m, kBytes), payload);
  EXPECT_TRUE(decode_block(v, meta_of(12, 7, 100), kBytes).empty()) << "another key";
  EXPECT_TRUE(decode_block(v, meta_of(11, 8, 100), kBytes).empty()) << "another parent";
  EXPECT_TRUE(decode_block(v, meta_of(11, 7, 101), kBytes).empty()) << "other tokens";
  EXPECT_TRUE(decode_block(v, m, kBytes * 2).empty()) << "another block size (model layout)";
  auto flipped = v;
  flipped.back() ^= 1;
  EXPECT_TRUE(decode_block(flipped, m, kBytes).empty()) << "a flipped payload bit";
  EXPECT_TRUE(decode_block(std::span<const uint8_t>(v).first(v.size() - 1), m, kBytes).empty()) << "truncated";
}

TEST(RedisTier, ChainsRoundTripAndStopAtTheFirstGapOrBadValue) {
  test::RedisServer redis;
  auto tier = RedisTier::open(options(redis.url()));
  ASSERT_TRUE(tier.ok());
  const std::vector<BlockMeta> chain = {meta_of(1, 0, 0), meta_of(2, 1, 4), meta_of(3, 2, 8), meta_of(4, 3, 12)};
  for (size_t i = 0; i < 3; ++i) (*tier)->put_block(chain[i], payload_of(static_cast<uint8_t>(i)));
  (*tier)->drain();
  auto got = (*tier)->get_chain(chain);
  ASSERT_EQ(got.size(), 3u) << "block 4 was never written";
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i], payload_of(static_cast<uint8_t>(i)));

  // A value someone else wrote under block 2's name (garbage, or another block) is a miss.
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c && !c->err);
  const std::string name = (*tier)->block_key_name(2);
  freeReplyObject(redisCommand(c, "SET %s %s", name.c_str(), "not a block"));
  EXPECT_EQ((*tier)->get_chain(chain).size(), 1u);
  const auto other = encode_block(chain[2], payload_of(2));
  freeReplyObject(redisCommand(c, "SET %s %b", name.c_str(), other.data(), other.size()));
  EXPECT_EQ((*tier)->get_chain(chain).size(), 1u);
  redisFree(c);
  const RedisTierStats s = (*tier)->stats();
  EXPECT_EQ(s.bad_values, 2);
  EXPECT_EQ(s.hits, 3 + 1 + 1);
  EXPECT_EQ(s.writes, 3);
  EXPECT_TRUE(s.connected);
}

TEST(RedisTier, RedisDownIsAMissAndComesBackByItself) {
  const int port = test::free_port();
  auto tier = RedisTier::open(options("redis://127.0.0.1:" + std::to_string(port)));
  ASSERT_TRUE(tier.ok()) << "opening never needs Redis up";
  const BlockMeta m = meta_of(5, 0, 0);
  (*tier)->put_block(m, payload_of(9));
  (*tier)->drain();
  EXPECT_TRUE((*tier)->get_chain(std::span<const BlockMeta>(&m, 1)).empty());
  EXPECT_GT((*tier)->stats().errors, 0);
  EXPECT_EQ((*tier)->stats().dropped_writes, 1);
  test::RedisServer redis(port);
  // Reconnects after its backoff (0.5 s at first).
  bool back = false;
  for (int i = 0; i < 40 && !back; ++i) {
    (*tier)->put_block(m, payload_of(9));
    (*tier)->drain();
    back = (*tier)->get_chain(std::span<const BlockMeta>(&m, 1)).size() == 1;
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(back);
  EXPECT_GE((*tier)->stats().reconnects, 1);
}

}  // namespace
}  // namespace tandem::kv
