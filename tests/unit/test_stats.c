/*
 * Histogram statistics (src/core/hist_stats.c): Type-1 and Type-7 quantiles worked by hand from
 * the spec's fair-resampling rule (circllhist.md 1.8), mean/sum/stddev/moment from harmonic
 * midpoints (1.9), threshold counts (1.10), and differential runs against the libcircllhist
 * model (tests/model), which must agree bit for bit except for Sonde's documented fixes:
 *   - moment(k) divides by N, upstream by N^k;
 *   - count_above does not count NaN samples, upstream does;
 *   - a bucket whose count is UINT64_MAX gives a finite quantile, upstream inf.
 *
 * Fair resampling, used in the hand-worked values below: the n samples of a bucket with left
 * edge L (the edge nearer -inf) and width w sit at L + k/(n+1)*w, k = 1..n. Type 1 takes
 * qn = N*q and k = ceil(qn - below) (0 -> 1); Type 7 takes qn = floor((N-1)*q + 1) and
 * k = qn - below. The walk stops at the first bucket whose running total is >= qn.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "llmodel.h"
#include "llmodel_sn.h"
#include "t.h"

#define NRANDOM 3000
#define NBIG    600

/* --- helpers ----------------------------------------------------------------------------- */

/* libcircllhist's private NaN: bit pattern 0x7fffffffffffffff. */
static double pnan(void)
{
    uint64_t u = 0x7fffffffffffffffULL;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static const enum sn_quantile_type T1 = SN_QUANTILE_TYPE1, T7 = SN_QUANTILE_TYPE7;

/* One quantile. */
static double q1(const struct sn_hist *h, double q, enum sn_quantile_type type)
{
    double out = -12345.0;
    int rc = sn_hist_quantiles(h, &q, 1, &out, type);
    t_note("q=%.17g type %d", q, (int)type);
    T_EQ(rc, 0);
    return out;
}

/* A histogram of (bucket, count) pairs, and its model twin when m is not NULL. */
static struct sn_hist *make(const struct sn_bucket *bs, const uint64_t *cs, size_t n,
                            struct llm_hist **m)
{
    struct sn_hist *h = sn_hist_create();
    if (m)
        *m = llm_create();
    for (size_t i = 0; i < n; i++) {
        sn_hist_insert_raw(h, bs[i], cs[i]);
        if (m)
            llm_insert_raw(*m, lb(bs[i]), cs[i]);
    }
    return h;
}

/* --- quantiles by hand ------------------------------------------------------------------- */

static void test_quantile_one_sample(void)
{
    struct sn_hist *h = sn_hist_create();
    double qs[] = {0.0, 1e-300, 0.25, 0.5, 0.75, 1.0};

    sn_hist_insert(h, 1.0, 1);
    /* {10,0}: L = 1.0, w = 0.1, n = 1. Type 1: qn = q <= 1, k = ceil(q) (0 -> 1) = 1;
     * Type 7: qn = floor(0*q + 1) = 1, k = 1. Both: 1.0 + 1/2*0.1 = 1.05, the arithmetic
     * midpoint (never the harmonic one). */
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        T_DEQ(q1(h, qs[i], T1), 1.05);
        T_DEQ(q1(h, qs[i], T7), 1.05);
    }
    sn_hist_destroy(h);
}

static void test_quantile_two_buckets(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert(h, 1.0, 1); /* {10,0}: 1.0 + 1/2*0.1 = 1.05 */
    sn_hist_insert(h, 2.0, 1); /* {20,0}: 2.0 + 1/2*0.1 = 2.05 */
    /* Type 1, N = 2 */
    T_DEQ(q1(h, 0.0, T1), 1.05);  /* qn = 0; 1 >= 0 stays in {10,0}; k = ceil(0) -> 1 */
    T_DEQ(q1(h, 0.5, T1), 1.05);  /* qn = 1; 1 >= 1 stays; k = ceil(1 - 0) = 1 */
    T_DEQ(q1(h, 0.51, T1), 2.05); /* qn = 1.02 > 1: {20,0}, k = ceil(1.02 - 1) = 1 */
    T_DEQ(q1(h, 1.0, T1), 2.05);  /* qn = 2: {20,0}, k = ceil(2 - 1) = 1 */
    /* Type 7, N = 2: qn = floor(q + 1) */
    T_DEQ(q1(h, 0.0, T7), 1.05);  /* qn = 1: {10,0}, k = 1 */
    T_DEQ(q1(h, 0.5, T7), 1.05);  /* qn = floor(1.5) = 1 */
    T_DEQ(q1(h, 0.99, T7), 1.05); /* qn = floor(1.99) = 1 */
    T_DEQ(q1(h, 1.0, T7), 2.05);  /* qn = 2: {20,0}, k = 2 - 1 = 1 */
    /* several q at once, non-decreasing, with repeats */
    {
        double q[] = {0.0, 0.5, 0.5, 0.51, 1.0}, out[5];
        double want[] = {1.05, 1.05, 1.05, 2.05, 2.05};
        T_EQ(sn_hist_quantiles(h, q, 5, out, T1), 0);
        for (int i = 0; i < 5; i++)
            T_DEQ(out[i], want[i]);
    }
    sn_hist_destroy(h);
}

static void test_quantile_three_in_one_bucket(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert_raw(h, bk(10, 0), 3);
    /* samples at 1 + k/4 * 0.1: k=1 -> 1.025, k=2 -> 1.05, k=3 -> 1.075 */
    /* Type 1, N = 3, qn = 3q */
    T_DEQ(q1(h, 0.0, T1), 1.025);       /* k = ceil(0) -> 1: 1 + 1/4*0.1 */
    T_DEQ(q1(h, 1.0 / 3.0, T1), 1.025); /* qn = 3*(1/3) = 1.0 (rounds to 1): k = 1 */
    T_DEQ(q1(h, 0.34, T1), 1.05);       /* qn = 1.02: k = 2: 1 + 2/4*0.1 */
    T_DEQ(q1(h, 0.5, T1), 1.05);        /* qn = 1.5: k = 2 */
    T_DEQ(q1(h, 2.0 / 3.0, T1), 1.05);  /* qn = 2.0 (rounds to 2): k = 2 */
    T_DEQ(q1(h, 0.67, T1), 1.075);      /* qn = 2.01: k = 3: 1 + 3/4*0.1 */
    T_DEQ(q1(h, 1.0, T1), 1.075);       /* qn = 3: k = 3 */
    /* Type 7, qn = floor(2q + 1) */
    T_DEQ(q1(h, 0.0, T7), 1.025);  /* qn = 1: k = 1 */
    T_DEQ(q1(h, 0.4, T7), 1.025);  /* qn = floor(1.8) = 1 (Type 1 gives k = 2 here) */
    T_DEQ(q1(h, 0.4, T1), 1.05);   /* Type 1 at the same q: qn = 1.2, k = 2 */
    T_DEQ(q1(h, 0.5, T7), 1.05);   /* qn = floor(2.0) = 2: k = 2 */
    T_DEQ(q1(h, 0.75, T7), 1.05);  /* qn = floor(2.5) = 2 */
    T_DEQ(q1(h, 0.999, T7), 1.05); /* qn = floor(2.998) = 2 */
    T_DEQ(q1(h, 1.0, T7), 1.075);  /* qn = 3: k = 3 */
    sn_hist_destroy(h);
}

