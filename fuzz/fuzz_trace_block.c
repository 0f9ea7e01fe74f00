/*
 * Fuzz target: blocks of spans as the span store keeps them (src/trace/span_block.h).
 * Properties: no crash, no read past the input, no leak; a block that decodes has as many spans
 * as its header says, and encoding those spans again (not deflated) decodes to spans that encode
 * to the same bytes once more (the format has one encoding per list of spans). Each input is
 * also tried behind a valid header of its own length, not deflated, so that mutations reach the
 * span decoder rather than stopping at the header or at inflate.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/span_block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *blk, size_t len)
{
    struct sn_span_batch b = {0}, again = {0};
    int rc = sn_block_decode(blk, len, &b);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size < 2 || size > (1u << 20))
        return 0;
    /* behind a header: version 1, not deflated, data[0] % 8 spans, the rest as the payload */
    uint8_t *blk = malloc(size + 16);
    size_t n = 0, pay = size - 1;
    blk[n++] = 1;
    blk[n++] = 0;
    blk[n++] = data[0] % 8;
    for (size_t v = pay;; v >>= 7) { /* the payload's length as a varint */
        blk[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    blk[n++] = 0; /* base */
    memcpy(blk + n, data + 1, pay);
    one(blk, n + pay);
    free(blk);
    return 0;
}
