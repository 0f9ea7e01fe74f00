/*
 * The condition of a flight-recorder trigger (docs/recorder.md, "Triggers"), as text:
 *
 *   pP > VALUE [for Ns]             the P-th percentile (0 < P < 100, e.g. p99, p99.9) of a
 *                                   second's values over VALUE
 *   count > R[/s] [for Ns]          more than R operations per second
 *   count in [LO, HI) > C[/s] [for Ns]
 *                                   more than C operations per second whose value falls in the
 *                                   heatmap band [LO, HI)
 *
 * VALUE, LO and HI are in the instrumentation's unit (nanoseconds for latencies), or carry a
 * time suffix: ns, us, ms, s (10ms = 10000000). "for Ns": the condition holds in N consecutive
 * seconds (1 to 3600; default 1). Spaces between tokens are free. Pure: the API checks
 * requests with it, the fuzzer (fuzz/fuzz_trigger_cond.c) feeds it anything.
 */
#ifndef SN_SERVE_TRIGGER_COND_H
#define SN_SERVE_TRIGGER_COND_H

#include <stddef.h>
#include <stdint.h>

#define SN_TCOND_MAX_FOR 3600 /* seconds */
#define SN_TCOND_TEXT    128  /* the longest condition text taken */

enum sn_tcond_kind {
    SN_TCOND_PCT,  /* a percentile over a threshold */
    SN_TCOND_RATE, /* a count per second over a rate */
    SN_TCOND_BAND, /* the count per second in [lo, hi) over a rate */
};

struct sn_tcond {
    enum sn_tcond_kind kind;
    double pct;       /* PCT: in (0, 100) */
    double lo, hi;    /* BAND: lo < hi, in the unit */
    double threshold; /* PCT: in the unit; RATE, BAND: per second (>= 0) */
    uint32_t for_s;   /* 1..SN_TCOND_MAX_FOR */
};

/* Parses text into *c. Returns 0, or -EINVAL with what is wrong in why. */
int sn_tcond_parse(const char *text, struct sn_tcond *c, char *why, size_t len);

#endif
