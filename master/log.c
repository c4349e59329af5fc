/*
 * log.c - the process log: one line per call, one write(2) per line.
 *
 * Master and workers share stderr; a single write of a line shorter than
 * PIPE_BUF (and any write to a file opened O_APPEND) lands whole, so lines
 * from different processes never interleave.
 */
#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static enum tg_log_level min_level = TG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tg_log_set_level(enum tg_log_level level)
{
    min_level = level;
}

void tg_log(enum tg_log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    struct tm tm;
    time_t now;
    size_t n;
    int r;
    va_list ap;

    if (level < min_level)
        return;
    now = time(NULL);
    gmtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
    r = snprintf(line + n, sizeof(line) - n, " [%s] %d: ", level_names[level],
                 (int)getpid());
    if (r > 0)
        n += (size_t)r;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (r > 0)
        n += (size_t)r;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report a failing log; serving goes on. */
    }
}
