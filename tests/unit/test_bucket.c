/*
 * Bucket mappings: double -> bucket (fast path against the upstream log10 algorithm and the
 * model), the NaN-hole fix, int x 10^scale -> bucket, the integer-only u64 -> bucket function
 * that BPF programs use (against the double path on every boundary and a large random
 * sample), ordinals and their order, bucket -> doubles, strings and integer ranges.
 *
 * Run with --print-fuzz-table to print src/core/hist_bucket_fuzz.inc afresh.
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
#include "t.h"

#ifdef SN_SANITIZE
#define ULPS    24
#define NRANDOM 200000
#else
#define ULPS    300
#define NRANDOM 3000000
#endif

static bool beq(struct sn_bucket a, struct sn_bucket b)
{
    return a.val == b.val && a.exp == b.exp;
}

static bool beq_llm(struct sn_bucket a, struct llm_bucket b)
{
    return a.val == b.val && a.exp == b.exp;
}

#define T_BUCKET(b, v, e)                                                                          \
    do {                                                                                           \
        struct sn_bucket b_ = (b);                                                                 \
        t_note("got {%d,%d}", b_.val, b_.exp);                                                     \
        T_OK(b_.val == (v) && b_.exp == (e));                                                      \
        t_note("%s", "");                                                                          \
    } while (0)

static double next_up(double d, int64_t n)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    u += (uint64_t)n;
    memcpy(&d, &u, 8);
    return d;
}

static void test_boundary_table(void)
{
    struct {
        double d;
        int val, exp;
    } cases[] = {
        {0.0, 0, 0},
        {-0.0, 0, 0},
        {1.0, 10, 0},
        {9.0, 90, 0},
        {9.9, 99, 0},
        {10.0, 10, 1},
        {99.0, 99, 1},
        {99.99, 99, 1},
        {100.0, 10, 2},
        {101.0, 10, 2},
        {110.0, 11, 2},
        {0.01, 10, -2},
        {0.29, 29, -1}, /* 0.28999999999999998: the fuzz puts it where its text says */
        {0.11, 11, -1},
        {1e-128, 10, -128},
        {1.05e-128, 10, -128},
        {1e-129, 0, 0},
        {9.999e127, 99, 127},
        {1e128, -1, 0},
        {1e300, -1, 0},
        {DBL_MAX, -1, 0},
        {DBL_MIN, 0, 0},
        {5e-324, 0, 0}, /* smallest subnormal */
        {2.5e-310, 0, 0},
        {-1.0, -10, 0},
        {-2.7e-6, -27, -6},
        {-99.99, -99, 1},
        {-1e-128, -10, -128},
        {-1e128, -1, 0},
        {18446744073709551615.0, 18, 19},
        {1e15 - 1, 10, 15}, /* 999999999999999: within the fuzz of 1e15 */
        {1e14 - 1, 99, 13},
        {1.0 / 0.0, -1, 0},
        {-1.0 / 0.0, -1, 0},
        {NAN, -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_note("d=%.17g", cases[i].d);
        struct sn_bucket b = sn_bucket_from_double(cases[i].d);
        if (!T_OK(b.val == cases[i].val && b.exp == cases[i].exp))
            printf("#     d=%.17g -> {%d,%d}, want {%d,%d}\n", cases[i].d, b.val, b.exp,
                   cases[i].val, cases[i].exp);
        T_OK(beq(sn_bucket_from_double_ref(cases[i].d), b));
        T_OK(beq_llm(b, llm_bucket_from_double(cases[i].d)));
    }
}

