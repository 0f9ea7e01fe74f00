/*
 * Log-linear histogram buckets: the type, its total order, and the integer-only mappings from
 * integers to buckets. This header is shared by user space and BPF programs, so it uses only
 * the kernel's fixed-width types, no libc, no floating point, and loops with constant bounds.
 * The double <-> bucket functions (which need libm) live in hist.h / hist_bucket.c.
 *
 * A bucket {val, exp} is Circonus's two-significant-digit decimal bucket (libcircllhist):
 *
 *   val 10..99    [ val/10 * 10^exp , (val+1)/10 * 10^exp )     e.g. {23,3} = [2300, 2400)
 *   val -99..-10  ( -(|val|+1)/10 * 10^exp , -|val|/10 * 10^exp ]
 *   {0, 0}        zero: 0, and every |x| < 1e-128
 *   {-1, 0}       NaN: NaN, +-inf, |x| >= 1e128 (the only valid NaN bucket)
 *
 * exp ranges over -128..127, so there are 2*256*90 + 2 = 46,082 buckets. Their order on the
 * real axis (NaN first, then negatives, zero, positives) is captured by the *ordinal*, a dense
 * integer 0..46,081 that sorts like the buckets do; histograms store ordinals so that merging
 * and searching compare one u16 instead of decoding two signed bytes:
 *
 *   ordinal   bucket
 *   0         NaN
 *   1..23040  negatives, most negative ({-99,127}) first
 *   23041     zero
 *   23042..   positives, {10,-128} first, {99,127} = 46081 last
 *
 * sn_bucket_of_u64() is the bucket of an unsigned integer (nanoseconds in the agent), exactly
 * as libcircllhist's hist_insert((double)v) would place it: that is the same as the exact
 * decimal bucket except within ~1e-14 (relative) below a bucket boundary, where libcircllhist's
 * deliberate 1e-13 "fuzz" moves a value up one bucket. For v < 10^13 no integer is that close;
 * above it the per-boundary thresholds are tabulated below (sn_bucket_fuzz_delta) and verified
 * against the double path by tests/unit/test_bucket.c, which also prints the table afresh.
 * sn_bucket_of_int_scale() is libcircllhist's int_scale_to_hist_bucket(): exact, no fuzz.
 */
#ifndef SN_CORE_HIST_BUCKET_H
#define SN_CORE_HIST_BUCKET_H

#if defined(__bpf__)
/* BPF programs include vmlinux.h, which defines __u64 and friends, before this header. */
#define SN_INLINE        static __always_inline
/* Makes the compiler forget what it knows about x, so that a bounds check made on x is the
 * one the verifier sees on the register used for the access (libbpf-tools' barrier_var). */
#define SN_BPF_OPAQUE(x) __asm__ volatile("" : "+r"(x))
#else
#define SN_BPF_OPAQUE(x) ((void)0)
#include <linux/types.h>
#define SN_INLINE static inline
#endif

struct sn_bucket {
    __s8 val; /* 10..99, -99..-10, 0 (zero) or -1 (NaN) */
    __s8 exp; /* -128..127; 0 for zero and NaN */
};

#define SN_BUCKET_NORD      46082 /* number of distinct buckets = ordinals */
#define SN_BUCKET_ORD_NAN   0
#define SN_BUCKET_ORD_ZERO  23041
#define SN_BUCKET_ORD_POS   23042 /* ordinal of {10,-128} */
#define SN_BUCKET_PER_SIGN  23040 /* 256 exponents * 90 values */
#define SN_BUCKET_FUZZ_EMIN 13    /* first exponent whose integer thresholds the fuzz moves */

SN_INLINE struct sn_bucket sn_bucket_make(int val, int exp)
{
    struct sn_bucket b = {(__s8)val, (__s8)exp};
    return b;
}

/* libcircllhist's hist_bucket_isnan(): |val| in 1..9 or >= 100. */
SN_INLINE int sn_bucket_is_nan(struct sn_bucket b)
{
    int a = b.val < 0 ? -b.val : b.val;
    return a > 99 || (a > 0 && a < 10);
}

