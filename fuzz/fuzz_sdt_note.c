/*
 * Fuzz target: rec/session.h's reader of USDT probe notes (a binary's .note.stapsdt section),
 * which counts a probe's arguments for its usdt_<provider>_<probe> event class. A binary's
 * content is not trusted. The input is the section's bytes, copied into a buffer of exactly its
 * size so ASan catches a read past it; the probe looked up is sonde_test:work__start (the
 * seeds come from tests/support/sdt_prog). Properties:
 *
 *   - no crash; the result is -ENOENT or a count of at most the input's size;
 *   - the same bytes give the same result twice (no hidden state).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "rec/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *n = malloc(size ? size : 1);
    int a, b;

    if (!n)
        return 0;
    memcpy(n, data, size);
    a = sn_rec_sdt_nargs(n, size, "sonde_test", "work__start");
    b = sn_rec_sdt_nargs(n, size, "sonde_test", "work__start");
    FUZZ_CHECK(a == b);
    FUZZ_CHECK(a == -ENOENT || (a >= 0 && (size_t)a <= size));
    free(n);
    return 0;
}
