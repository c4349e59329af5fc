// Jobs with model groups and credits (seed 003): the seed's requests as
// written, its multi-step example across several workers, every error in
// {"detail": ...}, credits charged exactly once under concurrency, and jobs
// that survive a reload and a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import {
  auth, get, nodeRequest, post, servedBy, sseEvents, startGateway, startMock, waitFor,
} from './lib.mjs';

const KEY = 'sk-your-virtual-key';
const OTHER_KEY = 'sk-other-team-key';
const H = auth(KEY);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const GROUPS = '  ResumeAgent: { primary: mock-echo, fallbacks: [slow-echo] }\n'
  + '  AnalysisAgent: { primary: priced-echo, fallbacks: [mock-echo] }\n'
  + '  ChatAgent: { primary: slow-echo, fallbacks: [mock-echo] }\n'
  + '  GPT4Agent: { primary: mock-echo, fallbacks: [slow-echo] }\n';

function teams(credits = 10, rpm = 1000, more = '') {
  return `  acme-corp:\n    keys: ["${KEY}"]\n    credits: ${credits}\n    rpm: ${rpm}\n`
    + `    model_groups: [ResumeAgent, AnalysisAgent, ChatAgent${more}]\n`
    + `  other-corp:\n    keys: ["${OTHER_KEY}"]\n    credits: 5\n`;
}

async function jobsGateway(t, o = {}) {
  return startGateway(t, {
    workers: o.workers ?? 2,
    streamDelay: 1,
    groups: GROUPS + (o.groups ?? ''),
    teams: teams(o.credits, o.rpm, o.groups ? ', Upstream' : ''),
    providers: o.providers,
    models: o.models,
    dir: o.dir,
    keepDir: o.keepDir,
    port: o.port,
  });
}

async function createJob(gw, jobType = 'document_analysis', headers = H) {
  const res = await post(gw, '/api/jobs/create', { team_id: 'acme-corp', job_type: jobType }, headers);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function credits(gw) {
  // A job's completion reports the balance; a throwaway job tells it.
  const job = await createJob(gw, 'probe');
  const res = await post(gw, `/api/jobs/${job.job_id}/complete`, { status: 'cancelled' }, H);
  return res.body.costs.credits_remaining;
}

test('create_and_get_a_job', async (t) => {
  const gw = await jobsGateway(t);
  const job = await createJob(gw);
  assert.deepEqual(Object.keys(job).sort(),
    ['completed_at', 'created_at', 'job_id', 'job_type', 'status', 'team_id']);
  assert.match(job.job_id, UUID);
  assert.equal(job.team_id, 'acme-corp');
  assert.equal(job.job_type, 'document_analysis');
  assert.equal(job.status, 'in_progress');
  assert.ok(!Number.isNaN(Date.parse(job.created_at)));
  assert.equal(job.completed_at, null);
  const got = await get(gw, `/api/jobs/${job.job_id}`, H);
  assert.equal(got.status, 200, got.text);
  assert.equal(got.body.job_id, job.job_id);
  assert.deepEqual(got.body.costs, {
    total_calls: 0, successful_calls: 0, failed_calls: 0, total_tokens: 0,
    prompt_tokens: 0, completion_tokens: 0, total_cost_usd: 0,
    avg_latency_ms: 0, credit_applied: false,
  });
});

test('seed_llm_call_example_as_written', async (t) => {
  const gw = await jobsGateway(t);
  const job = await createJob(gw);
  const res = await post(gw, `/api/jobs/${job.job_id}/llm-call`, {
    model_group: 'ResumeAgent',
    messages: [
      { role: 'system', content: 'You are a resume parsing assistant.' },
      { role: 'user', content: 'Extract key skills from this resume: ...' },
    ],
    purpose: 'skill_extraction',
    temperature: 0.3,
  }, H);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.body).sort(), ['call_id', 'metadata', 'response']);
  assert.match(res.body.call_id, UUID);
  assert.deepEqual(Object.keys(res.body.response).sort(), ['content', 'finish_reason']);
  assert.equal(res.body.response.content, 'Extract key skills from this resume: ...');
  assert.equal(res.body.response.finish_reason, 'stop');
  const m = res.body.metadata;
  assert.deepEqual(Object.keys(m).sort(), ['latency_ms', 'model_group', 'tokens_used']);
  assert.ok(Number.isInteger(m.tokens_used) && m.tokens_used > 0);
  assert.ok(Number.isInteger(m.latency_ms) && m.latency_ms >= 0);
  assert.equal(m.model_group, 'ResumeAgent');
  assert.equal(res.headers.get('x-tollgate-model'), 'mock-echo');
  // The usage log names the job and the purpose.
  await waitFor(() => fs.existsSync(path.join(gw.dir, 'usage.log')), 5000, 'the usage log');
  const line = JSON.parse(fs.readFileSync(path.join(gw.dir, 'usage.log'), 'utf8').trim().split('\n').at(-1));
  assert.equal(line.job_id, job.job_id);
  assert.equal(line.purpose, 'skill_extraction');
  assert.equal(line.surface, 'jobs');
});

