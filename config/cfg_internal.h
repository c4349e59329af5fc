/*
 * cfg_internal.h - what the files of config/ share; nothing outside reads it.
 *
 * One struct tg_cfg_ctx carries a load from a libyaml document to a struct
 * tg_config: the config being filled (its memory all in one arena), a
 * scratch arena for text that dies with the load, and the diagnostics found
 * so far. Each section of the schema has one fill function. They read values
 * through the typed readers of read.c, which report a bad value at its line
 * and column and leave the default in place, so that one load goes on to
 * report every problem in the file.
 */
#ifndef TG_CFG_INTERNAL_H
#define TG_CFG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_config.h"

/* Every key of a key table is allowed (see tg_cfg_collect). */
#define TG_CFG_ALL_KEYS UINT32_MAX

#define TG_CFG_MAX_NAME      128
#define TG_CFG_MAX_TEAM_NAME 64

/* A diagnostic before the load sorts them by position and hands them over. */
struct tg_cfg_note {
    size_t line;   /* 1-based; 0 when the note has no position */
    size_t column; /* 1-based */
    size_t seq;    /* order of reporting, to keep the sort stable */
    bool is_error;
    char *text; /* malloc'ed, the complete "file:line:col: ..." line */
};

struct tg_cfg_ctx {
    const char *name; /* the file name diagnostics start with */
    yaml_document_t *doc;
    struct tg_config *cfg;
    struct tg_arena *arena;  /* the config's memory, freed by tg_cfg_free */
    struct tg_arena scratch; /* text needed only while loading */
    struct tg_cfg_note *notes;
    size_t n_notes;
    size_t cap_notes;
    size_t n_errors;
    bool is_out_of_memory;
};

/* A key of a mapping and its value; both NULL when the key is absent. */
struct tg_cfg_slot {
    yaml_node_t *key;
    yaml_node_t *value;
};

/* diag.c: reporting, and memory that reports its own exhaustion */
void tg_cfg_ctx_init(struct tg_cfg_ctx *ctx, const char *name);
void tg_cfg_ctx_finish(struct tg_cfg_ctx *ctx, struct tg_cfg_diags *diags);
void tg_cfg_report(struct tg_cfg_ctx *ctx, bool is_error,
                   const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tg_cfg_error(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tg_cfg_warn(struct tg_cfg_ctx *ctx, const yaml_node_t *at, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));
void tg_cfg_out_of_memory(struct tg_cfg_ctx *ctx);
void *tg_cfg_calloc(struct tg_cfg_ctx *ctx, size_t n, size_t size);
void *tg_cfg_scratch(struct tg_cfg_ctx *ctx, size_t n);
char *tg_cfg_strndup(struct tg_cfg_ctx *ctx, const char *s, size_t len);
char *tg_cfg_strdup(struct tg_cfg_ctx *ctx, const char *s);
const char *tg_cfg_quote(struct tg_cfg_ctx *ctx, const char *s, size_t len);
const char *tg_cfg_printf(struct tg_cfg_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* interp.c: ${NAME}, ${NAME:-default} and $${ */
char *tg_cfg_interpolate(struct tg_cfg_ctx *ctx, const yaml_node_t *at,
                         const char *what, const char *text, size_t len,
                         size_t *out_len);

/* read.c: walking mappings and reading typed values */
yaml_node_t *tg_cfg_node(const struct tg_cfg_ctx *ctx, int index);
const char *tg_cfg_kind(const yaml_node_t *node);
bool tg_cfg_is_null(const yaml_node_t *node);
bool tg_cfg_expect_mapping(struct tg_cfg_ctx *ctx, const yaml_node_t *node,
                           const char *subject);
bool tg_cfg_collect(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                    const char *const *keys, size_t n_keys, uint32_t allowed,
                    const char *where, struct tg_cfg_slot *slots);
bool *tg_cfg_find_duplicates(struct tg_cfg_ctx *ctx, const yaml_node_t *map,
                             const char *where);
const char *tg_cfg_scalar_text(struct tg_cfg_ctx *ctx, const yaml_node_t *node,
                               const char *what, const char *expected,
                               size_t *len);
bool tg_cfg_parse_int(const char *text, size_t len, int64_t *out);
bool tg_cfg_read_string(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                        char **inout);
bool tg_cfg_read_int(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                     int64_t min, int64_t max, int64_t *inout);
bool tg_cfg_read_int32(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                       int min, int max, int *inout);
bool tg_cfg_read_number(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                        double *inout);
bool tg_cfg_read_bool(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                      bool *inout);
const yaml_node_t *tg_cfg_sequence(struct tg_cfg_ctx *ctx,
                                   const struct tg_cfg_slot *s,
                                   const char *expected);
char *tg_cfg_name(struct tg_cfg_ctx *ctx, const yaml_node_t *key,
                  const char *kind);

/* listen.c */
void tg_cfg_fill_listen(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s);

/* providers.c, models.c, teams.c: the named sections, in this order */
void tg_cfg_fill_providers(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s);
void tg_cfg_fill_models(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s);
void tg_cfg_fill_groups(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s);
/* The key tables of each section (schema.c lists them). */
extern const char *const tg_cfg_root_keys[];
extern const char *const tg_cfg_limits_keys[4];
extern const char *const tg_cfg_health_keys[2];
extern const char *const tg_cfg_defaults_keys[3];
extern const char *const tg_cfg_auth_keys[3];
extern const char *const tg_cfg_provider_keys[];
extern const char *const tg_cfg_model_keys[];
extern const char *const tg_cfg_group_keys[];
extern const char *const tg_cfg_team_keys[];
extern const size_t tg_cfg_root_keys_n;
extern const size_t tg_cfg_limits_keys_n;
extern const size_t tg_cfg_health_keys_n;
extern const size_t tg_cfg_defaults_keys_n;
extern const size_t tg_cfg_auth_keys_n;
extern const size_t tg_cfg_model_keys_n;
extern const size_t tg_cfg_group_keys_n;
extern const size_t tg_cfg_provider_keys_n;
extern const size_t tg_cfg_team_keys_n;

/* Also reads admin_keys, whose keys must be no team's. */
void tg_cfg_fill_teams(struct tg_cfg_ctx *ctx, const struct tg_cfg_slot *s,
                       const struct tg_cfg_slot *admin_keys);
struct tg_model *tg_cfg_find_model(const struct tg_config *cfg,
                                   const char *name, size_t len);
struct tg_model_group *tg_cfg_find_group(const struct tg_config *cfg,
                                         const char *name, size_t len);

/* root.c */
void tg_cfg_fill(struct tg_cfg_ctx *ctx, yaml_node_t *root);

#endif
