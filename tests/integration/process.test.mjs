// The master/worker process model: respawn, reload, stop, logs and the
// command line, tested on the real binary.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  KEY_A, auth, get, isAlive, post, runTollgate, sha256Key, startGateway, waitFor,
} from './lib.mjs';

const CHAT = { messages: [{ role: 'user', content: 'ping' }] };

test('killed_worker_is_replaced_within_a_second', async (t) => {
  const gw = await startGateway(t, { workers: 2 });
  const before = gw.workerPids();
  assert.equal(before.length, 2);
  process.kill(before[0], 'SIGKILL');
  const killedAt = Date.now();
  await waitFor(() => {
    const now = gw.workerPids();
    return now.length === 2 && !now.includes(before[0]);
  }, 1000, 'a replacement worker');
  const replacedIn = Date.now() - killedAt;
  assert.ok(replacedIn < 1000, `replaced in ${replacedIn} ms`);
  for (let i = 0; i < 10; i++) {
    assert.equal((await post(gw, '/v1/chat/completions', CHAT)).status, 200);
  }
  assert.match(gw.logs(), new RegExp(`worker ${before[0]} killed by signal 9; starting a new one`));
});

test('reload_with_broken_file_keeps_serving_old_config', async (t) => {
  const gw = await startGateway(t);
  const pids = gw.workerPids().sort();
  fs.writeFileSync(gw.configPath, 'listen: [\nteams: {');
  gw.signal('SIGHUP');
  await waitFor(() => /reload failed/.test(gw.logs()), 5000, 'reload failure');
  assert.match(gw.logs(), /tollgate\.yaml:\d+:\d+: error: /);
  assert.deepEqual(gw.workerPids().sort(), pids);
  const res = await post(gw, '/v1/chat/completions', CHAT);
  assert.equal(res.status, 200);
  assert.equal(res.body.model, 'mock-echo');
  // A file that parses but fails validation changes nothing either.
  gw.writeConfig({ defaultModel: 'no-such-model' });
  gw.signal('SIGHUP');
  await waitFor(() => (gw.logs().match(/reload failed/g) ?? []).length === 2, 5000);
  assert.match(gw.logs(), /default_model/);
  assert.equal((await post(gw, '/v1/chat/completions', CHAT)).body.model, 'mock-echo');
});

// Many clients loop through a reload that changes default_model: not one
// request may fail, and the new default shows up.
test('reload_changes_default_model_with_zero_failures', async (t) => {
  const gw = await startGateway(t, { workers: 2 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.after(() => agent.destroy());
  let stop = false;
  const seen = { ok: 0, failed: [], models: new Set() };
  const one = (useAgent) => new Promise((resolve) => {
    const body = JSON.stringify(CHAT);
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      agent: useAgent ? agent : false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length, ...auth() },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode === 200) {
          seen.ok++;
          seen.models.add(JSON.parse(text).model);
        } else {
          seen.failed.push(`${res.statusCode} ${text}`);
        }
        resolve();
      });
    });
    req.on('error', (e) => { seen.failed.push(e.message); resolve(); });
    req.end(body);
  });
  const loop = async (useAgent) => { while (!stop) await one(useAgent); };
  const loops = [true, true, true, false, false].map(loop);
  await sleep(300);
  const oldPids = gw.workerPids();
  gw.writeConfig({ defaultModel: 'other-echo' });
  gw.signal('SIGHUP');
  await waitFor(() => oldPids.every((p) => !isAlive(p)), 10000, 'old workers to exit');
  await sleep(300);
  stop = true;
  await Promise.all(loops);
  assert.deepEqual(seen.failed, []);
  assert.ok(seen.ok > 50, `only ${seen.ok} requests went through`);
  assert.deepEqual([...seen.models].sort(), ['mock-echo', 'other-echo']);
  const after = await post(gw, '/v1/chat/completions', CHAT);
  assert.equal(after.body.model, 'other-echo');
  assert.match(gw.logs(), /configuration generation 2/);
});

test('sigterm_drains_an_in_flight_stream', async (t) => {
  const gw = await startGateway(t, { streamDelay: 100 });
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth() },
    body: JSON.stringify({ model: 'slow-echo', stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight' }] }),
  });
  const reader = res.body.getReader();
  const first = await reader.read();
  assert.match(new TextDecoder().decode(first.value), /"role":"assistant"/);
  gw.signal('SIGTERM');
  let text = '';
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    text += new TextDecoder().decode(r.value);
  }
  assert.match(text, /"content":"eight"/);
  assert.match(text, /data: \[DONE\]\n\n$/);
  assert.equal(await gw.exited, 0);
  await assert.rejects(fetch(`${gw.url}/healthz`));
});

