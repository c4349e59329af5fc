// The platform LLM API of seed 000 (/api/v1/llm/...): the seed's example
// request and answer field by field, its SSE events exactly, tool use in
// both tool styles through real provider wire formats (the wire-level mock
// upstream), fallback, validation errors as FastAPI's {"detail"} and 422,
// and the model list.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  KEY_B, auth, get, post, sha256Key, startGateway, startMock,
} from './lib.mjs';

const SONNET = 'us.anthropic.claude-sonnet-4-20250514-v1:0';
const SEED_EXAMPLE = { model: SONNET, messages: [{ role: 'user', content: 'What is 2+2?' }] };
const COMPLETIONS = '/api/v1/llm/completions';
const STREAM = '/api/v1/llm/completions/stream';
const KEY_L = 'tg-test-key-platform-limited';

const ANTHROPIC_TOOLS = [{
  name: 'lookup',
  description: 'Look a thing up',
  input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
}];
const OPENAI_TOOLS = [{
  type: 'function',
  function: {
    name: 'lookup',
    description: 'Look a thing up',
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
}];
const TOOL_STYLES = { anthropic: ANTHROPIC_TOOLS, openai: OPENAI_TOOLS };
// Each upstream wire format a tool call crosses, and the id its mock gives.
const UPSTREAMS = { bedrock: { model: SONNET, toolId: 'tooluse_mock_1' }, openai: { model: 'gpt-up', toolId: 'call_mock_1' } };

// The mock upstream behind a Bedrock-typed provider serving the seed's
// model id, an OpenAI-typed one, and a group whose primary always fails.
async function platformGateway(t, o = {}) {
  const mock = await startMock(t);
  const common = 'first_byte_timeout_ms: 1500, timeout_ms: 8000, retries: 0';
  const providers = `  up-bedrock: { type: bedrock, region: us-east-1, base_url: "${mock.url}", `
    + `access_key_id: AKIDMOCK, secret_access_key: mock-secret, ${common} }\n`
    + `  up-openai: { type: openai, base_url: "${mock.url}/v1", api_key: sk-mock, ${common} }\n`;
  const models = `  sonnet: { provider: up-bedrock, model: "${SONNET}" }\n`
    + '  broken: { provider: up-bedrock, model: fault-status-500 }\n'
    + '  dropper: { provider: up-bedrock, model: fault-drop-mid-stream }\n'
    + '  gpt-up: { provider: up-openai, model: gpt-4o-mock }\n';
  const groups = '  Resilient: { primary: broken, fallbacks: [sonnet] }\n';
  const gw = await startGateway(t, { providers, models, groups, ...o });
  return { gw, mock };
}

// A strict SSE reader: the body is nothing but `data: <one JSON object>`
// events, each ended by one blank line.
function strictEvents(text) {
  assert.ok(text.endsWith('\n\n'), `stream does not end with a blank line: ${JSON.stringify(text.slice(-40))}`);
  return text.slice(0, -2).split('\n\n').map((block) => {
    assert.match(block, /^data: \{[^\n]*\}$/, `not a single-line data event: ${JSON.stringify(block)}`);
    const ev = JSON.parse(block.slice('data: '.length));
    assert.equal(typeof ev.type, 'string');
    return ev;
  });
}

function assertKeys(obj, keys) {
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), JSON.stringify(obj));
}

// The keys every event type carries (seed 000's table, plus "type").
const EVENT_KEYS = {
  content_delta: ['type', 'delta'],
  tool_use_start: ['type', 'id', 'name'],
  tool_use_delta: ['type', 'id', 'delta'],
  tool_use_complete: ['type', 'id', 'name', 'input'],
  message_stop: ['type', 'stop_reason', 'model'],
  metadata: ['type', 'usage'],
  error: ['type', 'detail'],
};

function assertEventShapes(events) {
  for (const ev of events) {
    assert.ok(EVENT_KEYS[ev.type], `unknown event type ${ev.type}`);
    assertKeys(ev, EVENT_KEYS[ev.type]);
  }
}

