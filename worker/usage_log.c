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

static void add_key(struct evbuffer *b, const char *key, const char *value,
                    size_t len)
{
    evbuffer_add_printf(b, ",\"%s\":", key);
    if (value == NULL)
        evbuffer_add(b, "null", 4);
    else
        tg_json_write_str(b, value, len);
}

static void add_time(struct evbuffer *b)
{
    struct timeval tv;
    struct tm tm;
    char when[32];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    evbuffer_add_printf(b, "{\"time\":\"%s.%03dZ\"", when,
                        (int)(tv.tv_usec / 1000));
}

/* Who called, and what for. */
static void add_caller(struct evbuffer *b, const struct tg_req *r)
{
    add_key(b, "request_id", r->id, strlen(r->id));
    add_key(b, "team", r->team->name, strlen(r->team->name));
    add_key(b, "key_id", r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    add_key(b, "surface", r->front->name, strlen(r->front->name));
    add_key(b, "model_requested", r->model_name.ptr, r->model_name.len);
    if (r->job_id != NULL)
        add_key(b, "job_id", r->job_id, strlen(r->job_id));
    if (r->purpose.len > 0)
        add_key(b, "purpose", r->purpose.ptr, r->purpose.len);
}

/* Which candidate was called, and on which try. */
static void add_route(struct evbuffer *b, const struct tg_req *r)
{
    const struct tg_model *m = r->model;

    add_key(b, "provider", m->provider->name, strlen(m->provider->name));
    add_key(b, "model", m->name, strlen(m->name));
    add_key(b, "upstream_model", m->upstream_id, strlen(m->upstream_id));
    evbuffer_add_printf(b,
                        ",\"attempt\":%d,\"fallbacks\":%d,\"retries\":%d,"
                        "\"stream\":%s",
                        r->n_attempts, r->n_fallbacks, r->n_retries,
                        r->chat.is_stream ? "true" : "false");
}

static void add_usage(struct evbuffer *b, const struct tg_req *r)
{
    struct tg_usage u = tg_quota_used(r);
    int64_t cost = tg_quota_cost(r->model, &u);

    evbuffer_add_printf(b,
                        ",\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                        "\"cost_usd\":%lld.%09lld",
                        (long long)u.prompt_tokens,
                        (long long)u.completion_tokens,
                        (long long)(cost / TG_SHM_NANO_USD),
                        (long long)(cost % TG_SHM_NANO_USD));
}

/* How it went: timings, the status answered, and why it failed. */
static void add_outcome(struct evbuffer *b, const struct tg_req *r,
                        const struct tg_event *ev)
{
    int64_t now = tg_now_us(), first = r->call.first_byte_us;
    int status = ev == NULL ? 499 : ev->type == TG_EV_DONE ? 200 : ev->status;

    evbuffer_add_printf(b, ",\"latency_ms\":%.3f,\"ttft_ms\":",
                        (double)(now - r->attempt_started_us) / 1000.0);
    if (first > 0)
        evbuffer_add_printf(b, "%.3f",
                            (double)(first - r->attempt_started_us) / 1000.0);
    else
        evbuffer_add(b, "null", 4);
    evbuffer_add_printf(b, ",\"status\":%d", status);
    if (ev != NULL && ev->type == TG_EV_ERROR)
        add_key(b, "error", ev->text.ptr, ev->text.len);
    else if (ev == NULL)
        add_key(b, "error", "the client went away", 20);
    else
        add_key(b, "error", NULL, 0);
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
    add_key(b, "request_id", r->id, strlen(r->id));
    evbuffer_add_printf(b, ",\"event\":\"admin\",\"action\":\"%s\"", action);
    add_key(b, "key_id", r->key_id,
            r->key_id ? strnlen(r->key_id, KEY_ID_LEN) : 0);
    evbuffer_add_printf(b, ",%s}\n", fields);
    tg_logfile_write(&w->usage_log, b);
    evbuffer_free(b);
}
