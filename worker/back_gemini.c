/*
 * back_gemini.c - Google Gemini: POST {base_url}/v1beta/models/{model}
 * :generateContent, or :streamGenerateContent?alt=sse for a stream.
 *
 * Gemini keeps a conversation as "contents" of role user or model, each a
 * list of parts (text, functionCall, functionResponse); consecutive messages
 * of one role merge into one content, and the system messages become the
 * systemInstruction. A tool result names its function, not its call, so the
 * name is looked up among the earlier calls by tool_call_id. An answer, and
 * each event of a stream, is a whole GenerateContentResponse; a stream has
 * no terminator: the chunk carrying finishReason is its proper end. Gemini
 * sends each function call whole, so a call starts, gets its arguments and
 * ends at once.
 *
 * Tool call ids: a function call may carry an "id" (Gemini 3 may send
 * one); it is kept and sent back in functionCall and functionResponse parts.
 * Gemini 2 (and Gemini 3 in the recordings) sends none: such a call is
 * named OWN_ID_PREFIX + responseId + "_" + its index in the answer (stable
 * for one answer, unique across turns, nothing secret), and ids with that
 * prefix are never sent back, so Gemini sees no ids it did not make.
 *
 * Thought signatures: Gemini 3 puts a "thoughtSignature" beside a
 * functionCall and wants it back with that call on the next turn. The
 * canonical message has nowhere to keep it, so it is dropped: a Gemini 3
 * conversation that replays its own function calls may be refused (400).
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_json.h"
#include "tg_wire.h"

#define JSTR(b, s) tg_json_write_str((b), (s).ptr, (s).len)

#define OWN_ID_PREFIX "call_tg_"
/* The longest responseId put in a call id (real ones are about 23). */
#define MAX_RESPONSE_ID 64

static bool is_own_id(struct tg_str id)
{
    size_t n = sizeof(OWN_ID_PREFIX) - 1;

    return id.len >= n && memcmp(id.ptr, OWN_ID_PREFIX, n) == 0;
}

/* RFC 3986 unreserved characters: the rest of a model id is %-escaped. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* TG_ERROR when the escaped model id does not fit in req->path. */
static int encode_path(struct tg_wire_call *w, struct tg_wire_request *req)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *id = w->call->model->upstream_id;
    const char *method =
        w->is_stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    size_t cap = sizeof(req->path), n;
    char *p = req->path;
    int rc;

    if (strncmp(id, "models/", 7) == 0) /* Gemini's own name for a model */
        id += 7;
    n = (size_t)snprintf(p, cap, "/v1beta/models/");
    for (; *id != '\0'; id++) {
        unsigned char c = (unsigned char)*id;
        if (n + 4 > cap)
            return TG_ERROR;
        if (is_unreserved(c)) {
            p[n++] = (char)c;
        } else {
            p[n++] = '%';
            p[n++] = hex[c >> 4];
            p[n++] = hex[c & 15];
        }
    }
    rc = snprintf(p + n, cap - n, "%s", method);
    return rc < 0 || (size_t)rc >= cap - n ? TG_ERROR : TG_OK;
}

/* Appends text if it is a JSON object (without surrounding blanks); false,
 * appending nothing, otherwise. */
static bool add_object(struct tg_wire_call *w, struct evbuffer *b,
                       struct tg_str text)
{
    struct tg_json j;
    const char *raw;
    size_t len;

    if (text.len == 0 ||
        tg_json_parse(&j, text.ptr, text.len, &w->arena, NULL) != TG_OK ||
        tg_json_type(&j, 0) != TG_JSON_OBJECT)
        return false;
    raw = tg_json_raw(&j, 0, &len);
    evbuffer_add(b, raw, len);
    return true;
}

static void add_id(struct evbuffer *b, struct tg_str id)
{
    if (id.len == 0 || is_own_id(id))
        return;
    TG_ADD_LIT(b, ",\"id\":");
    JSTR(b, id);
}

