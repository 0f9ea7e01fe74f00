/*
 * Buckets from and to doubles, bit-compatible with libcircllhist.
 *
 * The upstream mapping (sn_bucket_from_double_ref) takes floor(log10(|d|)) as the exponent,
 * then val = floor(|d| / 10^exp * 10 + 1e-13), in exactly that operation order. log10 costs
 * ~30 ns, so sn_bucket_from_double() finds the exponent from the double's binary exponent
 * (e2 * log10(2), then one comparison against the power-of-ten table) and evaluates the same
 * val expression. Within 1e-12 (relative) below a power of ten, where log10's rounding decides
 * the result (the 1e-13 fuzz and the NaN holes live there), it calls the upstream algorithm
 * itself, so the two agree on every double; tests/unit/test_bucket.c checks that on every
 * bucket boundary +-300 ulps and on random doubles.
 *
 * The power-of-ten table holds the compiler's correctly rounded literals 1e-130 .. 1e128:
 * the same values as upstream's power_of_ten[] for -128..127.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/hist.h"

#define P10_OFF 130 /* p10[e + P10_OFF] = 1e<e>, e = -130 .. 128 */

static const double p10[] = {
    1e-130, 1e-129, 1e-128, 1e-127, 1e-126, 1e-125, 1e-124, 1e-123, 1e-122, 1e-121, 1e-120, 1e-119,
    1e-118, 1e-117, 1e-116, 1e-115, 1e-114, 1e-113, 1e-112, 1e-111, 1e-110, 1e-109, 1e-108, 1e-107,
    1e-106, 1e-105, 1e-104, 1e-103, 1e-102, 1e-101, 1e-100, 1e-99,  1e-98,  1e-97,  1e-96,  1e-95,
    1e-94,  1e-93,  1e-92,  1e-91,  1e-90,  1e-89,  1e-88,  1e-87,  1e-86,  1e-85,  1e-84,  1e-83,
    1e-82,  1e-81,  1e-80,  1e-79,  1e-78,  1e-77,  1e-76,  1e-75,  1e-74,  1e-73,  1e-72,  1e-71,
    1e-70,  1e-69,  1e-68,  1e-67,  1e-66,  1e-65,  1e-64,  1e-63,  1e-62,  1e-61,  1e-60,  1e-59,
    1e-58,  1e-57,  1e-56,  1e-55,  1e-54,  1e-53,  1e-52,  1e-51,  1e-50,  1e-49,  1e-48,  1e-47,
    1e-46,  1e-45,  1e-44,  1e-43,  1e-42,  1e-41,  1e-40,  1e-39,  1e-38,  1e-37,  1e-36,  1e-35,
    1e-34,  1e-33,  1e-32,  1e-31,  1e-30,  1e-29,  1e-28,  1e-27,  1e-26,  1e-25,  1e-24,  1e-23,
    1e-22,  1e-21,  1e-20,  1e-19,  1e-18,  1e-17,  1e-16,  1e-15,  1e-14,  1e-13,  1e-12,  1e-11,
    1e-10,  1e-9,   1e-8,   1e-7,   1e-6,   1e-5,   1e-4,   1e-3,   1e-2,   1e-1,   1e0,    1e1,
    1e2,    1e3,    1e4,    1e5,    1e6,    1e7,    1e8,    1e9,    1e10,   1e11,   1e12,   1e13,
    1e14,   1e15,   1e16,   1e17,   1e18,   1e19,   1e20,   1e21,   1e22,   1e23,   1e24,   1e25,
    1e26,   1e27,   1e28,   1e29,   1e30,   1e31,   1e32,   1e33,   1e34,   1e35,   1e36,   1e37,
    1e38,   1e39,   1e40,   1e41,   1e42,   1e43,   1e44,   1e45,   1e46,   1e47,   1e48,   1e49,
    1e50,   1e51,   1e52,   1e53,   1e54,   1e55,   1e56,   1e57,   1e58,   1e59,   1e60,   1e61,
    1e62,   1e63,   1e64,   1e65,   1e66,   1e67,   1e68,   1e69,   1e70,   1e71,   1e72,   1e73,
    1e74,   1e75,   1e76,   1e77,   1e78,   1e79,   1e80,   1e81,   1e82,   1e83,   1e84,   1e85,
    1e86,   1e87,   1e88,   1e89,   1e90,   1e91,   1e92,   1e93,   1e94,   1e95,   1e96,   1e97,
    1e98,   1e99,   1e100,  1e101,  1e102,  1e103,  1e104,  1e105,  1e106,  1e107,  1e108,  1e109,
    1e110,  1e111,  1e112,  1e113,  1e114,  1e115,  1e116,  1e117,  1e118,  1e119,  1e120,  1e121,
    1e122,  1e123,  1e124,  1e125,  1e126,  1e127,  1e128,
};

