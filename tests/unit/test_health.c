/*
 * test_health.c - each provider's circuit breaker in the shared segment:
 * its transitions pinned down with chosen timestamps, exactly one probe and
 * no lost failure across real processes, in-flight counts that a killed
 * worker cannot leave behind, SIGKILL inside operations, and health kept
 * across reload and restart and through the dropping of removed providers.
 *
 * Workers are fork()ed children sharing the mapping as real workers do (see
 * shm_harness.h). Every operation is given its now_ns, so no check depends on
 * the clock or on the speed of the machine.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg_bucket.h"
#include "tg_config.h"
#include "tg_shm.h"

#include "shm_harness.h"

#define COOLDOWN_NS (30 * TG_NS_PER_S)
#define LEASE_NS    (10 * TG_NS_PER_S) /* longer than the 1 s wait cap */
#define MS_NS       1000000LL

#define TWO_PROVIDERS "  a: {type: mock}\n  b: {type: mock}\n"

/* A config whose state file is the fixture's and whose `providers:` mapping
 * is `providers_yaml` (lines indented by two spaces). Freed by the
 * teardown. */
static struct tg_config *load_providers(const char *providers_yaml)
{
    return shm_test_load_config("providers:\n", providers_yaml);
}

/* The slot of the provider called `name` in the config last configured. */
static struct tg_shm_provider *provider_of(const struct tg_shm *shm,
                                           const struct tg_config *cfg,
                                           const char *name)
{
    const struct tg_provider *provider = tg_cfg_find_provider(cfg, name);
    struct tg_shm_provider *slot;

    cr_assert_not_null(provider, "no provider %s in the config", name);
    slot = tg_shm_provider(shm, (size_t)(provider - cfg->providers));
    cr_assert_not_null(slot, "no slot for provider %s", name);
    return slot;
}

/* The view at now_ns; every byte is set beforehand to garbage, so a field
 * the read leaves alone (or an unterminated text) shows. */
static struct tg_shm_health_view
view_at(const struct tg_shm *shm, struct tg_shm_provider *p, int64_t now_ns)
{
    struct tg_shm_health_view v;

    memset(&v, 0xa5, sizeof(v));
    tg_shm_health_read(shm, p, now_ns, &v);
    return v;
}

static void expect_same_view(const struct tg_shm_health_view *a,
                             const struct tg_shm_health_view *b,
                             const char *what)
{
    cr_assert_eq(a->state, b->state, "%s: state", what);
    cr_assert_eq(a->consecutive_fails, b->consecutive_fails, "%s: fails", what);
    cr_assert_eq(a->cooling_until_ns, b->cooling_until_ns, "%s: cooling", what);
    cr_assert_eq(a->is_probing, b->is_probing, "%s: is_probing", what);
    cr_assert_eq(a->has_latency, b->has_latency, "%s: has_latency", what);
    cr_assert_eq(a->latency_ewma_us, b->latency_ewma_us, "%s: ewma", what);
    cr_assert_eq(a->last_ok_ns, b->last_ok_ns, "%s: last_ok_ns", what);
    cr_assert_eq(a->last_error_ns, b->last_error_ns, "%s: last_error_ns", what);
    cr_assert_eq(a->last_error_status, b->last_error_status,
                 "%s: last_error_status", what);
    cr_assert_str_eq(a->last_error, b->last_error, "%s: last_error", what);
    cr_assert_eq(a->in_flight, b->in_flight, "%s: in_flight", what);
}

/* tg_shm_health_enter with the default lease; wait_ns may be NULL. */
static enum tg_health_pass enter_at(struct tg_shm *shm,
                                    struct tg_shm_provider *p, int64_t now_ns,
                                    int64_t *wait_ns)
{
    int64_t wait = -1;
    enum tg_health_pass pass =
        tg_shm_health_enter(shm, p, now_ns, LEASE_NS, &wait);

    if (wait_ns != NULL)
        *wait_ns = wait;
    return pass;
}

static void report_ok(struct tg_shm *shm, struct tg_shm_provider *p,
                      const struct tg_health_policy *policy,
                      int64_t probe_until, int64_t now_ns, int64_t latency_us)
{
    struct tg_health_report r = {.outcome = TG_HEALTH_OK,
                                 .probe_until_ns = probe_until,
                                 .now_ns = now_ns,
                                 .latency_us = latency_us};

    tg_shm_health_report(shm, p, policy, &r);
}

static void report_failed(struct tg_shm *shm, struct tg_shm_provider *p,
                          const struct tg_health_policy *policy,
                          int64_t probe_until, int64_t now_ns, int status,
                          const char *error)
{
    struct tg_health_report r = {.outcome = TG_HEALTH_FAILED,
                                 .probe_until_ns = probe_until,
                                 .now_ns = now_ns,
                                 .latency_us = -1,
                                 .status = status,
                                 .error = error};

    tg_shm_health_report(shm, p, policy, &r);
}

static void report_abandoned(struct tg_shm *shm, struct tg_shm_provider *p,
                             const struct tg_health_policy *policy,
                             int64_t probe_until, int64_t now_ns)
{
    struct tg_health_report r = {.outcome = TG_HEALTH_ABANDONED,
                                 .probe_until_ns = probe_until,
                                 .now_ns = now_ns,
                                 .latency_us = -1};

    tg_shm_health_report(shm, p, policy, &r);
}

/* policy->allowed_fails calls entered and failed at now_ns: the breaker is
 * then open until now_ns + cooldown. */
static void trip(struct tg_shm *shm, struct tg_shm_provider *p,
                 const struct tg_health_policy *policy, int64_t now_ns)
{
    int i;

    for (i = 0; i < policy->allowed_fails; i++) {
        cr_assert_eq(enter_at(shm, p, now_ns, NULL), TG_HEALTH_PASS,
                     "failure %d of %d", i + 1, policy->allowed_fails);
        report_failed(shm, p, policy, 0, now_ns, 503, "down");
    }
    cr_assert_eq(view_at(shm, p, now_ns).state, TG_HEALTH_OPEN);
}

/*
 * An error text longer than the segment keeps, made of one letter that
 * depends on the status: a text torn between two failures, or cut at the
 * wrong place, does not pass error_matches_status.
 */
static void error_for_status(char *buf, size_t cap, int status)
{
    memset(buf, 'a' + status % 26, cap - 1);
    buf[cap - 1] = '\0';
}

static bool error_matches_status(const struct tg_shm_health_view *v)
{
    size_t i;

    if (memchr(v->last_error, '\0', sizeof(v->last_error)) == NULL)
        return false;
    if (v->last_error_ns == 0)
        return v->last_error[0] == '\0';
    if (strlen(v->last_error) != TG_SHM_ERROR_MAX)
        return false;
    for (i = 0; i < TG_SHM_ERROR_MAX; i++)
        if (v->last_error[i] != 'a' + v->last_error_status % 26)
            return false;
    return true;
}

/* ---- processes ---------------------------------------------------------- */

static void kill_and_reap(pid_t pid, const char *what)
{
    int status;

    cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
    status = shm_test_wait_status(pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "%s stopped by itself (status %d)", what, status);
}

TestSuite(health, .init = shm_test_setup, .fini = shm_test_teardown);

/* ---- one process: the breaker's transitions ----------------------------- */

