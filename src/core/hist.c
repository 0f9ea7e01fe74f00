/*
 * Histogram storage: a sorted array of bucket ordinals with a parallel array of counts (see
 * hist_int.h for the layout and its invariants).
 *
 * Why ordinals: a u16 that sorts like the buckets do turns every comparison in search and
 * merge into one integer compare (upstream decodes two signed bytes through a 10-branch
 * comparator), and keeps the sorted keys dense in cache (2 bytes per bucket, not 10).
 *
 * Inserting a sample into an existing bucket is O(1) through the index: 181 lazily allocated
 * pages of 256 u16, ordinal -> slot+1, built on the first single-value insert. A new bucket is
 * placed by binary search and memmove, and the index entries behind it are renumbered: O(n),
 * but a histogram meets each bucket once. Merging walks both sorted arrays once to size the
 * union, then adds in place (when src's buckets are all present), merges backwards into the
 * spare room when the union fits, or merges forward into new arrays of the union's size
 * (reading the old ones once, where realloc would copy them and the merge move them again).
 * The index is a cache: if memory for it runs out it is dropped and lookups fall back to
 * binary search.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist_int.h"

/* --- internal helpers -------------------------------------------------------------------- */

static void index_free(struct sn_hist *h)
{
    if (!h->index)
        return;
    for (uint32_t p = 0; p < SN_HIST_INDEX_PAGES; p++)
        free(h->index[p]);
    free(h->index);
    h->index = NULL;
}

/* Sets index[ord] = slot+1, allocating ord's page. Returns -ENOMEM if it cannot. */
static int index_set(struct sn_hist *h, uint16_t ord, uint32_t slot)
{
    uint16_t **page = &h->index[ord >> 8];

    if (!*page) {
        *page = calloc(256, sizeof(**page));
        if (!*page)
            return -ENOMEM;
    }
    (*page)[ord & 255] = (uint16_t)(slot + 1);
    return 0;
}

void sn_hist_reindex(struct sn_hist *h)
{
    if (!h->index)
        return;
    for (uint32_t p = 0; p < SN_HIST_INDEX_PAGES; p++)
        if (h->index[p])
            memset(h->index[p], 0, 256 * sizeof(uint16_t));
    for (uint32_t i = 0; i < h->used; i++) {
        if (index_set(h, h->ord[i], i) < 0) {
            index_free(h);
            return;
        }
    }
}

static void index_build(struct sn_hist *h)
{
    h->index = calloc(SN_HIST_INDEX_PAGES, sizeof(*h->index));
    sn_hist_reindex(h);
}

