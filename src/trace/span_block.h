/*
 * A block: the spans of one trace or of a few, as the span store keeps them (one LMDB value),
 * compact and compressed (zstd). Spans of a request are sorted by trace id and cut into blocks of
 * at most SN_BLOCK_RAW bytes before compression, so that a trace read decompresses one block, the
 * random parts (ids) sit among text that compresses several times over, and the resources the
 * spans share are written once.
 *
 * Layout (docs/formats.md, "Spans"):
 *   u8 version (3) | u8 flags (bit 0: the payload is a zstd frame; bit 1: no trace ids) |
 *   varint nspans | varint payload length | varint base (the smallest start_ns) | payload
 * and the payload (decompressed) is the block's tables (its distinct attribute keys, its
 * distinct attributes, each once, as a skeleton and the runs of digits cut out of it, and its
 * resources), then each span in turn: ids, kind, status, flags, times as deltas from the base,
 * strings as indexes in the table, attributes as their keys' indexes and their ranks, events,
 * links and endpoints (span_block.c says the order). Version 3 (version 2 wrote each value
 * whole, its attributes' keys and ranks in one stream; version 1 each attribute in full where
 * it was). The decoder checks
 * every length and count against what remains and the limits of trace/span.h: a damaged block is
 * refused
 * (-EINVAL), never read past.
 */
#ifndef SN_TRACE_SPAN_BLOCK_H
#define SN_TRACE_SPAN_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "trace/span.h"

/* A block's spans before compression, at most, as sn_block_span_size() counts them (attributes
 * written out in full; a single span larger than that gets a block of its own): about 200 spans
 * of 20 attributes. Large enough that what the block's spans share (strings, attributes) is
 * written once for many spans and zstd finds their repeats, small enough that a trace read
 * decodes it in a fraction of a millisecond and a search's reads stay fast (bench-trace: 640 KiB,
 * a whole request, takes 6 % less room and searches take 3-4 times as long). */
#define SN_BLOCK_RAW (256u << 10)

/* Encodes spans[0..n) into one block (*out malloc'd, *len bytes): compressed with zstd at
 * level when it pays (level 0: never). Returns 0 or -ENOMEM. */
int sn_block_encode(const struct sn_span *spans, size_t n, int level, unsigned char **out,
                    size_t *len);
/* sn_block_encode() as the span store keeps a block, in a chunk (trace/span_index.h): without
 * its spans' trace ids, which the chunk lists (spans[] sorted by trace id: sn_block_decode_ids()
 * takes the ids back), and the Bloom filter of the block's tags (its spans' attribute keys,
 * key=value pairs, events' names, "error" for an error status) in *bloom (malloc'd, *bloom_len
 * bytes; NULL and 0 when there are none). */
int sn_block_encode_tags(const struct sn_span *spans, size_t n, int level, unsigned char **out,
                         size_t *len, uint8_t **bloom, size_t *bloom_len);
/* The size spans[i] takes in a block's payload (to cut blocks at SN_BLOCK_RAW). */
size_t sn_block_span_size(const struct sn_span *s);
/* Decodes a block, appending its spans to b (their strings in b's arena). Returns 0, or
 * -EINVAL for a damaged block (b may hold some of its spans: the caller drops them) or one
 * without its trace ids (sn_block_encode_tags()), or -ENOMEM. */
int sn_block_decode(const void *blk, size_t len, struct sn_span_batch *b);
/* sn_block_decode() of a block of a chunk: ids (nids x 16 bytes) are its traces' ids, as the
 * chunk lists them (sn_chunk_block()), given to its spans when the block leaves them out;
 * -EINVAL when the block's traces are not nids. */
int sn_block_decode_ids(const void *blk, size_t len, const uint8_t *ids, size_t nids,
                        struct sn_span_batch *b);
/* How many spans a block holds, from its header (-EINVAL when damaged). */
int64_t sn_block_count(const void *blk, size_t len);

#endif
