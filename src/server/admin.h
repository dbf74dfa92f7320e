// The /admin/ routes: sessions (list, show, delete, pin, unpin) and the
// cache flush. See admin.cpp for the routes and the access rule.
#pragma once

#include "engine/engine.h"
#include "server/api.h"

#include <string>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tandem::server {

struct AdminAccess {
  std::string admin_key;         // "" = none configured
  bool server_has_keys = false;  // --api-key given
};

// True when REQ may use the admin routes; otherwise writes the 401/403.
bool admin_allowed(const AdminAccess& access, const httplib::Request& req, httplib::Response& res);

void install_admin_routes(httplib::Server& http, engine::Engine& engine, AdminAccess access);

}  // namespace tandem::server
