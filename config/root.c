/*
 * root.c - the top level of the file: server settings, and the order in
 * which the sections are filled.
 *
 * Every field gets its default first, then the keys present replace them.
 * Sections that others refer to come first (providers, models, groups,
 * defaults, then teams), and the references from `auth` and
 * `default_model` are checked last, when everything they may name exists.
 */
#include "cfg_internal.h"

#include <string.h>
#include <unistd.h>

enum {
    R_LISTEN,
    R_WORKERS,
    R_STATE_FILE,
    R_USAGE_LOG,
    R_ACCESS_LOG,
    R_PID_FILE,
    R_SHUTDOWN_TIMEOUT,
    R_LIMITS,
    R_AUTH,
    R_DEFAULT_MODEL,
    R_PROVIDERS,
    R_MODELS,
    R_MODEL_GROUPS,
    R_HEALTH,
    R_DEFAULTS,
    R_TEAMS,
    R_ADMIN_KEYS,
    R_COUNT
};

const char *const tg_cfg_root_keys[R_COUNT] = {
    "listen",       "workers",       "state_file",         "usage_log",
    "access_log",   "pid_file",      "shutdown_timeout_s", "limits",
    "auth",         "default_model", "providers",          "models",
    "model_groups", "health",        "defaults",           "teams",
    "admin_keys"};
const size_t tg_cfg_root_keys_n = R_COUNT;

const char *const tg_cfg_limits_keys[4] = {"max_body_bytes", "max_header_bytes",
                                           "max_connections", "idle_timeout_s"};
const size_t tg_cfg_limits_keys_n = TG_ARRAY_LEN(tg_cfg_limits_keys);
const char *const tg_cfg_health_keys[2] = {"allowed_fails", "cooldown_s"};
const size_t tg_cfg_health_keys_n = TG_ARRAY_LEN(tg_cfg_health_keys);
const char *const tg_cfg_defaults_keys[3] = {"rpm", "tpm", "credits"};
const size_t tg_cfg_defaults_keys_n = TG_ARRAY_LEN(tg_cfg_defaults_keys);
const char *const tg_cfg_auth_keys[3] = {"anonymous_team", "secret_token",
                                         "secret_token_team"};
const size_t tg_cfg_auth_keys_n = TG_ARRAY_LEN(tg_cfg_auth_keys);

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > TG_CFG_MAX_WORKERS ? TG_CFG_MAX_WORKERS : (int)n;
}

static void set_defaults(struct tg_cfg_ctx *ctx)
{
    struct tg_config *cfg = ctx->cfg;

    cfg->listen = tg_cfg_calloc(ctx, 1, sizeof(*cfg->listen));
    if (cfg->listen != NULL) {
        cfg->listen->host = tg_cfg_strdup(ctx, "127.0.0.1");
        cfg->listen->port = 8000;
        cfg->n_listen = 1;
    }
    cfg->workers = online_cpus();
    cfg->state_file = tg_cfg_strdup(ctx, "./tollgate.state");
    cfg->usage_log = cfg->access_log = cfg->pid_file = tg_cfg_strdup(ctx, "");
    cfg->shutdown_timeout_s = 30;
    cfg->limits.max_body_bytes = 4194304;
    cfg->limits.max_header_bytes = 16384;
    cfg->limits.max_connections = 4096;
    cfg->limits.idle_timeout_s = 60;
    cfg->auth.secret_token = cfg->default_model = cfg->usage_log;
    cfg->health.allowed_fails = 3;
    cfg->health.cooldown_s = 30;
    cfg->defaults.rpm = 60;
    cfg->defaults.tpm = 60000;
    cfg->defaults.credits = 100;
}

