// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's probes, one BPF object: the slot machinery every metric shares (slots, the
 * predicate interpreter, aggregation; bpf/slots.h, docs/agent.md) and each metric's
 * programs, which the agent attaches one metric at a time. The interpreter itself is in
 * bpf/pred_eval.bpf.h, shared with the flight recorder (rec.bpf.c).
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
#include <bpf/usdt.bpf.h>

#include "bpf/cgroup_scope.bpf.h"
#include "bpf/pred_eval.bpf.h"
#include "bpf/slots.h"
#include "core/hist_bucket.h"

char LICENSE[] SEC("license") = "GPL";

__u32 gen = 0;          /* the generation being written; user space flips it */
__s64 wall_off = 0;     /* CLOCK_REALTIME - CLOCK_MONOTONIC in ns, kept current by user space */
__u32 want_cputime = 0; /* some syscall slot needs cputime: offcpu_switch is attached */

/* The agent's own process (its tgid), whose events no program counts: the agent's collection
 * would otherwise be a busy process in every system-call view. 0: count everything
 * (--trace-self). Set before load, so the check folds away when it is 0. */
const volatile __u32 self_tgid = 0;

/* Cells in a table instead of agg0/agg1 (set before load; docs/agent.md): the table's cells
 * per generation, and the rows of its counters (possible CPUs). */
const volatile __u32 use_table = 0;
const volatile __u32 cells_cap = 1;
const volatile __u32 ncpus = 1;

/*
 * What user space needs to drain a generation without asking the kernel (shared memory: .bss
 * is mapped into the agent, so reading and clearing these costs no system call). Each flag is
 * set after the write it announces, and only when not set already (a read first: an event of
 * a busy slot does not dirty a shared cache line). User space clears a flag before draining
 * what it announces, so a write that lands after the drain sets it again for the next one.
 */
__u32 nkeys[SN_MAX_SLOTS * 2];      /* keys the key cap admitted, per slot and generation */
__u8 agg_dirty[2];                  /* agg<g> got a new cell */
__u8 arr_dirty[SN_ARRAY_SLOTS * 2]; /* hist_arr has counts of (slot, generation) */
__u8 drops_dirty[2];                /* some drops counter of the generation is not zero */
__u32 ncells[2];                    /* the table's cells made per generation (may pass the cap) */
__u32 epoch[2];                     /* bumped by user space each time it drains a generation */

static __always_inline void mark(__u8 *flag)
{
    if (!*flag)
        *flag = 1;
}

/* Is tgid the agent's own process (and is that excluded)? */
static __always_inline int is_self(__u32 tgid)
{
    return self_tgid && tgid == self_tgid;
}

static __always_inline int self_current(void)
{
    return self_tgid && (__u32)(bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

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

/* The cells, one map per generation: user space drains the old generation's map whole with
 * batched lookup-and-delete, a system call per few thousand cells, and an idle one not at all
 * (agg_dirty). */
struct sn_agg_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, SN_AGG_ENTRIES);
    __type(key, struct sn_agg_key);
    __type(value, __u64);
};
struct sn_agg_map agg0 SEC(".maps"), agg1 SEC(".maps");

/*
 * The cell table (use_table): a cell is a number the kernel gives it on its first event of a
 * generation (ncells[g]), its key at cellkeys[g * cap + n] and its counts at cellcnt[(g * ncpus
 * + cpu) * cap + n], a row per CPU so that counting takes no atomic. Both arrays are mapped into
 * user space, which reads the cells, zeroes their counts and bumps epoch[g] without a system
 * call. cellidx finds a key's cell: key -> epoch << 32 | n, valid while the epoch is the
 * generation's current one, so nothing is ever deleted; stale entries age out of the LRU.
 */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1);
    __type(key, struct sn_agg_key);
    __type(value, __u64);
} cellidx SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sn_agg_key);
} cellkeys SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} cellcnt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SN_ARRAY_SLOTS * 2 * SN_U64_ORDS);
    __type(key, __u32);
    __type(value, __u64);
} hist_arr SEC(".maps");

/* The same histograms with the cell table (use_table), mapped into user space:
 * hist_tab[((slot * 2 + gen) * ncpus + cpu) * SN_U64_ORDS + i], a row per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} hist_tab SEC(".maps");

/* the key cap (bpf/slots.h): the discrete keys each slot has admitted in each generation (a
 * map per generation; how many per slot are in nkeys); both emptied by user space when it
 * drains the generation. Consulted only for a new cell. Each admitted key has a cell of its own in
 * agg (or lost one to a full map), so agg's size bounds the set; entries are allocated as keys
 * come. */
struct sn_keyset_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, SN_AGG_ENTRIES);
    __type(key, struct sn_keyset_key);
    __type(value, __u8);
};
struct sn_keyset_map keyset0 SEC(".maps"), keyset1 SEC(".maps");

/* cgroup_scope (bpf/cgroup_scope.bpf.h): read once per event when a slot has an UNDER leaf */

/* per generation and slot, at SN_DROP_IDX(g, s, kind): kind 0 events over the key cap
 * (counted under "other"), 1 lost to a full map. By generation, like the cells they go with:
 * read after the flip, the old generation's are complete and the new one's are not mixed in. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2 * SN_MAX_SLOTS * 2);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

/* a system call's start: when, and the thread's off-CPU total then (for cputime) */
struct sys_start {
    __u64 ts, off0;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct sys_start);
} start_ns SEC(".maps");

