/*
 * diag.c - the diagnostics of a load, and memory that reports running out.
 *
 * Sections are validated in the order their cross references need (providers
 * before models before teams), not in file order, so notes are collected with
 * their line and column and sorted by position when the load ends: the
 * operator reads them top to bottom like a compiler's. Running out of memory
 * is one more error, so callers of the allocators here only have to avoid
 * dereferencing NULL; the failed load is thrown away whole.
 */
#include "cfg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How much of a value a message quotes: enough to recognise it. */
#define QUOTE_MAX 64

void tg_cfg_ctx_init(struct tg_cfg_ctx *ctx, const char *name)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->name = name;
    tg_arena_init(&ctx->scratch, 16384);
}

static bool push_note(struct tg_cfg_ctx *ctx, const struct tg_cfg_note *note)
{
    if (ctx->n_notes == ctx->cap_notes) {
        size_t cap = ctx->cap_notes ? ctx->cap_notes * 2 : 16;
        struct tg_cfg_note *notes = realloc(ctx->notes, cap * sizeof(*notes));

        if (notes == NULL)
            return false;
        ctx->notes = notes;
        ctx->cap_notes = cap;
    }
    ctx->notes[ctx->n_notes++] = *note;
    return true;
}

static char *vformat(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    char *text;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    text = malloc((size_t)n + 1);
    if (text != NULL)
        vsnprintf(text, (size_t)n + 1, fmt, ap);
    return text;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format(const char *fmt, ...)
{
    va_list ap;
    char *text;

    va_start(ap, fmt);
    text = vformat(fmt, ap);
    va_end(ap);
    return text;
}

static void vreport(struct tg_cfg_ctx *ctx, bool is_error,
                    const yaml_mark_t *mark, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void vreport(struct tg_cfg_ctx *ctx, bool is_error,
                    const yaml_mark_t *mark, const char *fmt, va_list ap)
{
    struct tg_cfg_note note = {.is_error = is_error, .seq = ctx->n_notes};
    const char *level = is_error ? "error" : "warning";
    char *message = vformat(fmt, ap);

    /* The count is what fails the load, so it never depends on memory. */
    if (is_error)
        ctx->n_errors++;
    if (message == NULL)
        return;
    if (mark != NULL) {
        note.line = mark->line + 1;
        note.column = mark->column + 1;
        note.text = format("%s:%zu:%zu: %s: %s", ctx->name, note.line,
                           note.column, level, message);
    } else {
        note.text = format("%s: %s: %s", ctx->name, level, message);
    }
    free(message);
    if (note.text != NULL && !push_note(ctx, &note))
        free(note.text);
}

void tg_cfg_report(struct tg_cfg_ctx *ctx, bool is_error,
                   const yaml_mark_t *mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ctx, is_error, mark, fmt, ap);
    va_end(ap);
}

void tg_cfg_error(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ctx, true, at ? &at->start_mark : NULL, fmt, ap);
    va_end(ap);
}

void tg_cfg_warn(struct tg_cfg_ctx *ctx, const yaml_node_t *at, const char *fmt,
                 ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(ctx, false, at ? &at->start_mark : NULL, fmt, ap);
    va_end(ap);
}

void tg_cfg_out_of_memory(struct tg_cfg_ctx *ctx)
{
    if (!ctx->is_out_of_memory)
        tg_cfg_report(ctx, true, NULL, "out of memory");
    else
        ctx->n_errors++;
    ctx->is_out_of_memory = true;
}

static int compare_notes(const void *a, const void *b)
{
    const struct tg_cfg_note *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Sorts the notes by position and moves them into `diags`, which is
 * overwritten: the caller need not have initialised it. Frees the scratch.
 */
void tg_cfg_ctx_finish(struct tg_cfg_ctx *ctx, struct tg_cfg_diags *diags)
{
    size_t i;

    memset(diags, 0, sizeof(*diags));
    diags->n_errors = ctx->n_errors;
    if (ctx->n_notes > 0) {
        diags->items = malloc(ctx->n_notes * sizeof(*diags->items));
        qsort(ctx->notes, ctx->n_notes, sizeof(*ctx->notes), compare_notes);
    }
    for (i = 0; i < ctx->n_notes; i++) {
        if (diags->items == NULL) {
            free(ctx->notes[i].text);
            continue;
        }
        diags->items[i].is_error = ctx->notes[i].is_error;
        diags->items[i].text = ctx->notes[i].text;
        diags->n++;
    }
    free(ctx->notes);
    ctx->notes = NULL;
    ctx->n_notes = ctx->cap_notes = 0;
    tg_arena_free(&ctx->scratch);
}

void tg_cfg_diags_free(struct tg_cfg_diags *diags)
{
    size_t i;

    if (diags == NULL)
        return;
    for (i = 0; i < diags->n; i++)
        free(diags->items[i].text);
    free(diags->items);
    memset(diags, 0, sizeof(*diags));
}

void *tg_cfg_calloc(struct tg_cfg_ctx *ctx, size_t n, size_t size)
{
    void *p = tg_arena_calloc(ctx->arena, n, size);

    if (p == NULL)
        tg_cfg_out_of_memory(ctx);
    return p;
}

void *tg_cfg_scratch(struct tg_cfg_ctx *ctx, size_t n)
{
    void *p = tg_arena_alloc(&ctx->scratch, n);

    if (p == NULL)
        tg_cfg_out_of_memory(ctx);
    return p;
}

/* A copy owned by the config; "" (not owned, never freed) when out of
 * memory, which fails the load anyway. */
char *tg_cfg_strndup(struct tg_cfg_ctx *ctx, const char *s, size_t len)
{
    static char empty[1];
    char *p = tg_arena_strndup(ctx->arena, s, len);

    if (p != NULL)
        return p;
    tg_cfg_out_of_memory(ctx);
    return empty;
}

char *tg_cfg_strdup(struct tg_cfg_ctx *ctx, const char *s)
{
    return tg_cfg_strndup(ctx, s, strlen(s));
}

/* Where a quoted value may be cut: not inside a UTF-8 sequence. */
static size_t quote_cut(const char *s, size_t len)
{
    size_t n = QUOTE_MAX;

    if (len <= QUOTE_MAX)
        return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/*
 * s[0..len) in double quotes for a message, in scratch memory: quotes,
 * backslashes and control characters escaped so that a message stays one
 * line, and cut after QUOTE_MAX bytes. Never call it on a secret.
 */
const char *tg_cfg_quote(struct tg_cfg_ctx *ctx, const char *s, size_t len)
{
    size_t n = quote_cut(s, len), i, o = 0;
    char *out = tg_cfg_scratch(ctx, n * 4 + 8);

    if (out == NULL)
        return "\"\"";
    out[o++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)sprintf(out + o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (n < len)
        o += (size_t)sprintf(out + o, "...");
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* printf into scratch memory, for the pieces of a message. */
const char *tg_cfg_printf(struct tg_cfg_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char *text, *copy;

    va_start(ap, fmt);
    text = vformat(fmt, ap);
    va_end(ap);
    if (text == NULL) {
        tg_cfg_out_of_memory(ctx);
        return "";
    }
    copy = tg_arena_strndup(&ctx->scratch, text, strlen(text));
    free(text);
    if (copy == NULL) {
        tg_cfg_out_of_memory(ctx);
        return "";
    }
    return copy;
}
