// Conversations the chat-template fixture generator renders: tool schemas,
// message helpers and the plain chats every template should take. Imported
// by gen_chat_template_fixtures.mjs and chat_fixture_distributions.mjs.

export const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather for a city. Units default to \"metric\".",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "City name, e.g. Zürich or 東京" },
          unit: { type: "string", enum: ["metric", "imperial"], default: "metric" },
          days: { type: "integer", minimum: 1, maximum: 7 },
        },
        required: ["city"],
      },
    },
  },
  {
    type: "function",
    function: {
      name: "search_docs",
      description: "Full-text search.\nReturns at most `limit` hits.",
      parameters: {
        type: "object",
        properties: {
          query: { type: "string" },
          limit: { type: "number", default: 2.5 },
          filters: {
            type: "object",
            properties: { tags: { type: "array", items: { type: "string" } }, exact: { type: "boolean", default: false } },
          },
          cursor: { type: ["string", "null"], default: null },
        },
        required: ["query"],
      },
    },
  },
];

export const call = (name, args, id) => ({ id: id ?? `call_${name}`, type: "function", function: { name, arguments: args } });
export const callStr = (name, args, id) => call(name, JSON.stringify(args), id);

export const U = (content) => ({ role: "user", content });
export const A = (content, extra = {}) => ({ role: "assistant", content, ...extra });
export const S = (content) => ({ role: "system", content });
export const T = (content, extra = {}) => ({ role: "tool", content, ...extra });

export const TRICKY = 'Quotes "double" and \'single\', backslash \\ and \\n literal, tab\there,\nnew line, unicode: é ß 中文 😀 עברית, {{ not_a_tag }} {% if %} <|im_end|>';

// Plain chats every template should take.
export function basicScenarios() {
  return {
    single_user: [U("Hello!")],
    system_user: [S("You are a helpful assistant."), U("What is 2+2?")],
    multi_turn: [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke."), A("Why did the chicken cross the road?"), U("Why?")],
    system_multi_turn: [S("Be brief."), U("Capital of France?"), A("Paris."), U("And of Italy?")],
    assistant_last: [U("Write a haiku."), A("Autumn moonlight—\na worm digs silently\ninto the chestnut.")],
    tricky_text: [S(TRICKY), U(TRICKY), A(TRICKY), U("ok")],
    empty_user: [U("")],
    whitespace: [S("  padded system  \n\n"), U("\n\n  padded user \t\n"), A("  answer  \n"), U(" next ")],
    unicode_only: [U("日本語のテキスト 😀🎉 — “smart quotes” … ✓")],
    json_content: [U('{"a": [1, 2.5, null], "b": {"c": "d"}}')],
    long_text: [U("lorem ipsum dolor sit amet ".repeat(40).trim())],
  };
}

// ---- per-template case lists ----

export function addCases(cases, scenarios, base, flags = [true, false]) {
  for (const [name, messages] of Object.entries(scenarios)) {
    for (const agp of flags) {
      cases.push({ name: `${name}/agp=${agp}`, context: { messages, add_generation_prompt: agp, ...base } });
    }
  }
}

