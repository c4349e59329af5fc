/*
 * front_jobs.c - jobs with model groups and credits (seed 003):
 *   POST /api/jobs/create               {team_id, job_type} -> a job
 *   GET  /api/jobs/{id}                 the job and its totals
 *   POST /api/jobs/{id}/llm-call        a call in the job
 *   POST /api/jobs/{id}/llm-call-stream the same, as OpenAI chunks
 *   POST /api/jobs/{id}/complete        {status} -> the job's costs
 *
 * Jobs live in the shared segment (shm/jobs.c), so any worker serves any
 * job. Errors are {"detail": ...} as FastAPI writes them, and invalid
 * request data is a 422 as the seed lists. Unknown fields are ignored,
 * like pydantic's default. Where the seed shows no body (create, get,
 * complete), the shapes are documented in docs/api-jobs.md.
 *
 * A call's outcome is added to its job when the answer is rendered: an
 * answer or a stream that ended well is a successful call; one that
 * reached a provider and failed is a failed call; a request refused
 * before any provider was tried (validation, quota) is not a call.
 */
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tg.h"
#include "tg_front.h"
#include "tg_json.h"
#include "tg_parse.h"
#include "tg_req.h"
#include "tg_shm.h"
#include "tg_worker.h"

#define JOB_TYPE_MAX        TG_SHM_JOB_TYPE_MAX
#define PURPOSE_MAX         200
#define DEFAULT_TEMPERATURE 0.7

/* The front's state of a call in a job. */
struct job_call {
    struct tg_job_id id;
    struct tg_str model_group;
    int64_t started_us;
    enum tg_stop_reason stop_reason;
    bool has_failed; /* the stream carried an error */
    bool is_counted; /* its outcome went to the job */
};

static struct tg_shm_team *team_slot(const struct tg_req *r)
{
    return tg_shm_team(r->worker->shm,
                       (size_t)(r->team - r->worker->cfg->teams));
}

/* ---- rendering common to every route ------------------------------- */

static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message);

