/*
 * fuzz_platform.c - libFuzzer target for the platform LLM API's body
 * parser (seed 000): any bytes must yield a canonical request or a recorded
 * 4xx/5xx error, never a crash or a read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_canon.h"
#include "tg_front.h"
#include "tg_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tg_arena arena;
    struct tg_parse p;
    struct tg_chat chat;
    int rc;

    tg_arena_init(&arena, 4096);
    rc = tg_parse_body(&p, &arena, (const char *)data, size);
    if (rc == TG_OK)
        rc = tg_front_platform_parse(&p, &chat);
    if (rc != TG_OK && (p.status < 400 || p.code == NULL))
        abort();
    if (rc == TG_OK && chat.n_messages == 0)
        abort();
    tg_arena_free(&arena);
    return 0;
}
