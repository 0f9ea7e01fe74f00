/*
 * The store: everything `sonde serve` keeps, in one LMDB environment in the data directory
 * (<datadir>/store/): the server's definitions document, and every instrumentation's data at
 * every tier (store/tiers.h) as compact records (store/record.h), so that history outlives
 * memory's retention and a restart. docs/formats.md describes the keys and records.
 *
 * Writing: the store follows the aggregator (agg/agg.h): it listens for every frame added and
 * marks that slot dirty; once a second its writer thread writes every dirty slot that has
 * closed (its end plus the long-poll window, SN_STORE_GRACE, has passed) in one write
 * transaction, with the rollup periods those slots belong to marked pending in the same
 * transaction. A pending rollup whose period has closed is computed from the finer tier's
 * records (an exact merge: counts add, histograms merge; point-scope slots become histograms
 * of their values) and written in the same per-second transaction. So a crash loses at most
 * the seconds not yet committed (at most 2 s: a slot is written SN_STORE_GRACE s after it
 * ends, in the next second's transaction; a report arriving later rewrites it) and never a
 * rollup.
 *
 * Maintenance, in small transactions after each write: retention (records older than their
 * tier keeps for their instrumentation), the data of deleted instrumentations, and the size
 * cap (--store-max-bytes: the oldest records of the finest tier go first, counted).
 *
 * Failures: the map grows when full (MDB_MAP_FULL never fails a write); any other write error
 * (ENOSPC above all) is counted and logged once, the slots stay dirty and are written again
 * when writing works again, as long as memory still holds them (else they are counted lost).
 * Every record read is checked (store/record.h); a damaged one is skipped and counted.
 *
 * Threads: any thread may call any function; the writer runs on its own thread. Readers never
 * wait for the writer (LMDB's MVCC) except for the instant the map grows.
 */
#ifndef SN_STORE_STORE_H
#define SN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg/agg.h"
#include "agg/dataset.h"
#include "store/tiers.h"

#define SN_STORE_GRACE       1    /* seconds after a slot's end before it is written */
#define SN_STORE_ROLLUP_KEYS 1000 /* default keys a rollup record keeps before "other" */

struct sn_store; /* opaque */

struct sn_store_opts {
    const char *dir; /* the environment's directory (created when missing) */
    struct sn_tiers tiers;
    uint64_t map_size;    /* the map's initial size in bytes (0: 1 GiB); it grows when full */
    uint64_t max_bytes;   /* --store-max-bytes: the cap on the data's size; 0: none */
    uint32_t rollup_keys; /* keys a rollup record keeps before "other" (0: the default) */
};

/* What the store knows of one instrumentation (the server tells it at each add and change). */
struct sn_store_inst {
    uint8_t arity;        /* enum sn_wire_arity */
    bool point;           /* value-scope point */
    bool persist;         /* persist-data: every tier; else the raw tier only, for retention */
    uint32_t granularity; /* seconds */
    uint32_t retention;   /* retention-time: the raw tier keeps at least this */
};

/* What the store counted (/metrics, /ca/admin/status). */
struct sn_store_stats {
    uint64_t commits, commit_ns;   /* per-second write transactions and their time */
    uint64_t records_written;      /* raw records */
    uint64_t rollups_written;      /* rollup records */
    uint64_t bytes_written;        /* record bytes put */
    uint64_t write_errors;         /* failed write transactions (ENOSPC, EIO, ...) */
    int last_error;                /* -errno of the last failure; 0 once writing works */
    uint64_t slots_lost;           /* dirty slots memory no longer held when writing resumed */
    uint64_t records_expired;      /* removed by retention */
    uint64_t records_deleted;      /* removed with their deleted instrumentation */
    uint64_t records_dropped;      /* removed by the size cap */
    uint64_t records_damaged;      /* read but refused by the record decoder */
    uint64_t map_grown;            /* times the map grew */
    uint64_t map_size, used_bytes; /* the map's size now; pages in use x page size */
    uint64_t pending;              /* slots and rollups waiting to be written */
};

/* Opens (creating when needed) the store in o->dir. Returns 0 with *out, or -errno with why. */
int sn_store_open(const struct sn_store_opts *o, struct sn_store **out, char *why, size_t len);
/* Stops the writer after a last write of every dirty slot (SIGTERM loses nothing that memory
 * held), then closes the environment. NULL is fine. Returns 0, or the -errno of a last
 * write that failed (logged): what memory held is missing from the store. */
int sn_store_close(struct sn_store *st);
/* The LMDB environment the store opened (store/env.h), for the span store to share. */
struct sn_env *sn_store_env(struct sn_store *st);
/* The options the store runs with. */
const struct sn_store_opts *sn_store_options(const struct sn_store *st);

/* Follows agg: listens for its frames, and starts the writer thread, which reads closed dirty
 * slots from agg. Returns 0, -ENOSPC (no listener slot left) or -errno of the thread. */
int sn_store_follow(struct sn_store *st, struct sn_agg *agg);

/* ---- Named values (the server's definitions document) ----------------------------------- */

