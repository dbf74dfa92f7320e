// What both protocol adapters produce and consume: a chat request in the
// chat template's terms, API errors, and the result of a generation.
// The adapters (anthropic.h, openai.h) convert JSON to and from these; the
// service (service.h) turns a ChatRequest into engine work.
#pragma once

#include "chat/output_parser.h"
#include "engine/request.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tandem::server {

// Ordered: tool schemas keep the client's key order in the prompt, as the
// reference template renderers do.
using json = nlohmann::ordered_json;

// An error a client gets: its HTTP status and a kind each protocol names
// in its own words (Anthropic "invalid_request_error", OpenAI
// "invalid_request_error" / "authentication_error" ...).
enum class ErrorKind {
  kInvalidRequest,  // 400
  kAuthentication,  // 401
  kPermission,      // 403
  kNotFound,        // 404
  kConflict,        // 409
  kTooLarge,        // 413
  kRateLimit,       // 429
  kInternal,        // 500
  kOverloaded,      // 529 Anthropic, 503 OpenAI
};

struct ApiError {
  ErrorKind kind = ErrorKind::kInvalidRequest;
  std::string message;
  std::string param;  // OpenAI's "param" (the offending field), may be empty
};

int http_status(ErrorKind kind, bool anthropic);

// A value or the error a client gets.
template <typename T>
using ApiResult = std::variant<T, ApiError>;

// A conversation in the form chat templates expect (the Hugging Face
// convention): messages [{role, content: string, tool_calls?: [{id, type:
// "function", function: {name, arguments: object}}], tool_call_id?, name?,
// reasoning_content?}], tools [{type: "function", function: {name,
// description, parameters}}].
struct ChatRequest {
  std::string model;  // as the client named it
  json messages = json::array();
  json tools = json::array();
  // Responses API namespace tool groups: their tools are in TOOLS as
  // "NAMESPACE.NAME", and calls of them go back as name + namespace.
  std::vector<std::string> tool_namespaces;
  std::optional<bool> enable_thinking;          // the template's switch, when the client chose
  std::optional<std::string> reasoning_effort;  // "low" | "medium" | "high" (gpt-oss's template), when given
  std::optional<std::string> raw_prompt;        // /v1/completions: no template, the text as is
  engine::SamplingParams sampling;
  std::optional<int> max_tokens;  // none: as many as the context allows (capped)
  std::vector<std::string> stop;
  bool stream = false;
  bool stream_include_usage = false;  // OpenAI stream_options.include_usage
  bool ignore_eos = false;            // generate max_tokens whatever the model says (benchmarks)
  // Session: from a header or the body; requests of one session run in order.
  std::string session;
  engine::Priority priority = engine::Priority::kNormal;
  // Partitions the prefix cache further (OpenAI `cache_salt`, Anthropic
  // `metadata.cache_salt`); see server/cache_scope.h.
  std::string cache_salt;
  uint64_t cache_namespace = 0;  // set by the server from the key and the salt
};

// A finished generation, split into API content by the output parser.
struct ToolCall {
  std::string id, name, arguments;  // arguments: compact JSON text
};

struct Completion {
  std::string text;       // visible answer
  std::string reasoning;  // <think> content
  std::vector<ToolCall> tool_calls;
  engine::StopReason stop = engine::StopReason::kNone;
  std::string stop_string;
  engine::Usage usage;
  std::string error;  // engine error (stop kRefused or kError)
};

// The error a client gets for a completion that failed (engine::failed):
// a refusal (the session limit; the engine's own checks) is a 429 the
// client may retry, an internal failure a 500 with its message.
ApiError completion_error(const Completion& c);

// The streamed form of one response, as text to write on the wire: each
// protocol's events in its order.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual std::string start(int64_t prompt_tokens) = 0;
  virtual std::string write(const std::vector<chat::OutputEvent>& events) = 0;
  virtual std::string finish(const Completion& c) = 0;
  virtual std::string keep_alive() = 0;              // while nothing else is sent
  virtual std::string error(const ApiError& e) = 0;  // after the response started
};

}  // namespace tandem::server
