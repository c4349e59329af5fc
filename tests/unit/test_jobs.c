/*
 * test_jobs.c - the job table in the shared segment: job ids as text, a
 * job's life (create, read, check, add a call, close) and the one credit
 * its completion costs, the refusals (no credits, another team's job,
 * unknown ids, a full table), eviction of the job closed longest ago,
 * exactly one credit per completed job across racing processes and across
 * SIGKILL inside a close, and jobs kept across reload and restart.
 *
 * Workers are fork()ed children sharing the mapping as real workers do (see
 * shm_harness.h). Every operation is given its now_ns, so timestamps and
 * the order of eviction are the test's choice, not the clock's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tg_config.h"
#include "tg_shm.h"

#include "shm_harness.h"

#define TEAMS_HEAD                                 \
    "providers: {mock: {type: mock}}\n"            \
    "models: {m: {provider: mock, model: echo}}\n" \
    "teams:\n"

#define CREDIT TG_SHM_MICRO_CREDITS /* one credit, in micro-credits */

/* A config whose state file is the fixture's and whose `teams:` mapping is
 * `teams_yaml` (lines indented by two spaces). Freed by the teardown. */
static struct tg_config *load_teams(const char *teams_yaml)
{
    return shm_test_load_config(TEAMS_HEAD, teams_yaml);
}

/* The slot of the team called `name` in the config last configured. */
static struct tg_shm_team *
team_of(const struct tg_shm *shm, const struct tg_config *cfg, const char *name)
{
    const struct tg_team *team = tg_cfg_find_team(cfg, name);
    struct tg_shm_team *slot;

    cr_assert_not_null(team, "no team %s in the config", name);
    slot = tg_shm_team(shm, (size_t)(team - cfg->teams));
    cr_assert_not_null(slot, "no slot for team %s", name);
    return slot;
}

/* The team's balance as its slot holds it. tg_shm_read is not a job
 * operation: it leaves a close that a killed process left half done as it
 * is (see shm/jobs.c). */
static int64_t credits_of(struct tg_shm_team *t)
{
    struct tg_shm_team_view v;

    tg_shm_read(t, 0, &v);
    return v.credits_micro;
}

/* The slot a job id carries in its first 16 bits. */
static unsigned slot_of_id(const struct tg_job_id *id)
{
    return (unsigned)id->bytes[0] << 8 | id->bytes[1];
}

static bool is_same_id(const struct tg_job_id *a, const struct tg_job_id *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static struct tg_shm_job_view create_ok(struct tg_shm *shm,
                                        struct tg_shm_team *t,
                                        const char *job_type, int64_t now_ns)
{
    struct tg_shm_job_view v;
    enum tg_job_result rc = tg_shm_job_create(shm, t, job_type, now_ns, &v);

    cr_assert_eq(rc, TG_JOB_OK, "create: result %d", (int)rc);
    return v;
}

static struct tg_shm_job_view read_ok(struct tg_shm *shm, struct tg_shm_team *t,
                                      const struct tg_job_id *id)
{
    struct tg_shm_job_view v;
    enum tg_job_result rc = tg_shm_job_read(shm, t, id, &v);

    cr_assert_eq(rc, TG_JOB_OK, "read: result %d", (int)rc);
    return v;
}

static struct tg_shm_job_view
close_ok(struct tg_shm *shm, struct tg_shm_team *t, const struct tg_job_id *id,
         enum tg_job_status status, int64_t now_ns)
{
    struct tg_shm_job_view v;
    enum tg_job_result rc = tg_shm_job_close(shm, t, id, status, now_ns, &v);

    cr_assert_eq(rc, TG_JOB_OK, "close: result %d", (int)rc);
    return v;
}

static void add_call_ok(struct tg_shm *shm, struct tg_shm_team *t,
                        const struct tg_job_id *id, bool is_ok, int64_t prompt,
                        int64_t completion, int64_t cost, int64_t latency)
{
    struct tg_job_call call = {is_ok, prompt, completion, cost, latency};

    cr_assert_eq(tg_shm_job_add_call(shm, t, id, &call), TG_JOB_OK);
}

/* Every field but credits_after_micro, which only a close reports. */
static void expect_same_job(const struct tg_shm_job_view *a,
                            const struct tg_shm_job_view *b, const char *what)
{
    cr_assert(is_same_id(&a->id, &b->id), "%s: id", what);
    cr_assert_str_eq(a->team_name, b->team_name, "%s: team", what);
    cr_assert_str_eq(a->job_type, b->job_type, "%s: job_type", what);
    cr_assert_eq(a->status, b->status, "%s: status", what);
    cr_assert_eq(a->created_ns, b->created_ns, "%s: created_ns", what);
    cr_assert_eq(a->completed_ns, b->completed_ns, "%s: completed_ns", what);
    cr_assert_eq(a->calls, b->calls, "%s: calls", what);
    cr_assert_eq(a->failed_calls, b->failed_calls, "%s: failed_calls", what);
    cr_assert_eq(a->prompt_tokens, b->prompt_tokens, "%s: prompt", what);
    cr_assert_eq(a->completion_tokens, b->completion_tokens, "%s: completion",
                 what);
    cr_assert_eq(a->cost_nano_usd, b->cost_nano_usd, "%s: cost", what);
    cr_assert_eq(a->latency_ms_sum, b->latency_ms_sum, "%s: latency", what);
    cr_assert_eq(a->is_credit_applied, b->is_credit_applied,
                 "%s: is_credit_applied", what);
}

/* Every operation on `id` by team t answers `expected`, and t's credits
 * do not move (callers check the job itself). */
static void expect_refused_everywhere(struct tg_shm *shm, struct tg_shm_team *t,
                                      const struct tg_job_id *id,
                                      enum tg_job_result expected,
                                      const char *what)
{
    struct tg_job_call call = {false, 11, 22, 33, 44};
    struct tg_shm_job_view v;
    int64_t before = credits_of(t);

    cr_assert_eq(tg_shm_job_read(shm, t, id, &v), expected, "%s: read", what);
    cr_assert_eq(tg_shm_job_check(shm, t, id), expected, "%s: check", what);
    cr_assert_eq(tg_shm_job_add_call(shm, t, id, &call), expected,
                 "%s: add_call", what);
    cr_assert_eq(tg_shm_job_close(shm, t, id, TG_JOB_COMPLETED, 1, &v),
                 expected, "%s: close", what);
    cr_assert_eq(credits_of(t), before, "%s: credits changed", what);
}

/* Creates jobs of team t until the table is full; returns how many. Each
 * create finds a slot that holds no open job, so more than
 * TG_SHM_JOB_SLOTS would mean two open jobs in one slot. */
static int fill_table(struct tg_shm *shm, struct tg_shm_team *t, int64_t now)
{
    struct tg_shm_job_view v;
    enum tg_job_result rc;
    int n = 0;

    while ((rc = tg_shm_job_create(shm, t, "filler", now, &v)) == TG_JOB_OK)
        cr_assert_leq(++n, TG_SHM_JOB_SLOTS, "more open jobs than slots");
    cr_assert_eq(rc, TG_JOB_TABLE_FULL, "create: result %d", (int)rc);
    return n;
}

TestSuite(jobs, .init = shm_test_setup, .fini = shm_test_teardown);

/* ---- ids as text -------------------------------------------------------- */

#define SAMPLE_ID_TEXT "00112233-4455-6677-8899-aabbccddeeff"

static const struct tg_job_id sample_id = {{0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                            0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                            0xcc, 0xdd, 0xee, 0xff}};

static bool is_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 8-4-4-4-12 lower-case hex digits and nothing after. */
static void expect_uuid_text(const char *s)
{
    size_t i;

    cr_assert_eq(strlen(s), TG_SHM_JOB_ID_LEN, "%s: length", s);
    for (i = 0; i < TG_SHM_JOB_ID_LEN; i++) {
        if (is_dash_position(i))
            cr_assert_eq(s[i], '-', "%s: character %zu", s, i);
        else
            cr_assert(is_lower_hex(s[i]), "%s: character %zu", s, i);
    }
}

Test(jobs, id_format_writes_lowercase_hex_8_4_4_4_12_and_parse_inverts_it)
{
    char text[64];
    struct tg_job_id id, back;
    unsigned rand_state = 7;
    size_t i;
    int n;

    memset(text, 'X', sizeof(text));
    tg_job_id_format(&sample_id, text);
    cr_assert_str_eq(text, SAMPLE_ID_TEXT);
    cr_assert_eq(text[TG_SHM_JOB_ID_LEN + 1], 'X', "wrote past the NUL");

    for (n = 0; n < 1000; n++) {
        for (i = 0; i < sizeof(id.bytes); i++)
            id.bytes[i] = (unsigned char)rand_r(&rand_state);
        tg_job_id_format(&id, text);
        expect_uuid_text(text);
        memset(&back, 0, sizeof(back));
        cr_assert(tg_job_id_parse(text, strlen(text), &back), "%s", text);
        cr_assert(is_same_id(&id, &back), "%s does not round-trip", text);
    }
}

Test(jobs, created_ids_are_version_4_variant_10_uuids)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 1}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_job_view v;
    struct tg_job_id back;
    char text[TG_SHM_JOB_ID_LEN + 1];
    int n;

    for (n = 0; n < 64; n++) {
        v = create_ok(shm, a, "t", n);
        tg_job_id_format(&v.id, text);
        expect_uuid_text(text);
        cr_assert_eq(text[14], '4', "%s: not version 4", text);
        cr_assert(strchr("89ab", text[19]) != NULL, "%s: not variant 10", text);
        cr_assert(tg_job_id_parse(text, TG_SHM_JOB_ID_LEN, &back));
        cr_assert(is_same_id(&v.id, &back));
    }
    shm_test_close_segment(shm);
}

