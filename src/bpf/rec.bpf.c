// SPDX-License-Identifier: GPL-2.0
/*
 * The flight recorder's writer (docs/recorder.md): one program per tracepoint, each appending a
 * record to its CPU's part of the ring (bpf/rec.h) with no wake-up of user space and no
 * helper call beyond the pid and the clock. User space (rec/session.c) sizes the ring
 * (max_entries = ncpu * nslots), fills the rodata below, loads only the programs of the
 * session's groups (syscalls: sys_enter, sys_exit; sched: sched_switch, sched_wakeup,
 * sched_wakeup_new; proc: sched_process_exec/fork/exit; block: block_rq_insert/issue/complete; tcp:
 * inet_sock_set_state, tcp_retransmit_skb; faults: page_fault_user/kernel; usdt: rec_usdt,
 * attached once per probe) and destroys the object when the session stops, so a stopped
 * session has no program attached. The helpers beyond the pid and the clock: a kernel string
 * read (exec's filename), the comm, and USDT's argument fetch.
 *
 * Reserve: an atomic add on the CPU's head (programs of IRQ context interrupt others on the
 * same CPU; a program never nests in itself: the kernel skips it and counts a recursion miss,
 * which the session reports as dropped). Write: every reserved slot's seq to 0, the payload,
 * the continuations' seqs, the first slot's seq last (x86 is TSO: compiler barriers order
 * the stores).
 *
 * What is recorded (docs/recorder.md, "Predicates and tenant scope"), decided before any slot
 * is reserved, so that an event left out costs no ring space:
 *  - the session's predicate (map rec_pred, bpf/pred.h's program run by pred_eval() of
 *    bpf/pred_eval.bpf.h, the agent's interpreter): pred_needs says which event fields it
 *    reads, and only those are filled (execname, pexecname, pid, ppid, container, syscall;
 *    SN_SC_SCOPE for its "under" leaves). pred_needs == 0: no predicate, nothing evaluated.
 *  - the tenant's scope (rodata scope_bits != 0): only tasks whose cgroup is at or below one of
 *    the tenant's "under" leaves, which user space marks with those bits in the session's own
 *    cgroup_scope map (cgroup id -> a bit per prefix, as the agent's map of probes.bpf.c).
 * A system call is the current task's, and so are exec, exit, faults and USDT hits.
 * sched_switch (prev, next), sched_wakeup (the waker, current, in the header; the woken task in
 * the payload) and sched_process_fork (parent, child) are kept when either side passes; under
 * a scope, the side outside it has its tid, pid, prio and comm zeroed and the record
 * SN_REC_F_REDACTED. A block issue is its task's, or the task's that queued it, or its I/O
 * owner's (blk-cgroup, cgroup v2);
 * its completion (interrupt context) is kept when its issue was (map rq_kept). A TCP event is
 * judged on its socket's cgroup (it completes in softirq context).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "bpf/cgroup_scope.bpf.h"
#include "bpf/pred_eval.bpf.h"
#include "bpf/rec.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 nslots = 1; /* per CPU, a power of 2 */
const volatile struct sn_rec_sys sys_tab[SN_REC_NSYS];
const volatile __u32 pred_needs = 0; /* 1 << enum sn_field_id the predicate reads; 0: none */
const volatile __u64 scope_bits = 0; /* the tenant's prefixes' cgroup_scope bits; 0: no scope */

struct sn_rec_head heads[SN_REC_MAXCPU];

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 1); /* set by user space */
    __type(key, __u32);
    __type(value, struct sn_rec_slot);
} rec_ring SEC(".maps");

/* cgroup_scope (bpf/cgroup_scope.bpf.h): the session's own, filled by rec/session.c from the
 * cgroup2 tree */

/* the session's predicate (one element; a map, not rodata: pred_eval() takes writable memory),
 * written by user space before attach */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sn_pred_prog);
} rec_pred SEC(".maps");

/* the predicate's event record (too large for the stack next to the rest): one per CPU */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct event);
} scratch SEC(".maps");

#define barrier() asm volatile("" ::: "memory")

#define NEED(f) (pred_needs & (1u << (f)))

/* The cgroup (v2) id of task t; cur: t is the current task (one helper call). */
static __always_inline __u64 task_cgroup(struct task_struct *t, int cur)
{
    if (cur)
        return bpf_get_current_cgroup_id();
    return t->cgroups->dfl_cgrp->kn->id; /* BTF loads: the verifier makes them fault-safe */
}

