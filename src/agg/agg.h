/*
 * The aggregator: every instrumentation's dataset (agg/dataset.h), keyed by the
 * instrumentation's key ("N" or "tenant/N", the frames' id), fed by frames from any source
 * (the local agent, remote agents through ingest) and read through a query API that copies
 * out what a request needs, so that its callers (src/api) never see a lock, a dataset or a
 * slot that could change under them.
 *
 * Locking (all inside): a short registry mutex for lookups, adds, removes and lists; each
 * entry is reference-counted, so a query or a frame being merged keeps its entry alive across
 * a delete. Each instrumentation has its own reader-writer lock, the "readers' lock" of its
 * dataset: queries take it for reading only to take references to the slots they need
 * (immutable once published), then copy and compute without any lock; a frame takes it only
 * to look at its slot and to publish the new one, never while it merges keys (that runs under
 * the dataset's adder mutex). So requests on one instrumentation never wait behind work on
 * another, and a reader never waits behind a merge, only behind a publish.
 *
 * Listeners (e.g. the HTTP layer waking its long polls) are called after every frame added,
 * with no lock held.
 *
 * Per-source status: whether source (host) H runs instrumentation K, since when, or why not,
 * as any source reports it (the local agent is one source, named by its host).
 */
#ifndef SN_AGG_AGG_H
#define SN_AGG_AGG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg/dataset.h"
#include "core/hist.h"
#include "wire/frame.h"

#define SN_AGG_MAX_LISTENERS 8
#define SN_AGG_WHY_MAX       256

struct sn_agg; /* opaque */

/* What the aggregator counted since it was created (/metrics). */
struct sn_agg_counters {
    uint64_t frames_in;        /* frames added to a dataset */
    uint64_t frames_unknown;   /* for no such instrumentation (e.g. just deleted) */
    uint64_t frames_late;      /* older than the retention */
    uint64_t frames_future;    /* stamped too far ahead */
    uint64_t frames_duplicate; /* point scope: a second report of one source */
    uint64_t frames_mismatch;  /* of another arity than their instrumentation */
    uint64_t events_over_cap;  /* agents' key-cap drops, from the frames */
    uint64_t events_map_full;  /* agents' map-full drops, from the frames */
    uint64_t keys_folded;      /* frame keys past the key cap, folded into "other" */
    uint64_t events_folded;    /* their events */
};

/* Called after a frame for second t was added to instrumentation key's dataset, with no lock
 * held. */
typedef void (*sn_agg_listener)(void *arg, const char *key, int64_t t);

/* A new empty aggregator into *out. Returns 0 or -ENOMEM. */
int sn_agg_create(struct sn_agg **out);
/* Frees it and every dataset (the last references); NULL is fine. No call may be running. */
void sn_agg_destroy(struct sn_agg *a);

/* Registers fn(arg, key, t) for every frame added from now on. Returns 0, or -ENOSPC past
 * SN_AGG_MAX_LISTENERS. */
int sn_agg_listen(struct sn_agg *a, sn_agg_listener fn, void *arg);

/* ---- The registry ---------------------------------------------------------------------- */

/* Adds key with dataset ds (the aggregator takes a reference of its own: sn_ds_ref()).
 * Returns 0, -EEXIST, -EINVAL (key empty or too long) or -ENOMEM. */
int sn_agg_add(struct sn_agg *a, const char *key, struct sn_dataset *ds);
/* Removes key; its dataset is freed once the queries and frames using it are done. Returns 0
 * or -ENOENT. */
int sn_agg_remove(struct sn_agg *a, const char *key);
/* The arity of key's frames (enum sn_wire_arity; it never changes), or -ENOENT. */
int sn_agg_arity(struct sn_agg *a, const char *key);
/* Changes key's retention (sn_ds_set_retention()). Returns 0, -ENOENT, -EINVAL or -ENOMEM. */
int sn_agg_set_retention(struct sn_agg *a, const char *key, uint32_t retention, int64_t now);
/* Writes key's dataset (sn_ds_save(): *buf owned, free()). Returns 0, -ENOENT or -ENOMEM. */
int sn_agg_save(struct sn_agg *a, const char *key, unsigned char **buf, size_t *len);

/* ---- Ingest and the tick --------------------------------------------------------------- */