function assertDetail(res, status, pattern) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assertKeys(res.body, ['detail']);
  assert.equal(typeof res.body.detail, 'string');
  if (pattern) assert.match(res.body.detail, pattern);
}

test('platform_seed_example_answer_fields', async (t) => {
  const { gw } = await platformGateway(t);
  const res = await post(gw, COMPLETIONS, SEED_EXAMPLE);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.equal(res.headers.get('x-tollgate-provider'), 'up-bedrock');
  assert.equal(res.headers.get('x-tollgate-model'), 'sonnet');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);
  const b = res.body;
  assertKeys(b, ['content', 'model', 'stop_reason', 'tool_calls', 'usage']);
  assert.equal(typeof b.content, 'string');
  assert.equal(b.content, 'What is 2+2?');
  assert.equal(b.model, SONNET);
  assert.equal(b.stop_reason, 'end_turn');
  assert.deepEqual(b.tool_calls, []);
  assertKeys(b.usage, ['prompt_tokens', 'completion_tokens']);
  assert.ok(Number.isInteger(b.usage.prompt_tokens) && Number.isInteger(b.usage.completion_tokens));
  // 12 characters each way -> 3 tokens.
  assert.deepEqual(b.usage, { prompt_tokens: 3, completion_tokens: 3 });
});

test('platform_system_blocks_and_max_tokens', async (t) => {
  const gw = await startGateway(t);
  let res = await post(gw, COMPLETIONS, {
    model: 'mock-echo',
    system: 'Be brief.',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] }],
    temperature: 0.5,
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.content, 'Hello there');
  // "Be brief." (9) + "Hello there" (11) = 20 characters -> 5 tokens.
  assert.deepEqual(res.body.usage, { prompt_tokens: 5, completion_tokens: 3 });
  res = await post(gw, COMPLETIONS, { model: 'mock-echo', max_tokens: 1, messages: [{ role: 'user', content: 'Hello there' }] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.content, 'Hell');
  assert.equal(res.body.stop_reason, 'max_tokens');
  assert.equal(res.body.usage.completion_tokens, 1);
});

test('platform_default_model_when_omitted', async (t) => {
  const gw = await startGateway(t);
  for (const body of [{ messages: SEED_EXAMPLE.messages }, { model: null, messages: SEED_EXAMPLE.messages },
    { model: '', messages: SEED_EXAMPLE.messages }]) {
    const res = await post(gw, COMPLETIONS, body);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.model, 'mock-echo');
    assert.equal(res.headers.get('x-tollgate-model'), 'mock-echo');
    assert.equal(res.body.content, 'What is 2+2?');
  }
});

test('platform_unknown_top_level_fields_are_ignored', async (t) => {
  const gw = await startGateway(t);
  const res = await post(gw, COMPLETIONS, { ...SEED_EXAMPLE, model: 'mock-echo', stream: true, top_k: 3, metadata: {} });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.content, 'What is 2+2?');
});

test('platform_stream_events_exact', async (t) => {
  const { gw } = await platformGateway(t);
  const res = await post(gw, STREAM, SEED_EXAMPLE);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '0');
  const events = strictEvents(res.text);
  assertEventShapes(events);
  assert.deepEqual(events.map((e) => e.type),
    ['content_delta', 'content_delta', 'content_delta', 'message_stop', 'metadata']);
  assert.equal(events.filter((e) => e.type === 'content_delta').map((e) => e.delta).join(''), 'What is 2+2?');
  assert.deepEqual(events.at(-2), { type: 'message_stop', stop_reason: 'end_turn', model: SONNET });
  assert.deepEqual(events.at(-1), { type: 'metadata', usage: { input_tokens: 3, output_tokens: 3 } });
  // Written as the seed prints its events.
  assert.ok(res.text.startsWith('data: {"type": "content_delta", "delta": "What "}\n\n'), res.text);
  assert.ok(res.text.endsWith('data: {"type": "metadata", "usage": {"input_tokens": 3, "output_tokens": 3}}\n\n'));
});

