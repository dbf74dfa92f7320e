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
// With a disk tier (EngineOptions::cache_dir), every committed block is
// also written to disk in the background (never blocking a step), a prefix
// that continues on disk past the RAM hit is loaded back while other
// sequences keep running, and sessions' manifests persist, so an agent
// resumes from its cached prefix after its blocks left RAM or after a
// restart.
//
// submit(), cancel() and the session/flush calls are thread-safe; results
// arrive on the Stream.
#pragma once

#include "core/status.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "kernels/kv_type.h"
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <iterator>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <mutex>
#include <thread>
#include <vector>

// The engine's own state types, declared here only: the server and CLI
// compile against this header without the model or the KV cache (their
// definitions are in model/ and kv/, included by the engine's .cpp files).
namespace tandem::model {
class Model;
}  // namespace tandem::model
namespace tandem::kv {
class KvPool;
class BlockPool;
class PrefixIndex;
class DiskTier;
class RedisTier;
struct SessionRecord;
using BlockId = int32_t;
using BlockKey = uint64_t;
}  // namespace tandem::kv

namespace tandem::engine {

struct EngineOptions {
  int max_batch_tokens = 512;    // tokens per step (decode + prefill chunks)
  int max_batch_size = 16;       // sequences per step
  double batch_wait_ms = 10;     // an idle engine waits this long for more requests to start together
  double aging_per_s = 0.1;      // priority levels gained per second of waiting
  int stream_interval = 1;       // tokens per streamed delta
  size_t kv_bytes = 256u << 20;  // KV cache budget
  kernels::KvType kv_type = kernels::KvType::kF16;
  int block_tokens = 32;
  int max_sessions = 0;                // distinct sessions waiting or running at once (0: no limit)
  int64_t max_tokens_per_session = 0;  // prompt + generated tokens of one request (0: the context)
  bool start_thread = true;            // false: the caller drives step() (tests)
  // Seconds on the clock aging counts (tests script it; default: a steady clock).
  std::function<double()> clock_s;
  // Disk tier: "" = none. The folder holds this model's blocks only (see
  // kv/disk_store.h); give each model its own.
  std::string cache_dir;
  uint64_t cache_disk_bytes = 0;
  int disk_write_queue = 16;        // blocks being written at once (each keeps its RAM block pinned)
  int max_stored_sessions = 10000;  // manifests kept; the least recently used unpinned one goes first
  // Shared block tier in Redis behind the disk tier (kv/redis_tier.h): "" =
  // none. Needs the disk tier (blocks read from Redis are staged there).
  std::string redis_url;
};

// One session as the admin API shows it.
struct SessionInfo {
  std::string id;
  int64_t tokens = 0;  // of its last turn (prompt + generated)
  int64_t blocks = 0;  // full blocks of those tokens
  int64_t blocks_in_ram = 0, blocks_on_disk = 0;
  int64_t last_use_ms = 0;  // wall clock, ms since the epoch
  bool pinned = false;
  bool active = false;  // a request of the session is waiting or running
};

struct FlushResult {
  int64_t written = 0;  // blocks written by this flush
  int64_t on_disk = 0;  // blocks of RAM that are on disk now
  int64_t failed = 0;   // writes that failed (disk full of pinned blocks, I/O errors)
  double ms = 0;
};

struct EngineMetrics {
  int64_t steps = 0, running = 0, waiting = 0;
  int64_t last_batch_size = 0, last_batch_tokens = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, evictions = 0;
  int64_t kv_blocks_total = 0, kv_blocks_free = 0, kv_blocks_cached = 0;
  // Reuse inside a block (kv/prefix_index.h): tails taken over, shared
  // heads copied, and the prompt tokens they served (in cached_tokens too).
  int64_t tail_hits = 0, head_copies = 0, partial_block_tokens = 0;
  // Forward-step durations: counts per upper bound of kStepBucketsMs (the
  // last bucket counts the rest), their sum in ms.
  static constexpr double kStepBucketsMs[] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
  int64_t step_ms_counts[std::size(kStepBucketsMs) + 1] = {};
  double step_ms_sum = 0;
  // Disk tier (zero without one).
  bool disk_enabled = false;
  int64_t disk_blocks = 0;
  uint64_t disk_bytes = 0;
  int64_t disk_writes = 0, disk_write_errors = 0, disk_loads = 0, disk_load_errors = 0, disk_evictions = 0;
  int64_t disk_hit_tokens = 0;  // prompt tokens loaded from disk instead of computed
  int64_t disk_pending = 0;     // blocks waiting to be written or being written
  int64_t sessions = 0;         // manifests kept
  // Redis tier (zero without one).
  bool remote_enabled = false, remote_connected = false;
  int64_t remote_hits = 0, remote_misses = 0, remote_bad_values = 0, remote_errors = 0, remote_reconnects = 0;
  int64_t remote_writes = 0, remote_dropped_writes = 0, remote_reads = 0;
  uint64_t remote_bytes_read = 0, remote_bytes_written = 0;
  double remote_read_ms_total = 0;
  int64_t remote_hit_tokens = 0;  // prompt tokens staged from Redis instead of computed
  // Mixture of experts (model::Model::MoeCounters): rows per expert read = routed / reads.
  int64_t moe_routed = 0, moe_expert_reads = 0;
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
  int64_t context_length() const;
  void cancel(uint64_t id);
  // Cancels every request submitted so far (shutdown after a grace period).
  void cancel_all();
  // Waits until no request is queued or running, at most TIMEOUT. True when idle.
  bool wait_idle(std::chrono::milliseconds timeout);

