/*
 * back_openai.c - OpenAI-compatible providers (OpenAI, Groq, vLLM, Ollama,
 * llama.cpp's server): POST {base_url}/chat/completions.
 *
 * The canonical request maps almost one to one: roles, tool calls with
 * their ids, tool results by tool_call_id, tools as functions. Streams ask
 * for stream_options.include_usage so usage is always known. Streamed tool
 * calls arrive as a header chunk (index, id, name) then argument fragments
 * by index; the OpenAI index is the canonical one.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_json.h"
#include "tg_wire.h"

#define JSTR(b, s) tg_json_write_str((b), (s).ptr, (s).len)

static const char *const role_names[] = {"system", "user", "assistant", "tool"};

static void encode_tool_calls(struct evbuffer *b, const struct tg_message *m)
{
    size_t i;

    TG_ADD_LIT(b, ",\"tool_calls\":[");
    for (i = 0; i < m->n_calls; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"id\":");
        JSTR(b, m->calls[i].id);
        TG_ADD_LIT(b, ",\"type\":\"function\",\"function\":{\"name\":");
        JSTR(b, m->calls[i].name);
        TG_ADD_LIT(b, ",\"arguments\":");
        JSTR(b, m->calls[i].arguments);
        TG_ADD_LIT(b, "}}");
    }
    TG_ADD_LIT(b, "]");
}

static void encode_message(struct evbuffer *b, const struct tg_message *m)
{
    TG_ADD_LIT(b, "{\"role\":\"");
    evbuffer_add(b, role_names[m->role], strlen(role_names[m->role]));
    TG_ADD_LIT(b, "\",\"content\":");
    if (m->role == TG_ROLE_ASSISTANT && m->n_calls > 0 && m->text.len == 0)
        TG_ADD_LIT(b, "null");
    else
        JSTR(b, m->text);
    if (m->n_calls > 0)
        encode_tool_calls(b, m);
    if (m->role == TG_ROLE_TOOL) {
        TG_ADD_LIT(b, ",\"tool_call_id\":");
        JSTR(b, m->tool_call_id);
    }
    if (m->name.len > 0 && m->role != TG_ROLE_TOOL) {
        TG_ADD_LIT(b, ",\"name\":");
        JSTR(b, m->name);
    }
    TG_ADD_LIT(b, "}");
}

static void encode_tools(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i;

    TG_ADD_LIT(b, ",\"tools\":[");
    for (i = 0; i < c->n_tools; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"type\":\"function\",\"function\":{\"name\":");
        JSTR(b, c->tools[i].name);
        if (c->tools[i].description.len > 0) {
            TG_ADD_LIT(b, ",\"description\":");
            JSTR(b, c->tools[i].description);
        }
        TG_ADD_LIT(b, ",\"parameters\":");
        evbuffer_add(b, c->tools[i].parameters.ptr, c->tools[i].parameters.len);
        TG_ADD_LIT(b, "}}");
    }
    TG_ADD_LIT(b, "]");
    if (c->tool_choice == TG_TOOL_CHOICE_NONE)
        TG_ADD_LIT(b, ",\"tool_choice\":\"none\"");
    else if (c->tool_choice == TG_TOOL_CHOICE_REQUIRED)
        TG_ADD_LIT(b, ",\"tool_choice\":\"required\"");
    else if (c->tool_choice == TG_TOOL_CHOICE_NAMED) {
        TG_ADD_LIT(b, ",\"tool_choice\":{\"type\":\"function\",\"function\":"
                      "{\"name\":");
        JSTR(b, c->tool_choice_name);
        TG_ADD_LIT(b, "}}");
    }
}

static void encode_sampling(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i;

    if (c->has_temperature)
        evbuffer_add_printf(b, ",\"temperature\":%.17g", c->temperature);
    if (c->has_top_p)
        evbuffer_add_printf(b, ",\"top_p\":%.17g", c->top_p);
    if (c->has_max_tokens) {
        TG_ADD_LIT(b, ",\"max_tokens\":");
        tg_json_write_int(b, c->max_tokens);
    }
    if (c->n_stop > 0) {
        TG_ADD_LIT(b, ",\"stop\":[");
        for (i = 0; i < c->n_stop; i++) {
            if (i > 0)
                TG_ADD_LIT(b, ",");
            JSTR(b, c->stop[i]);
        }
        TG_ADD_LIT(b, "]");
    }
    if (c->user.len > 0) {
        TG_ADD_LIT(b, ",\"user\":");
        JSTR(b, c->user);
    }
}

static int encode(struct tg_wire_call *w, struct tg_wire_request *req)
{
    const struct tg_chat *c = w->call->chat;
    const struct tg_provider *p = w->call->model->provider;
    struct evbuffer *b = req->body;
    size_t i;

    memcpy(req->path, "/chat/completions", sizeof("/chat/completions"));
    tg_wire_header(req, "Content-Type", "application/json");
    if (p->api_key[0] != '\0')
        tg_wire_header(req, "Authorization",
                       tg_arena_join(&w->arena, "Bearer ", p->api_key));
    TG_ADD_LIT(b, "{\"model\":");
    tg_json_write_str(b, w->call->model->upstream_id,
                      strlen(w->call->model->upstream_id));
    TG_ADD_LIT(b, ",\"messages\":[");
    for (i = 0; i < c->n_messages; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        encode_message(b, &c->messages[i]);
    }
    TG_ADD_LIT(b, "]");
    if (c->n_tools > 0)
        encode_tools(b, c);
    encode_sampling(b, c);
    if (w->is_stream)
        TG_ADD_LIT(b, ",\"stream\":true,\"stream_options\":"
                      "{\"include_usage\":true}");
    TG_ADD_LIT(b, "}");
    return TG_OK;
}

/* ---- decoding ----------------------------------------------------------- */

