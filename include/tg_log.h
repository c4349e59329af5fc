/*
 * tg_log.h - the process log (stderr, or a file reopened on SIGUSR1).
 *
 * Lines are "2026-11-23T05:15:58Z [level] pid: message", written with one
 * write(2) each so lines from several processes never interleave.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR };

/* Sets the lowest level that is written (default TG_LOG_INFO). */
void tg_log_set_level(enum tg_log_level level);

void tg_log(enum tg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tg_log_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_log_info(...)  tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_log_warn(...)  tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_log_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
