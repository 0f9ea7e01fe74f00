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

/* A raw point slot's values as a slot of histograms with one sample each (keys borrowed). */
static int as_values(const struct sn_ds_slot *src, uint8_t arity, struct sn_ds_slot *v)
{
    memset(v, 0, sizeof(*v));
    v->t = src->t;
    v->count = src->count;
    v->over_cap = src->over_cap;
    v->map_full = src->map_full;
    if (arity == SN_WIRE_SCALAR) {
        if (!(v->total = sn_hist_create()) || sn_hist_insert_u64(v->total, src->count, 1) < 0)
            return -ENOMEM;
        return 0;
    }
    if (src->n && !(v->e = calloc(src->n, sizeof(*v->e))))
        return -ENOMEM;
    v->n = src->n;
    for (size_t i = 0; i < src->n; i++) {
        v->e[i].key = src->e[i].key;
        v->e[i].count = src->e[i].count;
        if (!(v->e[i].hist = sn_hist_create()) ||
            sn_hist_insert_u64(v->e[i].hist, src->e[i].count, 1) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void values_fini(struct sn_ds_slot *v)
{
    for (size_t i = 0; i < v->n; i++)
        sn_hist_destroy(v->e[i].hist);
    free(v->e);
    sn_hist_destroy(v->total);
}

int sn_rollup_add(struct sn_ds_slot *dst, const struct sn_ds_slot *src, uint8_t arity,
                  bool raw_point)
{
    int rc;

    if (union_sources(dst, src) < 0)
        return -ENOMEM;
    if (!raw_point || arity >= SN_WIRE_NUMERIC) /* no point metric is numeric */
        return sn_ds_slot_add(dst, src);
    struct sn_ds_slot v;
    rc = as_values(src, arity, &v);
    if (rc == 0)
        rc = sn_ds_slot_add(dst, &v);
    values_fini(&v);
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
