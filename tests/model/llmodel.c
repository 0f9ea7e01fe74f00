/*
 * llmodel.c: plain model of libcircllhist (see llmodel.h for what and why).
 *
 * Every function follows the specification in /work/shared/ref/circllhist.md step by step, in
 * upstream's order of floating-point operations. Build with -ffp-contract=off. Nothing here is
 * optimised: this file is the baseline that Sonde's own histogram is measured against, and the
 * oracle it is tested against, so plainness beats speed. Section numbers refer to the spec.
 */
#include "llmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- private data --- */

#define LLM_DEFAULT_SLOTS 100 /* initial array size and growth step (DEFAULT_HIST_SIZE) */

/* One stored (bucket, count) pair, packed to 10 bytes like upstream's hist_bv_pair. */
struct llm_pair {
    struct llm_bucket bucket; /* the bucket */
    uint64_t count;           /* its count; may be 0 */
} __attribute__((packed));

_Static_assert(sizeof(struct llm_pair) == 10, "pair must be packed to 10 bytes");
_Static_assert(sizeof(struct llm_bucket) == 2, "bucket must be 2 bytes");

struct llm_hist {
    int allocd;           /* slots allocated in bvs */
    int used;             /* slots in use, sorted ascending by llm_bucket_cmp (unless decoded) */
    struct llm_pair *bvs; /* the pairs; NULL after a decode of 0 records or a failed decode */
};

/* P[(uint8_t)exp] = 10^exp, as the compiler's correctly rounded decimal literals (spec 1.2). */
/* clang-format off */
static const double P[256] = {
    /* [0..127] = 1e0 .. 1e127 */
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46,
    1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61,
    1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76,
    1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91,
    1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105,
    1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118,
    1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127,
    /* [128..255] = 1e-128 .. 1e-1, i.e. exp -128..-1 seen as uint8_t */
    1e-128, 1e-127, 1e-126, 1e-125, 1e-124, 1e-123, 1e-122, 1e-121, 1e-120, 1e-119, 1e-118,
    1e-117, 1e-116, 1e-115, 1e-114, 1e-113, 1e-112, 1e-111, 1e-110, 1e-109, 1e-108, 1e-107,
    1e-106, 1e-105, 1e-104, 1e-103, 1e-102, 1e-101, 1e-100, 1e-99, 1e-98, 1e-97, 1e-96, 1e-95,
    1e-94, 1e-93, 1e-92, 1e-91, 1e-90, 1e-89, 1e-88, 1e-87, 1e-86, 1e-85, 1e-84, 1e-83, 1e-82,
    1e-81, 1e-80, 1e-79, 1e-78, 1e-77, 1e-76, 1e-75, 1e-74, 1e-73, 1e-72, 1e-71, 1e-70, 1e-69,
    1e-68, 1e-67, 1e-66, 1e-65, 1e-64, 1e-63, 1e-62, 1e-61, 1e-60, 1e-59, 1e-58, 1e-57, 1e-56,
    1e-55, 1e-54, 1e-53, 1e-52, 1e-51, 1e-50, 1e-49, 1e-48, 1e-47, 1e-46, 1e-45, 1e-44, 1e-43,
    1e-42, 1e-41, 1e-40, 1e-39, 1e-38, 1e-37, 1e-36, 1e-35, 1e-34, 1e-33, 1e-32, 1e-31, 1e-30,
    1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17,
    1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3,
    1e-2, 1e-1,
};
/* clang-format on */

/* Count width table (spec 2.1), with upstream's two wrong constants kept on purpose:
 * entry 3 is 2^36-1 (should be 2^32-1) and entry 5 is 2^52-1 (should be 2^48-1). */
static const uint64_t bvl_limits[7] = {
    0xffULL,
    0xffffULL,
    0xffffffULL,
    0xfffffffffULL /* bug */,
    0xffffffffffULL,
    0xfffffffffffffULL /* bug */,
    0xffffffffffffffULL,
};

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const struct llm_bucket nan_bucket = {-1, 0};
static const struct llm_bucket zero_bucket = {0, 0};