static void expect_parse_refused(const char *s, size_t len, const char *what)
{
    struct tg_job_id id;

    cr_assert_not(tg_job_id_parse(s, len, &id), "accepted %s: \"%.*s\"", what,
                  (int)len, s);
}

Test(jobs, id_parse_refuses_malformed_text_and_accepts_upper_case)
{
    const char *valid = SAMPLE_ID_TEXT;
    /* Next to the digits and letters in ASCII, and letters past f. */
    const char not_hex[] = {'/', ':', '@', 'G', '`', 'g', 'x', ' ', '+', '\0'};
    char text[64];
    struct tg_job_id id;
    size_t i, k;

    cr_assert(tg_job_id_parse(valid, TG_SHM_JOB_ID_LEN, &id));
    cr_assert(is_same_id(&id, &sample_id));
    memset(&id, 0, sizeof(id));
    cr_assert(tg_job_id_parse("00112233-4455-6677-8899-AABBCCDDEEFF",
                              TG_SHM_JOB_ID_LEN, &id),
              "upper-case hex refused");
    cr_assert(is_same_id(&id, &sample_id));
    memset(&id, 0, sizeof(id));
    cr_assert(tg_job_id_parse("00112233-4455-6677-8899-aAbBcCdDeEfF",
                              TG_SHM_JOB_ID_LEN, &id),
              "mixed-case hex refused");
    cr_assert(is_same_id(&id, &sample_id));

    expect_parse_refused(valid, 0, "an empty id");
    expect_parse_refused(valid, TG_SHM_JOB_ID_LEN - 1, "35 characters");
    snprintf(text, sizeof(text), "%s0", valid);
    expect_parse_refused(text, TG_SHM_JOB_ID_LEN + 1, "37 characters");
    snprintf(text, sizeof(text), "{%s}", valid);
    expect_parse_refused(text, TG_SHM_JOB_ID_LEN + 2, "braces");
    expect_parse_refused("00112233445566778899aabbccddeeff", 32, "no dashes");
    expect_parse_refused("0011223344-55-6677-8899-aabbccddeeff",
                         TG_SHM_JOB_ID_LEN, "a dash moved right");
    expect_parse_refused("0011223-34455-6677-8899-aabbccddeeff",
                         TG_SHM_JOB_ID_LEN, "a dash moved left");
    expect_parse_refused("00112233-4455-6677-8899aa-bbccddeeff",
                         TG_SHM_JOB_ID_LEN, "the last dash moved");
    /* Every position: a dash replaced by a digit, a digit by a dash or a
     * character that is not hex. */
    for (i = 0; i < TG_SHM_JOB_ID_LEN; i++) {
        for (k = 0; k < sizeof(not_hex) + 1; k++) {
            snprintf(text, sizeof(text), "%s", valid);
            if (is_dash_position(i))
                text[i] = k == 0 ? '0' : not_hex[k - 1];
            else
                text[i] = k == 0 ? '-' : not_hex[k - 1];
            expect_parse_refused(text, TG_SHM_JOB_ID_LEN, "a bad character");
        }
    }
}

/* ---- a job's life ------------------------------------------------------- */

Test(jobs, created_job_reads_back_open_with_zero_totals)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 2}\n"
                   "  b: {rpm: 10, tpm: 100, credits: 2}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_team *b = team_of(shm, cfg, "b");
    char long_type[TG_SHM_JOB_TYPE_MAX + 40];
    struct tg_shm_job_view created, v, other, typed;
    int64_t t = tg_shm_now_ns();

    created = create_ok(shm, a, "summarise", t);
    v = read_ok(shm, a, &created.id);
    expect_same_job(&v, &created, "create and read");
    cr_assert_str_eq(v.team_name, "a");
    cr_assert_str_eq(v.job_type, "summarise");
    cr_assert_eq(v.status, TG_JOB_IN_PROGRESS);
    cr_assert_eq(v.created_ns, t);
    cr_assert_eq(v.completed_ns, 0);
    cr_assert_eq(v.calls, 0);
    cr_assert_eq(v.failed_calls, 0);
    cr_assert_eq(v.prompt_tokens, 0);
    cr_assert_eq(v.completion_tokens, 0);
    cr_assert_eq(v.cost_nano_usd, 0);
    cr_assert_eq(v.latency_ms_sum, 0);
    cr_assert_not(v.is_credit_applied);
    cr_assert_eq(tg_shm_job_check(shm, a, &created.id), TG_JOB_OK);
    cr_assert_eq(credits_of(a), 2 * CREDIT, "creating cost a credit");

    other = create_ok(shm, b, "", t + 5);
    cr_assert_not(is_same_id(&other.id, &created.id));
    cr_assert_neq(slot_of_id(&other.id), slot_of_id(&created.id));
    v = read_ok(shm, b, &other.id);
    cr_assert_str_eq(v.team_name, "b");
    cr_assert_str_eq(v.job_type, "");
    cr_assert_eq(v.created_ns, t + 5);

    memset(long_type, 'q', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = '\0';
    typed = create_ok(shm, a, long_type, t);
    v = read_ok(shm, a, &typed.id);
    cr_assert_eq(strlen(v.job_type), TG_SHM_JOB_TYPE_MAX, "job_type cut");
    cr_assert_eq(strncmp(v.job_type, long_type, TG_SHM_JOB_TYPE_MAX), 0);
    shm_test_close_segment(shm);
}

