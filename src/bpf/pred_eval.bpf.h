/*
 * The kernel's predicate interpreter (bpf/pred.h's postfix programs) and the event record it
 * reads, shared by the instrumentation probes (probes.bpf.c) and the flight recorder's writer
 * (rec.bpf.c): one interpreter for both, so a predicate means the same in a heatmap and in a
 * recording. Include it once per BPF object, after vmlinux.h and the libbpf headers; it
 * defines the global function pred_eval() (checked once by the verifier, on its own).
 *
 * The caller fills only the fields the predicate reads (its needs mask: a bit per
 * enum sn_field_id) and for UNDER leaves the SN_SC_SCOPE bits of the event's cgroup.
 */
#ifndef SN_BPF_PRED_EVAL_BPF_H
#define SN_BPF_PRED_EVAL_BPF_H

#include "bpf/pred.h"
#include "bpf/slots.h"

struct event {
    __s64 num[SN_EV_NNUM];
    char str[SN_EV_NSTR][SN_KEYLEN];
};

/* Strings in events and predicates are NUL padded to 16 bytes: two 8-byte compares. */
static __always_inline int str_eq(const char *a, const char *b)
{
    const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
    return x[0] == y[0] && x[1] == y[1];
}

/* Zeroes a 16-byte string slot before a read that does not pad. */
static __always_inline void zero16(char *s)
{
    ((__u64 *)s)[0] = 0;
    ((__u64 *)s)[1] = 0;
}

struct pred_run {
    const struct sn_pred_prog *p;
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
        case SN_PRED_UNDER: /* x: the container's scope bits, k: the prefix's */
            r = (x & k) != 0;
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
    case SN_PRED_UNDER:
        return (x & k) != 0;
    default:
        return 0;
    }
}

/*
 * Runs slot predicate p on ev. A global function: the verifier checks it once on its own
 * instead of once per slot and path of the caller.
 */
__noinline int pred_eval(const struct sn_pred_prog *p, const struct event *ev)
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

#endif
