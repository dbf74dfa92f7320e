// The A2A protocol with the real @a2a-js/sdk client (protocol 1.0 over
// JSON-RPC) against a real tandem serving two agents.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ClientFactory } from '@a2a-js/sdk/client';
import { Role, TaskState } from '@a2a-js/sdk';
import { TaskNotCancelableError, TaskNotFoundError } from '@a2a-js/sdk/errors';
import { startTandem } from './tandem_server.mjs';

let server;      // short answers
let slowServer;  // answers that run long enough to cancel
const scratch = process.env.TANDEM_SCRATCH;

function agentArgs() {
  mkdirSync(scratch, { recursive: true });
  const planner = path.join(scratch, 'planner.txt');
  const writer = path.join(scratch, 'writer.txt');
  writeFileSync(planner, 'Plans the work: splits a request into short numbered steps.\nAnswer with a plan only.');
  writeFileSync(writer, 'Writes the final text from a plan.\nAnswer in plain prose.');
  return ['--a2a-agent', `planner=${planner}`, '--a2a-agent', `writer=${writer}`];
}

before(async () => {
  server = await startTandem([...agentArgs(), '--max-tokens-cap', '12']);
  slowServer = await startTandem([...agentArgs(), '--max-tokens-cap', '100000', '--logit-bias', '<|im_end|>=-100',
    '--cache-dir', path.join(scratch, 'kv-cache-slow')]);
});

after(async () => {
  assert.equal(await server.stop(), 0);
  assert.equal(await slowServer.stop(), 0);
});

const userMessage = (text, extra = {}) => ({
  message: { messageId: randomUUID(), role: Role.ROLE_USER, parts: [{ content: { $case: 'text', value: text } }], ...extra },
});
const textOf = (parts) => parts.map((p) => (p.content?.$case === 'text' ? p.content.value : p.text ?? '')).join('');
const client = (base, agent) => new ClientFactory().createFromUrl(agent ? `${base}/a2a/${agent}/` : base);

// A raw JSON-RPC call (what the SDK would not send).
async function rpc(base, body, raw = false) {
  const res = await fetch(`${base}/a2a`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: raw ? body : JSON.stringify(body) });
  assert.equal(res.status, 200);
  return res.json();
}

test('agent card: one skill per agent, streaming, the JSON-RPC interface', async () => {
  const res = await fetch(`${server.url}/.well-known/agent-card.json`);
  assert.equal(res.status, 200);
  const card = await res.json();
  assert.deepEqual(card.skills.map((s) => s.id), ['planner', 'writer']);
  assert.equal(card.skills[0].description, 'Plans the work: splits a request into short numbered steps.');
  assert.equal(card.capabilities.streaming, true);
  assert.equal(card.supportedInterfaces[0].protocolBinding, 'JSONRPC');
  assert.equal(card.supportedInterfaces[0].url, `${server.url}/a2a`);
  const c = await client(server.url, 'writer');
  const writerCard = await c.getAgentCard();
  assert.equal(writerCard.name, 'writer');
  assert.equal(writerCard.supportedInterfaces[0].url, `${server.url}/a2a/writer`);
  assert.equal((await fetch(`${server.url}/a2a/nobody/.well-known/agent-card.json`)).status, 404);
});

test('send (blocking): a completed task with the answer as an artifact', async () => {
  const c = await client(server.url);
  const task = await c.sendMessage(userMessage('Plan a birthday party.'));
  assert.equal(task.status.state, TaskState.TASK_STATE_COMPLETED, JSON.stringify(task));
  assert.ok(task.contextId.length > 0);
  assert.equal(task.artifacts.length, 1);
  const answer = textOf(task.artifacts[0].parts);
  assert.ok(answer.length > 0);
  assert.equal(textOf(task.status.message.parts), answer);
  assert.equal(task.metadata.agent, 'planner');  // /a2a answers as the first agent
  assert.equal(task.metadata.usage.generated_tokens, 12);
  // GetTask finds it; historyLength trims the history to the last messages.
  const got = await c.getTask({ id: task.id, historyLength: 1 });
  assert.equal(got.status.state, TaskState.TASK_STATE_COMPLETED);
  assert.equal(got.history.length, 1);
  assert.equal(got.history[0].role, Role.ROLE_AGENT);
  assert.equal((await c.getTask({ id: task.id })).history.length, 2);
});