#define LIVE_JOBS 300

Test(jobs, live_jobs_never_share_an_id_or_a_slot)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 1}\n"
                   "  b: {rpm: 10, tpm: 100, credits: 1}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *teams[2] = {team_of(shm, cfg, "a"),
                                    team_of(shm, cfg, "b")};
    struct tg_job_id ids[LIVE_JOBS];
    bool is_taken[TG_SHM_JOB_SLOTS] = {0};
    struct tg_shm_job_view v;
    int i;

    /* Closed jobs stay in their slots until the table is full, so every
     * one of these is live when the next is created. */
    for (i = 0; i < LIVE_JOBS; i++) {
        ids[i] = create_ok(shm, teams[i % 2], "t", i).id;
        cr_assert_lt(slot_of_id(&ids[i]), TG_SHM_JOB_SLOTS);
        cr_assert_not(is_taken[slot_of_id(&ids[i])],
                      "job %d got slot %u, which a live job holds", i,
                      slot_of_id(&ids[i]));
        is_taken[slot_of_id(&ids[i])] = true;
        if (i % 3 == 0)
            close_ok(shm, teams[i % 2], &ids[i], TG_JOB_CANCELLED, i);
    }
    for (i = 0; i < LIVE_JOBS; i++) {
        v = read_ok(shm, teams[i % 2], &ids[i]);
        cr_assert(is_same_id(&v.id, &ids[i]));
        cr_assert_eq(v.created_ns, i, "job %d", i);
        cr_assert_eq(v.status,
                     i % 3 == 0 ? TG_JOB_CANCELLED : TG_JOB_IN_PROGRESS);
    }
    shm_test_close_segment(shm);
}

Test(jobs, create_needs_at_least_one_whole_credit)
{
    struct tg_config *cfg =
        load_teams("  zero: {rpm: 10, tpm: 100, credits: 0}\n"
                   "  half: {rpm: 10, tpm: 100, credits: 0.5}\n"
                   "  one: {rpm: 10, tpm: 100, credits: 1}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *zero = team_of(shm, cfg, "zero");
    struct tg_shm_team *half = team_of(shm, cfg, "half");
    struct tg_shm_team *one = team_of(shm, cfg, "one");
    unsigned char untouched[sizeof(struct tg_shm_job_view)];
    struct tg_shm_job_view v;
    struct tg_job_id first;

    memset(&v, 0x5a, sizeof(v));
    memset(untouched, 0x5a, sizeof(untouched));
    cr_assert_eq(tg_shm_job_create(shm, zero, "t", 1, &v), TG_JOB_NO_CREDITS);
    cr_assert_eq(tg_shm_job_create(shm, half, "t", 1, &v), TG_JOB_NO_CREDITS);
    cr_assert_eq(memcmp(&v, untouched, sizeof(v)), 0, "out was written");
    cr_assert_eq(credits_of(half), CREDIT / 2);

    first = create_ok(shm, one, "t", 1).id;
    close_ok(shm, one, &first, TG_JOB_COMPLETED, 2);
    cr_assert_eq(credits_of(one), 0);
    cr_assert_eq(tg_shm_job_create(shm, one, "t", 3, &v), TG_JOB_NO_CREDITS,
                 "created with the balance spent");
    cr_assert_eq(tg_shm_credit(one, CREDIT - 1), CREDIT - 1);
    cr_assert_eq(tg_shm_job_create(shm, one, "t", 3, &v), TG_JOB_NO_CREDITS,
                 "created with one micro-credit short of a credit");
    cr_assert_eq(tg_shm_credit(one, 1), CREDIT);
    create_ok(shm, one, "t", 4); /* open: stays in the table */

    /* Nothing was created by a refusal: the table still takes every slot
     * but the one open job's (the completed one is evicted). */
    cr_assert_eq(fill_table(shm, one, 5), TG_SHM_JOB_SLOTS - 1);
    cr_assert_eq(tg_shm_job_create(shm, zero, "t", 6, &v), TG_JOB_NO_CREDITS,
                 "no credits is said before a full table");
    shm_test_close_segment(shm);
}

/* ---- refusals ----------------------------------------------------------- */

Test(jobs, another_teams_job_is_refused_and_left_unchanged)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 3}\n"
                   "  b: {rpm: 10, tpm: 100, credits: 3}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_team *b = team_of(shm, cfg, "b");
    struct tg_shm_job_view before, after, done;
    struct tg_job_id job, closed;

    job = create_ok(shm, a, "t", 10).id;
    add_call_ok(shm, a, &job, true, 5, 6, 7, 8);
    before = read_ok(shm, a, &job);
    expect_refused_everywhere(shm, b, &job, TG_JOB_WRONG_TEAM, "team b");
    after = read_ok(shm, a, &job);
    expect_same_job(&after, &before, "after team b's attempts");
    cr_assert_eq(credits_of(a), 3 * CREDIT);
    cr_assert_eq(credits_of(b), 3 * CREDIT);

    closed = create_ok(shm, a, "t", 11).id;
    done = close_ok(shm, a, &closed, TG_JOB_COMPLETED, 12);
    expect_refused_everywhere(shm, b, &closed, TG_JOB_WRONG_TEAM,
                              "team b, closed job");
    after = read_ok(shm, a, &closed);
    expect_same_job(&after, &done, "closed, after team b's attempts");
    cr_assert_eq(credits_of(a), 2 * CREDIT);
    shm_test_close_segment(shm);
}

Test(jobs, unknown_ids_are_not_found)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 3}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_job_view before, after;
    struct tg_job_id job, id;
    unsigned rand_state = 99;
    size_t i, n;

    job = create_ok(shm, a, "t", 10).id;
    before = read_ok(shm, a, &job);
    /* Its slot, another id: each byte but the slot's changed in turn. */
    for (i = 2; i < sizeof(job.bytes); i++) {
        id = job;
        id.bytes[i] ^= 0x01;
        expect_refused_everywhere(shm, a, &id, TG_JOB_NOT_FOUND,
                                  "an id naming an occupied slot");
    }
    for (n = 0; n < 50; n++) {
        for (i = 0; i < sizeof(id.bytes); i++)
            id.bytes[i] = (unsigned char)rand_r(&rand_state);
        id.bytes[0] &= 0x0f; /* a slot of the table, mostly free */
        expect_refused_everywhere(shm, a, &id, TG_JOB_NOT_FOUND, "a random id");
    }
    /* Slot bits past the table: 4096, 4097, and the largest. */
    id = job;
    id.bytes[0] = TG_SHM_JOB_SLOTS >> 8;
    id.bytes[1] = 0;
    expect_refused_everywhere(shm, a, &id, TG_JOB_NOT_FOUND, "slot 4096");
    id.bytes[1] = 1;
    expect_refused_everywhere(shm, a, &id, TG_JOB_NOT_FOUND, "slot 4097");
    id.bytes[0] = id.bytes[1] = 0xff;
    expect_refused_everywhere(shm, a, &id, TG_JOB_NOT_FOUND, "slot 65535");
    after = read_ok(shm, a, &job);
    expect_same_job(&after, &before, "the job whose slot was named");
    shm_test_close_segment(shm);
}

