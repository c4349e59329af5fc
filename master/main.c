/*
 * main.c - the command line (PRODUCT.md section 2).
 *
 *   tollgate -c FILE        run (default ./config/tollgate.yaml)
 *   tollgate -c FILE -t     validate FILE: exit 0, or print every error, exit 1
 *   tollgate hash-key KEY   print the value for a team's keys list
 *                           (KEY "-" reads the key from standard input)
 *   tollgate --version
 */
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_config.h"
#include "tg_ev_alloc.h"
#include "tg_log.h"
#include "tg_master.h"

#define DEFAULT_CONFIG "./config/tollgate.yaml"
#define MAX_KEY_LEN    4096

static int usage(FILE *out, int status)
{
    fprintf(out,
            "usage: tollgate [-c FILE] [-t]   run (or with -t, validate) "
            "the configuration\n"
            "       tollgate hash-key KEY     print the value for a team's "
            "keys list (KEY - reads stdin)\n"
            "       tollgate --version\n");
    return status;
}

static int hash_key(const char *arg)
{
    char key[MAX_KEY_LEN + 2], hash[TG_KEY_HASH_LEN + 1];
    size_t n;

    if (strcmp(arg, "-") == 0) {
        if (fgets(key, sizeof(key), stdin) == NULL) {
            fprintf(stderr, "tollgate: no key on standard input\n");
            return 1;
        }
        key[strcspn(key, "\r\n")] = '\0';
        arg = key;
    }
    n = strlen(arg);
    if (n == 0 || n > MAX_KEY_LEN) {
        fprintf(stderr, "tollgate: a key must be 1 to %d bytes\n", MAX_KEY_LEN);
        return 1;
    }
    tg_cfg_hash_key(arg, n, hash);
    printf("%s\n", hash);
    return 0;
}

/* -t prints bare diagnostics; a running gateway logs them. */
static void print_diags(const struct tg_cfg_diags *d, bool is_test_only)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        if (is_test_only)
            fprintf(stderr, "%s\n", d->items[i].text);
        else
            tg_log(d->items[i].is_error ? TG_LOG_ERROR : TG_LOG_WARN, "%s",
                   d->items[i].text);
    }
}

static int run(const char *path, bool is_test_only)
{
    struct tg_cfg_diags diags = {0};
    struct tg_config *cfg = tg_cfg_load(path, &diags);

    print_diags(&diags, is_test_only);
    if (cfg == NULL) {
        fprintf(stderr, "tollgate: %s: %zu error%s\n", path, diags.n_errors,
                diags.n_errors == 1 ? "" : "s");
        tg_cfg_diags_free(&diags);
        return 1;
    }
    tg_cfg_diags_free(&diags);
    if (is_test_only) {
        printf("tollgate: %s: configuration is valid\n", path);
        tg_cfg_free(cfg);
        return 0;
    }
    return tg_master_run(cfg, path);
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    bool is_test_only = false;
    int i, status;

    tg_ev_alloc_install();
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("tollgate %s\n", TG_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "hash-key") == 0)
        return argc == 3 ? hash_key(argv[2]) : usage(stderr, 1);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-t") == 0)
            is_test_only = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return usage(stdout, 0);
        else
            return usage(stderr, 1);
    }
    status = run(path, is_test_only);
    tg_ev_alloc_drain();
    return status;
}
