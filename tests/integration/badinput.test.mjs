// Authentication and bad input: every case answers a clear error in the
// OpenAI format (error{message,type,param,code} plus detail) with a request
// id, and the gateway goes on serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  KEY_A, KEY_B, SECRET_TOKEN, auth, get, parseRaw, post, rawRequest, startGateway,
} from './lib.mjs';

const USER = [{ role: 'user', content: 'hi' }];

function assertError(res, status, code, param) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.match(res.headers.get('x-request-id'), /^req_/);
  const e = res.body.error;
  assert.deepEqual(Object.keys(res.body).sort(), ['detail', 'error']);
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(e.code, code);
  assert.equal(res.body.detail, e.message);
  assert.ok(e.message.length > 10, e.message);
  if (param !== undefined) assert.equal(e.param, param);
  return e;
}

test('auth_accepts_bearer_and_x_api_key', async (t) => {
  const gw = await startGateway(t);
  const body = { messages: USER };
  assert.equal((await post(gw, '/v1/chat/completions', body, auth(KEY_A))).status, 200);
  assert.equal((await post(gw, '/v1/chat/completions', body, { 'X-API-Key': KEY_A })).status, 200);
  assert.equal((await post(gw, '/v1/chat/completions', body, { Authorization: `bearer ${KEY_A}` })).status, 200);
  // A plain key in the config works too (the config warns about it).
  assert.equal((await post(gw, '/v1/chat/completions', body, auth(KEY_B))).status, 200);
  assert.match(gw.logs(), /team "team-b" has a plain-text key/);
  // The secret token is a key of secret_token_team.
  const s = await get(gw, '/v1/models', { 'X-API-Key': SECRET_TOKEN });
  assert.deepEqual(s.body.data.map((m) => m.id), ['mock-echo']);
});

test('auth_rejects_missing_wrong_and_malformed_keys', async (t) => {
  const gw = await startGateway(t);
  const body = { messages: USER };
  let e = assertError(await post(gw, '/v1/chat/completions', body, {}), 401, 'missing_api_key');
  assert.equal(e.type, 'invalid_request_error');
  assertError(await post(gw, '/v1/chat/completions', body, auth('nope')), 401, 'invalid_api_key');
  assertError(await post(gw, '/v1/chat/completions', body, { Authorization: `Basic ${KEY_A}` }), 401, 'invalid_api_key');
  assertError(await post(gw, '/v1/chat/completions', body, { Authorization: 'Bearer ' }), 401, 'missing_api_key');
  assertError(await get(gw, '/v1/models', { 'X-API-Key': 'nope' }), 401, 'invalid_api_key');
  // A key that is a prefix of a real one is not that key.
  assertError(await post(gw, '/v1/chat/completions', body, auth(KEY_A.slice(0, -1))), 401, 'invalid_api_key');
});

test('auth_anonymous_team_serves_requests_without_key', async (t) => {
  const gw = await startGateway(t, { anonymousTeam: 'team-b' });
  const res = await get(gw, '/v1/models', {});
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.data.map((m) => m.id), ['mock-echo']);
  // A wrong key is still refused: anonymity is for callers without a key.
  assertError(await get(gw, '/v1/models', auth('nope')), 401, 'invalid_api_key');
});

test('bad_json_bodies_are_400', async (t) => {
  const gw = await startGateway(t);
  const cases = [
    ['{"messages": [', 'invalid_json'],
    ['{"messages": [{"role":"user","content":"hi"},]}', 'invalid_json'],
    ['{"a":1 "b":2}', 'invalid_json'],
    ['', 'invalid_json'],
    ['[1,2]', 'invalid_json'],
    ['"just a string"', 'invalid_json'],
    ['null', 'invalid_json'],
    ['{"messages":"\u0001"}', 'invalid_json'],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'invalid_json'],
  ];
  for (const [body, code] of cases) {
    const res = await post(gw, '/v1/chat/completions', body);
    assertError(res, 400, code);
  }
  const res = await post(gw, '/v1/chat/completions', '[1,2]');
  assert.match(res.body.error.message, /must be a JSON object, not array/);
});

