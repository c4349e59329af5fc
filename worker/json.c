/*
 * json.c - strict JSON reading: an RFC 8259 parser that writes jsmn's
 * tokens, and the accessors over them (see tg_json.h).
 *
 * jsmn is fast but accepts text RFC 8259 forbids ({"a":1 "b":2}, 01, bad
 * UTF-8). So tg_json_parse walks the bytes once as a small state machine
 * with an explicit stack (no recursion), stopping at the first problem,
 * and writes as it goes the tokens jsmn would write for the same text
 * (type, offsets, child count, parent link): one pass where validating and
 * then running jsmn took two, each as costly as the other. The unit tests
 * and the fuzzer compare every token with jsmn's own. Every accessor checks
 * the token index it is given, so no index can read outside the tokens.
 */
#include "tg_json.h"

#include "tg.h"
#include "tg_arena.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Numbers at most this long are converted from a stack copy. */
#define NUMBER_BUF_SIZE 64

/* Tokens first reserved for a document, and at most this many. */
#define FIRST_TOKENS_MAX 256

/* ---- parsing ------------------------------------------------------------ */

enum scan_state {
    SCAN_VALUE, /* a value must start here */
    SCAN_KEY,   /* a member's key must start here */
    SCAN_AFTER, /* a value just ended */
    SCAN_DONE,
};

struct scan {
    const unsigned char *s;
    size_t len;
    size_t pos;
    enum scan_state state;
    struct tg_arena *arena;
    jsmntok_t *tok; /* written so far: n_tok of cap */
    int n_tok;
    int cap;
    int key; /* the last key's token: the parent of the value after it */
    int depth;
    int open[TG_JSON_MAX_DEPTH]; /* the token of each open container */
    size_t err_at;
    const char *message;
    bool nomem;
};

