/*
 * The agent's BPF source in user space: owns the BPF probes (skeletons), turns enabled
 * traced instrumentations into kernel slots (bpf/slots.h), attaches a probe's programs only
 * while some slot needs them, and once a second flips the generation and drains the previous
 * one (docs/agent.md). Sampled metrics are not the engine's: see agent/sampled.h.
 *
 * Not thread-safe: one thread (the agent's collection loop) owns an engine. (Uprobe links are
 * destroyed on short-lived threads of the engine's own, which touch nothing else.)
 */
#ifndef SN_AGENT_ENGINE_H
#define SN_AGENT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/predicate.h"
#include "bpf/slots.h"

struct sn_engine; /* opaque */

/* What the kernel needs to know about one instrumentation. */
struct sn_slot_spec {
    uint32_t metric;     /* enum sn_metric_id */
    struct sn_pred pred; /* compiled predicate (agent/predicate.h) */
    uint8_t key_field;   /* discrete decomposition field, or SN_NO_FIELD */
    uint8_t num_field;   /* numeric decomposition field, or SN_NO_FIELD */
    uint32_t key_cap;    /* distinct discrete keys per second (however many buckets of the
                            numeric field each spans) before further keys go to "other" */
    uint32_t needs;      /* bit per event field the predicate or decomposition reads */
    struct {             /* usdt.probes: the probe pair this instrumentation attaches */
        char path[256];  /* the binary or library */
        char provider[64];
        char start[64], done[64]; /* probe names, e.g. "work__start", "work__done" */
    } usdt;
};

/* One aggregated cell of a drained generation. key is SN_KEYLEN bytes (zeros when the slot
 * has no discrete decomposition); other is set for the over-cap cell. */
struct sn_cell {
    int slot;
    uint16_t ord;
    bool other;
    char key[SN_KEYLEN];
    uint64_t count;
};

/* Per-slot loss counters of a drained generation. */
struct sn_slot_drops {
    uint64_t over_cap; /* events counted under "other" because the key cap was reached */
    uint64_t map_full; /* events lost because the aggregation map (or the key set) was full */
};

typedef void (*sn_cell_fn)(const struct sn_cell *cell, void *arg);

/* Loads the probes (attaches nothing). Returns 0 or a negative errno (-EPERM without
 * privileges, with libbpf's reason logged through sn_log). */
int sn_engine_open(struct sn_engine **out);

/* How the engine keeps cells and collects them (docs/agent.md); the default is the table. */
enum sn_collect_mode {
    SN_COLLECT_TABLE = 0, /* cells numbered by the kernel in arrays mapped into user space:
                             collecting reads memory, no system call per cell */
    SN_COLLECT_BATCH,     /* per-CPU hashes drained with batched lookup-and-delete */
    SN_COLLECT_BASELINE,  /* per-CPU hashes read as before (a walk, a lookup and a delete per
                             cell, every counter every second): for bench/bench_agent.c */
};

struct sn_engine_opts {
    uint32_t agg_entries;  /* cells the kernel's aggregation map holds per generation (0:
                              SN_AGG_ENTRIES), and keys its key set holds; events that find
                              either full are counted as map_full drops */
    uint32_t exclude_tgid; /* a process none of whose events count (the agent's own, getpid(),
                              unless --trace-self), checked first in every probe; 0: none */
    enum sn_collect_mode collect;
};
/* sn_engine_open() with options (o may be NULL). */
int sn_engine_open_opts(struct sn_engine **out, const struct sn_engine_opts *o);
/* Detaches and unloads everything; NULL is fine. */
void sn_engine_close(struct sn_engine *e);

/* Installs spec in a free slot and attaches its probe if it was idle. Returns the slot
 * (>= 0), -ENOSPC when every slot (or the metric's list) is full, -EINVAL for a bad spec or a
 * sampled metric (those are the sampler's: agent/sampled.h), or the attach error (the slot is
 * then released). */
int sn_engine_enable(struct sn_engine *e, const struct sn_slot_spec *spec);
/* Releases slot; detaches the probe when it was the metric's last. Returns 0 or -ENOENT. */
int sn_engine_disable(struct sn_engine *e, int slot);
/* True when the metric's probe is attached (the engine's view; tests check the kernel's). */
bool sn_engine_attached(const struct sn_engine *e, uint32_t metric);
/* The kernel ids of the metric's programs, for status and for checking attachment from the
 * kernel's side. Returns how many were written to ids (at most n). */
int sn_engine_prog_ids(const struct sn_engine *e, uint32_t metric, uint32_t *ids, int n);

/* The text of a process's arguments from the hash the kernel keys psargs by (the kernel keeps
 * recent ones). False when it has been forgotten. */
bool sn_engine_psargs(const struct sn_engine *e, uint64_t hash, char *out, size_t len);

/* How many cgroups the kernel's cgroup_scope map marks as under some enabled slot's "under"
 * prefix (the kernel's view, for status and tests). */
int sn_engine_scoped_cgroups(const struct sn_engine *e);

/* What collections have cost so far: counted by the engine (bpf() calls are those it makes
 * while collecting, cells those it reported). */
struct sn_engine_stats {
    uint64_t collections;
    uint64_t bpf_calls;
    uint64_t cells;
};
void sn_engine_stats(const struct sn_engine *e, struct sn_engine_stats *out);

/* Flips the generation, waits out programs still writing the old one, and calls fn for each
 * cell of it, then clears it (its cells, and the keys the key cap admitted in it). drops
 * (SN_MAX_SLOTS entries, may be NULL) receives the loss counters. Returns the number of cells, or a
 * negative errno. Then refreshes cgroup_scope from the cgroup2 tree ("under" leaves). */
int sn_engine_collect(struct sn_engine *e, sn_cell_fn fn, void *arg, struct sn_slot_drops *drops);

#endif
