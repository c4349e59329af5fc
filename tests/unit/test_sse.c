/*
 * test_sse.c - unit tests of the SSE parser (worker/sse.c).
 *
 * Every input is parsed several ways: in one piece, byte by byte and in
 * random pieces (zero-length feeds included), and each way must give the
 * exact same events and return code. The spec examples come from the WHATWG
 * "event stream interpretation" section; the recorded provider streams are
 * read from $TG_SHARED_DATA/streams (default ../shared/data); their expected
 * events were counted in the files themselves (grep), not with this parser.
 */
#include <criterion/criterion.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_json.h"
#include "tg_sse.h"

#include <glob.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text and length of a literal, so that NUL bytes pass intact. */
#define TEXT(s) s, sizeof(s) - 1

/* A limit no test input reaches. */
#define BIG_LIMIT (1u << 20)

/* How many ways each input is split: one piece, bytes and 32 random. */
#define N_SPLITS 34

/* Split modes of run(); any other value seeds random piece sizes. */
#define SPLIT_WHOLE 0u
#define SPLIT_BYTES 1u

/* The value the recorder returns to stop the parser. */
#define STOP_RC 42

struct event {
    char *name;
    size_t name_len;
    char *data;
    size_t data_len;
};

struct recorder {
    struct event *ev;
    size_t n, cap;
    size_t stop_after; /* return STOP_RC at this many events; 0: never */
};

/* An expected event; a list ends with a NULL data. */
struct want {
    const char *event;
    const char *data;
};

static char *copy(const char *s, size_t n)
{
    char *c = malloc(n + 1);

    cr_assert_not_null(c);
    if (n > 0)
        memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

static int record(void *ctx, const char *event, size_t event_len,
                  const char *data, size_t data_len)
{
    struct recorder *r = ctx;

    cr_assert_not_null(event);
    cr_assert_not_null(data);
    /* The contract: event is "" when the stream named none. */
    if (event_len == 0)
        cr_assert_eq(event[0], '\0');
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->ev = realloc(r->ev, r->cap * sizeof(*r->ev));
        cr_assert_not_null(r->ev);
    }
    r->ev[r->n].name = copy(event, event_len);
    r->ev[r->n].name_len = event_len;
    r->ev[r->n].data = copy(data, data_len);
    r->ev[r->n].data_len = data_len;
    r->n++;
    return r->stop_after != 0 && r->n == r->stop_after ? STOP_RC : 0;
}

static void recorder_free(struct recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].name);
        free(r->ev[i].data);
    }
    free(r->ev);
    memset(r, 0, sizeof(*r));
}

static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Size of the next piece: mostly 0-7 bytes, sometimes a long stretch. */
static size_t piece_size(uint32_t mode, uint32_t *state, size_t left)
{
    uint32_t x;

    if (mode == SPLIT_WHOLE)
        return left;
    if (mode == SPLIT_BYTES)
        return left > 0 ? 1 : 0;
    x = next_random(state);
    if ((x >> 16) % 8 == 0 || x % 8 > left)
        return x % (left + 1);
    return x % 8;
}

/* The buffers never outgrow the limit (plus a NUL). */
static void assert_bounded(const struct tg_sse *p, size_t max_bytes)
{
    cr_assert_leq(p->line_cap, max_bytes + 1);
    cr_assert_leq(p->data_cap, max_bytes + 1);
    cr_assert_leq(p->line_len, max_bytes);
    cr_assert_leq(p->data_len, max_bytes);
}

/*
 * Parses s[0..n) in pieces chosen by mode and finishes the stream. Returns
 * the first non-zero return value, which ends the parse, or 0.
 */
static int run(const char *s, size_t n, size_t max_bytes, uint32_t mode,
               struct recorder *r)
{
    struct tg_sse p;
    uint32_t state = mode;
    size_t off = 0, len;
    int rc = 0;

    tg_sse_init(&p, max_bytes);
    while (off < n && rc == 0) {
        len = piece_size(mode, &state, n - off);
        rc = tg_sse_feed(&p, s + off, len, record, r);
        assert_bounded(&p, max_bytes);
        off += len;
    }
    if (rc == 0)
        rc = tg_sse_finish(&p, record, r);
    tg_sse_free(&p);
    return rc;
}

