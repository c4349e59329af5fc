/*
 * http_flush.c - a reply's bytes written when evhttp queues them, not a
 * pass of the loop later.
 *
 * evhttp (2.1) queues a reply, or a chunk of one, in the connection's
 * bufferevent and enables EV_READ|EV_WRITE; the bytes go out only when
 * epoll next reports the socket writable, and once they are out evhttp
 * enables EV_READ alone. That is two epoll_ctl calls and a pass of the
 * loop for every reply and every chunk of a stream, and the time to first
 * token waits for that pass. A socket is nearly always writable, so
 * tg_http_flush writes the queued bytes at once. When they all went, it
 * disables EV_WRITE in the same pass (the event changelist folds the enable
 * and the disable into nothing) and runs the bufferevent's write callback,
 * which is evhttp's "written", deferred: as libevent itself would after a
 * write, and never inside the caller, who may still be using the request.
 * Bytes the socket did not take, and a failed write, are left to the
 * bufferevent, which goes on as before. tollgate's listeners are plain
 * TCP (no evhttp_set_bevcb), so every connection here is a socket
 * bufferevent.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "tg_http.h"

void tg_http_flush(struct evhttp_connection *conn)
{
    struct bufferevent *bev;
    struct evbuffer *out;
    evutil_socket_t fd;

    if (conn == NULL)
        return;
    bev = evhttp_connection_get_bufferevent(conn);
    fd = bufferevent_getfd(bev);
    out = bufferevent_get_output(bev);
    if (fd < 0 || evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent keeps its output's start frozen so that only it
     * drains it; it thaws it around its own writes the same way. */
    evbuffer_unfreeze(out, 1);
    evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0)
        return;
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}
