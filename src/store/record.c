/*
 * A stored record: one slot <-> its compact bytes (the format is in record.h).
 *
 * Encoding reserves room once per part (the header, each histogram, each entry) and then
 * writes varints without further checks. Decoding checks the checksum first, then parses with
 * a reader that never looks past the record's end; every number of things it announces
 * (sources, entries, buckets) is checked against the bytes left before anything is allocated
 * for it, so a record cannot make the decoder allocate more than a small multiple of its own
 * size. Histograms are rebuilt by appending buckets in ascending order
 * (sn_hist_insert_raw_end(), O(1) each), never by searching. One parser serves both
 * sn_rec_decode() and sn_rec_buckets() (which only counts, allocating nothing).
 *
 * The encoding is canonical: varints in their shortest form, ordinals and source ids
 * gap-coded, no zero counts, entries in their keys' order; decoding a record and encoding the
 * slot again gives the same bytes (fuzz/fuzz_store_record.c checks it).
 *
 * What it does not check: that a slot's counts agree with its entries' or its histograms'.
 * They need not: counts saturate at UINT64_MAX, and a rolled-up point-scope record's counts
 * are sums of values, not numbers of events. The checksum guards the bytes; the counts are
 * whatever the encoder was given.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "core/grow.h"
#include "store/record.h"

#define VARINT_MAX  10 /* bytes of a u64 in LEB128 */
#define ORD_MAX     3  /* bytes of an ordinal or its gap: < SN_BUCKET_NORD < 2^21 */
#define CRC_LEN     4
#define FLAGS_ARITY 0x03

/* Which parts a record of an arity holds (record.h). */
static bool has_total(uint8_t arity, bool values)
{
    return arity == SN_WIRE_NUMERIC || (arity == SN_WIRE_SCALAR && values);
}

static bool has_entries(uint8_t arity)
{
    return arity == SN_WIRE_DISCRETE || arity == SN_WIRE_NUMERIC_BY_KEY;
}

static bool entry_has_hist(uint8_t arity, bool values)
{
    return arity == SN_WIRE_NUMERIC_BY_KEY || (arity == SN_WIRE_DISCRETE && values);
}

/* ------------------------------------------------------------------------------------------
 * Encoding
 */

void sn_rec_buf_fini(struct sn_rec_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes. Returns 0 or -ENOMEM (b unchanged). */
static int reserve(struct sn_rec_buf *b, size_t n)
{
    unsigned char *p;

    if (n > SIZE_MAX - b->len)
        return -ENOMEM;
    if (b->len + n <= b->cap)
        return 0;
    if (!(p = sn_grow(b->p, &b->cap, b->len + n, 1)))
        return -ENOMEM;
    b->p = p;
    return 0;
}

/* Writes v at p (room for VARINT_MAX bytes); returns the byte after it. */
static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* Appends histogram h (NULL: empty), its non-empty buckets only. Returns 0 or -ENOMEM. */
static int add_hist(struct sn_rec_buf *b, const struct sn_hist *h)
{
    const uint16_t *ord = NULL;
    const uint64_t *cnt = NULL;
    size_t nb = h ? sn_hist_raw(h, &ord, &cnt) : 0, used = 0;
    unsigned char *p;
    uint32_t next = 0; /* the smallest ordinal the next bucket can have */

    for (size_t i = 0; i < nb; i++)
        used += cnt[i] != 0;
    if (reserve(b, VARINT_MAX + used * (ORD_MAX + VARINT_MAX)) < 0) /* used < 2^16 */
        return -ENOMEM;
    p = put_varint(b->p + b->len, used);
    for (size_t i = 0; i < nb; i++) {
        if (!cnt[i])
            continue;
        p = put_varint(p, (uint32_t)ord[i] - next); /* ascending: ord >= next */
        p = put_varint(p, cnt[i]);
        next = (uint32_t)ord[i] + 1;
    }
    b->len = (size_t)(p - b->p);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Checks what the format cannot hold or would not decode. Returns 0 or -EINVAL. */
static int check_slot(const struct sn_ds_slot *s, uint8_t arity, bool values,
                      const uint32_t *key_ids, const uint32_t *src_ids)
{
    if (arity > SN_WIRE_NUMERIC_BY_KEY)
        return -EINVAL;
    if (s->n && (!has_entries(arity) || !key_ids || !s->e))
        return -EINVAL;
    if (s->nsrc && !src_ids)
        return -EINVAL;
    /* numeric by key's total is not stored (the decoder rebuilds it) */
    if (s->total && !has_total(arity, values) && arity != SN_WIRE_NUMERIC_BY_KEY)
        return -EINVAL;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->e[i].key || (s->e[i].hist && !entry_has_hist(arity, values)))
            return -EINVAL;
        if (i && strcmp(s->e[i - 1].key, s->e[i].key) >= 0)
            return -EINVAL; /* the decoder requires strictly ascending keys */
    }
    return 0;
}

