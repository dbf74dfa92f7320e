#include "server/server.h"

#include "server/a2a.h"
#include "server/admin.h"
#include "server/anthropic.h"
#include "server/http_util.h"
#include "server/log.h"
#include "server/openai.h"
#include "server/render.h"
#include "server/responses.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

namespace tandem::server {
namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The body API /v1/render was asked for: ?api=, else an anthropic-version
// header (every Anthropic SDK sends one), else a guess from the body.
BodyApi render_api(const httplib::Request& req, const json& body) {
  if (auto api = parse_body_api(req.get_param_value("api"))) return *api;
  if (req.has_header("anthropic-version")) return BodyApi::kAnthropic;
  return guess_body_api(body);
}

// Errors in Anthropic's envelope on its routes, and on /v1/render for its bodies.
bool is_anthropic(const httplib::Request& req) {
  if (req.path.rfind("/v1/messages", 0) == 0) return true;
  return req.path == "/v1/render" &&
         (req.get_param_value("api") == "anthropic" || (!req.has_param("api") && req.has_header("anthropic-version")));
}

std::string route_label(const httplib::Request& req) {
  for (const char* r : {"/v1/messages/count_tokens", "/v1/messages", "/v1/render", "/v1/chat/completions",
                        "/v1/completions", "/v1/responses", "/v1/models", "/health", "/metrics", "/admin/sessions",
                        "/admin/cache", "/a2a", "/.well-known/agent-card.json"}) {
    if (req.path.rfind(r, 0) == 0) return r;
  }
  return "other";
}

// The log record of the request this HTTP worker thread serves: a request's
// handler, its streamed content and the logger all run on one thread.
struct CurrentRequest {
  RequestRecord record;
  std::chrono::steady_clock::time_point start;
};
thread_local CurrentRequest t_current;

// What the log says of a finished generation.
void note_completion(const Completion& c) {
  t_current.record.stop = engine::stop_reason_name(c.stop);
  t_current.record.usage = c.usage;
  if (!c.error.empty()) t_current.record.error = c.error;
}

const char* priority_name(engine::Priority p) {
  switch (p) {
    case engine::Priority::kHigh: return "high";
    case engine::Priority::kNormal: return "normal";
    case engine::Priority::kLow: return "low";
  }
  return "?";
}

void send_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  t_current.record.error = e.message;
  const bool a = is_anthropic(req);
  send_json(res, http_status(e.kind, a), a ? anthropic::error_body(e) : openai::error_body(e));
}

std::optional<engine::Priority> parse_priority(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "high") return engine::Priority::kHigh;
  if (s == "normal") return engine::Priority::kNormal;
  if (s == "low") return engine::Priority::kLow;
  return std::nullopt;
}

}  // namespace

Result<ApiKey> parse_api_key(const std::string& spec) {
  ApiKey k;
  const size_t colon = spec.rfind(':');
  k.key = spec;
  if (colon != std::string::npos) {
    if (auto p = parse_priority(spec.substr(colon + 1))) {
      k.key = spec.substr(0, colon);
      k.tier = *p;
    }
  }
  if (k.key.empty()) return Status::errorf("--api-key '{}': the key is empty", spec);
  return k;
}

Server::Server(Service& service, ServerOptions options)
    : service_(service), opt_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  if (opt_.a2a_agents.empty()) {
    opt_.a2a_agents.push_back({"default", "The loaded model, without a system prompt.", ""});
  }
  a2a_ = std::make_unique<A2aRuntime>(service_, opt_.a2a_agents);
  install_routes();
}

Server::~Server() { stop(); }

Status Server::bind() {
  if (opt_.port == 0) {
    port_ = http_->bind_to_any_port(opt_.host);
    if (port_ <= 0) return Status::errorf("cannot listen on {}: no free port", opt_.host);
  } else {
    if (!http_->bind_to_port(opt_.host, opt_.port)) {
      return Status::errorf("cannot listen on {}:{} (in use? try --port)", opt_.host, opt_.port);
    }
    port_ = opt_.port;
  }
  return {};
}

