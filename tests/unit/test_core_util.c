/*
 * The small core utilities: the clocks (core/clock.h), the growable array (core/grow.h) and
 * the one histogram -> CA ranges rule (sn_hist_ranges(), core/hist.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
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
    return t_done();
}
