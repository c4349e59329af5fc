/*
 * providers.c - the `providers` section: one connection per upstream.
 *
 * A provider's `type` decides which keys it takes (a mock takes no network
 * settings, only bedrock takes a region), so `type` is read first and the
 * rest is collected against that type's key set. A required secret that is
 * present but resolves to "" disables the provider with a warning, so one
 * example file serves operators who hold only some of the keys; an absent
 * required key is an error, as it is a mistake in the file, not the
 * environment. Secret values never appear in a message.
 */
#include "cfg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    K_TYPE,
    K_BASE_URL,
    K_API_KEY,
    K_REGION,
    K_ACCESS_KEY_ID,
    K_SECRET_ACCESS_KEY,
    K_SESSION_TOKEN,
    K_CONNECT_TIMEOUT,
    K_FIRST_BYTE_TIMEOUT,
    K_TIMEOUT,
    K_MAX_CONNECTIONS,
    K_RETRIES,
    K_TLS_VERIFY,
    K_CA_FILE,
    K_STREAM_DELAY,
    K_COUNT
};

const char *const tg_cfg_provider_keys[K_COUNT] = {
    "type",
    "base_url",
    "api_key",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "connect_timeout_ms",
    "first_byte_timeout_ms",
    "timeout_ms",
    "max_connections",
    "retries",
    "tls_verify",
    "ca_file",
    "stream_delay_ms",
};
const size_t tg_cfg_provider_keys_n = K_COUNT;

#define BIT(k) (UINT32_C(1) << (k))
#define NETWORK_KEYS                                                       \
    (BIT(K_TYPE) | BIT(K_BASE_URL) | BIT(K_CONNECT_TIMEOUT) |              \
     BIT(K_FIRST_BYTE_TIMEOUT) | BIT(K_TIMEOUT) | BIT(K_MAX_CONNECTIONS) | \
     BIT(K_RETRIES) | BIT(K_TLS_VERIFY) | BIT(K_CA_FILE))

struct provider_type {
    const char *name;
    enum tg_provider_type type;
    uint32_t keys;        /* what the type takes */
    uint32_t required;    /* what it must have */
    const char *base_url; /* default; bedrock's depends on the region */
};

static const struct provider_type types[] = {
    {"mock", TG_PROVIDER_MOCK, BIT(K_TYPE) | BIT(K_STREAM_DELAY), 0, ""},
    {"openai", TG_PROVIDER_OPENAI, NETWORK_KEYS | BIT(K_API_KEY), 0,
     "https://api.openai.com/v1"},
    {"anthropic", TG_PROVIDER_ANTHROPIC, NETWORK_KEYS | BIT(K_API_KEY),
     BIT(K_API_KEY), "https://api.anthropic.com"},
    {"bedrock", TG_PROVIDER_BEDROCK,
     NETWORK_KEYS | BIT(K_REGION) | BIT(K_ACCESS_KEY_ID) |
         BIT(K_SECRET_ACCESS_KEY) | BIT(K_SESSION_TOKEN),
     BIT(K_REGION) | BIT(K_ACCESS_KEY_ID) | BIT(K_SECRET_ACCESS_KEY), ""},
    {"gemini", TG_PROVIDER_GEMINI, NETWORK_KEYS | BIT(K_API_KEY),
     BIT(K_API_KEY), "https://generativelanguage.googleapis.com"},
};

/* The secrets whose "" disables a provider, in the order they are named. */
static const int secret_keys[] = {K_API_KEY, K_ACCESS_KEY_ID,
                                  K_SECRET_ACCESS_KEY};

const char *tg_cfg_provider_type_name(enum tg_provider_type type)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(types); i++)
        if (types[i].type == type)
            return types[i].name;
    return "unknown";
}

/* The value node of the first `type` key, or NULL. */
static const yaml_node_t *find_type_node(struct tg_cfg_ctx *ctx,
                                         const yaml_node_t *map)
{
    const yaml_node_pair_t *pair;

    if (map->type != YAML_MAPPING_NODE)
        return NULL;
    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        const yaml_node_t *key = tg_cfg_node(ctx, pair->key);

        if (key->type == YAML_SCALAR_NODE && key->data.scalar.length == 4 &&
            memcmp(key->data.scalar.value, "type", 4) == 0)
            return tg_cfg_node(ctx, pair->value);
    }
    return NULL;
}

/* The provider's type, or NULL when it is missing or bad (reported). */
static const struct provider_type *
read_type(struct tg_cfg_ctx *ctx, const yaml_node_t *map, const char *subject)
{
    static const char expected[] =
        "one of mock, openai, anthropic, bedrock, gemini";
    const yaml_node_t *node = find_type_node(ctx, map);
    const char *text;
    size_t len, i;

    if (node == NULL) {
        tg_cfg_error(ctx, map, "%s is missing required key \"type\" (%s)",
                     subject, expected);
        return NULL;
    }
    text = tg_cfg_scalar_text(ctx, node, "type", expected, &len);
    if (text == NULL)
        return NULL;
    for (i = 0; i < TG_ARRAY_LEN(types); i++)
        if (strlen(types[i].name) == len &&
            memcmp(text, types[i].name, len) == 0)
            return &types[i];
    tg_cfg_error(ctx, node, "type must be %s, got %s", expected,
                 tg_cfg_quote(ctx, text, len));
    return NULL;
}

