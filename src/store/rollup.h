/*
 * Rolling up: how the slots of a finer tier add into a record of a coarser one (store.h).
 * Counts and histograms add exactly (log-linear buckets align); a point-scope metric's raw
 * slots, snapshots that must not add, become values instead: a rolled-up record's count is the
 * sum of the slots' values and its histogram (per key, or the total for a scalar) holds one
 * sample per slot, so an hour keeps the min, p50, p99 and max of a per-second gauge.
 */
#ifndef SN_STORE_ROLLUP_H
#define SN_STORE_ROLLUP_H

#include <stdbool.h>
#include <stdint.h>

#include "agg/dataset.h"

/* dst += src. arity: enum sn_wire_arity; raw_point: src is a raw slot of a point-scope metric
 * (its counts are added as values). The sources become the union of both (ids, ascending).
 * Returns 0 or -ENOMEM (dst valid, holding part of src). */
int sn_rollup_add(struct sn_ds_slot *dst, const struct sn_ds_slot *src, uint8_t arity,
                  bool raw_point);
/* dst += src[0] + ... + src[n-1], as sn_rollup_add() one by one would, but in one pass: the
 * keys of all of them sorted once and each key's histograms merged at once
 * (sn_hist_merge_many()). Returns 0 or -ENOMEM (dst valid, holding part of the sum). */
int sn_rollup_sum(struct sn_ds_slot *dst, const struct sn_ds_slot *const *src, size_t n,
                  uint8_t arity, bool raw_point);
/* Keeps at most cap keys in s besides "other": the largest counts (ties: the smaller key); the
 * rest are summed into "other". cap 0: no cap. Returns how many keys were folded, or -ENOMEM. */
int64_t sn_rollup_cap(struct sn_ds_slot *s, uint32_t cap);

#endif
