/*
 * The JSON form of frames, both directions: sn_wire_frame_to_json() writes what `sonde agent
 * --stdout` prints, and sn_wire_frame_from_json() reads it back into the same struct
 * sn_wire_frame that sn_wire_frame_decode() produces from the binary form, so that agents
 * emit and the server ingests JSON and binary frames through one path. A frame object,
 * version 1:
 *
 *   {"v":1,"id":"1","host":"web1","t":1763812345,"arity":"numeric-decomposition",
 *    "value":{"nginx":[[[2000000,2099999],18],[[2100000,2199999],2]]},
 *    "drops":{"over_cap":0,"map_full":0}}
 *
 * "v" must be 1 when present (absent means 1); "id" and "host" are strings of 1..255 bytes; "t"
 * is an integer >= 0 (Unix seconds); "arity" is "scalar", "discrete-decomposition" or
 * "numeric-decomposition". "value" is, by arity: a non-negative integer; {key: count}; an array
 * of [[lo,hi],count] (wire arity SN_WIRE_NUMERIC, one entry keyed "") or {key: [[[lo,hi],count],
 * ...]} (SN_WIRE_NUMERIC_BY_KEY). Each [lo,hi] must be exactly the integer range of one
 * log-linear bucket (sn_bucket_int_range()); counts are non-negative integers; repeated buckets
 * add and zero counts are skipped. "drops" is optional, each of its members defaulting to 0.
 * Keys are at most SN_WIRE_MAX_KEY bytes. total is the scalar value or the sum of the entries'
 * counts (each the count of its histogram for numeric arities); counts that overflow 64 bits are
 * rejected. Unknown members are ignored (forward compatibility). A decoded frame is always one
 * that sn_wire_frame_encode() accepts.
 *
 * Every rejection is -EINVAL with a message naming the member, e.g. `"t" must be an integer`,
 * `value: range [10,20] is not a histogram bucket`, `value: "nginx": item 2 must be
 * [[lo,hi],count]`. The decoder is fuzzed (fuzz/fuzz_frame_json.c).
 */
#ifndef SN_WIRE_FRAME_JSON_H
#define SN_WIRE_FRAME_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "wire/frame.h"

/*
 * The JSON form of f (borrowed): a new object (owned: json_decref() it) with the members in
 * the order above, "v", "id", "host", "t", "arity", "value", "drops" (both drops always
 * present). "value" is, by f->arity: f->total; {key: count} in entry order; the first entry's
 * histogram as [[lo,hi],count],... (an empty array when there is no entry); {key:
 * [[[lo,hi],count],...]} in entry order. Histograms give one range per non-empty bucket,
 * ascending, by core/hist.h's one rule (sn_hist_ranges(): buckets holding no integer fold into
 * the range below them, NaN buckets are left out). Counts past INT64_MAX (JSON
 * integers are signed) are written as INT64_MAX.
 * For every frame that sn_wire_frame_from_json() produces, decoding the result gives an equal
 * frame (sn_wire_frame_equal()); for frames of agents (unique keys, integer buckets) too.
 * A key that is not valid UTF-8 (jansson refuses it) is left out of "value", and a key that
 * repeats replaces the earlier one's value, as the agent always did (its keys are unique).
 * Returns NULL when out of memory, when f->arity is not one of enum sn_wire_arity, or when
 * id or host is NULL or not valid UTF-8.
 */
json_t *sn_wire_frame_to_json(const struct sn_wire_frame *f);

/* Decodes one JSON frame object j (borrowed) into *out (owned; release with sn_wire_frame_fini()).
 * Returns 0, or -EINVAL with a reason in why (e.g. `"t" must be an integer`,
 * `value: range [10,20] is not a histogram bucket`), leaving *out empty; -ENOMEM. */
int sn_wire_frame_from_json(const json_t *j, struct sn_wire_frame *out, char *why, size_t whylen);

/* Decodes a text body holding frames: one JSON object, a JSON array of objects, or JSON lines
 * (one object per line, blank lines ignored). Calls fn for each decoded frame in order (fn borrows
 * it; it is freed after fn returns). Stops at the first bad frame: returns -EINVAL with why
 * prefixed by "frame N: " (N from 1), having called fn for the frames before it; returns the
 * number of frames on success. max bounds the number of frames (more: -E2BIG, "more than N
 * frames"). */
/* fn's result: nonzero stops, returned as is */
typedef int (*sn_wire_frame_fn)(const struct sn_wire_frame *f, void *arg);
int sn_wire_frames_from_text(const char *text, size_t len, size_t max, sn_wire_frame_fn fn,
                             void *arg, char *why, size_t whylen);
/*
 * Details of sn_wire_frames_from_text():
 * - The form is chosen by the first non-blank byte: '[' is an array, anything else objects one
 *   after another, each starting on a new line (so a single object may span lines, as
 *   pretty-printed JSON does). Text with no frame at all returns 0.
 * - JSON syntax errors carry the line: `frame 3: line 3: invalid JSON: ...`. A syntax error
 *   inside an array fails the whole array before any fn call, without a frame number:
 *   `line 2: invalid JSON: ...`. Object keys must be unique in the text.
 * - Frames are counted in order: frame max+1 stops the decoding with -E2BIG after fn has been
 *   called for the first max (the same for arrays and lines).
 * - fn may take the frame: the frame it is given is the reader's own (non-const in truth), and
 *   what fn moves out and zeroes is not freed (sn_wire_frame_fini() of a zeroed frame is a
 *   no-op); the ingest endpoint keeps a body's frames so.
 * - fn may be NULL (validation only). why is "" unless an error is returned by the decoder; it
 *   is left "" when fn stops the decoding. fn should return a negative value to stop, since a
 *   positive one reads as a frame count.
 * - Both functions accept why == NULL or whylen == 0.
 */

#endif
