/*
 * The aggregator; see agg.h. The registry is a short array under a mutex (lookups are a
 * strcmp per instrumentation, a few hundred at most); each entry carries its dataset, the
 * reader-writer lock its readers and its publishing adders share, and the status its sources
 * reported. Queries hold an entry's lock only to take references to slots (views), or to read
 * a count; everything else runs on the referenced, immutable slots without a lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg/agg.h"
#include "core/grow.h"

struct status {
    char *host;
    enum sn_agg_run run;
    int64_t since_ms;
    char why[SN_AGG_WHY_MAX];
};

struct entry {
    char *key;
    struct sn_dataset *ds;
    pthread_rwlock_t lock; /* the readers' lock of ds; guards st too */
    _Atomic uint32_t refs; /* the registry's, and one per query or frame at work */
    struct status *st;
    size_t nst, capst;
};

struct counters {
    _Atomic uint64_t frames_in, frames_unknown, frames_late, frames_future, frames_duplicate,
        frames_mismatch, events_over_cap, events_map_full, keys_folded, events_folded;
};

struct listener {
    sn_agg_listener fn;
    void *arg;
};

struct sn_agg {
    pthread_mutex_t mu; /* the registry: e, n, cap; and adding listeners */
    struct entry **e;
    size_t n, cap;
    struct listener lis[SN_AGG_MAX_LISTENERS];
    _Atomic size_t nlis;
    struct counters c;
};

struct sn_agg_view {
    uint32_t g;
    bool point, values;
    size_t n;
    const struct sn_ds_slot **s; /* referenced, in time order */
};

/* ------------------------------------------------------------------------------------------
 * The registry
 */

int sn_agg_create(struct sn_agg **out)
{
    struct sn_agg *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return 0;
}

static void entry_unref(struct entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    sn_ds_destroy(e->ds);
    for (size_t i = 0; i < e->nst; i++)
        free(e->st[i].host);
    free(e->st);
    pthread_rwlock_destroy(&e->lock);
    free(e->key);
    free(e);
}

