/*
 * sockets.c - opening the listening sockets the workers inherit.
 *
 * The master opens every socket once; forked workers accept on the same
 * sockets, and the kernel hands each new connection to one of them. Because
 * the master keeps the sockets open across reloads, a connection that
 * arrives while one generation of workers hands over to the next waits in
 * the backlog instead of being refused.
 */
#include "tg_master.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tg_log.h"

#define LISTEN_BACKLOG 4096

static int open_one(const struct addrinfo *ai)
{
    int fd, on = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0)
        return -1;
    /* Accepted sockets inherit TCP_NODELAY (Linux): a stream's small
     * writes go out at once instead of waiting for the client's delayed
     * ACK (40 ms at a stream's end). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int tg_listen_open(const struct tg_listen *l)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    char port[8];
    int fd = -1, rc;

    snprintf(port, sizeof(port), "%u", (unsigned)l->port);
    rc = getaddrinfo(l->host, port, &hints, &res);
    if (rc != 0) {
        tg_log_error("listen %s:%u: %s", l->host, (unsigned)l->port,
                     gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = open_one(ai);
    if (fd < 0)
        tg_log_error("listen %s:%u: %s", l->host, (unsigned)l->port,
                     strerror(errno));
    freeaddrinfo(res);
    return fd;
}
