/*
 * fuzz_stip.c - libFuzzer target for the STIP surface (seeds 001/002): a
 * classification body, and a model's reply matched against its classes.
 * The input is "<body>\0<reply>" (a missing NUL: all body, empty reply).
 * The parse must end in a request or a recorded error, and a match must
 * name one of the body's classes or none; never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_canon.h"
#include "tg_front.h"
#include "tg_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    size_t body_len = nul ? (size_t)(nul - (const char *)data) : size;
    struct tg_str reply = {nul ? nul + 1 : "", nul ? size - body_len - 1 : 0};
    struct tg_arena arena;
    struct tg_parse p;
    struct tg_chat chat;
    int rc, found = -2;

    tg_arena_init(&arena, 4096);
    rc = tg_parse_body(&p, &arena, (const char *)data, body_len);
    if (rc == TG_OK)
        rc = tg_front_stip_parse_and_classify(&p, reply, &chat, &found);
    if (rc != TG_OK && (p.status < 400 || p.code == NULL))
        abort();
    if (rc == TG_OK && (found < -1 || chat.n_messages == 0))
        abort();
    tg_arena_free(&arena);
    return 0;
}
