// How answers leave the gateway: tollgate writes a reply, or a chunk of a
// stream, the moment evhttp queues it (worker/http_flush.c). These check the
// cases around that: requests pipelined on one connection, an HTTP/1.0
// stream (not chunked, ended by closing), and a client too slow to take a
// large answer at once.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';

import {
  KEY_A, parseRaw, rawRequest, sseEvents, startGateway,
} from './lib.mjs';

function chatRequest(content, { version = '1.1', stream = false, extra = '' } = {}) {
  const body = JSON.stringify({
    model: 'mock-echo', messages: [{ role: 'user', content }], stream,
  });
  return `POST /v1/chat/completions HTTP/${version}\r\nHost: x\r\n`
    + `Authorization: Bearer ${KEY_A}\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

// Splits a run of HTTP/1.1 answers with Content-Length bodies.
function splitAnswers(text) {
  const answers = [];
  while (text.length > 0) {
    const end = text.indexOf('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))[1]);
    answers.push(parseRaw(text.slice(0, end + 4 + length)));
    text = text.slice(end + 4 + length);
  }
  return answers;
}

test('pipelined_requests_are_answered_in_order_on_one_connection', async (t) => {
  const gw = await startGateway(t, { workers: 1 });
  const words = ['one', 'two', 'three'];
  const last = chatRequest(words[2], { extra: 'Connection: close\r\n' });
  const raw = await rawRequest(gw, chatRequest(words[0]) + chatRequest(words[1]) + last);
  const answers = splitAnswers(raw);
  assert.equal(answers.length, 3, raw);
  answers.forEach((a, i) => {
    assert.equal(a.status, 200, a.body);
    assert.equal(JSON.parse(a.body).choices[0].message.content, words[i]);
  });
  const ids = new Set(answers.map((a) => a.headers['x-request-id']));
  assert.equal(ids.size, 3);
});

test('http10_stream_is_whole_unchunked_and_closed', async (t) => {
  const gw = await startGateway(t);
  const started = Date.now();
  const raw = await rawRequest(gw, chatRequest('stream me', { version: '1.0', stream: true }), 5000);
  assert.ok(Date.now() - started < 4000, 'the connection was closed at the end');
  const res = parseRaw(raw);
  assert.equal(res.status, 200);
  assert.equal(res.headers['transfer-encoding'], undefined);
  const events = sseEvents(res.body);
  assert.equal(events.at(-1), '[DONE]');
  const text = events.slice(0, -1)
    .map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'stream me');
});

// Reads one answer with a Content-Length body from a socket that is paused
// for `pauseMs` first, so the gateway's socket buffer fills.
function slowRead(gw, bytes, pauseMs) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(gw.port, '127.0.0.1');
    const parts = [];
    let total = 0;
    sock.on('error', reject);
    sock.on('data', (d) => {
      parts.push(d);
      total += d.length;
      const text = Buffer.concat(parts).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))[1]);
      if (total >= end + 4 + length) {
        sock.destroy();
        resolve(Buffer.concat(parts).toString('utf8'));
      }
    });
    sock.write(bytes);
    sock.pause();
    setTimeout(() => sock.resume(), pauseMs);
  });
}

test('a_slow_reader_gets_every_byte_of_a_large_answer', async (t) => {
  const gw = await startGateway(t, { maxBody: 16777216 });
  // 12 MB: more than the sockets between can hold while the client waits.
  const content = 'abcdefghij'.repeat(1200000);
  const raw = await slowRead(gw, chatRequest(content), 500);
  const res = parseRaw(raw);
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).choices[0].message.content, content);
});
