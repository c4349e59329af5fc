/*
 * test_ev_alloc.c - unit tests of the allocator tollgate gives libevent
 * (worker/ev_alloc.c): recycling by size class, realloc across classes,
 * the bound on what is kept, and libevent itself running on it.
 */
#include <criterion/criterion.h>

#include "tg_ev_alloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>

static void fill(unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + 3);
}

static void expect_filled(const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        cr_assert_eq(p[i], (unsigned char)(i * 7 + 3), "byte %zu of %zu", i, n);
}

Test(ev_alloc, a_freed_block_serves_the_next_of_its_class)
{
    void *p, *q, *other;

    if (!tg_ev_alloc_recycles())
        cr_skip("this build does not recycle (AddressSanitizer)");
    tg_ev_alloc_drain();
    p = tg_ev_malloc(100);
    cr_assert_not_null(p);
    tg_ev_free(p);
    q = tg_ev_malloc(97); /* the same 16-byte class as 100 */
    cr_assert_eq(q, p);
    other = tg_ev_malloc(200);
    cr_assert_neq(other, p);
    tg_ev_free(q);
    tg_ev_free(other);
    cr_assert_eq(tg_ev_alloc_drain(), 2);
}

Test(ev_alloc, blocks_are_usable_to_their_size_and_aligned)
{
    size_t sizes[] = {0, 1, 15, 16, 17, 511, 512, 513, 4096, 100000};
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = tg_ev_malloc(sizes[i]);

        cr_assert_not_null(p, "size %zu", sizes[i]);
        cr_assert_eq((uintptr_t)p % 16, 0, "size %zu misaligned", sizes[i]);
        fill(p, sizes[i]);
        expect_filled(p, sizes[i]);
        tg_ev_free(p);
    }
    tg_ev_free(NULL);
    tg_ev_alloc_drain();
}

Test(ev_alloc, realloc_keeps_the_contents_across_classes)
{
    size_t steps[] = {10, 16, 40, 300, 512, 513, 5000, 200, 8, 1000, 64};
    size_t i, kept = 0;
    unsigned char *p = tg_ev_realloc(NULL, 1);

    cr_assert_not_null(p);
    fill(p, 1);
    kept = 1;
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t n = steps[i], common = kept < n ? kept : n;

        p = tg_ev_realloc(p, n);
        cr_assert_not_null(p, "realloc to %zu", n);
        expect_filled(p, common);
        fill(p, n);
        kept = n;
    }
    tg_ev_free(p);
    tg_ev_alloc_drain();
}

Test(ev_alloc, realloc_within_its_class_keeps_the_block)
{
    void *p = tg_ev_malloc(40), *q;

    if (!tg_ev_alloc_recycles())
        cr_skip("this build does not recycle (AddressSanitizer)");
    q = tg_ev_realloc(p, 48);
    cr_assert_eq(q, p);
    tg_ev_free(q);
    tg_ev_alloc_drain();
}

Test(ev_alloc, what_is_kept_is_bounded)
{
    enum { N = 2000 };
    static void *p[N];
    size_t i, kept;

    if (!tg_ev_alloc_recycles())
        cr_skip("this build does not recycle (AddressSanitizer)");
    tg_ev_alloc_drain();
    for (i = 0; i < N; i++)
        p[i] = tg_ev_malloc(64);
    for (i = 0; i < N; i++)
        tg_ev_free(p[i]);
    kept = tg_ev_alloc_drain();
    cr_assert_gt(kept, 0);
    cr_assert_lt(kept, N, "every freed block was kept");
    cr_assert_eq(tg_ev_alloc_drain(), 0);
}

/* libevent on the allocator: buffers and header lists, made and freed. */
Test(ev_alloc, libevent_runs_on_it)
{
    struct evkeyvalq headers;
    struct evbuffer *b;
    int round;

    tg_ev_alloc_install();
    for (round = 0; round < 100; round++) {
        TAILQ_INIT(&headers);
        cr_assert_eq(evhttp_add_header(&headers, "X-One", "1"), 0);
        cr_assert_eq(evhttp_add_header(&headers, "X-Two", "two"), 0);
        cr_assert_str_eq(evhttp_find_header(&headers, "x-two"), "two");
        evhttp_clear_headers(&headers);
        b = evbuffer_new();
        cr_assert_not_null(b);
        evbuffer_add_printf(b, "%d:%s", round, "abc");
        cr_assert_eq(evbuffer_get_length(b),
                     strlen("abc") + 1 + (round < 10 ? 1 : 2));
        evbuffer_free(b);
    }
}

Test(ev_alloc, buffers_are_recycled_by_power_of_two)
{
    void *p, *q, *big;

    if (!tg_ev_alloc_recycles())
        cr_skip("this build does not recycle (AddressSanitizer)");
    tg_ev_alloc_drain();
    p = tg_ev_malloc(4096); /* an evbuffer chain's size */
    tg_ev_free(p);
    q = tg_ev_malloc(3000); /* the same 4 KiB class */
    cr_assert_eq(q, p);
    tg_ev_free(q);
    big = tg_ev_malloc(16385); /* above the largest class */
    cr_assert_not_null(big);
    tg_ev_free(big);
    cr_assert_eq(tg_ev_alloc_drain(), 1, "only the 4 KiB block is kept");
}
