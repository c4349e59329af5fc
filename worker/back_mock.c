/*
 * back_mock.c - the in-process mock provider: deterministic, no network.
 *
 * It answers with the text of the last user message. Usage counts are
 * ceil(characters / 4) for the prompt (all message text) and for the answer,
 * characters being Unicode code points. max_tokens cuts the answer to
 * max_tokens * 4 characters (stop reason max_tokens); a stop sequence cuts
 * it before the first match (stop reason stop_sequence).
 *
 * Like a real provider it answers from the event loop, never from inside
 * start(): a non-streaming call in one timer tick, a streaming one a word
 * per tick (a word with the spaces after it), stream_delay_ms apart.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "tg.h"
#include "tg_back.h"

struct mock_call {
    struct tg_call *call;
    struct event *timer;
    const char *text; /* the whole answer */
    size_t len;
    size_t pos; /* how much of it has been sent */
    enum tg_stop_reason stop_reason;
    struct tg_usage usage;
};

static int64_t count_chars(const char *s, size_t n)
{
    int64_t chars = 0;
    size_t i;

    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            chars++;
    return chars;
}

static int64_t tokens_of(int64_t chars)
{
    return (chars + 3) / 4;
}

/* Byte length of the first `chars` code points of s[0..n). */
static size_t prefix_bytes(const char *s, size_t n, int64_t chars)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars-- == 0)
            return i;
    return n;
}

static const struct tg_str *last_user_text(const struct tg_chat *chat)
{
    size_t i = chat->n_messages;

    while (i-- > 0)
        if (chat->messages[i].role == TG_ROLE_USER)
            return &chat->messages[i].text;
    return NULL;
}

static void apply_stop_sequences(struct mock_call *m, const struct tg_chat *c)
{
    size_t i;

    for (i = 0; i < c->n_stop; i++) {
        const char *hit =
            memmem(m->text, m->len, c->stop[i].ptr, c->stop[i].len);
        if (hit != NULL && c->stop[i].len > 0) {
            m->len = (size_t)(hit - m->text);
            m->stop_reason = TG_STOP_SEQUENCE;
        }
    }
}

static void compose_answer(struct mock_call *m, const struct tg_chat *c)
{
    const struct tg_str *user = last_user_text(c);
    int64_t prompt_chars = 0, chars;
    size_t i;

    for (i = 0; i < c->n_messages; i++)
        prompt_chars +=
            count_chars(c->messages[i].text.ptr, c->messages[i].text.len);
    m->text = user ? user->ptr : "";
    m->len = user ? user->len : 0;
    m->stop_reason = TG_STOP_END;
    apply_stop_sequences(m, c);
    chars = count_chars(m->text, m->len);
    if (c->has_max_tokens && tokens_of(chars) > c->max_tokens) {
        m->len = prefix_bytes(m->text, m->len, c->max_tokens * 4);
        m->stop_reason = TG_STOP_MAX_TOKENS;
        chars = c->max_tokens * 4;
    }
    m->usage.prompt_tokens = tokens_of(prompt_chars);
    m->usage.completion_tokens = tokens_of(chars);
}

/* Length of the next streamed piece: a word and the spaces after it. */
static size_t next_word(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && s[i] != ' ' && s[i] != '\n')
        i++;
    while (i < n && (s[i] == ' ' || s[i] == '\n'))
        i++;
    return i;
}

static void mock_release(struct mock_call *m)
{
    m->call->back_state = NULL;
    event_free(m->timer);
    free(m);
}

static int emit(struct mock_call *m, const struct tg_event *ev)
{
    if (m->call->first_byte_us == 0)
        m->call->first_byte_us = tg_now_us();
    return m->call->on_event(m->call, ev);
}

/* The tail of every call: stop reason, usage, done. */
static void finish(struct mock_call *m)
{
    struct tg_event stop = {.type = TG_EV_STOP, .stop_reason = m->stop_reason};
    struct tg_event usage = {.type = TG_EV_USAGE, .usage = m->usage};
    struct tg_event done = {.type = TG_EV_DONE};
    struct tg_call *call = m->call;

    if (emit(m, &stop) != TG_OK || emit(m, &usage) != TG_OK) {
        mock_release(m);
        return;
    }
    /* The terminal event may free the caller's request; release first. */
    mock_release(m);
    call->on_event(call, &done);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mock_call *m = arg;
    const struct tg_chat *chat = m->call->chat;
    struct tg_event text = {.type = TG_EV_TEXT};
    struct timeval delay = {0, 0};
    size_t n = m->len - m->pos;

    (void)fd;
    (void)what;
    if (chat->is_stream)
        n = next_word(m->text + m->pos, n);
    text.text.ptr = m->text + m->pos;
    text.text.len = n;
    m->pos += n;
    if (n > 0 && emit(m, &text) != TG_OK) {
        mock_release(m);
        return;
    }
    if (m->pos < m->len) {
        delay.tv_sec = m->call->model->provider->stream_delay_ms / 1000;
        delay.tv_usec = m->call->model->provider->stream_delay_ms % 1000 * 1000;
        evtimer_add(m->timer, &delay);
        return;
    }
    finish(m);
}

static int mock_start(struct tg_call *call)
{
    struct mock_call *m = calloc(1, sizeof(*m));
    struct timeval now = {0, 0};

    if (m == NULL)
        return TG_NOMEM;
    m->call = call;
    m->timer = evtimer_new(call->base, on_tick, m);
    if (m->timer == NULL) {
        free(m);
        return TG_NOMEM;
    }
    compose_answer(m, call->chat);
    call->back_state = m;
    evtimer_add(m->timer, &now);
    return TG_OK;
}

static void mock_cancel(struct tg_call *call)
{
    if (call->back_state != NULL)
        mock_release(call->back_state);
}

const struct tg_back tg_back_mock = {
    .start = mock_start,
    .cancel = mock_cancel,
};