  // One scheduling step on the caller's thread (start_thread = false).
  // Returns false when there is nothing to do.
  bool step();
  EngineMetrics metrics() const;
  // Invariants of the cache and of every block table ("" when they hold).
  std::string check_invariants() const;

  // Sessions (all thread-safe; they run on the engine thread between steps).
  std::vector<SessionInfo> sessions();
  std::optional<SessionInfo> session(const std::string& id);
  enum class SessionOp { kOk, kNotFound, kBusy };
  // Forgets the session and frees its blocks that no other session uses
  // (RAM and disk). kBusy while a request of it is in flight.
  SessionOp delete_session(const std::string& id);
  // Pinned sessions are evicted from RAM last and never from disk. A
  // session with a request in flight but no finished turn can be pinned.
  SessionOp pin_session(const std::string& id, bool pinned);
  // Writes every block in RAM that is not on disk yet and waits for the
  // writes (at most TIMEOUT). An error without a disk tier.
  Result<FlushResult> flush(std::chrono::milliseconds timeout = std::chrono::minutes(10));
  bool has_disk_tier() const { return tier_ != nullptr; }

 private:
  struct Sequence;
  Engine(model::Model& model, const tokenizer::Tokenizer& tokenizer, const EngineOptions& options);
  void loop();
  void take_inbox();
  void close_all_streams();
  std::string validate(const Sequence& s) const;  // "" when the request can run
  double now_s() const;
  std::vector<SeqView> views(const std::vector<std::unique_ptr<Sequence>>& list) const;  // for the scheduler
  enum class Start { kStarted, kNoRoom, kWaitForDisk };
  Start start(Sequence& s, std::chrono::steady_clock::time_point now);
  void admit();
  bool preempt_one(const Sequence* keep);
  void finish(Sequence& s, StopReason reason, const std::string& error = {});
  void after_forward(Sequence& s, const float* logits);
  void emit_token(Sequence& s, int32_t token);
  void note_return_markers(Sequence& s, const std::string& delta);
  void reuse_partial_block(Sequence& s);
  void commit_full_blocks(Sequence& s);
  void publish_metrics(bool stepped, size_t batch_size, int64_t batch_tokens, double step_ms);
  bool idle() const;
  int64_t write_limit() const;  // disk writes in flight at most
  // Runs F on the engine thread between steps and waits for it (directly
  // when the caller drives step()).
  void run_on_engine(std::function<void()> f);
  void run_commands();

