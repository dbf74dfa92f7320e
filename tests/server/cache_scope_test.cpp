// Cache isolation between API keys (--cache-scope) and per-request salts,
// on a live server: who reads whose cached prefix, sessions kept apart,
// and partitions that survive a restart through the disk tier.
#include "server/cache_scope.h"
#include "server_fixture.h"

#include <httplib.h>

#include <set>

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

using test::get_json;
using test::post_empty;
using test::post_json;
using test::user_turn;

const std::string kPrompt =
    "a shared system prompt that is long enough to fill several KV blocks " + std::string(400, 'z');

// Cached prompt tokens of one chat completion sent with API key KEY (and SALT, SESSION when given).
int64_t cached_tokens(httplib::Client& cli, const std::string& key, const std::string& salt = "",
                      const std::string& session = "") {
  json body = {{"model", "m"}, {"max_tokens", 2}, {"temperature", 0}, {"messages", user_turn(kPrompt)}};
  if (!salt.empty()) body["cache_salt"] = salt;
  httplib::Headers h = {{"x-api-key", key}};
  if (!session.empty()) h.emplace("x-session-id", session);
  json r = post_json(cli, "/v1/chat/completions", body, 200, h);
  return r["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
}

ServerOptions two_keys(CacheScope scope) {
  ServerOptions ho;
  ho.api_keys = {{"key-a", engine::Priority::kNormal}, {"key-b", engine::Priority::kNormal}};
  ho.admin_key = "root";
  ho.cache_scope = scope;
  return ho;
}

TEST(CacheScope, NamespacesAndScopedSessions) {
  EXPECT_EQ(parse_cache_scope("key"), CacheScope::kKey);
  EXPECT_EQ(parse_cache_scope("shared"), CacheScope::kShared);
  EXPECT_FALSE(parse_cache_scope("Key"));
  EXPECT_NE(key_namespace("a"), key_namespace("b"));
  EXPECT_EQ(key_namespace("a"), key_namespace("a")) << "stable across restarts";
  EXPECT_EQ(request_namespace(0, ""), 0u) << "shared and unsalted: the namespace of existing caches";
  EXPECT_NE(request_namespace(0, "s"), 0u);
  EXPECT_NE(request_namespace(key_namespace("a"), "s"), request_namespace(key_namespace("b"), "s"));
  EXPECT_EQ(scoped_session(0, "agent"), "agent");
  EXPECT_EQ(scoped_session(0x2a, "agent"), "000000000000002a:agent");
  EXPECT_EQ(scoped_session(0x2a, ""), "") << "no session stays no session";
}

TEST(CacheScope, KeysShareOnlyTheirOwnPrefixesUnderKeyScope) {
  test::LiveServer s({}, two_keys(CacheScope::kKey));
  httplib::Client cli("127.0.0.1", s.port());
  EXPECT_EQ(cached_tokens(cli, "key-a"), 0);
  EXPECT_GT(cached_tokens(cli, "key-a"), 100) << "a key reads its own prefix";
  EXPECT_EQ(cached_tokens(cli, "key-b"), 0) << "another key computes it again";
  EXPECT_GT(cached_tokens(cli, "key-b"), 100);
}

TEST(CacheScope, KeysShareEverythingUnderSharedScope) {
  test::LiveServer s({}, two_keys(CacheScope::kShared));
  httplib::Client cli("127.0.0.1", s.port());
  EXPECT_EQ(cached_tokens(cli, "key-a"), 0);
  EXPECT_GT(cached_tokens(cli, "key-b"), 100);
}

TEST(CacheScope, SaltsPartitionFurther) {
  test::LiveServer s({}, two_keys(CacheScope::kShared));
  httplib::Client cli("127.0.0.1", s.port());
  EXPECT_EQ(cached_tokens(cli, "key-a"), 0);
  EXPECT_EQ(cached_tokens(cli, "key-a", "tenant-1"), 0) << "a salt starts its own partition";
  EXPECT_GT(cached_tokens(cli, "key-b", "tenant-1"), 100) << "the same salt shares (shared scope)";
  EXPECT_EQ(cached_tokens(cli, "key-a", "tenant-2"), 0);
  EXPECT_GT(cached_tokens(cli, "key-a"), 100) << "unsalted requests still share theirs";
  // Anthropic clients put the salt in metadata.
  json body = {{"model", "m"},
               {"max_tokens", 2},
               {"temperature", 0},
               {"metadata", {{"cache_salt", "tenant-1"}}},
               {"messages", user_turn(kPrompt)}};
  json r = post_json(cli, "/v1/messages", body, 200, {{"x-api-key", "key-a"}});
  EXPECT_GT(r["usage"]["cache_read_input_tokens"].get<int64_t>(), 100);
  body["metadata"]["cache_salt"] = 7;
  post_json(cli, "/v1/messages", body, 400, {{"x-api-key", "key-a"}});
}

// Two keys using the same session id get two sessions, and the partitions
// come back after a restart from the disk tier and the session manifests.
TEST(CacheScope, SessionsAndPartitionsSurviveARestart) {
  engine::EngineOptions eo;
  eo.cache_dir = test::scratch_dir("server_cache_scope_restart");
  eo.cache_disk_bytes = 64u << 20;
  const httplib::Headers admin = {{"x-api-key", "root"}};
  {
    test::LiveServer s({}, two_keys(CacheScope::kKey), eo);
    httplib::Client cli("127.0.0.1", s.port());
    EXPECT_EQ(cached_tokens(cli, "key-a", "", "agent"), 0);
    EXPECT_EQ(cached_tokens(cli, "key-b", "", "agent"), 0);
    json list = get_json(cli, "/admin/sessions", 200, admin);
    ASSERT_EQ(list["data"].size(), 2u) << "one session id, two keys: two sessions";
    const std::string a = scoped_session(key_namespace("key-a"), "agent");
    const std::string b = scoped_session(key_namespace("key-b"), "agent");
    std::set<std::string> ids;
    for (const auto& sess : list["data"]) ids.insert(sess["id"].get<std::string>());
    EXPECT_EQ(ids, (std::set<std::string>{a, b}));
    post_empty(cli, "/admin/cache/flush", 200, admin);
  }
  test::LiveServer s({}, two_keys(CacheScope::kKey), eo);
  httplib::Client cli("127.0.0.1", s.port());
  EXPECT_EQ(get_json(cli, "/admin/sessions", 200, admin)["data"].size(), 2u);
  // key-a's blocks come back from disk for key-a only; a new key shares nothing.
  EXPECT_GT(cached_tokens(cli, "key-a", "", "agent"), 100);
  EXPECT_GT(cached_tokens(cli, "key-b"), 100);
  EXPECT_EQ(cached_tokens(cli, "key-a", "new-tenant"), 0) << "a new partition starts empty after a restart too";
}

}  // namespace
}  // namespace tandem::server
