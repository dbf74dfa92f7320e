// Several tandem nodes behind a real nginx with the configuration of
// deploy/nginx/tandem.conf, sharing a real redis-server: session affinity,
// and a dead node's sessions carried on by the next node from Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startTandem } from './tandem_server.mjs';

const scratch = process.env.TANDEM_SCRATCH;
// Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
const nginxBin = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
const root = process.env.TANDEM_SOURCE_DIR;
const nodes = {};
let nginx;
let redis;
let proxyUrl;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// The shipped configuration with this test's nodes and port.
function nginxConfig(ports, listen) {
  const conf = readFileSync(path.join(root, 'deploy/nginx/tandem.conf'), 'utf8');
  const servers = ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`).join('\n');
  const body = conf
    .replace(/# tandem-nodes-begin[\s\S]*# tandem-nodes-end/, servers)
    .replace(/listen 8000;/, `listen 127.0.0.1:${listen};`);
  assert.notEqual(body, conf);
  const dir = path.join(scratch, 'nginx');
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  writeFileSync(path.join(dir, 'tandem.conf'), body);
  writeFileSync(path.join(dir, 'nginx.conf'), [
    'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/logs/error.log warn;`, 'events {}', 'http {',
    '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
    `  include ${dir}/tandem.conf;`, '}', ''].join('\n'));
  return dir;
}

async function waitForPort(port) {
  for (let i = 0; i < 100; ++i) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

before(async () => {
  const redisPort = await freePort();
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--logfile', '/dev/null'], { stdio: 'ignore' });
  await waitForPort(redisPort);
  for (const name of ['a', 'b']) {
    rmSync(path.join(scratch, `kv-${name}`), { recursive: true, force: true });  // no KV from an earlier run
    nodes[name] = await startTandem(['--node-id', name, '--cache-dir', path.join(scratch, `kv-${name}`),
      '--redis', `redis://127.0.0.1:${redisPort}`]);
  }
  const listen = await freePort();
  const ports = Object.values(nodes).map((n) => Number(new URL(n.url).port));
  const dir = nginxConfig(ports, listen);
  nginx = spawn(nginxBin, ['-p', dir, '-e', path.join(dir, 'logs/error.log'), '-c', path.join(dir, 'nginx.conf'),
    '-g', 'daemon off;'], { stdio: 'inherit' });
  await waitForPort(listen);
  proxyUrl = `http://127.0.0.1:${listen}`;
});

after(async () => {
  nginx?.kill('SIGTERM');
  for (const n of Object.values(nodes)) await n.stop();
  redis?.kill('SIGKILL');
});

const conversation = (turns) => turns.flatMap((t, i) => [{ role: 'user', content: t },
  ...(i + 1 < turns.length ? [{ role: 'assistant', content: `answer ${i}` }] : [])]);

async function chat(url, session, turns, salt) {
  const body = { model: 'm', max_tokens: 6, temperature: 0, messages: conversation(turns) };
  if (salt) body.cache_salt = salt;
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': session }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return { node: res.headers.get('x-tandem-node'), text: json.choices[0].message.content, usage: json.usage };
}

test('a session stays on one node; sessions spread over the nodes', async () => {
  const seen = new Set();
  for (let s = 0; s < 12; ++s) {
    const turns = [`session ${s} starts with a long question `.repeat(20)];
    const first = await chat(proxyUrl, `agent-${s}`, turns);
    turns.push('and a follow-up');
    const second = await chat(proxyUrl, `agent-${s}`, turns);
    assert.equal(second.node, first.node, `session agent-${s} moved`);
    assert.ok(second.usage.prompt_tokens_details.cached_tokens > 100, 'the second turn finds the first one\'s KV');
    seen.add(first.node);
  }
  assert.deepEqual([...seen].sort(), ['a', 'b']);
});

test('each node names itself: x-tandem-node, its log lines, a /metrics label', async () => {
  const metrics = await (await fetch(`${nodes.a.url}/metrics`)).text();
  assert.match(metrics, /^tandem_generated_tokens_total\{node="a"\} \d+$/m);
  assert.match(metrics, /^tandem_requests_total\{node="a",route=/m);
  assert.match(nodes.a.log(), / node=a /);
});

// One /metrics counter of a node.
async function counter(node, name) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

test('a killed node: its session goes on on the next node from Redis, with the same greedy output', async () => {
  const turns = ['a question before the crash '.repeat(80)];
  const first = await chat(proxyUrl, 'survivor', turns);
  // Its blocks reach the disk tier and, through it, Redis (both in the background).
  const a = nodes[first.node];
  assert.equal((await fetch(`${a.url}/admin/cache/flush`, { method: 'POST' })).status, 200);
  for (let i = 0; i < 100; ++i) {
    if (await counter(a, 'tandem_redis_writes_total') >= await counter(a, 'tandem_disk_writes_total')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  a.kill();  // kill -9
  turns.push('the next turn');
  const next = await chat(proxyUrl, 'survivor', turns);
  const other = first.node === 'a' ? 'b' : 'a';
  assert.equal(next.node, other);
  const cached = next.usage.prompt_tokens_details.cached_tokens;
  assert.ok(cached >= 0.9 * next.usage.prompt_tokens, `${cached} of ${next.usage.prompt_tokens} from Redis`);
  assert.ok(await counter(nodes[other], 'tandem_redis_hit_tokens_total') >= cached - 32);
  // A cold run of the same prompt on that node (a salt that nothing else uses) answers the same.
  const cold = await chat(nodes[other].url, 'cold', turns, 'cold-run');
  assert.equal(cold.usage.prompt_tokens_details.cached_tokens, 0);
  assert.equal(next.text, cold.text);
});
