// Each provider's real wire format through tollgate's /v1/chat/completions,
// against the wire-level mock upstream (tests/mock_upstream): text, streams,
// a tool call round trip, usage, exactly what was sent upstream, TLS, and
// every injected fault.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { post, sseEvents, startGateway, startMock, testPki } from './lib.mjs';

const PROVIDERS = {
  openai: { id: 'gpt-4o-mock', toolId: 'call_mock_1' },
  anthropic: { id: 'claude-mock', toolId: 'toolu_mock_1' },
  bedrock: { id: 'anthropic.claude-3-haiku-20240307-v1:0', toolId: 'tooluse_mock_1' },
  gemini: { id: 'gemini-mock', toolId: null },
};
const FAULTS = ['fault-status-500', 'fault-status-429', 'fault-status-400',
  'fault-delay-headers-3000', 'fault-drop-mid-stream', 'fault-bad-json',
  'fault-truncated-frame', 'fault-close'];

function providerYaml(name, url, extra = '') {
  const common = `first_byte_timeout_ms: 1500, timeout_ms: 8000${extra}`;
  switch (name) {
  case 'openai': return `{ type: openai, base_url: "${url}/v1", api_key: sk-mock, ${common} }`;
  case 'anthropic': return `{ type: anthropic, base_url: "${url}", api_key: sk-ant-mock, ${common} }`;
  case 'bedrock': return `{ type: bedrock, region: us-east-1, base_url: "${url}", access_key_id: AKIDMOCK, secret_access_key: mock-secret, ${common} }`;
  default: return `{ type: gemini, base_url: "${url}", api_key: gm-mock, ${common} }`;
  }
}

async function gatewayFor(t, mock, extra = '') {
  let providers = '';
  let models = '';
  for (const [p, { id }] of Object.entries(PROVIDERS)) {
    providers += `  up-${p}: ${providerYaml(p, mock.url, extra)}\n`;
    models += `  ${p}-echo: { provider: up-${p}, model: "${id}" }\n`;
    for (const f of FAULTS) models += `  ${p}-${f}: { provider: up-${p}, model: ${f} }\n`;
  }
  return startGateway(t, { providers, models });
}

