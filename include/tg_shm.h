/*
 * tg_shm.h - the shared segment: per-team quotas, credits and spend, and
 * per-provider health, in a file mapped by the master and every worker.
 *
 * Only shm/ knows the layout. The master opens the segment (tg_shm_open),
 * applies the config to it at start and on every reload (tg_shm_configure),
 * and forks workers, which inherit the mapping. Everyone else works on a
 * team through the operations below, each atomic across processes and
 * correct if the calling process is killed at any instruction.
 *
 * Units: tokens and requests are whole numbers; credits are micro-credits
 * (1e-6) and money is nano-USD (1e-9), both int64.
 */
#ifndef TG_SHM_H
#define TG_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_config.h"

#define TG_SHM_NANO_USD      1000000000LL
#define TG_SHM_MICRO_CREDITS 1000000LL

#define TG_SHM_ERROR_MAX 183 /* a provider's last error, in bytes */

struct tg_shm;
struct tg_shm_team;
struct tg_shm_provider;

/*
 * Opens (creating it if absent) the state file cfg->state_file, checks it
 * is ours (magic, layout version, size), locks it against a second gateway,
 * and maps it. Returns NULL with a message in err when the file is refused
 * or cannot be used; nothing on disk is changed then.
 */
struct tg_shm *tg_shm_open(const struct tg_config *cfg, char *err,
                           size_t err_cap);

/*
 * Makes the segment match cfg: a slot for every team (new teams start full,
 * with their credit grant), new limits applied keeping what was used, and a
 * changed credit grant applied to the live balance as its difference. Called
 * by the master before forking workers for cfg. TG_ERROR (with err) when the
 * file cannot grow; the segment is then unchanged for existing teams.
 */
int tg_shm_configure(struct tg_shm *shm, const struct tg_config *cfg, char *err,
                     size_t err_cap);

/* Writes the segment to the state file (msync) and unmaps it. */
void tg_shm_close(struct tg_shm *shm);

/* The slot of cfg->teams[index] for the config last configured. */
struct tg_shm_team *tg_shm_team(const struct tg_shm *shm, size_t index);

enum tg_admit {
    TG_ADMIT_OK,
    TG_ADMIT_RPM,           /* no request left this minute */
    TG_ADMIT_TPM,           /* the reservation does not fit now */
    TG_ADMIT_TPM_TOO_LARGE, /* the reservation is larger than tpm */
    TG_ADMIT_BUDGET,        /* spend has reached max_budget_usd */
};

/* What the x-ratelimit-* headers and Retry-After report. */
struct tg_quota {
    int64_t rpm, rpm_remaining, rpm_reset_ms;
    int64_t tpm, tpm_remaining, tpm_reset_ms;
    int64_t retry_after_s; /* when refused: until the refused bucket has it */
    int64_t spend_nano_usd, budget_nano_usd; /* budget < 0: none */
};

/*
 * Admission: takes 1 request and reserves `tokens` tokens, both or neither.
 * Refused when either bucket lacks it or the budget is spent. Fills q.
 */
enum tg_admit tg_shm_take(struct tg_shm_team *t, int64_t tokens, int64_t now_ns,
                          struct tg_quota *q);

/*
 * Settlement: gives back `reserved - used` tokens (takes more when used is
 * larger) and adds cost to spend. A failed call settles with used = 0.
 */
void tg_shm_settle(struct tg_shm_team *t, int64_t reserved, int64_t used,
                   int64_t cost_nano_usd, int64_t now_ns);

/*
 * Debits `amount` micro-credits if the balance covers it. Returns true and
 * the balance after; false (nothing changed) and the balance otherwise.
 */
bool tg_shm_debit(struct tg_shm_team *t, int64_t amount, int64_t *balance);

/* Adds micro-credits (a top-up); returns the balance after. */
int64_t tg_shm_credit(struct tg_shm_team *t, int64_t amount);

/* A consistent snapshot of a team's state. */
struct tg_shm_team_view {
    int64_t rpm, tpm;
    int64_t rpm_level_micro, tpm_level_micro;
    int64_t credits_micro;
    int64_t grant_micro;
    int64_t spend_nano_usd;
    int64_t budget_nano_usd;
};

void tg_shm_read(struct tg_shm_team *t, int64_t now_ns,
                 struct tg_shm_team_view *out);

