/*
 * The log-linear histogram: Sonde's unit of data, from the kernel to the screen.
 *
 * Bit-compatible with libcircllhist (openhistogram/libcircllhist, as specified in
 * ../shared/ref/circllhist.md and summarised in docs/histogram.md): the same buckets, the same
 * double -> bucket mapping (1e-13 fuzz and NaN holes included), the same binary and base64
 * forms, and statistics computed in the same operation order so that quantiles, mean, sum and
 * stddev agree to the last bit. Where libcircllhist has bugs, docs/histogram.md lists each
 * one and what Sonde does about it: emulated by default where it changes bytes on the wire
 * (with a switch to fix it), fixed where it only changes a computed figure.
 *
 * Representation: a sorted array of bucket ordinals (u16, see hist_bucket.h) and a parallel
 * array of u64 counts. Single-value inserts build, on first use, a two-level index from
 * ordinal to slot so that incrementing an existing bucket is O(1); histograms built by merging
 * or decoding never pay for it. Counts saturate at UINT64_MAX. Zero-count buckets are kept
 * (as upstream does) until sn_hist_remove_zeroes().
 *
 * Thread safety: none inside; a histogram is owned by one thread at a time. Functions taking
 * a const histogram never modify it, so concurrent readers are fine.
 *
 * Read next: hist_bucket.h (bucket type and integer mappings), hist.c (storage), hist_stats.c
 * (quantiles and moments), hist_codec.c (binary and base64 forms).
 */
#ifndef SN_CORE_HIST_H
#define SN_CORE_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/hist_bucket.h"

struct sn_hist; /* opaque */

/* ------------------------------------------------------------------------------------------
 * Buckets from and to doubles (hist_bucket.c)
 */

/* libcircllhist's double_to_hist_bucket(), bit for bit (NaN holes included), ~3x faster. */
struct sn_bucket sn_bucket_from_double(double d);
/* The ordinal of sn_bucket_from_double(d) (what histograms store), computed directly. */
uint16_t sn_ord_from_double(double d);
/* The same mapping computed the upstream way (log10): the reference the fast path is tested
 * against and falls back to within 1e-12 below a power of ten. */
struct sn_bucket sn_bucket_from_double_ref(double d);
/* As sn_bucket_from_double() with the NaN-hole bug fixed: finite |d| in [1e-128, 1e128) never
 * maps to NaN; the hole values go to {99, k-1}, the bucket they lie in. */
struct sn_bucket sn_bucket_from_double_fixed(double d);

/* The edge nearer zero: val/10 * 10^exp; 0 for zero; NaN (bits 0x7fff...) for NaN. */
double sn_bucket_to_double(struct sn_bucket b);
/* Bucket width 10^exp / 10, always positive; 0 for zero; NaN for NaN. */
double sn_bucket_width(struct sn_bucket b);
/* Harmonic midpoint 2ab/(a+b) of the edges, as libcircllhist computes it; 0 for zero. */
double sn_bucket_midpoint(struct sn_bucket b);
/* The edge nearer -inf. */
double sn_bucket_left(struct sn_bucket b);
/* libcircllhist's hist_bucket_to_string(): "+10e-001", "-23e-003", "0" or "NaN".
 * buf must hold SN_BUCKET_STRLEN bytes; returns the length written (without the NUL). */
#define SN_BUCKET_STRLEN 9
int sn_bucket_to_string(struct sn_bucket b, char buf[SN_BUCKET_STRLEN]);
/*
 * The integers a bucket holds, as the inclusive range [lo, hi] the CA API reports for raw
 * values: positive {val,exp} holds [ceil(val*10^(exp-1)), ceil((val+1)*10^(exp-1)) - 1],
 * negatives mirror it, zero holds [0, 0]. Ranges past INT64 are clamped to INT64_MIN/MAX.
 * Returns 0; -ERANGE when the bucket holds no integer (e.g. {11,0} = [1.1, 1.2)), with *lo and
 * *hi set to the integer part of its edge nearer zero; -EDOM for NaN.
 */
int sn_bucket_int_range(struct sn_bucket b, int64_t *lo, int64_t *hi);

/* ------------------------------------------------------------------------------------------
 * Create, destroy, insert, merge (hist.c)
 */

/* Returns a new empty histogram, or NULL when out of memory. Free with sn_hist_destroy(). */
struct sn_hist *sn_hist_create(void);
/* Frees h and everything it owns; NULL is fine. */
void sn_hist_destroy(struct sn_hist *h);
/* Returns an independent copy of h, or NULL when out of memory. */
struct sn_hist *sn_hist_clone(const struct sn_hist *h);
/* Removes every bucket; keeps the allocation for reuse. */
void sn_hist_clear(struct sn_hist *h);

/*
 * Adds count samples to bucket b, creating it if needed (count 0 creates an empty bucket, as
 * upstream does). The bucket's count saturates at UINT64_MAX.
 * Returns 0; -EINVAL if b is not a valid bucket (h unchanged); -ENOMEM (h unchanged).
 */
