/*
 * layout.h - the bytes of the state file; private to shm/.
 *
 *   [header][worker slots][provider slots][jobs][metrics][team slot 0]...
 *
 * Worker, provider and job slots and the metrics are fixed in size, so team
 * slots, the only region that grows, come last. The metrics are counters
 * (tg_metrics.h), not state: they are zeroed at every start.
 *
 * Every piece of state that changes under a lock is kept twice with an index
 * saying which copy is current. A change writes the other copy in full, then
 * flips the index with one aligned 32-bit store: a process killed anywhere
 * before the flip leaves the old state, anywhere after it the new one, and
 * never a mix. The header's geometry (how many slots exist and are used)
 * follows the same rule, so even the master dying while it grows the file
 * leaves a file that opens.
 *
 * Changing any struct here changes TG_SHM_LAYOUT_VERSION.
 */
#ifndef TG_SHM_LAYOUT_H
#define TG_SHM_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_bucket.h"
#include "tg_metrics.h"
#include "tg_shm.h"

#define TG_SHM_MAGIC          "TGSTATE"
#define TG_SHM_LAYOUT_VERSION 4u
#define TG_SHM_MIN_CAPACITY   64u
#define TG_SHM_NAME_MAX       71  /* team names are at most 64 bytes */
#define TG_SHM_PROVIDER_NAME  135 /* provider names are at most 128 bytes */
/* Workers of the current generation plus those of older ones still
 * draining after reloads. */
#define TG_SHM_WORKER_SLOTS (2 * TG_CFG_MAX_WORKERS)

struct shm_geometry {
    uint64_t capacity;    /* team slots the file holds */
    uint64_t n_teams;     /* slots in use: [0, n_teams) */
    uint64_t file_size;   /* the fixed regions + capacity team slots */
    uint64_t growing_to;  /* non-zero while the file is being enlarged */
    uint64_t n_providers; /* provider slots in use: [0, n_providers) */
    uint64_t checksum;    /* FNV-1a of the fields above */
};

struct shm_header {
    char magic[8]; /* "TGSTATE\0" */
    uint32_t version;
    uint32_t header_size;
    uint32_t team_size;
    uint32_t provider_size;
    uint32_t worker_size;
    uint32_t job_size;
    _Atomic uint32_t geometry_index;
    uint32_t metrics_size;
    struct shm_geometry geometry[2];
} __attribute__((aligned(64))); /* slots after it are 64-byte aligned */

/* A lock over a double-buffered state (slot.c). */
struct shm_lock {
    pthread_mutex_t mutex; /* robust, process-shared */
    _Atomic uint32_t state_index;
    uint32_t reserved;
};

/* A job closed, as it must be written to the job's slot: kept in the
 * team's state, committed with the credit it cost (jobs.c). */
struct job_intent {
    struct tg_job_id id;
    uint32_t slot;
    uint32_t version; /* the job slot's version once written */
    uint32_t status;
    uint32_t is_valid;
    int64_t closed_ns;
};

/* Limits come from the config through tg_shm_configure, so every worker,
 * of any generation, applies the same ones. */
struct team_state {
    int64_t rpm;
    int64_t tpm;
    struct tg_bucket requests;
    struct tg_bucket tokens;
    int64_t credits_micro;
    int64_t grant_micro; /* the `credits` grant last applied */
    int64_t spend_nano_usd;
    int64_t budget_nano_usd;   /* < 0: no budget */
    struct job_intent closing; /* the last job this team closed */
};

struct tg_shm_team {
    char name[TG_SHM_NAME_MAX + 1];
    struct shm_lock lock;
    struct team_state state[2];
} __attribute__((aligned(64)));

/* A provider's circuit breaker (health.c). */
struct health_state {
    uint32_t consecutive_fails;
    uint32_t is_open;         /* tripped: cooling down, or half-open */
    int64_t cooling_until_ns; /* open and before this: no calls */
    int64_t probe_until_ns;   /* half-open: the probe's lease; 0 = none */
    int64_t latency_ewma_us;  /* time to the first byte */
    int64_t last_ok_ns;
    int64_t last_error_ns;
    int32_t last_error_status;
    uint32_t has_latency; /* latency_ewma_us holds a sample */
    char last_error[TG_SHM_ERROR_MAX + 1];
};

