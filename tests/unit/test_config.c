/*
 * test_config.c - the configuration loader: defaults, every kind of error
 * with its exact message and position, interpolation, provider disabling,
 * key hashing, and model name resolution.
 *
 * Configs are loaded from strings named "t.yaml", so a diagnostic reads
 * "t.yaml:LINE:COL: ..."; the example file is loaded from config/, so the
 * tests run from the top of the tree.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg.h"
#include "tg_config.h"

static struct tg_cfg_diags diags;
static struct tg_config *cfg;

/* What the example file reads, unset so it loads as in `make run`. */
static const char *const example_env[] = {
    "SECRET_TOKEN",          "OPENAI_API_KEY",    "GROQ_API_KEY",
    "ANTHROPIC_API_KEY",     "GEMINI_API_KEY",    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
};

static void cleanup(void)
{
    tg_cfg_free(cfg);
    cfg = NULL;
    tg_cfg_diags_free(&diags);
}

static struct tg_config *load(const char *yaml)
{
    cfg = tg_cfg_load_string("t.yaml", yaml, strlen(yaml), &diags);
    return cfg;
}

/* Loads yaml that must be valid; prints the diagnostics when it is not. */
static struct tg_config *load_ok(const char *yaml)
{
    size_t i;

    load(yaml);
    for (i = 0; i < diags.n && cfg == NULL; i++)
        cr_log_error("%s", diags.items[i].text);
    cr_assert_not_null(cfg);
    cr_assert_eq(diags.n_errors, 0);
    return cfg;
}

static bool has_diag(const char *text)
{
    size_t i;

    for (i = 0; i < diags.n; i++)
        if (strcmp(diags.items[i].text, text) == 0)
            return true;
    return false;
}

/* Asserts the load failed and that `text` is one of its diagnostics. */
static void expect_error(const char *yaml, const char *text)
{
    size_t i;

    load(yaml);
    cr_assert_null(cfg, "expected the load to fail: %s", yaml);
    cr_assert_geq(diags.n_errors, 1);
    if (!has_diag(text)) {
        for (i = 0; i < diags.n; i++)
            cr_log_error("got: %s", diags.items[i].text);
        cr_assert_fail("missing diagnostic: %s", text);
    }
}

static int resolve(const char *name, struct tg_route_target *t)
{
    return tg_cfg_resolve_model(cfg, name, strlen(name), t);
}

static size_t count_warnings(void)
{
    size_t i, n = 0;

    for (i = 0; i < diags.n; i++)
        n += !diags.items[i].is_error;
    return n;
}

#define MOCK                 \
    "providers:\n"           \
    "  mock: {type: mock}\n" \
    "models:\n"              \
    "  echo: {provider: mock, model: echo}\n"

/* ------------------------------------------------------------------ */
/* The example file                                                     */

static void example_init(void)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(example_env); i++)
        unsetenv(example_env[i]);
}

TestSuite(example, .init = example_init, .fini = cleanup);

Test(example, loads_with_warnings_only)
{
    size_t i;

    cfg = tg_cfg_load("config/tollgate.yaml", &diags);
    for (i = 0; i < diags.n; i++)
        cr_log_info("%s", diags.items[i].text);
    cr_assert_not_null(cfg);
    cr_assert_eq(diags.n_errors, 0);
    cr_assert_eq(count_warnings(), 5);
    cr_assert_str_eq(cfg->path, "config/tollgate.yaml");
}

Test(example, disables_the_providers_whose_secrets_are_unset)
{
    static const char *const disabled[] = {"openai", "anthropic", "bedrock",
                                           "google", "groq"};
    size_t i;

    cfg = tg_cfg_load("config/tollgate.yaml", &diags);
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg->n_providers, 7);
    for (i = 0; i < TG_ARRAY_LEN(disabled); i++)
        cr_assert_not(tg_cfg_find_provider(cfg, disabled[i])->is_enabled, "%s",
                      disabled[i]);
    cr_assert(tg_cfg_find_provider(cfg, "local")->is_enabled);
    cr_assert(tg_cfg_find_provider(cfg, "mock")->is_enabled);
    cr_assert_eq(tg_cfg_find_provider(cfg, "google")->type, TG_PROVIDER_GEMINI);
    cr_assert_str_eq(tg_cfg_find_provider(cfg, "bedrock")->base_url,
                     "https://bedrock-runtime.us-east-1.amazonaws.com");
}

Test(example, demo_team_holds_the_hash_of_the_demo_key)
{
    char expected[TG_KEY_HASH_LEN + 1];
    struct tg_team *demo;

    cfg = tg_cfg_load("config/tollgate.yaml", &diags);
    cr_assert_not_null(cfg);
    demo = tg_cfg_find_team(cfg, "demo");
    cr_assert_not_null(demo);
    tg_cfg_hash_key("tg-demo-key", 11, expected);
    cr_assert_eq(demo->n_keys, 1);
    cr_assert_str_eq(demo->key_hashes[0], expected);
    cr_assert_str_eq(demo->key_hashes[0],
                     "sha256:e7aab4b439baa8c615eb31e352f5b4259085813fbcd95a6"
                     "5a5a346a6bdfb1bb3");
    cr_assert_eq(demo->rpm, 600);
    cr_assert_eq(demo->tpm, 600000);
    cr_assert_float_eq(demo->credits, 1000, 1e-9);
    cr_assert_null(demo->models);
    cr_assert_null(demo->model_groups);
}

Test(example, routes_and_groups_as_documented)
{
    struct tg_model_group *g;
    struct tg_route_target t;

    cfg = tg_cfg_load("config/tollgate.yaml", &diags);
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg->n_models, 8);
    cr_assert_str_eq(cfg->default_model, "mock-echo");
    cr_assert_str_eq(cfg->auth.secret_token, "");
    cr_assert_null(cfg->auth.secret_token_team);
    cr_assert_eq(cfg->n_model_groups, 1);
    g = &cfg->model_groups[0];
    cr_assert_str_eq(g->name, "ChatAgent");
    cr_assert_str_eq(g->primary->name, "gpt-4o");
    cr_assert_eq(g->n_fallbacks, 2);
    cr_assert_str_eq(g->fallbacks[0]->name, "claude-sonnet-4.5");
    cr_assert_str_eq(g->fallbacks[1]->name, "mock-echo");
    cr_assert_eq(resolve("anthropic.claude-haiku-4-5-20251001-v1:0", &t),
                 TG_OK);
    cr_assert_str_eq(t.model->name, "claude-haiku-4.5");
    cr_assert_float_eq(t.model->input_usd_per_mtok, 1, 1e-12);
    cr_assert_float_eq(t.model->output_usd_per_mtok, 5, 1e-12);
    cr_assert_eq(resolve("groq/llama-3.3-70b-versatile", &t), TG_OK);
    cr_assert_str_eq(t.model->name, "llama-3.3-70b");
}

/* ------------------------------------------------------------------ */
/* Defaults                                                             */

TestSuite(defaults, .fini = cleanup);

Test(defaults, empty_mapping_gets_every_top_level_default)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    load_ok("{}\n");
    cr_assert_eq(diags.n, 0);
    cr_assert_eq(cfg->n_listen, 1);
    cr_assert_str_eq(cfg->listen[0].host, "127.0.0.1");
    cr_assert_eq(cfg->listen[0].port, 8000);
    cr_assert_eq(cfg->workers, cpus < 1                    ? 1
                               : cpus > TG_CFG_MAX_WORKERS ? TG_CFG_MAX_WORKERS
                                                           : (int)cpus);
    cr_assert_str_eq(cfg->state_file, "./tollgate.state");
    cr_assert_str_eq(cfg->usage_log, "");
    cr_assert_str_eq(cfg->access_log, "");
    cr_assert_str_eq(cfg->pid_file, "");
    cr_assert_eq(cfg->shutdown_timeout_s, 30);
    cr_assert_str_eq(cfg->default_model, "");
    cr_assert_eq(cfg->n_providers, 0);
    cr_assert_eq(cfg->n_models, 0);
    cr_assert_eq(cfg->n_model_groups, 0);
    cr_assert_eq(cfg->n_teams, 0);
}

