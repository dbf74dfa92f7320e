// Chat templates: a Jinja-subset interpreter for Hugging Face chat templates.
//
// Renders a model's `chat_template` byte for byte as @huggingface/jinja
// 0.5.11 does (tests/chat/fixtures hold its renders of the Qwen3, Llama 2,
// Llama 3/3.1, Gemma 3 and DeepSeek-V3 templates), including where it departs
// from Python Jinja: trim_blocks and lstrip_blocks on; `none` and undefined
// print as ""; booleans print "true"/"false"; lists and dicts print as JSON;
// `tojson` keeps non-ASCII text and key order; `s.strip('\n')` trims all
// whitespace (the argument is ignored); `==` is JS loose equality; `%` keeps
// the dividend's sign; a macro sees its caller's variables.
//
// Language: {{ }}, {% if/elif/else %}, {% for x in xs [if c] %} with else,
// loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
// break/continue, {% set %} (also tuples, ns.attr and block form),
// namespace(), {% macro %} with defaults, kwargs/varargs, {% call %} with
// caller(), {% filter %}, {% generation %} (removed), comments and `-`
// whitespace control; operators and or not in is ~ + - * / // % ** == != < >
// <= >=, a if c else b, slices with negative steps, *args/**kwargs in calls.
// Filters: tojson(indent, separators, ensure_ascii, sort_keys) safe default
// join int float length first last list reverse sort unique string items
// dictsort selectattr rejectattr map(attribute) trim upper lower title
// capitalize replace indent abs bool. Tests: defined undefined none boolean
// true false string number integer iterable mapping sequence callable lower
// upper odd even equalto eq. Methods: str.upper lower strip lstrip rstrip title
// capitalize startswith endswith split replace, .length, dict.get items keys
// values dictsort. Globals: raise_exception, range, namespace, strftime_now.
// Anything else the reference lacks (reject, escape, str.format, string `<`,
// ...) is an error here too, never a guess. Deliberate differences: string
// concatenation with a dict or namespace, integer division by zero and printing
// a function are errors (the reference prints "[object Map]", "Infinity", JS
// source); strings are indexed by code point (the reference by UTF-16 unit,
// which only differs after characters outside the BMP).
//
// Usage: parse once when a model is loaded, render once per request:
//   auto tmpl = ChatTemplate::parse(source);          // syntax errors here
//   auto text = tmpl->render(context);                // ordered_json object
// A template's raise_exception("msg") makes render() return an error whose
// message is exactly "msg" (the server answers HTTP 400 with it).
//
// Thread safety: a parsed template is immutable; render() may run on many
// threads at once. Copies share the parsed tree.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tandem::chat {

struct RenderOptions {
  // Local time for strftime_now() (which knows %Y %m %d %H %M %b %B %%).
  // Unset: the system clock. Tests inject a fixed time.
  std::function<std::tm()> now;
  // Guards against runaway templates; exceeding one is a render error.
  size_t max_output_bytes = size_t{16} << 20;  // the output and any single string value
  int64_t max_loop_iterations = 1'000'000;     // for-loop iterations and range() items, whole render
  int max_call_depth = 64;                     // nested macro calls
};

class ChatTemplate {
 public:
  // Parses SOURCE; the error names the problem and its line.
  static Result<ChatTemplate> parse(std::string_view source);

  // CONTEXT is a JSON object whose keys become template variables: messages,
  // tools, add_generation_prompt, bos_token, eos_token, enable_thinking, ...
  // JSON numbers with an integral value are integers (as in JS). A key that
  // names a global (range, namespace, raise_exception, strftime_now, true,
  // false, none, True, False, None) is an error, as in the reference.
  // Key order matters to `tojson` (tool schemas): nlohmann::ordered_json
  // keeps the request's order, nlohmann::json sorts keys.
  Result<std::string> render(const nlohmann::ordered_json& context) const;
  Result<std::string> render(const nlohmann::ordered_json& context, const RenderOptions& options) const;
  Result<std::string> render(const nlohmann::json& context) const;
  Result<std::string> render(const nlohmann::json& context, const RenderOptions& options) const;

  const std::string& source() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// A plain ChatML template for models that ship none:
//   <|im_start|>{role}\n{content}<|im_end|>\n  per message, then
//   <|im_start|>assistant\n  when add_generation_prompt is true.
// Content may be a string, null (empty) or a list of parts, whose "text"
// parts are concatenated. Tool calls are not rendered.
std::string_view chatml_fallback_template();

}  // namespace tandem::chat
