/*
 * test_metrics.c - the shared counters of GET /metrics (shm/metrics.c):
 * exact under many processes, a pair claimed once however processes race,
 * entries kept by name across configs, and at most the one increment in
 * progress lost when a process is killed.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tg_config.h"
#include "tg_metrics.h"
#include "tg_shm.h"

#include "shm_harness.h"

#define N_TEAMS           4
#define N_MODELS          3
#define N_WORKERS         8
#define ITERATIONS        4000
#define KILL_ROUNDS       100
#define KILL_MAX_DELAY_US 3000

#define HEAD                          \
    "providers:\n"                    \
    "  p: {type: mock}\n"             \
    "  q: {type: mock}\n"             \
    "models:\n"                       \
    "  m0: {provider: p, model: x}\n" \
    "  m1: {provider: p, model: y}\n" \
    "  m2: {provider: q, model: x}\n" \
    "teams:\n"
#define FOUR_TEAMS                             \
    "  t0: {keys: [k0]}\n  t1: {keys: [k1]}\n" \
    "  t2: {keys: [k2]}\n  t3: {keys: [k3]}\n"

struct fixture {
    struct tg_config *cfg;
    struct tg_shm *shm;
    struct tg_metrics *m;
};

static struct fixture open_metrics(const char *teams_yaml)
{
    struct fixture f;

    f.cfg = shm_test_load_config(HEAD, teams_yaml);
    f.shm = shm_test_open_configured(f.cfg);
    f.m = tg_metrics_new(f.shm, f.cfg);
    cr_assert_not_null(f.m);
    return f;
}

static void close_metrics(struct fixture *f)
{
    tg_metrics_free(f->m);
    shm_test_close_segment(f->shm);
}

static struct tg_metrics_totals totals(const struct tg_metrics *m)
{
    struct tg_metrics_totals t;

    tg_metrics_read(m, &t);
    return t;
}

/* The pair of cfg's team and model; fails if it is listed twice. */
static bool find_pair(const struct tg_metrics *m, const struct tg_config *cfg,
                      size_t team, size_t model,
                      struct tg_metrics_pair_view *out)
{
    struct tg_metrics_pair_view v;
    size_t i = 0;
    bool found = false;

    while (tg_metrics_read_pair(m, &i, &v)) {
        if (strcmp(v.team, cfg->teams[team].name) != 0 ||
            strcmp(v.model, cfg->models[model].name) != 0)
            continue;
        cr_assert(!found, "pair (%zu, %zu) claimed twice", team, model);
        *out = v;
        found = true;
    }
    return found;
}

static size_t pairs_in_use(const struct tg_metrics *m)
{
    struct tg_metrics_pair_view v;
    size_t i = 0, n = 0;

    while (tg_metrics_read_pair(m, &i, &v))
        n++;
    return n;
}

/* The team called `name`: its refusals. */
static struct tg_metrics_team_view team_named(const struct tg_metrics *m,
                                              const char *name)
{
    struct tg_metrics_team_view v;
    size_t i;

    for (i = 0; tg_metrics_read_team(m, i, &v); i++)
        if (strcmp(v.name, name) == 0)
            return v;
    cr_assert_fail("no team %s", name);
    return v;
}

static size_t n_teams(const struct tg_metrics *m)
{
    struct tg_metrics_team_view v;
    size_t i = 0;

    while (tg_metrics_read_team(m, i, &v))
        i++;
    return i;
}

TestSuite(metrics, .init = shm_test_setup, .fini = shm_test_teardown);

Test(metrics, a_request_lands_in_its_surface_status_and_bucket)
{
    struct fixture f = open_metrics(FOUR_TEAMS);
    struct tg_metrics_totals t;

    tg_metrics_request(f.m, TG_SURFACE_STIP, 200, 1000, -1);
    tg_metrics_request(f.m, TG_SURFACE_STIP, 200, 1001, 2500);
    tg_metrics_request(f.m, TG_SURFACE_STIP, 418, -5, -1);
    tg_metrics_request(f.m, TG_SURFACE_STIP, 499, 400000000, -1);
    t = totals(f.m);
    cr_expect_eq(t.requests[TG_SURFACE_STIP][TG_STATUS_200], 2);
    cr_expect_eq(t.requests[TG_SURFACE_STIP][TG_STATUS_OTHER], 1);
    cr_expect_eq(t.requests[TG_SURFACE_STIP][TG_STATUS_499], 1);
    cr_expect_eq(t.requests[TG_SURFACE_OPENAI][TG_STATUS_200], 0);
    /* Bounds are inclusive (Prometheus' le); below zero is zero. */
    cr_expect_eq(t.latency[TG_SURFACE_STIP].buckets[0], 2);
    cr_expect_eq(t.latency[TG_SURFACE_STIP].buckets[1], 1);
    cr_expect_eq(t.latency[TG_SURFACE_STIP].buckets[TG_METRICS_N_BUCKETS], 1);
    cr_expect_eq(t.latency[TG_SURFACE_STIP].sum_us, 1000 + 1001 + 400000000);
    cr_expect_eq(t.ttft[TG_SURFACE_STIP].buckets[1], 1);
    cr_expect_eq(t.ttft[TG_SURFACE_STIP].sum_us, 2500);
    cr_expect_str_eq(tg_metrics_status_label(TG_STATUS_409), "409");
    cr_expect_str_eq(tg_metrics_status_label(TG_STATUS_OTHER), "other");
    close_metrics(&f);
}

