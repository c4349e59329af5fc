/*
 * test_json.c - unit tests of the JSON module (worker/json.c, json_write.c).
 *
 * Every test parses from text written inline and asserts exact values: the
 * token counts and types, the offset and message of each rejection, the
 * decoded bytes of each string and the exact text the writer produces.
 * Each test gets a fresh arena, freed after it.
 */
#include <criterion/criterion.h>

/* jsmn itself, private to this file: the reference tg_json_parse's tokens
 * are compared with. */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_json.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text and length of a literal, so that NUL and high bytes pass intact. */
#define TEXT(s) s, sizeof(s) - 1

static struct tg_arena arena;

static void setup(void)
{
    tg_arena_init(&arena, 256);
}

static void teardown(void)
{
    tg_arena_free(&arena);
}

TestSuite(json, .init = setup, .fini = teardown);

static struct tg_json parse_n(const char *text, size_t len)
{
    struct tg_json j;
    struct tg_json_error err = {0, NULL};
    int rc = tg_json_parse(&j, text, len, &arena, &err);

    cr_assert_eq(rc, TG_OK, "rejected %.*s: %s at %zu", (int)len, text,
                 err.message, err.offset);
    return j;
}

static struct tg_json parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static struct tg_json_error parse_fail(const char *text, size_t len)
{
    struct tg_json j;
    struct tg_json_error err = {0, NULL};

    cr_assert_eq(tg_json_parse(&j, text, len, &arena, &err), TG_ERROR,
                 "accepted %.*s", (int)len, text);
    cr_assert_not_null(err.message);
    cr_assert_eq(j.n_tok, 0);
    return err;
}

/* Decodes string token i; asserts success. */
static char *decoded(const struct tg_json *j, int i, size_t *len)
{
    char *s = NULL;

    cr_assert_eq(tg_json_str(j, i, &arena, &s, len), TG_OK);
    return s;
}

/* What tg_json_write_str makes of s[0..n), NUL-terminated in the arena. */
static char *written(const char *s, size_t n)
{
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    char *copy;

    cr_assert_not_null(buf);
    cr_assert_eq(tg_json_write_str(buf, s, n), TG_OK);
    len = evbuffer_get_length(buf);
    copy = tg_arena_alloc(&arena, len + 1);
    evbuffer_remove(buf, copy, len);
    copy[len] = '\0';
    evbuffer_free(buf);
    return copy;
}

static int64_t int64_of(const char *text, int *rc)
{
    struct tg_json j = parse(text);
    int64_t v = 12345;

    *rc = tg_json_int64(&j, 0, &v);
    return v;
}

/* ---- valid documents ---------------------------------------------------- */

struct valid_case {
    const char *text;
    int n_tok;
    enum tg_json_type root;
};

Test(json, parse_accepts_every_kind_of_value)
{
    static const struct valid_case cases[] = {
        {"{}", 1, TG_JSON_OBJECT},
        {"[]", 1, TG_JSON_ARRAY},
        {"\"\"", 1, TG_JSON_STRING},
        {"\"hello\"", 1, TG_JSON_STRING},
        {"0", 1, TG_JSON_NUMBER},
        {"-0", 1, TG_JSON_NUMBER},
        {"42", 1, TG_JSON_NUMBER},
        {"-12.5e+10", 1, TG_JSON_NUMBER},
        {"1E-2", 1, TG_JSON_NUMBER},
        {"0.0", 1, TG_JSON_NUMBER},
        {"true", 1, TG_JSON_TRUE},
        {"false", 1, TG_JSON_FALSE},
        {"null", 1, TG_JSON_NULL},
        {" \t\r\n 7 \t\r\n", 1, TG_JSON_NUMBER},
        {" [ 1 , 2 ] ", 3, TG_JSON_ARRAY},
        {"[1,\"a\",true,false,null,{},[]]", 8, TG_JSON_ARRAY},
        {"{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", 9, TG_JSON_OBJECT},
        {"[[[[]]]]", 4, TG_JSON_ARRAY},
        {"{\"a\":{\"b\":{\"c\":{}}}}", 7, TG_JSON_OBJECT},
        {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]", 2, TG_JSON_ARRAY},
        {"\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"", 1, TG_JSON_STRING},
        {"\"\\ud800\"", 1, TG_JSON_STRING},
    };
    size_t k;

    for (k = 0; k < TG_ARRAY_LEN(cases); k++) {
        struct tg_json j = parse(cases[k].text);

        cr_expect_eq(j.n_tok, cases[k].n_tok, "%s: %d tokens", cases[k].text,
                     j.n_tok);
        cr_expect_eq(tg_json_type(&j, 0), cases[k].root, "%s", cases[k].text);
        cr_expect_eq(tg_json_skip(&j, 0), j.n_tok, "%s", cases[k].text);
    }
}

Test(json, parse_rfc8259_image_example)
{
    static const char text[] =
        "{\n"
        "  \"Image\": {\n"
        "      \"Width\":  800,\n"
        "      \"Height\": 600,\n"
        "      \"Title\":  \"View from 15th Floor\",\n"
        "      \"Thumbnail\": {\n"
        "          \"Url\":    \"http://www.example.com/image/481989943\",\n"
        "          \"Height\": 125,\n"
        "          \"Width\":  100\n"
        "      },\n"
        "      \"Animated\" : false,\n"
        "      \"IDs\": [116, 943, 234, 38793]\n"
        "    }\n"
        "}\n";
    static const int64_t ids[] = {116, 943, 234, 38793};
    struct tg_json j = parse(text);
    int image, thumb, arr, cursor = 0, elem, k = 0;
    int64_t v;
    bool b = true;

    cr_assert_eq(j.n_tok, 25);
    image = tg_json_get(&j, 0, "Image");
    cr_assert_eq(tg_json_type(&j, image), TG_JSON_OBJECT);
    cr_assert_eq(tg_json_size(&j, image), 6);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, image, "Width"), &v), TG_OK);
    cr_assert_eq(v, 800);
    cr_assert(tg_json_str_eq(&j, tg_json_get(&j, image, "Title"),
                             "View from 15th Floor"));
    thumb = tg_json_get(&j, image, "Thumbnail");
    cr_assert(tg_json_str_eq(&j, tg_json_get(&j, thumb, "Url"),
                             "http://www.example.com/image/481989943"));
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, thumb, "Height"), &v),
                 TG_OK);
    cr_assert_eq(v, 125);
    cr_assert_eq(tg_json_bool(&j, tg_json_get(&j, image, "Animated"), &b),
                 TG_OK);
    cr_assert_eq(b, false);
    arr = tg_json_get(&j, image, "IDs");
    while (tg_json_element(&j, arr, &cursor, &elem)) {
        cr_assert_eq(tg_json_int64(&j, elem, &v), TG_OK);
        cr_assert_eq(v, ids[k++]);
    }
    cr_assert_eq(k, 4);
}

