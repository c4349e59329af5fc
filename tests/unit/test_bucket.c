/*
 * test_bucket.c - token-bucket arithmetic: refill, capacity, take, refunds,
 * debt, waits, resizing, and a clock that goes backwards.
 */
#include <criterion/criterion.h>

#include "tg_bucket.h"

#define S TG_NS_PER_S
#define M TG_MICRO

Test(bucket, starts_full)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 60, 1000);
    cr_assert_eq(b.level, 60 * M);
    cr_assert_eq(b.last_ns, 1000);
    cr_assert_eq(tg_bucket_remaining(&b), 60);
    cr_assert_eq(tg_bucket_reset_ns(&b, 60), 0);
}

Test(bucket, refills_capacity_per_minute_linearly)
{
    struct tg_bucket b = {.level = 0, .last_ns = 0};

    tg_bucket_refill(&b, 60, 1 * S); /* 60 per minute: 1 per second */
    cr_assert_eq(b.level, 1 * M);
    tg_bucket_refill(&b, 60, 1 * S + S / 2);
    cr_assert_eq(b.level, 1 * M + M / 2);
    cr_assert_eq(b.last_ns, 1 * S + S / 2);
}

Test(bucket, refill_never_exceeds_capacity)
{
    struct tg_bucket b = {.level = 59 * M, .last_ns = 0};

    tg_bucket_refill(&b, 60, 10 * S);
    cr_assert_eq(b.level, 60 * M);
    b.level = 0;
    b.last_ns = 0;
    tg_bucket_refill(&b, 60, 3600 * S); /* an hour idle: just full */
    cr_assert_eq(b.level, 60 * M);
}

Test(bucket, small_capacities_refill_fractionally)
{
    struct tg_bucket b = {.level = 0, .last_ns = 0};

    tg_bucket_refill(&b, 1, 30 * S); /* rpm 1: half a request in 30 s */
    cr_assert_eq(b.level, M / 2);
    cr_assert_not(tg_bucket_has(&b, 1));
    cr_assert_eq(tg_bucket_wait_ns(&b, 1, 1), 30 * S);
}

Test(bucket, huge_capacity_does_not_overflow)
{
    struct tg_bucket b = {.level = 0, .last_ns = 0};
    const int64_t tpm = 1000000000000LL; /* the largest tpm the config takes */

    tg_bucket_refill(&b, tpm, 30 * S);
    cr_assert_eq(b.level, tpm / 2 * M);
    tg_bucket_refill(&b, tpm, 90 * S);
    cr_assert_eq(b.level, tpm * M);
}

Test(bucket, clock_going_backwards_mints_nothing)
{
    struct tg_bucket b = {.level = 10 * M, .last_ns = 100 * S};

    tg_bucket_refill(&b, 60, 40 * S); /* 60 s into the past */
    cr_assert_eq(b.level, 10 * M);
    cr_assert_eq(b.last_ns, 100 * S);
    /* Nothing until the clock is past the last refill again, so the
     * interval 40..100 s is not refilled a second time. */
    tg_bucket_refill(&b, 60, 99 * S);
    cr_assert_eq(b.level, 10 * M);
    tg_bucket_refill(&b, 60, 105 * S);
    cr_assert_eq(b.level, 15 * M);
}

Test(bucket, clock_stepped_far_back_reanchors_without_minting)
{
    struct tg_bucket b = {.level = 10 * M, .last_ns = 7200 * S};

    tg_bucket_refill(&b, 60, 3600 * S); /* an hour back */
    cr_assert_eq(b.level, 10 * M);
    cr_assert_eq(b.last_ns, 3600 * S);
    tg_bucket_refill(&b, 60, 3605 * S);
    cr_assert_eq(b.level, 15 * M);
}

Test(bucket, late_operation_with_earlier_time_refills_once)
{
    struct tg_bucket b = {.level = 0, .last_ns = 0};

    tg_bucket_refill(&b, 60, 10 * S); /* B read 10 s and locked first */
    tg_bucket_refill(&b, 60, 9 * S);  /* A read 9 s, locked second */
    tg_bucket_refill(&b, 60, 11 * S);
    cr_assert_eq(b.level, 11 * M);
}

