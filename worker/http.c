/*
 * http.c - from evhttp's callback to a struct tg_req, and back.
 *
 * Every HTTP request gets a struct tg_req (with its arena and request id)
 * the moment evhttp hands it over, is matched against the route table, and
 * is authenticated when the route says so. The route's handler takes it
 * from there. tg_http_finish is the one exit: whatever happened, the request
 * is logged, freed and counted done there.
 *
 * When the client goes away while its request is in flight, libevent calls
 * the connection's close callback; conn_closed then releases the evhttp
 * request that libevent has detached and stops the call.
 */
#include "tg_http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define REQ_ARENA_FIRST_BLOCK 4096

enum route_auth { AUTH_NONE, AUTH_TEAM, AUTH_ADMIN };

struct route {
    const char *path;
    enum evhttp_cmd_type method;
    enum route_auth auth;
    const struct tg_front *front;
    tg_handler_fn *handle;
};

/* Adding a route is adding a line. A "*" path segment matches one
 * segment of the request's path, which the handler finds in
 * r->path_param. */
static const struct route routes[] = {
    {"/v1/chat/completions", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_openai,
     tg_front_openai_chat},
    {"/v1/models", EVHTTP_REQ_GET, AUTH_TEAM, &tg_front_openai,
     tg_front_openai_models},
    {"/api/v1/llm/completions", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_platform,
     tg_front_platform_completions},
    {"/api/v1/llm/completions/stream", EVHTTP_REQ_POST, AUTH_TEAM,
     &tg_front_platform, tg_front_platform_stream},
    {"/api/v1/llm/models", EVHTTP_REQ_GET, AUTH_TEAM, &tg_front_platform,
     tg_front_platform_models},
    {"/api/jobs/create", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_jobs,
     tg_front_jobs_create},
    {"/api/jobs/*", EVHTTP_REQ_GET, AUTH_TEAM, &tg_front_jobs,
     tg_front_jobs_get},
    {"/api/jobs/*/llm-call", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_jobs,
     tg_front_jobs_call},
    {"/api/jobs/*/llm-call-stream", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_jobs,
     tg_front_jobs_call_stream},
    {"/api/jobs/*/complete", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_jobs,
     tg_front_jobs_complete},
    {"/", EVHTTP_REQ_GET, AUTH_TEAM, &tg_front_stip, tg_front_stip_root},
    {"/llm/providers", EVHTTP_REQ_GET, AUTH_TEAM, &tg_front_stip,
     tg_front_stip_providers},
    {"/llm/generation", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_stip,
     tg_front_stip_generation},
    {"/llm/generation/stream", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_stip,
     tg_front_stip_generation_stream},
    {"/llm/classification", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_stip,
     tg_front_stip_classification},
    {"/llm/summarization", EVHTTP_REQ_POST, AUTH_TEAM, &tg_front_stip,
     tg_front_stip_summarization},
    {"/health", EVHTTP_REQ_GET, AUTH_NONE, &tg_front_openai, tg_http_health},
    {"/healthz", EVHTTP_REQ_GET, AUTH_NONE, &tg_front_openai, tg_http_healthz},
    {"/metrics", EVHTTP_REQ_GET, AUTH_NONE, &tg_front_openai, tg_http_metrics},
    {"/admin/teams/*", EVHTTP_REQ_GET, AUTH_ADMIN, &tg_front_admin,
     tg_front_admin_team},
    {"/admin/teams/*/credits", EVHTTP_REQ_POST, AUTH_ADMIN, &tg_front_admin,
     tg_front_admin_top_up},
    {"/admin/providers", EVHTTP_REQ_GET, AUTH_ADMIN, &tg_front_admin,
     tg_front_admin_providers},
    {"/admin/providers/*/reset", EVHTTP_REQ_POST, AUTH_ADMIN, &tg_front_admin,
     tg_front_admin_reset},
};

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Payload Too Large"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

const char *tg_http_reason(int status)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

/* The Date header's value, formatted once a second. evhttp would otherwise
 * format it with printf for every answer. The C locale (never changed
 * here) gives the English names HTTP wants. */
static const char *http_date(void)
{
    static time_t second = -1;
    static char date[40];
    time_t now = time(NULL);
    struct tm tm;

    if (now != second && gmtime_r(&now, &tm) != NULL) {
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        second = now;
    }
    return date;
}

void tg_http_add_common_headers(struct tg_req *r, const char *content_type)
{
    char n[24];

    tg_req_header(r, "Content-Type", content_type);
    tg_req_header(r, "Date", http_date());
    tg_req_header(r, "x-request-id", r->id);
    if (r->model != NULL) {
        tg_req_header(r, "x-tollgate-provider", r->model->provider->name);
        tg_req_header(r, "x-tollgate-model", r->model->name);
        tg_format_int(n, r->n_fallbacks);
        tg_req_header(r, "x-tollgate-fallbacks", n);
    }
    tg_quota_add_headers(r);
    if (r->worker->is_draining)
        tg_req_header(r, "Connection", "close");
}