/* Bit 0: task t is in the tenant's scope (always, without one); bit 1: the session's predicate
 * holds for t (always, without one). nr is the system call (-1 for other events); cur says t
 * is the current task; cgid, when not 0, is the cgroup to judge instead of t's (a socket's, an
 * I/O's owner). Fills only what the predicate and the scope read. */
static __always_inline int judge_cg(struct task_struct *t, int cur, long nr, __u64 cgid)
{
    __u64 cg = cgid, bits = 0;
    struct sn_pred_prog *p;
    struct event *ev;
    __u32 z = 0;
    int in;

    if (!pred_needs && !scope_bits)
        return 3;
    if (scope_bits || NEED(SN_SC_CONTAINER) || NEED(SN_SC_SCOPE)) {
        if (!cg)
            cg = task_cgroup(t, cur);
        if (scope_bits || NEED(SN_SC_SCOPE)) {
            __u64 *b = bpf_map_lookup_elem(&cgroup_scope, &cg);
            bits = b ? *b : 0;
        }
    }
    in = !scope_bits || (bits & scope_bits);
    if (!pred_needs) /* no predicate: it holds */
        return in ? 3 : 0;
    if (!in) /* out of scope: the predicate does not matter */
        return 0;
    ev = bpf_map_lookup_elem(&scratch, &z);
    p = bpf_map_lookup_elem(&rec_pred, &z);
    if (!ev || !p)
        return in;
    if (NEED(SN_SC_EXECNAME))
        __builtin_memcpy(ev->str[SN_SC_EXECNAME], t->comm, SN_KEYLEN);
    if (NEED(SN_SC_PEXECNAME))
        __builtin_memcpy(ev->str[SN_SC_PEXECNAME], t->real_parent->comm, SN_KEYLEN);
    if (NEED(SN_SC_PID))
        ev->num[SN_SC_PID] = t->tgid;
    if (NEED(SN_SC_PPID))
        ev->num[SN_SC_PPID] = t->real_parent->tgid;
    if (NEED(SN_SC_CONTAINER))
        ev->num[SN_SC_CONTAINER] = (__s64)cg;
    if (NEED(SN_SC_SCOPE))
        ev->num[SN_SC_SCOPE] = (__s64)bits;
    if (NEED(SN_SC_SYSCALL))
        ev->num[SN_SC_SYSCALL] = nr;
    return in | (pred_eval(p, ev) ? 2 : 0);
}

static __always_inline int judge(struct task_struct *t, int cur, long nr)
{
    return judge_cg(t, cur, nr, 0);
}

/* A system call of the current task: recorded? */
static __always_inline int wanted(long nr)
{
    if (!pred_needs && !scope_bits)
        return 1;
    /* the task itself only for the predicate's fields (a scope needs only the cgroup id) */
    return judge(pred_needs ? bpf_get_current_task_btf() : 0, 1, nr) == 3;
}

static __always_inline struct sn_rec_slot *slot_at(__u32 cpu, __u64 i)
{
    __u32 k = cpu * nslots + ((__u32)i & (nslots - 1));

    return bpf_map_lookup_elem(&rec_ring, &k);
}

/* Reserves n (1 or 2) slots on this CPU: *first and *cont (n == 2) with seq 0, *h the index of
 * the first. Returns 0, or -1 when the CPU is beyond the ring. */
static __always_inline int reserve(__u32 n, __u64 *h, struct sn_rec_slot **first,
                                   struct sn_rec_cont **cont)
{
    __u32 cpu = bpf_get_smp_processor_id();
    struct sn_rec_slot *s, *c = 0;

    if (cpu >= SN_REC_MAXCPU)
        return -1;
    *h = __sync_fetch_and_add(&heads[cpu].head, n);
    s = slot_at(cpu, *h);
    if (!s)
        return -1;
    if (n > 1) {
        c = slot_at(cpu, *h + 1);
        if (!c)
            return -1; /* left with its old seq: the reader counts it torn */
        c->seq = 0;
    }
    s->seq = 0;
    barrier();
    *first = s;
    *cont = (struct sn_rec_cont *)c;
    return 0;
}

static __always_inline void header(struct sn_rec_slot *s, __u16 type, __u8 n, __u64 pidtgid)
{
    s->type = type;
    s->nslots = n;
    s->flags = 0;
    s->ts = bpf_ktime_get_ns();
    s->tid = (__u32)pidtgid;
    s->pid = pidtgid >> 32;
}

