/*
 * The store's tiers: raw (each instrumentation's own granularity) and the rollups at 1 minute,
 * 1 hour and 1 day, each kept for its own time (`sonde serve --tiers raw:2d,1m:90d,1h:5y,1d:10y`,
 * the defaults). A tier's records cover one period each, starting at a multiple of it.
 */
#ifndef SN_STORE_TIERS_H
#define SN_STORE_TIERS_H

#include <stddef.h>
#include <stdint.h>

enum sn_tier { SN_TIER_RAW = 0, SN_TIER_1M, SN_TIER_1H, SN_TIER_1D, SN_NTIERS };

struct sn_tiers {
    int64_t keep[SN_NTIERS]; /* seconds each tier keeps; 0: the tier is off */
};

/* The period of tier t in seconds: 0 for raw (the instrumentation's granularity), 60, 3600,
 * 86400. */
int64_t sn_tier_period(enum sn_tier t);
/* "raw", "1m", "1h", "1d". */
const char *sn_tier_name(enum sn_tier t);
/* The defaults: raw 2 days, 1 min 90 days, 1 h 5 years, 1 day 10 years. */
void sn_tiers_default(struct sn_tiers *t);
/* Parses "raw:2d,1m:90d,1h:5y,1d:10y" (any subset, any order; a tier not named keeps its
 * default; "1m:0" turns the 1-minute tier off; durations as core/timespec.h) into *t. Each
 * tier must keep at least its period and coarser tiers at least as long as finer ones.
 * Returns 0, or -EINVAL with why. */
int sn_tiers_parse(const char *s, struct sn_tiers *t, char *why, size_t whylen);
/* The canonical form of t, e.g. "raw:2d,1m:90d,1h:5y,1d:10y" (buf of at least 128 bytes). */
void sn_tiers_fmt(const struct sn_tiers *t, char *buf, size_t len);

#endif
