/*
 * front_admin.c - the admin API, for the config's admin_keys only:
 *   GET  /admin/teams/{team}           a team's live state
 *   POST /admin/teams/{team}/credits   {"amount": N}: a credit top-up
 *   GET  /admin/providers              every provider's shared health
 *   POST /admin/providers/{name}/reset closes a provider's breaker
 *
 * Everything it reads or changes lives in the state file, so a top-up is
 * kept across reloads and restarts like any balance. Every change is also
 * written to the usage log as an admin event, naming the admin key by its
 * key_id. Errors are {"detail": ...}; an invalid body is a 422.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_bucket.h"
#include "tg_front.h"
#include "tg_json.h"
#include "tg_parse.h"
#include "tg_req.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define MAX_TOP_UP 1e9 /* credits in one top-up, either way */

static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message)
{
    (void)status;
    (void)code;
    tg_json_write_detail(r->out, message);
}

/* The configured team the path names, with its slot; NULL after a 404. */
static const struct tg_team *path_team(struct tg_req *r,
                                       struct tg_shm_team **slot)
{
    const struct tg_config *cfg = r->worker->cfg;
    const struct tg_str *name = &r->path_param;
    size_t i;

    for (i = 0; i < cfg->n_teams; i++)
        if (strlen(cfg->teams[i].name) == name->len &&
            memcmp(cfg->teams[i].name, name->ptr, name->len) == 0) {
            *slot = tg_shm_team(r->worker->shm, i);
            return &cfg->teams[i];
        }
    tg_req_fail(r, 404, "not_found", "No team '%.*s'",
                (int)(name->len > 64 ? 64 : name->len), name->ptr);
    return NULL;
}

static void write_bucket(struct evbuffer *b, const char *name, int64_t limit,
                         int64_t level_micro)
{
    evbuffer_add_printf(
        b, "\"%s\":{\"limit\":%lld,\"remaining\":%lld}", name, (long long)limit,
        (long long)(level_micro > 0 ? level_micro / TG_MICRO : 0));
}

void tg_front_admin_team(struct tg_req *r)
{
    struct tg_shm_team_view v;
    struct tg_shm_team *slot;
    const struct tg_team *team = path_team(r, &slot);

    if (team == NULL)
        return;
    tg_shm_read(slot, tg_shm_now_ns(), &v);
    TG_ADD_LIT(r->out, "{\"team\":");
    tg_json_write_str(r->out, team->name, strlen(team->name));
    TG_ADD_LIT(r->out, ",");
    write_bucket(r->out, "requests_per_minute", v.rpm, v.rpm_level_micro);
    TG_ADD_LIT(r->out, ",");
    write_bucket(r->out, "tokens_per_minute", v.tpm, v.tpm_level_micro);
    TG_ADD_LIT(r->out, ",\"credits\":");
    tg_json_write_fixed(r->out, v.credits_micro, TG_SHM_MICRO_CREDITS, 6);
    TG_ADD_LIT(r->out, ",\"credits_granted\":");
    tg_json_write_fixed(r->out, v.grant_micro, TG_SHM_MICRO_CREDITS, 6);
    TG_ADD_LIT(r->out, ",\"spend_usd\":");
    tg_json_write_fixed(r->out, v.spend_nano_usd, TG_SHM_NANO_USD, 9);
    TG_ADD_LIT(r->out, ",\"max_budget_usd\":");
    if (v.budget_nano_usd < 0)
        TG_ADD_LIT(r->out, "null");
    else
        tg_json_write_fixed(r->out, v.budget_nano_usd, TG_SHM_NANO_USD, 9);
    evbuffer_add_printf(r->out, ",\"open_jobs\":%lld}",
                        (long long)tg_shm_jobs_open(r->worker->shm, slot));
    tg_req_send(r, 200);
}

static int parse_amount(struct tg_parse *p, double *amount)
{
    int v = tg_json_get(&p->j, 0, "amount");

    tg_parse_param(p, "amount");
    if (v < 0)
        return tg_parse_fail(p, "missing_required_parameter",
                             "Missing required parameter: 'amount'.");
    if (tg_parse_check(p, v, TG_T_NUM, -MAX_TOP_UP, MAX_TOP_UP) != TG_OK)
        return TG_ERROR;
    tg_json_double(&p->j, v, amount);
    if (*amount == 0)
        return tg_parse_fail(p, "invalid_value", "amount must not be 0");
    return TG_OK;
}

