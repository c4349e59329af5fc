/*
 * fuzz_http_reader.c - libFuzzer target for the HTTP/1.1 answer reader
 * (worker/http_reader.c).
 *
 * The first bytes of the input choose a split seed and whether the peer
 * closes at the end; the rest is what the peer sends. It is read in one
 * piece with a buffer lent once, and in random pieces (empty ones
 * included) with a buffer lent only while the reader wants one and taken
 * back after each head, as upstream.c does; both must give the same
 * events, heads, body bytes and error (compared by count and hash). Every
 * event must keep the reader's promises: bytes used within those given,
 * body bytes within the bytes used, the head within its buffer, header
 * values within the head. A broken promise aborts, which libFuzzer reports
 * as a crash.
 */
#include "tg_http_reader.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes at the start of the input that choose the parameters. */
#define PARAM_BYTES 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    size_t n_events;
    uint64_t hash;
    const char *error;
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static uint64_t hash_bytes(uint64_t h, const void *s, size_t n)
{
    const unsigned char *b = s;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3u; /* FNV-1a */
    return h;
}

static void check_header(const struct tg_http_reader *r, const char *name)
{
    size_t n = 0;
    const char *v = tg_http_reader_header(r, name, &n);

    if (v != NULL)
        check(v >= r->head && v + n <= r->head + r->head_len);
}

/* Body bytes are hashed as one stream, so that where a piece ended does
 * not count; every other event is hashed with a marker. */
static void record(const struct tg_http_reader *r, enum tg_http_event ev,
                   const char *body, size_t body_len, struct outcome *o)
{
    uint8_t marker = (uint8_t)ev;

    check(r->fill <= TG_HTTP_HEAD_MAX && r->head_len <= r->fill);
    if (ev == TG_HTTP_BODY) {
        check(body_len > 0);
        o->hash = hash_bytes(o->hash, body, body_len);
        return;
    }
    o->n_events++;
    o->hash = hash_bytes(o->hash, &marker, 1);
    if (ev == TG_HTTP_HEAD) {
        check(r->status >= 200 && r->status <= 599 && r->head_len > 0);
        o->hash = hash_bytes(o->hash, r->head, r->head_len);
        check_header(r, "Content-Length");
        check_header(r, "connection");
    } else if (ev == TG_HTTP_END) {
        o->hash = hash_bytes(o->hash, &r->is_keep_alive, 1);
    } else if (ev == TG_HTTP_ERROR) {
        check(r->error != NULL);
        o->error = r->error;
    }
}

static char head_buf[TG_HTTP_HEAD_MAX];

/* Feeds one piece to its end; false after an error. When is_lazy, the
 * buffer is lent only while wanted. */
static bool feed(struct tg_http_reader *r, const char *s, size_t n,
                 bool is_lazy, struct outcome *o)
{
    enum tg_http_event ev;
    const char *body;
    size_t used, body_len;

    do {
        if (is_lazy && tg_http_reader_wants_buffer(r))
            tg_http_reader_lend(r, head_buf, sizeof(head_buf));
        ev = tg_http_reader_feed(r, s, n, &used, &body, &body_len);
        check(used <= n);
        if (ev == TG_HTTP_BODY)
            check(body >= s && body + body_len <= s + used);
        else
            check(body_len == 0);
        s += used;
        n -= used;
        /* How often MORE comes depends on the pieces: not recorded. */
        if (ev != TG_HTTP_MORE)
            record(r, ev, body, body_len, o);
        if (is_lazy && ev == TG_HTTP_HEAD)
            tg_http_reader_lend(r, NULL, 0);
    } while (ev != TG_HTTP_MORE && ev != TG_HTTP_ERROR);
    check(ev == TG_HTTP_ERROR || n == 0);
    return ev != TG_HTTP_ERROR;
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

/* seed 0: one piece; otherwise random pieces of 0 to 16 bytes, with an
 * occasional long one. After an error the rest is fed anyway: the reader
 * must stay memory-safe and keep its error. */
static void read_all(const char *s, size_t n, uint32_t seed, bool is_closed,
                     struct outcome *o)
{
    static struct tg_http_reader r;
    size_t off = 0, len, used, body_len;
    const char *body, *error;
    bool is_ok = true;

    tg_http_reader_init(&r);
    if (seed == 0)
        tg_http_reader_lend(&r, head_buf, sizeof(head_buf));
    while (off < n && is_ok) {
        uint32_t x = seed ? next_random(&seed) : 0;

        len = seed == 0 ? n - off : x % 17;
        if (seed != 0 && ((x >> 20) % 16 == 0 || len > n - off))
            len = x % (n - off + 1);
        is_ok = feed(&r, s + off, len, seed != 0, o);
        off += len;
    }
    if (!is_ok) {
        error = r.error;
        check(tg_http_reader_feed(&r, s, n, &used, &body, &body_len) ==
              TG_HTTP_ERROR);
        check(used == 0 && strcmp(r.error, error) == 0);
        return;
    }
    if (is_closed)
        record(&r, tg_http_reader_close(&r), NULL, 0, o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole = {0}, split = {0};
    const char *s = (const char *)data + PARAM_BYTES;
    uint32_t seed;
    bool is_closed;
    size_t n;

    if (size < PARAM_BYTES)
        return 0;
    n = size - PARAM_BYTES;
    seed = ((uint32_t)data[0] << 8 | data[1]) + 1;
    is_closed = data[2] & 1;

    read_all(s, n, 0, is_closed, &whole);
    read_all(s, n, seed, is_closed, &split);
    check(whole.n_events == split.n_events && whole.hash == split.hash);
    check((whole.error == NULL) == (split.error == NULL));
    check(whole.error == NULL || strcmp(whole.error, split.error) == 0);
    return 0;
}