Test(health, new_provider_is_closed_and_latency_is_a_moving_average)
{
    const struct tg_health_policy policy = {3, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    struct tg_shm_provider *b = provider_of(shm, cfg, "b");
    int64_t t = tg_shm_now_ns(), wait = -1;
    struct tg_shm_health_view v = view_at(shm, a, t);

    cr_assert_neq(a, b);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 0);
    cr_assert_eq(v.cooling_until_ns, 0);
    cr_assert_not(v.is_probing);
    cr_assert_not(v.has_latency);
    cr_assert_eq(v.last_ok_ns, 0);
    cr_assert_eq(v.last_error_ns, 0);
    cr_assert_eq(v.last_error_status, 0);
    cr_assert_str_eq(v.last_error, "");
    cr_assert_eq(v.in_flight, 0);
    cr_assert_not(tg_shm_health_is_cooling(a, t, &wait));
    cr_assert_eq(wait, 0);

    cr_assert_eq(enter_at(shm, a, t, &wait), TG_HEALTH_PASS);
    cr_assert_eq(wait, 0);
    report_ok(shm, a, &policy, 0, t + 1, 1000);
    v = view_at(shm, a, t + 1);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert(v.has_latency);
    cr_assert_eq(v.latency_ewma_us, 1000, "the first sample is the average");
    cr_assert_eq(v.last_ok_ns, t + 1);

    cr_assert_eq(enter_at(shm, a, t + 2, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t + 2, 9000);
    cr_assert_eq(view_at(shm, a, t + 2).latency_ewma_us, 1000 + 8000 / 8);

    cr_assert_eq(enter_at(shm, a, t + 3, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t + 3, -1); /* latency unknown */
    v = view_at(shm, a, t + 3);
    cr_assert_eq(v.latency_ewma_us, 2000);
    cr_assert_eq(v.last_ok_ns, t + 3);

    cr_assert_eq(enter_at(shm, a, t + 4, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t + 4, 400);
    cr_assert_eq(view_at(shm, a, t + 4).latency_ewma_us, 2000 - 1600 / 8);

    v = view_at(shm, b, t + 4); /* the other provider saw none of it */
    cr_assert_eq(v.latency_ewma_us, 0);
    cr_assert_eq(v.last_ok_ns, 0);
    shm_test_close_segment(shm);
}

Test(health, allowed_fails_in_a_row_open_the_breaker_for_the_cooldown)
{
    const struct tg_health_policy policy = {4, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), opened = t + 10, wait = -1;
    char long_error[TG_SHM_ERROR_MAX + 100];
    struct tg_shm_health_view v;
    size_t i;

    for (i = 0; i + 1 < sizeof(long_error); i++)
        long_error[i] = (char)('A' + i % 26);
    long_error[sizeof(long_error) - 1] = '\0';

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_failed(shm, a, &policy, 0, t, 500, NULL);
    v = view_at(shm, a, t);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 1);
    cr_assert_eq(v.last_error_status, 500);
    cr_assert_str_eq(v.last_error, "", "no error text records an empty one");
    for (i = 2; i <= 3; i++) {
        cr_assert_eq(enter_at(shm, a, t + (int64_t)i, NULL), TG_HEALTH_PASS);
        report_failed(shm, a, &policy, 0, t + (int64_t)i, 502, "bad gateway");
        v = view_at(shm, a, t + (int64_t)i);
        cr_assert_eq(v.state, TG_HEALTH_CLOSED, "after %zu failures", i);
        cr_assert_eq(v.consecutive_fails, i);
        cr_assert_eq(v.last_error_ns, t + (int64_t)i);
        cr_assert_str_eq(v.last_error, "bad gateway");
    }
    cr_assert_eq(enter_at(shm, a, t + 4, &wait), TG_HEALTH_PASS,
                 "3 failures of 4 allowed opened the breaker");
    cr_assert_eq(wait, 0);

    report_failed(shm, a, &policy, 0, opened, 503, long_error);
    v = view_at(shm, a, opened);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 4);
    cr_assert_eq(v.cooling_until_ns, opened + COOLDOWN_NS);
    cr_assert_not(v.is_probing);
    cr_assert_eq(v.last_error_ns, opened);
    cr_assert_eq(v.last_error_status, 503);
    cr_assert_eq(strlen(v.last_error), TG_SHM_ERROR_MAX);
    cr_assert_eq(memcmp(v.last_error, long_error, TG_SHM_ERROR_MAX), 0);

    cr_assert_eq(enter_at(shm, a, opened + 5 * TG_NS_PER_S, &wait),
                 TG_HEALTH_COOLING);
    cr_assert_eq(wait, COOLDOWN_NS - 5 * TG_NS_PER_S);
    cr_assert(tg_shm_health_is_cooling(a, opened + 5 * TG_NS_PER_S, &wait));
    cr_assert_eq(wait, COOLDOWN_NS - 5 * TG_NS_PER_S);
    cr_assert_eq(enter_at(shm, a, opened + COOLDOWN_NS - 1, &wait),
                 TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    cr_assert_eq(view_at(shm, a, opened + COOLDOWN_NS - 1).state,
                 TG_HEALTH_OPEN);
    cr_assert_eq(view_at(shm, a, opened + COOLDOWN_NS).state,
                 TG_HEALTH_HALF_OPEN);
    cr_assert_eq(view_at(shm, a, opened).in_flight, 0);
    shm_test_close_segment(shm);
}

Test(health, success_between_failures_resets_the_count)
{
    const struct tg_health_policy policy = {3, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns();
    struct tg_shm_health_view v;
    int i;

    for (i = 0; i < 5; i++) {
        cr_assert_eq(enter_at(shm, a, t + i, NULL), TG_HEALTH_PASS, "call %d",
                     i + 1);
        if (i == 2)
            report_ok(shm, a, &policy, 0, t + i, 100);
        else
            report_failed(shm, a, &policy, 0, t + i, 500, "e");
    }
    v = view_at(shm, a, t + 5);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 2);
    cr_assert_eq(v.last_ok_ns, t + 2);
    cr_assert_eq(enter_at(shm, a, t + 5, NULL), TG_HEALTH_PASS);

    /* The count went on from 2: the next failure is the third in a row. */
    report_failed(shm, a, &policy, 0, t + 6, 500, "e");
    v = view_at(shm, a, t + 6);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 3);
    cr_assert_eq(v.cooling_until_ns, t + 6 + COOLDOWN_NS);
    shm_test_close_segment(shm);
}

Test(health, cooled_down_breaker_lets_exactly_one_probe_through)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    struct tg_shm_provider *b = provider_of(shm, cfg, "b");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait = -1;
    const int64_t short_lease = 300 * MS_NS;
    struct tg_shm_health_view v;
    int i;

    trip(shm, a, &policy, t);
    cr_assert_eq(enter_at(shm, a, u - 1, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    v = view_at(shm, a, u);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert_not(v.is_probing);

    cr_assert_eq(enter_at(shm, a, u, &wait), TG_HEALTH_PROBE);
    cr_assert_eq(wait, 0);
    v = view_at(shm, a, u);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert(v.is_probing);
    cr_assert_eq(v.consecutive_fails, 2);
    for (i = 0; i < 20; i++) {
        wait = -1;
        cr_assert_eq(enter_at(shm, a, u + i * 100 * MS_NS, &wait),
                     TG_HEALTH_COOLING, "enter %d after the probe", i + 1);
        cr_assert_eq(wait, TG_NS_PER_S,
                     "wait %lld: a probe is out, so at "
                     "most a second",
                     (long long)wait);
    }

    /* A lease shorter than a second: the wait is what is left of it. */
    trip(shm, b, &policy, t);
    cr_assert_eq(tg_shm_health_enter(shm, b, u, short_lease, &wait),
                 TG_HEALTH_PROBE);
    cr_assert_eq(
        tg_shm_health_enter(shm, b, u + 100 * MS_NS, short_lease, &wait),
        TG_HEALTH_COOLING);
    cr_assert_eq(wait, 200 * MS_NS);
    cr_assert_eq(
        tg_shm_health_enter(shm, b, u + short_lease - 1, short_lease, &wait),
        TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    shm_test_close_segment(shm);
}

Test(health, is_cooling_answers_without_taking_the_probe)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait;
    int i;

    trip(shm, a, &policy, t);
    for (i = 0; i < 5; i++) {
        wait = -1;
        cr_assert(tg_shm_health_is_cooling(a, u - 5, &wait));
        cr_assert_eq(wait, 5);
    }
    for (i = 0; i < 5; i++) {
        wait = -1;
        cr_assert_not(tg_shm_health_is_cooling(a, u, &wait),
                      "call %d: cooled down, the next caller probes", i + 1);
        cr_assert_eq(wait, 0);
    }
    cr_assert_not(view_at(shm, a, u).is_probing);
    cr_assert_eq(enter_at(shm, a, u, &wait), TG_HEALTH_PROBE,
                 "is_cooling took the probe");

    for (i = 0; i < 5; i++) {
        wait = -1;
        cr_assert(tg_shm_health_is_cooling(a, u + 1, &wait),
                  "call %d: the probe is out", i + 1);
        cr_assert_eq(wait, TG_NS_PER_S);
    }
    cr_assert(view_at(shm, a, u + 1).is_probing);
    cr_assert_eq(enter_at(shm, a, u + 1, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, TG_NS_PER_S);
    cr_assert_eq(view_at(shm, a, u + 1).consecutive_fails, 2);
    shm_test_close_segment(shm);
}

Test(health, successful_probe_closes_the_breaker)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait;
    struct tg_shm_health_view v;

    trip(shm, a, &policy, t);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);
    report_ok(shm, a, &policy, u + LEASE_NS, u + 7, 500);
    v = view_at(shm, a, u + 7);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 0);
    cr_assert_eq(v.cooling_until_ns, 0);
    cr_assert_not(v.is_probing);
    cr_assert_eq(v.last_ok_ns, u + 7);
    cr_assert_eq(v.latency_ewma_us, 500);
    cr_assert_not(tg_shm_health_is_cooling(a, u + 8, &wait));
    cr_assert_eq(enter_at(shm, a, u + 8, &wait), TG_HEALTH_PASS);
    cr_assert_eq(wait, 0);

    /* The count starts again: one failure of two allowed keeps it closed. */
    report_failed(shm, a, &policy, 0, u + 9, 500, "e");
    v = view_at(shm, a, u + 9);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 1);
    cr_assert_eq(enter_at(shm, a, u + 10, NULL), TG_HEALTH_PASS);
    shm_test_close_segment(shm);
}

