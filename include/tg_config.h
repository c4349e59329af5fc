/*
 * tg_config.h - the configuration: YAML loaded into one immutable struct.
 *
 * tg_cfg_load reads, interpolates (${VAR}, ${VAR:-default}) and validates a
 * file against the schema of PRODUCT.md section 3 and returns either a
 * complete config or a list of diagnostics naming file:line:column. Nothing
 * changes a config once loaded: workers forked from the master share it
 * read-only, and a reload builds a new one beside it.
 *
 * All strings are NUL-terminated and owned by the config; tg_cfg_free
 * releases everything at once. Cross references (model -> provider, group ->
 * models, team -> allow-lists) are pointers into the same config.
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_CFG_MAX_WORKERS 256
/* The state file holds a fixed number of provider slots (shm/layout.h). */
#define TG_CFG_MAX_PROVIDERS 128
#define TG_SHA256_HEX_LEN    64
/* "sha256:" followed by 64 lowercase hex digits */
#define TG_KEY_HASH_LEN (7 + TG_SHA256_HEX_LEN)

enum tg_provider_type {
    TG_PROVIDER_MOCK,
    TG_PROVIDER_OPENAI,
    TG_PROVIDER_ANTHROPIC,
    TG_PROVIDER_BEDROCK,
    TG_PROVIDER_GEMINI,
};

struct tg_listen {
    char *host; /* numeric or name, without IPv6 brackets */
    uint16_t port;
};

struct tg_provider {
    char *name;
    enum tg_provider_type type;
    bool is_enabled;     /* false when a required secret resolved to "" */
    char *base_url;      /* defaulted per type (bedrock: from region); "" for
                            mock */
    char *api_key;       /* openai, anthropic, gemini; "" when absent */
    char *region;        /* bedrock */
    char *access_key_id; /* bedrock */
    char *secret_access_key;   /* bedrock */
    char *session_token;       /* bedrock; "" when absent */
    int connect_timeout_ms;    /* default 5000 */
    int first_byte_timeout_ms; /* default 60000 */
    int timeout_ms;            /* default 600000 */
    int max_connections;       /* per worker, default 64 */
    int retries;               /* default 1 */
    bool tls_verify;           /* default true */
    char *ca_file;             /* "" = system store */
    int stream_delay_ms;       /* mock only: pause between chunks, default 0 */
};

struct tg_model {
    char *name; /* public name (alias) */
    struct tg_provider *provider;
    char *upstream_id; /* the `model:` key */
    double input_usd_per_mtok;
    double output_usd_per_mtok;
};

struct tg_model_group {
    char *name;
    struct tg_model *primary;
    struct tg_model **fallbacks;
    size_t n_fallbacks;
};

struct tg_team {
    char *name;
    char **key_hashes; /* "sha256:<hex>"; plain keys are hashed at load */
    size_t n_keys;
    int64_t rpm;
    int64_t tpm;
    double credits;        /* the grant; the live balance lives in shm */
    double max_budget_usd; /* < 0 when not set */
    int64_t max_tokens;    /* reserved per call when a request gives no
                              max_tokens; 0 when not set (extension) */
    /* Allow-lists: NULL means "all" (the key was omitted); a non-NULL list
     * with n == 0 allows nothing. */
    struct tg_model_group **model_groups;
    size_t n_model_groups;
    struct tg_model **models;
    size_t n_models;
};