/* A bucket Sonde accepts: a value bucket, the zero bucket {0,0}, or the canonical NaN. */
SN_INLINE int sn_bucket_is_valid(struct sn_bucket b)
{
    int a = b.val < 0 ? -b.val : b.val;
    if (a >= 10 && a <= 99)
        return 1;
    return b.exp == 0 && (b.val == 0 || b.val == -1);
}

/* Ordinal of a valid bucket (see the table above). Invalid buckets give the NaN ordinal. */
SN_INLINE __u16 sn_bucket_ord(struct sn_bucket b)
{
    int a = b.val < 0 ? -b.val : b.val;
    int p;

    if (a < 10 || a > 99)
        return b.val == 0 ? SN_BUCKET_ORD_ZERO : SN_BUCKET_ORD_NAN;
    p = (b.exp + 128) * 90 + (a - 10);
    return (__u16)(b.val > 0 ? SN_BUCKET_ORD_POS + p : SN_BUCKET_PER_SIGN - p);
}

/* Inverse of sn_bucket_ord(); ord must be < SN_BUCKET_NORD. */
SN_INLINE struct sn_bucket sn_bucket_from_ord(__u32 ord)
{
    __u32 p;

    if (ord >= SN_BUCKET_ORD_POS) {
        p = ord - SN_BUCKET_ORD_POS;
        return sn_bucket_make((int)(p % 90) + 10, (int)(p / 90) - 128);
    }
    if (ord == SN_BUCKET_ORD_ZERO)
        return sn_bucket_make(0, 0);
    if (ord == SN_BUCKET_ORD_NAN)
        return sn_bucket_make(-1, 0);
    p = SN_BUCKET_PER_SIGN - ord;
    return sn_bucket_make(-(int)(p % 90) - 10, (int)(p / 90) - 128);
}

/* libcircllhist's hist_bucket_cmp(): +1 if a < b on the real axis, -1 if a > b, 0 if equal. */
SN_INLINE int sn_bucket_cmp(struct sn_bucket a, struct sn_bucket b)
{
    __u16 x = sn_bucket_ord(a), y = sn_bucket_ord(b);
    return x < y ? 1 : x > y ? -1 : 0;
}

