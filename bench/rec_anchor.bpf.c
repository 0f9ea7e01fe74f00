// SPDX-License-Identifier: GPL-2.0
/*
 * The anchors of bench_recorder: what any tp_btf program on sys_enter/sys_exit costs (empty
 * programs) and what one clock read adds (the recorder's records are stamped with
 * bpf_ktime_get_ns). The bench loads one pair at a time (autoload).
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 sink[256 * 8];

SEC("tp_btf/sys_enter")
int BPF_PROG(empty_enter, struct pt_regs *regs, long id)
{
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(empty_exit, struct pt_regs *regs, long ret)
{
    return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(clock_enter, struct pt_regs *regs, long id)
{
    __u32 cpu = bpf_get_smp_processor_id();

    if (cpu < 256)
        sink[cpu * 8] = bpf_ktime_get_ns();
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(clock_exit, struct pt_regs *regs, long ret)
{
    __u32 cpu = bpf_get_smp_processor_id();

    if (cpu < 256)
        sink[cpu * 8] = bpf_ktime_get_ns();
    return 0;
}