void tg_front_admin_top_up(struct tg_req *r)
{
    struct tg_shm_team *slot;
    const struct tg_team *team = path_team(r, &slot);
    char fields[256];
    struct tg_parse p;
    double amount = 0;
    int64_t micro, balance;

    if (team == NULL)
        return;
    if (tg_parse_request(&p, r) != TG_OK || parse_amount(&p, &amount) != 0) {
        tg_parse_answer(&p, r);
        return;
    }
    micro = (int64_t)(amount * (double)TG_SHM_MICRO_CREDITS +
                      (amount < 0 ? -0.5 : 0.5));
    balance = tg_shm_credit(slot, micro);
    TG_ADD_LIT(r->out, "{\"team\":");
    tg_json_write_str(r->out, team->name, strlen(team->name));
    TG_ADD_LIT(r->out, ",\"added\":");
    tg_json_write_fixed(r->out, micro, TG_SHM_MICRO_CREDITS, 6);
    TG_ADD_LIT(r->out, ",\"credits\":");
    tg_json_write_fixed(r->out, balance, TG_SHM_MICRO_CREDITS, 6);
    TG_ADD_LIT(r->out, "}");
    snprintf(fields, sizeof(fields),
             "\"team\":\"%s\",\"amount_micro\":%lld,\"balance_micro\":%lld",
             team->name, (long long)micro, (long long)balance);
    tg_usage_log_admin(r, "credit_top_up", fields);
    tg_req_send(r, 200);
}

static const char *state_name(enum tg_health_state s)
{
    switch (s) {
    case TG_HEALTH_OPEN: return "cooling_down";
    case TG_HEALTH_HALF_OPEN: return "half_open";
    default: return "closed";
    }
}

static void write_health(struct evbuffer *b, const struct tg_provider *p,
                         const struct tg_shm_health_view *v)
{
    tg_json_write_str(b, p->name, strlen(p->name));
    evbuffer_add_printf(
        b,
        ":{\"state\":\"%s\",\"enabled\":%s,\"consecutive_fails\":%u,"
        "\"cooling_until_ms\":%lld,\"probing\":%s,\"in_flight\":%lld,"
        "\"latency_ms\":",
        state_name(v->state), p->is_enabled ? "true" : "false",
        v->consecutive_fails, (long long)(v->cooling_until_ns / 1000000),
        v->is_probing ? "true" : "false", (long long)v->in_flight);
    if (v->has_latency)
        evbuffer_add_printf(b, "%.3f", (double)v->latency_ewma_us / 1000.0);
    else
        TG_ADD_LIT(b, "null");
    evbuffer_add_printf(b,
                        ",\"last_ok_ms\":%lld,\"last_error_ms\":%lld,"
                        "\"last_error_status\":%d,\"last_error\":",
                        (long long)(v->last_ok_ns / 1000000),
                        (long long)(v->last_error_ns / 1000000),
                        v->last_error_status);
    tg_json_write_str(b, v->last_error, strlen(v->last_error));
    TG_ADD_LIT(b, "}");
}

void tg_front_admin_providers(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    struct tg_shm_health_view v;
    int64_t now = tg_shm_now_ns();
    size_t i;

    TG_ADD_LIT(r->out, "{\"providers\":{");
    for (i = 0; i < cfg->n_providers; i++) {
        tg_shm_health_read(r->worker->shm, tg_shm_provider(r->worker->shm, i),
                           now, &v);
        if (i > 0)
            TG_ADD_LIT(r->out, ",");
        write_health(r->out, &cfg->providers[i], &v);
    }
    TG_ADD_LIT(r->out, "}}");
    tg_req_send(r, 200);
}

void tg_front_admin_reset(struct tg_req *r)
{
    const struct tg_config *cfg = r->worker->cfg;
    const struct tg_str *name = &r->path_param;
    struct evbuffer *fields;
    size_t i;

    for (i = 0; i < cfg->n_providers; i++)
        if (strlen(cfg->providers[i].name) == name->len &&
            memcmp(cfg->providers[i].name, name->ptr, name->len) == 0)
            break;
    if (i == cfg->n_providers) {
        tg_req_fail(r, 404, "not_found", "No provider '%.*s'",
                    (int)(name->len > 64 ? 64 : name->len), name->ptr);
        return;
    }
    tg_shm_health_reset(tg_shm_provider(r->worker->shm, i));
    fields = evbuffer_new();
    if (fields != NULL) {
        /* Provider names may hold any printable character: escaped. */
        TG_ADD_LIT(fields, "\"provider\":");
        tg_json_write_str(fields, cfg->providers[i].name,
                          strlen(cfg->providers[i].name));
        evbuffer_add(fields, "", 1);
        tg_usage_log_admin(r, "provider_reset",
                           (const char *)evbuffer_pullup(fields, -1));
        evbuffer_free(fields);
    }
    TG_ADD_LIT(r->out, "{\"provider\":");
    tg_json_write_str(r->out, cfg->providers[i].name,
                      strlen(cfg->providers[i].name));
    TG_ADD_LIT(r->out, ",\"state\":\"closed\"}");
    tg_req_send(r, 200);
}

const struct tg_front tg_front_admin = {
    .name = "admin",
    .surface = TG_SURFACE_ADMIN,
    .invalid_status = 422,
    .render_error = render_error,
};
