/*
 * Fuzz target: the binary histogram decoder, lenient and strict.
 * Properties: never crashes or reads out of bounds; a failed decode leaves an empty
 * histogram; a strict success is also a lenient success with the same histogram and uses
 * every byte; lenient decoding keeps the histogram sorted (checked inside in ASan builds)
 * and consumes no more than it was given.
 */
#include <stdint.h>
#include <string.h>

#include "core/hist.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_hist *lenient = sn_hist_create(), *strict = sn_hist_create();
    ssize_t rl, rs;

    FUZZ_CHECK(lenient && strict);
    rl = sn_hist_decode(lenient, data, size, 0);
    rs = sn_hist_decode(strict, data, size, SN_HIST_STRICT);
    if (rl < 0)
        FUZZ_CHECK(sn_hist_nbuckets(lenient) == 0);
    else
        FUZZ_CHECK((size_t)rl <= size);
    if (rs < 0) {
        FUZZ_CHECK(sn_hist_nbuckets(strict) == 0);
    } else {
        FUZZ_CHECK((size_t)rs == size);
        FUZZ_CHECK(rl == rs);
        FUZZ_CHECK(sn_hist_equal(lenient, strict));
    }
    sn_hist_destroy(lenient);
    sn_hist_destroy(strict);
    return 0;
}