test('bad_fields_are_400_naming_the_param', async (t) => {
  const gw = await startGateway(t);
  const cases = [
    [{}, 'missing_required_parameter', 'messages'],
    [{ messages: [] }, 'empty_array', 'messages'],
    [{ messages: 'hi' }, 'invalid_type', 'messages'],
    [{ messages: [42] }, 'invalid_type', 'messages[0]'],
    [{ messages: [{ content: 'x' }] }, 'missing_required_parameter', 'messages[0].role'],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'invalid_value', 'messages[0].role'],
    [{ messages: [{ role: 'user' }] }, 'missing_required_parameter', 'messages[0].content'],
    [{ messages: [{ role: 'user', content: 5 }] }, 'invalid_type', 'messages[0].content'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] },
      'unsupported_content', 'messages[0].content[0].type'],
    [{ messages: [{ role: 'tool', content: 'x' }] }, 'missing_required_parameter', 'messages[0].tool_call_id'],
    [{ messages: USER, model: 7 }, 'invalid_type', 'model'],
    [{ messages: USER, temperature: 'hot' }, 'invalid_type', 'temperature'],
    [{ messages: USER, temperature: 2.5 }, 'invalid_value', 'temperature'],
    [{ messages: USER, temperature: -0.1 }, 'invalid_value', 'temperature'],
    [{ messages: USER, top_p: 1.5 }, 'invalid_value', 'top_p'],
    [{ messages: USER, max_tokens: 0 }, 'invalid_value', 'max_tokens'],
    [{ messages: USER, max_tokens: 1.5 }, 'invalid_type', 'max_tokens'],
    [{ messages: USER, max_tokens: 10000001 }, 'invalid_value', 'max_tokens'],
    [{ messages: USER, max_tokens: '10' }, 'invalid_type', 'max_tokens'],
    [{ messages: USER, n: 2 }, 'unsupported_value', 'n'],
    [{ messages: USER, n: 0 }, 'invalid_value', 'n'],
    [{ messages: USER, stream: 'yes' }, 'invalid_type', 'stream'],
    [{ messages: USER, stream_options: { include_usage: true } }, 'invalid_value', 'stream_options'],
    [{ messages: USER, stop: ['a', 'b', 'c', 'd', 'e'] }, 'array_above_max_length', 'stop'],
    [{ messages: USER, tools: [{ type: 'function', function: { name: 'bad name' } }] },
      'invalid_value', 'tools[0].function.name'],
    [{ messages: USER, tool_choice: 'required' }, 'invalid_value', 'tool_choice'],
    [{ messages: USER, bogus: 1 }, 'unknown_parameter', 'bogus'],
  ];
  for (const [body, code, param] of cases) {
    const res = await post(gw, '/v1/chat/completions', body);
    assertError(res, 400, code, param);
  }
});

test('unknown_model_is_400_listing_valid_names', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions', { model: 'gpt-9', messages: USER });
  const e = assertError(res, 400, 'model_not_found');
  assert.match(e.message, /'gpt-9' does not exist/);
  assert.match(e.message, /Echoes, mock-echo, slow-echo, other-echo, gpt-4o, priced-echo/);
});

test('unknown_path_404_and_wrong_method_405', async (t) => {
  const gw = await startGateway(t);
  assertError(await get(gw, '/v1/nothing'), 404, 'not_found');
  assertError(await post(gw, '/nowhere', {}), 404, 'not_found');
  assertError(await post(gw, '/api/jobs/x/nothing', {}), 404, 'not_found');
  const root = await post(gw, '/', {});
  assertError(root, 405, 'method_not_allowed');
  assert.equal(root.headers.get('allow'), 'GET');
  const res = await get(gw, '/v1/chat/completions');
  assertError(res, 405, 'method_not_allowed');
  assert.equal(res.headers.get('allow'), 'POST');
  const put = await fetch(`${gw.url}/v1/models`, { method: 'PUT', headers: auth() });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET');
});

test('body_over_max_body_bytes_is_413_json', async (t) => {
  const gw = await startGateway(t, { maxBody: 2048 });
  const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
  const res = await post(gw, '/v1/chat/completions', big);
  const e = assertError(res, 413, 'request_too_large');
  assert.match(e.message, /2048 bytes/);
  // Just under the limit is served.
  const ok = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(1900) }] });
  assert.equal((await post(gw, '/v1/chat/completions', ok)).status, 200);
});

test('chunked_body_over_limit_is_413_json', async (t) => {
  const gw = await startGateway(t, { maxBody: 2048 });
  const chunk = 'x'.repeat(3000);
  const raw = await rawRequest(gw,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY_A}\r\n`
    + `Transfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
  const res = parseRaw(raw);
  assert.equal(res.status, 413);
  assert.equal(JSON.parse(res.body).error.code, 'request_too_large');
  assert.match(res.headers['x-request-id'], /^req_/);
});

test('oversized_headers_are_431_json', async (t) => {
  const gw = await startGateway(t, { maxHeader: 2048 });
  const raw = await rawRequest(gw,
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(4000)}\r\n\r\n`);
  const res = parseRaw(raw);
  assert.equal(res.status, 431);
  assert.equal(res.headers['content-type'], 'application/json');
  const body = JSON.parse(res.body);
  assert.equal(body.error.code, 'headers_too_large');
  assert.match(body.detail, /2048 bytes/);
  assert.match(res.headers['x-request-id'], /^req_/);
  // Many small headers add up the same way.
  const many = Array.from({ length: 200 }, (_, i) => `X-H${i}: v\r\n`).join('');
  const res2 = parseRaw(await rawRequest(gw, `GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`));
  assert.equal(res2.status, 431);
});

test('malformed_http_is_400_json', async (t) => {
  const gw = await startGateway(t);
  for (const bytes of ['BLAH\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n',
    'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n']) {
    const res = parseRaw(await rawRequest(gw, bytes));
    assert.equal(res.status, 400, bytes);
    assert.equal(JSON.parse(res.body).error.code, 'malformed_request');
  }
  // And the gateway is still fine.
  assert.equal((await get(gw, '/healthz', {})).status, 200);
});

// An empty content array is empty text, not a crash (found under ASan:
// copying zero bytes from an empty buffer's NULL pointer).
test('empty_content_array_is_empty_text', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, '/v1/chat/completions',
    { model: 'mock-echo', messages: [{ role: 'user', content: [] }] });
  assert.ok(res.status === 200 || res.status === 400, res.text);
  assert.equal((await post(gw, '/v1/chat/completions', { model: 'mock-echo', messages: [{ role: 'user', content: 'still up' }] })).status, 200);
});
