// The disk tier of the KV cache: a crash-safe store of whole KV blocks.
//
// One file per block, named only from its 64-bit key (never from client
// strings), under two levels of fan-out folders:
//
//   DIR/LOCK                        flock: one process per store
//   DIR/index.sqlite3 (+ -wal)      SQLite index (WAL): blocks, meta
//   DIR/blocks/ab/cd/abcd0123456789ef.blk
//
// A block file is a 64-byte header, then block_tokens int32 token ids (the
// first n_tokens of them used, the rest zero), then the payload (the
// block's bytes in the KvPool layout):
//
//   | "TDKV" | version | fingerprint | kv_type | block_tokens | payload_bytes |
//   | key | parent | n_tokens | 0 | checksum | tokens[block_tokens] | payload |
//
// n_tokens < block_tokens is a tail: the partial last block a conversation
// left (positions past n_tokens are not part of it), stored at shutdown so
// a restarted server resumes to the token, as a RAM hit does.
//
// The checksum is XXH3-64 of the header (checksum field zero), tokens and
// payload. Little-endian.
//
// Crash safety: put() writes a temporary file, fsyncs it, renames it (and
// fsyncs the folder) before it commits the index row; deletions commit the
// index first, then unlink. So after a crash every index row names a
// complete file, and the worst leftovers are files without a row, which
// open() deletes. load() re-verifies everything; a block failing any check
// is deleted and reported as an error: the caller recomputes it.
//
// A store belongs to one model and KV layout (fingerprint, kv_type,
// block_tokens, block_bytes, kept in the index's meta table). Opening it
// with other values clears it: blocks of another model are never served
// and would only hold disk space.
//
// Not thread-safe: one thread (the engine's I/O thread) uses a store.
#pragma once

#include "core/status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

struct sqlite3;

namespace tandem::kv {

inline constexpr size_t kBlockFileHeaderBytes = 64;
inline constexpr uint32_t kBlockFileVersion = 1;

// A block's place in the prefix cache's key chain.
struct BlockMeta {
  uint64_t key = 0;  // hash(parent, tokens); never 0
  uint64_t parent = 0;
  std::vector<int32_t> tokens;  // block_tokens ids
};

// A session's manifest: the chain of block keys and the tokens of its last
// turn, so an agent's state can be listed, pinned and deleted after a
// restart. The id is the client's string: it is only ever a value in the
// index, never part of a path.
struct SessionRecord {
  std::string id;
  int64_t last_use_ms = 0;  // wall clock, ms since the epoch
  bool pinned = false;
  uint64_t cache_namespace = 0;
  std::vector<int32_t> tokens;
  std::vector<uint64_t> keys;  // block keys of the full blocks of `tokens`, in order
};

struct DiskStoreOptions {
  std::string dir;
  uint64_t max_bytes = 0;          // files (header + tokens + payload) stay within this
  uint64_t model_fingerprint = 0;  // model weights and KV layout
  uint32_t kv_type = 0;            // caller's stable id of the KV dtype
  uint32_t block_tokens = 0;
  uint32_t block_bytes = 0;  // payload bytes of one block
};

struct DiskStoreStats {
  int64_t puts = 0, loads = 0, evictions = 0;
  int64_t bad_blocks = 0;             // failed a check on load, deleted
  int64_t dropped_at_open = 0;        // rows whose file was missing or bad
  int64_t files_deleted_at_open = 0;  // temporaries and files without a row
  bool cleared_foreign = false;       // the store was of another model / layout
  bool index_recreated = false;       // the index was unreadable and rebuilt
};

class DiskStore {
 public:
  // Creates DIR if needed, takes its lock (an error if another process has
  // it open), opens or creates the index, clears a store of another model,
  // drops rows whose file is missing or has a wrong size or header, and
  // deletes every other file under DIR/blocks (temporaries, orphans).
  static Result<std::unique_ptr<DiskStore>> open(const DiskStoreOptions& options);
  ~DiskStore();
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  // Stores a block: META.tokens must hold block_tokens ids and PAYLOAD
  // block_bytes bytes. Evicts least recently used blocks (never protected
  // ones) to stay within max_bytes, and names them in EVICTED; an error
  // when only protected blocks could make room. A key already stored only
  // counts as a use (same key, same content).
  Status put(const BlockMeta& meta, std::span<const uint8_t> payload, std::vector<uint64_t>* evicted = nullptr);

  // Keys eviction never takes (the blocks of pinned sessions).
  void set_protected(std::vector<uint64_t> keys);

  // The index entry of KEY, nullopt when absent. Reads no block file.
  Result<std::optional<BlockMeta>> find(uint64_t key) const;
  // The same, an error when KEY is not stored.
  Result<BlockMeta> find_stored(uint64_t key) const;

  // Reads KEY's block into OUT (block_bytes) and, if META is not null, its
  // metadata. Verifies the whole file against the store and the index; on
  // any mismatch the block is deleted and an error returned (OUT then holds
  // unspecified bytes). A success counts as a use.
  Status load(uint64_t key, std::span<uint8_t> out, BlockMeta* meta = nullptr);

  // load() in three parts, so that the file reads of several blocks can run
  // on several threads: find() (the index), read_checked() (the file and
  // every check; no index access, any thread, concurrently with other
  // read_checked() calls), then finish_load() with its result (the index
  // again: a use on success; on failure the block is deleted and the
  // returned error names why).
  Status read_checked(uint64_t key, const BlockMeta& meta, std::span<uint8_t> out) const;
  Status finish_load(uint64_t key, const Status& read);

  // Deletes KEY's block; absent keys are fine.
  Status erase(uint64_t key);

  // All stored keys, least recently used first.
  Result<std::vector<uint64_t>> keys() const;
  // Every block's index entry (no file is read), least recently used first.
  Result<std::vector<BlockMeta>> entries() const;

  // Session manifests: insert or replace by id, delete, list all.
  Status put_session(const SessionRecord& record);
  Status erase_session(const std::string& id);
  Result<std::vector<SessionRecord>> sessions() const;

  uint64_t bytes() const { return bytes_; }  // sum of the file sizes
  size_t count() const { return count_; }
  uint64_t file_bytes() const;  // size of one block file
  const DiskStoreOptions& options() const { return opt_; }
  const DiskStoreStats& stats() const { return stats_; }
  std::string block_path(uint64_t key) const;

  // Debug check: rows and files agree (one file of the right size per row,
  // no other file), counters match the index. Empty string when all hold.
  std::string check_invariants() const;

 private:
  struct Statements;
  DiskStore(DiskStoreOptions options, int lock_fd);
  Status open_index();
  Status check_meta();
  Status reconcile_files();
  Status evict_to(uint64_t limit_bytes, std::vector<uint64_t>* evicted);
  // Least recently used unprotected blocks whose files free NEED bytes.
  Result<std::vector<uint64_t>> victims_for(uint64_t need) const;
  Status drop(uint64_t key);
  Status exec(const char* sql) const;

  DiskStoreOptions opt_;
  int lock_fd_ = -1;
  sqlite3* db_ = nullptr;
  std::unique_ptr<Statements> st_;
  uint64_t bytes_ = 0;
  size_t count_ = 0;
  int64_t clock_ = 0;  // logical time of the last use
  std::unordered_set<uint64_t> protected_;
  DiskStoreStats stats_;
};

}  // namespace tandem::kv