/* p10 * (1 - 1e-12): at or above p10_near[e + P10_OFF], a value is "near" 10^e and takes the
 * upstream path. */
static const double p10_near[] = {
    1e-130 * (1.0 - 1e-12), 1e-129 * (1.0 - 1e-12), 1e-128 * (1.0 - 1e-12), 1e-127 * (1.0 - 1e-12),
    1e-126 * (1.0 - 1e-12), 1e-125 * (1.0 - 1e-12), 1e-124 * (1.0 - 1e-12), 1e-123 * (1.0 - 1e-12),
    1e-122 * (1.0 - 1e-12), 1e-121 * (1.0 - 1e-12), 1e-120 * (1.0 - 1e-12), 1e-119 * (1.0 - 1e-12),
    1e-118 * (1.0 - 1e-12), 1e-117 * (1.0 - 1e-12), 1e-116 * (1.0 - 1e-12), 1e-115 * (1.0 - 1e-12),
    1e-114 * (1.0 - 1e-12), 1e-113 * (1.0 - 1e-12), 1e-112 * (1.0 - 1e-12), 1e-111 * (1.0 - 1e-12),
    1e-110 * (1.0 - 1e-12), 1e-109 * (1.0 - 1e-12), 1e-108 * (1.0 - 1e-12), 1e-107 * (1.0 - 1e-12),
    1e-106 * (1.0 - 1e-12), 1e-105 * (1.0 - 1e-12), 1e-104 * (1.0 - 1e-12), 1e-103 * (1.0 - 1e-12),
    1e-102 * (1.0 - 1e-12), 1e-101 * (1.0 - 1e-12), 1e-100 * (1.0 - 1e-12), 1e-99 * (1.0 - 1e-12),
    1e-98 * (1.0 - 1e-12),  1e-97 * (1.0 - 1e-12),  1e-96 * (1.0 - 1e-12),  1e-95 * (1.0 - 1e-12),
    1e-94 * (1.0 - 1e-12),  1e-93 * (1.0 - 1e-12),  1e-92 * (1.0 - 1e-12),  1e-91 * (1.0 - 1e-12),
    1e-90 * (1.0 - 1e-12),  1e-89 * (1.0 - 1e-12),  1e-88 * (1.0 - 1e-12),  1e-87 * (1.0 - 1e-12),
    1e-86 * (1.0 - 1e-12),  1e-85 * (1.0 - 1e-12),  1e-84 * (1.0 - 1e-12),  1e-83 * (1.0 - 1e-12),
    1e-82 * (1.0 - 1e-12),  1e-81 * (1.0 - 1e-12),  1e-80 * (1.0 - 1e-12),  1e-79 * (1.0 - 1e-12),
    1e-78 * (1.0 - 1e-12),  1e-77 * (1.0 - 1e-12),  1e-76 * (1.0 - 1e-12),  1e-75 * (1.0 - 1e-12),
    1e-74 * (1.0 - 1e-12),  1e-73 * (1.0 - 1e-12),  1e-72 * (1.0 - 1e-12),  1e-71 * (1.0 - 1e-12),
    1e-70 * (1.0 - 1e-12),  1e-69 * (1.0 - 1e-12),  1e-68 * (1.0 - 1e-12),  1e-67 * (1.0 - 1e-12),
    1e-66 * (1.0 - 1e-12),  1e-65 * (1.0 - 1e-12),  1e-64 * (1.0 - 1e-12),  1e-63 * (1.0 - 1e-12),
    1e-62 * (1.0 - 1e-12),  1e-61 * (1.0 - 1e-12),  1e-60 * (1.0 - 1e-12),  1e-59 * (1.0 - 1e-12),
    1e-58 * (1.0 - 1e-12),  1e-57 * (1.0 - 1e-12),  1e-56 * (1.0 - 1e-12),  1e-55 * (1.0 - 1e-12),
    1e-54 * (1.0 - 1e-12),  1e-53 * (1.0 - 1e-12),  1e-52 * (1.0 - 1e-12),  1e-51 * (1.0 - 1e-12),
    1e-50 * (1.0 - 1e-12),  1e-49 * (1.0 - 1e-12),  1e-48 * (1.0 - 1e-12),  1e-47 * (1.0 - 1e-12),
    1e-46 * (1.0 - 1e-12),  1e-45 * (1.0 - 1e-12),  1e-44 * (1.0 - 1e-12),  1e-43 * (1.0 - 1e-12),
    1e-42 * (1.0 - 1e-12),  1e-41 * (1.0 - 1e-12),  1e-40 * (1.0 - 1e-12),  1e-39 * (1.0 - 1e-12),
    1e-38 * (1.0 - 1e-12),  1e-37 * (1.0 - 1e-12),  1e-36 * (1.0 - 1e-12),  1e-35 * (1.0 - 1e-12),
    1e-34 * (1.0 - 1e-12),  1e-33 * (1.0 - 1e-12),  1e-32 * (1.0 - 1e-12),  1e-31 * (1.0 - 1e-12),
    1e-30 * (1.0 - 1e-12),  1e-29 * (1.0 - 1e-12),  1e-28 * (1.0 - 1e-12),  1e-27 * (1.0 - 1e-12),
    1e-26 * (1.0 - 1e-12),  1e-25 * (1.0 - 1e-12),  1e-24 * (1.0 - 1e-12),  1e-23 * (1.0 - 1e-12),
    1e-22 * (1.0 - 1e-12),  1e-21 * (1.0 - 1e-12),  1e-20 * (1.0 - 1e-12),  1e-19 * (1.0 - 1e-12),
    1e-18 * (1.0 - 1e-12),  1e-17 * (1.0 - 1e-12),  1e-16 * (1.0 - 1e-12),  1e-15 * (1.0 - 1e-12),
    1e-14 * (1.0 - 1e-12),  1e-13 * (1.0 - 1e-12),  1e-12 * (1.0 - 1e-12),  1e-11 * (1.0 - 1e-12),
    1e-10 * (1.0 - 1e-12),  1e-9 * (1.0 - 1e-12),   1e-8 * (1.0 - 1e-12),   1e-7 * (1.0 - 1e-12),
    1e-6 * (1.0 - 1e-12),   1e-5 * (1.0 - 1e-12),   1e-4 * (1.0 - 1e-12),   1e-3 * (1.0 - 1e-12),
    1e-2 * (1.0 - 1e-12),   1e-1 * (1.0 - 1e-12),   1e0 * (1.0 - 1e-12),    1e1 * (1.0 - 1e-12),
    1e2 * (1.0 - 1e-12),    1e3 * (1.0 - 1e-12),    1e4 * (1.0 - 1e-12),    1e5 * (1.0 - 1e-12),
    1e6 * (1.0 - 1e-12),    1e7 * (1.0 - 1e-12),    1e8 * (1.0 - 1e-12),    1e9 * (1.0 - 1e-12),
    1e10 * (1.0 - 1e-12),   1e11 * (1.0 - 1e-12),   1e12 * (1.0 - 1e-12),   1e13 * (1.0 - 1e-12),
    1e14 * (1.0 - 1e-12),   1e15 * (1.0 - 1e-12),   1e16 * (1.0 - 1e-12),   1e17 * (1.0 - 1e-12),
    1e18 * (1.0 - 1e-12),   1e19 * (1.0 - 1e-12),   1e20 * (1.0 - 1e-12),   1e21 * (1.0 - 1e-12),
    1e22 * (1.0 - 1e-12),   1e23 * (1.0 - 1e-12),   1e24 * (1.0 - 1e-12),   1e25 * (1.0 - 1e-12),
    1e26 * (1.0 - 1e-12),   1e27 * (1.0 - 1e-12),   1e28 * (1.0 - 1e-12),   1e29 * (1.0 - 1e-12),
    1e30 * (1.0 - 1e-12),   1e31 * (1.0 - 1e-12),   1e32 * (1.0 - 1e-12),   1e33 * (1.0 - 1e-12),
    1e34 * (1.0 - 1e-12),   1e35 * (1.0 - 1e-12),   1e36 * (1.0 - 1e-12),   1e37 * (1.0 - 1e-12),
    1e38 * (1.0 - 1e-12),   1e39 * (1.0 - 1e-12),   1e40 * (1.0 - 1e-12),   1e41 * (1.0 - 1e-12),
    1e42 * (1.0 - 1e-12),   1e43 * (1.0 - 1e-12),   1e44 * (1.0 - 1e-12),   1e45 * (1.0 - 1e-12),
    1e46 * (1.0 - 1e-12),   1e47 * (1.0 - 1e-12),   1e48 * (1.0 - 1e-12),   1e49 * (1.0 - 1e-12),
    1e50 * (1.0 - 1e-12),   1e51 * (1.0 - 1e-12),   1e52 * (1.0 - 1e-12),   1e53 * (1.0 - 1e-12),
    1e54 * (1.0 - 1e-12),   1e55 * (1.0 - 1e-12),   1e56 * (1.0 - 1e-12),   1e57 * (1.0 - 1e-12),
    1e58 * (1.0 - 1e-12),   1e59 * (1.0 - 1e-12),   1e60 * (1.0 - 1e-12),   1e61 * (1.0 - 1e-12),
    1e62 * (1.0 - 1e-12),   1e63 * (1.0 - 1e-12),   1e64 * (1.0 - 1e-12),   1e65 * (1.0 - 1e-12),
    1e66 * (1.0 - 1e-12),   1e67 * (1.0 - 1e-12),   1e68 * (1.0 - 1e-12),   1e69 * (1.0 - 1e-12),
    1e70 * (1.0 - 1e-12),   1e71 * (1.0 - 1e-12),   1e72 * (1.0 - 1e-12),   1e73 * (1.0 - 1e-12),
    1e74 * (1.0 - 1e-12),   1e75 * (1.0 - 1e-12),   1e76 * (1.0 - 1e-12),   1e77 * (1.0 - 1e-12),
    1e78 * (1.0 - 1e-12),   1e79 * (1.0 - 1e-12),   1e80 * (1.0 - 1e-12),   1e81 * (1.0 - 1e-12),
    1e82 * (1.0 - 1e-12),   1e83 * (1.0 - 1e-12),   1e84 * (1.0 - 1e-12),   1e85 * (1.0 - 1e-12),
    1e86 * (1.0 - 1e-12),   1e87 * (1.0 - 1e-12),   1e88 * (1.0 - 1e-12),   1e89 * (1.0 - 1e-12),
    1e90 * (1.0 - 1e-12),   1e91 * (1.0 - 1e-12),   1e92 * (1.0 - 1e-12),   1e93 * (1.0 - 1e-12),
    1e94 * (1.0 - 1e-12),   1e95 * (1.0 - 1e-12),   1e96 * (1.0 - 1e-12),   1e97 * (1.0 - 1e-12),
    1e98 * (1.0 - 1e-12),   1e99 * (1.0 - 1e-12),   1e100 * (1.0 - 1e-12),  1e101 * (1.0 - 1e-12),
    1e102 * (1.0 - 1e-12),  1e103 * (1.0 - 1e-12),  1e104 * (1.0 - 1e-12),  1e105 * (1.0 - 1e-12),
    1e106 * (1.0 - 1e-12),  1e107 * (1.0 - 1e-12),  1e108 * (1.0 - 1e-12),  1e109 * (1.0 - 1e-12),
    1e110 * (1.0 - 1e-12),  1e111 * (1.0 - 1e-12),  1e112 * (1.0 - 1e-12),  1e113 * (1.0 - 1e-12),
    1e114 * (1.0 - 1e-12),  1e115 * (1.0 - 1e-12),  1e116 * (1.0 - 1e-12),  1e117 * (1.0 - 1e-12),
    1e118 * (1.0 - 1e-12),  1e119 * (1.0 - 1e-12),  1e120 * (1.0 - 1e-12),  1e121 * (1.0 - 1e-12),
    1e122 * (1.0 - 1e-12),  1e123 * (1.0 - 1e-12),  1e124 * (1.0 - 1e-12),  1e125 * (1.0 - 1e-12),
    1e126 * (1.0 - 1e-12),  1e127 * (1.0 - 1e-12),  1e128 * (1.0 - 1e-12),
};

