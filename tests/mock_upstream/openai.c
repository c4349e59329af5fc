/*
 * openai.c - the OpenAI Chat Completions API: POST .../chat/completions.
 *
 * Bearer-key auth; messages with roles system, developer, user, assistant
 * and tool; function tools and tool_choice; max_tokens or
 * max_completion_tokens; stream with stream_options.include_usage. Answers
 * and stream chunks have the shapes of the recordings in
 * shared/data/responses/openai_*.json and shared/data/streams/openai_*.sse:
 * a role chunk, content (or tool-call argument) chunks, a finish chunk, the
 * usage chunk when asked for, then "data: [DONE]".
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mock.h"

#define OPENAI_TOOL_CALL_ID "call_mock_1"

static bool openai_match(const char *path)
{
    static const char suffix[] = "/chat/completions";
    size_t n = strlen(path), s = sizeof(suffix) - 1;

    return n >= s && strcmp(path + n - s, suffix) == 0;
}

/* ---- errors ---- */

struct openai_error {
    int status;
    const char *type;
    const char *code; /* NULL: JSON null */
    const char *message;
};

static const struct openai_error openai_errors[] = {
    {400, "invalid_request_error", NULL, "Invalid request."},
    {401, "invalid_request_error", "invalid_api_key",
     "Incorrect API key provided. You can find your API key at "
     "https://platform.openai.com/account/api-keys."},
    {403, "invalid_request_error", "unsupported_country_region_territory",
     "Country, region, or territory not supported"},
    {404, "invalid_request_error", "model_not_found",
     "The model does not exist or you do not have access to it."},
    {429, "requests", "rate_limit_exceeded",
     "Rate limit reached for requests. Please try again in 1s."},
    {500, "server_error", NULL,
     "The server had an error while processing your request. Sorry about "
     "that!"},
    {503, "server_error", NULL,
     "The engine is currently overloaded, please try again later"},
};

static struct openai_error openai_error_of(int status)
{
    struct openai_error e = {status, "invalid_request_error", NULL,
                             "Request failed."};

    for (size_t i = 0; i < sizeof(openai_errors) / sizeof(openai_errors[0]);
         i++)
        if (openai_errors[i].status == status)
            return openai_errors[i];
    if (status >= 500)
        e.type = "server_error";
    return e;
}

static void openai_render_error(struct mock_call *c, int status,
                                const char *kind, const char *message)
{
    struct openai_error e = openai_error_of(status);

    mock_begin_answer(c, status, "application/json");
    TG_ADD_LIT(c->out, "{\"error\":{\"message\":");
    message = message ? message : e.message;
    tg_json_write_str(c->out, message, strlen(message));
    evbuffer_add_printf(c->out,
                        ",\"type\":\"%s\",\"param\":null,\"code\":", e.type);
    if (kind != NULL || e.code != NULL)
        evbuffer_add_printf(c->out, "\"%s\"}}", kind ? kind : e.code);
    else
        TG_ADD_LIT(c->out, "null}}");
}

static int openai_authenticate(struct mock_call *c)
{
    const char *auth = evhttp_find_header(
        evhttp_request_get_input_headers(c->req), "Authorization");
    const char *key = c->srv->keys.openai;

    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0 &&
        strcmp(auth + 7, key) == 0)
        return 0;
    openai_render_error(c, 401, NULL, NULL);
    return -1;
}

/* ---- the request ---- */

static int parse_message(struct mock_call *c, int msg, size_t n, bool is_last)
{
    const char *where = tg_arena_printf(&c->arena, "messages[%zu]", n);
    struct tg_str text;
    int role;

    if (mock_expect(c, msg, TG_JSON_OBJECT, where) < 0 ||
        (role = mock_field(c, msg, "role", TG_JSON_STRING, true)) < 0 ||
        mock_content_text(c, tg_json_get(&c->json, msg, "content"),
                          tg_arena_printf(&c->arena, "%s.content", where),
                          &text) != 0)
        return -1;
    mock_count_prompt(c, text);
    c->convo.is_tool_result = false;
    if (tg_json_str_eq(&c->json, role, "user")) {
        c->convo.last_user_text = text;
    } else if (tg_json_str_eq(&c->json, role, "tool") ||
               tg_json_str_eq(&c->json, role, "function")) {
        c->convo.is_tool_result = is_last;
        c->convo.tool_result = text;
    } else if (!tg_json_str_eq(&c->json, role, "system") &&
               !tg_json_str_eq(&c->json, role, "developer") &&
               !tg_json_str_eq(&c->json, role, "assistant")) {
        c->error =
            tg_arena_printf(&c->arena, "Invalid value for '%s.role'.", where);
        return -1;
    }
    return 0;
}

