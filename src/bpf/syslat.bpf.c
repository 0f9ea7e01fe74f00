// SPDX-License-Identifier: GPL-2.0
/*
 * System-call latency into a log-linear histogram, in the kernel: the first of the agent's
 * probes, and the proof that the shared bucket code (core/hist_bucket.h) runs under the
 * verifier. sys_enter keeps the entry time in task-local storage (no pid-keyed hash: ~400 ns
 * cheaper per event here, ref/overhead.md); sys_exit buckets the latency with
 * sn_ord_of_u64() and counts it in a per-CPU array indexed by bucket ordinal, so user space
 * reads a histogram without any per-event wake-up.
 *
 * Knobs (set before load through the skeleton's rodata): cfg_tgid, the process to watch (0:
 * all) and cfg_nr, the system call number (-1: all). Every program returns 0.
 *
 * Later the agent's engine replaces the knobs with slots (predicate, decomposition) read
 * from a map; the shape of the two programs stays.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "core/hist_bucket.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 cfg_tgid = 0;
const volatile __s64 cfg_nr = -1;

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} start_ns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SN_BUCKET_NORD);
    __type(key, __u32);
    __type(value, __u64);
} lat_hist SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
    __u64 *ts;

    if (cfg_nr >= 0 && id != cfg_nr)
        return 0;
    if (cfg_tgid && (bpf_get_current_pid_tgid() >> 32) != cfg_tgid)
        return 0;
    ts = bpf_task_storage_get(&start_ns, bpf_get_current_task_btf(), 0,
                              BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (ts)
        *ts = bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
    __u64 *ts, *count;
    __u32 ord;

    ts = bpf_task_storage_get(&start_ns, bpf_get_current_task_btf(), 0, 0);
    if (!ts || !*ts)
        return 0;
    ord = sn_ord_of_u64(bpf_ktime_get_ns() - *ts);
    *ts = 0;
    count = bpf_map_lookup_elem(&lat_hist, &ord);
    if (count)
        *count += 1;
    return 0;
}
