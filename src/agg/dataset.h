/*
 * A dataset: what the aggregator keeps of one instrumentation, the values of its recent time
 * slots merged over every source that reported them (../shared/ref/joyent-ca.md §4.1).
 *
 * A slot covers G seconds (the granularity), starting at a multiple of G. It holds, for the
 * instrumentation's arity, a count (scalar), {key: count} (discrete), a histogram (numeric) or
 * {key: histogram} plus their total histogram (numeric by key), and the set of sources (hosts)
 * that reported in it. Slots live in a ring of retention/G entries; older ones are expired.
 *
 * Addition follows CA: counts add, keys add per key, histograms merge bucket by bucket (our
 * buckets always align, so CA's assertion on misaligned ranges cannot arise). For point-scope
 * metrics (a snapshot of state, e.g. memory.rss) a second report of the same source in one
 * slot is ignored, and an interval's value is its first slot's, not a sum.
 *
 * Concurrency: a dataset serves many readers and one adder at a time without making either
 * wait for the other's work. Its "readers' lock" is a reader-writer lock its owner keeps (the
 * aggregator's per-instrumentation lock, agg/agg.h). Readers (sn_ds_slot_at(), sn_ds_sum(),
 * sn_ds_slots_ref(), the source counts) hold it for reading. sn_ds_add_shared() is the adder:
 * it takes the dataset's own mutex (adders of one dataset queue there, nobody else does),
 * builds the new slot from the current one and the frame without the readers' lock (slots are
 * never changed in place: a slot in the ring is immutable, and references keep the one being
 * built on alive), and then takes the readers' lock for writing only to publish it, which
 * costs O(sources), never O(keys). Every other call that changes a dataset (sn_ds_add(),
 * touch, expire, retention, load) is made with the readers' lock held for writing. Pointers
 * returned into a dataset are valid while the caller holds that lock; referenced slots
 * (sn_ds_slots_ref()) without it.
 *
 * Key cap: a slot keeps at most key_cap keys (besides "other"); the counts and histograms of
 * further keys go to the key "other", and the events folded so are added to over_cap. When a
 * frame brings more new keys than there is room for, the ones with the largest counts are kept
 * (ties: the smaller key).
 *
 * Cost: adding a frame of m keys to a slot of K keys is O(m log m + K): the frame's keys are
 * sorted once and merged with the slot's, which are kept sorted.
 */
#ifndef SN_AGG_DATASET_H
#define SN_AGG_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "core/hist.h"
#include "wire/frame.h"

#define SN_DS_MAX_SLOTS   3600 /* CA: retention-time / granularity <= 3600 */
#define SN_DS_MAX_FUTURE  10   /* data stamped further ahead than this many seconds is dropped */
#define SN_DS_MAX_SOURCES 65535

struct sn_dataset; /* opaque */

struct sn_ds_entry {
    char *key;
    uint64_t count;
    struct sn_hist *hist; /* numeric by key only */
};

/* One slot's value (or an interval's sum of them). Read-only outside dataset.c. */
struct sn_ds_slot {
    int64_t t;             /* start of the slot (a multiple of G) */
    uint64_t count;        /* the scalar value; for the other arities, every event counted */
    struct sn_hist *total; /* numeric arities: the histogram over all keys */
    size_t n;              /* discrete and numeric-by-key: entries, sorted by key (strcmp) */
    struct sn_ds_entry *e; /* */
    size_t cap;            /* entries allocated */
    uint64_t over_cap;     /* events the agents counted under "other" (key cap) */
    uint64_t map_full;     /* events the agents' kernels could not count */
    uint32_t nsrc;         /* distinct sources that reported in the slot */
    uint32_t *src;         /* their indices (sn_ds_source_name()), ascending */
};

struct sn_ds_opts {
    uint8_t arity;        /* enum sn_wire_arity */
    uint32_t granularity; /* G, seconds, >= 1 */
    uint32_t retention;   /* seconds kept; retention / G slots, at most SN_DS_MAX_SLOTS */
    bool point;           /* value-scope "point" */
    uint32_t key_cap;     /* keys a slot keeps before the rest go to "other"; 0: no cap */
};

#define SN_DS_OTHER "other" /* the key of the counts past the key cap */

/* What an addition folded into "other" (sn_ds_add_shared()). */
struct sn_ds_fold {
    uint64_t keys;   /* the frame's keys that found no room */
    uint64_t events; /* their counts */
};

