/*
 * master.c - the process cycle: fork workers, keep them alive, reload, stop.
 *
 * As in nginx, signal handlers only set flags; the loop below waits in
 * sigsuspend with every handled signal blocked otherwise, so each flag is
 * acted on exactly once, in order, outside any handler.
 *
 *   SIGCHLD  reap; a worker of the current generation that died is replaced
 *            at once (unless it exited TG_EXIT_FATAL: its config cannot work)
 *   SIGHUP   reload: validate the file; if it fails, log every error and
 *            change nothing; else open any new sockets, start a new
 *            generation of workers, then tell the old one to drain (SIGQUIT)
 *   SIGTERM, SIGINT  stop: workers drain for up to shutdown_timeout_s, then
 *            whatever is left is killed
 *   SIGQUIT  graceful stop: workers drain without a time limit
 *   SIGUSR1  reopen log files (passed on to the workers)
 */
#include "tg_master.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg.h"
#include "tg_log.h"
#include "tg_metrics.h"
#include "tg_shm.h"
#include "tg_worker.h"

struct slot {
    pid_t pid;
    unsigned generation;
    int shm_slot; /* its worker slot in the segment, or -1 */
};

struct master {
    struct tg_config *cfg;
    struct tg_shm *shm;         /* mapped here, inherited by every worker */
    struct tg_metrics *metrics; /* its counters, for cfg */
    const char *path;
    int *fds; /* one listening socket per cfg->listen entry */
    size_t n_fds;
    struct slot *slots; /* live workers of every generation */
    size_t n_slots, cap_slots;
    unsigned generation;
    time_t loaded_at;
    int stop_signal; /* 0, SIGTERM or SIGQUIT once stopping */
    time_t stop_deadline;
};

static volatile sig_atomic_t got_child, got_hup, got_term, got_quit, got_usr1,
    got_alarm;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: got_child = 1; break;
    case SIGHUP: got_hup = 1; break;
    case SIGTERM:
    case SIGINT: got_term = 1; break;
    case SIGQUIT: got_quit = 1; break;
    case SIGUSR1: got_usr1 = 1; break;
    case SIGALRM: got_alarm = 1; break;
    }
}

static const int master_signals[] = {SIGCHLD, SIGHUP,  SIGTERM, SIGINT,
                                     SIGQUIT, SIGUSR1, SIGALRM};

static void install_signals(sigset_t *blocked)
{
    struct sigaction sa = {.sa_handler = on_signal};
    size_t i;

    sigemptyset(blocked);
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < TG_ARRAY_LEN(master_signals); i++) {
        sigaddset(blocked, master_signals[i]);
        sigaction(master_signals[i], &sa, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, blocked, NULL);
}

/* In a new worker: the master's handlers and mask do not apply. */
static void reset_signals(const sigset_t *blocked)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(master_signals); i++)
        signal(master_signals[i], SIG_DFL);
    sigprocmask(SIG_UNBLOCK, blocked, NULL);
}

static void spawn(struct master *m, const sigset_t *blocked)
{
    pid_t pid;
    int status, shm_slot;

    if (m->n_slots == m->cap_slots) {
        size_t cap = m->cap_slots ? m->cap_slots * 2 : 16;
        struct slot *s = realloc(m->slots, cap * sizeof(*s));
        if (s == NULL) {
            tg_log_error("cannot start a worker: out of memory");
            return;
        }
        m->slots = s;
        m->cap_slots = cap;
    }
    shm_slot = tg_shm_worker_take(m->shm);
    if (shm_slot < 0)
        tg_log_warn("no free worker slot in the state file: the new "
                    "worker's calls will not count as in flight");
    pid = fork();
    if (pid < 0) {
        tg_log_error("fork: %s", strerror(errno));
        tg_shm_worker_free(m->shm, shm_slot);
        return;
    }
    if (pid == 0) {
        reset_signals(blocked);
        tg_shm_worker_attach(m->shm, shm_slot);
        status = tg_worker_run(m->cfg, m->shm, m->metrics, m->fds, m->n_fds,
                               m->generation, m->loaded_at);
        tg_metrics_free(m->metrics);
        tg_cfg_free(m->cfg);
        exit(status);
    }
    m->slots[m->n_slots++] = (struct slot){pid, m->generation, shm_slot};
    tg_metrics_set_workers(m->metrics, m->n_slots);
}

static void spawn_generation(struct master *m, const sigset_t *blocked)
{
    int i;

    for (i = 0; i < m->cfg->workers; i++)
        spawn(m, blocked);
}

static void signal_workers(struct master *m, int sig, bool is_old_only)
{
    size_t i;

    for (i = 0; i < m->n_slots; i++)
        if (!is_old_only || m->slots[i].generation != m->generation)
            kill(m->slots[i].pid, sig);
}