/* ---- totals and closing ------------------------------------------------- */

Test(jobs, add_call_sums_every_total_exactly)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 3}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    const int64_t big = 1LL << 40; /* beyond 32 bits */
    struct tg_job_id job = create_ok(shm, a, "t", 10).id;
    struct tg_job_id other = create_ok(shm, a, "t", 10).id;
    struct tg_shm_job_view v;

    add_call_ok(shm, a, &job, true, 100, 20, 3000, 450);
    add_call_ok(shm, a, &job, false, 0, 0, 0, 5001);
    add_call_ok(shm, a, &job, true, big, 1, big + 7, big + 1);
    add_call_ok(shm, a, &job, false, 17, 0, 9, 0);
    add_call_ok(shm, a, &other, true, 1, 1, 1, 1);
    v = read_ok(shm, a, &job);
    cr_assert_eq(v.calls, 4);
    cr_assert_eq(v.failed_calls, 2);
    cr_assert_eq(v.prompt_tokens, 100 + big + 17);
    cr_assert_eq(v.completion_tokens, 20 + 1);
    cr_assert_eq(v.cost_nano_usd, 3000 + big + 7 + 9);
    cr_assert_eq(v.latency_ms_sum, 450 + 5001 + big + 1);
    cr_assert_eq(v.status, TG_JOB_IN_PROGRESS);
    cr_assert_eq(credits_of(a), 3 * CREDIT, "a call cost credits");
    v = read_ok(shm, a, &other);
    cr_assert_eq(v.calls, 1);
    cr_assert_eq(v.failed_calls, 0);
    cr_assert_eq(v.prompt_tokens, 1);
    cr_assert_eq(v.latency_ms_sum, 1);
    shm_test_close_segment(shm);
}

Test(jobs, completing_debits_one_credit_once_and_closes_for_good)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 3}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_job_id job = create_ok(shm, a, "t", 10).id;
    struct tg_shm_job_view v, again;

    add_call_ok(shm, a, &job, true, 10, 20, 30, 40);
    cr_assert_eq(tg_shm_job_check(shm, a, &job), TG_JOB_OK);
    v = close_ok(shm, a, &job, TG_JOB_COMPLETED, 777);
    cr_assert_eq(v.status, TG_JOB_COMPLETED);
    cr_assert_eq(v.completed_ns, 777);
    cr_assert(v.is_credit_applied);
    cr_assert_eq(v.calls, 1, "close reports the final totals");
    cr_assert_eq(v.cost_nano_usd, 30);
    cr_assert_eq(v.credits_after_micro, 2 * CREDIT);
    cr_assert_eq(credits_of(a), 2 * CREDIT);

    cr_assert_eq(tg_shm_job_close(shm, a, &job, TG_JOB_COMPLETED, 888, &again),
                 TG_JOB_CLOSED);
    cr_assert_eq(tg_shm_job_close(shm, a, &job, TG_JOB_FAILED, 888, &again),
                 TG_JOB_CLOSED);
    cr_assert_eq(tg_shm_job_close(shm, a, &job, TG_JOB_CANCELLED, 888, &again),
                 TG_JOB_CLOSED);
    cr_assert_eq(credits_of(a), 2 * CREDIT, "a second close debited again");
    cr_assert_eq(tg_shm_job_check(shm, a, &job), TG_JOB_CLOSED);

    /* A call that finished after the close still counts (tg_shm.h). */
    add_call_ok(shm, a, &job, false, 1, 2, 3, 4);
    again = read_ok(shm, a, &job);
    cr_assert_eq(again.status, TG_JOB_COMPLETED);
    cr_assert_eq(again.completed_ns, 777, "a later close moved completed_ns");
    cr_assert(again.is_credit_applied);
    cr_assert_eq(again.calls, 2);
    cr_assert_eq(again.failed_calls, 1);
    cr_assert_eq(again.prompt_tokens, 11);
    cr_assert_eq(again.completion_tokens, 22);
    cr_assert_eq(again.cost_nano_usd, 33);
    cr_assert_eq(again.latency_ms_sum, 44);
    cr_assert_eq(credits_of(a), 2 * CREDIT);
    cr_assert_eq(tg_shm_job_check(shm, a, &job), TG_JOB_CLOSED);
    shm_test_close_segment(shm);
}

Test(jobs, failing_or_cancelling_debits_nothing)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 2}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    const enum tg_job_status ends[2] = {TG_JOB_FAILED, TG_JOB_CANCELLED};
    struct tg_shm_job_view v;
    struct tg_job_id job;
    int i;

    for (i = 0; i < 2; i++) {
        job = create_ok(shm, a, "t", 10).id;
        v = close_ok(shm, a, &job, ends[i], 20 + i);
        cr_assert_eq(v.status, ends[i]);
        cr_assert_eq(v.completed_ns, 20 + i);
        cr_assert_not(v.is_credit_applied);
        cr_assert_eq(v.credits_after_micro, 2 * CREDIT);
        cr_assert_eq(credits_of(a), 2 * CREDIT, "status %d debited", ends[i]);
        cr_assert_eq(tg_shm_job_check(shm, a, &job), TG_JOB_CLOSED);
        cr_assert_eq(tg_shm_job_close(shm, a, &job, TG_JOB_COMPLETED, 30, &v),
                     TG_JOB_CLOSED, "a closed job completed after all");
        cr_assert_eq(credits_of(a), 2 * CREDIT);
        v = read_ok(shm, a, &job);
        cr_assert_eq(v.status, ends[i]);
        cr_assert_eq(v.completed_ns, 20 + i);
        cr_assert_not(v.is_credit_applied);
    }
    shm_test_close_segment(shm);
}

/* ---- racing processes --------------------------------------------------- */

#define RACE_WORKERS   8   /* more processes than cores: they get preempted */
#define RACE_EACH      300 /* jobs each worker creates and completes */
#define RACE_SHARED    800 /* jobs every worker tries to complete */
#define RACE_GRANT     100000 /* credits, as RACE_TEAM grants */
#define RACE_TEAM      "  a: {rpm: 10, tpm: 100, credits: 100000}\n"
#define RACE_AFTER_CAP (RACE_SHARED > RACE_EACH ? RACE_SHARED : RACE_EACH)

struct race_run {
    struct tg_shm *shm;
    struct tg_shm_team *team;
    struct tg_job_id *ids; /* shared */
    int64_t *after;        /* shared: credits_after_micro, per worker */
    int64_t *n_ok, *n_closed, *n_other; /* shared: results, per worker */
};

/* An OK close of this worker: its reported balance, and whether it says
 * what a completion says. */
static void count_completion(struct race_run *run, int index,
                             const struct tg_shm_job_view *v)
{
    if (v->status != TG_JOB_COMPLETED || !v->is_credit_applied)
        _exit(3);
    run->after[index * RACE_AFTER_CAP + run->n_ok[index]++] =
        v->credits_after_micro;
}