static void read_workers(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    const char *expected = tg_cfg_printf(
        ctx, "\"auto\" or an integer from 1 to %d", TG_CFG_MAX_WORKERS);
    const char *text;
    int64_t n;
    size_t len;

    if (s->key == NULL)
        return;
    text = tg_cfg_scalar_text(ctx, s->value, "workers", expected, &len);
    if (text == NULL)
        return;
    if (len == 4 && memcmp(text, "auto", 4) == 0)
        return;
    if (!tg_cfg_parse_int(text, len, &n) || n < 1 || n > TG_CFG_MAX_WORKERS) {
        tg_cfg_error(ctx, s->value, "workers must be %s, got %s", expected,
                     tg_cfg_quote(ctx, text, len));
        return;
    }
    ctx->cfg->workers = (int)n;
}

static void read_files(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_config *cfg = ctx->cfg;

    if (tg_cfg_read_string(ctx, &s[R_STATE_FILE], &cfg->state_file) &&
        cfg->state_file[0] == '\0')
        tg_cfg_error(ctx, s[R_STATE_FILE].value,
                     "state_file must not be empty (it backs the shared "
                     "memory segment)");
    tg_cfg_read_string(ctx, &s[R_USAGE_LOG], &cfg->usage_log);
    tg_cfg_read_string(ctx, &s[R_ACCESS_LOG], &cfg->access_log);
    tg_cfg_read_string(ctx, &s[R_PID_FILE], &cfg->pid_file);
    tg_cfg_read_int32(ctx, &s[R_SHUTDOWN_TIMEOUT], 0, 86400,
                      &cfg->shutdown_timeout_s);
}

/* Collects the keys of section `name` into slots; false when absent. */
static bool section(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                    const char *name, const char *const *keys, size_t n_keys,
                    struct tg_cfg_slot *slots)
{
    memset(slots, 0, n_keys * sizeof(*slots));
    if (s->key == NULL || !tg_cfg_expect_mapping(ctx, s->value, name))
        return false;
    tg_cfg_collect(ctx, s->value, keys, n_keys, TG_CFG_ALL_KEYS,
                   tg_cfg_printf(ctx, "in %s", name), slots);
    return true;
}

static void read_limits(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_cfg_slot k[TG_ARRAY_LEN(tg_cfg_limits_keys)];
    struct tg_config *cfg = ctx->cfg;

    if (!section(ctx, s, "limits", tg_cfg_limits_keys, TG_ARRAY_LEN(k), k))
        return;
    tg_cfg_read_int(ctx, &k[0], 1024, 1073741824, &cfg->limits.max_body_bytes);
    tg_cfg_read_int(ctx, &k[1], 1024, 1048576, &cfg->limits.max_header_bytes);
    tg_cfg_read_int32(ctx, &k[2], 1, 1000000, &cfg->limits.max_connections);
    tg_cfg_read_int32(ctx, &k[3], 1, 86400, &cfg->limits.idle_timeout_s);
}

static void read_health(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_cfg_slot k[TG_ARRAY_LEN(tg_cfg_health_keys)];
    struct tg_config *cfg = ctx->cfg;

    if (!section(ctx, s, "health", tg_cfg_health_keys, TG_ARRAY_LEN(k), k))
        return;
    tg_cfg_read_int32(ctx, &k[0], 1, 1000, &cfg->health.allowed_fails);
    tg_cfg_read_int32(ctx, &k[1], 1, 86400, &cfg->health.cooldown_s);
}

static void read_team_defaults(struct tg_cfg_ctx *ctx,
                               const struct tg_cfg_slot *s)
{
    struct tg_cfg_slot k[TG_ARRAY_LEN(tg_cfg_defaults_keys)];
    struct tg_config *cfg = ctx->cfg;

    if (!section(ctx, s, "defaults", tg_cfg_defaults_keys, TG_ARRAY_LEN(k), k))
        return;
    tg_cfg_read_int(ctx, &k[0], 1, INT64_C(1000000000), &cfg->defaults.rpm);
    tg_cfg_read_int(ctx, &k[1], 1, INT64_C(1000000000000), &cfg->defaults.tpm);
    tg_cfg_read_number(ctx, &k[2], &cfg->defaults.credits);
}