static void set_defaults(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                         const struct provider_type *t)
{
    p->type = t ? t->type : TG_PROVIDER_MOCK;
    p->is_enabled = true;
    p->base_url = tg_cfg_strdup(ctx, t ? t->base_url : "");
    p->api_key = p->region = p->access_key_id = tg_cfg_strdup(ctx, "");
    p->secret_access_key = p->session_token = p->ca_file = p->api_key;
    p->connect_timeout_ms = 5000;
    p->first_byte_timeout_ms = 60000;
    p->timeout_ms = 600000;
    p->max_connections = 64;
    p->retries = 1;
    p->tls_verify = true;
    p->stream_delay_ms = 0;
}

static void read_numbers(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                         const struct tg_cfg_slot *s)
{
    tg_cfg_read_int32(ctx, &s[K_CONNECT_TIMEOUT], 1, 600000,
                      &p->connect_timeout_ms);
    tg_cfg_read_int32(ctx, &s[K_FIRST_BYTE_TIMEOUT], 1, 3600000,
                      &p->first_byte_timeout_ms);
    tg_cfg_read_int32(ctx, &s[K_TIMEOUT], 1, 86400000, &p->timeout_ms);
    tg_cfg_read_int32(ctx, &s[K_MAX_CONNECTIONS], 1, 100000,
                      &p->max_connections);
    tg_cfg_read_int32(ctx, &s[K_RETRIES], 0, 10, &p->retries);
    tg_cfg_read_int32(ctx, &s[K_STREAM_DELAY], 0, 60000, &p->stream_delay_ms);
    tg_cfg_read_bool(ctx, &s[K_TLS_VERIFY], &p->tls_verify);
}

/* Returns the keys read without error, so that a secret whose ${...} was
 * wrong is not also warned about as empty. */
static uint32_t read_strings(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                             const struct tg_cfg_slot *s)
{
    char **fields[K_COUNT] = {
        [K_BASE_URL] = &p->base_url,
        [K_API_KEY] = &p->api_key,
        [K_REGION] = &p->region,
        [K_ACCESS_KEY_ID] = &p->access_key_id,
        [K_SECRET_ACCESS_KEY] = &p->secret_access_key,
        [K_SESSION_TOKEN] = &p->session_token,
        [K_CA_FILE] = &p->ca_file,
    };
    uint32_t is_read = 0;
    int k;

    for (k = 0; k < K_COUNT; k++)
        if (fields[k] != NULL && tg_cfg_read_string(ctx, &s[k], fields[k]))
            is_read |= BIT(k);
    return is_read;
}

static void check_required(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                           const struct provider_type *t,
                           const struct tg_cfg_slot *s, const char *subject)
{
    size_t k;

    for (k = 0; k < K_COUNT; k++)
        if ((t->required & BIT(k)) && s[k].key == NULL)
            tg_cfg_error(ctx, map, "%s is missing required key \"%s\"", subject,
                         tg_cfg_provider_keys[k]);
}

static const char *secret_value(const struct tg_provider *p, int k)
{
    if (k == K_API_KEY)
        return p->api_key;
    return k == K_ACCESS_KEY_ID ? p->access_key_id : p->secret_access_key;
}

/* Present but empty secrets disable the provider; one warning names them. */
static void check_secrets(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                          const struct tg_cfg_slot *s, uint32_t is_read,
                          const char *subject)
{
    const char *names = "";
    const yaml_node_t *at = NULL;
    size_t i, n = 0;

    for (i = 0; i < TG_ARRAY_LEN(secret_keys); i++) {
        int k = secret_keys[i];

        if (s[k].key == NULL || !(is_read & BIT(k)) ||
            secret_value(p, k)[0] != '\0')
            continue;
        names = tg_cfg_printf(ctx, "%s%s%s", names, n ? " and " : "",
                              tg_cfg_provider_keys[k]);
        at = at ? at : s[k].value;
        n++;
    }
    if (n == 0)
        return;
    p->is_enabled = false;
    tg_cfg_warn(ctx, at, "%s is disabled: %s %s empty", subject, names,
                n == 1 ? "is" : "are");
}

static bool is_region(const char *r)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyz0123456789-";

    return r[0] != '\0' && r[strspn(r, allowed)] == '\0';
}

/* Bedrock's region goes into its host name, so only [a-z0-9-] is taken. */
static void check_region(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                         const struct tg_cfg_slot *s)
{
    if (s[K_REGION].key == NULL)
        return;
    if (p->region[0] == '\0') {
        tg_cfg_error(ctx, s[K_REGION].value,
                     "region must not be empty (e.g. us-east-1)");
    } else if (!is_region(p->region)) {
        tg_cfg_error(ctx, s[K_REGION].value,
                     "region must be lowercase letters, digits and \"-\" "
                     "(e.g. us-east-1), got %s",
                     tg_cfg_quote(ctx, p->region, strlen(p->region)));
    } else if (s[K_BASE_URL].key == NULL) {
        p->base_url = tg_cfg_strdup(
            ctx, tg_cfg_printf(ctx, "https://bedrock-runtime.%s.amazonaws.com",
                               p->region));
    }
}