static void log_exit(pid_t pid, int status, bool will_respawn)
{
    const char *then = will_respawn ? "; starting a new one" : "";

    if (WIFSIGNALED(status))
        tg_log_warn("worker %d killed by signal %d%s", (int)pid,
                    WTERMSIG(status), then);
    else if (WEXITSTATUS(status) != 0 || will_respawn)
        tg_log_warn("worker %d exited with status %d%s", (int)pid,
                    WEXITSTATUS(status), then);
    else
        tg_log_info("worker %d exited with status 0", (int)pid);
}

static void reap(struct master *m, const sigset_t *blocked)
{
    pid_t pid;
    int status;
    size_t i;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (i = 0; i < m->n_slots && m->slots[i].pid != pid; i++)
            ;
        if (i == m->n_slots)
            continue;
        bool is_current = m->slots[i].generation == m->generation;
        bool is_fatal =
            WIFEXITED(status) && WEXITSTATUS(status) == TG_EXIT_FATAL;
        bool will_respawn = is_current && !m->stop_signal && !is_fatal;
        tg_shm_worker_free(m->shm, m->slots[i].shm_slot);
        tg_metrics_worker_gone(m->metrics, m->slots[i].shm_slot);
        m->slots[i] = m->slots[--m->n_slots];
        tg_metrics_set_workers(m->metrics, m->n_slots);
        log_exit(pid, status, will_respawn);
        if (will_respawn) {
            tg_metrics_worker_restarted(m->metrics);
            spawn(m, blocked);
        }
    }
}

static int write_pid_file(const char *path)
{
    char line[32];
    int fd, n;

    if (path[0] == '\0')
        return TG_OK;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        tg_log_error("pid_file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return TG_ERROR;
    }
    close(fd);
    return TG_OK;
}

/* Closes the sockets in fds[0..n) that are not also in keep, and frees
 * fds: a failed reload drops what it opened, a good one what it no longer
 * needs. */
static void close_except(int *fds, size_t n, const int *keep, size_t n_keep)
{
    size_t i, k;

    for (i = 0; i < n; i++) {
        for (k = 0; k < n_keep && keep[k] != fds[i]; k++)
            ;
        if (k == n_keep && fds[i] >= 0)
            close(fds[i]);
    }
    free(fds);
}

static void close_fds(int *fds, size_t n)
{
    close_except(fds, n, NULL, 0);
}

static bool same_listen(const struct tg_listen *a, const struct tg_listen *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Index of the socket in `old` for the same address as l, or -1. */
static int find_old(const struct tg_listen *l, const struct tg_config *old,
                    const int *old_fds)
{
    size_t k;

    for (k = 0; old != NULL && k < old->n_listen; k++)
        if (old_fds[k] >= 0 && same_listen(l, &old->listen[k]))
            return (int)k;
    return -1;
}

/*
 * Sockets for `cfg`: one `old` already has for the same address is reused
 * (the same fd), the others are opened. Returns NULL when one cannot be
 * opened, having closed what it opened.
 */
static int *open_listeners(const struct tg_config *cfg,
                           const struct tg_config *old, const int *old_fds)
{
    int *fds = calloc(cfg->n_listen, sizeof(*fds));
    size_t i, n = 0;
    int k;

    for (i = 0; fds != NULL && i < cfg->n_listen; i++, n++) {
        k = find_old(&cfg->listen[i], old, old_fds);
        fds[i] = k >= 0 ? old_fds[k] : tg_listen_open(&cfg->listen[i]);
        if (fds[i] < 0)
            break;
    }
    if (fds != NULL && n < cfg->n_listen) {
        close_except(fds, n, old_fds, old ? old->n_listen : 0);
        fds = NULL;
    }
    return fds;
}

static void log_diags(const struct tg_cfg_diags *d)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        if (d->items[i].is_error)
            tg_log_error("%s", d->items[i].text);
        else
            tg_log_warn("%s", d->items[i].text);
    }
}

static void reload_failed(struct master *m, const char *why)
{
    tg_log_error("reload failed: %s; still serving configuration "
                 "generation %u",
                 why, m->generation);
    tg_metrics_reloaded(m->metrics, false, m->generation, tg_shm_now_ns());
}

