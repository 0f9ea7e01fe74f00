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
 *
 * By default the cells are a table (probes.bpf.c: cellidx, cellkeys, cellcnt): the kernel
 * numbers a generation's cells as they appear and counts them in per-CPU rows of an array
 * mapped into user space, which drains a generation by reading memory and bumping its epoch.
 * Otherwise each generation has a per-CPU hash of its own (agg0/agg1), drained whole with
 * batched lookup-and-delete. Key sets are per generation too (keyset0/keyset1), and flags in
 * shared memory (.bss: agg_dirty, arr_dirty, drops_dirty, nkeys, ncells) tell user space which
 * maps have anything, so that an idle instrumentation costs no system call at all.
 *
 * The key cap bounds a slot's distinct discrete keys per generation, not its cells: a key
 * spread over many buckets of the numeric field is one key. The keys admitted so far are a
 * set (keyset: {slot, gen, key} -> 1, counted per slot and generation in nkeys), consulted
 * only when an event needs a new cell; an event whose key is not in the set and finds the set
 * at the cap counts under "other" (its bucket kept). User space empties the set and the
 * counters of a generation when it drains it.
 */
#ifndef SN_BPF_SLOTS_H
#define SN_BPF_SLOTS_H

#include "bpf/pred.h"

#define SN_MAX_SLOTS        64
#define SN_SLOTS_PER_METRIC 16
#define SN_KEYLEN           16
#define SN_NO_FIELD         0xff
#define SN_AGG_ENTRIES      65536 /* cells of a generation (agg0, agg1); also its keyset's bound */
#define SN_PSARGS_LEN       128   /* bytes of a process's arguments kept (a power of 2) */
#define SN_SCOPE_ENTRIES    65536 /* cgroups the cgroup_scope map can mark (bpf/pred.h) */
#define SN_SCOPE_BITS       64    /* distinct cgroup prefixes in enabled slots */

/* Numeric decompositions without a key, in slots below SN_ARRAY_SLOTS, count into a per-CPU
 * array instead of the hash: hist_arr[(slot * 2 + gen) * SN_U64_ORDS + i], where i is 0 for
 * the zero bucket and ord - SN_U64_ORD_FIRST + 1 for the buckets of integers 1..2^64-1
 * ({10,0} .. {18,19}: 20 decades of 90). An array lookup costs a few ns; the hash's tens. */
#define SN_ARRAY_SLOTS   16
#define SN_U64_ORDS      1801
#define SN_U64_ORD_FIRST (23042 + 128 * 90) /* ordinal of {10, 0} */

/* Event record: numeric fields by id; the string fields are ids below SN_EV_NSTR and keep
 * their text in str[] (their num[] is unused). Strings are NUL padded to SN_KEYLEN bytes:
 * predicates compare all 16 bytes at once. */
#define SN_EV_NNUM 24
#define SN_EV_NSTR 4

enum sn_metric_id {
    SN_METRIC_SYSCALLS = 0,   /* syscall.syscalls */
    SN_METRIC_PROC_EXECS,     /* unix.proc_execs */
    SN_METRIC_PROC_FORKS,     /* unix.proc_forks */
    SN_METRIC_PROC_EXITS,     /* unix.proc_exits */
    SN_METRIC_DISK_OPS,       /* disk.physio_ops */
    SN_METRIC_RUNQUEUE,       /* cpu.runqueue */
    SN_METRIC_FS_OPS,         /* fs.logical_ops */
    SN_METRIC_TCP_ACCEPTS,    /* tcp.accepts */
    SN_METRIC_TCP_CONNECTS,   /* tcp.connects */
    SN_METRIC_TCP_RETRANS,    /* tcp.retransmits */
    SN_METRIC_THREAD_EXECS,   /* cpu.thread_executions */
    SN_METRIC_THREAD_SAMPLES, /* cpu.thread_samples */
    SN_METRIC_PG_QUERIES,     /* postgres.queries */
    SN_METRIC_USDT,           /* usdt.probes */
    /* Sampled from /proc and cgroupfs once a second in user space (agent/sampled.h), not
     * by BPF; their slots never reach the kernel. */
    SN_METRIC_CPU_USAGE,   /* cpu.usage */
    SN_METRIC_MEM_RSS,     /* memory.rss */
    SN_METRIC_MEM_PAGEINS, /* memory.pageins */
    SN_METRIC_NIC_BYTES,   /* nic.bytes */
    SN_METRIC_NIC_PACKETS, /* nic.packets */
    /* Spans received over OTLP and Zipkin, aggregated where they arrive (serve/span_metrics.h):
     * no agent runs it. */
    SN_METRIC_SPANS, /* trace.spans */
    SN_NMETRICS,
};
#define SN_METRIC_SAMPLED_FIRST SN_METRIC_CPU_USAGE

/* Event fields, numbered the same for every metric (each metric fills the ones it has; a
 * catalog field of another name may share an id when no metric has both). */
