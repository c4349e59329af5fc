// Provider health shared by every worker (PRODUCT.md section 5): a
// provider that fails allowed_fails times in a row, in any worker, is
// skipped by all of them for cooldown_s; then exactly one probe decides.
// The mock upstream's request counter proves what reached each provider.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  KEY_A, auth, nodeRequest, post, servedBy, startGateway, startMock, waitFor,
} from './lib.mjs';

// Providers on the same mock, so that one can be broken while another
// serves the fallback (health is per provider). No retries: each request is one attempt.
async function gateway(t, o = {}) {
  const mock = await startMock(t);
  const up = (name) => `  ${name}: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, `
    + `retries: 0, first_byte_timeout_ms: ${o.firstByteMs ?? 5000} }\n`;
  const gw = await startGateway(t, {
    workers: o.workers ?? 4,
    allowedFails: o.allowedFails ?? 3,
    cooldownS: o.cooldownS ?? 30,
    providers: up('flaky') + up('steady') + up('broken'),
    models: `  bad: { provider: flaky, model: ${o.badModel ?? 'fault-status-500'} }\n`
      + '  good: { provider: steady, model: good-model }\n'
      + '  bad-too: { provider: broken, model: fault-close }\n',
    groups: '  G: { primary: bad, fallbacks: [good] }\n'
      + '  G-all-bad: { primary: bad, fallbacks: [bad-too] }\n',
    teams: o.teams ?? '',
  });
  return { gw, mock };
}

const ask = (model) => ({ model, messages: [{ role: 'user', content: 'hello' }] });

async function calls(mock, model) {
  return (await mock.stats()).by_model[model] ?? 0;
}

// The chat endpoint through nodeRequest (see lib.mjs).
function request(gw, body, { agent = false, id } = {}) {
  return nodeRequest(gw, 'POST', '/v1/chat/completions', body,
    { ...auth(KEY_A), ...(id ? { 'X-Request-Id': id } : {}) }, agent);
}

// Sends requests to G on fresh connections until one is served by a worker
// other than `pid`; each must fall back without reaching the broken primary.
async function askOtherWorkers(gw, pid) {
  for (let i = 0; i < 200; i++) {
    const id = `other-${i}`;
    const res = await request(gw, ask('G'), { id });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-tollgate-model'], 'good');
    assert.equal(res.headers['x-tollgate-fallbacks'], '1');
    await waitFor(() => servedBy(gw).has(id), 5000, 'the access log line');
    if (servedBy(gw).get(id) !== pid) return;
  }
  assert.fail('200 fresh connections all went to one worker');
}

// Trips the breaker of `flaky` through one kept-alive connection; returns
// the pid of the worker that saw every failure.
async function tripThroughOneWorker(gw, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < n; i++) {
      const res = await request(gw, ask('G'), { agent, id: `trip-${i}` });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['x-tollgate-fallbacks'], '1');
    }
  } finally {
    agent.destroy();
  }
  await waitFor(() => servedBy(gw).has(`trip-${n - 1}`), 5000, 'the access log');
  const pids = new Set([...Array(n).keys()].map((i) => servedBy(gw).get(`trip-${i}`)));
  assert.equal(pids.size, 1, 'the failures were meant to go through one worker');
  return [...pids][0];
}

test('breaker_opened_in_one_worker_is_skipped_by_every_worker', async (t) => {
  const { gw, mock } = await gateway(t);
  const pid = await tripThroughOneWorker(gw, 3);
  assert.equal(await calls(mock, 'fault-status-500'), 3);
  await askOtherWorkers(gw, pid);
  // Not one request of any worker reached the provider while it cools.
  assert.equal(await calls(mock, 'fault-status-500'), 3);
  // Any worker's /health shows the same shared state.
  const health = await (await fetch(`${gw.url}/health`)).json();
  assert.equal(health.status, 'degraded');
  assert.equal(health.providers.flaky.state, 'cooling_down');
  assert.equal(health.providers.flaky.consecutive_fails, 3);
  assert.ok(health.providers.flaky.cooling_down_ms > 0
    && health.providers.flaky.cooling_down_ms <= 30000);
  assert.equal(health.providers.steady.state, 'closed');
  assert.equal(health.providers.steady.in_flight, 0);
  assert.equal(typeof health.providers.steady.latency_ms, 'number');
});

test('fewer_failures_than_allowed_fails_keep_calling_the_provider', async (t) => {
  const { gw, mock } = await gateway(t);
  for (let i = 0; i < 2; i++) assert.equal((await post(gw, '/v1/chat/completions', ask('G'))).status, 200);
  await post(gw, '/v1/chat/completions', ask('G'));
  assert.equal(await calls(mock, 'fault-status-500'), 3);
  await post(gw, '/v1/chat/completions', ask('G'));
  assert.equal(await calls(mock, 'fault-status-500'), 3, 'the third failure opened it');
});

test('after_the_cooldown_exactly_one_probe_goes_through', async (t) => {
  // The primary hangs until its first-byte timeout, so the probe is still
  // out while the other requests arrive.
  const { gw, mock } = await gateway(t, {
    badModel: 'fault-delay-headers-3000', firstByteMs: 600, cooldownS: 1, workers: 3,
  });
  for (let i = 0; i < 3; i++) assert.equal((await post(gw, '/v1/chat/completions', ask('G'))).status, 200);
  assert.equal(await calls(mock, 'fault-delay-headers-3000'), 3);
  await sleep(1200);
  const answers = await Promise.all([...Array(12).keys()].map(() => request(gw, ask('G'))));
  for (const res of answers) {
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-tollgate-model'], 'good');
  }
  assert.equal(await calls(mock, 'fault-delay-headers-3000'), 4, 'exactly one probe');
  // The probe failed: the provider cools down again.
  assert.equal((await post(gw, '/v1/chat/completions', ask('G'))).status, 200);
  assert.equal(await calls(mock, 'fault-delay-headers-3000'), 4);
});

