/*
 * Histogram storage (src/core/hist.c): inserts of every kind and their counts, saturation,
 * order, clear, remove, clone, the append fast path, merge and its laws, subtract, and a long
 * differential run of random operations against the libcircllhist model (tests/model), which
 * must agree bucket for bucket, zero-count buckets and their order included.
 *
 * Every content check also calls sn_hist_check(), the library's own invariant check (sorted
 * ordinals, index consistent with the slots; it aborts on a violation), where it is compiled
 * in: SN_SANITIZE builds, or any build without NDEBUG. The checks here do not rely on it
 * either: they read every slot in order and look every bucket up again through
 * sn_hist_bucket_count(), which goes through the index when there is one.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "llmodel.h"
#include "llmodel_sn.h"
#include "t.h"

#if !defined(NDEBUG) || defined(SN_SANITIZE)
/* hist_int.h is private to src/core; only the checker's prototype is needed here. */
void sn_hist_check(const struct sn_hist *h);
#define CHECK_INV(h) sn_hist_check(h)
#else
#define CHECK_INV(h) ((void)(h))
#endif

#define NOPS 50000

/* --- helpers ----------------------------------------------------------------------------- */

/* Whether bucket b is stored (found through bucket_at, not the index), and its count. */
static bool has_bucket(const struct sn_hist *h, struct sn_bucket b, uint64_t *count)
{
    struct sn_bucket x;
    uint64_t c;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &x, &c); i++) {
        if (x.val == b.val && x.exp == b.exp) {
            if (count)
                *count = c;
            return true;
        }
    }
    return false;
}

/* Expects h to hold exactly buckets bs[0..n) with counts cs[0..n), in this order. */
static bool holds(const struct sn_hist *h, const struct sn_bucket *bs, const uint64_t *cs, size_t n)
{
    struct sn_bucket b;
    uint64_t c;

    CHECK_INV(h);
    if (sn_hist_nbuckets(h) != n) {
        t_note("nbuckets %zu, want %zu", sn_hist_nbuckets(h), n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!sn_hist_bucket_at(h, i, &b, &c) || b.val != bs[i].val || b.exp != bs[i].exp ||
            c != cs[i]) {
            t_note("slot %zu: {%d,%d}:%" PRIu64 ", want {%d,%d}:%" PRIu64, i, b.val, b.exp, c,
                   bs[i].val, bs[i].exp, cs[i]);
            return false;
        }
        /* the indexed lookup must agree with the slot */
        if (sn_hist_bucket_count(h, b) != c) {
            t_note("bucket_count({%d,%d}) = %" PRIu64 ", slot says %" PRIu64, b.val, b.exp,
                   sn_hist_bucket_count(h, b), c);
            return false;
        }
    }
    return !sn_hist_bucket_at(h, n, &b, &c);
}

/* Same buckets, same counts, same order, zero-count buckets included. */
static bool same_contents(const struct sn_hist *a, const struct sn_hist *b)
{
    struct sn_bucket x, y;
    uint64_t cx, cy;

    CHECK_INV(a);
    CHECK_INV(b);
    if (sn_hist_nbuckets(a) != sn_hist_nbuckets(b)) {
        t_note("nbuckets %zu != %zu", sn_hist_nbuckets(a), sn_hist_nbuckets(b));
        return false;
    }
    for (size_t i = 0; sn_hist_bucket_at(a, i, &x, &cx); i++) {
        sn_hist_bucket_at(b, i, &y, &cy);
        if (x.val != y.val || x.exp != y.exp || cx != cy) {
            t_note("slot %zu: {%d,%d}:%" PRIu64 " != {%d,%d}:%" PRIu64, i, x.val, x.exp, cx, y.val,
                   y.exp, cy);
            return false;
        }
    }
    return true;
}

/* Sonde and the model hold the same (bucket, count) pairs in the same order. */
static bool same_as_model(const struct sn_hist *h, const struct llm_hist *m)
{
    struct sn_bucket b;
    struct llm_bucket lb;
    uint64_t c, lc;

    CHECK_INV(h);
    if ((int)sn_hist_nbuckets(h) != llm_used(m)) {
        t_note("nbuckets %zu, model %d", sn_hist_nbuckets(h), llm_used(m));
        return false;
    }
    for (int i = 0; i < llm_used(m); i++) {
        llm_get(m, i, &lb, &lc);
        sn_hist_bucket_at(h, (size_t)i, &b, &c);
        if (b.val != lb.val || b.exp != lb.exp || c != lc) {
            t_note("slot %d: {%d,%d}:%" PRIu64 ", model {%d,%d}:%" PRIu64, i, b.val, b.exp, c,
                   lb.val, lb.exp, lc);
            return false;
        }
        /* the lookup (through the index when there is one) finds the same count */
        if (sn_hist_bucket_count(h, b) != c) {
            t_note("bucket_count({%d,%d}) = %" PRIu64 ", slot %d says %" PRIu64, b.val, b.exp,
                   sn_hist_bucket_count(h, b), i, c);
            return false;
        }
    }
    return sn_hist_count(h) == llm_sample_count(m);
}

/* Strictly ascending in upstream's bucket order. */
static bool sorted(const struct sn_hist *h)
{
    struct sn_bucket prev, b;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, NULL); i++) {
        if (i > 0 && sn_bucket_cmp(prev, b) != 1) {
            t_note("slot %zu {%d,%d} not after {%d,%d}", i, b.val, b.exp, prev.val, prev.exp);
            return false;
        }
        prev = b;
    }
    return true;
}

/* A random valid bucket from a small pool (exp -2..2, both signs, zero, NaN). */
static struct sn_bucket rand_bucket(int emin, int emax)
{
    uint64_t r = t_rand() % 100;
    int val = 10 + (int)(t_rand() % 90);
    int exp = emin + (int)(t_rand() % (uint64_t)(emax - emin + 1));

    if (r < 3)
        return NANB;
    if (r < 7)
        return ZEROB;
    return bk(r < 40 ? -val : val, exp);
}

/* A random count: mostly small, sometimes 0, rarely near saturation. */
static uint64_t rand_count(void)
{
    uint64_t r = t_rand() % 1000;

    if (r < 50)
        return 0;
    if (r < 55)
        return UINT64_MAX - t_rand() % 4;
    if (r < 60)
        return (1ULL << 63) + t_rand() % 1000;
    return 1 + t_rand() % 1000;
}

/* Fills h and m with the same n random buckets. */
static void rand_fill(struct sn_hist *h, struct llm_hist *m, int n, int emin, int emax)
{
    for (int i = 0; i < n; i++) {
        struct sn_bucket b = rand_bucket(emin, emax);
        uint64_t c = rand_count();
        sn_hist_insert_raw(h, b, c);
        if (m)
            llm_insert_raw(m, lb(b), c);
    }
}

/* A model copy of a Sonde histogram. */
static struct llm_hist *to_model(const struct sn_hist *h)
{
    struct llm_hist *m = llm_create();
    struct sn_bucket b;
    uint64_t c;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++)
        llm_insert_raw(m, lb(b), c);
    return m;
}

/* --- inserts ----------------------------------------------------------------------------- */

static void test_insert_double(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(sn_hist_insert(h, 1.0, 3), 0);
    T_EQ(sn_hist_insert(h, 1.09, 2), 0);     /* same bucket {10,0} = [1.0, 1.1) */
    T_EQ(sn_hist_insert(h, 0.29, 1), 0);     /* 0.28999999999999998 -> {29,-1} (fuzz) */
    T_EQ(sn_hist_insert(h, -2.5, 4), 0);     /* {-25,0} */
    T_EQ(sn_hist_insert(h, 0.0, 5), 0);      /* zero */
    T_EQ(sn_hist_insert(h, -0.0, 1), 0);     /* zero too */
    T_EQ(sn_hist_insert(h, NAN, 6), 0);      /* NaN bucket */
    T_EQ(sn_hist_insert(h, INFINITY, 1), 0); /* NaN bucket */
    T_EQ(sn_hist_insert(h, 1e128, 1), 0);    /* NaN bucket */
    T_EQ(sn_hist_insert(h, 1e-200, 2), 0);   /* below 1e-128: zero */
    {
        struct sn_bucket bs[] = {NANB, bk(-25, 0), ZEROB, bk(29, -1), bk(10, 0)};
        uint64_t cs[] = {8, 4, 8, 1, 5};
        T_OK(holds(h, bs, cs, 5));
    }
    T_EQU(sn_hist_count(h), 26);
    sn_hist_destroy(h);
}

