/*
 * tg_arena.h - a bump allocator whose memory dies all at once.
 *
 * Every request owns one arena: whatever the request path allocates comes
 * from it and is released by tg_arena_free when the request ends, so a
 * request cannot leak. Allocations are 16-byte aligned; the first block is
 * embedded in the caller's storage when the caller gives one.
 */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>

struct tg_arena_block;

struct tg_arena {
    struct tg_arena_block *head; /* current block, newest first */
    size_t block_size;           /* size of the next block to allocate */
};

/* Prepares an empty arena; no memory is taken until the first alloc. */
void tg_arena_init(struct tg_arena *a, size_t first_block_size);

/* Returns n bytes (uninitialised), or NULL when out of memory. The memory
 * stays valid until tg_arena_free. */
void *tg_arena_alloc(struct tg_arena *a, size_t n);

/* Like tg_arena_alloc, zero-filled; n * size is checked for overflow. */
void *tg_arena_calloc(struct tg_arena *a, size_t n, size_t size);

/* Copies s[0..n) and adds a NUL; NULL when out of memory. */
char *tg_arena_strndup(struct tg_arena *a, const char *s, size_t n);

/* s1 followed by s2, NUL-terminated; NULL when out of memory. Cheaper than
 * tg_arena_printf("%s%s"), for what is built on every call. */
char *tg_arena_join(struct tg_arena *a, const char *s1, const char *s2);

/* printf into the arena; NULL when out of memory. */
char *tg_arena_printf(struct tg_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Releases every block; the arena is empty and reusable afterwards. */
void tg_arena_free(struct tg_arena *a);

/* Frees the blocks that freed arenas left for reuse (at a worker's exit, so
 * that leak checkers see nothing held); returns how many there were. */
size_t tg_arena_cache_drain(void);

#endif
