// The HTTP upstream client and the OpenAI wire, end to end, with tollgate
// as its own upstream: a provider of type openai whose base_url is the
// gateway's own /v1 (served there by the mock provider). Exercises the
// connection pool, request encoding, SSE decoding, and the mapping of
// upstream failures to 400/502/504.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { KEY_A, auth, freePort, post, sseEvents, startGateway } from './lib.mjs';

async function selfLoop(t, extra = {}) {
  const port = await freePort();
  const dead = await freePort();
  return startGateway(t, {
    port,
    streamDelay: 50,
    providers: `  self: { type: openai, base_url: "http://127.0.0.1:${port}/v1", api_key: "${KEY_A}", timeout_ms: ${extra.timeout ?? 5000} }
  selfbadkey: { type: openai, base_url: "http://127.0.0.1:${port}/v1", api_key: "wrong" }
  nowhere: { type: openai, base_url: "http://127.0.0.1:${dead}/v1", api_key: "x" }
`,
    models: `  self-echo: { provider: self, model: mock-echo }
  self-slow: { provider: self, model: slow-echo }
  self-dup1: { provider: self, model: dup-id }
  self-dup2: { provider: self, model: dup-id }
  self-badkey: { provider: selfbadkey, model: mock-echo }
  nowhere-echo: { provider: nowhere, model: mock-echo }
`,
  });
}

const ask = (text) => ({ messages: [{ role: 'user', content: text }] });

test('openai_provider_non_stream_round_trip', async (t) => {
  const gw = await selfLoop(t);
  const res = await post(gw, '/v1/chat/completions', { ...ask('over the wire'), model: 'self-echo', max_tokens: 50, temperature: 0.5, stop: ['zzz'] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-provider'), 'self');
  assert.equal(res.body.model, 'self-echo');
  assert.equal(res.body.choices[0].message.content, 'over the wire');
  assert.equal(res.body.choices[0].finish_reason, 'stop');
  assert.deepEqual(res.body.usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
});

test('openai_provider_stream_round_trip', async (t) => {
  const gw = await selfLoop(t);
  const res = await post(gw, '/v1/chat/completions', {
    ...ask('one two three'), model: 'self-slow', stream: true, stream_options: { include_usage: true },
  });
  assert.equal(res.status, 200, res.text);
  const events = sseEvents(res.text);
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1).map((e) => e.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'one two three');
  assert.equal(events.at(-3).choices[0].finish_reason, 'stop');
  assert.deepEqual(events.at(-2).usage, { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
});

test('openai_provider_max_tokens_maps_to_length', async (t) => {
  const gw = await selfLoop(t);
  const res = await post(gw, '/v1/chat/completions', { ...ask('a long enough answer'), model: 'self-echo', max_tokens: 1 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'a lo');
  assert.equal(res.body.choices[0].finish_reason, 'length');
});

test('upstream_4xx_is_the_callers_400', async (t) => {
  const gw = await selfLoop(t);
  // Inside, the bare id dup-id names two models, so it resolves to none.
  const res = await post(gw, '/v1/chat/completions', { ...ask('x'), model: 'self-dup1' });
  assert.equal(res.status, 400, res.text);
  assert.match(res.body.error.message, /provider self answered 400: The model 'dup-id' does not exist/);
});

test('upstream_refusing_our_key_is_502', async (t) => {
  const gw = await selfLoop(t);
  const res = await post(gw, '/v1/chat/completions', { ...ask('x'), model: 'self-badkey' });
  assert.equal(res.status, 502, res.text);
  assert.equal(res.body.error.type, 'upstream_error');
  assert.match(res.body.error.message, /answered 401: Incorrect API key provided/);
});

test('upstream_connection_refused_is_502', async (t) => {
  const gw = await selfLoop(t);
  for (const stream of [false, true]) {
    const res = await post(gw, '/v1/chat/completions', { ...ask('x'), model: 'nowhere-echo', stream });
    assert.equal(res.status, 502, res.text);
    assert.match(res.body.error.message, /provider nowhere: connection error/);
  }
});

test('upstream_total_timeout_is_504_or_a_stream_error_event', async (t) => {
  const gw = await selfLoop(t, { timeout: 120 });
  // Non-streaming: the inner stream of 50 ms words outlasts 120 ms? No:
  // the inner call is non-streaming too and answers at once, so use a
  // stream, which the outer call must cut after 120 ms.
  const res = await post(gw, '/v1/chat/completions', {
    ...ask('w1 w2 w3 w4 w5 w6 w7 w8 w9 w10'), model: 'self-slow', stream: true,
  });
  assert.equal(res.status, 200);
  const events = sseEvents(res.text);
  const last = events.at(-1);
  assert.equal(last, '[DONE]');
  const err = events.at(-2);
  assert.equal(err.error.type, 'upstream_error');
  assert.match(err.error.message, /timeout/);
  const words = events.filter((e) => e.choices?.[0]?.delta?.content).length;
  assert.ok(words >= 1 && words < 10, `${words} words before the cut`);
});

test('client_gone_cancels_the_upstream_call', async (t) => {
  const gw = await selfLoop(t);
  const ac = new AbortController();
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', signal: ac.signal,
    headers: { 'Content-Type': 'application/json', ...auth() },
    body: JSON.stringify({ ...ask('w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12'), model: 'self-slow', stream: true }),
  });
  const reader = res.body.getReader();
  await reader.read();
  ac.abort();
  // The gateway goes on serving, through the same pool.
  for (let i = 0; i < 3; i++) {
    const ok = await post(gw, '/v1/chat/completions', { ...ask('again'), model: 'self-echo' });
    assert.equal(ok.status, 200, ok.text);
  }
});
