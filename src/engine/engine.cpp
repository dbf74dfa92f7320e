#include "engine/engine.h"

#include "engine/sequence.h"
#include "kv/disk_tier.h"
#include "kv/redis_tier.h"

#include "tokenizer/detokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace tandem::engine {

Engine::Engine(model::Model& model, const tokenizer::Tokenizer& tokenizer, const EngineOptions& options)
    : model_(model),
      tok_(tokenizer),
      opt_(options),
      sched_(SchedulerOptions{options.max_batch_tokens, options.max_batch_size, options.aging_per_s}),
      sessions_(std::make_unique<SessionTable>()) {}

int64_t Engine::context_length() const { return model_.config().ctx; }

double Engine::now_s() const {
  if (opt_.clock_s) return opt_.clock_s();
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

std::vector<SeqView> Engine::views(const std::vector<std::unique_ptr<Sequence>>& list) const {
  std::vector<SeqView> out;
  out.reserve(list.size());
  for (const auto& s : list) {
    SeqView v;
    v.priority = static_cast<int>(s->req.priority);
    v.arrival = s->arrival;
    v.submitted_s = s->time.submitted_s;
    v.session = s->req.session;
    v.tokens_left = static_cast<int64_t>(s->tokens.size()) - s->kv.computed;
    v.loading = s->kv.loads_pending > 0;
    out.push_back(v);
  }
  return out;
}

Result<std::unique_ptr<Engine>> Engine::create(model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                               const EngineOptions& options) {
  if (options.max_batch_tokens <= 0 || options.max_batch_size <= 0 || options.stream_interval <= 0) {
    return Status::error("engine limits must be positive");
  }
  std::unique_ptr<Engine> e(new Engine(model, tokenizer, options));
  auto pool = kv::KvPool::create(model.kv_shape(options.kv_type, options.block_tokens), options.kv_bytes);
  if (!pool) return pool.status();
  e->pool_ = std::move(*pool);
  // Blocks of another model (or of kernels that round differently) never match.
  e->fingerprint_ = model.fingerprint();
  e->index_ = std::make_unique<kv::PrefixIndex>(*e->pool_, e->fingerprint_);
  e->blocks_ = &e->pool_->blocks();
  e->io_refs_.assign(static_cast<size_t>(e->pool_->n_blocks()), 0);
  if (!options.redis_url.empty() && options.cache_dir.empty()) {
    return Status::error("--redis needs the disk tier (blocks read from Redis are staged there): drop --no-disk-cache");
  }
  if (!options.cache_dir.empty()) TANDEM_RETURN_IF_ERROR(e->open_disk_tier());
  if (!options.redis_url.empty()) TANDEM_RETURN_IF_ERROR(e->open_remote_tier());
  {
    std::lock_guard<std::mutex> lock(e->mu_);
    e->metrics_.kv_blocks_total = e->pool_->n_blocks();
    e->metrics_.kv_blocks_free = e->blocks_->n_free();
  }
  if (options.start_thread) e->thread_ = std::thread(&Engine::loop, e.get());
  return e;
}

Engine::~Engine() {
  stop_.store(true);
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  close_all_streams();  // the loop did it already when it ran; cheap when empty
  tier_.reset();        // finishes its queued writes while the pool still exists
}

void Engine::close_all_streams() {
  take_inbox();
  run_commands();  // nobody waits forever on a command
  for (auto* list : {&waiting_, &running_}) {
    for (auto& s : *list) finish(*s, StopReason::kCancelled, "the engine is shutting down");
    list->clear();
  }
}

std::shared_ptr<Stream> Engine::submit(Request request) {
  std::optional<kv::SessionRecord> adopted;
  if (remote_) adopted = prefetch_remote(request);
  const uint64_t id = next_id_.fetch_add(1);
  auto seq = std::make_unique<Sequence>(std::move(request), model_.config().vocab, tok_);
  seq->adopted = std::move(adopted);
  seq->id = id;
  seq->arrival = id;
  seq->stream = std::make_shared<Stream>(id);
  seq->time.submitted = Clock::now();
  seq->time.submitted_s = now_s();
  auto stream = seq->stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back(std::move(seq));
  }
  wake_.notify_all();
  return stream;
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  wake_.notify_all();
}

