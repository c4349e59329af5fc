// The STIP task gateway of seeds 001/002 (worker/front_stip.c): the seed's
// example requests as written, its field table (types, defaults, ranges),
// its error body for every failure, classification that answers one of the
// caller's classes or 502, and the generation stream's chunks.
//
// The seed names models `openai/gpt-4o` and `groq/llama-3.3-70b-versatile`,
// so providers named `openai` and `groq` reach the wire-level mock upstream
// (which echoes the last user message; a model `say-<text>` answers <text>).
// lib.mjs's base config already has a (disabled) provider named `openai`,
// and a YAML key may not repeat, so stipGateway rewrites that line and
// reloads the gateway with SIGHUP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

import {
  SECRET_TOKEN, auth, get, isAlive, makeConfig, post, sseEvents, startGateway,
  startMock, waitFor,
} from './lib.mjs';

const BASE_OPENAI = '  openai: { type: openai, api_key: "" }\n';

const CLASSES = [
  { id: 'positive', label: 'Positive sentiment' },
  { id: 'negative', label: 'Negative sentiment' },
  { id: 'neutral', label: 'Neutral sentiment' },
];

// Starts a gateway whose `openai` and `groq` providers are the mock
// upstream; `o.models` / `o.groups` add to lib's models and groups.
async function stipGateway(t, o = {}) {
  const mock = await startMock(t);
  const up = `{ type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, retries: 0 }`;
  const opts = {
    workers: 1,
    ...o,
    providers: `  groq: ${up}\n`,
    models: '  llama: { provider: groq, model: llama-3.3-70b-versatile }\n'
      + '  broken: { provider: openai, model: fault-status-500 }\n'
      + '  unavailable: { provider: openai, model: fault-status-503 }\n'
      + '  cut: { provider: openai, model: fault-drop-mid-stream }\n'
      + '  say-neg: { provider: openai, model: say-negative }\n'
      + '  say-nothing: { provider: openai, model: say- }\n'
      + (o.models ?? ''),
    groups: '  StipGroup: { primary: broken, fallbacks: [gpt-4o] }\n' + (o.groups ?? ''),
  };
  const gw = await startGateway(t, opts);
  const yaml = makeConfig(gw.dir, gw.port, opts);
  assert.ok(yaml.includes(BASE_OPENAI), 'lib.mjs changed its openai provider line');
  const oldWorkers = gw.workerPids();
  fs.writeFileSync(gw.configPath, yaml.replace(BASE_OPENAI, `  openai: ${up}\n`));
  gw.signal('SIGHUP');
  await waitFor(() => /configuration generation 2/.test(gw.logs()), 10000, 'the reload');
  await waitFor(() => oldWorkers.every((p) => !isAlive(p)), 10000, 'old workers to exit');
  return { gw, mock };
}

function assertStipError(res, status, errorPattern) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(res.body).sort(), ['content', 'error', 'status', 'usage']);
  assert.equal(res.body.status, 'error');
  assert.equal(typeof res.body.error, 'string');
  assert.ok(res.body.error.length > 0);
  assert.equal(res.body.content, null);
  assert.equal(res.body.usage, null);
  if (errorPattern) assert.match(res.body.error, errorPattern);
}

function assertUsage(usage, expected) {
  assert.deepEqual(Object.keys(usage).sort(), ['completion_tokens', 'prompt_tokens', 'total_tokens']);
  for (const v of Object.values(usage)) assert.ok(Number.isInteger(v), JSON.stringify(usage));
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  if (expected) assert.deepEqual(usage, expected);
}

// The mock's token counts: ceil(code points / 4).
const tokens = (s) => Math.ceil([...s].length / 4);

// The usage the mock reports for the request it received last.
async function mockUsage(mock, answer) {
  const { body } = await mock.last();
  const prompt = tokens(body.messages.map((m) => m.content).join(''));
  const completion = tokens(answer);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function assertSuccess(res) {
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(res.body).sort(), ['content', 'status', 'usage']);
  assert.equal(res.body.status, 'success');
  assertUsage(res.body.usage);
}

// ---- the provider lists ---------------------------------------------------

test('root_and_providers_list_enabled_providers_upper_and_lower_case', async (t) => {
  // lib's base config: mock and slow, and an openai provider disabled by
  // its empty api_key, which is not listed.
  const gw = await startGateway(t);
  let res = await get(gw, '/');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { status: 'success', api_status: 'up', providers: ['MOCK', 'SLOW'] });
  res = await get(gw, '/llm/providers');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { status: 'success', providers: ['mock', 'slow'] });
});

