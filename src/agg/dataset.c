/*
 * Datasets; see dataset.h. One merge routine serves every addition: a frame is first seen as
 * a slot that borrows its entries, then merged into its slot just as an interval's sum merges
 * one slot into another.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "agg/dataset.h"
#include "core/crc32c.h"

#define EMPTY INT64_MIN

struct source {
    char *name;
    int64_t last; /* last report or touch */
};

struct sn_dataset {
    struct sn_ds_opts o;
    uint32_t nslots;
    struct sn_ds_slot *ring; /* slot of t at (t / G) % nslots; t == EMPTY when unused */
    struct source *src;
    uint32_t nsrc, capsrc;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static int64_t align(const struct sn_dataset *ds, int64_t t)
{
    int64_t g = ds->o.granularity;
    int64_t r = t % g;
    return r < 0 ? t - r - g : t - r;
}

void sn_ds_slot_fini(struct sn_ds_slot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].key);
        sn_hist_destroy(s->e[i].hist);
    }
    free(s->e);
    sn_hist_destroy(s->total);
    free(s->src);
    memset(s, 0, sizeof(*s));
    s->t = EMPTY;
}

static bool opts_ok(const struct sn_ds_opts *o)
{
    return o->arity <= SN_WIRE_NUMERIC_BY_KEY && o->granularity >= 1 &&
           o->retention >= o->granularity && o->retention / o->granularity <= SN_DS_MAX_SLOTS;
}

/* Slots of the ring: the retention, the slot being filled now, and the seconds up to
 * SN_DS_MAX_FUTURE ahead that a source with a fast clock may already report, so that no slot
 * still inside the retention is ever evicted by a newer one. */
static uint32_t ring_size(uint32_t retention, uint32_t g)
{
    return (retention + SN_DS_MAX_FUTURE) / g + 2;
}

static struct sn_ds_slot *new_ring(uint32_t n)
{
    struct sn_ds_slot *r = calloc(n, sizeof(*r));
    for (uint32_t i = 0; r && i < n; i++)
        r[i].t = EMPTY;
    return r;
}

struct sn_dataset *sn_ds_create(const struct sn_ds_opts *o)
{
    struct sn_dataset *ds;

    if (!opts_ok(o))
        return NULL;
    ds = calloc(1, sizeof(*ds));
    if (!ds)
        return NULL;
    ds->o = *o;
    ds->nslots = ring_size(o->retention, o->granularity);
    ds->ring = new_ring(ds->nslots);
    if (!ds->ring) {
        free(ds);
        return NULL;
    }
    return ds;
}

void sn_ds_destroy(struct sn_dataset *ds)
{
    if (!ds)
        return;
    for (uint32_t i = 0; i < ds->nslots; i++)
        sn_ds_slot_fini(&ds->ring[i]);
    for (uint32_t i = 0; i < ds->nsrc; i++)
        free(ds->src[i].name);
    free(ds->src);
    free(ds->ring);
    free(ds);
}

const struct sn_ds_opts *sn_ds_opts(const struct sn_dataset *ds)
{
    return &ds->o;
}

static struct sn_ds_slot *ring_slot(const struct sn_dataset *ds, int64_t t)
{
    int64_t k = t / (int64_t)ds->o.granularity;
    return &ds->ring[(uint64_t)k % ds->nslots];
}