static void test_insert_int_scale_u64(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(sn_hist_insert_int_scale(h, 1300000000, -9, 2), 0); /* 1.3 -> {13,0} */
    T_EQ(sn_hist_insert_int_scale(h, 13, -1, 1), 0);         /* 1.3 -> {13,0} */
    T_EQ(sn_hist_insert_int_scale(h, -2700, -9, 3), 0);      /* -2.7e-6 -> {-27,-6} */
    T_EQ(sn_hist_insert_int_scale(h, 0, 5, 1), 0);           /* zero */
    T_EQ(sn_hist_insert_int_scale(h, 1, 200, 1), 0);         /* 1e200 -> NaN */
    T_EQ(sn_hist_insert_u64(h, 1000, 4), 0);                 /* {10,3} */
    T_EQ(sn_hist_insert_u64(h, 1099, 1), 0);                 /* {10,3} */
    T_EQ(sn_hist_insert_u64(h, 0, 2), 0);                    /* zero */
    T_EQ(sn_hist_insert_u64(h, UINT64_MAX, 1), 0);           /* 1.8e19 -> {18,19} */
    {
        struct sn_bucket bs[] = {NANB, bk(-27, -6), ZEROB, bk(13, 0), bk(10, 3), bk(18, 19)};
        uint64_t cs[] = {1, 3, 3, 3, 5, 1};
        T_OK(holds(h, bs, cs, 6));
    }
    sn_hist_destroy(h);
}

static void test_insert_raw_counts(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(sn_hist_insert_raw(h, bk(10, 0), 7), 0);
    T_EQ(sn_hist_insert_raw(h, bk(10, 0), 0), 0); /* adds nothing */
    T_EQ(sn_hist_insert_raw(h, bk(-99, 127), 1), 0);
    T_EQ(sn_hist_insert_raw(h, bk(99, 127), 1), 0);
    T_EQ(sn_hist_insert_raw(h, bk(10, -128), 1), 0);
    T_EQ(sn_hist_insert_raw(h, bk(-10, -128), 1), 0);
    {
        struct sn_bucket bs[] = {bk(-99, 127), bk(-10, -128), bk(10, -128), bk(10, 0), bk(99, 127)};
        uint64_t cs[] = {1, 1, 1, 7, 1};
        T_OK(holds(h, bs, cs, 5));
    }
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), 7);
    T_EQU(sn_hist_bucket_count(h, bk(11, 0)), 0); /* absent */
    T_EQU(sn_hist_bucket_count(h, bk(5, 0)), 0);  /* invalid: 0, no crash */
    sn_hist_destroy(h);
}

static void test_insert_count_zero_creates_bucket(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(sn_hist_insert_raw(h, bk(42, 1), 0), 0);
    T_EQ(sn_hist_insert(h, -3.0, 0), 0);
    T_EQ(sn_hist_insert_u64(h, 7, 0), 0);
    T_EQ(sn_hist_insert_raw(h, NANB, 0), 0);
    {
        struct sn_bucket bs[] = {NANB, bk(-30, 0), bk(70, 0), bk(42, 1)};
        uint64_t cs[] = {0, 0, 0, 0};
        T_OK(holds(h, bs, cs, 4));
    }
    T_EQU(sn_hist_count(h), 0);
    /* an empty bucket and no bucket are equal as histograms */
    {
        struct sn_hist *e = sn_hist_create();
        T_OK(sn_hist_equal(h, e));
        sn_hist_destroy(e);
    }
    sn_hist_destroy(h);
}

static void test_insert_invalid_bucket(void)
{
    struct sn_hist *h = sn_hist_create();
    struct sn_bucket bad[] = {bk(5, 0),    bk(-5, 3),  bk(9, 0),    bk(-9, 0),  bk(100, 0),
                              bk(-100, 0), bk(127, 1), bk(-128, 0), bk(0, 1),   bk(-1, 1),
                              bk(1, 0),    bk(-2, 0),  bk(0, -128), bk(-1, 127)};
    struct sn_bucket bs[] = {bk(10, 0)};
    uint64_t cs[] = {3};

    sn_hist_insert_raw(h, bk(10, 0), 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t_note("bucket {%d,%d}", bad[i].val, bad[i].exp);
        T_EQ(sn_hist_insert_raw(h, bad[i], 1), -EINVAL);
        T_EQ(sn_hist_insert_raw_end(h, bad[i], 1), -EINVAL);
        T_EQ(sn_hist_insert_raw(h, bad[i], 0), -EINVAL);
    }
    t_note("%s", "");
    T_OK(holds(h, bs, cs, 1)); /* unchanged */
    /* invalid buckets into an empty histogram: still nothing */
    {
        struct sn_hist *e = sn_hist_create();
        T_EQ(sn_hist_insert_raw(e, bk(5, 0), 1), -EINVAL);
        T_EQ(sn_hist_insert_raw_end(e, bk(5, 0), 1), -EINVAL);
        T_EQU(sn_hist_nbuckets(e), 0);
        sn_hist_destroy(e);
    }
    sn_hist_destroy(h);
}

static void test_insert_saturates(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(sn_hist_insert_raw(h, bk(10, 0), UINT64_MAX - 1), 0);
    T_EQ(sn_hist_insert(h, 1.0, 5), 0); /* UINT64_MAX - 1 + 5 saturates */
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), UINT64_MAX);
    T_EQ(sn_hist_insert_u64(h, 1, 1), 0); /* stays saturated */
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), UINT64_MAX);
    T_EQ(sn_hist_insert_int_scale(h, 10, -1, UINT64_MAX), 0);
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), UINT64_MAX);
    /* exactly UINT64_MAX is reached, not passed */
    T_EQ(sn_hist_insert_raw(h, bk(20, 0), UINT64_MAX - 3), 0);
    T_EQ(sn_hist_insert_raw(h, bk(20, 0), 3), 0);
    T_EQU(sn_hist_bucket_count(h, bk(20, 0)), UINT64_MAX);
    /* the model agrees */
    {
        struct llm_hist *m = llm_create();
        llm_insert_raw(m, lb(bk(10, 0)), UINT64_MAX - 1);
        T_EQU(llm_insert(m, 1.0, 5), 1); /* upstream returns the increment applied */
        T_EQU(llm_insert(m, 1.0, 1), 0);
        llm_insert_raw(m, lb(bk(20, 0)), UINT64_MAX);
        T_OK(same_as_model(h, m));
        llm_destroy(m);
    }
    sn_hist_destroy(h);
}

