/*
 * tg_master.h - the master process: sockets, workers, signals.
 */
#ifndef TG_MASTER_H
#define TG_MASTER_H

#include <stddef.h>

#include "tg_config.h"

/*
 * Runs the gateway on `cfg` (taking ownership of it) until stopped; reloads
 * from `path` on SIGHUP. Returns the process exit status.
 */
int tg_master_run(struct tg_config *cfg, const char *path);

/* Opens a listening TCP socket on host:port (non-blocking, SO_REUSEADDR).
 * Returns the fd, or -1 after logging why. */
int tg_listen_open(const struct tg_listen *l);

#endif
