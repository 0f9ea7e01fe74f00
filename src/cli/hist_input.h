/*
 * The line format `sonde hist` reads: one sample per line, "VALUE" or "VALUE COUNT".
 *
 *   VALUE  a number as strtod() reads it: 12, -3.5, 1e-9, 0x1p-3, nan, inf
 *   COUNT  optional decimal count of samples with that value (default 1)
 *   blank lines and lines starting with '#' are skipped; surrounding blanks are ignored.
 *
 * A parser of untrusted text, so it never reads past len and is fuzzed (fuzz/fuzz_hist_input.c).
 */
#ifndef SN_CLI_HIST_INPUT_H
#define SN_CLI_HIST_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_hist_sample {
    double value;   /* the value as a double */
    int64_t ivalue; /* the value as an integer, when is_int */
    bool is_int;    /* VALUE was a plain decimal integer that fits in int64 */
    uint64_t count; /* COUNT, or 1 */
};

/*
 * Parses line[0..len) (no NUL needed; a trailing "\n" or "\r\n" is fine).
 * Returns 1 with *s filled, 0 for a blank or comment line, or -EINVAL with *why set to a
 * static message for a malformed line.
 */
int sn_hist_parse_line(const char *line, size_t len, struct sn_hist_sample *s, const char **why);

/* The largest magnitude a log-linear bucket holds is just under 1e128: larger values, inf and
 * NaN all land in the NaN bucket, where they add nothing to a mean or a percentile. */
#define SN_HIST_VALUE_LIMIT 1e128

/* True when s->value is finite and its magnitude under SN_HIST_VALUE_LIMIT; `sonde hist`
 * skips (and counts) the other samples. */
bool sn_hist_sample_in_range(const struct sn_hist_sample *s);

#endif