test('sigquit_stops_gracefully_and_removes_pid_file', async (t) => {
  const gw = await startGateway(t);
  const pidFile = path.join(gw.dir, 'tollgate.pid');
  assert.equal(fs.readFileSync(pidFile, 'utf8'), `${gw.pid}\n`);
  gw.signal('SIGQUIT');
  assert.equal(await gw.exited, 0);
  assert.equal(fs.existsSync(pidFile), false);
});

test('access_log_lines_and_reopen_on_sigusr1', async (t) => {
  const gw = await startGateway(t);
  const log = path.join(gw.dir, 'access.log');
  await post(gw, '/v1/chat/completions', CHAT);
  await get(gw, '/nope');
  await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').split('\n').length >= 3);
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const chat = lines.find((l) => l.path === '/v1/chat/completions');
  assert.equal(chat.method, 'POST');
  assert.equal(chat.status, 200);
  assert.equal(chat.team, 'team-a');
  assert.match(chat.request_id, /^req_/);
  assert.equal(lines.find((l) => l.path === '/nope').status, 404);
  // logrotate: rename, SIGUSR1, and new lines go to a new file.
  fs.renameSync(log, `${log}.1`);
  gw.signal('SIGUSR1');
  await waitFor(async () => {
    await get(gw, '/healthz', {});
    return fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('/healthz');
  }, 5000, 'the reopened access log');
});

test('unwritable_logs_keep_serving', async (t) => {
  const gw = await startGateway(t, {
    accessLog: '/nonexistent-dir/access.log', usageLog: '/nonexistent-dir/usage.log',
  });
  for (let i = 0; i < 3; i++) {
    assert.equal((await post(gw, '/v1/chat/completions', CHAT)).status, 200);
  }
  assert.match(gw.logs(), /access_log \/nonexistent-dir\/access.log: No such file/);
  assert.match(gw.logs(), /usage_log \/nonexistent-dir\/usage.log: No such file/);
});

test('usage_log_reopens_on_sigusr1', async (t) => {
  const gw = await startGateway(t);
  const log = path.join(gw.dir, 'usage.log');
  await post(gw, '/v1/chat/completions', CHAT);
  await waitFor(() => fs.existsSync(log), 5000, 'the usage log');
  fs.renameSync(log, `${log}.1`);
  gw.signal('SIGUSR1');
  await waitFor(async () => {
    await post(gw, '/v1/chat/completions', CHAT);
    return fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('"status":200');
  }, 5000, 'the reopened usage log');
  assert.equal(fs.readFileSync(`${log}.1`, 'utf8').trim().split('\n').length >= 1, true);
});

test('cli_version_hash_key_and_test_mode', () => {
  let r = runTollgate(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^tollgate \d+\.\d+\.\d+\n$/);
  r = runTollgate(['hash-key', KEY_A]);
  assert.equal(r.status, 0);
  assert.equal(r.stdout, `${sha256Key(KEY_A)}\n`);
  r = runTollgate(['hash-key', '-'], `${KEY_A}\n`);
  assert.equal(r.stdout, `${sha256Key(KEY_A)}\n`);
  r = runTollgate(['-c', path.resolve('../../config/tollgate.yaml'), '-t']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configuration is valid/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-cli-'));
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'listen: ["127.0.0.1:8000"]\nworkerz: 2\nteams:\n  a:\n    rpm: -5\n');
  r = runTollgate(['-c', bad, '-t']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${bad}:2:1: error: .*workerz`));
  assert.match(r.stderr, new RegExp(`${bad}:5:10: error: .*rpm`));
  r = runTollgate(['--bogus']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /usage: tollgate/);
  fs.rmSync(dir, { recursive: true });
});

test('client_disconnect_mid_stream_cancels_the_call', async (t) => {
  const gw = await startGateway(t, { streamDelay: 200, workers: 1 });
  const pids = gw.workerPids();
  const ac = new AbortController();
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    signal: ac.signal,
    headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'gone-1', ...auth() },
    body: JSON.stringify({ model: 'slow-echo', stream: true, messages: [{ role: 'user', content: 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10' }] }),
  });
  const reader = res.body.getReader();
  await reader.read();
  ac.abort();
  const log = path.join(gw.dir, 'access.log');
  await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('gone-1'),
    5000, 'the access log line of the abandoned stream');
  const line = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .find((l) => l.request_id === 'gone-1');
  assert.equal(line.client_gone, true);
  assert.equal(line.status, 200);
  assert.deepEqual(gw.workerPids(), pids);
  assert.equal((await post(gw, '/v1/chat/completions', CHAT)).status, 200);
});
