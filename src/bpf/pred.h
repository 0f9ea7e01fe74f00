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

struct sn_pred {
    __u32 n; /* instructions used, 1..SN_PRED_MAX_INSNS */
    __u32 pad;
    struct sn_pred_insn insn[SN_PRED_MAX_INSNS];
};

#endif
