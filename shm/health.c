/*
 * health.c - each provider's circuit breaker, and the in-flight counts.
 *
 * The breaker's state is one double-buffered struct under the slot lock
 * (slot.c), so "fail, count, maybe open" and "cooled down: take the probe"
 * are each one decision across all workers: two workers can never both
 * take the probe, and a failure that arrives while another worker opens the
 * breaker is counted once.
 *
 * In-flight counts are not under the lock: each worker adds to its own
 * counters only (relaxed atomics, a single writer each), and a reader sums
 * over the worker slots. That costs nothing on the request path and makes
 * crash safety simple: the master zeroes a dead worker's slot.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"

/* New latency samples weigh 1/8 in the moving average. */
#define EWMA_WEIGHT 8

static struct health_state *begin(struct tg_shm_provider *p)
{
    return tg_shm_lock_begin(&p->lock, p->state, sizeof(p->state[0]),
                             "state of provider ", p->name);
}

static void commit(struct tg_shm_provider *p)
{
    tg_shm_lock_commit(&p->lock);
}

static size_t provider_index(struct tg_shm *shm, struct tg_shm_provider *p)
{
    return (size_t)(p - shm_providers(shm->header));
}

static void count_in_flight(struct tg_shm *shm, struct tg_shm_provider *p,
                            int delta)
{
    if (shm->worker_slot < 0)
        return;
    atomic_fetch_add_explicit(&shm_workers(shm->header)[shm->worker_slot]
                                   .in_flight[provider_index(shm, p)],
                              delta, memory_order_relaxed);
}

/* Open and cooled down, with no live probe: the next caller probes. */
static bool may_probe(const struct health_state *s, int64_t now_ns)
{
    return now_ns >= s->cooling_until_ns && now_ns >= s->probe_until_ns;
}

static int64_t wait_for(const struct health_state *s, int64_t now_ns)
{
    int64_t wait = s->cooling_until_ns - now_ns;

    /* A probe is out: its answer may come any moment, so ask for a short
     * wait rather than the whole lease. */
    if (wait <= 0)
        wait = s->probe_until_ns - now_ns < TG_NS_PER_S
                   ? s->probe_until_ns - now_ns
                   : TG_NS_PER_S;
    return wait > 0 ? wait : 0;
}

enum tg_health_pass tg_shm_health_enter(struct tg_shm *shm,
                                        struct tg_shm_provider *p,
                                        int64_t now_ns, int64_t probe_lease_ns,
                                        int64_t *wait_ns)
{
    struct health_state *s = begin(p);
    enum tg_health_pass pass = TG_HEALTH_PASS;

    *wait_ns = 0;
    if (s->is_open && may_probe(s, now_ns)) {
        s->probe_until_ns = now_ns + probe_lease_ns;
        pass = TG_HEALTH_PROBE;
    } else if (s->is_open) {
        *wait_ns = wait_for(s, now_ns);
        pass = TG_HEALTH_COOLING;
    }
    commit(p);
    if (pass != TG_HEALTH_COOLING)
        count_in_flight(shm, p, 1);
    return pass;
}

bool tg_shm_health_is_cooling(struct tg_shm_provider *p, int64_t now_ns,
                              int64_t *wait_ns)
{
    struct health_state *s = begin(p);
    bool is_cooling = s->is_open && !may_probe(s, now_ns);

    *wait_ns = is_cooling ? wait_for(s, now_ns) : 0;
    commit(p);
    return is_cooling;
}

static void on_ok(struct health_state *s, const struct tg_health_report *r)
{
    s->consecutive_fails = 0;
    s->is_open = 0;
    s->cooling_until_ns = 0;
    s->probe_until_ns = 0;
    s->last_ok_ns = r->now_ns;
    if (r->latency_us < 0)
        return;
    if (!s->has_latency)
        s->latency_ewma_us = r->latency_us;
    else
        s->latency_ewma_us +=
            (r->latency_us - s->latency_ewma_us) / EWMA_WEIGHT;
    s->has_latency = 1;
}

/* A failure opens a closed breaker at allowed_fails in a row, and reopens a
 * half-open one when it was the probe. A failure of a call that started
 * before the breaker opened changes only the count. */
