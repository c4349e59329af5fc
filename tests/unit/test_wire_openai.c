/*
 * test_wire_openai.c - the OpenAI wire: recorded answers and streams of the
 * real API decode to the expected canonical events, and the canonical
 * request encodes to the body the API documents.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "tg.h"
#include "tg_json.h"
#include "wire_harness.h"

static struct harness h;

static void fini(void)
{
    harness_free(&h);
}

TestSuite(wire_openai, .fini = fini);

Test(wire_openai, stream_text_with_usage)
{
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", true);
    cr_assert_eq(harness_decode_sse_file(&h, "streams/openai_chat_text_usage"
                                             ".sse"),
                 TG_OK);
    cr_assert_str_eq(h.text, "I'm unable to provide real-time weather "
                             "updates. To get the current weather in San "
                             "Francisco, I recommend checking a reliable "
                             "weather website or a weather app.");
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete, "[DONE] was seen");
    cr_assert(h.w.has_usage);
    cr_assert_eq(h.w.usage.prompt_tokens, 14);
    cr_assert_eq(h.w.usage.completion_tokens, 30);
    cr_assert_eq(h.n_tools, 0);
}

Test(wire_openai, stream_tool_call_fragments_join)
{
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", true);
    cr_assert_eq(harness_decode_sse_file(&h, "streams/openai_chat_tool_call"
                                             ".sse"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "call_CTf1nWJLqSeRgDqaCG27xZ74");
    cr_assert_str_eq(h.tools[0].name, "get_weather");
    cr_assert_str_eq(h.tools[0].args,
                     "{\"city\":\"San Francisco\",\"state\":\"CA\"}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.w.usage.prompt_tokens, 48);
    cr_assert_eq(h.w.usage.completion_tokens, 19);
}

Test(wire_openai, stream_parallel_tool_calls_keep_their_index)
{
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", true);
    cr_assert_eq(harness_decode_sse_file(
                     &h, "streams/openai_chat_parallel_tool_calls.sse"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "call_JMW1whyEaYG438VE1OIflxA2");
    cr_assert_str_eq(h.tools[0].name, "GetWeatherArgs");
    cr_assert_str_eq(h.tools[0].args, "{\"city\": \"Edinburgh\", "
                                      "\"country\": \"GB\", \"units\": "
                                      "\"c\"}");
    cr_assert_str_eq(h.tools[1].id, "call_DNYTawLBoN8fj3KN6qU9N1Ou");
    cr_assert_str_eq(h.tools[1].name, "get_stock_price");
    cr_assert_str_eq(h.tools[1].args,
                     "{\"ticker\": \"AAPL\", \"exchange\": \"NASDAQ\"}");
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.prompt_tokens, 149);
}

Test(wire_openai, body_text)
{
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", false);
    cr_assert_eq(harness_decode_body_file(&h, "responses/openai_chat_text"
                                              ".json"),
                 TG_OK);
    cr_assert(strncmp(h.text, "I'm unable to provide real-time", 31) == 0);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert_eq(h.w.usage.prompt_tokens, 14);
    cr_assert_eq(h.w.usage.completion_tokens, 37);
}

Test(wire_openai, body_tool_calls)
{
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/openai_chat_parallel_tool_calls.json"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "call_fdNz3vOBKYgOIpMdWotB9MjY");
    cr_assert_str_eq(h.tools[0].name, "GetWeatherArgs");
    cr_assert(h.tools[0].is_ended && h.tools[1].is_ended);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.completion_tokens, 60);
}

Test(wire_openai, malformed_answers_are_declined)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"choices\":3}",
        "{\"choices\":[{\"delta\":{\"content\":5}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":999,\"id\":\"x\","
        "\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"error\":{\"message\":\"overloaded\"}}",
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "m", true);
        cr_assert_eq(
            tg_wire_openai.decode_sse(&h.w, "", 0, bad[i], strlen(bad[i])),
            TG_DECLINED, "%s", bad[i]);
        harness_free(&h);
    }
    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "m", false);
}

Test(wire_openai, encodes_the_documented_request)
{
    struct tg_message msgs[4] = {
        {.role = TG_ROLE_SYSTEM, .text = {"be brief", 8}},
        {.role = TG_ROLE_USER, .text = {"weather?", 8}},
        {.role = TG_ROLE_ASSISTANT, .text = {"", 0}},
        {.role = TG_ROLE_TOOL,
         .text = {"sunny", 5},
         .tool_call_id = {"call_1", 6}},
    };
    struct tg_tool_call call = {{"call_1", 6}, {"get", 3}, {"{\"c\":1}", 7}};
    struct tg_tool tool = {
        {"get", 3}, {"Weather", 7}, {"{\"type\":\"object\"}", 17}};
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_openai, TG_PROVIDER_OPENAI, "gpt-4o", true);
    msgs[2].calls = &call;
    msgs[2].n_calls = 1;
    h.chat.messages = msgs;
    h.chat.n_messages = 4;
    h.chat.tools = &tool;
    h.chat.n_tools = 1;
    h.chat.tool_choice = TG_TOOL_CHOICE_REQUIRED;
    h.chat.has_max_tokens = true;
    h.chat.max_tokens = 100;
    h.chat.has_temperature = true;
    h.chat.temperature = 0.25;
    body = harness_encode(&h, &req);
    cr_assert_str_eq(req.path, "/chat/completions");
    cr_assert_str_eq(req.headers[0].name, "Content-Type");
    cr_assert_str_eq(req.headers[1].name, "Authorization");
    cr_assert_str_eq(req.headers[1].value, "Bearer test-key");
    cr_assert_str_eq(
        body,
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"arguments\":\"{\\\"c\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"content\":\"sunny\",\"tool_call_id\":"
        "\"call_1\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":\"required\",\"temperature\":0.25,"
        "\"max_tokens\":100,\"stream\":true,\"stream_options\":"
        "{\"include_usage\":true}}");
}
