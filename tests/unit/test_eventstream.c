/*
 * test_eventstream.c - unit tests of the AWS event stream codec
 * (worker/eventstream.c).
 *
 * The reference vectors come from $TG_SHARED_DATA (default ../shared/data):
 * aws-sdk-go's encoded/decoded pairs and three recorded Bedrock
 * ConverseStream bodies with their .frames.jsonl. A missing file fails the
 * test. Hand-built messages cover what the vectors do not: every malformed
 * header, every length bound, the header limit and the encoder's refusals.
 * Buffers handed to the decoder are malloc'd at their exact size so that
 * AddressSanitizer and valgrind see any read past the end.
 */
#include <criterion/criterion.h>

#include "tg.h"
#include "tg_arena.h"
#include "tg_eventstream.h"
#include "tg_json.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_CAP 256
/* The number of aws-sdk-go vectors of each kind in shared/data. */
#define N_POSITIVE 5
#define N_NEGATIVE 4
/* The decoded all_headers file's message_crc that README calls stale. */
#define ALL_HEADERS_STALE_CRC 3758045736u

static struct tg_arena arena;

static void setup(void)
{
    tg_arena_init(&arena, 4096);
}

static void teardown(void)
{
    tg_arena_free(&arena);
}

TestSuite(eventstream, .init = setup, .fini = teardown);

static const char *data_dir(void)
{
    const char *dir = getenv("TG_SHARED_DATA");

    return dir != NULL && dir[0] != '\0' ? dir : "../shared/data";
}

/* The whole of data_dir()/rel, in the arena, NUL-terminated. */
static uint8_t *read_data(const char *rel, size_t *len)
{
    char *path = tg_arena_printf(&arena, "%s/%s", data_dir(), rel);
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long size;

    cr_assert_not_null(f, "cannot open %s (set TG_SHARED_DATA)", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    cr_assert_geq(size, 0);
    rewind(f);
    buf = tg_arena_alloc(&arena, (size_t)size + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size, "%s", path);
    fclose(f);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* Names of the files in data_dir()/rel, sorted, copied into the arena. */
static size_t list_data(const char *rel, char **names, size_t cap)
{
    char *path = tg_arena_printf(&arena, "%s/%s", data_dir(), rel);
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort), i;
    size_t count = 0;

    cr_assert_geq(n, 0, "cannot list %s (set TG_SHARED_DATA)", path);
    for (i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && count < cap)
            names[count++] = tg_arena_strndup(&arena, ents[i]->d_name,
                                              strlen(ents[i]->d_name));
        free(ents[i]);
    }
    free(ents);
    return count;
}

static int base64_value(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

    return p != NULL ? (int)(p - alphabet) : -1;
}