/* The contents array as it is written: the role of the open content. */
struct contents {
    struct evbuffer *b;
    const char *role; /* NULL before the first content */
};

/* Starts a part: in the open content when the role is the same. */
static void open_part(struct contents *o, const char *role)
{
    if (o->role != NULL && strcmp(o->role, role) == 0) {
        TG_ADD_LIT(o->b, ",");
        return;
    }
    if (o->role != NULL)
        TG_ADD_LIT(o->b, "]},");
    evbuffer_add_printf(o->b, "{\"role\":\"%s\",\"parts\":[", role);
    o->role = role;
}

static void encode_text_part(struct contents *o, const char *role,
                             struct tg_str text)
{
    open_part(o, role);
    TG_ADD_LIT(o->b, "{\"text\":");
    JSTR(o->b, text);
    TG_ADD_LIT(o->b, "}");
}

/* args must be an object: arguments that are not one become {}. */
static void encode_call_part(struct tg_wire_call *w, struct contents *o,
                             const struct tg_tool_call *call)
{
    open_part(o, "model");
    TG_ADD_LIT(o->b, "{\"functionCall\":{\"name\":");
    JSTR(o->b, call->name);
    TG_ADD_LIT(o->b, ",\"args\":");
    if (!add_object(w, o->b, call->arguments))
        TG_ADD_LIT(o->b, "{}");
    add_id(o->b, call->id);
    TG_ADD_LIT(o->b, "}}");
}

/* The nearest call before message `before` with this id, or NULL. */
static const struct tg_tool_call *find_call(const struct tg_chat *c,
                                            size_t before, struct tg_str id)
{
    const struct tg_message *m;
    size_t i, k;

    if (id.len == 0)
        return NULL;
    for (i = before; i-- > 0;) {
        m = &c->messages[i];
        for (k = 0; m->role == TG_ROLE_ASSISTANT && k < m->n_calls; k++)
            if (m->calls[k].id.len == id.len &&
                memcmp(m->calls[k].id.ptr, id.ptr, id.len) == 0)
                return &m->calls[k];
    }
    return NULL;
}

/* A tool result; TG_ERROR when no earlier call has its id. The response
 * must be an object: a result that is not one is wrapped. */
static int encode_result_part(struct tg_wire_call *w, struct contents *o,
                              size_t i)
{
    const struct tg_chat *c = w->call->chat;
    const struct tg_message *m = &c->messages[i];
    const struct tg_tool_call *call = find_call(c, i, m->tool_call_id);

    if (call == NULL)
        return TG_ERROR;
    open_part(o, "user");
    TG_ADD_LIT(o->b, "{\"functionResponse\":{\"name\":");
    JSTR(o->b, call->name);
    TG_ADD_LIT(o->b, ",\"response\":");
    if (!add_object(w, o->b, m->text)) {
        TG_ADD_LIT(o->b, "{\"result\":");
        JSTR(o->b, m->text);
        TG_ADD_LIT(o->b, "}");
    }
    add_id(o->b, m->tool_call_id);
    TG_ADD_LIT(o->b, "}}");
    return TG_OK;
}

/* Every message gives at least one part (a content may not be empty):
 * its text when it has some or nothing else. */
static int encode_contents(struct tg_wire_call *w, struct evbuffer *b)
{
    const struct tg_chat *c = w->call->chat;
    struct contents o = {b, NULL};
    const struct tg_message *m;
    size_t i, k;

    TG_ADD_LIT(b, "\"contents\":[");
    for (i = 0; i < c->n_messages; i++) {
        m = &c->messages[i];
        if (m->role == TG_ROLE_SYSTEM)
            continue;
        if (m->role == TG_ROLE_TOOL) {
            if (encode_result_part(w, &o, i) != TG_OK)
                return TG_ERROR;
            continue;
        }
        if (m->role == TG_ROLE_USER)
            encode_text_part(&o, "user", m->text);
        else if (m->text.len > 0 || m->n_calls == 0)
            encode_text_part(&o, "model", m->text);
        for (k = 0; m->role == TG_ROLE_ASSISTANT && k < m->n_calls; k++)
            encode_call_part(w, &o, &m->calls[k]);
    }
    if (o.role != NULL)
        TG_ADD_LIT(b, "]}");
    TG_ADD_LIT(b, "]");
    return TG_OK;
}

