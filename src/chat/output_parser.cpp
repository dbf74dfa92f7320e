#include "chat/output_parser.h"

#include "chat/harmony_parser.h"
#include "chat/output_events.h"

#include <random>
#include <utility>

#include "chat/output_formats.h"

namespace tandem::chat {

using namespace output_detail;

namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kToolCallOpen = "<tool_call>", kToolCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr std::string_view kParamOpen = "<parameter=", kParamClose = "</parameter>";

// The tag that opens a tool call in running text ("" when there is none).
std::string_view call_opener(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kQwen3Coder: return kToolCallOpen;
    case ToolCallFormat::kLlama3: return kPythonTag;
    case ToolCallFormat::kMistral: return kMistralCalls;
    case ToolCallFormat::kNone:
    case ToolCallFormat::kHarmony: return "";
  }
  return "";
}

// Bytes of S that can be emitted now: all but a suffix that may begin TAG
// and, when HOLD_SPACE, the whitespace before it (dropped if a tag follows).
size_t emittable(std::string_view s, std::string_view tag, bool hold_space) {
  size_t end = s.size() - partial_suffix(s, tag);
  if (hold_space) {
    while (end > 0 && is_space(s[end - 1])) --end;
  }
  return end;
}

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

// The parser is a state machine over buf_, the input not consumed yet.
// Each step_*() consumes what it can decide and returns true when it moved to
// another state (run() then steps again), false when it needs more input.
// With at_end every state decides everything, so finish() leaves buf_ empty.
//
//   kStart --"<think>"--> kReasoning --"</think>"--> kContentStart --> kText
//     |                                                  |   '{' (Llama 3)
//     +-- anything else ---------------> kContentStart   +--> kLlamaCalls
//   kText --opening tag--> kHermes | kQwen3Coder | kMistral | kLlamaCalls
//   call states --complete--> kText (the call emitted)
//              --malformed--> kText (the tag emitted as text; the body is
//                             scanned again as text, so a valid call inside
//                             it is still found)
struct OutputParser::Impl {
  enum class State { kStart, kReasoning, kContentStart, kText, kHermes, kQwen3Coder, kMistral, kLlamaCalls };

  explicit Impl(OutputParserOptions opts) : options(std::move(opts)), opener(call_opener(options.format)) {
    rng.seed(detail::random_seed());
    if (!options.reasoning) {
      state = State::kContentStart;
    } else if (options.starts_in_reasoning) {
      state = State::kReasoning;
      skip_space = true;
    }
  }

  std::vector<OutputEvent> run(std::string_view delta, bool at_end) {
    std::vector<OutputEvent> events;
    if (finished) return events;
    out = &events;
    buf.append(delta);
    while (step(at_end)) {}
    out = nullptr;
    finished = at_end;
    return events;
  }

  bool step(bool at_end) {
    switch (state) {
      case State::kStart: return step_start(at_end);
      case State::kReasoning: return step_reasoning(at_end);
      case State::kContentStart: return step_content_start(at_end);
      case State::kText: return step_text(at_end);
      case State::kHermes: return step_hermes(at_end);
      case State::kQwen3Coder: return step_qwen3_coder(at_end);
      case State::kMistral: return step_mistral(at_end);
      case State::kLlamaCalls: return step_llama_calls(at_end);
    }
    return false;
  }

  // Drops whitespace at the front of buf while skip_space is set; false when
  // nothing else is left yet.
  bool drop_space() {
    if (!skip_space) return true;
    size_t n = 0;
    while (n < buf.size() && is_space(buf[n])) ++n;
    buf.erase(0, n);
    if (buf.empty()) return false;
    skip_space = false;
    return true;
  }

  bool step_start(bool at_end) {
    size_t p = 0;
    while (p < buf.size() && is_space(buf[p])) ++p;
    std::string_view rest = std::string_view(buf).substr(p);
    if (rest.starts_with(kThinkOpen)) {
      buf.erase(0, p + kThinkOpen.size());
      state = State::kReasoning;
      skip_space = true;
      return true;
    }
    if (!at_end && kThinkOpen.starts_with(rest)) return false;  // "", "  <th", ...
    state = State::kContentStart;
    return true;
  }

