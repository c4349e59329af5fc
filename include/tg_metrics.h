/*
 * tg_metrics.h - the counters behind GET /metrics, shared by every process.
 *
 * The counters are a region of the shared segment (shm/layout.h): every
 * worker, of every generation, adds to the same ones, so a scrape answered
 * by any worker reports the same totals. They start from zero with the
 * master, as Prometheus expects of a process; quotas, credits and health
 * are what the state file keeps across restarts.
 *
 * Every change is one relaxed atomic add or store, so a process killed at
 * any instruction loses at most the increment it was making, never tears a
 * counter. A histogram keeps per-bucket counts (not cumulative) and its
 * count is their sum, so count and the +Inf bucket always agree.
 *
 * Label values come from the config only (surface, status from a fixed
 * list, team, model and provider names): a request cannot add a series.
 * Teams and models are registered by name by the master each time it
 * configures; a team x model pair is claimed on its first use with a CAS.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_config.h"

#define TG_METRICS_TEAMS  4096
#define TG_METRICS_MODELS 1024
#define TG_METRICS_PAIRS  65536 /* a power of two */

/* Where a request came in: a route's front, or none matched. */
enum tg_surface {
    TG_SURFACE_OPENAI,
    TG_SURFACE_PLATFORM,
    TG_SURFACE_JOBS,
    TG_SURFACE_STIP,
    TG_SURFACE_ADMIN,
    TG_SURFACE_OPS, /* /health, /healthz, /metrics */
    TG_SURFACE_NONE,
    TG_N_SURFACES
};

/* The statuses the gateway answers with; anything else counts as "other".
 * 499 is a request whose client went away before its answer was out. */
// clang-format off
#define TG_METRICS_STATUSES                                              \
    X(200) X(400) X(401) X(402) X(403) X(404) X(405) X(408) X(409)      \
    X(413) X(422) X(429) X(431) X(499) X(500) X(501) X(502) X(503)      \
    X(504)
// clang-format on
enum {
#define X(code) TG_STATUS_##code,
    TG_METRICS_STATUSES
#undef X
        TG_STATUS_OTHER,
    TG_N_STATUSES
};

/* How one upstream call ended. */
enum tg_call_outcome {
    TG_CALL_OK,
    TG_CALL_CLIENT_ERROR, /* the provider refused the request (4xx) */
    TG_CALL_RATE_LIMITED, /* 429 */
    TG_CALL_TIMEOUT,
    TG_CALL_ERROR,     /* connection, 5xx, an answer we cannot read */
    TG_CALL_CANCELLED, /* stopped by us: the client went */
    TG_N_OUTCOMES
};

/* Why a team's request was refused before any call. */
enum tg_limit {
    TG_LIMIT_RPM,
    TG_LIMIT_TPM,
    TG_LIMIT_BUDGET,
    TG_LIMIT_CREDITS,
    TG_N_LIMITS
};

enum tg_log_kind { TG_LOG_ACCESS, TG_LOG_USAGE, TG_N_LOGS };

/* Upper bounds of the histogram buckets, in microseconds; +Inf follows. */
#define TG_METRICS_BUCKETS_US                                               \
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, \
        2500000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000
#define TG_METRICS_N_BUCKETS 17

struct tg_shm;

/* A process's handle on the counters for one config: where that config's
 * teams and models are (computed by the master, inherited by fork). */
struct tg_metrics;

/* Master, before forking workers for cfg (which shm is configured
 * for): registers cfg's teams and models (a name seen before keeps its
 * entry) and returns the handle for cfg; NULL when out of memory. */
struct tg_metrics *tg_metrics_new(struct tg_shm *shm,
                                  const struct tg_config *cfg);
void tg_metrics_free(struct tg_metrics *m);

/* Master: a reload's outcome, a worker restarted, how many run, and a
 * reaped worker's slot (its requests are in flight no more). */
void tg_metrics_reloaded(struct tg_metrics *m, bool is_ok, unsigned generation,
                         int64_t now_ns);
void tg_metrics_worker_restarted(struct tg_metrics *m);
void tg_metrics_set_workers(struct tg_metrics *m, size_t n);
void tg_metrics_worker_gone(struct tg_metrics *m, int slot);

/* Worker: its slot (the state file's worker slot; -1 for none). */
void tg_metrics_attach(struct tg_metrics *m, int slot);

/* One finished request. ttft_us < 0: it streamed no token. */
void tg_metrics_request(struct tg_metrics *m, enum tg_surface s, int status,
                        int64_t latency_us, int64_t ttft_us);

/* This worker's requests in flight now. */
void tg_metrics_in_flight(struct tg_metrics *m, int64_t n);

/* By index in the config the handle was configured with. */
void tg_metrics_call(struct tg_metrics *m, size_t model,
                     enum tg_call_outcome o);
void tg_metrics_fallback(struct tg_metrics *m, size_t model);
void tg_metrics_refused(struct tg_metrics *m, size_t team, enum tg_limit why);
void tg_metrics_usage(struct tg_metrics *m, size_t team, size_t model,
                      int64_t prompt_tokens, int64_t completion_tokens,
                      int64_t cost_nano_usd);

/* The counter a log's lost lines go to. */
_Atomic uint64_t *tg_metrics_log_lost(struct tg_metrics *m,
                                      enum tg_log_kind which);

/* The label of a status index ("200", ..., "other"). */
const char *tg_metrics_status_label(int index);

/* Reading, for the scrape: copies of the counters as they are now. */
struct tg_metrics_histogram_view {
    uint64_t buckets[TG_METRICS_N_BUCKETS + 1]; /* not cumulative */
    uint64_t sum_us;
};

struct tg_metrics_totals {
    int64_t started_ns; /* wall clock */
    uint64_t generation;
    uint64_t reloads_ok, reloads_failed;
    bool is_last_reload_ok;
    int64_t last_reload_ns; /* 0: never reloaded */
    uint64_t worker_restarts, workers;
    uint64_t dropped; /* increments with no series to go to */
    uint64_t requests[TG_N_SURFACES][TG_N_STATUSES];
    struct tg_metrics_histogram_view latency[TG_N_SURFACES];
    struct tg_metrics_histogram_view ttft[TG_N_SURFACES];
    uint64_t log_lost[TG_N_LOGS];
    int64_t in_flight; /* over all workers */
};

void tg_metrics_read(const struct tg_metrics *m, struct tg_metrics_totals *out);

struct tg_metrics_model_view {
    const char *name, *provider;
    uint64_t calls[TG_N_OUTCOMES];
    uint64_t fallbacks; /* requests that moved on from it */
};

struct tg_metrics_team_view {
    const char *name;
    uint64_t refused[TG_N_LIMITS];
};

struct tg_metrics_pair_view {
    const char *team, *model, *provider;
    uint64_t prompt_tokens, completion_tokens, cost_nano_usd;
};

/* The i-th registered model, team, or pair in use (i is a cursor that
 * the call moves past the pair); false past the last. Names point into
 * the segment and stay valid. */
bool tg_metrics_read_model(const struct tg_metrics *m, size_t i,
                           struct tg_metrics_model_view *out);
bool tg_metrics_read_team(const struct tg_metrics *m, size_t i,
                          struct tg_metrics_team_view *out);
bool tg_metrics_read_pair(const struct tg_metrics *m, size_t *i,
                          struct tg_metrics_pair_view *out);

#endif