test('providers_list_names_the_configured_openai_and_groq', async (t) => {
  const { gw } = await stipGateway(t);
  let res = await get(gw, '/');
  assert.deepEqual(res.body,
    { status: 'success', api_status: 'up', providers: ['MOCK', 'SLOW', 'OPENAI', 'GROQ'] });
  res = await get(gw, '/llm/providers');
  assert.deepEqual(res.body, { status: 'success', providers: ['mock', 'slow', 'openai', 'groq'] });
});

// ---- the seed's examples, sent as written ----------------------------------

test('seed_generation_example', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/generation', {
    model: 'openai/gpt-4o',
    prompt: 'You are a helpful assistant.',
    user_prompt: 'What is the capital of France?',
    temperature: 0.7,
    max_tokens: 150,
  });
  assertSuccess(res);
  assert.equal(res.body.content, 'What is the capital of France?');
  // 28 + 30 characters in, 30 out.
  assertUsage(res.body.usage, { prompt_tokens: 15, completion_tokens: 8, total_tokens: 23 });
  assert.equal(res.headers.get('x-tollgate-provider'), 'openai');
  assert.equal(res.headers.get('x-tollgate-model'), 'gpt-4o');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  const { body } = await mock.last();
  assert.equal(body.model, 'gpt-4o');
  assert.deepEqual(body.messages, [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is the capital of France?' },
  ]);
  assert.equal(body.temperature, 0.7);
  assert.equal(body.max_completion_tokens ?? body.max_tokens, 150);
});

test('seed_classification_example', async (t) => {
  // The example's model answers "negative" here: an alias named
  // `openai/gpt-4o` (aliases resolve before provider/model_id) whose
  // upstream model always says so.
  const { gw, mock } = await stipGateway(t, {
    models: '  "openai/gpt-4o": { provider: openai, model: say-negative }\n',
  });
  const res = await post(gw, '/llm/classification', {
    model: 'openai/gpt-4o',
    user_prompt: 'This movie was absolutely terrible. Waste of time.',
    classes: [
      { id: 'positive', label: 'Positive sentiment' },
      { id: 'negative', label: 'Negative sentiment' },
      { id: 'neutral', label: 'Neutral sentiment' },
    ],
    temperature: 0.2,
  });
  assertSuccess(res);
  assert.deepEqual(res.body.content, { id: 'negative', label: 'Negative sentiment' });
  assertUsage(res.body.usage, await mockUsage(mock, 'negative'));
  const { body } = await mock.last();
  assert.equal(body.temperature, 0.2);
  assert.equal(body.max_completion_tokens ?? body.max_tokens, 4096);
  assert.equal(body.messages.length, 2);
  assert.equal(body.messages[0].role, 'system');
  for (const k of CLASSES) assert.ok(body.messages[0].content.includes(`${k.id}: ${k.label}`));
  assert.deepEqual(body.messages[1],
    { role: 'user', content: 'This movie was absolutely terrible. Waste of time.' });
});

test('seed_summarization_example', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/summarization', {
    model: 'groq/llama-3.3-70b-versatile',
    user_prompt: 'Long article text here...',
    temperature: 0.3,
    max_tokens: 200,
  });
  assertSuccess(res);
  assert.deepEqual(res.body.content, { summary: 'Long article text here...' });
  assertUsage(res.body.usage, await mockUsage(mock, 'Long article text here...'));
  assert.equal(res.headers.get('x-tollgate-provider'), 'groq');
  const { body } = await mock.last();
  assert.equal(body.model, 'llama-3.3-70b-versatile');
  assert.equal(body.temperature, 0.3);
  assert.equal(body.max_completion_tokens ?? body.max_tokens, 200);
  assert.equal(body.messages[0].role, 'system');
  assert.match(body.messages[0].content, /^Summarize/);
  assert.deepEqual(body.messages[1], { role: 'user', content: 'Long article text here...' });
});

