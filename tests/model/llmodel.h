/*
 * llmodel: a deliberately plain model of the upstream libcircllhist algorithms.
 *
 * What: a C11 re-statement of openhistogram/libcircllhist (as described in
 * /work/shared/ref/circllhist.md, sections 1 and 2): bucket mapping, inserts, merge and subtract,
 * quantiles (Type 1 and Type 7), mean/sum/stddev, threshold counts, the binary wire format and
 * its base64 form. It was written from that specification, not copied from upstream.
 *
 * Why: Sonde's tests use it as a differential oracle and its benchmark uses it as the baseline.
 * So it keeps upstream's data structure and costs (a sorted array of packed 10-byte
 * (bucket,count) pairs, 100 initial slots growing by +100, binary search, memmove inserts, a
 * two-pass k-way merge into a fresh exactly-sized array, a byte-at-a-time base64 decoder) and it
 * reproduces upstream behaviour INCLUDING its bugs, on purpose:
 *   - NaN holes just below large/small powers of ten (log10 + 1e-13 fuzz, spec 1.2);
 *   - count width-table bug: counts in [2^32,2^36) and [2^48,2^52) are written truncated;
 *   - quantiles give inf in a bucket whose count is UINT64_MAX (n+1 wraps to 0);
 *   - count_above* start from the sample count, which includes NaN counts;
 *   - the decoder neither sorts nor de-duplicates buckets;
 *   - the base64 decoder's output width after a '=' stays in force for later quads.
 * Do not "fix" anything here: fixes belong in Sonde, documented against this model.
 *
 * Not thread-safe. Floating-point results assume -ffp-contract=off and no -ffast-math.
 * Library code never prints. All llm_hist pointers are borrowed unless stated otherwise.
 */
#ifndef SONDE_TESTS_LLMODEL_H
#define SONDE_TESTS_LLMODEL_H

#include <stdint.h>
#include <sys/types.h>

/* A bucket: val in 10..99 (positive), -99..-10 (negative), 0 (zero), {-1,0} (the NaN bucket). */
struct llm_bucket {
    int8_t val; /* mantissa x 10, signed */
    int8_t exp; /* decimal exponent: value = val/10 * 10^exp */
};

/* Opaque histogram: sorted array of (bucket,count) pairs. */
struct llm_hist;

/* --- buckets --- */

/* Upstream double_to_hist_bucket: floor(log10), divide, *10, +1e-13, floor (NaN holes kept). */
struct llm_bucket llm_bucket_from_double(double d);
/* Upstream int_scale_to_hist_bucket: exact integer mapping of v * 10^scale, no fuzz. */
struct llm_bucket llm_bucket_from_int_scale(int64_t v, int scale);
/* Upstream hist_bucket_isnan: 1 if |val| is in 1..9 or >= 100, else 0. */
int llm_bucket_is_nan(struct llm_bucket b);
/* Upstream hist_bucket_cmp: +1 if a < b, -1 if a > b, 0 if bitwise equal; NaNs sort first. */
int llm_bucket_cmp(struct llm_bucket a, struct llm_bucket b);
/* Edge nearer zero, (val/10.0)*P[exp]; 0 for zero; private NaN (0x7fff...ffff) for NaN. */
double llm_bucket_to_double(struct llm_bucket b);
/* Bin width P[exp]/10.0 (positive); 0 for zero; private NaN for NaN. */
double llm_bucket_width(struct llm_bucket b);
/* Harmonic midpoint of the bucket bounds (spec 1.5); 0 for zero; private NaN for NaN. */
double llm_bucket_midpoint(struct llm_bucket b);
/* Edge nearer -inf (upstream's static hist_bucket_left); 0 for zero; private NaN for NaN. */
double llm_bucket_left(struct llm_bucket b);
/* Writes "sxxetyyy" (exponent printed as exp-1), "0" or "NaN" plus NUL; returns strlen. */
int llm_bucket_to_string(struct llm_bucket b, char buf[9]);

/* --- create / destroy / insert --- */

