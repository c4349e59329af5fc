/*
 * json_write.c - writing JSON strings into evbuffers (see tg_json.h).
 *
 * This is on the streaming hot path, so bytes that need no escaping go out
 * in runs, one evbuffer_add per run, never byte by byte, and a short string
 * that needs no escaping goes out with its quotes in a single append. A run of
 * non-ASCII bytes is checked whole with tg_json_is_utf8 and passes through when
 * valid (a multi-byte sequence never contains an ASCII byte, so it cannot
 * straddle two runs); only an invalid run is walked sequence by sequence, and
 * each byte that starts no valid sequence becomes \ufffd.
 */
#include "tg_json.h"

#include "tg.h"

#include <event2/buffer.h>
#include <string.h>

#define REPLACEMENT "\\ufffd"

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c == 0x7F;
}

/* Appends s[from..to); 0 or -1 like evbuffer_add. */
static int add_run(struct evbuffer *out, const char *s, size_t from, size_t to)
{
    return to > from ? evbuffer_add(out, s + from, to - from) : 0;
}

static int add_escape(struct evbuffer *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char buf[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};

    switch (c) {
    case '"': return evbuffer_add(out, "\\\"", 2);
    case '\\': return evbuffer_add(out, "\\\\", 2);
    case '\b': return evbuffer_add(out, "\\b", 2);
    case '\f': return evbuffer_add(out, "\\f", 2);
    case '\n': return evbuffer_add(out, "\\n", 2);
    case '\r': return evbuffer_add(out, "\\r", 2);
    case '\t': return evbuffer_add(out, "\\t", 2);
    default: return evbuffer_add(out, buf, sizeof(buf));
    }
}

/* Length a UTF-8 lead byte announces; 0 for a byte that leads nothing. */
static size_t lead_len(unsigned char c)
{
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* A run of bytes >= 0x80 that is not valid UTF-8 as a whole. */
static int add_repaired(struct evbuffer *out, const char *s, size_t n)
{
    size_t i = 0, run = 0, k;

    while (i < n) {
        k = lead_len((unsigned char)s[i]);
        if (k != 0 && k <= n - i && tg_json_is_utf8(s + i, k)) {
            i += k;
            continue;
        }
        if (add_run(out, s, run, i) != 0 ||
            evbuffer_add(out, REPLACEMENT, sizeof(REPLACEMENT) - 1) != 0)
            return -1;
        run = ++i;
    }
    return add_run(out, s, run, n);
}

/* End of the run of bytes >= 0x80 starting at s[i]. */
static size_t high_run_end(const unsigned char *u, size_t i, size_t n)
{
    while (i < n && u[i] >= 0x80)
        i++;
    return i;
}

static int write_body(struct evbuffer *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0, end;

    while (i < n) {
        if (u[i] >= 0x80) {
            end = high_run_end(u, i, n);
            if (!tg_json_is_utf8(s + i, end - i)) {
                if (add_run(out, s, run, i) != 0 ||
                    add_repaired(out, s + i, end - i) != 0)
                    return -1;
                run = end;
            }
            i = end;
        } else if (needs_escape(u[i])) {
            if (add_run(out, s, run, i) != 0 || add_escape(out, u[i]) != 0)
                return -1;
            run = ++i;
        } else {
            i++;
        }
    }
    return add_run(out, s, run, n);
}

/* Strings at most this long that need no escaping go out in one append. */
#define PLAIN_MAX 254

static bool is_plain(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i;

    for (i = 0; i < n; i++)
        if (u[i] >= 0x80 || needs_escape(u[i]))
            return false;
    return true;
}

int tg_json_write_str(struct evbuffer *out, const char *s, size_t n)
{
    char quoted[PLAIN_MAX + 2];

    /* The common case: a short ASCII string (an id, a model, a role). */
    if (n <= PLAIN_MAX && is_plain(s, n)) {
        quoted[0] = '"';
        if (n > 0) /* an empty string may come as NULL */
            memcpy(quoted + 1, s, n);
        quoted[n + 1] = '"';
        return evbuffer_add(out, quoted, n + 2) == 0 ? TG_OK : TG_NOMEM;
    }
    /* One reservation up front, so the runs below rarely reallocate. */
    if (n < SIZE_MAX - 2 && evbuffer_expand(out, n + 2) != 0)
        return TG_NOMEM;
    if (evbuffer_add(out, "\"", 1) != 0 || write_body(out, s, n) != 0 ||
        evbuffer_add(out, "\"", 1) != 0)
        return TG_NOMEM;
    return TG_OK;
}

/* Writes the digits of v, at least `width` of them (zeros in front),
 * ending at end; returns where they start. printf costs more than the
 * rest of a log line. */
static char *digits_of(uint64_t v, int width, char *end)
{
    char *p = end;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v != 0 || width > 0);
    return p;
}