  bool step_reasoning(bool at_end) {
    if (!drop_space()) return false;
    size_t close = buf.find(kThinkClose);
    if (close != std::string::npos) {
      emit(OutputEvent::kReasoning, rtrim(std::string_view(buf).substr(0, close)));
      buf.erase(0, close + kThinkClose.size());
      state = State::kContentStart;
      skip_space = true;
      return true;
    }
    size_t n = at_end ? rtrim(buf).size() : emittable(buf, kThinkClose, /*hold_space=*/true);
    emit(OutputEvent::kReasoning, std::string_view(buf).substr(0, n));
    buf.erase(0, at_end ? buf.size() : n);
    return false;
  }

  bool step_content_start(bool at_end) {
    if (!drop_space() && !at_end) return false;
    if (options.format == ToolCallFormat::kLlama3) {
      // Llama 3 answers with a bare JSON object when it calls a tool: output
      // that starts with '{' waits until it is known to be calls or text.
      size_t p = 0;
      while (p < buf.size() && is_space(buf[p])) ++p;
      if (p == buf.size() && !at_end) return false;
      if (p < buf.size() && buf[p] == '{') {
        enter_call(0, 0, "", State::kLlamaCalls);
        return true;
      }
    }
    state = State::kText;
    return true;
  }

  bool step_text(bool at_end) {
    if (!drop_space()) return false;
    if (!opener.empty()) {
      size_t at = buf.find(opener);
      if (at != std::string::npos) {
        size_t text_end = at;
        while (text_end > 0 && is_space(buf[text_end - 1])) --text_end;
        State next = options.format == ToolCallFormat::kHermes       ? State::kHermes
                     : options.format == ToolCallFormat::kQwen3Coder ? State::kQwen3Coder
                     : options.format == ToolCallFormat::kMistral    ? State::kMistral
                                                                     : State::kLlamaCalls;
        enter_call(text_end, at, opener, next);
        return true;
      }
    }
    // Without a tool call format nothing can follow that would drop
    // whitespace, so it streams at once.
    size_t n = at_end ? buf.size() : emittable(buf, opener, /*hold_space=*/!opener.empty());
    emit(OutputEvent::kText, std::string_view(buf).substr(0, n));
    buf.erase(0, n);
    return false;
  }

  // Emits buf[0, text_end) as text, keeps buf[text_end, tag_begin) (the
  // whitespace before the tag) and TAG for the fallback, and leaves the body
  // after the tag in buf.
  void enter_call(size_t text_end, size_t tag_begin, std::string_view tag, State next) {
    emit(OutputEvent::kText, std::string_view(buf).substr(0, text_end));
    call_raw = buf.substr(text_end, tag_begin - text_end);
    call_raw += tag;
    buf.erase(0, tag_begin + tag.size());
    state = next;
    scan_pos = 0;
    json = JsonExtent{};
    body_started = json_body = in_value = false;
    json_begin = std::string::npos;
    mistral_name.clear();
    llama_calls.clear();
  }

  // The call ends at buf[consumed]: emit CALLS, continue as text.
  bool complete_call(const std::vector<ToolCallParts>& calls, size_t consumed) {
    for (const ToolCallParts& call : calls) emit_call(call);
    buf.erase(0, consumed);
    state = State::kText;
    skip_space = true;
    return true;
  }

  // Not a call after all: the tag (and the whitespace before it) becomes
  // text and the body is scanned again as text.
  bool fail_call() {
    emit(OutputEvent::kText, call_raw);
    state = State::kText;
    skip_space = false;
    return true;
  }

  bool complete_or_fail(std::optional<ToolCallParts> call, size_t consumed) {
    if (!call) return fail_call();
    return complete_call({std::move(*call)}, consumed);
  }

