// GET /metrics: counters shared by every worker, checked by value after a
// known sequence of requests spread over workers, and checked by promtool.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';

import {
  KEY_A, auth, nodeRequest, servedBy, startGateway, waitFor,
} from './lib.mjs';

const KEY_C = 'tg-test-key-c-plain';
const ask = (model, o = {}) => ({ model, messages: [{ role: 'user', content: 'count these words' }], ...o });

// A provider nobody listens for: every call to it fails to connect.
const DEAD = '  dead: { type: openai, base_url: "http://127.0.0.1:1/v1", api_key: k, retries: 0 }\n';

function chat(gw, body, key = KEY_A) {
  return nodeRequest(gw, 'POST', '/v1/chat/completions', body, auth(key));
}

// {series text without the value -> number}, and the text itself.
async function scrape(gw, id) {
  const res = await nodeRequest(gw, 'GET', '/metrics', undefined,
    id ? { 'X-Request-Id': id } : {});
  assert.equal(res.status, 200);
  assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const values = new Map();
  for (const line of res.text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { values, text: res.text };
}

const value = (m, series) => m.values.get(series) ?? 0;

// promtool is in CI (scripts/install-deps.sh --test); a machine without it
// runs the rest of the checks.
function promtoolCheck(text) {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
  } catch {
    assert.ok(!process.env.CI, 'promtool is missing on CI');
    return;
  }
  execFileSync('promtool', ['check', 'metrics'], { input: text });
}

// What changes with every scrape itself: left out of the comparison.
function stable(m) {
  return [...m.values].filter(([k]) => !/surface="ops"|in_flight/.test(k));
}

test('metrics_add_up_over_workers_after_known_requests', async (t) => {
  const gw = await startGateway(t, {
    workers: 4,
    providers: DEAD,
    models: '  dead-echo: { provider: dead, model: x }\n',
    groups: '  Fall: { primary: dead-echo, fallbacks: [mock-echo] }\n',
    teams: `  team-c:\n    keys: ["${KEY_C}"]\n    rpm: 2\n`,
  });
  let prompt = 0;
  let completion = 0;
  for (let i = 0; i < 6; i++) {
    const res = await chat(gw, ask('priced-echo', { messages: [{ role: 'user', content: `say ${'x '.repeat(i)}` }] }));
    assert.equal(res.status, 200, res.text);
    prompt += res.body.usage.prompt_tokens;
    completion += res.body.usage.completion_tokens;
  }
  for (let i = 0; i < 3; i++) {
    const res = await chat(gw, ask('mock-echo', { stream: true }));
    assert.equal(res.status, 200);
    assert.match(res.text, /data: \[DONE\]/);
  }
  for (let i = 0; i < 2; i++) {
    const res = await chat(gw, ask('Fall'));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-tollgate-fallbacks'], '1');
  }
  assert.equal((await chat(gw, ask('mock-echo'), 'not-a-key')).status, 401);
  assert.equal((await chat(gw, ask('mock-echo'), 'not-a-key-either')).status, 401);
  assert.equal((await chat(gw, ask('no-such-model'))).status, 400);
  const team_c = [];
  for (let i = 0; i < 3; i++) team_c.push((await chat(gw, ask('mock-echo'), KEY_C)).status);
  assert.deepEqual(team_c, [200, 200, 429]);

  // The requests went to more than one worker; so do the scrapes.
  await waitFor(() => servedBy(gw).size >= 17, 5000, 'the access log');
  assert.ok(new Set(servedBy(gw).values()).size > 1, 'one worker served everything');
  const scrapes = [];
  for (let i = 0; i < 40; i++) {
    scrapes.push(await scrape(gw, `scrape-${i}`));
    await waitFor(() => servedBy(gw).has(`scrape-${i}`), 5000, 'the access log');
    const pids = new Set(scrapes.map((_, k) => servedBy(gw).get(`scrape-${k}`)));
    if (pids.size > 1 && scrapes.length >= 2) break;
  }
  assert.ok(new Set(scrapes.map((_, k) => servedBy(gw).get(`scrape-${k}`))).size > 1,
    '40 scrapes all answered by one worker');
  const m = scrapes.at(-1);
  for (const other of scrapes) assert.deepEqual(stable(other), stable(m));

  const req = (status) => value(m, `tollgate_requests_total{surface="openai",status="${status}"}`);
  assert.equal(req(200), 13);
  assert.equal(req(401), 2);
  assert.equal(req(400), 1);
  assert.equal(req(429), 1);
  assert.equal(value(m, 'tollgate_request_duration_seconds_count{surface="openai"}'), 17);
  assert.equal(value(m, 'tollgate_request_duration_seconds_bucket{surface="openai",le="+Inf"}'), 17);
  assert.equal(value(m, 'tollgate_time_to_first_token_seconds_count{surface="openai"}'), 3);
  assert.ok(value(m, 'tollgate_request_duration_seconds_sum{surface="openai"}') > 0);

  const calls = (provider, model, outcome) => value(m,
    `tollgate_upstream_requests_total{provider="${provider}",model="${model}",outcome="${outcome}"}`);
  assert.equal(calls('dead', 'dead-echo', 'error'), 2);
  assert.equal(calls('mock', 'mock-echo', 'ok'), 7);
  assert.equal(calls('mock', 'priced-echo', 'ok'), 6);
  assert.equal(value(m, 'tollgate_fallbacks_total{provider="dead",model="dead-echo"}'), 2);

  const pair = 'team="team-a",provider="mock",model="priced-echo"';
  assert.equal(value(m, `tollgate_tokens_total{${pair},type="prompt"}`), prompt);
  assert.equal(value(m, `tollgate_tokens_total{${pair},type="completion"}`), completion);
  const cost = (prompt * 1000 + completion * 2000) / 1e6;
  assert.ok(Math.abs(value(m, `tollgate_cost_usd_total{${pair}}`) - cost) < 1e-6,
    `cost ${value(m, `tollgate_cost_usd_total{${pair}}`)} vs ${cost}`);
  assert.equal(value(m, 'tollgate_rate_limited_total{team="team-c",limit="rpm"}'), 1);
  assert.equal(value(m, 'tollgate_rate_limited_total{team="team-a",limit="rpm"}'), 0);

  assert.equal(value(m, 'tollgate_provider_state{provider="mock",state="closed"}'), 1);
  assert.equal(value(m, 'tollgate_provider_state{provider="mock",state="open"}'), 0);
  assert.equal(value(m, 'tollgate_workers'), 4);
  assert.equal(value(m, 'tollgate_config_generation'), 1);
  assert.equal(value(m, 'tollgate_log_lines_lost_total{log="usage"}'), 0);
  promtoolCheck(m.text);
  // A worker counts a request done once its answer is written out, which
  // may come just after the client has read it and scraped again.
  await waitFor(async () => value(await scrape(gw), 'tollgate_requests_in_flight') === 1,
    5000, 'only the scrape itself in flight');
});

