/*
 * test_wire_gemini.c - the Gemini wire: recorded answers and streams of the
 * real API (Gemini 2.0, 2.5 and 3) decode to the expected canonical events,
 * and the canonical request encodes to the body, path and headers the API
 * documents.
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

TestSuite(wire_gemini, .fini = fini);

static void init(bool is_stream)
{
    harness_init(&h, &tg_wire_gemini, TG_PROVIDER_GEMINI, "gemini-2.0-flash",
                 is_stream);
}

static int decode_chunk(const char *data)
{
    return tg_wire_gemini.decode_sse(&h.w, "", 0, data, strlen(data));
}

static int count_events(enum tg_event_type type)
{
    int i, n = 0;

    for (i = 0; i < h.n_events; i++)
        n += h.types[i] == type;
    return n;
}

/* ---- recorded streams --------------------------------------------------- */

Test(wire_gemini, stream_text_counts_thoughts_as_completion)
{
    init(true);
    cr_assert_eq(
        harness_decode_sse_file(&h, "streams/gemini_text_usage_thoughts.sse"),
        TG_OK);
    cr_assert_str_eq(h.text, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n"
                             "15\n16\n17\n18\n19\n20\n21\n22\n23\n24\n25\n26\n"
                             "27\n28\n29\n30");
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete, "the chunk with finishReason ends it");
    cr_assert(h.w.has_usage);
    cr_assert_eq(h.w.usage.prompt_tokens, 18);
    cr_assert_eq(h.w.usage.completion_tokens, 80 + 35);
    cr_assert_eq(h.n_tools, 0);
}

Test(wire_gemini, stream_text_takes_the_last_usage)
{
    init(true);
    cr_assert_eq(harness_decode_sse_file(
                     &h, "streams/gemini_text_after_function_response.sse"),
                 TG_OK);
    cr_assert_str_eq(h.text, "The temperature in Paris is 30\xc2\xb0"
                             "C.\n");
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 79, "not the first chunk's 169");
    cr_assert_eq(h.w.usage.completion_tokens, 12);
}

Test(wire_gemini, stream_function_call_gets_our_id_and_tool_use_stop)
{
    init(true);
    cr_assert_eq(
        harness_decode_sse_file(&h, "streams/gemini_function_call.sse"), TG_OK);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "call_tg_1lpeaMTxIpW1nvgP-O3vwQY_0");
    cr_assert_str_eq(h.tools[0].name, "get_capital");
    cr_assert_str_eq(h.tools[0].args, "{\"country\": \"France\"}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE, "STOP after a call is tool use");
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 52);
    cr_assert_eq(h.w.usage.completion_tokens, 5);
}

