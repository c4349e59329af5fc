/*
 * back.c - the table of provider backs, by provider type.
 *
 * Adding a provider is adding its file and a line here.
 */
#include "tg_back.h"

#include "tg.h"

static const struct tg_back *const backs[] = {
    &tg_back_mock,
    &tg_back_openai,
    &tg_back_anthropic,
    &tg_back_gemini,
    &tg_back_bedrock,
};

const struct tg_back *tg_back_for(enum tg_provider_type type)
{
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(backs); i++)
        if (backs[i]->type == type)
            return backs[i];
    return NULL;
}
