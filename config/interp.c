/*
 * interp.c - environment interpolation of scalar values.
 *
 * ${NAME} is the variable NAME and an error when it is unset, so that a
 * forgotten export fails the load instead of silently emptying a secret;
 * ${NAME:-default} is the shell's "unset or empty" default, literal text
 * up to the first "}"; $${ is a literal "${"; any other "$" is literal.
 * One walker both measures and writes: a first pass checks every reference
 * and sizes the result, a second pass fills the buffer.
 */
#include "cfg_internal.h"

#include <stdlib.h>
#include <string.h>

/* Longer names are rejected: no environment has them. */
#define NAME_MAX_LEN 255

#define BAD_NAME                                                             \
    "has a bad variable name (expected ${NAME} or ${NAME:-default}, NAME a " \
    "letter or \"_\" then letters, digits or \"_\")"
#define NESTED    "nests \"${\" in its default, which is literal text"
#define NOT_A_REF "is not ${NAME} or ${NAME:-default}"

struct interp {
    struct tg_cfg_ctx *ctx;
    const yaml_node_t *at;
    const char *what; /* the key whose value this is, for messages */
    char *out;        /* NULL while measuring */
    size_t cap;       /* what the first pass measured */
    size_t len;
    bool is_bad;
};

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* The bound keeps the buffer safe even if the environment changed
 * between the passes. */
static void emit(struct interp *it, const char *s, size_t n)
{
    if (it->out != NULL && it->len <= it->cap && n <= it->cap - it->len)
        memcpy(it->out + it->len, s, n);
    it->len += n;
}

/* The keys whose values are secrets: even a broken reference in one is
 * not quoted, as it may hold a pasted key. */
static bool is_secret(const char *what)
{
    static const char *const secrets[] = {"api_key",           "access_key_id",
                                          "secret_access_key", "session_token",
                                          "secret_token",      "keys"};
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(secrets); i++)
        if (strcmp(what, secrets[i]) == 0)
            return true;
    return false;
}

/* Reports only while measuring, so that each problem is said once. */
static void fail(struct interp *it, const char *why, const char *ref, size_t n)
{
    const char *quoted = "a reference";

    if (it->out == NULL) {
        if (!is_secret(it->what) || (n == 2 && ref[0] == '$'))
            quoted = tg_cfg_quote(it->ctx, ref, n);
        tg_cfg_error(it->ctx, it->at, "%s in %s %s", quoted, it->what, why);
    }
    it->is_bad = true;
}

/* The variable name[0..n), or NULL when unset (or too long to exist). */
static const char *lookup(const char *name, size_t n)
{
    char buf[NAME_MAX_LEN + 1];

    if (n > NAME_MAX_LEN)
        return NULL;
    memcpy(buf, name, n);
    buf[n] = '\0';
    return getenv(buf);
}

static void expand_name(struct interp *it, const char *name, size_t n)
{
    const char *value = lookup(name, n);
    int w = (int)n;

    if (value == NULL) {
        if (it->out == NULL)
            tg_cfg_error(it->ctx, it->at,
                         "environment variable %.*s is not set; write "
                         "${%.*s:-} to allow empty",
                         w, name, w, name);
        it->is_bad = true;
        return;
    }
    emit(it, value, strlen(value));
}

static void expand_default(struct interp *it, const char *name, size_t n,
                           const char *dflt, size_t dflt_len)
{
    const char *value = lookup(name, n);

    if (value != NULL && value[0] != '\0')
        emit(it, value, strlen(value));
    else
        emit(it, dflt, dflt_len);
}

/* ref[0..n) is one whole "${...}". */
static void expand_ref(struct interp *it, const char *ref, size_t n)
{
    const char *in = ref + 2;
    size_t in_len = n - 3, k = 0;

    while (k < in_len && is_name_char(in[k]))
        k++;
    if (k == 0 || !is_name_start(in[0]) || k > NAME_MAX_LEN) {
        fail(it, BAD_NAME, ref, n);
    } else if (k == in_len) {
        expand_name(it, in, k);
    } else if (in_len - k >= 2 && in[k] == ':' && in[k + 1] == '-') {
        /* Nesting is not supported: say so rather than emit "${B" */
        if (memmem(in + k + 2, in_len - k - 2, "${", 2) != NULL)
            fail(it, NESTED, ref, n);
        else
            expand_default(it, in, k, in + k + 2, in_len - k - 2);
    } else {
        fail(it, NOT_A_REF, ref, n);
    }
}

static void walk(struct interp *it, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *close;

        if (s[i] != '$') {
            emit(it, s + i, 1);
            i++;
        } else if (len - i >= 3 && s[i + 1] == '$' && s[i + 2] == '{') {
            emit(it, "${", 2);
            i += 3;
        } else if (len - i >= 2 && s[i + 1] == '{') {
            close = memchr(s + i + 2, '}', len - i - 2);
            if (close == NULL) {
                /* Quote only "${": the rest may be part of a secret. */
                fail(it, "is unterminated (expected \"}\")", "${", 2);
                return;
            }
            expand_ref(it, s + i, (size_t)(close - (s + i)) + 1);
            i = (size_t)(close - s) + 1;
        } else {
            emit(it, "$", 1);
            i++;
        }
    }
}

/*
 * Returns text[0..len) with its references expanded, NUL-terminated in
 * scratch memory, and its length in *out_len; NULL after reporting at `at`
 * every bad reference (naming `what`, the key), or when out of memory.
 */
char *tg_cfg_interpolate(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                         const char *what, const char *text, size_t len,
                         size_t *out_len)
{
    struct interp it = {.ctx = ctx, .at = at, .what = what};
    char *out;

    walk(&it, text, len);
    if (it.is_bad)
        return NULL;
    out = tg_cfg_scratch(ctx, it.len + 1);
    if (out == NULL)
        return NULL;
    memset(out, 0, it.len + 1);
    it.out = out;
    it.cap = it.len;
    it.len = 0;
    walk(&it, text, len);
    if (it.len > it.cap)
        it.len = it.cap;
    out[it.len] = '\0';
    *out_len = it.len;
    return out;
}
