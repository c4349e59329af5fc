/*
 * main.c - the mock upstream's command line, listener, TLS and routing.
 *
 * It binds 127.0.0.1 only, prints "listening on 127.0.0.1:PORT" once the
 * socket is bound (tests parse that line), and routes each request either to
 * the /_mock control endpoints or to the provider whose paths it matches.
 * SIGTERM and SIGINT break the loop (libevent delivers them as events, so no
 * work happens in a signal handler); everything is then freed so that
 * valgrind and ASan see a clean exit.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mock.h"

#define LISTEN_ADDR "127.0.0.1"

struct options {
    int port;
    const char *tls_cert;
    const char *tls_key;
    struct mock_keys keys;
};

static const struct mock_provider *const providers[] = {
    &mock_openai,
    &mock_anthropic,
    &mock_bedrock,
    &mock_gemini,
};

static void usage(FILE *to)
{
    fputs("usage: mock-upstream --port N [--tls-cert FILE --tls-key FILE]\n"
          "         [--openai-key K] [--anthropic-key K] [--gemini-key K]\n"
          "         [--aws-access-key-id ID --aws-secret-access-key S]\n",
          to);
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"port", required_argument, NULL, 'p'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"openai-key", required_argument, NULL, 'o'},
        {"anthropic-key", required_argument, NULL, 'a'},
        {"gemini-key", required_argument, NULL, 'g'},
        {"aws-access-key-id", required_argument, NULL, 'i'},
        {"aws-secret-access-key", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (struct options){
        .keys = {"sk-mock", "sk-ant-mock", "gm-mock", "AKIDMOCK",
                 "mock-secret"},
    };
    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (parse_port(optarg, &o->port) != 0)
                return -1;
            break;
        case 'c': o->tls_cert = optarg; break;
        case 'k': o->tls_key = optarg; break;
        case 'o': o->keys.openai = optarg; break;
        case 'a': o->keys.anthropic = optarg; break;
        case 'g': o->keys.gemini = optarg; break;
        case 'i': o->keys.aws_access_key_id = optarg; break;
        case 's': o->keys.aws_secret_access_key = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc || (o->tls_cert == NULL) != (o->tls_key == NULL))
        return -1;
    return 0;
}

/* ---- routing ---- */

/* Splits the request target as it came on the wire into path and query,
 * both copied (the caller frees the path; query points into it). */
static char *split_target(struct evhttp_request *req, const char **query)
{
    char *path = strdup(evhttp_request_get_uri(req));
    char *q;

    *query = NULL;
    if (path == NULL)
        return NULL;
    q = strchr(path, '?');
    if (q != NULL) {
        *q = '\0';
        *query = q + 1;
    }
    return path;
}

static const struct mock_provider *find_provider(const char *path)
{
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
        if (providers[i]->match(path))
            return providers[i];
    return NULL;
}

static void route(struct evhttp_request *req, void *arg)
{
    struct mock_server *srv = arg;
    const struct mock_provider *p;
    const char *query;
    char *path = split_target(req, &query);

    if (path == NULL) {
        mock_reply_plain(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    if (!mock_stats_serve(srv, req, path)) {
        p = find_provider(path);
        if (p == NULL)
            mock_reply_plain(req, 404, "{\"error\":\"no such endpoint\"}");
        else if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
            mock_reply_plain(req, 405, "{\"error\":\"method not allowed\"}");
        else
            mock_call_serve(srv, req, p, path, query);
    }
    free(path);
}

/* ---- TLS ---- */

static SSL_CTX *tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* evhttp asks for each accepted connection's bufferevent here; it sets the
 * socket afterwards, hence fd -1. */
static struct bufferevent *tls_bufferevent(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);

    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* ---- lifetime ---- */

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

static int bound_port(struct evhttp_bound_socket *sock)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin,
                    &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

static int start_http(struct mock_server *srv, int port, SSL_CTX *tls)
{
    struct evhttp_bound_socket *sock;
    int bound;

    srv->http = evhttp_new(srv->base);
    if (srv->http == NULL)
        return -1;
    evhttp_set_allowed_methods(
        srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                       EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(srv->http, route, srv);
    if (tls != NULL)
        evhttp_set_bevcb(srv->http, tls_bufferevent, tls);
    sock = evhttp_bind_socket_with_handle(srv->http, LISTEN_ADDR,
                                          (ev_uint16_t)port);
    if (sock == NULL || (bound = bound_port(sock)) < 0) {
        fprintf(stderr, "mock-upstream: cannot listen on %s:%d\n", LISTEN_ADDR,
                port);
        return -1;
    }
    printf("listening on %s:%d\n", LISTEN_ADDR, bound);
    fflush(stdout);
    return 0;
}

/* Calls still waiting (a delay, a stream) are dropped with the server:
 * evhttp_free frees the requests it still holds, and a request whose client
 * went away belongs to us alone. */
static void free_server(struct mock_server *srv)
{
    while (srv->calls != NULL) {
        struct mock_call *c = srv->calls;

        if (evhttp_request_get_connection(c->req) == NULL)
            evhttp_request_free(c->req);
        mock_call_free(c);
    }
    if (srv->http != NULL)
        evhttp_free(srv->http);
    for (size_t i = 0; i <= MOCK_MAX_TRICKLE; i++)
        if (srv->trickle[i] != NULL)
            ev_token_bucket_cfg_free(srv->trickle[i]);
    mock_stats_free(&srv->stats);
}

static int run(const struct options *o, SSL_CTX *tls)
{
    struct mock_server srv = {.keys = o->keys};
    struct event *sig_term = NULL, *sig_int = NULL;
    int rc = 1;

    srv.base = event_base_new();
    if (srv.base == NULL)
        return 1;
    sig_term = evsignal_new(srv.base, SIGTERM, on_stop_signal, srv.base);
    sig_int = evsignal_new(srv.base, SIGINT, on_stop_signal, srv.base);
    if (sig_term != NULL && sig_int != NULL &&
        evsignal_add(sig_term, NULL) == 0 && evsignal_add(sig_int, NULL) == 0 &&
        start_http(&srv, o->port, tls) == 0)
        rc = event_base_dispatch(srv.base) < 0 ? 1 : 0;
    free_server(&srv);
    if (sig_term != NULL)
        event_free(sig_term);
    if (sig_int != NULL)
        event_free(sig_int);
    event_base_free(srv.base);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    SSL_CTX *tls = NULL;
    int rc;

    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    /* A client that hangs up mid-stream must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    if (o.tls_cert != NULL) {
        tls = tls_context(o.tls_cert, o.tls_key);
        if (tls == NULL) {
            fprintf(stderr, "mock-upstream: cannot load %s / %s\n", o.tls_cert,
                    o.tls_key);
            return 1;
        }
    }
    rc = run(&o, tls);
    if (tls != NULL)
        SSL_CTX_free(tls);
    libevent_global_shutdown();
    return rc;
}
