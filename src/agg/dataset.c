/*
 * Datasets; see dataset.h. Every addition builds a new slot: the entries of the frames added
 * to it at once (one, or a batch's frames of that second) are sorted once (repeated keys
 * merged, sn_hist_merge_many()), then merged with the current slot's sorted entries in one
 * pass, keeping the key cap; the new slot replaces the old one in the ring. Interval sums merge
 * slots the same way. Published slots are never changed, so an adder can build without the
 * server's lock while readers read the slot it builds on.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agg/dataset.h"
#include "core/crc32c.h"
#include "core/grow.h"

#define EMPTY INT64_MIN

struct source {
    char *name;
    int64_t last; /* last report or touch */
};

/* A slot of the ring. Immutable once in the ring (except by sn_ds_load(), which has the
 * dataset to itself); refs counts the ring's reference and that of an adder building on it. */
struct rslot {
    struct sn_ds_slot s;
    _Atomic uint32_t refs;
    struct rslot *next; /* on a list of dead slots (struct sn_ds_dead) */
};

struct sn_dataset {
    struct sn_ds_opts o;
    uint32_t nslots;
    struct rslot **ring; /* slot of t at (t / G) % nslots; NULL when unused */
    struct source *src;
    uint32_t nsrc;
    size_t capsrc;
    pthread_mutex_t add_mu; /* one adder at a time (sn_ds_add_shared()) */
    _Atomic uint32_t refs;
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

static void rslot_free(struct rslot *r)
{
    if (!r)
        return;
    sn_ds_slot_fini(&r->s);
    free(r);
}

/* Drops a reference to r; the last one frees it, or puts it on *dead when dead is not NULL. */
static void rslot_unref(struct rslot *r, struct rslot **dead)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (dead) {
        r->next = *dead;
        *dead = r;
    } else {
        rslot_free(r);
    }
}

void sn_ds_dead_free(struct sn_ds_dead *dead)
{
    struct rslot *r = (struct rslot *)dead;
    while (r) {
        struct rslot *next = r->next;
        rslot_free(r);
        r = next;
    }
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
    ds->ring = calloc(ds->nslots, sizeof(*ds->ring));
    if (!ds->ring) {
        free(ds);
        return NULL;
    }
    pthread_mutex_init(&ds->add_mu, NULL);
    atomic_init(&ds->refs, 1);
    return ds;
}

struct sn_dataset *sn_ds_ref(struct sn_dataset *ds)
{
    atomic_fetch_add(&ds->refs, 1);
    return ds;
}

