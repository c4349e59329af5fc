/*
 * loadgen.c - the benchmark's own load generator, for what wrk cannot do.
 *
 *   rate    requests sent at a fixed rate (open loop); each latency is
 *           measured from the request's intended send time, not from when
 *           a connection was free to send it, so a server that stalls pays
 *           for every request that should have gone out meanwhile (no
 *           coordinated omission). With --stream, the time to the first
 *           token and to the end of the stream instead.
 *   closed  a fixed number of requests over C connections, each sent as
 *           soon as the previous one on its connection is answered.
 *   hold    N streams opened (at most --ramp opening at once) and held
 *           open until SIGTERM, SIGINT or --hold-max seconds.
 *
 * It speaks HTTP/1.1 with keep-alive over plain TCP to one host. The first
 * token of a stream is the first "xyzzy" in the body, which every stream of
 * the bench's upstream carries, whatever the proxy's re-encoding. It prints
 * one line of key=value pairs (times in microseconds) on stdout; in hold
 * mode also "held=N failed=M" once every stream is open or has failed.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
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
#include <time.h>

#define MARKER           "xyzzy"
#define MARKER_LEN       (sizeof(MARKER) - 1)
#define DRAIN_TIMEOUT_S  30
#define MAX_HEAD_BYTES   65536
#define DEFAULT_MAX_CONN 1024

enum mode { MODE_RATE, MODE_CLOSED, MODE_HOLD };

/* Where a connection is in reading an answer. */
enum read_state {
    R_HEAD,       /* status line and headers */
    R_BODY,       /* Content-Length bytes */
    R_CHUNK_SIZE, /* a chunk's size line */
    R_CHUNK_DATA,
    R_CHUNK_CRLF, /* the CRLF after a chunk's data */
    R_TRAILER,    /* after the last chunk, up to the empty line */
};

/* A growable array of samples, in microseconds. */
struct samples {
    double *v;
    size_t n, cap;
};

struct conn {
    struct lg *lg;
    struct bufferevent *bev;
    struct conn *prev, *next; /* in the idle list when idle */
    bool is_connected;
    bool is_busy;
    bool is_idle;
    bool is_held; /* hold mode: its first token came */
    double intended, first_token;
    enum read_state state;
    int status;
    size_t remaining;
    bool close_after;
    int tokens;
    size_t matched; /* bytes of MARKER matched so far */
};

struct lg {
    enum mode mode;
    struct event_base *base;
    struct sockaddr_in addr;
    char *request;
    size_t request_len;
    bool is_stream;
    int expect_status;
    int expect_tokens;
    /* rate mode */
    double rate, duration, warmup, start, interval;
    long total, issued;
    struct event *tick;
    double *pending; /* intended times waiting for a connection */
    size_t pending_head, pending_n, pending_cap;
    /* closed and hold modes */
    long requests, streams, ramp, opening;
    double hold_max;
    /* connections */
    long n_conns, max_conns, init_conns, in_flight;
    struct conn *idle;
    struct conn **all;
    /* results */
    long ok, err_connect, err_status, err_closed, err_parse, err_tokens;
    long err_timeout, held;
    int first_bad_status;
    struct samples lat, ttft, end;
    double measure_end;
    bool is_done;
};

static void send_request(struct conn *c, double intended);
static void on_release(evutil_socket_t fd, short what, void *arg);
static void finish_if_done(struct lg *lg);

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s\n", what);
    exit(2);
}