static int parse_messages(struct mock_call *c)
{
    int msgs = mock_field(c, 0, "messages", TG_JSON_ARRAY, true);
    int cursor = 0, msg, size;
    size_t n = 0;

    if (msgs < 0)
        return -1;
    size = tg_json_size(&c->json, msgs);
    if (size == 0) {
        c->error = "Invalid 'messages': empty array. Expected an array with "
                   "minimum length 1, but got an empty array instead.";
        return -1;
    }
    while (tg_json_element(&c->json, msgs, &cursor, &msg)) {
        if (parse_message(c, msg, n, (int)n == size - 1) != 0)
            return -1;
        n++;
    }
    return 0;
}

/* tools: [{"type":"function","function":{"name":...}}] */
static int parse_tools(struct mock_call *c)
{
    int tools = mock_field(c, 0, "tools", TG_JSON_ARRAY, false);
    int cursor = 0, tool, fn, name;

    if (tools == MOCK_BAD)
        return -1;
    while (tools >= 0 && tg_json_element(&c->json, tools, &cursor, &tool)) {
        if (mock_expect(c, tool, TG_JSON_OBJECT, "tools[]") < 0 ||
            (fn = mock_field(c, tool, "function", TG_JSON_OBJECT, true)) < 0 ||
            (name = mock_field(c, fn, "name", TG_JSON_STRING, true)) < 0)
            return -1;
        if (c->convo.n_tools++ == 0 &&
            mock_string(c, name, &c->convo.first_tool) != 0)
            return -1;
    }
    return 0;
}

/* tool_choice: "none" | "auto" | "required" | {"type":"function",
 * "function":{"name":...}} */
static int parse_tool_choice(struct mock_call *c)
{
    int choice = tg_json_get(&c->json, 0, "tool_choice"), fn, name;

    if (choice < 0 || tg_json_type(&c->json, choice) == TG_JSON_NULL)
        return 0;
    if (tg_json_type(&c->json, choice) == TG_JSON_STRING) {
        if (tg_json_str_eq(&c->json, choice, "none"))
            c->convo.choice = MOCK_CHOICE_NONE;
        else if (tg_json_str_eq(&c->json, choice, "required"))
            c->convo.choice = MOCK_CHOICE_ANY;
        else if (!tg_json_str_eq(&c->json, choice, "auto")) {
            c->error = "Invalid value for 'tool_choice'.";
            return -1;
        }
        return 0;
    }
    if (mock_expect(c, choice, TG_JSON_OBJECT, "tool_choice") < 0 ||
        (fn = mock_field(c, choice, "function", TG_JSON_OBJECT, true)) < 0 ||
        (name = mock_field(c, fn, "name", TG_JSON_STRING, true)) < 0)
        return -1;
    c->convo.choice = MOCK_CHOICE_NAMED;
    return mock_string(c, name, &c->convo.choice_name);
}

static int parse_stream(struct mock_call *c)
{
    int stream = mock_field(c, 0, "stream", TG_JSON_TRUE, false);
    int options = mock_field(c, 0, "stream_options", TG_JSON_OBJECT, false);
    int usage;

    if (stream == MOCK_BAD || options == MOCK_BAD)
        return -1;
    c->is_stream =
        stream >= 0 && tg_json_type(&c->json, stream) == TG_JSON_TRUE;
    if (options < 0)
        return 0;
    if (!c->is_stream) {
        c->error = "The 'stream_options' parameter is only allowed when "
                   "'stream' is enabled.";
        return -1;
    }
    usage = mock_field(c, options, "include_usage", TG_JSON_TRUE, false);
    if (usage == MOCK_BAD)
        return -1;
    c->include_usage =
        usage >= 0 && tg_json_type(&c->json, usage) == TG_JSON_TRUE;
    return 0;
}

