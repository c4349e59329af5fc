/*
 * bedrock.c - AWS Bedrock Runtime's Converse and ConverseStream:
 * POST /model/{modelId}/converse and /model/{modelId}/converse-stream.
 *
 * Authentication recomputes the request's SigV4 signature with tg_sigv4_sign
 * over the request as received (the path as on the wire, the headers named
 * in SignedHeaders, the body) at its X-Amz-Date, and compares. Answers have
 * the shapes of shared/data/responses/bedrock_*.json; a stream is AWS event
 * stream frames (tg_es_encode) with the headers :event-type, :content-type
 * and :message-type, and a "p" padding field in every payload as the real
 * service sends (clients must ignore it).
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/keyvalq_struct.h>

#include "mock.h"
#include "tg_eventstream.h"
#include "tg_sigv4.h"

#define BEDROCK_TOOL_USE_ID "tooluse_mock_1"
#define BEDROCK_SERVICE     "bedrock"
#define BEDROCK_PREFIX      "/model/"
#define SIGV4_ALGORITHM     "AWS4-HMAC-SHA256 "
#define MAX_SIGNED_HEADERS  62 /* tg_sigv4 takes 64 with its own two */
/* The "p" field of stream payloads: a prefix of this, of varying length. */
#define PADDING "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* The model id segment of a Bedrock path, and whether it streams; false
 * when the path is no Converse path. */
static bool split_path(const char *path, const char **model, size_t *len,
                       bool *is_stream)
{
    const char *id = path + strlen(BEDROCK_PREFIX), *slash;

    if (strncmp(path, BEDROCK_PREFIX, strlen(BEDROCK_PREFIX)) != 0)
        return false;
    slash = strchr(id, '/');
    if (slash == NULL || slash == id)
        return false;
    *model = id;
    *len = (size_t)(slash - id);
    if (strcmp(slash, "/converse") == 0)
        *is_stream = false;
    else if (strcmp(slash, "/converse-stream") == 0)
        *is_stream = true;
    else
        return false;
    return true;
}

static bool bedrock_match(const char *path)
{
    const char *model;
    size_t len;
    bool is_stream;

    return split_path(path, &model, &len, &is_stream);
}

/* Also notes whether the path is the streaming one. */
static const char *bedrock_model_of(struct mock_call *c)
{
    const char *model;
    size_t len;

    if (!split_path(c->path, &model, &len, &c->is_stream))
        return NULL;
    return mock_uri_decode(c, model, len);
}

/* ---- errors ---- */

struct bedrock_error {
    int status;
    const char *type;
    const char *message;
};

static const struct bedrock_error bedrock_errors[] = {
    {400, "ValidationException", "The provided request is not valid."},
    {403, "AccessDeniedException",
     "You don't have access to the model with the specified model ID."},
    {404, "ResourceNotFoundException",
     "Could not resolve the foundation model from the provided model "
     "identifier."},
    {408, "ModelTimeoutException",
     "Model has timed out in processing the request. Try your request "
     "again."},
    {424, "ModelErrorException", "The model produced an error."},
    {429, "ThrottlingException",
     "Too many requests, please wait before trying again."},
    {500, "InternalServerException",
     "The server encountered an error processing your request."},
    {503, "ServiceUnavailableException",
     "Bedrock is unable to process your request."},
};

static struct bedrock_error bedrock_error_of(int status)
{
    struct bedrock_error e = {status, "ValidationException",
                              "The request failed."};

    for (size_t i = 0; i < sizeof(bedrock_errors) / sizeof(bedrock_errors[0]);
         i++)
        if (bedrock_errors[i].status == status)
            return bedrock_errors[i];
    if (status >= 500)
        e.type = "InternalServerException";
    return e;
}

static void add_request_id(struct mock_call *c)
{
    char id[64];

    snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012llu",
             (unsigned long long)c->id);
    mock_header(c, "x-amzn-RequestId", id);
}

static void bedrock_render_error(struct mock_call *c, int status,
                                 const char *kind, const char *message)
{
    struct bedrock_error e = bedrock_error_of(status);

    mock_begin_answer(c, status, "application/json");
    add_request_id(c);
    mock_header(c, "x-amzn-ErrorType", kind ? kind : e.type);
    message = message ? message : e.message;
    TG_ADD_LIT(c->out, "{\"message\":");
    tg_json_write_str(c->out, message, strlen(message));
    TG_ADD_LIT(c->out, "}");
}

/* ---- SigV4 ---- */

/* The parts of "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/
 * aws4_request, SignedHeaders=a;b, Signature=hex" (pointing into a copy). */
