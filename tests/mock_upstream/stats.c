/*
 * stats.c - what tests ask the mock about: request counters and the last
 * provider request, served under /_mock/.
 *
 * Every provider request is counted when it arrives, before authentication,
 * so a test can see that a call reached the upstream even when it was
 * refused. The last request is kept as the JSON GET /_mock/last answers,
 * built once when it arrives, so reading it costs nothing and it survives
 * the call that it describes.
 */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

static const char *const provider_names[MOCK_N_PROVIDERS] = {
    "openai",
    "anthropic",
    "bedrock",
    "gemini",
};

void mock_stats_count(struct mock_server *srv, enum mock_provider_id p)
{
    srv->stats.total++;
    srv->stats.by_provider[p]++;
}

uint64_t mock_stats_model_count(const struct mock_server *srv,
                                const char *model)
{
    for (size_t i = 0; i < srv->stats.n_models; i++)
        if (strcmp(srv->stats.models[i].name, model) == 0)
            return srv->stats.models[i].count;
    return 0;
}

void mock_stats_count_model(struct mock_server *srv, const char *model)
{
    struct mock_stats *st = &srv->stats;
    struct mock_model_count *grown;
    size_t cap;

    for (size_t i = 0; i < st->n_models; i++) {
        if (strcmp(st->models[i].name, model) == 0) {
            st->models[i].count++;
            return;
        }
    }
    if (st->n_models == st->cap_models) {
        cap = st->cap_models ? 2 * st->cap_models : 8;
        grown = realloc(st->models, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        st->models = grown;
        st->cap_models = cap;
    }
    st->models[st->n_models].name = strdup(model);
    if (st->models[st->n_models].name == NULL)
        return;
    st->models[st->n_models++].count = 1;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    default: return "OTHER";
    }
}

static void write_lower(struct evbuffer *b, const char *s)
{
    char buf[256];
    size_t n = strlen(s);

    if (n >= sizeof(buf)) {
        tg_json_write_str(b, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    tg_json_write_str(b, buf, n);
}

static bool seen_before(const struct evkeyval *h, const struct evkeyvalq *all)
{
    const struct evkeyval *o;

    TAILQ_FOREACH(o, all, next)
    {
        if (o == h)
            return false;
        if (strcasecmp(o->key, h->key) == 0)
            return true;
    }
    return false;
}

/* Headers by lower-cased name; a repeated name's values joined by ", ". */
static void write_headers(struct evbuffer *b, const struct evkeyvalq *all)
{
    const struct evkeyval *h, *o;
    bool is_first = true;

    evbuffer_add(b, "{", 1);
    TAILQ_FOREACH(h, all, next)
    {
        struct evbuffer *value = evbuffer_new();

        if (value == NULL || seen_before(h, all)) {
            if (value != NULL)
                evbuffer_free(value);
            continue;
        }
        for (o = h; o != NULL; o = TAILQ_NEXT(o, next)) {
            if (strcasecmp(o->key, h->key) != 0)
                continue;
            if (o != h)
                evbuffer_add(value, ", ", 2);
            evbuffer_add(value, o->value, strlen(o->value));
        }
        evbuffer_add_printf(b, "%s", is_first ? "" : ",");
        write_lower(b, h->key);
        evbuffer_add(b, ":", 1);
        tg_json_write_str(b, (const char *)evbuffer_pullup(value, -1),
                          evbuffer_get_length(value));
        evbuffer_free(value);
        is_first = false;
    }
    evbuffer_add(b, "}", 1);
}

void mock_stats_record(struct mock_server *srv, struct mock_call *c)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL)
        return;
    evbuffer_add_printf(b, "{\"method\":\"%s\",\"path\":",
                        method_name(evhttp_request_get_command(c->req)));
    tg_json_write_str(b, c->path, strlen(c->path));
    TG_ADD_LIT(b, ",\"query\":");
    if (c->query != NULL)
        tg_json_write_str(b, c->query, strlen(c->query));
    else
        TG_ADD_LIT(b, "null");
    TG_ADD_LIT(b, ",\"headers\":");
    write_headers(b, evhttp_request_get_input_headers(c->req));
    TG_ADD_LIT(b, ",\"body\":");
    if (c->body_len == 0)
        TG_ADD_LIT(b, "null");
    else if (c->is_json)
        evbuffer_add(b, c->body, c->body_len);
    else
        tg_json_write_str(b, c->body, c->body_len);
    TG_ADD_LIT(b, "}");
    if (srv->stats.last != NULL)
        evbuffer_free(srv->stats.last);
    srv->stats.last = b;
}

