/*
 * test_wire_bedrock.c - the Bedrock Converse wire: recorded ConverseStream
 * event streams and Converse bodies of the real API decode to the expected
 * canonical events, malformed frames and exceptions are declined, and the
 * canonical request encodes to the documented body, path and SigV4
 * headers (the signature recomputed here over the same inputs).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tg.h"
#include "tg_sigv4.h"
#include "wire_harness.h"

#define HAIKU "anthropic.claude-3-haiku-20240307-v1:0"

static struct harness h;

static void fini(void)
{
    harness_free(&h);
}

TestSuite(wire_bedrock, .fini = fini);

/* ---- decoding ----------------------------------------------------------- */

/* Feeds one event-stream message with these string headers to the wire. */
static int decode_message(const char *const *names, const char *const *values,
                          size_t n, const char *payload)
{
    struct evbuffer *b = evbuffer_new();
    struct tg_es_message m;
    size_t used;
    char err[128];
    int rc;

    cr_assert_eq(tg_es_encode(b, names, values, n, payload, strlen(payload)),
                 0);
    cr_assert_eq(tg_es_decode(evbuffer_pullup(b, -1), evbuffer_get_length(b),
                              &m, &used, err, sizeof(err)),
                 TG_OK, "%s", err);
    rc = tg_wire_bedrock.decode_frame(&h.w, &m);
    evbuffer_free(b);
    return rc;
}

/* An event as Bedrock sends it. */
static int decode_event(const char *event_type, const char *payload)
{
    const char *names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {event_type, "application/json", "event"};

    return decode_message(names, values, 3, payload);
}

Test(wire_bedrock, stream_text_then_tool_call)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "us.amazon.nova-micro-v1:0", true);
    cr_assert_eq(harness_decode_frames_file(
                     &h, "streams/bedrock_converse_stream_tool_use"
                         ".eventstream"),
                 TG_OK);
    cr_assert_str_eq(h.text,
                     "<thinking> To find the temperature of the capital of "
                     "France, I need to first determine the capital of "
                     "France and then get the current temperature in that "
                     "city. The capital of France is Paris. I will use the "
                     "\"get_temperature\" tool to find the current "
                     "temperature in Paris.</thinking>\n");
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "tooluse_lAG_zP8QRHmSYOwZzzaCqA");
    cr_assert_str_eq(h.tools[0].name, "get_temperature");
    cr_assert_str_eq(h.tools[0].args, "{\"city\":\"Paris\"}");
    cr_assert(h.tools[0].is_ended);
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
    cr_assert(h.w.has_usage);
    cr_assert_eq(h.w.usage.prompt_tokens, 471);
    cr_assert_eq(h.w.usage.completion_tokens, 91);
}

Test(wire_bedrock, stream_text_after_tool_result)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "us.amazon.nova-micro-v1:0", true);
    cr_assert_eq(harness_decode_frames_file(
                     &h, "streams/bedrock_converse_stream_text_after_tool_"
                         "result.eventstream"),
                 TG_OK);
    cr_assert_str_eq(h.text, "The current temperature in Paris, the capital "
                             "of France, is 30\xc2\xb0"
                             "C.");
    cr_assert_eq(h.n_tools, 0);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 577);
    cr_assert_eq(h.w.usage.completion_tokens, 18);
}

Test(wire_bedrock, stream_reasoning_is_left_out)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "us.anthropic.claude-sonnet-4-20250514-v1:0", true);
    cr_assert_eq(harness_decode_frames_file(
                     &h, "streams/bedrock_converse_stream_claude_reasoning"
                         ".eventstream"),
                 TG_OK);
    cr_assert_str_eq(h.text, "Hello! It's nice to meet you. How can I help "
                             "you today?");
    cr_assert_eq(h.n_tools, 0);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 36);
    cr_assert_eq(h.w.usage.completion_tokens, 73);
}

