/*
 * resolve.c - looking names up in a loaded config.
 *
 * tg_cfg_resolve_model runs for every request, on a name taken from the
 * request body that is not NUL-terminated, so it compares by length and
 * allocates nothing. Configs hold tens of models, not thousands, so each
 * rule is a linear scan in file order; the first match wins.
 */
#include "cfg_internal.h"

#include <string.h>

static bool is_name(const char *s, const char *name, size_t len)
{
    return strlen(s) == len && memcmp(s, name, len) == 0;
}

struct tg_model *tg_cfg_find_model(const struct tg_config *cfg,
                                   const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < cfg->n_models; i++)
        if (is_name(cfg->models[i].name, name, len))
            return &cfg->models[i];
    return NULL;
}

struct tg_model_group *tg_cfg_find_group(const struct tg_config *cfg,
                                         const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < cfg->n_model_groups; i++)
        if (is_name(cfg->model_groups[i].name, name, len))
            return &cfg->model_groups[i];
    return NULL;
}

struct tg_team *tg_cfg_find_team(const struct tg_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_teams; i++)
        if (strcmp(cfg->teams[i].name, name) == 0)
            return &cfg->teams[i];
    return NULL;
}

struct tg_provider *tg_cfg_find_provider(const struct tg_config *cfg,
                                         const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_providers; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

/* "provider/model_id", split at the first '/': upstream ids such as
 * "meta-llama/Llama-3" keep their own slashes. */
static struct tg_model *find_qualified(const struct tg_config *cfg,
                                       const char *name, size_t len)
{
    const char *slash = memchr(name, '/', len);
    size_t plen, i;

    if (slash == NULL)
        return NULL;
    plen = (size_t)(slash - name);
    for (i = 0; i < cfg->n_models; i++) {
        const struct tg_model *m = &cfg->models[i];

        if (m->provider != NULL && is_name(m->provider->name, name, plen) &&
            is_name(m->upstream_id, slash + 1, len - plen - 1))
            return &cfg->models[i];
    }
    return NULL;
}

/* A bare upstream id, when exactly one model maps to it. */
static struct tg_model *find_upstream(const struct tg_config *cfg,
                                      const char *name, size_t len)
{
    struct tg_model *found = NULL;
    size_t i;

    for (i = 0; i < cfg->n_models; i++) {
        if (!is_name(cfg->models[i].upstream_id, name, len))
            continue;
        if (found != NULL)
            return NULL;
        found = &cfg->models[i];
    }
    return found;
}

int tg_cfg_resolve_model(const struct tg_config *cfg, const char *name,
                         size_t len, struct tg_route_target *out)
{
    out->group = tg_cfg_find_group(cfg, name, len);
    out->model = NULL;
    if (out->group != NULL)
        return TG_OK;
    out->model = tg_cfg_find_model(cfg, name, len);
    if (out->model == NULL)
        out->model = find_qualified(cfg, name, len);
    if (out->model == NULL)
        out->model = find_upstream(cfg, name, len);
    return out->model != NULL ? TG_OK : TG_DECLINED;
}

bool tg_cfg_team_allows_group(const struct tg_team *team,
                              const struct tg_model_group *group)
{
    size_t i;

    if (team == NULL || team->model_groups == NULL)
        return true;
    for (i = 0; i < team->n_model_groups; i++)
        if (team->model_groups[i] == group)
            return true;
    return false;
}

bool tg_cfg_team_allows_model(const struct tg_team *team,
                              const struct tg_model *model)
{
    size_t i;

    if (team == NULL || team->models == NULL)
        return true;
    for (i = 0; i < team->n_models; i++)
        if (team->models[i] == model)
            return true;
    return false;
}
