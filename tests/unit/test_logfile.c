/*
 * test_logfile.c - unit tests of the JSON-lines log files (worker/logfile.c):
 * lines written at once when not batched; batched lines waiting for the end
 * of the loop's pass, then going out together; a batch over the size bound
 * written at once; close and reopen writing what waits; and a failed write
 * counting every line of its batch lost.
 */
#include <criterion/criterion.h>

#include "tg_logfile.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void make_path(void)
{
    snprintf(path, sizeof(path), "/tmp/tg-logfile-test-%d.log", (int)getpid());
    unlink(path);
}

static void remove_path(void)
{
    unlink(path);
}

TestSuite(logfile, .init = make_path, .fini = remove_path);

static long file_size(const char *p)
{
    FILE *f = fopen(p, "r");
    long n;

    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fclose(f);
    return n;
}

static void write_line(struct tg_logfile *log, const char *line)
{
    struct evbuffer *b = evbuffer_new();

    cr_assert(tg_logfile_wants(log));
    evbuffer_add(b, line, strlen(line));
    tg_logfile_write(log, b);
    cr_expect_eq(evbuffer_get_length(b), 0, "the line was taken");
    evbuffer_free(b);
}

Test(logfile, unbatched_lines_are_written_at_once)
{
    struct tg_logfile log = TG_LOGFILE_INIT("usage_log");

    tg_logfile_open(&log, path);
    write_line(&log, "{\"a\":1}\n");
    cr_expect_eq(file_size(path), 8);
    tg_logfile_close(&log);
}

Test(logfile, batched_lines_go_out_together_at_the_end_of_the_pass)
{
    struct event_base *base = event_base_new();
    struct tg_logfile log = TG_LOGFILE_INIT("usage_log");

    tg_logfile_open(&log, path);
    cr_assert_eq(tg_logfile_batch(&log, base), 0);
    write_line(&log, "{\"a\":1}\n");
    write_line(&log, "{\"b\":2}\n");
    write_line(&log, "{\"c\":3}\n");
    cr_expect_eq(file_size(path), 0, "nothing before the pass ends");
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_expect_eq(file_size(path), 24);
    write_line(&log, "{\"d\":4}\n");
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_expect_eq(file_size(path), 32, "the next pass writes again");
    tg_logfile_close(&log);
    event_base_free(base);
}

Test(logfile, a_batch_over_the_bound_is_written_at_once)
{
    struct event_base *base = event_base_new();
    struct tg_logfile log = TG_LOGFILE_INIT("usage_log");
    char *line = malloc(TG_LOGFILE_BATCH_MAX / 2 + 1);
    long half = TG_LOGFILE_BATCH_MAX / 2;

    memset(line, 'x', (size_t)half - 1);
    line[half - 1] = '\n';
    line[half] = '\0';
    tg_logfile_open(&log, path);
    cr_assert_eq(tg_logfile_batch(&log, base), 0);
    write_line(&log, line);
    cr_expect_eq(file_size(path), 0);
    write_line(&log, line);
    cr_expect_eq(file_size(path), 2 * half, "written when the bound is met");
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_expect_eq(file_size(path), 2 * half, "and only once");
    tg_logfile_close(&log);
    event_base_free(base);
    free(line);
}

Test(logfile, close_and_reopen_write_what_waits)
{
    struct event_base *base = event_base_new();
    struct tg_logfile log = TG_LOGFILE_INIT("access_log");
    char rotated[80];

    snprintf(rotated, sizeof(rotated), "%s.1", path);
    tg_logfile_open(&log, path);
    cr_assert_eq(tg_logfile_batch(&log, base), 0);
    write_line(&log, "{\"old\":1}\n");
    /* logrotate renames, then SIGUSR1: the waiting line is the old file's. */
    cr_assert_eq(rename(path, rotated), 0);
    tg_logfile_reopen(&log);
    cr_expect_eq(file_size(rotated), 10);
    write_line(&log, "{\"new\":2}\n");
    cr_expect_eq(file_size(path), 0);
    tg_logfile_close(&log);
    cr_expect_eq(file_size(path), 10, "close wrote what waited");
    event_base_free(base);
    unlink(rotated);
}

Test(logfile, a_failed_write_counts_every_line_of_its_batch_lost)
{
    struct event_base *base = event_base_new();
    struct tg_logfile log = TG_LOGFILE_INIT("usage_log");
    _Atomic uint64_t lost = 0;

    log.lost = &lost;
    tg_logfile_open(&log, "/dev/full"); /* opens; every write fails */
    cr_assert_eq(tg_logfile_batch(&log, base), 0);
    write_line(&log, "{\"a\":1}\n");
    write_line(&log, "{\"b\":2}\n");
    write_line(&log, "{\"c\":3}\n");
    cr_expect_eq(lost, 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_expect_eq(lost, 3);
    tg_logfile_close(&log);
    cr_expect_eq(lost, 3, "nothing left to lose twice");
    event_base_free(base);
}