Test(json, parse_rfc8259_array_example)
{
    static const char text[] = "[\n"
                               "  {\n"
                               "     \"precision\": \"zip\",\n"
                               "     \"Latitude\":  37.7668,\n"
                               "     \"Longitude\": -122.3959,\n"
                               "     \"Address\":   \"\",\n"
                               "     \"City\":      \"SAN FRANCISCO\",\n"
                               "     \"State\":     \"CA\",\n"
                               "     \"Zip\":       \"94107\",\n"
                               "     \"Country\":   \"US\"\n"
                               "  },\n"
                               "  {\n"
                               "     \"precision\": \"zip\",\n"
                               "     \"Latitude\":  37.371991,\n"
                               "     \"Longitude\": -122.026020,\n"
                               "     \"Address\":   \"\",\n"
                               "     \"City\":      \"SUNNYVALE\",\n"
                               "     \"State\":     \"CA\",\n"
                               "     \"Zip\":       \"94085\",\n"
                               "     \"Country\":   \"US\"\n"
                               "  }\n"
                               "]\n";
    struct tg_json j = parse(text);
    int cursor = 0, first, second;
    double d;

    cr_assert_eq(j.n_tok, 35);
    cr_assert_eq(tg_json_size(&j, 0), 2);
    cr_assert(tg_json_element(&j, 0, &cursor, &first));
    cr_assert(tg_json_element(&j, 0, &cursor, &second));
    cr_assert_not(tg_json_element(&j, 0, &cursor, &second));
    cr_assert_eq(first, 1);
    cr_assert_eq(second, 18);
    cr_assert_eq(tg_json_double(&j, tg_json_get(&j, first, "Latitude"), &d),
                 TG_OK);
    cr_assert_eq(d, 37.7668);
    cr_assert_eq(tg_json_double(&j, tg_json_get(&j, second, "Longitude"), &d),
                 TG_OK);
    cr_assert_eq(d, -122.026020);
    cr_assert(tg_json_str_eq(&j, tg_json_get(&j, second, "City"), "SUNNYVALE"));
    cr_assert(tg_json_str_eq(&j, tg_json_get(&j, first, "Address"), ""));
}

Test(json, parse_rfc8259_scalar_examples)
{
    struct tg_json j = parse("\"Hello world!\"");
    int64_t v;
    bool b;

    cr_assert(tg_json_str_eq(&j, 0, "Hello world!"));
    j = parse("42");
    cr_assert_eq(tg_json_int64(&j, 0, &v), TG_OK);
    cr_assert_eq(v, 42);
    j = parse("true");
    cr_assert_eq(tg_json_bool(&j, 0, &b), TG_OK);
    cr_assert_eq(b, true);
}

Test(json, parse_root_primitive_token_spans_only_the_value)
{
    struct tg_json j = parse("  -1.5e3\n");
    size_t len;
    const char *raw = tg_json_raw(&j, 0, &len);

    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(raw, "-1.5e3", 6), 0);
}

Test(json, parse_does_not_read_past_len)
{
    /* The bytes after len would make other documents. */
    struct tg_json j = parse_n("[1]]", 3);
    struct tg_json_error err;

    cr_assert_eq(j.n_tok, 2);
    j = parse_n("12345", 2);
    cr_assert_eq(j.tok[0].end, 2);
    err = parse_fail("\"abc\"", 4);
    cr_assert_str_eq(err.message, "unterminated string");
    cr_assert_eq(err.offset, 4);
}

/* ---- invalid documents -------------------------------------------------- */

struct invalid_case {
    const char *text;
    size_t len;
    size_t offset;
    const char *message;
};

Test(json, parse_rejects_each_malformation_at_its_offset)
{
    static const struct invalid_case cases[] = {
        {TEXT("{\"a\":1,}"), 7, "trailing comma in object"},
        {TEXT("[1,2,]"), 5, "trailing comma in array"},
        {TEXT("[1,2, ]"), 6, "trailing comma in array"},
        {TEXT("01"), 0, "leading zero in number"},
        {TEXT("[-012]"), 2, "leading zero in number"},
        {TEXT("+1"), 0, "expected a value"},
        {TEXT(".5"), 0, "expected a value"},
        {TEXT("5."), 2, "expected a digit after '.'"},
        {TEXT("[1.e5]"), 3, "expected a digit after '.'"},
        {TEXT("1e"), 2, "expected a digit in exponent"},
        {TEXT("1e+"), 3, "expected a digit in exponent"},
        {TEXT("-"), 1, "expected a digit after '-'"},
        {TEXT("-a"), 1, "expected a digit after '-'"},
        {TEXT("0x10"), 1, "unexpected data after the root value"},
        {TEXT("{a:1}"), 1, "expected a string key"},
        {TEXT("{'a':1}"), 1, "expected a string key"},
        {TEXT("['a']"), 1, "expected a value"},
        {TEXT("{1:2}"), 1, "expected a string key"},
        {TEXT("{\"a\" 1}"), 5, "expected ':' after key"},
        {TEXT("{\"a\"}"), 4, "expected ':' after key"},
        {TEXT("{\"a\":}"), 5, "expected a value"},
        {TEXT("{\"a\":1 \"b\":2}"), 7, "expected ',' or '}' in object"},
        {TEXT("{\"a\":1]"), 6, "expected ',' or '}' in object"},
        {TEXT("[1 2]"), 3, "expected ',' or ']' in array"},
        {TEXT("[1}"), 2, "expected ',' or ']' in array"},
        {TEXT("[1,,2]"), 3, "expected a value"},
        {TEXT("{,}"), 1, "expected a string key"},
        {TEXT("\"a\tb\""), 2, "control character in string"},
        {TEXT("\"a\x01\""), 2, "control character in string"},
        {TEXT("\"a\0b\""), 2, "control character in string"},
        {TEXT("\"\\x\""), 1, "invalid escape in string"},
        {TEXT("\"\\U0041\""), 1, "invalid escape in string"},
        {TEXT("\"\\u12\""), 1, "invalid \\u escape in string"},
        {TEXT("\"\\u12"), 1, "invalid \\u escape in string"},
        {TEXT("\"\\u12G4\""), 1, "invalid \\u escape in string"},
        {TEXT("\"\\"), 2, "unterminated string"},
        {TEXT("\"ab\xC0\x80\""), 3, "invalid UTF-8 in string"},
        {TEXT("\"\xED\xA0\x80\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"\xF5\x80\x80\x80\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"\xF4\x90\x80\x80\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"\xE2\x82\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"\xE2\x82"), 1, "invalid UTF-8 in string"},
        {TEXT("\"\x80\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"\xFF\""), 1, "invalid UTF-8 in string"},
        {TEXT("\"abc"), 4, "unterminated string"},
        {TEXT("[1] x"), 4, "unexpected data after the root value"},
        {TEXT("{} {}"), 3, "unexpected data after the root value"},
        {TEXT("1 2"), 2, "unexpected data after the root value"},
        {TEXT("truex"), 4, "unexpected data after the root value"},
        {TEXT("\"a\"\0"), 3, "unexpected data after the root value"},
        {TEXT(""), 0, "empty document"},
        {TEXT(" \t\r\n"), 4, "empty document"},
        {TEXT("]"), 0, "expected a value"},
        {TEXT("}"), 0, "expected a value"},
        {TEXT("[}"), 1, "expected a value"},
        {TEXT("["), 1, "unexpected end of input"},
        {TEXT("[1,"), 3, "unexpected end of input"},
        {TEXT("{\"a\":1"), 6, "unexpected end of input"},
        {TEXT("{\"a\""), 4, "unexpected end of input"},
        {TEXT("{\"a\":"), 5, "unexpected end of input"},
        {TEXT("tru"), 0, "invalid literal"},
        {TEXT("nul"), 0, "invalid literal"},
        {TEXT("fals3"), 0, "invalid literal"},
        {TEXT("True"), 0, "expected a value"},
        {TEXT("NaN"), 0, "expected a value"},
        {TEXT("Infinity"), 0, "expected a value"},
        {TEXT("\v1"), 0, "expected a value"},
        {TEXT("\0"), 0, "expected a value"},
        {TEXT("\xEF\xBB\xBF{}"), 0, "expected a value"},
    };
    size_t k;

    for (k = 0; k < TG_ARRAY_LEN(cases); k++) {
        struct tg_json_error err = parse_fail(cases[k].text, cases[k].len);

        cr_expect_str_eq(err.message, cases[k].message, "case %zu: %s", k,
                         cases[k].text);
        cr_expect_eq(err.offset, cases[k].offset, "case %zu: %s at %zu", k,
                     cases[k].text, err.offset);
    }
}

