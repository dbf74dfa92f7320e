// The real Claude Code CLI (headless, offline) against a real tandem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { startTandem } from './tandem_server.mjs';

const claudeBin = path.join(process.env.TANDEM_SOURCE_DIR, 'node_modules/.bin/claude');
let server;
let home;

before(async () => {
  // A random-weight model seldom ends its turn by itself, and Claude Code
  // treats a max_tokens stop as an error: favour <|im_end|> so turns end.
  server = await startTandem(['--max-tokens-cap', '64', '--logit-bias', '<|im_end|>=12']);
  mkdirSync(process.env.TANDEM_SCRATCH, { recursive: true });
  home = mkdtempSync(path.join(process.env.TANDEM_SCRATCH, 'claude-home-'));
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

// Runs `claude -p PROMPT --output-format json [...extra]` and returns its parsed result.
function claude(prompt, extra = []) {
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    ANTHROPIC_BASE_URL: server.url,
    ANTHROPIC_API_KEY: 'sk-local',
    ANTHROPIC_MODEL: 'claude-sonnet-4-5',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    CI: 'true',
  };
  return new Promise((resolve, reject) => {
    const child = execFile(claudeBin, ['-p', prompt, '--output-format', 'json', ...extra],
      { env, cwd: home, timeout: 300000, maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`claude failed (${err.code}): ${stderr}\n${stdout}\n--- tandem log tail:\n${server.log().slice(-3000)}`));
        try {
          resolve(JSON.parse(stdout));
        } catch (e) {
          reject(new Error(`claude printed no JSON: ${stdout}\n${stderr}`));
        }
      });
    child.stdin.end();  // -p also reads piped stdin: give it an empty one
  });
}

test('claude -p exits 0 with a result; the second turn reads its prefix from the cache', async () => {
  const first = await claude('Say hello.');
  assert.equal(first.type, 'result');
  assert.equal(first.is_error, false, JSON.stringify(first));
  assert.equal(typeof first.result, 'string');
  const second = await claude('And now goodbye.', ['--resume', first.session_id]);
  assert.equal(second.is_error, false, JSON.stringify(second));
  // Claude Code's system prompt and tools are thousands of tokens: they come from the cache.
  assert.ok(second.usage.cache_read_input_tokens > 5000, JSON.stringify(second.usage));
});

test('three claude runs at once all finish', async () => {
  const runs = await Promise.all(['one', 'two', 'three'].map((w) => claude(`Print the word ${w}.`)));
  for (const r of runs) assert.equal(r.is_error, false, JSON.stringify(r));
});
