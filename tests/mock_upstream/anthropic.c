/*
 * anthropic.c - the Anthropic Messages API: POST /v1/messages.
 *
 * x-api-key auth and a required anthropic-version header; system as a
 * string or text blocks; messages whose content is a string or blocks (text,
 * tool_use, tool_result); tools, tool_choice; max_tokens is required.
 * Answers and streams have the shapes of shared/data/responses/anthropic_*
 * and shared/data/streams/anthropic_*.sse: message_start, content_block_start,
 * ping, content_block_delta (text_delta or input_json_delta),
 * content_block_stop, message_delta, message_stop.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define ANTHROPIC_TOOL_USE_ID "toolu_mock_1"

static bool anthropic_match(const char *path)
{
    static const char suffix[] = "/v1/messages";
    size_t n = strlen(path), s = sizeof(suffix) - 1;

    return n >= s && strcmp(path + n - s, suffix) == 0;
}

/* ---- errors ---- */

struct anthropic_error {
    int status;
    const char *type;
    const char *message;
};

static const struct anthropic_error anthropic_errors[] = {
    {400, "invalid_request_error", "Invalid request."},
    {401, "authentication_error", "invalid x-api-key"},
    {403, "permission_error",
     "Your API key does not have permission to use the specified resource."},
    {404, "not_found_error", "Not found"},
    {413, "request_too_large",
     "Request exceeds the maximum allowed number of bytes."},
    {429, "rate_limit_error",
     "Number of request tokens has exceeded your per-minute rate limit."},
    {500, "api_error", "Internal server error"},
    {529, "overloaded_error", "Overloaded"},
};

static struct anthropic_error anthropic_error_of(int status)
{
    struct anthropic_error e = {status, "invalid_request_error",
                                "Request failed."};

    for (size_t i = 0;
         i < sizeof(anthropic_errors) / sizeof(anthropic_errors[0]); i++)
        if (anthropic_errors[i].status == status)
            return anthropic_errors[i];
    if (status >= 500)
        e.type = "api_error";
    return e;
}

static void add_request_id(struct mock_call *c)
{
    char id[64];

    snprintf(id, sizeof(id), "req_mock_%llu", (unsigned long long)c->id);
    mock_header(c, "request-id", id);
}

static void anthropic_render_error(struct mock_call *c, int status,
                                   const char *kind, const char *message)
{
    struct anthropic_error e = anthropic_error_of(status);

    mock_begin_answer(c, status, "application/json");
    add_request_id(c);
    evbuffer_add_printf(c->out,
                        "{\"type\":\"error\",\"error\":{\"type\":\"%s\","
                        "\"message\":",
                        kind ? kind : e.type);
    message = message ? message : e.message;
    tg_json_write_str(c->out, message, strlen(message));
    evbuffer_add_printf(c->out, "},\"request_id\":\"req_mock_%llu\"}",
                        (unsigned long long)c->id);
}

static bool is_known_version(const char *v)
{
    return strcmp(v, "2023-06-01") == 0 || strcmp(v, "2023-01-01") == 0;
}

static int anthropic_authenticate(struct mock_call *c)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
    const char *key = evhttp_find_header(in, "x-api-key");
    const char *version = evhttp_find_header(in, "anthropic-version");

    if (key == NULL || strcmp(key, c->srv->keys.anthropic) != 0) {
        anthropic_render_error(c, 401, NULL, NULL);
        return -1;
    }
    if (version == NULL) {
        anthropic_render_error(c, 400, NULL,
                               "anthropic-version: header is required");
        return -1;
    }
    if (!is_known_version(version)) {
        anthropic_render_error(
            c, 400, NULL,
            tg_arena_printf(&c->arena,
                            "anthropic-version: \"%s\" is not a valid version",
                            version));
        return -1;
    }
    return 0;
}

/* ---- the request ---- */

/* One block of a message's content: a text block joins *text; a
 * tool_result's content becomes *result. */
