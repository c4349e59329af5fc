/*
 * segment.c - the state file: open, check, map, grow, configure, close.
 *
 * The master opens the file once at start. A file it did not write (wrong
 * magic), of another layout version, or whose size disagrees with its
 * header is refused with a message and left as it is. An flock keeps a
 * second gateway off a file in use. Since nothing else runs at that moment,
 * the master also drops the slots of teams the config no longer has and
 * re-initialises every lock (a lock word left by a machine that crashed
 * means nothing now).
 *
 * Growing on reload: team slots never move once workers run, because a
 * worker holds pointers into its own mapping. A reload that needs more
 * slots than the file has doubles the file: it records the size it is
 * growing to, enlarges the file, maps it again in the master only, then
 * records the new capacity. Workers of the old generation keep their old,
 * smaller mapping of the same file, which stays valid: the bytes they use
 * did not move. New workers are forked after, with the new mapping. If the
 * master dies halfway, tg_shm_open finishes or undoes the grow from the
 * recorded size. Slots of teams removed by a reload stay until the next
 * full start, so an old worker still draining can settle against them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "tg.h"
#include "tg_log.h"

#define fail(err, cap, ...) (snprintf((err), (cap), __VA_ARGS__), TG_ERROR)

static uint64_t geometry_checksum(const struct shm_geometry *g)
{
    const uint64_t fields[5] = {g->capacity, g->n_teams, g->file_size,
                                g->growing_to, g->n_providers};
    const unsigned char *p = (const unsigned char *)fields;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < sizeof(fields); i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t size_for(uint64_t capacity)
{
    return SHM_FIXED_SIZE + capacity * sizeof(struct tg_shm_team);
}

static const struct shm_geometry *geometry(const struct shm_header *h)
{
    return &h->geometry[atomic_load(&h->geometry_index) & 1];
}

/* Writes g into the inactive copy, then makes it current (see layout.h). */
static void commit_geometry(struct shm_header *h, struct shm_geometry g)
{
    uint32_t cur = atomic_load(&h->geometry_index) & 1;

    g.checksum = geometry_checksum(&g);
    h->geometry[cur ^ 1] = g;
    atomic_store_explicit(&h->geometry_index, cur ^ 1, memory_order_release);
}

static int map_file(struct tg_shm *shm, size_t size, char *err, size_t cap)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shm->fd, 0);

    if (p == MAP_FAILED)
        return fail(err, cap, "cannot map the state file: %s", strerror(errno));
    if (shm->header != NULL)
        munmap(shm->header, shm->mapped_size);
    shm->header = p;
    shm->mapped_size = size;
    return TG_OK;
}

static int create_file(struct tg_shm *shm, const struct tg_config *cfg,
                       char *err, size_t cap)
{
    uint64_t capacity = TG_SHM_MIN_CAPACITY;
    struct shm_header *h;

    while (capacity < 2 * cfg->n_teams)
        capacity *= 2;
    if (ftruncate(shm->fd, (off_t)size_for(capacity)) != 0)
        return fail(err, cap, "cannot size the state file: %s",
                    strerror(errno));
    if (map_file(shm, size_for(capacity), err, cap) != TG_OK)
        return TG_ERROR;
    h = shm->header;
    memcpy(h->magic, TG_SHM_MAGIC, sizeof(TG_SHM_MAGIC));
    h->version = TG_SHM_LAYOUT_VERSION;
    h->header_size = sizeof(*h);
    h->team_size = sizeof(struct tg_shm_team);
    h->provider_size = sizeof(struct tg_shm_provider);
    h->worker_size = sizeof(struct shm_worker);
    h->job_size = sizeof(struct tg_shm_job);
    h->metrics_size = sizeof(struct shm_metrics);
    commit_geometry(h, (struct shm_geometry){.capacity = capacity,
                                             .file_size = size_for(capacity)});
    return TG_OK;
}

/* Checks the fixed part of a header read from disk. */
static int check_header(const struct shm_header *h, char *err, size_t cap)
{
    if (memcmp(h->magic, TG_SHM_MAGIC, sizeof(TG_SHM_MAGIC)) != 0)
        return fail(err, cap, "it is not a tollgate state file (bad magic)");
    if (h->version != TG_SHM_LAYOUT_VERSION)
        return fail(err, cap,
                    "its layout version is %u; this tollgate "
                    "reads version %u",
                    h->version, TG_SHM_LAYOUT_VERSION);
    if (h->header_size != sizeof(*h) ||
        h->team_size != sizeof(struct tg_shm_team) ||
        h->provider_size != sizeof(struct tg_shm_provider) ||
        h->worker_size != sizeof(struct shm_worker) ||
        h->job_size != sizeof(struct tg_shm_job) ||
        h->metrics_size != sizeof(struct shm_metrics))
        return fail(err, cap,
                    "it was written by a build with another layout (header "
                    "%u, team %u, provider %u, worker %u, job %u, metrics %u "
                    "bytes; expected %zu, %zu, %zu, %zu, %zu, %zu)",
                    h->header_size, h->team_size, h->provider_size,
                    h->worker_size, h->job_size, h->metrics_size, sizeof(*h),
                    sizeof(struct tg_shm_team), sizeof(struct tg_shm_provider),
                    sizeof(struct shm_worker), sizeof(struct tg_shm_job),
                    sizeof(struct shm_metrics));
    return TG_OK;
}

