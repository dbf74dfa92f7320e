// Chat-template interpreter tests.
//
// Fixture tests replay tests/chat/fixtures/*_renders.json, written by
// scripts/gen_chat_template_fixtures.mjs with the reference implementation
// (@huggingface/jinja 0.5.11): every render must be byte-identical, every
// error must carry the reference's message. The unit tests below pin down
// language features, limits and the places where tandem deliberately differs
// from the reference.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "chat/template.h"
#include "test_util.h"

namespace tandem::chat {
namespace {

using nlohmann::ordered_json;

// The generator freezes the clock at 07 Mar 2025 08:05 (UTC).
RenderOptions fixed_clock() {
  RenderOptions o;
  o.now = [] {
    std::tm t{};
    t.tm_year = 2025 - 1900;
    t.tm_mon = 2;
    t.tm_mday = 7;
    t.tm_hour = 8;
    t.tm_min = 5;
    return t;
  };
  return o;
}

ordered_json load_fixture(const std::string& name) {
  std::ifstream in(test::source_path("tests/chat/fixtures/" + name + "_renders.json"));
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ordered_json::parse(ss.str());
}

// Where two strings first differ, with some context, for failure messages.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 40 ? i - 40 : 0;
  return "at byte " + std::to_string(i) + "\n  want: " + ordered_json(want.substr(from, 100)).dump() +
         "\n  got:  " + ordered_json(got.substr(from, 100)).dump();
}

// Checks one case; returns true when it matches the reference.
bool check_case(const ChatTemplate& tmpl, const ordered_json& c, const std::string& label) {
  auto out = tmpl.render(c.at("context"), fixed_clock());
  if (c.contains("expected")) {
    const std::string want = c.at("expected").get<std::string>();
    // Deliberate difference (template.h): a dict joined to a string is an
    // error here; the reference prints "[object Map]".
    if (want.find("[object Map]") != std::string::npos) {
      if (out.ok() || out.message() != "cannot convert ObjectValue to a string") {
        ADD_FAILURE() << label << ": the reference printed [object Map]; want the error, got "
                      << (out.ok() ? "output" : out.message());
        return false;
      }
      return true;
    }
    if (!out.ok()) {
      ADD_FAILURE() << label << ": error instead of output: " << out.message();
      return false;
    }
    if (*out != want) {
      ADD_FAILURE() << label << ": output differs " << first_difference(want, *out);
      return false;
    }
    return true;
  }
  const std::string want = c.at("error").get<std::string>();
  if (out.ok()) {
    ADD_FAILURE() << label << ": rendered, but the reference fails with: " << want;
    return false;
  }
  if (out.message() != want) {
    ADD_FAILURE() << label << ": error message differs\n  want: " << want << "\n  got:  " << out.message();
    return false;
  }
  return true;
}

void run_model_fixture(const std::string& name, size_t min_cases) {
  ordered_json fx = load_fixture(name);
  auto tmpl = ChatTemplate::parse(fx.at("template").get<std::string>());
  ASSERT_TRUE(tmpl.ok()) << tmpl.message();
  const auto& cases = fx.at("cases");
  size_t passed = 0, errors = 0;
  for (const auto& c : cases) {
    if (check_case(*tmpl, c, name + " / " + c.at("name").get<std::string>())) ++passed;
    if (c.contains("error")) ++errors;
  }
  EXPECT_GE(cases.size(), min_cases);
  std::printf("[ fixture  ] %s: %zu/%zu cases identical (%zu expected errors)\n", name.c_str(), passed, cases.size(),
              errors);
}

// Templates published with other popular models (tests/chat/templates/README.md).
const char* const kDistributionTemplates[] = {"gpt_oss", "mistral_small_3_2", "devstral",       "qwen2_5",
                                              "qwq",     "deepseek_v3_1",     "kimi_k2",        "hermes3",
                                              "phi3_5",  "granite3_3",        "functionary3_2", "nemotron_nano_v2",
                                              "seed_oss"};

// Every fixture file is replayed by one of the tests below.
TEST(ChatTemplateFixtures, AllFilesAreUsed) {
  std::set<std::string> used = {"qwen3",       "llama3_1", "llama3_1_instruct", "gemma3",
                                "deepseek_v3", "llama2",   "language"};
  used.insert(std::begin(kDistributionTemplates), std::end(kDistributionTemplates));
  for (const auto& entry : std::filesystem::directory_iterator(test::source_path("tests/chat/fixtures"))) {
    std::string file = entry.path().filename().string();
    const std::string suffix = "_renders.json";
    ASSERT_GT(file.size(), suffix.size()) << file;
    EXPECT_TRUE(used.count(file.substr(0, file.size() - suffix.size()))) << "fixture without a test: " << file;
  }
}

TEST(ChatTemplateFixtures, Qwen3) { run_model_fixture("qwen3", 30); }
TEST(ChatTemplateFixtures, Llama31) { run_model_fixture("llama3_1", 30); }
TEST(ChatTemplateFixtures, Llama31Instruct) { run_model_fixture("llama3_1_instruct", 30); }
TEST(ChatTemplateFixtures, Gemma3) { run_model_fixture("gemma3", 30); }
TEST(ChatTemplateFixtures, DeepseekV3) { run_model_fixture("deepseek_v3", 30); }
TEST(ChatTemplateFixtures, Llama2) { run_model_fixture("llama2", 30); }

class DistributionTemplate : public ::testing::TestWithParam<const char*> {};
TEST_P(DistributionTemplate, RendersAsTheReference) { run_model_fixture(GetParam(), 20); }
INSTANTIATE_TEST_SUITE_P(ChatTemplateFixtures, DistributionTemplate, ::testing::ValuesIn(kDistributionTemplates),
                         [](const auto& info) { return std::string(info.param); });

// Small templates, one feature each, rendered by the reference.
TEST(ChatTemplateFixtures, Language) {
  ordered_json fx = load_fixture("language");
  size_t passed = 0, index = 0;
  for (const auto& c : fx.at("cases")) {
    const std::string src = c.at("template").get<std::string>();
    const std::string label = "language case " + std::to_string(index++) + " " + ordered_json(src).dump();
    auto tmpl = ChatTemplate::parse(src);
    if (c.value("error_stage", "") == "parse") {
      // Syntax errors: our messages are our own (with a line number).
      EXPECT_FALSE(tmpl.ok()) << label << ": parsed, but the reference rejects it: " << c.at("error");
      if (!tmpl.ok()) ++passed;
      continue;
    }
    if (!tmpl.ok()) {
      ADD_FAILURE() << label << ": parse error: " << tmpl.message();
      continue;
    }
    if (check_case(*tmpl, c, label)) ++passed;
  }
  std::printf("[ fixture  ] language: %zu/%zu cases identical\n", passed, fx.at("cases").size());
}

// ---- unit tests ----

std::string render(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  auto tmpl = ChatTemplate::parse(src);
  if (!tmpl.ok()) return "PARSE ERROR: " + tmpl.message();
  auto out = tmpl->render(ctx, fixed_clock());
  return out.ok() ? *out : "ERROR: " + out.message();
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("a {{ 'b' }} c"), "a b c");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: the indentation before it.
  EXPECT_EQ(render("x\n  {% if true %}\n  y\n  {% endif %}\nz"), "x\n  y\nz");
  EXPECT_EQ(render("{# c #}\nx"), "x");
  // An expression tag keeps its indentation and newline.
  EXPECT_EQ(render("  {{ 'v' }}\nw"), "  v\nw");
  // One trailing newline of the source is dropped.
  EXPECT_EQ(render("t\n"), "t");
  EXPECT_EQ(render("t\n\n"), "t\n");
  // `-` strips Unicode spaces too (JS trim).
  EXPECT_EQ(render("a\xC2\xA0\xE3\x80\x80{{- 'b' }}"), "ab");
}