/* Slot of ordinal o, or -1 if absent; *pos receives where it would be inserted. */
static int64_t find(const struct sn_hist *h, uint16_t o, uint32_t *pos)
{
    uint32_t lo = 0, n = h->used;

    if (h->index) {
        const uint16_t *page = h->index[o >> 8];
        if (page && page[o & 255])
            return page[o & 255] - 1;
        if (!pos)
            return -1;
    }
    while (n > 0) { /* lower bound */
        uint32_t half = n / 2;
        if (h->ord[lo + half] < o) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    if (pos)
        *pos = lo;
    return lo < h->used && h->ord[lo] == o ? (int64_t)lo : -1;
}

int sn_hist_reserve(struct sn_hist *h, uint32_t n)
{
    uint32_t cap;
    void *p;

    if (n <= h->cap)
        return 0;
    cap = h->cap ? h->cap : 16;
    while (cap < n)
        cap *= 2;
    if (cap > SN_BUCKET_NORD)
        cap = n > SN_BUCKET_NORD ? n : SN_BUCKET_NORD;
    p = realloc(h->ord, cap * sizeof(*h->ord));
    if (!p)
        return -ENOMEM;
    h->ord = p;
    p = realloc(h->cnt, cap * sizeof(*h->cnt));
    if (!p)
        return -ENOMEM; /* ord is larger than needed; harmless, cap unchanged */
    h->cnt = p;
    h->cap = cap;
    return 0;
}

void sn_hist_reset(struct sn_hist *h)
{
    index_free(h);
    h->used = 0;
}

#if !defined(NDEBUG) || defined(SN_SANITIZE)
/* Not assert(): CMake's release-with-debug-info flags define NDEBUG in the ASan build too. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: histogram invariant broken: %s\n", __FILE__, __LINE__, #x);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

void sn_hist_check(const struct sn_hist *h)
{
    CHECK(h->used <= h->cap);
    for (uint32_t i = 0; i < h->used; i++) {
        CHECK(h->ord[i] < SN_BUCKET_NORD);
        CHECK(i == 0 || h->ord[i - 1] < h->ord[i]);
        if (h->index) {
            const uint16_t *page = h->index[h->ord[i] >> 8];
            CHECK(page && page[h->ord[i] & 255] == i + 1);
        }
    }
}
#endif

/* Inserts ordinal o (absent) at pos with count c. */
static int insert_new(struct sn_hist *h, uint16_t o, uint32_t pos, uint64_t c)
{
    if (sn_hist_reserve(h, h->used + 1) < 0)
        return -ENOMEM;
    if (h->index && !h->index[o >> 8] && index_set(h, o, 0) < 0)
        index_free(h);
    memmove(h->ord + pos + 1, h->ord + pos, (h->used - pos) * sizeof(*h->ord));
    memmove(h->cnt + pos + 1, h->cnt + pos, (h->used - pos) * sizeof(*h->cnt));
    h->ord[pos] = o;
    h->cnt[pos] = c;
    h->used++;
    if (h->index)
        for (uint32_t i = pos; i < h->used; i++) /* pages exist: index_set cannot fail */
            h->index[h->ord[i] >> 8][h->ord[i] & 255] = (uint16_t)(i + 1);
    SN_HIST_CHECK(h);
    return 0;
}

int sn_hist_add_ord(struct sn_hist *h, uint16_t o, uint64_t c)
{
    uint32_t pos;
    int64_t slot = find(h, o, &pos);

    if (slot >= 0) {
        h->cnt[slot] = sat_add(h->cnt[slot], c);
        return 0;
    }
    return insert_new(h, o, pos, c);
}

static inline int insert_ord(struct sn_hist *h, uint16_t o, uint64_t c)
{
    if (h->index) {
        const uint16_t *page = h->index[o >> 8];
        if (page && page[o & 255]) {
            uint64_t *p = &h->cnt[page[o & 255] - 1];
            *p = sat_add(*p, c);
            return 0;
        }
    } else {
        index_build(h); /* best effort: without it we binary-search */
    }
    return sn_hist_add_ord(h, o, c);
}

/* a[i] += b[i], saturating; branch-free so the compiler can vectorise it */
static void add_counts(uint64_t *a, const uint64_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s = a[i] + b[i];
        a[i] = s < b[i] ? UINT64_MAX : s;
    }
}

/* --- API --------------------------------------------------------------------------------- */

struct sn_hist *sn_hist_create(void)
{
    return calloc(1, sizeof(struct sn_hist));
}

void sn_hist_destroy(struct sn_hist *h)
{
    if (!h)
        return;
    index_free(h);
    free(h->ord);
    free(h->cnt);
    free(h);
}

struct sn_hist *sn_hist_clone(const struct sn_hist *h)
{
    struct sn_hist *c = sn_hist_create();

    if (!c)
        return NULL;
    if (sn_hist_reserve(c, h->used) < 0) {
        sn_hist_destroy(c);
        return NULL;
    }
    if (h->used) {
        memcpy(c->ord, h->ord, h->used * sizeof(*h->ord));
        memcpy(c->cnt, h->cnt, h->used * sizeof(*h->cnt));
    }
    c->used = h->used;
    return c;
}

void sn_hist_clear(struct sn_hist *h)
{
    if (h->index)
        for (uint32_t i = 0; i < h->used; i++)
            h->index[h->ord[i] >> 8][h->ord[i] & 255] = 0;
    h->used = 0;
}

int sn_hist_insert_raw(struct sn_hist *h, struct sn_bucket b, uint64_t count)
{
    if (!sn_bucket_is_valid(b))
        return -EINVAL;
    return insert_ord(h, sn_bucket_ord(b), count);
}

