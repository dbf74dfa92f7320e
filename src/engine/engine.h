// The engine: one thread owns the model and the KV cache and runs every
// request's work in one batched forward pass per step.
//
// Each step serves one decode token for every running sequence plus
// prefill chunks of the others, within max_batch_tokens and
// max_batch_size. Prompts are looked up in the prefix cache first, so a
// prefix any agent computed before is not computed again. Requests of one
// session run in order; waiting requests are ordered by priority plus an
// aging bonus for time waited. When blocks run out the engine evicts cached
// blocks, then preempts the lowest-priority, most recently submitted
// sequence that the one in need outranks (its computed blocks stay cached,
// so it resumes cheaply).
//
// submit() and cancel() are thread-safe; results arrive on the Stream.
#pragma once

#include "core/status.h"
#include "engine/request.h"
#include "kv/prefix_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <iterator>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem::engine {

struct EngineOptions {
  int max_batch_tokens = 512;   // tokens per step (decode + prefill chunks)
  int max_batch_size = 16;      // sequences per step
  double batch_wait_ms = 10;    // an idle engine waits this long for more requests to start together
  double aging_per_s = 0.1;     // priority levels gained per second of waiting
  int stream_interval = 1;      // tokens per streamed delta
  size_t kv_bytes = 256u << 20; // KV cache budget
  kernels::KvType kv_type = kernels::KvType::kF16;
  int block_tokens = 32;
  int max_sessions = 0;             // distinct sessions waiting or running at once (0: no limit)
  int64_t max_tokens_per_session = 0;  // prompt + generated tokens of one request (0: the context)
  bool start_thread = true;     // false: the caller drives step() (tests)
};

struct EngineMetrics {
  int64_t steps = 0, running = 0, waiting = 0;
  int64_t last_batch_size = 0, last_batch_tokens = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, evictions = 0;
  int64_t kv_blocks_total = 0, kv_blocks_free = 0, kv_blocks_cached = 0;
  // Forward-step durations: counts per upper bound of kStepBucketsMs (the
  // last bucket counts the rest), their sum in ms.
  static constexpr double kStepBucketsMs[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
  int64_t step_ms_counts[std::size(kStepBucketsMs) + 1] = {};
  double step_ms_sum = 0;
};

class Engine {
 public:
  // MODEL must have been loaded with ForwardLimits of at least
  // max_batch_tokens tokens and max_batch_size sequences.
  static Result<std::unique_ptr<Engine>> create(model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                                const EngineOptions& options);
  ~Engine();

  std::shared_ptr<Stream> submit(Request request);
  // Why REQUEST can never run here ("" when it can): empty or too long a
  // prompt, token ids outside the vocabulary, more than the cache holds.
  // Thread-safe; submit() reports the same errors on the stream.
  std::string check(const Request& request) const;
  int64_t context_length() const { return model_.config().ctx; }
  void cancel(uint64_t id);

  // One scheduling step on the caller's thread (start_thread = false).
  // Returns false when there is nothing to do.
  bool step();
  EngineMetrics metrics() const;
  // Invariants of the cache and of every block table ("" when they hold).
  std::string check_invariants() const;

 private:
  struct Sequence;
  Engine(model::Model& model, const tokenizer::Tokenizer& tokenizer, const EngineOptions& options);
  void loop();
  void take_inbox();
  void close_all_streams();
  std::string validate(const Sequence& s) const;  // "" when the request can run
  void admit();
  bool preempt_one(const Sequence* keep);
  void finish(Sequence& s, StopReason reason, const std::string& error = {});
  void after_forward(Sequence& s, const float* logits);
  void emit_token(Sequence& s, int32_t token);
  void note_return_markers(Sequence& s, const std::string& delta);
  void commit_full_blocks(Sequence& s);

  model::Model& model_;
  const tokenizer::Tokenizer& tok_;
  EngineOptions opt_;
  std::unique_ptr<kv::KvPool> pool_;
  std::unique_ptr<kv::PrefixCache> cache_;
  std::vector<std::unique_ptr<Sequence>> waiting_, running_;
  std::vector<float> logits_;
  uint64_t fingerprint_ = 0;

  mutable std::mutex mu_;  // guards inbox_, cancels_, metrics_
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> cancels_;
  EngineMetrics metrics_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tandem::engine
