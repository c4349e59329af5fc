/*
 * tg_sigv4.h - AWS Signature Version 4 (header signing), with OpenSSL.
 *
 * Signs an HTTP request the way AWS services (Bedrock among them) check it:
 * canonical request -> string to sign -> HMAC-SHA256 with the key derived
 * from the secret, date, region and service. The caller sends the request
 * with the headers the result gives (X-Amz-Date, X-Amz-Security-Token when
 * there is a session token, Authorization) added to those it signed.
 * Verified against every case of the AWS signing test suite.
 */
#ifndef TG_SIGV4_H
#define TG_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct tg_sigv4_header {
    const char *name; /* any case; signed lower-cased */
    const char *value;
};

struct tg_sigv4_request {
    const char *method;
    /* The path exactly as it goes on the wire (already URI-encoded); the
     * canonical URI encodes each segment once more, as AWS does for every
     * service but S3. */
    const char *path;
    const char *query; /* raw query string without '?', or NULL */
    /* Headers to sign: must include Host. X-Amz-Date and
     * X-Amz-Security-Token are added by the signer, not given here. */
    const struct tg_sigv4_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    bool is_normalized; /* remove dot segments and duplicate slashes from
                           the path (true for every service but S3) */
};

struct tg_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" when none */
    const char *region;
    const char *service; /* "bedrock" for Bedrock runtime */
};

#define TG_SIGV4_AMZ_DATE_LEN 16 /* 20150830T123600Z */
#define TG_SIGV4_MAX_TEXT     8192

struct tg_sigv4_result {
    char amz_date[TG_SIGV4_AMZ_DATE_LEN + 1];
    char payload_hash[65]; /* hex SHA-256 of the body */
    char signature[65];    /* hex */
    char authorization[TG_SIGV4_MAX_TEXT];
    /* For tests and debugging: */
    char canonical_request[TG_SIGV4_MAX_TEXT];
    char string_to_sign[1024];
};

/*
 * Signs req at time `when` (UTC). Returns 0 and fills out, or -1 when the
 * request does not fit the result's buffers or OpenSSL fails.
 */
int tg_sigv4_sign(const struct tg_sigv4_request *req,
                  const struct tg_sigv4_credentials *cred, time_t when,
                  struct tg_sigv4_result *out);

#endif
