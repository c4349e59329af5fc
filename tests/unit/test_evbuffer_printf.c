/*
 * test_evbuffer_printf.c - unit tests of the printf-free evbuffer_add_printf
 * (worker/evbuffer_printf.c): each of evhttp's three line formats gives
 * exactly what printf gives, with the same return value; other formats still
 * go through printf; and libevent's evhttp, client and server, binds to it.
 */
#include <criterion/criterion.h>

#include "tg_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the buffer holds, as a string the caller frees. */
static char *contents(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);

    cr_assert_not_null(s);
    evbuffer_copyout(b, s, n);
    s[n] = '\0';
    return s;
}

static void expect_buffer(struct evbuffer *b, int got, const char *want)
{
    char *s = contents(b);

    cr_expect_eq(got, (int)strlen(want), "returned %d for \"%s\"", got, want);
    cr_expect_str_eq(s, want);
    free(s);
    evbuffer_drain(b, evbuffer_get_length(b));
}

static void expect_header(const char *key, const char *value)
{
    struct evbuffer *b = evbuffer_new();
    size_t n = strlen(key) + strlen(value) + 5;
    char *want = malloc(n);
    unsigned long before = tg_http_fast_lines();

    snprintf(want, n, "%s: %s\r\n", key, value);
    expect_buffer(b, evbuffer_add_printf(b, "%s: %s\r\n", key, value), want);
    cr_expect_eq(tg_http_fast_lines(), before + 1);
    free(want);
    evbuffer_free(b);
}

Test(evbuffer_printf, header_lines_are_what_printf_writes)
{
    char long_value[2000];

    expect_header("Content-Type", "application/json");
    expect_header("x-ratelimit-remaining-tokens", "999999999977");
    expect_header("", "");
    expect_header("X-Empty", "");
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    expect_header("X-Long", long_value); /* past the stack line */
    long_value[512 - 6 - 4] = '\0';      /* exactly the stack line */
    expect_header("X-Fit", long_value);
}

static void expect_status(int major, int minor, int code, const char *reason)
{
    struct evbuffer *b = evbuffer_new();
    char want[1024];
    int n;

    snprintf(want, sizeof(want), "HTTP/%d.%d %d %s\r\n", major, minor, code,
             reason);
    n = evbuffer_add_printf(b, "HTTP/%d.%d %d %s\r\n", major, minor, code,
                            reason);
    expect_buffer(b, n, want);
    evbuffer_free(b);
}

Test(evbuffer_printf, status_lines_are_what_printf_writes)
{
    char long_reason[700];

    expect_status(1, 1, 200, "OK");
    expect_status(1, 0, 429, "Too Many Requests");
    expect_status(0, 9, 0, "");
    expect_status(INT_MAX, INT_MIN, -1, "Odd");
    memset(long_reason, 'r', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    expect_status(1, 1, 500, long_reason); /* left to printf */
}

static void expect_chunk(unsigned size)
{
    struct evbuffer *b = evbuffer_new();
    char want[32];

    snprintf(want, sizeof(want), "%x\r\n", size);
    expect_buffer(b, evbuffer_add_printf(b, "%x\r\n", size), want);
    evbuffer_free(b);
}

Test(evbuffer_printf, chunk_sizes_are_what_printf_writes)
{
    expect_chunk(0);
    expect_chunk(9);
    expect_chunk(0xabc);
    expect_chunk(4096);
    expect_chunk(UINT_MAX);
}

Test(evbuffer_printf, other_formats_still_go_through_printf)
{
    struct evbuffer *b = evbuffer_new();
    unsigned long before = tg_http_fast_lines();
    int n;

    n = evbuffer_add_printf(b, "%s=%d %.2f\n", "rate", -7, 2.5);
    expect_buffer(b, n, "rate=-7 2.50\n");
    /* Near misses of evhttp's formats are other formats. */
    n = evbuffer_add_printf(b, "%s: %s\n", "a", "b");
    expect_buffer(b, n, "a: b\n");
    n = evbuffer_add_printf(b, "%X\r\n", 255u);
    expect_buffer(b, n, "FF\r\n");
    cr_expect_eq(tg_http_fast_lines(), before);
    evbuffer_free(b);
}

/* ---- evhttp itself ---- */

struct exchange {
    struct event_base *base;
    int status;
    char header[64];
    char body[64];
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct evbuffer *body = evbuffer_new();

    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Echo", "fast");
    evbuffer_add(body, "pong", 4);
    evhttp_send_reply(req, 201, "Created", body);
    evbuffer_free(body);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct exchange *x = arg;
    const char *h;
    size_t n;

    if (req != NULL) {
        x->status = evhttp_request_get_response_code(req);
        h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Echo");
        snprintf(x->header, sizeof(x->header), "%s", h ? h : "");
        n = evbuffer_copyout(evhttp_request_get_input_buffer(req), x->body,
                             sizeof(x->body) - 1);
        x->body[n] = '\0';
    }
    event_base_loopexit(x->base, NULL);
}

Test(evbuffer_printf, evhttp_writes_its_lines_through_it)
{
    struct exchange x = {.base = event_base_new()};
    struct evhttp *http = evhttp_new(x.base);
    struct evhttp_bound_socket *sock;
    struct evhttp_connection *conn;
    struct evhttp_request *req;
    unsigned long before = tg_http_fast_lines();
    struct sockaddr_storage ss;
    ev_socklen_t len = sizeof(ss);
    int port;

    evhttp_set_gencb(http, on_request, NULL);
    sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(sock);
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    conn = evhttp_connection_base_new(x.base, NULL, "127.0.0.1",
                                      (unsigned short)port);
    req = evhttp_request_new(on_response, &x);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
                      "127.0.0.1");
    evhttp_make_request(conn, req, EVHTTP_REQ_GET, "/ping");
    event_base_dispatch(x.base);

    cr_expect_eq(x.status, 201);
    cr_expect_str_eq(x.header, "fast");
    cr_expect_str_eq(x.body, "pong");
    /* The request's Host line, the status line, and the answer's X-Echo,
     * Content-Length and Date lines at least. */
    cr_expect_geq(tg_http_fast_lines(), before + 5);
    evhttp_connection_free(conn);
    evhttp_free(http);
    event_base_free(x.base);
}
