#include "kv/disk_tier.h"

#include "kv/child_index.h"

#include <algorithm>
#include <atomic>
#include <optional>

namespace tandem::kv {

Result<std::unique_ptr<DiskTier>> DiskTier::open(const DiskStoreOptions& options, KvPool& pool,
                                                 std::function<void()> on_done) {
  if (options.block_bytes != pool.shape().block_bytes() ||
      options.block_tokens != static_cast<uint32_t>(pool.shape().block_tokens)) {
    return Status::error("disk tier: the store's block shape is not the pool's");
  }
  auto store = DiskStore::open(options);
  if (!store) return store.status();
  auto entries = (*store)->entries();
  if (!entries) return entries.status();
  auto sessions = (*store)->sessions();
  if (!sessions) return sessions.status();
  std::unique_ptr<DiskTier> t(new DiskTier(std::move(*store), pool, std::move(on_done)));
  for (BlockMeta& m : *entries) t->mirror_put(m.key, Entry{m.parent, std::move(m.tokens)});
  t->sessions_at_open_ = std::move(*sessions);
  const DiskStoreStats& s = t->store_->stats();
  t->stats_.dropped_at_open = s.dropped_at_open;
  t->stats_.files_deleted_at_open = s.files_deleted_at_open;
  t->stats_.cleared_foreign = s.cleared_foreign;
  t->stats_.blocks = static_cast<int64_t>(t->store_->count());
  t->stats_.bytes = t->store_->bytes();
  t->thread_ = std::thread(&DiskTier::run, t.get());
  return t;
}

DiskTier::DiskTier(std::unique_ptr<DiskStore> store, KvPool& pool, std::function<void()> on_done)
    : store_(std::move(store)), pool_(pool), on_done_(std::move(on_done)) {}

DiskTier::~DiskTier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool DiskTier::contains(uint64_t key, uint64_t parent, std::span<const int32_t> tokens) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = mirror_.find(key);
  return it != mirror_.end() && it->second.parent == parent &&
         std::equal(it->second.tokens.begin(), it->second.tokens.end(), tokens.begin(), tokens.end());
}

bool DiskTier::contains(uint64_t key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return mirror_.contains(key);
}

std::optional<BlockMeta> DiskTier::longest_child(uint64_t parent, std::span<const int32_t> tokens) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<BlockMeta> best;
  int best_n = 0;
  const auto [from, to] = children_.equal_range(parent);
  for (auto it = from; it != to; ++it) {
    const Entry& e = mirror_.at(it->second);
    const int n = common_prefix(e.tokens, tokens);
    if (n > best_n) {
      best_n = n;
      best = BlockMeta{it->second, parent, e.tokens};
    }
  }
  return best;
}

void DiskTier::mirror_put(uint64_t key, Entry entry) {
  mirror_erase(key);
  children_.emplace(entry.parent, key);
  mirror_[key] = std::move(entry);
}

void DiskTier::mirror_erase(uint64_t key) {
  auto it = mirror_.find(key);
  if (it == mirror_.end()) return;
  erase_child(children_, it->second.parent, key);
  mirror_.erase(it);
}

int64_t DiskTier::count_contained(std::span<const uint64_t> keys) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (uint64_t k : keys) n += mirror_.contains(k) ? 1 : 0;
  return n;
}

void DiskTier::push(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    (job.kind == Job::Kind::kLoad ? loads_ : others_).push_back(std::move(job));
    ++stats_.queued;
  }
  cv_.notify_all();
}

void DiskTier::write(BlockId block, BlockMeta meta) {
  Job j{Job::Kind::kWrite};
  j.block = block;
  j.meta = std::move(meta);
  push(std::move(j));
}

void DiskTier::load(BlockId block, uint64_t key) {
  Job j{Job::Kind::kLoad};
  j.block = block;
  j.meta.key = key;
  push(std::move(j));
}

void DiskTier::put_session(SessionRecord record) {
  Job j{Job::Kind::kSession};
  j.session = std::move(record);
  push(std::move(j));
}

size_t DiskTier::import_blocks(std::vector<std::pair<BlockMeta, std::vector<uint8_t>>> blocks) {
  if (blocks.empty()) return 0;
  Job j{Job::Kind::kImport};
  j.imports = std::move(blocks);
  j.imported = std::make_shared<std::promise<size_t>>();
  auto done = j.imported->get_future();
  push(std::move(j));
  return done.get();
}

void DiskTier::erase_session(std::string id) {
  Job j{Job::Kind::kEraseSession};
  j.session.id = std::move(id);
  push(std::move(j));
}

void DiskTier::erase_block(uint64_t key) {
  Job j{Job::Kind::kEraseBlock};
  j.meta.key = key;
  push(std::move(j));
}

void DiskTier::protect(std::vector<uint64_t> keys) {
  Job j{Job::Kind::kProtect};
  j.keys = std::move(keys);
  push(std::move(j));
}

std::vector<IoDone> DiskTier::take_done() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<IoDone> out;
  out.swap(done_);
  return out;
}

void DiskTier::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return loads_.empty() && others_.empty() && busy_ == 0; });
}

void DiskTier::wait_for_done() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return !done_.empty() || (loads_.empty() && others_.empty() && busy_ == 0); });
}

DiskTierStats DiskTier::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void DiskTier::forget(const std::vector<uint64_t>& keys) {
  for (uint64_t k : keys) mirror_erase(k);
}

