#include "server/render.h"

#include "server/anthropic.h"
#include "server/openai.h"
#include "server/responses.h"

namespace tandem::server {
namespace {

bool has_anthropic_blocks(const json& messages) {
  if (!messages.is_array()) return false;
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
    for (const auto& b : m["content"]) {
      if (!b.is_object() || !b.contains("type") || !b["type"].is_string()) continue;
      const std::string type = b["type"];
      if (type == "tool_use" || type == "tool_result" || type == "thinking" || type == "redacted_thinking" ||
          (type == "image" && b.contains("source"))) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

std::optional<BodyApi> parse_body_api(std::string_view name) {
  if (name == "anthropic" || name == "messages") return BodyApi::kAnthropic;
  if (name == "openai" || name == "chat") return BodyApi::kOpenAiChat;
  if (name == "completions") return BodyApi::kOpenAiCompletions;
  if (name == "responses") return BodyApi::kResponses;
  return std::nullopt;
}

const char* body_api_name(BodyApi api) {
  switch (api) {
    case BodyApi::kAnthropic: return "anthropic";
    case BodyApi::kOpenAiChat: return "openai";
    case BodyApi::kOpenAiCompletions: return "completions";
    case BodyApi::kResponses: return "responses";
  }
  return "?";
}

BodyApi guess_body_api(const json& body) {
  if (!body.is_object()) return BodyApi::kOpenAiChat;
  const bool messages = body.contains("messages");
  if (!messages && body.contains("input")) return BodyApi::kResponses;
  if (!messages && body.contains("prompt")) return BodyApi::kOpenAiCompletions;
  if (body.contains("system") || (messages && has_anthropic_blocks(body["messages"]))) return BodyApi::kAnthropic;
  return BodyApi::kOpenAiChat;
}

ApiResult<RenderedPrompt> render_body(const PromptBuilder& prompts, BodyApi api, const json& body) {
  ApiResult<ChatRequest> chat = ApiError{};
  switch (api) {
    case BodyApi::kAnthropic: chat = anthropic::parse_request(body, /*count_only=*/false); break;
    case BodyApi::kOpenAiChat: chat = openai::parse_chat_request(body); break;
    case BodyApi::kOpenAiCompletions: chat = openai::parse_completion_request(body); break;
    case BodyApi::kResponses: chat = responses::parse_request(body); break;
  }
  if (auto* e = std::get_if<ApiError>(&chat)) return *e;
  auto text = prompts.render(std::get<ChatRequest>(chat));
  if (auto* e = std::get_if<ApiError>(&text)) return *e;
  RenderedPrompt out;
  out.ids = prompts.tokenize(std::get<std::string>(text));
  out.text = PromptBuilder::visible(std::get<std::string>(text));
  return out;
}

size_t shared_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace tandem::server