  // <tool_call> JSON </tool_call>. The closing tag counts only outside JSON
  // strings, so an argument may contain "</tool_call>".
  bool step_hermes(bool at_end) {
    size_t i = scan_pos;
    while (i < buf.size()) {
      if (!json.in_string) {
        Match m = match_at(buf, i, kToolCallClose);
        if (m == Match::kYes)
          return complete_or_fail(parse_json_call(std::string_view(buf).substr(0, i)), i + kToolCallClose.size());
        if (m == Match::kPartial && !at_end) break;
      }
      char c = buf[i];
      if (!body_started && !is_space(c)) {
        body_started = true;
        json_body = c == '{';
      }
      if (json_body) json.step(c);
      ++i;
    }
    scan_pos = i;
    if (!at_end) return false;
    return complete_or_fail(parse_json_call(buf), buf.size());  // unclosed: fine if complete
  }

  // <tool_call><function=N><parameter=P>value</parameter>...</function></tool_call>.
  // Inside a value only </parameter> counts, so a value may contain
  // "</tool_call>" (a value containing "</parameter>" cannot be written in
  // this format at all).
  bool step_qwen3_coder(bool at_end) {
    size_t i = scan_pos;
    while (i < buf.size()) {
      if (in_value) {
        Match m = match_at(buf, i, kParamClose);
        if (m == Match::kYes) {
          in_value = false;
          i += kParamClose.size();
          continue;
        }
        if (m == Match::kPartial && !at_end) break;
        ++i;
        continue;
      }
      Match close = match_at(buf, i, kToolCallClose);
      if (close == Match::kYes) {
        return complete_or_fail(parse_qwen3_coder_call(std::string_view(buf).substr(0, i), options.param_type),
                                i + kToolCallClose.size());
      }
      Match param = match_at(buf, i, kParamOpen);
      if (param == Match::kYes) {
        in_value = true;
        i += kParamOpen.size();
        continue;
      }
      if ((close == Match::kPartial || param == Match::kPartial) && !at_end) break;
      ++i;
    }
    scan_pos = i;
    if (!at_end) return false;
    return complete_or_fail(parse_qwen3_coder_call(buf, options.param_type), buf.size());
  }

  // [TOOL_CALLS] then a JSON array/object, or N[ARGS]{..}. The call ends
  // with its JSON value.
  bool step_mistral(bool at_end) {
    if (json_begin == std::string::npos) {
      MistralHeader header = scan_mistral_header(buf, at_end);
      if (header.status == MistralHeader::kNeedMore) return false;
      if (header.status == MistralHeader::kBad) return fail_call();
      mistral_name = std::move(header.name);
      json_begin = scan_pos = header.json_begin;
    }
    size_t i = scan_pos;
    while (i < buf.size()) {
      if (json.step(buf[i++])) {
        std::string_view value = std::string_view(buf).substr(json_begin, i - json_begin);
        if (mistral_name.empty()) {
          auto calls = parse_json_calls(value);
          if (!calls) return fail_call();
          return complete_call(*calls, i);
        }
        return complete_or_fail(parse_named_arguments(mistral_name, value), i);
      }
    }
    scan_pos = i;
    if (!at_end) return false;
    return fail_call();  // the JSON never closed
  }

  // Llama 3: JSON call objects separated by ';' or whitespace, up to the end
  // of the output (after <|python_tag|>, or the whole output). Anything else
  // makes all of it text.
  bool step_llama_calls(bool at_end) {
    size_t i = scan_pos;
    while (i < buf.size()) {
      char c = buf[i];
      if (json_begin == std::string::npos) {
        if (is_space(c) || c == ';') {
          ++i;
          continue;
        }
        if (c != '{') return fail_call();
        json_begin = i;
        json = JsonExtent{};
      }
      ++i;
      if (json.step(c)) {
        auto call =
            parse_json_call(std::string_view(buf).substr(json_begin, i - json_begin), /*require_arguments=*/true);
        if (!call) return fail_call();
        llama_calls.push_back(std::move(*call));
        json_begin = std::string::npos;
      }
    }
    scan_pos = i;
    if (!at_end) return false;
    if (json_begin != std::string::npos || llama_calls.empty()) return fail_call();
    std::vector<ToolCallParts> calls = std::move(llama_calls);
    return complete_call(calls, buf.size());
  }