Test(wire_gemini, stream_gemini3_call_with_thought_signature)
{
    init(true);
    cr_assert_eq(harness_decode_sse_file(
                     &h, "streams/gemini3_function_call_thought_signature.sse"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "call_tg_QUVVadTSNJ6_qtsPvN7J8Q0_0");
    cr_assert_str_eq(h.tools[0].name, "get_country");
    cr_assert_str_eq(h.tools[0].args, "{}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.text_len, 0, "the final empty text part adds nothing");
    cr_assert_eq(count_events(TG_EV_TEXT), 0);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
    cr_assert_eq(h.w.usage.prompt_tokens, 29);
    cr_assert_eq(h.w.usage.completion_tokens, 10 + 202);
}

/* ---- recorded bodies ---------------------------------------------------- */

Test(wire_gemini, body_function_call)
{
    init(false);
    cr_assert_eq(
        harness_decode_body_file(&h, "responses/gemini_function_call.json"),
        TG_OK);
    cr_assert_eq(h.n_tools, 1);
    cr_assert_str_eq(h.tools[0].id, "call_tg_LlteaIDvD9m7nvgPz5Sb0Aw_0");
    cr_assert_str_eq(h.tools[0].name, "get_user_country");
    cr_assert_str_eq(h.tools[0].args, "{}");
    cr_assert(h.tools[0].is_ended);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.prompt_tokens, 33);
    cr_assert_eq(h.w.usage.completion_tokens, 5);
}

Test(wire_gemini, body_gemini3_parallel_calls_each_get_an_id)
{
    static const char *const ids[] = {
        "call_tg_wOd8abGuO5rgz7IP5tLEGA_0",
        "call_tg_wOd8abGuO5rgz7IP5tLEGA_1",
        "call_tg_wOd8abGuO5rgz7IP5tLEGA_2",
    };
    int i;

    init(false);
    cr_assert_eq(harness_decode_body_file(
                     &h, "responses/gemini3_parallel_function_calls.json"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 3);
    for (i = 0; i < 3; i++) {
        cr_assert_str_eq(h.tools[i].id, ids[i]);
        cr_assert_str_eq(h.tools[i].name, "generate_topic");
        cr_assert_str_eq(h.tools[i].args, "{}");
        cr_assert(h.tools[i].is_ended);
    }
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(h.w.usage.prompt_tokens, 83);
    cr_assert_eq(h.w.usage.completion_tokens, 30 + 190);
}

/* ---- decoding rules ----------------------------------------------------- */

Test(wire_gemini, gemini_call_ids_are_kept)
{
    init(true);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"functionCall\":{\"id\":\"fc_9\",\"name\":"
                              "\"f\",\"args\":{\"a\":[1,2]}},"
                              "\"thoughtSignature\":\"c2ln\"},"
                              "{\"functionCall\":{\"name\":\"g\"}}],"
                              "\"role\":\"model\"}}],\"responseId\":\"r\"}"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "fc_9");
    cr_assert_str_eq(h.tools[0].args, "{\"a\":[1,2]}");
    cr_assert_str_eq(h.tools[1].id, "call_tg_r_1");
    cr_assert_str_eq(h.tools[1].args, "{}", "absent args are {}");
    cr_assert(!h.w.is_complete, "no finishReason yet");
    cr_assert(!h.has_stop);
}

Test(wire_gemini, call_index_counts_across_chunks_and_text_follows)
{
    init(true);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"Let me look.\"},"
                              "{\"functionCall\":{\"name\":\"f\",\"args\":{}}}"
                              "]}}]}"),
                 TG_OK);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"functionCall\":{\"name\":\"g\",\"args\":{}}},"
                              "{\"text\":\" Done.\"}]},"
                              "\"finishReason\":\"STOP\"}]}"),
                 TG_OK);
    cr_assert_eq(h.n_tools, 2);
    cr_assert_str_eq(h.tools[0].id, "call_tg_0", "no responseId: index only");
    cr_assert_str_eq(h.tools[1].id, "call_tg_1");
    cr_assert_str_eq(h.tools[1].name, "g");
    cr_assert(h.tools[0].is_ended && h.tools[1].is_ended);
    cr_assert_str_eq(h.text, "Let me look. Done.");
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert(h.w.is_complete);
}

Test(wire_gemini, thought_parts_are_skipped)
{
    init(true);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"hmm, thinking\",\"thought\":true},"
                              "{\"text\":\"Answer\",\"thought\":false}]},"
                              "\"finishReason\":\"STOP\"}],"
                              "\"usageMetadata\":{\"promptTokenCount\":3,"
                              "\"thoughtsTokenCount\":7}}"),
                 TG_OK);
    cr_assert_str_eq(h.text, "Answer");
    cr_assert_eq(h.stop, TG_STOP_END);
    cr_assert_eq(h.w.usage.prompt_tokens, 3);
    cr_assert_eq(h.w.usage.completion_tokens, 7);
}

Test(wire_gemini, finish_reasons_map_to_stop_reasons)
{
    static const struct {
        const char *reason;
        enum tg_stop_reason stop;
    } cases[] = {
        {"STOP", TG_STOP_END},
        {"MAX_TOKENS", TG_STOP_MAX_TOKENS},
        {"SAFETY", TG_STOP_FILTER},
        {"RECITATION", TG_STOP_FILTER},
        {"BLOCKLIST", TG_STOP_FILTER},
        {"PROHIBITED_CONTENT", TG_STOP_FILTER},
        {"SPII", TG_STOP_FILTER},
        {"IMAGE_SAFETY", TG_STOP_FILTER},
        {"OTHER", TG_STOP_END},
        {"LANGUAGE", TG_STOP_END},
        {"MALFORMED_FUNCTION_CALL", TG_STOP_END},
        {"FINISH_REASON_UNSPECIFIED", TG_STOP_END},
    };
    char chunk[256];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        init(true);
        snprintf(chunk, sizeof(chunk),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"finishReason\":\"%s\"}]}",
                 cases[i].reason);
        cr_assert_eq(decode_chunk(chunk), TG_OK, "%s", cases[i].reason);
        cr_assert(h.has_stop && h.w.is_complete, "%s", cases[i].reason);
        cr_assert_eq(h.stop, cases[i].stop, "%s", cases[i].reason);
        harness_free(&h);
    }
    init(true);
}