Test(json, jsmn_alone_accepts_missing_comma_but_parse_rejects_it)
{
    static const char text[] = "{\"a\":1 \"b\":2}";
    jsmntok_t tok[16];
    jsmn_parser p;
    struct tg_json_error err;

    jsmn_init(&p);
    cr_assert_geq(jsmn_parse(&p, text, strlen(text), tok, 16), 0);
    err = parse_fail(text, strlen(text));
    cr_assert_str_eq(err.message, "expected ',' or '}' in object");
}

/* Asserts that tg_json_parse and jsmn make the same tokens of text, field
 * by field. jsmn (strict) cannot take a bare primitive at the root, so
 * texts here are objects or arrays or strings. */
static void expect_tokens_as_jsmn(const char *text, size_t len)
{
    struct tg_json j;
    struct tg_json_error err;
    jsmn_parser p;
    jsmntok_t *want;
    int n, i;

    cr_assert_eq(tg_json_parse(&j, text, len, &arena, &err), TG_OK, "%.60s: %s",
                 text, err.message);
    jsmn_init(&p);
    n = jsmn_parse(&p, text, len, NULL, 0);
    cr_assert_eq(n, j.n_tok, "%.60s: jsmn %d tokens, ours %d", text, n,
                 j.n_tok);
    want = tg_arena_alloc(&arena, (size_t)n * sizeof(*want));
    jsmn_init(&p);
    cr_assert_eq(jsmn_parse(&p, text, len, want, (unsigned)n), n);
    for (i = 0; i < n; i++) {
        cr_expect_eq(j.tok[i].type, want[i].type, "%.60s: type of %d", text, i);
        cr_expect_eq(j.tok[i].start, want[i].start, "%.60s: start %d", text, i);
        cr_expect_eq(j.tok[i].end, want[i].end, "%.60s: end of %d", text, i);
        cr_expect_eq(j.tok[i].size, want[i].size, "%.60s: size of %d", text, i);
        cr_expect_eq(j.tok[i].parent, want[i].parent, "%.60s: parent of %d",
                     text, i);
    }
}

Test(json, tokens_are_jsmns)
{
    static const char *const texts[] = {
        "{}",
        "[]",
        "\"\"",
        "\"a\\\"b\\u00e9\"",
        " { \"a\" : 1 , \"b\" : [ true , false , null ] } ",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
        ","
        "\"max_tokens\":16,\"stream\":false,\"temperature\":0.5e-3}",
        "[[[]],[{}],{\"a\":{\"b\":{\"c\":[1,-2,3.5,4E+2]}}},\"x\"]",
        "{\"a\":{},\"b\":[],\"c\":\"\",\"d\":{\"e\":[{}]},\"f\":0}",
        "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"\\ud83d\\ude00\"]",
        "{\"k\":\"v\",\"k\":\"w\"}",
        "\r\n\t[1]\r\n\t",
    };
    size_t k;

    for (k = 0; k < TG_ARRAY_LEN(texts); k++)
        expect_tokens_as_jsmn(texts[k], strlen(texts[k]));
}

/* More tokens than the parser first reserves: the token array grows, in
 * the middle of nested containers whose indices must survive the move. */
Test(json, tokens_are_jsmns_past_the_first_reservation)
{
    size_t n = 3000, k, at = 0;
    char *text = tg_arena_alloc(&arena, n * 24 + 16);

    at += (size_t)sprintf(text + at, "{\"list\":[");
    for (k = 0; k < n; k++)
        at += (size_t)sprintf(text + at, "%s{\"i\":%zu,\"v\":[1]}",
                              k > 0 ? "," : "", k);
    at += (size_t)sprintf(text + at, "],\"end\":true}");
    expect_tokens_as_jsmn(text, at);
}
/* n levels of nested arrays, or of objects each under the key "k". */
static char *nested(size_t n, bool objects)
{
    const char *open = objects ? "{\"k\":" : "[";
    const char *leaf = objects ? "{}" : "[]";
    char close = objects ? '}' : ']';
    size_t w = strlen(open), k;
    char *s = tg_arena_alloc(&arena, (n - 1) * (w + 1) + 3), *p = s;

    for (k = 1; k < n; k++, p += w)
        memcpy(p, open, w);
    memcpy(p, leaf, 2);
    p += 2;
    for (k = 1; k < n; k++)
        *p++ = close;
    *p = '\0';
    return s;
}

