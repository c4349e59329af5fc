/*
 * mock.h - the wire-level mock upstream's private interfaces.
 *
 * One process, one libevent loop. Every provider request becomes a struct
 * mock_call that goes through one pipeline (call.c): record it, authenticate,
 * parse the body into a provider-neutral summary (struct mock_convo), work out
 * the deterministic answer (reply.c), render it in the provider's format
 * (openai.c, anthropic.c, bedrock.c, gemini.c) as a list of pieces, and send
 * the pieces with whatever fault the request asked for (send.c, faults.c).
 */
#ifndef MOCK_H
#define MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tg_arena.h"
#include "tg_canon.h"
#include "tg_json.h"

struct event;
struct event_base;
struct ev_token_bucket_cfg;
struct evbuffer;
struct evhttp;
struct evhttp_request;
struct mock_call;

/* ---- the server ---- */

/* The most bytes a millisecond of fault-trickle-<n>. */
#define MOCK_MAX_TRICKLE 64

struct mock_keys {
    const char *openai;
    const char *anthropic;
    const char *gemini;
    const char *aws_access_key_id;
    const char *aws_secret_access_key;
};

/* Requests counted per model name, in the order the names were first seen. */
struct mock_model_count {
    char *name;
    uint64_t count;
};

enum mock_provider_id {
    MOCK_OPENAI,
    MOCK_ANTHROPIC,
    MOCK_BEDROCK,
    MOCK_GEMINI,
    MOCK_N_PROVIDERS,
};

struct mock_stats {
    uint64_t total;
    uint64_t by_provider[MOCK_N_PROVIDERS];
    struct mock_model_count *models;
    size_t n_models, cap_models;
    struct evbuffer *last; /* JSON of the last provider request, or NULL */
};

struct mock_server {
    struct event_base *base;
    struct evhttp *http;
    struct mock_keys keys;
    struct mock_stats stats;
    struct mock_call *calls; /* calls still in flight (a delay, a stream) */
    /* The write limits of fault-trickle-<n>, each made on first use; a
     * connection keeps using its limit after the call. */
    struct ev_token_bucket_cfg *trickle[MOCK_MAX_TRICKLE + 1];
    uint64_t seq; /* numbers the ids of answers */
};

/* ---- what a request asks for, whatever its format ---- */

enum mock_tool_choice {
    MOCK_CHOICE_AUTO,
    MOCK_CHOICE_NONE,
    MOCK_CHOICE_ANY,   /* a tool must be called: the first one */
    MOCK_CHOICE_NAMED, /* this tool must be called */
};

struct mock_convo {
    struct tg_str last_user_text;
    bool is_tool_result; /* the last message answers a tool call */
    struct tg_str tool_result;
    size_t n_tools;
    struct tg_str first_tool;
    enum mock_tool_choice choice;
    struct tg_str choice_name;
    bool has_max_tokens;
    int64_t max_tokens;
    size_t prompt_chars; /* code points of every message text and system */
};

enum mock_stop {
    MOCK_STOP_END,
    MOCK_STOP_LENGTH,
    MOCK_STOP_TOOL,
};

struct mock_reply {
    bool is_tool;
    struct tg_str text;      /* the answer's text (already cut) */
    struct tg_str tool_name; /* when is_tool */
    struct tg_str arguments; /* JSON text of the tool call's arguments */
    enum mock_stop stop;
    int64_t prompt_tokens;
    int64_t completion_tokens;
};

/* ---- faults ---- */

enum mock_fault_kind {
    MOCK_FAULT_NONE,
    MOCK_FAULT_STATUS,
    MOCK_FAULT_DELAY_HEADERS,
    MOCK_FAULT_DELAY_CHUNKS,
    MOCK_FAULT_DROP_MID_STREAM,
    MOCK_FAULT_BAD_JSON,
    MOCK_FAULT_TRUNCATED_FRAME,
    MOCK_FAULT_CLOSE,
    MOCK_FAULT_FLAKY,   /* the first <n> requests for the model answer 503 */
    MOCK_FAULT_TRICKLE, /* the connection writes <n> bytes a millisecond */
};

