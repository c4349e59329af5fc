/*
 * tg_logfile.h - a JSON-lines log file that every worker appends to (the
 * access log and the usage log).
 *
 * Lines go out in write(2)s of whole lines to a file opened O_APPEND, so
 * lines from all workers land whole. A worker's log gathers the lines of
 * one pass of its event loop and writes them together at the end of that
 * pass (tg_logfile_batch): under load one write then carries the lines of
 * tens of requests instead of one. A log that cannot be opened or written
 * never stops serving: the worker says so once in the process log and goes
 * on; SIGUSR1 reopens it (after logrotate renamed it).
 */
#ifndef TG_LOGFILE_H
#define TG_LOGFILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A batch is written when it reaches this many bytes, pass or no pass. */
#define TG_LOGFILE_BATCH_MAX 65536

struct evbuffer;
struct event;
struct event_base;

struct tg_logfile {
    const char *what;         /* "access_log": names it in messages */
    const char *path;         /* "" = off */
    int fd;                   /* -1 when off or unwritable */
    bool has_failed;          /* said so already */
    _Atomic uint64_t *lost;   /* lines lost; NULL: not counted */
    struct evbuffer *pending; /* lines not written yet; NULL: not batched */
    uint64_t n_pending;       /* ... how many */
    struct event *flush;      /* writes them at the end of the pass */
};

/* A log that is off until tg_logfile_open. */
#define TG_LOGFILE_INIT(what_)                \
    {                                         \
        .what = (what_), .path = "", .fd = -1 \
    }

void tg_logfile_open(struct tg_logfile *log, const char *path);

/* From now on, lines wait for the end of the current pass of base's loop
 * (or for TG_LOGFILE_BATCH_MAX bytes) and go out in one write. Without it,
 * or when it fails (TG_ERROR), every line is written at once. */
int tg_logfile_batch(struct tg_logfile *log, struct event_base *base);

/* Writes the lines waiting, if any. */
void tg_logfile_flush(struct tg_logfile *log);

/* Writes what waits to the file it was meant for, then opens the path
 * again (SIGUSR1, after logrotate renamed the file). */
void tg_logfile_reopen(struct tg_logfile *log);

/* Writes what waits and closes the file; the batching ends too. */
void tg_logfile_close(struct tg_logfile *log);

/* Whether a line is wanted: false when the log is off, or when it is
 * unwritable (the line is then counted lost). */
bool tg_logfile_wants(struct tg_logfile *log);

/* Appends the line in b (ending in "\n") and empties b. */
void tg_logfile_write(struct tg_logfile *log, struct evbuffer *b);

#endif