int sn_ds_set_retention(struct sn_dataset *ds, uint32_t retention, int64_t now)
{
    struct sn_ds_opts o = ds->o;
    struct sn_ds_slot *old = ds->ring, *ring;
    uint32_t oldn = ds->nslots;

    o.retention = retention;
    if (!opts_ok(&o))
        return -EINVAL;
    ring = new_ring(ring_size(retention, o.granularity));
    if (!ring)
        return -ENOMEM;
    ds->o = o;
    ds->ring = ring;
    ds->nslots = ring_size(retention, o.granularity);
    for (uint32_t i = 0; i < oldn; i++) {
        struct sn_ds_slot *s = &old[i], *d;
        if (s->t == EMPTY || s->t < now - (int64_t)retention) {
            sn_ds_slot_fini(s);
            continue;
        }
        d = ring_slot(ds, s->t);
        if (d->t != EMPTY && d->t > s->t) { /* two old slots share the new index: keep newer */
            sn_ds_slot_fini(s);
            continue;
        }
        sn_ds_slot_fini(d);
        *d = *s;
    }
    free(old);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Sources
 */

static int source_index(struct sn_dataset *ds, const char *host, uint32_t *out)
{
    for (uint32_t i = 0; i < ds->nsrc; i++)
        if (strcmp(ds->src[i].name, host) == 0) {
            *out = i;
            return 0;
        }
    if (ds->nsrc == SN_DS_MAX_SOURCES)
        return -ENOSPC;
    if (ds->nsrc == ds->capsrc) {
        uint32_t cap = ds->capsrc ? ds->capsrc * 2 : 4;
        struct source *s = realloc(ds->src, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        ds->src = s;
        ds->capsrc = cap;
    }
    ds->src[ds->nsrc].name = strdup(host);
    if (!ds->src[ds->nsrc].name)
        return -ENOMEM;
    ds->src[ds->nsrc].last = INT64_MIN;
    *out = ds->nsrc++;
    return 0;
}

const char *sn_ds_source_name(const struct sn_dataset *ds, uint32_t i)
{
    return i < ds->nsrc ? ds->src[i].name : NULL;
}

int sn_ds_touch(struct sn_dataset *ds, const char *host, int64_t now)
{
    uint32_t i;
    int rc = source_index(ds, host, &i);
    if (rc < 0)
        return rc;
    if (ds->src[i].last < now)
        ds->src[i].last = now;
    return 0;
}

uint32_t sn_ds_sources_since(const struct sn_dataset *ds, int64_t t)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ds->nsrc; i++)
        n += ds->src[i].last >= t;
    return n;
}