Test(json, parse_accepts_depth_64)
{
    struct tg_json j = parse(nested(TG_JSON_MAX_DEPTH, false));

    cr_assert_eq(j.n_tok, TG_JSON_MAX_DEPTH);
    j = parse(nested(TG_JSON_MAX_DEPTH, true));
    cr_assert_eq(j.n_tok, 1 + 2 * (TG_JSON_MAX_DEPTH - 1));
}

Test(json, parse_rejects_depth_65)
{
    char *s = nested(TG_JSON_MAX_DEPTH + 1, false);
    struct tg_json_error err = parse_fail(s, strlen(s));

    cr_assert_str_eq(err.message, "nesting too deep");
    cr_assert_eq(err.offset, TG_JSON_MAX_DEPTH);
    s = nested(TG_JSON_MAX_DEPTH + 1, true);
    err = parse_fail(s, strlen(s));
    cr_assert_str_eq(err.message, "nesting too deep");
    cr_assert_eq(err.offset, 5 * TG_JSON_MAX_DEPTH);
}

Test(json, parse_rejects_deep_nesting_without_recursing)
{
    size_t n = 1000000;
    char *s = tg_arena_alloc(&arena, n);
    struct tg_json_error err;

    memset(s, '[', n);
    err = parse_fail(s, n);
    cr_assert_str_eq(err.message, "nesting too deep");
    cr_assert_eq(err.offset, TG_JSON_MAX_DEPTH);
}

Test(json, failed_parse_leaves_no_tokens_to_read)
{
    struct tg_json j;
    struct tg_json_error err;
    int64_t v;

    cr_assert_eq(tg_json_parse(&j, TEXT("[1,]"), &arena, &err), TG_ERROR);
    cr_assert_eq(tg_json_type(&j, 0), TG_JSON_INVALID);
    cr_assert_eq(tg_json_int64(&j, 1, &v), TG_ERROR);
    cr_assert_eq(tg_json_size(&j, 0), -1);
    cr_assert_eq(tg_json_skip(&j, 0), -1);
}

/* ---- navigation --------------------------------------------------------- */

Test(json, get_finds_member_values)
{
    struct tg_json j = parse("{\"model\":\"gpt-4o\",\"n\":2,\"stream\":true}");
    int64_t n;

    cr_assert_eq(tg_json_get(&j, 0, "model"), 2);
    cr_assert(tg_json_str_eq(&j, 2, "gpt-4o"));
    cr_assert_eq(tg_json_get(&j, 0, "n"), 4);
    cr_assert_eq(tg_json_int64(&j, 4, &n), TG_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(tg_json_get(&j, 0, "stream"), 6);
}

Test(json, get_missing_key_is_minus_one)
{
    struct tg_json j = parse("{\"ab\":1,\"a\\u0000\":2}");

    cr_assert_eq(tg_json_get(&j, 0, "x"), -1);
    cr_assert_eq(tg_json_get(&j, 0, "a"), -1);
    cr_assert_eq(tg_json_get(&j, 0, "abc"), -1);
    cr_assert_eq(tg_json_get(&j, 0, ""), -1);
    j = parse("{}");
    cr_assert_eq(tg_json_get(&j, 0, "a"), -1);
}

Test(json, get_on_non_object_is_minus_one)
{
    struct tg_json j = parse("[\"a\",1,{\"a\":1}]");

    cr_assert_eq(tg_json_get(&j, 0, "a"), -1);
    cr_assert_eq(tg_json_get(&j, 1, "a"), -1);
    cr_assert_eq(tg_json_get(&j, 2, "a"), -1);
    cr_assert_eq(tg_json_get(&j, -1, "a"), -1);
    cr_assert_eq(tg_json_get(&j, j.n_tok, "a"), -1);
    cr_assert_eq(tg_json_get(&j, 3, "a"), 5);
    cr_assert_eq(tg_json_get(&j, 3, NULL), -1);
}

Test(json, get_duplicate_key_last_wins)
{
    struct tg_json j = parse("{\"a\":1,\"b\":{\"a\":9},\"a\":[2],\"a\":3}");
    int64_t v;

    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "a"), &v), TG_OK);
    cr_assert_eq(v, 3);
}

Test(json, get_decodes_a_key_whose_first_byte_is_escaped)
{
    struct tg_json j = parse("{\"\\u006dax\":6,\"\":7,\"\\\\\":8}");
    int64_t v;

    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "max"), &v), TG_OK);
    cr_assert_eq(v, 6);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, ""), &v), TG_OK);
    cr_assert_eq(v, 7);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "\\"), &v), TG_OK);
    cr_assert_eq(v, 8);
    cr_assert_eq(tg_json_get(&j, 0, "nax"), -1);
}

Test(json, get_compares_keys_after_decoding_escapes)
{
    struct tg_json j = parse("{\"mo\\u0064el\":1,\"a\\\"b\":2,"
                             "\"caf\\u00e9\":3,\"t\\tb\":4,"
                             "\"\\ud83d\\ude00\":5}");
    int64_t v;

    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "model"), &v), TG_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "a\"b"), &v), TG_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "caf\xC3\xA9"), &v),
                 TG_OK);
    cr_assert_eq(v, 3);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "t\tb"), &v), TG_OK);
    cr_assert_eq(v, 4);
    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "\xF0\x9F\x98\x80"), &v),
                 TG_OK);
    cr_assert_eq(v, 5);
    cr_assert_eq(tg_json_get(&j, 0, "mod"), -1);
    cr_assert_eq(tg_json_get(&j, 0, "modelx"), -1);
}

Test(json, get_skips_over_nested_values)
{
    struct tg_json j = parse("{\"x\":{\"model\":1,\"y\":[{\"model\":2}]},"
                             "\"model\":3}");
    int64_t v;

    cr_assert_eq(tg_json_int64(&j, tg_json_get(&j, 0, "model"), &v), TG_OK);
    cr_assert_eq(v, 3);
}

