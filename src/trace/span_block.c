/*
 * Blocks of spans (trace/span_block.h). The payload holds each span as:
 *
 *   trace_id[16] span_id[8] flags:u8 [parent_id[8] when SN_SPAN_F_PARENT] kind:u8 status:u8
 *   varint start_ns - base, varint duration_ns
 *   str name, service, status_msg, trace_state, scope_name, scope_version; varint otlp_flags
 *   endpoint local (its service is the span's), [str? service + endpoint remote when F_REMOTE]
 *   attrs span attributes, varint resource (its index in the block's table + 1; 0: none)
 *   varint nevents, each: zigzag varint t_ns - start_ns, str name, attrs, varint dropped
 *   varint nlinks, each: trace_id[16] span_id[8] str trace_state varint flags attrs varint dropped
 *   varint dropped_attrs, dropped_events, dropped_links
 *
 * after a table of the block's distinct resources (varint count, each its attributes: the
 * spans of a request share a few), and where str is a varint length and the bytes, str? a varint
 * length + 1 (0: none), endpoint a byte of bits (1 ipv4, 2 ipv6, 4 port) and what they say, attrs a
 * varint count and each attribute as str key, u8 type, str value (integers and doubles as their
 * text).
 */
#include "trace/span_block.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/grow.h"

