/*
 * gemini.c - Google's Gemini API: POST .../models/{model}:generateContent
 * and .../models/{model}:streamGenerateContent?alt=sse.
 *
 * The key comes in x-goog-api-key (or ?key=). contents with user and model
 * turns whose parts are text, functionCall or functionResponse;
 * systemInstruction; tools with functionDeclarations; toolConfig's
 * functionCallingConfig; generationConfig.maxOutputTokens. Answers have the
 * shape of shared/data/responses/gemini_*.json; a stream is one
 * "data: {...}\r\n\r\n" event per word, each a whole GenerateContentResponse,
 * the last with finishReason and the full usageMetadata. A function call
 * comes whole in one event (Gemini does not split its arguments) and has
 * no id.
 */
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define MODELS_SEGMENT "/models/"

/* The model and method of a Gemini path; false when it is none. */
static bool split_path(const char *path, const char **model, size_t *len,
                       bool *is_stream)
{
    const char *start = strstr(path, MODELS_SEGMENT), *colon;

    if (start == NULL)
        return false;
    start += strlen(MODELS_SEGMENT);
    colon = strchr(start, ':');
    if (colon == NULL || colon == start || memchr(start, '/', colon - start))
        return false;
    *model = start;
    *len = (size_t)(colon - start);
    if (strcmp(colon, ":generateContent") == 0)
        *is_stream = false;
    else if (strcmp(colon, ":streamGenerateContent") == 0)
        *is_stream = true;
    else
        return false;
    return true;
}

static bool gemini_match(const char *path)
{
    const char *model;
    size_t len;
    bool is_stream;

    return split_path(path, &model, &len, &is_stream);
}

/* Also notes whether the path is the streaming one. */
static const char *gemini_model_of(struct mock_call *c)
{
    const char *model;
    size_t len;

    if (!split_path(c->path, &model, &len, &c->is_stream))
        return NULL;
    return mock_uri_decode(c, model, len);
}

/* A query parameter's decoded value (in the arena), or NULL. */
static const char *query_param(struct mock_call *c, const char *name)
{
    struct evkeyvalq params;
    const char *value;
    char *copy = NULL;

    if (c->query == NULL || evhttp_parse_query_str(c->query, &params) != 0)
        return NULL;
    value = evhttp_find_header(&params, name);
    if (value != NULL)
        copy = tg_arena_strndup(&c->arena, value, strlen(value));
    evhttp_clear_headers(&params);
    return copy;
}

/* ---- errors ---- */

struct gemini_error {
    int status;
    const char *code;
    const char *message;
};

static const struct gemini_error gemini_errors[] = {
    {400, "INVALID_ARGUMENT", "Request contains an invalid argument."},
    {401, "UNAUTHENTICATED", "Request had invalid authentication credentials."},
    {403, "PERMISSION_DENIED", "The caller does not have permission"},
    {404, "NOT_FOUND", "Requested entity was not found."},
    {429, "RESOURCE_EXHAUSTED",
     "Resource has been exhausted (e.g. check quota)."},
    {500, "INTERNAL",
     "An internal error has occurred. Please retry or report in "
     "https://developers.generativeai.google/guide/troubleshooting"},
    {503, "UNAVAILABLE", "The model is overloaded. Please try again later."},
    {504, "DEADLINE_EXCEEDED",
     "Deadline expired before operation could complete."},
};

static struct gemini_error gemini_error_of(int status)
{
    struct gemini_error e = {status, "FAILED_PRECONDITION",
                             "The request failed."};

    for (size_t i = 0; i < sizeof(gemini_errors) / sizeof(gemini_errors[0]);
         i++)
        if (gemini_errors[i].status == status)
            return gemini_errors[i];
    if (status >= 500)
        e.code = "INTERNAL";
    return e;
}