static void test_buckets_sorted(void)
{
    struct sn_hist *h = sn_hist_create();
    /* every kind of bucket, inserted in a scrambled order */
    double vals[] = {5.0, -5.0, 0.0,  NAN,   1e-128, -1e-128, 9.9e127, -9.9e127,
                     0.5, -0.5, 55.0, -55.0, 1e100,  -1e100,  1e-100,  -1e-100,
                     1.0, -1.0, 9.9,  -9.9,  10.0,   -10.0,   0.099,   -0.099};
    struct sn_bucket want[] = {
        NANB,       bk(-99, 127), bk(-10, 100), bk(-55, 1),  bk(-10, 1),    bk(-99, 0),
        bk(-50, 0), bk(-10, 0),   bk(-50, -1),  bk(-99, -2), bk(-10, -100), bk(-10, -128),
        ZEROB,      bk(10, -128), bk(10, -100), bk(99, -2),  bk(50, -1),    bk(10, 0),
        bk(50, 0),  bk(99, 0),    bk(10, 1),    bk(55, 1),   bk(10, 100),   bk(99, 127)};
    uint64_t ones[24];
    size_t n = sizeof(vals) / sizeof(vals[0]);

    for (size_t i = 0; i < 24; i++)
        ones[i] = 1;
    for (size_t i = 0; i < n; i++) /* a fixed scramble: stride 7 over 24 */
        sn_hist_insert(h, vals[(i * 7) % n], 1);
    T_OK(holds(h, want, ones, 24));
    T_OK(sorted(h));

    /* and random inserts stay strictly ascending and agree with the model */
    {
        struct llm_hist *m = llm_create();
        t_seed(11);
        for (int i = 0; i < 5000; i++) {
            struct sn_bucket b = rand_bucket(-128, 127);
            sn_hist_insert_raw(h, b, 1);
            llm_insert_raw(m, lb(b), 1);
        }
        sn_hist_clear(h);
        llm_clear(m);
        for (int i = 0; i < 5000; i++) {
            struct sn_bucket b = rand_bucket(-128, 127);
            sn_hist_insert_raw(h, b, 1);
            llm_insert_raw(m, lb(b), 1);
        }
        T_OK(sorted(h));
        T_OK(same_as_model(h, m));
        llm_destroy(m);
    }
    T_OK(!sn_hist_bucket_at(h, sn_hist_nbuckets(h), NULL, NULL));
    sn_hist_destroy(h);
}

static void test_count_includes_nan_and_saturates(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQU(sn_hist_count(h), 0);
    sn_hist_insert(h, NAN, 5);
    T_EQU(sn_hist_count(h), 5); /* NaN samples count */
    sn_hist_insert(h, 1.0, 7);
    sn_hist_insert(h, -1.0, 0);
    T_EQU(sn_hist_count(h), 12);
    sn_hist_insert(h, 2.0, UINT64_MAX - 12);
    T_EQU(sn_hist_count(h), UINT64_MAX); /* exactly */
    sn_hist_insert(h, 3.0, 1);
    T_EQU(sn_hist_count(h), UINT64_MAX); /* saturated, not wrapped to 0 */
    sn_hist_insert(h, 4.0, UINT64_MAX);
    sn_hist_insert(h, 5.0, UINT64_MAX);
    T_EQU(sn_hist_count(h), UINT64_MAX); /* wraps twice without saturation */
    sn_hist_destroy(h);
}

/* --- clear, remove, clone ---------------------------------------------------------------- */

static void test_clear_then_reuse(void)
{
    struct sn_hist *h = sn_hist_create();

    for (uint32_t i = 0; i < 50; i++) /* builds the index over many pages */
        sn_hist_insert_raw(h, sn_bucket_from_ord(i * 900 + 1), 1 + i);
    sn_hist_insert(h, 1.0e-3, 1);
    T_EQU(sn_hist_nbuckets(h), 51);
    sn_hist_clear(h);
    T_EQU(sn_hist_nbuckets(h), 0);
    T_EQU(sn_hist_count(h), 0);
    T_OK(!sn_hist_bucket_at(h, 0, NULL, NULL));
    /* stale index entries must not resurrect old buckets */
    T_EQU(sn_hist_bucket_count(h, bk(10, -3)), 0);
    T_EQU(sn_hist_bucket_count(h, sn_bucket_from_ord(901)), 0);
    T_EQU(sn_hist_remove(h, 1.0e-3, 1), 0);
    CHECK_INV(h);

    /* inserts after clear: new buckets, then increments through the index */
    sn_hist_insert(h, 3.0, 1);
    sn_hist_insert(h, 1.0, 1);
    sn_hist_insert(h, 2.0, 1);
    sn_hist_insert(h, 1.0e-3, 4); /* a bucket that existed before the clear */
    sn_hist_insert(h, 3.0, 10);
    sn_hist_insert(h, 1.0, 20);
    sn_hist_insert(h, 2.0, 30);
    {
        struct sn_bucket bs[] = {bk(10, -3), bk(10, 0), bk(20, 0), bk(30, 0)};
        uint64_t cs[] = {4, 21, 31, 11};
        T_OK(holds(h, bs, cs, 4));
    }
    /* clear of a histogram built without the index (merge, clone), then inserts */
    {
        struct sn_hist *c = sn_hist_clone(h);
        sn_hist_clear(c);
        sn_hist_insert(c, 2.0, 1);
        sn_hist_insert(c, 2.0, 1);
        sn_hist_insert(c, 1.0, 1);
        struct sn_bucket bs[] = {bk(10, 0), bk(20, 0)};
        uint64_t cs[] = {1, 2};
        T_OK(holds(c, bs, cs, 2));
        sn_hist_destroy(c);
    }
    /* clear twice, clear empty, merge after clear */
    sn_hist_clear(h);
    sn_hist_clear(h);
    {
        struct sn_hist *s = sn_hist_create();
        sn_hist_insert(s, 5.0, 2);
        sn_hist_insert(s, 1.0, 3);
        T_EQ(sn_hist_merge(h, s), 0);
        sn_hist_insert(h, 5.0, 1);
        sn_hist_insert(h, 7.0, 1);
        struct sn_bucket bs[] = {bk(10, 0), bk(50, 0), bk(70, 0)};
        uint64_t cs[] = {3, 3, 1};
        T_OK(holds(h, bs, cs, 3));
        sn_hist_destroy(s);
    }
    sn_hist_destroy(h);
}

static void test_remove(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert(h, 1.0, 5);
    sn_hist_insert(h, -2.0, 3);
    sn_hist_insert(h, NAN, 2);
    T_EQU(sn_hist_remove(h, 1.05, 2), 2); /* same bucket as 1.0 */
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), 3);
    T_EQU(sn_hist_remove(h, 1.0, 10), 3); /* floor at 0: returns what was there */
    T_EQU(sn_hist_remove(h, 1.0, 1), 0);  /* already 0 */
    T_EQU(sn_hist_remove(h, 7.0, 1), 0);  /* absent: nothing, no bucket created */
    T_EQU(sn_hist_remove(h, -2.0, 0), 0);
    T_EQU(sn_hist_remove(h, NAN, 1), 1);
    T_EQU(sn_hist_remove(h, -2.0, UINT64_MAX), 3);
    {
        /* the emptied buckets stay */
        struct sn_bucket bs[] = {NANB, bk(-20, 0), bk(10, 0)};
        uint64_t cs[] = {1, 0, 0};
        T_OK(holds(h, bs, cs, 3));
    }
    T_EQU(sn_hist_count(h), 1);
    /* remove from a histogram without the index (a clone): binary search path */
    {
        struct sn_hist *c = sn_hist_create();
        struct sn_hist *s = sn_hist_create();
        sn_hist_insert_raw(s, bk(10, 0), 4);
        sn_hist_insert_raw(s, bk(30, 0), 4);
        sn_hist_merge(c, s);
        struct sn_hist *d = sn_hist_clone(c);
        T_EQU(sn_hist_remove(d, 3.0, 1), 1);
        T_EQU(sn_hist_remove(d, 2.0, 1), 0);
        T_EQU(sn_hist_remove(d, 1.0, 5), 4);
        struct sn_bucket bs[] = {bk(10, 0), bk(30, 0)};
        uint64_t cs[] = {0, 3};
        T_OK(holds(d, bs, cs, 2));
        sn_hist_destroy(c);
        sn_hist_destroy(s);
        sn_hist_destroy(d);
    }
    sn_hist_destroy(h);
}

