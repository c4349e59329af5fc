/*
 * evbuffer_read.c - evbuffer_read without asking the kernel first how much
 * there is to read.
 *
 * libevent 2.1's evbuffer_read, which a socket bufferevent calls each time
 * its socket is readable, first asks with ioctl(FIONREAD) how many bytes
 * wait, to size the space it reads into. That is a second system call per
 * read: two per proxied request (the client's read and the upstream's),
 * a quarter of all the calls a request makes (strace; docs/BENCHMARKS.md).
 * libevent calls the function through its PLT, so this definition, in the
 * executable, is the one bound, as with evbuffer_add_printf
 * (evbuffer_printf.c). It reserves room for libevent's own most per read
 * and reads into it with one readv; the reservation is committed only as far
 * as the read filled it. The contract is libevent's: the number of bytes
 * read, 0 at the end of the stream, -1 with errno set by the read (or
 * without, when the buffer's end is frozen, as libevent does).
 */
#include <event2/buffer.h>
#include <sys/uio.h>

#include "tg_http.h"

/* libevent 2.1 reads at most 4096 bytes a call (EVBUFFER_MAX_READ). A little
 * less here, so that a new chain with its header (48 bytes) fits 4 KiB
 * rather than taking 8. */
#define READ_MAX (4096 - 64)

static unsigned long reads;

unsigned long tg_http_direct_reads(void)
{
    return reads;
}

/* The reservation may offer more than asked (the whole of each chain's
 * free space); the read must take no more than howmuch, which the
 * bufferevent computes from its watermark and its rate limit. */
static int trim(struct iovec *iov, const struct evbuffer_iovec *space,
                int n_vec, size_t howmuch)
{
    int i;

    for (i = 0; i < n_vec && howmuch > 0; i++) {
        iov[i].iov_base = space[i].iov_base;
        iov[i].iov_len =
            space[i].iov_len < howmuch ? space[i].iov_len : howmuch;
        howmuch -= iov[i].iov_len;
    }
    return i;
}

int evbuffer_read(struct evbuffer *buf, evutil_socket_t fd, int howmuch)
{
    struct evbuffer_iovec space[2];
    struct iovec iov[2];
    ssize_t n;
    int n_vec;

    if (howmuch < 0 || howmuch > READ_MAX)
        howmuch = READ_MAX;
    n_vec = evbuffer_reserve_space(buf, howmuch, space, 2);
    if (n_vec <= 0)
        return -1;
    n_vec = trim(iov, space, n_vec, (size_t)howmuch);
    reads++;
    n = readv(fd, iov, n_vec);
    if (n <= 0)
        return (int)n;
    if ((size_t)n <= iov[0].iov_len) {
        space[0].iov_len = (size_t)n;
        n_vec = 1;
    } else {
        space[0].iov_len = iov[0].iov_len;
        space[1].iov_len = (size_t)n - iov[0].iov_len;
    }
    if (evbuffer_commit_space(buf, space, n_vec) != 0)
        return -1;
    return (int)n;
}