const TOOLS = [{
  type: 'function',
  function: {
    name: 'lookup',
    description: 'Look a thing up',
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
}];

function streamedText(events) {
  return events.filter((e) => e !== '[DONE]')
    .map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
}

for (const [p, { toolId }] of Object.entries(PROVIDERS)) {
  test(`${p}_text_non_stream_and_stream`, async (t) => {
    const mock = await startMock(t);
    const gw = await gatewayFor(t, mock);
    const msgs = [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'hello mock world' }];
    let res = await post(gw, '/v1/chat/completions', { model: `${p}-echo`, messages: msgs });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-tollgate-provider'), `up-${p}`);
    assert.equal(res.body.choices[0].message.content, 'hello mock world');
    assert.equal(res.body.choices[0].finish_reason, 'stop');
    // 8 + 16 characters in -> 6 tokens; 16 out -> 4.
    assert.deepEqual(res.body.usage, { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 });
    res = await post(gw, '/v1/chat/completions', {
      model: `${p}-echo`, messages: msgs, stream: true, stream_options: { include_usage: true },
    });
    assert.equal(res.status, 200, res.text);
    const events = sseEvents(res.text);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(streamedText(events), 'hello mock world');
    assert.equal(events.at(-3).choices[0].finish_reason, 'stop');
    assert.deepEqual(events.at(-2).usage, { prompt_tokens: 6, completion_tokens: 4, total_tokens: 10 });
    assert.equal((await mock.stats()).by_provider[p], 2);
  });

  test(`${p}_tool_call_round_trip`, async (t) => {
    const mock = await startMock(t);
    const gw = await gatewayFor(t, mock);
    const ask = { role: 'user', content: 'please use tool now' };
    let res = await post(gw, '/v1/chat/completions', { model: `${p}-echo`, messages: [ask], tools: TOOLS });
    assert.equal(res.status, 200, res.text);
    const msg = res.body.choices[0].message;
    assert.equal(res.body.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.content, null);
    assert.equal(msg.tool_calls.length, 1);
    const call = msg.tool_calls[0];
    if (toolId) assert.equal(call.id, toolId);
    assert.match(call.id, /^[A-Za-z0-9_-]+$/);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { query: 'please use tool now' });
    // The same call streamed assembles to the same thing.
    res = await post(gw, '/v1/chat/completions', { model: `${p}-echo`, messages: [ask], tools: TOOLS, stream: true });
    const deltas = sseEvents(res.text).filter((e) => e.choices?.[0]?.delta?.tool_calls);
    // Gemini gives no ids; tollgate makes them per answer (call_tg_...).
    if (toolId) assert.equal(deltas[0].choices[0].delta.tool_calls[0].id, call.id);
    else assert.match(deltas[0].choices[0].delta.tool_calls[0].id, /^call_tg_/);
    assert.equal(deltas[0].choices[0].delta.tool_calls[0].function.name, 'lookup');
    const args = deltas.map((e) => e.choices[0].delta.tool_calls[0].function.arguments ?? '').join('');
    assert.deepEqual(JSON.parse(args), { query: 'please use tool now' });
    // The result goes back; the id the provider gave survives the trip.
    res = await post(gw, '/v1/chat/completions', {
      model: `${p}-echo`,
      tools: TOOLS,
      messages: [ask, { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '42 degrees' }],
    });
    assert.equal(res.status, 200, res.text);
    // Gemini wants an object as a function's response: plain text goes
    // as {"result": text}, and the mock echoes what it received.
    assert.equal(res.body.choices[0].message.content,
      p === 'gemini' ? 'tool said: {"result":"42 degrees"}' : 'tool said: 42 degrees');
    assert.equal(res.body.choices[0].finish_reason, 'stop');
    const last = await mock.last();
    assert.equal(last.method, 'POST');
    assert.ok(JSON.stringify(last.body).includes('42 degrees'));
  });

  test(`${p}_faults_end_in_clear_errors`, async (t) => {
    const mock = await startMock(t);
    const gw = await gatewayFor(t, mock);
    const ask = (f, stream) => post(gw, '/v1/chat/completions',
      { model: `${p}-${f}`, stream, messages: [{ role: 'user', content: 'one two three four five' }] });
    const expect = {
      'fault-status-500': 502, 'fault-status-429': 502, 'fault-status-400': 400,
      'fault-delay-headers-3000': 504, 'fault-bad-json': 502, 'fault-close': 502,
    };
    for (const [f, status] of Object.entries(expect)) {
      const res = await ask(f, false);
      assert.equal(res.status, status, `${f}: ${res.text}`);
      assert.ok(res.body.error.message.length > 10, res.text);
      assert.equal(res.body.detail, res.body.error.message);
    }
    // A frame cut in half before any content: nothing was streamed yet, so
    // the client gets a plain 502.
    if (p === 'bedrock') {
      const res = await ask('fault-truncated-frame', true);
      assert.equal(res.status, 502, res.text);
      assert.match(res.body.error.message, /closed mid-answer|stream ended before its end|checksum/);
    }
    // A stream that dies after it started ends with an error event.
    for (const f of ['fault-drop-mid-stream']) {
      const res = await ask(f, true);
      assert.equal(res.status, 200, `${f}: ${res.text}`);
      const events = sseEvents(res.text);
      assert.equal(events.at(-1), '[DONE]', f);
      assert.equal(events.at(-2).error.type, 'upstream_error', f);
    }
    // A streamed answer whose event cannot be decoded: a 502 before any
    // content, or an error event after it. (This once used the call after
    // the decoder had freed it; the sanitizer build catches a relapse.)
    {
      const res = await ask('fault-bad-json', true);
      if (res.status === 200) {
        const events = sseEvents(res.text);
        assert.equal(events.at(-1), '[DONE]', res.text);
        assert.equal(events.at(-2).error.type, 'upstream_error', res.text);
      } else {
        assert.equal(res.status, 502, res.text);
        assert.match(res.body.error.message, /could not be read|checksum|stream/, res.text);
      }
    }
    // Still serving.
    assert.equal((await post(gw, '/v1/chat/completions', { model: `${p}-echo`, messages: [{ role: 'user', content: 'ok' }] })).status, 200);
  });
}

test('requests_sent_upstream_are_as_documented', async (t) => {
  const mock = await startMock(t);
  const gw = await gatewayFor(t, mock);
  const body = { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }], max_tokens: 7, temperature: 0.5 };
  const sent = {};
  for (const p of Object.keys(PROVIDERS)) {
    assert.equal((await post(gw, '/v1/chat/completions', { ...body, model: `${p}-echo` })).status, 200);
    sent[p] = await mock.last();
  }
  assert.equal(sent.openai.path, '/v1/chat/completions');
  assert.equal(sent.openai.headers.authorization, 'Bearer sk-mock');
  assert.equal(sent.openai.body.model, 'gpt-4o-mock');
  assert.equal(sent.openai.body.max_tokens, 7);
  assert.deepEqual(sent.openai.body.messages, [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }]);
  assert.equal(sent.anthropic.path, '/v1/messages');
  assert.equal(sent.anthropic.headers['x-api-key'], 'sk-ant-mock');
  assert.equal(sent.anthropic.headers['anthropic-version'], '2023-06-01');
  assert.equal(sent.anthropic.body.system, 'S');
  assert.equal(sent.anthropic.body.max_tokens, 7);
  assert.equal(sent.anthropic.body.messages[0].role, 'user');
  assert.equal(sent.bedrock.path, '/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse');
  assert.match(sent.bedrock.headers.authorization,
    /^AWS4-HMAC-SHA256 Credential=AKIDMOCK\/\d{8}\/us-east-1\/bedrock\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/);
  assert.match(sent.bedrock.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
  assert.equal(sent.bedrock.body.inferenceConfig.maxTokens, 7);
  assert.deepEqual(sent.bedrock.body.system, [{ text: 'S' }]);
  assert.equal(sent.gemini.path, '/v1beta/models/gemini-mock:generateContent');
  assert.equal(sent.gemini.headers['x-goog-api-key'], 'gm-mock');
  assert.equal(sent.gemini.body.generationConfig.maxOutputTokens, 7);
  assert.deepEqual(sent.gemini.body.systemInstruction.parts, [{ text: 'S' }]);
});

