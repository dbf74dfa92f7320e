// The engine's scheduling policy, apart from the model and the KV memory:
// plain per-sequence facts in, decisions out. Engine::step() asks it and
// carries the decisions out (prefix lookups, block allocation, the forward
// pass); tests script scenarios against it with a fake block budget and a
// fake clock (tests/engine/scheduler_test.cpp).
//
// The decisions, in the order a step takes them:
//
// 1. Admission order (admission_order): waiting sequences by effective
//    priority, priority + aging_per_s x seconds waited, ties by arrival. A
//    sequence whose session has a running sequence, or an earlier waiting
//    one, is skipped: one request per session at a time, in order.
// 2. Admission (fits): the engine tries the ordered candidates one by one,
//    while fewer than max_batch_size run. A candidate starts only if the
//    blocks it still needs to reach its first token (after its prefix
//    hits) leave a watermark of free or evictable blocks: one block per
//    running sequence (each may cross into a new block in the next steps)
//    plus 1% of the pool. The first candidate that does not fit ends
//    admission for the step (a big request is not overtaken forever by
//    small ones behind it). With nothing running, the first candidate
//    always starts: a request the cache can hold alone always progresses.
// 3. Token budget (plan_chunks): decoding sequences first, one token each,
//    then prefill chunks in running order (admission order), each as much
//    of its prompt as the remaining max_batch_tokens allow.
// 4. Preemption (victim): a sequence that cannot get a block takes one
//    from the running sequence of lowest priority that arrived last, among
//    those it outranks (lower priority, or the same priority and a later
//    arrival): an older request is never pushed out by a newer one of the
//    same priority, so two sequences never preempt each other in turn.
//    Sequences still loading their prefix from disk are never chosen.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace tandem::engine {

// What the policy knows of one sequence.
struct SeqView {
  int priority = 1;          // Request::priority (0 low .. 2 high)
  uint64_t arrival = 0;      // submission order
  double submitted_s = 0;    // when it was submitted, in seconds of the engine's clock
  std::string_view session;  // "" for none
  int64_t tokens_left = 0;   // positions still to compute before its next token (1: decoding)
  bool loading = false;      // its prefix is still being read from the disk tier
};

struct SchedulerOptions {
  int max_batch_tokens = 512;
  int max_batch_size = 16;
  double aging_per_s = 0.1;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerOptions& options) : opt_(options) {}

  // Priority plus the aging bonus of a sequence at NOW_S.
  double effective_priority(const SeqView& s, double now_s) const;

  // Indices of WAITING in the order to try them, without those held back
  // by their session (a running sequence of it, or an earlier waiting one).
  std::vector<size_t> admission_order(std::span<const SeqView> waiting, std::span<const SeqView> running,
                                      double now_s) const;

  // Whether a sequence that needs NEED more blocks may start next to
  // N_RUNNING running sequences when AVAILABLE blocks (of POOL_BLOCKS) are
  // free or evictable.
  bool fits(int64_t need, int64_t available, int64_t pool_blocks, size_t n_running) const;
  // The blocks fits() keeps free beside N_RUNNING sequences.
  int64_t watermark(int64_t pool_blocks, size_t n_running) const;

  // Tokens each of RUNNING computes this step (0: none), decodes first,
  // then prefill chunks in the given order, within max_batch_tokens.
  // Sequences that are loading get 0.
  std::vector<int64_t> plan_chunks(std::span<const SeqView> running) const;

  // The sequence of RUNNING to preempt so that RUNNING[KEEP] can grow, if any.
  std::optional<size_t> victim(std::span<const SeqView> running, size_t keep) const;

  const SchedulerOptions& options() const { return opt_; }

 private:
  SchedulerOptions opt_;
};

}  // namespace tandem::engine