/* per thread: when it last left a CPU (0 while on one), and its off-CPU time so far; kept by
 * offcpu_switch while some instrumentation needs syscall cputime */
struct offcpu {
    __u64 out, total;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct offcpu);
} offcpu SEC(".maps");

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

/* psargs: per-thread memo of the hash, and the text by hash for user space */
struct psargs_memo {
    __u64 mm, hash;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct psargs_memo);
} psargs_memo SEC(".maps");

struct psargs_buf {
    char s[SN_PSARGS_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 8192);
    __type(key, __u64);
    __type(value, struct psargs_buf);
} psargs_text SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct psargs_buf);
} psargs_scratch SEC(".maps");

/* too large for the 512-byte stack next to everything else: one per CPU */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct event);
} scratch SEC(".maps");

enum { KEY_OVER_CAP = 0, KEY_IN = 1, KEY_NO_ROOM = 2 };

/* Is key among slot s's admitted keys of generation g? Admits it when the slot has fewer than
 * its cap. KEY_NO_ROOM: the set itself is full (agg is then full too). */
static __always_inline int admit_key(__u32 s, __u32 g, __u32 cap, const char *key)
{
    struct sn_keyset_key sk;
    __u32 idx = s * 2 + g, *nk;
    void *set = g ? (void *)&keyset1 : (void *)&keyset0;
    __u8 one = 1;
    long rc;

    if (idx >= SN_MAX_SLOTS * 2)
        return KEY_OVER_CAP;
    __builtin_memset(&sk, 0, sizeof(sk));
    sk.slot_gen = s << 1 | g;
    __builtin_memcpy(sk.key, key, SN_KEYLEN);
    if (bpf_map_lookup_elem(set, &sk)) /* a new bucket of a known key */
        return KEY_IN;
    nk = &nkeys[idx];
    /* read first: a slot at its cap takes no atomic per event over it */
    if (*nk >= cap || __sync_fetch_and_add(nk, 1) >= cap)
        return KEY_OVER_CAP;
    rc = bpf_map_update_elem(set, &sk, &one, BPF_NOEXIST);
    if (rc == 0)
        return KEY_IN;
    /* another CPU admitted it meanwhile (EEXIST), or the set is full: give the count back */
    __sync_fetch_and_add(nk, (__u32)-1);
    return rc == -EEXIST ? KEY_IN : KEY_NO_ROOM;
}

/* This CPU's counter of cell n of generation g in the table. */
static __always_inline __u64 *table_counter(__u32 g, __u32 n)
{
    __u32 i = (g * ncpus + bpf_get_smp_processor_id()) * cells_cap + n;
    return bpf_map_lookup_elem(&cellcnt, &i);
}

/* The counter of k's cell in generation g (agg<g>, or the table), or NULL when it has none. */
static __always_inline __u64 *agg_lookup(__u32 g, const struct sn_agg_key *k)
{
    if (use_table) {
        __u64 *e = bpf_map_lookup_elem(&cellidx, k), v;
        if (!e || g > 1)
            return NULL;
        v = *(volatile __u64 *)e;
        return (__u32)(v >> 32) == epoch[g] ? table_counter(g, (__u32)v) : NULL;
    }
    return g ? bpf_map_lookup_elem(&agg1, k) : bpf_map_lookup_elem(&agg0, k);
}

/* Makes k's cell in generation g of the table and returns its counter; NULL when the table is
 * full. Two CPUs making the same cell at once: one's number wins in cellidx and both count
 * there (the other number keeps the key and no counts, which user space skips). */
static __always_inline __u64 *table_make(__u32 g, const struct sn_agg_key *k)
{
    __u32 ep, n, ki;
    struct sn_agg_key *slot;
    __u64 nv, old, *e;

    if (g > 1)
        return NULL;
    ep = epoch[g];
    n = __sync_fetch_and_add(&ncells[g], 1);
    if (n >= cells_cap)
        return NULL;
    ki = g * cells_cap + n;
    slot = bpf_map_lookup_elem(&cellkeys, &ki);
    if (!slot)
        return NULL;
    __builtin_memcpy(slot, k, sizeof(*k));
    nv = (__u64)ep << 32 | n;
    e = bpf_map_lookup_elem(&cellidx, k);
    if (!e) {
        if (bpf_map_update_elem(&cellidx, k, &nv, BPF_NOEXIST) == 0)
            return table_counter(g, n);
        e = bpf_map_lookup_elem(&cellidx, k); /* made meanwhile */
        if (!e)
            return NULL;
    }
    old = *(volatile __u64 *)e;
    if ((__u32)(old >> 32) == ep) /* made meanwhile, this epoch */
        return table_counter(g, (__u32)old);
    if (__sync_val_compare_and_swap(e, old, nv) == old) /* a stale entry: ours now */
        return table_counter(g, n);
    old = *(volatile __u64 *)e;
    return (__u32)(old >> 32) == ep ? table_counter(g, (__u32)old) : NULL;
}

/* Adds a drop of kind (0 over the key cap, 1 map full) to slot s in generation g. */
static __always_inline void count_drop(__u32 s, __u32 g, __u32 kind)
{
    __u32 di = SN_DROP_IDX(g, s, kind);
    __u64 *d = bpf_map_lookup_elem(&drops, &di);

    if (d)
        *d += 1;
    if (g < 2)
        mark(&drops_dirty[g]);
}

