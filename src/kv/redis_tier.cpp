#include "kv/redis_tier.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <cstring>

namespace tandem::kv {

Result<RedisAddress> parse_redis_url(const std::string& url) {
  RedisAddress a;
  auto parse_db = [&](const std::string& s) -> bool {
    if (s.empty()) return true;
    char* end = nullptr;
    const long db = std::strtol(s.c_str(), &end, 10);
    if (*end != '\0' || db < 0 || db > 1 << 20) return false;
    a.db = static_cast<int>(db);
    return true;
  };
  if (url.rfind("unix://", 0) == 0) {
    std::string rest = url.substr(7);
    const size_t q = rest.find("?db=");
    if (q != std::string::npos) {
      if (!parse_db(rest.substr(q + 4))) return Status::errorf("--redis {}: bad db number", url);
      rest.resize(q);
    }
    if (rest.empty() || rest[0] != '/') return Status::errorf("--redis {}: expected unix:///path/to/redis.sock", url);
    a.socket_path = rest;
    return a;
  }
  if (url.rfind("redis://", 0) != 0) {
    return Status::errorf("--redis {}: expected redis://host[:port][/db] or unix:///path/to/redis.sock", url);
  }
  std::string rest = url.substr(8);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    if (!parse_db(rest.substr(slash + 1))) return Status::errorf("--redis {}: bad db number", url);
    rest.resize(slash);
  }
  if (const size_t at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    a.password = auth.substr(auth.find(':') == std::string::npos ? 0 : auth.find(':') + 1);
    rest = rest.substr(at + 1);
  }
  const size_t colon = rest.rfind(':');
  a.host = rest.substr(0, colon);
  if (colon != std::string::npos) {
    char* end = nullptr;
    const long port = std::strtol(rest.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) return Status::errorf("--redis {}: bad port", url);
    a.port = static_cast<int>(port);
  }
  if (a.host.empty()) return Status::errorf("--redis {}: no host", url);
  return a;
}

// ---- values -------------------------------------------------------------------

namespace {

constexpr uint64_t kValueMagic = 0x31304b4d444e5454ull;  // "TTNDMK01"
struct ValueHeader {
  uint64_t magic, key, parent, checksum;
  uint32_t n_tokens, payload_bytes;
};
static_assert(sizeof(ValueHeader) == 40);

uint64_t checksum(std::span<const int32_t> tokens, std::span<const uint8_t> payload) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, tokens.data(), tokens.size_bytes());
  XXH3_64bits_update(st, payload.data(), payload.size());
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace

std::vector<uint8_t> encode_block(const BlockMeta& meta, std::span<const uint8_t> payload) {
  const ValueHeader h{kValueMagic,
                      meta.key,
                      meta.parent,
                      checksum(meta.tokens, payload),
                      static_cast<uint32_t>(meta.tokens.size()),
                      static_cast<uint32_t>(payload.size())};
  std::vector<uint8_t> v(sizeof(h) + meta.tokens.size() * 4 + payload.size());
  std::memcpy(v.data(), &h, sizeof(h));
  std::memcpy(v.data() + sizeof(h), meta.tokens.data(), meta.tokens.size() * 4);
  std::memcpy(v.data() + sizeof(h) + meta.tokens.size() * 4, payload.data(), payload.size());
  return v;
}

std::vector<uint8_t> decode_block(std::span<const uint8_t> value, const BlockMeta& expect, uint32_t payload_bytes) {
  ValueHeader h;
  const size_t want = sizeof(h) + expect.tokens.size() * 4 + payload_bytes;
  if (value.size() != want) return {};
  std::memcpy(&h, value.data(), sizeof(h));
  if (h.magic != kValueMagic || h.key != expect.key || h.parent != expect.parent ||
      h.n_tokens != expect.tokens.size() || h.payload_bytes != payload_bytes) {
    return {};
  }
  const auto tokens = value.subspan(sizeof(h), expect.tokens.size() * 4);
  if (std::memcmp(tokens.data(), expect.tokens.data(), tokens.size()) != 0) return {};
  const auto payload = value.subspan(sizeof(h) + tokens.size());
  if (checksum(expect.tokens, payload) != h.checksum) return {};
  return std::vector<uint8_t>(payload.begin(), payload.end());
}

// ---- one connection -----------------------------------------------------------

// A hiredis context that reconnects by itself: after a failure it is
// dropped, and the next command after a backoff (0.5 s doubling to 30 s)
// connects again.
class RedisConnection {
 public:
  using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

