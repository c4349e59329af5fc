/*
 * fuzz_eventstream.c - libFuzzer target for the event stream decoder.
 *
 * The input is decoded message after message, as a stream would be, twice:
 * once as it is, and once with every prelude and message CRC repaired so
 * that the fuzzer reaches the length checks and the header parser instead of
 * stopping at the checksums. Each accepted message must lie inside the bytes
 * left, advance the stream, point only into itself and, when its headers are
 * all strings, re-encode to the same bytes. A broken invariant aborts.
 */
#include "tg.h"
#include "tg_eventstream.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ERR_CAP 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* True when p[0..n) lies inside [lo, hi). */
static bool is_inside(const void *p, size_t n, const uint8_t *lo,
                      const uint8_t *hi)
{
    const uint8_t *q = p;

    return q >= lo && q <= hi && n <= (size_t)(hi - q);
}

/* tg_es_find must return h or an earlier namesake, and tg_es_header_is
 * must agree with the first one's value. Names with a NUL are skipped: the
 * lookups take C strings. */
static void check_lookup(const struct tg_es_message *msg,
                         const struct tg_es_header *h)
{
    const struct tg_es_header *first;
    char name[256], *value;

    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    if (strlen(name) != h->name_len)
        return;
    first = tg_es_find(msg, name);
    check(first != NULL && first <= h);
    if (first != h || h->type != TG_ES_STRING)
        return;
    value = strndup((const char *)h->bytes, h->bytes_len);
    check(value != NULL);
    check(tg_es_header_is(msg, name, value) == (strlen(value) == h->bytes_len));
    free(value);
}

static void check_headers(const struct tg_es_message *msg, const uint8_t *lo,
                          const uint8_t *hi)
{
    const uint8_t *headers_end = lo + 12 + msg->headers_length;

    check(msg->n_headers <= TG_ES_MAX_HEADERS);
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct tg_es_header *h = &msg->headers[i];

        check(h->name_len >= 1 && h->name_len <= 255);
        check(is_inside(h->name, h->name_len, lo + 12, headers_end));
        check((unsigned)h->type <= TG_ES_UUID);
        if (h->bytes != NULL)
            check(is_inside(h->bytes, h->bytes_len, lo + 12, headers_end));
        if (h->type == TG_ES_UUID)
            check(h->bytes_len == 16);
        check_lookup(msg, h);
    }
    check(is_inside(msg->payload, msg->payload_len, headers_end, hi - 4));
}

/* A message of string headers only must re-encode to its own bytes. */
static void check_reencodes(const struct tg_es_message *msg,
                            const uint8_t *wire)
{
    const char *names[TG_ES_MAX_HEADERS], *values[TG_ES_MAX_HEADERS];
    char *copies[2 * TG_ES_MAX_HEADERS];
    struct evbuffer *out;
    size_t i, n = 0;
    bool encodable = true;

    for (i = 0; i < msg->n_headers; i++) {
        const struct tg_es_header *h = &msg->headers[i];

        /* The encoder takes C strings, so no NUL may hide inside. */
        if (h->type != TG_ES_STRING || memchr(h->name, 0, h->name_len) ||
            memchr(h->bytes, 0, h->bytes_len))
            encodable = false;
    }
    if (!encodable)
        return;
    for (i = 0; i < msg->n_headers; i++) {
        copies[n++] = strndup(msg->headers[i].name, msg->headers[i].name_len);
        copies[n++] = strndup((const char *)msg->headers[i].bytes,
                              msg->headers[i].bytes_len);
        check(copies[n - 2] != NULL && copies[n - 1] != NULL);
        names[i] = copies[n - 2];
        values[i] = copies[n - 1];
    }
    out = evbuffer_new();
    check(out != NULL);
    check(tg_es_encode(out, names, values, msg->n_headers, msg->payload,
                       msg->payload_len) == 0);
    check(evbuffer_get_length(out) == msg->total_length);
    check(memcmp(evbuffer_pullup(out, -1), wire, msg->total_length) == 0);
    evbuffer_free(out);
    for (i = 0; i < n; i++)
        free(copies[i]);
}

/* Decodes p[0..len) message by message until it stops. */
static void decode_all(const uint8_t *p, size_t len)
{
    struct tg_es_message msg;
    char err[ERR_CAP];
    size_t off = 0, consumed;
    int rc;

    for (;;) {
        consumed = 1;
        err[0] = '\0';
        rc = tg_es_decode(p + off, len - off, &msg, &consumed, err, ERR_CAP);
        if (rc != TG_OK) {
            check(consumed == 0);
            check(rc == TG_AGAIN || (rc == TG_ERROR && err[0] != '\0'));
            /* Waiting is right only when the message is not all there. */
            if (rc == TG_AGAIN)
                check(len - off < 12 || get_be32(p + off) > len - off);
            return;
        }
        check(consumed >= 16 && consumed <= len - off);
        check(consumed == msg.total_length);
        check(msg.payload_len == consumed - 16 - msg.headers_length);
        check_headers(&msg, p + off, p + off + consumed);
        check_reencodes(&msg, p + off);
        off += consumed;
    }
}

/* Rewrites each prelude and message CRC to the right value, walking the
 * declared lengths, so most mutations reach past the checksums. */
static void repair_crcs(uint8_t *p, size_t len)
{
    size_t off = 0;
    uint32_t total;

    while (len - off >= 12) {
        put_be32(p + off + 8, tg_crc32(0, p + off, 8));
        total = get_be32(p + off);
        if (total < 16 || total > len - off)
            return;
        put_be32(p + off + total - 4, tg_crc32(0, p + off, total - 4));
        off += total;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);

    decode_all(data, size);
    check(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    repair_crcs(copy, size);
    decode_all(copy, size);
    free(copy);
    return 0;
}