Test(defaults, sections_get_their_defaults)
{
    load_ok("{}\n");
    cr_assert_eq(cfg->limits.max_body_bytes, 4194304);
    cr_assert_eq(cfg->limits.max_header_bytes, 16384);
    cr_assert_eq(cfg->limits.max_connections, 4096);
    cr_assert_eq(cfg->limits.idle_timeout_s, 60);
    cr_assert_null(cfg->auth.anonymous_team);
    cr_assert_str_eq(cfg->auth.secret_token, "");
    cr_assert_null(cfg->auth.secret_token_team);
    cr_assert_eq(cfg->health.allowed_fails, 3);
    cr_assert_eq(cfg->health.cooldown_s, 30);
    cr_assert_eq(cfg->defaults.rpm, 60);
    cr_assert_eq(cfg->defaults.tpm, 60000);
    cr_assert_float_eq(cfg->defaults.credits, 100, 1e-12);
}

Test(defaults, null_sections_read_as_empty)
{
    load_ok("limits:\nauth: ~\nhealth: null\nproviders:\nteams:\n");
    cr_assert_eq(cfg->limits.max_body_bytes, 4194304);
    cr_assert_eq(cfg->health.cooldown_s, 30);
    cr_assert_eq(cfg->n_providers, 0);
}

Test(defaults, null_string_reads_as_empty)
{
    load_ok("usage_log:\naccess_log: ~\npid_file: \"\"\n");
    cr_assert_str_eq(cfg->usage_log, "");
    cr_assert_str_eq(cfg->access_log, "");
    cr_assert_str_eq(cfg->pid_file, "");
}

Test(defaults, network_provider_defaults)
{
    struct tg_provider *p;

    load_ok("providers:\n"
            "  o: {type: openai}\n"
            "  a: {type: anthropic, api_key: k}\n"
            "  g: {type: gemini, api_key: k}\n"
            "  b: {type: bedrock, region: eu-west-3, access_key_id: i,\n"
            "      secret_access_key: s}\n");
    p = tg_cfg_find_provider(cfg, "o");
    cr_assert(p->is_enabled);
    cr_assert_eq(p->type, TG_PROVIDER_OPENAI);
    cr_assert_str_eq(p->base_url, "https://api.openai.com/v1");
    cr_assert_str_eq(p->api_key, "");
    cr_assert_eq(p->connect_timeout_ms, 5000);
    cr_assert_eq(p->first_byte_timeout_ms, 60000);
    cr_assert_eq(p->timeout_ms, 600000);
    cr_assert_eq(p->max_connections, 64);
    cr_assert_eq(p->retries, 1);
    cr_assert(p->tls_verify);
    cr_assert_str_eq(p->ca_file, "");
    cr_assert_str_eq(tg_cfg_find_provider(cfg, "a")->base_url,
                     "https://api.anthropic.com");
    cr_assert_str_eq(tg_cfg_find_provider(cfg, "g")->base_url,
                     "https://generativelanguage.googleapis.com");
    p = tg_cfg_find_provider(cfg, "b");
    cr_assert_str_eq(p->base_url,
                     "https://bedrock-runtime.eu-west-3.amazonaws.com");
    cr_assert_str_eq(p->region, "eu-west-3");
    cr_assert_str_eq(p->access_key_id, "i");
    cr_assert_str_eq(p->secret_access_key, "s");
    cr_assert_str_eq(p->session_token, "");
}

Test(defaults, mock_provider_defaults)
{
    struct tg_provider *p;

    load_ok("providers: {m: {type: mock}, d: {type: mock, "
            "stream_delay_ms: 25}}\n");
    p = tg_cfg_find_provider(cfg, "m");
    cr_assert_eq(p->type, TG_PROVIDER_MOCK);
    cr_assert(p->is_enabled);
    cr_assert_str_eq(p->base_url, "");
    cr_assert_eq(p->stream_delay_ms, 0);
    cr_assert_eq(tg_cfg_find_provider(cfg, "d")->stream_delay_ms, 25);
}

Test(defaults, provider_settings_replace_defaults)
{
    struct tg_provider *p;

    load_ok("providers:\n"
            "  o: {type: openai, base_url: \"http://h:1/v1//\",\n"
            "      connect_timeout_ms: 1, first_byte_timeout_ms: 3600000,\n"
            "      timeout_ms: 86400000, max_connections: 100000,\n"
            "      retries: 0, tls_verify: true,\n"
            "      ca_file: config/tollgate.yaml}\n");
    p = tg_cfg_find_provider(cfg, "o");
    cr_assert_str_eq(p->base_url, "http://h:1/v1");
    cr_assert_eq(p->connect_timeout_ms, 1);
    cr_assert_eq(p->first_byte_timeout_ms, 3600000);
    cr_assert_eq(p->timeout_ms, 86400000);
    cr_assert_eq(p->max_connections, 100000);
    cr_assert_eq(p->retries, 0);
    cr_assert(p->tls_verify);
    cr_assert_str_eq(p->ca_file, "config/tollgate.yaml");
}

Test(defaults, model_prices_default_to_zero)
{
    load_ok(MOCK "  priced: {provider: mock, model: p, input_usd_per_mtok: "
                 "0.15, output_usd_per_mtok: 1e1}\n");
    cr_assert_eq(cfg->n_models, 2);
    cr_assert_str_eq(cfg->models[0].name, "echo");
    cr_assert_str_eq(cfg->models[0].upstream_id, "echo");
    cr_assert_eq(cfg->models[0].provider, &cfg->providers[0]);
    cr_assert_float_eq(cfg->models[0].input_usd_per_mtok, 0, 0);
    cr_assert_float_eq(cfg->models[0].output_usd_per_mtok, 0, 0);
    cr_assert_float_eq(cfg->models[1].input_usd_per_mtok, 0.15, 1e-12);
    cr_assert_float_eq(cfg->models[1].output_usd_per_mtok, 10, 1e-12);
}

Test(defaults, team_settings_default_to_the_defaults_section)
{
    struct tg_team *t;

    load_ok("defaults: {rpm: 5, tpm: 6, credits: 7.5}\n"
            "teams:\n"
            "  plain: {}\n"
            "  empty:\n"
            "  own: {rpm: 1000000000, tpm: 1000000000000, credits: 0,\n"
            "        max_budget_usd: 50.5, max_tokens: 1000000}\n");
    t = tg_cfg_find_team(cfg, "plain");
    cr_assert_eq(t->rpm, 5);
    cr_assert_eq(t->tpm, 6);
    cr_assert_float_eq(t->credits, 7.5, 1e-12);
    cr_assert_float_eq(t->max_budget_usd, -1, 0);
    cr_assert_eq(t->max_tokens, 0);
    cr_assert_eq(t->n_keys, 0);
    cr_assert_null(t->models);
    cr_assert_null(t->model_groups);
    cr_assert_eq(tg_cfg_find_team(cfg, "empty")->rpm, 5);
    t = tg_cfg_find_team(cfg, "own");
    cr_assert_eq(t->rpm, 1000000000);
    cr_assert_eq(t->tpm, INT64_C(1000000000000));
    cr_assert_float_eq(t->credits, 0, 0);
    cr_assert_float_eq(t->max_budget_usd, 50.5, 1e-12);
    cr_assert_eq(t->max_tokens, 1000000);
}

Test(defaults, empty_allow_list_is_not_null)
{
    struct tg_team *t;

    load_ok(MOCK "model_groups: {G: {primary: echo}}\n"
                 "teams:\n"
                 "  none: {models: [], model_groups: []}\n"
                 "  some: {models: [echo], model_groups: [G]}\n");
    t = tg_cfg_find_team(cfg, "none");
    cr_assert_not_null(t->models);
    cr_assert_eq(t->n_models, 0);
    cr_assert_not_null(t->model_groups);
    cr_assert_eq(t->n_model_groups, 0);
    t = tg_cfg_find_team(cfg, "some");
    cr_assert_eq(t->n_models, 1);
    cr_assert_eq(t->models[0], &cfg->models[0]);
    cr_assert_eq(t->n_model_groups, 1);
    cr_assert_eq(t->model_groups[0], &cfg->model_groups[0]);
    cr_assert_eq(cfg->model_groups[0].n_fallbacks, 0);
}

