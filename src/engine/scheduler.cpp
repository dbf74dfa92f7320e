#include "engine/scheduler.h"

#include <algorithm>
#include <numeric>

namespace tandem::engine {

double Scheduler::effective_priority(const SeqView& s, double now_s) const {
  return s.priority + opt_.aging_per_s * std::max(0.0, now_s - s.submitted_s);
}

std::vector<size_t> Scheduler::admission_order(std::span<const SeqView> waiting, std::span<const SeqView> running,
                                               double now_s) const {
  std::vector<size_t> order(waiting.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<double> eff(waiting.size());
  for (size_t i = 0; i < waiting.size(); ++i) eff[i] = effective_priority(waiting[i], now_s);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return eff[a] > eff[b] || (eff[a] == eff[b] && waiting[a].arrival < waiting[b].arrival);
  });
  auto held_back = [&](const SeqView& s) {
    if (s.session.empty()) return false;
    for (const SeqView& r : running) {
      if (r.session == s.session) return true;
    }
    for (const SeqView& w : waiting) {
      if (w.session == s.session && w.arrival < s.arrival) return true;
    }
    return false;
  };
  std::erase_if(order, [&](size_t i) { return held_back(waiting[i]); });
  return order;
}

int64_t Scheduler::watermark(int64_t pool_blocks, size_t n_running) const {
  return static_cast<int64_t>(n_running) + pool_blocks / 100;
}

bool Scheduler::fits(int64_t need, int64_t available, int64_t pool_blocks, size_t n_running) const {
  if (n_running == 0) return true;
  return need + watermark(pool_blocks, n_running) <= available;
}

std::vector<int64_t> Scheduler::plan_chunks(std::span<const SeqView> running) const {
  std::vector<int64_t> chunk(running.size(), 0);
  int64_t budget = opt_.max_batch_tokens;
  for (int pass = 0; pass < 2; ++pass) {  // decodes, then prefills
    for (size_t i = 0; i < running.size(); ++i) {
      const SeqView& s = running[i];
      if (s.loading || s.tokens_left <= 0 || (s.tokens_left == 1) != (pass == 0)) continue;
      chunk[i] = std::min(s.tokens_left, budget);
      budget -= chunk[i];
    }
  }
  return chunk;
}

std::optional<size_t> Scheduler::victim(std::span<const SeqView> running, size_t keep) const {
  // A ranks below B: lower priority, or the same priority and a later arrival.
  auto below = [](const SeqView& a, const SeqView& b) {
    return a.priority < b.priority || (a.priority == b.priority && a.arrival > b.arrival);
  };
  std::optional<size_t> v;
  for (size_t i = 0; i < running.size(); ++i) {
    if (i == keep || running[i].loading || !below(running[i], running[keep])) continue;
    if (!v || below(running[i], running[*v])) v = i;
  }
  return v;
}

}  // namespace tandem::engine