struct tg_config {
    char *path;
    struct tg_listen *listen;
    size_t n_listen;
    int workers; /* "auto" resolved to the number of online CPUs */
    char *state_file;
    char *usage_log;  /* "" = off */
    char *access_log; /* "" = off */
    char *pid_file;   /* "" = off (extension of the schema) */
    int shutdown_timeout_s;
    struct {
        int64_t max_body_bytes;
        int64_t max_header_bytes;
        int max_connections;
        int idle_timeout_s;
    } limits;
    struct {
        struct tg_team *anonymous_team;    /* NULL when "" */
        char *secret_token;                /* "" = off */
        struct tg_team *secret_token_team; /* NULL when secret_token is "" */
    } auth;
    char *default_model;
    struct {
        int allowed_fails;
        int cooldown_s;
    } health;
    struct {
        int64_t rpm;
        int64_t tpm;
        double credits;
    } defaults;
    struct tg_provider *providers;
    size_t n_providers;
    struct tg_model *models;
    size_t n_models;
    struct tg_model_group *model_groups;
    size_t n_model_groups;
    struct tg_team *teams;
    size_t n_teams;
    char **admin_key_hashes; /* "sha256:<hex>", like team keys */
    size_t n_admin_keys;
};

/* One message about the file: an error (the load fails) or a warning. */
struct tg_cfg_diag {
    bool is_error;
    char *text; /* "file:line:column: error: what is wrong" */
};

struct tg_cfg_diags {
    struct tg_cfg_diag *items;
    size_t n;
    size_t n_errors;
};

/*
 * Loads and validates `path`. `diags` is overwritten (it need not be
 * zeroed first); tg_cfg_diags_free empties it. On success returns a config the
 * caller owns (free with tg_cfg_free) and fills `diags` with warnings, if any.
 * On failure returns NULL and `diags` holds every error found (not just the
 * first). The caller frees `diags` with tg_cfg_diags_free either way.
 */
struct tg_config *tg_cfg_load(const char *path, struct tg_cfg_diags *diags);

/* Same as tg_cfg_load on YAML text; `name` is used in diagnostics. */
struct tg_config *tg_cfg_load_string(const char *name, const char *yaml,
                                     size_t len, struct tg_cfg_diags *diags);

void tg_cfg_free(struct tg_config *cfg);
void tg_cfg_diags_free(struct tg_cfg_diags *diags);

/* What a requested model name resolves to: a group, or a single model. */
struct tg_route_target {
    struct tg_model_group *group; /* non-NULL for a group */
    struct tg_model *model;       /* non-NULL for a single model */
};

/*
 * Resolves a model name as PRODUCT.md section 3 says: a model group name;
 * else a model alias; else "provider/model_id" (provider name as configured,
 * model_id the upstream id of a configured model of that provider); else a
 * bare upstream id that exactly one configured model maps to. Returns TG_OK
 * and fills `out`, or TG_DECLINED when the name matches nothing (or a bare
 * id matches several models).
 */
int tg_cfg_resolve_model(const struct tg_config *cfg, const char *name,
                         size_t len, struct tg_route_target *out);

/* Whether a team's allow-lists let it use a group / a model (an omitted
 * list allows all). */
bool tg_cfg_team_allows_group(const struct tg_team *team,
                              const struct tg_model_group *group);
bool tg_cfg_team_allows_model(const struct tg_team *team,
                              const struct tg_model *model);

/* Looks up by exact name; NULL when absent. */
struct tg_team *tg_cfg_find_team(const struct tg_config *cfg, const char *name);
struct tg_provider *tg_cfg_find_provider(const struct tg_config *cfg,
                                         const char *name);

/*
 * Writes "sha256:" + lowercase hex SHA-256 of key[0..len) into out, which
 * must hold TG_KEY_HASH_LEN + 1 bytes.
 */
void tg_cfg_hash_key(const char *key, size_t len, char *out);

/* The name of a provider type as the YAML spells it ("openai", ...). */
const char *tg_cfg_provider_type_name(enum tg_provider_type type);

/* A key the loader reads: its section ("" for the top level; for
 * providers, models, model_groups and teams, a key of one entry). */
struct tg_cfg_schema_key {
    const char *section;
    const char *key;
};

/* Writes up to cap keys into out and returns how many there are. */
size_t tg_cfg_schema(struct tg_cfg_schema_key *out, size_t cap);

#endif
