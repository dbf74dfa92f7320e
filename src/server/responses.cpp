#include "server/responses.h"

#include "server/fields.h"

#include <fmt/format.h>

#include <random>

namespace tandem::server::responses {
namespace {

ApiError invalid(std::string message, std::string param = {}) {
  return ApiError{ErrorKind::kInvalidRequest, std::move(message), std::move(param)};
}

std::string item_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}", prefix, rng());
}

ApiResult<std::string> text_of(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return invalid(where + ": expected a string or a list of content parts", "input");
  std::string out;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string type = string_or_empty(content[i], "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
      out += string_or_empty(content[i], "text");
    } else if (type == "input_image" || type == "input_file" || type == "input_audio") {
      return invalid(fmt::format("{}[{}]: this model reads text only; '{}' content is not supported", where, i, type),
                     "input");
    } else {
      return invalid(fmt::format("{}[{}]: unknown content part type '{}'", where, i, type), "input");
    }
  }
  return out;
}

// A tool of a namespace tool group is shown to the model as NAMESPACE.NAME
// (the template sees plain functions); the model's calls are split back
// into name and namespace (split_call_name).
std::string qualified_name(const std::string& ns, const std::string& name) { return ns + "." + name; }

// Appends input item I to MESSAGES (template form).
std::optional<ApiError> convert_item(const json& item, size_t i, json& messages) {
  const std::string w = fmt::format("input[{}]", i);
  if (!item.is_object()) return invalid(w + ": expected an object", "input");
  std::string type = string_or_empty(item, "type");
  if (type.empty() && item.contains("role")) type = "message";
  if (type == "message") {
    const std::string role = string_or_empty(item, "role");
    if (role != "user" && role != "assistant" && role != "system" && role != "developer") {
      return invalid(fmt::format("{}.role: unknown role '{}'", w, role), "input");
    }
    auto text = text_of(item.contains("content") ? item["content"] : json(""), w + ".content");
    if (auto* e = std::get_if<ApiError>(&text)) return *e;
    messages.push_back({{"role", role == "developer" ? "system" : role}, {"content", std::get<std::string>(text)}});
  } else if (type == "function_call") {
    Fields f(item, w);
    auto name = f.string("name", true);
    auto call_id = f.string("call_id", true);
    auto args = f.string("arguments");
    auto ns = f.string("namespace");
    if (!f.ok()) return f.error();
    json parsed = json::parse(args.value_or("{}"), nullptr, false);
    const std::string full_name = ns && !ns->empty() ? qualified_name(*ns, *name) : *name;
    json call = {{"id", *call_id},
                 {"type", "function"},
                 {"function", {{"name", full_name}, {"arguments", parsed.is_discarded() ? json(*args) : parsed}}}};
    // Calls right after an assistant message belong to it.
    if (messages.empty() || messages.back()["role"] != "assistant") {
      messages.push_back({{"role", "assistant"}, {"content", ""}});
    }
    json& last = messages.back();
    if (!last.contains("tool_calls")) last["tool_calls"] = json::array();
    last["tool_calls"].push_back(std::move(call));
  } else if (type == "function_call_output") {
    Fields f(item, w);
    auto call_id = f.string("call_id", true);
    const json* output = f.any("output");
    if (!f.ok()) return f.error();
    std::string text;
    if (output) {
      auto t = text_of(*output, w + ".output");
      if (auto* e = std::get_if<ApiError>(&t)) return *e;
      text = std::get<std::string>(t);
    }
    messages.push_back({{"role", "tool"}, {"tool_call_id", *call_id}, {"content", text}});
  } else if (type == "reasoning") {
    // Encrypted or summarized reasoning of an earlier turn: nothing a local
    // model can use.
  } else {
    return invalid(fmt::format("{}: unknown input item type '{}'", w, type), "input");
  }
  return std::nullopt;
}

json usage_of(const engine::Usage& u) {
  return {{"input_tokens", u.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"output_tokens", u.generated_tokens},
          {"output_tokens_details", {{"reasoning_tokens", 0}}},
          {"total_tokens", u.prompt_tokens + u.generated_tokens}};
}

json message_item(const std::string& id, const std::string& text, const char* status) {
  return {{"type", "message"},
          {"id", id},
          {"status", status},
          {"role", "assistant"},
          {"content", json::array({{{"type", "output_text"}, {"text", text}, {"annotations", json::array()}}})}};
}

