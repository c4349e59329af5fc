/*
 * test_sigv4.c - unit tests of SigV4 signing (worker/sigv4.c).
 *
 * sigv4.aws_suite_all_cases runs every case of the AWS signing test suite
 * (aws-c-auth's v4 folder, found in $TG_SHARED_DATA/sigv4/v4): it parses
 * request.txt, reads the flags and credentials in context.json, signs, and
 * compares the canonical request, string to sign, signature and
 * Authorization line byte for byte with the suite's files. The named tests
 * pin what tollgate relies on beyond the suite: Bedrock's twice-encoded model
 * path, a JSON POST and a session token (expected values from botocore's
 * SigV4Auth), query canonicalization, path normalization and overflow.
 */
#include <criterion/criterion.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_json.h"
#include "tg_sigv4.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUITE_DEFAULT_DATA "../shared/data"
#define SUITE_SUBDIR       "/sigv4/v4"
#define SUITE_CASES        38
#define SUITE_MAX_CASES    64
#define CASE_MAX_HEADERS   16
#define PATH_MAX_LEN       1024

/* The suite's signing inputs, shared by the named tests. */
#define AKID       "AKIDEXAMPLE"
#define SECRET     "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define REGION     "us-east-1"
#define SUITE_TIME ((time_t)1440938160) /* 2015-08-30T12:36:00Z */
#define TOKEN                          \
    "6e86291e8372ff2a2260956d9b8aae1d" \
    "763fbf315fa00fa31553b73ebf194267"

#define BEDROCK_HOST "bedrock-runtime.us-east-1.amazonaws.com"
#define BEDROCK_PATH "/model/anthropic.claude-v1%3A0/converse"
#define BEDROCK_BODY \
    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}]}"
/* sha256sum of BEDROCK_BODY */
#define BEDROCK_BODY_HASH \
    "7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54"

/* One case of the suite, parsed; strings live in the case's arena. */
struct suite_case {
    const char *name;
    char *method, *path, *query;
    struct tg_sigv4_header headers[CASE_MAX_HEADERS];
    size_t n_headers;
    const char *body;
    size_t body_len;
    bool is_normalized, is_body_signed, is_token_omitted;
    char *akid, *secret, *token, *region, *service, *timestamp;
};

/* Reads a whole file, NUL-terminated; NULL when it cannot. Free it. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1))) {
        *len = fread(buf, 1, (size_t)size, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

static void suite_dir(char *out, size_t cap)
{
    const char *data = getenv("TG_SHARED_DATA");

    snprintf(out, cap, "%s" SUITE_SUBDIR, data ? data : SUITE_DEFAULT_DATA);
}

/* A file of a case, read whole; the test fails when it is missing. */
static char *read_case_file(const char *dir, const char *name, const char *file,
                            size_t *len)
{
    char path[PATH_MAX_LEN];
    char *text;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
    text = read_file(path, len);
    cr_expect_not_null(text, "%s: cannot read %s", name, path);
    return text;
}

/* Cuts the next line off *cursor (the '\n' becomes a NUL). NULL at the end
 * of the text. */
static char *next_line(char **cursor)
{
    char *line = *cursor;
    char *nl;

    if (line == NULL || *line == '\0')
        return NULL;
    nl = strchr(line, '\n');
    *cursor = nl ? nl + 1 : line + strlen(line);
    if (nl)
        *nl = '\0';
    return line;
}

/* "METHOD target HTTP/1.1": the target may hold spaces (get-space-*). */
static bool parse_request_line(char *line, struct suite_case *c)
{
    char *sp = strchr(line, ' ');
    char *last = strrchr(line, ' ');
    char *q;

    if (sp == NULL || last == sp)
        return false;
    *sp = '\0';
    *last = '\0';
    c->method = line;
    c->path = sp + 1;
    q = strchr(c->path, '?');
    c->query = NULL;
    if (q) {
        *q = '\0';
        c->query = q + 1;
    }
    return true;
}

