/*
 * Fuzz target: decode -> encode -> decode. Whatever the lenient decoder accepts must encode
 * (with exact widths) to bytes the strict decoder accepts, giving the same histogram, and
 * encoding that again must reproduce the bytes exactly. With upstream's width table the
 * round trip is exact unless a count falls in the two truncated ranges.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool in_truncated_range(const struct sn_hist *h)
{
    struct sn_bucket b;
    uint64_t c;
    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++)
        if ((c >> 32 && c < (1ULL << 36)) || (c >> 48 && c < (1ULL << 52)))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_hist *a = sn_hist_create(), *b = sn_hist_create();
    unsigned char *enc, *enc2;
    size_t n;
    ssize_t r;

    FUZZ_CHECK(a && b);
    if (sn_hist_decode(a, data, size, 0) < 0)
        goto out;
    sn_hist_remove_zeroes(a);
    for (unsigned flags = 0; flags <= SN_HIST_EXACT_WIDTHS; flags += SN_HIST_EXACT_WIDTHS) {
        n = sn_hist_encoded_len(a, flags);
        enc = malloc(n);
        enc2 = malloc(n);
        FUZZ_CHECK(enc && enc2);
        FUZZ_CHECK(sn_hist_encode(a, enc2, n - 1, flags) == -ENOSPC);
        FUZZ_CHECK(sn_hist_encode(a, enc, n, flags) == (ssize_t)n);
        r = sn_hist_decode(b, enc, n, (flags & SN_HIST_EXACT_WIDTHS) ? SN_HIST_STRICT : 0);
        if ((flags & SN_HIST_EXACT_WIDTHS) || !in_truncated_range(a)) {
            FUZZ_CHECK(r == (ssize_t)n);
            FUZZ_CHECK(sn_hist_equal(a, b));
            FUZZ_CHECK(sn_hist_encode(b, enc2, n, flags) == (ssize_t)n);
            FUZZ_CHECK(memcmp(enc, enc2, n) == 0);
        }
        free(enc);
        free(enc2);
    }
out:
    sn_hist_destroy(a);
    sn_hist_destroy(b);
    return 0;
}
