/*
 * Blocks of spans (trace/span_block.h). The payload holds each span as:
 *
 *   [trace_id[16] unless flag 128: the span before's] span_id[8] flags:u8 (SN_SPAN_F_*, and 128
 *   when the span before is of the same trace) [when SN_SPAN_F_PARENT: varint j, the parent being
 * the span j before it in the block, or 0 and parent_id[8]] kind:u8 status:u8 varint start_ns -
 * base, varint duration_ns str name, service, status_msg, trace_state, scope_name, scope_version;
 * str? origin (NULL: none; the same for a request's spans: a byte zstd takes to nearly nothing)
 * varint otlp_flags endpoint local (its service is the span's), [str? service + endpoint remote
 * when F_REMOTE] attrs span attributes, varint resource (its index in the block's table + 1; 0:
 * none) varint nevents, each: zigzag varint t_ns - start_ns, str name, attrs, varint dropped varint
 * nlinks, each: trace_id[16] span_id[8] str trace_state varint flags attrs varint dropped varint
 * dropped_attrs, dropped_events, dropped_links
 *
 * after the block's tables: its strings (varint count, each a str: names, keys ...), each
 * string's attributes as a key (varint count, each: u8 type, its value as a skeleton and runs,
 * or whole: "Values as skeletons and runs" below), the runs, and its distinct resources
 * (varint count, each as attrs: the spans of a request share a few). attrs is a varint count
 * and each attribute's key index (in the keys' stream) and rank (in the ranks' stream): an
 * attribute (a key and a value: most come from small sets) is written once a block, and a
 * span's list of keys compresses to little (a route's spans repeat it). str is a varint
 * length and the bytes, str? a varint length + 1 (0: none), endpoint a byte of bits (1 ipv4,
 * 2 ipv6, 4 port) and what they say. docs/formats.md ("Spans") has the whole format.
 */
#include "trace/span_block.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/grow.h"
#include "trace/span_index.h"

#define VERSION      3
#define F_ZSTD       1 /* the payload is a zstd frame */
#define F_NOIDS      2 /* its spans' trace ids are not in it: its chunk lists them (the store's) */
#define T_SKEL       0x80 /* a value's type byte: written as its skeleton and runs */
#define F_SAME_TRACE 0x80 /* a span's flags byte: of the trace of the span before (no id) */

/* The payload's streams after its tables: like fields of every span together, so that the
 * compressor sees ids among ids, times among times, strings among strings. */
enum { S_ID, S_NUM, S_STR, S_AKEY, S_ATTR, S_MISC, NSTREAMS };
#define PARENT_BACK 256 /* how far back a parent is looked for among the block's spans */

/* ---- Writing ------------------------------------------------------------------------------ */

struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static unsigned char *need(struct wbuf *w, size_t n)
{
    if (w->oom)
        return NULL;
    if (w->len + n > w->cap || !w->p) { /* a buffer even for 0 bytes: no offset on NULL */
        unsigned char *p = sn_grow(w->p, &w->cap, w->len + n ? w->len + n : 1, 1);
        if (!p) {
            w->oom = true;
            return NULL;
        }
        w->p = p;
    }
    return w->p + w->len;
}

static void put_u8(struct wbuf *w, uint8_t v)
{
    unsigned char *p = need(w, 1);
    if (p) {
        *p = v;
        w->len++;
    }
}

static void put_raw(struct wbuf *w, const void *src, size_t n)
{
    unsigned char *p = need(w, n);
    if (p && n) {
        memcpy(p, src, n);
        w->len += n;
    }
}

static void put_var(struct wbuf *w, uint64_t v)
{
    unsigned char *p = need(w, 10);
    if (!p)
        return;
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    w->len += n;
}

static void put_bytes(struct wbuf *w, const char *s, size_t n)
{
    put_var(w, n);
    put_raw(w, s, n);
}

/* ---- The block's tables of attribute keys and attributes ------------------------------- */

struct tkey {
    const char *s;
    size_t len;
    uint64_t h;     /* dedup_hash() */
    uint64_t tag;   /* sn_tag_hash(), made for the Bloom filter (0: not yet) */
    bool span;      /* a span's attribute has it as its key: a tag (its Bloom filter) */
    uint32_t nvals; /* the attributes with this key */
    uint32_t intro; /* of which were referred to so far */
    uint32_t last;  /* the rank + 1 of the last one referred to (0: none yet) */
};
struct tval {
    uint32_t key;
    uint8_t type;
    const char *val;
    uint32_t vlen;
    uint64_t h; /* dedup_hash(): the Bloom filter's is made at the end, once a value */
    bool span;
    uint32_t rank; /* among its key's attributes, in the order met */
};
struct tabs {
    struct tkey *k;
    size_t nk, capk;
    struct tval *v;
    size_t nv, capv;
    uint64_t *kslot, *vslot; /* SLOT()s; 0 empty */
    const char *pc[256];     /* strings met lately by their pointer (decoders share copies) */
    uint32_t pci[256];       /* and their index */
    size_t kcap, vcap;
    uint64_t extra[64]; /* other tags: events' names, "error" */
    size_t nextra;
    bool extra_full; /* more than that: the filter lets everything through */
    bool oom;
};

/* A slot of the open-addressing arrays: the item's index + 1 in the low half (0: empty), the
 * high half of its hash in the high one, so that a probe past another item does not read it. */
#define SLOT(h, i) (((h)&0xffffffff00000000ULL) | ((uint64_t)(i) + 1))
#define SLOT_I(x)  ((uint32_t)(x)-1)
#define SLOT_HI(x) ((x) >> 32)

/* Grows an open-addressing slot array to twice its size when n + 1 passes half of it. */
static bool rehash(uint64_t **slot, size_t *cap, size_t n, const void *items, size_t isize,
                   size_t hoff)
{
    if ((n + 1) * 2 <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 256;
    uint64_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, (const char *)items + i * isize + hoff, 8);
        size_t j = (size_t)(h >> 17) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = SLOT(h, i);
    }
    free(*slot);
    *slot = ns;
    *cap = ncap;
    return true;
}

static uint32_t key_find(struct tabs *t, const char *key, size_t len, bool span);

/* ---- A hash for the tables alone (never stored) ------------------------------------------ */

static uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A value's hash in the block's tables: 16 bytes a 64x64->128-bit multiply, the last bytes
 * read as two loads that may overlap, so that a value costs a few multiplies where the Bloom
 * filter's hash (sn_tag_hash_pair(), a multiply and a shift for every 8 bytes, its tail a byte
 * at a time, and two finalizers) costs several times that; that one is made once a distinct
 * value of a span, at the block's end, rather than for each of a block's thousands of
 * attributes. In memory only: its value never reaches a block or a filter. */
