// The engine with stories260K: batched output equals sequential output,
// the prefix cache serves repeated prompts, sessions run in order, aging
// lets LOW requests through, stop strings, errors, invariants every step.
#include "engine/engine.h"

#include "engine_fixture.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <random>
#include <thread>

namespace tandem::engine {
namespace {

// With every KV type (a q8_0 token's bytes depend only on its own rows).
class EngineKv : public ::testing::TestWithParam<kernels::KvType> {};

TEST_P(EngineKv, BatchedEqualsSequential) {
  const kernels::KvType kv_type = GetParam();
  Fixture f;
  std::mt19937 rng(99);
  // Shared "system prompts" of 40..90 tokens, random tails, lengths, priorities, sessions.
  std::vector<std::vector<int32_t>> templates;
  for (int t = 0; t < 4; ++t) {
    std::vector<int32_t> p{1};
    for (int i = 0, n = 40 + static_cast<int>(rng() % 50); i < n; ++i)
      p.push_back(3 + static_cast<int32_t>(rng() % 500));
    templates.push_back(p);
  }
  std::vector<Request> reqs;
  for (int i = 0; i < 200; ++i) {
    auto p = templates[rng() % templates.size()];
    for (int j = 0, n = 1 + static_cast<int>(rng() % 30); j < n; ++j)
      p.push_back(3 + static_cast<int32_t>(rng() % 500));
    Request r = greedy(p, 1 + static_cast<int>(rng() % 40));
    r.priority = static_cast<Priority>(rng() % 3);
    if (rng() % 3 == 0) r.session = "s" + std::to_string(rng() % 10);
    reqs.push_back(r);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& r : reqs) expected.push_back(alone(f, r, kv_type));

  // A small cache (64 blocks of 32 tokens) forces evictions and preemption.
  auto e = f.engine(manual(64, kv_type));
  std::vector<std::shared_ptr<Stream>> streams;
  std::map<uint64_t, std::vector<int32_t>> got;
  std::map<uint64_t, StopReason> stops;
  std::set<size_t> cancelled;
  for (size_t i = 0; i < reqs.size(); ++i) streams.push_back(e->submit(reqs[i]));
  for (int step = 0; step < 100000; ++step) {
    if (rng() % 10 == 0) {  // cancel a random request now and then
      const size_t victim = rng() % streams.size();
      e->cancel(streams[victim]->id());
      cancelled.insert(victim);
    }
    if (!e->step()) break;
    ASSERT_EQ(e->check_invariants(), "") << "after step " << step;
    for (auto& s : streams) {
      while (auto ev = s->next(std::chrono::milliseconds(0))) {
        auto& t = got[s->id()];
        t.insert(t.end(), ev->tokens.begin(), ev->tokens.end());
        if (ev->done) stops[s->id()] = ev->stop;
      }
    }
  }
  size_t compared = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const uint64_t id = streams[i]->id();
    ASSERT_TRUE(stops.count(id)) << "request " << i << " never finished";
    if (stops[id] == StopReason::kCancelled) {
      EXPECT_TRUE(cancelled.count(i));
      continue;
    }
    EXPECT_EQ(got[id], expected[i]) << "request " << i;
    ++compared;
  }
  EXPECT_GT(compared, 100u);
  const auto m = e->metrics();
  EXPECT_GT(m.preemptions + m.evictions, 0);                            // the small cache was under pressure
  EXPECT_EQ(m.kv_blocks_free + m.kv_blocks_cached, m.kv_blocks_total);  // nothing left pinned
  EXPECT_GT(m.cached_tokens, 0);
  EXPECT_EQ(m.kv_blocks_total, 64);
}

INSTANTIATE_TEST_SUITE_P(KvTypes, EngineKv,
                         ::testing::Values(kernels::KvType::kF16, kernels::KvType::kQ8_0, kernels::KvType::kBF16),
                         [](const auto& info) { return std::string(kernels::kv_type_name(info.param)); });

TEST(Engine, PrefixCacheServesRepeatedPrompts) {
  Fixture f;
  auto e = f.engine(manual());
  // One request run to the end; NS > 0 is a cache namespace nothing else uses (cold).
  auto run = [&](const std::vector<int32_t>& p, int n, uint64_t ns = 0) {
    auto r = greedy(p, n);
    r.cache_namespace = ns;
    auto s = e->submit(r);
    drain(*e);
    return s->wait();
  };
  std::vector<int32_t> prompt{1};
  for (int i = 0; i < 100; ++i) prompt.push_back(3 + (i * 7) % 500);
  const Event a = run(prompt, 10);
  EXPECT_EQ(a.usage.cached_tokens, 0);
  EXPECT_EQ(a.usage.prompt_tokens, 101);
  const Event b = run(prompt, 10);
  // 3 full blocks of 32 and 4 positions of the first request's tail (its
  // partial last block); the last prompt token is recomputed for its logits.
  EXPECT_EQ(b.usage.cached_tokens, 100);
  EXPECT_EQ(b.tokens, a.tokens);
  // The next turn of the conversation reuses the first turn's blocks and its
  // whole tail: the 101 prompt tokens and 9 of the 10 generated ones (the
  // last was never fed back), so only 2 positions are computed, and gives
  // the ids of computing it from scratch.
  auto turn2 = prompt;
  turn2.insert(turn2.end(), a.tokens.begin(), a.tokens.end());
  turn2.push_back(5);
  const Event c = run(turn2, 5);
  EXPECT_EQ(c.usage.cached_tokens, 110);
  const Event d = run(turn2, 5, 77);
  EXPECT_EQ(d.usage.cached_tokens, 0);
  EXPECT_EQ(d.tokens, c.tokens);
  // A prompt that leaves the conversation inside a full block (token 40 of
  // the 101) copies the head it shares with that block: 40 cached tokens,
  // and the same ids as from scratch.
  auto edited = prompt;
  edited[40] = 499;
  const Event g = run(edited, 5);
  EXPECT_EQ(g.usage.cached_tokens, 40);
  EXPECT_EQ(run(edited, 5, 78).tokens, g.tokens);
  // Counted: b and c took tails (4 and 14 tokens), g copied an 8-token head.
  const EngineMetrics m = e->metrics();
  EXPECT_EQ(m.tail_hits, 2);
  EXPECT_EQ(m.head_copies, 1);
  EXPECT_EQ(m.partial_block_tokens, 4 + 14 + 8);
}

TEST(Engine, SessionsRunInOrder) {
  Fixture f;
  auto e = f.engine(manual());
  std::vector<std::shared_ptr<Stream>> s;
  for (int i = 0; i < 3; ++i) {
    Request r = greedy({1, 403, 407, 261, static_cast<int32_t>(378 + i)}, 8);
    r.session = "agent";
    r.ignore_eos = true;
    s.push_back(e->submit(r));
  }
  std::vector<int> first_step(3, -1), done_step(3, -1);
  for (int step = 0; e->step(); ++step) {
    for (int i = 0; i < 3; ++i) {
      while (auto ev = s[static_cast<size_t>(i)]->next(std::chrono::milliseconds(0))) {
        if (first_step[static_cast<size_t>(i)] < 0) first_step[static_cast<size_t>(i)] = step;
        if (ev->done) done_step[static_cast<size_t>(i)] = step;
      }
    }
  }
  EXPECT_GT(first_step[1], done_step[0]);
  EXPECT_GT(first_step[2], done_step[1]);
}

// The engine's side of aging (the exact step is Scheduler's test): with
// a scripted clock, one second per step, a LOW request under a constant
// stream of HIGH ones gets through only when aging is on. No sleeps.
TEST(Engine, AgingLetsLowPriorityThrough) {
  Fixture f;
  for (double aging : {0.0, 0.1}) {
    EngineOptions o = manual();
    o.max_batch_size = 1;
    o.aging_per_s = aging;
    double now = 0;
    o.clock_s = [&now] { return now; };
    auto e = f.engine(o);
    Request low = greedy({1, 403, 407}, 2);
    low.priority = Priority::kLow;
    low.ignore_eos = true;
    auto low_stream = e->submit(low);
    bool low_done = false;
    for (int step = 0; step < 300 && !low_done; ++step) {
      Request high = greedy({1, 291, 348}, 2);  // a constant stream of HIGH requests
      high.priority = Priority::kHigh;
      high.ignore_eos = true;
      e->submit(high);
      e->step();
      now += 1;
      while (auto ev = low_stream->next(std::chrono::milliseconds(0))) low_done = low_done || ev->done;
    }
    EXPECT_EQ(low_done, aging > 0) << "aging " << aging;
  }
}

// Two long sequences that cannot both fit: the later one is preempted
// (its blocks stay cached), resumes, and produces exactly its output alone.
TEST(Engine, PreemptionThenResumeGivesIdenticalOutput) {
  Fixture f;
  std::vector<Request> reqs;
  for (int i = 0; i < 2; ++i) {
    std::vector<int32_t> p{1};
    for (int j = 0; j < 70; ++j) p.push_back(3 + (j * (5 + i)) % 500);
    Request r = greedy(p, 120);
    r.ignore_eos = true;
    reqs.push_back(r);
  }
  const auto a = alone(f, reqs[0]), b = alone(f, reqs[1]);
  ASSERT_EQ(a.size(), 120u);
  auto e = f.engine(manual(9));  // 9 blocks = 288 tokens < 2 x 190
  auto sa = e->submit(reqs[0]);
  auto sb = e->submit(reqs[1]);
  drain(*e);
  EXPECT_EQ(sa->wait().tokens, a);
  EXPECT_EQ(sb->wait().tokens, b);
  EXPECT_GT(e->metrics().preemptions, 0);
  EXPECT_EQ(e->metrics().kv_blocks_total, 9);
}

TEST(Engine, StopStringsAcrossTokens) {
  Fixture f;
  auto e = f.engine(manual());
  // Alone: ", there was a little girl named Lily. ..." (stories260K greedy).
  Request r = greedy({1, 403, 407, 261, 378}, 32);
  r.stop = {"e gi", "never matches"};
  auto s = e->submit(r);
  drain(*e);
  const Event ev = s->wait();
  EXPECT_EQ(ev.stop, StopReason::kStopString);
  EXPECT_EQ(ev.text, ", there was a littl");
}

TEST(Engine, RejectsBadRequestsWithMessages) {
  Fixture f;
  auto e = f.engine(manual(4));  // 4 blocks: 128 tokens of KV
  auto empty = e->submit(greedy({}, 4));
  auto bad = e->submit(greedy({1, 99999}, 4));
  auto huge = e->submit(greedy(std::vector<int32_t>(200, 5), 4));
  auto too_long = e->submit(greedy(std::vector<int32_t>(600, 5), 4));
  drain(*e);
  EXPECT_EQ(empty->wait().error, "the prompt is empty");
  EXPECT_EQ(bad->wait().error, "token id 99999 is outside the vocabulary");
  EXPECT_NE(huge->wait().error.find("does not fit the KV cache"), std::string::npos);
  const Event tl = too_long->wait();
  EXPECT_EQ(tl.stop, StopReason::kRefused);
  EXPECT_EQ(tl.error, "prompt is too long: 600 tokens > 511 maximum");
}

TEST(Engine, SessionLimits) {
  Fixture f;
  EngineOptions o = manual();
  o.max_sessions = 2;
  o.max_tokens_per_session = 20;
  auto e = f.engine(o);
  auto with_session = [&](const std::string& s, std::vector<int32_t> p, int n) {
    Request r = greedy(std::move(p), n);
    r.session = s;
    r.ignore_eos = true;
    return e->submit(r);
  };
  auto a = with_session("a", {1, 403, 407}, 100);
  auto b = with_session("b", {1, 403, 407}, 5);
  auto a2 = with_session("a", {1, 291}, 5);  // same session: queues behind "a"
  auto c = with_session("c", {1, 291}, 5);   // a third session: refused
  auto big = with_session("", std::vector<int32_t>(25, 9), 5);
  drain(*e);
  const Event ea = a->wait();
  EXPECT_EQ(ea.stop, StopReason::kMaxTokens);
  EXPECT_EQ(ea.usage.prompt_tokens + ea.usage.generated_tokens, 20);  // capped by the per-session limit
  EXPECT_EQ(b->wait().stop, StopReason::kMaxTokens);
  EXPECT_EQ(a2->wait().error, "");
  EXPECT_EQ(c->wait().error, "too many active sessions (2); try again later");
  EXPECT_EQ(big->wait().error, "a prompt of 25 tokens exceeds the limit of 20 tokens per session");
}

TEST(Engine, DestructionEndsOpenStreams) {
  Fixture f;
  std::shared_ptr<Stream> s;
  {
    auto e = f.engine(manual());
    s = e->submit(greedy({1, 403, 407}, 50));
    e->step();  // running, not finished
  }
  const Event ev = s->wait();  // does not hang
  EXPECT_EQ(ev.stop, StopReason::kCancelled);
  EXPECT_EQ(ev.error, "the engine is shutting down");
}

TEST(Engine, ThreadedSubmitFromManyClients) {
  Fixture f;
  std::vector<Request> reqs;
  for (int i = 0; i < 24; ++i) {
    Request r = greedy({1, 403, 407, 261, static_cast<int32_t>(300 + i)}, 20);
    if (i % 2) {
      r.sampling.temperature = 0.9f;  // sampled: the seed makes it reproducible
      r.sampling.seed = static_cast<uint64_t>(i);
    }
    reqs.push_back(r);
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& r : reqs) expected.push_back(alone(f, r));
  EngineOptions o = manual();
  o.start_thread = true;
  auto e = f.engine(o);
  std::vector<std::vector<int32_t>> got(reqs.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < reqs.size(); ++i) {
    clients.emplace_back([&, i] { got[i] = e->submit(reqs[i])->wait().tokens; });
  }
  for (auto& c : clients) c.join();
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i], expected[i]) << i;
}

}  // namespace
}  // namespace tandem::engine
