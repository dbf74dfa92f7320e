#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tandem::engine {

Sampler::Sampler(const SamplingParams& params, int vocab)
    : p_(params), vocab_(vocab), rng_(params.seed), counts_(static_cast<size_t>(vocab), 0) {
  p_.top_logprobs = std::clamp(p_.top_logprobs, 0, 20);
  p_.min_p = std::clamp(p_.min_p, 0.0f, 1.0f);  // the best token always survives
  if (!(p_.top_p > 0.0f) || p_.top_p > 1.0f) p_.top_p = 1.0f;
  if (!(p_.temperature > 0.0f)) p_.temperature = 0.0f;  // NaN or negative: greedy
  p_.penalty_last_n = std::max(0, p_.penalty_last_n);
}

void Sampler::accept(int32_t token) {
  if (p_.penalty_last_n == 0 || token < 0 || token >= vocab_) return;
  if (history_.size() < static_cast<size_t>(p_.penalty_last_n)) {
    history_.push_back(token);
  } else {
    history_[history_next_] = token;
    history_next_ = (history_next_ + 1) % history_.size();
  }
}

// Temperature sampling over the candidates that survive top-k, min-p and
// top-p, in that order. Weights are exp((l - l_max) / T), so the best
// token weighs 1 and min-p is a plain threshold on the weight.
void Sampler::sample_filtered(Sample& out) {
  const double inv_t = 1.0 / p_.temperature;
  auto by_logit = [&](int32_t a, int32_t b) {
    const float la = work_[static_cast<size_t>(a)], lb = work_[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  candidates_.resize(static_cast<size_t>(vocab_));
  std::iota(candidates_.begin(), candidates_.end(), 0);
  size_t n = candidates_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::nth_element(candidates_.begin(), candidates_.begin() + p_.top_k, candidates_.end(), by_logit);
    n = static_cast<size_t>(p_.top_k);
  }
  const float top = *std::max_element(work_.begin(), work_.end());
  probs_.resize(n);
  size_t kept = 0;
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const float w = std::exp((work_[static_cast<size_t>(candidates_[i])] - top) * static_cast<float>(inv_t));
    if (w < p_.min_p) continue;
    candidates_[kept] = candidates_[i];
    probs_[kept++] = w;
    total += w;
  }
  n = kept;
  if (p_.top_p < 1.0f && n > 1) {
    // Grow a sorted prefix until it holds top_p of the mass: the mass sits
    // in a few tokens, so a full sort of 150K candidates is rarely needed.
    std::vector<int32_t>& c = candidates_;
    size_t sorted = 0, grow = std::min<size_t>(n, 64);
    double mass = 0;
    for (;;) {
      std::partial_sort(c.begin() + static_cast<std::ptrdiff_t>(sorted), c.begin() + static_cast<std::ptrdiff_t>(grow),
                        c.begin() + static_cast<std::ptrdiff_t>(n), by_logit);
      bool done = false;
      for (; sorted < grow; ++sorted) {
        mass += std::exp((work_[static_cast<size_t>(c[sorted])] - top) * inv_t);
        if (mass >= p_.top_p * total) {
          ++sorted;
          done = true;
          break;
        }
      }
      if (done || sorted == n) break;
      grow = std::min(n, grow * 4);
    }
    n = sorted;
    total = mass;
    for (size_t i = 0; i < n; ++i)
      probs_[i] = static_cast<float>(std::exp((work_[static_cast<size_t>(c[i])] - top) * inv_t));
  }
  std::uniform_real_distribution<double> u(0.0, total);
  const double r = u(rng_);
  double acc = 0;
  out.token = candidates_[n - 1];
  for (size_t i = 0; i < n; ++i) {
    acc += probs_[i];
    if (r < acc) {
      out.token = candidates_[i];
      break;
    }
  }
}

Sample Sampler::sample(std::span<const float> logits) {
  work_.assign(logits.begin(), logits.begin() + vocab_);
  for (const auto& [tok, bias] : p_.logit_bias) {
    if (tok >= 0 && tok < vocab_) work_[static_cast<size_t>(tok)] += bias;
  }
  const bool penalize = p_.repetition_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
  if (penalize && !history_.empty()) {
    for (int32_t t : history_) ++counts_[static_cast<size_t>(t)];
    for (int32_t t : history_) {
      int32_t& c = counts_[static_cast<size_t>(t)];
      if (c == 0) continue;  // already applied for this token
      float& l = work_[static_cast<size_t>(t)];
      if (p_.repetition_penalty != 1.0f) l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
      l -= p_.presence_penalty + p_.frequency_penalty * static_cast<float>(c);
      c = 0;
    }
  }

  Sample out;
  if (p_.temperature <= 0.0f) {
    out.token = static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());  // first max
  } else {
    sample_filtered(out);
  }
  if (!p_.logprobs && p_.top_logprobs == 0) return out;
  // Log-probabilities at temperature 1 of the penalized logits.
  const float max_logit = *std::max_element(work_.begin(), work_.end());
  double z = 0;
  for (float l : work_) z += std::exp(l - max_logit);
  const float log_z = static_cast<float>(std::log(z)) + max_logit;
  out.logprob = work_[static_cast<size_t>(out.token)] - log_z;
  if (p_.top_logprobs > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(vocab_));
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = std::min<size_t>(static_cast<size_t>(p_.top_logprobs), idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), [&](int32_t a, int32_t b) {
      return work_[static_cast<size_t>(a)] > work_[static_cast<size_t>(b)] ||
             (work_[static_cast<size_t>(a)] == work_[static_cast<size_t>(b)] && a < b);
    });
    for (size_t i = 0; i < k; ++i) out.top.push_back({idx[i], work_[static_cast<size_t>(idx[i])] - log_z});
  }
  return out;
}

}  // namespace tandem::engine
