// A shared KV block tier in Redis, behind RAM and the local disk tier: every
// node writes the blocks it stores on disk, any node reads a prefix another
// computed. Redis is a cache here: tandem works on when it is down or slow
// (timeouts, reconnects with backoff; a failed read is a miss, a failed
// write is dropped), and Redis's own eviction (maxmemory + allkeys-lru)
// bounds its memory.
//
// Keys: PREFIX:b:<block key> for blocks, PREFIX:s:<session id> for session
// manifests, where PREFIX names the model fingerprint, the KV type and the
// block size, so nodes of different models share one Redis safely. A value
// is untrusted: a block value carries its key, parent, tokens and a
// checksum, and anything that does not match exactly what the reader asked
// for is a miss (recomputed), never used.
//
// Writes go through one writer thread with a bounded queue (a full queue
// holds the caller, the disk tier's I/O thread, for at most one timeout,
// then drops the block); reads run on the caller's
// thread (the HTTP thread that prepares a request), one at a time.
#pragma once

#include "core/status.h"
#include "kv/disk_store.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace tandem::kv {

struct RedisTierOptions {
  std::string url;         // redis://[:password@]host[:port][/db] or unix:///path/to.sock[?db=N]
  std::string key_prefix;  // e.g. tandem:<fingerprint>:<kv type>:<block tokens>
  uint32_t block_tokens = 0;
  uint32_t block_bytes = 0;
  size_t max_queue_bytes = 256u << 20;  // blocks waiting to be written
  std::chrono::milliseconds timeout{500};
};

struct RedisTierStats {
  int64_t hits = 0, misses = 0, bad_values = 0;  // blocks asked for: found and valid / absent / rejected
  uint64_t bytes_read = 0, bytes_written = 0;
  int64_t writes = 0, dropped_writes = 0;  // dropped: queue full or Redis down
  int64_t errors = 0, reconnects = 0;
  int64_t reads = 0;
  double read_ms_total = 0;  // time in read round trips
  bool connected = false;
};

// Where Redis listens, from a URL.
struct RedisAddress {
  std::string host;  // empty for a unix socket
  int port = 6379;
  std::string socket_path;
  int db = 0;
  std::string password;
};
Result<RedisAddress> parse_redis_url(const std::string& url);

// A block as a Redis value: header, tokens, payload (exposed for tests).
std::vector<uint8_t> encode_block(const BlockMeta& meta, std::span<const uint8_t> payload);
// The payload of VALUE if it is exactly EXPECT's block of PAYLOAD_BYTES bytes; empty otherwise.
std::vector<uint8_t> decode_block(std::span<const uint8_t> value, const BlockMeta& expect, uint32_t payload_bytes);

class RedisConnection;

class RedisTier {
 public:
  // Never fails because Redis is down (it connects when it can); fails on a bad URL.
  static Result<std::unique_ptr<RedisTier>> open(const RedisTierOptions& options);
  ~RedisTier();  // writes what is queued (within the timeout), then stops
  RedisTier(const RedisTier&) = delete;
  RedisTier& operator=(const RedisTier&) = delete;

  // Queues a block (copied) or a session manifest for writing. A full
  // queue waits up to the timeout for room, then drops the value.
  void put_block(const BlockMeta& meta, std::span<const uint8_t> payload);
  void put_session(const SessionRecord& record);
  // The payloads of CHAIN's blocks, in order, up to the first one that is
  // absent or invalid (one round trip for all).
  std::vector<std::vector<uint8_t>> get_chain(std::span<const BlockMeta> chain);
  // The manifest of session ID another node wrote; nullopt when absent,
  // unreadable or Redis is down.
  std::optional<SessionRecord> get_session(const std::string& id);
  // Blocks until everything queued so far is written or dropped (tests, flush).
  void drain();

  RedisTierStats stats() const;
  const RedisTierOptions& options() const { return opt_; }
  std::string block_key_name(uint64_t key) const;
  std::string session_key_name(const std::string& id) const;

 private:
  struct Put {
    std::string key;
    std::vector<uint8_t> value;
  };
  RedisTier(RedisTierOptions options, RedisAddress address);
  void enqueue(Put p);  // within max_queue_bytes (session manifests too), else dropped
  void run_writer();

  RedisTierOptions opt_;
  RedisAddress addr_;
  std::unique_ptr<RedisConnection> reader_, writer_;  // reader_ under read_mu_, writer_ the writer thread's
  std::mutex read_mu_;

  mutable std::mutex mu_;  // guards the queue and stats_
  std::condition_variable cv_, idle_cv_;
  std::deque<Put> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false, stop_ = false;
  RedisTierStats stats_;
  int64_t writer_errors_ = 0, reader_errors_ = 0;  // the connections' counts, copied under mu_
  std::thread thread_;
};

}  // namespace tandem::kv