  void emit(OutputEvent::Kind kind, std::string_view text) { detail::append_text(*out, kind, text); }

  void emit_call(const ToolCallParts& call) {
    detail::append_tool_call(*out, detail::new_tool_call_id(options, rng), call.name, call.arguments_json);
  }

  OutputParserOptions options;
  std::string_view opener;
  State state = State::kStart;
  std::string buf;          // input not consumed yet; in a call state, the body after the tag
  bool skip_space = false;  // drop whitespace at the front of buf
  bool finished = false;
  std::vector<OutputEvent>* out = nullptr;
  std::mt19937_64 rng;

  // Call states.
  std::string call_raw;                          // whitespace before the tag + the tag, for the fallback
  size_t scan_pos = 0;                           // bytes of buf already scanned
  JsonExtent json;                               // Hermes body, Mistral / Llama JSON value
  bool body_started = false, json_body = false;  // Hermes: first non-space byte seen; it was '{'
  bool in_value = false;                         // Qwen3-Coder: inside <parameter=..>..</parameter>
  size_t json_begin = std::string::npos;         // Mistral / Llama: start of the current JSON value
  std::string mistral_name;                      // Mistral v11+: the function name before the arguments
  std::vector<ToolCallParts> llama_calls;        // Llama: calls parsed, emitted at the end
};

OutputParser::OutputParser(OutputParserOptions options) {
  if (options.format == ToolCallFormat::kHarmony) {
    harmony_ = std::make_unique<HarmonyParser>(options);
  } else {
    impl_ = std::make_unique<Impl>(std::move(options));
  }
}
OutputParser::~OutputParser() = default;
OutputParser::OutputParser(OutputParser&&) noexcept = default;
OutputParser& OutputParser::operator=(OutputParser&&) noexcept = default;

std::vector<OutputEvent> OutputParser::feed(std::string_view delta) {
  return harmony_ ? harmony_->feed(delta, false) : impl_->run(delta, false);
}
std::vector<OutputEvent> OutputParser::finish() { return harmony_ ? harmony_->feed("", true) : impl_->run("", true); }

ParsedOutput parse_output(std::string_view text, const OutputParserOptions& options) {
  OutputParser parser(options);
  std::vector<OutputEvent> events = parser.feed(text);
  for (OutputEvent& e : parser.finish()) events.push_back(std::move(e));
  ParsedOutput out;
  for (OutputEvent& e : events) {
    switch (e.kind) {
      case OutputEvent::kText: out.text += e.text; break;
      case OutputEvent::kReasoning: out.reasoning += e.text; break;
      case OutputEvent::kToolCallStart: out.tool_calls.push_back({e.id, e.name, ""}); break;
      case OutputEvent::kToolCallArguments: out.tool_calls.back().arguments_json += e.text; break;
      case OutputEvent::kToolCallEnd: break;
    }
  }
  return out;
}

ToolCallFormat detect_tool_call_format(std::string_view chat_template) {
  auto has = [&](std::string_view marker) { return chat_template.find(marker) != std::string_view::npos; };
  if (has("<|channel|>")) return ToolCallFormat::kHarmony;
  if (has("<function=") && has("<parameter=")) return ToolCallFormat::kQwen3Coder;
  if (has("<tool_call>")) return ToolCallFormat::kHermes;
  if (has("[TOOL_CALLS]")) return ToolCallFormat::kMistral;
  if (has("<|python_tag|>") || has("<|start_header_id|>")) return ToolCallFormat::kLlama3;
  return ToolCallFormat::kNone;
}

std::string_view tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kQwen3Coder: return "qwen3_coder";
    case ToolCallFormat::kLlama3: return "llama3";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kHarmony: return "harmony";
  }
  return "none";
}

}  // namespace tandem::chat