static int parse_block(struct mock_call *c, int block, struct tg_str *text,
                       bool *has_text, struct tg_str *result, bool *has_result)
{
    int type, field;
    struct tg_str piece;

    if (mock_expect(c, block, TG_JSON_OBJECT, "content[]") < 0 ||
        (type = mock_field(c, block, "type", TG_JSON_STRING, true)) < 0)
        return -1;
    if (tg_json_str_eq(&c->json, type, "text")) {
        field = mock_field(c, block, "text", TG_JSON_STRING, true);
        if (field < 0 || mock_string(c, field, &piece) != 0)
            return -1;
        mock_count_prompt(c, piece);
        *has_text = true;
        return mock_append(c, text, piece);
    }
    if (tg_json_str_eq(&c->json, type, "tool_result")) {
        if (mock_content_text(c, tg_json_get(&c->json, block, "content"),
                              "tool_result.content", result) != 0)
            return -1;
        mock_count_prompt(c, *result);
        *has_result = true;
    }
    return 0;
}

/* content: a string, or an array of blocks. */
static int parse_content(struct mock_call *c, int msg, struct tg_str *text,
                         bool *has_text, struct tg_str *result,
                         bool *has_result)
{
    int content = tg_json_get(&c->json, msg, "content"), cursor = 0, block;

    if (content < 0) {
        c->error = "messages: Missing required parameter: 'content'.";
        return -1;
    }
    if (tg_json_type(&c->json, content) == TG_JSON_STRING) {
        if (mock_string(c, content, text) != 0)
            return -1;
        mock_count_prompt(c, *text);
        *has_text = true;
        return 0;
    }
    if (mock_expect(c, content, TG_JSON_ARRAY, "content") < 0)
        return -1;
    while (tg_json_element(&c->json, content, &cursor, &block))
        if (parse_block(c, block, text, has_text, result, has_result) != 0)
            return -1;
    return 0;
}

/* A user message holding only tool results does not change the last user
 * text. */
static int parse_message(struct mock_call *c, int msg, bool is_last)
{
    struct tg_str text = {"", 0}, result = {"", 0};
    bool has_text = false, has_result = false, is_user;
    int role;

    if (mock_expect(c, msg, TG_JSON_OBJECT, "messages[]") < 0 ||
        (role = mock_field(c, msg, "role", TG_JSON_STRING, true)) < 0)
        return -1;
    is_user = tg_json_str_eq(&c->json, role, "user");
    if (!is_user && !tg_json_str_eq(&c->json, role, "assistant")) {
        c->error = "messages: roles must be \"user\" or \"assistant\"";
        return -1;
    }
    if (parse_content(c, msg, &text, &has_text, &result, &has_result) != 0)
        return -1;
    if (is_user && (has_text || !has_result))
        c->convo.last_user_text = text;
    c->convo.is_tool_result = is_last && is_user && has_result;
    c->convo.tool_result = result;
    return 0;
}

static int parse_messages(struct mock_call *c)
{
    int msgs = mock_field(c, 0, "messages", TG_JSON_ARRAY, true);
    int cursor = 0, msg, size;
    int n = 0;

    if (msgs < 0)
        return -1;
    size = tg_json_size(&c->json, msgs);
    while (tg_json_element(&c->json, msgs, &cursor, &msg))
        if (parse_message(c, msg, ++n == size) != 0)
            return -1;
    return 0;
}

static int parse_system(struct mock_call *c)
{
    struct tg_str text;

    if (mock_content_text(c, tg_json_get(&c->json, 0, "system"), "system",
                          &text) != 0)
        return -1;
    mock_count_prompt(c, text);
    return 0;
}

/* tools: [{"name":...,"input_schema":...}] (server tools have a "type") */
static int parse_tools(struct mock_call *c)
{
    int tools = mock_field(c, 0, "tools", TG_JSON_ARRAY, false);
    int cursor = 0, tool, name;

    if (tools == MOCK_BAD)
        return -1;
    while (tools >= 0 && tg_json_element(&c->json, tools, &cursor, &tool)) {
        if (mock_expect(c, tool, TG_JSON_OBJECT, "tools[]") < 0 ||
            (name = mock_field(c, tool, "name", TG_JSON_STRING, true)) < 0)
            return -1;
        if (c->convo.n_tools++ == 0 &&
            mock_string(c, name, &c->convo.first_tool) != 0)
            return -1;
    }
    return 0;
}

