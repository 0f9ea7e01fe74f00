/*
 * The predicate program the kernel interprets for each slot, shared by src/agent/predicate.c
 * (which compiles CA's JSON predicates into it) and the BPF programs. Fixed-width types only.
 *
 * A program is postfix: LEAF instructions push the result of one comparison of an event field
 * with a constant, AND and OR pop two results and push one, TRUE pushes true. The empty
 * predicate is the single instruction TRUE. At most SN_PRED_MAX_INSNS instructions and a stack
 * of at most SN_PRED_MAX_DEPTH results, so the kernel's loop is bounded and its stack a u64.
 *
 * Fields are numbered by the metric's event record. A numeric field compares as a signed
 * 64-bit integer; a string field compares its first 15 bytes (Linux's comm length), NUL
 * padded, for eq and ne only.
 *
 * UNDER is a leaf on the container: true when the event's cgroup is a cgroup path or one of
 * its descendants. The kernel knows only cgroup ids, so user space keeps the map cgroup_scope
 * (cgroup id -> a bit per prefix in use, refreshed from the cgroup2 tree once a second), the
 * probes put map[container] in the event's SN_SC_SCOPE field, and a kernel UNDER leaf is
 * (num[field] & n) != 0 with field SN_SC_SCOPE and n the prefix's bit. As compiled
 * (agent/predicate.h) the leaf names the path instead; the engine rewrites it into that form
 * when it installs the slot.
 */
#ifndef SN_BPF_PRED_H
#define SN_BPF_PRED_H

#if !defined(__bpf__)
#include <linux/types.h>
#endif

#define SN_PRED_MAX_INSNS 32
#define SN_PRED_MAX_DEPTH 32
#define SN_PRED_STRLEN    16

enum sn_pred_op {
    SN_PRED_TRUE = 0,
    SN_PRED_EQ,
    SN_PRED_NE,
    SN_PRED_LT,
    SN_PRED_LE,
    SN_PRED_GT,
    SN_PRED_GE,
    SN_PRED_AND,
    SN_PRED_OR,
    SN_PRED_UNDER,
};

struct sn_pred_insn {
    __u8 op;     /* enum sn_pred_op */
    __u8 field;  /* the event field a comparison reads */
    __u8 is_str; /* compare the 16-byte string s rather than the number n */
    __u8 pad[5];
    union {
        __s64 n;
        char s[SN_PRED_STRLEN];
    };
};

/* A program as the kernel runs it (in user space, struct sn_pred of agent/predicate.h adds
 * the text of its UNDER leaves' paths). */
struct sn_pred_prog {
    __u32 n; /* instructions used, 1..SN_PRED_MAX_INSNS */
    __u32 pad;
    struct sn_pred_insn insn[SN_PRED_MAX_INSNS];
};

#endif
