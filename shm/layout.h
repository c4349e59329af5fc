/*
 * layout.h - the bytes of the state file; private to shm/.
 *
 *   [header][team slot 0][team slot 1]...[team slot capacity-1]
 *
 * Every piece of state that changes is kept twice with an index saying
 * which copy is current. A change writes the other copy in full, then flips
 * the index with one aligned 32-bit store: a process killed anywhere before
 * the flip leaves the old state, anywhere after it the new one, and never a
 * mix. The header's geometry (how many slots exist and are used) follows the
 * same rule, so even the master dying while it grows the file leaves a file
 * that opens.
 *
 * Changing any struct here changes TG_SHM_LAYOUT_VERSION.
 */
#ifndef TG_SHM_LAYOUT_H
#define TG_SHM_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tg_bucket.h"
#include "tg_shm.h"

#define TG_SHM_MAGIC          "TGSTATE"
#define TG_SHM_LAYOUT_VERSION 1u
#define TG_SHM_MIN_CAPACITY   64u
#define TG_SHM_NAME_MAX       71 /* team names are at most 64 bytes */

struct shm_geometry {
    uint64_t capacity;   /* team slots the file holds */
    uint64_t n_teams;    /* slots in use: [0, n_teams) */
    uint64_t file_size;  /* header + capacity slots */
    uint64_t growing_to; /* non-zero while the file is being enlarged */
    uint64_t checksum;   /* FNV-1a of the four fields above */
};

struct shm_header {
    char magic[8]; /* "TGSTATE\0" */
    uint32_t version;
    uint32_t header_size;
    uint32_t team_size;
    uint32_t reserved;
    _Atomic uint32_t geometry_index;
    uint32_t reserved2;
    struct shm_geometry geometry[2];
} __attribute__((aligned(64))); /* slots after it are 64-byte aligned */

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
    int64_t budget_nano_usd; /* < 0: no budget */
};

struct tg_shm_team {
    char name[TG_SHM_NAME_MAX + 1];
    pthread_mutex_t lock; /* robust, process-shared */
    _Atomic uint32_t state_index;
    uint32_t reserved;
    struct team_state state[2];
} __attribute__((aligned(64)));

struct tg_shm {
    int fd;
    struct shm_header *header;
    size_t mapped_size;
    struct tg_shm_team **slot_of; /* per team of the configured config */
    size_t n_slot_of;
};

_Static_assert(sizeof(struct shm_header) % 64 == 0,
               "team slots must start on a cache line");
_Static_assert(sizeof(struct tg_shm_team) % 64 == 0,
               "team slots must stay on cache lines");

static inline struct tg_shm_team *shm_slots(struct shm_header *h)
{
    return (struct tg_shm_team *)((char *)h + sizeof(*h));
}

/* team.c: the locked, double-buffered update of one team. */
struct team_state *tg_shm_team_begin(struct tg_shm_team *t);
void tg_shm_team_commit(struct tg_shm_team *t);
int tg_shm_team_init_lock(struct tg_shm_team *t);
void tg_shm_team_set_limits(struct tg_shm_team *t,
                            const struct tg_team *cfg_team, bool is_new,
                            int64_t now_ns);

#endif