/* Counts ev for slot s (sl) in generation g. Global, like pred_eval(). An existing cell costs
 * one lookup; only a new one consults the key cap. */
__noinline int count_event(__u32 s, const struct sn_slot *sl, const struct event *ev, __u32 g)
{
    struct sn_agg_key k;
    __u64 one = 1, *v;
    __u32 f;
    __u16 ord = 0;
    long rc;

    if (!sl || !ev || s >= SN_MAX_SLOTS || g > 1)
        return 0;
    f = sl->num_field;
    if (f < SN_EV_NNUM)
        ord = sn_ord_of_u64((__u64)ev->num[f]);
    /* a keyless numeric decomposition: one per-CPU array slot per bucket, no hash */
    if (f < SN_EV_NNUM && sl->key_field == SN_NO_FIELD && s < SN_ARRAY_SLOTS) {
        __u32 i = ord == SN_BUCKET_ORD_ZERO ? 0 : (__u32)ord - SN_U64_ORD_FIRST + 1;
        if (i < SN_U64_ORDS) {
            __u32 idx = (s * 2 + g) * SN_U64_ORDS + i;
            __u64 *c;
            if (use_table) {
                idx = ((s * 2 + g) * ncpus + bpf_get_smp_processor_id()) * SN_U64_ORDS + i;
                c = bpf_map_lookup_elem(&hist_tab, &idx);
            } else {
                c = bpf_map_lookup_elem(&hist_arr, &idx);
            }
            if (c) {
                *c += 1;
                mark(&arr_dirty[(s * 2 + g) & (SN_ARRAY_SLOTS * 2 - 1)]);
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
    v = agg_lookup(g, &k);
    if (v) {
        *v += 1;
        return 0;
    }
    if (f != SN_NO_FIELD) { /* a new cell: is its key within the cap? */
        int in = admit_key(s, g, sl->key_cap, k.key);
        if (in == KEY_NO_ROOM)
            goto lost;
        if (in == KEY_OVER_CAP) { /* to "other", in the same bucket */
            count_drop(s, g, 0);
            __builtin_memset(k.key, 0, SN_KEYLEN);
            k.other = 1;
            v = agg_lookup(g, &k);
            if (v) {
                *v += 1;
                return 0;
            }
        }
    }
    if (use_table) {
        v = table_make(g, &k);
        if (!v)
            goto lost;
        *v += 1;
        return 0;
    }
    if (g)
        rc = bpf_map_update_elem(&agg1, &k, &one, BPF_NOEXIST);
    else
        rc = bpf_map_update_elem(&agg0, &k, &one, BPF_NOEXIST);
    if (rc == 0) {
        mark(&agg_dirty[g]);
        return 0;
    }
    v = agg_lookup(g, &k); /* another CPU created it meanwhile */
    if (v) {
        *v += 1;
        return 0;
    }
lost:
    count_drop(s, g, 1);
    return 0;
}

/* The cgroup prefixes ev's container is under (SN_SC_SCOPE), when a slot's UNDER leaves need
 * them: one lookup per event, however many slots and leaves read them. */
static __always_inline void scope_field(struct event *ev, __u32 needs)
{
    if (needs & (1u << SN_SC_SCOPE)) {
        __u64 id = (__u64)ev->num[SN_SC_CONTAINER];
        __u64 *bits = bpf_map_lookup_elem(&cgroup_scope, &id);
        ev->num[SN_SC_SCOPE] = bits ? (__s64)*bits : 0;
    }
}

/* Evaluates every slot listed for metric against ev and counts it where the predicate holds. */
static __always_inline void run_slots(const struct sn_metric_slots *ms, struct event *ev,
                                      __u32 metric, __u32 g)
{
    __u32 n = ms->n;

    scope_field(ev, ms->needs);

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

/* The start of every probe: the metric's slot list (in *ms) and this CPU's event record, or
 * NULL when no slot listens to the metric. */
static __always_inline struct event *begin(__u32 metric, struct sn_metric_slots **ms)
{
    __u32 zero = 0;
    struct event *ev;

    *ms = bpf_map_lookup_elem(&by_metric, &metric);
    ev = bpf_map_lookup_elem(&scratch, &zero);
    return *ms && ev && (*ms)->n > 0 ? ev : NULL;
}

/*
 * The hash of the current process's arguments (psargs: argv joined by spaces, at most
 * SN_PSARGS_LEN - 1 bytes, trailing spaces dropped; FNV-1a 64, the same as user space's
 * sn_psargs_hash()), with the text left in psargs_text for user space to render. Computed
 * once per thread and program image (the task's mm), then remembered in task storage.
 * Global: the verifier checks its loop once.
 */
struct psargs_run {
    struct psargs_buf *b;
    __u32 len, last; /* bytes read; bytes up to the last non-space */
    __u64 h;
};

/* bpf_loop() callbacks (checked once, not per byte): NULs between arguments become spaces,
 * noting where the text ends; then FNV-1a over the text, clearing what follows it */
static long psargs_space(__u32 i, void *arg)
{
    struct psargs_run *r = arg;
    if (i >= r->len || i >= SN_PSARGS_LEN)
        return 1;
    if (r->b->s[i] == 0)
        r->b->s[i] = ' ';
    if (r->b->s[i] != ' ')
        r->last = i + 1;
    return 0;
}

static long psargs_hash(__u32 i, void *arg)
{
    struct psargs_run *r = arg;
    if (i >= SN_PSARGS_LEN)
        return 1;
    if (i < r->last)
        r->h = (r->h ^ (__u8)r->b->s[i]) * 1099511628211ULL;
    else
        r->b->s[i] = 0;
    return 0;
}

__noinline __u64 cur_psargs(void)
{
    struct task_struct *t = bpf_get_current_task_btf();
    struct psargs_memo *m;
    struct psargs_buf *b;
    struct psargs_run run = {.h = 14695981039346656037ULL};
    __u64 mm, start, end, len, h;
    __u32 zero = 0;

    m = bpf_task_storage_get(&psargs_memo, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    b = bpf_map_lookup_elem(&psargs_scratch, &zero);
    if (!m || !b)
        return 0;
    mm = (__u64)BPF_CORE_READ(t, mm);
    if (mm && m->mm == mm)
        return m->hash;
    start = BPF_CORE_READ(t, mm, arg_start);
    end = BPF_CORE_READ(t, mm, arg_end);
    len = end > start ? end - start : 0;
    if (len > SN_PSARGS_LEN - 1)
        len = SN_PSARGS_LEN - 1;
    __builtin_memset(b->s, 0, sizeof(b->s));
    if (len == 0 || bpf_probe_read_user(b->s, len & (SN_PSARGS_LEN - 1), (void *)start) != 0)
        return 0;
    run.b = b;
    run.len = (__u32)len;
    bpf_loop(SN_PSARGS_LEN - 1, psargs_space, &run, 0);
    bpf_loop(SN_PSARGS_LEN - 1, psargs_hash, &run, 0);
    h = run.h;
    m->mm = mm;
    m->hash = h;
    bpf_map_update_elem(&psargs_text, &h, b, BPF_ANY);
    return h;
}

/* The fields of task (the current one, or the one leaving the CPU) that several metrics
 * share, as far as needed. Plain loads through the task's BTF pointer (the verifier makes
 * them fault-safe) cost less than the helpers that copy the same bytes; comm is always NUL
 * padded by the kernel. */
static __always_inline void task_fields(struct event *ev, struct task_struct *task, __u32 needs)
{
    if (needs & (1u << SN_SC_EXECNAME))
        __builtin_memcpy(ev->str[SN_SC_EXECNAME], task->comm, SN_KEYLEN);
    if (needs & (1u << SN_SC_PEXECNAME))
        __builtin_memcpy(ev->str[SN_SC_PEXECNAME], task->real_parent->comm, SN_KEYLEN);
    if (needs & (1u << SN_SC_PID))
        ev->num[SN_SC_PID] = task->tgid;
    if (needs & (1u << SN_SC_PPID))
        ev->num[SN_SC_PPID] = task->real_parent->tgid;
    if (needs & (1u << SN_SC_CONTAINER))
        ev->num[SN_SC_CONTAINER] = (__s64)bpf_get_current_cgroup_id();
    if (needs & (1u << SN_SC_SUBSECOND))
        ev->num[SN_SC_SUBSECOND] =
            (__s64)(((bpf_ktime_get_ns() + wall_off) % 1000000000) / 1000000);
    if (needs & (1u << SN_SC_PSARGS))
        ev->num[SN_SC_PSARGS] = (__s64)cur_psargs();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct sys_start *st;

    if (is_self(task->tgid)) /* first: the agent's own calls cost it nothing more */
        return 0;
    st = bpf_task_storage_get(&start_ns, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!st)
        return 0;
    st->ts = bpf_ktime_get_ns();
    if (want_cputime) {
        struct offcpu *o = bpf_task_storage_get(&offcpu, task, 0, 0);
        st->off0 = o ? o->total : 0;
    }
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
    struct task_struct *task = bpf_get_current_task_btf();
    __u32 metric = SN_METRIC_SYSCALLS, g = gen & 1, needs;
    struct sn_metric_slots *ms;
    struct sys_start *st;
    struct event *ev;
    __u64 now;

    st = bpf_task_storage_get(&start_ns, task, 0, 0);
    if (!st || !st->ts)
        return 0;
    now = bpf_ktime_get_ns();
    ev = begin(metric, &ms);
    if (!ev) {
        st->ts = 0;
        return 0;
    }
    needs = ms->needs;
    ev->num[SN_SC_LATENCY] = (__s64)(now - st->ts);
    st->ts = 0;
    if (needs & (1u << SN_SC_CPUTIME)) {
        struct offcpu *o = bpf_task_storage_get(&offcpu, task, 0, 0);
        __u64 off = o && o->total > st->off0 ? o->total - st->off0 : 0;
        ev->num[SN_SC_CPUTIME] =
            off < (__u64)ev->num[SN_SC_LATENCY] ? ev->num[SN_SC_LATENCY] - (__s64)off : 0;
    }
    task_fields(ev, task, needs);
    if (needs & (1u << SN_SC_SYSCALL))
        ev->num[SN_SC_SYSCALL] = BPF_CORE_READ(regs, orig_ax);
    if (needs & (1u << SN_SC_ERRNO))
        ev->num[SN_SC_ERRNO] = ret < 0 && ret > -4096 ? -ret : 0;

    run_slots(ms, ev, SN_METRIC_SYSCALLS, g);
    return 0;
}

/* syscall cputime: off-CPU time per thread, from each switch out to the switch back in */
SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
    __u64 now = bpf_ktime_get_ns();
    struct offcpu *o;

    o = bpf_task_storage_get(&offcpu, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (o)
        o->out = now;
    o = bpf_task_storage_get(&offcpu, next, 0, 0);
    if (o && o->out) {
        o->total += now - o->out;
        o->out = 0;
    }
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 metric = SN_METRIC_PROC_EXECS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (self_current())
        return 0;
    ev = begin(metric, &ms);
    if (!ev)
        return 0;
    task_fields(ev, bpf_get_current_task_btf(), ms->needs);
    run_slots(ms, ev, SN_METRIC_PROC_EXECS, gen & 1);
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
    __u32 metric = SN_METRIC_PROC_FORKS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (self_current() || BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
        return 0; /* ours, or a thread, not a process */
    ev = begin(metric, &ms);
    if (!ev)
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
    __u32 metric = SN_METRIC_PROC_EXITS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (self_current() || BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
        return 0; /* ours, or a thread: the process ends with its main thread */
    ev = begin(metric, &ms);
    if (!ev)
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
    __u32 metric = SN_METRIC_DISK_OPS, needs;
    __u64 key = (__u64)rq, now = bpf_ktime_get_ns();
    struct sn_metric_slots *ms;
    struct rq_start *st;
    struct event *ev;

    st = bpf_map_lookup_elem(&rq_started, &key);
    if (!st)
        return 0;
    ev = begin(metric, &ms);
    if (ev) {
        needs = ms->needs;
        ev->num[SN_SC_LATENCY] = (__s64)(now - st->ts);
        ev->num[SN_SC_SIZE] = (__s64)st->bytes;
        ev->num[SN_SC_OFFSET] = (__s64)(st->sector * 512);
        ev->num[SN_SC_OPTYPE] = st->op;
        if (needs & (1u << SN_SC_DEVICE)) {
            zero16(ev->str[SN_SC_DEVICE]);
            BPF_CORE_READ_STR_INTO(&ev->str[SN_SC_DEVICE], rq, q, disk, disk_name);
        }
        run_slots(ms, ev, SN_METRIC_DISK_OPS, gen & 1);
    }
    bpf_map_delete_elem(&rq_started, &key);
    return 0;
}

static __always_inline void stamp_wakeup(struct task_struct *p)
{
    __u64 *ts;

    if (is_self(p->tgid)) /* never stamped: its switch in counts nothing */
        return;
    ts = bpf_task_storage_get(&woken_ns, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
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
    __u32 metric = SN_METRIC_RUNQUEUE, needs;
    struct sn_metric_slots *ms;
    struct event *ev;
    __u64 *ts, now;

    ts = bpf_task_storage_get(&woken_ns, next, 0, 0);
    if (!ts || !*ts)
        return 0;
    now = bpf_ktime_get_ns();
    ev = begin(metric, &ms);
    if (ev) {
        needs = ms->needs;
        ev->num[SN_SC_LATENCY] = (__s64)(now - *ts);
        if (needs & (1u << SN_SC_EXECNAME))
            BPF_CORE_READ_INTO(&ev->str[SN_SC_EXECNAME], next, comm);
        if (needs & (1u << SN_SC_PID))
            ev->num[SN_SC_PID] = BPF_CORE_READ(next, tgid);
        if (needs & (1u << SN_SC_CONTAINER))
            ev->num[SN_SC_CONTAINER] = (__s64)BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
        run_slots(ms, ev, SN_METRIC_RUNQUEUE, gen & 1);
    }
    *ts = 0;
    return 0;
}

/* --- fs.logical_ops ----------------------------------------------------------------------- */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SN_FS_SYSCALLS);
    __type(key, __u32);
    __type(value, struct sn_fs_sys);
} fs_sys SEC(".maps");

/* device (the kernel's dev_t: major << 20 | minor) -> file-system type, from user space's
 * reading of /proc/self/mountinfo, for operations by path */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, char[SN_KEYLEN]);
} fs_devs SEC(".maps");

struct fs_start {
    __u64 ts, pos, buf;
    __u8 op, how;
    char fstype[SN_KEYLEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct fs_start);
} fs_started SEC(".maps");

/* The open file fd of task t, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
    struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
    struct file **fds;
    struct file *f = NULL;

    if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    fds = BPF_CORE_READ(fdt, fd);
    bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
    return f;
}

static __always_inline void fstype_of(char *out, struct file *f)
{
    const char *name = BPF_CORE_READ(f, f_inode, i_sb, s_type, name);
    zero16(out);
    if (name)
        bpf_probe_read_kernel_str(out, SN_KEYLEN, name);
}

static __always_inline __u64 sys_arg(struct pt_regs *regs, __u32 i)
{
    switch (i) {
    case 0:
        return BPF_CORE_READ(regs, di);
    case 1:
        return BPF_CORE_READ(regs, si);
    case 2:
        return BPF_CORE_READ(regs, dx);
    case 3:
        return BPF_CORE_READ(regs, r10);
    case 4:
        return BPF_CORE_READ(regs, r8);
    default:
        return BPF_CORE_READ(regs, r9);
    }
}

SEC("tp_btf/sys_enter")
int BPF_PROG(fs_enter, struct pt_regs *regs, long id)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct sn_fs_sys *fs;
    struct fs_start *st;
    __u32 nr = (__u32)id;

    if (id < 0 || nr >= SN_FS_SYSCALLS || is_self(task->tgid))
        return 0;
    fs = bpf_map_lookup_elem(&fs_sys, &nr);
    if (!fs || fs->op == SN_FS_NONE)
        return 0;
    st = bpf_task_storage_get(&fs_started, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!st)
        return 0;
    st->op = fs->op;
    st->how = fs->how;
    st->pos = 0;
    st->buf = 0;
    zero16(st->fstype);
    if (fs->how == SN_FSH_FD) {
        struct file *f = fd_file(task, (long)(int)sys_arg(regs, 0));
        if (f) {
            fstype_of(st->fstype, f);
            st->pos = fs->posarg != SN_FS_NOARG ? sys_arg(regs, fs->posarg)
                                                : (__u64)BPF_CORE_READ(f, f_pos);
        }
    } else if (fs->how == SN_FSH_STAT || fs->how == SN_FSH_STATX) {
        st->buf = sys_arg(regs, fs->argi);
    }
    st->ts = bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(fs_exit, struct pt_regs *regs, long ret)
{
    struct task_struct *task = bpf_get_current_task_btf();
    __u32 metric = SN_METRIC_FS_OPS, needs, dev = 0;
    struct sn_metric_slots *ms;
    struct fs_start *st;
    struct event *ev;
    __u64 now;

    st = bpf_task_storage_get(&fs_started, task, 0, 0);
    if (!st || !st->ts)
        return 0;
    now = bpf_ktime_get_ns();
    ev = begin(metric, &ms);
    if (!ev) {
        st->ts = 0;
        return 0;
    }
    needs = ms->needs;
    ev->num[SN_SC_LATENCY] = (__s64)(now - st->ts);
    ev->num[SN_SC_OPTYPE] = st->op;
    ev->num[SN_SC_SIZE] = (st->op == SN_FS_READ || st->op == SN_FS_WRITE) && ret > 0 ? ret : 0;
    ev->num[SN_SC_OFFSET] = (__s64)st->pos;
    if (needs & (1u << SN_SC_TEXT)) {
        __builtin_memcpy(ev->str[SN_SC_TEXT], st->fstype, SN_KEYLEN);
        if (st->how == SN_FSH_RETFD && ret >= 0) {
            struct file *f = fd_file(task, ret);
            if (f)
                fstype_of(ev->str[SN_SC_TEXT], f);
        } else if (st->how == SN_FSH_STAT && ret == 0 && st->buf) {
            __u64 d = 0;
            bpf_probe_read_user(&d, sizeof(d), (void *)st->buf); /* st_dev, new_encode_dev() */
            dev = (__u32)((((d >> 8) & 0xfff) << 20) | ((d & 0xff) | ((d >> 12) & 0xfff00)));
        } else if (st->how == SN_FSH_STATX && ret == 0 && st->buf) {
            __u32 mm[2] = {0, 0};
            bpf_probe_read_user(
                mm, sizeof(mm),
                (void *)(st->buf + __builtin_offsetof(struct statx, stx_dev_major)));
            dev = mm[0] << 20 | (mm[1] & 0xfffff);
        }
        if (dev) {
            char *name = bpf_map_lookup_elem(&fs_devs, &dev);
            if (name)
                __builtin_memcpy(ev->str[SN_SC_TEXT], name, SN_KEYLEN);
        }
        /* no file to ask (an open or stat that failed, a bad descriptor) or a device not in
         * the mount table: a name that says so rather than an empty key */
        if (((__u64 *)ev->str[SN_SC_TEXT])[0] == 0)
            __builtin_memcpy(ev->str[SN_SC_TEXT], SN_FSTYPE_UNKNOWN "\0\0\0\0\0\0\0", SN_KEYLEN);
    }
    st->ts = 0;
    task_fields(ev, task, needs);
    run_slots(ms, ev, SN_METRIC_FS_OPS, gen & 1);
    return 0;
}

/* --- tcp.connects, tcp.accepts, tcp.retransmits --------------------------------------------- */

#define SN_AF_INET     2
#define SN_AF_INET6    10
#define SN_IPPROTO_TCP 6

/* what is known of a connect() when its SYN leaves: the process, for the handshake's end */
struct conn_start {
    __u64 ts;
    __s64 pid, ppid, cgroup, psargs;
    char comm[SN_KEYLEN], pcomm[SN_KEYLEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct conn_start);
} tcp_syn_sent SEC(".maps");

/* raddr (16 bytes: IPv6, or IPv4 mapped), rport, lport and container of a socket */
static __always_inline void sock_fields(struct event *ev, const struct sock *sk, __u32 needs)
{
    __u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);

    if (needs & (1u << SN_SC_TEXT)) {
        char *a = ev->str[SN_SC_TEXT];
        zero16(a);
        if (fam == SN_AF_INET) {
            __u32 v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
            a[10] = (char)0xff;
            a[11] = (char)0xff;
            __builtin_memcpy(a + 12, &v4, 4);
        } else if (fam == SN_AF_INET6) {
            BPF_CORE_READ_INTO((char(*)[16])a, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        }
    }
    ev->num[SN_SC_RPORT] = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    ev->num[SN_SC_LPORT] = BPF_CORE_READ(sk, __sk_common.skc_num);
    if (needs & (1u << SN_SC_CONTAINER))
        ev->num[SN_SC_CONTAINER] = (__s64)BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_connect_state, const struct sock *sk, const int oldstate, const int newstate)
{
    __u32 metric = SN_METRIC_TCP_CONNECTS, needs;
    __u64 key = (__u64)sk;
    struct sn_metric_slots *ms;
    struct conn_start *cs;
    struct event *ev;

    if (BPF_CORE_READ(sk, sk_protocol) != SN_IPPROTO_TCP)
        return 0;
    if (newstate == TCP_SYN_SENT) { /* in connect(): the process is current */
        struct task_struct *task = bpf_get_current_task_btf();
        struct conn_start c = {.ts = bpf_ktime_get_ns()};
        if (is_self(task->tgid)) /* no start: its end counts nothing */
            return 0;
        ms = bpf_map_lookup_elem(&by_metric, &metric);
        if (!ms)
            return 0;
        needs = ms->needs;
        c.pid = (__s64)(bpf_get_current_pid_tgid() >> 32);
        c.ppid = BPF_CORE_READ(task, real_parent, tgid);
        c.cgroup = (__s64)bpf_get_current_cgroup_id();
        bpf_get_current_comm(c.comm, SN_KEYLEN);
        BPF_CORE_READ_INTO(&c.pcomm, task, real_parent, comm);
        if (needs & (1u << SN_SC_PSARGS))
            c.psargs = (__s64)cur_psargs();
        bpf_map_update_elem(&tcp_syn_sent, &key, &c, BPF_ANY);
        return 0;
    }
    if (oldstate != TCP_SYN_SENT)
        return 0;
    cs = bpf_map_lookup_elem(&tcp_syn_sent, &key);
    if (!cs)
        return 0;
    ev = begin(metric, &ms);
    if (newstate == TCP_ESTABLISHED && ev) {
        needs = ms->needs;
        ev->num[SN_SC_LATENCY] = (__s64)(bpf_ktime_get_ns() - cs->ts);
        ev->num[SN_SC_PID] = cs->pid;
        ev->num[SN_SC_PPID] = cs->ppid;
        ev->num[SN_SC_PSARGS] = cs->psargs;
        __builtin_memcpy(ev->str[SN_SC_EXECNAME], cs->comm, SN_KEYLEN);
        __builtin_memcpy(ev->str[SN_SC_PEXECNAME], cs->pcomm, SN_KEYLEN);
        sock_fields(ev, sk, needs & ~(1u << SN_SC_CONTAINER));
        ev->num[SN_SC_CONTAINER] = cs->cgroup;
        if (needs & (1u << SN_SC_SUBSECOND))
            ev->num[SN_SC_SUBSECOND] =
                (__s64)(((bpf_ktime_get_ns() + wall_off) % 1000000000) / 1000000);
        run_slots(ms, ev, SN_METRIC_TCP_CONNECTS, gen & 1);
    }
    bpf_map_delete_elem(&tcp_syn_sent, &key);
    return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_accept_state, const struct sock *sk, const int oldstate, const int newstate)
{
    __u32 metric = SN_METRIC_TCP_ACCEPTS;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (oldstate != TCP_SYN_RECV || newstate != TCP_ESTABLISHED ||
        BPF_CORE_READ(sk, sk_protocol) != SN_IPPROTO_TCP)
        return 0;
    ev = begin(metric, &ms);
    if (!ev)
        return 0;
    /* the handshake as the server saw it: SYN-ACK out to ACK in, measured by TCP itself
     * (the first RTT sample, in srtt_us << 3) */
    ev->num[SN_SC_LATENCY] = (__s64)(BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3) * 1000;
    sock_fields(ev, sk, ms->needs);
    if (ms->needs & (1u << SN_SC_SUBSECOND))
        ev->num[SN_SC_SUBSECOND] =
            (__s64)(((bpf_ktime_get_ns() + wall_off) % 1000000000) / 1000000);
    run_slots(ms, ev, SN_METRIC_TCP_ACCEPTS, gen & 1);
    return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
    __u32 metric = SN_METRIC_TCP_RETRANS;
    struct sn_metric_slots *ms;

    struct event *ev = begin(metric, &ms);

    if (!ev)
        return 0;
    sock_fields(ev, sk, ms->needs);
    ev->num[SN_SC_OPTYPE] = BPF_CORE_READ(sk, __sk_common.skc_state);
    run_slots(ms, ev, SN_METRIC_TCP_RETRANS, gen & 1);
    return 0;
}

/* --- cpu.thread_executions, cpu.thread_samples -------------------------------------------- */

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} oncpu_ns SEC(".maps");

