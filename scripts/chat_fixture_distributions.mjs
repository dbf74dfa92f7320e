// Chat templates published with popular models (tests/chat/templates/, see
// the README there) and the conversations each is rendered with: the plain
// chats, tool use where the template knows tools, and the template's own
// switches (reasoning effort, thinking, documents ...). Cases named error/...
// are ones the reference refuses; tandem must give the same message.
import { TOOLS, call as callObj, callStr, U, A, S, T, TRICKY, basicScenarios, addCases } from "./chat_fixture_material.mjs";

const call = callObj;

// Tool-call ids Mistral's templates accept (9 alphanumeric characters).
const ID1 = "a1B2c3D4e";
const ID2 = "Z9y8X7w6v";

// TOOLS with a description on every parameter (Hermes 3's template prints
// each one through |trim and fails on a missing description).
const DESCRIBED_TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather for a city.",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "City name, e.g. Zürich" },
          unit: { type: "string", enum: ["metric", "imperial"], description: "Units" },
          days: { type: "integer", description: "Days ahead" },
        },
        required: ["city"],
      },
    },
  },
];

// With STRING_ARGS, tool-call arguments are JSON text (OpenAI's wire form)
// instead of objects (the Hugging Face convention).
function toolScenarios(stringArgs = false) {
  const call = stringArgs ? callStr : callObj;
  return {
    tools_no_system: [U("Weather in Paris?")],
    tools_system: [S("You can call tools."), U("Weather in Paris?")],
    tool_call_flow: [
      S("You can call tools."),
      U("Weather in Paris and Tokyo?"),
      A("", { tool_calls: [call("get_weather", { city: "Paris" }, ID1), call("get_weather", { city: "東京", unit: "metric", days: 2 }, ID2)] }),
      T('{"temp": 21.5, "sky": "clear"}', { tool_call_id: ID1, name: "get_weather" }),
      T('{"temp": 18, "sky": "rain"}', { tool_call_id: ID2, name: "get_weather" }),
      A("Paris is clear at 21.5°C; Tokyo has rain at 18°C."),
      U("Thanks! Search the docs for umbrellas."),
    ],
    tool_result_last: [U("Weather?"), A("", { tool_calls: [call("get_weather", { city: "Oslo" }, ID1)] }), T("sunny", { tool_call_id: ID1, name: "get_weather" })],
    tool_call_string_args: [U("Find docs"), A("", { tool_calls: [callStr("search_docs", { query: "rain", limit: 1.5 }, ID1)] }), T("[]", { tool_call_id: ID1, name: "search_docs" }), U("Nothing?")],
    tool_call_with_text: [U("Find docs"), A("Let me search.", { tool_calls: [call("search_docs", { query: "x \"y\" \\ z", limit: 3, filters: { tags: ["a", "b"], exact: true } }, ID1)] }), T("none", { tool_call_id: ID1, name: "search_docs" })],
  };
}

// The plain chats (both add_generation_prompt values) and, with TOOLS, the
// tool scenarios, over BASE; then EXTRA cases.
// NO_TOOLS: what "tools" holds in the plain chats (null, as transformers
// passes it; [] for templates that always loop over tools).
function standardCases(base, { tools = TOOLS, noTools = null } = {}) {
  const cases = [];
  addCases(cases, basicScenarios(), { tools: noTools, ...base });
  if (tools) addCases(cases, toolScenarios(), { ...base, tools });
  cases.push({ name: "empty_messages", context: { messages: [], add_generation_prompt: true, tools: noTools, ...base } });
  return cases;
}

const think = (content, thinking) => A(content, { thinking, reasoning_content: thinking });