struct sigv4_auth {
    char *access_key_id, *date, *region, *service;
    char *signed_headers;
    char *signature;
};

static char *trim(char *s)
{
    char *end;

    while (*s == ' ')
        s++;
    end = s + strlen(s);
    while (end > s && end[-1] == ' ')
        *--end = '\0';
    return s;
}

/* Splits the credential scope; -1 unless it has exactly five parts. */
static int parse_credential(char *cred, struct sigv4_auth *a)
{
    char *parts[5], *save = NULL, *p;
    int n = 0;

    for (p = strtok_r(cred, "/", &save); p != NULL && n < 5;
         p = strtok_r(NULL, "/", &save))
        parts[n++] = p;
    if (n != 5 || p != NULL || strcmp(parts[4], "aws4_request") != 0)
        return -1;
    a->access_key_id = parts[0];
    a->date = parts[1];
    a->region = parts[2];
    a->service = parts[3];
    return 0;
}

static int parse_authorization(struct mock_call *c, const char *header,
                               struct sigv4_auth *a)
{
    char *copy, *item, *save = NULL, *cred = NULL;

    memset(a, 0, sizeof(*a));
    if (strncmp(header, SIGV4_ALGORITHM, strlen(SIGV4_ALGORITHM)) != 0)
        return -1;
    header += strlen(SIGV4_ALGORITHM);
    copy = tg_arena_strndup(&c->arena, header, strlen(header));
    if (copy == NULL)
        return -1;
    for (item = strtok_r(copy, ",", &save); item != NULL;
         item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (strncmp(item, "Credential=", 11) == 0)
            cred = item + 11;
        else if (strncmp(item, "SignedHeaders=", 14) == 0)
            a->signed_headers = item + 14;
        else if (strncmp(item, "Signature=", 10) == 0)
            a->signature = item + 10;
    }
    if (cred == NULL || a->signed_headers == NULL || a->signature == NULL)
        return -1;
    return parse_credential(cred, a);
}

/* "20240101T120000Z" to a time; -1 when malformed. */
static int parse_amz_date(const char *s, time_t *when)
{
    struct tm tm = {0};
    const char *end;

    if (strlen(s) != TG_SIGV4_AMZ_DATE_LEN)
        return -1;
    end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    *when = timegm(&tm);
    return 0;
}

static bool is_listed(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p != NULL && *p; p = strchr(p, ';')) {
        if (*p == ';')
            p++;
        if (strncasecmp(p, name, n) == 0 && (p[n] == ';' || p[n] == '\0'))
            return true;
    }
    return false;
}

/* The headers the client signed, in the order received, without the two
 * the signer adds itself; a signed session token goes to *token. */
static size_t signed_headers(struct mock_call *c, const char *list,
                             struct tg_sigv4_header *out, const char **token)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
    const struct evkeyval *h;
    size_t n = 0;

    TAILQ_FOREACH(h, in, next)
    {
        if (!is_listed(list, h->key) || strcasecmp(h->key, "x-amz-date") == 0)
            continue;
        if (strcasecmp(h->key, "x-amz-security-token") == 0) {
            *token = h->value;
            continue;
        }
        if (n == MAX_SIGNED_HEADERS)
            break;
        out[n++] = (struct tg_sigv4_header){h->key, h->value};
    }
    return n;
}

static bool is_signature_valid(struct mock_call *c, const struct sigv4_auth *a,
                               time_t when)
{
    struct tg_sigv4_header headers[MAX_SIGNED_HEADERS];
    struct tg_sigv4_credentials cred = {
        .access_key_id = a->access_key_id,
        .secret_access_key = c->srv->keys.aws_secret_access_key,
        .region = a->region,
        .service = a->service,
    };
    struct tg_sigv4_request req = {
        .method = "POST",
        .path = c->path,
        .query = c->query,
        .headers = headers,
        .body = c->body,
        .body_len = c->body_len,
        .is_normalized = true,
    };
    /* about 25 KiB: too big for comfort on the stack of a callback */
    struct tg_sigv4_result *out = tg_arena_alloc(&c->arena, sizeof(*out));

    req.n_headers =
        signed_headers(c, a->signed_headers, headers, &cred.session_token);
    return out != NULL && tg_sigv4_sign(&req, &cred, when, out) == 0 &&
           strcmp(out->signature, a->signature) == 0;
}