static void test_quantile_walk_across_buckets(void)
{
    struct sn_hist *h = sn_hist_create();

    /* {10,0} x2, {50,0} x0 (kept, skipped by the walk), {30,1} x3: N = 5 */
    sn_hist_insert(h, 1.0, 2);
    sn_hist_insert(h, 5.0, 0);
    sn_hist_insert(h, 30.0, 3);
    /* {10,0}: 1 + k/3*0.1; {30,1}: L = 30, w = 1, 30 + k/4 */
    T_DEQ(q1(h, 0.2, T1), 1.0 + 1.0 / 3.0 * 0.1); /* qn = 1: k = 1 = 1.0333333333333334 */
    T_DEQ(q1(h, 0.2, T1), 1.0333333333333334);
    T_DEQ(q1(h, 0.4, T1), 1.0666666666666667); /* qn = 2: k = 2: 1 + 2/3*0.1 */
    T_DEQ(q1(h, 0.41, T1), 30.25);             /* qn = 2.05 > 2: past the empty {50,0}
                                                * (2 < 2.05), into {30,1}: k = ceil(0.05) = 1,
                                                * 30 + 1/4*1 */
    T_DEQ(q1(h, 0.8, T1), 30.5);               /* qn = 4: k = 2: 30 + 2/4 */
    T_DEQ(q1(h, 1.0, T1), 30.75);              /* qn = 5: k = 3 */
    /* Type 7, qn = floor(4q + 1) */
    T_DEQ(q1(h, 0.25, T7), 1.0666666666666667); /* qn = 2: {10,0}, k = 2 */
    T_DEQ(q1(h, 0.3, T7), 1.0666666666666667);  /* qn = floor(2.2) = 2 */
    T_DEQ(q1(h, 0.5, T7), 30.25);               /* qn = 3: {30,1}, k = 3 - 2 = 1 */
    T_DEQ(q1(h, 1.0, T7), 30.75);               /* qn = 5: k = 3 */
    sn_hist_destroy(h);
}

static void test_quantile_zero_bucket(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert(h, 0.0, 5);
    /* width 0: exactly 0, whatever q */
    T_DEQ(q1(h, 0.0, T1), 0.0);
    T_DEQ(q1(h, 0.5, T1), 0.0);
    T_DEQ(q1(h, 1.0, T1), 0.0);
    T_DEQ(q1(h, 0.5, T7), 0.0);
    sn_hist_insert(h, -1.0, 5); /* {-10,0}: L = -1.1, w = 0.1, n = 5 */
    sn_hist_insert(h, 1.0, 5);  /* {10,0}: L = 1.0 */
    /* N = 15 */
    T_DEQ(q1(h, 0.5, T1), 0.0);         /* qn = 7.5: in the zero bucket (5 < 7.5 <= 10) */
    T_DEQ(q1(h, 10.0 / 15.0, T1), 0.0); /* qn = 10: the zero bucket's last sample */
    T_DEQ(q1(h, 0.0, T1), -1.1 + 1.0 / 6.0 * 0.1); /* -1.0833333333333335 */
    T_DEQ(q1(h, 0.0, T1), -1.0833333333333335);
    T_DEQ(q1(h, 1.0, T1), 1.0833333333333333); /* 1.0 + 5/6*0.1 */
    T_DEQ(q1(h, 0.5, T7), 0.0);                /* qn = floor(14*0.5 + 1) = 8 */
    sn_hist_destroy(h);
}

static void test_quantile_negative_left_edge(void)
{
    struct sn_hist *h = sn_hist_create();

    /* {-10,0} = (-1.1, -1.0]: its left edge (toward -inf) is -1.0 - 0.1 = -1.1 */
    sn_hist_insert(h, -1.0, 1);
    T_DEQ(q1(h, 0.5, T1), -1.05); /* -1.1 + 1/2*0.1 */
    T_DEQ(q1(h, 0.5, T7), -1.05);
    sn_hist_insert(h, -1.0, 1);
    /* two samples at -1.1 + 1/3*0.1 and -1.1 + 2/3*0.1: the lower one nearer -1.1 */
    T_DEQ(q1(h, 0.0, T1), -1.0666666666666667); /* k = 1 */
    T_DEQ(q1(h, 0.5, T1), -1.0666666666666667); /* qn = 1: k = 1 */
    T_DEQ(q1(h, 1.0, T1), -1.0333333333333334); /* qn = 2: k = 2 */
    T_DEQ(q1(h, 1.0, T7), -1.0333333333333334);
    sn_hist_destroy(h);

    /* {-25,-2} = (-0.026, -0.025]: L = (-25/10.0 * 1e-2) - 1e-2/10.0 = -0.025 - 0.001,
     * which rounds to -0.026000000000000002 (not the literal -0.026) */
    h = sn_hist_create();
    sn_hist_insert(h, -0.025, 3);
    T_DEQ(sn_bucket_left(bk(-25, -2)), -0.026000000000000002);
    T_DEQ(q1(h, 0.0, T1), -0.025750000000000002); /* L + 1/4 * 0.001 */
    T_DEQ(q1(h, 1.0, T1), -0.02525);              /* L + 3/4 * 0.001 */
    T_OK(q1(h, 0.0, T1) < q1(h, 1.0, T1));
    T_OK(q1(h, 0.0, T1) > -0.026 && q1(h, 1.0, T1) < -0.025);
    sn_hist_destroy(h);

    /* negatives then positives: order along the real axis */
    h = sn_hist_create();
    sn_hist_insert(h, -20.0, 1); /* {-20,1}: L = -21, w = 1: -20.5 */
    sn_hist_insert(h, -1.0, 1);  /* -1.05 */
    sn_hist_insert(h, 3.0, 1);   /* {30,0}: 3.05 */
    T_DEQ(q1(h, 0.0, T1), -20.5);
    T_DEQ(q1(h, 0.5, T1), -1.05); /* qn = 1.5 */
    T_DEQ(q1(h, 1.0, T1), 3.05);
    sn_hist_destroy(h);
}