function gptOssCases(base) {
  const cases = standardCases(base);
  for (const effort of ["low", "high"]) {
    cases.push({ name: `reasoning_effort=${effort}`, context: { ...base, messages: [U("hi")], add_generation_prompt: true, reasoning_effort: effort } });
  }
  cases.push({ name: "builtin_tools", context: { ...base, messages: [U("Look it up")], add_generation_prompt: true, builtin_tools: ["browser", "python"], tools: TOOLS } });
  cases.push({ name: "model_identity", context: { ...base, messages: [S("Be terse."), U("hi")], add_generation_prompt: true, model_identity: "You are Tandem, a local model." } });
  cases.push({ name: "developer_and_thinking", context: { ...base, add_generation_prompt: true, messages: [{ role: "developer", content: "Answer in French." }, U("2+2?"), think("4", "Simple sum."), U("3+3?")] } });
  cases.push({ name: "thinking_last", context: { ...base, add_generation_prompt: false, messages: [U("2+2?"), think("4", "Simple sum.")] } });
  const toolCall = { thinking: "Need the tool.", tool_calls: [call("get_weather", { city: "Oslo" })] };
  cases.push({ name: "thinking_with_tool_call", context: { ...base, tools: TOOLS, add_generation_prompt: true, messages: [U("Weather?"), A("", toolCall), T("sunny")] } });
  cases.push({ name: "error/thinking_with_null_content", context: { ...base, tools: TOOLS, add_generation_prompt: true, messages: [U("Weather?"), A(null, toolCall), T("sunny")] } });
  cases.push({ name: "channel_word_in_content", context: { ...base, messages: [U("hi"), A("<|channel|>analysis")] } });
  cases.push({ name: "error/channel_in_content", context: { ...base, messages: [U("hi"), A("<|channel|>analysis<|message|>x"), U("again")] } });
  cases.push({ name: "error/channel_in_thinking", context: { ...base, messages: [U("hi"), think("a", "<|channel|>final<|message|>x"), U("again")] } });
  cases.push({ name: "error/tool_without_call", context: { ...base, messages: [U("hi"), T("result")] } });
  cases.push({ name: "error/content_and_thinking_with_tool_call", context: { ...base, tools: TOOLS, messages: [U("x"), A("text", { thinking: "t", tool_calls: [call("get_weather", { city: "Oslo" })] })] } });
  return cases;
}

// Mistral Small checks role alternation and tool-call ids; Devstral's
// (Unsloth's) template checks neither (STRICT false).
function mistralCases(base, strict) {
  const cases = standardCases(base);
  const bad = (name) => (strict ? `error/${name}` : name);
  cases.push({ name: "content_blocks", context: { ...base, add_generation_prompt: true, messages: [S([{ type: "text", text: "Be brief." }]), U([{ type: "text", text: "Hello" }, { type: "text", text: "there" }])] } });
  cases.push({ name: "tool_then_assistant", context: { ...base, tools: TOOLS, add_generation_prompt: true, messages: [U("x"), A("", { tool_calls: [call("get_weather", { city: "Oslo" }, ID1)] }), T("r", { tool_call_id: ID1 }), A("Done."), U("More?")] } });
  cases.push({ name: bad("two_users"), context: { ...base, messages: [U("a"), U("b")] } });
  cases.push({ name: bad("assistant_first"), context: { ...base, messages: [A("a")] } });
  cases.push({ name: bad("short_tool_call_id"), context: { ...base, tools: TOOLS, messages: [U("x"), A("", { tool_calls: [call("get_weather", { city: "Oslo" }, "call_1")] }), T("r", { tool_call_id: "call_1" })] } });
  cases.push({ name: "error/unknown_role", context: { ...base, messages: [U("a"), { role: "critic", content: "b" }] } });
  cases.push({ name: "error/audio_block", context: { ...base, messages: [U([{ type: "audio", data: "x" }])] } });
  return cases;
}

// Hermes 3 loops over tools in every prompt and prints every parameter's description.
function hermesCases(base) {
  const cases = standardCases(base, { tools: DESCRIBED_TOOLS, noTools: [] });
  cases.push({ name: "error/no_tools", context: { ...base, messages: [U("hi")], add_generation_prompt: true, tools: null } });
  cases.push({ name: "error/parameter_without_description", context: { ...base, messages: [U("hi")], add_generation_prompt: true, tools: TOOLS } });
  return cases;
}

function thinkingSwitchCases(base, key, values) {
  const cases = standardCases(base);
  for (const v of values) {
    cases.push({ name: `${key}=${v}`, context: { ...base, messages: [S("sys"), U("hi")], add_generation_prompt: true, [key]: v } });
    cases.push({ name: `${key}=${v}/history`, context: { ...base, messages: [U("q1"), A("<think>r1</think>a1"), U("q2")], add_generation_prompt: true, [key]: v } });
  }
  return cases;
}

// DeepSeek V3.1 concatenates tool-call arguments to strings: with objects the
// reference prints "[object Map]" (tandem refuses, see chat_template_test);
// tandem's server passes JSON text to such templates (PromptBuilder).
function deepseekV31Cases(base) {
  const cases = thinkingSwitchCases(base, "thinking", [true, false]);
  for (const [name, messages] of Object.entries(toolScenarios(true))) {
    cases.push({ name: `string_args/${name}`, context: { ...base, tools: TOOLS, messages, add_generation_prompt: true } });
  }
  return cases;
}

