/*
 * listen.c - the `listen` key: "host:port" strings to struct tg_listen.
 *
 * A host is an IPv4 address, a host name, or an IPv6 address in brackets
 * (stored without them); the port is after the last ':'. Everything is
 * checked here, so that a typo fails `tollgate -t` rather than the bind of
 * a running master. A single string is taken as a one-item list.
 */
#include "cfg_internal.h"

#include <arpa/inet.h>
#include <string.h>

#define MAX_HOST_NAME 253
#define MAX_LABEL     63

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-';
}

/* Digits and dots only: meant as IPv4, so it must be a valid one. */
static bool looks_numeric(const char *host)
{
    return host[strspn(host, "0123456789.")] == '\0';
}

static bool is_host_name(const char *host)
{
    size_t len = strlen(host), label = 0, i;

    if (len == 0 || len > MAX_HOST_NAME)
        return false;
    for (i = 0; i <= len; i++) {
        if (i == len || host[i] == '.') {
            if (label == 0 || host[i - 1] == '-' || host[i - label] == '-')
                return false;
            label = 0;
        } else if (!is_label_char(host[i]) || ++label > MAX_LABEL) {
            return false;
        }
    }
    return true;
}

static bool is_host(const char *host, bool is_bracketed)
{
    unsigned char addr[16];

    if (is_bracketed)
        return inet_pton(AF_INET6, host, addr) == 1;
    if (looks_numeric(host))
        return inet_pton(AF_INET, host, addr) == 1;
    return is_host_name(host);
}

/* Splits text into host and port; false with *why set when it cannot. */
static bool split(const char *text, size_t len, const char **host,
                  size_t *host_len, bool *is_bracketed, const char **why)
{
    const char *colon = memrchr(text, ':', len);

    *is_bracketed = len > 0 && text[0] == '[';
    if (*is_bracketed) {
        const char *close = memchr(text, ']', len);

        if (close == NULL || close + 1 != colon) {
            *why = "has an IPv6 host but not \"[host]:port\"";
            return false;
        }
        *host = text + 1;
        *host_len = (size_t)(close - text) - 1;
        return true;
    }
    if (colon == NULL) {
        *why = "has no port";
        return false;
    }
    if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
        *why = "has an IPv6 host without brackets";
        return false;
    }
    *host = text;
    *host_len = (size_t)(colon - text);
    return true;
}

static bool parse_address(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                          const char *text, size_t len, struct tg_listen *out)
{
    const char *host, *port_text, *why = NULL;
    const char *quoted = tg_cfg_quote(ctx, text, len);
    size_t host_len;
    bool is_bracketed;
    int64_t port;

    if (!split(text, len, &host, &host_len, &is_bracketed, &why)) {
        tg_cfg_error(ctx, at,
                     "listen address %s %s (expected \"host:port\", as in "
                     "\"127.0.0.1:8000\" or \"[::1]:8000\")",
                     quoted, why);
        return false;
    }
    out->host = tg_cfg_strndup(ctx, host, host_len);
    if (strlen(out->host) != host_len || !is_host(out->host, is_bracketed)) {
        tg_cfg_error(ctx, at,
                     "listen address %s: the host must be an IPv4 address, "
                     "a host name or an IPv6 address in brackets",
                     quoted);
        return false;
    }
    port_text = (const char *)memrchr(text, ':', len) + 1;
    if (!tg_cfg_parse_int(port_text, len - (size_t)(port_text - text), &port) ||
        port < 1 || port > UINT16_MAX) {
        tg_cfg_error(ctx, at,
                     "listen address %s: the port must be an integer from "
                     "1 to 65535",
                     quoted);
        return false;
    }
    out->port = (uint16_t)port;
    return true;
}

static void report_twice(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                         const struct tg_listen *l, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (l[i].port == l[n].port && strcmp(l[i].host, l[n].host) == 0)
            tg_cfg_error(ctx, at, "listen address %s:%u is listed twice",
                         l[n].host, (unsigned)l[n].port);
}

static void fill_items(struct tg_cfg_ctx *ctx, const yaml_node_t *const *items,
                       size_t n)
{
    struct tg_config *cfg = ctx->cfg;
    struct tg_listen *listen = tg_cfg_calloc(ctx, n, sizeof(*listen));
    size_t i, len;

    if (listen == NULL)
        return;
    cfg->n_listen = 0;
    for (i = 0; i < n; i++) {
        const char *text = tg_cfg_scalar_text(ctx, items[i], "listen",
                                              "\"host:port\" strings", &len);

        if (text == NULL ||
            !parse_address(ctx, items[i], text, len, &listen[cfg->n_listen]))
            continue;
        report_twice(ctx, items[i], listen, cfg->n_listen);
        cfg->n_listen++;
    }
    cfg->listen = listen;
}

/* Reads `listen`; the default ["127.0.0.1:8000"] is already in place. */
void tg_cfg_fill_listen(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s)
{
    const yaml_node_t *v = s->value, **items;
    size_t n, i;

    if (s->key == NULL)
        return;
    if (v->type == YAML_MAPPING_NODE) {
        tg_cfg_error(ctx, v,
                     "listen must be a sequence of \"host:port\" "
                     "strings, got a mapping");
        return;
    }
    if (v->type == YAML_SCALAR_NODE) {
        fill_items(ctx, &v, 1);
        return;
    }
    n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0) {
        tg_cfg_error(ctx, v, "listen must name at least one address");
        return;
    }
    items = tg_cfg_scratch(ctx, n * sizeof(*items));
    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        items[i] = tg_cfg_node(ctx, v->data.sequence.items.start[i]);
    fill_items(ctx, items, n);
}
