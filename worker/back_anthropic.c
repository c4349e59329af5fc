/*
 * back_anthropic.c - the Anthropic Messages API: POST {base_url}/v1/messages.
 *
 * Encoding: system messages become the top-level "system" string; the rest
 * become user and assistant turns of content blocks (text, tool_use,
 * tool_result), consecutive turns of one role merged, as the API requires
 * roles to alternate. Decoding: content blocks arrive one at a time, in
 * order, so a tool_use block's canonical index is the number of tool calls
 * started before it, and the open tool call is always the last one started.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_json.h"
#include "tg_wire.h"

#define JSTR(b, s) tg_json_write_str((b), (s).ptr, (s).len)

/* The API requires max_tokens; used when the request gives none. */
#define DEFAULT_MAX_TOKENS 4096
#define API_VERSION        "2023-06-01"

/* ---- encoding ----------------------------------------------------------- */

/* The number of members when s is a JSON object, else -1: the API takes
 * tool inputs and schemas as objects, and an invalid one would make the
 * whole body invalid JSON. */
static int object_size(struct tg_wire_call *w, struct tg_str s)
{
    struct tg_json j;

    if (s.len == 0 ||
        tg_json_parse(&j, s.ptr, s.len, &w->arena, NULL) != TG_OK ||
        tg_json_type(&j, 0) != TG_JSON_OBJECT)
        return -1;
    return tg_json_size(&j, 0);
}

/* Every system message, joined with blank lines, as one string. */
static int encode_system(struct tg_wire_call *w, struct evbuffer *b)
{
    const struct tg_chat *c = w->call->chat;
    size_t i, n = 0;
    char *text;

    for (i = 0; i < c->n_messages; i++)
        if (c->messages[i].role == TG_ROLE_SYSTEM)
            n += c->messages[i].text.len + 2;
    if (n == 0)
        return TG_OK;
    if ((text = tg_arena_alloc(&w->arena, n)) == NULL)
        return TG_ERROR;
    n = 0;
    for (i = 0; i < c->n_messages; i++) {
        const struct tg_str *s = &c->messages[i].text;
        if (c->messages[i].role != TG_ROLE_SYSTEM || s->len == 0)
            continue;
        if (n > 0) {
            memcpy(text + n, "\n\n", 2);
            n += 2;
        }
        memcpy(text + n, s->ptr, s->len);
        n += s->len;
    }
    if (n > 0) {
        TG_ADD_LIT(b, ",\"system\":");
        tg_json_write_str(b, text, n);
    }
    return TG_OK;
}

static void encode_tool_use(struct tg_wire_call *w, struct evbuffer *b,
                            const struct tg_tool_call *call)
{
    TG_ADD_LIT(b, "{\"type\":\"tool_use\",\"id\":");
    JSTR(b, call->id);
    TG_ADD_LIT(b, ",\"name\":");
    JSTR(b, call->name);
    TG_ADD_LIT(b, ",\"input\":");
    if (object_size(w, call->arguments) >= 0)
        evbuffer_add(b, call->arguments.ptr, call->arguments.len);
    else
        TG_ADD_LIT(b, "{}");
    TG_ADD_LIT(b, "}");
}

/* The API rejects empty text blocks, so empty text writes none. */
static void encode_blocks(struct tg_wire_call *w, struct evbuffer *b,
                          const struct tg_message *m)
{
    bool is_first = true;
    size_t i;

    if (m->role == TG_ROLE_TOOL) {
        TG_ADD_LIT(b, "{\"type\":\"tool_result\",\"tool_use_id\":");
        JSTR(b, m->tool_call_id);
        if (m->text.len > 0) {
            TG_ADD_LIT(b, ",\"content\":");
            JSTR(b, m->text);
        }
        TG_ADD_LIT(b, "}");
        return;
    }
    if (m->text.len > 0) {
        TG_ADD_LIT(b, "{\"type\":\"text\",\"text\":");
        JSTR(b, m->text);
        TG_ADD_LIT(b, "}");
        is_first = false;
    }
    for (i = 0; m->role == TG_ROLE_ASSISTANT && i < m->n_calls; i++) {
        if (!is_first)
            TG_ADD_LIT(b, ",");
        encode_tool_use(w, b, &m->calls[i]);
        is_first = false;
    }
}