  // Disk tier (engine_disk.cpp).
  Status open_disk_tier();
  Status open_remote_tier();
  // Stages the blocks of the prompt's chain that Redis has and the disk
  // tier lacks into the disk tier (caller's thread, before the request
  // queues); returns the session's manifest from Redis when this node does
  // not know the session.
  std::optional<kv::SessionRecord> prefetch_remote(const Request& request);
  void note_known_session(const std::string& id);
  bool lookup_disk(Sequence& s);  // false: wait, another sequence is loading this prefix
  void want_write(kv::BlockId b, kv::BlockKey key);
  void pump_writes();
  void take_io_done();
  void on_committed(kv::BlockId b, kv::BlockKey key);
  void wait_for_io();
  void finish_loads(Sequence& s);
  void load_shared_head(Sequence& s, kv::BlockKey parent);  // reads the block S leaves the chain in
  int64_t queue_unwritten_blocks();
  void write_tails();
  // Sessions (engine_sessions.cpp).
  void record_session(Sequence& s);
  void adopt_session(kv::SessionRecord record);  // a manifest from another node, unless known here
  void set_pinned_keys(const std::vector<kv::BlockKey>& keys, int delta);
  SessionInfo describe_session(const kv::SessionRecord& r) const;
  bool session_active(const std::string& id) const;
  void trim_sessions();

  model::Model& model_;
  const tokenizer::Tokenizer& tok_;
  EngineOptions opt_;
  Scheduler sched_;
  std::unique_ptr<kv::KvPool> pool_;
  std::unique_ptr<kv::PrefixIndex> index_;  // what blocks contain
  kv::BlockPool* blocks_ = nullptr;         // who holds them: pool_->blocks()
  std::vector<std::unique_ptr<Sequence>> waiting_, running_;
  std::vector<float> logits_;
  uint64_t fingerprint_ = 0;

  // Disk tier state (engine thread only).
  std::unique_ptr<kv::RedisTier> remote_;  // before tier_: the disk tier's last writes go through it
  std::unique_ptr<kv::DiskTier> tier_;
  std::deque<std::pair<kv::BlockId, kv::BlockKey>> dirty_;  // committed, to be written
  std::unordered_set<kv::BlockKey> write_wanted_;           // in dirty_ or being written
  struct Loading {
    kv::BlockId block = -1;
    kv::BlockKey parent = 0;
    std::vector<int32_t> tokens;
  };
  std::unordered_map<kv::BlockKey, Loading> loading_;  // being read from disk
  std::vector<int32_t> io_refs_;                       // per block: references held by I/O jobs
  int64_t writes_in_flight_ = 0;
  int64_t disk_hit_tokens_ = 0;
  std::atomic<int64_t> remote_hit_tokens_{0};       // prefetch_remote() runs on HTTP threads
  std::mutex known_mu_;                             // guards known_sessions_ (HTTP threads read it)
  std::unordered_set<std::string> known_sessions_;  // ids of sessions_ (and deleted ones), for HTTP threads
  int64_t tail_hits_ = 0, head_copies_ = 0, partial_block_tokens_ = 0;
  // Sessions (engine thread only).
  struct SessionTable;  // session id -> manifest (engine_sessions.cpp)
  std::unique_ptr<SessionTable> sessions_;
  std::unordered_map<kv::BlockKey, int> pinned_keys_;  // keys of pinned sessions' chains, with counts

  mutable std::mutex mu_;  // guards inbox_, cancels_, metrics_
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> cancels_;
  bool cancel_all_ = false;
  std::vector<std::function<void()>> commands_;
  bool io_ready_ = false;  // the disk tier finished a job
  EngineMetrics metrics_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tandem::engine
