#include "server/openai.h"

#include "server/fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <random>

namespace tandem::server::openai {
namespace {

ApiError invalid(std::string message, std::string param = {}) {
  return ApiError{ErrorKind::kInvalidRequest, std::move(message), std::move(param)};
}

std::string data(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

ApiResult<std::string> text_of(const json& content, const std::string& where) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    return invalid(fmt::format("{}: expected a string or a list of content parts", where), where);
  std::string out;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& p = content[i];
    const std::string w = fmt::format("{}[{}]", where, i);
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
      return invalid(w + ": expected a content part with a type", where);
    const std::string type = p["type"];
    if (type == "text" || type == "input_text" || type == "output_text") {
      if (!p.contains("text") || !p["text"].is_string()) return invalid(w + ".text: expected a string", where);
      out += p["text"].get<std::string>();
    } else if (type == "image_url" || type == "input_image" || type == "input_audio" || type == "file") {
      return invalid(fmt::format("{}: this model reads text only; '{}' content is not supported", w, type), where);
    } else {
      return invalid(fmt::format("{}: unknown content part type '{}'", w, type), where);
    }
  }
  return out;
}

std::optional<ApiError> read_sampling(Fields& f, ChatRequest& r) {
  auto temperature = f.number("temperature", 0, 2);
  auto top_p = f.number("top_p", 0, 1);
  auto top_k = f.integer("top_k", 0, 1 << 30);
  auto min_p = f.number("min_p", 0, 1);
  auto presence = f.number("presence_penalty", -2, 2);
  auto frequency = f.number("frequency_penalty", -2, 2);
  auto repetition = f.number("repetition_penalty", 0.01, 10);
  auto seed = f.integer("seed", INT64_MIN, INT64_MAX);
  auto n = f.integer("n", 1, 128);
  const json* stop = f.any("stop");
  auto stream = f.boolean("stream");
  const json* bias = f.object("logit_bias");
  auto ignore_eos = f.boolean("ignore_eos");  // an extension of llama.cpp's and vLLM's servers: benchmarks use it
  if (!f.ok()) return f.error();
  r.ignore_eos = ignore_eos.value_or(false);
  if (n && *n != 1) return invalid("n: only n = 1 is supported", "n");
  r.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  r.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  r.sampling.top_k = static_cast<int>(top_k.value_or(0));
  r.sampling.min_p = static_cast<float>(min_p.value_or(0.0));
  r.sampling.presence_penalty = static_cast<float>(presence.value_or(0.0));
  r.sampling.frequency_penalty = static_cast<float>(frequency.value_or(0.0));
  r.sampling.repetition_penalty = static_cast<float>(repetition.value_or(1.0));
  if (seed) r.sampling.seed = static_cast<uint64_t>(*seed);
  else r.sampling.seed = std::random_device{}();
  r.stream = stream.value_or(false);
  if (stop) {
    if (stop->is_string()) {
      if (!stop->get<std::string>().empty()) r.stop.push_back(*stop);
    } else if (stop->is_array()) {
      for (const auto& s : *stop) {
        if (!s.is_string()) return invalid("stop: expected a string or a list of strings", "stop");
        if (!s.get<std::string>().empty()) r.stop.push_back(s);
      }
    } else {
      return invalid("stop: expected a string or a list of strings", "stop");
    }
  }
  if (bias) {
    for (const auto& [k, v] : bias->items()) {
      char* end = nullptr;
      const long id = std::strtol(k.c_str(), &end, 10);
      if (k.empty() || *end != '\0' || !v.is_number() || id < 0) {
        return invalid("logit_bias: expected {\"token id\": number}", "logit_bias");
      }
      r.sampling.logit_bias.emplace_back(static_cast<int32_t>(id), std::clamp(v.get<float>(), -100.0f, 100.0f));
    }
  }
  return std::nullopt;
}

std::optional<ApiError> convert_message(const json& m, size_t i, json& out) {
  const std::string w = fmt::format("messages[{}]", i);
  if (!m.is_object()) return invalid(w + ": expected an object", "messages");
  Fields f(m, w);
  auto role = f.string("role", true);
  const json* content = f.any("content");
  const json* tool_calls = f.array("tool_calls");
  auto tool_call_id = f.string("tool_call_id");
  auto name = f.string("name");
  auto reasoning = f.string("reasoning_content");
  if (!f.ok()) return f.error();
  auto text = text_of(content ? *content : json(nullptr), w + ".content");
  if (auto* e = std::get_if<ApiError>(&text)) return *e;
  json tm = {{"content", std::get<std::string>(text)}};
  if (*role == "system" || *role == "developer") {
    tm["role"] = "system";
  } else if (*role == "user") {
    tm["role"] = "user";
  } else if (*role == "assistant") {
    tm["role"] = "assistant";
    if (reasoning) tm["reasoning_content"] = *reasoning;
    if (tool_calls && !tool_calls->empty()) {
      json calls = json::array();
      for (size_t j = 0; j < tool_calls->size(); ++j) {
        const json& c = (*tool_calls)[j];
        const std::string cw = fmt::format("{}.tool_calls[{}]", w, j);
        if (!c.is_object()) return invalid(cw + ": expected an object", "messages");
        Fields cf(c, cw);
        auto id = cf.string("id");
        const json* fn = cf.object("function", true);
        if (!cf.ok()) return cf.error();
        Fields ff(*fn, cw + ".function");
        auto fname = ff.string("name", true);
        auto args = ff.string("arguments");
        if (!ff.ok()) return ff.error();
        // Templates expect arguments as an object (the Hugging Face convention).
        json parsed = json::parse(args.value_or("{}"), nullptr, false);
        calls.push_back(
            {{"id", id.value_or(fmt::format("call_{}", j))},
             {"type", "function"},
             {"function", {{"name", *fname}, {"arguments", parsed.is_discarded() ? json(*args) : parsed}}}});
      }
      tm["tool_calls"] = calls;
    }
  } else if (*role == "tool" || *role == "function") {
    tm["role"] = "tool";
    if (tool_call_id) tm["tool_call_id"] = *tool_call_id;
    if (name) tm["name"] = *name;
  } else {
    return invalid(fmt::format("{}.role: unknown role '{}'", w, *role), "messages");
  }
  out.push_back(std::move(tm));
  return std::nullopt;
}

}  // namespace

