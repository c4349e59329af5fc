/*
 * test_upstream.c - base_url splitting and the Host header, which the
 * HTTP client sends and the SigV4 signer signs: both must agree.
 */
#include <criterion/criterion.h>

#include "tg.h"
#include "tg_upstream.h"

static void expect_split(const char *url, const char *host, int port,
                         int is_tls, const char *path, const char *header)
{
    char h[256], out[300];
    const char *p;
    int got_port, got_tls;

    cr_assert_eq(tg_up_split_url(url, h, sizeof(h), &got_port, &got_tls, &p),
                 TG_OK, "%s", url);
    cr_assert_str_eq(h, host, "%s", url);
    cr_assert_eq(got_port, port, "%s", url);
    cr_assert_eq(got_tls, is_tls, "%s", url);
    cr_assert_str_eq(p, path, "%s", url);
    tg_up_host_header(h, got_port, got_tls, out, sizeof(out));
    cr_assert_str_eq(out, header, "%s", url);
}

Test(upstream, splits_base_urls_and_formats_host)
{
    expect_split("https://api.openai.com/v1", "api.openai.com", 443, 1, "/v1",
                 "api.openai.com");
    expect_split("http://127.0.0.1:11434/v1", "127.0.0.1", 11434, 0, "/v1",
                 "127.0.0.1:11434");
    expect_split("https://bedrock-runtime.us-east-1.amazonaws.com",
                 "bedrock-runtime.us-east-1.amazonaws.com", 443, 1, "",
                 "bedrock-runtime.us-east-1.amazonaws.com");
    expect_split("http://example.com:80", "example.com", 80, 0, "",
                 "example.com");
    expect_split("https://example.com:8443/x/y", "example.com", 8443, 1, "/x/y",
                 "example.com:8443");
    expect_split("http://[::1]:8080/v1", "::1", 8080, 0, "/v1", "[::1]:8080");
    expect_split("https://[2001:db8::1]/v1", "2001:db8::1", 443, 1, "/v1",
                 "[2001:db8::1]");
}

Test(upstream, refuses_what_is_not_a_base_url)
{
    static const char *const bad[] = {
        "ftp://x",        "example.com", "http://",        "http://:80/",
        "http://[::1/v1", "http://x:0",  "http://x:70000", "https://x:abc",
    };
    char h[256];
    const char *p;
    int port, is_tls;
    size_t i;

    for (i = 0; i < TG_ARRAY_LEN(bad); i++)
        cr_assert_eq(tg_up_split_url(bad[i], h, sizeof(h), &port, &is_tls, &p),
                     TG_ERROR, "%s", bad[i]);
}