static void gemini_render_error(struct mock_call *c, int status,
                                const char *kind, const char *message)
{
    struct gemini_error e = gemini_error_of(status);

    mock_begin_answer(c, status, "application/json; charset=UTF-8");
    evbuffer_add_printf(c->out, "{\"error\":{\"code\":%d,\"message\":", status);
    message = message ? message : e.message;
    tg_json_write_str(c->out, message, strlen(message));
    evbuffer_add_printf(c->out, ",\"status\":\"%s\"}}", kind ? kind : e.code);
}

static int gemini_authenticate(struct mock_call *c)
{
    const char *key = evhttp_find_header(
        evhttp_request_get_input_headers(c->req), "x-goog-api-key");

    if (key == NULL)
        key = query_param(c, "key");
    if (key == NULL) {
        gemini_render_error(
            c, 403, NULL,
            "Method doesn't allow unregistered callers (callers without "
            "established identity). Please use API Key or other form of API "
            "consumer identity to call this API.");
        return -1;
    }
    if (strcmp(key, c->srv->keys.gemini) != 0) {
        gemini_render_error(c, 400, NULL,
                            "API key not valid. Please pass a valid API key.");
        return -1;
    }
    return 0;
}

/* ---- the request ---- */

/* One part: text joins *text; a functionResponse's response (its JSON text
 * as received) becomes the tool result. */
static int parse_part(struct mock_call *c, int part, struct tg_str *text,
                      bool *has_text, bool *has_result)
{
    int field;
    struct tg_str piece;

    if (mock_expect(c, part, TG_JSON_OBJECT, "parts[]") < 0)
        return -1;
    field = mock_field(c, part, "text", TG_JSON_STRING, false);
    if (field == MOCK_BAD)
        return -1;
    if (field >= 0) {
        if (mock_string(c, field, &piece) != 0)
            return -1;
        mock_count_prompt(c, piece);
        *has_text = true;
        return mock_append(c, text, piece);
    }
    field = mock_field(c, part, "functionResponse", TG_JSON_OBJECT, false);
    if (field == MOCK_BAD)
        return -1;
    if (field >= 0) {
        c->convo.tool_result =
            mock_raw(c, tg_json_get(&c->json, field, "response"));
        mock_count_prompt(c, c->convo.tool_result);
        *has_result = true;
    }
    return 0;
}

static int parse_content(struct mock_call *c, int content, bool is_last)
{
    struct tg_str text = {"", 0};
    bool has_text = false, has_result = false, is_model;
    int role, parts, cursor = 0, part;

    if (mock_expect(c, content, TG_JSON_OBJECT, "contents[]") < 0 ||
        (role = mock_field(c, content, "role", TG_JSON_STRING, false)) ==
            MOCK_BAD ||
        (parts = mock_field(c, content, "parts", TG_JSON_ARRAY, true)) < 0)
        return -1;
    is_model = role >= 0 && tg_json_str_eq(&c->json, role, "model");
    while (tg_json_element(&c->json, parts, &cursor, &part))
        if (parse_part(c, part, &text, &has_text, &has_result) != 0)
            return -1;
    if (!is_model && (has_text || !has_result))
        c->convo.last_user_text = text;
    c->convo.is_tool_result = is_last && !is_model && has_result;
    return 0;
}

static int parse_contents(struct mock_call *c)
{
    int contents = mock_field(c, 0, "contents", TG_JSON_ARRAY, true);
    int cursor = 0, content, size, n = 0;

    if (contents < 0)
        return -1;
    size = tg_json_size(&c->json, contents);
    while (tg_json_element(&c->json, contents, &cursor, &content))
        if (parse_content(c, content, ++n == size) != 0)
            return -1;
    return 0;
}

/* systemInstruction: {"parts":[{"text":...}]} */
static int parse_system(struct mock_call *c)
{
    int system = mock_field(c, 0, "systemInstruction", TG_JSON_OBJECT, false);
    int parts, cursor = 0, part;
    struct tg_str text = {"", 0};
    bool has_text = false, has_result = false;

    if (system == MOCK_BAD)
        return -1;
    if (system < 0)
        return 0;
    parts = mock_field(c, system, "parts", TG_JSON_ARRAY, true);
    if (parts < 0)
        return -1;
    while (tg_json_element(&c->json, parts, &cursor, &part))
        if (parse_part(c, part, &text, &has_text, &has_result) != 0)
            return -1;
    return 0;
}

