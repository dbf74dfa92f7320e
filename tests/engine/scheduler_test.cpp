// The scheduling policy (engine/scheduler.h) on scripted scenarios: exact
// decisions from plain facts, a fake clock and a fake block budget; no
// model, no threads, no sleeps.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace tandem::engine {
namespace {

constexpr int kLow = 0, kNormal = 1, kHigh = 2;

SeqView seq(int priority, uint64_t arrival, int64_t tokens_left = 10, std::string_view session = {}) {
  SeqView v;
  v.priority = priority;
  v.arrival = arrival;
  v.tokens_left = tokens_left;
  v.session = session;
  return v;
}

TEST(Scheduler, AdmitsByPriorityThenArrival) {
  Scheduler s({512, 16, 0.0});
  const std::vector<SeqView> waiting = {seq(kNormal, 1), seq(kHigh, 2), seq(kLow, 3), seq(kNormal, 4), seq(kHigh, 5)};
  EXPECT_EQ(s.admission_order(waiting, {}, 0), (std::vector<size_t>{1, 4, 0, 3, 2}));
}

TEST(Scheduler, OneRequestPerSessionInOrder) {
  Scheduler s({512, 16, 0.0});
  const std::vector<SeqView> running = {seq(kNormal, 1, 1, "busy")};
  const std::vector<SeqView> waiting = {
      seq(kNormal, 2, 10, "a"), seq(kHigh, 3, 10, "a"),  // a's second waits for its first, whatever its priority
      seq(kLow, 4),                                      // no session: never held back
      seq(kHigh, 5, 10, "busy"),                         // its session runs
      seq(kNormal, 6, 10, "b")};
  EXPECT_EQ(s.admission_order(waiting, running, 0), (std::vector<size_t>{0, 4, 2}));
}

// Documented in engine/scheduler.h: effective priority = priority + aging x
// seconds waited. LOW (0) against a new HIGH (2) every step, one request
// running at a time, one second per step, aging 0.1/s: LOW is admitted
// when 0.1 t reaches 2, at step 20 (a tie goes to the earlier arrival).
TEST(Scheduler, AgingAdmitsLowUnderAConstantHighStreamAtAKnownStep) {
  for (double aging : {0.1, 0.0}) {
    Scheduler s({512, 1, aging});
    SeqView low = seq(kLow, 0);
    low.submitted_s = 0;
    int admitted_at = -1;
    for (int step = 0; step < 100 && admitted_at < 0; ++step) {
      SeqView high = seq(kHigh, static_cast<uint64_t>(step + 1));
      high.submitted_s = step;  // arrives now; the previous HIGH ran and finished
      const std::vector<SeqView> waiting = {low, high};
      if (s.admission_order(waiting, {}, step).front() == 0) admitted_at = step;
    }
    EXPECT_EQ(admitted_at, aging > 0 ? 20 : -1) << "aging " << aging;
  }
}

TEST(Scheduler, DecodesFirstThenPrefillChunksInOrder) {
  Scheduler s({512, 16, 0.0});
  std::vector<SeqView> running = {seq(kNormal, 1, 300), seq(kNormal, 2, 1), seq(kNormal, 3, 400), seq(kNormal, 4, 1),
                                  seq(kNormal, 5, 100)};
  running[4].loading = true;
  EXPECT_EQ(s.plan_chunks(running), (std::vector<int64_t>{300, 1, 210, 1, 0}));
  // A budget smaller than the decodes: the first ones in order.
  Scheduler tight({2, 16, 0.0});
  const std::vector<SeqView> decodes = {seq(kNormal, 1, 1), seq(kNormal, 2, 1), seq(kNormal, 3, 1)};
  EXPECT_EQ(tight.plan_chunks(decodes), (std::vector<int64_t>{1, 1, 0}));
}

TEST(Scheduler, PreemptsTheLowestLatestThatTheNeedyOneOutranks) {
  Scheduler s({512, 16, 0.0});
  std::vector<SeqView> running = {seq(kHigh, 1), seq(kNormal, 2), seq(kNormal, 5), seq(kLow, 3), seq(kLow, 4)};
  running[3].loading = true;  // never a victim while its prefix loads
  EXPECT_EQ(s.victim(running, 1), std::optional<size_t>(4));
  EXPECT_EQ(s.victim(running, 0), std::optional<size_t>(4));
  EXPECT_EQ(s.victim(running, 4), std::nullopt) << "the earlier LOW is not outranked by a later one";
  running[4].loading = true;
  EXPECT_EQ(s.victim(running, 1), std::optional<size_t>(2)) << "then the later NORMAL";
  EXPECT_EQ(s.victim(running, 2), std::nullopt) << "an older NORMAL is never pushed out by a newer one";
}

TEST(Scheduler, WatermarkKeepsABlockPerRunningSequence) {
  Scheduler s({512, 16, 0.0});
  EXPECT_EQ(s.watermark(100, 3), 4);  // 3 running + 1% of 100
  EXPECT_TRUE(s.fits(6, 10, 100, 3));
  EXPECT_FALSE(s.fits(7, 10, 100, 3));
  EXPECT_TRUE(s.fits(500, 0, 100, 0)) << "alone, a request always starts";
}

// ---- the whole policy against a fake block budget ----------------------------------

struct SimSeq {
  SeqView v;
  int64_t prompt = 0, generated = 0, max_tokens = 0;
  int64_t computed = 0, blocks = 0;
  int64_t total() const { return prompt + generated; }
};

struct SimResult {
  int64_t steps = 0, preemptions = 0, finished = 0, max_blocks_used = 0, computed_tokens = 0;
};

// A step as Engine::step() takes it, without a prefix cache (a preempted
// sequence recomputes all): admit while fits(), plan chunks with decodes
// first, take blocks for each chunk, preempt victim() when none is left.
SimResult simulate(const Scheduler& s, std::vector<SimSeq> all, int64_t pool, int64_t bt, bool watermark) {
  std::vector<SimSeq> waiting = std::move(all), running;
  SimResult r;
  int64_t used = 0;
  const auto blocks_for = [&](int64_t tokens) { return (tokens + bt - 1) / bt; };
  for (; (!waiting.empty() || !running.empty()) && r.steps < 100000; ++r.steps) {
    std::vector<SeqView> wv, rv;
    for (auto& q : waiting) wv.push_back(q.v);
    for (auto& q : running) rv.push_back(q.v);
    std::vector<bool> started(waiting.size(), false);
    for (size_t i : s.admission_order(wv, rv, 0)) {
      if (static_cast<int>(running.size()) >= s.options().max_batch_size) break;
      const int64_t need = blocks_for(waiting[i].total() + 1);
      if (watermark && !s.fits(need, pool - used, pool, running.size())) break;
      running.push_back(waiting[i]);
      started[i] = true;
    }
    size_t k = 0;
    std::erase_if(waiting, [&](const SimSeq&) { return started[k++]; });
    std::stable_partition(running.begin(), running.end(), [](const SimSeq& q) { return q.total() - q.computed == 1; });
    rv.clear();
    for (auto& q : running) {
      q.v.tokens_left = q.total() - q.computed;
      rv.push_back(q.v);
    }
    std::vector<int64_t> chunk = s.plan_chunks(rv);
    for (size_t i = 0; i < running.size(); ++i) {
      while (chunk[i] > 0 && running[i].blocks * bt < running[i].computed + chunk[i]) {
        if (used < pool) {
          ++used;
          ++running[i].blocks;
          continue;
        }
        rv.clear();
        for (auto& q : running) rv.push_back(q.v);
        const auto v = s.victim(rv, i);
        if (!v) {
          chunk[i] = running[i].blocks * bt - running[i].computed;
          break;
        }
        used -= running[*v].blocks;
        running[*v].blocks = running[*v].computed = 0;
        waiting.push_back(running[*v]);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(*v));
        chunk.erase(chunk.begin() + static_cast<std::ptrdiff_t>(*v));
        if (*v < i) --i;
        ++r.preemptions;
      }
    }
    r.max_blocks_used = std::max(r.max_blocks_used, used);
    for (size_t i = 0; i < running.size(); ++i) {
      SimSeq& q = running[i];
      q.computed += chunk[i];
      r.computed_tokens += chunk[i];
      if (chunk[i] > 0 && q.computed == q.total()) ++q.generated;  // its next token
    }
    std::erase_if(running, [&](SimSeq& q) {
      if (q.generated < q.max_tokens) return false;
      used -= q.blocks;
      ++r.finished;
      return true;
    });
  }
  return r;
}

