/*
 * tg.h - what every part of tollgate shares: the status codes internal calls
 * return, the version, and the few limits that more than one module needs.
 *
 * Internal calls return TG_OK or a negative status; the one place per surface
 * that answers HTTP turns a status into a status code and an error body.
 */
#ifndef TG_H
#define TG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_VERSION "0.1.0"

enum tg_status {
    TG_OK = 0,
    TG_ERROR = -1,    /* failed; the callee logged or reported why */
    TG_AGAIN = -2,    /* not yet: call again later */
    TG_DECLINED = -3, /* not mine / not found */
    TG_NOMEM = -4,
};

/* Exit code of a process whose configuration cannot work: the master does
 * not respawn a worker that exits with it (nginx uses 2 for the same). */
#define TG_EXIT_FATAL 2

#define TG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Microseconds on the monotonic clock (worker.c). */
int64_t tg_now_us(void);

#endif
