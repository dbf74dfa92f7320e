// Token sampling for one request: logit bias, repetition / presence /
// frequency penalties, then greedy or temperature sampling with top-k,
// top-p and min-p filters, and optional top-n log-probabilities.
//
// Each request owns its Sampler and its random generator, seeded from the
// request: the same seed and the same logits give the same token, whatever
// else runs in the batch.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace tandem::engine {

struct SamplingParams {
  float temperature = 1.0f;         // <= 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1: off; divides positive logits of seen tokens, multiplies negative ones
  float presence_penalty = 0.0f;    // subtracted once from every seen token
  float frequency_penalty = 0.0f;   // subtracted per occurrence
  int penalty_last_n = 64;          // tokens of history the penalties look at
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit of a token
  uint64_t seed = 0;
  bool logprobs = false;  // compute the chosen token's log-probability (costs a pass over the vocabulary)
  int top_logprobs = 0;   // report this many alternatives (0..20); implies logprobs
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct Sample {
  int32_t token = -1;
  float logprob = 0;              // of the chosen token, under the penalized distribution at temperature 1 (if asked)
  std::vector<TokenLogprob> top;  // top_logprobs alternatives, best first
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int vocab);

  // Records a token of the sequence (prompt or generated) for the penalties.
  void accept(int32_t token);
  // Chooses the next token from LOGITS (vocab values; not modified).
  Sample sample(std::span<const float> logits);

 private:
  void sample_filtered(Sample& out);

  SamplingParams p_;
  int vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;  // ring of the last penalty_last_n tokens
  size_t history_next_ = 0;
  std::vector<float> work_;          // penalized logits
  std::vector<int32_t> counts_;      // per-token count in the history window (scratch)
  std::vector<int32_t> candidates_;  // scratch
  std::vector<float> probs_;         // scratch
};

}  // namespace tandem::engine