static void test_remove_zeroes(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert_raw(h, NANB, 0);
    sn_hist_insert(h, -1.0, 2);
    sn_hist_insert(h, 0.0, 0);
    sn_hist_insert(h, 1.0, 0);
    sn_hist_insert(h, 2.0, 3);
    sn_hist_insert(h, 3.0, 0);
    sn_hist_remove_zeroes(h);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(20, 0)};
        uint64_t cs[] = {2, 3};
        T_OK(holds(h, bs, cs, 2));
    }
    /* the index follows: increments land in the right slot, removed buckets come back new */
    sn_hist_insert(h, 2.0, 1);
    sn_hist_insert(h, 1.0, 1);
    sn_hist_insert(h, -1.0, 1);
    sn_hist_insert(h, 3.0, 5);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(10, 0), bk(20, 0), bk(30, 0)};
        uint64_t cs[] = {3, 1, 4, 5};
        T_OK(holds(h, bs, cs, 4));
    }
    sn_hist_remove_zeroes(h); /* nothing to drop */
    T_EQU(sn_hist_nbuckets(h), 4);
    /* all zero -> empty */
    sn_hist_remove(h, -1.0, 100);
    sn_hist_remove(h, 1.0, 100);
    sn_hist_remove(h, 2.0, 100);
    sn_hist_remove(h, 3.0, 100);
    sn_hist_remove_zeroes(h);
    T_EQU(sn_hist_nbuckets(h), 0);
    sn_hist_insert(h, 2.0, 1);
    {
        struct sn_bucket bs[] = {bk(20, 0)};
        uint64_t cs[] = {1};
        T_OK(holds(h, bs, cs, 1));
    }
    sn_hist_destroy(h);
}

static void test_clone_independent(void)
{
    struct sn_hist *h = sn_hist_create(), *c, *e;

    sn_hist_insert(h, 1.0, 1);
    sn_hist_insert(h, -5.0, 2);
    sn_hist_insert(h, NAN, 3);
    sn_hist_insert(h, 7.0, 0);
    c = sn_hist_clone(h);
    T_REQUIRE(c != NULL);
    T_OK(same_contents(h, c));

    sn_hist_insert(c, 1.0, 10);  /* existing bucket */
    sn_hist_insert(c, 100.0, 1); /* new bucket */
    sn_hist_remove(c, -5.0, 1);
    {
        struct sn_bucket bs[] = {NANB, bk(-50, 0), bk(10, 0), bk(70, 0)};
        uint64_t cs[] = {3, 2, 1, 0};
        T_OK(holds(h, bs, cs, 4)); /* original untouched */
    }
    sn_hist_insert(h, 2.0, 4);
    sn_hist_clear(h);
    {
        struct sn_bucket bs[] = {NANB, bk(-50, 0), bk(10, 0), bk(70, 0), bk(10, 2)};
        uint64_t cs[] = {3, 1, 11, 0, 1};
        T_OK(holds(c, bs, cs, 5)); /* clone untouched by the original's changes */
    }
    sn_hist_destroy(h);
    /* the clone outlives its original */
    sn_hist_insert(c, 1.0, 1);
    T_EQU(sn_hist_bucket_count(c, bk(10, 0)), 12);

    /* clone of an empty histogram, then use it */
    e = sn_hist_create();
    h = sn_hist_clone(e);
    T_REQUIRE(h != NULL);
    T_EQU(sn_hist_nbuckets(h), 0);
    sn_hist_insert(h, 3.0, 1);
    T_EQU(sn_hist_nbuckets(h), 1);
    T_EQU(sn_hist_nbuckets(e), 0);
    T_EQ(sn_hist_merge(h, c), 0);
    T_EQU(sn_hist_count(h), 1 + sn_hist_count(c));
    sn_hist_destroy(e);
    sn_hist_destroy(h);
    sn_hist_destroy(c);
}

/* --- the append fast path ---------------------------------------------------------------- */

static void test_insert_raw_end_append(void)
{
    struct sn_hist *h = sn_hist_create();

    /* ascending appends, equal-to-last adds (upstream's inverted guard would assert here) */
    T_EQ(sn_hist_insert_raw_end(h, NANB, 1), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(-20, 0), 2), 0);
    T_EQ(sn_hist_insert_raw_end(h, ZEROB, 3), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(10, 0), 4), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(10, 0), 5), 0); /* == last: adds */
    T_EQ(sn_hist_insert_raw_end(h, bk(20, 0), 0), 0); /* count 0 still creates */
    T_EQ(sn_hist_insert_raw_end(h, bk(20, 0), UINT64_MAX), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(20, 0), 7), 0); /* == last: saturates */
    {
        struct sn_bucket bs[] = {NANB, bk(-20, 0), ZEROB, bk(10, 0), bk(20, 0)};
        uint64_t cs[] = {1, 2, 3, 9, UINT64_MAX};
        T_OK(holds(h, bs, cs, 5));
    }
    sn_hist_destroy(h);
}

static void test_insert_raw_end_out_of_order(void)
{
    struct sn_hist *h = sn_hist_create();
    struct llm_hist *m = llm_create();

    /* upstream (release) would append these out of order and corrupt the array */
    T_EQ(sn_hist_insert_raw_end(h, bk(50, 0), 1), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(20, 0), 2), 0); /* < last: ordinary insert */
    T_EQ(sn_hist_insert_raw_end(h, bk(50, 0), 3), 0); /* == last again */
    T_EQ(sn_hist_insert_raw_end(h, bk(20, 0), 4), 0); /* < last, existing */
    T_EQ(sn_hist_insert_raw_end(h, NANB, 5), 0);      /* sorts first */
    T_EQ(sn_hist_insert_raw_end(h, bk(-10, 3), 6), 0);
    T_EQ(sn_hist_insert_raw_end(h, bk(60, 0), 7), 0); /* > last: append */
    {
        struct sn_bucket bs[] = {NANB, bk(-10, 3), bk(20, 0), bk(50, 0), bk(60, 0)};
        uint64_t cs[] = {5, 6, 6, 4, 7};
        T_OK(holds(h, bs, cs, 5));
    }
    /* mixing with indexed inserts: appended buckets are found by later inserts */
    sn_hist_insert(h, 6.0, 1);                        /* {60,0}, appended above */
    sn_hist_insert(h, 2.0, 1);                        /* {20,0} */
    T_EQ(sn_hist_insert_raw_end(h, bk(70, 0), 1), 0); /* append with the index present */
    sn_hist_insert(h, 7.0, 1);                        /* must find it, not add a duplicate */
    T_EQ(sn_hist_insert_raw_end(h, bk(30, 0), 1), 0); /* middle, index present */
    sn_hist_insert(h, 3.0, 1);
    {
        struct sn_bucket bs[] = {NANB,      bk(-10, 3), bk(20, 0), bk(30, 0),
                                 bk(50, 0), bk(60, 0),  bk(70, 0)};
        uint64_t cs[] = {5, 6, 7, 2, 4, 8, 2};
        T_OK(holds(h, bs, cs, 7));
    }
    /* random order, mixed with indexed inserts: raw_end == insert_raw (the intended
     * semantics), checked against the model */
    sn_hist_clear(h);
    t_seed(77);
    for (int i = 0; i < 4000; i++) {
        struct sn_bucket b = rand_bucket(-3, 3), last;
        uint64_t c = 1 + t_rand() % 5;
        size_t n = sn_hist_nbuckets(h);
        if (i % 3 == 0) {
            double d = 1.0 + (double)(t_rand() % 90) / 10.0;
            T_EQ(sn_hist_insert(h, d, c), 0);
            llm_insert(m, d, c);
        }
        /* half the calls at or just after the last bucket, half anywhere */
        if (n && i % 2 && sn_hist_bucket_at(h, n - 1, &last, NULL)) {
            uint32_t o = sn_bucket_ord(last) + (uint32_t)(t_rand() % 3);
            b = sn_bucket_from_ord(o < SN_BUCKET_NORD ? o : SN_BUCKET_NORD - 1);
        }
        T_EQ(sn_hist_insert_raw_end(h, b, c), 0);
        llm_insert_raw(m, lb(b), c);
        if (i % 500 == 0)
            T_OK(same_as_model(h, m));
    }
    T_OK(sorted(h));
    T_OK(same_as_model(h, m));
    sn_hist_destroy(h);
    llm_destroy(m);
}

