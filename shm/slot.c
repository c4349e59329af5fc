/*
 * slot.c - the lock every team and provider slot uses: a robust,
 * process-shared mutex over a state kept twice (see layout.h).
 *
 * Why it survives SIGKILL at any instruction: the mutex is robust, so the
 * next process to lock it after its owner died gets EOWNERDEAD instead of
 * waiting forever; and the owner only ever wrote the inactive copy of the
 * state before its single-store commit, so the current copy is exactly what
 * the last completed operation left. Recovery is therefore just
 * pthread_mutex_consistent: there is nothing to repair.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "tg_log.h"

int tg_shm_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    if (pthread_mutexattr_init(&attr) != 0)
        return -1;
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) ||
         pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) ||
         pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc ? -1 : 0;
}

int tg_shm_lock_init(struct shm_lock *l)
{
    return tg_shm_mutex_init(&l->mutex);
}

void tg_shm_mutex_lock(pthread_mutex_t *m, const char *what, const char *name)
{
    int rc = pthread_mutex_lock(m);

    if (rc == EOWNERDEAD) {
        /* The owner died; what the lock guards is consistent (see above
         * and, for the job table, jobs.c). */
        pthread_mutex_consistent(m);
        tg_log_warn("%s%s: recovered the lock of a process that died "
                    "holding it",
                    what, name);
    } else if (rc != 0) {
        tg_log_error("%s%s: lock failed: %s", what, name, strerror(rc));
        abort();
    }
}

/*
 * Locks l and returns the copy to write: the inactive one of states[2]
 * (each `size` bytes), filled with the current state. The caller changes it
 * and calls tg_shm_lock_commit. `what` and `name` say whose state it is.
 */
void *tg_shm_lock_begin(struct shm_lock *l, void *states, size_t size,
                        const char *what, const char *name)
{
    char *copy = states;
    uint32_t cur;

    tg_shm_mutex_lock(&l->mutex, what, name);
    cur = atomic_load_explicit(&l->state_index, memory_order_relaxed) & 1;
    memcpy(copy + (cur ^ 1) * size, copy + cur * size, size);
    return copy + (cur ^ 1) * size;
}

/* Makes the copy tg_shm_lock_begin returned the current one. The release
 * store orders every write to that copy before the flip. */
void tg_shm_lock_publish(struct shm_lock *l)
{
    uint32_t cur =
        atomic_load_explicit(&l->state_index, memory_order_relaxed) & 1;

    atomic_store_explicit(&l->state_index, cur ^ 1, memory_order_release);
}

void tg_shm_lock_release(struct shm_lock *l)
{
    pthread_mutex_unlock(&l->mutex);
}

void tg_shm_lock_commit(struct shm_lock *l)
{
    tg_shm_lock_publish(l);
    tg_shm_lock_release(l);
}
