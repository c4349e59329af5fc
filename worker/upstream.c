/*
 * upstream.c - the worker's HTTP/1.1 client to providers (see
 * tg_upstream.h).
 *
 * Each connection is one bufferevent (TCP, or TLS through
 * bufferevent_openssl with certificate and host name checks) and one
 * tg_http_reader. A pool holds at most max_connections per provider, idle
 * ones on a list for reuse; requests wait in a queue when all are busy.
 * The reader's 16 KiB head buffer is lent only while a head is read, from
 * a per-worker stack of spares: a connection that streams a body holds
 * none, so memory per open stream stays small.
 * What it saves per request over evhttp's client: the request head is
 * built in one buffer from literals and pieces; on a connected plain TCP
 * socket it is written at once (no wait for EPOLLOUT); reading stays
 * enabled for a connection's whole life, busy or idle, so no epoll_ctl is
 * made per request and an idle connection's close is seen as it happens;
 * the answer's headers are read in place, never copied one by one.
 *
 * Three deadlines per exchange, on one timer:
 *   connect: no TCP connection (and TLS session) within
 *            connect_timeout_ms, or no free connection in that time;
 *   first byte: no head within first_byte_timeout_ms;
 *   total: the exchange is not over within timeout_ms.
 * A callback may cancel its own exchange or free its caller: every
 * connection counts its exchanges, and the reading loop stops once the
 * count moved under it. Connections are freed outside their own callbacks
 * (pgbouncer's rule), through a zero-delay event.
 */
#include "tg_upstream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tg.h"
#include "tg_http_reader.h"
#include "tg_log.h"

#define HOST_MAX        256
#define HOST_HEADER_MAX (HOST_MAX + 16)
#define WHY_MAX         256
/* Digits of the largest size_t, and a NUL. */
#define LENGTH_MAX 24
/* Spare head buffers kept for reuse; more are freed when given back. */
#define SPARE_HEADS_MAX 64
/* The request head's literal parts (" HTTP/1.1\r\nHost: " and the like),
 * with room to spare. */
#define HEAD_LITERALS_MAX 64

/* A literal and its length, for evbuffer_add. */
#define LITERAL(s) s, sizeof(s) - 1

/* Where a connection is; changed only through set_state(). */
enum conn_state {
    CONN_CLOSED, /* no socket; on the pool's closed list */
    CONN_IDLE,   /* connected, no exchange; on the idle list, reading so
                    that a close (or stray bytes) is noticed */
    CONN_BUSY,   /* one exchange: connecting, sending or reading */
};

struct conn {
    enum conn_state state;
    struct bufferevent *bev; /* NULL when closed */
    SSL *ssl;                /* TLS: for the certificate check's result */
    struct tg_up_req *req;   /* the exchange, when busy */
    struct pool *pool;
    struct tg_http_reader reader;
    struct conn *prev, *next; /* on the idle or the closed list */
    unsigned serial;          /* exchanges ended on it */
    bool is_connected;        /* TCP up and, for TLS, handshake done */
    bool is_reusable;         /* the answer is over and the connection clean */
};

struct pool {
    const struct tg_provider *provider;
    struct tg_upstream *u;
    char host[HOST_MAX];
    int port;
    int is_tls;
    const char *base_path;
    size_t base_path_len;
    char host_header[HOST_HEADER_MAX];
    size_t host_header_len;
    SSL_CTX *tls;
    struct conn *conns;
    size_t n_conns;
    struct conn *idle, *closed; /* lists through conn.prev and conn.next */
    struct tg_up_req *waiting_head, *waiting_tail;
};

struct tg_upstream {
    struct event_base *base;
    struct evdns_base *dns;
    struct pool *pools;
    size_t n_pools;
    struct event *reaper; /* frees closed connections outside callbacks */
    struct bufferevent **dead;
    size_t n_dead, cap_dead;
    char **spare_heads; /* SPARE_HEADS_MAX slots */
    size_t n_spare_heads;
};

