// Streaming parser of model output into visible text, reasoning and tool calls.
//
// The engine hands out generated text in UTF-8-safe deltas; feed() turns each
// delta into API-level events at once, holding back only what is not decided
// yet (a suffix that may begin a tag, whitespace that may be dropped, a tool
// call until it is complete). Nothing is lost: text that never became a tag
// or a valid call is emitted as kText, byte for byte.
//
// Output grammar (per format, see ToolCallFormat):
//
//   ws* [<think> reasoning </think> ws*] (text | call)*
//
// Decisions, following llama.cpp's chat parser where the references differ:
// - <think> is recognized only at the start of the output (after optional
//   whitespace), or is implied by starts_in_reasoning. Later "<think>" is
//   text. An unclosed <think> makes the rest of the output reasoning.
// - Reasoning is stripped: whitespace after <think> and before </think> is
//   dropped, and so is whitespace after </think> (Qwen3 writes
//   "</think>\n\n" before the answer).
// - Whitespace right before a tool call and right after one is dropped
//   ("Let me check.\n\n<tool_call>" gives text "Let me check."); other
//   text is kept as is. When a call fails to parse, the whitespace before it
//   comes back with its raw text.
// - Tool calls are emitted whole, once complete: kToolCallStart (name, id),
//   one kToolCallArguments with the arguments as compact JSON (an object,
//   keys in the model's order), kToolCallEnd. id is set on all three.
// - A call that fails to parse (bad JSON, no name, unclosed and incomplete at
//   finish) is emitted as kText, tags included: its opening tag becomes text
//   and what follows is scanned again as text, so a valid call after a broken
//   one is still found. A call whose closing tag is missing at finish but
//   whose body is complete and valid is accepted (the model stopped right
//   after it, as vLLM's parsers allow).
// - Events are split only at ASCII tag and whitespace boundaries, so UTF-8
//   safe deltas give UTF-8 safe events.
//
// Use kNone when the request offers no tools: kLlama3 holds back any output
// that starts with '{' until it is known not to be a call.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat {

enum class ToolCallFormat {
  kNone,
  // Hermes / Qwen2.5 / Qwen3: <tool_call>{"name": N, "arguments": {..}}</tool_call>.
  // "parameters" is accepted for "arguments", and arguments given as a JSON
  // string holding an object.
  kHermes,
  // Qwen3-Coder: <tool_call><function=N><parameter=P>value</parameter>...
  // </function></tool_call>. One "\n" after <parameter=P> and one before
  // </parameter> are dropped (as the reference parser does).
  kQwen3Coder,
  // Llama 3.x: the whole output (trimmed) is {"name": N, "parameters": {..}}
  // ("arguments" accepted, one of them required), several separated by ';'
  // or whitespace; or text followed by <|python_tag|> and such objects up to
  // the end.
  kLlama3,
  // Mistral: [TOOL_CALLS][{"name": N, "arguments": {..}}, ...], or the v11+
  // form [TOOL_CALLS]N[ARGS]{..} (with [CALL_ID]x optional, [ARGS] optional).
  kMistral,
  // gpt-oss harmony: the whole output is channel messages (harmony_parser.h):
  // analysis -> reasoning, final -> text, to=functions.N -> a call. Used with
  // or without tools (the output needs the control tokens rendered).
  kHarmony,
};

// Picks the format from markers in the chat template text: "<|channel|>" ->
// kHarmony; "<function=" and
// "<parameter=" -> kQwen3Coder; "<tool_call>" -> kHermes; "[TOOL_CALLS]" ->
// kMistral; "<|python_tag|>" or "<|start_header_id|>" (any Llama 3 template,
// including ones that do not mention tools) -> kLlama3; else kNone.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);
std::string_view tool_call_format_name(ToolCallFormat format);

struct OutputParserOptions {
  ToolCallFormat format = ToolCallFormat::kNone;
  bool reasoning = true;             // parse <think>...</think>
  bool starts_in_reasoning = false;  // the prompt already opened <think>
  // Tool call ids: make_id() when set, else tool_id_prefix + 24 random [A-Za-z0-9]
  // (Anthropic wants "toolu_", OpenAI "call_"; Mistral templates want 9
  // alphanumerics, which needs make_id).
  std::string tool_id_prefix = "call_";
  std::function<std::string()> make_id;
  // Qwen3-Coder writes every parameter as text; its JSON type comes from the
  // tool's schema: param_type(tool, param) returns the JSON Schema "type"
  // ("string", "integer", "number", "boolean", "object", "array") or "" when
  // unknown. As the reference parser: "null" -> null for every type; string
  // types stay strings; integer/number/object/array values that do not parse
  // stay strings; booleans are true/false case-insensitively (else the string
  // is kept, where the reference says false). Unknown type (or no callback):
  // the value is JSON when it parses as a non-string JSON value (number,
  // true/false/null, object, array), else a string.
  std::function<std::string(std::string_view tool, std::string_view param)> param_type;
};

struct OutputEvent {
  enum Kind { kText, kReasoning, kToolCallStart, kToolCallArguments, kToolCallEnd };
  Kind kind = kText;
  std::string text;  // kText / kReasoning: the text; kToolCallArguments: JSON fragment
  std::string name;  // kToolCallStart
  std::string id;    // all three tool call events
};

class HarmonyParser;

class OutputParser {
 public:
  explicit OutputParser(OutputParserOptions options);
  ~OutputParser();
  OutputParser(OutputParser&&) noexcept;
  OutputParser& operator=(OutputParser&&) noexcept;

  // Consumes DELTA; returns the events it decides (consecutive text or
  // reasoning pieces merged). Calling feed() after finish() returns nothing.
  std::vector<OutputEvent> feed(std::string_view delta);
  // End of generation: decides everything held back.
  std::vector<OutputEvent> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<HarmonyParser> harmony_;  // kHarmony instead of impl_
};

struct ParsedToolCall {
  std::string id;
  std::string name;
  std::string arguments_json;
};

struct ParsedOutput {
  std::string text;
  std::string reasoning;
  std::vector<ParsedToolCall> tool_calls;
};

// Whole-output helper: runs OutputParser over TEXT and collects the events.
ParsedOutput parse_output(std::string_view text, const OutputParserOptions& options);

}  // namespace tandem::chat