static enum tg_stop_reason stop_of(const struct tg_json *j, int v)
{
    if (tg_json_str_eq(j, v, "length"))
        return TG_STOP_MAX_TOKENS;
    if (tg_json_str_eq(j, v, "tool_calls") ||
        tg_json_str_eq(j, v, "function_call"))
        return TG_STOP_TOOL_USE;
    if (tg_json_str_eq(j, v, "content_filter"))
        return TG_STOP_FILTER;
    return TG_STOP_END;
}

static int read_usage(struct tg_wire_call *w, const struct tg_json *j, int u)
{
    int64_t prompt = 0, completion = 0;
    int p = tg_json_get(j, u, "prompt_tokens");
    int c = tg_json_get(j, u, "completion_tokens");

    if ((p >= 0 && tg_json_int64(j, p, &prompt) != TG_OK) ||
        (c >= 0 && tg_json_int64(j, c, &completion) != TG_OK))
        return TG_DECLINED;
    tg_wire_usage(w, prompt, completion);
    return TG_OK;
}

static int string_of(struct tg_wire_call *w, const struct tg_json *j, int v,
                     struct tg_str *out)
{
    char *s;

    out->ptr = "";
    out->len = 0;
    if (v < 0 || tg_json_type(j, v) == TG_JSON_NULL)
        return TG_OK;
    if (tg_json_str(j, v, &w->arena, &s, &out->len) != TG_OK)
        return TG_DECLINED;
    out->ptr = s;
    return TG_OK;
}

/* One tool_calls item: a header (id, name) and/or an arguments fragment. */
static int decode_tool_call(struct tg_wire_call *w, const struct tg_json *j,
                            int call, int fallback_index)
{
    int iv = tg_json_get(j, call, "index"),
        fn = tg_json_get(j, call, "function");
    int64_t index = fallback_index;
    struct tg_str id, name, args;
    int rc;

    if ((iv >= 0 && tg_json_int64(j, iv, &index) != TG_OK) || index < 0 ||
        index >= TG_WIRE_MAX_TOOLS || fn < 0 ||
        string_of(w, j, tg_json_get(j, call, "id"), &id) != TG_OK ||
        string_of(w, j, tg_json_get(j, fn, "name"), &name) != TG_OK ||
        string_of(w, j, tg_json_get(j, fn, "arguments"), &args) != TG_OK)
        return TG_DECLINED;
    if (id.len > 0 || name.len > 0) {
        rc = tg_wire_tool_start(w, (int)index, id, name);
        if (rc != TG_OK)
            return rc;
    }
    return tg_wire_tool_delta(w, (int)index, args.ptr, args.len);
}

