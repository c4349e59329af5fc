/*
 * tg_upstream.h - HTTP/1.1 exchanges with providers, over TCP or TLS.
 *
 * Each worker has one struct tg_upstream: per provider, a pool of at most
 * max_connections keep-alive connections, and a queue for requests that
 * wait for one. A request's answer is reported as it arrives: the status
 * and head once, the body in pieces (decoded from its framing), then the
 * end (or the failure).
 */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include <stddef.h>

#include "tg_config.h"

struct event_base;
struct evbuffer;
struct tg_http_reader;
struct tg_upstream;
struct tg_up_req;

/* Why an exchange failed before a complete answer. */
enum tg_up_error {
    TG_UP_OK = 0,
    TG_UP_CONNECT,    /* connection refused, reset, DNS */
    TG_UP_TLS,        /* handshake or certificate check failed */
    TG_UP_FIRST_BYTE, /* nothing within first_byte_timeout_ms */
    TG_UP_TIMEOUT,    /* the whole exchange exceeded timeout_ms */
    TG_UP_CLOSED,     /* the connection closed before the answer ended */
    TG_UP_PROTOCOL,   /* not an HTTP answer we can read */
};

struct tg_up_callbacks {
    /* Status and headers have arrived; read a header with
     * tg_http_reader_header(head, ...) during this call only. */
    void (*on_head)(void *ctx, int status, const struct tg_http_reader *head);
    /* A piece of the body. Returns non-zero to stop (the exchange is then
     * cancelled and on_end is not called). */
    int (*on_body)(void *ctx, const char *data, size_t len);
    /* The exchange is over: TG_UP_OK, or why not (with a description).
     * The request is freed after this returns. */
    void (*on_end)(void *ctx, enum tg_up_error error, const char *why);
};

struct tg_up_header {
    const char *name;
    const char *value;
};

/* Per-worker pools for the providers of cfg. NULL when out of memory or a
 * TLS context cannot be made (logged). */
struct tg_upstream *tg_upstream_new(struct event_base *base,
                                    const struct tg_config *cfg);

/* Cancels everything in flight (without callbacks) and frees. */
void tg_upstream_free(struct tg_upstream *u);

/*
 * Sends METHOD base_url-path + `path` (path starts with '/', may carry a
 * query) to provider p with the headers and body given (body may be NULL;
 * it is drained). Host and Content-Length are added; a header whose name
 * or value holds CR or LF is dropped. The connection is kept alive (the
 * HTTP/1.1 default) unless the answer says otherwise. Returns the request
 * (for tg_up_cancel), or NULL when it cannot be sent at all (then no
 * callback is called). No callback is called before this returns.
 */
struct tg_up_req *tg_up_send(struct tg_upstream *u, const struct tg_provider *p,
                             const char *method, const char *path,
                             const struct tg_up_header *headers,
                             size_t n_headers, struct evbuffer *body,
                             const struct tg_up_callbacks *cb, void *ctx);

/* Stops an exchange; no callback is called afterwards. */
void tg_up_cancel(struct tg_up_req *r);

/* The Host header for host and port: an IPv6 address in brackets, the port
 * only when it is not the scheme's default. Signers must use the same. */
void tg_up_host_header(const char *host, int port, int is_tls, char *out,
                       size_t cap);

/* The host and port base_url names, and its path ("" or "/v1"). */
int tg_up_split_url(const char *url, char *host, size_t host_cap, int *port,
                    int *is_tls, const char **path);

#endif