struct mock_fault {
    enum mock_fault_kind kind;
    int value; /* STATUS: the code; DELAY_*: milliseconds; TRICKLE: bytes */
};

/* Parses a fault name ("fault-status-429"...). Returns 0 with *f set,
 * 1 when the name is no fault at all (it does not start with "fault-"),
 * or -1 when it starts with "fault-" but names no known fault. */
int mock_fault_parse(const char *name, struct mock_fault *f);

/* The bad-json fault: how many bytes of `payload` (the JSON of one stream
 * event of this kind) to send; fewer than len for the first content or
 * closing event of a call with that fault. */
size_t mock_fault_payload_len(struct mock_call *c, int piece_kind,
                              const char *payload, size_t len);

/* ---- one provider request ---- */

/* Pieces of a streamed answer: the fault that drops a stream mid-way sends
 * opening and content pieces only, never a closing one. */
enum mock_piece_kind {
    MOCK_PIECE_HEAD,    /* role chunk, message_start, messageStart... */
    MOCK_PIECE_CONTENT, /* a word, an arguments fragment */
    MOCK_PIECE_TAIL,    /* stop reason, usage, [DONE]... */
};

struct mock_piece {
    size_t len;
    enum mock_piece_kind kind;
};

enum mock_send_state {
    MOCK_SEND_NEW,
    MOCK_SEND_WAIT_HEADERS, /* fault delay before the status line */
    MOCK_SEND_STREAMING,    /* between two pieces of a delayed stream */
    MOCK_SEND_CLOSING,      /* waiting for the output to drain, then close */
};

struct mock_provider;

struct mock_call {
    struct mock_server *srv;
    const struct mock_provider *provider;
    struct evhttp_request *req;
    struct mock_call *prev, *next; /* in srv->calls */
    struct tg_arena arena;
    struct timespec started;
    uint64_t id;

    /* the request */
    const char *path;  /* as on the wire, without the query */
    const char *query; /* NULL when the target has no '?' */
    const char *body;  /* NUL-terminated copy */
    size_t body_len;
    struct tg_json json;
    bool is_json; /* the body parsed as JSON */
    const char *model;
    bool is_stream;
    bool include_usage;
    const char *error; /* why parsing failed (400) */
    struct mock_convo convo;
    struct mock_reply reply;
    struct mock_fault fault;
    bool is_corrupted; /* the bad-json fault has been applied */

    /* the answer */
    int status;
    bool is_stream_answer;
    struct evbuffer *out; /* the body, or every piece of a stream in order */
    struct mock_piece *pieces;
    size_t n_pieces, cap_pieces;
    size_t piece_bytes; /* bytes of c->out already in pieces */

    /* sending (send.c) */
    enum mock_send_state state;
    struct event *timer;
    size_t next_piece;
    int content_sent;
    bool has_waited; /* the delay before next_piece is over */
};

/*
 * A provider: how its paths look, where the model name is, how it
 * authenticates, how it reads a request into c->is_stream / c->convo, and
 * how it writes an answer or an error into c->out. model_of returns NULL
 * when the request names no model it can read. authenticate and parse
 * return 0, or -1 after rendering the error themselves (authenticate) or
 * setting c->error (parse: the pipeline answers 400).
 */
struct mock_provider {
    enum mock_provider_id id;
    bool (*match)(const char *path);
    const char *(*model_of)(struct mock_call *c);
    int (*authenticate)(struct mock_call *c);
    int (*parse)(struct mock_call *c);
    /* kind: the provider's error code or type, NULL for the usual one of
     * that status */
    void (*render_error)(struct mock_call *c, int status, const char *kind,
                         const char *message);
    void (*render)(struct mock_call *c);
};

extern const struct mock_provider mock_openai;
extern const struct mock_provider mock_anthropic;
extern const struct mock_provider mock_bedrock;
extern const struct mock_provider mock_gemini;

/* call.c: serves one provider request; takes ownership of nothing. */
void mock_call_serve(struct mock_server *srv, struct evhttp_request *req,
                     const struct mock_provider *p, const char *path,
                     const char *query);

/* Frees the call (not its request, which evhttp owns) and unlinks it. */
void mock_call_free(struct mock_call *c);

