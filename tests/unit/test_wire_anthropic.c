/*
 * test_wire_anthropic.c - the Anthropic Messages wire: recorded answers and
 * streams of the real API decode to the expected canonical events (text,
 * tool calls with their ids, stop reason, usage with cache tokens), and the
 * canonical request encodes to the body the API documents: system on top,
 * alternating turns of content blocks, tool results as user turns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_json.h"
#include "wire_harness.h"

static struct harness h;

static void fini(void)
{
    harness_free(&h);
}

TestSuite(wire_anthropic, .fini = fini);

static void start(bool is_stream)
{
    harness_init(&h, &tg_wire_anthropic, TG_PROVIDER_ANTHROPIC,
                 "claude-sonnet-4-5", is_stream);
}

/* Feeds SSE data payloads (event names are not needed: data has "type"). */
static int feed(const char *const *events, size_t n)
{
    size_t i;
    int rc = TG_OK;

    for (i = 0; i < n && rc == TG_OK; i++)
        rc = tg_wire_anthropic.decode_sse(&h.w, "", 0, events[i],
                                          strlen(events[i]));
    return rc;
}

static int count_events(enum tg_event_type type)
{
    int i, n = 0;

    for (i = 0; i < h.n_events; i++)
        n += h.types[i] == type;
    return n;
}

/* ---- recorded streams and bodies --------------------------------------- */

Test(wire_anthropic, stream_text)
{
    start(true);
    cr_assert_eq(harness_decode_sse_file(&h, "streams/anthropic_text.sse"),
                 TG_OK);
    cr_assert_str_eq(h.text, "Hello there!");
    cr_assert_eq(h.n_tools, 0);
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete, "message_stop was seen");
    cr_assert(h.w.has_usage);
    cr_assert_eq(h.w.usage.prompt_tokens, 11);
    cr_assert_eq(h.w.usage.completion_tokens, 6);
    cr_assert_eq(count_events(TG_EV_STOP), 1);
}

Test(wire_anthropic, stream_text_then_tool_use_without_final_blank_line)
{
    start(true);
    cr_assert_eq(harness_decode_sse_file(&h, "streams/anthropic_tool_use.sse"),
                 TG_OK);
    cr_assert_str_eq(h.text,
                     "I'll check the current weather in Paris for you.");
    cr_assert_eq(h.n_tools, 1, "the tool_use block (index 1) is tool 0");
    cr_assert_str_eq(h.tools[0].id, "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    cr_assert_str_eq(h.tools[0].name, "get_weather");
    cr_assert_str_eq(h.tools[0].args, "{\"location\": \"Paris\"}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete, "the last message_stop is dispatched");
    cr_assert_eq(h.w.usage.prompt_tokens, 377);
    cr_assert_eq(h.w.usage.completion_tokens, 65);
}

Test(wire_anthropic, stream_recorded_tool_use_with_padded_json)
{
    start(true);
    cr_assert_eq(
        harness_decode_sse_file(&h, "streams/anthropic_tool_use_recorded.sse"),
        TG_OK);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "toolu_018acGYLtfR52q9yDbWaEdQZ");
    cr_assert_str_eq(h.tools[0].name, "get_weather");
    cr_assert_str_eq(h.tools[0].args,
                     "{\"location\": \"San Francisco, CA\", \"units\": "
                     "\"f\"}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 656);
    cr_assert_eq(h.w.usage.completion_tokens, 74, "the last count wins");
}

Test(wire_anthropic, stream_recorded_text_after_tool_result)
{
    start(true);
    cr_assert_eq(harness_decode_sse_file(
                     &h, "streams/anthropic_text_after_tool_result_recorded"
                         ".sse"),
                 TG_OK);
    cr_assert_str_eq(h.text, "The weather in San Francisco, CA is currently:"
                             "\n- **Temperature:** 68\xc2\xb0"
                             "F\n- **Condition:** Sunny\n\nIt's a nice "
                             "sunny day!");
    cr_assert_eq(h.n_tools, 0);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 770);
    cr_assert_eq(h.w.usage.completion_tokens, 38);
}

Test(wire_anthropic, body_text_and_tool_use)
{
    start(false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/anthropic_text_and_tool_use.json"),
                 TG_OK);
    cr_assert_str_eq(h.text, "I'll get the weather for each of those cities. "
                             "Let me start by checking San Francisco.");
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "toolu_01LRanfq6DmHn1yDTB4d1SAh");
    cr_assert_str_eq(h.tools[0].name, "get_weather");
    cr_assert_str_eq(h.tools[0].args,
                     "{\n        \"location\": \"San Francisco, CA\",\n"
                     "        \"units\": \"f\"\n      }");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 701);
    cr_assert_eq(h.w.usage.completion_tokens, 93);
}