static __always_inline void cont_header(struct sn_rec_cont *c, __u64 h)
{
    c->type = SN_RK_CONT;
    c->part = 1;
    c->flags = 0;
    barrier();
    *(volatile __u32 *)&c->seq = sn_rec_seq(h + 1);
}

static __always_inline void commit(struct sn_rec_slot *s, __u64 h)
{
    barrier();
    *(volatile __u32 *)&s->seq = sn_rec_seq(h);
}

static __always_inline __u64 reg_arg(struct pt_regs *regs, int k)
{
    switch (k) {
    case 0:
        return regs->di;
    case 1:
        return regs->si;
    case 2:
        return regs->dx;
    case 3:
        return regs->r10;
    case 4:
        return regs->r8;
    default:
        return regs->r9;
    }
}

/* The next n slots after h on cpu, invalidated (seq 0), or NULL. */
static __always_inline struct sn_rec_cont *cont_at(__u32 cpu, __u64 i)
{
    struct sn_rec_cont *c = (struct sn_rec_cont *)slot_at(cpu, i);

    if (c)
        c->seq = 0;
    return c;
}

static __always_inline void cont_commit(struct sn_rec_cont *c, __u64 i, __u8 part)
{
    c->type = SN_RK_CONT;
    c->part = part;
    c->flags = 0;
    barrier();
    *(volatile __u32 *)&c->seq = sn_rec_seq(i);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(rec_sys_enter, struct pt_regs *regs, long id)
{
    __u64 pt = bpf_get_current_pid_tgid(), h, nrw = (__u32)id;
    struct sn_rec_cont *c45 = 0, *c1 = 0, *c2 = 0;
    __u32 cpu = bpf_get_smp_processor_id(), n = 1, str = 0;
    struct sn_rec_slot *s;
    __u8 part = 1;

    if (!wanted(id))
        return 0;
    if (id >= 0 && id < SN_REC_NSYS) {
        if (sys_tab[id].nargs > 4) {
            nrw |= SN_REC_E_ARGS45;
            n++;
        }
        str = sys_tab[id].str_arg;
        if (str >= 1 && str <= 6) {
            nrw |= SN_REC_E_STR | (__u64)(str - 1) << SN_REC_E_STRSHIFT;
            n += SN_REC_STR_PARTS;
        }
    }
    if (cpu >= SN_REC_MAXCPU)
        return 0;
    h = __sync_fetch_and_add(&heads[cpu].head, n);
    s = slot_at(cpu, h);
    if (!s)
        return 0;
    /* invalidate every slot before writing any (a slot left alone keeps an old seq: torn) */
    if (nrw & SN_REC_E_ARGS45) {
        c45 = cont_at(cpu, h + part);
        if (!c45)
            return 0;
        part++;
    }
    if (nrw & SN_REC_E_STR) {
        c1 = cont_at(cpu, h + part);
        c2 = cont_at(cpu, h + part + 1);
        if (!c1 || !c2)
            return 0;
    }
    s->seq = 0;
    barrier();
    header(s, SN_RK_SYS_ENTRY, n, pt);
    s->a[0] = nrw;
    s->a[1] = regs->di;
    s->a[2] = regs->si;
    s->a[3] = regs->dx;
    s->a[4] = regs->r10;
    if (c45) {
        __u64 *b = (__u64 *)c45->b;
        b[0] = regs->r8;
        b[1] = regs->r9;
        cont_commit(c45, h + 1, 1);
    }
    if (c1 && c2) {
        const char *p = (const char *)reg_arg(regs, str - 1);
        long r = bpf_probe_read_user_str(c1->b, SN_REC_CONT_LEN, p);

        c2->b[0] = 0;
        if (r < 0) {
            c1->b[0] = 0;
            s->flags |= SN_REC_F_USERFAIL;
        } else if (r == SN_REC_CONT_LEN) { /* no NUL yet: the next 56 bytes, and no NUL */
            r = bpf_probe_read_user_str(c2->b, SN_REC_CONT_LEN, p + SN_REC_CONT_LEN - 1);
            /* c1's last byte is the NUL the helper wrote: the text goes on at c2 */
            if (r == SN_REC_CONT_LEN)
                s->flags |= SN_REC_F_TRUNC;
            else if (r < 0)
                c2->b[0] = 0;
        }
        cont_commit(c1, h + part, part);
        cont_commit(c2, h + part + 1, part + 1);
    }
    commit(s, h);
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(rec_sys_exit, struct pt_regs *regs, long ret)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    long id = regs->orig_ax;
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;
    __u8 out = 0;
    int j = 2;

    if (!wanted(id))
        return 0;
    if (id >= 0 && id < SN_REC_NSYS)
        out = sys_tab[id].out_mask;
    if (reserve(1, &h, &s, &c))
        return 0;
    header(s, SN_RK_SYS_EXIT, 1, pt);
    s->a[0] = (__u32)id | (__u64)out << 32;
    s->a[1] = ret;
    s->a[2] = 0;
    s->a[3] = 0;
    s->a[4] = 0;
    /* x86-64: pt_regs still hold the arguments at exit (LTTng's sc_out fields) */
    for (int k = 0; k < 6; k++) {
        if (!(out & (1 << k)))
            continue;
        if (j == 2)
            s->a[2] = reg_arg(regs, k);
        else if (j == 3)
            s->a[3] = reg_arg(regs, k);
        else if (j == 4)
            s->a[4] = reg_arg(regs, k);
        j++;
    }
    commit(s, h);
    return 0;
}

/* prev_state as the kernel's own trace event and lttng-modules report it
 * (__trace_sched_switch_state): 0x100 when preempted, 0x80 for TASK_IDLE, else the highest
 * bit of the state's TASK_REPORT bits (1 interruptible, 2 uninterruptible, ...), 0 running. */
static __always_inline __u64 switch_state(bool preempt, unsigned int state, int exit_state)
{
    __u32 st, top = 0;

    if (preempt)
        return 0x100;
    if (state == 0x402) /* TASK_IDLE: TASK_UNINTERRUPTIBLE | TASK_NOLOAD */
        return 0x80;
    st = (state | (__u32)exit_state) & 0x7f; /* TASK_REPORT */
    for (int b = 0; b < 7; b++)
        if (st & (1u << b))
            top = 1u << b;
    return top;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rec_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    int jp = 3, jn = 3; /* judge() of each side */
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;

    if (pred_needs || scope_bits) {
        jp = judge(prev, 1, -1);
        jn = judge(next, 0, -1);
        if (jp != 3 && jn != 3)
            return 0;
    }
    if (reserve(2, &h, &s, &c) || !c)
        return 0;
    header(s, SN_RK_SCHED_SWITCH, 2, pt);
    s->a[0] = prev->pid;
    s->a[1] = prev->prio - 100; /* as lttng-modules: p->prio - MAX_RT_PRIO */
    s->a[2] = switch_state(preempt, prev_state, prev->exit_state);
    s->a[3] = next->pid;
    s->a[4] = next->prio - 100;
    if (jp & 1) {
        bpf_probe_read_kernel(c->b, 16, prev->comm);
    } else { /* another tenant's */
        s->tid = s->pid = 0;
        s->a[0] = s->a[1] = 0;
        __builtin_memset(c->b, 0, 16);
        s->flags |= SN_REC_F_REDACTED;
    }
    if (jn & 1) {
        bpf_probe_read_kernel(c->b + 16, 16, next->comm);
    } else {
        s->a[3] = s->a[4] = 0;
        __builtin_memset(c->b + 16, 0, 16);
        s->flags |= SN_REC_F_REDACTED;
    }
    cont_header(c, h);
    commit(s, h);
    return 0;
}

static __always_inline int wakeup(struct task_struct *p, __u16 type)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    int jw = 3, jp = 3; /* judge() of the waker (current) and of p */
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;

    if (pred_needs || scope_bits) {
        jw = judge(bpf_get_current_task_btf(), 1, -1);
        jp = judge(p, 0, -1);
        if (jw != 3 && jp != 3)
            return 0;
    }
    if (reserve(1, &h, &s, &c))
        return 0;
    header(s, type, 1, pt);
    s->a[2] = p->thread_info.cpu;
    if (jp & 1) {
        s->a[0] = p->pid;
        s->a[1] = p->prio - 100;
        bpf_probe_read_kernel(&s->a[3], 16, p->comm);
    } else { /* another tenant's */
        s->a[0] = s->a[1] = s->a[3] = s->a[4] = 0;
        s->flags |= SN_REC_F_REDACTED;
    }
    if (!(jw & 1)) {
        s->tid = s->pid = 0;
        s->flags |= SN_REC_F_REDACTED;
    }
    commit(s, h);
    return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rec_sched_wakeup, struct task_struct *p)
{
    return wakeup(p, SN_RK_SCHED_WAKEUP);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rec_sched_wakeup_new, struct task_struct *p)
{
    return wakeup(p, SN_RK_SCHED_WAKEUP_NEW);
}

