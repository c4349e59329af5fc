// The OpenAI-compatible surface on the mock provider, checked field by field,
// raw and through the official openai SDK.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

import {
  KEY_A, auth, get, post, sseEvents, startGateway,
} from './lib.mjs';

const HELLO = { model: 'mock-echo', messages: [{ role: 'user', content: 'Hello there, gateway!' }] };

function assertRequestId(headers) {
  assert.match(headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);
}

test('chat_completion_non_stream_fields', async (t) => {
  const gw = await startGateway(t);
  const before = Math.floor(Date.now() / 1000);
  const res = await post(gw, '/v1/chat/completions', {
    ...HELLO,
    messages: [{ role: 'system', content: 'Be brief.' }, ...HELLO.messages],
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assertRequestId(res.headers);
  assert.equal(res.headers.get('x-tollgate-provider'), 'mock');
  assert.equal(res.headers.get('x-tollgate-model'), 'mock-echo');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  const b = res.body;
  assert.deepEqual(Object.keys(b).sort(),
    ['choices', 'created', 'id', 'model', 'object', 'system_fingerprint', 'usage']);
  assert.equal(b.id, `chatcmpl-${res.headers.get('x-request-id')}`);
  assert.equal(b.object, 'chat.completion');
  assert.ok(b.created >= before && b.created <= before + 5);
  assert.equal(b.model, 'mock-echo');
  assert.deepEqual(b.choices, [{
    index: 0,
    message: { role: 'assistant', content: 'Hello there, gateway!', refusal: null },
    logprobs: null,
    finish_reason: 'stop',
  }]);
  // "Be brief." (9) + "Hello there, gateway!" (21) = 30 chars -> 8 tokens;
  // the answer is 21 chars -> 6 tokens.
  assert.deepEqual(b.usage, { prompt_tokens: 8, completion_tokens: 6, total_tokens: 14 });
});

test('chat_completion_default_model_when_omitted', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', { messages: HELLO.messages });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.model, 'mock-echo');
  assert.equal(res.headers.get('x-tollgate-model'), 'mock-echo');
});

test('chat_completion_content_parts_and_unicode', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', {
    model: 'mock-echo',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'héllo ' }, { type: 'text', text: '😀 wörld' }] }],
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'héllo 😀 wörld');
  // 13 code points -> 4 tokens each way.
  assert.deepEqual(res.body.usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
});

test('chat_completion_max_tokens_truncates_with_length', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', {
    ...HELLO, max_tokens: 2,
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'Hello th');
  assert.equal(res.body.choices[0].finish_reason, 'length');
  assert.equal(res.body.usage.completion_tokens, 2);
});

test('chat_completion_stop_sequence_cuts_answer', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', { ...HELLO, stop: [', '] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'Hello there');
  assert.equal(res.body.choices[0].finish_reason, 'stop');
});

test('chat_completion_model_group_and_provider_slash_id', async (t) => {
  const gw = await startGateway(t);
  let res = await post(gw, '/v1/chat/completions', { ...HELLO, model: 'Echoes' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.model, 'Echoes');
  assert.equal(res.headers.get('x-tollgate-model'), 'mock-echo');
  res = await post(gw, '/v1/chat/completions', { ...HELLO, model: 'mock/echo-2' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-model'), 'other-echo');
});

test('chat_completion_stream_fields', async (t) => {
  const gw = await startGateway(t);
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth() },
    body: JSON.stringify({ ...HELLO, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assertRequestId(res.headers);
  const events = sseEvents(await res.text());
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1);
  const id = `chatcmpl-${res.headers.get('x-request-id')}`;
  for (const c of chunks) {
    assert.deepEqual(Object.keys(c).sort(),
      ['choices', 'created', 'id', 'model', 'object', 'system_fingerprint']);
    assert.equal(c.id, id);
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'mock-echo');
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].index, 0);
  }
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
  const words = chunks.slice(1, -1).map((c) => c.choices[0].delta.content);
  assert.deepEqual(words, ['Hello ', 'there, ', 'gateway!']);
  assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  assert.deepEqual(chunks.at(-1).choices[0].delta, {});
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('chat_completion_stream_include_usage_chunk', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', {
    ...HELLO, stream: true, stream_options: { include_usage: true },
  });
  const events = sseEvents(res.text);
  assert.equal(events.at(-1), '[DONE]');
  const usage = events.at(-2);
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, { prompt_tokens: 6, completion_tokens: 6, total_tokens: 12 });
  for (const c of events.slice(0, -2)) assert.equal(c.usage, null);
});