static int bedrock_authenticate(struct mock_call *c)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
    const char *header = evhttp_find_header(in, "Authorization");
    const char *date = evhttp_find_header(in, "X-Amz-Date");
    struct sigv4_auth a;
    bool is_parsed = header != NULL && parse_authorization(c, header, &a) == 0;
    time_t when;

    if (is_parsed &&
        strcmp(a.access_key_id, c->srv->keys.aws_access_key_id) != 0) {
        bedrock_render_error(
            c, 403, "UnrecognizedClientException",
            "The security token included in the request is invalid.");
        return -1;
    }
    if (!is_parsed || date == NULL || parse_amz_date(date, &when) != 0 ||
        strcmp(a.service, BEDROCK_SERVICE) != 0 ||
        !is_signature_valid(c, &a, when)) {
        bedrock_render_error(
            c, 403, "InvalidSignatureException",
            "The request signature we calculated does not match the "
            "signature you provided. Check your AWS Secret Access Key and "
            "signing method. Consult the service documentation for details.");
        return -1;
    }
    return 0;
}

/* ---- the request ---- */

/* One block of toolResult.content: {"text":...} or {"json":...} (its JSON
 * text as received); other blocks add nothing. */
static int tool_result_block(struct mock_call *c, int block,
                             struct tg_str *text)
{
    int field;
    struct tg_str piece;

    if (mock_expect(c, block, TG_JSON_OBJECT, "toolResult.content[]") < 0)
        return -1;
    field = mock_field(c, block, "text", TG_JSON_STRING, false);
    if (field == MOCK_BAD)
        return -1;
    if (field >= 0) {
        if (mock_string(c, field, &piece) != 0)
            return -1;
    } else {
        field = tg_json_get(&c->json, block, "json");
        if (field < 0)
            return 0;
        piece = mock_raw(c, field);
    }
    return mock_append(c, text, piece);
}

static int parse_tool_result(struct mock_call *c, int result)
{
    int content, cursor = 0, block;
    struct tg_str text = {"", 0};

    content = mock_field(c, result, "content", TG_JSON_ARRAY, true);
    if (content < 0)
        return -1;
    while (tg_json_element(&c->json, content, &cursor, &block))
        if (tool_result_block(c, block, &text) != 0)
            return -1;
    mock_count_prompt(c, text);
    c->convo.tool_result = text;
    return 0;
}

/* One content block: {"text":...}, {"toolResult":...}; others skipped. */
static int parse_block(struct mock_call *c, int block, struct tg_str *text,
                       bool *has_text, bool *has_result)
{
    int field;
    struct tg_str piece;

    if (mock_expect(c, block, TG_JSON_OBJECT, "content[]") < 0)
        return -1;
    field = mock_field(c, block, "text", TG_JSON_STRING, false);
    if (field == MOCK_BAD)
        return -1;
    if (field >= 0) {
        if (mock_string(c, field, &piece) != 0)
            return -1;
        mock_count_prompt(c, piece);
        *has_text = true;
        return mock_append(c, text, piece);
    }
    field = mock_field(c, block, "toolResult", TG_JSON_OBJECT, false);
    if (field == MOCK_BAD || (field >= 0 && parse_tool_result(c, field) != 0))
        return -1;
    *has_result = *has_result || field >= 0;
    return 0;
}

static int parse_message(struct mock_call *c, int msg, bool is_last)
{
    struct tg_str text = {"", 0};
    bool has_text = false, has_result = false, is_user;
    int role, content, cursor = 0, block;

    if (mock_expect(c, msg, TG_JSON_OBJECT, "messages[]") < 0 ||
        (role = mock_field(c, msg, "role", TG_JSON_STRING, true)) < 0 ||
        (content = mock_field(c, msg, "content", TG_JSON_ARRAY, true)) < 0)
        return -1;
    is_user = tg_json_str_eq(&c->json, role, "user");
    if (!is_user && !tg_json_str_eq(&c->json, role, "assistant")) {
        c->error = "messages.role: must be one of [user, assistant]";
        return -1;
    }
    while (tg_json_element(&c->json, content, &cursor, &block))
        if (parse_block(c, block, &text, &has_text, &has_result) != 0)
            return -1;
    if (is_user && (has_text || !has_result))
        c->convo.last_user_text = text;
    c->convo.is_tool_result = is_last && is_user && has_result;
    return 0;
}

static int parse_messages(struct mock_call *c)
{
    int msgs = mock_field(c, 0, "messages", TG_JSON_ARRAY, true);
    int cursor = 0, msg, size, n = 0;

    if (msgs < 0)
        return -1;
    size = tg_json_size(&c->json, msgs);
    while (tg_json_element(&c->json, msgs, &cursor, &msg))
        if (parse_message(c, msg, ++n == size) != 0)
            return -1;
    return 0;
}

