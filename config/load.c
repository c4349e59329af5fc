/*
 * load.c - tg_cfg_load: from a file or a string to a validated config.
 *
 * libyaml's document API builds the whole node tree first, so every node
 * keeps the line and column it started at for messages, and aliases come
 * back as the node they name. A syntax error stops the load (there is no
 * tree to check); otherwise the whole tree is checked and every problem
 * reported. The config lives in one arena that a private box holds next to
 * it, so tg_cfg_free releases everything with one call and no walk.
 */
#include "cfg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The config first, so that a struct tg_config * is the box's address. */
struct cfg_box {
    struct tg_config cfg;
    struct tg_arena arena;
};

void tg_cfg_free(struct tg_config *cfg)
{
    struct cfg_box *box = (struct cfg_box *)cfg;

    if (box == NULL)
        return;
    tg_arena_free(&box->arena);
    free(box);
}

/* libyaml's reader errors carry a byte offset but no line: count it. */
static yaml_mark_t mark_of_offset(const char *yaml, size_t len, size_t off)
{
    yaml_mark_t mark = {0, 0, 0};
    size_t i;

    for (i = 0; i < off && i < len; i++) {
        if (yaml[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else if (((unsigned char)yaml[i] & 0xC0) != 0x80) {
            mark.column++;
        }
    }
    return mark;
}

static void report_syntax(struct tg_cfg_ctx *ctx, const yaml_parser_t *p,
                          const char *yaml, size_t len)
{
    yaml_mark_t mark = p->problem_mark;
    const char *problem = p->problem ? p->problem : "invalid YAML";

    if (p->error == YAML_MEMORY_ERROR) {
        tg_cfg_out_of_memory(ctx);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        mark = mark_of_offset(yaml, len, p->problem_offset);
        tg_cfg_report(ctx, true, &mark, "%s", problem);
    } else if (p->context != NULL) {
        tg_cfg_report(ctx, true, &mark, "%s (%s that starts at %zu:%zu)",
                      problem, p->context, p->context_mark.line + 1,
                      p->context_mark.column + 1);
    } else {
        tg_cfg_report(ctx, true, &mark, "%s", problem);
    }
}

static bool is_empty(const yaml_node_t *root)
{
    return root == NULL ||
           (root->type == YAML_SCALAR_NODE && tg_cfg_is_null(root) &&
            root->data.scalar.length == 0);
}

/* One document or an error: a second one would be silently ignored. */
static void check_single(struct tg_cfg_ctx *ctx, yaml_parser_t *parser,
                         const char *yaml, size_t len)
{
    yaml_document_t next;

    if (!yaml_parser_load(parser, &next)) {
        report_syntax(ctx, parser, yaml, len);
        return;
    }
    if (yaml_document_get_root_node(&next) != NULL)
        tg_cfg_report(ctx, true, &next.start_mark,
                      "a second YAML document starts here; the file must "
                      "hold exactly one");
    yaml_document_delete(&next);
}

static void parse_and_fill(struct tg_cfg_ctx *ctx, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;

    if (!yaml_parser_initialize(&parser)) {
        tg_cfg_out_of_memory(ctx);
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        report_syntax(ctx, &parser, yaml, len);
        yaml_parser_delete(&parser);
        return;
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL)
        check_single(ctx, &parser, yaml, len);
    if (is_empty(root)) {
        tg_cfg_report(ctx, true, &(yaml_mark_t){0, 0, 0},
                      "the file is empty (expected a mapping of settings: "
                      "listen, providers, models, teams, ...)");
    } else {
        ctx->doc = &doc;
        tg_cfg_fill(ctx, root);
        ctx->doc = NULL;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

struct tg_config *tg_cfg_load_string(const char *name, const char *yaml,
                                     size_t len, struct tg_cfg_diags *diags)
{
    struct tg_cfg_ctx ctx;
    struct cfg_box *box = calloc(1, sizeof(*box));

    tg_cfg_ctx_init(&ctx, name);
    if (box == NULL) {
        tg_cfg_out_of_memory(&ctx);
        tg_cfg_ctx_finish(&ctx, diags);
        return NULL;
    }
    tg_arena_init(&box->arena, 16384);
    ctx.cfg = &box->cfg;
    ctx.arena = &box->arena;
    box->cfg.path = tg_cfg_strdup(&ctx, name);
    parse_and_fill(&ctx, yaml, len);
    tg_cfg_ctx_finish(&ctx, diags);
    if (diags->n_errors > 0) {
        tg_cfg_free(&box->cfg);
        return NULL;
    }
    return &box->cfg;
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL, *grown;
    ssize_t r;
    int saved;

    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        r = read(fd, buf + n, cap - n);
        if (r == 0)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            saved = errno;
            free(buf);
            errno = saved;
            return NULL;
        }
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

/* The whole file in a malloc'ed buffer, or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), saved;
    char *buf;

    if (fd < 0)
        return NULL;
    buf = read_all(fd, len);
    saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

struct tg_config *tg_cfg_load(const char *path, struct tg_cfg_diags *diags)
{
    struct tg_config *cfg;
    struct tg_cfg_ctx ctx;
    size_t len = 0;
    char *yaml = read_file(path, &len);

    if (yaml == NULL) {
        tg_cfg_ctx_init(&ctx, path);
        tg_cfg_report(&ctx, true, NULL, "cannot open: %s", strerror(errno));
        tg_cfg_ctx_finish(&ctx, diags);
        return NULL;
    }
    cfg = tg_cfg_load_string(path, yaml, len, diags);
    free(yaml);
    return cfg;
}
