// tandem's HTTP server: routes, authentication, priorities and sessions
// from headers, SSE streaming, error envelopes, /metrics. A thin layer: the
// adapters (anthropic.h, openai.h) convert JSON, the Service runs requests.
#pragma once

#include "core/status.h"
#include "engine/request.h"
#include "server/a2a_protocol.h"
#include "server/cache_scope.h"
#include "server/metrics.h"
#include "server/service.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tandem::server {

class A2aRuntime;

struct ChatApi;  // a generation route's adapter (server.cpp)

struct ApiKey {
  std::string key;
  engine::Priority tier = engine::Priority::kNormal;  // the highest priority its requests may have
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                         // 0: any free port (see Server::port())
  std::vector<ApiKey> api_keys;            // empty: no authentication
  std::vector<std::string> model_aliases;  // names clients may ask for; empty: any name
  size_t max_body_bytes = 64u << 20;       // larger bodies get 413
  int http_threads = 64;                   // connections served at once (streams hold one each)
  std::string admin_key;                   // needed by /admin/ routes (see admin.h)
  // Every generation request's body is written here as <n>-<id>.json
  // (tandem serve --dump-requests: for tandem render --diff); "" for none.
  std::string dump_dir;
  // A2A agents (tandem serve --a2a-agent); none: one agent "default", the
  // model without a system prompt.
  std::vector<a2a::Agent> a2a_agents;
  // This node's name behind a load balancer (tandem serve --node-id): the
  // x-tandem-node response header, the request log and a /metrics label.
  std::string node_id;
  // Who shares cached KV (server/cache_scope.h); tandem serve defaults it
  // to kKey when API keys are set.
  CacheScope cache_scope = CacheScope::kShared;
};

// "KEY" or "KEY:high|normal|low".
Result<ApiKey> parse_api_key(const std::string& spec);

class Server {
 public:
  Server(Service& service, ServerOptions options);
  ~Server();

  // Binds the socket; after it port() is the real port.
  Status bind();
  int port() const { return port_; }
  // Serves until stop(); returns when the listener closes.
  void run();
  // Blocks until run() accepts connections (another thread calls run()).
  void wait_until_running() const;
  void stop();
  // From now on generation requests get 503/529 "shutting down"; requests
  // already running go on.
  void begin_shutdown() { shutting_down_.store(true); }

 private:
  // Who asks, from the headers.
  struct Caller {
    engine::Priority priority = engine::Priority::kNormal;
    std::string session;         // "" when none
    uint64_t key_namespace = 0;  // the key's cache namespace under CacheScope::kKey, else 0
  };
  void install_routes();
  void install_error_handlers();
  std::optional<Caller> authorize(const httplib::Request& req, httplib::Response& res);
  bool check_model(const httplib::Request& req, httplib::Response& res, const std::string& model);
  std::vector<std::string> model_ids() const;
  void handle_chat(const ChatApi& api, const httplib::Request& req, httplib::Response& res);
  void handle_count_tokens(const httplib::Request& req, httplib::Response& res);
  void handle_render(const httplib::Request& req, httplib::Response& res);
  void handle_models(const httplib::Request& req, httplib::Response& res);
  void handle_model(const httplib::Request& req, httplib::Response& res);
  void handle_health(const httplib::Request& req, httplib::Response& res);
  void handle_metrics(const httplib::Request& req, httplib::Response& res);
  void handle_a2a_card(const httplib::Request& req, httplib::Response& res);  // a2a_routes.cpp
  void handle_a2a(const httplib::Request& req, httplib::Response& res);
  void dump_body(const json& body, const std::string& id);

  Service& service_;
  ServerOptions opt_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<A2aRuntime> a2a_;
  ServerMetrics metrics_;
  int port_ = 0;
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> dumped_{0};
};

}  // namespace tandem::server