Test(wire_bedrock, stream_cut_before_message_stop_is_incomplete)
{
    static const char file[] =
        "streams/bedrock_converse_stream_tool_use.eventstream";
    size_t n, at = 0, used;
    char *bytes = harness_read_data(file, &n), err[128];
    struct tg_es_message m;
    int frames = 0;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    /* The first 24 of 26 frames: up to contentBlockStop of the tool. */
    while (frames < 24) {
        cr_assert_eq(tg_es_decode((const uint8_t *)bytes + at, n - at, &m,
                                  &used, err, sizeof(err)),
                     TG_OK, "%s", err);
        cr_assert_eq(tg_wire_bedrock.decode_frame(&h.w, &m), TG_OK);
        at += used;
        frames++;
    }
    free(bytes);
    cr_assert_str_eq(h.tools[0].args, "{\"city\":\"Paris\"}");
    cr_assert_not(h.has_stop);
    cr_assert_not(h.w.is_complete);
    cr_assert_not(h.w.has_usage);
}

Test(wire_bedrock, stream_ending_at_message_stop_is_complete)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    cr_assert_eq(decode_event("messageStart", "{\"role\":\"assistant\"}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":0,\"delta\":{\"text\":"
                              "\"Hi\"}}"),
                 TG_OK);
    cr_assert_not(h.w.is_complete);
    cr_assert_eq(decode_event("messageStop", "{\"stopReason\":\"max_tokens\"}"),
                 TG_OK);
    cr_assert(h.w.is_complete);
    cr_assert_not(h.w.has_usage);
    cr_assert_str_eq(h.text, "Hi");
    cr_assert_eq(h.stop, TG_STOP_MAX_TOKENS);
}

Test(wire_bedrock, stream_tool_calls_take_canonical_indexes)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":0,\"delta\":{\"text\":"
                              "\"Two calls.\"}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockStop", "{\"contentBlockIndex\":0}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockStart",
                              "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":"
                              "{\"toolUseId\":\"tu_a\",\"name\":\"f\"}}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":"
                              "{\"input\":\"{\\\"x\\\":1}\"}}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockStop", "{\"contentBlockIndex\":1}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockStart",
                              "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":"
                              "{\"toolUseId\":\"tu_b\",\"name\":\"g\"}}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":"
                              "{\"input\":\"{\\\"y\\\":\"}}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":"
                              "{\"input\":\"2}\"}}}"),
                 TG_OK);
    cr_assert_eq(decode_event("contentBlockStop", "{\"contentBlockIndex\":2}"),
                 TG_OK);
    cr_assert_eq(decode_event("messageStop", "{\"stopReason\":\"tool_use\"}"),
                 TG_OK);
    cr_assert_eq(decode_event("metadata",
                              "{\"usage\":{\"inputTokens\":10,"
                              "\"outputTokens\":20,\"totalTokens\":30},"
                              "\"metrics\":{\"latencyMs\":5}}"),
                 TG_OK);
    cr_assert_str_eq(h.text, "Two calls.");
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "tu_a");
    cr_assert_str_eq(h.tools[0].name, "f");
    cr_assert_str_eq(h.tools[0].args, "{\"x\":1}");
    cr_assert_str_eq(h.tools[1].id, "tu_b");
    cr_assert_str_eq(h.tools[1].name, "g");
    cr_assert_str_eq(h.tools[1].args, "{\"y\":2}");
    cr_assert(h.tools[0].is_ended && h.tools[1].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 10);
    cr_assert_eq(h.w.usage.completion_tokens, 20);
}

Test(wire_bedrock, exception_frame_is_declined)
{
    const char *names[] = {":exception-type", ":content-type", ":message-type"};
    const char *values[] = {"throttlingException", "application/json",
                            "exception"};

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    cr_assert_eq(decode_message(names, values, 3,
                                "{\"message\":\"Too many requests, please "
                                "wait before trying again.\"}"),
                 TG_DECLINED);
    cr_assert_eq(h.n_events, 0);
}

