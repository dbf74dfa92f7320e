// Who shares cached KV with whom. With one user's agents on a machine,
// sharing every prefix is the point; with several API keys it would let
// one key learn, by timing, whether another key sent a given prefix. A
// request's cache namespace (engine::Request::cache_namespace) partitions
// the prefix cache, the disk tier and the sessions: blocks and sessions are
// shared only within one namespace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tandem::server {

enum class CacheScope : uint8_t {
  kShared,  // every request shares (namespace 0 unless salted)
  kKey,     // shared only among requests of one API key
};

std::optional<CacheScope> parse_cache_scope(const std::string& name);
const char* cache_scope_name(CacheScope scope);

// The namespace of requests made with API key KEY under CacheScope::kKey.
// A hash of the key, so it is the same after a restart (the disk tier and
// session manifests keep their partition) and never reveals the key.
uint64_t key_namespace(const std::string& key);

// KEY_NS (0: shared) further partitioned by a request's cache_salt ("":
// none). Never 0 when a salt is given.
uint64_t request_namespace(uint64_t key_ns, const std::string& salt);

// The engine's id of session ID in namespace NS: "ID" in namespace 0, else
// "<16 hex digits of NS>:ID", so equal ids of two keys are two sessions.
std::string scoped_session(uint64_t ns, const std::string& id);

}  // namespace tandem::server