/* --- proc: sched_process_exec, sched_process_fork, sched_process_exit --- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rec_proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    __u32 cpu = bpf_get_smp_processor_id();
    struct sn_rec_cont *c1, *c2;
    struct sn_rec_slot *s;
    const char *fn;
    long r;

    if (!wanted(-1) || cpu >= SN_REC_MAXCPU)
        return 0;
    h = __sync_fetch_and_add(&heads[cpu].head, 1 + SN_REC_STR_PARTS);
    s = slot_at(cpu, h);
    c1 = cont_at(cpu, h + 1);
    c2 = cont_at(cpu, h + 2);
    if (!s || !c1 || !c2)
        return 0;
    s->seq = 0;
    barrier();
    header(s, SN_RK_PROC_EXEC, 1 + SN_REC_STR_PARTS, pt);
    s->a[0] = p->pid;
    s->a[1] = old_pid;
    s->a[2] = s->a[3] = s->a[4] = 0;
    fn = BPF_CORE_READ(bprm, filename);
    c2->b[0] = 0;
    r = bpf_probe_read_kernel_str(c1->b, SN_REC_CONT_LEN, fn);
    if (r < 0) {
        c1->b[0] = 0;
    } else if (r == SN_REC_CONT_LEN) { /* as sys_enter's string: the text goes on at c2 */
        r = bpf_probe_read_kernel_str(c2->b, SN_REC_CONT_LEN, fn + SN_REC_CONT_LEN - 1);
        if (r == SN_REC_CONT_LEN)
            s->flags |= SN_REC_F_TRUNC;
        else if (r < 0)
            c2->b[0] = 0;
    }
    cont_commit(c1, h + 1, 1);
    cont_commit(c2, h + 2, 2);
    commit(s, h);
    return 0;
}

