#include "server/http_util.h"

#include <fmt/format.h>
#include <httplib.h>

#include <random>

namespace tandem::server {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

std::string request_api_key(const httplib::Request& req) {
  std::string key = req.get_header_value("x-api-key");
  const std::string auth = req.get_header_value("Authorization");
  if (key.empty() && auth.rfind("Bearer ", 0) == 0) key = auth.substr(7);
  return key;
}

void stream_response(httplib::Response& res, std::function<void(httplib::DataSink&)> run) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider("text/event-stream", [run = std::move(run)](size_t, httplib::DataSink& sink) {
    run(sink);
    sink.done();
    return true;
  });
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

}  // namespace tandem::server