static __always_inline __s64 leavereason(bool preempt, unsigned int state)
{
    if (preempt || state == 0)
        return SN_LEAVE_PREEMPTED;
    if (state & (0x10 | 0x20 | 0x80)) /* EXIT_DEAD, EXIT_ZOMBIE, TASK_DEAD */
        return SN_LEAVE_EXITED;
    if (state & (0x4 | 0x8)) /* __TASK_STOPPED, __TASK_TRACED */
        return SN_LEAVE_STOPPED;
    if (state & 0x2) /* TASK_UNINTERRUPTIBLE */
        return SN_LEAVE_BLOCKED;
    if (state & 0x1) /* TASK_INTERRUPTIBLE */
        return SN_LEAVE_SLEEPING;
    return SN_LEAVE_OTHER;
}

/* One execution of a thread: from the switch that put it on a CPU to the one that takes it
 * off (this one, which still runs as prev: the current task's fields are prev's). */
SEC("tp_btf/sched_switch")
int BPF_PROG(texec_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
             unsigned int prev_state)
{
    __u32 metric = SN_METRIC_THREAD_EXECS;
    struct sn_metric_slots *ms;
    struct event *ev;
    __u64 *ts, now = bpf_ktime_get_ns();

    if (BPF_CORE_READ(prev, pid) != 0 && !is_self(prev->tgid)) {
        ts = bpf_task_storage_get(&oncpu_ns, prev, 0, 0);
        ev = begin(metric, &ms);
        if (ts && *ts && ev) {
            ev->num[SN_SC_LATENCY] = (__s64)(now - *ts);
            ev->num[SN_SC_OPTYPE] = leavereason(preempt, prev_state);
            task_fields(ev, prev, ms->needs);
            run_slots(ms, ev, SN_METRIC_THREAD_EXECS, gen & 1);
        }
    }
    if (BPF_CORE_READ(next, pid) != 0 && !is_self(next->tgid)) {
        ts = bpf_task_storage_get(&oncpu_ns, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (ts)
            *ts = now;
    }
    return 0;
}

/* 99 times a second on each CPU (user space opens the perf events): whatever runs there,
 * the idle task included (execname swapper/N, pid 0). */
SEC("perf_event")
int thread_sample(void *ctx)
{
    __u32 metric = SN_METRIC_THREAD_SAMPLES;
    struct sn_metric_slots *ms;
    struct event *ev;

    if (self_current())
        return 0;
    ev = begin(metric, &ms);
    if (!ev)
        return 0;
    task_fields(ev, bpf_get_current_task_btf(), ms->needs);
    run_slots(ms, ev, SN_METRIC_THREAD_SAMPLES, gen & 1);
    return 0;
}

/* --- postgres.queries, usdt.probes -------------------------------------------------------- */

struct usdt_start {
    __u64 ts;
    __s64 arg0;
    char text[SN_KEYLEN];
};

/* {thread, slot or metric} -> the start probe's time and data, until the done probe */
struct usdt_key {
    __u32 tid, which;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct usdt_key);
    __type(value, struct usdt_start);
} usdt_started SEC(".maps");

