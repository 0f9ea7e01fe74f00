/*
 * Histogram benchmarks (make bench): each operation timed for Sonde and for its baseline in
 * the same run, on the same data, printed as ns/op (median of 11 runs) with the ratio
 * baseline/Sonde, next to libcircllhist's figure measured on this machine kind
 * (../shared/ref/circllhist.md §3.3) and the target from the issue.
 *
 * The baseline is tests/model/llmodel.c: upstream's algorithms and data structure (sorted
 * 10-byte pairs, binary search, log10 bucketing, two-pass k-way merge, byte-wise base64)
 * written plainly from the spec. It is not libcircllhist's tuned "fast" histogram, so for
 * inserts the upstream figure column is the fairer comparison.
 *
 * Workloads follow the reference: 10^6 doubles log-uniform over 1e-4..1e6 (900 buckets),
 * integers log-uniform over 1e3..1e8 with scale -9, and a 1,000-bucket histogram (val 10..99
 * over exp -5..6, counts random in 1..10^6) for merge, quantile and codec figures.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/hist.h"
#include "llmodel.h"

#define REPS 11
#define NVAL (1 << 20)

static double *dvals;
static int64_t *ivals;
static struct sn_bucket *bvals;
static volatile uint64_t sink;

/* Runs fn REPS times; returns the median ns per op (fn returns its op count). */
static double measure(long (*fn)(void))
{
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_mono_ns();
        long ops = fn();
        t[r] = (bench_mono_ns() - t0) / (double)ops;
    }
    qsort(t, REPS, sizeof(t[0]), bench_cmp_double);
    return t[REPS / 2];
}

/* --- workloads ------------------------------------------------------------------------- */

static long sn_bucket_only(void)
{
    uint64_t s = 0;
    for (int i = 0; i < NVAL; i++)
        s += sn_ord_from_double(dvals[i]);
    sink = s;
    return NVAL;
}
static long ref_bucket_only(void)
{
    uint64_t s = 0;
    for (int i = 0; i < NVAL; i++) {
        struct llm_bucket b = llm_bucket_from_double(dvals[i]);
        s += (uint64_t)(b.val + b.exp);
    }
    sink = s;
    return NVAL;
}

static long sn_ins_double(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < NVAL; i++)
        sn_hist_insert(h, dvals[i], 1);
    sink = sn_hist_nbuckets(h);
    sn_hist_destroy(h);
    return NVAL;
}
static long ref_ins_double(void)
{
    struct llm_hist *h = llm_create();
    for (int i = 0; i < NVAL; i++)
        llm_insert(h, dvals[i], 1);
    sink = (uint64_t)llm_used(h);
    llm_destroy(h);
    return NVAL;
}

static long sn_ins_int(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < NVAL; i++)
        sn_hist_insert_int_scale(h, ivals[i], -9, 1);
    sink = sn_hist_nbuckets(h);
    sn_hist_destroy(h);
    return NVAL;
}
static long ref_ins_int(void)
{
    struct llm_hist *h = llm_create();
    for (int i = 0; i < NVAL; i++)
        llm_insert_intscale(h, ivals[i], -9, 1);
    sink = (uint64_t)llm_used(h);
    llm_destroy(h);
    return NVAL;
}

static long sn_ins_u64(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < NVAL; i++)
        sn_hist_insert_u64(h, (uint64_t)ivals[i], 1);
    sink = sn_hist_nbuckets(h);
    sn_hist_destroy(h);
    return NVAL;
}

static long sn_ins_raw(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < NVAL; i++)
        sn_hist_insert_raw(h, bvals[i], 1);
    sink = sn_hist_nbuckets(h);
    sn_hist_destroy(h);
    return NVAL;
}
static long ref_ins_raw(void)
{
    struct llm_hist *h = llm_create();
    for (int i = 0; i < NVAL; i++) {
        struct llm_bucket b = {bvals[i].val, bvals[i].exp};
        llm_insert_raw(h, b, 1);
    }
    sink = (uint64_t)llm_used(h);
    llm_destroy(h);
    return NVAL;
}

/* 1,000-bucket histograms */
static struct sn_hist *sa, *sb, *shalf;
static struct llm_hist *la, *lb, *lhalf;
static unsigned char *enc;
static char *enc64;
static size_t enclen, enc64len;

static void build_1000(struct sn_hist **s, struct llm_hist **l, int exp0, uint64_t seed)
{
    int n = 0;
    bench_rng_seed(seed);
    *s = sn_hist_create();
    *l = llm_create();
    for (int e = exp0; n < 1000; e++)
        for (int v = 10; v <= 99 && n < 1000; v++, n++) {
            uint64_t c = 1 + bench_xrand() % 1000000;
            struct llm_bucket lbk = {(int8_t)v, (int8_t)e};
            sn_hist_insert_raw(*s, sn_bucket_make(v, e), c);
            llm_insert_raw(*l, lbk, c);
        }
}