static void test_int_scale_examples(void)
{
    T_BUCKET(sn_bucket_of_int_scale(1, 0), 10, 0);
    T_BUCKET(sn_bucket_of_int_scale(100, 0), 10, 2);
    T_BUCKET(sn_bucket_of_int_scale(1300000000, -9), 13, 0);
    T_BUCKET(sn_bucket_of_int_scale(-2700, -9), -27, -6);
    T_BUCKET(sn_bucket_of_int_scale(INT64_MAX, 1), 92, 19);
    T_BUCKET(sn_bucket_of_int_scale(INT64_MAX, 0), 92, 18);
    T_BUCKET(sn_bucket_of_int_scale(INT64_MIN, 0), -92, 18);
    T_BUCKET(sn_bucket_of_int_scale(0, 5), 0, 0);
    T_BUCKET(sn_bucket_of_int_scale(9, 0), 90, 0);
    T_BUCKET(sn_bucket_of_int_scale(999999999999999, 0), 99, 14); /* exact: no fuzz */
    T_BUCKET(sn_bucket_of_int_scale(1, -128), 10, -128);
    T_BUCKET(sn_bucket_of_int_scale(1, -129), 0, 0);
    T_BUCKET(sn_bucket_of_int_scale(99, 125), 99, 126);
    T_BUCKET(sn_bucket_of_int_scale(1, 127), 10, 127);
    T_BUCKET(sn_bucket_of_int_scale(10, 127), -1, 0);
    T_BUCKET(sn_bucket_of_int_scale(1, 100000), -1, 0);
    T_BUCKET(sn_bucket_of_int_scale(1, -100000), 0, 0);
}

static void test_int_scale_vs_model(void)
{
    t_seed(11);
    for (int i = 0; i < 200000; i++) {
        int64_t v = (int64_t)(t_rand() >> (t_rand() % 64));
        int scale = (int)(t_rand() % 300) - 150;
        if (t_rand() & 1)
            v = -v;
        struct sn_bucket b = sn_bucket_of_int_scale(v, scale);
        t_note("v=%" PRId64 " scale=%d", v, scale);
        if (!T_OK(beq_llm(b, llm_bucket_from_int_scale(v, scale))))
            break;
    }
}

/* fast == reference on d, and reference == model; returns false on a mismatch */
static bool agree(double d)
{
    struct sn_bucket f = sn_bucket_from_double(d), r = sn_bucket_from_double_ref(d);
    if (beq(f, r) && beq_llm(r, llm_bucket_from_double(d)))
        return true;
    t_note("d=%.17g (%a): fast {%d,%d} ref {%d,%d}", d, d, f.val, f.exp, r.val, r.exp);
    return T_OK(false);
}

static void test_fast_vs_ref_boundaries(void)
{
    /* every bucket boundary k/10 * 10^e, +-ULPS ulps, both signs */
    for (int e = -130; e <= 128; e++) {
        for (int k = 10; k <= 100; k++) {
            char s[32];
            snprintf(s, sizeof(s), "%de%d", k, e - 1);
            double b = strtod(s, NULL);
            for (int u = -ULPS; u <= ULPS; u++) {
                double d = next_up(b, u);
                if (!agree(d) || !agree(-d))
                    return;
            }
            for (double rel = 1e-16; rel < 2e-11; rel *= 1.7)
                if (!agree(b * (1 + rel)) || !agree(b * (1 - rel)))
                    return;
        }
    }
}

static void test_fast_vs_ref_random(void)
{
    t_seed(1);
    for (int i = 0; i < NRANDOM; i++) {
        double d = pow(10, t_rand01() * 300 - 150);
        uint64_t bits = t_rand();
        double r;
        memcpy(&r, &bits, 8);
        if (!agree(d) || !agree(r))
            return;
    }
    /* every binary exponent: the e2 -> decimal exponent estimate */
    for (int e2 = -1074; e2 <= 1023; e2++)
        if (!agree(ldexp(1.0, e2)) || !agree(ldexp(1.5, e2)) || !agree(ldexp(1.999, e2)))
            return;
}