int sn_hist_insert_raw(struct sn_hist *h, struct sn_bucket b, uint64_t count);
/* sn_hist_insert_raw(h, sn_bucket_from_double(v), count). */
int sn_hist_insert(struct sn_hist *h, double v, uint64_t count);
/* sn_hist_insert_raw(h, sn_bucket_of_int_scale(v, scale), count). */
int sn_hist_insert_int_scale(struct sn_hist *h, int64_t v, int scale, uint64_t count);
/* sn_hist_insert_raw(h, sn_bucket_of_u64(v), count): an integer, e.g. nanoseconds. */
int sn_hist_insert_u64(struct sn_hist *h, uint64_t v, uint64_t count);
/*
 * Append fast path for callers that produce buckets in ascending order (decoders, the agent):
 * O(1) when b sorts after the last bucket or equals it, otherwise an ordinary insert. This is
 * what libcircllhist's hist_insert_raw_end() means to do (its guard is inverted; see docs).
 */
int sn_hist_insert_raw_end(struct sn_hist *h, struct sn_bucket b, uint64_t count);
/*
 * Bulk append for decoders: n buckets by ordinal (strictly ascending, each < SN_BUCKET_NORD,
 * the first after h's last bucket) with their counts, copied in with one reservation. Returns
 * 0, -EINVAL (an ordinal out of range or out of order: h unchanged) or -ENOMEM.
 */
int sn_hist_append_ords(struct sn_hist *h, const uint16_t *ord, const uint64_t *cnt, size_t n);
/* The buckets as they are kept, for codecs: *ord the ordinals (ascending), *cnt their counts
 * (zero counts included). Valid until h changes. Returns how many. */
size_t sn_hist_raw(const struct sn_hist *h, const uint16_t **ord, const uint64_t **cnt);

/* Removes up to count samples from v's bucket (floor at 0; the bucket stays). Returns the
 * number removed. */
uint64_t sn_hist_remove(struct sn_hist *h, double v, uint64_t count);
/* Drops zero-count buckets. */
void sn_hist_remove_zeroes(struct sn_hist *h);

/*
 * tgt += src, bucket by bucket, counts saturating. src may equal tgt (doubles it).
 * Returns 0, or -ENOMEM with tgt unchanged.
 */
int sn_hist_merge(struct sn_hist *tgt, const struct sn_hist *src);
/* tgt += each of srcs[0..n-1] (NULL entries skipped). Returns 0 or -ENOMEM (tgt may then
 * hold some of the sources: callers that need all-or-nothing merge into a clone). */
int sn_hist_merge_many(struct sn_hist *tgt, const struct sn_hist *const *srcs, size_t n);
/*
 * tgt -= src, libcircllhist's hist_subtract(): buckets absent from src are untouched, a count
 * that would go negative becomes 0, zero-count buckets stay. Returns 0 when every count of src
 * was available in tgt, 1 when some were not (the result is clamped as described).
 */
int sn_hist_subtract(struct sn_hist *tgt, const struct sn_hist *src);

/* ------------------------------------------------------------------------------------------
 * Reading buckets (hist.c)
 */

/* Number of buckets stored, zero-count ones included (upstream hist_bucket_count()). */
size_t sn_hist_nbuckets(const struct sn_hist *h);
/* The i-th bucket in ascending order and its count. Returns false when i is out of range. */
bool sn_hist_bucket_at(const struct sn_hist *h, size_t i, struct sn_bucket *b, uint64_t *count);
/* One non-empty bucket as the inclusive integer range the CA API reports (raw values,
 * heatmap columns, frames' JSON). */
struct sn_hist_range {
    int64_t lo, hi;
    uint64_t count;
};
/* The one rule for a histogram as CA integer ranges, ascending: empty and NaN buckets are
 * skipped, a bucket holding no integer of its own (sn_bucket_int_range() -ERANGE, hi < lo) is
 * clamped to [lo, lo], and a bucket whose lo equals the previous range's lo is folded into it
 * (counts add, saturating). out must hold sn_hist_nbuckets(h) entries; h may be NULL. Returns
 * the number of ranges written. */
size_t sn_hist_ranges(const struct sn_hist *h, struct sn_hist_range *out);
/* The count in bucket b (0 if absent). */
uint64_t sn_hist_bucket_count(const struct sn_hist *h, struct sn_bucket b);
/* Sum of every count, NaN bucket included, saturating at UINT64_MAX (hist_sample_count()). */
uint64_t sn_hist_count(const struct sn_hist *h);
/* True when both hold the same non-zero buckets with the same counts. */
bool sn_hist_equal(const struct sn_hist *a, const struct sn_hist *b);

/* ------------------------------------------------------------------------------------------
 * Statistics (hist_stats.c). Every bucket is represented by its harmonic midpoint; NaN
 * buckets are left out. Results equal libcircllhist's to the last bit except where noted.
 */

