/*
 * llmodel_selftest: checks the libcircllhist model (llmodel.c) against the worked examples of
 * /work/shared/ref/circllhist.md, so that the oracle itself is known good before Sonde is
 * compared with it. Standalone: prints one line per check and ends with "N passed, N failed";
 * exits non-zero on any failure.
 */
#include "llmodel.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Pass/fail tally, owned by main() and passed to every check. */
struct tally {
    int pass; /* checks that held */
    int fail; /* checks that did not */
};

static void check(struct tally *t, int ok, const char *what)
{
    if (ok)
        t->pass++;
    else
        t->fail++;
    printf("%s - %s\n", ok ? "ok" : "FAIL", what);
}

static void check_bucket(struct tally *t, struct llm_bucket got, int val, int exp, const char *what)
{
    int ok = got.val == val && got.exp == exp;

    if (!ok)
        printf("# got {%d,%d}, want {%d,%d}\n", got.val, got.exp, val, exp);
    check(t, ok, what);
}

static void check_double(struct tally *t, double got, double want, const char *what)
{
    int ok = got == want;

    if (!ok)
        printf("# got %.17g, want %.17g\n", got, want);
    check(t, ok, what);
}

static void check_u64(struct tally *t, uint64_t got, uint64_t want, const char *what)
{
    int ok = got == want;

    if (!ok)
        printf("# got %llu, want %llu\n", (unsigned long long)got, (unsigned long long)want);
    check(t, ok, what);
}