/* tools: [{"functionDeclarations":[{"name":...}]}, {"googleSearch":{}}] */
static int parse_tools(struct mock_call *c)
{
    int tools = mock_field(c, 0, "tools", TG_JSON_ARRAY, false);
    int cursor = 0, tool, decls, inner, decl, name;

    if (tools == MOCK_BAD)
        return -1;
    while (tools >= 0 && tg_json_element(&c->json, tools, &cursor, &tool)) {
        if (mock_expect(c, tool, TG_JSON_OBJECT, "tools[]") < 0 ||
            (decls = mock_field(c, tool, "functionDeclarations", TG_JSON_ARRAY,
                                false)) == MOCK_BAD)
            return -1;
        inner = 0;
        while (decls >= 0 && tg_json_element(&c->json, decls, &inner, &decl)) {
            if (mock_expect(c, decl, TG_JSON_OBJECT, "functionDeclarations[]") <
                    0 ||
                (name = mock_field(c, decl, "name", TG_JSON_STRING, true)) < 0)
                return -1;
            if (c->convo.n_tools++ == 0 &&
                mock_string(c, name, &c->convo.first_tool) != 0)
                return -1;
        }
    }
    return 0;
}

/* toolConfig.functionCallingConfig: {"mode":"AUTO"|"ANY"|"NONE",
 * "allowedFunctionNames":[...]}; ANY with names calls the first of them. */
static int parse_tool_config(struct mock_call *c)
{
    int config = mock_field(c, 0, "toolConfig", TG_JSON_OBJECT, false);
    int fc, mode, names, cursor = 0, first;

    if (config < 0)
        return config == MOCK_BAD ? -1 : 0;
    fc = mock_field(c, config, "functionCallingConfig", TG_JSON_OBJECT, false);
    if (fc < 0)
        return fc == MOCK_BAD ? -1 : 0;
    mode = mock_field(c, fc, "mode", TG_JSON_STRING, false);
    names = mock_field(c, fc, "allowedFunctionNames", TG_JSON_ARRAY, false);
    if (mode == MOCK_BAD || names == MOCK_BAD)
        return -1;
    if (mode >= 0 && tg_json_str_eq(&c->json, mode, "NONE"))
        c->convo.choice = MOCK_CHOICE_NONE;
    if (mode < 0 || !tg_json_str_eq(&c->json, mode, "ANY"))
        return 0;
    c->convo.choice = MOCK_CHOICE_ANY;
    if (names >= 0 && tg_json_element(&c->json, names, &cursor, &first)) {
        if (mock_expect(c, first, TG_JSON_STRING, "allowedFunctionNames[]") <
                0 ||
            mock_string(c, first, &c->convo.choice_name) != 0)
            return -1;
        c->convo.choice = MOCK_CHOICE_NAMED;
    }
    return 0;
}

static int gemini_parse(struct mock_call *c)
{
    struct mock_convo *cv = &c->convo;
    const char *alt = query_param(c, "alt");
    int config;

    if (c->is_stream && (alt == NULL || strcmp(alt, "sse") != 0)) {
        c->error = "mock-upstream serves streamGenerateContent with alt=sse "
                   "only.";
        return -1;
    }
    if (mock_expect(c, 0, TG_JSON_OBJECT, "body") < 0 || parse_system(c) != 0 ||
        parse_contents(c) != 0 || parse_tools(c) != 0 ||
        parse_tool_config(c) != 0)
        return -1;
    config = mock_field(c, 0, "generationConfig", TG_JSON_OBJECT, false);
    if (config == MOCK_BAD)
        return -1;
    if (config >= 0 &&
        mock_positive_int(c, config, "maxOutputTokens", &cv->has_max_tokens,
                          &cv->max_tokens) != 0)
        return -1;
    return 0;
}

