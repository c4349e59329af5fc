/*
 * parse.c - field-by-field checks of a JSON request body (see tg_parse.h).
 *
 * The messages follow OpenAI's wording ("Invalid type for 'x': expected a
 * number, but got a string instead."), which clients already show to
 * people; the front renders them in its own error format.
 */
#include "tg_parse.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_req.h"

int tg_parse_fail(struct tg_parse *p, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
    p->status = 400;
    p->code = code;
    return TG_ERROR;
}

int tg_parse_nomem(struct tg_parse *p)
{
    p->status = 500;
    p->code = "internal_error";
    snprintf(p->message, sizeof(p->message), "out of memory");
    return TG_ERROR;
}

void tg_parse_answer(struct tg_parse *p, struct tg_req *r)
{
    if (p->status == 400 && r->front->invalid_status != 0)
        p->status = r->front->invalid_status;
    if (p->param[0] != '\0' && p->status == 400)
        r->error_param =
            tg_arena_strndup(&r->arena, p->param, strlen(p->param));
    tg_req_fail(r, p->status ? p->status : 500,
                p->code ? p->code : "internal_error", "%s", p->message);
}

/* Copies what fits of s[0..n) at out, which has room bytes (room >= 1,
 * one kept for the NUL); returns how many it copied. */
static size_t append(char *out, size_t room, const char *s, size_t n)
{
    if (n > room - 1)
        n = room - 1;
    memcpy(out, s, n);
    return n;
}

/*
 * Writes fmt at out (cap >= 1 bytes, NUL included), cut as vsnprintf would.
 * The parameter paths of every request ("messages[0].content") are made of
 * text, %s, %d and %zu, which are written here by hand: vsnprintf cost a
 * tenth of parsing a whole request. A format with any other conversion
 * goes to vsnprintf whole.
 */
static void format_path(char *out, size_t cap, const char *fmt, va_list ap)
{
    const char *f = fmt, *piece;
    char num[24];
    size_t used = 0, len, step;
    va_list again;

    va_copy(again, ap);
    while (*f != '\0') {
        if (f[0] != '%') {
            piece = f;
            len = step = strcspn(f, "%");
        } else if (f[1] == 's') {
            piece = va_arg(ap, const char *);
            len = strlen(piece);
            step = 2;
        } else if (f[1] == 'd') {
            len = tg_format_int(num, va_arg(ap, int));
            piece = num;
            step = 2;
        } else if (f[1] == 'z' && f[2] == 'u') {
            len = tg_format_int(num, (int64_t)va_arg(ap, size_t));
            piece = num;
            step = 3;
        } else {
            vsnprintf(out, cap, fmt, again);
            va_end(again);
            return;
        }
        used += append(out + used, cap - used, piece, len);
        f += step;
    }
    out[used] = '\0';
    va_end(again);
}

void tg_parse_param(struct tg_parse *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    format_path(p->param, sizeof(p->param), fmt, ap);
    va_end(ap);
}

size_t tg_parse_push(struct tg_parse *p, const char *fmt, ...)
{
    size_t base = strlen(p->param);
    va_list ap;

    va_start(ap, fmt);
    format_path(p->param + base, sizeof(p->param) - base, fmt, ap);
    va_end(ap);
    return base;
}

void tg_parse_pop(struct tg_parse *p, size_t base)
{
    p->param[base] = '\0';
}

int tg_parse_request(struct tg_parse *p, struct tg_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->http);
    size_t len = evbuffer_get_length(in);

    return tg_parse_body(p, &r->arena, (const char *)evbuffer_pullup(in, -1),
                         len);
}

int tg_parse_body(struct tg_parse *p, struct tg_arena *arena, const char *body,
                  size_t len)
{
    struct tg_json_error err;
    int rc;

    memset(p, 0, sizeof(*p));
    p->arena = arena;
    if (len == 0)
        return tg_parse_fail(p, "invalid_json",
                             "The request body is empty; expected a JSON "
                             "object.");
    rc = tg_json_parse(&p->j, body, len, arena, &err);
    if (rc == TG_NOMEM)
        return tg_parse_nomem(p);
    if (rc != TG_OK)
        return tg_parse_fail(p, "invalid_json",
                             "The request body is not valid JSON: %s at "
                             "byte %zu.",
                             err.message, err.offset);
    if (tg_json_type(&p->j, 0) != TG_JSON_OBJECT)
        return tg_parse_fail(p, "invalid_json",
                             "The request body must be a JSON object, not "
                             "%s.",
                             tg_json_type_name(tg_json_type(&p->j, 0)));
    return TG_OK;
}