/* Decodes padded standard base64 into the arena; asserts it is valid. */
static uint8_t *base64_decode(const char *s, size_t n, size_t *out_len)
{
    uint8_t *out = tg_arena_alloc(&arena, n / 4 * 3 + 1);
    size_t i, len = 0;
    int k, v[4];

    cr_assert_eq(n % 4, 0, "base64 length %zu", n);
    for (i = 0; i < n; i += 4) {
        for (k = 0; k < 4; k++) {
            bool pad = s[i + k] == '=' && i + 4 == n && k >= 2;

            v[k] = pad ? 0 : base64_value(s[i + k]);
            cr_assert_geq(v[k], 0, "bad base64 %.*s", (int)n, s);
        }
        out[len++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (s[i + 2] != '=')
            out[len++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (s[i + 3] != '=')
            out[len++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    *out_len = len;
    return out;
}

static struct tg_json parse_json(const char *text, size_t len)
{
    struct tg_json j;
    struct tg_json_error err = {0, NULL};

    cr_assert_eq(tg_json_parse(&j, text, len, &arena, &err), TG_OK,
                 "bad JSON %.*s: %s at %zu", (int)len, text, err.message,
                 err.offset);
    return j;
}

/* Member `key` of object `obj`; asserts it is there. */
static int member(const struct tg_json *j, int obj, const char *key)
{
    int i = tg_json_get(j, obj, key);

    cr_assert_geq(i, 0, "no member %s", key);
    return i;
}

static int64_t json_int(const struct tg_json *j, int i)
{
    int64_t v = 0;

    cr_assert_eq(tg_json_int64(j, i, &v), TG_OK);
    return v;
}

/* The decoded bytes of the base64 string at token i. */
static uint8_t *json_base64(const struct tg_json *j, int i, size_t *len)
{
    size_t n;
    const char *raw = tg_json_raw(j, i, &n);

    cr_assert_eq(tg_json_type(j, i), TG_JSON_STRING);
    return base64_decode(raw, n, len);
}

static char *json_string(const struct tg_json *j, int i, size_t *len)
{
    char *s = NULL;

    cr_assert_eq(tg_json_str(j, i, &arena, &s, len), TG_OK);
    return s;
}

static bool json_equal(const struct tg_json *a, int ai, const struct tg_json *b,
                       int bi);

/* Members compare by key, whatever their order (Python sorted some). */
static bool json_objects_equal(const struct tg_json *a, int ai,
                               const struct tg_json *b, int bi)
{
    int cursor = 0, key, val, other;
    size_t len;

    if (tg_json_size(a, ai) != tg_json_size(b, bi))
        return false;
    while (tg_json_member(a, ai, &cursor, &key, &val)) {
        other = tg_json_get(b, bi, json_string(a, key, &len));
        if (other < 0 || !json_equal(a, val, b, other))
            return false;
    }
    return true;
}

static bool json_arrays_equal(const struct tg_json *a, int ai,
                              const struct tg_json *b, int bi)
{
    int ca = 0, cb = 0, ea, eb;

    if (tg_json_size(a, ai) != tg_json_size(b, bi))
        return false;
    while (tg_json_element(a, ai, &ca, &ea)) {
        cr_assert(tg_json_element(b, bi, &cb, &eb));
        if (!json_equal(a, ea, b, eb))
            return false;
    }
    return true;
}

/* Same JSON value: the texts may differ in spacing and member order. */
static bool json_equal(const struct tg_json *a, int ai, const struct tg_json *b,
                       int bi)
{
    enum tg_json_type type = tg_json_type(a, ai);
    size_t la, lb;
    char *sa, *sb;
    double da, db;

    if (type != tg_json_type(b, bi))
        return false;
    switch (type) {
    case TG_JSON_OBJECT: return json_objects_equal(a, ai, b, bi);
    case TG_JSON_ARRAY: return json_arrays_equal(a, ai, b, bi);
    case TG_JSON_STRING:
        sa = json_string(a, ai, &la);
        sb = json_string(b, bi, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    case TG_JSON_NUMBER:
        return tg_json_double(a, ai, &da) == TG_OK &&
               tg_json_double(b, bi, &db) == TG_OK && da == db;
    default: return true;
    }
}

/* A malloc'd copy of exactly n bytes, so any over-read is caught. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);

    cr_assert_not_null(copy);
    if (n > 0)
        memcpy(copy, p, n);
    return copy;
}

/* Decodes p[0..n) from an exact-size copy; returns the status. The message
 * points into *copy, which the caller frees. */
static int decode_exact(const uint8_t *p, size_t n, uint8_t **copy,
                        struct tg_es_message *msg, size_t *consumed, char *err)
{
    *copy = exact_copy(p, n);
    err[0] = '\0';
    return tg_es_decode(*copy, n, msg, consumed, err, ERR_CAP);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Writes a prelude declaring these lengths, with its correct CRC. */
static void put_prelude(uint8_t *p, uint32_t total, uint32_t headers_len)
{
    put_be32(p, total);
    put_be32(p + 4, headers_len);
    put_be32(p + 8, tg_crc32(0, p, 8));
}

/*
 * Frames raw header bytes and a payload as a message with correct CRCs, in
 * the arena; the headers need not be well formed.
 */
static uint8_t *frame(const void *headers, size_t headers_len,
                      const void *payload, size_t payload_len, size_t *len)
{
    size_t total = 16 + headers_len + payload_len;
    uint8_t *p = tg_arena_alloc(&arena, total);

    cr_assert_not_null(p);
    put_prelude(p, (uint32_t)total, (uint32_t)headers_len);
    memcpy(p + 12, headers, headers_len);
    memcpy(p + 12 + headers_len, payload, payload_len);
    put_be32(p + total - 4, tg_crc32(0, p, total - 4));
    *len = total;
    return p;
}

/* Decodes p[0..n), which must be refused; returns the error text. */
static char *refusal(const uint8_t *p, size_t n)
{
    struct tg_es_message msg;
    size_t consumed = 99;
    char err[ERR_CAP];
    uint8_t *copy;

    cr_assert_eq(decode_exact(p, n, &copy, &msg, &consumed, err), TG_ERROR,
                 "accepted %zu bytes", n);
    free(copy);
    cr_assert_eq(consumed, 0);
    return tg_arena_strndup(&arena, err, strlen(err));
}

/* Asserts that p[0..n) is refused with an error starting with `prefix`. */
static void assert_refused(const uint8_t *p, size_t n, const char *prefix)
{
    char *err = refusal(p, n);

    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0,
                 "error \"%s\", expected \"%s...\"", err, prefix);
}

/* Decodes a message that must be accepted whole; copies msg out. */
static void assert_decodes(const uint8_t *p, size_t n,
                           struct tg_es_message *msg)
{
    size_t consumed = 0;
    char err[ERR_CAP];
    uint8_t *copy;

    cr_assert_eq(decode_exact(p, n, &copy, msg, &consumed, err), TG_OK,
                 "refused: %s", err);
    cr_assert_eq(consumed, n);
    /* Point back into p, which outlives the copy. */
    for (size_t i = 0; i < msg->n_headers; i++) {
        msg->headers[i].name =
            (const char *)p + ((const uint8_t *)msg->headers[i].name - copy);
        if (msg->headers[i].bytes != NULL)
            msg->headers[i].bytes = p + (msg->headers[i].bytes - copy);
    }
    msg->payload = p + (msg->payload - copy);
    free(copy);
}

/* --- CRC-32 --- */

Test(eventstream, crc32_matches_known_vectors)
{
    static const char fox[] = "The quick brown fox jumps over the lazy dog";
    static const uint8_t ones[4] = {0xff, 0xff, 0xff, 0xff};

    cr_assert_eq(tg_crc32(0, "123456789", 9), 0xCBF43926u);
    cr_assert_eq(tg_crc32(0, "", 0), 0u);
    cr_assert_eq(tg_crc32(0, NULL, 0), 0u);
    cr_assert_eq(tg_crc32(0, "a", 1), 0xE8B7BE43u);
    cr_assert_eq(tg_crc32(0, fox, sizeof(fox) - 1), 0x414FA339u);
    cr_assert_eq(tg_crc32(0, ones, sizeof(ones)), 0xFFFFFFFFu);
}

Test(eventstream, crc32_continues_across_calls_like_zlib)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog";
    size_t n = sizeof(text) - 1, cut;
    uint32_t whole = tg_crc32(0, text, n);

    for (cut = 0; cut <= n; cut++)
        cr_assert_eq(tg_crc32(tg_crc32(0, text, cut), text + cut, n - cut),
                     whole, "split at %zu", cut);
    /* Continuing with nothing leaves the value unchanged. */
    cr_assert_eq(tg_crc32(whole, "", 0), whole);
}

/* --- the aws-sdk-go vectors --- */

static void assert_header_value(const struct tg_es_header *h,
                                const struct tg_json *j, int value)
{
    const uint8_t *bytes;
    size_t len;

    switch (h->type) {
    case TG_ES_TRUE: cr_assert_eq(tg_json_type(j, value), TG_JSON_TRUE); break;
    case TG_ES_FALSE:
        cr_assert_eq(tg_json_type(j, value), TG_JSON_FALSE);
        break;
    case TG_ES_BYTES:
    case TG_ES_STRING:
    case TG_ES_UUID:
        bytes = json_base64(j, value, &len);
        cr_assert_eq(h->bytes_len, len, "header %.*s", (int)h->name_len,
                     h->name);
        cr_assert_eq(memcmp(h->bytes, bytes, len), 0);
        break;
    default:
        cr_assert_eq(h->integer, json_int(j, value), "header %.*s",
                     (int)h->name_len, h->name);
    }
}

static void assert_headers_match(const struct tg_es_message *msg,
                                 const struct tg_json *j, int array)
{
    int cursor = 0, elem, name;
    size_t i = 0, len;
    char *expected;

    cr_assert_eq(msg->n_headers, (size_t)tg_json_size(j, array));
    while (tg_json_element(j, array, &cursor, &elem)) {
        const struct tg_es_header *h = &msg->headers[i++];

        name = member(j, elem, "name");
        expected = json_string(j, name, &len);
        cr_assert_eq(h->name_len, len);
        cr_assert_eq(memcmp(h->name, expected, len), 0, "header %s", expected);
        cr_assert_eq((int64_t)h->type, json_int(j, member(j, elem, "type")),
                     "header %s", expected);
        assert_header_value(h, j, member(j, elem, "value"));
    }
}

/* The stored CRC, as a signed or unsigned JSON integer, modulo 2^32. */
static uint32_t json_crc(const struct tg_json *j, int obj, const char *key)
{
    return (uint32_t)json_int(j, member(j, obj, key));
}

static void check_positive_vector(const char *name)
{
    size_t len, json_len, payload_len;
    const uint8_t *wire = read_data(
        tg_arena_printf(&arena, "eventstream/encoded/positive/%s", name), &len);
    const char *text = (const char *)read_data(
        tg_arena_printf(&arena, "eventstream/decoded/positive/%s", name),
        &json_len);
    struct tg_json j = parse_json(text, json_len);
    struct tg_es_message msg;
    const uint8_t *payload;
    uint32_t stored_crc;

    assert_decodes(wire, len, &msg);
    cr_assert_eq(msg.total_length, json_int(&j, member(&j, 0, "total_length")));
    cr_assert_eq(msg.headers_length,
                 json_int(&j, member(&j, 0, "headers_length")));
    cr_assert_eq(msg.prelude_crc, json_crc(&j, 0, "prelude_crc"), "%s", name);
    /* The message CRC is the wire's last 4 bytes; README says to trust the
     * encoded file over a stale decoded all_headers. */
    cr_assert_eq(msg.message_crc, get_be32(wire + len - 4), "%s", name);
    stored_crc = json_crc(&j, 0, "message_crc");
    if (strcmp(name, "all_headers") != 0 || stored_crc != ALL_HEADERS_STALE_CRC)
        cr_assert_eq(msg.message_crc, stored_crc, "%s", name);
    assert_headers_match(&msg, &j, member(&j, 0, "headers"));
    payload = json_base64(&j, member(&j, 0, "payload"), &payload_len);
    cr_assert_eq(msg.payload_len, payload_len, "%s", name);
    cr_assert_eq(memcmp(msg.payload, payload, payload_len), 0, "%s", name);
}

Test(eventstream, positive_vectors_decode_to_their_json)
{
    char *names[16];
    size_t n = list_data("eventstream/encoded/positive", names, 16), i;

    cr_assert_eq(n, N_POSITIVE);
    for (i = 0; i < n; i++)
        check_positive_vector(names[i]);
}

Test(eventstream, all_headers_vector_has_each_type_once)
{
    size_t len;
    const uint8_t *wire =
        read_data("eventstream/encoded/positive/all_headers", &len);
    struct tg_es_message msg;
    const struct tg_es_header *h;

    assert_decodes(wire, len, &msg);
    cr_assert_eq(msg.n_headers, 10);
    cr_assert(tg_es_header_is(&msg, "content-type", "application/json"));
    cr_assert_eq(tg_es_find(&msg, "byte")->integer, -49);
    cr_assert_eq(tg_es_find(&msg, "int16")->integer, 42);
    cr_assert_eq(tg_es_find(&msg, "int64")->integer, 42424242);
    cr_assert_eq(tg_es_find(&msg, "timestamp")->integer, 8675309);
    h = tg_es_find(&msg, "event-type");
    cr_assert_eq(h->type, TG_ES_INT32);
    cr_assert_eq(h->integer, 40972);
    h = tg_es_find(&msg, "uuid");
    cr_assert_eq(h->bytes_len, 16);
    cr_assert_eq(h->bytes[0], 1);
    cr_assert_eq(h->bytes[15], 16);
    cr_assert_eq(msg.payload_len, 13);
    cr_assert_eq(memcmp(msg.payload, "{'foo':'bar'}", 13), 0);
}

Test(eventstream, negative_vectors_fail_with_their_text)
{
    char *names[16];
    size_t n = list_data("eventstream/encoded/negative", names, 16), i, len,
           text_len;
    const uint8_t *wire;
    char *expected;

    cr_assert_eq(n, N_NEGATIVE);
    for (i = 0; i < n; i++) {
        wire =
            read_data(tg_arena_printf(&arena, "eventstream/encoded/negative/%s",
                                      names[i]),
                      &len);
        expected = (char *)read_data(
            tg_arena_printf(&arena, "eventstream/decoded/negative/%s",
                            names[i]),
            &text_len);
        cr_assert(strcmp(expected, "Prelude checksum mismatch") == 0 ||
                  strcmp(expected, "Message checksum mismatch") == 0);
        cr_assert_str_eq(refusal(wire, len), expected, "%s", names[i]);
    }
}

/* --- arrival in pieces --- */

static void assert_every_prefix_is_again(const uint8_t *wire, size_t len,
                                         const char *what)
{
    struct tg_es_message msg;
    size_t k, consumed;
    char err[ERR_CAP];
    uint8_t *copy;

    for (k = 0; k < len; k++) {
        consumed = 99;
        cr_assert_eq(decode_exact(wire, k, &copy, &msg, &consumed, err),
                     TG_AGAIN, "%s: prefix of %zu bytes: %s", what, k, err);
        cr_assert_eq(consumed, 0);
        free(copy);
    }
}

Test(eventstream, every_prefix_of_a_message_is_again)
{
    char *names[16];
    size_t n = list_data("eventstream/encoded/positive", names, 16), i, len;
    const uint8_t *wire;

    cr_assert_eq(n, N_POSITIVE);
    for (i = 0; i < n; i++) {
        wire =
            read_data(tg_arena_printf(&arena, "eventstream/encoded/positive/%s",
                                      names[i]),
                      &len);
        assert_every_prefix_is_again(wire, len, names[i]);
    }
    wire =
        read_data("streams/bedrock_converse_stream_tool_use.eventstream", &len);
    assert_every_prefix_is_again(wire, get_be32(wire), "bedrock frame 0");
}

Test(eventstream, back_to_back_messages_decode_in_turn)
{
    size_t len_a, len_b, consumed;
    const uint8_t *a = read_data(
        "eventstream/encoded/positive/payload_one_str_header", &len_a);
    const uint8_t *b =
        read_data("eventstream/encoded/positive/all_headers", &len_b);
    uint8_t *both = tg_arena_alloc(&arena, len_a + len_b), *copy;
    struct tg_es_message msg;
    char err[ERR_CAP];

    memcpy(both, a, len_a);
    memcpy(both + len_a, b, len_b);
    cr_assert_eq(decode_exact(both, len_a + len_b, &copy, &msg, &consumed, err),
                 TG_OK);
    cr_assert_eq(consumed, 61);
    cr_assert_eq(msg.n_headers, 1);
    cr_assert_eq(msg.payload_len, 13);
    cr_assert_eq(tg_es_decode(copy + consumed, len_a + len_b - consumed, &msg,
                              &consumed, err, sizeof(err)),
                 TG_OK);
    cr_assert_eq(consumed, 204);
    cr_assert_eq(msg.n_headers, 10);
    /* The second message ends the buffer: nothing more is pending. */
    cr_assert_eq(61 + consumed, len_a + len_b);
    cr_assert_eq(tg_es_decode(copy + len_a + len_b, 0, &msg, &consumed, err,
                              sizeof(err)),
                 TG_AGAIN);
    free(copy);
}

Test(eventstream, bytes_after_a_message_are_left_alone)
{
    size_t len, consumed;
    const uint8_t *a =
        read_data("eventstream/encoded/positive/payload_no_headers", &len);
    uint8_t *more = tg_arena_alloc(&arena, len + 5), *copy;
    struct tg_es_message msg;
    char err[ERR_CAP];

    memcpy(more, a, len);
    memcpy(more + len, "junk!", 5);
    cr_assert_eq(decode_exact(more, len + 5, &copy, &msg, &consumed, err),
                 TG_OK);
    cr_assert_eq(consumed, len);
    free(copy);
}

/* --- recorded Bedrock streams --- */

static void assert_frame_matches(const struct tg_es_message *msg,
                                 size_t consumed, const char *line,
                                 size_t line_len)
{
    struct tg_json j = parse_json(line, line_len), payload;
    int headers = member(&j, 0, "headers"), cursor = 0, key, val;
    size_t klen, vlen;
    char *k, *v;

    cr_assert_eq((int64_t)consumed,
                 json_int(&j, member(&j, 0, "frame_length")));
    cr_assert_eq(msg->n_headers, (size_t)tg_json_size(&j, headers));
    while (tg_json_member(&j, headers, &cursor, &key, &val)) {
        k = json_string(&j, key, &klen);
        v = json_string(&j, val, &vlen);
        cr_assert(tg_es_header_is(msg, k, v), "header %s: %s", k, v);
    }
    cr_assert(tg_es_find(msg, ":event-type") != NULL);
    payload = parse_json((const char *)msg->payload, msg->payload_len);
    cr_assert(json_equal(&payload, 0, &j, member(&j, 0, "payload")),
              "payload %.*s, expected line %.*s", (int)msg->payload_len,
              (const char *)msg->payload, (int)line_len, line);
}

/* Decodes a whole recorded stream frame by frame against its jsonl. */
static void check_stream(const char *name, size_t expected_frames)
{
    size_t len, jsonl_len, off = 0, frames = 0, consumed;
    const uint8_t *wire = read_data(
        tg_arena_printf(&arena, "streams/%s.eventstream", name), &len);
    const char *jsonl = (const char *)read_data(
        tg_arena_printf(&arena, "streams/%s.frames.jsonl", name), &jsonl_len);
    const char *line = jsonl, *nl;
    uint8_t *copy = exact_copy(wire, len);
    struct tg_es_message msg;
    char err[ERR_CAP];

    while (off < len) {
        cr_assert_eq(tg_es_decode(copy + off, len - off, &msg, &consumed, err,
                                  sizeof(err)),
                     TG_OK, "%s frame %zu: %s", name, frames, err);
        cr_assert_gt(consumed, 0);
        nl = memchr(line, '\n', jsonl_len - (size_t)(line - jsonl));
        cr_assert_not_null(nl, "%s: more frames than lines", name);
        assert_frame_matches(&msg, consumed, line, (size_t)(nl - line));
        line = nl + 1;
        off += consumed;
        frames++;
    }
    free(copy);
    cr_assert_eq(off, len);
    cr_assert_eq(frames, expected_frames, "%s", name);
    cr_assert_eq((size_t)(line - jsonl), jsonl_len, "%s: lines left", name);
}

Test(eventstream, bedrock_streams_match_their_frames)
{
    check_stream("bedrock_converse_stream_tool_use", 26);
    check_stream("bedrock_converse_stream_text_after_tool_result", 9);
    check_stream("bedrock_converse_stream_claude_reasoning", 25);
}

/* Feeds a stream one more byte at a time, as a slow socket would: each
 * frame is TG_AGAIN until its last byte arrives, then TG_OK. */
Test(eventstream, bedrock_stream_decodes_as_bytes_arrive)
{
    size_t len, start = 0, end, consumed, frames = 0;
    const uint8_t *wire = read_data(
        "streams/bedrock_converse_stream_text_after_tool_result.eventstream",
        &len);
    struct tg_es_message msg;
    char err[ERR_CAP];
    uint8_t *copy;
    int rc;

    for (end = start; end <= len; end++) {
        copy = exact_copy(wire + start, end - start);
        rc = tg_es_decode(copy, end - start, &msg, &consumed, err, sizeof(err));
        free(copy);
        if (rc == TG_AGAIN)
            continue;
        cr_assert_eq(rc, TG_OK, "at %zu: %s", end, err);
        cr_assert_eq(consumed, end - start, "frame %zu", frames);
        start = end;
        frames++;
    }
    cr_assert_eq(start, len);
    cr_assert_eq(frames, 9);
}

/* --- the encoder --- */

/* Drains buf into the arena. */
static uint8_t *drain(struct evbuffer *buf, size_t *len)
{
    uint8_t *p;

    *len = evbuffer_get_length(buf);
    p = tg_arena_alloc(&arena, *len);
    cr_assert_eq(evbuffer_remove(buf, p, *len), (int)*len);
    return p;
}

Test(eventstream, encode_decode_round_trip)
{
    static const char *const names[] = {":event-type", ":content-type",
                                        ":message-type"};
    static const char *const values[] = {"contentBlockDelta",
                                         "application/json", "event"};
    static const char payload[] = "{\"delta\":{\"text\":\"30\xc2\xb0"
                                  "C\"}}";
    struct evbuffer *buf = evbuffer_new();
    struct tg_es_message msg;
    size_t len;
    uint8_t *wire;

    cr_assert_eq(
        tg_es_encode(buf, names, values, 3, payload, sizeof(payload) - 1), 0);
    wire = drain(buf, &len);
    evbuffer_free(buf);
    assert_decodes(wire, len, &msg);
    cr_assert_eq(msg.total_length, len);
    cr_assert_eq(msg.prelude_crc, tg_crc32(0, wire, 8));
    cr_assert_eq(msg.message_crc, tg_crc32(0, wire, len - 4));
    cr_assert_eq(msg.n_headers, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(msg.headers[i].type, TG_ES_STRING);
        cr_assert(tg_es_header_is(&msg, names[i], values[i]));
    }
    cr_assert_eq(msg.payload_len, sizeof(payload) - 1);
    cr_assert_eq(memcmp(msg.payload, payload, msg.payload_len), 0);
}

Test(eventstream, encode_writes_the_reference_bytes)
{
    static const char *const names[] = {"content-type"};
    static const char *const values[] = {"application/json"};
    struct evbuffer *buf = evbuffer_new();
    size_t len, ref_len;
    const uint8_t *ref, *wire;

    cr_assert_eq(tg_es_encode(buf, NULL, NULL, 0, NULL, 0), 0);
    wire = drain(buf, &len);
    ref = read_data("eventstream/encoded/positive/empty_message", &ref_len);
    cr_assert_eq(len, ref_len);
    cr_assert_eq(memcmp(wire, ref, len), 0);

    cr_assert_eq(tg_es_encode(buf, names, values, 1, "{'foo':'bar'}", 13), 0);
    wire = drain(buf, &len);
    ref = read_data("eventstream/encoded/positive/payload_one_str_header",
                    &ref_len);
    cr_assert_eq(len, ref_len);
    cr_assert_eq(memcmp(wire, ref, len), 0);
    evbuffer_free(buf);
}

Test(eventstream, encode_appends_after_existing_bytes)
{
    struct evbuffer *buf = evbuffer_new();
    struct tg_es_message msg;
    size_t len;
    uint8_t *wire;

    evbuffer_add(buf, "xy", 2);
    cr_assert_eq(tg_es_encode(buf, NULL, NULL, 0, "p", 1), 0);
    cr_assert_eq(tg_es_encode(buf, NULL, NULL, 0, "q", 1), 0);
    wire = drain(buf, &len);
    evbuffer_free(buf);
    cr_assert_eq(len, 2 + 17 + 17);
    cr_assert_eq(memcmp(wire, "xy", 2), 0);
    assert_decodes(wire + 2, 17, &msg);
    cr_assert_eq(msg.payload[0], 'p');
    assert_decodes(wire + 19, 17, &msg);
    cr_assert_eq(msg.payload[0], 'q');
}

/* Asserts tg_es_encode refuses and leaves the buffer untouched. */
static void assert_encode_refused(const char *const *names,
                                  const char *const *values, size_t n,
                                  const void *payload, size_t payload_len)
{
    struct evbuffer *buf = evbuffer_new();

    cr_assert_eq(tg_es_encode(buf, names, values, n, payload, payload_len), -1);
    cr_assert_eq(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
}

Test(eventstream, encode_refuses_what_cannot_be_framed)
{
    static char long_name[257], long_value[65537];
    const char *names[TG_ES_MAX_HEADERS + 1], *values[TG_ES_MAX_HEADERS + 1];
    size_t i;

    memset(long_name, 'n', 256);
    memset(long_value, 'v', 65536);
    for (i = 0; i <= TG_ES_MAX_HEADERS; i++) {
        names[i] = "h";
        values[i] = "v";
    }
    assert_encode_refused((const char *[]){""}, values, 1, NULL, 0);
    assert_encode_refused((const char *[]){long_name}, values, 1, NULL, 0);
    assert_encode_refused(names, (const char *[]){long_value}, 1, NULL, 0);
    assert_encode_refused(names, values, TG_ES_MAX_HEADERS + 1, NULL, 0);
    /* The payload alone would make the message one byte too long. */
    assert_encode_refused(NULL, NULL, 0, long_value,
                          (size_t)TG_ES_MAX_MESSAGE - 15);
    assert_encode_refused(NULL, NULL, 0, long_value, SIZE_MAX);
}

Test(eventstream, encode_accepts_the_largest_fields)
{
    static char name[256], value[65536];
    const char *names[] = {name}, *values[] = {value};
    struct evbuffer *buf = evbuffer_new();
    struct tg_es_message msg;
    size_t len;
    uint8_t *wire;

    memset(name, 'n', 255);
    memset(value, 'v', 65535);
    cr_assert_eq(tg_es_encode(buf, names, values, 1, "", 0), 0);
    wire = drain(buf, &len);
    evbuffer_free(buf);
    assert_decodes(wire, len, &msg);
    cr_assert_eq(msg.headers[0].name_len, 255);
    cr_assert_eq(msg.headers[0].bytes_len, 65535);
    cr_assert_eq(msg.payload_len, 0);
}

/* --- lengths and checksums --- */

Test(eventstream, length_below_sixteen_is_refused)
{
    uint8_t p[16] = {0};

    put_prelude(p, 15, 0);
    assert_refused(p, 12, "message length 15");
    put_prelude(p, 0, 0);
    assert_refused(p, 16, "message length 0");
}

/* Refused from the prelude alone: waiting for 16 MiB + 1 bytes would let a
 * corrupt length stall the stream. */
Test(eventstream, length_above_maximum_is_refused_at_once)
{
    uint8_t p[12];

    put_prelude(p, TG_ES_MAX_MESSAGE + 1, 0);
    assert_refused(p, 12, "message length 16777217");
    put_prelude(p, UINT32_MAX, 0);
    assert_refused(p, 12, "message length 4294967295");
}

Test(eventstream, headers_longer_than_the_message_are_refused)
{
    uint8_t p[12];

    put_prelude(p, 16, 1);
    assert_refused(p, 12, "message length 16 too small for headers length 1");
    put_prelude(p, 100, UINT32_MAX);
    assert_refused(p, 12, "message length 100 too small");
}

Test(eventstream, largest_message_waits_for_its_bytes)
{
    uint8_t p[12];
    struct tg_es_message msg;
    size_t consumed;
    char err[ERR_CAP];

    put_prelude(p, TG_ES_MAX_MESSAGE, 0);
    cr_assert_eq(tg_es_decode(p, sizeof(p), &msg, &consumed, err, ERR_CAP),
                 TG_AGAIN);
}

Test(eventstream, any_flipped_bit_is_refused)
{
    size_t len, bit;
    const uint8_t *wire =
        read_data("eventstream/encoded/positive/all_headers", &len);
    uint8_t *bad = tg_arena_alloc(&arena, len);
    struct tg_es_message msg;
    size_t consumed;
    char err[ERR_CAP];

    for (bit = 0; bit < len * 8; bit++) {
        memcpy(bad, wire, len);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        /* A longer declared length is a wait, never an acceptance. */
        cr_assert_neq(tg_es_decode(bad, len, &msg, &consumed, err, ERR_CAP),
                      TG_OK, "bit %zu", bit);
    }
}

Test(eventstream, checksum_errors_name_the_part)
{
    size_t len;
    const uint8_t *wire =
        read_data("eventstream/encoded/positive/int32_header", &len);
    uint8_t *bad = tg_arena_alloc(&arena, len);

    memcpy(bad, wire, len);
    bad[9] ^= 1; /* the prelude CRC itself */
    assert_refused(bad, len, "Prelude checksum mismatch");
    memcpy(bad, wire, len);
    bad[len - 1] ^= 1; /* the message CRC itself */
    assert_refused(bad, len, "Message checksum mismatch");
    memcpy(bad, wire, len);
    bad[len - 5] ^= 1; /* the last payload byte */
    assert_refused(bad, len, "Message checksum mismatch");
}

/* --- headers --- */

/* An array and its size, for assert_header_refused. */
#define H(array) array, sizeof(array)

/* Frames raw headers before a 1-byte payload; asserts the refusal text. */
static void assert_header_refused(const uint8_t *headers, size_t headers_len,
                                  const char *prefix)
{
    size_t len;
    const uint8_t *p = frame(headers, headers_len, "x", 1, &len);

    assert_refused(p, len, prefix);
}

Test(eventstream, malformed_headers_are_refused)
{
    static const uint8_t empty_name[] = {0, 7, 0, 0};
    static const uint8_t unknown_type[] = {1, 'a', 10};
    static const uint8_t name_too_long[] = {5, 'a', 'b', 'c'};
    static const uint8_t no_type[] = {1, 'a'};
    static const uint8_t string_too_long[] = {1, 'a', 7, 0, 3, 'x', 'y'};
    static const uint8_t no_string_len[] = {1, 'a', 6, 0};
    static const uint8_t int32_short[] = {1, 'a', 4, 0, 0, 1};
    static const uint8_t uuid_short[] = {1, 'a', 9, 1, 2, 3};
    static const uint8_t second_bad[] = {1, 'a', 0, 1, 'b', 255};

    assert_header_refused(H(empty_name), "malformed header 0: empty name");
    assert_header_refused(H(unknown_type),
                          "malformed header 0: unknown type 10");
    assert_header_refused(H(name_too_long),
                          "malformed header 0: name runs past");
    assert_header_refused(H(no_type), "malformed header 0: name runs past");
    assert_header_refused(H(string_too_long),
                          "malformed header 0: value runs past");
    assert_header_refused(H(no_string_len),
                          "malformed header 0: value runs past");
    assert_header_refused(H(int32_short),
                          "malformed header 0: value runs past");
    assert_header_refused(H(uuid_short), "malformed header 0: value runs past");
    assert_header_refused(H(second_bad),
                          "malformed header 1: unknown type 255");
}

/* A header value must end inside the headers block, not in the payload. */
Test(eventstream, header_value_cannot_reach_into_the_payload)
{
    static const uint8_t headers[] = {1, 'a', 7, 0, 4, 'x', 'y'};
    size_t len;
    const uint8_t *p = frame(headers, sizeof(headers), "zz", 2, &len);

    assert_refused(p, len, "malformed header 0: value runs past");
}

/* n headers "a": true, so 3 bytes each. */
static const uint8_t *many_headers(size_t n, size_t *len)
{
    uint8_t *h = tg_arena_alloc(&arena, 3 * n);

    for (size_t i = 0; i < n; i++) {
        h[3 * i] = 1;
        h[3 * i + 1] = 'a';
        h[3 * i + 2] = TG_ES_TRUE;
    }
    return frame(h, 3 * n, "", 0, len);
}

Test(eventstream, header_count_is_limited)
{
    struct tg_es_message msg;
    size_t len;
    const uint8_t *p = many_headers(TG_ES_MAX_HEADERS, &len);

    assert_decodes(p, len, &msg);
    cr_assert_eq(msg.n_headers, TG_ES_MAX_HEADERS);
    p = many_headers(TG_ES_MAX_HEADERS + 1, &len);
    assert_refused(p, len, "malformed header block: more than 32 headers");
}

Test(eventstream, integer_headers_are_sign_extended)
{
    static const uint8_t headers[] = {
        1, 'b', 2, 0xff,                   /* -1 */
        1, 's', 3, 0x80, 0x00,             /* INT16_MIN */
        1, 'i', 4, 0x7f, 0xff, 0xff, 0xff, /* INT32_MAX */
        1, 'l', 5, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* MIN */
        1, 't', 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* -2 */
        1, 'u', 5, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* MAX */
    };
    struct tg_es_message msg;
    size_t len;
    const uint8_t *p = frame(headers, sizeof(headers), "", 0, &len);

    assert_decodes(p, len, &msg);
    cr_assert_eq(msg.n_headers, 6);
    cr_assert_eq(tg_es_find(&msg, "b")->integer, -1);
    cr_assert_eq(tg_es_find(&msg, "s")->integer, INT16_MIN);
    cr_assert_eq(tg_es_find(&msg, "i")->integer, INT32_MAX);
    cr_assert_eq(tg_es_find(&msg, "l")->integer, INT64_MIN);
    cr_assert_eq(tg_es_find(&msg, "t")->type, TG_ES_TIMESTAMP);
    cr_assert_eq(tg_es_find(&msg, "t")->integer, -2);
    cr_assert_eq(tg_es_find(&msg, "u")->integer, INT64_MAX);
}

Test(eventstream, empty_values_are_allowed)
{
    static const uint8_t headers[] = {1, 's', 7, 0, 0, 1, 'b', 6, 0, 0};
    struct tg_es_message msg;
    size_t len;
    const uint8_t *p = frame(headers, sizeof(headers), "", 0, &len);

    assert_decodes(p, len, &msg);
    cr_assert(tg_es_header_is(&msg, "s", ""));
    cr_assert_eq(tg_es_find(&msg, "b")->type, TG_ES_BYTES);
    cr_assert_eq(tg_es_find(&msg, "b")->bytes_len, 0);
}

Test(eventstream, find_returns_the_first_of_duplicates)
{
    static const uint8_t headers[] = {
        2, 'k', 'k', 7, 0, 3, 'o', 'n', 'e', /* kk: "one" */
        2, 'k', 'k', 7, 0, 3, 't', 'w', 'o', /* kk: "two" */
        1, 'k', 4,   0, 0, 0, 5,             /* k: int32 5 */
    };
    struct tg_es_message msg;
    size_t len;
    const uint8_t *p = frame(headers, sizeof(headers), "", 0, &len);

    assert_decodes(p, len, &msg);
    cr_assert_eq(tg_es_find(&msg, "kk"), &msg.headers[0]);
    cr_assert(tg_es_header_is(&msg, "kk", "one"));
    cr_assert_not(tg_es_header_is(&msg, "kk", "two"));
    cr_assert_not(tg_es_header_is(&msg, "kk", "on"));
    cr_assert_eq(tg_es_find(&msg, "k"), &msg.headers[2]);
    /* An int32 is not the string "5", nor any string. */
    cr_assert_not(tg_es_header_is(&msg, "k", "5"));
    cr_assert_null(tg_es_find(&msg, "kkk"));
    cr_assert_null(tg_es_find(&msg, ""));
    cr_assert_not(tg_es_header_is(&msg, "missing", ""));
}

Test(eventstream, error_text_fits_the_callers_buffer)
{
    size_t len, consumed;
    const uint8_t *wire =
        read_data("eventstream/encoded/negative/corrupted_length", &len);
    struct tg_es_message msg;
    char err[8];

    memset(err, 'x', sizeof(err));
    cr_assert_eq(tg_es_decode(wire, len, &msg, &consumed, err, 5), TG_ERROR);
    cr_assert_str_eq(err, "Prel");
    cr_assert_eq(err[5], 'x');
    cr_assert_eq(tg_es_decode(wire, len, &msg, &consumed, NULL, 0), TG_ERROR);
}