Test(wire_anthropic, body_text_after_tool_result)
{
    start(false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/anthropic_text_after_tool_result.json"),
                 TG_OK);
    cr_assert_str_eq(h.text, "The weather in SF is currently **20\xc2\xb0"
                             "C** (68\xc2\xb0"
                             "F) and **Sunny**!");
    cr_assert_eq(h.n_tools, 0);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert_eq(h.w.usage.prompt_tokens, 705);
    cr_assert_eq(h.w.usage.completion_tokens, 25);
}

/* ---- stream semantics -------------------------------------------------- */

Test(wire_anthropic, tool_index_counts_tool_blocks_only)
{
    static const char *const events[] = {
        "{\"type\":\"message_start\",\"message\":{\"usage\":{"
        "\"input_tokens\":10,\"cache_creation_input_tokens\":5,"
        "\"cache_read_input_tokens\":100,\"output_tokens\":1}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"thinking\",\"thinking\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"f\","
        "\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":1}",
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":"
        "{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_1\","
        "\"name\":\"web_search\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":1}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":2}",
        "{\"type\":\"content_block_start\",\"index\":3,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"g\","
        "\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":3,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":3}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"output_tokens\":20}}",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":"
        "{\"output_tokens\":30}}",
        "{\"type\":\"message_stop\"}",
    };

    start(true);
    cr_assert_eq(feed(events, TG_ARRAY_LEN(events)), TG_OK);
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "toolu_a");
    cr_assert_str_eq(h.tools[0].args, "{\"x\":1}");
    cr_assert_str_eq(h.tools[1].id, "toolu_b");
    cr_assert_str_eq(h.tools[1].name, "g");
    cr_assert_str_eq(h.tools[1].args, "{}",
                     "the server tool's input is "
                     "not a client tool call's");
    cr_assert(h.tools[0].is_ended && h.tools[1].is_ended);
    cr_assert_eq(count_events(TG_EV_TOOL_END), 2);
    cr_assert_eq(h.types[h.n_events - 1], TG_EV_STOP);
    cr_assert_eq(h.text_len, 0, "thinking is not answer text");
    cr_assert_eq(h.w.usage.prompt_tokens, 115, "cache tokens are prompt");
    cr_assert_eq(h.w.usage.completion_tokens, 30);
    cr_assert(h.w.is_complete);
}

Test(wire_anthropic, tool_call_ends_when_its_block_stops)
{
    static const char *const events[] = {
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"f\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
    };

    start(true);
    cr_assert_eq(feed(events, TG_ARRAY_LEN(events)), TG_OK);
    cr_assert_eq(h.n_events, 2);
    cr_assert_eq(h.types[0], TG_EV_TOOL_START);
    cr_assert_eq(h.types[1], TG_EV_TOOL_END);
    cr_assert_not(h.has_stop);
    cr_assert_not(h.w.is_complete, "no message_stop yet");
}

Test(wire_anthropic, stop_reasons_map)
{
    static const struct {
        const char *reason;
        enum tg_stop_reason stop;
    } cases[] = {
        {"end_turn", TG_STOP_END},           {"max_tokens", TG_STOP_MAX_TOKENS},
        {"stop_sequence", TG_STOP_SEQUENCE}, {"tool_use", TG_STOP_TOOL_USE},
        {"refusal", TG_STOP_FILTER},         {"pause_turn", TG_STOP_END},
    };
    char event[256];
    const char *events[1] = {event};
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        start(true);
        snprintf(event, sizeof(event),
                 "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                 "\"%s\"},\"usage\":{\"output_tokens\":3}}",
                 cases[i].reason);
        cr_assert_eq(feed(events, 1), TG_OK);
        cr_assert(h.has_stop);
        cr_assert_eq(h.stop, cases[i].stop, "%s", cases[i].reason);
        harness_free(&h);
    }
    start(true);
}