static void samples_add(struct samples *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (s->v == NULL)
            die("out of memory");
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double percentile(const struct samples *s, double p)
{
    size_t i;

    if (s->n == 0)
        return 0;
    i = (size_t)ceil(p / 100.0 * (double)s->n);
    return s->v[i > 0 ? i - 1 : 0];
}

/* ---- connections ---- */

static void idle_push(struct conn *c)
{
    struct lg *lg = c->lg;

    c->is_idle = true;
    c->prev = NULL;
    c->next = lg->idle;
    if (lg->idle != NULL)
        lg->idle->prev = c;
    lg->idle = c;
}

static void idle_remove(struct conn *c)
{
    if (!c->is_idle)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->lg->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->is_idle = false;
}

static void conn_free(struct conn *c)
{
    struct lg *lg = c->lg;

    idle_remove(c);
    for (long i = 0; i < lg->n_conns; i++) {
        if (lg->all[i] == c) {
            lg->all[i] = lg->all[--lg->n_conns];
            break;
        }
    }
    bufferevent_free(c->bev);
    free(c);
}

/* A request (or a connection that never connected) lost: counted, and the
 * connection freed. An idle connection the server closed is not an error. */
static void conn_fail(struct conn *c, long *counter)
{
    struct lg *lg = c->lg;

    if (c->is_busy || !c->is_connected)
        (*counter)++;
    if (c->is_busy)
        lg->in_flight--;
    if (lg->mode == MODE_HOLD && !c->is_held)
        lg->opening--;
    conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static struct conn *conn_new(struct lg *lg)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        die("out of memory");
    c->lg = lg;
    c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        die("cannot create a socket");
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->addr,
                                   sizeof(lg->addr)) != 0) {
        bufferevent_free(c->bev);
        free(c);
        lg->err_connect++;
        return NULL;
    }
    lg->all[lg->n_conns++] = c;
    return c;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct lg *lg = c->lg;
    int one = 1;

    if (what & BEV_EVENT_CONNECTED) {
        c->is_connected = true;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof(one));
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->is_connected)
            conn_fail(c, &lg->err_connect);
        else
            conn_fail(c, &lg->err_closed);
        finish_if_done(lg);
    }
}

/* ---- reading an answer ---- */

/* Counts the markers in a piece of body, across piece boundaries. MARKER
 * has no prefix that is also its suffix, so a mismatch restarts at 0 or 1. */
static void scan_tokens(struct conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == MARKER[c->matched]) {
            if (++c->matched < MARKER_LEN)
                continue;
            if (c->tokens++ == 0)
                c->first_token = now_us();
            c->matched = 0;
        } else {
            c->matched = p[i] == MARKER[0];
        }
    }
}

static const char *find_header(const char *head, size_t len, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i + n < len; i++)
        if (head[i] == '\n' && strncasecmp(head + i + 1, name, n) == 0)
            return head + i + 1 + n;
    return NULL;
}

/* Returns -1 on a malformed head, 0 when not all in yet, 1 when read. */
static int read_head(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    const char *head, *v;
    size_t len;

    if (end.pos < 0)
        return evbuffer_get_length(in) > MAX_HEAD_BYTES ? -1 : 0;
    len = (size_t)end.pos + 4;
    head = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(head + 9);
    v = find_header(head, len, "connection:");
    c->close_after =
        v != NULL && strncasecmp(v + strspn(v, " "), "close", 5) == 0;
    if ((v = find_header(head, len, "transfer-encoding:")) != NULL &&
        strncasecmp(v + strspn(v, " "), "chunked", 7) == 0) {
        c->state = R_CHUNK_SIZE;
    } else if ((v = find_header(head, len, "content-length:")) != NULL) {
        c->remaining = strtoul(v, NULL, 10);
        c->state = R_BODY;
    } else {
        return -1;
    }
    evbuffer_drain(in, len);
    return 1;
}

/* Consumes up to c->remaining bytes of body; true once they are all in. */
static bool read_data(struct conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);

    if (n > c->remaining)
        n = c->remaining;
    if (n > 0 && c->lg->is_stream)
        scan_tokens(c, (const char *)evbuffer_pullup(in, (ev_ssize_t)n), n);
    evbuffer_drain(in, n);
    c->remaining -= n;
    return c->remaining == 0;
}

/* Reads one CRLF-ended line into buf; false when it is not all in. */
static bool read_line(struct evbuffer *in, char *buf, size_t cap, int *err)
{
    struct evbuffer_ptr eol = evbuffer_search(in, "\r\n", 2, NULL);

    if (eol.pos < 0)
        return false;
    if ((size_t)eol.pos >= cap) {
        *err = 1;
        return false;
    }
    evbuffer_remove(in, buf, (size_t)eol.pos);
    buf[eol.pos] = '\0';
    evbuffer_drain(in, 2);
    return true;
}

