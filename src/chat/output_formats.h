// Internal to chat_output: the pieces of the tool call formats that do not
// depend on streaming. OutputParser finds where a call ends; these turn the
// call's bytes into a name and compact JSON arguments.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat::output_detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Whether TAG starts at S[pos]: kPartial when S ends inside a prefix of TAG.
enum class Match { kNo, kPartial, kYes };
Match match_at(std::string_view s, size_t pos, std::string_view tag);

// Length of the longest suffix of S that is a proper prefix of TAG.
size_t partial_suffix(std::string_view s, std::string_view tag);

// Where a JSON object or array ends, byte by byte, without validating it.
// Feed from the opening '{' or '['; step() is true on the byte that closes it.
struct JsonExtent {
  int depth = 0;
  bool in_string = false;
  bool escape = false;
  bool step(char c);
};

struct ToolCallParts {
  std::string name;
  std::string arguments_json;  // compact JSON object
};

// {"name": N, "arguments" | "parameters": {..} or a string holding {..}}.
// A missing arguments member gives {} unless REQUIRE_ARGUMENTS (Llama 3's
// bare JSON, where {"name": "Bob", "age": 3} is an answer, not a call).
std::optional<ToolCallParts> parse_json_call(std::string_view json, bool require_arguments = false);
// A call object, or an array of one or more of them.
std::optional<std::vector<ToolCallParts>> parse_json_calls(std::string_view json);
// NAME plus a JSON object of arguments (Mistral v11+).
std::optional<ToolCallParts> parse_named_arguments(std::string name, std::string_view json);

using ParamTypeFn = std::function<std::string(std::string_view tool, std::string_view param)>;

// Qwen3-Coder body between <tool_call> and </tool_call>:
//   ws* <function=N> (ws* <parameter=P> value </parameter>)* ws* [</function> ws*]
std::optional<ToolCallParts> parse_qwen3_coder_call(std::string_view body, const ParamTypeFn& param_type);

// The JSON type Qwen3-Coder's VALUE gets for a parameter of schema type TYPE
// (see OutputParserOptions::param_type), as compact JSON.
std::string qwen3_coder_value_json(std::string_view value, std::string_view type);

// Mistral's text after [TOOL_CALLS], up to where its JSON starts:
//   ws* ('[' | '{')                                   -> name empty
//   ws* N ("[CALL_ID]" id)? ("[ARGS]")? ws* '{'       -> name N
struct MistralHeader {
  enum Status { kNeedMore, kBad, kJson } status = kNeedMore;
  std::string name;
  size_t json_begin = 0;
};
MistralHeader scan_mistral_header(std::string_view body, bool at_end);

}  // namespace tandem::chat::output_detail