/* The inode number of the pid namespace task t's pid lives in (its deepest level). */
static __always_inline __u32 pid_ns_inum(struct task_struct *t)
{
    struct pid *pid = t->thread_pid;
    unsigned int lvl = pid->level;

    return BPF_CORE_READ(pid, numbers[lvl & 31].ns, ns.inum);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(rec_proc_fork, struct task_struct *parent, struct task_struct *child)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    int jp = 3, jc = 3; /* judge() of each side */
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;
    struct pid *cpid;
    __u32 lvl, n;
    __s32 *vt;

    if (pred_needs || scope_bits) {
        jp = judge(parent, 1, -1);
        jc = judge(child, 0, -1);
        if (jp != 3 && jc != 3)
            return 0;
    }
    if (reserve(2, &h, &s, &c) || !c)
        return 0;
    header(s, SN_RK_PROC_FORK, 2, pt);
    __builtin_memset(c->b, 0, SN_REC_CONT_LEN);
    s->a[0] = parent->pid;
    s->a[1] = parent->tgid;
    s->a[2] = child->pid;
    s->a[3] = child->tgid;
    s->a[4] = pid_ns_inum(parent) | (__u64)pid_ns_inum(child) << 32;
    bpf_probe_read_kernel(c->b, 16, parent->comm);
    bpf_probe_read_kernel(c->b + 16, 16, child->comm);
    cpid = child->thread_pid;
    lvl = cpid->level;
    n = lvl + 1 < 4 ? lvl + 1 : 4;
    c->b[32] = (__u8)n;
    vt = (__s32 *)(c->b + 36);
    for (__u32 i = 0; i < 4; i++) /* the child's tid from the root namespace down */
        if (i < n)
            vt[i] = BPF_CORE_READ(cpid, numbers[i].nr);
    if (!(jp & 1)) { /* another tenant's side */
        s->tid = s->pid = 0;
        s->a[0] = s->a[1] = 0;
        __builtin_memset(c->b, 0, 16);
        s->flags |= SN_REC_F_REDACTED;
    }
    if (!(jc & 1)) {
        s->a[2] = s->a[3] = 0;
        __builtin_memset(c->b + 16, 0, SN_REC_CONT_LEN - 16);
        s->flags |= SN_REC_F_REDACTED;
    }
    cont_header(c, h);
    commit(s, h);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rec_proc_exit, struct task_struct *p, bool group_dead)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;

    if (!wanted(-1) || reserve(1, &h, &s, &c))
        return 0;
    header(s, SN_RK_PROC_EXIT, 1, pt);
    s->a[0] = p->pid;
    s->a[1] = p->prio - 100;
    s->a[2] = group_dead;
    bpf_probe_read_kernel(&s->a[3], 16, p->comm);
    commit(s, h);
    return 0;
}

