// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's probes, one BPF object: the slot machinery every metric shares (slots, the
 * predicate interpreter, aggregation; bpf/engine.h, docs/agent.md) and each metric's
 * programs, which the agent attaches one metric at a time.
 *
 * syscall.syscalls: every system call as an event (execname, pexecname, pid, ppid, syscall,
 * errno, latency, container). sys_enter only stamps the time into task-local storage;
 * sys_exit reads the fields some slot needs, runs each slot's predicate and counts the event
 * under the slot's decomposition key.
 * unix.proc_execs: each successful exec (execname is the new program's, pid, ppid,
 * pexecname, container), from sched_process_exec.
 * unix.proc_forks: each new process (not thread): the child's pid, the parent's execname and
 * pid as ppid, from sched_process_fork (which runs in the parent).
 * unix.proc_exits: each process's end (its main thread's), with walltime, how long it lived,
 * from sched_process_exit.
 * disk.physio_ops: each block request from issue to completion (disk, optype, size, offset,
 * latency); the issue time waits in a hash keyed by the request's address.
 * cpu.runqueue: how long a woken task waited for a CPU (waittime, in the latency slot), from
 * sched_wakeup/sched_wakeup_new to the sched_switch that runs it; execname, pid and
 * container are the task's, read from it (the switch runs on the previous task).
 * Returns 0 everywhere; never wakes user space.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/engine.h"
#include "core/hist_bucket.h"

char LICENSE[] SEC("license") = "GPL";

__u32 gen = 0; /* the generation being written; user space flips it */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SN_MAX_SLOTS);
    __type(key, __u32);
    __type(value, struct sn_slot);
} slots SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SN_NMETRICS);
    __type(key, __u32);
    __type(value, struct sn_metric_slots);
} by_metric SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, SN_AGG_ENTRIES);
    __type(key, struct sn_agg_key);
    __type(value, __u64);
} agg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SN_ARRAY_SLOTS * 2 * SN_U64_ORDS);
    __type(key, __u32);
    __type(value, __u64);
} hist_arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SN_MAX_SLOTS * 2);
    __type(key, __u32);
    __type(value, __u32);
} nkeys SEC(".maps");

/* per slot: [0] events over the key cap (counted under "other"), [1] lost to a full map */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SN_MAX_SLOTS * 2);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} start_ns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} woken_ns SEC(".maps");

struct rq_start {
    __u64 ts, bytes, sector;
    __u32 op;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct rq_start);
} rq_started SEC(".maps");

struct event {
    __s64 num[SN_EV_NNUM];
    char str[SN_EV_NSTR][SN_KEYLEN];
};

/* too large for the 512-byte stack next to everything else: one per CPU */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct event);
} scratch SEC(".maps");

static __always_inline int str_eq(const char *a, const char *b)
{
    for (int i = 0; i < SN_PRED_STRLEN - 1; i++) {
        if (a[i] != b[i])
            return 0;
        if (!a[i])
            return 1;
    }
    return 1;
}

struct pred_run {
    const struct sn_pred *p;
    const struct event *ev;
    __u64 stack; /* results, newest in bit 0 */
    __u32 depth;
    __u32 n;
    int bad;
};

/* One instruction of the postfix interpreter (bpf/pred.h); bpf_loop()'s callback, so the
 * verifier checks it once instead of once per iteration and path. */
static long pred_step(__u32 i, void *arg)
{
    struct pred_run *run = arg;
    const struct sn_pred_insn *in;
    __u32 f;
    int r;

    if (i >= run->n || i >= SN_PRED_MAX_INSNS)
        return 1;
    in = &run->p->insn[i];
    f = in->field;
    if (in->op == SN_PRED_AND || in->op == SN_PRED_OR) {
        if (run->depth < 2)
            goto bad;
        int b = run->stack & 1, a = (run->stack >> 1) & 1;
        run->stack >>= 2;
        run->depth -= 2;
        r = in->op == SN_PRED_AND ? (a && b) : (a || b);
    } else if (in->op == SN_PRED_TRUE) {
        r = 1;
    } else if (in->is_str) {
        if (f >= SN_EV_NSTR || (in->op != SN_PRED_EQ && in->op != SN_PRED_NE))
            goto bad;
        r = str_eq(run->ev->str[f], in->s);
        if (in->op == SN_PRED_NE)
            r = !r;
    } else {
        __s64 x, k = in->n;
        if (f >= SN_EV_NNUM)
            goto bad;
        x = run->ev->num[f];
        switch (in->op) {
        case SN_PRED_EQ:
            r = x == k;
            break;
        case SN_PRED_NE:
            r = x != k;
            break;
        case SN_PRED_LT:
            r = x < k;
            break;
        case SN_PRED_LE:
            r = x <= k;
            break;
        case SN_PRED_GT:
            r = x > k;
            break;
        case SN_PRED_GE:
            r = x >= k;
            break;
        default:
            goto bad;
        }
    }
    run->stack = run->stack << 1 | (__u64)r;
    run->depth++;
    return 0;
bad:
    run->bad = 1;
    return 1;
}