json reasoning_item(const std::string& id, const std::string& text) {
  return {{"type", "reasoning"},
          {"id", id},
          {"summary", json::array()},
          {"content", json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

json call_item(const std::string& id, const ToolCall& t, const char* status,
               const std::vector<std::string>& namespaces) {
  json item = {{"type", "function_call"},  {"id", id},        {"call_id", t.id}, {"name", t.name},
               {"arguments", t.arguments}, {"status", status}};
  for (const std::string& ns : namespaces) {
    if (t.name.size() > ns.size() + 1 && t.name.compare(0, ns.size() + 1, ns + ".") == 0) {
      item["name"] = t.name.substr(ns.size() + 1);
      item["namespace"] = ns;
      break;
    }
  }
  return item;
}

json response_object(const std::string& id, const std::string& model, int64_t created, const char* status, json output,
                     const json& usage, bool incomplete) {
  return {{"id", id},
          {"object", "response"},
          {"created_at", created},
          {"status", status},
          {"model", model},
          {"output", std::move(output)},
          {"incomplete_details", incomplete ? json{{"reason", "max_output_tokens"}} : json(nullptr)},
          {"error", nullptr},
          {"usage", usage}};
}

// Function tool T (of namespace NS when not empty) in the template's form.
void add_function_tool(const json& t, const std::string& ns, json& tools) {
  const std::string name = string_or_empty(t, "name");
  if (name.empty()) return;
  json fn = {{"name", ns.empty() ? name : qualified_name(ns, name)}};
  if (t.contains("description")) fn["description"] = t["description"];
  fn["parameters"] = t.contains("parameters") ? t["parameters"] : json{{"type", "object"}};
  tools.push_back({{"type", "function"}, {"function", fn}});
}

bool incomplete(const Completion& c) { return c.tool_calls.empty() && c.stop == engine::StopReason::kMaxTokens; }

}  // namespace

ApiResult<ChatRequest> parse_request(const json& body) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  ChatRequest r;
  Fields f(body, "");
  auto model = f.string("model", true);
  const json* input = f.any("input", true);
  auto instructions = f.string("instructions");
  const json* tools = f.array("tools");
  const json* tool_choice = f.any("tool_choice");
  auto max_tokens = f.integer("max_output_tokens", 1, int64_t{1} << 31);
  auto temperature = f.number("temperature", 0, 2);
  auto top_p = f.number("top_p", 0, 1);
  auto stream = f.boolean("stream");
  auto cache_key = f.string("prompt_cache_key");
  auto salt = f.string("cache_salt");
  const json* reasoning = f.object("reasoning");
  if (!f.ok()) return f.error();
  r.model = *model;
  r.stream = stream.value_or(false);
  r.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  r.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  r.sampling.seed = std::random_device{}();
  if (max_tokens) r.max_tokens = static_cast<int>(std::min<int64_t>(*max_tokens, 1 << 30));
  if (cache_key) r.session = *cache_key;
  if (salt) r.cache_salt = *salt;
  if (reasoning) {
    const std::string effort = string_or_empty(*reasoning, "effort");
    if (!effort.empty()) r.enable_thinking = effort != "minimal" && effort != "none";
    if (effort == "low" || effort == "medium" || effort == "high") r.reasoning_effort = effort;
  }
  if (instructions && !instructions->empty()) r.messages.push_back({{"role", "system"}, {"content", *instructions}});
  if (input->is_string()) {
    r.messages.push_back({{"role", "user"}, {"content", *input}});
  } else if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i) {
      if (auto e = convert_item((*input)[i], i, r.messages)) return *e;
    }
  } else {
    return invalid("input: expected a string or a list of items", "input");
  }
  if (r.messages.empty()) return invalid("input: at least one item is required", "input");
  const bool no_tools = tool_choice && tool_choice->is_string() && *tool_choice == "none";
  if (tools && !no_tools) {
    for (const auto& t : *tools) {
      const std::string type = string_or_empty(t, "type");
      if (type == "function") {
        add_function_tool(t, "", r.tools);
      } else if (type == "namespace" && t.contains("tools") && t["tools"].is_array()) {
        const std::string ns = string_or_empty(t, "name");
        if (ns.empty()) continue;
        r.tool_namespaces.push_back(ns);
        for (const auto& inner : t["tools"]) {
          if (string_or_empty(inner, "type") == "function") add_function_tool(inner, ns, r.tools);
        }
      }
      // Built-in tools (web_search, local_shell, image_generation, ...) run
      // on OpenAI's side: a local model has none of them.
    }
  }
  return r;
}

json response(const std::string& id, const std::string& model, int64_t created, const ChatRequest& chat,
              const Completion& c) {
  json output = json::array();
  if (!c.reasoning.empty()) output.push_back(reasoning_item(item_id("rs_"), c.reasoning));
  if (!c.text.empty() || c.tool_calls.empty()) output.push_back(message_item(item_id("msg_"), c.text, "completed"));
  for (const auto& t : c.tool_calls) {
    output.push_back(call_item(item_id("fc_"), t, "completed", chat.tool_namespaces));
  }
  return response_object(id, model, created, incomplete(c) ? "incomplete" : "completed", std::move(output),
                         usage_of(c.usage), incomplete(c));
}