void sn_agg_destroy(struct sn_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        entry_unref(a->e[i]);
    free(a->e);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int sn_agg_listen(struct sn_agg *a, sn_agg_listener fn, void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    size_t n = atomic_load(&a->nlis);
    if (n == SN_AGG_MAX_LISTENERS) {
        rc = -ENOSPC;
    } else {
        a->lis[n] = (struct listener){fn, arg};
        atomic_store(&a->nlis, n + 1); /* published after it is written */
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* Under mu: the index of key, or a->n. */
static size_t index_of(const struct sn_agg *a, const char *key)
{
    size_t i = 0;
    while (i < a->n && strcmp(a->e[i]->key, key) != 0)
        i++;
    return i;
}

/* key's entry, referenced (entry_unref()), or NULL. */
static struct entry *find_ref(struct sn_agg *a, const char *key)
{
    struct entry *e = NULL;
    pthread_mutex_lock(&a->mu);
    size_t i = index_of(a, key);
    if (i < a->n) {
        e = a->e[i];
        atomic_fetch_add(&e->refs, 1);
    }
    pthread_mutex_unlock(&a->mu);
    return e;
}

int sn_agg_add(struct sn_agg *a, const char *key, struct sn_dataset *ds)
{
    struct entry *e;
    pthread_rwlockattr_t la;
    int rc = 0;

    if (!key[0] || strlen(key) >= 128)
        return -EINVAL;
    if (!(e = calloc(1, sizeof(*e))) || !(e->key = strdup(key))) {
        free(e);
        return -ENOMEM;
    }
    /* a frame's publish must not wait behind a stream of readers */
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->lock, &la);
    pthread_rwlockattr_destroy(&la);
    atomic_init(&e->refs, 1);
    e->ds = sn_ds_ref(ds);
    pthread_mutex_lock(&a->mu);
    if (index_of(a, key) < a->n) {
        rc = -EEXIST;
    } else if (a->n == a->cap) {
        struct entry **p = sn_grow(a->e, &a->cap, a->n + 1, sizeof(*a->e));
        if (p)
            a->e = p;
        else
            rc = -ENOMEM;
    }
    if (rc == 0)
        a->e[a->n++] = e;
    pthread_mutex_unlock(&a->mu);
    if (rc < 0)
        entry_unref(e);
    return rc;
}

int sn_agg_remove(struct sn_agg *a, const char *key)
{
    struct entry *e = NULL;
    pthread_mutex_lock(&a->mu);
    size_t i = index_of(a, key);
    if (i < a->n) {
        e = a->e[i];
        memmove(&a->e[i], &a->e[i + 1], (a->n - i - 1) * sizeof(*a->e));
        a->n--;
    }
    pthread_mutex_unlock(&a->mu);
    if (!e)
        return -ENOENT;
    entry_unref(e); /* the registry's: queries and frames at work keep it until they are done */
    return 0;
}

int sn_agg_arity(struct sn_agg *a, const char *key)
{
    struct entry *e = find_ref(a, key);
    int arity;
    if (!e)
        return -ENOENT;
    arity = sn_ds_opts(e->ds)->arity; /* fixed at creation: no lock */
    entry_unref(e);
    return arity;
}

int sn_agg_set_retention(struct sn_agg *a, const char *key, uint32_t retention, int64_t now)
{
    struct entry *e = find_ref(a, key);
    int rc;
    if (!e)
        return -ENOENT;
    pthread_rwlock_wrlock(&e->lock);
    rc = sn_ds_set_retention(e->ds, retention, now);
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return rc;
}

int sn_agg_save(struct sn_agg *a, const char *key, unsigned char **buf, size_t *len)
{
    struct entry *e = find_ref(a, key);
    int rc;
    if (!e)
        return -ENOENT;
    pthread_rwlock_rdlock(&e->lock);
    rc = sn_ds_save(e->ds, buf, len);
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Ingest and the tick
 */

/* Counts what happened to a frame (added, or why not). */
static void count_outcome(struct sn_agg *a, const struct sn_wire_frame *f, int rc)
{
    switch (rc) {
    case SN_DS_ADDED:
        atomic_fetch_add(&a->c.frames_in, 1);
        atomic_fetch_add(&a->c.events_over_cap, f->over_cap);
        atomic_fetch_add(&a->c.events_map_full, f->map_full);
        break;
    case SN_DS_LATE:
        atomic_fetch_add(&a->c.frames_late, 1);
        break;
    case SN_DS_FUTURE:
        atomic_fetch_add(&a->c.frames_future, 1);
        break;
    case SN_DS_DUPLICATE:
        atomic_fetch_add(&a->c.frames_duplicate, 1);
        break;
    case SN_DS_MISMATCH:
        atomic_fetch_add(&a->c.frames_mismatch, 1);
        break;
    }
}

/* Frames f[0..n) of one instrumentation (f[0]->id) into its dataset, as one batch. */
static void ingest_run(struct sn_agg *a, const struct sn_wire_frame *const *f, size_t n,
                       int64_t now, bool try, int *rcs, struct sn_ds_fold *fold)
{
    struct entry *e = find_ref(a, f[0]->id);
    struct sn_ds_fold fd = {0, 0};

    if (!e) {
        atomic_fetch_add(&a->c.frames_unknown, n);
        for (size_t i = 0; i < n; i++)
            rcs[i] = -ENOENT;
        return;
    }
    /* merged under the dataset's adder mutex; e's lock only to look and to publish */
    sn_ds_add_many(e->ds, f, n, now, &e->lock, try, rcs, &fd);
    entry_unref(e);
    atomic_fetch_add(&a->c.keys_folded, fd.keys);
    atomic_fetch_add(&a->c.events_folded, fd.events);
    if (fold) {
        fold->keys += fd.keys;
        fold->events += fd.events;
    }
    int64_t told = INT64_MIN; /* the listeners hear of each second once per run of it */
    for (size_t i = 0; i < n; i++) {
        count_outcome(a, f[i], rcs[i]);
        if (rcs[i] != SN_DS_ADDED || f[i]->t == told)
            continue;
        told = f[i]->t;
        for (size_t l = 0, nl = atomic_load(&a->nlis); l < nl; l++)
            a->lis[l].fn(a->lis[l].arg, f[i]->id, f[i]->t);
    }
}

void sn_agg_ingest_many(struct sn_agg *a, const struct sn_wire_frame *const *f, size_t n,
                        int64_t now, bool try, int *rcs, struct sn_ds_fold *fold)
{
    if (fold)
        *fold = (struct sn_ds_fold){0, 0};
    for (size_t i = 0; i < n;) { /* runs of one instrumentation */
        size_t j = i + 1;
        while (j < n && strcmp(f[j]->id, f[i]->id) == 0)
            j++;
        ingest_run(a, f + i, j - i, now, try, rcs + i, fold);
        i = j;
    }
}

int sn_agg_ingest(struct sn_agg *a, const struct sn_wire_frame *f, int64_t now,
                  struct sn_ds_fold *fold)
{
    int rc;
    sn_agg_ingest_many(a, &f, 1, now, false, &rc, fold);
    return rc;
}

int sn_agg_ingest_try(struct sn_agg *a, const struct sn_wire_frame *f, int64_t now,
                      struct sn_ds_fold *fold)
{
    int rc;
    sn_agg_ingest_many(a, &f, 1, now, true, &rc, fold);
    return rc;
}

void sn_agg_counters(const struct sn_agg *a, struct sn_agg_counters *out)
{
    out->frames_in = atomic_load(&a->c.frames_in);
    out->frames_unknown = atomic_load(&a->c.frames_unknown);
    out->frames_late = atomic_load(&a->c.frames_late);
    out->frames_future = atomic_load(&a->c.frames_future);
    out->frames_duplicate = atomic_load(&a->c.frames_duplicate);
    out->frames_mismatch = atomic_load(&a->c.frames_mismatch);
    out->events_over_cap = atomic_load(&a->c.events_over_cap);
    out->events_map_full = atomic_load(&a->c.events_map_full);
    out->keys_folded = atomic_load(&a->c.keys_folded);
    out->events_folded = atomic_load(&a->c.events_folded);
}

/* Every entry, referenced, into a new array (*n of them); NULL when out of memory. */
static struct entry **all_refs(struct sn_agg *a, size_t *n)
{
    pthread_mutex_lock(&a->mu);
    struct entry **v = malloc((a->n ? a->n : 1) * sizeof(*v));
    for (size_t i = 0; v && i < a->n; i++) {
        v[i] = a->e[i];
        atomic_fetch_add(&v[i]->refs, 1);
    }
    *n = v ? a->n : 0;
    pthread_mutex_unlock(&a->mu);
    return v;
}

void sn_agg_expire(struct sn_agg *a, int64_t now)
{
    size_t n;
    struct entry **v = all_refs(a, &n);

    for (size_t i = 0; i < n; i++) {
        struct sn_ds_dead *dead = NULL;
        pthread_rwlock_wrlock(&v[i]->lock);
        sn_ds_expire_defer(v[i]->ds, now, &dead);
        pthread_rwlock_unlock(&v[i]->lock);
        sn_ds_dead_free(dead); /* a slot of many keys takes a while: not under the lock */
        entry_unref(v[i]);
    }
    free(v);
}

/* ------------------------------------------------------------------------------------------
 * Per-source status
 */

int sn_agg_set_status(struct sn_agg *a, const char *key, const char *host, enum sn_agg_run run,
                      int64_t since_ms, const char *why)
{
    struct entry *e = find_ref(a, key);
    struct status *st = NULL;
    int rc = 0;

    if (!e)
        return -ENOENT;
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < e->nst && !st; i++)
        if (strcmp(e->st[i].host, host) == 0)
            st = &e->st[i];
    if (!st && e->nst == e->capst) {
        struct status *p = sn_grow(e->st, &e->capst, e->nst + 1, sizeof(*e->st));
        if (p)
            e->st = p;
    }
    if (!st && e->nst < e->capst) {
        st = &e->st[e->nst];
        *st = (struct status){.host = strdup(host)};
        if (st->host)
            e->nst++;
        else
            st = NULL;
    }
    if (st) {
        st->run = run;
        st->since_ms = since_ms;
        snprintf(st->why, sizeof(st->why), "%s", why ? why : "");
        if (run == SN_AGG_RUNNING)
            rc = sn_ds_touch(e->ds, host, since_ms / 1000);
    } else {
        rc = -ENOMEM;
    }
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return rc;
}

int sn_agg_get_status(struct sn_agg *a, const char *key, const char *host,
                      struct sn_agg_status *out)
{
    struct entry *e = find_ref(a, key);
    int rc = -ENOENT;

    memset(out, 0, sizeof(*out));
    if (!e)
        return -ENOENT;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->nst; i++)
        if (strcmp(e->st[i].host, host) == 0) {
            out->run = e->st[i].run;
            out->since_ms = e->st[i].since_ms;
            memcpy(out->why, e->st[i].why, sizeof(out->why));
            rc = 0;
            break;
        }
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return rc;
}

void sn_agg_strings_free(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

char **sn_agg_not_running(struct sn_agg *a, const char *key, size_t *n)
{
    struct entry *e = find_ref(a, key);
    char **out = NULL;

    *n = 0;
    if (!e)
        return NULL;
    pthread_rwlock_rdlock(&e->lock);
    out = calloc(e->nst ? e->nst : 1, sizeof(*out));
    for (size_t i = 0; out && i < e->nst; i++) {
        if (e->st[i].run != SN_AGG_REFUSED || !e->st[i].why[0])
            continue;
        if (!(out[*n] = strdup(e->st[i].why))) {
            sn_agg_strings_free(out, *n);
            out = NULL;
            *n = 0;
            break;
        }
        (*n)++;
    }
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return out;
}

/* ------------------------------------------------------------------------------------------
 * Queries
 */

int sn_agg_slot_get(struct sn_agg *a, const char *key, int64_t t, const struct sn_ds_slot **slot,
                    char ***names)
{
    struct entry *e = find_ref(a, key);
    const struct sn_ds_slot *sl;
    char **nm = NULL;
    int rc = 0;

    *slot = NULL;
    *names = NULL;
    if (!e)
        return -ENOENT;
    pthread_rwlock_rdlock(&e->lock);
    const struct sn_ds_slot *one;
    if (sn_ds_slots_ref(e->ds, t, t + 1, &one) == 1) {
        sl = one;
        if (!(nm = calloc(sl->nsrc ? sl->nsrc : 1, sizeof(*nm))))
            rc = -ENOMEM;
        for (uint32_t i = 0; rc == 0 && i < sl->nsrc; i++) {
            const char *n = sn_ds_source_name(e->ds, sl->src[i]);
            if (!(nm[i] = strdup(n ? n : "")))
                rc = -ENOMEM;
        }
        if (rc < 0) {
            sn_agg_strings_free(nm, sl->nsrc);
            sn_ds_slot_unref(sl);
        } else {
            *slot = sl;
            *names = nm;
        }
    } else {
        rc = -ENOENT;
    }
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return rc;
}

int sn_agg_opts(struct sn_agg *a, const char *key, struct sn_ds_opts *o)
{
    struct entry *e = find_ref(a, key);
    if (!e)
        return -ENOENT;
    *o = *sn_ds_opts(e->ds); /* immutable */
    entry_unref(e);
    return 0;
}

uint32_t sn_agg_sources_since(struct sn_agg *a, const char *key, int64_t t)
{
    struct entry *e = find_ref(a, key);
    uint32_t n;
    if (!e)
        return 0;
    pthread_rwlock_rdlock(&e->lock);
    n = sn_ds_sources_since(e->ds, t);
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return n;
}

uint32_t sn_agg_expected(struct sn_agg *a, const char *key, int64_t now, int64_t last,
                         uint32_t *reported)
{
    struct entry *e = find_ref(a, key);
    uint32_t n;

    if (reported)
        *reported = 0;
    if (!e)
        return 0;
    pthread_rwlock_rdlock(&e->lock);
    const struct sn_ds_slot *s = sn_ds_slot_at(e->ds, last);
    int64_t end = last + (int64_t)sn_ds_opts(e->ds)->granularity;
    if (reported)
        *reported = s ? s->nsrc : 0;
    n = sn_ds_reported_between(e->ds, now - 15, now - 5);
    /* a source that says it runs key reports every second: wait for it from its start on */
    for (size_t i = 0; n == 0 && i < e->nst; i++)
        if (e->st[i].run == SN_AGG_RUNNING && end * 1000 > e->st[i].since_ms)
            n = 1;
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    return n;
}

int sn_agg_view_open(struct sn_agg *a, const char *key, int64_t from, int64_t to,
                     struct sn_agg_view **out)
{
    struct entry *e = find_ref(a, key);
    struct sn_agg_view *v;
    int rc = 0;

    *out = NULL;
    if (!e)
        return -ENOENT;
    if (!(v = calloc(1, sizeof(*v)))) {
        entry_unref(e);
        return -ENOMEM;
    }
    pthread_rwlock_rdlock(&e->lock);
    const struct sn_ds_opts *o = sn_ds_opts(e->ds);
    v->g = o->granularity;
    v->point = o->point;
    v->s = malloc(sn_ds_nslots(e->ds) * sizeof(*v->s));
    if (v->s)
        v->n = sn_ds_slots_ref(e->ds, from, to, v->s);
    else
        rc = -ENOMEM;
    pthread_rwlock_unlock(&e->lock);
    entry_unref(e);
    if (rc < 0) {
        sn_agg_view_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void sn_agg_view_close(struct sn_agg_view *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        sn_ds_slot_unref(v->s[i]); /* the last reference frees it, here, without a lock */
    free(v->s);
    free(v);
}

int sn_agg_view_adopt(uint32_t g, bool point, bool values, struct sn_ds_slot **s, size_t n,
                      struct sn_agg_view **out)
{
    struct sn_agg_view *v = calloc(1, sizeof(*v));

    *out = NULL;
    if (!v || g == 0) {
        free(v);
        for (size_t i = 0; i < n; i++)
            sn_ds_slot_unref(s[i]);
        free(s);
        return -ENOMEM;
    }
    v->g = g;
    v->point = point;
    v->values = values;
    v->n = n;
    v->s = (const struct sn_ds_slot **)s;
    *out = v;
    return 0;
}

size_t sn_agg_view_slots(const struct sn_agg_view *v, const struct sn_ds_slot ***s)
{
    *s = v->s;
    return v->n;
}

bool sn_agg_view_values(const struct sn_agg_view *v)
{
    return v->values;
}

uint32_t sn_agg_view_granularity(const struct sn_agg_view *v)
{
    return v->g;
}

static int64_t align(const struct sn_agg_view *v, int64_t t)
{
    int64_t g = v->g, r = t % g;
    return r < 0 ? t - r - g : t - r;
}

/* The index of the first slot starting at or after t. */
static size_t lower(const struct sn_agg_view *v, int64_t t)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->s[mid]->t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct sn_ds_slot *slot_at(const struct sn_agg_view *v, int64_t t)
{
    t = align(v, t);
    size_t i = lower(v, t);
    return i < v->n && v->s[i]->t == t ? v->s[i] : NULL;
}

uint32_t sn_agg_view_nsrc(const struct sn_agg_view *v, int64_t t)
{
    const struct sn_ds_slot *s = slot_at(v, t);
    return s ? s->nsrc : 0;
}

uint32_t sn_agg_view_min_reporting(const struct sn_agg_view *v, int64_t start, int64_t duration)
{
    int64_t t0 = align(v, start), end = start + duration;
    uint32_t min = UINT32_MAX;

    if (t0 >= end)
        return 0;
    /* every slot time from t0 below end must have a slot, else the minimum is 0 */
    uint64_t times = ((uint64_t)(end - t0) + v->g - 1) / v->g;
    size_t i = lower(v, t0), j = lower(v, end);
    if ((uint64_t)(j - i) < times)
        return 0;
    for (; i < j; i++)
        if (v->s[i]->nsrc < min)
            min = v->s[i]->nsrc;
    return min == UINT32_MAX ? 0 : min;
}

void sn_agg_sum_fini(struct sn_ds_slot *sum)
{
    sn_ds_slot_fini(sum);
}

int sn_agg_view_sum(const struct sn_agg_view *v, int64_t start, int64_t duration,
                    struct sn_ds_slot *out)
{
    int64_t t0 = align(v, start), end = start + duration;

    memset(out, 0, sizeof(*out));
    out->t = t0;
    size_t from = lower(v, t0), to = from;
    while (to < v->n && v->s[to]->t < end)
        to++;
    if (v->point && to > from) /* a snapshot: the first slot's, never a sum */
        to = v->s[from]->t == t0 ? from + 1 : from;
    if (to > from && sn_ds_slot_add_many(out, v->s + from, to - from, false) < 0) {
        sn_ds_slot_fini(out);
        return -ENOMEM;
    }
    return 0;
}

int sn_agg_view_total(const struct sn_agg_view *v, int64_t start, size_t ncols,
                      struct sn_hist **out)
{
    int64_t t0 = align(v, start), end = t0 + (int64_t)ncols * v->g;
    struct sn_hist *h = sn_hist_create();

    *out = NULL;
    if (!h)
        return -ENOMEM;
    for (size_t i = lower(v, t0); i < v->n && v->s[i]->t < end; i++)
        if (v->s[i]->total && sn_hist_merge(h, v->s[i]->total) < 0) {
            sn_hist_destroy(h);
            return -ENOMEM;
        }
    *out = h;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sn_agg_view_keys(const struct sn_agg_view *v, int64_t start, size_t ncols, char ***keys,
                     size_t *n)
{
    int64_t t0 = align(v, start), end = t0 + (int64_t)ncols * v->g;
    size_t first = lower(v, t0), m = 0, all = 0, u = 0;
    const char **k;
    char **out;

    *keys = NULL;
    *n = 0;
    for (size_t i = first; i < v->n && v->s[i]->t < end; i++)
        all += v->s[i]->n;
    if (!(k = malloc((all ? all : 1) * sizeof(*k))))
        return -ENOMEM;
    for (size_t i = first; i < v->n && v->s[i]->t < end; i++)
        for (size_t j = 0; j < v->s[i]->n; j++)
            if (v->s[i]->e[j].count != 0)
                k[m++] = v->s[i]->e[j].key;
    qsort(k, m, sizeof(*k), cmp_str);
    out = calloc(m ? m : 1, sizeof(*out));
    for (size_t i = 0; out && i < m; i++) {
        if (u > 0 && strcmp(out[u - 1], k[i]) == 0)
            continue;
        if (!(out[u] = strdup(k[i]))) {
            sn_agg_strings_free(out, u);
            out = NULL;
            break;
        }
        u++;
    }
    free(k);
    if (!out)
        return -ENOMEM;
    *keys = out;
    *n = u;
    return 0;
}

struct key_count {
    uint64_t count;
    size_t i; /* index in the sorted keys */
};

/* Largest count first; ties in the keys' (sorted) order. */
static int cmp_key_count(const void *a, const void *b)
{
    const struct key_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int sn_agg_view_biggest(const struct sn_agg_view *v, int64_t start, size_t ncols,
                        const char *const *keys, size_t n, size_t **order)
{
    int64_t t0 = align(v, start), end = t0 + (int64_t)ncols * v->g;
    struct key_count *kc = calloc(n ? n : 1, sizeof(*kc));
    size_t *o = malloc((n ? n : 1) * sizeof(*o));

    *order = NULL;
    if (!kc || !o) {
        free(kc);
        free(o);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        kc[i].i = i;
    for (size_t c = lower(v, t0); c < v->n && v->s[c]->t < end; c++) {
        const struct sn_ds_slot *s = v->s[c];
        for (size_t e = 0; e < s->n; e++) {
            const char *k = s->e[e].key;
            const char *const *hit = bsearch(&k, keys, n, sizeof(*keys), cmp_str);
            if (hit) {
                struct key_count *x = &kc[hit - keys];
                x->count =
                    s->e[e].count > UINT64_MAX - x->count ? UINT64_MAX : x->count + s->e[e].count;
            }
        }
    }
    qsort(kc, n, sizeof(*kc), cmp_key_count);
    for (size_t i = 0; i < n; i++)
        o[i] = kc[i].i;
    free(kc);
    *order = o;
    return 0;
}

/* The entry of key in slot s (keys sorted by strcmp), or NULL. */
static const struct sn_ds_entry *find_entry(const struct sn_ds_slot *s, const char *key)
{
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->e[mid].key, key);
        if (c == 0)
            return &s->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void sn_agg_columns_fini(struct sn_agg_columns *c)
{
    free(c->r);
    free(c->off);
    memset(c, 0, sizeof(*c));
}

int sn_agg_view_columns(const struct sn_agg_view *v, int64_t start, size_t ncols,
                        const char *const *sel, size_t nsel, struct sn_agg_columns *out)
{
    int64_t t0 = align(v, start);
    size_t nl = 1 + nsel, cap = 0;
    const struct sn_ds_slot **col = calloc(ncols ? ncols : 1, sizeof(*col));

    memset(out, 0, sizeof(*out));
    out->ncols = ncols;
    out->nsel = nsel;
    out->off = calloc(nl * ncols + 1, sizeof(*out->off));
    if (!col || !out->off)
        goto oom;
    /* the slot of each column, walking the view once */
    for (size_t i = lower(v, t0); i < v->n; i++) {
        int64_t c = (v->s[i]->t - t0) / v->g;
        if (c >= (int64_t)ncols)
            break;
        col[c] = v->s[i];
    }
    /* the histogram of each layer's column, and room for all their ranges at once */
    const struct sn_hist **h = calloc(nl * ncols + 1, sizeof(*h));
    if (!h)
        goto oom;
    for (size_t l = 0; l < nl; l++)
        for (size_t c = 0; c < ncols; c++) {
            const struct sn_ds_entry *e;
            if (col[c] && l == 0)
                h[l * ncols + c] = col[c]->total;
            else if (col[c] && (e = find_entry(col[c], sel[l - 1])))
                h[l * ncols + c] = e->hist;
            cap += h[l * ncols + c] ? sn_hist_nbuckets(h[l * ncols + c]) : 0;
        }
    if (!(out->r = malloc((cap ? cap : 1) * sizeof(*out->r)))) {
        free(h);
        goto oom;
    }
    for (size_t i = 0; i < nl * ncols; i++) {
        out->nr += sn_hist_ranges(h[i], out->r + out->nr);
        out->off[i + 1] = out->nr;
    }
    free(h);
    free(col);
    return 0;
oom:
    free(col);
    sn_agg_columns_fini(out);
    return -ENOMEM;
}
