/*
 * route.c - which candidate serves a call, and what each attempt tells the
 * providers' health.
 *
 * A request names a model or a model group; its candidates are the model,
 * or the group's primary then each fallback in order (PRODUCT.md section
 * 5). A candidate is skipped when its provider is disabled or its breaker
 * in the shared segment is open. Every attempt that reached a provider is
 * reported exactly once, when it ends: to the provider's health slot, and
 * as one line of the usage log.
 */
#include <stdio.h>

#include "tg.h"
#include "tg_back.h"
#include "tg_bucket.h"
#include "tg_log.h"
#include "tg_metrics.h"
#include "tg_req.h"
#include "tg_shm.h"
#include "tg_worker.h"

/* A probe that has not answered after its whole timeout plus this is
 * presumed lost with its worker: another may go. */
#define PROBE_LEASE_SLACK_MS 1000

/* The i-th candidate: the model, or a group's primary then its fallbacks
 * in order; NULL past the last. */
static const struct tg_model *candidate(const struct tg_req *r, int i)
{
    const struct tg_model_group *g = r->target.group;

    if (g == NULL)
        return i == 0 ? r->target.model : NULL;
    if (i == 0)
        return g->primary;
    return (size_t)i <= g->n_fallbacks ? g->fallbacks[i - 1] : NULL;
}

size_t tg_route_model_index(const struct tg_req *r, const struct tg_model *m)
{
    return (size_t)(m - r->worker->cfg->models);
}

bool tg_route_fail_over(struct tg_req *r)
{
    const struct tg_model *next = candidate(r, r->n_fallbacks + 1);

    if (next == NULL)
        return false;
    tg_metrics_fallback(r->worker->metrics, tg_route_model_index(r, r->model));
    r->n_fallbacks++;
    r->model = next;
    r->n_retries = 0;
    r->candidate_started_us = tg_now_us();
    return true;
}

static bool is_callable(const struct tg_model *m)
{
    return m->provider->is_enabled && tg_back_for(m->provider->type) != NULL;
}

static struct tg_shm_provider *health_of(const struct tg_req *r,
                                         const struct tg_model *m)
{
    const struct tg_config *cfg = r->worker->cfg;

    return tg_shm_provider(r->worker->shm,
                           (size_t)(m->provider - cfg->providers));
}

static struct tg_health_policy policy(const struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;

    return (struct tg_health_policy){
        .allowed_fails = cfg->health.allowed_fails,
        .cooldown_ns = (int64_t)cfg->health.cooldown_s * TG_NS_PER_S};
}

/* Notes a candidate skipped as cooling down, for the Retry-After of a 503. */
static void note_cooling(struct tg_req *r, int64_t wait_ns)
{
    if (!r->has_skipped_cooling || wait_ns < r->cooling_wait_ns)
        r->cooling_wait_ns = wait_ns;
    r->has_skipped_cooling = true;
}

static void fail_cooling(struct tg_req *r)
{
    int64_t wait_s = (r->cooling_wait_ns + TG_NS_PER_S - 1) / TG_NS_PER_S;
    char value[24];

    snprintf(value, sizeof(value), "%lld",
             (long long)(wait_s > 0 ? wait_s : 1));
    tg_req_header(r, "Retry-After", value);
    tg_req_fail(r, 503, "providers_cooling_down",
                "every provider that can serve model '%.*s' is cooling down "
                "after repeated failures; retry after %s s",
                (int)(r->model_name.len > 200 ? 200 : r->model_name.len),
                r->model_name.ptr, value);
}

int tg_route_check(struct tg_req *r)
{
    int64_t now = tg_shm_now_ns(), wait;
    const struct tg_model *m;
    int i;

    for (i = 0; (m = candidate(r, i)) != NULL; i++) {
        if (!is_callable(m))
            continue;
        if (!tg_shm_health_is_cooling(health_of(r, m), now, &wait))
            return TG_OK;
        note_cooling(r, wait);
    }
    if (!r->has_skipped_cooling)
        return TG_OK; /* none is callable: tg_route_enter says so */
    fail_cooling(r);
    return TG_ERROR;
}