Test(wire_bedrock, malformed_frames_are_declined)
{
    static const char *const bad[][2] = {
        {"contentBlockDelta", "{"},
        {"contentBlockDelta", "[]"},
        {"contentBlockDelta", ""},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":5}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0}"},
        {"contentBlockDelta", "{\"delta\":{\"text\":5}}"},
        {"contentBlockDelta", "{\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}"},
        {"contentBlockDelta", "{\"delta\":{\"toolUse\":{\"input\":{}}}}"},
        {"contentBlockStart", "{\"contentBlockIndex\":1}"},
        {"contentBlockStart", "{\"start\":{\"toolUse\":{\"name\":\"f\"}}}"},
        {"contentBlockStart",
         "{\"start\":{\"toolUse\":{\"toolUseId\":7,\"name\":\"f\"}}}"},
        {"contentBlockStart", "{\"start\":{\"toolUse\":[]}}"},
        {"messageStop", "{}"},
        {"messageStop", "{\"stopReason\":5}"},
        {"metadata", "{\"usage\":{\"inputTokens\":\"x\"}}"},
        {"metadata", "{\"usage\":{\"outputTokens\":1.5}}"},
        {"metadata", "{\"usage\":3}"},
    };
    const char *names[] = {":content-type", ":message-type"};
    const char *values[] = {"application/json", "event"};
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
        cr_assert_eq(decode_event(bad[i][0], bad[i][1]), TG_DECLINED, "%s %s",
                     bad[i][0], bad[i][1]);
        harness_free(&h);
    }
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    cr_assert_eq(decode_message(names, values, 2, "{}"), TG_DECLINED,
                 "no :event-type");
}

Test(wire_bedrock, unknown_events_are_skipped)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    cr_assert_eq(decode_event("somethingNew", "{\"a\":1}"), TG_OK);
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":0,\"delta\":"
                              "{\"reasoningContent\":{\"text\":\"hm\"}}}"),
                 TG_OK);
    cr_assert_eq(h.n_events, 0);
}

Test(wire_bedrock, body_tool_use)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "us.anthropic.claude-sonnet-4-5-20250929-v1:0", false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/bedrock_converse_claude_tool_use.json"),
                 TG_OK);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "tooluse_XjTErzm6TpyMMpDviNVY3g");
    cr_assert_str_eq(h.tools[0].name, "get_weather");
    /* The input object's own JSON text, as the (pretty-printed) file has
     * it. */
    cr_assert_str_eq(h.tools[0].args,
                     "{\n              \"city\": \"Paris\"\n            }");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.prompt_tokens, 572);
    cr_assert_eq(h.w.usage.completion_tokens, 53);
}

Test(wire_bedrock, body_text_and_tool_use)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "us.amazon.nova-micro-v1:0", false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/bedrock_converse_nova_text_and_tool_use"
                         ".json"),
                 TG_OK);
    cr_assert_str_eq(h.text,
                     "<thinking> To determine the capital of France, I can "
                     "use the provided tool that returns the capital of a "
                     "given country. Since the country in question is "
                     "France, I will use the tool with the country parameter "
                     "set to \"France\". </thinking>\n");
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "tooluse_Ze_bgl9CSqu8aJv7XD-_Dw");
    cr_assert_str_eq(h.tools[0].name, "get_capital");
    cr_assert_str_eq(h.tools[0].args,
                     "{\n              \"country\": \"France\"\n            }");
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.prompt_tokens, 426);
    cr_assert_eq(h.w.usage.completion_tokens, 66);
    /* TEXT, TOOL_START, TOOL_DELTA, TOOL_END, STOP */
    cr_assert_eq(h.n_events, 5);
    cr_assert_eq(h.types[0], TG_EV_TEXT);
    cr_assert_eq(h.types[1], TG_EV_TOOL_START);
}

Test(wire_bedrock, body_stop_reasons_map)
{
    static const struct {
        const char *wire;
        enum tg_stop_reason stop;
    } cases[] = {
        {"end_turn", TG_STOP_END},
        {"tool_use", TG_STOP_TOOL_USE},
        {"max_tokens", TG_STOP_MAX_TOKENS},
        {"model_context_window_exceeded", TG_STOP_MAX_TOKENS},
        {"stop_sequence", TG_STOP_SEQUENCE},
        {"guardrail_intervened", TG_STOP_FILTER},
        {"content_filtered", TG_STOP_FILTER},
    };
    char body[256];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", false);
        snprintf(body, sizeof(body),
                 "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":"
                 "[{\"text\":\"ok\"}]}},\"stopReason\":\"%s\"}",
                 cases[i].wire);
        cr_assert_eq(tg_wire_bedrock.decode_body(&h.w, body, strlen(body)),
                     TG_OK);
        cr_assert_eq(h.stop, cases[i].stop, "%s", cases[i].wire);
        cr_assert_str_eq(h.text, "ok");
        cr_assert_not(h.w.has_usage);
        harness_free(&h);
    }
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", false);
}

