/*
 * usage_log.c - one JSON line per provider call, when usage_log is set
 * (PRODUCT.md section 5, "Accounting").
 *
 * A line is written when an attempt ends: the call that served the answer,
 * and also every attempt that failed over or was retried, and a stream cut
 * short, since the provider may bill those tokens too. Lines are written as
 * tg_logfile.h says. Keys are never written: key_id is the start of the
 * key's hash.
 */
#include <event2/buffer.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_http.h"
#include "tg_json.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define KEY_ID_LEN 16

/* Lines are built with plain appends, not printf, which cost more than
 * the rest of the line: this runs for every call. A member's name comes
 * with its punctuation as one literal, so it is one append. */
#define NAME(key) ",\"" key "\":", sizeof(",\"" key "\":") - 1

static void add_name(struct evbuffer *b, const char *name, size_t len)
{
    evbuffer_add(b, name, len);
}

static void add_int(struct evbuffer *b, const char *name, size_t len, int64_t v)
{
    add_name(b, name, len);
    tg_json_write_int(b, v);
}

static void add_key(struct evbuffer *b, const char *name, size_t name_len,
                    const char *value, size_t len)
{
    add_name(b, name, name_len);
    if (value == NULL)
        evbuffer_add(b, "null", 4);
    else
        tg_json_write_str(b, value, len);
}

/* The formatted second is kept: strftime once a second, not per line. */
static void add_time(struct evbuffer *b)
{
    static time_t second = -1;
    static char when[32];
    static size_t when_len;
    struct timeval tv;
    struct tm tm;
    char ms[4];

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != second) {
        gmtime_r(&tv.tv_sec, &tm);
        when_len = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S.", &tm);
        second = tv.tv_sec;
    }
    ms[0] = (char)('0' + tv.tv_usec / 100000);
    ms[1] = (char)('0' + tv.tv_usec / 10000 % 10);
    ms[2] = (char)('0' + tv.tv_usec / 1000 % 10);
    ms[3] = 'Z';
    evbuffer_add(b, "{\"time\":\"", 9);
    evbuffer_add(b, when, when_len);
    evbuffer_add(b, ms, 4);
    evbuffer_add(b, "\"", 1);
}

/* Who called, and what for. */
static void add_caller(struct evbuffer *b, const struct tg_req *r)
{
    add_key(b, NAME("request_id"), r->id, strlen(r->id));
    add_key(b, NAME("team"), r->team->name, strlen(r->team->name));
    add_key(b, NAME("key_id"), r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    add_key(b, NAME("surface"), r->front->name, strlen(r->front->name));
    add_key(b, NAME("model_requested"), r->model_name.ptr, r->model_name.len);
    if (r->job_id != NULL)
        add_key(b, NAME("job_id"), r->job_id, strlen(r->job_id));
    if (r->purpose.len > 0)
        add_key(b, NAME("purpose"), r->purpose.ptr, r->purpose.len);
}

/* Which candidate was called, and on which try. */
static void add_route(struct evbuffer *b, const struct tg_req *r)
{
    const struct tg_model *m = r->model;

    add_key(b, NAME("provider"), m->provider->name, strlen(m->provider->name));
    add_key(b, NAME("model"), m->name, strlen(m->name));
    add_key(b, NAME("upstream_model"), m->upstream_id, strlen(m->upstream_id));
    add_int(b, NAME("attempt"), r->n_attempts);
    add_int(b, NAME("fallbacks"), r->n_fallbacks);
    add_int(b, NAME("retries"), r->n_retries);
    add_name(b, NAME("stream"));
    if (r->chat.is_stream)
        evbuffer_add(b, "true", 4);
    else
        evbuffer_add(b, "false", 5);
}

static void add_usage(struct evbuffer *b, const struct tg_req *r)
{
    struct tg_usage u = tg_quota_used(r);
    int64_t cost = tg_quota_cost(r->model, &u);

    add_int(b, NAME("prompt_tokens"), u.prompt_tokens);
    add_int(b, NAME("completion_tokens"), u.completion_tokens);
    add_name(b, NAME("cost_usd"));
    tg_json_write_fixed(b, cost, TG_SHM_NANO_USD, 9);
}

/* How it went: timings, the status answered, and why it failed. */
static void add_outcome(struct evbuffer *b, const struct tg_req *r,
                        const struct tg_event *ev)
{
    int64_t now = tg_now_us(), first = r->call.first_byte_us;
    int status = ev == NULL ? 499 : ev->type == TG_EV_DONE ? 200 : ev->status;

    add_name(b, NAME("latency_ms"));
    tg_json_write_fixed(b, now - r->attempt_started_us, 1000, 3);
    add_name(b, NAME("ttft_ms"));
    if (first > 0)
        tg_json_write_fixed(b, first - r->attempt_started_us, 1000, 3);
    else
        evbuffer_add(b, "null", 4);
    add_int(b, NAME("status"), status);
    if (ev != NULL && ev->type == TG_EV_ERROR)
        add_key(b, NAME("error"), ev->text.ptr, ev->text.len);
    else if (ev == NULL)
        add_key(b, NAME("error"), "the client went away", 20);
    else
        add_key(b, NAME("error"), NULL, 0);
    evbuffer_add(b, "}\n", 2);
}

void tg_usage_log_write(const struct tg_req *r, const struct tg_event *ev)
{
    struct tg_worker *w = r->worker;
    struct evbuffer *b;

    if (!tg_logfile_wants(&w->usage_log))
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    add_time(b);
    add_caller(b, r);
    add_route(b, r);
    add_usage(b, r);
    add_outcome(b, r, ev);
    tg_logfile_write(&w->usage_log, b);
    evbuffer_free(b);
}

void tg_usage_log_admin(const struct tg_req *r, const char *action,
                        const char *fields)
{
    struct tg_worker *w = r->worker;
    struct evbuffer *b;

    if (!tg_logfile_wants(&w->usage_log))
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    add_time(b);
    add_key(b, NAME("request_id"), r->id, strlen(r->id));
    evbuffer_add_printf(b, ",\"event\":\"admin\",\"action\":\"%s\"", action);
    add_key(b, NAME("key_id"), r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    evbuffer_add_printf(b, ",%s}\n", fields);
    tg_logfile_write(&w->usage_log, b);
    evbuffer_free(b);
}
