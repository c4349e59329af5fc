/*
 * metrics.c - the shared counters of GET /metrics; see tg_metrics.h.
 */
#include "tg_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "tg.h"

#define NO_ENTRY UINT32_MAX /* a name the table had no room for */

struct tg_metrics {
    struct tg_shm *shm;   /* its header moves in the master when it grows */
    uint32_t *team_entry; /* per cfg->teams[i] */
    size_t n_team_entry;
    uint32_t *model_entry; /* per cfg->models[i] */
    size_t n_model_entry;
};

#define relaxed memory_order_relaxed

static const int statuses[] = {
#define X(code) code,
    TG_METRICS_STATUSES
#undef X
};

static const int64_t bucket_bounds_us[TG_METRICS_N_BUCKETS] = {
    TG_METRICS_BUCKETS_US};

static struct shm_metrics *seg(const struct tg_metrics *m)
{
    return shm_metrics(m->shm->header);
}

/* Zeroes what was used, rather than the whole region, so that the file's
 * unused pages stay holes. */
void tg_shm_metrics_reset(struct shm_header *h)
{
    struct shm_metrics *s = shm_metrics(h);
    uint32_t n_teams = atomic_load(&s->n_teams);
    uint32_t n_models = atomic_load(&s->n_models);
    size_t i;

    if (n_teams > TG_METRICS_TEAMS || n_models > TG_METRICS_MODELS) {
        memset(s, 0, sizeof(*s));
    } else {
        memset(s, 0, offsetof(struct shm_metrics, teams));
        memset(s->teams, 0, n_teams * sizeof(s->teams[0]));
        memset(s->models, 0, n_models * sizeof(s->models[0]));
        for (i = 0; i < TG_METRICS_PAIRS; i++)
            if (atomic_load(&s->pairs[i].key) != 0)
                memset(&s->pairs[i], 0, sizeof(s->pairs[i]));
    }
    atomic_store(&s->started_ns, tg_shm_now_ns());
    atomic_store(&s->generation, 1);
    atomic_store(&s->is_last_reload_ok, 1);
}

void tg_metrics_free(struct tg_metrics *m)
{
    if (m == NULL)
        return;
    free(m->team_entry);
    free(m->model_entry);
    free(m);
}

static uint32_t find_team(const struct shm_metrics *s, const char *name)
{
    uint32_t i, n = atomic_load(&s->n_teams);

    for (i = 0; i < n; i++)
        if (strcmp(s->teams[i].name, name) == 0)
            return i;
    return NO_ENTRY;
}

static uint32_t add_team(struct shm_metrics *s, const char *name)
{
    uint32_t i = find_team(s, name), n = atomic_load(&s->n_teams);

    if (i != NO_ENTRY)
        return i;
    if (n == TG_METRICS_TEAMS || strlen(name) >= sizeof(s->teams[0].name))
        return NO_ENTRY;
    strcpy(s->teams[n].name, name);
    atomic_store_explicit(&s->n_teams, n + 1, memory_order_release);
    return n;
}

static uint32_t add_model(struct shm_metrics *s, const struct tg_model *m)
{
    uint32_t i, n = atomic_load(&s->n_models);
    struct metrics_model *e;

    for (i = 0; i < n; i++)
        if (strcmp(s->models[i].name, m->name) == 0 &&
            strcmp(s->models[i].provider, m->provider->name) == 0)
            return i;
    if (n == TG_METRICS_MODELS)
        return NO_ENTRY;
    e = &s->models[n];
    if (strlen(m->name) >= sizeof(e->name) ||
        strlen(m->provider->name) >= sizeof(e->provider))
        return NO_ENTRY;
    strcpy(e->name, m->name);
    strcpy(e->provider, m->provider->name);
    atomic_store_explicit(&s->n_models, n + 1, memory_order_release);
    return n;
}

/* Lookups are linear, but run in the master at configure only: a config
 * at the tables' limits registers in well under a second. */
struct tg_metrics *tg_metrics_new(struct tg_shm *shm,
                                  const struct tg_config *cfg)
{
    struct tg_metrics *m = calloc(1, sizeof(*m));
    struct shm_metrics *s = shm_metrics(shm->header);
    size_t i;

    if (m == NULL)
        return NULL;
    m->shm = shm;
    m->team_entry = calloc(cfg->n_teams + 1, sizeof(*m->team_entry));
    m->model_entry = calloc(cfg->n_models + 1, sizeof(*m->model_entry));
    if (m->team_entry == NULL || m->model_entry == NULL) {
        tg_metrics_free(m);
        return NULL;
    }
    m->n_team_entry = cfg->n_teams;
    m->n_model_entry = cfg->n_models;
    for (i = 0; i < cfg->n_teams; i++)
        m->team_entry[i] = add_team(s, cfg->teams[i].name);
    for (i = 0; i < cfg->n_models; i++)
        m->model_entry[i] = add_model(s, &cfg->models[i]);
    return m;
}

