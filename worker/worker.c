/*
 * worker.c - a worker process: one event loop, one evhttp server.
 *
 * The worker serves on the listening sockets the master opened and passed
 * down through fork. Signals from the master arrive as libevent signal
 * events, so they are handled in the loop like any other event:
 *   SIGQUIT  drain: stop accepting, finish in-flight requests, exit;
 *   SIGTERM  the same, but exit after shutdown_timeout_s at the latest;
 *   SIGUSR1  reopen the access log.
 * SIGINT and SIGHUP are the master's (a terminal sends them to the whole
 * process group), so the worker ignores them; if the master dies the
 * kernel sends the worker SIGTERM (PR_SET_PDEATHSIG).
 */
#include "tg_worker.h"

#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "tg.h"
#include "tg_ev_alloc.h"
#include "tg_http.h"
#include "tg_log.h"
#include "tg_metrics.h"
#include "tg_req.h"
#include "tg_upstream.h"

struct tg_worker *tg_worker_self;

/* Every method libevent 2.1 knows: we answer 405 ourselves, in JSON. */
#define ALL_METHODS                                                        \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | \
     EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |           \
     EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)

/* How often a draining worker checks whether it may exit, and how long it
 * must have been without requests (graceful stop and reload only). */
#define DRAIN_TICK_MS  50
#define DRAIN_QUIET_MS 1000

enum { SIG_QUIT, SIG_TERM, SIG_USR1, N_SIGNALS };

static const int handled_signals[N_SIGNALS] = {SIGQUIT, SIGTERM, SIGUSR1};

/* splitmix64: request ids need to be unique, not secret. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t tg_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t tg_worker_random(struct tg_worker *w)
{
    return next_random(&w->id_state[0]);
}

/* The last n hex digits of v, most significant first. */
static void write_hex(char *out, uint64_t v, int n)
{
    static const char hex[] = "0123456789abcdef";

    while (n-- > 0) {
        out[n] = hex[v & 0xf];
        v >>= 4;
    }
}

void tg_worker_new_request_id(struct tg_worker *w, char *out)
{
    uint64_t a = next_random(&w->id_state[0]);
    uint64_t b = next_random(&w->id_state[1]);

    /* "req_" and 24 hex digits: a's 16, then b's top 8. */
    memcpy(out, "req_", 4);
    write_hex(out + 4, a, 16);
    write_hex(out + 20, b >> 32, 8);
    out[28] = '\0';
}

static void seed_request_ids(struct tg_worker *w)
{
    if (getrandom(w->id_state, sizeof(w->id_state), 0) !=
        (ssize_t)sizeof(w->id_state)) {
        w->id_state[0] = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
        w->id_state[1] = w->id_state[0] * 31 + 7;
    }
}

void tg_worker_request_done(struct tg_worker *w)
{
    w->in_flight--;
    tg_metrics_in_flight(w->metrics, (int64_t)w->in_flight);
}

void tg_worker_request_begun(struct tg_worker *w)
{
    w->in_flight++;
    w->last_request_us = tg_now_us();
    tg_metrics_in_flight(w->metrics, (int64_t)w->in_flight);
}

/*
 * A draining worker exits once nothing is in flight and no request has
 * come for quiet_ms. Every answer it gives while draining says
 * "Connection: close", so a keep-alive client moves to a new worker after
 * its next request; the quiet period lets that request arrive instead of
 * meeting a closed socket.
 */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct tg_worker *w = arg;
    int64_t quiet_us = tg_now_us() - w->last_request_us;

    (void)fd;
    (void)what;
    if (w->in_flight == 0 && quiet_us >= (int64_t)w->drain_quiet_ms * 1000)
        event_base_loopexit(w->base, NULL);
    if (w->drain_deadline_us > 0 && tg_now_us() >= w->drain_deadline_us) {
        tg_log_warn("shutdown timeout: %llu requests still in flight, "
                    "exiting",
                    (unsigned long long)w->in_flight);
        event_base_loopbreak(w->base);
    }
}