static void test_insert_raw_end_ascending_run(void)
{
    struct sn_hist *h = sn_hist_create();
    struct llm_hist *m = llm_create();
    uint32_t ords[600];

    /* a decoder-like run: every bucket appended in ascending order, some repeated */
    t_seed(5);
    for (int i = 0; i < 600; i++)
        ords[i] = (uint32_t)(t_rand() % SN_BUCKET_NORD);
    for (int i = 1; i < 600; i++) /* insertion sort, small */
        for (int j = i; j > 0 && ords[j - 1] > ords[j]; j--) {
            uint32_t x = ords[j];
            ords[j] = ords[j - 1];
            ords[j - 1] = x;
        }
    for (int i = 0; i < 600; i++) {
        struct sn_bucket b = sn_bucket_from_ord(ords[i]);
        T_EQ(sn_hist_insert_raw_end(h, b, (uint64_t)i), 0);
        llm_insert_raw(m, lb(b), (uint64_t)i);
    }
    T_OK(same_as_model(h, m));
    /* then indexed inserts into those buckets */
    for (int i = 0; i < 600; i += 7) {
        struct sn_bucket b = sn_bucket_from_ord(ords[i]);
        sn_hist_insert_raw(h, b, 1);
        llm_insert_raw(m, lb(b), 1);
    }
    T_OK(same_as_model(h, m));
    sn_hist_destroy(h);
    llm_destroy(m);
}

/* --- merge ------------------------------------------------------------------------------- */

static struct sn_hist *make(const struct sn_bucket *bs, const uint64_t *cs, size_t n)
{
    struct sn_hist *h = sn_hist_create();
    for (size_t i = 0; i < n; i++)
        sn_hist_insert_raw(h, bs[i], cs[i]);
    return h;
}

static void test_merge_disjoint_overlap_subset(void)
{
    struct sn_bucket ab[] = {bk(-10, 0), bk(10, 0), bk(30, 0)};
    uint64_t ac[] = {1, 2, 3};
    struct sn_bucket db[] = {NANB, ZEROB, bk(20, 0), bk(40, 0)};
    uint64_t dc[] = {4, 5, 6, 0};
    struct sn_bucket ob[] = {bk(10, 0), bk(20, 0), bk(30, 0)};
    uint64_t oc[] = {10, 20, 30};
    struct sn_bucket sb[] = {bk(30, 0), bk(-10, 0)};
    uint64_t sc[] = {100, 200};
    struct sn_hist *a, *s;

    /* disjoint: the union, interleaved */
    a = make(ab, ac, 3);
    s = make(db, dc, 4);
    T_EQ(sn_hist_merge(a, s), 0);
    {
        struct sn_bucket bs[] = {NANB,      bk(-10, 0), ZEROB,    bk(10, 0),
                                 bk(20, 0), bk(30, 0),  bk(40, 0)};
        uint64_t cs[] = {4, 1, 5, 2, 6, 3, 0};
        T_OK(holds(a, bs, cs, 7));
    }
    T_OK(holds(s, db, dc, 4)); /* src untouched */
    sn_hist_destroy(a);
    sn_hist_destroy(s);

    /* overlapping */
    a = make(ab, ac, 3);
    s = make(ob, oc, 3);
    T_EQ(sn_hist_merge(a, s), 0);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(10, 0), bk(20, 0), bk(30, 0)};
        uint64_t cs[] = {1, 12, 20, 33};
        T_OK(holds(a, bs, cs, 4));
    }
    sn_hist_destroy(a);
    sn_hist_destroy(s);

    /* src a subset of tgt (the in-place path) */
    a = make(ab, ac, 3);
    s = make(sb, sc, 2);
    T_EQ(sn_hist_merge(a, s), 0);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(10, 0), bk(30, 0)};
        uint64_t cs[] = {201, 2, 103};
        T_OK(holds(a, bs, cs, 3));
    }
    /* tgt a subset of src (the grow path) */
    T_EQ(sn_hist_merge(s, a), 0);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(10, 0), bk(30, 0)};
        uint64_t cs[] = {401, 2, 203};
        T_OK(holds(s, bs, cs, 3));
    }
    /* indexed inserts after a grow-path merge find every bucket */
    sn_hist_insert(s, 1.0, 1);
    sn_hist_insert(s, -1.0, 1);
    sn_hist_insert(s, 3.0, 1);
    sn_hist_insert(s, 2.0, 1);
    {
        struct sn_bucket bs[] = {bk(-10, 0), bk(10, 0), bk(20, 0), bk(30, 0)};
        uint64_t cs[] = {402, 3, 1, 204};
        T_OK(holds(s, bs, cs, 4));
    }
    sn_hist_destroy(a);
    sn_hist_destroy(s);
}

static void test_merge_saturates(void)
{
    struct sn_bucket b1[] = {bk(10, 0), bk(20, 0)};
    uint64_t c1[] = {UINT64_MAX - 1, UINT64_MAX};
    struct sn_bucket b2[] = {bk(10, 0), bk(20, 0)};
    uint64_t c2[] = {10, 1};
    struct sn_bucket b3[] = {bk(10, 0), bk(15, 0), bk(20, 0)};
    uint64_t c3[] = {UINT64_MAX, 1, UINT64_MAX};
    struct sn_bucket b4[] = {bk(10, 0), bk(20, 0), bk(30, 0)};
    uint64_t c4[] = {UINT64_MAX - 1, 7, UINT64_MAX};
    struct sn_hist *a = make(b1, c1, 2), *s = make(b2, c2, 2), *t = make(b3, c3, 3);
    struct sn_hist *u = make(b4, c4, 3);

    T_EQ(sn_hist_merge(a, s), 0); /* the same bucket set */
    {
        uint64_t cs[] = {UINT64_MAX, UINT64_MAX};
        T_OK(holds(a, b1, cs, 2));
    }
    T_EQ(sn_hist_merge(u, s), 0); /* src a strict subset of tgt: added in place */
    {
        uint64_t cs[] = {UINT64_MAX, 8, UINT64_MAX};
        T_OK(holds(u, b4, cs, 3));
    }
    T_EQ(sn_hist_merge(s, t), 0); /* tgt a strict subset of src: the grow path */
    {
        uint64_t cs[] = {UINT64_MAX, 1, UINT64_MAX};
        T_OK(holds(s, b3, cs, 3));
    }
    T_EQ(sn_hist_merge(t, t), 0); /* self */
    {
        uint64_t cs[] = {UINT64_MAX, 2, UINT64_MAX};
        T_OK(holds(t, b3, cs, 3));
    }
    /* each path again with the model */
    {
        struct sn_hist *x = make(b4, c4, 3), *y = make(b3, c3, 3);
        struct llm_hist *mx = to_model(x), *my = to_model(y);
        const struct llm_hist *one[] = {my};
        T_EQ(sn_hist_merge(x, y), 0); /* partial overlap: grow path */
        llm_accumulate(mx, one, 1);
        T_OK(same_as_model(x, mx));
        sn_hist_destroy(x);
        sn_hist_destroy(y);
        llm_destroy(mx);
        llm_destroy(my);
    }
    sn_hist_destroy(a);
    sn_hist_destroy(s);
    sn_hist_destroy(t);
    sn_hist_destroy(u);
}

static void test_merge_commutative_associative(void)
{
    t_seed(2024);
    for (int round = 0; round < 200; round++) {
        struct sn_hist *a = sn_hist_create(), *b = sn_hist_create(), *c = sn_hist_create();
        struct sn_hist *ab, *ba, *ab_c, *bc, *a_bc;

        rand_fill(a, NULL, (int)(t_rand() % 40), -2, 2);
        rand_fill(b, NULL, (int)(t_rand() % 40), -2, 2);
        rand_fill(c, NULL, (int)(t_rand() % 40), -2, 2);
        t_note("round %d", round);

        ab = sn_hist_clone(a);
        T_EQ(sn_hist_merge(ab, b), 0);
        ba = sn_hist_clone(b);
        T_EQ(sn_hist_merge(ba, a), 0);
        T_OK(same_contents(ab, ba)); /* a+b == b+a, zero-count buckets included */

        ab_c = sn_hist_clone(ab);
        T_EQ(sn_hist_merge(ab_c, c), 0);
        bc = sn_hist_clone(b);
        T_EQ(sn_hist_merge(bc, c), 0);
        a_bc = sn_hist_clone(a);
        T_EQ(sn_hist_merge(a_bc, bc), 0);
        T_OK(same_contents(ab_c, a_bc)); /* (a+b)+c == a+(b+c) */

        sn_hist_destroy(a);
        sn_hist_destroy(b);
        sn_hist_destroy(c);
        sn_hist_destroy(ab);
        sn_hist_destroy(ba);
        sn_hist_destroy(ab_c);
        sn_hist_destroy(bc);
        sn_hist_destroy(a_bc);
    }
}

