#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace tandem::engine {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int n) {
  Sampler s(p, static_cast<int>(logits.size()));
  std::map<int32_t, int> h;
  for (int i = 0; i < n; ++i) ++h[s.sample(logits).token];
  return h;
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 4);
  EXPECT_EQ(s.sample(std::vector<float>{1, 3, 3, 2}).token, 1);
  p.temperature = -1;  // negative: greedy too
  EXPECT_EQ(Sampler(p, 4).sample(std::vector<float>{0, 0, 5, 0}).token, 2);
}

TEST(Sampler, FollowsTheDistribution) {
  SamplingParams p;
  p.seed = 42;
  const auto h = histogram(p, logits_of({0.5, 0.3, 0.2}), 20000);
  EXPECT_NEAR(h.at(0) / 20000.0, 0.5, 0.02);
  EXPECT_NEAR(h.at(1) / 20000.0, 0.3, 0.02);
  EXPECT_NEAR(h.at(2) / 20000.0, 0.2, 0.02);
  // Temperature 0.5 sharpens: p^2 normalized = .25/.38, .09/.38, .04/.38.
  p.temperature = 0.5f;
  const auto sharp = histogram(p, logits_of({0.5, 0.3, 0.2}), 20000);
  EXPECT_NEAR(sharp.at(0) / 20000.0, 0.25 / 0.38, 0.02);
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  const auto l = logits_of({0.2, 0.2, 0.2, 0.2, 0.2});
  auto run = [&](uint64_t seed) {
    SamplingParams p;
    p.seed = seed;
    Sampler s(p, 5);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l).token);
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, TopKTopPMinP) {
  const auto l = logits_of({0.5, 0.3, 0.15, 0.05});
  SamplingParams k1;
  k1.top_k = 1;
  EXPECT_EQ(histogram(k1, l, 500).size(), 1u);
  SamplingParams k2;
  k2.top_k = 2;
  auto h = histogram(k2, l, 5000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_NEAR(h.at(0) / 5000.0, 0.5 / 0.8, 0.03);
  SamplingParams tp;
  tp.top_p = 0.6f;  // 0.5 < 0.6 <= 0.8: tokens 0 and 1
  h = histogram(tp, l, 5000);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(0) && h.count(1));
  tp.top_p = 0.5f;  // exactly the first
  EXPECT_EQ(histogram(tp, l, 500).size(), 1u);
  SamplingParams mp;
  mp.min_p = 0.5f;  // p >= 0.25: tokens 0 and 1
  h = histogram(mp, l, 5000);
  EXPECT_EQ(h.size(), 2u);
  mp.min_p = 5.0f;  // clamped to 1: only the best
  EXPECT_EQ(histogram(mp, l, 500).size(), 1u);
}

TEST(Sampler, TopPOnALargeVocabulary) {
  // 150K tokens, one holding half the mass: top_p 0.4 keeps only it.
  std::vector<float> l(150000, 0.0f);
  l[12345] = std::log(150000.0f);
  SamplingParams p;
  p.top_p = 0.4f;
  EXPECT_EQ(histogram(p, l, 200), (std::map<int32_t, int>{{12345, 200}}));
}

TEST(Sampler, PenaltiesAndBias) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 1.2f;
  Sampler rep(p, 2);
  rep.accept(0);
  EXPECT_EQ(rep.sample(std::vector<float>{2.0f, 1.9f}).token, 1);  // 2 / 1.2 < 1.9
  p = {};
  p.temperature = 0;
  p.frequency_penalty = 0.5f;
  Sampler freq(p, 2);
  freq.accept(0);
  EXPECT_EQ(freq.sample(std::vector<float>{2.0f, 1.4f}).token, 0);  // 2 - 0.5 * 1 = 1.5 > 1.4
  freq.accept(0);
  EXPECT_EQ(freq.sample(std::vector<float>{2.0f, 1.4f}).token, 1);  // 2 - 0.5 * 2 = 1.0 < 1.4
  p = {};
  p.temperature = 0;
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 2;  // only the last two tokens count
  Sampler pres(p, 3);
  pres.accept(0);
  pres.accept(1);
  pres.accept(2);  // pushes token 0 out of the window
  EXPECT_EQ(pres.sample(std::vector<float>{1.0f, 1.5f, 1.5f}).token, 0);
  p = {};
  p.temperature = 0;
  p.logit_bias = {{2, 100.0f}, {99, 5.0f}};  // out-of-range ids are ignored
  EXPECT_EQ(Sampler(p, 3).sample(std::vector<float>{5, 4, 3}).token, 2);
}

TEST(Sampler, Logprobs) {
  SamplingParams p;
  p.temperature = 0;
  p.top_logprobs = 3;  // implies the chosen token's logprob
  Sampler s(p, 4);
  const auto out = s.sample(logits_of({0.1, 0.6, 0.2, 0.1}));
  EXPECT_EQ(out.token, 1);
  EXPECT_NEAR(out.logprob, std::log(0.6), 1e-5);
  ASSERT_EQ(out.top.size(), 3u);
  EXPECT_EQ(out.top[0].token, 1);
  EXPECT_EQ(out.top[1].token, 2);
  EXPECT_EQ(out.top[2].token, 0);  // ties: lower id first
  EXPECT_NEAR(out.top[1].logprob, std::log(0.2), 1e-5);
}

}  // namespace
}  // namespace tandem::engine