static void on_failed(struct health_state *s,
                      const struct tg_health_policy *policy,
                      const struct tg_health_report *r)
{
    bool opens = s->is_open ? r->probe_until_ns != 0
                            : s->consecutive_fails + 1 >=
                                  (uint32_t)policy->allowed_fails;

    s->consecutive_fails++;
    s->last_error_ns = r->now_ns;
    s->last_error_status = r->status;
    snprintf(s->last_error, sizeof(s->last_error), "%s",
             r->error ? r->error : "");
    if (opens) {
        s->is_open = 1;
        s->cooling_until_ns = r->now_ns + policy->cooldown_ns;
        s->probe_until_ns = 0;
    }
}

void tg_shm_health_report(struct tg_shm *shm, struct tg_shm_provider *p,
                          const struct tg_health_policy *policy,
                          const struct tg_health_report *report)
{
    struct health_state *s = begin(p);

    switch (report->outcome) {
    case TG_HEALTH_OK: on_ok(s, report); break;
    case TG_HEALTH_FAILED: on_failed(s, policy, report); break;
    case TG_HEALTH_ABANDONED:
        /* An abandoned probe decided nothing: let another one go, unless
         * its lease ran out and a later probe holds it now. */
        if (report->probe_until_ns != 0 &&
            report->probe_until_ns == s->probe_until_ns)
            s->probe_until_ns = 0;
        break;
    }
    commit(p);
    count_in_flight(shm, p, -1);
}

static int64_t sum_in_flight(const struct tg_shm *shm, size_t index)
{
    const struct shm_worker *w = shm_workers(shm->header);
    int64_t n = 0;
    size_t i;

    for (i = 0; i < TG_SHM_WORKER_SLOTS; i++)
        n += atomic_load_explicit(&w[i].in_flight[index], memory_order_relaxed);
    return n;
}

static enum tg_health_state state_of(const struct health_state *s,
                                     int64_t now_ns)
{
    if (!s->is_open)
        return TG_HEALTH_CLOSED;
    return now_ns < s->cooling_until_ns ? TG_HEALTH_OPEN : TG_HEALTH_HALF_OPEN;
}

void tg_shm_health_read(const struct tg_shm *shm, struct tg_shm_provider *p,
                        int64_t now_ns, struct tg_shm_health_view *out)
{
    struct health_state *s = begin(p);

    out->state = state_of(s, now_ns);
    out->consecutive_fails = s->consecutive_fails;
    out->cooling_until_ns = s->cooling_until_ns;
    out->is_probing = s->is_open && now_ns < s->probe_until_ns;
    out->has_latency = s->has_latency != 0;
    out->latency_ewma_us = s->latency_ewma_us;
    out->last_ok_ns = s->last_ok_ns;
    out->last_error_ns = s->last_error_ns;
    out->last_error_status = s->last_error_status;
    memcpy(out->last_error, s->last_error, sizeof(out->last_error));
    commit(p);
    out->in_flight =
        sum_in_flight(shm, (size_t)(p - shm_providers(shm->header)));
}

void tg_shm_health_reset(struct tg_shm_provider *p)
{
    struct health_state *s = begin(p);

    s->consecutive_fails = 0;
    s->is_open = 0;
    s->cooling_until_ns = 0;
    s->probe_until_ns = 0;
    commit(p);
}

void tg_shm_health_reset_leases(struct tg_shm_provider *p)
{
    struct health_state *s = begin(p);

    s->probe_until_ns = 0;
    commit(p);
}

int tg_shm_worker_take(struct tg_shm *shm)
{
    struct shm_worker *w = shm_workers(shm->header);
    int i;

    for (i = 0; i < TG_SHM_WORKER_SLOTS; i++) {
        if (atomic_load(&w[i].pid) == 0) {
            atomic_store(&w[i].pid, -1);
            return i;
        }
    }
    return -1;
}

void tg_shm_worker_attach(struct tg_shm *shm, int slot)
{
    shm->worker_slot = slot;
    if (slot >= 0)
        atomic_store(&shm_workers(shm->header)[slot].pid, (int32_t)getpid());
}

/* The worker is dead: nothing it counted is in flight any more. */
void tg_shm_worker_free(struct tg_shm *shm, int slot)
{
    struct shm_worker *w;
    size_t i;

    if (slot < 0)
        return;
    w = &shm_workers(shm->header)[slot];
    for (i = 0; i < TG_CFG_MAX_PROVIDERS; i++)
        atomic_store_explicit(&w->in_flight[i], 0, memory_order_relaxed);
    atomic_store(&w->pid, 0);
}

void tg_shm_workers_reset(struct shm_header *h)
{
    memset(shm_workers(h), 0, TG_SHM_WORKER_SLOTS * sizeof(struct shm_worker));
}
