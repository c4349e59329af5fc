/*
 * tg_eventstream.h - the AWS event stream framing
 * (application/vnd.amazon.eventstream), as Bedrock's ConverseStream uses.
 *
 * A message is: total length (4 bytes, big endian), headers length (4),
 * CRC-32 of those 8 bytes (4), headers, payload, CRC-32 of everything
 * before it (4). A header is: name length (1), name, type (1), value (by
 * type: 0 true and 1 false carry nothing, 2 byte, 3 int16, 4 int32,
 * 5 int64, 6 bytes and 7 string with a 2-byte length, 8 timestamp as
 * int64 milliseconds, 9 uuid of 16 bytes).
 *
 * The decoder works on whatever bytes have arrived: it says TG_AGAIN until a
 * whole message is there, so a stream can be fed as it comes. Decoded
 * headers and payload point into the caller's bytes.
 */
#ifndef TG_EVENTSTREAM_H
#define TG_EVENTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define TG_ES_MAX_HEADERS 32
/* A message larger than this is refused as corrupt (AWS caps at 16 MiB). */
#define TG_ES_MAX_MESSAGE (16u * 1024 * 1024)

enum tg_es_type {
    TG_ES_TRUE = 0,
    TG_ES_FALSE = 1,
    TG_ES_BYTE = 2,
    TG_ES_INT16 = 3,
    TG_ES_INT32 = 4,
    TG_ES_INT64 = 5,
    TG_ES_BYTES = 6,
    TG_ES_STRING = 7,
    TG_ES_TIMESTAMP = 8,
    TG_ES_UUID = 9,
};

struct tg_es_header {
    const char *name;
    size_t name_len;
    enum tg_es_type type;
    int64_t integer;      /* BYTE, INT16, INT32, INT64, TIMESTAMP */
    const uint8_t *bytes; /* BYTES, STRING, UUID */
    size_t bytes_len;
};

struct tg_es_message {
    uint32_t total_length;
    uint32_t headers_length;
    uint32_t prelude_crc;
    uint32_t message_crc;
    struct tg_es_header headers[TG_ES_MAX_HEADERS];
    size_t n_headers;
    const uint8_t *payload;
    size_t payload_len;
};

/*
 * Decodes one message from the start of buf[0..len). Returns TG_OK with
 * *consumed set to its size, TG_AGAIN when more bytes are needed, or
 * TG_ERROR with a message in err ("Prelude checksum mismatch", "Message
 * checksum mismatch", "message length ...", "malformed header ...").
 */
int tg_es_decode(const uint8_t *buf, size_t len, struct tg_es_message *msg,
                 size_t *consumed, char *err, size_t err_cap);

/* The first header named `name`, or NULL. */
const struct tg_es_header *tg_es_find(const struct tg_es_message *msg,
                                      const char *name);

/* True when header `name` is a string equal to `value`. */
bool tg_es_header_is(const struct tg_es_message *msg, const char *name,
                     const char *value);

/* Appends one message with string headers (names[i] = values[i]) and the
 * payload. Returns 0, or -1 when it would be too large. */
int tg_es_encode(struct evbuffer *out, const char *const *names,
                 const char *const *values, size_t n_headers,
                 const void *payload, size_t payload_len);

/* CRC-32 (IEEE 802.3, as zlib's crc32) continuing from crc (start at 0). */
uint32_t tg_crc32(uint32_t crc, const void *data, size_t len);

#endif
