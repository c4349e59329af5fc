/*
 * front_stip.c - the STIP task gateway surface (seeds 001/002).
 *
 * Four tasks share one body: `model`, `prompt`, `user_prompt`,
 * `temperature`, `max_tokens` (classification adds `classes`). Each is
 * parsed into a struct tg_chat of at most two messages: a system message
 * (the caller's prompt, plus the task's instruction for classification and
 * summarization) and the user's text. Answers are wrapped in STIP's
 * {"status":"success","content":...,"usage":...}; every error, whatever
 * step raised it, is {"status":"error","error":...,"content":null,
 * "usage":null} with the gateway's own status code (429, 502, 503 ... as
 * well as the seed's 400/401/500), since a client needs the difference.
 *
 * Classification never answers free text: the model's reply is matched to
 * one of the caller's classes (its id, then its label, then the one id it
 * mentions), and a reply naming none, or several, is a 502.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_json.h"
#include "tg_parse.h"
#include "tg_req.h"
#include "tg_worker.h"

#define STIP_TEMPERATURE_DEFAULT 0.2
#define STIP_TEMPERATURE_MAX     1.0
#define STIP_MAX_TOKENS_DEFAULT  4096
#define STIP_MAX_TOKENS_LIMIT    32768
#define STIP_MAX_CLASSES         256
#define STIP_EXCERPT_MAX         200 /* bytes of a bad answer quoted back */
#define STIP_TEXT_FIRST_CAP      256
#define UNBOUNDED                1, 0 /* min > max: no range check */

#define CLASSIFY_INSTRUCTION                                                 \
    "Classify the user's text into exactly one of the classes below. "       \
    "Answer with the id of that class and nothing else: no explanation, no " \
    "punctuation, no quotes.\n\nClasses (id: label):"
#define SUMMARIZE_INSTRUCTION                                              \
    "Summarize the user's text concisely, keeping its key points. Answer " \
    "with the summary only, without a preamble."

enum stip_task {
    STIP_GENERATION,
    STIP_CLASSIFICATION,
    STIP_SUMMARIZATION,
};

struct stip_class {
    struct tg_str id;
    struct tg_str label;
};

/* The request's own state (r->front_state), in the request's arena. */
struct stip_state {
    enum stip_task task;
    struct stip_class *classes;
    size_t n_classes;
    /* A stream keeps its whole text for the final chunk. It grows in the
     * arena by doubling, so at most twice the text is held; the arena also
     * frees it when the client vanishes mid-stream, which no render hook
     * would see. */
    char *text;
    size_t text_len;
    size_t text_cap;
    bool is_text_lost; /* out of memory while keeping it */
    uint64_t n_chunks;
    bool has_failed; /* an error line went out: no final chunk follows */
};

/* The body's two texts; both "" when absent (user_prompt also when null). */
struct stip_texts {
    struct tg_str prompt;
    struct tg_str user_prompt;
};

/* ---- matching a model's answer to a class ------------------------------ */

static bool is_trim_byte(unsigned char ch)
{
    return ch != '\0' && strchr(" \t\r\n\f\v\"'`*_#>.,;:!?()[]{}<", ch);
}

/* Curly quotes models like to wrap an answer in (UTF-8). */
static const char *const trim_quotes[] = {
    "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x98",
    "\xe2\x80\x99", "\xc2\xab",     "\xc2\xbb",
};

static bool trim_quote(struct tg_str *s, bool is_front)
{
    size_t i, n;

    for (i = 0; i < TG_ARRAY_LEN(trim_quotes); i++) {
        n = strlen(trim_quotes[i]);
        if (s->len < n || memcmp(is_front ? s->ptr : s->ptr + s->len - n,
                                 trim_quotes[i], n) != 0)
            continue;
        s->ptr += is_front ? n : 0;
        s->len -= n;
        return true;
    }
    return false;
}

/* Strips white space, quotes, sentence punctuation and markdown from both
 * ends: "**Negative.**" and "'negative'" both become the bare word. */