void mock_stats_reset(struct mock_stats *st)
{
    for (size_t i = 0; i < st->n_models; i++)
        free(st->models[i].name);
    st->n_models = 0;
    st->total = 0;
    memset(st->by_provider, 0, sizeof(st->by_provider));
    if (st->last != NULL)
        evbuffer_free(st->last);
    st->last = NULL;
}

void mock_stats_free(struct mock_stats *st)
{
    mock_stats_reset(st);
    free(st->models);
    st->models = NULL;
    st->cap_models = 0;
}

void mock_reply_plain(struct evhttp_request *req, int status, const char *json)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    if (b != NULL)
        evbuffer_add(b, json, strlen(json));
    evhttp_send_reply(req, status, NULL, b);
    if (b != NULL)
        evbuffer_free(b);
}

static void reply_buffer(struct evhttp_request *req, struct evbuffer *b)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, 200, NULL, b);
}

static void serve_stats(struct mock_server *srv, struct evhttp_request *req)
{
    const struct mock_stats *st = &srv->stats;
    struct evbuffer *b = evbuffer_new();

    if (b == NULL) {
        mock_reply_plain(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    evbuffer_add_printf(b, "{\"total\":%llu,\"by_provider\":{",
                        (unsigned long long)st->total);
    for (int p = 0; p < MOCK_N_PROVIDERS; p++)
        evbuffer_add_printf(b, "%s\"%s\":%llu", p ? "," : "", provider_names[p],
                            (unsigned long long)st->by_provider[p]);
    TG_ADD_LIT(b, "},\"by_model\":{");
    for (size_t i = 0; i < st->n_models; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        tg_json_write_str(b, st->models[i].name, strlen(st->models[i].name));
        evbuffer_add_printf(b, ":%llu",
                            (unsigned long long)st->models[i].count);
    }
    TG_ADD_LIT(b, "}}");
    reply_buffer(req, b);
    evbuffer_free(b);
}

static void serve_last(struct mock_server *srv, struct evhttp_request *req)
{
    const struct mock_stats *st = &srv->stats;
    struct evbuffer *b;

    if (st->last == NULL) {
        mock_reply_plain(req, 404, "{\"error\":\"no provider request yet\"}");
        return;
    }
    b = evbuffer_new();
    if (b == NULL) {
        mock_reply_plain(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    /* A copy, since evhttp_send_reply drains the buffer it is given. */
    evbuffer_add(b, evbuffer_pullup(st->last, -1),
                 evbuffer_get_length(st->last));
    reply_buffer(req, b);
    evbuffer_free(b);
}

static void serve_reset(struct mock_server *srv, struct evhttp_request *req)
{
    mock_stats_reset(&srv->stats);
    mock_reply_plain(req, 200, "{\"ok\":true}");
}

struct control {
    const char *path;
    enum evhttp_cmd_type method;
    void (*serve)(struct mock_server *srv, struct evhttp_request *req);
};

static const struct control controls[] = {
    {"/_mock/stats", EVHTTP_REQ_GET, serve_stats},
    {"/_mock/last", EVHTTP_REQ_GET, serve_last},
    {"/_mock/reset", EVHTTP_REQ_POST, serve_reset},
};

bool mock_stats_serve(struct mock_server *srv, struct evhttp_request *req,
                      const char *path)
{
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
        if (strcmp(path, controls[i].path) != 0)
            continue;
        if (evhttp_request_get_command(req) != controls[i].method)
            mock_reply_plain(req, 405, "{\"error\":\"method not allowed\"}");
        else
            controls[i].serve(srv, req);
        return true;
    }
    return false;
}
