/*
 * send.c - sends a rendered answer, honouring the call's fault.
 *
 * A plain answer goes out in one evhttp_send_reply. A stream goes out piece
 * by piece as HTTP chunks, with a timer between pieces when the fault asks
 * for slow chunks. A fault that closes the connection first lets what was
 * already written drain (evhttp's flush callback), then frees the connection
 * from a timer rather than inside libevent's own callback; a safety timeout
 * closes it anyway if the client never reads. evhttp keeps a request alive
 * until we end it, even when its client has gone (it is then detached from
 * its connection), so the call always knows whether the request is still
 * ours to free. The trickle fault puts a rate limit on the connection's
 * bufferevent, so that the whole answer, head included, leaves in pieces
 * of a few bytes cut anywhere.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>

#include "mock.h"

/* How long a closing call waits for its last bytes to reach the client. */
#define FLUSH_TIMEOUT_MS 5000

static void stream_next(struct mock_call *c);

/* Reason phrases libevent 2.1 does not know (it says "Client Error"); NULL
 * lets libevent choose. */
static const char *reason_of(int status)
{
    switch (status) {
    case 422: return "Unprocessable Entity";
    case 424: return "Failed Dependency";
    case 429: return "Too Many Requests";
    case 529: return "Overloaded";
    default: return NULL;
    }
}

/* Ends the connection without a proper end of the answer. */
static void close_now(struct mock_call *c)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);

    if (evcon != NULL)
        evhttp_connection_free(evcon); /* frees c->req with it */
    else
        evhttp_request_free(c->req);
    mock_call_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void arm(struct mock_call *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (c->timer == NULL)
        c->timer = evtimer_new(c->srv->base, on_timer, c);
    if (c->timer == NULL || evtimer_add(c->timer, &tv) != 0) {
        fprintf(stderr, "mock-upstream: cannot arm a timer\n");
        close_now(c);
    }
}

static void on_flushed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    arm(arg, 0);
}

/* Sends the first `len` bytes of c->out, then closes once they are out. */
static void close_after(struct mock_call *c, size_t len)
{
    struct evbuffer *part = evbuffer_new();

    c->state = MOCK_SEND_CLOSING;
    if (part == NULL || len == 0 ||
        evhttp_request_get_connection(c->req) == NULL) {
        if (part != NULL)
            evbuffer_free(part);
        arm(c, 0);
        return;
    }
    evbuffer_remove_buffer(c->out, part, len);
    evhttp_send_reply_chunk_with_cb(c->req, part, on_flushed, c);
    evbuffer_free(part);
    arm(c, FLUSH_TIMEOUT_MS);
}

static void send_piece(struct mock_call *c, size_t len)
{
    struct evbuffer *part = evbuffer_new();

    if (part == NULL)
        return;
    evbuffer_remove_buffer(c->out, part, len);
    evhttp_send_reply_chunk(c->req, part);
    evbuffer_free(part);
}

/* A plain answer: whole, or cut in half by the faults that break bodies. */
static void send_whole(struct mock_call *c)
{
    enum mock_fault_kind kind = c->fault.kind;
    size_t len = evbuffer_get_length(c->out);
    char length[32];

    if (kind == MOCK_FAULT_DROP_MID_STREAM ||
        kind == MOCK_FAULT_TRUNCATED_FRAME) {
        /* The full Content-Length announces bytes that never come. */
        snprintf(length, sizeof(length), "%zu", len);
        mock_header(c, "Content-Length", length);
        evhttp_send_reply_start(c->req, c->status, reason_of(c->status));
        close_after(c, len / 2);
        return;
    }
    if (kind == MOCK_FAULT_BAD_JSON && c->status < 300) {
        struct evbuffer *half = evbuffer_new();

        if (half != NULL) {
            evbuffer_remove_buffer(c->out, half, len / 2);
            evhttp_send_reply(c->req, c->status, reason_of(c->status), half);
            evbuffer_free(half);
            mock_call_free(c);
            return;
        }
    }
    evhttp_send_reply(c->req, c->status, reason_of(c->status), c->out);
    mock_call_free(c);
}

static void start(struct mock_call *c)
{
    if (c->fault.kind == MOCK_FAULT_CLOSE) {
        close_after(c, 0);
        return;
    }
    if (!c->is_stream_answer) {
        send_whole(c);
        return;
    }
    evhttp_send_reply_start(c->req, c->status, reason_of(c->status));
    c->state = MOCK_SEND_STREAMING;
    stream_next(c);
}

/* What the fault does before piece i; true when it took over. */
static bool fault_before_piece(struct mock_call *c, const struct mock_piece *p)
{
    size_t truncate_at = c->n_pieces > 1 ? 1 : 0;

    if (c->fault.kind == MOCK_FAULT_DELAY_CHUNKS && c->next_piece > 0 &&
        !c->has_waited) {
        arm(c, c->fault.value);
        return true;
    }
    c->has_waited = false;
    if (c->fault.kind == MOCK_FAULT_TRUNCATED_FRAME &&
        c->next_piece == truncate_at) {
        close_after(c, p->len / 2);
        return true;
    }
    if (c->fault.kind == MOCK_FAULT_DROP_MID_STREAM &&
        p->kind == MOCK_PIECE_TAIL) {
        close_after(c, 0);
        return true;
    }
    return false;
}

static void stream_next(struct mock_call *c)
{
    while (c->next_piece < c->n_pieces) {
        const struct mock_piece *p = &c->pieces[c->next_piece];

        if (evhttp_request_get_connection(c->req) == NULL)
            break; /* the client is gone: end (and free) the request */
        if (fault_before_piece(c, p))
            return;
        send_piece(c, p->len);
        c->next_piece++;
        if (c->fault.kind == MOCK_FAULT_DROP_MID_STREAM &&
            p->kind == MOCK_PIECE_CONTENT && ++c->content_sent == 2) {
            close_after(c, 0);
            return;
        }
    }
    evhttp_send_reply_end(c->req);
    mock_call_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mock_call *c = arg;

    (void)fd;
    (void)what;
    switch (c->state) {
    case MOCK_SEND_WAIT_HEADERS: start(c); break;
    case MOCK_SEND_STREAMING:
        c->has_waited = true;
        stream_next(c);
        break;
    case MOCK_SEND_CLOSING: close_now(c); break;
    case MOCK_SEND_NEW: break;
    }
}

/* At most fault.value bytes a millisecond from now on this connection. */
static void trickle(struct mock_call *c)
{
    static const struct timeval tick = {0, 1000};
    struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);
    struct ev_token_bucket_cfg **cfg = &c->srv->trickle[c->fault.value];
    size_t n = (size_t)c->fault.value;

    if (*cfg == NULL)
        *cfg = ev_token_bucket_cfg_new(EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, n,
                                       n, &tick);
    if (evcon == NULL || *cfg == NULL ||
        bufferevent_set_rate_limit(evhttp_connection_get_bufferevent(evcon),
                                   *cfg) != 0)
        fprintf(stderr, "mock-upstream: cannot limit a connection\n");
}

void mock_send(struct mock_call *c)
{
    enum mock_fault_kind kind = c->fault.kind;

    if (kind == MOCK_FAULT_TRICKLE)
        trickle(c);

    if (kind == MOCK_FAULT_DELAY_HEADERS ||
        (kind == MOCK_FAULT_DELAY_CHUNKS && !c->is_stream_answer)) {
        c->state = MOCK_SEND_WAIT_HEADERS;
        arm(c, c->fault.value);
        return;
    }
    start(c);
}