Test(bucket, frequent_refills_lose_no_fractions)
{
    struct tg_bucket often = {.level = 0, .last_ns = 0};
    struct tg_bucket once = {.level = 0, .last_ns = 0};
    int64_t t;

    /* rpm 7: 7e6 micro per 6e10 ns, so 59 us is 6.88 micro each time. */
    for (t = 59000; t <= 59000 * 1000; t += 59000)
        tg_bucket_refill(&often, 7, t);
    tg_bucket_refill(&once, 7, 59000 * 1000);
    cr_assert_eq(often.level, once.level);
}

Test(bucket, debt_is_repaid_even_after_a_long_idle)
{
    struct tg_bucket b = {.level = -90 * M, .last_ns = 0};

    tg_bucket_refill(&b, 60, 120 * S);
    cr_assert_eq(b.level, 30 * M);
}

Test(bucket, take_is_exact_and_refused_when_short)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 3, 0);
    cr_assert(tg_bucket_has(&b, 3));
    cr_assert_not(tg_bucket_has(&b, 4));
    tg_bucket_take(&b, 2);
    cr_assert_eq(tg_bucket_remaining(&b), 1);
    cr_assert(tg_bucket_has(&b, 1));
    tg_bucket_take(&b, 1);
    cr_assert_not(tg_bucket_has(&b, 1));
    cr_assert_eq(b.level, 0);
}

Test(bucket, settlement_refunds_the_unused_part)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 1000, 0);
    tg_bucket_take(&b, 600);            /* reserve 600 */
    tg_bucket_put(&b, 1000, 600 - 250); /* used 250 */
    cr_assert_eq(tg_bucket_remaining(&b), 750);
}

Test(bucket, refund_never_exceeds_capacity)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 100, 0);
    tg_bucket_put(&b, 100, 50);
    cr_assert_eq(b.level, 100 * M);
}

Test(bucket, overuse_becomes_debt_repaid_by_refill)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 60, 0);
    tg_bucket_take(&b, 60);
    tg_bucket_put(&b, 60, 10 - 40); /* reserved 10 of it, used 40 */
    cr_assert_eq(b.level, -30 * M);
    cr_assert_eq(tg_bucket_remaining(&b), 0);
    cr_assert_not(tg_bucket_has(&b, 1));
    cr_assert_eq(tg_bucket_wait_ns(&b, 60, 1), 31 * S);
    tg_bucket_refill(&b, 60, 31 * S);
    cr_assert(tg_bucket_has(&b, 1));
}

Test(bucket, wait_is_rounded_up_and_never_for_more_than_capacity)
{
    struct tg_bucket b = {.level = 0, .last_ns = 0};

    cr_assert_eq(tg_bucket_wait_ns(&b, 7, 1), (60 * S + 6) / 7);
    cr_assert_eq(tg_bucket_wait_ns(&b, 7, 8), -1);
    b.level = 7 * M;
    cr_assert_eq(tg_bucket_wait_ns(&b, 7, 7), 0);
}

Test(bucket, reset_is_time_to_full)
{
    struct tg_bucket b = {.level = 30 * M, .last_ns = 0};

    cr_assert_eq(tg_bucket_reset_ns(&b, 60), 30 * S);
}

Test(bucket, resize_keeps_what_was_used)
{
    struct tg_bucket b;

    tg_bucket_fill(&b, 10, 0);
    tg_bucket_take(&b, 10);
    tg_bucket_resize(&b, 10, 20);
    cr_assert_eq(tg_bucket_remaining(&b), 10);
    tg_bucket_resize(&b, 20, 5); /* 10 used of a new 5: in debt by 5 */
    cr_assert_eq(b.level, -5 * M);
    tg_bucket_fill(&b, 10, 0);
    tg_bucket_resize(&b, 10, 4); /* a full bucket stays full, no higher */
    cr_assert_eq(b.level, 4 * M);
}