/* Returns -1 on a malformed answer, 0 when more is needed, 1 at its end. */
static int read_answer(struct conn *c, struct evbuffer *in)
{
    char line[256];
    int err = 0, rc;

    for (;;) {
        switch (c->state) {
        case R_HEAD:
            if ((rc = read_head(c, in)) <= 0)
                return rc;
            break;
        case R_BODY: return read_data(c, in) ? 1 : 0;
        case R_CHUNK_SIZE:
            if (!read_line(in, line, sizeof(line), &err))
                return err ? -1 : 0;
            c->remaining = strtoul(line, NULL, 16);
            c->state = c->remaining ? R_CHUNK_DATA : R_TRAILER;
            break;
        case R_CHUNK_DATA:
            if (!read_data(c, in))
                return 0;
            c->state = R_CHUNK_CRLF;
            break;
        case R_CHUNK_CRLF:
            if (evbuffer_get_length(in) < 2)
                return 0;
            evbuffer_drain(in, 2);
            c->state = R_CHUNK_SIZE;
            break;
        case R_TRAILER:
            if (!read_line(in, line, sizeof(line), &err))
                return err ? -1 : 0;
            if (line[0] == '\0')
                return 1;
            break;
        }
    }
}

/* ---- what an answer counts as ---- */

static bool is_measured(const struct lg *lg, double intended)
{
    return lg->mode != MODE_RATE || intended >= lg->start + lg->warmup * 1e6;
}

static void record(struct conn *c, double done)
{
    struct lg *lg = c->lg;

    if (c->status != lg->expect_status) {
        lg->err_status++;
        if (lg->first_bad_status == 0)
            lg->first_bad_status = c->status;
        return;
    }
    if (lg->expect_tokens > 0 && c->tokens != lg->expect_tokens) {
        lg->err_tokens++;
        return;
    }
    lg->ok++;
    if (!is_measured(lg, c->intended))
        return;
    samples_add(&lg->lat, done - c->intended);
    if (lg->is_stream) {
        samples_add(&lg->ttft, c->first_token - c->intended);
        samples_add(&lg->end, done - c->intended);
    }
}

static bool pending_pop(struct lg *lg, double *intended)
{
    if (lg->pending_n == 0)
        return false;
    *intended = lg->pending[lg->pending_head];
    lg->pending_head = (lg->pending_head + 1) % lg->pending_cap;
    lg->pending_n--;
    return true;
}

/* The next request for a connection that just became free, if any. */
static void reuse(struct conn *c)
{
    struct lg *lg = c->lg;
    double intended;

    if (lg->mode == MODE_CLOSED && lg->issued < lg->requests) {
        lg->issued++;
        send_request(c, now_us());
    } else if (lg->mode == MODE_RATE && pending_pop(lg, &intended)) {
        send_request(c, intended);
    } else {
        idle_push(c);
    }
}

static void answer_done(struct conn *c)
{
    struct lg *lg = c->lg;

    if (lg->mode == MODE_HOLD) {
        /* A held stream must not end while it is held. */
        conn_fail(c, &lg->err_closed);
        return;
    }
    record(c, now_us());
    c->is_busy = false;
    lg->in_flight--;
    if (!c->close_after) {
        reuse(c);
        return;
    }
    /* The server closes this one: the next request goes on a new one. */
    conn_free(c);
    if ((c = conn_new(lg)) != NULL)
        reuse(c);
}

static void hold_progress(struct conn *c);

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct lg *lg = c->lg;
    int rc = read_answer(c, bufferevent_get_input(bev));

    if (rc < 0)
        conn_fail(c, &lg->err_parse);
    else if (rc > 0)
        answer_done(c);
    else if (lg->mode == MODE_HOLD && c->tokens > 0 && !c->is_held)
        hold_progress(c);
    finish_if_done(lg);
}

static void send_request(struct conn *c, double intended)
{
    c->is_busy = true;
    c->intended = intended;
    c->state = R_HEAD;
    c->status = 0;
    c->tokens = 0;
    c->matched = 0;
    c->first_token = 0;
    c->lg->in_flight++;
    bufferevent_write(c->bev, c->lg->request, c->lg->request_len);
}