test('seed_generation_stream_example', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/generation/stream', {
    model: 'openai/gpt-4o',
    prompt: 'You are a helpful assistant.',
    user_prompt: 'What is the capital of France?',
    temperature: 0.7,
    max_tokens: 150,
  });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.ok(res.text.endsWith('\n\n'));
  const events = sseEvents(res.text);
  const deltas = events.slice(0, -1);
  const final = events.at(-1);
  // The mock streams a word at a time: six words, six chunks.
  assert.equal(deltas.length, 6);
  for (const e of deltas) {
    assert.deepEqual(Object.keys(e).sort(), ['id', 'is_final', 'text', 'usage']);
    assert.equal(typeof e.id, 'string');
    assert.equal(typeof e.text, 'string');
    assert.ok(e.text.length > 0);
    assert.equal(e.is_final, false);
    assert.equal(e.usage, null);
  }
  assert.deepEqual(Object.keys(final).sort(), ['id', 'is_final', 'text', 'usage']);
  assert.equal(final.is_final, true);
  assert.equal(final.text, deltas.map((e) => e.text).join(''));
  assert.equal(final.text, 'What is the capital of France?');
  assertUsage(final.usage, { prompt_tokens: 15, completion_tokens: 8, total_tokens: 23 });
  const ids = events.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, 'chunk ids must be unique');
  assert.equal((await mock.last()).body.stream, true);
});

// ---- authentication -------------------------------------------------------

test('auth_the_seed_way_x_api_key_secret_token', async (t) => {
  const gw = await startGateway(t);
  const ask = { model: 'mock-echo', user_prompt: 'hello there' };
  // SECRET_TOKEN acts as team-b, which may use mock-echo only.
  let res = await post(gw, '/llm/generation', ask, { 'X-API-Key': SECRET_TOKEN });
  assertSuccess(res);
  assert.equal(res.body.content, 'hello there');
  res = await get(gw, '/llm/providers', { 'X-API-Key': SECRET_TOKEN });
  assert.equal(res.status, 200);
  // Its allow-list refuses other models: 403 in STIP's body.
  res = await post(gw, '/llm/generation', { ...ask, model: 'other-echo' }, { 'X-API-Key': SECRET_TOKEN });
  assertStipError(res, 403, /other-echo/);
  // Missing and wrong keys, on every STIP path.
  for (const headers of [{}, { 'X-API-Key': 'wrong' }, auth('wrong')]) {
    assertStipError(await post(gw, '/llm/generation', ask, headers), 401);
    assertStipError(await post(gw, '/llm/classification', ask, headers), 401);
    assertStipError(await get(gw, '/', headers), 401);
    assertStipError(await get(gw, '/llm/providers', headers), 401);
  }
});

test('auth_keyless_when_an_anonymous_team_is_set', async (t) => {
  // The seed's "SECRET_TOKEN not set": no key needed.
  const gw = await startGateway(t, { anonymousTeam: 'team-a' });
  const res = await post(gw, '/llm/generation', { model: 'mock-echo', user_prompt: 'hi' }, {});
  assertSuccess(res);
  assert.equal(res.body.content, 'hi');
  assert.equal((await get(gw, '/', {})).status, 200);
});

// ---- classification -------------------------------------------------------

// The mock echoes the user's text, so the text is the model's answer.
const ANSWERS = [
  ['negative', 'negative'],
  ['Negative sentiment', 'negative'],
  ['"positive"', 'positive'],
  ["'neutral'", 'neutral'],
  ['Neutral.', 'neutral'],
  ['NEGATIVE', 'negative'],
  ['  **negative**\n', 'negative'],
  ['`positive`', 'positive'],
  ['\u201cnegative\u201d', 'negative'],
  ['positive sentiment!', 'positive'],
  ['The sentiment is negative.', 'negative'],
  ['Class: neutral (the text states a fact)', 'neutral'],
];

test('classification_reads_the_answer_robustly', async (t) => {
  const { gw, mock } = await stipGateway(t);
  for (const [answer, id] of ANSWERS) {
    const res = await post(gw, '/llm/classification',
      { model: 'openai/gpt-4o', user_prompt: answer, classes: CLASSES });
    assertSuccess(res);
    assert.deepEqual(res.body.content, CLASSES.find((k) => k.id === id), answer);
    assertUsage(res.body.usage, await mockUsage(mock, answer));
  }
  // A fixed answer, whatever the text.
  const res = await post(gw, '/llm/classification',
    { model: 'openai/say-negative', user_prompt: 'What a great film!', classes: CLASSES });
  assertSuccess(res);
  assert.deepEqual(res.body.content, { id: 'negative', label: 'Negative sentiment' });
});