Test(health, failed_probe_reopens_for_a_full_cooldown)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, failed = u + 7, wait;
    struct tg_shm_health_view v;

    trip(shm, a, &policy, t);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);
    report_failed(shm, a, &policy, u + LEASE_NS, failed, 504, "timeout");
    v = view_at(shm, a, failed);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 3);
    cr_assert_eq(v.cooling_until_ns, failed + COOLDOWN_NS);
    cr_assert_not(v.is_probing);
    cr_assert_eq(v.last_error_status, 504);
    cr_assert_str_eq(v.last_error, "timeout");
    cr_assert_eq(enter_at(shm, a, failed, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, COOLDOWN_NS);
    cr_assert_eq(enter_at(shm, a, failed + COOLDOWN_NS - 1, &wait),
                 TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    cr_assert_eq(enter_at(shm, a, failed + COOLDOWN_NS, &wait),
                 TG_HEALTH_PROBE);
    cr_assert_eq(enter_at(shm, a, failed + COOLDOWN_NS, &wait),
                 TG_HEALTH_COOLING);
    shm_test_close_segment(shm);
}

Test(health, expired_probe_lease_lets_the_next_caller_probe)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    const int64_t lease = 2 * TG_NS_PER_S;
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait;

    trip(shm, a, &policy, t);
    cr_assert_eq(tg_shm_health_enter(shm, a, u, lease, &wait), TG_HEALTH_PROBE);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease - 1, lease, &wait),
                 TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    cr_assert(view_at(shm, a, u + lease - 1).is_probing);
    cr_assert_not(view_at(shm, a, u + lease).is_probing);
    cr_assert_eq(view_at(shm, a, u + lease).state, TG_HEALTH_HALF_OPEN);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease, lease, &wait),
                 TG_HEALTH_PROBE, "the lease of a silent probe never ends");
    cr_assert_eq(wait, 0);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease, lease, &wait),
                 TG_HEALTH_COOLING);
    cr_assert_eq(wait, TG_NS_PER_S);
    cr_assert_eq(view_at(shm, a, u + lease).consecutive_fails, 2);
    shm_test_close_segment(shm);
}

/* A probe whose lease ran out reports late: the probe that took over keeps
 * its lease, so there is still one probe out. */
Test(health, late_abandon_of_an_expired_probe_keeps_the_new_probes_lease)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    const int64_t lease = 2 * TG_NS_PER_S;
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait;

    trip(shm, a, &policy, t);
    cr_assert_eq(tg_shm_health_enter(shm, a, u, lease, &wait), TG_HEALTH_PROBE);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease, lease, &wait),
                 TG_HEALTH_PROBE);
    report_abandoned(shm, a, &policy, u + lease, u + lease + 1);
    cr_assert(view_at(shm, a, u + lease + 2).is_probing);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease + 2, lease, &wait),
                 TG_HEALTH_COOLING, "two probes out at once");
    /* The current probe abandoning does free it. */
    report_abandoned(shm, a, &policy, u + 2 * lease, u + lease + 3);
    cr_assert_eq(tg_shm_health_enter(shm, a, u + lease + 4, lease, &wait),
                 TG_HEALTH_PROBE);
    shm_test_close_segment(shm);
}

Test(health, a_zero_latency_is_a_sample)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns();
    struct tg_shm_health_view v;

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t, 0);
    v = view_at(shm, a, t);
    cr_assert(v.has_latency);
    cr_assert_eq(v.latency_ewma_us, 0);
    cr_assert_eq(enter_at(shm, a, t + 1, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t + 1, 800);
    cr_assert_eq(view_at(shm, a, t + 1).latency_ewma_us, 100);
    shm_test_close_segment(shm);
}

Test(health, abandoned_probe_lets_another_probe_through_at_once)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait;
    struct tg_shm_health_view before, v;

    trip(shm, a, &policy, t);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_COOLING);
    before = view_at(shm, a, u + 1);
    report_abandoned(shm, a, &policy, u + LEASE_NS, u + 1);
    v = view_at(shm, a, u + 1);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert_not(v.is_probing);
    cr_assert_eq(v.consecutive_fails, before.consecutive_fails);
    cr_assert_eq(v.cooling_until_ns, before.cooling_until_ns);
    cr_assert_eq(v.last_error_ns, before.last_error_ns);
    cr_assert_eq(v.last_ok_ns, 0, "an abandoned call is no success");
    cr_assert_eq(enter_at(shm, a, u + 1, &wait), TG_HEALTH_PROBE);
    cr_assert_eq(enter_at(shm, a, u + 1, &wait), TG_HEALTH_COOLING);
    shm_test_close_segment(shm);
}

Test(health, abandoned_non_probe_changes_nothing)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS + 1, wait;
    struct tg_shm_health_view before, after;

    /* Closed, one failure counted. */
    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_failed(shm, a, &policy, 0, t, 500, "e");
    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS); /* call X */
    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS); /* call Y */
    before = view_at(shm, a, t);
    report_abandoned(shm, a, &policy, 0, t); /* X */
    after = view_at(shm, a, t);
    expect_same_view(&after, &before, "closed");
    cr_assert_eq(after.consecutive_fails, 1);

    /* Open, then half-open with a probe out: Y ends abandoned. */
    cr_assert_eq(enter_at(shm, a, t + 1, NULL), TG_HEALTH_PASS);
    report_failed(shm, a, &policy, 0, t + 1, 500, "e");
    cr_assert_eq(view_at(shm, a, t + 1).state, TG_HEALTH_OPEN);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);
    before = view_at(shm, a, u);
    report_abandoned(shm, a, &policy, 0, u); /* Y */
    after = view_at(shm, a, u);
    expect_same_view(&after, &before, "half-open");
    cr_assert(after.is_probing);
    cr_assert_eq(enter_at(shm, a, u, &wait), TG_HEALTH_COOLING,
                 "an abandoned ordinary call freed the probe's lease");
    cr_assert_eq(wait, TG_NS_PER_S);
    shm_test_close_segment(shm);
}