TEST(ChatTemplate, Printing) {
  EXPECT_EQ(render("{{ 1 }} {{ 1.0 }} {{ -0.0 }} {{ 2.50 }} {{ 1/3 }} {{ true }} {{ none }}|{{ nothing }}"),
            "1 1.0 -0.0 2.5 0.3333333333333333 true |");
  EXPECT_EQ(render("{{ x }} {{ y }} {{ z }}", {{"x", 2.0}, {"y", 1e-7}, {"z", 1e21}}), "2 1e-7 1e+21");
  EXPECT_EQ(render("{{ [1, 'a', none, {'k': true}] }}"), R"([1, "a", null, {"k": true}])");
  EXPECT_EQ(render("{{ 'a' ~ 1.0 ~ [1, 'b'] }}"), "a11,b");
}

TEST(ChatTemplate, Operators) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }}"),
            "3 -4 -1 1024 0.5 3.5");
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ [] or 'e' }} {{ 1 if 0 else 2 }}"), "x b e 2");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}"),
            "true true true true");
  // JS loose equality, as in the reference.
  EXPECT_EQ(render("{{ '1' == 1 }} {{ '' == false }} {{ none == undefined_name }} {{ [1] == [1] }}"),
            "true true true false");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ not 1 == 2 }}"), "7 9 true");
}