static struct tg_str trim_answer(struct tg_str s)
{
    bool is_trimmed = true;

    while (s.len > 0 && is_trimmed) {
        is_trimmed = false;
        if (is_trim_byte((unsigned char)s.ptr[0])) {
            s.ptr++;
            s.len--;
            is_trimmed = true;
        } else if (is_trim_byte((unsigned char)s.ptr[s.len - 1])) {
            s.len--;
            is_trimmed = true;
        } else {
            is_trimmed = trim_quote(&s, true) || trim_quote(&s, false);
        }
    }
    return s;
}

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* ASCII case-insensitive compare of n bytes; NUL bytes compare as bytes. */
static bool is_same_text(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

static bool is_same_str(struct tg_str a, struct tg_str b)
{
    return a.len == b.len && is_same_text(a.ptr, b.ptr, a.len);
}

/* Bytes of UTF-8 sequences count as letters: "négatif" is one word. */
static bool is_word_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch >= 0x80;
}

/* Whether `word` occurs in `text` with no word byte on either side. */
static bool has_word(struct tg_str text, struct tg_str word)
{
    size_t i, end;

    for (i = 0; word.len > 0 && i + word.len <= text.len; i++) {
        end = i + word.len;
        if (is_same_text(text.ptr + i, word.ptr, word.len) &&
            (i == 0 || !is_word_byte((unsigned char)text.ptr[i - 1])) &&
            (end == text.len || !is_word_byte((unsigned char)text.ptr[end])))
            return true;
    }
    return false;
}

/* The one class whose trimmed id (or label) equals the trimmed answer; -1
 * when none or, for labels, which need not be unique, several do. */
static int match_whole(const struct stip_state *st, struct tg_str answer,
                       bool is_label)
{
    int found = -1;
    size_t i;

    for (i = 0; i < st->n_classes; i++) {
        const struct stip_class *k = &st->classes[i];

        if (!is_same_str(answer, trim_answer(is_label ? k->label : k->id)))
            continue;
        if (found >= 0)
            return -1;
        found = (int)i;
    }
    return found;
}

/* The class the model's answer names, or -1 (then *n_named says whether it
 * named none or several). Ids are unique ignoring case (parse_classes), so
 * an exact id match is never ambiguous. */
static int find_class(const struct stip_state *st, struct tg_str text,
                      size_t *n_named)
{
    struct tg_str answer = trim_answer(text);
    int found;
    size_t i;

    *n_named = 0;
    if ((found = match_whole(st, answer, false)) >= 0 ||
        (found = match_whole(st, answer, true)) >= 0) {
        *n_named = 1;
        return found;
    }
    for (i = 0; i < st->n_classes; i++)
        if (has_word(text, trim_answer(st->classes[i].id))) {
            found = (int)i;
            (*n_named)++;
        }
    return *n_named == 1 ? found : -1;
}

/* ---- parsing ------------------------------------------------------------ */

/* Looks a top-level field up and checks it. Absent is fine (*out is -1:
 * the caller applies the default); null is a value of the wrong type
 * unless `types` allows it, as the seed's pydantic model has it. */
static int get_field(struct tg_parse *p, const char *name, unsigned types,
                     double min, double max, int *out)
{
    *out = tg_json_get(&p->j, 0, name);
    tg_parse_param(p, "%s", name);
    if (*out < 0)
        return TG_OK;
    return tg_parse_check(p, *out, types, min, max);
}

static int fail_missing(struct tg_parse *p)
{
    return tg_parse_fail(p, "missing_required_parameter",
                         "Missing required parameter: '%s'.", p->param);
}

/* Any name the resolver takes is accepted, not only the seed's
 * "provider/model_name": a model alias or a model group (with its
 * fallbacks) serves STIP clients too. The resolver answers unknown names
 * with a 400 listing the valid ones. */
