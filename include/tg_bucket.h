/*
 * tg_bucket.h - token-bucket arithmetic in fixed point, no locking.
 *
 * A bucket holds `level` micro-units (1e-6 of a request or token) and
 * refills continuously at capacity per minute, never above capacity. The
 * level may go below zero when a settlement finds a call used more than it
 * reserved: the debt is repaid by refill before anything is admitted again.
 * Time is nanoseconds of the wall clock (so a level written to the state
 * file means the same after a restart); a clock that goes backwards refills
 * nothing.
 */
#ifndef TG_BUCKET_H
#define TG_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

#define TG_MICRO    1000000LL
#define TG_NS_PER_S 1000000000LL
#define TG_BUCKET_PERIOD_NS                           \
    (60 * TG_NS_PER_S) /* capacity refills per minute \
                        */

struct tg_bucket {
    int64_t level;   /* micro-units; at most capacity * TG_MICRO */
    int64_t last_ns; /* when level was last refilled */
};

/* A full bucket of `capacity` (whole units) as of now_ns. */
void tg_bucket_fill(struct tg_bucket *b, int64_t capacity, int64_t now_ns);

/* Adds what refilled since b->last_ns, up to capacity, and advances
 * last_ns by the time that refill stands for. A now_ns at or before last_ns
 * (a late caller, or a clock stepped back) adds nothing and leaves last_ns;
 * a clock stepped back by more than a period re-anchors last_ns to now_ns. */
void tg_bucket_refill(struct tg_bucket *b, int64_t capacity, int64_t now_ns);

/* True when `amount` whole units are there (after refill): a take would
 * succeed. */
bool tg_bucket_has(const struct tg_bucket *b, int64_t amount);

/* Removes `amount` whole units; the caller checked tg_bucket_has. */
void tg_bucket_take(struct tg_bucket *b, int64_t amount);

/* Returns `amount` whole units (a refund), never above capacity. A
 * negative amount takes more (a call that used more than it reserved). */
void tg_bucket_put(struct tg_bucket *b, int64_t capacity, int64_t amount);

/* Nanoseconds until the bucket holds `amount` whole units; 0 when it does,
 * -1 when it never can (amount > capacity). */
int64_t tg_bucket_wait_ns(const struct tg_bucket *b, int64_t capacity,
                          int64_t amount);

/* Nanoseconds until the bucket is full again. */
int64_t tg_bucket_reset_ns(const struct tg_bucket *b, int64_t capacity);

/* Whole units available now (floor; 0 when in debt). */
int64_t tg_bucket_remaining(const struct tg_bucket *b);

/* Applies a new capacity keeping what was used: the level moves by the
 * difference, so raising rpm from 10 to 20 with 10 used leaves 10. */
void tg_bucket_resize(struct tg_bucket *b, int64_t old_capacity,
                      int64_t new_capacity);

#endif
