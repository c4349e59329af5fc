/*
 * call.c - one provider request, from arrival to the answer being handed to
 * send.c, and the JSON field readers the providers share.
 *
 * The order is fixed so that tests can rely on it: the request is recorded
 * for GET /_mock/last and counted first (whatever happens next), then
 * authenticated, then parsed (400 on a malformed body), then its fault is
 * applied, and only then is the deterministic answer worked out and
 * rendered. Everything the call allocates lives in its arena or in c->out
 * and dies with it.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"
#include "tg.h"

#define ARENA_FIRST_BLOCK 8192

static struct mock_call *call_new(struct mock_server *srv,
                                  struct evhttp_request *req,
                                  const struct mock_provider *p)
{
    struct mock_call *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->out = evbuffer_new();
    if (c->out == NULL) {
        free(c);
        return NULL;
    }
    c->srv = srv;
    c->provider = p;
    c->req = req;
    c->id = ++srv->seq;
    c->status = 200;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    tg_arena_init(&c->arena, ARENA_FIRST_BLOCK);
    c->next = srv->calls;
    if (srv->calls != NULL)
        srv->calls->prev = c;
    srv->calls = c;
    return c;
}

void mock_call_free(struct mock_call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->srv->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->timer != NULL)
        event_free(c->timer);
    evbuffer_free(c->out);
    free(c->pieces);
    tg_arena_free(&c->arena);
    free(c);
}

/* Copies the target and the body into the arena and parses the body. */
static int read_request(struct mock_call *c, const char *path,
                        const char *query)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
    size_t len = evbuffer_get_length(in);
    struct tg_json_error err;
    char *body;

    c->path = tg_arena_strndup(&c->arena, path, strlen(path));
    c->query = query ? tg_arena_strndup(&c->arena, query, strlen(query)) : NULL;
    body = tg_arena_alloc(&c->arena, len + 1);
    if (c->path == NULL || (query != NULL && c->query == NULL) || body == NULL)
        return -1;
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    c->body = body;
    c->body_len = len;
    c->is_json = tg_json_parse(&c->json, body, len, &c->arena, &err) == TG_OK;
    return 0;
}

/* The fault named by the x-mock-fault header, else by the model. */
static int apply_fault(struct mock_call *c)
{
    const char *name = evhttp_find_header(
        evhttp_request_get_input_headers(c->req), "x-mock-fault");
    int rc;

    if (name == NULL)
        name = c->model;
    if (name == NULL)
        return 0;
    rc = mock_fault_parse(name, &c->fault);
    if (rc < 0) {
        c->provider->render_error(
            c, 400, NULL,
            tg_arena_printf(&c->arena, "unknown mock fault: %s", name));
        return -1;
    }
    if (c->fault.kind == MOCK_FAULT_STATUS) {
        c->provider->render_error(c, c->fault.value, NULL, NULL);
        return -1;
    }
    if (c->fault.kind == MOCK_FAULT_FLAKY) {
        /* This request is already counted: the first <n> fail. */
        if (c->model != NULL && mock_stats_model_count(c->srv, c->model) <=
                                    (uint64_t)c->fault.value) {
            c->provider->render_error(c, 503, NULL, NULL);
            return -1;
        }
        c->fault.kind = MOCK_FAULT_NONE;
    }
    return 0;
}

/* Renders into c->out either the answer or the error that stops it. */
static void answer(struct mock_call *c)
{
    const struct mock_provider *p = c->provider;

    if (p->authenticate(c) != 0)
        return;
    if (!c->is_json) {
        p->render_error(c, 400, NULL, "The request body is not valid JSON.");
        return;
    }
    if (p->parse(c) != 0) {
        p->render_error(c, 400, NULL,
                        c->error ? c->error : "The request is invalid.");
        return;
    }
    if (apply_fault(c) != 0)
        return;
    if (mock_reply_compute(c) != 0) {
        p->render_error(c, 500, NULL, NULL);
        return;
    }
    p->render(c);
}

void mock_call_serve(struct mock_server *srv, struct evhttp_request *req,
                     const struct mock_provider *p, const char *path,
                     const char *query)
{
    struct mock_call *c = call_new(srv, req, p);

    if (c == NULL) {
        mock_reply_plain(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    if (read_request(c, path, query) != 0) {
        mock_call_free(c);
        mock_reply_plain(req, 500, "{\"error\":\"out of memory\"}");
        return;
    }
    mock_stats_record(srv, c);
    mock_stats_count(srv, p->id);
    c->model = p->model_of(c);
    if (c->model != NULL)
        mock_stats_count_model(srv, c->model);
    answer(c);
    mock_send(c);
}

int mock_piece_end(struct mock_call *c, enum mock_piece_kind kind)
{
    size_t total = evbuffer_get_length(c->out);

    if (c->n_pieces == c->cap_pieces) {
        size_t cap = c->cap_pieces ? 2 * c->cap_pieces : 16;
        struct mock_piece *p = realloc(c->pieces, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        c->pieces = p;
        c->cap_pieces = cap;
    }
    c->pieces[c->n_pieces++] =
        (struct mock_piece){total - c->piece_bytes, kind};
    c->piece_bytes = total;
    return 0;
}

void mock_header(struct mock_call *c, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(c->req), name, value);
}

int64_t mock_elapsed_ms(const struct mock_call *c)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - c->started.tv_sec) * 1000 +
           (now.tv_nsec - c->started.tv_nsec) / 1000000;
}

/* ---- JSON fields ---- */

static bool has_type(const struct mock_call *c, int i, enum tg_json_type type)
{
    enum tg_json_type t = tg_json_type(&c->json, i);

    if (type == TG_JSON_TRUE)
        return t == TG_JSON_TRUE || t == TG_JSON_FALSE;
    return t == type;
}

