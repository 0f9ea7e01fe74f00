/*
 * The local agent inside `sonde serve`: a thread that owns the BPF engine (agent/engine.h),
 * enables and disables instrumentations when the API asks, and once a second drains the
 * kernel's aggregations into frames that go straight into the server's datasets, without a
 * bus or a copy through the wire format.
 *
 * The engine is single-threaded, so the API's requests become commands that the thread runs
 * between collections; the caller waits for each (enabling takes milliseconds).
 */
#ifndef SN_SERVE_COLLECTOR_H
#define SN_SERVE_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/inst.h"

struct sn_server;
struct sn_collector;

/* Loads the BPF programs and starts the thread. The kernel counts no event of this process
 * unless trace_self (--trace-self). Returns 0, or a negative errno (-EPERM without privileges)
 * with the engine's reason logged. */
int sn_collector_start(struct sn_server *s, uint32_t key_cap, bool trace_self,
                       struct sn_collector **out);
/* Enables inst (copied; inst->id is the instrumentation's key). Returns 0, or a negative errno
 * with why (e.g. a USDT probe the binary lacks). */
int sn_collector_enable(struct sn_collector *c, const struct sn_inst *inst, char *why,
                        size_t whylen);
/* Disables the instrumentation with this key; nothing when it is not enabled. */
void sn_collector_disable(struct sn_collector *c, const char *key);
/* Seconds collected, and the time the last collection took (ns), for /metrics. */
void sn_collector_stats(const struct sn_collector *c, uint64_t *seconds, uint64_t *last_ns,
                        uint64_t *enabled);
/* Stops the thread and unloads everything; NULL is fine. */
void sn_collector_stop(struct sn_collector *c);

#endif