Test(defaults, listen_accepts_names_ipv4_ipv6_and_a_single_string)
{
    load_ok("listen: [\"0.0.0.0:80\", \"[::1]:8443\", \"localhost:65535\",\n"
            "         \"api.example.com:1\"]\n");
    cr_assert_eq(cfg->n_listen, 4);
    cr_assert_str_eq(cfg->listen[0].host, "0.0.0.0");
    cr_assert_eq(cfg->listen[0].port, 80);
    cr_assert_str_eq(cfg->listen[1].host, "::1");
    cr_assert_eq(cfg->listen[1].port, 8443);
    cr_assert_str_eq(cfg->listen[2].host, "localhost");
    cr_assert_eq(cfg->listen[2].port, 65535);
    cr_assert_str_eq(cfg->listen[3].host, "api.example.com");
    cleanup();
    load_ok("listen: 10.1.2.3:9000\n");
    cr_assert_eq(cfg->n_listen, 1);
    cr_assert_str_eq(cfg->listen[0].host, "10.1.2.3");
    cr_assert_eq(cfg->listen[0].port, 9000);
}

Test(defaults, workers_takes_a_number_or_auto)
{
    load_ok("workers: 256\n");
    cr_assert_eq(cfg->workers, 256);
    cleanup();
    load_ok("workers: auto\n");
    cr_assert_geq(cfg->workers, 1);
    cr_assert_leq(cfg->workers, TG_CFG_MAX_WORKERS);
}

Test(defaults, server_settings_are_read)
{
    load_ok("state_file: /var/lib/tg.state\nusage_log: u.jsonl\n"
            "access_log: a.log\npid_file: /run/tg.pid\n"
            "shutdown_timeout_s: 0\n"
            "limits: {max_body_bytes: 1073741824, max_header_bytes: 1024,\n"
            "         max_connections: 1, idle_timeout_s: 86400}\n"
            "health: {allowed_fails: 1000, cooldown_s: 1}\n");
    cr_assert_str_eq(cfg->state_file, "/var/lib/tg.state");
    cr_assert_str_eq(cfg->usage_log, "u.jsonl");
    cr_assert_str_eq(cfg->access_log, "a.log");
    cr_assert_str_eq(cfg->pid_file, "/run/tg.pid");
    cr_assert_eq(cfg->shutdown_timeout_s, 0);
    cr_assert_eq(cfg->limits.max_body_bytes, 1073741824);
    cr_assert_eq(cfg->limits.max_header_bytes, 1024);
    cr_assert_eq(cfg->limits.max_connections, 1);
    cr_assert_eq(cfg->limits.idle_timeout_s, 86400);
    cr_assert_eq(cfg->health.allowed_fails, 1000);
    cr_assert_eq(cfg->health.cooldown_s, 1);
}

Test(defaults, auth_points_at_its_teams)
{
    load_ok("teams: {pub: {}, ops: {}}\n"
            "auth: {anonymous_team: pub, secret_token: tok,\n"
            "       secret_token_team: ops}\n");
    cr_assert_eq(cfg->auth.anonymous_team, tg_cfg_find_team(cfg, "pub"));
    cr_assert_str_eq(cfg->auth.secret_token, "tok");
    cr_assert_eq(cfg->auth.secret_token_team, tg_cfg_find_team(cfg, "ops"));
}

Test(defaults, secret_token_team_defaults_to_default)
{
    load_ok("teams: {default: {}}\nauth: {secret_token: tok}\n");
    cr_assert_eq(cfg->auth.secret_token_team, tg_cfg_find_team(cfg, "default"));
}

/* ------------------------------------------------------------------ */
/* Errors: each kind, with its exact text and position                 */

TestSuite(errors, .fini = cleanup);

Test(errors, unknown_key_at_top_level)
{
    expect_error("listen: [\"127.0.0.1:8000\"]\nrmp: 3\n",
                 "t.yaml:2:1: error: unknown key \"rmp\" at the top level "
                 "(expected one of: listen, workers, state_file, usage_log, "
                 "access_log, pid_file, shutdown_timeout_s, limits, auth, "
                 "default_model, providers, models, model_groups, health, "
                 "defaults, teams, admin_keys)");
    cr_assert_eq(diags.n_errors, 1);
}

Test(errors, unknown_key_in_provider)
{
    expect_error("providers:\n"
                 "  openai:\n"
                 "    type: openai\n"
                 "    api_kee: x\n",
                 "t.yaml:4:5: error: unknown key \"api_kee\" in provider "
                 "\"openai\" (expected one of: type, base_url, api_key, "
                 "connect_timeout_ms, first_byte_timeout_ms, timeout_ms, "
                 "max_connections, retries, tls_verify, ca_file)");
}

Test(errors, keys_of_another_provider_type_are_unknown)
{
    expect_error("providers:\n  m: {type: mock, base_url: http://x}\n",
                 "t.yaml:2:19: error: unknown key \"base_url\" in provider "
                 "\"m\" (expected one of: type, stream_delay_ms)");
    cleanup();
    expect_error("providers:\n  o: {type: openai, region: us-east-1}\n",
                 "t.yaml:2:21: error: unknown key \"region\" in provider "
                 "\"o\" (expected one of: type, base_url, api_key, "
                 "connect_timeout_ms, first_byte_timeout_ms, timeout_ms, "
                 "max_connections, retries, tls_verify, ca_file)");
}

Test(errors, unknown_key_in_team)
{
    expect_error("teams:\n"
                 "  acme:\n"
                 "    rpm: 5\n"
                 "    rmp: 6\n",
                 "t.yaml:4:5: error: unknown key \"rmp\" in team \"acme\" "
                 "(expected one of: keys, rpm, tpm, credits, max_budget_usd, "
                 "model_groups, models, max_tokens)");
}

Test(errors, unknown_key_in_sections)
{
    expect_error("limits: {max_body: 1}\n",
                 "t.yaml:1:10: error: unknown key \"max_body\" in limits "
                 "(expected one of: max_body_bytes, max_header_bytes, "
                 "max_connections, idle_timeout_s)");
    cleanup();
    expect_error(MOCK "  x: {provider: mock, model: y, price: 1}\n",
                 "t.yaml:5:33: error: unknown key \"price\" in model \"x\" "
                 "(expected one of: provider, model, input_usd_per_mtok, "
                 "output_usd_per_mtok)");
}

Test(errors, wrong_type_names_the_expected_type)
{
    expect_error("workers: {n: 1}\n",
                 "t.yaml:1:10: error: workers must be \"auto\" or an integer "
                 "from 1 to 256, got a mapping");
    cleanup();
    expect_error("limits: [1]\n",
                 "t.yaml:1:9: error: limits must be a mapping, got a sequence");
    cleanup();
    expect_error("teams:\n  a:\n    rpm: [1]\n",
                 "t.yaml:3:10: error: rpm must be an integer from 1 to "
                 "1000000000, got a sequence");
    cleanup();
    expect_error("state_file: {a: b}\n",
                 "t.yaml:1:13: error: state_file must be a string, got a "
                 "mapping");
    cleanup();
    expect_error("teams:\n  a:\n    keys: k\n",
                 "t.yaml:3:11: error: keys must be a sequence of keys, got a "
                 "scalar");
    cleanup();
    expect_error("providers:\n  m: [x]\n",
                 "t.yaml:2:6: error: provider \"m\" must be a mapping, got a "
                 "sequence");
    cleanup();
    expect_error("- a\n",
                 "t.yaml:1:1: error: the file must be a mapping of settings "
                 "(listen, providers, models, teams, ...), got a sequence");
}

Test(errors, integers_out_of_range)
{
    expect_error("shutdown_timeout_s: 86401\n",
                 "t.yaml:1:21: error: shutdown_timeout_s must be an integer "
                 "from 0 to 86400, got \"86401\"");
    cleanup();
    expect_error("limits:\n  max_body_bytes: 1023\n",
                 "t.yaml:2:19: error: max_body_bytes must be an integer from "
                 "1024 to 1073741824, got \"1023\"");
    cleanup();
    expect_error("health: {allowed_fails: 0}\n",
                 "t.yaml:1:25: error: allowed_fails must be an integer from 1 "
                 "to 1000, got \"0\"");
    cleanup();
    expect_error("providers:\n  o: {type: openai, retries: 11}\n",
                 "t.yaml:2:30: error: retries must be an integer from 0 to "
                 "10, got \"11\"");
    cleanup();
    expect_error("defaults: {tpm: 1000000000001}\n",
                 "t.yaml:1:17: error: tpm must be an integer from 1 to "
                 "1000000000000, got \"1000000000001\"");
    cleanup();
    expect_error("defaults: {rpm: 99999999999999999999}\n",
                 "t.yaml:1:17: error: rpm must be an integer from 1 to "
                 "1000000000, got \"99999999999999999999\"");
    cleanup();
    expect_error("teams:\n  a: {max_tokens: 0}\n",
                 "t.yaml:2:19: error: max_tokens must be an integer from 1 "
                 "to 1000000, got \"0\"");
    cleanup();
    expect_error("teams:\n  a: {rpm: -5}\n",
                 "t.yaml:2:12: error: rpm must be an integer from 1 to "
                 "1000000000, got \"-5\"");
}

