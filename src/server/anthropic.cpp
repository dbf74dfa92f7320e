#include "server/anthropic.h"

#include "server/fields.h"

#include <fmt/format.h>

#include <map>

namespace tandem::server::anthropic {
namespace {

std::string sse(const char* event, const json& data) {
  return fmt::format("event: {}\ndata: {}\n\n", event, data.dump(-1, ' ', false, json::error_handler_t::replace));
}

ApiError invalid(std::string message, std::string param = {}) {
  return ApiError{ErrorKind::kInvalidRequest, std::move(message), std::move(param)};
}

// The text of a string or of a list of blocks; errors on blocks a text model
// cannot take (images, documents).
ApiResult<std::string> text_of(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return invalid(fmt::format("{}: expected a string or a list of content blocks", where));
  std::string out;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& b = content[i];
    const std::string w = fmt::format("{}[{}]", where, i);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
      return invalid(w + ": expected a content block with a type");
    const std::string type = b["type"];
    if (type == "text") {
      if (!b.contains("text") || !b["text"].is_string()) return invalid(w + ".text: expected a string");
      if (!out.empty()) out += "\n";
      out += b["text"].get<std::string>();
    } else if (type == "image" || type == "document") {
      return invalid(fmt::format("{}: this model reads text only; '{}' content blocks are not supported", w, type));
    } else {
      return invalid(fmt::format("{}: content block type '{}' is not allowed here", w, type));
    }
  }
  return out;
}

// Claude Code's first system block is an attribution line that changes on
// every request; left in, it would make every prompt differ from its first
// tokens and defeat prefix reuse.
bool is_volatile_system_block(const std::string& text) { return text.rfind("x-anthropic-billing-header", 0) == 0; }

ApiResult<std::string> system_text(const json& system) {
  if (system.is_string()) return system.get<std::string>();
  if (!system.is_array()) return invalid("system: expected a string or a list of text blocks", "system");
  std::string out;
  for (size_t i = 0; i < system.size(); ++i) {
    auto t = text_of(json::array({system[i]}), fmt::format("system[{}]", i));
    if (auto* e = std::get_if<ApiError>(&t)) return *e;
    const std::string& s = std::get<std::string>(t);
    if (is_volatile_system_block(s)) continue;
    if (!out.empty()) out += "\n\n";
    out += s;
  }
  return out;
}

// Appends one API message to OUT in template form. Tool results become tool
// messages, before the turn's text.
std::optional<ApiError> convert_message(const json& m, size_t i, json& out, std::string& system, bool& seen_turn,
                                        std::map<std::string, std::string>& tool_names) {
  const std::string w = fmt::format("messages[{}]", i);
  if (!m.is_object()) return invalid(w + ": expected an object");
  Fields f(m, w);
  auto role = f.string("role", true);
  const json* content = f.any("content", true);
  if (!f.ok()) return f.error();
  if (*role == "system") {
    auto t = text_of(*content, w + ".content");
    if (auto* e = std::get_if<ApiError>(&t)) return *e;
    if (!seen_turn) {
      if (!system.empty()) system += "\n\n";
      system += std::get<std::string>(t);
    } else {
      out.push_back({{"role", "system"}, {"content", std::get<std::string>(t)}});
    }
    return std::nullopt;
  }
  if (*role != "user" && *role != "assistant")
    return invalid(fmt::format("{}.role: must be 'user' or 'assistant', got '{}'", w, *role));
  seen_turn = true;
  const json blocks = content->is_string() ? json::array({{{"type", "text"}, {"text", *content}}}) : *content;
  if (!blocks.is_array()) return invalid(w + ".content: expected a string or a list of content blocks");
  std::string text, reasoning;
  json tool_calls = json::array();
  for (size_t j = 0; j < blocks.size(); ++j) {
    const json& b = blocks[j];
    const std::string bw = fmt::format("{}.content[{}]", w, j);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string())
      return invalid(bw + ": expected a content block with a type");
    const std::string type = b["type"];
    Fields bf(b, bw);
    if (type == "text") {
      auto t = bf.string("text", true);
      if (!bf.ok()) return bf.error();
      if (!text.empty()) text += "\n";
      text += *t;
    } else if (type == "thinking" && *role == "assistant") {
      auto t = bf.string("thinking");
      if (!bf.ok()) return bf.error();
      reasoning += t.value_or("");
    } else if (type == "redacted_thinking") {
      continue;  // opaque: nothing a local model can read
    } else if (type == "tool_use" && *role == "assistant") {
      auto id = bf.string("id", true);
      auto name = bf.string("name", true);
      const json* input = bf.object("input");
      if (!bf.ok()) return bf.error();
      tool_names[*id] = *name;
      tool_calls.push_back({{"id", *id},
                            {"type", "function"},
                            {"function", {{"name", *name}, {"arguments", input ? *input : json::object()}}}});
    } else if (type == "tool_result" && *role == "user") {
      auto id = bf.string("tool_use_id", true);
      const json* c = bf.any("content");
      auto is_error = bf.boolean("is_error");
      if (!bf.ok()) return bf.error();
      std::string result;
      if (c) {
        auto t = text_of(*c, bw + ".content");
        if (auto* e = std::get_if<ApiError>(&t)) return *e;
        result = std::get<std::string>(t);
      }
      if (is_error.value_or(false)) result = "Error: " + result;
      json tm = {{"role", "tool"}, {"tool_call_id", *id}, {"content", result}};
      if (auto it = tool_names.find(*id); it != tool_names.end()) tm["name"] = it->second;
      out.push_back(std::move(tm));
    } else if (type == "image" || type == "document") {
      return invalid(fmt::format("{}: this model reads text only; '{}' content blocks are not supported", bw, type));
    } else {
      return invalid(fmt::format("{}: content block type '{}' is not allowed in a {} message", bw, type, *role));
    }
  }
  if (*role == "assistant") {
    json am = {{"role", "assistant"}, {"content", text}};
    if (!reasoning.empty()) am["reasoning_content"] = reasoning;
    if (!tool_calls.empty()) am["tool_calls"] = tool_calls;
    out.push_back(std::move(am));
  } else if (!text.empty() || content->is_string()) {
    out.push_back({{"role", "user"}, {"content", text}});
  }
  return std::nullopt;
}

