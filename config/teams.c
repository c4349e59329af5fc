/*
 * teams.c - the `teams` section: who may call, how much, and which models.
 *
 * Keys are stored only as "sha256:<hex>": a key written in plain text is
 * hashed here (with a warning), so the config never holds a usable key and
 * authentication compares hashes. A key hash belongs to exactly one team;
 * a repeat across teams is found by sorting every hash once. Allow-lists
 * keep the difference between "omitted" (NULL: everything) and "[]" (an
 * empty, non-NULL list: nothing). No message ever shows a key.
 */
#include "cfg_internal.h"

#include <stdlib.h>
#include <string.h>

enum {
    T_KEYS,
    T_RPM,
    T_TPM,
    T_CREDITS,
    T_MAX_BUDGET,
    T_MODEL_GROUPS,
    T_MODELS,
    T_MAX_TOKENS,
    T_COUNT
};

const char *const tg_cfg_team_keys[T_COUNT] = {
    "keys",           "rpm",          "tpm",    "credits",
    "max_budget_usd", "model_groups", "models", "max_tokens"};
const size_t tg_cfg_team_keys_n = T_COUNT;

#define HASH_PREFIX     "sha256:"
#define HASH_PREFIX_LEN 7
#define MAX_RPM         INT64_C(1000000000)
#define MAX_TPM         INT64_C(1000000000000)
#define MAX_MAX_TOKENS  INT64_C(1000000)

/* A key hash and where it came from, for the check across teams. */
struct key_ref {
    const char *hash;
    const struct tg_team *team;
    const yaml_node_t *at;
    size_t seq;
};

struct key_refs {
    struct key_ref *items; /* malloc'ed, freed when the section is done */
    size_t n;
    size_t cap;
};

static bool is_team_name(const char *s, size_t len)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t i;

    if (len < 1 || len > TG_CFG_MAX_TEAM_NAME)
        return false;
    for (i = 0; i < len; i++)
        if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
            return false;
    return true;
}

/* Team names become metric labels, hence the narrow alphabet. */
static char *team_name(struct tg_cfg_ctx *ctx, const yaml_node_t *key)
{
    const char *s = (const char *)key->data.scalar.value;
    size_t len = key->data.scalar.length;

    if (!is_team_name(s, len))
        tg_cfg_error(ctx, key,
                     "team name %s must be 1 to %d characters of A-Z, a-z, "
                     "0-9, \".\", \"_\" and \"-\"",
                     tg_cfg_quote(ctx, s, len), TG_CFG_MAX_TEAM_NAME);
    return tg_cfg_strndup(ctx, s, len);
}

