/*
 * Sampled metrics: the ones Linux already counts, read from /proc and the cgroup v2 file
 * system once a second in user space instead of traced with BPF (no per-event cost at all).
 *
 *   cpu.usage       point, percent of one CPU: hostname, container, cpumode (user, kernel)
 *   memory.rss      point, bytes: hostname, container
 *   memory.pageins  pages (major faults): hostname, container
 *   nic.bytes       bytes: hostname, nic, direction (in, out)
 *   nic.packets     packets: hostname, nic, direction
 *
 * A reading is a set of rows, one per source and key (a cgroup and a cpumode, an interface
 * and a direction, ...), each with the metric's fields (bpf/slots.h field ids) and a value.
 * An instrumentation's predicate (sn_pred_eval) picks rows and its discrete decomposition
 * sums their values by key, exactly as the kernel does for traced metrics, so the frames
 * look the same. Interval metrics report the difference between the last two readings.
 *
 * The sampler is a source of the agent's (agent/agent.h) beside the BPF engine, and needs no
 * BPF: an agent that cannot load BPF still runs these.
 */
#ifndef SN_AGENT_SAMPLED_H
#define SN_AGENT_SAMPLED_H

#include <stdint.h>

#include "agent/engine.h"

struct sn_sampler; /* opaque */

/* Returns 0 or -ENOMEM. */
int sn_sampler_open(struct sn_sampler **out);
void sn_sampler_close(struct sn_sampler *s);

/* Takes a reading of the sources the metrics in mask need (bit per enum sn_metric_id), keeping
 * the previous one for differences. Returns 0 or a negative errno when a source the host must
 * have (/proc/stat, /proc/net/dev) cannot be read. */
int sn_sampler_read(struct sn_sampler *s, uint64_t mask);

/* Emits through fn the cells of one instrumentation (`slot`: the caller's number for it,
 * passed through in each cell; spec) for the last
 * reading: rows of spec->metric that satisfy spec->pred, summed by spec->key_field (keys
 * encoded as the kernel encodes them: numbers as a little-endian int64 in the first 8 bytes,
 * strings NUL padded; zeros when there is no decomposition), with .ord = 0. Returns the
 * number of cells. */
int sn_sampler_cells(struct sn_sampler *s, int slot, const struct sn_slot_spec *spec, sn_cell_fn fn,
                     void *arg);

#endif