/* A header line "Name:value", or a continuation line (leading white space)
 * of the previous header, kept with its line break for the signer to fold
 * (get-header-value-multiline). */
static bool parse_header_line(char *line, struct suite_case *c,
                              struct tg_arena *arena)
{
    char *colon;

    if (line[0] == ' ' || line[0] == '\t') {
        struct tg_sigv4_header *prev;

        if (c->n_headers == 0)
            return false;
        prev = &c->headers[c->n_headers - 1];
        prev->value = tg_arena_printf(arena, "%s\n%s", prev->value, line);
        return prev->value != NULL;
    }
    colon = strchr(line, ':');
    if (colon == NULL || c->n_headers == CASE_MAX_HEADERS)
        return false;
    *colon = '\0';
    c->headers[c->n_headers++] = (struct tg_sigv4_header){line, colon + 1};
    return true;
}

/* Parses request.txt in place: request line, headers, blank line, body
 * (the rest of the file, byte for byte). */
static bool parse_request(char *text, size_t len, struct suite_case *c,
                          struct tg_arena *arena)
{
    char *cursor = text;
    char *line = next_line(&cursor);

    if (line == NULL || !parse_request_line(line, c))
        return false;
    while ((line = next_line(&cursor)) != NULL && *line != '\0') {
        if (!parse_header_line(line, c, arena))
            return false;
    }
    c->body = cursor;
    c->body_len = len - (size_t)(cursor - text);
    return true;
}

static bool json_bool_or(const struct tg_json *j, const char *key, bool def)
{
    int i = tg_json_get(j, 0, key);
    bool v = def;

    if (i >= 0)
        cr_expect_eq(tg_json_bool(j, i, &v), TG_OK, "%s is not a boolean", key);
    return v;
}

/* The string member `key` of object `obj`, decoded; NULL when absent. */
static char *json_str(const struct tg_json *j, int obj, const char *key,
                      struct tg_arena *arena)
{
    int i = tg_json_get(j, obj, key);
    char *s = NULL;
    size_t n;

    if (i < 0 || tg_json_str(j, i, arena, &s, &n) != TG_OK)
        return NULL;
    return s;
}

static bool parse_context(const char *text, size_t len, struct suite_case *c,
                          struct tg_arena *arena)
{
    struct tg_json j;
    struct tg_json_error err = {0, NULL};
    int creds;

    if (tg_json_parse(&j, text, len, arena, &err) != TG_OK)
        return false;
    creds = tg_json_get(&j, 0, "credentials");
    c->is_normalized = json_bool_or(&j, "normalize", true);
    c->is_body_signed = json_bool_or(&j, "sign_body", false);
    c->is_token_omitted = json_bool_or(&j, "omit_session_token", false);
    c->akid = json_str(&j, creds, "access_key_id", arena);
    c->secret = json_str(&j, creds, "secret_access_key", arena);
    c->token = json_str(&j, creds, "token", arena);
    c->region = json_str(&j, 0, "region", arena);
    c->service = json_str(&j, 0, "service", arena);
    c->timestamp = json_str(&j, 0, "timestamp", arena);
    return creds >= 0 && c->akid && c->secret && c->region && c->service &&
           c->timestamp;
}

/* "2015-08-30T12:36:00Z" as a time_t; -1 when malformed. */
static time_t parse_timestamp(const char *s)
{
    struct tm tm;
    char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

    if (end == NULL || *end != '\0')
        return (time_t)-1;
    return timegm(&tm);
}

/* sign_body: the caller adds x-amz-content-sha256 as an ordinary header,
 * whose value is the payload hash. */
static bool add_content_sha256(struct suite_case *c, struct tg_arena *arena)
{
    unsigned char digest[32];
    unsigned int n = 0;
    char *hex = tg_arena_alloc(arena, 65);

    if (hex == NULL || c->n_headers == CASE_MAX_HEADERS ||
        !EVP_Digest(c->body, c->body_len, digest, &n, EVP_sha256(), NULL))
        return false;
    for (unsigned int i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);
    c->headers[c->n_headers++] =
        (struct tg_sigv4_header){"x-amz-content-sha256", hex};
    return true;
}

