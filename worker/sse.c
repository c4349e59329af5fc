/*
 * sse.c - the incremental server-sent events parser (see tg_sse.h).
 *
 * Bytes are scanned for line ends. A line wholly inside one feed is parsed
 * where it lies; only a line split across feeds is gathered in p->line. Each
 * line is then interpreted as the WHATWG "event stream interpretation" says.
 * Differences from the spec, on purpose: tg_sse_finish dispatches a pending
 * event; id and retry are parsed and dropped (the gateway neither reconnects
 * nor resumes); bytes are passed through undecoded (the JSON layer checks
 * UTF-8, and the line syntax is ASCII, which UTF-8 sequences never contain).
 */
#include "tg_sse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First allocation for the line and data buffers; they double from here. */
#define SSE_MIN_CAP 256

/* The UTF-8 byte order mark a stream may start with. */
#define SSE_BOM     "\xEF\xBB\xBF"
#define SSE_BOM_LEN 3

/*
 * Values of p->was_cr. Besides "the last byte was CR" it records whether a
 * line has ended yet: only the first line of the stream may start with a BOM,
 * and that line may arrive over several feeds.
 */
enum sse_scan {
    SSE_AFTER_OTHER = 0, /* last byte was not CR */
    SSE_AFTER_CR = 1,    /* an LF that comes next ends no line */
    SSE_AT_START = 2,    /* no line has ended yet */
};

void tg_sse_init(struct tg_sse *p, size_t max_bytes)
{
    memset(p, 0, sizeof(*p));
    p->max_bytes = max_bytes;
    p->was_cr = SSE_AT_START;
}

void tg_sse_free(struct tg_sse *p)
{
    size_t max_bytes = p->max_bytes;

    free(p->line);
    free(p->data);
    /* Leaves a fresh parser, so a second free or a reuse is harmless. */
    tg_sse_init(p, max_bytes);
}

/*
 * Makes *buf hold at least `need` bytes, doubling, but never past
 * max_bytes + 1 (room for a NUL), so that memory stays within the limit the
 * caller set. Callers check need against the limit first.
 */
static int reserve(char **buf, size_t *cap, size_t need, size_t max_bytes)
{
    size_t ceiling = max_bytes < SIZE_MAX ? max_bytes + 1 : SIZE_MAX;
    size_t new_cap;
    char *grown;

    if (need <= *cap)
        return 0;
    new_cap = *cap < SSE_MIN_CAP ? SSE_MIN_CAP : *cap;
    while (new_cap < need)
        new_cap = new_cap > SIZE_MAX / 2 ? need : new_cap * 2;
    if (new_cap > ceiling)
        new_cap = ceiling;
    grown = realloc(*buf, new_cap);
    if (grown == NULL)
        return -1;
    *buf = grown;
    *cap = new_cap;
    return 0;
}

/* Adds bytes to the line being gathered across feeds. */
static int append_line(struct tg_sse *p, const char *s, size_t n)
{
    /* p->line_len <= max_bytes always holds, so this cannot wrap. */
    if (n > p->max_bytes - p->line_len)
        return -1;
    if (n == 0)
        return 0;
    if (reserve(&p->line, &p->line_cap, p->line_len + n, p->max_bytes) < 0)
        return -1;
    memcpy(p->line + p->line_len, s, n);
    p->line_len += n;
    return 0;
}

/* Hands the event read so far to the callback, if it has data, and starts
 * the next one. */
static int dispatch(struct tg_sse *p, tg_sse_fn *cb, void *ctx)
{
    size_t event_len = p->event_len, data_len = p->data_len;
    bool has_data = p->has_data;

    /* Reset first: when the callback stops the stream, nothing is left
     * pending for tg_sse_finish to dispatch a second time. The buffers keep
     * their bytes until the next field is read. */
    p->event_len = 0;
    p->data_len = 0;
    p->has_data = 0;
    if (!has_data)
        return 0;
    return cb(ctx, event_len > 0 ? p->event : "", event_len,
              data_len > 0 ? p->data : "", data_len);
}

/* "data": lines of one event are joined with LF. The buffer keeps a NUL
 * after the data for callers that want a C string. */
