// The Anthropic Messages API: request bodies to ChatRequest, results to
// message JSON and SSE events, errors to Anthropic's envelope.
// What real clients send: docs/API.md.
#pragma once

#include "server/api.h"

#include <string>
#include <vector>

namespace tandem::server::anthropic {

// A /v1/messages body (COUNT_ONLY: a count_tokens body, max_tokens not required).
ApiResult<ChatRequest> parse_request(const json& body, bool count_only);

json error_body(const ApiError& e);
// {"type":"message", ...} for a finished, non-streamed request.
json message(const std::string& id, const std::string& model, const Completion& c);
json usage(const engine::Usage& u);
const char* stop_reason(const Completion& c);

// Server-sent events of one streamed message, in Anthropic's order.
class EventWriter : public StreamWriter {
 public:
  EventWriter(std::string id, std::string model) : id_(std::move(id)), model_(std::move(model)) {}
  std::string start(int64_t prompt_tokens) override;
  std::string write(const std::vector<chat::OutputEvent>& events) override;
  std::string finish(const Completion& c) override;
  std::string keep_alive() override;  // event: ping
  std::string error(const ApiError& e) override;

 private:
  enum class Block { kNone, kThinking, kText, kToolUse };
  std::string open(Block kind, json content_block);
  std::string close();

  std::string id_, model_;
  Block open_ = Block::kNone;
  int index_ = -1;
};

}  // namespace tandem::server::anthropic
