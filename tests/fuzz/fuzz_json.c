/*
 * fuzz_json.c - libFuzzer target for the JSON module.
 *
 * Any bytes: tg_json_write_str must make a valid JSON string of them. When
 * the bytes parse, every token is read with every accessor that applies
 * (and with indices just out of range), each decoded string must be valid
 * UTF-8 and survive write -> parse -> decode unchanged, and the tree must be
 * consistent (sizes match iteration, tg_json_get finds the last duplicate),
 * and the tokens must be jsmn's own for the same text.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
/* jsmn itself, private to this file: the reference for every token. */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_json.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more members are not cross-checked against tg_json_get,
 * which would cost O(members^2). */
#define GET_CHECK_MAX_MEMBERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Writes s[0..n), parses it back as one string and returns it decoded. */
static void write_and_reparse(const char *s, size_t n, struct tg_arena *arena,
                              char **back, size_t *back_len)
{
    struct evbuffer *buf = evbuffer_new();
    struct tg_json j;
    struct tg_json_error err;
    size_t len;
    char *text;

    check(buf != NULL);
    check(tg_json_write_str(buf, s, n) == TG_OK);
    len = evbuffer_get_length(buf);
    text = tg_arena_alloc(arena, len ? len : 1);
    check(text != NULL);
    evbuffer_remove(buf, text, len);
    evbuffer_free(buf);
    check(tg_json_parse(&j, text, len, arena, &err) == TG_OK);
    check(j.n_tok == 1 && tg_json_type(&j, 0) == TG_JSON_STRING);
    check(tg_json_str(&j, 0, arena, back, back_len) == TG_OK);
}

static void check_string(const struct tg_json *j, int i, struct tg_arena *arena)
{
    char *s, *back;
    size_t n, raw_len, back_len;

    check(tg_json_str(j, i, arena, &s, &n) == TG_OK);
    check(s[n] == '\0');
    tg_json_raw(j, i, &raw_len);
    check(n <= raw_len);
    check(tg_json_is_utf8(s, n));
    if (memchr(s, '\0', n) == NULL)
        check(tg_json_str_eq(j, i, s));
    write_and_reparse(s, n, arena, &back, &back_len);
    check(back_len == n && memcmp(back, s, n) == 0);
}

static void check_number(const struct tg_json *j, int i)
{
    int64_t v;
    double d;
    int rc_int = tg_json_int64(j, i, &v);
    int rc_double = tg_json_double(j, i, &d);

    check(rc_int == TG_OK || rc_int == TG_ERROR);
    check(rc_double == TG_OK || rc_double == TG_ERROR);
    /* Both conversions round the same exact integer to nearest. */
    if (rc_int == TG_OK)
        check(rc_double == TG_OK && d == (double)v);
}

static void check_object(const struct tg_json *j, int obj)
{
    int cursor = 0, key, val, n = 0, size = tg_json_size(j, obj);
    size_t len;
    const char *raw;
    char *copy;

    while (tg_json_member(j, obj, &cursor, &key, &val)) {
        check(tg_json_type(j, key) == TG_JSON_STRING);
        check(tg_json_type(j, val) != TG_JSON_INVALID);
        /* A key without escapes or NUL is its own text: the last member
         * with it must be what tg_json_get finds, so not before this one. */
        raw = tg_json_raw(j, key, &len);
        if (size <= GET_CHECK_MAX_MEMBERS && !memchr(raw, '\\', len)) {
            copy = strndup(raw, len);
            check(copy != NULL);
            check(tg_json_get(j, obj, copy) >= val);
            free(copy);
        }
        n++;
    }
    check(n == size);
}

static void check_array(const struct tg_json *j, int arr)
{
    int cursor = 0, elem, n = 0;

    while (tg_json_element(j, arr, &cursor, &elem)) {
        check(tg_json_type(j, elem) != TG_JSON_INVALID);
        n++;
    }
    check(n == tg_json_size(j, arr));
}

static void check_token(const struct tg_json *j, int i, struct tg_arena *arena)
{
    enum tg_json_type type = tg_json_type(j, i);
    size_t len;
    bool b;

    check(type != TG_JSON_INVALID);
    check(tg_json_raw(j, i, &len) != NULL);
    check(strcmp(tg_json_type_name(type), "invalid") != 0);
    check(tg_json_skip(j, i) > i && tg_json_skip(j, i) <= j->n_tok);
    check((tg_json_bool(j, i, &b) == TG_OK) ==
          (type == TG_JSON_TRUE || type == TG_JSON_FALSE));
    if (type == TG_JSON_STRING)
        check_string(j, i, arena);
    else if (type == TG_JSON_NUMBER)
        check_number(j, i);
    else if (type == TG_JSON_OBJECT)
        check_object(j, i);
    else if (type == TG_JSON_ARRAY)
        check_array(j, i);
}

/* Every accessor must refuse an index just outside the tokens. */
static void check_out_of_range(const struct tg_json *j, int i,
                               struct tg_arena *arena)
{
    int64_t v;
    double d;
    bool b;
    char *s;
    size_t len;
    int cursor = 0, a, c;

    check(tg_json_type(j, i) == TG_JSON_INVALID);
    check(tg_json_skip(j, i) == -1);
    check(tg_json_size(j, i) == -1);
    check(tg_json_get(j, i, "") == -1);
    check(!tg_json_member(j, i, &cursor, &a, &c));
    check(!tg_json_element(j, i, &cursor, &a));
    check(!tg_json_str_eq(j, i, ""));
    check(tg_json_str(j, i, arena, &s, &len) == TG_ERROR);
    check(tg_json_raw(j, i, &len) == NULL);
    check(tg_json_int64(j, i, &v) == TG_ERROR);
    check(tg_json_double(j, i, &d) == TG_ERROR);
    check(tg_json_bool(j, i, &b) == TG_ERROR);
}

/* The tokens jsmn makes of the same text, field by field. Strict jsmn
 * refuses a bare primitive at the root, which tg_json_parse accepts. */
static void check_as_jsmn(const struct tg_json *j, struct tg_arena *arena)
{
    jsmn_parser p;
    jsmntok_t *want;
    int i;

    if (j->tok[0].type == JSMN_PRIMITIVE)
        return;
    want = tg_arena_alloc(arena, (size_t)j->n_tok * sizeof(*want));
    check(want != NULL);
    jsmn_init(&p);
    check(jsmn_parse(&p, j->src, j->len, want, (unsigned)j->n_tok) == j->n_tok);
    for (i = 0; i < j->n_tok; i++)
        check(want[i].type == j->tok[i].type &&
              want[i].start == j->tok[i].start &&
              want[i].end == j->tok[i].end && want[i].size == j->tok[i].size &&
              want[i].parent == j->tok[i].parent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct tg_arena arena;
    struct tg_json j;
    struct tg_json_error err;
    char *back;
    size_t back_len;
    int i;

    tg_arena_init(&arena, 4096);
    write_and_reparse(text, size, &arena, &back, &back_len);
    if (tg_json_is_utf8(text, size))
        check(back_len == size && memcmp(back, text, size) == 0);
    if (tg_json_parse(&j, text, size, &arena, &err) == TG_OK) {
        check(j.n_tok >= 1 && tg_json_skip(&j, 0) == j.n_tok);
        check_as_jsmn(&j, &arena);
        for (i = 0; i < j.n_tok; i++)
            check_token(&j, i, &arena);
        check_out_of_range(&j, -1, &arena);
        check_out_of_range(&j, j.n_tok, &arena);
    } else {
        check(err.offset <= size);
    }
    tg_arena_free(&arena);
    return 0;
}