Test(errors, integers_are_strict_decimal)
{
    static const char *const bad[] = {"abc",    "12abc", "1e3",  "\"\"",
                                      "\" 5\"", "+5",    "0x10", "5.0"};
    char yaml[64], text[160];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        snprintf(yaml, sizeof(yaml), "health: {cooldown_s: %s}\n", bad[i]);
        snprintf(text, sizeof(text),
                 "t.yaml:1:22: error: cooldown_s must be an integer from 1 "
                 "to 86400, got \"%s\"",
                 bad[i][0] == '"' ? (bad[i][1] == '"' ? "" : " 5") : bad[i]);
        expect_error(yaml, text);
        cleanup();
    }
}

Test(errors, null_number_is_an_error)
{
    expect_error("health:\n  cooldown_s: ~\n",
                 "t.yaml:2:15: error: cooldown_s must be an integer from 1 to "
                 "86400, got null");
}

Test(errors, bad_numbers_for_prices_and_credits)
{
    static const char *const bad[] = {"abc",  "-1",  "1e999", "inf", ".nan",
                                      "0x10", "1_5", "1.5.2", "e3"};
    char yaml[64], text[160];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        snprintf(yaml, sizeof(yaml), "defaults: {credits: %s}\n", bad[i]);
        snprintf(text, sizeof(text),
                 "t.yaml:1:21: error: credits must be a number >= 0, got "
                 "\"%s\"",
                 bad[i]);
        expect_error(yaml, text);
        cleanup();
    }
}

Test(errors, good_numbers_for_prices_and_credits)
{
    static const char *const good[] = {"2.5", "10", ".5", "1e-3",
                                       "0",   "-0", "3.", "1E2"};
    static const double values[] = {2.5, 10, 0.5, 0.001, 0, 0, 3, 100};
    char yaml[64];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(good); i++) {
        snprintf(yaml, sizeof(yaml), "defaults: {credits: %s}\n", good[i]);
        load_ok(yaml);
        cr_assert_float_eq(cfg->defaults.credits, values[i], 1e-12, "%s",
                           good[i]);
        cleanup();
    }
}

Test(errors, booleans_are_exactly_true_or_false)
{
    expect_error("providers:\n  o: {type: openai, tls_verify: yes}\n",
                 "t.yaml:2:33: error: tls_verify must be true or false, got "
                 "\"yes\"");
    cleanup();
    expect_error("providers:\n  o: {type: openai, tls_verify: True}\n",
                 "t.yaml:2:33: error: tls_verify must be true or false, got "
                 "\"True\"");
}

#define LISTEN_EXPECTED \
    " (expected \"host:port\", as in \"127.0.0.1:8000\" or \"[::1]:8000\")"

Test(errors, bad_listen_strings)
{
    static const struct {
        const char *value, *message;
    } cases[] = {
        {"127.0.0.1", "has no port" LISTEN_EXPECTED},
        {"::1:80", "has an IPv6 host without brackets" LISTEN_EXPECTED},
        {"[::1]", "has an IPv6 host but not \"[host]:port\"" LISTEN_EXPECTED},
        {"127.0.0.1:0", ": the port must be an integer from 1 to 65535"},
        {"h:65536", ": the port must be an integer from 1 to 65535"},
        {"h:http", ": the port must be an integer from 1 to 65535"},
        {"h:", ": the port must be an integer from 1 to 65535"},
        {":80", ": the host must be an IPv4 address, a host name or an IPv6 "
                "address in brackets"},
        {"256.1.1.1:80", ": the host must be an IPv4 address, a host name or "
                         "an IPv6 address in brackets"},
        {"bad_host:80", ": the host must be an IPv4 address, a host name or "
                        "an IPv6 address in brackets"},
        {"-a.com:80", ": the host must be an IPv4 address, a host name or an "
                      "IPv6 address in brackets"},
        {"[1.2.3.4]:80", ": the host must be an IPv4 address, a host name or "
                         "an IPv6 address in brackets"},
    };
    char yaml[128], text[320];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        snprintf(yaml, sizeof(yaml), "listen: [\"%s\"]\n", cases[i].value);
        snprintf(text, sizeof(text),
                 "t.yaml:1:10: error: listen address \"%s\"%s%s",
                 cases[i].value, cases[i].message[0] == ':' ? "" : " ",
                 cases[i].message);
        expect_error(yaml, text);
        cleanup();
    }
}

Test(errors, listen_list_shape)
{
    expect_error("listen: []\n",
                 "t.yaml:1:9: error: listen must name at least one address");
    cleanup();
    expect_error("listen: {a: b}\n",
                 "t.yaml:1:9: error: listen must be a sequence of "
                 "\"host:port\" strings, got a mapping");
    cleanup();
    expect_error("listen: [\"a:1\", \"a:1\"]\n",
                 "t.yaml:1:17: error: listen address a:1 is listed twice");
}

Test(errors, bad_workers)
{
    static const char *const bad[] = {"0", "257", "many", "-1", "Auto"};
    char yaml[64], text[160];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++) {
        snprintf(yaml, sizeof(yaml), "workers: %s\n", bad[i]);
        snprintf(text, sizeof(text),
                 "t.yaml:1:10: error: workers must be \"auto\" or an integer "
                 "from 1 to 256, got \"%s\"",
                 bad[i]);
        expect_error(yaml, text);
        cleanup();
    }
}

Test(errors, missing_required_provider_keys)
{
    expect_error("providers:\n  p: {base_url: http://x}\n",
                 "t.yaml:2:6: error: provider \"p\" is missing required key "
                 "\"type\" (one of mock, openai, anthropic, bedrock, gemini)");
    cleanup();
    expect_error("providers:\n  a:\n    type: anthropic\n",
                 "t.yaml:3:5: error: provider \"a\" is missing required key "
                 "\"api_key\"");
    cleanup();
    expect_error("providers:\n  g: {type: gemini}\n",
                 "t.yaml:2:6: error: provider \"g\" is missing required key "
                 "\"api_key\"");
    cleanup();
    expect_error("providers:\n  b: {type: bedrock}\n",
                 "t.yaml:2:6: error: provider \"b\" is missing required key "
                 "\"region\"");
    cr_assert(has_diag("t.yaml:2:6: error: provider \"b\" is missing "
                       "required key \"access_key_id\""));
    cr_assert(has_diag("t.yaml:2:6: error: provider \"b\" is missing "
                       "required key \"secret_access_key\""));
    cr_assert_eq(diags.n_errors, 3);
}

Test(errors, empty_bedrock_region)
{
    expect_error("providers:\n"
                 "  b: {type: bedrock, access_key_id: i,\n"
                 "      secret_access_key: s,\n"
                 "      region: \"\"}\n",
                 "t.yaml:4:15: error: region must not be empty (e.g. "
                 "us-east-1)");
}

Test(errors, missing_required_model_and_group_keys)
{
    expect_error("providers: {m: {type: mock}}\nmodels:\n  x: {model: y}\n",
                 "t.yaml:3:6: error: model \"x\" is missing required key "
                 "\"provider\" (a provider name)");
    cleanup();
    expect_error("providers: {m: {type: mock}}\nmodels:\n  x: {provider: m}\n",
                 "t.yaml:3:6: error: model \"x\" is missing required key "
                 "\"model\" (the upstream model id)");
    cleanup();
    expect_error(MOCK "  x: {provider: mock, model: \"\"}\n",
                 "t.yaml:5:30: error: model must not be empty (the upstream "
                 "model id)");
    cleanup();
    expect_error(MOCK "model_groups:\n  G: {fallbacks: [echo]}\n",
                 "t.yaml:6:6: error: model group \"G\" is missing required "
                 "key \"primary\" (a model name)");
}