/* The value of the line "<prefix>value\n" in a signed request, in `out`. */
static bool find_line(const char *text, const char *prefix, char *out,
                      size_t cap)
{
    size_t n = strlen(prefix);
    const char *p = text;

    while (p && strncmp(p, prefix, n) != 0) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (p == NULL)
        return false;
    p += n;
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\n"), p);
    return true;
}

/* Compares got with the whole of file `file`, byte for byte. */
static void expect_file(const char *dir, const struct suite_case *c,
                        const char *file, const char *got)
{
    size_t len = 0;
    char *want = read_case_file(dir, c->name, file, &len);

    if (want == NULL)
        return;
    cr_expect(strlen(want) == len && strcmp(got, want) == 0,
              "%s: %s differs\n--- got:\n%s\n--- want:\n%s", c->name, file, got,
              want);
    free(want);
}

/* The headers the signed request adds match what the signer produced. */
static void expect_signed_request(const char *dir, const struct suite_case *c,
                                  const struct tg_sigv4_result *out)
{
    size_t len = 0;
    char *want =
        read_case_file(dir, c->name, "header-signed-request.txt", &len);
    char line[TG_SIGV4_MAX_TEXT];

    if (want == NULL)
        return;
    cr_expect(find_line(want, "Authorization:", line, sizeof(line)),
              "%s: no Authorization line", c->name);
    cr_expect_str_eq(out->authorization, line, "%s: Authorization is %s",
                     c->name, out->authorization);
    cr_expect(find_line(want, "X-Amz-Date:", line, sizeof(line)),
              "%s: no X-Amz-Date line", c->name);
    cr_expect_str_eq(out->amz_date, line, "%s: X-Amz-Date", c->name);
    if (c->is_body_signed) {
        cr_expect(
            find_line(want, "x-amz-content-sha256:", line, sizeof(line)) &&
                strcmp(line, out->payload_hash) == 0,
            "%s: x-amz-content-sha256 is not %s", c->name, out->payload_hash);
    }
    free(want);
}

/* Signs a parsed case and compares every header-signing file. */
static void sign_and_compare(const char *dir, struct suite_case *c)
{
    struct tg_sigv4_request req = {c->method,   c->path,         c->query,
                                   c->headers,  c->n_headers,    c->body,
                                   c->body_len, c->is_normalized};
    /* omit_session_token: the token is added after signing, unsigned. */
    struct tg_sigv4_credentials cred = {c->akid, c->secret,
                                        c->is_token_omitted ? NULL : c->token,
                                        c->region, c->service};
    struct tg_sigv4_result out;
    time_t when = parse_timestamp(c->timestamp);

    cr_expect_neq(when, (time_t)-1, "%s: bad timestamp", c->name);
    cr_expect_eq(tg_sigv4_sign(&req, &cred, when, &out), 0,
                 "%s: signing failed", c->name);
    expect_file(dir, c, "header-canonical-request.txt", out.canonical_request);
    expect_file(dir, c, "header-string-to-sign.txt", out.string_to_sign);
    expect_file(dir, c, "header-signature.txt", out.signature);
    expect_signed_request(dir, c, &out);
}