Test(wire_anthropic, ping_and_unknown_events_are_ignored)
{
    static const char *const events[] = {
        "{\"type\": \"ping\"}",
        "{\"type\":\"some_future_event\",\"x\":[1,2]}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"signature_delta\",\"signature\":\"abc\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
    };

    start(true);
    cr_assert_eq(feed(events, TG_ARRAY_LEN(events)), TG_OK);
    cr_assert_eq(h.n_events, 0);
    cr_assert_not(h.w.is_complete);
}

Test(wire_anthropic, malformed_events_are_declined)
{
    static const char *const bad[] = {
        "{",
        "",
        "[]",
        "{}",
        "{\"type\":5}",
        "{\"type\":\"message_start\"}",
        "{\"type\":\"message_start\",\"message\":{\"usage\":"
        "{\"input_tokens\":\"9\"}}}",
        "{\"type\":\"message_start\",\"message\":{\"usage\":"
        "{\"input_tokens\":1.5}}}",
        "{\"type\":\"content_block_start\",\"index\":0}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"text\",\"text\":7}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"tool_use\",\"name\":\"f\"}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":3}}",
        "{\"type\":\"content_block_delta\",\"index\":0}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":[]}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"input_json_delta\",\"partial_json\":{}}}",
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1}}",
        "{\"type\":\"message_delta\",\"delta\":{},\"usage\":"
        "{\"output_tokens\":-1}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}",
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        start(true);
        cr_assert_eq(
            tg_wire_anthropic.decode_sse(&h.w, "", 0, bad[i], strlen(bad[i])),
            TG_DECLINED, "%s", bad[i]);
        harness_free(&h);
    }
    start(true);
}

Test(wire_anthropic, error_event_mid_stream_is_declined)
{
    static const char *const events[] = {
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
        "{\"type\":\"text\",\"text\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"Hel\"}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}",
        "{\"type\":\"message_stop\"}",
    };

    start(true);
    cr_assert_eq(feed(events, TG_ARRAY_LEN(events)), TG_DECLINED);
    cr_assert_str_eq(h.text, "Hel");
    cr_assert_not(h.has_stop);
    cr_assert_not(h.w.is_complete, "decoding stopped at the error");
}

Test(wire_anthropic, malformed_bodies_are_declined)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"type\":\"message\"}",
        "{\"type\":\"message\",\"content\":{}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
        "\"message\":\"x\"},\"content\":[]}",
        "{\"content\":[{\"type\":\"text\",\"text\":1}]}",
        "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
        "\"input\":[]}]}",
        "{\"content\":[{\"type\":\"tool_use\",\"name\":\"f\",\"input\":{}}]}",
        "{\"content\":[],\"usage\":{\"output_tokens\":\"1\"}}",
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        start(false);
        cr_assert_eq(
            tg_wire_anthropic.decode_body(&h.w, bad[i], strlen(bad[i])),
            TG_DECLINED, "%s", bad[i]);
        harness_free(&h);
    }
    start(false);
}

Test(wire_anthropic, body_skips_unknown_blocks)
{
    static const char body[] =
        "{\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\"},"
        "{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"tool_use\","
        "\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":[1]}},"
        "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"g\",\"input\":{}}],"
        "\"stop_reason\":\"max_tokens\",\"usage\":{\"input_tokens\":4,"
        "\"cache_read_input_tokens\":6,\"output_tokens\":9}}";

    start(false);
    cr_assert_eq(tg_wire_anthropic.decode_body(&h.w, body, strlen(body)),
                 TG_OK);
    cr_assert_str_eq(h.text, "hi");
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].args, "{\"a\":[1]}");
    cr_assert_str_eq(h.tools[1].id, "t2");
    cr_assert_str_eq(h.tools[1].args, "{}");
    cr_assert_eq(h.stop, TG_STOP_MAX_TOKENS);
    cr_assert_eq(h.w.usage.prompt_tokens, 10);
    cr_assert_eq(h.w.usage.completion_tokens, 9);
}

