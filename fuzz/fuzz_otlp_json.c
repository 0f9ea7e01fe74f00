/*
 * Fuzz target: OTLP/HTTP JSON requests (src/trace/otlp.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour (jansson included); the result is 0, -EINVAL or
 * -E2BIG, and a refused request leaves the batch as it was (a span decoded before it) with a
 * reason; a decoded request holds at most SN_SPAN_MAX_SPANS spans, each within the limits of
 * span.h; the spans re-encode as protobuf (sn_otlp_encode) to a request that decodes to equal
 * spans with nothing refused (so the JSON text of array and kvlist values made from JSON
 * survives the protobuf path), and that encoding is stable.
 */
#define OTLP_ENC SN_OTLP_JSON
#include "fuzz_otlp.inc"
