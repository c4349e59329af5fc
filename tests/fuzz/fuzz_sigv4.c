/*
 * fuzz_sigv4.c - libFuzzer target for SigV4 signing (worker/sigv4.c).
 *
 * The input is split at NUL bytes into path, query, one header value, body
 * and session token; its first byte chooses path normalization. Signing must
 * either fail with every text empty, or succeed with a well-formed result:
 * a canonical URI and query made only of encoded characters, no dot
 * segments in a normalized path, a query whose canonical form is its own
 * canonical form, and the same result when signed twice.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include "tg_sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS    5
#define FUZZ_TIME ((time_t)1440938160)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool is_encoded_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~' || c == '%';
}

/* Line k (0 based) of text, as a NUL-terminated copy in buf. */
static void copy_line(const char *text, int k, char *buf, size_t cap)
{
    size_t n;

    for (; k > 0; k--) {
        text = strchr(text, '\n');
        check(text != NULL);
        text++;
    }
    n = strcspn(text, "\n");
    check(n < cap);
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* A path given without its leading '/' keeps it out only when it is not
 * normalized: the signer does not invent a path the caller did not send. */
static void check_uri(const char *uri, bool is_normalized)
{
    check(uri[0] == '/' || !is_normalized);
    for (const char *p = uri; *p; p++)
        check(*p == '/' || is_encoded_char(*p));
    if (is_normalized) {
        check(strstr(uri, "//") == NULL);
        check(strstr(uri, "/./") == NULL && strstr(uri, "/../") == NULL);
    }
}

static void check_query(const char *query)
{
    for (const char *p = query; *p; p++)
        check(*p == '=' || *p == '&' || is_encoded_char(*p));
}

static int sign(const char *path, const char *query, const char *value,
                const char *body, const char *token, bool is_normalized,
                struct tg_sigv4_result *out)
{
    struct tg_sigv4_header headers[] = {{"Host", "example.com"},
                                        {"X-Fuzz", value}};
    struct tg_sigv4_request req = {"POST", path, query,        headers,
                                   2,      body, strlen(body), is_normalized};
    struct tg_sigv4_credentials cred = {"AKIDEXAMPLE", "secret", token,
                                        "us-east-1", "service"};

    return tg_sigv4_sign(&req, &cred, FUZZ_TIME, out);
}

static void check_result(const char *f[FIELDS], bool is_normalized,
                         const struct tg_sigv4_result *out)
{
    static struct tg_sigv4_result again;
    static char line[TG_SIGV4_MAX_TEXT], requery[TG_SIGV4_MAX_TEXT];
    size_t n = strlen(out->authorization);

    check(strlen(out->signature) == 64);
    check(n > 64 && strcmp(out->authorization + n - 64, out->signature) == 0);
    copy_line(out->canonical_request, 1, line, sizeof(line));
    check_uri(line, is_normalized);
    copy_line(out->canonical_request, 2, line, sizeof(line));
    check_query(line);
    check(sign(f[0], f[1], f[2], f[3], f[4], is_normalized, &again) == 0);
    check(strcmp(again.canonical_request, out->canonical_request) == 0 &&
          strcmp(again.authorization, out->authorization) == 0);
    /* The canonical query is a fixed point of canonicalization. */
    check(sign(f[0], line, f[2], f[3], f[4], is_normalized, &again) == 0);
    copy_line(again.canonical_request, 2, requery, sizeof(requery));
    check(strcmp(requery, line) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tg_sigv4_result out;
    const char *f[FIELDS];
    char *text;
    bool is_normalized;
    size_t at = 1;
    int rc;

    if (size < 1)
        return 0;
    is_normalized = data[0] & 1;
    text = malloc(size + FIELDS);
    check(text != NULL);
    memcpy(text, data, size);
    memset(text + size, 0, FIELDS);
    for (int i = 0; i < FIELDS; i++) {
        f[i] = text + at;
        at += strlen(text + at) + 1;
        if (at > size)
            at = size;
    }
    rc = sign(f[0], f[1], f[2], f[3], f[4], is_normalized, &out);
    check(rc == 0 || rc == -1);
    if (rc == 0)
        check_result(f, is_normalized, &out);
    else
        check(out.authorization[0] == '\0' && out.signature[0] == '\0');
    free(text);
    return 0;
}