ApiResult<ChatRequest> parse_chat_request(const json& body) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  ChatRequest r;
  Fields f(body, "");
  auto model = f.string("model", true);
  const json* messages = f.array("messages", true);
  auto max_tokens = f.integer("max_tokens", 1, int64_t{1} << 31);
  auto max_completion = f.integer("max_completion_tokens", 1, int64_t{1} << 31);
  const json* tools = f.array("tools");
  const json* tool_choice = f.any("tool_choice");
  const json* stream_options = f.object("stream_options");
  auto user = f.string("user");
  auto salt = f.string("cache_salt");
  auto reasoning_effort = f.string("reasoning_effort");
  if (auto e = read_sampling(f, r)) return *e;
  if (!f.ok()) return f.error();
  r.model = *model;
  if (max_completion) r.max_tokens = static_cast<int>(std::min<int64_t>(*max_completion, 1 << 30));
  else if (max_tokens) r.max_tokens = static_cast<int>(std::min<int64_t>(*max_tokens, 1 << 30));
  if (messages->empty()) return invalid("messages: at least one message is required", "messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    if (auto e = convert_message((*messages)[i], i, r.messages)) return *e;
  }
  const bool no_tools = tool_choice && tool_choice->is_string() && *tool_choice == "none";
  if (tools && !no_tools) {
    for (size_t i = 0; i < tools->size(); ++i) {
      const json& t = (*tools)[i];
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
          !t["function"]["name"].is_string()) {
        return invalid(
            fmt::format("tools[{}]: expected {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}", i), "tools");
      }
      r.tools.push_back({{"type", "function"}, {"function", t["function"]}});
    }
  }
  if (reasoning_effort) r.enable_thinking = *reasoning_effort != "none" && *reasoning_effort != "minimal";
  if (reasoning_effort == "low" || reasoning_effort == "medium" || reasoning_effort == "high")
    r.reasoning_effort = reasoning_effort;
  if (stream_options && true_at(*stream_options, "include_usage")) r.stream_include_usage = true;
  if (user) r.session = *user;
  if (salt) r.cache_salt = *salt;
  return r;
}

ApiResult<ChatRequest> parse_completion_request(const json& body) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  ChatRequest r;
  Fields f(body, "");
  auto model = f.string("model", true);
  const json* prompt = f.any("prompt", true);
  auto max_tokens = f.integer("max_tokens", 1, int64_t{1} << 31);
  const json* stream_options = f.object("stream_options");
  auto salt = f.string("cache_salt");
  if (auto e = read_sampling(f, r)) return *e;
  if (!f.ok()) return f.error();
  r.model = *model;
  if (salt) r.cache_salt = *salt;
  if (prompt->is_string()) {
    r.raw_prompt = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.raw_prompt = (*prompt)[0].get<std::string>();
  } else {
    return invalid("prompt: expected a string (token-id and batched prompts are not supported)", "prompt");
  }
  r.max_tokens = static_cast<int>(std::min<int64_t>(max_tokens.value_or(16), 1 << 30));  // the API's default
  if (stream_options && true_at(*stream_options, "include_usage")) r.stream_include_usage = true;
  return r;
}

