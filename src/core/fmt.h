/*
 * Number formatting shared by every JSON and text writer.
 *
 * sn_fmt_double() writes the shortest of %.15g, %.16g, %.17g that reads back (strtod) as the
 * identical double, so printed figures are exact and still short: 0.1 prints as "0.1", and
 * 1.0476190476190477 keeps all 17 digits because it needs them.
 */
#ifndef SN_CORE_FMT_H
#define SN_CORE_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SN_FMT_DOUBLE_LEN 32

/* Writes d into buf (SN_FMT_DOUBLE_LEN bytes) as above; "nan", "inf", "-inf" when not finite.
 * Returns the length. */
int sn_fmt_double(char buf[SN_FMT_DOUBLE_LEN], double d);

/* Like sn_fmt_double(), but "null" when d is not finite: for JSON. */
int sn_fmt_json_double(char buf[SN_FMT_DOUBLE_LEN], double d);

/* Human form of d with n significant digits and no exponent for 1e-4 <= |d| < 1e15
 * (e.g. 1234.5, 0.00123); for tables and bar charts. Returns the length. */
int sn_fmt_human(char *buf, size_t len, double d, int digits);

/* ---- values in their unit ----------------------------------------------------------------
 * The one formatter of values for people (`sonde raw`, `percentile`, `details`, `heatmap`):
 * times in ns, µs, ms, s and sizes in B, KiB, MiB, GiB, TiB with 3 significant digits
 * ("355 ns", "3.05 µs", "1.20 ms", "12.0 s", "4.00 KiB"), the rest as sn_fmt_human() with 6.
 */
enum sn_unit_kind { SN_FMT_UNIT_NONE, SN_FMT_UNIT_TIME, SN_FMT_UNIT_SIZE };

struct sn_unit {
    enum sn_unit_kind kind;
    double scale; /* ns (time) or bytes (size) per unit of the value */
    bool ascii;   /* "us" for µs */
};

/* The unit of a CA type (`GET /ca`'s "types": {"unit", "power"}): "seconds" with power P is
 * time in units of 10^P s, "bytes" a size; anything else (NULL too) no unit. */
struct sn_unit sn_unit_of_ca(const char *unit, int power);

/* Writes v in unit u (NULL: none) into buf; "-" for NaN. Returns the length. */
int sn_fmt_unit(char *buf, size_t len, double v, const struct sn_unit *u);

#define SN_FMT_TIME_LEN 32

/* Unix time t as a local date and time, "2026-11-22 12:05:45". Returns the length. */
int sn_fmt_time(char buf[SN_FMT_TIME_LEN], int64_t t);

#endif