static uint64_t dedup_hash(uint64_t seed, const char *v, size_t n)
{
    const unsigned char *p = (const unsigned char *)v;
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL), x = 0, y = 0;
    for (; n > 16; p += 16, n -= 16) {
        memcpy(&x, p, 8);
        memcpy(&y, p + 8, 8);
        h = mum(x ^ h ^ 0xa0761d6478bd642fULL, y ^ 0xe7037ed1a0b428dbULL);
    }
    if (n >= 8) {
        memcpy(&x, p, 8);
        memcpy(&y, p + n - 8, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        x = a;
        y = b;
    } else if (n) {
        x = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
    }
    h = mum(x ^ h ^ 0xa0761d6478bd642fULL, y ^ 0x8ebc6af09c88c6e3ULL);
    return mum(h, 0x589965cc75374cc3ULL ^ n) | 1; /* never 0 */
}

/* A string's index in the table (added when new). */
static uint32_t key_index(struct tabs *t, const char *key, bool span)
{
    size_t ps = (size_t)((uintptr_t)key >> 3 ^ (uintptr_t)key >> 11) & 255;
    if (t->pc[ps] == key) {
        t->k[t->pci[ps]].span |= span;
        return t->pci[ps];
    }
    uint32_t i = key_find(t, key, strlen(key), span);
    if (!t->oom) {
        t->pc[ps] = key;
        t->pci[ps] = i;
    }
    return i;
}

static uint32_t key_find(struct tabs *t, const char *key, size_t len, bool span)
{
    uint64_t h = dedup_hash(0x736f6e6465ULL, key, len);
    if (!rehash(&t->kslot, &t->kcap, t->nk, t->k, sizeof(*t->k), offsetof(struct tkey, h))) {
        t->oom = true;
        return 0;
    }
    size_t j = (size_t)(h >> 17) & (t->kcap - 1);
    for (uint64_t x; (x = t->kslot[j]); j = (j + 1) & (t->kcap - 1)) {
        if (SLOT_HI(x) != h >> 32)
            continue;
        struct tkey *k = &t->k[SLOT_I(x)];
        if (k->h == h && k->len == len && memcmp(k->s, key, len) == 0) {
            k->span |= span;
            return SLOT_I(x);
        }
    }
    struct tkey *nk = sn_grow(t->k, &t->capk, t->nk + 1, sizeof(*nk));
    if (!nk) {
        t->oom = true;
        return 0;
    }
    t->k = nk;
    nk[t->nk] = (struct tkey){key, len, h, 0, span, 0, 0, 0};
    t->kslot[j] = SLOT(h, t->nk);
    return (uint32_t)t->nk++;
}

static uint32_t val_index(struct tabs *t, const struct sn_span_kv *a, bool span)
{
    uint32_t key = key_index(t, a->key, span);
    if (t->oom)
        return 0;
    uint64_t h = dedup_hash(t->k[key].h, a->val, a->vlen);
    if (!rehash(&t->vslot, &t->vcap, t->nv, t->v, sizeof(*t->v), offsetof(struct tval, h))) {
        t->oom = true;
        return 0;
    }
    size_t j = (size_t)(h >> 17) & (t->vcap - 1);
    for (uint64_t x; (x = t->vslot[j]); j = (j + 1) & (t->vcap - 1)) {
        if (SLOT_HI(x) != h >> 32)
            continue;
        struct tval *v = &t->v[SLOT_I(x)];
        if (v->h == h && v->key == key && v->type == a->type && v->vlen == a->vlen &&
            memcmp(v->val, a->val, a->vlen) == 0) {
            v->span |= span;
            return SLOT_I(x);
        }
    }
    struct tval *nv = sn_grow(t->v, &t->capv, t->nv + 1, sizeof(*nv));
    if (!nv) {
        t->oom = true;
        return 0;
    }
    t->v = nv;
    nv[t->nv] = (struct tval){key, a->type, a->val, a->vlen, h, span, t->k[key].nvals++};
    t->vslot[j] = SLOT(h, t->nv);
    return (uint32_t)t->nv++;
}

/* A key's tag hash (its Bloom filter's, and its values' seed there), made once a block. */
static uint64_t key_tag(struct tkey *k)
{
    if (!k->tag)
        k->tag = sn_tag_hash(k->s, k->len, NULL, 0, false);
    return k->tag;
}

/* Empties the tables for another block, keeping their memory. */
static void tabs_clear(struct tabs *t)
{
    t->nk = t->nv = t->nextra = 0;
    t->extra_full = t->oom = false;
    if (t->kslot)
        memset(t->kslot, 0, t->kcap * sizeof(*t->kslot));
    if (t->vslot)
        memset(t->vslot, 0, t->vcap * sizeof(*t->vslot));
    memset(t->pc, 0, sizeof(t->pc));
}

static void tabs_fini(struct tabs *t)
{
    free(t->k);
    free(t->v);
    free(t->kslot);
    free(t->vslot);
}

/* ---- Values as skeletons and runs ------------------------------------------------------ */

/* A value's runs: its maximal runs of lowercase hex digits [0-9a-f] with a decimal digit among
 * them (ids, numbers, UUIDs' groups, hex refs); its skeleton: the value with each run replaced
 * by RUN_MARK. The values of a key of high cardinality differ mostly in their runs (an URL's
 * id and ref, a path's id, a user id): their skeletons repeat, which zstd matches, and their
 * runs, together after the table (each ended by RUN_END), are the digits zstd codes in about
 * 4 bits each wherever they are, but no longer break the matches of the text around them. On
 * bench-trace's heavy profile the table of values takes 45.7 B a span compressed rather than
 * 54.6 (with put_skel()'s references). A value holding a byte 0x00 or RUN_MARK is written
 * whole. */
#define RUN_MARK  '\x01'
#define SKEL_RUNS 16 /* runs of a value whose ends get_skel() keeps */
#define RUN_END   ','

/* Whether a byte of the 8 in x is below n (n <= 128), or between m and n exclusive (m < 128,
 * n <= 128): the bit tricks of "Bit Twiddling Hacks" (Sean Eron Anderson), 8 bytes at once. */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static uint64_t has_less(uint64_t x, uint64_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static uint64_t has_between(uint64_t x, uint64_t m, uint64_t n)
{
    return (ONES * (127 + n) - (x & ONES * 127)) & ~x & ((x & ONES * 127) + ONES * (127 - m)) &
           HIGHS;
}

static bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (unsigned)(c - 'a') < 6;
}

/* The skeleton of value v (len bytes) into sk (len bytes at least), its runs appended to w;
 * the skeleton's length, or SIZE_MAX when v is to be written whole (or memory is short: w's
 * oom says). 8 bytes at a time while they hold no decimal digit (most of a value's text),
 * else a byte at a time; a digit's run takes the hex letters before it back from the
 * skeleton (each letter there is a copy of the value's byte before, up to a RUN_MARK). */
