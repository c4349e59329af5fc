/*
 * arena.c - the per-request bump allocator (see tg_arena.h).
 *
 * Blocks form a singly linked list, newest first. An allocation that does not
 * fit the current block takes a new block of at least twice the last size,
 * or exactly its own size when it is larger, so big bodies do not waste a
 * doubling. Freeing walks the list once.
 *
 * Freed blocks of the small power-of-two sizes that requests start with are
 * kept for the next arena, a few of each size: a request takes two such
 * blocks, and malloc's slow path for blocks of kilobytes (which also
 * consolidates its fast bins) cost more than the rest of the arena's work.
 * A worker is one thread, so the cache needs no lock.
 */
#include "tg_arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN     16
#define ARENA_MAX_BLOCK (1u << 20)

/* Blocks of 2^CACHE_MIN_SHIFT .. 2^CACHE_MAX_SHIFT bytes are cached, at
 * most CACHE_DEPTH of each size. */
#define CACHE_MIN_SHIFT 10
#define CACHE_MAX_SHIFT 14
#define CACHE_DEPTH     32

struct tg_arena_block {
    struct tg_arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static struct {
    struct tg_arena_block *head;
    unsigned n;
} cache[CACHE_MAX_SHIFT - CACHE_MIN_SHIFT + 1];

/* The cache slot of a block size, or -1 when blocks of that size are not
 * cached. */
static int cache_slot(size_t size)
{
    int shift;

    for (shift = CACHE_MIN_SHIFT; shift <= CACHE_MAX_SHIFT; shift++)
        if (size == (size_t)1 << shift)
            return shift - CACHE_MIN_SHIFT;
    return -1;
}

static struct tg_arena_block *block_new(size_t size)
{
    int slot = cache_slot(size);
    struct tg_arena_block *b;

    if (slot >= 0 && cache[slot].head != NULL) {
        b = cache[slot].head;
        cache[slot].head = b->next;
        cache[slot].n--;
        return b;
    }
    if (size > SIZE_MAX - sizeof(*b))
        return NULL;
    b = malloc(sizeof(*b) + size);
    if (b != NULL)
        b->size = size;
    return b;
}

static void block_free(struct tg_arena_block *b)
{
    int slot = cache_slot(b->size);

    if (slot < 0 || cache[slot].n == CACHE_DEPTH) {
        free(b);
        return;
    }
    b->next = cache[slot].head;
    cache[slot].head = b;
    cache[slot].n++;
}

size_t tg_arena_cache_drain(void)
{
    size_t i, n = 0;

    for (i = 0; i < sizeof(cache) / sizeof(cache[0]); i++) {
        while (cache[i].head != NULL) {
            struct tg_arena_block *b = cache[i].head;

            cache[i].head = b->next;
            free(b);
            n++;
        }
        cache[i].n = 0;
    }
    return n;
}

void tg_arena_init(struct tg_arena *a, size_t first_block_size)
{
    a->head = NULL;
    a->block_size = first_block_size ? first_block_size : 4096;
}

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static struct tg_arena_block *arena_grow(struct tg_arena *a, size_t n)
{
    size_t size = a->block_size > n ? a->block_size : n;
    struct tg_arena_block *b;

    b = block_new(size);
    if (b == NULL)
        return NULL;
    b->next = a->head;
    b->used = 0;
    a->head = b;
    if (a->block_size < ARENA_MAX_BLOCK)
        a->block_size *= 2;
    return b;
}

void *tg_arena_alloc(struct tg_arena *a, size_t n)
{
    struct tg_arena_block *b = a->head;
    void *p;

    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    n = align_up(n ? n : 1);
    if (b == NULL || b->size - b->used < n) {
        b = arena_grow(a, n);
        if (b == NULL)
            return NULL;
    }
    p = b->data + b->used;
    b->used += n;
    return p;
}

void *tg_arena_calloc(struct tg_arena *a, size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = tg_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *tg_arena_strndup(struct tg_arena *a, const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX)
        return NULL;
    p = tg_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0) /* s may be NULL then (an empty evbuffer's pullup) */
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *tg_arena_join(struct tg_arena *a, const char *s1, const char *s2)
{
    size_t n1 = strlen(s1), n2 = strlen(s2);
    char *p = tg_arena_alloc(a, n1 + n2 + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s1, n1);
    memcpy(p + n1, s2, n2 + 1);
    return p;
}

char *tg_arena_printf(struct tg_arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    p = tg_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void tg_arena_free(struct tg_arena *a)
{
    struct tg_arena_block *b = a->head;

    while (b != NULL) {
        struct tg_arena_block *next = b->next;
        block_free(b);
        b = next;
    }
    a->head = NULL;
}
