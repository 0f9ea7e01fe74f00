/*
 * Fuzz target: Zipkin v2 JSON spans (src/trace/zipkin.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour; a failed decode leaves the batch empty with a
 * reason; a successful one writes JSON (sn_zipkin_span_json()) that jansson reads, that decodes
 * again to equal spans and writes the very same text again; and the spans encoded as proto3
 * decode to equal spans too.
 */
#define ZIPKIN_DECODE sn_zipkin_decode_json
#include "fuzz_zipkin.inc"