// Nothing to compute, and no write the I/O queue has room for: the loop
// may sleep until a request, a command or a finished disk job wakes it.
bool Engine::idle() const {
  return waiting_.empty() && running_.empty() && (dirty_.empty() || writes_in_flight_ >= write_limit());
}

int64_t Engine::write_limit() const {
  return std::max<int64_t>(1, std::min<int64_t>(opt_.disk_write_queue, pool_->n_blocks() / 8));
}

void Engine::cancel_all() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_all_ = true;
  }
  wake_.notify_all();
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    bool idle_now = false;
    run_on_engine([&] {
      std::lock_guard<std::mutex> lock(mu_);
      idle_now = waiting_.empty() && running_.empty() && inbox_.empty();
    });
    if (idle_now) return true;
    if (Clock::now() >= until) return false;
    if (!opt_.start_thread) {
      step();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void Engine::loop() {
  while (!stop_.load()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto woken = [&] {
        return stop_.load() || !inbox_.empty() || !cancels_.empty() || cancel_all_ || !commands_.empty() || io_ready_;
      };
      if (idle() && !woken()) {
        wake_.wait(lock, woken);
        if (stop_.load()) break;
        if (!inbox_.empty()) {
          // Idle until now: give near-simultaneous requests a moment to arrive together.
          const auto until = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(opt_.batch_wait_ms * 1000));
          wake_.wait_until(lock, until, [&] { return stop_.load(); });
        }
      }
      io_ready_ = false;
    }
    step();
  }
  close_all_streams();  // shutting down: every open stream ends
}

void Engine::run_on_engine(std::function<void()> f) {
  if (!opt_.start_thread) {
    f();  // the caller drives step(): it is the engine thread
    return;
  }
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back([&] {
      f();
      std::lock_guard<std::mutex> l(done_mu);
      done = true;
      done_cv.notify_all();
    });
  }
  wake_.notify_all();
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return done; });
}

void Engine::run_commands() {
  std::vector<std::function<void()>> commands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands.swap(commands_);
  }
  for (auto& c : commands) c();
}

void Engine::take_inbox() {
  std::vector<std::unique_ptr<Sequence>> inbox;
  std::vector<uint64_t> cancels;
  bool all = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox.swap(inbox_);
    cancels.swap(cancels_);
    std::swap(all, cancel_all_);
  }
  for (auto& s : inbox) {
    const std::string error = validate(*s);
    if (!error.empty()) {
      finish(*s, StopReason::kRefused, error);
      continue;
    }
    if (s->adopted) adopt_session(std::move(*s->adopted));
    s->tokens = s->req.prompt;
    for (int32_t t : s->tokens) s->sampler.accept(t);
    s->usage.prompt_tokens = static_cast<int64_t>(s->tokens.size());
    waiting_.push_back(std::move(s));
  }
  for (auto* list : {&waiting_, &running_}) {
    for (auto& s : *list) {
      if (all || std::find(cancels.begin(), cancels.end(), s->id) != cancels.end()) s->cancelled = true;
    }
  }
}

std::string Engine::check(const Request& req) const {
  const int64_t n = static_cast<int64_t>(req.prompt.size());
  const int64_t ctx = model_.config().ctx;
  const int64_t capacity = static_cast<int64_t>(pool_->n_blocks()) * opt_.block_tokens;
  if (n == 0) return "the prompt is empty";
  if (n >= ctx) return fmt::format("prompt is too long: {} tokens > {} maximum", n, ctx - 1);
  if (n >= capacity) {
    return fmt::format("a prompt of {} tokens does not fit the KV cache ({} tokens); raise the KV memory budget", n,
                       capacity);
  }
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= model_.config().vocab) return fmt::format("token id {} is outside the vocabulary", t);
  }
  if (req.max_tokens <= 0) return "max_tokens must be positive";
  if (opt_.max_tokens_per_session > 0 && n >= opt_.max_tokens_per_session) {
    return fmt::format("a prompt of {} tokens exceeds the limit of {} tokens per session", n,
                       opt_.max_tokens_per_session);
  }
  return "";
}