std::optional<ApiError> convert_tools(const json& tools, json& out) {
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string w = fmt::format("tools[{}]", i);
    if (!t.is_object()) return invalid(w + ": expected an object", "tools");
    Fields f(t, w);
    auto name = f.string("name", true);
    auto description = f.string("description");
    const json* schema = f.object("input_schema");
    auto type = f.string("type");
    if (!f.ok()) return f.error();
    // Server tools (web search, code execution ...) run on Anthropic's side;
    // a local model cannot call them.
    if (type && *type != "custom") continue;
    json fn = {{"name", *name}};
    if (description) fn["description"] = *description;
    fn["parameters"] = schema ? *schema : json{{"type", "object"}, {"properties", json::object()}};
    out.push_back({{"type", "function"}, {"function", fn}});
  }
  return std::nullopt;
}

}  // namespace

ApiResult<ChatRequest> parse_request(const json& body, bool count_only) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  ChatRequest r;
  Fields f(body, "");
  auto model = f.string("model", true);
  const json* messages = f.array("messages", true);
  auto max_tokens = f.integer("max_tokens", 1, int64_t{1} << 31, !count_only);
  const json* system = f.any("system");
  auto temperature = f.number("temperature", 0, 2);
  auto top_p = f.number("top_p", 0, 1);
  auto top_k = f.integer("top_k", 0, 1 << 30);
  const json* stop = f.array("stop_sequences");
  auto stream = f.boolean("stream");
  const json* metadata = f.object("metadata");
  const json* tools = f.array("tools");
  const json* tool_choice = f.object("tool_choice");
  const json* thinking = f.object("thinking");
  if (!f.ok()) return f.error();
  r.model = *model;
  if (max_tokens) r.max_tokens = static_cast<int>(std::min<int64_t>(*max_tokens, 1 << 30));
  r.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  r.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  r.sampling.top_k = static_cast<int>(top_k.value_or(0));
  r.stream = stream.value_or(false);
  if (stop) {
    for (const auto& s : *stop) {
      if (!s.is_string()) return invalid("stop_sequences: expected a list of strings", "stop_sequences");
      if (!s.get<std::string>().empty()) r.stop.push_back(s);
    }
  }
  if (metadata && metadata->contains("user_id") && (*metadata)["user_id"].is_string())
    r.session = (*metadata)["user_id"];
  if (metadata && metadata->contains("cache_salt")) {
    if (!(*metadata)["cache_salt"].is_string()) return invalid("metadata.cache_salt: expected a string", "metadata");
    r.cache_salt = (*metadata)["cache_salt"];
  }
  if (thinking) {
    const std::string type = string_or_empty(*thinking, "type");
    if (type == "disabled") r.enable_thinking = false;
    if (type == "enabled" || type == "adaptive") r.enable_thinking = true;
  }
  std::string system_prompt;
  if (system) {
    auto s = system_text(*system);
    if (auto* e = std::get_if<ApiError>(&s)) return *e;
    system_prompt = std::get<std::string>(s);
  }
  if (messages->empty() && !count_only) return invalid("messages: at least one message is required", "messages");
  json converted = json::array();
  bool seen_turn = false;
  std::map<std::string, std::string> tool_names;
  for (size_t i = 0; i < messages->size(); ++i) {
    if (auto e = convert_message((*messages)[i], i, converted, system_prompt, seen_turn, tool_names)) return *e;
  }
  if (!system_prompt.empty()) converted.insert(converted.begin(), json{{"role", "system"}, {"content", system_prompt}});
  r.messages = std::move(converted);
  const bool no_tools = tool_choice && string_or_empty(*tool_choice, "type") == "none";
  if (tools && !no_tools) {
    if (auto e = convert_tools(*tools, r.tools)) return *e;
  }
  return r;
}

