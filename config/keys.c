/*
 * keys.c - the one form in which tollgate stores and compares API keys.
 *
 * A key is kept as "sha256:" + the lowercase hex SHA-256 of its bytes, so
 * that neither the config nor the shared segment ever holds a usable key.
 * `tollgate hash-key`, the loader and authentication all call this one
 * function, so the forms cannot drift apart.
 */
#include "tg_config.h"

#include <openssl/evp.h>
#include <string.h>

/*
 * On the (out of memory) failure of the digest, `out` is "": never a
 * stored hash, since the loader refuses such a key, so it matches nothing.
 */
void tg_cfg_hash_key(const char *key, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    unsigned int i;

    /* Fetched once per process: EVP_sha256() looks the algorithm up
     * again on every digest, a few percent of a request's time. The
     * context is kept too: EVP_Digest allocates and frees one per call,
     * while a context initialised again with the same digest reuses its
     * state. */
    static EVP_MD *sha256;
    static EVP_MD_CTX *ctx;

    if (sha256 == NULL)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (ctx == NULL)
        ctx = EVP_MD_CTX_new();
    if (sha256 == NULL || ctx == NULL ||
        !EVP_DigestInit_ex2(ctx, sha256, NULL) ||
        !EVP_DigestUpdate(ctx, key, len) ||
        !EVP_DigestFinal_ex(ctx, md, &md_len) ||
        md_len * 2 != TG_SHA256_HEX_LEN) {
        out[0] = '\0';
        return;
    }
    memcpy(out, "sha256:", 7);
    for (i = 0; i < md_len; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 0x0F];
    }
    out[TG_KEY_HASH_LEN] = '\0';
}
