/*
 * quota.c - the request path's "admit" and "settle" steps.
 *
 * Admission reserves 1 request and the tokens the call may use: the
 * estimated prompt plus max_tokens (the request's, else the team's
 * max_tokens, else TG_DEFAULT_MAX_TOKENS). Settlement, when the request
 * finishes however it finishes, gives back what the call did not use and
 * adds its cost to the team's spend. Usage is the provider's when it
 * reported one; otherwise (a call cut short) what was streamed is counted,
 * so tokens a client saw are never refunded.
 *
 * The x-ratelimit-* headers describe the team's buckets as admission left
 * them; they go on every routed response, refusals included.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_http.h"
#include "tg_json.h"
#include "tg_metrics.h"
#include "tg_req.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define TG_DEFAULT_MAX_TOKENS 4096
/* Per message, the role and separators a tokenizer adds. */
#define TOKENS_PER_MESSAGE 4

static int64_t tokens_of_chars(int64_t chars)
{
    return (chars + 3) / 4;
}

/* A deliberately simple, provider-neutral estimate: 4 bytes a token. */
int64_t tg_quota_estimate_prompt(const struct tg_chat *c)
{
    int64_t bytes = 0;
    size_t i, k;

    for (i = 0; i < c->n_messages; i++) {
        const struct tg_message *m = &c->messages[i];
        bytes += (int64_t)m->text.len + 4 * TOKENS_PER_MESSAGE;
        for (k = 0; k < m->n_calls; k++)
            bytes +=
                (int64_t)(m->calls[k].name.len + m->calls[k].arguments.len);
    }
    for (i = 0; i < c->n_tools; i++)
        bytes += (int64_t)(c->tools[i].name.len + c->tools[i].description.len +
                           c->tools[i].parameters.len);
    return tokens_of_chars(bytes);
}

static int64_t reservation(const struct tg_req *r)
{
    int64_t max_tokens = TG_DEFAULT_MAX_TOKENS;

    if (r->chat.has_max_tokens)
        max_tokens = r->chat.max_tokens;
    else if (r->team->max_tokens > 0)
        max_tokens = r->team->max_tokens;
    return tg_quota_estimate_prompt(&r->chat) + max_tokens;
}

/* "250ms", "1.5s", "6m0s": the duration format OpenAI's headers use. The
 * common cases are formatted without printf: these go on every answer. */
static void format_duration(char *out, size_t cap, int64_t ms)
{
    size_t n;

    if (ms < 1000) {
        n = tg_format_int(out, ms);
        memcpy(out + n, "ms", 3);
    } else if (ms < 60000 && ms % 1000 == 0) {
        n = tg_format_int(out, ms / 1000);
        memcpy(out + n, "s", 2);
    } else if (ms < 60000) {
        snprintf(out, cap, "%.3gs", (double)ms / 1000.0);
    } else {
        snprintf(out, cap, "%lldm%llds", (long long)(ms / 60000),
                 (long long)(ms % 60000 / 1000));
    }
}

/* The three x-ratelimit-* headers of one bucket. */
struct bucket_headers {
    const char *limit, *remaining, *reset;
};