Test(wire_gemini, safety_stop_without_content)
{
    init(true);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"finishReason\":\"SAFETY\","
                              "\"safetyRatings\":[]}]}"),
                 TG_OK);
    cr_assert_eq(h.stop, TG_STOP_FILTER);
    cr_assert(h.w.is_complete);
}

Test(wire_gemini, blocked_prompt_is_a_filter_stop)
{
    init(false);
    cr_assert_eq(
        tg_wire_gemini.decode_body(
            &h.w,
            "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
            "\"usageMetadata\":{\"promptTokenCount\":9,\"totalTokenCount\":9}}",
            strlen("{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT"
                   "\"},\"usageMetadata\":{\"promptTokenCount\":9,"
                   "\"totalTokenCount\":9}}")),
        TG_OK);
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_FILTER);
    cr_assert_eq(h.text_len, 0);
    cr_assert_eq(h.w.usage.prompt_tokens, 9);
    cr_assert_eq(h.w.usage.completion_tokens, 0);
}

Test(wire_gemini, usage_only_chunk_and_repeated_finish_stop_once)
{
    init(true);
    cr_assert_eq(
        decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                     "{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}"),
        TG_OK);
    cr_assert_eq(decode_chunk("{\"usageMetadata\":{\"promptTokenCount\":4,"
                              "\"candidatesTokenCount\":1}}"),
                 TG_OK);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":[]},"
                              "\"finishReason\":\"STOP\"}]}"),
                 TG_OK);
    cr_assert_eq(count_events(TG_EV_STOP), 1);
    cr_assert_eq(h.w.usage.prompt_tokens, 4);
    cr_assert_eq(h.w.usage.completion_tokens, 1);
}

Test(wire_gemini, content_after_the_stop_is_ignored)
{
    init(true);
    cr_assert_eq(
        decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                     "{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}"),
        TG_OK);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"b\"},{\"functionCall\":{\"name\":"
                              "\"f\"}}]}}]}"),
                 TG_OK);
    cr_assert_str_eq(h.text, "a");
    cr_assert_eq(h.n_tools, 0);
    cr_assert_eq(h.stop, TG_STOP_END);
}

Test(wire_gemini, body_without_finish_reason_still_stops)
{
    static const char body[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
        "{\"name\":\"f\",\"args\":{\"x\":1}}}]}}]}";

    init(false);
    cr_assert_eq(tg_wire_gemini.decode_body(&h.w, body, strlen(body)), TG_OK);
    cr_assert_str_eq(h.tools[0].args, "{\"x\":1}");
    cr_assert(h.has_stop);
    cr_assert_eq(h.stop, TG_STOP_TOOL_USE);
    cr_assert_eq(count_events(TG_EV_STOP), 1);
}

Test(wire_gemini, stream_cut_before_finish_reason_is_not_complete)
{
    init(true);
    cr_assert_eq(decode_chunk("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"The temperature\"}]}}]}"),
                 TG_OK);
    cr_assert_str_eq(h.text, "The temperature");
    cr_assert(!h.w.is_complete);
    cr_assert(!h.has_stop);
}

Test(wire_gemini, malformed_chunks_are_declined)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "",
        "[DONE]",
        "{\"candidates\":3}",
        "{\"candidates\":[3]}",
        "{\"candidates\":[{\"content\":[]}]}",
        "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[\"hi\"]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":5}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\","
        "\"thought\":\"yes\"}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
        "{\"args\":{}}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
        "{\"name\":\"f\",\"args\":[1]}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
        "{\"name\":\"f\",\"id\":7}}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":\"f\"}]}}"
        "]}",
        "{\"candidates\":[{\"finishReason\":1}]}",
        "{\"candidates\":[],\"usageMetadata\":\"many\"}",
        "{\"usageMetadata\":{\"promptTokenCount\":\"9\"}}",
        "{\"usageMetadata\":{\"candidatesTokenCount\":1.5}}",
        "{\"responseId\":5}",
        "{\"error\":{\"code\":503,\"message\":\"overloaded\","
        "\"status\":\"UNAVAILABLE\"}}",
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        init(true);
        cr_assert_eq(decode_chunk(bad[i]), TG_DECLINED, "%s", bad[i]);
        harness_free(&h);
    }
    init(true);
}

