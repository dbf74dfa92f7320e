// The OpenAI Chat Completions and Completions APIs: request bodies to
// ChatRequest, results to JSON and `data:` chunks, errors to OpenAI's
// envelope. What real clients send: docs/API.md.
#pragma once

#include "server/api.h"

#include <string>
#include <vector>

namespace tandem::server::openai {

ApiResult<ChatRequest> parse_chat_request(const json& body);
ApiResult<ChatRequest> parse_completion_request(const json& body);

json error_body(const ApiError& e);
json usage(const engine::Usage& u);
const char* finish_reason(const Completion& c);

json chat_completion(const std::string& id, const std::string& model, int64_t created, const Completion& c);
json text_completion(const std::string& id, const std::string& model, int64_t created, const Completion& c);

// `data:` chunks of one streamed chat completion (or text completion).
class ChunkWriter : public StreamWriter {
 public:
  ChunkWriter(std::string id, std::string model, int64_t created, bool chat, bool include_usage)
      : id_(std::move(id)), model_(std::move(model)), created_(created), chat_(chat), include_usage_(include_usage) {}
  std::string start(int64_t prompt_tokens) override;
  std::string write(const std::vector<chat::OutputEvent>& events) override;
  std::string finish(const Completion& c) override;
  std::string keep_alive() override { return ": keep-alive\n\n"; }  // an SSE comment
  std::string error(const ApiError& e) override;

 private:
  std::string chunk(json delta_or_text, json finish_reason = nullptr);

  std::string id_, model_;
  int64_t created_;
  bool chat_, include_usage_;
  int tool_index_ = -1;
};

}  // namespace tandem::server::openai