/* Adds frame f (borrowed) to the dataset of instrumentation f->id, counts the outcome and
 * tells the listeners. now: Unix seconds. Returns the enum sn_ds_added outcome (>= 0),
 * -ENOENT for an unknown id, or -ENOMEM; fold (may be NULL) receives what the key cap folded
 * into "other". */
int sn_agg_ingest(struct sn_agg *a, const struct sn_wire_frame *f, int64_t now,
                  struct sn_ds_fold *fold);
/* The same, but -EAGAIN (nothing counted) when another frame is being merged into the same
 * dataset: the local agent adds its other frames first rather than wait behind a big one. */
int sn_agg_ingest_try(struct sn_agg *a, const struct sn_wire_frame *f, int64_t now,
                      struct sn_ds_fold *fold);
/* Frames f[0..n) (borrowed; each with an id) added as sn_agg_ingest() (or, when try,
 * sn_agg_ingest_try()) adds one, each one's result in rcs[i]; consecutive frames of one
 * instrumentation go in as one batch (sn_ds_add_many(): a second's frames make one new slot),
 * and the listeners hear of each second of a run once. fold (may be NULL): over the batch. */
void sn_agg_ingest_many(struct sn_agg *a, const struct sn_wire_frame *const *f, size_t n,
                        int64_t now, bool try, int *rcs, struct sn_ds_fold *fold);
/* The counters, each read atomically. */
void sn_agg_counters(const struct sn_agg *a, struct sn_agg_counters *out);
/* Once a second: frees every slot older than its retention (the memory is freed after the
 * instrumentation's lock is released). */
void sn_agg_expire(struct sn_agg *a, int64_t now);

/* ---- Per-source status ----------------------------------------------------------------- */

/* Whether a source runs an instrumentation. */
enum sn_agg_run {
    SN_AGG_STOPPED = 0, /* not asked to, or stopped */
    SN_AGG_RUNNING,     /* runs it, since since_ms */
    SN_AGG_REFUSED,     /* cannot run this one (why, e.g. a USDT probe it lacks): a warning */
    SN_AGG_UNSUPPORTED, /* runs nothing of the kind (why, e.g. no BPF on the host): no warning */
};
/* What source host says of instrumentation key at since_ms (Unix ms), and why when it does
 * not run it. Running also counts the source as expected to report (sn_ds_touch() at
 * since_ms). Returns 0, -ENOENT or -ENOMEM. */
int sn_agg_set_status(struct sn_agg *a, const char *key, const char *host, enum sn_agg_run run,
                      int64_t since_ms, const char *why);
struct sn_agg_status {
    enum sn_agg_run run;
    int64_t since_ms;
    char why[SN_AGG_WHY_MAX];
};
/* What host last said of key. Returns 0, or -ENOENT (no such key, or host said nothing:
 * *out zeroed). */
int sn_agg_get_status(struct sn_agg *a, const char *key, const char *host,
                      struct sn_agg_status *out);
/* Why key does not run, as every source that refused it (SN_AGG_REFUSED) said: a new array
 * of strings (possibly empty), or NULL for no such key or out of memory. The caller frees it:
 * sn_agg_strings_free(). */
char **sn_agg_not_running(struct sn_agg *a, const char *key, size_t *n);
void sn_agg_strings_free(char **s, size_t n);

/* ---- Queries: values copied out, valid without any lock -------------------------------- */

/* The slot of key holding second t, referenced (sn_ds_slot_unref()) into *slot, and the names
 * of its sources (slot->src[i]'s is (*names)[i]; sn_agg_strings_free(*names, slot->nsrc)).
 * Returns 0, -ENOENT (no such key, or no data for t: *slot NULL) or -ENOMEM. */
int sn_agg_slot_get(struct sn_agg *a, const char *key, int64_t t, const struct sn_ds_slot **slot,
                    char ***names);
/* The options of key's dataset into *o. Returns 0 or -ENOENT. */
int sn_agg_opts(struct sn_agg *a, const char *key, struct sn_ds_opts *o);

/* How many sources reported (or said they run key) at or after t; 0 for no such key. */
uint32_t sn_agg_sources_since(struct sn_agg *a, const char *key, int64_t t);
/* How many sources a long poll for the slot holding second last should wait for, at time now
 * (seconds): those that reported within [now - 15, now - 5] (CA's rule), else one when a
 * source says it runs key since before that slot's end. *reported (when not NULL) receives how
 * many reported in that slot. 0 (and 0) for no such key. */
