#include "server/prompt.h"

#include <algorithm>

namespace tandem::server {
namespace {

// Put before a control token's text inside client strings, so that the
// token is tokenized as plain text even after the template rendered it
// (U+E000, a private-use character no real text needs).
constexpr std::string_view kGuard = "\xEE\x80\x80";

// Tool-call arguments as JSON text, in every assistant message.
json with_string_arguments(json messages) {
  for (auto& m : messages) {
    if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
    for (auto& call : m["tool_calls"]) {
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
      json& args = call["function"]["arguments"];
      if (!args.is_string() && !args.is_null()) args = args.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  return messages;
}

// gpt-oss's template reads an assistant turn's reasoning from "thinking"
// (the server's messages carry it as "reasoning_content"), and refuses a
// tool-call turn with both text and reasoning: there the text wins.
json with_thinking_field(json messages) {
  for (auto& m : messages) {
    if (!m.is_object() || !m.contains("reasoning_content") || !m["reasoning_content"].is_string()) continue;
    const bool calls = m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty();
    const bool text = m.contains("content") && m["content"].is_string() && !m["content"].get<std::string>().empty();
    if (!(calls && text)) m["thinking"] = m["reasoning_content"];
  }
  return messages;
}

// Whether TMPL needs tool-call arguments as text: a short tool exchange
// fails with objects and renders with text. Templates that render both, or
// neither, keep objects (the Hugging Face convention).
bool needs_string_arguments(const chat::ChatTemplate& tmpl) {
  const json call = {
      {"id", "a1B2c3D4e"}, {"type", "function"}, {"function", {{"name", "probe"}, {"arguments", {{"key", "value"}}}}}};
  json ctx;
  ctx["messages"] = json::array({{{"role", "user"}, {"content", "x"}},
                                 {{"role", "assistant"}, {"content", ""}, {"tool_calls", json::array({call})}},
                                 {{"role", "tool"}, {"tool_call_id", "a1B2c3D4e"}, {"content", "r"}}});
  ctx["tools"] = nullptr;
  ctx["add_generation_prompt"] = true;
  ctx["bos_token"] = "";
  ctx["eos_token"] = "";
  if (tmpl.render(ctx).ok()) return false;
  ctx["messages"] = with_string_arguments(ctx["messages"]);
  return tmpl.render(ctx).ok();
}

}  // namespace

Result<PromptBuilder> PromptBuilder::create(const tokenizer::Tokenizer& tokenizer, const std::string& template_source) {
  PromptBuilder b(tokenizer);
  const std::string& own = tokenizer.vocab().chat_template;
  const std::string& source = template_source.empty() ? own : template_source;
  b.fallback_ = source.empty();
  auto parsed = chat::ChatTemplate::parse(b.fallback_ ? chat::chatml_fallback_template() : source);
  if (!parsed) {
    return parsed.status().with_context(template_source.empty() ? "the model's chat template" : "the chat template");
  }
  b.template_ = std::make_shared<const chat::ChatTemplate>(std::move(*parsed));
  b.tool_format_ = chat::detect_tool_call_format(source);
  b.string_arguments_ = needs_string_arguments(*b.template_);
  const auto& v = tokenizer.vocab();
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.is_control(static_cast<int32_t>(i)) && v.tokens[i].size() > 1) b.control_texts_.push_back(v.tokens[i]);
  }
  std::sort(b.control_texts_.begin(), b.control_texts_.end(),
            [](const std::string& x, const std::string& y) { return x.size() > y.size(); });
  return b;
}

// Every string a client sent, with control-token texts guarded and any
// guard character the client sent itself removed.
json PromptBuilder::guard_client_text(const json& value) const {
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    for (size_t at = s.find(kGuard); at != std::string::npos; at = s.find(kGuard, at)) s.erase(at, kGuard.size());
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      const std::string* hit = nullptr;
      if (s[i] == '<' || s[i] == '[') {
        for (const auto& t : control_texts_) {
          if (s.compare(i, t.size(), t) == 0) {
            hit = &t;
            break;
          }
        }
      }
      if (hit) {
        out += kGuard;
        out += *hit;
        i += hit->size();
      } else {
        out += s[i++];
      }
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const auto& v : value) out.push_back(guard_client_text(v));
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : value.items()) out[k] = guard_client_text(v);
    return out;
  }
  return value;
}

ApiResult<std::string> PromptBuilder::render(const ChatRequest& chat) const {
  if (chat.raw_prompt) return *chat.raw_prompt;
  json ctx;
  json messages = string_arguments_ ? with_string_arguments(chat.messages) : chat.messages;
  if (tool_format_ == chat::ToolCallFormat::kHarmony) messages = with_thinking_field(std::move(messages));
  ctx["messages"] = guard_client_text(messages);
  // No tools: null, as transformers passes (some templates test `tools is not none`).
  ctx["tools"] = chat.tools.empty() ? json(nullptr) : guard_client_text(chat.tools);
  ctx["add_generation_prompt"] = true;
  const auto& v = tok_->vocab();
  ctx["bos_token"] = v.bos >= 0 ? v.tokens[static_cast<size_t>(v.bos)] : "";
  ctx["eos_token"] = v.eos >= 0 ? v.tokens[static_cast<size_t>(v.eos)] : "";
  if (chat.enable_thinking) ctx["enable_thinking"] = *chat.enable_thinking;
  if (chat.reasoning_effort) ctx["reasoning_effort"] = *chat.reasoning_effort;
  auto out = template_->render(ctx);
  if (!out) return ApiError{ErrorKind::kInvalidRequest, out.message(), "messages"};
  return std::move(*out);
}

std::string PromptBuilder::visible(const std::string& text) {
  std::string out = text;
  for (size_t at = out.find(kGuard); at != std::string::npos; at = out.find(kGuard, at)) out.erase(at, kGuard.size());
  return out;
}

std::vector<int32_t> PromptBuilder::tokenize(const std::string& text) const {
  tokenizer::EncodeOptions parse;
  parse.special = tokenizer::SpecialTokens::kParse;
  tokenizer::EncodeOptions plain;
  plain.special = tokenizer::SpecialTokens::kAsText;
  std::vector<int32_t> ids;
  auto append = [&](std::string_view piece, const tokenizer::EncodeOptions& o) {
    if (piece.empty()) return;
    auto part = tok_->encode(piece, o);
    ids.insert(ids.end(), part.begin(), part.end());
  };
  size_t pos = 0;
  for (size_t at = text.find(kGuard); at != std::string::npos; at = text.find(kGuard, pos)) {
    append(std::string_view(text).substr(pos, at - pos), parse);
    pos = at + kGuard.size();
    for (const auto& t : control_texts_) {
      if (text.compare(pos, t.size(), t) == 0) {
        append(t, plain);
        pos += t.size();
        break;
      }
    }
  }
  append(std::string_view(text).substr(pos), parse);
  const auto& v = tok_->vocab();
  if (tok_->adds_bos() && v.bos >= 0 && (ids.empty() || ids.front() != v.bos)) ids.insert(ids.begin(), v.bos);
  return ids;
}

}  // namespace tandem::server