/*
 * Provider health: a circuit breaker per provider, shared by every worker
 * (PRODUCT.md section 5). After policy->allowed_fails failures in a row,
 * in any workers, the provider is open: nobody calls it for cooldown; then
 * it is half-open, and exactly one caller gets to probe it, holding a lease
 * that expires so that a prober killed mid-call does not keep it open
 * forever. The probe's outcome closes the breaker or opens it again.
 * Any success closes it.
 */
struct tg_health_policy {
    int allowed_fails;
    int64_t cooldown_ns;
};

/* The slot of cfg->providers[index] for the config last configured. */
struct tg_shm_provider *tg_shm_provider(const struct tg_shm *shm, size_t index);

enum tg_health_pass {
    TG_HEALTH_PASS,    /* call it */
    TG_HEALTH_PROBE,   /* call it: this call is the half-open probe */
    TG_HEALTH_COOLING, /* do not call it */
};

/*
 * Before calling a provider. PASS and PROBE count the call in flight and
 * oblige the caller to report it exactly once (tg_shm_health_report). A
 * probe's lease lasts probe_lease_ns. COOLING sets *wait_ns to how long
 * until a call may be let through.
 */
enum tg_health_pass tg_shm_health_enter(struct tg_shm *shm,
                                        struct tg_shm_provider *p,
                                        int64_t now_ns, int64_t probe_lease_ns,
                                        int64_t *wait_ns);

/* Whether tg_shm_health_enter would answer COOLING now; changes nothing. */
bool tg_shm_health_is_cooling(struct tg_shm_provider *p, int64_t now_ns,
                              int64_t *wait_ns);

enum tg_health_outcome {
    TG_HEALTH_OK,        /* the provider answered (even the caller's 4xx) */
    TG_HEALTH_FAILED,    /* connection, timeout, 429, 5xx, bad answer */
    TG_HEALTH_ABANDONED, /* stopped by us (client gone): says nothing */
};

struct tg_health_report {
    enum tg_health_outcome outcome;
    /* A call entered as PROBE: its lease's end (the enter's now_ns plus
     * probe_lease_ns), which tells this probe from a later one; 0 for any
     * other call. */
    int64_t probe_until_ns;
    int64_t now_ns;
    int64_t latency_us; /* OK: time to the first byte; < 0 when unknown */
    int status;         /* FAILED: the status it was answered with */
    const char *error;  /* FAILED: what went wrong */
};

void tg_shm_health_report(struct tg_shm *shm, struct tg_shm_provider *p,
                          const struct tg_health_policy *policy,
                          const struct tg_health_report *report);

enum tg_health_state {
    TG_HEALTH_CLOSED,    /* healthy, or failing fewer than allowed_fails */
    TG_HEALTH_OPEN,      /* cooling down */
    TG_HEALTH_HALF_OPEN, /* cooled down: the next call probes */
};

struct tg_shm_health_view {
    enum tg_health_state state;
    uint32_t consecutive_fails;
    int64_t cooling_until_ns; /* OPEN: until then */
    bool is_probing;          /* HALF_OPEN: a probe is out */
    bool has_latency;         /* latency_ewma_us has a sample */
    int64_t latency_ewma_us;
    int64_t last_ok_ns, last_error_ns; /* 0: never */
    int last_error_status;
    char last_error[TG_SHM_ERROR_MAX + 1];
    int64_t in_flight; /* calls running now, over all workers */
};

void tg_shm_health_read(const struct tg_shm *shm, struct tg_shm_provider *p,
                        int64_t now_ns, struct tg_shm_health_view *out);

/* Closes the breaker and forgets the failures (an operator's reset). */
void tg_shm_health_reset(struct tg_shm_provider *p);

/*
 * Worker slots, for in-flight counts that a killed worker cannot leave
 * behind. The master takes a slot before forking a worker (-1 when none is
 * free: that worker's calls are then not counted), the worker attaches to
 * it, and the master frees it once the worker is reaped.
 */
int tg_shm_worker_take(struct tg_shm *shm);
void tg_shm_worker_attach(struct tg_shm *shm, int slot);
void tg_shm_worker_free(struct tg_shm *shm, int slot);