static bool has_blocks(const struct tg_message *m)
{
    return m->role == TG_ROLE_TOOL || m->text.len > 0 ||
           (m->role == TG_ROLE_ASSISTANT && m->n_calls > 0);
}

/* Tool results are user turns; a run of one role is one message. */
static void encode_messages(struct tg_wire_call *w, struct evbuffer *b)
{
    const struct tg_chat *c = w->call->chat;
    const char *open = NULL, *role;
    size_t i;

    TG_ADD_LIT(b, ",\"messages\":[");
    for (i = 0; i < c->n_messages; i++) {
        const struct tg_message *m = &c->messages[i];
        if (m->role == TG_ROLE_SYSTEM || !has_blocks(m))
            continue;
        role = m->role == TG_ROLE_ASSISTANT ? "assistant" : "user";
        if (open == role) {
            TG_ADD_LIT(b, ",");
        } else {
            if (open != NULL)
                TG_ADD_LIT(b, "]},");
            evbuffer_add_printf(b, "{\"role\":\"%s\",\"content\":[", role);
            open = role;
        }
        encode_blocks(w, b, m);
    }
    if (open != NULL)
        TG_ADD_LIT(b, "]}");
    TG_ADD_LIT(b, "]");
}

static void encode_tool_choice(struct evbuffer *b, const struct tg_chat *c)
{
    switch (c->tool_choice) {
    case TG_TOOL_CHOICE_NONE:
        TG_ADD_LIT(b, ",\"tool_choice\":{\"type\":\"none\"}");
        break;
    case TG_TOOL_CHOICE_REQUIRED:
        TG_ADD_LIT(b, ",\"tool_choice\":{\"type\":\"any\"}");
        break;
    case TG_TOOL_CHOICE_NAMED:
        TG_ADD_LIT(b, ",\"tool_choice\":{\"type\":\"tool\",\"name\":");
        JSTR(b, c->tool_choice_name);
        TG_ADD_LIT(b, "}");
        break;
    default: break; /* auto is the API's default */
    }
}

/* input_schema must be an object schema; a tool without parameters
 * ("{}") gets the schema of an object with no properties. */
static void encode_tools(struct tg_wire_call *w, struct evbuffer *b)
{
    const struct tg_chat *c = w->call->chat;
    size_t i;

    TG_ADD_LIT(b, ",\"tools\":[");
    for (i = 0; i < c->n_tools; i++) {
        const struct tg_tool *t = &c->tools[i];
        if (i > 0)
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"name\":");
        JSTR(b, t->name);
        if (t->description.len > 0) {
            TG_ADD_LIT(b, ",\"description\":");
            JSTR(b, t->description);
        }
        TG_ADD_LIT(b, ",\"input_schema\":");
        if (object_size(w, t->parameters) > 0)
            evbuffer_add(b, t->parameters.ptr, t->parameters.len);
        else
            TG_ADD_LIT(b, "{\"type\":\"object\",\"properties\":{}}");
        TG_ADD_LIT(b, "}");
    }
    TG_ADD_LIT(b, "]");
    encode_tool_choice(b, c);
}

static void encode_sampling(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i;

    if (c->has_temperature)
        evbuffer_add_printf(b, ",\"temperature\":%.17g", c->temperature);
    if (c->has_top_p)
        evbuffer_add_printf(b, ",\"top_p\":%.17g", c->top_p);
    if (c->n_stop > 0) {
        TG_ADD_LIT(b, ",\"stop_sequences\":[");
        for (i = 0; i < c->n_stop; i++) {
            if (i > 0)
                TG_ADD_LIT(b, ",");
            JSTR(b, c->stop[i]);
        }
        TG_ADD_LIT(b, "]");
    }
    if (c->user.len > 0) {
        TG_ADD_LIT(b, ",\"metadata\":{\"user_id\":");
        JSTR(b, c->user);
        TG_ADD_LIT(b, "}");
    }
}

