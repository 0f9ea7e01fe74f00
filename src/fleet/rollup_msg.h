/*
 * A rollup record on the bus: what a node puts on the stream SONDE_ROLLUPS when its store
 * writes a 1-minute, 1-hour or 1-day record, so that JetStream holds history past the frames
 * stream's days and any node can rebuild its share of it (docs/fleet.md). It is the store's
 * own record (store/record.h: compact, checksummed) with the names its ids stand for written
 * inline, since each store interns names its own way:
 *
 *   offset  size    field
 *   0       4       magic "SNRU"
 *   4       1       version, 1
 *   5       1       tier: 1 (1 min), 2 (1 h), 3 (1 day) (store/tiers.h)
 *   6       8       t: the period's start (Unix seconds, int64, little-endian)
 *   14      4       nkeys (u32 LE), then each key: u16 LE length (0..1023) and its bytes;
 *                   key id i of the record is the i-th name
 *   ..      4       nsrc (u32 LE), then each source name: u16 LE length (1..255) and bytes;
 *                   source id j is the j-th name
 *   ..      ..      the record (store/record.h), to the end
 *
 * The decoder checks every length before it reads and the record as the store does; it is
 * fuzzed (fuzz/fuzz_fleet_rollup.c).
 */
#ifndef SN_FLEET_ROLLUP_MSG_H
#define SN_FLEET_ROLLUP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agg/dataset.h"
#include "store/record.h"

#define SN_ROLLUP_MSG_VERSION 1

struct sn_rollup_msg {
    uint8_t tier;
    int64_t t;
    uint8_t arity;
    bool values;
    struct sn_ds_slot slot; /* owned; slot.t = t; slot.src[j] = j, named by src[j] */
    char **src;             /* owned names of the slot's sources */
};

/* Appends the message of slot s (its sources named src_names[0..s->nsrc)) of tier tier at t
 * to b (emptied first). Returns its length, or -EINVAL (a tier that is not a rollup's, names
 * too long, what sn_rec_encode() refuses) or -ENOMEM. */
ssize_t sn_rollup_msg_encode(const struct sn_ds_slot *s, uint8_t arity, bool values, uint8_t tier,
                             int64_t t, const char *const *src_names, struct sn_rec_buf *b);
/* Decodes buf[0..len) into *out (sn_rollup_msg_fini() it). Returns 0, SN_E_CORRUPT (bad magic,
 * version, tier, lengths, a record the store's decoder refuses), SN_E_TRUNCATED, or -ENOMEM;
 * *out zeroed on failure. */
int sn_rollup_msg_decode(const void *buf, size_t len, struct sn_rollup_msg *out);
void sn_rollup_msg_fini(struct sn_rollup_msg *m);

#endif
