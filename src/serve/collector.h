/*
 * The local agent inside `sonde serve`: an agent (agent/agent.h) whose sink adds each frame
 * to its instrumentation's dataset and wakes long polls once a second. The API's creates and
 * deletes become the agent's enables and disables; it compiles each definition for this
 * host. Without BPF the agent still runs sampled metrics (cpu.usage, ...).
 */
#ifndef SN_SERVE_COLLECTOR_H
#define SN_SERVE_COLLECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_server;
struct sn_collector;

/* Starts the agent: key_cap (--key-cap; 0: the default) is the kernel's per-second key cap,
 * and the kernel counts no event of this process unless trace_self (--trace-self). Starts
 * even when BPF cannot load (sampled metrics only), logging why. Returns 0, or a negative
 * errno for a real failure (-ENOMEM, -EAGAIN). */
int sn_collector_start(struct sn_server *s, uint32_t key_cap, bool trace_self,
                       struct sn_collector **out);
/* Runs def (host-free: {module, stat, predicate, decomposition}, the tenant's scope already
 * in the predicate; borrowed) under key. Returns 0; -EINVAL with why when this host cannot
 * run it (a bad definition, a container or USDT probe it lacks: the create is refused);
 * -ENOTSUP with why when this host has no BPF (the create stands, not running locally);
 * -ENOMEM. */
int sn_collector_enable(struct sn_collector *c, const char *key, const json_t *def, char *why,
                        size_t whylen);
/* Disables the instrumentation with this key; nothing when it is not enabled. */
void sn_collector_disable(struct sn_collector *c, const char *key);
/* Seconds collected, the time the last collection took (ns), and instrumentations running,
 * for /metrics. */
void sn_collector_stats(const struct sn_collector *c, uint64_t *seconds, uint64_t *last_ns,
                        uint64_t *enabled);
/* Stops the agent and unloads everything; NULL is fine. */
void sn_collector_stop(struct sn_collector *c);

#endif