/* system: [{"text":...}, ...] */
static int parse_system(struct mock_call *c)
{
    int system = mock_field(c, 0, "system", TG_JSON_ARRAY, false);
    int cursor = 0, block, text;
    struct tg_str piece;

    if (system == MOCK_BAD)
        return -1;
    while (system >= 0 && tg_json_element(&c->json, system, &cursor, &block)) {
        if (mock_expect(c, block, TG_JSON_OBJECT, "system[]") < 0 ||
            (text = mock_field(c, block, "text", TG_JSON_STRING, false)) ==
                MOCK_BAD)
            return -1;
        if (text >= 0 && mock_string(c, text, &piece) != 0)
            return -1;
        if (text >= 0)
            mock_count_prompt(c, piece);
    }
    return 0;
}

/* toolChoice: {"auto":{}} | {"any":{}} | {"tool":{"name":...}} */
static int parse_tool_choice(struct mock_call *c, int config)
{
    int choice = mock_field(c, config, "toolChoice", TG_JSON_OBJECT, false);
    int tool, name;

    if (choice == MOCK_BAD)
        return -1;
    if (choice < 0)
        return 0;
    if (tg_json_get(&c->json, choice, "any") >= 0) {
        c->convo.choice = MOCK_CHOICE_ANY;
        return 0;
    }
    tool = mock_field(c, choice, "tool", TG_JSON_OBJECT, false);
    if (tool == MOCK_BAD)
        return -1;
    if (tool < 0)
        return 0;
    name = mock_field(c, tool, "name", TG_JSON_STRING, true);
    if (name < 0 || mock_string(c, name, &c->convo.choice_name) != 0)
        return -1;
    c->convo.choice = MOCK_CHOICE_NAMED;
    return 0;
}

/* toolConfig: {"tools":[{"toolSpec":{"name":...}}], "toolChoice":...} */
static int parse_tool_config(struct mock_call *c)
{
    int config = mock_field(c, 0, "toolConfig", TG_JSON_OBJECT, false);
    int tools, cursor = 0, tool, spec, name;

    if (config == MOCK_BAD)
        return -1;
    if (config < 0)
        return 0;
    tools = mock_field(c, config, "tools", TG_JSON_ARRAY, true);
    if (tools < 0)
        return -1;
    while (tg_json_element(&c->json, tools, &cursor, &tool)) {
        if (mock_expect(c, tool, TG_JSON_OBJECT, "toolConfig.tools[]") < 0 ||
            (spec = mock_field(c, tool, "toolSpec", TG_JSON_OBJECT, false)) ==
                MOCK_BAD)
            return -1;
        if (spec < 0)
            continue; /* a cachePoint */
        name = mock_field(c, spec, "name", TG_JSON_STRING, true);
        if (name < 0)
            return -1;
        if (c->convo.n_tools++ == 0 &&
            mock_string(c, name, &c->convo.first_tool) != 0)
            return -1;
    }
    return parse_tool_choice(c, config);
}

