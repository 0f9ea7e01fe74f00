/*
 * Statistics over a histogram, computed in libcircllhist's operation order so the results are
 * bit-identical (docs/histogram.md lists the deliberate differences).
 *
 * Every bucket stands for its samples at its harmonic midpoint (mean, sum, stddev, moment).
 * Quantiles use upstream's "fair resampling": the n samples of a bucket sit at
 * left + k/(n+1) * width, k = 1..n; Type 1 picks the ceil(q*N)-th sample, Type 7 interpolates.
 * Upstream walks the buckets with double running counts; while the total is below 2^53 those
 * doubles are exact integers, so Sonde walks u64 counts against an integer threshold (one add
 * and one compare per bucket) and does floating point only in the bucket it lands in. Above
 * 2^53 it walks doubles exactly as upstream does.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>

#include "core/hist_int.h"

static const union {
    uint64_t u;
    double d;
} private_nan = {0x7fffffffffffffffULL};

/* Harmonic midpoint of every bucket by ordinal, filled once on first use: the midpoint costs
 * three divisions, which dominated mean and stddev. 46,082 doubles (360 KiB), of which a
 * histogram touches only the few pages its buckets live in. */
static double midpoints[SN_BUCKET_NORD];
static pthread_once_t midpoints_once = PTHREAD_ONCE_INIT;

static void midpoints_fill(void)
{
    for (uint32_t o = 0; o < SN_BUCKET_NORD; o++)
        midpoints[o] = sn_bucket_midpoint(sn_bucket_from_ord(o));
}

static inline const double *midpoint_table(void)
{
    pthread_once(&midpoints_once, midpoints_fill);
    return midpoints;
}

/* First slot that is not the NaN bucket (NaN sorts first). */
static inline uint32_t first_value(const struct sn_hist *h)
{
    return h->used && h->ord[0] == SN_BUCKET_ORD_NAN ? 1 : 0;
}

double sn_hist_mean(const struct sn_hist *h)
{
    const double *mid = midpoint_table();
    double divisor = 0.0, sum = 0.0;

    for (uint32_t i = first_value(h); i < h->used; i++) {
        double m = mid[h->ord[i]];
        double c = (double)h->cnt[i];
        divisor += c;
        sum += m * c;
    }
    if (divisor == 0.0)
        return private_nan.d;
    return sum / divisor;
}

double sn_hist_sum(const struct sn_hist *h)
{
    const double *mid = midpoint_table();
    double sum = 0.0;

    for (uint32_t i = first_value(h); i < h->used; i++)
        sum += mid[h->ord[i]] * (double)h->cnt[i];
    return sum;
}

double sn_hist_stddev(const struct sn_hist *h)
{
    const double *mid = midpoint_table();
    double n = 0.0, s1 = 0.0, s2 = 0.0, mean;

    if (h->used == 0)
        return 0.0;
    for (uint32_t i = first_value(h); i < h->used; i++) {
        double m = mid[h->ord[i]];
        double c = (double)h->cnt[i];
        n += c;
        s1 += m * c;
        s2 += m * m * c; /* upstream's pow(m, 2.0), which gcc folds to m*m */
    }
    if (n == 0.0)
        return private_nan.d;
    mean = s1 / n;
    return sqrt(s2 / n - mean * mean);
}

double sn_hist_moment(const struct sn_hist *h, double k)
{
    const double *mid = midpoint_table();
    double n = 0.0, sk = 0.0;

    for (uint32_t i = first_value(h); i < h->used; i++) {
        double m = mid[h->ord[i]];
        double c = (double)h->cnt[i];
        n += c;
        sk += pow(m, k) * c;
    }
    if (n == 0.0)
        return private_nan.d;
    return sk / n;
}

/* Sum of c[0..n); *big is set when it overflows or reaches 2^53 (then doubles are not exact).
 * Four independent accumulators and an OR of every count: no carry check per element. */
static uint64_t sum_counts(const uint64_t *c, uint32_t n, bool *big)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, any = 0, total = 0;
    uint32_t i = 0;

    for (; i + 4 <= n; i += 4) {
        s0 += c[i];
        s1 += c[i + 1];
        s2 += c[i + 2];
        s3 += c[i + 3];
        any |= c[i] | c[i + 1] | c[i + 2] | c[i + 3];
    }
    for (; i < n; i++) {
        s0 += c[i];
        any |= c[i];
    }
    /* n <= 46,082 < 2^16 counts, each below 2^37: the sums cannot have wrapped */
    if (any < (1ULL << 37)) {
        total = (s0 + s1) + (s2 + s3);
        *big = total >= (1ULL << 53);
        return total;
    }
    *big = false;
    for (i = 0; i < n; i++)
        *big |= __builtin_add_overflow(total, c[i], &total);
    *big |= total >= (1ULL << 53);
    return total;
}