std::string EventWriter::event(const char* type, json data) {
  data["type"] = type;
  data["sequence_number"] = sequence_++;
  return fmt::format("event: {}\ndata: {}\n\n", type, data.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string EventWriter::start(int64_t) {
  const json r = response_object(id_, model_, created_, "in_progress", json::array(), nullptr, false);
  std::string out = event("response.created", {{"response", r}});  // numbered first: two statements
  return out + event("response.in_progress", {{"response", r}});
}

std::string EventWriter::open(json item) {
  std::string out = close();
  items_.push_back(std::move(item));
  open_ = true;
  const size_t index = items_.size() - 1;
  json& it = items_.back();
  json added = it;
  if (it["type"] != "function_call") added["content"] = json::array();
  out += event("response.output_item.added", {{"output_index", index}, {"item", added}});
  if (it["type"] != "function_call") {
    out += event("response.content_part.added",
                 {{"item_id", it["id"]}, {"output_index", index}, {"content_index", 0}, {"part", it["content"][0]}});
  }
  return out;
}

std::string EventWriter::close() {
  if (!open_) return "";
  open_ = false;
  const size_t index = items_.size() - 1;
  json& it = items_.back();
  std::string out;
  if (it["type"] == "message") {
    out += event(
        "response.output_text.done",
        {{"item_id", it["id"]}, {"output_index", index}, {"content_index", 0}, {"text", it["content"][0]["text"]}});
  } else if (it["type"] == "reasoning") {
    out += event(
        "response.reasoning_text.done",
        {{"item_id", it["id"]}, {"output_index", index}, {"content_index", 0}, {"text", it["content"][0]["text"]}});
  } else {
    out += event("response.function_call_arguments.done",
                 {{"item_id", it["id"]}, {"output_index", index}, {"arguments", it["arguments"]}});
  }
  if (it["type"] != "function_call") {
    out += event("response.content_part.done",
                 {{"item_id", it["id"]}, {"output_index", index}, {"content_index", 0}, {"part", it["content"][0]}});
  }
  it["status"] = "completed";
  out += event("response.output_item.done", {{"output_index", index}, {"item", it}});
  return out;
}

std::string EventWriter::write(const std::vector<chat::OutputEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    const std::string kind = open_ ? items_.back()["type"].get<std::string>() : "";
    switch (e.kind) {
      case chat::OutputEvent::kText:
      case chat::OutputEvent::kReasoning: {
        if (e.text.empty()) break;
        const bool text = e.kind == chat::OutputEvent::kText;
        if (kind != (text ? "message" : "reasoning")) {
          out += open(text ? message_item(item_id("msg_"), "", "in_progress") : reasoning_item(item_id("rs_"), ""));
        }
        json& it = items_.back();
        it["content"][0]["text"] = it["content"][0]["text"].get<std::string>() + e.text;
        out += event(
            text ? "response.output_text.delta" : "response.reasoning_text.delta",
            {{"item_id", it["id"]}, {"output_index", items_.size() - 1}, {"content_index", 0}, {"delta", e.text}});
        break;
      }
      case chat::OutputEvent::kToolCallStart:
        out += open(call_item(item_id("fc_"), {e.id, e.name, ""}, "in_progress", namespaces_));
        break;
      case chat::OutputEvent::kToolCallArguments:
        if (kind != "function_call" || e.text.empty()) break;
        items_.back()["arguments"] = items_.back()["arguments"].get<std::string>() + e.text;
        out += event("response.function_call_arguments.delta",
                     {{"item_id", items_.back()["id"]}, {"output_index", items_.size() - 1}, {"delta", e.text}});
        break;
      case chat::OutputEvent::kToolCallEnd: out += close(); break;
    }
  }
  return out;
}

std::string EventWriter::finish(const Completion& c) {
  if (!c.error.empty() && engine::failed(c.stop)) return error(completion_error(c));
  std::string out = close();
  if (items_.empty()) {  // no output at all: one empty message, as the non-streamed response has
    out += open(message_item(item_id("msg_"), "", "in_progress"));
    out += close();
  }
  // Always response.completed (what Codex CLI and the SDK's stream wait
  // for); a cut answer says so in its status and incomplete_details.
  const bool cut = incomplete(c);
  out +=
      event("response.completed", {{"response", response_object(id_, model_, created_, cut ? "incomplete" : "completed",
                                                                items_, usage_of(c.usage), cut)}});
  return out;
}

std::string EventWriter::error(const ApiError& e) {
  return event("error",
               {{"code", nullptr}, {"message", e.message}, {"param", e.param.empty() ? json(nullptr) : json(e.param)}});
}

}  // namespace tandem::server::responses