json error_body(const ApiError& e) {
  const char* type = "invalid_request_error";
  const char* code = nullptr;
  switch (e.kind) {
    case ErrorKind::kInvalidRequest: break;
    case ErrorKind::kAuthentication:
      type = "authentication_error";
      code = "invalid_api_key";
      break;
    case ErrorKind::kPermission: type = "permission_error"; break;
    case ErrorKind::kNotFound: code = "not_found"; break;
    case ErrorKind::kConflict: code = "conflict"; break;
    case ErrorKind::kTooLarge: code = "request_too_large"; break;
    case ErrorKind::kRateLimit:
      type = "rate_limit_error";
      code = "rate_limit_exceeded";
      break;
    case ErrorKind::kInternal: type = "server_error"; break;
    case ErrorKind::kOverloaded:
      type = "server_error";
      code = "overloaded";
      break;
  }
  return {{"error",
           {{"message", e.message},
            {"type", type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", code ? json(code) : json(nullptr)}}}};
}

json usage(const engine::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.generated_tokens},
          {"total_tokens", u.prompt_tokens + u.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

const char* finish_reason(const Completion& c) {
  if (!c.tool_calls.empty()) return "tool_calls";
  return c.stop == engine::StopReason::kMaxTokens ? "length" : "stop";
}

json chat_completion(const std::string& id, const std::string& model, int64_t created, const Completion& c) {
  json message = {{"role", "assistant"},
                  {"content", c.text.empty() && !c.tool_calls.empty() ? json(nullptr) : json(c.text)}};
  if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
  if (!c.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& t : c.tool_calls) {
      calls.push_back(
          {{"id", t.id}, {"type", "function"}, {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
    }
    message["tool_calls"] = calls;
  }
  return {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices",
       json::array({{{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", finish_reason(c)}}})},
      {"usage", usage(c.usage)}};
}

json text_completion(const std::string& id, const std::string& model, int64_t created, const Completion& c) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices",
           json::array({{{"index", 0}, {"text", c.text}, {"logprobs", nullptr}, {"finish_reason", finish_reason(c)}}})},
          {"usage", usage(c.usage)}};
}

std::string ChunkWriter::chunk(json delta_or_text, json finish_reason) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (chat_) choice["delta"] = std::move(delta_or_text);
  else choice["text"] = std::move(delta_or_text);
  json j = {{"id", id_},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", model_},
            {"choices", json::array({choice})}};
  return data(j);
}

std::string ChunkWriter::start(int64_t) { return chat_ ? chunk({{"role", "assistant"}, {"content", ""}}) : ""; }

std::string ChunkWriter::error(const ApiError& e) { return data(error_body(e)) + "data: [DONE]\n\n"; }

std::string ChunkWriter::write(const std::vector<chat::OutputEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    switch (e.kind) {
      case chat::OutputEvent::kText:
        if (!e.text.empty()) out += chunk(chat_ ? json{{"content", e.text}} : json(e.text));
        break;
      case chat::OutputEvent::kReasoning:
        if (!e.text.empty() && chat_) out += chunk({{"reasoning_content", e.text}});
        break;
      case chat::OutputEvent::kToolCallStart:
        ++tool_index_;
        out += chunk({{"tool_calls", json::array({{{"index", tool_index_},
                                                   {"id", e.id},
                                                   {"type", "function"},
                                                   {"function", {{"name", e.name}, {"arguments", ""}}}}})}});
        break;
      case chat::OutputEvent::kToolCallArguments:
        if (tool_index_ >= 0 && !e.text.empty()) {
          out +=
              chunk({{"tool_calls", json::array({{{"index", tool_index_}, {"function", {{"arguments", e.text}}}}})}});
        }
        break;
      case chat::OutputEvent::kToolCallEnd: break;
    }
  }
  return out;
}

std::string ChunkWriter::finish(const Completion& c) {
  if (!c.error.empty() && engine::failed(c.stop)) return error(completion_error(c));
  std::string out = chunk(chat_ ? json::object() : json(""), finish_reason(c));
  if (include_usage_) {
    out += data({{"id", id_},
                 {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
                 {"created", created_},
                 {"model", model_},
                 {"choices", json::array()},
                 {"usage", usage(c.usage)}});
  }
  return out + "data: [DONE]\n\n";
}

}  // namespace tandem::server::openai