test('a_successful_probe_closes_the_breaker', async (t) => {
  // fault-flaky-3: the first three calls fail, then it answers.
  const { gw, mock } = await gateway(t, { badModel: 'fault-flaky-3', cooldownS: 1 });
  for (let i = 0; i < 4; i++) {
    const res = await post(gw, '/v1/chat/completions', ask('G'));
    assert.equal(res.headers.get('x-tollgate-model'), 'good');
  }
  assert.equal(await calls(mock, 'fault-flaky-3'), 3, 'the fourth skipped it');
  await sleep(1200);
  for (let i = 0; i < 3; i++) {
    const res = await post(gw, '/v1/chat/completions', ask('G'));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-tollgate-model'), 'bad');
    assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  }
  assert.equal(await calls(mock, 'fault-flaky-3'), 6);
});

test('every_candidate_cooling_down_answers_503_with_retry_after', async (t) => {
  const { gw, mock } = await gateway(t, {
    allowedFails: 1,
    teams: '  metered: { keys: ["tg-test-metered"], rpm: 10 }\n',
  });
  const key = auth('tg-test-metered');
  const first = await post(gw, '/v1/chat/completions', ask('G-all-bad'), key);
  assert.equal(first.status, 502, first.text);
  assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '9');
  const before = (await mock.stats()).total;
  const res = await post(gw, '/v1/chat/completions', ask('G-all-bad'), key);
  assert.equal(res.status, 503, res.text);
  const wait = Number(res.headers.get('retry-after'));
  assert.ok(wait >= 1 && wait <= 30, `Retry-After: ${wait}`);
  assert.equal(res.body.error.code, 'providers_cooling_down');
  assert.match(res.body.error.message, /every provider that can serve model 'G-all-bad' is cooling down/);
  assert.equal((await mock.stats()).total, before, 'no provider was called');
  // Refused before admission: the team's quota did not move.
  const next = await post(gw, '/v1/chat/completions', ask('good'), key);
  assert.equal(next.headers.get('x-ratelimit-remaining-requests'), '8');
});

test('health_survives_a_reload', async (t) => {
  const { gw, mock } = await gateway(t, { workers: 2 });
  for (let i = 0; i < 3; i++) await post(gw, '/v1/chat/completions', ask('G'));
  const old = gw.workerPids();
  gw.signal('SIGHUP');
  await waitFor(() => gw.workerPids().filter((p) => !old.includes(p)).length === 2, 10000, 'new workers');
  await waitFor(() => gw.workerPids().every((p) => !old.includes(p)), 10000, 'old workers to exit');
  for (let i = 0; i < 5; i++) {
    const res = await post(gw, '/v1/chat/completions', ask('G'));
    assert.equal(res.headers.get('x-tollgate-model'), 'good');
  }
  assert.equal(await calls(mock, 'fault-status-500'), 3);
});

// The usage log: a line per attempt, failed ones included.
function usageLines(gw) {
  return fs.readFileSync(path.join(gw.dir, 'usage.log'), 'utf8').split('\n')
    .filter(Boolean).map((l) => JSON.parse(l));
}

test('usage_log_has_a_line_for_every_attempt', async (t) => {
  const { gw } = await gateway(t);
  const res = await request(gw, ask('G'), { id: 'fell-back' });
  assert.equal(res.status, 200);
  await waitFor(() => usageLines(gw).length >= 2, 5000, 'two usage lines');
  const [failed, served] = usageLines(gw).filter((l) => l.request_id === 'fell-back');
  assert.equal(failed.provider, 'flaky');
  assert.equal(failed.model, 'bad');
  assert.equal(failed.upstream_model, 'fault-status-500');
  assert.equal(failed.status, 502);
  assert.match(failed.error, /provider flaky answered 500/);
  assert.equal(failed.attempt, 1);
  assert.equal(served.provider, 'steady');
  assert.equal(served.upstream_model, 'good-model');
  assert.equal(served.status, 200);
  assert.equal(served.error, null);
  assert.equal(served.attempt, 2);
  assert.equal(served.fallbacks, 1);
  assert.equal(served.model_requested, 'G');
  assert.equal(served.team, 'team-a');
  assert.equal(served.surface, 'openai');
  assert.ok(served.prompt_tokens > 0 && served.completion_tokens > 0);
  assert.ok(served.ttft_ms >= 0 && served.latency_ms >= served.ttft_ms);
  assert.match(served.key_id, /^[0-9a-f]{16}$/);
  assert.ok(!fs.readFileSync(path.join(gw.dir, 'usage.log'), 'utf8').includes(KEY_A), 'a key was logged');
});

test('usage_log_keeps_a_stream_cut_short', async (t) => {
  const mock = await startMock(t);
  const gw = await startGateway(t, {
    providers: `  up: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, retries: 0 }\n`,
    models: '  cut: { provider: up, model: fault-drop-mid-stream }\n',
  });
  const res = await post(gw, '/v1/chat/completions', { ...ask('cut'), stream: true });
  assert.equal(res.status, 200);
  await waitFor(() => fs.existsSync(path.join(gw.dir, 'usage.log')) && usageLines(gw).length === 1, 5000, 'the usage line');
  const [line] = usageLines(gw);
  assert.equal(line.status, 502);
  assert.equal(line.stream, true);
  assert.ok(line.completion_tokens > 0, 'the tokens streamed before the cut are counted');
  assert.notEqual(line.error, null);
});