Test(json, member_walks_nested_object_in_order)
{
    static const char *const keys[] = {"a", "d", "e"};
    static const enum tg_json_type types[] = {TG_JSON_OBJECT, TG_JSON_ARRAY,
                                              TG_JSON_NUMBER};
    struct tg_json j = parse("{\"a\":{\"b\":[1,2,{\"c\":3}]},"
                             "\"d\":[[]],\"e\":4}");
    int cursor = 0, key, val, n = 0;

    while (tg_json_member(&j, 0, &cursor, &key, &val)) {
        cr_assert(tg_json_str_eq(&j, key, keys[n]), "member %d", n);
        cr_assert_eq(val, key + 1);
        cr_assert_eq(tg_json_type(&j, val), types[n]);
        n++;
    }
    cr_assert_eq(n, 3);
    cr_assert_not(tg_json_member(&j, 0, &cursor, &key, &val));
}

Test(json, element_walks_nested_array_skipping_subtrees)
{
    static const enum tg_json_type types[] = {TG_JSON_NUMBER, TG_JSON_OBJECT,
                                              TG_JSON_ARRAY, TG_JSON_STRING};
    static const int indices[] = {1, 2, 7, 10};
    struct tg_json j = parse("[1,{\"c\":[3,4]},[[],5],\"s\"]");
    int cursor = 0, elem, n = 0;

    while (tg_json_element(&j, 0, &cursor, &elem)) {
        cr_assert_eq(elem, indices[n], "element %d at %d", n, elem);
        cr_assert_eq(tg_json_type(&j, elem), types[n]);
        n++;
    }
    cr_assert_eq(n, 4);
    cursor = 0;
    n = 0;
    while (tg_json_element(&j, 7, &cursor, &elem))
        n++;
    cr_assert_eq(n, 2);
}

Test(json, iteration_of_wrong_type_or_empty_is_false)
{
    struct tg_json j = parse("{\"o\":{},\"a\":[],\"s\":\"x\"}");
    int cursor = 0, a, b;

    cr_assert_not(tg_json_member(&j, 2, &cursor, &a, &b));
    cr_assert_not(tg_json_element(&j, 4, &cursor, &a));
    cr_assert_not(tg_json_element(&j, 0, &cursor, &a));
    cr_assert_not(tg_json_member(&j, 4, &cursor, &a, &b));
    cr_assert_not(tg_json_member(&j, 6, &cursor, &a, &b));
    cr_assert_not(tg_json_member(&j, -1, &cursor, &a, &b));
    cr_assert_not(tg_json_element(&j, 99, &cursor, &a));
}

Test(json, member_with_foreign_cursor_stops)
{
    struct tg_json j = parse("{\"a\":{\"b\":1},\"c\":2}");
    int cursor = 3, key, val;

    /* Token 3 is a key of the inner object, not of the root. */
    cr_assert_not(tg_json_member(&j, 0, &cursor, &key, &val));
    cursor = 1000;
    cr_assert_not(tg_json_member(&j, 0, &cursor, &key, &val));
    cursor = -5;
    cr_assert_not(tg_json_member(&j, 0, &cursor, &key, &val));
}

Test(json, size_counts_members_and_elements)
{
    struct tg_json j = parse("{\"a\":[1,[2,3],{}],\"b\":{\"c\":1,\"d\":2},"
                             "\"e\":\"s\"}");

    cr_assert_eq(tg_json_size(&j, 0), 3);
    cr_assert_eq(tg_json_size(&j, tg_json_get(&j, 0, "a")), 3);
    cr_assert_eq(tg_json_size(&j, tg_json_get(&j, 0, "b")), 2);
    cr_assert_eq(tg_json_size(&j, 4), 2);
    cr_assert_eq(tg_json_size(&j, 7), 0);
    cr_assert_eq(tg_json_size(&j, tg_json_get(&j, 0, "e")), -1);
    cr_assert_eq(tg_json_size(&j, -1), -1);
    cr_assert_eq(tg_json_size(&j, j.n_tok), -1);
}

Test(json, skip_jumps_past_whole_subtree)
{
    struct tg_json j = parse("[{\"a\":[1,2]},3]");

    cr_assert_eq(j.n_tok, 7);
    cr_assert_eq(tg_json_skip(&j, 0), 7);
    cr_assert_eq(tg_json_skip(&j, 1), 6);
    cr_assert_eq(tg_json_skip(&j, 3), 6);
    cr_assert_eq(tg_json_skip(&j, 4), 5);
    cr_assert_eq(tg_json_skip(&j, 6), 7);
    cr_assert_eq(tg_json_skip(&j, 7), -1);
    cr_assert_eq(tg_json_skip(&j, -1), -1);
}

Test(json, type_and_type_name)
{
    struct tg_json j = parse("[{},[],\"s\",1,true,false,null]");
    static const char *const names[] = {"array",   "object", "array",
                                        "string",  "number", "boolean",
                                        "boolean", "null"};
    int i;

    for (i = 0; i < j.n_tok; i++)
        cr_assert_str_eq(tg_json_type_name(tg_json_type(&j, i)), names[i]);
    cr_assert_eq(tg_json_type(&j, 5), TG_JSON_TRUE);
    cr_assert_eq(tg_json_type(&j, 6), TG_JSON_FALSE);
    cr_assert_eq(tg_json_type(&j, j.n_tok), TG_JSON_INVALID);
    cr_assert_eq(tg_json_type(&j, -1), TG_JSON_INVALID);
    cr_assert_eq(tg_json_type(NULL, 0), TG_JSON_INVALID);
    cr_assert_str_eq(tg_json_type_name(TG_JSON_INVALID), "invalid");
}

Test(json, raw_gives_undecoded_bytes)
{
    struct tg_json j = parse("{\"k\":\"a\\nb\",\"n\":-1.5}");
    const char *raw;
    size_t len;

    raw = tg_json_raw(&j, 2, &len);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(raw, "a\\nb", 4), 0);
    raw = tg_json_raw(&j, 4, &len);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(raw, "-1.5", 4), 0);
    raw = tg_json_raw(&j, 0, &len);
    cr_assert_eq(len, strlen(j.src));
    cr_assert_null(tg_json_raw(&j, 5, &len));
    cr_assert_eq(len, 0);
}

/* ---- numbers and booleans ----------------------------------------------- */

Test(json, int64_reads_bounds_exactly)
{
    int rc;

    cr_assert_eq(int64_of("0", &rc), 0);
    cr_assert_eq(rc, TG_OK);
    cr_assert_eq(int64_of("-0", &rc), 0);
    cr_assert_eq(rc, TG_OK);
    cr_assert_eq(int64_of("-17", &rc), -17);
    cr_assert_eq(rc, TG_OK);
    cr_assert_eq(int64_of("9223372036854775807", &rc), INT64_MAX);
    cr_assert_eq(rc, TG_OK);
    cr_assert_eq(int64_of("-9223372036854775808", &rc), INT64_MIN);
    cr_assert_eq(rc, TG_OK);
    cr_assert_eq(int64_of("-9223372036854775807", &rc), -INT64_MAX);
    cr_assert_eq(rc, TG_OK);
}

