/*
 * shm_harness.c - see shm_harness.h.
 *
 * Every child is remembered from fork until it is reaped, so that the
 * teardown of a test that failed half-way kills and reaps what is left
 * rather than leaving workers blocked on a pipe or spinning on the segment.
 */
#include "shm_harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shm_test_fixture shm_test_fx;

void shm_test_setup(void)
{
    memset(&shm_test_fx, 0, sizeof(shm_test_fx));
    snprintf(shm_test_fx.dir, sizeof(shm_test_fx.dir),
             "/tmp/tg-test-shm-XXXXXX");
    cr_assert_not_null(mkdtemp(shm_test_fx.dir), "mkdtemp: %s",
                       strerror(errno));
    snprintf(shm_test_fx.state_file, sizeof(shm_test_fx.state_file), "%s/state",
             shm_test_fx.dir);
}

/* Children first: they may still use the segment and the files. */
static void kill_children(void)
{
    size_t i;

    for (i = 0; i < SHM_TEST_MAX_CHILDREN; i++) {
        if (shm_test_fx.children[i] <= 0)
            continue;
        kill(shm_test_fx.children[i], SIGKILL);
        while (waitpid(shm_test_fx.children[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

void shm_test_teardown(void)
{
    size_t i;

    kill_children();
    tg_shm_close(shm_test_fx.open_segment);
    for (i = 0; i < shm_test_fx.n_configs; i++)
        tg_cfg_free(shm_test_fx.configs[i]);
    remove_dir(shm_test_fx.dir);
}

struct tg_config *shm_test_load_config(const char *head, const char *entries)
{
    static const char format[] = "state_file: %s\n%s%s";
    size_t cap = sizeof(format) + strlen(shm_test_fx.state_file) +
                 strlen(head) + strlen(entries);
    char *yaml = malloc(cap);
    struct tg_cfg_diags diags = {0};
    struct tg_config *cfg;
    size_t i;

    cr_assert_not_null(yaml);
    snprintf(yaml, cap, format, shm_test_fx.state_file, head, entries);
    cfg = tg_cfg_load_string("shm-test.yaml", yaml, strlen(yaml), &diags);
    for (i = 0; i < diags.n && cfg == NULL; i++)
        cr_log_error("%s", diags.items[i].text);
    tg_cfg_diags_free(&diags);
    free(yaml);
    cr_assert_not_null(cfg, "the test config does not load");
    cr_assert_lt(shm_test_fx.n_configs, SHM_TEST_MAX_CONFIGS);
    shm_test_fx.configs[shm_test_fx.n_configs++] = cfg;
    return cfg;
}

struct tg_shm *shm_test_open_configured(const struct tg_config *cfg)
{
    char err[512] = "";
    struct tg_shm *shm = tg_shm_open(cfg, err, sizeof(err));

    cr_assert_not_null(shm, "tg_shm_open: %s", err);
    cr_assert_null(shm_test_fx.open_segment,
                   "a test opens one segment at a time");
    shm_test_fx.open_segment = shm;
    shm_test_configure(shm, cfg);
    return shm;
}

void shm_test_close_segment(struct tg_shm *shm)
{
    cr_assert_eq(shm, shm_test_fx.open_segment);
    shm_test_fx.open_segment = NULL;
    tg_shm_close(shm);
}

void shm_test_configure(struct tg_shm *shm, const struct tg_config *cfg)
{
    char err[512] = "";

    cr_assert_eq(tg_shm_configure(shm, cfg, err, sizeof(err)), 0,
                 "tg_shm_configure: %s", err);
}

void *shm_test_shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
    return p;
}

/* ---- processes ---------------------------------------------------------- */

static void remember_child(pid_t pid)
{
    size_t i;

    for (i = 0; i < SHM_TEST_MAX_CHILDREN; i++) {
        if (shm_test_fx.children[i] == 0) {
            shm_test_fx.children[i] = pid;
            return;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("more than %d children at once", SHM_TEST_MAX_CHILDREN);
}

static void forget_child(pid_t pid)
{
    size_t i;

    for (i = 0; i < SHM_TEST_MAX_CHILDREN; i++)
        if (shm_test_fx.children[i] == pid)
            shm_test_fx.children[i] = 0;
}

pid_t shm_test_spawn(void (*body)(int index, void *arg), int index, void *arg)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The parent may have died between fork and prctl: then nobody
         * would kill this child, so it must not run. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(SHM_TEST_CHILD_ORPHANED);
        body(index, arg);
        _exit(0);
    }
    remember_child(pid);
    return pid;
}

int shm_test_wait_status(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
    forget_child(pid);
    return status;
}

bool shm_test_has_exited(pid_t pid, int *status)
{
    if (waitpid(pid, status, WNOHANG) != pid)
        return false;
    forget_child(pid);
    return true;
}

void shm_test_expect_clean_exit(pid_t pid, const char *what)
{
    int status = shm_test_wait_status(pid);

    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: %s %d", what,
              WIFEXITED(status) ? "exited with status" : "killed by signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/*
 * A start line for workers: each waits in gate_pass until the parent
 * closes the write end of the pipe (end of file, no byte). A byte or an
 * error instead means the test is gone.
 */
struct gated {
    int gate[2];
    void (*body)(int index, void *arg);
    void *arg;
};

static void run_gated(int index, void *arg)
{
    struct gated *g = arg;
    char byte;

    close(g->gate[1]);
    if (read(g->gate[0], &byte, 1) != 0)
        _exit(SHM_TEST_CHILD_ORPHANED);
    close(g->gate[0]);
    g->body(index, g->arg);
}

void shm_test_run_workers(int n, void (*body)(int index, void *arg), void *arg,
                          const char *what)
{
    struct gated g = {.body = body, .arg = arg};
    pid_t pids[SHM_TEST_MAX_WORKERS];
    int i;

    cr_assert_leq(n, SHM_TEST_MAX_WORKERS);
    cr_assert_eq(pipe(g.gate), 0, "pipe: %s", strerror(errno));
    for (i = 0; i < n; i++)
        pids[i] = shm_test_spawn(run_gated, i, &g);
    close(g.gate[1]);
    close(g.gate[0]);
    for (i = 0; i < n; i++)
        shm_test_expect_clean_exit(pids[i], what);
}

/* ---- SIGKILL rounds ----------------------------------------------------- */

void shm_test_expect_fresh_lock(void (*body)(int index, void *arg), void *arg,
                                const char *what, int round, unsigned seed,
                                long delay_us)
{
    int status = shm_test_wait_status(shm_test_spawn(body, 0, arg));

    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "round %d (seed %u, killed after %ld us): a fresh process "
              "could not lock the %s (status %d%s)",
              round, seed, delay_us, what, status,
              WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ": wedged"
                                                                 : "");
}

void shm_test_enter_fresh_process(const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(3);
    alarm(SHM_TEST_FRESH_TIMEOUT_S);
}

int shm_test_count_lines_with(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, text) != NULL;
    if (f != NULL)
        fclose(f);
    return n;
}

unsigned shm_test_seed(void)
{
    const char *env = getenv("TG_TEST_SEED");

    return env ? (unsigned)strtoul(env, NULL, 10)
               : (unsigned)time(NULL) ^ (unsigned)getpid();
}