test('reloads_and_worker_restarts_are_counted', async (t) => {
  const gw = await startGateway(t, { workers: 2 });
  gw.signal('SIGHUP');
  await waitFor(async () => value(await scrape(gw), 'tollgate_config_generation') === 2,
    5000, 'generation 2');
  let m = await scrape(gw);
  assert.equal(value(m, 'tollgate_config_reloads_total{result="success"}'), 1);
  assert.equal(value(m, 'tollgate_config_last_reload_successful'), 1);
  assert.ok(value(m, 'tollgate_config_last_reload_timestamp_seconds') > 1e9);

  fs.writeFileSync(gw.configPath, 'workers: [not a number\n');
  gw.signal('SIGHUP');
  await waitFor(async () => value(await scrape(gw), 'tollgate_config_last_reload_successful') === 0,
    5000, 'the failed reload');
  m = await scrape(gw);
  assert.equal(value(m, 'tollgate_config_reloads_total{result="failure"}'), 1);
  assert.equal(value(m, 'tollgate_config_generation'), 2);

  await waitFor(() => gw.workerPids().length === 2, 10000, 'the old generation to drain');
  process.kill(gw.workerPids()[0], 'SIGKILL');
  await waitFor(async () => {
    const now = await scrape(gw);
    return value(now, 'tollgate_worker_restarts_total') === 1 && value(now, 'tollgate_workers') === 2;
  }, 5000, 'the restart');
  promtoolCheck((await scrape(gw)).text);
});

test('unwritable_usage_log_keeps_serving_and_counts_lost_lines', async (t) => {
  const gw = await startGateway(t, { usageLog: '/nonexistent-dir/usage.log', workers: 1 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(gw, ask('mock-echo'))).status, 200);
  const m = await scrape(gw);
  assert.equal(value(m, 'tollgate_log_lines_lost_total{log="usage"}'), 3);
  assert.equal(value(m, 'tollgate_log_lines_lost_total{log="access"}'), 0);
  assert.equal((gw.logs().match(/usage_log \/nonexistent-dir/g) ?? []).length, 1,
    'said once');
});

test('open_streams_are_in_flight', async (t) => {
  const gw = await startGateway(t, { workers: 2, streamDelay: 200 });
  const stream = chat(gw, ask('slow-echo', {
    stream: true, messages: [{ role: 'user', content: 'one two three four five six' }],
  }));
  await waitFor(async () => value(await scrape(gw), 'tollgate_provider_calls_in_flight{provider="slow"}') === 1,
    5000, 'the stream to start');
  assert.ok(value(await scrape(gw), 'tollgate_requests_in_flight') >= 2);
  assert.equal((await stream).status, 200);
  await waitFor(async () => value(await scrape(gw), 'tollgate_requests_in_flight') === 1,
    5000, 'the stream to be done');
  const m = await scrape(gw);
  assert.equal(value(m, 'tollgate_provider_calls_in_flight{provider="slow"}'), 0);
  assert.equal(value(m, 'tollgate_time_to_first_token_seconds_count{surface="openai"}'), 1);
  assert.equal(value(m, 'tollgate_requests_total{surface="ops",status="200"}') > 0, true);
});

test('label_values_are_escaped_and_come_from_the_config_only', async (t) => {
  // A configured model name may hold a quote and a backslash: escaped.
  const gw = await startGateway(t, {
    workers: 1,
    models: '  "we\\"ird\\\\name": { provider: mock, model: echo }\n',
  });
  assert.equal((await chat(gw, ask('we"ird\\name'))).status, 200);
  const escaped = 'tollgate_upstream_requests_total{provider="mock",'
    + 'model="we\\"ird\\\\name",outcome="ok"} 1';
  assert.ok((await scrape(gw)).text.split('\n').includes(escaped), 'the escaped series');
  // A request cannot name a series: an unknown model or path adds none.
  await chat(gw, ask('model-"with\nquotes'));
  await nodeRequest(gw, 'GET', '/no/such/path');
  const m = await scrape(gw);
  assert.ok(![...m.values.keys()].some((k) => /with|no\/such/.test(k)));
  assert.equal(value(m, 'tollgate_requests_total{surface="none",status="404"}'), 1);
  promtoolCheck(m.text);
});
