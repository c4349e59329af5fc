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
    const uint64_t fields[4] = {g->capacity, g->n_teams, g->file_size,
                                g->growing_to};
    const unsigned char *p = (const unsigned char *)fields;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < sizeof(fields); i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t size_for(uint64_t capacity)
{
    return sizeof(struct shm_header) + capacity * sizeof(struct tg_shm_team);
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
        h->team_size != sizeof(struct tg_shm_team))
        return fail(err, cap,
                    "it was written by a build with another "
                    "layout (header %u, slot %u bytes; expected %zu, %zu)",
                    h->header_size, h->team_size, sizeof(*h),
                    sizeof(struct tg_shm_team));
    return TG_OK;
}

static bool is_valid_geometry(const struct shm_geometry *g)
{
    return g->checksum == geometry_checksum(g) && g->n_teams <= g->capacity &&
           g->file_size == size_for(g->capacity);
}

/* Finishes or undoes a grow the master did not complete. */
static int recover_grow(struct shm_header *h, uint64_t file_size)
{
    struct shm_geometry g = *geometry(h);

    if (g.growing_to == 0)
        return TG_OK;
    if (file_size == g.growing_to) {
        g.capacity = (g.growing_to - sizeof(*h)) / sizeof(struct tg_shm_team);
        g.file_size = g.growing_to;
    } else if (file_size != g.file_size) {
        return TG_ERROR;
    }
    g.growing_to = 0;
    commit_geometry(h, g);
    return TG_OK;
}

static int check_slots(struct shm_header *h, char *err, size_t cap)
{
    const struct shm_geometry *g = geometry(h);
    struct tg_shm_team *slots = shm_slots(h);
    uint64_t i;

    for (i = 0; i < g->n_teams; i++)
        if (memchr(slots[i].name, '\0', sizeof(slots[i].name)) == NULL ||
            slots[i].name[0] == '\0' || atomic_load(&slots[i].state_index) > 1)
            return fail(err, cap, "team slot %llu is corrupt",
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

/* At start only: slots of teams no longer configured are dropped (the last
 * slot moves into the hole; nothing else maps the file yet), and every lock
 * is made new. */
static int compact_and_reset(struct tg_shm *shm, const struct tg_config *cfg)
{
    struct shm_geometry g = *geometry(shm->header);
    struct tg_shm_team *slots = shm_slots(shm->header);
    uint64_t i = 0;

    while (i < g.n_teams) {
        if (config_has_team(cfg, slots[i].name)) {
            i++;
            continue;
        }
        tg_log_info("state file: dropping team %s (no longer configured)",
                    slots[i].name);
        slots[i] = slots[--g.n_teams];
    }
    commit_geometry(shm->header, g);
    for (i = 0; i < g.n_teams; i++)
        if (tg_shm_team_init_lock(&slots[i]) != 0)
            return TG_ERROR;
    return TG_OK;
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
    if (tg_shm_team_init_lock(t) != 0)
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

int tg_shm_configure(struct tg_shm *shm, const struct tg_config *cfg, char *err,
                     size_t err_cap)
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
    free(shm);
}