/* tool_choice: {"type":"auto"|"any"|"none"} or {"type":"tool","name":...} */
static int parse_tool_choice(struct mock_call *c)
{
    int choice = mock_field(c, 0, "tool_choice", TG_JSON_OBJECT, false);
    int type, name;

    if (choice == MOCK_BAD)
        return -1;
    if (choice < 0)
        return 0;
    type = mock_field(c, choice, "type", TG_JSON_STRING, true);
    if (type < 0)
        return -1;
    if (tg_json_str_eq(&c->json, type, "any"))
        c->convo.choice = MOCK_CHOICE_ANY;
    else if (tg_json_str_eq(&c->json, type, "none"))
        c->convo.choice = MOCK_CHOICE_NONE;
    else if (tg_json_str_eq(&c->json, type, "tool")) {
        name = mock_field(c, choice, "name", TG_JSON_STRING, true);
        if (name < 0 || mock_string(c, name, &c->convo.choice_name) != 0)
            return -1;
        c->convo.choice = MOCK_CHOICE_NAMED;
    } else if (!tg_json_str_eq(&c->json, type, "auto")) {
        c->error = "tool_choice.type: Input should be 'auto', 'any', 'tool' "
                   "or 'none'";
        return -1;
    }
    return 0;
}

static int anthropic_parse(struct mock_call *c)
{
    struct mock_convo *cv = &c->convo;
    int stream;

    if (mock_expect(c, 0, TG_JSON_OBJECT, "body") < 0 ||
        mock_field(c, 0, "model", TG_JSON_STRING, true) < 0 ||
        mock_field(c, 0, "max_tokens", TG_JSON_NUMBER, true) < 0 ||
        mock_positive_int(c, 0, "max_tokens", &cv->has_max_tokens,
                          &cv->max_tokens) != 0 ||
        parse_system(c) != 0 || parse_messages(c) != 0 || parse_tools(c) != 0 ||
        parse_tool_choice(c) != 0)
        return -1;
    stream = mock_field(c, 0, "stream", TG_JSON_TRUE, false);
    if (stream == MOCK_BAD)
        return -1;
    c->is_stream =
        stream >= 0 && tg_json_type(&c->json, stream) == TG_JSON_TRUE;
    return 0;
}

/* ---- the answer ---- */

static const char *stop_reason(enum mock_stop stop)
{
    switch (stop) {
    case MOCK_STOP_LENGTH: return "max_tokens";
    case MOCK_STOP_TOOL: return "tool_use";
    case MOCK_STOP_END: break;
    }
    return "end_turn";
}

static void write_message_head(struct mock_call *c, struct evbuffer *b)
{
    evbuffer_add_printf(b,
                        "{\"id\":\"msg_mock_%llu\",\"type\":\"message\","
                        "\"role\":\"assistant\",\"model\":",
                        (unsigned long long)c->id);
    tg_json_write_str(b, c->model, strlen(c->model));
}

static void write_usage(struct evbuffer *b, int64_t input, int64_t output)
{
    evbuffer_add_printf(b,
                        "\"usage\":{\"input_tokens\":%lld,"
                        "\"cache_creation_input_tokens\":0,"
                        "\"cache_read_input_tokens\":0,\"output_tokens\":%lld,"
                        "\"service_tier\":\"standard\"}",
                        (long long)input, (long long)output);
}

/* The tool_use block, with `input` the arguments (whole) or {} (stream). */
static void write_tool_use(struct mock_call *c, struct evbuffer *b,
                           bool is_whole)
{
    const struct mock_reply *r = &c->reply;

    TG_ADD_LIT(b, "{\"type\":\"tool_use\",\"id\":\"" ANTHROPIC_TOOL_USE_ID
                  "\",\"name\":");
    tg_json_write_str(b, r->tool_name.ptr, r->tool_name.len);
    TG_ADD_LIT(b, ",\"input\":");
    if (is_whole)
        evbuffer_add(b, r->arguments.ptr, r->arguments.len);
    else
        TG_ADD_LIT(b, "{}");
    TG_ADD_LIT(b, "}");
}

static void render_whole(struct mock_call *c)
{
    const struct mock_reply *r = &c->reply;
    struct evbuffer *b = c->out;

    write_message_head(c, b);
    TG_ADD_LIT(b, ",\"content\":[");
    if (r->is_tool) {
        write_tool_use(c, b, true);
    } else {
        TG_ADD_LIT(b, "{\"type\":\"text\",\"text\":");
        tg_json_write_str(b, r->text.ptr, r->text.len);
        TG_ADD_LIT(b, "}");
    }
    evbuffer_add_printf(b, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,",
                        stop_reason(r->stop));
    write_usage(b, r->prompt_tokens, r->completion_tokens);
    TG_ADD_LIT(b, "}");
}

