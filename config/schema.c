/*
 * schema.c - every key the loader reads, by section, so that a test can
 * check the configuration reference (docs/configuration.md) names them all
 * and cannot drift from the parser.
 */
#include "cfg_internal.h"

#define SECTION(name, table)    \
    {                           \
        name, table, &table##_n \
    }

static const struct {
    const char *section;
    const char *const *keys;
    const size_t *n;
} sections[] = {
    SECTION("", tg_cfg_root_keys),
    SECTION("limits", tg_cfg_limits_keys),
    SECTION("auth", tg_cfg_auth_keys),
    SECTION("health", tg_cfg_health_keys),
    SECTION("defaults", tg_cfg_defaults_keys),
    SECTION("providers", tg_cfg_provider_keys),
    SECTION("models", tg_cfg_model_keys),
    SECTION("model_groups", tg_cfg_group_keys),
    SECTION("teams", tg_cfg_team_keys),
};

size_t tg_cfg_schema(struct tg_cfg_schema_key *out, size_t cap)
{
    size_t i, k, n = 0;

    for (i = 0; i < TG_ARRAY_LEN(sections); i++)
        for (k = 0; k < *sections[i].n; k++, n++)
            if (n < cap)
                out[n] = (struct tg_cfg_schema_key){sections[i].section,
                                                    sections[i].keys[k]};
    return n;
}
