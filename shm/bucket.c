/*
 * bucket.c - token-bucket arithmetic (see tg_bucket.h).
 *
 * Integers only: levels in micro-units, time in nanoseconds. Refill is
 * elapsed * capacity / period, computed in 128 bits because elapsed (up to
 * a minute, 6e10 ns) times a capacity in micro-units (up to 1e18) does not
 * fit in 64. Elapsed time is capped at one period: a bucket empty for longer
 * is full anyway.
 */
#include "tg_bucket.h"

static int64_t micro(int64_t units)
{
    return units * TG_MICRO;
}

void tg_bucket_fill(struct tg_bucket *b, int64_t capacity, int64_t now_ns)
{
    b->level = micro(capacity);
    b->last_ns = now_ns;
}

void tg_bucket_refill(struct tg_bucket *b, int64_t capacity, int64_t now_ns)
{
    int64_t full = micro(capacity), elapsed = now_ns - b->last_ns;
    __int128 add;

    b->last_ns = now_ns;
    if (elapsed <= 0 || b->level >= full)
        return;
    if (elapsed > TG_BUCKET_PERIOD_NS)
        elapsed = TG_BUCKET_PERIOD_NS;
    add = (__int128)elapsed * full / TG_BUCKET_PERIOD_NS;
    b->level = full - b->level <= add ? full : b->level + (int64_t)add;
}

bool tg_bucket_has(const struct tg_bucket *b, int64_t amount)
{
    return b->level >= micro(amount);
}

void tg_bucket_take(struct tg_bucket *b, int64_t amount)
{
    b->level -= micro(amount);
}

void tg_bucket_put(struct tg_bucket *b, int64_t capacity, int64_t amount)
{
    int64_t full = micro(capacity);

    b->level += micro(amount);
    if (b->level > full)
        b->level = full;
}

/* Nanoseconds for the bucket to gain `need` micro-units, rounded up so the
 * caller who waits that long finds them there. */
static int64_t time_for(int64_t need, int64_t capacity)
{
    __int128 ns = (__int128)need * TG_BUCKET_PERIOD_NS;
    int64_t full = micro(capacity);

    return (int64_t)((ns + full - 1) / full);
}

int64_t tg_bucket_wait_ns(const struct tg_bucket *b, int64_t capacity,
                          int64_t amount)
{
    if (amount > capacity)
        return -1;
    if (b->level >= micro(amount))
        return 0;
    return time_for(micro(amount) - b->level, capacity);
}

int64_t tg_bucket_reset_ns(const struct tg_bucket *b, int64_t capacity)
{
    int64_t full = micro(capacity);

    return b->level >= full ? 0 : time_for(full - b->level, capacity);
}

int64_t tg_bucket_remaining(const struct tg_bucket *b)
{
    return b->level > 0 ? b->level / TG_MICRO : 0;
}

void tg_bucket_resize(struct tg_bucket *b, int64_t old_capacity,
                      int64_t new_capacity)
{
    b->level += micro(new_capacity) - micro(old_capacity);
    if (b->level > micro(new_capacity))
        b->level = micro(new_capacity);
}
