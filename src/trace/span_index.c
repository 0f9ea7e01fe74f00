/*
 * The span store's chunks, index values and tags' Bloom filters (trace/span_index.h).
 */
#include "trace/span_index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/mix.h"

#define MINUTE_US   60000000u
#define MAX_NAME_ID ((1u << 28) - 1)

/* ---- Varints ------------------------------------------------------------------------------ */

static size_t var_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_var(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A varint at *p (before end) of at most 64 bits: false when damaged. */
static bool get_var(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static bool get_u32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    uint64_t x;
    if (!get_var(p, end, &x) || x > UINT32_MAX)
        return false;
    *v = (uint32_t)x;
    return true;
}

/* ---- Chunks ------------------------------------------------------------------------------- */

size_t sn_chunk_size(const struct sn_chunk_part *parts, size_t n, size_t ntraces)
{
    size_t z = 1 + var_len(n) + var_len(ntraces) + ntraces * 16;
    for (size_t i = 0; i < n; i++)
        z += var_len(parts[i].ntraces) + var_len(parts[i].bloom_len) + var_len(parts[i].blk_len) +
             parts[i].bloom_len + parts[i].blk_len;
    return z;
}

void sn_chunk_encode(const struct sn_chunk_part *parts, size_t n, const uint8_t *ids,
                     size_t ntraces, uint8_t *out)
{
    uint8_t *p = out;
    *p++ = SN_CHUNK_VERSION;
    p = put_var(p, n);
    p = put_var(p, ntraces);
    for (size_t i = 0; i < n; i++) {
        p = put_var(p, parts[i].ntraces);
        p = put_var(p, parts[i].bloom_len);
        p = put_var(p, parts[i].blk_len);
    }
    if (ntraces)
        memcpy(p, ids, ntraces * 16);
    p += ntraces * 16;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].bloom_len)
            memcpy(p, parts[i].bloom, parts[i].bloom_len);
        p += parts[i].bloom_len;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(p, parts[i].blk, parts[i].blk_len);
        p += parts[i].blk_len;
    }
}

int sn_chunk_parse(const void *buf, size_t len, struct sn_chunk *c)
{
    const uint8_t *p = buf, *end = p + len;
    uint32_t nb, nt, sum = 0;
    uint64_t bytes = 0;
    if (len < 1 || *p++ != SN_CHUNK_VERSION || !get_u32(&p, end, &nb) || !get_u32(&p, end, &nt) ||
        nb > nt || nb > len)
        return -EINVAL;
    c->nblocks = nb;
    c->ntraces = nt;
    c->descr = p;
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t t;
        uint64_t bl, kl;
        if (!get_u32(&p, end, &t) || !get_var(&p, end, &bl) || !get_var(&p, end, &kl) || !t ||
            bl > len || kl > len)
            return -EINVAL;
        sum += t;
        bytes += bl + kl;
        if (sum > nt || bytes > len)
            return -EINVAL;
    }
    if (sum != nt || (size_t)(end - p) / 16 < nt)
        return -EINVAL;
    c->ids = p;
    p += (size_t)nt * 16;
    if ((uint64_t)(end - p) != bytes)
        return -EINVAL;
    for (uint32_t i = 1; i < nt; i++) /* sorted and distinct, for sn_chunk_find() */
        if (memcmp(c->ids + (i - 1) * 16, c->ids + i * 16, 16) >= 0)
            return -EINVAL;
    c->data = p;
    c->end = end;
    return 0;
}

/* Walks the descriptors to block i (the header was checked by sn_chunk_parse()). */
int sn_chunk_block(const struct sn_chunk *c, uint32_t i, struct sn_chunk_block *out)
{
    const uint8_t *p = c->descr;
    uint64_t first = 0, blooms = 0, blks = 0, t = 0, bl = 0, kl = 0;
    if (i >= c->nblocks)
        return -EINVAL;
    for (uint32_t j = 0; j < c->nblocks; j++) {
        if (!get_var(&p, c->end, &t) || !get_var(&p, c->end, &bl) || !get_var(&p, c->end, &kl))
            return -EINVAL;
        if (j == i) {
            out->first = (uint32_t)first;
            out->ntraces = (uint32_t)t;
            out->bloom_len = (size_t)bl;
            out->blk_len = (size_t)kl;
            out->bloom = c->data + blooms;
        }
        if (j < i) {
            first += t;
            blks += kl;
        }
        blooms += bl;
    }
    out->blk = c->data + blooms + blks;
    return 0;
}