static void create_and_complete(int index, void *arg)
{
    struct race_run *run = arg;
    struct tg_shm_job_view v;
    int k;

    for (k = 0; k < RACE_EACH; k++) {
        if (tg_shm_job_create(run->shm, run->team, "race", k, &v) != TG_JOB_OK)
            _exit(2);
        run->ids[index * RACE_EACH + k] = v.id;
        if (tg_shm_job_close(run->shm, run->team, &v.id, TG_JOB_COMPLETED,
                             1000 + k, &v) == TG_JOB_OK)
            count_completion(run, index, &v);
        else
            run->n_other[index]++;
    }
}

/* Every worker closes every shared job, each starting at another one. */
static void complete_shared_jobs(int index, void *arg)
{
    struct race_run *run = arg;
    struct tg_shm_job_view v;
    enum tg_job_result rc;
    int k, j;

    for (k = 0; k < RACE_SHARED; k++) {
        j = (k + index * RACE_SHARED / RACE_WORKERS) % RACE_SHARED;
        rc = tg_shm_job_close(run->shm, run->team, &run->ids[j],
                              TG_JOB_COMPLETED, 5000 + j, &v);
        if (rc == TG_JOB_OK)
            count_completion(run, index, &v);
        else if (rc == TG_JOB_CLOSED)
            run->n_closed[index]++;
        else
            run->n_other[index]++;
    }
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* The balances the OK closes reported are those after each of the n
 * debits from `from`, once each: from - 1, from - 2, ... from - n credits. */
static void expect_balances_after(struct race_run *run, int64_t from, int64_t n)
{
    int64_t all[RACE_WORKERS * RACE_AFTER_CAP], k = 0;
    int i, j;

    for (i = 0; i < RACE_WORKERS; i++)
        for (j = 0; j < run->n_ok[i]; j++)
            all[k++] = run->after[i * RACE_AFTER_CAP + j];
    cr_assert_eq(k, n);
    qsort(all, (size_t)n, sizeof(*all), compare_int64);
    for (k = 0; k < n; k++)
        cr_assert_eq(all[k], from - (n - k) * CREDIT,
                     "the balances completing closes reported are not the "
                     "balances after each debit, once each: sorted, number "
                     "%lld of %lld is %lld, expected %lld",
                     (long long)k, (long long)n, (long long)all[k],
                     (long long)(from - (n - k) * CREDIT));
}

static void reset_counts(struct race_run *run)
{
    memset(run->n_ok, 0, 3 * RACE_WORKERS * sizeof(int64_t));
}

static int64_t sum_of(const int64_t *per_worker)
{
    int64_t sum = 0;
    int i;

    for (i = 0; i < RACE_WORKERS; i++)
        sum += per_worker[i];
    return sum;
}

/* Every job is there, completed once with its credit. */
static void expect_all_completed(struct race_run *run, int n)
{
    struct tg_shm_job_view v;
    int i, j;

    for (i = 0; i < n; i++) {
        v = read_ok(run->shm, run->team, &run->ids[i]);
        cr_assert_eq(v.status, TG_JOB_COMPLETED, "job %d", i);
        cr_assert(v.is_credit_applied, "job %d", i);
        for (j = 0; j < i; j++)
            cr_assert_not(is_same_id(&run->ids[i], &run->ids[j]),
                          "jobs %d and %d have one id", j, i);
    }
}

Test(jobs, racing_processes_complete_each_job_once_for_one_credit,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg = load_teams(RACE_TEAM);
    struct tg_shm *shm = shm_test_open_configured(cfg);
    const size_t ids_size = RACE_WORKERS * RACE_EACH * sizeof(struct tg_job_id);
    const size_t after_size = RACE_WORKERS * RACE_AFTER_CAP * sizeof(int64_t);
    int64_t *counts = shm_test_shared_alloc(3 * RACE_WORKERS * sizeof(int64_t));
    struct race_run run = {shm,
                           team_of(shm, cfg, "a"),
                           shm_test_shared_alloc(ids_size),
                           shm_test_shared_alloc(after_size),
                           counts,
                           counts + RACE_WORKERS,
                           counts + 2 * RACE_WORKERS};
    const int64_t grant = RACE_GRANT * CREDIT;
    int64_t n = RACE_WORKERS * RACE_EACH;
    int k;

    shm_test_run_workers(RACE_WORKERS, create_and_complete, &run,
                         "creating and completing worker");
    cr_assert_eq(sum_of(run.n_other), 0, "closes of a new job refused");
    cr_assert_eq(sum_of(run.n_ok), n);
    cr_assert_eq(credits_of(run.team), grant - n * CREDIT);
    expect_balances_after(&run, grant, n);
    expect_all_completed(&run, (int)n);

    for (k = 0; k < RACE_SHARED; k++)
        run.ids[k] = create_ok(shm, run.team, "shared", k).id;
    reset_counts(&run);
    shm_test_run_workers(RACE_WORKERS, complete_shared_jobs, &run,
                         "completing worker");
    cr_assert_eq(sum_of(run.n_other), 0, "closes neither OK nor CLOSED");
    cr_assert_eq(sum_of(run.n_ok), RACE_SHARED,
                 "jobs completed more than once or not at all");
    cr_assert_eq(sum_of(run.n_closed), (RACE_WORKERS - 1) * RACE_SHARED);
    cr_assert_eq(credits_of(run.team), grant - (n + RACE_SHARED) * CREDIT);
    expect_balances_after(&run, grant - n * CREDIT, RACE_SHARED);
    expect_all_completed(&run, RACE_SHARED);
    munmap(run.ids, ids_size);
    munmap(run.after, after_size);
    munmap(counts, 3 * RACE_WORKERS * sizeof(int64_t));
    shm_test_close_segment(shm);
}

/* ---- SIGKILL inside close ----------------------------------------------- */

/*
 * A worker creates KILL_JOBS jobs, recording each id as create returns it,
 * then completes them one after the other; the parent SIGKILLs it at a
 * random instant, mostly among the closes (aimed there: see kill_aim),
 * one round in four among the creates. A completion writes two places, the
 * team's credits and the job's slot: wherever the kill lands, once a later
 * job operation of the team ran, the credits debited must be exactly the
 * jobs completed, and neither the team's lock nor the table's may wedge.
 */

#define KILL_ROUNDS 300
/* On a loaded machine a kill's landing time drifts; rounds go on past
 * KILL_ROUNDS, up to this, until one has landed among the closes. */
#define KILL_MAX_ROUNDS 3000
#define KILL_JOBS       16    /* a worker creates these, then completes them */
#define KILL_LEAD_NS    20000 /* it spins this long before the first close */
#define KILL_ROUND_NS   1000000 /* closed_ns in round r: base + r * this + k */

/* One round, shared with the worker it kills and the fresh process. */
struct kill_round {
    struct tg_shm *shm;
    struct tg_shm_team *team;
    int64_t base_ns;
    const char *log_path;
    struct tg_job_id ids[KILL_JOBS]; /* recorded before they are closed */
    _Atomic int n_created;
    _Atomic int n_closed;   /* closes that returned */
    _Atomic int is_started; /* about to create */
    _Atomic int is_ready;   /* created all; about to spin, then close */
    _Atomic int64_t create_span_ns, close_span_ns; /* when they all ran */
    _Atomic int64_t fresh_raw; /* the balance the fresh process saw first */
    _Atomic int fresh_result;  /* its create and cancel */
};

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void spin_ns(int64_t ns)
{
    int64_t end = mono_ns() + ns;

    while (mono_ns() < end)
        ;
}

/* Creates KILL_JOBS jobs, recording each id before anything can close it,
 * then completes them in order until killed. Exit 2..: which step failed. */
static void create_then_complete(int index, void *arg)
{
    struct kill_round *r = arg;
    struct tg_shm_job_view v;
    int64_t start = mono_ns();
    int k;

    (void)index;
    atomic_store(&r->is_started, 1);
    for (k = 0; k < KILL_JOBS; k++) {
        if (tg_shm_job_create(r->shm, r->team, "kill", r->base_ns, &v) !=
            TG_JOB_OK)
            _exit(2);
        r->ids[k] = v.id;
        atomic_store(&r->n_created, k + 1);
    }
    atomic_store(&r->create_span_ns, mono_ns() - start);
    atomic_store(&r->is_ready, 1);
    spin_ns(KILL_LEAD_NS);
    start = mono_ns();
    for (k = 0; k < KILL_JOBS; k++) {
        if (tg_shm_job_close(r->shm, r->team, &r->ids[k], TG_JOB_COMPLETED,
                             r->base_ns + k, &v) != TG_JOB_OK)
            _exit(3);
        atomic_store(&r->n_closed, k + 1);
    }
    atomic_store(&r->close_span_ns, mono_ns() - start);
    for (;;)
        pause();
}

/* A fresh process: the balance as the team's slot holds it (taking over
 * the team lock of a killed holder), then a job operation of the team
 * (which finishes a close left half done), then a create and a cancel
 * (taking over the table lock). */
static void operate_in_fresh_process(int index, void *arg)
{
    struct kill_round *r = arg;
    struct tg_shm_job_view v;
    enum tg_job_result rc;

    (void)index;
    shm_test_enter_fresh_process(r->log_path);
    atomic_store(&r->fresh_raw, credits_of(r->team));
    rc = tg_shm_job_check(r->shm, r->team, &r->ids[0]);
    if (rc != TG_JOB_OK && rc != TG_JOB_CLOSED && rc != TG_JOB_NOT_FOUND)
        _exit(4);
    rc = tg_shm_job_create(r->shm, r->team, "fresh", r->base_ns, &v);
    if (rc == TG_JOB_OK)
        rc = tg_shm_job_close(r->shm, r->team, &v.id, TG_JOB_CANCELLED,
                              r->base_ns - 1, &v);
    atomic_store(&r->fresh_result, rc);
}

static void wait_for(pid_t pid, _Atomic int *flag)
{
    int status;

    while (!atomic_load(flag)) {
        if (shm_test_has_exited(pid, &status))
            cr_assert_fail("the worker ended before it got going (status %d)",
                           status);
        sched_yield();
    }
}

/* Kills the worker after it raised `flag` (a field of r), at a random
 * delay in [offset_ns, offset_ns + window_ns); returns the delay. */
static int64_t kill_at_random(struct kill_round *r, _Atomic int *flag,
                              int64_t offset_ns, int64_t window_ns,
                              unsigned *rand_state, int round, unsigned seed)
{
    int64_t delay_ns =
        offset_ns + (int64_t)(rand_r(rand_state) % (unsigned)(window_ns + 1));
    pid_t pid = shm_test_spawn(create_then_complete, 0, r);
    int status;

    wait_for(pid, flag);
    spin_ns(delay_ns);
    cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
    status = shm_test_wait_status(pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "round %d (seed %u): the worker stopped by itself (status %d)",
              round, seed, status);
    return delay_ns;
}

struct kill_tally {
    int killed_creating;    /* with jobs left to create */
    int killed_closing;     /* with closes left to do */
    int killed_after_debit; /* after a close debited, before it was counted */
};

/*
 * After the fresh process's job operation: every job the worker recorded
 * is there, completed (with its credit, at its closed_ns) for a prefix of
 * them and open after it; the balance dropped by exactly that many
 * credits, and the balance read before any job operation already said so.
 */
static void expect_one_credit_per_completion(struct kill_round *r,
                                             int64_t before, int round,
                                             unsigned seed,
                                             struct kill_tally *tally)
{
    int n = atomic_load(&r->n_created), closed = atomic_load(&r->n_closed);
    int64_t raw = atomic_load(&r->fresh_raw), debited;
    struct tg_shm_job_view v;
    int completed = 0, k;

    for (k = 0; k < n; k++) {
        v = read_ok(r->shm, r->team, &r->ids[k]);
        if (v.status == TG_JOB_COMPLETED) {
            cr_assert_eq(k, completed,
                         "round %d: job %d completed after an open one", round,
                         k);
            cr_assert(v.is_credit_applied, "round %d: job %d", round, k);
            cr_assert_eq(v.completed_ns, r->base_ns + k, "round %d", round);
            completed++;
        } else {
            cr_assert_eq(v.status, TG_JOB_IN_PROGRESS, "round %d: job %d",
                         round, k);
            cr_assert_not(v.is_credit_applied, "round %d: job %d", round, k);
        }
    }
    cr_assert(completed == closed || completed == closed + 1,
              "round %d (seed %u): %d closes returned, %d jobs completed",
              round, seed, closed, completed);
    debited = before - credits_of(r->team);
    cr_assert_eq(debited, completed * CREDIT,
                 "round %d (seed %u): %d jobs completed, %lld micro-credits "
                 "debited",
                 round, seed, completed, (long long)debited);
    cr_assert_eq(before - raw, debited,
                 "round %d (seed %u): before any job operation the balance "
                 "showed %lld micro-credits debited, after one %lld",
                 round, seed, (long long)(before - raw), (long long)debited);
    tally->killed_creating += n < KILL_JOBS;
    tally->killed_closing += n == KILL_JOBS && closed < n;
    tally->killed_after_debit += completed > closed;
}

/* The round's open jobs are cancelled, which costs nothing: evictable. */
static void cancel_the_rest(struct kill_round *r, int round)
{
    int64_t before = credits_of(r->team);
    int k;

    for (k = atomic_load(&r->n_closed); k < atomic_load(&r->n_created); k++)
        if (read_ok(r->shm, r->team, &r->ids[k]).status == TG_JOB_IN_PROGRESS)
            close_ok(r->shm, r->team, &r->ids[k], TG_JOB_CANCELLED,
                     r->base_ns + k);
    cr_assert_eq(credits_of(r->team), before, "round %d: cancelling debited",
                 round);
}

static void reset_round(struct kill_round *r, int64_t base_ns)
{
    r->base_ns = base_ns;
    memset(r->ids, 0, sizeof(r->ids));
    atomic_store(&r->n_created, 0);
    atomic_store(&r->n_closed, 0);
    atomic_store(&r->is_started, 0);
    atomic_store(&r->is_ready, 0);
    atomic_store(&r->fresh_raw, -1);
    atomic_store(&r->fresh_result, -1);
}

/*
 * Where kills land. Those of the creates: up to twice their span after the
 * worker starts. Those of the closes: offset plus up to span after the
 * worker is ready, with the offset steered after each round towards the
 * closes (a kill takes microseconds to land, which no fixed delay knows).
 */
struct kill_aim {
    int64_t create_ns;           /* the creates' span, as last measured */
    int64_t offset_ns, close_ns; /* the closes' span, as last measured */
};

static int64_t kill_one_round(struct kill_round *r, struct kill_aim *aim,
                              unsigned *rand_state, int round, unsigned seed)
{
    if (round % 4 == 3)
        return kill_at_random(r, &r->is_started, 0, 2 * aim->create_ns,
                              rand_state, round, seed);
    return kill_at_random(r, &r->is_ready, aim->offset_ns, aim->close_ns,
                          rand_state, round, seed);
}

static void steer_aim(struct kill_round *r, struct kill_aim *aim, int round)
{
    int created = atomic_load(&r->n_created),
        closed = atomic_load(&r->n_closed);

    if (created == KILL_JOBS)
        aim->create_ns = atomic_load(&r->create_span_ns);
    if (round % 4 == 3)
        return;
    if (closed == KILL_JOBS) {
        aim->close_ns = atomic_load(&r->close_span_ns);
        aim->offset_ns -= aim->close_ns / 4;
        if (aim->offset_ns < 0)
            aim->offset_ns = 0;
    } else if (closed == 0) {
        aim->offset_ns += aim->close_ns / 4;
    }
}

Test(jobs, sigkill_inside_close_never_splits_the_credit_from_the_completion,
     .timeout = SHM_TEST_TIMEOUT_S)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 1000000}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct kill_round *r = shm_test_shared_alloc(sizeof(*r));
    struct kill_aim aim = {100000, KILL_LEAD_NS, 10000};
    char log_path[256];
    unsigned seed = shm_test_seed(), rand_state = seed;
    int64_t t0 = tg_shm_now_ns(), before, delay_ns;
    struct kill_tally tally = {0};
    int round, recoveries;

    snprintf(log_path, sizeof(log_path), "%s/fresh.log", shm_test_fx.dir);
    r->shm = shm;
    r->team = team_of(shm, cfg, "a");
    r->log_path = log_path;
    cr_log_info("jobs kill: seed %u (set TG_TEST_SEED to replay)", seed);
    for (round = 0; round < KILL_ROUNDS ||
                    (tally.killed_closing == 0 && round < KILL_MAX_ROUNDS);
         round++) {
        reset_round(r, t0 + round * KILL_ROUND_NS);
        before = credits_of(r->team);
        delay_ns = kill_one_round(r, &aim, &rand_state, round, seed);
        steer_aim(r, &aim, round);
        shm_test_expect_fresh_lock(operate_in_fresh_process, r, "team", round,
                                   seed, (long)(delay_ns / 1000));
        cr_assert_eq(atomic_load(&r->fresh_result), TG_JOB_OK,
                     "round %d: the fresh process's create and cancel", round);
        expect_one_credit_per_completion(r, before, round, seed, &tally);
        cancel_the_rest(r, round);
    }
    recoveries = shm_test_count_lines_with(log_path, "recovered the lock");
    cr_log_info("jobs kill: %d rounds: killed %d times creating, %d closing "
                "(%d inside a close after its debit); %d lock recoveries; "
                "closes aimed at +%lld us, span %lld us",
                round, tally.killed_creating, tally.killed_closing,
                tally.killed_after_debit, recoveries,
                (long long)(aim.offset_ns / 1000),
                (long long)(aim.close_ns / 1000));
    cr_assert_gt(tally.killed_closing, 0,
                 "no kill landed among the closes: the test proved nothing");
    cr_assert_gt(recoveries, 0,
                 "no kill landed while a lock was held: the test proved "
                 "nothing");
    munmap(r, sizeof(*r));
    shm_test_close_segment(shm);
}