/* ---- rate mode ---- */

static void pending_push(struct lg *lg, double intended)
{
    if (lg->pending_n == lg->pending_cap) {
        size_t cap = lg->pending_cap ? 2 * lg->pending_cap : 1024;
        double *p = malloc(cap * sizeof(*p));

        if (p == NULL)
            die("out of memory");
        for (size_t i = 0; i < lg->pending_n; i++)
            p[i] = lg->pending[(lg->pending_head + i) % lg->pending_cap];
        free(lg->pending);
        lg->pending = p;
        lg->pending_head = 0;
        lg->pending_cap = cap;
    }
    lg->pending[(lg->pending_head + lg->pending_n) % lg->pending_cap] =
        intended;
    lg->pending_n++;
}

/* One request due at `intended`: on an idle connection, a new one, or in
 * the queue when every connection allowed is busy. */
static void issue(struct lg *lg, double intended)
{
    struct conn *c = lg->idle;

    if (c == NULL && lg->n_conns < lg->max_conns)
        c = conn_new(lg);
    if (c == NULL) {
        pending_push(lg, intended);
        return;
    }
    idle_remove(c);
    send_request(c, intended);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;
    double now = now_us(), next = lg->start;
    struct timeval tv;

    (void)fd;
    (void)what;
    while (lg->issued < lg->total &&
           (next = lg->start + (double)lg->issued * lg->interval) <= now) {
        issue(lg, next);
        lg->issued++;
    }
    if (lg->issued >= lg->total) {
        /* The last answers get DRAIN_TIMEOUT_S; then they are timeouts. */
        struct timeval drain = {DRAIN_TIMEOUT_S, 0};

        event_assign(lg->tick, lg->base, -1, 0, on_release, lg);
        evtimer_add(lg->tick, &drain);
        lg->measure_end = now;
        finish_if_done(lg);
        return;
    }
    tv.tv_sec = (time_t)((next - now) / 1e6);
    tv.tv_usec = (suseconds_t)(next - now - (double)tv.tv_sec * 1e6);
    evtimer_add(lg->tick, &tv);
}

/* Opens the first connections before the clock starts, so the first
 * requests do not pay for a TCP handshake the later ones do not. */
static void start_rate(struct lg *lg)
{
    struct timeval warm = {0, 200000};

    lg->interval = 1e6 / lg->rate;
    lg->total = (long)(lg->rate * (lg->warmup + lg->duration));
    for (long i = 0; i < lg->init_conns && i < lg->max_conns; i++) {
        struct conn *c = conn_new(lg);

        if (c != NULL)
            idle_push(c);
    }
    lg->tick = evtimer_new(lg->base, on_tick, lg);
    evtimer_add(lg->tick, &warm);
    lg->start = now_us() + 200000;
}

/* ---- closed mode ---- */

static void start_closed(struct lg *lg)
{
    lg->start = now_us();
    for (long i = 0; i < lg->init_conns && lg->issued < lg->requests; i++) {
        struct conn *c = conn_new(lg);

        if (c == NULL)
            continue;
        lg->issued++;
        send_request(c, now_us());
    }
}

/* ---- hold mode ---- */

static void on_release(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;

    (void)fd;
    (void)what;
    lg->is_done = true;
    event_base_loopbreak(lg->base);
}

/* Opens streams while fewer than --ramp are on their way. */
static void hold_open_more(struct lg *lg)
{
    while (lg->opening < lg->ramp && lg->issued < lg->streams) {
        struct conn *c = conn_new(lg);

        lg->issued++;
        if (c == NULL)
            continue;
        lg->opening++;
        send_request(c, now_us());
    }
}

static void hold_progress(struct conn *c)
{
    struct lg *lg = c->lg;

    c->is_held = true;
    lg->opening--;
    lg->held++;
    hold_open_more(lg);
}

static long failed(const struct lg *lg)
{
    return lg->err_connect + lg->err_status + lg->err_closed + lg->err_parse +
           lg->err_tokens + lg->err_timeout;
}

/* ---- the end ---- */

