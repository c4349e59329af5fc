/*
 * logfile.c - appending whole lines to a log shared by every worker; see
 * tg_logfile.h.
 */
#include "tg_logfile.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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

void tg_logfile_close(struct tg_logfile *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
}

void tg_logfile_reopen(struct tg_logfile *log)
{
    tg_logfile_close(log);
    tg_logfile_open(log, log->path);
}

static void count_lost(struct tg_logfile *log)
{
    if (log->lost != NULL)
        atomic_fetch_add_explicit(log->lost, 1, memory_order_relaxed);
}

bool tg_logfile_wants(struct tg_logfile *log)
{
    if (log->path[0] == '\0')
        return false;
    if (log->fd < 0)
        count_lost(log);
    return log->fd >= 0;
}

/* A short write of an O_APPEND file (a full disk) leaves part of a line:
 * it is counted lost like any failed write. */
void tg_logfile_write(struct tg_logfile *log, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);

    if (log->fd < 0 ||
        write(log->fd, evbuffer_pullup(b, -1), n) != (ssize_t)n) {
        count_lost(log);
        if (log->fd >= 0 && !log->has_failed)
            tg_log_error("%s %s: write failed: %s", log->what, log->path,
                         strerror(errno));
        log->has_failed = true;
    }
    evbuffer_drain(b, n);
}