Test(health, late_failure_while_open_counts_but_does_not_extend_cooling)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), opened = t + 1;
    int64_t u = opened + COOLDOWN_NS, wait;
    struct tg_shm_health_view v;

    /* X and Y are entered while it is closed and end after it opened. */
    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    trip(shm, a, &policy, opened);

    report_failed(shm, a, &policy, 0, opened + 5, 502, "late"); /* X */
    v = view_at(shm, a, opened + 5);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 3);
    cr_assert_eq(v.cooling_until_ns, u, "a late failure extended cooling");
    cr_assert_eq(v.last_error_ns, opened + 5);
    cr_assert_eq(v.last_error_status, 502);
    cr_assert_str_eq(v.last_error, "late");
    cr_assert_eq(enter_at(shm, a, u - 1, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);

    report_failed(shm, a, &policy, 0, u + 1, 500, "later"); /* Y */
    v = view_at(shm, a, u + 1);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert_eq(v.consecutive_fails, 4);
    cr_assert_eq(v.cooling_until_ns, u);
    cr_assert(v.is_probing, "a late failure took the probe's lease");
    cr_assert_eq(enter_at(shm, a, u + 1, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, TG_NS_PER_S);
    shm_test_close_segment(shm);
}

Test(health, late_success_closes_an_open_breaker)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), wait;
    struct tg_shm_health_view v;

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    trip(shm, a, &policy, t + 1);
    report_ok(shm, a, &policy, 0, t + 5, 250);
    v = view_at(shm, a, t + 5);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 0);
    cr_assert_eq(v.cooling_until_ns, 0);
    cr_assert_eq(v.last_ok_ns, t + 5);
    cr_assert_eq(enter_at(shm, a, t + 6, &wait), TG_HEALTH_PASS);
    shm_test_close_segment(shm);
}

Test(health, reset_closes_an_open_breaker)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    struct tg_shm_provider *b = provider_of(shm, cfg, "b");
    int64_t t = tg_shm_now_ns(), u = t + COOLDOWN_NS, wait = -1;
    struct tg_shm_health_view v;

    trip(shm, a, &policy, t);
    tg_shm_health_reset(a);
    v = view_at(shm, a, t + 1);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 0);
    cr_assert_eq(v.cooling_until_ns, 0);
    cr_assert_not(v.is_probing);
    cr_assert_not(tg_shm_health_is_cooling(a, t + 1, &wait));
    cr_assert_eq(enter_at(shm, a, t + 1, &wait), TG_HEALTH_PASS);
    cr_assert_eq(wait, 0);
    report_failed(shm, a, &policy, 0, t + 1, 500, "e");
    cr_assert_eq(view_at(shm, a, t + 1).state, TG_HEALTH_CLOSED,
                 "the failures before the reset still counted");

    /* Also with a probe out. */
    trip(shm, b, &policy, t);
    cr_assert_eq(enter_at(shm, b, u, NULL), TG_HEALTH_PROBE);
    tg_shm_health_reset(b);
    v = view_at(shm, b, u);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_not(v.is_probing);
    cr_assert_eq(enter_at(shm, b, u, NULL), TG_HEALTH_PASS);
    shm_test_close_segment(shm);
}

/* ---- across processes ---------------------------------------------------- */

#define STORM_WORKERS 8
#define STORM_CALLS   20000

/* What the workers of a storm count, in memory shared with the parent. */
struct storm_counts {
    int64_t reported[STORM_WORKERS]; /* failures reported */
    int64_t probes[STORM_WORKERS];   /* PROBE answers */
    int64_t cooling[STORM_WORKERS];  /* COOLING answers */
    int64_t odd[STORM_WORKERS];      /* answers that cannot be */
    _Atomic int64_t clock;           /* ticks of the workers' shared clock */
    _Atomic int probes_out;          /* probes held right now */
    _Atomic int double_probe;        /* times two were held at once */
};

struct storm {
    struct tg_shm *shm;
    struct tg_shm_provider *p;
    struct tg_health_policy policy;
    int64_t base_ns;
    struct storm_counts *counts;
};

/* Holding a probe: nobody else may hold one until it is reported. A
 * holder that yields the CPU meanwhile gives a second holder, if there is
 * one, the time to show, but also keeps the probe longer from the others. */
static void hold_probe(struct storm_counts *c, bool should_yield)
{
    if (atomic_fetch_add(&c->probes_out, 1) != 0)
        atomic_fetch_add(&c->double_probe, 1);
    if (should_yield)
        sched_yield();
    atomic_fetch_sub(&c->probes_out, 1);
}

/* Each call fails. Calls are timed by a clock the workers share, one tick
 * per call, and the cooldown is one tick: the breaker keeps opening and
 * being probed by whichever worker comes next. */
static void fail_every_call(int index, void *arg)
{
    struct storm *s = arg;
    struct storm_counts *c = s->counts;
    char error[TG_SHM_ERROR_MAX + 32];
    enum tg_health_pass pass;
    int64_t i, now, wait;
    int status = 500 + index;

    error_for_status(error, sizeof(error), status);
    for (i = 0; i < STORM_CALLS; i++) {
        now = s->base_ns + atomic_fetch_add(&c->clock, 1);
        pass = tg_shm_health_enter(s->shm, s->p, now, LEASE_NS, &wait);
        if (pass == TG_HEALTH_COOLING) {
            c->cooling[index]++;
            c->odd[index] += wait <= 0 || wait > TG_NS_PER_S;
            continue;
        }
        c->odd[index] += wait != 0;
        if (pass == TG_HEALTH_PROBE) {
            c->probes[index]++;
            hold_probe(c, false);
        }
        report_failed(s->shm, s->p, &s->policy,
                      pass == TG_HEALTH_PROBE ? now + LEASE_NS : 0, now, status,
                      error);
        c->reported[index]++;
    }
}

/* The workers' counts of a storm, summed. */
struct storm_sums {
    int64_t reported, probes, cooling, odd;
    int reporters; /* workers that reported failures */
};

/* Runs STORM_WORKERS workers of body on s, started together, and sums what
 * they counted. */
static struct storm_sums
run_storm(struct storm *s, void (*body)(int index, void *arg), const char *what)
{
    const struct storm_counts *c = s->counts;
    struct storm_sums sum = {0};
    int i;

    shm_test_run_workers(STORM_WORKERS, body, s, what);
    for (i = 0; i < STORM_WORKERS; i++) {
        sum.reported += c->reported[i];
        sum.probes += c->probes[i];
        sum.cooling += c->cooling[i];
        sum.odd += c->odd[i];
        sum.reporters += c->reported[i] > 0;
    }
    return sum;
}

static void expect_one_probe_at_a_time(const struct storm_counts *c)
{
    cr_assert_eq(atomic_load(&c->double_probe), 0,
                 "two processes held the probe at once %d times",
                 atomic_load(&c->double_probe));
}