/* Mean; NaN when there are no samples outside the NaN bucket. */
double sn_hist_mean(const struct sn_hist *h);
/* Sum of midpoint * count; 0 when empty. */
double sn_hist_sum(const struct sn_hist *h);
/* Population standard deviation; 0 for a histogram with no buckets, NaN when all counts are
 * zero. Can be NaN from rounding when every sample is in one bucket, exactly as upstream. */
double sn_hist_stddev(const struct sn_hist *h);
/* k-th moment about zero, sum(m^k * c) / N. libcircllhist divides by N^k (a bug: docs). */
double sn_hist_moment(const struct sn_hist *h, double k);

enum sn_quantile_type {
    SN_QUANTILE_TYPE1 = 1, /* Hyndman-Fan type 1 over the "fair resampling" (default) */
    SN_QUANTILE_TYPE7 = 7, /* Hyndman-Fan type 7 (R's and numpy's default) */
};
/*
 * Quantiles q[0..n-1] (non-decreasing, each in [0,1]) into out[0..n-1]. A histogram with no
 * samples outside the NaN bucket gives NaN for each. Returns 0; -EDOM if some q is outside
 * [0,1]; -EINVAL if q is not non-decreasing (out then unspecified). The arguments are checked
 * first, even for an empty histogram (upstream returns 0 and NaNs there).
 * Where a bucket's count is UINT64_MAX upstream returns inf (n+1 wraps); Sonde does not.
 */
int sn_hist_quantiles(const struct sn_hist *h, const double *q, size_t n, double *out,
                      enum sn_quantile_type type);

/*
 * Samples in buckets below the threshold's bucket, plus (inclusive) that bucket itself:
 * upstream hist_approx_count_below{,_exclusive}(). The NaN bucket never counts.
 */
uint64_t sn_hist_count_below(const struct sn_hist *h, double threshold, bool inclusive);
/*
 * Samples in buckets above the threshold's bucket, plus (inclusive) that bucket itself.
 * Upstream's hist_approx_count_above() also counts the NaN bucket's samples as "above";
 * Sonde does not (a fix: docs/histogram.md).
 */
uint64_t sn_hist_count_above(const struct sn_hist *h, double threshold, bool inclusive);

/* ------------------------------------------------------------------------------------------
 * Binary and base64 forms (hist_codec.c); byte formats in docs/histogram.md.
 */

enum sn_hist_codec_flags {
    /* encode: write each count in the width it needs. By default Sonde reproduces
     * libcircllhist's width-table bug (counts in [2^32,2^36) and [2^48,2^52) are truncated to
     * 4 and 6 bytes) so that its bytes are identical; readers are unaffected either way. */
    SN_HIST_EXACT_WIDTHS = 1u << 0,
    /* decode: accept only the canonical form: exactly the announced records, no trailing
     * bytes, valid canonical buckets in strictly ascending order, non-zero counts each in the
     * fewest bytes that hold it. (Upstream's own encoder breaks the last rule only when its
     * width-table bug truncates a count, which strict decoding then reports.) By default
     * decoding is as lenient as upstream's. */
    SN_HIST_STRICT = 1u << 1,
};

/* Exact size of the binary form. */
size_t sn_hist_encoded_len(const struct sn_hist *h, unsigned flags);
/* Writes the binary form into buf. Returns the length, or -ENOSPC if len is too small (buf's
 * contents are then unspecified). */
ssize_t sn_hist_encode(const struct sn_hist *h, void *buf, size_t len, unsigned flags);
/* Exact length of the base64 form, without a NUL. */
size_t sn_hist_b64_len(const struct sn_hist *h, unsigned flags);
/* Writes the base64 form and a NUL into buf. Returns the length without the NUL, or -ENOSPC
 * if len < sn_hist_b64_len() + 1. */
ssize_t sn_hist_encode_b64(const struct sn_hist *h, char *buf, size_t len, unsigned flags);

/*
 * Replaces h's contents with the histogram in buf[0..len). Returns the number of bytes read
 * (which, when lenient, may be less than len: upstream stops after the announced records) or
 * a negative code: SN_E_TRUNCATED, SN_E_CORRUPT (bad width tag), -ENOMEM; and in strict mode
 * SN_E_TRAILING, SN_E_BUCKET, SN_E_ORDER, SN_E_ZERO, SN_E_CORRUPT (count in too many bytes).
 * On failure h is left empty.
 * Lenient decoding skips zero counts and invalid buckets like upstream; unlike upstream it
 * keeps h sorted: out-of-order records are inserted in place and repeated buckets summed.
 */
ssize_t sn_hist_decode(struct sn_hist *h, const void *buf, size_t len, unsigned flags);
/*
 * The same from base64. Lenient (default): upstream's decoder (whitespace skipped, stops at the
 * first character outside the alphabet, an incomplete final quad ignored), and an error unless
 * the histogram uses every decoded byte. Strict: RFC 4648 with padding, nothing else allowed,
 * and a strict binary decode. Returns the decoded byte count or a negative code; on failure h
 * is left empty.
 */
ssize_t sn_hist_decode_b64(struct sn_hist *h, const char *s, size_t len, unsigned flags);

#endif