/* Frames the event in `json` (emptied) as "event: NAME" + "data: JSON". */
static void emit(struct mock_call *c, enum mock_piece_kind kind,
                 const char *name, struct evbuffer *json)
{
    size_t len = evbuffer_get_length(json);
    const char *p = (const char *)evbuffer_pullup(json, -1);

    evbuffer_add_printf(c->out, "event: %s\ndata: ", name);
    evbuffer_add(c->out, p, mock_fault_payload_len(c, kind, p, len));
    TG_ADD_LIT(c->out, "\n\n");
    evbuffer_drain(json, len);
    mock_piece_end(c, kind);
}

/* A content_block_delta whose delta is {"type":TYPE,FIELD:s[0..n)}. */
static void emit_delta(struct mock_call *c, struct evbuffer *b,
                       const char *type, const char *field, const char *s,
                       size_t n)
{
    evbuffer_add_printf(b,
                        "{\"type\":\"content_block_delta\",\"index\":0,"
                        "\"delta\":{\"type\":\"%s\",\"%s\":",
                        type, field);
    tg_json_write_str(b, s, n);
    TG_ADD_LIT(b, "}}");
    emit(c, MOCK_PIECE_CONTENT, "content_block_delta", b);
}

static void stream_content(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;
    size_t cut[2], from = 0;

    if (!r->is_tool) {
        for (size_t at = 0, end; at < r->text.len; at = end) {
            end = mock_next_word(r->text.ptr, r->text.len, at);
            emit_delta(c, b, "text_delta", "text", r->text.ptr + at, end - at);
        }
        return;
    }
    mock_split3(r->arguments.ptr, r->arguments.len, cut);
    for (int i = 0; i < 3; i++) {
        size_t to = i < 2 ? cut[i] : r->arguments.len;

        emit_delta(c, b, "input_json_delta", "partial_json",
                   r->arguments.ptr + from, to - from);
        from = to;
    }
}

static void render_stream(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;

    TG_ADD_LIT(b, "{\"type\":\"message_start\",\"message\":");
    write_message_head(c, b);
    TG_ADD_LIT(b, ",\"content\":[],\"stop_reason\":null,"
                  "\"stop_sequence\":null,");
    write_usage(b, r->prompt_tokens, 1);
    TG_ADD_LIT(b, "}}");
    emit(c, MOCK_PIECE_HEAD, "message_start", b);
    TG_ADD_LIT(b, "{\"type\":\"content_block_start\",\"index\":0,"
                  "\"content_block\":");
    if (r->is_tool)
        write_tool_use(c, b, false);
    else
        TG_ADD_LIT(b, "{\"type\":\"text\",\"text\":\"\"}");
    TG_ADD_LIT(b, "}");
    emit(c, MOCK_PIECE_HEAD, "content_block_start", b);
    TG_ADD_LIT(b, "{\"type\": \"ping\"}");
    emit(c, MOCK_PIECE_HEAD, "ping", b);
    stream_content(c, b);
    TG_ADD_LIT(b, "{\"type\":\"content_block_stop\",\"index\":0}");
    emit(c, MOCK_PIECE_TAIL, "content_block_stop", b);
    evbuffer_add_printf(b,
                        "{\"type\":\"message_delta\",\"delta\":{"
                        "\"stop_reason\":\"%s\",\"stop_sequence\":null},"
                        "\"usage\":{\"output_tokens\":%lld}}",
                        stop_reason(r->stop), (long long)r->completion_tokens);
    emit(c, MOCK_PIECE_TAIL, "message_delta", b);
    TG_ADD_LIT(b, "{\"type\":\"message_stop\"}");
    emit(c, MOCK_PIECE_TAIL, "message_stop", b);
}

static void anthropic_render(struct mock_call *c)
{
    struct evbuffer *b;

    mock_begin_answer(c, 200,
                      c->is_stream ? "text/event-stream; charset=utf-8"
                                   : "application/json");
    add_request_id(c);
    if (!c->is_stream) {
        render_whole(c);
        return;
    }
    c->is_stream_answer = true;
    b = evbuffer_new();
    if (b == NULL)
        return;
    render_stream(c, b);
    evbuffer_free(b);
}

const struct mock_provider mock_anthropic = {
    .id = MOCK_ANTHROPIC,
    .match = anthropic_match,
    .model_of = mock_body_model,
    .authenticate = anthropic_authenticate,
    .parse = anthropic_parse,
    .render_error = anthropic_render_error,
    .render = anthropic_render,
};
