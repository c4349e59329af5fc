// Seed 004 (the Bedrock-style OpenAI proxy) as its document shows it: its
// example requests sent as written, against Bedrock on the mock upstream;
// the alias to Bedrock id mapping and direct Bedrock ids; /health with
// "aws"; /v1/models; errors with "detail".
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { get, post, sseEvents, startGateway, startMock } from './lib.mjs';

const SONNET = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
const HAIKU = 'anthropic.claude-haiku-4-5-20251001-v1:0';

async function bedrockGateway(t) {
  const mock = await startMock(t);
  const gw = await startGateway(t, {
    providers: `  bedrock: { type: bedrock, region: us-east-1, base_url: "${mock.url}", `
      + 'access_key_id: AKIDMOCK, secret_access_key: mock-secret }\n',
    models: `  claude-sonnet-4.5: { provider: bedrock, model: "${SONNET}" }\n`
      + `  claude-haiku-4.5: { provider: bedrock, model: "${HAIKU}" }\n`,
  });
  return { gw, mock };
}

// The seed's request body, exactly as written.
const SEED_CHAT = {
  model: 'claude-sonnet-4.5',
  messages: [{ role: 'user', content: 'Hello!' }],
  temperature: 1.0,
  max_tokens: 4096,
  stream: false,
};

function assertCompletion(body, model) {
  assert.deepEqual(Object.keys(body).sort(),
    ['choices', 'created', 'id', 'model', 'object', 'system_fingerprint', 'usage']);
  assert.equal(typeof body.id, 'string');
  assert.equal(body.object, 'chat.completion');
  assert.ok(Number.isInteger(body.created));
  assert.equal(body.model, model);
  assert.equal(body.choices.length, 1);
  const [choice] = body.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, 'Hello!');
  assert.equal(choice.finish_reason, 'stop');
  const u = body.usage;
  assert.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0);
  assert.ok(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
}

test('seed_004_chat_example_maps_the_alias_to_the_bedrock_id', async (t) => {
  const { gw, mock } = await bedrockGateway(t);
  const res = await post(gw, '/v1/chat/completions', SEED_CHAT);
  assert.equal(res.status, 200, res.text);
  assertCompletion(res.body, 'claude-sonnet-4.5');
  const sent = await mock.last();
  assert.equal(sent.path, `/model/${encodeURIComponent(SONNET)}/converse`);
  assert.equal(res.headers.get('x-tollgate-provider'), 'bedrock');
});

test('seed_004_direct_bedrock_ids_work', async (t) => {
  const { gw, mock } = await bedrockGateway(t);
  const res = await post(gw, '/v1/chat/completions', { ...SEED_CHAT, model: HAIKU });
  assert.equal(res.status, 200, res.text);
  assertCompletion(res.body, HAIKU);
  assert.equal((await mock.last()).path, `/model/${encodeURIComponent(HAIKU)}/converse`);
});

test('seed_004_streaming_sends_chunks_then_done', async (t) => {
  const { gw } = await bedrockGateway(t);
  const res = await post(gw, '/v1/chat/completions', { ...SEED_CHAT, stream: true });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = sseEvents(res.text);
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1);
  assert.ok(chunks.length >= 2);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
    assert.equal(c.model, 'claude-sonnet-4.5');
  }
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'Hello!');
});

test('seed_004_health_and_models', async (t) => {
  const { gw } = await bedrockGateway(t);
  const h = await get(gw, '/health', {});
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'healthy');
  assert.equal(h.body.aws, 'connected');
  assert.equal(h.body.providers.bedrock.type, 'bedrock');
  assert.equal(h.body.providers.bedrock.state, 'closed');
  const m = await get(gw, '/v1/models');
  assert.equal(m.status, 200);
  assert.equal(m.body.object, 'list');
  const sonnet = m.body.data.find((x) => x.id === 'claude-sonnet-4.5');
  assert.deepEqual(Object.keys(sonnet).sort(), ['created', 'id', 'object', 'owned_by']);
  assert.equal(sonnet.object, 'model');
  assert.ok(Number.isInteger(sonnet.created));
  assert.equal(sonnet.owned_by, 'bedrock');
});

test('seed_004_errors_carry_detail', async (t) => {
  const { gw } = await bedrockGateway(t);
  const res = await post(gw, '/v1/chat/completions', { ...SEED_CHAT, model: 'no-such-model' });
  assert.equal(res.status, 400);
  assert.equal(typeof res.body.detail, 'string');
  assert.match(res.body.detail, /no-such-model/);
  assert.equal(res.body.error.message, res.body.detail);
  const bad = await post(gw, '/v1/chat/completions', '{"model": ');
  assert.equal(bad.status, 400);
  assert.equal(typeof bad.body.detail, 'string');
});