struct tg_shm_provider {
    char name[TG_SHM_PROVIDER_NAME + 1];
    struct shm_lock lock;
    struct health_state state[2];
} __attribute__((aligned(64)));

/*
 * What one worker process has in flight, per provider slot. Only that
 * worker writes its slot; the master zeroes it after reaping the worker,
 * so a worker killed mid-call leaves no phantom calls behind.
 */
struct shm_worker {
    _Atomic int32_t pid; /* 0: free */
    int32_t reserved;
    _Atomic int32_t in_flight[TG_CFG_MAX_PROVIDERS];
} __attribute__((aligned(64)));

/* One job (jobs.c). Writes are serialised by the lock of the team that
 * owns the job, or by the table lock while the slot is free; readers copy
 * the current state without a lock and retry if `version` moved. */
struct job_state {
    struct tg_job_id id;
    char team[TG_SHM_NAME_MAX + 1]; /* owner; "" when free */
    uint32_t status;                /* enum tg_job_status */
    uint32_t is_credit_applied;
    int64_t created_ns, closed_ns;
    int64_t calls, failed_calls;
    int64_t prompt_tokens, completion_tokens;
    int64_t cost_nano_usd, latency_ms_sum;
    char job_type[TG_SHM_JOB_TYPE_MAX + 1];
};

struct tg_shm_job {
    _Atomic uint32_t version; /* commits so far; state[version & 1] is it */
    uint32_t reserved;
    struct job_state state[2];
} __attribute__((aligned(64)));

/* The job table: a lock held to take a free slot or evict a closed job. */
struct shm_jobs {
    pthread_mutex_t lock; /* robust, process-shared */
    struct tg_shm_job slots[TG_SHM_JOB_SLOTS];
} __attribute__((aligned(64)));

/* The counters of GET /metrics (metrics.c). The first block is the
 * master's to write; names are registered by the master only, and
 * n_teams and n_models are stored after the entry they publish. */
struct metrics_histogram {
    _Atomic uint64_t buckets[TG_METRICS_N_BUCKETS + 1]; /* the last: +Inf */
    _Atomic uint64_t sum_us;
};

struct metrics_team {
    char name[TG_SHM_NAME_MAX + 1];
    _Atomic uint64_t refused[TG_N_LIMITS];
};

struct metrics_model {
    char name[136];
    char provider[TG_SHM_PROVIDER_NAME + 1];
    _Atomic uint64_t calls[TG_N_OUTCOMES];
    _Atomic uint64_t fallbacks;
};

struct metrics_pair {
    _Atomic uint64_t key; /* (team + 1) << 32 | (model + 1); 0: free */
    _Atomic uint64_t prompt_tokens, completion_tokens;
    _Atomic uint64_t cost_nano_usd;
};

struct shm_metrics {
    _Atomic int64_t started_ns;
    _Atomic uint64_t generation;
    _Atomic uint64_t reloads_ok, reloads_failed;
    _Atomic uint64_t is_last_reload_ok;
    _Atomic int64_t last_reload_ns;
    _Atomic uint64_t worker_restarts;
    _Atomic uint64_t workers;
    _Atomic uint64_t dropped;
    _Atomic uint64_t requests[TG_N_SURFACES][TG_N_STATUSES];
    struct metrics_histogram latency[TG_N_SURFACES];
    struct metrics_histogram ttft[TG_N_SURFACES];
    _Atomic uint64_t log_lost[TG_N_LOGS];
    _Atomic int64_t in_flight[TG_SHM_WORKER_SLOTS]; /* per worker slot */
    _Atomic uint32_t n_teams, n_models;
    struct metrics_team teams[TG_METRICS_TEAMS];
    struct metrics_model models[TG_METRICS_MODELS];
    struct metrics_pair pairs[TG_METRICS_PAIRS];
} __attribute__((aligned(64)));