static void test_merge_identity(void)
{
    struct sn_hist *a = sn_hist_create(), *e = sn_hist_create(), *ref, *x;

    t_seed(3);
    rand_fill(a, NULL, 60, -3, 3);
    ref = sn_hist_clone(a);
    T_EQ(sn_hist_merge(a, e), 0); /* a + {} == a */
    T_OK(same_contents(a, ref));
    x = sn_hist_create();
    T_EQ(sn_hist_merge(x, a), 0); /* {} + a == a */
    T_OK(same_contents(x, ref));
    T_EQ(sn_hist_merge(e, e), 0); /* {} + {} == {} */
    T_EQU(sn_hist_nbuckets(e), 0);
    sn_hist_destroy(a);
    sn_hist_destroy(e);
    sn_hist_destroy(ref);
    sn_hist_destroy(x);
}

static void test_merge_self_doubles(void)
{
    struct sn_bucket bs[] = {NANB, bk(-10, 0), ZEROB, bk(10, 0), bk(99, 5)};
    uint64_t cs[] = {1, 2, 0, 4, (1ULL << 62) + 1};
    uint64_t dbl[] = {2, 4, 0, 8, (1ULL << 63) + 2};
    uint64_t quad[] = {4, 8, 0, 16, UINT64_MAX};
    struct sn_hist *h = make(bs, cs, 5);

    T_EQ(sn_hist_merge(h, h), 0);
    T_OK(holds(h, bs, dbl, 5));
    T_EQ(sn_hist_merge(h, h), 0); /* 2^64 + 4 saturates */
    T_OK(holds(h, bs, quad, 5));
    /* the index still works after a self-merge */
    sn_hist_insert(h, 1.0, 1);
    T_EQU(sn_hist_bucket_count(h, bk(10, 0)), 17);
    sn_hist_destroy(h);
}

static void test_merge_many(void)
{
    struct sn_bucket b1[] = {bk(10, 0)}, b2[] = {bk(20, 0), bk(10, 0)}, b3[] = {NANB, bk(-30, 1)};
    uint64_t c1[] = {1}, c2[] = {2, 3}, c3[] = {4, 5};
    struct sn_hist *h1 = make(b1, c1, 1), *h2 = make(b2, c2, 2), *h3 = make(b3, c3, 2);
    struct sn_hist *t = sn_hist_create();
    const struct sn_hist *srcs[] = {NULL, h1, NULL, h2, h3, NULL};

    T_EQ(sn_hist_merge_many(t, srcs, 6), 0);
    {
        struct sn_bucket bs[] = {NANB, bk(-30, 1), bk(10, 0), bk(20, 0)};
        uint64_t cs[] = {4, 5, 4, 2};
        T_OK(holds(t, bs, cs, 4));
    }
    T_EQ(sn_hist_merge_many(t, srcs, 0), 0); /* n = 0: nothing */
    T_EQ(sn_hist_merge_many(t, srcs, 1), 0); /* only NULL */
    T_EQU(sn_hist_count(t), 15);
    /* merge_many == the model's accumulate with the same NULL entries */
    {
        struct llm_hist *m1 = to_model(h1), *m2 = to_model(h2), *m3 = to_model(h3);
        struct llm_hist *mt = llm_create();
        const struct llm_hist *ms[] = {NULL, m1, NULL, m2, m3, NULL};
        T_EQ(llm_accumulate(mt, ms, 6), 4);
        T_OK(same_as_model(t, mt));
        llm_destroy(m1);
        llm_destroy(m2);
        llm_destroy(m3);
        llm_destroy(mt);
    }
    /* the target may appear among the sources: it is doubled at that point */
    {
        struct sn_hist *x = sn_hist_clone(t);
        const struct sn_hist *s2[] = {h1, x, NULL};
        T_EQ(sn_hist_merge_many(x, s2, 3), 0);
        /* x = (t + h1) * 2 */
        struct sn_bucket bs[] = {NANB, bk(-30, 1), bk(10, 0), bk(20, 0)};
        uint64_t cs[] = {8, 10, 10, 4};
        T_OK(holds(x, bs, cs, 4));
        sn_hist_destroy(x);
    }
    sn_hist_destroy(h1);
    sn_hist_destroy(h2);
    sn_hist_destroy(h3);
    sn_hist_destroy(t);
}

static void test_merge_random_vs_model(void)
{
    t_seed(99);
    for (int round = 0; round < 60; round++) {
        struct sn_hist *t = sn_hist_create();
        struct llm_hist *mt = llm_create();
        struct sn_hist *s[8];
        struct llm_hist *ms[8];
        int ns = 1 + (int)(t_rand() % 8);
        /* wide exponent range on some rounds: big, sparse bucket sets */
        int emin = round % 3 == 0 ? -128 : -4, emax = round % 3 == 0 ? 127 : 4;

        rand_fill(t, mt, (int)(t_rand() % 2000), emin, emax);
        for (int i = 0; i < ns; i++) {
            s[i] = sn_hist_create();
            ms[i] = llm_create();
            rand_fill(s[i], ms[i], (int)(t_rand() % 2000), emin, emax);
        }
        t_note("round %d", round);
        if (round % 2) {
            /* one merge_many == one accumulate over all sources */
            T_EQ(sn_hist_merge_many(t, (const struct sn_hist *const *)s, (size_t)ns), 0);
            T_OK(llm_accumulate(mt, (const struct llm_hist *const *)ms, ns) >= 0);
            T_OK(same_as_model(t, mt));
        } else {
            /* source by source, checking each step */
            for (int i = 0; i < ns; i++) {
                const struct llm_hist *one[] = {ms[i]};
                T_EQ(sn_hist_merge(t, s[i]), 0);
                T_OK(llm_accumulate(mt, one, 1) >= 0);
                T_OK(same_as_model(t, mt));
            }
        }
        T_OK(sorted(t));
        for (int i = 0; i < ns; i++) {
            sn_hist_destroy(s[i]);
            llm_destroy(ms[i]);
        }
        sn_hist_destroy(t);
        llm_destroy(mt);
    }
}

/* --- subtract ---------------------------------------------------------------------------- */

static void test_subtract_inverse_of_merge(void)
{
    t_seed(404);
    for (int round = 0; round < 200; round++) {
        struct sn_hist *a = sn_hist_create(), *b = sn_hist_create(), *ab;
        struct sn_bucket x;
        uint64_t c;

        /* counts small enough that a+b does not saturate */
        for (int i = 0, n = (int)(t_rand() % 40); i < n; i++)
            sn_hist_insert_raw(a, rand_bucket(-2, 2), t_rand() % 100);
        for (int i = 0, n = (int)(t_rand() % 40); i < n; i++)
            sn_hist_insert_raw(b, rand_bucket(-2, 2), t_rand() % 100);
        ab = sn_hist_clone(a);
        sn_hist_merge(ab, b);
        t_note("round %d", round);
        T_EQ(sn_hist_subtract(ab, b), 0); /* every count of b is there */
        T_OK(sn_hist_equal(ab, a));       /* (a+b)-b == a */
        /* bucket by bucket: a's buckets hold a's counts, b-only buckets stay with count 0 */
        for (size_t i = 0; sn_hist_bucket_at(ab, i, &x, &c); i++) {
            uint64_t want = 0;
            bool in_a = has_bucket(a, x, &want);
            T_OK(in_a || has_bucket(b, x, NULL));
            T_EQU(c, in_a ? want : 0);
        }
        T_OK(sn_hist_nbuckets(ab) >= sn_hist_nbuckets(a));
        CHECK_INV(ab);
        sn_hist_destroy(a);
        sn_hist_destroy(b);
        sn_hist_destroy(ab);
    }
}