void DiskTier::run() {
  // Loads waiting together are taken together (up to kLoadBatch): their
  // file reads run on two threads (execute_loads()).
  constexpr size_t kLoadBatch = 16;
  for (;;) {
    std::vector<Job> jobs;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !loads_.empty() || !others_.empty(); });
      // Stopping still finishes the queue: queued writes are what a clean
      // shutdown keeps.
      if (loads_.empty() && others_.empty()) break;
      if (!loads_.empty()) {
        while (!loads_.empty() && jobs.size() < kLoadBatch) {
          jobs.push_back(std::move(loads_.front()));
          loads_.pop_front();
        }
      } else {
        jobs.push_back(std::move(others_.front()));
        others_.pop_front();
      }
      busy_ += static_cast<int64_t>(jobs.size());
    }
    const Job::Kind kind = jobs.front().kind;
    if (kind == Job::Kind::kLoad) {
      execute_loads(jobs);
    } else {
      execute(jobs.front());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ -= static_cast<int64_t>(jobs.size());
      stats_.queued -= static_cast<int64_t>(jobs.size());
      stats_.blocks = static_cast<int64_t>(store_->count());
      stats_.bytes = store_->bytes();
    }
    idle_cv_.notify_all();
    if ((kind == Job::Kind::kWrite || kind == Job::Kind::kLoad) && on_done_) on_done_();
  }
  idle_cv_.notify_all();
}

// The index lookups and updates stay on this thread (the store's SQLite
// connection is single-threaded); the file reads and checksums, most of a
// load (page faults of fresh pool pages, the copy, xxHash), run on this
// thread and one helper at once: the compute threads are waiting for these
// blocks anyway.
void DiskTier::execute_loads(std::vector<Job>& jobs) {
  const size_t bytes = pool_.shape().block_bytes();
  const size_t n = jobs.size();
  std::vector<std::optional<BlockMeta>> metas(n);
  std::vector<Status> read(n);
  for (size_t i = 0; i < n; ++i) {
    auto row = store_->find_stored(jobs[i].meta.key);
    if (row) {
      metas[i] = std::move(*row);
    } else {
      read[i] = row.status();
    }
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      if (!metas[i]) continue;
      read[i] =
          store_->read_checked(jobs[i].meta.key, *metas[i], std::span<uint8_t>(pool_.block_data(jobs[i].block), bytes));
    }
  };
  std::thread helper;
  if (n > 1) helper = std::thread(work);
  work();
  if (helper.joinable()) helper.join();
  for (size_t i = 0; i < n; ++i) {
    const Job& job = jobs[i];
    Status s = metas[i] ? store_->finish_load(job.meta.key, read[i]) : read[i];
    std::lock_guard<std::mutex> lock(mu_);
    if (s.ok()) {
      ++stats_.loads;
    } else {
      ++stats_.load_errors;
      mirror_erase(job.meta.key);  // the store deleted it (or never had it)
    }
    done_.push_back(IoDone{IoDone::Kind::kLoad, job.block, job.meta.key, s.ok(), s.message()});
  }
}

Status DiskTier::store(const BlockMeta& meta, std::span<const uint8_t> payload) {
  std::vector<uint64_t> evicted;
  Status s = store_->put(meta, payload, &evicted);
  std::lock_guard<std::mutex> lock(mu_);
  forget(evicted);
  stats_.evictions += static_cast<int64_t>(evicted.size());
  if (s.ok()) mirror_put(meta.key, Entry{meta.parent, meta.tokens});
  return s;
}

void DiskTier::execute(Job& job) {
  const size_t bytes = pool_.shape().block_bytes();
  switch (job.kind) {
    case Job::Kind::kWrite: {
      const std::span<const uint8_t> payload(pool_.block_data(job.block), bytes);
      Status s = store(job.meta, payload);
      // The block is still pinned for this job: the write-through reads it now.
      if (s.ok() && on_stored_) on_stored_(job.meta, payload);
      std::lock_guard<std::mutex> lock(mu_);
      ++(s.ok() ? stats_.writes : stats_.write_errors);
      done_.push_back(IoDone{IoDone::Kind::kWrite, job.block, job.meta.key, s.ok(), s.message()});
      return;
    }
    case Job::Kind::kImport: {
      size_t stored = 0;
      for (const auto& [meta, payload] : job.imports) {
        if (!store(meta, payload).ok()) break;  // a chain stops at its first gap
        ++stored;
      }
      job.imported->set_value(stored);
      return;
    }
    case Job::Kind::kLoad: return;  // run() hands every load to execute_loads()
    case Job::Kind::kSession:
    case Job::Kind::kEraseSession: {
      // A lost manifest only costs the admin listing; counted, not fatal.
      Status s =
          job.kind == Job::Kind::kSession ? store_->put_session(job.session) : store_->erase_session(job.session.id);
      if (s.ok() && job.kind == Job::Kind::kSession && on_session_) on_session_(job.session);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.index_errors += s.ok() ? 0 : 1;
      return;
    }
    case Job::Kind::kEraseBlock: {
      Status s = store_->erase(job.meta.key);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.index_errors += s.ok() ? 0 : 1;
      mirror_erase(job.meta.key);
      return;
    }
    case Job::Kind::kProtect: store_->set_protected(std::move(job.keys)); return;
  }
}

}  // namespace tandem::kv