std::string Engine::validate(const Sequence& s) const {
  if (std::string error = check(s.req); !error.empty()) return error;
  if (opt_.max_sessions > 0 && !s.req.session.empty()) {
    std::vector<const std::string*> active;
    for (const auto* list : {&waiting_, &running_}) {
      for (const auto& w : *list) {
        if (w->req.session.empty()) continue;
        if (w->req.session == s.req.session) return "";  // joins its own session's queue
        if (std::none_of(active.begin(), active.end(), [&](const std::string* a) { return *a == w->req.session; })) {
          active.push_back(&w->req.session);
        }
      }
    }
    if (static_cast<int>(active.size()) >= opt_.max_sessions) {
      return fmt::format("too many active sessions ({}); try again later", opt_.max_sessions);
    }
  }
  return "";
}

void Engine::finish(Sequence& s, StopReason reason, const std::string& error) {
  if (!s.req.session.empty() && s.admitted_once && !failed(reason)) record_session(s);
  // Release every block; committed ones stay cached for the next turn, and
  // so does a partial last block (as the tail after the last full one).
  const int64_t bt = opt_.block_tokens;
  const int64_t in_tail = s.kv.computed - s.kv.committed * bt;
  if (!failed(reason) && s.kv.loads_pending == 0 && in_tail > 0 &&
      in_tail<bt&& static_cast<int64_t>(s.kv.blocks.size())> s.kv.committed) {
    index_->commit_tail(s.kv.blocks[static_cast<size_t>(s.kv.committed)], s.kv.last_key,
                        std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.kv.committed * bt),
                                                                   static_cast<size_t>(in_tail)));
  }
  const bool returns = s.req.expect_return || s.out.saw_return_marker;
  const auto retention = returns ? kv::Retention::kLonger : kv::Retention::kNormal;
  for (kv::BlockId b : s.kv.blocks) blocks_->release(b, retention);
  s.kv.blocks.clear();
  Event e;
  e.done = true;
  e.stop = reason;
  e.error = error;
  if (reason != StopReason::kStopString && !failed(reason)) {
    e.text = s.out.held + s.out.detok.finish();  // nothing more can match a stop string
    e.tokens = s.out.held_tokens;
  }
  s.out.held.clear();
  s.out.held_tokens.clear();
  s.usage.generated_tokens = s.generated;
  if (s.generated > 1) {
    const double secs = std::chrono::duration<double>(s.time.last_token - s.time.first_token).count();
    s.usage.decode_tokens_per_s = secs > 0 ? (s.generated - 1) / secs : 0;
  }
  e.usage = s.usage;
  s.stream->push(std::move(e));
  s.stream.reset();  // marks the sequence finished
  std::lock_guard<std::mutex> lock(mu_);
  metrics_.prompt_tokens += s.usage.prompt_tokens;
  metrics_.cached_tokens += s.usage.cached_tokens;
  metrics_.generated_tokens += s.generated;
}

// Waiting sequences start in the scheduler's order (engine/scheduler.h)
// while the batch has room and the KV blocks they need leave the watermark.
void Engine::admit() {
  if (waiting_.empty()) return;
  const auto now = Clock::now();
  for (size_t i : sched_.admission_order(views(waiting_), views(running_), now_s())) {
    if (static_cast<int>(running_.size()) >= opt_.max_batch_size) break;
    const Start r = start(*waiting_[i], now);
    if (r == Start::kStarted) running_.push_back(std::move(waiting_[i]));
    if (r == Start::kNoRoom) break;
  }
  std::erase_if(waiting_, [](const auto& s) { return s == nullptr; });
}

