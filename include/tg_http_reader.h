/*
 * tg_http_reader.h - an incremental reader of HTTP/1.1 answers, pure: no
 * I/O, no allocation, so that it can be tested and fuzzed alone.
 *
 * Bytes are fed as they arrive, split anywhere. The reader keeps the head
 * (status line and headers) whole in a fixed buffer that the caller lends
 * it, skips 1xx interim answers, and hands the body back decoded: by
 * Content-Length, chunked (extensions and trailers are checked and
 * dropped) or until the connection closes. Anything it cannot read exactly
 * is an error with a short reason; after an error it only reports that
 * error again. The buffer is needed only while a head is read, so a caller
 * with many connections can lend one only then (upstream.c does).
 */
#ifndef TG_HTTP_READER_H
#define TG_HTTP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest head kept, its final blank line included: the buffer to
 * lend. Also the longest trailer line. */
#define TG_HTTP_HEAD_MAX 16384

/* The longest chunk-size line, extensions included, without its CRLF. */
#define TG_HTTP_CHUNK_LINE_MAX 1024

/* What a feed stopped at. */
enum tg_http_event {
    TG_HTTP_MORE,  /* every byte given is used: feed more */
    TG_HTTP_HEAD,  /* the head of a final (non-1xx) answer is complete */
    TG_HTTP_BODY,  /* body bytes, pointing into the bytes fed */
    TG_HTTP_END,   /* the answer is complete */
    TG_HTTP_ERROR, /* not an answer we can read: error says why */
};

/* Where the reader is; see http_reader.c. */
enum tg_http_state {
    TG_HTTP_ST_IDLE, /* between answers: the next byte starts one */
    TG_HTTP_ST_HEAD,
    TG_HTTP_ST_LENGTH,
    TG_HTTP_ST_CHUNK_SIZE,
    TG_HTTP_ST_CHUNK_SPACE,
    TG_HTTP_ST_CHUNK_EXT,
    TG_HTTP_ST_CHUNK_SIZE_LF,
    TG_HTTP_ST_CHUNK_DATA,
    TG_HTTP_ST_CHUNK_DATA_CR,
    TG_HTTP_ST_CHUNK_DATA_LF,
    TG_HTTP_ST_TRAILER_NAME, /* also the start of a trailer line */
    TG_HTTP_ST_TRAILER_VALUE,
    TG_HTTP_ST_TRAILER_LF,
    TG_HTTP_ST_UNTIL_CLOSE,
    TG_HTTP_ST_END, /* the answer is read; END is yet to be reported */
    TG_HTTP_ST_ERROR,
};

struct tg_http_reader {
    enum tg_http_state state;
    int status;         /* after TG_HTTP_HEAD */
    int minor;          /* HTTP/1.minor */
    bool is_keep_alive; /* after TG_HTTP_END: the connection may be reused */
    bool has_length, is_chunked, has_close, has_keep_alive;
    uint64_t length;    /* Content-Length */
    uint64_t remaining; /* of the body (Content-Length) or of the chunk */
    size_t line_len;    /* of a chunk-size or trailer line so far */
    size_t line_start;  /* where the head line being read starts */
    size_t head_len;    /* the complete head's bytes in head[] */
    size_t fill;        /* head[] in use */
    unsigned n_answers; /* final answers read to their end */
    const char *error;  /* after TG_HTTP_ERROR: a short reason */
    char *head;         /* the lent buffer, or NULL */
    size_t head_cap;
};

/* Ready to read a connection's first answer; no buffer yet. */
void tg_http_reader_init(struct tg_http_reader *r);

/*
 * Lends the reader buf[0, cap) for heads (at most TG_HTTP_HEAD_MAX of it is
 * used: a longer head is an error), or takes it back (NULL). It must be
 * lent while tg_http_reader_wants_buffer() says so, and stay lent while the
 * caller looks up headers. Taking it back mid-head is an error.
 */
void tg_http_reader_lend(struct tg_http_reader *r, char *buf, size_t cap);

/* Whether the next byte fed may be a head's while no buffer is lent:
 * between answers or within a head. */
bool tg_http_reader_wants_buffer(const struct tg_http_reader *r);

/*
 * Reads from data[0, len) up to the next event; *used is how many bytes it
 * took. For TG_HTTP_BODY, *body and *body_len (never 0) are the body bytes,
 * within data. TG_HTTP_MORE comes only once all len bytes are used; call
 * again after any other event, with the bytes left (even none: an END may
 * follow). Bytes after an answer's end start the next answer.
 */
enum tg_http_event tg_http_reader_feed(struct tg_http_reader *r,
                                       const char *data, size_t len,
                                       size_t *used, const char **body,
                                       size_t *body_len);

/* The peer closed the connection: TG_HTTP_END when that ends a body read
 * until close, TG_HTTP_MORE when no answer was begun, else TG_HTTP_ERROR. */
enum tg_http_event tg_http_reader_close(struct tg_http_reader *r);

/* The value of the first header called name (any case) in the current
 * answer's head, trimmed, and its length; NULL when there is none, no head
 * yet, or no buffer. The value is not NUL-terminated; it lives in the lent
 * buffer until the next answer begins. */
const char *tg_http_reader_header(const struct tg_http_reader *r,
                                  const char *name, size_t *len);

#endif