/*
 * Jobs (seed 003): a bounded table of jobs in the segment, so that any
 * worker serves any job and jobs outlive reloads and restarts. A job
 * belongs to one team, counts the calls made in it, and once completed
 * costs its team one credit, exactly once (see shm/jobs.c for how that
 * holds when a process dies mid-way). When the table is full, creating a
 * job evicts the job closed (completed, failed or cancelled) longest ago.
 */
#define TG_SHM_JOB_SLOTS    4096
#define TG_SHM_JOB_TYPE_MAX 63
#define TG_SHM_JOB_ID_LEN   36 /* a UUID in text: 8-4-4-4-12 hex digits */

enum tg_job_status {
    TG_JOB_FREE, /* no job in the slot */
    TG_JOB_IN_PROGRESS,
    TG_JOB_COMPLETED,
    TG_JOB_FAILED,
    TG_JOB_CANCELLED,
};

enum tg_job_result {
    TG_JOB_OK,
    TG_JOB_NOT_FOUND,
    TG_JOB_WRONG_TEAM, /* it is another team's */
    TG_JOB_CLOSED,     /* completed, failed or cancelled already */
    TG_JOB_NO_CREDITS, /* create: the team has less than one credit */
    TG_JOB_TABLE_FULL, /* create: every slot holds a live job */
};

struct tg_job_id {
    unsigned char bytes[16];
};

struct tg_shm_job_view {
    struct tg_job_id id;
    char team_name[72];
    char job_type[TG_SHM_JOB_TYPE_MAX + 1];
    enum tg_job_status status;
    int64_t created_ns, completed_ns; /* completed_ns 0 while open */
    int64_t calls, failed_calls;
    int64_t prompt_tokens, completion_tokens;
    int64_t cost_nano_usd;
    int64_t latency_ms_sum; /* over all calls */
    bool is_credit_applied;
    int64_t credits_after_micro; /* complete: the team's balance after */
};

/* A call made in a job, to add to its totals. */
struct tg_job_call {
    bool is_ok;
    int64_t prompt_tokens, completion_tokens;
    int64_t cost_nano_usd;
    int64_t latency_ms;
};

/* A random (version 4) UUID. */
void tg_job_id_random(struct tg_job_id *id);

/* Writes the id as a UUID (TG_SHM_JOB_ID_LEN characters and a NUL). */
void tg_job_id_format(const struct tg_job_id *id, char *out);

/* Parses a UUID as tg_job_id_format writes it; false when it is not one. */
bool tg_job_id_parse(const char *s, size_t len, struct tg_job_id *id);

/* Creates a job of team t; fills out (with the new id) on TG_JOB_OK. */
enum tg_job_result tg_shm_job_create(struct tg_shm *shm, struct tg_shm_team *t,
                                     const char *job_type, int64_t now_ns,
                                     struct tg_shm_job_view *out);

/* A job as it is now; `t` must own it (TG_JOB_WRONG_TEAM otherwise). */
enum tg_job_result tg_shm_job_read(struct tg_shm *shm, struct tg_shm_team *t,
                                   const struct tg_job_id *id,
                                   struct tg_shm_job_view *out);

/* Whether team t may make a call in the job now (it exists, is t's, and
 * is still open). */
enum tg_job_result tg_shm_job_check(struct tg_shm *shm, struct tg_shm_team *t,
                                    const struct tg_job_id *id);

/* Adds a finished call to the job's totals (also after the job closed:
 * the call happened and cost what it cost). */
enum tg_job_result tg_shm_job_add_call(struct tg_shm *shm,
                                       struct tg_shm_team *t,
                                       const struct tg_job_id *id,
                                       const struct tg_job_call *call);

/* How many open jobs team t has (a scan of the table, for operators). */
int64_t tg_shm_jobs_open(struct tg_shm *shm, const struct tg_shm_team *t);

/* Closes an open job with status COMPLETED (debiting one credit from the
 * team), FAILED or CANCELLED (free) and no other; fills out with the final
 * totals and the team's balance after. */
enum tg_job_result tg_shm_job_close(struct tg_shm *shm, struct tg_shm_team *t,
                                    const struct tg_job_id *id,
                                    enum tg_job_status status, int64_t now_ns,
                                    struct tg_shm_job_view *out);

/* Wall-clock nanoseconds, the time base of every operation. */
int64_t tg_shm_now_ns(void);

#endif
