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

/* A line is built in a tg_json_out and added in one append, not printf'd
 * nor appended piece by piece, which cost more than the rest of the line:
 * this runs for every call. A member's name comes with its punctuation as
 * one literal. */
#define NAME(key) ",\"" key "\":", sizeof(",\"" key "\":") - 1

static void add_int(struct tg_json_out *o, const char *name, size_t len,
                    int64_t v)
{
    tg_json_out_raw(o, name, len);
    tg_json_out_int(o, v);
}

static void add_key(struct tg_json_out *o, const char *name, size_t name_len,
                    const char *value, size_t len)
{
    tg_json_out_raw(o, name, name_len);
    if (value == NULL)
        TG_OUT_LIT(o, "null");
    else
        tg_json_out_str(o, value, len);
}

/* The formatted second is kept: strftime once a second, not per line. */
static void add_time(struct tg_json_out *o)
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
    TG_OUT_LIT(o, "{\"time\":\"");
    tg_json_out_raw(o, when, when_len);
    tg_json_out_raw(o, ms, 4);
    TG_OUT_LIT(o, "\"");
}

/* Who called, and what for. */
static void add_caller(struct tg_json_out *o, const struct tg_req *r)
{
    add_key(o, NAME("request_id"), r->id, strlen(r->id));
    add_key(o, NAME("team"), r->team->name, strlen(r->team->name));
    add_key(o, NAME("key_id"), r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    add_key(o, NAME("surface"), r->front->name, strlen(r->front->name));
    add_key(o, NAME("model_requested"), r->model_name.ptr, r->model_name.len);
    if (r->job_id != NULL)
        add_key(o, NAME("job_id"), r->job_id, strlen(r->job_id));
    if (r->purpose.len > 0)
        add_key(o, NAME("purpose"), r->purpose.ptr, r->purpose.len);
}

/* Which candidate was called, and on which try. */
static void add_route(struct tg_json_out *o, const struct tg_req *r)
{
    const struct tg_model *m = r->model;

    add_key(o, NAME("provider"), m->provider->name, strlen(m->provider->name));
    add_key(o, NAME("model"), m->name, strlen(m->name));
    add_key(o, NAME("upstream_model"), m->upstream_id, strlen(m->upstream_id));
    add_int(o, NAME("attempt"), r->n_attempts);
    add_int(o, NAME("fallbacks"), r->n_fallbacks);
    add_int(o, NAME("retries"), r->n_retries);
    if (r->chat.is_stream)
        TG_OUT_LIT(o, ",\"stream\":true");
    else
        TG_OUT_LIT(o, ",\"stream\":false");
}

static void add_usage(struct tg_json_out *o, const struct tg_req *r)
{
    struct tg_usage u = tg_quota_used(r);
    int64_t cost = tg_quota_cost(r->model, &u);

    add_int(o, NAME("prompt_tokens"), u.prompt_tokens);
    add_int(o, NAME("completion_tokens"), u.completion_tokens);
    TG_OUT_LIT(o, ",\"cost_usd\":");
    tg_json_out_fixed(o, cost, TG_SHM_NANO_USD, 9);
}

/* How it went: timings, the status answered, and why it failed. */
static void add_outcome(struct tg_json_out *o, const struct tg_req *r,
                        const struct tg_event *ev)
{
    int64_t now = tg_now_us(), first = r->call.first_byte_us;
    int status = ev == NULL ? 499 : ev->type == TG_EV_DONE ? 200 : ev->status;

    TG_OUT_LIT(o, ",\"latency_ms\":");
    tg_json_out_fixed(o, now - r->attempt_started_us, 1000, 3);
    TG_OUT_LIT(o, ",\"ttft_ms\":");
    if (first > 0)
        tg_json_out_fixed(o, first - r->attempt_started_us, 1000, 3);
    else
        TG_OUT_LIT(o, "null");
    add_int(o, NAME("status"), status);
    if (ev != NULL && ev->type == TG_EV_ERROR)
        add_key(o, NAME("error"), ev->text.ptr, ev->text.len);
    else if (ev == NULL)
        add_key(o, NAME("error"), "the client went away", 20);
    else
        add_key(o, NAME("error"), NULL, 0);
    TG_OUT_LIT(o, "}\n");
}

void tg_usage_log_write(const struct tg_req *r, const struct tg_event *ev)
{
    struct tg_worker *w = r->worker;
    struct tg_json_out o;
    struct evbuffer *b;

    if (!tg_logfile_wants(&w->usage_log))
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    tg_json_out_init(&o, b);
    add_time(&o);
    add_caller(&o, r);
    add_route(&o, r);
    add_usage(&o, r);
    add_outcome(&o, r, ev);
    tg_json_out_flush(&o);
    tg_logfile_write(&w->usage_log, b);
    evbuffer_free(b);
}

void tg_usage_log_admin(const struct tg_req *r, const char *action,
                        const char *fields)
{
    struct tg_worker *w = r->worker;
    struct tg_json_out o;
    struct evbuffer *b;

    if (!tg_logfile_wants(&w->usage_log))
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    tg_json_out_init(&o, b);
    add_time(&o);
    add_key(&o, NAME("request_id"), r->id, strlen(r->id));
    TG_OUT_LIT(&o, ",\"event\":\"admin\",\"action\":");
    tg_json_out_str(&o, action, strlen(action));
    add_key(&o, NAME("key_id"), r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    TG_OUT_LIT(&o, ",");
    tg_json_out_raw(&o, fields, strlen(fields));
    TG_OUT_LIT(&o, "}\n");
    tg_json_out_flush(&o);
    tg_logfile_write(&w->usage_log, b);
    evbuffer_free(b);
}