static void test_subtract_clamps(void)
{
    struct sn_bucket tb[] = {bk(10, 0), bk(20, 0), bk(30, 0)};
    uint64_t tc[] = {5, 5, 5};
    struct sn_bucket sb[] = {bk(10, 0), bk(20, 0)};
    uint64_t sc[] = {2, 9};
    struct sn_hist *t = make(tb, tc, 3), *s = make(sb, sc, 2);

    T_EQ(sn_hist_subtract(t, s), 1); /* 5 - 9 clamps */
    {
        uint64_t cs[] = {3, 0, 5};
        T_OK(holds(t, tb, cs, 3)); /* the rest still applied; the clamped bucket stays */
    }
    /* the model agrees, with -1 for Sonde's 1 */
    {
        struct sn_hist *t2 = make(tb, tc, 3);
        struct llm_hist *mt = to_model(t2), *ms = to_model(s);
        const struct llm_hist *srcs[] = {ms};
        T_EQ(llm_subtract(mt, srcs, 1), -1);
        T_OK(same_as_model(t, mt));
        sn_hist_destroy(t2);
        llm_destroy(mt);
        llm_destroy(ms);
    }
    /* exact subtraction to 0 is not a clamp */
    {
        struct sn_bucket b1[] = {bk(10, 0)};
        uint64_t c1[] = {3};
        struct sn_hist *x = make(b1, c1, 1), *y = make(b1, c1, 1);
        T_EQ(sn_hist_subtract(x, y), 0);
        uint64_t z[] = {0};
        T_OK(holds(x, b1, z, 1));
        T_EQ(sn_hist_subtract(x, y), 1); /* now 0 - 3 */
        T_OK(holds(x, b1, z, 1));
        sn_hist_destroy(x);
        sn_hist_destroy(y);
    }
    sn_hist_destroy(t);
    sn_hist_destroy(s);
}

static void test_subtract_missing_bucket(void)
{
    struct sn_bucket tb[] = {bk(10, 0), bk(30, 0)};
    uint64_t tc[] = {5, 5};
    struct sn_hist *t = make(tb, tc, 2);

    /* a src bucket absent from tgt with count > 0: 1, tgt unchanged there, no bucket made */
    {
        struct sn_bucket sb[] = {bk(20, 0), bk(30, 0)};
        uint64_t sc[] = {1, 2};
        struct sn_hist *s = make(sb, sc, 2);
        T_EQ(sn_hist_subtract(t, s), 1);
        uint64_t cs[] = {5, 3};
        T_OK(holds(t, tb, cs, 2));
        sn_hist_destroy(s);
    }
    /* absent src buckets past either end of tgt */
    {
        struct sn_bucket sb[] = {NANB, bk(-10, 0)};
        uint64_t sc[] = {1, 0};
        struct sn_hist *s = make(sb, sc, 2);
        T_EQ(sn_hist_subtract(t, s), 1);
        sn_hist_destroy(s);
        struct sn_bucket sb2[] = {bk(99, 9)};
        uint64_t sc2[] = {1};
        s = make(sb2, sc2, 1);
        T_EQ(sn_hist_subtract(t, s), 1);
        sn_hist_destroy(s);
    }
    /* absent src buckets with count 0 are fine: 0 */
    {
        struct sn_bucket sb[] = {NANB, bk(20, 0), bk(30, 0), bk(99, 9)};
        uint64_t sc[] = {0, 0, 1, 0};
        struct sn_hist *s = make(sb, sc, 4);
        T_EQ(sn_hist_subtract(t, s), 0);
        uint64_t cs[] = {5, 2};
        T_OK(holds(t, tb, cs, 2));
        sn_hist_destroy(s);
    }
    /* from an empty target */
    {
        struct sn_hist *e = sn_hist_create();
        T_EQ(sn_hist_subtract(e, t), 1);
        T_EQU(sn_hist_nbuckets(e), 0);
        T_EQ(sn_hist_subtract(t, e), 0); /* subtracting nothing */
        uint64_t cs[] = {5, 2};
        T_OK(holds(t, tb, cs, 2));
        sn_hist_destroy(e);
    }
    sn_hist_destroy(t);
}

static void test_subtract_keeps_zero_buckets_and_self(void)
{
    struct sn_bucket tb[] = {NANB, bk(-10, 0), ZEROB, bk(10, 0), bk(20, 0)};
    uint64_t tc[] = {3, 0, 2, 4, UINT64_MAX};
    struct sn_bucket sb[] = {bk(-10, 0), ZEROB, bk(10, 0)};
    uint64_t sc[] = {0, 2, 4};
    struct sn_hist *t = make(tb, tc, 5), *s = make(sb, sc, 3);

    T_EQ(sn_hist_subtract(t, s), 0);
    {
        uint64_t cs[] = {3, 0, 0, 0, UINT64_MAX};
        T_OK(holds(t, tb, cs, 5)); /* emptied buckets stay, order kept */
    }
    T_EQ(sn_hist_subtract(t, t), 0); /* self: everything to 0, nothing clamps */
    {
        uint64_t cs[] = {0, 0, 0, 0, 0};
        T_OK(holds(t, tb, cs, 5));
    }
    /* inserts after subtract still find the buckets */
    sn_hist_insert(t, 2.0, 1);
    sn_hist_insert(t, 1.5, 1);
    {
        struct sn_bucket bs[] = {NANB, bk(-10, 0), ZEROB, bk(10, 0), bk(15, 0), bk(20, 0)};
        uint64_t cs[] = {0, 0, 0, 0, 1, 1};
        T_OK(holds(t, bs, cs, 6));
    }
    sn_hist_destroy(t);
    sn_hist_destroy(s);
}

/* --- differential: random operations against the model ----------------------------------- */

/* A random double in the pool's range: +-[1, 10) x 10^(-2..2), sometimes 0 or NaN. */
static double rand_double(void)
{
    uint64_t r = t_rand() % 100;
    double d;

    if (r < 2)
        return NAN;
    if (r < 4)
        return 0.0;
    d = (1.0 + 9.0 * t_rand01()) * pow(10.0, (double)(int)(t_rand() % 5) - 2.0);
    return r < 40 ? -d : d;
}

/* A random u64 with 1..20 digits, sometimes 0 or near a decade boundary. */
static uint64_t rand_u64(void)
{
    uint64_t r = t_rand() % 100, p = 1;
    int digits = 1 + (int)(t_rand() % 20);

    for (int i = 1; i < digits; i++)
        p *= 10;
    if (r < 3)
        return 0;
    if (r < 10)
        return p - t_rand() % 3; /* just below a power of ten */
    return p + t_rand() % (digits < 20 ? 9 * p : UINT64_MAX - p);
}

/* The model after remove_zeroes: rebuilt from its non-zero buckets. */
static void model_remove_zeroes(struct llm_hist *m)
{
    struct llm_hist *tmp = llm_create();
    struct llm_bucket b;
    uint64_t c;
    const struct llm_hist *one[1];

    for (int i = 0; llm_get(m, i, &b, &c); i++)
        if (c)
            llm_insert_raw(tmp, b, c);
    llm_clear(m);
    one[0] = tmp;
    llm_accumulate(m, one, 1);
    llm_destroy(tmp);
}

