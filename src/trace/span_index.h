/*
 * The span store's packed values (docs/formats.md, "Spans"), apart from the blocks themselves
 * (trace/span_block.h): a chunk, the blocks of one request in one LMDB value, and an index
 * value, the spans of one service in one minute of one chunk. Both exist to make the store
 * small: a chunk pays the slack of LMDB's overflow pages once for a request rather than once a
 * block, and carries the request's trace ids once, uncompressed, so that the index refers to a
 * trace by its position (a byte or two) rather than by its 16 bytes, and its blocks leave them
 * out (sn_block_decode_ids()); an index value packs a span's entry in ~7 bytes (bits, times as
 * deltas) where a dup entry took 32 and its page slack. Each block's tags are in a Bloom filter in
 * the chunk's header, readable without decompressing the block, so that a tag search skips the
 * traces that cannot match.
 *
 *   chunk  u8 version (3) | varint nblocks | varint ntraces |
 *          per block: varint ntraces, varint bloom bytes, varint block bytes |
 *          trace ids (16 bytes each, sorted, distinct: block i holds the next ntraces of them) |
 *          per block: its bloom | per block: the block
 *   index  varint n | u8 widths (bits) of the µs delta, duration, name, remote, trace |
 *          per span, by start, in bits (least significant first, in those widths): µs since
 *          the previous span (the first: since the minute), duration µs, name id, kind (3
 *          bits), error (1 bit), remote service id + 1 (0: none), trace's position in the
 *          chunk; the last byte padded with zeros
 *   bloom  SN_BLOOM_K bits a tag of the bits of len bytes (len 0: no tags); a tag is a bare
 *          word (a span attribute's key, an event's name, "error" for an error status) or a
 *          key=value pair (an attribute's, "error"=status message), hashed with sn_tag_hash()
 *
 * Every parser checks each count and length against what remains (fuzz/fuzz_trace_block.c).
 */
#ifndef SN_TRACE_SPAN_INDEX_H
#define SN_TRACE_SPAN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_CHUNK_VERSION 3
#define SN_BLOOM_BITS    8 /* bits a distinct tag (~2 % false positives) */
#define SN_BLOOM_K       5

/* ---- Chunks --------------------------------------------------------------------------------- */

struct sn_chunk {
    uint32_t nblocks, ntraces;
    const uint8_t *ids;   /* ntraces x 16 */
    const uint8_t *descr; /* the blocks' descriptors */
    const uint8_t *data;  /* the blooms, then the blocks */
    const uint8_t *end;
};
struct sn_chunk_block {
    uint32_t first, ntraces; /* its traces: ids[first .. first + ntraces) */
    const uint8_t *bloom, *blk;
    size_t bloom_len, blk_len;
};
/* One block as sn_chunk_encode() takes it. */
struct sn_chunk_part {
    const uint8_t *bloom, *blk;
    size_t bloom_len, blk_len;
    uint32_t ntraces;
};

/* The bytes sn_chunk_encode() writes. */
size_t sn_chunk_size(const struct sn_chunk_part *parts, size_t n, size_t ntraces);
/* Writes the chunk of parts[0..n) and ids (ntraces x 16, sorted, distinct; the parts'
 * ntraces add up to it) at out (sn_chunk_size() bytes). */
void sn_chunk_encode(const struct sn_chunk_part *parts, size_t n, const uint8_t *ids,
                     size_t ntraces, uint8_t *out);
/* Parses a chunk's header, checking every length: 0 or -EINVAL. */
int sn_chunk_parse(const void *p, size_t len, struct sn_chunk *c);
/* Block i of a parsed chunk (0, or -EINVAL past the last). */
int sn_chunk_block(const struct sn_chunk *c, uint32_t i, struct sn_chunk_block *out);
/* The position of trace id in the chunk, or -1. */
int64_t sn_chunk_find(const struct sn_chunk *c, const uint8_t id[16]);
/* The block holding the trace at position t (0, or -EINVAL). */
int sn_chunk_block_of(const struct sn_chunk *c, uint32_t t, uint32_t *i,
                      struct sn_chunk_block *out);

/* ---- Index values --------------------------------------------------------------------------- */

struct sn_index_ent {
    uint32_t us;       /* since the minute */
    uint32_t duration; /* µs, saturated at 2^32 - 1 */
    uint32_t name;     /* span name id (< 2^28) */
    uint8_t kind;
    bool error;
    uint32_t remote; /* remote service id + 1; 0: none */
    uint32_t trace;  /* position in the chunk */
};
/* The bytes sn_index_encode() may write for n entries, at most. */
#define SN_INDEX_MAX(n) (10 + (size_t)(n)*25)
/* Sorts e[0..n) by start (then every field), drops repeats, and writes the value at out.
 * Returns its length. */
size_t sn_index_encode(struct sn_index_ent *e, size_t n, uint8_t *out);
/* The entries of an index value: their count (-EINVAL when damaged). */
int64_t sn_index_count(const void *p, size_t len);
/* Decodes an index value into out (sn_index_count() entries). 0 or -EINVAL. */
int sn_index_decode(const void *p, size_t len, struct sn_index_ent *out);

/* ---- Tags' Bloom filters -------------------------------------------------------------------- */

/* A tag's hash (never 0): a bare word (pair false) or a key=value pair. */
uint64_t sn_tag_hash(const char *key, size_t klen, const char *value, size_t vlen, bool pair);
/* The hash of the pair key=value from the key's (sn_tag_hash(key, klen, NULL, 0, false)):
 * sn_tag_hash(key, klen, value, vlen, true). */
uint64_t sn_tag_hash_pair(uint64_t key_hash, const char *value, size_t vlen);
/* The bytes of a filter of n distinct tags (0 when none). */
size_t sn_bloom_bytes(size_t n);
void sn_bloom_add(uint8_t *bits, size_t len, uint64_t h);
/* Whether the tag of hash h may be in the filter (false: it is not). */
bool sn_bloom_has(const uint8_t *bits, size_t len, uint64_t h);

#endif