void Server::run() { http_->listen_after_bind(); }

void Server::wait_until_running() const {
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Server::stop() {
  if (http_) http_->stop();
}

void Server::dump_body(const json& body, const std::string& id) {
  const std::string path = fmt::format("{}/{:06}-{}.json", opt_.dump_dir, dumped_.fetch_add(1) + 1, id);
  std::ofstream out(path, std::ios::binary);
  out << body.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
  if (!out) spdlog::warn("--dump-requests: cannot write {}", path);
}

// ---- routes ---------------------------------------------------------------------

// The generation routes differ only in their adapter.
struct ChatApi {
  const char* id_prefix;
  const char* tool_id_prefix;
  ApiResult<ChatRequest> (*parse)(const json& body);
  json (*response)(const std::string& id, const std::string& model, int64_t created, const ChatRequest& chat,
                   const Completion& c);
  std::unique_ptr<StreamWriter> (*writer)(const std::string& id, const std::string& model, int64_t created,
                                          const ChatRequest& chat);
};

namespace {

const ChatApi kMessages{
    "msg_", "toolu_", [](const json& b) { return anthropic::parse_request(b, /*count_only=*/false); },
    [](const std::string& id, const std::string& model, int64_t, const ChatRequest&, const Completion& c) {
      return anthropic::message(id, model, c);
    },
    [](const std::string& id, const std::string& model, int64_t, const ChatRequest&) -> std::unique_ptr<StreamWriter> {
      return std::make_unique<anthropic::EventWriter>(id, model);
    }};
const ChatApi kChatCompletions{"chatcmpl-", "call_", openai::parse_chat_request,
                               [](const std::string& id, const std::string& model, int64_t created, const ChatRequest&,
                                  const Completion& c) { return openai::chat_completion(id, model, created, c); },
                               [](const std::string& id, const std::string& model, int64_t created,
                                  const ChatRequest& chat) -> std::unique_ptr<StreamWriter> {
                                 return std::make_unique<openai::ChunkWriter>(id, model, created, /*chat=*/true,
                                                                              chat.stream_include_usage);
                               }};
const ChatApi kCompletions{"cmpl-", "call_", openai::parse_completion_request,
                           [](const std::string& id, const std::string& model, int64_t created, const ChatRequest&,
                              const Completion& c) { return openai::text_completion(id, model, created, c); },
                           [](const std::string& id, const std::string& model, int64_t created,
                              const ChatRequest& chat) -> std::unique_ptr<StreamWriter> {
                             return std::make_unique<openai::ChunkWriter>(id, model, created, /*chat=*/false,
                                                                          chat.stream_include_usage);
                           }};
const ChatApi kResponses{"resp_", "call_", responses::parse_request, responses::response,
                         [](const std::string& id, const std::string& model, int64_t created,
                            const ChatRequest& chat) -> std::unique_ptr<StreamWriter> {
                           return std::make_unique<responses::EventWriter>(id, model, created, chat.tool_namespaces);
                         }};

// The body as JSON, or the 400 written.
std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res) {
  try {
    return json::parse(req.body);
  } catch (const json::parse_error& e) {
    send_error(req, res, {ErrorKind::kInvalidRequest, fmt::format("the body is not valid JSON: {}", e.what())});
    return std::nullopt;
  }
}

// One object both SDKs read: Anthropic's fields and OpenAI's.
json model_entry(const std::string& id) {
  return json{
      {"id", id},          {"type", "model"},       {"display_name", id},  {"created_at", "2026-01-01T00:00:00Z"},
      {"object", "model"}, {"created", 1767225600}, {"owned_by", "tandem"}};
}

}  // namespace

