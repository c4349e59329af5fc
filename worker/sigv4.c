/*
 * sigv4.c - AWS Signature Version 4 header signing, with OpenSSL.
 *
 * The canonical request is written straight into the result through a small
 * bounded writer (struct text) that remembers an overflow, so each step just
 * appends and the signer checks once at the end. Headers and query
 * parameters are sorted through fixed-size tables on the stack, so signing
 * never allocates; a request with more than SIGV4_MAX_HEADERS headers or
 * SIGV4_MAX_PARAMS query parameters is refused like one that overflows a
 * buffer. OpenSSL computes the SHA-256 digests and the HMAC chain that
 * derives the signing key from the secret, date, region and service.
 */
#include "tg.h"
#include "tg_sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_ALGORITHM  "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_KEY_PREFIX "AWS4" /* prepended to the secret to make the key */
#define SIGV4_DATE_LEN   8      /* yyyymmdd, the date part of the scope */
#define SIGV4_DIGEST_LEN 32
#define SIGV4_HEX_LEN    (2 * SIGV4_DIGEST_LEN)
/* Caller headers plus X-Amz-Date and X-Amz-Security-Token. */
#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_PARAMS  128
/* AWS secret keys are 40 characters; this leaves room for any future form. */
#define SIGV4_MAX_SECRET 256

/* A NUL-terminated string being built in a fixed buffer. */
struct text {
    char *buf;
    size_t cap;
    size_t len;
    bool is_full; /* something did not fit; the text is unusable */
};

/* One header to sign; `order` keeps duplicates in the order given. */
struct header_entry {
    const char *name;
    const char *value;
    size_t order;
};

/* One query parameter, name and value already canonically encoded. */
struct query_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

