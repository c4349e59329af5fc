// The HTTP upstream client and the OpenAI wire, end to end, with tollgate
// as its own upstream: a provider of type openai whose base_url is the
// gateway's own /v1 (served there by the mock provider). Exercises the
// connection pool, request encoding, SSE decoding, and the mapping of
// upstream failures to 400/502/504.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { KEY_A, auth, freePort, post, sseEvents, startGateway, startMock } from './lib.mjs';

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

// ---- the client's HTTP/1.1, against upstreams that answer oddly ---------

// A chat completion whose text is `text`, as OpenAI's JSON.
function completion(text) {
  return JSON.stringify({
    id: 'c', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

// An answer with a Content-Length; `head` adds header lines.
function sized(text, { version = '1.1', head = '' } = {}) {
  const body = completion(text);
  return `HTTP/${version} 200 OK\r\nContent-Type: application/json\r\n${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// A chunked answer in chunks of 7 bytes, with an extension on each chunk
// and a trailer.
function chunked(text) {
  const body = completion(text);
  let out = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (let i = 0; i < body.length; i += 7) {
    const piece = body.slice(i, i + 7);
    out += `${piece.length.toString(16)};n=${i}\r\n${piece}\r\n`;
  }
  return `${out}0\r\nX-Trailer: done\r\n\r\n`;
}

// Cuts bytes into pieces of `size`.
function cut(bytes, size) {
  const pieces = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.slice(i, i + size));
  return pieces;
}

// A raw upstream on 127.0.0.1: for the i-th request (from 0) on connection
// number conn, answer(i, conn) gives {pieces (written 2 ms apart), close
// (end the connection after them, or after that many ms)}. It records the
// connection of every request in conns.
async function rawUpstream(t, answer) {
  const sockets = new Set();
  const up = { conns: [], n: 0 };
  const srv = net.createServer((s) => {
    const conn = up.n++;
    let buf = Buffer.alloc(0);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', async (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length: *(\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      buf = buf.subarray(end + 4 + len);
      const i = up.conns.length;
      up.conns.push(conn);
      const a = answer(i, conn);
      for (const piece of a.pieces) {
        if (s.destroyed) return;
        s.write(piece);
        if (a.pieces.length > 1) await sleep(2);
      }
      if (a.close === true) s.end();
      else if (a.close) setTimeout(() => s.end(), a.close);
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => { sockets.forEach((s) => s.destroy()); srv.close(); });
  up.url = `http://127.0.0.1:${srv.address().port}/v1`;
  return up;
}

// Pools are per worker: one worker, so the connection counts are exact.
function rawGateway(t, up) {
  return startGateway(t, {
    workers: 1,
    providers: `  raw: { type: openai, base_url: "${up.url}", api_key: x, first_byte_timeout_ms: 2000, timeout_ms: 5000 }\n`,
    models: '  raw-m: { provider: raw, model: m }\n',
  });
}

const askRaw = (gw, i) => post(gw, '/v1/chat/completions', { ...ask(`q${i}`), model: 'raw-m' });

test('upstream_connection_is_kept_alive_until_an_answer_says_close', async (t) => {
  const answers = [
    { pieces: [sized('r0')] },
    // An interim 100, then chunks cut every 3 bytes, across every line end.
    { pieces: cut(`HTTP/1.1 100 Continue\r\n\r\n${chunked('r1')}`, 3) },
    { pieces: [sized('r2', { version: '1.0', head: 'Connection: keep-alive\r\n' })] },
    { pieces: [sized('r3', { head: 'Connection: close\r\n' })], close: true },
    { pieces: [sized('r4', { version: '1.0' })], close: true },
    { pieces: [sized('r5')] },
  ];
  const up = await rawUpstream(t, (i) => answers[i]);
  const gw = await rawGateway(t, up);
  for (let i = 0; i < answers.length; i++) {
    const res = await askRaw(gw, i);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.choices[0].message.content, `r${i}`);
  }
  // 0-3 share a connection; 3 said close, and HTTP/1.0 without keep-alive
  // closes too.
  assert.deepEqual(up.conns, [0, 0, 0, 0, 1, 2]);
});

test('upstream_idle_connection_closed_by_the_peer_is_replaced', async (t) => {
  const up = await rawUpstream(t, (i) => ({ pieces: [sized(`r${i}`)], close: i === 0 ? 20 : false }));
  const gw = await rawGateway(t, up);
  assert.equal((await askRaw(gw, 0)).status, 200);
  await sleep(300); // the peer closes the idle connection meanwhile
  const res = await askRaw(gw, 1);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'r1');
  assert.deepEqual(up.conns, [0, 1]);
});

test('upstream_stray_bytes_bad_framing_and_read_until_close', async (t) => {
  const answers = [
    // Bytes after the answer: it counts, the connection does not.
    { pieces: [`${sized('r0')}junk`] },
    { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'] },
    { pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'] },
    // Neither length nor chunks: the body ends with the connection.
    { pieces: cut(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n${completion('r3')}`, 50), close: true },
    { pieces: [sized('r4')] },
  ];
  const up = await rawUpstream(t, (i) => answers[i]);
  const gw = await rawGateway(t, up);
  let res = await askRaw(gw, 0);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.choices[0].message.content, 'r0');
  res = await askRaw(gw, 1);
  assert.equal(res.status, 502, res.text);
  assert.match(res.body.error.message, /provider raw: connection error: an unreadable HTTP answer: conflicting Content-Lengths/);
  res = await askRaw(gw, 2);
  assert.equal(res.status, 502, res.text);
  assert.match(res.body.error.message, /an unreadable HTTP answer: bad chunk size/);
  for (const i of [3, 4]) {
    res = await askRaw(gw, i);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.choices[0].message.content, `r${i}`);
  }
  assert.deepEqual(up.conns, [0, 1, 2, 3, 4]);
});

test('upstream_answers_trickling_in_a_few_bytes_at_a_time', async (t) => {
  // The mock writes 5 bytes a millisecond: status line, headers, chunk
  // sizes and line ends all arrive cut at any point.
  const mock = await startMock(t);
  const common = 'first_byte_timeout_ms: 3000, timeout_ms: 10000';
  const gw = await startGateway(t, {
    providers: `  t-openai: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, ${common} }
  t-anthropic: { type: anthropic, base_url: "${mock.url}", api_key: sk-ant-mock, ${common} }
  t-bedrock: { type: bedrock, region: us-east-1, base_url: "${mock.url}", access_key_id: AKIDMOCK, secret_access_key: mock-secret, ${common} }
`,
    models: ['openai', 'anthropic', 'bedrock'].map((p) => `  t-${p}: { provider: t-${p}, model: fault-trickle-5 }\n`).join(''),
  });
  for (const p of ['openai', 'anthropic', 'bedrock']) {
    let res = await post(gw, '/v1/chat/completions', { ...ask('slowly but surely'), model: `t-${p}` });
    assert.equal(res.status, 200, `${p}: ${res.text}`);
    assert.equal(res.body.choices[0].message.content, 'slowly but surely', p);
    res = await post(gw, '/v1/chat/completions', { ...ask('one two three'), model: `t-${p}`, stream: true });
    assert.equal(res.status, 200, `${p}: ${res.text}`);
    const events = sseEvents(res.text);
    assert.equal(events.at(-1), '[DONE]', p);
    const text = events.slice(0, -1).map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'one two three', p);
    assert.ok(events.every((e) => e === '[DONE]' || !e.error), `${p}: ${res.text}`);
  }
});
