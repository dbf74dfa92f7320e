// The real Codex CLI (`codex exec`, offline, a custom provider on
// /v1/responses) against a real tandem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startTandem } from './tandem_server.mjs';

const codexBin = path.join(process.env.TANDEM_SOURCE_DIR, 'node_modules/.bin/codex');
let server;
let codexHome;
let workDir;

before(async () => {
  // A few tokens per answer keep a random-weight model fast.
  server = await startTandem(['--max-tokens-cap', '8', '--model-name', 'qwen3-tiny']);
  mkdirSync(process.env.TANDEM_SCRATCH, { recursive: true });
  codexHome = mkdtempSync(path.join(process.env.TANDEM_SCRATCH, 'codex-home-'));
  workDir = mkdtempSync(path.join(process.env.TANDEM_SCRATCH, 'codex-work-'));
  writeFileSync(path.join(codexHome, 'config.toml'), [
    'model = "qwen3-tiny"',
    'model_provider = "tandem"',
    '',
    '[model_providers.tandem]',
    'name = "tandem"',
    `base_url = "${server.url}/v1"`,
    'wire_api = "responses"',
    'env_key = "TANDEM_API_KEY"',
    '',
  ].join('\n'));
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

// Runs `codex exec --json [...args]`; returns its JSONL events.
function codex(args) {
  const env = { PATH: process.env.PATH, HOME: codexHome, CODEX_HOME: codexHome, TANDEM_API_KEY: 'sk-local' };
  return new Promise((resolve, reject) => {
    const child = execFile(codexBin, ['exec', '--skip-git-repo-check', '--json', ...args],
      { env, cwd: workDir, timeout: 300000, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`codex failed (${err.code}): ${stderr}\n${stdout}\n--- tandem log tail:\n${server.log().slice(-3000)}`));
        const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
        resolve(events);
      });
    child.stdin.end();  // exec also reads piped stdin: give it an empty one
  });
}

const find = (events, type) => events.find((e) => e.type === type);
const answer = (events) => events.find((e) => e.type === 'item.completed' && e.item.type === 'agent_message')?.item;

test('codex exec exits 0 with the model\'s answer', async () => {
  const events = await codex(['Say hello.']);
  const done = find(events, 'turn.completed');
  assert.ok(done, JSON.stringify(events));
  assert.equal(done.usage.output_tokens, 8, JSON.stringify(done.usage));  // --max-tokens-cap
  assert.ok(done.usage.input_tokens > 5000, 'Codex instructions and tools reach the model');
  const msg = answer(events);
  assert.ok(msg && msg.text.length > 0, JSON.stringify(events));
  assert.equal(find(events, 'turn.failed'), undefined);
});

test('three codex exec at once all finish', async () => {
  const runs = await Promise.all(['one', 'two', 'three'].map((w) => codex([`Print the word ${w}.`])));
  for (const events of runs) {
    assert.ok(find(events, 'turn.completed'), JSON.stringify(events));
    assert.ok(answer(events), JSON.stringify(events));
  }
});

test('codex exec resume: the second turn reads its instructions and tools from the cache', async () => {
  const first = await codex(['Say hello.']);
  const thread = find(first, 'thread.started').thread_id;
  const firstUsage = find(first, 'turn.completed').usage;
  const second = await codex(['resume', thread, 'And now goodbye.']);
  assert.equal(find(second, 'thread.started').thread_id, thread);
  const usage = find(second, 'turn.completed').usage;
  // A resumed thread reports its turns' usage summed: the second turn alone is the difference.
  const input = usage.input_tokens - firstUsage.input_tokens;
  const cached = usage.cached_input_tokens - firstUsage.cached_input_tokens;
  assert.ok(input > 5000, `${JSON.stringify(firstUsage)} -> ${JSON.stringify(usage)}`);
  // Everything up to the new user message is reused (the first turn's tail included).
  assert.ok(cached >= input - 40, `turn 2: ${cached} of ${input} cached`);
  // Codex sends prompt_cache_key = its session id: tandem runs the turns as one session.
  assert.match(server.log(), new RegExp(`session=${thread.slice(0, 12)}`));
});