/* ---- a full table ------------------------------------------------------- */

/* Which of the original jobs are still there: the owner reads each. */
static void expect_present(struct tg_shm *shm, struct tg_shm_team **owner,
                           const struct tg_job_id *ids, const bool *is_gone)
{
    struct tg_shm_job_view v;
    int i;

    for (i = 0; i < TG_SHM_JOB_SLOTS; i++)
        cr_assert_eq(tg_shm_job_read(shm, owner[i], &ids[i], &v),
                     is_gone[i] ? TG_JOB_NOT_FOUND : TG_JOB_OK, "job %d", i);
}

Test(jobs, full_table_refuses_then_evicts_the_job_closed_longest_ago)
{
    struct tg_config *cfg =
        load_teams("  a: {rpm: 10, tpm: 100, credits: 9}\n"
                   "  b: {rpm: 10, tpm: 100, credits: 9}\n");
    struct tg_shm *shm = shm_test_open_configured(cfg);
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_team *b = team_of(shm, cfg, "b");
    struct tg_job_id ids[TG_SHM_JOB_SLOTS];
    struct tg_shm_team *owner[TG_SHM_JOB_SLOTS];
    bool is_gone[TG_SHM_JOB_SLOTS] = {0}, is_taken[TG_SHM_JOB_SLOTS] = {0};
    /* Four jobs closed at times out of their order: a's job 20 longest
     * ago, then b's 31, a's 10, b's 41. Creates evict them in that order,
     * a's create evicting b's job and b's create a's in the middle. */
    const int closed[4] = {10, 20, 31, 41};
    const int64_t closed_ns[4] = {3000, 1000, 2000, 4000};
    const enum tg_job_status status[4] = {TG_JOB_COMPLETED, TG_JOB_FAILED,
                                          TG_JOB_CANCELLED, TG_JOB_COMPLETED};
    const int evicted[4] = {20, 31, 10, 41};
    struct tg_shm_team *by[4] = {a, a, b, b};
    struct tg_shm_job_view v;
    int i;

    for (i = 0; i < TG_SHM_JOB_SLOTS; i++) {
        owner[i] = i % 2 == 0 ? a : b;
        ids[i] = create_ok(shm, owner[i], "fill", i).id;
        cr_assert_not(is_taken[slot_of_id(&ids[i])], "job %d: slot taken", i);
        is_taken[slot_of_id(&ids[i])] = true;
    }
    cr_assert_eq(tg_shm_job_create(shm, a, "t", 0, &v), TG_JOB_TABLE_FULL);
    cr_assert_eq(tg_shm_job_create(shm, b, "t", 0, &v), TG_JOB_TABLE_FULL);

    for (i = 0; i < 4; i++)
        close_ok(shm, owner[closed[i]], &ids[closed[i]], status[i],
                 closed_ns[i]);
    for (i = 0; i < 4; i++) {
        v = create_ok(shm, by[i], "new", 9000 + i);
        cr_assert_eq(slot_of_id(&v.id), slot_of_id(&ids[evicted[i]]),
                     "create %d took slot %u, not job %d's", i,
                     slot_of_id(&v.id), evicted[i]);
        is_gone[evicted[i]] = true;
        expect_refused_everywhere(shm, owner[evicted[i]], &ids[evicted[i]],
                                  TG_JOB_NOT_FOUND, "an evicted job");
        cr_assert_eq(read_ok(shm, by[i], &v.id).created_ns, 9000 + i);
    }
    cr_assert_eq(tg_shm_job_create(shm, a, "t", 0, &v), TG_JOB_TABLE_FULL,
                 "an open job was evicted");
    expect_present(shm, owner, ids, is_gone);
    cr_assert_eq(credits_of(a), 8 * CREDIT, "eviction moved a's credits");
    cr_assert_eq(credits_of(b), 8 * CREDIT, "eviction moved b's credits");
    shm_test_close_segment(shm);
}