static void test_nan_holes(void)
{
    /* values just below 10^k with |k| >= 64 fall into upstream's NaN holes */
    int holes = 0, fixed_ok = 0;
    for (int k = -128; k <= 127; k++) {
        char s[16];
        snprintf(s, sizeof(s), "1e%d", k);
        double p = strtod(s, NULL);
        for (int u = 1; u <= 200; u++) {
            double d = next_up(p, -u);
            struct sn_bucket b = sn_bucket_from_double(d), f = sn_bucket_from_double_fixed(d);
            if (b.val != -1)
                continue;
            holes++;
            if (k > -64 && k < 65)
                T_OK(false); /* no holes for k in -63..64 */
            /* fixed: the bucket the value lies in, {99, k-1}, or zero below 1e-128 */
            if ((k == -128 && f.val == 0) || (f.val == 99 && f.exp == k - 1))
                fixed_ok++;
            T_OK(beq(sn_bucket_from_double_fixed(-d), sn_bucket_make(-f.val, f.exp)) || f.val == 0);
        }
    }
    T_OK(holes > 1000);
    T_EQ(fixed_ok, holes);
    /* the fix changes nothing else */
    t_seed(2);
    for (int i = 0; i < 100000; i++) {
        double d = pow(10, t_rand01() * 256 - 128);
        struct sn_bucket b = sn_bucket_from_double(d);
        if (b.val != -1 && !T_OK(beq(b, sn_bucket_from_double_fixed(d))))
            break;
    }
    T_BUCKET(sn_bucket_from_double_fixed(1e128), -1, 0);
    T_BUCKET(sn_bucket_from_double_fixed(NAN), -1, 0);
}

/* smallest integer in [lo, hi] whose double-path bucket ordinal is >= ord (monotone) */
static uint64_t first_at_or_above(uint64_t lo, uint64_t hi, uint16_t ord)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (sn_bucket_ord(sn_bucket_from_double((double)mid)) >= ord)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* sn_bucket_fuzz_delta as the double path defines it */
static void fuzz_table(uint32_t out[7][90])
{
    for (int e = SN_BUCKET_FUZZ_EMIN; e <= 19; e++) {
        for (int m = 11; m <= 100; m++) {
            unsigned __int128 B = (unsigned __int128)m * sn_pow10_u64[e - 1];
            uint16_t ord =
                sn_bucket_ord(m == 100 ? sn_bucket_make(10, e + 1) : sn_bucket_make(m, e));
            uint32_t d = 0;
            if (B <= UINT64_MAX) {
                uint64_t b = (uint64_t)B, span = sn_pow10_u64[e - 1] / 2;
                d = (uint32_t)(b - first_at_or_above(b - span, b, ord));
            }
            out[e - SN_BUCKET_FUZZ_EMIN][m - 11] = d;
        }
    }
}

static void test_fuzz_table(void)
{
    static uint32_t want[7][90];
    fuzz_table(want);
    for (int r = 0; r < 7; r++)
        for (int c = 0; c < 90; c++) {
            t_note("row %d (exp %d) col %d (m %d); run with --print-fuzz-table", r, r + 13, c,
                   c + 11);
            if (!T_EQ(sn_bucket_fuzz_delta[r][c], want[r][c]))
                return;
        }
    /* below 10^13 no integer is moved: the boundary's predecessor stays below it */
    for (int e = 1; e < SN_BUCKET_FUZZ_EMIN; e++)
        for (int m = 11; m <= 100; m++) {
            uint64_t b = (uint64_t)m * sn_pow10_u64[e - 1];
            struct sn_bucket below = sn_bucket_from_double((double)(b - 1));
            T_OK(below.exp == e && below.val == m - 1);
        }
}

static bool u64_agrees(uint64_t v)
{
    struct sn_bucket a = sn_bucket_of_u64(v), b = sn_bucket_from_double((double)v);
    if (beq(a, b))
        return true;
    t_note("v=%" PRIu64 ": u64 {%d,%d} double {%d,%d}", v, a.val, a.exp, b.val, b.exp);
    return T_OK(false);
}

