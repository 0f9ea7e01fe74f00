/*
 * The local agent inside `sonde serve`: an agent (agent/agent.h) on the bus like any other
 * source (serve/flow.h). Its sink publishes each frame to the aggregator; it answers the
 * bus's control messages addressed to this host (enable, disable) by running or stopping the
 * instrumentation, compiling each definition for this host. Without BPF the agent still runs
 * sampled metrics (cpu.usage, ...) and answers "unsupported" for traced ones.
 */
#ifndef SN_SERVE_COLLECTOR_H
#define SN_SERVE_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

struct sn_server;
struct sn_collector;

/* Starts the agent and subscribes it to the control messages of host s->host (s->bus must be
 * open): key_cap (--key-cap; 0: the default) is the kernel's per-second key cap, and the
 * kernel counts no event of this process unless trace_self (--trace-self). Starts even when
 * BPF cannot load (sampled metrics only), logging why. Returns 0, or a negative errno. */
int sn_collector_start(struct sn_server *s, uint32_t key_cap, bool trace_self,
                       struct sn_collector **out);
/* Seconds collected, and the time the last collection took (ns), for /metrics. */
void sn_collector_stats(const struct sn_collector *c, uint64_t *seconds, uint64_t *last_ns,
                        uint64_t *enabled);
/* Leaves the bus and stops the agent (no frame after it returns); NULL is fine. */
void sn_collector_stop(struct sn_collector *c);

#endif
