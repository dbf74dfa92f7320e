// The disk tier of the KV cache as the engine uses it: a DiskStore driven
// by one I/O thread, so no decode step ever waits for the disk.
//
// The engine thread queues jobs and collects their completions:
//   write(block)  - the I/O thread reads the pool block and stores it;
//   load(block)   - the I/O thread reads a stored block into the pool block
//                   (verified: a bad block is deleted and reported failed);
//   sessions, protection (pinned sessions' keys), erasures - index updates.
// Loads go before writes. The caller keeps a block it handed to a job
// unchanged and unused (it holds a reference) until the job's completion
// has been taken.
//
// contains() answers from an in-memory copy of the index (key -> parent and
// tokens), kept by the I/O thread, so the engine looks up disk hits
// without touching SQLite.
#pragma once

#include "core/status.h"
#include "kv/disk_store.h"
#include "kv/kv_pool.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tandem::kv {

struct IoDone {
  enum class Kind { kWrite, kLoad } kind = Kind::kWrite;
  BlockId block = -1;
  uint64_t key = 0;
  bool ok = false;
  std::string error;
};

struct DiskTierStats {
  int64_t blocks = 0;  // stored now
  uint64_t bytes = 0;  // their files
  int64_t writes = 0, write_errors = 0;
  int64_t loads = 0, load_errors = 0;  // load_errors: failed checks (deleted) or I/O errors
  int64_t evictions = 0;               // blocks the disk budget pushed out
  int64_t queued = 0;                  // jobs not yet done
  int64_t index_errors = 0;            // session manifest or erase updates that failed
  // From open(): what the reconciliation found.
  int64_t dropped_at_open = 0, files_deleted_at_open = 0;
  bool cleared_foreign = false;
};

class DiskTier {
 public:
  // Opens the store (see DiskStore::open) and starts the I/O thread.
  // ON_DONE is called on the I/O thread after each block job completes
  // (the engine uses it to wake up).
  static Result<std::unique_ptr<DiskTier>> open(const DiskStoreOptions& options, KvPool& pool,
                                                std::function<void()> on_done);
  // Finishes every queued job, then stops the thread.
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // True when KEY is stored with this parent and these tokens.
  bool contains(uint64_t key, uint64_t parent, std::span<const int32_t> tokens) const;
  bool contains(uint64_t key) const;
  // How many of KEYS are stored (one lock for all: the admin listing).
  int64_t count_contained(std::span<const uint64_t> keys) const;
  // The stored child of PARENT whose tokens begin with the longest run of
  // TOKENS (at least one), with its tokens: a block a prompt shares a head
  // with after leaving a stored conversation inside it.
  std::optional<BlockMeta> longest_child(uint64_t parent, std::span<const int32_t> tokens) const;

  void write(BlockId block, BlockMeta meta);
  void load(BlockId block, uint64_t key);
  void put_session(SessionRecord record);
  void erase_session(std::string id);
  void erase_block(uint64_t key);
  void protect(std::vector<uint64_t> keys);  // replaces the protected set
  // Stores blocks read elsewhere (the Redis tier) and waits until they are
  // on disk and in the index, so the engine then finds them as disk hits.
  // How many were stored.
  size_t import_blocks(std::vector<std::pair<BlockMeta, std::vector<uint8_t>>> blocks);

  // Called on the I/O thread after a block or a session manifest is
  // stored (the Redis tier's write-through). Set before the first job.
  void on_stored(std::function<void(const BlockMeta&, std::span<const uint8_t>)> f) { on_stored_ = std::move(f); }
  void on_session(std::function<void(const SessionRecord&)> f) { on_session_ = std::move(f); }

  // Completions of block jobs since the last call, in completion order.
  std::vector<IoDone> take_done();
  // Blocks until every job queued so far is done.
  void drain();
  // Blocks until a block job's completion is waiting or nothing is queued.
  void wait_for_done();

  // The session manifests found at open.
  const std::vector<SessionRecord>& sessions_at_open() const { return sessions_at_open_; }
  DiskTierStats stats() const;
  const DiskStoreOptions& options() const { return store_->options(); }

 private:
  struct Job {
    enum class Kind { kWrite, kLoad, kSession, kEraseSession, kEraseBlock, kProtect, kImport } kind;
    BlockId block = -1;
    BlockMeta meta;
    SessionRecord session;
    std::vector<uint64_t> keys;
    std::vector<std::pair<BlockMeta, std::vector<uint8_t>>> imports;
    std::shared_ptr<std::promise<size_t>> imported;
  };
  struct Entry {
    uint64_t parent = 0;
    std::vector<int32_t> tokens;
  };

  DiskTier(std::unique_ptr<DiskStore> store, KvPool& pool, std::function<void()> on_done);
  void push(Job job);
  void run();
  void execute(Job& job);
  // Puts a block in the store and, under the lock, forgets what it evicted
  // and mirrors the block when stored (I/O thread).
  Status store(const BlockMeta& meta, std::span<const uint8_t> payload);
  void execute_loads(std::vector<Job>& jobs);
  void forget(const std::vector<uint64_t>& keys);  // mirror removals (lock held by the caller)
  // The mirror and its parent index, together (lock held by the caller).
  void mirror_put(uint64_t key, Entry entry);
  void mirror_erase(uint64_t key);

  std::unique_ptr<DiskStore> store_;  // the I/O thread's alone after open
  KvPool& pool_;
  std::function<void()> on_done_;
  std::function<void(const BlockMeta&, std::span<const uint8_t>)> on_stored_;
  std::function<void(const SessionRecord&)> on_session_;
  std::vector<SessionRecord> sessions_at_open_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_, idle_cv_;
  std::deque<Job> loads_, others_;
  int64_t busy_ = 0;  // jobs taken and not finished
  bool stop_ = false;
  std::unordered_map<uint64_t, Entry> mirror_;
  std::unordered_multimap<uint64_t, uint64_t> children_;  // parent -> keys in mirror_
  std::vector<IoDone> done_;
  DiskTierStats stats_;
  std::thread thread_;
};

}  // namespace tandem::kv