/* The value of name into *val (owned, free(); NUL-terminated past *len). Returns 0, -ENOENT,
 * -ENOMEM or -EIO. */
int sn_store_meta_get(struct sn_store *st, const char *name, char **val, size_t *len);
/* Sets name to val[0..len) and commits before returning. Returns 0, -ENOSPC (disk or quota
 * full), -EIO or -ENOMEM. */
int sn_store_meta_put(struct sn_store *st, const char *name, const void *val, size_t len);

/* ---- Instrumentations -------------------------------------------------------------------- */

/* Sets (or changes) what the store knows of instrumentation key. Returns 0 or -ENOMEM. */
int sn_store_inst_set(struct sn_store *st, const char *key, const struct sn_store_inst *in);
/* Forgets instrumentation key: its records are deleted in the background, in small
 * transactions; a new instrumentation of the same key starts empty. Returns 0, -ENOENT, or
 * the -errno of the transaction that unlinks it (-ENOSPC, -EIO). */
int sn_store_inst_drop(struct sn_store *st, const char *key);
/* Forgets every instrumentation the store holds that nobody set since it opened (after the
 * server restored its definitions: what a crash between deleting a definition and dropping its
 * data left behind). Returns how many, or the -errno of a drop. */
int sn_store_drop_unset(struct sn_store *st);
/* How long tier t keeps key's records (0: not kept) and its period (raw: the granularity). */
int64_t sn_store_keep(struct sn_store *st, const char *key, enum sn_tier t);

/* ---- Writing and reading records --------------------------------------------------------- */

/* Merges slot s (borrowed; sources named by src_names[0..s->nsrc)) into key's record of tier t
 * starting at s->t (import, migration): for raw, a slot adds to a record as frames add to a
 * slot; for rollups, raw point slots add their values. Pending rollups of coarser tiers are
 * marked. Written with the next per-second transaction; returns 0, -ENOENT or -ENOMEM. */
int sn_store_merge(struct sn_store *st, const char *key, enum sn_tier t, const struct sn_ds_slot *s,
                   const char *const *src_names);
/* A rollup record (tiers 1m, 1h, 1d) was written for key's period starting at t: slot s
 * (borrowed for the call; s->src[] index src_names), of arity arity, values as
 * store/record.h says. Called on the writer's thread inside its transaction (which may still
 * fail and be run again: the same record is then told again), so it must not block or call
 * the store. The fleet puts these on the bus (serve/fleet.c). */
typedef void (*sn_store_rollup_fn)(void *arg, const char *key, enum sn_tier tier, int64_t t,
                                   const struct sn_ds_slot *s, const char *const *src_names,
                                   uint8_t arity, bool values);
/* Sets (fn NULL: clears) the rollup listener; waits for a tick in progress. */
void sn_store_on_rollup(struct sn_store *st, sn_store_rollup_fn fn, void *arg);
/* sn_store_merge(), but s replaces key's record of tier t at s->t (a record rebuilt whole:
 * a fleet node rebuilding its store from the stream). */
int sn_store_put(struct sn_store *st, const char *key, enum sn_tier t, const struct sn_ds_slot *s,
                 const char *const *src_names);
/* Commits what sn_store_merge() queued (with the closed dirty slots and rollups, as the
 * writer's next second would) before returning: an import is stored when it is answered.
 * Returns 0 or the -errno of the write. */
int sn_store_sync(struct sn_store *st);
/* Writes every dirty closed slot and every pending rollup whose period has closed now (as
 * the writer does each second, but with no time budget on the rollups), then the maintenance; now:
 * Unix seconds. Returns 0 or the -errno of the write. For tests and benchmarks, and the final
 * write. */
int sn_store_flush(struct sn_store *st, int64_t now);

/* Reads key's records of tier t starting in [from, to), oldest first: each decoded into a new
 * slot (sn_ds_slot_new(); the caller unrefs it) appended to *out (a malloc'd array grown as
 * needed, *n its count). *values receives whether the records are rolled-up point records.
 * Damaged records are skipped and counted. Returns 0, -ENOENT (no such key) or -ENOMEM. */
int sn_store_read(struct sn_store *st, const char *key, enum sn_tier t, int64_t from, int64_t to,
                  struct sn_ds_slot ***out, size_t *n, bool *values);
/* The names of the sources of slot s read from key's records (s->src holds the store's ids):
 * a new array of s->nsrc new strings (sn_agg_strings_free()); an unknown id is named "?".
 * Returns 0, -ENOENT or -ENOMEM. */
int sn_store_source_names(struct sn_store *st, const char *key, const struct sn_ds_slot *s,
                          char ***names);
/* The start of the oldest (newest) record of key at tier t into *t0 (*t1). Returns 0 or
 * -ENOENT (none, no such key, or the store cannot be read). */
int sn_store_oldest(struct sn_store *st, const char *key, enum sn_tier t, int64_t *t0);
int sn_store_newest(struct sn_store *st, const char *key, enum sn_tier t, int64_t *t1);

void sn_store_stats(struct sn_store *st, struct sn_store_stats *out);

#endif