int sn_hist_insert(struct sn_hist *h, double v, uint64_t count)
{
    return insert_ord(h, sn_ord_from_double(v), count);
}

int sn_hist_insert_int_scale(struct sn_hist *h, int64_t v, int scale, uint64_t count)
{
    return insert_ord(h, sn_ord_of_int_scale(v, scale), count);
}

int sn_hist_insert_u64(struct sn_hist *h, uint64_t v, uint64_t count)
{
    return insert_ord(h, sn_ord_of_u64(v), count);
}

int sn_hist_insert_raw_end(struct sn_hist *h, struct sn_bucket b, uint64_t count)
{
    uint16_t o;

    if (!sn_bucket_is_valid(b))
        return -EINVAL;
    o = sn_bucket_ord(b);
    if (h->used && h->ord[h->used - 1] == o) {
        h->cnt[h->used - 1] = sat_add(h->cnt[h->used - 1], count);
        return 0;
    }
    if (h->used && h->ord[h->used - 1] > o)
        return insert_ord(h, o, count);
    if (sn_hist_reserve(h, h->used + 1) < 0)
        return -ENOMEM;
    if (h->index && index_set(h, o, h->used) < 0)
        index_free(h);
    h->ord[h->used] = o;
    h->cnt[h->used] = count;
    h->used++;
    return 0;
}

int sn_hist_append_ords(struct sn_hist *h, const uint16_t *ord, const uint64_t *cnt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ord[i] >= SN_BUCKET_NORD ||
            (i ? ord[i] <= ord[i - 1] : h->used && ord[0] <= h->ord[h->used - 1]))
            return -EINVAL;
    if (!n)
        return 0;
    if (sn_hist_reserve(h, h->used + n) < 0)
        return -ENOMEM;
    index_free(h); /* rebuilt on the next single insert that wants it */
    memcpy(h->ord + h->used, ord, n * sizeof(*ord));
    memcpy(h->cnt + h->used, cnt, n * sizeof(*cnt));
    h->used += n;
    return 0;
}

uint64_t sn_hist_remove(struct sn_hist *h, double v, uint64_t count)
{
    int64_t slot = find(h, sn_ord_from_double(v), NULL);
    uint64_t *c;

    if (slot < 0)
        return 0;
    c = &h->cnt[slot];
    if (count > *c)
        count = *c;
    *c -= count;
    return count;
}

void sn_hist_remove_zeroes(struct sn_hist *h)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < h->used; i++) {
        if (h->cnt[i] == 0)
            continue;
        h->ord[n] = h->ord[i];
        h->cnt[n] = h->cnt[i];
        n++;
    }
    if (n == h->used)
        return;
    h->used = n;
    sn_hist_reindex(h);
    SN_HIST_CHECK(h);
}