static int bedrock_parse(struct mock_call *c)
{
    struct mock_convo *cv = &c->convo;
    int config;

    if (mock_expect(c, 0, TG_JSON_OBJECT, "body") < 0 || parse_system(c) != 0 ||
        parse_messages(c) != 0 || parse_tool_config(c) != 0)
        return -1;
    config = mock_field(c, 0, "inferenceConfig", TG_JSON_OBJECT, false);
    if (config == MOCK_BAD)
        return -1;
    if (config >= 0 &&
        mock_positive_int(c, config, "maxTokens", &cv->has_max_tokens,
                          &cv->max_tokens) != 0)
        return -1;
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

static void write_usage_and_metrics(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;

    evbuffer_add_printf(
        b,
        "\"usage\":{\"inputTokens\":%lld,\"outputTokens\":%lld,"
        "\"totalTokens\":%lld},\"metrics\":{\"latencyMs\":%lld}",
        (long long)r->prompt_tokens, (long long)r->completion_tokens,
        (long long)(r->prompt_tokens + r->completion_tokens),
        (long long)mock_elapsed_ms(c));
}

static void render_whole(struct mock_call *c)
{
    const struct mock_reply *r = &c->reply;
    struct evbuffer *b = c->out;

    TG_ADD_LIT(b, "{\"output\":{\"message\":{\"role\":\"assistant\","
                  "\"content\":[");
    if (r->is_tool) {
        TG_ADD_LIT(b, "{\"toolUse\":{\"toolUseId\":\"" BEDROCK_TOOL_USE_ID
                      "\",\"name\":");
        tg_json_write_str(b, r->tool_name.ptr, r->tool_name.len);
        TG_ADD_LIT(b, ",\"input\":");
        evbuffer_add(b, r->arguments.ptr, r->arguments.len);
        TG_ADD_LIT(b, "}}");
    } else {
        TG_ADD_LIT(b, "{\"text\":");
        tg_json_write_str(b, r->text.ptr, r->text.len);
        TG_ADD_LIT(b, "}");
    }
    evbuffer_add_printf(b, "]}},\"stopReason\":\"%s\",", stop_reason(r->stop));
    write_usage_and_metrics(c, b);
    TG_ADD_LIT(b, "}");
}

/* Frames one event whose payload is "{" + members + the padding "}";
 * `members` is emptied. */
static void emit(struct mock_call *c, enum mock_piece_kind kind,
                 const char *event, struct evbuffer *members)
{
    const char *names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {event, "application/json", "event"};
    struct evbuffer *json = evbuffer_new();
    size_t pad = 1 + (c->n_pieces * 7) % (sizeof(PADDING) - 1), len;
    const char *p;

    if (json == NULL)
        return;
    TG_ADD_LIT(json, "{");
    evbuffer_add_buffer(json, members);
    evbuffer_add_printf(json, ",\"p\":\"%.*s\"}", (int)pad, PADDING);
    len = evbuffer_get_length(json);
    p = (const char *)evbuffer_pullup(json, -1);
    if (tg_es_encode(c->out, names, values, 3, p,
                     mock_fault_payload_len(c, kind, p, len)) == 0)
        mock_piece_end(c, kind);
    evbuffer_free(json);
}

static void stream_deltas(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;
    size_t cut[2], from = 0;

    if (!r->is_tool) {
        for (size_t at = 0, end; at < r->text.len; at = end) {
            end = mock_next_word(r->text.ptr, r->text.len, at);
            TG_ADD_LIT(b, "\"contentBlockIndex\":0,\"delta\":{\"text\":");
            tg_json_write_str(b, r->text.ptr + at, end - at);
            TG_ADD_LIT(b, "}");
            emit(c, MOCK_PIECE_CONTENT, "contentBlockDelta", b);
        }
        return;
    }
    mock_split3(r->arguments.ptr, r->arguments.len, cut);
    for (int i = 0; i < 3; i++) {
        size_t to = i < 2 ? cut[i] : r->arguments.len;

        TG_ADD_LIT(b, "\"contentBlockIndex\":0,\"delta\":{\"toolUse\":"
                      "{\"input\":");
        tg_json_write_str(b, r->arguments.ptr + from, to - from);
        TG_ADD_LIT(b, "}}");
        emit(c, MOCK_PIECE_CONTENT, "contentBlockDelta", b);
        from = to;
    }
}

static void render_stream(struct mock_call *c, struct evbuffer *b)
{
    const struct mock_reply *r = &c->reply;

    TG_ADD_LIT(b, "\"role\":\"assistant\"");
    emit(c, MOCK_PIECE_HEAD, "messageStart", b);
    if (r->is_tool) {
        TG_ADD_LIT(b, "\"contentBlockIndex\":0,\"start\":{\"toolUse\":{"
                      "\"toolUseId\":\"" BEDROCK_TOOL_USE_ID "\",\"name\":");
        tg_json_write_str(b, r->tool_name.ptr, r->tool_name.len);
        TG_ADD_LIT(b, "}}");
        emit(c, MOCK_PIECE_HEAD, "contentBlockStart", b);
    }
    stream_deltas(c, b);
    TG_ADD_LIT(b, "\"contentBlockIndex\":0");
    emit(c, MOCK_PIECE_TAIL, "contentBlockStop", b);
    evbuffer_add_printf(b, "\"stopReason\":\"%s\"", stop_reason(r->stop));
    emit(c, MOCK_PIECE_TAIL, "messageStop", b);
    write_usage_and_metrics(c, b);
    emit(c, MOCK_PIECE_TAIL, "metadata", b);
}

static void bedrock_render(struct mock_call *c)
{
    struct evbuffer *b;

    mock_begin_answer(c, 200,
                      c->is_stream ? "application/vnd.amazon.eventstream"
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

const struct mock_provider mock_bedrock = {
    .id = MOCK_BEDROCK,
    .match = bedrock_match,
    .model_of = bedrock_model_of,
    .authenticate = bedrock_authenticate,
    .parse = bedrock_parse,
    .render_error = bedrock_render_error,
    .render = bedrock_render,
};