static void test_u64_vs_double_edges(void)
{
    T_BUCKET(sn_bucket_of_u64(0), 0, 0);
    T_BUCKET(sn_bucket_of_u64(1), 10, 0);
    T_BUCKET(sn_bucket_of_u64(UINT64_MAX), 18, 19);
    T_BUCKET(sn_bucket_of_u64(2000000), 20, 6);
    /* every bucket boundary m*10^(e-1) +-2, and +-2 around each fuzz threshold */
    for (int e = 0; e <= 19; e++) {
        for (int m = 10; m <= 100; m++) {
            unsigned __int128 B =
                e == 0 ? (unsigned __int128)m / 10 : (unsigned __int128)m * sn_pow10_u64[e - 1];
            if (e == 0 && m % 10)
                continue;
            for (int d = -2; d <= 2; d++) {
                unsigned __int128 v = B + d;
                if (v > UINT64_MAX || (int64_t)B + d < 0)
                    continue;
                if (!u64_agrees((uint64_t)v))
                    return;
            }
            if (e >= SN_BUCKET_FUZZ_EMIN && m > 10 && B <= UINT64_MAX) {
                uint64_t t = (uint64_t)B - sn_bucket_fuzz_delta[e - SN_BUCKET_FUZZ_EMIN][m - 11];
                for (int d = -2; d <= 2; d++)
                    if (!u64_agrees(t + (uint64_t)d))
                        return;
            }
        }
    }
    for (uint64_t v = 0; v < 100000; v++)
        if (!u64_agrees(v))
            return;
    for (uint64_t v = UINT64_MAX - 5000; v != 0; v++)
        if (!u64_agrees(v))
            return;
}

static void test_u64_vs_double_random(void)
{
    t_seed(3);
    for (int i = 0; i < NRANDOM; i++) {
        uint64_t r = t_rand();
        if (!u64_agrees(r) || !u64_agrees(r >> (r % 64)))
            return;
    }
}

static void test_ordinals(void)
{
    struct sn_bucket prev = sn_bucket_from_ord(0);
    T_OK(beq(prev, sn_bucket_make(-1, 0)));
    T_EQ(sn_bucket_ord(sn_bucket_make(0, 0)), SN_BUCKET_ORD_ZERO);
    T_EQ(sn_bucket_ord(sn_bucket_make(10, -128)), SN_BUCKET_ORD_POS);
    T_EQ(sn_bucket_ord(sn_bucket_make(99, 127)), SN_BUCKET_NORD - 1);
    T_EQ(sn_bucket_ord(sn_bucket_make(-99, 127)), 1);
    T_EQ(sn_bucket_ord(sn_bucket_make(-10, -128)), SN_BUCKET_ORD_ZERO - 1);
    for (uint32_t o = 0; o < SN_BUCKET_NORD; o++) {
        struct sn_bucket b = sn_bucket_from_ord(o);
        struct llm_bucket lb = {b.val, b.exp}, lp = {prev.val, prev.exp};
        t_note("ord %u = {%d,%d}", o, b.val, b.exp);
        if (!T_OK(sn_bucket_is_valid(b)) || !T_EQ(sn_bucket_ord(b), o))
            return;
        /* the same total order as upstream's comparator */
        if (o > 0 && !T_EQ(llm_bucket_cmp(lp, lb), 1))
            return;
        if (!T_EQ(sn_bucket_cmp(prev, b), o > 0 ? 1 : 0))
            return;
        prev = b;
    }
    /* invalid buckets */
    T_OK(!sn_bucket_is_valid(sn_bucket_make(5, 0)));
    T_OK(!sn_bucket_is_valid(sn_bucket_make(100, 0)));
    T_OK(!sn_bucket_is_valid(sn_bucket_make(-1, 3)));
    T_OK(!sn_bucket_is_valid(sn_bucket_make(0, 7)));
    T_OK(sn_bucket_is_nan(sn_bucket_make(-1, 3)));
    T_OK(!sn_bucket_is_nan(sn_bucket_make(0, 7)));
}