int64_t sn_chunk_find(const struct sn_chunk *c, const uint8_t id[16])
{
    size_t lo = 0, hi = c->ntraces;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(c->ids + mid * 16, id, 16);
        if (cmp == 0)
            return (int64_t)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int sn_chunk_block_of(const struct sn_chunk *c, uint32_t t, uint32_t *i, struct sn_chunk_block *out)
{
    const uint8_t *p = c->descr;
    uint64_t first = 0;
    for (uint32_t j = 0; j < c->nblocks; j++) {
        uint64_t n, bl, kl;
        if (!get_var(&p, c->end, &n) || !get_var(&p, c->end, &bl) || !get_var(&p, c->end, &kl))
            return -EINVAL;
        if (t < first + n) {
            *i = j;
            return sn_chunk_block(c, j, out);
        }
        first += n;
    }
    return -EINVAL;
}

/* ---- Index values ------------------------------------------------------------------------- */

static int cmp_ent(const void *a, const void *b)
{
    const struct sn_index_ent *x = a, *y = b;
#define CMP(f)                                                                                     \
    if (x->f != y->f)                                                                              \
        return x->f < y->f ? -1 : 1;
    CMP(us)
    CMP(trace)
    CMP(duration)
    CMP(name)
    CMP(kind)
    CMP(error)
    CMP(remote)
#undef CMP
    return 0;
}

/* The bits v needs (0 for 0). */
static unsigned width(uint32_t v)
{
    return v ? 32 - (unsigned)__builtin_clz(v) : 0;
}

/* Bits written and read least significant first, each entry's fields in turn. */
struct bits {
    uint8_t *p;
    uint64_t acc;
    unsigned n; /* bits in acc */
};

static void bits_put(struct bits *b, uint64_t v, unsigned w)
{
    if (!w) /* w <= 32: acc holds 7 bits at most between calls */
        return;
    b->acc |= (v & ((1ULL << w) - 1)) << b->n;
    b->n += w;
    while (b->n >= 8) {
        *b->p++ = (uint8_t)b->acc;
        b->acc >>= 8;
        b->n -= 8;
    }
}

static uint64_t bits_get(struct bits *b, unsigned w)
{
    while (b->n < w) { /* the caller checked the length: no read past end */
        b->acc |= (uint64_t)*b->p++ << b->n;
        b->n += 8;
    }
    uint64_t v = w ? b->acc & ((1ULL << w) - 1) : 0;
    b->acc = w < 64 ? b->acc >> w : 0;
    b->n -= w;
    return v;
}

enum { W_US, W_DUR, W_NAME, W_REMOTE, W_TRACE, NWIDTHS };
#define FIXED_BITS 4 /* kind (3), error (1) */

size_t sn_index_encode(struct sn_index_ent *e, size_t n, uint8_t *out)
{
    size_t m = 0;
    if (n > 1)
        qsort(e, n, sizeof(*e), cmp_ent);
    for (size_t i = 0; i < n; i++) /* a span sent twice in a request is one entry */
        if (!m || cmp_ent(&e[m - 1], &e[i]) != 0)
            e[m++] = e[i];
    /* each field's width: the bits of its largest value */
    unsigned w[NWIDTHS] = {0};
    uint32_t prev = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t v[NWIDTHS] = {e[i].us - prev, e[i].duration, e[i].name, e[i].remote, e[i].trace};
        prev = e[i].us;
        for (int f = 0; f < NWIDTHS; f++)
            if (width(v[f]) > w[f])
                w[f] = width(v[f]);
    }
    uint8_t *p = put_var(out, m);
    for (int f = 0; f < NWIDTHS; f++)
        *p++ = (uint8_t)w[f];
    struct bits b = {p, 0, 0};
    prev = 0;
    for (size_t i = 0; i < m; i++) {
        bits_put(&b, e[i].us - prev, w[W_US]);
        prev = e[i].us;
        bits_put(&b, e[i].duration, w[W_DUR]);
        bits_put(&b, e[i].name, w[W_NAME]);
        bits_put(&b, (uint64_t)(e[i].kind & 7) | (uint64_t)e[i].error << 3, FIXED_BITS);
        bits_put(&b, e[i].remote, w[W_REMOTE]);
        bits_put(&b, e[i].trace, w[W_TRACE]);
    }
    if (b.n)
        *b.p++ = (uint8_t)b.acc;
    return (size_t)(b.p - out);
}

