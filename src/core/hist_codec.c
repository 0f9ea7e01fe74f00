/*
 * libcircllhist's binary and base64 forms of a histogram, byte for byte.
 *
 *   offset  size  field
 *   0       2     N: number of records, big-endian (buckets with a zero count are not written)
 *   2       ...   N records, in ascending bucket order:
 *                   +0  1  val (int8)
 *                   +1  1  exp (int8)
 *                   +2  1  t, 0..7: the count occupies t+1 bytes
 *                   +3  t+1  count, little-endian
 *
 * Example: {1.0, 9.9, 10, 99.99, 100, 0.01}, one sample each:
 *   0006 0afe0001 0a000001 63000001 0a010001 63010001 0a020001
 *   = "AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=" in base64.
 *
 * Upstream picks t from a table with two wrong entries, so counts in [2^32, 2^36) are written
 * in 4 bytes and counts in [2^48, 2^52) in 6, truncated. Sonde writes the same bytes unless
 * asked for SN_HIST_EXACT_WIDTHS (docs/histogram.md, "Upstream bugs").
 *
 * The decoder checks every length before reading, never trusts N for more than a capacity
 * hint (bounded by the input length), and appends in O(1) while records arrive sorted.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/err.h"
#include "core/hist_int.h"

/* Width tag t (count takes t+1 bytes) as upstream's table picks it, or exactly. */
static inline unsigned width_tag(uint64_t c, unsigned flags)
{
    unsigned t = c ? (unsigned)(63 - __builtin_clzll(c)) / 8 : 0;

    if (!(flags & SN_HIST_EXACT_WIDTHS)) {
        if (t == 4 && c <= 0xfffffffffULL)
            t = 3;
        else if (t == 6 && c <= 0xfffffffffffffULL)
            t = 5;
    }
    return t;
}

size_t sn_hist_encoded_len(const struct sn_hist *h, unsigned flags)
{
    size_t n = 2;

    for (uint32_t i = 0; i < h->used; i++)
        if (h->cnt[i])
            n += 4 + width_tag(h->cnt[i], flags);
    return n;
}

ssize_t sn_hist_encode(const struct sn_hist *h, void *buf, size_t len, unsigned flags)
{
    uint8_t *o = buf, *end = o + len;
    uint16_t nrec = 0;

    if (len < 2)
        return -ENOSPC;
    o += 2;
    for (uint32_t i = 0; i < h->used; i++) {
        uint64_t c = h->cnt[i];
        unsigned t;
        struct sn_bucket b;

        if (!c)
            continue;
        t = width_tag(c, flags);
        if ((size_t)(end - o) < 4 + t)
            return -ENOSPC;
        b = sn_bucket_from_ord(h->ord[i]);
        o[0] = (uint8_t)b.val;
        o[1] = (uint8_t)b.exp;
        o[2] = (uint8_t)t;
        if (end - o >= 11) {
            uint64_t le = htole64(c);
            memcpy(o + 3, &le, 8);
        } else {
            for (unsigned k = 0; k <= t; k++)
                o[3 + k] = (uint8_t)(c >> (8 * k));
        }
        o += 4 + t;
        nrec++;
    }
    ((uint8_t *)buf)[0] = (uint8_t)(nrec >> 8);
    ((uint8_t *)buf)[1] = (uint8_t)nrec;
    return o - (uint8_t *)buf;
}

size_t sn_hist_b64_len(const struct sn_hist *h, unsigned flags)
{
    return sn_b64_encoded_len(sn_hist_encoded_len(h, flags));
}

ssize_t sn_hist_encode_b64(const struct sn_hist *h, char *buf, size_t len, unsigned flags)
{
    size_t n = sn_hist_encoded_len(h, flags), out = sn_b64_encoded_len(n);
    uint8_t stack[8192], *bin = stack;
    ssize_t rc;

    if (len < out + 1)
        return -ENOSPC;
    if (n > sizeof(stack)) {
        bin = malloc(n);
        if (!bin)
            return -ENOMEM;
    }
    rc = sn_hist_encode(h, bin, n, flags);
    if (rc >= 0) {
        rc = (ssize_t)sn_b64_encode(bin, (size_t)rc, buf);
        buf[rc] = '\0';
    }
    if (bin != stack)
        free(bin);
    return rc;
}

