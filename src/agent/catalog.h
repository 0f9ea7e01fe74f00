/*
 * The metric catalog: Linux's answers to Cloud Analytics' metrics (module, stat, fields with
 * their CA types and labels), and how each field reaches the kernel: its slot in the probe's
 * event record, how a predicate constant becomes what the kernel compares, and how a
 * decomposition key comes back as text.
 */
#ifndef SN_AGENT_CATALOG_H
#define SN_AGENT_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/predicate.h"
#include "bpf/slots.h"

enum sn_render {
    SN_RENDER_STR,     /* the key's bytes are text (comm) */
    SN_RENDER_INT,     /* a decimal integer (pid) */
    SN_RENDER_SYSCALL, /* a system call name */
    SN_RENDER_ERRNO,   /* an errno name ("0" for success) */
    SN_RENDER_CGROUP,  /* a cgroup v2 path */
    SN_RENDER_HOST,    /* the host's name: a constant, not read in the kernel */
    SN_RENDER_OPTYPE,  /* a block operation: "read", "write", "flush", ... */
    SN_RENDER_FSOP,    /* a file-system operation: "read", "open", "getattr", ... */
    SN_RENDER_LEAVE,   /* why a thread left the CPU: "preempted", "sleeping", ... */
    SN_RENDER_CPUMODE, /* "user", "kernel" */
    SN_RENDER_DIR,     /* "in", "out" */
    SN_RENDER_ADDR,    /* an IP address (16 bytes) */
    SN_RENDER_PSARGS,  /* a process's arguments, by the hash the kernel keys them by */
};

struct sn_catalog_field {
    struct sn_field_def def; /* name, arity, event slot, predicate constant parser */
    const char *label;       /* CA label, e.g. "application name" */
    const char *type;        /* CA type: "string", "time", "size", ... */
    enum sn_render render;
};

struct sn_metric_def {
    const char *module, *module_label;
    const char *stat, *label;
    const char *unit; /* CA unit for counts, e.g. "syscalls" */
    bool point;       /* value-scope "point" (a snapshot) rather than "interval" */
    uint32_t metric;  /* enum sn_metric_id */
    const struct sn_catalog_field *fields;
    size_t nfields;
    /* How it is collected: the BPF programs of src/bpf/probes.bpf.c that answer it, by name
     * (the engine attaches them while some slot needs the metric); none for a sampled metric
     * (agent/sampled.h). A tracepoint or kprobe program needs nothing else: adding such a
     * metric is its id (bpf/slots.h), its program and this entry. */
    const char *progs[4];
};

/* The metric with id (enum sn_metric_id), or NULL. */
const struct sn_metric_def *sn_catalog_metric(uint32_t id);
/* The metric called module.stat, or NULL. */
const struct sn_metric_def *sn_catalog_find(const char *module, const char *stat);
/* The metric's field called name, or NULL. */
const struct sn_catalog_field *sn_catalog_field(const struct sn_metric_def *m, const char *name);
/* The hash psargs are keyed and compared by (FNV-1a 64 of the text without trailing spaces,
 * at most SN_PSARGS_LEN - 1 bytes), the same as the kernel's. */
uint64_t sn_psargs_hash(const char *text);
/* The hash trace.spans' texts are compared by in predicates (FNV-1a 64 of the whole text). */
uint64_t sn_text_hash(const char *text);

/* trace.spans' fields in the events its predicates read (serve/span_metrics.c fills them;
 * indexes into struct sn_event, never seen by the kernel) */
enum {
    SN_SPAN_F_SERVICE = SN_SC_EXECNAME,
    SN_SPAN_F_NAME = SN_SC_PEXECNAME,
    SN_SPAN_F_KIND = SN_SC_DEVICE,
    SN_SPAN_F_STATUS = SN_SC_TEXT,
    SN_SPAN_F_HOST = SN_SC_PSARGS,
    SN_SPAN_F_LATENCY = SN_SC_LATENCY,
};

/* The name of enumeration value v of a field rendered as r (SN_RENDER_FSOP, _LEAVE, _CPUMODE,
 * _DIR, _OPTYPE), or NULL. */
const char *sn_enum_name(enum sn_render r, int64_t v);

/* All metrics: *n receives the count. */
const struct sn_metric_def *sn_catalog_all(size_t *n);

#endif
