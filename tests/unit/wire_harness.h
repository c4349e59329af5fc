/*
 * wire_harness.h - drives a provider wire's encoder and decoders without a
 * network, for unit tests: recorded fixtures in, canonical events out.
 *
 * The harness owns a tg_call (chat, model, provider) and a tg_wire_call
 * whose on_event records every event; tests then read the text, the tool
 * calls, the stop reason and the usage the wire produced.
 */
#ifndef WIRE_HARNESS_H
#define WIRE_HARNESS_H

#include <event2/buffer.h>
#include <stdbool.h>

#include "tg_wire.h"

#define HARNESS_MAX_EVENTS 4096

struct harness_tool {
    char id[128];
    char name[128];
    char args[4096];
    bool is_ended;
};

struct harness {
    struct tg_provider provider;
    struct tg_model model;
    struct tg_chat chat;
    struct tg_call call;
    struct tg_wire_call w;
    enum tg_event_type types[HARNESS_MAX_EVENTS];
    int n_events;
    char text[65536];
    size_t text_len;
    struct harness_tool tools[16];
    int n_tools;
    bool has_stop;
    enum tg_stop_reason stop;
};

/* Sets up a call of `wire` to a model with upstream id `upstream_id`. */
void harness_init(struct harness *h, const struct tg_wire *wire,
                  enum tg_provider_type type, const char *upstream_id,
                  bool is_stream);
void harness_free(struct harness *h);

/* Reads a whole file from $TG_SHARED_DATA (default ../shared/data); the
 * caller frees. Aborts the test when it is missing. */
char *harness_read_data(const char *relative, size_t *len);

/* Decoding a fixture: returns what the decoders returned (TG_OK, ...). */
int harness_decode_body_file(struct harness *h, const char *relative);
int harness_decode_sse_file(struct harness *h, const char *relative);
int harness_decode_frames_file(struct harness *h, const char *relative);

/* Encodes h->chat; returns the body (NUL-terminated, in the harness'
 * arena) and fills req. */
const char *harness_encode(struct harness *h, struct tg_wire_request *req);

#endif
