/*
 * http_reader.c - reads HTTP/1.1 answers from bytes split anywhere (see
 * tg_http_reader.h).
 *
 * A state machine with one step per state. The head is copied line by line
 * into the lent buffer and each line is checked and read as soon as its LF
 * arrives; chunk-size and trailer lines are checked byte by byte and never
 * stored. So every decision depends on the bytes alone and never on how
 * they were split: the same stream gives the same events fed whole or byte
 * by byte (the fuzz target checks this). Body bytes are never copied: a
 * BODY event points into the bytes fed. Lines may end with CRLF or a bare
 * LF (RFC 9112, 2.2); everything else is strict, since a reader that
 * guesses at framing is how responses get smuggled.
 */
#include "tg_http_reader.h"

#include <string.h>

#define HTTP_PREFIX     "HTTP/"
#define HTTP_PREFIX_LEN (sizeof(HTTP_PREFIX) - 1)
/* "HTTP/1.1 200": the shortest status line. */
#define STATUS_LINE_MIN 12
/* A Content-Length or chunk size must stay below this: the sums of body
 * offsets can then never overflow. */
#define SIZE_LIMIT ((uint64_t)1 << 62)

/* How far a take_line() got. */
enum line_result {
    LINE_PARTIAL, /* every byte is stored; the line goes on */
    LINE_DONE,    /* a whole line is stored */
    LINE_NO_ROOM, /* the buffer is full and the line goes on */
};

static enum tg_http_event fail(struct tg_http_reader *r, const char *why)
{
    r->state = TG_HTTP_ST_ERROR;
    r->error = why;
    return TG_HTTP_ERROR;
}

static bool is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values and reason phrases: HTAB, visible ASCII, space, obs-text. */
static bool is_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\t' && (c < ' ' || c == 0x7f))
            return false;
    }
    return true;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool equals_nocase(const char *s, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n && word[i] != '\0'; i++)
        if (lower(s[i]) != lower(word[i]))
            return false;
    return i == n && word[i] == '\0';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void tg_http_reader_init(struct tg_http_reader *r)
{
    r->state = TG_HTTP_ST_IDLE;
    r->status = 0;
    r->is_keep_alive = false;
    r->head_len = 0;
    r->fill = 0;
    r->n_answers = 0;
    r->error = NULL;
    r->head = NULL;
    r->head_cap = 0;
}

void tg_http_reader_lend(struct tg_http_reader *r, char *buf, size_t cap)
{
    r->head = buf;
    r->head_cap = buf == NULL              ? 0
                  : cap < TG_HTTP_HEAD_MAX ? cap
                                           : TG_HTTP_HEAD_MAX;
    if (buf != NULL)
        return;
    r->head_len = 0;
    /* A head half read is gone with its buffer: no answer can follow. */
    if (r->state == TG_HTTP_ST_HEAD) {
        r->state = TG_HTTP_ST_ERROR;
        r->error = "the head's buffer was taken back";
    }
}

bool tg_http_reader_wants_buffer(const struct tg_http_reader *r)
{
    return r->head == NULL &&
           (r->state == TG_HTTP_ST_IDLE || r->state == TG_HTTP_ST_HEAD);
}

/* Forgets the last answer (or a 1xx one) and reads a new head. */
static void begin_answer(struct tg_http_reader *r)
{
    r->state = TG_HTTP_ST_HEAD;
    r->status = 0;
    r->minor = 0;
    r->is_keep_alive = false;
    r->has_length = false;
    r->is_chunked = false;
    r->has_close = false;
    r->has_keep_alive = false;
    r->length = 0;
    r->remaining = 0;
    r->line_start = 0;
    r->head_len = 0;
    r->fill = 0;
}

/* Copies bytes into head[] up to and including the next LF. */
static enum line_result take_line(struct tg_http_reader *r, const char *data,
                                  size_t len, size_t *used)
{
    size_t room = r->head_cap - r->fill, n = len < room ? len : room;
    const char *lf = memchr(data, '\n', n);

    if (lf != NULL)
        n = (size_t)(lf - data) + 1;
    if (n > 0)
        memcpy(r->head + r->fill, data, n);
    r->fill += n;
    *used = n;
    if (lf != NULL)
        return LINE_DONE;
    return n < len ? LINE_NO_ROOM : LINE_PARTIAL;
}

