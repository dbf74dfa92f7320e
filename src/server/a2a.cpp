#include "server/a2a.h"

#include "server/cache_scope.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <thread>

namespace tandem::server {
namespace {

using a2a::Dialect;
using a2a::RpcError;
using a2a::TaskState;
using a2a::TaskView;

std::string new_uuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     0x8000 | (b >> 48 & 0x3fff), b & 0xffffffffffffull);
}

std::string context_key(uint64_t ns, const std::string& context_id) {
  return fmt::format("{:016x}:{}", ns, context_id);
}

json request_id(const json& request) {
  if (request.is_object() && request.contains("id")) return request["id"];
  return nullptr;
}

// The parsed method of REQUEST, or the JSON-RPC error for a malformed call.
std::variant<std::pair<a2a::Method, Dialect>, RpcError> method_of(const json& request) {
  if (!request.is_object() || request.value("jsonrpc", json()) != "2.0" || !request.contains("method") ||
      !request["method"].is_string()) {
    return RpcError{a2a::kInvalidRequest, "expected a JSON-RPC 2.0 request with a method"};
  }
  if (request.contains("id") && !request["id"].is_string() && !request["id"].is_number() && !request["id"].is_null()) {
    return RpcError{a2a::kInvalidRequest, "id: expected a string, a number or null"};
  }
  const std::string name = request["method"];
  auto m = a2a::parse_method(name);
  if (!m) return RpcError{a2a::kMethodNotFound, fmt::format("method not found: {}", name)};
  return *m;
}

const json& params_of(const json& request) {
  static const json kEmpty = json::object();
  auto it = request.find("params");
  return it == request.end() ? kEmpty : *it;
}