static size_t skeleton(const char *v, size_t len, char *sk, struct wbuf *w)
{
    const unsigned char *p = (const unsigned char *)v;
    unsigned char *o = need(w, 2 * len); /* a run and its end: 2 bytes a byte at most */
    size_t n = 0, m = 0, i = 0;
    if (!o)
        return SIZE_MAX;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if (has_less(x, (unsigned char)RUN_MARK + 1))
                return SIZE_MAX; /* nothing kept in w */
            if (!has_between(x, '0' - 1, '9' + 1)) {
                memcpy(sk + n, p + i, 8);
                n += 8;
                i += 8;
                continue;
            }
        }
        for (size_t stop = len - i >= 8 ? i + 8 : len; i < stop;) {
            unsigned char c = p[i];
            if (c <= (unsigned char)RUN_MARK)
                return SIZE_MAX;
            if (!is_digit(c)) {
                sk[n++] = (char)c;
                i++;
                continue;
            }
            size_t from = i, j = i + 1;
            while (n > 0 && (unsigned)((unsigned char)sk[n - 1] - 'a') < 6) {
                n--;
                from--;
            }
            while (j < len && is_hex(p[j]))
                j++;
            sk[n++] = RUN_MARK;
            memcpy(o + m, p + from, j - from);
            m += j - from;
            o[m++] = RUN_END;
            i = j;
            break; /* 8 at a time again from the run's end */
        }
    }
    w->len += m;
    return n;
}

static void extra_tag(struct tabs *t, uint64_t h)
{
    for (size_t i = 0; i < t->nextra; i++)
        if (t->extra[i] == h)
            return;
    if (t->nextra < sizeof(t->extra) / sizeof(t->extra[0]))
        t->extra[t->nextra++] = h;
    else
        t->extra_full = true; /* a block's events have few names: hardly ever */
}

/* Each attribute as its key's index in the string table and its value's: 0 for the next of
 * that key's values not referred to yet (the table lists each key's values in the order they
 * are first met), 1 for the value the key had last, else its rank + 2 among them. A value of
 * high cardinality is then a 0, one of a trace's (a user, a session: the spans before it in
 * the block are of its trace) a 1, and one of a small set a small number, all of which
 * compress to little. */
static void put_attrs(struct wbuf *w, struct tabs *t, const struct sn_span_kv *a, uint32_t n,
                      bool span)
{
    put_var(&w[S_AKEY], n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t vi = val_index(t, &a[i], span);
        if (t->oom)
            return;
        struct tval *v = &t->v[vi];
        struct tkey *k = &t->k[v->key];
        put_var(&w[S_AKEY], v->key);
        if (v->rank == k->intro) {
            put_var(&w[S_ATTR], 0);
            k->intro++;
        } else if (v->rank + 1 == k->last) {
            put_var(&w[S_ATTR], 1);
        } else {
            put_var(&w[S_ATTR], (uint64_t)v->rank + 2);
        }
        k->last = v->rank + 1;
    }
}

/* A string as its index in the block's string table. */
static void put_sref(struct wbuf *w, struct tabs *t, const char *s)
{
    put_var(w, key_index(t, s ? s : "", false));
}

static void put_endpoint(struct wbuf *w, const struct sn_span_endpoint *e)
{
    put_u8(w, (uint8_t)((e->has_ipv4 ? 1 : 0) | (e->has_ipv6 ? 2 : 0) | (e->port ? 4 : 0)));
    if (e->has_ipv4)
        put_raw(w, e->ipv4, 4);
    if (e->has_ipv6)
        put_raw(w, e->ipv6, 16);
    if (e->port)
        put_var(w, e->port);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* w: the streams (S_ID ...) */
static void put_span(struct wbuf *w, struct tabs *t, const struct sn_span *spans, size_t at,
                     uint64_t base, uint32_t res, bool noids)
{
    const struct sn_span *s = &spans[at], *prev = at ? &spans[at - 1] : NULL;
    bool same = prev && memcmp(prev->trace_id, s->trace_id, 16) == 0;
    if (!same && !noids) /* a trace's spans are together: its id once (or in the chunk) */
        put_raw(&w[S_ID], s->trace_id, 16);
    put_raw(&w[S_ID], s->span_id, 8);
    put_u8(&w[S_MISC], (uint8_t)((s->flags & ~F_SAME_TRACE) | (same ? F_SAME_TRACE : 0)));
    if (s->flags & SN_SPAN_F_PARENT) { /* the nearest span before it of that id, or the id */
        size_t j = 1;
        for (; j <= at && j <= PARENT_BACK; j++)
            if (memcmp(spans[at - j].span_id, s->parent_id, 8) == 0)
                break;
        if (j <= at && j <= PARENT_BACK) {
            put_var(&w[S_MISC], j);
        } else {
            put_var(&w[S_MISC], 0);
            put_raw(&w[S_ID], s->parent_id, 8);
        }
    }
    put_u8(&w[S_MISC], s->kind);
    put_u8(&w[S_MISC], s->status);
    if (prev && memcmp(prev->trace_id, s->trace_id, 16) == 0) /* a trace's spans are close */
        put_var(&w[S_NUM], zigzag((int64_t)(s->start_ns - prev->start_ns)));
    else
        put_var(&w[S_NUM], s->start_ns - base);
    put_var(&w[S_NUM], s->duration_ns);
    put_sref(&w[S_STR], t, s->name);
    put_sref(&w[S_STR], t, s->service);
    put_sref(&w[S_STR], t, s->status_msg);
    put_sref(&w[S_STR], t, s->trace_state);
    put_sref(&w[S_STR], t, s->scope_name);
    put_sref(&w[S_STR], t, s->scope_version);
    put_var(&w[S_STR], s->origin ? (uint64_t)key_index(t, s->origin, false) + 1 : 0);
    put_var(&w[S_MISC], s->otlp_flags);
    put_endpoint(&w[S_MISC], &s->local);
    if (s->flags & SN_SPAN_F_REMOTE) {
        put_var(&w[S_STR],
                s->remote.service ? (uint64_t)key_index(t, s->remote.service, false) + 1 : 0);
        put_endpoint(&w[S_MISC], &s->remote);
    }
    put_attrs(w, t, s->attrs, s->nattrs, true);
    put_var(&w[S_AKEY], res);
    put_var(&w[S_MISC], s->nevents);
    for (uint32_t i = 0; i < s->nevents; i++) {
        const struct sn_span_event *e = &s->events[i];
        put_var(&w[S_NUM], zigzag((int64_t)(e->t_ns - s->start_ns)));
        put_sref(&w[S_STR], t, e->name);
        put_attrs(w, t, e->attrs, e->nattrs, false);
        extra_tag(t, sn_tag_hash(e->name, strlen(e->name), NULL, 0, false));
        put_var(&w[S_MISC], e->dropped_attrs);
    }
    put_var(&w[S_MISC], s->nlinks);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const struct sn_span_link *l = &s->links[i];
        put_raw(&w[S_ID], l->trace_id, 16);
        put_raw(&w[S_ID], l->span_id, 8);
        put_sref(&w[S_STR], t, l->trace_state);
        put_var(&w[S_MISC], l->flags);
        put_attrs(w, t, l->attrs, l->nattrs, false);
        put_var(&w[S_MISC], l->dropped_attrs);
    }
    put_var(&w[S_MISC], s->dropped_attrs);
    put_var(&w[S_MISC], s->dropped_events);
    put_var(&w[S_MISC], s->dropped_links);
    if (s->status == SN_STATUS_ERROR) { /* Zipkin's error tag (trace/query.c) */
        const char *m = s->status_msg ? s->status_msg : "";
        uint64_t eh = sn_tag_hash("error", 5, NULL, 0, false);
        extra_tag(t, eh);
        extra_tag(t, sn_tag_hash_pair(eh, m, strlen(m)));
    }
}

