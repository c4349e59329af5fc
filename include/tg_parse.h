/*
 * tg_parse.h - checking a request body field by field, for every front.
 *
 * A front parses its JSON body with tg_parse_body, then checks each field
 * with tg_parse_check (type and range) and copies what it keeps into the
 * request's arena. p->param holds the path of the field being read
 * ("messages[2].content") so an error can name it. A tg_parse_* function
 * that returns TG_ERROR has recorded the error in p (status, code, param,
 * message); the front's handler answers it with tg_parse_answer, so the
 * parser itself knows nothing of HTTP and can be tested on its own.
 */
#ifndef TG_PARSE_H
#define TG_PARSE_H

#include "tg_canon.h"
#include "tg_json.h"

struct tg_arena;
struct tg_req;

/* What a field may be: a mask of these. */
enum {
    TG_T_NULL = 1 << 0,
    TG_T_BOOL = 1 << 1,
    TG_T_INT = 1 << 2, /* an integer without fraction or exponent */
    TG_T_NUM = 1 << 3, /* any number */
    TG_T_STR = 1 << 4,
    TG_T_ARR = 1 << 5,
    TG_T_OBJ = 1 << 6,
};

struct tg_parse {
    struct tg_arena *arena; /* where tokens and copied strings live */
    struct tg_json j;
    char param[96];
    /* The error, once a function has returned TG_ERROR. */
    int status;
    const char *code;
    char message[512];
};

/* Parses body[0..len) as JSON whose root is an object. The body must
 * outlive p; nothing kept from it is used after tg_parse_* returns. */
int tg_parse_body(struct tg_parse *p, struct tg_arena *arena, const char *body,
                  size_t len);

/* Parses the body of an HTTP request (tg_parse_body on its input). */
int tg_parse_request(struct tg_parse *p, struct tg_req *r);

/* Answers the recorded error on r (naming p->param) and finishes r. */
void tg_parse_answer(struct tg_parse *p, struct tg_req *r);

/* Records a 400 with `code` and the message, naming p->param. Returns
 * TG_ERROR. */
int tg_parse_fail(struct tg_parse *p, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets p->param (printf-style). */
void tg_parse_param(struct tg_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends to p->param (printf-style) and returns its length before, to
 * give back to tg_parse_pop. */
size_t tg_parse_push(struct tg_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tg_parse_pop(struct tg_parse *p, size_t base);

/* Checks token i is one of `types`; for numbers also min <= v <= max unless
 * min > max. */
int tg_parse_check(struct tg_parse *p, int i, unsigned types, double min,
                   double max);

/* The TG_T_* bit of token i (TG_T_INT | TG_T_NUM for integers). */
unsigned tg_parse_type(const struct tg_json *j, int i);

/* Records a 500 for a failed allocation. Returns TG_ERROR. */
int tg_parse_nomem(struct tg_parse *p);

/* Decodes string token i into the arena. */
int tg_parse_str(struct tg_parse *p, int i, struct tg_str *out);

/* Copies token i's raw JSON text into the arena. */
int tg_parse_raw(struct tg_parse *p, int i, struct tg_str *out);

/* Member `key` of object `obj` that must be a string; appends ".key" to
 * p->param while checking it, and restores p->param on success. */
int tg_parse_need_str(struct tg_parse *p, int obj, const char *key,
                      struct tg_str *out);

/* Member `key` of object `obj`, or -1 when absent or null: the fronts
 * read an optional field's null as its absence. */
int tg_parse_member(const struct tg_json *j, int obj, const char *key);

/* Whether the chat declares a tool of that name. */
bool tg_chat_has_tool(const struct tg_chat *c, const struct tg_str *name);

#endif
