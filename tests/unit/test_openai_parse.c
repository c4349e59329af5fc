/*
 * test_openai_parse.c - the OpenAI chat completion body into the canonical
 * request: every field it reads, and the error (status, code, param) for
 * each kind of bad input.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_canon.h"
#include "tg_front.h"
#include "tg_parse.h"

static struct tg_arena arena;
static struct tg_parse p;
static struct tg_chat chat;

static void setup(void)
{
    tg_arena_init(&arena, 1024);
    memset(&chat, 0, sizeof(chat));
}

static void teardown(void)
{
    tg_arena_free(&arena);
}

static int parse(const char *body)
{
    int rc = tg_parse_body(&p, &arena, body, strlen(body));

    return rc == TG_OK ? tg_front_openai_parse(&p, &chat) : rc;
}

static void expect_error(const char *body, const char *code, const char *param)
{
    cr_assert_eq(parse(body), TG_ERROR, "accepted: %s", body);
    cr_assert_eq(p.status, 400, "%s", body);
    cr_assert_str_eq(p.code, code, "%s: %s", body, p.message);
    cr_assert_str_eq(p.param, param, "%s", body);
    cr_assert_gt(strlen(p.message), 10);
}

static bool str_is(struct tg_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

TestSuite(openai_parse, .init = setup, .fini = teardown);

Test(openai_parse, minimal_request_defaults)
{
    cr_assert_eq(parse("{\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"hi\"}]}"),
                 TG_OK, "%s", p.message);
    cr_assert_eq(chat.model.len, 0);
    cr_assert_eq(chat.n_messages, 1);
    cr_assert_eq(chat.messages[0].role, TG_ROLE_USER);
    cr_assert(str_is(chat.messages[0].text, "hi"));
    cr_assert_not(chat.is_stream);
    cr_assert_not(chat.include_usage);
    cr_assert_not(chat.has_temperature);
    cr_assert_not(chat.has_top_p);
    cr_assert_not(chat.has_max_tokens);
    cr_assert_eq(chat.n_tools, 0);
    cr_assert_eq(chat.tool_choice, TG_TOOL_CHOICE_AUTO);
    cr_assert_eq(chat.n_stop, 0);
}

Test(openai_parse, every_field_read)
{
    const char *body =
        "{\"model\":\"gpt-4o\",\"temperature\":0.5,\"top_p\":0.9,"
        "\"max_tokens\":100,\"stream\":true,\"stream_options\":"
        "{\"include_usage\":true},\"stop\":\"END\",\"user\":\"u-1\","
        "\"messages\":[{\"role\":\"developer\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"name\":\"bob\",\"content\":\"q\"}],"
        "\"presence_penalty\":1,\"seed\":7,\"logprobs\":false}";

    cr_assert_eq(parse(body), TG_OK, "%s", p.message);
    cr_assert(str_is(chat.model, "gpt-4o"));
    cr_assert(chat.has_temperature);
    cr_assert_float_eq(chat.temperature, 0.5, 1e-12);
    cr_assert(chat.has_top_p);
    cr_assert_float_eq(chat.top_p, 0.9, 1e-12);
    cr_assert(chat.has_max_tokens);
    cr_assert_eq(chat.max_tokens, 100);
    cr_assert(chat.is_stream);
    cr_assert(chat.include_usage);
    cr_assert_eq(chat.n_stop, 1);
    cr_assert(str_is(chat.stop[0], "END"));
    cr_assert(str_is(chat.user, "u-1"));
    cr_assert_eq(chat.messages[0].role, TG_ROLE_SYSTEM);
    cr_assert(str_is(chat.messages[1].name, "bob"));
}

Test(openai_parse, max_completion_tokens_wins_over_max_tokens)
{
    cr_assert_eq(parse("{\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"x\"}],\"max_tokens\":5,"
                       "\"max_completion_tokens\":9}"),
                 TG_OK);
    cr_assert_eq(chat.max_tokens, 9);
}

Test(openai_parse, null_fields_read_as_absent)
{
    cr_assert_eq(parse("{\"model\":null,\"temperature\":null,\"stop\":null,"
                       "\"tools\":null,\"stream\":null,\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"x\"}]}"),
                 TG_OK, "%s", p.message);
    cr_assert_eq(chat.model.len, 0);
    cr_assert_not(chat.has_temperature);
    cr_assert_not(chat.is_stream);
}

Test(openai_parse, content_parts_are_joined_and_escapes_decoded)
{
    cr_assert_eq(
        parse("{\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"text\",\"text\":\"a\\u00e9\"},"
              "{\"type\":\"text\",\"text\":\"\\n\\ud83d\\ude00\"}]}]}"),
        TG_OK, "%s", p.message);
    cr_assert(str_is(chat.messages[0].text, "a\xc3\xa9\n\xf0\x9f\x98\x80"));
}

Test(openai_parse, tool_round_trip_fields)
{
    const char *body =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"arguments\":\"{\\\"city\\\":\\\"SF\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}]"
        ","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get\"}"
        "}}";

    cr_assert_eq(parse(body), TG_OK, "%s", p.message);
    cr_assert_eq(chat.messages[1].n_calls, 1);
    cr_assert(str_is(chat.messages[1].calls[0].id, "call_1"));
    cr_assert(str_is(chat.messages[1].calls[0].name, "get"));
    cr_assert(str_is(chat.messages[1].calls[0].arguments, "{\"city\":\"SF\"}"));
    cr_assert(str_is(chat.messages[1].text, ""));
    cr_assert_eq(chat.messages[2].role, TG_ROLE_TOOL);
    cr_assert(str_is(chat.messages[2].tool_call_id, "call_1"));
    cr_assert_eq(chat.n_tools, 1);
    cr_assert(str_is(chat.tools[0].name, "get"));
    cr_assert(str_is(chat.tools[0].description, "Weather"));
    cr_assert(str_is(chat.tools[0].parameters, "{\"type\":\"object\"}"));
    cr_assert_eq(chat.tool_choice, TG_TOOL_CHOICE_NAMED);
    cr_assert(str_is(chat.tool_choice_name, "get"));
}

Test(openai_parse, tool_without_parameters_gets_empty_schema)
{
    cr_assert_eq(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":"
                       "{\"name\":\"f\"}}],\"tool_choice\":\"required\"}"),
                 TG_OK, "%s", p.message);
    cr_assert(str_is(chat.tools[0].parameters, "{}"));
    cr_assert_eq(chat.tool_choice, TG_TOOL_CHOICE_REQUIRED);
}

Test(openai_parse, stop_array)
{
    cr_assert_eq(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"stop\":[\"a\",\"b\"]}"),
                 TG_OK);
    cr_assert_eq(chat.n_stop, 2);
    cr_assert(str_is(chat.stop[1], "b"));
}

Test(openai_parse, json_errors)
{
    expect_error("{", "invalid_json", "");
    expect_error("[]", "invalid_json", "");
    expect_error("{\"messages\":[],}", "invalid_json", "");
    cr_assert_eq(tg_parse_body(&p, &arena, "", 0), TG_ERROR);
    cr_assert_str_eq(p.code, "invalid_json");
}

Test(openai_parse, field_errors_name_the_param)
{
    expect_error("{}", "missing_required_parameter", "messages");
    expect_error("{\"messages\":[]}", "empty_array", "messages");
    expect_error("{\"messages\":{}}", "invalid_type", "messages");
    expect_error("{\"messages\":[null]}", "invalid_type", "messages[0]");
    expect_error("{\"messages\":[{\"role\":1,\"content\":\"x\"}]}",
                 "invalid_type", "messages[0].role");
    expect_error("{\"messages\":[{\"role\":\"x\",\"content\":\"x\"}]}",
                 "invalid_value", "messages[0].role");
    expect_error("{\"messages\":[{\"role\":\"user\"}]}",
                 "missing_required_parameter", "messages[0].content");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                 "\"text\"}]}]}",
                 "missing_required_parameter", "messages[0].content[0].text");
    expect_error("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":"
                 "[{\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}]}",
                 "missing_required_parameter",
                 "messages[0].tool_calls[0].function.arguments");
}

Test(openai_parse, range_and_type_errors)
{
    const char *m = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char body[256];
    static const struct {
        const char *field, *code, *param;
    } cases[] = {
        {"\"temperature\":2.01", "invalid_value", "temperature"},
        {"\"temperature\":\"1\"", "invalid_type", "temperature"},
        {"\"top_p\":-1", "invalid_value", "top_p"},
        {"\"max_tokens\":0", "invalid_value", "max_tokens"},
        {"\"max_tokens\":2.5", "invalid_type", "max_tokens"},
        {"\"max_tokens\":1e3", "invalid_type", "max_tokens"},
        {"\"n\":3", "unsupported_value", "n"},
        {"\"stream\":1", "invalid_type", "stream"},
        {"\"stream_options\":{}", "invalid_value", "stream_options"},
        {"\"stream\":true,\"stream_options\":{\"include_usage\":1}",
         "invalid_type", "stream_options.include_usage"},
        {"\"stop\":[1]", "invalid_type", "stop[0]"},
        {"\"tool_choice\":\"sometimes\"", "invalid_value", "tool_choice"},
        {"\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":"
         "\"nope\"}}",
         "invalid_value", "tool_choice.function"},
        {"\"tools\":[{\"type\":\"retrieval\"}]", "invalid_value", "tools[0]"},
        {"\"frequency_penalty\":3", "invalid_value", "frequency_penalty"},
        {"\"top_logprobs\":21", "invalid_value", "top_logprobs"},
        {"\"modelx\":\"a\"", "unknown_parameter", "modelx"},
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        snprintf(body, sizeof(body), "{%s,%s}", m, cases[i].field);
        setup();
        expect_error(body, cases[i].code, cases[i].param);
        teardown();
    }
}

/* Parameter paths are written without printf for text, %s, %d and %zu; the
 * result, and its cut at the buffer's end, must be what snprintf makes. */
Test(openai_parse, param_paths_are_what_snprintf_writes)
{
    char longer[200], want[sizeof(p.param)];
    size_t base;

    tg_parse_param(&p, "a%db%zuc%s", -5, (size_t)12, "x");
    cr_expect_str_eq(p.param, "a-5b12cx");
    base = tg_parse_push(&p, "[%d].%s", 3, "content");
    cr_expect_eq(base, 8);
    cr_expect_str_eq(p.param, "a-5b12cx[3].content");
    tg_parse_pop(&p, base);
    cr_expect_str_eq(p.param, "a-5b12cx");
    tg_parse_param(&p, "%.3s!", "abcdef"); /* not written by hand */
    cr_expect_str_eq(p.param, "abc!");
    memset(longer, 'k', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    tg_parse_param(&p, "messages[%zu].%s", (size_t)7, longer);
    memcpy(want, "messages[7].", 12); /* then what fits of longer */
    memcpy(want + 12, longer, sizeof(want) - 13);
    want[sizeof(want) - 1] = '\0';
    cr_expect_str_eq(p.param, want);
    tg_parse_push(&p, "[%d]", 1); /* no room left: unchanged */
    cr_expect_str_eq(p.param, want);
}