json error_body(const ApiError& e) {
  const char* type = "invalid_request_error";
  switch (e.kind) {
    case ErrorKind::kInvalidRequest: type = "invalid_request_error"; break;
    case ErrorKind::kAuthentication: type = "authentication_error"; break;
    case ErrorKind::kPermission: type = "permission_error"; break;
    case ErrorKind::kNotFound: type = "not_found_error"; break;
    case ErrorKind::kConflict: type = "invalid_request_error"; break;
    case ErrorKind::kTooLarge: type = "request_too_large"; break;
    case ErrorKind::kRateLimit: type = "rate_limit_error"; break;
    case ErrorKind::kInternal: type = "api_error"; break;
    case ErrorKind::kOverloaded: type = "overloaded_error"; break;
  }
  return {{"type", "error"}, {"error", {{"type", type}, {"message", e.message}}}};
}

json usage(const engine::Usage& u) {
  return {{"input_tokens", u.prompt_tokens - u.cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", u.cached_tokens},
          {"output_tokens", u.generated_tokens}};
}

const char* stop_reason(const Completion& c) {
  if (!c.tool_calls.empty()) return "tool_use";
  switch (c.stop) {
    case engine::StopReason::kMaxTokens: return "max_tokens";
    case engine::StopReason::kStopString: return "stop_sequence";
    default: return "end_turn";
  }
}

json message(const std::string& id, const std::string& model, const Completion& c) {
  json content = json::array();
  if (!c.reasoning.empty()) content.push_back({{"type", "thinking"}, {"thinking", c.reasoning}, {"signature", ""}});
  if (!c.text.empty() || (c.tool_calls.empty() && c.reasoning.empty()))
    content.push_back({{"type", "text"}, {"text", c.text}});
  for (const auto& t : c.tool_calls) {
    json input = json::parse(t.arguments, nullptr, false);
    if (!input.is_object()) input = json::object();
    content.push_back({{"type", "tool_use"}, {"id", t.id}, {"name", t.name}, {"input", input}});
  }
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", content},
          {"stop_reason", stop_reason(c)},
          {"stop_sequence", c.stop == engine::StopReason::kStopString ? json(c.stop_string) : json(nullptr)},
          {"usage", usage(c.usage)}};
}

