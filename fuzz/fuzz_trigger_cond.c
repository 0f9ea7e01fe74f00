/*
 * Fuzz target: serve/trigger_cond.h's sn_tcond_parse, fed a trigger's condition text (what the
 * API's "when" carries). Properties: no crash; a condition taken is in range (a percentile in
 * (0, 100), a band with lo < hi, a finite threshold >= 0, 1 to 3600 seconds); one refused has
 * a message.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "serve/trigger_cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), why[256] = "";
    struct sn_tcond c;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0; /* the API hands over a C string: an inner NUL ends it */
    if (sn_tcond_parse(text, &c, why, sizeof(why)) == 0) {
        FUZZ_CHECK(c.kind == SN_TCOND_PCT || c.kind == SN_TCOND_RATE || c.kind == SN_TCOND_BAND);
        FUZZ_CHECK(c.kind != SN_TCOND_PCT || (c.pct > 0 && c.pct < 100));
        FUZZ_CHECK(c.kind != SN_TCOND_BAND || (isfinite(c.lo) && isfinite(c.hi) && c.lo < c.hi));
        FUZZ_CHECK(isfinite(c.threshold) && c.threshold >= 0);
        FUZZ_CHECK(c.for_s >= 1 && c.for_s <= SN_TCOND_MAX_FOR);
    } else {
        FUZZ_CHECK(why[0] != 0);
    }
    free(text);
    return 0;
}
