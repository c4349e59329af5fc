/*
 * fuzz_sse.c - libFuzzer target for the SSE parser (worker/sse.c).
 *
 * The first bytes of the input choose a limit, a split seed and an event
 * after which the callback stops; the rest is the stream. It is parsed three
 * ways: by a plain whole-buffer reading of the same rules written here, and
 * by the parser in one piece and in random pieces. All three must give the
 * same events (compared by count and hash) and the same return code; every
 * event must be well formed and the buffers must stay within the limit.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include "tg_sse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bytes at the start of the input that choose the parameters. */
#define PARAM_BYTES 4

/* The value the callback returns to stop the parser. */
#define STOP_RC 7

/* Longest event name the parser accepts (its buffer holds a NUL too). */
#define MAX_EVENT_LEN (sizeof(((struct tg_sse *)0)->event) - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t limits[] = {0, 1, 5, 16, 63, 64, 100, 1000, 1u << 20};

struct outcome {
    size_t max_bytes;
    size_t stop_after; /* stop at this many events; 0: never */
    size_t n;
    uint64_t hash;
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

static int record(void *ctx, const char *event, size_t event_len,
                  const char *data, size_t data_len)
{
    struct outcome *o = ctx;

    check(event_len <= MAX_EVENT_LEN && data_len <= o->max_bytes);
    check(event_len > 0 || event[0] == '\0');
    check(memchr(event, '\r', event_len) == NULL);
    check(memchr(event, '\n', event_len) == NULL);
    check(memchr(data, '\r', data_len) == NULL);
    o->hash = hash_bytes(o->hash, &event_len, sizeof(event_len));
    o->hash = hash_bytes(o->hash, event, event_len);
    o->hash = hash_bytes(o->hash, &data_len, sizeof(data_len));
    o->hash = hash_bytes(o->hash, data, data_len);
    o->n++;
    return o->stop_after != 0 && o->n == o->stop_after ? STOP_RC : 0;
}

/* ---- The reference: the same rules over the whole buffer at once ---- */

struct ref {
    char event[MAX_EVENT_LEN + 1];
    size_t event_len;
    char *data;
    size_t data_len;
    bool has_data;
};

static int ref_dispatch(struct ref *r, struct outcome *o)
{
    bool has_data = r->has_data;
    size_t event_len = r->event_len, data_len = r->data_len;

    r->has_data = false;
    r->event_len = 0;
    r->data_len = 0;
    if (!has_data)
        return 0;
    r->event[event_len] = '\0';
    r->data[data_len] = '\0';
    return record(o, r->event, event_len, r->data, data_len);
}

/* r->data holds the whole input's size, more than any event's data. */
static int ref_field(struct ref *r, const char *line, size_t n,
                     struct outcome *o)
{
    size_t name_len = 0, value_len;
    const char *value;

    while (name_len < n && line[name_len] != ':')
        name_len++;
    value = line + name_len + (name_len < n ? 1 : 0);
    value_len = n - (size_t)(value - line);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        if (value_len > MAX_EVENT_LEN)
            return -1;
        memcpy(r->event, value, value_len);
        r->event_len = value_len;
    } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (r->data_len + r->has_data + value_len > o->max_bytes)
            return -1;
        if (r->has_data)
            r->data[r->data_len++] = '\n';
        memcpy(r->data + r->data_len, value, value_len);
        r->data_len += value_len;
        r->has_data = true;
    }
    return 0;
}

/* One line without its line end; the limit counts a leading BOM. */
static int ref_line(struct ref *r, const char *line, size_t n, bool is_first,
                    struct outcome *o)
{
    if (n > o->max_bytes)
        return -1;
    if (is_first && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        n -= 3;
    }
    if (n == 0)
        return ref_dispatch(r, o);
    if (line[0] == ':')
        return 0;
    return ref_field(r, line, n, o);
}

/* The last line needs no line end, and the end of the input dispatches. */
static int ref_parse(const char *s, size_t n, struct outcome *o)
{
    struct ref r = {.data = malloc(n + 1)};
    size_t i = 0, end;
    int rc = 0;

    check(r.data != NULL);
    while (i < n && rc == 0) {
        for (end = i; end < n && s[end] != '\r' && s[end] != '\n'; end++)
            ;
        rc = ref_line(&r, s + i, end - i, i == 0, o);
        if (end + 1 < n && s[end] == '\r' && s[end + 1] == '\n')
            end++;
        i = end + 1;
    }
    if (rc == 0)
        rc = ref_dispatch(&r, o);
    free(r.data);
    return rc;
}

/* ---- The parser under test ---- */

static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void check_bounded(const struct tg_sse *p, size_t max_bytes)
{
    check(p->line_cap <= max_bytes + 1 && p->data_cap <= max_bytes + 1);
    check(p->line_len <= max_bytes && p->data_len <= max_bytes);
    check(p->event_len <= MAX_EVENT_LEN);
}

/* seed 0: one piece; otherwise random pieces of 0 to 16 bytes, with an
 * occasional long one. After an error the rest is fed anyway: the parser
 * must stay memory-safe and bounded. */
static int parse(const char *s, size_t n, uint32_t seed, struct outcome *o)
{
    struct tg_sse p;
    size_t off = 0, len;
    int rc = 0;

    tg_sse_init(&p, o->max_bytes);
    while (off < n && rc == 0) {
        uint32_t x = seed ? next_random(&seed) : 0;

        len = seed == 0 ? n - off : x % 17;
        if (seed != 0 && ((x >> 20) % 16 == 0 || len > n - off))
            len = x % (n - off + 1);
        rc = tg_sse_feed(&p, s + off, len, record, o);
        check_bounded(&p, o->max_bytes);
        off += len;
    }
    if (rc == 0)
        rc = tg_sse_finish(&p, record, o);
    else if (rc == -1 && off < n) {
        struct outcome after = *o;

        after.stop_after = 0;
        tg_sse_feed(&p, s + off, n - off, record, &after);
        check_bounded(&p, o->max_bytes);
    }
    tg_sse_free(&p);
    check(p.line == NULL && p.data == NULL);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome want = {0}, whole, split;
    const char *s = (const char *)data + PARAM_BYTES;
    size_t n;
    uint32_t seed;
    int rc;

    if (size < PARAM_BYTES)
        return 0;
    n = size - PARAM_BYTES;
    want.max_bytes = limits[data[0] % (sizeof(limits) / sizeof(limits[0]))];
    want.stop_after = data[1] % 8;
    seed = ((uint32_t)data[2] << 8 | data[3]) + 1;
    whole = want;
    split = want;

    rc = ref_parse(s, n, &want);
    check(parse(s, n, 0, &whole) == rc);
    check(whole.n == want.n && whole.hash == want.hash);
    check(parse(s, n, seed, &split) == rc);
    check(split.n == want.n && split.hash == want.hash);
    return 0;
}