Test(json, int64_rejects_overflow_fraction_and_exponent)
{
    static const char *const bad[] = {"9223372036854775808",
                                      "-9223372036854775809",
                                      "9223372036854775810",
                                      "18446744073709551616",
                                      "99999999999999999999",
                                      "100000000000000000000000",
                                      "1.0",
                                      "1e2",
                                      "1E2",
                                      "-0.0",
                                      "0e0"};
    size_t k;
    int rc;

    for (k = 0; k < TG_ARRAY_LEN(bad); k++) {
        cr_assert_eq(int64_of(bad[k], &rc), 12345, "%s", bad[k]);
        cr_assert_eq(rc, TG_ERROR, "%s", bad[k]);
    }
}

Test(json, int64_rejects_other_types)
{
    struct tg_json j = parse("[\"1\",true,null,{}]");
    int64_t v;
    int i;

    for (i = 0; i <= j.n_tok; i++)
        cr_assert_eq(tg_json_int64(&j, i, &v), TG_ERROR);
}

Test(json, double_reads_finite_numbers)
{
    struct tg_json j = parse("[1e308,1.5,-0.25e2,42,1e-999,-0,"
                             "2.2250738585072014e-308]");
    static const double want[] = {
        1e308, 1.5, -25.0, 42.0, 0.0, -0.0, 2.2250738585072014e-308};
    double d;
    int i;

    for (i = 1; i < j.n_tok; i++) {
        cr_assert_eq(tg_json_double(&j, i, &d), TG_OK);
        cr_assert_eq(d, want[i - 1], "element %d", i - 1);
    }
}

Test(json, double_rejects_infinite)
{
    struct tg_json j = parse("[1e999,-1e999,1.8e308]");
    double d = 7.0;
    int i;

    for (i = 1; i < j.n_tok; i++)
        cr_assert_eq(tg_json_double(&j, i, &d), TG_ERROR);
    cr_assert_eq(d, 7.0);
}

Test(json, double_reads_number_longer_than_stack_buffer)
{
    char text[300];
    struct tg_json j;
    double d;

    /* 0.000...15e251 (250 zeros after the point) is 1.5 */
    memcpy(text, "0.", 2);
    memset(text + 2, '0', 250);
    memcpy(text + 252, "15e251", 7);
    j = parse(text);
    cr_assert_eq(tg_json_double(&j, 0, &d), TG_OK);
    cr_assert_eq(d, 1.5);
}

Test(json, double_rejects_other_types)
{
    struct tg_json j = parse("[\"1\",false]");
    double d;

    cr_assert_eq(tg_json_double(&j, 1, &d), TG_ERROR);
    cr_assert_eq(tg_json_double(&j, 2, &d), TG_ERROR);
    cr_assert_eq(tg_json_double(&j, 3, &d), TG_ERROR);
}

Test(json, bool_reads_true_and_false_only)
{
    struct tg_json j = parse("[true,false,null,0,\"true\"]");
    bool b = false;

    cr_assert_eq(tg_json_bool(&j, 1, &b), TG_OK);
    cr_assert_eq(b, true);
    cr_assert_eq(tg_json_bool(&j, 2, &b), TG_OK);
    cr_assert_eq(b, false);
    cr_assert_eq(tg_json_bool(&j, 3, &b), TG_ERROR);
    cr_assert_eq(tg_json_bool(&j, 4, &b), TG_ERROR);
    cr_assert_eq(tg_json_bool(&j, 5, &b), TG_ERROR);
    cr_assert_eq(tg_json_bool(&j, 6, &b), TG_ERROR);
}

/* ---- string decoding ---------------------------------------------------- */

static void assert_decodes(const char *json, const char *want, size_t want_len)
{
    struct tg_json j = parse(json);
    size_t len;
    char *s = decoded(&j, 0, &len);

    cr_assert_eq(len, want_len, "%s: length %zu", json, len);
    cr_assert_eq(memcmp(s, want, len), 0, "%s", json);
    cr_assert_eq(s[len], '\0');
}

Test(json, str_decodes_every_escape)
{
    assert_decodes("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", TEXT("\"\\/\b\f\n\r\t"));
    assert_decodes("\"a\\u0041\\u00e9\\u00E9\\u20ac\"",
                   TEXT("aA\xC3\xA9\xC3\xA9\xE2\x82\xAC"));
    assert_decodes("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
                   TEXT("\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF"));
}

Test(json, str_passes_raw_utf8_and_plain_text)
{
    assert_decodes("\"plain\"", TEXT("plain"));
    assert_decodes("\"\"", TEXT(""));
    assert_decodes("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"",
                   TEXT("caf\xC3\xA9 \xF0\x9F\x98\x80"));
}

Test(json, str_joins_surrogate_pair)
{
    assert_decodes("\"\\ud83d\\ude00\"", TEXT("\xF0\x9F\x98\x80"));
    assert_decodes("\"\\uD83D\\uDE00!\"", TEXT("\xF0\x9F\x98\x80!"));
    assert_decodes("\"\\udbff\\udfff\"", TEXT("\xF4\x8F\xBF\xBF"));
    assert_decodes("\"\\ud800\\udc00\"", TEXT("\xF0\x90\x80\x80"));
}

Test(json, str_lone_surrogates_become_replacement_char)
{
    assert_decodes("\"\\ud83d\"", TEXT("\xEF\xBF\xBD"));
    assert_decodes("\"\\ud83dx\"", TEXT("\xEF\xBF\xBDx"));
    assert_decodes("\"\\ude00\"", TEXT("\xEF\xBF\xBD"));
    assert_decodes("\"\\ud83d\\ud83d\"", TEXT("\xEF\xBF\xBD\xEF\xBF\xBD"));
    assert_decodes("\"\\ud83d\\u0041\"", TEXT("\xEF\xBF\xBD"
                                              "A"));
    assert_decodes("\"\\ude00\\ud83d\"", TEXT("\xEF\xBF\xBD\xEF\xBF\xBD"));
    assert_decodes("\"\\ud83d\\n\"", TEXT("\xEF\xBF\xBD\n"));
}

