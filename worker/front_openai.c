/*
 * front_openai.c - the OpenAI-compatible surface (seed 004).
 *
 * POST /v1/chat/completions is parsed strictly into a struct tg_chat: every
 * field OpenAI documents is type- and range-checked (those tollgate does not
 * act on are checked, then ignored), and an unknown field is a 400, as
 * OpenAI itself answers. Errors carry OpenAI's {"error": {message, type,
 * param, code}} for its SDKs and seed 004's "detail" beside it.
 *
 * Answers are rendered from canonical events: a chat.completion object, or
 * chat.completion.chunk SSE events ending with an optional usage chunk and
 * "data: [DONE]". The chunk prefix (id, created, model) is rendered once per
 * request and reused for every chunk.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_json.h"
#include "tg_parse.h"
#include "tg_req.h"
#include "tg_worker.h"

#define MAX_MESSAGES     100000
#define MAX_TOOLS        128
#define MAX_TOKENS_LIMIT 1000000
#define UNBOUNDED        1, 0 /* min > max: no range check */

struct param_rule {
    const char *name;
    unsigned types;
    double min, max;
};

/* Every top-level field the API accepts. Those the gateway acts on are read
 * again below; the rest are validated so a mistyped value is still a 400. */
static const struct param_rule params[] = {
    {"model", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"messages", TG_T_ARR, UNBOUNDED},
    {"temperature", TG_T_NUM | TG_T_NULL, 0, 2},
    {"top_p", TG_T_NUM | TG_T_NULL, 0, 1},
    {"n", TG_T_INT | TG_T_NULL, 1, 128},
    {"stream", TG_T_BOOL | TG_T_NULL, UNBOUNDED},
    {"stream_options", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"stop", TG_T_STR | TG_T_ARR | TG_T_NULL, UNBOUNDED},
    {"max_tokens", TG_T_INT | TG_T_NULL, 1, MAX_TOKENS_LIMIT},
    {"max_completion_tokens", TG_T_INT | TG_T_NULL, 1, MAX_TOKENS_LIMIT},
    {"presence_penalty", TG_T_NUM | TG_T_NULL, -2, 2},
    {"frequency_penalty", TG_T_NUM | TG_T_NULL, -2, 2},
    {"logit_bias", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"logprobs", TG_T_BOOL | TG_T_NULL, UNBOUNDED},
    {"top_logprobs", TG_T_INT | TG_T_NULL, 0, 20},
    {"user", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"tools", TG_T_ARR | TG_T_NULL, UNBOUNDED},
    {"tool_choice", TG_T_STR | TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"parallel_tool_calls", TG_T_BOOL | TG_T_NULL, UNBOUNDED},
    {"seed", TG_T_INT | TG_T_NULL, UNBOUNDED},
    {"response_format", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"metadata", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"store", TG_T_BOOL | TG_T_NULL, UNBOUNDED},
    {"service_tier", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"reasoning_effort", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"modalities", TG_T_ARR | TG_T_NULL, UNBOUNDED},
    {"prediction", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"audio", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"web_search_options", TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"safety_identifier", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"prompt_cache_key", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"verbosity", TG_T_STR | TG_T_NULL, UNBOUNDED},
};

static const struct {
    const char *name;
    enum tg_role role;
} roles[] = {
    {"system", TG_ROLE_SYSTEM}, {"developer", TG_ROLE_SYSTEM},
    {"user", TG_ROLE_USER},     {"assistant", TG_ROLE_ASSISTANT},
    {"tool", TG_ROLE_TOOL},
};

