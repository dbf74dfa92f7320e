#include "server/a2a_protocol.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>

namespace tandem::server::a2a {

std::optional<std::pair<Method, Dialect>> parse_method(const std::string& name) {
  static const std::pair<const char*, std::pair<Method, Dialect>> kMethods[] = {
      {"SendMessage", {Method::kSend, Dialect::kV1}},
      {"SendStreamingMessage", {Method::kStream, Dialect::kV1}},
      {"GetTask", {Method::kGetTask, Dialect::kV1}},
      {"CancelTask", {Method::kCancelTask, Dialect::kV1}},
      {"ListTasks", {Method::kListTasks, Dialect::kV1}},
      {"SubscribeToTask", {Method::kSubscribe, Dialect::kV1}},
      {"CreateTaskPushNotificationConfig", {Method::kUnsupported, Dialect::kV1}},
      {"GetTaskPushNotificationConfig", {Method::kUnsupported, Dialect::kV1}},
      {"ListTaskPushNotificationConfigs", {Method::kUnsupported, Dialect::kV1}},
      {"DeleteTaskPushNotificationConfig", {Method::kUnsupported, Dialect::kV1}},
      {"GetExtendedAgentCard", {Method::kUnsupported, Dialect::kV1}},
      {"message/send", {Method::kSend, Dialect::kV03}},
      {"message/stream", {Method::kStream, Dialect::kV03}},
      {"tasks/get", {Method::kGetTask, Dialect::kV03}},
      {"tasks/cancel", {Method::kCancelTask, Dialect::kV03}},
      {"tasks/resubscribe", {Method::kSubscribe, Dialect::kV03}},
      {"tasks/pushNotificationConfig/set", {Method::kUnsupported, Dialect::kV03}},
      {"tasks/pushNotificationConfig/get", {Method::kUnsupported, Dialect::kV03}},
      {"tasks/pushNotificationConfig/list", {Method::kUnsupported, Dialect::kV03}},
      {"tasks/pushNotificationConfig/delete", {Method::kUnsupported, Dialect::kV03}},
      {"agent/getAuthenticatedExtendedCard", {Method::kUnsupported, Dialect::kV03}},
  };
  for (const auto& [n, m] : kMethods) {
    if (name == n) return m;
  }
  return std::nullopt;
}

namespace {
struct StateNames {
  TaskState state;
  const char* v1;
  const char* v03;
};
constexpr StateNames kStates[] = {
    {TaskState::kSubmitted, "TASK_STATE_SUBMITTED", "submitted"},
    {TaskState::kWorking, "TASK_STATE_WORKING", "working"},
    {TaskState::kCompleted, "TASK_STATE_COMPLETED", "completed"},
    {TaskState::kFailed, "TASK_STATE_FAILED", "failed"},
    {TaskState::kCanceled, "TASK_STATE_CANCELED", "canceled"},
    {TaskState::kRejected, "TASK_STATE_REJECTED", "rejected"},
};
}  // namespace

bool terminal(TaskState s) { return s != TaskState::kSubmitted && s != TaskState::kWorking; }

std::string state_name(TaskState s, Dialect d) {
  for (const auto& n : kStates) {
    if (n.state == s) return d == Dialect::kV1 ? n.v1 : n.v03;
  }
  return "";
}

std::optional<TaskState> parse_state(const std::string& name) {
  for (const auto& n : kStates) {
    if (name == n.v1 || name == n.v03) return n.state;
  }
  return std::nullopt;
}

json rpc_result(const json& id, json result) { return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; }

json rpc_error(const json& id, const RpcError& e) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", e.code}, {"message", e.message}}}};
}

