/*
 * upstream.c - the worker's HTTP client to providers (see tg_upstream.h).
 *
 * libevent's evhttp client does the HTTP; this file adds what a gateway
 * needs around it: a bounded pool of keep-alive connections per provider
 * (requests wait in a queue when all are busy), TLS through
 * bufferevent_openssl with certificate and host name checks, and three
 * timers per exchange:
 *   connect: no TCP connection (and TLS session) within
 *            connect_timeout_ms;
 *   first byte: no status line within first_byte_timeout_ms;
 *   total: the exchange is not over within timeout_ms.
 * A TLS connection that closes is replaced rather than reconnected, since
 * an SSL object cannot be reused. Connections are freed outside their own
 * callbacks (pgbouncer's rule), through a zero-delay event.
 */
#include "tg_upstream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tg.h"
#include "tg_log.h"

#define HOST_MAX 256

struct conn {
    struct evhttp_connection *evcon; /* NULL until first use / after close */
    struct tg_up_req *req;           /* the exchange on it, if any */
    struct pool *pool;
    SSL *ssl; /* for reading certificate errors */
};

struct pool {
    const struct tg_provider *provider;
    struct tg_upstream *u;
    char host[HOST_MAX];
    int port;
    int is_tls;
    const char *base_path;
    SSL_CTX *tls;
    struct conn *conns;
    size_t n_conns;
    struct tg_up_req *waiting_head, *waiting_tail;
};

struct tg_upstream {
    struct event_base *base;
    struct evdns_base *dns;
    struct pool *pools;
    size_t n_pools;
    struct event *reaper; /* frees closed connections outside callbacks */
    struct evhttp_connection **dead;
    size_t n_dead, cap_dead;
};

struct tg_up_req {
    struct pool *pool;
    struct conn *conn;           /* NULL while waiting for one */
    struct evhttp_request *http; /* NULL until sent */
    struct tg_up_req *next_waiting;
    char *method_path; /* "POST\0/v1/chat/completions" */
    size_t method_len;
    struct tg_up_header *headers; /* copies */
    size_t n_headers;
    struct evbuffer *body;
    const struct tg_up_callbacks *cb;
    void *ctx;
    struct event *t_connect, *t_first_byte, *t_total;
    enum tg_up_error error;
    char why[256];
    int has_head;
    int is_stopped;
};

static void send_now(struct tg_up_req *r, struct conn *c);

/* ---- parsing base_url ------------------------------------------------ */

int tg_up_split_url(const char *url, char *host, size_t host_cap, int *port,
                    int *is_tls, const char **path)
{
    const char *p, *end;
    size_t n;

    *is_tls = strncmp(url, "https://", 8) == 0;
    if (!*is_tls && strncmp(url, "http://", 7) != 0)
        return TG_ERROR;
    p = url + (*is_tls ? 8 : 7);
    end = p + strcspn(p, "/");
    *path = end;
    *port = *is_tls ? 443 : 80;
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL)
            return TG_ERROR;
        n = (size_t)(close - p - 1);
        p++;
        end = close + 1;
        if (*end == ':')
            *port = atoi(end + 1);
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
        if (colon != NULL)
            *port = atoi(colon + 1);
    }
    if (n == 0 || n >= host_cap || *port <= 0 || *port > 65535)
        return TG_ERROR;
    memcpy(host, p, n);
    host[n] = '\0';
    return TG_OK;
}

void tg_up_host_header(const char *host, int port, int is_tls, char *out,
                       size_t cap)
{
    int is_v6 = strchr(host, ':') != NULL;
    int is_default = port == (is_tls ? 443 : 80);
    size_t n;

    snprintf(out, cap, "%s%s%s", is_v6 ? "[" : "", host, is_v6 ? "]" : "");
    n = strlen(out);
    if (!is_default)
        snprintf(out + n, cap - n, ":%d", port);
}

/* ---- TLS ---------------------------------------------------------------- */