static void test_quantile_worst_case_10_percent(void)
{
    struct sn_hist *h = sn_hist_create();
    double q = 1.0, out;

    /* 1e6 samples of exactly 1.0: q(1) is the top sample, 1 + 1e6/(1e6+1) * 0.1 */
    sn_hist_insert(h, 1.0, 1000000);
    T_EQ(sn_hist_quantiles(h, &q, 1, &out, T1), 0);
    T_DEQ(out, 1.0999999000001);
    T_NEAR((out - 1.0) / 1.0, 0.1, 1e-7); /* the spec's 10 % worst-case relative error */
    T_DEQ(q1(h, 0.0, T1), 1.0 + 1.0 / 1000001.0 * 0.1); /* the bottom sample */
    T_DEQ(q1(h, 0.5, T1), 1.0 + 500000.0 / 1000001.0 * 0.1);
    T_DEQ(q1(h, 1.0, T7), 1.0999999000001);
    sn_hist_destroy(h);
}

static void test_quantile_bad_q(void)
{
    struct sn_hist *h = sn_hist_create(), *e = sn_hist_create();
    double bad[] = {-0.1, -DBL_MIN, 1.0000000000000002, 2.0, NAN, INFINITY, -INFINITY};
    double out[3];

    sn_hist_insert(h, 1.0, 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double q[] = {0.0, bad[i]};
        t_note("q = %g", bad[i]);
        T_EQ(sn_hist_quantiles(h, q, 2, out, T1), -EDOM);
        T_EQ(sn_hist_quantiles(h, q, 2, out, T7), -EDOM);
        T_EQ(sn_hist_quantiles(h, &bad[i], 1, out, T1), -EDOM);
        /* Sonde checks q before looking at the histogram: -EDOM for an empty one too (the
         * model, like upstream, returns 0 and NaNs for an empty histogram without looking) */
        T_EQ(sn_hist_quantiles(e, &bad[i], 1, out, T1), -EDOM);
    }
    t_note("%s", "");
    {
        struct llm_hist *m = llm_create();
        double q = 2.0;
        T_EQ(llm_quantile(m, &q, 1, out), 0);
        T_DEQ(out[0], pnan());
        llm_insert(m, 1.0, 3);
        T_EQ(llm_quantile(m, &q, 1, out), -3); /* upstream's -3 is Sonde's -EDOM */
        llm_destroy(m);
    }
    /* -0.0 is inside [0, 1] */
    {
        double q = -0.0;
        T_EQ(sn_hist_quantiles(h, &q, 1, out, T1), 0);
        T_DEQ(out[0], 1.025); /* k = ceil(-0.0) = -0.0 == 0 -> 1 */
    }
    /* decreasing q: -EINVAL (upstream -2) */
    {
        double q[] = {0.5, 0.4}, q3[] = {0.1, 0.9, 0.8};
        struct llm_hist *m = llm_create();
        llm_insert(m, 1.0, 3);
        T_EQ(sn_hist_quantiles(h, q, 2, out, T1), -EINVAL);
        T_EQ(sn_hist_quantiles(h, q, 2, out, T7), -EINVAL);
        T_EQ(sn_hist_quantiles(h, q3, 3, out, T1), -EINVAL);
        T_EQ(sn_hist_quantiles(e, q, 2, out, T1), -EINVAL);
        T_EQ(llm_quantile(m, q, 2, out), -2);
        llm_destroy(m);
    }
    /* n = 0: nothing to do */
    T_EQ(sn_hist_quantiles(h, NULL, 0, NULL, T1), 0);
    sn_hist_destroy(h);
    sn_hist_destroy(e);
}

static void test_quantile_empty_and_nan_only(void)
{
    double q[] = {0.0, 0.5, 1.0}, out[3];
    struct sn_hist *h = sn_hist_create();

    /* empty */
    for (int type = 1; type <= 7; type += 6) {
        out[0] = out[1] = out[2] = 1.0;
        T_EQ(sn_hist_quantiles(h, q, 3, out, (enum sn_quantile_type)type), 0);
        for (int i = 0; i < 3; i++)
            T_DEQ(out[i], pnan()); /* bits 0x7fffffffffffffff */
    }
    /* zero-count buckets only */
    sn_hist_insert(h, 1.0, 0);
    sn_hist_insert(h, -5.0, 0);
    T_EQ(sn_hist_quantiles(h, q, 3, out, T1), 0);
    for (int i = 0; i < 3; i++)
        T_DEQ(out[i], pnan());
    /* NaN samples only: the NaN bucket is not part of the total */
    sn_hist_insert(h, NAN, 100);
    for (int type = 1; type <= 7; type += 6) {
        T_EQ(sn_hist_quantiles(h, q, 3, out, (enum sn_quantile_type)type), 0);
        for (int i = 0; i < 3; i++)
            T_DEQ(out[i], pnan());
    }
    /* one real sample among NaNs: the NaNs do not move it */
    sn_hist_insert(h, 2.0, 1);
    T_EQ(sn_hist_quantiles(h, q, 3, out, T1), 0);
    for (int i = 0; i < 3; i++)
        T_DEQ(out[i], 2.05);
    sn_hist_destroy(h);
}

