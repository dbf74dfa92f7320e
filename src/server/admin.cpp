// Session and cache administration under /admin/ (see docs/API.md):
//
//   GET    /admin/sessions              every session's manifest summary
//   GET    /admin/sessions/{id}         one
//   DELETE /admin/sessions/{id}         forget it, free its own blocks
//   POST   /admin/sessions/{id}/pin     evicted from RAM last, never from disk
//   POST   /admin/sessions/{id}/unpin
//   POST   /admin/cache/flush           write every RAM block to disk
//
// Access: with --admin-key, only that key (x-api-key or Bearer); without
// one, open when the server has no API keys (a local, trusted set-up) and
// refused when it has some (client keys never administer).
#include "server/admin.h"

#include "server/http_util.h"
#include "server/openai.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>

namespace tandem::server {
namespace {

void fail(httplib::Response& res, ErrorKind kind, const std::string& message) {
  send_json(res, http_status(kind, /*anthropic=*/false), openai::error_body({kind, message, {}}));
}

std::string iso8601_ms(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

json session_json(const engine::SessionInfo& s) {
  return {{"id", s.id},
          {"object", "session"},
          {"tokens", s.tokens},
          {"blocks", s.blocks},
          {"blocks_in_ram", s.blocks_in_ram},
          {"blocks_on_disk", s.blocks_on_disk},
          {"last_use", iso8601_ms(s.last_use_ms)},
          {"last_use_ms", s.last_use_ms},
          {"pinned", s.pinned},
          {"active", s.active}};
}

}  // namespace

bool admin_allowed(const AdminAccess& access, const httplib::Request& req, httplib::Response& res) {
  const std::string key = request_api_key(req);
  if (!access.admin_key.empty()) {
    if (key == access.admin_key) return true;
    fail(res, ErrorKind::kAuthentication,
         key.empty() ? "admin routes need the admin key (x-api-key or Bearer)" : "invalid admin key");
    return false;
  }
  if (!access.server_has_keys) return true;
  fail(res, ErrorKind::kPermission, "admin routes are disabled: start tandem with --admin-key to use them");
  return false;
}

void install_admin_routes(httplib::Server& http, engine::Engine& engine, AdminAccess access) {
  http.Get("/admin/sessions", [&engine, access](const httplib::Request& req, httplib::Response& res) {
    if (!admin_allowed(access, req, res)) return;
    json data = json::array();
    for (const auto& s : engine.sessions()) data.push_back(session_json(s));
    const auto m = engine.metrics();
    send_json(res, 200,
              {{"object", "list"},
               {"data", data},
               {"cache",
                {{"ram_blocks_total", m.kv_blocks_total},
                 {"ram_blocks_cached", m.kv_blocks_cached},
                 {"ram_blocks_free", m.kv_blocks_free},
                 {"disk", m.disk_enabled},
                 {"disk_blocks", m.disk_blocks},
                 {"disk_bytes", m.disk_bytes}}}});
  });
  // Session ids are the client's strings: only ever looked up, never a path.
  http.Post(R"(/admin/sessions/(.+)/(pin|unpin))",
            [&engine, access](const httplib::Request& req, httplib::Response& res) {
              if (!admin_allowed(access, req, res)) return;
              const std::string id = req.matches[1];
              const bool pin = req.matches[2] == "pin";
              if (engine.pin_session(id, pin) == engine::Engine::SessionOp::kNotFound) {
                return fail(res, ErrorKind::kNotFound, fmt::format("no session '{}'", id));
              }
              auto info = engine.session(id);
              if (!info) return fail(res, ErrorKind::kNotFound, fmt::format("no session '{}'", id));
              send_json(res, 200, session_json(*info));
            });
  http.Get(R"(/admin/sessions/(.+))", [&engine, access](const httplib::Request& req, httplib::Response& res) {
    if (!admin_allowed(access, req, res)) return;
    const std::string id = req.matches[1];
    auto info = engine.session(id);
    if (!info) return fail(res, ErrorKind::kNotFound, fmt::format("no session '{}'", id));
    send_json(res, 200, session_json(*info));
  });
  http.Delete(R"(/admin/sessions/(.+))", [&engine, access](const httplib::Request& req, httplib::Response& res) {
    if (!admin_allowed(access, req, res)) return;
    const std::string id = req.matches[1];
    switch (engine.delete_session(id)) {
      case engine::Engine::SessionOp::kNotFound:
        return fail(res, ErrorKind::kNotFound, fmt::format("no session '{}'", id));
      case engine::Engine::SessionOp::kBusy:
        return fail(res, ErrorKind::kConflict, fmt::format("session '{}' has a request in flight", id));
      case engine::Engine::SessionOp::kOk:
        return send_json(res, 200, {{"id", id}, {"object", "session"}, {"deleted", true}});
    }
  });
  http.Post("/admin/cache/flush", [&engine, access](const httplib::Request& req, httplib::Response& res) {
    if (!admin_allowed(access, req, res)) return;
    if (!engine.has_disk_tier()) {
      return fail(res, ErrorKind::kConflict, "there is no disk tier to flush to (it is off: see --cache-dir)");
    }
    auto r = engine.flush();
    if (!r) return fail(res, ErrorKind::kInternal, r.message());
    send_json(res, 200,
              {{"object", "cache.flush"},
               {"written", r->written},
               {"on_disk", r->on_disk},
               {"failed", r->failed},
               {"ms", r->ms}});
  });
}

}  // namespace tandem::server