/* The line just taken, without its CRLF or LF; starts the next line. */
static const char *last_line(struct tg_http_reader *r, size_t *n)
{
    const char *line = r->head + r->line_start;
    size_t end = r->fill - 1;

    if (end > r->line_start && r->head[end - 1] == '\r')
        end--;
    *n = end - r->line_start;
    r->line_start = r->fill;
    return line;
}

/* "HTTP/1.1 200 OK" (the reason phrase may be missing). */
static enum tg_http_event read_status_line(struct tg_http_reader *r,
                                           const char *s, size_t n)
{
    int status;

    if (n < STATUS_LINE_MIN || memcmp(s, HTTP_PREFIX, HTTP_PREFIX_LEN) != 0 ||
        !is_digit(s[5]) || s[6] != '.' || !is_digit(s[7]) || s[8] != ' ' ||
        !is_digit(s[9]) || !is_digit(s[10]) || !is_digit(s[11]))
        return fail(r, "bad status line");
    if (s[5] != '1' || s[7] > '1')
        return fail(r, "unsupported HTTP version");
    status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (status < 100 || status > 599 ||
        (n > STATUS_LINE_MIN && s[STATUS_LINE_MIN] != ' ') ||
        !is_text(s + STATUS_LINE_MIN, n - STATUS_LINE_MIN))
        return fail(r, "bad status line");
    r->status = status;
    r->minor = s[7] - '0';
    return TG_HTTP_MORE;
}

/* "Name: value": the name's length and the trimmed value; false when the
 * line is not a field line. */
static bool split_field(const char *line, size_t n, size_t *name_len,
                        const char **value, size_t *value_len)
{
    size_t i = 0;

    while (i < n && is_token_char((unsigned char)line[i]))
        i++;
    if (i == 0 || i == n || line[i] != ':')
        return false;
    *name_len = i;
    *value = line + i + 1;
    *value_len = n - i - 1;
    trim(value, value_len);
    return is_text(*value, *value_len);
}

static enum tg_http_event read_length(struct tg_http_reader *r, const char *s,
                                      size_t n)
{
    uint64_t v = 0;

    if (n == 0)
        return fail(r, "bad Content-Length");
    for (size_t i = 0; i < n; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (!is_digit(s[i]))
            return fail(r, "bad Content-Length");
        if (v > (SIZE_LIMIT - 1 - digit) / 10)
            return fail(r, "Content-Length too large");
        v = v * 10 + digit;
    }
    if (r->has_length && v != r->length)
        return fail(r, "conflicting Content-Lengths");
    r->has_length = true;
    r->length = v;
    return TG_HTTP_MORE;
}

/* Connection: a list of options; close and keep-alive matter here. */
static void read_connection(struct tg_http_reader *r, const char *s, size_t n)
{
    while (n > 0) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        const char *option = s;
        size_t option_len = len;

        trim(&option, &option_len);
        if (equals_nocase(option, option_len, "close"))
            r->has_close = true;
        else if (equals_nocase(option, option_len, "keep-alive"))
            r->has_keep_alive = true;
        s += len < n ? len + 1 : len;
        n -= len < n ? len + 1 : len;
    }
}

static enum tg_http_event read_header(struct tg_http_reader *r,
                                      const char *line, size_t n)
{
    const char *value;
    size_t name_len, value_len;

    if (line[0] == ' ' || line[0] == '\t')
        return fail(r, "obsolete line folding");
    if (!split_field(line, n, &name_len, &value, &value_len))
        return fail(r, "bad header line");
    if (equals_nocase(line, name_len, "content-length"))
        return read_length(r, value, value_len);
    if (equals_nocase(line, name_len, "transfer-encoding")) {
        /* Only chunked, once: a coding we cannot undo is no answer. */
        if (r->is_chunked || !equals_nocase(value, value_len, "chunked"))
            return fail(r, "unsupported Transfer-Encoding");
        r->is_chunked = true;
    } else if (equals_nocase(line, name_len, "connection")) {
        read_connection(r, value, value_len);
    }
    return TG_HTTP_MORE;
}