#define MERGE_BATCH 64
static long sn_merge_same(void)
{
    struct sn_hist *t = sn_hist_clone(sa);
    for (int i = 0; i < 20000; i++)
        sn_hist_merge(t, sb);
    sn_hist_destroy(t);
    return 20000;
}
static long ref_merge_same(void)
{
    struct llm_hist *t = llm_create();
    const struct llm_hist *srcs[1] = {la};
    llm_accumulate(t, srcs, 1);
    srcs[0] = lb;
    for (int i = 0; i < 2000; i++)
        llm_accumulate(t, srcs, 1);
    llm_destroy(t);
    return 2000;
}

/* 50% overlap: fresh targets made outside the timed loop */
static double sn_merge_overlap(void)
{
    double best[REPS];
    for (int r = 0; r < REPS; r++) {
        struct sn_hist *t[MERGE_BATCH];
        for (int i = 0; i < MERGE_BATCH; i++)
            t[i] = sn_hist_clone(sa);
        double t0 = bench_mono_ns();
        for (int i = 0; i < MERGE_BATCH; i++)
            sn_hist_merge(t[i], shalf);
        best[r] = (bench_mono_ns() - t0) / MERGE_BATCH;
        for (int i = 0; i < MERGE_BATCH; i++)
            sn_hist_destroy(t[i]);
    }
    qsort(best, REPS, sizeof(best[0]), bench_cmp_double);
    return best[REPS / 2];
}
static double ref_merge_overlap(void)
{
    double best[REPS];
    for (int r = 0; r < REPS; r++) {
        struct llm_hist *t[MERGE_BATCH];
        const struct llm_hist *srcs[1] = {la};
        for (int i = 0; i < MERGE_BATCH; i++) {
            t[i] = llm_create();
            llm_accumulate(t[i], srcs, 1);
        }
        srcs[0] = lhalf;
        double t0 = bench_mono_ns();
        for (int i = 0; i < MERGE_BATCH; i++)
            llm_accumulate(t[i], srcs, 1);
        best[r] = (bench_mono_ns() - t0) / MERGE_BATCH;
        for (int i = 0; i < MERGE_BATCH; i++)
            llm_destroy(t[i]);
    }
    qsort(best, REPS, sizeof(best[0]), bench_cmp_double);
    return best[REPS / 2];
}

static const double q99[1] = {0.99};
static const double q7[7] = {0, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
static long sn_quant1(void)
{
    double out[1];
    for (int i = 0; i < 20000; i++)
        sn_hist_quantiles(sa, q99, 1, out, SN_QUANTILE_TYPE1);
    sink = (uint64_t)out[0];
    return 20000;
}
static long ref_quant1(void)
{
    double out[1];
    for (int i = 0; i < 5000; i++)
        llm_quantile(la, q99, 1, out);
    sink = (uint64_t)out[0];
    return 5000;
}
static long sn_quant7(void)
{
    double out[7];
    for (int i = 0; i < 20000; i++)
        sn_hist_quantiles(sa, q7, 7, out, SN_QUANTILE_TYPE7);
    sink = (uint64_t)out[3];
    return 20000;
}
static long ref_quant7(void)
{
    double out[7];
    for (int i = 0; i < 5000; i++)
        llm_quantile7(la, q7, 7, out);
    sink = (uint64_t)out[3];
    return 5000;
}
static long sn_mean(void)
{
    double s = 0;
    for (int i = 0; i < 5000; i++)
        s += sn_hist_mean(sa);
    sink = (uint64_t)s;
    return 5000;
}
static long ref_mean(void)
{
    double s = 0;
    for (int i = 0; i < 5000; i++)
        s += llm_mean(la);
    sink = (uint64_t)s;
    return 5000;
}
static long sn_stddev(void)
{
    double s = 0;
    for (int i = 0; i < 5000; i++)
        s += sn_hist_stddev(sa);
    sink = (uint64_t)s;
    return 5000;
}
static long ref_stddev(void)
{
    double s = 0;
    for (int i = 0; i < 5000; i++)
        s += llm_stddev(la);
    sink = (uint64_t)s;
    return 5000;
}

static long sn_encode(void)
{
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)sn_hist_encode(sa, enc, enclen, 0);
    return 20000;
}
static long ref_encode(void)
{
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)llm_serialize(la, enc, (ssize_t)enclen);
    return 20000;
}
static long sn_encode_b64(void)
{
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)sn_hist_encode_b64(sa, enc64, enc64len + 1, 0);
    return 20000;
}
static long ref_encode_b64(void)
{
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)llm_serialize_b64(la, enc64, (ssize_t)enc64len + 1);
    return 20000;
}
static long sn_decode(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)sn_hist_decode(h, enc, enclen, 0);
    sn_hist_destroy(h);
    return 20000;
}
static long ref_decode(void)
{
    struct llm_hist *h = llm_create();
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)llm_deserialize(h, enc, (ssize_t)enclen);
    llm_destroy(h);
    return 20000;
}
/* The floor of any decoder that reads records one after another: only the offset chain
 * (offset -> width tag -> next offset), no counts, no buckets. */
static long walk_records(void)
{
    size_t off = 0;
    for (int i = 0; i < 20000; i++) {
        off = 2;
        while (off + 3 <= enclen)
            off += 4 + enc[off + 2];
    }
    sink = off;
    return 20000;
}