Test(wire_anthropic, error_body_gives_its_message)
{
    static const char body[] =
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
        "\"message\":\"max_tokens: Field required\"},\"request_id\":"
        "\"req_1\"}";
    char out[128];

    start(false);
    tg_wire_anthropic.decode_error(400, body, strlen(body), out, sizeof(out));
    cr_assert_str_eq(out, "max_tokens: Field required");
    tg_wire_anthropic.decode_error(529, "<html>", 6, out, sizeof(out));
    cr_assert_str_eq(out, "HTTP 529");
    tg_wire_anthropic.decode_error(500, "", 0, out, sizeof(out));
    cr_assert_str_eq(out, "HTTP 500");
}

/* ---- encoding ---------------------------------------------------------- */

static struct tg_message full_msgs[6] = {
    {.role = TG_ROLE_SYSTEM, .text = {"be brief", 8}},
    {.role = TG_ROLE_USER, .text = {"weather?", 8}},
    {.role = TG_ROLE_ASSISTANT, .text = {"Checking.", 9}},
    {.role = TG_ROLE_TOOL,
     .text = {"sunny", 5},
     .tool_call_id = {"toolu_1", 7}},
    {.role = TG_ROLE_TOOL, .text = {"rain", 4}, .tool_call_id = {"toolu_2", 7}},
    {.role = TG_ROLE_SYSTEM, .text = {"use \"C\"", 7}},
};
static struct tg_tool_call full_calls[2] = {
    {{"toolu_1", 7}, {"get", 3}, {"{\"c\":\"SF\"}", 10}},
    {{"toolu_2", 7}, {"get", 3}, {"{\"c\":\"NY\"}", 10}},
};
static struct tg_tool full_tool = {
    {"get", 3}, {"Weather", 7}, {"{\"type\":\"object\"}", 17}};

static void set_full_chat(void)
{
    full_msgs[2].calls = full_calls;
    full_msgs[2].n_calls = 2;
    h.chat.messages = full_msgs;
    h.chat.n_messages = TG_ARRAY_LEN(full_msgs);
    h.chat.tools = &full_tool;
    h.chat.n_tools = 1;
}

Test(wire_anthropic, encodes_the_documented_request)
{
    struct tg_wire_request req;
    const char *body;

    start(true);
    set_full_chat();
    h.chat.tool_choice = TG_TOOL_CHOICE_REQUIRED;
    h.chat.has_max_tokens = true;
    h.chat.max_tokens = 100;
    h.chat.has_temperature = true;
    h.chat.temperature = 0.25;
    body = harness_encode(&h, &req);
    cr_assert_str_eq(req.path, "/v1/messages");
    cr_assert_eq(req.n_headers, 3);
    cr_assert_str_eq(req.headers[0].name, "content-type");
    cr_assert_str_eq(req.headers[0].value, "application/json");
    cr_assert_str_eq(req.headers[1].name, "x-api-key");
    cr_assert_str_eq(req.headers[1].value, "test-key");
    cr_assert_str_eq(req.headers[2].name, "anthropic-version");
    cr_assert_str_eq(req.headers[2].value, "2023-06-01");
    cr_assert_str_eq(
        body,
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
        "\"system\":\"be brief\\n\\nuse \\\"C\\\"\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"weather?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"get\",\"input\":{\"c\":\"SF\"}},{\"type\":\"tool_use\","
        "\"id\":\"toolu_2\",\"name\":\"get\",\"input\":{\"c\":\"NY\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_1\",\"content\":\"sunny\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\","
        "\"content\":\"rain\"}]}],"
        "\"tools\":[{\"name\":\"get\",\"description\":\"Weather\","
        "\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"any\"},\"temperature\":0.25,"
        "\"stream\":true}");
}

