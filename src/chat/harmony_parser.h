// Streaming parser of gpt-oss's harmony output (ToolCallFormat::kHarmony).
//
// The prompt ends with "<|start|>assistant"; the model then writes messages
//
//   [<|start|>assistant] [ to=R] <|channel|>C [ to=R] [<|constrain|>json] <|message|> content END
//
// where END is <|end|> (another message follows) or the end of the output
// (<|return|> or <|call|>, which end generation and never reach the text).
// Channel "analysis" is reasoning; "final", and "commentary" without a
// recipient, are text; a message to "functions.NAME" (on any channel) is a
// tool call whose content is its JSON arguments. Everything between
// messages is structure, never shown; a header is held back until its
// <|message|> arrives, so a partial header never shows up as text, and
// content is streamed except a trailing "<|..." that may start END.
// What cannot be parsed (no <|message|> by the end, arguments that are not
// a JSON object) comes out as text, nothing is lost.
#pragma once

#include "chat/output_parser.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat {

class HarmonyParser {
 public:
  explicit HarmonyParser(const OutputParserOptions& options);
  std::vector<OutputEvent> feed(std::string_view delta, bool at_end);

 private:
  enum class State { kHeader, kContent };
  enum class Route { kText, kReasoning, kTool };

  bool step(bool at_end);
  bool step_header(bool at_end);
  bool step_content(bool at_end);
  void emit(OutputEvent::Kind kind, std::string_view text);
  void emit_tool_call(const std::string& raw);

  OutputParserOptions options_;
  State state_ = State::kHeader;
  Route route_ = Route::kText;
  std::string tool_name_;
  std::string buf_;   // not yet decided
  std::string args_;  // the current tool call's content
  bool finished_ = false;
  std::vector<OutputEvent>* out_ = nullptr;
  std::mt19937_64 rng_;
};

}  // namespace tandem::chat