static int openai_parse(struct mock_call *c)
{
    struct mock_convo *cv = &c->convo;

    if (mock_expect(c, 0, TG_JSON_OBJECT, "body") < 0 ||
        mock_field(c, 0, "model", TG_JSON_STRING, true) < 0 ||
        parse_messages(c) != 0 || parse_tools(c) != 0 ||
        parse_tool_choice(c) != 0 || parse_stream(c) != 0)
        return -1;
    if (mock_positive_int(c, 0, "max_completion_tokens", &cv->has_max_tokens,
                          &cv->max_tokens) != 0)
        return -1;
    if (!cv->has_max_tokens &&
        mock_positive_int(c, 0, "max_tokens", &cv->has_max_tokens,
                          &cv->max_tokens) != 0)
        return -1;
    return 0;
}

/* ---- the answer ---- */

static const char *finish_reason(enum mock_stop stop)
{
    switch (stop) {
    case MOCK_STOP_LENGTH: return "length";
    case MOCK_STOP_TOOL: return "tool_calls";
    case MOCK_STOP_END: break;
    }
    return "stop";
}

static void write_usage(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;

    evbuffer_add_printf(b,
                        "\"usage\":{\"prompt_tokens\":%lld,"
                        "\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                        "\"completion_tokens_details\":"
                        "{\"reasoning_tokens\":0}}",
                        (long long)r->prompt_tokens,
                        (long long)r->completion_tokens,
                        (long long)(r->prompt_tokens + r->completion_tokens));
}

/* "id", "object", "created", "model": the head of answers and chunks. */
static void write_head(struct mock_call *c, struct evbuffer *b,
                       const char *object)
{
    evbuffer_add_printf(b,
                        "{\"id\":\"chatcmpl-mock-%llu\",\"object\":\"%s\","
                        "\"created\":%lld,\"model\":",
                        (unsigned long long)c->id, object,
                        (long long)time(NULL));
    tg_json_write_str(b, c->model, strlen(c->model));
}

static void write_tool_call(struct mock_call *c, struct evbuffer *b,
                            bool is_delta)
{
    const struct mock_reply *r = &c->reply;

    evbuffer_add_printf(b,
                        "{%s\"id\":\"%s\",\"type\":\"function\","
                        "\"function\":{\"name\":",
                        is_delta ? "\"index\":0," : "", OPENAI_TOOL_CALL_ID);
    tg_json_write_str(b, r->tool_name.ptr, r->tool_name.len);
    TG_ADD_LIT(b, ",\"arguments\":");
    if (is_delta)
        TG_ADD_LIT(b, "\"\"");
    else
        tg_json_write_str(b, r->arguments.ptr, r->arguments.len);
    TG_ADD_LIT(b, "}}");
}

static void render_whole(struct mock_call *c)
{
    const struct mock_reply *r = &c->reply;
    struct evbuffer *b = c->out;

    write_head(c, b, "chat.completion");
    TG_ADD_LIT(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                  "\"assistant\",\"content\":");
    if (r->is_tool) {
        TG_ADD_LIT(b, "null,\"tool_calls\":[");
        write_tool_call(c, b, false);
        TG_ADD_LIT(b, "]");
    } else {
        tg_json_write_str(b, r->text.ptr, r->text.len);
    }
    evbuffer_add_printf(b,
                        ",\"refusal\":null},\"logprobs\":null,"
                        "\"finish_reason\":\"%s\"}],",
                        finish_reason(r->stop));
    write_usage(c, b);
    TG_ADD_LIT(b, ",\"system_fingerprint\":\"fp_mock\"}");
}

/* Frames one chunk (in `json`, emptied) as an SSE event. */
static void emit(struct mock_call *c, enum mock_piece_kind kind,
                 struct evbuffer *json)
{
    size_t len = evbuffer_get_length(json);
    const char *p = (const char *)evbuffer_pullup(json, -1);

    TG_ADD_LIT(c->out, "data: ");
    evbuffer_add(c->out, p, mock_fault_payload_len(c, kind, p, len));
    TG_ADD_LIT(c->out, "\n\n");
    evbuffer_drain(json, len);
    mock_piece_end(c, kind);
}