std::string EventWriter::start(int64_t prompt_tokens) {
  json msg = {{"id", id_},
              {"type", "message"},
              {"role", "assistant"},
              {"model", model_},
              {"content", json::array()},
              {"stop_reason", nullptr},
              {"stop_sequence", nullptr},
              {"usage",
               {{"input_tokens", prompt_tokens},
                {"cache_creation_input_tokens", 0},
                {"cache_read_input_tokens", 0},
                {"output_tokens", 0}}}};
  return sse("message_start", {{"type", "message_start"}, {"message", msg}});
}

std::string EventWriter::open(Block kind, json content_block) {
  std::string out = close();
  open_ = kind;
  ++index_;
  out += sse("content_block_start",
             {{"type", "content_block_start"}, {"index", index_}, {"content_block", content_block}});
  return out;
}

std::string EventWriter::close() {
  if (open_ == Block::kNone) return "";
  open_ = Block::kNone;
  return sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
}

std::string EventWriter::write(const std::vector<chat::OutputEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    switch (e.kind) {
      case chat::OutputEvent::kReasoning:
        if (e.text.empty()) break;
        if (open_ != Block::kThinking)
          out += open(Block::kThinking, {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
        out += sse("content_block_delta", {{"type", "content_block_delta"},
                                           {"index", index_},
                                           {"delta", {{"type", "thinking_delta"}, {"thinking", e.text}}}});
        break;
      case chat::OutputEvent::kText:
        if (e.text.empty()) break;
        if (open_ != Block::kText) out += open(Block::kText, {{"type", "text"}, {"text", ""}});
        out += sse("content_block_delta", {{"type", "content_block_delta"},
                                           {"index", index_},
                                           {"delta", {{"type", "text_delta"}, {"text", e.text}}}});
        break;
      case chat::OutputEvent::kToolCallStart:
        out += open(Block::kToolUse, {{"type", "tool_use"}, {"id", e.id}, {"name", e.name}, {"input", json::object()}});
        break;
      case chat::OutputEvent::kToolCallArguments:
        if (open_ != Block::kToolUse || e.text.empty()) break;
        out += sse("content_block_delta", {{"type", "content_block_delta"},
                                           {"index", index_},
                                           {"delta", {{"type", "input_json_delta"}, {"partial_json", e.text}}}});
        break;
      case chat::OutputEvent::kToolCallEnd: out += close(); break;
    }
  }
  return out;
}

std::string EventWriter::finish(const Completion& c) {
  std::string out = close();
  if (!c.error.empty() && engine::failed(c.stop)) {
    return out + error(completion_error(c));
  }
  if (index_ < 0) {  // no output at all: one empty text block, as the API always has content
    out += open(Block::kText, {{"type", "text"}, {"text", ""}});
    out += close();
  }
  out += sse("message_delta",
             {{"type", "message_delta"},
              {"delta",
               {{"stop_reason", stop_reason(c)},
                {"stop_sequence", c.stop == engine::StopReason::kStopString ? json(c.stop_string) : json(nullptr)}}},
              {"usage", usage(c.usage)}});
  out += sse("message_stop", {{"type", "message_stop"}});
  return out;
}

std::string EventWriter::keep_alive() { return sse("ping", {{"type", "ping"}}); }

std::string EventWriter::error(const ApiError& e) { return sse("error", error_body(e)); }

}  // namespace tandem::server::anthropic