static bool is_valid_geometry(const struct shm_geometry *g)
{
    return g->checksum == geometry_checksum(g) && g->n_teams <= g->capacity &&
           g->n_providers <= TG_CFG_MAX_PROVIDERS &&
           g->file_size == size_for(g->capacity);
}

/* Finishes or undoes a grow the master did not complete. */
static int recover_grow(struct shm_header *h, uint64_t file_size)
{
    struct shm_geometry g = *geometry(h);

    if (g.growing_to == 0)
        return TG_OK;
    if (file_size == g.growing_to) {
        g.capacity =
            (g.growing_to - SHM_FIXED_SIZE) / sizeof(struct tg_shm_team);
        g.file_size = g.growing_to;
    } else if (file_size != g.file_size) {
        return TG_ERROR;
    }
    g.growing_to = 0;
    commit_geometry(h, g);
    return TG_OK;
}

static bool is_valid_slot(const char *name, size_t cap,
                          const struct shm_lock *l)
{
    return memchr(name, '\0', cap) != NULL && name[0] != '\0' &&
           atomic_load(&l->state_index) <= 1;
}

static int check_slots(struct shm_header *h, char *err, size_t cap)
{
    const struct shm_geometry *g = geometry(h);
    struct tg_shm_team *teams = shm_slots(h);
    struct tg_shm_provider *providers = shm_providers(h);
    uint64_t i;

    for (i = 0; i < g->n_teams; i++)
        if (!is_valid_slot(teams[i].name, sizeof(teams[i].name),
                           &teams[i].lock))
            return fail(err, cap, "team slot %llu is corrupt",
                        (unsigned long long)i);
    for (i = 0; i < g->n_providers; i++)
        if (!is_valid_slot(providers[i].name, sizeof(providers[i].name),
                           &providers[i].lock))
            return fail(err, cap, "provider slot %llu is corrupt",
                        (unsigned long long)i);
    return TG_OK;
}

static int open_existing(struct tg_shm *shm, uint64_t file_size, char *err,
                         size_t cap)
{
    struct shm_header head;

    if (file_size < sizeof(head) ||
        pread(shm->fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head))
        return fail(err, cap, "it is too short to be a tollgate state file");
    if (check_header(&head, err, cap) != TG_OK)
        return TG_ERROR;
    if (map_file(shm, file_size, err, cap) != TG_OK)
        return TG_ERROR;
    if (!is_valid_geometry(geometry(shm->header)) ||
        recover_grow(shm->header, file_size) != TG_OK)
        return fail(err, cap, "its header is corrupt");
    if (geometry(shm->header)->file_size != file_size)
        return fail(err, cap,
                    "its size (%llu bytes) does not match its "
                    "header (%llu bytes)",
                    (unsigned long long)file_size,
                    (unsigned long long)geometry(shm->header)->file_size);
    return check_slots(shm->header, err, cap);
}

static bool config_has_team(const struct tg_config *cfg, const char *name)
{
    return tg_cfg_find_team(cfg, name) != NULL;
}

static bool config_has_provider(const struct tg_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_providers; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return true;
    return false;
}

/* Teams no longer configured are dropped: the last slot moves into the
 * hole (nothing else maps the file yet). */
static void compact_teams(struct shm_geometry *g, struct tg_shm_team *slots,
                          const struct tg_config *cfg)
{
    uint64_t i = 0;

    while (i < g->n_teams) {
        if (config_has_team(cfg, slots[i].name)) {
            i++;
            continue;
        }
        tg_log_info("state file: dropping team %s (no longer configured)",
                    slots[i].name);
        slots[i] = slots[--g->n_teams];
    }
}

static void compact_providers(struct shm_geometry *g,
                              struct tg_shm_provider *slots,
                              const struct tg_config *cfg)
{
    uint64_t i = 0;

    while (i < g->n_providers) {
        if (config_has_provider(cfg, slots[i].name))
            i++;
        else
            slots[i] = slots[--g->n_providers];
    }
}