void Server::install_routes() {
  auto& http = *http_;
  const int threads = opt_.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(opt_.max_body_bytes);
  http.set_read_timeout(60);
  http.set_write_timeout(600);
  http.set_keep_alive_timeout(5);  // idle keep-alive connections hold a worker thread (and delay shutdown)
  http.set_pre_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    t_current = {};
    t_current.start = std::chrono::steady_clock::now();
    if (!opt_.node_id.empty()) res.set_header("x-tandem-node", opt_.node_id);
    return httplib::Server::HandlerResponse::Unhandled;
  });

  using Handler = void (Server::*)(const httplib::Request&, httplib::Response&);
  auto route = [this](Handler h) {
    return [this, h](const httplib::Request& req, httplib::Response& res) { (this->*h)(req, res); };
  };
  auto chat = [this](const ChatApi& api) {
    return [this, &api](const httplib::Request& req, httplib::Response& res) { handle_chat(api, req, res); };
  };
  http.Post("/v1/messages", chat(kMessages));
  http.Post("/v1/chat/completions", chat(kChatCompletions));
  http.Post("/v1/completions", chat(kCompletions));
  http.Post("/v1/responses", chat(kResponses));
  http.Post("/v1/messages/count_tokens", route(&Server::handle_count_tokens));
  http.Post("/v1/render", route(&Server::handle_render));
  http.Get("/v1/models", route(&Server::handle_models));
  http.Get(R"(/v1/models/(.+))", route(&Server::handle_model));
  http.Get("/health", route(&Server::handle_health));
  http.Get("/metrics", route(&Server::handle_metrics));
  http.Get("/.well-known/agent-card.json", route(&Server::handle_a2a_card));
  http.Get(R"(/a2a/([A-Za-z0-9_.-]+)/\.well-known/agent-card\.json)", route(&Server::handle_a2a_card));
  http.Post("/a2a", route(&Server::handle_a2a));
  http.Post(R"(/a2a/([A-Za-z0-9_.-]+))", route(&Server::handle_a2a));
  install_admin_routes(http, service_.engine(), {opt_.admin_key, !opt_.api_keys.empty()});
  install_error_handlers();
}

// Authentication, priority and session come from headers. Writes the error
// and returns nothing when the request may not go on.
std::optional<Server::Caller> Server::authorize(const httplib::Request& req, httplib::Response& res) {
  Caller c;
  engine::Priority tier = engine::Priority::kHigh;  // no keys: every local client is trusted alike
  if (!opt_.api_keys.empty()) {
    const std::string key = request_api_key(req);
    auto it = std::find_if(opt_.api_keys.begin(), opt_.api_keys.end(), [&](const ApiKey& k) { return k.key == key; });
    if (it == opt_.api_keys.end()) {
      send_error(req, res,
                 {ErrorKind::kAuthentication,
                  key.empty() ? "missing API key (x-api-key or Authorization: Bearer)" : "invalid API key"});
      return std::nullopt;
    }
    tier = it->tier;
    c.priority = std::min(engine::Priority::kNormal, tier);
    t_current.record.key = fmt::format("key{}:{}", it - opt_.api_keys.begin() + 1, priority_name(tier));
    if (opt_.cache_scope == CacheScope::kKey) c.key_namespace = key_namespace(key);
  }
  if (req.has_header("x-priority")) {
    auto p = parse_priority(req.get_header_value("x-priority"));
    if (!p) {
      send_error(req, res, {ErrorKind::kInvalidRequest, "x-priority: expected high, normal or low"});
      return std::nullopt;
    }
    c.priority = std::min(*p, tier);  // may lower; may raise only up to the key's tier
  }
  for (const char* h : {"x-claude-code-session-id", "x-session-id", "session-id"}) {  // session-id: Codex CLI
    if (req.has_header(h)) {
      c.session = req.get_header_value(h);
      break;
    }
  }
  return c;
}

bool Server::check_model(const httplib::Request& req, httplib::Response& res, const std::string& model) {
  if (opt_.model_aliases.empty() || model == service_.options().model_name ||
      std::find(opt_.model_aliases.begin(), opt_.model_aliases.end(), model) != opt_.model_aliases.end()) {
    return true;
  }
  send_error(
      req, res,
      {ErrorKind::kNotFound,
       fmt::format("model '{}' not found; this server serves '{}'", model, service_.options().model_name), "model"});
  return false;
}