static int check_params(struct tg_parse *p)
{
    int cursor = 0, key, val;
    size_t i;
    struct tg_str name;

    while (tg_json_member(&p->j, 0, &cursor, &key, &val)) {
        for (i = 0; i < TG_ARRAY_LEN(params); i++)
            if (tg_json_str_eq(&p->j, key, params[i].name))
                break;
        if (i == TG_ARRAY_LEN(params)) {
            if (tg_parse_str(p, key, &name) != TG_OK)
                return TG_ERROR;
            tg_parse_param(p, "%.80s", name.ptr);
            return tg_parse_fail(p, "unknown_parameter",
                                 "Unrecognized request argument supplied: "
                                 "%.80s",
                                 name.ptr);
        }
        tg_parse_param(p, "%s", params[i].name);
        if (tg_parse_check(p, val, params[i].types, params[i].min,
                           params[i].max) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

/* One content part: {"type": "text", "text": "..."} (or "refusal"). */
static int parse_part(struct tg_parse *p, int part, struct evbuffer *text)
{
    struct tg_str type, s;

    if (tg_parse_check(p, part, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        tg_parse_need_str(p, part, "type", &type) != TG_OK)
        return TG_ERROR;
    if (strcmp(type.ptr, "text") != 0 && strcmp(type.ptr, "refusal") != 0) {
        tg_parse_push(p, ".type");
        return tg_parse_fail(p, "unsupported_content",
                             "Content parts of type '%.40s' are not "
                             "supported; use 'text'.",
                             type.ptr);
    }
    if (tg_parse_need_str(p, part, type.ptr, &s) != TG_OK)
        return TG_ERROR;
    return evbuffer_add(text, s.ptr, s.len) == 0 ? TG_OK : TG_NOMEM;
}

/* content: a string, or an array of text parts joined together. */
static int parse_content(struct tg_parse *p, int v, struct tg_message *m)
{
    struct evbuffer *text;
    size_t base;
    int cursor = 0, part, rc = TG_OK, n = 0;

    if (tg_parse_check(p, v, TG_T_STR | TG_T_ARR, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    if (tg_json_type(&p->j, v) == TG_JSON_STRING)
        return tg_parse_str(p, v, &m->text);
    text = evbuffer_new();
    if (text == NULL)
        return TG_NOMEM;
    while (rc == TG_OK && tg_json_element(&p->j, v, &cursor, &part)) {
        base = tg_parse_push(p, "[%d]", n++);
        rc = parse_part(p, part, text);
        if (rc != TG_ERROR)
            tg_parse_pop(p, base);
    }
    if (rc == TG_OK) {
        m->text.len = evbuffer_get_length(text);
        m->text.ptr = tg_arena_strndup(
            p->arena, (char *)evbuffer_pullup(text, -1), m->text.len);
        rc = m->text.ptr ? TG_OK : TG_NOMEM;
    }
    evbuffer_free(text);
    return rc;
}

static int parse_tool_call(struct tg_parse *p, int v, struct tg_tool_call *c)
{
    size_t base;
    int fn;

    if (tg_parse_check(p, v, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        tg_parse_need_str(p, v, "id", &c->id) != TG_OK)
        return TG_ERROR;
    fn = tg_json_get(&p->j, v, "function");
    base = tg_parse_push(p, ".function");
    if (fn < 0)
        return tg_parse_fail(p, "missing_required_parameter",
                             "Missing required parameter: '%s'.", p->param);
    if (tg_parse_check(p, fn, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        tg_parse_need_str(p, fn, "name", &c->name) != TG_OK ||
        tg_parse_need_str(p, fn, "arguments", &c->arguments) != TG_OK)
        return TG_ERROR;
    tg_parse_pop(p, base);
    return TG_OK;
}

static int parse_tool_calls(struct tg_parse *p, int v, struct tg_message *m)
{
    size_t base = tg_parse_push(p, ".tool_calls");
    int cursor = 0, call;

    if (tg_parse_check(p, v, TG_T_ARR, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    m->calls = tg_arena_calloc(p->arena, (size_t)tg_json_size(&p->j, v),
                               sizeof(*m->calls));
    if (m->calls == NULL)
        return TG_NOMEM;
    while (tg_json_element(&p->j, v, &cursor, &call)) {
        tg_parse_pop(p, base);
        tg_parse_push(p, ".tool_calls[%zu]", m->n_calls);
        if (parse_tool_call(p, call, &m->calls[m->n_calls++]) != TG_OK)
            return TG_ERROR;
    }
    tg_parse_pop(p, base);
    return TG_OK;
}

static int parse_role(struct tg_parse *p, int msg, struct tg_message *m)
{
    struct tg_str role;
    size_t i;

    if (tg_parse_need_str(p, msg, "role", &role) != TG_OK)
        return TG_ERROR;
    for (i = 0; i < TG_ARRAY_LEN(roles); i++)
        if (strcmp(role.ptr, roles[i].name) == 0) {
            m->role = roles[i].role;
            return TG_OK;
        }
    tg_parse_push(p, ".role");
    return tg_parse_fail(p, "invalid_value",
                         "Invalid value: '%.40s'. Supported values are: "
                         "'system', 'developer', 'user', 'assistant' and "
                         "'tool'.",
                         role.ptr);
}

static int parse_message(struct tg_parse *p, int msg, struct tg_message *m)
{
    size_t base;
    int content, calls, name;

    if (tg_parse_check(p, msg, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        parse_role(p, msg, m) != TG_OK)
        return TG_ERROR;
    content = tg_parse_member(&p->j, msg, "content");
    calls = m->role == TG_ROLE_ASSISTANT
                ? tg_parse_member(&p->j, msg, "tool_calls")
                : -1;
    name = tg_parse_member(&p->j, msg, "name");
    base = tg_parse_push(p, ".content");
    if (content < 0 && calls < 0)
        return tg_parse_fail(p, "missing_required_parameter",
                             "Missing required parameter: '%s'.", p->param);
    if (content >= 0 && parse_content(p, content, m) != TG_OK)
        return TG_ERROR;
    tg_parse_pop(p, base);
    if (calls >= 0 && parse_tool_calls(p, calls, m) != TG_OK)
        return TG_ERROR;
    if (m->role == TG_ROLE_TOOL &&
        tg_parse_need_str(p, msg, "tool_call_id", &m->tool_call_id) != TG_OK)
        return TG_ERROR;
    if (name >= 0 && tg_parse_need_str(p, msg, "name", &m->name) != TG_OK)
        return TG_ERROR;
    if (m->text.ptr == NULL)
        m->text.ptr = "";
    return TG_OK;
}

static int parse_messages(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_json_get(&p->j, 0, "messages");
    int cursor = 0, msg, n;

    tg_parse_param(p, "messages");
    if (v < 0)
        return tg_parse_fail(p, "missing_required_parameter",
                             "Missing required parameter: 'messages'.");
    n = tg_json_size(&p->j, v);
    if (n == 0)
        return tg_parse_fail(p, "empty_array",
                             "Invalid 'messages': empty array. Expected an "
                             "array with minimum length 1, but got an empty "
                             "array instead.");
    if (n > MAX_MESSAGES)
        return tg_parse_fail(p, "array_above_max_length",
                             "Invalid 'messages': at most %d messages.",
                             MAX_MESSAGES);
    c->messages = tg_arena_calloc(p->arena, (size_t)n, sizeof(*c->messages));
    if (c->messages == NULL)
        return TG_NOMEM;
    while (tg_json_element(&p->j, v, &cursor, &msg)) {
        tg_parse_param(p, "messages[%zu]", c->n_messages);
        if (parse_message(p, msg, &c->messages[c->n_messages++]) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

static bool is_tool_name(const struct tg_str *s)
{
    size_t i;

    if (s->len == 0 || s->len > 64)
        return false;
    for (i = 0; i < s->len; i++) {
        char ch = s->ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int parse_tool(struct tg_parse *p, int v, struct tg_tool *t)
{
    struct tg_str type;
    int fn, desc, schema;

    if (tg_parse_check(p, v, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        tg_parse_need_str(p, v, "type", &type) != TG_OK)
        return TG_ERROR;
    if (strcmp(type.ptr, "function") != 0)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s.type': only 'function' tools are "
                             "supported.",
                             p->param);
    fn = tg_json_get(&p->j, v, "function");
    tg_parse_push(p, ".function");
    if (fn < 0 || tg_parse_check(p, fn, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return fn < 0 ? tg_parse_fail(p, "missing_required_parameter",
                                      "Missing required parameter: '%s'.",
                                      p->param)
                      : TG_ERROR;
    if (tg_parse_need_str(p, fn, "name", &t->name) != TG_OK)
        return TG_ERROR;
    if (!is_tool_name(&t->name)) {
        tg_parse_push(p, ".name");
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': must match ^[a-zA-Z0-9_-]{1,64}$.",
                             p->param);
    }
    desc = tg_parse_member(&p->j, fn, "description");
    if (desc >= 0 &&
        tg_parse_need_str(p, fn, "description", &t->description) != TG_OK)
        return TG_ERROR;
    schema = tg_parse_member(&p->j, fn, "parameters");
    tg_parse_push(p, ".parameters");
    if (schema >= 0 &&
        (tg_parse_check(p, schema, TG_T_OBJ, UNBOUNDED) != TG_OK ||
         tg_parse_raw(p, schema, &t->parameters) != TG_OK))
        return TG_ERROR;
    if (schema < 0)
        t->parameters = (struct tg_str){"{}", 2};
    return TG_OK;
}

static int parse_tools(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "tools");
    int cursor = 0, tool, n;

    if (v < 0)
        return TG_OK;
    n = tg_json_size(&p->j, v);
    tg_parse_param(p, "tools");
    if (n > MAX_TOOLS)
        return tg_parse_fail(p, "array_above_max_length",
                             "Invalid 'tools': at most %d tools.", MAX_TOOLS);
    c->tools = tg_arena_calloc(p->arena, (size_t)n + 1, sizeof(*c->tools));
    if (c->tools == NULL)
        return TG_NOMEM;
    while (tg_json_element(&p->j, v, &cursor, &tool)) {
        tg_parse_param(p, "tools[%zu]", c->n_tools);
        if (parse_tool(p, tool, &c->tools[c->n_tools++]) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

static int parse_named_choice(struct tg_parse *p, int v, struct tg_chat *c)
{
    int fn = tg_json_get(&p->j, v, "function");

    tg_parse_param(p, "tool_choice.function");
    if (fn < 0 || tg_parse_check(p, fn, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return fn < 0 ? tg_parse_fail(p, "missing_required_parameter",
                                      "Missing required parameter: "
                                      "'tool_choice.function'.")
                      : TG_ERROR;
    if (tg_parse_need_str(p, fn, "name", &c->tool_choice_name) != TG_OK)
        return TG_ERROR;
    if (!tg_chat_has_tool(c, &c->tool_choice_name))
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'tool_choice': no tool named '%.64s' "
                             "in 'tools'.",
                             c->tool_choice_name.ptr);
    c->tool_choice = TG_TOOL_CHOICE_NAMED;
    return TG_OK;
}

static int parse_tool_choice(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "tool_choice");

    if (v < 0)
        return TG_OK;
    tg_parse_param(p, "tool_choice");
    if (tg_json_type(&p->j, v) == TG_JSON_OBJECT)
        return parse_named_choice(p, v, c);
    if (tg_json_str_eq(&p->j, v, "none"))
        c->tool_choice = TG_TOOL_CHOICE_NONE;
    else if (tg_json_str_eq(&p->j, v, "auto"))
        c->tool_choice = TG_TOOL_CHOICE_AUTO;
    else if (tg_json_str_eq(&p->j, v, "required"))
        c->tool_choice = TG_TOOL_CHOICE_REQUIRED;
    else
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'tool_choice': expected 'none', "
                             "'auto', 'required' or a named function.");
    if (c->tool_choice == TG_TOOL_CHOICE_REQUIRED && c->n_tools == 0)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'tool_choice': 'required' needs "
                             "'tools'.");
    return TG_OK;
}

static int parse_stop(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "stop");
    int cursor = 0, s;

    tg_parse_param(p, "stop");
    if (v < 0)
        return TG_OK;
    if (tg_json_type(&p->j, v) == TG_JSON_STRING) {
        c->n_stop = 1;
        return tg_parse_str(p, v, &c->stop[0]);
    }
    if (tg_json_size(&p->j, v) > TG_MAX_STOP_SEQUENCES)
        return tg_parse_fail(p, "array_above_max_length",
                             "Invalid 'stop': at most %d sequences.",
                             TG_MAX_STOP_SEQUENCES);
    while (tg_json_element(&p->j, v, &cursor, &s)) {
        tg_parse_param(p, "stop[%zu]", c->n_stop);
        if (tg_parse_check(p, s, TG_T_STR, UNBOUNDED) != TG_OK ||
            tg_parse_str(p, s, &c->stop[c->n_stop++]) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

static int parse_stream(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "stream");
    int opts = tg_parse_member(&p->j, 0, "stream_options");
    int usage;
    bool b;

    c->is_stream = v >= 0 && tg_json_bool(&p->j, v, &b) == TG_OK && b;
    if (opts < 0)
        return TG_OK;
    tg_parse_param(p, "stream_options");
    if (!c->is_stream)
        return tg_parse_fail(p, "invalid_value",
                             "The 'stream_options' parameter is only allowed "
                             "when 'stream' is enabled.");
    usage = tg_parse_member(&p->j, opts, "include_usage");
    tg_parse_param(p, "stream_options.include_usage");
    if (usage >= 0 && tg_parse_check(p, usage, TG_T_BOOL, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    c->include_usage =
        usage >= 0 && tg_json_bool(&p->j, usage, &b) == TG_OK && b;
    return TG_OK;
}

/* Numbers were range-checked by check_params; this only reads them. */
static void read_sampling(struct tg_parse *p, struct tg_chat *c)
{
    int v;

    if ((v = tg_parse_member(&p->j, 0, "temperature")) >= 0)
        c->has_temperature = tg_json_double(&p->j, v, &c->temperature) == TG_OK;
    if ((v = tg_parse_member(&p->j, 0, "top_p")) >= 0)
        c->has_top_p = tg_json_double(&p->j, v, &c->top_p) == TG_OK;
    if ((v = tg_parse_member(&p->j, 0, "max_completion_tokens")) < 0)
        v = tg_parse_member(&p->j, 0, "max_tokens");
    if (v >= 0)
        c->has_max_tokens = tg_json_int64(&p->j, v, &c->max_tokens) == TG_OK;
}

static int parse_scalars(struct tg_parse *p, struct tg_chat *c)
{
    int64_t n = 1;
    int v;

    if ((v = tg_parse_member(&p->j, 0, "model")) >= 0 &&
        tg_parse_str(p, v, &c->model) != TG_OK)
        return TG_ERROR;
    if ((v = tg_parse_member(&p->j, 0, "user")) >= 0 &&
        tg_parse_str(p, v, &c->user) != TG_OK)
        return TG_ERROR;
    if ((v = tg_parse_member(&p->j, 0, "n")) >= 0)
        tg_json_int64(&p->j, v, &n);
    if (n != 1) {
        tg_parse_param(p, "n");
        return tg_parse_fail(p, "unsupported_value",
                             "Invalid 'n': only n = 1 is supported.");
    }
    read_sampling(p, c);
    return TG_OK;
}

static int parse_chat(struct tg_parse *p, struct tg_chat *c)
{
    int rc;

    memset(c, 0, sizeof(*c));
    rc = check_params(p);

    if (rc == TG_OK)
        rc = parse_scalars(p, c);
    if (rc == TG_OK)
        rc = parse_messages(p, c);
    if (rc == TG_OK)
        rc = parse_tools(p, c);
    if (rc == TG_OK)
        rc = parse_tool_choice(p, c);
    if (rc == TG_OK)
        rc = parse_stop(p, c);
    if (rc == TG_OK)
        rc = parse_stream(p, c);
    return rc == TG_NOMEM ? tg_parse_nomem(p) : rc;
}

/* For other fronts, which have not checked the field's type (see
 * check_params). */
int tg_front_openai_parse_messages(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_json_get(&p->j, 0, "messages");
    int rc;

    tg_parse_param(p, "messages");
    if (v >= 0 && tg_parse_check(p, v, TG_T_ARR, 1, 0) != TG_OK)
        return TG_ERROR;
    rc = parse_messages(p, c);
    return rc == TG_NOMEM ? tg_parse_nomem(p) : rc;
}

int tg_front_openai_parse(struct tg_parse *p, struct tg_chat *chat)
{
    return parse_chat(p, chat);
}

void tg_front_openai_chat(struct tg_req *r)
{
    struct tg_parse p;

    if (tg_parse_request(&p, r) != TG_OK ||
        tg_front_openai_parse(&p, &r->chat) != TG_OK) {
        tg_parse_answer(&p, r);
        return;
    }
    tg_req_run_chat(r);
}

/* ---- rendering ---------------------------------------------------- */

static const char *finish_reason(enum tg_stop_reason reason)
{
    switch (reason) {
    case TG_STOP_MAX_TOKENS: return "length";
    case TG_STOP_TOOL_USE: return "tool_calls";
    case TG_STOP_FILTER: return "content_filter";
    default: return "stop";
    }
}

static const char *error_type(int status)
{
    switch (status) {
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    case 500: return "server_error";
    case 502:
    case 503:
    case 504: return "upstream_error";
    default: return "invalid_request_error";
    }
}

static void write_error_object(struct evbuffer *b, struct tg_req *r, int status,
                               const char *code, const char *message)
{
    TG_ADD_LIT(b, "{\"message\":");
    tg_json_write_str(b, message, strlen(message));
    evbuffer_add_printf(b, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (r->error_param != NULL)
        tg_json_write_str(b, r->error_param, strlen(r->error_param));
    else
        TG_ADD_LIT(b, "null");
    TG_ADD_LIT(b, ",\"code\":");
    tg_json_write_str(b, code, strlen(code));
    TG_ADD_LIT(b, "}");
}

static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message)
{
    TG_ADD_LIT(r->out, "{\"error\":");
    write_error_object(r->out, r, status, code, message);
    TG_ADD_LIT(r->out, ",\"detail\":");
    tg_json_write_str(r->out, message, strlen(message));
    TG_ADD_LIT(r->out, "}");
}

/* The answer and each stream chunk are written into a tg_json_out and
 * added to r->out in one append or a few: this runs for every chunk of
 * every stream, and an evbuffer_add per piece cost more than the pieces. */

/* A string of ours that needs no escaping, such as a finish reason. */
static void write_word(struct tg_json_out *o, const char *word)
{
    TG_OUT_LIT(o, "\"");
    tg_json_out_raw(o, word, strlen(word));
    TG_OUT_LIT(o, "\"");
}

static void write_usage(struct tg_json_out *o, const struct tg_usage *u)
{
    TG_OUT_LIT(o, "{\"prompt_tokens\":");
    tg_json_out_int(o, u->prompt_tokens);
    TG_OUT_LIT(o, ",\"completion_tokens\":");
    tg_json_out_int(o, u->completion_tokens);
    TG_OUT_LIT(o, ",\"total_tokens\":");
    tg_json_out_int(o, u->prompt_tokens + u->completion_tokens);
    TG_OUT_LIT(o, "}");
}

/* {"id":...,"object":"<object>","created":...,"model":..., */
static void write_head(struct tg_json_out *o, const struct tg_req *r,
                       const char *object)
{
    TG_OUT_LIT(o, "{\"id\":\"chatcmpl-");
    tg_json_out_raw(o, r->id, strlen(r->id));
    TG_OUT_LIT(o, "\",\"object\":\"");
    tg_json_out_raw(o, object, strlen(object));
    TG_OUT_LIT(o, "\",\"created\":");
    tg_json_out_int(o, r->created);
    TG_OUT_LIT(o, ",\"model\":");
    tg_json_out_str(o, r->model_name.ptr, r->model_name.len);
    TG_OUT_LIT(o, ",");
}

static void write_tool_calls(struct tg_json_out *o, const struct tg_answer *a)
{
    size_t i;

    TG_OUT_LIT(o, ",\"tool_calls\":[");
    for (i = 0; i < a->n_calls; i++) {
        const struct tg_answer_call *c = &a->calls[i];
        struct evbuffer *args = c->arguments;

        if (i > 0)
            TG_OUT_LIT(o, ",");
        TG_OUT_LIT(o, "{\"id\":");
        tg_json_out_str(o, c->id.ptr, c->id.len);
        TG_OUT_LIT(o, ",\"type\":\"function\",\"function\":{\"name\":");
        tg_json_out_str(o, c->name.ptr, c->name.len);
        TG_OUT_LIT(o, ",\"arguments\":");
        tg_json_out_str(o, (char *)evbuffer_pullup(args, -1),
                        evbuffer_get_length(args));
        TG_OUT_LIT(o, "}}");
    }
    TG_OUT_LIT(o, "]");
}

static int render_answer(struct tg_req *r)
{
    struct tg_answer *a = &r->answer;
    size_t n = evbuffer_get_length(a->text);
    struct tg_json_out o;

    tg_json_out_init(&o, r->out);
    write_head(&o, r, "chat.completion");
    TG_OUT_LIT(&o, "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                   "\"assistant\",\"content\":");
    if (n == 0 && a->n_calls > 0)
        TG_OUT_LIT(&o, "null");
    else
        tg_json_out_str(&o, (char *)evbuffer_pullup(a->text, -1), n);
    TG_OUT_LIT(&o, ",\"refusal\":null");
    if (a->n_calls > 0)
        write_tool_calls(&o, a);
    TG_OUT_LIT(&o, "},\"logprobs\":null,\"finish_reason\":");
    write_word(&o, finish_reason(a->stop_reason));
    TG_OUT_LIT(&o, "}],\"usage\":");
    write_usage(&o, &r->usage);
    TG_OUT_LIT(&o, ",\"system_fingerprint\":null}");
    tg_json_out_flush(&o);
    return 200;
}

/* data: <head>"choices":[{"index":0,"delta":<delta>,...}]...\n\n — the
 * caller writes the delta object between chunk_open and chunk_close, which
 * adds the chunk to r->out. */
static void chunk_open(struct tg_req *r, struct tg_json_out *o)
{
    tg_json_out_init(o, r->out);
    TG_OUT_LIT(o, "data: ");
    write_head(o, r, "chat.completion.chunk");
    TG_OUT_LIT(o, "\"system_fingerprint\":null,\"choices\":"
                  "[{\"index\":0,\"delta\":");
}

static void chunk_close(struct tg_req *r, struct tg_json_out *o,
                        const char *finish)
{
    TG_OUT_LIT(o, ",\"logprobs\":null,\"finish_reason\":");
    if (finish != NULL)
        write_word(o, finish);
    else
        TG_OUT_LIT(o, "null");
    TG_OUT_LIT(o, "}]");
    if (r->chat.include_usage)
        TG_OUT_LIT(o, ",\"usage\":null");
    TG_OUT_LIT(o, "}\n\n");
    tg_json_out_flush(o);
}

static void render_stream_start(struct tg_req *r)
{
    struct tg_json_out o;

    chunk_open(r, &o);
    TG_OUT_LIT(&o, "{\"role\":\"assistant\",\"content\":\"\","
                   "\"refusal\":null}");
    chunk_close(r, &o, NULL);
}

static void render_tool_start(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_json_out o;

    chunk_open(r, &o);
    TG_OUT_LIT(&o, "{\"tool_calls\":[{\"index\":");
    tg_json_out_int(&o, ev->index);
    TG_OUT_LIT(&o, ",\"id\":");
    tg_json_out_str(&o, ev->id.ptr, ev->id.len);
    TG_OUT_LIT(&o, ",\"type\":\"function\",\"function\":{\"name\":");
    tg_json_out_str(&o, ev->name.ptr, ev->name.len);
    TG_OUT_LIT(&o, ",\"arguments\":\"\"}}]}");
    chunk_close(r, &o, NULL);
}

static void render_tool_delta(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_json_out o;

    chunk_open(r, &o);
    TG_OUT_LIT(&o, "{\"tool_calls\":[{\"index\":");
    tg_json_out_int(&o, ev->index);
    TG_OUT_LIT(&o, ",\"function\":{\"arguments\":");
    tg_json_out_str(&o, ev->text.ptr, ev->text.len);
    TG_OUT_LIT(&o, "}}]}");
    chunk_close(r, &o, NULL);
}

static void render_stream_error(struct tg_req *r, const struct tg_event *ev)
{
    char message[512];

    snprintf(message, sizeof(message), "%.*s", (int)ev->text.len, ev->text.ptr);
    TG_ADD_LIT(r->out, "data: {\"error\":");
    write_error_object(r->out, r, ev->status ? ev->status : 502,
                       "upstream_error", message);
    TG_ADD_LIT(r->out, "}\n\n");
}

static void render_text(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_json_out o;

    chunk_open(r, &o);
    TG_OUT_LIT(&o, "{\"content\":");
    tg_json_out_str(&o, ev->text.ptr, ev->text.len);
    TG_OUT_LIT(&o, "}");
    chunk_close(r, &o, NULL);
}

static void render_stop(struct tg_req *r, const struct tg_event *ev)
{
    struct tg_json_out o;

    chunk_open(r, &o);
    TG_OUT_LIT(&o, "{}");
    chunk_close(r, &o, finish_reason(ev->stop_reason));
}

static void render_stream_event(struct tg_req *r, const struct tg_event *ev)
{
    switch (ev->type) {
    case TG_EV_TEXT: render_text(r, ev); break;
    case TG_EV_TOOL_START: render_tool_start(r, ev); break;
    case TG_EV_TOOL_DELTA: render_tool_delta(r, ev); break;
    case TG_EV_STOP: render_stop(r, ev); break;
    case TG_EV_ERROR: render_stream_error(r, ev); break;
    default: break;
    }
}

static void render_stream_end(struct tg_req *r)
{
    struct tg_json_out o;

    tg_json_out_init(&o, r->out);
    if (r->chat.include_usage) {
        TG_OUT_LIT(&o, "data: ");
        write_head(&o, r, "chat.completion.chunk");
        TG_OUT_LIT(&o, "\"system_fingerprint\":null,\"choices\":[],"
                       "\"usage\":");
        write_usage(&o, &r->usage);
        TG_OUT_LIT(&o, "}\n\n");
    }
    TG_OUT_LIT(&o, "data: [DONE]\n\n");
    tg_json_out_flush(&o);
}

/* GET /v1/models: the groups and models this team may use. */
static void write_model(struct tg_req *r, bool *is_first, const char *id,
                        const char *owner)
{
    if (!*is_first)
        TG_ADD_LIT(r->out, ",");
    TG_ADD_LIT(r->out, "{\"id\":");
    *is_first = false;
    tg_json_write_str(r->out, id, strlen(id));
    evbuffer_add_printf(r->out,
                        ",\"object\":\"model\",\"created\":%lld,"
                        "\"owned_by\":",
                        (long long)r->worker->config_loaded_at);
    tg_json_write_str(r->out, owner, strlen(owner));
    TG_ADD_LIT(r->out, "}");
}

void tg_front_openai_models(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    bool is_first = true;
    size_t i;

    TG_ADD_LIT(r->out, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < cfg->n_model_groups; i++)
        if (tg_cfg_team_allows_group(r->team, &cfg->model_groups[i]))
            write_model(r, &is_first, cfg->model_groups[i].name, "tollgate");
    for (i = 0; i < cfg->n_models; i++)
        if (tg_cfg_team_allows_model(r->team, &cfg->models[i]))
            write_model(r, &is_first, cfg->models[i].name,
                        cfg->models[i].provider->name);
    TG_ADD_LIT(r->out, "]}");
    tg_req_send(r, 200);
}

const struct tg_front tg_front_openai = {
    .name = "openai",
    .surface = TG_SURFACE_OPENAI,
    .render_error = render_error,
    .render_answer = render_answer,
    .render_stream_start = render_stream_start,
    .render_stream_event = render_stream_event,
    .render_stream_end = render_stream_end,
};
