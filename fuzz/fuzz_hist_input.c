/*
 * Fuzz target: the `sonde hist` line parser. Properties: no crash or read past the line;
 * a parsed line yields a count and, when is_int, an integer that equals the double for
 * values exactly representable; a sample is in range exactly when it is finite and under
 * 1e128 in magnitude (the others are skipped).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cli/hist_input.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_hist_sample s;
    const char *why = NULL;
    int r = sn_hist_parse_line((const char *)data, size, &s, &why);

    FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL);
    if (r == -EINVAL)
        FUZZ_CHECK(why && *why);
    if (r == 1 && s.is_int && s.ivalue > -(1LL << 53) && s.ivalue < (1LL << 53))
        FUZZ_CHECK((double)s.ivalue == s.value);
    if (r == 1)
        FUZZ_CHECK(sn_hist_sample_in_range(&s) ==
                   (isfinite(s.value) && s.value < 1e128 && s.value > -1e128));
    return 0;
}
