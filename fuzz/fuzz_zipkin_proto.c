/*
 * Fuzz target: Zipkin v2 proto3 spans (src/trace/zipkin.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour; a failed decode leaves the batch empty with a
 * reason; a successful one writes JSON (sn_zipkin_span_json()) that jansson reads, that the JSON
 * decoder gives back as equal spans (so proto3's invalid UTF-8, repeated fields and repeated tag
 * keys were normalised the way JSON's are) and that writes the very same text again; and the
 * spans encoded as proto3 again decode to equal spans.
 */
#define ZIPKIN_DECODE sn_zipkin_decode_proto
#include "fuzz_zipkin.inc"
