/*
 * A stored record: one slot (agg/dataset.h's struct sn_ds_slot) of one instrumentation at one
 * tier, as the store keeps it on disk (store/store.h). Compact, versioned and checked:
 *
 *   u8      version, 1
 *   u8      flags: bits 0-1 the arity (enum sn_wire_arity); bit 2 "values": a point-scope
 *           metric rolled up, whose entries (and, for a scalar, the total) carry the
 *           histogram of the per-slot values and whose counts are the sums of those values;
 *           bits 3-7 zero
 *   varint  count, over_cap, map_full
 *   varint  nsrc, then the source ids ascending: the first as is, each next as the gap - 1
 *   hist    the total histogram, when the arity is numeric (2) or the record is a scalar with
 *           values; never for numeric by key (its total is the merge of its entries, rebuilt
 *           on decode)
 *   varint  n entries, for discrete (1) and numeric by key (3) only; each: varint key id,
 *           varint count, and a hist for numeric by key or with values. Entries are in the
 *           order of their keys' names (strcmp), as a slot keeps them.
 *   u32     CRC-32C (little-endian) of every byte before it
 *
 * varint: LEB128, unsigned, at most 10 bytes, no overlong form past 64 bits. hist: varint
 * number of non-empty buckets, then per bucket the bucket's ordinal (core/hist_bucket.h) as a
 * gap (the first as is, each next as ordinal - previous - 1) and its count (> 0). A bucket
 * typically takes 2-3 bytes against circllhist's 4-6.
 *
 * Keys and sources are ids interned per instrumentation by the store: the encoder is given
 * the id of each entry's key and of each source, the decoder a table from key id to name.
 * The decoder checks everything before it reads it (lengths, ids, order, counts that sum,
 * the checksum) and never overruns; it is fuzzed (fuzz/fuzz_store_record.c).
 */
#ifndef SN_STORE_RECORD_H
#define SN_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agg/dataset.h"

#define SN_REC_VERSION 1
#define SN_REC_VALUES  0x04 /* flags: a rolled-up point-scope record */

/* A growable byte buffer (the encoder appends to it; reuse it across records). */
struct sn_rec_buf {
    unsigned char *p;
    size_t len, cap;
};
void sn_rec_buf_fini(struct sn_rec_buf *b);

/* Appends the record of slot s (arity: enum sn_wire_arity; values: a rolled-up point-scope
 * slot) to b. key_ids[i] is the id of s->e[i].key, src_ids[j] that of source s->src[j] (ids
 * need not be in any order; the encoder sorts the sources' ids). Returns the record's length,
 * or -ENOMEM, or -EINVAL (an arity out of range, a histogram where the arity has none). */
ssize_t sn_rec_encode(const struct sn_ds_slot *s, uint8_t arity, bool values,
                      const uint32_t *key_ids, const uint32_t *src_ids, struct sn_rec_buf *b);

/* What a record holds besides the slot. */
struct sn_rec_info {
    uint8_t arity;
    bool values;
};

/* Decodes buf[0..len) into *out (owned: sn_ds_slot_fini(); out->t is left 0 for the caller,
 * out->src holds source ids). names[id] (NULL: no such id) is the name of key id, for ids
 * below nnames; the entries' keys are copies. Returns 0, or SN_E_CORRUPT (bad checksum, bad
 * varint, unknown version or flags, a key id unknown or out of order, a zero bucket count),
 * SN_E_TRUNCATED, SN_E_TRAILING, or -ENOMEM; *out is empty on failure. */
int sn_rec_decode(const void *buf, size_t len, const char *const *names, uint32_t nnames,
                  struct sn_ds_slot *out, struct sn_rec_info *info);

/* The number of non-empty buckets a record holds (for the size figures), or a negative error
 * as sn_rec_decode(). */
ssize_t sn_rec_buckets(const void *buf, size_t len);

#endif
