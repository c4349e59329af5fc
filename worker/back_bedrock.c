/*
 * back_bedrock.c - AWS Bedrock's Converse API: POST
 * {base_url}/model/{modelId}/converse, or /converse-stream answered in the
 * AWS event stream, every request signed with SigV4 (service "bedrock").
 *
 * Bedrock has two roles and wants them to alternate, so canonical messages
 * are written as content blocks and consecutive messages of one Bedrock
 * role share a message: tool results become toolResult blocks of a user
 * message, tool calls toolUse blocks of an assistant message. System
 * messages go to the top-level "system" list. Bedrock numbers the content
 * blocks of an answer (text and tool calls alike); the canonical index
 * counts tool calls only, so each toolUse block takes the next one.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tg.h"
#include "tg_json.h"
#include "tg_sigv4.h"
#include "tg_wire.h"

#define JSTR(b, s) tg_json_write_str((b), (s).ptr, (s).len)

#define CONTENT_TYPE  "application/json"
#define SIGV4_SERVICE "bedrock"
/* The longest host base_url may name (as upstream.c's pools hold it). */
#define HOST_MAX 256

/* The messages array being written: which Bedrock message is open. */
struct message_writer {
    struct evbuffer *b;
    bool is_open;
    enum tg_role role; /* TG_ROLE_USER or TG_ROLE_ASSISTANT */
    size_t n_blocks;   /* in the open message */
};

/* True when s is one JSON object, which Bedrock takes as a value. */
static bool is_json_object(struct tg_wire_call *w, struct tg_str s)
{
    struct tg_json j;

    return s.len > 0 &&
           tg_json_parse(&j, s.ptr, s.len, &w->arena, NULL) == TG_OK &&
           tg_json_type(&j, 0) == TG_JSON_OBJECT;
}

/* Starts a content block in a message of `role`, opening that message
 * unless the previous block went to the same role. */
static void open_block(struct message_writer *mw, enum tg_role role)
{
    if (!mw->is_open || mw->role != role) {
        if (mw->is_open)
            TG_ADD_LIT(mw->b, "]},");
        evbuffer_add_printf(mw->b, "{\"role\":\"%s\",\"content\":[",
                            role == TG_ROLE_ASSISTANT ? "assistant" : "user");
        mw->is_open = true;
        mw->role = role;
        mw->n_blocks = 0;
    }
    if (mw->n_blocks++ > 0)
        TG_ADD_LIT(mw->b, ",");
}

static void encode_text(struct message_writer *mw, enum tg_role role,
                        struct tg_str text)
{
    open_block(mw, role);
    TG_ADD_LIT(mw->b, "{\"text\":");
    JSTR(mw->b, text);
    TG_ADD_LIT(mw->b, "}");
}

/* Arguments that are not a JSON object cannot be a toolUse input: {}. */
static void encode_tool_use(struct tg_wire_call *w, struct message_writer *mw,
                            const struct tg_tool_call *call)
{
    open_block(mw, TG_ROLE_ASSISTANT);
    TG_ADD_LIT(mw->b, "{\"toolUse\":{\"toolUseId\":");
    JSTR(mw->b, call->id);
    TG_ADD_LIT(mw->b, ",\"name\":");
    JSTR(mw->b, call->name);
    TG_ADD_LIT(mw->b, ",\"input\":");
    if (is_json_object(w, call->arguments))
        evbuffer_add(mw->b, call->arguments.ptr, call->arguments.len);
    else
        TG_ADD_LIT(mw->b, "{}");
    TG_ADD_LIT(mw->b, "}}");
}

/* A result that is a JSON object goes as a json block, anything else as
 * text. */
