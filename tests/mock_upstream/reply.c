/*
 * reply.c - the deterministic answer every provider format gives, so that a
 * test can predict it from the request alone.
 *
 * After a tool result the answer is "tool said: <result>"; when tools are
 * offered and the caller says "use tool" (or the tool choice forces one) it
 * is one call to the first or named tool with {"query": <last user text>};
 * otherwise it echoes the last user text. A model named "say-<text>"
 * always answers <text>, for tests that need an answer the request cannot
 * carry (a classification's class). Tokens are code points / 4, rounded up,
 * and a max_tokens below the answer's tokens cuts the text.
 */
#include <event2/buffer.h>
#include <strings.h>
#include <string.h>

#include "mock.h"
#include "tg.h"

#define CHARS_PER_TOKEN  4
#define TOOL_RESULT_TEXT "tool said: "
#define USE_TOOL_WORDS   "use tool"
#define SAY_PREFIX       "say-"

static int64_t tokens_of(size_t chars)
{
    return (int64_t)((chars + CHARS_PER_TOKEN - 1) / CHARS_PER_TOKEN);
}

size_t mock_code_points(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

/* Byte offset of code point number k (n when the text is shorter). */
static size_t offset_of(const char *s, size_t n, size_t k)
{
    size_t i = 0;

    while (i < n && k > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        k--;
    }
    return i;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

size_t mock_next_word(const char *s, size_t n, size_t pos)
{
    size_t i = pos;

    if (pos == 0)
        while (i < n && is_space(s[i]))
            i++;
    while (i < n && !is_space(s[i]))
        i++;
    while (i < n && is_space(s[i]))
        i++;
    return i;
}

void mock_split3(const char *s, size_t n, size_t cut[2])
{
    size_t chars = mock_code_points(s, n);

    cut[0] = offset_of(s, n, chars / 3);
    cut[1] = offset_of(s, n, 2 * chars / 3);
}

/* Case-insensitive search that tolerates NUL bytes in the text. */
static bool says_use_tool(struct tg_str text)
{
    size_t w = strlen(USE_TOOL_WORDS);

    for (size_t i = 0; i + w <= text.len; i++)
        if (strncasecmp(text.ptr + i, USE_TOOL_WORDS, w) == 0)
            return true;
    return false;
}

static bool wants_tool(const struct mock_convo *cv)
{
    if (cv->choice == MOCK_CHOICE_NONE)
        return false;
    if (cv->choice == MOCK_CHOICE_NAMED)
        return true;
    return cv->n_tools > 0 &&
           (cv->choice == MOCK_CHOICE_ANY || says_use_tool(cv->last_user_text));
}

/* {"query":"<last user text>"} into the arena. */
static int tool_call(struct mock_call *c)
{
    const struct mock_convo *cv = &c->convo;
    struct mock_reply *r = &c->reply;
    struct evbuffer *buf = evbuffer_new();
    size_t n;
    char *args;

    if (buf == NULL)
        return -1;
    TG_ADD_LIT(buf, "{\"query\":");
    tg_json_write_str(buf, cv->last_user_text.ptr, cv->last_user_text.len);
    TG_ADD_LIT(buf, "}");
    n = evbuffer_get_length(buf);
    args = tg_arena_alloc(&c->arena, n + 1);
    if (args != NULL) {
        evbuffer_copyout(buf, args, n);
        args[n] = '\0';
    }
    evbuffer_free(buf);
    if (args == NULL)
        return -1;
    r->is_tool = true;
    r->tool_name =
        cv->choice == MOCK_CHOICE_NAMED ? cv->choice_name : cv->first_tool;
    r->arguments = (struct tg_str){args, n};
    r->stop = MOCK_STOP_TOOL;
    r->completion_tokens = tokens_of(mock_code_points(args, n));
    return 0;
}

/* Cuts the text to max_tokens when it has more tokens than that. */
static void text_answer(struct mock_call *c, struct tg_str text)
{
    const struct mock_convo *cv = &c->convo;
    struct mock_reply *r = &c->reply;
    size_t chars = mock_code_points(text.ptr, text.len);

    r->stop = MOCK_STOP_END;
    if (cv->has_max_tokens && cv->max_tokens < tokens_of(chars)) {
        text.len = offset_of(text.ptr, text.len,
                             (size_t)cv->max_tokens * CHARS_PER_TOKEN);
        chars = mock_code_points(text.ptr, text.len);
        r->stop = MOCK_STOP_LENGTH;
    }
    r->text = text;
    r->completion_tokens = tokens_of(chars);
}

int mock_reply_compute(struct mock_call *c)
{
    const struct mock_convo *cv = &c->convo;
    struct tg_str text = {"", 0};

    memset(&c->reply, 0, sizeof(c->reply));
    c->reply.prompt_tokens = tokens_of(cv->prompt_chars);
    if (c->model != NULL &&
        strncmp(c->model, SAY_PREFIX, strlen(SAY_PREFIX)) == 0) {
        text_answer(c, (struct tg_str){c->model + strlen(SAY_PREFIX),
                                       strlen(c->model) - strlen(SAY_PREFIX)});
        return 0;
    }
    if (cv->is_tool_result) {
        if (mock_append(c, &text,
                        (struct tg_str){TOOL_RESULT_TEXT,
                                        strlen(TOOL_RESULT_TEXT)}) != 0 ||
            mock_append(c, &text, cv->tool_result) != 0)
            return -1;
        text_answer(c, text);
        return 0;
    }
    if (wants_tool(cv))
        return tool_call(c);
    text_answer(c, cv->last_user_text.ptr ? cv->last_user_text : text);
    return 0;
}
