/*
 * Times and durations as people type them, for the command line and the server's options:
 * "90s", "5m", "1h", "2d", "1w", "5y" (a year is 365 days), "1h30m", or plain seconds; and a
 * point in time as Unix seconds, "now", a time relative to now ("-7d", "-1h30m") or an ISO 8601
 * UTC date ("2026-12-01", "2026-12-01T03:00", "2026-12-01T03:00:00Z", a space for the T).
 * One parser for every caller (`--tiers`, `--start`, `--duration`, `sonde export`).
 */
#ifndef SN_CORE_TIMESPEC_H
#define SN_CORE_TIMESPEC_H

#include <stdint.h>

#define SN_YEAR_SECONDS (365 * 86400)

/* A duration into *secs (> 0). Returns 0, or -EINVAL (empty, no
 * unit after a number but the last, an unknown unit, overflow past 100 years). */
int sn_duration_parse(const char *s, int64_t *secs);
/* A point in time into *t, relative forms counted from now. Returns 0 or -EINVAL. */
int sn_time_parse(const char *s, int64_t now, int64_t *t);
/* d seconds in the largest units that divide it exactly ("2d", "90d", "1h30m", "45s"): the
 * inverse of sn_duration_parse() for what it prints. buf of at least 32 bytes. */
void sn_duration_fmt(char *buf, int64_t d);

#endif