/* Marks the bytes added to c->out since the last piece as one piece. */
int mock_piece_end(struct mock_call *c, enum mock_piece_kind kind);

/* Adds a response header. */
void mock_header(struct mock_call *c, const char *name, const char *value);

/* Milliseconds since the request arrived. */
int64_t mock_elapsed_ms(const struct mock_call *c);

/* ---- reading JSON fields (call.c) ---- */

#define MOCK_ABSENT (-1)
#define MOCK_BAD    (-2)

/* The value of `key` in object `obj` when it has type `type` (TG_JSON_TRUE
 * stands for any boolean); MOCK_ABSENT when missing or null and not
 * required; MOCK_BAD with c->error set when required and missing, or of
 * another type. */
int mock_field(struct mock_call *c, int obj, const char *key,
               enum tg_json_type type, bool is_required);

/* Checks that token i has `type`; MOCK_BAD with c->error naming `what`. */
int mock_expect(struct mock_call *c, int i, enum tg_json_type type,
                const char *what);

/* Decodes string token i into the arena; -1 when out of memory. */
int mock_string(struct mock_call *c, int i, struct tg_str *out);

/* Reads an integer field that must be at least 1 into *out / *has. */
int mock_positive_int(struct mock_call *c, int obj, const char *key, bool *has,
                      int64_t *out);

/* The raw JSON text of token i (objects, arrays, numbers as received). */
struct tg_str mock_raw(const struct mock_call *c, int i);

/* The "model" string of a JSON body (decoded, in the arena), or NULL. */
const char *mock_body_model(struct mock_call *c);

/* The text of a message content that is a string, null/absent (""), or an
 * array of blocks whose {"type":"text","text":...} parts are joined (other
 * blocks are skipped). -1 with c->error set when malformed. */
int mock_content_text(struct mock_call *c, int i, const char *what,
                      struct tg_str *out);

/* Adds the code points of text to the prompt's size. */
void mock_count_prompt(struct mock_call *c, struct tg_str text);

/* Starts (or restarts) the answer: status, Content-Type, an empty body, and
 * retry-after: 1 on a 429. */
void mock_begin_answer(struct mock_call *c, int status,
                       const char *content_type);

/* s[0..n) with %XX escapes decoded, NUL-terminated in the arena. */
char *mock_uri_decode(struct mock_call *c, const char *s, size_t n);

/* Appends b to a (both in the arena); -1 when out of memory. */
int mock_append(struct mock_call *c, struct tg_str *a, struct tg_str b);

/* ---- the deterministic answer (reply.c) ---- */

/* Works out c->reply from c->convo. Returns 0, or -1 when out of memory. */
int mock_reply_compute(struct mock_call *c);

/* Unicode code points in valid UTF-8 text. */
size_t mock_code_points(const char *s, size_t n);

/* End of the stream word that starts at `pos`: a word and the white space
 * after it (white space at the start of the text goes with the first word). */
size_t mock_next_word(const char *s, size_t n, size_t pos);

/* Byte offsets that cut s into three parts of about equal code points. */
void mock_split3(const char *s, size_t n, size_t cut[2]);

/* ---- sending (send.c) ---- */

/* Sends c's answer (status, c->out, pieces) with c's fault, then frees c.
 * The call may live on after this returns (delays, streams). */
void mock_send(struct mock_call *c);

/* ---- counters and the last request (stats.c) ---- */

void mock_stats_count(struct mock_server *srv, enum mock_provider_id p);
void mock_stats_count_model(struct mock_server *srv, const char *model);
/* How many requests for `model` have been counted. */
uint64_t mock_stats_model_count(const struct mock_server *srv,
                                const char *model);
void mock_stats_record(struct mock_server *srv, struct mock_call *c);
void mock_stats_reset(struct mock_stats *st);
void mock_stats_free(struct mock_stats *st);

/* GET /_mock/stats, POST /_mock/reset, GET /_mock/last; false when the path
 * is none of them. */
bool mock_stats_serve(struct mock_server *srv, struct evhttp_request *req,
                      const char *path);

/* Answers a request that reaches no provider with a small JSON error. */
void mock_reply_plain(struct evhttp_request *req, int status, const char *json);

#endif