static void test_quantile_count_uint64_max(void)
{
    struct sn_bucket bs[] = {bk(10, 0)};
    uint64_t cs[] = {UINT64_MAX};
    struct llm_hist *m;
    struct sn_hist *h = make(bs, cs, 1, &m);
    double q[] = {0.0, 0.5, 1.0}, out[3], mout[3];

    /* N = n = 2^64 - 1, (double)N = 2^64. Sonde uses n+1 = 2^64 (as a double);
     * upstream's (double)(n + 1) wraps to 0 and gives inf. */
    T_EQ(sn_hist_quantiles(h, q, 3, out, T1), 0);
    T_EQ(llm_quantile(m, q, 3, mout), 0);
    T_DEQ(out[0], 1.0);  /* k = 1: 1 + 2^-64 * 0.1 rounds to 1.0 */
    T_DEQ(out[1], 1.05); /* qn = 2^63: 1 + (2^63 / 2^64) * 0.1 */
    T_DEQ(out[2], 1.1);  /* qn = 2^64: 1 + 1 * 0.1 */
    for (int i = 0; i < 3; i++)
        T_DEQ(mout[i], INFINITY); /* upstream: k / 0 * w */
    T_EQ(sn_hist_quantiles(h, q, 3, out, T7), 0);
    T_EQ(llm_quantile7(m, q, 3, mout), 0);
    T_DEQ(out[1], 1.05); /* qn = floor((2^64 - 1) * 0.5 + 1) = 2^63 in doubles */
    T_DEQ(mout[1], INFINITY);
    /* mean and sum are not affected: both agree with the model */
    T_DEQ(sn_hist_mean(h), llm_mean(m));
    T_DEQ(sn_hist_mean(h), 1.0476190476190477);
    T_DEQ(sn_hist_sum(h), llm_sum(m));
    T_DEQ(sn_hist_sum(h), 1.0476190476190477 * 18446744073709551616.0);
    sn_hist_destroy(h);
    llm_destroy(m);
}

/* --- mean, sum, stddev, moment ----------------------------------------------------------- */

static void test_mean_sum_stddev_hand(void)
{
    /* harmonic midpoints: {10,0}: 1 + 0.1 * (1 / 2.1) = 1.0476190476190477 (= 2*1*1.1/2.1);
     * {20,0}: 2 + 0.1 * (2 / 4.1) = 2.048780487804878 */
    const double m1 = 1.0476190476190477, m2 = 2.048780487804878;
    struct sn_hist *h = sn_hist_create();

    T_DEQ(sn_bucket_midpoint(bk(10, 0)), m1);
    T_DEQ(sn_bucket_midpoint(bk(20, 0)), m2);

    sn_hist_insert(h, 1.0, 1);
    T_DEQ(sn_hist_mean(h), m1); /* m1*1 / 1 */
    T_DEQ(sn_hist_sum(h), m1);
    T_DEQ(sn_hist_stddev(h), 0.0); /* sqrt(m1*m1/1 - m1*m1) = sqrt(0) */

    sn_hist_insert(h, 1.0, 1);
    sn_hist_insert(h, 2.0, 2);
    /* sum = m1*2 + m2*2 = 2.0952380952380953 + 4.097560975609756 = 6.192799070847851 */
    T_DEQ(sn_hist_sum(h), 6.192799070847851);
    /* mean = 6.192799070847851 / 4 */
    T_DEQ(sn_hist_mean(h), 1.5481997677119628);
    /* stddev = sqrt((m1*m1*2 + m2*m2*2)/4 - mean*mean) ~ (m2 - m1)/2 = 0.50058072009291... */
    T_DEQ(sn_hist_stddev(h), 0.5005807200929154);
    T_NEAR(sn_hist_stddev(h), (m2 - m1) / 2, 1e-15);

    /* NaN samples are left out of all three */
    sn_hist_insert(h, NAN, 1000);
    T_DEQ(sn_hist_sum(h), 6.192799070847851);
    T_DEQ(sn_hist_mean(h), 1.5481997677119628);
    T_DEQ(sn_hist_stddev(h), 0.5005807200929154);
    sn_hist_destroy(h);

    /* negatives: {-10,0} midpoint -1 + -0.1 * (-1 / -2.1) = -1.0476190476190477 */
    h = sn_hist_create();
    sn_hist_insert(h, -1.0, 1);
    T_DEQ(sn_hist_mean(h), -m1);
    sn_hist_insert(h, 1.0, 1);
    T_DEQ(sn_hist_sum(h), 0.0);  /* -m1 + m1 */
    T_DEQ(sn_hist_mean(h), 0.0); /* 0 / 2 */
    /* sqrt((m1*m1 + m1*m1)/2 - 0) = sqrt(m1*m1) */
    T_DEQ(sn_hist_stddev(h), sqrt(m1 * m1));
    T_DEQ(sn_hist_stddev(h), m1);
    /* zero bucket: midpoint 0 */
    sn_hist_insert(h, 0.0, 2);
    T_DEQ(sn_hist_sum(h), 0.0);
    T_DEQ(sn_hist_mean(h), 0.0);
    sn_hist_destroy(h);
}

static void test_mean_sum_stddev_empty(void)
{
    struct sn_hist *h = sn_hist_create();

    /* no buckets */
    T_DEQ(sn_hist_mean(h), pnan());
    T_DEQ(sn_hist_sum(h), 0.0);
    T_DEQ(sn_hist_stddev(h), 0.0);
    T_DEQ(sn_hist_moment(h, 2.0), pnan());
    /* buckets, all with count 0 */
    sn_hist_insert(h, 1.0, 0);
    sn_hist_insert(h, 2.0, 0);
    T_DEQ(sn_hist_mean(h), pnan());
    T_DEQ(sn_hist_sum(h), 0.0);
    T_DEQ(sn_hist_stddev(h), pnan());
    sn_hist_destroy(h);
    /* only NaN samples */
    h = sn_hist_create();
    sn_hist_insert(h, NAN, 7);
    T_DEQ(sn_hist_mean(h), pnan());
    T_DEQ(sn_hist_sum(h), 0.0);
    T_DEQ(sn_hist_stddev(h), pnan());
    T_DEQ(sn_hist_moment(h, 1.0), pnan());
    sn_hist_destroy(h);
    /* all as the model says */
    {
        struct llm_hist *m = llm_create();
        T_DEQ(llm_stddev(m), 0.0);
        T_DEQ(llm_mean(m), pnan());
        llm_insert(m, 1.0, 0);
        T_DEQ(llm_stddev(m), pnan());
        llm_destroy(m);
    }
}