/* A client-supplied id is kept when it is short and plain, so one id can
 * follow a call through load balancers and logs. */
static bool is_plain_request_id(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n == TG_REQ_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              c == ':'))
            return false;
    }
    return n > 0;
}

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct tg_req *r = arg;
    struct evhttp_request *http = r->http;

    (void)conn;
    r->http = NULL;
    r->conn = NULL;
    /* libevent detaches (and stops owning) a request whose connection fails
     * before the answer is complete; one still attached it frees itself. */
    if (http != NULL && evhttp_request_get_connection(http) == NULL)
        evhttp_request_free(http);
    tg_req_client_gone(r);
}

static struct tg_req *req_new(struct tg_worker *w, struct evhttp_request *http)
{
    struct tg_req *r = calloc(1, sizeof(*r));
    const char *id;

    if (r == NULL)
        return NULL;
    r->out = evbuffer_new();
    if (r->out == NULL) {
        free(r);
        return NULL;
    }
    r->worker = w;
    r->http = http;
    r->conn = evhttp_request_get_connection(http);
    r->front = &tg_front_openai;
    r->surface = TG_SURFACE_NONE;
    r->started_us = tg_now_us();
    r->created = (int64_t)time(NULL);
    tg_arena_init(&r->arena, REQ_ARENA_FIRST_BLOCK);
    id = evhttp_find_header(evhttp_request_get_input_headers(http),
                            "X-Request-Id");
    if (id != NULL && is_plain_request_id(id))
        strcpy(r->id, id);
    else
        tg_worker_new_request_id(w, r->id);
    tg_worker_request_begun(w);
    evhttp_connection_set_closecb(r->conn, conn_closed, r);
    return r;
}

/* The answer has been written out: the request stops counting as in
 * flight only now, so a draining worker never exits with bytes unsent. */
static void on_written(struct evhttp_request *http, void *arg)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(http);

    if (conn != NULL)
        evhttp_connection_set_closecb(conn, NULL, NULL);
    tg_worker_request_done(arg);
}

/* ... or the connection closed before it could be. */
static void on_closed_while_writing(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    tg_worker_request_done(arg);
}

static void count_request(const struct tg_req *r)
{
    int64_t now = tg_now_us();
    int status = r->is_client_gone || r->status == 0 ? 499 : r->status;

    tg_metrics_request(
        r->worker->metrics, r->surface, status, now - r->started_us,
        r->first_token_us > 0 ? r->first_token_us - r->started_us : -1);
}

void tg_http_finish(struct tg_req *r)
{
    struct tg_worker *w = r->worker;
    bool is_writing = r->conn != NULL && r->http != NULL && r->status != 0;

    if (is_writing) {
        evhttp_request_set_on_complete_cb(r->http, on_written, w);
        evhttp_connection_set_closecb(r->conn, on_closed_while_writing, w);
    } else if (r->conn != NULL) {
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
    }
    tg_quota_settle(r);
    count_request(r);
    tg_access_log_write(w, r);
    tg_req_release(r);
    evbuffer_free(r->out);
    tg_arena_free(&r->arena);
    free(r);
    if (!is_writing)
        tg_worker_request_done(w);
}

size_t tg_http_header_bytes(struct evhttp_request *http)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(http);
    struct evkeyval *kv;
    size_t n = 0;

    for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next)
        n += strlen(kv->key) + strlen(kv->value) + 4;
    return n;
}

/* Whether path matches pattern; a "*" segment's match goes to *param. */
static bool path_matches(const char *pattern, const char *path,
                         struct tg_str *param)
{
    size_t n;