static void assert_want(const struct recorder *r, const struct want *want,
                        uint32_t mode)
{
    size_t n = 0;

    while (want[n].data != NULL)
        n++;
    cr_assert_eq(r->n, n, "split mode %u: %zu events, want %zu", mode, r->n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(r->ev[i].name_len, strlen(want[i].event));
        cr_assert_str_eq(r->ev[i].name, want[i].event, "split mode %u", mode);
        cr_assert_eq(r->ev[i].data_len, strlen(want[i].data));
        cr_assert_str_eq(r->ev[i].data, want[i].data, "split mode %u", mode);
    }
}

/* The i-th way to split an input: one piece, bytes, then random seeds. */
static uint32_t split_mode(uint32_t i)
{
    return i <= SPLIT_BYTES ? i : 0x9e3779b9u * i;
}

/* Asserts the events of text, however it is split. */
static void expect_events(const char *text, size_t len, const struct want *want)
{
    for (uint32_t i = 0; i < N_SPLITS; i++) {
        struct recorder r = {0};
        uint32_t mode = split_mode(i);

        cr_assert_eq(run(text, len, BIG_LIMIT, mode, &r), 0, "mode %u", mode);
        assert_want(&r, want, mode);
        recorder_free(&r);
    }
}

/* Asserts that parsing fails with -1 after n_before events, however the
 * text is split. */
static void expect_error(const char *text, size_t len, size_t max_bytes,
                         size_t n_before)
{
    for (uint32_t i = 0; i < N_SPLITS; i++) {
        struct recorder r = {0};
        uint32_t mode = split_mode(i);

        cr_assert_eq(run(text, len, max_bytes, mode, &r), -1, "mode %u", mode);
        cr_assert_eq(r.n, n_before, "mode %u", mode);
        recorder_free(&r);
    }
}

/* ---- The WHATWG examples and rules ---- */

Test(sse, data_lines_join_with_lf)
{
    static const struct want want[] = {{"", "YHOO\n+2\n10"}, {NULL, NULL}};

    expect_events(TEXT("data: YHOO\ndata: +2\ndata: 10\n\n"), want);
}

Test(sse, comments_and_ids_are_ignored)
{
    static const struct want want[] = {{"", "first event"},
                                       {"", "second event"},
                                       {"", " third event"},
                                       {NULL, NULL}};

    expect_events(TEXT(": test stream\n\n"
                       "data: first event\nid: 1\n\n"
                       "data:second event\nid\n\n"
                       "data:  third event\n\n"),
                  want);
}

/* "data" alone is the field with an empty value. The last event has no
 * blank line: tg_sse_finish dispatches it (the spec would drop it). */
Test(sse, data_without_colon_has_empty_value)
{
    static const struct want want[] = {
        {"", ""}, {"", "\n"}, {"", ""}, {NULL, NULL}};

    expect_events(TEXT("data\n\ndata\ndata\n\ndata:"), want);
}

Test(sse, only_one_space_after_colon_is_removed)
{
    static const struct want want[] = {{"", "test"},  {"", "test"},
                                       {"", " test"}, {"", "\ttest"},
                                       {"", "test "}, {NULL, NULL}};

    expect_events(TEXT("data:test\n\ndata: test\n\ndata:  test\n\n"
                       "data:\ttest\n\ndata: test \n\n"),
                  want);
}

Test(sse, colon_inside_value_is_kept)
{
    static const struct want want[] = {
        {"", "a: b"}, {"x:y", "1"}, {NULL, NULL}};

    expect_events(TEXT("data: a: b\n\nevent:x:y\ndata:1\n\n"), want);
}

Test(sse, cr_only_line_ends)
{
    static const struct want want[] = {{"a", "1\n2"}, {"", "3"}, {NULL, NULL}};

    expect_events(TEXT("event: a\rdata: 1\rdata: 2\r\rdata: 3\r\r"), want);
}

Test(sse, crlf_line_ends)
{
    static const struct want want[] = {{"e", "1\n2"}, {"", "3"}, {NULL, NULL}};

    expect_events(TEXT("event: e\r\ndata: 1\r\ndata: 2\r\n\r\n"
                       "data: 3\r\n\r\n"),
                  want);
}