static void test_stddev_squares_not_pow(void)
{
    /* upstream writes pow(m, 2.0), which the reference (optimised) build folds to m*m; glibc's
     * pow(m, 2.0) differs from m*m by an ulp for a few dozen midpoints (44 with glibc 2.36).
     * On each of those, {b x1, zero x1} must give the model's (m*m) stddev, and the pow
     * version would differ: sqrt(m*m/2 - (m/2)^2) vs sqrt(pow(m,2)/2 - (m/2)^2). */
    volatile double two = 2.0; /* keeps the compiler from folding pow(m, two) here */
    int npow = 0, ndiffer = 0;

    for (uint32_t o = 1; o < SN_BUCKET_NORD; o++) {
        struct sn_bucket b = sn_bucket_from_ord(o);
        double mid = sn_bucket_midpoint(b), mean, with_pow;
        struct sn_hist *h;
        struct llm_hist *m;

        if (pow(mid, two) == mid * mid)
            continue;
        npow++;
        {
            struct sn_bucket bs[] = {b, ZEROB};
            uint64_t cs[] = {1, 1};
            h = make(bs, cs, 2, &m);
        }
        t_note("bucket {%d,%d} midpoint %.17g", b.val, b.exp, mid);
        T_DEQ(sn_hist_stddev(h), llm_stddev(m));
        mean = mid / 2.0;
        T_DEQ(sn_hist_stddev(h), sqrt(mid * mid / 2.0 - mean * mean));
        with_pow = sqrt(pow(mid, two) / 2.0 - mean * mean);
        ndiffer += sn_hist_stddev(h) != with_pow;
        sn_hist_destroy(h);
        llm_destroy(m);
    }
    t_note("%d midpoints where pow(m,2) != m*m, %d stddevs that tell them apart", npow, ndiffer);
    /* where the libm's pow is not exact for some midpoint, the test can tell the two apart */
    T_OK(npow == 0 || ndiffer > 0);
}

/* upstream's moment: sum(pow(m, k) * c) / pow(N, k), from the model's midpoints */
static double upstream_moment(const struct llm_hist *m, double k)
{
    double n = 0.0, sk = 0.0;
    struct llm_bucket b;
    uint64_t c;

    for (int i = 0; llm_get(m, i, &b, &c); i++) {
        if (llm_bucket_is_nan(b))
            continue;
        n += (double)c;
        sk += pow(llm_bucket_midpoint(b), k) * (double)c;
    }
    return sk / pow(n, k);
}

static void test_moment(void)
{
    struct sn_bucket bs[] = {bk(10, 0), bk(20, 0), NANB};
    uint64_t cs[] = {2, 2, 9};
    struct llm_hist *m;
    struct sn_hist *h = make(bs, cs, 3, &m);

    T_DEQ(sn_hist_moment(h, 0.0), 1.0);             /* (2 + 2) / 4 */
    T_DEQ(sn_hist_moment(h, 1.0), sn_hist_mean(h)); /* same sum, same order */
    T_DEQ(sn_hist_moment(h, 1.0), 1.5481997677119628);
    /* (pow(m1,2)*2 + pow(m2,2)*2) / 4 = (2.195011337868481 + 8.395002974419988) / 4 */
    T_DEQ(sn_hist_moment(h, 2.0), 2.6475035780721172);
    /* Sonde divides by N, upstream by N^k: here N = 4, k = 2, so upstream is 4x smaller
     * (exactly: both divisions are by powers of two) */
    T_DEQ(upstream_moment(m, 2.0), 0.6618758945180293);
    T_DEQ(sn_hist_moment(h, 2.0), upstream_moment(m, 2.0) * 4.0);
    T_DEQ(sn_hist_moment(h, 1.0), upstream_moment(m, 1.0)); /* k = 1: no difference */
    T_DEQ(sn_hist_moment(h, 3.0), upstream_moment(m, 3.0) * 16.0);
    /* a single sample: the k-th moment is m^k */
    {
        struct sn_hist *one = sn_hist_create();
        sn_hist_insert(one, 1.0, 1);
        T_DEQ(sn_hist_moment(one, 2.0), pow(1.0476190476190477, 2.0));
        T_DEQ(sn_hist_moment(one, 3.0), pow(1.0476190476190477, 3.0));
        sn_hist_destroy(one);
    }
    sn_hist_destroy(h);
    llm_destroy(m);
}

/* --- threshold counts -------------------------------------------------------------------- */

/* -2.0 x1, -1.0 x2, 0 x3, 1.0 x4, 1.5 x5, 20 x6, NaN x7: 21 non-NaN samples, 28 in all */
static struct sn_hist *count_fixture(struct llm_hist **m)
{
    struct sn_bucket bs[] = {bk(-20, 0), bk(-10, 0), ZEROB, bk(10, 0), bk(15, 0), bk(20, 1), NANB};
    uint64_t cs[] = {1, 2, 3, 4, 5, 6, 7};
    return make(bs, cs, 7, m);
}