/* A bucket upstream's decoder keeps: a value bucket, val 0 with any exp, or {-1, 0}. */
static inline bool upstream_valid(int8_t val, int8_t exp)
{
    int a = val < 0 ? -val : val;
    return (a >= 10 && a <= 99) || val == 0 || (val == -1 && exp == 0);
}

static const uint64_t count_mask[8] = {
    0xffULL,         0xffffULL,         0xffffffULL,         0xffffffffULL,
    0xffffffffffULL, 0xffffffffffffULL, 0xffffffffffffffULL, ~0ULL,
};

/* One record that the fast path did not take: zero count, zero/NaN/invalid bucket, or out of
 * order. Returns 0 (kept or skipped) or a negative code. */
static int decode_other(struct sn_hist *h, int8_t val, int8_t exp, uint64_t c, bool strict)
{
    uint16_t o;

    if (c == 0)
        return strict ? SN_E_ZERO : 0;
    if (!upstream_valid(val, exp) || (strict && val == 0 && exp != 0))
        return strict ? SN_E_BUCKET : 0;
    o = sn_bucket_ord(sn_bucket_make(val, exp)); /* {0, e} reads as zero */
    if (h->used == 0 || o > h->ord[h->used - 1]) {
        if (h->used == h->cap && sn_hist_reserve(h, h->used + 1) < 0)
            return -ENOMEM;
        h->ord[h->used] = o;
        h->cnt[h->used] = c;
        h->used++;
        return 0;
    }
    if (strict)
        return SN_E_ORDER;
    return sn_hist_add_ord(h, o, c); /* upstream keeps them unsorted; Sonde sorts and sums */
}

/* By a record's val byte: the ordinal of {val, -128} and the ordinal step per exponent
 * (+90, or -90 for negatives), so a value bucket's ordinal is base + step * (exp + 128);
 * base is -1 when val is not a value bucket (zero, NaN, invalid). Filled once. */
static int32_t ord_base[256], ord_step[256];
static pthread_once_t ord_tables_once = PTHREAD_ONCE_INIT;

static void ord_tables_fill(void)
{
    for (int b = 0; b < 256; b++) {
        int v = (int8_t)b, a = v < 0 ? -v : v;
        bool value = a >= 10 && a <= 99;
        ord_base[b] = value ? sn_ord_of_parts(v < 0, (unsigned)a, -128) : -1;
        ord_step[b] = value ? (v < 0 ? -90 : 90) : 0;
    }
}

/*
 * Lenient decoding's hot loop. Walking records is a dependency chain (offset -> width tag ->
 * next offset) that alone costs ~1.7 ns a record here. So it speculates: if the next three
 * records carry the same width tag as this one (their tags are read with independent loads
 * at the offsets that width implies), all four offsets are known at once and the chain
 * advances four records per load. Records are appended while they are sorted value buckets
 * with non-zero counts; anything else stops the loop at that record, for decode()'s general
 * path. Returns the new offset and advances *r; the caller reserved room for every record.
 */
static size_t decode_batches(struct sn_hist *h, const uint8_t *p, size_t off, size_t len, size_t *r,
                             size_t nrec)
{
    uint16_t *ord = h->ord;
    uint64_t *cnt = h->cnt;
    uint32_t used = h->used, last = used ? ord[used - 1] : 0; /* value ordinals are >= 1 */
    size_t n = *r;

    while (nrec - n >= 4 && len - off >= 3 * 11 + 11) {
        const uint8_t *q = p + off;
        unsigned t = q[2], k;
        size_t step = 4 + (size_t)t;

        if (t > 7)
            break;
        /* records 1..3 sit at multiples of step when they share width t; check all three */
        if (q[step + 2] != t || q[2 * step + 2] != t || q[3 * step + 2] != t)
            break;
        for (k = 0; k < 4; k++, q += step) {
            uint64_t c;
            int32_t base = ord_base[q[0]];
            uint32_t o = (uint32_t)(base + ord_step[q[0]] * ((int8_t)q[1] + 128));

            memcpy(&c, q + 3, 8);
            c = le64toh(c) & count_mask[t];
            if (c == 0 || base < 0 || o <= last)
                break;
            ord[used] = (uint16_t)o;
            cnt[used] = c;
            used++;
            last = o;
        }
        off += k * step;
        n += k;
        if (k < 4)
            break;
    }
    h->used = used;
    *r = n;
    return off;
}

