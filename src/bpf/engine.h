/*
 * The in-kernel instrumentation engine's shared layout (docs/agent.md): slots that describe
 * enabled instrumentations, the per-metric slot lists the probes walk, and the aggregation
 * key. Shared by the BPF programs and src/agent; fixed-width types only.
 *
 * A probe builds an event record for its metric, then for each slot listed for the metric:
 * runs the slot's predicate (bpf/pred.h) and adds one to agg[{slot, gen, ord, key}], where
 * ord is the bucket ordinal of the slot's numeric field (0 when none) and key the 16 bytes of
 * its discrete field (zeros when none). User space flips gen each second and drains the
 * other generation.
 */
#ifndef SN_BPF_ENGINE_H
#define SN_BPF_ENGINE_H

#include "bpf/pred.h"

#define SN_MAX_SLOTS        64
#define SN_SLOTS_PER_METRIC 16
#define SN_KEYLEN           16
#define SN_NO_FIELD         0xff
#define SN_AGG_ENTRIES      65536

/* Numeric decompositions without a key, in slots below SN_ARRAY_SLOTS, count into a per-CPU
 * array instead of the hash: hist_arr[(slot * 2 + gen) * SN_U64_ORDS + i], where i is 0 for
 * the zero bucket and ord - SN_U64_ORD_FIRST + 1 for the buckets of integers 1..2^64-1
 * ({10,0} .. {18,19}: 20 decades of 90). An array lookup costs a few ns; the hash's tens. */
#define SN_ARRAY_SLOTS   16
#define SN_U64_ORDS      1801
#define SN_U64_ORD_FIRST (23042 + 128 * 90) /* ordinal of {10, 0} */

/* Event record: numeric fields by id; the string fields are ids below SN_EV_NSTR and keep
 * their text in str[] (their num[] is unused). */
#define SN_EV_NNUM 16
#define SN_EV_NSTR 3

enum sn_metric_id {
    SN_METRIC_SYSCALLS = 0, /* syscall.syscalls */
    SN_METRIC_PROC_EXECS,   /* unix.proc_execs */
    SN_METRIC_PROC_FORKS,   /* unix.proc_forks */
    SN_METRIC_PROC_EXITS,   /* unix.proc_exits */
    SN_METRIC_DISK_OPS,     /* disk.physio_ops */
    SN_METRIC_RUNQUEUE,     /* cpu.runqueue */
    SN_NMETRICS,
};

/* Event fields, numbered the same for every metric (each metric fills the ones it has). */
enum sn_syscall_field {
    SN_SC_EXECNAME = 0, /* string: comm */
    SN_SC_PEXECNAME,    /* string: parent's comm */
    SN_SC_DISK,         /* string: disk name (disk.physio_ops) */
    SN_SC_PID,
    SN_SC_PPID,
    SN_SC_SYSCALL,   /* number; names are resolved in user space */
    SN_SC_ERRNO,     /* 0 on success */
    SN_SC_LATENCY,   /* ns */
    SN_SC_CONTAINER, /* cgroup v2 id */
    SN_SC_WALLTIME,  /* ns a process lived (proc_exits) */
    SN_SC_OPTYPE,    /* the block request's operation, REQ_OP_* (disk.physio_ops) */
    SN_SC_SIZE,      /* bytes (disk.physio_ops) */
    SN_SC_OFFSET,    /* bytes from the start of the device (disk.physio_ops) */
    SN_SC_NFIELDS,
};

struct sn_slot {
    __u32 active;   /* 0: free */
    __u32 metric;   /* enum sn_metric_id */
    __u8 key_field; /* discrete decomposition field, or SN_NO_FIELD */
    __u8 num_field; /* numeric decomposition field, or SN_NO_FIELD */
    __u16 pad;
    __u32 key_cap; /* distinct keys per generation before counts go to "other" */
    struct sn_pred pred;
};

struct sn_metric_slots {
    __u32 n;     /* slots in use below */
    __u32 needs; /* bit per field any of them reads: fields nobody needs are not read */
    __u8 slot[SN_SLOTS_PER_METRIC];
};

struct sn_agg_key {
    __u32 slot_gen; /* slot << 1 | generation */
    __u16 ord;      /* bucket ordinal of the numeric field, 0 when none */
    __u16 other;    /* 1: the key cap was reached; key is empty */
    char key[SN_KEYLEN];
};

#endif
