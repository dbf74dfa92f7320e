// Two engines ("nodes") with their own disk tiers sharing one real
// redis-server: a prefix computed on one is served on the other from Redis
// with identical output; a corrupt value is recomputed, never served; a
// Redis that is gone costs recomputation only.
#include "engine_fixture.h"
#include "kv/redis_tier.h"
#include "redis_server.h"

#include <hiredis/hiredis.h>

namespace tandem::engine {
namespace {

EngineOptions node(const std::string& name, const std::string& redis_url) {
  EngineOptions o = manual(64, kernels::KvType::kF16);
  o.cache_dir = test::scratch_dir("engine_redis_" + name);
  o.cache_disk_bytes = 1000 * (64 + 32 * 4 + 10240);
  o.redis_url = redis_url;
  return o;
}

// Runs R on a fresh node A and returns when its blocks are in Redis (the
// engine and its tiers are gone: the disk tier's writes and the Redis
// writer's queue are flushed on the way out).
void compute_on_node_a(Fixture& f, const std::string& url, const Request& r) {
  auto a = f.engine(node("a", url));
  run(*a, r);
  ASSERT_TRUE(a->flush().ok());
}

TEST(EngineRedis, AnotherNodeResumesFromRedisWithIdenticalOutput) {
  test::RedisServer redis;
  Fixture f;
  const Request turn = greedy(prompt_of(230, 5), 10);
  const auto expected = alone(f, turn);
  compute_on_node_a(f, redis.url(), turn);
  auto b = f.engine(node("b", redis.url()));
  const Event resumed = run(*b, turn);
  EXPECT_EQ(resumed.tokens, expected);
  EXPECT_EQ(resumed.usage.cached_tokens, 224) << "7 full blocks of 230 tokens";
  EXPECT_EQ(resumed.usage.disk_tokens, 224) << "staged from Redis, then read from B's disk";
  const EngineMetrics m = b->metrics();
  EXPECT_EQ(m.remote_hits, 7);
  EXPECT_EQ(m.remote_hit_tokens, 224);
  EXPECT_EQ(b->check_invariants(), "");
}

// A session started on node A, pinned there, arrives on node B: B adopts
// its manifest from Redis (listed, still pinned) and resumes it from Redis.
TEST(EngineRedis, ASessionMovesWithItsManifest) {
  test::RedisServer redis;
  Fixture f;
  Request turn = greedy(prompt_of(230, 8), 10);
  turn.session = "agent-1";
  const auto expected = alone(f, turn);
  {
    auto a = f.engine(node("a", redis.url()));
    run(*a, turn);
    ASSERT_EQ(a->pin_session("agent-1", true), Engine::SessionOp::kOk);
    ASSERT_TRUE(a->flush().ok());
  }
  auto b = f.engine(node("b", redis.url()));
  EXPECT_FALSE(b->session("agent-1").has_value());
  const Event resumed = run(*b, turn);
  EXPECT_EQ(resumed.tokens, expected);
  EXPECT_EQ(resumed.usage.cached_tokens, 224);
  auto info = b->session("agent-1");
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->pinned) << "the pin set on node A came along";
  EXPECT_EQ(b->check_invariants(), "");
}

TEST(EngineRedis, ACorruptValueIsRecomputedNeverServed) {
  test::RedisServer redis;
  Fixture f;
  const Request turn = greedy(prompt_of(230, 6), 10);
  const auto expected = alone(f, turn);
  compute_on_node_a(f, redis.url(), turn);
  // Flip one byte in the middle of every block value (the payload).
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c && !c->err);
  auto* keys = static_cast<redisReply*>(redisCommand(c, "KEYS *:b:*"));
  ASSERT_EQ(keys->elements, 8u);  // 7 blocks and the tail the flush stored
  int corrupted = 0;
  for (size_t i = 0; i < keys->elements; ++i) {
    auto* v = static_cast<redisReply*>(redisCommand(c, "GET %s", keys->element[i]->str));
    std::string value(v->str, v->len);
    freeReplyObject(v);
    value[value.size() / 2] ^= 0x40;
    freeReplyObject(redisCommand(c, "SET %s %b", keys->element[i]->str, value.data(), value.size()));
    ++corrupted;
  }
  freeReplyObject(keys);
  redisFree(c);
  ASSERT_EQ(corrupted, 8);
  auto b = f.engine(node("b", redis.url()));
  const Event recomputed = run(*b, turn);
  EXPECT_EQ(recomputed.tokens, expected);
  EXPECT_EQ(recomputed.usage.cached_tokens, 0);
  EXPECT_EQ(b->metrics().remote_bad_values, 1) << "the chain stops at its first bad value";
}

TEST(EngineRedis, RedisGoneCostsRecomputationOnly) {
  auto redis = std::make_unique<test::RedisServer>();
  const std::string url = redis->url();
  Fixture f;
  const Request turn = greedy(prompt_of(100, 7), 6);
  const auto expected = alone(f, turn);
  compute_on_node_a(f, url, turn);
  redis.reset();  // killed
  auto b = f.engine(node("b", url));
  const Event done = run(*b, turn);
  EXPECT_EQ(done.tokens, expected);
  EXPECT_EQ(done.usage.cached_tokens, 0);
  EXPECT_GT(b->metrics().remote_errors, 0);
  EXPECT_FALSE(b->metrics().remote_connected);
}

}  // namespace
}  // namespace tandem::engine
