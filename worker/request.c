/*
 * request.c - the request path of a chat call, step by step.
 *
 * tg_req_run_chat resolves the model, starts the provider call and turns the
 * provider's events into the client's answer: written at once when the
 * client streams, collected into r->answer otherwise. Every way a request
 * ends goes through req_finish, which logs it and frees it; the request
 * therefore owns nothing that outlives it.
 *
 * The client may vanish at any time (the connection's close callback, see
 * http.c, sets is_client_gone and cancels the call); after that nothing is
 * written and the request is finished without an answer.
 */
#include "tg_req.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_worker.h"

/* Retries of one candidate (PRODUCT.md section 5, the provider's
 * `retries`): backoff from RETRY_BASE_MS, and a Retry-After longer than
 * RETRY_MAX_AFTER_MS sends the request to the next candidate instead. */
#define RETRY_BASE_MS        100
#define RETRY_MAX_BACKOFF_MS 2000
#define RETRY_MAX_AFTER_MS   5000

void tg_req_header(struct tg_req *r, const char *name, const char *value)
{
    if (r->http != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(r->http), name,
                          value);
}

void tg_req_send(struct tg_req *r, int status)
{
    tg_req_send_as(r, status, "application/json");
}

void tg_req_send_as(struct tg_req *r, int status, const char *content_type)
{
    struct evhttp_connection *conn = NULL;

    if (r->http != NULL) {
        tg_http_add_common_headers(r, content_type);
        r->status = status;
        r->bytes_sent = evbuffer_get_length(r->out);
        conn = evhttp_request_get_connection(r->http);
        evhttp_send_reply(r->http, status, tg_http_reason(status), r->out);
    }
    /* Settled first: the client must not see its answer before the quota
     * does, or its next call, on another worker, could be refused. */
    tg_http_finish(r);
    tg_http_flush(conn);
}

void tg_req_fail(struct tg_req *r, int status, const char *code,
                 const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    evbuffer_drain(r->out, evbuffer_get_length(r->out));
    r->front->render_error(r, status, code, message);
    tg_req_send(r, status);
}

/* Lists every name a request may use, for the 400 that says what is valid. */
static void append_valid_names(struct tg_req *r, char *buf, size_t cap)
{
    const struct tg_config *cfg = r->worker->cfg;
    size_t used = 0;
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < cfg->n_model_groups && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s",
                                 used ? ", " : "", cfg->model_groups[i].name);
    for (i = 0; i < cfg->n_models && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s",
                                 used ? ", " : "", cfg->models[i].name);
}

/* Step "resolve": the requested (or default) model name to a candidate. */
static int req_resolve(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    char names[768];

    r->model_name = r->chat.model;
    if (r->model_name.len == 0) {
        r->model_name.ptr = cfg->default_model;
        r->model_name.len = strlen(cfg->default_model);
    }
    if (r->model_name.len == 0) {
        tg_req_fail(r, 400, "model_required",
                    "'model' is required: no default_model is configured");
        return TG_ERROR;
    }
    if (tg_cfg_resolve_model(cfg, r->model_name.ptr, r->model_name.len,
                             &r->target) != TG_OK) {
        append_valid_names(r, names, sizeof(names));
        tg_req_fail(r, 400, "model_not_found",
                    "The model '%.*s' does not exist. Valid models: %s",
                    (int)(r->model_name.len > 200 ? 200 : r->model_name.len),
                    r->model_name.ptr, names);
        return TG_ERROR;
    }
    r->model = r->target.group ? r->target.group->primary : r->target.model;
    r->candidate_started_us = tg_now_us();
    return TG_OK;
}

/* Step "authorize": the team's allow-lists. */
static int req_authorize(struct tg_req *r)
{
    const struct tg_model_group *g = r->target.group;
    const struct tg_model *m = r->target.model;

    if (g != NULL && !tg_cfg_team_allows_group(r->team, g)) {
        tg_req_fail(r, 403, "model_not_allowed",
                    "team %s may not use model group %s", r->team->name,
                    g->name);
        return TG_ERROR;
    }
    if (m != NULL && !tg_cfg_team_allows_model(r->team, m)) {
        tg_req_fail(r, 403, "model_not_allowed", "team %s may not use model %s",
                    r->team->name, m->name);
        return TG_ERROR;
    }
    return TG_OK;
}

