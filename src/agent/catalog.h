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
#include "bpf/engine.h"

enum sn_render {
    SN_RENDER_STR,     /* the key's bytes are text (comm) */
    SN_RENDER_INT,     /* a decimal integer (pid) */
    SN_RENDER_SYSCALL, /* a system call name */
    SN_RENDER_ERRNO,   /* an errno name ("0" for success) */
    SN_RENDER_CGROUP,  /* a cgroup v2 path */
    SN_RENDER_HOST,    /* the host's name: a constant, not read in the kernel */
    SN_RENDER_OPTYPE,  /* a block operation: "read", "write", "flush", ... */
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
};

/* The metric called module.stat, or NULL. */
const struct sn_metric_def *sn_catalog_find(const char *module, const char *stat);
/* The metric's field called name, or NULL. */
const struct sn_catalog_field *sn_catalog_field(const struct sn_metric_def *m, const char *name);
/* The name of block operation op ("read", "write", ...), or NULL. */
const char *sn_block_op_name(int64_t op);

/* All metrics: *n receives the count. */
const struct sn_metric_def *sn_catalog_all(size_t *n);

#endif