test('classification_answer_naming_no_class_or_two_is_502', async (t) => {
  const { gw } = await stipGateway(t);
  const cases = [
    ['I cannot tell.', /names none of the given classes: "I cannot tell\."/],
    ['positive or negative', /names more than one of the given classes/],
    ['negatively', /names none/], // not a whole word
    ['non-negative', /names none/],
    ['mixed', /names none/],
  ];
  for (const [answer, pattern] of cases) {
    const res = await post(gw, '/llm/classification',
      { model: 'openai/gpt-4o', user_prompt: answer, classes: CLASSES });
    assertStipError(res, 502, pattern);
  }
  // An empty answer names nothing either.
  const empty = await post(gw, '/llm/classification',
    { model: 'openai/say-', user_prompt: 'anything', classes: CLASSES });
  assertStipError(empty, 502, /names none of the given classes: ""$/);
  // A long answer is quoted in part.
  const long = 'x'.repeat(300);
  const res = await post(gw, '/llm/classification',
    { model: 'openai/gpt-4o', user_prompt: long, classes: CLASSES });
  assertStipError(res, 502);
  assert.ok(res.body.error.includes(`"${'x'.repeat(200)}..."`), res.body.error);
});

test('classification_instruction_keeps_the_callers_prompt', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/classification', {
    model: 'openai/gpt-4o', prompt: 'You grade film reviews.', user_prompt: 'neutral', classes: CLASSES,
  });
  assertSuccess(res);
  const { body } = await mock.last();
  assert.match(body.messages[0].content, /^You grade film reviews\.\n\nClassify /);
  assert.match(body.messages[0].content, /exactly one/);
  assert.ok(body.messages[0].content.endsWith('\n- neutral: Neutral sentiment'));
  assert.deepEqual(body.messages[1], { role: 'user', content: 'neutral' });
});

test('classification_validates_classes', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const ask = (classes) => ({ model: 'openai/gpt-4o', user_prompt: 'negative', classes });
  const cases = [
    [undefined, /Missing required parameter: 'classes'/],
    [null, /'classes'.*expected an array/],
    ['negative', /'classes'.*expected an array/],
    [[], /'classes'.*1 to 256/],
    [Array.from({ length: 257 }, (_, i) => ({ id: `c${i}`, label: `C${i}` })), /1 to 256/],
    [['negative'], /'classes\[0\]'.*expected an object/],
    [[{ label: 'x' }], /Missing required parameter: 'classes\[0\]\.id'/],
    [[{ id: 'x' }], /Missing required parameter: 'classes\[0\]\.label'/],
    [[{ id: 5, label: 'x' }], /'classes\[0\]\.id'.*expected a string/],
    [[{ id: 'x', label: null }], /'classes\[0\]\.label'.*expected a string/],
    [[{ id: '', label: 'x' }], /'classes\[0\]\.id'.*non-empty/],
    [[{ id: ' . ', label: 'x' }], /'classes\[0\]\.id'.*non-empty/],
    [[{ id: 'x', label: '' }], /'classes\[0\]\.label'.*non-empty/],
    [[{ id: 'a', label: 'A' }, { id: 'A', label: 'B' }], /'classes\[1\]\.id'.*also the id of classes\[0\]/],
  ];
  for (const [classes, pattern] of cases) {
    assertStipError(await post(gw, '/llm/classification', ask(classes)), 400, pattern);
  }
  assert.equal((await mock.stats()).total, 0, 'nothing invalid reaches the provider');
  // Other members of a class are ignored; 256 classes are fine.
  const many = Array.from({ length: 256 }, (_, i) => ({ id: `c${i}`, label: `C${i}`, note: 1 }));
  many[7].id = 'negative';
  const res = await post(gw, '/llm/classification', ask(many));
  assertSuccess(res);
  assert.deepEqual(res.body.content, { id: 'negative', label: 'C7' });
});

// ---- summarization and generation messages --------------------------------

test('summarization_with_a_prompt_and_trimmed_summary', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/summarization', {
    model: 'openai/gpt-4o', prompt: 'Write for children.', user_prompt: '\n  A short text.  \n',
  });
  assertSuccess(res);
  assert.deepEqual(res.body.content, { summary: 'A short text.' });
  const { body } = await mock.last();
  assert.match(body.messages[0].content, /^Write for children\.\n\nSummarize /);
  assert.equal(body.messages[1].content, '\n  A short text.  \n');
});