/* A predicate of one instruction: TRUE or one comparison. Kept apart from pred_step() on
 * purpose: sharing code with the bpf_loop() callback changes what the verifier must prove
 * about it, and a first try at that blew its instruction budget. */
static __always_inline int one_leaf(const struct sn_pred_insn *in, const struct event *ev)
{
    __u32 f = in->field;
    __s64 x, k = in->n;

    if (in->op == SN_PRED_TRUE)
        return 1;
    if (in->is_str) {
        int r;
        if (f >= SN_EV_NSTR || (in->op != SN_PRED_EQ && in->op != SN_PRED_NE))
            return 0;
        r = str_eq(ev->str[f], in->s);
        return in->op == SN_PRED_NE ? !r : r;
    }
    if (f >= SN_EV_NNUM)
        return 0;
    x = ev->num[f];
    switch (in->op) {
    case SN_PRED_EQ:
        return x == k;
    case SN_PRED_NE:
        return x != k;
    case SN_PRED_LT:
        return x < k;
    case SN_PRED_LE:
        return x <= k;
    case SN_PRED_GT:
        return x > k;
    case SN_PRED_GE:
        return x >= k;
    default:
        return 0;
    }
}

/*
 * Runs slot predicate p on ev. A global function: the verifier checks it once on its own
 * instead of once per slot and path of the caller.
 */
__noinline int pred_eval(const struct sn_pred *p, const struct event *ev)
{
    struct pred_run run = {.p = p, .ev = ev};

    if (!p || !ev)
        return 0;
    run.n = p->n;
    if (run.n == 1) /* one comparison: no loop to set up (the common case) */
        return one_leaf(&p->insn[0], ev);
    if (run.n == 0 || run.n > SN_PRED_MAX_INSNS)
        return 0;
    bpf_loop(SN_PRED_MAX_INSNS, pred_step, &run, 0);
    return !run.bad && run.depth == 1 && (run.stack & 1);
}

/* Counts ev for slot s (sl) in generation g. Global, like pred_eval(). */
__noinline int count_event(__u32 s, const struct sn_slot *sl, const struct event *ev, __u32 g)
{
    struct sn_agg_key k;
    __u64 one = 1, *v;
    __u32 f, nk_idx;
    __u16 ord = 0;

    if (!sl || !ev || s >= SN_MAX_SLOTS || g > 1)
        return 0;
    nk_idx = s * 2 + g;
    f = sl->num_field;
    if (f < SN_EV_NNUM)
        ord = sn_ord_of_u64((__u64)ev->num[f]);
    /* a keyless numeric decomposition: one per-CPU array slot per bucket, no hash */
    if (f < SN_EV_NNUM && sl->key_field == SN_NO_FIELD && s < SN_ARRAY_SLOTS) {
        __u32 i = ord == SN_BUCKET_ORD_ZERO ? 0 : (__u32)ord - SN_U64_ORD_FIRST + 1;
        if (i < SN_U64_ORDS) {
            __u32 idx = (s * 2 + g) * SN_U64_ORDS + i;
            __u64 *c = bpf_map_lookup_elem(&hist_arr, &idx);
            if (c) {
                *c += 1;
                return 0;
            }
        }
    }
    __builtin_memset(&k, 0, sizeof(k));
    k.slot_gen = s << 1 | g;
    k.ord = ord;
    f = sl->key_field;
    if (f < SN_EV_NSTR)
        __builtin_memcpy(k.key, ev->str[f], SN_KEYLEN);
    else if (f < SN_EV_NNUM)
        __builtin_memcpy(k.key, &ev->num[f], sizeof(__s64));
    v = bpf_map_lookup_elem(&agg, &k);
    if (v) {
        *v += 1;
        return 0;
    }
    if (f != SN_NO_FIELD) { /* a new key: within the cap? */
        __u32 *nk = bpf_map_lookup_elem(&nkeys, &nk_idx);
        if (nk && __sync_fetch_and_add(nk, 1) >= sl->key_cap) {
            __u32 di = s * 2;
            __u64 *d = bpf_map_lookup_elem(&drops, &di);
            if (d)
                *d += 1;
            __builtin_memset(k.key, 0, SN_KEYLEN);
            k.other = 1;
            v = bpf_map_lookup_elem(&agg, &k);
            if (v) {
                *v += 1;
                return 0;
            }
        }
    }
    if (bpf_map_update_elem(&agg, &k, &one, BPF_NOEXIST) == 0)
        return 0;
    v = bpf_map_lookup_elem(&agg, &k); /* another CPU created it meanwhile */
    if (v) {
        *v += 1;
        return 0;
    }
    __u32 di = s * 2 + 1;
    __u64 *d = bpf_map_lookup_elem(&drops, &di);
    if (d)
        *d += 1;
    return 0;
}