static void run_case(const char *dir, const char *name)
{
    struct tg_arena arena;
    struct suite_case c = {.name = name};
    size_t req_len = 0, ctx_len = 0;
    char *req_text = read_case_file(dir, name, "request.txt", &req_len);
    char *ctx_text = read_case_file(dir, name, "context.json", &ctx_len);

    tg_arena_init(&arena, 4096);
    if (req_text && ctx_text) {
        bool ok = parse_request(req_text, req_len, &c, &arena) &&
                  parse_context(ctx_text, ctx_len, &c, &arena) &&
                  (!c.is_body_signed || add_content_sha256(&c, &arena));

        cr_expect(ok, "%s: cannot parse the case", name);
        if (ok)
            sign_and_compare(dir, &c);
    }
    tg_arena_free(&arena);
    free(req_text);
    free(ctx_text);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case folders of the suite, sorted; fails the test when the suite is
 * not there (a missing suite must not pass as zero cases). */
static size_t list_cases(const char *dir, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    cr_assert_not_null(d,
                       "the SigV4 suite is missing: %s (set "
                       "TG_SHARED_DATA to the shared data folder)",
                       dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        cr_assert_lt(n, cap, "more than %zu cases in %s", cap, dir);
        names[n] = strdup(e->d_name);
        cr_assert_not_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), compare_strings);
    return n;
}

Test(sigv4, aws_suite_all_cases)
{
    char dir[PATH_MAX_LEN];
    char *names[SUITE_MAX_CASES];
    size_t n;

    suite_dir(dir, sizeof(dir));
    n = list_cases(dir, names, SUITE_MAX_CASES);
    for (size_t i = 0; i < n; i++) {
        run_case(dir, names[i]);
        free(names[i]);
    }
    cr_assert_eq(n, SUITE_CASES, "%zu cases in %s, want %d", n, dir,
                 SUITE_CASES);
}

/* Signs a request with the suite's credentials and time. */
static int sign(const char *method, const char *path, const char *query,
                const struct tg_sigv4_header *headers, size_t n_headers,
                const char *body, const char *service, const char *token,
                struct tg_sigv4_result *out)
{
    struct tg_sigv4_request req = {method,    path, query,        headers,
                                   n_headers, body, strlen(body), true};
    struct tg_sigv4_credentials cred = {AKID, SECRET, token, REGION, service};

    return tg_sigv4_sign(&req, &cred, SUITE_TIME, out);
}

static const struct tg_sigv4_header bedrock_headers[] = {
    {"Host", BEDROCK_HOST},
    {"Content-Type", "application/json"},
};

static void sign_bedrock(const char *token, struct tg_sigv4_result *out)
{
    cr_assert_eq(sign("POST", BEDROCK_PATH, NULL, bedrock_headers,
                      TG_ARRAY_LEN(bedrock_headers), BEDROCK_BODY, "bedrock",
                      token, out),
                 0);
}

/* Line `k` (0 based) of a canonical request, in `buf`. */
static const char *line_of(const char *text, int k, char *buf, size_t cap)
{
    for (; k > 0 && text; k--) {
        text = strchr(text, '\n');
        text = text ? text + 1 : NULL;
    }
    cr_assert_not_null(text);
    snprintf(buf, cap, "%.*s", (int)strcspn(text, "\n"), text);
    return buf;
}

Test(sigv4, bedrock_model_path_is_encoded_twice)
{
    struct tg_sigv4_result out;
    char line[256];

    sign_bedrock(NULL, &out);
    cr_assert_str_eq(line_of(out.canonical_request, 1, line, sizeof(line)),
                     "/model/anthropic.claude-v1%253A0/converse");
    /* botocore's SigV4Auth on the same request gives this header. */
    cr_assert_str_eq(out.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                     "us-east-1/bedrock/aws4_request, SignedHeaders="
                     "content-type;host;x-amz-date, Signature="
                     "5dd9067481c9d82216c68bd56735516db9f31cb198d3ad036d48"
                     "cf35d4cf17f4");
}