test('send (returnImmediately): the task runs on and GetTask sees it finish', async () => {
  const c = await client(server.url);
  const task = await c.sendMessage({ ...userMessage('Plan a trip.'), configuration: { returnImmediately: true } });
  assert.ok([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING].includes(task.status.state));
  let got;
  for (let i = 0; i < 200; ++i) {
    got = await c.getTask({ id: task.id });
    if (got.status.state === TaskState.TASK_STATE_COMPLETED) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(got.status.state, TaskState.TASK_STATE_COMPLETED);
});

test('stream: task, working, the answer in chunks, completed, in that order', async () => {
  const c = await client(server.url, 'writer');
  const kinds = [];
  let streamed = '';
  let last;
  for await (const ev of c.sendMessageStream(userMessage('Write one sentence.'))) {
    const { $case, value } = ev.payload;
    kinds.push($case === 'statusUpdate' ? `status:${value.status.state}` : $case);
    if ($case === 'artifactUpdate') streamed += textOf(value.artifact.parts);
    last = value;
  }
  assert.equal(kinds[0], 'task');
  assert.equal(kinds[1], `status:${TaskState.TASK_STATE_WORKING}`);
  assert.equal(kinds.at(-1), `status:${TaskState.TASK_STATE_COMPLETED}`);
  assert.ok(kinds.slice(2, -1).every((k) => k === 'artifactUpdate') && kinds.length > 3, kinds.join(' '));
  const task = await c.getTask({ id: last.taskId });
  assert.equal(textOf(task.artifacts[0].parts), streamed);
  assert.equal(task.metadata.agent, 'writer');
});

test('cancel: a running task stops and says canceled; a finished one cannot be', async () => {
  const c = await client(slowServer.url);
  const task = await c.sendMessage({ ...userMessage('Talk for a long time.'), configuration: { returnImmediately: true } });
  await new Promise((r) => setTimeout(r, 300));
  const canceled = await c.cancelTask({ id: task.id });
  assert.equal(canceled.status.state, TaskState.TASK_STATE_CANCELED);
  const got = await c.getTask({ id: task.id });
  assert.equal(got.status.state, TaskState.TASK_STATE_CANCELED);
  assert.ok(got.metadata.usage.generated_tokens < 100000);
  await assert.rejects(c.cancelTask({ id: task.id }), TaskNotCancelableError);
});

test('a context is a session: its second turn is served from the cache', async () => {
  const c = await client(server.url, 'planner');
  const first = await c.sendMessage(userMessage('Plan a garden. '.repeat(40)));
  const second = await c.sendMessage(userMessage('Now shorter.', { contextId: first.contextId }));
  assert.equal(second.contextId, first.contextId);
  assert.equal(second.status.state, TaskState.TASK_STATE_COMPLETED);
  const u1 = first.metadata.usage, u2 = second.metadata.usage;
  // The second prompt holds the first turn (prompt and answer): all of it comes from the cache.
  assert.ok(u2.prompt_tokens > u1.prompt_tokens, JSON.stringify([u1, u2]));
  assert.ok(u2.cached_tokens >= u1.prompt_tokens, JSON.stringify([u1, u2]));
  // Another agent cannot continue this context.
  const writer = await client(server.url, 'writer');
  await assert.rejects(writer.sendMessage(userMessage('Hi', { contextId: first.contextId })), /belongs to agent/);
});

test('errors: the protocol\'s codes for bad calls', async () => {
  assert.equal((await rpc(server.url, '{not json', true)).error.code, -32700);
  assert.equal((await rpc(server.url, { jsonrpc: '1.0', id: 1, method: 'GetTask' })).error.code, -32600);
  assert.equal((await rpc(server.url, { jsonrpc: '2.0', id: 2, method: 'NoSuchMethod' })).error.code, -32601);
  const noMessage = await rpc(server.url, { jsonrpc: '2.0', id: 3, method: 'SendMessage', params: {} });
  assert.equal(noMessage.error.code, -32602);
  assert.equal(noMessage.id, 3);
  const file = await rpc(server.url, { jsonrpc: '2.0', id: 4, method: 'SendMessage',
    params: { message: { messageId: 'm', role: 'ROLE_USER', parts: [{ url: 'http://x/y.png' }] } } });
  assert.equal(file.error.code, -32005);
  const push = await rpc(server.url, { jsonrpc: '2.0', id: 5, method: 'CreateTaskPushNotificationConfig', params: {} });
  assert.equal(push.error.code, -32004);
  const c = await client(server.url);
  await assert.rejects(c.getTask({ id: 'no-such-task' }), TaskNotFoundError);
});

test('the 0.3 dialect: message/send and tasks/get with kind fields and lowercase states', async () => {
  const sent = await rpc(server.url, { jsonrpc: '2.0', id: 'a', method: 'message/send', params: {
    message: { kind: 'message', messageId: 'm1', role: 'user', parts: [{ kind: 'text', text: 'hi' }] },
    configuration: { blocking: true } } });
  assert.equal(sent.result.kind, 'task');
  assert.equal(sent.result.status.state, 'completed');
  assert.equal(sent.result.artifacts[0].parts[0].kind, 'text');
  const got = await rpc(server.url, { jsonrpc: '2.0', id: 'b', method: 'tasks/get', params: { id: sent.result.id } });
  assert.equal(got.result.history[0].role, 'user');
});

test('delegation: the planner\'s answer handed to the writer (docs/A2A.md)', async () => {
  const planner = await client(server.url, 'planner');
  const writer = await client(server.url, 'writer');
  const plan = await planner.sendMessage(userMessage('Plan a short note to a neighbour.'));
  const planText = textOf(plan.artifacts[0].parts);
  const note = await writer.sendMessage(userMessage(`Write the note from this plan:\n${planText}`));
  assert.equal(note.status.state, TaskState.TASK_STATE_COMPLETED);
  assert.notEqual(note.contextId, plan.contextId);
  assert.equal(note.metadata.agent, 'writer');
  assert.equal(note.history[0].parts.length, 1);
  assert.ok(textOf(note.history[0].parts).includes(planText));
});
