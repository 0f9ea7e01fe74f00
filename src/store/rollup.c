/*
 * Rolling up slots (store/rollup.h).
 */
#include "store/rollup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

static int union_sources(struct sn_ds_slot *dst, const struct sn_ds_slot *src)
{
    if (!src->nsrc)
        return 0;
    uint32_t *u = malloc(((size_t)dst->nsrc + src->nsrc) * sizeof(*u));
    uint32_t i = 0, j = 0, k = 0;
    if (!u)
        return -ENOMEM;
    while (i < dst->nsrc || j < src->nsrc) {
        if (j == src->nsrc || (i < dst->nsrc && dst->src[i] < src->src[j]))
            u[k++] = dst->src[i++];
        else if (i == dst->nsrc || src->src[j] < dst->src[i])
            u[k++] = src->src[j++];
        else {
            u[k++] = dst->src[i++];
            j++;
        }
    }
    free(dst->src);
    dst->src = u;
    dst->nsrc = k;
    return 0;
}

int sn_rollup_add(struct sn_ds_slot *dst, const struct sn_ds_slot *src, uint8_t arity,
                  bool raw_point)
{
    return sn_rollup_sum(dst, &src, 1, arity, raw_point);
}

/* An entry of one of the slots being summed (dst's own: from < 0). */
struct ref {
    const char *key;
    uint64_t count;
    const struct sn_hist *hist;
    long from; /* -1: dst's entry i (moved, not copied) */
    size_t i;
};

static int cmp_ref(const void *a, const void *b)
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

int sn_rollup_sum(struct sn_ds_slot *dst, const struct sn_ds_slot *const *src, size_t n,
                  uint8_t arity, bool raw_point)
{
    bool values = raw_point && arity < SN_WIRE_NUMERIC; /* no point metric is numeric */
    const struct sn_hist **hs = NULL;
    struct ref *r = NULL;
    size_t nr = 0, nh = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        dst->count = sat(dst->count, src[i]->count);
        dst->over_cap = sat(dst->over_cap, src[i]->over_cap);
        dst->map_full = sat(dst->map_full, src[i]->map_full);
        if (union_sources(dst, src[i]) < 0)
            return -ENOMEM;
    }
    /* the totals */
    if (values && arity == SN_WIRE_SCALAR) {
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
            r[nr++] = (struct ref){src[i]->e[j].key, src[i]->e[j].count, src[i]->e[j].hist,
                                   (long)i, j};
    qsort(r, nr, sizeof(*r), cmp_ref);
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

struct rank {
    size_t i;
    uint64_t count;
};

static int cmp_rank(const void *a, const void *b)
{
    const struct rank *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* entries are sorted by key: smaller key first */
}

int64_t sn_rollup_cap(struct sn_ds_slot *s, uint32_t cap)
{
    size_t other = SIZE_MAX, nkeys = s->n;

    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].key, SN_DS_OTHER) == 0) {
            other = i;
            nkeys--;
        }
    if (!cap || nkeys <= cap)
        return 0;
    struct rank *r = malloc(nkeys * sizeof(*r));
    bool *keep = calloc(s->n, sizeof(*keep));
    if (!r || !keep) {
        free(r);
        free(keep);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (i != other)
            r[k++] = (struct rank){i, s->e[i].count};
    qsort(r, k, sizeof(*r), cmp_rank);
    for (size_t i = 0; i < cap; i++)
        keep[r[i].i] = true;
    free(r);

    /* the folded entries' sum, as a one-entry slot "other" added to what is kept */
    struct sn_ds_entry fold = {.key = (char *)SN_DS_OTHER};
    int64_t folded = 0;
    int rc = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (keep[i] || i == other)
            continue;
        fold.count =
            fold.count + s->e[i].count < fold.count ? UINT64_MAX : fold.count + s->e[i].count;
        if (s->e[i].hist) {
            if (!fold.hist && !(fold.hist = sn_hist_create()))
                rc = -ENOMEM;
            if (rc == 0 && sn_hist_merge(fold.hist, s->e[i].hist) < 0)
                rc = -ENOMEM;
        }
        folded++;
    }
    size_t j = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (keep[i] || i == other) {
            s->e[j++] = s->e[i];
        } else {
            free(s->e[i].key);
            sn_hist_destroy(s->e[i].hist);
        }
    }
    s->n = j;
    free(keep);
    if (rc == 0) {
        struct sn_ds_slot add = {.n = 1, .e = &fold};
        uint64_t count = s->count, oc = s->over_cap, mf = s->map_full;
        struct sn_hist *total = s->total;
        s->total = NULL; /* the total already holds the folded keys */
        rc = sn_ds_slot_add(s, &add);
        sn_hist_destroy(s->total);
        s->total = total;
        s->count = count;
        s->over_cap = oc;
        s->map_full = mf;
    }
    sn_hist_destroy(fold.hist);
    return rc < 0 ? rc : folded;
}