Test(errors, bad_provider_type)
{
    expect_error("providers:\n  p: {type: openia}\n",
                 "t.yaml:2:13: error: type must be one of mock, openai, "
                 "anthropic, bedrock, gemini, got \"openia\"");
}

Test(errors, model_names_an_unknown_provider)
{
    expect_error("providers: {m: {type: mock}}\n"
                 "models:\n"
                 "  x: {provider: nope, model: y}\n",
                 "t.yaml:3:17: error: unknown provider \"nope\" in model "
                 "\"x\"");
}

Test(errors, group_names_an_unknown_model)
{
    expect_error(MOCK "model_groups:\n"
                      "  G: {primary: echo, fallbacks: [gpt-9]}\n",
                 "t.yaml:6:34: error: unknown model \"gpt-9\" in model group "
                 "\"G\"");
    cleanup();
    expect_error(MOCK "model_groups:\n  G: {primary: nope}\n",
                 "t.yaml:6:16: error: unknown model \"nope\" in model group "
                 "\"G\"");
}

Test(errors, model_twice_in_a_group)
{
    expect_error(MOCK "model_groups:\n"
                      "  G: {primary: echo, fallbacks: [echo]}\n",
                 "t.yaml:6:34: error: model \"echo\" appears twice in model "
                 "group \"G\"");
    cleanup();
    expect_error(MOCK "  two: {provider: mock, model: two}\n"
                      "model_groups:\n"
                      "  G: {primary: echo, fallbacks: [two, two]}\n",
                 "t.yaml:7:39: error: model \"two\" appears twice in model "
                 "group \"G\"");
}

Test(errors, group_named_like_a_model)
{
    expect_error(MOCK "model_groups:\n  echo: {primary: echo}\n",
                 "t.yaml:6:3: error: model group \"echo\" has the same name as "
                 "a model");
}

Test(errors, team_allow_list_names_unknown_group_or_model)
{
    expect_error(MOCK "teams:\n"
                      "  a:\n"
                      "    model_groups: [nope]\n"
                      "    models: [echo, gone]\n",
                 "t.yaml:7:20: error: unknown model group \"nope\" in team "
                 "\"a\"");
    cr_assert(has_diag("t.yaml:8:20: error: unknown model \"gone\" in team "
                       "\"a\""));
    cr_assert_eq(diags.n_errors, 2);
}

#define HASH_A \
    "sha256:"  \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define HASH_A_UPPER \
    "sha256:"        \
    "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"

Test(errors, same_key_in_two_teams)
{
    expect_error("teams:\n"
                 "  a: {keys: [\"" HASH_A "\"]}\n"
                 "  b: {keys: [\"" HASH_A "\"]}\n",
                 "t.yaml:3:14: error: team \"b\" has a key that team \"a\" "
                 "also has; a key must belong to one team, or be an admin key");
    cr_assert_eq(diags.n_errors, 1);
}

Test(errors, same_key_written_differently_in_two_teams)
{
    /* "abc" hashes to HASH_A; case does not make a hash different. */
    expect_error("teams:\n"
                 "  a: {keys: [abc]}\n"
                 "  b: {keys: [\"" HASH_A_UPPER "\"]}\n",
                 "t.yaml:3:14: error: team \"b\" has a key that team \"a\" "
                 "also has; a key must belong to one team, or be an admin key");
}

Test(errors, same_key_twice_in_one_team)
{
    expect_error("teams:\n"
                 "  a: {keys: [\"" HASH_A "\", \"" HASH_A "\"]}\n",
                 "t.yaml:2:89: error: team \"a\" lists the same key twice");
}

Test(admin_keys, are_hashed_like_team_keys)
{
    load_ok("admin_keys: [\"" HASH_A_UPPER "\", other]\n"
            "teams:\n  a: {keys: [third]}\n");
    cr_assert_eq(cfg->n_admin_keys, 2);
    cr_assert_str_eq(cfg->admin_key_hashes[0], HASH_A);
    cr_assert_eq(strlen(cfg->admin_key_hashes[1]), TG_KEY_HASH_LEN);
    cleanup();
    expect_error("admin_keys: [abc, \"" HASH_A_UPPER "\"]\n",
                 "t.yaml:1:19: error: admin_keys lists the same key twice");
}

Test(errors, admin_key_that_a_team_has)
{
    expect_error("admin_keys: [\"" HASH_A "\"]\n"
                 "teams:\n  a: {keys: [abc]}\n",
                 "t.yaml:3:14: error: team \"a\" has a key that admin_keys "
                 "also has; a key must belong to one team, or be an admin "
                 "key");
}

Test(errors, admin_keys_must_be_a_sequence_of_keys)
{
    expect_error("admin_keys: abc\n",
                 "t.yaml:1:13: error: admin_keys must be a sequence of keys, "
                 "got a scalar");
    cleanup();
    expect_error("admin_keys: [\"\"]\n",
                 "t.yaml:1:14: error: admin_keys has an empty key");
}

Test(errors, empty_key)
{
    expect_error("teams:\n  a: {keys: [\"\"]}\n",
                 "t.yaml:2:14: error: team \"a\" has an empty key");
}

Test(errors, anonymous_team_is_not_a_team)
{
    expect_error("auth: {anonymous_team: ghost}\n",
                 "t.yaml:1:24: error: anonymous_team \"ghost\" is not a team "
                 "(it must name one under teams)");
}

Test(errors, secret_token_team_is_not_a_team)
{
    expect_error("teams: {a: {}}\n"
                 "auth: {secret_token: x, secret_token_team: ghost}\n",
                 "t.yaml:2:44: error: secret_token_team \"ghost\" is not a "
                 "team (it must name one under teams)");
    cleanup();
    expect_error("teams: {a: {}}\nauth: {secret_token: x}\n",
                 "t.yaml:2:22: error: secret_token_team \"default\" is not a "
                 "team (it must name one under teams)");
}

Test(errors, secret_token_team_unchecked_without_a_token)
{
    load_ok("auth: {secret_token: \"\", secret_token_team: ghost}\n");
    cr_assert_null(cfg->auth.secret_token_team);
}

Test(errors, default_model_resolves_nowhere)
{
    expect_error(MOCK "default_model: gpt-5\n",
                 "t.yaml:5:16: error: default_model \"gpt-5\" does not name a "
                 "model group, model, provider/model_id or upstream id");
    cleanup();
    load_ok(MOCK "default_model: mock/echo\n");
    cr_assert_str_eq(cfg->default_model, "mock/echo");
}

Test(errors, yaml_syntax_error)
{
    expect_error("workers: [1, 2\n",
                 "t.yaml:2:1: error: did not find expected ',' or ']' (while "
                 "parsing a flow sequence that starts at 1:10)");
    cr_assert_eq(diags.n_errors, 1);
}

Test(errors, empty_file)
{
    static const char text[] =
        "t.yaml:1:1: error: the file is empty (expected a mapping of "
        "settings: listen, providers, models, teams, ...)";

    expect_error("", text);
    cleanup();
    expect_error("# only a comment\n", text);
    cleanup();
    expect_error("---\n", text);
}

Test(errors, two_documents)
{
    expect_error("{}\n---\n{}\n",
                 "t.yaml:2:1: error: a second YAML document starts here; the "
                 "file must hold exactly one");
}

Test(errors, duplicate_mapping_keys)
{
    expect_error("workers: 1\nworkers: 2\n",
                 "t.yaml:2:1: error: duplicate key \"workers\" at the top "
                 "level (first at 1:1)");
    cleanup();
    expect_error("providers:\n  m: {type: mock}\n  m: {type: mock}\n",
                 "t.yaml:3:3: error: duplicate key \"m\" in providers (first "
                 "at 2:3)");
    cleanup();
    expect_error("teams:\n  a:\n    rpm: 1\n    rpm: 2\n",
                 "t.yaml:4:5: error: duplicate key \"rpm\" in team \"a\" "
                 "(first at 3:5)");
}