static const char *type_name(enum tg_json_type type)
{
    return type == TG_JSON_TRUE ? "a boolean" : tg_json_type_name(type);
}

int mock_expect(struct mock_call *c, int i, enum tg_json_type type,
                const char *what)
{
    if (has_type(c, i, type))
        return i;
    c->error = tg_arena_printf(
        &c->arena, "Invalid type for '%s': expected %s, but got %s instead.",
        what, type_name(type), tg_json_type_name(tg_json_type(&c->json, i)));
    return MOCK_BAD;
}

int mock_field(struct mock_call *c, int obj, const char *key,
               enum tg_json_type type, bool is_required)
{
    int i = tg_json_get(&c->json, obj, key);

    if (i < 0 || tg_json_type(&c->json, i) == TG_JSON_NULL) {
        if (!is_required)
            return MOCK_ABSENT;
        c->error = tg_arena_printf(&c->arena,
                                   "Missing required parameter: '%s'.", key);
        return MOCK_BAD;
    }
    return mock_expect(c, i, type, key);
}

int mock_string(struct mock_call *c, int i, struct tg_str *out)
{
    char *s;
    size_t n;

    if (tg_json_str(&c->json, i, &c->arena, &s, &n) != TG_OK)
        return -1;
    out->ptr = s;
    out->len = n;
    return 0;
}

int mock_positive_int(struct mock_call *c, int obj, const char *key, bool *has,
                      int64_t *out)
{
    int i = mock_field(c, obj, key, TG_JSON_NUMBER, false);

    if (i == MOCK_ABSENT)
        return 0;
    if (i == MOCK_BAD)
        return -1;
    if (tg_json_int64(&c->json, i, out) != TG_OK || *out < 1) {
        c->error = tg_arena_printf(
            &c->arena, "Invalid '%s': expected an integer of at least 1.", key);
        return -1;
    }
    *has = true;
    return 0;
}

struct tg_str mock_raw(const struct mock_call *c, int i)
{
    struct tg_str s;

    s.ptr = tg_json_raw(&c->json, i, &s.len);
    if (s.ptr == NULL)
        s.len = 0;
    return s;
}

int mock_append(struct mock_call *c, struct tg_str *a, struct tg_str b)
{
    char *s;

    if (b.len == 0)
        return 0;
    s = tg_arena_alloc(&c->arena, a->len + b.len + 1);
    if (s == NULL)
        return -1;
    if (a->len > 0)
        memcpy(s, a->ptr, a->len);
    memcpy(s + a->len, b.ptr, b.len);
    s[a->len + b.len] = '\0';
    a->ptr = s;
    a->len += b.len;
    return 0;
}

/* The "model" string of a JSON body, or NULL. */
const char *mock_body_model(struct mock_call *c)
{
    int i;
    struct tg_str model;

    if (!c->is_json || tg_json_type(&c->json, 0) != TG_JSON_OBJECT)
        return NULL;
    i = tg_json_get(&c->json, 0, "model");
    if (tg_json_type(&c->json, i) != TG_JSON_STRING ||
        mock_string(c, i, &model) != 0)
        return NULL;
    return model.ptr;
}

/* The text parts of an array of content blocks, joined. */
static int block_texts(struct mock_call *c, int arr, const char *what,
                       struct tg_str *out)
{
    int cursor = 0, part, type, text;
    struct tg_str piece;

    while (tg_json_element(&c->json, arr, &cursor, &part)) {
        if (mock_expect(c, part, TG_JSON_OBJECT, what) < 0)
            return -1;
        type = mock_field(c, part, "type", TG_JSON_STRING, true);
        if (type < 0)
            return -1;
        if (!tg_json_str_eq(&c->json, type, "text"))
            continue;
        text = mock_field(c, part, "text", TG_JSON_STRING, true);
        if (text < 0 || mock_string(c, text, &piece) != 0 ||
            mock_append(c, out, piece) != 0)
            return -1;
    }
    return 0;
}

int mock_content_text(struct mock_call *c, int i, const char *what,
                      struct tg_str *out)
{
    enum tg_json_type t = tg_json_type(&c->json, i);

    *out = (struct tg_str){"", 0};
    if (i < 0 || t == TG_JSON_NULL)
        return 0;
    if (t == TG_JSON_STRING)
        return mock_string(c, i, out);
    if (t == TG_JSON_ARRAY)
        return block_texts(c, i, what, out);
    c->error = tg_arena_printf(
        &c->arena,
        "Invalid type for '%s': expected a string or an array, but got %s "
        "instead.",
        what, tg_json_type_name(t));
    return -1;
}

void mock_begin_answer(struct mock_call *c, int status,
                       const char *content_type)
{
    c->status = status;
    c->is_stream_answer = false;
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
    c->n_pieces = 0;
    c->piece_bytes = 0;
    evhttp_clear_headers(evhttp_request_get_output_headers(c->req));
    mock_header(c, "Content-Type", content_type);
    if (status == 429)
        mock_header(c, "retry-after", "1");
}

void mock_count_prompt(struct mock_call *c, struct tg_str text)
{
    c->convo.prompt_chars += mock_code_points(text.ptr, text.len);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *mock_uri_decode(struct mock_call *c, const char *s, size_t n)
{
    char *out = tg_arena_alloc(&c->arena, n + 1);
    size_t len = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi = s[i] == '%' && i + 2 < n ? hex_digit(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;

        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            out[len++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[len++] = s[i];
        }
    }
    out[len] = '\0';
    return out;
}
