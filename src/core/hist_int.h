/*
 * Private to the histogram's .c files (hist.c, hist_stats.c, hist_codec.c): the layout of
 * struct sn_hist and the helpers they share. Nothing outside src/core/hist*.c includes it.
 *
 * Invariants (checked by hist_check() in debug builds):
 *   ord[0..used) strictly ascending, each < SN_BUCKET_NORD; cnt[i] is ord[i]'s count;
 *   used <= cap; when index != NULL, for every i < used, index[ord[i] >> 8][ord[i] & 255] == i+1
 *   and every other allocated index entry is 0.
 */
#ifndef SN_CORE_HIST_INT_H
#define SN_CORE_HIST_INT_H

#include "core/hist.h"

#define SN_HIST_INDEX_PAGES ((SN_BUCKET_NORD + 255) / 256)

struct sn_hist {
    uint16_t *ord;    /* bucket ordinals, strictly ascending */
    uint64_t *cnt;    /* counts, parallel to ord */
    uint32_t used;    /* buckets in use */
    uint32_t cap;     /* slots allocated in ord and cnt */
    uint16_t **index; /* NULL, or SN_HIST_INDEX_PAGES lazily allocated pages of slot+1 */
};

static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t s;
    return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

/* Makes room for at least n buckets. Returns 0 or -ENOMEM (h unchanged). */
int sn_hist_reserve(struct sn_hist *h, uint32_t n);
/* Rebuilds the index after bulk changes to ord[]; drops it if memory runs out. */
void sn_hist_reindex(struct sn_hist *h);
/* Adds c to ordinal o's bucket, creating it; never builds the index (keeps it if present).
 * Returns 0 or -ENOMEM. */
int sn_hist_add_ord(struct sn_hist *h, uint16_t o, uint64_t c);
/* Empties h and releases its index (decoders call this before filling ord/cnt directly). */
void sn_hist_reset(struct sn_hist *h);

#if !defined(NDEBUG) || defined(SN_SANITIZE)
void sn_hist_check(const struct sn_hist *h);
#define SN_HIST_CHECK(h) sn_hist_check(h)
#else
#define SN_HIST_CHECK(h) ((void)0)
#endif

#endif