/* LF CR is two line ends; CR LF one; CR CR two. */
Test(sse, mixed_line_ends)
{
    static const struct want want[] = {
        {"", "a"}, {"", "b"}, {"", "c"}, {NULL, NULL}};

    expect_events(TEXT("data: a\n\rdata: b\r\n\ndata: c\r\r"), want);
}

Test(sse, crlf_split_across_feeds_is_one_line_end)
{
    struct tg_sse p;
    struct recorder r = {0};

    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: a\r"), record, &r), 0);
    cr_assert_eq(tg_sse_feed(&p, TEXT("\n"), record, &r), 0);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: b\r"), record, &r), 0);
    cr_assert_eq(tg_sse_feed(&p, TEXT("\n"), record, &r), 0);
    cr_assert_eq(r.n, 0, "an LF after a CR was taken for a blank line");
    cr_assert_eq(tg_sse_feed(&p, TEXT("\r\n"), record, &r), 0);
    cr_assert_eq(r.n, 1);
    cr_assert_str_eq(r.ev[0].data, "a\nb");
    /* A CR at the end of one feed and another CR at the start of the next
     * are two line ends. */
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: c\r"), record, &r), 0);
    cr_assert_eq(tg_sse_feed(&p, TEXT("\r"), record, &r), 0);
    cr_assert_eq(r.n, 2);
    cr_assert_str_eq(r.ev[1].data, "c");
    tg_sse_free(&p);
    recorder_free(&r);
}

Test(sse, event_type_resets_after_dispatch)
{
    static const struct want want[] = {
        {"foo", "1"}, {"", "2"}, {"b", "3"}, {NULL, NULL}};

    expect_events(TEXT("event: foo\ndata: 1\n\ndata: 2\n\n"
                       "event: a\nevent: b\ndata: 3\n\n"),
                  want);
}

/* An event with an empty data buffer is not dispatched, and its type does
 * not carry over to the next event. */
Test(sse, event_without_data_is_not_dispatched)
{
    static const struct want want[] = {{"", "x"}, {NULL, NULL}};

    expect_events(TEXT("event: foo\n\ndata: x\n\nevent: bar\nid: 1\n\n"), want);
}

Test(sse, empty_event_field_names_no_event)
{
    static const struct want want[] = {{"", "x"}, {NULL, NULL}};

    expect_events(TEXT("event: foo\nevent:\ndata: x\n\n"), want);
}

Test(sse, unknown_fields_and_id_and_retry_are_ignored)
{
    static const struct want want[] = {{"", "x"}, {NULL, NULL}};

    /* Field names are case-sensitive and end at the colon exactly; an id
     * with a NUL is ignored like every id. */
    expect_events(TEXT("foo: bar\nretry: 10\nretry: x\nDATA: no\n"
                       "data : no\nEvent: no\nid: a\0b\nid\ndata: x\n\n"),
                  want);
}

Test(sse, leading_bom_is_ignored)
{
    static const struct want want[] = {{"e", "x"}, {NULL, NULL}};

    expect_events(TEXT("\xEF\xBB\xBF"
                       "event: e\ndata: x\n\n"),
                  want);
}

Test(sse, bom_is_ignored_only_once_at_stream_start)
{
    static const struct want want[] = {{"", "a"}, {NULL, NULL}};
    static const struct want none[] = {{NULL, NULL}};

    /* Elsewhere the BOM is part of a field name, which is then unknown. */
    expect_events(TEXT("data: a\n\n\xEF\xBB\xBF"
                       "data: b\n\n"),
                  want);
    expect_events(TEXT("\xEF\xBB\xBF\xEF\xBB\xBF"
                       "data: b\n\n"),
                  none);
    expect_events(TEXT("\xEF\xBB"
                       "data: b\n\n"),
                  none);
    expect_events(TEXT("\xEF\xBB\xBF"), none);
}

Test(sse, bytes_pass_through_undecoded)
{
    static const struct want want[] = {{"\xC2\xB0", "68\xC2\xB0"
                                                    "F \xFF"},
                                       {NULL, NULL}};

    expect_events(TEXT("event: \xC2\xB0\ndata: 68\xC2\xB0"
                       "F \xFF\n\n"),
                  want);
}

/* ---- The end of the stream ---- */