/* Returns an owned empty histogram with 100 slots; free with llm_destroy(). NULL on ENOMEM. */
struct llm_hist *llm_create(void);
/* Frees h and its array; accepts NULL. */
void llm_destroy(struct llm_hist *h);
/* Sets every count to 0 and used to 0; keeps the allocation. */
void llm_clear(struct llm_hist *h);
/* Adds count to bucket b (creating it, even for count 0); saturates; returns amount added. */
uint64_t llm_insert_raw(struct llm_hist *h, struct llm_bucket b, uint64_t count);
/* llm_insert_raw(h, llm_bucket_from_double(v), count). */
uint64_t llm_insert(struct llm_hist *h, double v, uint64_t count);
/* llm_insert_raw(h, llm_bucket_from_int_scale(v, scale), count). */
uint64_t llm_insert_intscale(struct llm_hist *h, int64_t v, int scale, uint64_t count);
/* Subtracts up to count from bucket b (floor 0, bucket kept); returns amount removed. */
uint64_t llm_remove_raw(struct llm_hist *h, struct llm_bucket b, uint64_t count);
/* Number of stored pairs, zero-count ones included (upstream hist_bucket_count). */
int llm_used(const struct llm_hist *h);
/* Pair i in storage order into *b and *count: 1 if 0 <= i < used, else 0 (outputs untouched). */
int llm_get(const struct llm_hist *h, int i, struct llm_bucket *b, uint64_t *count);
/* Sum of all counts, NaN buckets included, saturating at UINT64_MAX; 0 for NULL. */
uint64_t llm_sample_count(const struct llm_hist *h);

/* --- merge / subtract --- */

/* Two-pass k-way merge of tgt and srcs[0..n-1] (NULL entries skipped) into a fresh array;
 * counts saturate. tgt must not appear in srcs. Returns the new used, -1 on ENOMEM (tgt kept). */
int llm_accumulate(struct llm_hist *tgt, const struct llm_hist *const *srcs, int n);
/* tgt -= each src bucket-wise (floor 0, zero buckets kept). 0 ok; -1 if anything underflowed
 * or a src bucket with count > 0 is missing from tgt (the rest is still applied). */
int llm_subtract(struct llm_hist *tgt, const struct llm_hist *const *srcs, int n);

/* --- analytics --- */

/* Sum(midpoint*count)/Sum(count) over non-NaN buckets; private NaN if empty or h is NULL. */
double llm_mean(const struct llm_hist *h);
/* Sum(midpoint*count) over non-NaN buckets; 0.0 if empty or NULL. */
double llm_sum(const struct llm_hist *h);
/* Population stddev from midpoints (squares as x*x); 0.0 if used==0; NaN if count 0 or NULL. */
double llm_stddev(const struct llm_hist *h);
/* Type-1 fair-resampling quantiles of q[0..nq-1] into out. 0 ok (all NaN if empty/NULL),
 * -2 if q is not non-decreasing, -3 if a q is outside [0,1] (out then holds scratch values). */
int llm_quantile(const struct llm_hist *h, const double *q, int nq, double *out);
/* As llm_quantile, but Type 7: qn = floor((total-1)*q + 1), k = qn - lower. */
int llm_quantile7(const struct llm_hist *h, const double *q, int nq, double *out);
/* Counts in non-NaN buckets <= bucket_of(thr), walking in storage order (stops at first >). */
uint64_t llm_count_below(const struct llm_hist *h, double thr);
/* Counts in non-NaN buckets < bucket_of(thr), walking in storage order (stops at first >=). */
uint64_t llm_count_below_exclusive(const struct llm_hist *h, double thr);
/* sample_count (NaN counts included!) minus counts in buckets < bucket_of(thr); wraps. */
uint64_t llm_count_above(const struct llm_hist *h, double thr);
/* sample_count (NaN counts included!) minus counts in buckets <= bucket_of(thr); wraps. */
uint64_t llm_count_above_exclusive(const struct llm_hist *h, double thr);

/* --- serialization (spec 2.1, 2.2) --- */

/* Bytes llm_serialize will write: 2 + record sizes of nonzero buckets (buggy widths). */
ssize_t llm_serialize_size(const struct llm_hist *h);
/* Writes the binary form into buf (borrowed, len bytes). Returns bytes written, -1 if short.
 * h may be NULL (serializes as empty). */
ssize_t llm_serialize(const struct llm_hist *h, void *buf, ssize_t len);
/* Replaces h's contents from the binary form, unsorted and with duplicates as found. Returns
 * bytes consumed; -1 (h emptied) if len < 2, a tag > 7 or a record is short, or on ENOMEM. */
ssize_t llm_deserialize(struct llm_hist *h, const void *buf, ssize_t len);
/* Writes standard padded base64 of the binary form, no NUL. Returns its length, 0 if len is
 * smaller than that length (as upstream), -1 on ENOMEM. */
ssize_t llm_serialize_b64(const struct llm_hist *h, char *buf, ssize_t len);
/* Lenient upstream base64 decode of s[0..len-1] (never reads s[len]) then llm_deserialize.
 * Returns bytes decoded; -1 if fewer than 2 bytes decode (h untouched) or if the decoder did
 * not consume them all (h keeps what was decoded, or is emptied if the decode failed). */
ssize_t llm_deserialize_b64(struct llm_hist *h, const char *s, ssize_t len);

#endif /* SONDE_TESTS_LLMODEL_H */