static void encode_tool_result(struct tg_wire_call *w,
                               struct message_writer *mw,
                               const struct tg_message *m)
{
    open_block(mw, TG_ROLE_USER);
    TG_ADD_LIT(mw->b, "{\"toolResult\":{\"toolUseId\":");
    JSTR(mw->b, m->tool_call_id);
    if (is_json_object(w, m->text)) {
        TG_ADD_LIT(mw->b, ",\"content\":[{\"json\":");
        evbuffer_add(mw->b, m->text.ptr, m->text.len);
    } else {
        TG_ADD_LIT(mw->b, ",\"content\":[{\"text\":");
        JSTR(mw->b, m->text);
    }
    TG_ADD_LIT(mw->b, "}]}}");
}

/* Bedrock refuses blank text blocks, so empty text is left out (and a
 * message left with no block at all disappears). */
static void encode_message(struct tg_wire_call *w, struct message_writer *mw,
                           const struct tg_message *m)
{
    size_t i;

    switch (m->role) {
    case TG_ROLE_SYSTEM: break; /* in "system" */
    case TG_ROLE_USER:
        if (m->text.len > 0)
            encode_text(mw, TG_ROLE_USER, m->text);
        break;
    case TG_ROLE_ASSISTANT:
        if (m->text.len > 0)
            encode_text(mw, TG_ROLE_ASSISTANT, m->text);
        for (i = 0; i < m->n_calls; i++)
            encode_tool_use(w, mw, &m->calls[i]);
        break;
    case TG_ROLE_TOOL: encode_tool_result(w, mw, m); break;
    }
}

static void encode_messages(struct tg_wire_call *w, struct evbuffer *b,
                            const struct tg_chat *c)
{
    struct message_writer mw = {.b = b};
    size_t i;

    TG_ADD_LIT(b, "\"messages\":[");
    for (i = 0; i < c->n_messages; i++)
        encode_message(w, &mw, &c->messages[i]);
    if (mw.is_open)
        TG_ADD_LIT(b, "]}");
    TG_ADD_LIT(b, "]");
}

static void encode_system(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i, n = 0;

    for (i = 0; i < c->n_messages; i++) {
        const struct tg_message *m = &c->messages[i];

        if (m->role != TG_ROLE_SYSTEM || m->text.len == 0)
            continue;
        if (n++ == 0)
            TG_ADD_LIT(b, ",\"system\":[");
        else
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"text\":");
        JSTR(b, m->text);
        TG_ADD_LIT(b, "}");
    }
    if (n > 0)
        TG_ADD_LIT(b, "]");
}

/* Writes the separator before a member of an object of which *n members
 * are written: "{" before the first (after `open`), "," after. */
static void add_member(struct evbuffer *b, const char *open, int *n)
{
    if ((*n)++ == 0)
        evbuffer_add(b, open, strlen(open));
    else
        TG_ADD_LIT(b, ",");
}

static void encode_inference(struct evbuffer *b, const struct tg_chat *c)
{
    static const char open[] = ",\"inferenceConfig\":{";
    size_t i;
    int n = 0;

    if (c->has_max_tokens) {
        add_member(b, open, &n);
        evbuffer_add_printf(b, "\"maxTokens\":%lld", (long long)c->max_tokens);
    }
    if (c->has_temperature) {
        add_member(b, open, &n);
        evbuffer_add_printf(b, "\"temperature\":%.17g", c->temperature);
    }
    if (c->has_top_p) {
        add_member(b, open, &n);
        evbuffer_add_printf(b, "\"topP\":%.17g", c->top_p);
    }
    if (c->n_stop > 0) {
        add_member(b, open, &n);
        TG_ADD_LIT(b, "\"stopSequences\":[");
        for (i = 0; i < c->n_stop; i++) {
            if (i > 0)
                TG_ADD_LIT(b, ",");
            JSTR(b, c->stop[i]);
        }
        TG_ADD_LIT(b, "]");
    }
    if (n > 0)
        TG_ADD_LIT(b, "}");
}