SEC("usdt")
int pg_query_start(struct pt_regs *ctx)
{
    struct usdt_key k = {(__u32)bpf_get_current_pid_tgid(), SN_MAX_SLOTS};
    struct usdt_start st = {0};
    long q = 0;

    bpf_usdt_arg(ctx, 0, &q);
    if (q)
        bpf_probe_read_user_str(st.text, SN_KEYLEN, (void *)q); /* querysubstr */
    st.ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&usdt_started, &k, &st, BPF_ANY);
    return 0;
}

SEC("usdt")
int pg_query_done(struct pt_regs *ctx)
{
    struct usdt_key k = {(__u32)bpf_get_current_pid_tgid(), SN_MAX_SLOTS};
    __u32 metric = SN_METRIC_PG_QUERIES;
    struct sn_metric_slots *ms;
    struct usdt_start *st;
    struct event *ev;

    st = bpf_map_lookup_elem(&usdt_started, &k);
    if (!st)
        return 0;
    ev = begin(metric, &ms);
    if (ev) {
        ev->num[SN_SC_LATENCY] = (__s64)(bpf_ktime_get_ns() - st->ts);
        __builtin_memcpy(ev->str[SN_SC_TEXT], st->text, SN_KEYLEN);
        task_fields(ev, bpf_get_current_task_btf(), ms->needs);
        run_slots(ms, ev, SN_METRIC_PG_QUERIES, gen & 1);
    }
    bpf_map_delete_elem(&usdt_started, &k);
    return 0;
}