/* Enters r->model's breaker; false when it is cooling down. */
static bool enter(struct tg_req *r)
{
    const struct tg_provider *p = r->model->provider;
    struct tg_shm_provider *h = health_of(r, r->model);
    int64_t lease_ns =
        ((int64_t)p->timeout_ms + PROBE_LEASE_SLACK_MS) * (TG_NS_PER_S / 1000);
    int64_t now = tg_shm_now_ns(), wait;

    switch (tg_shm_health_enter(r->worker->shm, h, now, lease_ns, &wait)) {
    case TG_HEALTH_COOLING: note_cooling(r, wait); return false;
    case TG_HEALTH_PROBE:
        r->probe_until_ns = now + lease_ns;
        tg_log_info("%s: probing provider %s after its cooldown", r->id,
                    p->name);
        break;
    case TG_HEALTH_PASS: r->probe_until_ns = 0; break;
    }
    r->health = h;
    r->attempt_started_us = tg_now_us();
    r->n_attempts++;
    return true;
}

int tg_route_enter(struct tg_req *r)
{
    while (!is_callable(r->model) || !enter(r)) {
        if (tg_route_fail_over(r))
            continue;
        if (r->has_skipped_cooling)
            fail_cooling(r);
        else
            tg_req_fail(r, 503, "provider_unavailable",
                        "the provider '%s' of model '%s' is not available",
                        r->model->provider->name, r->model->name);
        return TG_ERROR;
    }
    return TG_OK;
}

/* The provider answered when the call ended well or with the caller's own
 * error (an upstream 4xx becomes 400, see back_http.c). */
static enum tg_health_outcome outcome_of(const struct tg_event *ev)
{
    if (ev == NULL)
        return TG_HEALTH_ABANDONED;
    if (ev->type == TG_EV_DONE || ev->status == 400)
        return TG_HEALTH_OK;
    return TG_HEALTH_FAILED;
}

/* For metrics: upstream 4xx arrive as 400 (see back_http.c). */
static enum tg_call_outcome call_outcome(const struct tg_event *ev)
{
    if (ev == NULL)
        return TG_CALL_CANCELLED;
    if (ev->type == TG_EV_DONE)
        return TG_CALL_OK;
    switch (ev->status) {
    case 400: return TG_CALL_CLIENT_ERROR;
    case 429: return TG_CALL_RATE_LIMITED;
    case 504: return TG_CALL_TIMEOUT;
    default: return TG_CALL_ERROR;
    }
}

void tg_route_attempt_end(struct tg_req *r, const struct tg_event *ev)
{
    int64_t first_byte_us = r->call.first_byte_us;
    char error[TG_SHM_ERROR_MAX + 1] = "";
    struct tg_health_report report = {
        .outcome = outcome_of(ev),
        .probe_until_ns = r->probe_until_ns,
        .now_ns = tg_shm_now_ns(),
        .latency_us =
            first_byte_us > 0 ? first_byte_us - r->attempt_started_us : -1,
        .status = ev != NULL ? ev->status : 0,
        .error = error};
    struct tg_health_policy p = policy(r);

    if (r->health == NULL)
        return;
    if (ev != NULL && ev->type == TG_EV_ERROR)
        snprintf(error, sizeof(error), "%.*s", (int)ev->text.len, ev->text.ptr);
    tg_usage_log_write(r, ev);
    tg_metrics_call(r->worker->metrics, tg_route_model_index(r, r->model),
                    call_outcome(ev));
    tg_shm_health_report(r->worker->shm, r->health, &p, &report);
    r->health = NULL;
    r->probe_until_ns = 0;
}

void tg_route_attempt_cancel(struct tg_req *r)
{
    struct tg_health_report report = {.outcome = TG_HEALTH_ABANDONED,
                                      .probe_until_ns = r->probe_until_ns,
                                      .now_ns = tg_shm_now_ns()};
    struct tg_health_policy p = policy(r);

    if (r->health == NULL)
        return;
    tg_shm_health_report(r->worker->shm, r->health, &p, &report);
    r->health = NULL;
    r->probe_until_ns = 0;
}