  RedisConnection(RedisAddress address, std::chrono::milliseconds timeout, const char* role)
      : addr_(std::move(address)), timeout_(timeout), role_(role) {}
  ~RedisConnection() {
    if (c_) redisFree(c_);
  }

  // The reply of ARGV, or null (connection down, timeout, error reply).
  Reply command(const std::vector<std::string_view>& argv) {
    if (!ensure()) return {nullptr, freeReplyObject};
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (auto a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), ptrs.data(), lens.data())),
            freeReplyObject);
    if (!r) {
      fail(c_->errstr);
      return r;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      ++errors;
      spdlog::warn("Redis tier: {} error: {}", role_, std::string(r->str, r->len));
      return {nullptr, freeReplyObject};
    }
    return r;
  }
  bool connected() const { return c_ != nullptr; }

  int64_t errors = 0, reconnects = 0;

 private:
  bool ensure() {
    if (c_) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_try_) return false;
    const timeval tv = to_timeval(timeout_);
    c_ = addr_.socket_path.empty() ? redisConnectWithTimeout(addr_.host.c_str(), addr_.port, tv)
                                   : redisConnectUnixWithTimeout(addr_.socket_path.c_str(), tv);
    if (!c_ || c_->err) {
      fail(c_ ? c_->errstr : "cannot allocate a connection");
      return false;
    }
    redisSetTimeout(c_, tv);
    if (!addr_.password.empty() || addr_.db != 0) {
      auto select = [&](std::vector<const char*> argv) {
        auto* r = static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), nullptr));
        const bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r) freeReplyObject(r);
        return ok;
      };
      const std::string db = std::to_string(addr_.db);
      if ((!addr_.password.empty() && !select({"AUTH", addr_.password.c_str()})) ||
          (addr_.db != 0 && !select({"SELECT", db.c_str()}))) {
        fail("AUTH or SELECT refused");
        return false;
      }
    }
    if (was_down_) {
      ++reconnects;
      spdlog::info("Redis tier: {} connection is back", role_);
    }
    was_down_ = false;
    backoff_ = std::chrono::milliseconds(500);
    return true;
  }

  void fail(const char* why) {
    ++errors;
    if (!was_down_)
      spdlog::warn("Redis tier: {} connection lost ({}); retrying with backoff, requests go on", role_, why);
    was_down_ = true;
    if (c_) redisFree(c_);
    c_ = nullptr;
    next_try_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(30000));
  }

  RedisAddress addr_;
  std::chrono::milliseconds timeout_;
  const char* role_;
  redisContext* c_ = nullptr;
  std::chrono::steady_clock::time_point next_try_{};
  std::chrono::milliseconds backoff_{500};
  bool was_down_ = false;
};

// ---- the tier -------------------------------------------------------------------

Result<std::unique_ptr<RedisTier>> RedisTier::open(const RedisTierOptions& options) {
  auto addr = parse_redis_url(options.url);
  if (!addr) return addr.status();
  return std::unique_ptr<RedisTier>(new RedisTier(options, *addr));
}

RedisTier::RedisTier(RedisTierOptions options, RedisAddress address)
    : opt_(std::move(options)),
      addr_(std::move(address)),
      reader_(std::make_unique<RedisConnection>(addr_, opt_.timeout, "read")),
      writer_(std::make_unique<RedisConnection>(addr_, opt_.timeout, "write")) {
  thread_ = std::thread([this] { run_writer(); });
}

RedisTier::~RedisTier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string RedisTier::block_key_name(uint64_t key) const { return fmt::format("{}:b:{:016x}", opt_.key_prefix, key); }

std::string RedisTier::session_key_name(const std::string& id) const {
  return fmt::format("{}:s:{}", opt_.key_prefix, id);
}

void RedisTier::put_block(const BlockMeta& meta, std::span<const uint8_t> payload) {
  enqueue({block_key_name(meta.key), encode_block(meta, payload)});
}

void RedisTier::put_session(const SessionRecord& r) {
  const nlohmann::json j = {{"id", r.id},         {"last_use_ms", r.last_use_ms},
                            {"pinned", r.pinned}, {"namespace", r.cache_namespace},
                            {"tokens", r.tokens}, {"keys", r.keys}};
  const std::string text = j.dump();
  enqueue({session_key_name(r.id), std::vector<uint8_t>(text.begin(), text.end())});
}