Test(health, failures_from_many_processes_are_all_counted,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct storm s = {shm,
                      provider_of(shm, cfg, "a"),
                      {3, 1},
                      tg_shm_now_ns(),
                      shm_test_shared_alloc(sizeof(*s.counts))};
    struct storm_sums sum;
    struct tg_shm_health_view v;

    sum = run_storm(&s, fail_every_call, "failing worker");
    cr_log_info("health storm: %d workers (%d reporting), %lld failures "
                "reported, %lld of them probes, %lld cooling answers",
                STORM_WORKERS, sum.reporters, (long long)sum.reported,
                (long long)sum.probes, (long long)sum.cooling);
    cr_assert_eq(sum.odd, 0, "%lld answers with an impossible wait",
                 (long long)sum.odd);
    expect_one_probe_at_a_time(s.counts);
    cr_assert_eq(sum.reported + sum.cooling, STORM_WORKERS * STORM_CALLS);
    cr_assert_gt(sum.probes, 0, "the breaker was never probed");
    /* Read at the clock's start, before every cooldown ended. */
    v = view_at(shm, s.p, s.base_ns);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, (uint32_t)sum.reported,
                 "%u failures counted, %lld reported", v.consecutive_fails,
                 (long long)sum.reported);
    cr_assert_geq(v.last_error_status, 500);
    cr_assert_lt(v.last_error_status, 500 + STORM_WORKERS);
    cr_assert(error_matches_status(&v), "last_error does not go with %d: %s",
              v.last_error_status, v.last_error);
    cr_assert_eq(v.in_flight, 0);
    munmap(s.counts, sizeof(*s.counts));
    shm_test_close_segment(shm);
}

#define RACE_WORKERS 8
#define RACE_ROUNDS  40

struct race {
    struct tg_shm *shm;
    struct tg_shm_provider *p;
    int64_t now_ns;
    int *pass;     /* per worker */
    int64_t *wait; /* per worker */
};

static void enter_once(int index, void *arg)
{
    struct race *r = arg;

    r->pass[index] = (int)tg_shm_health_enter(r->shm, r->p, r->now_ns, LEASE_NS,
                                              &r->wait[index]);
}