Test(sse, finish_dispatches_the_pending_event)
{
    static const struct want want[] = {{"e", "x"}, {NULL, NULL}};

    expect_events(TEXT("event: e\ndata: x"), want);
    expect_events(TEXT("event: e\ndata: x\n"), want);
    expect_events(TEXT("event: e\ndata: x\r"), want);
    expect_events(TEXT("event: e\ndata: x\r\n"), want);
}

Test(sse, finish_without_pending_event_dispatches_nothing)
{
    static const struct want none[] = {{NULL, NULL}};
    struct tg_sse p;
    struct recorder r = {0};

    expect_events("", 0, none);
    expect_events(TEXT("event: e\n: comment"), none);
    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: x\n\n"), record, &r), 0);
    cr_assert_eq(tg_sse_finish(&p, record, &r), 0);
    cr_assert_eq(tg_sse_finish(&p, record, &r), 0);
    cr_assert_eq(r.n, 1);
    tg_sse_free(&p);
    recorder_free(&r);
}

Test(sse, finish_before_any_feed_dispatches_nothing)
{
    struct tg_sse p;
    struct recorder r = {0};

    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_finish(&p, record, &r), 0);
    cr_assert_eq(r.n, 0);
    cr_assert_null(p.line);
    cr_assert_null(p.data);
    tg_sse_free(&p);
}

/* ---- The callback stops the stream ---- */

Test(sse, callback_stop_value_is_returned_at_once)
{
    static const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";

    for (uint32_t i = 0; i < N_SPLITS; i++) {
        struct recorder r = {.stop_after = 1};
        uint32_t mode = split_mode(i);

        cr_assert_eq(run(TEXT(text), BIG_LIMIT, mode, &r), STOP_RC);
        cr_assert_eq(r.n, 1, "mode %u", mode);
        cr_assert_str_eq(r.ev[0].data, "1");
        recorder_free(&r);
    }
}

Test(sse, nothing_is_dispatched_after_a_stop)
{
    struct tg_sse p;
    struct recorder r = {.stop_after = 1};

    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: 1\n\ndata: 2\n\n"), record, &r),
                 STOP_RC);
    /* The stopping event is not left pending for finish to send again. */
    cr_assert_eq(tg_sse_finish(&p, record, &r), 0);
    cr_assert_eq(r.n, 1);
    tg_sse_free(&p);
    recorder_free(&r);
}

Test(sse, finish_returns_the_callback_stop_value)
{
    struct tg_sse p;
    struct recorder r = {.stop_after = 1};

    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: 1"), record, &r), 0);
    cr_assert_eq(tg_sse_finish(&p, record, &r), STOP_RC);
    tg_sse_free(&p);
    recorder_free(&r);
}

/* ---- Limits ---- */

/* "event: " followed by n 'e's and one event with data "x". */
static size_t long_event_text(char *buf, size_t n)
{
    size_t len = 0;

    memcpy(buf, "event: ", 7);
    len += 7;
    memset(buf + len, 'e', n);
    len += n;
    memcpy(buf + len, "\ndata: x\n\n", 10);
    return len + 10;
}

Test(sse, event_name_of_63_bytes_is_accepted)
{
    char text[128], name[64];
    struct want want[] = {{name, "x"}, {NULL, NULL}};

    memset(name, 'e', 63);
    name[63] = '\0';
    expect_events(text, long_event_text(text, 63), want);
}

/* Too long for the struct's buffer: an error, never a truncated name. */
Test(sse, event_name_of_64_bytes_is_an_error)
{
    char text[128];
    size_t len = long_event_text(text, 64);

    expect_error(text, len, BIG_LIMIT, 0);
}

Test(sse, line_of_max_bytes_is_accepted)
{
    static const struct want want[] = {{"", "0123456789A"}, {NULL, NULL}};
    struct recorder r = {0};

    /* "data:" and 11 bytes: 16, the limit. */
    for (uint32_t mode = SPLIT_WHOLE; mode <= SPLIT_BYTES; mode++) {
        cr_assert_eq(run(TEXT("data:0123456789A\n\n"), 16, mode, &r), 0);
        assert_want(&r, want, mode);
        recorder_free(&r);
    }
}

Test(sse, line_over_max_bytes_is_an_error)
{
    expect_error(TEXT("data: 1\n\ndata:0123456789AB\n\n"), 16, 1);
    expect_error(TEXT(":comment longer than 16\n"), 16, 0);
    expect_error(TEXT("\xEF\xBB\xBF"
                      "data:0123456789\n"),
                 16, 0);
}

