/*
 * jobs.c - the job table: create, read, add a call, close.
 *
 * Who may write a job slot: the process holding the lock of the team that
 * owns the job, or, while the slot is free, the one holding the table
 * lock; taking a free slot for a team, or freeing a closed job's slot,
 * holds both. Each write fills the slot's inactive copy and then advances
 * `version` with one release store, so a process killed mid-write leaves
 * the previous state. Readers take no lock: they copy the current state
 * and retry if `version` moved meanwhile.
 *
 * Closing a job as completed changes two places, the team's credits and
 * the job, and must happen exactly once even if the process dies between
 * them. So the team's state records what the job's slot must become
 * (`closing`), in the same commit that debits the credit; the job is
 * written after. Every later operation on that team's jobs, which all hold
 * the team's lock, first finishes a closing left half done: if the job
 * still has the version it had before, it writes it. A credit is therefore
 * debited once and the job closed once, wherever a process stops.
 *
 * Lock order: table, then team; a second team (the owner of a job being
 * evicted) only while holding the table lock, which makes it safe: nobody
 * else waits for a team while holding another.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "layout.h"
#include "tg_log.h"

static struct tg_shm_job *job_slot(struct tg_shm *shm, uint32_t i)
{
    return &shm_jobs(shm->header)->slots[i];
}

static uint32_t slot_of_id(const struct tg_job_id *id)
{
    return (uint32_t)id->bytes[0] << 8 | id->bytes[1];
}

/* A consistent copy of a slot's current state; returns its version. */
static uint32_t job_copy(const struct tg_shm_job *j, struct job_state *out)
{
    uint32_t before, after;

    do {
        before = atomic_load_explicit(&j->version, memory_order_acquire);
        memcpy(out, &j->state[before & 1], sizeof(*out));
        atomic_thread_fence(memory_order_acquire);
        after = atomic_load_explicit(&j->version, memory_order_relaxed);
    } while (before != after);
    return before;
}

/* Writes a slot: only with its lock held (see the top). */
static void job_write(struct tg_shm_job *j, const struct job_state *s)
{
    uint32_t v = atomic_load_explicit(&j->version, memory_order_relaxed);

    j->state[(v + 1) & 1] = *s;
    atomic_store_explicit(&j->version, v + 1, memory_order_release);
}

static bool is_open(uint32_t status)
{
    return status == TG_JOB_IN_PROGRESS;
}

/* The owner team's state, locked, with a half-done closing finished. */
static struct team_state *team_begin(struct tg_shm *shm, struct tg_shm_team *t)
{
    struct team_state *s = tg_shm_lock_begin(
        &t->lock, t->state, sizeof(t->state[0]), "state of team ", t->name);
    struct job_intent *c = &s->closing;
    struct tg_shm_job *j;
    struct job_state js;

    if (!c->is_valid)
        return s;
    j = job_slot(shm, c->slot);
    if (job_copy(j, &js) + 1 == c->version &&
        memcmp(&js.id, &c->id, sizeof(js.id)) == 0) {
        js.status = c->status;
        js.closed_ns = c->closed_ns;
        js.is_credit_applied = c->status == TG_JOB_COMPLETED;
        job_write(j, &js);
    }
    c->is_valid = 0;
    return s;
}

static void team_end(struct tg_shm_team *t)
{
    tg_shm_lock_commit(&t->lock);
}

static void view_of(const struct job_state *s, struct tg_shm_job_view *out)
{
    memset(out, 0, sizeof(*out));
    out->id = s->id;
    snprintf(out->team_name, sizeof(out->team_name), "%s", s->team);
    snprintf(out->job_type, sizeof(out->job_type), "%s", s->job_type);
    out->status = s->status;
    out->created_ns = s->created_ns;
    out->completed_ns = s->closed_ns;
    out->calls = s->calls;
    out->failed_calls = s->failed_calls;
    out->prompt_tokens = s->prompt_tokens;
    out->completion_tokens = s->completion_tokens;
    out->cost_nano_usd = s->cost_nano_usd;
    out->latency_ms_sum = s->latency_ms_sum;
    out->is_credit_applied = s->is_credit_applied != 0;
}

/* Finds team t's job `id`: its slot and a copy of its state. */
static enum tg_job_result find(struct tg_shm *shm, struct tg_shm_team *t,
                               const struct tg_job_id *id,
                               struct tg_shm_job **slot, struct job_state *js)
{
    uint32_t i = slot_of_id(id);

    if (i >= TG_SHM_JOB_SLOTS)
        return TG_JOB_NOT_FOUND;
    *slot = job_slot(shm, i);
    job_copy(*slot, js);
    if (js->status == TG_JOB_FREE || memcmp(&js->id, id, sizeof(*id)) != 0)
        return TG_JOB_NOT_FOUND;
    return strcmp(js->team, t->name) == 0 ? TG_JOB_OK : TG_JOB_WRONG_TEAM;
}