Test(health, racing_processes_after_cooldown_get_exactly_one_probe,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    const struct tg_health_policy policy = {3, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    char *mem =
        shm_test_shared_alloc(RACE_WORKERS * (sizeof(int) + sizeof(int64_t)));
    struct race r = {shm, provider_of(shm, cfg, "a"), 0,
                     (int *)(mem + RACE_WORKERS * sizeof(int64_t)),
                     (int64_t *)mem};
    int64_t t = tg_shm_now_ns();
    int round, i, probe;

    trip(shm, r.p, &policy, t);
    r.now_ns = t + COOLDOWN_NS;
    for (round = 0; round < RACE_ROUNDS; round++) {
        shm_test_run_workers(RACE_WORKERS, enter_once, &r, "racing worker");
        probe = -1;
        for (i = 0; i < RACE_WORKERS; i++) {
            if (r.pass[i] == TG_HEALTH_PROBE) {
                cr_assert_eq(probe, -1, "round %d: workers %d and %d probe",
                             round, probe, i);
                probe = i;
                cr_assert_eq(r.wait[i], 0);
                continue;
            }
            cr_assert_eq(r.pass[i], TG_HEALTH_COOLING,
                         "round %d: worker %d was let through", round, i);
            cr_assert_eq(r.wait[i], TG_NS_PER_S, "round %d: worker %d", round,
                         i);
        }
        cr_assert_neq(probe, -1, "round %d: nobody probes", round);
        /* The probe fails: open for another cooldown, then the next race. */
        report_failed(shm, r.p, &policy, r.now_ns + LEASE_NS, r.now_ns, 503,
                      "still down");
        cr_assert_eq(view_at(shm, r.p, r.now_ns).consecutive_fails,
                     (uint32_t)(3 + round + 1));
        r.now_ns += COOLDOWN_NS;
    }
    munmap(mem, RACE_WORKERS * (sizeof(int) + sizeof(int64_t)));
    shm_test_close_segment(shm);
}

/* Probes at one cooled-down instant, abandoning each at once, so that the
 * probe changes hands as fast as the processes can take it. */
static void probe_and_abandon(int index, void *arg)
{
    struct storm *s = arg;
    struct storm_counts *c = s->counts;
    enum tg_health_pass pass;
    int64_t i, wait;

    for (i = 0; i < STORM_CALLS; i++) {
        pass = tg_shm_health_enter(s->shm, s->p, s->base_ns, LEASE_NS, &wait);
        if (pass == TG_HEALTH_COOLING) {
            c->cooling[index]++;
            c->odd[index] += wait != TG_NS_PER_S;
            continue;
        }
        if (pass != TG_HEALTH_PROBE) {
            c->odd[index]++;
            report_abandoned(s->shm, s->p, &s->policy, 0, s->base_ns);
            continue;
        }
        c->probes[index]++;
        hold_probe(c, true);
        report_abandoned(s->shm, s->p, &s->policy, s->base_ns + LEASE_NS,
                         s->base_ns);
    }
}

Test(health, probe_is_never_held_by_two_processes_at_once,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    int64_t t = tg_shm_now_ns();
    struct storm s = {shm,
                      provider_of(shm, cfg, "a"),
                      {3, COOLDOWN_NS},
                      t + COOLDOWN_NS,
                      shm_test_shared_alloc(sizeof(*s.counts))};
    struct storm_sums sum;
    struct tg_shm_health_view v;

    trip(shm, s.p, &s.policy, t);
    sum = run_storm(&s, probe_and_abandon, "probing worker");
    cr_log_info("health probes: %d workers took and abandoned %lld probes, "
                "%lld cooling answers",
                STORM_WORKERS, (long long)sum.probes, (long long)sum.cooling);
    cr_assert_eq(sum.odd, 0, "%lld calls let through or told to wait wrongly",
                 (long long)sum.odd);
    expect_one_probe_at_a_time(s.counts);
    cr_assert_eq(sum.probes + sum.cooling, STORM_WORKERS * STORM_CALLS);
    cr_assert_gt(sum.probes, 0, "the probe was never taken");
    v = view_at(shm, s.p, s.base_ns);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert_not(v.is_probing);
    cr_assert_eq(v.consecutive_fails, 3);
    cr_assert_eq(enter_at(shm, s.p, s.base_ns, NULL), TG_HEALTH_PROBE);
    munmap(s.counts, sizeof(*s.counts));
    shm_test_close_segment(shm);
}

/* ---- in-flight counts ---------------------------------------------------- */

#define FLIGHT_WORKERS 6

struct flight {
    struct tg_shm *shm;
    struct tg_shm_provider *a, *b;
    int64_t now_ns;
    int slot[FLIGHT_WORKERS];
    int ready[2]; /* pipe: a worker writes 'r' once its calls are in */
};

static int64_t flight_calls_a(int index)
{
    return index + 1;
}

static int64_t flight_calls_b(int index)
{
    return 2 * index;
}

/* A worker: attaches to its slot, enters calls it never reports, says so
 * and waits to be killed. */
static void enter_and_hang(int index, void *arg)
{
    struct flight *f = arg;
    bool is_ok = true;
    int64_t i, wait;

    close(f->ready[0]);
    tg_shm_worker_attach(f->shm, f->slot[index]);
    for (i = 0; i < flight_calls_a(index); i++)
        is_ok &= tg_shm_health_enter(f->shm, f->a, f->now_ns, LEASE_NS,
                                     &wait) == TG_HEALTH_PASS;
    for (i = 0; i < flight_calls_b(index); i++)
        is_ok &= tg_shm_health_enter(f->shm, f->b, f->now_ns, LEASE_NS,
                                     &wait) == TG_HEALTH_PASS;
    if (write(f->ready[1], is_ok ? "r" : "f", 1) != 1)
        _exit(2);
    for (;;)
        pause();
}

static void expect_in_flight(struct flight *f, int64_t a, int64_t b,
                             const char *when)
{
    cr_assert_eq(view_at(f->shm, f->a, f->now_ns).in_flight, a,
                 "%s: provider a", when);
    cr_assert_eq(view_at(f->shm, f->b, f->now_ns).in_flight, b,
                 "%s: provider b", when);
}

/* Forks FLIGHT_WORKERS hanging workers, each on a slot of its own, and
 * returns once all their calls are in. */
static void start_hanging_workers(struct flight *f, pid_t *pids)
{
    char byte;
    int i, j;

    cr_assert_eq(pipe(f->ready), 0, "pipe: %s", strerror(errno));
    for (i = 0; i < FLIGHT_WORKERS; i++) {
        f->slot[i] = tg_shm_worker_take(f->shm);
        cr_assert_geq(f->slot[i], 0, "no worker slot for worker %d", i);
        for (j = 0; j < i; j++)
            cr_assert_neq(f->slot[i], f->slot[j], "a slot taken twice");
        pids[i] = shm_test_spawn(enter_and_hang, i, f);
    }
    close(f->ready[1]);
    for (i = 0; i < FLIGHT_WORKERS; i++) {
        cr_assert_eq(read(f->ready[0], &byte, 1), 1, "a worker died early");
        cr_assert_eq(byte, 'r', "a worker's call was not let through");
    }
    close(f->ready[0]);
}

Test(health, in_flight_sums_workers_and_forgets_a_freed_worker,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    const struct tg_health_policy policy = {3, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct flight f = {.shm = shm,
                       .a = provider_of(shm, cfg, "a"),
                       .b = provider_of(shm, cfg, "b"),
                       .now_ns = tg_shm_now_ns()};
    pid_t pids[FLIGHT_WORKERS];
    int64_t sum_a = 0, sum_b = 0;
    const int victim = 2;
    int i;

    start_hanging_workers(&f, pids);
    for (i = 0; i < FLIGHT_WORKERS; i++) {
        sum_a += flight_calls_a(i);
        sum_b += flight_calls_b(i);
    }
    expect_in_flight(&f, sum_a, sum_b, "all workers running");

    /* The master's own calls are not counted: it has no worker slot. */
    cr_assert_eq(enter_at(shm, f.a, f.now_ns, NULL), TG_HEALTH_PASS);
    expect_in_flight(&f, sum_a, sum_b, "the master entered a call");
    report_ok(shm, f.a, &policy, 0, f.now_ns, 10);
    expect_in_flight(&f, sum_a, sum_b, "the master reported its call");

    kill_and_reap(pids[victim], "a hanging worker");
    expect_in_flight(&f, sum_a, sum_b, "killed, its slot not yet freed");
    tg_shm_worker_free(shm, f.slot[victim]);
    sum_a -= flight_calls_a(victim);
    sum_b -= flight_calls_b(victim);
    expect_in_flight(&f, sum_a, sum_b, "its slot freed");
    cr_assert_eq(tg_shm_worker_take(shm), f.slot[victim],
                 "the freed slot is not free");
    tg_shm_worker_free(shm, f.slot[victim]);
    expect_in_flight(&f, sum_a, sum_b, "its slot taken and freed again");

    for (i = 0; i < FLIGHT_WORKERS; i++) {
        if (i == victim)
            continue;
        kill_and_reap(pids[i], "a hanging worker");
        tg_shm_worker_free(shm, f.slot[i]);
        sum_a -= flight_calls_a(i);
        sum_b -= flight_calls_b(i);
        expect_in_flight(&f, sum_a, sum_b, "another worker freed");
    }
    cr_assert_eq(sum_a, 0);
    cr_assert_eq(sum_b, 0);
    shm_test_close_segment(shm);
}

Test(health, restart_zeroes_in_flight_of_dead_workers,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct flight f = {.shm = shm,
                       .a = provider_of(shm, cfg, "a"),
                       .b = provider_of(shm, cfg, "b"),
                       .now_ns = tg_shm_now_ns()};
    pid_t pids[FLIGHT_WORKERS];
    int64_t sum_a = 0;
    int i;

    start_hanging_workers(&f, pids);
    for (i = 0; i < FLIGHT_WORKERS; i++) {
        kill_and_reap(pids[i], "a hanging worker");
        sum_a += flight_calls_a(i);
    }
    /* A master that died too: nobody freed the slots. */
    cr_assert_eq(view_at(shm, f.a, f.now_ns).in_flight, sum_a);
    shm_test_close_segment(shm);

    shm = shm_test_open_configured(cfg);
    f.shm = shm;
    f.a = provider_of(shm, cfg, "a");
    f.b = provider_of(shm, cfg, "b");
    expect_in_flight(&f, 0, 0, "after a restart");
    cr_assert_eq(enter_at(shm, f.a, f.now_ns, NULL), TG_HEALTH_PASS);
    expect_in_flight(&f, 0, 0, "the master entered a call");
    for (i = 0; i < FLIGHT_WORKERS; i++)
        cr_assert_eq(tg_shm_worker_take(shm), i,
                     "worker slot %d is still taken after a restart", i);
    shm_test_close_segment(shm);
}

/* ---- SIGKILL at any instruction ----------------------------------------- */

#define KILL_ROUNDS        300
#define KILL_MAX_DELAY_US  500
#define KILL_ALLOWED_FAILS 3
#define KILL_STEP_NS       1000 /* between a worker's calls */
#define KILL_COOLDOWN_NS   400  /* shorter: every call while open probes */
#define KILL_LEASE_NS      200
#define KILL_LATENCY_US    1000
#define KILL_MAX_CALLS     (1 << 20)
#define KILL_ROUND_NS      ((int64_t)(KILL_MAX_CALLS + 2) * KILL_STEP_NS)

/*
 * A worker makes calls k = 0, 1, ... at base + k * KILL_STEP_NS: four
 * failures (statuses 500..503), then a success, over and over. Each call
 * enters (PASS when closed, PROBE when open, since the cooldown is shorter
 * than a step) and reports. After `calls` completed calls from a closed
 * breaker, the state is exactly what kill_model computes; a kill can land
 * after the report of call k was committed and before the worker counted
 * it, so the breaker shows `calls` or `calls + 1` calls.
 */
struct kill_model {
    bool is_open;
    uint32_t fails;
    int64_t cooling_until_ns, last_ok_ns, last_error_ns, latency_ewma_us;
    int status;
};

static bool kill_call_fails(int64_t k)
{
    return k % 5 != 4;
}

static int kill_call_status(int64_t k)
{
    return 500 + (int)(k % 5);
}

static void kill_model_call(struct kill_model *m, int64_t base, int64_t k)
{
    int64_t now = base + k * KILL_STEP_NS;

    if (!kill_call_fails(k)) {
        m->is_open = false;
        m->fails = 0;
        m->cooling_until_ns = 0;
        m->last_ok_ns = now;
        /* Every sample is the same, so the average is it from the first. */
        m->latency_ewma_us = KILL_LATENCY_US;
        return;
    }
    m->last_error_ns = now;
    m->status = kill_call_status(k);
    if (m->is_open || m->fails + 1 >= KILL_ALLOWED_FAILS) {
        m->is_open = true;
        m->cooling_until_ns = now + KILL_COOLDOWN_NS;
    }
    m->fails++;
}

static bool kill_model_matches(const struct kill_model *m,
                               const struct tg_shm_health_view *v)
{
    return v->state == (m->is_open ? TG_HEALTH_OPEN : TG_HEALTH_CLOSED) &&
           v->consecutive_fails == m->fails &&
           v->cooling_until_ns == m->cooling_until_ns &&
           v->last_ok_ns == m->last_ok_ns &&
           v->last_error_ns == m->last_error_ns &&
           v->last_error_status == m->status &&
           v->latency_ewma_us == m->latency_ewma_us;
}

struct kill_run {
    struct tg_shm *shm;
    struct tg_shm_provider *p;
    struct tg_health_policy policy;
    int64_t base_ns; /* this round's first call */
    int slot;        /* the worker's slot */
    _Atomic int *started;
    _Atomic int64_t *calls;                /* calls the worker completed */
    struct tg_shm_health_view *fresh_view; /* what a fresh process read */
    const char *log_path;
};

static void call_until_killed(int index, void *arg)
{
    struct kill_run *run = arg;
    char errors[5][TG_SHM_ERROR_MAX + 32];
    enum tg_health_pass pass;
    int64_t k, now, wait;

    (void)index;
    for (k = 0; k < 5; k++)
        error_for_status(errors[k], sizeof(errors[k]), kill_call_status(k));
    tg_shm_worker_attach(run->shm, run->slot);
    atomic_store(run->started, 1);
    for (k = 0; k < KILL_MAX_CALLS; k++) {
        now = run->base_ns + k * KILL_STEP_NS;
        pass = tg_shm_health_enter(run->shm, run->p, now, KILL_LEASE_NS, &wait);
        if (pass == TG_HEALTH_COOLING)
            _exit(2);
        if (kill_call_fails(k))
            report_failed(run->shm, run->p, &run->policy,
                          pass == TG_HEALTH_PROBE ? now + KILL_LEASE_NS : 0,
                          now, kill_call_status(k), errors[k % 5]);
        else
            report_ok(run->shm, run->p, &run->policy,
                      pass == TG_HEALTH_PROBE ? now + KILL_LEASE_NS : 0, now,
                      KILL_LATENCY_US);
        atomic_store_explicit(run->calls, k + 1, memory_order_relaxed);
    }
    for (;;)
        pause();
}

/* A fresh process locks the provider first (taking over the lock of a
 * killed holder; see shm_test_expect_fresh_lock). */
static void read_in_fresh_process(int index, void *arg)
{
    struct kill_run *run = arg;

    (void)index;
    shm_test_enter_fresh_process(run->log_path);
    tg_shm_health_read(run->shm, run->p, run->base_ns, run->fresh_view);
}

/* Spins until the worker is in its loop (it cannot be there yet if it
 * died). */
static void wait_until_started(pid_t pid, _Atomic int *started)
{
    int status;

    while (!atomic_load(started)) {
        if (shm_test_has_exited(pid, &status)) {
            cr_assert_fail("the worker ended before its first call (status "
                           "%d)",
                           status);
        }
        sched_yield();
    }
}

/* Starts a worker, kills it after a random delay, and checks that a fresh
 * process can lock the provider and that the parent sees what it saw.
 * Returns the calls the worker completed. */
static int64_t kill_worker_at_random(struct kill_run *run, unsigned *rand_state,
                                     int round, unsigned seed)
{
    long delay_us = (long)(rand_r(rand_state) % (KILL_MAX_DELAY_US + 1));
    struct timespec delay = {0, delay_us * 1000};
    struct tg_shm_health_view mine;
    pid_t pid;

    atomic_store(run->started, 0);
    atomic_store(run->calls, 0);
    pid = shm_test_spawn(call_until_killed, 0, run);
    wait_until_started(pid, run->started);
    nanosleep(&delay, NULL);
    kill_and_reap(pid, "the calling worker");
    shm_test_expect_fresh_lock(read_in_fresh_process, run, "provider", round,
                               seed, delay_us);
    mine = view_at(run->shm, run->p, run->base_ns);
    expect_same_view(&mine, run->fresh_view, "the parent and a fresh process");
    return atomic_load(run->calls);
}

/* Checks the view after a kill against the model, which it leaves at the
 * state found, and frees the worker's slot. */
static void expect_model_state(struct kill_run *run, struct kill_model *m,
                               int64_t calls, int round, unsigned seed)
{
    struct tg_shm_health_view v = view_at(run->shm, run->p, run->base_ns);
    struct kill_model next;
    int64_t k;

    for (k = 0; k < calls; k++)
        kill_model_call(m, run->base_ns, k);
    next = *m;
    kill_model_call(&next, run->base_ns, calls);
    cr_assert(v.state == TG_HEALTH_CLOSED || v.state == TG_HEALTH_OPEN ||
                  v.state == TG_HEALTH_HALF_OPEN,
              "round %d: state %d", round, (int)v.state);
    cr_assert(error_matches_status(&v),
              "round %d (seed %u): last_error torn or unterminated "
              "(status %d)",
              round, seed, v.last_error_status);
    cr_assert(kill_model_matches(m, &v) || kill_model_matches(&next, &v),
              "round %d (seed %u): after %lld calls the breaker shows "
              "state %d, %u fails, cooling until +%lld, last error +%lld "
              "(%d), last ok +%lld, latency %lld; expected %u or %u fails",
              round, seed, (long long)calls, (int)v.state, v.consecutive_fails,
              (long long)(v.cooling_until_ns - run->base_ns),
              (long long)(v.last_error_ns - run->base_ns), v.last_error_status,
              (long long)(v.last_ok_ns - run->base_ns),
              (long long)v.latency_ewma_us, m->fails, next.fails);
    if (!kill_model_matches(m, &v))
        *m = next;
    cr_assert(!v.is_probing || v.state == TG_HEALTH_OPEN,
              "round %d: a probe out while closed", round);
    cr_assert(v.in_flight == 0 || v.in_flight == 1,
              "round %d: %lld calls in flight from one worker", round,
              (long long)v.in_flight);
    tg_shm_worker_free(run->shm, run->slot);
    cr_assert_eq(view_at(run->shm, run->p, run->base_ns).in_flight, 0,
                 "round %d: the freed worker's calls are still in flight",
                 round);
}

/* A call of the parent's own after the round, past every cooldown: it is
 * let through (as the probe when open) and its success closes the
 * breaker. */
static void call_from_parent(struct kill_run *run, struct kill_model *m,
                             int round)
{
    int64_t end = run->base_ns + KILL_ROUND_NS - KILL_STEP_NS, wait;
    enum tg_health_pass pass;
    struct tg_shm_health_view v;

    pass = tg_shm_health_enter(run->shm, run->p, end, KILL_LEASE_NS, &wait);
    cr_assert_eq(pass, m->is_open ? TG_HEALTH_PROBE : TG_HEALTH_PASS,
                 "round %d: the parent's own call", round);
    report_ok(run->shm, run->p, &run->policy,
              pass == TG_HEALTH_PROBE ? end + KILL_LEASE_NS : 0, end, -1);
    v = view_at(run->shm, run->p, end);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED, "round %d", round);
    cr_assert_eq(v.consecutive_fails, 0, "round %d", round);
    cr_assert_eq(v.last_ok_ns, end, "round %d", round);
    m->is_open = false;
    m->fails = 0;
    m->cooling_until_ns = 0;
    m->last_ok_ns = end;
}

Test(health, sigkill_inside_operations_never_wedges_or_tears_the_breaker,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    char log_path[256];
    char *mem = shm_test_shared_alloc(4096);
    struct kill_run run = {shm,
                           provider_of(shm, cfg, "a"),
                           {KILL_ALLOWED_FAILS, KILL_COOLDOWN_NS},
                           0,
                           -1,
                           (_Atomic int *)mem,
                           (_Atomic int64_t *)(mem + 64),
                           (struct tg_shm_health_view *)(mem + 128),
                           log_path};
    struct kill_model m = {0};
    unsigned seed = shm_test_seed(), rand_state = seed;
    int64_t t0 = tg_shm_now_ns(), calls, total = 0;
    int round, recoveries;

    snprintf(log_path, sizeof(log_path), "%s/fresh.log", shm_test_fx.dir);
    cr_log_info("health kill: seed %u (set TG_TEST_SEED to replay)", seed);
    for (round = 0; round < KILL_ROUNDS; round++) {
        run.base_ns = t0 + round * KILL_ROUND_NS;
        run.slot = tg_shm_worker_take(shm);
        cr_assert_geq(run.slot, 0, "round %d: no worker slot", round);
        calls = kill_worker_at_random(&run, &rand_state, round, seed);
        expect_model_state(&run, &m, calls, round, seed);
        call_from_parent(&run, &m, round);
        total += calls;
    }
    recoveries = shm_test_count_lines_with(log_path, "recovered the lock");
    cr_log_info("health kill: %d rounds, %lld calls, %d lock recoveries",
                KILL_ROUNDS, (long long)total, recoveries);
    cr_assert_gt(recoveries, 0,
                 "no kill landed while the lock was held: the test proved "
                 "nothing");
    munmap(mem, 4096);
    shm_test_close_segment(shm);
}

/* ---- reload, restart, removed providers ---------------------------------- */

Test(health, reload_keeps_health_matched_by_provider_name)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *before = load_providers("  a: {type: mock}\n");
    struct tg_config *after =
        load_providers("  n: {type: mock}\n  a: {type: mock}\n");
    struct tg_shm *shm = shm_test_open_configured(before);
    struct tg_shm_provider *a = provider_of(shm, before, "a"), *n;
    int64_t t = tg_shm_now_ns(), wait;
    struct tg_shm_health_view v;

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t, 1234);
    trip(shm, a, &policy, t + 1);
    shm_test_configure(shm, after);
    cr_assert_eq(provider_of(shm, after, "a"), a,
                 "the slot moved under running workers");
    n = provider_of(shm, after, "n");
    cr_assert_neq(n, a);
    v = view_at(shm, a, t + 2);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 2);
    cr_assert_eq(v.cooling_until_ns, t + 1 + COOLDOWN_NS);
    cr_assert_eq(v.latency_ewma_us, 1234);
    cr_assert_str_eq(v.last_error, "down");
    cr_assert_eq(enter_at(shm, a, t + 2, &wait), TG_HEALTH_COOLING);
    v = view_at(shm, n, t + 2);
    cr_assert_eq(v.state, TG_HEALTH_CLOSED);
    cr_assert_eq(v.consecutive_fails, 0);
    cr_assert_eq(v.latency_ewma_us, 0);
    cr_assert_eq(v.last_error_ns, 0);
    cr_assert_eq(enter_at(shm, n, t + 2, &wait), TG_HEALTH_PASS);

    shm_test_configure(shm, before); /* and back: still the same slot */
    cr_assert_eq(provider_of(shm, before, "a"), a);
    cr_assert_eq(view_at(shm, a, t + 2).state, TG_HEALTH_OPEN);
    shm_test_close_segment(shm);
}

