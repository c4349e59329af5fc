/*
 * tg_http.h - the worker's HTTP plumbing shared by the request path and the
 * fronts: the route table's entry point, common headers, and the single
 * place a request is finished.
 */
#ifndef TG_HTTP_H
#define TG_HTTP_H

#include "tg_req.h"

struct evhttp_request;
struct tg_worker;

/* evhttp's generic callback: builds a struct tg_req and dispatches it. */
void tg_http_dispatch(struct evhttp_request *http, void *arg);

/* Adds Content-Type, x-request-id, the x-tollgate-* routing headers once a
 * candidate is known, and Connection: close while the worker drains. */
void tg_http_add_common_headers(struct tg_req *r, const char *content_type);

/* evhttp's own header limit is this much above max_header_bytes; requests
 * in between get our 431 from tg_http_dispatch (see http_error.c). */
#define TG_HEADER_SLACK 8192

/* Bytes of a request's parsed headers, counted as "name: value\r\n". */
size_t tg_http_header_bytes(struct evhttp_request *http);

/* Writes what evhttp has just queued on conn now, rather than after the
 * next epoll_wait (see http_flush.c). conn may be NULL. */
void tg_http_flush(struct evhttp_connection *conn);

/* Lines evhttp wrote through the printf-free evbuffer_add_printf of
 * evbuffer_printf.c: how the tests see that libevent binds to it. */
unsigned long tg_http_fast_lines(void);

/* Reads made by the FIONREAD-free evbuffer_read of evbuffer_read.c: how the
 * tests see that libevent binds to it. */
unsigned long tg_http_direct_reads(void);

/* Header names compared by the evutil_ascii_strcasecmp of
 * evutil_strcasecmp.c: how the tests see that libevent binds to it. */
unsigned long tg_http_name_compares(void);

/* The reason phrase of a status code ("Bad Request"). */
const char *tg_http_reason(int status);

/* Ends a request: access log, release everything, count it done. r is
 * freed; the caller must not touch it afterwards. */
void tg_http_finish(struct tg_req *r);

/* Request path hooks used by http.c (defined in request.c). */
void tg_req_client_gone(struct tg_req *r);
void tg_req_release(struct tg_req *r);

/* Authenticates r (auth.c): sets r->team, or answers 401 and returns
 * TG_ERROR (r is then finished). */
int tg_auth_check(struct tg_req *r);

/* For /admin/: the request must present an admin key; answers 401 (no or
 * unknown key) or 403 (a team's key) and returns TG_ERROR otherwise. */
int tg_auth_admin(struct tg_req *r);

struct tg_auth_table *tg_auth_build(const struct tg_config *cfg);
void tg_auth_free(struct tg_auth_table *t);

/* The access log (access_log.c): one JSON line per finished request. */
void tg_access_log_write(struct tg_worker *w, const struct tg_req *r);

/* Route handlers that belong to no surface. */
tg_handler_fn tg_http_health;
tg_handler_fn tg_http_healthz;

/* GET /metrics (metrics_page.c): Prometheus text, over all workers. */
tg_handler_fn tg_http_metrics;

#endif