static bool is_hex(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static bool is_hashed(const char *key, size_t len)
{
    return len == TG_KEY_HASH_LEN &&
           memcmp(key, HASH_PREFIX, HASH_PREFIX_LEN) == 0 &&
           is_hex(key + HASH_PREFIX_LEN, TG_SHA256_HEX_LEN);
}

static void warn_plain(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                       const char *subject, const char *key, size_t len)
{
    if (len > HASH_PREFIX_LEN && memcmp(key, HASH_PREFIX, HASH_PREFIX_LEN) == 0)
        tg_cfg_warn(ctx, at,
                    "%s has a key that starts with \"sha256:\" but is not "
                    "64 hex digits; it is used as a plain-text key",
                    subject);
    else
        tg_cfg_warn(ctx, at,
                    "%s has a plain-text key; store the output of "
                    "`tollgate hash-key` instead",
                    subject);
}

/* The stored form of one key: lowercased hash, or the hash of a plain key. */
static char *hash_key(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                      const char *subject, const char *key, size_t len)
{
    char *hash = tg_arena_alloc(ctx->arena, TG_KEY_HASH_LEN + 1);
    size_t i;

    if (hash == NULL) {
        tg_cfg_out_of_memory(ctx);
        return NULL;
    }
    if (is_hashed(key, len)) {
        for (i = 0; i < TG_KEY_HASH_LEN; i++)
            hash[i] = (key[i] >= 'A' && key[i] <= 'F') ? key[i] + 32 : key[i];
        hash[TG_KEY_HASH_LEN] = '\0';
        return hash;
    }
    warn_plain(ctx, at, subject, key, len);
    tg_cfg_hash_key(key, len, hash);
    if (hash[0] != '\0')
        return hash;
    tg_cfg_error(ctx, at, "%s: cannot hash a key (SHA-256 failed)", subject);
    return NULL;
}

static bool reserve_refs(struct key_refs *refs, size_t extra)
{
    size_t cap = refs->cap ? refs->cap : 16;
    struct key_ref *items;

    while (cap - refs->n < extra)
        cap *= 2;
    if (cap == refs->cap)
        return true;
    items = realloc(refs->items, cap * sizeof(*items));
    if (items == NULL)
        return false;
    refs->items = items;
    refs->cap = cap;
    return true;
}

static void add_ref(struct key_refs *refs, const char *hash,
                    const struct tg_team *team, const yaml_node_t *at)
{
    struct key_ref *r = &refs->items[refs->n];

    r->hash = hash;
    r->team = team;
    r->at = at;
    r->seq = refs->n++;
}

/* Reads the key list of team t, or with t NULL the admin_keys, into
 * *hashes / *n_keys, and notes each in refs for check_unique_keys. */
static void read_keys(struct tg_cfg_ctx *ctx, const struct tg_team *t,
                      char ***hashes, size_t *n_keys,
                      const struct tg_cfg_slot *s, const char *subject,
                      struct key_refs *refs)
{
    const yaml_node_t *seq = tg_cfg_sequence(ctx, s, "a sequence of keys");
    size_t n, i, len;

    if (seq == NULL)
        return;
    n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    *hashes = tg_cfg_calloc(ctx, n ? n : 1, sizeof(**hashes));
    if (*hashes == NULL || !reserve_refs(refs, n)) {
        tg_cfg_out_of_memory(ctx);
        return;
    }
    for (i = 0; i < n; i++) {
        const yaml_node_t *item =
            tg_cfg_node(ctx, seq->data.sequence.items.start[i]);
        const char *key =
            tg_cfg_scalar_text(ctx, item, "keys", "strings", &len);
        char *hash;

        if (key == NULL)
            continue;
        if (len == 0) {
            tg_cfg_error(ctx, item, "%s has an empty key", subject);
            continue;
        }
        hash = hash_key(ctx, item, subject, key, len);
        if (hash == NULL)
            continue;
        (*hashes)[(*n_keys)++] = hash;
        add_ref(refs, hash, t, item);
    }
}

/* The sequence of an allow-list and its length; NULL when omitted. */
static const yaml_node_t *allow_list(struct tg_cfg_ctx *ctx,
                                     const struct tg_cfg_slot *s,
                                     const char *expected, size_t *n)
{
    const yaml_node_t *seq = tg_cfg_sequence(ctx, s, expected);

    if (seq != NULL)
        *n = (size_t)(seq->data.sequence.items.top -
                      seq->data.sequence.items.start);
    return seq;
}

/* Item i of an allow-list: its name, or NULL when it is not a scalar. */
static const char *allow_item(struct tg_cfg_ctx *ctx,
                              const struct tg_cfg_slot *s,
                              const yaml_node_t *seq, size_t i,
                              const char *expected, const yaml_node_t **item,
                              size_t *len)
{
    *item = tg_cfg_node(ctx, seq->data.sequence.items.start[i]);
    return tg_cfg_scalar_text(
        ctx, *item, (const char *)s->key->data.scalar.value, expected, len);
}

static void report_unknown(struct tg_cfg_ctx *ctx, const yaml_node_t *item,
                           const char *kind, const char *name, size_t len,
                           const char *subject)
{
    tg_cfg_error(ctx, item, "unknown %s %s in %s", kind,
                 tg_cfg_quote(ctx, name, len), subject);
}

/*
 * The allow-lists: an omitted key leaves NULL (everything allowed); a
 * present one gets a non-NULL array with a spare element, so that [] is a
 * non-NULL list of nothing.
 */
static void read_groups(struct tg_cfg_ctx *ctx, struct tg_team *t,
                        const struct tg_cfg_slot *s, const char *subject)
{
    static const char expected[] = "a sequence of model group names";
    const yaml_node_t *seq, *item;
    size_t n = 0, i, len;

    seq = allow_list(ctx, s, expected, &n);
    if (seq == NULL)
        return;
    t->model_groups = tg_cfg_calloc(ctx, n + 1, sizeof(*t->model_groups));
    for (i = 0; i < n && t->model_groups != NULL; i++) {
        const char *name = allow_item(ctx, s, seq, i, expected, &item, &len);
        struct tg_model_group *g =
            name ? tg_cfg_find_group(ctx->cfg, name, len) : NULL;

        if (g != NULL)
            t->model_groups[t->n_model_groups++] = g;
        else if (name != NULL)
            report_unknown(ctx, item, "model group", name, len, subject);
    }
}

static void read_models(struct tg_cfg_ctx *ctx, struct tg_team *t,
                        const struct tg_cfg_slot *s, const char *subject)
{
    static const char expected[] = "a sequence of model names";
    const yaml_node_t *seq, *item;
    size_t n = 0, i, len;

    seq = allow_list(ctx, s, expected, &n);
    if (seq == NULL)
        return;
    t->models = tg_cfg_calloc(ctx, n + 1, sizeof(*t->models));
    for (i = 0; i < n && t->models != NULL; i++) {
        const char *name = allow_item(ctx, s, seq, i, expected, &item, &len);
        struct tg_model *m =
            name ? tg_cfg_find_model(ctx->cfg, name, len) : NULL;

        if (m != NULL)
            t->models[t->n_models++] = m;
        else if (name != NULL)
            report_unknown(ctx, item, "model", name, len, subject);
    }
}

static void read_limits(struct tg_cfg_ctx *ctx, struct tg_team *t,
                        const struct tg_cfg_slot *s)
{
    t->rpm = ctx->cfg->defaults.rpm;
    t->tpm = ctx->cfg->defaults.tpm;
    t->credits = ctx->cfg->defaults.credits;
    t->max_budget_usd = -1;
    tg_cfg_read_int(ctx, &s[T_RPM], 1, MAX_RPM, &t->rpm);
    tg_cfg_read_int(ctx, &s[T_TPM], 1, MAX_TPM, &t->tpm);
    tg_cfg_read_number(ctx, &s[T_CREDITS], &t->credits);
    tg_cfg_read_number(ctx, &s[T_MAX_BUDGET], &t->max_budget_usd);
    tg_cfg_read_int(ctx, &s[T_MAX_TOKENS], 1, MAX_MAX_TOKENS, &t->max_tokens);
}

static void fill_team(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                      const yaml_node_t *map, struct tg_team *t,
                      struct key_refs *refs)
{
    struct tg_cfg_slot s[T_COUNT];
    const char *subject;

    t->name = team_name(ctx, key);
    subject = tg_cfg_printf(ctx, "team %s",
                            tg_cfg_quote(ctx, t->name, strlen(t->name)));
    memset(s, 0, sizeof(s));
    if (tg_cfg_expect_mapping(ctx, map, subject))
        tg_cfg_collect(ctx, map, tg_cfg_team_keys, T_COUNT, TG_CFG_ALL_KEYS,
                       tg_cfg_printf(ctx, "in %s", subject), s);
    read_limits(ctx, t, s);
    read_keys(ctx, t, &t->key_hashes, &t->n_keys, &s[T_KEYS], subject, refs);
    read_groups(ctx, t, &s[T_MODEL_GROUPS], subject);
    read_models(ctx, t, &s[T_MODELS], subject);
}

static int compare_refs(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->hash, y->hash);

    if (c != 0)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Who a key belongs to, for messages: a team, or (NULL) the admins. */
static const char *owner(struct tg_cfg_ctx *ctx, const struct tg_team *t)
{
    if (t == NULL)
        return "admin_keys";
    return tg_cfg_printf(ctx, "team %s",
                         tg_cfg_quote(ctx, t->name, strlen(t->name)));
}

/* A key must say which team calls: a hash may appear only once in all. */
static void check_unique_keys(struct tg_cfg_ctx *ctx, struct key_refs *refs)
{
    size_t i, first = 0;

    if (refs->n == 0)
        return;
    qsort(refs->items, refs->n, sizeof(*refs->items), compare_refs);
    for (i = 1; i < refs->n; i++) {
        const struct key_ref *a = &refs->items[first], *b = &refs->items[i];

        if (strcmp(a->hash, b->hash) != 0)
            first = i;
        else if (a->team == b->team)
            tg_cfg_error(ctx, b->at, "%s lists the same key twice",
                         owner(ctx, b->team));
        else
            tg_cfg_error(ctx, b->at,
                         "%s has a key that %s also has; a key must belong "
                         "to one team, or be an admin key",
                         owner(ctx, b->team), owner(ctx, a->team));
    }
}

/* Fills cfg->teams; defaults, models and groups must be filled before. */
void tg_cfg_fill_teams(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                       const struct tg_cfg_slot *admin_keys)
{
    struct tg_config *cfg = ctx->cfg;
    const yaml_node_t *map = s->value;
    const yaml_node_pair_t *pairs;
    struct key_refs refs = {NULL, 0, 0};
    size_t n, i;
    bool *skip;

    if (admin_keys->key != NULL)
        read_keys(ctx, NULL, &cfg->admin_key_hashes, &cfg->n_admin_keys,
                  admin_keys, "admin_keys", &refs);
    if (s->key == NULL || !tg_cfg_expect_mapping(ctx, map, "teams") ||
        map->type != YAML_MAPPING_NODE) {
        check_unique_keys(ctx, &refs);
        free(refs.items);
        return;
    }
    pairs = map->data.mapping.pairs.start;
    n = (size_t)(map->data.mapping.pairs.top - pairs);
    skip = tg_cfg_find_duplicates(ctx, map, "in teams");
    cfg->teams = tg_cfg_calloc(ctx, n, sizeof(*cfg->teams));
    if (skip == NULL || cfg->teams == NULL) {
        free(refs.items);
        return;
    }
    for (i = 0; i < n; i++)
        if (!skip[i])
            fill_team(ctx, tg_cfg_node(ctx, pairs[i].key),
                      tg_cfg_node(ctx, pairs[i].value),
                      &cfg->teams[cfg->n_teams++], &refs);
    check_unique_keys(ctx, &refs);
    free(refs.items);
}
