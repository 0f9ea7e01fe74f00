/*
 * Binary frames (src/wire/frame.h): round trips of every arity, the exact bytes of a small
 * frame, and rejection of every truncation, every flipped byte, and inconsistent frames that
 * carry a valid checksum.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "t.h"
#include "wire/frame.h"

static struct sn_hist *hist_of(uint64_t a, uint64_t b)
{
    struct sn_hist *h = sn_hist_create();
    sn_hist_insert_u64(h, 2000000, a);
    sn_hist_insert_u64(h, 3500000, b);
    return h;
}

/* Encodes f, checks decode(encode(f)) == f, returns the bytes (owned). */
static unsigned char *round_trip(const struct sn_wire_frame *f, size_t *len)
{
    size_t n = sn_wire_frame_len(f);
    unsigned char *buf = malloc(n);
    struct sn_wire_frame d;

    T_EQ(sn_wire_frame_encode(f, buf, n - 1), -ENOSPC);
    T_EQ(sn_wire_frame_encode(f, buf, n), (ssize_t)n);
    T_EQ(sn_wire_frame_decode(buf, n, &d), 0);
    T_OK(d.id && sn_wire_frame_equal(f, &d));
    sn_wire_frame_fini(&d);
    *len = n;
    return buf;
}

static void test_scalar_bytes(void)
{
    struct sn_wire_frame f = {
        .id = "7", .host = "h", .t = 1700000000, .arity = SN_WIRE_SCALAR, .total = 42};
    size_t n;
    unsigned char *b = round_trip(&f, &n);
    static const unsigned char want[] = {
        'S',  'N',  'F',  'R',  1, 0,   0, 0,                         /* magic, version, arity */
        0x00, 0xf1, 0x53, 0x65, 0, 0,   0, 0,                         /* t = 1700000000 */
        42,   0,    0,    0,    0, 0,   0, 0,                         /* total */
        0,    0,    0,    0,    0, 0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* over_cap, map_full */
        1,    0,    '7',  1,    0, 'h', 0, 0, 0, 0,                   /* id, host, 0 entries */
    };
    T_EQ(n, sizeof(want) + 4);
    T_MEM(b, want, sizeof(want));
    uint32_t crc = sn_crc32c(0, want, sizeof(want));
    T_MEM(b + sizeof(want), &crc, 4);
    free(b);
}

static void test_every_arity(void)
{
    struct sn_wire_entry disc[] = {{"nginx", 5, NULL}, {"other", 2, NULL}};
    struct sn_wire_entry num[] = {{"", 30, hist_of(10, 20)}};
    struct sn_wire_entry both[] = {{"nginx", 3, hist_of(1, 2)}, {"sh", 9, hist_of(4, 5)}};
    struct sn_wire_frame fs[] = {
        {.id = "1",
         .host = "web1",
         .t = 5,
         .arity = SN_WIRE_DISCRETE,
         .total = 7,
         .n = 2,
         .entries = disc,
         .over_cap = 2},
        {.id = "2",
         .host = "web1",
         .t = -5,
         .arity = SN_WIRE_NUMERIC,
         .total = 30,
         .n = 1,
         .entries = num,
         .map_full = 9},
        {.id = "latency-by-app",
         .host = "web1",
         .t = 1,
         .arity = SN_WIRE_NUMERIC_BY_KEY,
         .total = 12,
         .n = 2,
         .entries = both},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        free(round_trip(&fs[i], &n));
    }
    sn_hist_destroy(num[0].hist);
    sn_hist_destroy(both[0].hist);
    sn_hist_destroy(both[1].hist);
}