std::string sse(const json& event) {
  return "data: " + event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace

A2aRuntime::A2aRuntime(Service& service, std::vector<a2a::Agent> agents)
    : service_(service), agents_(std::move(agents)) {}

A2aRuntime::~A2aRuntime() {
  std::unique_lock lock(mu_);
  for (auto& [id, t] : tasks_) t.cancel->store(true);
  changed_.wait(lock, [&] { return background_ == 0; });
}

const a2a::Agent* A2aRuntime::find_agent(const std::string& name) const {
  for (const auto& a : agents_) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

bool A2aRuntime::is_streaming(const json& request) {
  auto m = method_of(request);
  auto* ok = std::get_if<std::pair<a2a::Method, Dialect>>(&m);
  return ok && (ok->first == a2a::Method::kStream || ok->first == a2a::Method::kSubscribe);
}

std::variant<TaskView, RpcError> A2aRuntime::create_task(const json& params, const a2a::Agent* agent,
                                                         const A2aCaller& caller) {
  auto parsed = a2a::parse_send_params(params);
  if (auto* e = std::get_if<RpcError>(&parsed)) return *e;
  a2a::UserMessage& user = std::get<a2a::UserMessage>(parsed);
  if (!user.agent.empty()) {
    const a2a::Agent* named = find_agent(user.agent);
    if (!named) return RpcError{a2a::kInvalidParams, fmt::format("metadata.agent: no agent named '{}'", user.agent)};
    if (agent && agent != named) {
      return RpcError{a2a::kInvalidParams,
                      fmt::format("metadata.agent '{}' differs from the route's agent '{}'", user.agent, agent->name)};
    }
    agent = named;
  }
  if (!agent) agent = &agents_.front();
  std::lock_guard lock(mu_);
  if (!user.task_id.empty()) {
    auto it = tasks_.find(user.task_id);
    if (it == tasks_.end() || it->second.ns != caller.cache_namespace) {
      return RpcError{a2a::kTaskNotFound, fmt::format("task not found: {}", user.task_id)};
    }
    return RpcError{a2a::kUnsupportedOperation,
                    fmt::format("task {} is in a terminal state or running: send a new message in its context instead",
                                user.task_id)};
  }
  if (user.context_id.empty()) user.context_id = new_uuid();
  Context& ctx = contexts_[context_key(caller.cache_namespace, user.context_id)];
  if (ctx.agent.empty()) ctx.agent = agent->name;
  if (ctx.agent != agent->name) {
    return RpcError{a2a::kInvalidParams,
                    fmt::format("context {} belongs to agent '{}', not '{}'", user.context_id, ctx.agent, agent->name)};
  }
  ctx.last_used = ++counter_;
  Task t;
  t.ns = caller.cache_namespace;
  t.order = counter_;
  t.view.id = new_uuid();
  t.view.context_id = user.context_id;
  t.view.agent = agent->name;
  t.view.state = TaskState::kSubmitted;
  t.view.timestamp = a2a::iso_time_now();
  t.view.user = std::move(user);
  TaskView view = t.view;
  tasks_.emplace(view.id, std::move(t));
  trim();
  return view;
}

void A2aRuntime::trim() {
  while (tasks_.size() > kMaxTasks) {
    auto oldest = tasks_.end();
    for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
      const Task& t = it->second;
      if (a2a::terminal(t.view.state) && !t.running && (oldest == tasks_.end() || t.order < oldest->second.order)) {
        oldest = it;
      }
    }
    if (oldest == tasks_.end()) break;  // all running: kept until they end
    tasks_.erase(oldest);
  }
  while (contexts_.size() > kMaxContexts) {
    auto oldest = std::min_element(contexts_.begin(), contexts_.end(), [](const auto& a, const auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    contexts_.erase(oldest);
  }
}

void A2aRuntime::set_state(const std::string& id, TaskState s, const std::string& error) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  it->second.view.state = s;
  it->second.view.error = error;
  it->second.view.timestamp = a2a::iso_time_now();
  changed_.notify_all();
}

TaskView A2aRuntime::run(const std::string& id, const A2aCaller& caller, const OnDelta& on_delta,
                         const std::function<bool()>& on_idle) {
  ChatRequest chat;
  std::shared_ptr<std::atomic<bool>> cancel;
  TaskView view;
  {
    std::lock_guard lock(mu_);
    Task& t = tasks_.at(id);
    t.running = true;
    cancel = t.cancel;
    view = t.view;
    const a2a::Agent* agent = find_agent(view.agent);
    if (agent && !agent->system_prompt.empty()) {
      chat.messages.push_back({{"role", "system"}, {"content", agent->system_prompt}});
    }
    auto ctx = contexts_.find(context_key(caller.cache_namespace, view.context_id));
    if (ctx != contexts_.end()) {
      for (const auto& [user, reply] : ctx->second.turns) {
        chat.messages.push_back({{"role", "user"}, {"content", user}});
        chat.messages.push_back({{"role", "assistant"}, {"content", reply}});
      }
    }
    chat.messages.push_back({{"role", "user"}, {"content", view.user.text}});
  }
  struct Done {  // the task may be trimmed again once run() returns
    A2aRuntime& rt;
    const std::string& id;
    ~Done() {
      std::lock_guard lock(rt.mu_);
      if (auto it = rt.tasks_.find(id); it != rt.tasks_.end()) it->second.running = false;
    }
  } done_guard{*this, id};
  if (cancel->load()) {  // cancelled before it started
    set_state(id, TaskState::kCanceled);
    std::lock_guard lock(mu_);
    return tasks_.at(id).view;
  }
  chat.model = service_.options().model_name;
  chat.priority = caller.priority;
  chat.cache_namespace = caller.cache_namespace;
  chat.session = scoped_session(caller.cache_namespace, "a2a:" + view.agent + ":" + view.context_id);
  auto prepared = service_.prepare(chat, "call_");
  if (auto* e = std::get_if<ApiError>(&prepared)) {
    set_state(id, TaskState::kRejected, e->message);
    std::lock_guard lock(mu_);
    return tasks_.at(id).view;
  }
  set_state(id, TaskState::kWorking);
  StreamCallbacks cb;
  cb.should_stop = [&] { return cancel->load(); };
  // A client gone from the stream cancels the task.
  cb.on_idle = [&] { return (on_idle ? on_idle() : true) || (cancel->store(true), false); };
  cb.on_events = [&](const std::vector<chat::OutputEvent>& events) {
    std::string delta;
    for (const auto& e : events) {
      if (e.kind == chat::OutputEvent::kText) delta += e.text;
    }
    if (delta.empty()) return true;
    TaskView snapshot;
    {
      std::lock_guard lock(mu_);
      TaskView& v = tasks_.at(id).view;
      if (v.artifact_id.empty()) v.artifact_id = v.id + "-answer";
      v.reply += delta;
      snapshot = v;
    }
    return (on_delta ? on_delta(snapshot, delta) : true) || (cancel->store(true), false);
  };
  auto done = service_.run(std::move(std::get<Prepared>(prepared)), &cb);
  std::lock_guard lock(mu_);
  Task& t = tasks_.at(id);
  if (auto* e = std::get_if<ApiError>(&done)) {
    t.view.state = TaskState::kFailed;
    t.view.error = e->message;
  } else if (cancel->load()) {
    t.view.state = TaskState::kCanceled;
    t.view.reply = std::get<Completion>(done).text;
  } else if (const Completion& c = std::get<Completion>(done); engine::failed(c.stop)) {
    t.view.state = TaskState::kFailed;
    t.view.error = c.error;
  } else {
    t.view.state = TaskState::kCompleted;
    t.view.reply = c.text;
    if (t.view.artifact_id.empty()) t.view.artifact_id = t.view.id + "-answer";
    auto ctx = contexts_.find(context_key(caller.cache_namespace, t.view.context_id));
    if (ctx != contexts_.end()) ctx->second.turns.emplace_back(t.view.user.text, c.text);
  }
  if (const auto* c = std::get_if<Completion>(&done)) {
    t.view.prompt_tokens = c->usage.prompt_tokens;
    t.view.cached_tokens = c->usage.cached_tokens;
    t.view.generated_tokens = c->usage.generated_tokens;
  }
  t.view.timestamp = a2a::iso_time_now();
  changed_.notify_all();
  return t.view;
}

void A2aRuntime::run_in_background(const std::string& id, const A2aCaller& caller) {
  {
    std::lock_guard lock(mu_);
    ++background_;
  }
  std::thread([this, id, caller] {
    run(id, caller, nullptr, nullptr);
    std::lock_guard lock(mu_);
    --background_;
    changed_.notify_all();
  }).detach();
}

std::string A2aRuntime::task_id_of(const json& params) {
  if (!params.is_object() || !params.contains("id") || !params["id"].is_string()) {
    throw RpcError{a2a::kInvalidParams, "params.id: expected a task id"};
  }
  return params["id"];
}

A2aRuntime::Task& A2aRuntime::task_of(const std::string& id, const A2aCaller& caller) {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || it->second.ns != caller.cache_namespace) {  // another key's tasks do not exist
    throw RpcError{a2a::kTaskNotFound, fmt::format("task not found: {}", id)};
  }
  return it->second;
}

json A2aRuntime::get_task(const json& params, Dialect d, const A2aCaller& caller) {
  const std::string id = task_id_of(params);
  int history = -1;
  if (params.contains("historyLength") && !params["historyLength"].is_null()) {
    if (!params["historyLength"].is_number_integer() || params["historyLength"].get<int64_t>() < 0) {
      throw RpcError{a2a::kInvalidParams, "params.historyLength: expected a count >= 0"};
    }
    history = static_cast<int>(std::min<int64_t>(params["historyLength"].get<int64_t>(), 1 << 20));
  }
  std::lock_guard lock(mu_);
  return a2a::task_json(task_of(id, caller).view, d, history);
}

json A2aRuntime::cancel_task(const json& params, Dialect d, const A2aCaller& caller) {
  const std::string id = task_id_of(params);
  std::unique_lock lock(mu_);
  Task& t = task_of(id, caller);
  if (a2a::terminal(t.view.state)) {
    throw RpcError{a2a::kTaskNotCancelable,
                   fmt::format("task {} is already {}", id, a2a::state_name(t.view.state, Dialect::kV03))};
  }
  t.cancel->store(true);
  // The run notices within 250 ms (Service polls should_stop); wait for it
  // so the answer says canceled. Looked up again each time: once terminal,
  // another request's trim() may have removed it while the lock was free.
  const bool ended = changed_.wait_for(lock, std::chrono::seconds(10), [&] {
    auto it = tasks_.find(id);
    return it == tasks_.end() || a2a::terminal(it->second.view.state);
  });
  Task& now = task_of(id, caller);
  if (!ended) now.view.state = TaskState::kCanceled;
  return a2a::task_json(now.view, d);
}

json A2aRuntime::list_tasks(const json& params, Dialect d, const A2aCaller& caller) {
  std::string context;
  std::optional<TaskState> state;
  size_t page = 50;
  if (params.is_object()) {
    if (params.contains("contextId") && params["contextId"].is_string()) context = params["contextId"];
    // An unknown status (the SDK sends "UNRECOGNIZED" when none is chosen) filters nothing.
    if (params.contains("status") && params["status"].is_string()) state = a2a::parse_state(params["status"]);
    if (params.contains("pageSize") && params["pageSize"].is_number_integer()) {
      page = static_cast<size_t>(std::clamp<int64_t>(params["pageSize"].get<int64_t>(), 1, 100));
    }
  }
  std::lock_guard lock(mu_);
  std::vector<const Task*> found;
  for (const auto& [id, t] : tasks_) {
    if (t.ns != caller.cache_namespace || (!context.empty() && t.view.context_id != context)) continue;
    if (state && t.view.state != *state) continue;
    found.push_back(&t);
  }
  std::sort(found.begin(), found.end(), [](const Task* a, const Task* b) { return a->order > b->order; });
  json tasks = json::array();
  for (size_t i = 0; i < found.size() && i < page; ++i) tasks.push_back(a2a::task_json(found[i]->view, d));
  return {{"tasks", std::move(tasks)}, {"nextPageToken", ""}, {"pageSize", page}, {"totalSize", found.size()}};
}

json A2aRuntime::call(const json& request, const a2a::Agent* agent, const A2aCaller& caller) {
  const json id = request_id(request);
  auto m = method_of(request);
  if (auto* e = std::get_if<RpcError>(&m)) return a2a::rpc_error(id, *e);
  const auto [method, dialect] = std::get<std::pair<a2a::Method, Dialect>>(m);
  const json& params = params_of(request);
  try {
    switch (method) {
      case a2a::Method::kSend: {
        auto created = create_task(params, agent, caller);
        if (auto* e = std::get_if<RpcError>(&created)) return a2a::rpc_error(id, *e);
        const TaskView& t = std::get<TaskView>(created);
        const json* cfg = params.contains("configuration") ? &params["configuration"] : nullptr;
        auto flag = [&](const char* name) -> std::optional<bool> {
          if (!cfg || !cfg->is_object() || !cfg->contains(name) || !(*cfg)[name].is_boolean()) return std::nullopt;
          return (*cfg)[name].get<bool>();
        };
        const bool later = flag("returnImmediately") == true || flag("blocking") == false;
        if (later) {
          run_in_background(t.id, caller);
          return a2a::rpc_result(id, a2a::task_result(t, dialect));
        }
        return a2a::rpc_result(id, a2a::task_result(run(t.id, caller, nullptr, nullptr), dialect));
      }
      case a2a::Method::kGetTask: return a2a::rpc_result(id, get_task(params, dialect, caller));
      case a2a::Method::kCancelTask: return a2a::rpc_result(id, cancel_task(params, dialect, caller));
      case a2a::Method::kListTasks: return a2a::rpc_result(id, list_tasks(params, dialect, caller));
      case a2a::Method::kStream:
      case a2a::Method::kSubscribe:
        return a2a::rpc_error(id, {a2a::kInvalidRequest, "a streaming method needs Accept: text/event-stream"});
      case a2a::Method::kUnsupported: break;
    }
  } catch (const RpcError& e) {
    return a2a::rpc_error(id, e);
  }
  return a2a::rpc_error(id, {a2a::kUnsupportedOperation,
                             fmt::format("{} is not supported by tandem (no push notifications, no extended card)",
                                         request["method"].get<std::string>())});
}

std::optional<json> A2aRuntime::stream(const json& request, const a2a::Agent* agent, const A2aCaller& caller,
                                       const std::function<bool(const std::string&)>& write) {
  const json id = request_id(request);
  auto m = method_of(request);
  if (auto* e = std::get_if<RpcError>(&m)) return a2a::rpc_error(id, *e);
  const auto [method, dialect] = std::get<std::pair<a2a::Method, Dialect>>(m);
  if (method == a2a::Method::kSubscribe) {
    return a2a::rpc_error(id, {a2a::kUnsupportedOperation,
                               "resubscribing is not supported: GetTask polls a task started with returnImmediately"});
  }
  auto created = create_task(params_of(request), agent, caller);
  if (auto* e = std::get_if<RpcError>(&created)) return a2a::rpc_error(id, *e);
  TaskView t = std::get<TaskView>(created);
  // The protocol's order: the task, working, the answer's chunks, the final status.
  bool ok = write(sse(a2a::rpc_result(id, a2a::task_result(t, dialect))));
  bool first_chunk = true, working_sent = false;
  auto send_working = [&](const TaskView& v) {
    if (working_sent) return;
    working_sent = true;
    TaskView w = v;
    w.state = TaskState::kWorking;
    ok = ok && write(sse(a2a::rpc_result(id, a2a::status_update(w, dialect, false))));
  };
  auto on_delta = [&](const TaskView& v, const std::string& delta) {
    send_working(v);
    ok = ok && write(sse(a2a::rpc_result(id, a2a::artifact_update(v, dialect, delta, !first_chunk, false))));
    first_chunk = false;
    return ok;
  };
  auto on_idle = [&] { return ok = ok && write(": keep-alive\n\n"); };
  TaskView done = run(t.id, caller, on_delta, on_idle);
  send_working(done);
  if (done.state == TaskState::kCompleted) {
    if (done.artifact_id.empty()) done.artifact_id = done.id + "-answer";
    ok = ok && write(sse(a2a::rpc_result(id, a2a::artifact_update(done, dialect, "", !first_chunk, true))));
  }
  if (ok) write(sse(a2a::rpc_result(id, a2a::status_update(done, dialect, true))));
  return std::nullopt;
}

}  // namespace tandem::server
