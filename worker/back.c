/*
 * back.c - which back serves a provider type.
 *
 * The mock is in-process; every other type is the HTTP back over that
 * type's wire format. Adding a provider is adding its file and a line in
 * the table below.
 */
#include "tg_back.h"

#include "tg.h"
#include "tg_wire.h"

static const struct tg_wire *const wires[] = {
    &tg_wire_openai,
    &tg_wire_anthropic,
    &tg_wire_bedrock,
    &tg_wire_gemini,
};

const struct tg_wire *tg_wire_for(enum tg_provider_type type)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(wires); i++)
        if (wires[i]->type == type)
            return wires[i];
    return NULL;
}

const struct tg_back *tg_back_for(enum tg_provider_type type)
{
    if (type == TG_PROVIDER_MOCK)
        return &tg_back_mock;
    return tg_wire_for(type) != NULL ? &tg_back_http : NULL;
}
