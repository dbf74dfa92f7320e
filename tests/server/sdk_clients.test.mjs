// The real Anthropic and OpenAI SDKs against a real tandem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startTandem } from './tandem_server.mjs';

let server;
let anthropic;
let openai;
const KEY = 'sk-test-key';

before(async () => {
  server = await startTandem(['--api-key', KEY, '--model-alias', 'claude-sonnet-4-5', '--model-alias', 'gpt-4o-mini']);
  anthropic = new Anthropic({ baseURL: server.url, apiKey: KEY, maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  assert.equal(await server.stop(), 0, 'tandem exits cleanly on SIGTERM');
});

const tools = [{
  name: 'read_file',
  description: 'Read a file',
  input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
}];

test('anthropic: messages.create', async () => {
  const msg = await anthropic.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 8, system: 'You are terse.',
    messages: [{ role: 'user', content: 'Say hello' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.ok(msg.id.startsWith('msg_'));
  assert.ok(Array.isArray(msg.content) && msg.content.length >= 1);
  assert.ok(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use'].includes(msg.stop_reason));
  assert.ok(msg.usage.input_tokens + msg.usage.cache_read_input_tokens > 5);
  assert.ok(msg.usage.output_tokens >= 1 && msg.usage.output_tokens <= 8);
});

test('anthropic: messages.stream event order and indexes', async () => {
  const stream = anthropic.messages.stream({
    model: 'claude-sonnet-4-5', max_tokens: 12, messages: [{ role: 'user', content: 'Tell a story' }],
  });
  const events = [];
  for await (const ev of stream) events.push(ev);
  const final = await stream.finalMessage();
  assert.equal(events[0].type, 'message_start');
  assert.equal(events.at(-1).type, 'message_stop');
  assert.equal(events.at(-2).type, 'message_delta');
  let expected = 0;
  let open = null;
  for (const ev of events) {
    if (ev.type === 'content_block_start') { assert.equal(open, null); assert.equal(ev.index, expected); open = ev.index; }
    if (ev.type === 'content_block_delta') assert.equal(ev.index, open);
    if (ev.type === 'content_block_stop') { assert.equal(ev.index, open); open = null; expected++; }
  }
  assert.equal(open, null);
  assert.equal(final.content.length, expected);
  assert.ok(final.usage.output_tokens >= 1);
});

test('anthropic: tool round trip (tool_use -> tool_result -> answer)', async () => {
  const msg = await anthropic.messages.create({
    model: 'claude-sonnet-4-5', max_tokens: 8, tools,
    messages: [
      { role: 'user', content: 'What is in notes.txt?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'read_file', input: { path: 'notes.txt' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'buy milk' }] },
    ],
  });
  assert.equal(msg.type, 'message');
  assert.ok(msg.content.length >= 1);
  for (const block of msg.content) {
    assert.ok(['text', 'thinking', 'tool_use'].includes(block.type));
    if (block.type === 'tool_use') assert.equal(typeof block.input, 'object');
  }
});

test('anthropic: count_tokens matches the prompt the model sees', async () => {
  const body = { model: 'claude-sonnet-4-5', system: 'Count me.', tools, messages: [{ role: 'user', content: 'one two three' }] };
  const { input_tokens } = await anthropic.messages.countTokens(body);
  assert.ok(input_tokens > 20);
  const msg = await anthropic.messages.create({ ...body, max_tokens: 1 });
  assert.equal(msg.usage.input_tokens + msg.usage.cache_read_input_tokens, input_tokens);
});

test('anthropic: models.list', async () => {
  const ids = [];
  for await (const m of anthropic.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['qwen3-tiny', 'claude-sonnet-4-5', 'gpt-4o-mini']);
});

test('anthropic: error types for 400, 401, 404', async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.status === 400 && e.error.error.type === 'invalid_request_error');
  const wrongKey = new Anthropic({ baseURL: server.url, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(
    wrongKey.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.error.error.type === 'authentication_error');
  await assert.rejects(
    anthropic.messages.create({ model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.error.error.type === 'not_found_error');
});

test('openai: chat.completions.create', async () => {
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
});

test('openai: chat stream with include_usage', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini', max_tokens: 10, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Count to five' }],
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const finish = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.equal(finish.length, 1);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens >= 1);
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
});

test('openai: tools history and tool definitions', async () => {
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini', max_tokens: 8,
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ],
  });
  assert.equal(r.choices[0].message.role, 'assistant');
});

test('openai: completions and models', async () => {
  const r = await openai.completions.create({ model: 'gpt-4o-mini', prompt: 'Once upon a time', max_tokens: 4 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens <= 4);
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('gpt-4o-mini'));
});

test('openai: error shapes', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o-mini', n: 3, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.error.type === 'invalid_request_error' && e.error.param === 'n');
  const wrongKey = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrongKey.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test('openai: responses.create (Codex CLI API)', async () => {
  const r = await openai.responses.create({
    model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Say hi', max_output_tokens: 6, prompt_cache_key: 'sess-1',
  });
  assert.equal(r.object, 'response');
  assert.ok(['completed', 'incomplete'].includes(r.status));
  assert.equal(typeof r.output_text, 'string');
  assert.equal(r.output.at(-1).type, 'message');
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  assert.equal(typeof r.usage.input_tokens_details.cached_tokens, 'number');
});

test('openai: responses stream with tool history', async () => {
  const stream = openai.responses.stream({
    model: 'gpt-4o-mini', max_output_tokens: 8, stream: true,
    tools: [{ type: 'function', name: 'shell', description: 'Run a command', parameters: { type: 'object', properties: { cmd: { type: 'string' } } } },
      { type: 'web_search' }],
    input: [
      { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'You are a coding agent.' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'List files' }] },
      { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{"cmd":"ls"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'a.txt b.txt' },
    ],
  });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  const final = await stream.finalResponse();
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed', types.join(' '));
  assert.ok(types.includes('response.output_item.added') && types.includes('response.output_item.done'));
  assert.ok(final.output.length >= 1);
  assert.ok(final.usage.output_tokens >= 1);
  await assert.rejects(openai.responses.create({ model: 'gpt-4o-mini', input: [{ type: 'bogus' }] }),
    (e) => e instanceof OpenAI.BadRequestError && /unknown input item type 'bogus'/.test(e.message));
});