void tg_metrics_reloaded(struct tg_metrics *m, bool is_ok, unsigned generation,
                         int64_t now_ns)
{
    struct shm_metrics *s = seg(m);

    atomic_fetch_add(is_ok ? &s->reloads_ok : &s->reloads_failed, 1);
    atomic_store(&s->is_last_reload_ok, is_ok);
    atomic_store(&s->last_reload_ns, now_ns);
    atomic_store(&s->generation, generation);
}

void tg_metrics_worker_restarted(struct tg_metrics *m)
{
    atomic_fetch_add(&seg(m)->worker_restarts, 1);
}

void tg_metrics_set_workers(struct tg_metrics *m, size_t n)
{
    atomic_store(&seg(m)->workers, n);
}

void tg_metrics_worker_gone(struct tg_metrics *m, int slot)
{
    if (slot >= 0 && slot < TG_SHM_WORKER_SLOTS)
        atomic_store(&seg(m)->in_flight[slot], 0);
}

static int status_index(int status)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(statuses); i++)
        if (statuses[i] == status)
            return (int)i;
    return TG_STATUS_OTHER;
}

const char *tg_metrics_status_label(int index)
{
    static const char *const labels[] = {
#define X(code) #code,
        TG_METRICS_STATUSES
#undef X
        "other"};

    return index >= 0 && index < TG_N_STATUSES ? labels[index] : "other";
}

static void observe(struct metrics_histogram *h, int64_t us)
{
    int i = 0;

    if (us < 0)
        us = 0;
    while (i < TG_METRICS_N_BUCKETS && us > bucket_bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, relaxed);
}

void tg_metrics_request(struct tg_metrics *m, enum tg_surface s, int status,
                        int64_t latency_us, int64_t ttft_us)
{
    struct shm_metrics *c = seg(m);

    atomic_fetch_add_explicit(&c->requests[s][status_index(status)], 1,
                              relaxed);
    observe(&c->latency[s], latency_us);
    if (ttft_us >= 0)
        observe(&c->ttft[s], ttft_us);
}

/* The worker's own slot (tg_shm_worker_attach), which the master zeroes
 * when it reaps the worker: a killed worker leaves nothing in flight. */
void tg_metrics_in_flight(struct tg_metrics *m, int64_t n)
{
    int slot = m->shm->worker_slot;

    if (slot >= 0)
        atomic_store_explicit(&seg(m)->in_flight[slot], n, relaxed);
}

static uint32_t model_entry(struct tg_metrics *m, size_t model)
{
    return model < m->n_model_entry ? m->model_entry[model] : NO_ENTRY;
}

static uint32_t team_entry(struct tg_metrics *m, size_t team)
{
    return team < m->n_team_entry ? m->team_entry[team] : NO_ENTRY;
}

/* Adds 1 to c, or to the dropped count when there is no entry (NULL). */
static void bump(struct tg_metrics *m, _Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c != NULL ? c : &seg(m)->dropped, 1, relaxed);
}

void tg_metrics_call(struct tg_metrics *m, size_t model, enum tg_call_outcome o)
{
    uint32_t e = model_entry(m, model);

    bump(m, e == NO_ENTRY ? NULL : &seg(m)->models[e].calls[o]);
}

void tg_metrics_fallback(struct tg_metrics *m, size_t model)
{
    uint32_t e = model_entry(m, model);

    bump(m, e == NO_ENTRY ? NULL : &seg(m)->models[e].fallbacks);
}

void tg_metrics_refused(struct tg_metrics *m, size_t team, enum tg_limit why)
{
    uint32_t e = team_entry(m, team);

    bump(m, e == NO_ENTRY ? NULL : &seg(m)->teams[e].refused[why]);
}

/* The pair's slot, claimed if new: open addressing, and a slot's key is
 * set once by one CAS, so racing processes agree on it and a process
 * killed after the CAS leaves a valid, empty pair. */
static struct metrics_pair *pair(struct shm_metrics *s, uint32_t team,
                                 uint32_t model)
{
    uint64_t key = ((uint64_t)team + 1) << 32 | ((uint64_t)model + 1);
    uint64_t h = key * 0x9e3779b97f4a7c15ULL, seen;
    size_t i, probe;

    for (probe = 0; probe < TG_METRICS_PAIRS; probe++) {
        i = ((size_t)(h >> 40) + probe) & (TG_METRICS_PAIRS - 1);
        seen = atomic_load_explicit(&s->pairs[i].key, memory_order_acquire);
        if (seen == 0 &&
            atomic_compare_exchange_strong(&s->pairs[i].key, &seen, key))
            return &s->pairs[i];
        if (seen == key)
            return &s->pairs[i];
    }
    return NULL;
}

