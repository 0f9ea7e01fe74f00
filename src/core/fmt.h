/*
 * Number formatting shared by every JSON and text writer.
 *
 * sn_fmt_double() writes the shortest of %.15g, %.16g, %.17g that reads back (strtod) as the
 * identical double, so printed figures are exact and still short: 0.1 prints as "0.1", and
 * 1.0476190476190477 keeps all 17 digits because it needs them.
 */
#ifndef SN_CORE_FMT_H
#define SN_CORE_FMT_H

#include <stddef.h>

#define SN_FMT_DOUBLE_LEN 32

/* Writes d into buf (SN_FMT_DOUBLE_LEN bytes) as above; "nan", "inf", "-inf" when not finite.
 * Returns the length. */
int sn_fmt_double(char buf[SN_FMT_DOUBLE_LEN], double d);

/* Like sn_fmt_double(), but "null" when d is not finite: for JSON. */
int sn_fmt_json_double(char buf[SN_FMT_DOUBLE_LEN], double d);

/* Human form of d with n significant digits and no exponent for 1e-4 <= |d| < 1e15
 * (e.g. 1234.5, 0.00123); for tables and bar charts. Returns the length. */
int sn_fmt_human(char *buf, size_t len, double d, int digits);

#endif