test('seed_stream_example_as_written', async (t) => {
  const gw = await jobsGateway(t);
  const job = await createJob(gw, 'chat');
  const res = await post(gw, `/api/jobs/${job.job_id}/llm-call-stream`, {
    model_group: 'ChatAgent',
    messages: [{ role: 'user', content: 'Tell me a story' }],
    purpose: 'chat',
    temperature: 0.8,
    max_tokens: 500,
  }, H);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  const events = sseEvents(res.text);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(typeof c.id, 'string');
    assert.ok(Number.isInteger(c.created));
    assert.equal(c.model, 'slow-echo', 'the model actually used');
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].index, 0);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.slice(1).every((c) => !('role' in c.choices[0].delta)));
  const last = chunks.at(-1);
  assert.deepEqual(last.choices[0].delta, {});
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null && !('usage' in c)));
  const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(text, 'Tell me a story');
});

test('seed_multi_step_example_across_workers', async (t) => {
  const gw = await jobsGateway(t, { workers: 4, credits: 10 });
  const job = await createJob(gw);
  const steps = [
    ['Parse document', 'Extract key information from this document...'],
    ['Classify content', 'Classify the content type...'],
    ['Generate summary', 'Generate a concise summary...'],
  ];
  let tokens = 0;
  for (const [i, [purpose, prompt]] of steps.entries()) {
    const res = await nodeRequest(gw, 'POST', `/api/jobs/${job.job_id}/llm-call`, {
      model_group: 'AnalysisAgent',
      messages: [{ role: 'user', content: prompt }],
      purpose,
      temperature: 0.3,
    }, { ...H, 'X-Request-Id': `step-${i}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.response.content.slice(0, 50), prompt.slice(0, 50));
    tokens += res.body.metadata.tokens_used;
  }
  // Every worker sees the same job: read it on fresh connections until
  // workers other than those that served the steps have answered.
  await waitFor(() => servedBy(gw).has('step-2'), 5000, 'the access log');
  const pids = new Set([0, 1, 2].map((i) => servedBy(gw).get(`step-${i}`)));
  for (let i = 0; pids.size < 2 && i < 200; i++) {
    const seen = await nodeRequest(gw, 'GET', `/api/jobs/${job.job_id}`, undefined,
      { ...H, 'X-Request-Id': `read-${i}` });
    assert.equal(seen.body.costs.total_calls, 3);
    assert.equal(seen.body.costs.total_tokens, tokens);
    await waitFor(() => servedBy(gw).has(`read-${i}`), 5000, 'the access log');
    pids.add(servedBy(gw).get(`read-${i}`));
  }
  assert.ok(pids.size >= 2, 'one worker served everything');
  const res = await nodeRequest(gw, 'POST', `/api/jobs/${job.job_id}/complete`,
    { status: 'completed' }, { ...H, 'X-Request-Id': 'complete' });
  assert.equal(res.status, 200, res.text);
  const c = res.body.costs;
  assert.equal(res.body.status, 'completed');
  assert.ok(!Number.isNaN(Date.parse(res.body.completed_at)));
  assert.equal(c.total_calls, 3);
  assert.equal(c.successful_calls, 3);
  assert.equal(c.failed_calls, 0);
  assert.equal(c.total_tokens, tokens);
  assert.equal(typeof c.total_cost_usd, 'number');
  assert.ok(c.total_cost_usd > 0, 'priced-echo costs money');
  assert.equal(c.credit_applied, true);
  assert.equal(c.credits_remaining, 9);
  assert.ok(Number.isInteger(c.avg_latency_ms));
  // A second completion, and a call on a completed job: 409.
  const again = await post(gw, `/api/jobs/${job.job_id}/complete`, { status: 'completed' }, H);
  assert.equal(again.status, 409);
  assert.equal(typeof again.body.detail, 'string');
  const late = await post(gw, `/api/jobs/${job.job_id}/llm-call`, {
    model_group: 'AnalysisAgent', messages: [{ role: 'user', content: 'x' }],
  }, H);
  assert.equal(late.status, 409);
  assert.equal(await credits(gw), 9, 'cancelled and failed jobs cost nothing');
});

test('errors_are_detail_bodies', async (t) => {
  const gw = await jobsGateway(t);
  const job = await createJob(gw);
  const call = (body, headers = H, id = job.job_id) => post(gw, `/api/jobs/${id}/llm-call`, body, headers);
  const ok = { model_group: 'ResumeAgent', messages: [{ role: 'user', content: 'hi' }] };
  const cases = [
    [await call(ok, {}), 401],
    [await call(ok, auth('sk-nobody')), 401],
    [await call(ok, auth(OTHER_KEY)), 403],
    [await call({ ...ok, model_group: 'GPT4Agent' }), 403],
    [await call(ok, H, '00000000-0000-4000-8000-000000000000'), 404],
    [await call(ok, H, 'not-a-uuid'), 404],
    [await call({ messages: ok.messages }), 422],
    [await call({ ...ok, model_group: 7 }), 422],
    [await call({ ...ok, model_group: 'NoSuchGroup' }), 422],
    [await call({ model_group: 'ResumeAgent' }), 422],
    [await call({ ...ok, messages: 'hi' }), 422],
    [await call({ ...ok, temperature: 2.5 }), 422],
    [await call({ ...ok, temperature: 'hot' }), 422],
    [await call({ ...ok, max_tokens: 0 }), 422],
    [await call({ ...ok, purpose: 5 }), 422],
    [await call('{"model_group": '), 422],
    [await post(gw, '/api/jobs/create', { team_id: 'other-corp', job_type: 'x' }, H), 403],
    [await post(gw, '/api/jobs/create', { job_type: 'x' }, H), 422],
    [await post(gw, '/api/jobs/create', { team_id: 'acme-corp' }, H), 422],
    [await post(gw, '/api/jobs/create', { team_id: 'acme-corp', job_type: '' }, H), 422],
    [await post(gw, `/api/jobs/${job.job_id}/complete`, { status: 'done' }, H), 422],
    [await post(gw, `/api/jobs/${job.job_id}/complete`, {}, H), 422],
    [await get(gw, `/api/jobs/${job.job_id}`, auth(OTHER_KEY)), 403],
  ];
  for (const [i, [res, status]] of cases.entries()) {
    assert.equal(res.status, status, `case ${i}: ${res.text}`);
    assert.deepEqual(Object.keys(res.body), ['detail'], `case ${i}: ${res.text}`);
    assert.equal(typeof res.body.detail, 'string');
  }
  assert.equal(cases[3][0].body.detail,
    "Team 'acme-corp' does not have access to model group 'GPT4Agent'");
  // None of it was a call, and the job is still open.
  const got = await get(gw, `/api/jobs/${job.job_id}`, H);
  assert.equal(got.body.costs.total_calls, 0);
  assert.equal(got.body.status, 'in_progress');
});

test('no_credits_402_and_rate_limit_429', async (t) => {
  const gw = await jobsGateway(t, { credits: 1, rpm: 2 });
  const job = await createJob(gw);
  const done = await post(gw, `/api/jobs/${job.job_id}/complete`, { status: 'completed' }, H);
  assert.equal(done.body.costs.credits_remaining, 0);
  const refused = await post(gw, '/api/jobs/create', { team_id: 'acme-corp', job_type: 'x' }, H);
  assert.equal(refused.status, 402, refused.text);
  assert.match(refused.body.detail, /no credits/);
  const other = await post(gw, '/api/jobs/create', { team_id: 'other-corp', job_type: 'x' }, auth(OTHER_KEY));
  assert.equal(other.status, 200);
  const id = other.body.job_id;
  const ok = { model_group: 'ResumeAgent', messages: [{ role: 'user', content: 'hi' }] };
  // other-corp has no allow-list and rpm 1000000 from the defaults, so the
  // rate limit is acme-corp's: a new grant lets it make a job again.
  gw.writeConfig({ teams: teams(2, 2), groups: GROUPS });
  gw.signal('SIGHUP');
  await waitFor(async () => (await post(gw, '/api/jobs/create',
    { team_id: 'acme-corp', job_type: 'x' }, H)).status === 200, 10000, 'the new grant');
  const mine = await createJob(gw);
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    statuses.push((await post(gw, `/api/jobs/${mine.job_id}/llm-call`, ok, H)).status);
  }
  assert.ok(statuses.includes(429), statuses.join());
  const limited = await post(gw, `/api/jobs/${mine.job_id}/llm-call`, ok, H);
  assert.equal(limited.status, 429);
  assert.deepEqual(Object.keys(limited.body), ['detail']);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal((await post(gw, `/api/jobs/${id}/llm-call`, ok, auth(OTHER_KEY))).status, 200);
});

test('concurrent_completions_charge_each_job_once', async (t) => {
  const gw = await jobsGateway(t, { workers: 4, credits: 100 });
  const jobs = await Promise.all([...Array(20).keys()].map(() => createJob(gw)));
  const attempts = jobs.flatMap((j) => [0, 1, 2].map(() => post(gw,
    `/api/jobs/${j.job_id}/complete`, { status: 'completed' }, H)));
  const statuses = (await Promise.all(attempts)).map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 20);
  assert.equal(statuses.filter((s) => s === 409).length, 40);
  assert.equal(await credits(gw), 80);
});

test('jobs_and_credits_survive_reload_and_restart', async (t) => {
  const gw = await jobsGateway(t, { credits: 10, keepDir: true });
  t.after(() => fs.rmSync(gw.dir, { recursive: true, force: true }));
  const open = await createJob(gw);
  await post(gw, `/api/jobs/${open.job_id}/llm-call`,
    { model_group: 'ResumeAgent', messages: [{ role: 'user', content: 'keep me' }] }, H);
  const closed = await createJob(gw);
  await post(gw, `/api/jobs/${closed.job_id}/complete`, { status: 'completed' }, H);
  const before = (await get(gw, `/api/jobs/${open.job_id}`, H)).body;
  const old = gw.workerPids();
  gw.signal('SIGHUP');
  await waitFor(() => {
    const now = gw.workerPids();
    return now.length === 2 && now.every((p) => !old.includes(p));
  }, 10000, 'new workers');
  assert.deepEqual((await get(gw, `/api/jobs/${open.job_id}`, H)).body, before);
  assert.equal((await get(gw, `/api/jobs/${closed.job_id}`, H)).body.status, 'completed');
  assert.equal(await credits(gw), 9, 'the credit of the completed job, after the reload');
  await gw.stop();
  const again = await jobsGateway(t, { credits: 10, dir: gw.dir, keepDir: true, port: gw.port });
  assert.deepEqual((await get(again, `/api/jobs/${open.job_id}`, H)).body, before);
  const done = await post(again, `/api/jobs/${open.job_id}/complete`, { status: 'completed' }, H);
  assert.equal(done.status, 200);
  assert.equal(done.body.costs.total_calls, 1);
  assert.equal(done.body.costs.credits_remaining, 8);
});

test('a_job_call_falls_back_through_the_mock_upstream', async (t) => {
  const mock = await startMock(t);
  const gw = await jobsGateway(t, {
    providers: `  up: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, retries: 0 }\n`,
    models: '  broken: { provider: up, model: fault-status-500 }\n  fine: { provider: up, model: good-model }\n',
    groups: '  Upstream: { primary: broken, fallbacks: [fine] }\n',
  });
  const job = await createJob(gw);
  const res = await post(gw, `/api/jobs/${job.job_id}/llm-call`,
    { model_group: 'Upstream', messages: [{ role: 'user', content: 'fall back' }] }, H);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  assert.equal(res.headers.get('x-tollgate-model'), 'fine');
  assert.equal(res.body.response.content, 'fall back');
  const got = (await get(gw, `/api/jobs/${job.job_id}`, H)).body;
  assert.equal(got.costs.total_calls, 1);
  assert.equal(got.costs.successful_calls, 1);
  const stream = await post(gw, `/api/jobs/${job.job_id}/llm-call-stream`,
    { model_group: 'Upstream', messages: [{ role: 'user', content: 'fall back' }] }, H);
  const events = sseEvents(stream.text);
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(events.at(-2).choices[0].finish_reason, 'stop');
});

test('a_table_full_of_open_jobs_answers_503_then_evicts_closed_ones', async (t) => {
  const gw = await jobsGateway(t, { credits: 10 });
  const ids = [];
  for (let batch = 0; batch < 4096 / 64; batch++) {
    const made = await Promise.all([...Array(64).keys()].map(() => createJob(gw, 'filler')));
    ids.push(...made.map((j) => j.job_id));
  }
  assert.equal(new Set(ids).size, 4096);
  const full = await post(gw, '/api/jobs/create', { team_id: 'acme-corp', job_type: 'x' }, H);
  assert.equal(full.status, 503, full.text);
  assert.deepEqual(Object.keys(full.body), ['detail']);
  assert.equal(full.headers.get('retry-after'), '1');
  // Closing two makes room; the one closed first goes first.
  await post(gw, `/api/jobs/${ids[7]}/complete`, { status: 'cancelled' }, H);
  await post(gw, `/api/jobs/${ids[3]}/complete`, { status: 'failed' }, H);
  const next = await createJob(gw, 'after');
  assert.equal((await get(gw, `/api/jobs/${ids[7]}`, H)).status, 404);
  assert.equal((await get(gw, `/api/jobs/${ids[3]}`, H)).body.status, 'failed');
  assert.equal((await get(gw, `/api/jobs/${next.job_id}`, H)).body.job_type, 'after');
  assert.equal((await get(gw, `/api/jobs/${ids[0]}`, H)).body.status, 'in_progress');
});