test('platform_stream_matches_the_answer', async (t) => {
  const gw = await startGateway(t);
  const body = { messages: [{ role: 'user', content: 'one two three' }], max_tokens: 2 };
  const whole = (await post(gw, COMPLETIONS, body)).body;
  const events = strictEvents((await post(gw, STREAM, body)).text);
  assertEventShapes(events);
  const text = events.filter((e) => e.type === 'content_delta').map((e) => e.delta).join('');
  assert.equal(text, whole.content);
  assert.deepEqual(events.at(-2), { type: 'message_stop', stop_reason: 'max_tokens', model: 'mock-echo' });
  assert.deepEqual(events.at(-1).usage,
    { input_tokens: whole.usage.prompt_tokens, output_tokens: whole.usage.completion_tokens });
});

for (const [upstream, { model, toolId }] of Object.entries(UPSTREAMS)) {
  for (const [style, tools] of Object.entries(TOOL_STYLES)) {
    test(`platform_tool_round_trip_${style}_tools_via_${upstream}`, async (t) => {
      const { gw, mock } = await platformGateway(t);
      const ask = { role: 'user', content: 'please use tool now' };
      let res = await post(gw, COMPLETIONS, { model, messages: [ask], tools });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.stop_reason, 'tool_use');
      assert.equal(res.body.content, '');
      assert.deepEqual(res.body.tool_calls, [{ id: toolId, name: 'lookup', input: { query: 'please use tool now' } }]);
      // The tool definition reached the provider in its own format.
      const sent = JSON.stringify((await mock.last()).body);
      assert.ok(sent.includes('Look a thing up') && sent.includes('"query"'), sent);
      // The result goes back as Anthropic-style blocks.
      const call = res.body.tool_calls[0];
      res = await post(gw, COMPLETIONS, {
        model,
        tools,
        messages: [ask,
          { role: 'assistant', content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', ...call }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '42 degrees' }] }],
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.content, 'tool said: 42 degrees');
      assert.equal(res.body.stop_reason, 'end_turn');
      assert.deepEqual(res.body.tool_calls, []);
    });
  }

  test(`platform_tool_stream_events_via_${upstream}`, async (t) => {
    const { gw } = await platformGateway(t);
    const res = await post(gw, STREAM, {
      model, messages: [{ role: 'user', content: 'please use tool now' }], tools: ANTHROPIC_TOOLS,
    });
    assert.equal(res.status, 200, res.text);
    const events = strictEvents(res.text);
    assertEventShapes(events);
    const types = events.map((e) => e.type);
    assert.deepEqual(types, ['tool_use_start', 'tool_use_delta', 'tool_use_delta', 'tool_use_delta',
      'tool_use_complete', 'message_stop', 'metadata']);
    assert.deepEqual(events[0], { type: 'tool_use_start', id: toolId, name: 'lookup' });
    const deltas = events.filter((e) => e.type === 'tool_use_delta');
    assert.ok(deltas.every((e) => e.id === toolId));
    assert.deepEqual(JSON.parse(deltas.map((e) => e.delta).join('')), { query: 'please use tool now' });
    assert.deepEqual(events[4], {
      type: 'tool_use_complete', id: toolId, name: 'lookup', input: { query: 'please use tool now' },
    });
    assert.deepEqual(events[5], { type: 'message_stop', stop_reason: 'tool_use', model });
    assert.equal(typeof events[6].usage.output_tokens, 'number');
  });
}

test('platform_tool_result_blocks_map_to_provider_tool_results', async (t) => {
  const { gw, mock } = await platformGateway(t);
  const call = { id: 'tooluse_abc', name: 'lookup', input: { query: 'weather' } };
  const res = await post(gw, COMPLETIONS, {
    model: SONNET,
    system: 'Be kind.',
    tools: ANTHROPIC_TOOLS,
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: [{ type: 'tool_use', ...call }] },
      { role: 'user', content: [
        { type: 'tool_result', tool_use_id: call.id, content: [{ type: 'text', text: '42 ' }, { type: 'text', text: 'degrees' }] },
        { type: 'text', text: 'thanks' }] },
    ],
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.content, 'tool said: 42 degrees');
  // Bedrock Converse: the results first, then the text, in one user turn.
  const sent = (await mock.last()).body;
  assert.deepEqual(sent.system, [{ text: 'Be kind.' }]);
  assert.deepEqual(sent.messages.slice(1), [
    { role: 'assistant', content: [{ toolUse: { toolUseId: call.id, name: 'lookup', input: { query: 'weather' } } }] },
    { role: 'user', content: [{ toolResult: { toolUseId: call.id, content: [{ text: '42 degrees' }] } }, { text: 'thanks' }] },
  ]);
});

test('platform_tool_choice_forces_or_forbids_a_call', async (t) => {
  const { gw } = await platformGateway(t);
  const messages = [{ role: 'user', content: 'what now' }];
  const forced = [
    [ANTHROPIC_TOOLS, { type: 'tool', name: 'lookup' }],
    [OPENAI_TOOLS, { type: 'function', function: { name: 'lookup' } }],
    [ANTHROPIC_TOOLS, { type: 'any' }],
    [OPENAI_TOOLS, 'required'],
    [ANTHROPIC_TOOLS, 'any'],
  ];
  for (const [tools, choice] of forced) {
    const res = await post(gw, COMPLETIONS, { model: SONNET, messages, tools, tool_choice: choice });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stop_reason, 'tool_use', JSON.stringify(choice));
    assert.deepEqual(res.body.tool_calls[0].input, { query: 'what now' });
  }
  for (const choice of ['auto', { type: 'auto' }, 'none', { type: 'none' }]) {
    const res = await post(gw, COMPLETIONS, { model: 'gpt-up', messages, tools: ANTHROPIC_TOOLS, tool_choice: choice });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.stop_reason, 'end_turn', JSON.stringify(choice));
    assert.equal(res.body.content, 'what now');
  }
});

