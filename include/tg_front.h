/*
 * tg_front.h - the API surface interface: one front per surface.
 *
 * A front parses its surface's request body into the canonical struct
 * tg_chat (in its route handler) and renders the outcome: an error body in
 * the surface's format, a complete answer, or a stream of events. The
 * request path (request.c) decides when each is called; fronts never send
 * HTTP themselves except through the tg_req_* helpers.
 */
#ifndef TG_FRONT_H
#define TG_FRONT_H

#include "tg_canon.h"
#include "tg_metrics.h"
#include "tg_req.h"

struct tg_req;

struct tg_front {
    const char *name;        /* "openai": the surface, for logs */
    enum tg_surface surface; /* for metrics */
    /* The status of a request body that fails validation: 0 for 400, or
     * 422 for the FastAPI-style surfaces. */
    int invalid_status;
    /* Writes an error body for `status` into r->out (the caller sends it).
     * `code` is a short machine-readable reason ("invalid_api_key"). */
    void (*render_error)(struct tg_req *r, int status, const char *code,
                         const char *message);
    /* Writes the complete answer collected in r->answer into r->out and
     * returns the status to send: 200, or an error status after writing
     * an error body instead (an answer the surface cannot express). */
    int (*render_answer)(struct tg_req *r);
    /* Streaming: the first bytes after the headers (may write nothing),
     * one event, and the closing bytes. Each writes into r->out. */
    void (*render_stream_start)(struct tg_req *r);
    void (*render_stream_event)(struct tg_req *r, const struct tg_event *ev);
    void (*render_stream_end)(struct tg_req *r);
};

extern const struct tg_front tg_front_openai;

struct tg_parse;

/* Parses a chat completion body (already in p, see tg_parse_body) into
 * chat. TG_ERROR with the error recorded in p. */
int tg_front_openai_parse(struct tg_parse *p, struct tg_chat *chat);

/* The OpenAI-compatible surface's route handlers (front_openai.c). */
void tg_front_openai_chat(struct tg_req *r);
void tg_front_openai_models(struct tg_req *r);

/* The platform LLM API of seed 000 (front_platform.c). */
extern const struct tg_front tg_front_platform;
tg_handler_fn tg_front_platform_completions;
tg_handler_fn tg_front_platform_stream;
tg_handler_fn tg_front_platform_models;

/* Jobs with model groups and credits, seed 003 (front_jobs.c). */
extern const struct tg_front tg_front_jobs;
tg_handler_fn tg_front_jobs_create;
tg_handler_fn tg_front_jobs_get;
tg_handler_fn tg_front_jobs_call;
tg_handler_fn tg_front_jobs_call_stream;
tg_handler_fn tg_front_jobs_complete;

/* The admin API (front_admin.c), for admin keys only. */
extern const struct tg_front tg_front_admin;
tg_handler_fn tg_front_admin_team;
tg_handler_fn tg_front_admin_top_up;
tg_handler_fn tg_front_admin_providers;
tg_handler_fn tg_front_admin_reset;

/* Shared with other fronts that take OpenAI-style messages: parses the
 * body's "messages" into c (front_openai.c). */
int tg_front_openai_parse_messages(struct tg_parse *p, struct tg_chat *c);

/* The body parser of the platform API, for its fuzz target. */
int tg_front_platform_parse(struct tg_parse *p, struct tg_chat *chat);

/* The STIP task gateway of seeds 001/002 (front_stip.c). */
extern const struct tg_front tg_front_stip;
tg_handler_fn tg_front_stip_root;
tg_handler_fn tg_front_stip_providers;
tg_handler_fn tg_front_stip_generation;
tg_handler_fn tg_front_stip_generation_stream;
tg_handler_fn tg_front_stip_classification;
tg_handler_fn tg_front_stip_summarization;

/* For its fuzz target: parses a classification body (every task's fields
 * and the classes), then matches `reply`, a model's answer, to a class:
 * *class_index is its index, or -1 when the reply names none or several. */
int tg_front_stip_parse_and_classify(struct tg_parse *p, struct tg_str reply,
                                     struct tg_chat *chat, int *class_index);

#endif
