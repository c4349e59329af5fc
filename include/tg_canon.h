/*
 * tg_canon.h - the canonical chat request and the canonical event stream.
 *
 * Every API surface (a front) parses its body into a struct tg_chat and
 * renders struct tg_event values back out; every provider (a back) encodes a
 * struct tg_chat to its wire format and decodes its answers into events.
 * Strings point into the request's arena and are NUL-terminated; lengths are
 * kept because message text may contain NUL bytes (from \u0000).
 */
#ifndef TG_CANON_H
#define TG_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tg_role {
    TG_ROLE_SYSTEM,
    TG_ROLE_USER,
    TG_ROLE_ASSISTANT,
    TG_ROLE_TOOL,
};

struct tg_str {
    const char *ptr;
    size_t len;
};

struct tg_tool_call {
    struct tg_str id;
    struct tg_str name;
    struct tg_str arguments; /* JSON text of the arguments object */
};

struct tg_message {
    enum tg_role role;
    struct tg_str text;         /* concatenated text parts; may be empty */
    struct tg_tool_call *calls; /* assistant tool calls */
    size_t n_calls;
    struct tg_str tool_call_id; /* role tool: the call this answers */
    struct tg_str name;         /* optional participant / tool name */
};

struct tg_tool {
    struct tg_str name;
    struct tg_str description;
    struct tg_str parameters; /* JSON Schema object text; "{}" when absent */
};

enum tg_tool_choice {
    TG_TOOL_CHOICE_AUTO, /* default */
    TG_TOOL_CHOICE_NONE,
    TG_TOOL_CHOICE_REQUIRED, /* OpenAI "required", Anthropic "any" */
    TG_TOOL_CHOICE_NAMED,
};

#define TG_MAX_STOP_SEQUENCES 4

struct tg_chat {
    struct tg_str model; /* as the caller wrote it; empty = default model */
    struct tg_message *messages;
    size_t n_messages;
    struct tg_tool *tools;
    size_t n_tools;
    enum tg_tool_choice tool_choice;
    struct tg_str tool_choice_name; /* for TG_TOOL_CHOICE_NAMED */
    bool has_temperature;
    double temperature;
    bool has_top_p;
    double top_p;
    bool has_max_tokens;
    int64_t max_tokens;
    struct tg_str stop[TG_MAX_STOP_SEQUENCES];
    size_t n_stop;
    bool is_stream;
    bool include_usage; /* OpenAI stream_options.include_usage */
    struct tg_str user; /* caller metadata, passed through */
};

enum tg_stop_reason {
    TG_STOP_END,        /* natural end: OpenAI "stop", Anthropic end_turn */
    TG_STOP_MAX_TOKENS, /* "length" / max_tokens */
    TG_STOP_TOOL_USE,   /* "tool_calls" / tool_use */
    TG_STOP_SEQUENCE,   /* a stop sequence matched */
    TG_STOP_FILTER,     /* content filter */
};

struct tg_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
};

enum tg_event_type {
    TG_EV_TEXT,       /* text: a piece of the answer */
    TG_EV_TOOL_START, /* index, id, name: a tool call begins */
    TG_EV_TOOL_DELTA, /* index, text: a fragment of its arguments JSON */
    TG_EV_TOOL_END,   /* index: the tool call is complete */
    TG_EV_STOP,       /* stop_reason: no more content follows */
    TG_EV_USAGE,      /* usage: token counts of the whole call */
    TG_EV_DONE,       /* the call ended normally; nothing follows */
    TG_EV_ERROR,      /* status, text: the call failed; nothing follows */
};

struct tg_event {
    enum tg_event_type type;
    struct tg_str text;
    int index;
    struct tg_str id;
    struct tg_str name;
    enum tg_stop_reason stop_reason;
    struct tg_usage usage;
    int status; /* TG_EV_ERROR: the HTTP status to answer with */
    /* TG_EV_ERROR: the call failed in a way another candidate may not
     * (PRODUCT.md section 5: no connection or TLS, no first byte in time,
     * 429 or 5xx), and before any content came. */
    bool may_fail_over;
    /* TG_EV_ERROR: the provider's Retry-After in milliseconds, or -1. */
    int64_t retry_after_ms;
};

#endif