static void finish_hold(struct lg *lg)
{
    static bool is_announced;
    struct timeval tv = {(time_t)lg->hold_max, 0};
    struct event *release;

    hold_open_more(lg);
    if (is_announced || lg->opening > 0 || lg->issued < lg->streams)
        return;
    is_announced = true;
    lg->measure_end = now_us();
    printf("held=%ld failed=%ld open_s=%.3f\n", lg->held, failed(lg),
           (lg->measure_end - lg->start) / 1e6);
    fflush(stdout);
    release = evtimer_new(lg->base, on_release, lg);
    evtimer_add(release, &tv);
}

static void finish_if_done(struct lg *lg)
{
    if (lg->mode == MODE_HOLD) {
        finish_hold(lg);
        return;
    }
    if (lg->mode == MODE_RATE && lg->issued < lg->total)
        return;
    if (lg->mode == MODE_CLOSED && lg->issued < lg->requests)
        return;
    if (lg->in_flight > 0 || lg->pending_n > 0)
        return;
    if (lg->measure_end == 0 || lg->mode == MODE_CLOSED)
        lg->measure_end = now_us();
    lg->is_done = true;
    event_base_loopbreak(lg->base);
}

static void print_samples(const char *name, struct samples *s)
{
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    printf(" %s_p50_us=%.1f %s_p90_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f"
           " %s_max_us=%.1f",
           name, percentile(s, 50), name, percentile(s, 90), name,
           percentile(s, 99), name, percentile(s, 99.9), name,
           percentile(s, 100));
}

static void report(struct lg *lg)
{
    static const char *const modes[] = {"rate", "closed", "hold"};
    double secs = (lg->measure_end - lg->start) / 1e6;

    if (lg->mode == MODE_RATE)
        secs = lg->duration;
    /* Held streams are meant to be in flight at the end; others are not. */
    if (lg->mode != MODE_HOLD)
        lg->err_timeout += lg->in_flight + (long)lg->pending_n;
    printf("mode=%s ok=%ld errors=%ld err_connect=%ld err_status=%ld "
           "err_closed=%ld err_parse=%ld err_tokens=%ld err_timeout=%ld "
           "first_bad_status=%d measured=%zu conns=%ld secs=%.3f "
           "rps=%.1f held=%ld",
           modes[lg->mode], lg->ok, failed(lg), lg->err_connect, lg->err_status,
           lg->err_closed, lg->err_parse, lg->err_tokens, lg->err_timeout,
           lg->first_bad_status, lg->lat.n, lg->n_conns, secs,
           secs > 0 ? (double)lg->lat.n / secs : 0, lg->held);
    print_samples("lat", &lg->lat);
    if (lg->is_stream && lg->mode != MODE_HOLD) {
        print_samples("ttft", &lg->ttft);
        print_samples("total", &lg->end);
    }
    printf("\n");
    fflush(stdout);
}

/* ---- command line ---- */

static void usage(void)
{
    fputs("usage: loadgen --url http://127.0.0.1:PORT/PATH --body JSON\n"
          "         [--key KEY] [--stream] [--expect STATUS] [--tokens N]\n"
          "         rate:   --rate R --duration S [--warmup S] [--conns N]\n"
          "                 [--max-conns N]\n"
          "         closed: --requests N [--conns C]\n"
          "         hold:   --streams N [--ramp K] [--hold-max S]\n",
          stderr);
    exit(2);
}

/* Only http://IPv4:PORT/PATH: the bench runs on 127.0.0.1. */
static void parse_url(struct lg *lg, const char *url, const char **host,
                      char *path, size_t cap)
{
    static char hostport[64];
    const char *p = url + 7, *slash;
    char *colon;

    if (strncmp(url, "http://", 7) != 0 || (slash = strchr(p, '/')) == NULL ||
        (size_t)(slash - p) >= sizeof(hostport) || strlen(slash) >= cap)
        die("--url must be http://IP:PORT/PATH");
    memcpy(hostport, p, (size_t)(slash - p));
    hostport[slash - p] = '\0';
    strcpy(path, slash);
    colon = strchr(hostport, ':');
    if (colon == NULL)
        die("--url needs a port");
    *colon = '\0';
    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, hostport, &lg->addr.sin_addr) != 1)
        die("--url needs an IPv4 address");
    *colon = ':';
    *host = hostport;
}

