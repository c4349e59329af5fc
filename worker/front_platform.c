/*
 * front_platform.c - the platform LLM API of seed 000 (/api/v1/llm/...).
 *
 * The seed is a FastAPI service, so this surface answers like one: every
 * error is {"detail": "<message>"}; a body that fails validation (not JSON,
 * a wrong type, a value out of range, a missing field) is 422 as FastAPI
 * answers it, while the request path keeps its own statuses (400 unknown
 * model, 401, 403, 429, 502-504). Unknown top-level fields are accepted and
 * ignored, as a pydantic model does by default; JSON null reads as absent.
 *
 * Message content is a string or Anthropic-style blocks: text, tool_use
 * (assistant) and tool_result (user). A user message's tool results become
 * canonical TG_ROLE_TOOL messages placed before its text. Tools may be
 * written Anthropic-style {name, description, input_schema} or OpenAI-style
 * {type: "function", function: {name, description, parameters}}.
 *
 * The answer is {content, model, stop_reason, tool_calls, usage}; a tool
 * call's "input" is its arguments when they are a JSON object, else {}.
 * A stream is "data: {json}\n\n" events of the seed's types, spaced as the
 * seed prints them; front_state collects each tool call's arguments for
 * tool_use_complete. A failure mid-stream is an {"type": "error", "detail"}
 * event, and then the stream ends without message_stop or metadata.
 * GET /models answers {"models": [names]}: the groups, then the models, the
 * caller's team may use.
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
/* 0-2: the widest range of the backends the seed names (OpenAI-compatible
 * takes 0-2; a Bedrock/Anthropic upstream refuses above 1 itself). */
#define MAX_TEMPERATURE 2
#define MAX_TOOL_NAME   64
#define UNBOUNDED       1, 0 /* min > max: no range check */

struct param_rule {
    const char *name;
    unsigned types;
    double min, max;
};

/* The seed's request fields: type- and range-checked here, read below. */
static const struct param_rule params[] = {
    {"model", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"messages", TG_T_ARR, UNBOUNDED},
    {"system", TG_T_STR | TG_T_NULL, UNBOUNDED},
    {"tools", TG_T_ARR | TG_T_NULL, UNBOUNDED},
    {"tool_choice", TG_T_STR | TG_T_OBJ | TG_T_NULL, UNBOUNDED},
    {"max_tokens", TG_T_INT | TG_T_NULL, 1, MAX_TOKENS_LIMIT},
    {"temperature", TG_T_NUM | TG_T_NULL, 0, MAX_TEMPERATURE},
};

/* The blocks of one content array. Which block types are allowed depends
 * on whose content it is: a user's (text, tool_result), an assistant's
 * (text, tool_use) or a tool_result's own content (TG_ROLE_TOOL: text). */
struct blocks {
    enum tg_role role;
    struct tg_chat *chat; /* a user's tool results are appended to it */
    struct evbuffer *text;
    struct tg_tool_call *calls;
    size_t n_calls;
    size_t n_results;
};

static int fail_missing(struct tg_parse *p)
{
    return tg_parse_fail(p, "missing_required_parameter",
                         "Missing required parameter: '%s'.", p->param);
}

