// The prompt a request body becomes, without running it: POST /v1/render and
// `tandem render` parse the body with the route's own adapter and render it
// with the server's PromptBuilder, so users can see what the model gets and
// where two requests' prompts diverge (why a turn missed the cache).
#pragma once

#include "server/api.h"
#include "server/prompt.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::server {

// Which route's body it is.
enum class BodyApi { kAnthropic, kOpenAiChat, kOpenAiCompletions, kResponses };

// "anthropic" (/v1/messages), "openai" or "chat" (/v1/chat/completions),
// "completions" (/v1/completions), "responses" (/v1/responses).
std::optional<BodyApi> parse_body_api(std::string_view name);
const char* body_api_name(BodyApi api);
// A guess from the body's shape when the caller did not say: "input" without
// "messages" is Responses, "prompt" without "messages" Completions; a
// top-level "system" or Anthropic content blocks (tool_use, tool_result,
// thinking, image with a source) make it Anthropic; else OpenAI chat.
BodyApi guess_body_api(const json& body);

struct RenderedPrompt {
  std::string text;          // as the model reads it (PromptBuilder::visible)
  std::vector<int32_t> ids;  // what the engine gets
};

// Parses BODY as API's route does (the same 400 errors) and renders it.
ApiResult<RenderedPrompt> render_body(const PromptBuilder& prompts, BodyApi api, const json& body);

// Where two token sequences part: the count of leading ids they share.
size_t shared_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace tandem::server