function graniteCases(base) {
  const cases = standardCases(base);
  const documents = [{ doc_id: 1, title: "Umbrellas", text: "Umbrellas keep you dry." }, { doc_id: 2, title: "Rain", text: "Rain falls from clouds." }];
  cases.push({ name: "thinking", context: { ...base, messages: [U("Why is the sky blue?")], add_generation_prompt: true, thinking: true } });
  cases.push({ name: "documents", context: { ...base, messages: [U("What keeps me dry?")], add_generation_prompt: true, documents } });
  cases.push({ name: "documents_and_tools", context: { ...base, messages: [U("What keeps me dry?")], add_generation_prompt: true, documents, tools: TOOLS } });
  cases.push({ name: "controls", context: { ...base, messages: [U("Cite it")], add_generation_prompt: true, documents, controls: { citations: true, hallucinations: true, length: "short" } } });
  return cases;
}

function nemotronCases(base) {
  const cases = standardCases(base);
  for (const sys of ["/think", "/no_think", "Be brief. /no_think"]) {
    cases.push({ name: `system=${sys}`, context: { ...base, messages: [S(sys), U("hi"), A("<think>r</think>a"), U("again")], add_generation_prompt: true } });
  }
  for (const v of [true, false]) cases.push({ name: `enable_thinking=${v}`, context: { ...base, messages: [U("hi")], add_generation_prompt: true, enable_thinking: v } });
  return cases;
}

function seedOssCases(base) {
  const cases = standardCases(base);
  for (const budget of [0, 512, -1]) {
    cases.push({ name: `thinking_budget=${budget}`, context: { ...base, messages: [U("hi")], add_generation_prompt: true, thinking_budget: budget } });
  }
  cases.push({ name: "reasoning_history", context: { ...base, messages: [U("2+2?"), A("4", { reasoning_content: "Simple sum." }), U("3+3?")], add_generation_prompt: true } });
  return cases;
}

function reasoningHistoryCases(base) {
  const cases = standardCases(base);
  cases.push({ name: "think_history", context: { ...base, messages: [U("q1"), A("<think>\nr1\n</think>\n\na1"), U("q2")], add_generation_prompt: true } });
  cases.push({ name: "tricky_tools", context: { ...base, tools: TOOLS, messages: [S(TRICKY), U(TRICKY)], add_generation_prompt: true } });
  return cases;
}

// [fixture name, template file, bos, eos, case builder]
const TEMPLATES = [
  ["gpt_oss", "openai-gpt-oss-120b.jinja", "<|startoftext|>", "<|return|>", gptOssCases],
  ["mistral_small_3_2", "Mistral-Small-3.2-24B-Instruct-2506.jinja", "<s>", "</s>", (b) => mistralCases(b, true)],
  ["devstral", "unsloth-mistral-Devstral-Small-2507.jinja", "<s>", "</s>", (b) => mistralCases(b, false)],
  ["qwen2_5", "Qwen-Qwen2.5-7B-Instruct.jinja", null, "<|im_end|>", reasoningHistoryCases],
  ["qwq", "Qwen-QwQ-32B.jinja", null, "<|im_end|>", reasoningHistoryCases],
  ["deepseek_v3_1", "deepseek-ai-DeepSeek-V3.1.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", deepseekV31Cases],
  ["kimi_k2", "moonshotai-Kimi-K2.jinja", "[BOS]", "[EOS]", reasoningHistoryCases],
  ["hermes3", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "<|begin_of_text|>", "<|im_end|>", hermesCases],
  ["phi3_5", "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>", (b) => standardCases(b, { tools: false })],
  ["granite3_3", "ibm-granite-granite-3.3-2B-Instruct.jinja", "<|end_of_text|>", "<|end_of_text|>", graniteCases],
  ["functionary3_2", "meetkai-functionary-medium-v3.2.jinja", "<|begin_of_text|>", "<|eot_id|>", reasoningHistoryCases],
  ["nemotron_nano_v2", "NVIDIA-Nemotron-Nano-v2.jinja", "<SPECIAL_10>", "<SPECIAL_12>", nemotronCases],
  ["seed_oss", "ByteDance-Seed-OSS.jinja", "<seed:bos>", "<seed:eos>", seedOssCases],
];

// {name, file, bos, eos, cases} for each distribution template.
export function distributionTemplates() {
  return TEMPLATES.map(([name, file, bos, eos, build]) => ({ name, file, bos, eos, cases: build({ bos_token: bos, eos_token: eos }) }));
}
