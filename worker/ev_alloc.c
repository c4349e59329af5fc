/*
 * ev_alloc.c - libevent's allocator: small blocks are recycled (see
 * tg_ev_alloc.h).
 *
 * evhttp allocates a list entry and two strings for every header of every
 * request and answer, then frees them all when the request ends: some forty
 * small blocks a call. glibc's thread cache keeps only seven freed blocks of
 * a size, so the rest took malloc's slow paths (bins, consolidation), which
 * cost more per call than tollgate's own JSON work.
 *
 * The buffers that carry the bytes (evbuffer chains, powers of two from
 * 1 KiB) likewise came from malloc's large bins, and their frees set off
 * the consolidation of its fast bins.
 *
 * Each block carries a 16-byte header with its size class. Blocks of up to
 * MAX_SMALL bytes come in classes of 16 bytes, those of up to 16 KiB in
 * powers of two; a freed one goes on its class's list (SMALL_MAX or
 * BUFFER_MAX deep) for the next allocation of that class. Larger blocks go
 * straight to malloc. A process here is one thread,
 * so the lists need no lock. Under AddressSanitizer nothing is recycled, so
 * that a use after free inside libevent is still caught.
 */
#include "tg_ev_alloc.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER     16
#define CLASS      16
#define MAX_SMALL  512
#define N_SMALL    (MAX_SMALL / CLASS)
#define N_BUFFER   5 /* 1, 2, 4, 8 and 16 KiB */
#define N_CLASSES  (N_SMALL + N_BUFFER)
#define SMALL_MAX  256 /* freed blocks kept per small class */
#define BUFFER_MAX 64  /* and per buffer class */

#if defined(__SANITIZE_ADDRESS__)
#define RECYCLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECYCLE 0
#endif
#endif
#ifndef RECYCLE
#define RECYCLE 1
#endif

/* The header: the class (1..N_CLASSES), or 0 for a large block. */
struct header {
    size_t class;
    size_t pad;
};

struct free_block {
    struct free_block *next;
};

static struct {
    struct free_block *head;
    size_t n;
} lists[N_CLASSES + 1];

/* Classes 1..N_SMALL hold blocks of 16, 32, ... 512 bytes; the next
 * N_BUFFER classes 1, 2, 4, 8 and 16 KiB, the sizes of evbuffer's chains
 * (a power of two from 1 KiB). 0: not recycled. */
static size_t class_of(size_t n)
{
    size_t class = N_SMALL + 1, cap = 1024;

    if (!RECYCLE)
        return 0;
    if (n <= MAX_SMALL)
        return (n + CLASS - 1) / CLASS + (n == 0);
    while (cap < n && class < N_CLASSES) {
        cap <<= 1;
        class ++;
    }
    return cap >= n ? class : 0;
}

static size_t capacity(size_t class)
{
    return class <= N_SMALL ? class * CLASS
                            : (size_t)1024 << (class - N_SMALL - 1);
}

static size_t list_max(size_t class)
{
    return class <= N_SMALL ? SMALL_MAX : BUFFER_MAX;
}

void *tg_ev_malloc(size_t n)
{
    size_t class = class_of(n);
    struct header *h;

    if (class != 0 && lists[class].head != NULL) {
        h = (struct header *)lists[class].head;
        lists[class].head = lists[class].head->next;
        lists[class].n--;
    } else {
        size_t size = class != 0 ? capacity(class) : n;

        if (size > SIZE_MAX - HEADER)
            return NULL;
        h = malloc(HEADER + size);
        if (h == NULL)
            return NULL;
    }
    h->class = class;
    return (char *)h + HEADER;
}

void tg_ev_free(void *p)
{
    struct header *h;
    size_t class;

    if (p == NULL)
        return;
    h = (struct header *)((char *)p - HEADER);
    class = h->class;
    if (class == 0 || lists[class].n == list_max(class)) {
        free(h);
        return;
    }
    ((struct free_block *)h)->next = lists[class].head;
    lists[class].head = (struct free_block *)h;
    lists[class].n++;
}

void *tg_ev_realloc(void *p, size_t n)
{
    struct header *h;
    void *q;
    size_t class, old;

    if (p == NULL)
        return tg_ev_malloc(n);
    h = (struct header *)((char *)p - HEADER);
    class = h->class;
    if (class == 0 && class_of(n) == 0) {
        if (n > SIZE_MAX - HEADER)
            return NULL;
        h = realloc(h, HEADER + n);
        return h == NULL ? NULL : (char *)h + HEADER;
    }
    if (class != 0 && n <= capacity(class) && n > capacity(class) / 2)
        return p;
    q = tg_ev_malloc(n);
    if (q == NULL)
        return NULL;
    /* A large block's size is not kept; libevent only grows blocks, and
     * a large block only shrinks into a small class, so n bytes are
     * there to copy in both cases. */
    old = class != 0 ? capacity(class) : n;
    memcpy(q, p, old < n ? old : n);
    tg_ev_free(p);
    return q;
}

bool tg_ev_alloc_recycles(void)
{
    return RECYCLE;
}

void tg_ev_alloc_install(void)
{
    event_set_mem_functions(tg_ev_malloc, tg_ev_realloc, tg_ev_free);
}

size_t tg_ev_alloc_drain(void)
{
    size_t class, n = 0;

    for (class = 1; class <= N_CLASSES; class ++) {
        while (lists[class].head != NULL) {
            struct free_block *b = lists[class].head;

            lists[class].head = b->next;
            free(b);
            n++;
        }
        lists[class].n = 0;
    }
    return n;
}