Test(metrics, an_index_outside_the_config_is_dropped_and_counted)
{
    struct fixture f = open_metrics(FOUR_TEAMS);

    tg_metrics_call(f.m, N_MODELS, TG_CALL_OK);
    tg_metrics_refused(f.m, N_TEAMS, TG_LIMIT_RPM);
    tg_metrics_usage(f.m, 0, N_MODELS, 1, 1, 1);
    cr_expect_eq(totals(f.m).dropped, 3);
    cr_expect_eq(pairs_in_use(f.m), 0);
    close_metrics(&f);
}

Test(metrics, names_keep_their_entries_across_configs)
{
    struct fixture f = open_metrics(FOUR_TEAMS);
    struct tg_config *cfg = shm_test_load_config(
        HEAD, "  new: {keys: [kn]}\n  t2: {keys: [k2]}\n  t0: {keys: [k0]}\n");
    struct tg_metrics *after;
    struct tg_metrics_pair_view pair;

    tg_metrics_refused(f.m, 2, TG_LIMIT_TPM);
    tg_metrics_usage(f.m, 2, 1, 10, 20, 30);
    shm_test_configure(f.shm, cfg);
    after = tg_metrics_new(f.shm, cfg);
    cr_assert_not_null(after);
    tg_metrics_refused(after, 1, TG_LIMIT_TPM); /* t2 again */
    tg_metrics_usage(after, 1, 1, 1, 2, 3);
    cr_expect_eq(team_named(after, "t2").refused[TG_LIMIT_TPM], 2);
    cr_expect_eq(n_teams(after), N_TEAMS + 1, "a new name is appended");
    cr_assert(find_pair(after, cfg, 1, 1, &pair));
    cr_expect_eq(pair.prompt_tokens, 11);
    cr_expect_eq(pairs_in_use(after), 1);
    tg_metrics_free(after);
    close_metrics(&f);
}

Test(metrics, counters_start_from_zero_at_every_start)
{
    struct fixture f = open_metrics(FOUR_TEAMS);

    tg_metrics_usage(f.m, 0, 0, 1, 2, 3);
    tg_metrics_request(f.m, TG_SURFACE_OPENAI, 200, 5, 5);
    tg_metrics_reloaded(f.m, false, 7, 1);
    close_metrics(&f);
    f = open_metrics(FOUR_TEAMS);
    cr_expect_eq(pairs_in_use(f.m), 0);
    cr_expect_eq(totals(f.m).requests[TG_SURFACE_OPENAI][TG_STATUS_200], 0);
    cr_expect_eq(totals(f.m).reloads_failed, 0);
    cr_expect_eq(totals(f.m).generation, 1);
    cr_expect(totals(f.m).is_last_reload_ok);
    close_metrics(&f);
}

static void count_one_in_flight(int index, void *arg)
{
    struct fixture *f = arg;

    tg_shm_worker_attach(f->shm, index);
    tg_metrics_in_flight(f->m, 1);
}

Test(metrics, a_reaped_workers_requests_are_no_longer_in_flight,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct fixture f = open_metrics(FOUR_TEAMS);
    int slot = tg_shm_worker_take(f.shm);

    cr_assert_geq(slot, 0);
    shm_test_expect_clean_exit(shm_test_spawn(count_one_in_flight, slot, &f),
                               "worker");
    cr_expect_eq(totals(f.m).in_flight, 1);
    tg_metrics_worker_gone(f.m, slot);
    tg_shm_worker_free(f.shm, slot);
    cr_expect_eq(totals(f.m).in_flight, 0);
    close_metrics(&f);
}

/* Every worker walks the pairs in its own order, so that first uses race. */
static void add_everything(int index, void *arg)
{
    struct tg_metrics *m = arg;
    int i;

    for (i = 0; i < ITERATIONS; i++) {
        size_t team = (size_t)(i + index) % N_TEAMS;
        size_t model = (size_t)(i * 7 + index) % N_MODELS;
        tg_metrics_usage(m, team, model, 1, 2, 3);
        tg_metrics_request(m, TG_SURFACE_OPENAI, 200, i, i);
        tg_metrics_call(m, model, TG_CALL_OK);
        tg_metrics_refused(m, team, TG_LIMIT_RPM);
    }
}