Test(sigv4, post_json_body_is_hashed_into_canonical_request)
{
    struct tg_sigv4_result out;

    sign_bedrock(NULL, &out);
    cr_assert_str_eq(out.amz_date, "20150830T123600Z");
    cr_assert_str_eq(out.payload_hash, BEDROCK_BODY_HASH);
    cr_assert_str_eq(out.canonical_request,
                     "POST\n"
                     "/model/anthropic.claude-v1%253A0/converse\n"
                     "\n"
                     "content-type:application/json\n"
                     "host:" BEDROCK_HOST "\n"
                     "x-amz-date:20150830T123600Z\n"
                     "\n"
                     "content-type;host;x-amz-date\n" BEDROCK_BODY_HASH);
    /* botocore's SigV4Auth.string_to_sign for the same request. */
    cr_assert_str_eq(out.string_to_sign,
                     "AWS4-HMAC-SHA256\n20150830T123600Z\n"
                     "20150830/us-east-1/bedrock/aws4_request\n"
                     "59bb604d86750a0ae1062a5f4c41d40e073ae7e04fad87c66f14"
                     "dc2ca2882733");
}

Test(sigv4, session_token_is_signed_when_given)
{
    struct tg_sigv4_result out, without;
    char line[256];

    sign_bedrock(TOKEN, &out);
    cr_assert_str_eq(line_of(out.canonical_request, 6, line, sizeof(line)),
                     "x-amz-security-token:" TOKEN);
    /* botocore's SigV4Auth with the same token gives this header. */
    cr_assert_str_eq(out.authorization,
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                     "us-east-1/bedrock/aws4_request, SignedHeaders="
                     "content-type;host;x-amz-date;x-amz-security-token, "
                     "Signature=fca614d75921e98aa5124cb7ed77e5c7e82c145c9d"
                     "11ac1e0713348647b68e3b");
    /* An empty token is no token. */
    sign_bedrock("", &out);
    sign_bedrock(NULL, &without);
    cr_assert_str_eq(out.authorization, without.authorization);
}

Test(sigv4, query_is_decoded_encoded_and_sorted)
{
    static const struct tg_sigv4_header host[] = {{"Host", "example.com"}};
    struct tg_sigv4_result out;
    char line[256];

    cr_assert_eq(sign("GET", "/",
                      "b=2&a+b=1%2B&a&c=x%3Dy&&a-b=3&a=2&a=1&%7e=%41&d=%zz%4",
                      host, 1, "", "service", NULL, &out),
                 0);
    cr_assert_str_eq(line_of(out.canonical_request, 2, line, sizeof(line)),
                     "a=&a=1&a=2&a%2Bb=1%2B&a-b=3&b=2&c=x%3Dy&d=%25zz%254&"
                     "~=A");
}

Test(sigv4, path_normalization_edge_cases)
{
    static const struct tg_sigv4_header host[] = {{"Host", "example.com"}};
    static const char *const cases[][2] = {
        {"", "/"},
        {"/..", "/"},
        {"/a/b/../c/./d/", "/a/c/d/"},
        {"/a/.", "/a/"},
        {"/a/b/..", "/a/"},
        {"a//b", "/a/b"},
        {"/a%2Fb c", "/a%252Fb%20c"},
    };
    struct tg_sigv4_result out;
    char line[256];

    for (size_t i = 0; i < TG_ARRAY_LEN(cases); i++) {
        cr_assert_eq(
            sign("GET", cases[i][0], NULL, host, 1, "", "service", NULL, &out),
            0);
        cr_expect_str_eq(line_of(out.canonical_request, 1, line, sizeof(line)),
                         cases[i][1], "path \"%s\"", cases[i][0]);
    }
}

Test(sigv4, oversized_request_fails_and_leaves_nothing_to_send)
{
    static char big[TG_SIGV4_MAX_TEXT + 1];
    struct tg_sigv4_header headers[] = {{"Host", "example.com"},
                                        {"X-Big", big}};
    struct tg_sigv4_result out;

    memset(big, 'x', sizeof(big) - 1);
    cr_assert_eq(sign("GET", "/", NULL, headers, TG_ARRAY_LEN(headers), "",
                      "service", NULL, &out),
                 -1);
    cr_assert_str_eq(out.authorization, "");
    cr_assert_str_eq(out.signature, "");
}