static int encode(struct tg_wire_call *w, struct tg_wire_request *req)
{
    const struct tg_chat *c = w->call->chat;
    const struct tg_provider *p = w->call->model->provider;
    struct evbuffer *b = req->body;

    snprintf(req->path, sizeof(req->path), "/v1/messages");
    tg_wire_header(req, "content-type", "application/json");
    if (p->api_key[0] != '\0')
        tg_wire_header(req, "x-api-key", p->api_key);
    tg_wire_header(req, "anthropic-version", API_VERSION);
    TG_ADD_LIT(b, "{\"model\":");
    tg_json_write_str(b, w->call->model->upstream_id,
                      strlen(w->call->model->upstream_id));
    evbuffer_add_printf(
        b, ",\"max_tokens\":%lld",
        (long long)(c->has_max_tokens ? c->max_tokens : DEFAULT_MAX_TOKENS));
    if (encode_system(w, b) != TG_OK)
        return TG_ERROR;
    encode_messages(w, b);
    if (c->n_tools > 0)
        encode_tools(w, b);
    encode_sampling(b, c);
    if (w->is_stream)
        TG_ADD_LIT(b, ",\"stream\":true");
    TG_ADD_LIT(b, "}");
    return TG_OK;
}

/* ---- decoding ----------------------------------------------------------- */

static enum tg_stop_reason stop_of(const struct tg_json *j, int v)
{
    if (tg_json_str_eq(j, v, "max_tokens") ||
        tg_json_str_eq(j, v, "model_context_window_exceeded"))
        return TG_STOP_MAX_TOKENS;
    if (tg_json_str_eq(j, v, "stop_sequence"))
        return TG_STOP_SEQUENCE;
    if (tg_json_str_eq(j, v, "tool_use"))
        return TG_STOP_TOOL_USE;
    if (tg_json_str_eq(j, v, "refusal"))
        return TG_STOP_FILTER;
    return TG_STOP_END; /* end_turn, pause_turn */
}

/* Adds the integer member `key` of object u to *sum; absent adds 0. */
static int add_tokens(const struct tg_json *j, int u, const char *key,
                      int64_t *sum, bool *is_present)
{
    int v = tg_json_get(j, u, key);
    int64_t n;

    if (v < 0 || tg_json_type(j, v) == TG_JSON_NULL)
        return TG_OK;
    if (tg_json_int64(j, v, &n) != TG_OK || n < 0)
        return TG_DECLINED;
    *sum += n;
    *is_present = true;
    return TG_OK;
}

/* Usage counts are cumulative: a count present replaces the one known.
 * Cache writes and reads are input the caller pays for: prompt tokens. */
static int read_usage(struct tg_wire_call *w, const struct tg_json *j, int u)
{
    int64_t prompt = 0, completion = 0;
    bool has_prompt = false, has_completion = false;

    if (tg_json_type(j, u) != TG_JSON_OBJECT ||
        add_tokens(j, u, "input_tokens", &prompt, &has_prompt) != TG_OK ||
        add_tokens(j, u, "cache_creation_input_tokens", &prompt, &has_prompt) !=
            TG_OK ||
        add_tokens(j, u, "cache_read_input_tokens", &prompt, &has_prompt) !=
            TG_OK ||
        add_tokens(j, u, "output_tokens", &completion, &has_completion) !=
            TG_OK)
        return TG_DECLINED;
    tg_wire_usage(w, has_prompt ? prompt : w->usage.prompt_tokens,
                  has_completion ? completion : w->usage.completion_tokens);
    return TG_OK;
}

