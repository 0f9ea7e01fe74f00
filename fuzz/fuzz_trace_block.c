/*
 * Fuzz target: the span store's values (src/trace/span_block.h, src/trace/span_index.h): blocks
 * of spans, chunks (a request's blocks, trace ids and tags' Bloom filters) and packed index
 * values. Properties: no crash, no read past the input, no leak; a block that decodes has as
 * many spans as its header says, and encoding those spans again (not compressed) decodes to
 * spans that encode to the same bytes once more (the format has one encoding per list of
 * spans); a chunk that parses gives each block inside itself, finds each of its traces where
 * its descriptors say, and its blocks are decoded in turn; an index value that decodes encodes
 * to bytes that decode and encode to the same bytes. Each input is also tried behind a valid
 * block header of its own length, not compressed (its trace ids in it or, as the store's blocks,
 * left out), and as the block of a valid chunk (whose trace ids a block that leaves them out
 * takes), so that mutations reach the span decoder rather than stopping at a header or at
 * zstd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/span_block.h"
#include "trace/span_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ids: the block's trace ids as its chunk lists them (NULL: a block alone) */
static void one(const uint8_t *blk, size_t len, const uint8_t *ids, size_t nids)
{
    struct sn_span_batch b = {0}, again = {0};
    int rc = sn_block_decode_ids(blk, len, ids, nids, &b);
    if (rc == 0) {
        FUZZ_CHECK(sn_block_count(blk, len) == (int64_t)b.n);
        unsigned char *e1, *e2;
        size_t l1, l2;
        FUZZ_CHECK(sn_block_encode(b.spans, b.n, 0, &e1, &l1) == 0);
        FUZZ_CHECK(sn_block_decode(e1, l1, &again) == 0);
        FUZZ_CHECK(again.n == b.n);
        FUZZ_CHECK(sn_block_encode(again.spans, again.n, 0, &e2, &l2) == 0);
        FUZZ_CHECK(l1 == l2 && memcmp(e1, e2, l1) == 0);
        free(e1);
        free(e2);
    }
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&again);
}

static void chunk(const uint8_t *p, size_t len)
{
    struct sn_chunk c;
    if (sn_chunk_parse(p, len, &c) < 0)
        return;
    for (uint32_t i = 0; i < c.nblocks; i++) {
        struct sn_chunk_block cb, cb2;
        uint32_t bi;
        FUZZ_CHECK(sn_chunk_block(&c, i, &cb) == 0);
        FUZZ_CHECK(cb.bloom >= p && cb.bloom + cb.bloom_len <= p + len);
        FUZZ_CHECK(cb.blk >= p && cb.blk + cb.blk_len <= p + len);
        FUZZ_CHECK(cb.first + cb.ntraces <= c.ntraces);
        (void)sn_bloom_has(cb.bloom, cb.bloom_len, sn_tag_hash("error", 5, NULL, 0, false));
        for (uint32_t t = cb.first; t < cb.first + cb.ntraces; t++) {
            FUZZ_CHECK(sn_chunk_block_of(&c, t, &bi, &cb2) == 0 && bi == i);
            FUZZ_CHECK(sn_chunk_find(&c, c.ids + (size_t)t * 16) == (int64_t)t);
        }
        one(cb.blk, cb.blk_len, c.ids + (size_t)cb.first * 16, cb.ntraces);
    }
    struct sn_chunk_block cb;
    FUZZ_CHECK(sn_chunk_block(&c, c.nblocks, &cb) < 0);
}

static void index_value(const uint8_t *p, size_t len)
{
    int64_t n = sn_index_count(p, len);
    if (n < 0)
        return;
    struct sn_index_ent *e = malloc(((size_t)n + 1) * sizeof(*e));
    uint8_t *b1 = malloc(SN_INDEX_MAX(n)), *b2 = malloc(SN_INDEX_MAX(n));
    if (sn_index_decode(p, len, e) == 0) {
        size_t l1 = sn_index_encode(e, (size_t)n, b1);
        int64_t m = sn_index_count(b1, l1);
        FUZZ_CHECK(m >= 0 && m <= n);
        FUZZ_CHECK(sn_index_decode(b1, l1, e) == 0);
        size_t l2 = sn_index_encode(e, (size_t)m, b2);
        FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
    }
    free(e);
    free(b1);
    free(b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, NULL, 0);
    chunk(data, size);
    index_value(data, size);
    if (size < 2 || size > (1u << 20))
        return 0;
    /* behind a header: version 3, not compressed, data[0] % 8 spans, the rest as the payload */
    uint8_t *blk = malloc(size + 16);
    size_t n = 0, pay = size - 1;
    blk[n++] = 3;
    blk[n++] = data[0] & 2; /* its trace ids in it, or (bit 1) in the chunk below */
    blk[n++] = data[0] % 8;
    for (size_t v = pay;; v >>= 7) { /* the payload's length as a varint */
        blk[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    blk[n++] = 0; /* base */
    memcpy(blk + n, data + 1, pay);
    one(blk, n + pay, NULL, 0);
    /* that block in a chunk of one trace, with a filter of data's first 8 bytes */
    uint8_t id[16] = {0};
    struct sn_chunk_part part = {data, blk, size >= 8 ? 8 : 0, n + pay, 1};
    size_t clen = sn_chunk_size(&part, 1, 1);
    uint8_t *ch = malloc(clen);
    sn_chunk_encode(&part, 1, id, 1, ch);
    chunk(ch, clen);
    free(ch);
    free(blk);
    return 0;
}