/* Upstream's private_nan: the double with bit pattern 0x7fffffffffffffff. */
static double private_nan(void)
{
    const uint64_t bits = 0x7fffffffffffffffULL;
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

static double pow10_of(int8_t exp)
{
    return P[(uint8_t)exp];
}

/* --- buckets (spec 1.1 - 1.5) --- */

struct llm_bucket llm_bucket_from_double(double d)
{
    struct llm_bucket b;
    int sign, big_exp, val;

    if (isnan(d) || isinf(d))
        return nan_bucket;
    if (d == 0)
        return zero_bucket; /* -0.0 too */
    sign = d < 0 ? -1 : 1;
    d = fabs(d);
    big_exp = (int)floor(log10(d));
    if (big_exp < -128 || big_exp > 127) /* upstream: (int8_t)big_exp != big_exp */
        return big_exp >= 0 ? nan_bucket : zero_bucket;
    b.exp = (int8_t)big_exp;
    d = d / pow10_of(b.exp);
    d = d * 10;
    val = sign * (int)floor(d + 1e-13); /* the fuzz term */
    if (val == 100 || val == -100) {
        if (b.exp < 127) {
            val /= 10;
            b.exp++;
        } else {
            return nan_bucket;
        }
    }
    if (val == 0)
        return zero_bucket;
    if (!((val >= 10 && val <= 99) || (val >= -99 && val <= -10)))
        return nan_bucket; /* the NaN holes */
    b.val = (int8_t)val;
    return b;
}

struct llm_bucket llm_bucket_from_int_scale(int64_t v, int scale)
{
    struct llm_bucket b;
    int sign = 1;

    if (v == 0)
        return zero_bucket;
    scale++;
    if (v < 0) {
        v = (v == INT64_MIN) ? INT64_MAX : -v;
        sign = -1;
    }
    if (v < 10) {
        v *= 10;
        scale--;
    }
    while (v >= 100) {
        v /= 10;
        scale++;
    }
    if (scale < -128)
        return zero_bucket;
    if (scale > 127)
        return nan_bucket;
    b.val = (int8_t)(sign * (int)v);
    b.exp = (int8_t)scale;
    return b;
}

int llm_bucket_is_nan(struct llm_bucket b)
{
    int aval = b.val < 0 ? -(int)b.val : b.val;

    if (aval > 99)
        return 1;
    if (aval > 9)
        return 0;
    if (aval > 0)
        return 1;
    return 0; /* zero bucket, whatever its exp */
}

/* Upstream hist_bucket_is_valid: not NaN, or exactly the canonical NaN {-1,0}. */
static int bucket_is_valid(struct llm_bucket b)
{
    return !llm_bucket_is_nan(b) || (b.val == nan_bucket.val && b.exp == nan_bucket.exp);
}

int llm_bucket_cmp(struct llm_bucket a, struct llm_bucket b)
{
    if (a.val == b.val && a.exp == b.exp)
        return 0; /* upstream compares the two bytes as one uint16 */
    if (llm_bucket_is_nan(a))
        return 1;
    if (llm_bucket_is_nan(b))
        return -1;
    if (a.val == 0)
        return b.val > 0 ? 1 : -1;
    if (b.val == 0)
        return a.val < 0 ? 1 : -1;
    if (a.val < 0 && b.val > 0)
        return 1;
    if (a.val > 0 && b.val < 0)
        return -1;
    if (a.exp == b.exp)
        return a.val < b.val ? 1 : -1;
    if (a.exp > b.exp)
        return a.val < 0 ? 1 : -1;
    return a.val < 0 ? -1 : 1; /* a.exp < b.exp */
}

double llm_bucket_to_double(struct llm_bucket b)
{
    if (llm_bucket_is_nan(b))
        return private_nan();
    if (b.val == 0)
        return 0.0;
    return ((double)b.val / 10.0) * pow10_of(b.exp);
}

double llm_bucket_width(struct llm_bucket b)
{
    if (llm_bucket_is_nan(b))
        return private_nan();
    if (b.val == 0)
        return 0;
    return pow10_of(b.exp) / 10.0;
}

double llm_bucket_midpoint(struct llm_bucket b)
{
    double bottom, interval, top, ratio;

    if (llm_bucket_is_nan(b))
        return private_nan();
    if (b.val == 0)
        return 0;
    bottom = llm_bucket_to_double(b);
    interval = llm_bucket_width(b);
    if (bottom < 0)
        interval *= -1.0;
    top = bottom + interval;
    ratio = bottom / (bottom + top);
    return bottom + interval * ratio; /* = 2*bottom*top/(bottom+top), the harmonic mean */
}

double llm_bucket_left(struct llm_bucket b)
{
    double out;

    if (llm_bucket_is_nan(b))
        return private_nan();
    if (b.val == 0)
        return 0;
    out = llm_bucket_to_double(b);
    if (out > 0)
        return out;
    return out - llm_bucket_width(b);
}

int llm_bucket_to_string(struct llm_bucket b, char buf[9])
{
    int aval, aexp;

    if (llm_bucket_is_nan(b)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (b.val == 0) {
        memcpy(buf, "0", 2);
        return 1;
    }
    aval = b.val < 0 ? -(int)b.val : b.val;
    aexp = abs((int)b.exp - 1);
    buf[0] = b.val >= 0 ? '+' : '-';
    buf[1] = (char)('0' + aval / 10);
    buf[2] = (char)('0' + aval % 10);
    buf[3] = 'e';
    buf[4] = b.exp >= 1 ? '+' : '-';
    buf[5] = (char)('0' + aexp / 100);
    buf[6] = (char)('0' + (aexp % 100) / 10);
    buf[7] = (char)('0' + aexp % 10);
    buf[8] = '\0';
    return 8;
}

/* --- histogram object and inserts (spec 1.6) --- */

struct llm_hist *llm_create(void)
{
    struct llm_hist *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->bvs = calloc(LLM_DEFAULT_SLOTS, sizeof(*h->bvs));
    if (!h->bvs) {
        free(h);
        return NULL;
    }
    h->allocd = LLM_DEFAULT_SLOTS;
    return h;
}

void llm_destroy(struct llm_hist *h)
{
    if (!h)
        return;
    free(h->bvs);
    free(h);
}

void llm_clear(struct llm_hist *h)
{
    int i;

    for (i = 0; i < h->used; i++)
        h->bvs[i].count = 0;
    h->used = 0;
}

/*
 * Upstream hist_internal_find: binary search with the upstream comparator. Returns 1 and the
 * index if b is stored, else 0 and the index where b would be inserted. On unsorted (decoded)
 * arrays the answer is whatever this exact search yields, as upstream.
 */
static int find(const struct llm_hist *h, struct llm_bucket b, int *idx)
{
    int rv = -1, l = 0, r = h->used - 1;

    *idx = 0;
    if (h->used == 0)
        return 0;
    while (l < r) {
        int check = (r + l) / 2;

        rv = llm_bucket_cmp(h->bvs[check].bucket, b);
        if (rv == 0)
            l = r = check;
        else if (rv > 0)
            l = check + 1;
        else
            r = check - 1;
    }
    if (rv != 0)
        rv = llm_bucket_cmp(h->bvs[l].bucket, b);
    *idx = l;
    if (rv == 0)
        return 1;
    if (rv < 0)
        return 0;
    (*idx)++;
    return 0;
}

uint64_t llm_insert_raw(struct llm_hist *h, struct llm_bucket b, uint64_t count)
{
    int idx;
    uint64_t newval;

    if (!h->bvs) {
        h->bvs = malloc(LLM_DEFAULT_SLOTS * sizeof(*h->bvs));
        if (!h->bvs)
            return 0;
        h->allocd = LLM_DEFAULT_SLOTS;
    }
    if (find(h, b, &idx)) {
        newval = h->bvs[idx].count + count;
        if (newval < h->bvs[idx].count)
            newval = UINT64_MAX; /* saturate */
        count = newval - h->bvs[idx].count;
        h->bvs[idx].count = newval;
        return count;
    }
    if (h->used == h->allocd) {
        /* grow by +100: malloc, copy around the new slot, free (upstream's resize) */
        struct llm_pair *nb = malloc((size_t)(h->allocd + LLM_DEFAULT_SLOTS) * sizeof(*nb));

        if (!nb)
            return 0;
        if (idx > 0)
            memcpy(nb, h->bvs, (size_t)idx * sizeof(*nb));
        if (idx < h->used)
            memcpy(nb + idx + 1, h->bvs + idx, (size_t)(h->used - idx) * sizeof(*nb));
        free(h->bvs);
        h->bvs = nb;
        h->allocd += LLM_DEFAULT_SLOTS;
    } else {
        memmove(h->bvs + idx + 1, h->bvs + idx, (size_t)(h->used - idx) * sizeof(*h->bvs));
    }
    h->bvs[idx].bucket = b;
    h->bvs[idx].count = count;
    h->used++;
    return count;
}

uint64_t llm_insert(struct llm_hist *h, double v, uint64_t count)
{
    return llm_insert_raw(h, llm_bucket_from_double(v), count);
}

uint64_t llm_insert_intscale(struct llm_hist *h, int64_t v, int scale, uint64_t count)
{
    return llm_insert_raw(h, llm_bucket_from_int_scale(v, scale), count);
}

uint64_t llm_remove_raw(struct llm_hist *h, struct llm_bucket b, uint64_t count)
{
    int idx;
    uint64_t newval;

    if (!find(h, b, &idx))
        return 0;
    newval = h->bvs[idx].count - count;
    if (newval > h->bvs[idx].count)
        newval = 0; /* floor at 0 */
    count = h->bvs[idx].count - newval;
    h->bvs[idx].count = newval;
    return count;
}

int llm_used(const struct llm_hist *h)
{
    return h ? h->used : 0;
}

int llm_get(const struct llm_hist *h, int i, struct llm_bucket *b, uint64_t *count)
{
    if (i < 0 || i >= h->used)
        return 0;
    *b = h->bvs[i].bucket;
    *count = h->bvs[i].count;
    return 1;
}

uint64_t llm_sample_count(const struct llm_hist *h)
{
    uint64_t total = 0, last;
    int i;

    if (!h)
        return 0;
    for (i = 0; i < h->used; i++) {
        last = total;
        total += h->bvs[i].count;
        if (total < last)
            return UINT64_MAX;
    }
    return total;
}

/* --- merge and subtract (spec 1.7) --- */

/*
 * One pass of upstream's k-way merge over in[0..k-1] (NULL entries skipped). Each round takes
 * the smallest head (first live head, then any head that compares smaller), advances every input
 * whose head is bitwise equal to it, and, if out is not NULL, adds those counts into out slot
 * `rounds` (saturating). Returns the number of rounds = output buckets. pos is scratch, k ints.
 */
static int merge_pass(const struct llm_hist *const *in, int k, int *pos, struct llm_hist *out)
{
    int i, rounds = 0;

    memset(pos, 0, (size_t)k * sizeof(*pos));
    for (;;) {
        struct llm_bucket smallest = zero_bucket;

        for (i = 0; i < k; i++) {
            if (in[i] && pos[i] < in[i]->used) {
                smallest = in[i]->bvs[pos[i]].bucket;
                break;
            }
        }
        if (i == k)
            break; /* all inputs exhausted */
        for (; i < k; i++) {
            if (in[i] && pos[i] < in[i]->used &&
                llm_bucket_cmp(smallest, in[i]->bvs[pos[i]].bucket) < 0)
                smallest = in[i]->bvs[pos[i]].bucket;
        }
        for (i = 0; i < k; i++) {
            if (in[i] && pos[i] < in[i]->used &&
                llm_bucket_cmp(smallest, in[i]->bvs[pos[i]].bucket) == 0) {
                if (out) {
                    uint64_t c, nv;

                    if (out->used == rounds) {
                        out->bvs[rounds].bucket = in[i]->bvs[pos[i]].bucket;
                        out->used++;
                    }
                    c = out->bvs[rounds].count;
                    nv = c + in[i]->bvs[pos[i]].count;
                    if (nv < c)
                        nv = UINT64_MAX;
                    out->bvs[rounds].count = nv;
                }
                pos[i]++;
            }
        }
        rounds++;
    }
    return rounds;
}

int llm_accumulate(struct llm_hist *tgt, const struct llm_hist *const *srcs, int n)
{
    const struct llm_hist **in;
    struct llm_hist tgt_copy = *tgt; /* the old target, merged as the last input */
    struct llm_pair *nb;
    int *pos, needed, allocd;

    if (n < 0)
        return -1;
    in = malloc((size_t)(n + 1) * sizeof(*in));
    pos = malloc((size_t)(n + 1) * sizeof(*pos));
    if (!in || !pos)
        goto err_free;
    if (n > 0)
        memcpy(in, srcs, (size_t)n * sizeof(*in));
    in[n] = &tgt_copy;

    needed = merge_pass(in, n + 1, pos, NULL); /* pass 1: count output buckets */
    allocd = needed ? needed : 1;
    nb = calloc((size_t)allocd, sizeof(*nb));
    if (!nb)
        goto err_free;
    tgt->bvs = nb;
    tgt->allocd = allocd;
    tgt->used = 0;
    merge_pass(in, n + 1, pos, tgt); /* pass 2: fill; reads the old array via tgt_copy */
    free(tgt_copy.bvs);
    free(pos);
    free(in);
    return tgt->used;

err_free:
    free(pos);
    free(in);
    return -1;
}

int llm_subtract(struct llm_hist *tgt, const struct llm_hist *const *srcs, int n)
{
    int i, ti, si, rv = 0;

    for (i = 0; i < n; i++) {
        const struct llm_hist *s = srcs[i];

        if (!s)
            continue;
        ti = si = 0;
        while (ti < tgt->used && si < s->used) {
            int cmp = llm_bucket_cmp(tgt->bvs[ti].bucket, s->bvs[si].bucket);

            if (cmp == 0) {
                if (tgt->bvs[ti].count < s->bvs[si].count) {
                    tgt->bvs[ti].count = 0;
                    rv = -1;
                } else {
                    tgt->bvs[ti].count = tgt->bvs[ti].count - s->bvs[si].count;
                }
                ti++;
                si++;
            } else if (cmp > 0) {
                ti++; /* tgt bucket is smaller: nothing to subtract from it */
            } else {
                if (s->bvs[si].count > 0)
                    rv = -1; /* src bucket missing from tgt */
                si++;
            }
        }
        for (; si < s->used; si++) {
            if (s->bvs[si].count > 0)
                rv = -1;
        }
    }
    return rv;
}

/* --- mean, sum, stddev (spec 1.9) --- */

double llm_mean(const struct llm_hist *h)
{
    double divisor = 0.0, sum = 0.0;
    int i;

    if (!h)
        return private_nan();
    for (i = 0; i < h->used; i++) {
        double midpoint, cardinality;

        if (llm_bucket_is_nan(h->bvs[i].bucket))
            continue;
        midpoint = llm_bucket_midpoint(h->bvs[i].bucket);
        cardinality = (double)h->bvs[i].count;
        divisor += cardinality;
        sum += midpoint * cardinality;
    }
    if (divisor == 0.0)
        return private_nan();
    return sum / divisor;
}

double llm_sum(const struct llm_hist *h)
{
    double sum = 0.0;
    int i;

    if (!h)
        return 0.0;
    for (i = 0; i < h->used; i++) {
        double value, cardinality;

        if (llm_bucket_is_nan(h->bvs[i].bucket))
            continue;
        value = llm_bucket_midpoint(h->bvs[i].bucket);
        cardinality = (double)h->bvs[i].count;
        sum += value * cardinality;
    }
    return sum;
}

double llm_stddev(const struct llm_hist *h)
{
    double total = 0.0, s1 = 0.0, s2 = 0.0, m1;
    int i;

    if (!h)
        return private_nan();
    if (h->used == 0)
        return 0.0;
    for (i = 0; i < h->used; i++) {
        double midpoint, count;

        if (llm_bucket_is_nan(h->bvs[i].bucket))
            continue;
        midpoint = llm_bucket_midpoint(h->bvs[i].bucket);
        count = (double)h->bvs[i].count;
        total += count;
        s1 += midpoint * count;
        s2 += (midpoint * midpoint) * count; /* upstream pow(m,2.0), folded to m*m by gcc */
    }
    if (total == 0.0)
        return private_nan();
    m1 = s1 / total;
    return sqrt(s2 / total - m1 * m1);
}

/* --- quantiles (spec 1.8) --- */

/*
 * Fair resampling: the n samples of a bucket sit at left + k/(n+1)*width, k = 1..n.
 * out[] doubles as scratch for the count-scaled quantiles, as upstream, so it holds partial
 * scratch values when -3 is returned.
 */
static int quantile(const struct llm_hist *h, const double *q, int nq, double *out, int type7)
{
    double total = 0.0, width = 0.0, left = 0.0, lower = 0.0, upper = 0.0;
    uint64_t n = 0; /* count of the current bucket */
    int iq, ib;

    if (nq < 1)
        return 0;
    if (!h) {
        for (iq = 0; iq < nq; iq++)
            out[iq] = private_nan();
        return 0;
    }
    for (ib = 0; ib < h->used; ib++) {
        if (!llm_bucket_is_nan(h->bvs[ib].bucket))
            total += (double)h->bvs[ib].count;
    }
    for (iq = 1; iq < nq; iq++) {
        if (q[iq - 1] > q[iq])
            return -2;
    }
    if (total == 0) {
        for (iq = 0; iq < nq; iq++)
            out[iq] = private_nan();
        return 0;
    }
    for (iq = 0; iq < nq; iq++) {
        if (q[iq] < 0.0 || q[iq] > 1.0)
            return -3;
        if (type7)
            out[iq] = floor((total - 1) * q[iq] + 1);
        else
            out[iq] = total * q[iq];
    }

    /* start at the first non-NaN bucket with a nonzero count */
    for (ib = 0; ib < h->used; ib++) {
        if (llm_bucket_is_nan(h->bvs[ib].bucket) || h->bvs[ib].count == 0)
            continue;
        width = llm_bucket_width(h->bvs[ib].bucket);
        left = llm_bucket_left(h->bvs[ib].bucket);
        n = h->bvs[ib].count;
        lower = upper;
        upper = lower + (double)n;
        break;
    }

    for (iq = 0; iq < nq; iq++) {
        double qn = out[iq], k;

        while (ib < h->used - 1 && upper < qn) {
            ib++;
            width = llm_bucket_width(h->bvs[ib].bucket);
            left = llm_bucket_left(h->bvs[ib].bucket);
            n = h->bvs[ib].count;
            lower = upper;
            upper = lower + (double)n;
        }
        if (width == 0) {
            out[iq] = 0; /* zero bucket */
        } else if (type7) {
            k = qn - lower;
            out[iq] = left + k / (double)(n + 1) * width;
        } else {
            k = ceil(qn - lower);
            out[iq] = left + (k == 0 ? 1.0 : k) / (double)(n + 1) * width;
        }
    }
    return 0;
}

int llm_quantile(const struct llm_hist *h, const double *q, int nq, double *out)
{
    return quantile(h, q, nq, out, 0);
}

int llm_quantile7(const struct llm_hist *h, const double *q, int nq, double *out)
{
    return quantile(h, q, nq, out, 1);
}

/* --- threshold counts (spec 1.10, openhistogram PR #74 semantics) --- */

static uint64_t count_below(const struct llm_hist *h, double thr, int inclusive)
{
    struct llm_bucket tgt = llm_bucket_from_double(thr);
    uint64_t running = 0;
    int i;

    if (!h)
        return 0;
    for (i = 0; i < h->used; i++) {
        int cmp;

        if (llm_bucket_is_nan(h->bvs[i].bucket))
            continue;
        cmp = llm_bucket_cmp(h->bvs[i].bucket, tgt);
        if (cmp > 0 || (inclusive && cmp == 0))
            running += h->bvs[i].count;
        else
            break;
    }
    return running;
}

static uint64_t count_above(const struct llm_hist *h, double thr, int inclusive)
{
    struct llm_bucket tgt = llm_bucket_from_double(thr);
    uint64_t running;
    int i;

    if (!h)
        return 0;
    running = llm_sample_count(h); /* includes NaN counts: upstream quirk */
    for (i = 0; i < h->used; i++) {
        int cmp;

        if (llm_bucket_is_nan(h->bvs[i].bucket))
            continue;
        cmp = llm_bucket_cmp(h->bvs[i].bucket, tgt);
        if (cmp > 0 || (!inclusive && cmp == 0))
            running -= h->bvs[i].count; /* wraps, as upstream */
        else
            break;
    }
    return running;
}

uint64_t llm_count_below(const struct llm_hist *h, double thr)
{
    return count_below(h, thr, 1);
}

uint64_t llm_count_below_exclusive(const struct llm_hist *h, double thr)
{
    return count_below(h, thr, 0);
}

uint64_t llm_count_above(const struct llm_hist *h, double thr)
{
    return count_above(h, thr, 1);
}

uint64_t llm_count_above_exclusive(const struct llm_hist *h, double thr)
{
    return count_above(h, thr, 0);
}

/* --- serialization (spec 2.1) --- */

/* Width tag: first t with count <= bvl_limits[t], else 7; the record holds t+1 count bytes. */
static int count_tag(uint64_t count)
{
    int t;

    for (t = 0; t < 7; t++) {
        if (count <= bvl_limits[t])
            return t;
    }
    return 7;
}

ssize_t llm_serialize_size(const struct llm_hist *h)
{
    ssize_t len = 2;
    int i;

    if (!h)
        return len;
    for (i = 0; i < h->used; i++) {
        if (h->bvs[i].count != 0)
            len += 3 + count_tag(h->bvs[i].count) + 1;
    }
    return len;
}

ssize_t llm_serialize(const struct llm_hist *h, void *buf, ssize_t len)
{
    uint8_t *cp = buf;
    ssize_t written = 2;
    unsigned nrec = 0;
    int i, j;

    if (len < 2)
        return -1;
    for (i = 0; h && i < h->used; i++) {
        uint64_t count = h->bvs[i].count;
        int t;

        if (count == 0)
            continue;
        t = count_tag(count);
        if (written + 3 + t + 1 > len)
            return -1;
        cp[written] = (uint8_t)h->bvs[i].bucket.val;
        cp[written + 1] = (uint8_t)h->bvs[i].bucket.exp;
        cp[written + 2] = (uint8_t)t;
        for (j = 0; j <= t; j++) /* little-endian; high bytes beyond t+1 are dropped */
            cp[written + 3 + j] = (uint8_t)(count >> (j * 8));
        written += 3 + t + 1;
        nrec++;
    }
    cp[0] = (uint8_t)((nrec >> 8) & 0xff); /* big-endian record count, as a uint16 */
    cp[1] = (uint8_t)(nrec & 0xff);
    return written;
}

/* Empties h the way upstream's failure path does: no array, nothing allocated. */
static void drop_all(struct llm_hist *h)
{
    free(h->bvs);
    h->bvs = NULL;
    h->used = h->allocd = 0;
}

ssize_t llm_deserialize(struct llm_hist *h, const void *buf, ssize_t len)
{
    const uint8_t *cp = buf;
    ssize_t off;
    unsigned cnt;

    if (len < 2)
        goto err_empty;
    drop_all(h);
    cnt = ((unsigned)cp[0] << 8) | cp[1];
    off = 2;
    if (cnt == 0)
        return off;
    h->bvs = calloc(cnt, sizeof(*h->bvs)); /* exactly N slots */
    if (!h->bvs)
        goto err_empty;
    h->allocd = (int)cnt;
    while (len - off > 0 && cnt > 0) {
        const uint8_t *rec = cp + off;
        ssize_t left = len - off;
        uint64_t count = 0;
        struct llm_bucket b;
        int t, j;

        if (left < 3)
            goto err_empty;
        t = rec[2];
        if (t > 7)
            goto err_empty;
        if (left < 3 + t + 1)
            goto err_empty;
        for (j = t; j >= 0; j--)
            count |= (uint64_t)rec[3 + j] << (j * 8);
        b.val = (int8_t)rec[0];
        b.exp = (int8_t)rec[1];
        if (count != 0 && bucket_is_valid(b)) {
            /* appended as found: no sorting, no de-duplication */
            h->bvs[h->used].bucket = b;
            h->bvs[h->used].count = count;
            h->used++;
        }
        off += 3 + t + 1;
        cnt--;
    }
    return off;

err_empty:
    drop_all(h);
    return -1;
}

/* --- base64 (spec 2.2) --- */

ssize_t llm_serialize_b64(const struct llm_hist *h, char *buf, ssize_t len)
{
    ssize_t blen = llm_serialize_size(h), need, i, o = 0;
    uint8_t *bin = malloc((size_t)blen);

    if (!bin)
        return -1;
    blen = llm_serialize(h, bin, blen);
    need = ((blen + 2) / 3) * 4;
    if (blen < 0 || len < need) {
        free(bin);
        return blen < 0 ? -1 : 0;
    }
    for (i = 0; i + 2 < blen; i += 3) {
        buf[o++] = b64_alphabet[bin[i] >> 2];
        buf[o++] = b64_alphabet[((bin[i] & 0x03) << 4) | (bin[i + 1] >> 4)];
        buf[o++] = b64_alphabet[((bin[i + 1] & 0x0f) << 2) | (bin[i + 2] >> 6)];
        buf[o++] = b64_alphabet[bin[i + 2] & 0x3f];
    }
    if (blen - i == 1) {
        buf[o++] = b64_alphabet[bin[i] >> 2];
        buf[o++] = b64_alphabet[(bin[i] & 0x03) << 4];
        buf[o++] = '=';
        buf[o++] = '=';
    } else if (blen - i == 2) {
        buf[o++] = b64_alphabet[bin[i] >> 2];
        buf[o++] = b64_alphabet[((bin[i] & 0x03) << 4) | (bin[i + 1] >> 4)];
        buf[o++] = b64_alphabet[(bin[i + 1] & 0x0f) << 2];
        buf[o++] = '=';
    }
    free(bin);
    return o;
}

/* isspace() in the C locale, fixed here so the model does not depend on setlocale(). */
static int is_c_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Upstream's lenient byte-at-a-time decoder (copy_of_mtev_b64_decode), except that it stops at
 * len where upstream reads s[len] and relies on a NUL there. Whitespace is skipped; any other
 * non-alphabet char stops. '=' with no pending chars stops; otherwise it zero-fills the quad and
 * sets the output width to 1 (1-2 pending) or 2 (3 pending). That width is never reset: every
 * later quad also emits only that many bytes (upstream behaviour). An incomplete final quad
 * emits nothing. Returns the number of bytes written to out (at most len*3/4).
 */
static ssize_t b64_decode(const char *s, ssize_t len, uint8_t *out)
{
    uint8_t in[4], ch;
    ssize_t i, o = 0;
    int ib = 0, ob = 3, j;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 'A' && c <= 'Z')
            ch = (uint8_t)(c - 'A');
        else if (c >= 'a' && c <= 'z')
            ch = (uint8_t)(c - 'a' + 26);
        else if (c >= '0' && c <= '9')
            ch = (uint8_t)(c - '0' + 52);
        else if (c == '+')
            ch = 62;
        else if (c == '/')
            ch = 63;
        else if (c == '=')
            ch = 0xff;
        else if (is_c_space(c))
            continue;
        else
            break;
        if (ch == 0xff) {
            if (ib == 0)
                break;
            ob = (ib == 1 || ib == 2) ? 1 : 2;
            while (ib < 3)
                in[ib++] = 0;
        }
        in[ib++] = ch;
        if (ib == 4) {
            uint8_t dec[3];

            dec[0] = (uint8_t)((in[0] << 2) | ((in[1] & 0x30) >> 4));
            dec[1] = (uint8_t)(((in[1] & 0x0f) << 4) | ((in[2] & 0x3c) >> 2));
            dec[2] = (uint8_t)(((in[2] & 0x03) << 6) | (in[3] & 0x3f));
            for (j = 0; j < ob; j++)
                out[o++] = dec[j];
            ib = 0;
        }
    }
    return o;
}

ssize_t llm_deserialize_b64(struct llm_hist *h, const char *s, ssize_t len)
{
    uint8_t *bin;
    ssize_t dlen, rv = -1;

    if (len < 0)
        return -1;
    bin = malloc((size_t)len + 1);
    if (!bin)
        return -1;
    dlen = b64_decode(s, len, bin);
    if (dlen >= 2) {
        rv = llm_deserialize(h, bin, dlen);
        if (rv != dlen)
            rv = -1;
    }
    free(bin);
    return rv;
}
