// The A2A (Agent2Agent) protocol's JSON shapes, as the @a2a-js/sdk 1.3
// client speaks them by default (protocol 1.0 over JSON-RPC), and the 0.3
// shapes its compatibility layer sends (message/send, kind fields,
// lowercase states). Pure functions: no tasks, no model, no HTTP; the
// runtime is server/a2a.h.
#pragma once

#include "server/api.h"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tandem::server::a2a {

// Protocol 1.0 (SendMessage, ROLE_USER, TASK_STATE_COMPLETED, {task: ...})
// or 0.3 (message/send, "user", "completed", {kind: "task", ...}).
enum class Dialect { kV1, kV03 };

enum class Method { kSend, kStream, kGetTask, kCancelTask, kListTasks, kSubscribe, kUnsupported };

// A JSON-RPC method name; nullopt for a name no version of the protocol has.
std::optional<std::pair<Method, Dialect>> parse_method(const std::string& name);

enum class TaskState { kSubmitted, kWorking, kCompleted, kFailed, kCanceled, kRejected };
bool terminal(TaskState s);
std::string state_name(TaskState s, Dialect d);
// "TASK_STATE_COMPLETED", "completed" (either dialect) -> state; nullopt otherwise.
std::optional<TaskState> parse_state(const std::string& name);

// The protocol's JSON-RPC errors (the codes the SDK maps to typed errors).
struct RpcError {
  int code = -32603;
  std::string message;
};
inline constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601, kInvalidParams = -32602,
                     kInternalError = -32603, kTaskNotFound = -32001, kTaskNotCancelable = -32002,
                     kUnsupportedOperation = -32004, kContentTypeNotSupported = -32005;

json rpc_result(const json& id, json result);
json rpc_error(const json& id, const RpcError& e);

// A user message from SendMessage params: its text (text parts joined,
// data parts as JSON), ids and the agent it names in metadata ("agent").
struct UserMessage {
  std::string message_id, context_id, task_id, text, agent;
};
std::variant<UserMessage, RpcError> parse_send_params(const json& params);

// Everything a task's JSON is made of.
struct TaskView {
  std::string id, context_id, agent;
  TaskState state = TaskState::kSubmitted;
  std::string timestamp;  // ISO 8601 of the last state change
  UserMessage user;
  std::string reply;        // the agent's text so far
  std::string error;        // why it failed
  std::string artifact_id;  // "" until the first output
  // The request's token counts once it ended (metadata.usage): honest
  // cache accounting, as every tandem API reports it.
  int64_t prompt_tokens = 0, cached_tokens = 0, generated_tokens = 0;
};

// A Task object (bare: GetTask, CancelTask, ListTasks; SendMessage wraps it).
// HISTORY_LENGTH < 0: the whole history (the user message and the reply).
json task_json(const TaskView& t, Dialect d, int history_length = -1);
// SendMessage's result and a stream's first event: {task} (1.0) or the task with kind (0.3).
json task_result(const TaskView& t, Dialect d);
// A stream's status-update event (FINAL: the last one, 0.3 says so).
json status_update(const TaskView& t, Dialect d, bool final);
// A stream's artifact-update event: CHUNK appended (APPEND) to the answer artifact.
json artifact_update(const TaskView& t, Dialect d, const std::string& chunk, bool append, bool last_chunk);

// One agent tandem serves: a system prompt over the loaded model.
struct Agent {
  std::string name, description, system_prompt;
};

// The agent card: BASE_URL is http://host:port; AGENTS.front() answers at
// /a2a and every agent at /a2a/NAME. ONLY (when set) describes one agent
// alone (its card at /a2a/NAME/.well-known/agent-card.json).
json agent_card(const std::vector<Agent>& agents, const std::string& base_url, const std::string& model_name,
                const Agent* only = nullptr);

std::string iso_time_now();

}  // namespace tandem::server::a2a
