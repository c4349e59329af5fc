/*
 * tg_ev_alloc.h - the allocator tollgate gives libevent: blocks of up to
 * 16 KiB are recycled per size class instead of going back to malloc,
 * since evhttp allocates and frees dozens of them per request.
 */
#ifndef TG_EV_ALLOC_H
#define TG_EV_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Makes libevent allocate through the functions below. Call it first in
 * main, before anything allocates through libevent: a block must be freed
 * by the allocator that made it. */
void tg_ev_alloc_install(void);

/* malloc, realloc and free as libevent uses them. */
void *tg_ev_malloc(size_t n);
void *tg_ev_realloc(void *p, size_t n);
void tg_ev_free(void *p);

/* Whether freed blocks are recycled: not in AddressSanitizer builds. */
bool tg_ev_alloc_recycles(void);

/* Frees the recycled blocks (at exit, so that leak checkers see nothing
 * held); returns how many there were. */
size_t tg_ev_alloc_drain(void);

#endif