static void test_count_below_above(void)
{
    struct llm_hist *m;
    struct sn_hist *h = count_fixture(&m);
    struct {
        double thr;
        uint64_t below_in, below_ex, above_in, above_ex;
    } cases[] = {
        /* inside {10,0}: below <= {10,0}: 1+2+3+4; < : 1+2+3; above >= {10,0}: 4+5+6 */
        {1.05, 10, 6, 15, 11},
        {1.0, 10, 6, 15, 11},  /* its lower edge: the same bucket */
        {1.09, 10, 6, 15, 11}, /* near its upper edge */
        {1.1, 10, 10, 11, 11}, /* upper edge: empty {11,0}, between buckets */
        /* the 1e-13 fuzz moves values a few ulps below an edge up a bucket:
         * 1.0999999999999999 -> {11,0}, 0.99999999999999989 -> {10,0} */
        {nextafter(1.1, 0.0), 10, 10, 11, 11},
        {nextafter(1.0, 0.0), 10, 6, 15, 11},
        {0.99, 6, 6, 15, 15},    /* {99,-1}: empty, between zero and {10,0} */
        {1.5, 15, 10, 11, 6},    /* {15,0} */
        {25.0, 21, 21, 0, 0},    /* {25,1}: above everything stored */
        {20.0, 21, 15, 6, 0},    /* {20,1}, the last bucket */
        {1e9, 21, 21, 0, 0},     /* far above */
        {9.9e127, 21, 21, 0, 0}, /* the top bucket */
        {-1e9, 0, 0, 21, 21},    /* far below */
        {-2.05, 1, 0, 21, 20},   /* inside {-20,0} = (-2.1, -2.0] */
        {-2.1, 0, 0, 21, 21},    /* {-21,0}, more negative: below everything */
        {-1.0, 3, 1, 20, 18},    /* {-10,0} = (-1.1, -1.0]: 1+2; 1 */
        {-1.05, 3, 1, 20, 18},   /* inside {-10,0} */
        {-1.1, 1, 1, 20, 20},    /* {-11,0}: between {-20,0} and {-10,0} */
        {-0.5, 3, 3, 18, 18},    /* {-50,-1}: between {-10,0} and zero */
        {0.0, 6, 3, 18, 15},     /* zero bucket */
        {-0.0, 6, 3, 18, 15},    /* zero bucket */
        {1e-200, 6, 3, 18, 15},  /* below 1e-128: zero bucket */
        {-1e-200, 6, 3, 18, 15},
        {1e-128, 6, 6, 15, 15}, /* {10,-128}: just above zero */
        /* NaN, +-inf and |x| >= 1e128 map to the NaN bucket, which sorts first: nothing is
         * below it, everything (but NaN samples: Sonde's fix) is above it */
        {NAN, 0, 0, 21, 21},
        {INFINITY, 0, 0, 21, 21},
        {-INFINITY, 0, 0, 21, 21},
        {1e200, 0, 0, 21, 21},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double thr = cases[i].thr;
        t_note("threshold %.17g", thr);
        T_EQU(sn_hist_count_below(h, thr, true), cases[i].below_in);
        T_EQU(sn_hist_count_below(h, thr, false), cases[i].below_ex);
        T_EQU(sn_hist_count_above(h, thr, true), cases[i].above_in);
        T_EQU(sn_hist_count_above(h, thr, false), cases[i].above_ex);
        /* below agrees with upstream; above is upstream's minus the 7 NaN samples */
        T_EQU(sn_hist_count_below(h, thr, true), llm_count_below(m, thr));
        T_EQU(sn_hist_count_below(h, thr, false), llm_count_below_exclusive(m, thr));
        T_EQU(sn_hist_count_above(h, thr, true), llm_count_above(m, thr) - 7);
        T_EQU(sn_hist_count_above(h, thr, false), llm_count_above_exclusive(m, thr) - 7);
    }
    sn_hist_destroy(h);
    llm_destroy(m);

    /* empty histogram, and zero-count buckets */
    h = sn_hist_create();
    T_EQU(sn_hist_count_below(h, 1.0, true), 0);
    T_EQU(sn_hist_count_above(h, 1.0, true), 0);
    sn_hist_insert(h, 1.0, 0);
    sn_hist_insert(h, NAN, 0);
    T_EQU(sn_hist_count_below(h, 5.0, true), 0);
    T_EQU(sn_hist_count_above(h, 0.0, true), 0);
    sn_hist_destroy(h);
}

static void test_count_above_nan_fix(void)
{
    struct llm_hist *m;
    struct sn_hist *h = count_fixture(&m);

    /* upstream's count_above starts from the sample count, which includes the 7 NaN
     * samples, so they count as "above" every threshold; Sonde leaves them out */
    T_EQU(llm_count_above(m, 1e9), 7); /* nothing is above 1e9 but NaN */
    T_EQU(sn_hist_count_above(h, 1e9, true), 0);
    T_EQU(llm_count_above(m, -1e9), 28);
    T_EQU(sn_hist_count_above(h, -1e9, true), 21);
    T_EQU(llm_count_above_exclusive(m, 20.0), 7);
    T_EQU(sn_hist_count_above(h, 20.0, false), 0);
    /* below never counted them, on either side */
    T_EQU(llm_count_below(m, 1e9), 21);
    T_EQU(sn_hist_count_below(h, 1e9, true), 21);
    /* so below + above-exclusive == all non-NaN samples in Sonde, == all samples upstream */
    T_EQU(sn_hist_count_below(h, 1.5, true) + sn_hist_count_above(h, 1.5, false), 21);
    T_EQU(llm_count_below(m, 1.5) + llm_count_above_exclusive(m, 1.5), 28);
    T_EQU(sn_hist_count(h), 28);
    sn_hist_destroy(h);
    llm_destroy(m);
}

static void test_count_saturates(void)
{
    struct sn_bucket bs[] = {bk(10, 0), bk(20, 0), bk(30, 0)};
    uint64_t cs[] = {UINT64_MAX - 1, 5, UINT64_MAX};
    struct sn_hist *h = make(bs, cs, 3, NULL);

    T_EQU(sn_hist_count_below(h, 1.0, true), UINT64_MAX - 1);
    T_EQU(sn_hist_count_below(h, 2.0, true), UINT64_MAX); /* saturates, does not wrap to 3 */
    T_EQU(sn_hist_count_below(h, 3.0, false), UINT64_MAX);
    T_EQU(sn_hist_count_above(h, 2.0, true), UINT64_MAX);
    T_EQU(sn_hist_count_above(h, 2.0, false), UINT64_MAX);
    T_EQU(sn_hist_count_above(h, 3.0, false), 0);
    T_EQU(sn_hist_count_above(h, 1.5, false), UINT64_MAX);
    sn_hist_destroy(h);
}

/* --- differential against the model ------------------------------------------------------ */

static struct sn_bucket rand_bucket(void)
{
    uint64_t r = t_rand() % 100;
    int val = 10 + (int)(t_rand() % 90);
    int exp = r < 10 ? (int)(t_rand() % 256) - 128 : (int)(t_rand() % 7) - 3;

    if (r < 5)
        return NANB;
    if (r < 10)
        return ZEROB;
    return bk(t_rand() % 3 == 0 ? -val : val, exp);
}

static uint64_t rand_small_count(void)
{
    uint64_t r = t_rand() % 100;

    if (r < 12)
        return 0;
    if (r < 17)
        return 1 + t_rand() % 1000000;
    return 1 + t_rand() % 1000;
}

/* q values to probe: fixed ones, ranks that fall exactly on running totals (the walk's
 * "upper < qn" edge), their neighbours, and random sorted ones. Returns how many. */