/* http(s)://something, without the trailing slashes that joining with
 * "/chat/completions" would double. */
static void check_base_url(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                           const yaml_node_t *at)
{
    char *u = p->base_url;
    size_t len = strlen(u);
    size_t scheme = strncmp(u, "https://", 8) == 0  ? 8
                    : strncmp(u, "http://", 7) == 0 ? 7
                                                    : 0;

    while (len > scheme && u[len - 1] == '/')
        u[--len] = '\0';
    if (scheme == 0 || len == scheme)
        tg_cfg_error(ctx, at,
                     "base_url must be an http:// or https:// URL with a "
                     "host, got %s",
                     tg_cfg_quote(ctx, u, len));
}

static void check_ca_file(struct tg_cfg_ctx *ctx, const char *path,
                          const yaml_node_t *at)
{
    struct stat st;
    int fd;

    if (path[0] == '\0')
        return;
    /* O_NONBLOCK: a FIFO named by mistake must not hang `tollgate -t`. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        tg_cfg_error(ctx, at, "ca_file %s cannot be read: %s",
                     tg_cfg_quote(ctx, path, strlen(path)), strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        tg_cfg_error(ctx, at, "ca_file %s is not a regular file",
                     tg_cfg_quote(ctx, path, strlen(path)));
    close(fd);
}

static void check_provider(struct tg_cfg_ctx *ctx, struct tg_provider *p,
                           const struct tg_cfg_slot *s, uint32_t is_read,
                           const char *subject)
{
    if (p->type == TG_PROVIDER_BEDROCK)
        check_region(ctx, p, s);
    if (s[K_BASE_URL].key != NULL)
        check_base_url(ctx, p, s[K_BASE_URL].value);
    check_ca_file(ctx, p->ca_file, s[K_CA_FILE].value);
    check_secrets(ctx, p, s, is_read, subject);
    if (s[K_TLS_VERIFY].key != NULL && !p->tls_verify)
        tg_cfg_warn(ctx, s[K_TLS_VERIFY].value,
                    "%s has tls_verify: false; its TLS certificates are not "
                    "checked",
                    subject);
}

static void fill_provider(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                          const yaml_node_t *map, struct tg_provider *p)
{
    struct tg_cfg_slot s[K_COUNT];
    const struct provider_type *t;
    const char *subject;

    p->name = tg_cfg_name(ctx, key, "provider");
    subject = tg_cfg_printf(ctx, "provider %s",
                            tg_cfg_quote(ctx, p->name, strlen(p->name)));
    if (strchr(p->name, '/') != NULL)
        tg_cfg_error(ctx, key,
                     "%s: a provider name must not contain \"/\", which "
                     "separates it from the model id in requests",
                     subject);
    t = NULL;
    if (tg_cfg_expect_mapping(ctx, map, subject))
        t = read_type(ctx, map, subject);
    set_defaults(ctx, p, t);
    if (map->type != YAML_MAPPING_NODE)
        return;
    /* Without a type, keys no type takes are still worth reporting. */
    tg_cfg_collect(ctx, map, tg_cfg_provider_keys, K_COUNT,
                   t ? t->keys : TG_CFG_ALL_KEYS,
                   tg_cfg_printf(ctx, "in %s", subject), s);
    if (t == NULL)
        return;
    check_required(ctx, map, t, s, subject);
    read_numbers(ctx, p, s);
    check_provider(ctx, p, s, read_strings(ctx, p, s), subject);
}

/* Fills cfg->providers from the `providers` mapping of names. */
void tg_cfg_fill_providers(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    const yaml_node_t *map = s->value;
    struct tg_config *cfg = ctx->cfg;
    const yaml_node_pair_t *pairs;
    size_t n, i;
    bool *skip;

    if (s->key == NULL || !tg_cfg_expect_mapping(ctx, map, "providers") ||
        map->type != YAML_MAPPING_NODE)
        return;
    pairs = map->data.mapping.pairs.start;
    n = (size_t)(map->data.mapping.pairs.top - pairs);
    if (n > TG_CFG_MAX_PROVIDERS) {
        tg_cfg_error(ctx, map,
                     "providers has %zu entries; at most %d are "
                     "allowed",
                     n, TG_CFG_MAX_PROVIDERS);
        return;
    }
    skip = tg_cfg_find_duplicates(ctx, map, "in providers");
    cfg->providers = tg_cfg_calloc(ctx, n, sizeof(*cfg->providers));
    if (skip == NULL || cfg->providers == NULL)
        return;
    for (i = 0; i < n; i++)
        if (!skip[i])
            fill_provider(ctx, tg_cfg_node(ctx, pairs[i].key),
                          tg_cfg_node(ctx, pairs[i].value),
                          &cfg->providers[cfg->n_providers++]);
}