static const union {
    uint64_t u;
    double d;
} private_nan = {0x7fffffffffffffffULL}; /* upstream's NaN bit pattern */

static inline struct sn_bucket nan_bucket(void)
{
    return sn_bucket_make(-1, 0);
}

static inline struct sn_bucket zero_bucket(void)
{
    return sn_bucket_make(0, 0);
}

struct sn_bucket sn_bucket_from_double_ref(double d)
{
    int sign, big_exp, val;

    if (isnan(d) || isinf(d))
        return nan_bucket();
    if (d == 0)
        return zero_bucket();
    sign = d < 0 ? -1 : 1;
    d = fabs(d);
    big_exp = (int)floor(log10(d));
    if (big_exp < -128 || big_exp > 127) /* upstream: the int8 exponent "rolled" */
        return big_exp >= 0 ? nan_bucket() : zero_bucket();
    d /= p10[big_exp + P10_OFF];
    d *= 10;
    val = sign * (int)floor(d + 1e-13);
    if (val == 100 || val == -100) {
        if (big_exp >= 127)
            return nan_bucket();
        val /= 10;
        big_exp++;
    }
    if (val == 0)
        return zero_bucket();
    if (!((val >= 10 && val < 100) || (val <= -10 && val > -100)))
        return nan_bucket();
    return sn_bucket_make(val, big_exp);
}

