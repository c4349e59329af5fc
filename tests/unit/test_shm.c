/*
 * test_shm.c - the shared-memory quota segment across real processes: exact
 * bucket and credit arithmetic under concurrent workers, SIGKILL at random
 * instants inside operations, and the state file's life (persistence,
 * reload, growth, refusal of foreign files, the lock against a second
 * gateway, dropping removed teams).
 *
 * Workers are fork()ed children sharing the mapping as real workers do (see
 * shm_harness.h). Exact checks pass fixed timestamps (see hour_ahead_ns).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg_bucket.h"
#include "tg_config.h"
#include "tg_shm.h"

#include "shm_harness.h"

#define TEAMS_HEAD                                 \
    "providers: {mock: {type: mock}}\n"            \
    "models: {m: {provider: mock, model: echo}}\n" \
    "teams:\n"

/* A config whose state file is the fixture's and whose `teams:` mapping is
 * `teams_yaml` (lines indented by two spaces). Freed by the teardown. */
static struct tg_config *load_teams(const char *teams_yaml)
{
    return shm_test_load_config(TEAMS_HEAD, teams_yaml);
}

/* A config of one team, t1, with these limits and credit grant. */
static struct tg_config *load_team_t1(int64_t rpm, int64_t tpm, int64_t credits)
{
    char yaml[128];

    snprintf(yaml, sizeof(yaml),
             "  t1: {rpm: %lld, tpm: %lld, credits: %lld}\n", (long long)rpm,
             (long long)tpm, (long long)credits);
    return load_teams(yaml);
}

/* The slot of the team called `name` in the config last configured. */
static struct tg_shm_team *
slot_of(const struct tg_shm *shm, const struct tg_config *cfg, const char *name)
{
    const struct tg_team *team = tg_cfg_find_team(cfg, name);
    struct tg_shm_team *slot;

    cr_assert_not_null(team, "no team %s in the config", name);
    slot = tg_shm_team(shm, (size_t)(team - cfg->teams));
    cr_assert_not_null(slot, "no slot for team %s", name);
    return slot;
}

/*
 * Timestamps that make bucket arithmetic exact. A time an hour ahead is
 * after every refill the segment recorded, so the first operation at it
 * finds a full bucket (nothing to add) and later ones at the same time find
 * no elapsed time; tg_shm_configure, which reads the real clock, is then
 * earlier and adds nothing. Time 0 is before everything recorded, and a clock
 * that goes backwards refills nothing (tg_bucket.h): a read at 0 shows the
 * levels exactly as the last operation left them.
 */
static int64_t hour_ahead_ns(void)
{
    return tg_shm_now_ns() + 3600 * TG_NS_PER_S;
}

static struct tg_shm_team_view frozen_view(struct tg_shm_team *t)
{
    struct tg_shm_team_view v;

    tg_shm_read(t, 0, &v);
    return v;
}

