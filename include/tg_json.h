/*
 * tg_json.h - reading JSON into jsmn's tokens, strictly, and writing it to
 * evbuffers.
 *
 * Reading: tg_json_parse checks the text against RFC 8259 (jsmn alone
 * accepts some malformed input) and, in the same pass, writes the tokens
 * jsmn would write for it, which point into the caller's buffer; the tests
 * hold them to jsmn's own. Nothing is copied until the caller asks for a
 * decoded string. Accessors take a token index and return a status, so a
 * value of the wrong type is an error the caller reports, never a crash.
 *
 * Writing: tg_json_write_str appends a quoted, escaped JSON string; the rest
 * of a document is written with evbuffer_add_printf by the caller.
 */
#ifndef TG_JSON_H
#define TG_JSON_H

#define JSMN_HEADER
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct tg_arena;

/* Deepest nesting of arrays and objects accepted. */
#define TG_JSON_MAX_DEPTH 64

enum tg_json_type {
    TG_JSON_INVALID = 0,
    TG_JSON_OBJECT,
    TG_JSON_ARRAY,
    TG_JSON_STRING,
    TG_JSON_NUMBER,
    TG_JSON_TRUE,
    TG_JSON_FALSE,
    TG_JSON_NULL,
};

struct tg_json {
    const char *src; /* the text; not owned, must outlive the tokens */
    size_t len;
    jsmntok_t *tok; /* tok[0] is the root value */
    int n_tok;
};

struct tg_json_error {
    size_t offset;       /* byte offset of the problem in the text */
    const char *message; /* static text, e.g. "expected ':' after key" */
};

/*
 * Validates src[0..len) as one JSON value (surrounding whitespace allowed,
 * nothing else after it; strings must be valid UTF-8; depth at most
 * TG_JSON_MAX_DEPTH) and tokenizes it. Tokens are allocated from `arena`.
 * Returns TG_OK, or TG_ERROR with `err` filled, or TG_NOMEM.
 */
int tg_json_parse(struct tg_json *j, const char *src, size_t len,
                  struct tg_arena *arena, struct tg_json_error *err);

/* The type of token i (TG_JSON_INVALID when i is out of range). */
enum tg_json_type tg_json_type(const struct tg_json *j, int i);

/* A human name for a type: "object", "array", "string", "number",
 * "boolean", "null". */
const char *tg_json_type_name(enum tg_json_type type);

/* Index of the first token after the whole subtree rooted at i. */
int tg_json_skip(const struct tg_json *j, int i);

/*
 * In object `obj`, the index of the value of `key` (compared after decoding
 * escapes), or -1 when absent or when obj is not an object. When a key
 * repeats, the last one wins (as in most JSON libraries clients use).
 */
int tg_json_get(const struct tg_json *j, int obj, const char *key);

/* Iterates an object: *key_i and *val_i are set for the n-th member (0 based);
 * returns false past the end. O(total tokens) for a full walk if the caller
 * keeps `cursor` (start it at 0). */
bool tg_json_member(const struct tg_json *j, int obj, int *cursor, int *key_i,
                    int *val_i);

/* Iterates an array the same way: *elem_i is set; false past the end. */
bool tg_json_element(const struct tg_json *j, int arr, int *cursor,
                     int *elem_i);

/* Number of members (object) or elements (array); -1 for other types. */
int tg_json_size(const struct tg_json *j, int i);

/* True when string token i, decoded, equals the NUL-terminated `s`. */
bool tg_json_str_eq(const struct tg_json *j, int i, const char *s);

/*
 * Decodes string token i (escapes, \u surrogate pairs to UTF-8; a lone
 * surrogate becomes U+FFFD) into the arena. *out is NUL-terminated and
 * *out_len excludes the NUL (the text may contain NUL bytes from \u0000).
 * TG_ERROR when i is not a string, TG_NOMEM when the arena fails.
 */
int tg_json_str(const struct tg_json *j, int i, struct tg_arena *arena,
                char **out, size_t *out_len);

/* Raw bytes of any token (for a string: between the quotes, undecoded). */
const char *tg_json_raw(const struct tg_json *j, int i, size_t *len);

/*
 * Number accessors. tg_json_int64 accepts only integers written without a
 * fraction or exponent that fit in int64 ("1.0" and "1e2" are errors, as
 * OpenAI's API rejects a decimal where it wants an integer). tg_json_double
 * accepts any finite JSON number. TG_ERROR for another type or overflow.
 */
int tg_json_int64(const struct tg_json *j, int i, int64_t *out);
int tg_json_double(const struct tg_json *j, int i, double *out);

/* TG_ERROR unless token i is true or false. */
int tg_json_bool(const struct tg_json *j, int i, bool *out);

/*
 * Appends s[0..n) as a JSON string with quotes. Escapes ", \ and control
 * characters; passes valid UTF-8 through; replaces each byte of an invalid
 * UTF-8 sequence with \ufffd, so the output is always valid JSON.
 * Returns TG_OK or TG_NOMEM.
 */
int tg_json_write_str(struct evbuffer *out, const char *s, size_t n);

/* Writes v in decimal and a NUL into out (24 bytes hold any int64);
 * returns the length. */
size_t tg_format_int(char *out, int64_t v);

/* An integer as a JSON number. */
void tg_json_write_int(struct evbuffer *out, int64_t v);

/* A fixed-point amount (v in 1/unit) as a JSON number with `digits`
 * decimals: 1500000 micro-credits, unit 1e6, 6 digits -> 1.500000. */
void tg_json_write_fixed(struct evbuffer *out, int64_t v, int64_t unit,
                         int digits);

/*
 * A JSON text written piece by piece into a stack buffer and added to an
 * evbuffer in one append when the buffer fills or at tg_json_out_flush.
 * For the texts written on every call (the usage line, an answer's body),
 * where an evbuffer_add per piece cost more than the pieces. The pieces are
 * written as by the tg_json_write_* functions above; nothing reaches buf
 * before a flush.
 */
#define TG_JSON_OUT_SIZE 1024

struct tg_json_out {
    struct evbuffer *buf;
    size_t len;
    char bytes[TG_JSON_OUT_SIZE];
};

void tg_json_out_init(struct tg_json_out *o, struct evbuffer *buf);
void tg_json_out_raw(struct tg_json_out *o, const char *s, size_t n);
void tg_json_out_str(struct tg_json_out *o, const char *s, size_t n);
void tg_json_out_int(struct tg_json_out *o, int64_t v);
void tg_json_out_fixed(struct tg_json_out *o, int64_t v, int64_t unit,
                       int digits);
void tg_json_out_flush(struct tg_json_out *o);

/* Writes a string literal without its NUL. */
#define TG_OUT_LIT(o, lit) tg_json_out_raw((o), (lit), sizeof(lit) - 1)

/* {"detail": message}: the error body of the FastAPI-style surfaces. */
void tg_json_write_detail(struct evbuffer *out, const char *message);

/* Appends a string literal without its NUL. */
#define TG_ADD_LIT(buf, lit) evbuffer_add((buf), (lit), sizeof(lit) - 1)

/* Validates UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool tg_json_is_utf8(const char *s, size_t n);

#endif