void sn_ds_destroy(struct sn_dataset *ds)
{
    if (!ds || atomic_fetch_sub(&ds->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < ds->nslots; i++)
        rslot_unref(ds->ring[i], NULL);
    for (uint32_t i = 0; i < ds->nsrc; i++)
        free(ds->src[i].name);
    pthread_mutex_destroy(&ds->add_mu);
    free(ds->src);
    free(ds->ring);
    free(ds);
}

const struct sn_ds_opts *sn_ds_opts(const struct sn_dataset *ds)
{
    return &ds->o;
}

static struct rslot **ring_at(const struct sn_dataset *ds, int64_t t)
{
    int64_t k = t / (int64_t)ds->o.granularity;
    return &ds->ring[(uint64_t)k % ds->nslots];
}

int sn_ds_set_retention(struct sn_dataset *ds, uint32_t retention, int64_t now)
{
    struct sn_ds_opts o = ds->o;
    struct rslot **old = ds->ring, **ring;
    uint32_t oldn = ds->nslots;

    o.retention = retention;
    if (!opts_ok(&o))
        return -EINVAL;
    ring = calloc(ring_size(retention, o.granularity), sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    ds->o = o;
    ds->ring = ring;
    ds->nslots = ring_size(retention, o.granularity);
    for (uint32_t i = 0; i < oldn; i++) {
        struct rslot *r = old[i], **d;
        if (!r)
            continue;
        if (r->s.t < now - (int64_t)retention) {
            rslot_unref(r, NULL);
            continue;
        }
        d = ring_at(ds, r->s.t);
        if (*d && (*d)->s.t > r->s.t) { /* two old slots share the new index: keep newer */
            rslot_unref(r, NULL);
            continue;
        }
        rslot_unref(*d, NULL);
        *d = r;
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
        struct source *s = sn_grow(ds->src, &ds->capsrc, (size_t)ds->nsrc + 1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        ds->src = s;
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

/* Whether host is a known source (its index in *out). */
static bool source_find(const struct sn_dataset *ds, const char *host, uint32_t *out)
{
    for (uint32_t i = 0; i < ds->nsrc; i++)
        if (strcmp(ds->src[i].name, host) == 0) {
            *out = i;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------------------------------
 * Merging
 */

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

/* The frames of one second (one or a batch of them) as one addition: their entries sorted by
 * key, repeated keys merged: keys borrowed from the frames; a key's histogram borrowed when it
 * comes once, else the merge of its frames' (own[i]). */
struct delta {
    struct sn_ds_entry *e;
    unsigned char *own;
    size_t n;
    struct sn_hist *total; /* numeric arities: the merge of every histogram (owned) */
    uint64_t count, over_cap, map_full;
};

static void delta_fini(struct delta *d)
{
    for (size_t i = 0; d->own && i < d->n; i++)
        if (d->own[i])
            sn_hist_destroy(d->e[i].hist);
    free(d->e);
    free(d->own);
    sn_hist_destroy(d->total);
    memset(d, 0, sizeof(*d));
}

/* An entry of a frame, with its place in the batch (keeps the frames' order among equals). */
struct dent {
    struct sn_ds_entry e;
    size_t seq;
};

static int cmp_dent(const void *a, const void *b)
{
    const struct dent *x = a, *y = b;
    int c = strcmp(x->e.key, y->e.key);
    return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The delta of frames f[i] for i in idx[0..m) (m >= 1). Returns 0 or -ENOMEM (d empty). */
static int delta_init(const struct sn_wire_frame *const *f, const size_t *idx, size_t m,
                      struct delta *d)
{
    uint8_t arity = f[idx[0]]->arity;
    size_t ne = 0, w = 0;
    struct dent *all = NULL;
    const struct sn_hist **hs = NULL;

    memset(d, 0, sizeof(*d));
    for (size_t k = 0; k < m; k++) {
        const struct sn_wire_frame *fr = f[idx[k]];
        d->count = sat_add(d->count, fr->total);
        d->over_cap = sat_add(d->over_cap, fr->over_cap);
        d->map_full = sat_add(d->map_full, fr->map_full);
        ne += fr->n;
    }
    if (arity == SN_WIRE_SCALAR || ne == 0)
        return 0;
    if (!(all = malloc(ne * sizeof(*all))) || !(hs = malloc(ne * sizeof(*hs))))
        goto oom;
    ne = 0;
    for (size_t k = 0; k < m; k++) {
        const struct sn_wire_frame *fr = f[idx[k]];
        for (size_t i = 0; i < fr->n; i++, ne++) {
            all[ne].e =
                (struct sn_ds_entry){fr->entries[i].key, fr->entries[i].count, fr->entries[i].hist};
            all[ne].seq = ne;
            hs[ne] = fr->entries[i].hist;
        }
    }
    if (arity == SN_WIRE_NUMERIC || arity == SN_WIRE_NUMERIC_BY_KEY) {
        /* numeric: a frame's one histogram; by key: every key's */
        size_t nh = 0;
        for (size_t k = 0, j = 0; k < m; k++) {
            const struct sn_wire_frame *fr = f[idx[k]];
            for (size_t i = 0; i < fr->n; i++, j++)
                if (arity == SN_WIRE_NUMERIC_BY_KEY || i == 0)
                    hs[nh++] = hs[j];
        }
        if (!(d->total = sn_hist_create()) || sn_hist_merge_many(d->total, hs, nh) < 0)
            goto oom;
    }
    if (arity == SN_WIRE_NUMERIC) {
        free(all);
        free(hs);
        return 0;
    }
    if (!(d->e = malloc(ne * sizeof(*d->e))) || !(d->own = calloc(ne, 1)))
        goto oom;
    if (ne > 1)
        qsort(all, ne, sizeof(*all), cmp_dent);
    for (size_t i = 0; i < ne;) {
        size_t j = i + 1, nh = 0;
        uint64_t count = all[i].e.count;
        for (; j < ne && strcmp(all[j].e.key, all[i].e.key) == 0; j++)
            count = sat_add(count, all[j].e.count);
        d->e[w] = (struct sn_ds_entry){all[i].e.key, count, all[i].e.hist};
        if (j - i > 1) { /* a repeated key: its histograms merged (never into a frame's own) */
            for (size_t k = i; k < j; k++)
                if (all[k].e.hist)
                    hs[nh++] = all[k].e.hist;
            if (nh > 1) {
                struct sn_hist *h = sn_hist_create();
                d->e[w].hist = h;
                d->own[w] = 1;
                d->n = w + 1;
                if (!h || sn_hist_merge_many(h, hs, nh) < 0)
                    goto oom;
            } else {
                d->e[w].hist = nh ? (struct sn_hist *)hs[0] : NULL;
            }
        }
        w++;
        i = j;
    }
    d->n = w;
    free(all);
    free(hs);
    return 0;
oom:
    free(all);
    free(hs);
    delta_fini(d);
    return -ENOMEM;
}

/* A deep copy of entry e, plus (when add is not NULL) add's count and histogram. */
static int entry_copy(struct sn_ds_entry *out, const struct sn_ds_entry *e,
                      const struct sn_ds_entry *add)
{
    out->key = strdup(e->key);
    out->count = add ? sat_add(e->count, add->count) : e->count;
    out->hist = NULL;
    if (!out->key || merge_hist(&out->hist, e->hist) < 0 ||
        (add && merge_hist(&out->hist, add->hist) < 0)) {
        free(out->key);
        sn_hist_destroy(out->hist);
        return -ENOMEM;
    }
    return 0;
}

struct newkey {
    uint64_t count;
    size_t j; /* index in the delta */
};

/* Largest count first, then the delta's (key) order. */
static int cmp_newkey(const void *a, const void *b)
{
    const struct newkey *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->j < y->j ? -1 : x->j > y->j;
}

static int keycmp(const struct sn_ds_entry *a, size_t i, size_t na, const struct sn_ds_entry *b,
                  size_t j, size_t nb)
{
    if (i < na && j < nb)
        return strcmp(a[i].key, b[j].key);
    return i < na ? -1 : 1;
}

/* Which of d's keys old lacks get a place of their own under the cap (admit[j]); the others
 * are folded into "other". Returns 0 or -ENOMEM. */
static int admit_keys(const struct sn_ds_slot *old, const struct delta *d, uint32_t cap,
                      unsigned char *admit)
{
    size_t K = old ? old->n : 0, i = 0, j = 0, nnew = 0, kept = K, room;
    struct newkey *nk;

    for (; j < d->n; j++) { /* old's keys and d's are both sorted */
        while (i < K && strcmp(old->e[i].key, d->e[j].key) < 0)
            i++;
        bool isnew = !(i < K && strcmp(old->e[i].key, d->e[j].key) == 0);
        admit[j] = isnew ? 0 : 1;
        if (strcmp(d->e[j].key, SN_DS_OTHER) == 0)
            admit[j] = 1; /* "other" is always there, and does not count */
        else if (isnew)
            nnew++;
    }
    for (i = 0; i < K; i++)
        if (strcmp(old->e[i].key, SN_DS_OTHER) == 0)
            kept--;
    room = cap == 0 ? SIZE_MAX : kept < cap ? cap - kept : 0;
    if (nnew <= room) {
        for (j = 0; j < d->n; j++)
            admit[j] = 1;
        return 0;
    }
    if (room == 0)
        return 0;
    nk = malloc(nnew * sizeof(*nk));
    if (!nk)
        return -ENOMEM;
    size_t m = 0;
    for (j = 0; j < d->n; j++)
        if (!admit[j])
            nk[m++] = (struct newkey){d->e[j].count, j};
    qsort(nk, m, sizeof(*nk), cmp_newkey);
    for (size_t k = 0; k < room && k < m; k++)
        admit[nk[k].j] = 1;
    free(nk);
    return 0;
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

/* Adds the folded count and histogram to s's "other" entry (room for one more entry is
 * allocated). */
static int add_other(struct sn_ds_slot *s, uint64_t count, const struct sn_hist *h)
{
    bool found;
    size_t i = find_key(s, SN_DS_OTHER, &found);
    if (!found) {
        char *key = strdup(SN_DS_OTHER);
        if (!key)
            return -ENOMEM;
        memmove(&s->e[i + 1], &s->e[i], (s->n - i) * sizeof(*s->e));
        s->e[i] = (struct sn_ds_entry){key, 0, NULL};
        s->n++;
    }
    s->e[i].count = sat_add(s->e[i].count, count);
    return merge_hist(&s->e[i].hist, h);
}

/*
 * The slot that old (NULL: none yet) becomes with the frames of d added, for second t: a new
 * slot that shares nothing with old, its sources old's (the frames' sources are added when it
 * is published). Runs without any lock: old is immutable. Returns 0 or -ENOMEM.
 */
static int build(const struct sn_dataset *ds, const struct sn_ds_slot *old, const struct delta *d,
                 int64_t t, struct rslot **out, struct sn_ds_fold *fold)
{
    struct rslot *r = calloc(1, sizeof(*r));
    struct sn_ds_slot *s = r ? &r->s : NULL;
    size_t K = old ? old->n : 0;
    unsigned char *admit = NULL;
    struct sn_hist *fh = NULL;
    uint64_t fcount = 0, fkeys = 0;
    int rc = -ENOMEM;

    if (!r)
        return -ENOMEM;
    atomic_init(&r->refs, 1);
    s->t = t;
    s->count = sat_add(old ? old->count : 0, d->count);
    s->over_cap = sat_add(old ? old->over_cap : 0, d->over_cap);
    s->map_full = sat_add(old ? old->map_full : 0, d->map_full);
    if (old && old->nsrc) {
        if (!(s->src = malloc(old->nsrc * sizeof(*s->src))))
            goto out;
        memcpy(s->src, old->src, old->nsrc * sizeof(*s->src));
        s->nsrc = old->nsrc;
    }
    if (old && merge_hist(&s->total, old->total) < 0)
        goto out;
    if (merge_hist(&s->total, d->total) < 0)
        goto out;
    if (K + d->n > 0) {
        if (!(admit = calloc(d->n ? d->n : 1, 1)) || admit_keys(old, d, ds->o.key_cap, admit) < 0 ||
            !(s->e = malloc((K + d->n + 1) * sizeof(*s->e))))
            goto out;
        s->cap = K + d->n + 1;
        for (size_t i = 0, j = 0; i < K || j < d->n;) {
            int c = keycmp(old ? old->e : NULL, i, K, d->e, j, d->n);
            if (c > 0 && !admit[j]) { /* no room: to "other" */
                fcount = sat_add(fcount, d->e[j].count);
                fkeys++;
                if ((rc = merge_hist(&fh, d->e[j].hist)) < 0)
                    goto out;
                j++;
                continue;
            }
            if (c < 0)
                rc = entry_copy(&s->e[s->n], &old->e[i++], NULL);
            else if (c == 0)
                rc = entry_copy(&s->e[s->n], &old->e[i++], &d->e[j++]);
            else
                rc = entry_copy(&s->e[s->n], &d->e[j++], NULL);
            if (rc < 0)
                goto out;
            s->n++;
        }
        rc = -ENOMEM;
        if (fkeys && add_other(s, fcount, fh) < 0)
            goto out;
    }
    s->over_cap = sat_add(s->over_cap, fcount);
    if (fold) {
        fold->keys = fkeys;
        fold->events = fcount;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    rslot_free(r);
    free(admit);
    sn_hist_destroy(fh);
    return rc;
}

#define PENDING INT_MIN /* a frame of a batch not decided yet */

/* One second's frames of a batch: f[idx[0..m)], all of slot t, in the batch's order. */
struct group {
    const struct sn_wire_frame *const *f;
    size_t *idx, m;
    int64_t t;
};

/* Under the readers' lock (read): whether g's frames may be added to slot t (rcs[] of those
 * that may not: late, or a point metric's second report of a source), and the slot to build
 * on (*old, referenced; NULL when the slot is new). Returns how many may. */
static size_t check(struct sn_dataset *ds, const struct group *g, int64_t now, int *rcs,
                    struct rslot **old)
{
    struct rslot *r = *ring_at(ds, g->t);
    bool late = g->t < now - (int64_t)ds->o.retention || (r && r->s.t > g->t);
    size_t ok = 0;

    *old = NULL;
    if (!late && r && r->s.t == g->t) {
        atomic_fetch_add(&r->refs, 1);
        *old = r;
    }
    for (size_t k = 0; k < g->m; k++) {
        const struct sn_wire_frame *f = g->f[g->idx[k]];
        uint32_t si, pos;
        int *rc = &rcs[g->idx[k]];
        *rc = late ? SN_DS_LATE : SN_DS_ADDED;
        if (!late && ds->o.point) {
            /* the first report of a source in a slot is its value; the rest are duplicates */
            if (*old && source_find(ds, f->host, &si) && has_source(&(*old)->s, si, &pos))
                *rc = SN_DS_DUPLICATE;
            for (size_t j = 0; j < k && *rc == SN_DS_ADDED; j++)
                if (rcs[g->idx[j]] == SN_DS_ADDED && strcmp(g->f[g->idx[j]]->host, f->host) == 0)
                    *rc = SN_DS_DUPLICATE;
        }
        ok += *rc == SN_DS_ADDED;
    }
    return ok;
}

/* Under the readers' lock (write): puts r in the ring in place of old (which an expiry or a
 * change of retention may have taken out meanwhile: the frames are then late), with the sources
 * of g's frames that are added (rcs[] SN_DS_ADDED). Slots that lose their last reference go
 * on *dead. */
static int publish(struct sn_dataset *ds, const struct group *g, int64_t now, const int *rcs,
                   struct rslot *old, struct rslot *r, struct rslot **dead)
{
    struct rslot **p = ring_at(ds, g->t), *cur = *p;
    uint32_t si;
    int rc;

    if (g->t < now - (int64_t)ds->o.retention)
        return SN_DS_LATE;
    if (old ? cur != old : cur && cur->s.t >= g->t)
        return SN_DS_LATE;
    for (size_t k = 0; k < g->m; k++) {
        const struct sn_wire_frame *f = g->f[g->idx[k]];
        if (rcs[g->idx[k]] != SN_DS_ADDED)
            continue;
        if ((rc = source_index(ds, f->host, &si)) < 0 || (rc = add_source(&r->s, si)) < 0)
            return rc;
        if (ds->src[si].last < f->t)
            ds->src[si].last = f->t;
    }
    *p = r;
    rslot_unref(cur, dead);
    return SN_DS_ADDED;
}

/* Sets the result of g's frames still to be added (rcs[] SN_DS_ADDED) to rc. */
static void settle(const struct group *g, int *rcs, int rc)
{
    for (size_t k = 0; k < g->m; k++)
        if (rcs[g->idx[k]] == SN_DS_ADDED || rcs[g->idx[k]] == PENDING)
            rcs[g->idx[k]] = rc;
}

/* Adds one second's frames (their results in rcs[]); shared as add()'s. */
static void add_group(struct sn_dataset *ds, struct group *g, int64_t now, pthread_rwlock_t *lk,
                      int shared, int *rcs, struct sn_ds_fold *fold)
{
    struct rslot *old = NULL, *r = NULL, *dead = NULL;
    struct sn_ds_fold fd = {0, 0};
    struct delta d;
    int rc;

    if (shared == 2 && pthread_mutex_trylock(&ds->add_mu) != 0) {
        settle(g, rcs, -EAGAIN);
        return;
    }
    /* the frames' share of the work, before any lock: a point metric's duplicates, rare, are
     * found under it and the delta made anew without them */
    if ((rc = delta_init(g->f, g->idx, g->m, &d)) < 0) {
        if (shared == 2)
            pthread_mutex_unlock(&ds->add_mu);
        settle(g, rcs, rc);
        return;
    }
    if (shared == 1)
        pthread_mutex_lock(&ds->add_mu);
    if (lk)
        pthread_rwlock_rdlock(lk);
    size_t ok = check(ds, g, now, rcs, &old);
    if (lk)
        pthread_rwlock_unlock(lk);
    rc = ok ? SN_DS_ADDED : SN_DS_LATE; /* nothing to add: the results are set */
    if (ok && ok < g->m && ds->o.point) {
        size_t w = 0;
        for (size_t k = 0; k < g->m; k++)
            if (rcs[g->idx[k]] == SN_DS_ADDED)
                g->idx[w++] = g->idx[k];
        g->m = w;
        delta_fini(&d);
        rc = delta_init(g->f, g->idx, g->m, &d);
    }
    if (ok && rc == SN_DS_ADDED && (rc = build(ds, old ? &old->s : NULL, &d, g->t, &r, &fd)) == 0) {
        if (lk)
            pthread_rwlock_wrlock(lk);
        rc = publish(ds, g, now, rcs, old, r, &dead);
        if (lk)
            pthread_rwlock_unlock(lk);
        if (rc == SN_DS_ADDED)
            r = NULL;
    }
    if (shared)
        pthread_mutex_unlock(&ds->add_mu);
    if (ok && rc != SN_DS_ADDED)
        settle(g, rcs, rc);
    else if (ok && fold) {
        fold->keys += fd.keys;
        fold->events += fd.events;
    }
    /* the old slot and whatever else lost its last reference, freed without any lock */
    rslot_unref(old, NULL);
    rslot_free(r);
    sn_ds_dead_free((struct sn_ds_dead *)dead);
    delta_fini(&d);
}

/* A frame's aligned second and place in the batch, to group a batch by second. */
struct tix {
    int64_t t;
    size_t i;
};

static int cmp_tix(const void *a, const void *b)
{
    const struct tix *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Adds frames f[0..n) (n >= 1), each one's result in rcs[i], one new slot per second they
 * cover (whatever their number: a batch of a thousand hosts' frames of one second costs one
 * copy of its slot). shared: 0 the caller has ds to itself; 1 wait for other adders; 2 -EAGAIN
 * if one is at work. Returns 0, or -ENOMEM when the batch's bookkeeping could not be made
 * (then every rcs[i] is -ENOMEM).
 */
static int add(struct sn_dataset *ds, const struct sn_wire_frame *const *f, size_t n, int64_t now,
               pthread_rwlock_t *lk, int shared, int *rcs, struct sn_ds_fold *fold)
{
    struct tix one, *tx = n > 1 ? malloc(n * sizeof(*tx)) : &one;
    size_t one_i, *idx = n > 1 ? malloc(n * sizeof(*idx)) : &one_i, m = 0;

    if (fold)
        *fold = (struct sn_ds_fold){0, 0};
    if (!tx || !idx) {
        if (n > 1) {
            free(tx);
            free(idx);
        }
        for (size_t i = 0; i < n; i++)
            rcs[i] = -ENOMEM;
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rcs[i] = PENDING;
        if (f[i]->arity != ds->o.arity) /* arity and granularity never change */
            rcs[i] = SN_DS_MISMATCH;
        else if (f[i]->t > now + SN_DS_MAX_FUTURE)
            rcs[i] = SN_DS_FUTURE;
        else
            tx[m++] = (struct tix){align(ds, f[i]->t), i};
    }
    if (m > 1)
        qsort(tx, m, sizeof(*tx), cmp_tix);
    for (size_t i = 0; i < m;) {
        size_t j = i;
        struct group g = {.f = f, .idx = idx, .t = tx[i].t};
        for (; j < m && tx[j].t == g.t; j++)
            idx[g.m++] = tx[j].i;
        add_group(ds, &g, now, lk, shared, rcs, fold);
        i = j;
    }
    if (n > 1) {
        free(tx);
        free(idx);
    }
    return 0;
}

int sn_ds_add(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now)
{
    int rc;
    return add(ds, &f, 1, now, NULL, 0, &rc, NULL) < 0 ? -ENOMEM : rc;
}

int sn_ds_add_shared(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now,
                     pthread_rwlock_t *readers, struct sn_ds_fold *fold)
{
    int rc;
    return add(ds, &f, 1, now, readers, 1, &rc, fold) < 0 ? -ENOMEM : rc;
}

int sn_ds_add_shared_try(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now,
                         pthread_rwlock_t *readers, struct sn_ds_fold *fold)
{
    int rc;
    return add(ds, &f, 1, now, readers, 2, &rc, fold) < 0 ? -ENOMEM : rc;
}

int sn_ds_add_many(struct sn_dataset *ds, const struct sn_wire_frame *const *f, size_t n,
                   int64_t now, pthread_rwlock_t *readers, bool try, int *rcs,
                   struct sn_ds_fold *fold)
{
    return add(ds, f, n, now, readers, try ? 2 : 1, rcs, fold);
}

static void expire(struct sn_dataset *ds, int64_t now, struct rslot **dead)
{
    for (uint32_t i = 0; i < ds->nslots; i++)
        if (ds->ring[i] && ds->ring[i]->s.t < now - (int64_t)ds->o.retention) {
            rslot_unref(ds->ring[i], dead);
            ds->ring[i] = NULL;
        }
}

void sn_ds_expire(struct sn_dataset *ds, int64_t now)
{
    expire(ds, now, NULL);
}

void sn_ds_expire_defer(struct sn_dataset *ds, int64_t now, struct sn_ds_dead **dead)
{
    expire(ds, now, (struct rslot **)dead);
}

const struct sn_ds_slot *sn_ds_slot_at(const struct sn_dataset *ds, int64_t t)
{
    const struct rslot *r;
    t = align(ds, t);
    r = *ring_at(ds, t);
    return r && r->s.t == t ? &r->s : NULL;
}

uint32_t sn_ds_nslots(const struct sn_dataset *ds)
{
    return ds->nslots;
}

static int cmp_rslot_t(const void *a, const void *b)
{
    int64_t x = (*(const struct sn_ds_slot *const *)a)->t;
    int64_t y = (*(const struct sn_ds_slot *const *)b)->t;
    return x < y ? -1 : x > y;
}

size_t sn_ds_slots_ref(const struct sn_dataset *ds, int64_t from, int64_t to,
                       const struct sn_ds_slot **out)
{
    int64_t g = ds->o.granularity, t0 = align(ds, from);
    size_t n = 0;

    if (to <= t0)
        return 0;
    if ((uint64_t)(to - t0) / (uint64_t)g < ds->nslots) { /* fewer times than slots: by time */
        for (int64_t t = t0; t < to; t += g) {
            struct rslot *r = *ring_at(ds, t);
            if (r && r->s.t == t) {
                atomic_fetch_add(&r->refs, 1);
                out[n++] = &r->s;
            }
        }
        return n;
    }
    for (uint32_t i = 0; i < ds->nslots; i++) { /* else the whole ring, then sorted */
        struct rslot *r = ds->ring[i];
        if (r && r->s.t >= t0 && r->s.t < to) {
            atomic_fetch_add(&r->refs, 1);
            out[n++] = &r->s;
        }
    }
    qsort(out, n, sizeof(*out), cmp_rslot_t);
    return n;
}

struct sn_ds_slot *sn_ds_slot_new(int64_t t)
{
    struct rslot *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->s.t = t;
    atomic_init(&r->refs, 1);
    return &r->s;
}

void sn_ds_slot_unref(const struct sn_ds_slot *s)
{
    /* s is the first member of its rslot */
    rslot_unref((struct rslot *)(uintptr_t)s, NULL);
}

/* dst += src for interval sums: one pass over both sorted key lists. On -ENOMEM dst is valid
 * but holds part of src. */
int sn_ds_slot_add(struct sn_ds_slot *dst, const struct sn_ds_slot *src)
{
    int rc = 0;

    if (src->n) {
        size_t cap = dst->n + src->n, k = 0, i = 0, j = 0;
        struct sn_ds_entry *e = malloc(cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        while (i < dst->n || j < src->n) {
            int c = keycmp(dst->e, i, dst->n, src->e, j, src->n);
            if (c < 0) {
                e[k++] = dst->e[i++];
            } else if (c == 0) {
                e[k] = dst->e[i++];
                if (rc == 0 && merge_hist(&e[k].hist, src->e[j].hist) < 0)
                    rc = -ENOMEM;
                if (rc == 0)
                    e[k].count = sat_add(e[k].count, src->e[j].count);
                k++;
                j++;
            } else {
                if (rc == 0 && (rc = entry_copy(&e[k], &src->e[j], NULL)) == 0)
                    k++;
                j++;
            }
        }
        free(dst->e);
        dst->e = e;
        dst->n = k;
        dst->cap = cap;
    }
    if (rc < 0 || merge_hist(&dst->total, src->total) < 0)
        return -ENOMEM;
    dst->count = sat_add(dst->count, src->count);
    dst->over_cap = sat_add(dst->over_cap, src->over_cap);
    dst->map_full = sat_add(dst->map_full, src->map_full);
    return 0;
}

/* ---- Many slots at once ---------------------------------------------------------------- */

/* An entry of one of the slots being summed (dst's own: from < 0). */
struct ref {
    const char *key;
    uint64_t count;
    const struct sn_hist *hist;
    long from; /* -1: dst's entry i (moved, not copied) */
    size_t i;
};

static int cmp_ref_key(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->from < y->from ? -1 : x->from > y->from; /* dst's first: it is the target */
}

static uint64_t sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* Whether the slots have keys (a discrete point metric's values go per key, a scalar's to the
 * total). */
static bool src_keyed(const struct sn_ds_slot *const *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (src[i]->n)
            return true;
    return false;
}

/* A histogram of one sample per count (a point metric's values). */
static int values_into(struct sn_hist **h, const uint64_t *v, size_t n)
{
    if (!*h && !(*h = sn_hist_create()))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (sn_hist_insert_u64(*h, v[i], 1) < 0)
            return -ENOMEM;
    return 0;
}

int sn_ds_slot_add_many(struct sn_ds_slot *dst, const struct sn_ds_slot *const *src, size_t n,
                        bool values)
{
    const struct sn_hist **hs = NULL;
    struct ref *r = NULL;
    size_t nr = 0, nh = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        dst->count = sat(dst->count, src[i]->count);
        dst->over_cap = sat(dst->over_cap, src[i]->over_cap);
        dst->map_full = sat(dst->map_full, src[i]->map_full);
    }
    /* the totals */
    if (values && !src_keyed(src, n)) { /* a scalar's values */
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = values_into(&dst->total, &src[i]->count, 1);
    } else if (!values) {
        if (!(hs = malloc((n ? n : 1) * sizeof(*hs))))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (src[i]->total)
                hs[nh++] = src[i]->total;
        if (nh && !dst->total && !(dst->total = sn_hist_create()))
            rc = -ENOMEM;
        if (rc == 0 && nh)
            rc = sn_hist_merge_many(dst->total, hs, nh);
    }
    if (rc < 0)
        goto out;
    /* the entries: every slot's, sorted by key once, each key's merged at once */
    size_t total = dst->n;
    for (size_t i = 0; i < n; i++)
        total += src[i]->n;
    if (total == dst->n)
        goto out;
    free(hs);
    if (!(r = malloc(total * sizeof(*r))) || !(hs = malloc(total * sizeof(*hs)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < dst->n; j++)
        r[nr++] = (struct ref){dst->e[j].key, dst->e[j].count, dst->e[j].hist, -1, j};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < src[i]->n; j++)
            r[nr++] =
                (struct ref){src[i]->e[j].key, src[i]->e[j].count, src[i]->e[j].hist, (long)i, j};
    qsort(r, nr, sizeof(*r), cmp_ref_key);
    size_t ngroups = 0;
    for (size_t k = 0; k < nr; k++)
        ngroups += k == 0 || strcmp(r[k].key, r[k - 1].key) != 0;
    struct sn_ds_entry *e = calloc(ngroups, sizeof(*e));
    if (!e) {
        rc = -ENOMEM;
        goto out;
    }
    size_t g = 0;
    for (size_t k = 0; k < nr;) {
        size_t end = k + 1;
        while (end < nr && strcmp(r[end].key, r[k].key) == 0)
            end++;
        struct sn_ds_entry *out = &e[g++];
        size_t first = k;
        if (r[k].from < 0) { /* dst's entry: moved, the others added to it */
            *out = dst->e[r[k].i];
            dst->e[r[k].i].key = NULL;
            dst->e[r[k].i].hist = NULL;
            first = k + 1;
        } else if (!(out->key = strdup(r[k].key))) {
            rc = -ENOMEM;
        }
        nh = 0;
        for (size_t m = first; m < end; m++) {
            out->count = sat(out->count, r[m].count);
            if (values) {
                if (rc == 0)
                    rc = values_into(&out->hist, &r[m].count, 1);
            } else if (r[m].hist) {
                hs[nh++] = r[m].hist;
            }
        }
        if (rc == 0 && nh && !out->hist && !(out->hist = sn_hist_create()))
            rc = -ENOMEM;
        if (rc == 0 && nh)
            rc = sn_hist_merge_many(out->hist, hs, nh);
        k = end;
    }
    /* dst's entries not moved (none, unless out of memory) are freed with the old array */
    for (size_t j = 0; j < dst->n; j++) {
        free(dst->e[j].key);
        sn_hist_destroy(dst->e[j].hist);
    }
    free(dst->e);
    dst->e = e;
    dst->n = g;
    dst->cap = ngroups;
out:
    free(r);
    free(hs);
    return rc;
}

int sn_ds_sum(const struct sn_dataset *ds, int64_t start, int64_t duration, struct sn_ds_slot *out)
{
    int64_t g = ds->o.granularity;

    memset(out, 0, sizeof(*out));
    out->t = align(ds, start);
    for (int64_t t = out->t; t < start + duration; t += g) {
        const struct sn_ds_slot *s = sn_ds_slot_at(ds, t);
        if (s && sn_ds_slot_add(out, s) < 0) {
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
        unsigned char *p = sn_grow(b->p, &b->cap, b->len + n, 1);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
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

int sn_ds_frame_of(uint8_t arity, const struct sn_ds_slot *s, struct sn_ds_frame *out)
{
    struct sn_wire_frame *f = &out->f;

    memset(out, 0, sizeof(*out));
    out->e = s->n ? malloc(s->n * sizeof(*out->e)) : NULL;
    out->empty = sn_hist_create();
    if ((s->n && !out->e) || !out->empty) {
        sn_ds_frame_fini(out);
        return -ENOMEM;
    }
    *f = (struct sn_wire_frame){.t = s->t,
                                .arity = arity,
                                .total = s->count,
                                .over_cap = s->over_cap,
                                .map_full = s->map_full};
    /* a frame's counts are what the format checks them against: each entry's its histogram's,
     * the total their sum as the format adds them (a saturated slot still converts) */
    if (arity == SN_WIRE_NUMERIC) {
        const struct sn_hist *h = s->total ? s->total : out->empty;
        out->one = (struct sn_wire_entry){"", sn_hist_count(h), (struct sn_hist *)h};
        f->entries = &out->one;
        f->n = 1;
        f->total = out->one.count;
    } else if (arity != SN_WIRE_SCALAR) {
        f->total = 0;
        for (size_t i = 0; i < s->n; i++) {
            out->e[i] = (struct sn_wire_entry){s->e[i].key, s->e[i].count, NULL};
            if (arity == SN_WIRE_NUMERIC_BY_KEY) {
                out->e[i].hist = s->e[i].hist ? s->e[i].hist : out->empty;
                out->e[i].count = sn_hist_count(out->e[i].hist);
            }
            f->total += out->e[i].count;
        }
        f->entries = out->e;
        f->n = s->n;
    }
    return 0;
}

void sn_ds_frame_fini(struct sn_ds_frame *fr)
{
    free(fr->e);
    sn_hist_destroy(fr->empty);
    memset(fr, 0, sizeof(*fr));
}

static int put_slot(struct buf *b, const struct sn_dataset *ds, const struct sn_ds_slot *s)
{
    struct sn_ds_frame fr;
    size_t len;
    ssize_t rc;

    if ((rc = sn_ds_frame_of(ds->o.arity, s, &fr)) < 0)
        return (int)rc;
    fr.f.id = "ds";
    fr.f.host = "ds";
    put_i64(b, s->t);
    put_i64(b,
            (int64_t)s->count); /* the slot's own: the frame's total is what its entries add to */
    put_u32(b, s->nsrc);
    for (uint32_t i = 0; i < s->nsrc; i++)
        put_u32(b, s->src[i]);
    len = sn_wire_frame_len(&fr.f);
    unsigned char *fb = malloc(len);
    rc = fb ? sn_wire_frame_encode(&fr.f, fb, len) : -ENOMEM;
    if (rc >= 0) {
        put_u32(b, (uint32_t)rc);
        put(b, fb, (size_t)rc);
    }
    free(fb);
    sn_ds_frame_fini(&fr);
    return rc < 0 ? (int)rc : 0;
}

int sn_ds_restore(struct sn_dataset *ds, const struct sn_ds_slot *s, const char *const *names,
                  int64_t now)
{
    struct sn_ds_frame fr;
    int rc;

    if (!s->nsrc)
        return 0; /* nobody reported: nothing to restore */
    if ((rc = sn_ds_frame_of(ds->o.arity, s, &fr)) < 0)
        return rc;
    fr.f.id = "ds";
    fr.f.host = (char *)names[0];
    struct sn_ds_slot *sl = (struct sn_ds_slot *)sn_ds_slot_at(ds, s->t);
    bool fresh = sl == NULL;
    rc = sn_ds_add(ds, &fr.f, now);
    sn_ds_frame_fini(&fr);
    if (rc != SN_DS_ADDED)
        return rc < 0 ? rc : 0;
    /* the dataset is the caller's alone: its slots may be changed in place */
    sl = (struct sn_ds_slot *)sn_ds_slot_at(ds, s->t);
    if (fresh && sl)
        sl->count = s->count; /* the slot's own count */
    for (uint32_t i = 1; sl && i < s->nsrc; i++) {
        uint32_t si;
        if ((rc = source_index(ds, names[i], &si)) < 0 || (rc = add_source(sl, si)) < 0)
            return rc;
    }
    return 0;
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
        nslots += ds->ring[i] != NULL;
    put_u32(&b, nslots);
    for (uint32_t i = 0; i < ds->nslots; i++)
        if (ds->ring[i] && put_slot(&b, ds, &ds->ring[i]->s) < 0)
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
            /* the dataset is the caller's alone: its slots may be changed in place */
            struct sn_ds_slot *sl = (struct sn_ds_slot *)sn_ds_slot_at(ds, t);
            if (i == 0) {
                bool fresh = sl == NULL;
                added = sn_ds_add(ds, &f, now);
                sl = (struct sn_ds_slot *)sn_ds_slot_at(ds, t);
                if (added == SN_DS_ADDED && fresh && sl) /* restore the slot's own count */
                    sl->count = (uint64_t)count;
            } else {
                added = sl ? add_source(sl, map[si]) : 0;
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