static int parse_model(struct tg_parse *p, struct tg_chat *c)
{
    int v;

    if (get_field(p, "model", TG_T_STR, UNBOUNDED, &v) != TG_OK)
        return TG_ERROR;
    if (v < 0)
        return fail_missing(p);
    if (tg_parse_str(p, v, &c->model) != TG_OK)
        return TG_ERROR;
    /* "" would fall back to default_model; STIP makes the model required. */
    if (c->model.len == 0)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'model': expected 'provider/model_name' "
                             "(e.g. 'openai/gpt-4o'), but got an empty "
                             "string.");
    return TG_OK;
}

static int parse_texts(struct tg_parse *p, struct stip_texts *in)
{
    int v;

    in->prompt = in->user_prompt = (struct tg_str){"", 0};
    if (get_field(p, "prompt", TG_T_STR, UNBOUNDED, &v) != TG_OK ||
        (v >= 0 && tg_parse_str(p, v, &in->prompt) != TG_OK))
        return TG_ERROR;
    if (get_field(p, "user_prompt", TG_T_STR | TG_T_NULL, UNBOUNDED, &v) !=
        TG_OK)
        return TG_ERROR;
    if (v >= 0 && tg_json_type(&p->j, v) == TG_JSON_STRING &&
        tg_parse_str(p, v, &in->user_prompt) != TG_OK)
        return TG_ERROR;
    return TG_OK;
}

/* Both always reach the provider: STIP has defaults where OpenAI has
 * none, and max_tokens also sizes the quota reservation. */
static int parse_sampling(struct tg_parse *p, struct tg_chat *c)
{
    int v;

    c->has_temperature = c->has_max_tokens = true;
    c->temperature = STIP_TEMPERATURE_DEFAULT;
    c->max_tokens = STIP_MAX_TOKENS_DEFAULT;
    if (get_field(p, "temperature", TG_T_NUM, 0, STIP_TEMPERATURE_MAX, &v) !=
        TG_OK)
        return TG_ERROR;
    if (v >= 0)
        tg_json_double(&p->j, v, &c->temperature);
    if (get_field(p, "max_tokens", TG_T_INT, 1, STIP_MAX_TOKENS_LIMIT, &v) !=
        TG_OK)
        return TG_ERROR;
    if (v >= 0)
        tg_json_int64(&p->j, v, &c->max_tokens);
    return TG_OK;
}

/* An id or a label must keep something once trimmed like an answer, or
 * it could never be told apart from an empty reply. */
static int need_text(struct tg_parse *p, int obj, const char *key,
                     struct tg_str *out)
{
    if (tg_parse_need_str(p, obj, key, out) != TG_OK)
        return TG_ERROR;
    if (trim_answer(*out).len > 0)
        return TG_OK;
    tg_parse_push(p, ".%s", key);
    return tg_parse_fail(p, "invalid_value",
                         "Invalid '%s': expected a non-empty string (not "
                         "only white space or punctuation).",
                         p->param);
}

static int parse_class(struct tg_parse *p, const struct stip_state *st,
                       int item, struct stip_class *k)
{
    size_t i;

    if (tg_parse_check(p, item, TG_T_OBJ, UNBOUNDED) != TG_OK ||
        need_text(p, item, "id", &k->id) != TG_OK ||
        need_text(p, item, "label", &k->label) != TG_OK)
        return TG_ERROR;
    for (i = 0; i < st->n_classes; i++)
        if (is_same_str(trim_answer(k->id), trim_answer(st->classes[i].id))) {
            tg_parse_push(p, ".id");
            return tg_parse_fail(p, "invalid_value",
                                 "Invalid '%s': '%.80s' is also the id of "
                                 "classes[%zu] (ids are compared ignoring "
                                 "case and surrounding punctuation).",
                                 p->param, k->id.ptr, i);
        }
    return TG_OK;
}

/* classes: [{"id": "...", "label": "..."}, ...]; other members of a class
 * are ignored, like unknown fields of the body. */