test('platform_fallback_serves_when_primary_fails', async (t) => {
  const { gw, mock } = await platformGateway(t);
  let res = await post(gw, COMPLETIONS, { ...SEED_EXAMPLE, model: 'Resilient' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  assert.equal(res.headers.get('x-tollgate-model'), 'sonnet');
  assert.equal(res.body.model, 'Resilient');
  assert.equal(res.body.content, 'What is 2+2?');
  res = await post(gw, STREAM, { ...SEED_EXAMPLE, model: 'Resilient' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-tollgate-fallbacks'), '1');
  const events = strictEvents(res.text);
  assert.deepEqual(events.at(-2), { type: 'message_stop', stop_reason: 'end_turn', model: 'Resilient' });
  const byModel = (await mock.stats()).by_model;
  assert.equal(byModel['fault-status-500'], 2);
  assert.equal(byModel[SONNET], 2);
});

test('platform_upstream_failure_is_a_detail_error', async (t) => {
  const { gw } = await platformGateway(t);
  const res = await post(gw, COMPLETIONS, { ...SEED_EXAMPLE, model: 'broken' });
  assertDetail(res, 502);
});

test('platform_mid_stream_failure_is_an_error_event', async (t) => {
  const { gw } = await platformGateway(t);
  const res = await post(gw, STREAM, { model: 'dropper', messages: [{ role: 'user', content: 'one two three four five' }] });
  assert.equal(res.status, 200, res.text);
  const events = strictEvents(res.text);
  assertEventShapes(events);
  assert.deepEqual(events.map((e) => e.type), ['content_delta', 'content_delta', 'error']);
  assert.ok(events.at(-1).detail.length > 0);
});

const VALIDATION = [
  ['missing messages', { model: 'mock-echo' }, /'messages'/],
  ['messages null', { messages: null }, /'messages'/],
  ['messages not a list', { messages: 'hi' }, /'messages'.*array/],
  ['messages empty', { messages: [] }, /'messages'/],
  ['message not an object', { messages: ['hi'] }, /'messages\[0\]'/],
  ['bad role', { messages: [{ role: 'system', content: 'x' }] }, /'messages\[0\]\.role'.*'user' and 'assistant'/],
  ['role missing', { messages: [{ content: 'x' }] }, /'messages\[0\]\.role'/],
  ['content missing', { messages: [{ role: 'user' }] }, /'messages\[0\]\.content'/],
  ['content a number', { messages: [{ role: 'user', content: 5 }] }, /'messages\[0\]\.content'/],
  ['unknown block type', { messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] },
    /'messages\[0\]\.content\[0\]\.type'/],
  ['tool_use in a user message', { messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] },
    /'messages\[0\]\.content\[0\]\.type'/],
  ['tool_result without id', { messages: [{ role: 'user', content: [{ type: 'tool_result', content: 'x' }] }] },
    /'messages\[0\]\.content\[0\]\.tool_use_id'/],
  ['tool_use input not an object', {
    messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'b', input: [] }] }],
  }, /'messages\[1\]\.content\[0\]\.input'/],
  ['model a number', { model: 7, messages: [{ role: 'user', content: 'x' }] }, /'model'/],
  ['system a list', { system: ['x'], messages: [{ role: 'user', content: 'x' }] }, /'system'/],
  ['temperature a string', { temperature: 'hot', messages: [{ role: 'user', content: 'x' }] }, /'temperature'.*number/],
  ['temperature too high', { temperature: 2.5, messages: [{ role: 'user', content: 'x' }] }, /'temperature'.*<= 2/],
  ['temperature negative', { temperature: -0.1, messages: [{ role: 'user', content: 'x' }] }, /'temperature'.*>= 0/],
  ['max_tokens 0', { max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }, /'max_tokens'.*>= 1/],
  ['max_tokens decimal', { max_tokens: 1.5, messages: [{ role: 'user', content: 'x' }] }, /'max_tokens'.*integer/],
  ['max_tokens a string', { max_tokens: '5', messages: [{ role: 'user', content: 'x' }] }, /'max_tokens'/],
  ['tools not a list', { tools: {}, messages: [{ role: 'user', content: 'x' }] }, /'tools'/],
  ['anthropic tool without name', { tools: [{ input_schema: {} }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.name'/],
  ['anthropic tool bad name', { tools: [{ name: 'no spaces allowed' }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.name'/],
  ['anthropic tool schema not an object', { tools: [{ name: 'a', input_schema: 'x' }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.input_schema'/],
  ['openai tool without function', { tools: [{ type: 'function' }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.function'/],
  ['openai tool function without name', { tools: [{ type: 'function', function: { parameters: {} } }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.function\.name'/],
  ['openai tool parameters not an object', {
    tools: [{ type: 'function', function: { name: 'a', parameters: [] } }], messages: [{ role: 'user', content: 'x' }],
  }, /'tools\[0\]\.function\.parameters'/],
  ['tool of another type', { tools: [{ type: 'web_search', name: 'a' }], messages: [{ role: 'user', content: 'x' }] },
    /'tools\[0\]\.type'/],
  ['tool_choice unknown string', { tool_choice: 'sometimes', tools: ANTHROPIC_TOOLS, messages: [{ role: 'user', content: 'x' }] },
    /'tool_choice'/],
  ['tool_choice a number', { tool_choice: 3, tools: ANTHROPIC_TOOLS, messages: [{ role: 'user', content: 'x' }] },
    /'tool_choice'/],
  ['tool_choice names an unknown tool', { tool_choice: { type: 'tool', name: 'nope' }, tools: ANTHROPIC_TOOLS, messages: [{ role: 'user', content: 'x' }] },
    /no tool named 'nope'/],
  ['tool_choice function without name', { tool_choice: { type: 'function', function: {} }, tools: OPENAI_TOOLS, messages: [{ role: 'user', content: 'x' }] },
    /'tool_choice\.function\.name'/],
  ['tool_choice any without tools', { tool_choice: 'any', messages: [{ role: 'user', content: 'x' }] }, /'tools'/],
  ['tool_choice object without type', { tool_choice: {}, tools: ANTHROPIC_TOOLS, messages: [{ role: 'user', content: 'x' }] },
    /'tool_choice'/],
];

test('platform_validation_errors_are_422_detail', async (t) => {
  const gw = await startGateway(t);
  for (const [what, body, pattern] of VALIDATION) {
    for (const p of [COMPLETIONS, STREAM]) {
      const res = await post(gw, p, body);
      assert.equal(res.status, 422, `${what} ${p}: ${res.text}`);
      assertDetail(res, 422, pattern);
    }
  }
  assertDetail(await post(gw, COMPLETIONS, '{"messages": ['), 422, /not valid JSON/);
  assertDetail(await post(gw, COMPLETIONS, '[]'), 422, /JSON object/);
  assertDetail(await post(gw, COMPLETIONS, ''), 422, /empty/);
});

test('platform_request_path_errors_are_detail', async (t) => {
  const gw = await startGateway(t);
  let res = await post(gw, COMPLETIONS, { ...SEED_EXAMPLE, model: 'nope' });
  assertDetail(res, 400, /The model 'nope' does not exist/);
  res = await post(gw, STREAM, { ...SEED_EXAMPLE, model: 'nope' });
  assertDetail(res, 400, /The model 'nope' does not exist/);
  res = await post(gw, COMPLETIONS, SEED_EXAMPLE, {});
  assertDetail(res, 401);
  res = await post(gw, STREAM, SEED_EXAMPLE, auth('wrong-key'));
  assertDetail(res, 401);
  res = await get(gw, '/api/v1/llm/models', {});
  assertDetail(res, 401);
  res = await post(gw, COMPLETIONS, { ...SEED_EXAMPLE, model: 'Echoes' }, auth(KEY_B));
  assertDetail(res, 403);
});

test('platform_bad_requests_change_no_quota', async (t) => {
  const gw = await startGateway(t, {
    teams: `  limited:\n    keys: ["${sha256Key(KEY_L)}"]\n    rpm: 2\n`,
  });
  const asLimited = auth(KEY_L);
  const good = { messages: [{ role: 'user', content: 'ping' }] };
  for (let i = 0; i < 5; i++) {
    assert.equal((await post(gw, COMPLETIONS, { messages: [] }, asLimited)).status, 422);
    assert.equal((await post(gw, STREAM, { ...good, temperature: 9 }, asLimited)).status, 422);
    assert.equal((await post(gw, COMPLETIONS, { ...good, model: 'nope' }, asLimited)).status, 400);
  }
  let res = await post(gw, COMPLETIONS, good, asLimited);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '1');
  assert.equal((await post(gw, STREAM, good, asLimited)).status, 200);
  res = await post(gw, COMPLETIONS, good, asLimited);
  assertDetail(res, 429);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  assert.ok(res.headers.get('x-ratelimit-limit-requests') !== null);
});

test('platform_models_lists_what_the_team_may_use', async (t) => {
  const gw = await startGateway(t);
  let res = await get(gw, '/api/v1/llm/models');
  assert.equal(res.status, 200, res.text);
  assertKeys(res.body, ['models']);
  assert.deepEqual(res.body.models,
    ['Echoes', 'mock-echo', 'slow-echo', 'other-echo', 'gpt-4o', 'priced-echo']);
  res = await get(gw, '/api/v1/llm/models', auth(KEY_B));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { models: ['mock-echo'] });
});