size_t tg_format_int(char *out, int64_t v)
{
    char buf[24], *end = buf + sizeof(buf);
    char *p = digits_of(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 1, end);
    size_t n;

    if (v < 0)
        *--p = '-';
    n = (size_t)(end - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

void tg_json_write_int(struct evbuffer *out, int64_t v)
{
    char buf[24];

    evbuffer_add(out, buf, tg_format_int(buf, v));
}

/* Writes v / unit with `digits` decimals ending at end; returns where the
 * text starts. end needs 48 bytes before it. */
static char *fixed_of(int64_t v, int64_t unit, int digits, char *end)
{
    uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = digits_of(a % (uint64_t)unit, digits, end);

    *--p = '.';
    p = digits_of(a / (uint64_t)unit, 1, p);
    if (v < 0)
        *--p = '-';
    return p;
}

void tg_json_write_fixed(struct evbuffer *out, int64_t v, int64_t unit,
                         int digits)
{
    char buf[48], *end = buf + sizeof(buf);
    char *p = fixed_of(v, unit, digits, end);

    evbuffer_add(out, p, (size_t)(end - p));
}

void tg_json_write_detail(struct evbuffer *out, const char *message)
{
    TG_ADD_LIT(out, "{\"detail\":");
    tg_json_write_str(out, message, strlen(message));
    TG_ADD_LIT(out, "}");
}

/* ---- buffered ----------------------------------------------------------- */

void tg_json_out_init(struct tg_json_out *o, struct evbuffer *buf)
{
    o->buf = buf;
    o->len = 0;
}

void tg_json_out_flush(struct tg_json_out *o)
{
    if (o->len > 0)
        evbuffer_add(o->buf, o->bytes, o->len);
    o->len = 0;
}

/* Room for n more bytes in o->bytes, flushing first if need be; false when
 * n alone is more than it holds. */
static bool room(struct tg_json_out *o, size_t n)
{
    if (n > sizeof(o->bytes) - o->len)
        tg_json_out_flush(o);
    return n <= sizeof(o->bytes);
}

void tg_json_out_raw(struct tg_json_out *o, const char *s, size_t n)
{
    if (!room(o, n)) {
        evbuffer_add(o->buf, s, n);
        return;
    }
    if (n > 0) /* s may be NULL then */
        memcpy(o->bytes + o->len, s, n);
    o->len += n;
}

void tg_json_out_str(struct tg_json_out *o, const char *s, size_t n)
{
    char *p;

    if (n > PLAIN_MAX || !is_plain(s, n) || !room(o, n + 2)) {
        tg_json_out_flush(o);
        tg_json_write_str(o->buf, s, n);
        return;
    }
    p = o->bytes + o->len;
    p[0] = '"';
    if (n > 0) /* an empty string may come as NULL */
        memcpy(p + 1, s, n);
    p[n + 1] = '"';
    o->len += n + 2;
}

void tg_json_out_int(struct tg_json_out *o, int64_t v)
{
    char buf[24];

    tg_json_out_raw(o, buf, tg_format_int(buf, v));
}

void tg_json_out_fixed(struct tg_json_out *o, int64_t v, int64_t unit,
                       int digits)
{
    char buf[48], *end = buf + sizeof(buf);
    char *p = fixed_of(v, unit, digits, end);

    tg_json_out_raw(o, p, (size_t)(end - p));
}
