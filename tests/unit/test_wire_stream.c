/*
 * Frame streams (src/wire/stream.h): the exact bytes of a one-frame stream, frames of every
 * arity written to a real file and read back in order, the writer's refusals (no room, a bad
 * frame, a full disk), and every reader error with its code, message and position: a
 * truncated length, a length past the end or over the maximum, too many frames, a bad frame.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "t.h"
#include "wire/frame.h"
#include "wire/stream.h"

static struct sn_hist *hist_of(uint64_t a, uint64_t b)
{
    struct sn_hist *h = sn_hist_create();
    T_OK(h != NULL);
    sn_hist_insert_u64(h, 2000000, a);
    sn_hist_insert_u64(h, 3500000, b);
    return h;
}

static const struct sn_wire_frame scalar7 = {
    .id = "7", .host = "h", .t = 1700000000, .arity = SN_WIRE_SCALAR, .total = 42};

static void test_bytes(void)
{
    unsigned char frame[256], stream[256];
    ssize_t n = sn_wire_frame_encode(&scalar7, frame, sizeof(frame));

    T_EQ(n, 54);
    T_EQU(sn_wire_stream_len(&scalar7), 58);
    T_EQ(sn_wire_stream_put(&scalar7, stream, sizeof(stream)), 58);
    T_MEM(stream, "\x36\x00\x00\x00", 4);
    T_MEM(stream + 4, frame, 54);

    /* no room: -ENOSPC and nothing written */
    memset(stream, 0xaa, sizeof(stream));
    T_EQ(sn_wire_stream_put(&scalar7, stream, 57), -ENOSPC);
    T_EQ(stream[0], 0xaa);
    T_EQ(stream[4], 0xaa);
    /* a frame the format refuses: -EINVAL and nothing written */
    struct sn_wire_frame bad = {.id = "7", .host = "h", .arity = SN_WIRE_NUMERIC};
    T_EQ(sn_wire_stream_put(&bad, stream, sizeof(stream)), -EINVAL);
    T_EQ(stream[0], 0xaa);
    T_EQ(sn_wire_stream_write(stdout, &bad), -EINVAL);
}

static void test_file_round_trip(void)
{
    struct sn_hist *h1 = hist_of(10, 20), *h2 = hist_of(1, 2), *h3 = hist_of(0, 5);
    struct sn_wire_entry d[] = {{"nginx", 9, NULL}, {"sh", 4, NULL}, {"other", 1, NULL}};
    struct sn_wire_entry n1[] = {{"", 30, h1}};
    struct sn_wire_entry k[] = {{"a", 3, h2}, {"b", 5, h3}};
    const struct sn_wire_frame frames[] = {
        scalar7,
        {.id = "acme/2",
         .host = "web1",
         .t = 5,
         .arity = SN_WIRE_DISCRETE,
         .total = 14,
         .over_cap = 1,
         .n = 3,
         .entries = d},
        {.id = "3",
         .host = "web1",
         .t = 6,
         .arity = SN_WIRE_NUMERIC,
         .total = 30,
         .map_full = 2,
         .n = 1,
         .entries = n1},
        {.id = "4",
         .host = "web2",
         .t = 7,
         .arity = SN_WIRE_NUMERIC_BY_KEY,
         .total = 8,
         .n = 2,
         .entries = k},
        {.id = "5", .host = "web2", .t = 8, .arity = SN_WIRE_DISCRETE}, /* no entries */
    };
    const size_t nf = sizeof(frames) / sizeof(frames[0]);
    FILE *fp = tmpfile();
    size_t total = 0, len;
    unsigned char *buf;

    T_REQUIRE(fp != NULL);
    for (size_t i = 0; i < nf; i++) {
        T_EQ(sn_wire_stream_write(fp, &frames[i]), 0);
        total += sn_wire_stream_len(&frames[i]);
    }
    T_EQ(fflush(fp), 0);
    T_EQ(ftell(fp), (long)total);
    rewind(fp);
    buf = malloc(total);
    T_REQUIRE(buf != NULL);
    len = fread(buf, 1, total, fp);
    T_EQU(len, total);
    fclose(fp);

    struct sn_wire_stream r;
    struct sn_wire_frame f;
    char why[128];
    size_t at = 0;
    sn_wire_stream_init(&r, buf, len, 0, 0);
    for (size_t i = 0; i < nf; i++) {
        T_EQ(sn_wire_stream_next(&r, &f, why, sizeof(why)), 1);
        T_STR(why, "");
        T_OK(f.id && sn_wire_frame_equal(&f, &frames[i]));
        at += sn_wire_stream_len(&frames[i]);
        T_EQU(r.at, at);
        T_EQU(r.nth, i + 1);
        sn_wire_frame_fini(&f);
    }
    T_EQ(sn_wire_stream_next(&r, &f, why, sizeof(why)), 0);
    T_OK(f.id == NULL && f.n == 0);
    T_STR(why, "");
    T_EQ(sn_wire_stream_next(&r, &f, NULL, 0), 0); /* the end stays the end */

    /* the same bytes through sn_wire_stream_put() */
    unsigned char *again = malloc(total);
    size_t put = 0;
    T_REQUIRE(again != NULL);
    for (size_t i = 0; i < nf; i++) {
        ssize_t n = sn_wire_stream_put(&frames[i], again + put, total - put);
        T_EQ(n, (ssize_t)sn_wire_stream_len(&frames[i]));
        put += n > 0 ? (size_t)n : 0;
    }
    T_EQU(put, total);
    T_MEM(again, buf, total);
    free(again);
    free(buf);
    sn_hist_destroy(h1);
    sn_hist_destroy(h2);
    sn_hist_destroy(h3);
}