/* The state file has a fixed number of provider slots. */
Test(errors, too_many_providers)
{
    char yaml[16384];
    size_t used = 0;
    int i;

    used += (size_t)snprintf(yaml, sizeof(yaml), "providers:\n");
    for (i = 0; i <= TG_CFG_MAX_PROVIDERS; i++)
        used += (size_t)snprintf(yaml + used, sizeof(yaml) - used,
                                 "  p%d: {type: mock}\n", i);
    expect_error(yaml, "t.yaml:2:3: error: providers has 129 entries; at most "
                       "128 are allowed");
    cleanup();
    yaml[used - strlen("  p128: {type: mock}\n")] = '\0';
    load_ok(yaml);
    cr_assert_eq(cfg->n_providers, TG_CFG_MAX_PROVIDERS);
}

Test(errors, every_error_is_reported_in_one_load)
{
    load("workers: 0\n"
         "rmp: 1\n"
         "limits: {idle_timeout_s: 0}\n");
    cr_assert_null(cfg);
    cr_assert_eq(diags.n_errors, 3);
    cr_assert_eq(diags.n, 3);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:1:10: error: workers must be \"auto\" or an "
                     "integer from 1 to 256, got \"0\"");
    cr_assert(has_diag("t.yaml:2:1: error: unknown key \"rmp\" at the top "
                       "level (expected one of: listen, workers, state_file, "
                       "usage_log, access_log, pid_file, shutdown_timeout_s, "
                       "limits, auth, default_model, providers, models, "
                       "model_groups, health, defaults, teams, admin_keys)"));
    cr_assert_str_eq(diags.items[2].text,
                     "t.yaml:3:26: error: idle_timeout_s must be an integer "
                     "from 1 to 86400, got \"0\"");
}

Test(errors, diagnostics_come_in_file_order)
{
    /* teams are checked after providers, but come first in the file */
    load("teams: {a: {rmp: 1}}\n"
         "providers: {p: {type: nope}}\n");
    cr_assert_eq(diags.n_errors, 2);
    cr_assert_eq(diags.items[0].text[7], '1');
    cr_assert_eq(diags.items[1].text[7], '2');
}

Test(errors, bad_names)
{
    char name[66], yaml[128], text[256];

    expect_error("teams:\n  \"a b\": {}\n",
                 "t.yaml:2:3: error: team name \"a b\" must be 1 to 64 "
                 "characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\"");
    cleanup();
    memset(name, 'a', 65);
    name[65] = '\0';
    snprintf(yaml, sizeof(yaml), "teams:\n  %s: {}\n", name);
    snprintf(text, sizeof(text),
             "t.yaml:2:3: error: team name \"%.64s...\" must be 1 to 64 "
             "characters of A-Z, a-z, 0-9, \".\", \"_\" and \"-\"",
             name);
    expect_error(yaml, text);
    cleanup();
    name[64] = '\0';
    snprintf(yaml, sizeof(yaml), "teams:\n  %s: {}\n", name);
    load_ok(yaml);
    cleanup();
    expect_error("providers:\n  \"my p\": {type: mock}\n",
                 "t.yaml:2:3: error: provider name \"my p\" must be 1 to 128 "
                 "characters with no spaces or control characters");
    cleanup();
    expect_error("providers:\n  a/b: {type: mock}\n",
                 "t.yaml:2:3: error: provider \"a/b\": a provider name must "
                 "not contain \"/\", which separates it from the model id in "
                 "requests");
    cleanup();
    expect_error(MOCK "  \"tab\\tbed\": {provider: mock, model: x}\n",
                 "t.yaml:5:3: error: model name \"tab\\x09bed\" must be 1 to "
                 "128 characters with no spaces or control characters");
}

Test(errors, bad_base_url)
{
    expect_error("providers:\n  o: {type: openai, base_url: ftp://x}\n",
                 "t.yaml:2:31: error: base_url must be an http:// or https:// "
                 "URL with a host, got \"ftp://x\"");
    cleanup();
    expect_error("providers:\n  o: {type: openai, base_url: https:///}\n",
                 "t.yaml:2:31: error: base_url must be an http:// or https:// "
                 "URL with a host, got \"https://\"");
}

Test(errors, unreadable_ca_file)
{
    expect_error("providers:\n  o: {type: openai, ca_file: /nonexistent/ca}\n",
                 "t.yaml:2:30: error: ca_file \"/nonexistent/ca\" cannot be "
                 "read: No such file or directory");
    cleanup();
    expect_error("providers:\n  o: {type: openai, ca_file: /}\n",
                 "t.yaml:2:30: error: ca_file \"/\" is not a regular file");
}

Test(errors, empty_state_file)
{
    expect_error("state_file: \"\"\n",
                 "t.yaml:1:13: error: state_file must not be empty (it backs "
                 "the shared memory segment)");
}

Test(errors, nul_in_a_string)
{
    expect_error("usage_log: \"a\\0b\"\n",
                 "t.yaml:1:12: error: usage_log must not contain a NUL "
                 "character");
}

Test(errors, file_that_cannot_be_opened)
{
    cfg = tg_cfg_load("/nonexistent/tollgate.yaml", &diags);
    cr_assert_null(cfg);
    cr_assert_eq(diags.n_errors, 1);
    cr_assert_eq(diags.n, 1);
    cr_assert_str_eq(diags.items[0].text,
                     "/nonexistent/tollgate.yaml: error: cannot open: No such "
                     "file or directory");
}

Test(errors, non_scalar_key)
{
    expect_error("? [a]\n: 1\n",
                 "t.yaml:1:3: error: a key must be a scalar, got a sequence");
}

/* ------------------------------------------------------------------ */
/* Interpolation                                                        */

static void interp_init(void)
{
    setenv("TG_T_KEY", "from-env", 1);
    setenv("TG_T_EMPTY", "", 1);
    setenv("TG_T_RPM", "42", 1);
    unsetenv("TG_T_UNSET");
    unsetenv("TG_T_UNSET2");
}

TestSuite(interp, .init = interp_init, .fini = cleanup);

Test(interp, variable_is_replaced)
{
    load_ok("usage_log: ${TG_T_KEY}\naccess_log: pre-${TG_T_KEY}-post\n");
    cr_assert_str_eq(cfg->usage_log, "from-env");
    cr_assert_str_eq(cfg->access_log, "pre-from-env-post");
}

Test(interp, set_but_empty_variable_is_empty)
{
    load_ok("usage_log: \"${TG_T_EMPTY}\"\n");
    cr_assert_str_eq(cfg->usage_log, "");
}

Test(interp, default_applies_when_unset_or_empty)
{
    load_ok("usage_log: ${TG_T_UNSET:-dflt}\n"
            "access_log: ${TG_T_EMPTY:-dflt}\n"
            "pid_file: ${TG_T_KEY:-dflt}\n"
            "state_file: \"${TG_T_UNSET:-$HOME}/x\"\n"
            "default_model: \"${TG_T_UNSET:-}\"\n");
    cr_assert_str_eq(cfg->usage_log, "dflt");
    cr_assert_str_eq(cfg->access_log, "dflt");
    cr_assert_str_eq(cfg->pid_file, "from-env");
    cr_assert_str_eq(cfg->state_file, "$HOME/x");
    cr_assert_str_eq(cfg->default_model, "");
}

Test(interp, double_dollar_brace_is_a_literal)
{
    load_ok("usage_log: \"$${TG_T_KEY}\"\n"
            "access_log: \"a$b$$c$\"\n");
    cr_assert_str_eq(cfg->usage_log, "${TG_T_KEY}");
    cr_assert_str_eq(cfg->access_log, "a$b$$c$");
}

Test(interp, numbers_and_booleans_are_interpolated)
{
    setenv("TG_T_FALSE", "false", 1);
    load_ok("defaults: {rpm: \"${TG_T_RPM}\"}\n"
            "providers: {o: {type: openai, tls_verify: \"${TG_T_FALSE}\"}}\n");
    cr_assert_eq(cfg->defaults.rpm, 42);
    cr_assert_not(cfg->providers[0].tls_verify);
}

Test(interp, keys_are_not_interpolated)
{
    load_ok("providers:\n  ${TG_T_KEY}: {type: mock}\n");
    cr_assert_not_null(tg_cfg_find_provider(cfg, "${TG_T_KEY}"));
    cr_assert_null(tg_cfg_find_provider(cfg, "from-env"));
}

Test(interp, unset_variable_is_an_error)
{
    expect_error("usage_log: ${TG_T_UNSET}\n",
                 "t.yaml:1:12: error: environment variable TG_T_UNSET is not "
                 "set; write ${TG_T_UNSET:-} to allow empty");
}

