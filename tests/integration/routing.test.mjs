// Model groups: the primary, then each fallback in order, only for the
// failures PRODUCT.md section 5 lists and never after the first byte; and
// team allow-lists.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { KEY_B, auth, post, sseEvents, startGateway, startMock } from './lib.mjs';

async function routed(t, teams = '') {
  const mock = await startMock(t);
  const up = `{ type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, first_byte_timeout_ms: 800, retries: 1 }`;
  const faults = ['fault-status-500', 'fault-status-429', 'fault-status-400',
    'fault-delay-headers-3000', 'fault-drop-mid-stream', 'fault-close'];
  let models = '  good: { provider: up, model: good-model }\n  flaky-1: { provider: up, model: fault-flaky-1 }\n'
    + '  flaky-5: { provider: up, model: fault-flaky-5 }\n';
  let groups = '';
  for (const f of faults) {
    models += `  ${f}: { provider: up, model: ${f} }\n`;
    groups += `  G-${f}: { primary: ${f}, fallbacks: [good] }\n`;
  }
  groups += '  G-disabled: { primary: gpt-4o, fallbacks: [good] }\n';
  groups += '  G-flaky-5: { primary: flaky-5, fallbacks: [good] }\n';
  groups += '  G-all-bad: { primary: fault-status-500, fallbacks: [fault-close] }\n';
  const gw = await startGateway(t, {
    providers: `  up: ${up}\n`,
    models,
    groups,
    teams,
  });
  return { gw, mock };
}

const ask = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'route me' }], ...extra });

async function calls(mock, model) {
  return (await mock.stats()).by_model[model] ?? 0;
}

for (const f of ['fault-status-500', 'fault-status-429', 'fault-delay-headers-3000', 'fault-close']) {
  test(`primary_${f}_falls_back`, async (t) => {
    const { gw, mock } = await routed(t);
    const res = await post(gw, '/v1/chat/completions', ask(`G-${f}`));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.choices[0].message.content, 'route me');
    assert.equal(res.body.model, `G-${f}`);
    assert.equal(res.headers.get('x-tollgate-model'), 'good');
    assert.equal(res.headers.get('x-tollgate-provider'), 'up');
    assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
    // Tried, retried once (the provider's retries: 1), then fell back.
    assert.equal(await calls(mock, f), 2);
    assert.equal(await calls(mock, 'good-model'), 1);
  });
}

test('a_retry_recovers_a_flaky_candidate', async (t) => {
  const { gw, mock } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('flaky-1'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-model'), 'flaky-1');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  assert.equal(await calls(mock, 'fault-flaky-1'), 2);
});

test('retries_exhausted_then_the_fallback', async (t) => {
  const { gw, mock } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('G-flaky-5'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-model'), 'good');
  assert.equal(await calls(mock, 'fault-flaky-5'), 2);
  assert.equal(await calls(mock, 'good-model'), 1);
});

test('retry_honours_a_short_retry_after', async (t) => {
  const { gw } = await routed(t);
  const started = Date.now();
  const res = await post(gw, '/v1/chat/completions', ask('G-fault-status-429'));
  assert.equal(res.status, 200, res.text);
  // The mock's 429 says Retry-After: 1; the retry waited for it.
  assert.ok(Date.now() - started >= 1000, `answered after ${Date.now() - started} ms`);
});

test('primary_400_is_the_callers_error_without_fallback', async (t) => {
  const { gw, mock } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('G-fault-status-400'));
  assert.equal(res.status, 400, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  assert.equal(await calls(mock, 'good-model'), 0);
});

test('stream_cut_after_first_token_ends_with_error_and_no_fallback', async (t) => {
  const { gw, mock } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('G-fault-drop-mid-stream', { stream: true }));
  assert.equal(res.status, 200);
  const events = sseEvents(res.text);
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(events.at(-2).error.type, 'upstream_error');
  assert.equal(await calls(mock, 'good-model'), 0);
});

test('disabled_primary_is_skipped', async (t) => {
  const { gw } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('G-disabled'));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-model'), 'good');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
});

test('every_candidate_failing_answers_the_last_error', async (t) => {
  const { gw, mock } = await routed(t);
  const res = await post(gw, '/v1/chat/completions', ask('G-all-bad'));
  assert.equal(res.status, 502, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  assert.equal(await calls(mock, 'fault-status-500'), 2);
  assert.equal(await calls(mock, 'fault-close'), 2);
});

test('fallback_charges_the_quota_once', async (t) => {
  const { gw } = await routed(t, '  metered: { keys: ["tg-test-metered"], rpm: 10 }\n');
  const key = auth('tg-test-metered');
  const a = await post(gw, '/v1/chat/completions', ask('G-fault-status-500'), key);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers.get('x-tollgate-fallbacks'), '1');
  // Two attempts upstream, one request of the team's 10.
  assert.equal(a.headers.get('x-ratelimit-remaining-requests'), '9');
  const b = await post(gw, '/v1/chat/completions', ask('good'), key);
  assert.equal(b.headers.get('x-ratelimit-remaining-requests'), '8');
});

test('allow_lists_answer_403_naming_team_and_target', async (t) => {
  const gw = await startGateway(t);
  let res = await post(gw, '/v1/chat/completions', ask('Echoes'), auth(KEY_B));
  assert.equal(res.status, 403, res.text);
  assert.equal(res.body.error.type, 'permission_error');
  assert.match(res.body.error.message, /team team-b may not use model group Echoes/);
  res = await post(gw, '/v1/chat/completions', ask('slow-echo'), auth(KEY_B));
  assert.equal(res.status, 403, res.text);
  assert.match(res.body.error.message, /team team-b may not use model slow-echo/);
  res = await post(gw, '/v1/chat/completions', ask('mock-echo'), auth(KEY_B));
  assert.equal(res.status, 200, res.text);
});