/* A full disk: the write fails with -EIO. */
static void test_write_fails(void)
{
    FILE *fp = fopen("/dev/full", "w");

    if (!fp) {
        t_skip("no /dev/full");
        return;
    }
    setvbuf(fp, NULL, _IONBF, 0);
    T_EQ(sn_wire_stream_write(fp, &scalar7), -EIO);
    fclose(fp);
}

/* next() on r fails with rc and message msg, twice (the reader stays on the bad frame), and
 * leaves the frame empty. */
static void expect_error(struct sn_wire_stream *r, int rc, const char *msg)
{
    struct sn_wire_frame f;
    char why[128];
    size_t at = r->at, nth = r->nth;

    for (int k = 0; k < 2; k++) {
        T_EQ(sn_wire_stream_next(r, &f, why, sizeof(why)), rc);
        T_STR(why, msg);
        T_OK(f.id == NULL && f.host == NULL && f.entries == NULL && f.n == 0);
        T_EQU(r->at, at);
        T_EQU(r->nth, nth);
    }
}

static void next_ok(struct sn_wire_stream *r)
{
    struct sn_wire_frame f;
    T_EQ(sn_wire_stream_next(r, &f, NULL, 0), 1);
    T_OK(f.id && sn_wire_frame_equal(&f, &scalar7));
    sn_wire_frame_fini(&f);
}

static void test_reader_errors(void)
{
    unsigned char b[256];
    struct sn_wire_stream r;
    ssize_t one = sn_wire_stream_put(&scalar7, b, sizeof(b));
    size_t two;
    char msg[128];

    T_EQ(one, 58);
    T_EQ(sn_wire_stream_put(&scalar7, b + one, sizeof(b) - (size_t)one), 58);
    two = 2 * (size_t)one;

    /* empty: no frame */
    sn_wire_stream_init(&r, b, 0, 0, 0);
    struct sn_wire_frame f;
    T_EQ(sn_wire_stream_next(&r, &f, NULL, 0), 0);

    /* 1..3 bytes of a length */
    for (size_t n = 1; n < 4; n++) {
        sn_wire_stream_init(&r, b, n, 0, 0);
        expect_error(&r, SN_E_TRUNCATED, "frame 1: truncated length");
    }
    sn_wire_stream_init(&r, b, (size_t)one + 2, 0, 0);
    next_ok(&r);
    expect_error(&r, SN_E_TRUNCATED, "frame 2: truncated length");

    /* every cut inside the second frame runs past the end */
    for (size_t n = (size_t)one + 4; n < two; n++) {
        sn_wire_stream_init(&r, b, n, 0, 0);
        next_ok(&r);
        expect_error(&r, SN_E_TRUNCATED, "frame 2: length 54 runs past the body");
    }
    sn_wire_stream_init(&r, b, two, 0, 0);
    next_ok(&r);
    next_ok(&r);
    T_EQ(sn_wire_stream_next(&r, &f, NULL, 0), 0);

    /* a length over the maximum, checked after the length fits */
    sn_wire_stream_init(&r, b, two, 53, 0);
    expect_error(&r, -EMSGSIZE, "frame 1: length 54 is over the maximum 53");
    sn_wire_stream_init(&r, b, two, 54, 0);
    next_ok(&r);
    next_ok(&r);

    /* max_frames */
    sn_wire_stream_init(&r, b, two, 0, 1);
    next_ok(&r);
    expect_error(&r, -E2BIG, "more than 1 frames");
    sn_wire_stream_init(&r, b, two - 1, 0, 1); /* truncated wins over too many */
    next_ok(&r);
    expect_error(&r, SN_E_TRUNCATED, "frame 2: length 54 runs past the body");

    /* a bad frame: its checksum, a zero length, a length one short of the frame */
    b[one + 4 + 20] ^= 0x01;
    sn_wire_stream_init(&r, b, two, 0, 0);
    next_ok(&r);
    snprintf(msg, sizeof(msg), "frame 2: %s", sn_strerror(SN_E_CORRUPT));
    expect_error(&r, SN_E_CORRUPT, msg);
    b[one + 4 + 20] ^= 0x01;

    uint32_t le = htole32(0);
    memcpy(b + one, &le, 4);
    sn_wire_stream_init(&r, b, two, 0, 0);
    next_ok(&r);
    snprintf(msg, sizeof(msg), "frame 2: %s", sn_strerror(SN_E_TRUNCATED));
    expect_error(&r, SN_E_TRUNCATED, msg);

    le = htole32(53);
    memcpy(b + one, &le, 4);
    sn_wire_stream_init(&r, b, two, 0, 0);
    next_ok(&r);
    snprintf(msg, sizeof(msg), "frame 2: %s", sn_strerror(SN_E_CORRUPT)); /* its checksum */
    expect_error(&r, SN_E_CORRUPT, msg);

    /* a huge length: runs past, no allocation */
    le = htole32(UINT32_MAX);
    memcpy(b, &le, 4);
    sn_wire_stream_init(&r, b, two, 0, 0);
    expect_error(&r, SN_E_TRUNCATED, "frame 1: length 4294967295 runs past the body");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("the bytes of a one-frame stream; the writer's refusals", test_bytes);
    t_run("every arity written to a file reads back in order", test_file_round_trip);
    t_run("a failed write is -EIO", test_write_fails);
    t_run("reader errors: code, message, position", test_reader_errors);
    return t_done();
}