/* Evaluates every slot listed for metric against ev and counts it where the predicate holds. */
static __always_inline void run_slots(const struct sn_metric_slots *ms, const struct event *ev,
                                      __u32 metric, __u32 g)
{
    __u32 n = ms->n;

    for (__u32 i = 0; i < SN_SLOTS_PER_METRIC; i++) {
        __u32 s;
        struct sn_slot *sl;

        if (i >= n)
            break;
        s = ms->slot[i];
        if (s >= SN_MAX_SLOTS)
            continue;
        sl = bpf_map_lookup_elem(&slots, &s);
        if (!sl || !sl->active || sl->metric != metric)
            continue;
        if (pred_eval(&sl->pred, ev))
            count_event(s, sl, ev, g);
    }
}

/* The fields of the current task that several metrics share, as far as needed. */
static __always_inline void task_fields(struct event *ev, struct task_struct *task, __u32 needs)
{
    if (needs & (1u << SN_SC_EXECNAME))
        bpf_get_current_comm(ev->str[SN_SC_EXECNAME], SN_KEYLEN);
    if (needs & (1u << SN_SC_PEXECNAME))
        BPF_CORE_READ_STR_INTO(&ev->str[SN_SC_PEXECNAME], task, real_parent, comm);
    if (needs & (1u << SN_SC_PID))
        ev->num[SN_SC_PID] = (__s64)(bpf_get_current_pid_tgid() >> 32);
    if (needs & (1u << SN_SC_PPID))
        ev->num[SN_SC_PPID] = BPF_CORE_READ(task, real_parent, tgid);
    if (needs & (1u << SN_SC_CONTAINER))
        ev->num[SN_SC_CONTAINER] = (__s64)bpf_get_current_cgroup_id();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
    __u64 *ts = bpf_task_storage_get(&start_ns, bpf_get_current_task_btf(), 0,
                                     BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
    struct task_struct *task = bpf_get_current_task_btf();
    __u32 zero = 0, metric = SN_METRIC_SYSCALLS, g = gen & 1, needs;
    struct sn_metric_slots *ms;
    struct event *ev;
    __u64 *ts, now;

    ts = bpf_task_storage_get(&start_ns, task, 0, 0);
    if (!ts || !*ts)
        return 0;
    now = bpf_ktime_get_ns();
    ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    if (!ms || !ev || ms->n == 0) {
        *ts = 0;
        return 0;
    }
    needs = ms->needs;
    ev->num[SN_SC_LATENCY] = (__s64)(now - *ts);
    *ts = 0;
    task_fields(ev, task, needs);
    if (needs & (1u << SN_SC_SYSCALL))
        ev->num[SN_SC_SYSCALL] = BPF_CORE_READ(regs, orig_ax);
    if (needs & (1u << SN_SC_ERRNO))
        ev->num[SN_SC_ERRNO] = ret < 0 && ret > -4096 ? -ret : 0;

    run_slots(ms, ev, SN_METRIC_SYSCALLS, g);
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 zero = 0, metric = SN_METRIC_PROC_EXECS;
    struct sn_metric_slots *ms = bpf_map_lookup_elem(&by_metric, &metric);
    struct event *ev = bpf_map_lookup_elem(&scratch, &zero);

    if (!ms || !ev || ms->n == 0)
        return 0;
    task_fields(ev, bpf_get_current_task_btf(), ms->needs);
    run_slots(ms, ev, SN_METRIC_PROC_EXECS, gen & 1);
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 zero = 0, metric = SN_METRIC_PROC_FORKS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
        return 0; /* a thread, not a process */
    ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    if (!ms || !ev || ms->n == 0)
        return 0;
    task_fields(ev, bpf_get_current_task_btf(), ms->needs); /* current is the parent */
    ev->num[SN_SC_PPID] = (__s64)(bpf_get_current_pid_tgid() >> 32);
    ev->num[SN_SC_PID] = BPF_CORE_READ(child, tgid);
    run_slots(ms, ev, SN_METRIC_PROC_FORKS, gen & 1);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
    __u32 zero = 0, metric = SN_METRIC_PROC_EXITS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
        return 0; /* a thread; the process ends with its main thread */
    ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    if (!ms || !ev || ms->n == 0)
        return 0;
    task_fields(ev, bpf_get_current_task_btf(), ms->needs);
    ev->num[SN_SC_WALLTIME] = (__s64)(bpf_ktime_get_ns() - BPF_CORE_READ(p, start_time));
    run_slots(ms, ev, SN_METRIC_PROC_EXITS, gen & 1);
    return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_issue, struct request *rq)
{
    struct rq_start st;
    __u64 key = (__u64)rq;

    st.ts = bpf_ktime_get_ns();
    st.bytes = BPF_CORE_READ(rq, __data_len);
    st.sector = BPF_CORE_READ(rq, __sector);
    st.op = BPF_CORE_READ(rq, cmd_flags) & 0xff; /* REQ_OP_MASK */
    bpf_map_update_elem(&rq_started, &key, &st, BPF_ANY);
    return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
    __u32 zero = 0, metric = SN_METRIC_DISK_OPS, needs;
    __u64 key = (__u64)rq, now = bpf_ktime_get_ns();
    struct sn_metric_slots *ms;
    struct rq_start *st;
    struct event *ev;

    st = bpf_map_lookup_elem(&rq_started, &key);
    if (!st)
        return 0;
    ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    if (ms && ev && ms->n > 0) {
        needs = ms->needs;
        ev->num[SN_SC_LATENCY] = (__s64)(now - st->ts);
        ev->num[SN_SC_SIZE] = (__s64)st->bytes;
        ev->num[SN_SC_OFFSET] = (__s64)(st->sector * 512);
        ev->num[SN_SC_OPTYPE] = st->op;
        if (needs & (1u << SN_SC_DISK))
            BPF_CORE_READ_STR_INTO(&ev->str[SN_SC_DISK], rq, q, disk, disk_name);
        run_slots(ms, ev, SN_METRIC_DISK_OPS, gen & 1);
    }
    bpf_map_delete_elem(&rq_started, &key);
    return 0;
}

static __always_inline void stamp_wakeup(struct task_struct *p)
{
    __u64 *ts = bpf_task_storage_get(&woken_ns, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (ts)
        *ts = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runq_wakeup, struct task_struct *p)
{
    stamp_wakeup(p);
    return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runq_wakeup_new, struct task_struct *p)
{
    stamp_wakeup(p);
    return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runq_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    __u32 zero = 0, metric = SN_METRIC_RUNQUEUE, needs;
    struct sn_metric_slots *ms;
    struct event *ev;
    __u64 *ts, now;

    ts = bpf_task_storage_get(&woken_ns, next, 0, 0);
    if (!ts || !*ts)
        return 0;
    now = bpf_ktime_get_ns();
    ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    if (ms && ev && ms->n > 0) {
        needs = ms->needs;
        ev->num[SN_SC_LATENCY] = (__s64)(now - *ts);
        if (needs & (1u << SN_SC_EXECNAME))
            BPF_CORE_READ_STR_INTO(&ev->str[SN_SC_EXECNAME], next, comm);
        if (needs & (1u << SN_SC_PID))
            ev->num[SN_SC_PID] = BPF_CORE_READ(next, tgid);
        if (needs & (1u << SN_SC_CONTAINER))
            ev->num[SN_SC_CONTAINER] = (__s64)BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
        run_slots(ms, ev, SN_METRIC_RUNQUEUE, gen & 1);
    }
    *ts = 0;
    return 0;
}