ssize_t sn_rec_encode(const struct sn_ds_slot *s, uint8_t arity, bool values,
                      const uint32_t *key_ids, const uint32_t *src_ids, struct sn_rec_buf *b)
{
    const size_t start = b->len;
    uint32_t *sorted = NULL;
    const uint32_t *ids = src_ids;
    unsigned char *p;
    uint32_t crc;
    int rc;

    if ((rc = check_slot(s, arity, values, key_ids, src_ids)) < 0)
        return rc;
    for (uint32_t j = 1; j < s->nsrc; j++) {
        if (src_ids[j] > src_ids[j - 1])
            continue;
        /* not ascending: sort a copy (the store's ids usually are in order already) */
        if (!(sorted = malloc(s->nsrc * sizeof(*sorted))))
            return -ENOMEM;
        memcpy(sorted, src_ids, s->nsrc * sizeof(*sorted));
        qsort(sorted, s->nsrc, sizeof(*sorted), cmp_u32);
        for (uint32_t k = 1; k < s->nsrc; k++) {
            if (sorted[k] == sorted[k - 1]) {
                free(sorted);
                return -EINVAL; /* one source twice */
            }
        }
        ids = sorted;
        break;
    }

    rc = -ENOMEM;
    if (reserve(b, 2 + 4 * VARINT_MAX + (size_t)s->nsrc * VARINT_MAX) < 0) /* nsrc < 2^32 */
        goto out;
    p = b->p + b->len;
    *p++ = SN_REC_VERSION;
    *p++ = (unsigned char)(arity | (values ? SN_REC_VALUES : 0));
    p = put_varint(p, s->count);
    p = put_varint(p, s->over_cap);
    p = put_varint(p, s->map_full);
    p = put_varint(p, s->nsrc);
    for (uint32_t j = 0; j < s->nsrc; j++)
        p = put_varint(p, j ? (uint64_t)ids[j] - ids[j - 1] - 1 : ids[j]);
    b->len = (size_t)(p - b->p);

    if (has_total(arity, values) && add_hist(b, s->total) < 0)
        goto out;
    if (has_entries(arity)) {
        if (reserve(b, VARINT_MAX) < 0)
            goto out;
        b->len = (size_t)(put_varint(b->p + b->len, s->n) - b->p);
        for (size_t i = 0; i < s->n; i++) {
            if (reserve(b, 2 * VARINT_MAX) < 0)
                goto out;
            p = put_varint(b->p + b->len, key_ids[i]);
            b->len = (size_t)(put_varint(p, s->e[i].count) - b->p);
            if (entry_has_hist(arity, values) && add_hist(b, s->e[i].hist) < 0)
                goto out;
        }
    }
    if (reserve(b, CRC_LEN) < 0)
        goto out;
    crc = sn_crc32c(0, b->p + start, b->len - start);
    p = b->p + b->len;
    for (int k = 0; k < CRC_LEN; k++)
        p[k] = (unsigned char)(crc >> (8 * k));
    b->len += CRC_LEN;
    rc = 0;
out:
    free(sorted);
    if (rc < 0) {
        b->len = start;
        return rc;
    }
    return (ssize_t)(b->len - start);
}

/* ------------------------------------------------------------------------------------------
 * Decoding
 */

/* A position in a record's body (the checksum excluded). */
struct rd {
    const unsigned char *p, *end;
};

/* Reads a varint: 0, SN_E_TRUNCATED (the body ends inside it), or SN_E_CORRUPT (longer than
 * its shortest form, or past 64 bits). */
static inline int get_varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;
    unsigned shift = 0;

    if (r->p < r->end && *r->p < 0x80) { /* one byte: most of them */
        *v = *r->p++;
        return 0;
    }
    for (;;) {
        if (r->p == r->end)
            return SN_E_TRUNCATED;
        unsigned char c = *r->p++;
        if (shift == 63 && c > 1)
            return SN_E_CORRUPT; /* the 10th byte holds bit 63 only */
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift)
                return SN_E_CORRUPT; /* overlong: a final zero byte */
            *v = x;
            return 0;
        }
        shift += 7;
    }
}