Test(interp, unterminated_reference_is_an_error)
{
    expect_error("usage_log: \"x${TG_T_KEY\"\n",
                 "t.yaml:1:12: error: \"${\" in usage_log is unterminated "
                 "(expected \"}\")");
}

Test(interp, bad_references_are_errors)
{
    static const char bad_name[] =
        " in usage_log has a bad variable name (expected ${NAME} or "
        "${NAME:-default}, NAME a letter or \"_\" then letters, digits or "
        "\"_\")";
    static const struct {
        const char *value, *message;
    } cases[] = {
        {"${1A}", "\"${1A}\"%s"},
        {"${}", "\"${}\"%s"},
        {"${A B}", "\"${A B}\" in usage_log is not ${NAME} or "
                   "${NAME:-default}%.0s"},
        {"${A-b}", "\"${A-b}\" in usage_log is not ${NAME} or "
                   "${NAME:-default}%.0s"},
        {"${A:-${B}}", "\"${A:-${B}\" in usage_log nests \"${\" in its "
                       "default, which is literal text%.0s"},
    };
    char yaml[64], message[320], text[400];
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(cases); i++) {
        snprintf(yaml, sizeof(yaml), "usage_log: \"%s\"\n", cases[i].value);
        snprintf(message, sizeof(message), cases[i].message, bad_name);
        snprintf(text, sizeof(text), "t.yaml:1:12: error: %s", message);
        expect_error(yaml, text);
        cleanup();
    }
}

Test(interp, every_bad_reference_in_a_value_is_reported)
{
    load("usage_log: \"${TG_T_UNSET} ${TG_T_UNSET2} ${TG_T_KEY}\"\n");
    cr_assert_null(cfg);
    cr_assert_eq(diags.n_errors, 2);
}

/* ------------------------------------------------------------------ */
/* Providers: disabling and warnings                                    */

TestSuite(providers, .fini = cleanup);

Test(providers, empty_secret_disables_with_a_warning)
{
    load_ok("providers:\n"
            "  openai: {type: openai, api_key: \"\"}\n"
            "models:\n"
            "  gpt: {provider: openai, model: gpt-4o}\n");
    cr_assert_eq(diags.n, 1);
    cr_assert_not(diags.items[0].is_error);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:2:35: warning: provider \"openai\" is disabled: "
                     "api_key is empty");
    cr_assert_not(cfg->providers[0].is_enabled);
    cr_assert_eq(cfg->models[0].provider, &cfg->providers[0]);
}

Test(providers, empty_interpolated_secret_disables)
{
    setenv("TG_T_EMPTY", "", 1);
    load_ok("providers:\n"
            "  a: {type: anthropic, api_key: \"${TG_T_EMPTY}\"}\n"
            "  g: {type: gemini, api_key: \"${TG_T_UNSET_TOO:-}\"}\n");
    cr_assert_not(tg_cfg_find_provider(cfg, "a")->is_enabled);
    cr_assert_not(tg_cfg_find_provider(cfg, "g")->is_enabled);
    cr_assert_eq(count_warnings(), 2);
}

Test(providers, bedrock_names_every_empty_secret)
{
    load_ok("providers:\n"
            "  b: {type: bedrock, region: us-east-1, access_key_id: \"\",\n"
            "      secret_access_key: \"\", session_token: \"\"}\n");
    cr_assert_eq(diags.n, 1);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:2:56: warning: provider \"b\" is disabled: "
                     "access_key_id and secret_access_key are empty");
    cr_assert_not(cfg->providers[0].is_enabled);
}

Test(providers, set_secrets_enable)
{
    load_ok("providers:\n"
            "  b: {type: bedrock, region: us-east-1, access_key_id: AKIA,\n"
            "      secret_access_key: s, session_token: t}\n"
            "  o: {type: openai, api_key: sk-1}\n");
    cr_assert_eq(diags.n, 0);
    cr_assert(cfg->providers[0].is_enabled);
    cr_assert_str_eq(cfg->providers[0].session_token, "t");
    cr_assert(cfg->providers[1].is_enabled);
    cr_assert_str_eq(cfg->providers[1].api_key, "sk-1");
}

Test(providers, tls_verify_false_warns)
{
    load_ok("providers:\n  o: {type: openai, tls_verify: false}\n");
    cr_assert_eq(diags.n, 1);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:2:33: warning: provider \"o\" has tls_verify: "
                     "false; its TLS certificates are not checked");
    cr_assert_not(cfg->providers[0].tls_verify);
}

Test(providers, type_names)
{
    cr_assert_str_eq(tg_cfg_provider_type_name(TG_PROVIDER_MOCK), "mock");
    cr_assert_str_eq(tg_cfg_provider_type_name(TG_PROVIDER_OPENAI), "openai");
    cr_assert_str_eq(tg_cfg_provider_type_name(TG_PROVIDER_ANTHROPIC),
                     "anthropic");
    cr_assert_str_eq(tg_cfg_provider_type_name(TG_PROVIDER_BEDROCK), "bedrock");
    cr_assert_str_eq(tg_cfg_provider_type_name(TG_PROVIDER_GEMINI), "gemini");
}

/* ------------------------------------------------------------------ */
/* Secrets never appear in a diagnostic                                 */

TestSuite(secrets, .fini = cleanup);

Test(secrets, are_never_printed)
{
    size_t i;

    setenv("TG_T_SECRET", "SEKRET-ENV", 1);
    load("providers:\n"
         "  m: {type: mock, api_key: SEKRET-1}\n"
         "  o: {type: openai, api_key: [SEKRET-2]}\n"
         "  a: {type: anthropic, api_key: \"SEKRET-3\\0\"}\n"
         "  b: {type: bedrock, region: us-east-1, access_key_id: \"\",\n"
         "      secret_access_key: \"${TG_T_SECRET}\",\n"
         "      session_token: \"SEKRET-4${NOPE\"}\n"
         "  g: {type: gemini, api_key: \"${SEKRET-8}\"}\n"
         "teams:\n"
         "  t1: {keys: [SEKRET-5, SEKRET-5, \"sha256:SEKRET-6\",\n"
         "              \"${SEKRET-9:-}\"]}\n"
         "  t2: {keys: [SEKRET-5]}\n"
         "auth: {secret_token: SEKRET-7, secret_token_team: ghost}\n");
    cr_assert_null(cfg);
    cr_assert_geq(diags.n_errors, 8);
    for (i = 0; i < diags.n; i++) {
        cr_log_info("%s", diags.items[i].text);
        cr_assert_null(strstr(diags.items[i].text, "SEKRET"), "%s",
                       diags.items[i].text);
    }
}

/* ------------------------------------------------------------------ */
/* Keys and hashing                                                     */

TestSuite(keys, .fini = cleanup);

Test(keys, hash_key_matches_the_sha256_test_vectors)
{
    char out[TG_KEY_HASH_LEN + 1];

    tg_cfg_hash_key("abc", 3, out);
    cr_assert_str_eq(out, HASH_A);
    tg_cfg_hash_key("", 0, out);
    cr_assert_str_eq(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649"
                          "b934ca495991b7852b855");
    tg_cfg_hash_key("abcdef", 3, out);
    cr_assert_str_eq(out, HASH_A);
}

Test(keys, plain_key_is_hashed_with_a_warning)
{
    load_ok("teams:\n  a: {keys: [abc]}\n");
    cr_assert_eq(diags.n, 1);
    cr_assert_not(diags.items[0].is_error);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:2:14: warning: team \"a\" has a plain-text key; "
                     "store the output of `tollgate hash-key` instead");
    cr_assert_eq(cfg->teams[0].n_keys, 1);
    cr_assert_str_eq(cfg->teams[0].key_hashes[0], HASH_A);
}

Test(keys, hashed_key_is_stored_lowercase_without_warning)
{
    load_ok("teams:\n  a: {keys: [\"" HASH_A_UPPER "\"]}\n");
    cr_assert_eq(diags.n, 0);
    cr_assert_str_eq(cfg->teams[0].key_hashes[0], HASH_A);
}