/* An index value's header: its count and widths, and the bits an entry takes; false when
 * damaged or when its length is not what they say. */
static bool index_header(const uint8_t **p, const uint8_t *end, uint64_t *n, unsigned w[NWIDTHS],
                         unsigned *bits)
{
    if (!get_var(p, end, n) || end - *p < NWIDTHS)
        return false;
    *bits = FIXED_BITS;
    for (int f = 0; f < NWIDTHS; f++) {
        if ((w[f] = *(*p)++) > 32)
            return false;
        *bits += w[f];
    }
    /* the entries take their bits, rounded up to a byte: no more, no less */
    size_t left = (size_t)(end - *p);
    if (*n > (uint64_t)left * 8 / FIXED_BITS)
        return false;
    return (*n * *bits + 7) / 8 == left;
}

int64_t sn_index_count(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t n;
    unsigned w[NWIDTHS], bits;
    if (!index_header(&p, p + len, &n, w, &bits))
        return -EINVAL;
    return (int64_t)n;
}

int sn_index_decode(const void *buf, size_t len, struct sn_index_ent *out)
{
    const uint8_t *p = buf;
    uint64_t n, us = 0;
    unsigned w[NWIDTHS], bits;
    if (!index_header(&p, p + len, &n, w, &bits))
        return -EINVAL;
    struct bits b = {(uint8_t *)p, 0, 0};
    for (uint64_t i = 0; i < n; i++) {
        struct sn_index_ent *e = &out[i];
        us += bits_get(&b, w[W_US]);
        e->duration = (uint32_t)bits_get(&b, w[W_DUR]);
        uint64_t name = bits_get(&b, w[W_NAME]), ke = bits_get(&b, FIXED_BITS);
        e->remote = (uint32_t)bits_get(&b, w[W_REMOTE]);
        e->trace = (uint32_t)bits_get(&b, w[W_TRACE]);
        if (us >= MINUTE_US || name > MAX_NAME_ID)
            return -EINVAL;
        e->us = (uint32_t)us;
        e->name = (uint32_t)name;
        e->kind = (uint8_t)(ke & 7);
        e->error = ke >> 3;
    }
    return 0;
}

/* ---- Blooms --------------------------------------------------------------------------------- */

/* 8 bytes at a time, little-endian whatever the machine, so that a filter means the same on
 * every one */
static uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static uint64_t hash_bytes(const char *s, size_t n, uint64_t seed)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    for (; n >= 8; p += 8, n -= 8) {
        h = (h ^ load64(p)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = n; i-- > 0;)
        w = w << 8 | p[i];
    return sn_mix64(h ^ w);
}

uint64_t sn_tag_hash(const char *key, size_t klen, const char *value, size_t vlen, bool pair)
{
    uint64_t h = hash_bytes(key, klen, 0x736f6e6465ULL);
    if (pair)
        return sn_tag_hash_pair(h ? h : 1, value, vlen);
    return h ? h : 1; /* never 0: an empty slot in a set of them */
}

uint64_t sn_tag_hash_pair(uint64_t key_hash, const char *value, size_t vlen)
{
    uint64_t h = sn_mix64(key_hash ^ hash_bytes(value, vlen, 0x7061697273ULL));
    return h ? h : 1;
}

size_t sn_bloom_bytes(size_t n)
{
    return n ? (n * SN_BLOOM_BITS + 63) / 64 * 8 : 0;
}

void sn_bloom_add(uint8_t *bits, size_t len, uint64_t h)
{
    if (!len)
        return;
    uint64_t m = (uint64_t)len * 8, a = h, b = (h >> 32 | h << 32) | 1;
    for (int i = 0; i < SN_BLOOM_K; i++, a += b) {
        uint64_t bit = a % m;
        bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

bool sn_bloom_has(const uint8_t *bits, size_t len, uint64_t h)
{
    if (!len)
        return false;
    uint64_t m = (uint64_t)len * 8, a = h, b = (h >> 32 | h << 32) | 1;
    for (int i = 0; i < SN_BLOOM_K; i++, a += b) {
        uint64_t bit = a % m;
        if (!(bits[bit >> 3] & (1u << (bit & 7))))
            return false;
    }
    return true;
}
