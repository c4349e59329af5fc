/*
 * logfile.c - appending whole lines to a log shared by every worker; see
 * tg_logfile.h.
 */
#include "tg_logfile.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tg.h"
#include "tg_log.h"

void tg_logfile_open(struct tg_logfile *log, const char *path)
{
    log->path = path;
    if (path[0] == '\0')
        return;
    log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd < 0)
        tg_log_error("%s %s: %s", log->what, path, strerror(errno));
    log->has_failed = log->fd < 0;
}

static void close_fd(struct tg_logfile *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}

static void end_batching(struct tg_logfile *log)
{
    if (log->flush != NULL)
        event_free(log->flush);
    if (log->pending != NULL)
        evbuffer_free(log->pending);
    log->flush = NULL;
    log->pending = NULL;
}

void tg_logfile_close(struct tg_logfile *log)
{
    tg_logfile_flush(log);
    close_fd(log);
    end_batching(log);
}

/* What waits goes to the old file: it was written before the rename. */
void tg_logfile_reopen(struct tg_logfile *log)
{
    tg_logfile_flush(log);
    close_fd(log);
    tg_logfile_open(log, log->path);
}

static void count_lost(struct tg_logfile *log, uint64_t n)
{
    if (log->lost != NULL)
        atomic_fetch_add_explicit(log->lost, n, memory_order_relaxed);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_logfile_flush(arg);
}

int tg_logfile_batch(struct tg_logfile *log, struct event_base *base)
{
    log->pending = evbuffer_new();
    log->flush = event_new(base, -1, 0, on_flush, log);
    if (log->pending != NULL && log->flush != NULL)
        return TG_OK;
    end_batching(log);
    return TG_ERROR;
}

bool tg_logfile_wants(struct tg_logfile *log)
{
    if (log->path[0] == '\0')
        return false;
    if (log->fd < 0)
        count_lost(log, 1);
    return log->fd >= 0;
}

/* Writes the n_lines whole lines in b and empties b. A short write of an
 * O_APPEND file (a full disk) leaves part of a line: all of b is counted
 * lost then, like a failed write. */
static void write_lines(struct tg_logfile *log, struct evbuffer *b,
                        uint64_t n_lines)
{
    size_t n = evbuffer_get_length(b);

    if (log->fd < 0 ||
        write(log->fd, evbuffer_pullup(b, -1), n) != (ssize_t)n) {
        count_lost(log, n_lines);
        if (log->fd >= 0 && !log->has_failed)
            tg_log_error("%s %s: write failed: %s", log->what, log->path,
                         strerror(errno));
        log->has_failed = true;
    }
    evbuffer_drain(b, n);
}

void tg_logfile_flush(struct tg_logfile *log)
{
    if (log->pending == NULL || log->n_pending == 0)
        return;
    write_lines(log, log->pending, log->n_pending);
    log->n_pending = 0;
}

/* The flush event is made active rather than timed: it runs once the loop
 * has run every callback already due in this pass, before it waits again. */
void tg_logfile_write(struct tg_logfile *log, struct evbuffer *b)
{
    if (log->pending == NULL || evbuffer_add_buffer(log->pending, b) != 0) {
        write_lines(log, b, 1);
        return;
    }
    if (log->n_pending++ == 0)
        event_active(log->flush, 0, 0);
    if (evbuffer_get_length(log->pending) >= TG_LOGFILE_BATCH_MAX)
        tg_logfile_flush(log);
}
