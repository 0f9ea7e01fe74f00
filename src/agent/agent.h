/*
 * The agent: one object that runs instrumentations on this host and reports, once a second,
 * one frame per instrumentation to a sink. It owns its sources: the BPF engine (traced
 * metrics, agent/engine.h) and the /proc and cgroup sampler (sampled metrics,
 * agent/sampled.h), which works with no BPF at all; the probes it compiled for this host
 * (agent/probe.h); a command queue; and the 1 Hz clock. `sonde agent` is an agent with a
 * stdout sink (cli/cmd_agent.c); `sonde serve` runs one into its datasets
 * (serve/collector.c).
 *
 * The agent's thread sleeps to each second's boundary (CLOCK_REALTIME), runs the commands
 * queued meanwhile (enable, disable, sync), collects every source, emits the second's frames
 * and then the second; after a stall it skips to the next boundary rather than catch up.
 * Callers' commands wait for the thread (milliseconds). Keys that are not UTF-8 (a process
 * or file name is any bytes) reach the sink escaped, each bad byte as \xNN, so that every
 * sink gets frames whose text is valid.
 */
#ifndef SN_AGENT_AGENT_H
#define SN_AGENT_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/engine.h"
#include "wire/frame.h"

struct sn_agent; /* opaque */

/* Where frames go; called on the agent's thread, never concurrently. */
struct sn_agent_sink {
    /* One per running instrumentation per second (borrowed: copy what must outlive it). */
    void (*frame)(void *arg, const struct sn_wire_frame *f);
    /* After each second's frames; t is that second (Unix time). May be NULL. */
    void (*second)(void *arg, int64_t t);
    void *arg;
};

struct sn_agent_opts {
    const char *host;     /* this host's name in frames and predicates (NULL: gethostname()) */
    uint32_t key_cap;     /* distinct keys per instrumentation per second before "other" (0:
                             SN_DEFAULT_KEY_CAP); reaches the kernel */
    bool trace_self;      /* count this process's own events too */
    bool no_bpf;          /* do not load BPF: sampled metrics only */
    uint32_t agg_entries; /* sn_engine_opts.agg_entries (0: the default) */
    enum sn_collect_mode collect;
};

/* One instrumentation of a set (sn_agent_sync()). */
struct sn_agent_def {
    const char *key;   /* its id in frames (at most 95 bytes) */
    const json_t *def; /* host-free: {module, stat, predicate, decomposition} (borrowed) */
};

/*
 * Opens the sources and starts the thread. When BPF cannot load (no privileges, no BTF) or
 * opts->no_bpf, the agent still runs sampled metrics; the reason is logged and traced
 * metrics are refused (-ENOTSUP). Returns 0, or -ENOMEM / -EAGAIN.
 */
int sn_agent_open(const struct sn_agent_opts *opts, const struct sn_agent_sink *sink,
                  struct sn_agent **out);

/*
 * Compiles def for this host (agent/probe.h) and runs it under key, its first frame with the
 * next second. Returns 0; -EINVAL with CA's message in why (a bad definition, a container or
 * a USDT probe this host lacks); -ENOTSUP when the metric is traced and this host cannot run
 * BPF programs (why: "this host cannot run BPF programs: <reason>"); -EEXIST when key runs;
 * -ENOSPC when every slot is in use; another negative errno from the kernel.
 */
int sn_agent_enable(struct sn_agent *a, const char *key, const json_t *def, char *why,
                    size_t whylen);
/* Stops the instrumentation with this key; nothing when it does not run. */
void sn_agent_disable(struct sn_agent *a, const char *key);
/*
 * Makes the running set defs[0..n): instrumentations that did not change keep running
 * untouched (their slots and the counts of the current second), removed ones stop, new and
 * changed ones start. Frames follow the order of defs. Returns 0; -EINVAL with why
 * ("instrumentation <i>: <CA message>", i from 1) when a definition is bad, the running set
 * then unchanged; or the first error of starting one (why "instrumentation <key>: ...", as
 * sn_agent_enable()), the others of the set running.
 */
int sn_agent_sync(struct sn_agent *a, const struct sn_agent_def *defs, size_t n, char *why,
                  size_t whylen);

struct sn_agent_stats {
    uint64_t seconds; /* seconds collected */
    uint64_t last_ns; /* what the last collection took */
    uint64_t enabled; /* instrumentations running */
    uint64_t frames;  /* frames emitted */
    bool bpf;         /* the engine loaded: traced metrics can run */
};
/* Safe from any thread. */
void sn_agent_stats(const struct sn_agent *a, struct sn_agent_stats *out);
/* The reason traced metrics cannot run here ("" when they can). */
const char *sn_agent_no_bpf_reason(const struct sn_agent *a);
/* This host's name, as frames carry it. */
const char *sn_agent_host(const struct sn_agent *a);

/* Stops the thread (no frame after it returns) and unloads everything; NULL is fine. */
void sn_agent_close(struct sn_agent *a);

#endif