/* The team `key` of auth names; NULL (reported at `at`) when none. */
static struct tg_team *auth_team(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                                 const char *key, const char *name)
{
    struct tg_team *team = tg_cfg_find_team(ctx->cfg, name);

    if (team == NULL)
        tg_cfg_error(ctx, at,
                     "%s %s is not a team (it must name one under "
                     "teams)",
                     key, tg_cfg_quote(ctx, name, strlen(name)));
    return team;
}

/* secret_token_team matters only with a secret_token; when it is absent,
 * its default "default" is reported at the token. */
static void read_auth(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    struct tg_cfg_slot k[TG_ARRAY_LEN(tg_cfg_auth_keys)];
    struct tg_config *cfg = ctx->cfg;
    char *anonymous = cfg->auth.secret_token, *token_team;

    if (!section(ctx, s, "auth", tg_cfg_auth_keys, TG_ARRAY_LEN(k), k))
        return;
    token_team = tg_cfg_strdup(ctx, "default");
    if (tg_cfg_read_string(ctx, &k[0], &anonymous) && anonymous[0] != '\0')
        cfg->auth.anonymous_team =
            auth_team(ctx, k[0].value, tg_cfg_auth_keys[0], anonymous);
    tg_cfg_read_string(ctx, &k[1], &cfg->auth.secret_token);
    if (tg_cfg_read_string(ctx, &k[2], &token_team) &&
        cfg->auth.secret_token[0] != '\0')
        cfg->auth.secret_token_team =
            auth_team(ctx, k[2].key ? k[2].value : k[1].value,
                      tg_cfg_auth_keys[2], token_team);
}

static void read_default_model(struct tg_cfg_ctx *ctx,
                               const struct tg_cfg_slot *s)
{
    struct tg_config *cfg = ctx->cfg;
    struct tg_route_target target;
    const char *name;

    if (!tg_cfg_read_string(ctx, s, &cfg->default_model))
        return;
    name = cfg->default_model;
    if (name[0] != '\0' &&
        tg_cfg_resolve_model(cfg, name, strlen(name), &target) != TG_OK)
        tg_cfg_error(ctx, s->value,
                     "default_model %s does not name a model group, model, "
                     "provider/model_id or upstream id",
                     tg_cfg_quote(ctx, name, strlen(name)));
}

/* Fills ctx->cfg from the document's root node. */
void tg_cfg_fill(struct tg_cfg_ctx *ctx, yaml_node_t *root)
{
    struct tg_cfg_slot s[R_COUNT];

    set_defaults(ctx);
    if (root->type != YAML_MAPPING_NODE) {
        tg_cfg_error(ctx, root,
                     "the file must be a mapping of settings (listen, "
                     "providers, models, teams, ...), got %s",
                     tg_cfg_kind(root));
        return;
    }
    tg_cfg_collect(ctx, root, tg_cfg_root_keys, R_COUNT, TG_CFG_ALL_KEYS,
                   "at the top level", s);
    tg_cfg_fill_listen(ctx, &s[R_LISTEN]);
    read_workers(ctx, &s[R_WORKERS]);
    read_files(ctx, s);
    read_limits(ctx, &s[R_LIMITS]);
    read_health(ctx, &s[R_HEALTH]);
    read_team_defaults(ctx, &s[R_DEFAULTS]);
    tg_cfg_fill_providers(ctx, &s[R_PROVIDERS]);
    tg_cfg_fill_models(ctx, &s[R_MODELS]);
    tg_cfg_fill_groups(ctx, &s[R_MODEL_GROUPS]);
    tg_cfg_fill_teams(ctx, &s[R_TEAMS], &s[R_ADMIN_KEYS]);
    read_auth(ctx, &s[R_AUTH]);
    read_default_model(ctx, &s[R_DEFAULT_MODEL]);
}