Test(sse, data_of_max_bytes_is_accepted)
{
    static const struct want want[] = {{"", "aaaaaaaa\nbbbbbbb"}, {NULL, NULL}};
    struct recorder r = {0};

    for (uint32_t mode = SPLIT_WHOLE; mode <= SPLIT_BYTES; mode++) {
        cr_assert_eq(run(TEXT("data:aaaaaaaa\ndata:bbbbbbb\n\n"), 16, mode, &r),
                     0);
        assert_want(&r, want, mode);
        recorder_free(&r);
    }
}

Test(sse, data_over_max_bytes_is_an_error)
{
    expect_error(TEXT("data:aaaaaaaa\ndata:bbbbbbbb\n\n"), 16, 0);
    /* Empty data lines count: their LFs join the data. */
    expect_error(TEXT("data:aaaaaaaaaaaaaaaa\ndata\n"), 16, 0);
}

/* Memory is bounded while the line is still arriving, not when it ends. */
Test(sse, unterminated_long_line_fails_while_feeding)
{
    struct tg_sse p;
    struct recorder r = {0};
    int rc = 0;
    size_t i;

    tg_sse_init(&p, 64);
    for (i = 0; i < 1000 && rc == 0; i++)
        rc = tg_sse_feed(&p, "x", 1, record, &r);
    cr_assert_eq(rc, -1);
    cr_assert_eq(i, 65);
    assert_bounded(&p, 64);
    tg_sse_free(&p);

    tg_sse_init(&p, 64);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: 1\n\n"), record, &r), 0);
    cr_assert_eq(tg_sse_feed(&p,
                             TEXT("0123456789012345678901234567890123"
                                  "4567890123456789012345678901234"),
                             record, &r),
                 -1);
    cr_assert_eq(r.n, 1);
    tg_sse_free(&p);
    recorder_free(&r);
}

/* Buffers double from a small start and stop at the limit plus a NUL. */
Test(sse, buffers_grow_to_the_limit_and_no_further)
{
    enum { LIMIT = 100000, DATA = 69995 };
    char *text = malloc(DATA + 7);
    struct tg_sse p;
    struct recorder r = {0};

    cr_assert_not_null(text);
    memcpy(text, "data:", 5);
    memset(text + 5, 'z', DATA);
    memcpy(text + 5 + DATA, "\n\n", 2);
    tg_sse_init(&p, LIMIT);
    for (size_t i = 0; i < DATA + 7; i++)
        cr_assert_eq(tg_sse_feed(&p, text + i, 1, record, &r), 0);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.ev[0].data_len, DATA);
    cr_assert_eq(p.line_cap, LIMIT + 1);
    cr_assert_eq(p.data_cap, LIMIT + 1);
    tg_sse_free(&p);
    free(text);
    recorder_free(&r);
}

Test(sse, zero_limit_allows_only_blank_lines)
{
    static const struct want none[] = {{NULL, NULL}};
    struct recorder r = {0};

    cr_assert_eq(run(TEXT("\n\r\n\r\n"), 0, SPLIT_BYTES, &r), 0);
    assert_want(&r, none, SPLIT_BYTES);
    expect_error(TEXT("\n\nd"), 0, 0);
}

Test(sse, free_is_safe_after_an_error_and_twice)
{
    struct tg_sse p;
    struct recorder r = {0};

    tg_sse_init(&p, 8);
    cr_assert_eq(tg_sse_feed(&p, TEXT("data: 1234\ndata: 56789"), record, &r),
                 -1);
    tg_sse_free(&p);
    tg_sse_free(&p);
    cr_assert_null(p.line);
    cr_assert_null(p.data);
    cr_assert_eq(r.n, 0);
}

/* ---- Recorded provider streams ---- */

enum provider { ANTHROPIC, OPENAI, GEMINI };

struct fixture {
    const char *file;
    enum provider provider;
    size_t n_events;
    const char *const *names; /* Anthropic: the event names in order */
    bool has_final_blank_line;
};

static const char *const anthropic_text_names[] = {
    "message_start",       "content_block_start", "ping",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_stop",  "message_delta",       "message_stop",
};