static void to_hex(const uint8_t *p, ssize_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    ssize_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Serializes h and compares the lowercase hex of the bytes with want_hex. */
static void check_hex(struct tally *t, const struct llm_hist *h, const char *want_hex,
                      const char *what)
{
    uint8_t buf[256];
    char hex[513];
    ssize_t n = llm_serialize(h, buf, sizeof(buf));
    int ok = n >= 0 && n == llm_serialize_size(h);

    if (ok) {
        to_hex(buf, n, hex);
        ok = strcmp(hex, want_hex) == 0;
        if (!ok)
            printf("# got %s\n# want %s\n", hex, want_hex);
    }
    check(t, ok, what);
}

static void check_b64(struct tally *t, const struct llm_hist *h, const char *want, const char *what)
{
    char buf[256];
    ssize_t n = llm_serialize_b64(h, buf, sizeof(buf));
    int ok = n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;

    if (!ok)
        printf("# got %.*s\n# want %s\n", n > 0 ? (int)n : 0, buf, want);
    check(t, ok, what);
}

static void check_string(struct tally *t, int val, int exp, const char *want)
{
    struct llm_bucket b = {(int8_t)val, (int8_t)exp};
    char buf[9], what[64];
    int n = llm_bucket_to_string(b, buf);

    snprintf(what, sizeof(what), "bucket {%d,%d} prints as %s", val, exp, want);
    check(t, n == (int)strlen(want) && strcmp(buf, want) == 0, what);
}

static void test_buckets(struct tally *t)
{
    struct llm_bucket b = {10, 0}, z = {0, 0}, nb = {-1, 0};

    check_bucket(t, llm_bucket_from_int_scale(1, 0), 10, 0, "int_scale (1,0) -> {10,0}");
    check_bucket(t, llm_bucket_from_int_scale(100, 0), 10, 2, "int_scale (100,0) -> {10,2}");
    check_bucket(t, llm_bucket_from_int_scale(1300000000, -9), 13, 0,
                 "int_scale (1300000000,-9) -> {13,0}");
    check_bucket(t, llm_bucket_from_int_scale(-2700, -9), -27, -6,
                 "int_scale (-2700,-9) -> {-27,-6}");
    check_bucket(t, llm_bucket_from_int_scale(INT64_MAX, 1), 92, 19,
                 "int_scale (INT64_MAX,1) -> {92,19}");

    check_string(t, 10, 0, "+10e-001");
    check_string(t, -23, -2, "-23e-003");
    check_string(t, 0, 0, "0");
    check_string(t, -1, 0, "NaN");
    check_string(t, 99, 127, "+99e+126");

    check_double(t, llm_bucket_to_double((struct llm_bucket){23, 3}), 2300.0, "{23,3} = 2.3e3");
    check_double(t, llm_bucket_to_double(b), 1.0, "{10,0} = 1.0");
    check_double(t, llm_bucket_midpoint(b), 1.0476190476190477, "midpoint {10,0} harmonic");
    check_double(t, llm_bucket_midpoint((struct llm_bucket){-10, 0}), -1.0476190476190477,
                 "midpoint {-10,0} harmonic");
    check_double(t, llm_bucket_left((struct llm_bucket){-10, 0}), -1.1, "left {-10,0} = -1.1");
    check_double(t, llm_bucket_width(b), 0.1, "width {10,0} = 0.1");

    check(t, llm_bucket_cmp(nb, (struct llm_bucket){-99, 5}) == 1, "cmp: NaN sorts first");
    check(t, llm_bucket_cmp((struct llm_bucket){-99, 5}, (struct llm_bucket){-10, 5}) == 1,
          "cmp: -9.9e5 < -1e5");
    check(t, llm_bucket_cmp((struct llm_bucket){-10, 6}, (struct llm_bucket){-99, 5}) == 1,
          "cmp: larger exp first among negatives");
    check(t, llm_bucket_cmp(z, (struct llm_bucket){10, -128}) == 1, "cmp: zero < positive");
    check(t, llm_bucket_cmp((struct llm_bucket){99, 0}, (struct llm_bucket){10, 1}) == 1,
          "cmp: 9.9 < 10");
    check(t, llm_bucket_cmp(b, b) == 0, "cmp: equal");

    check_bucket(t, llm_bucket_from_double(0.29), 29, -1, "0.29 -> {29,-1} (fuzz)");
    check_bucket(t, llm_bucket_from_double(99.99), 99, 1, "99.99 -> {99,1}");
    check_bucket(t, llm_bucket_from_double(-0.0), 0, 0, "-0.0 -> zero bucket");
    check_bucket(t, llm_bucket_from_double(1e128), -1, 0, "1e128 -> NaN");
    check_bucket(t, llm_bucket_from_double(9.9e127), 99, 127, "9.9e127 -> {99,127}");
    check_bucket(t, llm_bucket_from_double(1e-128), 10, -128, "1e-128 -> {10,-128}");
    check_bucket(t, llm_bucket_from_double(5e-129), 0, 0, "5e-129 -> zero");
    check_bucket(t, llm_bucket_from_double(-0.011), -11, -2, "-0.011 -> {-11,-2}");
    check(t,
          llm_bucket_is_nan((struct llm_bucket){5, 0}) &&
              llm_bucket_is_nan((struct llm_bucket){-128, 3}) &&
              !llm_bucket_is_nan((struct llm_bucket){0, 7}),
          "isnan: |val| 1..9 and >=100 are NaN, val 0 any exp is not");
}

/* The NaN holes of spec 1.2: present below 1e100 (glibc log10), absent below 1e10. */
static void test_nan_holes(struct tally *t)
{
    double x;
    int i, holes_big = 0, holes_small = 0;

    for (x = 1e100, i = 0; i < 300; i++) {
        x = nextafter(x, 0);
        holes_big += llm_bucket_is_nan(llm_bucket_from_double(x));
    }
    for (x = 1e10, i = 0; i < 300; i++) {
        x = nextafter(x, 0);
        holes_small += llm_bucket_is_nan(llm_bucket_from_double(x));
    }
    printf("# NaN holes in 300 ulps below 1e100: %d, below 1e10: %d\n", holes_big, holes_small);
    check(t, holes_big >= 31 && holes_big <= 49, "NaN hole window below 1e100 is 31..49 ulps");
    check(t, holes_small == 0, "no NaN hole below 1e10");
}

static void test_serialize(struct tally *t)
{
    static const char ex_hex[] = "0006"
                                 "0afe0001"
                                 "0a000001"
                                 "63000001"
                                 "0a010001"
                                 "63010001"
                                 "0a020001";
    static const char ex_b64[] = "AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=";
    static const char ws_b64[] = " AAYK/gABCgAAAWMA\tAAEK\nAQABYwEAAQoCAAE=";
    static const double vals[] = {1.0, 9.9, 10, 99.99, 100, 0.01};
    struct llm_hist *h = llm_create(), *g = llm_create();
    struct llm_bucket b;
    uint64_t c;
    size_t i;
    int same = 1, j;

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        llm_insert(h, vals[i], 1);
    check(t, llm_serialize_size(h) == 26, "worked example: size 26");
    check_hex(t, h, ex_hex, "worked example: binary");
    check_b64(t, h, ex_b64, "worked example: base64");
    check(t, llm_deserialize_b64(g, ex_b64, (ssize_t)strlen(ex_b64)) == 26,
          "worked example: base64 decodes 26 bytes");
    for (j = 0; j < llm_used(h); j++) {
        struct llm_bucket b2;
        uint64_t c2;

        llm_get(h, j, &b, &c);
        same &= llm_get(g, j, &b2, &c2) && llm_bucket_cmp(b, b2) == 0 && c == c2;
    }
    check(t, same && llm_used(g) == 6, "worked example: round trip");
    check(t, llm_deserialize_b64(g, ws_b64, (ssize_t)strlen(ws_b64)) == 26,
          "base64 decoder skips whitespace");

    llm_clear(h);
    check_hex(t, h, "0000", "empty histogram -> 00 00");
    check_b64(t, h, "AAA=", "empty histogram -> AAA=");
    check(t, llm_deserialize_b64(g, "AAA=", 4) == 2 && llm_used(g) == 0, "AAA= decodes to empty");
    check(t, llm_deserialize_b64(g, "AA", 2) == -1, "too short base64 -> -1");
    {
        /* not NUL-terminated: ASan catches any read of nul_less[4] */
        const char nul_less[4] = {'A', 'A', 'A', '='};

        check(t, llm_deserialize_b64(g, nul_less, 4) == 2, "base64 decoder stays within len");
    }
    check(t, llm_deserialize_b64(g, "AAA=!AAAA", 9) == 2, "base64 stops at non-alphabet char");
    check(t, llm_deserialize_b64(g, "AAA= AA", 7) == 2, "base64 ignores incomplete final quad");
    /* "AAE=" gives 00 01 and sets the width to 2; "CgAA" "AAEA" then give 0a 00 and 00 01 */
    check(t, llm_deserialize_b64(g, "AAE=CgAAAAEA", 12) == 6 && llm_used(g) == 1,
          "base64: output width set by '=' stays for later quads (upstream)");

    llm_insert_raw(h, (struct llm_bucket){10, 0}, (uint64_t)1 << 32);
    check_hex(t, h, "00010a000300000000", "count_quirk_2pow32: tag 3, value 0");
    {
        uint8_t buf[16];
        ssize_t n = llm_serialize(h, buf, sizeof(buf));

        check(t, llm_deserialize(g, buf, n) == n && llm_used(g) == 0,
              "count_quirk_2pow32: reader drops the bucket");
    }
    llm_clear(h);
    llm_insert_raw(h, (struct llm_bucket){10, 0}, (uint64_t)1 << 48);
    check_hex(t, h, "00010a0005000000000000", "count_quirk_2pow48: tag 5, value 0");
    llm_clear(h);
    llm_insert_raw(h, (struct llm_bucket){10, 0}, ((uint64_t)1 << 36) - 1);
    check_hex(t, h, "00010a0003ffffffff", "count 2^36-1: tag 3, truncated mod 2^32");
    llm_clear(h);
    llm_insert_raw(h, (struct llm_bucket){10, 0}, (uint64_t)1 << 36);
    check_hex(t, h, "00010a00040000000010", "count 2^36: tag 4");
    llm_clear(h);
    llm_insert_raw(h, (struct llm_bucket){10, 0}, 0);
    check(t, llm_used(h) == 1, "count 0 insert still creates the bucket");
    check_hex(t, h, "0000", "zero-count bucket is not serialized");

    /* decoder: unsorted, duplicate and invalid records kept/dropped as upstream */
    {
        static const uint8_t rec[] = {0x00, 0x04, 0x14, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00,
                                      0x02, 0x0a, 0x00, 0x00, 0x03, 0x05, 0x00, 0x00, 0x09};
        struct llm_bucket b0, b1, b2;
        uint64_t c0, c1, c2;

        check(t, llm_deserialize(g, rec, sizeof(rec)) == (ssize_t)sizeof(rec) && llm_used(g) == 3,
              "decoder keeps unsorted and duplicate records, drops invalid bucket");
        llm_get(g, 0, &b0, &c0);
        llm_get(g, 1, &b1, &c1);
        llm_get(g, 2, &b2, &c2);
        check(t, b0.val == 20 && c0 == 1 && b1.val == 10 && c1 == 2 && b2.val == 10 && c2 == 3,
              "decoder order is as found");
        check(t, llm_deserialize(g, rec, 8) == -1 && llm_used(g) == 0,
              "short record -> -1, histogram emptied");
        check(t, llm_deserialize(g, rec, 2) == 2 && llm_used(g) == 0,
              "header only with N=4: stops early, not an error");
    }
    llm_destroy(h);
    llm_destroy(g);
}

static void test_quantiles(struct tally *t)
{
    struct llm_hist *h = llm_create();
    double q[3] = {0.0, 0.5, 1.0}, out[3];
    char what[96];
    int rc;

    llm_insert(h, 1.0, 1000000);
    rc = llm_quantile(h, &q[2], 1, out);
    printf("# 1e6 x 1.0: Type-1 q(1) = %.17g\n", out[0]);
    snprintf(what, sizeof(what), "1e6 x 1.0: Type-1 q(1) = %.17g ~ 1.0999999", out[0]);
    check(t, rc == 0 && out[0] == 1.0 + 1e6 / 1000001.0 * 0.1 && fabs(out[0] - 1.0999999) < 1e-9,
          what);

    llm_clear(h);
    llm_insert(h, 1.0, 1);
    rc = llm_quantile(h, q, 3, out);
    check(t, rc == 0 && out[0] == 1.05 && out[1] == 1.05 && out[2] == 1.05,
          "single sample sits at the arithmetic midpoint (Type 1)");
    rc = llm_quantile7(h, q, 3, out);
    check(t, rc == 0 && out[0] == 1.05 && out[2] == 1.05, "single sample, Type 7");

    llm_clear(h);
    llm_insert(h, 0.0, 5);
    llm_insert(h, 2.0, 5);
    rc = llm_quantile(h, q, 3, out);
    check(t, rc == 0 && out[0] == 0.0 && out[1] == 0.0 && out[2] == 2.0 + 5 / 6.0 * 0.1,
          "zero bucket gives exactly 0");
    rc = llm_quantile7(h, q, 3, out);
    /* total 10: qn = 1, floor(5.5) = 5, 10 */
    check(t, rc == 0 && out[0] == 0.0 && out[1] == 0.0 && out[2] == 2.0 + 5 / 6.0 * 0.1,
          "Type 7 on {0 x5, 2 x5}");

    double bad[2] = {0.5, 0.1}, oob[1] = {1.5};
    check(t, llm_quantile(h, bad, 2, out) == -2, "descending q -> -2");
    check(t, llm_quantile(h, oob, 1, out) == -3, "q > 1 -> -3");

    llm_clear(h);
    llm_insert(h, 1.0, UINT64_MAX);
    rc = llm_quantile(h, &q[1], 1, out);
    check(t, rc == 0 && isinf(out[0]), "count_saturate: UINT64_MAX count gives inf");

    llm_clear(h);
    llm_insert(h, NAN, 3);
    rc = llm_quantile(h, q, 3, out);
    check(t, rc == 0 && isnan(out[0]) && isnan(out[2]), "only NaN counts -> NaN outputs");
    llm_destroy(h);
}

static void test_stats_and_counts(struct tally *t)
{
    struct llm_hist *h = llm_create();
    double m = llm_bucket_midpoint((struct llm_bucket){10, 0});

    check(t, llm_stddev(h) == 0.0, "stddev of used==0 is 0.0");
    check(t, isnan(llm_mean(h)), "mean of empty is NaN");
    check(t, llm_sum(h) == 0.0, "sum of empty is 0.0");
    llm_insert(h, 1.0, 0);
    check(t, isnan(llm_stddev(h)), "stddev with zero total count is NaN");

    llm_insert(h, 1.0, 4);
    llm_insert(h, NAN, 2);
    check_double(t, llm_mean(h), (m * 4) / 4, "mean ignores NaN bucket");
    check_double(t, llm_sum(h), m * 4, "sum = midpoint * count");
    check_double(t, llm_stddev(h), sqrt((m * m * 4) / 4 - ((m * 4) / 4) * ((m * 4) / 4)),
                 "stddev formula");
    check_u64(t, llm_sample_count(h), 6, "sample_count includes NaN");

    llm_insert(h, -5.0, 3);
    llm_insert(h, 0.0, 1);
    /* buckets: NaN x2, -5 x3, 0 x1, 1.0 x4 */
    check_u64(t, llm_count_below(h, 1.05), 8, "count_below inclusive of own bucket");
    check_u64(t, llm_count_below_exclusive(h, 1.05), 4, "count_below_exclusive");
    check_u64(t, llm_count_below(h, -5.0), 3, "count_below at negative bucket");
    check_u64(t, llm_count_above(h, 1.0), 6, "count_above includes NaN counts");
    check_u64(t, llm_count_above_exclusive(h, 1.0), 2, "count_above_exclusive (NaN counts only)");
    check_u64(t, llm_count_above(h, -100.0), 10, "count_above below all = sample_count");
    llm_destroy(h);
}

static void test_merge(struct tally *t)
{
    struct llm_hist *a = llm_create(), *b = llm_create(), *tg = llm_create();
    const struct llm_hist *srcs[2];
    struct llm_bucket bk;
    uint64_t c;
    int i, rv;

    for (i = 0; i < 250; i++)
        llm_insert_intscale(a, 10 + (i % 90), i / 90, 1);
    for (i = 0; i < 250; i += 2)
        llm_insert_intscale(b, 10 + (i % 90), i / 90, 2);
    llm_insert_raw(b, (struct llm_bucket){-1, 0}, 0);
    check(t, llm_used(a) == 250, "250 buckets (growth past 100 and 200)");
    srcs[0] = a;
    srcs[1] = b;
    rv = llm_accumulate(tg, srcs, 2);
    check(t, rv == 251 && llm_sample_count(tg) == 250 + 250,
          "accumulate: 251 buckets, 500 samples");
    check(t, llm_get(tg, 0, &bk, &c) && llm_bucket_is_nan(bk) && c == 0,
          "accumulate carries zero-count buckets");
    rv = llm_subtract(tg, srcs, 1);
    check(t, rv == 0 && llm_sample_count(tg) == 250 && llm_used(tg) == 251,
          "subtract: exact, zero buckets kept");
    rv = llm_subtract(tg, srcs, 1);
    check(t, rv == -1 && llm_sample_count(tg) == 125, "subtract underflow -> -1, floored at 0");
    llm_insert(a, 1e9, UINT64_MAX);
    llm_insert(tg, 1e9, 5);
    rv = llm_accumulate(tg, srcs, 1);
    check(t, rv == 252 && llm_sample_count(tg) == UINT64_MAX, "accumulate saturates");
    check(t, llm_remove_raw(b, (struct llm_bucket){10, 1}, 5) == 2, "remove floors at 0");
    llm_destroy(a);
    llm_destroy(b);
    llm_destroy(tg);
}

int main(void)
{
    struct tally t = {0, 0};

    test_buckets(&t);
    test_nan_holes(&t);
    test_serialize(&t);
    test_quantiles(&t);
    test_stats_and_counts(&t);
    test_merge(&t);
    printf("%d passed, %d failed\n", t.pass, t.fail);
    return t.fail != 0;
}