/* The blank line: skips a 1xx answer, or chooses how the body is framed. */
static enum tg_http_event end_head(struct tg_http_reader *r)
{
    if (r->status == 101)
        return fail(r, "an unrequested protocol switch");
    if (r->status < 200) {
        begin_answer(r);
        return TG_HTTP_MORE;
    }
    if (r->has_length && r->is_chunked)
        return fail(r, "both Content-Length and chunked");
    r->head_len = r->fill;
    r->is_keep_alive = !r->has_close && (r->minor == 1 || r->has_keep_alive);
    if (r->status == 204 || r->status == 304) {
        r->state = TG_HTTP_ST_END;
    } else if (r->is_chunked) {
        r->state = TG_HTTP_ST_CHUNK_SIZE;
        r->remaining = 0;
        r->line_len = 0;
    } else if (r->has_length) {
        r->remaining = r->length;
        r->state = r->length > 0 ? TG_HTTP_ST_LENGTH : TG_HTTP_ST_END;
    } else {
        r->state = TG_HTTP_ST_UNTIL_CLOSE;
        r->is_keep_alive = false;
    }
    return TG_HTTP_HEAD;
}

static enum tg_http_event read_head(struct tg_http_reader *r, const char *data,
                                    size_t len, size_t *used)
{
    size_t from = r->fill, n, line_len;
    enum line_result got = take_line(r, data, len, used);
    const char *line;
    bool is_status_line = r->line_start == 0;

    /* Checked on every byte of the prefix, so garbage fails at once. */
    if (from < HTTP_PREFIX_LEN && r->fill > from) {
        n = r->fill < HTTP_PREFIX_LEN ? r->fill : HTTP_PREFIX_LEN;
        if (memcmp(r->head, HTTP_PREFIX, n) != 0)
            return fail(r, r->n_answers > 0 ? "bytes after the answer"
                                            : "not an HTTP answer");
    }
    if (got == LINE_NO_ROOM)
        return fail(r, "the head is too large");
    if (got == LINE_PARTIAL)
        return TG_HTTP_MORE;
    line = last_line(r, &line_len);
    if (is_status_line)
        return read_status_line(r, line, line_len);
    if (line_len == 0)
        return end_head(r);
    return read_header(r, line, line_len);
}

static void end_chunk_line(struct tg_http_reader *r)
{
    if (r->remaining > 0) {
        r->state = TG_HTTP_ST_CHUNK_DATA;
        return;
    }
    r->state = TG_HTTP_ST_TRAILER_NAME;
    r->line_len = 0;
}

/* What may follow the chunk size: spaces, extensions, the line end. */
static enum tg_http_event after_size(struct tg_http_reader *r, char c)
{
    if (c == ' ' || c == '\t')
        r->state = TG_HTTP_ST_CHUNK_SPACE;
    else if (c == ';')
        r->state = TG_HTTP_ST_CHUNK_EXT;
    else if (c == '\r')
        r->state = TG_HTTP_ST_CHUNK_SIZE_LF;
    else if (c == '\n')
        end_chunk_line(r);
    else
        return fail(r, "bad chunk size");
    return TG_HTTP_MORE;
}

/* One byte of "1a; ext=v\r\n". In CHUNK_SIZE, line_len counts the
 * digits read. */
static enum tg_http_event read_chunk_byte(struct tg_http_reader *r, char c)
{
    int digit = hex_value(c);
    bool is_line_end = c == '\r' || c == '\n';

    if (r->state == TG_HTTP_ST_CHUNK_SIZE && digit < 0 && r->line_len == 0)
        return fail(r, "bad chunk size");
    if (r->state != TG_HTTP_ST_CHUNK_SIZE_LF && !is_line_end &&
        ++r->line_len > TG_HTTP_CHUNK_LINE_MAX)
        return fail(r, "the chunk-size line is too long");
    switch (r->state) {
    case TG_HTTP_ST_CHUNK_SIZE:
        if (digit < 0)
            return after_size(r, c);
        if (r->remaining >= SIZE_LIMIT >> 4)
            return fail(r, "chunk size too large");
        r->remaining = r->remaining * 16 + (uint64_t)digit;
        return TG_HTTP_MORE;
    case TG_HTTP_ST_CHUNK_SPACE:
        return c == ' ' || c == '\t' || c == ';' || is_line_end
                   ? after_size(r, c)
                   : fail(r, "bad chunk size");
    case TG_HTTP_ST_CHUNK_EXT:
        if (is_line_end)
            return after_size(r, c);
        return is_text(&c, 1) ? TG_HTTP_MORE : fail(r, "bad chunk extension");
    default: /* TG_HTTP_ST_CHUNK_SIZE_LF */
        if (c != '\n')
            return fail(r, "bad chunk size");
        end_chunk_line(r);
        return TG_HTTP_MORE;
    }
}

