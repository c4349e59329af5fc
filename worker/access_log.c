/*
 * access_log.c - one JSON line per HTTP request, when access_log is set
 * (written as tg_logfile.h says).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg.h"
#include "tg_http.h"
#include "tg_json.h"
#include "tg_worker.h"

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static void format_line(struct evbuffer *b, const struct tg_req *r)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    const char *uri = r->http ? evhttp_request_get_uri(r->http) : NULL;

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    evbuffer_add_printf(b, "{\"time\":\"%s\",\"request_id\":", when);
    tg_json_write_str(b, r->id, strlen(r->id));
    evbuffer_add_printf(
        b, ",\"method\":\"%s\",\"path\":",
        r->http ? method_name(evhttp_request_get_command(r->http)) : "-");
    tg_json_write_str(b, uri ? uri : "-", uri ? strlen(uri) : 1);
    evbuffer_add_printf(b,
                        ",\"status\":%d,\"bytes\":%llu,"
                        "\"duration_ms\":%.3f,\"team\":",
                        r->status, (unsigned long long)r->bytes_sent,
                        (double)(tg_now_us() - r->started_us) / 1000.0);
    if (r->team != NULL)
        tg_json_write_str(b, r->team->name, strlen(r->team->name));
    else
        evbuffer_add(b, "null", 4);
    /* Which worker served it: ties a request to that worker's log. */
    evbuffer_add_printf(b, ",\"client_gone\":%s,\"pid\":%d}\n",
                        r->is_client_gone ? "true" : "false", (int)getpid());
}

void tg_access_log_write(struct tg_worker *w, const struct tg_req *r)
{
    struct evbuffer *b;

    if (!tg_logfile_wants(&w->access_log))
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    format_line(b, r);
    tg_logfile_write(&w->access_log, b);
    evbuffer_free(b);
}