test('generation_with_only_a_prompt_sends_it_as_the_user_message', async (t) => {
  const { gw, mock } = await stipGateway(t);
  for (const extra of [{}, { user_prompt: null }, { user_prompt: '' }]) {
    const res = await post(gw, '/llm/generation',
      { model: 'openai/gpt-4o', prompt: 'Tell me a joke.', ...extra });
    assertSuccess(res);
    assert.equal(res.body.content, 'Tell me a joke.');
    assert.deepEqual((await mock.last()).body.messages, [{ role: 'user', content: 'Tell me a joke.' }]);
  }
  // Only a user_prompt: no system message.
  const res = await post(gw, '/llm/generation', { model: 'openai/gpt-4o', user_prompt: 'Hi.' });
  assertSuccess(res);
  const { body } = await mock.last();
  assert.deepEqual(body.messages, [{ role: 'user', content: 'Hi.' }]);
  assert.equal(body.temperature, 0.2);
  assert.equal(body.max_completion_tokens ?? body.max_tokens, 4096);
});

// ---- streaming ------------------------------------------------------------

test('stream_of_an_empty_answer_is_one_final_chunk', async (t) => {
  const { gw } = await stipGateway(t);
  const res = await post(gw, '/llm/generation/stream', { model: 'openai/say-', user_prompt: 'anything' });
  assert.equal(res.status, 200, res.text);
  const events = sseEvents(res.text);
  assert.equal(events.length, 1);
  assert.equal(typeof events[0].id, 'string');
  assert.equal(events[0].text, '');
  assert.equal(events[0].is_final, true);
  assertUsage(events[0].usage);
  assert.equal(events[0].usage.completion_tokens, 0);
});

test('stream_error_mid_way_ends_with_an_error_line_and_no_final_chunk', async (t) => {
  const { gw } = await stipGateway(t);
  const res = await post(gw, '/llm/generation/stream',
    { model: 'openai/fault-drop-mid-stream', user_prompt: 'one two three four five six' });
  assert.equal(res.status, 200, res.text);
  const events = sseEvents(res.text);
  const last = events.at(-1);
  assert.deepEqual(Object.keys(last).sort(), ['content', 'error', 'status', 'usage']);
  assert.equal(last.status, 'error');
  assert.equal(typeof last.error, 'string');
  assert.equal(last.content, null);
  assert.equal(last.usage, null);
  // The mock sends two words, then drops the connection.
  assert.deepEqual(events.slice(0, -1).map((e) => [e.text, e.is_final]),
    [['one ', false], ['two ', false]]);
});