static size_t attrs_size(const struct sn_span_kv *a, uint32_t n)
{
    size_t z = 5;
    for (uint32_t i = 0; i < n; i++)
        z += a[i].vlen + 40; /* keys are short: an estimate, for cutting blocks */
    return z;
}

size_t sn_block_span_size(const struct sn_span *s)
{
    size_t z = 64 + strlen(s->name) + strlen(s->service) + strlen(s->status_msg) +
               strlen(s->trace_state) + strlen(s->scope_name) + strlen(s->scope_version) + 80;
    if (s->remote.service)
        z += strlen(s->remote.service);
    if (s->origin)
        z += strlen(s->origin);
    z += attrs_size(s->attrs, s->nattrs) + 2; /* the resource: a reference */
    for (uint32_t i = 0; i < s->nevents; i++)
        z += 20 + strlen(s->events[i].name) + attrs_size(s->events[i].attrs, s->events[i].nattrs);
    for (uint32_t i = 0; i < s->nlinks; i++)
        z += 40 + strlen(s->links[i].trace_state) +
             attrs_size(s->links[i].attrs, s->links[i].nattrs);
    return z;
}

/* ---- zstd's contexts, one of each per thread, reused from block to block ------------------ */

struct skel;
struct zstreams {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    /* the encoder's buffers and tables, kept from block to block: a block's streams and
     * payload take some 300 KiB, which growing anew for each block copied and faulted in */
    struct wbuf body[NSTREAMS], pay, runs, blk;
    struct tabs t;
    struct skel *skel; /* put_skel()'s table */
    size_t skelcap;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static _Thread_local struct zstreams *tl_z; /* also in zkey, whose destructor frees it */

static void zfree(void *p)
{
    struct zstreams *z = p;
    ZSTD_freeCCtx(z->zc);
    ZSTD_freeDCtx(z->zd);
    for (int i = 0; i < NSTREAMS; i++)
        free(z->body[i].p);
    free(z->pay.p);
    free(z->runs.p);
    free(z->blk.p);
    free(z->skel);
    tabs_fini(&z->t);
    free(z);
}

static void zkey_make(void)
{
    pthread_key_create(&zkey, zfree);
}

static struct zstreams *zs(void)
{
    if (!tl_z) {
        pthread_once(&zonce, zkey_make);
        if (!(tl_z = calloc(1, sizeof(*tl_z))))
            return NULL;
        pthread_setspecific(zkey, tl_z);
    }
    return tl_z;
}

static ZSTD_CCtx *zstd_c(void)
{
    struct zstreams *z = zs();
    if (z && !z->zc)
        z->zc = ZSTD_createCCtx();
    return z ? z->zc : NULL;
}

static ZSTD_DCtx *zstd_d(void)
{
    struct zstreams *z = zs();
    if (z && !z->zd)
        z->zd = ZSTD_createDCtx();
    return z ? z->zd : NULL;
}

/* Compresses src at level. At level 1 (the default: the fast strategy) with a larger hash
 * table (2^16) and matches from 5 bytes on, rather than level 1's 2^13 and 6 bytes for inputs
 * this size: a block's repeats are short (ids, numbers and the text between them) and spread
 * over its 256 KiB; on bench-trace's heavy profile the blocks come out 3 % smaller at the same
 * CPU (level 2's double-fast strategy: 4 %, for 25 % more CPU). */
static size_t zstd_block(ZSTD_CCtx *zc, void *dst, size_t cap, const void *src, size_t len,
                         int level)
{
    ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level)))
        return (size_t)-1;
    if (level == 1) {
        ZSTD_CCtx_setParameter(zc, ZSTD_c_hashLog, 16);
        ZSTD_CCtx_setParameter(zc, ZSTD_c_minMatch, 5);
    }
    return ZSTD_compress2(zc, dst, cap, src, len);
}

/* The skeletons written so far, by key: so that a value whose key had the same skeleton
 * before refers to it (a varint r > 0: the skeleton of the key's value r places before) rather
 * than repeating it (0 and the skeleton): a key of high cardinality has a few skeletons (an
 * URL's: one a route) for many values. */
struct skel {
    uint64_t h; /* 0: empty */
    uint32_t key, pos, len;
    size_t off; /* in the payload */
};
struct skels {
    struct skel *e;
    size_t cap; /* a power of 2, twice the values at least */
    bool oom;
};

/* The skeleton sk (sl bytes) of the value at position pos of key's list, into w. */
static void put_skel(struct wbuf *w, struct skels *st, uint32_t key, uint32_t pos, const char *sk,
                     size_t sl)
{
    if (st->oom)
        return;
    uint64_t h = dedup_hash(((uint64_t)key + 1) * 0x9e3779b97f4a7c15ULL, sk, sl);
    h = h ? h : 1;
    size_t j = (size_t)(h >> 17) & (st->cap - 1);
    for (; st->e[j].h; j = (j + 1) & (st->cap - 1)) {
        struct skel *e = &st->e[j];
        if (e->h == h && e->key == key && e->len == sl && !w->oom &&
            memcmp(w->p + e->off, sk, sl) == 0) {
            put_var(w, pos - e->pos);
            e->pos = pos;
            return;
        }
    }
    put_var(w, 0);
    put_var(w, sl);
    st->e[j] = (struct skel){h, key, pos, (uint32_t)sl, w->len};
    put_raw(w, sk, sl);
}

/* The block's table of distinct resources: spans of one resource share its array (decoders
 * give them the same pointer), else equal arrays are found by content. */
struct restab {
    const struct sn_span_kv **a;
    uint32_t *n;
    size_t count, cap;
    bool oom;
};

static uint32_t res_index(struct restab *t, const struct sn_span *s)
{
    if (!s->nres)
        return 0;
    for (size_t i = t->count; i-- > 0;)
        if (t->a[i] == s->res && t->n[i] == s->nres)
            return (uint32_t)i + 1;
    for (size_t i = t->count; i-- > 0;)
        if (sn_span_kv_equal(t->a[i], t->n[i], s->res, s->nres))
            return (uint32_t)i + 1;
    size_t cap = t->cap;
    const struct sn_span_kv **a = sn_grow(t->a, &cap, t->count + 1, sizeof(*a));
    if (!a) {
        t->oom = true;
        return 0;
    }
    t->a = a;
    uint32_t *n = sn_grow(t->n, &t->cap, t->count + 1, sizeof(*n));
    if (!n) {
        t->oom = true;
        return 0;
    }
    t->n = n;
    t->a[t->count] = s->res;
    t->n[t->count] = s->nres;
    return (uint32_t)++t->count;
}