Test(wire_gemini, body_without_candidates_or_block_is_declined)
{
    static const char body[] = "{\"usageMetadata\":{\"promptTokenCount\":1}}";

    init(false);
    cr_assert_eq(tg_wire_gemini.decode_body(&h.w, body, strlen(body)),
                 TG_DECLINED);
}

Test(wire_gemini, decode_error_reads_the_message)
{
    static const char object[] =
        "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please "
        "pass a valid API key.\",\"status\":\"INVALID_ARGUMENT\"}}";
    static const char array[] =
        "[{\"error\":{\"code\":429,\"message\":\"Resource has been "
        "exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}]";
    char out[400];

    tg_wire_gemini.decode_error(400, object, strlen(object), out, sizeof(out));
    cr_assert_str_eq(out, "API key not valid. Please pass a valid API key.");
    tg_wire_gemini.decode_error(429, array, strlen(array), out, sizeof(out));
    cr_assert_str_eq(out, "Resource has been exhausted");
    tg_wire_gemini.decode_error(502, "<html>", 6, out, sizeof(out));
    cr_assert_str_eq(out, "HTTP 502");
    tg_wire_gemini.decode_error(500, "{\"error\":{}}", 12, out, sizeof(out));
    cr_assert_str_eq(out, "HTTP 500");
    init(false);
}

/* ---- encoding ----------------------------------------------------------- */

Test(wire_gemini, encodes_the_documented_request)
{
    struct tg_tool_call calls[2] = {
        {{"call_tg_r1_0", 12}, {"get", 3}, {"{\"c\":1}", 7}},
        {{"fc-7", 4}, {"find", 4}, {"not json", 8}},
    };
    struct tg_message msgs[7] = {
        {.role = TG_ROLE_SYSTEM, .text = {"be brief", 8}},
        {.role = TG_ROLE_USER, .text = {"weather?", 8}},
        {.role = TG_ROLE_ASSISTANT, .text = {"checking", 8}},
        {.role = TG_ROLE_TOOL,
         .text = {" {\"temp\": 20} ", 14},
         .tool_call_id = {"call_tg_r1_0", 12}},
        {.role = TG_ROLE_TOOL,
         .text = {"sunny", 5},
         .tool_call_id = {"fc-7", 4}},
        {.role = TG_ROLE_USER, .text = {"thanks", 6}},
        {.role = TG_ROLE_SYSTEM, .text = {"no emoji", 8}},
    };
    struct tg_tool tools[2] = {
        {{"get", 3}, {"Weather", 7}, {"{\"type\":\"object\"}", 17}},
        {{"find", 4}, {"", 0}, {"{}", 2}},
    };
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_gemini, TG_PROVIDER_GEMINI, "gemini-2.5-flash",
                 false);
    msgs[2].calls = calls;
    msgs[2].n_calls = 2;
    h.chat.messages = msgs;
    h.chat.n_messages = 7;
    h.chat.tools = tools;
    h.chat.n_tools = 2;
    h.chat.tool_choice = TG_TOOL_CHOICE_REQUIRED;
    h.chat.has_temperature = true;
    h.chat.temperature = 0.25;
    h.chat.has_top_p = true;
    h.chat.top_p = 0.5;
    h.chat.has_max_tokens = true;
    h.chat.max_tokens = 100;
    h.chat.stop[0] = (struct tg_str){"END", 3};
    h.chat.n_stop = 1;
    h.chat.user = (struct tg_str){"u-1", 3};
    body = harness_encode(&h, &req);
    cr_assert_str_eq(req.path, "/v1beta/models/gemini-2.5-flash"
                               ":generateContent");
    cr_assert_eq(req.n_headers, 2);
    cr_assert_str_eq(req.headers[0].name, "Content-Type");
    cr_assert_str_eq(req.headers[0].value, "application/json");
    cr_assert_str_eq(req.headers[1].name, "x-goog-api-key");
    cr_assert_str_eq(req.headers[1].value, "test-key");
    cr_assert_str_eq(
        body,
        "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"checking\"},"
        "{\"functionCall\":{\"name\":\"get\",\"args\":{\"c\":1}}},"
        "{\"functionCall\":{\"name\":\"find\",\"args\":{},\"id\":\"fc-7\"}}]},"
        "{\"role\":\"user\",\"parts\":["
        "{\"functionResponse\":{\"name\":\"get\",\"response\":"
        "{\"temp\": 20}}},"
        "{\"functionResponse\":{\"name\":\"find\",\"response\":"
        "{\"result\":\"sunny\"},\"id\":\"fc-7\"}},"
        "{\"text\":\"thanks\"}]}],"
        "\"systemInstruction\":{\"parts\":[{\"text\":\"be brief\"},"
        "{\"text\":\"no emoji\"}]},"
        "\"tools\":[{\"functionDeclarations\":["
        "{\"name\":\"get\",\"description\":\"Weather\","
        "\"parametersJsonSchema\":{\"type\":\"object\"}},"
        "{\"name\":\"find\",\"parametersJsonSchema\":{}}]}],"
        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}},"
        "\"generationConfig\":{\"temperature\":0.25,\"topP\":0.5,"
        "\"maxOutputTokens\":100,\"stopSequences\":[\"END\"]}}");
}

