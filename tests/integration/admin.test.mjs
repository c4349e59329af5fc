// The admin API: admin keys only (401/403), a team's live state, a credit
// top-up kept across a full restart and logged as an admin event, provider
// health with its last error, and a manual reset of a breaker.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { KEY_A, auth, get, post, startGateway, startMock, waitFor } from './lib.mjs';

const ADMIN = 'tg-test-admin-key';
const A = auth(ADMIN);

function adminGateway(t, o = {}) {
  return startGateway(t, { extra: `admin_keys: ["${ADMIN}"]\n`, ...o });
}

function usageLines(gw) {
  const file = path.join(gw.dir, 'usage.log');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('admin_api_needs_an_admin_key', async (t) => {
  const gw = await adminGateway(t);
  for (const [headers, status] of [[{}, 401], [auth('tg-nobody'), 401],
    [{ Authorization: 'Basic eA==' }, 401], [auth(KEY_A), 403]]) {
    const res = await get(gw, '/admin/teams/team-a', headers);
    assert.equal(res.status, status, res.text);
    assert.deepEqual(Object.keys(res.body), ['detail']);
  }
  assert.equal((await post(gw, '/admin/teams/team-a/credits', { amount: 5 }, auth(KEY_A))).status, 403);
  // An admin key is no team's key.
  const call = await post(gw, '/v1/chat/completions',
    { model: 'mock-echo', messages: [{ role: 'user', content: 'hi' }] }, A);
  assert.equal(call.status, 403, call.text);
  assert.equal((await get(gw, '/admin/teams/team-a', A)).status, 200);
  assert.equal((await get(gw, '/admin/teams/nobody', A)).status, 404);
});

test('team_state_and_a_top_up_kept_across_a_restart', async (t) => {
  const gw = await adminGateway(t, { rpm: 100, keepDir: true });
  t.after(() => fs.rmSync(gw.dir, { recursive: true, force: true }));
  await post(gw, '/v1/chat/completions', { model: 'priced-echo', messages: [{ role: 'user', content: 'spend' }] });
  await post(gw, '/api/jobs/create', { team_id: 'team-a', job_type: 'x' });
  let s = (await get(gw, '/admin/teams/team-a', A)).body;
  assert.deepEqual(Object.keys(s).sort(), ['credits', 'credits_granted', 'max_budget_usd',
    'open_jobs', 'requests_per_minute', 'spend_usd', 'team', 'tokens_per_minute']);
  assert.equal(s.team, 'team-a');
  assert.equal(s.requests_per_minute.limit, 100);
  assert.equal(s.requests_per_minute.remaining, 99);
  assert.equal(s.credits, 100);
  assert.equal(s.credits_granted, 100);
  assert.ok(s.spend_usd > 0);
  assert.equal(s.max_budget_usd, null);
  assert.equal(s.open_jobs, 1);
  for (const [body, status] of [[{}, 422], [{ amount: 'ten' }, 422], [{ amount: 0 }, 422],
    [{ amount: 2e9 }, 422], ['{"amount": ', 422]]) {
    const res = await post(gw, '/admin/teams/team-a/credits', body, A);
    assert.equal(res.status, status, res.text);
    assert.deepEqual(Object.keys(res.body), ['detail']);
  }
  const up = await post(gw, '/admin/teams/team-a/credits', { amount: 50.5 }, A);
  assert.equal(up.status, 200, up.text);
  assert.deepEqual(up.body, { team: 'team-a', added: 50.5, credits: 150.5 });
  const down = await post(gw, '/admin/teams/team-a/credits', { amount: -0.5 }, A);
  assert.equal(down.body.credits, 150);
  await waitFor(() => usageLines(gw).filter((l) => l.event === 'admin').length === 2, 5000, 'admin events');
  const ev = usageLines(gw).find((l) => l.event === 'admin');
  assert.equal(ev.action, 'credit_top_up');
  assert.equal(ev.team, 'team-a');
  assert.equal(ev.amount_micro, 50500000);
  assert.equal(ev.balance_micro, 150500000);
  assert.match(ev.key_id, /^[0-9a-f]{16}$/);
  assert.ok(!fs.readFileSync(path.join(gw.dir, 'usage.log'), 'utf8').includes(ADMIN));
  await gw.stop();
  const again = await adminGateway(t, { rpm: 100, dir: gw.dir, keepDir: true, port: gw.port });
  s = (await get(again, '/admin/teams/team-a', A)).body;
  assert.equal(s.credits, 150, 'the top-up survived the restart');
  assert.equal(s.open_jobs, 1);
});

test('provider_health_and_a_manual_reset', async (t) => {
  const mock = await startMock(t);
  const gw = await adminGateway(t, {
    allowedFails: 1,
    providers: `  up: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, retries: 0 }\n`,
    models: '  broken: { provider: up, model: fault-status-500 }\n',
  });
  const ask = { model: 'broken', messages: [{ role: 'user', content: 'x' }] };
  assert.equal((await post(gw, '/v1/chat/completions', ask)).status, 502);
  assert.equal((await post(gw, '/v1/chat/completions', ask)).status, 503);
  let h = (await get(gw, '/admin/providers', A)).body.providers.up;
  assert.equal(h.state, 'cooling_down');
  assert.equal(h.consecutive_fails, 1);
  assert.equal(h.last_error_status, 502);
  assert.match(h.last_error, /provider up answered 500/);
  assert.ok(h.cooling_until_ms > Date.now());
  assert.equal(h.in_flight, 0);
  assert.equal((await post(gw, '/admin/providers/nobody/reset', {}, A)).status, 404);
  const reset = await post(gw, '/admin/providers/up/reset', {}, A);
  assert.equal(reset.status, 200, reset.text);
  assert.deepEqual(reset.body, { provider: 'up', state: 'closed' });
  h = (await get(gw, '/admin/providers', A)).body.providers.up;
  assert.equal(h.state, 'closed');
  // Called again at once: the mock counts the call.
  const before = (await mock.stats()).total;
  assert.equal((await post(gw, '/v1/chat/completions', ask)).status, 502);
  assert.equal((await mock.stats()).total, before + 1);
  await waitFor(() => usageLines(gw).some((l) => l.action === 'provider_reset'), 5000, 'the event');
});