struct tg_shm {
    int fd;
    struct shm_header *header;
    size_t mapped_size;
    struct tg_shm_team **slot_of; /* per team of the configured config */
    size_t n_slot_of;
    struct tg_shm_provider **provider_of; /* per provider of that config */
    size_t n_provider_of;
    int worker_slot; /* this process's worker slot; -1 in the master */
};

_Static_assert(sizeof(struct shm_header) % 64 == 0,
               "slots must start on a cache line");
_Static_assert(sizeof(struct tg_shm_team) % 64 == 0,
               "team slots must stay on cache lines");
_Static_assert(sizeof(struct tg_shm_provider) % 64 == 0,
               "provider slots must stay on cache lines");
_Static_assert(sizeof(struct shm_worker) % 64 == 0,
               "worker slots must stay on cache lines");
_Static_assert(sizeof(struct shm_jobs) % 64 == 0,
               "team slots after the jobs must start on a cache line");
_Static_assert(sizeof(struct shm_metrics) % 64 == 0,
               "team slots after the metrics must start on a cache line");
_Static_assert((TG_METRICS_PAIRS & (TG_METRICS_PAIRS - 1)) == 0,
               "the pair table is probed with a mask");
_Static_assert(TG_SHM_JOB_SLOTS <= 65536, "a job id holds its slot in 16 bits");

static inline struct shm_worker *shm_workers(struct shm_header *h)
{
    return (struct shm_worker *)((char *)h + sizeof(*h));
}

static inline struct tg_shm_provider *shm_providers(struct shm_header *h)
{
    return (struct tg_shm_provider *)(shm_workers(h) + TG_SHM_WORKER_SLOTS);
}

static inline struct shm_jobs *shm_jobs(struct shm_header *h)
{
    return (struct shm_jobs *)(shm_providers(h) + TG_CFG_MAX_PROVIDERS);
}

static inline struct shm_metrics *shm_metrics(struct shm_header *h)
{
    return (struct shm_metrics *)(shm_jobs(h) + 1);
}

static inline struct tg_shm_team *shm_slots(struct shm_header *h)
{
    return (struct tg_shm_team *)(shm_metrics(h) + 1);
}

/* Bytes before the first team slot. */
#define SHM_FIXED_SIZE                                       \
    (sizeof(struct shm_header) +                             \
     TG_SHM_WORKER_SLOTS * sizeof(struct shm_worker) +       \
     TG_CFG_MAX_PROVIDERS * sizeof(struct tg_shm_provider) + \
     sizeof(struct shm_jobs) + sizeof(struct shm_metrics))

/* slot.c: the locked, double-buffered update of one slot's state. */
int tg_shm_lock_init(struct shm_lock *l);
void *tg_shm_lock_begin(struct shm_lock *l, void *states, size_t size,
                        const char *what, const char *name);
void tg_shm_lock_commit(struct shm_lock *l);
/* tg_shm_lock_commit in two: publish the new copy, later unlock. */
void tg_shm_lock_publish(struct shm_lock *l);
void tg_shm_lock_release(struct shm_lock *l);
/* Locks a robust mutex guarding no state of its own. */
void tg_shm_mutex_lock(pthread_mutex_t *m, const char *what, const char *name);
int tg_shm_mutex_init(pthread_mutex_t *m);

/* team.c */
void tg_shm_team_set_limits(struct tg_shm_team *t,
                            const struct tg_team *cfg_team, bool is_new,
                            int64_t now_ns);

/* health.c: at a full start, no probe is out and no worker runs. */
void tg_shm_health_reset_leases(struct tg_shm_provider *p);
void tg_shm_workers_reset(struct shm_header *h);

/* jobs.c: at a full start, a new table lock, and the jobs of teams no
 * longer configured dropped. */
int tg_shm_jobs_reset(struct shm_header *h, const struct tg_config *cfg);

/* metrics.c: at a full start, every counter back to zero. */
void tg_shm_metrics_reset(struct shm_header *h);

#endif