static const struct bucket_headers requests_headers = {
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests"};
static const struct bucket_headers tokens_headers = {
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens"};

static void add_bucket_headers(struct tg_req *r,
                               const struct bucket_headers *names,
                               int64_t limit, int64_t remaining,
                               int64_t reset_ms)
{
    char v[32];

    tg_format_int(v, limit);
    tg_req_header(r, names->limit, v);
    tg_format_int(v, remaining);
    tg_req_header(r, names->remaining, v);
    format_duration(v, sizeof(v), reset_ms);
    tg_req_header(r, names->reset, v);
}

void tg_quota_add_headers(struct tg_req *r)
{
    const struct tg_quota *q = &r->quota;

    if (!r->has_quota)
        return;
    add_bucket_headers(r, &requests_headers, q->rpm, q->rpm_remaining,
                       q->rpm_reset_ms);
    add_bucket_headers(r, &tokens_headers, q->tpm, q->tpm_remaining,
                       q->tpm_reset_ms);
}

static enum tg_limit limit_of(enum tg_admit why)
{
    switch (why) {
    case TG_ADMIT_RPM: return TG_LIMIT_RPM;
    case TG_ADMIT_BUDGET: return TG_LIMIT_BUDGET;
    default: return TG_LIMIT_TPM;
    }
}

static void refuse(struct tg_req *r, enum tg_admit why)
{
    const struct tg_quota *q = &r->quota;
    char retry[24];

    tg_metrics_refused(r->worker->metrics, tg_quota_team_index(r),
                       limit_of(why));
    if (why != TG_ADMIT_BUDGET && why != TG_ADMIT_TPM_TOO_LARGE) {
        snprintf(retry, sizeof(retry), "%lld", (long long)q->retry_after_s);
        tg_req_header(r, "Retry-After", retry);
    }
    if (why == TG_ADMIT_RPM)
        tg_req_fail(r, 429, "rate_limit_exceeded",
                    "Rate limit reached for team %s on requests per minute "
                    "(RPM): limit %lld. Try again in %llds.",
                    r->team->name, (long long)q->rpm,
                    (long long)q->retry_after_s);
    else if (why == TG_ADMIT_TPM)
        tg_req_fail(r, 429, "rate_limit_exceeded",
                    "Rate limit reached for team %s on tokens per minute "
                    "(TPM): limit %lld, remaining %lld, requested %lld. Try "
                    "again in %llds.",
                    r->team->name, (long long)q->tpm,
                    (long long)q->tpm_remaining, (long long)r->reserved,
                    (long long)q->retry_after_s);
    else if (why == TG_ADMIT_TPM_TOO_LARGE)
        tg_req_fail(r, 429, "tokens_exceed_tpm",
                    "Request too large for team %s: it reserves %lld tokens "
                    "(prompt estimate + max_tokens) but the limit is %lld "
                    "tokens per minute. Lower max_tokens.",
                    r->team->name, (long long)r->reserved, (long long)q->tpm);
    else
        tg_req_fail(r, 429, "budget_exceeded",
                    "Budget exhausted: team %s has spent $%.6f of its "
                    "max_budget_usd of $%.6f.",
                    r->team->name, (double)q->spend_nano_usd / TG_SHM_NANO_USD,
                    (double)q->budget_nano_usd / TG_SHM_NANO_USD);
}

size_t tg_quota_team_index(const struct tg_req *r)
{
    return (size_t)(r->team - r->worker->cfg->teams);
}

int tg_quota_admit(struct tg_req *r)
{
    struct tg_shm_team *slot =
        tg_shm_team(r->worker->shm, tg_quota_team_index(r));
    enum tg_admit result;

    r->reserved = reservation(r);
    result = tg_shm_take(slot, r->reserved, tg_shm_now_ns(), &r->quota);
    r->has_quota = true;
    if (result != TG_ADMIT_OK) {
        refuse(r, result);
        return TG_ERROR;
    }
    r->slot = slot;
    return TG_OK;
}

int64_t tg_quota_cost(const struct tg_model *m, const struct tg_usage *u)
{
    double usd = ((double)u->prompt_tokens * m->input_usd_per_mtok +
                  (double)u->completion_tokens * m->output_usd_per_mtok) /
                 1e6;

    return (int64_t)(usd * (double)TG_SHM_NANO_USD + 0.5);
}

struct tg_usage tg_quota_used(const struct tg_req *r)
{
    struct tg_usage used = r->usage;

    if (!r->has_usage && r->streamed_chars > 0) {
        used.prompt_tokens = tg_quota_estimate_prompt(&r->chat);
        used.completion_tokens = tokens_of_chars(r->streamed_chars);
    }
    return used;
}

/* Metrics count what the team was charged, so they add up to its spend. */
void tg_quota_settle(struct tg_req *r)
{
    struct tg_usage used;
    int64_t cost;

    if (r->slot == NULL)
        return;
    used = tg_quota_used(r);
    cost = tg_quota_cost(r->model, &used);
    tg_shm_settle(r->slot, r->reserved,
                  used.prompt_tokens + used.completion_tokens, cost,
                  tg_shm_now_ns());
    tg_metrics_usage(r->worker->metrics, tg_quota_team_index(r),
                     tg_route_model_index(r, r->model), used.prompt_tokens,
                     used.completion_tokens, cost);
    r->slot = NULL;
}