/* Everything that can fail comes before anything changes. */
static void reload(struct master *m, const sigset_t *blocked)
{
    struct tg_cfg_diags diags = {0};
    struct tg_config *cfg = tg_cfg_load(m->path, &diags);
    struct tg_metrics *metrics = NULL;
    char err[512];
    int *fds;

    log_diags(&diags);
    snprintf(err, sizeof(err), "%zu errors", diags.n_errors);
    tg_cfg_diags_free(&diags);
    if (cfg == NULL) {
        reload_failed(m, err);
        return;
    }
    fds = open_listeners(cfg, m->cfg, m->fds);
    if (fds == NULL) {
        reload_failed(m, "cannot listen");
        tg_cfg_free(cfg);
        return;
    }
    metrics = tg_metrics_new(m->shm, cfg);
    if (metrics == NULL ||
        tg_shm_configure(m->shm, cfg, err, sizeof(err)) != TG_OK) {
        reload_failed(m, metrics == NULL ? "out of memory" : err);
        tg_metrics_free(metrics);
        close_except(fds, cfg->n_listen, m->fds, m->n_fds);
        tg_cfg_free(cfg);
        return;
    }
    /* Sockets the new config no longer lists close here; old workers keep
     * their own copies until they have drained. */
    close_except(m->fds, m->n_fds, fds, cfg->n_listen);
    tg_cfg_free(m->cfg);
    tg_metrics_free(m->metrics);
    m->cfg = cfg;
    m->metrics = metrics;
    m->fds = fds;
    m->n_fds = cfg->n_listen;
    m->generation++;
    m->loaded_at = time(NULL);
    tg_metrics_reloaded(m->metrics, true, m->generation, tg_shm_now_ns());
    write_pid_file(cfg->pid_file);
    spawn_generation(m, blocked);
    signal_workers(m, SIGQUIT, true);
    tg_log_info("reloaded %s: configuration generation %u, %d workers", m->path,
                m->generation, cfg->workers);
}

static void begin_stop(struct master *m, int sig)
{
    if (m->stop_signal == SIGTERM)
        return;
    m->stop_signal = sig;
    signal_workers(m, sig, false);
    if (sig == SIGTERM) {
        m->stop_deadline = time(NULL) + m->cfg->shutdown_timeout_s + 1;
        alarm(1);
    }
    tg_log_info("stopping (%s): %zu workers draining",
                sig == SIGTERM ? "SIGTERM" : "SIGQUIT", m->n_slots);
}

/* While a timed stop runs, a one-second alarm checks the deadline. */
static void check_deadline(struct master *m)
{
    if (m->stop_signal != SIGTERM)
        return;
    if (time(NULL) < m->stop_deadline) {
        alarm(1);
        return;
    }
    tg_log_warn("shutdown timeout: killing %zu workers", m->n_slots);
    signal_workers(m, SIGKILL, false);
}

static void take_flags(struct master *m, const sigset_t *blocked)
{
    if (got_child) {
        got_child = 0;
        reap(m, blocked);
    }
    if (got_term || got_quit) {
        int sig = got_term ? SIGTERM : SIGQUIT;
        got_term = got_quit = 0;
        begin_stop(m, sig);
    }
    if (got_alarm) {
        got_alarm = 0;
        check_deadline(m);
    }
    if (got_hup) {
        got_hup = 0;
        if (!m->stop_signal)
            reload(m, blocked);
    }
    if (got_usr1) {
        got_usr1 = 0;
        tg_log_info("reopening log files");
        signal_workers(m, SIGUSR1, false);
    }
}

static void cycle(struct master *m, const sigset_t *blocked)
{
    sigset_t wait_mask;

    sigemptyset(&wait_mask);
    spawn_generation(m, blocked);
    tg_log_info("tollgate %s serving with %d workers (configuration "
                "generation %u)",
                TG_VERSION, m->cfg->workers, m->generation);
    while (!(m->stop_signal && m->n_slots == 0)) {
        sigsuspend(&wait_mask);
        take_flags(m, blocked);
    }
    tg_log_info("stopped");
}

int tg_master_run(struct tg_config *cfg, const char *path)
{
    struct master m = {.cfg = cfg, .path = path, .generation = 1};
    char err[512] = "";
    sigset_t blocked;

    m.loaded_at = time(NULL);
    m.shm = tg_shm_open(cfg, err, sizeof(err));
    if (m.shm != NULL && (m.metrics = tg_metrics_new(m.shm, cfg)) == NULL)
        snprintf(err, sizeof(err), "out of memory");
    if (m.shm == NULL || m.metrics == NULL ||
        tg_shm_configure(m.shm, cfg, err, sizeof(err)) != TG_OK ||
        (m.fds = open_listeners(cfg, NULL, NULL)) == NULL ||
        write_pid_file(cfg->pid_file) != TG_OK) {
        if (err[0] != '\0')
            tg_log_error("%s", err);
        tg_shm_close(m.shm);
        tg_metrics_free(m.metrics);
        if (m.fds != NULL)
            close_fds(m.fds, cfg->n_listen);
        tg_cfg_free(cfg);
        return 1;
    }
    m.n_fds = cfg->n_listen;
    install_signals(&blocked);
    cycle(&m, &blocked);
    if (m.cfg->pid_file[0] != '\0')
        unlink(m.cfg->pid_file);
    tg_shm_close(m.shm);
    tg_metrics_free(m.metrics);
    close_fds(m.fds, m.n_fds);
    free(m.slots);
    tg_cfg_free(m.cfg);
    return 0;
}
