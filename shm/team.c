/*
 * team.c - the operations on one team's slot: take, settle, debit, credit,
 * read, and applying its configured limits.
 *
 * Why robust mutexes and not lock-free atomics: admission must take from two
 * buckets (requests and tokens) and check the budget as one decision, and a
 * refusal must leave both buckets untouched. A lock makes that one critical
 * section of plain arithmetic; lock-free code would need a 128-bit CAS over
 * a packed state and would still have to re-derive refill on every retry.
 * The lock is held for a few hundred nanoseconds, per team, so workers of
 * different teams never meet.
 *
 * Crash safety comes from the slot lock; see slot.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layout.h"

int64_t tg_shm_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * TG_NS_PER_S + ts.tv_nsec;
}

static struct team_state *begin(struct tg_shm_team *t)
{
    return tg_shm_lock_begin(&t->lock, t->state, sizeof(t->state[0]),
                             "state of team ", t->name);
}

static void commit(struct tg_shm_team *t)
{
    tg_shm_lock_commit(&t->lock);
}

static int64_t ns_to_ms_up(int64_t ns)
{
    return ns <= 0 ? 0 : (ns + 999999) / 1000000;
}

static int64_t ns_to_s_up(int64_t ns)
{
    return ns <= 0 ? 0 : (ns + TG_NS_PER_S - 1) / TG_NS_PER_S;
}

static void fill_quota(const struct team_state *s, struct tg_quota *q)
{
    q->rpm = s->rpm;
    q->rpm_remaining = tg_bucket_remaining(&s->requests);
    q->rpm_reset_ms = ns_to_ms_up(tg_bucket_reset_ns(&s->requests, s->rpm));
    q->tpm = s->tpm;
    q->tpm_remaining = tg_bucket_remaining(&s->tokens);
    q->tpm_reset_ms = ns_to_ms_up(tg_bucket_reset_ns(&s->tokens, s->tpm));
    q->spend_nano_usd = s->spend_nano_usd;
    q->budget_nano_usd = s->budget_nano_usd;
    q->retry_after_s = 0;
}

static enum tg_admit decide(struct team_state *s, int64_t tokens,
                            struct tg_quota *q)
{
    int64_t wait;

    if (s->budget_nano_usd >= 0 && s->spend_nano_usd >= s->budget_nano_usd)
        return TG_ADMIT_BUDGET;
    if (tokens > s->tpm)
        return TG_ADMIT_TPM_TOO_LARGE;
    if (!tg_bucket_has(&s->requests, 1)) {
        wait = tg_bucket_wait_ns(&s->requests, s->rpm, 1);
        q->retry_after_s = ns_to_s_up(wait);
        return TG_ADMIT_RPM;
    }
    if (!tg_bucket_has(&s->tokens, tokens)) {
        wait = tg_bucket_wait_ns(&s->tokens, s->tpm, tokens);
        q->retry_after_s = ns_to_s_up(wait);
        return TG_ADMIT_TPM;
    }
    tg_bucket_take(&s->requests, 1);
    tg_bucket_take(&s->tokens, tokens);
    return TG_ADMIT_OK;
}

enum tg_admit tg_shm_take(struct tg_shm_team *t, int64_t tokens, int64_t now_ns,
                          struct tg_quota *q)
{
    struct team_state *s = begin(t);
    enum tg_admit result;
    int64_t retry;

    tg_bucket_refill(&s->requests, s->rpm, now_ns);
    tg_bucket_refill(&s->tokens, s->tpm, now_ns);
    fill_quota(s, q);
    result = decide(s, tokens, q);
    retry = q->retry_after_s;
    fill_quota(s, q);
    q->retry_after_s = retry;
    commit(t);
    return result;
}

void tg_shm_settle(struct tg_shm_team *t, int64_t reserved, int64_t used,
                   int64_t cost_nano_usd, int64_t now_ns)
{
    struct team_state *s = begin(t);

    tg_bucket_refill(&s->tokens, s->tpm, now_ns);
    tg_bucket_put(&s->tokens, s->tpm, reserved - used);
    s->spend_nano_usd += cost_nano_usd;
    commit(t);
}

bool tg_shm_debit(struct tg_shm_team *t, int64_t amount, int64_t *balance)
{
    struct team_state *s = begin(t);
    bool is_covered = amount >= 0 && s->credits_micro >= amount;

    if (is_covered)
        s->credits_micro -= amount;
    *balance = s->credits_micro;
    commit(t);
    return is_covered;
}

int64_t tg_shm_credit(struct tg_shm_team *t, int64_t amount)
{
    struct team_state *s = begin(t);
    int64_t balance;

    s->credits_micro += amount;
    balance = s->credits_micro;
    commit(t);
    return balance;
}

void tg_shm_read(struct tg_shm_team *t, int64_t now_ns,
                 struct tg_shm_team_view *out)
{
    struct team_state *s = begin(t);

    tg_bucket_refill(&s->requests, s->rpm, now_ns);
    tg_bucket_refill(&s->tokens, s->tpm, now_ns);
    out->rpm = s->rpm;
    out->tpm = s->tpm;
    out->rpm_level_micro = s->requests.level;
    out->tpm_level_micro = s->tokens.level;
    out->credits_micro = s->credits_micro;
    out->grant_micro = s->grant_micro;
    out->spend_nano_usd = s->spend_nano_usd;
    out->budget_nano_usd = s->budget_nano_usd;
    commit(t);
}

static int64_t to_micro_credits(double credits)
{
    return (int64_t)(credits * (double)TG_SHM_MICRO_CREDITS + 0.5);
}

/*
 * Applies a team's configured limits. A new team starts with full buckets
 * and its grant. An existing one keeps what it used: buckets are resized by
 * the change in capacity, and the balance moves by the change in grant
 * (PRODUCT.md section 5), so the same config applied twice changes nothing.
 */
void tg_shm_team_set_limits(struct tg_shm_team *t,
                            const struct tg_team *cfg_team, bool is_new,
                            int64_t now_ns)
{
    struct team_state *s = begin(t);
    int64_t grant = to_micro_credits(cfg_team->credits);

    if (is_new) {
        memset(s, 0, sizeof(*s));
        s->rpm = cfg_team->rpm;
        s->tpm = cfg_team->tpm;
        tg_bucket_fill(&s->requests, s->rpm, now_ns);
        tg_bucket_fill(&s->tokens, s->tpm, now_ns);
        s->credits_micro = grant;
    } else {
        tg_bucket_refill(&s->requests, s->rpm, now_ns);
        tg_bucket_refill(&s->tokens, s->tpm, now_ns);
        tg_bucket_resize(&s->requests, s->rpm, cfg_team->rpm);
        tg_bucket_resize(&s->tokens, s->tpm, cfg_team->tpm);
        s->rpm = cfg_team->rpm;
        s->tpm = cfg_team->tpm;
        s->credits_micro += grant - s->grant_micro;
    }
    s->grant_micro = grant;
    s->budget_nano_usd =
        cfg_team->max_budget_usd < 0
            ? -1
            : (int64_t)(cfg_team->max_budget_usd * (double)TG_SHM_NANO_USD +
                        0.5);
    commit(t);
}