static enum tg_http_event read_chunk_line(struct tg_http_reader *r,
                                          const char *data, size_t len,
                                          size_t *used)
{
    size_t i = 0;

    while (i < len && r->state >= TG_HTTP_ST_CHUNK_SIZE &&
           r->state <= TG_HTTP_ST_CHUNK_SIZE_LF)
        if (read_chunk_byte(r, data[i++]) == TG_HTTP_ERROR)
            return TG_HTTP_ERROR;
    *used = i;
    return TG_HTTP_MORE;
}

/* The CRLF (or LF) after a chunk's data. */
static enum tg_http_event read_chunk_end(struct tg_http_reader *r, char c)
{
    if (r->state == TG_HTTP_ST_CHUNK_DATA_CR && c == '\r') {
        r->state = TG_HTTP_ST_CHUNK_DATA_LF;
        return TG_HTTP_MORE;
    }
    if (c != '\n')
        return fail(r, "bad chunk end");
    r->state = TG_HTTP_ST_CHUNK_SIZE;
    r->remaining = 0;
    r->line_len = 0;
    return TG_HTTP_MORE;
}

/* One byte of the trailer section: "Name: value" lines, checked as they
 * come and dropped, then a blank line. */
static enum tg_http_event read_trailer_byte(struct tg_http_reader *r, char c)
{
    bool is_empty = r->line_len == 0;

    if (c != '\r' && c != '\n' && ++r->line_len > TG_HTTP_HEAD_MAX)
        return fail(r, "a trailer line is too long");
    switch (r->state) {
    case TG_HTTP_ST_TRAILER_NAME:
        if (c == ':' && !is_empty)
            r->state = TG_HTTP_ST_TRAILER_VALUE;
        else if (c == '\r' && is_empty)
            r->state = TG_HTTP_ST_TRAILER_LF;
        else if (c == '\n' && is_empty)
            r->state = TG_HTTP_ST_END;
        else if (!is_token_char((unsigned char)c))
            return fail(r, "bad trailer line");
        return TG_HTTP_MORE;
    case TG_HTTP_ST_TRAILER_VALUE:
        if (c == '\r') {
            r->state = TG_HTTP_ST_TRAILER_LF;
        } else if (c == '\n') {
            r->state = TG_HTTP_ST_TRAILER_NAME;
            r->line_len = 0;
        } else if (!is_text(&c, 1)) {
            return fail(r, "bad trailer line");
        }
        return TG_HTTP_MORE;
    default: /* TG_HTTP_ST_TRAILER_LF */
        if (c != '\n')
            return fail(r, "bad trailer line");
        r->state = is_empty ? TG_HTTP_ST_END : TG_HTTP_ST_TRAILER_NAME;
        r->line_len = 0;
        return TG_HTTP_MORE;
    }
}

static enum tg_http_event read_trailer(struct tg_http_reader *r,
                                       const char *data, size_t len,
                                       size_t *used)
{
    size_t i = 0;

    while (i < len && r->state >= TG_HTTP_ST_TRAILER_NAME &&
           r->state <= TG_HTTP_ST_TRAILER_LF)
        if (read_trailer_byte(r, data[i++]) == TG_HTTP_ERROR)
            return TG_HTTP_ERROR;
    *used = i;
    return TG_HTTP_MORE;
}

/* Up to r->remaining body bytes, then the state `next`. */
static enum tg_http_event take_body(struct tg_http_reader *r, const char *data,
                                    size_t len, size_t *used,
                                    enum tg_http_state next, const char **body,
                                    size_t *body_len)
{
    size_t n = len < r->remaining ? len : (size_t)r->remaining;

    *used = n;
    if (n == 0)
        return TG_HTTP_MORE;
    *body = data;
    *body_len = n;
    r->remaining -= n;
    if (r->remaining == 0)
        r->state = next;
    return TG_HTTP_BODY;
}

