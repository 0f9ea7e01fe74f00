/*
 * The clocks every part of Sonde reads: Unix time (CLOCK_REALTIME), for what is stamped on
 * data and shown to users, and the monotonic clock, for durations and deadlines that must not
 * jump when the wall clock is set. One place, so that no file keeps a private copy.
 */
#ifndef SN_CORE_CLOCK_H
#define SN_CORE_CLOCK_H

#include <stdint.h>

/* Unix time in seconds and in milliseconds. */
int64_t sn_now(void);
int64_t sn_now_ms(void);
/* CLOCK_MONOTONIC in nanoseconds and in milliseconds (an arbitrary origin: differences only). */
int64_t sn_mono_ns(void);
int64_t sn_mono_ms(void);

#endif