struct tg_up_req {
    struct pool *pool;
    struct conn *conn; /* NULL while waiting for one */
    struct tg_up_req *next_waiting;
    struct evbuffer *out; /* the request's bytes while it waits */
    const struct tg_up_callbacks *cb;
    void *ctx;
    int64_t connect_by, first_byte_by, end_by; /* deadlines, monotonic us */
    enum tg_up_error error;
    char why[WHY_MAX];
    bool has_head;
    bool is_stopped;     /* no callback any more */
    struct event *timer; /* in timer_space: no allocation of its own */
    max_align_t timer_space[];
};

static void finish(struct tg_up_req *r);

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

static struct conn **list_of(struct pool *pool, enum conn_state state)
{
    switch (state) {
    case CONN_CLOSED: return &pool->closed;
    case CONN_IDLE: return &pool->idle;
    case CONN_BUSY: return NULL;
    default: abort();
    }
}

/* Moves c from its state's list, if any, to the new state's. */
static void set_state(struct conn *c, enum conn_state state)
{
    struct conn **from = list_of(c->pool, c->state);
    struct conn **to = list_of(c->pool, state);

    if (from != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            *from = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
    if (to != NULL) {
        c->next = *to;
        if (*to != NULL)
            (*to)->prev = c;
        *to = c;
    }
    c->state = state;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct tg_upstream *u = arg;
    size_t i;

    (void)fd;
    (void)what;
    for (i = 0; i < u->n_dead; i++)
        bufferevent_free(u->dead[i]);
    u->n_dead = 0;
}

/* Frees a bufferevent after the current callback has returned. */
static void bury(struct tg_upstream *u, struct bufferevent *bev)
{
    if (u->n_dead == u->cap_dead) {
        size_t cap = u->cap_dead ? u->cap_dead * 2 : 16;
        struct bufferevent **d = realloc(u->dead, cap * sizeof(*d));
        if (d == NULL)
            return; /* leaks one connection rather than freeing it early */
        u->dead = d;
        u->cap_dead = cap;
    }
    u->dead[u->n_dead++] = bev;
    event_active(u->reaper, EV_TIMEOUT, 0);
}

/* Closes the socket; nothing of the old bufferevent calls us again. */
static void close_conn(struct conn *c)
{
    if (c->bev != NULL) {
        bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        bury(c->pool->u, c->bev);
    }
    c->bev = NULL;
    c->ssl = NULL; /* freed with the bufferevent */
    c->is_connected = false;
    set_state(c, CONN_CLOSED);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static struct bufferevent *new_bufferevent(struct conn *c)
{
    struct pool *pool = c->pool;
    struct event_base *base = pool->u->base;
    /* Deferred: no callback runs inside the call that caused it, so none
     * runs inside tg_up_send. */
    int options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;

    if (!pool->is_tls)
        return bufferevent_socket_new(base, -1, options);
    if ((c->ssl = make_ssl(pool)) == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(base, -1, c->ssl,
                                         BUFFEREVENT_SSL_CONNECTING, options);
    if (bev == NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Starts connecting a closed connection; its callbacks say how it went. */
static int open_conn(struct conn *c)
{
    struct pool *pool = c->pool;

    if ((c->bev = new_bufferevent(c)) == NULL)
        return TG_ERROR;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    if (bufferevent_enable(c->bev, EV_READ) != 0 ||
        bufferevent_socket_connect_hostname(c->bev, pool->u->dns, AF_UNSPEC,
                                            pool->host, pool->port) != 0) {
        close_conn(c);
        return TG_ERROR;
    }
    return TG_OK;
}

/* An idle connection, else a closed one opened; NULL when none. */
static struct conn *take_conn(struct pool *pool)
{
    struct conn *c = pool->idle;

    if (c == NULL && (c = pool->closed) != NULL && open_conn(c) != TG_OK)
        return NULL;
    if (c != NULL)
        set_state(c, CONN_BUSY);
    return c;
}

/* ---- sending ------------------------------------------------------------ */

/* Where a request's bytes go on c. A connected plain TCP socket is written
 * at once by send_request(), so the bufferevent must not start writing by
 * itself when bytes are added (that would cost an epoll_ctl and a wait for
 * EPOLLOUT). */
static struct evbuffer *output_of(struct conn *c)
{
    if (!c->pool->is_tls && c->is_connected)
        bufferevent_disable(c->bev, EV_WRITE);
    return bufferevent_get_output(c->bev);
}

/* A connecting socket, or TLS, writes once it can; a connected plain TCP
 * socket writes now, and leaves the bufferevent only what did not fit. A
 * failed write is left to the bufferevent too, which reports it from the
 * loop: never inside tg_up_send. */
static void send_request(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->pool->is_tls || !c->is_connected)
        return;
    /* A socket bufferevent keeps its output's start frozen so that only it
     * drains it; it thaws it around its own writes the same way. */
    evbuffer_unfreeze(out, 1);
    evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(c->bev, EV_WRITE);
}

static size_t format_size(size_t v, char *out)
{
    char digits[LENGTH_MAX];
    size_t n = 0, i;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/* A header with CR or LF in it would end the head early: dropped, as
 * evhttp_add_header did. */
static bool is_safe_header(const struct tg_up_header *h)
{
    return h->name[strcspn(h->name, "\r\n")] == '\0' &&
           h->value[strcspn(h->value, "\r\n")] == '\0';
}

static size_t headers_len(const struct tg_up_header *h, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++)
        if (is_safe_header(&h[i]))
            len += strlen(h[i].name) + strlen(h[i].value) + 4;
    return len;
}

/* Pieces of a request head copied into one reserved extent. */
struct head {
    char *p;
};

static void put(struct head *h, const char *s, size_t n)
{
    memcpy(h->p, s, n);
    h->p += n;
}

/* "METHOD base_path+path HTTP/1.1", Host, Content-Length, the caller's
 * headers, the blank line, then the body (moved, not copied). The head is
 * copied into one extent reserved at its full size, so it is one piece of
 * memory and one reserve and commit rather than an append per piece. */
static int write_request(struct evbuffer *out, const struct pool *pool,
                         const char *method, const char *path,
                         const struct tg_up_header *h, size_t n_headers,
                         struct evbuffer *body)
{
    char length[LENGTH_MAX];
    size_t method_len = strlen(method), path_len = strlen(path);
    size_t length_len =
        format_size(body ? evbuffer_get_length(body) : 0, length);
    size_t max = method_len + pool->base_path_len + path_len +
                 pool->host_header_len + length_len +
                 headers_len(h, n_headers) + HEAD_LITERALS_MAX;
    struct evbuffer_iovec v;
    struct head head;
    size_t i;

    if (evbuffer_reserve_space(out, (ev_ssize_t)max, &v, 1) != 1)
        return TG_ERROR;
    head.p = v.iov_base;
    put(&head, method, method_len);
    put(&head, LITERAL(" "));
    put(&head, pool->base_path, pool->base_path_len);
    put(&head, path, path_len);
    put(&head, LITERAL(" HTTP/1.1\r\nHost: "));
    put(&head, pool->host_header, pool->host_header_len);
    put(&head, LITERAL("\r\nContent-Length: "));
    put(&head, length, length_len);
    put(&head, LITERAL("\r\n"));
    for (i = 0; i < n_headers; i++) {
        if (!is_safe_header(&h[i]))
            continue;
        put(&head, h[i].name, strlen(h[i].name));
        put(&head, LITERAL(": "));
        put(&head, h[i].value, strlen(h[i].value));
        put(&head, LITERAL("\r\n"));
    }
    put(&head, LITERAL("\r\n"));
    v.iov_len = (size_t)(head.p - (char *)v.iov_base);
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return TG_ERROR;
    if (body != NULL && evbuffer_add_buffer(out, body) != 0)
        return TG_ERROR;
    return TG_OK;
}

/* ---- one exchange ------------------------------------------------------ */

static void req_free(struct tg_up_req *r)
{
    event_del(r->timer);
    if (r->out != NULL)
        evbuffer_free(r->out);
    free(r);
}

static void fail_with(struct tg_up_req *r, enum tg_up_error e, const char *what,
                      const char *detail)
{
    if (r->error != TG_UP_OK)
        return;
    r->error = e;
    snprintf(r->why, sizeof(r->why), "%s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
}

static void attach(struct tg_up_req *r, struct conn *c)
{
    r->conn = c;
    c->req = r;
    c->is_reusable = false;
    tg_http_reader_init(&c->reader);
}

/* Lends c's reader a head buffer: a spare one, else a new one. */
static int lend_head(struct conn *c)
{
    struct tg_upstream *u = c->pool->u;
    char *buf = u->n_spare_heads > 0 ? u->spare_heads[--u->n_spare_heads]
                                     : malloc(TG_HTTP_HEAD_MAX);

    if (buf == NULL)
        return TG_ERROR;
    tg_http_reader_lend(&c->reader, buf, TG_HTTP_HEAD_MAX);
    return TG_OK;
}

static void take_head_back(struct conn *c)
{
    struct tg_upstream *u = c->pool->u;
    char *buf = c->reader.head;

    if (buf == NULL)
        return;
    tg_http_reader_lend(&c->reader, NULL, 0);
    if (u->n_spare_heads < SPARE_HEADS_MAX)
        u->spare_heads[u->n_spare_heads++] = buf;
    else
        free(buf);
}

/* The exchange leaves c: c stays open for the next one only when its
 * answer ended cleanly. */
static void detach(struct conn *c)
{
    take_head_back(c);
    c->req = NULL;
    c->serial++;
    if (c->is_reusable && c->bev != NULL)
        set_state(c, CONN_IDLE);
    else
        close_conn(c);
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
    r->next_waiting = NULL;
}

/* Gives a connection to the first waiting request, if one can be had. */
static void serve_waiting(struct pool *pool)
{
    struct tg_up_req *r = pool->waiting_head;
    struct conn *c;

    if (r == NULL || (pool->idle == NULL && pool->closed == NULL))
        return;
    unlink_waiting(r);
    if ((c = take_conn(pool)) == NULL) {
        fail_with(r, TG_UP_CONNECT, "cannot open a connection", NULL);
        finish(r);
        return;
    }
    evbuffer_add_buffer(output_of(c), r->out);
    evbuffer_free(r->out);
    r->out = NULL;
    attach(r, c);
    send_request(c);
}

/* Ends an exchange: frees its connection for the next one, reports the
 * end (unless stopped) and frees the request. The connection goes first,
 * so that a request the callback sends queues behind those waiting. */
static void finish(struct tg_up_req *r)
{
    struct conn *c = r->conn;
    struct pool *pool = r->pool;

    event_del(r->timer);
    if (c == NULL) {
        unlink_waiting(r);
    } else {
        r->conn = NULL;
        detach(c);
        serve_waiting(pool);
    }
    if (!r->is_stopped)
        r->cb->on_end(r->ctx, r->error, r->why);
    req_free(r);
}

/* ---- reading the answer -------------------------------------------------- */

static const char *tls_error(struct conn *c)
{
    static char text[200];
    unsigned long e = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

    if (e == 0)
        e = ERR_peek_last_error();
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

/* Reports one event of the reader; false when the exchange is over or
 * left c (its callback cancelled it), so that c must not be read on. */
static bool report(struct conn *c, struct evbuffer *in, enum tg_http_event ev,
                   const char *body, size_t body_len)
{
    struct tg_up_req *r = c->req;
    unsigned serial = c->serial;
    int stop = 0;

    switch (ev) {
    case TG_HTTP_HEAD:
        r->has_head = true;
        if (!r->is_stopped)
            r->cb->on_head(r->ctx, c->reader.status, &c->reader);
        if (c->serial != serial)
            return false;
        take_head_back(c);
        return true;
    case TG_HTTP_BODY:
        if (!r->is_stopped)
            stop = r->cb->on_body(r->ctx, body, body_len);
        if (c->serial != serial)
            return false;
        if (stop) {
            r->is_stopped = true;
            finish(r);
        }
        return !stop;
    case TG_HTTP_END:
        c->is_reusable =
            c->reader.is_keep_alive && evbuffer_get_length(in) == 0 &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
        finish(r);
        return false;
    case TG_HTTP_ERROR:
        fail_with(r, TG_UP_PROTOCOL, "an unreadable HTTP answer",
                  c->reader.error);
        finish(r);
        return false;
    default: return true;
    }
}

/* Feeds what arrived to the reader, piece by piece of the input buffer
 * (never copied), until it is all used or the exchange is over. A body
 * event points into the input, so its bytes are drained only after the
 * callback: a cancelled connection's bufferevent lives on until the
 * reaper, so draining it is still safe. */
static void read_answer(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_iovec v;
    enum tg_http_event ev;
    const char *body;
    size_t used, body_len, n;
    bool is_on;

    do {
        n = evbuffer_peek(in, -1, NULL, &v, 1) > 0 ? v.iov_len : 0;
        if (n > 0 && tg_http_reader_wants_buffer(&c->reader) &&
            lend_head(c) != TG_OK) {
            fail_with(c->req, TG_UP_CONNECT, "out of memory", NULL);
            finish(c->req);
            return;
        }
        ev = tg_http_reader_feed(&c->reader, n ? v.iov_base : "", n, &used,
                                 &body, &body_len);
        if (ev != TG_HTTP_BODY)
            evbuffer_drain(in, used);
        if (ev == TG_HTTP_MORE && n == 0)
            return;
        is_on = report(c, in, ev, body, body_len);
        if (ev == TG_HTTP_BODY)
            evbuffer_drain(in, used);
    } while (is_on);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    if (c->req == NULL) {
        close_conn(c); /* bytes nobody asked for: the connection is bad */
        return;
    }
    read_answer(c, bufferevent_get_input(bev));
}

/* The peer closed: the end of a body read until close, else a failure. */
static void on_peer_closed(struct conn *c)
{
    struct tg_up_req *r = c->req;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    unsigned serial = c->serial;
    const char *tls;

    if (evbuffer_get_length(in) > 0) {
        read_answer(c, in);
        if (c->serial != serial)
            return;
    }
    if (tg_http_reader_close(&c->reader) == TG_HTTP_END) {
        finish(r);
        return;
    }
    tls = c->pool->is_tls ? tls_error(c) : NULL;
    if (tls != NULL)
        fail_with(r, TG_UP_TLS, tls, NULL);
    else if (r->has_head)
        fail_with(r, TG_UP_CLOSED, "the connection closed mid-answer", NULL);
    else
        fail_with(r, TG_UP_CONNECT, "cannot connect or no answer", NULL);
    finish(r);
}

static void on_failed(struct conn *c)
{
    struct tg_up_req *r = c->req;
    const char *tls = c->pool->is_tls ? tls_error(c) : NULL;
    int dns = bufferevent_socket_get_dns_error(c->bev);

    if (tls != NULL)
        fail_with(r, TG_UP_TLS, tls, NULL);
    else if (dns != 0)
        fail_with(r, TG_UP_CONNECT, "cannot resolve the host",
                  evutil_gai_strerror(dns));
    else if (r->has_head)
        fail_with(r, TG_UP_CLOSED, "the answer was cut short", NULL);
    else
        fail_with(r, TG_UP_CONNECT, "cannot connect or no answer", NULL);
    finish(r);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->is_connected = true;
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (c->req == NULL)
        close_conn(c); /* an idle connection closed: replaced on next use */
    else if (what & BEV_EVENT_EOF)
        on_peer_closed(c);
    else
        on_failed(c);
}

/* ---- deadlines ---------------------------------------------------------- */

/* The deadline that applies next and the failure it means. On a tie the
 * earlier phase wins, as when each had its own timer. */
static int64_t next_deadline(const struct tg_up_req *r, enum tg_up_error *e)
{
    int64_t at = r->end_by;

    *e = TG_UP_TIMEOUT;
    if (!r->has_head && r->first_byte_by <= at) {
        at = r->first_byte_by;
        *e = TG_UP_FIRST_BYTE;
    }
    if (!r->has_head && !(r->conn && r->conn->is_connected) &&
        r->connect_by <= at) {
        at = r->connect_by;
        *e = TG_UP_CONNECT;
    }
    return at;
}

static void arm(struct tg_up_req *r, int64_t now)
{
    enum tg_up_error e;
    int64_t us = next_deadline(r, &e) - now;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

    event_add(r->timer, &tv);
}

/* The timer fires at the earliest deadline; one that no longer applies
 * (connected, or the head came) moves it on to the next. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct tg_up_req *r = arg;
    int64_t now = tg_now_us();
    enum tg_up_error e;

    (void)fd;
    (void)what;
    if (next_deadline(r, &e) > now) {
        arm(r, now);
        return;
    }
    if (e == TG_UP_CONNECT)
        fail_with(r, e,
                  r->conn == NULL ? "no free connection within "
                                    "connect_timeout_ms (max_connections busy)"
                                  : "connect timeout",
                  NULL);
    else if (e == TG_UP_FIRST_BYTE)
        fail_with(r, e, "no answer within first_byte_timeout_ms", NULL);
    else
        fail_with(r, e, "the answer took longer than timeout_ms", NULL);
    finish(r);
}

/* ---- the interface ------------------------------------------------------ */

/* The request and its timer in one allocation. */
static struct tg_up_req *req_new(struct pool *pool,
                                 const struct tg_up_callbacks *cb, void *ctx)
{
    const struct tg_provider *p = pool->provider;
    struct tg_up_req *r = calloc(1, sizeof(*r) + event_get_struct_event_size());
    int64_t now = tg_now_us();

    if (r == NULL)
        return NULL;
    r->pool = pool;
    r->cb = cb;
    r->ctx = ctx;
    r->timer = (struct event *)r->timer_space;
    event_assign(r->timer, pool->u->base, -1, 0, on_deadline, r);
    r->connect_by = now + (int64_t)p->connect_timeout_ms * 1000;
    r->first_byte_by = now + (int64_t)p->first_byte_timeout_ms * 1000;
    r->end_by = now + (int64_t)p->timeout_ms * 1000;
    arm(r, now);
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

static void enqueue(struct tg_up_req *r)
{
    struct pool *pool = r->pool;

    if (pool->waiting_tail != NULL)
        pool->waiting_tail->next_waiting = r;
    else
        pool->waiting_head = r;
    pool->waiting_tail = r;
}

/* With a connection at hand the request is written straight into its
 * output; otherwise into a buffer of its own, and it waits. */
struct tg_up_req *tg_up_send(struct tg_upstream *u, const struct tg_provider *p,
                             const char *method, const char *path,
                             const struct tg_up_header *headers,
                             size_t n_headers, struct evbuffer *body,
                             const struct tg_up_callbacks *cb, void *ctx)
{
    struct pool *pool = pool_of(u, p);
    struct tg_up_req *r;
    struct conn *c;

    if (pool == NULL || (r = req_new(pool, cb, ctx)) == NULL)
        return NULL;
    if ((c = take_conn(pool)) != NULL) {
        if (write_request(output_of(c), pool, method, path, headers, n_headers,
                          body) != TG_OK) {
            close_conn(c);
            req_free(r);
            return NULL;
        }
        attach(r, c);
        send_request(c);
        return r;
    }
    if ((r->out = evbuffer_new()) == NULL ||
        write_request(r->out, pool, method, path, headers, n_headers, body) !=
            TG_OK) {
        req_free(r);
        return NULL;
    }
    enqueue(r);
    return r;
}

void tg_up_cancel(struct tg_up_req *r)
{
    r->is_stopped = true;
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
    pool->base_path_len = strlen(pool->base_path);
    tg_up_host_header(pool->host, pool->port, pool->is_tls, pool->host_header,
                      sizeof(pool->host_header));
    pool->host_header_len = strlen(pool->host_header);
    if (pool->is_tls && (pool->tls = make_tls(p)) == NULL)
        return TG_ERROR;
    pool->conns = calloc((size_t)p->max_connections, sizeof(*pool->conns));
    if (pool->conns == NULL)
        return TG_ERROR;
    pool->n_conns = (size_t)p->max_connections;
    /* Backwards, so that the first connection is the first one used. */
    for (i = pool->n_conns; i-- > 0;) {
        pool->conns[i].pool = pool;
        pool->conns[i].state = CONN_BUSY;
        set_state(&pool->conns[i], CONN_CLOSED);
    }
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
    u->spare_heads = calloc(SPARE_HEADS_MAX, sizeof(*u->spare_heads));
    if (u->pools == NULL || u->reaper == NULL || u->spare_heads == NULL) {
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
        if (c->req != NULL)
            req_free(c->req);
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        free(c->reader.head);
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
    while (u->n_spare_heads > 0)
        free(u->spare_heads[--u->n_spare_heads]);
    free(u->spare_heads);
    if (u->dns != NULL)
        evdns_base_free(u->dns, 0);
    free(u);
}