uint32_t sn_agg_expected(struct sn_agg *a, const char *key, int64_t now, int64_t last,
                         uint32_t *reported);

/* A view: references to key's slots over [from, to), taken in one short hold of key's lock,
 * so that every answer drawn from one view is consistent. Read with the calls below, from any
 * thread, with no lock; times are seconds (aligned down to the granularity). */
struct sn_agg_view;
/* Returns 0, -ENOENT (no such key) or -ENOMEM. */
int sn_agg_view_open(struct sn_agg *a, const char *key, int64_t from, int64_t to,
                     struct sn_agg_view **out);
void sn_agg_view_close(struct sn_agg_view *v); /* NULL is fine */
/* A view of slots built elsewhere (the store's history): s[0..n) (a malloc'd array of slots
 * from sn_ds_slot_new(), in time order, starting at multiples of g; the view takes the array
 * and the slots over, whatever it returns),
 * of granularity g. point: a snapshot metric's raw slots (sums take the first slot); values:
 * rolled-up point slots (counts are sums of values and histograms hold the values: they add).
 * Returns 0 or -ENOMEM. */
int sn_agg_view_adopt(uint32_t g, bool point, bool values, struct sn_ds_slot **s, size_t n,
                      struct sn_agg_view **out);
/* The view's slots, in time order, into *s (valid while the view is open); returns how many. */
size_t sn_agg_view_slots(const struct sn_agg_view *v, const struct sn_ds_slot ***s);
/* Whether the view's slots are rolled-up point slots (sn_agg_view_adopt()). */
bool sn_agg_view_values(const struct sn_agg_view *v);
/* The granularity of key's dataset. */
uint32_t sn_agg_view_granularity(const struct sn_agg_view *v);
/* How many sources reported in the slot holding t (0: none, or outside the view). */
uint32_t sn_agg_view_nsrc(const struct sn_agg_view *v, int64_t t);
/* The minimum over the slots of [start, start + duration) of how many sources reported. */
uint32_t sn_agg_view_min_reporting(const struct sn_agg_view *v, int64_t start, int64_t duration);
/* The sum over [start, start + duration) into *out (owned: sn_agg_sum_fini()); for point
 * scope the first slot's value. Returns 0 or -ENOMEM. */
int sn_agg_view_sum(const struct sn_agg_view *v, int64_t start, int64_t duration,
                    struct sn_ds_slot *out);
void sn_agg_sum_fini(struct sn_ds_slot *sum);
/* The total histograms of the ncols slots from start merged into a new histogram *out (owned,
 * empty when there is no data). Returns 0 or -ENOMEM. */
int sn_agg_view_total(const struct sn_agg_view *v, int64_t start, size_t ncols,
                      struct sn_hist **out);
/* The keys with a non-zero count in any of the ncols slots from start, sorted (strcmp) and
 * unique, as a new array of new strings (sn_agg_strings_free()). Returns 0 or -ENOMEM. */
int sn_agg_view_keys(const struct sn_agg_view *v, int64_t start, size_t ncols, char ***keys,
                     size_t *n);
/* The indices of keys[0..n) (sorted, unique) by their counts summed over the ncols slots from
 * start, largest first, ties in the keys' order: a new array (free()) into *order. Returns 0 or
 * -ENOMEM. */
int sn_agg_view_biggest(const struct sn_agg_view *v, int64_t start, size_t ncols,
                        const char *const *keys, size_t n, size_t **order);

/* Columns of a heatmap: the integer ranges (core/hist.h's rule) of the total and of each
 * selected key, per slot. Layer l (0: the total, 1 + k: sel[k]) of column c is
 * r[off[l * ncols + c] .. off[l * ncols + c + 1]). */
struct sn_agg_columns {
    size_t ncols, nsel;
    struct sn_hist_range *r; /* every range, column after column, layer after layer */
    size_t nr;
    size_t *off; /* [(1 + nsel) * ncols + 1] */
};
/* The columns of the ncols slots from start for keys sel[0..nsel) into *out (owned:
 * sn_agg_columns_fini()). Returns 0 or -ENOMEM (*out then empty). */
int sn_agg_view_columns(const struct sn_agg_view *v, int64_t start, size_t ncols,
                        const char *const *sel, size_t nsel, struct sn_agg_columns *out);
void sn_agg_columns_fini(struct sn_agg_columns *c);

#endif
