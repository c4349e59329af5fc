/*
 * test_evutil_strcasecmp.c - unit tests of the evutil_ascii_strcasecmp of
 * worker/evutil_strcasecmp.c: its result is libevent's for equal, folded,
 * shorter, longer and non-ASCII names, and evhttp's header lookups bind to
 * it.
 */
#include <criterion/criterion.h>

#include "tg_http.h"

#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* libevent 2.1's definition, the reference: chars compared after folding
 * A-Z. */
static int reference(const char *s1, const char *s2)
{
    char c1, c2;

    for (;;) {
        c1 = *s1 >= 'A' && *s1 <= 'Z' ? (char)(*s1 + 32) : *s1;
        c2 = *s2 >= 'A' && *s2 <= 'Z' ? (char)(*s2 + 32) : *s2;
        s1++;
        s2++;
        if (c1 < c2)
            return -1;
        if (c1 > c2)
            return 1;
        if (c1 == 0)
            return 0;
    }
}

Test(evutil_strcasecmp, results_are_libevents)
{
    static const char *const names[] = {
        "",
        "a",
        "A",
        "Content-Length",
        "content-length",
        "CONTENT-LENGTH",
        "Content-Type",
        "Content",
        "x-request-id",
        "X-Request-ID",
        "[",
        "{",
        "@",
        "`",
        "caf\xc3\xa9",
        "CAF\xc3\x89",
        "\xff",
        "Z",
    };
    size_t i, k;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            cr_expect_eq(sign(evutil_ascii_strcasecmp(names[i], names[k])),
                         reference(names[i], names[k]), "\"%s\" vs \"%s\"",
                         names[i], names[k]);
}

/* evhttp_find_header compares through this definition. */
Test(evutil_strcasecmp, evhttp_header_lookups_bind_to_it)
{
    struct evkeyvalq headers;
    unsigned long before;

    TAILQ_INIT(&headers);
    evhttp_add_header(&headers, "Content-Type", "application/json");
    evhttp_add_header(&headers, "X-Request-Id", "req_1");
    before = tg_http_name_compares();
    cr_expect_str_eq(evhttp_find_header(&headers, "x-request-id"), "req_1");
    cr_expect_null(evhttp_find_header(&headers, "x-request"));
    cr_expect_geq(tg_http_name_compares() - before, 4);
    evhttp_clear_headers(&headers);
}