static SSL_CTX *make_tls(const struct tg_provider *p)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (!p->tls_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((p->ca_file[0] != '\0'
             ? SSL_CTX_load_verify_locations(ctx, p->ca_file, NULL)
             : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        tg_log_error("provider %s: cannot load CA certificates%s%s", p->name,
                     p->ca_file[0] ? " from " : "", p->ca_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* SNI and the name (or IP address) the certificate must carry. */
static SSL *make_ssl(struct pool *pool)
{
    SSL *ssl = SSL_new(pool->tls);
    X509_VERIFY_PARAM *param;
    int is_ip = strchr(pool->host, ':') != NULL ||
                strspn(pool->host, "0123456789.") == strlen(pool->host);

    if (ssl == NULL)
        return NULL;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, pool->host);
    if (pool->provider->tls_verify) {
        param = SSL_get0_param(ssl);
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, pool->host) != 1
                  : SSL_set1_host(ssl, pool->host) != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/* ---- connections ------------------------------------------------------- */

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct tg_upstream *u = arg;
    size_t i;

    (void)fd;
    (void)what;
    for (i = 0; i < u->n_dead; i++)
        evhttp_connection_free(u->dead[i]);
    u->n_dead = 0;
}

/* Frees an evhttp connection after the current callback has returned. */
static void bury(struct tg_upstream *u, struct evhttp_connection *evcon)
{
    if (u->n_dead == u->cap_dead) {
        size_t cap = u->cap_dead ? u->cap_dead * 2 : 16;
        struct evhttp_connection **d = realloc(u->dead, cap * sizeof(*d));
        if (d == NULL)
            return; /* leaks one connection rather than freeing it early */
        u->dead = d;
        u->cap_dead = cap;
    }
    u->dead[u->n_dead++] = evcon;
    event_active(u->reaper, EV_TIMEOUT, 0);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;

    (void)evcon;
    if (!c->pool->is_tls)
        return; /* evhttp reconnects a plain TCP connection itself */
    evhttp_connection_set_closecb(c->evcon, NULL, NULL);
    bury(c->pool->u, c->evcon);
    c->evcon = NULL;
    c->ssl = NULL;
}

static int open_conn(struct conn *c)
{
    struct pool *pool = c->pool;
    struct event_base *base = pool->u->base;
    struct bufferevent *bev = NULL;
    int timeout_s = (pool->provider->timeout_ms + 999) / 1000;

    if (pool->is_tls) {
        c->ssl = make_ssl(pool);
        if (c->ssl == NULL)
            return TG_ERROR;
        bev = bufferevent_openssl_socket_new(
            base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING,
            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(c->ssl);
            c->ssl = NULL;
            return TG_ERROR;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    c->evcon = evhttp_connection_base_bufferevent_new(
        base, pool->u->dns, bev, pool->host, (ev_uint16_t)pool->port);
    if (c->evcon == NULL)
        return TG_ERROR;
    /* An inactivity limit on the socket; the exchange's own timers are
     * tighter. No retries: a failed exchange is reported, not replayed. */
    evhttp_connection_set_timeout(c->evcon, timeout_s);
    evhttp_connection_set_retries(c->evcon, 0);
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    return TG_OK;
}

static struct conn *idle_conn(struct pool *pool)
{
    size_t i;

    for (i = 0; i < pool->n_conns; i++)
        if (pool->conns[i].req == NULL && (pool->conns[i].evcon != NULL ||
                                           open_conn(&pool->conns[i]) == TG_OK))
            return &pool->conns[i];
    return NULL;
}

/* ---- one exchange ------------------------------------------------------ */

static void stop_timers(struct tg_up_req *r)
{
    if (r->t_connect)
        event_del(r->t_connect);
    if (r->t_first_byte)
        event_del(r->t_first_byte);
    if (r->t_total)
        event_del(r->t_total);
}

static void req_free(struct tg_up_req *r)
{
    size_t i;

    if (r->t_connect)
        event_free(r->t_connect);
    if (r->t_first_byte)
        event_free(r->t_first_byte);
    if (r->t_total)
        event_free(r->t_total);
    for (i = 0; i < r->n_headers; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    if (r->body)
        evbuffer_free(r->body);
    free(r->method_path);
    free(r);
}

/* Gives the connection to the next waiting request, if any. */
static void release_conn(struct conn *c)
{
    struct pool *pool = c->pool;
    struct tg_up_req *next = pool->waiting_head;

    c->req = NULL;
    if (next == NULL)
        return;
    pool->waiting_head = next->next_waiting;
    if (pool->waiting_head == NULL)
        pool->waiting_tail = NULL;
    if (c->evcon == NULL && open_conn(c) != TG_OK) {
        next->error = TG_UP_CONNECT;
        snprintf(next->why, sizeof(next->why), "cannot open a connection");
        next->cb->on_end(next->ctx, next->error, next->why);
        req_free(next);
        return;
    }
    send_now(next, c);
}

static void unlink_waiting(struct tg_up_req *r)
{
    struct pool *pool = r->pool;
    struct tg_up_req **pp = &pool->waiting_head, *prev = NULL;

    while (*pp != NULL && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next_waiting;
    }
    if (*pp == NULL)
        return;
    *pp = r->next_waiting;
    if (pool->waiting_tail == r)
        pool->waiting_tail = prev;
}

/* Ends an exchange: reports it (unless stopped), frees it, frees its
 * connection for the next one. */
static void finish(struct tg_up_req *r)
{
    struct conn *c = r->conn;

    if (c == NULL)
        unlink_waiting(r); /* it timed out while queued */
    stop_timers(r);
    if (!r->is_stopped)
        r->cb->on_end(r->ctx, r->error, r->why);
    req_free(r);
    if (c != NULL)
        release_conn(c);
}

static void fail_with(struct tg_up_req *r, enum tg_up_error e, const char *fmt,
                      const char *arg)
{
    if (r->error == TG_UP_OK) {
        r->error = e;
        snprintf(r->why, sizeof(r->why), fmt, arg);
    }
}

/* Cancels the evhttp request; evhttp calls nothing of ours after it. */
static void abort_exchange(struct tg_up_req *r)
{
    struct conn *c = r->conn;

    if (r->http != NULL)
        evhttp_cancel_request(r->http);
    r->http = NULL;
    /* A cancelled exchange leaves the connection in an unknown state. */
    if (c != NULL && c->evcon != NULL) {
        evhttp_connection_set_closecb(c->evcon, NULL, NULL);
        bury(c->pool->u, c->evcon);
        c->evcon = NULL;
        c->ssl = NULL;
    }
}

static const char *tls_error(struct conn *c)
{
    static char text[200];
    unsigned long e = ERR_peek_last_error();
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

    if (v != X509_V_OK)
        snprintf(text, sizeof(text), "certificate check failed: %s",
                 X509_verify_cert_error_string(v));
    else if (e != 0)
        snprintf(text, sizeof(text), "TLS failed: %s",
                 ERR_reason_error_string(e));
    else
        return NULL;
    ERR_clear_error();
    return text;
}

static void on_http_error(enum evhttp_request_error e, void *arg)
{
    struct tg_up_req *r = arg;
    const char *tls;

    if (e == EVREQ_HTTP_REQUEST_CANCEL)
        return; /* our own tg_up_cancel or timeout */
    tls = r->pool->is_tls ? tls_error(r->conn) : NULL;
    if (tls != NULL)
        fail_with(r, TG_UP_TLS, "%s", tls);
    else if (e == EVREQ_HTTP_TIMEOUT)
        fail_with(r, TG_UP_TIMEOUT, "%s", "the connection timed out");
    else if (e == EVREQ_HTTP_EOF && r->has_head)
        fail_with(r, TG_UP_CLOSED, "%s", "the connection closed mid-answer");
    else if (e == EVREQ_HTTP_INVALID_HEADER)
        fail_with(r, TG_UP_PROTOCOL, "%s", "an unreadable HTTP answer");
    else if (r->has_head)
        fail_with(r, TG_UP_CLOSED, "%s", "the answer was cut short");
    else
        fail_with(r, TG_UP_CONNECT, "%s", "cannot connect or no answer");
}

static int on_http_head(struct evhttp_request *http, void *arg)
{
    struct tg_up_req *r = arg;

    r->has_head = 1;
    event_del(r->t_connect);
    event_del(r->t_first_byte);
    r->cb->on_head(r->ctx, evhttp_request_get_response_code(http),
                   evhttp_request_get_input_headers(http));
    return 0;
}

static void on_http_chunk(struct evhttp_request *http, void *arg)
{
    struct tg_up_req *r = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(http);
    size_t n = evbuffer_get_length(in);

    if (!r->is_stopped && n > 0 &&
        r->cb->on_body(r->ctx, (const char *)evbuffer_pullup(in, -1), n)) {
        r->is_stopped = 1;
        event_active(r->t_total, EV_TIMEOUT, 0);
    }
    evbuffer_drain(in, n);
}

static void on_http_done(struct evhttp_request *http, void *arg)
{
    struct tg_up_req *r = arg;

    r->http = NULL;
    if (http == NULL || evhttp_request_get_response_code(http) == 0)
        fail_with(r, TG_UP_CONNECT, "%s", "cannot connect or no answer");
    else
        on_http_chunk(http, r); /* whatever the last read left */
    finish(r);
}

static void add_headers(struct tg_up_req *r, struct evhttp_request *http)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(http);
    struct pool *pool = r->pool;
    char host[HOST_MAX + 16], len[24];
    size_t i;

    tg_up_host_header(pool->host, pool->port, pool->is_tls, host, sizeof(host));
    evhttp_add_header(h, "Host", host);
    for (i = 0; i < r->n_headers; i++)
        evhttp_add_header(h, r->headers[i].name, r->headers[i].value);
    snprintf(len, sizeof(len), "%zu",
             r->body ? evbuffer_get_length(r->body) : 0);
    evhttp_add_header(h, "Content-Length", len);
}

static enum evhttp_cmd_type method_of(const char *m)
{
    return strcmp(m, "GET") == 0 ? EVHTTP_REQ_GET : EVHTTP_REQ_POST;
}

static void send_now(struct tg_up_req *r, struct conn *c)
{
    struct evhttp_request *http = evhttp_request_new(on_http_done, r);
    const char *path = r->method_path + r->method_len + 1;
    char uri[2048];

    r->conn = c;
    c->req = r;
    if (http == NULL) {
        fail_with(r, TG_UP_CONNECT, "%s", "out of memory");
        finish(r);
        return;
    }
    evhttp_request_set_header_cb(http, on_http_head);
    evhttp_request_set_chunked_cb(http, on_http_chunk);
    evhttp_request_set_error_cb(http, on_http_error);
    add_headers(r, http);
    if (r->body != NULL)
        evbuffer_add_buffer(evhttp_request_get_output_buffer(http), r->body);
    snprintf(uri, sizeof(uri), "%s%s", r->pool->base_path, path);
    r->http = http;
    if (evhttp_make_request(c->evcon, http, method_of(r->method_path), uri) !=
        0) {
        r->http = NULL;
        fail_with(r, TG_UP_CONNECT, "%s", "cannot send the request");
        finish(r);
    }
}

/* Is the connection up: TCP established and, for TLS, the handshake
 * done? (evhttp writes the request only once it is, so the request's
 * bytes cannot tell.) */
static int is_connected(const struct conn *c)
{
    struct bufferevent *bev;
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    evutil_socket_t fd;

    if (c == NULL || c->evcon == NULL)
        return 0;
    if (c->pool->is_tls)
        return c->ssl != NULL && SSL_is_init_finished(c->ssl);
    bev = evhttp_connection_get_bufferevent(c->evcon);
    fd = bev ? bufferevent_getfd(bev) : -1;
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct tg_up_req *r = arg;

    (void)fd;
    (void)what;
    if (r->conn != NULL && is_connected(r->conn))
        return; /* connected; the first-byte timer takes over */
    fail_with(r, TG_UP_CONNECT, "%s",
              r->conn == NULL ? "no free connection within "
                                "connect_timeout_ms (max_connections busy)"
                              : "connect timeout");
    abort_exchange(r);
    finish(r);
}

static void on_first_byte_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct tg_up_req *r = arg;

    (void)fd;
    (void)what;
    fail_with(r, TG_UP_FIRST_BYTE, "%s",
              "no answer within first_byte_timeout_ms");
    abort_exchange(r);
    finish(r);
}

/* Also run at once (event_active) when on_body asked to stop, so that the
 * exchange is cancelled outside libevent's own callback. */
static void on_total_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct tg_up_req *r = arg;

    (void)fd;
    (void)what;
    fail_with(r, TG_UP_TIMEOUT, "%s",
              "the answer took longer than "
              "timeout_ms");
    abort_exchange(r);
    finish(r);
}

static void arm(struct event *t, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_add(t, &tv);
}

static int start_timers(struct tg_up_req *r)
{
    struct event_base *base = r->pool->u->base;
    const struct tg_provider *p = r->pool->provider;

    r->t_connect = evtimer_new(base, on_connect_timeout, r);
    r->t_first_byte = evtimer_new(base, on_first_byte_timeout, r);
    r->t_total = evtimer_new(base, on_total_timeout, r);
    if (!r->t_connect || !r->t_first_byte || !r->t_total)
        return TG_ERROR;
    arm(r->t_connect, p->connect_timeout_ms);
    arm(r->t_first_byte, p->first_byte_timeout_ms);
    arm(r->t_total, p->timeout_ms);
    return TG_OK;
}

static struct tg_up_req *req_new(struct pool *pool, const char *method,
                                 const char *path,
                                 const struct tg_up_header *headers,
                                 size_t n_headers, struct evbuffer *body)
{
    struct tg_up_req *r = calloc(1, sizeof(*r));
    size_t i, m = strlen(method), n = strlen(path);

    if (r == NULL)
        return NULL;
    r->pool = pool;
    r->method_len = m;
    r->method_path = malloc(m + n + 2);
    r->headers = calloc(n_headers + 1, sizeof(*r->headers));
    r->body = evbuffer_new();
    if (!r->method_path || !r->headers || !r->body) {
        req_free(r);
        return NULL;
    }
    memcpy(r->method_path, method, m + 1);
    memcpy(r->method_path + m + 1, path, n + 1);
    for (i = 0; i < n_headers; i++, r->n_headers++) {
        r->headers[i].name = strdup(headers[i].name);
        r->headers[i].value = strdup(headers[i].value);
    }
    if (body != NULL)
        evbuffer_add_buffer(r->body, body);
    return r;
}

static struct pool *pool_of(struct tg_upstream *u, const struct tg_provider *p)
{
    size_t i;

    for (i = 0; i < u->n_pools; i++)
        if (u->pools[i].provider == p)
            return &u->pools[i];
    return NULL;
}

struct tg_up_req *tg_up_send(struct tg_upstream *u, const struct tg_provider *p,
                             const char *method, const char *path,
                             const struct tg_up_header *headers,
                             size_t n_headers, struct evbuffer *body,
                             const struct tg_up_callbacks *cb, void *ctx)
{
    struct pool *pool = pool_of(u, p);
    struct tg_up_req *r;
    struct conn *c;

    if (pool == NULL ||
        (r = req_new(pool, method, path, headers, n_headers, body)) == NULL)
        return NULL;
    r->cb = cb;
    r->ctx = ctx;
    if (start_timers(r) != TG_OK) {
        req_free(r);
        return NULL;
    }
    c = idle_conn(pool);
    if (c != NULL) {
        send_now(r, c);
        return r;
    }
    if (pool->waiting_tail != NULL)
        pool->waiting_tail->next_waiting = r;
    else
        pool->waiting_head = r;
    pool->waiting_tail = r;
    return r;
}

void tg_up_cancel(struct tg_up_req *r)
{
    r->is_stopped = 1;
    abort_exchange(r);
    finish(r);
}

/* ---- the pools ---------------------------------------------------------- */

static int pool_init(struct tg_upstream *u, struct pool *pool,
                     const struct tg_provider *p)
{
    size_t i;

    pool->provider = p;
    pool->u = u;
    if (tg_up_split_url(p->base_url, pool->host, sizeof(pool->host),
                        &pool->port, &pool->is_tls,
                        &pool->base_path) != TG_OK) {
        tg_log_error("provider %s: cannot use base_url %s", p->name,
                     p->base_url);
        return TG_ERROR;
    }
    if (pool->is_tls && (pool->tls = make_tls(p)) == NULL)
        return TG_ERROR;
    pool->conns = calloc((size_t)p->max_connections, sizeof(*pool->conns));
    if (pool->conns == NULL)
        return TG_ERROR;
    pool->n_conns = (size_t)p->max_connections;
    for (i = 0; i < pool->n_conns; i++)
        pool->conns[i].pool = pool;
    return TG_OK;
}

struct tg_upstream *tg_upstream_new(struct event_base *base,
                                    const struct tg_config *cfg)
{
    struct tg_upstream *u = calloc(1, sizeof(*u));
    size_t i;

    if (u == NULL)
        return NULL;
    u->base = base;
    u->pools = calloc(cfg->n_providers + 1, sizeof(*u->pools));
    u->reaper = event_new(base, -1, 0, on_reap, u);
    u->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (u->pools == NULL || u->reaper == NULL) {
        tg_upstream_free(u);
        return NULL;
    }
    for (i = 0; i < cfg->n_providers; i++) {
        const struct tg_provider *p = &cfg->providers[i];
        if (p->type == TG_PROVIDER_MOCK || !p->is_enabled)
            continue;
        if (pool_init(u, &u->pools[u->n_pools++], p) != TG_OK) {
            tg_upstream_free(u);
            return NULL;
        }
    }
    return u;
}

static void pool_free(struct pool *pool)
{
    struct tg_up_req *r;
    size_t i;

    while ((r = pool->waiting_head) != NULL) {
        pool->waiting_head = r->next_waiting;
        req_free(r);
    }
    for (i = 0; pool->conns != NULL && i < pool->n_conns; i++) {
        struct conn *c = &pool->conns[i];
        if (c->req != NULL) {
            c->req->is_stopped = 1;
            abort_exchange(c->req);
            req_free(c->req);
        }
        if (c->evcon != NULL)
            evhttp_connection_free(c->evcon);
    }
    free(pool->conns);
    if (pool->tls != NULL)
        SSL_CTX_free(pool->tls);
}

void tg_upstream_free(struct tg_upstream *u)
{
    size_t i;

    if (u == NULL)
        return;
    for (i = 0; i < u->n_pools; i++)
        pool_free(&u->pools[i]);
    free(u->pools);
    if (u->reaper != NULL) {
        on_reap(-1, 0, u);
        event_free(u->reaper);
    }
    free(u->dead);
    if (u->dns != NULL)
        evdns_base_free(u->dns, 0);
    free(u);
}