/* The whole content of a file (malloc'd; *len set). */
static unsigned char *read_whole(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *buf;
    int fd = open(path, O_RDONLY);

    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static void write_whole(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

TestSuite(shm_exact, .init = shm_test_setup, .fini = shm_test_teardown);
TestSuite(shm_crash, .init = shm_test_setup, .fini = shm_test_teardown);
TestSuite(shm_file, .init = shm_test_setup, .fini = shm_test_teardown);

/* ---- shm_exact: arithmetic shared by concurrent workers ---------------- */

#define RPM_CAPACITY 200
#define RPM_WORKERS  8 /* more processes than cores, so they get preempted */
#define RPM_RUN_NS   (1500 * 1000000LL)

struct rpm_report {
    int64_t first_ns, last_ns; /* now_ns of the worker's first, last take */
    int64_t admitted;
    int64_t odd_refusals; /* refusals for any reason but TG_ADMIT_RPM */
};

struct rpm_run {
    struct tg_shm_team *team;
    struct rpm_report *reports;
};

/* A worker taking 1 request as fast as it can for RPM_RUN_NS. */
static void take_for_a_while(int index, void *arg)
{
    struct rpm_run *run = arg;
    struct rpm_report *r = &run->reports[index];
    int64_t start = tg_shm_now_ns(), now = start;
    enum tg_admit result;
    struct tg_quota q;

    r->first_ns = start;
    do {
        result = tg_shm_take(run->team, 1, now, &q);
        r->admitted += result == TG_ADMIT_OK;
        r->odd_refusals += result != TG_ADMIT_OK && result != TG_ADMIT_RPM;
        r->last_ns = now;
        now = tg_shm_now_ns();
    } while (now - start < RPM_RUN_NS);
}

Test(shm_exact, rpm_admits_capacity_plus_refill_across_processes,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_team_t1(RPM_CAPACITY, 1000000000, 50);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct rpm_run run = {
        slot_of(shm, cfg, "t1"),
        shm_test_shared_alloc(RPM_WORKERS * sizeof(*run.reports))};
    int64_t all_in = INT64_MIN, first_out = INT64_MAX, admitted = 0, odd = 0;
    int64_t t0, t1, window, lower, upper;
    int i;

    t0 = tg_shm_now_ns();
    shm_test_run_workers(RPM_WORKERS, take_for_a_while, &run, "rpm worker");
    t1 = tg_shm_now_ns();
    for (i = 0; i < RPM_WORKERS; i++) {
        all_in =
            run.reports[i].first_ns > all_in ? run.reports[i].first_ns : all_in;
        first_out = run.reports[i].last_ns < first_out ? run.reports[i].last_ns
                                                       : first_out;
        admitted += run.reports[i].admitted;
        odd += run.reports[i].odd_refusals;
    }
    /*
     * With R = 200 refilling per minute. At most: the bucket held R when the
     * workers were forked, and every now_ns they passed lies in [t0, t1], so
     * no more than R (t1 - t0) / 1 min can have refilled. At least: during
     * [all_in, first_out] every worker was taking, the bucket had been below
     * full since before all_in, so all it refilled then was taken, except
     * less than one request left in it when the window closed.
     */
    window = first_out > all_in ? first_out - all_in : 0;
    upper = RPM_CAPACITY + RPM_CAPACITY * (t1 - t0) / TG_BUCKET_PERIOD_NS;
    lower = RPM_CAPACITY + RPM_CAPACITY * window / TG_BUCKET_PERIOD_NS - 1;
    cr_log_info("rpm %d, %d workers over %.3f s (all taking for %.3f s): "
                "admitted %lld, bounds [%lld, %lld]",
                RPM_CAPACITY, RPM_WORKERS, (double)(t1 - t0) / 1e9,
                (double)window / 1e9, (long long)admitted, (long long)lower,
                (long long)upper);
    cr_assert_eq(odd, 0, "refusals other than TG_ADMIT_RPM: %lld",
                 (long long)odd);
    cr_assert_leq(admitted, upper,
                  "admitted %lld > %lld = rpm + what could refill in %.3f s",
                  (long long)admitted, (long long)upper,
                  (double)(t1 - t0) / 1e9);
    cr_assert_geq(admitted, lower,
                  "admitted %lld < %lld = rpm + what refilled in %.3f s - 1",
                  (long long)admitted, (long long)lower, (double)window / 1e9);
    munmap(run.reports, RPM_WORKERS * sizeof(*run.reports));
    shm_test_close_segment(shm);
}

/*
 * Two ways to miss those bounds, each pinned down in one process with chosen
 * timestamps: rounding away a fraction of refill on every touch (too few),
 * and an operation that waited for the lock with an earlier clock reading
 * than the last one refilling the same interval again (too many).
 */
Test(shm_exact, refill_is_the_same_however_often_the_team_is_touched)
{
    struct tg_config *cfg =
        load_teams("  often: {rpm: 1, tpm: 10, credits: 0}\n"
                   "  once: {rpm: 1, tpm: 10, credits: 0}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *often = slot_of(shm, cfg, "often");
    struct tg_shm_team *once = slot_of(shm, cfg, "once");
    const int64_t step_ns = 59000, steps = 2000; /* 0.983 micro-requests */
    int64_t t = hour_ahead_ns();
    struct tg_shm_team_view v_often, v_once;
    struct tg_quota q;
    int64_t i;

    cr_assert_eq(tg_shm_take(often, 0, t, &q), TG_ADMIT_OK);
    cr_assert_eq(tg_shm_take(once, 0, t, &q), TG_ADMIT_OK);
    for (i = 1; i <= steps; i++)
        tg_shm_read(often, t + i * step_ns, &v_often);
    tg_shm_read(once, t + steps * step_ns, &v_once);
    /* 118 ms at 1 request a minute: 1966.67 micro-requests */
    cr_assert_eq(v_once.rpm_level_micro,
                 steps * step_ns * TG_MICRO / TG_BUCKET_PERIOD_NS);
    cr_assert_geq(v_often.rpm_level_micro, v_once.rpm_level_micro - 1,
                  "read every %lld ns the bucket refilled %lld micro-requests "
                  "instead of %lld",
                  (long long)step_ns, (long long)v_often.rpm_level_micro,
                  (long long)v_once.rpm_level_micro);
    cr_assert_leq(v_often.rpm_level_micro, v_once.rpm_level_micro);
    shm_test_close_segment(shm);
}

Test(shm_exact, late_operation_with_an_earlier_timestamp_refills_nothing_twice)
{
    struct tg_config *cfg =
        load_teams("  t1: {rpm: 60, tpm: 1000, credits: 0}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *t1 = slot_of(shm, cfg, "t1");
    int64_t t = hour_ahead_ns();
    struct tg_quota q;
    int i;

    for (i = 0; i < 60; i++)
        cr_assert_eq(tg_shm_take(t1, 0, t, &q), TG_ADMIT_OK);
    /* Worker A read the clock at t + 1 s and takes the request refilled. */
    cr_assert_eq(tg_shm_take(t1, 0, t + TG_NS_PER_S, &q), TG_ADMIT_OK);
    /* Worker B read it at t, then waited for the lock: nothing for it. */
    cr_assert_eq(tg_shm_take(t1, 0, t, &q), TG_ADMIT_RPM);
    /* Worker C at t + 1 s: that second was refilled and taken already. */
    cr_assert_eq(tg_shm_take(t1, 0, t + TG_NS_PER_S, &q), TG_ADMIT_RPM,
                 "the second before B's timestamp was refilled twice");
    shm_test_close_segment(shm);
}

#define TPM_TEAM_RPM       1000000
#define TPM_TEAM_TPM       10000000
#define TPM_WORKERS        8
#define TPM_ROUNDS         20000
#define TPM_RESERVED       5
#define TPM_COST_PER_TOKEN 3 /* nano-USD */

/* 0..8 tokens used: less than, as much as, and more than reserved. */
static int64_t tpm_used(int worker, int round)
{
    return (worker * 7 + round) % 9;
}

struct tpm_run {
    struct tg_shm_team *team;
    int64_t now_ns;
    int64_t *refused; /* per worker */
};

static void reserve_and_settle(int index, void *arg)
{
    struct tpm_run *run = arg;
    struct tg_quota q;
    int64_t used;
    int round;

    for (round = 0; round < TPM_ROUNDS; round++) {
        used = tpm_used(index, round);
        if (tg_shm_take(run->team, TPM_RESERVED, run->now_ns, &q) !=
            TG_ADMIT_OK) {
            run->refused[index]++;
            continue;
        }
        tg_shm_settle(run->team, TPM_RESERVED, used, used * TPM_COST_PER_TOKEN,
                      run->now_ns);
    }
}

Test(shm_exact, tpm_reservations_and_settlement_are_exact,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_team_t1(TPM_TEAM_RPM, TPM_TEAM_TPM, 0);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tpm_run run = {slot_of(shm, cfg, "t1"), hour_ahead_ns(),
                          shm_test_shared_alloc(TPM_WORKERS * sizeof(int64_t))};
    struct tg_shm_team_view v;
    int64_t used = 0;
    int i, round;

    shm_test_run_workers(TPM_WORKERS, reserve_and_settle, &run, "tpm worker");
    for (i = 0; i < TPM_WORKERS; i++) {
        cr_assert_eq(run.refused[i], 0, "worker %d was refused %lld times", i,
                     (long long)run.refused[i]);
        for (round = 0; round < TPM_ROUNDS; round++)
            used += tpm_used(i, round);
    }
    tg_shm_read(run.team, run.now_ns, &v);
    cr_assert_eq(v.rpm_level_micro,
                 (TPM_TEAM_RPM - TPM_WORKERS * TPM_ROUNDS) * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, (TPM_TEAM_TPM - used) * TG_MICRO,
                 "tpm level %lld, expected %lld tokens used",
                 (long long)v.tpm_level_micro, (long long)used);
    cr_assert_eq(v.spend_nano_usd, used * TPM_COST_PER_TOKEN);
    munmap(run.refused, TPM_WORKERS * sizeof(int64_t));
    shm_test_close_segment(shm);
}

#define DRAIN_WORKERS 8

struct drain_run {
    struct tg_shm_team *team;
    int64_t tokens, now_ns;
    int64_t *admitted; /* per worker */
    int64_t *refusal;  /* per worker: the enum tg_admit that stopped it */
};

static void take_until_refused(int index, void *arg)
{
    struct drain_run *run = arg;
    enum tg_admit result;
    struct tg_quota q;

    while ((result = tg_shm_take(run->team, run->tokens, run->now_ns, &q)) ==
           TG_ADMIT_OK)
        run->admitted[index]++;
    run->refusal[index] = result;
}

/* Drains `team` with DRAIN_WORKERS workers taking `tokens` each; returns the
 * total. */
static int64_t drain(struct tg_shm_team *team, int64_t tokens, int64_t now,
                     enum tg_admit expected_refusal)
{
    struct drain_run run = {
        team, tokens, now,
        shm_test_shared_alloc(DRAIN_WORKERS * sizeof(int64_t)),
        shm_test_shared_alloc(DRAIN_WORKERS * sizeof(int64_t))};
    int64_t total = 0;
    int i;

    shm_test_run_workers(DRAIN_WORKERS, take_until_refused, &run,
                         "draining worker");
    for (i = 0; i < DRAIN_WORKERS; i++) {
        cr_assert_eq(run.refusal[i], expected_refusal);
        total += run.admitted[i];
    }
    munmap(run.admitted, DRAIN_WORKERS * sizeof(int64_t));
    munmap(run.refusal, DRAIN_WORKERS * sizeof(int64_t));
    return total;
}

Test(shm_exact, refused_take_takes_from_neither_bucket,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg =
        load_teams("  tokens: {rpm: 1000, tpm: 700, credits: 0}\n"
                   "  requests: {rpm: 50, tpm: 100000, credits: 0}\n"
                   "  large: {rpm: 10, tpm: 100, credits: 0}\n"
                   "  budget: {rpm: 10, tpm: 100, credits: 0, "
                   "max_budget_usd: 0.000001}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *tokens = slot_of(shm, cfg, "tokens");
    struct tg_shm_team *requests = slot_of(shm, cfg, "requests");
    struct tg_shm_team *large = slot_of(shm, cfg, "large");
    struct tg_shm_team *budget = slot_of(shm, cfg, "budget");
    int64_t now = hour_ahead_ns();
    struct tg_shm_team_view v;
    struct tg_quota q;

    cr_assert_eq(drain(tokens, 7, now, TG_ADMIT_TPM), 100);
    tg_shm_read(tokens, now, &v);
    cr_assert_eq(v.rpm_level_micro, (1000 - 100) * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, 0);
    cr_assert_eq(tg_shm_take(tokens, 7, now, &q), TG_ADMIT_TPM);
    cr_assert_eq(q.retry_after_s, 1); /* 7 tokens at 700/min: 0.6 s */

    cr_assert_eq(drain(requests, 7, now, TG_ADMIT_RPM), 50);
    tg_shm_read(requests, now, &v);
    cr_assert_eq(v.rpm_level_micro, 0);
    cr_assert_eq(v.tpm_level_micro, (100000 - 50 * 7) * TG_MICRO);
    cr_assert_eq(tg_shm_take(requests, 7, now, &q), TG_ADMIT_RPM);
    cr_assert_eq(q.retry_after_s, 2); /* 1 request at 50/min: 1.2 s */

    cr_assert_eq(tg_shm_take(large, 101, now, &q), TG_ADMIT_TPM_TOO_LARGE);
    tg_shm_read(large, now, &v);
    cr_assert_eq(v.rpm_level_micro, 10 * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, 100 * TG_MICRO);

    cr_assert_eq(tg_shm_take(budget, 1, now, &q), TG_ADMIT_OK);
    tg_shm_settle(budget, 1, 1, 1000, now); /* spend reaches 1000 nano-USD */
    cr_assert_eq(tg_shm_take(budget, 1, now, &q), TG_ADMIT_BUDGET);
    tg_shm_read(budget, now, &v);
    cr_assert_eq(v.rpm_level_micro, 9 * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, 99 * TG_MICRO);
    cr_assert_eq(v.spend_nano_usd, 1000);
    cr_assert_eq(v.budget_nano_usd, 1000);
    shm_test_close_segment(shm);
}

#define CREDIT_WORKERS      8
#define CREDIT_GRANT        20000
#define CREDIT_MIXED_ROUNDS 20000

struct credit_run {
    struct tg_shm_team *team;
    int64_t *debits;        /* per worker: debits that succeeded */
    int64_t *lowest;        /* per worker: lowest balance a debit returned */
    int64_t *final_balance; /* per worker: the balance of the refusal */
    int64_t *failures;      /* per worker, mixed phase: refused debits */
};

static void debit_until_refused(int index, void *arg)
{
    struct credit_run *run = arg;
    int64_t balance;

    run->lowest[index] = INT64_MAX;
    while (tg_shm_debit(run->team, TG_SHM_MICRO_CREDITS, &balance)) {
        run->debits[index]++;
        if (balance < run->lowest[index])
            run->lowest[index] = balance;
    }
    run->final_balance[index] = balance;
}

/* Even workers add 3 micro-credits, odd ones debit 7, each round. */
static void credit_or_debit(int index, void *arg)
{
    struct credit_run *run = arg;
    int64_t balance;
    int round;

    for (round = 0; round < CREDIT_MIXED_ROUNDS; round++) {
        if (index % 2 == 0)
            tg_shm_credit(run->team, 3);
        else if (!tg_shm_debit(run->team, 7, &balance))
            run->failures[index]++;
    }
}

Test(shm_exact, credit_debits_never_lose_or_overdraw,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_team_t1(10, 100, CREDIT_GRANT);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    int64_t *mem = shm_test_shared_alloc(4 * CREDIT_WORKERS * sizeof(int64_t));
    struct credit_run run = {slot_of(shm, cfg, "t1"), mem, mem + CREDIT_WORKERS,
                             mem + 2 * CREDIT_WORKERS,
                             mem + 3 * CREDIT_WORKERS};
    int64_t debits = 0, balance;
    int i;

    shm_test_run_workers(CREDIT_WORKERS, debit_until_refused, &run,
                         "debiting worker");
    for (i = 0; i < CREDIT_WORKERS; i++) {
        debits += run.debits[i];
        cr_assert_geq(run.lowest[i], 0, "worker %d saw balance %lld", i,
                      (long long)run.lowest[i]);
        cr_assert_eq(run.final_balance[i], 0);
    }
    cr_assert_eq(debits, CREDIT_GRANT);
    cr_assert_eq(frozen_view(run.team).credits_micro, 0);

    cr_assert_eq(tg_shm_credit(run.team, 5 * TG_SHM_MICRO_CREDITS),
                 5 * TG_SHM_MICRO_CREDITS);
    cr_assert_not(
        tg_shm_debit(run.team, 5 * TG_SHM_MICRO_CREDITS + 1, &balance));
    cr_assert_eq(balance, 5 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(frozen_view(run.team).credits_micro, 5 * TG_SHM_MICRO_CREDITS);
    cr_assert(tg_shm_debit(run.team, 5 * TG_SHM_MICRO_CREDITS, &balance));
    cr_assert_eq(balance, 0);

    cr_assert_eq(tg_shm_credit(run.team, CREDIT_GRANT * TG_SHM_MICRO_CREDITS),
                 CREDIT_GRANT * TG_SHM_MICRO_CREDITS);
    shm_test_run_workers(CREDIT_WORKERS, credit_or_debit, &run,
                         "crediting worker");
    for (i = 0; i < CREDIT_WORKERS; i++)
        cr_assert_eq(run.failures[i], 0);
    cr_assert_eq(frozen_view(run.team).credits_micro,
                 CREDIT_GRANT * TG_SHM_MICRO_CREDITS +
                     CREDIT_WORKERS / 2 * CREDIT_MIXED_ROUNDS * (3 - 7));
    munmap(mem, 4 * CREDIT_WORKERS * sizeof(int64_t));
    shm_test_close_segment(shm);
}

/* ---- shm_crash: SIGKILL at any instruction ------------------------------ */

#define CRASH_ROUNDS       500
#define CRASH_MAX_DELAY_US 3000
#define CYCLE_RPM          1000000000 /* never runs dry */
#define CYCLE_TPM          1000000
#define CYCLE_GRANT        1000 /* credits */
#define CYCLE_TOKENS       1000
#define CYCLE_CREDITS      3 /* micro-credits */
#define CYCLE_COST         7 /* nano-USD */

/*
 * A worker repeats a cycle of four operations whose every intermediate
 * state is recognisable from the team's view: take (1 request, 1000
 * tokens), debit 3, settle (gives the 1000 back, spends 7), credit 3. After
 * k takes the state must be one of the phases below; anything else is an
 * operation half-applied (or two mixed). The request bucket is never
 * refilled (every call passes the same now_ns) and never runs dry.
 */
enum cycle_phase {
    CYCLE_DONE,    /* k takes; tokens back, credits back, spend 7k */
    CYCLE_TAKEN,   /* tokens reserved, spend 7(k-1), credits back */
    CYCLE_DEBITED, /* tokens reserved, spend 7(k-1), credits - 3 */
    CYCLE_SETTLED, /* tokens back, spend 7k, credits - 3 */
    CYCLE_TORN,    /* none of the above */
};

struct cycle {
    struct tg_shm_team *team;
    int64_t now_ns;
    int64_t rpm, tpm, credits_micro; /* as configured */
};

static enum cycle_phase cycle_phase_of(const struct cycle *c,
                                       const struct tg_shm_team_view *v,
                                       int64_t *takes)
{
    int64_t used = c->rpm * TG_MICRO - v->rpm_level_micro;
    int64_t k = used / TG_MICRO;
    bool is_reserved = v->tpm_level_micro == (c->tpm - CYCLE_TOKENS) * TG_MICRO;
    bool is_returned = v->tpm_level_micro == c->tpm * TG_MICRO;
    bool is_debited = v->credits_micro == c->credits_micro - CYCLE_CREDITS;
    bool is_credited = v->credits_micro == c->credits_micro;

    *takes = k;
    if (used < 0 || used % TG_MICRO != 0 || v->rpm != c->rpm ||
        v->tpm != c->tpm || v->budget_nano_usd != -1)
        return CYCLE_TORN;
    if (is_returned && is_credited && v->spend_nano_usd == k * CYCLE_COST)
        return CYCLE_DONE;
    if (k > 0 && is_reserved && v->spend_nano_usd == (k - 1) * CYCLE_COST)
        return is_credited  ? CYCLE_TAKEN
               : is_debited ? CYCLE_DEBITED
                            : CYCLE_TORN;
    if (k > 0 && is_returned && is_debited &&
        v->spend_nano_usd == k * CYCLE_COST)
        return CYCLE_SETTLED;
    return CYCLE_TORN;
}

/* The operation that leads out of `phase`; false when it was refused. */
static bool cycle_step(const struct cycle *c, enum cycle_phase phase)
{
    struct tg_quota q;
    int64_t balance;

    switch (phase) {
    case CYCLE_DONE:
        return tg_shm_take(c->team, CYCLE_TOKENS, c->now_ns, &q) == TG_ADMIT_OK;
    case CYCLE_TAKEN: return tg_shm_debit(c->team, CYCLE_CREDITS, &balance);
    case CYCLE_DEBITED:
        tg_shm_settle(c->team, CYCLE_TOKENS, 0, CYCLE_COST, c->now_ns);
        return true;
    case CYCLE_SETTLED: tg_shm_credit(c->team, CYCLE_CREDITS); return true;
    default: return false;
    }
}

static void cycle_until_killed(int index, void *arg)
{
    const struct cycle *c = arg;
    enum cycle_phase phase = CYCLE_DONE;

    (void)index;
    for (;;) {
        if (!cycle_step(c, phase))
            _exit(2);
        phase = (phase + 1) % CYCLE_TORN;
    }
}

struct probe {
    const struct cycle *cycle;
    struct tg_shm_team_view *view; /* shared */
    const char *log_path;
};

/* A fresh process locking the team (see shm_test_expect_fresh_lock). */
static void probe_team(int index, void *arg)
{
    struct probe *p = arg;

    (void)index;
    shm_test_enter_fresh_process(p->log_path);
    tg_shm_read(p->cycle->team, p->cycle->now_ns, p->view);
}

/* Kills a cycling worker after a random delay; returns the phase a fresh
 * process and the parent then find, after checking they agree. */
static enum cycle_phase kill_and_probe(struct probe *p, unsigned *rand_state,
                                       int round, unsigned seed, int64_t *takes)
{
    long delay_us = (long)(rand_r(rand_state) % (CRASH_MAX_DELAY_US + 1));
    struct timespec delay = {0, delay_us * 1000};
    struct tg_shm_team_view mine;
    pid_t pid = shm_test_spawn(cycle_until_killed, 0, (void *)p->cycle);
    int status;

    nanosleep(&delay, NULL);
    kill(pid, SIGKILL);
    status = shm_test_wait_status(pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "round %d (seed %u): the worker stopped by itself (status %d)",
              round, seed, status);
    shm_test_expect_fresh_lock(probe_team, p, "team", round, seed, delay_us);
    tg_shm_read(p->cycle->team, p->cycle->now_ns, &mine);
    cr_assert_eq(memcmp(&mine, p->view, sizeof(mine)), 0,
                 "round %d: the parent and a fresh process disagree", round);
    return cycle_phase_of(p->cycle, &mine, takes);
}

Test(shm_crash, kill_inside_operations_never_wedges_or_corrupts,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_team_t1(CYCLE_RPM, CYCLE_TPM, CYCLE_GRANT);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct cycle c = {slot_of(shm, cfg, "t1"), hour_ahead_ns(), CYCLE_RPM,
                      CYCLE_TPM, CYCLE_GRANT * TG_SHM_MICRO_CREDITS};
    char log_path[256];
    struct probe p = {
        &c, shm_test_shared_alloc(sizeof(struct tg_shm_team_view)), log_path};
    unsigned seed = shm_test_seed(), rand_state = seed;
    int round, mid_cycle = 0, recoveries;
    enum cycle_phase phase;
    struct tg_shm_team_view v;
    int64_t takes = 0, after;

    snprintf(log_path, sizeof(log_path), "%s/probe.log", shm_test_fx.dir);
    cr_log_info("crash: seed %u (set TG_TEST_SEED to replay)", seed);
    for (round = 0; round < CRASH_ROUNDS; round++) {
        phase = kill_and_probe(&p, &rand_state, round, seed, &takes);
        cr_assert_neq(phase, CYCLE_TORN,
                      "round %d (seed %u): a killed operation left a torn "
                      "state: rpm level %lld, tpm level %lld, credits %lld, "
                      "spend %lld",
                      round, seed, (long long)p.view->rpm_level_micro,
                      (long long)p.view->tpm_level_micro,
                      (long long)p.view->credits_micro,
                      (long long)p.view->spend_nano_usd);
        mid_cycle += phase != CYCLE_DONE;
        for (; phase != CYCLE_DONE; phase = (phase + 1) % CYCLE_TORN)
            cr_assert(cycle_step(&c, phase), "round %d: refused", round);
        tg_shm_read(c.team, c.now_ns, &v);
        cr_assert_eq(cycle_phase_of(&c, &v, &after), CYCLE_DONE);
        cr_assert_eq(after, takes);
    }
    recoveries = shm_test_count_lines_with(log_path, "recovered the lock");
    cr_log_info("crash: %d rounds, %lld cycles, %d killed mid-cycle, "
                "%d lock recoveries",
                CRASH_ROUNDS, (long long)takes, mid_cycle, recoveries);
    cr_assert_gt(mid_cycle, 0,
                 "no kill landed inside a cycle: the test proved nothing");

    shm_test_close_segment(shm);
    shm = shm_test_open_configured(cfg);
    v = frozen_view(slot_of(shm, cfg, "t1"));
    cr_assert_eq(v.credits_micro, c.credits_micro);
    cr_assert_eq(v.spend_nano_usd, takes * CYCLE_COST);
    shm_test_close_segment(shm);
}

/* ---- shm_file: the state file's life ------------------------------------ */

struct persist_run {
    const struct tg_config *cfg;
    int64_t now_ns;
};

/* A whole gateway life in a child: open, use teams x and y, close, exit.
 * Exit status 2..: which step failed. */
static void run_first_gateway(int index, void *arg)
{
    const struct persist_run *run = arg;
    struct tg_shm *shm;
    struct tg_shm_team *x, *y;
    struct tg_quota q;
    char err[512];
    int i;

    (void)index;
    shm = tg_shm_open(run->cfg, err, sizeof(err));
    if (shm == NULL || tg_shm_configure(shm, run->cfg, err, sizeof(err)) != 0)
        _exit(2);
    x = tg_shm_team(shm, 0);
    y = tg_shm_team(shm, 1);
    for (i = 0; i < 7; i++)
        if (tg_shm_take(x, 40, run->now_ns, &q) != TG_ADMIT_OK)
            _exit(3);
    for (i = 0; i < 5; i++)
        tg_shm_settle(x, 40, 25, 1234, run->now_ns);
    if (!tg_shm_debit(x, 12500000, &(int64_t){0}))
        _exit(4);
    for (i = 0; i < 2; i++) {
        if (tg_shm_take(y, 100, run->now_ns, &q) != TG_ADMIT_OK)
            _exit(5);
        tg_shm_settle(y, 100, 150, 99, run->now_ns);
    }
    tg_shm_credit(y, 3 * TG_SHM_MICRO_CREDITS);
    tg_shm_close(shm);
}

Test(shm_file, persists_across_close_and_reopen)
{
    struct persist_run run = {
        load_teams("  x: {rpm: 100, tpm: 100000, credits: 50, "
                   "max_budget_usd: 2.5}\n"
                   "  y: {rpm: 30, tpm: 3000, credits: 7}\n"),
        hour_ahead_ns()};
    /* The same teams in the other order: state follows names, not slots. */
    struct tg_config *cfg = load_teams(
        "  y: {rpm: 30, tpm: 3000, credits: 7}\n"
        "  x: {rpm: 100, tpm: 100000, credits: 50, max_budget_usd: 2.5}\n");
    struct tg_shm *shm;
    struct tg_shm_team_view v;

    shm_test_expect_clean_exit(shm_test_spawn(run_first_gateway, 0, &run),
                               "first gateway");
    shm = shm_test_open_configured(cfg);
    v = frozen_view(slot_of(shm, cfg, "x"));
    cr_assert_eq(v.rpm, 100);
    cr_assert_eq(v.tpm, 100000);
    cr_assert_eq(v.rpm_level_micro, (100 - 7) * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, (100000 - 7 * 40 + 5 * 15) * TG_MICRO);
    cr_assert_eq(v.credits_micro, 37500000);
    cr_assert_eq(v.grant_micro, 50 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 5 * 1234);
    cr_assert_eq(v.budget_nano_usd, 2500000000);
    v = frozen_view(slot_of(shm, cfg, "y"));
    cr_assert_eq(v.rpm_level_micro, (30 - 2) * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, (3000 - 2 * 100 - 2 * 50) * TG_MICRO);
    cr_assert_eq(v.credits_micro, 10 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.grant_micro, 7 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 2 * 99);
    cr_assert_eq(v.budget_nano_usd, -1);
    shm_test_close_segment(shm);
}

static void take_n(struct tg_shm_team *t, int n, int64_t tokens, int64_t now)
{
    struct tg_quota q;
    int i;

    for (i = 0; i < n; i++)
        cr_assert_eq(tg_shm_take(t, tokens, now, &q), TG_ADMIT_OK,
                     "take %d of %d", i + 1, n);
}

#define RELOAD_TEAMS_A                             \
    "  up: {rpm: 10, tpm: 1000, credits: 100}\n"   \
    "  down: {rpm: 20, tpm: 1000, credits: 100}\n" \
    "  deep: {rpm: 20, tpm: 1000, credits: 100}\n" \
    "  old: {rpm: 20, tpm: 1000, credits: 100}\n"
#define RELOAD_TEAMS_B_REST                        \
    "  down: {rpm: 10, tpm: 500, credits: 40}\n"   \
    "  deep: {rpm: 10, tpm: 1000, credits: 100}\n" \
    "  old: {rpm: 20, tpm: 1000, credits: 100}\n"
#define RELOAD_TEAMS_B \
    "  up: {rpm: 20, tpm: 2000, credits: 150}\n" RELOAD_TEAMS_B_REST
#define RELOAD_TEAMS_C \
    "  up: {rpm: 20, tpm: 2000, credits: 10}\n" RELOAD_TEAMS_B_REST
#define GROWN_TEAMS 196 /* beside the 4 above: 200, past 64 slots */

/* Raised, lowered and lowered-below-use limits keep what was used; grants
 * move balances by their difference, once. */
static void check_limits_and_grants(struct tg_shm *shm)
{
    struct tg_config *a = load_teams(RELOAD_TEAMS_A);
    struct tg_config *b = load_teams(RELOAD_TEAMS_B);
    struct tg_config *c = load_teams(RELOAD_TEAMS_C);
    int64_t now = hour_ahead_ns(), balance;
    struct tg_shm_team_view v;
    struct tg_quota q;

    shm_test_configure(shm, a);
    take_n(slot_of(shm, a, "up"), 10, 1, now);
    cr_assert(tg_shm_debit(slot_of(shm, a, "up"), 30000000, &balance));
    take_n(slot_of(shm, a, "down"), 4, 1, now);
    take_n(slot_of(shm, a, "deep"), 15, 1, now);
    shm_test_configure(shm, b);
    v = frozen_view(slot_of(shm, b, "up"));
    cr_assert_eq(v.rpm, 20);
    cr_assert_eq(v.rpm_level_micro, 10 * TG_MICRO); /* 10 of 20 used */
    cr_assert_eq(v.tpm_level_micro, 1990 * TG_MICRO);
    cr_assert_eq(v.credits_micro, 120 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.grant_micro, 150 * TG_SHM_MICRO_CREDITS);
    v = frozen_view(slot_of(shm, b, "down"));
    cr_assert_eq(v.rpm_level_micro, 6 * TG_MICRO); /* 4 of 10 used */
    cr_assert_eq(v.tpm_level_micro, 496 * TG_MICRO);
    cr_assert_eq(v.credits_micro, 40 * TG_SHM_MICRO_CREDITS);
    v = frozen_view(slot_of(shm, b, "deep"));
    cr_assert_eq(v.rpm_level_micro, -5 * TG_MICRO); /* 15 of 10 used */
    cr_assert_eq(tg_shm_take(slot_of(shm, b, "deep"), 1, 0, &q), TG_ADMIT_RPM);
    cr_assert_eq(q.rpm_remaining, 0);
    cr_assert_eq(q.retry_after_s, 36); /* 6 requests at 10 a minute */
    cr_assert_eq(tg_shm_take(slot_of(shm, b, "up"), 1, 0, &q), TG_ADMIT_OK);
    cr_assert_eq(q.rpm, 20);
    cr_assert_eq(q.rpm_remaining, 9);

    shm_test_configure(shm, b); /* the same grant again moves nothing */
    cr_assert_eq(frozen_view(slot_of(shm, b, "up")).credits_micro,
                 120 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(frozen_view(slot_of(shm, b, "down")).credits_micro,
                 40 * TG_SHM_MICRO_CREDITS);
    shm_test_configure(shm, c); /* grant 150 -> 10 takes 140 from 120 */
    v = frozen_view(slot_of(shm, c, "up"));
    cr_assert_eq(v.credits_micro, -20 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.grant_micro, 10 * TG_SHM_MICRO_CREDITS);
}

static struct tg_config *load_grown_teams(void)
{
    size_t cap = sizeof(RELOAD_TEAMS_C) + GROWN_TEAMS * 48;
    char *yaml = malloc(cap);
    struct tg_config *cfg;
    size_t len;
    int i;

    cr_assert_not_null(yaml);
    len = (size_t)snprintf(yaml, cap, "%s", RELOAD_TEAMS_C);
    for (i = 0; i < GROWN_TEAMS; i++)
        len += (size_t)snprintf(yaml + len, cap - len,
                                "  n%03d: {rpm: 5, tpm: 50, credits: 2}\n", i);
    cr_assert_lt(len, cap);
    cfg = load_teams(yaml);
    free(yaml);
    return cfg;
}

struct old_worker {
    struct tg_shm_team *slot; /* into the mapping from before the grow */
    int go[2];                /* pipe: the parent writes once grown */
    int64_t *debit_balance, *take_result, *rpm_remaining; /* shared */
};

static void work_after_grow(int index, void *arg)
{
    struct old_worker *w = arg;
    struct tg_quota q;
    char byte;

    (void)index;
    close(w->go[1]);
    if (read(w->go[0], &byte, 1) != 1)
        _exit(2);
    if (!tg_shm_debit(w->slot, TG_SHM_MICRO_CREDITS, w->debit_balance))
        _exit(3);
    *w->take_result = tg_shm_take(w->slot, 1, 0, &q);
    *w->rpm_remaining = q.rpm_remaining;
}

Test(shm_file, reload_semantics, .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *c = load_teams(RELOAD_TEAMS_C);
    struct tg_shm *shm = shm_test_open_configured(load_teams(RELOAD_TEAMS_A));
    int64_t *mem = shm_test_shared_alloc(3 * sizeof(int64_t));
    struct old_worker w = {NULL, {-1, -1}, mem, mem + 1, mem + 2};
    struct tg_config *grown;
    struct tg_shm_team_view v;
    struct stat before, after;
    int64_t now;
    pid_t pid;
    int i;

    check_limits_and_grants(shm);
    now = hour_ahead_ns();
    w.slot = slot_of(shm, c, "old");
    take_n(w.slot, 3, 10, now);
    tg_shm_settle(w.slot, 10, 4, 555, now);
    cr_assert(tg_shm_debit(w.slot, TG_SHM_MICRO_CREDITS, &(int64_t){0}));
    cr_assert_eq(pipe(w.go), 0);
    pid = shm_test_spawn(work_after_grow, 0, &w);
    close(w.go[0]);

    grown = load_grown_teams();
    cr_assert_eq(stat(shm_test_fx.state_file, &before), 0);
    shm_test_configure(shm, grown);
    cr_assert_eq(stat(shm_test_fx.state_file, &after), 0);
    cr_assert_gt(after.st_size, before.st_size, "the file did not grow");
    cr_assert_eq(write(w.go[1], "g", 1), 1);
    close(w.go[1]);
    shm_test_expect_clean_exit(
        pid, "worker holding the mapping from before the grow");
    cr_assert_eq(*w.debit_balance, 98 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(*w.take_result, TG_ADMIT_OK);
    cr_assert_eq(*w.rpm_remaining, 16);

    v = frozen_view(slot_of(shm, grown, "old"));
    cr_assert_eq(v.rpm_level_micro, 16 * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, (1000 - 30 + 6 - 1) * TG_MICRO);
    cr_assert_eq(v.credits_micro, 98 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 555);
    cr_assert_eq(frozen_view(slot_of(shm, grown, "up")).credits_micro,
                 -20 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(frozen_view(slot_of(shm, grown, "down")).credits_micro,
                 40 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(frozen_view(slot_of(shm, grown, "deep")).grant_micro,
                 100 * TG_SHM_MICRO_CREDITS);
    for (i = 4; i < 4 + GROWN_TEAMS; i++) {
        tg_shm_read(tg_shm_team(shm, (size_t)i), 0, &v);
        cr_assert_eq(v.rpm_level_micro, 5 * TG_MICRO, "team %d", i);
        cr_assert_eq(v.tpm_level_micro, 50 * TG_MICRO, "team %d", i);
        cr_assert_eq(v.credits_micro, 2 * TG_SHM_MICRO_CREDITS, "team %d", i);
        cr_assert_eq(v.spend_nano_usd, 0, "team %d", i);
    }
    munmap(mem, 3 * sizeof(int64_t));
    shm_test_close_segment(shm);
}

#define SIZE_MISMATCH \
    "its size (%zu bytes) does not match its header (%zu bytes)"

/* Writes `bytes` as the state file; tg_shm_open must refuse it, saying
 * `why`, and leave its bytes as they were. */
static void expect_refused(const struct tg_config *cfg,
                           const unsigned char *bytes, size_t len,
                           const char *why)
{
    char err[512] = "", expected[512];
    unsigned char *after;
    size_t after_len;

    write_whole(shm_test_fx.state_file, bytes, len);
    cr_assert_null(tg_shm_open(cfg, err, sizeof(err)), "accepted: %s", why);
    snprintf(expected, sizeof(expected), "state_file %s is refused: %s",
             shm_test_fx.state_file, why);
    cr_assert_eq(strncmp(err, expected, strlen(expected)), 0,
                 "message: %s\nexpected it to start: %s", err, expected);
    after = read_whole(shm_test_fx.state_file, &after_len);
    cr_assert_eq(after_len, len, "%s: the size changed", why);
    cr_assert_eq(memcmp(after, bytes, len), 0, "%s: the bytes changed", why);
    free(after);
}

Test(shm_file, refuses_foreign_corrupt_and_wrong_size_files)
{
    struct tg_config *cfg = load_team_t1(10, 100, 5);
    unsigned char *valid, *variant, random_bytes[65536];
    unsigned rand_state = 42;
    const uint32_t version = 99;
    size_t len, i;
    char why[256];

    shm_test_close_segment(shm_test_open_configured(cfg));
    valid = read_whole(shm_test_fx.state_file, &len);
    cr_assert_eq(memcmp(valid, "TGSTATE", 8), 0);
    variant = malloc(len + 1);
    cr_assert_not_null(variant);

    for (i = 0; i < sizeof(random_bytes); i++)
        random_bytes[i] = (unsigned char)rand_r(&rand_state);
    expect_refused(cfg, random_bytes, sizeof(random_bytes),
                   "it is not a tollgate state file (bad magic)");
    expect_refused(cfg, valid, 10,
                   "it is too short to be a tollgate state file");
    memcpy(variant, valid, len);
    memcpy(variant + 8, &version, sizeof(version));
    expect_refused(cfg, variant, len,
                   "its layout version is 99; this tollgate reads version ");
    snprintf(why, sizeof(why), SIZE_MISMATCH, len - 1, len);
    expect_refused(cfg, valid, len - 1, why);
    memcpy(variant, valid, len);
    variant[len] = 0;
    snprintf(why, sizeof(why), SIZE_MISMATCH, len + 1, len);
    expect_refused(cfg, variant, len + 1, why);

    write_whole(shm_test_fx.state_file, valid,
                len); /* and the original still opens */
    shm_test_close_segment(shm_test_open_configured(cfg));
    free(variant);
    free(valid);
}

struct second_gateway {
    const struct tg_config *cfg;
    char *err;    /* shared */
    int *is_open; /* shared */
};

static void open_as_second_gateway(int index, void *arg)
{
    struct second_gateway *g = arg;
    struct tg_shm *shm = tg_shm_open(g->cfg, g->err, 512);

    (void)index;
    *g->is_open = shm != NULL;
    tg_shm_close(shm);
}

Test(shm_file, second_gateway_is_locked_out)
{
    struct tg_config *cfg = load_team_t1(10, 100, 5);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    char *mem = shm_test_shared_alloc(4096), expected[512];
    struct second_gateway g = {cfg, mem, (int *)(mem + 1024)};
    unsigned char *before, *after;
    size_t before_len, after_len;

    cr_assert(tg_shm_debit(slot_of(shm, cfg, "t1"), 1, &(int64_t){0}));
    before = read_whole(shm_test_fx.state_file, &before_len);
    shm_test_expect_clean_exit(shm_test_spawn(open_as_second_gateway, 0, &g),
                               "second gateway");
    cr_assert_eq(*g.is_open, 0, "a second gateway opened the file in use");
    snprintf(expected, sizeof(expected),
             "state_file %s is in use by another "
             "tollgate (or cannot be locked: %s)",
             shm_test_fx.state_file, strerror(EWOULDBLOCK));
    cr_assert_str_eq(g.err, expected);
    after = read_whole(shm_test_fx.state_file, &after_len);
    cr_assert_eq(after_len, before_len);
    cr_assert_eq(memcmp(after, before, before_len), 0);

    shm_test_close_segment(shm); /* the lock goes with the gateway */
    shm_test_expect_clean_exit(shm_test_spawn(open_as_second_gateway, 0, &g),
                               "next gateway");
    cr_assert_eq(*g.is_open, 1, "refused after the first closed: %s", g.err);
    free(before);
    free(after);
    munmap(mem, 4096);
}

Test(shm_file, removed_teams_are_dropped_at_start)
{
    struct tg_config *ab = load_teams("  a: {rpm: 10, tpm: 100, credits: 5}\n"
                                      "  b: {rpm: 20, tpm: 200, credits: 6}\n");
    struct tg_config *b = load_teams("  b: {rpm: 20, tpm: 200, credits: 6}\n");
    struct tg_shm *shm = shm_test_open_configured(ab);
    int64_t now = hour_ahead_ns();
    struct tg_shm_team_view v;

    take_n(slot_of(shm, ab, "a"), 3, 10, now);
    cr_assert(tg_shm_debit(slot_of(shm, ab, "a"), TG_SHM_MICRO_CREDITS,
                           &(int64_t){0}));
    take_n(slot_of(shm, ab, "b"), 5, 20, now);
    tg_shm_settle(slot_of(shm, ab, "b"), 20, 30, 11, now);
    cr_assert(tg_shm_debit(slot_of(shm, ab, "b"), 2 * TG_SHM_MICRO_CREDITS,
                           &(int64_t){0}));
    shm_test_close_segment(shm);

    shm = shm_test_open_configured(b);
    v = frozen_view(slot_of(shm, b, "b"));
    cr_assert_eq(v.rpm_level_micro, 15 * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, (200 - 100 - 10) * TG_MICRO);
    cr_assert_eq(v.credits_micro, 4 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 11);
    shm_test_close_segment(shm);

    shm = shm_test_open_configured(ab);
    v = frozen_view(slot_of(shm, ab, "a"));
    cr_assert_eq(v.rpm_level_micro, 10 * TG_MICRO);
    cr_assert_eq(v.tpm_level_micro, 100 * TG_MICRO);
    cr_assert_eq(v.credits_micro, 5 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 0);
    v = frozen_view(slot_of(shm, ab, "b"));
    cr_assert_eq(v.credits_micro, 4 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.grant_micro, 6 * TG_SHM_MICRO_CREDITS);
    cr_assert_eq(v.spend_nano_usd, 11);
    shm_test_close_segment(shm);
}