Test(wire_gemini, encodes_each_tool_choice)
{
    static const struct {
        enum tg_tool_choice choice;
        const char *config;
    } cases[] = {
        {TG_TOOL_CHOICE_AUTO, ""},
        {TG_TOOL_CHOICE_NONE,
         ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
        {TG_TOOL_CHOICE_REQUIRED,
         ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
        {TG_TOOL_CHOICE_NAMED,
         ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
         "\"allowedFunctionNames\":[\"get\"]}}"},
    };
    struct tg_message msg = {.role = TG_ROLE_USER, .text = {"hi", 2}};
    struct tg_tool tool = {{"get", 3}, {"", 0}, {"{}", 2}};
    struct tg_wire_request req;
    char expected[512];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        init(false);
        h.chat.messages = &msg;
        h.chat.n_messages = 1;
        h.chat.tools = &tool;
        h.chat.n_tools = 1;
        h.chat.tool_choice = cases[i].choice;
        h.chat.tool_choice_name = (struct tg_str){"get", 3};
        snprintf(expected, sizeof(expected),
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
                 "\"hi\"}]}],\"tools\":[{\"functionDeclarations\":[{\"name\":"
                 "\"get\",\"parametersJsonSchema\":{}}]}]%s}",
                 cases[i].config);
        cr_assert_str_eq(harness_encode(&h, &req), expected, "choice %d",
                         (int)cases[i].choice);
        harness_free(&h);
    }
    init(false);
}

Test(wire_gemini, encodes_a_stream_path_and_a_minimal_body)
{
    struct tg_message msg = {.role = TG_ROLE_USER, .text = {"hi", 2}};
    struct tg_wire_request req;
    const char *body;

    harness_init(&h, &tg_wire_gemini, TG_PROVIDER_GEMINI,
                 "gemini-3-pro-preview", true);
    h.chat.messages = &msg;
    h.chat.n_messages = 1;
    body = harness_encode(&h, &req);
    cr_assert_str_eq(req.path, "/v1beta/models/gemini-3-pro-preview"
                               ":streamGenerateContent?alt=sse");
    cr_assert_str_eq(req.headers[1].name, "x-goog-api-key");
    cr_assert_str_eq(body,
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":"
                     "\"hi\"}]}]}");
}

Test(wire_gemini, escapes_the_model_id_in_the_path)
{
    struct tg_message msg = {.role = TG_ROLE_USER, .text = {"hi", 2}};
    struct tg_wire_request req;

    harness_init(&h, &tg_wire_gemini, TG_PROVIDER_GEMINI, "my model/v1?x",
                 false);
    h.chat.messages = &msg;
    h.chat.n_messages = 1;
    harness_encode(&h, &req);
    cr_assert_str_eq(req.path,
                     "/v1beta/models/my%20model%2Fv1%3Fx:generateContent");
    harness_free(&h);
    harness_init(&h, &tg_wire_gemini, TG_PROVIDER_GEMINI,
                 "models/gemini-2.0-flash", false);
    h.chat.messages = &msg;
    h.chat.n_messages = 1;
    harness_encode(&h, &req);
    cr_assert_str_eq(req.path,
                     "/v1beta/models/gemini-2.0-flash:generateContent");
}

Test(wire_gemini, merges_consecutive_roles_and_never_sends_empty_content)
{
    struct tg_message msgs[4] = {
        {.role = TG_ROLE_USER, .text = {"a", 1}},
        {.role = TG_ROLE_USER, .text = {"", 0}},
        {.role = TG_ROLE_ASSISTANT, .text = {"", 0}},
        {.role = TG_ROLE_ASSISTANT, .text = {"b", 1}},
    };
    struct tg_wire_request req;

    init(false);
    h.chat.messages = msgs;
    h.chat.n_messages = 4;
    cr_assert_str_eq(harness_encode(&h, &req),
                     "{\"contents\":["
                     "{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},"
                     "{\"text\":\"\"}]},"
                     "{\"role\":\"model\",\"parts\":[{\"text\":\"\"},"
                     "{\"text\":\"b\"}]}]}");
}

/* The id made for a Gemini 2 call comes back in the next request and names
 * its function there, without reaching the wire; the nearest earlier call
 * with the id is the one answered. */
Test(wire_gemini, our_call_ids_round_trip_without_reaching_the_wire)
{
    struct tg_tool_call first = {{"call_tg_0", 9}, {"old", 3}, {"{}", 2}};
    struct tg_tool_call call;
    struct tg_message msgs[5] = {
        {.role = TG_ROLE_ASSISTANT, .calls = &first, .n_calls = 1},
        {.role = TG_ROLE_TOOL,
         .text = {"1", 1},
         .tool_call_id = {"call_tg_0", 9}},
        {.role = TG_ROLE_USER, .text = {"again", 5}},
        {.role = TG_ROLE_ASSISTANT, .n_calls = 1},
        {.role = TG_ROLE_TOOL,
         .text = {"{\"capital\":\"Paris\"}", 19},
         .tool_call_id = {NULL, 0}},
    };
    struct tg_wire_request req;
    char id[sizeof(h.tools[0].id)], args[sizeof(h.tools[0].args)];

    init(true);
    cr_assert_eq(
        harness_decode_sse_file(&h, "streams/gemini_function_call.sse"), TG_OK);
    snprintf(id, sizeof(id), "%s", h.tools[0].id);
    snprintf(args, sizeof(args), "%s", h.tools[0].args);
    harness_free(&h);

    call = (struct tg_tool_call){
        {id, strlen(id)}, {"get_capital", 11}, {args, strlen(args)}};
    msgs[3].calls = &call;
    msgs[4].tool_call_id = (struct tg_str){id, strlen(id)};
    init(false);
    h.chat.messages = msgs;
    h.chat.n_messages = 5;
    cr_assert_str_eq(
        harness_encode(&h, &req),
        "{\"contents\":["
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"old\","
        "\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"old\",\"response\":{\"result\":\"1\"}}},{\"text\":\"again\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
        "\"get_capital\",\"args\":{\"country\": \"France\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
        "\"get_capital\",\"response\":{\"capital\":\"Paris\"}}}]}]}");
}

Test(wire_gemini, tool_result_without_its_call_fails_to_encode)
{
    struct tg_tool_call call = {{"call_1", 6}, {"get", 3}, {"{}", 2}};
    struct tg_message msgs[3] = {
        {.role = TG_ROLE_USER, .text = {"hi", 2}},
        {.role = TG_ROLE_ASSISTANT, .calls = &call, .n_calls = 1},
        {.role = TG_ROLE_TOOL,
         .text = {"sunny", 5},
         .tool_call_id = {"call_2", 6}},
    };
    struct tg_wire_request req;

    init(false);
    h.chat.messages = msgs;
    h.chat.n_messages = 3;
    memset(&req, 0, sizeof(req));
    req.body = evbuffer_new();
    cr_assert_eq(tg_wire_gemini.encode(&h.w, &req), TG_ERROR);
    evbuffer_free(req.body);

    /* A call that comes only after the result does not count either. */
    msgs[1] = msgs[2];
    msgs[2] = (struct tg_message){
        .role = TG_ROLE_ASSISTANT, .calls = &call, .n_calls = 1};
    msgs[1].tool_call_id = (struct tg_str){"call_1", 6};
    req.body = evbuffer_new();
    cr_assert_eq(tg_wire_gemini.encode(&h.w, &req), TG_ERROR);
    evbuffer_free(req.body);
}