static void fail_detail(struct tg_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_detail(struct tg_req *r, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    tg_req_fail(r, status, "job_error", "%s", message);
}

static void write_time(struct evbuffer *b, int64_t ns)
{
    time_t s = (time_t)(ns / TG_SHM_NANO_USD);
    struct tm tm;
    char when[32];

    if (ns == 0) {
        TG_ADD_LIT(b, "null");
        return;
    }
    gmtime_r(&s, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    evbuffer_add_printf(b, "\"%s.%03dZ\"", when,
                        (int)(ns % TG_SHM_NANO_USD / 1000000));
}

static const char *status_name(enum tg_job_status s)
{
    switch (s) {
    case TG_JOB_COMPLETED: return "completed";
    case TG_JOB_FAILED: return "failed";
    case TG_JOB_CANCELLED: return "cancelled";
    default: return "in_progress";
    }
}

static void write_costs(struct evbuffer *b, const struct tg_shm_job_view *v)
{
    int64_t avg = v->calls > 0 ? v->latency_ms_sum / v->calls : 0;

    evbuffer_add_printf(
        b,
        "{\"total_calls\":%lld,\"successful_calls\":%lld,"
        "\"failed_calls\":%lld,\"total_tokens\":%lld,"
        "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
        "\"total_cost_usd\":",
        (long long)v->calls, (long long)(v->calls - v->failed_calls),
        (long long)v->failed_calls,
        (long long)(v->prompt_tokens + v->completion_tokens),
        (long long)v->prompt_tokens, (long long)v->completion_tokens);
    tg_json_write_fixed(b, v->cost_nano_usd, TG_SHM_NANO_USD, 9);
    evbuffer_add_printf(b, ",\"avg_latency_ms\":%lld,\"credit_applied\":%s",
                        (long long)avg,
                        v->is_credit_applied ? "true" : "false");
}

/* {"job_id":..,"team_id":..,"job_type":..,"status":..,"created_at":..,
 * "completed_at":.., then what `tail` adds, and "}". */
static void write_job(struct evbuffer *b, const struct tg_shm_job_view *v)
{
    char id[TG_SHM_JOB_ID_LEN + 1];

    tg_job_id_format(&v->id, id);
    evbuffer_add_printf(b, "{\"job_id\":\"%s\",\"team_id\":", id);
    tg_json_write_str(b, v->team_name, strlen(v->team_name));
    TG_ADD_LIT(b, ",\"job_type\":");
    tg_json_write_str(b, v->job_type, strlen(v->job_type));
    evbuffer_add_printf(
        b, ",\"status\":\"%s\",\"created_at\":", status_name(v->status));
    write_time(b, v->created_ns);
    TG_ADD_LIT(b, ",\"completed_at\":");
    write_time(b, v->completed_ns);
}

/* ---- the job of a route's {id} ------------------------------------- */

/* Answers the refusal of a job operation; TG_OK when there is none. */
static int job_refused(struct tg_req *r, enum tg_job_result rc)
{
    switch (rc) {
    case TG_JOB_OK: return TG_OK;
    case TG_JOB_WRONG_TEAM:
        fail_detail(r, 403, "Job does not belong to team '%s'", r->team->name);
        break;
    case TG_JOB_CLOSED: fail_detail(r, 409, "Job is already completed"); break;
    case TG_JOB_NO_CREDITS:
        tg_metrics_refused(r->worker->metrics, tg_quota_team_index(r),
                           TG_LIMIT_CREDITS);
        fail_detail(r, 402, "Team '%s' has no credits left", r->team->name);
        break;
    case TG_JOB_TABLE_FULL:
        tg_req_header(r, "Retry-After", "1");
        fail_detail(r, 503, "The job table is full of open jobs");
        break;
    default: fail_detail(r, 404, "Job not found"); break;
    }
    return TG_ERROR;
}

static int path_job(struct tg_req *r, struct tg_job_id *id)
{
    if (!tg_job_id_parse(r->path_param.ptr, r->path_param.len, id))
        return job_refused(r, TG_JOB_NOT_FOUND);
    return TG_OK;
}

/* ---- POST /api/jobs/create ----------------------------------------- */

static int parse_create(struct tg_parse *p, struct tg_str *team,
                        struct tg_str *type)
{
    if (tg_parse_need_str(p, 0, "team_id", team) != TG_OK ||
        tg_parse_need_str(p, 0, "job_type", type) != TG_OK)
        return TG_ERROR;
    tg_parse_param(p, "job_type");
    if (type->len == 0 || type->len > JOB_TYPE_MAX ||
        memchr(type->ptr, '\0', type->len) != NULL)
        return tg_parse_fail(p, "invalid_value",
                             "job_type must be 1 to %d characters",
                             JOB_TYPE_MAX);
    return TG_OK;
}

void tg_front_jobs_create(struct tg_req *r)
{
    struct tg_shm_job_view v;
    struct tg_str team, type;
    struct tg_parse p;

    if (tg_parse_request(&p, r) != TG_OK ||
        parse_create(&p, &team, &type) != TG_OK) {
        tg_parse_answer(&p, r);
        return;
    }
    if (strlen(r->team->name) != team.len ||
        memcmp(r->team->name, team.ptr, team.len) != 0) {
        fail_detail(r, 403, "The key is not a key of team '%.*s'",
                    (int)(team.len > 64 ? 64 : team.len), team.ptr);
        return;
    }
    if (job_refused(r, tg_shm_job_create(r->worker->shm, team_slot(r), type.ptr,
                                         tg_shm_now_ns(), &v)) != TG_OK)
        return;
    write_job(r->out, &v);
    TG_ADD_LIT(r->out, "}");
    tg_req_send(r, 200);
}

/* ---- GET /api/jobs/{id} -------------------------------------------- */

void tg_front_jobs_get(struct tg_req *r)
{
    struct tg_shm_job_view v;
    struct tg_job_id id;

    if (path_job(r, &id) != TG_OK ||
        job_refused(
            r, tg_shm_job_read(r->worker->shm, team_slot(r), &id, &v)) != TG_OK)
        return;
    write_job(r->out, &v);
    TG_ADD_LIT(r->out, ",\"costs\":");
    write_costs(r->out, &v);
    TG_ADD_LIT(r->out, "}}");
    tg_req_send(r, 200);
}

/* ---- POST /api/jobs/{id}/complete ---------------------------------- */

static int parse_status(struct tg_parse *p, enum tg_job_status *out)
{
    struct tg_str s;

    if (tg_parse_need_str(p, 0, "status", &s) != TG_OK)
        return TG_ERROR;
    if (strcmp(s.ptr, "completed") == 0)
        *out = TG_JOB_COMPLETED;
    else if (strcmp(s.ptr, "failed") == 0)
        *out = TG_JOB_FAILED;
    else if (strcmp(s.ptr, "cancelled") == 0)
        *out = TG_JOB_CANCELLED;
    else
        return tg_parse_fail(p, "invalid_value",
                             "status must be one of 'completed', 'failed', "
                             "'cancelled'");
    return TG_OK;
}

void tg_front_jobs_complete(struct tg_req *r)
{
    struct tg_shm_job_view v;
    enum tg_job_status status = TG_JOB_COMPLETED;
    struct tg_job_id id;
    struct tg_parse p;

    if (path_job(r, &id) != TG_OK)
        return;
    if (tg_parse_request(&p, r) != TG_OK || parse_status(&p, &status) != 0) {
        tg_parse_answer(&p, r);
        return;
    }
    if (job_refused(r, tg_shm_job_close(r->worker->shm, team_slot(r), &id,
                                        status, tg_shm_now_ns(), &v)) != TG_OK)
        return;
    write_job(r->out, &v);
    TG_ADD_LIT(r->out, ",\"costs\":");
    write_costs(r->out, &v);
    TG_ADD_LIT(r->out, ",\"credits_remaining\":");
    tg_json_write_fixed(r->out, v.credits_after_micro, TG_SHM_MICRO_CREDITS, 6);
    TG_ADD_LIT(r->out, "}}");
    tg_req_send(r, 200);
}

/* ---- POST /api/jobs/{id}/llm-call[-stream] ------------------------- */

static int parse_options(struct tg_parse *p, struct tg_req *r)
{
    struct tg_chat *c = &r->chat;
    int v;

    c->temperature = DEFAULT_TEMPERATURE;
    c->has_temperature = true;
    if ((v = tg_json_get(&p->j, 0, "temperature")) >= 0) {
        tg_parse_param(p, "temperature");
        if (tg_parse_check(p, v, TG_T_NUM, 0.0, 2.0) != TG_OK)
            return TG_ERROR;
        tg_json_double(&p->j, v, &c->temperature);
    }
    if ((v = tg_json_get(&p->j, 0, "max_tokens")) >= 0 &&
        tg_parse_type(&p->j, v) != TG_T_NULL) {
        tg_parse_param(p, "max_tokens");
        if (tg_parse_check(p, v, TG_T_INT, 1, 1000000) != TG_OK)
            return TG_ERROR;
        c->has_max_tokens = tg_json_int64(&p->j, v, &c->max_tokens) == TG_OK;
    }
    if ((v = tg_json_get(&p->j, 0, "purpose")) >= 0 &&
        tg_parse_type(&p->j, v) != TG_T_NULL) {
        tg_parse_param(p, "purpose");
        if (tg_parse_check(p, v, TG_T_STR, 1, 0) != TG_OK ||
            tg_parse_str(p, v, &r->purpose) != TG_OK)
            return TG_ERROR;
        if (r->purpose.len > PURPOSE_MAX)
            return tg_parse_fail(p, "invalid_value",
                                 "purpose must be at most %d characters",
                                 PURPOSE_MAX);
    }
    return TG_OK;
}

static int parse_call(struct tg_parse *p, struct tg_req *r,
                      struct job_call *call)
{
    memset(&r->chat, 0, sizeof(r->chat));
    if (tg_parse_need_str(p, 0, "model_group", &call->model_group) != TG_OK ||
        tg_front_openai_parse_messages(p, &r->chat) != TG_OK ||
        parse_options(p, r) != TG_OK)
        return TG_ERROR;
    r->chat.model = call->model_group;
    return TG_OK;
}

/* The model group must be one, and one the team may use. */
static int check_group(struct tg_req *r, const struct job_call *call)
{
    const struct tg_str *g = &call->model_group;
    struct tg_route_target t;

    if (tg_cfg_resolve_model(r->worker->cfg, g->ptr, g->len, &t) != TG_OK ||
        t.group == NULL) {
        fail_detail(r, 422, "Model group '%.*s' does not exist",
                    (int)(g->len > 100 ? 100 : g->len), g->ptr);
        return TG_ERROR;
    }
    if (!tg_cfg_team_allows_group(r->team, t.group)) {
        fail_detail(r, 403,
                    "Team '%s' does not have access to model group "
                    "'%s'",
                    r->team->name, t.group->name);
        return TG_ERROR;
    }
    return TG_OK;
}

static void call_in_job(struct tg_req *r, bool is_stream)
{
    struct job_call *call = tg_arena_calloc(&r->arena, 1, sizeof(*call));
    struct tg_parse p;
    char *job_id;

    if (call == NULL) {
        fail_detail(r, 500, "out of memory");
        return;
    }
    if (path_job(r, &call->id) != TG_OK)
        return;
    if (tg_parse_request(&p, r) != TG_OK || parse_call(&p, r, call) != 0) {
        tg_parse_answer(&p, r);
        return;
    }
    if (job_refused(r, tg_shm_job_check(r->worker->shm, team_slot(r),
                                        &call->id)) != TG_OK ||
        check_group(r, call) != TG_OK)
        return;
    job_id = tg_arena_alloc(&r->arena, TG_SHM_JOB_ID_LEN + 1);
    if (job_id != NULL)
        tg_job_id_format(&call->id, job_id);
    r->job_id = job_id;
    r->chat.is_stream = is_stream;
    call->started_us = tg_now_us();
    r->front_state = call;
    tg_req_run_chat(r);
}

void tg_front_jobs_call(struct tg_req *r)
{
    call_in_job(r, false);
}

void tg_front_jobs_call_stream(struct tg_req *r)
{
    call_in_job(r, true);
}

/* Adds the call's outcome to its job, once, if a provider was tried. */
static void count_call(struct tg_req *r, bool is_ok)
{
    struct job_call *call = r->front_state;
    struct tg_usage u = tg_quota_used(r);
    struct tg_job_call c;

    if (call == NULL || call->is_counted || r->n_attempts == 0)
        return;
    call->is_counted = true;
    c = (struct tg_job_call){
        .is_ok = is_ok,
        .prompt_tokens = u.prompt_tokens,
        .completion_tokens = u.completion_tokens,
        .cost_nano_usd = tg_quota_cost(r->model, &u),
        .latency_ms = (tg_now_us() - call->started_us) / 1000,
    };
    tg_shm_job_add_call(r->worker->shm, team_slot(r), &call->id, &c);
}

static const char *finish_reason(enum tg_stop_reason reason)
{
    switch (reason) {
    case TG_STOP_MAX_TOKENS: return "length";
    case TG_STOP_FILTER: return "content_filter";
    default: return "stop";
    }
}

static void render_error(struct tg_req *r, int status, const char *code,
                         const char *message)
{
    (void)status;
    (void)code;
    count_call(r, false);
    tg_json_write_detail(r->out, message);
}

static int render_answer(struct tg_req *r)
{
    const struct job_call *call = r->front_state;
    struct evbuffer *text = r->answer.text;
    struct tg_usage u = tg_quota_used(r);
    struct tg_job_id call_id;
    char id[TG_SHM_JOB_ID_LEN + 1];

    count_call(r, true);
    tg_job_id_random(&call_id);
    tg_job_id_format(&call_id, id);
    evbuffer_add_printf(r->out,
                        "{\"call_id\":\"%s\",\"response\":"
                        "{\"content\":",
                        id);
    tg_json_write_str(r->out, (char *)evbuffer_pullup(text, -1),
                      evbuffer_get_length(text));
    evbuffer_add_printf(r->out,
                        ",\"finish_reason\":\"%s\"},\"metadata\":"
                        "{\"tokens_used\":%lld,\"latency_ms\":%lld,"
                        "\"model_group\":",
                        finish_reason(r->answer.stop_reason),
                        (long long)(u.prompt_tokens + u.completion_tokens),
                        (long long)((tg_now_us() - call->started_us) / 1000));
    tg_json_write_str(r->out, call->model_group.ptr, call->model_group.len);
    TG_ADD_LIT(r->out, "}}");
    return 200;
}

/* ---- the stream: OpenAI chunks as the seed shows them ---------------- */

static void chunk_open(struct tg_req *r)
{
    evbuffer_add_printf(r->out,
                        "data: {\"id\":\"chatcmpl-%s\",\"object\":"
                        "\"chat.completion.chunk\",\"created\":%lld,"
                        "\"model\":",
                        r->id, (long long)r->created);
    tg_json_write_str(r->out, r->model->name, strlen(r->model->name));
    TG_ADD_LIT(r->out, ",\"choices\":[{\"index\":0,\"delta\":");
}

static void chunk_close(struct tg_req *r, const char *finish)
{
    struct tg_usage u = tg_quota_used(r);

    if (finish == NULL) {
        TG_ADD_LIT(r->out, ",\"finish_reason\":null}]}\n\n");
        return;
    }
    evbuffer_add_printf(r->out,
                        ",\"finish_reason\":\"%s\"}],\"usage\":", finish);
    evbuffer_add_printf(r->out,
                        "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                        "\"total_tokens\":%lld}}\n\n",
                        (long long)u.prompt_tokens,
                        (long long)u.completion_tokens,
                        (long long)(u.prompt_tokens + u.completion_tokens));
}

static void render_stream_start(struct tg_req *r)
{
    chunk_open(r);
    TG_ADD_LIT(r->out, "{\"role\":\"assistant\",\"content\":\"\"}");
    chunk_close(r, NULL);
}

static void render_stream_error(struct tg_req *r, const struct tg_event *ev)
{
    struct job_call *call = r->front_state;
    bool is_timeout = ev->status == 504;

    call->has_failed = true;
    TG_ADD_LIT(r->out, "data: {\"error\":{\"message\":");
    tg_json_write_str(r->out, ev->text.ptr, ev->text.len);
    evbuffer_add_printf(r->out, ",\"type\":\"%s\",\"code\":\"%s\"}}\n\n",
                        is_timeout ? "timeout_error" : "upstream_error",
                        is_timeout ? "model_timeout" : "upstream_error");
}

static void render_stream_event(struct tg_req *r, const struct tg_event *ev)
{
    struct job_call *call = r->front_state;

    switch (ev->type) {
    case TG_EV_TEXT:
        chunk_open(r);
        TG_ADD_LIT(r->out, "{\"content\":");
        tg_json_write_str(r->out, ev->text.ptr, ev->text.len);
        TG_ADD_LIT(r->out, "}");
        chunk_close(r, NULL);
        break;
    case TG_EV_STOP: call->stop_reason = ev->stop_reason; break;
    case TG_EV_ERROR: render_stream_error(r, ev); break;
    default: break;
    }
}

/* The final chunk carries the finish reason and the usage, which the
 * provider may report after its stop. */
static void render_stream_end(struct tg_req *r)
{
    struct job_call *call = r->front_state;

    count_call(r, !call->has_failed);
    if (!call->has_failed) {
        chunk_open(r);
        TG_ADD_LIT(r->out, "{}");
        chunk_close(r, finish_reason(call->stop_reason));
    }
    TG_ADD_LIT(r->out, "data: [DONE]\n\n");
}

const struct tg_front tg_front_jobs = {
    .name = "jobs",
    .surface = TG_SURFACE_JOBS,
    .invalid_status = 422,
    .render_error = render_error,
    .render_answer = render_answer,
    .render_stream_start = render_stream_start,
    .render_stream_event = render_stream_event,
    .render_stream_end = render_stream_end,
};