static int parse_classes(struct tg_parse *p, struct stip_state *st)
{
    int v, cursor = 0, item, n;

    if (get_field(p, "classes", TG_T_ARR, UNBOUNDED, &v) != TG_OK)
        return TG_ERROR;
    if (v < 0)
        return fail_missing(p);
    n = tg_json_size(&p->j, v);
    if (n == 0 || n > STIP_MAX_CLASSES)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid 'classes': expected 1 to %d classes, "
                             "but got %d.",
                             STIP_MAX_CLASSES, n);
    st->classes = tg_arena_calloc(p->arena, (size_t)n, sizeof(*st->classes));
    if (st->classes == NULL)
        return TG_NOMEM;
    while (tg_json_element(&p->j, v, &cursor, &item)) {
        tg_parse_param(p, "classes[%zu]", st->n_classes);
        if (parse_class(p, st, item, &st->classes[st->n_classes]) != TG_OK)
            return TG_ERROR;
        st->n_classes++;
    }
    return TG_OK;
}

static int add_class_list(struct evbuffer *b, const struct stip_state *st)
{
    int rc = 0;
    size_t i;

    for (i = 0; i < st->n_classes; i++) {
        const struct stip_class *k = &st->classes[i];

        rc |= TG_ADD_LIT(b, "\n- ");
        rc |= evbuffer_add(b, k->id.ptr, k->id.len);
        rc |= TG_ADD_LIT(b, ": ");
        rc |= evbuffer_add(b, k->label.ptr, k->label.len);
    }
    return rc;
}

/* The caller's instruction, then the task's, into one system text. */
static int write_system(struct evbuffer *b, const struct stip_state *st,
                        struct tg_str caller)
{
    int rc = evbuffer_add(b, caller.ptr, caller.len);

    if (caller.len > 0)
        rc |= TG_ADD_LIT(b, "\n\n");
    if (st->task == STIP_CLASSIFICATION)
        rc |= TG_ADD_LIT(b, CLASSIFY_INSTRUCTION) | add_class_list(b, st);
    if (st->task == STIP_SUMMARIZATION)
        rc |= TG_ADD_LIT(b, SUMMARIZE_INSTRUCTION);
    return rc == 0 ? TG_OK : TG_NOMEM;
}

/* Generation sends the caller's prompt as it is; the tasks add their
 * instruction, so their text is never empty. */
static int build_system(struct tg_arena *arena, const struct stip_state *st,
                        struct tg_str caller, struct tg_str *out)
{
    struct evbuffer *b;
    int rc;

    if (st->task == STIP_GENERATION) {
        *out = caller;
        return TG_OK;
    }
    b = evbuffer_new();
    if (b == NULL)
        return TG_NOMEM;
    rc = write_system(b, st, caller);
    out->len = evbuffer_get_length(b);
    if (rc == TG_OK) {
        out->ptr =
            tg_arena_strndup(arena, (char *)evbuffer_pullup(b, -1), out->len);
        rc = out->ptr != NULL ? TG_OK : TG_NOMEM;
    }
    evbuffer_free(b);
    return rc;
}

/*
 * The messages: `prompt` as the system message and `user_prompt` as the
 * user's. A body with only `prompt` sends it as the user message instead,
 * with no caller instruction: Anthropic, Bedrock and Gemini refuse a
 * conversation without a user turn, and a lone prompt is what the caller
 * wants answered. A body with neither text is a 400.
 */
static int build_messages(struct tg_parse *p, const struct stip_state *st,
                          const struct stip_texts *in, struct tg_chat *c)
{
    bool has_user = in->user_prompt.len > 0;
    struct tg_str input = has_user ? in->user_prompt : in->prompt;
    struct tg_str system;

    if (input.len == 0) {
        tg_parse_param(p, "user_prompt");
        return tg_parse_fail(p, "missing_required_parameter",
                             "Either 'prompt' or 'user_prompt' must be a "
                             "non-empty string.");
    }
    if (build_system(p->arena, st,
                     has_user ? in->prompt : (struct tg_str){"", 0},
                     &system) != TG_OK)
        return TG_NOMEM;
    c->messages = tg_arena_calloc(p->arena, 2, sizeof(*c->messages));
    if (c->messages == NULL)
        return TG_NOMEM;
    if (system.len > 0)
        c->messages[c->n_messages++] =
            (struct tg_message){.role = TG_ROLE_SYSTEM, .text = system};
    c->messages[c->n_messages++] =
        (struct tg_message){.role = TG_ROLE_USER, .text = input};
    return TG_OK;
}

