/*
 * A flight-recorder session (docs/recorder.md): one rec.bpf.c object of its own, its ring
 * sized per CPU, only the programs of its groups loaded and attached. Destroying it detaches
 * and frees everything, so a stopped session costs nothing. The ring is mapped read-only into
 * this process; consumers (rec/ring.h) read it through sn_rec_session_view().
 *
 * What a session records is narrowed in the kernel, before any ring slot is taken: by a
 * predicate in the catalog's language (agent/predicate.h) on the fields of raw events, and by a
 * tenant's scope, the cgroups its "under" leaves name (bpf/rec.bpf.c). The session keeps its own
 * cgroup id -> prefix bits map (as the agent's cgroup_scope, filled from the cgroup2 tree at
 * open and by sn_rec_session_refresh_scope()): it needs no agent running.
 *
 * Needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF.
 */
#ifndef SN_REC_SESSION_H
#define SN_REC_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/predicate.h"
#include "rec/ring.h"

/* event groups */
#define SN_REC_G_SYSCALLS 0x1u  /* sys_enter, sys_exit: number, arguments, return value */
#define SN_REC_G_SCHED    0x2u  /* sched_switch, sched_wakeup, sched_wakeup_new */
#define SN_REC_G_PROC     0x4u  /* sched_process_exec, sched_process_fork, sched_process_exit */
#define SN_REC_G_BLOCK    0x8u  /* block_rq_issue, block_rq_complete */
#define SN_REC_G_TCP      0x10u /* inet_sock_set_state (connect, accept), tcp_retransmit_skb */
#define SN_REC_G_FAULTS   0x20u /* page_fault_user, page_fault_kernel */
#define SN_REC_G_USDT     0x40u /* the USDT probes of opts.usdt */
/* every group bit (usdt needs its probes in the options) */
#define SN_REC_G_ALL                                                                               \
    (SN_REC_G_SYSCALLS | SN_REC_G_SCHED | SN_REC_G_PROC | SN_REC_G_BLOCK | SN_REC_G_TCP |          \
     SN_REC_G_FAULTS | SN_REC_G_USDT)

#define SN_REC_SIZE_MIN  (64u << 10) /* ring bytes per CPU: a power of 2 in [MIN, MAX] */
#define SN_REC_SIZE_MAX  (1u << 30)
#define SN_REC_MAX_PROGS 16 /* programs of a session (sn_rec_session_prog_ids) */
#define SN_REC_MAX_SCOPE 32 /* "under" leaves of a tenant's scope */

/* The catalog fields a recording predicate may use (names of syscall.syscalls): the task's
 * (container, pid, ppid, execname, pexecname) and, for system calls, syscall. Of a sched event
 * the predicate sees each side's task (syscall -1); fields of a completed operation (latency,
 * errno, cputime...) mean nothing for one raw event and are refused. */
#define SN_REC_PRED_FIELDS "container, pid, ppid, execname, pexecname, syscall"

/* A USDT probe to record (group usdt): PATH:PROVIDER:PROBE, as <sys/sdt.h> names it. */
struct sn_rec_usdt {
    const char *path; /* the binary or library holding the probe */
    const char *provider;
    const char *probe;
};

struct sn_rec_session_opts {
    unsigned groups;       /* SN_REC_G_* (at least one) */
    uint64_t size_per_cpu; /* bytes */
    /* only events for which this predicate (borrowed; NULL or {}: every event) holds */
    const json_t *predicate;
    /* a tenant's scope: only tasks in or below these cgroup v2 paths, and sched events with
     * one side there (the other side redacted); nscope 0: no scope (the operator's) */
    const char *const *scope;
    size_t nscope;
    /* group usdt: its probes (at most SN_REC_USDT_MAX; probe i is recorded with index i), in
     * every process that maps path */
    const struct sn_rec_usdt *usdt;
    size_t nusdt;
    char *why; /* receives the reason of an -EINVAL (may be NULL) */
    size_t whylen;
};

/* Compiles a recording predicate (fields SN_REC_PRED_FIELDS). Returns 0, or -EINVAL with the
 * reason in why (CA's messages; a field recordings do not take is named with the list of those
 * they take). Needs no root: the API checks requests with it. */
int sn_rec_pred_compile(const json_t *p, struct sn_pred *out, char *why, size_t whylen);

struct sn_rec_session;

/* The number of arguments of USDT probe PROVIDER:PROBE in the ELF file at path (its
 * .note.stapsdt note), what its usdt_<provider>_<probe> event class declares
 * (ctf/event_class.h's sn_ctf_classes_add_usdt). Returns it (0..12), -ENOENT when the file has
 * no such probe, -ENOEXEC for a file that is not ELF64, or -errno. */
int sn_rec_usdt_nargs(const char *path, const char *provider, const char *probe);
/* The same, from the bytes of a .note.stapsdt section (notes[len], any bytes: a file's
 * content is not trusted). Returns the count, or -ENOENT. */
int sn_rec_sdt_nargs(const char *notes, size_t len, const char *provider, const char *probe);

/* Opens, loads and attaches a session. Returns 0 and *out; -EINVAL for bad options (no group,
 * unknown group bits, a size that is not a power of 2 in range, a bad predicate or scope path,
 * more than SN_REC_MAX_SCOPE scope paths or 64 distinct paths in all, group usdt without probes
 * or with more than SN_REC_USDT_MAX, probes without the group: o->why says which); -E2BIG when
 * the rings of all CPUs exceed 2^32 slots (or more than SN_REC_MAXCPU CPUs); or the -errno of
 * libbpf (a USDT probe it cannot find or attach: o->why names it). */
int sn_rec_session_open(struct sn_rec_session **out, const struct sn_rec_session_opts *o);
/* Detaches and frees everything (the ring's mapping too). NULL is a no-op. */
void sn_rec_session_destroy(struct sn_rec_session *s);

/* Marks again the cgroups at or below the scope's and the predicate's paths (a cgroup made
 * after open is recorded from then on). Returns how many cgroups are marked, or -errno. */
int sn_rec_session_refresh_scope(struct sn_rec_session *s);

/* The ring as memory, valid until destroy. */
const struct sn_rec_ring_view *sn_rec_session_view(const struct sn_rec_session *s);

struct sn_rec_session_stats {
    unsigned ncpu;
    const uint64_t *head; /* [ncpu]: slots reserved on each CPU (valid until the next call) */
    uint64_t dropped;     /* events the kernel skipped: the programs' recursion misses */
};
int sn_rec_session_stats(struct sn_rec_session *s, struct sn_rec_session_stats *st);

/* The kernel ids of the session's loaded programs (at most max); returns their number. */
int sn_rec_session_prog_ids(const struct sn_rec_session *s, uint32_t *ids, int max);

#endif