Test(wire_bedrock, malformed_bodies_are_declined)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "{}",
        "{\"output\":{\"message\":{\"content\":{}}},\"stopReason\":"
        "\"end_turn\"}",
        "{\"output\":{\"message\":{\"content\":[]}}}",
        "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":1}",
        "{\"output\":{\"message\":{\"content\":[5]}},\"stopReason\":"
        "\"end_turn\"}",
        "{\"output\":{\"message\":{\"content\":[{\"text\":null}]}},"
        "\"stopReason\":\"end_turn\"}",
        "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"toolUseId\":"
        "\"a\",\"name\":\"f\"}}]}},\"stopReason\":\"tool_use\"}",
        "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"toolUseId\":"
        "\"a\",\"name\":\"f\",\"input\":\"{}\"}}]}},\"stopReason\":"
        "\"tool_use\"}",
        "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"name\":\"f\","
        "\"input\":{}}}]}},\"stopReason\":\"tool_use\"}",
        "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":"
        "\"end_turn\",\"usage\":{\"inputTokens\":-}}",
        "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":"
        "\"end_turn\",\"usage\":{\"inputTokens\":\"1\"}}",
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", false);
        cr_assert_eq(tg_wire_bedrock.decode_body(&h.w, bad[i], strlen(bad[i])),
                     TG_DECLINED, "%s", bad[i]);
        harness_free(&h);
    }
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", false);
}

static int refuse(struct tg_call *call, const struct tg_event *ev)
{
    (void)call;
    (void)ev;
    return 1;
}

Test(wire_bedrock, client_gone_stops_decoding)
{
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", true);
    h.call.on_event = refuse;
    cr_assert_eq(decode_event("contentBlockDelta",
                              "{\"contentBlockIndex\":0,\"delta\":{\"text\":"
                              "\"Hi\"}}"),
                 TG_ERROR);
    cr_assert_eq(decode_event("messageStop", "{\"stopReason\":\"end_turn\"}"),
                 TG_ERROR);
    cr_assert_not(h.w.is_complete);
}

Test(wire_bedrock, decode_error_reads_the_message)
{
    size_t n;
    char *body = harness_read_data(
        "responses/bedrock_converse_error_invalid_model.json", &n);
    char out[400];

    tg_wire_bedrock.decode_error(400, body, n, out, sizeof(out));
    free(body);
    cr_assert_str_eq(out, "The provided model identifier is invalid.");
    tg_wire_bedrock.decode_error(403, "{\"Message\":\"denied\"}", 20, out,
                                 sizeof(out));
    cr_assert_str_eq(out, "denied");
    tg_wire_bedrock.decode_error(503, "<html>busy</html>", 17, out,
                                 sizeof(out));
    cr_assert_str_eq(out, "HTTP 503");
    tg_wire_bedrock.decode_error(500, "{\"message\":5}", 13, out, sizeof(out));
    cr_assert_str_eq(out, "HTTP 500");
}

/* ---- encoding ----------------------------------------------------------- */

static struct tg_message chat_messages[5];
static struct tg_tool_call chat_calls[2];
static struct tg_tool chat_tool;

/* system, user, assistant text + two tool calls, two tool results (one a
 * JSON object), one tool, every sampling field. */
static void set_chat(enum tg_tool_choice choice)
{
    chat_messages[0] =
        (struct tg_message){.role = TG_ROLE_SYSTEM, .text = {"be brief", 8}};
    chat_messages[1] =
        (struct tg_message){.role = TG_ROLE_USER, .text = {"weather?", 8}};
    chat_calls[0] = (struct tg_tool_call){
        {"call_1", 6}, {"get", 3}, {"{\"c\":\"Paris\"}", 13}};
    chat_calls[1] = (struct tg_tool_call){
        {"call_2", 6}, {"get", 3}, {"{\"c\":\"Oslo\"}", 12}};
    chat_messages[2] = (struct tg_message){.role = TG_ROLE_ASSISTANT,
                                           .text = {"Checking.", 9},
                                           .calls = chat_calls,
                                           .n_calls = 2};
    chat_messages[3] = (struct tg_message){.role = TG_ROLE_TOOL,
                                           .text = {"sunny", 5},
                                           .tool_call_id = {"call_1", 6}};
    chat_messages[4] = (struct tg_message){.role = TG_ROLE_TOOL,
                                           .text = {"{\"temp\": 21}", 12},
                                           .tool_call_id = {"call_2", 6}};
    chat_tool = (struct tg_tool){
        {"get", 3}, {"Weather", 7}, {"{\"type\":\"object\"}", 17}};
    h.chat.messages = chat_messages;
    h.chat.n_messages = 5;
    h.chat.tools = &chat_tool;
    h.chat.n_tools = 1;
    h.chat.tool_choice = choice;
    h.chat.tool_choice_name = (struct tg_str){"get", 3};
    h.chat.has_max_tokens = true;
    h.chat.max_tokens = 100;
    h.chat.has_temperature = true;
    h.chat.temperature = 0.25;
    h.chat.has_top_p = true;
    h.chat.top_p = 0.5;
    h.chat.stop[0] = (struct tg_str){"END", 3};
    h.chat.n_stop = 1;
}