void RedisTier::enqueue(Put p) {
  std::unique_lock lock(mu_);
  // A full queue holds the caller (the disk tier's I/O thread, never a
  // step) for up to one timeout, then drops the value: a slow Redis slows
  // the write-through, a dead one costs nothing.
  if (!idle_cv_.wait_for(lock, opt_.timeout,
                         [&] { return stop_ || queued_bytes_ + p.value.size() <= opt_.max_queue_bytes; }) ||
      stop_) {
    ++stats_.dropped_writes;
    return;
  }
  queued_bytes_ += p.value.size();
  queue_.push_back(std::move(p));
  cv_.notify_one();
}

std::optional<SessionRecord> RedisTier::get_session(const std::string& id) {
  const std::string key = session_key_name(id);
  std::string text;
  {
    std::lock_guard read_lock(read_mu_);
    auto reply = reader_->command({"GET", key});
    if (!reply || reply->type != REDIS_REPLY_STRING) return std::nullopt;
    text.assign(reply->str, reply->len);
  }
  // Untrusted like the blocks: any wrong shape is "no manifest".
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("id", std::string()) != id || !j.contains("tokens") || !j["tokens"].is_array() ||
      !j.contains("keys") || !j["keys"].is_array()) {
    return std::nullopt;
  }
  SessionRecord r;
  r.id = id;
  try {
    r.last_use_ms = j.value("last_use_ms", int64_t{0});
    r.pinned = j.value("pinned", false);
    r.cache_namespace = j.value("namespace", uint64_t{0});
    r.tokens = j["tokens"].get<std::vector<int32_t>>();
    r.keys = j["keys"].get<std::vector<uint64_t>>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return r;
}

void RedisTier::run_writer() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, all written
    Put p = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    const std::string_view value(reinterpret_cast<const char*>(p.value.data()), p.value.size());
    auto reply = writer_->command({"SET", p.key, value});
    lock.lock();
    writing_ = false;
    queued_bytes_ -= p.value.size();
    if (reply) {
      ++stats_.writes;
      stats_.bytes_written += p.value.size();
    } else {
      ++stats_.dropped_writes;
    }
    writer_errors_ = writer_->errors;  // the writer thread's own connection
    stats_.errors = writer_errors_ + reader_errors_;
    stats_.connected = writer_->connected();
    stats_.reconnects = writer_->reconnects;
    idle_cv_.notify_all();                 // room in the queue (and drain() waiters)
    if (stop_ && !writer_->connected()) {  // Redis is down: what is left is dropped
      stats_.dropped_writes += static_cast<int64_t>(queue_.size());
      queue_.clear();
      queued_bytes_ = 0;
      idle_cv_.notify_all();
    }
  }
}

void RedisTier::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

std::vector<std::vector<uint8_t>> RedisTier::get_chain(std::span<const BlockMeta> chain) {
  std::vector<std::vector<uint8_t>> out;
  if (chain.empty()) return out;
  std::vector<std::string> keys;
  std::vector<std::string_view> argv{"MGET"};
  keys.reserve(chain.size());
  for (const auto& m : chain) keys.push_back(block_key_name(m.key));
  for (const auto& k : keys) argv.push_back(k);
  const auto start = std::chrono::steady_clock::now();
  std::lock_guard read_lock(read_mu_);
  auto reply = reader_->command(argv);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  int64_t hits = 0, misses = 0, bad = 0;
  uint64_t bytes = 0;
  if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == chain.size()) {
    for (size_t i = 0; i < chain.size(); ++i) {
      const redisReply* e = reply->element[i];
      if (e->type != REDIS_REPLY_STRING) {
        ++misses;
        break;
      }
      bytes += e->len;
      auto payload = decode_block({reinterpret_cast<const uint8_t*>(e->str), e->len}, chain[i], opt_.block_bytes);
      if (payload.empty()) {
        ++bad;
        break;
      }
      ++hits;
      out.push_back(std::move(payload));
    }
  } else {
    misses = 1;
  }
  std::lock_guard lock(mu_);
  stats_.hits += hits;
  stats_.misses += misses;
  stats_.bad_values += bad;
  stats_.bytes_read += bytes;
  ++stats_.reads;
  stats_.read_ms_total += ms;
  reader_errors_ = reader_->errors;  // under read_mu_
  stats_.errors = writer_errors_ + reader_errors_;
  return out;
}

RedisTierStats RedisTier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace tandem::kv
