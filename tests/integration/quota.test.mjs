// Quotas through the real binary and several workers: RPM exact across
// workers, TPM reservations, budgets, reload and restart semantics, and a
// state file that is not ours.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import {
  auth, isAlive, post, runTollgate, sha256Key, startGateway, waitFor,
} from './lib.mjs';

const KEY_L = 'tg-test-key-limited';
const CHAT = { messages: [{ role: 'user', content: 'ping' }] };
const RATE_HEADERS = [
  'x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens',
];

function limitedTeam({ rpm = 1000, tpm = 1000000, budget, credits = 100 } = {}) {
  return `  limited:
    keys: ["${sha256Key(KEY_L)}"]
    rpm: ${rpm}
    tpm: ${tpm}
    credits: ${credits}
${budget === undefined ? '' : `    max_budget_usd: ${budget}\n`}`;
}

const asLimited = auth(KEY_L);

function assertRateHeaders(res) {
  for (const h of RATE_HEADERS) assert.ok(res.headers.get(h) !== null, `missing ${h}`);
  assert.match(res.headers.get('x-ratelimit-reset-requests'), /^(\d+ms|\d+(\.\d+)?s|\d+m\d+s)$/);
}

test('rpm_exact_across_workers', async (t) => {
  const gw = await startGateway(t, { workers: 2, teams: limitedTeam({ rpm: 10 }) });
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 40 }, () =>
    post(gw, '/v1/chat/completions', CHAT, asLimited)));
  const elapsedMin = (Date.now() - started) / 60000;
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  assert.equal(ok.length + refused.length, 40);
  // Exactly rpm, plus whatever refilled at rpm/60 per second meanwhile.
  assert.ok(ok.length >= 10 && ok.length <= 10 + Math.floor(10 * elapsedMin),
    `${ok.length} admitted`);
  for (const r of results) {
    assertRateHeaders(r);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '10');
    assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '1000000');
  }
  const remaining = ok.map((r) => Number(r.headers.get('x-ratelimit-remaining-requests'))).sort((a, b) => a - b);
  assert.deepEqual(remaining.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const r of refused) {
    assert.equal(r.body.error.code, 'rate_limit_exceeded');
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.match(r.body.detail, /requests per minute \(RPM\): limit 10/);
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 6, `Retry-After ${retry}`);
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
  }
  // Both workers answered (the limit is shared, not per worker).
  assert.equal(gw.workerPids().length, 2);
});

test('tpm_refuses_a_reservation_that_does_not_fit', async (t) => {
  const gw = await startGateway(t, { teams: limitedTeam({ tpm: 1000 }), streamDelay: 300 });
  // Larger than tpm itself: can never fit, no Retry-After.
  let res = await post(gw, '/v1/chat/completions', { ...CHAT, max_tokens: 5000 }, asLimited);
  assert.equal(res.status, 429);
  assert.equal(res.body.error.code, 'tokens_exceed_tpm');
  assert.equal(res.headers.get('retry-after'), null);
  assertRateHeaders(res);
  // A slow stream holds a reservation of 600 + prompt while it runs...
  const stream = fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...asLimited },
    body: JSON.stringify({ model: 'slow-echo', stream: true, max_tokens: 600, messages: [{ role: 'user', content: 'a b c' }] }),
  });
  const first = await stream;
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-ratelimit-limit-tokens'), '1000');
  // ...so a second 600 does not fit now, and is told when it will.
  res = await post(gw, '/v1/chat/completions', { ...CHAT, max_tokens: 600 }, asLimited);
  assert.equal(res.status, 429);
  assert.equal(res.body.error.code, 'rate_limit_exceeded');
  assert.match(res.body.detail, /tokens per minute \(TPM\): limit 1000/);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  await first.text();
  // Settled: the stream used a few tokens and gave the rest back.
  res = await post(gw, '/v1/chat/completions', { ...CHAT, max_tokens: 600 }, asLimited);
  assert.equal(res.status, 200, res.text);
});

