/*
 * The cgroup_scope map of a BPF object: cgroup id -> a bit per cgroup prefix the cgroup is at or
 * below (bpf/pred.h's UNDER leaves, and a recording's tenant scope), written by user space from
 * the cgroup2 tree (agent/cgroup.h's walk). One definition for every object that has one: the
 * instrumentation probes (probes.bpf.c, filled by the agent's engine) and each flight-recorder
 * session (rec.bpf.c, filled by rec/session.c): same shape, separate maps, since each object
 * has its own. Include it once per object, after vmlinux.h and bpf_helpers.h.
 */
#ifndef SN_BPF_CGROUP_SCOPE_BPF_H
#define SN_BPF_CGROUP_SCOPE_BPF_H

#include "bpf/slots.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, SN_SCOPE_ENTRIES);
    __type(key, __u64);
    __type(value, __u64);
} cgroup_scope SEC(".maps");

#endif
