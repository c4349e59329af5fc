/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Feeds arbitrary bytes to tg_cfg_load_string and frees whatever comes
 * back, so that AddressSanitizer sees every read of the YAML tree, every
 * diagnostic and every free. A few environment variables are set once so
 * that inputs can reach both the set and the unset paths of ${...}.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tg_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int is_ready;
    struct tg_cfg_diags diags;
    struct tg_config *cfg;

    if (!is_ready) {
        setenv("TG_FUZZ_SET", "value", 1);
        setenv("TG_FUZZ_EMPTY", "", 1);
        is_ready = 1;
    }
    cfg = tg_cfg_load_string("fuzz.yaml", (const char *)data, size, &diags);
    tg_cfg_free(cfg);
    tg_cfg_diags_free(&diags);
    return 0;
}
