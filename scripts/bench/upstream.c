/*
 * upstream.c - the benchmark's upstream: a minimal OpenAI-compatible server
 * that costs as little as possible per request, so that what the benchmark
 * measures is the proxy in front of it and not the mock.
 *
 * It speaks just enough HTTP/1.1 for keep-alive clients that send a
 * Content-Length (tollgate, nginx, wrk, loadgen): no evhttp, no header
 * lists, no JSON parser. Any POST whose path ends in /chat/completions gets
 * a fixed chat completion; with "stream":true in the body, a stream of
 * chunks. The model name in the body selects the shape of the answer:
 *
 *   bench[-c<N>][-d<MS>]   N content chunks when streamed (default 200),
 *                          MS milliseconds between them (default 0)
 *   bench-429              a 429 rate-limit error, for the refusal scenario
 *
 * Every streamed content chunk carries the text "xyzzy " so that a client
 * can find the first token in any proxy's re-encoding of the stream.
 * It binds 127.0.0.1, prints "listening on 127.0.0.1:PORT" and stops on
 * SIGTERM or SIGINT.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define LISTEN_BACKLOG   4096
#define MAX_HEADER_BYTES 16384
#define DEFAULT_CHUNKS   200
#define MODEL_MAX        64

#define ADD_LIT(b, s) evbuffer_add((b), (s), sizeof(s) - 1)

static const char completion_body[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\","
    "\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello! How can I "
    "help you today?\"},\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":9,\"completion_tokens\":9,\"total_tokens\":18}}";

static const char refusal_body[] =
    "{\"error\":{\"message\":\"Rate limit reached (bench).\",\"type\":"
    "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}";

static const char not_found_body[] = "{\"error\":\"no such endpoint\"}";

#define CHUNK_HEAD                                                           \
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"

static const char first_event[] =
    CHUNK_HEAD "\"delta\":{\"role\":\"assistant\",\"content\":\"xyzzy \"},"
               "\"finish_reason\":null}]}\n\n";
static const char content_event[] = CHUNK_HEAD
    "\"delta\":{\"content\":\"xyzzy \"},\"finish_reason\":null}]}\n\n";
static const char stop_event[] =
    CHUNK_HEAD "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
static const char usage_event[] =
    "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
    "\"created\":1700000000,\"model\":\"bench\",\"choices\":[],\"usage\":"
    "{\"prompt_tokens\":9,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n";
static const char done_event[] = "data: [DONE]\n\n";

/* One client connection; at most one request is answered at a time. */
struct conn {
    struct bufferevent *bev;
    struct event *timer; /* paces a slow stream; NULL until needed */
    int chunks_left;     /* content chunks still to send */
    int chunks_total;
    int delay_ms;
    bool is_streaming;
    bool close_after; /* the client sent Connection: close */
};

/* What the request asks for, read from its head and body. */
struct ask {
    bool is_chat;
    bool is_stream;
    bool is_refusal;
    bool close_after;
    int chunks;
    int delay_ms;
};

static void on_read(struct bufferevent *bev, void *arg);

static void conn_free(struct conn *c)
{
    if (c->timer != NULL)
        event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

/* ---- reading the request ---- */

/* A case-insensitive search for a header line's name; returns its value. */
static const char *header_value(const char *head, size_t len, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i + n < len; i++) {
        if (head[i] == '\n' && strncasecmp(head + i + 1, name, n) == 0) {
            const char *v = head + i + 1 + n;

            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* "bench-c200-d5" -> 200 chunks, 5 ms apart; "bench-429" -> a refusal. */
static void parse_model(const char *model, struct ask *a)
{
    const char *p = strchr(model, '-');

    a->chunks = DEFAULT_CHUNKS;
    a->delay_ms = 0;
    while (p != NULL) {
        p++;
        if (*p == 'c')
            a->chunks = atoi(p + 1);
        else if (*p == 'd')
            a->delay_ms = atoi(p + 1);
        else if (strncmp(p, "429", 3) == 0)
            a->is_refusal = true;
        p = strchr(p, '-');
    }
    if (a->chunks < 1)
        a->chunks = 1;
}

/* The value of a top-level-looking "key": in the body, without parsing:
 * the bench's own bodies are the only ones it ever sees. */
static const char *json_value(const char *body, const char *key)
{
    const char *p = strstr(body, key);

    if (p == NULL)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':')
        p++;
    return p;
}

static void read_body(const char *body, struct ask *a)
{
    const char *model = json_value(body, "\"model\"");
    const char *stream = json_value(body, "\"stream\"");
    char name[MODEL_MAX] = "bench";
    size_t n;

    if (model != NULL && *model == '"') {
        n = strcspn(model + 1, "\"");
        if (n < sizeof(name)) {
            memcpy(name, model + 1, n);
            name[n] = '\0';
        }
    }
    parse_model(name, a);
    a->is_stream = stream != NULL && strncmp(stream, "true", 4) == 0;
}

static void read_head(const char *head, size_t len, struct ask *a)
{
    const char *conn = header_value(head, len, "connection:");
    const char *path_end = memchr(head, ' ', len);
    static const char suffix[] = "/chat/completions";
    size_t n = sizeof(suffix) - 1;

    a->close_after = conn != NULL && strncasecmp(conn, "close", 5) == 0;
    if (strncmp(head, "POST ", 5) != 0 || path_end == NULL)
        return;
    path_end = memchr(path_end + 1, ' ', len - (size_t)(path_end - head) - 1);
    if (path_end == NULL || (size_t)(path_end - head) < 5 + n)
        return;
    a->is_chat = memcmp(path_end - n, suffix, n) == 0;
}

/* ---- answering ---- */

static void reply(struct conn *c, const char *status, const char *body,
                  size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n%s\r\n",
                        status, len,
                        c->close_after ? "Connection: close\r\n" : "");
    evbuffer_add(out, body, len);
}

static void add_chunk(struct evbuffer *out, const char *data, size_t len)
{
    evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    ADD_LIT(out, "\r\n");
}

static void add_tail(struct conn *c, struct evbuffer *out)
{
    char usage[sizeof(usage_event) + 32];
    int n = snprintf(usage, sizeof(usage), usage_event, c->chunks_total,
                     9 + c->chunks_total);

    add_chunk(out, stop_event, sizeof(stop_event) - 1);
    add_chunk(out, usage, (size_t)n);
    add_chunk(out, done_event, sizeof(done_event) - 1);
    ADD_LIT(out, "0\r\n\r\n");
    c->is_streaming = false;
}

/* Sends what is due now: every chunk when there is no delay, else one. */
static void stream_some(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct timeval tv = {c->delay_ms / 1000, (c->delay_ms % 1000) * 1000};

    do {
        if (c->chunks_left == c->chunks_total)
            add_chunk(out, first_event, sizeof(first_event) - 1);
        else
            add_chunk(out, content_event, sizeof(content_event) - 1);
        c->chunks_left--;
    } while (c->chunks_left > 0 && c->delay_ms == 0);
    if (c->chunks_left == 0) {
        add_tail(c, out);
        return;
    }
    evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    stream_some(c);
    if (!c->is_streaming)
        on_read(c->bev, c); /* a request may have arrived meanwhile */
}

static void start_stream(struct conn *c, const struct ask *a)
{
    static const char head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->timer == NULL)
        c->timer = evtimer_new(bufferevent_get_base(c->bev), on_timer, c);
    evbuffer_add(out, head, sizeof(head) - 1);
    if (c->close_after)
        ADD_LIT(out, "Connection: close\r\n");
    ADD_LIT(out, "\r\n");
    c->chunks_total = c->chunks_left = a->chunks;
    c->delay_ms = a->delay_ms;
    c->is_streaming = true;
    stream_some(c);
}