/* Stop accepting; exit as on_drain_tick says. timeout_s < 0: no limit. */
static void drain(struct tg_worker *w, int timeout_s, int quiet_ms)
{
    struct timeval tick = {0, DRAIN_TICK_MS * 1000};
    size_t i;

    if (timeout_s >= 0)
        w->drain_deadline_us = tg_now_us() + (int64_t)timeout_s * 1000000;
    if (w->is_draining) {
        w->drain_quiet_ms =
            quiet_ms < w->drain_quiet_ms ? quiet_ms : w->drain_quiet_ms;
        return;
    }
    w->is_draining = true;
    w->drain_quiet_ms = quiet_ms;
    for (i = 0; i < w->n_bound; i++)
        evhttp_del_accept_socket(w->http, w->bound[i]);
    w->n_bound = 0;
    w->drain_timer = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
    if (w->drain_timer == NULL || event_add(w->drain_timer, &tick) != 0)
        event_base_loopexit(w->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct tg_worker *w = arg;

    (void)what;
    if (sig == SIGQUIT) {
        drain(w, -1, DRAIN_QUIET_MS);
    } else if (sig == SIGTERM) {
        drain(w, w->cfg->shutdown_timeout_s, 0);
    } else if (sig == SIGUSR1) {
        tg_logfile_reopen(&w->access_log);
        tg_logfile_reopen(&w->usage_log);
    }
}

static int setup_http(struct tg_worker *w, const int *fds, size_t n_fds)
{
    const struct tg_config *cfg = w->cfg;
    size_t i;

    w->http = evhttp_new(w->base);
    w->bound = calloc(n_fds, sizeof(*w->bound));
    if (w->http == NULL || w->bound == NULL)
        return TG_ERROR;
    evhttp_set_max_body_size(w->http, cfg->limits.max_body_bytes);
    evhttp_set_max_headers_size(w->http,
                                cfg->limits.max_header_bytes + TG_HEADER_SLACK);
    evhttp_set_timeout(w->http, cfg->limits.idle_timeout_s);
    evhttp_set_allowed_methods(w->http, ALL_METHODS);
    /* Read and discard an oversized body before answering 413, so the
     * client sees the answer rather than a reset. */
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(w->http, tg_http_dispatch, w);
    for (i = 0; i < n_fds; i++) {
        w->bound[i] = evhttp_accept_socket_with_handle(w->http, fds[i]);
        if (w->bound[i] == NULL)
            return TG_ERROR;
        w->n_bound++;
    }
    return TG_OK;
}

static int setup_signals(struct tg_worker *w, struct event **events)
{
    int i;

    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (i = 0; i < N_SIGNALS; i++) {
        events[i] = evsignal_new(w->base, handled_signals[i], on_signal, w);
        if (events[i] == NULL || evsignal_add(events[i], NULL) != 0)
            return TG_ERROR;
    }
    return TG_OK;
}

static void worker_free(struct tg_worker *w, struct event **events)
{
    int i;

    for (i = 0; i < N_SIGNALS; i++)
        if (events[i] != NULL)
            event_free(events[i]);
    if (w->drain_timer != NULL)
        event_free(w->drain_timer);
    if (w->http != NULL)
        evhttp_free(w->http);
    free(w->bound);
    tg_upstream_free(w->upstream);
    tg_auth_free(w->auth);
    tg_logfile_close(&w->access_log);
    tg_logfile_close(&w->usage_log);
    if (w->base != NULL)
        event_base_free(w->base);
    tg_arena_cache_drain();
    tg_ev_alloc_drain();
}

/* The changelist folds the enable/disable pairs that evhttp makes within one
 * loop turn into at most one epoll_ctl per fd: without it a proxied request
 * cost about ten epoll_ctl calls. It is safe because no fd here is dup()ed,
 * the one case the changelist gets wrong. */
static struct event_base *new_base(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

int tg_worker_run(const struct tg_config *cfg, struct tg_shm *shm,
                  struct tg_metrics *metrics, const int *listen_fds,
                  size_t n_fds, unsigned generation, time_t loaded_at)
{
    struct tg_worker w = {.cfg = cfg,
                          .shm = shm,
                          .metrics = metrics,
                          .generation = generation,
                          .config_loaded_at = loaded_at,
                          .access_log = TG_LOGFILE_INIT("access_log"),
                          .usage_log = TG_LOGFILE_INIT("usage_log")};
    struct event *events[N_SIGNALS] = {0};
    int status = TG_EXIT_FATAL;

    tg_worker_self = &w;
    seed_request_ids(&w);
    w.base = new_base();
    w.auth = tg_auth_build(cfg);
    if (w.base != NULL)
        w.upstream = tg_upstream_new(w.base, cfg);
    if (w.base == NULL || w.auth == NULL || w.upstream == NULL ||
        setup_signals(&w, events) != TG_OK ||
        setup_http(&w, listen_fds, n_fds) != TG_OK) {
        tg_log_error("worker could not start");
        goto out;
    }
    w.access_log.lost = tg_metrics_log_lost(metrics, TG_LOG_ACCESS);
    w.usage_log.lost = tg_metrics_log_lost(metrics, TG_LOG_USAGE);
    tg_logfile_open(&w.access_log, cfg->access_log);
    tg_logfile_open(&w.usage_log, cfg->usage_log);
    /* Without batching (out of memory) lines are written one by one. */
    tg_logfile_batch(&w.access_log, w.base);
    tg_logfile_batch(&w.usage_log, w.base);
    event_base_dispatch(w.base);
    status = 0;
out:
    worker_free(&w, events);
    tg_worker_self = NULL;
    return status;
}