    while (*pattern != '\0') {
        if (*pattern == '*') {
            n = strcspn(path, "/");
            if (n == 0)
                return false;
            *param = (struct tg_str){path, n};
            pattern++;
            path += n;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

static const struct route *route_find(const char *path, bool *path_known,
                                      enum evhttp_cmd_type method,
                                      struct tg_str *param)
{
    size_t i;

    *path_known = false;
    for (i = 0; i < TG_ARRAY_LEN(routes); i++) {
        if (!path_matches(routes[i].path, path, param))
            continue;
        *path_known = true;
        if (routes[i].method == method)
            return &routes[i];
    }
    return NULL;
}

static void answer_no_route(struct tg_req *r, const char *path, bool path_known)
{
    size_t i;

    if (!path_known) {
        tg_req_fail(r, 404, "not_found", "Unknown request URL: %.200s", path);
        return;
    }
    for (i = 0; i < TG_ARRAY_LEN(routes); i++)
        if (path_matches(routes[i].path, path, &r->path_param))
            tg_req_header(r, "Allow",
                          routes[i].method == EVHTTP_REQ_GET ? "GET" : "POST");
    tg_req_fail(r, 405, "method_not_allowed", "Method not allowed for %.200s",
                path);
}

void tg_http_dispatch(struct evhttp_request *http, void *arg)
{
    struct tg_worker *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(http);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const struct route *route;
    struct tg_req *r;
    bool path_known;

    r = req_new(w, http);
    if (r == NULL) {
        evhttp_send_reply(http, 503, "Service Unavailable", NULL);
        return;
    }
    if (tg_http_header_bytes(http) > (size_t)w->cfg->limits.max_header_bytes) {
        tg_req_fail(r, 431, "headers_too_large",
                    "Request headers are larger than the limit of %lld "
                    "bytes.",
                    (long long)w->cfg->limits.max_header_bytes);
        return;
    }
    if (path == NULL || path[0] == '\0')
        path = "/";
    route = route_find(path, &path_known, evhttp_request_get_command(http),
                       &r->path_param);
    if (route == NULL) {
        answer_no_route(r, path, path_known);
        return;
    }
    r->front = route->front;
    /* The routes that need no key are the operators' (health, metrics). */
    r->surface = route->auth == AUTH_NONE ? TG_SURFACE_OPS : r->front->surface;
    if ((route->auth == AUTH_TEAM && tg_auth_check(r) != TG_OK) ||
        (route->auth == AUTH_ADMIN && tg_auth_admin(r) != TG_OK))
        return;
    route->handle(r);
}

static bool has_enabled_provider(const struct tg_config *cfg,
                                 enum tg_provider_type type)
{
    size_t i;

    for (i = 0; i < cfg->n_providers; i++)
        if (cfg->providers[i].type == type && cfg->providers[i].is_enabled)
            return true;
    return false;
}

static const char *state_name(enum tg_health_state s)
{
    switch (s) {
    case TG_HEALTH_OPEN: return "cooling_down";
    case TG_HEALTH_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}

/* One provider's breaker as every worker sees it. The last error's text
 * is left to operators: this page needs no key. */
static void write_provider(struct evbuffer *b, const struct tg_provider *p,
                           const struct tg_shm_health_view *v, int64_t now)
{
    int64_t cooling_ms = v->state == TG_HEALTH_OPEN
                             ? (v->cooling_until_ns - now + 999999) / 1000000
                             : 0;

    tg_json_write_str(b, p->name, strlen(p->name));
    evbuffer_add_printf(b,
                        ":{\"type\":\"%s\",\"enabled\":%s,\"state\":\"%s\","
                        "\"consecutive_fails\":%u,\"cooling_down_ms\":%lld,"
                        "\"in_flight\":%lld,\"latency_ms\":",
                        tg_cfg_provider_type_name(p->type),
                        p->is_enabled ? "true" : "false", state_name(v->state),
                        v->consecutive_fails, (long long)cooling_ms,
                        (long long)v->in_flight);
    if (v->has_latency)
        evbuffer_add_printf(b, "%.3f}", (double)v->latency_ewma_us / 1000.0);
    else
        evbuffer_add(b, "null}", 5);
}

/* GET /health: seed 004's body ("aws" says whether Bedrock is usable),
 * extended with each provider's shared health. "degraded" while any
 * enabled provider is not closed. */
void tg_http_health(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    bool has_aws = has_enabled_provider(cfg, TG_PROVIDER_BEDROCK);
    struct evbuffer *providers = evbuffer_new();
    int64_t now = tg_shm_now_ns();
    bool is_degraded = false;
    struct tg_shm_health_view v;
    size_t i;

    if (providers == NULL) {
        tg_req_fail(r, 500, "internal_error", "out of memory");
        return;
    }
    for (i = 0; i < cfg->n_providers; i++) {
        tg_shm_health_read(r->worker->shm, tg_shm_provider(r->worker->shm, i),
                           now, &v);
        is_degraded |=
            cfg->providers[i].is_enabled && v.state != TG_HEALTH_CLOSED;
        evbuffer_add(providers, i ? "," : "", i ? 1 : 0);
        write_provider(providers, &cfg->providers[i], &v, now);
    }
    evbuffer_add_printf(r->out,
                        "{\"status\":\"%s\",\"aws\":\"%s\",\"providers\":{",
                        is_degraded ? "degraded" : "healthy",
                        has_aws ? "connected" : "not_configured");
    evbuffer_add_buffer(r->out, providers);
    evbuffer_add(r->out, "}}", 2);
    evbuffer_free(providers);
    tg_req_send(r, 200);
}

/* GET /healthz: liveness for load balancers; 503 once this worker drains so
 * a balancer stops sending it new connections. */
void tg_http_healthz(struct tg_req *r)
{
    bool is_draining = r->worker->is_draining;

    evbuffer_add_printf(r->out, "{\"status\":\"%s\"}",
                        is_draining ? "draining" : "ok");
    tg_req_send(r, is_draining ? 503 : 200);
}