static inline size_t left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* get_varint() with the one- and two-byte forms (ordinal gaps, most counts) inline. */
static inline int get_varint12(struct rd *r, uint64_t *v)
{
    const unsigned char *p = r->p;

    if (p < r->end && p[0] < 0x80) {
        *v = p[0];
        r->p = p + 1;
        return 0;
    }
    if (r->end - p >= 2 && p[1] - 1u < 0x7fu) { /* p[1] in 1..127 ends a shortest 2-byte form */
        *v = (p[0] & 0x7fu) | (uint64_t)p[1] << 7;
        r->p = p + 2;
        return 0;
    }
    return get_varint(r, v);
}

/* Histograms up to this many buckets are gathered on the stack. */
#define STACK_BUCKETS 128

/*
 * Reads a histogram into *out (created; out NULL: only counted into *nbuckets).
 *
 * The histogram is not built bucket by bucket (sn_hist_insert_raw_end() costs ~40
 * instructions a bucket, and grows its arrays three times on the way to 40 buckets): the
 * ordinals and counts are gathered as they are checked, then copied in at once with one exact
 * allocation (sn_hist_append_ords()).
 */
static int get_hist(struct rd *r, struct sn_hist **out, uint64_t *nbuckets)
{
    uint16_t sord[STACK_BUCKETS], *ord = sord;
    uint64_t scnt[STACK_BUCKETS], *cnt = scnt;
    uint64_t n, gap, c, next = 0;
    struct sn_hist *h = NULL;
    int rc;

    if ((rc = get_varint(r, &n)) < 0)
        return rc;
    if (n > SN_BUCKET_NORD)
        return SN_E_CORRUPT;
    if (n > left(r) / 2) /* each bucket takes two bytes at least */
        return SN_E_TRUNCATED;
    if (out && n > STACK_BUCKETS) {
        ord = malloc(n * sizeof(*ord));
        cnt = malloc(n * sizeof(*cnt));
        if (!ord || !cnt) {
            rc = -ENOMEM;
            goto out;
        }
    }
    /* a local copy of the position: the stores into ord and cnt cannot alias it */
    struct rd in = *r;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = get_varint12(&in, &gap)) < 0 || (rc = get_varint12(&in, &c)) < 0)
            goto out;
        rc = SN_E_CORRUPT;
        if (gap >= SN_BUCKET_NORD - next || c == 0)
            goto out; /* an ordinal past the last bucket, or an empty bucket */
        next += gap;
        if (out) {
            ord[i] = (uint16_t)next;
            cnt[i] = c;
        }
        next++;
    }
    r->p = in.p;
    rc = 0;
    if (out) {
        rc = -ENOMEM;
        if (!(h = sn_hist_create()))
            goto out;
        /* ascending and in range by construction: only memory can fail */
        if (sn_hist_append_ords(h, ord, cnt, (size_t)n) < 0) {
            sn_hist_destroy(h);
            goto out;
        }
        *out = h;
        rc = 0;
    }
    *nbuckets += n;
out:
    if (ord != sord)
        free(ord);
    if (cnt != scnt)
        free(cnt);
    return rc;
}

/* The names table a record's key ids refer to (NULL when only counting). */
struct names {
    const char *const *name;
    uint32_t n;
};

/* Parses the body r into *s (NULL: only counts buckets into *nbuckets). On failure *s holds
 * what was built so far, for sn_ds_slot_fini(). */
static int parse(struct rd *r, const struct names *nm, struct sn_ds_slot *s,
                 struct sn_rec_info *info, uint64_t *nbuckets)
{
    uint64_t count, over_cap, map_full, nsrc, n, v;
    uint8_t arity, flags;
    bool values;
    int rc;