#define VERSION 1
#define F_ZSTD  1 /* the payload is a zstd frame */

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
    if (w->len + n > w->cap) {
        unsigned char *p = sn_grow(w->p, &w->cap, w->len + n, 1);
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

static void put_str(struct wbuf *w, const char *s)
{
    put_bytes(w, s ? s : "", s ? strlen(s) : 0);
}

static void put_attrs(struct wbuf *w, const struct sn_span_kv *a, uint32_t n)
{
    put_var(w, n);
    for (uint32_t i = 0; i < n; i++) {
        put_str(w, a[i].key);
        put_u8(w, a[i].type);
        put_bytes(w, a[i].val, a[i].vlen);
    }
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

static void put_span(struct wbuf *w, const struct sn_span *s, uint64_t base, uint32_t res)
{
    put_raw(w, s->trace_id, 16);
    put_raw(w, s->span_id, 8);
    put_u8(w, s->flags);
    if (s->flags & SN_SPAN_F_PARENT)
        put_raw(w, s->parent_id, 8);
    put_u8(w, s->kind);
    put_u8(w, s->status);
    put_var(w, s->start_ns - base);
    put_var(w, s->duration_ns);
    put_str(w, s->name);
    put_str(w, s->service);
    put_str(w, s->status_msg);
    put_str(w, s->trace_state);
    put_str(w, s->scope_name);
    put_str(w, s->scope_version);
    put_var(w, s->otlp_flags);
    put_endpoint(w, &s->local);
    if (s->flags & SN_SPAN_F_REMOTE) {
        put_var(w, s->remote.service ? strlen(s->remote.service) + 1 : 0);
        if (s->remote.service)
            put_raw(w, s->remote.service, strlen(s->remote.service));
        put_endpoint(w, &s->remote);
    }
    put_attrs(w, s->attrs, s->nattrs);
    put_var(w, res);
    put_var(w, s->nevents);
    for (uint32_t i = 0; i < s->nevents; i++) {
        const struct sn_span_event *e = &s->events[i];
        put_var(w, zigzag((int64_t)(e->t_ns - s->start_ns)));
        put_str(w, e->name);
        put_attrs(w, e->attrs, e->nattrs);
        put_var(w, e->dropped_attrs);
    }
    put_var(w, s->nlinks);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const struct sn_span_link *l = &s->links[i];
        put_raw(w, l->trace_id, 16);
        put_raw(w, l->span_id, 8);
        put_str(w, l->trace_state);
        put_var(w, l->flags);
        put_attrs(w, l->attrs, l->nattrs);
        put_var(w, l->dropped_attrs);
    }
    put_var(w, s->dropped_attrs);
    put_var(w, s->dropped_events);
    put_var(w, s->dropped_links);
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
    z += attrs_size(s->attrs, s->nattrs) + 2; /* the resource: a reference */
    for (uint32_t i = 0; i < s->nevents; i++)
        z += 20 + strlen(s->events[i].name) + attrs_size(s->events[i].attrs, s->events[i].nattrs);
    for (uint32_t i = 0; i < s->nlinks; i++)
        z += 40 + strlen(s->links[i].trace_state) +
             attrs_size(s->links[i].attrs, s->links[i].nattrs);
    return z;
}

/* ---- zstd's contexts, one of each per thread, reused from block to block ------------------ */

struct zstreams {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static _Thread_local struct zstreams *tl_z; /* also in zkey, whose destructor frees it */

static void zfree(void *p)
{
    struct zstreams *z = p;
    ZSTD_freeCCtx(z->zc);
    ZSTD_freeDCtx(z->zd);
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

int sn_block_encode(const struct sn_span *spans, size_t n, int level, unsigned char **out,
                    size_t *len)
{
    struct wbuf pay = {0}, blk = {0};
    struct restab rt = {0};
    uint32_t *ri = malloc((n ? n : 1) * sizeof(*ri));
    uint64_t base = UINT64_MAX;

    *out = NULL;
    *len = 0;
    if (!ri)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (spans[i].start_ns < base)
            base = spans[i].start_ns;
        ri[i] = res_index(&rt, &spans[i]);
    }
    if (!n)
        base = 0;
    put_var(&pay, rt.count);
    for (size_t i = 0; i < rt.count; i++)
        put_attrs(&pay, rt.a[i], rt.n[i]);
    for (size_t i = 0; i < n; i++)
        put_span(&pay, &spans[i], base, ri[i]);
    free(ri);
    free(rt.a);
    free(rt.n);
    if (pay.oom || rt.oom) {
        free(pay.p);
        return -ENOMEM;
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
        size_t got = dst ? ZSTD_compressCCtx(zc, dst, bound, pay.p, pay.len, level) : 0;
        if (dst && !ZSTD_isError(got) && got < pay.len) {
            blk.len += got;
            packed = true;
        }
    }
    if (!packed)
        put_raw(&blk, pay.p, pay.len);
    free(pay.p);
    if (blk.oom) {
        free(blk.p);
        return -ENOMEM;
    }
    blk.p[flags_at] = packed ? F_ZSTD : 0;
    *out = blk.p;
    *len = blk.len;
    return 0;
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

static void get_attrs(struct rbuf *r, struct sn_span_kv **out, uint32_t *n)
{
    uint32_t c = get_count(r, SN_SPAN_MAX_ATTRS);
    *out = NULL;
    *n = 0;
    if (!c || r->bad)
        return;
    struct sn_span_kv *a = sn_arena_calloc(r->arena, c, sizeof(*a));
    if (!a) {
        r->oom = r->bad = true;
        return;
    }
    for (uint32_t i = 0; i < c && !r->bad; i++) {
        a[i].key = get_str(r);
        a[i].type = get_u8(r);
        a[i].val = get_bytes(r, &a[i].vlen);
        if (a[i].type > SN_ATTR_EMPTY)
            r->bad = true;
        else if (a[i].type == SN_ATTR_INT)
            a[i].i = strtoll(a[i].val, NULL, 10);
        else if (a[i].type == SN_ATTR_DOUBLE)
            a[i].d = strtod(a[i].val, NULL);
        else if (a[i].type == SN_ATTR_BOOL)
            a[i].i = strcmp(a[i].val, "true") == 0;
    }
    *out = a;
    *n = c;
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
};

static void get_span(struct rbuf *r, struct sn_span *s, uint64_t base, const struct resdec *rt)
{
    get_raw(r, s->trace_id, 16);
    get_raw(r, s->span_id, 8);
    s->flags = get_u8(r);
    if (s->flags & SN_SPAN_F_PARENT)
        get_raw(r, s->parent_id, 8);
    s->kind = get_u8(r);
    s->status = get_u8(r);
    if (s->kind > SN_KIND_CONSUMER || s->status > SN_STATUS_ERROR)
        r->bad = true;
    s->start_ns = base + get_var(r);
    s->duration_ns = get_var(r);
    s->name = get_str(r);
    s->service = get_str(r);
    s->status_msg = get_str(r);
    s->trace_state = get_str(r);
    s->scope_name = get_str(r);
    s->scope_version = get_str(r);
    uint64_t of = get_var(r);
    if (of > UINT32_MAX)
        r->bad = true;
    s->otlp_flags = (uint32_t)of;
    get_endpoint(r, &s->local);
    s->local.service = s->service;
    if (s->flags & SN_SPAN_F_REMOTE) {
        uint64_t n = get_var(r);
        if (n) {
            if (n - 1 > SN_SPAN_MAX_VALUE || !have(r, (size_t)(n - 1))) {
                r->bad = true;
                return;
            }
            s->remote.service = sn_arena_strndup(r->arena, (const char *)r->p, (size_t)(n - 1));
            if (!s->remote.service) {
                r->oom = r->bad = true;
                return;
            }
            r->p += n - 1;
        }
        get_endpoint(r, &s->remote);
    }
    get_attrs(r, &s->attrs, &s->nattrs);
    uint64_t res = get_var(r);
    if (res > rt->count) {
        r->bad = true;
    } else if (res) {
        s->res = rt->a[res - 1];
        s->nres = rt->n[res - 1];
    }
    s->nevents = get_count(r, SN_SPAN_MAX_EVENTS);
    if (s->nevents && !r->bad) {
        s->events = sn_arena_calloc(r->arena, s->nevents, sizeof(*s->events));
        if (!s->events) {
            r->oom = r->bad = true;
            s->nevents = 0;
        }
    }
    for (uint32_t i = 0; i < s->nevents && !r->bad; i++) {
        struct sn_span_event *e = &s->events[i];
        uint64_t z = get_var(r);
        int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        e->t_ns = s->start_ns + (uint64_t)d;
        e->name = get_str(r);
        get_attrs(r, &e->attrs, &e->nattrs);
        e->dropped_attrs = (uint32_t)get_var(r);
    }
    s->nlinks = get_count(r, SN_SPAN_MAX_LINKS);
    if (s->nlinks && !r->bad) {
        s->links = sn_arena_calloc(r->arena, s->nlinks, sizeof(*s->links));
        if (!s->links) {
            r->oom = r->bad = true;
            s->nlinks = 0;
        }
    }
    for (uint32_t i = 0; i < s->nlinks && !r->bad; i++) {
        struct sn_span_link *l = &s->links[i];
        get_raw(r, l->trace_id, 16);
        get_raw(r, l->span_id, 8);
        l->trace_state = get_str(r);
        l->flags = (uint32_t)get_var(r);
        get_attrs(r, &l->attrs, &l->nattrs);
        l->dropped_attrs = (uint32_t)get_var(r);
    }
    s->dropped_attrs = (uint32_t)get_var(r);
    s->dropped_events = (uint32_t)get_var(r);
    s->dropped_links = (uint32_t)get_var(r);
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
    if (r.bad || (h->flags & ~F_ZSTD) || h->n > SN_SPAN_MAX_SPANS || h->n > h->paylen ||
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
    struct header h;
    unsigned char *unpacked = NULL;
    const unsigned char *pay;
    int rc = 0;

    if (header(blk, len, &h) < 0)
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
    struct rbuf r = {pay, pay + h.paylen, false, &b->arena, false};
    struct resdec rt = {NULL, NULL, get_count(&r, SN_SPAN_MAX_SPANS)};
    if (rt.count && !r.bad) {
        rt.a = sn_arena_calloc(&b->arena, rt.count, sizeof(*rt.a));
        rt.n = sn_arena_calloc(&b->arena, rt.count, sizeof(*rt.n));
        if (!rt.a || !rt.n)
            r.oom = r.bad = true;
    }
    for (uint32_t i = 0; i < rt.count && !r.bad; i++)
        get_attrs(&r, &rt.a[i], &rt.n[i]);
    for (uint64_t i = 0; i < h.n && !r.bad; i++) {
        struct sn_span *s = sn_span_batch_add(b);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        get_span(&r, s, h.base, &rt);
    }
    if (!rc && r.oom)
        rc = -ENOMEM;
    else if (!rc && (r.bad || r.p != r.end))
        rc = -EINVAL;
    free(unpacked);
    return rc;
}