/* ---- the answer ---- */

static const char *finish_reason(enum mock_stop stop)
{
    return stop == MOCK_STOP_LENGTH ? "MAX_TOKENS" : "STOP";
}

/* One GenerateContentResponse whose single part is text or the call;
 * `is_last` adds finishReason and the completion's usage. */
static void write_response(struct mock_call *c, struct evbuffer *b,
                           const char *text, size_t len, bool is_last)
{
    const struct mock_reply *r = &c->reply;

    TG_ADD_LIT(b, "{\"candidates\":[{\"content\":{\"parts\":[{");
    if (r->is_tool) {
        TG_ADD_LIT(b, "\"functionCall\":{\"name\":");
        tg_json_write_str(b, r->tool_name.ptr, r->tool_name.len);
        TG_ADD_LIT(b, ",\"args\":");
        evbuffer_add(b, r->arguments.ptr, r->arguments.len);
        TG_ADD_LIT(b, "}");
    } else {
        TG_ADD_LIT(b, "\"text\":");
        tg_json_write_str(b, text, len);
    }
    TG_ADD_LIT(b, "}],\"role\":\"model\"}");
    if (is_last)
        evbuffer_add_printf(b, ",\"finishReason\":\"%s\"",
                            finish_reason(r->stop));
    evbuffer_add_printf(b,
                        ",\"index\":0}],\"usageMetadata\":{"
                        "\"promptTokenCount\":%lld,",
                        (long long)r->prompt_tokens);
    if (is_last)
        evbuffer_add_printf(b, "\"candidatesTokenCount\":%lld,",
                            (long long)r->completion_tokens);
    evbuffer_add_printf(
        b, "\"totalTokenCount\":%lld},\"modelVersion\":",
        (long long)(r->prompt_tokens + (is_last ? r->completion_tokens : 0)));
    tg_json_write_str(b, c->model, strlen(c->model));
    evbuffer_add_printf(b, ",\"responseId\":\"mock-%llu\"}",
                        (unsigned long long)c->id);
}

/* Frames one response (in `json`, emptied) as an SSE event. */
static void emit(struct mock_call *c, enum mock_piece_kind kind,
                 struct evbuffer *json)
{
    size_t len = evbuffer_get_length(json);
    const char *p = (const char *)evbuffer_pullup(json, -1);

    TG_ADD_LIT(c->out, "data: ");
    evbuffer_add(c->out, p, mock_fault_payload_len(c, kind, p, len));
    TG_ADD_LIT(c->out, "\r\n\r\n");
    evbuffer_drain(json, len);
    mock_piece_end(c, kind);
}

/* A word per event; the last one (or the only one, for an empty text or a
 * function call) closes the answer. */
static void render_stream(struct mock_call *c, struct evbuffer *b)
{
    const struct tg_str *t = &c->reply.text;
    size_t at = 0, end;

    do {
        end = c->reply.is_tool ? t->len : mock_next_word(t->ptr, t->len, at);
        write_response(c, b, t->ptr + at, end - at, end == t->len);
        emit(c, end == t->len ? MOCK_PIECE_TAIL : MOCK_PIECE_CONTENT, b);
        at = end;
    } while (at < t->len);
}

static void gemini_render(struct mock_call *c)
{
    struct evbuffer *b;

    mock_begin_answer(c, 200,
                      c->is_stream ? "text/event-stream"
                                   : "application/json; charset=UTF-8");
    if (!c->is_stream) {
        write_response(c, c->out, c->reply.text.ptr, c->reply.text.len, true);
        return;
    }
    c->is_stream_answer = true;
    b = evbuffer_new();
    if (b == NULL)
        return;
    render_stream(c, b);
    evbuffer_free(b);
}

const struct mock_provider mock_gemini = {
    .id = MOCK_GEMINI,
    .match = gemini_match,
    .model_of = gemini_model_of,
    .authenticate = gemini_authenticate,
    .parse = gemini_parse,
    .render_error = gemini_render_error,
    .render = gemini_render,
};
