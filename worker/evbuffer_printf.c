/*
 * evbuffer_printf.c - evbuffer_add_printf without printf for the lines
 * evhttp writes on every response.
 *
 * libevent 2.1's evhttp writes the status line, every header line and every
 * chunk's size line with evbuffer_add_printf. For a chat completion's
 * thirteen headers that is fourteen trips through vsnprintf per response,
 * about 17,000 instructions, one seventh of all a proxied request costs
 * (callgrind; docs/BENCHMARKS.md). libevent calls the function through its
 * PLT, so this definition, in the executable, is the one the dynamic linker
 * binds, as with evhttp_send_error in http_error.c. The three formats evhttp
 * uses are recognized by their text and written by hand; any other format
 * goes to evbuffer_add_vprintf as before, so the function keeps its contract
 * (the number of bytes added, or -1) for every caller.
 */
#include <event2/buffer.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tg_http.h"

/* The formats of libevent 2.1's http.c, byte for byte. */
#define HEADER_LINE "%s: %s\r\n"
#define STATUS_LINE "HTTP/%d.%d %d %s\r\n"
#define CHUNK_LINE  "%x\r\n"

/* A line that fits is built here and added in one evbuffer_add. */
#define LINE_MAX_BYTES 512

struct line {
    char bytes[LINE_MAX_BYTES];
    size_t len;
    bool overflow;
};

static unsigned long fast_lines;

unsigned long tg_http_fast_lines(void)
{
    return fast_lines;
}

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof(l->bytes) - l->len) {
        l->overflow = true;
        return;
    }
    memcpy(l->bytes + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Digits of v in base 10 or 16 (lowercase), with a '-' for negatives.
 * Not json_write.c's tg_format_int: chunk sizes need base 16, and the
 * bench's evhttp floor links this file alone. */
static void put_int(struct line *l, long long v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    unsigned long long u =
        v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    char buf[24], *p = buf + sizeof(buf);

    do {
        *--p = digits[u % base];
        u /= base;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put(l, p, (size_t)(buf + sizeof(buf) - p));
}

static int add_line(struct evbuffer *buf, const struct line *l)
{
    if (l->len > INT_MAX || evbuffer_add(buf, l->bytes, l->len) != 0)
        return -1;
    return (int)l->len;
}

/* A header line too long for the stack: its four parts one by one. */
static int add_long_header(struct evbuffer *buf, const char *key,
                           const char *value)
{
    size_t k = strlen(key), v = strlen(value);

    if (k + v > INT_MAX - 4 || evbuffer_expand(buf, k + v + 4) != 0 ||
        evbuffer_add(buf, key, k) != 0 || evbuffer_add(buf, ": ", 2) != 0 ||
        evbuffer_add(buf, value, v) != 0 || evbuffer_add(buf, "\r\n", 2) != 0)
        return -1;
    return (int)(k + v + 4);
}

static int add_header(struct evbuffer *buf, const char *key, const char *value)
{
    struct line l = {.len = 0};

    put_str(&l, key);
    put(&l, ": ", 2);
    put_str(&l, value);
    put(&l, "\r\n", 2);
    return l.overflow ? add_long_header(buf, key, value) : add_line(buf, &l);
}

static int add_status(struct evbuffer *buf, int major, int minor, int code,
                      const char *reason)
{
    struct line l = {.len = 0};

    put(&l, "HTTP/", 5);
    put_int(&l, major, 10);
    put(&l, ".", 1);
    put_int(&l, minor, 10);
    put(&l, " ", 1);
    put_int(&l, code, 10);
    put(&l, " ", 1);
    put_str(&l, reason);
    put(&l, "\r\n", 2);
    return l.overflow ? -2 : add_line(buf, &l);
}

static int add_chunk_size(struct evbuffer *buf, unsigned size)
{
    struct line l = {.len = 0};

    put_int(&l, size, 16);
    put(&l, "\r\n", 2);
    return add_line(buf, &l);
}

/* The fast path for FMT, or -2 when FMT is not one of evhttp's lines (or a
 * status line too long for the stack, which printf then writes). */
static int add_known(struct evbuffer *buf, const char *fmt, va_list ap)
{
    const char *a, *b;
    int x, y, z;

    if (strcmp(fmt, HEADER_LINE) == 0) {
        a = va_arg(ap, const char *);
        b = va_arg(ap, const char *);
        return add_header(buf, a, b);
    }
    if (strcmp(fmt, STATUS_LINE) == 0) {
        x = va_arg(ap, int);
        y = va_arg(ap, int);
        z = va_arg(ap, int);
        a = va_arg(ap, const char *);
        return add_status(buf, x, y, z, a);
    }
    if (strcmp(fmt, CHUNK_LINE) == 0)
        return add_chunk_size(buf, va_arg(ap, unsigned));
    return -2;
}

int evbuffer_add_printf(struct evbuffer *buf, const char *fmt, ...)
{
    va_list ap, again;
    int n;

    va_start(ap, fmt);
    va_copy(again, ap);
    n = add_known(buf, fmt, ap);
    if (n == -2)
        n = evbuffer_add_vprintf(buf, fmt, again);
    else
        fast_lines++;
    va_end(again);
    va_end(ap);
    return n;
}