/* A string member of obj into the arena; absent or null is "". */
static int string_of(struct tg_wire_call *w, const struct tg_json *j, int obj,
                     const char *key, struct tg_str *out)
{
    int v = tg_json_get(j, obj, key);
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

static int decode_text(struct tg_wire_call *w, const struct tg_json *j,
                       int block)
{
    struct tg_str text;

    if (string_of(w, j, block, "text", &text) != TG_OK)
        return TG_DECLINED;
    return tg_wire_text(w, text.ptr, text.len);
}

/* A tool_use block starts the next canonical tool call. */
static int start_tool(struct tg_wire_call *w, const struct tg_json *j,
                      int block)
{
    struct tg_str id, name;

    if (string_of(w, j, block, "id", &id) != TG_OK ||
        string_of(w, j, block, "name", &name) != TG_OK || id.len == 0 ||
        name.len == 0)
        return TG_DECLINED;
    return tg_wire_tool_start(w, w->n_tools, id, name);
}

/* The last tool call started, when it is still open (its block is the
 * current one); -1 otherwise. */
static int open_tool(const struct tg_wire_call *w)
{
    int i = w->n_tools - 1;

    return i >= 0 && w->is_tool_open[i] ? i : -1;
}

static bool is_type(const struct tg_json *j, int obj, const char *type)
{
    return tg_json_str_eq(j, tg_json_get(j, obj, "type"), type);
}

/* stop_reason is null until the answer's end is known. */
static int stop_if_known(struct tg_wire_call *w, const struct tg_json *j,
                         int reason)
{
    if (reason < 0 || tg_json_type(j, reason) != TG_JSON_STRING)
        return TG_OK;
    return tg_wire_stop(w, stop_of(j, reason));
}

/* A tool_use block of a whole answer: its input object is the arguments,
 * sent as one fragment. */
static int decode_tool_use(struct tg_wire_call *w, const struct tg_json *j,
                           int block)
{
    int input = tg_json_get(j, block, "input"), rc;
    const char *raw = "{}";
    size_t n = 2;

    if (input >= 0) {
        if (tg_json_type(j, input) != TG_JSON_OBJECT)
            return TG_DECLINED;
        raw = tg_json_raw(j, input, &n);
    }
    if ((rc = start_tool(w, j, block)) != TG_OK)
        return rc;
    return tg_wire_tool_delta(w, w->n_tools - 1, raw, n);
}

/* A whole answer: content blocks, usage and stop_reason. Block types
 * without a canonical form (thinking, server tools) are skipped. */
static int decode_body(struct tg_wire_call *w, const char *body, size_t len)
{
    struct tg_json j;
    struct tg_json_error err;
    int content, block, usage, cursor = 0, rc = TG_OK;

    if (tg_json_parse(&j, body, len, &w->arena, &err) != TG_OK ||
        tg_json_type(&j, 0) != TG_JSON_OBJECT || is_type(&j, 0, "error") ||
        (content = tg_json_get(&j, 0, "content")) < 0 ||
        tg_json_type(&j, content) != TG_JSON_ARRAY)
        return TG_DECLINED;
    while (rc == TG_OK && tg_json_element(&j, content, &cursor, &block)) {
        if (is_type(&j, block, "text"))
            rc = decode_text(w, &j, block);
        else if (is_type(&j, block, "tool_use"))
            rc = decode_tool_use(w, &j, block);
    }
    if (rc != TG_OK)
        return rc;
    usage = tg_json_get(&j, 0, "usage");
    if (usage >= 0 && (rc = read_usage(w, &j, usage)) != TG_OK)
        return rc;
    rc = tg_wire_stop(w, stop_of(&j, tg_json_get(&j, 0, "stop_reason")));
    if (rc == TG_OK)
        w->is_complete = true;
    return rc;
}

/* ---- stream events ------------------------------------------------------ */

static int on_message_start(struct tg_wire_call *w, const struct tg_json *j)
{
    int msg = tg_json_get(j, 0, "message"), usage;

    if (msg < 0 || tg_json_type(j, msg) != TG_JSON_OBJECT)
        return TG_DECLINED;
    usage = tg_json_get(j, msg, "usage");
    return usage >= 0 ? read_usage(w, j, usage) : TG_OK;
}

static int on_block_start(struct tg_wire_call *w, const struct tg_json *j)
{
    int block = tg_json_get(j, 0, "content_block");

    if (block < 0 || tg_json_type(j, block) != TG_JSON_OBJECT)
        return TG_DECLINED;
    if (is_type(j, block, "text"))
        return decode_text(w, j, block);
    if (is_type(j, block, "tool_use"))
        return start_tool(w, j, block); /* its input comes as deltas */
    return TG_OK;
}

/* Deltas of blocks without a canonical form (a server tool's input,
 * thinking) find no open tool call or are of another type: skipped. */
static int on_block_delta(struct tg_wire_call *w, const struct tg_json *j)
{
    int delta = tg_json_get(j, 0, "delta"), tool = open_tool(w);
    struct tg_str part;

    if (delta < 0 || tg_json_type(j, delta) != TG_JSON_OBJECT)
        return TG_DECLINED;
    if (is_type(j, delta, "text_delta"))
        return decode_text(w, j, delta);
    if (!is_type(j, delta, "input_json_delta"))
        return TG_OK;
    if (string_of(w, j, delta, "partial_json", &part) != TG_OK)
        return TG_DECLINED;
    return tool >= 0 ? tg_wire_tool_delta(w, tool, part.ptr, part.len) : TG_OK;
}

/* A tool call is complete when its block stops; ending it here keeps a
 * later block's deltas from reaching it. */
static int on_block_stop(struct tg_wire_call *w, const struct tg_json *j)
{
    struct tg_event end = {.type = TG_EV_TOOL_END};

    (void)j;
    if ((end.index = open_tool(w)) < 0)
        return TG_OK;
    w->is_tool_open[end.index] = false;
    return tg_wire_emit(w, &end);
}

static int on_message_delta(struct tg_wire_call *w, const struct tg_json *j)
{
    int delta = tg_json_get(j, 0, "delta"), usage = tg_json_get(j, 0, "usage");
    int rc;

    if (delta < 0 || tg_json_type(j, delta) != TG_JSON_OBJECT)
        return TG_DECLINED;
    if (usage >= 0 && (rc = read_usage(w, j, usage)) != TG_OK)
        return rc;
    return stop_if_known(w, j, tg_json_get(j, delta, "stop_reason"));
}

static int on_message_stop(struct tg_wire_call *w, const struct tg_json *j)
{
    (void)j;
    w->is_complete = true;
    return TG_OK;
}

/* An error event ends the stream: the answer is not whole. */
static int on_error(struct tg_wire_call *w, const struct tg_json *j)
{
    (void)w;
    (void)j;
    return TG_DECLINED;
}

static const struct {
    const char *type;
    int (*decode)(struct tg_wire_call *w, const struct tg_json *j);
} stream_events[] = {
    {"message_start", on_message_start},
    {"content_block_start", on_block_start},
    {"content_block_delta", on_block_delta},
    {"content_block_stop", on_block_stop},
    {"message_delta", on_message_delta},
    {"message_stop", on_message_stop},
    {"error", on_error},
};

/* Events are told apart by the data's "type" (the SSE event name repeats
 * it); unknown ones (ping, future types) are ignored. */
static int decode_sse(struct tg_wire_call *w, const char *event,
                      size_t event_len, const char *data, size_t len)
{
    struct tg_json j;
    struct tg_json_error err;
    size_t i;
    int type;

    (void)event;
    (void)event_len;
    if (tg_json_parse(&j, data, len, &w->arena, &err) != TG_OK ||
        tg_json_type(&j, 0) != TG_JSON_OBJECT ||
        (type = tg_json_get(&j, 0, "type")) < 0 ||
        tg_json_type(&j, type) != TG_JSON_STRING)
        return TG_DECLINED;
    for (i = 0; i < TG_ARRAY_LEN(stream_events); i++)
        if (tg_json_str_eq(&j, type, stream_events[i].type))
            return stream_events[i].decode(w, &j);
    return TG_OK;
}

static void decode_error(int status, const char *body, size_t len, char *out,
                         size_t cap)
{
    static const char *const paths[] = {"error.message", "error"};

    tg_wire_error_text(status, body, len, paths, TG_ARRAY_LEN(paths), out, cap);
}

const struct tg_wire tg_wire_anthropic = {
    .type = TG_PROVIDER_ANTHROPIC,
    .framing = TG_FRAMING_SSE,
    .encode = encode,
    .decode_body = decode_body,
    .decode_sse = decode_sse,
    .decode_error = decode_error,
};
