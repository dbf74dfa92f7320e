// Internal to the output parsers (output_parser.cpp, harmony_parser.cpp):
// how parsed output becomes OutputEvents.
#pragma once

#include "chat/output_parser.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::chat::detail {

// Appends a text or reasoning piece, merged into the last event when it is of the same kind.
inline void append_text(std::vector<OutputEvent>& out, OutputEvent::Kind kind, std::string_view text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().kind == kind) {
    out.back().text += text;
    return;
  }
  OutputEvent e;
  e.kind = kind;
  e.text = std::string(text);
  out.push_back(std::move(e));
}

// Appends a whole tool call: start (name), arguments (compact JSON), end, all with ID.
inline void append_tool_call(std::vector<OutputEvent>& out, const std::string& id, const std::string& name,
                             std::string arguments_json) {
  OutputEvent start;
  start.kind = OutputEvent::kToolCallStart;
  start.name = name;
  start.id = id;
  out.push_back(std::move(start));
  OutputEvent args;
  args.kind = OutputEvent::kToolCallArguments;
  args.text = std::move(arguments_json);
  args.id = id;
  out.push_back(std::move(args));
  OutputEvent end;
  end.kind = OutputEvent::kToolCallEnd;
  end.id = id;
  out.push_back(std::move(end));
}

// OPTIONS.make_id(), else its prefix and 24 random alphanumerics.
inline std::string new_tool_call_id(const OutputParserOptions& options, std::mt19937_64& rng) {
  if (options.make_id) return options.make_id();
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = options.tool_id_prefix;
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

// A seed for the id generator.
inline uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace tandem::chat::detail