/* Gemini has one system instruction: every system message is a part. */
static void encode_system(struct evbuffer *b, const struct tg_chat *c)
{
    bool has_part = false;
    size_t i;

    for (i = 0; i < c->n_messages; i++) {
        if (c->messages[i].role != TG_ROLE_SYSTEM ||
            c->messages[i].text.len == 0)
            continue;
        if (has_part)
            TG_ADD_LIT(b, ",");
        else
            TG_ADD_LIT(b, ",\"systemInstruction\":{\"parts\":[");
        has_part = true;
        TG_ADD_LIT(b, "{\"text\":");
        JSTR(b, c->messages[i].text);
        TG_ADD_LIT(b, "}");
    }
    if (has_part)
        TG_ADD_LIT(b, "]}");
}

static void encode_tool_config(struct evbuffer *b, const struct tg_chat *c)
{
    switch (c->tool_choice) {
    case TG_TOOL_CHOICE_AUTO: return; /* Gemini's default */
    case TG_TOOL_CHOICE_NONE:
        TG_ADD_LIT(b, ",\"toolConfig\":{\"functionCallingConfig\":"
                      "{\"mode\":\"NONE\"}}");
        return;
    case TG_TOOL_CHOICE_REQUIRED:
        TG_ADD_LIT(b, ",\"toolConfig\":{\"functionCallingConfig\":"
                      "{\"mode\":\"ANY\"}}");
        return;
    case TG_TOOL_CHOICE_NAMED:
        TG_ADD_LIT(b, ",\"toolConfig\":{\"functionCallingConfig\":"
                      "{\"mode\":\"ANY\",\"allowedFunctionNames\":[");
        JSTR(b, c->tool_choice_name);
        TG_ADD_LIT(b, "]}}");
        return;
    }
}

/* parametersJsonSchema takes full JSON Schema, as the canonical tool has
 * it ("parameters" takes only Gemini's OpenAPI subset). */
static void encode_tools(struct evbuffer *b, const struct tg_chat *c)
{
    size_t i;

    TG_ADD_LIT(b, ",\"tools\":[{\"functionDeclarations\":[");
    for (i = 0; i < c->n_tools; i++) {
        if (i > 0)
            TG_ADD_LIT(b, ",");
        TG_ADD_LIT(b, "{\"name\":");
        JSTR(b, c->tools[i].name);
        if (c->tools[i].description.len > 0) {
            TG_ADD_LIT(b, ",\"description\":");
            JSTR(b, c->tools[i].description);
        }
        TG_ADD_LIT(b, ",\"parametersJsonSchema\":");
        evbuffer_add(b, c->tools[i].parameters.ptr, c->tools[i].parameters.len);
        TG_ADD_LIT(b, "}");
    }
    TG_ADD_LIT(b, "]}]");
    encode_tool_config(b, c);
}