// Looks up S's cached prefix and prepares it to run when the blocks it
// still needs fit (Scheduler::fits); else releases what it took.
Engine::Start Engine::start(Sequence& s, Clock::time_point now) {
  // The longest cached prefix; keep at least one token to compute (its logits pick the next token).
  // The lookup's references are given back with release_keep_class: a
  // candidate that waits (every step while the cache is full) must not
  // move the blocks it found to another eviction class.
  kv::PrefixMatch m = index_->lookup(s.tokens, s.req.cache_namespace);
  const int64_t bt = opt_.block_tokens;
  while (!m.blocks.empty() && static_cast<int64_t>(m.blocks.size()) * bt >= static_cast<int64_t>(s.tokens.size())) {
    blocks_->release_keep_class(m.blocks.back());
    m.blocks.pop_back();
  }
  // Blocks to its first token: the prompt's positions and the token after.
  const int64_t need =
      (static_cast<int64_t>(s.tokens.size()) + 1 + bt - 1) / bt - static_cast<int64_t>(m.blocks.size());
  if (!sched_.fits(need, blocks_->n_free() + blocks_->n_cached(), pool_->n_blocks(), running_.size())) {
    for (kv::BlockId b : m.blocks) blocks_->release_keep_class(b);
    return Start::kNoRoom;
  }
  s.kv.blocks = m.blocks;
  s.kv.computed = static_cast<int64_t>(m.blocks.size()) * bt;
  s.kv.committed = static_cast<int64_t>(m.blocks.size());
  // The chain keys of the kept blocks (the match may have been cut).
  s.kv.last_key = index_->root_key(s.req.cache_namespace);
  s.kv.keys.clear();
  for (int64_t b = 0; b < s.kv.committed; ++b) {
    s.kv.last_key = kv::block_key(s.kv.last_key, std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(b * bt),
                                                                                            static_cast<size_t>(bt)));
    s.kv.keys.push_back(s.kv.last_key);
  }
  // The prefix may go on in the disk tier; wait while another sequence
  // is reading it (its blocks will then be in RAM).
  if (tier_ != nullptr && !lookup_disk(s)) {
    for (kv::BlockId b : s.kv.blocks) blocks_->release_keep_class(b);
    s.kv.blocks.clear();
    s.kv.computed = s.kv.committed = 0;
    return Start::kWaitForDisk;
  }
  // Past the whole blocks (with a disk tier finish_loads() does this, once
  // the loads are in).
  if (tier_ == nullptr) reuse_partial_block(s);
  if (!s.admitted_once) {
    s.admitted_once = true;
    s.usage.cached_tokens = s.kv.computed;  // loads add theirs when done
    s.time.first_scheduled = now;
    s.usage.queue_ms = ms_between(s.time.submitted, now);
  }
  return Start::kStarted;
}

// Preempts, for KEEP, the running sequence of lowest priority that arrived
// last, among those KEEP outranks (lower priority, or equal priority and
// later arrival): an older request is never pushed out by a newer one of
// the same priority, so two sequences cannot preempt each other in turn.
// The victim's committed blocks stay cached; it waits to resume.
bool Engine::preempt_one(const Sequence* keep) {
  const size_t keep_index = static_cast<size_t>(
      std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == keep; }) -
      running_.begin());
  const std::optional<size_t> v = sched_.victim(views(running_), keep_index);
  if (!v) return false;
  Sequence* victim = running_[*v].get();
  victim->chunk = 0;
  for (kv::BlockId b : victim->kv.blocks) blocks_->release(b);
  victim->kv.blocks.clear();
  victim->kv.computed = 0;
  victim->kv.committed = 0;
  auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == victim; });
  waiting_.push_back(std::move(*it));
  running_.erase(it);
  std::lock_guard<std::mutex> lock(mu_);
  ++metrics_.preemptions;
  return true;
}

// Past S's whole-block prefix: the tail a finished sequence left there (the
// partial block of the conversation's last turn) if S's prompt goes on
// with its tokens; else the head S shares with a cached full block (the
// prompt leaves that conversation inside a block), copied into a block of
// its own. At least one prompt token is left to compute, like the lookups.
void Engine::reuse_partial_block(Sequence& s) {
  const int64_t bt = opt_.block_tokens;
  const int64_t usable = std::min<int64_t>(static_cast<int64_t>(s.tokens.size()) - s.kv.computed - 1, bt - 1);
  if (usable <= 0 || s.kv.computed != static_cast<int64_t>(s.kv.blocks.size()) * bt) return;
  const auto rest =
      std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.kv.computed), static_cast<size_t>(usable));
  if (auto t = index_->take_tail(s.kv.last_key, rest)) {
    s.kv.blocks.push_back(t->block);
    s.kv.computed += t->tokens;
    ++tail_hits_;
    partial_block_tokens_ += t->tokens;
    return;
  }
  auto shared = index_->longest_child(s.kv.last_key, rest);
  if (!shared) return;
  if (auto copy = blocks_->allocate()) {
    // The whole block (all layers; positions past the head are rewritten).
    std::memcpy(pool_->block_data(*copy), pool_->block_data(shared->block), pool_->shape().block_bytes());
    s.kv.blocks.push_back(*copy);
    s.kv.computed += shared->tokens;
    ++head_copies_;
    partial_block_tokens_ += shared->tokens;
  }
  blocks_->release_keep_class(shared->block);
}