static void req_call(struct tg_req *r);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    req_call(arg);
}

/* Exponential backoff with jitter: 100 ms, 200 ms, 400 ms ... (at most
 * RETRY_MAX_BACKOFF_MS), each between half and all of that. */
static int64_t backoff_ms(struct tg_req *r)
{
    int64_t full = RETRY_BASE_MS << (r->n_retries < 5 ? r->n_retries : 5);

    if (full > RETRY_MAX_BACKOFF_MS)
        full = RETRY_MAX_BACKOFF_MS;
    return full / 2 +
           (int64_t)(tg_worker_random(r->worker) % (uint64_t)(full / 2 + 1));
}

/*
 * Schedules another try of the same candidate, if its provider's retries
 * allow one, the provider's Retry-After (if any) is short enough, and the
 * wait still fits in the candidate's timeout_ms. Returns whether it did.
 */
static bool retry_later(struct tg_req *r, const struct tg_event *ev)
{
    const struct tg_provider *p = r->model->provider;
    int64_t wait = ev->retry_after_ms > 0 ? ev->retry_after_ms : backoff_ms(r);
    int64_t spent = (tg_now_us() - r->candidate_started_us) / 1000;
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};

    if (r->n_retries >= p->retries || wait > RETRY_MAX_AFTER_MS ||
        spent + wait > p->timeout_ms)
        return false;
    if (r->retry_timer == NULL)
        r->retry_timer = evtimer_new(r->worker->base, on_retry, r);
    if (r->retry_timer == NULL || evtimer_add(r->retry_timer, &tv) != 0)
        return false;
    r->n_retries++;
    tg_log_info("%s: %.*s; retry %d of %s in %lld ms", r->id, (int)ev->text.len,
                ev->text.ptr, r->n_retries, r->model->name, (long long)wait);
    return true;
}

/* Event strings live only as long as the back's call, which is released
 * before the terminal event: what the answer keeps is copied into the
 * request's arena. */
static int copy_str(struct tg_arena *arena, struct tg_str *to,
                    struct tg_str from)
{
    to->ptr = tg_arena_strndup(arena, from.ptr, from.len);
    to->len = from.len;
    return to->ptr != NULL ? TG_OK : TG_NOMEM;
}

/* Doubles the room for tool calls, up to TG_MAX_TOOL_CALLS. The old
 * array stays in the arena until the request ends. */
static int answer_grow_calls(struct tg_req *r)
{
    struct tg_answer *a = &r->answer;
    size_t cap = a->cap_calls ? 2 * a->cap_calls : 4;
    struct tg_answer_call *calls;

    if (a->cap_calls == TG_MAX_TOOL_CALLS)
        return TG_ERROR;
    if (cap > TG_MAX_TOOL_CALLS)
        cap = TG_MAX_TOOL_CALLS;
    calls = tg_arena_calloc(&r->arena, cap, sizeof(*calls));
    if (calls == NULL)
        return TG_NOMEM;
    if (a->n_calls > 0)
        memcpy(calls, a->calls, a->n_calls * sizeof(*calls));
    a->calls = calls;
    a->cap_calls = cap;
    return TG_OK;
}

static int answer_add_call(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_answer *a = &r->answer;
    struct tg_answer_call *c;
    int rc;

    if (a->n_calls == a->cap_calls && (rc = answer_grow_calls(r)) != TG_OK)
        return rc;
    c = &a->calls[a->n_calls++];
    c->arguments = evbuffer_new();
    if (c->arguments == NULL || copy_str(&r->arena, &c->id, ev->id) != TG_OK ||
        copy_str(&r->arena, &c->name, ev->name) != TG_OK)
        return TG_NOMEM;
    return TG_OK;
}

