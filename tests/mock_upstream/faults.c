/*
 * faults.c - the names of the faults a test can ask for, and the one fault
 * that changes what is rendered rather than how it is sent (bad JSON).
 *
 * A fault is named by the request's model or by its x-mock-fault header.
 * Everything about timing and closing is done by send.c; the error bodies
 * of fault-status-<code> are each provider's own.
 */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define FAULT_PREFIX     "fault-"
#define MAX_DELAY_MS     600000
#define MIN_FAULT_STATUS 400
#define MAX_FAULT_STATUS 599

struct fault_name {
    const char *name; /* the whole name, or a prefix when has_number */
    enum mock_fault_kind kind;
    bool has_number;
    int min, max;
};

static const struct fault_name fault_names[] = {
    {"fault-status-", MOCK_FAULT_STATUS, true, MIN_FAULT_STATUS,
     MAX_FAULT_STATUS},
    {"fault-delay-headers-", MOCK_FAULT_DELAY_HEADERS, true, 0, MAX_DELAY_MS},
    {"fault-delay-chunks-", MOCK_FAULT_DELAY_CHUNKS, true, 0, MAX_DELAY_MS},
    {"fault-drop-mid-stream", MOCK_FAULT_DROP_MID_STREAM, false, 0, 0},
    {"fault-bad-json", MOCK_FAULT_BAD_JSON, false, 0, 0},
    {"fault-truncated-frame", MOCK_FAULT_TRUNCATED_FRAME, false, 0, 0},
    {"fault-close", MOCK_FAULT_CLOSE, false, 0, 0},
    {"fault-flaky-", MOCK_FAULT_FLAKY, true, 1, 1000},
    {"fault-trickle-", MOCK_FAULT_TRICKLE, true, 1, MOCK_MAX_TRICKLE},
};

/* A decimal number within [min, max] and nothing else; -1 otherwise. */
static int parse_number(const char *s, int min, int max)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    return (int)v;
}

int mock_fault_parse(const char *name, struct mock_fault *f)
{
    f->kind = MOCK_FAULT_NONE;
    f->value = 0;
    if (strncmp(name, FAULT_PREFIX, strlen(FAULT_PREFIX)) != 0)
        return 1;
    for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++) {
        const struct fault_name *n = &fault_names[i];
        size_t len = strlen(n->name);

        if (!n->has_number && strcmp(name, n->name) == 0) {
            f->kind = n->kind;
            return 0;
        }
        if (n->has_number && strncmp(name, n->name, len) == 0) {
            f->value = parse_number(name + len, n->min, n->max);
            if (f->value < 0)
                return -1;
            f->kind = n->kind;
            return 0;
        }
    }
    return -1;
}

/*
 * The first event that carries content (or, when there is none, the first
 * closing one) loses the second half of its JSON, so that a client's parser
 * sees text that cannot be JSON. The cut never splits a UTF-8 sequence.
 */
size_t mock_fault_payload_len(struct mock_call *c, int piece_kind,
                              const char *payload, size_t len)
{
    size_t keep = len / 2;

    if (c->fault.kind != MOCK_FAULT_BAD_JSON || c->is_corrupted ||
        piece_kind == MOCK_PIECE_HEAD || len < 2)
        return len;
    while (keep > 1 && ((unsigned char)payload[keep] & 0xC0) == 0x80)
        keep--;
    c->is_corrupted = true;
    return keep;
}