void Engine::commit_full_blocks(Sequence& s) {
  const int64_t bt = opt_.block_tokens;
  while ((s.kv.committed + 1) * bt <= s.kv.computed) {
    const auto chunk =
        std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(s.kv.committed * bt), static_cast<size_t>(bt));
    const kv::BlockId b = s.kv.blocks[static_cast<size_t>(s.kv.committed)];
    s.kv.last_key = index_->commit(b, s.kv.last_key, chunk);
    s.kv.keys.push_back(s.kv.last_key);
    on_committed(b, s.kv.last_key);
    ++s.kv.committed;
  }
}

bool Engine::step() {
  take_inbox();
  run_commands();
  if (tier_ != nullptr) {
    take_io_done();
    pump_writes();
  }
  // Cancelled sequences free their pins now.
  for (auto* list : {&waiting_, &running_}) {
    for (auto& s : *list) {
      if (s->cancelled) finish(*s, StopReason::kCancelled);
    }
    std::erase_if(*list, [](const auto& s) { return !s->stream; });
  }
  admit();
  if (running_.empty()) {
    // Only writes left. The engine thread sleeps on completions (idle());
    // a caller driving step() waits here instead of spinning.
    if (!opt_.start_thread && !dirty_.empty() && waiting_.empty()) wait_for_io();
    publish_metrics(false, 0, 0, 0);
    return !waiting_.empty() || !dirty_.empty();
  }

  // Token budget (Scheduler::plan_chunks): decodes first, then prefill
  // chunks in running order (admission order).
  const int64_t bt = opt_.block_tokens;
  std::stable_partition(running_.begin(), running_.end(),
                        [](const auto& s) { return static_cast<int64_t>(s->tokens.size()) - s->kv.computed == 1; });
  const std::vector<int64_t> chunks = sched_.plan_chunks(views(running_));
  for (size_t i = 0; i < running_.size(); ++i) running_[i]->chunk = chunks[i];
  bool loading = false;
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence& s = *running_[i];
    if (s.kv.loads_pending > 0) {  // its prefix is still coming from disk
      loading = true;
      continue;
    }
    // Blocks for the chunk: evict cached blocks, else wait for blocks the
    // disk tier holds, else preempt others.
    while (s.chunk > 0 && static_cast<int64_t>(s.kv.blocks.size()) * bt < s.kv.computed + s.chunk) {
      auto b = blocks_->allocate();
      if (!b && writes_in_flight_ > 0) {
        wait_for_io();
        b = blocks_->allocate();
      }
      if (b) {
        s.kv.blocks.push_back(*b);
        continue;
      }
      const size_t before = running_.size();
      if (!preempt_one(&s)) {
        // Alone and out of blocks: compute what fits, or stop when nothing does.
        s.chunk = std::min(s.chunk, static_cast<int64_t>(s.kv.blocks.size()) * bt - s.kv.computed);
        break;
      }
      if (running_.size() < before)
        i = static_cast<size_t>(
            std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == &s; }) -
            running_.begin());
    }
  }
  // A lone sequence that cannot grow has filled the cache: it ends.
  for (auto& s : running_) {
    if (s->chunk <= 0 && s->kv.loads_pending == 0 && static_cast<int64_t>(s->tokens.size()) > s->kv.computed &&
        running_.size() == 1) {
      finish(*s, StopReason::kMaxTokens);
    }
  }
  std::erase_if(running_, [](const auto& s) { return !s->stream; });

  std::vector<model::SequenceBatch> batch;
  std::vector<Sequence*> in_batch;
  int64_t batch_tokens = 0;
  for (auto& s : running_) {
    if (s->chunk <= 0) continue;
    model::SequenceBatch sb;
    sb.tokens =
        std::span<const int32_t>(s->tokens).subspan(static_cast<size_t>(s->kv.computed), static_cast<size_t>(s->chunk));
    sb.start_pos = s->kv.computed;
    sb.blocks = s->kv.blocks;
    sb.logits = s->kv.computed + s->chunk == static_cast<int64_t>(s->tokens.size())
                    ? model::SequenceBatch::Logits::kLast
                    : model::SequenceBatch::Logits::kNone;
    batch.push_back(sb);
    in_batch.push_back(s.get());
    batch_tokens += s->chunk;
  }
  const auto step_start = Clock::now();
  if (!batch.empty()) {
    auto r = model_.forward(batch, *pool_, logits_);
    if (!r.ok()) {
      for (Sequence* s : in_batch) finish(*s, StopReason::kError, r.message());
    } else {
      size_t row = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        Sequence& s = *in_batch[i];
        s.kv.computed += s.chunk;
        commit_full_blocks(s);
        if (batch[i].logits == model::SequenceBatch::Logits::kLast) {
          after_forward(s, logits_.data() + row * static_cast<size_t>(model_.config().vocab));
          ++row;
        }
      }
    }
  } else if (loading) {
    wait_for_io();  // nothing to compute until a load finishes
  }
  std::erase_if(running_, [](const auto& s) { return !s->stream; });
  publish_metrics(true, batch.size(), batch_tokens, ms_between(step_start, Clock::now()));
  return true;
}

