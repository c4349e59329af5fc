/*
 * test_arena.c - unit tests of the per-request bump allocator
 * (worker/arena.c): alignment, growth, overflow checks, and the cache of
 * freed blocks that the next arenas reuse.
 */
#include <criterion/criterion.h>

#include "tg_arena.h"

#include <stdint.h>
#include <string.h>

Test(arena, allocations_are_aligned_and_do_not_overlap)
{
    struct tg_arena a;
    unsigned char *p[200];
    size_t i;

    tg_arena_init(&a, 64);
    for (i = 0; i < 200; i++) {
        p[i] = tg_arena_alloc(&a, i + 1);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 16, 0, "allocation %zu misaligned", i);
        memset(p[i], (int)i, i + 1);
    }
    for (i = 0; i < 200; i++)
        cr_assert_eq(p[i][i], (unsigned char)i, "allocation %zu overwritten",
                     i);
    tg_arena_free(&a);
    tg_arena_cache_drain();
}

Test(arena, refuses_sizes_that_overflow)
{
    struct tg_arena a;

    tg_arena_init(&a, 0);
    cr_assert_null(tg_arena_alloc(&a, SIZE_MAX));
    cr_assert_null(tg_arena_calloc(&a, SIZE_MAX / 2, 3));
    cr_assert_null(tg_arena_strndup(&a, "x", SIZE_MAX));
    cr_assert_str_eq(tg_arena_strndup(&a, "abc", 2), "ab");
    tg_arena_free(&a);
}

Test(arena, a_freed_arenas_blocks_serve_the_next_one)
{
    struct tg_arena a, b;
    unsigned char *first, *again;

    tg_arena_cache_drain();
    tg_arena_init(&a, 4096);
    first = tg_arena_alloc(&a, 100);
    memset(first, 0xab, 100);
    tg_arena_free(&a);

    tg_arena_init(&b, 4096);
    again = tg_arena_alloc(&b, 100);
    cr_assert_eq(again, first, "the cached block was not reused");
    /* Zeroing is calloc's job, not the cache's: the block is reused as is,
     * and calloc still hands out zeros. */
    tg_arena_free(&b);
    tg_arena_init(&b, 4096);
    cr_assert_eq(((unsigned char *)tg_arena_calloc(&b, 1, 100))[7], 0);
    tg_arena_free(&b);
    tg_arena_cache_drain();
}

Test(arena, blocks_of_other_sizes_are_not_kept)
{
    struct tg_arena a;

    tg_arena_cache_drain();
    /* An allocation larger than the block takes a block of its own size,
     * 100,000 bytes, and an odd first size makes an odd block: neither is a
     * size the cache keeps. */
    tg_arena_init(&a, 4096);
    cr_assert_not_null(tg_arena_alloc(&a, 100000));
    tg_arena_free(&a);
    tg_arena_init(&a, 3000);
    cr_assert_not_null(tg_arena_alloc(&a, 10));
    tg_arena_free(&a);
    cr_assert_eq(tg_arena_cache_drain(), 0);

    tg_arena_init(&a, 4096);
    cr_assert_not_null(tg_arena_alloc(&a, 10));
    tg_arena_free(&a);
    cr_assert_eq(tg_arena_cache_drain(), 1);
}

Test(arena, the_cache_holds_a_bounded_number_of_blocks)
{
    enum { N = 100 };
    struct tg_arena a[N];
    size_t i, kept;

    tg_arena_cache_drain();
    for (i = 0; i < N; i++) {
        tg_arena_init(&a[i], 1024);
        cr_assert_not_null(tg_arena_alloc(&a[i], 8));
    }
    for (i = 0; i < N; i++)
        tg_arena_free(&a[i]);
    kept = tg_arena_cache_drain();
    cr_assert_gt(kept, 0, "no freed block was kept");
    cr_assert_lt(kept, N, "every freed block was kept");
    cr_assert_eq(tg_arena_cache_drain(), 0, "a drained cache is empty");
}