enum sn_field_id {
    SN_SC_EXECNAME = 0, /* string: comm */
    SN_SC_PEXECNAME,    /* string: parent's comm */
    SN_SC_DEVICE,       /* string: disk (disk.physio_ops) or interface (nic.*) name */
    SN_SC_TEXT,         /* string: fstype, querysubstr, or raddr (16 bytes, IPv6 or mapped
                           IPv4) */
    SN_SC_PID,
    SN_SC_PPID,
    SN_SC_SYSCALL,   /* number; names are resolved in user space */
    SN_SC_ERRNO,     /* 0 on success */
    SN_SC_LATENCY,   /* ns; also runtime, waittime */
    SN_SC_CONTAINER, /* cgroup v2 id */
    SN_SC_WALLTIME,  /* ns a process lived (proc_exits) */
    SN_SC_OPTYPE,    /* an enumeration: block REQ_OP_*, fs operation, leavereason,
                        cpumode, direction (by metric) */
    SN_SC_SIZE,      /* bytes */
    SN_SC_OFFSET,    /* bytes from the start of the device or file */
    SN_SC_SUBSECOND, /* ms within the wall-clock second, 0..999 */
    SN_SC_RPORT,     /* remote TCP port */
    SN_SC_LPORT,     /* local TCP port */
    SN_SC_CPUTIME,   /* ns on CPU */
    SN_SC_PSARGS,    /* hash of the process's arguments (text in the psargs map) */
    SN_SC_PPSARGS,   /* the same for its parent */
    SN_SC_ARG0,      /* a USDT probe's first argument */
    SN_SC_SCOPE,     /* bits: the cgroup prefixes the container is under (cgroup_scope map;
                        read when a slot has an UNDER leaf, bpf/pred.h) */
    SN_SC_NFIELDS,
};

/* cpumode and direction values (SN_SC_OPTYPE of cpu.usage and nic.*) */
enum { SN_CPUMODE_USER = 0, SN_CPUMODE_KERNEL = 1 };
enum { SN_DIR_IN = 0, SN_DIR_OUT = 1 };

/* fs.logical_ops: the file-system operation each system call is (SN_SC_OPTYPE), and where
 * its file comes from. User space fills fs_sys[syscall number] from names at load. */
enum sn_fs_op {
    SN_FS_NONE = 0,
    SN_FS_READ,
    SN_FS_WRITE,
    SN_FS_OPEN,
    SN_FS_CLOSE,
    SN_FS_GETATTR, /* stat family */
    SN_FS_FSYNC,
    SN_FS_SEEK,
    SN_FS_READDIR,
    SN_FS_IOCTL,
    SN_FS_NOPS,
};
enum sn_fs_how {
    SN_FSH_FD = 0, /* the file is the fd in argument 0 */
    SN_FSH_RETFD,  /* opens: the file is the fd returned */
    SN_FSH_STAT,   /* by path: a struct stat filled at argument argi gives the device */
    SN_FSH_STATX,  /* by path: a struct statx at argument argi */
};
#define SN_FS_SYSCALLS    512
/* fstype of an operation with no file to ask (an open or stat of a path that failed, a bad
 * descriptor) or on a device missing from the mount table */
#define SN_FSTYPE_UNKNOWN "(unknown)"
#define SN_FS_NOARG       0xff
struct sn_fs_sys {
    __u8 op;     /* enum sn_fs_op; SN_FS_NONE: not a file-system operation */
    __u8 how;    /* enum sn_fs_how */
    __u8 argi;   /* the stat buffer's argument (SN_FSH_STAT, SN_FSH_STATX) */
    __u8 posarg; /* the explicit offset's argument (pread, pwrite), or SN_FS_NOARG: f_pos */
};

/* thread_executions' leavereason (SN_SC_OPTYPE) */
enum {
    SN_LEAVE_PREEMPTED = 0, /* still runnable */
    SN_LEAVE_SLEEPING,      /* interruptible sleep */
    SN_LEAVE_BLOCKED,       /* uninterruptible sleep (I/O, locks) */
    SN_LEAVE_STOPPED,       /* stopped or traced */
    SN_LEAVE_EXITED,
    SN_LEAVE_OTHER,
};

/* The drops map's index of slot s's counter of kind (0: over the key cap, 1: map full) in
 * generation g: a generation's counters are contiguous. */
#define SN_DROP_IDX(g, s, kind) (((g)*SN_MAX_SLOTS + (s)) * 2 + (kind))

struct sn_slot {
    __u32 active;   /* 0: free */
    __u32 metric;   /* enum sn_metric_id */
    __u8 key_field; /* discrete decomposition field, or SN_NO_FIELD */
    __u8 num_field; /* numeric decomposition field, or SN_NO_FIELD */
    __u16 pad;
    __u32 key_cap; /* distinct discrete keys per generation (whatever buckets each spans)
                      before counts of further keys go to "other" */
    struct sn_pred_prog pred;
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

/* A discrete key admitted under a slot's key cap in one generation (the keyset map). */
struct sn_keyset_key {
    __u32 slot_gen; /* slot << 1 | generation */
    __u32 pad;      /* zero */
    char key[SN_KEYLEN];
};

#endif
