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

int sn_rollup_sum(struct sn_ds_slot *dst, const struct sn_ds_slot *const *src, size_t n,
                  uint8_t arity, bool raw_point)
{
    for (size_t i = 0; i < n; i++)
        if (union_sources(dst, src[i]) < 0)
            return -ENOMEM;
    /* a raw point slot's counts become values; no point metric is numeric */
    return sn_ds_slot_add_many(dst, src, n, raw_point && arity < SN_WIRE_NUMERIC);
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