static void encode_tool_choice(struct evbuffer *b, const struct tg_chat *c)
{
    if (c->tool_choice == TG_TOOL_CHOICE_REQUIRED) {
        TG_ADD_LIT(b, ",\"toolChoice\":{\"any\":{}}");
    } else if (c->tool_choice == TG_TOOL_CHOICE_NAMED) {
        TG_ADD_LIT(b, ",\"toolChoice\":{\"tool\":{\"name\":");
        JSTR(b, c->tool_choice_name);
        TG_ADD_LIT(b, "}}");
    } else {
        TG_ADD_LIT(b, ",\"toolChoice\":{\"auto\":{}}");
    }
}

/* Bedrock has no "none": the tools are withheld instead. */
static void encode_tools(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i;

    if (c->n_tools == 0 || c->tool_choice == TG_TOOL_CHOICE_NONE)
        return;
    TG_ADD_LIT(b, ",\"toolConfig\":{\"tools\":[");
    for (i = 0; i < c->n_tools; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"toolSpec\":{\"name\":");
        JSTR(b, c->tools[i].name);
        if (c->tools[i].description.len > 0) {
            TG_ADD_LIT(b, ",\"description\":");
            JSTR(b, c->tools[i].description);
        }
        TG_ADD_LIT(b, ",\"inputSchema\":{\"json\":");
        evbuffer_add(b, c->tools[i].parameters.ptr, c->tools[i].parameters.len);
        TG_ADD_LIT(b, "}}}");
    }
    TG_ADD_LIT(b, "]");
    encode_tool_choice(b, c);
    TG_ADD_LIT(b, "}");
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

/* /model/{modelId}/converse[-stream], the id percent-encoded as a URI
 * segment (':' of versioned ids, '/' of ARNs). TG_ERROR when it does not
 * fit. */
static int encode_path(const char *model_id, bool is_stream, char *out,
                       size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)model_id;
    size_t n = (size_t)snprintf(out, cap, "/model/");
    int tail;

    for (; *p != '\0'; p++) {
        if (n + 3 >= cap)
            return TG_ERROR;
        if (is_unreserved(*p)) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 0xF];
        }
    }
    tail = snprintf(out + n, cap - n, "%s",
                    is_stream ? "/converse-stream" : "/converse");
    return tail < 0 || (size_t)tail >= cap - n ? TG_ERROR : TG_OK;
}

/* The Host header exactly as upstream.c writes it, and base_url's path,
 * which the signed path starts with. */
static int host_of(struct tg_wire_call *w, const char *base_url,
                   const char **host_header, const char **base_path)
{
    char host[HOST_MAX], header[HOST_MAX + 16];
    int port, is_tls;

    if (tg_up_split_url(base_url, host, sizeof(host), &port, &is_tls,
                        base_path) != TG_OK)
        return TG_ERROR;
    tg_up_host_header(host, port, is_tls, header, sizeof(header));
    *host_header = tg_arena_strndup(&w->arena, header, strlen(header));
    return *host_header ? TG_OK : TG_ERROR;
}

/* The request to sign: the path base_url's path and req's make, the
 * headers upstream.c sends that Bedrock wants signed, and the body. */
static int sigv4_request_of(struct tg_wire_call *w,
                            const struct tg_wire_request *req,
                            struct tg_sigv4_header headers[2],
                            struct tg_sigv4_request *sreq)
{
    const char *host, *base_path;

    if (host_of(w, w->call->model->provider->base_url, &host, &base_path) !=
        TG_OK)
        return TG_ERROR;
    headers[0] = (struct tg_sigv4_header){"host", host};
    headers[1] = (struct tg_sigv4_header){"content-type", CONTENT_TYPE};
    *sreq = (struct tg_sigv4_request){
        .method = "POST",
        .path = tg_arena_join(&w->arena, base_path, req->path),
        .headers = headers,
        .n_headers = 2,
        .body = evbuffer_pullup(req->body, -1),
        .body_len = evbuffer_get_length(req->body),
        .is_normalized = true,
    };
    return sreq->path ? TG_OK : TG_ERROR;
}