test('stream_failures_before_the_first_byte_are_json_errors', async (t) => {
  const { gw } = await stipGateway(t);
  let res = await post(gw, '/llm/generation/stream', { model: 'openai/gpt-4o', temperature: 2 });
  assertStipError(res, 400, /'temperature'/);
  res = await post(gw, '/llm/generation/stream', { model: 'openai/fault-status-500', user_prompt: 'x' });
  assertStipError(res, 502);
  // A model group falls back before the stream starts.
  res = await post(gw, '/llm/generation/stream', { model: 'StipGroup', user_prompt: 'fall back' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  const final = sseEvents(res.text).at(-1);
  assert.equal(final.is_final, true);
  assert.equal(final.text, 'fall back');
});

// ---- routing and the gateway's own errors ---------------------------------

test('model_group_falls_back_from_a_failing_primary', async (t) => {
  const { gw, mock } = await stipGateway(t);
  const res = await post(gw, '/llm/generation', { model: 'StipGroup', user_prompt: 'served anyway' });
  assertSuccess(res);
  assert.equal(res.body.content, 'served anyway');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  assert.equal(res.headers.get('x-tollgate-model'), 'gpt-4o');
  assert.equal(res.headers.get('x-tollgate-provider'), 'openai');
  const stats = await mock.stats();
  assert.equal(stats.by_model['fault-status-500'], 1);
  assert.equal(stats.by_model['gpt-4o'], 1);
});

test('upstream_and_quota_errors_keep_their_status_in_stip_body', async (t) => {
  const { gw } = await stipGateway(t, { rpm: 2 });
  // A provider's 5xx is the gateway's 502, naming what the provider said.
  assertStipError(await post(gw, '/llm/generation', { model: 'openai/fault-status-503', user_prompt: 'x' }),
    502, /openai answered 503/);
  assertStipError(await post(gw, '/llm/summarization', { model: 'openai/fault-status-500', user_prompt: 'x' }), 502);
  // Unknown model: the resolver's 400 lists what is valid.
  assertStipError(await post(gw, '/llm/generation', { model: 'nope/none', user_prompt: 'x' }), 400,
    /The model 'nope\/none' does not exist/);
  const res = await post(gw, '/llm/generation', { model: 'openai/gpt-4o', user_prompt: 'x' });
  assertStipError(res, 429);
  assert.ok(res.headers.get('retry-after'));
});

test('a_cooling_provider_is_503_in_stip_body', async (t) => {
  const { gw } = await stipGateway(t, { allowedFails: 1 });
  assertStipError(await post(gw, '/llm/generation', { model: 'openai/fault-status-500', user_prompt: 'x' }), 502);
  const res = await post(gw, '/llm/generation', { model: 'openai/gpt-4o', user_prompt: 'x' });
  assertStipError(res, 503);
  assert.ok(Number(res.headers.get('retry-after')) > 0);
});

// ---- the field table --------------------------------------------------------

const GOOD = { model: 'mock-echo', user_prompt: 'hello' };
const INVALID = [
  [{ user_prompt: 'hello' }, /Missing required parameter: 'model'/],
  [{ ...GOOD, model: null }, /'model'.*expected a string.*null/],
  [{ ...GOOD, model: 5 }, /'model'.*expected a string/],
  [{ ...GOOD, model: '' }, /'model'.*empty/],
  [{ ...GOOD, model: ['openai/gpt-4o'] }, /'model'.*expected a string/],
  [{ ...GOOD, prompt: 5 }, /'prompt'.*expected a string/],
  [{ ...GOOD, prompt: null }, /'prompt'.*expected a string/],
  [{ ...GOOD, user_prompt: 5 }, /'user_prompt'.*expected a string/],
  [{ ...GOOD, user_prompt: ['hello'] }, /'user_prompt'.*expected a string/],
  [{ ...GOOD, temperature: '0.5' }, /'temperature'.*expected a number/],
  [{ ...GOOD, temperature: null }, /'temperature'.*expected a number/],
  [{ ...GOOD, temperature: 1.5 }, /'temperature'.*<= 1/],
  [{ ...GOOD, temperature: -0.1 }, /'temperature'.*>= 0/],
  [{ ...GOOD, max_tokens: 0 }, /'max_tokens'.*>= 1/],
  [{ ...GOOD, max_tokens: 32769 }, /'max_tokens'.*<= 32768/],
  [{ ...GOOD, max_tokens: -5 }, /'max_tokens'.*>= 1/],
  [{ ...GOOD, max_tokens: 1.5 }, /'max_tokens'.*expected an integer/],
  [{ ...GOOD, max_tokens: '100' }, /'max_tokens'.*expected an integer/],
  [{ ...GOOD, max_tokens: true }, /'max_tokens'.*expected an integer/],
  [{ model: 'mock-echo' }, /Either 'prompt' or 'user_prompt'/],
  [{ model: 'mock-echo', prompt: '', user_prompt: null }, /Either 'prompt' or 'user_prompt'/],
  ['{"model": "mock-echo",', /not valid JSON/],
  ['[]', /must be a JSON object/],
  ['', /empty/],
];

test('every_field_is_validated_in_stip_body_with_400', async (t) => {
  const gw = await startGateway(t);
  for (const path of ['/llm/generation', '/llm/generation/stream', '/llm/summarization']) {
    for (const [body, pattern] of INVALID) {
      const res = await post(gw, path, body);
      assertStipError(res, 400, pattern);
    }
  }
  for (const [body, pattern] of INVALID) {
    const res = await post(gw, '/llm/classification',
      typeof body === 'string' ? body : { ...body, classes: CLASSES });
    assertStipError(res, 400, pattern);
  }
});

test('boundaries_defaults_and_unknown_fields_are_accepted', async (t) => {
  const gw = await startGateway(t);
  const ok = [
    { ...GOOD, temperature: 0 },
    { ...GOOD, temperature: 1 },
    { ...GOOD, temperature: 0.0 },
    { ...GOOD, max_tokens: 32768 },
    { ...GOOD, prompt: 'Be brief.', user_prompt: null, extra_field: { any: 1 }, stream: true },
  ];
  for (const body of ok) {
    const res = await post(gw, '/llm/generation', body);
    assertSuccess(res);
  }
  // max_tokens 1 reaches the provider: the mock cuts its answer to 4
  // characters.
  const res = await post(gw, '/llm/generation', { ...GOOD, user_prompt: 'hello world', max_tokens: 1 });
  assertSuccess(res);
  assert.equal(res.body.content, 'hell');
  assertUsage(res.body.usage, { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 });
  // The usage log names the surface.
  await waitFor(() => fs.readFileSync(`${gw.dir}/usage.log`, 'utf8').includes('"surface":"stip"'),
    5000, 'a usage line of the stip surface');
});