test('settlement_refunds_unused_tokens_exactly', async (t) => {
  const gw = await startGateway(t, { teams: limitedTeam({ tpm: 100000 }) });
  const body = { messages: [{ role: 'user', content: 'x'.repeat(40) }], max_tokens: 500 };
  // Estimate: (40 + 16) bytes / 4 = 14 prompt tokens; reservation 514.
  const a = await post(gw, '/v1/chat/completions', body, asLimited);
  assert.equal(a.status, 200);
  assert.equal(Number(a.headers.get('x-ratelimit-remaining-tokens')), 100000 - 514);
  const used = a.body.usage.total_tokens; // 10 + 10
  assert.equal(used, 20);
  const b = await post(gw, '/v1/chat/completions', body, asLimited);
  const remaining = Number(b.headers.get('x-ratelimit-remaining-tokens'));
  // After the first settled: 100000 - 20 - 514, plus refill (1667/s) since.
  assert.ok(remaining >= 100000 - 20 - 514, `remaining ${remaining}`);
  assert.ok(remaining <= 100000 - 514, `remaining ${remaining}`);
});

test('budget_exhausted_is_429', async (t) => {
  // priced-echo: $1000 / Mtok in, $2000 out. "ping" is 1 + 1 token: $0.003.
  const gw = await startGateway(t, { teams: limitedTeam({ budget: 0.005 }) });
  const call = () => post(gw, '/v1/chat/completions', { ...CHAT, model: 'priced-echo' }, asLimited);
  assert.equal((await call()).status, 200);
  assert.equal((await call()).status, 200); // $0.003 spent < $0.005
  const res = await call();                // $0.006 spent >= budget
  assert.equal(res.status, 429);
  assert.equal(res.body.error.code, 'budget_exceeded');
  assert.match(res.body.detail, /team limited has spent \$0\.006000 of its max_budget_usd of \$0\.005000/);
  assert.equal(res.headers.get('retry-after'), null);
});