/*
 * Signs the request as it will be sent and adds X-Amz-Date,
 * X-Amz-Security-Token (with a session token) and Authorization. The
 * result holds the canonical texts, so it lives on the stack for the
 * signing only; what the request keeps is copied into the call's arena.
 */
static int sign(struct tg_wire_call *w, struct tg_wire_request *req)
{
    const struct tg_provider *p = w->call->model->provider;
    const char *token = p->session_token ? p->session_token : "";
    struct tg_sigv4_credentials cred = {p->access_key_id, p->secret_access_key,
                                        token, p->region, SIGV4_SERVICE};
    struct tg_sigv4_header headers[2];
    struct tg_sigv4_request sreq;
    struct tg_sigv4_result out;
    const char *date, *authorization;

    if (sigv4_request_of(w, req, headers, &sreq) != TG_OK ||
        tg_sigv4_sign(&sreq, &cred, time(NULL), &out) != 0)
        return TG_ERROR;
    date = tg_arena_strndup(&w->arena, out.amz_date, strlen(out.amz_date));
    authorization = tg_arena_strndup(&w->arena, out.authorization,
                                     strlen(out.authorization));
    if (date == NULL || authorization == NULL)
        return TG_ERROR;
    tg_wire_header(req, "X-Amz-Date", date);
    if (token[0] != '\0')
        tg_wire_header(req, "X-Amz-Security-Token", token);
    tg_wire_header(req, "Authorization", authorization);
    return TG_OK;
}

static int encode(struct tg_wire_call *w, struct tg_wire_request *req)
{
    const struct tg_chat *c = w->call->chat;
    const struct tg_provider *p = w->call->model->provider;
    struct evbuffer *b = req->body;

    if (p->base_url == NULL || p->region == NULL || p->access_key_id == NULL ||
        p->secret_access_key == NULL ||
        encode_path(w->call->model->upstream_id, w->is_stream, req->path,
                    sizeof(req->path)) != TG_OK)
        return TG_ERROR;
    tg_wire_header(req, "Content-Type", CONTENT_TYPE);
    TG_ADD_LIT(b, "{");
    encode_messages(w, b, c);
    encode_system(b, c);
    encode_inference(b, c);
    encode_tools(b, c);
    TG_ADD_LIT(b, "}");
    return sign(w, req);
}

/* ---- decoding ----------------------------------------------------------- */

static enum tg_stop_reason stop_of(const struct tg_json *j, int v)
{
    if (tg_json_str_eq(j, v, "tool_use"))
        return TG_STOP_TOOL_USE;
    if (tg_json_str_eq(j, v, "max_tokens") ||
        tg_json_str_eq(j, v, "model_context_window_exceeded"))
        return TG_STOP_MAX_TOKENS;
    if (tg_json_str_eq(j, v, "stop_sequence"))
        return TG_STOP_SEQUENCE;
    if (tg_json_str_eq(j, v, "guardrail_intervened") ||
        tg_json_str_eq(j, v, "content_filtered"))
        return TG_STOP_FILTER;
    return TG_STOP_END;
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

/* The member `key` of obj when it is of `type`; -1 otherwise. */
static int member_of(const struct tg_json *j, int obj, const char *key,
                     enum tg_json_type type)
{
    int v = tg_json_get(j, obj, key);

    return v >= 0 && tg_json_type(j, v) == type ? v : -1;
}

static int string_of(struct tg_wire_call *w, const struct tg_json *j, int v,
                     struct tg_str *out)
{
    char *s;