/* What sn_ds_add() did with a frame. */
enum sn_ds_added {
    SN_DS_ADDED = 0,
    SN_DS_LATE,      /* older than the retention: dropped */
    SN_DS_FUTURE,    /* more than SN_DS_MAX_FUTURE s ahead of now: dropped */
    SN_DS_DUPLICATE, /* point scope: this source already reported in the slot; ignored */
    SN_DS_MISMATCH,  /* the frame's arity is not the dataset's: dropped */
};

/* A new empty dataset, or NULL (out of memory, or options out of range). */
struct sn_dataset *sn_ds_create(const struct sn_ds_opts *o);
/* Drops a reference; the last one frees the dataset. NULL is fine. */
void sn_ds_destroy(struct sn_dataset *ds);
/* Takes a reference (kept across a sn_ds_add_shared() without the server's lock). Returns ds. */
struct sn_dataset *sn_ds_ref(struct sn_dataset *ds);
const struct sn_ds_opts *sn_ds_opts(const struct sn_dataset *ds);

/* Changes the retention, keeping the slots that still fit. Returns 0, -EINVAL or -ENOMEM. */
int sn_ds_set_retention(struct sn_dataset *ds, uint32_t retention, int64_t now);

/* Merges frame f (borrowed), reported by f->host for second f->t, into its slot. now is the
 * current Unix time. Returns an enum sn_ds_added (>= 0), or -ENOMEM (the slot is unchanged).
 * The caller has the dataset to itself (the server's lock held for writing). */
int sn_ds_add(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now);
/* The same for a caller holding no lock, only a reference to ds: readers holds the lock that
 * readers of ds take for reading; it is taken briefly for reading (to look at the slot) and
 * for writing (to publish the new one). fold (may be NULL) receives what went to "other". */
int sn_ds_add_shared(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now,
                     pthread_rwlock_t *readers, struct sn_ds_fold *fold);
/* The same, but -EAGAIN at once when another adder is at work on ds (the local agent adds its
 * other frames first rather than wait behind a big ingest). */
int sn_ds_add_shared_try(struct sn_dataset *ds, const struct sn_wire_frame *f, int64_t now,
                         pthread_rwlock_t *readers, struct sn_ds_fold *fold);

/* Frames f[0..n) (borrowed; any instrumentation's seconds, any hosts) added as
 * sn_ds_add_shared() adds one (or as sn_ds_add_shared_try(), when try), each one's result in
 * rcs[i] (an enum sn_ds_added, -ENOMEM, or -EAGAIN when try): the frames of one second make
 * one new slot, whatever their number, so that a batch (a thousand hosts' frames of a second,
 * as a fleet's consumer or an ingest body brings them) costs one copy of the slot, not one per
 * frame. A point metric's second report of a source in a slot, in the batch or before it, is
 * SN_DS_DUPLICATE. fold (may be NULL) receives what went to "other", over the batch. Returns
 * 0, or -ENOMEM (every rcs[i] -ENOMEM, nothing added). */
int sn_ds_add_many(struct sn_dataset *ds, const struct sn_wire_frame *const *f, size_t n,
                   int64_t now, pthread_rwlock_t *readers, bool try, int *rcs,
                   struct sn_ds_fold *fold);

/* Records that source host is expected to report (an agent enabled the instrumentation) at
 * time now, without data; it counts in sn_ds_sources_since(). Returns 0 or -ENOMEM. */
int sn_ds_touch(struct sn_dataset *ds, const char *host, int64_t now);

/* Frees slots that start before now - retention. */
void sn_ds_expire(struct sn_dataset *ds, int64_t now);
/* The same, but the slots are only unlinked and put on *dead (start it NULL), to be freed by
 * sn_ds_dead_free() after the server's lock is released (a slot of many keys takes a while). */
struct sn_ds_dead;
void sn_ds_expire_defer(struct sn_dataset *ds, int64_t now, struct sn_ds_dead **dead);
void sn_ds_dead_free(struct sn_ds_dead *dead);

/* The slot holding second t, or NULL when nothing was reported for it. */
const struct sn_ds_slot *sn_ds_slot_at(const struct sn_dataset *ds, int64_t t);

