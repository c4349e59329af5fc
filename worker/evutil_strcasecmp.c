/*
 * evutil_strcasecmp.c - libevent's ASCII case-insensitive comparison,
 * without a function call per character.
 *
 * evhttp finds a header by walking the request's or the answer's header
 * list and comparing each name with evutil_ascii_strcasecmp. It does so
 * some fifteen times per proxied request (Host, Content-Length,
 * Connection, Transfer-Encoding, Date, ...), over lists of up to sixteen
 * headers: about 80 comparisons a request (callgrind). libevent's own
 * calls EVUTIL_TOLOWER_, an exported function, twice for every character
 * compared; with it the comparisons were 4.5 % of a request's
 * instructions, and 3 % without it (docs/BENCHMARKS.md). libevent calls
 * the comparison through its PLT, so this definition, in the executable,
 * is the one bound, as with evbuffer_add_printf (evbuffer_printf.c). The
 * result is libevent's: the characters compared as char, after folding
 * A-Z only.
 */
#include <event2/util.h>

#include "tg_http.h"

static unsigned long compares;

unsigned long tg_http_name_compares(void)
{
    return compares;
}

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

int evutil_ascii_strcasecmp(const char *s1, const char *s2)
{
    char c1, c2;

    compares++;
    do {
        c1 = fold(*s1++);
        c2 = fold(*s2++);
    } while (c1 == c2 && c1 != '\0');
    return c1 < c2 ? -1 : c1 > c2;
}