test('bad_requests_change_no_quota', async (t) => {
  const gw = await startGateway(t, { teams: limitedTeam({ rpm: 2 }) });
  for (let i = 0; i < 5; i++) {
    assert.equal((await post(gw, '/v1/chat/completions', { messages: [] }, asLimited)).status, 400);
    assert.equal((await post(gw, '/v1/chat/completions', { ...CHAT, model: 'nope' }, asLimited)).status, 400);
  }
  assert.equal((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status, 200);
  assert.equal((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status, 200);
  assert.equal((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status, 429);
});

test('reload_raising_rpm_applies_at_once_with_zero_failures', async (t) => {
  const gw = await startGateway(t, { workers: 2, teams: limitedTeam({ rpm: 5 }) });
  for (let i = 0; i < 5; i++) {
    assert.equal((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status, 200);
  }
  assert.equal((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status, 429);
  // Another team loops through the reload: nothing may fail.
  let stop = false;
  const failures = [];
  let n = 0;
  const loop = (async () => {
    while (!stop) {
      const r = await post(gw, '/v1/chat/completions', CHAT).catch((e) => ({ status: e.message }));
      if (r.status !== 200) failures.push(r.status); else n++;
    }
  })();
  const oldPids = gw.workerPids();
  gw.writeConfig({ teams: limitedTeam({ rpm: 10 }) });
  gw.signal('SIGHUP');
  await waitFor(() => oldPids.every((p) => !isAlive(p)), 10000, 'the old workers to exit');
  stop = true;
  await loop;
  assert.deepEqual(failures, []);
  assert.ok(n > 10);
  // 5 used of a new 10: exactly 5 more (plus refill at 10/min: under 1 here).
  const statuses = [];
  for (let i = 0; i < 7; i++) {
    statuses.push((await post(gw, '/v1/chat/completions', CHAT, asLimited)).status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
});

test('state_survives_a_full_restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-restart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const o = { dir, keepDir: true, teams: limitedTeam({ rpm: 3, budget: 0.007 }) };
  let gw = await startGateway(t, o);
  for (let i = 0; i < 2; i++) {
    const r = await post(gw, '/v1/chat/completions', { ...CHAT, model: 'priced-echo' }, asLimited);
    assert.equal(r.status, 200);
  }
  await gw.stop();
  gw = await startGateway(t, o);
  // Spend carried over: $0.006 of $0.007, so one more call is allowed...
  let r = await post(gw, '/v1/chat/completions', { ...CHAT, model: 'priced-echo' }, asLimited);
  assert.equal(r.status, 200, r.text);
  // ...which used the last of rpm 3, carried over too.
  r = await post(gw, '/v1/chat/completions', CHAT, asLimited);
  assert.equal(r.status, 429);
  assert.equal(r.body.error.code, 'budget_exceeded');
  assert.match(r.body.detail, /spent \$0\.009000/);
  await gw.stop();
  // Without the budget, the rpm carried over is what refuses.
  gw = await startGateway(t, { ...o, teams: limitedTeam({ rpm: 3 }) });
  r = await post(gw, '/v1/chat/completions', CHAT, asLimited);
  assert.equal(r.status, 429);
  assert.equal(r.body.error.code, 'rate_limit_exceeded');
});

function writeConfigFor(dir, stateBytes) {
  const state = path.join(dir, 'tollgate.state');
  fs.writeFileSync(state, stateBytes);
  const cfg = path.join(dir, 'tollgate.yaml');
  fs.writeFileSync(cfg, `listen: ["127.0.0.1:1"]\nstate_file: ${state}\n`
    + 'providers: {mock: {type: mock}}\nmodels: {m: {provider: mock, model: echo}}\n'
    + 'teams: {t: {rpm: 5}}\n');
  return { cfg, state };
}

test('foreign_or_corrupt_state_file_is_refused_unchanged', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-state-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cases = [
    [Buffer.from('hello, I am somebody else\'s file\n'.repeat(20)), /not a tollgate state file \(bad magic\)|too short/],
    [Buffer.from('TGSTATE'), /too short/],
  ];
  // A real state file, then damaged in the ways that matter.
  const gw = await startGateway(t, { dir, keepDir: true });
  await gw.stop();
  const good = fs.readFileSync(path.join(dir, 'tollgate.state'));
  const otherVersion = Buffer.from(good);
  otherVersion.writeUInt32LE(99, 8);
  cases.push([otherVersion, /layout version is 99/]);
  cases.push([Buffer.concat([good, Buffer.from([0])]), /size .* does not match its header/]);
  cases.push([good.subarray(0, good.length - 1), /size .* does not match its header/]);
  const badGeometry = Buffer.from(good);
  badGeometry[40] ^= 0xff;
  badGeometry[88] ^= 0xff; // the same field of the second copy
  cases.push([badGeometry, /header is corrupt/]);
  for (const [bytes, why] of cases) {
    const { cfg, state } = writeConfigFor(dir, bytes);
    const r = runTollgate(['-c', cfg]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /state_file .* is refused: /);
    assert.match(r.stderr, why);
    assert.deepEqual(fs.readFileSync(state), bytes, 'the file was changed');
  }
});

test('second_gateway_on_the_same_state_file_is_refused', async (t) => {
  const gw = await startGateway(t);
  const cfg = path.join(gw.dir, 'second.yaml');
  fs.writeFileSync(cfg, `listen: ["127.0.0.1:1"]\nstate_file: ${gw.dir}/tollgate.state\n`
    + 'providers: {mock: {type: mock}}\nmodels: {m: {provider: mock, model: echo}}\n');
  const r = runTollgate(['-c', cfg]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /is in use by another tollgate/);
  assert.equal((await post(gw, '/v1/chat/completions', CHAT)).status, 200);
});

test('failed_call_refunds_its_tokens', async (t) => {
  const gw = await startGateway(t, { teams: limitedTeam({ tpm: 1000 }) });
  // gpt-4o's provider is disabled: admitted, then the call fails (503).
  let res = await post(gw, '/v1/chat/completions', { ...CHAT, model: 'gpt-4o', max_tokens: 900 }, asLimited);
  assert.equal(res.status, 503);
  assertRateHeaders(res);
  assert.equal(Number(res.headers.get('x-ratelimit-remaining-tokens')), 1000 - 900 - 5);
  // Had the 905 reserved tokens not come back, this would not fit.
  res = await post(gw, '/v1/chat/completions', { ...CHAT, max_tokens: 900 }, asLimited);
  assert.equal(res.status, 200, res.text);
  assert.ok(Number(res.headers.get('x-ratelimit-remaining-tokens')) >= 1000 - 905);
});