static long sn_decode_b64(void)
{
    struct sn_hist *h = sn_hist_create();
    for (int i = 0; i < 20000; i++)
        sink = (uint64_t)sn_hist_decode_b64(h, enc64, enc64len, 0);
    sn_hist_destroy(h);
    return 20000;
}
static long ref_decode_b64(void)
{
    struct llm_hist *h = llm_create();
    for (int i = 0; i < 5000; i++)
        sink = (uint64_t)llm_deserialize_b64(h, enc64, (ssize_t)enc64len);
    llm_destroy(h);
    return 5000;
}

/* --- report ------------------------------------------------------------------------------ */

static void row(const char *name, double sn, double ref, const char *upstream, double target)
{
    char tgt[32] = "", verdict[16] = "";
    if (target > 0) {
        snprintf(tgt, sizeof(tgt), "<= %g", target);
        snprintf(verdict, sizeof(verdict), "%s", sn <= target ? "met" : "MISSED");
    }
    if (ref > 0)
        printf("%-44s %10.1f %10.1f %7.1fx %14s %10s %7s\n", name, sn, ref, ref / sn, upstream, tgt,
               verdict);
    else
        printf("%-44s %10.1f %10s %8s %14s %10s %7s\n", name, sn, "-", "-", upstream, tgt, verdict);
}

int main(void)
{
    cpu_set_t set;

    bench_rng_seed(88172645463325252ULL);

    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "bench: could not pin to CPU 1; figures may be noisier\n");

    dvals = malloc(NVAL * sizeof(*dvals));
    ivals = malloc(NVAL * sizeof(*ivals));
    bvals = malloc(NVAL * sizeof(*bvals));
    if (!dvals || !ivals || !bvals)
        return 1;
    for (int i = 0; i < NVAL; i++) {
        char s[32];
        double r = bench_xrand01();
        snprintf(s, sizeof(s), "1e%.17g", r * 10 - 4); /* log-uniform 1e-4..1e6 */
        dvals[i] = __builtin_pow(10.0, r * 10 - 4);
        ivals[i] = (int64_t)__builtin_pow(10.0, 3 + bench_xrand01() * 5);
        bvals[i] = sn_bucket_from_double(dvals[i]);
    }
    build_1000(&sa, &la, -5, 1);
    build_1000(&sb, &lb, -5, 2);
    build_1000(&shalf, &lhalf, 0, 3); /* exp 0.. : overlaps half of sa's buckets */
    enclen = sn_hist_encoded_len(sa, 0);
    enc64len = sn_hist_b64_len(sa, 0);
    enc = malloc(enclen);
    enc64 = malloc(enc64len + 1);
    if (!enc || !enc64)
        return 1;

    printf("sonde histogram benchmarks: ns/op, median of %d runs; ratio = baseline / sonde\n"
           "baseline = tests/model (upstream's algorithms, plain); upstream = libcircllhist "
           "measured on this machine kind\n\n",
           REPS);
    printf("%-44s %10s %10s %8s %14s %10s %7s\n", "operation", "sonde", "baseline", "ratio",
           "upstream", "target", "");
    row("double -> bucket", measure(sn_bucket_only), measure(ref_bucket_only), "40.2", 0);
    row("insert double (900 buckets)", measure(sn_ins_double), measure(ref_ins_double),
        "53 fast/127", 15);
    row("insert int x 10^-9 (500 buckets)", measure(sn_ins_int), measure(ref_ins_int),
        "19.4 fast/71", 8);
    row("insert u64 ns (500 buckets)", measure(sn_ins_u64), 0, "-", 0);
    row("insert raw bucket (900 buckets)", measure(sn_ins_raw), measure(ref_ins_raw), "7.8 fast/75",
        0);
    row("merge 1,000 + 1,000 (same buckets)", measure(sn_merge_same), measure(ref_merge_same),
        "28400", 3000);
    row("merge 1,000 + 1,000 (50% overlap)", sn_merge_overlap(), ref_merge_overlap(), "35800", 0);
    row("quantile p99, 1,000 buckets", measure(sn_quant1), measure(ref_quant1), "10300", 1000);
    row("quantile type 7 x7, 1,000 buckets", measure(sn_quant7), measure(ref_quant7), "12500", 0);
    row("mean, 1,000 buckets", measure(sn_mean), measure(ref_mean), "14700", 0);
    row("stddev, 1,000 buckets", measure(sn_stddev), measure(ref_stddev), "14000", 0);
    row("encode binary, 1,000 buckets", measure(sn_encode), measure(ref_encode), "4800", 0);
    row("encode base64, 1,000 buckets", measure(sn_encode_b64), measure(ref_encode_b64), "12400",
        0);
    row("decode binary, 1,000 buckets", measure(sn_decode), measure(ref_decode), "6100", 2000);
    row("  (floor: walking the 1,000 records only)", measure(walk_records), 0, "-", 0);
    row("decode base64, 1,000 buckets", measure(sn_decode_b64), measure(ref_decode_b64), "33000",
        5000);
    return 0;
}
