/*
 * back_http.c - the back of every HTTP provider, over its wire format.
 *
 * One call: encode the canonical request with the wire, send it through the
 * worker's upstream pools, then turn the answer into canonical events as it
 * arrives: a 2xx stream through the SSE parser or the event-stream decoder
 * into the wire's decoder, a 2xx body whole into decode_body, any other
 * status into an error. Every call ends with exactly one terminal event:
 * TG_EV_DONE when the wire saw the answer's proper end, otherwise
 * TG_EV_ERROR with a status the client can act on:
 *   400  the provider refused the request itself (its 4xx but 401, 403,
 *        408, 429) - the caller's fault, returned as such;
 *   502  the provider failed, refused our credentials, answered garbage,
 *        or the connection or TLS failed;
 *   504  nothing came within first_byte_timeout_ms or timeout_ms.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"
#include "tg_http_reader.h"
#include "tg_json.h"
#include "tg_wire.h"

/* The most of an answer kept whole (non-streaming or an error body). */
#define MAX_BODY      (16u * 1024 * 1024)
#define MAX_SSE_EVENT (4u * 1024 * 1024)

static void call_free(struct tg_wire_call *w)
{
    w->call->back_state = NULL;
    tg_sse_free(&w->sse);
    if (w->body)
        evbuffer_free(w->body);
    if (w->frames)
        evbuffer_free(w->frames);
    tg_arena_free(&w->arena);
    free(w);
}

/* Delivers the terminal event and frees the call. */
static void end_call(struct tg_wire_call *w, int status, const char *message)
{
    struct tg_call *call = w->call;
    struct tg_event ev = {.type = status ? TG_EV_ERROR : TG_EV_DONE,
                          .status = status,
                          .may_fail_over = w->may_fail_over && !w->has_content,
                          .retry_after_ms = w->retry_after_ms};
    char text[512];

    if (w->is_finished)
        return;
    w->is_finished = true;
    /* Copied (cut as snprintf would): it may live in what call_free frees. */
    ev.text.len = message ? strnlen(message, sizeof(text) - 1) : 0;
    if (ev.text.len > 0)
        memcpy(text, message, ev.text.len);
    text[ev.text.len] = '\0';
    ev.text.ptr = text;
    if (status == 0 && w->has_usage) {
        struct tg_event usage = {.type = TG_EV_USAGE, .usage = w->usage};
        if (call->on_event(call, &usage) != TG_OK) {
            call_free(w);
            return;
        }
    }
    call_free(w);
    call->on_event(call, &ev);
}

int tg_wire_emit(struct tg_wire_call *w, const struct tg_event *ev)
{
    if (ev->type == TG_EV_TEXT || ev->type == TG_EV_TOOL_START)
        w->has_content = true;
    return w->call->on_event(w->call, ev) == TG_OK ? TG_OK : TG_ERROR;
}

int tg_wire_text(struct tg_wire_call *w, const char *text, size_t len)
{
    struct tg_event ev = {.type = TG_EV_TEXT, .text = {text, len}};

    return len == 0 ? TG_OK : tg_wire_emit(w, &ev);
}

int tg_wire_tool_start(struct tg_wire_call *w, int index, struct tg_str id,
                       struct tg_str name)
{
    struct tg_event ev = {
        .type = TG_EV_TOOL_START, .index = index, .id = id, .name = name};

    if (index < 0 || index >= TG_WIRE_MAX_TOOLS || w->is_tool_open[index])
        return TG_DECLINED;
    w->is_tool_open[index] = true;
    if (index >= w->n_tools)
        w->n_tools = index + 1;
    return tg_wire_emit(w, &ev);
}

int tg_wire_tool_delta(struct tg_wire_call *w, int index, const char *json,
                       size_t len)
{
    struct tg_event ev = {
        .type = TG_EV_TOOL_DELTA, .index = index, .text = {json, len}};

    if (index < 0 || index >= TG_WIRE_MAX_TOOLS || !w->is_tool_open[index])
        return TG_DECLINED;
    return len == 0 ? TG_OK : tg_wire_emit(w, &ev);
}

int tg_wire_stop(struct tg_wire_call *w, enum tg_stop_reason reason)
{
    struct tg_event end = {.type = TG_EV_TOOL_END};
    struct tg_event stop = {.type = TG_EV_STOP, .stop_reason = reason};
    int i;

    for (i = 0; i < w->n_tools; i++) {
        if (!w->is_tool_open[i])
            continue;
        w->is_tool_open[i] = false;
        end.index = i;
        if (tg_wire_emit(w, &end) != TG_OK)
            return TG_ERROR;
    }
    return tg_wire_emit(w, &stop);
}

void tg_wire_usage(struct tg_wire_call *w, int64_t prompt, int64_t completion)
{
    w->usage.prompt_tokens = prompt;
    w->usage.completion_tokens = completion;
    w->has_usage = true;
}