static const char *const anthropic_text_after_tool_result_names[] = {
    "message_start",       "content_block_start", "ping",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_stop",  "message_delta",       "message_stop",
};

static const char *const anthropic_tool_use_names[] = {
    "message_start",       "content_block_start", "ping",
    "content_block_delta", "content_block_delta", "content_block_stop",
    "content_block_start", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_stop",  "message_delta",       "message_stop",
};

static const char *const anthropic_tool_use_recorded_names[] = {
    "message_start",       "content_block_start", "ping",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_delta", "content_block_delta",
    "content_block_delta", "content_block_stop",  "message_delta",
    "message_stop",
};

#define NAMES(a) TG_ARRAY_LEN(a), a

static const struct fixture fixtures[] = {
    {"anthropic_text.sse", ANTHROPIC, NAMES(anthropic_text_names), false},
    {"anthropic_text_after_tool_result_recorded.sse", ANTHROPIC,
     NAMES(anthropic_text_after_tool_result_names), true},
    {"anthropic_tool_use.sse", ANTHROPIC, NAMES(anthropic_tool_use_names),
     false},
    {"anthropic_tool_use_recorded.sse", ANTHROPIC,
     NAMES(anthropic_tool_use_recorded_names), true},
    {"openai_chat_tool_call.sse", OPENAI, 14, NULL, true},
    {"openai_chat_text_usage.sse", OPENAI, 34, NULL, true},
    {"openai_chat_parallel_tool_calls.sse", OPENAI, 26, NULL, true},
    {"gemini_function_call.sse", GEMINI, 1, NULL, true},
    {"gemini_text_after_function_response.sse", GEMINI, 2, NULL, true},
    {"gemini3_function_call_thought_signature.sse", GEMINI, 2, NULL, true},
    {"gemini_text_usage_thoughts.sse", GEMINI, 3, NULL, true},
};

static const char *shared_data_dir(void)
{
    const char *dir = getenv("TG_SHARED_DATA");

    return dir != NULL && dir[0] != '\0' ? dir : "../shared/data";
}