/* At start only: slots the config no longer names are dropped, every lock
 * is made new (a lock word left by a machine that crashed means nothing
 * now), no probe is out and no worker runs. */
static int compact_and_reset(struct tg_shm *shm, const struct tg_config *cfg)
{
    struct shm_geometry g = *geometry(shm->header);
    struct tg_shm_team *teams = shm_slots(shm->header);
    struct tg_shm_provider *providers = shm_providers(shm->header);
    uint64_t i;

    compact_teams(&g, teams, cfg);
    compact_providers(&g, providers, cfg);
    commit_geometry(shm->header, g);
    for (i = 0; i < g.n_teams; i++)
        if (tg_shm_lock_init(&teams[i].lock) != 0)
            return TG_ERROR;
    for (i = 0; i < g.n_providers; i++) {
        if (tg_shm_lock_init(&providers[i].lock) != 0)
            return TG_ERROR;
        tg_shm_health_reset_leases(&providers[i]);
    }
    tg_shm_workers_reset(shm->header);
    tg_shm_metrics_reset(shm->header);
    return tg_shm_jobs_reset(shm->header, cfg) == 0 ? TG_OK : TG_ERROR;
}

struct tg_shm *tg_shm_open(const struct tg_config *cfg, char *err,
                           size_t err_cap)
{
    struct tg_shm *shm = calloc(1, sizeof(*shm));
    const char *path = cfg->state_file;
    char why[256] = "";
    struct stat st;
    int rc;

    if (shm == NULL)
        return snprintf(err, err_cap, "out of memory"), NULL;
    shm->worker_slot = -1;
    shm->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (shm->fd < 0 || fstat(shm->fd, &st) != 0) {
        snprintf(err, err_cap, "state_file %s: %s", path, strerror(errno));
        tg_shm_close(shm);
        return NULL;
    }
    if (flock(shm->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, err_cap,
                 "state_file %s is in use by another tollgate "
                 "(or cannot be locked: %s)",
                 path, strerror(errno));
        tg_shm_close(shm);
        return NULL;
    }
    rc = st.st_size == 0
             ? create_file(shm, cfg, why, sizeof(why))
             : open_existing(shm, (uint64_t)st.st_size, why, sizeof(why));
    if (rc == TG_OK)
        rc = compact_and_reset(shm, cfg);
    if (rc != TG_OK) {
        snprintf(err, err_cap, "state_file %s is refused: %s", path,
                 why[0] ? why : "cannot initialise its locks");
        tg_shm_close(shm);
        return NULL;
    }
    return shm;
}

/* Doubles the file until it has room for `need` slots (see the top). */
static int grow(struct tg_shm *shm, uint64_t need, char *err, size_t cap)
{
    struct shm_geometry g = *geometry(shm->header);
    uint64_t capacity = g.capacity;

    while (capacity < need)
        capacity *= 2;
    g.growing_to = size_for(capacity);
    commit_geometry(shm->header, g);
    if (ftruncate(shm->fd, (off_t)g.growing_to) != 0)
        return fail(err, cap, "cannot grow the state file: %s",
                    strerror(errno));
    if (map_file(shm, g.growing_to, err, cap) != TG_OK)
        return TG_ERROR;
    g.capacity = capacity;
    g.file_size = g.growing_to;
    g.growing_to = 0;
    commit_geometry(shm->header, g);
    return TG_OK;
}

static struct tg_shm_team *find_slot(struct tg_shm *shm, const char *name)
{
    const struct shm_geometry *g = geometry(shm->header);
    struct tg_shm_team *slots = shm_slots(shm->header);
    uint64_t i;

    for (i = 0; i < g->n_teams; i++)
        if (strcmp(slots[i].name, name) == 0)
            return &slots[i];
    return NULL;
}

/* Prepares slot n_teams for `name` and only then counts it in use, so a
 * crash in between leaves an unused slot. */
static struct tg_shm_team *add_slot(struct tg_shm *shm, const char *name)
{
    struct shm_geometry g = *geometry(shm->header);
    struct tg_shm_team *t = &shm_slots(shm->header)[g.n_teams];

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (tg_shm_lock_init(&t->lock) != 0)
        return NULL;
    g.n_teams++;
    commit_geometry(shm->header, g);
    return t;
}

static uint64_t count_new_teams(struct tg_shm *shm, const struct tg_config *cfg)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < cfg->n_teams; i++)
        if (find_slot(shm, cfg->teams[i].name) == NULL)
            n++;
    return n;
}

static struct tg_shm_provider *find_provider(struct tg_shm *shm,
                                             const char *name)
{
    const struct shm_geometry *g = geometry(shm->header);
    struct tg_shm_provider *slots = shm_providers(shm->header);
    uint64_t i;

    for (i = 0; i < g->n_providers; i++)
        if (strcmp(slots[i].name, name) == 0)
            return &slots[i];
    return NULL;
}