void tg_wire_header(struct tg_wire_request *req, const char *name,
                    const char *value)
{
    if (req->n_headers < TG_WIRE_MAX_HEADERS)
        req->headers[req->n_headers++] = (struct tg_up_header){name, value};
}

/* The string at a dotted path ("error.message") under node, or -1. */
static int string_at(const struct tg_json *j, int node, const char *path)
{
    char key[64];
    const char *dot;
    size_t n;

    while (node >= 0 && (dot = strchr(path, '.')) != NULL) {
        n = (size_t)(dot - path);
        if (n >= sizeof(key))
            return -1;
        memcpy(key, path, n);
        key[n] = '\0';
        node = tg_json_get(j, node, key);
        path = dot + 1;
    }
    node = node >= 0 ? tg_json_get(j, node, path) : -1;
    return tg_json_type(j, node) == TG_JSON_STRING ? node : -1;
}

void tg_wire_error_text(int status, const char *body, size_t len,
                        const char *const *paths, size_t n_paths, char *out,
                        size_t cap)
{
    struct tg_arena arena;
    struct tg_json j;
    char *msg;
    size_t i, n;
    int root = 0, cursor = 0, m = -1;

    tg_arena_init(&arena, 1024);
    snprintf(out, cap, "HTTP %d", status);
    if (tg_json_parse(&j, body, len, &arena, NULL) == TG_OK) {
        if (tg_json_type(&j, 0) == TG_JSON_ARRAY &&
            !tg_json_element(&j, 0, &cursor, &root))
            root = -1;
        for (i = 0; i < n_paths && m < 0; i++)
            m = string_at(&j, root, paths[i]);
        if (m >= 0 && tg_json_str(&j, m, &arena, &msg, &n) == TG_OK)
            snprintf(out, cap, "%.*s", (int)(n > 300 ? 300 : n), msg);
    }
    tg_arena_free(&arena);
}

/* A decoder's verdict. TG_ERROR is tg_wire_emit's "stop": the request path
 * wants nothing more, so the call ends without a terminal event. Anything
 * else but TG_OK is a malformed answer. Either way the caller stops. */
static int decoded(struct tg_wire_call *w, int rc)
{
    if (rc == TG_OK || w->is_finished)
        return rc == TG_OK ? TG_OK : TG_ERROR;
    if (rc == TG_ERROR) {
        w->is_finished = true;
        call_free(w);
    } else {
        end_call(w, 502, "the provider's answer could not be read");
    }
    return TG_ERROR;
}

static int on_sse(void *ctx, const char *event, size_t event_len,
                  const char *data, size_t len)
{
    struct tg_wire_call *w = ctx;

    /* Not decoded's TG_ERROR (-1): tg_sse_feed returns a callback's value, and
     * -1 there means an event too large, whose handling would touch the
     * call decoded may have freed. */
    return decoded(w, w->wire->decode_sse(w, event, event_len, data, len)) ==
                   TG_OK
               ? 0
               : 1;
}

static int feed_frames(struct tg_wire_call *w, const char *data, size_t len)
{
    struct tg_es_message m;
    size_t used;
    char err[128];
    int rc;

    evbuffer_add(w->frames, data, len);
    for (;;) {
        size_t n = evbuffer_get_length(w->frames);
        const uint8_t *p = evbuffer_pullup(w->frames, -1);
        rc = tg_es_decode(p, n, &m, &used, err, sizeof(err));
        if (rc == TG_AGAIN)
            return TG_OK;
        if (rc != TG_OK) {
            end_call(w, 502, err);
            return TG_ERROR;
        }
        if (decoded(w, w->wire->decode_frame(w, &m)) != TG_OK)
            return TG_ERROR;
        evbuffer_drain(w->frames, used);
    }
}

/* Retry-After in seconds (an HTTP date is not worth honouring here); -1
 * when absent or unreadable. */
static int64_t retry_after_ms(const struct tg_http_reader *head)
{
    size_t n, i;
    const char *v = tg_http_reader_header(head, "Retry-After", &n);
    int64_t s = 0;

    if (v == NULL || n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        s = s * 10 + (v[i] - '0');
        if (s >= 86400)
            return -1;
    }
    return s * 1000;
}

static void on_head(void *ctx, int status, const struct tg_http_reader *head)
{
    struct tg_wire_call *w = ctx;

    w->status = status;
    w->retry_after_ms = retry_after_ms(head);
    w->call->first_byte_us = tg_now_us();
}