/*
 * Fields are checked in the seed's table order; unknown fields are
 * ignored, as the seed's pydantic models do by default (so a client may
 * send `classes` to /llm/generation, or `stream`). Types are strict JSON
 * types: "0.5" is not a number and 150.0 is not an integer.
 */
static int parse_body(struct tg_parse *p, struct stip_state *st,
                      struct tg_chat *c)
{
    struct stip_texts in;
    int rc;

    memset(c, 0, sizeof(*c));
    rc = parse_model(p, c);
    if (rc == TG_OK)
        rc = parse_texts(p, &in);
    if (rc == TG_OK)
        rc = parse_sampling(p, c);
    if (rc == TG_OK && st->task == STIP_CLASSIFICATION)
        rc = parse_classes(p, st);
    if (rc == TG_OK)
        rc = build_messages(p, st, &in, c);
    return rc == TG_NOMEM ? tg_parse_nomem(p) : rc;
}

int tg_front_stip_parse_and_classify(struct tg_parse *p, struct tg_str reply,
                                     struct tg_chat *chat, int *class_index)
{
    struct stip_state *st = tg_arena_calloc(p->arena, 1, sizeof(*st));
    size_t n_named;
    int rc;

    if (st == NULL)
        return tg_parse_nomem(p);
    st->task = STIP_CLASSIFICATION;
    rc = parse_body(p, st, chat);
    if (rc == TG_OK)
        *class_index = find_class(st, reply, &n_named);
    return rc;
}

static void run_task(struct tg_req *r, enum stip_task task, bool is_stream)
{
    struct stip_state *st = tg_arena_calloc(&r->arena, 1, sizeof(*st));
    struct tg_parse p;

    if (st == NULL) {
        tg_req_fail(r, 500, "internal_error", "out of memory");
        return;
    }
    st->task = task;
    r->front_state = st;
    if (tg_parse_request(&p, r) != TG_OK ||
        parse_body(&p, st, &r->chat) != TG_OK) {
        tg_parse_answer(&p, r);
        return;
    }
    r->chat.is_stream = is_stream;
    tg_req_run_chat(r);
}

void tg_front_stip_generation(struct tg_req *r)
{
    run_task(r, STIP_GENERATION, false);
}

/* Streaming is for generation only, as the seed says. */
void tg_front_stip_generation_stream(struct tg_req *r)
{
    run_task(r, STIP_GENERATION, true);
}

void tg_front_stip_classification(struct tg_req *r)
{
    run_task(r, STIP_CLASSIFICATION, false);
}

void tg_front_stip_summarization(struct tg_req *r)
{
    run_task(r, STIP_SUMMARIZATION, false);
}

/* ---- the provider lists ------------------------------------------------- */

/*
 * Only enabled providers are listed: one whose secret resolved to "" can
 * serve nothing, and the seed lists the providers a client may use. Names
 * are the configured ones, which is what "provider/model_name" takes.
 */
static void write_providers(struct tg_req *r, bool is_upper)
{
    const struct tg_config *cfg = r->worker->cfg;
    bool is_first = true;
    char *name;
    size_t i, j, n;

    TG_ADD_LIT(r->out, "[");
    for (i = 0; i < cfg->n_providers; i++) {
        if (!cfg->providers[i].is_enabled)
            continue;
        n = strlen(cfg->providers[i].name);
        name = tg_arena_strndup(&r->arena, cfg->providers[i].name, n);
        if (name == NULL)
            continue;
        for (j = 0; is_upper && j < n; j++)
            if (name[j] >= 'a' && name[j] <= 'z')
                name[j] = (char)(name[j] - 'a' + 'A');
        if (!is_first)
            TG_ADD_LIT(r->out, ",");
        is_first = false;
        tg_json_write_str(r->out, name, n);
    }
    TG_ADD_LIT(r->out, "]");
}