static ssize_t decode(struct sn_hist *h, const uint8_t *p, size_t len, unsigned flags)
{
    bool strict = flags & SN_HIST_STRICT;
    size_t off = 2, nrec, cap, r = 0;
    int rc;

    if (len < 2)
        return SN_E_TRUNCATED;
    pthread_once(&ord_tables_once, ord_tables_fill);
    nrec = (size_t)p[0] << 8 | p[1];
    /* each record takes at least 4 bytes: never reserve more than the input can hold, and
     * with that much room the fast paths can append without checking */
    cap = nrec < (len - 2) / 4 ? nrec : (len - 2) / 4;
    if (sn_hist_reserve(h, (uint32_t)cap) < 0)
        return -ENOMEM;
    while (r < nrec) {
        const uint8_t *q;
        uint64_t c;
        unsigned t, a;
        int8_t val, exp;

        if (!strict) { /* strict checks every record's width: one at a time */
            off = decode_batches(h, p, off, len, &r, nrec);
            if (r == nrec)
                break;
        }
        q = p + off;
        if (len - off >= 11) { /* the whole record is readable with one 8-byte load */
            t = q[2];
            if (t > 7)
                return SN_E_CORRUPT;
            memcpy(&c, q + 3, 8);
            c = le64toh(c) & count_mask[t];
        } else {
            if (off == len) {
                if (strict)
                    return SN_E_TRUNCATED;
                break; /* upstream stops quietly when the data ends early */
            }
            if (len - off < 3)
                return SN_E_TRUNCATED;
            t = q[2];
            if (t > 7)
                return SN_E_CORRUPT;
            if (len - off < 4 + t)
                return SN_E_TRUNCATED;
            c = 0;
            for (unsigned k = 0; k <= t; k++)
                c |= (uint64_t)q[3 + k] << (8 * k);
        }
        val = (int8_t)q[0];
        exp = (int8_t)q[1];
        off += 4 + t;
        r++;
        if (strict && c && t != width_tag(c, SN_HIST_EXACT_WIDTHS))
            return SN_E_CORRUPT; /* a count in more bytes than it needs */
        a = (unsigned)(val < 0 ? -val : val);
        if (c != 0 && a - 10 <= 89) { /* a value bucket: the common case */
            unsigned pos = (unsigned)(exp + 128) * 90 + a - 10;
            uint16_t o = (uint16_t)(val > 0 ? SN_BUCKET_ORD_POS + pos : SN_BUCKET_PER_SIGN - pos);
            if (h->used == 0 || o > h->ord[h->used - 1]) {
                h->ord[h->used] = o;
                h->cnt[h->used] = c;
                h->used++;
                continue;
            }
        }
        rc = decode_other(h, val, exp, c, strict);
        if (rc < 0)
            return rc;
    }
    if (strict && off != len)
        return SN_E_TRAILING;
    return (ssize_t)off;
}

ssize_t sn_hist_decode(struct sn_hist *h, const void *buf, size_t len, unsigned flags)
{
    ssize_t rc;

    sn_hist_reset(h);
    rc = decode(h, buf, len, flags);
    if (rc < 0)
        sn_hist_reset(h);
    SN_HIST_CHECK(h);
    return rc;
}

ssize_t sn_hist_decode_b64(struct sn_hist *h, const char *s, size_t len, unsigned flags)
{
    uint8_t stack[8192], *bin = stack;
    size_t max = sn_b64_decoded_max(len);
    ssize_t n, rc;

    sn_hist_reset(h);
    if (max > sizeof(stack)) {
        bin = malloc(max);
        if (!bin)
            return -ENOMEM;
    }
    if (flags & SN_HIST_STRICT)
        n = sn_b64_decode_strict(s, len, bin);
    else
        n = (ssize_t)sn_b64_decode_lenient(s, len, bin);
    if (n < 0) {
        rc = n;
    } else if (n < 2) {
        rc = SN_E_TRUNCATED;
    } else {
        rc = sn_hist_decode(h, bin, (size_t)n, flags);
        if (rc >= 0 && rc != n) /* upstream: the histogram must use every decoded byte */
            rc = SN_E_TRAILING;
        if (rc >= 0)
            rc = n;
    }
    if (rc < 0)
        sn_hist_reset(h);
    if (bin != stack)
        free(bin);
    return rc;
}