static void text_init(struct text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    t->is_full = false;
    buf[0] = '\0';
}

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->is_full || n >= t->cap - t->len) {
        t->is_full = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_add_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void text_add_char(struct text *t, char c)
{
    text_add(t, &c, 1);
}

/* Drops everything after the first n bytes. */
static void text_truncate(struct text *t, size_t n)
{
    t->len = n;
    t->buf[n] = '\0';
}

/* 0, or -1 when something did not fit; an overflowed text is emptied so
 * that no partial value can be sent by mistake. */
static int text_finish(struct text *t)
{
    if (!t->is_full)
        return 0;
    text_truncate(t, 0);
    return -1;
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

/* AWS's URI encoding: unreserved bytes as they are, every other byte
 * (including '%' and '/') as %XX with upper-case hex digits. */
static void add_uri_byte(struct text *t, unsigned char c)
{
    static const char digits[] = "0123456789ABCDEF";
    char esc[3] = {'%', digits[c >> 4], digits[c & 0x0f]};

    if (is_unreserved(c))
        text_add_char(t, (char)c);
    else
        text_add(t, esc, sizeof(esc));
}

static void add_uri_encoded(struct text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        add_uri_byte(t, (unsigned char)s[i]);
}

/* Decodes %XX escapes and encodes the result again, so that a parameter
 * has one canonical form however the client escaped it. A '%' not followed
 * by two hex digits stands for itself; '+' is a plus, not a space. */
static void add_uri_reencoded(struct text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;

        if (c == '%' && hi >= 0 && lo >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        add_uri_byte(t, c);
    }
}

/* Appends the path as it is, each segment encoded; empty becomes "/". */
static void add_path_as_is(struct text *t, const char *path)
{
    if (*path == '\0') {
        text_add_char(t, '/');
        return;
    }
    for (; *path; path++) {
        if (*path == '/')
            text_add_char(t, '/');
        else
            add_uri_byte(t, (unsigned char)*path);
    }
}

/*
 * Appends the path with dot segments removed (RFC 3986 5.2.4) and empty
 * segments dropped, each kept segment encoded. The output itself is the
 * stack of segments: ".." truncates it back to its last '/', which is
 * safe because an encoded segment never contains a '/'.
 */
static void add_path_normalized(struct text *t, const char *path)
{
    size_t base = t->len;
    bool is_dir = false; /* the last segment leaves a trailing slash */

    while (*path) {
        const char *end = strchr(path, '/');
        size_t n = end ? (size_t)(end - path) : strlen(path);

        is_dir = end != NULL || (n == 1 && path[0] == '.') ||
                 (n == 2 && path[0] == '.' && path[1] == '.');
        if (n == 2 && path[0] == '.' && path[1] == '.') {
            size_t cut = t->len;

            while (cut > base && t->buf[--cut] != '/')
                ;
            text_truncate(t, cut);
        } else if (n > 0 && !(n == 1 && path[0] == '.')) {
            text_add_char(t, '/');
            add_uri_encoded(t, path, n);
        }
        path += end ? n + 1 : n;
    }
    if (t->len == base || is_dir)
        text_add_char(t, '/');
}

static void add_canonical_uri(struct text *t, const char *path,
                              bool is_normalized)
{
    if (is_normalized)
        add_path_normalized(t, path);
    else
        add_path_as_is(t, path);
}

/* Byte order, a prefix first ("Param" before "Param-3"). */
static int compare_bytes(const char *a, size_t a_len, const char *b,
                         size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (c != 0 || a_len == b_len)
        return c;
    return a_len < b_len ? -1 : 1;
}

static int compare_params(const void *a, const void *b)
{
    const struct query_param *x = a, *y = b;
    int c = compare_bytes(x->name, x->name_len, y->name, y->name_len);

    return c != 0
               ? c
               : compare_bytes(x->value, x->value_len, y->value, y->value_len);
}

/* Encodes one "name[=value]" into `store` and records where each part is.
 * The pointers are taken once the part is written: `store` never moves. */
static void encode_param(struct text *store, const char *s, size_t n,
                         struct query_param *p)
{
    const char *eq = memchr(s, '=', n);
    size_t name_n = eq ? (size_t)(eq - s) : n;
    size_t start = store->len;

    add_uri_reencoded(store, s, name_n);
    p->name = store->buf + start;
    p->name_len = store->len - start;
    start = store->len;
    if (eq)
        add_uri_reencoded(store, eq + 1, n - name_n - 1);
    p->value = store->buf + start;
    p->value_len = store->len - start;
}

/*
 * Appends the canonical query: parameters re-encoded, sorted by name then
 * value, "name=value" joined with '&' ("name=" for a bare name). Empty
 * parameters ("a&&b") are dropped. -1 when a table or buffer is too small.
 */
static int add_canonical_query(struct text *t, const char *query)
{
    struct query_param params[SIGV4_MAX_PARAMS];
    char buf[TG_SIGV4_MAX_TEXT];
    struct text store;
    size_t n_params = 0;

    text_init(&store, buf, sizeof(buf));
    while (query != NULL && *query) {
        const char *amp = strchr(query, '&');
        size_t n = amp ? (size_t)(amp - query) : strlen(query);

        if (n > 0) {
            if (n_params == SIGV4_MAX_PARAMS)
                return -1;
            encode_param(&store, query, n, &params[n_params++]);
        }
        query += amp ? n + 1 : n;
    }
    if (store.is_full)
        return -1;
    qsort(params, n_params, sizeof(params[0]), compare_params);
    for (size_t i = 0; i < n_params; i++) {
        if (i > 0)
            text_add_char(t, '&');
        text_add(t, params[i].name, params[i].name_len);
        text_add_char(t, '=');
        text_add(t, params[i].value, params[i].value_len);
    }
    return 0;
}

/* Compares header names as their lower-cased bytes. */
static int compare_names(const char *a, const char *b)
{
    while (*a && to_lower(*a) == to_lower(*b)) {
        a++;
        b++;
    }
    return (unsigned char)to_lower(*a) - (unsigned char)to_lower(*b);
}

/* Equal names keep their order, so that duplicates are joined in the order
 * the caller gave them (qsort alone is not stable). */
static int compare_headers(const void *a, const void *b)
{
    const struct header_entry *x = a, *y = b;
    int c = compare_names(x->name, y->name);

    if (c != 0)
        return c;
    return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

static void add_lower(struct text *t, const char *s)
{
    for (; *s; s++)
        text_add_char(t, to_lower(*s));
}

/* Appends a header value trimmed, with each inner run of white space
 * (including the line breaks of a folded, multi-line value) made one
 * space. */
static void add_trimmed(struct text *t, const char *value)
{
    bool has_text = false;
    bool has_gap = false;

    for (; *value; value++) {
        if (is_space(*value)) {
            has_gap = has_text;
            continue;
        }
        if (has_gap)
            text_add_char(t, ' ');
        has_gap = false;
        has_text = true;
        text_add_char(t, *value);
    }
}

/* Collects the caller's headers and the signer's own into `entries`,
 * sorted. Returns how many, or -1 when they do not fit. */
static int collect_headers(const struct tg_sigv4_request *req,
                           const struct tg_sigv4_credentials *cred,
                           const char *amz_date, struct header_entry *entries)
{
    bool has_token = cred->session_token && *cred->session_token;
    size_t n = req->n_headers;

    if (n > SIGV4_MAX_HEADERS - 2)
        return -1;
    for (size_t i = 0; i < n; i++) {
        entries[i].name = req->headers[i].name;
        entries[i].value = req->headers[i].value;
        entries[i].order = i;
        if (entries[i].name == NULL || entries[i].value == NULL)
            return -1;
    }
    entries[n] = (struct header_entry){"x-amz-date", amz_date, n};
    n++;
    if (has_token) {
        entries[n] = (struct header_entry){"x-amz-security-token",
                                           cred->session_token, n};
        n++;
    }
    qsort(entries, n, sizeof(entries[0]), compare_headers);
    return (int)n;
}

/*
 * Appends the canonical headers ("name:value\n" per distinct name, values of
 * a repeated name joined with ',') to `t` and the signed-header list
 * ("a;b;c") to `names`.
 */
static void add_canonical_headers(struct text *t, struct text *names,
                                  const struct header_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool is_repeat =
            i > 0 && compare_names(entries[i - 1].name, entries[i].name) == 0;

        if (is_repeat) {
            text_add_char(t, ',');
        } else {
            if (i > 0) {
                text_add_char(t, '\n');
                text_add_char(names, ';');
            }
            add_lower(t, entries[i].name);
            add_lower(names, entries[i].name);
            text_add_char(t, ':');
        }
        add_trimmed(t, entries[i].value);
    }
    if (n > 0)
        text_add_char(t, '\n');
}

static int sha256_hex(const void *data, size_t n, char *hex)
{
    unsigned char digest[SIGV4_DIGEST_LEN];
    unsigned int digest_len = 0;

    if (!EVP_Digest(data ? data : "", n, digest, &digest_len, EVP_sha256(),
                    NULL) ||
        digest_len != SIGV4_DIGEST_LEN)
        return -1;
    hex_encode(digest, SIGV4_DIGEST_LEN, hex);
    return 0;
}

static int hmac_sha256(const void *key, size_t key_len, const char *data,
                       size_t data_len, unsigned char *out)
{
    unsigned int out_len = 0;

    if (key_len > INT_MAX ||
        HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data,
             data_len, out, &out_len) == NULL)
        return -1;
    return out_len == SIGV4_DIGEST_LEN ? 0 : -1;
}

/*
 * Derives the signing key (HMAC chain over "AWS4" + secret, date, region,
 * service, "aws4_request") and writes the hex HMAC of the string to sign.
 * Key material is wiped from the stack before returning.
 */
static int sign_string(const struct tg_sigv4_credentials *cred,
                       const char *date, const char *string_to_sign,
                       char *signature)
{
    const char *steps[] = {cred->region, cred->service, SIGV4_TERMINATOR,
                           string_to_sign};
    const size_t prefix_len = sizeof(SIGV4_KEY_PREFIX) - 1;
    size_t secret_len = strlen(cred->secret_access_key);
    char secret[sizeof(SIGV4_KEY_PREFIX) + SIGV4_MAX_SECRET];
    unsigned char key[SIGV4_DIGEST_LEN], next[SIGV4_DIGEST_LEN];
    int rc;

    if (secret_len > SIGV4_MAX_SECRET)
        return -1;
    memcpy(secret, SIGV4_KEY_PREFIX, prefix_len);
    memcpy(secret + prefix_len, cred->secret_access_key, secret_len);
    rc =
        hmac_sha256(secret, prefix_len + secret_len, date, SIGV4_DATE_LEN, key);
    for (size_t i = 0; rc == 0 && i < TG_ARRAY_LEN(steps); i++) {
        rc = hmac_sha256(key, sizeof(key), steps[i], strlen(steps[i]), next);
        memcpy(key, next, sizeof(key));
    }
    if (rc == 0)
        hex_encode(key, sizeof(key), signature);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(next, sizeof(next));
    return rc == 0 ? 0 : -1;
}

static int format_amz_date(time_t when, char *amz_date)
{
    struct tm tm;

    if (gmtime_r(&when, &tm) == NULL)
        return -1;
    return strftime(amz_date, TG_SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ",
                    &tm) == TG_SIGV4_AMZ_DATE_LEN
               ? 0
               : -1;
}

/* "yyyymmdd/region/service/aws4_request" */
static void add_scope(struct text *t, const struct tg_sigv4_result *out,
                      const struct tg_sigv4_credentials *cred)
{
    text_add(t, out->amz_date, SIGV4_DATE_LEN);
    text_add_char(t, '/');
    text_add_str(t, cred->region);
    text_add_char(t, '/');
    text_add_str(t, cred->service);
    text_add_char(t, '/');
    text_add_str(t, SIGV4_TERMINATOR);
}

/* Writes out->canonical_request and the signed-header list to `names`. */
static int build_canonical_request(const struct tg_sigv4_request *req,
                                   const struct tg_sigv4_credentials *cred,
                                   struct tg_sigv4_result *out,
                                   struct text *names)
{
    struct header_entry entries[SIGV4_MAX_HEADERS];
    struct text t;
    int n;

    text_init(&t, out->canonical_request, sizeof(out->canonical_request));
    text_add_str(&t, req->method);
    text_add_char(&t, '\n');
    add_canonical_uri(&t, req->path ? req->path : "", req->is_normalized);
    text_add_char(&t, '\n');
    if (add_canonical_query(&t, req->query) != 0)
        t.is_full = true;
    text_add_char(&t, '\n');
    n = collect_headers(req, cred, out->amz_date, entries);
    if (n < 0)
        t.is_full = true;
    else
        add_canonical_headers(&t, names, entries, (size_t)n);
    text_add_char(&t, '\n');
    text_add_str(&t, names->buf);
    text_add_char(&t, '\n');
    text_add_str(&t, out->payload_hash);
    return text_finish(&t) == 0 && text_finish(names) == 0 ? 0 : -1;
}

/* "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(creq)) */
static int build_string_to_sign(const struct tg_sigv4_credentials *cred,
                                struct tg_sigv4_result *out)
{
    char creq_hash[SIGV4_HEX_LEN + 1];
    struct text t;

    if (sha256_hex(out->canonical_request, strlen(out->canonical_request),
                   creq_hash) != 0)
        return -1;
    text_init(&t, out->string_to_sign, sizeof(out->string_to_sign));
    text_add_str(&t, SIGV4_ALGORITHM "\n");
    text_add_str(&t, out->amz_date);
    text_add_char(&t, '\n');
    add_scope(&t, out, cred);
    text_add_char(&t, '\n');
    text_add_str(&t, creq_hash);
    return text_finish(&t);
}

/* "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=" */
static int build_authorization(const struct tg_sigv4_credentials *cred,
                               const char *signed_headers,
                               struct tg_sigv4_result *out)
{
    struct text t;

    text_init(&t, out->authorization, sizeof(out->authorization));
    text_add_str(&t, SIGV4_ALGORITHM " Credential=");
    text_add_str(&t, cred->access_key_id);
    text_add_char(&t, '/');
    add_scope(&t, out, cred);
    text_add_str(&t, ", SignedHeaders=");
    text_add_str(&t, signed_headers);
    text_add_str(&t, ", Signature=");
    text_add_str(&t, out->signature);
    return text_finish(&t);
}

static bool is_signable(const struct tg_sigv4_request *req,
                        const struct tg_sigv4_credentials *cred)
{
    return req && cred && req->method &&
           (req->headers || req->n_headers == 0) &&
           (req->body || req->body_len == 0) && cred->access_key_id &&
           cred->secret_access_key && cred->region && cred->service;
}

static void clear_result(struct tg_sigv4_result *out)
{
    out->amz_date[0] = '\0';
    out->payload_hash[0] = '\0';
    out->signature[0] = '\0';
    out->authorization[0] = '\0';
    out->canonical_request[0] = '\0';
    out->string_to_sign[0] = '\0';
}

/* The steps of signing, in order; each reads what the ones before wrote
 * into `out`. */
static int sign_into(const struct tg_sigv4_request *req,
                     const struct tg_sigv4_credentials *cred, time_t when,
                     struct tg_sigv4_result *out)
{
    char names_buf[TG_SIGV4_MAX_TEXT];
    struct text names; /* the signed-header list, "host;x-amz-date" */

    text_init(&names, names_buf, sizeof(names_buf));
    if (format_amz_date(when, out->amz_date) != 0)
        return -1;
    if (sha256_hex(req->body, req->body_len, out->payload_hash) != 0)
        return -1;
    if (build_canonical_request(req, cred, out, &names) != 0)
        return -1;
    if (build_string_to_sign(cred, out) != 0)
        return -1;
    if (sign_string(cred, out->amz_date, out->string_to_sign, out->signature) !=
        0)
        return -1;
    return build_authorization(cred, names.buf, out);
}

/* On failure every text in `out` is left empty, so that nothing half built
 * can be sent. */
int tg_sigv4_sign(const struct tg_sigv4_request *req,
                  const struct tg_sigv4_credentials *cred, time_t when,
                  struct tg_sigv4_result *out)
{
    if (out == NULL)
        return -1;
    clear_result(out);
    if (!is_signable(req, cred) || sign_into(req, cred, when, out) != 0) {
        clear_result(out);
        return -1;
    }
    return 0;
}