static bool has_source(const struct sn_ds_slot *s, uint32_t i, uint32_t *pos)
{
    uint32_t lo = 0, hi = s->nsrc;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->src[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < s->nsrc && s->src[lo] == i;
}

/* Adds source i to s's reporting set. Returns 0 or -ENOMEM. */
static int add_source(struct sn_ds_slot *s, uint32_t i)
{
    uint32_t pos, *src;
    if (has_source(s, i, &pos))
        return 0;
    src = realloc(s->src, (s->nsrc + 1) * sizeof(*src));
    if (!src)
        return -ENOMEM;
    memmove(src + pos + 1, src + pos, (s->nsrc - pos) * sizeof(*src));
    src[pos] = i;
    s->src = src;
    s->nsrc++;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Merging
 */

/* *dst += src, creating *dst. Returns 0 or -ENOMEM (*dst unchanged). */
static int merge_hist(struct sn_hist **dst, const struct sn_hist *src)
{
    if (!src)
        return 0;
    if (!*dst) {
        *dst = sn_hist_clone(src);
        return *dst ? 0 : -ENOMEM;
    }
    return sn_hist_merge(*dst, src);
}

/* The index of key in s's entries, or where it would go (*found false). */
static size_t find_key(const struct sn_ds_slot *s, const char *key, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->e[mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/*
 * dst += src: counts add, keys add per key (src may repeat a key), histograms merge. Keys are
 * looked up by binary search: from one second to the next the keys are mostly the same, so
 * inserts are rare. On -ENOMEM dst is valid but holds part of src.
 */
static int merge_slot(struct sn_ds_slot *dst, const struct sn_ds_slot *src)
{
    for (size_t j = 0; j < src->n; j++) {
        const struct sn_ds_entry *s = &src->e[j];
        bool found;
        size_t i = find_key(dst, s->key, &found);
        if (!found) {
            if (dst->n == dst->cap) {
                size_t cap = dst->cap ? dst->cap * 2 : 8;
                struct sn_ds_entry *e = realloc(dst->e, cap * sizeof(*e));
                if (!e)
                    return -ENOMEM;
                dst->e = e;
                dst->cap = cap;
            }
            char *key = strdup(s->key);
            if (!key)
                return -ENOMEM;
            memmove(&dst->e[i + 1], &dst->e[i], (dst->n - i) * sizeof(*dst->e));
            dst->e[i] = (struct sn_ds_entry){key, 0, NULL};
            dst->n++;
        }
        if (merge_hist(&dst->e[i].hist, s->hist) < 0)
            return -ENOMEM;
        dst->e[i].count = sat_add(dst->e[i].count, s->count);
    }
    if (merge_hist(&dst->total, src->total) < 0)
        return -ENOMEM;
    dst->count = sat_add(dst->count, src->count);
    dst->over_cap = sat_add(dst->over_cap, src->over_cap);
    dst->map_full = sat_add(dst->map_full, src->map_full);
    return 0;
}

/* A frame seen as a slot, its entries borrowed. Returns 0 or -ENOMEM. */
static int frame_view(const struct sn_wire_frame *f, struct sn_ds_slot *v)
{
    memset(v, 0, sizeof(*v));
    v->count = f->total;
    v->over_cap = f->over_cap;
    v->map_full = f->map_full;
    if (f->arity == SN_WIRE_NUMERIC) {
        v->total = f->n ? f->entries[0].hist : NULL;
        return 0;
    }
    if (f->arity == SN_WIRE_SCALAR || f->n == 0)
        return 0;
    v->e = malloc(f->n * sizeof(*v->e));
    if (!v->e)
        return -ENOMEM;
    for (size_t i = 0; i < f->n; i++)
        v->e[i] = (struct sn_ds_entry){f->entries[i].key, f->entries[i].count, f->entries[i].hist};
    v->n = f->n;
    return 0;
}

/* The total histogram of a numeric-by-key frame: the merge of its keys' histograms. */
static struct sn_hist *keys_total(const struct sn_ds_slot *v)
{
    struct sn_hist *t = sn_hist_create();
    for (size_t i = 0; t && i < v->n; i++)
        if (v->e[i].hist && sn_hist_merge(t, v->e[i].hist) < 0) {
            sn_hist_destroy(t);
            return NULL;
        }
    return t;
}

int sn_ds_add(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now)
{
    struct sn_ds_slot view, *s;
    int64_t t = align(ds, f->t);
    uint32_t si, pos;
    int rc;

    if (f->arity != ds->o.arity)
        return SN_DS_MISMATCH;
    if (f->t > now + SN_DS_MAX_FUTURE)
        return SN_DS_FUTURE;
    if (t < now - (int64_t)ds->o.retention) /* the rule of sn_ds_expire() */
        return SN_DS_LATE;
    s = ring_slot(ds, t);
    if (s->t != EMPTY && s->t > t)
        return SN_DS_LATE;
    if ((rc = source_index(ds, f->host, &si)) < 0)
        return rc;
    if (s->t == t && ds->o.point && has_source(s, si, &pos))
        return SN_DS_DUPLICATE;
    if ((rc = frame_view(f, &view)) < 0)
        return rc;
    struct sn_hist *total = NULL;
    if (ds->o.arity == SN_WIRE_NUMERIC_BY_KEY && !(view.total = total = keys_total(&view))) {
        free(view.e);
        return -ENOMEM;
    }
    if (s->t != t) { /* the ring slot held an older slot: it is past the retention */
        sn_ds_slot_fini(s);
        s->t = t;
    }
    rc = merge_slot(s, &view);
    if (rc == 0 && (rc = add_source(s, si)) == 0 && ds->src[si].last < f->t)
        ds->src[si].last = f->t;
    free(view.e);
    sn_hist_destroy(total);
    return rc < 0 ? rc : SN_DS_ADDED;
}

void sn_ds_expire(struct sn_dataset *ds, int64_t now)
{
    for (uint32_t i = 0; i < ds->nslots; i++)
        if (ds->ring[i].t != EMPTY && ds->ring[i].t < now - (int64_t)ds->o.retention)
            sn_ds_slot_fini(&ds->ring[i]);
}

const struct sn_ds_slot *sn_ds_slot_at(const struct sn_dataset *ds, int64_t t)
{
    const struct sn_ds_slot *s;
    t = align(ds, t);
    s = ring_slot(ds, t);
    return s->t == t ? s : NULL;
}

int sn_ds_sum(const struct sn_dataset *ds, int64_t start, int64_t duration, struct sn_ds_slot *out)
{
    int64_t g = ds->o.granularity;

    memset(out, 0, sizeof(*out));
    out->t = align(ds, start);
    for (int64_t t = out->t; t < start + duration; t += g) {
        const struct sn_ds_slot *s = sn_ds_slot_at(ds, t);
        if (s && merge_slot(out, s) < 0) {
            sn_ds_slot_fini(out);
            return -ENOMEM;
        }
        if (ds->o.point) /* a snapshot: the first slot's, never a sum */
            break;
    }
    return 0;
}

uint32_t sn_ds_min_reporting(const struct sn_dataset *ds, int64_t start, int64_t duration)
{
    uint32_t min = UINT32_MAX;
    for (int64_t t = align(ds, start); t < start + duration; t += ds->o.granularity) {
        const struct sn_ds_slot *s = sn_ds_slot_at(ds, t);
        uint32_t n = s ? s->nsrc : 0;
        if (n < min)
            min = n;
    }
    return min == UINT32_MAX ? 0 : min;
}

uint32_t sn_ds_reported_between(const struct sn_dataset *ds, int64_t from, int64_t to)
{
    uint32_t n = 0;
    unsigned char *seen;

    if (ds->nsrc == 0 || from > to)
        return 0;
    seen = calloc(ds->nsrc, 1);
    if (!seen) /* best effort: the largest single slot */
        return sn_ds_min_reporting(ds, from, 1);
    for (int64_t t = align(ds, from); t <= to; t += ds->o.granularity) {
        const struct sn_ds_slot *s = sn_ds_slot_at(ds, t);
        for (uint32_t i = 0; s && i < s->nsrc; i++)
            if (!seen[s->src[i]]) {
                seen[s->src[i]] = 1;
                n++;
            }
    }
    free(seen);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Persistence: "SNDS", version, arity, point, G, the source names, then each slot as its
 * start, its count, its reporting sources and its value as a binary frame (wire/frame.h, which
 * carries its own checksum); a CRC-32C of everything before it ends the file.
 */

struct buf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const void *v, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = {v, v >> 8, v >> 16, v >> 24};
    put(b, x, 4);
}

static void put_i64(struct buf *b, int64_t v)
{
    put_u32(b, (uint32_t)(uint64_t)v);
    put_u32(b, (uint32_t)((uint64_t)v >> 32));
}

static int put_slot(struct buf *b, const struct sn_dataset *ds, const struct sn_ds_slot *s)
{
    struct sn_wire_entry one, *e = s->n ? malloc(s->n * sizeof(*e)) : NULL;
    struct sn_hist *empty = sn_hist_create();
    struct sn_wire_frame f = {.id = "ds",
                              .host = "ds",
                              .t = s->t,
                              .arity = ds->o.arity,
                              .total = s->count,
                              .over_cap = s->over_cap,
                              .map_full = s->map_full};
    size_t len;
    ssize_t rc;

    if ((s->n && !e) || !empty) {
        free(e);
        sn_hist_destroy(empty);
        return -ENOMEM;
    }
    /* a frame's counts are what the format checks them against: each entry's its histogram's,
     * the total their sum as the format adds them (a saturated slot still saves) */
    if (ds->o.arity == SN_WIRE_NUMERIC) {
        const struct sn_hist *h = s->total ? s->total : empty;
        one = (struct sn_wire_entry){"", sn_hist_count(h), (struct sn_hist *)h};
        f.entries = &one;
        f.n = 1;
        f.total = one.count;
    } else if (ds->o.arity != SN_WIRE_SCALAR) {
        f.total = 0;
        for (size_t i = 0; i < s->n; i++) {
            e[i] = (struct sn_wire_entry){s->e[i].key, s->e[i].count, NULL};
            if (ds->o.arity == SN_WIRE_NUMERIC_BY_KEY) {
                e[i].hist = s->e[i].hist ? s->e[i].hist : empty;
                e[i].count = sn_hist_count(e[i].hist);
            }
            f.total += e[i].count;
        }
        f.entries = e;
        f.n = s->n;
    }
    put_i64(b, s->t);
    put_i64(b,
            (int64_t)s->count); /* the slot's own: the frame's total is what its entries add to */
    put_u32(b, s->nsrc);
    for (uint32_t i = 0; i < s->nsrc; i++)
        put_u32(b, s->src[i]);
    len = sn_wire_frame_len(&f);
    unsigned char *fb = malloc(len);
    rc = fb ? sn_wire_frame_encode(&f, fb, len) : -ENOMEM;
    if (rc >= 0) {
        put_u32(b, (uint32_t)rc);
        put(b, fb, (size_t)rc);
    }
    free(fb);
    free(e);
    sn_hist_destroy(empty);
    return rc < 0 ? (int)rc : 0;
}

int sn_ds_save(const struct sn_dataset *ds, unsigned char **out, size_t *len)
{
    struct buf b = {0};
    uint32_t nslots = 0;
    unsigned char head[8] = {'S', 'N', 'D', 'S', 1, ds->o.arity, ds->o.point, 0};

    put(&b, head, sizeof(head));
    put_u32(&b, ds->o.granularity);
    put_u32(&b, ds->nsrc);
    for (uint32_t i = 0; i < ds->nsrc; i++) {
        uint32_t n = (uint32_t)strlen(ds->src[i].name);
        put_u32(&b, n);
        put(&b, ds->src[i].name, n);
    }
    for (uint32_t i = 0; i < ds->nslots; i++)
        nslots += ds->ring[i].t != EMPTY;
    put_u32(&b, nslots);
    for (uint32_t i = 0; i < ds->nslots; i++)
        if (ds->ring[i].t != EMPTY && put_slot(&b, ds, &ds->ring[i]) < 0)
            b.oom = true;
    put_u32(&b, sn_crc32c(0, b.p, b.len));
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

struct rd {
    const unsigned char *p;
    size_t len, at;
};

static bool get_u32(struct rd *r, uint32_t *v)
{
    if (r->len - r->at < 4)
        return false;
    const unsigned char *p = r->p + r->at;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->at += 4;
    return true;
}

static bool get_i64(struct rd *r, int64_t *v)
{
    uint32_t lo, hi;
    if (!get_u32(r, &lo) || !get_u32(r, &hi))
        return false;
    *v = (int64_t)((uint64_t)hi << 32 | lo);
    return true;
}

/* Reads a saved dataset: checks it whole when !apply, adds it to ds when apply (after a check
 * passed, so that only running out of memory can stop it half way). */
static int load(struct sn_dataset *ds, const unsigned char *buf, size_t len, int64_t now,
                bool apply)
{
    struct rd r = {buf, len, 8};
    uint32_t g, nsrc, nslots, crc, *map = NULL;
    int rc = -EINVAL;

    if (len < 12 || memcmp(buf, "SNDS\1", 5) != 0)
        return -EINVAL;
    memcpy(&crc, buf + len - 4, 4);
    crc = le32toh(crc);
    if (sn_crc32c(0, buf, len - 4) != crc)
        return -EINVAL;
    r.len = len - 4;
    if (buf[5] != ds->o.arity || !get_u32(&r, &g) || g != ds->o.granularity ||
        !get_u32(&r, &nsrc) || nsrc > SN_DS_MAX_SOURCES)
        return -EINVAL;
    map = calloc(nsrc ? nsrc : 1, sizeof(*map));
    if (!map)
        return -ENOMEM;
    for (uint32_t i = 0; i < nsrc; i++) {
        uint32_t n;
        char name[SN_WIRE_MAX_NAME + 1];
        if (!get_u32(&r, &n) || n > SN_WIRE_MAX_NAME || r.len - r.at < n)
            goto out;
        memcpy(name, r.p + r.at, n);
        name[n] = '\0';
        r.at += n;
        if (memchr(name, '\0', n))
            goto out;
        if (apply && (rc = source_index(ds, name, &map[i])) < 0)
            goto out;
        rc = -EINVAL;
    }
    if (!get_u32(&r, &nslots))
        goto out;
    for (uint32_t k = 0; k < nslots; k++) {
        int64_t t, count;
        uint32_t n, flen;
        struct sn_wire_frame f;
        if (!get_i64(&r, &t) || !get_i64(&r, &count) || !get_u32(&r, &n) || n > nsrc || n == 0)
            goto out;
        size_t srcat = r.at;
        if (r.len - r.at < (size_t)n * 4)
            goto out;
        r.at += (size_t)n * 4;
        if (!get_u32(&r, &flen) || r.len - r.at < flen)
            goto out;
        if ((rc = sn_wire_frame_decode(r.p + r.at, flen, &f)) < 0) {
            rc = rc == -ENOMEM ? rc : -EINVAL;
            goto out;
        }
        rc = -EINVAL;
        r.at += flen;
        if (f.arity != ds->o.arity || f.t != t) {
            sn_wire_frame_fini(&f);
            goto out;
        }
        /* add once per reporting source, data with the first: the slot keeps its sources */
        struct rd sr = {r.p, r.len, srcat};
        char *host = f.host;
        int added = 0;
        for (uint32_t i = 0; i < n && added >= 0; i++) {
            uint32_t si = UINT32_MAX;
            if (!get_u32(&sr, &si) || si >= nsrc) {
                added = -EINVAL;
                break;
            }
            if (!apply)
                continue;
            f.host = ds->src[map[si]].name;
            if (i == 0) {
                struct sn_ds_slot *sl = ring_slot(ds, align(ds, t));
                bool fresh = sl->t != align(ds, t);
                added = sn_ds_add(ds, &f, now);
                if (added == SN_DS_ADDED && fresh) /* restore the slot's own count */
                    sl->count = (uint64_t)count;
            } else {
                struct sn_ds_slot *s = ring_slot(ds, align(ds, t));
                added = s->t == align(ds, t) ? add_source(s, map[si]) : 0;
            }
        }
        f.host = host;
        sn_wire_frame_fini(&f);
        if (added < 0) { /* a late or duplicate slot is not an error: it is simply not kept */
            rc = added;
            goto out;
        }
    }
    rc = r.at == r.len ? 0 : -EINVAL;
out:
    free(map);
    return rc;
}

int sn_ds_load(struct sn_dataset *ds, const unsigned char *buf, size_t len, int64_t now)
{
    int rc = load(ds, buf, len, now, false);
    return rc < 0 ? rc : load(ds, buf, len, now, true);
}
