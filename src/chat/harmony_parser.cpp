#include "chat/harmony_parser.h"

#include "chat/output_events.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace tandem::chat {
namespace {

constexpr std::string_view kMessage = "<|message|>";
constexpr std::string_view kChannel = "<|channel|>";
constexpr std::string_view kStart = "<|start|>";
// What ends a message's content ("<|start|>" only when the model left out <|end|>).
constexpr std::array<std::string_view, 4> kEnds = {"<|end|>", "<|return|>", "<|call|>", "<|start|>"};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// True when S could still grow into something starting with P.
bool may_become(std::string_view s, std::string_view p) {
  return s.size() < p.size() ? starts_with(p, s) : starts_with(s, p);
}

// The word after KEY in HEADER (up to a space or '<'), "" when KEY is absent.
std::string word_after(std::string_view header, std::string_view key) {
  const size_t at = header.find(key);
  if (at == std::string_view::npos) return "";
  const size_t from = at + key.size();
  const size_t to = header.find_first_of(" <", from);
  return std::string(header.substr(from, to == std::string_view::npos ? std::string_view::npos : to - from));
}

}  // namespace

HarmonyParser::HarmonyParser(const OutputParserOptions& options) : options_(options), rng_(detail::random_seed()) {}

std::vector<OutputEvent> HarmonyParser::feed(std::string_view delta, bool at_end) {
  std::vector<OutputEvent> events;
  if (finished_) return events;
  out_ = &events;
  buf_.append(delta);
  while (step(at_end)) {}
  out_ = nullptr;
  finished_ = at_end;
  return events;
}

bool HarmonyParser::step(bool at_end) { return state_ == State::kHeader ? step_header(at_end) : step_content(at_end); }

void HarmonyParser::emit(OutputEvent::Kind kind, std::string_view text) { detail::append_text(*out_, kind, text); }

void HarmonyParser::emit_tool_call(const std::string& raw) {
  auto args = nlohmann::ordered_json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (!args.is_object()) {
    emit(OutputEvent::kText, raw);  // not a call after all: keep what the model wrote
    return;
  }
  detail::append_tool_call(*out_, detail::new_tool_call_id(options_, rng_), tool_name_,
                           args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool HarmonyParser::step_header(bool at_end) {
  if (buf_.empty()) return false;
  // Plain text where a header should be (a model that skips the format): text.
  if (!may_become(buf_, "<|") && !may_become(buf_, " to=")) {
    state_ = State::kContent;
    route_ = Route::kText;
    return true;
  }
  const size_t m = buf_.find(kMessage);
  if (m == std::string::npos) {
    // An unfinished header carries no content: dropped at the end.
    if (at_end) buf_.clear();
    return false;
  }
  std::string_view header = std::string_view(buf_).substr(0, m);
  if (starts_with(header, kStart)) header.remove_prefix(kStart.size());
  const std::string channel = word_after(header, kChannel);
  const std::string recipient = word_after(header, "to=");
  if (starts_with(recipient, "functions.")) {
    route_ = Route::kTool;
    tool_name_ = recipient.substr(10);
  } else if (!recipient.empty() && recipient != "user" && recipient != "all") {
    route_ = Route::kTool;  // a built-in tool (browser, python): its own name
    tool_name_ = recipient;
  } else {
    route_ = channel == "analysis" ? Route::kReasoning : Route::kText;
  }
  args_.clear();
  buf_.erase(0, m + kMessage.size());
  state_ = State::kContent;
  return true;
}

bool HarmonyParser::step_content(bool at_end) {
  // The first end marker, if any.
  size_t end = std::string::npos;
  std::string_view marker;
  for (std::string_view e : kEnds) {
    const size_t at = buf_.find(e);
    if (at < end) end = at, marker = e;
  }
  size_t ready = end;
  if (end == std::string::npos) {
    // Hold back a suffix that may still become a marker.
    ready = buf_.size();
    if (!at_end) {
      const size_t lt = buf_.rfind('<');
      if (lt != std::string::npos &&
          std::any_of(kEnds.begin(), kEnds.end(), [&](std::string_view e) { return may_become(buf_.substr(lt), e); })) {
        ready = lt;
      }
    }
  }
  const std::string piece = buf_.substr(0, ready);
  if (route_ == Route::kTool) {
    args_ += piece;
  } else {
    emit(route_ == Route::kReasoning ? OutputEvent::kReasoning : OutputEvent::kText, piece);
  }
  buf_.erase(0, ready);
  const bool message_over = end != std::string::npos || at_end;
  if (!message_over) return false;
  if (route_ == Route::kTool) emit_tool_call(args_);
  args_.clear();
  if (end != std::string::npos && marker != kStart) buf_.erase(0, marker.size());
  state_ = State::kHeader;
  return !buf_.empty();
}

}  // namespace tandem::chat