void Engine::publish_metrics(bool stepped, size_t batch_size, int64_t batch_tokens, double step_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_.running = static_cast<int64_t>(running_.size());
  metrics_.waiting = static_cast<int64_t>(waiting_.size());
  metrics_.evictions = blocks_->evictions();
  metrics_.kv_blocks_free = blocks_->n_free();
  metrics_.kv_blocks_cached = blocks_->n_cached();
  metrics_.disk_enabled = tier_ != nullptr;
  if (remote_) {
    const kv::RedisTierStats r = remote_->stats();
    metrics_.remote_enabled = true;
    metrics_.remote_connected = r.connected;
    metrics_.remote_hits = r.hits;
    metrics_.remote_misses = r.misses;
    metrics_.remote_bad_values = r.bad_values;
    metrics_.remote_errors = r.errors;
    metrics_.remote_reconnects = r.reconnects;
    metrics_.remote_writes = r.writes;
    metrics_.remote_dropped_writes = r.dropped_writes;
    metrics_.remote_reads = r.reads;
    metrics_.remote_bytes_read = r.bytes_read;
    metrics_.remote_bytes_written = r.bytes_written;
    metrics_.remote_read_ms_total = r.read_ms_total;
    metrics_.remote_hit_tokens = remote_hit_tokens_.load();
  }
  metrics_.disk_hit_tokens = disk_hit_tokens_;
  metrics_.tail_hits = tail_hits_;
  metrics_.head_copies = head_copies_;
  metrics_.partial_block_tokens = partial_block_tokens_;
  metrics_.disk_pending = static_cast<int64_t>(write_wanted_.size());
  metrics_.sessions = static_cast<int64_t>(sessions_->size());
  const model::Model::MoeCounters moe = model_.moe_counters();
  metrics_.moe_routed = moe.routed;
  metrics_.moe_expert_reads = moe.expert_reads;
  if (!stepped) return;
  ++metrics_.steps;
  metrics_.last_batch_size = static_cast<int64_t>(batch_size);
  metrics_.last_batch_tokens = batch_tokens;
  if (batch_size == 0) return;
  size_t bucket = 0;
  while (bucket < std::size(EngineMetrics::kStepBucketsMs) && step_ms > EngineMetrics::kStepBucketsMs[bucket]) ++bucket;
  ++metrics_.step_ms_counts[bucket];
  metrics_.step_ms_sum += step_ms;
}

// Samples the next token and streams it; ends the sequence on a stop condition.
void Engine::after_forward(Sequence& s, const float* logits) {
  const auto now = Clock::now();
  const Sample smp = s.sampler.sample(std::span<const float>(logits, static_cast<size_t>(model_.config().vocab)));
  if (s.generated == 0) {
    s.time.first_token = now;
    s.usage.ttft_ms = ms_between(s.time.submitted, now);
  }
  s.time.last_token = now;
  if (!s.req.ignore_eos && tok_.vocab().is_end_of_generation(smp.token)) {
    finish(s, StopReason::kEndOfText);
    return;
  }
  ++s.generated;
  s.sampler.accept(smp.token);
  s.tokens.push_back(smp.token);
  emit_token(s, smp.token);
  if (!s.stream) return;  // a stop string matched
  const int64_t ctx = model_.config().ctx;
  const int64_t limit = opt_.max_tokens_per_session > 0 ? std::min(ctx, opt_.max_tokens_per_session) : ctx;
  if (s.generated >= s.req.max_tokens || static_cast<int64_t>(s.tokens.size()) >= limit)
    finish(s, StopReason::kMaxTokens);
}

