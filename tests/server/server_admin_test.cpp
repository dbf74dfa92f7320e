// The /admin/ routes on a live server with a disk tier: sessions listed,
// pinned, unpinned, deleted; the flush; who may use them; shutdown mode.
#include "server_fixture.h"

#include <httplib.h>

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

using test::get_json;
using test::post_empty;
using test::post_json;
using test::user_turn;

engine::EngineOptions with_disk(const std::string& name) {
  engine::EngineOptions eo;
  eo.cache_dir = test::scratch_dir(name);
  eo.cache_disk_bytes = 64u << 20;
  return eo;
}

void chat(httplib::Client& cli, const std::string& session, const std::string& text) {
  json body = {{"model", "m"}, {"max_tokens", 4}, {"temperature", 0}, {"messages", user_turn(text)}};
  post_json(cli, "/v1/chat/completions", body, 200, {{"x-session-id", session}});
}

TEST(Admin, SessionsListPinUnpinDelete) {
  test::LiveServer s({}, {}, with_disk("server_admin_sessions"));
  httplib::Client cli("127.0.0.1", s.port());
  const std::string long_text(600, 'y');
  chat(cli, "agent/../../one", "first agent " + long_text);
  chat(cli, "agent-two", "second agent " + long_text);
  json flushed = post_empty(cli, "/admin/cache/flush", 200);
  EXPECT_EQ(flushed["failed"], 0);
  EXPECT_GT(flushed["on_disk"].get<int64_t>(), 0);

  json list = get_json(cli, "/admin/sessions", 200);
  ASSERT_EQ(list["data"].size(), 2u);
  EXPECT_EQ(list["cache"]["disk"], true);
  for (const auto& sess : list["data"]) {
    EXPECT_GT(sess["tokens"].get<int64_t>(), 100);
    EXPECT_GT(sess["blocks"].get<int64_t>(), 2);
    EXPECT_EQ(sess["blocks_on_disk"], sess["blocks"]);
    EXPECT_EQ(sess["blocks_in_ram"], sess["blocks"]);
    EXPECT_EQ(sess["pinned"], false);
    EXPECT_EQ(sess["active"], false);
  }
  // Ids are looked up as strings, URL-encoded or not.
  const std::string id_path = "/admin/sessions/agent%2F..%2F..%2Fone";
  EXPECT_EQ(get_json(cli, id_path, 200)["id"], "agent/../../one");
  EXPECT_EQ(post_empty(cli, id_path + "/pin", 200)["pinned"], true);
  EXPECT_EQ(get_json(cli, "/admin/sessions/agent/../../one", 200)["pinned"], true);
  EXPECT_EQ(post_empty(cli, id_path + "/unpin", 200)["pinned"], false);
  auto del = cli.Delete(id_path.c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  get_json(cli, id_path, 404);
  EXPECT_EQ(get_json(cli, "/admin/sessions", 200)["data"].size(), 1u);
  json missing = post_empty(cli, "/admin/sessions/nobody/pin", 404);
  EXPECT_EQ(missing["error"]["message"], "no session 'nobody'");
  auto del_missing = cli.Delete("/admin/sessions/nobody");
  ASSERT_TRUE(del_missing);
  EXPECT_EQ(del_missing->status, 404);
  // The metrics show the tier.
  auto m = cli.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("tandem_disk_writes_total"), std::string::npos);
  EXPECT_NE(m->body.find("tandem_sessions 1"), std::string::npos);
}

TEST(Admin, FlushWithoutDiskTierIsAConflict) {
  test::LiveServer s;
  httplib::Client cli("127.0.0.1", s.port());
  json e = post_empty(cli, "/admin/cache/flush", 409);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("no disk tier"), std::string::npos);
  EXPECT_EQ(get_json(cli, "/admin/sessions", 200)["cache"]["disk"], false);
}

TEST(Admin, KeysGuardTheAdminRoutes) {
  {
    ServerOptions ho;
    ho.api_keys = {{"client", engine::Priority::kNormal}};
    test::LiveServer s({}, ho);
    httplib::Client cli("127.0.0.1", s.port());
    // Client keys never administer; without --admin-key the routes are off.
    json e = get_json(cli, "/admin/sessions", 403, {{"x-api-key", "client"}});
    EXPECT_NE(e["error"]["message"].get<std::string>().find("--admin-key"), std::string::npos);
  }
  {
    ServerOptions ho;
    ho.api_keys = {{"client", engine::Priority::kNormal}};
    ho.admin_key = "root-secret";
    test::LiveServer s({}, ho);
    httplib::Client cli("127.0.0.1", s.port());
    get_json(cli, "/admin/sessions", 401);
    get_json(cli, "/admin/sessions", 401, {{"x-api-key", "client"}});
    get_json(cli, "/admin/sessions", 200, {{"Authorization", "Bearer root-secret"}});
    post_empty(cli, "/admin/cache/flush", 401, {{"x-api-key", "wrong"}});
  }
}

TEST(Admin, ShutdownRefusesNewWork) {
  test::LiveServer s;
  httplib::Client cli("127.0.0.1", s.port());
  s.http->begin_shutdown();
  json a = post_json(cli, "/v1/messages", {{"model", "m"}, {"max_tokens", 2}, {"messages", user_turn("x")}}, 529);
  EXPECT_EQ(a["error"]["type"], "overloaded_error");
  post_json(cli, "/v1/chat/completions", {{"model", "m"}, {"messages", user_turn("x")}}, 503);
  EXPECT_EQ(get_json(cli, "/health", 503)["status"], "shutting_down");
}

}  // namespace
}  // namespace tandem::server
