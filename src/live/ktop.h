/*
 * Per-process activity per second from a recording's raw events, as lttngtop shows it: CPU
 * time (from sched_switch), system calls (their exits), bytes read and written (the return
 * values of the read and write families' exits). `sonde top --trace DIR` feeds it a snapshot's
 * events, `sonde top --live NAME` a live session's; it is pure (no I/O).
 *
 * Events come in time order across CPUs (sn_ktop_event); seconds are wall-clock seconds (the
 * events' CLOCK_MONOTONIC time plus the offset given). When an event falls in a later second,
 * the current one is closed and handed to the caller as rows, one per process (pid = tgid),
 * sorted by CPU time, then system calls, then pid.
 *
 * CPU time: a CPU's task runs from the switch that brought it in to the switch that takes it
 * out; the time is the process's (the switching-out event's _pid) and is cut at each second's
 * end when the task's process is known (from any earlier event of that thread); else the part
 * in the seconds already closed is not counted, only the current second's, at its switch-out.
 * Time before a CPU's first switch is not counted (its task is not known). A process's CPU
 * time in a second is at most 1 s per CPU. Process names come from the scheduler events (a thread's
 * comm; the process's is its main thread's, else the first thread seen).
 */
#ifndef SN_LIVE_KTOP_H
#define SN_LIVE_KTOP_H

#include <stdint.h>

#include "ctf/event_class.h"
#include "live/ctf_read.h"

struct sn_ktop_row {
    int32_t pid;
    char comm[SN_REC_COMM_LEN + 1];
    uint64_t cpu_ns, syscalls, read_bytes, write_bytes;
};

/* A closed second: its start (wall clock, ns since the epoch) and rows[n]. */
typedef void (*sn_ktop_emit)(void *ctx, int64_t second_ns, const struct sn_ktop_row *rows,
                             size_t n);

struct sn_ktop;

/* For events of classes cls (borrowed) on CPUs 0..ncpu-1; offset_ns: wall clock - monotonic.
 * Returns 0 and *out, or -EINVAL, -ENOMEM. */
int sn_ktop_new(struct sn_ktop **out, const struct sn_ctf_classes *cls, unsigned ncpu,
                int64_t offset_ns);
/* Counts ev, recorded on cpu, closing the seconds before it first. An event earlier than the
 * current second counts in it. Returns 0, -EINVAL (cpu out of range), -ENOMEM. */
int sn_ktop_event(struct sn_ktop *k, unsigned cpu, const struct sn_ctf_rd_event *ev,
                  sn_ktop_emit emit, void *ctx);
/* Closes every second up to the one holding wall-clock time now_ns (exclusive). */
void sn_ktop_advance(struct sn_ktop *k, int64_t now_ns, sn_ktop_emit emit, void *ctx);
/* Closes the current second (the end of a trace). */
void sn_ktop_flush(struct sn_ktop *k, sn_ktop_emit emit, void *ctx);
void sn_ktop_free(struct sn_ktop *k);

#endif