Test(json, str_keeps_nul_from_u0000_with_length)
{
    assert_decodes("\"a\\u0000b\"", TEXT("a\0b"));
    assert_decodes("\"\\u0000\"", TEXT("\0"));
}

Test(json, str_rejects_non_strings)
{
    struct tg_json j = parse("[1,null,{}]");
    char *s = NULL;
    size_t len = 99;
    int i;

    for (i = -1; i <= j.n_tok; i++)
        cr_assert_eq(tg_json_str(&j, i, &arena, &s, &len), TG_ERROR);
    cr_assert_null(s);
    cr_assert_eq(len, 99);
}

Test(json, str_eq_compares_decoded_text)
{
    struct tg_json j = parse("[\"a\\nb\",\"x\\u0000y\",1,\"\"]");

    cr_assert(tg_json_str_eq(&j, 1, "a\nb"));
    cr_assert_not(tg_json_str_eq(&j, 1, "a\\nb"));
    cr_assert_not(tg_json_str_eq(&j, 1, "a\n"));
    cr_assert_not(tg_json_str_eq(&j, 2, "x"));
    cr_assert_not(tg_json_str_eq(&j, 3, "1"));
    cr_assert(tg_json_str_eq(&j, 4, ""));
    cr_assert_not(tg_json_str_eq(&j, 4, NULL));
    cr_assert_not(tg_json_str_eq(&j, 9, ""));
}

/* ---- writing ------------------------------------------------------------ */

Test(json, write_str_quotes_plain_ascii)
{
    cr_assert_str_eq(written(TEXT("hello, world / ~")), "\"hello, world / ~\"");
    cr_assert_str_eq(written(TEXT("")), "\"\"");
    cr_assert_str_eq(written(NULL, 0), "\"\""); /* an empty buffer's text */
}

Test(json, write_str_escapes_quote_backslash_and_controls)
{
    cr_assert_str_eq(written(TEXT("\"\\\b\f\n\r\t")),
                     "\"\\\"\\\\\\b\\f\\n\\r\\t\"");
    cr_assert_str_eq(written(TEXT("\x01\x1F\x7F\x0B")),
                     "\"\\u0001\\u001f\\u007f\\u000b\"");
    cr_assert_str_eq(written(TEXT("a\0b")), "\"a\\u0000b\"");
    cr_assert_str_eq(written(TEXT("say \"hi\"\n")), "\"say \\\"hi\\\"\\n\"");
}

Test(json, write_str_passes_valid_utf8_through)
{
    cr_assert_str_eq(written(TEXT("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"
                                  " \xF4\x8F\xBF\xBF")),
                     "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"
                     " \xF4\x8F\xBF\xBF\"");
}

Test(json, write_str_replaces_each_invalid_byte)
{
    cr_assert_str_eq(written(TEXT("\xFF")), "\"\\ufffd\"");
    cr_assert_str_eq(written(TEXT("a\xC0\x80"
                                  "b")),
                     "\"a\\ufffd\\ufffdb\"");
    cr_assert_str_eq(written(TEXT("\xED\xA0\x80")),
                     "\"\\ufffd\\ufffd\\ufffd\"");
    cr_assert_str_eq(written(TEXT("\xE2\x82")), "\"\\ufffd\\ufffd\"");
    cr_assert_str_eq(written(TEXT("\xE2\x82\xAC\xFF\xC3\xA9")),
                     "\"\xE2\x82\xAC\\ufffd\xC3\xA9\"");
    cr_assert_str_eq(written(TEXT("\xF4\x90\x80\x80")),
                     "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    cr_assert_str_eq(written(TEXT("\xE2\x82x")), "\"\\ufffd\\ufffdx\"");
}

Test(json, write_str_appends_to_existing_buffer)
{
    struct evbuffer *buf = evbuffer_new();
    char out[32];
    size_t n;

    evbuffer_add_printf(buf, "{\"k\":");
    cr_assert_eq(tg_json_write_str(buf, TEXT("v\n")), TG_OK);
    evbuffer_add(buf, "}", 1);
    n = evbuffer_remove(buf, out, sizeof(out) - 1);
    out[n] = '\0';
    cr_assert_str_eq(out, "{\"k\":\"v\\n\"}");
    evbuffer_free(buf);
}

static void assert_round_trip(const char *s, size_t n)
{
    char *text = written(s, n);
    struct tg_json j = parse(text);
    size_t len;
    char *back = decoded(&j, 0, &len);

    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(back, s, n), 0);
}

Test(json, write_then_parse_round_trips_valid_utf8)
{
    char all_ascii[128];
    int c;

    for (c = 0; c < 128; c++)
        all_ascii[c] = (char)c;
    assert_round_trip(all_ascii, sizeof(all_ascii));
    assert_round_trip(TEXT(""));
    assert_round_trip(TEXT("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
    assert_round_trip(TEXT("\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF"
                           "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"));
    assert_round_trip(TEXT("\\u0041 is not an escape here \\\""));
}

Test(json, write_str_output_parses_for_every_byte)
{
    char byte;
    int c;

    for (c = 0; c < 256; c++) {
        byte = (char)c;
        parse(written(&byte, 1));
    }
}

/* ---- UTF-8 validation --------------------------------------------------- */

Test(json, is_utf8_accepts_edges_of_valid_ranges)
{
    cr_assert(tg_json_is_utf8(TEXT("")));
    cr_assert(tg_json_is_utf8(TEXT("plain ascii\x7F")));
    cr_assert(tg_json_is_utf8(TEXT("a\0b")));
    cr_assert(tg_json_is_utf8(TEXT("\xC2\x80")));         /* U+0080 */
    cr_assert(tg_json_is_utf8(TEXT("\xDF\xBF")));         /* U+07FF */
    cr_assert(tg_json_is_utf8(TEXT("\xE0\xA0\x80")));     /* U+0800 */
    cr_assert(tg_json_is_utf8(TEXT("\xED\x9F\xBF")));     /* U+D7FF */
    cr_assert(tg_json_is_utf8(TEXT("\xEE\x80\x80")));     /* U+E000 */
    cr_assert(tg_json_is_utf8(TEXT("\xEF\xBF\xBF")));     /* U+FFFF */
    cr_assert(tg_json_is_utf8(TEXT("\xF0\x90\x80\x80"))); /* U+10000 */
    cr_assert(tg_json_is_utf8(TEXT("\xF4\x8F\xBF\xBF"))); /* U+10FFFF */
}

Test(json, is_utf8_rejects_overlongs_surrogates_and_beyond)
{
    cr_assert_not(tg_json_is_utf8(TEXT("\xC0\x80")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xC1\xBF")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xE0\x80\x80")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xE0\x9F\xBF")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xF0\x80\x80\x80")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xF0\x8F\xBF\xBF")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xED\xA0\x80")));     /* U+D800 */
    cr_assert_not(tg_json_is_utf8(TEXT("\xED\xBF\xBF")));     /* U+DFFF */
    cr_assert_not(tg_json_is_utf8(TEXT("\xF4\x90\x80\x80"))); /* U+110000 */
    cr_assert_not(tg_json_is_utf8(TEXT("\xF5\x80\x80\x80")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xFF")));
}

Test(json, is_utf8_rejects_truncated_and_stray_bytes)
{
    cr_assert_not(tg_json_is_utf8(TEXT("\x80")));
    cr_assert_not(tg_json_is_utf8(TEXT("a\xBF")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xC3")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xE2\x82")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xF0\x9F\x98")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xE2\x82"
                                       "a")));
    cr_assert_not(tg_json_is_utf8(TEXT("\xC3\xA9\xA9")));
    /* A valid sequence cut short by n: nothing past n is read. */
    cr_assert_not(tg_json_is_utf8("\xC3\xA9", 1));
}