Test(metrics, counters_from_many_processes_add_up_exactly,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct fixture f = open_metrics(FOUR_TEAMS);
    uint64_t prompt = 0, completion = 0, cost = 0, calls = 0, refused = 0;
    uint64_t bucketed = 0, expected = (uint64_t)N_WORKERS * ITERATIONS;
    struct tg_metrics_model_view mv;
    struct tg_metrics_team_view tv;
    struct tg_metrics_pair_view pv;
    struct tg_metrics_totals t;
    size_t i, k;

    shm_test_run_workers(N_WORKERS, add_everything, f.m, "adding worker");
    for (i = 0; i < N_TEAMS; i++)
        for (k = 0; k < N_MODELS; k++) {
            cr_assert(find_pair(f.m, f.cfg, i, k, &pv),
                      "pair (%zu, %zu) never claimed", i, k);
            prompt += pv.prompt_tokens;
            completion += pv.completion_tokens;
            cost += pv.cost_nano_usd;
        }
    for (i = 0; tg_metrics_read_model(f.m, i, &mv); i++)
        calls += mv.calls[TG_CALL_OK];
    for (i = 0; tg_metrics_read_team(f.m, i, &tv); i++)
        refused += tv.refused[TG_LIMIT_RPM];
    t = totals(f.m);
    for (k = 0; k <= TG_METRICS_N_BUCKETS; k++)
        bucketed += t.latency[TG_SURFACE_OPENAI].buckets[k];
    cr_expect_eq(pairs_in_use(f.m), N_TEAMS * N_MODELS);
    cr_expect_eq(prompt, expected);
    cr_expect_eq(completion, 2 * expected);
    cr_expect_eq(cost, 3 * expected);
    cr_expect_eq(calls, expected);
    cr_expect_eq(refused, expected);
    cr_expect_eq(t.requests[TG_SURFACE_OPENAI][TG_STATUS_200], expected);
    cr_expect_eq(bucketed, expected);
    cr_expect_eq(t.latency[TG_SURFACE_OPENAI].sum_us,
                 (uint64_t)N_WORKERS * ITERATIONS * (ITERATIONS - 1) / 2);
    close_metrics(&f);
}

struct kill_run {
    struct tg_metrics *m;
    size_t team, model;
    _Atomic int64_t *done; /* operations the child finished */
};

static void add_until_killed(int index, void *arg)
{
    struct kill_run *run = arg;
    int64_t i;

    (void)index;
    for (i = 0;; i++) {
        tg_metrics_usage(run->m, run->team, run->model, 1, 2, 3);
        atomic_store(run->done, i + 1);
    }
}

struct pair_values {
    int64_t prompt, completion, cost;
};

static struct pair_values values_of(const struct fixture *f,
                                    const struct kill_run *run)
{
    struct tg_metrics_pair_view v;

    if (!find_pair(f->m, f->cfg, run->team, run->model, &v))
        return (struct pair_values){0, 0, 0};
    return (struct pair_values){(int64_t)v.prompt_tokens,
                                (int64_t)v.completion_tokens,
                                (int64_t)v.cost_nano_usd};
}

/* After a kill, a pair holds every finished add and at most the first
 * parts of the one in progress: done <= cost/3 <= completion/2 <= prompt
 * <= done + 1. A pair is visited again in later rounds, maybe torn by an
 * earlier kill, so each counter is checked against its own value before
 * the round. */
static void expect_untorn(struct pair_values before, struct pair_values now,
                          int64_t done, int round, unsigned seed)
{
    int64_t prompt = now.prompt - before.prompt;
    int64_t completion = now.completion - before.completion;
    int64_t cost = now.cost - before.cost;

    cr_assert(done * 3 <= cost && cost <= completion / 2 * 3 &&
                  completion <= prompt * 2 && prompt <= done + 1,
              "round %d (seed %u): %lld done, then prompt %lld, completion "
              "%lld, cost %lld",
              round, seed, (long long)done, (long long)prompt,
              (long long)completion, (long long)cost);
}

Test(metrics, sigkill_loses_at_most_the_add_in_progress,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct fixture f = open_metrics(FOUR_TEAMS);
    _Atomic int64_t *done = shm_test_shared_alloc(64);
    struct kill_run run = {f.m, 0, 0, done};
    unsigned seed = shm_test_seed(), rand_state = seed;
    int round, torn = 0;

    for (round = 0; round < KILL_ROUNDS; round++) {
        long delay_us = (long)(rand_r(&rand_state) % (KILL_MAX_DELAY_US + 1));
        struct timespec delay = {0, delay_us * 1000};
        struct pair_values before, now;
        pid_t pid;

        run.team = (size_t)round % N_TEAMS;
        run.model = (size_t)round / N_TEAMS % N_MODELS;
        before = values_of(&f, &run);
        atomic_store(done, 0);
        pid = shm_test_spawn(add_until_killed, 0, &run);
        nanosleep(&delay, NULL);
        kill(pid, SIGKILL);
        shm_test_wait_status(pid);
        now = values_of(&f, &run);
        expect_untorn(before, now, atomic_load(done), round, seed);
        torn += now.prompt - before.prompt != atomic_load(done);
    }
    cr_log_info("metrics kill: %d of %d kills landed inside an add", torn,
                KILL_ROUNDS);
    munmap(done, 64);
    close_metrics(&f);
}
