/*
 * test_evbuffer_read.c - unit tests of the FIONREAD-free evbuffer_read
 * (worker/evbuffer_read.c): it reads what the peer sent, byte for byte, in
 * reads no larger than libevent's; it appends after what the buffer holds,
 * in a chain sized to the bytes; its returns at the end of the stream and
 * on EAGAIN are libevent's, a frozen buffer fails the read; and a socket
 * bufferevent binds to it.
 */
#include <criterion/criterion.h>

#include "tg_http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libevent 2.1's cap on one read (EVBUFFER_MAX_READ). */
#define LIBEVENT_READ_MAX 4096

static int fds[2];

static void setup(void)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

static void teardown(void)
{
    close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
}

TestSuite(evbuffer_read, .init = setup, .fini = teardown);

static char *pattern(size_t n)
{
    char *p = malloc(n);
    size_t i;

    cr_assert_not_null(p);
    for (i = 0; i < n; i++)
        p[i] = (char)('a' + i * 7 % 26);
    return p;
}

static void send_all(const char *p, size_t n)
{
    cr_assert_eq(write(fds[1], p, n), (ssize_t)n);
}

/* Reads everything sent so far; each read at most libevent's most. */
static void read_all(struct evbuffer *buf, size_t n)
{
    size_t before = evbuffer_get_length(buf);
    int got;

    while (evbuffer_get_length(buf) - before < n) {
        got = evbuffer_read(buf, fds[0], -1);
        cr_assert_gt(got, 0);
        cr_assert_leq(got, LIBEVENT_READ_MAX);
    }
    cr_assert_eq(evbuffer_get_length(buf) - before, n);
}

Test(evbuffer_read, reads_what_was_sent_byte_for_byte)
{
    struct evbuffer *buf = evbuffer_new();
    size_t n = 100000;
    char *sent = pattern(n);
    unsigned long before = tg_http_direct_reads();

    send_all(sent, n);
    read_all(buf, n);
    cr_expect_eq(memcmp(evbuffer_pullup(buf, -1), sent, n), 0);
    cr_expect_geq(tg_http_direct_reads() - before, n / LIBEVENT_READ_MAX);
    free(sent);
    evbuffer_free(buf);
}

/* The bytes go after what the buffer held, also when the read straddles
 * the space left in its last chain and a new one. */
Test(evbuffer_read, appends_after_what_the_buffer_holds)
{
    struct evbuffer *buf = evbuffer_new();
    char *sent = pattern(5000), *all;

    evbuffer_add(buf, "held:", 5);
    send_all(sent, 5000);
    read_all(buf, 5000);
    all = (char *)evbuffer_pullup(buf, -1);
    cr_expect_eq(memcmp(all, "held:", 5), 0);
    cr_expect_eq(memcmp(all + 5, sent, 5000), 0);
    free(sent);
    evbuffer_free(buf);
}

Test(evbuffer_read, howmuch_bounds_the_read)
{
    struct evbuffer *buf = evbuffer_new();
    char *sent = pattern(1000);

    send_all(sent, 1000);
    cr_expect_eq(evbuffer_read(buf, fds[0], 10), 10);
    cr_expect_eq(evbuffer_get_length(buf), 10);
    read_all(buf, 990);
    cr_expect_eq(memcmp(evbuffer_pullup(buf, -1), sent, 1000), 0);
    free(sent);
    evbuffer_free(buf);
}

Test(evbuffer_read, end_of_stream_is_zero_and_adds_nothing)
{
    struct evbuffer *buf = evbuffer_new();

    evbuffer_add(buf, "x", 1);
    close(fds[1]);
    fds[1] = -1;
    cr_expect_eq(evbuffer_read(buf, fds[0], -1), 0);
    cr_expect_eq(evbuffer_get_length(buf), 1);
    evbuffer_free(buf);
}

Test(evbuffer_read, nothing_to_read_is_eagain_and_adds_nothing)
{
    struct evbuffer *buf = evbuffer_new();

    errno = 0;
    cr_expect_eq(evbuffer_read(buf, fds[0], -1), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_expect_eq(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
}

/* A buffer whose end is frozen takes nothing: the read fails as an error,
 * since the bytes have left the socket (libevent's bufferevent unfreezes
 * its input around every read, so it never meets this). */
Test(evbuffer_read, frozen_buffer_takes_nothing_and_fails)
{
    struct evbuffer *buf = evbuffer_new();

    send_all("abc", 3);
    evbuffer_freeze(buf, 0);
    errno = 0;
    cr_expect_eq(evbuffer_read(buf, fds[0], -1), -1);
    cr_expect_eq(errno, ENOBUFS);
    cr_expect_eq(evbuffer_get_length(buf), 0);
    evbuffer_unfreeze(buf, 0);
    evbuffer_free(buf);
}

/* The chain that takes a small read is sized to it, as after libevent's
 * FIONREAD-sized read: a request of a few hundred bytes must not hold a
 * 4 KiB chain for as long as it is served. */
Test(evbuffer_read, a_small_read_takes_a_small_chain)
{
    struct evbuffer *buf = evbuffer_new();
    struct evbuffer_iovec v;

    send_all("POST / HTTP/1.1\r\n", 17);
    cr_expect_eq(evbuffer_read(buf, fds[0], -1), 17);
    cr_assert_eq(evbuffer_peek(buf, -1, NULL, &v, 1), 1);
    cr_expect_eq(v.iov_len, 17);
    /* The space left after it in its chain: under 1 KiB. */
    cr_assert_eq(evbuffer_reserve_space(buf, 1, &v, 1), 1);
    cr_expect_lt(v.iov_len, 1024);
    evbuffer_free(buf);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    if (evbuffer_get_length(in) >= 3)
        event_base_loopbreak(arg);
}

/* libevent's socket bufferevent reads through this evbuffer_read. */
Test(evbuffer_read, a_socket_bufferevent_binds_to_it)
{
    struct event_base *base = event_base_new();
    struct bufferevent *bev =
        bufferevent_socket_new(base, fds[0], BEV_OPT_DEFER_CALLBACKS);
    unsigned long before = tg_http_direct_reads();
    char got[3];

    bufferevent_setcb(bev, on_read, NULL, NULL, base);
    bufferevent_enable(bev, EV_READ);
    send_all("abc", 3);
    event_base_dispatch(base);
    cr_expect_gt(tg_http_direct_reads(), before);
    cr_expect_eq(bufferevent_read(bev, got, 3), 3);
    cr_expect_eq(memcmp(got, "abc", 3), 0);
    bufferevent_free(bev);
    event_base_free(base);
}
