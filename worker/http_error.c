/*
 * http_error.c - the answers libevent gives on its own, in our format.
 *
 * evhttp answers some requests before any callback of ours runs: a body
 * over max_body_bytes (413), headers over max_header_bytes (431 here), a
 * request line or header it cannot parse (400). libevent 2.1 has no hook for
 * these (2.2 adds evhttp_set_errorcb); it calls evhttp_send_error, which writes
 * an HTML page. libevent calls that function through its PLT, so the definition
 * below, in the executable, is the one the dynamic linker binds: it answers
 * with the OpenAI-style JSON error and an x-request-id like every other
 * response. tests/integration checks the bodies of all three cases.
 *
 * The request has no usable URI or route here, and the connection is
 * closed after the answer, as libevent's own version does.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

#include "tg_http.h"
#include "tg_json.h"
#include "tg_worker.h"

/* Header bytes of a request evhttp gave up on: the headers it parsed plus
 * what is left of the header block in the connection's input buffer. Since
 * evhttp's limit is TG_HEADER_SLACK above ours and it reads at most 4 KiB
 * at a time, a request it refused for size always counts over our limit
 * here, and a malformed small one does not. */
static size_t failed_header_bytes(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    size_t n = tg_http_header_bytes(req);
    struct evbuffer *in;
    struct evbuffer_ptr end;

    if (conn == NULL)
        return n;
    in = bufferevent_get_input(evhttp_connection_get_bufferevent(conn));
    end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    return n + (end.pos >= 0 ? (size_t)end.pos : evbuffer_get_length(in));
}

static void describe(struct evhttp_request *req, int *status, const char **code,
                     char *msg, size_t cap)
{
    const struct tg_config *cfg = tg_worker_self->cfg;

    if (*status == 413) {
        *code = "request_too_large";
        snprintf(msg, cap,
                 "Request body is larger than the limit of "
                 "%lld bytes.",
                 (long long)cfg->limits.max_body_bytes);
    } else if (failed_header_bytes(req) >
               (size_t)cfg->limits.max_header_bytes) {
        *status = 431;
        *code = "headers_too_large";
        snprintf(msg, cap,
                 "Request headers are larger than the limit of "
                 "%lld bytes.",
                 (long long)cfg->limits.max_header_bytes);
    } else {
        *status = 400;
        *code = "malformed_request";
        snprintf(msg, cap, "The HTTP request could not be parsed.");
    }
}

void evhttp_send_error(struct evhttp_request *req, int error,
                       const char *reason)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();
    char id[TG_REQ_ID_MAX + 1], msg[256];
    const char *code;
    int status = error;

    (void)reason;
    if (body == NULL || tg_worker_self == NULL) {
        if (body != NULL)
            evbuffer_free(body);
        evhttp_connection_free(evhttp_request_get_connection(req));
        return;
    }
    describe(req, &status, &code, msg, sizeof(msg));
    tg_worker_new_request_id(tg_worker_self, id);
    evbuffer_add_printf(body,
                        "{\"error\":{\"message\":\"%s\",\"type\":"
                        "\"invalid_request_error\",\"param\":null,"
                        "\"code\":\"%s\"},\"detail\":\"%s\"}",
                        msg, code, msg);
    evhttp_clear_headers(out);
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Connection", "close");
    evhttp_add_header(out, "x-request-id", id);
    evhttp_send_reply(req, status, tg_http_reason(status), body);
    evbuffer_free(body);
}