/* Reads streams/<file>; a missing file fails the test. */
static char *read_stream(const char *file, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf;
    long size;

    snprintf(path, sizeof(path), "%s/streams/%s", shared_data_dir(), file);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (set TG_SHARED_DATA)", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    cr_assert_gt(size, 0, "%s is empty", path);
    rewind(f);
    buf = malloc((size_t)size);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static void assert_same_events(const struct recorder *a,
                               const struct recorder *b, uint32_t mode)
{
    cr_assert_eq(a->n, b->n, "split mode %u: %zu events, one piece %zu", mode,
                 b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        cr_assert_eq(a->ev[i].name_len, b->ev[i].name_len);
        cr_assert_eq(memcmp(a->ev[i].name, b->ev[i].name, a->ev[i].name_len),
                     0);
        cr_assert_eq(a->ev[i].data_len, b->ev[i].data_len, "mode %u", mode);
        cr_assert_eq(memcmp(a->ev[i].data, b->ev[i].data, a->ev[i].data_len), 0,
                     "split mode %u, event %zu", mode, i);
    }
}

/* Parses data as JSON; asserts an object; returns the parse. */
static struct tg_json json_object(const struct event *e, struct tg_arena *arena)
{
    struct tg_json j;
    struct tg_json_error err = {0, NULL};

    cr_assert_eq(tg_json_parse(&j, e->data, e->data_len, arena, &err), TG_OK,
                 "not JSON (%s at %zu): %s", err.message, err.offset, e->data);
    cr_assert_eq(tg_json_type(&j, 0), TG_JSON_OBJECT, "%s", e->data);
    return j;
}

/* Anthropic: the names in order, and each payload's "type" is its name. */
static void check_anthropic(const struct fixture *f, const struct recorder *r,
                            struct tg_arena *arena)
{
    for (size_t i = 0; i < r->n; i++) {
        struct tg_json j = json_object(&r->ev[i], arena);

        cr_assert_str_eq(r->ev[i].name, f->names[i], "%s event %zu", f->file,
                         i);
        cr_assert(tg_json_str_eq(&j, tg_json_get(&j, 0, "type"), f->names[i]),
                  "%s event %zu: type is not %s", f->file, i, f->names[i]);
    }
}

/* OpenAI and Gemini: unnamed events whose data are JSON objects, except
 * OpenAI's final [DONE]. */
static void check_unnamed(const struct fixture *f, const struct recorder *r,
                          struct tg_arena *arena)
{
    size_t n_json = f->provider == OPENAI ? r->n - 1 : r->n;

    for (size_t i = 0; i < r->n; i++)
        cr_assert_eq(r->ev[i].name_len, 0, "%s event %zu", f->file, i);
    for (size_t i = 0; i < n_json; i++)
        json_object(&r->ev[i], arena);
    if (f->provider == OPENAI)
        cr_assert_str_eq(r->ev[r->n - 1].data, "[DONE]", "%s", f->file);
}

/* Without its final blank line, the last event waits for tg_sse_finish. */
static void check_finish_needed(const struct fixture *f, const char *text,
                                size_t len)
{
    struct tg_sse p;
    struct recorder r = {0};

    tg_sse_init(&p, BIG_LIMIT);
    cr_assert_eq(tg_sse_feed(&p, text, len, record, &r), 0);
    cr_assert_eq(r.n, f->n_events - (f->has_final_blank_line ? 0 : 1), "%s",
                 f->file);
    cr_assert_eq(tg_sse_finish(&p, record, &r), 0);
    cr_assert_eq(r.n, f->n_events);
    tg_sse_free(&p);
    recorder_free(&r);
}

static void check_fixture(const struct fixture *f)
{
    struct recorder whole = {0};
    struct tg_arena arena;
    size_t len;
    char *text = read_stream(f->file, &len);

    cr_assert_eq(run(text, len, BIG_LIMIT, SPLIT_WHOLE, &whole), 0);
    cr_assert_eq(whole.n, f->n_events, "%s: %zu events", f->file, whole.n);
    for (uint32_t i = 1; i < N_SPLITS; i++) {
        struct recorder split = {0};
        uint32_t mode = split_mode(i);

        cr_assert_eq(run(text, len, BIG_LIMIT, mode, &split), 0);
        assert_same_events(&whole, &split, mode);
        recorder_free(&split);
    }
    tg_arena_init(&arena, 4096);
    if (f->provider == ANTHROPIC)
        check_anthropic(f, &whole, &arena);
    else
        check_unnamed(f, &whole, &arena);
    tg_arena_free(&arena);
    check_finish_needed(f, text, len);
    recorder_free(&whole);
    free(text);
}

Test(sse, stream_anthropic_text)
{
    check_fixture(&fixtures[0]);
}

Test(sse, stream_anthropic_text_after_tool_result_recorded)
{
    check_fixture(&fixtures[1]);
}

Test(sse, stream_anthropic_tool_use)
{
    check_fixture(&fixtures[2]);
}

Test(sse, stream_anthropic_tool_use_recorded)
{
    check_fixture(&fixtures[3]);
}

Test(sse, stream_openai_chat_tool_call)
{
    check_fixture(&fixtures[4]);
}

Test(sse, stream_openai_chat_text_usage)
{
    check_fixture(&fixtures[5]);
}

Test(sse, stream_openai_chat_parallel_tool_calls)
{
    check_fixture(&fixtures[6]);
}

Test(sse, stream_gemini_function_call)
{
    check_fixture(&fixtures[7]);
}

Test(sse, stream_gemini_text_after_function_response)
{
    check_fixture(&fixtures[8]);
}

Test(sse, stream_gemini3_function_call_thought_signature)
{
    check_fixture(&fixtures[9]);
}

Test(sse, stream_gemini_text_usage_thoughts)
{
    check_fixture(&fixtures[10]);
}

/* A new recording in streams/ must get its expectations here too. */
Test(sse, every_recorded_stream_is_tested)
{
    char pattern[4096];
    glob_t g;

    snprintf(pattern, sizeof(pattern), "%s/streams/*.sse", shared_data_dir());
    cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no streams at %s", pattern);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        size_t k = 0;

        while (k < TG_ARRAY_LEN(fixtures) && strcmp(fixtures[k].file, base))
            k++;
        cr_assert_lt(k, TG_ARRAY_LEN(fixtures), "untested stream %s", base);
    }
    cr_assert_eq(g.gl_pathc, TG_ARRAY_LEN(fixtures));
    globfree(&g);
}
