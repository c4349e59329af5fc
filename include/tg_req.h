/*
 * tg_req.h - one client request on its way through a worker.
 *
 * The request path is a fixed sequence, one function a step:
 *   parse (the front's handler) -> authenticate -> admit -> resolve -> call
 *   -> stream -> settle -> log
 * and struct tg_req carries the request through it. It owns an arena that
 * every step allocates from; tg_req_finish releases all of it at once.
 * Admission and settlement against the shared quotas sit between resolve
 * and call, and after the terminal event, respectively.
 */
#ifndef TG_REQ_H
#define TG_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "tg_arena.h"
#include "tg_back.h"
#include "tg_canon.h"
#include "tg_config.h"
#include "tg_metrics.h"
#include "tg_shm.h"

struct event;
struct evbuffer;
struct evhttp_connection;
struct evhttp_request;
struct tg_front;
struct tg_worker;

#define TG_REQ_ID_MAX     64
#define TG_MAX_TOOL_CALLS 128

/* A tool call being collected for a non-streaming answer. */
struct tg_answer_call {
    struct tg_str id;
    struct tg_str name;
    struct evbuffer *arguments;
};

/* What a non-streaming call collected from its events. The tool calls
 * are in the request's arena, grown as they come: most answers have none,
 * and a request stays small (memory per open stream). */
struct tg_answer {
    struct evbuffer *text;
    struct tg_answer_call *calls;
    size_t n_calls, cap_calls; /* cap_calls <= TG_MAX_TOOL_CALLS */
    enum tg_stop_reason stop_reason;
    bool has_failed; /* too many tool calls, or out of memory */
};

struct tg_req {
    struct tg_worker *worker;
    struct evhttp_request *http; /* NULL once the client has gone */
    struct evhttp_connection *conn;
    const struct tg_front *front;
    enum tg_surface surface; /* the route's, for metrics */
    void *front_state;       /* the front's own, in the arena; NULL if none */
    struct tg_arena arena;
    char id[TG_REQ_ID_MAX + 1];
    int64_t started_us;       /* monotonic */
    int64_t first_token_us;   /* when the first token was streamed; 0 */
    int64_t created;          /* wall clock seconds, for response bodies */
    struct evbuffer *out;     /* what the front renders, then sends */
    int status;               /* HTTP status sent (0 until then) */
    const char *error_param;  /* the request field an error is about */
    struct tg_str path_param; /* what a route's "*" matched */
    const char *job_id;       /* the job a call is made in, or NULL */
    struct tg_str purpose;    /* its caller's label; empty when none */
    uint64_t bytes_sent;

    const struct tg_team *team;
    const char *key_id; /* see auth.c; NULL without a key */
    struct tg_chat chat;
    struct tg_str model_name; /* the name answered with (requested or
                                 default) */
    struct tg_route_target target;
    const struct tg_model *model; /* the candidate serving the call */
    int n_fallbacks;              /* candidates that failed before it */
    int n_retries;                /* retries of the current candidate */
    int64_t candidate_started_us; /* when the current candidate began */
    struct event *retry_timer;    /* pending retry, or NULL */
    /* The attempt out (route.c): its provider's health slot, NULL when no
     * attempt is out. */
    struct tg_shm_provider *health;
    int64_t probe_until_ns; /* the attempt is its provider's half-open
                               probe, leased until then; 0 otherwise */
    int64_t attempt_started_us;
    int n_attempts;
    bool has_skipped_cooling; /* a candidate was skipped as cooling down */
    int64_t cooling_wait_ns;  /* then the shortest wait of those */
    struct tg_call call;
    struct tg_answer answer;

    /* admit / settle (quota.c) */
    struct tg_quota quota;    /* the buckets as admission left them */
    bool has_quota;           /* quota is filled: send x-ratelimit-* */
    struct tg_shm_team *slot; /* set while a reservation is unsettled */
    int64_t reserved;         /* tokens reserved at admission */
    struct tg_usage usage;    /* as the provider reported it */
    bool has_usage;
    int64_t streamed_chars; /* answer text delivered so far */

    bool is_streaming; /* the stream's headers went out */
    bool is_chunked;   /* ... as Transfer-Encoding: chunked (HTTP/1.1) */
    bool is_call_running;
    bool is_client_gone;
};

/* A route's handler: parses the body, then calls tg_req_run_chat or
 * answers itself with tg_req_send / tg_req_fail. */
typedef void tg_handler_fn(struct tg_req *r);

/*
 * Runs the chat in r->chat: resolve the model, call the provider, stream or
 * collect the answer, answer the client, finish the request. Failures at
 * any step are answered in the front's error format.
 */
void tg_req_run_chat(struct tg_req *r);

/* Answers with `status` and r->out as a JSON body, then finishes r. */
void tg_req_send(struct tg_req *r, int status);

/* The same with another type of body. */
void tg_req_send_as(struct tg_req *r, int status, const char *content_type);

/* Renders an error with the request's front, sends it, finishes r. */
void tg_req_fail(struct tg_req *r, int status, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Adds a response header (copied). */
void tg_req_header(struct tg_req *r, const char *name, const char *value);

/* The index of r's team in its worker's config. */
size_t tg_quota_team_index(const struct tg_req *r);

/* Step "admit": reserves the request's quota, or answers 429 (r is then
 * finished) and returns TG_ERROR. */
int tg_quota_admit(struct tg_req *r);

/* Step "settle": refunds what the call did not use and adds its cost to
 * the team's spend. Once per admitted request; a no-op otherwise. */
void tg_quota_settle(struct tg_req *r);

/* Adds the six x-ratelimit-* headers once admission has run. */
void tg_quota_add_headers(struct tg_req *r);

/* What the attempt out used: the provider's usage, or when it reported
 * none, an estimate of the prompt and of what was streamed. */
struct tg_usage tg_quota_used(const struct tg_req *r);

/* Nano-USD for usage at the model's prices (USD per million tokens). */
int64_t tg_quota_cost(const struct tg_model *m, const struct tg_usage *u);

/* Estimated prompt tokens of a request (4 bytes a token). */
int64_t tg_quota_estimate_prompt(const struct tg_chat *c);

/* Routing (route.c). Before admission: answers 503 with Retry-After, and
 * returns TG_ERROR, when every candidate is cooling down. */
int tg_route_check(struct tg_req *r);

/* Makes the first candidate from r->model on that can be called now the
 * serving one, and counts the attempt with its provider's health; answers
 * 503 and returns TG_ERROR when none is left. */
int tg_route_enter(struct tg_req *r);

/* The index of m in its worker's config (for metrics). */
size_t tg_route_model_index(const struct tg_req *r, const struct tg_model *m);

/* Moves to the next candidate, if there is one. */
bool tg_route_fail_over(struct tg_req *r);

/* The attempt out ended, with its terminal event, or NULL when it was
 * stopped because the client went: tells the provider's health and writes
 * the usage line. */
void tg_route_attempt_end(struct tg_req *r, const struct tg_event *ev);

/* The attempt out never reached its provider: releases it silently. */
void tg_route_attempt_cancel(struct tg_req *r);

/* The usage log (usage_log.c): one JSON line per attempt that reached a
 * provider, with its terminal event (NULL: the client went). */
void tg_usage_log_write(const struct tg_req *r, const struct tg_event *ev);

/* An operator's change (admin API) as a usage log line: `action`, and
 * `fields`, JSON members without braces ("\"team\":\"a\",..."). */
void tg_usage_log_admin(const struct tg_req *r, const char *action,
                        const char *fields);

#endif
