// gpt-oss harmony output (chat/harmony_parser.h): channels to reasoning,
// text and tool calls, streamed safely at every split point.
#include "chat/output_parser.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tandem::chat {
namespace {

OutputParserOptions harmony() {
  OutputParserOptions o;
  o.format = ToolCallFormat::kHarmony;
  o.tool_id_prefix = "call_";
  return o;
}

// The events of TEXT fed in pieces cut at CUTS, with adjacent text and
// reasoning events merged (their split depends on the cuts).
std::vector<OutputEvent> run(const std::string& text, const std::vector<size_t>& cuts) {
  OutputParser p(harmony());
  std::vector<OutputEvent> all;
  size_t at = 0;
  auto add = [&](std::vector<OutputEvent> ev) {
    for (auto& e : ev) {
      if (!all.empty() && all.back().kind == e.kind &&
          (e.kind == OutputEvent::kText || e.kind == OutputEvent::kReasoning)) {
        all.back().text += e.text;
      } else {
        all.push_back(std::move(e));
      }
    }
  };
  for (size_t c : cuts) {
    add(p.feed(text.substr(at, c - at)));
    at = c;
  }
  add(p.feed(text.substr(at)));
  add(p.finish());
  return all;
}

std::string describe(const std::vector<OutputEvent>& events) {
  std::string s;
  for (const auto& e : events) {
    switch (e.kind) {
      case OutputEvent::kText: s += "T[" + e.text + "]"; break;
      case OutputEvent::kReasoning: s += "R[" + e.text + "]"; break;
      case OutputEvent::kToolCallStart: s += "C[" + e.name + "]"; break;
      case OutputEvent::kToolCallArguments: s += "A[" + e.text + "]"; break;
      case OutputEvent::kToolCallEnd: s += "E"; break;
    }
  }
  return s;
}

// Every way of cutting TEXT in two and in three gives WANT.
void expect_everywhere(const std::string& text, const std::string& want) {
  EXPECT_EQ(describe(run(text, {})), want) << "whole";
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(describe(run(text, {i})), want) << "cut at " << i;
    for (size_t j = i; j <= text.size(); j += 7)
      ASSERT_EQ(describe(run(text, {i, j})), want) << "cuts " << i << "," << j;
  }
}

TEST(Harmony, ReasoningThenAnswer) {
  expect_everywhere(
      "<|channel|>analysis<|message|>User says hi. Answer briefly.<|end|>"
      "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?",
      "R[User says hi. Answer briefly.]T[Hello! How can I help?]");
}

TEST(Harmony, ToolCallWithConstraint) {
  expect_everywhere(
      "<|channel|>analysis<|message|>Need the weather.<|end|>"
      "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
      "<|message|>{\"city\": \"Paris\", \"days\": 2}",
      "R[Need the weather.]C[get_weather]A[{\"city\":\"Paris\",\"days\":2}]E");
}

TEST(Harmony, RecipientBeforeTheChannel) {
  expect_everywhere(" to=functions.search<|channel|>commentary json<|message|>{\"q\":\"a<b\"}",
                    "C[search]A[{\"q\":\"a<b\"}]E");
}

TEST(Harmony, PreambleToTheUserIsText) {
  expect_everywhere(
      "<|channel|>commentary<|message|>Let me look that up.<|end|>"
      "<|start|>assistant<|channel|>commentary to=functions.lookup<|message|>{}",
      "T[Let me look that up.]C[lookup]A[{}]E");
}

TEST(Harmony, MarkersInsideContentAreNotTakenForText) {
  // A '<' that is not a marker is text; "<|" pieces are held until decided.
  expect_everywhere("<|channel|>final<|message|>a < b and <|x|> too<|end|>", "T[a < b and <|x|> too]");
}

TEST(Harmony, WhatCannotBeParsedStaysVisible) {
  EXPECT_EQ(describe(run("Plain text from a model that skips the format.", {})),
            "T[Plain text from a model that skips the format.]");
  EXPECT_EQ(describe(run("<|channel|>commentary to=functions.f<|message|>not json", {5})), "T[not json]")
      << "arguments that are not a JSON object come back as text";
  EXPECT_EQ(describe(run("<|channel|>final<|message|>cut off mid-answ", {12})), "T[cut off mid-answ]");
  EXPECT_EQ(describe(run("<|channel|>analysis<|mess", {})), "") << "an unfinished header carries nothing";
}

TEST(Harmony, CallIdsAndDetection) {
  OutputParserOptions o = harmony();
  o.make_id = [] { return std::string("abcDEF123"); };
  const auto parsed = parse_output("<|channel|>commentary to=functions.f<|message|>{\"a\":1}", o);
  ASSERT_EQ(parsed.tool_calls.size(), 1u);
  EXPECT_EQ(parsed.tool_calls[0].id, "abcDEF123");
  EXPECT_EQ(parsed.tool_calls[0].name, "f");
  EXPECT_EQ(parsed.tool_calls[0].arguments_json, "{\"a\":1}");
  EXPECT_EQ(detect_tool_call_format("{{- '<|start|>assistant<|channel|>final<|message|>' }}"),
            ToolCallFormat::kHarmony);
  EXPECT_EQ(tool_call_format_name(ToolCallFormat::kHarmony), "harmony");
}

}  // namespace
}  // namespace tandem::chat