    if (v < 0 || tg_json_str(j, v, &w->arena, &s, &out->len) != TG_OK)
        return TG_DECLINED;
    out->ptr = s;
    return TG_OK;
}

static int read_usage(struct tg_wire_call *w, const struct tg_json *j, int u)
{
    int64_t prompt = 0, completion = 0;
    int in = tg_json_get(j, u, "inputTokens");
    int out = tg_json_get(j, u, "outputTokens");

    if (tg_json_type(j, u) != TG_JSON_OBJECT ||
        (in >= 0 && tg_json_int64(j, in, &prompt) != TG_OK) ||
        (out >= 0 && tg_json_int64(j, out, &completion) != TG_OK))
        return TG_DECLINED;
    tg_wire_usage(w, prompt, completion);
    return TG_OK;
}

static int read_stop(struct tg_wire_call *w, const struct tg_json *j, int obj)
{
    int v = member_of(j, obj, "stopReason", TG_JSON_STRING);

    return v < 0 ? TG_DECLINED : tg_wire_stop(w, stop_of(j, v));
}

/* A toolUse block's id and name: the next canonical tool call begins. */
static int start_tool(struct tg_wire_call *w, const struct tg_json *j,
                      int tool_use)
{
    struct tg_str id, name;

    if (tg_json_type(j, tool_use) != TG_JSON_OBJECT ||
        string_of(w, j, member_of(j, tool_use, "toolUseId", TG_JSON_STRING),
                  &id) != TG_OK ||
        string_of(w, j, member_of(j, tool_use, "name", TG_JSON_STRING),
                  &name) != TG_OK)
        return TG_DECLINED;
    return tg_wire_tool_start(w, w->n_tools, id, name);
}

/* One block of a whole answer: text, or a tool call whose input object is
 * passed on as its raw JSON; others (reasoningContent, ...) are not part of
 * the canonical answer. */
static int decode_block(struct tg_wire_call *w, const struct tg_json *j,
                        int block)
{
    int tool_use = tg_json_get(j, block, "toolUse"), input, rc;
    struct tg_str s;
    const char *raw;
    size_t len;

    if (tg_json_type(j, block) != TG_JSON_OBJECT)
        return TG_DECLINED;
    if (tg_json_get(j, block, "text") >= 0) {
        if (string_of(w, j, member_of(j, block, "text", TG_JSON_STRING), &s) !=
            TG_OK)
            return TG_DECLINED;
        return tg_wire_text(w, s.ptr, s.len);
    }
    if (tool_use < 0)
        return TG_OK;
    input = member_of(j, tool_use, "input", TG_JSON_OBJECT);
    if (input < 0)
        return TG_DECLINED;
    if ((rc = start_tool(w, j, tool_use)) != TG_OK)
        return rc;
    raw = tg_json_raw(j, input, &len);
    return tg_wire_tool_delta(w, w->n_tools - 1, raw, len);
}

static int decode_body(struct tg_wire_call *w, const char *body, size_t len)
{
    struct tg_json j;
    int output, message, content, block, usage, cursor = 0, rc;

    if (parse(w, body, len, &j) != TG_OK)
        return TG_DECLINED;
    output = member_of(&j, 0, "output", TG_JSON_OBJECT);
    message = member_of(&j, output, "message", TG_JSON_OBJECT);
    content = member_of(&j, message, "content", TG_JSON_ARRAY);
    if (content < 0)
        return TG_DECLINED;
    while (tg_json_element(&j, content, &cursor, &block))
        if ((rc = decode_block(w, &j, block)) != TG_OK)
            return rc;
    if ((rc = read_stop(w, &j, 0)) != TG_OK)
        return rc;
    usage = tg_json_get(&j, 0, "usage");
    return usage >= 0 ? read_usage(w, &j, usage) : TG_OK;
}

/* ---- stream events (one per event-stream message) ----------------------- */

static int decode_ignored(struct tg_wire_call *w, const struct tg_json *j)
{
    (void)w;
    (void)j;
    return TG_OK;
}

/* Only a toolUse start matters; text blocks may come without a start. */
static int decode_block_start(struct tg_wire_call *w, const struct tg_json *j)
{
    int start = member_of(j, 0, "start", TG_JSON_OBJECT);
    int tool_use = tg_json_get(j, start, "toolUse");

    if (start < 0)
        return TG_DECLINED;
    return tool_use >= 0 ? start_tool(w, j, tool_use) : TG_OK;
}

/*
 * A text or tool-input fragment. The delta names its block by
 * contentBlockIndex, but a tool's fragments need no table from that index
 * to the canonical one: Bedrock streams blocks one at a time (a block's
 * start, deltas and stop before the next block's start), so a toolUse
 * fragment always belongs to the last tool started, w->n_tools - 1, which
 * tg_wire_tool_delta checks is open.
 */
static int decode_block_delta(struct tg_wire_call *w, const struct tg_json *j)
{
    int delta = member_of(j, 0, "delta", TG_JSON_OBJECT);
    int text = tg_json_get(j, delta, "text");
    int tool_use = tg_json_get(j, delta, "toolUse");
    struct tg_str s;

    if (delta < 0)
        return TG_DECLINED;
    if (text >= 0) {
        if (string_of(w, j, member_of(j, delta, "text", TG_JSON_STRING), &s) !=
            TG_OK)
            return TG_DECLINED;
        return tg_wire_text(w, s.ptr, s.len);
    }
    if (tool_use < 0)
        return TG_OK; /* reasoningContent, citations, ... */
    if (tg_json_type(j, tool_use) != TG_JSON_OBJECT ||
        string_of(w, j, member_of(j, tool_use, "input", TG_JSON_STRING), &s) !=
            TG_OK)
        return TG_DECLINED;
    return tg_wire_tool_delta(w, w->n_tools - 1, s.ptr, s.len);
}

/* The content is over. The metadata event that normally follows carries
 * the usage, but a stream that ends here has ended properly too. */
static int decode_message_stop(struct tg_wire_call *w, const struct tg_json *j)
{
    int rc = read_stop(w, j, 0);

    if (rc != TG_OK)
        return rc;
    w->is_complete = true;
    return TG_OK;
}

static int decode_metadata(struct tg_wire_call *w, const struct tg_json *j)
{
    int usage = tg_json_get(j, 0, "usage");

    if (usage >= 0 && read_usage(w, j, usage) != TG_OK)
        return TG_DECLINED;
    w->is_complete = true;
    return TG_OK;
}

static const struct {
    const char *name;
    int (*decode)(struct tg_wire_call *w, const struct tg_json *j);
} stream_events[] = {
    {"messageStart", decode_ignored},
    {"contentBlockStart", decode_block_start},
    {"contentBlockDelta", decode_block_delta},
    {"contentBlockStop", decode_ignored},
    {"messageStop", decode_message_stop},
    {"metadata", decode_metadata},
};

/* An "exception" (or "error") message ends the stream with the provider's
 * error: the answer is not one we can finish. Unknown event types are
 * skipped, as new ones may appear. */
static int decode_frame(struct tg_wire_call *w, const struct tg_es_message *m)
{
    const struct tg_es_header *type = tg_es_find(m, ":event-type");
    struct tg_json j;
    size_t i;

    if (!tg_es_header_is(m, ":message-type", "event") || type == NULL ||
        type->type != TG_ES_STRING ||
        parse(w, (const char *)m->payload, m->payload_len, &j) != TG_OK)
        return TG_DECLINED;
    for (i = 0; i < TG_ARRAY_LEN(stream_events); i++)
        if (tg_es_header_is(m, ":event-type", stream_events[i].name))
            return stream_events[i].decode(w, &j);
    return TG_OK;
}

static void decode_error(int status, const char *body, size_t len, char *out,
                         size_t cap)
{
    static const char *const paths[] = {"message", "Message"};

    tg_wire_error_text(status, body, len, paths, TG_ARRAY_LEN(paths), out, cap);
}

const struct tg_wire tg_wire_bedrock = {
    .type = TG_PROVIDER_BEDROCK,
    .framing = TG_FRAMING_EVENTSTREAM,
    .encode = encode,
    .decode_body = decode_body,
    .decode_frame = decode_frame,
    .decode_error = decode_error,
};