Test(keys, short_hash_is_a_plain_key_with_its_own_warning)
{
    char expected[TG_KEY_HASH_LEN + 1];

    load_ok("teams:\n  a: {keys: [\"sha256:abc\"]}\n");
    cr_assert_eq(diags.n, 1);
    cr_assert_str_eq(diags.items[0].text,
                     "t.yaml:2:14: warning: team \"a\" has a key that starts "
                     "with \"sha256:\" but is not 64 hex digits; it is used as "
                     "a plain-text key");
    tg_cfg_hash_key("sha256:abc", 10, expected);
    cr_assert_str_eq(cfg->teams[0].key_hashes[0], expected);
}

Test(keys, several_keys_per_team)
{
    load_ok("teams:\n  a: {keys: [\"" HASH_A "\", k2, k3]}\n");
    cr_assert_eq(cfg->teams[0].n_keys, 3);
    cr_assert_str_eq(cfg->teams[0].key_hashes[0], HASH_A);
    cr_assert_eq(count_warnings(), 2);
}

/* ------------------------------------------------------------------ */
/* Model name resolution                                                */

#define ROUTES                                                           \
    "providers:\n"                                                       \
    "  mock: {type: mock}\n"                                             \
    "  or: {type: openai, base_url: \"https://openrouter.ai/api/v1\"}\n" \
    "  other: {type: openai}\n"                                          \
    "models:\n"                                                          \
    "  echo: {provider: mock, model: echo}\n"                            \
    "  llama: {provider: or, model: \"meta-llama/llama-3:70b\"}\n"       \
    "  dup-a: {provider: mock, model: shared}\n"                         \
    "  dup-b: {provider: other, model: shared}\n"                        \
    "  other/shared: {provider: mock, model: aliased}\n"                 \
    "  g-model: {provider: other, model: ChatAgent}\n"                   \
    "model_groups:\n"                                                    \
    "  ChatAgent: {primary: echo, fallbacks: [llama]}\n"

static struct tg_model *model_named(const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    return NULL;
}

static void resolve_init(void)
{
    load_ok(ROUTES);
}

TestSuite(resolve, .init = resolve_init, .fini = cleanup);

Test(resolve, group_name_comes_first)
{
    struct tg_route_target t = {NULL, NULL};

    /* g-model's upstream id is also "ChatAgent": rule 1 wins over rule 4 */
    cr_assert_eq(resolve("ChatAgent", &t), TG_OK);
    cr_assert_eq(t.group, &cfg->model_groups[0]);
    cr_assert_null(t.model);
}

Test(resolve, model_alias)
{
    struct tg_route_target t;

    cr_assert_eq(resolve("llama", &t), TG_OK);
    cr_assert_null(t.group);
    cr_assert_eq(t.model, model_named("llama"));
}

Test(resolve, alias_wins_over_provider_slash_id)
{
    struct tg_route_target t;

    cr_assert_eq(resolve("other/shared", &t), TG_OK);
    cr_assert_eq(t.model, model_named("other/shared"));
}

Test(resolve, provider_slash_id_with_slash_and_colon_in_the_id)
{
    struct tg_route_target t;

    cr_assert_eq(resolve("or/meta-llama/llama-3:70b", &t), TG_OK);
    cr_assert_null(t.group);
    cr_assert_eq(t.model, model_named("llama"));
    cr_assert_eq(resolve("mock/shared", &t), TG_OK);
    cr_assert_eq(t.model, model_named("dup-a"));
    cr_assert_eq(resolve("mock/echo", &t), TG_OK);
    cr_assert_eq(t.model, model_named("echo"));
}

Test(resolve, bare_upstream_id_that_one_model_has)
{
    struct tg_route_target t;

    /* "meta-llama" is no provider, so this is a bare id with a slash */
    cr_assert_eq(resolve("meta-llama/llama-3:70b", &t), TG_OK);
    cr_assert_eq(t.model, model_named("llama"));
    cr_assert_eq(resolve("aliased", &t), TG_OK);
    cr_assert_eq(t.model, model_named("other/shared"));
}

Test(resolve, ambiguous_bare_id_is_declined)
{
    struct tg_route_target t = {(void *)&t, (void *)&t};

    cr_assert_eq(resolve("shared", &t), TG_DECLINED);
    cr_assert_null(t.group);
    cr_assert_null(t.model);
}

Test(resolve, unknown_names_are_declined)
{
    struct tg_route_target t = {(void *)&t, (void *)&t};

    cr_assert_eq(resolve("gpt-5", &t), TG_DECLINED);
    cr_assert_null(t.group);
    cr_assert_null(t.model);
    cr_assert_eq(resolve("mock/", &t), TG_DECLINED);
    cr_assert_eq(resolve("nope/echo", &t), TG_DECLINED);
    cr_assert_eq(resolve("", &t), TG_DECLINED);
    cr_assert_eq(resolve("chatagent", &t), TG_DECLINED);
}

Test(resolve, uses_the_length_not_a_terminator)
{
    struct tg_route_target t;

    cr_assert_eq(tg_cfg_resolve_model(cfg, "echo-and-more", 4, &t), TG_OK);
    cr_assert_eq(t.model, model_named("echo"));
    cr_assert_eq(tg_cfg_resolve_model(cfg, "ChatAgentX", 9, &t), TG_OK);
    cr_assert_eq(t.group, &cfg->model_groups[0]);
    cr_assert_eq(tg_cfg_resolve_model(cfg, "mock/echoes", 9, &t), TG_OK);
    cr_assert_eq(t.model, model_named("echo"));
    cr_assert_eq(tg_cfg_resolve_model(cfg, "echo", 3, &t), TG_DECLINED);
}

Test(resolve, find_team_and_provider)
{
    cr_assert_eq(tg_cfg_find_provider(cfg, "or"), &cfg->providers[1]);
    cr_assert_null(tg_cfg_find_provider(cfg, "o"));
    cr_assert_null(tg_cfg_find_team(cfg, "anyone"));
}

/* The text of the docs section whose "### " heading names `section` (or
 * "Top level"), up to the next heading; NULL when there is none. */
static char *docs_section(const char *docs, const char *section)
{
    char want[64];
    const char *at = docs, *end;

    if (section[0] == '\0')
        snprintf(want, sizeof(want), "### Top level");
    else
        snprintf(want, sizeof(want), "`%s`", section);
    while ((at = strstr(at, "\n### ")) != NULL) {
        at++;
        end = strchr(at, '\n');
        if (end != NULL &&
            memmem(at, (size_t)(end - at), want, strlen(want)) != NULL)
            break;
    }
    if (at == NULL)
        return NULL;
    end = strstr(at + 4, "\n#");
    return strndup(at, end ? (size_t)(end - at) : strlen(at));
}

/* Whether a table row of text names the key: `key` or `section.key`. */
static bool has_row_for(const char *text, const char *section, const char *key)
{
    char plain[96], dotted[128];
    const char *line = text;

    snprintf(plain, sizeof(plain), "`%s`", key);
    snprintf(dotted, sizeof(dotted), "`%s.%s`", section, key);
    for (; line != NULL;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);

        if (line[0] == '|' && (memmem(line, n, plain, strlen(plain)) ||
                               memmem(line, n, dotted, strlen(dotted))))
            return true;
    }
    return false;
}

/* The configuration reference cannot drift from the parser: every key the
 * loader reads has a row in its section of docs/configuration.md. */
Test(schema, every_key_is_in_the_configuration_reference)
{
    struct tg_cfg_schema_key keys[256];
    size_t n = tg_cfg_schema(keys, TG_ARRAY_LEN(keys)), i, missing = 0;
    FILE *f = fopen("docs/configuration.md", "r");
    char *docs = calloc(1, 1 << 20), *text;

    cr_assert_not_null(f, "run from the top of the tree");
    cr_assert_leq(n, TG_ARRAY_LEN(keys));
    cr_assert_gt(n, 40);
    fread(docs, 1, (1 << 20) - 1, f);
    fclose(f);
    for (i = 0; i < n; i++) {
        text = docs_section(docs, keys[i].section);
        if (text == NULL || !has_row_for(text, keys[i].section, keys[i].key)) {
            cr_log_error("not documented: %s%s%s", keys[i].section,
                         keys[i].section[0] ? "." : "", keys[i].key);
            missing++;
        }
        free(text);
    }
    free(docs);
    cr_assert_eq(missing, 0, "%zu keys are missing from the reference",
                 missing);
}