uint16_t sn_ord_from_double(double d)
{
    uint64_t bits, abits;
    double a;
    int e2, e, v;

    memcpy(&bits, &d, sizeof(bits));
    abits = bits & 0x7fffffffffffffffULL;
    if (abits >= 0x7ff0000000000000ULL) /* inf, NaN */
        return SN_BUCKET_ORD_NAN;
    if (abits < 0x0010000000000000ULL) /* zero, subnormal: far below 1e-128 */
        return SN_BUCKET_ORD_ZERO;
    memcpy(&a, &abits, sizeof(a));
    e2 = (int)(abits >> 52) - 1023;
    /* floor(e2 * log10 2), possibly one too low: 1292913986 / 2^32 is just under log10(2) */
    e = (int)(((int64_t)e2 * 1292913986) >> 32);
    if (e < -130)
        return SN_BUCKET_ORD_ZERO;
    if (e > 127)
        return SN_BUCKET_ORD_NAN;
    if (a >= p10[e + 1 + P10_OFF])
        e++;
    if (e > 127)
        return SN_BUCKET_ORD_NAN;
    if (a >= p10_near[e + 1 + P10_OFF])
        return sn_bucket_ord(sn_bucket_from_double_ref(d));
    if (e < -128)
        return SN_BUCKET_ORD_ZERO;
    v = (int)(a / p10[e + P10_OFF] * 10 + 1e-13);
    return sn_ord_of_parts((int64_t)bits < 0, (unsigned)v, e);
}

