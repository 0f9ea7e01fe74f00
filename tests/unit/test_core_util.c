/*
 * The small core utilities: the clocks (core/clock.h), the growable array (core/grow.h) and
 * the one histogram -> CA ranges rule (sn_hist_ranges(), core/hist.h).
 */
#include <errno.h>
#include <string.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/crc32c.h"
#include "core/grow.h"
#include "core/hist.h"
#include "t.h"

static void test_clock(void)
{
    int64_t s = sn_now(), ms = sn_now_ms(), m0 = sn_mono_ns();
    T_OK(s > 1700000000);
    T_OK(ms / 1000 >= s && ms / 1000 <= s + 1);
    struct timespec d = {0, 20 * 1000000};
    nanosleep(&d, NULL);
    int64_t m1 = sn_mono_ns();
    T_OK(m1 - m0 >= 20 * 1000000);
    T_OK(m1 - m0 < 5LL * 1000000000);
    T_OK(sn_mono_ms() >= m1 / 1000000);
}

static void test_grow(void)
{
    int *a = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        if (n == cap) {
            int *p = sn_grow(a, &cap, n + 1, sizeof(*a));
            T_REQUIRE(p != NULL);
            a = p;
        }
        a[n++] = i;
    }
    T_EQU(cap, 1024); /* 16 doubled */
    for (int i = 0; i < 1000; i++)
        if (a[i] != i)
            T_EQ(a[i], i);
    T_OK(sn_grow(a, &cap, 10, sizeof(*a)) == a); /* enough already */
    T_EQU(cap, 1024);
    /* overflow: refused, and a and cap unchanged */
    T_OK(sn_grow(a, &cap, SIZE_MAX / 2, 16) == NULL);
    T_OK(sn_grow(a, &cap, SIZE_MAX, 1) == NULL);
    T_EQU(cap, 1024);
    T_EQ(a[999], 999);
    free(a);
}

/* Range x is [l, h] holding c. */
#define T_RANGE(x, l, h, c)                                                                        \
    do {                                                                                           \
        T_EQ((x).lo, l);                                                                           \
        T_EQ((x).hi, h);                                                                           \
        T_EQU((x).count, c);                                                                       \
    } while (0)

/* CRC-32C's check values (RFC 3720 B.4), through whichever path this CPU takes, at every
 * alignment and tail length; and bulk appends of ordinals. */
static void test_crc_and_append(void)
{
    unsigned char zeros[32] = {0}, ones[32], buf[64];
    memset(ones, 0xff, sizeof(ones));
    T_EQ(sn_crc32c(0, "123456789", 9), 0xE3069283u);
    T_EQ(sn_crc32c(0, zeros, 32), 0x8A9136AAu);
    T_EQ(sn_crc32c(0, ones, 32), 0x62A8AB43u);
    for (size_t off = 0; off < 8; off++) {
        memcpy(buf + off, "123456789", 9);
        T_EQ(sn_crc32c(0, buf + off, 9), 0xE3069283u);
    }
    /* incremental: the CRC of a whole is the CRC of its parts chained */
    T_EQ(sn_crc32c(sn_crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);

    struct sn_hist *h = sn_hist_create();
    uint16_t ord[3] = {10, 20, 30}, bad[2] = {5, 5};
    uint64_t cnt[3] = {1, 2, 3};
    T_EQ(sn_hist_append_ords(h, ord, cnt, 3), 0);
    T_EQ(sn_hist_count(h), 6u);
    T_EQ(sn_hist_append_ords(h, bad, cnt, 2), -EINVAL); /* not after the last */
    uint16_t more[1] = {31};
    T_EQ(sn_hist_append_ords(h, more, cnt, 1), 0);
    T_EQ(sn_hist_nbuckets(h), 4u);
    uint16_t big[1] = {SN_BUCKET_NORD};
    struct sn_hist *e = sn_hist_create();
    T_EQ(sn_hist_append_ords(e, big, cnt, 1), -EINVAL);
    T_EQ(sn_hist_insert_u64(h, 1000, 1), 0); /* single inserts still work after a bulk one */
    T_EQ(sn_hist_count(h), 8u);
    sn_hist_destroy(e);
    sn_hist_destroy(h);

    /* merge_many (dense, from 4 sources) says what pairwise merges say: random histograms,
     * zero-count buckets, saturation, the target among the sources */
    uint64_t seed = 7;
    for (int round = 0; round < 50; round++) {
        struct sn_hist *src[12], *a = sn_hist_create(), *b;
        size_t n = 1 + (size_t)round % 12;
        for (size_t i = 0; i < n; i++) {
            src[i] = sn_hist_create();
            for (int k = 0; k < 30; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                sn_hist_insert_u64(src[i], (seed >> 33) % 100000, (seed >> 20) % 5);
            }
        }
        if (round == 3)
            sn_hist_insert_u64(src[0], 5, UINT64_MAX);
        sn_hist_insert_u64(a, 42, 1);
        b = sn_hist_clone(a);
        for (size_t i = 0; i < n; i++)
            sn_hist_merge(a, src[i]);
        T_EQ(sn_hist_merge_many(b, (const struct sn_hist *const *)src, n), 0);
        T_OK(sn_hist_equal(a, b));
        T_EQ(sn_hist_nbuckets(a), sn_hist_nbuckets(b));
        for (size_t i = 0; i < n; i++)
            sn_hist_destroy(src[i]);
        sn_hist_destroy(a);
        sn_hist_destroy(b);
    }
}

static void test_ranges(void)
{
    struct sn_hist *h = sn_hist_create();
    struct sn_hist_range r[16];

    T_EQU(sn_hist_ranges(NULL, r), 0);
    T_EQU(sn_hist_ranges(h, r), 0);
    sn_hist_insert_u64(h, 0, 2);
    sn_hist_insert_u64(h, 2345, 3);
    sn_hist_insert_u64(h, 1000000, 1);
    sn_hist_insert(h, 1.0, 4);    /* [1, 1] */
    sn_hist_insert(h, 1.15, 5);   /* {11,0} holds no integer: folds into [1, 1] */
    sn_hist_insert(h, NAN, 7);    /* skipped */
    sn_hist_insert_u64(h, 50, 0); /* empty: skipped */
    size_t n = sn_hist_ranges(h, r);
    T_REQUIRE(n == 4);
    T_RANGE(r[0], 0, 0, 2);
    T_RANGE(r[1], 1, 1, 9);
    T_RANGE(r[2], 2300, 2399, 3);
    T_RANGE(r[3], 1000000, 1099999, 1);
    /* folding saturates */
    sn_hist_insert(h, 1.15, UINT64_MAX - 1);
    n = sn_hist_ranges(h, r);
    T_EQU(r[1].count, UINT64_MAX);
    sn_hist_destroy(h);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("clock", test_clock);
    t_run("grow", test_grow);
    t_run("ranges", test_ranges);
    t_run("crc and append", test_crc_and_append);
    return t_done();
}
