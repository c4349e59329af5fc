/*
 * metrics_page.c - GET /metrics: the shared counters (tg_metrics.h) and the
 * providers' health, in Prometheus' text exposition format 0.0.4.
 *
 * Every family is written whole, HELP and TYPE first. Series whose value
 * has never moved are left out (a team that was never refused has no
 * refusal series), except the gauges, which are always there.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_http.h"
#include "tg_metrics.h"
#include "tg_req.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static const char *const surface_names[TG_N_SURFACES] = {
    "openai", "platform", "jobs", "stip", "admin", "ops", "none"};
static const char *const outcome_names[TG_N_OUTCOMES] = {
    "ok", "client_error", "rate_limited", "timeout", "error", "cancelled"};
static const char *const limit_names[TG_N_LIMITS] = {"rpm", "tpm", "budget",
                                                     "credits"};
static const char *const log_names[TG_N_LOGS] = {"access", "usage"};
static const int64_t bucket_bounds_us[TG_METRICS_N_BUCKETS] = {
    TG_METRICS_BUCKETS_US};

static void family(struct evbuffer *b, const char *name, const char *type,
                   const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

/* ,key="value" with the value escaped as the format says. */
static void label(struct evbuffer *b, const char *key, const char *value)
{
    const char *p;

    evbuffer_add_printf(b, "%s=\"", key);
    for (p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            evbuffer_add_printf(b, "\\%c", *p);
        else if (*p == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void put(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, s, strlen(s));
}

static void sample(struct evbuffer *b, const char *name, uint64_t value)
{
    evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

static void write_process(struct evbuffer *b, const struct tg_metrics_totals *t)
{
    family(b, "tollgate_build_info", "gauge", "The running build.");
    evbuffer_add_printf(b, "tollgate_build_info{version=\"%s\"} 1\n",
                        TG_VERSION);
    family(b, "tollgate_start_time_seconds", "gauge",
           "When the master started, in seconds since the epoch.");
    evbuffer_add_printf(b, "tollgate_start_time_seconds %.3f\n",
                        (double)t->started_ns / 1e9);
    family(b, "tollgate_workers", "gauge",
           "Worker processes running, draining ones included.");
    sample(b, "tollgate_workers", t->workers);
    family(b, "tollgate_worker_restarts_total", "counter",
           "Workers that died and were replaced.");
    sample(b, "tollgate_worker_restarts_total", t->worker_restarts);
    family(b, "tollgate_requests_in_flight", "gauge",
           "Requests being served now, this scrape included.");
    evbuffer_add_printf(b, "tollgate_requests_in_flight %lld\n",
                        (long long)(t->in_flight > 0 ? t->in_flight : 0));
}

static void write_config(struct evbuffer *b, const struct tg_metrics_totals *t)
{
    family(b, "tollgate_config_generation", "gauge",
           "The configuration generation new workers serve.");
    sample(b, "tollgate_config_generation", t->generation);
    family(b, "tollgate_config_last_reload_successful", "gauge",
           "Whether the last reload (SIGHUP) succeeded; 1 before any.");
    sample(b, "tollgate_config_last_reload_successful", t->is_last_reload_ok);
    family(b, "tollgate_config_last_reload_timestamp_seconds", "gauge",
           "When the last reload was tried; 0 before any.");
    evbuffer_add_printf(b,
                        "tollgate_config_last_reload_timestamp_seconds "
                        "%.3f\n",
                        (double)t->last_reload_ns / 1e9);
    family(b, "tollgate_config_reloads_total", "counter",
           "Reloads tried, by result.");
    evbuffer_add_printf(b,
                        "tollgate_config_reloads_total{result=\"success\"} "
                        "%llu\n"
                        "tollgate_config_reloads_total{result=\"failure\"} "
                        "%llu\n",
                        (unsigned long long)t->reloads_ok,
                        (unsigned long long)t->reloads_failed);
}

static void write_requests(struct evbuffer *b,
                           const struct tg_metrics_totals *t)
{
    int i, k;

    family(b, "tollgate_requests_total", "counter",
           "HTTP requests answered, by surface and status (499: the client "
           "went away first).");
    for (i = 0; i < TG_N_SURFACES; i++)
        for (k = 0; k < TG_N_STATUSES; k++)
            if (t->requests[i][k] > 0)
                evbuffer_add_printf(
                    b,
                    "tollgate_requests_total{surface=\"%s\",status=\"%s\"} "
                    "%llu\n",
                    surface_names[i], tg_metrics_status_label(k),
                    (unsigned long long)t->requests[i][k]);
}

/* Buckets are kept apart and summed here, so that _count is exactly the
 * +Inf bucket even when a writer died between its two adds. */
static void write_histogram(struct evbuffer *b, const char *name,
                            const char *surface,
                            const struct tg_metrics_histogram_view *h)
{
    uint64_t total = 0;
    int i;

    for (i = 0; i <= TG_METRICS_N_BUCKETS; i++)
        total += h->buckets[i];
    if (total == 0)
        return;
    total = 0;
    for (i = 0; i < TG_METRICS_N_BUCKETS; i++) {
        total += h->buckets[i];
        evbuffer_add_printf(b, "%s_bucket{surface=\"%s\",le=\"%g\"} %llu\n",
                            name, surface, (double)bucket_bounds_us[i] / 1e6,
                            (unsigned long long)total);
    }
    total += h->buckets[TG_METRICS_N_BUCKETS];
    evbuffer_add_printf(b,
                        "%s_bucket{surface=\"%s\",le=\"+Inf\"} %llu\n"
                        "%s_sum{surface=\"%s\"} %.6f\n"
                        "%s_count{surface=\"%s\"} %llu\n",
                        name, surface, (unsigned long long)total, name, surface,
                        (double)h->sum_us / 1e6, name, surface,
                        (unsigned long long)total);
}

static void write_latencies(struct evbuffer *b,
                            const struct tg_metrics_totals *t)
{
    int i;

    family(b, "tollgate_request_duration_seconds", "histogram",
           "From a request's arrival to its answer's last byte queued.");
    for (i = 0; i < TG_N_SURFACES; i++)
        write_histogram(b, "tollgate_request_duration_seconds",
                        surface_names[i], &t->latency[i]);
    family(b, "tollgate_time_to_first_token_seconds", "histogram",
           "Streamed requests: from arrival to the first token sent.");
    for (i = 0; i < TG_N_SURFACES; i++)
        write_histogram(b, "tollgate_time_to_first_token_seconds",
                        surface_names[i], &t->ttft[i]);
}

/* name{provider="p",model="m" */
static void model_labels(struct evbuffer *b, const char *name,
                         const char *provider, const char *model)
{
    put(b, name);
    put(b, "{");
    label(b, "provider", provider);
    put(b, ",");
    label(b, "model", model);
}

static void write_calls(struct evbuffer *b, const struct tg_metrics *m)
{
    struct tg_metrics_model_view v;
    size_t i;
    int k;

    family(b, "tollgate_upstream_requests_total", "counter",
           "Calls to providers (each retry and fallback is one), by "
           "outcome.");
    for (i = 0; tg_metrics_read_model(m, i, &v); i++)
        for (k = 0; k < TG_N_OUTCOMES; k++)
            if (v.calls[k] > 0) {
                model_labels(b, "tollgate_upstream_requests_total", v.provider,
                             v.name);
                evbuffer_add_printf(b, ",outcome=\"%s\"} %llu\n",
                                    outcome_names[k],
                                    (unsigned long long)v.calls[k]);
            }
    family(b, "tollgate_fallbacks_total", "counter",
           "Requests that moved on from this model to the next candidate.");
    for (i = 0; tg_metrics_read_model(m, i, &v); i++)
        if (v.fallbacks > 0) {
            model_labels(b, "tollgate_fallbacks_total", v.provider, v.name);
            evbuffer_add_printf(b, "} %llu\n", (unsigned long long)v.fallbacks);
        }
}

enum usage_kind { PROMPT_TOKENS, COMPLETION_TOKENS, COST };

static void write_usage(struct evbuffer *b, const struct tg_metrics *m,
                        const char *name, enum usage_kind what)
{
    struct tg_metrics_pair_view v;
    size_t i = 0;

    while (tg_metrics_read_pair(m, &i, &v)) {
        put(b, name);
        put(b, "{");
        label(b, "team", v.team);
        put(b, ",");
        label(b, "provider", v.provider);
        put(b, ",");
        label(b, "model", v.model);
        if (what == PROMPT_TOKENS)
            evbuffer_add_printf(b, ",type=\"prompt\"} %llu\n",
                                (unsigned long long)v.prompt_tokens);
        else if (what == COMPLETION_TOKENS)
            evbuffer_add_printf(b, ",type=\"completion\"} %llu\n",
                                (unsigned long long)v.completion_tokens);
        else
            evbuffer_add_printf(b, "} %.9f\n", (double)v.cost_nano_usd / 1e9);
    }
}

static void write_teams(struct evbuffer *b, const struct tg_metrics *m)
{
    struct tg_metrics_team_view v;
    size_t i;
    int k;

    family(b, "tollgate_tokens_total", "counter",
           "Tokens charged to a team, by model and type.");
    write_usage(b, m, "tollgate_tokens_total", PROMPT_TOKENS);
    write_usage(b, m, "tollgate_tokens_total", COMPLETION_TOKENS);
    family(b, "tollgate_cost_usd_total", "counter",
           "What a team's calls cost at the model's prices, in USD.");
    write_usage(b, m, "tollgate_cost_usd_total", COST);
    family(b, "tollgate_rate_limited_total", "counter",
           "Requests refused before any call, by team and the limit hit.");
    for (i = 0; tg_metrics_read_team(m, i, &v); i++)
        for (k = 0; k < TG_N_LIMITS; k++)
            if (v.refused[k] > 0) {
                put(b, "tollgate_rate_limited_total{");
                label(b, "team", v.name);
                evbuffer_add_printf(b, ",limit=\"%s\"} %llu\n", limit_names[k],
                                    (unsigned long long)v.refused[k]);
            }
}

static void provider_labels(struct evbuffer *b, const char *name,
                            const struct tg_provider *p)
{
    put(b, name);
    put(b, "{");
    label(b, "provider", p->name);
}

/* Three passes over the providers, each family whole; a read is a copy
 * of the current state, without a lock. */
static void write_providers(struct evbuffer *b, const struct tg_worker *w)
{
    static const char *const states[] = {"closed", "open", "half_open"};
    const struct tg_config *cfg = w->cfg;
    int64_t now = tg_shm_now_ns();
    struct tg_shm_health_view v;
    size_t i, k;

    family(b, "tollgate_provider_state", "gauge",
           "A provider's circuit breaker: 1 for the state it is in.");
    for (i = 0; i < cfg->n_providers; i++) {
        tg_shm_health_read(w->shm, tg_shm_provider(w->shm, i), now, &v);
        for (k = 0; k < TG_ARRAY_LEN(states); k++) {
            provider_labels(b, "tollgate_provider_state", &cfg->providers[i]);
            evbuffer_add_printf(b, ",state=\"%s\"} %d\n", states[k],
                                (size_t)v.state == k);
        }
    }
    family(b, "tollgate_provider_consecutive_failures", "gauge",
           "Failures in a row, over all workers.");
    for (i = 0; i < cfg->n_providers; i++) {
        tg_shm_health_read(w->shm, tg_shm_provider(w->shm, i), now, &v);
        provider_labels(b, "tollgate_provider_consecutive_failures",
                        &cfg->providers[i]);
        evbuffer_add_printf(b, "} %u\n", v.consecutive_fails);
    }
    family(b, "tollgate_provider_calls_in_flight", "gauge",
           "Calls to a provider running now, over all workers.");
    for (i = 0; i < cfg->n_providers; i++) {
        tg_shm_health_read(w->shm, tg_shm_provider(w->shm, i), now, &v);
        provider_labels(b, "tollgate_provider_calls_in_flight",
                        &cfg->providers[i]);
        evbuffer_add_printf(b, "} %lld\n", (long long)v.in_flight);
    }
}

static void write_losses(struct evbuffer *b, const struct tg_metrics_totals *t)
{
    int i;

    family(b, "tollgate_log_lines_lost_total", "counter",
           "Lines an unwritable or full log could not take.");
    for (i = 0; i < TG_N_LOGS; i++)
        evbuffer_add_printf(b,
                            "tollgate_log_lines_lost_total{log=\"%s\"} %llu\n",
                            log_names[i], (unsigned long long)t->log_lost[i]);
    family(b, "tollgate_metrics_dropped_total", "counter",
           "Increments with no series to go to (more teams, models or "
           "pairs than the tables hold).");
    sample(b, "tollgate_metrics_dropped_total", t->dropped);
}

void tg_http_metrics(struct tg_req *r)
{
    const struct tg_worker *w = r->worker;
    struct tg_metrics_totals t;

    tg_metrics_read(w->metrics, &t);
    write_process(r->out, &t);
    write_config(r->out, &t);
    write_requests(r->out, &t);
    write_latencies(r->out, &t);
    write_calls(r->out, w->metrics);
    write_teams(r->out, w->metrics);
    write_providers(r->out, w);
    write_losses(r->out, &t);
    tg_req_send_as(r, 200, CONTENT_TYPE);
}
