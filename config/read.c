/*
 * read.c - walking libyaml mappings and reading typed scalar values.
 *
 * A section is read in two steps: tg_cfg_collect sorts a mapping's pairs
 * into one slot per known key (reporting unknown and duplicate keys), then
 * typed readers interpret each slot. The config field holds its default
 * before a reader runs, and a reader changes it only when the value is
 * good, so a bad value is reported and the load goes on. Values are
 * interpolated before they are interpreted; keys never are.
 */
#include "cfg_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

yaml_node_t *tg_cfg_node(const struct tg_cfg_ctx *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

/* How a message names what was found instead. */
const char *tg_cfg_kind(const yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (node->type == YAML_SEQUENCE_NODE)
        return "a sequence";
    return tg_cfg_is_null(node) ? "null" : "a scalar";
}

/* `key:`, `~` and `null` unquoted, as YAML's core schema has them. */
bool tg_cfg_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    size_t i;

    if (node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (i = 0; i < TG_ARRAY_LEN(nulls); i++)
        if (node->data.scalar.length == strlen(nulls[i]) &&
            memcmp(node->data.scalar.value, nulls[i],
                   node->data.scalar.length) == 0)
            return true;
    return false;
}

/* True for a mapping, and for null, which reads as an empty mapping. */
bool tg_cfg_expect_mapping(struct tg_cfg_ctx *ctx, const yaml_node_t *node,
                           const char *subject)
{
    if (node->type == YAML_MAPPING_NODE || tg_cfg_is_null(node))
        return true;
    tg_cfg_error(ctx, node, "%s must be a mapping, got %s", subject,
                 tg_cfg_kind(node));
    return false;
}

static const char *key_list(struct tg_cfg_ctx *ctx, const char *const *keys,
                            size_t n_keys, uint32_t allowed)
{
    const char *list = "";
    size_t i;

    for (i = 0; i < n_keys; i++)
        if (allowed & (UINT32_C(1) << i))
            list =
                tg_cfg_printf(ctx, "%s%s%s", list, *list ? ", " : "", keys[i]);
    return list;
}

static int find_key(const yaml_node_t *key, const char *const *keys,
                    size_t n_keys, uint32_t allowed)
{
    size_t i;

    for (i = 0; i < n_keys; i++)
        if ((allowed & (UINT32_C(1) << i)) &&
            strlen(keys[i]) == key->data.scalar.length &&
            memcmp(keys[i], key->data.scalar.value, key->data.scalar.length) ==
                0)
            return (int)i;
    return -1;
}

static bool is_scalar_key(struct tg_cfg_ctx *ctx, const yaml_node_t *key)
{
    if (key->type == YAML_SCALAR_NODE)
        return true;
    tg_cfg_error(ctx, key, "a key must be a scalar, got %s", tg_cfg_kind(key));
    return false;
}

static void report_unknown(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                           const char *where, const char *expected)
{
    tg_cfg_error(ctx, key, "unknown key %s %s (expected one of: %s)",
                 tg_cfg_quote(ctx, (const char *)key->data.scalar.value,
                              key->data.scalar.length),
                 where, expected);
}

static void report_duplicate(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                             const yaml_node_t *first, const char *where)
{
    tg_cfg_error(ctx, key, "duplicate key %s %s (first at %zu:%zu)",
                 tg_cfg_quote(ctx, (const char *)key->data.scalar.value,
                              key->data.scalar.length),
                 where, first->start_mark.line + 1,
                 first->start_mark.column + 1);
}

/*
 * Fills slots[i] with the pair whose key is keys[i], for the keys whose bit
 * is set in `allowed` (at most 32 keys); any other key is reported as
 * unknown "where" (e.g. "in team \"acme\""), a repeated one as a duplicate.
 * `map` is a mapping or null (see tg_cfg_expect_mapping).
 */
bool tg_cfg_collect(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                    const char *const *keys, size_t n_keys, uint32_t allowed,
                    const char *where, struct tg_cfg_slot *slots)
{
    const yaml_node_pair_t *pair;
    const char *expected = NULL;
    bool is_clean = true;

    memset(slots, 0, n_keys * sizeof(*slots));
    if (map->type != YAML_MAPPING_NODE)
        return true;
    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = tg_cfg_node(ctx, pair->key);
        int i;

        if (!is_scalar_key(ctx, key)) {
            is_clean = false;
            continue;
        }
        i = find_key(key, keys, n_keys, allowed);
        if (i < 0) {
            if (expected == NULL)
                expected = key_list(ctx, keys, n_keys, allowed);
            report_unknown(ctx, key, where, expected);
            is_clean = false;
        } else if (slots[i].key != NULL) {
            report_duplicate(ctx, key, slots[i].key, where);
            is_clean = false;
        } else {
            slots[i].key = key;
            slots[i].value = tg_cfg_node(ctx, pair->value);
        }
    }
    return is_clean;
}