// The thrash a new user met: 102 blocks of 32 tokens, 32 requests of
// 150-209 prompt tokens and 128 generated (9-11 blocks each: 16 running
// need ~1.6x the cache, all 32 ~3.3x). Admission by watermark finishes all of them within the budget
// with a fraction of the preemptions of admission by batch size alone.
TEST(Scheduler, WatermarkAdmissionDoesNotThrashAFullCache) {
  Scheduler s({512, 16, 0.1});
  std::vector<SimSeq> reqs;
  for (int i = 0; i < 32; ++i) {
    SimSeq q;
    q.v = seq(kNormal, static_cast<uint64_t>(i + 1));
    q.prompt = 150 + (i * 37) % 60;
    q.max_tokens = 128;
    reqs.push_back(q);
  }
  const SimResult with = simulate(s, reqs, 102, 32, true), without = simulate(s, reqs, 102, 32, false);
  EXPECT_EQ(with.finished, 32);
  EXPECT_EQ(without.finished, 32);
  EXPECT_LE(with.max_blocks_used, 102);
  EXPECT_LE(without.max_blocks_used, 102);
  std::printf("  watermark: %lld preemptions, %lld tokens computed; batch size only: %lld preemptions, %lld tokens\n",
              static_cast<long long>(with.preemptions), static_cast<long long>(with.computed_tokens),
              static_cast<long long>(without.preemptions), static_cast<long long>(without.computed_tokens));
  EXPECT_LE(with.preemptions * 20, without.preemptions);
  EXPECT_LT(with.computed_tokens, without.computed_tokens) << "less recomputation";
}

}  // namespace
}  // namespace tandem::engine
