/*
 * eventstream.c - the AWS event stream codec (see tg_eventstream.h).
 *
 * Decoding trusts nothing it has not checked: the prelude CRC is verified
 * before its lengths are believed, the lengths are bounded before any wait
 * for more bytes, and the message CRC is verified before a header is parsed,
 * so a header parser error means a sender bug, not line noise. Every read is
 * bounded by the end of the headers block it belongs to. The encoder writes
 * string headers only and reserves the whole message in the evbuffer at once,
 * so a failure never leaves half a message behind.
 */
#include "tg_eventstream.h"

#include "tg.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* total length, headers length, prelude CRC */
#define ES_PRELUDE_LEN 12
/* the prelude and the trailing message CRC */
#define ES_OVERHEAD  16
#define ES_CRC_LEN   4
#define ES_NAME_MAX  UINT8_MAX
#define ES_VALUE_MAX UINT16_MAX
#define ES_UUID_LEN  16

/* CRC-32 of every byte value, reflected polynomial 0xEDB88320 (zlib's). */
static const uint32_t crc_table[256] = {
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
    0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
    0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
    0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
    0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
    0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
    0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
    0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
    0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
    0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
    0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
    0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
    0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
    0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
    0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
    0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
    0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
    0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
    0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
    0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
    0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
    0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
    0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
    0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
    0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
    0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
    0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
    0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
    0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
    0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
    0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
    0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
    0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

uint32_t tg_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    /* zlib keeps the running value post-inverted, so that chaining calls
     * gives the CRC of the concatenation. */
    crc = ~crc;
    while (len-- > 0)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | *p++;
    return v;
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)read_be(p, 4);
}

