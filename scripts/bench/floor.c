/*
 * floor.c - the benchmark's evhttp floor: what libevent's evhttp server
 * costs per request by itself, with nothing behind it.
 *
 * tollgate's workers serve HTTP through evhttp (the architecture fixes it).
 * This server answers every request with the very answer tollgate gives a
 * small chat completion: the same status, the same thirteen headers and the
 * same 358-byte body, but with no upstream, no authentication, no JSON and
 * no log. Its requests/s on one core is thus the most any evhttp server
 * could do for that answer; the report sets it beside tollgate and nginx so
 * that a reader can see how much of tollgate's cost per request is the
 * server library and how much is what tollgate adds. It is linked with
 * tollgate's printf-free evbuffer_add_printf (worker/evbuffer_printf.c), as
 * tollgate is, so that it stays a floor.
 *
 * It binds 127.0.0.1 on the port given (0: any), prints
 * "listening on 127.0.0.1:PORT" and stops on SIGTERM or SIGINT.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* tollgate's answer to the bench's request, byte for byte but the id. */
static const char answer[] =
    "{\"id\":\"chatcmpl-req_fbc756918d220a2801293ce1\",\"object\":"
    "\"chat.completion\",\"created\":1795436823,\"model\":\"bench\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello! How can I help you today?\",\"refusal\":null},"
    "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
    "{\"prompt_tokens\":9,\"completion_tokens\":9,\"total_tokens\":18},"
    "\"system_fingerprint\":null}";

/* The headers tollgate adds to it (Date too, below); evhttp adds
 * Content-Length. */
static const char *const headers[][2] = {
    {"Content-Type", "application/json"},
    {"x-request-id", "req_fbc756918d220a2801293ce1"},
    {"x-tollgate-provider", "up"},
    {"x-tollgate-model", "bench"},
    {"x-tollgate-fallbacks", "0"},
    {"x-ratelimit-limit-requests", "1000000000"},
    {"x-ratelimit-remaining-requests", "999999999"},
    {"x-ratelimit-reset-requests", "1ms"},
    {"x-ratelimit-limit-tokens", "1000000000000"},
    {"x-ratelimit-remaining-tokens", "999999999977"},
    {"x-ratelimit-reset-tokens", "1ms"},
};

/* Formatted once a second, as tollgate does. */
static const char *http_date(void)
{
    static time_t second = -1;
    static char date[40];
    time_t now = time(NULL);
    struct tm tm;

    if (now != second && gmtime_r(&now, &tm) != NULL) {
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        second = now;
    }
    return date;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    size_t i;

    (void)arg;
    evhttp_add_header(out, "Date", http_date());
    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        evhttp_add_header(out, headers[i][0], headers[i][1]);
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), answer,
                           sizeof(answer) - 1, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/* The same event base as tollgate's workers: epoll with the changelist. */
static struct event_base *new_base(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

/* The port the socket got (the one asked for, or the kernel's pick). */
static int bound_port(struct evhttp_bound_socket *bound)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin,
                    &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

int main(int argc, char **argv)
{
    struct event_base *base = new_base();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evhttp_bound_socket *bound;
    struct event *term, *intr;
    int port = argc > 1 ? atoi(argv[1]) : 0;

    if (http == NULL) {
        fprintf(stderr, "floor: out of memory\n");
        return 1;
    }
    evhttp_set_gencb(http, on_request, NULL);
    bound =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (bound == NULL) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    term = evsignal_new(base, SIGTERM, on_signal, base);
    intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    printf("listening on 127.0.0.1:%d\n", bound_port(bound));
    fflush(stdout);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