/* A block; noids: its trace ids left out (sn_block_encode_tags()). */
static int encode(const struct sn_span *spans, size_t n, int level, bool noids, unsigned char **out,
                  size_t *len, uint8_t **bloom, size_t *bloom_len)
{
    struct zstreams *z = zs();
    struct wbuf body[NSTREAMS], pay, blk, runs;
    struct restab rt = {0};
    struct tabs t;
    uint32_t *ri = malloc((n ? n : 1) * sizeof(*ri));
    uint64_t base = UINT64_MAX;
    int rc = -ENOMEM;

    *out = NULL;
    *len = 0;
    if (bloom) {
        *bloom = NULL;
        *bloom_len = 0;
    }
    if (!ri || !z) {
        free(ri);
        return -ENOMEM;
    }
    /* the thread's buffers and tables, emptied */
    for (int i = 0; i < NSTREAMS; i++)
        body[i] = (struct wbuf){z->body[i].p, 0, z->body[i].cap, false};
    pay = (struct wbuf){z->pay.p, 0, z->pay.cap, false};
    runs = (struct wbuf){z->runs.p, 0, z->runs.cap, false};
    blk = (struct wbuf){z->blk.p, 0, z->blk.cap, false};
    t = z->t;
    tabs_clear(&t);
    for (size_t i = 0; i < n; i++) {
        if (spans[i].start_ns < base)
            base = spans[i].start_ns;
        ri[i] = res_index(&rt, &spans[i]);
    }
    if (!n)
        base = 0;
    /* the body first (it fills the tables), then the tables before it */
    put_var(&body[S_AKEY], rt.count);
    for (size_t i = 0; i < rt.count; i++)
        put_attrs(body, &t, rt.a[i], rt.n[i], false);
    for (size_t i = 0; i < n; i++)
        put_span(body, &t, spans, i, base, ri[i], noids);
    /* the tables: the strings (the values' skeletons among them), then each key's values
     * together (in the order met), then the values' runs in that order */
    uint32_t *order = malloc((t.nv ? t.nv : 1) * sizeof(*order)),
             *at = calloc(t.nk + 1, sizeof(*at));
    char *sk = NULL;
    size_t skcap = 0;
    struct skels st = {NULL, 0, false};
    if (!order || !at) {
        free(order);
        free(at);
        goto out;
    }
    for (size_t i = 0; i < t.nk; i++)
        at[i + 1] = at[i] + t.k[i].nvals;
    for (st.cap = 64; st.cap < 2 * t.nv; st.cap *= 2)
        ;
    if (z->skelcap < st.cap) { /* kept from block to block, as the buffers */
        free(z->skel);
        z->skelcap = (z->skel = calloc(st.cap, sizeof(*z->skel))) ? st.cap : 0;
    } else {
        memset(z->skel, 0, st.cap * sizeof(*z->skel));
    }
    if (!(st.e = z->skel))
        st.oom = true;
    for (size_t i = 0; i < t.nv; i++)
        order[at[t.v[i].key] + t.v[i].rank] = (uint32_t)i;
    put_var(&pay, t.nk);
    for (size_t i = 0; i < t.nk; i++)
        put_bytes(&pay, t.k[i].s, t.k[i].len);
    for (size_t i = 0; i < t.nk; i++) {
        put_var(&pay, t.k[i].nvals);
        for (uint32_t j = at[i]; j < at[i + 1]; j++) {
            const struct tval *v = &t.v[order[j]];
            if (skcap <= v->vlen) {
                char *nsk = sn_grow(sk, &skcap, (size_t)v->vlen + 1, 1);
                if (!nsk) {
                    t.oom = true;
                    break;
                }
                sk = nsk;
            }
            size_t sl = skeleton(v->val, v->vlen, sk, &runs);
            if (sl == SIZE_MAX) {
                put_u8(&pay, v->type);
                put_bytes(&pay, v->val, v->vlen);
            } else {
                put_u8(&pay, v->type | T_SKEL);
                put_skel(&pay, &st, (uint32_t)i, j - at[i], sk, sl);
            }
        }
    }
    free(sk);
    t.oom |= st.oom;
    put_var(&pay, runs.len);
    put_raw(&pay, runs.p, runs.len);
    free(order);
    free(at);
    bool oom = pay.oom || rt.oom || t.oom || runs.oom;
    for (int i = 0; i < NSTREAMS; i++) {
        put_var(&pay, body[i].len);
        oom |= body[i].oom;
    }
    for (int i = 0; i < NSTREAMS; i++)
        if (body[i].p)
            put_raw(&pay, body[i].p, body[i].len);
    if (oom || pay.oom)
        goto out;
    if (bloom) { /* the tags: the keys and attributes of spans (not of resources, events or
                  * links), events' names, "error" */
        size_t items = t.nextra;
        for (size_t i = 0; i < t.nk; i++)
            items += t.k[i].span;
        for (size_t i = 0; i < t.nv; i++)
            items += t.v[i].span;
        if ((*bloom_len = sn_bloom_bytes(items))) {
            if (!(*bloom = calloc(1, *bloom_len)))
                goto out;
            for (size_t i = 0; i < t.nk; i++)
                if (t.k[i].span)
                    sn_bloom_add(*bloom, *bloom_len, key_tag(&t.k[i]));
            for (size_t i = 0; i < t.nv; i++)
                if (t.v[i].span)
                    sn_bloom_add(
                        *bloom, *bloom_len,
                        sn_tag_hash_pair(key_tag(&t.k[t.v[i].key]), t.v[i].val, t.v[i].vlen));
            for (size_t i = 0; i < t.nextra; i++)
                sn_bloom_add(*bloom, *bloom_len, t.extra[i]);
            if (t.extra_full)
                memset(*bloom, 0xff, *bloom_len);
        }
    }
    put_u8(&blk, VERSION);
    size_t flags_at = blk.len;
    put_u8(&blk, 0);
    put_var(&blk, n);
    put_var(&blk, pay.len);
    put_var(&blk, base);
    bool packed = false;
    ZSTD_CCtx *zc = level > 0 && pay.len >= 64 ? zstd_c() : NULL;
    if (zc) {
        size_t bound = ZSTD_compressBound(pay.len);
        unsigned char *dst = need(&blk, bound);
        size_t got = dst ? zstd_block(zc, dst, bound, pay.p, pay.len, level) : 0;
        if (dst && !ZSTD_isError(got) && got < pay.len) {
            blk.len += got;
            packed = true;
        }
    }
    if (!packed)
        put_raw(&blk, pay.p, pay.len);
    if (blk.oom || !(*out = malloc(blk.len)))
        goto out;
    blk.p[flags_at] = (packed ? F_ZSTD : 0) | (noids ? F_NOIDS : 0);
    memcpy(*out, blk.p, blk.len);
    *len = blk.len;
    rc = 0;
out:
    if (rc && bloom) {
        free(*bloom);
        *bloom = NULL;
        *bloom_len = 0;
    }
    free(ri);
    free(rt.a);
    free(rt.n);
    z->t = t; /* kept for the thread's next block */
    for (int i = 0; i < NSTREAMS; i++)
        z->body[i] = body[i];
    z->pay = pay;
    z->runs = runs;
    z->blk = blk;
    return rc;
}

