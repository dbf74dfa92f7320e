// Seeded fuzzing of the chat-template lexer, parser and interpreter: the real
// templates from the fixtures with random edits (spans deleted or repeated,
// Jinja fragments and raw bytes inserted), and soups of Jinja fragments.
// Templates can come from model files, so parse() and render() must return a
// value or an error for any input: no crash, no hang, bounded memory. Run
// under ASan + UBSan by ./scripts/test.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "chat/template.h"
#include "test_util.h"

namespace tandem::chat {
namespace {

using nlohmann::ordered_json;

constexpr int kIterations = 2500;

const char* const kFragments[] = {
    "{%",
    "%}",
    "{{",
    "}}",
    "{#",
    "#}",
    "{%-",
    "-%}",
    "{{-",
    "-}}",
    " if ",
    " else ",
    " elif ",
    "{% endif %}",
    " for x in ",
    "{% endfor %}",
    " in ",
    " not ",
    " is ",
    " and ",
    " or ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    ".",
    "|",
    "'",
    "\"",
    "\\",
    "\\u00e9",
    "\\x4",
    "-",
    "+",
    "*",
    "**",
    "//",
    "%",
    "~",
    "==",
    "!=",
    "<",
    "=",
    "1",
    "-1",
    "2.5",
    "none",
    "true",
    "loop",
    "messages",
    "x",
    "ns",
    "namespace(a=1)",
    "range(3)",
    "{% set x = ",
    "{% macro m(a, b=1) %}",
    "{% endmacro %}",
    "m(1)",
    "caller()",
    "{% call m(2) %}",
    "{% endcall %}",
    "{% filter upper %}",
    "{% endfilter %}",
    "{% break %}",
    "{% continue %}",
    "{% generation %}",
    "|tojson",
    "|length",
    "|items",
    "|join(', ')",
    "|selectattr('role')",
    "|map(attribute='a')",
    "[::-1]",
    "[1:]",
    ".split('x')",
    ".strip()",
    "raise_exception('boom')",
    "strftime_now('%Y')",
    "\n",
    "  ",
    "\t",
    "\xC3\xA9",
    "\xF0\x9F\x98\x80",
    "\xFF",
    "\x80",
};

std::vector<std::string> load_templates(std::vector<ordered_json>* contexts) {
  std::vector<std::string> out;
  for (const char* name : {"qwen3", "llama3_1", "llama3_1_instruct", "gemma3", "deepseek_v3", "llama2"}) {
    std::ifstream in(test::source_path(std::string("tests/chat/fixtures/") + name + "_renders.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    ordered_json fx = ordered_json::parse(ss.str());
    out.push_back(fx.at("template").get<std::string>());
    const auto& cases = fx.at("cases");
    for (size_t i = 0; i < cases.size(); i += 7) contexts->push_back(cases[i].at("context"));
  }
  out.push_back(std::string(chatml_fallback_template()));
  return out;
}

std::string mutate(std::string s, std::mt19937& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % s.size();
    const size_t len = s.empty() ? 0 : std::min<size_t>(s.size() - pos, 1 + rng() % 40);
    switch (rng() % 5) {
      case 0: s.erase(pos, len); break;
      case 1: s.insert(pos, s.substr(pos, len)); break;
      case 2: s.insert(pos, kFragments[rng() % std::size(kFragments)]); break;
      case 3:
        if (!s.empty()) s[pos] = static_cast<char>(rng() & 0xFF);
        break;
      default: s.insert(pos, s.substr(rng() % (s.size() + 1), len)); break;
    }
  }
  return s;
}

std::string soup(std::mt19937& rng) {
  std::string s;
  for (int i = 0, n = 1 + static_cast<int>(rng() % 30); i < n; ++i) s += kFragments[rng() % std::size(kFragments)];
  return s;
}

TEST(ChatTemplateFuzz, AnyInputGivesOutputOrError) {
  std::vector<ordered_json> contexts;
  const std::vector<std::string> templates = load_templates(&contexts);
  ASSERT_FALSE(contexts.empty());
  RenderOptions limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 20000;
  limits.now = [] { return std::tm{}; };
  std::mt19937 rng(1234);
  int parsed = 0, rendered = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string src = (i % 4 == 3) ? soup(rng) : mutate(templates[rng() % templates.size()], rng);
    auto tmpl = ChatTemplate::parse(src);
    if (!tmpl.ok()) {
      EXPECT_FALSE(tmpl.message().empty());
      continue;
    }
    ++parsed;
    auto out = tmpl->render(contexts[rng() % contexts.size()], limits);
    if (out.ok()) {
      ++rendered;
      EXPECT_LE(out->size(), limits.max_output_bytes);
    }
  }
  std::printf("[ fuzz     ] %d templates: %d parsed, %d rendered\n", kIterations, parsed, rendered);
  EXPECT_GT(parsed, kIterations / 10);  // the mutations keep many templates valid
}

}  // namespace
}  // namespace tandem::chat