struct sn_bucket sn_bucket_from_double(double d)
{
    return sn_bucket_from_ord(sn_ord_from_double(d));
}

struct sn_bucket sn_bucket_from_double_fixed(double d)
{
    struct sn_bucket b = sn_bucket_from_double(d);
    double a = fabs(d);
    int e, v;

    if (b.val != -1 || !isfinite(d) || a >= p10[128 + P10_OFF])
        return b;
    /* a NaN hole: log10 rounded up to the next power of ten; use the exponent below it */
    e = (int)floor(log10(a)) - 1;
    if (e < -128)
        return zero_bucket();
    v = (int)floor(a / p10[e + P10_OFF] * 10 + 1e-13);
    if (v < 10 || v > 99)
        return b;
    return sn_bucket_make(d < 0 ? -v : v, e);
}

double sn_bucket_to_double(struct sn_bucket b)
{
    if (sn_bucket_is_nan(b))
        return private_nan.d;
    if (b.val == 0)
        return 0.0;
    return ((double)b.val / 10.0) * p10[b.exp + P10_OFF];
}

double sn_bucket_width(struct sn_bucket b)
{
    if (sn_bucket_is_nan(b))
        return private_nan.d;
    if (b.val == 0)
        return 0;
    return p10[b.exp + P10_OFF] / 10.0;
}

