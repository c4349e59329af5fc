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
 * (evbuffer_printf.c).
 *
 * It reads up to libevent's most per call into a stack buffer, with one
 * read, and appends what came with evbuffer_add. Reading straight into
 * space reserved in the buffer would save that copy, but the space must
 * be reserved before the size is known: every request would then sit in a
 * 4 KiB chain where libevent's FIONREAD-sized read gave it 1 KiB, and evhttp
 * keeps a request's chain for as long as it is served, which made each
 * held stream 3.5 KiB larger (make bench, scenario 4). evbuffer_add sizes
 * the chain to the bytes, as libevent did.
 *
 * The contract is libevent's: the number of bytes read, 0 at the end of
 * the stream, -1 with errno set by the read. One difference: when the
 * buffer refuses the bytes (its end frozen, or no memory), libevent has not
 * read them and this has; it returns -1 with errno ENOBUFS, and the
 * connection fails. libevent's socket bufferevent, the one caller,
 * unfreezes its input around every read.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <unistd.h>

#include "tg_http.h"

/* libevent 2.1 reads at most this much per call (EVBUFFER_MAX_READ). */
#define READ_MAX 4096

static unsigned long reads;

unsigned long tg_http_direct_reads(void)
{
    return reads;
}

int evbuffer_read(struct evbuffer *buf, evutil_socket_t fd, int howmuch)
{
    char bytes[READ_MAX];
    ssize_t n;

    if (howmuch < 0 || howmuch > READ_MAX)
        howmuch = READ_MAX;
    reads++;
    n = read(fd, bytes, (size_t)howmuch);
    if (n <= 0)
        return (int)n;
    if (evbuffer_add(buf, bytes, (size_t)n) != 0) {
        errno = ENOBUFS;
        return -1;
    }
    return (int)n;
}