static int append_data(struct tg_sse *p, const char *value, size_t n)
{
    size_t sep = p->has_data ? 1 : 0;

    if (n > p->max_bytes || p->data_len + sep > p->max_bytes - n)
        return -1;
    if (reserve(&p->data, &p->data_cap, p->data_len + sep + n + 1,
                p->max_bytes) < 0)
        return -1;
    if (sep)
        p->data[p->data_len++] = '\n';
    if (n > 0)
        memcpy(p->data + p->data_len, value, n);
    p->data_len += n;
    p->data[p->data_len] = '\0';
    p->has_data = 1;
    return 0;
}

/*
 * "event": a name too long for p->event is an error rather than cut short.
 * A cut name could read as another event, or two names as one; providers'
 * names are short (content_block_delta), so only a broken or hostile
 * upstream sends a longer one.
 */
static int set_event(struct tg_sse *p, const char *value, size_t n)
{
    if (n >= sizeof(p->event))
        return -1;
    if (n > 0)
        memcpy(p->event, value, n);
    p->event[n] = '\0';
    p->event_len = n;
    return 0;
}

static bool is_field(const char *name, size_t n, const char *field)
{
    return n == strlen(field) && memcmp(name, field, n) == 0;
}

/* Interprets one line without its line end (WHATWG "process the field"). */
static int process_line(struct tg_sse *p, const char *line, size_t n,
                        tg_sse_fn *cb, void *ctx)
{
    const char *colon, *value;
    size_t name_len, value_len;

    if (n == 0)
        return dispatch(p, cb, ctx);
    if (line[0] == ':')
        return 0; /* a comment: upstreams send them as keep-alives */
    colon = memchr(line, ':', n);
    name_len = colon != NULL ? (size_t)(colon - line) : n;
    value = colon != NULL ? colon + 1 : line + n;
    value_len = n - (size_t)(value - line);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (is_field(line, name_len, "data"))
        return append_data(p, value, value_len);
    if (is_field(line, name_len, "event"))
        return set_event(p, value, value_len);
    return 0; /* id, retry and unknown fields */
}

/*
 * Ends the current line: s[0..n) is its last part, before the line end.
 * The limit applies to the whole line, a leading BOM included, wherever the
 * line lies, so the outcome does not depend on how the bytes were split.
 */
static int end_line(struct tg_sse *p, const char *s, size_t n, bool is_first,
                    tg_sse_fn *cb, void *ctx)
{
    const char *line = s;
    size_t len = n;

    if (p->line_len > 0) {
        if (append_line(p, s, n) < 0)
            return -1;
        line = p->line;
        len = p->line_len;
    } else if (n > p->max_bytes) {
        return -1;
    }
    /* The bytes stay valid in p->line until the next append. */
    p->line_len = 0;
    if (is_first && len >= SSE_BOM_LEN &&
        memcmp(line, SSE_BOM, SSE_BOM_LEN) == 0) {
        line += SSE_BOM_LEN;
        len -= SSE_BOM_LEN;
    }
    return process_line(p, line, len, cb, ctx);
}

/* Offset of the first CR or LF in s[0..n), or n when there is none. */
static size_t find_line_end(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n')
            break;
    return i;
}

/* Lines that end inside this feed are parsed where they lie; the bytes after
 * the last line end wait in p->line for the next feed. */
int tg_sse_feed(struct tg_sse *p, const char *bytes, size_t n, tg_sse_fn *cb,
                void *ctx)
{
    size_t i = 0, len;
    bool is_first;
    int rc;

    while (i < n) {
        if (p->was_cr == SSE_AFTER_CR) {
            p->was_cr = SSE_AFTER_OTHER;
            if (bytes[i] == '\n') { /* the second half of a CRLF */
                i++;
                continue;
            }
        }
        len = find_line_end(bytes + i, n - i);
        if (len == n - i)
            return append_line(p, bytes + i, len);
        is_first = p->was_cr == SSE_AT_START;
        p->was_cr = bytes[i + len] == '\r' ? SSE_AFTER_CR : SSE_AFTER_OTHER;
        rc = end_line(p, bytes + i, len, is_first, cb, ctx);
        i += len + 1;
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tg_sse_finish(struct tg_sse *p, tg_sse_fn *cb, void *ctx)
{
    bool is_first = p->was_cr == SSE_AT_START;
    int rc;

    /* The stream is over: what follows would be a new stream. */
    p->was_cr = SSE_AT_START;
    if (p->line_len > 0) {
        rc = end_line(p, "", 0, is_first, cb, ctx);
        if (rc != 0)
            return rc;
    }
    return dispatch(p, cb, ctx);
}