/* "api_status" is "up" whenever this worker answers; provider health is
 * in GET /health. */
void tg_front_stip_root(struct tg_req *r)
{
    TG_ADD_LIT(r->out,
               "{\"status\":\"success\",\"api_status\":\"up\",\"providers\":");
    write_providers(r, true);
    TG_ADD_LIT(r->out, "}");
    tg_req_send(r, 200);
}

void tg_front_stip_providers(struct tg_req *r)
{
    TG_ADD_LIT(r->out, "{\"status\":\"success\",\"providers\":");
    write_providers(r, false);
    TG_ADD_LIT(r->out, "}");
    tg_req_send(r, 200);
}

/* ---- rendering ---------------------------------------------------------- */

static void write_error(struct evbuffer *b, const char *message)
{
    TG_ADD_LIT(b, "{\"status\":\"error\",\"error\":");
    tg_json_write_str(b, message, strlen(message));
    TG_ADD_LIT(b, ",\"content\":null,\"usage\":null}");
}

/* STIP's body has no place for the code: the message says it all. */
static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message)
{
    (void)status;
    (void)code;
    write_error(r->out, message);
}

/* What the call used: the provider's counts, or the gateway's estimate
 * when it reported none (what the team is charged either way). */
static void write_usage(struct evbuffer *b, const struct tg_req *r)
{
    struct tg_usage u = tg_quota_used(r);

    evbuffer_add_printf(b,
                        "{\"prompt_tokens\":%lld,\"completion_tokens\":"
                        "%lld,\"total_tokens\":%lld}",
                        (long long)u.prompt_tokens,
                        (long long)u.completion_tokens,
                        (long long)(u.prompt_tokens + u.completion_tokens));
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static struct tg_str trim_space(struct tg_str s)
{
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static struct tg_str answer_text(struct tg_req *r)
{
    size_t n = evbuffer_get_length(r->answer.text);

    if (n == 0)
        return (struct tg_str){"", 0};
    return (struct tg_str){(const char *)evbuffer_pullup(r->answer.text, -1),
                           n};
}

/* The 502 of an answer that names no class: quotes the start of it, so
 * the caller can see what the model said. */
static int render_no_class(struct tg_req *r, struct tg_str text, size_t n_named)
{
    char message[STIP_EXCERPT_MAX + 128];

    snprintf(message, sizeof(message),
             "The model's answer names %s of the given classes: \"%.*s%s\"",
             n_named == 0 ? "none" : "more than one",
             (int)(text.len > STIP_EXCERPT_MAX ? STIP_EXCERPT_MAX : text.len),
             text.ptr, text.len > STIP_EXCERPT_MAX ? "..." : "");
    evbuffer_drain(r->out, evbuffer_get_length(r->out));
    write_error(r->out, message);
    return 502;
}

static int render_content(struct tg_req *r, const struct stip_state *st,
                          struct tg_str text)
{
    const struct stip_class *k;
    size_t n_named;
    int found;

    switch (st->task) {
    case STIP_CLASSIFICATION:
        found = find_class(st, text, &n_named);
        if (found < 0)
            return render_no_class(r, text, n_named);
        k = &st->classes[found];
        TG_ADD_LIT(r->out, "{\"id\":");
        tg_json_write_str(r->out, k->id.ptr, k->id.len);
        TG_ADD_LIT(r->out, ",\"label\":");
        tg_json_write_str(r->out, k->label.ptr, k->label.len);
        TG_ADD_LIT(r->out, "}");
        return 200;
    case STIP_SUMMARIZATION:
        /* A summary is a value, not a transcript: no stray newlines. */
        text = trim_space(text);
        TG_ADD_LIT(r->out, "{\"summary\":");
        tg_json_write_str(r->out, text.ptr, text.len);
        TG_ADD_LIT(r->out, "}");
        return 200;
    default: tg_json_write_str(r->out, text.ptr, text.len); return 200;
    }
}

static int render_answer(struct tg_req *r)
{
    int status;

    TG_ADD_LIT(r->out, "{\"status\":\"success\",\"content\":");
    status = render_content(r, r->front_state, answer_text(r));
    if (status != 200)
        return status;
    TG_ADD_LIT(r->out, ",\"usage\":");
    write_usage(r->out, r);
    TG_ADD_LIT(r->out, "}");
    return 200;
}

/* Nothing precedes the first chunk. */
static void render_stream_start(struct tg_req *r)
{
    (void)r;
}

static int keep_text(struct tg_arena *arena, struct stip_state *st,
                     struct tg_str piece)
{
    size_t need = st->text_len + piece.len;
    size_t cap = st->text_cap ? st->text_cap : STIP_TEXT_FIRST_CAP;
    char *grown;

    if (need > st->text_cap) {
        while (cap < need && cap <= SIZE_MAX / 2)
            cap *= 2;
        grown = cap >= need ? tg_arena_alloc(arena, cap) : NULL;
        if (grown == NULL)
            return TG_NOMEM;
        if (st->text_len > 0)
            memcpy(grown, st->text, st->text_len);
        st->text = grown;
        st->text_cap = cap;
    }
    memcpy(st->text + st->text_len, piece.ptr, piece.len);
    st->text_len = need;
    return TG_OK;
}

/* data: {"id":"<request id>-<n>","text":...,"is_final":...,"usage":...} */
static void write_chunk(struct tg_req *r, struct stip_state *st,
                        struct tg_str text, bool is_final)
{
    char id[TG_REQ_ID_MAX + 24];
    int n = snprintf(id, sizeof(id), "%s-%llu", r->id,
                     (unsigned long long)st->n_chunks++);

    TG_ADD_LIT(r->out, "data: {\"id\":");
    tg_json_write_str(r->out, id, (size_t)n);
    TG_ADD_LIT(r->out, ",\"text\":");
    tg_json_write_str(r->out, text.ptr, text.len);
    if (is_final) {
        TG_ADD_LIT(r->out, ",\"is_final\":true,\"usage\":");
        write_usage(r->out, r);
        TG_ADD_LIT(r->out, "}\n\n");
    } else {
        TG_ADD_LIT(r->out, ",\"is_final\":false,\"usage\":null}\n\n");
    }
}

/*
 * An upstream error mid-stream: the seed has no error chunk, so the line
 * carries STIP's error body, which clients already recognise by its
 * "status", and no final chunk follows (a partial text must not pass for
 * the complete one).
 */
static void write_error_line(struct tg_req *r, struct stip_state *st,
                             const char *message)
{
    st->has_failed = true;
    TG_ADD_LIT(r->out, "data: ");
    write_error(r->out, message);
    TG_ADD_LIT(r->out, "\n\n");
}

static void render_stream_event(struct tg_req *r, const struct tg_event *ev)
{
    struct stip_state *st = r->front_state;
    char message[512];

    if (ev->type == TG_EV_ERROR) {
        snprintf(message, sizeof(message), "%.*s", (int)ev->text.len,
                 ev->text.ptr);
        write_error_line(r, st, message);
        return;
    }
    if (ev->type != TG_EV_TEXT || ev->text.len == 0)
        return;
    if (keep_text(&r->arena, st, ev->text) != TG_OK)
        st->is_text_lost = true;
    write_chunk(r, st, ev->text, false);
}

static void render_stream_end(struct tg_req *r)
{
    struct stip_state *st = r->front_state;

    if (st->has_failed)
        return;
    if (st->is_text_lost) {
        write_error_line(r, st,
                         "out of memory: the complete text could not be "
                         "kept for the final chunk");
        return;
    }
    write_chunk(r, st, (struct tg_str){st->text ? st->text : "", st->text_len},
                true);
}

const struct tg_front tg_front_stip = {
    .name = "stip",
    .surface = TG_SURFACE_STIP,
    .render_error = render_error,
    .render_answer = render_answer,
    .render_stream_start = render_stream_start,
    .render_stream_event = render_stream_event,
    .render_stream_end = render_stream_end,
};
