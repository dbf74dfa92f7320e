// From a ChatRequest to the prompt a model gets: the chat template (the
// model's own, a --chat-template file, or ChatML when the model has none)
// renders the conversation, and the tokenizer turns the text into ids
// without ever letting client text become a control token.
//
// The server (service.h) and `tandem render` use this one path, so what
// render prints is exactly what the model is given.
#pragma once

#include "chat/output_parser.h"
#include "chat/template.h"
#include "server/api.h"
#include "tokenizer/tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace tandem::server {

class PromptBuilder {
 public:
  // TEMPLATE_SOURCE: a Jinja template replacing the model's; "" for the
  // model's own (tokenizer.chat_template), or ChatML when it has none.
  static Result<PromptBuilder> create(const tokenizer::Tokenizer& tokenizer, const std::string& template_source = "");

  // The prompt text (a 400 error with the template's message when the
  // template refuses the conversation). /v1/completions' raw prompt as is.
  ApiResult<std::string> render(const ChatRequest& chat) const;
  // The ids of a rendered prompt: control tokens are recognized, except the
  // ones that came from client text. BOS first when the model wants it.
  std::vector<int32_t> tokenize(const std::string& text) const;
  // TEXT as a person should read it: without the marks render() puts before
  // control-token texts that came from clients (tokenize() drops them).
  static std::string visible(const std::string& text);

  bool uses_fallback_template() const { return fallback_; }
  // Where tool calls are in the model's output (from the template's text).
  chat::ToolCallFormat tool_format() const { return tool_format_; }
  // True when the template gets tool-call arguments as JSON text (it joins
  // them to strings, as DeepSeek V3.1's does) instead of objects.
  bool string_arguments() const { return string_arguments_; }

 private:
  explicit PromptBuilder(const tokenizer::Tokenizer& tokenizer) : tok_(&tokenizer) {}
  json guard_client_text(const json& value) const;

  const tokenizer::Tokenizer* tok_;
  std::shared_ptr<const chat::ChatTemplate> template_;
  bool fallback_ = false;
  bool string_arguments_ = false;
  chat::ToolCallFormat tool_format_ = chat::ToolCallFormat::kNone;
  std::vector<std::string> control_texts_;  // control tokens' text, longest first
};

}  // namespace tandem::server