/* ---- reload and restart ------------------------------------------------- */

#define SURVIVE_TEAMS                         \
    "  a: {rpm: 10, tpm: 100, credits: 10}\n" \
    "  b: {rpm: 10, tpm: 100, credits: 5}\n"
#define SURVIVE_GONE "  gone: {rpm: 10, tpm: 100, credits: 3}\n"
#define SURVIVE_RELOADED                      \
    "  a: {rpm: 50, tpm: 900, credits: 20}\n" \
    "  c: {rpm: 10, tpm: 100, credits: 1}\n"  \
    "  b: {rpm: 10, tpm: 100, credits: 5}\n"

enum { J_DONE, J_OPEN, J_FAILED, J_GONE_DONE, J_GONE_OPEN, N_SURVIVORS };

static const char *const survivor_team[N_SURVIVORS] = {"a", "a", "b", "gone",
                                                       "gone"};

struct survivors {
    struct tg_job_id ids[N_SURVIVORS];
    struct tg_shm_job_view views[N_SURVIVORS]; /* as read when made */
};

static void make_survivors(struct tg_shm *shm, const struct tg_config *cfg,
                           struct survivors *s)
{
    struct tg_shm_team *a = team_of(shm, cfg, "a");
    struct tg_shm_team *b = team_of(shm, cfg, "b");
    struct tg_shm_team *gone = team_of(shm, cfg, "gone");
    int i;