int sn_hist_merge(struct sn_hist *tgt, const struct sn_hist *src)
{
    const uint16_t *so = src->ord;
    const uint64_t *sc = src->cnt;
    uint32_t tu = tgt->used, su = src->used, i = 0, j = 0, n = 0;

    if (su == 0)
        return 0;
    if (tgt == src || (tu == su && memcmp(tgt->ord, so, su * sizeof(*so)) == 0)) {
        add_counts(tgt->cnt, sc, su); /* the same buckets: the common steady state */
        return 0;
    }
    /* pass 1: size of the union, branch-free */
    while (i < tu && j < su) {
        uint16_t a = tgt->ord[i], b = so[j];
        i += a <= b;
        j += b <= a;
        n++;
    }
    n += (tu - i) + (su - j);

    if (n == tu) { /* every bucket of src is in tgt: add in place */
        for (i = 0, j = 0; j < su; j++) {
            while (tgt->ord[i] != so[j])
                i++;
            tgt->cnt[i] = sat_add(tgt->cnt[i], sc[j]);
        }
        return 0;
    }
    if (n > tgt->cap) {
        /* pass 2, no room: merge forward into new arrays of the union's size, so the old
         * contents are read once instead of being copied by realloc and then moved again */
        uint16_t *no = malloc(n * sizeof(*no));
        uint64_t *nc = malloc(n * sizeof(*nc));
        uint32_t k = 0;

        if (!no || !nc) {
            free(no);
            free(nc);
            return -ENOMEM;
        }
        i = j = 0;
        while (i < tu && j < su) {
            uint16_t a = tgt->ord[i], b = so[j];
            if (a < b) {
                no[k] = a;
                nc[k++] = tgt->cnt[i++];
            } else if (a > b) {
                no[k] = b;
                nc[k++] = sc[j++];
            } else {
                no[k] = a;
                nc[k++] = sat_add(tgt->cnt[i++], sc[j++]);
            }
        }
        if (i < tu) { /* tgt may never have allocated: no pointer arithmetic on NULL */
            memcpy(no + k, tgt->ord + i, (tu - i) * sizeof(*no));
            memcpy(nc + k, tgt->cnt + i, (tu - i) * sizeof(*nc));
            k += tu - i;
        }
        if (j < su) {
            memcpy(no + k, so + j, (su - j) * sizeof(*no));
            memcpy(nc + k, sc + j, (su - j) * sizeof(*nc));
        }
        free(tgt->ord);
        free(tgt->cnt);
        tgt->ord = no;
        tgt->cnt = nc;
        tgt->cap = n;
    } else {
        /* pass 2: merge from the back into the spare room */
        int64_t a = (int64_t)tu - 1, b = (int64_t)su - 1, k = (int64_t)n - 1;
        uint16_t *to = tgt->ord;
        uint64_t *tc = tgt->cnt;

        while (b >= 0) {
            if (a >= 0 && to[a] > so[b]) {
                to[k] = to[a];
                tc[k] = tc[a];
                a--;
            } else if (a >= 0 && to[a] == so[b]) {
                to[k] = to[a];
                tc[k] = sat_add(tc[a], sc[b]);
                a--;
                b--;
            } else {
                to[k] = so[b];
                tc[k] = sc[b];
                b--;
            }
            k--;
        }
    }
    tgt->used = n;
    sn_hist_reindex(tgt);
    SN_HIST_CHECK(tgt);
    return 0;
}

/* Merging many histograms at once: their counts added into a dense array by ordinal (a thread's
 * own, kept zeroed between uses), the ordinals present marked in a bitmap, then gathered in
 * order: O(buckets in) + O(buckets out) + 721 words, instead of a sorted union per pair. */
#define MANY_MIN   4 /* fewer sources: pairwise merges are as quick */
#define DENSE_BITS ((SN_BUCKET_NORD + 63) / 64)

struct dense {
    uint64_t cnt[SN_BUCKET_NORD];
    uint64_t bits[DENSE_BITS];
    uint32_t n; /* bits set */
};

static pthread_key_t dense_key;
static pthread_once_t dense_once = PTHREAD_ONCE_INIT;
static bool dense_key_ok;

static void dense_key_make(void)
{
    dense_key_ok = pthread_key_create(&dense_key, free) == 0;
}

static struct dense *dense_get(void)
{
    pthread_once(&dense_once, dense_key_make);
    if (!dense_key_ok)
        return NULL;
    struct dense *d = pthread_getspecific(dense_key);
    if (!d && (d = calloc(1, sizeof(*d))) && pthread_setspecific(dense_key, d) != 0) {
        free(d);
        d = NULL;
    }
    return d;
}

static void dense_add(struct dense *d, const struct sn_hist *h)
{
    for (uint32_t i = 0; i < h->used; i++) {
        uint16_t o = h->ord[i];
        uint64_t m = 1ull << (o & 63);
        d->cnt[o] = sat_add(d->cnt[o], h->cnt[i]);
        d->n += !(d->bits[o >> 6] & m);
        d->bits[o >> 6] |= m;
    }
}