static void answer(struct conn *c, const struct ask *a)
{
    c->close_after = a->close_after;
    if (!a->is_chat)
        reply(c, "404 Not Found", not_found_body, sizeof(not_found_body) - 1);
    else if (a->is_refusal)
        reply(c, "429 Too Many Requests", refusal_body,
              sizeof(refusal_body) - 1);
    else if (a->is_stream)
        start_stream(c, a);
    else
        reply(c, "200 OK", completion_body, sizeof(completion_body) - 1);
}

/* Takes one whole request off the input; false when it is not all in. */
static bool take_request(struct conn *c, struct evbuffer *in, struct ask *a)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t head_len, body_len = 0;
    const char *head, *cl;
    char *body;

    if (end.pos < 0) {
        if (evbuffer_get_length(in) > MAX_HEADER_BYTES)
            c->close_after = true;
        return false;
    }
    head_len = (size_t)end.pos + 4;
    head = (const char *)evbuffer_pullup(in, (ev_ssize_t)head_len);
    cl = header_value(head, head_len, "content-length:");
    if (cl != NULL)
        body_len = strtoul(cl, NULL, 10);
    if (evbuffer_get_length(in) < head_len + body_len)
        return false;
    *a = (struct ask){0};
    read_head(head, head_len, a);
    body = malloc(body_len + 1);
    if (body == NULL)
        return false;
    evbuffer_drain(in, head_len);
    evbuffer_remove(in, body, body_len);
    body[body_len] = '\0';
    read_body(body, a);
    free(body);
    return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct ask a;

    while (!c->is_streaming && !c->close_after && take_request(c, in, &a))
        answer(c, &a);
}

/* Once the answer is out, a Connection: close client is let go. */
static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->close_after && !c->is_streaming)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(l);
    struct conn *c = calloc(1, sizeof(*c));
    int one = 1;

    (void)sa;
    (void)socklen;
    (void)arg;
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    /* Each stream chunk must leave at once, as a model's would. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- lifetime ---- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/* Thousands of held streams need thousands of descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* Precise timers (timerfd): a stream's chunks may be a millisecond apart,
 * which epoll's millisecond timeout would stretch. */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static struct evconnlistener *listen_on(struct event_base *base, int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
        LISTEN_BACKLOG, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t len = sizeof(sin);

    if (l == NULL || getsockname(evconnlistener_get_fd(l),
                                 (struct sockaddr *)&sin, &len) != 0) {
        fprintf(stderr, "bench-upstream: cannot listen on port %d: %s\n", port,
                strerror(errno));
        if (l != NULL)
            evconnlistener_free(l);
        return NULL;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
    fflush(stdout);
    return l;
}

int main(int argc, char **argv)
{
    struct event_base *base;
    struct evconnlistener *l;
    struct event *term, *intr;
    int port = argc > 1 ? atoi(argv[1]) : 0;

    if (argc > 2 || port < 0 || port > 65535) {
        fprintf(stderr, "usage: bench-upstream [PORT]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    base = new_base();
    if (base == NULL || (l = listen_on(base, port)) == NULL)
        return 1;
    term = evsignal_new(base, SIGTERM, on_signal, base);
    intr = evsignal_new(base, SIGINT, on_signal, base);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    event_base_dispatch(base);
    /* Connections still open are dropped with the process. */
    event_free(term);
    event_free(intr);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