static void build_request(struct lg *lg, const char *url, const char *key,
                          const char *body)
{
    char path[1024], auth[512] = "";
    const char *host;
    int n;

    parse_url(lg, url, &host, path, sizeof(path));
    if (key != NULL)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", key);
    n = asprintf(&lg->request,
                 "POST %s HTTP/1.1\r\nHost: %s\r\n%s"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 path, host, auth, strlen(body), body);
    if (n < 0)
        die("out of memory");
    lg->request_len = (size_t)n;
}

static void parse_options(struct lg *lg, int argc, char **argv)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"body", required_argument, NULL, 'b'},
        {"key", required_argument, NULL, 'k'},
        {"stream", no_argument, NULL, 's'},
        {"expect", required_argument, NULL, 'e'},
        {"tokens", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"conns", required_argument, NULL, 'c'},
        {"max-conns", required_argument, NULL, 'm'},
        {"requests", required_argument, NULL, 'n'},
        {"streams", required_argument, NULL, 'S'},
        {"ramp", required_argument, NULL, 'R'},
        {"hold-max", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *body = NULL, *key = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'b': body = optarg; break;
        case 'k': key = optarg; break;
        case 's': lg->is_stream = true; break;
        case 'e': lg->expect_status = atoi(optarg); break;
        case 't': lg->expect_tokens = atoi(optarg); break;
        case 'r': lg->rate = atof(optarg); break;
        case 'd': lg->duration = atof(optarg); break;
        case 'w': lg->warmup = atof(optarg); break;
        case 'c': lg->init_conns = atol(optarg); break;
        case 'm': lg->max_conns = atol(optarg); break;
        case 'n': lg->requests = atol(optarg); break;
        case 'S': lg->streams = atol(optarg); break;
        case 'R': lg->ramp = atol(optarg); break;
        case 'H': lg->hold_max = atof(optarg); break;
        default: usage();
        }
    }
    if (url == NULL || body == NULL || optind != argc)
        usage();
    build_request(lg, url, key, body);
}

static void choose_mode(struct lg *lg)
{
    if (lg->rate > 0 && lg->duration > 0) {
        lg->mode = MODE_RATE;
    } else if (lg->requests > 0) {
        lg->mode = MODE_CLOSED;
        lg->max_conns = lg->init_conns;
    } else if (lg->streams > 0) {
        lg->mode = MODE_HOLD;
        lg->is_stream = true;
        lg->max_conns = lg->streams;
    } else {
        usage();
    }
    if (lg->max_conns < lg->init_conns)
        lg->max_conns = lg->init_conns;
    lg->all = calloc((size_t)lg->max_conns, sizeof(*lg->all));
    if (lg->all == NULL)
        die("out of memory");
}

static void raise_fd_limit(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* Precise timers (timerfd): the rate mode's send times are microseconds
 * apart, and epoll's millisecond timeout would bunch them. */
static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL)
        die("out of memory");
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (base == NULL)
        die("cannot create an event base");
    return base;
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    on_release(-1, 0, arg);
}

int main(int argc, char **argv)
{
    struct lg lg = {.expect_status = 200,
                    .max_conns = DEFAULT_MAX_CONN,
                    .init_conns = 64,
                    .ramp = 256,
                    .hold_max = 600};
    struct event *term, *intr;

    parse_options(&lg, argc, argv);
    choose_mode(&lg);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    lg.base = new_base();
    term = evsignal_new(lg.base, SIGTERM, on_stop, &lg);
    intr = evsignal_new(lg.base, SIGINT, on_stop, &lg);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    if (lg.mode == MODE_RATE)
        start_rate(&lg);
    else if (lg.mode == MODE_CLOSED)
        start_closed(&lg);
    else {
        lg.start = now_us();
        hold_open_more(&lg);
    }
    event_base_dispatch(lg.base);
    if (!lg.is_done)
        return 1;
    report(&lg);
    return failed(&lg) > 0 ? 1 : 0;
}