/* Folds one event into the answer of a non-streaming call. */
static int answer_collect(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_answer *a = &r->answer;

    switch (ev->type) {
    case TG_EV_TEXT: return evbuffer_add(a->text, ev->text.ptr, ev->text.len);
    case TG_EV_TOOL_START: return answer_add_call(r, ev);
    case TG_EV_TOOL_DELTA:
        if (ev->index < 0 || (size_t)ev->index >= a->n_calls)
            return TG_ERROR;
        return evbuffer_add(a->calls[ev->index].arguments, ev->text.ptr,
                            ev->text.len);
    case TG_EV_STOP: a->stop_reason = ev->stop_reason; return TG_OK;
    default: return TG_OK;
    }
}

static void answer_release(struct tg_answer *a)
{
    size_t i;

    if (a->text != NULL)
        evbuffer_free(a->text);
    for (i = 0; i < a->n_calls; i++)
        if (a->calls[i].arguments != NULL)
            evbuffer_free(a->calls[i].arguments);
    a->text = NULL;
    a->n_calls = 0;
}

/* Hands what the front rendered to evhttp as one chunk. */
static bool stream_queue(struct tg_req *r)
{
    size_t n = evbuffer_get_length(r->out);

    if (n == 0 || r->http == NULL)
        return false;
    r->bytes_sent += n;
    evhttp_send_reply_chunk(r->http, r->out);
    return true;
}

/* ... and writes it now. Only a chunked stream: evhttp ends an HTTP/1.0
 * one at once, inside evhttp_send_reply_end, when nothing is left to
 * write, which would free the request under its caller. */
static void stream_flush(struct tg_req *r)
{
    if (stream_queue(r) && r->is_chunked)
        tg_http_flush(evhttp_request_get_connection(r->http));
}

static void stream_start(struct tg_req *r)
{
    tg_http_add_common_headers(r, "text/event-stream");
    tg_req_header(r, "Cache-Control", "no-cache");
    tg_req_header(r, "X-Accel-Buffering", "no");
    /* Said outright, as seed 003 lists it; a draining worker has said
     * close instead. */
    if (!r->worker->is_draining)
        tg_req_header(r, "Connection", "keep-alive");
    r->status = 200;
    evhttp_send_reply_start(r->http, 200, "OK");
    r->is_streaming = true;
    r->is_chunked =
        evhttp_find_header(evhttp_request_get_output_headers(r->http),
                           "Transfer-Encoding") != NULL;
    r->front->render_stream_start(r);
    stream_flush(r);
}

static void stream_end(struct tg_req *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->http);
    bool is_chunked = r->is_chunked;

    r->front->render_stream_end(r);
    stream_queue(r);
    evhttp_send_reply_end(r->http);
    tg_http_finish(r); /* settled before the end goes out, as above */
    if (is_chunked)
        tg_http_flush(conn);
}

/* The call ended (terminal event): answer, settle, log, free. */
static void call_ended(struct tg_req *r, const struct tg_event *ev)
{
    r->is_call_running = false;
    tg_route_attempt_end(r, ev);
    if (r->is_client_gone) {
        tg_http_finish(r);
        return;
    }
    if (r->chat.is_stream && !r->is_streaming && ev->type == TG_EV_DONE)
        stream_start(r);
    if (r->is_streaming) {
        if (ev->type == TG_EV_ERROR)
            r->front->render_stream_event(r, ev);
        stream_end(r);
        return;
    }
    if (ev->type == TG_EV_ERROR && ev->may_fail_over && retry_later(r, ev))
        return;
    if (ev->type == TG_EV_ERROR && ev->may_fail_over && tg_route_fail_over(r)) {
        tg_log_info("%s: %.*s; trying %s", r->id, (int)ev->text.len,
                    ev->text.ptr, r->model->name);
        req_call(r);
        return;
    }
    if (ev->type == TG_EV_ERROR) {
        tg_req_fail(r, ev->status ? ev->status : 502, "upstream_error", "%.*s",
                    (int)ev->text.len, ev->text.ptr);
        return;
    }
    if (r->answer.has_failed) {
        tg_req_fail(r, 502, "answer_too_large",
                    "the provider's answer has more than %d tool calls or "
                    "could not be held in memory",
                    TG_MAX_TOOL_CALLS);
        return;
    }
    tg_req_send(r, r->front->render_answer(r));
}

