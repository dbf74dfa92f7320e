#include "server/cache_scope.h"

#include <fmt/format.h>
#include <xxhash.h>

namespace tandem::server {

std::optional<CacheScope> parse_cache_scope(const std::string& name) {
  if (name == "shared") return CacheScope::kShared;
  if (name == "key") return CacheScope::kKey;
  return std::nullopt;
}

const char* cache_scope_name(CacheScope scope) { return scope == CacheScope::kKey ? "key" : "shared"; }

namespace {
uint64_t nonzero(uint64_t h) { return h == 0 ? 1 : h; }
}  // namespace

uint64_t key_namespace(const std::string& key) {
  const std::string tagged = "tandem-api-key\n" + key;
  return nonzero(XXH3_64bits(tagged.data(), tagged.size()));
}

uint64_t request_namespace(uint64_t key_ns, const std::string& salt) {
  if (salt.empty()) return key_ns;
  const std::string tagged = "tandem-cache-salt\n" + salt;
  return nonzero(XXH3_64bits_withSeed(tagged.data(), tagged.size(), key_ns));
}

std::string scoped_session(uint64_t ns, const std::string& id) {
  if (ns == 0 || id.empty()) return id;
  return fmt::format("{:016x}:{}", ns, id);
}

}  // namespace tandem::server