static const __u64 sn_pow10_u64[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

/*
 * sn_bucket_fuzz_delta[e - 13][m - 11]: for the boundary B = m * 10^(e-1) between bucket
 * {m-1, e} and {m, e} (m = 100 is the boundary to {10, e+1}), B minus the smallest integer that
 * libcircllhist's double path places at or above that boundary. 0 where B > UINT64_MAX.
 * Generated by tests/unit/test_bucket.c (run it with --print-fuzz-table) from the double path.
 */
static const __u32 sn_bucket_fuzz_delta[7][90] = {
#include "core/hist_bucket_fuzz.inc"
};

#if !defined(__bpf__)
/* v / 10^k for k <= 18; a 32-bit division when v fits, several times faster than a 64-bit
 * one here (and faster than a 128-bit reciprocal multiply, measured). */
static inline __u64 sn_div_pow10(__u64 v, __u32 k)
{
    if (v <= 0xffffffffULL && k <= 9)
        return (__u32)v / (__u32)sn_pow10_u64[k];
    return v / sn_pow10_u64[k];
}
#endif

/* floor(log10(v)) for v >= 1, 0..19. */
SN_INLINE __u32 sn_ilog10_u64(__u64 v)
{
#if defined(__bpf__)
    __u32 e = 0, i;

    for (i = 1; i < 20; i++) /* BPF has no clz: constant-bound compares */
        e += v >= sn_pow10_u64[i];
    return e;
#else
    __u32 t = (__u32)(64 - __builtin_clzll(v)) * 1233 >> 12; /* ~ bits * log10(2) */
    return t - (v < sn_pow10_u64[t]);
#endif
}

/* Ordinal of the positive bucket {m, e} (m 10..99, e -128..127), or of its negative mirror. */
SN_INLINE __u16 sn_ord_of_parts(int neg, __u32 m, int e)
{
    __u32 p = (__u32)(e + 128) * 90 + m - 10;
    return (__u16)(neg ? SN_BUCKET_PER_SIGN - p : SN_BUCKET_ORD_POS + p);
}

/*
 * Ordinal of the bucket of the unsigned integer v, identical to libcircllhist's double path
 * applied to (double)v. Integer only, constant loop bounds, no libc: BPF programs call this
 * (and key their maps by the ordinal).
 */
SN_INLINE __u16 sn_ord_of_u64(__u64 v)
{
    __u32 e;
    __u64 m, unit, delta;

    if (v == 0)
        return SN_BUCKET_ORD_ZERO;
    e = sn_ilog10_u64(v);
    /* e = floor(log10 v) in 0..19; m = the two leading digits, 10..99 */
    if (e == 0)
        return sn_ord_of_parts(0, (__u32)v * 10, 0);
    unit = sn_pow10_u64[(e - 1) & 31];
#if !defined(__bpf__)
    m = sn_div_pow10(v, e - 1);
#else
    m = v / unit;
#endif
    if (e >= SN_BUCKET_FUZZ_EMIN) {
        /* just below the next boundary, the fuzz moves v up a bucket; the clamps only
         * spell out for the BPF verifier the bounds that e and m already have */
        __u64 row = e - SN_BUCKET_FUZZ_EMIN, col = m + 1 - 11; /* 64-bit: no zero-extended copy */
        SN_BPF_OPAQUE(row);
        SN_BPF_OPAQUE(col);
        if (row > 6)
            row = 6;
        if (col > 89)
            col = 89;
        SN_BPF_OPAQUE(row);
        SN_BPF_OPAQUE(col);
        delta = sn_bucket_fuzz_delta[row][col];
        if (delta && v >= (m + 1) * unit - delta)
            m++;
        if (m == 100)
            return sn_ord_of_parts(0, 10, (int)e + 1);
    }
    return sn_ord_of_parts(0, (__u32)m, (int)e);
}

/* The bucket of v, as sn_ord_of_u64() places it. */
SN_INLINE struct sn_bucket sn_bucket_of_u64(__u64 v)
{
    return sn_bucket_from_ord(sn_ord_of_u64(v));
}

/*
 * Ordinal of libcircllhist's int_scale_to_hist_bucket(value, scale): the bucket of
 * value * 10^scale, exact. Any scale; below 1e-128 is the zero bucket, at or above 1e128 NaN.
 * (Upstream divides by 10 until two digits remain; one division by 10^(digits-2) is the same.)
 */
SN_INLINE __u16 sn_ord_of_int_scale(__s64 value, int scale)
{
    __u64 v;
    __u32 d;
    int neg = value < 0;

    if (value == 0)
        return SN_BUCKET_ORD_ZERO;
    if ((unsigned)scale + 147u > 147u + 127u) /* also keeps scale + d below from overflowing */
        return scale > 0 ? SN_BUCKET_ORD_NAN : SN_BUCKET_ORD_ZERO; /* |value| < 10^19 */
    /* upstream takes INT64_MIN as INT64_MAX; 2^63 lands in the same bucket {-92, 18} */
    v = neg ? 0 - (__u64)value : (__u64)value;
    d = sn_ilog10_u64(v);
    if (d == 0) {
        v *= 10;
    } else {
#if !defined(__bpf__)
        v = sn_div_pow10(v, d - 1);
#else
        v /= sn_pow10_u64[(d - 1) & 31];
#endif
        scale += (int)d;
    }
    if (scale < -128)
        return SN_BUCKET_ORD_ZERO;
    if (scale > 127)
        return SN_BUCKET_ORD_NAN;
    return sn_ord_of_parts(neg, (__u32)v, scale);
}

/* The bucket of value * 10^scale, as sn_ord_of_int_scale() places it. */
SN_INLINE struct sn_bucket sn_bucket_of_int_scale(__s64 value, int scale)
{
    return sn_bucket_from_ord(sn_ord_of_int_scale(value, scale));
}

#endif
