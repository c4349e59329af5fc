/*
 * tg_back.h - the provider interface: one back per provider type.
 *
 * A back turns a canonical request into a call to its provider and reports
 * what comes back as canonical events through call->on_event, as soon as
 * each arrives. The contract:
 *   - start() returns TG_DECLINED when the request cannot be expressed in
 *     the provider's format (the caller's 400), TG_ERROR when the call
 *     cannot be made, or TG_OK and then delivers events from the event loop
 *     (never from inside start itself), ending with exactly one terminal
 *     event, TG_EV_DONE or TG_EV_ERROR; after it the back has released its
 *     state and delivers nothing more.
 *   - on_event returning non-zero stops the call: the back releases its
 *     state at once and delivers nothing more (no terminal event).
 *   - cancel() stops a call that has not delivered its terminal event;
 *     nothing is delivered after it.
 */
#ifndef TG_BACK_H
#define TG_BACK_H

#include <stdint.h>

#include "tg_canon.h"
#include "tg_config.h"

struct event_base;
struct tg_call;
struct tg_upstream;

typedef int tg_event_fn(struct tg_call *call, const struct tg_event *ev);

struct tg_call {
    struct event_base *base;
    const struct tg_chat *chat;
    const struct tg_model *model; /* the candidate being called */
    struct tg_upstream *upstream; /* the worker's connection pools */
    tg_event_fn *on_event;
    void *ctx; /* the caller's; the back does not touch it */
    /* Set by the back (tg_now_us) when the provider's first byte arrives;
     * the caller zeroes it before start. */
    int64_t first_byte_us;
    void *back_state; /* the back's; NULL when no call is running */
};

struct tg_back {
    int (*start)(struct tg_call *call);
    void (*cancel)(struct tg_call *call);
};

/* The back for a provider type, or NULL when none is built in. */
const struct tg_back *tg_back_for(enum tg_provider_type type);

extern const struct tg_back tg_back_mock;
/* Every HTTP provider: back_http.c over the provider's wire format. */
extern const struct tg_back tg_back_http;

#endif