namespace {

std::optional<std::string> string_field(const json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The text of one part, either dialect: {text}, {kind: "text", text},
// {data} / {kind: "data", data} as JSON text. Files and URLs: an error.
std::variant<std::string, RpcError> part_text(const json& part, size_t i) {
  if (!part.is_object()) return RpcError{kInvalidParams, fmt::format("message.parts[{}]: expected an object", i)};
  if (auto t = part.find("text"); t != part.end()) {
    if (!t->is_string()) return RpcError{kInvalidParams, fmt::format("message.parts[{}].text: expected a string", i)};
    return t->get<std::string>();
  }
  if (auto d = part.find("data"); d != part.end()) return d->dump();
  if (part.contains("raw") || part.contains("url") || part.contains("file")) {
    return RpcError{kContentTypeNotSupported,
                    fmt::format("message.parts[{}]: this agent reads text only (text and data parts)", i)};
  }
  return RpcError{kInvalidParams, fmt::format("message.parts[{}]: expected a text or data part", i)};
}

}  // namespace

std::variant<UserMessage, RpcError> parse_send_params(const json& params) {
  if (!params.is_object()) return RpcError{kInvalidParams, "params: expected an object"};
  auto m = params.find("message");
  if (m == params.end() || !m->is_object())
    return RpcError{kInvalidParams, "params.message: expected a message object"};
  UserMessage u;
  auto id = string_field(*m, "messageId");
  auto ctx = string_field(*m, "contextId");
  auto task = string_field(*m, "taskId");
  auto role = string_field(*m, "role");
  if (!id || !ctx || !task || !role) {
    return RpcError{kInvalidParams, "message: messageId, contextId, taskId and role must be strings"};
  }
  if (id->empty()) return RpcError{kInvalidParams, "message.messageId is required"};
  if (*role != "ROLE_USER" && *role != "user") {
    return RpcError{kInvalidParams, fmt::format("message.role: expected ROLE_USER, got '{}'", *role)};
  }
  auto parts = m->find("parts");
  if (parts == m->end() || !parts->is_array() || parts->empty()) {
    return RpcError{kInvalidParams, "message.parts: expected a non-empty list"};
  }
  for (size_t i = 0; i < parts->size(); ++i) {
    auto t = part_text((*parts)[i], i);
    if (auto* e = std::get_if<RpcError>(&t)) return *e;
    if (!u.text.empty()) u.text += "\n";
    u.text += std::get<std::string>(t);
  }
  u.message_id = *id;
  u.context_id = *ctx;
  u.task_id = *task;
  for (const json* meta : {&params, &*m}) {
    auto md = meta->find("metadata");
    if (md != meta->end() && md->is_object() && md->contains("agent") && (*md)["agent"].is_string()) {
      u.agent = (*md)["agent"];
    }
  }
  if (auto cfg = params.find("configuration"); cfg != params.end() && cfg->is_object()) {
    if (auto modes = cfg->find("acceptedOutputModes"); modes != cfg->end() && modes->is_array() && !modes->empty()) {
      bool text = false;
      for (const auto& mode : *modes)
        text = text || (mode.is_string() && mode.get<std::string>().rfind("text/", 0) == 0);
      if (!text) return RpcError{kContentTypeNotSupported, "acceptedOutputModes: this agent answers in text/plain"};
    }
  }
  return u;
}

namespace {

json text_parts(const std::string& text, Dialect d) {
  json part = {{"text", text}};
  if (d == Dialect::kV03) part = {{"kind", "text"}, {"text", text}};
  return json::array({part});
}

json message_json(const std::string& id, const std::string& role, const std::string& text, const TaskView& t,
                  Dialect d) {
  json m;
  if (d == Dialect::kV03) m["kind"] = "message";
  m["messageId"] = id;
  m["contextId"] = t.context_id;
  m["taskId"] = t.id;
  m["role"] = d == Dialect::kV1 ? (role == "user" ? "ROLE_USER" : "ROLE_AGENT") : role;
  m["parts"] = text_parts(text, d);
  return m;
}

json status_json(const TaskView& t, Dialect d) {
  json s = {{"state", state_name(t.state, d)}, {"timestamp", t.timestamp}};
  if (t.state == TaskState::kCompleted) s["message"] = message_json(t.id + "-reply", "agent", t.reply, t, d);
  if (t.state == TaskState::kFailed) s["message"] = message_json(t.id + "-error", "agent", t.error, t, d);
  return s;
}

json artifact_json(const TaskView& t, const std::string& text, Dialect d) {
  return {{"artifactId", t.artifact_id}, {"name", "answer"}, {"parts", text_parts(text, d)}};
}

}  // namespace

json task_json(const TaskView& t, Dialect d, int history_length) {
  json task;
  if (d == Dialect::kV03) task["kind"] = "task";
  task["id"] = t.id;
  task["contextId"] = t.context_id;
  task["status"] = status_json(t, d);
  task["artifacts"] = json::array();
  if (!t.artifact_id.empty()) task["artifacts"].push_back(artifact_json(t, t.reply, d));
  json history = json::array({message_json(t.user.message_id, "user", t.user.text, t, d)});
  if (t.state == TaskState::kCompleted) history.push_back(message_json(t.id + "-reply", "agent", t.reply, t, d));
  if (history_length >= 0 && static_cast<size_t>(history_length) < history.size()) {
    history.erase(history.begin(), history.end() - history_length);
  }
  task["history"] = std::move(history);
  task["metadata"] = {{"agent", t.agent}};
  if (terminal(t.state)) {
    task["metadata"]["usage"] = {{"prompt_tokens", t.prompt_tokens},
                                 {"cached_tokens", t.cached_tokens},
                                 {"generated_tokens", t.generated_tokens}};
  }
  return task;
}

json task_result(const TaskView& t, Dialect d) {
  return d == Dialect::kV1 ? json{{"task", task_json(t, d)}} : task_json(t, d);
}

json status_update(const TaskView& t, Dialect d, bool final) {
  json u = {{"taskId", t.id}, {"contextId", t.context_id}, {"status", status_json(t, d)}};
  if (d == Dialect::kV1) return {{"statusUpdate", std::move(u)}};
  u["kind"] = "status-update";
  u["final"] = final;
  return u;
}

json artifact_update(const TaskView& t, Dialect d, const std::string& chunk, bool append, bool last_chunk) {
  json u = {{"taskId", t.id}, {"contextId", t.context_id}, {"artifact", artifact_json(t, chunk, d)}};
  if (append) u["append"] = true;
  if (last_chunk) u["lastChunk"] = true;
  if (d == Dialect::kV1) return {{"artifactUpdate", std::move(u)}};
  u["kind"] = "artifact-update";
  return u;
}

json agent_card(const std::vector<Agent>& agents, const std::string& base_url, const std::string& model_name,
                const Agent* only) {
  json skills = json::array();
  for (const Agent& a : agents) {
    if (only && only != &a) continue;
    skills.push_back({{"id", a.name},
                      {"name", a.name},
                      {"description", a.description},
                      {"tags", json::array({"tandem", model_name})},
                      {"inputModes", json::array({"text/plain", "application/json"})},
                      {"outputModes", json::array({"text/plain"})}});
  }
  const std::string url = only ? base_url + "/a2a/" + only->name : base_url + "/a2a";
  const std::string name = only ? only->name : "tandem";
  const std::string description =
      only ? only->description
           : fmt::format("Local agents on {} served by tandem; /a2a answers as '{}', /a2a/NAME as each skill.",
                         model_name, agents.empty() ? "" : agents.front().name);
  return {{"name", name},
          {"description", description},
          {"version", "1.0.0"},
          {"supportedInterfaces",
           json::array({{{"url", url}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "1.0"}}})},
          {"provider", {{"organization", "tandem"}, {"url", base_url}}},
          {"capabilities", {{"streaming", true}, {"pushNotifications", false}, {"extendedAgentCard", false}}},
          {"defaultInputModes", json::array({"text/plain", "application/json"})},
          {"defaultOutputModes", json::array({"text/plain"})},
          {"skills", std::move(skills)}};
}

std::string iso_time_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(now)), ms);
}

}  // namespace tandem::server::a2a