/* --- block: block_rq_issue, block_rq_complete --- */

/* requests issued and recorded under a predicate or a scope, so that their completion (in
 * interrupt context, any task) is recorded with them and only with them (without either, every
 * completion is). A plain preallocated hash: an LRU hash lost entries between an issue on one
 * CPU and its completion (test_rec_workload saw 1 completion of 8), and one allocating on
 * update failed the first updates of a new session (0 of 8). An entry is deleted at its request's
 * last completion; a request still in flight when the session stops goes with the map. */
#define RQ_ISSUED 1 /* rq_kept's values: its issue recorded */
#define RQ_QUEUED 2 /* queued by a task the session records, not issued yet */

struct {
    __uint(type, BPF_MAP_TYPE_HASH); /* preallocated: an update never waits for memory */
    __uint(max_entries, 16384);      /* requests are preallocated per tag: a bounded set of keys */
    __type(key, __u64);
    __type(value, __u8);
} rq_kept SEC(".maps");

/* The disk's dev_t as the kernel encodes it (major << 20 | minor), as lttng-modules writes it. */
static __always_inline __u32 rq_dev(struct request *rq)
{
    struct gendisk *d = BPF_CORE_READ(rq, q, disk);

    if (!d)
        return 0;
    return (__u32)BPF_CORE_READ(d, major) << 20 | (__u32)BPF_CORE_READ(d, first_minor);
}

#define SN_REQ_OP_MASK 0xffu /* the kernel's REQ_OP_MASK: (1 << REQ_OP_BITS) - 1 */

/* lttng-modules' rwbs bits (RWBS_FLAG_*) of an operation and its flags. */
static __always_inline __u32 rq_rwbs(__u32 opf)
{
    __u32 op = opf & SN_REQ_OP_MASK, r = 0;

    if (op == REQ_OP_WRITE)
        r = 1;
    else if (op == REQ_OP_DISCARD)
        r = 2;
    else if (op == REQ_OP_SECURE_ERASE)
        r = 2 | 0x80;
    else if (op == REQ_OP_FLUSH)
        r = 0x100;
    else if (op == REQ_OP_READ)
        r = 4;
    if (opf & (1u << __REQ_RAHEAD))
        r |= 0x8;
    if (opf & (1u << __REQ_SYNC))
        r |= 0x20;
    if (opf & (1u << __REQ_META))
        r |= 0x40;
    if (opf & (1u << __REQ_PREFLUSH))
        r |= 0x400;
    if (opf & (1u << __REQ_FUA))
        r |= 0x200;
    return r;
}

/* The cgroup (v2) owning rq's I/O, its first bio's blkcg's; 0 when unknown, or when the blkio
 * controller is cgroup v1's (its ids are another hierarchy's: not comparable). */
static __always_inline __u64 rq_cgroup(struct request *rq)
{
    struct cgroup *cg;
    struct bio *b = rq->bio;

    if (!b)
        return 0;
    cg = BPF_CORE_READ(b, bi_blkg, blkcg, css.cgroup);
    if (!cg || BPF_CORE_READ(cg, root, hierarchy_id) != 0) /* the default hierarchy's is 0 */
        return 0;
    return BPF_CORE_READ(cg, kn, id);
}

/* A request queued (in the submitting task's context) by a task the session records: its
 * issue, perhaps from a kworker later, is recorded as that task's. Records nothing itself. */