double sn_bucket_midpoint(struct sn_bucket b)
{
    double bottom, interval, top, ratio;

    if (sn_bucket_is_nan(b))
        return private_nan.d;
    if (b.val == 0)
        return 0;
    bottom = sn_bucket_to_double(b);
    interval = sn_bucket_width(b);
    if (bottom < 0)
        interval *= -1.0;
    top = bottom + interval;
    ratio = bottom / (bottom + top);
    return bottom + interval * ratio;
}

double sn_bucket_left(struct sn_bucket b)
{
    double out;

    if (sn_bucket_is_nan(b))
        return private_nan.d;
    if (b.val == 0)
        return 0;
    out = sn_bucket_to_double(b);
    if (out > 0)
        return out;
    return out - sn_bucket_width(b);
}

int sn_bucket_to_string(struct sn_bucket b, char buf[SN_BUCKET_STRLEN])
{
    int av = b.val < 0 ? -b.val : b.val, e = b.exp - 1;

    if (sn_bucket_is_nan(b))
        return snprintf(buf, SN_BUCKET_STRLEN, "NaN");
    if (b.val == 0)
        return snprintf(buf, SN_BUCKET_STRLEN, "0");
    return snprintf(buf, SN_BUCKET_STRLEN, "%c%02de%c%03d", b.val < 0 ? '-' : '+', av,
                    e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* [lo, hi] of the integers in the positive bucket {v, exp}, as 128-bit values. */
static int int_range_pos(int v, int exp, __int128 *lo, __int128 *hi)
{
    int k = exp - 1;
    __int128 d = 1;

    if (k >= 0) {
        if (k > 20) /* v * 10^k > INT64_MAX for sure */
            k = 20;
        for (int i = 0; i < k; i++)
            d *= 10;
        *lo = (__int128)v * d;
        *hi = (__int128)(v + 1) * d - 1;
        return 0;
    }
    if (k < -2) { /* the whole bucket is below 0.1 */
        *lo = *hi = 0;
        return -ERANGE;
    }
    d = k == -1 ? 10 : 100;
    *lo = (v + d - 1) / d;
    *hi = (v + 1 + d - 1) / d - 1;
    if (*lo > *hi) {
        *lo = *hi = v / d;
        return -ERANGE;
    }
    return 0;
}

int sn_bucket_int_range(struct sn_bucket b, int64_t *lo, int64_t *hi)
{
    __int128 l, h;
    int rc;

    if (!sn_bucket_is_valid(b) || b.val == -1)
        return -EDOM;
    if (b.val == 0) {
        *lo = *hi = 0;
        return 0;
    }
    rc = int_range_pos(b.val < 0 ? -b.val : b.val, b.exp, &l, &h);
    if (b.val < 0) {
        __int128 t = -l;
        l = -h;
        h = t;
    }
    if (l > INT64_MAX || h < INT64_MIN) {
        *lo = *hi = l > INT64_MAX ? INT64_MAX : INT64_MIN;
        return -ERANGE;
    }
    *lo = l < INT64_MIN ? INT64_MIN : (int64_t)l;
    *hi = h > INT64_MAX ? INT64_MAX : (int64_t)h;
    return rc;
}
