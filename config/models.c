/*
 * models.c - the `models` and `model_groups` sections.
 *
 * A model is a public name for one upstream model id at one provider, with
 * its prices; a group is a primary model and its ordered fallbacks. Both
 * hold pointers into arrays sized once from the YAML mapping, so the
 * pointers stay valid for the life of the config. Providers are filled
 * before models and models before groups, which is all the ordering the
 * references need. A model of a disabled provider is valid: the provider
 * may be enabled by the next reload without editing the models.
 */
#include "cfg_internal.h"

#include <string.h>

enum { M_PROVIDER, M_MODEL, M_INPUT_PRICE, M_OUTPUT_PRICE, M_COUNT };

const char *const tg_cfg_model_keys[M_COUNT] = {
    "provider", "model", "input_usd_per_mtok", "output_usd_per_mtok"};
const size_t tg_cfg_model_keys_n = M_COUNT;

enum { G_PRIMARY, G_FALLBACKS, G_COUNT };

const char *const tg_cfg_group_keys[G_COUNT] = {"primary", "fallbacks"};
const size_t tg_cfg_group_keys_n = G_COUNT;

static void report_missing(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                           const char *subject, const char *key,
                           const char *what)
{
    tg_cfg_error(ctx, map, "%s is missing required key \"%s\" (%s)", subject,
                 key, what);
}

static void read_provider(struct tg_cfg_ctx *ctx, struct tg_model *m,
                          const struct tg_cfg_slot *s, const char *subject)
{
    char *name = NULL;

    if (!tg_cfg_read_string(ctx, s, &name) || name == NULL)
        return;
    m->provider = tg_cfg_find_provider(ctx->cfg, name);
    if (m->provider == NULL)
        tg_cfg_error(ctx, s->value, "unknown provider %s in %s",
                     tg_cfg_quote(ctx, name, strlen(name)), subject);
}

static void fill_model(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                       const yaml_node_t *map, struct tg_model *m)
{
    struct tg_cfg_slot s[M_COUNT];
    const char *subject;

    m->name = tg_cfg_name(ctx, key, "model");
    m->upstream_id = tg_cfg_strdup(ctx, "");
    subject = tg_cfg_printf(ctx, "model %s",
                            tg_cfg_quote(ctx, m->name, strlen(m->name)));
    if (!tg_cfg_expect_mapping(ctx, map, subject))
        return;
    tg_cfg_collect(ctx, map, tg_cfg_model_keys, M_COUNT, TG_CFG_ALL_KEYS,
                   tg_cfg_printf(ctx, "in %s", subject), s);
    if (s[M_PROVIDER].key == NULL)
        report_missing(ctx, map, subject, "provider", "a provider name");
    if (s[M_MODEL].key == NULL)
        report_missing(ctx, map, subject, "model", "the upstream model id");
    read_provider(ctx, m, &s[M_PROVIDER], subject);
    if (tg_cfg_read_string(ctx, &s[M_MODEL], &m->upstream_id) &&
        s[M_MODEL].key != NULL && m->upstream_id[0] == '\0')
        tg_cfg_error(ctx, s[M_MODEL].value,
                     "model must not be empty (the upstream model id)");
    tg_cfg_read_number(ctx, &s[M_INPUT_PRICE], &m->input_usd_per_mtok);
    tg_cfg_read_number(ctx, &s[M_OUTPUT_PRICE], &m->output_usd_per_mtok);
}

/*
 * The pairs of the named section in slot `s` with the duplicate flags, or
 * NULL when there is nothing to fill (absent, null, not a mapping).
 */
static const yaml_node_pair_t *named_pairs(struct tg_cfg_ctx *ctx,
                                           const struct tg_cfg_slot *s,
                                           const char *section, size_t *n,
                                           bool **skip)
{
    const yaml_node_t *map = s->value;

    if (s->key == NULL || !tg_cfg_expect_mapping(ctx, map, section) ||
        map->type != YAML_MAPPING_NODE)
        return NULL;
    *n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    *skip =
        tg_cfg_find_duplicates(ctx, map, tg_cfg_printf(ctx, "in %s", section));
    if (*skip == NULL)
        return NULL;
    return map->data.mapping.pairs.start;
}

