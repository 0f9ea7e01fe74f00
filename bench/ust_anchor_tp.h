/*
 * The LTTng-UST tracepoint of bench-recorder's userspace anchor (ust_anchor.c): one event,
 * snb_anchor:tick, with two 64-bit integers, as ref/overhead.md section 5 measured LTTng-UST.
 * This header is read several times by lttng-ust's macros (hence no plain include guard).
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER snb_anchor

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./ust_anchor_tp.h"

#if !defined(SNB_UST_ANCHOR_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define SNB_UST_ANCHOR_TP_H

#include <stdint.h>
#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(snb_anchor, tick, LTTNG_UST_TP_ARGS(uint64_t, i, uint64_t, x),
                           LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(uint64_t, i, i)
                                                   lttng_ust_field_integer(uint64_t, x, x)))

#endif

#include <lttng/tracepoint-event.h>
