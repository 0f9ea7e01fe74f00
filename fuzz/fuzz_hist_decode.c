/*
 * Fuzz target: the binary histogram decoder, lenient and strict.
 * Properties: never crashes or reads out of bounds; a failed decode leaves an empty
 * histogram; a strict success is also a lenient success with the same histogram and uses
 * every byte; lenient decoding keeps the histogram sorted (checked inside in ASan builds)
 * and consumes no more than it was given; and it agrees with the model of libcircllhist
 * (tests/model): the same success or failure, the same bytes consumed, the same samples
 * once the model's unsorted, repeated records are sorted and summed.
 */
#include <stdint.h>
#include <string.h>

#include "core/hist.h"
#include "fuzz_check.h"
#include "llmodel.h"

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

    struct llm_hist *m = llm_create();
    struct sn_hist *norm = sn_hist_create();
    FUZZ_CHECK(m && norm);
    ssize_t rm = llm_deserialize(m, data, (ssize_t)size);
    FUZZ_CHECK((rm < 0) == (rl < 0));
    if (rm >= 0) {
        struct llm_bucket b;
        uint64_t c;
        FUZZ_CHECK(rm == rl);
        for (int i = 0; llm_get(m, i, &b, &c); i++)
            FUZZ_CHECK(sn_hist_insert_raw(norm, sn_bucket_make(b.val, b.val ? b.exp : 0), c) == 0);
        FUZZ_CHECK(sn_hist_equal(norm, lenient));
    }
    llm_destroy(m);
    sn_hist_destroy(norm);
    sn_hist_destroy(lenient);
    sn_hist_destroy(strict);
    return 0;
}