unsigned tg_parse_type(const struct tg_json *j, int i)
{
    int64_t v;

    switch (tg_json_type(j, i)) {
    case TG_JSON_NULL: return TG_T_NULL;
    case TG_JSON_TRUE:
    case TG_JSON_FALSE: return TG_T_BOOL;
    case TG_JSON_STRING: return TG_T_STR;
    case TG_JSON_ARRAY: return TG_T_ARR;
    case TG_JSON_OBJECT: return TG_T_OBJ;
    case TG_JSON_NUMBER:
        return tg_json_int64(j, i, &v) == TG_OK ? (TG_T_INT | TG_T_NUM)
                                                : TG_T_NUM;
    default: return 0;
    }
}

static const char *types_name(unsigned types)
{
    static const struct {
        unsigned mask;
        const char *name;
    } names[] = {
        {TG_T_INT, "an integer"},
        {TG_T_NUM, "a number"},
        {TG_T_STR | TG_T_ARR, "a string or an array"},
        {TG_T_STR | TG_T_OBJ, "a string or an object"},
        {TG_T_STR, "a string"},
        {TG_T_BOOL, "a boolean"},
        {TG_T_ARR, "an array"},
        {TG_T_OBJ, "an object"},
    };
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(names); i++)
        if ((types & names[i].mask) == names[i].mask)
            return names[i].name;
    return "null";
}

int tg_parse_check(struct tg_parse *p, int i, unsigned types, double min,
                   double max)
{
    unsigned got = tg_parse_type(&p->j, i);
    double v;

    if ((got & types) == 0)
        return tg_parse_fail(
            p, "invalid_type",
            "Invalid type for '%s': expected %s, but got %s instead.", p->param,
            types_name(types),
            (got & TG_T_NUM) && (types & TG_T_INT)
                ? "a decimal number"
                : tg_json_type_name(tg_json_type(&p->j, i)));
    if (!(got & TG_T_NUM) || min > max)
        return TG_OK;
    if (tg_json_double(&p->j, i, &v) != TG_OK)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': not a finite number.", p->param);
    if (v < min)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': expected a value >= %g, but got "
                             "%g instead.",
                             p->param, min, v);
    if (v > max)
        return tg_parse_fail(p, "invalid_value",
                             "Invalid '%s': expected a value <= %g, but got "
                             "%g instead.",
                             p->param, max, v);
    return TG_OK;
}

int tg_parse_str(struct tg_parse *p, int i, struct tg_str *out)
{
    char *s;

    if (tg_json_str(&p->j, i, p->arena, &s, &out->len) != TG_OK)
        return tg_parse_nomem(p);
    out->ptr = s;
    return TG_OK;
}

int tg_parse_raw(struct tg_parse *p, int i, struct tg_str *out)
{
    const char *raw = tg_json_raw(&p->j, i, &out->len);

    out->ptr = tg_arena_strndup(p->arena, raw, out->len);
    return out->ptr ? TG_OK : tg_parse_nomem(p);
}

int tg_parse_need_str(struct tg_parse *p, int obj, const char *key,
                      struct tg_str *out)
{
    int v = tg_json_get(&p->j, obj, key);
    size_t base = tg_parse_push(p, ".%s", key);

    if (v < 0)
        return tg_parse_fail(p, "missing_required_parameter",
                             "Missing required parameter: '%s'.", p->param);
    if (tg_parse_check(p, v, TG_T_STR, 1, 0) != TG_OK)
        return TG_ERROR;
    tg_parse_pop(p, base);
    return tg_parse_str(p, v, out);
}

int tg_parse_member(const struct tg_json *j, int obj, const char *key)
{
    int v = tg_json_get(j, obj, key);

    return v >= 0 && tg_json_type(j, v) == TG_JSON_NULL ? -1 : v;
}

bool tg_chat_has_tool(const struct tg_chat *c, const struct tg_str *name)
{
    size_t i;

    for (i = 0; i < c->n_tools; i++)
        if (c->tools[i].name.len == name->len &&
            memcmp(c->tools[i].name.ptr, name->ptr, name->len) == 0)
            return true;
    return false;
}