int sn_block_encode_tags(const struct sn_span *spans, size_t n, int level, unsigned char **out,
                         size_t *len, uint8_t **bloom, size_t *bloom_len)
{
    return encode(spans, n, level, true, out, len, bloom, bloom_len);
}

int sn_block_encode(const struct sn_span *spans, size_t n, int level, unsigned char **out,
                    size_t *len)
{
    return encode(spans, n, level, false, out, len, NULL, NULL);
}

/* ---- Reading ------------------------------------------------------------------------------ */

struct rbuf {
    const unsigned char *p, *end;
    bool bad;
    struct sn_arena *arena;
    bool oom;
};

static bool have(struct rbuf *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t get_u8(struct rbuf *r)
{
    return have(r, 1) ? *r->p++ : 0;
}

static void get_raw(struct rbuf *r, void *dst, size_t n)
{
    if (have(r, n)) {
        memcpy(dst, r->p, n);
        r->p += n;
    } else {
        memset(dst, 0, n);
    }
}

static uint64_t get_var(struct rbuf *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (!have(r, 1))
            return 0;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* A count that cannot be more than the bytes left (each item takes one at least) nor max. */
static uint32_t get_count(struct rbuf *r, uint32_t max)
{
    uint64_t n = get_var(r);
    if (n > max || n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return 0;
    }
    return (uint32_t)n;
}

static const char *get_bytes(struct rbuf *r, uint32_t *len)
{
    uint64_t n = get_var(r);
    if (n > SN_SPAN_MAX_VALUE * 16u || !have(r, (size_t)n)) {
        r->bad = true;
        return "";
    }
    char *s = sn_arena_strndup(r->arena, (const char *)r->p, (size_t)n);
    if (!s) {
        r->oom = r->bad = true;
        return "";
    }
    r->p += n;
    if (len)
        *len = (uint32_t)n;
    return s;
}

static const char *get_str(struct rbuf *r)
{
    return get_bytes(r, NULL);
}

struct tabdec { /* the block's tables, decoded */
    const char **str;
    uint32_t nstr;
    struct sn_span_kv **val;       /* each string's attributes (as a key) */
    uint32_t *nval, *intro, *last; /* last: as struct tkey's */
};

/* rs: the streams (S_ID ...): the attributes' count and keys in S_AKEY, their ranks in S_ATTR */
static void get_attrs(struct rbuf *rs, struct tabdec *t, struct sn_span_kv **out, uint32_t *n)
{
    struct rbuf *r = &rs[S_AKEY], *rr = &rs[S_ATTR];
    uint32_t c = get_count(r, SN_SPAN_MAX_ATTRS);
    *out = NULL;
    *n = 0;
    if (!c || r->bad)
        return;
    struct sn_span_kv *a = sn_arena_alloc(r->arena, (size_t)c * sizeof(*a));
    if (!a) {
        r->oom = r->bad = true;
        return;
    }
    for (uint32_t i = 0; i < c && !r->bad && !rr->bad; i++) {
        uint64_t k = get_var(r), x = get_var(rr), rank;
        if (k >= t->nstr || rr->bad) {
            r->bad = true;
            return;
        }
        if (x == 0) /* the key's next value */
            rank = t->intro[k]++;
        else if (x == 1) /* the key's last one (none: last 0) */
            rank = (uint64_t)t->last[k] - 1;
        else if ((rank = x - 2) >= t->intro[k]) /* one referred to before, else a 0 */
            rank = UINT64_MAX;
        if (rank >= t->nval[k]) {
            r->bad = true;
            return;
        }
        t->last[k] = (uint32_t)rank + 1;
        a[i] = t->val[k][rank];
    }
    *out = a;
    *n = c;
}

/* A string of the table by its index. */
static const char *get_sref(struct rbuf *r, const struct tabdec *t)
{
    uint64_t i = get_var(r);
    if (i >= t->nstr) {
        r->bad = true;
        return "";
    }
    return t->str[i];
}

/* A value from its skeleton sk, each RUN_MARK in it replaced by the next run at *run (before
 * end, each ended by RUN_END), in the arena: NULL (r bad) when the runs are short or damaged. */
static const char *get_skel(struct rbuf *r, const char *sk, size_t slen, const char **run,
                            const char *end, uint32_t *vlen)
{
    const char *at[SKEL_RUNS + 1]; /* the first runs' ends, found once */
    size_t n = slen, k = 0;
    const char *p = *run, *m, *e;
    for (size_t i = 0; (m = memchr(sk + i, RUN_MARK, slen - i)); i = (size_t)(m - sk) + 1) {
        if (!(e = memchr(p, RUN_END, (size_t)(end - p)))) {
            r->bad = true;
            return NULL;
        }
        if (k < SKEL_RUNS)
            at[k++] = e;
        n += (size_t)(e - p) - 1; /* the run for its mark */
        p = e + 1;
    }
    if (n > SN_SPAN_MAX_VALUE * 16u) {
        r->bad = true;
        return NULL;
    }
    char *v = sn_arena_alloc(r->arena, n + 1), *o = v;
    if (!v) {
        r->oom = r->bad = true;
        return NULL;
    }
    size_t i = 0;
    for (size_t j = 0; (m = memchr(sk + i, RUN_MARK, slen - i)); i = (size_t)(m - sk) + 1, j++) {
        memcpy(o, sk + i, (size_t)(m - sk) - i);
        o += (size_t)(m - sk) - i;
        e = j < k ? at[j] : memchr(*run, RUN_END, (size_t)(end - *run));
        memcpy(o, *run, (size_t)(e - *run));
        o += e - *run;
        *run = e + 1;
    }
    memcpy(o, sk + i, slen - i);
    o += slen - i;
    *o = 0;
    *vlen = (uint32_t)n;
    return v;
}

/* The tables at the payload's start: the strings, then each one's values as a key. */
static void get_tables(struct rbuf *r, struct tabdec *t)
{
    t->nstr = get_count(r, UINT32_MAX);
    if (t->nstr && !r->bad &&
        (!(t->str = sn_arena_alloc(r->arena, t->nstr * sizeof(*t->str))) ||
         !(t->val = sn_arena_calloc(r->arena, t->nstr, sizeof(*t->val))) ||
         !(t->nval = sn_arena_calloc(r->arena, t->nstr, sizeof(*t->nval))) ||
         !(t->intro = sn_arena_calloc(r->arena, t->nstr, sizeof(*t->intro))) ||
         !(t->last = sn_arena_calloc(r->arena, t->nstr, sizeof(*t->last)))))
        r->oom = r->bad = true;
    for (uint32_t i = 0; i < t->nstr && !r->bad; i++)
        t->str[i] = get_str(r);
    for (uint32_t k = 0; k < t->nstr && !r->bad; k++) {
        uint32_t n = t->nval[k] = get_count(r, UINT32_MAX / 2);
        if (!n || r->bad)
            continue;
        struct sn_span_kv *v = t->val[k] = sn_arena_calloc(r->arena, n, sizeof(*v));
        if (!v) {
            r->oom = r->bad = true;
            return;
        }
        for (uint32_t i = 0; i < n && !r->bad; i++) {
            struct sn_span_kv *a = &v[i];
            a->key = t->str[k];
            a->type = get_u8(r);
            a->i = a->type & T_SKEL ? -1 : 0; /* its skeleton for now: the value is built below */
            uint64_t back = a->i ? get_var(r) : 0;
            a->type &= (uint8_t)~T_SKEL;
            if (!back && a->i) { /* the skeleton where it is: the payload outlives the tables */
                uint64_t sl = get_var(r);
                if (sl > SN_SPAN_MAX_VALUE * 16u || !have(r, (size_t)sl)) {
                    r->bad = true;
                    return;
                }
                a->val = (const char *)r->p;
                a->vlen = (uint32_t)sl;
                r->p += sl;
            } else if (!back) {
                a->val = get_bytes(r, &a->vlen);
            } else if (back <= i && v[i - back].i == -1) { /* the skeleton of one before */
                a->val = v[i - back].val;
                a->vlen = v[i - back].vlen;
            } else {
                r->bad = true;
            }
            if (a->type > SN_ATTR_EMPTY)
                r->bad = true;
        }
    }
    /* the runs, then the values made of skeletons and runs */
    uint64_t rl = get_var(r);
    if (r->bad || !have(r, rl)) {
        r->bad = true;
        return;
    }
    const char *run = (const char *)r->p, *rend = run + rl;
    r->p += rl;
    for (uint32_t k = 0; k < t->nstr && !r->bad; k++)
        for (uint32_t i = 0; i < t->nval[k] && !r->bad; i++) {
            struct sn_span_kv *a = &t->val[k][i];
            if (a->i && !(a->val = get_skel(r, a->val, a->vlen, &run, rend, &a->vlen)))
                return;
            a->i = 0;
            if (a->type == SN_ATTR_INT)
                a->i = strtoll(a->val, NULL, 10);
            else if (a->type == SN_ATTR_DOUBLE)
                a->d = strtod(a->val, NULL);
            else if (a->type == SN_ATTR_BOOL)
                a->i = strcmp(a->val, "true") == 0;
        }
    if (run != rend)
        r->bad = true;
}

static void get_endpoint(struct rbuf *r, struct sn_span_endpoint *e)
{
    uint8_t bits = get_u8(r);
    if (bits & ~7u)
        r->bad = true;
    if ((e->has_ipv4 = bits & 1))
        get_raw(r, e->ipv4, 4);
    if ((e->has_ipv6 = bits & 2))
        get_raw(r, e->ipv6, 16);
    if (bits & 4) {
        uint64_t port = get_var(r);
        if (port == 0 || port > 65535)
            r->bad = true;
        e->port = (uint16_t)port;
    }
}

struct resdec {
    struct sn_span_kv **a;
    uint32_t *n;
    uint32_t count;
    struct tabdec *t;
    const uint8_t *ids; /* a block without its trace ids: its chunk's, the next at ids[next] */
    size_t nids, next;
};

static bool any_bad(const struct rbuf *r)
{
    for (int i = 0; i < NSTREAMS; i++)
        if (r[i].bad)
            return true;
    return false;
}

/* r: the streams (S_ID ...) */
static void get_span(struct rbuf *r, struct sn_span *s, const struct sn_span *before, size_t at,
                     uint64_t base, struct resdec *rt)
{
    const struct sn_span *prev = at ? &before[at - 1] : NULL;
    s->flags = get_u8(&r[S_MISC]);
    if (!(s->flags & F_SAME_TRACE) && rt->ids && rt->next < rt->nids) /* the chunk's next */
        memcpy(s->trace_id, rt->ids + 16 * rt->next++, 16);
    else if (!(s->flags & F_SAME_TRACE) && rt->ids)
        r[S_MISC].bad = true;
    else if (!(s->flags & F_SAME_TRACE))
        get_raw(&r[S_ID], s->trace_id, 16);
    else if (prev)
        memcpy(s->trace_id, prev->trace_id, 16);
    else
        r[S_MISC].bad = true;
    s->flags &= (uint8_t)~F_SAME_TRACE;
    get_raw(&r[S_ID], s->span_id, 8);
    if (s->flags & SN_SPAN_F_PARENT) {
        uint64_t j = get_var(&r[S_MISC]);
        if (j == 0)
            get_raw(&r[S_ID], s->parent_id, 8);
        else if (j <= at && j <= PARENT_BACK)
            memcpy(s->parent_id, before[at - j].span_id, 8);
        else
            r[S_MISC].bad = true;
    }
    s->kind = get_u8(&r[S_MISC]);
    s->status = get_u8(&r[S_MISC]);
    if (s->kind > SN_KIND_CONSUMER || s->status > SN_STATUS_ERROR)
        r[S_MISC].bad = true;
    if (prev && memcmp(prev->trace_id, s->trace_id, 16) == 0) {
        uint64_t z = get_var(&r[S_NUM]);
        s->start_ns = prev->start_ns + (uint64_t)((int64_t)(z >> 1) ^ -(int64_t)(z & 1));
    } else {
        s->start_ns = base + get_var(&r[S_NUM]);
    }
    s->duration_ns = get_var(&r[S_NUM]);
    s->name = get_sref(&r[S_STR], rt->t);
    s->service = get_sref(&r[S_STR], rt->t);
    s->status_msg = get_sref(&r[S_STR], rt->t);
    s->trace_state = get_sref(&r[S_STR], rt->t);
    s->scope_name = get_sref(&r[S_STR], rt->t);
    s->scope_version = get_sref(&r[S_STR], rt->t);
    uint64_t oi = get_var(&r[S_STR]);
    if (oi > rt->t->nstr)
        r[S_STR].bad = true;
    else
        s->origin = oi ? rt->t->str[oi - 1] : NULL;
    uint64_t of = get_var(&r[S_MISC]);
    if (of > UINT32_MAX)
        r[S_MISC].bad = true;
    s->otlp_flags = (uint32_t)of;
    get_endpoint(&r[S_MISC], &s->local);
    s->local.service = s->service;
    if (s->flags & SN_SPAN_F_REMOTE) {
        uint64_t i = get_var(&r[S_STR]);
        if (i > rt->t->nstr) {
            r[S_STR].bad = true;
            return;
        }
        s->remote.service = i ? rt->t->str[i - 1] : NULL;
        get_endpoint(&r[S_MISC], &s->remote);
    }
    get_attrs(r, rt->t, &s->attrs, &s->nattrs);
    uint64_t res = get_var(&r[S_AKEY]);
    if (res > rt->count) {
        r[S_AKEY].bad = true;
    } else if (res) {
        s->res = rt->a[res - 1];
        s->nres = rt->n[res - 1];
    }
    s->nevents = get_count(&r[S_MISC], SN_SPAN_MAX_EVENTS);
    if (s->nevents && !any_bad(r)) {
        s->events = sn_arena_calloc(r->arena, s->nevents, sizeof(*s->events));
        if (!s->events) {
            r->oom = r->bad = true;
            s->nevents = 0;
        }
    }
    for (uint32_t i = 0; i < s->nevents && !any_bad(r); i++) {
        struct sn_span_event *e = &s->events[i];
        uint64_t z = get_var(&r[S_NUM]);
        int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        e->t_ns = s->start_ns + (uint64_t)d;
        e->name = get_sref(&r[S_STR], rt->t);
        get_attrs(r, rt->t, &e->attrs, &e->nattrs);
        e->dropped_attrs = (uint32_t)get_var(&r[S_MISC]);
    }
    s->nlinks = get_count(&r[S_MISC], SN_SPAN_MAX_LINKS);
    if (s->nlinks && !any_bad(r)) {
        s->links = sn_arena_calloc(r->arena, s->nlinks, sizeof(*s->links));
        if (!s->links) {
            r->oom = r->bad = true;
            s->nlinks = 0;
        }
    }
    for (uint32_t i = 0; i < s->nlinks && !any_bad(r); i++) {
        struct sn_span_link *l = &s->links[i];
        get_raw(&r[S_ID], l->trace_id, 16);
        get_raw(&r[S_ID], l->span_id, 8);
        l->trace_state = get_sref(&r[S_STR], rt->t);
        l->flags = (uint32_t)get_var(&r[S_MISC]);
        get_attrs(r, rt->t, &l->attrs, &l->nattrs);
        l->dropped_attrs = (uint32_t)get_var(&r[S_MISC]);
    }
    s->dropped_attrs = (uint32_t)get_var(&r[S_MISC]);
    s->dropped_events = (uint32_t)get_var(&r[S_MISC]);
    s->dropped_links = (uint32_t)get_var(&r[S_MISC]);
}

struct header {
    uint8_t flags;
    uint64_t n, paylen, base;
    const unsigned char *pay;
    size_t stored;
};

static int header(const void *blk, size_t len, struct header *h)
{
    struct rbuf r = {blk, (const unsigned char *)blk + len, false, NULL, false};
    if (get_u8(&r) != VERSION)
        return -EINVAL;
    h->flags = get_u8(&r);
    h->n = get_var(&r);
    h->paylen = get_var(&r);
    h->base = get_var(&r);
    if (r.bad || (h->flags & ~(F_ZSTD | F_NOIDS)) || h->n > SN_SPAN_MAX_SPANS || h->n > h->paylen ||
        h->paylen > (256u << 20))
        return -EINVAL;
    h->pay = r.p;
    h->stored = (size_t)(r.end - r.p);
    if (!(h->flags & F_ZSTD) && h->stored != h->paylen)
        return -EINVAL;
    return 0;
}

int64_t sn_block_count(const void *blk, size_t len)
{
    struct header h;
    return header(blk, len, &h) < 0 ? -EINVAL : (int64_t)h.n;
}

int sn_block_decode(const void *blk, size_t len, struct sn_span_batch *b)
{
    return sn_block_decode_ids(blk, len, NULL, 0, b);
}

int sn_block_decode_ids(const void *blk, size_t len, const uint8_t *ids, size_t nids,
                        struct sn_span_batch *b)
{
    struct header h;
    unsigned char *unpacked = NULL;
    const unsigned char *pay;
    int rc = 0;

    if (header(blk, len, &h) < 0 || (!ids && (h.flags & F_NOIDS)))
        return -EINVAL;
    pay = h.pay;
    if (h.flags & F_ZSTD) {
        ZSTD_DCtx *zd = zstd_d();
        if (!zd || !(unpacked = malloc(h.paylen ? h.paylen : 1))) {
            free(unpacked);
            return -ENOMEM;
        }
        size_t got = ZSTD_decompressDCtx(zd, unpacked, h.paylen, h.pay, h.stored);
        if (ZSTD_isError(got) || got != h.paylen) {
            free(unpacked);
            return -EINVAL;
        }
        pay = unpacked;
    }
    struct rbuf r = {pay, pay + h.paylen, false, &b->arena, false}, rs[NSTREAMS];
    struct tabdec td = {0};
    get_tables(&r, &td);
    uint64_t slen[NSTREAMS], sum = 0;
    for (int i = 0; i < NSTREAMS; i++) {
        slen[i] = get_var(&r);
        sum += slen[i] < h.paylen ? slen[i] : h.paylen + 1;
    }
    if (r.bad || sum != (uint64_t)(r.end - r.p)) {
        free(unpacked);
        return r.oom ? -ENOMEM : -EINVAL;
    }
    for (int i = 0; i < NSTREAMS; i++) {
        rs[i] = (struct rbuf){r.p, r.p + slen[i], false, &b->arena, false};
        r.p += slen[i];
    }
    struct resdec rt = {
        NULL, NULL, get_count(&rs[S_AKEY], SN_SPAN_MAX_SPANS), &td, h.flags & F_NOIDS ? ids : NULL,
        nids, 0};
    if (rt.count && !any_bad(rs)) {
        rt.a = sn_arena_calloc(&b->arena, rt.count, sizeof(*rt.a));
        rt.n = sn_arena_calloc(&b->arena, rt.count, sizeof(*rt.n));
        if (!rt.a || !rt.n)
            rs[S_AKEY].oom = rs[S_AKEY].bad = true;
    }
    for (uint32_t i = 0; i < rt.count && !any_bad(rs); i++)
        get_attrs(rs, &td, &rt.a[i], &rt.n[i]);
    size_t first = b->n; /* this block's first span in b */
    for (uint64_t i = 0; i < h.n && !any_bad(rs); i++) {
        struct sn_span *s = sn_span_batch_add(b);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        get_span(rs, s, b->spans + first, (size_t)i, h.base, &rt);
    }
    bool oom = false, bad = rt.ids && rt.next != rt.nids; /* each of the chunk's ids once */
    for (int i = 0; i < NSTREAMS; i++) {
        oom |= rs[i].oom;
        bad |= rs[i].bad || rs[i].p != rs[i].end;
    }
    if (!rc && oom)
        rc = -ENOMEM;
    else if (!rc && bad)
        rc = -EINVAL;
    free(unpacked);
    return rc;
}
