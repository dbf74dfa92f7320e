// The A2A routes: agent cards (GET /.well-known/agent-card.json,
// /a2a/NAME/.well-known/agent-card.json) and JSON-RPC (POST /a2a,
// /a2a/NAME). Errors are JSON-RPC errors with HTTP 200, as the protocol's
// clients expect; a missing or wrong API key is a 401 like every route.
#include "server/a2a.h"
#include "server/http_util.h"
#include "server/server.h"

#include <httplib.h>

namespace tandem::server {
namespace {

// http://HOST[:PORT] as the client reached us (cards name absolute URLs).
std::string base_url(const httplib::Request& req, const std::string& host, int port) {
  const std::string h = req.get_header_value("Host");
  if (!h.empty() && h.find_first_of(" /\\\"'<>") == std::string::npos) return "http://" + h;
  return fmt::format("http://{}:{}", host == "0.0.0.0" ? "127.0.0.1" : host, port);
}

}  // namespace

void Server::handle_a2a_card(const httplib::Request& req, httplib::Response& res) {
  const a2a::Agent* only = nullptr;
  if (req.matches.size() > 1) {
    only = a2a_->find_agent(req.matches[1]);
    if (!only) return send_json(res, 404, {{"error", fmt::format("no A2A agent named '{}'", req.matches[1].str())}});
  }
  send_json(res, 200,
            a2a::agent_card(a2a_->agents(), base_url(req, opt_.host, port_), service_.options().model_name, only));
}

void Server::handle_a2a(const httplib::Request& req, httplib::Response& res) {
  auto caller = authorize(req, res);
  if (!caller) return;
  const a2a::Agent* agent = nullptr;
  if (req.matches.size() > 1) {
    agent = a2a_->find_agent(req.matches[1]);
    if (!agent) {
      return send_json(res, 404,
                       a2a::rpc_error(nullptr, {a2a::kMethodNotFound,
                                                fmt::format("no A2A agent named '{}'", req.matches[1].str())}));
    }
  }
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    return send_json(res, 200, a2a::rpc_error(nullptr, {a2a::kParseError, "the body is not valid JSON"}));
  }
  if (shutting_down_.load()) {
    return send_json(res, 200,
                     a2a::rpc_error(body.is_object() ? body.value("id", json()) : json(),
                                    {a2a::kInternalError, "tandem is shutting down; retry later"}));
  }
  A2aCaller call{caller->priority, caller->key_namespace};
  if (!A2aRuntime::is_streaming(body)) return send_json(res, 200, a2a_->call(body, agent, call));
  // A call refused before its task starts (bad params) gets its error as
  // the stream's one event, which the SDK raises as the typed error.
  auto shared_body = std::make_shared<json>(std::move(body));
  stream_response(res, [this, shared_body, agent, call](httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (auto e = a2a_->stream(*shared_body, agent, call, write)) {
      const std::string line = "data: " + e->dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
      sink.write(line.data(), line.size());
    }
  });
}

}  // namespace tandem::server