static void test_bucket_doubles(void)
{
    for (uint32_t o = 0; o < SN_BUCKET_NORD; o++) {
        struct sn_bucket b = sn_bucket_from_ord(o);
        struct llm_bucket lb = {b.val, b.exp};
        t_note("{%d,%d}", b.val, b.exp);
        if (!T_DEQ(sn_bucket_to_double(b), llm_bucket_to_double(lb)) ||
            !T_DEQ(sn_bucket_width(b), llm_bucket_width(lb)) ||
            !T_DEQ(sn_bucket_midpoint(b), llm_bucket_midpoint(lb)) ||
            !T_DEQ(sn_bucket_left(b), llm_bucket_left(lb)))
            return;
    }
    T_DEQ(sn_bucket_midpoint(sn_bucket_make(10, 0)), 1.0476190476190477);
    T_DEQ(sn_bucket_midpoint(sn_bucket_make(-10, 0)), -1.0476190476190477);
    T_DEQ(sn_bucket_to_double(sn_bucket_make(23, 3)), 2300.0);
    T_DEQ(sn_bucket_left(sn_bucket_make(-23, 3)), -2400.0);
    T_DEQ(sn_bucket_width(sn_bucket_make(23, 3)), 100.0);
    T_DEQ(sn_bucket_to_double(sn_bucket_make(0, 0)), 0.0);
    uint64_t nan_bits = 0x7fffffffffffffffULL;
    double nan;
    memcpy(&nan, &nan_bits, 8);
    T_DEQ(sn_bucket_to_double(sn_bucket_make(-1, 0)), nan);
}

static void test_strings(void)
{
    char a[SN_BUCKET_STRLEN], b[9];
    sn_bucket_to_string(sn_bucket_make(10, 0), a);
    T_STR(a, "+10e-001");
    sn_bucket_to_string(sn_bucket_make(-23, -2), a);
    T_STR(a, "-23e-003");
    sn_bucket_to_string(sn_bucket_make(0, 0), a);
    T_STR(a, "0");
    sn_bucket_to_string(sn_bucket_make(-1, 0), a);
    T_STR(a, "NaN");
    sn_bucket_to_string(sn_bucket_make(99, 127), a);
    T_STR(a, "+99e+126");
    sn_bucket_to_string(sn_bucket_make(-10, -128), a);
    T_STR(a, "-10e-129");
    for (uint32_t o = 0; o < SN_BUCKET_NORD; o++) {
        struct sn_bucket x = sn_bucket_from_ord(o);
        struct llm_bucket lx = {x.val, x.exp};
        sn_bucket_to_string(x, a);
        llm_bucket_to_string(lx, b);
        if (!T_STR(a, b))
            return;
    }
}

#define T_RANGE(b, rc, l, h)                                                                       \
    do {                                                                                           \
        int64_t lo_ = 7, hi_ = 7;                                                                  \
        T_EQ(sn_bucket_int_range((b), &lo_, &hi_), (rc));                                          \
        T_EQ(lo_, (l));                                                                            \
        T_EQ(hi_, (h));                                                                            \
    } while (0)