static size_t probe_qs(const struct sn_hist *h, double *q, size_t cap)
{
    static const double fixed[] = {0.0,  4.9e-324, 1e-12, 0.001, 0.25, 0.5,
                                   0.75, 0.9,      0.99,  0.999, 1.0};
    size_t n = 0, nb = sn_hist_nbuckets(h);
    double total = 0.0;
    struct sn_bucket b;
    uint64_t c;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++)
        if (b.val != -1)
            total += (double)c;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        q[n++] = fixed[i];
    if (total > 0) {
        double run = 0.0;
        for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c) && n + 3 <= cap - 12; i++) {
            if (b.val == -1)
                continue;
            run += (double)c;
            if (t_rand() % 2 || nb < 8) {
                double x = run / total;
                if (x <= 1.0) {
                    q[n++] = x;
                    q[n++] = nextafter(x, 0.0);
                    q[n++] = fmin(1.0, nextafter(x, 2.0));
                }
            }
        }
    }
    for (int i = 0; i < 12 && n < cap; i++)
        q[n++] = t_rand() % 8 ? t_rand01() : (double)(t_rand() % 5) / 4.0;
    /* sort (insertion; small) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && q[j - 1] > q[j]; j--) {
            double x = q[j];
            q[j] = q[j - 1];
            q[j - 1] = x;
        }
    return n;
}

/* Thresholds to probe: edges, midpoints and neighbours of some stored buckets, and specials. */
static size_t probe_thresholds(const struct sn_hist *h, double *t, size_t cap)
{
    static const double fixed[] = {0.0,   -0.0,   NAN, INFINITY, -INFINITY, 1e-300, -1e-300,
                                   1e300, -1e300, 1.0, -1.0,     1e-128,    -1e-128};
    size_t n = 0;
    struct sn_bucket b;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        t[n++] = fixed[i];
    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, NULL) && n + 6 <= cap; i++) {
        double lo, w;
        if (t_rand() % 3)
            continue;
        lo = sn_bucket_left(b);
        w = sn_bucket_width(b);
        t[n++] = sn_bucket_to_double(b);
        t[n++] = sn_bucket_midpoint(b);
        t[n++] = lo;
        t[n++] = nextafter(lo, -INFINITY);
        t[n++] = lo + w;
        t[n++] = nextafter(lo + w, -INFINITY);
    }
    return n;
}

/* Whether x lies in (the closed interval of) a bucket of h whose count is UINT64_MAX. */
static bool in_saturated_bucket(const struct sn_hist *h, double x)
{
    struct sn_bucket b;
    uint64_t c;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++)
        if (c == UINT64_MAX && x >= sn_bucket_left(b) &&
            x <= sn_bucket_left(b) + sn_bucket_width(b))
            return true;
    return false;
}

/* quantiles where the model gave inf (a UINT64_MAX bucket) and Sonde a finite value */
static int n_upstream_inf;

/* Compares every statistic of h with the model m, bit for bit. Threshold counts: when the
 * total fits in a u64, with the model's (above: minus the NaN samples, Sonde's fix);
 * otherwise (upstream wraps, Sonde saturates) with exact 128-bit sums, clamped.
 * Quantiles landing in a UINT64_MAX bucket are inf upstream and finite here. */
static void compare_with_model(const struct sn_hist *h, const struct llm_hist *m)
{
    double q[160], out[160], mout[160], thr[400];
    size_t nq = probe_qs(h, q, 160), nt;
    uint64_t nan_count = sn_hist_bucket_count(h, NANB);
    unsigned __int128 all = 0;
    struct llm_bucket lb;
    uint64_t lc;

    T_DEQ(sn_hist_mean(h), llm_mean(m));
    T_DEQ(sn_hist_sum(h), llm_sum(m));
    T_DEQ(sn_hist_stddev(h), llm_stddev(m));

    for (int type = 1; type <= 7; type += 6) {
        int rc = sn_hist_quantiles(h, q, nq, out, (enum sn_quantile_type)type);
        int mrc =
            type == 1 ? llm_quantile(m, q, (int)nq, mout) : llm_quantile7(m, q, (int)nq, mout);
        T_EQ(rc, 0);
        T_EQ(mrc, 0);
        for (size_t j = 0; j < nq; j++) {
            t_note("type %d q[%zu] = %.17g", type, j, q[j]);
            if (isinf(mout[j])) {
                /* upstream's n+1 wrapped: only in a bucket holding UINT64_MAX samples; Sonde's
                 * answer is finite and inside such a bucket */
                T_OK(isfinite(out[j]));
                T_OK(in_saturated_bucket(h, out[j]));
                n_upstream_inf++;
                continue;
            }
            T_DEQ(out[j], mout[j]);
        }
    }

    for (int i = 0; llm_get(m, i, &lb, &lc); i++)
        all += lc;
    nt = probe_thresholds(h, thr, 400);
    for (size_t j = 0; j < nt; j++) {
        struct llm_bucket tb = llm_bucket_from_double(thr[j]);
        unsigned __int128 bin = 0, bex = 0, ain = 0, aex = 0;

        t_note("threshold %.17g", thr[j]);
        if (all <= UINT64_MAX) {
            /* no overflow anywhere: the model's own counts */
            T_EQU(sn_hist_count_below(h, thr[j], true), llm_count_below(m, thr[j]));
            T_EQU(sn_hist_count_below(h, thr[j], false), llm_count_below_exclusive(m, thr[j]));
            T_EQU(sn_hist_count_above(h, thr[j], true), llm_count_above(m, thr[j]) - nan_count);
            T_EQU(sn_hist_count_above(h, thr[j], false),
                  llm_count_above_exclusive(m, thr[j]) - nan_count);
            continue;
        }
        /* upstream wraps; Sonde saturates: the exact sums, clamped */
        for (int i = 0; llm_get(m, i, &lb, &lc); i++) {
            int cmp;
            if (llm_bucket_is_nan(lb))
                continue;
            cmp = llm_bucket_cmp(lb, tb); /* +1: lb < tb */
            if (cmp >= 0)
                bin += lc;
            if (cmp > 0)
                bex += lc;
            if (cmp <= 0)
                ain += lc;
            if (cmp < 0)
                aex += lc;
        }
#define SAT(x) ((x) > UINT64_MAX ? UINT64_MAX : (uint64_t)(x))
        T_EQU(sn_hist_count_below(h, thr[j], true), SAT(bin));
        T_EQU(sn_hist_count_below(h, thr[j], false), SAT(bex));
        T_EQU(sn_hist_count_above(h, thr[j], true), SAT(ain));
        T_EQU(sn_hist_count_above(h, thr[j], false), SAT(aex));
#undef SAT
    }
    t_note("%s", "");
}

static void test_random_vs_model(void)
{
    t_seed(0x57a75);
    for (int round = 0; round < NRANDOM; round++) {
        struct sn_hist *h = sn_hist_create();
        struct llm_hist *m = llm_create();
        int nb = round % 50 == 0 ? 0 : 1 + (int)(t_rand() % 40);

        for (int i = 0; i < nb; i++) {
            struct sn_bucket b = rand_bucket();
            uint64_t c = rand_small_count();
            sn_hist_insert_raw(h, b, c);
            llm_insert_raw(m, lb(b), c);
        }
        t_note("round %d", round);
        compare_with_model(h, m);
        sn_hist_destroy(h);
        llm_destroy(m);
    }
}