/* Sums the slots in [start, start + duration) into *out (owned: sn_ds_slot_fini()); for point
 * scope, the first slot's value. start and duration should be multiples of G. Returns 0 or
 * -ENOMEM. */
int sn_ds_sum(const struct sn_dataset *ds, int64_t start, int64_t duration, struct sn_ds_slot *out);
void sn_ds_slot_fini(struct sn_ds_slot *s);

/* Slots to be read without any lock (the aggregator's queries copy out of them): references
 * to the slots starting in [from, to), in time order, into out, which has room for
 * sn_ds_nslots(ds) of them. Call with the readers' lock held (read); returns how many. A
 * referenced slot is immutable and stays valid, whatever happens to ds, until
 * sn_ds_slot_unref(). */
uint32_t sn_ds_nslots(const struct sn_dataset *ds);
size_t sn_ds_slots_ref(const struct sn_dataset *ds, int64_t from, int64_t to,
                       const struct sn_ds_slot **out);
void sn_ds_slot_unref(const struct sn_ds_slot *s);
/* A new empty slot starting at t, referenced once, for slots built outside a dataset (the
 * store's history, agg/agg.h's sn_agg_view_adopt()): fill it, then only read it; the last
 * sn_ds_slot_unref() frees it. NULL when out of memory. */
struct sn_ds_slot *sn_ds_slot_new(int64_t t);
/* dst += src, as an interval sum adds slots (dst owned, e.g. zeroed). Returns 0, or -ENOMEM
 * with dst valid but holding part of src. */
int sn_ds_slot_add(struct sn_ds_slot *dst, const struct sn_ds_slot *src);

/* dst += src[0] + ... + src[n-1], as sn_ds_slot_add() one by one would (sources aside: dst's
 * are left), in one pass: the keys of all of them sorted once and each key's histograms merged
 * at once (sn_hist_merge_many()). values: the sources are a point metric's slots whose counts
 * are added as values, one sample each in dst's histograms (a scalar's in the total, a
 * discrete one's per key), their sums in the counts (store/rollup.h). Returns 0 or -ENOMEM
 * (dst valid, holding part of the sum). */
int sn_ds_slot_add_many(struct sn_ds_slot *dst, const struct sn_ds_slot *const *src, size_t n,
                        bool values);

/* The minimum over the slots in [start, start + duration) of how many sources reported. */
uint32_t sn_ds_min_reporting(const struct sn_dataset *ds, int64_t start, int64_t duration);
/* How many distinct sources reported in any slot within [from, to] (CA's "expected" sources:
 * from = now - 15, to = now - 5). */
uint32_t sn_ds_reported_between(const struct sn_dataset *ds, int64_t from, int64_t to);
/* How many sources reported (or were touched) at or after t. */
uint32_t sn_ds_sources_since(const struct sn_dataset *ds, int64_t t);
/* The name of source i. */
const char *sn_ds_source_name(const struct sn_dataset *ds, uint32_t i);

/* A slot as a frame: what slot s of a dataset of arity says, as a frame whose entries borrow
 * s's keys and histograms (f.id and f.host left for the caller to set). Returns 0 or -ENOMEM;
 * sn_ds_frame_fini() frees what it allocated. Do not copy the struct (f points into it). */
struct sn_ds_frame {
    struct sn_wire_frame f;
    struct sn_wire_entry one, *e;
    struct sn_hist *empty;
};
int sn_ds_frame_of(uint8_t arity, const struct sn_ds_slot *s, struct sn_ds_frame *out);
void sn_ds_frame_fini(struct sn_ds_frame *fr);
/* Puts slot s (read back from the store; its sources named by names[0..s->nsrc)) into ds, as
 * the frames that made it would. The caller has ds to itself (before it is in the
 * aggregator). Returns 0 (late slots are simply not kept) or -ENOMEM. */
int sn_ds_restore(struct sn_dataset *ds, const struct sn_ds_slot *s, const char *const *names,
                  int64_t now);

/* Persistence (persist-data): writes every slot to buf (owned, free()) as *len bytes, and
 * reads such a buffer back, merging its slots into ds (sources by name). Slots of another
 * granularity or arity are refused: -EINVAL. The format is docs/formats.md's dataset file. */
int sn_ds_save(const struct sn_dataset *ds, unsigned char **buf, size_t *len);
int sn_ds_load(struct sn_dataset *ds, const unsigned char *buf, size_t len, int64_t now);

#endif