/* One step in the current state; *used bytes taken. */
static enum tg_http_event step(struct tg_http_reader *r, const char *data,
                               size_t len, size_t *used, const char **body,
                               size_t *body_len)
{
    *used = 0;
    switch (r->state) {
    case TG_HTTP_ST_IDLE:
        if (len > 0)
            begin_answer(r);
        return TG_HTTP_MORE;
    case TG_HTTP_ST_HEAD:
        return len ? read_head(r, data, len, used) : TG_HTTP_MORE;
    case TG_HTTP_ST_LENGTH:
        return take_body(r, data, len, used, TG_HTTP_ST_END, body, body_len);
    case TG_HTTP_ST_CHUNK_SIZE:
    case TG_HTTP_ST_CHUNK_SPACE:
    case TG_HTTP_ST_CHUNK_EXT:
    case TG_HTTP_ST_CHUNK_SIZE_LF: return read_chunk_line(r, data, len, used);
    case TG_HTTP_ST_CHUNK_DATA:
        return take_body(r, data, len, used, TG_HTTP_ST_CHUNK_DATA_CR, body,
                         body_len);
    case TG_HTTP_ST_CHUNK_DATA_CR:
    case TG_HTTP_ST_CHUNK_DATA_LF:
        if (len == 0)
            return TG_HTTP_MORE;
        *used = 1;
        return read_chunk_end(r, data[0]);
    case TG_HTTP_ST_TRAILER_NAME:
    case TG_HTTP_ST_TRAILER_VALUE:
    case TG_HTTP_ST_TRAILER_LF: return read_trailer(r, data, len, used);
    case TG_HTTP_ST_UNTIL_CLOSE:
        *used = len;
        *body = data;
        *body_len = len;
        return len ? TG_HTTP_BODY : TG_HTTP_MORE;
    case TG_HTTP_ST_END:
        r->state = TG_HTTP_ST_IDLE;
        r->n_answers++;
        return TG_HTTP_END;
    default: return TG_HTTP_ERROR;
    }
}

enum tg_http_event tg_http_reader_feed(struct tg_http_reader *r,
                                       const char *data, size_t len,
                                       size_t *used, const char **body,
                                       size_t *body_len)
{
    size_t off = 0, n;
    enum tg_http_event ev;

    *body = NULL;
    *body_len = 0;
    for (;;) {
        ev = step(r, data + off, len - off, &n, body, body_len);
        off += n;
        /* A pending END is reported even when no byte is left. */
        if (ev != TG_HTTP_MORE || (off == len && r->state != TG_HTTP_ST_END))
            break;
    }
    *used = off;
    return ev;
}

enum tg_http_event tg_http_reader_close(struct tg_http_reader *r)
{
    switch (r->state) {
    case TG_HTTP_ST_IDLE: return TG_HTTP_MORE;
    case TG_HTTP_ST_UNTIL_CLOSE:
    case TG_HTTP_ST_END:
        r->state = TG_HTTP_ST_IDLE;
        r->n_answers++;
        return TG_HTTP_END;
    case TG_HTTP_ST_HEAD:
        return fail(r, "the connection closed before the head ended");
    case TG_HTTP_ST_ERROR: return TG_HTTP_ERROR;
    default: return fail(r, "the connection closed before the answer ended");
    }
}

const char *tg_http_reader_header(const struct tg_http_reader *r,
                                  const char *name, size_t *len)
{
    const char *p = r->head, *end = r->head + r->head_len, *lf, *value;
    size_t name_len = strlen(name), n;

    if (r->head == NULL || r->head_len == 0)
        return NULL;
    /* The head was checked whole: every line ends with LF. The status line
     * is skipped. */
    for (p = (const char *)memchr(p, '\n', r->head_len) + 1; p < end;
         p = lf + 1) {
        lf = memchr(p, '\n', (size_t)(end - p));
        n = (size_t)(lf - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > name_len && p[name_len] == ':' &&
            equals_nocase(p, name_len, name)) {
            value = p + name_len + 1;
            n -= name_len + 1;
            trim(&value, &n);
            *len = n;
            return value;
        }
    }
    return NULL;
}
