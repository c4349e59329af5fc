/*
 * tg_sse.h - an incremental server-sent events parser (the WHATWG event
 * stream format), for the streams of OpenAI, Anthropic and Gemini.
 *
 * Bytes are fed as they arrive, split anywhere. Lines end with LF, CR or
 * CRLF (a CRLF split across two feeds is one line end); lines starting
 * with ':' are comments; the fields are event, data (several data lines are
 * joined with LF), id and retry; a blank line dispatches the event. An
 * event whose data is larger than the limit is an error, so a hostile
 * upstream cannot make the parser grow without bound.
 */
#ifndef TG_SSE_H
#define TG_SSE_H

#include <stddef.h>

/* Called for each dispatched event that has data; event is "" when the
 * stream named none. Returns 0 to go on, non-zero to stop feeding. */
typedef int tg_sse_fn(void *ctx, const char *event, size_t event_len,
                      const char *data, size_t data_len);

struct tg_sse {
    char *line; /* the line being read */
    size_t line_len, line_cap;
    char *data; /* data lines of the event being read */
    size_t data_len, data_cap;
    char event[64];
    size_t event_len;
    size_t max_bytes; /* limit on line and data size */
    int has_data;
    /* Line-end state: the last byte fed was CR (so a following LF ends no
     * line), or no line has ended yet (only the first may start with a
     * BOM); see sse.c. */
    int was_cr;
};

void tg_sse_init(struct tg_sse *p, size_t max_bytes);

/*
 * Feeds n bytes. Returns 0; a callback's non-zero return value (parsing
 * stops there); or -1 when an event or line exceeds max_bytes, an event
 * name is 64 bytes or more, or memory runs out. After -1 the parser may
 * only be freed. The data passed to the callback is followed by a NUL.
 */
int tg_sse_feed(struct tg_sse *p, const char *bytes, size_t n, tg_sse_fn *cb,
                void *ctx);

/* At the end of the stream: dispatches an event still pending (a stream
 * that ended without its final blank line). Returns as tg_sse_feed. */
int tg_sse_finish(struct tg_sse *p, tg_sse_fn *cb, void *ctx);

void tg_sse_free(struct tg_sse *p);

#endif
