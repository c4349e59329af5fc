/*
 * wire_harness.c - see wire_harness.h.
 */
#include "wire_harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"

static void record_tool(struct harness *h, const struct tg_event *ev)
{
    struct harness_tool *t;

    cr_assert(ev->index >= 0 && ev->index < 16, "tool index %d", ev->index);
    t = &h->tools[ev->index];
    if (ev->type == TG_EV_TOOL_START) {
        snprintf(t->id, sizeof(t->id), "%.*s", (int)ev->id.len, ev->id.ptr);
        snprintf(t->name, sizeof(t->name), "%.*s", (int)ev->name.len,
                 ev->name.ptr);
        if (ev->index >= h->n_tools)
            h->n_tools = ev->index + 1;
    } else if (ev->type == TG_EV_TOOL_DELTA) {
        strncat(t->args, ev->text.ptr,
                ev->text.len < sizeof(t->args) - strlen(t->args) - 1
                    ? ev->text.len
                    : sizeof(t->args) - strlen(t->args) - 1);
    } else {
        t->is_ended = true;
    }
}

static int record(struct tg_call *call, const struct tg_event *ev)
{
    struct harness *h = call->ctx;

    cr_assert_lt(h->n_events, HARNESS_MAX_EVENTS);
    h->types[h->n_events++] = ev->type;
    switch (ev->type) {
    case TG_EV_TEXT:
        cr_assert_lt(h->text_len + ev->text.len, sizeof(h->text));
        memcpy(h->text + h->text_len, ev->text.ptr, ev->text.len);
        h->text_len += ev->text.len;
        h->text[h->text_len] = '\0';
        break;
    case TG_EV_TOOL_START:
    case TG_EV_TOOL_DELTA:
    case TG_EV_TOOL_END: record_tool(h, ev); break;
    case TG_EV_STOP:
        h->has_stop = true;
        h->stop = ev->stop_reason;
        break;
    default: break;
    }
    return TG_OK;
}

void harness_init(struct harness *h, const struct tg_wire *wire,
                  enum tg_provider_type type, const char *upstream_id,
                  bool is_stream)
{
    memset(h, 0, sizeof(*h));
    h->provider.name = "test";
    h->provider.type = type;
    h->provider.api_key = "test-key";
    h->provider.region = "us-east-1";
    h->provider.access_key_id = "AKIDTEST";
    h->provider.secret_access_key = "test-secret";
    h->provider.session_token = "";
    h->provider.base_url = "http://127.0.0.1:1";
    h->model.name = "test-model";
    h->model.provider = &h->provider;
    h->model.upstream_id = (char *)upstream_id;
    h->chat.is_stream = is_stream;
    h->call.chat = &h->chat;
    h->call.model = &h->model;
    h->call.on_event = record;
    h->call.ctx = h;
    h->w.call = &h->call;
    h->w.wire = wire;
    h->w.is_stream = is_stream;
    tg_arena_init(&h->w.arena, 4096);
}

void harness_free(struct harness *h)
{
    tg_arena_free(&h->w.arena);
}

char *harness_read_data(const char *relative, size_t *len)
{
    const char *root = getenv("TG_SHARED_DATA");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", root ? root : "../shared/data",
             relative);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "missing test data %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

int harness_decode_body_file(struct harness *h, const char *relative)
{
    size_t n;
    char *body = harness_read_data(relative, &n);
    int rc = h->w.wire->decode_body(&h->w, body, n);

    free(body);
    return rc;
}

static int on_sse(void *ctx, const char *event, size_t event_len,
                  const char *data, size_t len)
{
    struct harness *h = ctx;

    return h->w.wire->decode_sse(&h->w, event, event_len, data, len);
}

int harness_decode_sse_file(struct harness *h, const char *relative)
{
    struct tg_sse sse;
    size_t n;
    char *body = harness_read_data(relative, &n);
    int rc;

    tg_sse_init(&sse, 1u << 20);
    rc = tg_sse_feed(&sse, body, n, on_sse, h);
    if (rc == 0)
        rc = tg_sse_finish(&sse, on_sse, h);
    tg_sse_free(&sse);
    free(body);
    return rc;
}

int harness_decode_frames_file(struct harness *h, const char *relative)
{
    struct tg_es_message m;
    size_t n, at = 0, used;
    char *bytes = harness_read_data(relative, &n), err[128];
    int rc = TG_OK;

    while (rc == TG_OK && at < n) {
        rc = tg_es_decode((const uint8_t *)bytes + at, n - at, &m, &used, err,
                          sizeof(err));
        cr_assert_eq(rc, TG_OK, "%s: frame at %zu: %s", relative, at, err);
        rc = h->w.wire->decode_frame(&h->w, &m);
        at += used;
    }
    free(bytes);
    return rc;
}

const char *harness_encode(struct harness *h, struct tg_wire_request *req)
{
    size_t n;
    char *text;

    memset(req, 0, sizeof(*req));
    req->body = evbuffer_new();
    cr_assert_eq(h->w.wire->encode(&h->w, req), TG_OK);
    n = evbuffer_get_length(req->body);
    text = tg_arena_strndup(&h->w.arena,
                            (const char *)evbuffer_pullup(req->body, -1), n);
    evbuffer_free(req->body);
    req->body = NULL;
    return text;
}
