/*
 * Fuzz target: OTLP/HTTP JSON requests (src/trace/otlp.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour (jansson included); the result is 0, -EINVAL or
 * -E2BIG, and a refused request leaves the batch as it was (a span decoded before it) with a
 * reason; a decoded request holds at most SN_SPAN_MAX_SPANS spans, each within the limits of
 * span.h; the spans re-encode as protobuf (sn_otlp_encode) to a request that decodes to equal
 * spans with nothing refused (so the JSON text of array and kvlist values made from JSON
 * survives the protobuf path), and that encoding is stable.
 *
 * The span checks are those of fuzz_otlp_proto.c (each target is one file).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one[] = {0x0a, 0x20, 0x12, 0x1e, 0x12, 0x1c, 0x0a, 0x10, 1,  2,  3,  4,
                                  5,    6,    7,    8,    9,    10,   11,   12,   13, 14, 15, 16,
                                  0x12, 0x08, 1,    2,    3,    4,    5,    6,    7,  8};
    struct sn_span_batch b = {0}, c = {0};
    char why[256];

    /* a span there first: a refused request must leave it */
    FUZZ_CHECK(sn_otlp_decode(SN_OTLP_PROTO, one, sizeof(one), &b, why, sizeof(why)) == 0);
    FUZZ_CHECK(b.n == 1 && b.rejected == 0);

    int rc = sn_otlp_decode(SN_OTLP_JSON, data, size, &b, why, sizeof(why));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    if (rc < 0) {
        FUZZ_CHECK(b.n == 1 && b.rejected == 0 && b.reject_why[0] == '\0');
        FUZZ_CHECK(why[0] != '\0');
        sn_span_batch_fini(&b);
        return 0;
    }
    FUZZ_CHECK(why[0] == '\0');
    FUZZ_CHECK(b.n - 1 <= SN_SPAN_MAX_SPANS);
    FUZZ_CHECK((b.rejected == 0) == (b.reject_why[0] == '\0'));
    for (size_t i = 0; i < b.n; i++)
        FUZZ_CHECK(sn_span_valid(&b.spans[i]));

    unsigned char *out, *out2;
    size_t len, len2;
    FUZZ_CHECK(sn_otlp_encode(b.spans + 1, b.n - 1, &out, &len) == 0);
    FUZZ_CHECK(sn_otlp_decode(SN_OTLP_PROTO, out, len, &c, why, sizeof(why)) == 0);
    FUZZ_CHECK(c.rejected == 0 && c.n == b.n - 1);
    for (size_t i = 0; i < c.n; i++)
        FUZZ_CHECK(sn_span_equal(&b.spans[i + 1], &c.spans[i]));
    FUZZ_CHECK(sn_otlp_encode(c.spans, c.n, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    free(out);
    free(out2);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
    return 0;
}