/* usdt.probes: each instrumentation attaches its own pair, with its slot as the cookie. */
SEC("usdt")
int usdt_start(struct pt_regs *ctx)
{
    struct usdt_key k = {(__u32)bpf_get_current_pid_tgid(), (__u32)bpf_usdt_cookie(ctx)};
    struct usdt_start st = {0};
    long a = 0;

    if (bpf_usdt_arg_cnt(ctx) > 0)
        bpf_usdt_arg(ctx, 0, &a);
    st.arg0 = a;
    st.ts = bpf_ktime_get_ns();
    bpf_map_update_elem(&usdt_started, &k, &st, BPF_ANY);
    return 0;
}

SEC("usdt")
int usdt_done(struct pt_regs *ctx)
{
    __u32 s = (__u32)bpf_usdt_cookie(ctx);
    struct usdt_key k = {(__u32)bpf_get_current_pid_tgid(), s};
    struct sn_metric_slots *ms;
    struct usdt_start *st;
    struct sn_slot *sl;
    struct event *ev;
    __u32 metric = SN_METRIC_USDT;

    st = bpf_map_lookup_elem(&usdt_started, &k);
    if (!st)
        return 0;
    ev = begin(metric, &ms);
    sl = s < SN_MAX_SLOTS ? bpf_map_lookup_elem(&slots, &s) : NULL;
    if (ev && sl && sl->active && sl->metric == SN_METRIC_USDT) {
        ev->num[SN_SC_LATENCY] = (__s64)(bpf_ktime_get_ns() - st->ts);
        ev->num[SN_SC_ARG0] = st->arg0;
        task_fields(ev, bpf_get_current_task_btf(), ms->needs);
        scope_field(ev, ms->needs);
        if (pred_eval(&sl->pred, ev))
            count_event(s, sl, ev, gen & 1);
    }
    bpf_map_delete_elem(&usdt_started, &k);
    return 0;
}
