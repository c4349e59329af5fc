/*
 * tg_logfile.h - a JSON-lines log file that every worker appends to (the
 * access log and the usage log).
 *
 * Each line goes out in a single write(2) to a file opened O_APPEND, so
 * lines from all workers land whole. A log that cannot be opened or
 * written never stops serving: the worker says so once in the process log
 * and goes on; SIGUSR1 reopens it (after logrotate renamed it).
 */
#ifndef TG_LOGFILE_H
#define TG_LOGFILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct evbuffer;

struct tg_logfile {
    const char *what;       /* "access_log": names it in messages */
    const char *path;       /* "" = off */
    int fd;                 /* -1 when off or unwritable */
    bool has_failed;        /* said so already */
    _Atomic uint64_t *lost; /* lines lost; NULL: not counted */
};

/* A log that is off until tg_logfile_open. */
#define TG_LOGFILE_INIT(what_)                \
    {                                         \
        .what = (what_), .path = "", .fd = -1 \
    }

void tg_logfile_open(struct tg_logfile *log, const char *path);
void tg_logfile_reopen(struct tg_logfile *log);
void tg_logfile_close(struct tg_logfile *log);

/* Whether a line is wanted: false when the log is off, or when it is
 * unwritable (the line is then counted lost). */
bool tg_logfile_wants(struct tg_logfile *log);

/* Appends the line in b (ending in "\n") and empties b. */
void tg_logfile_write(struct tg_logfile *log, struct evbuffer *b);

#endif