/* The quantile inside the bucket at slot i, given the target rank qn and the samples below. */
static double in_bucket(const struct sn_hist *h, uint32_t i, double qn, double lower,
                        enum sn_quantile_type type)
{
    struct sn_bucket b = sn_bucket_from_ord(h->ord[i]);
    double width = sn_bucket_width(b), left = sn_bucket_left(b), k;
    uint64_t n = h->cnt[i];
    /* upstream computes (double)(n + 1), which wraps to 0 (result inf) at UINT64_MAX */
    double n1 = n == UINT64_MAX ? 18446744073709551616.0 : (double)(n + 1);

    if (width == 0)
        return 0;
    if (type == SN_QUANTILE_TYPE7) {
        k = qn - lower;
    } else {
        k = ceil(qn - lower);
        if (k == 0)
            k = 1.0;
    }
    return left + k / n1 * width;
}

int sn_hist_quantiles(const struct sn_hist *h, const double *q, size_t nq, double *out,
                      enum sn_quantile_type type)
{
    uint32_t start = first_value(h), i;
    uint64_t total = 0;
    bool big = false;
    double total_d = 0.0;

    for (size_t j = 0; j < nq; j++) {
        if (!(q[j] >= 0.0 && q[j] <= 1.0))
            return -EDOM;
        if (j > 0 && q[j - 1] > q[j])
            return -EINVAL;
    }
    total = h->used ? sum_counts(h->cnt + start, h->used - start, &big) : 0;
    if (!big) {
        total_d = (double)total; /* upstream's double sum is exact below 2^53 */
    } else {
        for (i = start; i < h->used; i++)
            total_d += (double)h->cnt[i];
    }
    if (total_d == 0) {
        for (size_t j = 0; j < nq; j++)
            out[j] = private_nan.d;
        return 0;
    }
    for (i = start; i < h->used && h->cnt[i] == 0; i++)
        ;
    if (!big) {
        /* exact integer walk: upper < qn  <=>  upper < ceil(qn) for integer upper */
        const uint64_t *c = h->cnt;
        uint64_t lower = 0, upper = c[i];
        for (size_t j = 0; j < nq; j++) {
            double qn =
                type == SN_QUANTILE_TYPE7 ? floor((total_d - 1) * q[j] + 1) : total_d * q[j];
            uint64_t t = (uint64_t)ceil(qn);
            /* four buckets at a time while the target lies beyond them (no overflow: the
             * total is below 2^53) */
            while (i + 4 < h->used && upper + ((c[i + 1] + c[i + 2]) + (c[i + 3] + c[i + 4])) < t) {
                upper += (c[i + 1] + c[i + 2]) + (c[i + 3] + c[i + 4]);
                i += 4;
            }
            while (i < h->used - 1 && upper < t) {
                i++;
                lower = upper;
                upper = lower + h->cnt[i];
            }
            out[j] = in_bucket(h, i, qn, (double)lower, type);
        }
        return 0;
    }
    {
        /* upstream's double walk */
        double lower = 0.0, upper = (double)h->cnt[i];
        for (size_t j = 0; j < nq; j++) {
            double qn =
                type == SN_QUANTILE_TYPE7 ? floor((total_d - 1) * q[j] + 1) : total_d * q[j];
            while (i < h->used - 1 && upper < qn) {
                i++;
                lower = upper;
                upper = lower + (double)h->cnt[i];
            }
            out[j] = in_bucket(h, i, qn, lower, type);
        }
    }
    return 0;
}

/* Sum of the non-NaN counts whose ordinal is below (or, inclusive, at most) the threshold's. */
static uint64_t sum_below(const struct sn_hist *h, uint16_t t, bool inclusive)
{
    uint64_t s = 0;

    for (uint32_t i = first_value(h); i < h->used; i++) {
        if (h->ord[i] > t || (h->ord[i] == t && !inclusive))
            break;
        s = sat_add(s, h->cnt[i]);
    }
    return s;
}

uint64_t sn_hist_count_below(const struct sn_hist *h, double threshold, bool inclusive)
{
    return sum_below(h, sn_ord_from_double(threshold), inclusive);
}

uint64_t sn_hist_count_above(const struct sn_hist *h, double threshold, bool inclusive)
{
    uint16_t t = sn_ord_from_double(threshold);
    uint64_t s = 0;

    for (uint32_t i = h->used; i-- > first_value(h);) {
        if (h->ord[i] < t || (h->ord[i] == t && !inclusive))
            break;
        s = sat_add(s, h->cnt[i]);
    }
    return s;
}