void tg_metrics_usage(struct tg_metrics *m, size_t team, size_t model,
                      int64_t prompt_tokens, int64_t completion_tokens,
                      int64_t cost_nano_usd)
{
    uint32_t t = team_entry(m, team), e = model_entry(m, model);
    struct metrics_pair *p = NULL;

    if (t != NO_ENTRY && e != NO_ENTRY)
        p = pair(seg(m), t, e);
    if (p == NULL) {
        bump(m, NULL);
        return;
    }
    atomic_fetch_add_explicit(&p->prompt_tokens, (uint64_t)prompt_tokens,
                              relaxed);
    atomic_fetch_add_explicit(&p->completion_tokens,
                              (uint64_t)completion_tokens, relaxed);
    atomic_fetch_add_explicit(&p->cost_nano_usd, (uint64_t)cost_nano_usd,
                              relaxed);
}

_Atomic uint64_t *tg_metrics_log_lost(struct tg_metrics *m,
                                      enum tg_log_kind which)
{
    return &seg(m)->log_lost[which];
}

#define load(x) atomic_load_explicit(&(x), relaxed)

static void read_histogram(const struct metrics_histogram *h,
                           struct tg_metrics_histogram_view *out)
{
    int i;

    for (i = 0; i <= TG_METRICS_N_BUCKETS; i++)
        out->buckets[i] = load(h->buckets[i]);
    out->sum_us = load(h->sum_us);
}

void tg_metrics_read(const struct tg_metrics *m, struct tg_metrics_totals *out)
{
    const struct shm_metrics *s = seg(m);
    int i, k;

    out->started_ns = load(s->started_ns);
    out->generation = load(s->generation);
    out->reloads_ok = load(s->reloads_ok);
    out->reloads_failed = load(s->reloads_failed);
    out->is_last_reload_ok = load(s->is_last_reload_ok) != 0;
    out->last_reload_ns = load(s->last_reload_ns);
    out->worker_restarts = load(s->worker_restarts);
    out->workers = load(s->workers);
    out->dropped = load(s->dropped);
    for (i = 0; i < TG_N_SURFACES; i++) {
        for (k = 0; k < TG_N_STATUSES; k++)
            out->requests[i][k] = load(s->requests[i][k]);
        read_histogram(&s->latency[i], &out->latency[i]);
        read_histogram(&s->ttft[i], &out->ttft[i]);
    }
    for (i = 0; i < TG_N_LOGS; i++)
        out->log_lost[i] = load(s->log_lost[i]);
    out->in_flight = 0;
    for (i = 0; i < TG_SHM_WORKER_SLOTS; i++)
        out->in_flight += load(s->in_flight[i]);
}

bool tg_metrics_read_model(const struct tg_metrics *m, size_t i,
                           struct tg_metrics_model_view *out)
{
    const struct shm_metrics *s = seg(m);
    const struct metrics_model *e;
    int k;

    if (i >= atomic_load_explicit(&s->n_models, memory_order_acquire))
        return false;
    e = &s->models[i];
    out->name = e->name;
    out->provider = e->provider;
    for (k = 0; k < TG_N_OUTCOMES; k++)
        out->calls[k] = load(e->calls[k]);
    out->fallbacks = load(e->fallbacks);
    return true;
}

bool tg_metrics_read_team(const struct tg_metrics *m, size_t i,
                          struct tg_metrics_team_view *out)
{
    const struct shm_metrics *s = seg(m);
    int k;

    if (i >= atomic_load_explicit(&s->n_teams, memory_order_acquire))
        return false;
    out->name = s->teams[i].name;
    for (k = 0; k < TG_N_LIMITS; k++)
        out->refused[k] = load(s->teams[i].refused[k]);
    return true;
}

bool tg_metrics_read_pair(const struct tg_metrics *m, size_t *i,
                          struct tg_metrics_pair_view *out)
{
    const struct shm_metrics *s = seg(m);
    uint32_t n_teams = atomic_load_explicit(&s->n_teams, memory_order_acquire);
    uint32_t n_models =
        atomic_load_explicit(&s->n_models, memory_order_acquire);
    const struct metrics_pair *p;
    uint64_t key, team, model;

    for (; *i < TG_METRICS_PAIRS; (*i)++) {
        p = &s->pairs[*i];
        key = atomic_load_explicit(&p->key, memory_order_acquire);
        team = key >> 32;
        model = key & 0xffffffff;
        if (key == 0 || team == 0 || team > n_teams || model == 0 ||
            model > n_models)
            continue;
        out->team = s->teams[team - 1].name;
        out->model = s->models[model - 1].name;
        out->provider = s->models[model - 1].provider;
        out->prompt_tokens = load(p->prompt_tokens);
        out->completion_tokens = load(p->completion_tokens);
        out->cost_nano_usd = load(p->cost_nano_usd);
        (*i)++;
        return true;
    }
    return false;
}