TEST(ChatTemplate, StringsAndSlices) {
  EXPECT_EQ(render("{{ s[::-1] }} {{ s[1:3] }} {{ s[-1] }} {{ s|length }}", {{"s", "h\xC3\xA9llo"}}),
            "oll\xC3\xA9h \xC3\xA9l o 5");
  EXPECT_EQ(render("{{ xs[::-1] }} {{ xs[1:] }} {{ xs[::2] }}", {{"xs", {1, 2, 3}}}), "[3, 2, 1] [2, 3] [1, 3]");
  EXPECT_EQ(render("{{ 'a<t>b'.split('<t>')[-1] }} {{ '  x '.strip() }} {{ 'ab'.upper() }} {{ 'xy'.startswith('x') }}"),
            "b x AB true");
  // strip(chars) trims all whitespace: the reference ignores the argument.
  EXPECT_EQ(render("[{{ s.strip('\\n') }}]", {{"s", "\n a \n"}}), "[a]");
  EXPECT_EQ(render("{{ 'hello world'|title }} {{ 'hELLO'|capitalize }}"), "Hello World HELLO");
}

TEST(ChatTemplate, Filters) {
  ordered_json ctx = {{"xs", {3, 1, 2}}, {"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(render("{{ xs|sort|join(',') }} {{ xs|first }} {{ xs|last }} {{ xs|length }} {{ xs|reverse|list }}", ctx),
            "1,2,3 3 2 3 [2, 1, 3]");
  EXPECT_EQ(render("{{ d|tojson }} {{ d|items|list }} {{ d|dictsort }}", ctx),
            R"({"b": 1, "a": 2} [["b", 1], ["a", 2]] [["a", 2], ["b", 1]])");
  EXPECT_EQ(render("{{ {'a': [1, {}]}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1,\n    {}\n  ]\n}");
  EXPECT_EQ(render("{{ 'é😀'|tojson }} {{ 'é😀'|tojson(ensure_ascii=true) }}"), "\"é😀\" \"\\u00e9\\ud83d\\ude00\"");
  EXPECT_EQ(render("{{ x|default('d') }} {{ ''|default('d', true) }} {{ '7'|int + 1 }} {{ 2|float }}"), "d d 8 2.0");
  EXPECT_EQ(render("{{ s|indent(2) }}", {{"s", "a\nb"}}), "a\n  b");
  EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
}

TEST(ChatTemplate, Tests) {
  EXPECT_EQ(render("{{ x is defined }} {{ n is none }} {{ n is not none }} {{ 's' is string }} {{ 3 is odd }} "
                   "{{ 2 is even }} {{ {} is mapping }} {{ [] is iterable }} {{ 1.5 is number }} {{ f is false }}",
                   {{"n", nullptr}, {"f", false}}),
            "false true false true true true true true true true");
}

TEST(ChatTemplate, LoopsAndScopes) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.revindex0 }} {% endfor %}",
                   {{"xs", {"a", "b"}}}),
            "1truefalse1 2falsetrue0 ");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
      "6");
  EXPECT_EQ(render("{% for x in [1, 2, 3] if x != 2 %}{{ x }}{% else %}-{% endfor %}"), "13");
  EXPECT_EQ(render("{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}"), "a=1");
  // As in the reference, an iteration ended by break/continue leaves no output.
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}<{{ x }}{% if x == 2 %}{% break %}{% endif %}>{% endfor %}"), "<1>");
}