static void test_random_ops_vs_model(void)
{
    struct sn_hist *h = sn_hist_create();
    struct llm_hist *m = llm_create();
    int counts[12] = {0};
    bool ok = true;

    t_seed(0x50de);
    for (int step = 0; step < NOPS && ok; step++) {
        uint64_t r = t_rand() % 1000, c = rand_count();
        int op;

        if (r < 300)
            op = 0; /* insert raw */
        else if (r < 480)
            op = 1; /* insert double */
        else if (r < 560)
            op = 2; /* insert u64 */
        else if (r < 620)
            op = 3; /* insert int x 10^scale */
        else if (r < 700)
            op = 4; /* insert raw_end */
        else if (r < 800)
            op = 5; /* remove */
        else if (r < 870)
            op = 6; /* merge */
        else if (r < 940)
            op = 7; /* subtract */
        else if (r < 945)
            op = 8; /* merge self */
        else if (r < 950)
            op = 9; /* subtract self */
        else if (r < 957)
            op = 10; /* remove zeroes */
        else if (r < 967)
            op = 11; /* clear */
        else
            op = 1;
        counts[op]++;
        t_note("step %d op %d", step, op);

        switch (op) {
        case 0: {
            struct sn_bucket b = rand_bucket(-2, 2);
            ok &= T_EQ(sn_hist_insert_raw(h, b, c), 0);
            llm_insert_raw(m, lb(b), c);
            break;
        }
        case 1: {
            double d = rand_double();
            ok &= T_EQ(sn_hist_insert(h, d, c), 0);
            llm_insert(m, d, c);
            break;
        }
        case 2: {
            uint64_t v = rand_u64();
            ok &= T_EQ(sn_hist_insert_u64(h, v, c), 0);
            llm_insert(m, (double)v, c);
            break;
        }
        case 3: {
            int64_t v = (int64_t)(t_rand() % 2000) - 1000;
            int scale = (int)(t_rand() % 7) - 5;
            ok &= T_EQ(sn_hist_insert_int_scale(h, v, scale, c), 0);
            llm_insert_intscale(m, v, scale, c);
            break;
        }
        case 4: {
            /* usually at or after the last bucket, sometimes anywhere */
            struct sn_bucket b = rand_bucket(-2, 2), last;
            size_t n = sn_hist_nbuckets(h);
            if (n && t_rand() % 4 && sn_hist_bucket_at(h, n - 1, &last, NULL)) {
                uint32_t o = sn_bucket_ord(last) + (uint32_t)(t_rand() % 3);
                b = sn_bucket_from_ord(o < SN_BUCKET_NORD ? o : SN_BUCKET_NORD - 1);
            }
            ok &= T_EQ(sn_hist_insert_raw_end(h, b, c), 0);
            llm_insert_raw(m, lb(b), c);
            break;
        }
        case 5: {
            double d = rand_double();
            uint64_t k = t_rand() % 4 ? t_rand() % 500 : UINT64_MAX;
            uint64_t got = sn_hist_remove(h, d, k);
            uint64_t want = llm_remove_raw(m, llm_bucket_from_double(d), k);
            ok &= T_EQU(got, want);
            break;
        }
        case 6: {
            struct sn_hist *s = sn_hist_create();
            struct llm_hist *ms = llm_create();
            const struct llm_hist *one[1] = {ms};
            size_t n = sn_hist_nbuckets(h);
            uint64_t kind = t_rand() % 3;
            if (kind == 0 || n == 0) {
                rand_fill(s, ms, (int)(t_rand() % 30), -2, 2);
            } else {
                /* h's own bucket set (kind 1) or a part of it (kind 2): the paths that add
                 * in place */
                for (size_t i = 0; i < n; i++) {
                    struct sn_bucket b;
                    uint64_t sc = rand_count();
                    if (kind == 2 && t_rand() % 3)
                        continue;
                    sn_hist_bucket_at(h, i, &b, NULL);
                    sn_hist_insert_raw(s, b, sc);
                    llm_insert_raw(ms, lb(b), sc);
                }
            }
            ok &= T_EQ(sn_hist_merge(h, s), 0);
            llm_accumulate(m, one, 1);
            sn_hist_destroy(s);
            llm_destroy(ms);
            break;
        }
        case 7: {
            /* a mix of buckets h has (with counts around theirs) and random ones */
            struct sn_hist *s = sn_hist_create();
            struct llm_hist *ms = llm_create();
            const struct llm_hist *one[1] = {ms};
            size_t n = sn_hist_nbuckets(h);
            for (int i = 0, k = (int)(t_rand() % 20); i < k; i++) {
                struct sn_bucket b;
                uint64_t hc = 0, sc;
                if (n && t_rand() % 4)
                    sn_hist_bucket_at(h, t_rand() % n, &b, &hc);
                else
                    b = rand_bucket(-2, 2);
                sc = t_rand() % 3 ? hc / (1 + t_rand() % 3) : hc + t_rand() % 3;
                if (t_rand() % 10 == 0)
                    sc = 0;
                sn_hist_insert_raw(s, b, sc);
                llm_insert_raw(ms, lb(b), sc);
            }
            {
                int got = sn_hist_subtract(h, s), want = llm_subtract(m, one, 1);
                ok &= T_EQ(got, want == -1 ? 1 : 0);
            }
            sn_hist_destroy(s);
            llm_destroy(ms);
            break;
        }
        case 8: {
            struct llm_hist *copy = to_model(h);
            const struct llm_hist *one[1] = {copy};
            ok &= T_EQ(sn_hist_merge(h, h), 0);
            llm_accumulate(m, one, 1);
            llm_destroy(copy);
            break;
        }
        case 9: {
            const struct llm_hist *one[1] = {m};
            ok &= T_EQ(sn_hist_subtract(h, h), 0);
            ok &= T_EQ(llm_subtract(m, one, 1), 0);
            break;
        }
        case 10:
            sn_hist_remove_zeroes(h);
            model_remove_zeroes(m);
            break;
        case 11:
            sn_hist_clear(h);
            llm_clear(m);
            break;
        }
        ok &= T_OK(same_as_model(h, m));
    }
    t_note("%s", "");
    /* every kind of operation actually ran */
    for (int op = 0; op < 12; op++) {
        t_note("op %d ran %d times", op, counts[op]);
        T_OK(counts[op] > 20);
    }
    sn_hist_destroy(h);
    llm_destroy(m);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("insert double: buckets and counts", test_insert_double);
    t_run("insert int x 10^scale and u64: buckets and counts", test_insert_int_scale_u64);
    t_run("insert raw: extreme buckets, counts, bucket_count", test_insert_raw_counts);
    t_run("insert count 0 creates an empty bucket", test_insert_count_zero_creates_bucket);
    t_run("insert invalid bucket: -EINVAL, h unchanged", test_insert_invalid_bucket);
    t_run("insert saturates at UINT64_MAX", test_insert_saturates);
    t_run("buckets kept sorted in upstream order", test_buckets_sorted);
    t_run("count includes NaN and saturates", test_count_includes_nan_and_saturates);
    t_run("clear, then inserts and lookups stay consistent", test_clear_then_reuse);
    t_run("remove: floor at 0, returns amount, bucket stays", test_remove);
    t_run("remove_zeroes compacts and keeps the index right", test_remove_zeroes);
    t_run("clone is independent", test_clone_independent);
    t_run("insert_raw_end: append and equal-to-last", test_insert_raw_end_append);
    t_run("insert_raw_end: out of order falls back to insert", test_insert_raw_end_out_of_order);
    t_run("insert_raw_end: ascending run == model", test_insert_raw_end_ascending_run);
    t_run("merge: disjoint, overlapping, subset, superset", test_merge_disjoint_overlap_subset);
    t_run("merge saturates at UINT64_MAX", test_merge_saturates);
    t_run("merge is commutative and associative", test_merge_commutative_associative);
    t_run("merge with empty is the identity", test_merge_identity);
    t_run("merge into self doubles", test_merge_self_doubles);
    t_run("merge_many skips NULL entries", test_merge_many);
    t_run("merge of big random sets == model accumulate", test_merge_random_vs_model);
    t_run("subtract: (a+b)-b == a", test_subtract_inverse_of_merge);
    t_run("subtract clamps at 0 and returns 1", test_subtract_clamps);
    t_run("subtract: missing bucket with count > 0 returns 1", test_subtract_missing_bucket);
    t_run("subtract keeps zero buckets; subtract self", test_subtract_keeps_zero_buckets_and_self);
    t_run("50,000 random operations == model", test_random_ops_vs_model);
    return t_done();
}