static bool is_same_key(const yaml_node_t *a, const yaml_node_t *b)
{
    return a->data.scalar.length == b->data.scalar.length &&
           memcmp(a->data.scalar.value, b->data.scalar.value,
                  a->data.scalar.length) == 0;
}

struct keyed {
    const yaml_node_t *key;
    size_t index;
};

static int compare_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    size_t lx = x->key->data.scalar.length, ly = y->key->data.scalar.length;
    int c = memcmp(x->key->data.scalar.value, y->key->data.scalar.value,
                   lx < ly ? lx : ly);

    if (c != 0)
        return c;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * For a mapping of names (providers, models, teams): returns one flag per
 * pair, true for a pair to skip because its key is not a scalar or repeats
 * an earlier key (both reported); NULL when out of memory. Sorting keeps
 * this O(n log n) for configs with many teams.
 */
bool *tg_cfg_find_duplicates(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                             const char *where)
{
    size_t n =
        (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    struct keyed *sorted = tg_cfg_scratch(ctx, n * sizeof(*sorted));
    bool *skip = tg_cfg_scratch(ctx, n * sizeof(*skip));
    size_t i, first, n_sorted = 0;

    if (sorted == NULL || skip == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        const yaml_node_t *key =
            tg_cfg_node(ctx, map->data.mapping.pairs.start[i].key);

        skip[i] = !is_scalar_key(ctx, key);
        if (!skip[i])
            sorted[n_sorted++] = (struct keyed){key, i};
    }
    qsort(sorted, n_sorted, sizeof(*sorted), compare_keyed);
    for (i = 1, first = 0; i < n_sorted; i++) {
        if (is_same_key(sorted[first].key, sorted[i].key)) {
            report_duplicate(ctx, sorted[i].key, sorted[first].key, where);
            skip[sorted[i].index] = true;
        } else {
            first = i;
        }
    }
    return skip;
}

/*
 * The interpolated text of scalar `node` (scratch memory, NUL-terminated,
 * length in *len); null gives "". Reports and returns NULL when `node` is
 * not a scalar ("WHAT must be EXPECTED, got a mapping") or a reference in
 * it is bad.
 */
const char *tg_cfg_scalar_text(struct tg_cfg_ctx *ctx, const yaml_node_t *node,
                               const char *what, const char *expected,
                               size_t *len)
{
    if (node->type != YAML_SCALAR_NODE) {
        tg_cfg_error(ctx, node, "%s must be %s, got %s", what, expected,
                     tg_cfg_kind(node));
        return NULL;
    }
    if (tg_cfg_is_null(node)) {
        *len = 0;
        return "";
    }
    return tg_cfg_interpolate(ctx, node, what,
                              (const char *)node->data.scalar.value,
                              node->data.scalar.length, len);
}

static const char *slot_name(const struct tg_cfg_slot *s)
{
    return (const char *)s->key->data.scalar.value;
}

/* Strict decimal: an optional "-" then digits only, within int64_t. */
bool tg_cfg_parse_int(const char *text, size_t len, int64_t *out)
{
    bool is_negative = len > 0 && text[0] == '-';
    size_t i = is_negative ? 1 : 0;
    uint64_t limit = is_negative ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
    uint64_t v = 0;

    if (i == len)
        return false;
    for (; i < len; i++) {
        unsigned d = (unsigned char)text[i] - '0';

        if (d > 9 || v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = is_negative ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* A string value; null reads as "". NUL bytes (from "\0") are refused:
 * C strings would silently cut the value there. */
bool tg_cfg_read_string(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                        char **inout)
{
    size_t len;
    const char *text;

    if (s->key == NULL)
        return true;
    text = tg_cfg_scalar_text(ctx, s->value, slot_name(s), "a string", &len);
    if (text == NULL)
        return false;
    if (memchr(text, '\0', len) != NULL) {
        tg_cfg_error(ctx, s->value, "%s must not contain a NUL character",
                     slot_name(s));
        return false;
    }
    *inout = tg_cfg_strndup(ctx, text, len);
    return true;
}

/* A number or bool value's text; null is reported, as nothing to parse. */
static const char *value_text(struct tg_cfg_ctx *ctx,
                              const struct tg_cfg_slot *s, const char *expected,
                              size_t *len)
{
    if (tg_cfg_is_null(s->value)) {
        tg_cfg_error(ctx, s->value, "%s must be %s, got null", slot_name(s),
                     expected);
        return NULL;
    }
    return tg_cfg_scalar_text(ctx, s->value, slot_name(s), expected, len);
}

bool tg_cfg_read_int(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                     int64_t min, int64_t max, int64_t *inout)
{
    const char *expected, *text;
    size_t len;
    int64_t v;

    if (s->key == NULL)
        return true;
    expected =
        tg_cfg_printf(ctx, "an integer from %" PRId64 " to %" PRId64, min, max);
    text = value_text(ctx, s, expected, &len);
    if (text == NULL)
        return false;
    if (!tg_cfg_parse_int(text, len, &v) || v < min || v > max) {
        tg_cfg_error(ctx, s->value, "%s must be %s, got %s", slot_name(s),
                     expected, tg_cfg_quote(ctx, text, len));
        return false;
    }
    *inout = v;
    return true;
}

bool tg_cfg_read_int32(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                       int min, int max, int *inout)
{
    int64_t v = *inout;

    if (!tg_cfg_read_int(ctx, s, min, max, &v))
        return false;
    *inout = (int)v;
    return true;
}

/* Decimal notation: digits with an optional fraction and exponent; no
 * hex, inf, nan or spaces, which strtod alone would take. */
static bool is_decimal(const char *t, size_t len)
{
    size_t i = (len > 0 && t[0] == '-') ? 1 : 0, digits = 0;

    for (; i < len && t[i] >= '0' && t[i] <= '9'; i++)
        digits++;
    if (i < len && t[i] == '.')
        for (i++; i < len && t[i] >= '0' && t[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return false;
    if (i < len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < len && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i == len || t[i] < '0' || t[i] > '9')
            return false;
        while (i < len && t[i] >= '0' && t[i] <= '9')
            i++;
    }
    return i == len;
}

/* A price or an amount of credits: finite and >= 0. */
bool tg_cfg_read_number(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                        double *inout)
{
    static const char expected[] = "a number >= 0";
    const char *text;
    size_t len;
    double v;

    if (s->key == NULL)
        return true;
    text = value_text(ctx, s, expected, &len);
    if (text == NULL)
        return false;
    /* strtod follows the C locale, which tollgate never changes. */
    v = is_decimal(text, len) ? strtod(text, NULL) : NAN;
    if (!isfinite(v) || v < 0) {
        tg_cfg_error(ctx, s->value, "%s must be %s, got %s", slot_name(s),
                     expected, tg_cfg_quote(ctx, text, len));
        return false;
    }
    *inout = v + 0.0; /* turns -0 into 0 */
    return true;
}

bool tg_cfg_read_bool(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                      bool *inout)
{
    static const char expected[] = "true or false";
    const char *text;
    size_t len;

    if (s->key == NULL)
        return true;
    text = value_text(ctx, s, expected, &len);
    if (text == NULL)
        return false;
    if (len == 4 && memcmp(text, "true", 4) == 0) {
        *inout = true;
    } else if (len == 5 && memcmp(text, "false", 5) == 0) {
        *inout = false;
    } else {
        tg_cfg_error(ctx, s->value, "%s must be %s, got %s", slot_name(s),
                     expected, tg_cfg_quote(ctx, text, len));
        return false;
    }
    return true;
}

/*
 * The sequence in slot `s`, or NULL when the key is absent or the value is
 * not a sequence (reported: "KEY must be EXPECTED, got ...").
 */
const yaml_node_t *tg_cfg_sequence(struct tg_cfg_ctx *ctx,
                                   const struct tg_cfg_slot *s,
                                   const char *expected)
{
    if (s->key == NULL)
        return NULL;
    if (s->value->type == YAML_SEQUENCE_NODE)
        return s->value;
    tg_cfg_error(ctx, s->value, "%s must be %s, got %s", slot_name(s), expected,
                 tg_cfg_kind(s->value));
    return NULL;
}

/*
 * The name a key gives a provider, model or model group (`kind`), copied
 * into the config: 1 to TG_CFG_MAX_NAME bytes, no whitespace or control
 * characters, since names appear in URLs, logs and metric labels. A bad
 * name is reported but still returned, so references to it resolve and do
 * not add errors of their own.
 */
char *tg_cfg_name(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                  const char *kind)
{
    const char *s = (const char *)key->data.scalar.value;
    size_t len = key->data.scalar.length, i;
    bool is_good = len >= 1 && len <= TG_CFG_MAX_NAME;

    for (i = 0; i < len && is_good; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7F)
            is_good = false;
    if (!is_good)
        tg_cfg_error(ctx, key,
                     "%s name %s must be 1 to %d characters with no spaces "
                     "or control characters",
                     kind, tg_cfg_quote(ctx, s, len), TG_CFG_MAX_NAME);
    return tg_cfg_strndup(ctx, s, len);
}