static void write_be(uint8_t *p, uint64_t v, size_t n)
{
    while (n-- > 0) {
        p[n] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Reads an n-byte two's complement integer; the conversion goes through
 * arithmetic, not a cast of an out-of-range value, so it is defined C. */
static int64_t read_signed(const uint8_t *p, size_t n)
{
    uint64_t v = read_be(p, n);
    uint64_t sign = (uint64_t)1 << (8 * n - 1);

    if ((v & sign) == 0)
        return (int64_t)v;
    return -(int64_t)(~v & (sign - 1)) - 1;
}

static void set_error(char *err, size_t err_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t err_cap, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* Size of the value of a fixed-size type; -1 for a length-prefixed one
 * (BYTES, STRING). */
static int fixed_value_len(enum tg_es_type type)
{
    switch (type) {
    case TG_ES_TRUE:
    case TG_ES_FALSE: return 0;
    case TG_ES_BYTE: return 1;
    case TG_ES_INT16: return 2;
    case TG_ES_INT32: return 4;
    case TG_ES_INT64:
    case TG_ES_TIMESTAMP: return 8;
    case TG_ES_UUID: return ES_UUID_LEN;
    default: return -1;
    }
}

/*
 * Parses the value of header h (its type already set) from p[0..avail).
 * Returns the value's size on the wire, or -1 when it does not fit.
 */
static long parse_value(struct tg_es_header *h, const uint8_t *p, size_t avail)
{
    int fixed = fixed_value_len(h->type);
    size_t n;

    if (h->type == TG_ES_BYTES || h->type == TG_ES_STRING) {
        if (avail < 2)
            return -1;
        n = (size_t)read_be(p, 2);
        if (n > avail - 2)
            return -1;
        h->bytes = p + 2;
        h->bytes_len = n;
        return (long)(n + 2);
    }
    if ((size_t)fixed > avail)
        return -1;
    if (h->type == TG_ES_UUID) {
        h->bytes = p;
        h->bytes_len = ES_UUID_LEN;
    } else if (fixed > 0) {
        h->integer = read_signed(p, (size_t)fixed);
    }
    return fixed;
}

/*
 * Parses one header from p[0..avail) into h. Returns its size on the wire,
 * or -1 with err set.
 */
static long parse_header(struct tg_es_header *h, size_t index, const uint8_t *p,
                         size_t avail, char *err, size_t err_cap)
{
    size_t name_len = p[0];
    long value_len;

    memset(h, 0, sizeof(*h));
    if (name_len == 0) {
        set_error(err, err_cap, "malformed header %zu: empty name", index);
        return -1;
    }
    /* the length byte, the name and the type byte after it */
    if (avail < 2 + name_len) {
        set_error(err, err_cap,
                  "malformed header %zu: name runs past the headers", index);
        return -1;
    }
    h->name = (const char *)p + 1;
    h->name_len = name_len;
    if (p[1 + name_len] > TG_ES_UUID) {
        set_error(err, err_cap, "malformed header %zu: unknown type %u", index,
                  (unsigned)p[1 + name_len]);
        return -1;
    }
    h->type = (enum tg_es_type)p[1 + name_len];
    value_len = parse_value(h, p + 2 + name_len, avail - 2 - name_len);
    if (value_len < 0) {
        set_error(err, err_cap,
                  "malformed header %zu: value runs past the headers", index);
        return -1;
    }
    return (long)(2 + name_len) + value_len;
}

/* Parses the headers block p[0..len) into msg. TG_OK or TG_ERROR. */
static int parse_headers(struct tg_es_message *msg, const uint8_t *p,
                         size_t len, char *err, size_t err_cap)
{
    size_t off = 0;
    long used;

    msg->n_headers = 0;
    while (off < len) {
        if (msg->n_headers == TG_ES_MAX_HEADERS) {
            set_error(err, err_cap,
                      "malformed header block: more than %d headers",
                      TG_ES_MAX_HEADERS);
            return TG_ERROR;
        }
        used = parse_header(&msg->headers[msg->n_headers], msg->n_headers,
                            p + off, len - off, err, err_cap);
        if (used < 0)
            return TG_ERROR;
        off += (size_t)used;
        msg->n_headers++;
    }
    return TG_OK;
}

/*
 * Checks the prelude at buf[0..12) and the lengths it declares. Runs before
 * the rest of the message has arrived, so that a corrupt length is refused
 * at once instead of making the caller wait for bytes that never come.
 */
static int check_prelude(struct tg_es_message *msg, const uint8_t *buf,
                         char *err, size_t err_cap)
{
    msg->total_length = read_be32(buf);
    msg->headers_length = read_be32(buf + 4);
    msg->prelude_crc = read_be32(buf + 8);
    if (tg_crc32(0, buf, 8) != msg->prelude_crc) {
        set_error(err, err_cap, "Prelude checksum mismatch");
        return TG_ERROR;
    }
    if (msg->total_length < ES_OVERHEAD ||
        msg->total_length > TG_ES_MAX_MESSAGE) {
        set_error(err, err_cap, "message length %u outside %d..%u",
                  (unsigned)msg->total_length, ES_OVERHEAD, TG_ES_MAX_MESSAGE);
        return TG_ERROR;
    }
    if (msg->headers_length > msg->total_length - ES_OVERHEAD) {
        set_error(err, err_cap,
                  "message length %u too small for headers length %u",
                  (unsigned)msg->total_length, (unsigned)msg->headers_length);
        return TG_ERROR;
    }
    return TG_OK;
}

int tg_es_decode(const uint8_t *buf, size_t len, struct tg_es_message *msg,
                 size_t *consumed, char *err, size_t err_cap)
{
    size_t body;

    *consumed = 0;
    msg->n_headers = 0;
    msg->payload = NULL;
    msg->payload_len = 0;
    if (len < ES_PRELUDE_LEN)
        return TG_AGAIN;
    if (check_prelude(msg, buf, err, err_cap) != TG_OK)
        return TG_ERROR;
    if (len < msg->total_length)
        return TG_AGAIN;
    body = msg->total_length - ES_CRC_LEN;
    msg->message_crc = read_be32(buf + body);
    if (tg_crc32(0, buf, body) != msg->message_crc) {
        set_error(err, err_cap, "Message checksum mismatch");
        return TG_ERROR;
    }
    if (parse_headers(msg, buf + ES_PRELUDE_LEN, msg->headers_length, err,
                      err_cap) != TG_OK)
        return TG_ERROR;
    msg->payload = buf + ES_PRELUDE_LEN + msg->headers_length;
    msg->payload_len = body - ES_PRELUDE_LEN - msg->headers_length;
    *consumed = msg->total_length;
    return TG_OK;
}

const struct tg_es_header *tg_es_find(const struct tg_es_message *msg,
                                      const char *name)
{
    size_t n = strlen(name), i;

    for (i = 0; i < msg->n_headers; i++) {
        const struct tg_es_header *h = &msg->headers[i];

        if (h->name_len == n && memcmp(h->name, name, n) == 0)
            return h;
    }
    return NULL;
}

bool tg_es_header_is(const struct tg_es_message *msg, const char *name,
                     const char *value)
{
    const struct tg_es_header *h = tg_es_find(msg, name);
    size_t n = strlen(value);

    return h != NULL && h->type == TG_ES_STRING && h->bytes_len == n &&
           memcmp(h->bytes, value, n) == 0;
}

/*
 * Size of the headers block for these string headers, or 0 with *ok false
 * when a name or value does not fit its length field or there are more
 * headers than a decoder accepts.
 */
static size_t encoded_headers_len(const char *const *names,
                                  const char *const *values, size_t n_headers,
                                  bool *ok)
{
    size_t total = 0, i, name_len, value_len;

    *ok = n_headers <= TG_ES_MAX_HEADERS;
    for (i = 0; *ok && i < n_headers; i++) {
        name_len = strlen(names[i]);
        value_len = strlen(values[i]);
        if (name_len == 0 || name_len > ES_NAME_MAX || value_len > ES_VALUE_MAX)
            *ok = false;
        /* name length, name, type, value length, value */
        total += 1 + name_len + 1 + 2 + value_len;
    }
    return *ok ? total : 0;
}

/* Writes the string headers at p; returns the byte after them. */
static uint8_t *write_headers(uint8_t *p, const char *const *names,
                              const char *const *values, size_t n_headers)
{
    size_t i, name_len, value_len;

    for (i = 0; i < n_headers; i++) {
        name_len = strlen(names[i]);
        value_len = strlen(values[i]);
        *p++ = (uint8_t)name_len;
        memcpy(p, names[i], name_len);
        p += name_len;
        *p++ = TG_ES_STRING;
        write_be(p, value_len, 2);
        p += 2;
        memcpy(p, values[i], value_len);
        p += value_len;
    }
    return p;
}

int tg_es_encode(struct evbuffer *out, const char *const *names,
                 const char *const *values, size_t n_headers,
                 const void *payload, size_t payload_len)
{
    struct evbuffer_iovec vec;
    bool ok;
    size_t headers_len = encoded_headers_len(names, values, n_headers, &ok);
    size_t total;
    uint8_t *p;

    if (!ok || payload_len > TG_ES_MAX_MESSAGE - ES_OVERHEAD ||
        headers_len > TG_ES_MAX_MESSAGE - ES_OVERHEAD - payload_len)
        return -1;
    total = ES_OVERHEAD + headers_len + payload_len;
    /* One extent, so the message is contiguous and committed whole. */
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &vec, 1) != 1)
        return -1;
    p = vec.iov_base;
    write_be(p, total, 4);
    write_be(p + 4, headers_len, 4);
    write_be(p + 8, tg_crc32(0, p, 8), 4);
    p = write_headers(p + ES_PRELUDE_LEN, names, values, n_headers);
    if (payload_len > 0)
        memcpy(p, payload, payload_len);
    p += payload_len;
    write_be(p, tg_crc32(0, vec.iov_base, total - ES_CRC_LEN), 4);
    vec.iov_len = total;
    return evbuffer_commit_space(out, &vec, 1) == 0 ? 0 : -1;
}
