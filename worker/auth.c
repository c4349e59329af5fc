/*
 * auth.c - who is calling: API key to team.
 *
 * A key arrives as "Authorization: Bearer K" or "X-API-Key: K". The config
 * stores only SHA-256 hashes of keys, so the worker hashes what it is given
 * and looks the hash up in a table sorted once at start (binary search; no
 * key is ever kept in memory in the clear). The secret token, the one key
 * the config holds in the clear, is compared in constant time. Admin keys
 * sit in the same table with no team: they open /admin/ and nothing else.
 */
#include <event2/http.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tg.h"
#include "tg_http.h"
#include "tg_worker.h"

struct auth_entry {
    const char *hash;
    const struct tg_team *team; /* NULL: an admin key */
};

struct tg_auth_table {
    struct auth_entry *entries;
    size_t n;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct auth_entry *)a)->hash,
                  ((const struct auth_entry *)b)->hash);
}

struct tg_auth_table *tg_auth_build(const struct tg_config *cfg)
{
    struct tg_auth_table *t = calloc(1, sizeof(*t));
    size_t i, k, n = 0;

    if (t == NULL)
        return NULL;
    for (i = 0; i < cfg->n_teams; i++)
        n += cfg->teams[i].n_keys;
    n += cfg->n_admin_keys;
    t->entries = calloc(n ? n : 1, sizeof(*t->entries));
    if (t->entries == NULL) {
        free(t);
        return NULL;
    }
    for (i = 0; i < cfg->n_teams; i++)
        for (k = 0; k < cfg->teams[i].n_keys; k++) {
            t->entries[t->n].hash = cfg->teams[i].key_hashes[k];
            t->entries[t->n++].team = &cfg->teams[i];
        }
    for (k = 0; k < cfg->n_admin_keys; k++)
        t->entries[t->n++].hash = cfg->admin_key_hashes[k];
    qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
    return t;
}

void tg_auth_free(struct tg_auth_table *t)
{
    if (t == NULL)
        return;
    free(t->entries);
    free(t);
}

/* The key the request presents, or NULL; *is_malformed when an
 * Authorization header is there but is not a bearer token. */
static const char *presented_key(struct evhttp_request *http,
                                 bool *is_malformed)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(http);
    const char *v = evhttp_find_header(h, "Authorization");

    *is_malformed = false;
    if (v != NULL) {
        if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6])) {
            *is_malformed = true;
            return NULL;
        }
        v += 6;
        while (*v == ' ')
            v++;
        return *v ? v : NULL;
    }
    v = evhttp_find_header(h, "X-API-Key");
    return v != NULL && *v ? v : NULL;
}

/* The entry of a key (NULL: unknown), and in *key_id what logs may name
 * it by: the start of its hash, which identifies it without revealing
 * it. The secret token's entry is its team's. */
static const struct auth_entry *entry_of_key(const struct tg_worker *w,
                                             const char *key,
                                             const char **key_id,
                                             struct auth_entry *token)
{
    const struct tg_config *cfg = w->cfg;
    char hash[TG_KEY_HASH_LEN + 1];
    struct auth_entry probe = {.hash = hash}, *hit;
    size_t n = strlen(key), token_len = strlen(cfg->auth.secret_token);

    if (token_len > 0 && n == token_len &&
        CRYPTO_memcmp(key, cfg->auth.secret_token, n) == 0) {
        *key_id = "secret_token";
        token->team = cfg->auth.secret_token_team;
        return token;
    }
    tg_cfg_hash_key(key, n, hash);
    hit = bsearch(&probe, w->auth->entries, w->auth->n,
                  sizeof(*w->auth->entries), entry_cmp);
    if (hit != NULL)
        *key_id = hit->hash + strlen("sha256:");
    return hit;
}

/* The key a request presents, or NULL after answering 401. */
static const char *required_key(struct tg_req *r)
{
    bool is_malformed;
    const char *key = presented_key(r->http, &is_malformed);

    if (is_malformed)
        tg_req_fail(r, 401, "invalid_api_key",
                    "The Authorization header must be 'Bearer <key>'.");
    else if (key == NULL)
        tg_req_fail(r, 401, "missing_api_key",
                    "You didn't provide an API key. Send it as "
                    "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.");
    return key;
}

int tg_auth_admin(struct tg_req *r)
{
    struct auth_entry token;
    const struct auth_entry *e;
    const char *key = required_key(r);

    if (key == NULL)
        return TG_ERROR;
    e = entry_of_key(r->worker, key, &r->key_id, &token);
    if (e == NULL) {
        tg_req_fail(r, 401, "invalid_api_key", "Incorrect API key provided.");
        return TG_ERROR;
    }
    if (e->team != NULL) {
        tg_req_fail(r, 403, "admin_key_required",
                    "The admin API needs an admin key; this is a key of "
                    "team %s.",
                    e->team->name);
        return TG_ERROR;
    }
    return TG_OK;
}

int tg_auth_check(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    const struct auth_entry *e;
    struct auth_entry token;
    bool is_malformed;
    const char *key = presented_key(r->http, &is_malformed);

    if (is_malformed) {
        tg_req_fail(r, 401, "invalid_api_key",
                    "The Authorization header must be 'Bearer <key>'.");
        return TG_ERROR;
    }
    if (key == NULL) {
        r->team = cfg->auth.anonymous_team;
        if (r->team != NULL)
            return TG_OK;
        tg_req_fail(r, 401, "missing_api_key",
                    "You didn't provide an API key. Send it as "
                    "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.");
        return TG_ERROR;
    }
    e = entry_of_key(r->worker, key, &r->key_id, &token);
    if (e == NULL) {
        tg_req_fail(r, 401, "invalid_api_key", "Incorrect API key provided.");
        return TG_ERROR;
    }
    if (e->team == NULL) {
        tg_req_fail(r, 403, "team_key_required",
                    "An admin key opens the admin API only; calls need a "
                    "team's key.");
        return TG_ERROR;
    }
    r->team = e->team;
    return TG_OK;
}