/* Like add_slot: a new provider starts closed, with no history. */
static struct tg_shm_provider *add_provider(struct tg_shm *shm,
                                            const char *name)
{
    struct shm_geometry g = *geometry(shm->header);
    struct tg_shm_provider *p = &shm_providers(shm->header)[g.n_providers];

    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    if (tg_shm_lock_init(&p->lock) != 0)
        return NULL;
    g.n_providers++;
    commit_geometry(shm->header, g);
    return p;
}

/* A slot per configured provider, into *of; the health of a provider the
 * previous config had too is kept. Checks for room before changing
 * anything. */
static int configure_providers(struct tg_shm *shm, const struct tg_config *cfg,
                               struct tg_shm_provider ***of, char *err,
                               size_t err_cap)
{
    uint64_t in_use = geometry(shm->header)->n_providers, need = in_use;
    struct tg_shm_provider **slots;
    size_t i;

    for (i = 0; i < cfg->n_providers; i++)
        need += find_provider(shm, cfg->providers[i].name) == NULL;
    if (need > TG_CFG_MAX_PROVIDERS)
        return fail(err, err_cap,
                    "the state file has room for %d providers and %llu are "
                    "in use (a removed provider keeps its slot until a full "
                    "restart)",
                    TG_CFG_MAX_PROVIDERS, (unsigned long long)in_use);
    slots = calloc(cfg->n_providers + 1, sizeof(*slots));
    if (slots == NULL)
        return fail(err, err_cap, "out of memory");
    for (i = 0; i < cfg->n_providers; i++) {
        slots[i] = find_provider(shm, cfg->providers[i].name);
        if (slots[i] == NULL &&
            (slots[i] = add_provider(shm, cfg->providers[i].name)) == NULL) {
            free(slots);
            return fail(err, err_cap, "cannot initialise a provider lock");
        }
    }
    *of = slots;
    return TG_OK;
}

static int configure_teams(struct tg_shm *shm, const struct tg_config *cfg,
                           char *err, size_t err_cap)
{
    uint64_t need = geometry(shm->header)->n_teams + count_new_teams(shm, cfg);
    struct tg_shm_team **slot_of = calloc(cfg->n_teams + 1, sizeof(*slot_of));
    int64_t now = tg_shm_now_ns();
    size_t i;

    if (slot_of == NULL)
        return fail(err, err_cap, "out of memory");
    if (need > geometry(shm->header)->capacity &&
        grow(shm, need, err, err_cap) != TG_OK) {
        free(slot_of);
        return TG_ERROR;
    }
    for (i = 0; i < cfg->n_teams; i++) {
        struct tg_shm_team *t = find_slot(shm, cfg->teams[i].name);
        bool is_new = t == NULL;

        if (is_new && (t = add_slot(shm, cfg->teams[i].name)) == NULL) {
            free(slot_of);
            return fail(err, err_cap, "cannot initialise a team lock");
        }
        tg_shm_team_set_limits(t, &cfg->teams[i], is_new, now);
        slot_of[i] = t;
    }
    free(shm->slot_of);
    shm->slot_of = slot_of;
    shm->n_slot_of = cfg->n_teams;
    return TG_OK;
}

int tg_shm_configure(struct tg_shm *shm, const struct tg_config *cfg, char *err,
                     size_t err_cap)
{
    struct tg_shm_provider **provider_of;

    if (configure_providers(shm, cfg, &provider_of, err, err_cap) != TG_OK)
        return TG_ERROR;
    if (configure_teams(shm, cfg, err, err_cap) != TG_OK) {
        free(provider_of);
        return TG_ERROR;
    }
    free(shm->provider_of);
    shm->provider_of = provider_of;
    shm->n_provider_of = cfg->n_providers;
    return TG_OK;
}

struct tg_shm_provider *tg_shm_provider(const struct tg_shm *shm, size_t index)
{
    return index < shm->n_provider_of ? shm->provider_of[index] : NULL;
}

struct tg_shm_team *tg_shm_team(const struct tg_shm *shm, size_t index)
{
    return index < shm->n_slot_of ? shm->slot_of[index] : NULL;
}

void tg_shm_close(struct tg_shm *shm)
{
    if (shm == NULL)
        return;
    if (shm->header != NULL) {
        msync(shm->header, shm->mapped_size, MS_SYNC);
        munmap(shm->header, shm->mapped_size);
    }
    if (shm->fd >= 0)
        close(shm->fd);
    free(shm->slot_of);
    free(shm->provider_of);
    free(shm);
}