static int check_params(struct tg_parse *p)
{
    size_t i;
    int v;

    for (i = 0; i < TG_ARRAY_LEN(params); i++) {
        if ((v = tg_json_get(&p->j, 0, params[i].name)) < 0)
            continue;
        tg_parse_param(p, "%s", params[i].name);
        if (tg_parse_check(p, v, params[i].types, params[i].min,
                           params[i].max) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

/* Copies what an evbuffer collected into the arena. */
static int copy_text(struct tg_parse *p, struct evbuffer *b, struct tg_str *out)
{
    out->len = evbuffer_get_length(b);
    out->ptr = tg_arena_strndup(
        p->arena, out->len ? (const char *)evbuffer_pullup(b, -1) : "",
        out->len);
    return out->ptr != NULL ? TG_OK : TG_NOMEM;
}

static int parse_text_block(struct tg_parse *p, int block, struct blocks *b)
{
    struct tg_str s;

    if (tg_parse_need_str(p, block, "text", &s) != TG_OK)
        return TG_ERROR;
    return evbuffer_add(b->text, s.ptr, s.len) == 0 ? TG_OK : TG_NOMEM;
}

/* {"type": "tool_use", "id", "name", "input": {...}}: input may be left
 * out for a tool without arguments. */
static int parse_tool_use(struct tg_parse *p, int block, struct blocks *b)
{
    struct tg_tool_call *call = &b->calls[b->n_calls++];
    int input = tg_parse_member(&p->j, block, "input");
    size_t base;

    if (tg_parse_need_str(p, block, "id", &call->id) != TG_OK ||
        tg_parse_need_str(p, block, "name", &call->name) != TG_OK)
        return TG_ERROR;
    if (input < 0) {
        call->arguments = (struct tg_str){"{}", 2};
        return TG_OK;
    }
    base = tg_parse_push(p, ".input");
    if (tg_parse_check(p, input, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    tg_parse_pop(p, base);
    return tg_parse_raw(p, input, &call->arguments);
}

static int walk_blocks(struct tg_parse *p, int arr, struct blocks *b);

/* A tool_result's content: a string, or text blocks joined. */
static int parse_result_content(struct tg_parse *p, int v, struct tg_str *out)
{
    struct blocks inner = {.role = TG_ROLE_TOOL};
    int rc;

    if (tg_parse_check(p, v, TG_T_STR | TG_T_ARR, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    if (tg_json_type(&p->j, v) == TG_JSON_STRING)
        return tg_parse_str(p, v, out);
    if ((inner.text = evbuffer_new()) == NULL)
        return TG_NOMEM;
    rc = walk_blocks(p, v, &inner);
    if (rc == TG_OK)
        rc = copy_text(p, inner.text, out);
    evbuffer_free(inner.text);
    return rc;
}

/* {"type": "tool_result", "tool_use_id", "content"}: a canonical tool
 * message of its own. */
static int parse_tool_result(struct tg_parse *p, int block, struct blocks *b)
{
    struct tg_message *m = &b->chat->messages[b->chat->n_messages++];
    int content = tg_parse_member(&p->j, block, "content");
    size_t base;

    m->role = TG_ROLE_TOOL;
    m->text = (struct tg_str){"", 0};
    b->n_results++;
    if (tg_parse_need_str(p, block, "tool_use_id", &m->tool_call_id) != TG_OK)
        return TG_ERROR;
    if (content < 0)
        return TG_OK;
    base = tg_parse_push(p, ".content");
    if (parse_result_content(p, content, &m->text) != TG_OK)
        return TG_ERROR;
    tg_parse_pop(p, base);
    return TG_OK;
}

static int fail_block_type(struct tg_parse *p, const struct tg_str *type,
                           enum tg_role role)
{
    static const char *const allowed[] = {
        [TG_ROLE_USER] = "'text' and 'tool_result'",
        [TG_ROLE_ASSISTANT] = "'text' and 'tool_use'",
        [TG_ROLE_TOOL] = "'text'",
    };

    tg_parse_push(p, ".type");
    return tg_parse_fail(p, "invalid_value",
                         "Invalid '%s': '%.40s' blocks are not supported "
                         "here; supported are %s.",
                         p->param, type->ptr, allowed[role]);
}

static int parse_block(struct tg_parse *p, int block, struct blocks *b)
{
    struct tg_str type;

    if (tg_parse_check(p, block, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        tg_parse_need_str(p, block, "type", &type) != TG_OK)
        return TG_ERROR;
    if (strcmp(type.ptr, "text") == 0)
        return parse_text_block(p, block, b);
    if (strcmp(type.ptr, "tool_use") == 0 && b->role == TG_ROLE_ASSISTANT)
        return parse_tool_use(p, block, b);
    if (strcmp(type.ptr, "tool_result") == 0 && b->role == TG_ROLE_USER)
        return parse_tool_result(p, block, b);
    return fail_block_type(p, &type, b->role);
}

static int walk_blocks(struct tg_parse *p, int arr, struct blocks *b)
{
    int cursor = 0, block, n = 0, rc = TG_OK;
    size_t base;

    while (rc == TG_OK && tg_json_element(&p->j, arr, &cursor, &block)) {
        base = tg_parse_push(p, "[%d]", n++);
        rc = parse_block(p, block, b);
        if (rc == TG_OK)
            tg_parse_pop(p, base);
    }
    return rc;
}

/* A content array: the message itself follows the user's tool results,
 * and is left out when tool results were all the user sent. */
static int parse_blocks(struct tg_parse *p, int arr, enum tg_role role,
                        struct tg_chat *c)
{
    struct blocks b = {.role = role, .chat = c};
    struct tg_message *m;
    int rc;

    b.calls = tg_arena_calloc(p->arena, (size_t)tg_json_size(&p->j, arr) + 1,
                              sizeof(*b.calls));
    if (b.calls == NULL || (b.text = evbuffer_new()) == NULL)
        return TG_NOMEM;
    rc = walk_blocks(p, arr, &b);
    if (rc == TG_OK && (b.n_results == 0 || evbuffer_get_length(b.text))) {
        m = &c->messages[c->n_messages++];
        m->role = role;
        m->calls = b.calls;
        m->n_calls = b.n_calls;
        rc = copy_text(p, b.text, &m->text);
    }
    evbuffer_free(b.text);
    return rc;
}

static int parse_role(struct tg_parse *p, int msg, enum tg_role *role)
{
    struct tg_str s;

    if (tg_parse_need_str(p, msg, "role", &s) != TG_OK)
        return TG_ERROR;
    if (strcmp(s.ptr, "user") == 0 || strcmp(s.ptr, "assistant") == 0) {
        *role = s.ptr[0] == 'u' ? TG_ROLE_USER : TG_ROLE_ASSISTANT;
        return TG_OK;
    }
    tg_parse_push(p, ".role");
    return tg_parse_fail(p, "invalid_value",
                         "Invalid value for '%s': '%.40s'. Supported values "
                         "are: 'user' and 'assistant'.",
                         p->param, s.ptr);
}

static int parse_message(struct tg_parse *p, int msg, struct tg_chat *c)
{
    struct tg_message *m;
    enum tg_role role = TG_ROLE_USER;
    int content;
    size_t base;

    if (tg_parse_check(p, msg, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        parse_role(p, msg, &role) != TG_OK)
        return TG_ERROR;
    content = tg_json_get(&p->j, msg, "content");
    base = tg_parse_push(p, ".content");
    if (content < 0)
        return fail_missing(p);
    if (tg_parse_check(p, content, TG_T_STR | TG_T_ARR, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    if (tg_json_type(&p->j, content) == TG_JSON_ARRAY)
        return parse_blocks(p, content, role, c);
    tg_parse_pop(p, base);
    m = &c->messages[c->n_messages++];
    m->role = role;
    return tg_parse_str(p, content, &m->text);
}

/* An upper bound of the canonical messages: the system prompt, and per
 * message itself plus one per block (a block may be a tool result). */
static size_t count_messages(const struct tg_json *j, int arr)
{
    int cursor = 0, msg, content;
    size_t n = 1;

    while (tg_json_element(j, arr, &cursor, &msg)) {
        content = tg_json_get(j, msg, "content");
        n += 1 + (content >= 0 && tg_json_size(j, content) > 0
                      ? (size_t)tg_json_size(j, content)
                      : 0);
    }
    return n;
}

/* "system" goes first, as a system message; an empty one is left out. */
static int parse_system(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "system");
    struct tg_message *m = &c->messages[c->n_messages];

    if (v < 0)
        return TG_OK;
    m->role = TG_ROLE_SYSTEM;
    if (tg_parse_str(p, v, &m->text) != TG_OK)
        return TG_ERROR;
    if (m->text.len > 0)
        c->n_messages++;
    return TG_OK;
}

static int parse_messages(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_json_get(&p->j, 0, "messages");
    int cursor = 0, msg, n = 0;

    tg_parse_param(p, "messages");
    if (v < 0)
        return fail_missing(p);
    if (tg_json_size(&p->j, v) == 0)
        return tg_parse_fail(p, "empty_array",
                             "Invalid 'messages': expected at least one "
                             "message, but got an empty array.");
    if (tg_json_size(&p->j, v) > MAX_MESSAGES)
        return tg_parse_fail(p, "array_above_max_length",
                             "Invalid 'messages': at most %d messages.",
                             MAX_MESSAGES);
    c->messages = tg_arena_calloc(p->arena, count_messages(&p->j, v),
                                  sizeof(*c->messages));
    if (c->messages == NULL)
        return TG_NOMEM;
    if (parse_system(p, c) != TG_OK)
        return TG_ERROR;
    while (tg_json_element(&p->j, v, &cursor, &msg)) {
        tg_parse_param(p, "messages[%d]", n++);
        if (parse_message(p, msg, c) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

/* What the Anthropic and OpenAI APIs both require of a tool name. */
static bool is_tool_name(const struct tg_str *s)
{
    size_t i;

    if (s->len == 0 || s->len > MAX_TOOL_NAME)
        return false;
    for (i = 0; i < s->len; i++) {
        char ch = s->ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* name, description and the schema under `schema_key` of object obj. */
static int read_tool(struct tg_parse *p, int obj, const char *schema_key,
                     struct tg_tool *t)
{
    int desc = tg_parse_member(&p->j, obj, "description");
    int schema = tg_parse_member(&p->j, obj, schema_key);

    if (tg_parse_need_str(p, obj, "name", &t->name) != TG_OK)
        return TG_ERROR;
    if (!is_tool_name(&t->name)) {
        tg_parse_push(p, ".name");
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': must match ^[a-zA-Z0-9_-]{1,64}$.",
                             p->param);
    }
    if (desc >= 0 &&
        tg_parse_need_str(p, obj, "description", &t->description) != TG_OK)
        return TG_ERROR;
    t->parameters = (struct tg_str){"{}", 2};
    if (schema < 0)
        return TG_OK;
    tg_parse_push(p, ".%s", schema_key);
    if (tg_parse_check(p, schema, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    return tg_parse_raw(p, schema, &t->parameters);
}

/* {"type": "function", "function": {...}} is OpenAI's; anything else is
 * Anthropic's, whose optional type is "custom". */
static int parse_tool(struct tg_parse *p, int v, struct tg_tool *t)
{
    int fn, type;

    if (tg_parse_check(p, v, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    fn = tg_json_get(&p->j, v, "function");
    type = tg_parse_member(&p->j, v, "type");
    if (fn < 0 && (type < 0 || tg_json_str_eq(&p->j, type, "custom")))
        return read_tool(p, v, "input_schema", t);
    if (type >= 0 && !tg_json_str_eq(&p->j, type, "function")) {
        tg_parse_push(p, ".type");
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': expected 'function' or "
                             "'custom'.",
                             p->param);
    }
    tg_parse_push(p, ".function");
    if (fn < 0)
        return fail_missing(p);
    if (tg_parse_check(p, fn, TG_T_OBJ, UNBOUNDED) != TG_OK)
        return TG_ERROR;
    return read_tool(p, fn, "parameters", t);
}

static int parse_tools(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "tools");
    int cursor = 0, tool;

    if (v < 0)
        return TG_OK;
    tg_parse_param(p, "tools");
    if (tg_json_size(&p->j, v) > MAX_TOOLS)
        return tg_parse_fail(p, "array_above_max_length",
                             "Invalid 'tools': at most %d tools.", MAX_TOOLS);
    c->tools = tg_arena_calloc(p->arena, (size_t)tg_json_size(&p->j, v) + 1,
                               sizeof(*c->tools));
    if (c->tools == NULL)
        return TG_NOMEM;
    while (tg_json_element(&p->j, v, &cursor, &tool)) {
        tg_parse_param(p, "tools[%zu]", c->n_tools);
        if (parse_tool(p, tool, &c->tools[c->n_tools++]) != TG_OK)
            return TG_ERROR;
    }
    return TG_OK;
}

/* The tool a named choice names: {"type": "tool", "name"} (Anthropic) or
 * {"type": "function", "function": {"name"}} (OpenAI). */
static int parse_choice_name(struct tg_parse *p, int v, bool is_openai,
                             struct tg_chat *c)
{
    int fn = is_openai ? tg_json_get(&p->j, v, "function") : v;

    if (is_openai) {
        tg_parse_param(p, "tool_choice.function");
        if (fn < 0)
            return fail_missing(p);
        if (tg_parse_check(p, fn, TG_T_OBJ, UNBOUNDED) != TG_OK)
            return TG_ERROR;
    }
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

static int fail_choice(struct tg_parse *p)
{
    return tg_parse_fail(p, "invalid_value",
                         "Invalid 'tool_choice': expected 'auto', 'any', "
                         "'required', 'none', {\"type\": \"tool\", \"name\": "
                         "...} or {\"type\": \"function\", \"function\": "
                         "{\"name\": ...}}.");
}

/* "auto" | "any" | "required" | "none", as a string or as the object's
 * type, or a named tool (objects only). */
static int parse_tool_choice(struct tg_parse *p, struct tg_chat *c)
{
    int v = tg_parse_member(&p->j, 0, "tool_choice");
    bool is_object = v >= 0 && tg_json_type(&p->j, v) == TG_JSON_OBJECT;
    int kind = is_object ? tg_json_get(&p->j, v, "type") : v;

    if (v < 0)
        return TG_OK;
    tg_parse_param(p, "tool_choice");
    if (is_object && kind < 0)
        return fail_choice(p);
    if (tg_json_str_eq(&p->j, kind, "auto"))
        c->tool_choice = TG_TOOL_CHOICE_AUTO;
    else if (tg_json_str_eq(&p->j, kind, "none"))
        c->tool_choice = TG_TOOL_CHOICE_NONE;
    else if (tg_json_str_eq(&p->j, kind, "any") ||
             tg_json_str_eq(&p->j, kind, "required"))
        c->tool_choice = TG_TOOL_CHOICE_REQUIRED;
    else if (is_object && tg_json_str_eq(&p->j, kind, "tool"))
        return parse_choice_name(p, v, false, c);
    else if (is_object && tg_json_str_eq(&p->j, kind, "function"))
        return parse_choice_name(p, v, true, c);
    else
        return fail_choice(p);
    if (c->tool_choice == TG_TOOL_CHOICE_REQUIRED && c->n_tools == 0)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'tool_choice': forcing a tool call "
                             "needs 'tools'.");
    return TG_OK;
}

/* Numbers were range-checked by check_params; this only reads them. */
static int parse_scalars(struct tg_parse *p, struct tg_chat *c)
{
    int v;

    if ((v = tg_parse_member(&p->j, 0, "temperature")) >= 0)
        c->has_temperature = tg_json_double(&p->j, v, &c->temperature) == TG_OK;
    if ((v = tg_parse_member(&p->j, 0, "max_tokens")) >= 0)
        c->has_max_tokens = tg_json_int64(&p->j, v, &c->max_tokens) == TG_OK;
    if ((v = tg_parse_member(&p->j, 0, "model")) >= 0)
        return tg_parse_str(p, v, &c->model);
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
    return rc == TG_NOMEM ? tg_parse_nomem(p) : rc;
}

int tg_front_platform_parse(struct tg_parse *p, struct tg_chat *chat)
{
    return parse_chat(p, chat);
}

/* ---- rendering ---------------------------------------------------- */

/* One tool call of a stream: what tool_use_delta and tool_use_complete
 * need after the back's event strings are gone. */
struct stream_call {
    int index; /* the events' index */
    struct tg_str id, name;
    char *arguments; /* in the arena, grown by doubling */
    size_t len, cap;
    bool is_truncated; /* an allocation failed: input will be {} */
    bool is_complete;
};

struct stream_state {
    struct stream_call calls[TG_MAX_TOOL_CALLS];
    size_t n_calls;
    bool has_stopped; /* message_stop went out */
    bool has_failed;  /* an error event went out */
};

static const char *stop_reason_name(enum tg_stop_reason reason)
{
    switch (reason) {
    case TG_STOP_MAX_TOKENS: return "max_tokens";
    case TG_STOP_TOOL_USE: return "tool_use";
    case TG_STOP_SEQUENCE: return "stop_sequence";
    /* Outside the seed's four: Bedrock's own word, which a Bedrock backend
     * passes through, says more than a false end_turn. */
    case TG_STOP_FILTER: return "content_filtered";
    default: return "end_turn";
    }
}

static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message)
{
    (void)status;
    (void)code;
    tg_json_write_detail(r->out, message);
}

/* A tool call's "input": its arguments when they are a JSON object (a
 * provider may send anything), else {}. */
static void write_input(struct tg_req *r, const char *args, size_t len)
{
    struct tg_json_error err;
    struct tg_json j;

    if (len > 0 && tg_json_parse(&j, args, len, &r->arena, &err) == TG_OK &&
        tg_json_type(&j, 0) == TG_JSON_OBJECT)
        evbuffer_add(r->out, args, len);
    else
        TG_ADD_LIT(r->out, "{}");
}

static void write_tool_calls(struct tg_req *r, const struct tg_answer *a)
{
    size_t i;

    for (i = 0; i < a->n_calls; i++) {
        const struct tg_answer_call *c = &a->calls[i];

        if (i > 0)
            TG_ADD_LIT(r->out, ",");
        TG_ADD_LIT(r->out, "{\"id\":");
        tg_json_write_str(r->out, c->id.ptr, c->id.len);
        TG_ADD_LIT(r->out, ",\"name\":");
        tg_json_write_str(r->out, c->name.ptr, c->name.len);
        TG_ADD_LIT(r->out, ",\"input\":");
        write_input(r, (const char *)evbuffer_pullup(c->arguments, -1),
                    evbuffer_get_length(c->arguments));
        TG_ADD_LIT(r->out, "}");
    }
}

static int render_answer(struct tg_req *r)
{
    struct tg_answer *a = &r->answer;
    struct tg_usage u = tg_quota_used(r);

    TG_ADD_LIT(r->out, "{\"content\":");
    tg_json_write_str(r->out, (const char *)evbuffer_pullup(a->text, -1),
                      evbuffer_get_length(a->text));
    TG_ADD_LIT(r->out, ",\"model\":");
    tg_json_write_str(r->out, r->model_name.ptr, r->model_name.len);
    evbuffer_add_printf(r->out, ",\"stop_reason\":\"%s\",\"tool_calls\":[",
                        stop_reason_name(a->stop_reason));
    write_tool_calls(r, a);
    evbuffer_add_printf(r->out,
                        "],\"usage\":{\"prompt_tokens\":%lld,"
                        "\"completion_tokens\":%lld}}",
                        (long long)u.prompt_tokens,
                        (long long)u.completion_tokens);
    return 200;
}

/* Events are written as the seed prints them: json.dumps' ", " and ": ". */
static void event_open(struct tg_req *r, const char *type)
{
    evbuffer_add_printf(r->out, "data: {\"type\": \"%s\"", type);
}

static void event_str(struct tg_req *r, const char *key, struct tg_str s)
{
    evbuffer_add_printf(r->out, ", \"%s\": ", key);
    tg_json_write_str(r->out, s.ptr, s.len);
}

static void event_close(struct tg_req *r)
{
    TG_ADD_LIT(r->out, "}\n\n");
}

static struct stream_call *find_call(struct stream_state *s, int index)
{
    size_t i;

    for (i = 0; i < s->n_calls; i++)
        if (s->calls[i].index == index)
            return &s->calls[i];
    return NULL;
}

/* Keeps what later events of this call need; past TG_MAX_TOOL_CALLS a
 * call is still shown but its deltas go unnamed and its input is {}. */
static void stream_tool_start(struct tg_req *r, struct stream_state *s,
                              const struct tg_event *ev)
{
    struct stream_call *c;

    if (s->n_calls < TG_MAX_TOOL_CALLS) {
        c = &s->calls[s->n_calls++];
        c->index = ev->index;
        c->id.ptr = tg_arena_strndup(&r->arena, ev->id.ptr, ev->id.len);
        c->name.ptr = tg_arena_strndup(&r->arena, ev->name.ptr, ev->name.len);
        c->id.len = c->id.ptr ? ev->id.len : 0;
        c->name.len = c->name.ptr ? ev->name.len : 0;
        c->is_truncated = c->id.ptr == NULL || c->name.ptr == NULL;
    }
    event_open(r, "tool_use_start");
    event_str(r, "id", ev->id);
    event_str(r, "name", ev->name);
    event_close(r);
}

/* Appends to the call's arguments; once an allocation fails they are no
 * longer whole, and the input falls back to {}. */
static void append_arguments(struct tg_req *r, struct stream_call *c,
                             struct tg_str text)
{
    size_t cap = c->cap ? c->cap : 256;
    char *grown;

    while (cap < c->len + text.len)
        cap *= 2;
    if (cap != c->cap) {
        grown = tg_arena_alloc(&r->arena, cap);
        if (grown == NULL) {
            c->is_truncated = true;
            return;
        }
        if (c->len > 0)
            memcpy(grown, c->arguments, c->len);
        c->arguments = grown;
        c->cap = cap;
    }
    memcpy(c->arguments + c->len, text.ptr, text.len);
    c->len += text.len;
}

static void stream_tool_delta(struct tg_req *r, struct stream_state *s,
                              const struct tg_event *ev)
{
    struct stream_call *c = find_call(s, ev->index);
    struct tg_str none = {"", 0};

    if (c != NULL && !c->is_truncated)
        append_arguments(r, c, ev->text);
    event_open(r, "tool_use_delta");
    event_str(r, "id", c ? c->id : none);
    event_str(r, "delta", ev->text);
    event_close(r);
}

static void stream_tool_complete(struct tg_req *r, struct stream_call *c)
{
    if (c == NULL || c->is_complete)
        return;
    c->is_complete = true;
    event_open(r, "tool_use_complete");
    event_str(r, "id", c->id);
    event_str(r, "name", c->name);
    TG_ADD_LIT(r->out, ", \"input\": ");
    write_input(r, c->arguments, c->is_truncated ? 0 : c->len);
    event_close(r);
}

/* A provider that never ends its calls explicitly has them end here. */
static void stream_stop(struct tg_req *r, struct stream_state *s,
                        enum tg_stop_reason reason)
{
    size_t i;

    for (i = 0; i < s->n_calls; i++)
        stream_tool_complete(r, &s->calls[i]);
    event_open(r, "message_stop");
    evbuffer_add_printf(r->out, ", \"stop_reason\": \"%s\"",
                        stop_reason_name(reason));
    event_str(r, "model", r->model_name);
    event_close(r);
    s->has_stopped = true;
}

static void stream_error(struct tg_req *r, struct stream_state *s,
                         const struct tg_event *ev)
{
    event_open(r, "error");
    event_str(r, "detail", ev->text);
    event_close(r);
    s->has_failed = true;
}

static void render_stream_start(struct tg_req *r)
{
    (void)r;
}

static void render_stream_event(struct tg_req *r, const struct tg_event *ev)
{
    struct stream_state *s = r->front_state;

    switch (ev->type) {
    case TG_EV_TEXT:
        event_open(r, "content_delta");
        event_str(r, "delta", ev->text);
        event_close(r);
        break;
    case TG_EV_TOOL_START: stream_tool_start(r, s, ev); break;
    case TG_EV_TOOL_DELTA: stream_tool_delta(r, s, ev); break;
    case TG_EV_TOOL_END:
        stream_tool_complete(r, find_call(s, ev->index));
        break;
    case TG_EV_STOP:
        if (!s->has_stopped)
            stream_stop(r, s, ev->stop_reason);
        break;
    case TG_EV_ERROR: stream_error(r, s, ev); break;
    default: break;
    }
}

/* Usage arrives after the stop, so metadata is always the last event. */
static void render_stream_end(struct tg_req *r)
{
    struct stream_state *s = r->front_state;
    struct tg_usage u = tg_quota_used(r);

    if (s->has_failed)
        return;
    if (!s->has_stopped)
        stream_stop(r, s, TG_STOP_END);
    event_open(r, "metadata");
    evbuffer_add_printf(r->out,
                        ", \"usage\": {\"input_tokens\": %lld, "
                        "\"output_tokens\": %lld}",
                        (long long)u.prompt_tokens,
                        (long long)u.completion_tokens);
    event_close(r);
}

/* ---- route handlers ----------------------------------------------- */

static void run(struct tg_req *r, bool is_stream)
{
    struct tg_parse p;

    if (tg_parse_request(&p, r) != TG_OK || parse_chat(&p, &r->chat) != TG_OK) {
        tg_parse_answer(&p, r);
        return;
    }
    r->chat.is_stream = is_stream;
    if (is_stream) {
        r->front_state =
            tg_arena_calloc(&r->arena, 1, sizeof(struct stream_state));
        if (r->front_state == NULL) {
            tg_req_fail(r, 500, "internal_error", "out of memory");
            return;
        }
    }
    tg_req_run_chat(r);
}

void tg_front_platform_completions(struct tg_req *r)
{
    run(r, false);
}

void tg_front_platform_stream(struct tg_req *r)
{
    run(r, true);
}

static void write_name(struct tg_req *r, bool *is_first, const char *name)
{
    if (!*is_first)
        TG_ADD_LIT(r->out, ",");
    *is_first = false;
    tg_json_write_str(r->out, name, strlen(name));
}

void tg_front_platform_models(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    bool is_first = true;
    size_t i;

    TG_ADD_LIT(r->out, "{\"models\":[");
    for (i = 0; i < cfg->n_model_groups; i++)
        if (tg_cfg_team_allows_group(r->team, &cfg->model_groups[i]))
            write_name(r, &is_first, cfg->model_groups[i].name);
    for (i = 0; i < cfg->n_models; i++)
        if (tg_cfg_team_allows_model(r->team, &cfg->models[i]))
            write_name(r, &is_first, cfg->models[i].name);
    TG_ADD_LIT(r->out, "]}");
    tg_req_send(r, 200);
}

const struct tg_front tg_front_platform = {
    .name = "platform",
    .surface = TG_SURFACE_PLATFORM,
    .invalid_status = 422,
    .render_error = render_error,
    .render_answer = render_answer,
    .render_stream_start = render_stream_start,
    .render_stream_event = render_stream_event,
    .render_stream_end = render_stream_end,
};
