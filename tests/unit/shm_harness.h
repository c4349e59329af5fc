/*
 * shm_harness.h - what the tests of the shared segment (test_shm.c,
 * test_health.c) share: a per-test fixture and helpers that fork workers.
 *
 * Each test gets a fresh directory with a state file path in it. The configs
 * it loads, the one segment it has open and the children it forked are
 * released by the teardown, so a test that an assertion ends early leaks
 * neither files nor processes. Workers are fork()ed children sharing the
 * mapping as real workers do; they report through shared anonymous memory
 * and their exit status, never through Criterion.
 */
#ifndef SHM_HARNESS_H
#define SHM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tg_config.h"
#include "tg_shm.h"

#define SHM_TEST_MAX_CONFIGS    16
#define SHM_TEST_MAX_CHILDREN   32
#define SHM_TEST_MAX_WORKERS    16
#define SHM_TEST_CHILD_ORPHANED 120 /* the test died before the child ran */
/* A fresh process after a kill that takes longer is wedged on the lock. */
#define SHM_TEST_FRESH_TIMEOUT_S 10
/* Every test that forks and sets a timeout uses this one: the runner of
 * Criterion 2.4.1 (its BoxFort timeout list) leaks records under --jobs when
 * tests with different timeouts run at once, which fails a SANITIZE=1 run. */
#define SHM_TEST_TIMEOUT_S 30

/* Tests read dir and state_file; the rest is for the teardown. */
struct shm_test_fixture {
    char dir[64];
    char state_file[128];
    struct tg_config *configs[SHM_TEST_MAX_CONFIGS];
    size_t n_configs;
    struct tg_shm *open_segment; /* closed by the teardown if a test fails */
    pid_t children[SHM_TEST_MAX_CHILDREN]; /* not reaped yet; 0: free entry */
};

extern struct shm_test_fixture shm_test_fx;

/* The suite's .init and .fini: a fresh directory for the state file; then
 * kill and reap leftover children, close, free and remove everything. */
void shm_test_setup(void);
void shm_test_teardown(void);

/* Loads "state_file: <the fixture's>", then head (which names the mapping,
 * e.g. "providers:\n"), then that mapping's `entries` (lines indented by two
 * spaces). The config must load; the teardown frees it. */
struct tg_config *shm_test_load_config(const char *head, const char *entries);

/* tg_shm_open then tg_shm_configure, both of which must succeed. A test has
 * one segment open at a time, so that the teardown can close it. */
struct tg_shm *shm_test_open_configured(const struct tg_config *cfg);
void shm_test_close_segment(struct tg_shm *shm);
/* tg_shm_configure (a reload), which must succeed. */
void shm_test_configure(struct tg_shm *shm, const struct tg_config *cfg);

/* Zero-filled memory shared with forked children (MAP_SHARED anonymous):
 * how workers report back. The caller munmaps it. */
void *shm_test_shared_alloc(size_t size);

/* Forks a worker running body(index, arg) then _exit(0); body may _exit
 * with another status to report a failure. The worker dies with the test
 * (PR_SET_PDEATHSIG), and the teardown kills it if nobody reaped it. */
pid_t shm_test_spawn(void (*body)(int index, void *arg), int index, void *arg);
/* Reaps the child: its waitpid status. */
int shm_test_wait_status(pid_t pid);
/* Whether the child has ended (then reaped, *status set); never blocks. */
bool shm_test_has_exited(pid_t pid, int *status);
/* Reaps a worker that must have exited with status 0. */
void shm_test_expect_clean_exit(pid_t pid, const char *what);
/* Runs body(i, arg) for i in [0, n) in n workers released together (not
 * one after the other as they are forked); each must exit with status 0. */
void shm_test_run_workers(int n, void (*body)(int index, void *arg), void *arg,
                          const char *what);

/* After a worker was killed: runs body(0, arg) in a fresh process, which
 * must lock `what` (recovering the lock if the dead worker held it) and
 * finish. round, seed and delay_us (of the kill) go into the message. */
void shm_test_expect_fresh_lock(void (*body)(int index, void *arg), void *arg,
                                const char *what, int round, unsigned seed,
                                long delay_us);
/* In that fresh process: appends its stderr (the lock recovery warning) to
 * log_path and arms an alarm of SHM_TEST_FRESH_TIMEOUT_S against a wedged
 * lock; _exit(3) if the log cannot be opened. */
void shm_test_enter_fresh_process(const char *log_path);

/* How many lines of the file hold `text` (0 if there is no file). */
int shm_test_count_lines_with(const char *path, const char *text);
/* The seed of the random kill delays: $TG_TEST_SEED, to replay a run, or a
 * new one each run. */
unsigned shm_test_seed(void);

#endif