// Looks for the request's return markers in the generated text, keeping
// just enough of its tail to find one split across deltas.
void Engine::note_return_markers(Sequence& s, const std::string& delta) {
  s.out.marker_tail += delta;
  size_t longest = 0;
  for (const std::string& m : s.req.return_markers) {
    if (!m.empty() && s.out.marker_tail.find(m) != std::string::npos) s.out.saw_return_marker = true;
    longest = std::max(longest, m.size());
  }
  if (s.out.marker_tail.size() > longest) s.out.marker_tail.erase(0, s.out.marker_tail.size() - longest);
}

// Appends the token's text; emits what can no longer be part of a stop
// string, every stream_interval tokens.
void Engine::emit_token(Sequence& s, int32_t token) {
  const std::string delta = s.out.detok.push(token);
  s.out.held += delta;
  if (!s.req.return_markers.empty() && !s.out.saw_return_marker) note_return_markers(s, delta);
  s.out.held_tokens.push_back(token);
  for (const std::string& stop : s.req.stop) {
    if (stop.empty()) continue;
    const size_t at = s.out.held.find(stop);
    if (at == std::string::npos) continue;
    Event e;
    e.text = s.out.held.substr(0, at);
    e.tokens = s.out.held_tokens;
    s.out.held.clear();
    s.out.held_tokens.clear();
    if (!e.text.empty() || !e.tokens.empty()) s.stream->push(std::move(e));
    finish(s, StopReason::kStopString);
    return;
  }
  if (static_cast<int>(s.out.held_tokens.size()) < opt_.stream_interval) return;
  // Hold back the longest tail that is a prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : s.req.stop) {
    for (size_t n = std::min(stop.size() - 1, s.out.held.size()); n > keep; --n) {
      if (s.out.held.compare(s.out.held.size() - n, n, stop, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  Event e;
  e.text = s.out.held.substr(0, s.out.held.size() - keep);
  e.tokens = s.out.held_tokens;
  s.out.held.erase(0, s.out.held.size() - keep);
  s.out.held_tokens.clear();
  s.stream->push(std::move(e));
}

EngineMetrics Engine::metrics() const {
  EngineMetrics m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    m = metrics_;
  }
  if (tier_ != nullptr) {  // the tier's own counters are current
    const kv::DiskTierStats disk = tier_->stats();
    m.disk_blocks = disk.blocks;
    m.disk_bytes = disk.bytes;
    m.disk_writes = disk.writes;
    m.disk_write_errors = disk.write_errors;
    m.disk_loads = disk.loads;
    m.disk_load_errors = disk.load_errors;
    m.disk_evictions = disk.evictions;
  }
  return m;
}

std::string Engine::check_invariants() const {
  std::string e = index_->check_invariants();
  if (!e.empty()) return e;
  // Every pinned reference belongs to a block table.
  std::vector<int32_t> refs(static_cast<size_t>(pool_->n_blocks()), 0);
  for (const auto* list : {&waiting_, &running_}) {
    for (const auto& s : *list) {
      for (kv::BlockId b : s->kv.blocks) ++refs[static_cast<size_t>(b)];
      if (static_cast<int64_t>(s->kv.blocks.size()) * opt_.block_tokens < s->kv.computed) {
        return fmt::format("sequence {} has {} blocks for {} computed tokens", s->id, s->kv.blocks.size(),
                           s->kv.computed);
      }
    }
  }
  for (kv::BlockId b = 0; b < pool_->n_blocks(); ++b) {
    refs[static_cast<size_t>(b)] += io_refs_[static_cast<size_t>(b)];
    if (refs[static_cast<size_t>(b)] != blocks_->ref_count(b)) {
      return fmt::format("block {}: {} table references, ref count {}", b, refs[static_cast<size_t>(b)],
                         blocks_->ref_count(b));
    }
  }
  return "";
}

}  // namespace tandem::engine
