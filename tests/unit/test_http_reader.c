/*
 * test_http_reader.c - unit tests of the HTTP/1.1 answer reader
 * (worker/http_reader.c).
 *
 * Every input is read in one piece, in pieces of every size from 1 byte up,
 * and split in two at every offset; each way must give the very same
 * events, body and error. Events are written as a short text:
 *   H200   the head of a 200 answer
 *   E+ E-  the end of an answer; + when the connection may be reused
 *   C      the peer closed and nothing was lost (reported at the end)
 *   !why   an error
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_http_reader.h"

/* Text and length of a literal. */
#define TEXT(s) s, sizeof(s) - 1

/* No test's events or body are longer. */
#define LOG_MAX 4096

struct result {
    char events[LOG_MAX];
    char body[LOG_MAX];
    size_t body_len;
};

static struct tg_http_reader reader;
static char head_buf[TG_HTTP_HEAD_MAX];

static void log_event(struct result *res, const char *text)
{
    size_t n = strlen(res->events);

    cr_assert_lt(n + strlen(text), LOG_MAX);
    strcpy(res->events + n, text);
}

/* Records one event; false when reading must stop (an error). */
static bool record(struct result *res, enum tg_http_event ev, const char *body,
                   size_t body_len)
{
    char text[64];

    switch (ev) {
    case TG_HTTP_HEAD:
        snprintf(text, sizeof(text), "H%d ", reader.status);
        log_event(res, text);
        return true;
    case TG_HTTP_BODY:
        cr_assert_gt(body_len, 0);
        cr_assert_leq(res->body_len + body_len, LOG_MAX);
        memcpy(res->body + res->body_len, body, body_len);
        res->body_len += body_len;
        return true;
    case TG_HTTP_END:
        log_event(res, reader.is_keep_alive ? "E+ " : "E- ");
        return true;
    case TG_HTTP_ERROR:
        snprintf(text, sizeof(text), "!%s", reader.error);
        log_event(res, text);
        return false;
    default: return true;
    }
}

/* Feeds one piece to its end; false after an error. */
static bool feed(struct result *res, const char *s, size_t n)
{
    enum tg_http_event ev;
    const char *body;
    size_t used, body_len;

    do {
        ev = tg_http_reader_feed(&reader, s, n, &used, &body, &body_len);
        cr_assert_leq(used, n);
        if (ev == TG_HTTP_BODY)
            cr_assert(body >= s && body + body_len <= s + used);
        s += used;
        n -= used;
        if (!record(res, ev, body, body_len))
            return false;
    } while (ev != TG_HTTP_MORE);
    cr_assert_eq(n, 0);
    return true;
}

/* Reads s in pieces of `piece` bytes (0: whole), the first one `first`
 * bytes long when first > 0; then the peer closes when is_closed. */
static void run(const char *s, size_t n, size_t first, size_t piece,
                bool is_closed, struct result *res)
{
    size_t off = 0, len;
    enum tg_http_event ev;

    memset(res, 0, sizeof(*res));
    tg_http_reader_init(&reader);
    tg_http_reader_lend(&reader, head_buf, sizeof(head_buf));
    while (off < n) {
        len = off == 0 && first > 0 ? first : piece ? piece : n;
        if (len > n - off)
            len = n - off;
        if (!feed(res, s + off, len))
            return;
        off += len;
    }
    if (!is_closed)
        return;
    ev = tg_http_reader_close(&reader);
    if (ev == TG_HTTP_MORE)
        log_event(res, "C");
    else
        record(res, ev, NULL, 0);
}

/* Every split of s must give the events and body wanted. */
static void expect_closed(const char *s, size_t n, bool is_closed,
                          const char *events, const char *body)
{
    struct result res;
    size_t k;

    for (k = 0; k <= n; k++) {
        run(s, n, 0, k, is_closed, &res);
        cr_assert_str_eq(res.events, events, "pieces of %zu: %s", k, s);
        cr_assert_eq(res.body_len, strlen(body), "pieces of %zu: %s", k, s);
        cr_assert_arr_eq(res.body, body, res.body_len, "pieces of %zu", k);
    }
    for (k = 1; k < n; k++) {
        run(s, n, k, 0, is_closed, &res);
        cr_assert_str_eq(res.events, events, "split at %zu: %s", k, s);
        cr_assert_eq(res.body_len, strlen(body), "split at %zu: %s", k, s);
        cr_assert_arr_eq(res.body, body, res.body_len, "split at %zu", k);
    }
}