static int on_body(void *ctx, const char *data, size_t len)
{
    struct tg_wire_call *w = ctx;

    if (w->status < 200 || w->status > 299 || !w->is_stream) {
        if (evbuffer_get_length(w->body) + len > MAX_BODY) {
            end_call(w, 502, "the provider's answer is too large");
            return 1;
        }
        evbuffer_add(w->body, data, len);
        return 0;
    }
    if (w->wire->framing == TG_FRAMING_EVENTSTREAM)
        return feed_frames(w, data, len) != TG_OK;
    switch (tg_sse_feed(&w->sse, data, len, on_sse, w)) {
    case 0: return 0;
    case -1:
        end_call(w, 502,
                 "an event in the provider's stream is too "
                 "large");
        return 1;
    default: return 1; /* the decoder ended the call */
    }
}

static int status_for(int upstream)
{
    if (upstream >= 400 && upstream < 500 && upstream != 401 &&
        upstream != 403 && upstream != 408 && upstream != 429)
        return 400;
    return upstream == 408 ? 504 : 502;
}

static void end_with_error_body(struct tg_wire_call *w)
{
    char msg[400], text[512];
    size_t n = evbuffer_get_length(w->body);

    w->wire->decode_error(w->status, (const char *)evbuffer_pullup(w->body, -1),
                          n, msg, sizeof(msg));
    snprintf(text, sizeof(text), "provider %s answered %d: %s",
             w->call->model->provider->name, w->status, msg);
    w->may_fail_over = w->status == 429 || w->status >= 500;
    end_call(w, status_for(w->status), text);
}

static void end_with_body(struct tg_wire_call *w)
{
    size_t n = evbuffer_get_length(w->body);
    int rc =
        w->wire->decode_body(w, (const char *)evbuffer_pullup(w->body, -1), n);

    if (decoded(w, rc) == TG_OK)
        end_call(w, 0, NULL);
}

static void end_stream(struct tg_wire_call *w)
{
    if (w->wire->framing == TG_FRAMING_SSE &&
        tg_sse_finish(&w->sse, on_sse, w) != 0)
        return;
    if (!w->is_finished && !w->is_complete)
        end_call(w, 502, "the provider's stream ended before its end");
    else
        end_call(w, 0, NULL);
}

static const char *describe(enum tg_up_error e)
{
    switch (e) {
    case TG_UP_TLS: return "TLS";
    case TG_UP_FIRST_BYTE:
    case TG_UP_TIMEOUT: return "timeout";
    default: return "connection";
    }
}

static void on_end(void *ctx, enum tg_up_error error, const char *why)
{
    struct tg_wire_call *w = ctx;
    char text[400];

    w->up = NULL;
    if (error != TG_UP_OK) {
        snprintf(text, sizeof(text), "provider %s: %s error: %s",
                 w->call->model->provider->name, describe(error), why);
        /* No connection, no TLS, or no first byte: another candidate may
         * do better. A total timeout or a cut answer is not retried. */
        w->may_fail_over = error == TG_UP_CONNECT || error == TG_UP_TLS ||
                           error == TG_UP_FIRST_BYTE ||
                           (error == TG_UP_CLOSED && w->status == 0);
        end_call(
            w, error == TG_UP_FIRST_BYTE || error == TG_UP_TIMEOUT ? 504 : 502,
            text);
    } else if (w->status < 200 || w->status > 299) {
        end_with_error_body(w);
    } else if (!w->is_stream) {
        end_with_body(w);
    } else {
        end_stream(w);
    }
}

static const struct tg_up_callbacks up_callbacks = {on_head, on_body, on_end};

static int http_start(struct tg_call *call)
{
    const struct tg_wire *wire = tg_wire_for(call->model->provider->type);
    struct tg_wire_call *w = calloc(1, sizeof(*w));
    struct tg_wire_request req = {0};
    int rc = TG_ERROR;

    if (w == NULL)
        return TG_NOMEM;
    w->call = call;
    w->wire = wire;
    w->retry_after_ms = -1;
    w->is_stream = call->chat->is_stream;
    tg_arena_init(&w->arena, 4096);
    tg_sse_init(&w->sse, MAX_SSE_EVENT);
    w->body = evbuffer_new();
    w->frames = evbuffer_new();
    req.body = evbuffer_new();
    if (!w->body || !w->frames || !req.body)
        goto fail;
    if (wire->encode(w, &req) != TG_OK) {
        rc = TG_DECLINED;
        goto fail;
    }
    w->up = tg_up_send(call->upstream, call->model->provider, "POST", req.path,
                       req.headers, req.n_headers, req.body, &up_callbacks, w);
    if (w->up == NULL)
        goto fail;
    evbuffer_free(req.body);
    call->back_state = w;
    return TG_OK;
fail:
    if (req.body)
        evbuffer_free(req.body);
    call_free(w);
    return rc;
}

static void http_cancel(struct tg_call *call)
{
    struct tg_wire_call *w = call->back_state;

    if (w == NULL)
        return;
    if (w->up != NULL)
        tg_up_cancel(w->up);
    call_free(w);
}

const struct tg_back tg_back_http = {
    .start = http_start,
    .cancel = http_cancel,
};