SEC("tp_btf/block_rq_insert")
int BPF_PROG(rec_block_insert, struct request *rq)
{
    __u64 key = (__u64)rq;
    __u8 v = RQ_QUEUED;

    if ((pred_needs || scope_bits) && wanted(-1))
        bpf_map_update_elem(&rq_kept, &key, &v, BPF_ANY);
    return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(rec_block_issue, struct request *rq)
{
    __u64 pt = bpf_get_current_pid_tgid(), h, key = (__u64)rq;
    __u32 opf = rq->cmd_flags, op = opf & SN_REQ_OP_MASK, bytes = rq->__data_len;
    int pass = op == REQ_OP_DRV_IN || op == REQ_OP_DRV_OUT; /* passthrough: no sectors */
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;
    __u8 one = RQ_ISSUED;
    int own = 1; /* issued by a task the session records */

    /* the issuing task's; or, issued by another (a kworker dispatching a queued request), the
     * task's that queued it (rec_block_insert), or the I/O's owner's when blk-cgroup knows it:
     * then the issuing task, not recorded, is redacted (tid, pid, comm) */
    if ((pred_needs || scope_bits) && !wanted(-1)) {
        __u8 *v = bpf_map_lookup_elem(&rq_kept, &key);
        __u64 cg;

        if (!v || *v != RQ_QUEUED) {
            cg = rq_cgroup(rq);
            if (!cg || judge_cg(bpf_get_current_task_btf(), 1, -1, cg) != 3)
                return 0;
        }
        own = 0;
    }
    if (reserve(1, &h, &s, &c))
        return 0;
    header(s, SN_RK_BLOCK_ISSUE, 1, pt);
    s->a[0] = rq_dev(rq) | (__u64)rq_rwbs(opf) << 32;
    s->a[1] = pass || rq->__sector == (sector_t)-1 ? 0 : rq->__sector;
    s->a[2] = (pass ? 0 : bytes >> 9) | (__u64)bytes << 32;
    s->a[3] = s->a[4] = 0;
    if (own) {
        bpf_get_current_comm(&s->a[3], 16);
    } else {
        s->tid = s->pid = 0;
        s->flags |= SN_REC_F_REDACTED;
    }
    commit(s, h);
    if (pred_needs || scope_bits) /* without either, every completion is kept */
        bpf_map_update_elem(&rq_kept, &key, &one, BPF_ANY);
    return 0;
}

/* blk_status_to_errno() (block/blk-core.c's table; statuses it lacks: -EIO) */
static __always_inline int blk_errno(blk_status_t st)
{
    switch (st) {
    case 0: /* BLK_STS_OK */
        return 0;
    case 1: /* NOTSUPP */
        return -95;
    case 2: /* TIMEOUT */
        return -110;
    case 3: /* NOSPC */
        return -28;
    case 4: /* TRANSPORT */
        return -67;
    case 5: /* TARGET */
        return -121;
    case 6: /* RESV_CONFLICT */
        return -52;
    case 7: /* MEDIUM */
        return -61;
    case 8: /* PROTECTION */
        return -84;
    case 9: /* RESOURCE */
        return -12;
    case 12: /* AGAIN */
        return -11;
    default:
        return -5;
    }
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(rec_block_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
    __u64 pt = bpf_get_current_pid_tgid(), h, key = (__u64)rq;
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;
    int err;

    if (pred_needs || scope_bits) {
        __u8 *v = bpf_map_lookup_elem(&rq_kept, &key);

        if (!v || *v != RQ_ISSUED) /* its issue was not recorded */
            return 0;
        if (nr_bytes >= rq->__data_len) /* the last part: forget it */
            bpf_map_delete_elem(&rq_kept, &key);
    }
    if (reserve(1, &h, &s, &c))
        return 0;
    header(s, SN_RK_BLOCK_COMPLETE, 1, pt);
    s->a[0] = rq_dev(rq) | (__u64)rq_rwbs(rq->cmd_flags) << 32;
    s->a[1] = rq->__sector;
    s->a[2] = nr_bytes >> 9;
    err = blk_errno(error);
    s->a[3] = (__u64)(__s64)err;
    s->a[4] = 0;
    if (scope_bits && !(judge(bpf_get_current_task_btf(), 1, -1) & 1)) { /* interrupted task */
        s->tid = s->pid = 0;
        s->flags |= SN_REC_F_REDACTED;
    }
    commit(s, h);
    return 0;
}

/* --- tcp: inet_sock_set_state (connect, accept), tcp_retransmit_skb --- */

/* the socket's addresses into c (IPv6, IPv4 mapped), its ports, family and states into s */
static __always_inline void sock_fields(struct sn_rec_slot *s, struct sn_rec_cont *c,
                                        const struct sock *sk, __u32 oldst, __u32 newst)
{
    __u16 fam = sk->__sk_common.skc_family;
    __u16 sport = sk->__sk_common.skc_num;
    __u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);

    __builtin_memset(c->b, 0, 32);
    if (fam == 10 /* AF_INET6 */) {
        bpf_probe_read_kernel(c->b, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_probe_read_kernel(c->b + 16, 16, &sk->__sk_common.skc_v6_daddr);
    } else {
        c->b[10] = c->b[11] = c->b[26] = c->b[27] = 0xff;
        bpf_probe_read_kernel(c->b + 12, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_probe_read_kernel(c->b + 28, 4, &sk->__sk_common.skc_daddr);
    }
    s->a[0] = (__u64)sk;
    s->a[1] = sport | (__u64)dport << 16 | (__u64)(fam & 0xff) << 32 | (__u64)(oldst & 0xff) << 40 |
              (__u64)(newst & 0xff) << 48;
    s->a[2] = s->a[3] = s->a[4] = 0;
}

/* The socket's cgroup (v2): its creator's, kept by the socket; 0 when unknown. */
static __always_inline __u64 sock_cgroup(const struct sock *sk)
{
    return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline int tcp_event(const struct sock *sk, __u16 type, __u32 oldst, __u32 newst,
                                     __u64 skb, int err)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;

    if ((pred_needs || scope_bits) &&
        judge_cg(bpf_get_current_task_btf(), 1, -1, sock_cgroup(sk)) != 3)
        return 0;
    if (reserve(2, &h, &s, &c) || !c)
        return 0;
    header(s, type, 2, pt);
    sock_fields(s, c, sk, oldst, newst);
    s->a[2] = skb;
    s->a[3] = (__u64)(__s64)err;
    cont_header(c, h);
    commit(s, h);
    return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(rec_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
    if (sk->sk_protocol != IPPROTO_TCP || newstate != TCP_ESTABLISHED)
        return 0;
    if (oldstate == TCP_SYN_SENT)
        return tcp_event(sk, SN_RK_TCP_CONNECT, oldstate, newstate, 0, 0);
    if (oldstate == TCP_SYN_RECV)
        return tcp_event(sk, SN_RK_TCP_ACCEPT, oldstate, newstate, 0, 0);
    return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(rec_tcp_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
    __u32 st = sk->__sk_common.skc_state;

    return tcp_event(sk, SN_RK_TCP_RETRANSMIT, st, st, (__u64)skb, err);
}

/* --- faults: page_fault_user, page_fault_kernel (x86) --- */

static __always_inline int fault(__u16 type, unsigned long address, struct pt_regs *regs,
                                 unsigned long error_code)
{
    __u64 pt = bpf_get_current_pid_tgid(), h;
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;

    if (!wanted(-1) || reserve(1, &h, &s, &c))
        return 0;
    header(s, type, 1, pt);
    s->a[0] = address;
    s->a[1] = regs->ip;
    s->a[2] = error_code;
    s->a[3] = s->a[4] = 0;
    commit(s, h);
    return 0;
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(rec_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
    return fault(SN_RK_FAULT_USER, address, regs, error_code);
}

SEC("tp_btf/page_fault_kernel")
int BPF_PROG(rec_fault_kernel, unsigned long address, struct pt_regs *regs,
             unsigned long error_code)
{
    return fault(SN_RK_FAULT_KERNEL, address, regs, error_code);
}

/* --- usdt: one program, attached once per probe of the session (its cookie: the probe's
 * index) --- */

SEC("usdt")
int rec_usdt(struct pt_regs *ctx)
{
    __u64 pt = bpf_get_current_pid_tgid(), h, idx = bpf_usdt_cookie(ctx);
    int n = bpf_usdt_arg_cnt(ctx);
    struct sn_rec_slot *s;
    struct sn_rec_cont *c;
    __u64 *b;
    long v;

    if (n < 0)
        n = 0;
    if (n > SN_REC_USDT_ARGS)
        n = SN_REC_USDT_ARGS;
    if (!wanted(-1) || reserve(n > 4 ? 2 : 1, &h, &s, &c))
        return 0;
    header(s, SN_RK_USDT, n > 4 ? 2 : 1, pt);
    s->a[0] = (idx & 0xffffffff) | (__u64)n << 32;
    for (int i = 0; i < 4; i++) {
        v = 0;
        if (i < n)
            bpf_usdt_arg(ctx, i, &v);
        s->a[1 + i] = v;
    }
    if (c) {
        b = (__u64 *)c->b;
        for (int i = 4; i < SN_REC_USDT_ARGS; i++) {
            v = 0;
            if (i < n)
                bpf_usdt_arg(ctx, i, &v);
            b[i - 4] = v;
        }
        cont_header(c, h);
    }
    commit(s, h);
    return 0;
}