test('chat_completion_stream_is_paced_by_stream_delay', async (t) => {
  const gw = await startGateway(t, { streamDelay: 150 });
  const started = Date.now();
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth() },
    body: JSON.stringify({ model: 'slow-echo', stream: true, messages: [{ role: 'user', content: 'a b c d' }] }),
  });
  const reader = res.body.getReader();
  const { value } = await reader.read();
  const firstAt = Date.now() - started;
  assert.match(new TextDecoder().decode(value), /"role":"assistant"/);
  let rest = '';
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    rest += new TextDecoder().decode(r.value);
  }
  const total = Date.now() - started;
  // Four words, three pauses of 150 ms between them: the first chunk comes
  // before the pauses, the whole stream after all of them.
  assert.ok(total >= 450, `stream took ${total} ms`);
  assert.ok(firstAt < total - 300, `first chunk at ${firstAt} ms of ${total}`);
  assert.match(rest, /data: \[DONE\]/);
});

test('openai_sdk_reads_completion_and_stream', async (t) => {
  const gw = await startGateway(t);
  const client = new OpenAI({ apiKey: KEY_A, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const c = await client.chat.completions.create(HELLO);
  assert.equal(c.choices[0].message.content, 'Hello there, gateway!');
  assert.equal(c.usage.total_tokens, 12);
  const stream = await client.chat.completions.create({
    ...HELLO, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Hello there, gateway!');
  assert.equal(usage.completion_tokens, 6);
  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'mock-echo' && m.object === 'model'));
});

test('openai_sdk_surfaces_errors', async (t) => {
  const gw = await startGateway(t);
  const client = new OpenAI({ apiKey: 'wrong', baseURL: `${gw.url}/v1`, maxRetries: 0 });
  await assert.rejects(client.chat.completions.create(HELLO), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
  const good = new OpenAI({ apiKey: KEY_A, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  await assert.rejects(good.chat.completions.create({ ...HELLO, temperature: 3 }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
    return true;
  });
});

test('models_list_respects_team_allow_lists', async (t) => {
  const gw = await startGateway(t);
  const a = await get(gw, '/v1/models');
  assert.equal(a.status, 200);
  assert.equal(a.body.object, 'list');
  assert.deepEqual(a.body.data.map((m) => m.id),
    ['Echoes', 'mock-echo', 'slow-echo', 'other-echo', 'gpt-4o', 'priced-echo']);
  const m = a.body.data.find((x) => x.id === 'slow-echo');
  assert.deepEqual(Object.keys(m).sort(), ['created', 'id', 'object', 'owned_by']);
  assert.equal(m.owned_by, 'slow');
  assert.equal(typeof m.created, 'number');
  const b = await get(gw, '/v1/models', auth('tg-test-key-b-plain'));
  assert.deepEqual(b.body.data.map((x) => x.id), ['mock-echo']);
});

test('health_endpoints', async (t) => {
  const gw = await startGateway(t);
  const h = await get(gw, '/health', {});
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'healthy');
  assert.equal(h.body.aws, 'not_configured');
  assert.deepEqual(Object.keys(h.body.providers), ['mock', 'slow', 'openai']);
  assert.deepEqual(h.body.providers.openai, {
    type: 'openai', enabled: false, state: 'closed', consecutive_fails: 0,
    cooling_down_ms: 0, in_flight: 0, latency_ms: null,
  });
  assertRequestId(h.headers);
  const z = await get(gw, '/healthz', {});
  assert.equal(z.status, 200);
  assert.deepEqual(z.body, { status: 'ok' });
});

test('request_id_from_client_is_kept_when_plain', async (t) => {
  const gw = await startGateway(t);
  let res = await get(gw, '/healthz', { 'X-Request-Id': 'lb-1234.abc' });
  assert.equal(res.headers.get('x-request-id'), 'lb-1234.abc');
  res = await get(gw, '/healthz', { 'X-Request-Id': 'bad id with spaces' });
  assertRequestId(res.headers);
});

test('disabled_provider_answers_503', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', { ...HELLO, model: 'gpt-4o' });
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, 'provider_unavailable');
  assert.match(res.body.detail, /openai/);
});