#define CHAT_BODY                                                        \
    "{\"messages\":["                                                    \
    "{\"role\":\"user\",\"content\":[{\"text\":\"weather?\"}]},"         \
    "{\"role\":\"assistant\",\"content\":[{\"text\":\"Checking.\"},"     \
    "{\"toolUse\":{\"toolUseId\":\"call_1\",\"name\":\"get\",\"input\":" \
    "{\"c\":\"Paris\"}}},"                                               \
    "{\"toolUse\":{\"toolUseId\":\"call_2\",\"name\":\"get\",\"input\":" \
    "{\"c\":\"Oslo\"}}}]},"                                              \
    "{\"role\":\"user\",\"content\":["                                   \
    "{\"toolResult\":{\"toolUseId\":\"call_1\",\"content\":"             \
    "[{\"text\":\"sunny\"}]}},"                                          \
    "{\"toolResult\":{\"toolUseId\":\"call_2\",\"content\":"             \
    "[{\"json\":{\"temp\": 21}}]}}]}],"                                  \
    "\"system\":[{\"text\":\"be brief\"}],"                              \
    "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.25,"       \
    "\"topP\":0.5,\"stopSequences\":[\"END\"]}"

#define CHAT_TOOLS                                                 \
    ",\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"get\"," \
    "\"description\":\"Weather\",\"inputSchema\":{\"json\":"       \
    "{\"type\":\"object\"}}}}],"

Test(wire_bedrock, encodes_the_documented_request_for_each_tool_choice)
{
    static const struct {
        enum tg_tool_choice choice;
        const char *body;
    } cases[] = {
        {TG_TOOL_CHOICE_AUTO,
         CHAT_BODY CHAT_TOOLS "\"toolChoice\":{\"auto\":{}}}}"},
        {TG_TOOL_CHOICE_REQUIRED,
         CHAT_BODY CHAT_TOOLS "\"toolChoice\":{\"any\":{}}}}"},
        {TG_TOOL_CHOICE_NAMED,
         CHAT_BODY CHAT_TOOLS "\"toolChoice\":{\"tool\":{\"name\":\"get\"}}}}"},
        {TG_TOOL_CHOICE_NONE, CHAT_BODY "}"},
    };
    struct tg_wire_request req;
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, true);
        set_chat(cases[i].choice);
        cr_assert_str_eq(harness_encode(&h, &req), cases[i].body,
                         "tool_choice %d", (int)cases[i].choice);
        cr_assert_str_eq(req.path, "/model/anthropic.claude-3-haiku-20240307-"
                                   "v1%3A0/converse-stream");
        harness_free(&h);
    }
    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
}