static void test_rejects_invalid_frames_to_encode(void)
{
    unsigned char buf[512];
    struct sn_wire_entry e[] = {{"a", 1, NULL}};
    struct sn_wire_frame f = {
        .id = "1", .host = "h", .arity = SN_WIRE_DISCRETE, .total = 2, .n = 1, .entries = e};
    T_EQ(sn_wire_frame_encode(&f, buf, sizeof(buf)), -EINVAL); /* total != sum */
    f.total = 1;
    f.id = "";
    T_EQ(sn_wire_frame_encode(&f, buf, sizeof(buf)), -EINVAL); /* empty id */
    f.id = "1";
    f.arity = SN_WIRE_SCALAR;
    T_EQ(sn_wire_frame_encode(&f, buf, sizeof(buf)), -EINVAL); /* scalar with entries */
    f.arity = SN_WIRE_NUMERIC;
    T_EQ(sn_wire_frame_encode(&f, buf, sizeof(buf)), -EINVAL); /* numeric without histogram */
}

static void test_truncation_and_flips(void)
{
    struct sn_wire_entry both[] = {{"nginx", 3, hist_of(1, 2)}};
    struct sn_wire_frame f = {.id = "9",
                              .host = "db",
                              .t = 3,
                              .arity = SN_WIRE_NUMERIC_BY_KEY,
                              .total = 3,
                              .n = 1,
                              .entries = both};
    size_t n;
    unsigned char *b = round_trip(&f, &n);
    struct sn_wire_frame d;

    for (size_t len = 0; len < n; len++) {
        t_note("length %zu", len);
        T_OK(sn_wire_frame_decode(b, len, &d) < 0);
        T_OK(d.id == NULL && d.entries == NULL);
    }
    for (size_t i = 0; i < n; i++) {
        b[i] ^= 0x5a;
        t_note("byte %zu flipped", i);
        T_OK(sn_wire_frame_decode(b, n, &d) < 0);
        b[i] ^= 0x5a;
    }
    T_EQ(sn_wire_frame_decode(b, n, &d), 0);
    sn_wire_frame_fini(&d);
    /* a consistent checksum does not make an inconsistent frame valid */
    b[16] = 4; /* total 3 -> 4 */
    uint32_t crc = sn_crc32c(0, b, n - 4);
    memcpy(b + n - 4, &crc, 4);
    T_EQ(sn_wire_frame_decode(b, n, &d), SN_E_CORRUPT);
    free(b);
    sn_hist_destroy(both[0].hist);
}

/* sn_wire_utf8_valid(): what the server refuses in names and keys, and where. */
static void test_utf8(void)
{
    static const struct {
        const char *s;
        bool ok;
        size_t bad;
    } cases[] = {
        {"", true, 0},
        {"nginx", true, 0},
        {"caf\xc3\xa9", true, 0},       /* é */
        {"\xe2\x82\xac", true, 0},      /* € */
        {"\xf0\x9f\x98\x80", true, 0},  /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", true, 0},  /* U+10FFFF */
        {"ab\xff", false, 2},           /* never in UTF-8 */
        {"a\x80", false, 1},            /* a lone continuation byte */
        {"\xc0\xaf", false, 0},         /* overlong '/' */
        {"\xe0\x80\xaf", false, 0},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", false, 0},     /* a surrogate, U+D800 */
        {"\xf4\x90\x80\x80", false, 0}, /* past U+10FFFF */
        {"ok\xe2\x82", false, 2},       /* truncated */
        {"x\xc3(", false, 1},           /* a continuation byte missing */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t bad = 999;
        bool ok = sn_wire_utf8_valid(cases[i].s, strlen(cases[i].s), &bad);
        T_EQ(ok, cases[i].ok);
        if (!cases[i].ok)
            T_EQU(bad, cases[i].bad);
        else
            T_EQU(bad, 999); /* untouched */
    }
    T_OK(sn_wire_utf8_valid("a\xff", 1, NULL)); /* only n bytes are looked at */
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("scalar frame: exact bytes and checksum", test_scalar_bytes);
    t_run("every arity round trips", test_every_arity);
    t_run("frames breaking the rules are not encoded", test_rejects_invalid_frames_to_encode);
    t_run("every truncation and flipped byte is rejected", test_truncation_and_flips);
    t_run("UTF-8 validation of names and keys", test_utf8);
    return t_done();
}
