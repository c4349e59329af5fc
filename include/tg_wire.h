/*
 * tg_wire.h - a provider's wire format, for the HTTP back (back_http.c).
 *
 * back_http.c does what every HTTP provider shares: it sends the request
 * through the worker's upstream pools, frames the answer (SSE, AWS event
 * stream, or one JSON body), maps failures to statuses, and ends every call
 * with exactly one terminal event. A provider file (back_openai.c, ...)
 * supplies a struct tg_wire: how to encode the canonical request, and how
 * to decode a body, an SSE event or an event-stream message into canonical
 * events, which it hands to tg_wire_emit.
 *
 * Decoders return TG_OK; TG_ERROR when tg_wire_emit said stop (return it
 * at once: the call is over); TG_DECLINED when the answer is malformed.
 */
#ifndef TG_WIRE_H
#define TG_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "tg_arena.h"
#include "tg_back.h"
#include "tg_canon.h"
#include "tg_eventstream.h"
#include "tg_sse.h"
#include "tg_upstream.h"

struct evbuffer;

#define TG_WIRE_MAX_HEADERS 12
#define TG_WIRE_MAX_TOOLS   128

enum tg_framing {
    TG_FRAMING_SSE,
    TG_FRAMING_EVENTSTREAM,
};

/* The HTTP request a wire encodes. */
struct tg_wire_request {
    char path[1024]; /* after base_url's path, with any query */
    struct tg_up_header headers[TG_WIRE_MAX_HEADERS];
    size_t n_headers;
    struct evbuffer *body; /* owned by the call; filled by encode */
};

/* One call to an HTTP provider, as its wire sees it. */
struct tg_wire_call {
    struct tg_call *call;
    const struct tg_wire *wire;
    struct tg_up_req *up;
    struct tg_arena arena; /* decoder scratch; lives as long as the call */
    int status;            /* the upstream's HTTP status */
    struct evbuffer *body; /* a whole body: non-streaming or an error */
    struct tg_sse sse;
    struct evbuffer *frames; /* event-stream bytes not yet decoded */
    bool is_stream;
    bool has_content;       /* content reached the client (no retry after) */
    bool is_complete;       /* the wire saw the answer's proper end */
    bool is_finished;       /* the terminal event went out */
    bool may_fail_over;     /* the failure is one a fallback may cure */
    int64_t retry_after_ms; /* the answer's Retry-After, or -1 */
    /* What decoders share. */
    bool is_tool_open[TG_WIRE_MAX_TOOLS];
    int n_tools;
    struct tg_usage usage;
    bool has_usage;
};

struct tg_wire {
    enum tg_provider_type type;
    enum tg_framing framing;
    /* Fills req (path, headers, body) for w->call. TG_ERROR when the
     * request cannot be expressed in this wire format. */
    int (*encode)(struct tg_wire_call *w, struct tg_wire_request *req);
    /* A complete 2xx non-streaming body. */
    int (*decode_body)(struct tg_wire_call *w, const char *body, size_t len);
    /* One SSE event (framing SSE). */
    int (*decode_sse)(struct tg_wire_call *w, const char *event,
                      size_t event_len, const char *data, size_t len);
    /* One event-stream message (framing EVENTSTREAM). */
    int (*decode_frame)(struct tg_wire_call *w, const struct tg_es_message *m);
    /* The readable message of a non-2xx answer, into out. */
    void (*decode_error)(int status, const char *body, size_t len, char *out,
                         size_t cap);
};

/*
 * Hands a decoded event to the request path. Returns TG_OK, or TG_ERROR
 * when the call must stop (the client has gone): the decoder returns at
 * once without touching w again.
 */
int tg_wire_emit(struct tg_wire_call *w, const struct tg_event *ev);

/* Helpers for decoders. */
int tg_wire_text(struct tg_wire_call *w, const char *text, size_t len);
int tg_wire_tool_start(struct tg_wire_call *w, int index, struct tg_str id,
                       struct tg_str name);
int tg_wire_tool_delta(struct tg_wire_call *w, int index, const char *json,
                       size_t len);
/* Ends every tool call still open, then reports the stop reason. */
int tg_wire_stop(struct tg_wire_call *w, enum tg_stop_reason reason);
/* Records usage (sent once, when the call ends). */
void tg_wire_usage(struct tg_wire_call *w, int64_t prompt, int64_t completion);

/* Adds a header to req; name and value must outlive the request. */
void tg_wire_header(struct tg_wire_request *req, const char *name,
                    const char *value);

/* For decode_error: the first string at one of the dotted paths
 * ("error.message") of a JSON error body (or of its first element when it
 * is an array), else "HTTP <status>". */
void tg_wire_error_text(int status, const char *body, size_t len,
                        const char *const *paths, size_t n_paths, char *out,
                        size_t cap);

/* The wire of a provider type, or NULL (back.c). */
const struct tg_wire *tg_wire_for(enum tg_provider_type type);

extern const struct tg_wire tg_wire_openai;
extern const struct tg_wire tg_wire_anthropic;
extern const struct tg_wire tg_wire_gemini;
extern const struct tg_wire tg_wire_bedrock;

#endif
