/*
 * The binary frame: what an agent sends an aggregator for one instrumentation and one second
 * (docs/agent.md; the JSON twin is wire/frame_json.h, a stream of them wire/stream.h).
 * Little-endian, versioned, checksummed:
 *
 *   offset  size  field
 *   0       4     magic "SNFR"
 *   4       1     version, 1
 *   5       1     arity: 0 scalar, 1 {key: count}, 2 histogram, 3 {key: histogram}
 *   6       2     reserved, 0
 *   8       8     t: the second the counts belong to (Unix time, int64)
 *   16      8     total: every event counted (the value of a scalar frame)
 *   24      8     over_cap: events counted under "other" because of the key cap
 *   32      8     map_full: events lost to a full aggregation map
 *   40      2+n   id: u16 length (1..255) and bytes
 *   ..      2+n   host: u16 length (1..255) and bytes
 *   ..      4     entries: u32 count; 0 for arity 0, 1 for arity 2
 *   ..            each entry: u16 key length (0..1023) and bytes (empty for arity 2), u64
 *                 count, and for arities 2 and 3 a u32 length and the histogram in
 *                 circllhist's binary form with exact count widths (core/hist.h)
 *   end-4   4     CRC-32C of every byte before it
 *
 * The decoder checks every length before reading, the checksum, and that the counts agree
 * (total = sum of entries = sum of histograms); it is fuzzed (fuzz/fuzz_wire_frame.c).
 */
#ifndef SN_WIRE_FRAME_H
#define SN_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/hist.h"

#define SN_WIRE_VERSION  1
#define SN_WIRE_MAX_NAME 255
#define SN_WIRE_MAX_KEY  1023

enum sn_wire_arity {
    SN_WIRE_SCALAR = 0,
    SN_WIRE_DISCRETE = 1,
    SN_WIRE_NUMERIC = 2,
    SN_WIRE_NUMERIC_BY_KEY = 3,
};

struct sn_wire_entry {
    char *key; /* NUL-terminated; "" for arity 2 */
    uint64_t count;
    struct sn_hist *hist; /* arities 2 and 3 */
};

struct sn_wire_frame {
    char *id, *host;
    int64_t t;
    uint8_t arity;
    uint64_t total, over_cap, map_full;
    size_t n;
    struct sn_wire_entry *entries;
};

/* Bytes sn_wire_frame_encode() writes for f. */
size_t sn_wire_frame_len(const struct sn_wire_frame *f);
/* Writes f (borrowed) into buf. Returns the length, -ENOSPC if len is too small, or -EINVAL
 * when f breaks the format's rules (name lengths, entry counts for its arity, totals). */
ssize_t sn_wire_frame_encode(const struct sn_wire_frame *f, void *buf, size_t len);
/* Decodes buf[0..len) into *out (owned: release with sn_wire_frame_fini()). Returns 0, or
 * SN_E_CORRUPT / SN_E_TRUNCATED / SN_E_TRAILING / -ENOMEM, leaving *out empty. */
int sn_wire_frame_decode(const void *buf, size_t len, struct sn_wire_frame *out);
/* Frees what a decode allocated; the frame is left empty. */
void sn_wire_frame_fini(struct sn_wire_frame *f);
/* Whether two frames say the same: id, host, second, arity, totals, drops, and the same
 * entries in the same order (keys, counts, equal histograms). */
bool sn_wire_frame_equal(const struct sn_wire_frame *a, const struct sn_wire_frame *b);

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). When it is not, *bad (may be NULL) is the offset of the first bad byte. The wire
 * format does not require it; the server refuses frames whose names or keys fail it. */
bool sn_wire_utf8_valid(const char *s, size_t n, size_t *bad);

#endif