int sn_hist_merge_many(struct sn_hist *tgt, const struct sn_hist *const *srcs, size_t n)
{
    struct dense *d = n >= MANY_MIN ? dense_get() : NULL;

    if (!d) {
        for (size_t i = 0; i < n; i++) {
            if (!srcs[i])
                continue;
            int rc = sn_hist_merge(tgt, srcs[i]);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    dense_add(d, tgt);
    for (size_t i = 0; i < n; i++) /* tgt among its sources adds its counts once more */
        if (srcs[i])
            dense_add(d, srcs[i]);
    uint32_t used = d->n;
    d->n = 0;
    int rc = sn_hist_reserve(tgt, used);
    uint32_t k = 0;
    for (uint32_t w = 0; w < DENSE_BITS; w++) {
        uint64_t b = d->bits[w];
        d->bits[w] = 0;
        while (b) {
            uint32_t o = w * 64 + (uint32_t)__builtin_ctzll(b);
            b &= b - 1;
            if (rc == 0) {
                tgt->ord[k] = (uint16_t)o;
                tgt->cnt[k] = d->cnt[o];
                k++;
            }
            d->cnt[o] = 0; /* zeroed for the next use, whatever happened */
        }
    }
    if (rc < 0)
        return -ENOMEM; /* tgt unchanged: its arrays were only read */
    tgt->used = k;
    index_free(tgt);
    return 0;
}

size_t sn_hist_raw(const struct sn_hist *h, const uint16_t **ord, const uint64_t **cnt)
{
    *ord = h->ord;
    *cnt = h->cnt;
    return h->used;
}

int sn_hist_subtract(struct sn_hist *tgt, const struct sn_hist *src)
{
    uint32_t i = 0, j = 0;
    int rv = 0;

    if (tgt == src) {
        for (i = 0; i < tgt->used; i++)
            tgt->cnt[i] = 0;
        return 0;
    }
    while (j < src->used) {
        while (i < tgt->used && tgt->ord[i] < src->ord[j])
            i++;
        if (i < tgt->used && tgt->ord[i] == src->ord[j]) {
            if (tgt->cnt[i] < src->cnt[j]) {
                tgt->cnt[i] = 0;
                rv = 1;
            } else {
                tgt->cnt[i] -= src->cnt[j];
            }
        } else if (src->cnt[j] > 0) {
            rv = 1;
        }
        j++;
    }
    return rv;
}

size_t sn_hist_nbuckets(const struct sn_hist *h)
{
    return h->used;
}

bool sn_hist_bucket_at(const struct sn_hist *h, size_t i, struct sn_bucket *b, uint64_t *count)
{
    if (i >= h->used)
        return false;
    if (b)
        *b = sn_bucket_from_ord(h->ord[i]);
    if (count)
        *count = h->cnt[i];
    return true;
}

size_t sn_hist_ranges(const struct sn_hist *h, struct sn_hist_range *out)
{
    size_t n = 0;

    for (size_t i = 0; h && i < h->used; i++) {
        int64_t lo, hi;
        uint64_t c = h->cnt[i];
        if (c == 0 || sn_bucket_int_range(sn_bucket_from_ord(h->ord[i]), &lo, &hi) == -EDOM)
            continue;
        if (hi < lo)
            hi = lo;
        if (n > 0 && out[n - 1].lo == lo) { /* no integer of its own: folds into the last */
            out[n - 1].count = out[n - 1].count + c < c ? UINT64_MAX : out[n - 1].count + c;
            continue;
        }
        out[n++] = (struct sn_hist_range){lo, hi, c};
    }
    return n;
}

uint64_t sn_hist_bucket_count(const struct sn_hist *h, struct sn_bucket b)
{
    int64_t slot;

    if (!sn_bucket_is_valid(b))
        return 0;
    slot = find(h, sn_bucket_ord(b), NULL);
    return slot < 0 ? 0 : h->cnt[slot];
}

uint64_t sn_hist_count(const struct sn_hist *h)
{
    uint64_t total = 0;
    bool over = false;

    for (uint32_t i = 0; i < h->used; i++)
        over |= __builtin_add_overflow(total, h->cnt[i], &total);
    return over ? UINT64_MAX : total;
}

bool sn_hist_equal(const struct sn_hist *a, const struct sn_hist *b)
{
    uint32_t i = 0, j = 0;

    for (;;) {
        while (i < a->used && a->cnt[i] == 0)
            i++;
        while (j < b->used && b->cnt[j] == 0)
            j++;
        if (i == a->used || j == b->used)
            return i == a->used && j == b->used;
        if (a->ord[i] != b->ord[j] || a->cnt[i] != b->cnt[j])
            return false;
        i++;
        j++;
    }
}
