/*
 * access_log.c - one JSON line per HTTP request, when access_log is set.
 *
 * Each line is written with a single write(2) to a file opened O_APPEND, so
 * lines from all workers land whole and in order of completion. A log that
 * cannot be opened or written never stops serving: the worker says so once
 * in the process log and goes on (SIGUSR1 tries again).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_http.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_worker.h"

void tg_access_log_open(struct tg_worker *w)
{
    const char *path = w->cfg->access_log;

    if (path[0] == '\0')
        return;
    w->access_log_fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (w->access_log_fd < 0)
        tg_log_error("access_log %s: %s", path, strerror(errno));
    w->has_access_log_failed = w->access_log_fd < 0;
}

void tg_access_log_close(struct tg_worker *w)
{
    if (w->access_log_fd >= 0)
        close(w->access_log_fd);
    w->access_log_fd = -1;
}

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
    evbuffer_add_printf(b, ",\"client_gone\":%s}\n",
                        r->is_client_gone ? "true" : "false");
}

void tg_access_log_write(struct tg_worker *w, const struct tg_req *r)
{
    struct evbuffer *b;
    size_t n;

    if (w->access_log_fd < 0)
        return;
    b = evbuffer_new();
    if (b == NULL)
        return;
    format_line(b, r);
    n = evbuffer_get_length(b);
    if (write(w->access_log_fd, evbuffer_pullup(b, -1), n) != (ssize_t)n &&
        !w->has_access_log_failed) {
        w->has_access_log_failed = true;
        tg_log_error("access_log %s: write failed: %s", w->cfg->access_log,
                     strerror(errno));
    }
    evbuffer_free(b);
}