TEST(ChatTemplate, Macros) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}"),
            "1B1243");
  EXPECT_EQ(render("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}"), "[in]");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}"),
            "ERROR: macro 'm' takes not more than 1 argument(s)");
}

TEST(ChatTemplate, StrftimeUsesInjectedClock) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %H:%M %%') }}"), "07 Mar 2025|March 08:05 %");
}

TEST(ChatTemplate, RaiseExceptionMessageIsExact) {
  EXPECT_EQ(render("{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"),
            "ERROR: Conversation roles must alternate user/assistant/user/assistant/...");
  EXPECT_EQ(render("a{% if true %}{{ raise_exception('bad ' ~ 1) }}{% endif %}"), "ERROR: bad 1");
}

TEST(ChatTemplate, RuntimeErrorsNameTheProblem) {
  EXPECT_EQ(render("{{ x|bogus }}", {{"x", {1}}}), "ERROR: Unknown ArrayValue filter: bogus");
  EXPECT_EQ(render("{{ 'x'|escape }}"), "ERROR: Unknown StringValue filter: escape");
  EXPECT_EQ(render("{{ 1 is divisible }}"), "ERROR: Unknown test: divisible");
  EXPECT_EQ(render("{{ 'a' < 'b' }}"), "ERROR: Unknown operator \"<\" between StringValue and StringValue");
  EXPECT_EQ(render("{{ none ~ 'a' }}"), "ERROR: Cannot perform operation on null values");
  EXPECT_EQ(render("{% for x in nothing %}{% endfor %}"),
            "ERROR: Expected iterable or object type in for loop: got UndefinedValue");
  EXPECT_EQ(render("{{ f() }}"), "ERROR: Cannot call something that is not a function: got UndefinedValue");
  EXPECT_EQ(render("{{ 1 // 0 }}"), "ERROR: integer division by zero");
  // Where the reference prints a JS artifact ("a[object Map]"), tandem refuses.
  EXPECT_EQ(render("{{ 'a' + {} }}"), "ERROR: cannot convert ObjectValue to a string");
}

TEST(ChatTemplate, SyntaxErrorsAreClear) {
  EXPECT_EQ(render("{% if x %}open"), "PARSE ERROR: chat template syntax error: unclosed 'if' block (line 1)");
  EXPECT_EQ(render("a\n{% for x in y %}\n{% endif %}"),
            "PARSE ERROR: chat template syntax error: unknown statement 'endif' (line 3)");
  EXPECT_EQ(render("{{ x | }}"), "PARSE ERROR: chat template syntax error: expected a filter name (line 1)");
  EXPECT_EQ(render("{{ 'open }}"), "PARSE ERROR: chat template syntax error: unterminated string literal (line 1)");
  EXPECT_EQ(render("{% break %}"), "PARSE ERROR: chat template syntax error: 'break' outside of a for loop (line 1)");
  EXPECT_EQ(render("{% include 'x' %}"),
            "PARSE ERROR: chat template syntax error: unknown statement 'include' (line 1)");
  EXPECT_EQ(render("{{ x }"), "PARSE ERROR: chat template syntax error: expected '}}', got '}' (line 1)");
  std::string deep = std::string(500, '(') + "1" + std::string(500, ')');
  EXPECT_EQ(render("{{ " + deep + " }}"),
            "PARSE ERROR: chat template syntax error: template nesting is deeper than 128 (line 1)");
}