/* Fills cfg->models from the `models` mapping; providers must be filled. */
void tg_cfg_fill_models(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_config *cfg = ctx->cfg;
    const yaml_node_pair_t *pairs;
    size_t n, i;
    bool *skip;

    pairs = named_pairs(ctx, s, "models", &n, &skip);
    if (pairs == NULL)
        return;
    cfg->models = tg_cfg_calloc(ctx, n, sizeof(*cfg->models));
    if (cfg->models == NULL)
        return;
    for (i = 0; i < n; i++)
        if (!skip[i])
            fill_model(ctx, tg_cfg_node(ctx, pairs[i].key),
                       tg_cfg_node(ctx, pairs[i].value),
                       &cfg->models[cfg->n_models++]);
}

/* The model a group's item names, or NULL (reported). */
static struct tg_model *group_member(struct tg_cfg_ctx *ctx,
                                     const yaml_node_t *node, const char *what,
                                     const char *subject)
{
    struct tg_model *m;
    const char *name;
    size_t len;

    name = tg_cfg_scalar_text(ctx, node, what, "a model name", &len);
    if (name == NULL)
        return NULL;
    m = tg_cfg_find_model(ctx->cfg, name, len);
    if (m == NULL)
        tg_cfg_error(ctx, node, "unknown model %s in %s",
                     tg_cfg_quote(ctx, name, len), subject);
    return m;
}

static bool is_in_group(const struct tg_model_group *g,
                        const struct tg_model *m)
{
    size_t i;

    if (g->primary == m)
        return true;
    for (i = 0; i < g->n_fallbacks; i++)
        if (g->fallbacks[i] == m)
            return true;
    return false;
}

static void read_fallbacks(struct tg_cfg_ctx *ctx, struct tg_model_group *g,
                           const struct tg_cfg_slot *s, const char *subject)
{
    const yaml_node_t *seq = tg_cfg_sequence(ctx, s, "a sequence of models");
    size_t n, i;

    if (seq == NULL)
        return;
    n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    g->fallbacks = tg_cfg_calloc(ctx, n ? n : 1, sizeof(*g->fallbacks));
    if (g->fallbacks == NULL)
        return;
    for (i = 0; i < n; i++) {
        const yaml_node_t *item =
            tg_cfg_node(ctx, seq->data.sequence.items.start[i]);
        struct tg_model *m = group_member(ctx, item, "fallbacks", subject);

        if (m == NULL)
            continue;
        if (is_in_group(g, m))
            tg_cfg_error(ctx, item, "model %s appears twice in %s",
                         tg_cfg_quote(ctx, m->name, strlen(m->name)), subject);
        else
            g->fallbacks[g->n_fallbacks++] = m;
    }
}

static void fill_group(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                       const yaml_node_t *map, struct tg_model_group *g)
{
    struct tg_cfg_slot s[G_COUNT];
    const char *subject;

    g->name = tg_cfg_name(ctx, key, "model group");
    subject = tg_cfg_printf(ctx, "model group %s",
                            tg_cfg_quote(ctx, g->name, strlen(g->name)));
    /* A request names either, so one name must not mean both. */
    if (tg_cfg_find_model(ctx->cfg, g->name, strlen(g->name)) != NULL)
        tg_cfg_error(ctx, key, "%s has the same name as a model", subject);
    if (!tg_cfg_expect_mapping(ctx, map, subject))
        return;
    tg_cfg_collect(ctx, map, tg_cfg_group_keys, G_COUNT, TG_CFG_ALL_KEYS,
                   tg_cfg_printf(ctx, "in %s", subject), s);
    if (s[G_PRIMARY].key == NULL)
        report_missing(ctx, map, subject, "primary", "a model name");
    else
        g->primary = group_member(ctx, s[G_PRIMARY].value, "primary", subject);
    read_fallbacks(ctx, g, &s[G_FALLBACKS], subject);
}

/* Fills cfg->model_groups from `model_groups`; models must be filled. */
void tg_cfg_fill_groups(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_config *cfg = ctx->cfg;
    const yaml_node_pair_t *pairs;
    size_t n, i;
    bool *skip;

    pairs = named_pairs(ctx, s, "model_groups", &n, &skip);
    if (pairs == NULL)
        return;
    cfg->model_groups = tg_cfg_calloc(ctx, n, sizeof(*cfg->model_groups));
    if (cfg->model_groups == NULL)
        return;
    for (i = 0; i < n; i++)
        if (!skip[i])
            fill_group(ctx, tg_cfg_node(ctx, pairs[i].key),
                       tg_cfg_node(ctx, pairs[i].value),
                       &cfg->model_groups[cfg->n_model_groups++]);
}