static int decode_tool_calls(struct tg_wire_call *w, const struct tg_json *j,
                             int calls)
{
    int cursor = 0, call, n = 0, rc;

    if (tg_json_type(j, calls) != TG_JSON_ARRAY)
        return TG_DECLINED;
    while (tg_json_element(j, calls, &cursor, &call))
        if ((rc = decode_tool_call(w, j, call, n++)) != TG_OK)
            return rc;
    return TG_OK;
}

/* The part a message (whole answer) and a delta (chunk) have in common. */
static int decode_content(struct tg_wire_call *w, const struct tg_json *j,
                          int msg)
{
    struct tg_str text;
    int calls = tg_json_get(j, msg, "tool_calls"), rc;

    if (string_of(w, j, tg_json_get(j, msg, "content"), &text) != TG_OK)
        return TG_DECLINED;
    if ((rc = tg_wire_text(w, text.ptr, text.len)) != TG_OK)
        return rc;
    if (calls >= 0 && tg_json_type(j, calls) != TG_JSON_NULL)
        return decode_tool_calls(w, j, calls);
    return TG_OK;
}

static int parse(struct tg_wire_call *w, const char *text, size_t len,
                 struct tg_json *j)
{
    struct tg_json_error err;

    if (tg_json_parse(j, text, len, &w->arena, &err) != TG_OK ||
        tg_json_type(j, 0) != TG_JSON_OBJECT)
        return TG_DECLINED;
    return TG_OK;
}

static int decode_choice(struct tg_wire_call *w, const struct tg_json *j,
                         const char *part)
{
    int choices = tg_json_get(j, 0, "choices"), choice, msg, finish, rc;
    int cursor = 0;

    if (choices < 0 || tg_json_type(j, choices) != TG_JSON_ARRAY)
        return TG_DECLINED;
    if (!tg_json_element(j, choices, &cursor, &choice))
        return TG_OK; /* the usage chunk has no choices */
    msg = tg_json_get(j, choice, part);
    finish = tg_json_get(j, choice, "finish_reason");
    if (msg >= 0 && (rc = decode_content(w, j, msg)) != TG_OK)
        return rc;
    if (finish >= 0 && tg_json_type(j, finish) == TG_JSON_STRING) {
        if ((rc = tg_wire_stop(w, stop_of(j, finish))) != TG_OK)
            return rc;
    }
    return TG_OK;
}

static int decode_body(struct tg_wire_call *w, const char *body, size_t len)
{
    struct tg_json j;
    int usage, rc;

    if (parse(w, body, len, &j) != TG_OK)
        return TG_DECLINED;
    if ((rc = decode_choice(w, &j, "message")) != TG_OK)
        return rc;
    usage = tg_json_get(&j, 0, "usage");
    if (usage >= 0 && tg_json_type(&j, usage) == TG_JSON_OBJECT)
        return read_usage(w, &j, usage);
    return TG_OK;
}

static int decode_sse(struct tg_wire_call *w, const char *event,
                      size_t event_len, const char *data, size_t len)
{
    struct tg_json j;
    int usage, rc;

    (void)event;
    (void)event_len;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        w->is_complete = true;
        return TG_OK;
    }
    if (parse(w, data, len, &j) != TG_OK || tg_json_get(&j, 0, "error") >= 0)
        return TG_DECLINED;
    if ((rc = decode_choice(w, &j, "delta")) != TG_OK)
        return rc;
    usage = tg_json_get(&j, 0, "usage");
    if (usage >= 0 && tg_json_type(&j, usage) == TG_JSON_OBJECT)
        return read_usage(w, &j, usage);
    return TG_OK;
}

static void decode_error(int status, const char *body, size_t len, char *out,
                         size_t cap)
{
    static const char *const paths[] = {"error", "error.message"};

    tg_wire_error_text(status, body, len, paths, TG_ARRAY_LEN(paths), out, cap);
}

const struct tg_wire tg_wire_openai = {
    .type = TG_PROVIDER_OPENAI,
    .framing = TG_FRAMING_SSE,
    .encode = encode,
    .decode_body = decode_body,
    .decode_sse = decode_sse,
    .decode_error = decode_error,
};