Test(wire_bedrock, encode_merges_roles_and_leaves_out_empty_text)
{
    struct tg_tool_call calls[2] = {
        {{"k1", 2}, {"f", 1}, {"not json", 8}},
        {{"k2", 2}, {"f", 1}, {"[1]", 3}},
    };
    struct tg_message msgs[7] = {
        {.role = TG_ROLE_SYSTEM, .text = {"", 0}},
        {.role = TG_ROLE_USER, .text = {"a", 1}},
        {.role = TG_ROLE_USER, .text = {"b", 1}},
        {.role = TG_ROLE_ASSISTANT, .text = {"", 0}},
        {.role = TG_ROLE_ASSISTANT, .text = {"c", 1}},
        {.role = TG_ROLE_TOOL, .text = {"[1]", 3}, .tool_call_id = {"k1", 2}},
        {.role = TG_ROLE_USER, .text = {"d", 1}},
    };
    struct tg_tool tool = {{"f", 1}, {"", 0}, {"{}", 2}};
    struct tg_wire_request req;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
    msgs[4].calls = calls;
    msgs[4].n_calls = 2;
    h.chat.messages = msgs;
    h.chat.n_messages = 7;
    cr_assert_str_eq(
        harness_encode(&h, &req),
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"text\":\"a\"},{\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"text\":\"c\"},"
        "{\"toolUse\":{\"toolUseId\":\"k1\",\"name\":\"f\",\"input\":{}}},"
        "{\"toolUse\":{\"toolUseId\":\"k2\",\"name\":\"f\",\"input\":{}}}]},"
        "{\"role\":\"user\",\"content\":["
        "{\"toolResult\":{\"toolUseId\":\"k1\",\"content\":"
        "[{\"text\":\"[1]\"}]}},{\"text\":\"d\"}]}]}");
    cr_assert_str_eq(req.path, "/model/anthropic.claude-3-haiku-20240307-"
                               "v1%3A0/converse");
    /* A tool without a description leaves the field out. */
    h.chat.n_messages = 2;
    h.chat.tools = &tool;
    h.chat.n_tools = 1;
    cr_assert_str_eq(
        harness_encode(&h, &req),
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}],"
        "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"f\","
        "\"inputSchema\":{\"json\":{}}}}],\"toolChoice\":{\"auto\":{}}}}");
}

Test(wire_bedrock, encode_percent_encodes_the_model_id)
{
    struct tg_wire_request req;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK,
                 "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                 "us.anthropic.claude-3-haiku-20240307-v1:0",
                 true);
    harness_encode(&h, &req);
    cr_assert_str_eq(req.path,
                     "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A"
                     "inference-profile%2Fus.anthropic.claude-3-haiku-"
                     "20240307-v1%3A0/converse-stream");
}

/* ---- signing ------------------------------------------------------------ */