static bool scan_fail(struct scan *sc, size_t at, const char *message)
{
    sc->err_at = at;
    sc->message = message;
    return false;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static void skip_ws(struct scan *sc)
{
    while (sc->pos < sc->len && is_ws(sc->s[sc->pos]))
        sc->pos++;
}

static bool at_end(const struct scan *sc)
{
    return sc->pos == sc->len;
}

/* ---- tokens ------------------------------------------------------------- */

/* Doubles the token array in the arena; the old one is left to the arena. */
static bool grow(struct scan *sc)
{
    size_t cap = sc->cap == 0 ? sc->len / 4 + 8 : (size_t)sc->cap * 2;
    jsmntok_t *tok;

    if (sc->cap == 0 && cap > FIRST_TOKENS_MAX)
        cap = FIRST_TOKENS_MAX;
    /* A token takes two bytes of text at least (a value and its comma),
     * so a text under INT_MAX bytes never needs INT_MAX tokens. */
    if (cap > INT_MAX)
        cap = INT_MAX;
    tok = tg_arena_alloc(sc->arena, cap * sizeof(*tok));
    if (tok == NULL) {
        sc->nomem = true;
        return scan_fail(sc, sc->pos, "out of memory");
    }
    if (sc->n_tok > 0)
        memcpy(tok, sc->tok, (size_t)sc->n_tok * sizeof(*tok));
    sc->tok = tok;
    sc->cap = (int)cap;
    return true;
}

/*
 * A new token whose parent is `parent` (-1 for the root), counted among
 * the parent's children as jsmn counts them. Its end is set when it ends.
 */
static jsmntok_t *emit(struct scan *sc, jsmntype_t type, size_t start,
                       int parent)
{
    jsmntok_t *t;

    if (sc->n_tok == sc->cap && !grow(sc))
        return NULL;
    if (parent >= 0)
        sc->tok[parent].size++;
    t = &sc->tok[sc->n_tok++];
    t->type = type;
    t->start = (int)start;
    t->end = -1;
    t->size = 0;
    t->parent = parent;
    return t;
}

/* jsmn makes a value in an object the child of its key; in an array, of
 * the array. */
static int value_parent(const struct scan *sc)
{
    int up;

    if (sc->depth == 0)
        return -1;
    up = sc->open[sc->depth - 1];
    return sc->tok[up].type == JSMN_OBJECT ? sc->key : up;
}

/* ---- values ------------------------------------------------------------- */

/* Value of 4 hex digits at p, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    int k;

    for (k = 0; k < 4; k++) {
        char c = p[k];

        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v = v * 16 + (c - 'A' + 10);
        else
            return -1;
    }
    return v;
}

/*
 * Length of the well-formed UTF-8 sequence at s (n >= 1 bytes available),
 * or 0. The second-byte ranges are Table 3-7 of the Unicode Standard: they
 * exclude overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF)
 * and code points past U+10FFFF (F4 90.., F5..FF).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len, k;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xC2)
        return 0;
    if (s[0] < 0xE0) {
        len = 2;
    } else if (s[0] < 0xF0) {
        len = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80;
        hi = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] < 0xF5) {
        len = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return len;
}

bool tg_json_is_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < n) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_seq_len(u + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Length of the escape at s[i] == '\\' (2 or 6), or 0 after failing. */
static size_t scan_escape(struct scan *sc, size_t i)
{
    if (i + 1 >= sc->len)
        return scan_fail(sc, sc->len, "unterminated string");
    switch (sc->s[i + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't': return 2;
    case 'u':
        if (sc->len - i >= 6 && hex4((const char *)sc->s + i + 2) >= 0)
            return 6;
        return scan_fail(sc, i, "invalid \\u escape in string");
    default: return scan_fail(sc, i, "invalid escape in string");
    }
}

/* True for a byte that stands for itself in a string: printable ASCII but
 * the quote and the backslash. The common case, tested first. */
static bool is_plain(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* A string starting at the quote at sc->pos; leaves pos past the end. */
static bool scan_string(struct scan *sc)
{
    size_t i = sc->pos + 1, k;

    while (i < sc->len) {
        unsigned char c = sc->s[i];

        if (is_plain(c)) {
            i++;
            continue;
        }
        if (c == '"') {
            sc->pos = i + 1;
            return true;
        }
        if (c == '\\')
            k = scan_escape(sc, i);
        else if (c < 0x20)
            return scan_fail(sc, i, "control character in string");
        else if ((k = utf8_seq_len(sc->s + i, sc->len - i)) == 0)
            return scan_fail(sc, i, "invalid UTF-8 in string");
        if (k == 0)
            return false;
        i += k;
    }
    return scan_fail(sc, sc->len, "unterminated string");
}

/* A string token: jsmn's offsets exclude the quotes. */
static bool scan_string_token(struct scan *sc, int parent)
{
    jsmntok_t *t = emit(sc, JSMN_STRING, sc->pos + 1, parent);

    if (t == NULL || !scan_string(sc))
        return false;
    t->end = (int)sc->pos - 1;
    return true;
}

static size_t skip_digits(const struct scan *sc, size_t i)
{
    while (i < sc->len && is_digit(sc->s[i]))
        i++;
    return i;
}

/* number = [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ]
 *          [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]   (RFC 8259, 6) */
static bool scan_number(struct scan *sc)
{
    size_t i = sc->pos;

    if (sc->s[i] == '-')
        i++;
    if (i == sc->len || !is_digit(sc->s[i]))
        return scan_fail(sc, i, "expected a digit after '-'");
    if (sc->s[i] == '0' && i + 1 < sc->len && is_digit(sc->s[i + 1]))
        return scan_fail(sc, i, "leading zero in number");
    i = skip_digits(sc, i);
    if (i < sc->len && sc->s[i] == '.') {
        i++;
        if (i == sc->len || !is_digit(sc->s[i]))
            return scan_fail(sc, i, "expected a digit after '.'");
        i = skip_digits(sc, i);
    }
    if (i < sc->len && (sc->s[i] == 'e' || sc->s[i] == 'E')) {
        i++;
        if (i < sc->len && (sc->s[i] == '+' || sc->s[i] == '-'))
            i++;
        if (i == sc->len || !is_digit(sc->s[i]))
            return scan_fail(sc, i, "expected a digit in exponent");
        i = skip_digits(sc, i);
    }
    sc->pos = i;
    return true;
}

static bool scan_literal(struct scan *sc, const char *word)
{
    size_t n = strlen(word);

    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return scan_fail(sc, sc->pos, "invalid literal");
    sc->pos += n;
    return true;
}

/* A number or a literal: a primitive token, as jsmn makes for both. */
static bool scan_primitive(struct scan *sc, int parent)
{
    jsmntok_t *t = emit(sc, JSMN_PRIMITIVE, sc->pos, parent);
    bool ok;

    if (t == NULL)
        return false;
    switch (sc->s[sc->pos]) {
    case 't': ok = scan_literal(sc, "true"); break;
    case 'f': ok = scan_literal(sc, "false"); break;
    case 'n': ok = scan_literal(sc, "null"); break;
    default: ok = scan_number(sc); break;
    }
    t->end = (int)sc->pos;
    return ok;
}

/* Ends the innermost open container at sc->pos (its closing byte). */
static void scan_close(struct scan *sc)
{
    sc->tok[sc->open[--sc->depth]].end = (int)sc->pos + 1;
    sc->pos++;
    sc->state = SCAN_AFTER;
}

/* '{' or '[' at sc->pos; an empty container closes at once. */
static bool scan_open(struct scan *sc, unsigned char open, int parent)
{
    jsmntok_t *t;

    if (sc->depth == TG_JSON_MAX_DEPTH)
        return scan_fail(sc, sc->pos, "nesting too deep");
    t = emit(sc, open == '{' ? JSMN_OBJECT : JSMN_ARRAY, sc->pos, parent);
    if (t == NULL)
        return false;
    sc->open[sc->depth++] = sc->n_tok - 1;
    sc->pos++;
    skip_ws(sc);
    if (!at_end(sc) && sc->s[sc->pos] == (open == '{' ? '}' : ']'))
        scan_close(sc);
    else
        sc->state = open == '{' ? SCAN_KEY : SCAN_VALUE;
    return true;
}

static bool scan_value(struct scan *sc)
{
    unsigned char c;
    int parent = value_parent(sc);

    if (at_end(sc))
        return scan_fail(sc, sc->pos, "unexpected end of input");
    c = sc->s[sc->pos];
    sc->state = SCAN_AFTER;
    switch (c) {
    case '{':
    case '[': return scan_open(sc, c, parent);
    case '"': return scan_string_token(sc, parent);
    case 't':
    case 'f':
    case 'n':
    case '-': return scan_primitive(sc, parent);
    default:
        if (is_digit(c))
            return scan_primitive(sc, parent);
        return scan_fail(sc, sc->pos, "expected a value");
    }
}

static bool scan_key(struct scan *sc)
{
    if (at_end(sc))
        return scan_fail(sc, sc->pos, "unexpected end of input");
    if (sc->s[sc->pos] != '"')
        return scan_fail(sc, sc->pos, "expected a string key");
    sc->key = sc->n_tok;
    if (!scan_string_token(sc, sc->open[sc->depth - 1]))
        return false;
    skip_ws(sc);
    if (at_end(sc))
        return scan_fail(sc, sc->pos, "unexpected end of input");
    if (sc->s[sc->pos] != ':')
        return scan_fail(sc, sc->pos, "expected ':' after key");
    sc->pos++;
    skip_ws(sc);
    sc->state = SCAN_VALUE;
    return true;
}

/* After a value: the end of the document, a ',' or the container's close. */
static bool scan_after(struct scan *sc)
{
    bool in_object;
    unsigned char c;

    skip_ws(sc);
    if (sc->depth == 0) {
        if (!at_end(sc))
            return scan_fail(sc, sc->pos,
                             "unexpected data after the root value");
        sc->state = SCAN_DONE;
        return true;
    }
    if (at_end(sc))
        return scan_fail(sc, sc->pos, "unexpected end of input");
    in_object = sc->tok[sc->open[sc->depth - 1]].type == JSMN_OBJECT;
    c = sc->s[sc->pos];
    if (c == (in_object ? '}' : ']')) {
        scan_close(sc);
        return true;
    }
    if (c != ',')
        return scan_fail(sc, sc->pos,
                         in_object ? "expected ',' or '}' in object"
                                   : "expected ',' or ']' in array");
    sc->pos++;
    skip_ws(sc);
    if (!at_end(sc) && sc->s[sc->pos] == (in_object ? '}' : ']'))
        return scan_fail(sc, sc->pos,
                         in_object ? "trailing comma in object"
                                   : "trailing comma in array");
    sc->state = in_object ? SCAN_KEY : SCAN_VALUE;
    return true;
}

static bool scan_document(struct scan *sc)
{
    bool ok = true;

    skip_ws(sc);
    if (at_end(sc))
        return scan_fail(sc, sc->pos, "empty document");
    sc->state = SCAN_VALUE;
    while (ok && sc->state != SCAN_DONE) {
        if (sc->state == SCAN_VALUE)
            ok = scan_value(sc);
        else if (sc->state == SCAN_KEY)
            ok = scan_key(sc);
        else
            ok = scan_after(sc);
    }
    return ok;
}

int tg_json_parse(struct tg_json *j, const char *src, size_t len,
                  struct tg_arena *arena, struct tg_json_error *err)
{
    struct scan sc = {
        .s = (const unsigned char *)src, .len = len, .arena = arena};

    j->src = src;
    j->len = len;
    j->tok = NULL;
    j->n_tok = 0;
    /* jsmn's tokens keep offsets in int. */
    if (len > INT_MAX) {
        sc.err_at = 0;
        sc.message = "document too large";
    } else if (scan_document(&sc)) {
        j->tok = sc.tok;
        j->n_tok = sc.n_tok;
        return TG_OK;
    }
    if (sc.nomem)
        return TG_NOMEM;
    if (err != NULL) {
        err->offset = sc.err_at;
        err->message = sc.message;
    }
    return TG_ERROR;
}

/* ---- navigation --------------------------------------------------------- */

static const jsmntok_t *token_at(const struct tg_json *j, int i)
{
    if (j == NULL || j->tok == NULL || i < 0 || i >= j->n_tok)
        return NULL;
    return &j->tok[i];
}

enum tg_json_type tg_json_type(const struct tg_json *j, int i)
{
    const jsmntok_t *t = token_at(j, i);

    if (t == NULL)
        return TG_JSON_INVALID;
    switch (t->type) {
    case JSMN_OBJECT: return TG_JSON_OBJECT;
    case JSMN_ARRAY: return TG_JSON_ARRAY;
    case JSMN_STRING: return TG_JSON_STRING;
    case JSMN_PRIMITIVE: break;
    default: return TG_JSON_INVALID;
    }
    if (t->end <= t->start)
        return TG_JSON_INVALID;
    switch (j->src[t->start]) {
    case 't': return TG_JSON_TRUE;
    case 'f': return TG_JSON_FALSE;
    case 'n': return TG_JSON_NULL;
    default: return TG_JSON_NUMBER;
    }
}

const char *tg_json_type_name(enum tg_json_type type)
{
    switch (type) {
    case TG_JSON_OBJECT: return "object";
    case TG_JSON_ARRAY: return "array";
    case TG_JSON_STRING: return "string";
    case TG_JSON_NUMBER: return "number";
    case TG_JSON_TRUE:
    case TG_JSON_FALSE: return "boolean";
    case TG_JSON_NULL: return "null";
    default: return "invalid";
    }
}

/*
 * Tokens are in document order and each token's size counts its direct
 * children (a key has one: its value), so the subtree ends where the
 * children still owed drop to zero. -1 when i is out of range.
 */
int tg_json_skip(const struct tg_json *j, int i)
{
    long owed = 1;

    if (token_at(j, i) == NULL)
        return -1;
    while (owed > 0 && i < j->n_tok) {
        owed += j->tok[i].size - 1;
        i++;
    }
    return i;
}

/*
 * The cursor holds the index of the next key (0: the first one). A child
 * of `obj` is recognised by its parent link, so a stale or foreign cursor
 * ends the walk instead of reading elsewhere.
 */
bool tg_json_member(const struct tg_json *j, int obj, int *cursor, int *key_i,
                    int *val_i)
{
    int k;

    if (tg_json_type(j, obj) != TG_JSON_OBJECT)
        return false;
    k = *cursor == 0 ? obj + 1 : *cursor;
    if (k <= obj || k >= j->n_tok - 1 || j->tok[k].parent != obj)
        return false;
    *key_i = k;
    *val_i = k + 1;
    *cursor = tg_json_skip(j, k + 1);
    return true;
}

bool tg_json_element(const struct tg_json *j, int arr, int *cursor, int *elem_i)
{
    int k;

    if (tg_json_type(j, arr) != TG_JSON_ARRAY)
        return false;
    k = *cursor == 0 ? arr + 1 : *cursor;
    if (k <= arr || k >= j->n_tok || j->tok[k].parent != arr)
        return false;
    *elem_i = k;
    *cursor = tg_json_skip(j, k);
    return true;
}

int tg_json_size(const struct tg_json *j, int i)
{
    enum tg_json_type type = tg_json_type(j, i);

    if (type != TG_JSON_OBJECT && type != TG_JSON_ARRAY)
        return -1;
    return j->tok[i].size;
}

const char *tg_json_raw(const struct tg_json *j, int i, size_t *len)
{
    const jsmntok_t *t = token_at(j, i);

    if (t == NULL || t->start < 0 || t->end < t->start) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)(t->end - t->start);
    return j->src + t->start;
}

/* ---- strings ------------------------------------------------------------ */

static size_t utf8_encode(long cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool is_high_surrogate(long cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static bool is_low_surrogate(long cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* \uXXXX at raw[*pos], joined with a following low surrogate escape when
 * it is a high one. The validator guarantees the 4 hex digits; a lone
 * surrogate cannot be encoded in UTF-8 and becomes U+FFFD. */
static size_t decode_unicode(const char *raw, size_t len, size_t *pos,
                             char *buf)
{
    size_t at = *pos;
    long cp = len - at >= 6 ? hex4(raw + at + 2) : -1;
    long low;

    if (cp < 0) {
        *pos = at + 1;
        buf[0] = '\\';
        return 1;
    }
    *pos = at + 6;
    if (is_high_surrogate(cp) && len - at >= 12 && raw[at + 6] == '\\' &&
        raw[at + 7] == 'u') {
        low = hex4(raw + at + 8);
        if (is_low_surrogate(low)) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            *pos = at + 12;
        }
    }
    if (is_high_surrogate(cp) || is_low_surrogate(cp))
        cp = 0xFFFD;
    return utf8_encode(cp, buf);
}

static int simple_escape(char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/': return c;
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    default: return -1;
    }
}

/*
 * The next piece of the decoded string raw[*pos..len): a run of bytes up
 * to the next backslash, pointed to in place, or one escape decoded into
 * buf (4 bytes). Sets *piece, advances *pos and returns the piece's length.
 * A decoded piece is never longer than the raw text it came from.
 */
static size_t next_piece(const char *raw, size_t len, size_t *pos, char *buf,
                         const char **piece)
{
    size_t at = *pos;
    const char *backslash;
    int c;

    if (raw[at] != '\\') {
        backslash = memchr(raw + at, '\\', len - at);
        *pos = backslash != NULL ? (size_t)(backslash - raw) : len;
        *piece = raw + at;
        return *pos - at;
    }
    *piece = buf;
    if (at + 1 < len && raw[at + 1] == 'u')
        return decode_unicode(raw, len, pos, buf);
    c = at + 1 < len ? simple_escape(raw[at + 1]) : -1;
    *pos = c < 0 ? at + 1 : at + 2;
    buf[0] = c < 0 ? '\\' : (char)c;
    return 1;
}

int tg_json_str(const struct tg_json *j, int i, struct tg_arena *arena,
                char **out, size_t *out_len)
{
    const char *raw, *piece;
    char buf[4], *dst;
    size_t len, pos = 0, n = 0, k;

    if (tg_json_type(j, i) != TG_JSON_STRING)
        return TG_ERROR;
    raw = tg_json_raw(j, i, &len);
    dst = tg_arena_alloc(arena, len + 1);
    if (dst == NULL)
        return TG_NOMEM;
    while (pos < len) {
        k = next_piece(raw, len, &pos, buf, &piece);
        memcpy(dst + n, piece, k);
        n += k;
    }
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    return TG_OK;
}

/* Compares piece by piece, so a key without escapes costs one memcmp. */
/* An escape makes a string's raw text longer than its value, so a raw
 * text as long as s without a backslash is compared as it is: the common
 * case of a key lookup, which runs for every member of every object. */
static bool decoded_equals(const char *raw, size_t len, const char *s,
                           size_t s_len)
{
    const char *piece;
    char buf[4];
    size_t pos = 0, seen = 0, k;

    if (len < s_len)
        return false;
    if (memchr(raw, '\\', len) == NULL)
        return len == s_len && memcmp(raw, s, len) == 0;
    while (pos < len) {
        k = next_piece(raw, len, &pos, buf, &piece);
        if (k > s_len - seen || memcmp(piece, s + seen, k) != 0)
            return false;
        seen += k;
    }
    return seen == s_len;
}

static bool str_eq_n(const struct tg_json *j, int i, const char *s,
                     size_t s_len)
{
    const char *raw;
    size_t len;

    if (tg_json_type(j, i) != TG_JSON_STRING)
        return false;
    raw = tg_json_raw(j, i, &len);
    return decoded_equals(raw, len, s, s_len);
}

bool tg_json_str_eq(const struct tg_json *j, int i, const char *s)
{
    return s != NULL && str_eq_n(j, i, s, strlen(s));
}

/* Whether a key's raw text decodes to s. Most keys differ in length from
 * s, or in their first byte, which is itself unless it starts an escape;
 * only a key that could still match is decoded. */
static bool key_is(const char *raw, size_t len, const char *s, size_t s_len)
{
    if (len < s_len)
        return false;
    if (len > 0 && raw[0] != '\\' && (s_len == 0 || raw[0] != s[0]))
        return false;
    if (len == s_len && memcmp(raw, s, len) != 0)
        return false;
    return decoded_equals(raw, len, s, s_len);
}

/* The token after member value v: most values are strings or numbers,
 * which own no children. */
static int after_value(const struct tg_json *j, int v)
{
    return j->tok[v].size == 0 ? v + 1 : tg_json_skip(j, v);
}

/*
 * Scans every member, since the last of duplicate keys wins. This runs for
 * every field a surface reads from every body, so it walks the tokens
 * directly; tg_json_member's checks hold here by construction (obj is an
 * object, and each k is a child of obj below n_tok - 1).
 */
int tg_json_get(const struct tg_json *j, int obj, const char *key)
{
    const jsmntok_t *t;
    int k, found = -1;
    size_t key_len;

    if (key == NULL || tg_json_type(j, obj) != TG_JSON_OBJECT)
        return -1;
    key_len = strlen(key);
    for (k = obj + 1; k < j->n_tok - 1 && j->tok[k].parent == obj;
         k = after_value(j, k + 1)) {
        t = &j->tok[k];
        if (t->type == JSMN_STRING &&
            key_is(j->src + t->start, (size_t)(t->end - t->start), key,
                   key_len))
            found = k + 1;
    }
    return found;
}

/* ---- numbers and booleans ----------------------------------------------- */

/* Accumulates the magnitude in uint64 so that INT64_MIN, whose magnitude
 * INT64_MAX cannot hold, parses too. */
int tg_json_int64(const struct tg_json *j, int i, int64_t *out)
{
    const char *p;
    size_t len, k;
    uint64_t mag = 0, limit;
    bool negative;

    if (tg_json_type(j, i) != TG_JSON_NUMBER)
        return TG_ERROR;
    p = tg_json_raw(j, i, &len);
    negative = p[0] == '-';
    limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    k = negative ? 1 : 0;
    if (k == len)
        return TG_ERROR;
    for (; k < len; k++) {
        unsigned int digit = (unsigned int)(p[k] - '0');

        if (digit > 9) /* '.', 'e' or 'E' */
            return TG_ERROR;
        if (mag > (limit - digit) / 10)
            return TG_ERROR;
        mag = mag * 10 + digit;
    }
    if (!negative)
        *out = (int64_t)mag;
    else
        *out = mag == limit ? INT64_MIN : -(int64_t)mag;
    return TG_OK;
}

/*
 * strtod needs a NUL after the number, which the text may not have. A long
 * number (JSON allows any count of digits) is copied to the heap, as there
 * is no arena here. strtod follows LC_NUMERIC; tollgate never calls
 * setlocale, so the decimal point is '.'.
 */
int tg_json_double(const struct tg_json *j, int i, double *out)
{
    char local[NUMBER_BUF_SIZE], *copy = local;
    const char *p;
    size_t len;
    double v;

    if (tg_json_type(j, i) != TG_JSON_NUMBER)
        return TG_ERROR;
    p = tg_json_raw(j, i, &len);
    if (len >= sizeof(local)) {
        copy = malloc(len + 1);
        if (copy == NULL)
            return TG_NOMEM;
    }
    memcpy(copy, p, len);
    copy[len] = '\0';
    v = strtod(copy, NULL);
    if (copy != local)
        free(copy);
    if (!isfinite(v))
        return TG_ERROR;
    *out = v;
    return TG_OK;
}

int tg_json_bool(const struct tg_json *j, int i, bool *out)
{
    switch (tg_json_type(j, i)) {
    case TG_JSON_TRUE: *out = true; return TG_OK;
    case TG_JSON_FALSE: *out = false; return TG_OK;
    default: return TG_ERROR;
    }
}
