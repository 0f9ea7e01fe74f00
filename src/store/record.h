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
 * varint: LEB128, unsigned, at most 10 bytes, in its shortest form (no final zero byte, the
 * 10th byte 0 or 1). hist: varint number of non-empty buckets, then per bucket the bucket's
 * ordinal (core/hist_bucket.h) as a gap (the first as is, each next as ordinal - previous - 1)
 * and its count (> 0). A bucket typically takes 2-3 bytes against circllhist's 4-6 (a
 * 40-bucket latency histogram: 2.7 B a bucket against 4.6, tests/unit/test_store_record.c).
 *
 * Example: a numeric slot counting 3 events in 2 buckets, {10,4} (ordinal 34922: 10,000 ns)
 * twice and {12,4} once, reported by sources 4 and 9 (tests/unit/test_store_record.c):
 *   01 02 03 00 00 02 04 04 02 ea 90 02 02 01 01, then the CRC-32C of those 15 bytes
 *   (version 1, arity 2, count 3, over_cap 0, map_full 0, 2 sources: 4 and 4+4+1, 2 buckets:
 *   34922 = ea 90 02 with count 2, then gap 1 (34924) with count 1)
 *
 * The encoding is canonical: one slot has one record, so decoding and encoding again gives the
 * same bytes. Counts are stored as given and not checked against each other (they saturate,
 * and a "values" record's counts are sums of values, not numbers of events).
 *
 * Keys and sources are ids interned per instrumentation by the store: the encoder is given
 * the id of each entry's key and of each source, the decoder a table from key id to name.
 * The decoder checks the checksum first, then everything before it reads it (lengths and
 * numbers of things against the bytes left, ids, their order, ordinals, non-zero bucket
 * counts, shortest varints) and never overruns; it is fuzzed (fuzz/fuzz_store_record.c).
 * Speed: a day of 1-minute records (1,440 of 40 buckets) decodes and merges in ~0.65 ms here
 * (test_store_record prints it).
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

/* Appends the record of slot s (borrowed; s->t is not stored: it is the store's key) to b.
 * arity: enum sn_wire_arity; values: a rolled-up point-scope slot. key_ids[i] is the id of
 * s->e[i].key, src_ids[j] that of source s->src[j] (both borrowed; NULL when there are none;
 * ids need not be in any order: the encoder sorts a copy of the sources' ids). A NULL
 * histogram where the format holds one is stored empty; zero-count buckets are left out;
 * numeric by key's total is not stored (the decoder rebuilds it). Returns the record's length,
 * or -ENOMEM, or -EINVAL: an arity out of range, entries where the arity has none, a histogram
 * where the record has none (discrete without values, scalar without values, a total for
 * discrete), keys not strictly ascending (strcmp), one source id twice, ids missing. On
 * failure b is as it was. */
ssize_t sn_rec_encode(const struct sn_ds_slot *s, uint8_t arity, bool values,
                      const uint32_t *key_ids, const uint32_t *src_ids, struct sn_rec_buf *b);

/* What a record holds besides the slot. */
struct sn_rec_info {
    uint8_t arity;
    bool values;
};

/* Decodes buf[0..len) into *out (owned: sn_ds_slot_fini(); out->t is left 0 for the caller,
 * out->src holds source ids, ascending). names[id] (NULL: no such id) is the name of key id,
 * for ids below nnames (names borrowed; the entries' keys are copies). Every histogram the
 * record holds is non-NULL, empty or not; numeric by key's total is the merge of its entries'.
 * info (may be NULL) receives the arity and the values flag. Returns 0, or SN_E_CORRUPT (bad
 * checksum, bad varint, unknown version or flags, a key id unknown or out of order, an
 * ordinal past the last bucket, a zero bucket count), SN_E_TRUNCATED (shorter than a checksum,
 * or a checksummed body that ends inside its structure), SN_E_TRAILING (bytes after it), or
 * -ENOMEM; *out (and *info) are zeroed on failure. A damaged or truncated record almost always
 * fails the checksum: SN_E_CORRUPT. Thread-safe (no state). */
int sn_rec_decode(const void *buf, size_t len, const char *const *names, uint32_t nnames,
                  struct sn_ds_slot *out, struct sn_rec_info *info);

/* The number of non-empty buckets a record holds (for the size figures), or a negative error
 * as sn_rec_decode(), which it checks the same way except for key ids (it has no names).
 * Allocates nothing. */
ssize_t sn_rec_buckets(const void *buf, size_t len);

#endif