static void encode_generation_config(struct evbuffer *b,
                                     const struct tg_chat *c)
{
    const char *sep = "";
    size_t i;

    if (!c->has_temperature && !c->has_top_p && !c->has_max_tokens &&
        c->n_stop == 0)
        return;
    TG_ADD_LIT(b, ",\"generationConfig\":{");
    if (c->has_temperature) {
        evbuffer_add_printf(b, "\"temperature\":%.17g", c->temperature);
        sep = ",";
    }
    if (c->has_top_p) {
        evbuffer_add_printf(b, "%s\"topP\":%.17g", sep, c->top_p);
        sep = ",";
    }
    if (c->has_max_tokens) {
        evbuffer_add_printf(b, "%s\"maxOutputTokens\":%lld", sep,
                            (long long)c->max_tokens);
        sep = ",";
    }
    if (c->n_stop > 0) {
        evbuffer_add_printf(b, "%s\"stopSequences\":[", sep);
        for (i = 0; i < c->n_stop; i++) {
            if (i > 0)
                TG_ADD_LIT(b, ",");
            JSTR(b, c->stop[i]);
        }
        TG_ADD_LIT(b, "]");
    }
    TG_ADD_LIT(b, "}");
}

static int encode(struct tg_wire_call *w, struct tg_wire_request *req)
{
    const struct tg_chat *c = w->call->chat;
    const struct tg_provider *p = w->call->model->provider;
    struct evbuffer *b = req->body;

    if (encode_path(w, req) != TG_OK)
        return TG_ERROR;
    tg_wire_header(req, "Content-Type", "application/json");
    if (p->api_key[0] != '\0')
        tg_wire_header(req, "x-goog-api-key", p->api_key);
    TG_ADD_LIT(b, "{");
    if (encode_contents(w, b) != TG_OK)
        return TG_ERROR;
    encode_system(b, c);
    if (c->n_tools > 0)
        encode_tools(b, c);
    encode_generation_config(b, c);
    TG_ADD_LIT(b, "}");
    return TG_OK;
}

/* ---- decoding ----------------------------------------------------------- */

static const char *const filter_reasons[] = {
    "SAFETY", "RECITATION",   "BLOCKLIST", "PROHIBITED_CONTENT",
    "SPII",   "IMAGE_SAFETY",
};

/* STOP ends a turn that called functions too: that is a tool-use stop. */
static enum tg_stop_reason stop_of(const struct tg_wire_call *w,
                                   const struct tg_json *j, int v)
{
    size_t i;

    if (tg_json_str_eq(j, v, "STOP"))
        return w->n_tools > 0 ? TG_STOP_TOOL_USE : TG_STOP_END;
    if (tg_json_str_eq(j, v, "MAX_TOKENS"))
        return TG_STOP_MAX_TOKENS;
    for (i = 0; i < TG_ARRAY_LEN(filter_reasons); i++)
        if (tg_json_str_eq(j, v, filter_reasons[i]))
            return TG_STOP_FILTER;
    return TG_STOP_END;
}

/* The answer's proper end; a second finishReason adds nothing. */
static int finish_answer(struct tg_wire_call *w, enum tg_stop_reason reason)
{
    if (w->is_complete)
        return TG_OK;
    w->is_complete = true;
    return tg_wire_stop(w, reason);
}

static int read_count(const struct tg_json *j, int u, const char *key,
                      int64_t *out)
{
    int v = tg_json_get(j, u, key);

    *out = 0;
    return v < 0 ? TG_OK : tg_json_int64(j, v, out);
}

/* Thinking is billed as output, so it counts as completion. */
static int read_usage(struct tg_wire_call *w, const struct tg_json *j, int u)
{
    int64_t prompt, candidates, thoughts;

    if (tg_json_type(j, u) != TG_JSON_OBJECT ||
        read_count(j, u, "promptTokenCount", &prompt) != TG_OK ||
        read_count(j, u, "candidatesTokenCount", &candidates) != TG_OK ||
        read_count(j, u, "thoughtsTokenCount", &thoughts) != TG_OK)
        return TG_DECLINED;
    tg_wire_usage(w, prompt, candidates + thoughts);
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

/* The id of a call Gemini gave none (see the top of the file). */
static int make_id(struct tg_wire_call *w, int index, struct tg_str response_id,
                   struct tg_str *out)
{
    size_t i, n = response_id.len;
    char *s;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)response_id.ptr[i];
        if (!is_unreserved(c) || c == '.' || c == '~')
            n = 0; /* only [A-Za-z0-9_-], else the index alone */
    }
    if (n > MAX_RESPONSE_ID)
        n = 0;
    if (n > 0)
        s = tg_arena_printf(&w->arena, OWN_ID_PREFIX "%.*s_%d", (int)n,
                            response_id.ptr, index);
    else
        s = tg_arena_printf(&w->arena, OWN_ID_PREFIX "%d", index);
    if (s == NULL)
        return TG_NOMEM;
    *out = (struct tg_str){s, strlen(s)};
    return TG_OK;
}