static void expect(const char *s, size_t n, const char *events,
                   const char *body)
{
    expect_closed(s, n, false, events, body);
}

/* ---- framing ---------------------------------------------------------- */

Test(http_reader, content_length_body)
{
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
           "H200 E+ ", "hello");
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "H200 E+ ",
           "");
    /* The same length twice is one length. */
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: "
                "2\r\n\r\nok"),
           "H200 E+ ", "ok");
}

Test(http_reader, chunked_body_with_extensions_and_trailers)
{
    expect(TEXT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n1;name=value;x\r\n \r\n"
                "A ; ext=\"q\"\r\n0123456789\r\n"
                "0\r\nX-Trailer: t\r\nX-Other:\r\n\r\n"),
           "H200 E+ ", "hello 0123456789");
    expect(TEXT("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
                "0\r\n\r\n"),
           "H200 E+ ", "");
    /* Upper-case hex digits, leading zeros, bare LF line ends. */
    expect(TEXT("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
                "00b\n0123456789a\n0\n\n"),
           "H200 E+ ", "0123456789a");
}

Test(http_reader, body_until_close)
{
    expect_closed(TEXT("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it"), true,
                  "H200 E- ", "all of it");
    expect_closed(TEXT("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"),
                  true, "H200 E- ", "");
    /* Without the close, the body may go on. */
    expect(TEXT("HTTP/1.1 200 OK\r\n\r\nsome"), "H200 ", "some");
}

