/*
 * tg_worker.h - a worker process: one event loop serving HTTP.
 *
 * The master forks a worker with the config and the listening sockets it
 * inherited; the worker serves until told to stop (SIGQUIT: finish in-flight
 * requests; SIGTERM: the same within shutdown_timeout_s), then exits.
 */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tg_config.h"
#include "tg_logfile.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct tg_auth_table;
struct tg_metrics;
struct tg_shm;
struct tg_upstream;

struct tg_worker {
    const struct tg_config *cfg;
    struct tg_shm *shm;
    struct tg_metrics *metrics;
    unsigned generation;
    time_t config_loaded_at;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket **bound;
    size_t n_bound;
    struct tg_auth_table *auth;
    struct tg_upstream *upstream; /* connection pools to providers */
    uint64_t in_flight;
    int64_t last_request_us;
    bool is_draining;
    int drain_quiet_ms;
    int64_t drain_deadline_us; /* 0: no limit */
    struct event *drain_timer;
    uint64_t id_state[2]; /* request id generator */
    struct tg_logfile access_log;
    struct tg_logfile usage_log;
};

/* The worker of this process (NULL in the master). */
extern struct tg_worker *tg_worker_self;

/*
 * Serves on the listening sockets until stopped. Returns the process exit
 * status: 0 after a clean stop, TG_EXIT_FATAL when it cannot serve at all.
 */
int tg_worker_run(const struct tg_config *cfg, struct tg_shm *shm,
                  struct tg_metrics *metrics, const int *listen_fds,
                  size_t n_fds, unsigned generation, time_t loaded_at);

/* Called by the request path when a request starts and when it ends. */
void tg_worker_request_begun(struct tg_worker *w);
void tg_worker_request_done(struct tg_worker *w);

/* A pseudo-random number (for jitter; not for secrets). */
uint64_t tg_worker_random(struct tg_worker *w);

/* Writes a fresh request id (NUL-terminated) into out[TG_REQ_ID_MAX + 1]. */
void tg_worker_new_request_id(struct tg_worker *w, char *out);

#endif