/* What tg_json_write_int or tg_json_write_fixed (digits >= 0) wrote. */
static char *written_number(int64_t v, int64_t unit, int digits)
{
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    char *copy;

    cr_assert_not_null(buf);
    if (digits < 0)
        tg_json_write_int(buf, v);
    else
        tg_json_write_fixed(buf, v, unit, digits);
    len = evbuffer_get_length(buf);
    copy = tg_arena_alloc(&arena, len + 1);
    evbuffer_remove(buf, copy, len);
    copy[len] = '\0';
    evbuffer_free(buf);
    return copy;
}

Test(json, write_int_writes_every_int64)
{
    cr_expect_str_eq(written_number(0, 0, -1), "0");
    cr_expect_str_eq(written_number(7, 0, -1), "7");
    cr_expect_str_eq(written_number(-42, 0, -1), "-42");
    cr_expect_str_eq(written_number(INT64_MAX, 0, -1), "9223372036854775807");
    cr_expect_str_eq(written_number(INT64_MIN, 0, -1), "-9223372036854775808");
}

Test(json, write_fixed_pads_the_fraction)
{
    cr_expect_str_eq(written_number(1500000, 1000000, 6), "1.500000");
    cr_expect_str_eq(written_number(5, 1000, 3), "0.005");
    cr_expect_str_eq(written_number(0, 1000000000, 9), "0.000000000");
    cr_expect_str_eq(written_number(-1234, 1000, 3), "-1.234");
    cr_expect_str_eq(written_number(12345678901234, 1000000000, 9),
                     "12345.678901234");
    cr_expect_str_eq(written_number(INT64_MIN, 1000000000, 9),
                     "-9223372036.854775808");
}

/* ---- buffered writing --------------------------------------------------- */

/* The whole of buf as a NUL-terminated string in the arena; buf is freed. */
static char *drained(struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    char *copy = tg_arena_alloc(&arena, len + 1);

    evbuffer_remove(buf, copy, len);
    copy[len] = '\0';
    evbuffer_free(buf);
    return copy;
}

/* One text written piece by piece through tg_json_out and through the
 * evbuffer writers must come out the same, whatever the pieces' lengths
 * against the stack buffer's: str_len of 0, short, past PLAIN_MAX and
 * past the buffer, with bytes that need escaping or repair. */
static void expect_out_as_write(const char *s, size_t n, int rounds)
{
    struct evbuffer *via_out = evbuffer_new(), *direct = evbuffer_new();
    struct tg_json_out o;
    int k;

    tg_json_out_init(&o, via_out);
    for (k = 0; k < rounds; k++) {
        TG_OUT_LIT(&o, "{\"s\":");
        TG_ADD_LIT(direct, "{\"s\":");
        tg_json_out_str(&o, s, n);
        tg_json_write_str(direct, s, n);
        tg_json_out_raw(&o, ",", 1);
        evbuffer_add(direct, ",", 1);
        tg_json_out_int(&o, INT64_MIN + k);
        tg_json_write_int(direct, INT64_MIN + k);
        tg_json_out_raw(&o, ",", 1);
        evbuffer_add(direct, ",", 1);
        tg_json_out_fixed(&o, -1234 * k, 1000, 3);
        tg_json_write_fixed(direct, -1234 * k, 1000, 3);
        tg_json_out_raw(&o, s, n);
        evbuffer_add(direct, s, n);
        TG_OUT_LIT(&o, "}\n");
        TG_ADD_LIT(direct, "}\n");
    }
    tg_json_out_flush(&o);
    cr_assert_str_eq(drained(via_out), drained(direct), "string of %zu", n);
}

Test(json, out_writes_what_the_evbuffer_writers_write)
{
    static char long_plain[3000], long_odd[3000];
    size_t k;

    for (k = 0; k < sizeof(long_plain); k++) {
        long_plain[k] = (char)('a' + k % 26);
        long_odd[k] = k % 5 == 0 ? '"' : k % 7 == 0 ? '\xff' : 'x';
    }
    expect_out_as_write(NULL, 0, 3);
    expect_out_as_write(TEXT("gpt-4o"), 50);
    expect_out_as_write(TEXT("line\nwith \"quotes\" and \\"), 40);
    expect_out_as_write(TEXT("caf\xc3\xa9 \xe2\x82\xac"), 40);
    expect_out_as_write(long_plain, 254, 9);
    expect_out_as_write(long_plain, 255, 9);
    expect_out_as_write(long_plain, 1023, 3);
    expect_out_as_write(long_plain, 1024, 3);
    expect_out_as_write(long_plain, sizeof(long_plain), 3);
    expect_out_as_write(long_odd, sizeof(long_odd), 3);
}

/* Nothing reaches the evbuffer before the stack buffer is full or flushed:
 * one append per line, which is the point. */
Test(json, out_adds_nothing_before_the_flush)
{
    struct evbuffer *buf = evbuffer_new();
    struct tg_json_out o;

    tg_json_out_init(&o, buf);
    TG_OUT_LIT(&o, "{\"a\":");
    tg_json_out_int(&o, 1);
    tg_json_out_str(&o, TEXT("x"));
    cr_expect_eq(evbuffer_get_length(buf), 0);
    tg_json_out_flush(&o);
    cr_expect_str_eq(drained(buf), "{\"a\":1\"x\"");
}