Test(http_reader, no_body_for_204_and_304)
{
    expect(TEXT("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
           "H204 E+ ", "");
    expect(TEXT("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: "
                "chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                "1\r\n\r\nx"),
           "H304 E+ H200 E+ ", "x");
}

Test(http_reader, interim_answers_are_skipped)
{
    expect(TEXT("HTTP/1.1 100 Continue\r\n\r\n"
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
           "H201 E+ ", "ok");
    /* The final answer's head holds none of the interim ones. */
    run(TEXT("HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        0, 0, false, &(struct result){0});
    cr_assert_null(tg_http_reader_header(&reader, "X-A", &(size_t){0}));
    cr_assert_eq(reader.head_len, strlen("HTTP/1.1 200 OK\r\nContent-Length: "
                                         "0\r\n\r\n"));
}

Test(http_reader, answers_one_after_another)
{
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
                "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nb"
                "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
                "1\r\nc\r\n0\r\n\r\n"),
           "H200 E+ H404 E+ H500 E+ ", "abc");
    /* A clean close between answers loses nothing. */
    expect_closed(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"), true,
                  "H200 E+ C", "a");
    expect_closed(TEXT(""), true, "C", "");
}

/* ---- keep-alive ------------------------------------------------------- */

Test(http_reader, keep_alive_decisions)
{
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), "H200 E+ ",
           "");
    expect(TEXT("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                "0\r\n\r\n"),
           "H200 E- ", "");
    expect(TEXT("HTTP/1.1 200 OK\r\nConnection: Upgrade ,  CLOSE\r\n"
                "Content-Length: 0\r\n\r\n"),
           "H200 E- ", "");
    expect(TEXT("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), "H200 E- ",
           "");
    expect(TEXT("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
                "Content-Length: 0\r\n\r\n"),
           "H200 E+ ", "");
    expect(TEXT("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n"
                "Content-Length: 0\r\n\r\n"),
           "H200 E- ", "");
    /* Read until close: never reused, whatever the version says. */
    expect_closed(TEXT("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nx"),
                  true, "H200 E- ", "x");
}

/* ---- the head --------------------------------------------------------- */

Test(http_reader, header_lookup_on_the_stored_head)
{
    static const char answer[] = "HTTP/1.1 429 Too Many Requests\r\n"
                                 "Content-Type: application/json\r\n"
                                 "retry-after:   17  \r\n"
                                 "X-Empty:\r\n"
                                 "X-Tab:\tv w\t\r\n"
                                 "X-Dup: first\r\nX-Dup: second\r\n"
                                 "Content-Length: 2\r\n\r\n{}";
    size_t n = 99;
    const char *v;

    run(answer, sizeof(answer) - 1, 0, 1, false, &(struct result){0});
    cr_assert_eq(reader.status, 429);
    v = tg_http_reader_header(&reader, "Retry-After", &n);
    cr_assert(v != NULL && n == 2 && memcmp(v, "17", 2) == 0);
    v = tg_http_reader_header(&reader, "CONTENT-TYPE", &n);
    cr_assert(n == 16 && memcmp(v, "application/json", n) == 0);
    v = tg_http_reader_header(&reader, "x-empty", &n);
    cr_assert(v != NULL && n == 0);
    v = tg_http_reader_header(&reader, "x-tab", &n);
    cr_assert(n == 3 && memcmp(v, "v w", n) == 0);
    v = tg_http_reader_header(&reader, "x-dup", &n);
    cr_assert(n == 5 && memcmp(v, "first", n) == 0);
    cr_assert_null(tg_http_reader_header(&reader, "X-Du", &n));
    cr_assert_null(tg_http_reader_header(&reader, "Missing", &n));
    cr_assert_null(tg_http_reader_header(&reader, "HTTP/1.1 429 Too", &n));
    cr_assert_eq(reader.head_len, sizeof(answer) - 1 - 2);
    cr_assert_arr_eq(reader.head, answer, reader.head_len);
}

Test(http_reader, no_header_before_the_head)
{
    size_t n;

    tg_http_reader_init(&reader);
    cr_assert_null(tg_http_reader_header(&reader, "Content-Length", &n));
    run(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"), 0, 0, false,
        &(struct result){0});
    cr_assert_null(tg_http_reader_header(&reader, "Content-Length", &n));
}

Test(http_reader, status_lines)
{
    expect(TEXT("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), "H200 E+ ", "");
    expect(TEXT("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"), "H599 E+ ", "");
    expect(TEXT("HTTP/1.1 400 Bad  Request\xC3\xA9\r\nContent-Length: "
                "0\r\n\r\n"),
           "H400 E+ ", "");
}

Test(http_reader, a_head_fills_the_buffer_exactly)
{
    static char answer[TG_HTTP_HEAD_MAX + 1];
    const char *start = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ";
    size_t n = strlen(start);
    struct result res;

    memcpy(answer, start, n);
    memset(answer + n, 'p', TG_HTTP_HEAD_MAX - n - 4);
    memcpy(answer + TG_HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
    run(answer, TG_HTTP_HEAD_MAX, 0, 0, false, &res);
    cr_assert_str_eq(res.events, "H200 E+ ");
    run(answer, TG_HTTP_HEAD_MAX, 0, 1000, false, &res);
    cr_assert_str_eq(res.events, "H200 E+ ");
    /* One byte more is too large. */
    memcpy(answer + TG_HTTP_HEAD_MAX - 4, "p\r\n\r\n", 5);
    run(answer, TG_HTTP_HEAD_MAX + 1, 0, 0, false, &res);
    cr_assert_str_eq(res.events, "!the head is too large");
    run(answer, TG_HTTP_HEAD_MAX + 1, 0, 1, false, &res);
    cr_assert_str_eq(res.events, "!the head is too large");
}

/* ---- bad input -------------------------------------------------------- */

struct bad {
    const char *input;
    const char *events;
};

static void expect_bad(const struct bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect(cases[i].input, strlen(cases[i].input), cases[i].events, "");
}

Test(http_reader, bad_status_lines)
{
    static const struct bad cases[] = {
        {"HTTX/1.1 200 OK\r\n", "!not an HTTP answer"},
        {"xyz", "!not an HTTP answer"},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n", "!not an HTTP answer"},
        {"HTTP/1.1 20 OK\r\n\r\n", "!bad status line"},
        {"HTTP/1.1 2000 OK\r\n\r\n", "!bad status line"},
        {"HTTP/1.1 099 OK\r\n\r\n", "!bad status line"},
        {"HTTP/1.1 600 OK\r\n\r\n", "!bad status line"},
        {"HTTP/1.1  200 OK\r\n\r\n", "!bad status line"},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", "!bad status line"},
        {"HTTP/1.1 200 O\rK\r\n\r\n", "!bad status line"},
        {"HTTP/11 200 OK\r\n\r\n", "!bad status line"},
        {"HTTP/2.0 200 OK\r\n\r\n", "!unsupported HTTP version"},
        {"HTTP/1.2 200 OK\r\n\r\n", "!unsupported HTTP version"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n",
         "!an unrequested protocol switch"},
    };

    expect_bad(cases, TG_ARRAY_LEN(cases));
}

Test(http_reader, bad_header_lines)
{
    static const struct bad cases[] = {
        {"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\n: no name\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nName : space\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nNa(me: v\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nName: a\x01z\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nName: a\rz\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nName: a\x7f\r\n\r\n", "!bad header line"},
        {"HTTP/1.1 200 OK\r\nName: v\r\n folded\r\n\r\n",
         "!obsolete line folding"},
    };

    expect_bad(cases, TG_ARRAY_LEN(cases));
}

Test(http_reader, bad_framing)
{
    static const struct bad cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
         "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
         "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
         "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
         "!bad Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
         "!Content-Length too large"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 4611686018427387904\r\n\r\n",
         "!Content-Length too large"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "!conflicting Content-Lengths"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         "!both Content-Length and chunked"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
         "!unsupported Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         "!unsupported Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         "!unsupported Transfer-Encoding"},
    };

    expect_bad(cases, TG_ARRAY_LEN(cases));
}

#define CHUNKED "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

Test(http_reader, bad_chunks)
{
    static const struct bad cases[] = {
        {CHUNKED "x\r\n", "H200 !bad chunk size"},
        {CHUNKED "\r\n", "H200 !bad chunk size"},
        {CHUNKED ";ext\r\n", "H200 !bad chunk size"},
        {CHUNKED "-1\r\n", "H200 !bad chunk size"},
        {CHUNKED "1x\r\n", "H200 !bad chunk size"},
        {CHUNKED "1 2\r\n", "H200 !bad chunk size"},
        {CHUNKED "1\rx", "H200 !bad chunk size"},
        {CHUNKED "1;a\x01\r\n", "H200 !bad chunk extension"},
        {CHUNKED "40000000000000000\r\n", "H200 !chunk size too large"},
        {CHUNKED "1\r\nabc", "H200 !bad chunk end"},
        {CHUNKED "1\r\na\rb", "H200 !bad chunk end"},
        {CHUNKED "0\r\nno colon\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\n: v\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\nName : v\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\nA: v\r\n folded\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\nA: v\rx\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\nA: \x01\r\n\r\n", "H200 !bad trailer line"},
        {CHUNKED "0\r\n\rx", "H200 !bad trailer line"},
    };
    struct result res;

    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        for (size_t k = 0; k < 4; k++) {
            run(cases[i].input, strlen(cases[i].input), 0, k, false, &res);
            cr_assert_str_eq(res.events, cases[i].events, "%s", cases[i].input);
        }
    }
}

Test(http_reader, overlong_chunk_size_line)
{
    static char answer[sizeof(CHUNKED) + TG_HTTP_CHUNK_LINE_MAX + 16];
    size_t n = strlen(CHUNKED);
    struct result res;

    memcpy(answer, CHUNKED, n);
    answer[n] = '1';
    answer[n + 1] = ';';
    memset(answer + n + 2, 'e', TG_HTTP_CHUNK_LINE_MAX - 2);
    memcpy(answer + n + TG_HTTP_CHUNK_LINE_MAX, "\r\nx\r\n0\r\n\r\n", 10);
    run(answer, n + TG_HTTP_CHUNK_LINE_MAX + 10, 0, 0, false, &res);
    cr_assert_str_eq(res.events, "H200 E+ ");
    answer[n + TG_HTTP_CHUNK_LINE_MAX] = 'e';
    run(answer, n + TG_HTTP_CHUNK_LINE_MAX + 10, 0, 7, false, &res);
    cr_assert_str_eq(res.events, "H200 !the chunk-size line is too long");
}

Test(http_reader, bytes_after_an_answer_must_be_an_answer)
{
    expect(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naX"),
           "H200 E+ !bytes after the answer", "a");
    expect(TEXT("HTTP/1.1 204 No Content\r\n\r\n\r\n"),
           "H204 E+ !bytes after the answer", "");
}

Test(http_reader, closing_early_is_an_error)
{
    expect_closed(TEXT("HTTP/1.1 200 OK\r\nContent-Le"), true,
                  "!the connection closed before the head ended", "");
    expect_closed(TEXT("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhalf"),
                  true, "H200 !the connection closed before the answer ended",
                  "half");
    expect_closed(TEXT(CHUNKED "4\r\nhalf\r\n"), true,
                  "H200 !the connection closed before the answer ended",
                  "half");
    expect_closed(TEXT("HTTP/1.1 100 Continue\r\n\r\n"), true,
                  "!the connection closed before the head ended", "");
}

Test(http_reader, an_error_stays)
{
    const char *body;
    size_t used, len;

    run(TEXT("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), 0, 0, false,
        &(struct result){0});
    cr_assert_eq(tg_http_reader_feed(&reader, TEXT("HTTP/1.1 200 OK\r\n"),
                                     &used, &body, &len),
                 TG_HTTP_ERROR);
    cr_assert_eq(used, 0);
    cr_assert_eq(tg_http_reader_close(&reader), TG_HTTP_ERROR);
    cr_assert_str_eq(reader.error, "bad Content-Length");
}

Test(http_reader, overlong_trailer_line)
{
    static char answer[sizeof(CHUNKED) + TG_HTTP_HEAD_MAX + 16];
    size_t n = strlen(CHUNKED);
    struct result res;

    memcpy(answer, CHUNKED "0\r\nX:", n + 5);
    memset(answer + n + 5, 'v', TG_HTTP_HEAD_MAX - 2);
    memcpy(answer + n + 3 + TG_HTTP_HEAD_MAX, "\r\n\r\n", 4);
    run(answer, n + 7 + TG_HTTP_HEAD_MAX, 0, 0, false, &res);
    cr_assert_str_eq(res.events, "H200 E+ ");
    answer[n + 3 + TG_HTTP_HEAD_MAX] = 'v';
    run(answer, n + 7 + TG_HTTP_HEAD_MAX, 0, 100, false, &res);
    cr_assert_str_eq(res.events, "H200 !a trailer line is too long");
}

/* ---- the lent buffer -------------------------------------------------- */

/* Reads s, lending a buffer of cap bytes only while the reader wants one
 * and taking it back after each head, as upstream.c does. */
static void run_lending(const char *s, size_t n, size_t cap, struct result *res)
{
    enum tg_http_event ev;
    const char *body;
    size_t used, body_len;

    memset(res, 0, sizeof(*res));
    tg_http_reader_init(&reader);
    do {
        if (tg_http_reader_wants_buffer(&reader))
            tg_http_reader_lend(&reader, head_buf, cap);
        ev = tg_http_reader_feed(&reader, s, n > 0 ? 1 : 0, &used, &body,
                                 &body_len);
        s += used;
        n -= used;
        record(res, ev, body, body_len);
        if (ev == TG_HTTP_HEAD) {
            cr_assert_not_null(tg_http_reader_header(&reader, "X-A", &used));
            tg_http_reader_lend(&reader, NULL, 0);
            cr_assert_null(tg_http_reader_header(&reader, "X-A", &used));
        }
    } while ((n > 0 || ev != TG_HTTP_MORE) && ev != TG_HTTP_ERROR);
}

Test(http_reader, a_buffer_lent_only_for_heads_reads_the_same)
{
    static const char answers[] =
        "HTTP/1.1 100 Continue\r\nX-A: 0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nab\r\n0\r\nT: t\r\n\r\n"
        "HTTP/1.1 200 OK\r\nX-A: 2\r\nContent-Length: 1\r\n\r\nc";
    struct result res;

    run_lending(answers, sizeof(answers) - 1, sizeof(head_buf), &res);
    cr_assert_str_eq(res.events, "H200 E+ H200 E+ ");
    cr_assert_eq(res.body_len, 3);
    cr_assert_arr_eq(res.body, "abc", 3);
    /* Between answers and within a head it wants one; in a body not. */
    tg_http_reader_init(&reader);
    cr_assert(tg_http_reader_wants_buffer(&reader));
    tg_http_reader_lend(&reader, head_buf, sizeof(head_buf));
    cr_assert(!tg_http_reader_wants_buffer(&reader));
}

Test(http_reader, a_head_longer_than_the_lent_buffer_is_too_large)
{
    struct result res;

    /* 27 bytes: a buffer of 27 holds it, one of 26 does not. */
    run_lending(TEXT("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n"), 27, &res);
    cr_assert_str_eq(res.events, "H200 ");
    run_lending(TEXT("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n"), 26, &res);
    cr_assert_str_eq(res.events, "!the head is too large");
    run_lending(TEXT("HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"),
                28, &res);
    cr_assert_str_eq(res.events, "!the head is too large");
    run_lending(TEXT("HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n"), 0, &res);
    cr_assert_str_eq(res.events, "!the head is too large");
}

Test(http_reader, taking_the_buffer_back_mid_head_is_an_error)
{
    struct result res;

    run(TEXT("HTTP/1.1 200 OK\r\nX-A"), 0, 0, false, &res);
    cr_assert_str_eq(res.events, "");
    tg_http_reader_lend(&reader, NULL, 0);
    cr_assert_eq(tg_http_reader_close(&reader), TG_HTTP_ERROR);
    cr_assert_str_eq(reader.error, "the head's buffer was taken back");
}