/* The back's event sink. Returns non-zero to stop the call. */
static int on_call_event(struct tg_call *call, const struct tg_event *ev)
{
    struct tg_req *r = call->ctx;

    if (ev->type == TG_EV_TEXT)
        r->streamed_chars += (int64_t)ev->text.len;
    if (ev->type == TG_EV_USAGE) {
        r->usage = ev->usage;
        r->has_usage = true;
    }
    if (ev->type == TG_EV_DONE || ev->type == TG_EV_ERROR) {
        call_ended(r, ev);
        return TG_OK;
    }
    if (!r->chat.is_stream) {
        /* A failure here is answered at the terminal event: the back is
         * still running and owns its state until then. */
        if (!r->answer.has_failed && answer_collect(r, ev) != 0)
            r->answer.has_failed = true;
        return TG_OK;
    }
    if (!r->is_streaming)
        stream_start(r);
    if (r->first_token_us == 0 &&
        (ev->type == TG_EV_TEXT || ev->type == TG_EV_TOOL_START))
        r->first_token_us = tg_now_us();
    r->front->render_stream_event(r, ev);
    stream_flush(r);
    return TG_OK;
}

/* What an attempt before this one collected is not part of the answer. */
static void attempt_reset(struct tg_req *r)
{
    answer_release(&r->answer);
    r->answer.stop_reason = 0;
    r->answer.has_failed = false;
    r->answer.text = evbuffer_new();
    r->usage = (struct tg_usage){0};
    r->has_usage = false;
    r->streamed_chars = 0;
    r->call.first_byte_us = 0;
}

/* Step "call": start the serving candidate's provider. */
static void req_call(struct tg_req *r)
{
    const struct tg_back *back;
    int rc;

    if (tg_route_enter(r) != TG_OK)
        return;
    back = tg_back_for(r->model->provider->type);
    attempt_reset(r);
    r->call.base = r->worker->base;
    r->call.chat = &r->chat;
    r->call.model = r->model;
    r->call.upstream = r->worker->upstream;
    r->call.on_event = on_call_event;
    r->call.ctx = r;
    rc = r->answer.text == NULL ? TG_NOMEM : back->start(&r->call);
    if (rc != TG_OK)
        tg_route_attempt_cancel(r);
    if (rc == TG_DECLINED) {
        tg_req_fail(r, 400, "unsupported_request",
                    "the request cannot be expressed in the %s format of "
                    "provider '%s' (a tool result without its tool call?)",
                    tg_cfg_provider_type_name(r->model->provider->type),
                    r->model->provider->name);
        return;
    }
    if (rc != TG_OK) {
        tg_req_fail(r, 500, "internal_error", "could not start the call");
        return;
    }
    r->is_call_running = true;
}

/* Resolving, and finding every candidate cooling down, come before
 * admission, so that a request refused for them leaves the team's quota
 * untouched. */
void tg_req_run_chat(struct tg_req *r)
{
    if (req_resolve(r) != TG_OK || req_authorize(r) != TG_OK ||
        tg_route_check(r) != TG_OK || tg_quota_admit(r) != TG_OK)
        return;
    req_call(r);
}

/* Stops a running call when the client has gone; see http.c. */
void tg_req_client_gone(struct tg_req *r)
{
    const struct tg_back *back;

    r->is_client_gone = true;
    if (r->is_call_running) {
        back = tg_back_for(r->model->provider->type);
        back->cancel(&r->call);
        r->is_call_running = false;
        tg_route_attempt_end(r, NULL);
    }
    tg_http_finish(r);
}

void tg_req_release(struct tg_req *r)
{
    if (r->retry_timer != NULL)
        event_free(r->retry_timer);
    answer_release(&r->answer);
}