enum tg_job_result tg_shm_job_read(struct tg_shm *shm, struct tg_shm_team *t,
                                   const struct tg_job_id *id,
                                   struct tg_shm_job_view *out)
{
    struct tg_shm_job *slot;
    struct job_state js;
    enum tg_job_result rc;

    team_begin(shm, t);
    rc = find(shm, t, id, &slot, &js);
    team_end(t);
    if (rc == TG_JOB_OK)
        view_of(&js, out);
    return rc;
}

enum tg_job_result tg_shm_job_check(struct tg_shm *shm, struct tg_shm_team *t,
                                    const struct tg_job_id *id)
{
    struct tg_shm_job_view v;
    enum tg_job_result rc = tg_shm_job_read(shm, t, id, &v);

    return rc == TG_JOB_OK && !is_open(v.status) ? TG_JOB_CLOSED : rc;
}

enum tg_job_result tg_shm_job_add_call(struct tg_shm *shm,
                                       struct tg_shm_team *t,
                                       const struct tg_job_id *id,
                                       const struct tg_job_call *call)
{
    struct tg_shm_job *slot;
    struct job_state js;
    enum tg_job_result rc;

    team_begin(shm, t);
    rc = find(shm, t, id, &slot, &js);
    if (rc == TG_JOB_OK) {
        js.calls++;
        js.failed_calls += !call->is_ok;
        js.prompt_tokens += call->prompt_tokens;
        js.completion_tokens += call->completion_tokens;
        js.cost_nano_usd += call->cost_nano_usd;
        js.latency_ms_sum += call->latency_ms;
        job_write(slot, &js);
    }
    team_end(t);
    return rc;
}

enum tg_job_result tg_shm_job_close(struct tg_shm *shm, struct tg_shm_team *t,
                                    const struct tg_job_id *id,
                                    enum tg_job_status status, int64_t now_ns,
                                    struct tg_shm_job_view *out)
{
    struct team_state *s = team_begin(shm, t);
    struct tg_shm_job *slot;
    struct job_state js;
    enum tg_job_result rc = find(shm, t, id, &slot, &js);
    int64_t credits;

    if (rc == TG_JOB_OK && !is_open(js.status))
        rc = TG_JOB_CLOSED;
    if (rc != TG_JOB_OK) {
        team_end(t);
        return rc;
    }
    if (status == TG_JOB_COMPLETED)
        s->credits_micro -= TG_SHM_MICRO_CREDITS;
    s->closing = (struct job_intent){
        .id = *id,
        .slot = slot_of_id(id),
        .version = atomic_load(&slot->version) + 1,
        .status = status,
        .is_valid = 1,
        .closed_ns = now_ns,
    };
    tg_shm_lock_publish(&t->lock);
    /* Read before unlocking: once unlocked, another process may reuse
     * this copy of the team's state. */
    out->credits_after_micro = s->credits_micro;
    js.status = status;
    js.closed_ns = now_ns;
    js.is_credit_applied = status == TG_JOB_COMPLETED;
    job_write(slot, &js);
    tg_shm_lock_release(&t->lock);
    credits = out->credits_after_micro;
    view_of(&js, out);
    out->credits_after_micro = credits;
    return TG_JOB_OK;
}

int64_t tg_shm_jobs_open(struct tg_shm *shm, const struct tg_shm_team *t)
{
    struct job_state js;
    int64_t n = 0;
    uint32_t i;

    for (i = 0; i < TG_SHM_JOB_SLOTS; i++) {
        job_copy(job_slot(shm, i), &js);
        n += is_open(js.status) && strcmp(js.team, t->name) == 0;
    }
    return n;
}

/* ---- creating: a slot, an id ----------------------------------------- */

static struct tg_shm_team *team_named(struct tg_shm *shm, const char *name)
{
    const struct shm_geometry *g =
        &shm->header->geometry[atomic_load(&shm->header->geometry_index) & 1];
    struct tg_shm_team *teams = shm_slots(shm->header);
    uint64_t i;

    for (i = 0; i < g->n_teams; i++)
        if (strcmp(teams[i].name, name) == 0)
            return &teams[i];
    return NULL;
}

/* A free slot, or the closed job closed longest ago; -1 when every slot
 * holds an open job. */
static int64_t pick_slot(struct tg_shm *shm)
{
    int64_t best = -1, best_ns = INT64_MAX;
    struct job_state js;
    uint32_t i;

    for (i = 0; i < TG_SHM_JOB_SLOTS; i++) {
        job_copy(job_slot(shm, i), &js);
        if (js.status == TG_JOB_FREE)
            return i;
        if (!is_open(js.status) && (best < 0 || js.closed_ns < best_ns)) {
            best = i;
            best_ns = js.closed_ns;
        }
    }
    return best;
}