TEST(ChatTemplate, Limits) {
  EXPECT_EQ(render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}"),
            "ERROR: chat template macro calls nest deeper than the limit");
  EXPECT_EQ(render("{% for i in range(2000000) %}{% endfor %}"),
            "ERROR: chat template ran more loop iterations than the limit");
  EXPECT_EQ(render("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"),
            "ERROR: chat template output is larger than the limit");
  RenderOptions small = fixed_clock();
  small.max_output_bytes = 10;
  auto tmpl = ChatTemplate::parse("{% for i in range(20) %}{{ i }}{% endfor %}");
  ASSERT_TRUE(tmpl.ok());
  auto out = tmpl->render(ordered_json::object(), small);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.message(), "chat template output is larger than the limit");
  // A namespace that contains itself cannot be printed forever.
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"),
            "ERROR: value is nested too deeply for tojson");
}

TEST(ChatTemplate, Context) {
  EXPECT_EQ(render("{{ range }}", {{"range", 1}}), "ERROR: Variable already declared: range");
  // ordered_json keeps key order for tojson; integral floats are integers.
  ordered_json ctx = ordered_json::parse(R"({"v": {"z": 1.0, "a": 2.5}})");
  EXPECT_EQ(render("{{ v|tojson }}", ctx), R"({"z": 1, "a": 2.5})");
  auto tmpl = ChatTemplate::parse("{{ v|tojson }}");
  ASSERT_TRUE(tmpl.ok());
  auto sorted = tmpl->render(nlohmann::json::parse(R"({"v": {"z": 1, "a": 2}})"));
  ASSERT_TRUE(sorted.ok());
  EXPECT_EQ(*sorted, R"({"a": 2, "z": 1})");
  EXPECT_EQ(render("{{ x }}", ordered_json::array()), "ERROR: chat template context must be a JSON object");
}

TEST(ChatTemplate, ParsedTemplateIsReusable) {
  auto tmpl = ChatTemplate::parse(
      "{% set n = namespace(c=0) %}{% for m in messages %}{% set n.c = n.c + 1 %}{% endfor %}{{ n.c }}");
  ASSERT_TRUE(tmpl.ok());
  ChatTemplate copy = *tmpl;
  for (int i = 0; i < 3; ++i) {
    auto out = copy.render(ordered_json{{"messages", {1, 2, 3}}});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "3");
  }
}

TEST(ChatTemplate, ChatmlFallback) {
  auto tmpl = ChatTemplate::parse(chatml_fallback_template());
  ASSERT_TRUE(tmpl.ok()) << tmpl.message();
  ordered_json ctx = ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "image"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null, "tool_calls": []},
      {"role": "user", "content": "  spaced\n"}
    ],
    "add_generation_prompt": true
  })");
  auto out = tmpl->render(ctx);
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(*out,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi there<|im_end|>\n"
            "<|im_start|>assistant\n<|im_end|>\n"
            "<|im_start|>user\n  spaced\n<|im_end|>\n"
            "<|im_start|>assistant\n");
  ctx["add_generation_prompt"] = false;
  ctx["messages"] = ordered_json::parse(R"([{"role": "user", "content": "x"}])");
  out = tmpl->render(ctx);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<|im_start|>user\nx<|im_end|>\n");
}

}  // namespace
}  // namespace tandem::chat