/* Gemini sends a function call whole: it ends where it starts. */
static int end_tool(struct tg_wire_call *w, int index)
{
    struct tg_event ev = {.type = TG_EV_TOOL_END, .index = index};

    w->is_tool_open[index] = false;
    return tg_wire_emit(w, &ev);
}

/* A functionCall part {name, args, id?}; its index is its order in the
 * answer. The thoughtSignature beside it is dropped (see the top). */
static int decode_call(struct tg_wire_call *w, const struct tg_json *j, int fc,
                       struct tg_str response_id)
{
    int index = w->n_tools, args = tg_json_get(j, fc, "args"), rc;
    struct tg_str id, name;
    const char *raw = "{}";
    size_t len = 2;

    if (tg_json_type(j, fc) != TG_JSON_OBJECT ||
        string_of(w, j, tg_json_get(j, fc, "name"), &name) != TG_OK ||
        name.len == 0 ||
        string_of(w, j, tg_json_get(j, fc, "id"), &id) != TG_OK)
        return TG_DECLINED;
    if (args >= 0 && tg_json_type(j, args) != TG_JSON_NULL) {
        if (tg_json_type(j, args) != TG_JSON_OBJECT)
            return TG_DECLINED;
        raw = tg_json_raw(j, args, &len);
    }
    if (id.len == 0 && (rc = make_id(w, index, response_id, &id)) != TG_OK)
        return rc;
    if ((rc = tg_wire_tool_start(w, index, id, name)) != TG_OK ||
        (rc = tg_wire_tool_delta(w, index, raw, len)) != TG_OK)
        return rc;
    return end_tool(w, index);
}

/* A text part (skipped when it is a thought), a functionCall part, or
 * another kind, which the canonical events cannot carry and are skipped. */
static int decode_part(struct tg_wire_call *w, const struct tg_json *j,
                       int part, struct tg_str response_id)
{
    int text = tg_json_get(j, part, "text");
    int fc = tg_json_get(j, part, "functionCall");
    int thought = tg_json_get(j, part, "thought");
    bool is_thought = false;
    struct tg_str s;

    if (tg_json_type(j, part) != TG_JSON_OBJECT ||
        (thought >= 0 && tg_json_bool(j, thought, &is_thought) != TG_OK))
        return TG_DECLINED;
    if (fc >= 0)
        return decode_call(w, j, fc, response_id);
    if (text < 0 || is_thought)
        return TG_OK;
    if (tg_json_type(j, text) != TG_JSON_STRING ||
        string_of(w, j, text, &s) != TG_OK)
        return TG_DECLINED;
    return tg_wire_text(w, s.ptr, s.len);
}

static int decode_parts(struct tg_wire_call *w, const struct tg_json *j,
                        int content, struct tg_str response_id)
{
    int parts, part, cursor = 0, rc;

    if (tg_json_type(j, content) != TG_JSON_OBJECT)
        return TG_DECLINED;
    parts = tg_json_get(j, content, "parts");
    if (parts < 0)
        return TG_OK; /* a candidate stopped by a filter has none */
    if (tg_json_type(j, parts) != TG_JSON_ARRAY)
        return TG_DECLINED;
    while (tg_json_element(j, parts, &cursor, &part))
        if ((rc = decode_part(w, j, part, response_id)) != TG_OK)
            return rc;
    return TG_OK;
}