Test(wire_anthropic, encodes_each_tool_choice)
{
    static const struct {
        enum tg_tool_choice choice;
        const char *json;
    } cases[] = {
        {TG_TOOL_CHOICE_AUTO, ""},
        {TG_TOOL_CHOICE_NONE, ",\"tool_choice\":{\"type\":\"none\"}"},
        {TG_TOOL_CHOICE_REQUIRED, ",\"tool_choice\":{\"type\":\"any\"}"},
        {TG_TOOL_CHOICE_NAMED,
         ",\"tool_choice\":{\"type\":\"tool\",\"name\":\"get\"}"},
    };
    struct tg_message msg = {.role = TG_ROLE_USER, .text = {"hi", 2}};
    struct tg_tool tool = {{"get", 3}, {"", 0}, {"{}", 2}};
    struct tg_wire_request req;
    char want[512];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        start(false);
        h.chat.messages = &msg;
        h.chat.n_messages = 1;
        h.chat.tools = &tool;
        h.chat.n_tools = 1;
        h.chat.tool_choice = cases[i].choice;
        h.chat.tool_choice_name = (struct tg_str){"get", 3};
        snprintf(want, sizeof(want),
                 "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4096,"
                 "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                 "\"text\",\"text\":\"hi\"}]}],\"tools\":[{\"name\":\"get\","
                 "\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]"
                 "%s}",
                 cases[i].json);
        cr_assert_str_eq(harness_encode(&h, &req), want, "choice %zu", i);
        harness_free(&h);
    }
    start(false);
}

Test(wire_anthropic, invalid_tool_arguments_encode_as_empty_object)
{
    static const struct tg_str bad[] = {
        {"", 0}, {"not json", 8}, {"[1]", 3}, {"{\"a\":", 5}, {"\"s\"", 3}};
    struct tg_message msg = {.role = TG_ROLE_ASSISTANT};
    struct tg_tool_call call = {{"toolu_x", 7}, {"f", 1}, {"", 0}};
    struct tg_wire_request req;
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        start(false);
        call.arguments = bad[i];
        msg.calls = &call;
        msg.n_calls = 1;
        h.chat.messages = &msg;
        h.chat.n_messages = 1;
        cr_assert_str_eq(harness_encode(&h, &req),
                         "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":"
                         "4096,\"messages\":[{\"role\":\"assistant\","
                         "\"content\":[{\"type\":\"tool_use\",\"id\":"
                         "\"toolu_x\",\"name\":\"f\",\"input\":{}}]}]}",
                         "arguments %zu", i);
        harness_free(&h);
    }
    start(false);
}

Test(wire_anthropic, consecutive_turns_merge_and_empty_ones_vanish)
{
    struct tg_message msgs[5] = {
        {.role = TG_ROLE_USER, .text = {"a", 1}},
        {.role = TG_ROLE_ASSISTANT, .text = {"", 0}},
        {.role = TG_ROLE_USER, .text = {"b", 1}},
        {.role = TG_ROLE_TOOL, .tool_call_id = {"toolu_1", 7}},
        {.role = TG_ROLE_ASSISTANT, .text = {"c", 1}},
    };
    struct tg_wire_request req;

    start(false);
    h.chat.messages = msgs;
    h.chat.n_messages = 5;
    h.chat.has_top_p = true;
    h.chat.top_p = 0.5;
    h.chat.stop[0] = (struct tg_str){"END", 3};
    h.chat.stop[1] = (struct tg_str){"\n\n", 2};
    h.chat.n_stop = 2;
    h.chat.user = (struct tg_str){"u-1", 3};
    cr_assert_str_eq(
        harness_encode(&h, &req),
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4096,"
        "\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":"
        "\"b\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"c\"}]}],\"top_p\":0.5,\"stop_sequences\":[\"END\",\"\\n\\n\"],"
        "\"metadata\":{\"user_id\":\"u-1\"}}");
}

Test(wire_anthropic, encoded_bodies_are_valid_json)
{
    struct tg_wire_request req;
    struct tg_json j;
    const char *body;

    start(true);
    set_full_chat();
    h.chat.tool_choice = TG_TOOL_CHOICE_NAMED;
    h.chat.tool_choice_name = (struct tg_str){"get", 3};
    body = harness_encode(&h, &req);
    cr_assert_eq(tg_json_parse(&j, body, strlen(body), &h.w.arena, NULL),
                 TG_OK);
}
