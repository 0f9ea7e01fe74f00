/*
 * Fuzz target: the base64 histogram decoders (lenient = libmtev's, strict = RFC 4648).
 * Properties: no crash or out-of-bounds read; a strict success is a lenient success with the
 * same histogram; re-encoding a strictly decoded histogram whose counts avoid upstream's
 * truncated widths gives back the input text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_hist *lenient = sn_hist_create(), *strict = sn_hist_create();
    const char *s = (const char *)data;
    ssize_t rl, rs;

    FUZZ_CHECK(lenient && strict);
    rl = sn_hist_decode_b64(lenient, s, size, 0);
    rs = sn_hist_decode_b64(strict, s, size, SN_HIST_STRICT);
    if (rl < 0)
        FUZZ_CHECK(sn_hist_nbuckets(lenient) == 0);
    if (rs >= 0) {
        size_t n = sn_hist_b64_len(strict, SN_HIST_EXACT_WIDTHS);
        char *out = malloc(n + 1);
        FUZZ_CHECK(rl == rs);
        FUZZ_CHECK(sn_hist_equal(lenient, strict));
        FUZZ_CHECK(out);
        FUZZ_CHECK(sn_hist_encode_b64(strict, out, n + 1, SN_HIST_EXACT_WIDTHS) == (ssize_t)n);
        FUZZ_CHECK(n == size && memcmp(out, s, n) == 0);
        free(out);
    }
    sn_hist_destroy(lenient);
    sn_hist_destroy(strict);
    return 0;
}