static const char *header_of(const struct tg_wire_request *req,
                             const char *name)
{
    size_t i;

    for (i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* 20240102T030405Z back to the time it was made from. */
static time_t time_of(const char *amz_date)
{
    struct tm tm = {0};

    cr_assert_eq(strlen(amz_date), TG_SIGV4_AMZ_DATE_LEN);
    cr_assert_eq(sscanf(amz_date, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year,
                        &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                        &tm.tm_sec),
                 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/*
 * Checks req's SigV4 headers: the Authorization's form, then the signature
 * itself, recomputed over the host, path and body the request goes out
 * with, at the time its X-Amz-Date names.
 */
static void assert_signed(const struct tg_wire_request *req, const char *body,
                          const char *host, const char *path, const char *token)
{
    static struct tg_sigv4_result out;
    const char *date = header_of(req, "X-Amz-Date");
    const char *auth = header_of(req, "Authorization");
    struct tg_sigv4_header headers[2] = {{"host", host},
                                         {"content-type", "application/json"}};
    struct tg_sigv4_request sreq = {.method = "POST",
                                    .path = path,
                                    .headers = headers,
                                    .n_headers = 2,
                                    .body = body,
                                    .body_len = strlen(body),
                                    .is_normalized = true};
    struct tg_sigv4_credentials cred = {"AKIDTEST", "test-secret", token,
                                        "us-east-1", "bedrock"};
    char prefix[256];
    time_t when;
    size_t i;

    cr_assert_not_null(date);
    cr_assert_not_null(auth);
    cr_assert_null(header_of(req, "Host"), "upstream.c adds Host");
    cr_assert_str_eq(header_of(req, "Content-Type"), "application/json");
    when = time_of(date);
    cr_assert_lt(labs((long)(when - time(NULL))), 300L);
    snprintf(prefix, sizeof(prefix),
             "AWS4-HMAC-SHA256 Credential=AKIDTEST/%.8s/us-east-1/bedrock/"
             "aws4_request, SignedHeaders=%s, Signature=",
             date,
             token[0] ? "content-type;host;x-amz-date;x-amz-security-token"
                      : "content-type;host;x-amz-date");
    cr_assert(strncmp(auth, prefix, strlen(prefix)) == 0, "%s", auth);
    cr_assert_eq(strlen(auth + strlen(prefix)), 64);
    for (i = strlen(prefix); auth[i] != '\0'; i++)
        cr_assert(isxdigit((unsigned char)auth[i]) &&
                  !isupper((unsigned char)auth[i]));
    cr_assert_eq(tg_sigv4_sign(&sreq, &cred, when, &out), 0);
    cr_assert_str_eq(auth, out.authorization);
    cr_assert_str_eq(date, out.amz_date);
}

/* The wire's path carries the id encoded once (%3A); the signer encodes it
 * once more for the canonical request, as AWS checks. The signature here was
 * computed by botocore's SigV4Auth for the same request and time. */
Test(wire_bedrock, signature_of_an_encoded_path_matches_botocore)
{
    static struct tg_sigv4_result out;
    struct tg_sigv4_header headers[2] = {
        {"host", "bedrock-runtime.us-east-1.amazonaws.com"},
        {"content-type", "application/json"}};
    struct tg_sigv4_request sreq = {
        .method = "POST",
        .path = "/model/us.amazon.nova-micro-v1%3A0/converse",
        .headers = headers,
        .n_headers = 2,
        .body = "{}",
        .body_len = 2,
        .is_normalized = true};
    struct tg_sigv4_credentials cred = {"AKID", "secret", "", "us-east-1",
                                        "bedrock"};

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, "m", false);
    cr_assert_eq(tg_sigv4_sign(&sreq, &cred, 1700000000, &out), 0);
    cr_assert_str_eq(out.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/"
                     "bedrock/aws4_request, SignedHeaders=content-type;host;"
                     "x-amz-date, Signature=f83efe277e30e606c8468444cd99da22"
                     "75c38afdaa6abbaab267c4f505b43f87");
}

Test(wire_bedrock, encode_signs_the_request)
{
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, true);
    set_chat(TG_TOOL_CHOICE_AUTO);
    body = harness_encode(&h, &req);
    cr_assert_eq(req.n_headers, 3);
    cr_assert_str_eq(req.headers[0].name, "Content-Type");
    cr_assert_str_eq(req.headers[1].name, "X-Amz-Date");
    cr_assert_str_eq(req.headers[2].name, "Authorization");
    cr_assert_null(header_of(&req, "X-Amz-Security-Token"));
    assert_signed(&req, body, "127.0.0.1:1",
                  "/model/anthropic.claude-3-haiku-20240307-v1%3A0/"
                  "converse-stream",
                  "");
}

Test(wire_bedrock, encode_signs_the_session_token)
{
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
    h.provider.session_token = "FQoGZXIvYXdzEXAMPLETOKEN";
    set_chat(TG_TOOL_CHOICE_NONE);
    body = harness_encode(&h, &req);
    cr_assert_eq(req.n_headers, 4);
    cr_assert_str_eq(header_of(&req, "X-Amz-Security-Token"),
                     "FQoGZXIvYXdzEXAMPLETOKEN");
    assert_signed(&req, body, "127.0.0.1:1",
                  "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                  "FQoGZXIvYXdzEXAMPLETOKEN");
}

Test(wire_bedrock, encode_signs_the_host_and_path_upstream_sends)
{
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
    h.provider.base_url = "https://bedrock-runtime.us-east-1.amazonaws.com";
    set_chat(TG_TOOL_CHOICE_AUTO);
    body = harness_encode(&h, &req);
    assert_signed(&req, body, "bedrock-runtime.us-east-1.amazonaws.com",
                  "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
                  "");
    harness_free(&h);

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
    h.provider.base_url = "https://gateway.example:8443/bedrock";
    set_chat(TG_TOOL_CHOICE_AUTO);
    body = harness_encode(&h, &req);
    assert_signed(&req, body, "gateway.example:8443",
                  "/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/"
                  "converse",
                  "");
}

Test(wire_bedrock, encode_refuses_a_base_url_it_cannot_sign)
{
    struct tg_wire_request req = {0};

    harness_init(&h, &tg_wire_bedrock, TG_PROVIDER_BEDROCK, HAIKU, false);
    h.provider.base_url = "ftp://example";
    set_chat(TG_TOOL_CHOICE_AUTO);
    req.body = evbuffer_new();
    cr_assert_eq(tg_wire_bedrock.encode(&h.w, &req), TG_ERROR);
    evbuffer_free(req.body);
}
