/*
 * Fuzz target: OTLP/HTTP protobuf requests (src/trace/otlp.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour; the result is 0, -EINVAL or -E2BIG, and a
 * refused request leaves the batch as it was (a span decoded before it, its count) with a
 * reason; a decoded request holds at most SN_SPAN_MAX_SPANS spans, each within the limits of
 * span.h (valid ids, kind and status in range, counts, value sizes); it re-encodes
 * (sn_otlp_encode) to a request that decodes to equal spans with nothing refused, and that
 * encoding is stable (encode -> decode -> encode gives the same bytes).
 */
#define OTLP_ENC SN_OTLP_PROTO
#include "fuzz_otlp.inc"
