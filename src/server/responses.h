// The OpenAI Responses API (Codex CLI): `input` items and `instructions` to
// a ChatRequest, results to a response object and its streamed events.
// What Codex CLI sends: docs/API.md.
#pragma once

#include "server/api.h"

#include <string>
#include <vector>

namespace tandem::server::responses {

ApiResult<ChatRequest> parse_request(const json& body);
json response(const std::string& id, const std::string& model, int64_t created, const ChatRequest& chat,
              const Completion& c);

// Events of one streamed response: response.created, then per output item
// output_item.added / deltas / output_item.done, then response.completed.
class EventWriter : public StreamWriter {
 public:
  // NAMESPACES: the request's namespace tool groups (ChatRequest::tool_namespaces).
  EventWriter(std::string id, std::string model, int64_t created, std::vector<std::string> namespaces = {})
      : id_(std::move(id)), model_(std::move(model)), created_(created), namespaces_(std::move(namespaces)) {}
  std::string start(int64_t prompt_tokens) override;
  std::string write(const std::vector<chat::OutputEvent>& events) override;
  std::string finish(const Completion& c) override;
  std::string keep_alive() override { return ": keep-alive\n\n"; }
  std::string error(const ApiError& e) override;

 private:
  std::string event(const char* type, json data);
  std::string open(json item);
  std::string close();

  std::string id_, model_;
  int64_t created_;
  std::vector<std::string> namespaces_;
  int64_t sequence_ = 0;
  json items_ = json::array();  // every output item so far, as the final response lists them
  bool open_ = false;           // the last item is still being written
};

}  // namespace tandem::server::responses