std::vector<std::string> Server::model_ids() const {
  std::vector<std::string> ids{service_.options().model_name};
  for (const auto& a : opt_.model_aliases) {
    if (a != ids.front()) ids.push_back(a);
  }
  return ids;
}

void Server::handle_chat(const ChatApi& api, const httplib::Request& req, httplib::Response& res) {
  auto caller = authorize(req, res);
  if (!caller) return;
  if (shutting_down_.load()) {
    return send_error(req, res, {ErrorKind::kOverloaded, "tandem is shutting down; try another server or retry later"});
  }
  auto body = parse_body(req, res);
  if (!body) return;
  auto parsed = api.parse(*body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(req, res, *e);
  ChatRequest& chat = std::get<ChatRequest>(parsed);
  if (!check_model(req, res, chat.model)) return;
  // The caller's priority and session (headers win over the body's user id).
  chat.priority = caller->priority;
  if (!caller->session.empty()) chat.session = caller->session;
  t_current.record.session = short_session(chat.session);
  // Blocks and sessions are shared only within the key's and salt's namespace.
  chat.cache_namespace = request_namespace(caller->key_namespace, chat.cache_salt);
  chat.session = scoped_session(chat.cache_namespace, chat.session);
  t_current.record.stream = chat.stream;
  auto prepared = service_.prepare(chat, api.tool_id_prefix);
  if (auto* e = std::get_if<ApiError>(&prepared)) return send_error(req, res, *e);
  const std::string id = random_id(api.id_prefix);
  t_current.record.id = id;
  if (!opt_.dump_dir.empty()) dump_body(*body, id);
  const int64_t created = unix_now();
  if (!chat.stream) {
    auto done = service_.run(std::move(std::get<Prepared>(prepared)));
    if (auto* e = std::get_if<ApiError>(&done)) return send_error(req, res, *e);
    const Completion& c = std::get<Completion>(done);
    metrics_.count_usage(c.usage);
    note_completion(c);
    if (engine::failed(c.stop)) return send_error(req, res, completion_error(c));
    return send_json(res, 200, api.response(id, chat.model, created, chat, c));
  }
  // Refuse before the 200 goes out; Service::run() checks again.
  if (service_.in_flight() >= service_.options().max_queue) {
    return send_error(req, res, {ErrorKind::kOverloaded, "tandem is overloaded: too many requests queued"});
  }
  auto p = std::make_shared<Prepared>(std::move(std::get<Prepared>(prepared)));
  std::shared_ptr<StreamWriter> w = api.writer(id, chat.model, created, chat);
  stream_response(res, [this, p, w](httplib::DataSink& sink) {
    bool ok = true;
    auto put = [&](const std::string& s) { return ok = ok && (s.empty() || sink.write(s.data(), s.size())); };
    put(w->start(static_cast<int64_t>(p->request.prompt.size())));
    StreamCallbacks cb;
    cb.on_events = [&](const std::vector<chat::OutputEvent>& ev) { return put(w->write(ev)); };
    cb.on_idle = [&] { return put(w->keep_alive()); };
    auto done = service_.run(std::move(*p), &cb);
    if (auto* e = std::get_if<ApiError>(&done)) {
      t_current.record.error = e->message;
      put(w->error(*e));
      return;
    }
    metrics_.count_usage(std::get<Completion>(done).usage);
    note_completion(std::get<Completion>(done));
    put(w->finish(std::get<Completion>(done)));
  });
}

void Server::handle_count_tokens(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  auto body = parse_body(req, res);
  if (!body) return;
  auto chat = anthropic::parse_request(*body, /*count_only=*/true);
  if (auto* e = std::get_if<ApiError>(&chat)) return send_error(req, res, *e);
  auto n = service_.count_tokens(std::get<ChatRequest>(chat));
  if (auto* e = std::get_if<ApiError>(&n)) return send_error(req, res, *e);
  send_json(res, 200, {{"input_tokens", std::get<int64_t>(n)}});
}

// The prompt a body becomes (what the model would be given), not run.
void Server::handle_render(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  if (req.has_param("api") && !parse_body_api(req.get_param_value("api"))) {
    return send_error(req, res,
                      {ErrorKind::kInvalidRequest, "api: expected anthropic, openai, completions or responses", "api"});
  }
  auto body = parse_body(req, res);
  if (!body) return;
  const BodyApi api = render_api(req, *body);
  auto rendered = render_body(service_.prompts(), api, *body);
  if (auto* e = std::get_if<ApiError>(&rendered)) return send_error(req, res, *e);
  const RenderedPrompt& r = std::get<RenderedPrompt>(rendered);
  json out{{"api", body_api_name(api)}, {"prompt", r.text}, {"tokens", r.ids.size()}};
  const std::string ids = req.get_param_value("ids");
  if (ids == "true" || ids == "1") out["ids"] = r.ids;
  send_json(res, 200, out);
}

void Server::handle_models(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  json data = json::array();
  const auto ids = model_ids();
  for (const auto& id : ids) data.push_back(model_entry(id));
  send_json(
      res, 200,
      {{"object", "list"}, {"data", data}, {"has_more", false}, {"first_id", ids.front()}, {"last_id", ids.back()}});
}

void Server::handle_model(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  const std::string id = req.matches[1];
  const auto ids = model_ids();
  if (opt_.model_aliases.empty() || std::find(ids.begin(), ids.end(), id) != ids.end()) {
    return send_json(res, 200, model_entry(id));
  }
  send_error(req, res, {ErrorKind::kNotFound, fmt::format("model '{}' not found", id)});
}

void Server::handle_health(const httplib::Request&, httplib::Response& res) {
  send_json(res, shutting_down_.load() ? 503 : 200,
            {{"status", shutting_down_.load() ? "shutting_down" : "ok"}, {"model", service_.options().model_name}});
}

void Server::handle_metrics(const httplib::Request& req, httplib::Response& res) {
  if (!authorize(req, res)) return;
  std::string text = metrics_.render(service_.engine_metrics(), service_.in_flight());
  if (!opt_.node_id.empty()) text = ServerMetrics::with_label(text, "node", opt_.node_id);
  res.set_content(text, "text/plain; version=0.0.4");
}

// Errors outside the routes in each protocol's envelope, exceptions as 500s,
// and the request log line.
void Server::install_error_handlers() {
  auto& http = *http_;
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route already wrote its error
    ApiError e{ErrorKind::kNotFound, fmt::format("no route for {} {}", req.method, req.path)};
    if (res.status == 413) e = {ErrorKind::kTooLarge, "the request body is too large"};
    else if (res.status == 400) e = {ErrorKind::kInvalidRequest, "malformed HTTP request"};
    else if (res.status == 405)
      e = {ErrorKind::kNotFound, fmt::format("method {} is not allowed on {}", req.method, req.path)};
    else if (res.status >= 500) e = {ErrorKind::kInternal, "internal error"};
    const int status = res.status;
    send_error(req, res, e);
    if (status == 413 || status == 400) res.status = status;
  });
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {}
    spdlog::error("{} {}: {}", req.method, req.path, what);
    send_error(req, res, {ErrorKind::kInternal, "internal error: " + what});
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_request(route_label(req), res.status);
    RequestRecord& r = t_current.record;
    r.method = req.method;
    r.path = req.path;
    r.status = res.status;
    r.node = opt_.node_id;
    r.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_current.start).count();
    log_request(r);
    t_current = {};  // a request that never reaches routing (malformed) must not log this one's fields
    t_current.start = std::chrono::steady_clock::now();
  });
}

}  // namespace tandem::server