test('bedrock_bad_signature_is_refused_upstream_as_502', async (t) => {
  const mock = await startMock(t, ['--aws-secret-access-key', 'another-secret']);
  const gw = await gatewayFor(t, mock);
  const res = await post(gw, '/v1/chat/completions', { model: 'bedrock-echo', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(res.status, 502, res.text);
  assert.match(res.body.error.message, /answered 403: The request signature we calculated does not match/);
});

test('tls_verified_against_the_configured_ca', async (t) => {
  const pki = testPki();
  const ok = await startMock(t, pki.cert('server'));
  let gw = await gatewayFor(t, ok, `, ca_file: "${pki.ca}"`);
  let res = await post(gw, '/v1/chat/completions', { model: 'openai-echo', messages: [{ role: 'user', content: 'over tls' }] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'over tls');
  // The system store does not know the test CA.
  gw = await gatewayFor(t, ok);
  res = await post(gw, '/v1/chat/completions', { model: 'openai-echo', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(res.status, 502, res.text);
  assert.match(res.body.error.message, /TLS error: certificate check failed/);
  // A certificate for another name, and one from a CA nobody configured.
  for (const cert of ['elsewhere', 'stranger']) {
    const bad = await startMock(t, pki.cert(cert));
    gw = await gatewayFor(t, bad, `, ca_file: "${pki.ca}"`);
    res = await post(gw, '/v1/chat/completions', { model: 'openai-echo', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(res.status, 502, `${cert}: ${res.text}`);
    assert.match(res.body.error.message, /TLS error: certificate check failed/, cert);
  }
});

test('pool_of_one_connection_queues_requests_in_order', async (t) => {
  const mock = await startMock(t);
  // Pools are per worker: one worker, so one connection in all.
  const gw = await startGateway(t, {
    workers: 1,
    providers: `  one: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, max_connections: 1 }\n`,
    models: '  slow-up: { provider: one, model: fault-delay-headers-300 }\n',
  });
  const started = Date.now();
  const results = await Promise.all([1, 2, 3].map((i) => post(gw, '/v1/chat/completions',
    { model: 'slow-up', messages: [{ role: 'user', content: `q${i}` }] })));
  const elapsed = Date.now() - started;
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.deepEqual(results.map((r) => r.body.choices[0].message.content), ['q1', 'q2', 'q3']);
  // One connection: the three 300 ms answers cannot overlap.
  assert.ok(elapsed >= 900, `three calls over one connection took ${elapsed} ms`);
  assert.equal((await mock.stats()).total, 3);
});

test('connect_timeout_when_tls_never_starts', async (t) => {
  // Accepts TCP and says nothing: the TLS handshake never completes.
  const net = await import('node:net');
  const sockets = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => { sockets.forEach((s) => s.destroy()); silent.close(); });
  const { port } = silent.address();
  const gw = await startGateway(t, {
    providers: `  mute: { type: openai, base_url: "https://127.0.0.1:${port}/v1", api_key: x, connect_timeout_ms: 200, first_byte_timeout_ms: 5000 }\n`,
    models: '  mute-echo: { provider: mute, model: m }\n',
  });
  const started = Date.now();
  const res = await post(gw, '/v1/chat/completions', { model: 'mute-echo', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(res.status, 502, res.text);
  assert.match(res.body.error.message, /provider mute: connection error: connect timeout/);
  assert.ok(Date.now() - started < 4000, 'the connect timer, not the first-byte one, ended it');
});

test('waiting_for_a_busy_pool_times_out_cleanly', async (t) => {
  const mock = await startMock(t);
  const gw = await startGateway(t, {
    workers: 1,
    providers: `  one: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, max_connections: 1, connect_timeout_ms: 200 }\n`,
    models: '  slow-up: { provider: one, model: fault-delay-headers-800 }\n  fast-up: { provider: one, model: m }\n',
  });
  const slow = post(gw, '/v1/chat/completions', { model: 'slow-up', messages: [{ role: 'user', content: 'a' }] });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const queued = await post(gw, '/v1/chat/completions', { model: 'fast-up', messages: [{ role: 'user', content: 'b' }] });
  assert.equal(queued.status, 502, queued.text);
  assert.match(queued.body.error.message, /no free connection within connect_timeout_ms/);
  assert.equal((await slow).status, 200);
  // The pool is whole again.
  const after = await post(gw, '/v1/chat/completions', { model: 'fast-up', messages: [{ role: 'user', content: 'c' }] });
  assert.equal(after.status, 200, after.text);
});