static void test_big_totals_vs_model(void)
{
    int saw_max = 0, saw_overflow = 0;

    n_upstream_inf = 0;
    t_seed(0xb16);
    for (int round = 0; round < NBIG; round++) {
        struct sn_hist *h = sn_hist_create();
        struct llm_hist *m = llm_create();
        int nb = 1 + (int)(t_rand() % 12);
        unsigned __int128 total = 0;

        for (int i = 0; i < nb; i++) {
            struct sn_bucket b = rand_bucket();
            /* 1e16 .. 1e18, with some small and zero counts; now and then UINT64_MAX */
            uint64_t r = t_rand() % 100, c;
            if (r < 5)
                c = UINT64_MAX;
            else if (r < 10)
                c = t_rand() % 3;
            else if (r < 20)
                c = 1 + t_rand() % 1000;
            else
                c = 10000000000000000ULL * (1 + t_rand() % 100) + t_rand() % 1000;
            sn_hist_insert_raw(h, b, c);
            llm_insert_raw(m, lb(b), c);
            saw_max += c == UINT64_MAX;
            total += c;
        }
        saw_overflow += total > UINT64_MAX;
        t_note("round %d", round);
        compare_with_model(h, m);
        sn_hist_destroy(h);
        llm_destroy(m);
    }
    t_note("%d UINT64_MAX buckets, %d overflowing totals, %d upstream inf quantiles", saw_max,
           saw_overflow, n_upstream_inf);
    T_OK(saw_max > 10);
    T_OK(saw_overflow > 10);
    T_OK(n_upstream_inf > 10); /* the fix was exercised */
}

static void test_around_2_pow_53(void)
{
    /* totals just below, at and above 2^53, where Sonde switches from its integer walk to
     * upstream's double walk: identical to the model on either side */
    const uint64_t p52 = 1ULL << 52;
    uint64_t splits[][3] = {
        {p52, p52 - 1, 0},        /* 2^53 - 1 */
        {p52, p52, 0},            /* 2^53 */
        {p52, p52, 1},            /* 2^53 + 1: the double running total rounds */
        {p52 + 1, p52, 2},        /* 2^53 + 3 */
        {3, 2 * p52 - 3, 1},      /* 2^53 + 1, a tiny first bucket */
        {2 * p52 - 1, 1, 1},      /* 2^53 + 1 */
        {1, 1, 4 * p52},          /* 2^54 + 2 */
        {UINT64_MAX / 3, 1, 999}, /* ~6e18 */
    };

    for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
        struct sn_bucket bs[] = {bk(-30, 0), bk(10, 0), bk(11, 0)};
        struct llm_hist *m;
        struct sn_hist *h = make(bs, splits[s], 3, &m);
        double q[64], out[64], mout[64];
        size_t nq = 0;

        for (int i = 0; i <= 40; i++)
            q[nq++] = i / 40.0;
        /* q landing on the bucket edges and their neighbours */
        {
            double total = (double)splits[s][0] + (double)splits[s][1] + (double)splits[s][2];
            double e1 = (double)splits[s][0] / total,
                   e2 = ((double)splits[s][0] + (double)splits[s][1]) / total;
            double extra[] = {e1, nextafter(e1, 0.0), nextafter(e1, 1.0),
                              e2, nextafter(e2, 0.0), fmin(1.0, nextafter(e2, 1.0))};
            for (size_t i = 0; i < 6; i++)
                q[nq++] = extra[i];
        }
        for (size_t i = 1; i < nq; i++)
            for (size_t j = i; j > 0 && q[j - 1] > q[j]; j--) {
                double x = q[j];
                q[j] = q[j - 1];
                q[j - 1] = x;
            }
        t_note("split %zu", s);
        T_EQ(sn_hist_quantiles(h, q, nq, out, T1), 0);
        T_EQ(llm_quantile(m, q, (int)nq, mout), 0);
        for (size_t i = 0; i < nq; i++)
            T_DEQ(out[i], mout[i]);
        T_EQ(sn_hist_quantiles(h, q, nq, out, T7), 0);
        T_EQ(llm_quantile7(m, q, (int)nq, mout), 0);
        for (size_t i = 0; i < nq; i++)
            T_DEQ(out[i], mout[i]);
        T_DEQ(sn_hist_mean(h), llm_mean(m));
        T_DEQ(sn_hist_stddev(h), llm_stddev(m));
        sn_hist_destroy(h);
        llm_destroy(m);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("quantile: one sample is the arithmetic midpoint", test_quantile_one_sample);
    t_run("quantile: two buckets, Type 1 and Type 7", test_quantile_two_buckets);
    t_run("quantile: three samples in one bucket", test_quantile_three_in_one_bucket);
    t_run("quantile: walk skips empty buckets", test_quantile_walk_across_buckets);
    t_run("quantile: zero bucket gives exactly 0", test_quantile_zero_bucket);
    t_run("quantile: negative buckets use the left edge", test_quantile_negative_left_edge);
    t_run("quantile: 1e6 x 1.0 gives the 10% worst case", test_quantile_worst_case_10_percent);
    t_run("quantile: q outside [0,1] -EDOM, decreasing -EINVAL", test_quantile_bad_q);
    t_run("quantile: empty and NaN-only give NaN", test_quantile_empty_and_nan_only);
    t_run("quantile: UINT64_MAX bucket finite (upstream inf)", test_quantile_count_uint64_max);
    t_run("mean, sum, stddev by hand", test_mean_sum_stddev_hand);
    t_run("mean, sum, stddev of empty and all-zero", test_mean_sum_stddev_empty);
    t_run("stddev squares as m*m, not pow(m, 2.0)", test_stddev_squares_not_pow);
    t_run("moment divides by N (upstream N^k)", test_moment);
    t_run("count below/above, inclusive/exclusive", test_count_below_above);
    t_run("count_above leaves NaN samples out (upstream counts them)", test_count_above_nan_fix);
    t_run("count below/above saturate", test_count_saturates);
    t_run("3,000 random histograms == model", test_random_vs_model);
    t_run("totals above 2^53 == model (UINT64_MAX: finite)", test_big_totals_vs_model);
    t_run("totals around 2^53 == model", test_around_2_pow_53);
    return t_done();
}