static void test_int_range(void)
{
    T_RANGE(sn_bucket_make(10, 0), 0, 1, 1);
    T_RANGE(sn_bucket_make(11, 0), -ERANGE, 1, 1); /* [1.1, 1.2) holds no integer */
    T_RANGE(sn_bucket_make(20, 0), 0, 2, 2);
    T_RANGE(sn_bucket_make(15, 1), 0, 15, 15);
    T_RANGE(sn_bucket_make(10, 2), 0, 100, 109);
    T_RANGE(sn_bucket_make(99, 2), 0, 990, 999);
    T_RANGE(sn_bucket_make(10, 4), 0, 10000, 10999);
    T_RANGE(sn_bucket_make(20, 6), 0, 2000000, 2099999);
    T_RANGE(sn_bucket_make(20, 7), 0, 20000000, 20999999);
    T_RANGE(sn_bucket_make(-10, 2), 0, -109, -100);
    T_RANGE(sn_bucket_make(-20, 0), 0, -2, -2);
    T_RANGE(sn_bucket_make(50, -1), -ERANGE, 0, 0);
    T_RANGE(sn_bucket_make(99, -1), -ERANGE, 0, 0); /* [0.99, 1.0) */
    T_RANGE(sn_bucket_make(10, -5), -ERANGE, 0, 0);
    T_RANGE(sn_bucket_make(0, 0), 0, 0, 0);
    T_RANGE(sn_bucket_make(92, 18), 0, 9200000000000000000LL, INT64_MAX);
    T_RANGE(sn_bucket_make(-92, 18), 0, INT64_MIN, -9200000000000000000LL);
    T_RANGE(sn_bucket_make(93, 18), -ERANGE, INT64_MAX, INT64_MAX);
    T_RANGE(sn_bucket_make(-93, 18), -ERANGE, INT64_MIN, INT64_MIN);
    T_RANGE(sn_bucket_make(92, 19), -ERANGE, INT64_MAX, INT64_MAX);
    T_RANGE(sn_bucket_make(10, 127), -ERANGE, INT64_MAX, INT64_MAX);
    int64_t lo, hi;
    T_EQ(sn_bucket_int_range(sn_bucket_make(-1, 0), &lo, &hi), -EDOM);
    T_EQ(sn_bucket_int_range(sn_bucket_make(5, 0), &lo, &hi), -EDOM);

    /* every integer lies in the range of its own bucket, and ranges tile the integers */
    t_seed(4);
    for (int i = 0; i < 200000; i++) {
        int64_t v = (int64_t)(t_rand() >> 1 >> (t_rand() % 63));
        struct sn_bucket b = sn_bucket_of_int_scale(v, 0);
        t_note("v=%" PRId64, v);
        if (!T_EQ(sn_bucket_int_range(b, &lo, &hi), 0) || !T_OK(lo <= v && v <= hi))
            return;
        if (v < INT64_MAX && !beq(sn_bucket_of_int_scale(v + 1, 0), b) && !T_EQ(hi, v))
            return;
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-fuzz-table") == 0) {
        static uint32_t tab[7][90];
        fuzz_table(tab);
        printf("/* generated by test_bucket --print-fuzz-table; see hist_bucket.h */\n");
        for (int r = 0; r < 7; r++) {
            printf("    {");
            for (int c = 0; c < 90; c++)
                printf("%s%u", c ? ", " : "", tab[r][c]);
            printf("},\n");
        }
        return 0;
    }
    t_init(argc, argv);
    t_run("double -> bucket: boundary table", test_boundary_table);
    t_run("int x 10^scale -> bucket: examples", test_int_scale_examples);
    t_run("int x 10^scale -> bucket: equals the model", test_int_scale_vs_model);
    t_run("double -> bucket: fast == upstream on every boundary +-ulps",
          test_fast_vs_ref_boundaries);
    t_run("double -> bucket: fast == upstream on random doubles", test_fast_vs_ref_random);
    t_run("double -> bucket: NaN holes and their fix", test_nan_holes);
    t_run("u64 -> bucket: fuzz table matches the double path", test_fuzz_table);
    t_run("u64 -> bucket: == double path on every decade edge +-2", test_u64_vs_double_edges);
    t_run("u64 -> bucket: == double path on random integers", test_u64_vs_double_random);
    t_run("ordinals: round trip and upstream's order", test_ordinals);
    t_run("bucket -> double, width, midpoint, left == model", test_bucket_doubles);
    t_run("bucket strings == model", test_strings);
    t_run("bucket -> integer range", test_int_range);
    return t_done();
}
