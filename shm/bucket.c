/*
 * bucket.c - token-bucket arithmetic (see tg_bucket.h).
 *
 * Integers only: levels in micro-units, time in nanoseconds. Refill is
 * elapsed * capacity / period, computed in 128 bits because elapsed times
 * a capacity in micro-units (up to 1e18) does not fit in 64.
 */
#include "tg_bucket.h"

/* Longer idle than this refills as if it were this long: enough to repay
 * any debt and fill any bucket, and small enough for 128-bit arithmetic. */
#define TG_BUCKET_MAX_ELAPSED_NS (1000 * TG_BUCKET_PERIOD_NS)

static int64_t micro(int64_t units)
{
    return units * TG_MICRO;
}

void tg_bucket_fill(struct tg_bucket *b, int64_t capacity, int64_t now_ns)
{
    b->level = micro(capacity);
    b->last_ns = now_ns;
}

/*
 * Two rules keep refill exact when many processes touch a bucket:
 * - last_ns never moves back. Processes read the clock before they take the
 *   lock, so an operation often arrives with a time earlier than the last
 *   one's; moving last_ns back would refill that interval a second time.
 *   (Only a clock stepped back by more than a period re-anchors, so refill
 *   cannot stall for longer than that.)
 * - last_ns advances by the time actually turned into level, not to now:
 *   the fraction of a micro-unit that did not fit carries over, so touching
 *   a bucket often refills exactly as much as touching it rarely.
 */
void tg_bucket_refill(struct tg_bucket *b, int64_t capacity, int64_t now_ns)
{
    int64_t full = micro(capacity), elapsed = now_ns - b->last_ns;
    __int128 add;

    if (elapsed <= 0) {
        if (-elapsed > TG_BUCKET_PERIOD_NS)
            b->last_ns = now_ns;
        return;
    }
    if (elapsed > TG_BUCKET_MAX_ELAPSED_NS)
        elapsed = TG_BUCKET_MAX_ELAPSED_NS;
    add = (__int128)elapsed * full / TG_BUCKET_PERIOD_NS;
    if (b->level >= full || full - b->level <= add) {
        b->level = b->level > full ? b->level : full;
        b->last_ns = now_ns;
        return;
    }
    b->level += (int64_t)add;
    b->last_ns += (int64_t)(add * TG_BUCKET_PERIOD_NS / full);
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