    if (left(r) < 2)
        return SN_E_TRUNCATED;
    if (r->p[0] != SN_REC_VERSION)
        return SN_E_CORRUPT;
    flags = r->p[1];
    if (flags & ~(FLAGS_ARITY | SN_REC_VALUES))
        return SN_E_CORRUPT;
    r->p += 2;
    arity = flags & FLAGS_ARITY;
    values = flags & SN_REC_VALUES;
    if (info) {
        info->arity = arity;
        info->values = values;
    }
    if ((rc = get_varint(r, &count)) < 0 || (rc = get_varint(r, &over_cap)) < 0 ||
        (rc = get_varint(r, &map_full)) < 0 || (rc = get_varint(r, &nsrc)) < 0)
        return rc;
    if (nsrc > UINT32_MAX)
        return SN_E_CORRUPT;
    if (nsrc > left(r)) /* a byte each at least */
        return SN_E_TRUNCATED;
    if (s) {
        s->count = count;
        s->over_cap = over_cap;
        s->map_full = map_full;
        if (nsrc && !(s->src = malloc(nsrc * sizeof(*s->src))))
            return -ENOMEM;
    }
    for (uint64_t j = 0, id = 0; j < nsrc; j++) {
        if ((rc = get_varint(r, &v)) < 0)
            return rc;
        if (v > UINT32_MAX - id || (j && v == UINT32_MAX - id))
            return SN_E_CORRUPT; /* an id past 32 bits */
        id += j ? v + 1 : v;
        if (s)
            s->src[s->nsrc++] = (uint32_t)id;
    }

    if (has_total(arity, values) && (rc = get_hist(r, s ? &s->total : NULL, nbuckets)) < 0)
        return rc;
    if (!has_entries(arity))
        return 0;

    bool eh = entry_has_hist(arity, values);
    const char *prev = NULL;
    if ((rc = get_varint(r, &n)) < 0)
        return rc;
    if (n > left(r) / (eh ? 3 : 2)) /* id, count (and a histogram's length) */
        return SN_E_TRUNCATED;
    if (s && n) {
        if (!(s->e = calloc(n, sizeof(*s->e))))
            return -ENOMEM;
        s->cap = n;
    }
    if (s && arity == SN_WIRE_NUMERIC_BY_KEY && !(s->total = sn_hist_create()))
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        struct sn_ds_entry *e = s ? &s->e[s->n] : NULL;
        uint64_t id, c;

        if ((rc = get_varint(r, &id)) < 0 || (rc = get_varint(r, &c)) < 0)
            return rc;
        if (nm) {
            const char *name = id < nm->n ? nm->name[id] : NULL;
            if (!name || (prev && strcmp(prev, name) >= 0))
                return SN_E_CORRUPT; /* an unknown key, or keys out of order */
            prev = name;
        }
        if (eh && (rc = get_hist(r, e ? &e->hist : NULL, nbuckets)) < 0)
            return rc;
        if (e) {
            s->n++; /* from here on sn_ds_slot_fini() frees the entry */
            e->count = c;
            if (!(e->key = strdup(prev)))
                return -ENOMEM;
            if (arity == SN_WIRE_NUMERIC_BY_KEY && sn_hist_merge(s->total, e->hist) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* Checks the length and the checksum, then parses. */
static int decode(const void *buf, size_t len, const struct names *nm, struct sn_ds_slot *s,
                  struct sn_rec_info *info, uint64_t *nbuckets)
{
    const unsigned char *b = buf;
    struct rd r;
    uint32_t crc;
    int rc;

    if (len < CRC_LEN || !buf)
        return SN_E_TRUNCATED;
    crc = (uint32_t)b[len - 4] | (uint32_t)b[len - 3] << 8 | (uint32_t)b[len - 2] << 16 |
          (uint32_t)b[len - 1] << 24;
    if (sn_crc32c(0, b, len - CRC_LEN) != crc)
        return SN_E_CORRUPT;
    r.p = b;
    r.end = b + len - CRC_LEN;
    if ((rc = parse(&r, nm, s, info, nbuckets)) < 0)
        return rc;
    return r.p == r.end ? 0 : SN_E_TRAILING;
}

int sn_rec_decode(const void *buf, size_t len, const char *const *names, uint32_t nnames,
                  struct sn_ds_slot *out, struct sn_rec_info *info)
{
    struct names nm = {names, names ? nnames : 0};
    uint64_t nb = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (info)
        memset(info, 0, sizeof(*info));
    if ((rc = decode(buf, len, &nm, out, info, &nb)) < 0) {
        sn_ds_slot_fini(out);
        memset(out, 0, sizeof(*out));
        if (info)
            memset(info, 0, sizeof(*info));
    }
    return rc;
}

ssize_t sn_rec_buckets(const void *buf, size_t len)
{
    uint64_t nb = 0;
    int rc = decode(buf, len, NULL, NULL, NULL, &nb);

    return rc < 0 ? rc : (ssize_t)nb; /* nb < len */
}
