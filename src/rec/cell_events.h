/*
 * From a heatmap cell to the raw events behind it (docs/recorder.md, "From a heatmap cell to
 * events"): a read-only query of the flight recorder's running sessions. A cell of a system call
 * latency heatmap (syscall.syscalls decomposed by latency) is a wall-clock time range, a latency
 * band and, optionally, a key of the instrumentation's discrete decomposition; the operations
 * behind it are the system calls whose exit falls in that time (the agent counts a call in the
 * second of its exit) and whose latency, the exit's ts minus its entry's in a session's ring, is
 * in the band.
 *
 * The rings are read through a consumer made for the read (rec/recorder.h, sn_recorder_peek()):
 * no session's manual snapshots, trigger or stream lose or repeat anything because of it.
 *
 * Keys are matched by what the ring knows, or the host knows now: pid and syscall (the record),
 * errno (the exit's return value), execname (the comm of the tid's newest sched_switch or
 * wake-up in the ring, else /proc/PID/task/TID/comm at query time), ppid and pexecname
 * (/proc/PID/stat at query time), container (/proc/PID/cgroup at query time), hostname (the one
 * host: every event). psargs cannot be told from a raw event.
 *
 * The instrumentation's predicate is applied to each operation with the same fields (and
 * latency, subsecond from the exit's wall time); one that reads psargs or cputime, which a
 * raw event does not tell, makes the answer "unsupported".
 */
#ifndef SN_REC_CELL_EVENTS_H
#define SN_REC_CELL_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent/predicate.h"
#include "bpf/rec.h"
#include "ctf/rec_event.h"

struct sn_recorder;

#define SN_CELL_EVENTS_MAX 100 /* events one query lists at most */

struct sn_cell_query {
    int64_t t0, t1;       /* wall clock (CLOCK_REALTIME), ns: exits in [t0, t1) */
    uint64_t lo, hi;      /* latency, ns: [lo, hi) */
    const char *keyfield; /* the decomposition field an event's key is of (NULL: none) */
    const char *key;      /* only events of this key (NULL: any) */
    const char *tenant;   /* only this tenant's sessions (NULL or "": the operator, every one) */
    size_t max;           /* events listed at most (<= SN_CELL_EVENTS_MAX); the rest counted */
    /* the instrumentation's predicate, compiled for this host (agent/definition.h,
     * sn_def_compile()) and as given (the fields it reads); NULL: none */
    const struct sn_pred *pred;
    const json_t *pred_json;
    int32_t self_pid; /* a process left out, as the agent leaves its own out (0: none) */
};

/* What the rings can say of the cell's time. */
enum sn_cell_state {
    SN_CELL_NONE = 0,     /* no running session (of the caller's) records system calls */
    SN_CELL_NOT_COVERING, /* sessions run, but their rings hold none of the cell's time */
    SN_CELL_PARTIAL,      /* the best session's rings hold only the end of the cell's time */
    SN_CELL_COVERED,      /* the best session's rings hold all of it (so far) */
    SN_CELL_UNSUPPORTED,  /* the key's field, or a field the predicate reads, cannot be told
                           * from a raw event (psargs, cputime) */
};

/* One operation: a system call's entry and exit, of one tid, in one session's ring. */
struct sn_cell_event {
    uint16_t cpu;     /* the exit's CPU */
    int32_t tid, pid; /* the thread and its process (tgid) */
    char comm[SN_REC_COMM_LEN + 1];
    char key[128];              /* its key of the query's keyfield ("" when none) */
    int64_t nr, ret;            /* system call number, return value */
    int64_t entry_ns, exit_ns;  /* wall clock */
    uint64_t latency;           /* exit ts - entry ts */
    uint64_t args[SN_REC_ARGS]; /* the entry's raw arguments (0: not recorded) */
    char path[SN_REC_STR_MAX];  /* the entry's string argument ("" when none) */
};

struct sn_cell_result {
    enum sn_cell_state state;
    char session[64];         /* the session read (NONE: "") */
    int64_t from;             /* wall ns since when every CPU of its ring holds every event */
    struct sn_cell_event *ev; /* [n], by exit time */
    size_t n;
    uint64_t total; /* operations matching, listed or not */
    char why[160];  /* what the state means, in words */
};

/* Answers q from r's sessions that record system calls and that q->tenant may see; the one
 * whose rings cover the most of [t0, t1) (the earliest "from") is read. Returns 0 with out
 * filled (free with sn_cell_result_free), or -ENOMEM / -EINVAL (t1 <= t0, hi <= lo). */
int sn_cell_events(struct sn_recorder *r, const struct sn_cell_query *q,
                   struct sn_cell_result *out);
void sn_cell_result_free(struct sn_cell_result *res);

/* The state's name in the API ("none", "not-covering", "partial", "covered", "unsupported"). */
const char *sn_cell_state_name(enum sn_cell_state s);

/* Whether raw events can say field's value (the fields above); false for psargs, cputime... */
int sn_cell_field_known(const char *field);

#endif
