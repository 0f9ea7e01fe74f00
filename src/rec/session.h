/*
 * A flight-recorder session (docs/recorder.md): one rec.bpf.c object of its own, its ring
 * sized per CPU, only the programs of its groups loaded and attached. Destroying it detaches
 * and frees everything, so a stopped session costs nothing. The ring is mapped read-only into
 * this process; consumers (rec/ring.h) read it through sn_rec_session_view().
 *
 * Needs root (CAP_BPF and CAP_PERFMON) and a kernel with BTF.
 */
#ifndef SN_REC_SESSION_H
#define SN_REC_SESSION_H

#include <stdint.h>

#include "rec/ring.h"

/* event groups */
#define SN_REC_G_SYSCALLS 0x1u /* sys_enter, sys_exit: number, arguments, return value */
#define SN_REC_G_SCHED    0x2u /* sched_switch, sched_wakeup, sched_wakeup_new */
#define SN_REC_G_ALL      (SN_REC_G_SYSCALLS | SN_REC_G_SCHED)

#define SN_REC_SIZE_MIN  (64u << 10) /* ring bytes per CPU: a power of 2 in [MIN, MAX] */
#define SN_REC_SIZE_MAX  (1u << 30)
#define SN_REC_MAX_PROGS 8

struct sn_rec_session_opts {
    unsigned groups;       /* SN_REC_G_* (at least one) */
    uint64_t size_per_cpu; /* bytes */
    uint32_t tgid;         /* record only this process (0: all), until sessions take predicates */
    int64_t nr;            /* system calls: only this number (-1: all) */
};

struct sn_rec_session;

/* Opens, loads and attaches a session. Returns 0 and *out, -EINVAL for bad options (no group,
 * unknown group bits, a size that is not a power of 2 in range), -E2BIG when the rings of all
 * CPUs exceed 2^32 slots (or more than SN_REC_MAXCPU CPUs), or the -errno of libbpf. */
int sn_rec_session_open(struct sn_rec_session **out, const struct sn_rec_session_opts *o);
/* Detaches and frees everything (the ring's mapping too). NULL is a no-op. */
void sn_rec_session_destroy(struct sn_rec_session *s);

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