Test(health, restart_keeps_the_breaker_but_clears_the_probe_lease)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *cfg = load_providers(TWO_PROVIDERS);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_provider *a = provider_of(shm, cfg, "a");
    int64_t t = tg_shm_now_ns(), u = t + 1 + COOLDOWN_NS, wait;
    struct tg_shm_health_view v;

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t, 4321);
    trip(shm, a, &policy, t + 1);
    cr_assert_eq(enter_at(shm, a, u, NULL), TG_HEALTH_PROBE);
    cr_assert(view_at(shm, a, u).is_probing);
    shm_test_close_segment(shm);

    shm = shm_test_open_configured(cfg);
    a = provider_of(shm, cfg, "a");
    v = view_at(shm, a, t + 2);
    cr_assert_eq(v.state, TG_HEALTH_OPEN);
    cr_assert_eq(v.consecutive_fails, 2);
    cr_assert_eq(v.cooling_until_ns, u);
    cr_assert_eq(v.last_ok_ns, t);
    cr_assert_eq(v.latency_ewma_us, 4321);
    cr_assert_eq(v.last_error_ns, t + 1);
    cr_assert_eq(v.last_error_status, 503);
    cr_assert_str_eq(v.last_error, "down");
    cr_assert_eq(enter_at(shm, a, u - 1, &wait), TG_HEALTH_COOLING);
    cr_assert_eq(wait, 1);
    v = view_at(shm, a, u);
    cr_assert_eq(v.state, TG_HEALTH_HALF_OPEN);
    cr_assert_not(v.is_probing, "the probe of the last run is still out");
    cr_assert_eq(enter_at(shm, a, u, &wait), TG_HEALTH_PROBE);
    cr_assert_eq(enter_at(shm, a, u, &wait), TG_HEALTH_COOLING);
    shm_test_close_segment(shm);
}