/* Frees slot i, which holds a closed job of another team than `held`
 * (whose lock the caller has). */
static void evict(struct tg_shm *shm, uint32_t i, struct tg_shm_team *held)
{
    struct tg_shm_job *slot = job_slot(shm, i);
    struct tg_shm_team *owner;
    struct job_state js, free_state = {0};

    job_copy(slot, &js);
    owner = team_named(shm, js.team);
    if (owner == NULL || owner == held) {
        job_write(slot, &free_state);
        return;
    }
    team_begin(shm, owner);
    job_write(slot, &free_state);
    team_end(owner);
}

void tg_job_id_random(struct tg_job_id *id)
{
    uint64_t fallback[2];

    if (getrandom(id->bytes, sizeof(id->bytes), 0) != sizeof(id->bytes)) {
        fallback[0] = (uint64_t)tg_shm_now_ns();
        fallback[1] = (uint64_t)clock() ^ (uint64_t)(uintptr_t)id;
        memcpy(id->bytes, fallback, sizeof(id->bytes));
    }
    id->bytes[6] = (unsigned char)((id->bytes[6] & 0x0f) | 0x40);
    id->bytes[8] = (unsigned char)((id->bytes[8] & 0x3f) | 0x80);
}

/* A job's id: random, but carrying its slot in its first 16 bits. */
static void new_id(uint32_t slot, struct tg_job_id *id)
{
    tg_job_id_random(id);
    id->bytes[0] = (unsigned char)(slot >> 8);
    id->bytes[1] = (unsigned char)slot;
}

static enum tg_job_result create_locked(struct tg_shm *shm,
                                        struct tg_shm_team *t,
                                        const char *job_type, int64_t now_ns,
                                        struct tg_shm_job_view *out)
{
    struct team_state *s = team_begin(shm, t);
    struct job_state js = {.status = TG_JOB_IN_PROGRESS, .created_ns = now_ns};
    int64_t i;

    if (s->credits_micro < TG_SHM_MICRO_CREDITS) {
        team_end(t);
        return TG_JOB_NO_CREDITS;
    }
    i = pick_slot(shm);
    if (i < 0) {
        team_end(t);
        return TG_JOB_TABLE_FULL;
    }
    evict(shm, (uint32_t)i, t);
    new_id((uint32_t)i, &js.id);
    snprintf(js.team, sizeof(js.team), "%s", t->name);
    snprintf(js.job_type, sizeof(js.job_type), "%s", job_type);
    job_write(job_slot(shm, (uint32_t)i), &js);
    team_end(t);
    view_of(&js, out);
    return TG_JOB_OK;
}

enum tg_job_result tg_shm_job_create(struct tg_shm *shm, struct tg_shm_team *t,
                                     const char *job_type, int64_t now_ns,
                                     struct tg_shm_job_view *out)
{
    pthread_mutex_t *table = &shm_jobs(shm->header)->lock;
    enum tg_job_result rc;

    tg_shm_mutex_lock(table, "the job table", "");
    rc = create_locked(shm, t, job_type, now_ns, out);
    pthread_mutex_unlock(table);
    return rc;
}

/* At a full start nothing else maps the file: a new lock, and the slots
 * of jobs whose team the config no longer has (nobody could reach them)
 * freed. */
int tg_shm_jobs_reset(struct shm_header *h, const struct tg_config *cfg)
{
    struct shm_jobs *jobs = shm_jobs(h);
    struct job_state js, free_state = {0};
    size_t dropped = 0;
    uint32_t i;

    for (i = 0; i < TG_SHM_JOB_SLOTS; i++) {
        job_copy(&jobs->slots[i], &js);
        if (js.status != TG_JOB_FREE &&
            tg_cfg_find_team(cfg, js.team) == NULL) {
            job_write(&jobs->slots[i], &free_state);
            dropped++;
        }
    }
    if (dropped > 0)
        tg_log_info("state file: dropping %zu jobs of teams no longer "
                    "configured",
                    dropped);
    return tg_shm_mutex_init(&jobs->lock);
}

/* ---- ids as text ------------------------------------------------------ */

void tg_job_id_format(const struct tg_job_id *id, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = 0;

    for (i = 0; i < sizeof(id->bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[id->bytes[i] >> 4];
        out[n++] = hex[id->bytes[i] & 15];
    }
    out[n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool tg_job_id_parse(const char *s, size_t len, struct tg_job_id *id)
{
    size_t i, n = 0;
    int hi, lo;

    if (len != TG_SHM_JOB_ID_LEN)
        return false;
    for (i = 0; i < sizeof(id->bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (s[n++] != '-')
                return false;
        }
        hi = hex_value(s[n++]);
        lo = hex_value(s[n++]);
        if (hi < 0 || lo < 0)
            return false;
        id->bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}