/* A chunk whose only choice has this delta (a JSON object's inside). */
static void emit_delta(struct mock_call *c, struct evbuffer *b,
                       enum mock_piece_kind kind, const char *finish)
{
    struct evbuffer *chunk = evbuffer_new();

    if (chunk == NULL)
        return;
    write_head(c, chunk, "chat.completion.chunk");
    TG_ADD_LIT(chunk, ",\"system_fingerprint\":\"fp_mock\",\"choices\":["
                      "{\"index\":0,\"delta\":{");
    evbuffer_add_buffer(chunk, b);
    TG_ADD_LIT(chunk, "},\"logprobs\":null,\"finish_reason\":");
    if (finish != NULL)
        evbuffer_add_printf(chunk, "\"%s\"", finish);
    else
        TG_ADD_LIT(chunk, "null");
    TG_ADD_LIT(chunk, "}]}");
    emit(c, kind, chunk);
    evbuffer_free(chunk);
}

static void stream_text(struct mock_call *c, struct evbuffer *b)
{
    const struct tg_str *t = &c->reply.text;

    TG_ADD_LIT(b, "\"role\":\"assistant\",\"content\":\"\",\"refusal\":null");
    emit_delta(c, b, MOCK_PIECE_HEAD, NULL);
    for (size_t at = 0, end; at < t->len; at = end) {
        end = mock_next_word(t->ptr, t->len, at);
        TG_ADD_LIT(b, "\"content\":");
        tg_json_write_str(b, t->ptr + at, end - at);
        emit_delta(c, b, MOCK_PIECE_CONTENT, NULL);
    }
}

static void stream_tool_call(struct mock_call *c, struct evbuffer *b)
{
    const struct tg_str *args = &c->reply.arguments;
    size_t cut[2], from = 0;

    TG_ADD_LIT(b, "\"role\":\"assistant\",\"content\":null,\"tool_calls\":[");
    write_tool_call(c, b, true);
    TG_ADD_LIT(b, "],\"refusal\":null");
    emit_delta(c, b, MOCK_PIECE_HEAD, NULL);
    mock_split3(args->ptr, args->len, cut);
    for (int i = 0; i < 3; i++) {
        size_t to = i < 2 ? cut[i] : args->len;

        TG_ADD_LIT(b, "\"tool_calls\":[{\"index\":0,\"function\":"
                      "{\"arguments\":");
        tg_json_write_str(b, args->ptr + from, to - from);
        TG_ADD_LIT(b, "}}]");
        emit_delta(c, b, MOCK_PIECE_CONTENT, NULL);
        from = to;
    }
}

static void render_stream(struct mock_call *c)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL)
        return;
    if (c->reply.is_tool)
        stream_tool_call(c, b);
    else
        stream_text(c, b);
    emit_delta(c, b, MOCK_PIECE_TAIL, finish_reason(c->reply.stop));
    if (c->include_usage) {
        write_head(c, b, "chat.completion.chunk");
        TG_ADD_LIT(b, ",\"system_fingerprint\":\"fp_mock\",\"choices\":[],");
        write_usage(c, b);
        TG_ADD_LIT(b, "}");
        emit(c, MOCK_PIECE_TAIL, b);
    }
    TG_ADD_LIT(c->out, "data: [DONE]\n\n");
    mock_piece_end(c, MOCK_PIECE_TAIL);
    evbuffer_free(b);
}

static void openai_render(struct mock_call *c)
{
    char id[64];

    mock_begin_answer(c, 200,
                      c->is_stream ? "text/event-stream; charset=utf-8"
                                   : "application/json");
    snprintf(id, sizeof(id), "req_mock_%llu", (unsigned long long)c->id);
    mock_header(c, "x-request-id", id);
    if (!c->is_stream) {
        render_whole(c);
        return;
    }
    c->is_stream_answer = true;
    render_stream(c);
}

const struct mock_provider mock_openai = {
    .id = MOCK_OPENAI,
    .match = openai_match,
    .model_of = mock_body_model,
    .authenticate = openai_authenticate,
    .parse = openai_parse,
    .render_error = openai_render_error,
    .render = openai_render,
};