    s->ids[J_DONE] = create_ok(shm, a, "done", 1).id;
    add_call_ok(shm, a, &s->ids[J_DONE], true, 10, 20, 30, 40);
    add_call_ok(shm, a, &s->ids[J_DONE], false, 1, 0, 0, 9);
    close_ok(shm, a, &s->ids[J_DONE], TG_JOB_COMPLETED, 500);
    s->ids[J_OPEN] = create_ok(shm, a, "open", 2).id;
    add_call_ok(shm, a, &s->ids[J_OPEN], true, 5, 6, 7, 8);
    s->ids[J_FAILED] = create_ok(shm, b, "failed", 3).id;
    add_call_ok(shm, b, &s->ids[J_FAILED], false, 2, 0, 1, 3);
    close_ok(shm, b, &s->ids[J_FAILED], TG_JOB_FAILED, 600);
    s->ids[J_GONE_DONE] = create_ok(shm, gone, "gone", 4).id;
    add_call_ok(shm, gone, &s->ids[J_GONE_DONE], true, 1, 1, 1, 1);
    close_ok(shm, gone, &s->ids[J_GONE_DONE], TG_JOB_COMPLETED, 100);
    s->ids[J_GONE_OPEN] = create_ok(shm, gone, "gone-open", 5).id;
    for (i = 0; i < N_SURVIVORS; i++)
        s->views[i] =
            read_ok(shm, team_of(shm, cfg, survivor_team[i]), &s->ids[i]);
}

/* Each job reads as it was made, by its team in cfg. */
static void expect_survivors(struct tg_shm *shm, const struct tg_config *cfg,
                             const struct survivors *s, int first, int end,
                             const char *when)
{
    struct tg_shm_job_view v;
    char what[96];
    int i;

    for (i = first; i < end; i++) {
        v = read_ok(shm, team_of(shm, cfg, survivor_team[i]), &s->ids[i]);
        snprintf(what, sizeof(what), "%s: job %d", when, i);
        expect_same_job(&v, &s->views[i], what);
    }
}

Test(jobs, jobs_survive_reload_and_restart)
{
    struct tg_config *first = load_teams(SURVIVE_TEAMS SURVIVE_GONE);
    struct tg_config *reloaded = load_teams(SURVIVE_RELOADED SURVIVE_GONE);
    struct tg_shm *shm = shm_test_open_configured(first);
    struct survivors s;

    make_survivors(shm, first, &s);
    shm_test_configure(shm, reloaded);
    expect_survivors(shm, reloaded, &s, 0, N_SURVIVORS, "after the reload");
    cr_assert_eq(credits_of(team_of(shm, reloaded, "a")), 19 * CREDIT);
    cr_assert_eq(credits_of(team_of(shm, reloaded, "gone")), 2 * CREDIT);

    shm_test_close_segment(shm);
    shm = shm_test_open_configured(reloaded);
    expect_survivors(shm, reloaded, &s, 0, N_SURVIVORS, "after the restart");
    cr_assert_eq(credits_of(team_of(shm, reloaded, "a")), 19 * CREDIT);
    cr_assert_eq(
        tg_shm_job_check(shm, team_of(shm, reloaded, "a"), &s.ids[J_OPEN]),
        TG_JOB_OK, "the open job cannot be used after a restart");
    cr_assert_eq(
        tg_shm_job_check(shm, team_of(shm, reloaded, "a"), &s.ids[J_DONE]),
        TG_JOB_CLOSED);
    close_ok(shm, team_of(shm, reloaded, "a"), &s.ids[J_OPEN], TG_JOB_COMPLETED,
             700);
    cr_assert_eq(credits_of(team_of(shm, reloaded, "a")), 18 * CREDIT);
    shm_test_close_segment(shm);
}

/* Nobody can reach the jobs of a team the config no longer has, so a full
 * start frees their slots. */
Test(jobs, removed_teams_jobs_are_dropped_at_start)
{
    struct tg_config *first = load_teams(SURVIVE_TEAMS SURVIVE_GONE);
    struct tg_config *without = load_teams(SURVIVE_RELOADED);
    struct tg_shm *shm = shm_test_open_configured(first);
    const char *const teams[3] = {"a", "b", "c"};
    struct tg_shm_team *a;
    struct survivors s;
    int i, j, n;

    make_survivors(shm, first, &s);
    shm_test_close_segment(shm);
    shm = shm_test_open_configured(without);
    a = team_of(shm, without, "a");
    expect_survivors(shm, without, &s, 0, J_GONE_DONE, "without team gone");
    for (i = J_GONE_DONE; i < N_SURVIVORS; i++)
        for (j = 0; j < 3; j++)
            expect_refused_everywhere(shm, team_of(shm, without, teams[j]),
                                      &s.ids[i], TG_JOB_NOT_FOUND,
                                      "a removed team's job");
    /* Their slots are free again: the table holds the others' jobs only. */
    for (n = 0; n < TG_SHM_JOB_SLOTS - J_GONE_DONE; n++)
        create_ok(shm, a, "filler", 1000);
    expect_survivors(shm, without, &s, 0, J_GONE_DONE, "table full");
    /* Then a's completed job and b's failed one; never the open one. */
    cr_assert_eq(fill_table(shm, a, 1002), 2);
    expect_refused_everywhere(shm, a, &s.ids[J_DONE], TG_JOB_NOT_FOUND,
                              "a's evicted job");
    expect_refused_everywhere(shm, team_of(shm, without, "b"), &s.ids[J_FAILED],
                              TG_JOB_NOT_FOUND, "b's evicted job");
    expect_survivors(shm, without, &s, J_OPEN, J_OPEN + 1, "after evictions");
    shm_test_close_segment(shm);
}