Test(health, removed_provider_is_dropped_and_the_rest_keep_their_state)
{
    const struct tg_health_policy policy = {2, COOLDOWN_NS};
    struct tg_config *abc =
        load_providers("  a: {type: mock}\n  b: {type: mock}\n"
                       "  c: {type: mock}\n");
    struct tg_config *bc = load_providers("  b: {type: mock}\n"
                                          "  c: {type: mock}\n");
    struct tg_shm *shm = shm_test_open_configured(abc);
    int64_t t = tg_shm_now_ns();
    struct tg_shm_provider *a = provider_of(shm, abc, "a");
    struct tg_shm_provider *b = provider_of(shm, abc, "b");
    struct tg_shm_provider *c = provider_of(shm, abc, "c");
    struct tg_shm_health_view v;
    int pass;

    cr_assert_eq(enter_at(shm, a, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, a, &policy, 0, t, 111);
    cr_assert_eq(enter_at(shm, b, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, b, &policy, 0, t, 222);
    cr_assert_eq(enter_at(shm, b, t + 1, NULL), TG_HEALTH_PASS);
    report_failed(shm, b, &policy, 0, t + 1, 501, "b is failing");
    cr_assert_eq(enter_at(shm, c, t, NULL), TG_HEALTH_PASS);
    report_ok(shm, c, &policy, 0, t, 333);
    trip(shm, c, &policy, t + 2);
    shm_test_close_segment(shm);

    for (pass = 0; pass < 2; pass++) {
        struct tg_config *cfg = pass == 0 ? bc : abc;

        shm = shm_test_open_configured(cfg);
        b = provider_of(shm, cfg, "b");
        c = provider_of(shm, cfg, "c");
        v = view_at(shm, b, t + 3);
        cr_assert_eq(v.state, TG_HEALTH_CLOSED, "pass %d: b", pass);
        cr_assert_eq(v.consecutive_fails, 1, "pass %d: b", pass);
        cr_assert_eq(v.latency_ewma_us, 222, "pass %d: b", pass);
        cr_assert_eq(v.last_error_status, 501, "pass %d: b", pass);
        cr_assert_str_eq(v.last_error, "b is failing", "pass %d: b", pass);
        v = view_at(shm, c, t + 3);
        cr_assert_eq(v.state, TG_HEALTH_OPEN, "pass %d: c", pass);
        cr_assert_eq(v.consecutive_fails, 2, "pass %d: c", pass);
        cr_assert_eq(v.cooling_until_ns, t + 2 + COOLDOWN_NS, "pass %d: c",
                     pass);
        cr_assert_eq(v.latency_ewma_us, 333, "pass %d: c", pass);
        cr_assert_str_eq(v.last_error, "down", "pass %d: c", pass);
        cr_assert_eq(enter_at(shm, c, t + 3, NULL), TG_HEALTH_COOLING,
                     "pass %d: c", pass);
        cr_assert_eq(enter_at(shm, b, t + 3, NULL), TG_HEALTH_PASS,
                     "pass %d: b", pass);
        report_abandoned(shm, b, &policy, 0, t + 3);
        if (pass == 1) {
            /* a was dropped at the restart without it: it comes back new. */
            v = view_at(shm, provider_of(shm, cfg, "a"), t + 3);
            cr_assert_eq(v.state, TG_HEALTH_CLOSED);
            cr_assert_eq(v.latency_ewma_us, 0, "a's old state came back");
            cr_assert_eq(v.last_ok_ns, 0);
        }
        shm_test_close_segment(shm);
    }
}