static int decode_candidate(struct tg_wire_call *w, const struct tg_json *j,
                            int candidate, struct tg_str response_id)
{
    int content = tg_json_get(j, candidate, "content");
    int reason = tg_json_get(j, candidate, "finishReason");
    int rc;

    if (tg_json_type(j, candidate) != TG_JSON_OBJECT)
        return TG_DECLINED;
    if (w->is_complete)
        return TG_OK; /* nothing follows the stop */
    if (content >= 0 &&
        (rc = decode_parts(w, j, content, response_id)) != TG_OK)
        return rc;
    if (reason < 0 || tg_json_type(j, reason) == TG_JSON_NULL)
        return TG_OK;
    if (tg_json_type(j, reason) != TG_JSON_STRING)
        return TG_DECLINED;
    return finish_answer(w, stop_of(w, j, reason));
}

/* No candidate: the prompt was blocked, or (in a stream) a chunk carries
 * only usage. A whole answer without either is malformed. */
static int decode_no_candidate(struct tg_wire_call *w, const struct tg_json *j,
                               bool is_body)
{
    int feedback = tg_json_get(j, 0, "promptFeedback");
    int reason = tg_json_get(j, feedback, "blockReason");

    if (reason >= 0 && tg_json_type(j, reason) == TG_JSON_STRING)
        return finish_answer(w, TG_STOP_FILTER);
    return is_body ? TG_DECLINED : TG_OK;
}

/* One GenerateContentResponse: a whole answer or one chunk of a stream.
 * Only the first candidate is read (the canonical request asks for one). */
static int decode_response(struct tg_wire_call *w, const struct tg_json *j,
                           bool is_body)
{
    int candidates = tg_json_get(j, 0, "candidates");
    int usage = tg_json_get(j, 0, "usageMetadata");
    int candidate, cursor = 0, rc;
    struct tg_str response_id;

    if (tg_json_get(j, 0, "error") >= 0 ||
        string_of(w, j, tg_json_get(j, 0, "responseId"), &response_id) !=
            TG_OK ||
        (candidates >= 0 && tg_json_type(j, candidates) != TG_JSON_ARRAY))
        return TG_DECLINED;
    if (candidates >= 0 && tg_json_element(j, candidates, &cursor, &candidate))
        rc = decode_candidate(w, j, candidate, response_id);
    else
        rc = decode_no_candidate(w, j, is_body);
    if (rc != TG_OK)
        return rc;
    return usage >= 0 ? read_usage(w, j, usage) : TG_OK;
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

/* A whole answer is complete even when it names no finishReason. */
static int decode_body(struct tg_wire_call *w, const char *body, size_t len)
{
    struct tg_json j;
    int rc;

    if (parse(w, body, len, &j) != TG_OK)
        return TG_DECLINED;
    if ((rc = decode_response(w, &j, true)) != TG_OK)
        return rc;
    return finish_answer(w, w->n_tools > 0 ? TG_STOP_TOOL_USE : TG_STOP_END);
}

/* Usage comes on every chunk, as running totals; the last one wins. */
static int decode_sse(struct tg_wire_call *w, const char *event,
                      size_t event_len, const char *data, size_t len)
{
    struct tg_json j;

    (void)event;
    (void)event_len;
    if (parse(w, data, len, &j) != TG_OK)
        return TG_DECLINED;
    return decode_response(w, &j, false);
}

static void decode_error(int status, const char *body, size_t len, char *out,
                         size_t cap)
{
    static const char *const paths[] = {"error.message"};

    tg_wire_error_text(status, body, len, paths, TG_ARRAY_LEN(paths), out, cap);
}

const struct tg_wire tg_wire_gemini = {
    .type = TG_PROVIDER_GEMINI,
    .framing = TG_FRAMING_SSE,
    .encode = encode,
    .decode_body = decode_body,
    .decode_sse = decode_sse,
    .decode_error = decode_error,
};
