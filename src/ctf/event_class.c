/*
 * Event classes and payload encoding (event_class.h). Each class gathers ev's values in its
 * field order (gather()), and one loop writes them by kind, so the bytes follow the field list
 * that tsdl.c declares.
 */
#include "ctf/event_class.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct val {
    uint64_t u;    /* integers (two's complement for signed ones) */
    const void *p; /* strings, comm arrays, args[6], sequences */
};

#define F(n, k)                                                                                    \
    {                                                                                              \
        .name = (n), .kind = (k)                                                                   \
    }
/* argi of the system call classes' fields that are not one argument */
#define ARG_RET (-1)
#define ARG_ID  (-2)
#define ARG_ALL (-3) /* args[6] */

static const struct sn_ctf_class fixed[] = {
    {.name = "sched_switch",
     .type = SN_REC_SCHED_SWITCH,
     .nfields = 7,
     .fields = {F("prev_comm", SN_CTF_COMM), F("prev_tid", SN_CTF_I32), F("prev_prio", SN_CTF_I32),
                F("prev_state", SN_CTF_I64), F("next_comm", SN_CTF_COMM), F("next_tid", SN_CTF_I32),
                F("next_prio", SN_CTF_I32)}},
    {.name = "sched_wakeup",
     .type = SN_REC_SCHED_WAKEUP,
     .nfields = 4,
     .fields = {F("comm", SN_CTF_COMM), F("tid", SN_CTF_I32), F("prio", SN_CTF_I32),
                F("target_cpu", SN_CTF_I32)}},
    {.name = "sched_wakeup_new",
     .type = SN_REC_SCHED_WAKEUP_NEW,
     .nfields = 4,
     .fields = {F("comm", SN_CTF_COMM), F("tid", SN_CTF_I32), F("prio", SN_CTF_I32),
                F("target_cpu", SN_CTF_I32)}},
    {.name = "sched_process_exec",
     .type = SN_REC_PROC_EXEC,
     .nfields = 3,
     .fields = {F("filename", SN_CTF_STRING), F("tid", SN_CTF_I32), F("old_tid", SN_CTF_I32)}},
    {.name = "sched_process_fork",
     .type = SN_REC_PROC_FORK,
     .nfields = 10,
     .fields = {F("parent_comm", SN_CTF_COMM), F("parent_tid", SN_CTF_I32),
                F("parent_pid", SN_CTF_I32), F("parent_ns_inum", SN_CTF_U32),
                F("child_comm", SN_CTF_COMM), F("child_tid", SN_CTF_I32),
                F("_vtids_length", SN_CTF_U8), F("vtids", SN_CTF_SEQ_I32),
                F("child_pid", SN_CTF_I32), F("child_ns_inum", SN_CTF_U32)}},
    {.name = "sched_process_exit",
     .type = SN_REC_PROC_EXIT,
     .nfields = 4,
     .fields = {F("comm", SN_CTF_COMM), F("tid", SN_CTF_I32), F("prio", SN_CTF_I32),
                F("group_dead", SN_CTF_U8)}},
    {.name = "syscall_entry_unknown",
     .type = SN_REC_SYS_ENTER,
     .nfields = 2,
     .fields = {F("id", SN_CTF_I32), F("args", SN_CTF_ARGS6)},
     .argi = {ARG_ID, ARG_ALL}},
    {.name = "syscall_exit_unknown",
     .type = SN_REC_SYS_EXIT,
     .nfields = 3,
     .fields = {F("id", SN_CTF_I32), F("ret", SN_CTF_I64), F("args", SN_CTF_ARGS6)},
     .argi = {ARG_ID, ARG_RET, ARG_ALL}},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

/* after the system calls' classes, in this order (enum sn_rec_type's) */
static const struct sn_ctf_class group_classes[] = {
    {.name = "block_rq_issue",
     .type = SN_REC_BLOCK_ISSUE,
     .nfields = 7,
     .fields = {F("dev", SN_CTF_U32), F("sector", SN_CTF_U64), F("nr_sector", SN_CTF_U32),
                F("bytes", SN_CTF_U32), F("tid", SN_CTF_I32), F("rwbs", SN_CTF_U32),
                F("comm", SN_CTF_COMM)}},
    {.name = "block_rq_complete",
     .type = SN_REC_BLOCK_COMPLETE,
     .nfields = 5,
     .fields = {F("dev", SN_CTF_U32), F("sector", SN_CTF_U64), F("nr_sector", SN_CTF_U32),
                F("error", SN_CTF_I32), F("rwbs", SN_CTF_U32)}},
    {.name = "net_tcp_connect",
     .type = SN_REC_TCP_CONNECT,
     .nfields = 8,
     .fields = {F("skaddr", SN_CTF_X64), F("sport", SN_CTF_U16), F("dport", SN_CTF_U16),
                F("family", SN_CTF_U16), F("saddr", SN_CTF_ADDR16), F("daddr", SN_CTF_ADDR16),
                F("oldstate", SN_CTF_I32), F("newstate", SN_CTF_I32)}},
    {.name = "net_tcp_accept",
     .type = SN_REC_TCP_ACCEPT,
     .nfields = 8,
     .fields = {F("skaddr", SN_CTF_X64), F("sport", SN_CTF_U16), F("dport", SN_CTF_U16),
                F("family", SN_CTF_U16), F("saddr", SN_CTF_ADDR16), F("daddr", SN_CTF_ADDR16),
                F("oldstate", SN_CTF_I32), F("newstate", SN_CTF_I32)}},
    {.name = "net_tcp_retransmit_skb",
     .type = SN_REC_TCP_RETRANSMIT,
     .nfields = 9,
     .fields = {F("skaddr", SN_CTF_X64), F("skbaddr", SN_CTF_X64), F("sport", SN_CTF_U16),
                F("dport", SN_CTF_U16), F("family", SN_CTF_U16), F("saddr", SN_CTF_ADDR16),
                F("daddr", SN_CTF_ADDR16), F("state", SN_CTF_I32), F("err", SN_CTF_I32)}},
    {.name = "x86_exceptions_page_fault_user",
     .type = SN_REC_FAULT_USER,
     .nfields = 3,
     .fields = {F("address", SN_CTF_X64), F("ip", SN_CTF_X64), F("error_code", SN_CTF_X8)}},
    {.name = "x86_exceptions_page_fault_kernel",
     .type = SN_REC_FAULT_KERNEL,
     .nfields = 3,
     .fields = {F("address", SN_CTF_X64), F("ip", SN_CTF_X64), F("error_code", SN_CTF_X8)}},
};
#define NGROUPS (sizeof(group_classes) / sizeof(group_classes[0]))
_Static_assert(SN_REC_FAULT_KERNEL - SN_REC_BLOCK_ISSUE + 1 == NGROUPS, "one class per type");

static const char *const usdt_arg[SN_REC_USDT_NARGS] = {
    "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "arg6", "arg7", "arg8", "arg9", "arg10"};
_Static_assert(NFIXED == SN_CTF_SYSCALL_BASE, "syscall classes start after the fixed ones");

static void syscall_class(struct sn_ctf_class *c, const struct sn_syscall *sc, int exit)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "syscall_%s_%s", exit ? "exit" : "entry", sc->name);
    c->type = exit ? SN_REC_SYS_EXIT : SN_REC_SYS_ENTER;
    c->sc = sc;
    if (exit) {
        c->fields[c->nfields] = (struct sn_ctf_field)F("ret", SN_CTF_I64);
        c->argi[c->nfields++] = ARG_RET;
    }
    for (int i = 0; i < sc->nargs; i++) {
        if (!(sc->args[i].dir & (exit ? SN_SC_OUT : SN_SC_IN)))
            continue;
        c->fields[c->nfields] = (struct sn_ctf_field)F(sc->args[i].name, sc->args[i].kind);
        c->argi[c->nfields++] = (int8_t)i;
    }
}

int sn_ctf_classes_build(struct sn_ctf_classes *cls, const struct sn_syscall_tab *tab)
{
    cls->n = NFIXED + 2 * tab->n + NGROUPS;
    cls->groups = NFIXED + 2 * tab->n;
    cls->usdt = cls->n;
    cls->tab = tab;
    cls->c = calloc(cls->n, sizeof(*cls->c));
    if (!cls->c) {
        cls->n = 0;
        return -ENOMEM;
    }
    memcpy(cls->c, fixed, sizeof(fixed));
    for (size_t i = 0; i < tab->n; i++) {
        syscall_class(&cls->c[NFIXED + 2 * i], &tab->sc[i], 0);
        syscall_class(&cls->c[NFIXED + 2 * i + 1], &tab->sc[i], 1);
    }
    memcpy(&cls->c[cls->groups], group_classes, sizeof(group_classes));
    for (size_t i = 0; i < cls->n; i++)
        cls->c[i].id = (uint32_t)i;
    return 0;
}

int sn_ctf_classes_add_usdt(struct sn_ctf_classes *cls, uint32_t probe, const char *provider,
                            const char *name, unsigned nargs)
{
    struct sn_ctf_class *c;
    size_t k;

    if (nargs > SN_REC_USDT_NARGS)
        return -EINVAL;
    for (size_t i = cls->usdt; i < cls->n; i++)
        if (cls->c[i].probe == probe)
            return -EINVAL;
    c = realloc(cls->c, (cls->n + 1) * sizeof(*c));
    if (!c)
        return -ENOMEM;
    cls->c = c;
    c = &cls->c[cls->n];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "usdt_%s_%s", provider, name);
    for (k = 0; c->name[k]; k++) {
        char ch = c->name[k];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            c->name[k] = '_';
    }
    c->type = SN_REC_USDT;
    c->probe = probe;
    c->nfields = (uint8_t)nargs;
    for (unsigned i = 0; i < nargs; i++)
        c->fields[i] = (struct sn_ctf_field)F(usdt_arg[i], SN_CTF_I64);
    c->id = (uint32_t)cls->n++;
    return 0;
}

void sn_ctf_classes_free(struct sn_ctf_classes *cls)
{
    free(cls->c);
    cls->c = NULL;
    cls->n = 0;
}

const struct sn_ctf_class *sn_ctf_class_of(const struct sn_ctf_classes *cls,
                                           const struct sn_rec_event *ev)
{
    switch (ev->type) {
    case SN_REC_SYS_ENTER:
    case SN_REC_SYS_EXIT: {
        int exit = ev->type == SN_REC_SYS_EXIT;
        const struct sn_syscall *sc = sn_syscall_tab_find(cls->tab, ev->u.sys.nr);
        if (!sc)
            return &cls->c[6 + exit];
        return &cls->c[NFIXED + 2 * (size_t)(sc - cls->tab->sc) + (size_t)exit];
    }
    case SN_REC_SCHED_SWITCH:
        return &cls->c[0];
    case SN_REC_SCHED_WAKEUP:
        return &cls->c[1];
    case SN_REC_SCHED_WAKEUP_NEW:
        return &cls->c[2];
    case SN_REC_PROC_EXEC:
        return &cls->c[3];
    case SN_REC_PROC_FORK:
        return &cls->c[4];
    case SN_REC_PROC_EXIT:
        return &cls->c[5];
    case SN_REC_USDT:
        for (size_t i = cls->usdt; i < cls->n; i++)
            if (cls->c[i].probe == ev->u.usdt.probe)
                return &cls->c[i];
        return NULL;
    default:
        if (ev->type >= SN_REC_BLOCK_ISSUE && ev->type <= SN_REC_FAULT_KERNEL &&
            cls->groups + NGROUPS <= cls->n)
            return &cls->c[cls->groups + (size_t)(ev->type - SN_REC_BLOCK_ISSUE)];
        return NULL;
    }
}

#define I(x) ((uint64_t)(int64_t)(x)) /* sign-extended: the low bytes are the value's */

/* ev's values in c's field order. */
static void gather(const struct sn_ctf_class *c, const struct sn_rec_event *ev, struct val *v)
{
    switch (ev->type) {
    case SN_REC_SYS_ENTER:
    case SN_REC_SYS_EXIT:
        for (int f = 0; f < c->nfields; f++) {
            int a = c->argi[f];
            if (a >= 0) {
                v[f].u = ev->u.sys.args[a];
                v[f].p = ev->u.sys.str[a];
            } else if (a == ARG_ID) {
                v[f].u = I(ev->u.sys.nr);
            } else if (a == ARG_RET) {
                v[f].u = I(ev->u.sys.ret);
            } else {
                v[f].p = ev->u.sys.args;
            }
        }
        break;
    case SN_REC_SCHED_SWITCH:
        v[0].p = ev->u.sw.prev_comm, v[1].u = I(ev->u.sw.prev_tid);
        v[2].u = I(ev->u.sw.prev_prio), v[3].u = I(ev->u.sw.prev_state);
        v[4].p = ev->u.sw.next_comm, v[5].u = I(ev->u.sw.next_tid);
        v[6].u = I(ev->u.sw.next_prio);
        break;
    case SN_REC_SCHED_WAKEUP:
    case SN_REC_SCHED_WAKEUP_NEW:
        v[0].p = ev->u.wakeup.comm, v[1].u = I(ev->u.wakeup.tid);
        v[2].u = I(ev->u.wakeup.prio), v[3].u = I(ev->u.wakeup.target_cpu);
        break;
    case SN_REC_PROC_EXEC:
        v[0].p = ev->u.exec.filename, v[1].u = I(ev->u.exec.tid);
        v[2].u = I(ev->u.exec.old_tid);
        break;
    case SN_REC_PROC_FORK:
        v[0].p = ev->u.fork.parent_comm, v[1].u = I(ev->u.fork.parent_tid);
        v[2].u = I(ev->u.fork.parent_pid), v[3].u = ev->u.fork.parent_ns_inum;
        v[4].p = ev->u.fork.child_comm, v[5].u = I(ev->u.fork.child_tid);
        v[6].u = ev->u.fork.nr_vtids > SN_REC_VTIDS ? SN_REC_VTIDS : ev->u.fork.nr_vtids;
        v[7].p = ev->u.fork.vtids;
        v[8].u = I(ev->u.fork.child_pid), v[9].u = ev->u.fork.child_ns_inum;
        break;
    case SN_REC_PROC_EXIT:
        v[0].p = ev->u.exit.comm, v[1].u = I(ev->u.exit.tid);
        v[2].u = I(ev->u.exit.prio), v[3].u = ev->u.exit.group_dead;
        break;
    case SN_REC_BLOCK_ISSUE:
        v[0].u = ev->u.blk.dev, v[1].u = ev->u.blk.sector, v[2].u = ev->u.blk.nr_sector;
        v[3].u = ev->u.blk.bytes, v[4].u = I(ev->u.blk.tid), v[5].u = ev->u.blk.rwbs;
        v[6].p = ev->u.blk.comm;
        break;
    case SN_REC_BLOCK_COMPLETE:
        v[0].u = ev->u.blk.dev, v[1].u = ev->u.blk.sector, v[2].u = ev->u.blk.nr_sector;
        v[3].u = I(ev->u.blk.error), v[4].u = ev->u.blk.rwbs;
        break;
    case SN_REC_TCP_CONNECT:
    case SN_REC_TCP_ACCEPT:
        v[0].u = ev->u.tcp.skaddr, v[1].u = ev->u.tcp.sport, v[2].u = ev->u.tcp.dport;
        v[3].u = ev->u.tcp.family, v[4].p = ev->u.tcp.saddr, v[5].p = ev->u.tcp.daddr;
        v[6].u = I(ev->u.tcp.oldstate), v[7].u = I(ev->u.tcp.newstate);
        break;
    case SN_REC_TCP_RETRANSMIT:
        v[0].u = ev->u.tcp.skaddr, v[1].u = ev->u.tcp.skbaddr, v[2].u = ev->u.tcp.sport;
        v[3].u = ev->u.tcp.dport, v[4].u = ev->u.tcp.family, v[5].p = ev->u.tcp.saddr;
        v[6].p = ev->u.tcp.daddr, v[7].u = I(ev->u.tcp.newstate), v[8].u = I(ev->u.tcp.err);
        break;
    case SN_REC_FAULT_USER:
    case SN_REC_FAULT_KERNEL:
        v[0].u = ev->u.fault.address, v[1].u = ev->u.fault.ip, v[2].u = ev->u.fault.error_code;
        break;
    case SN_REC_USDT:
        for (int f = 0; f < c->nfields && f < SN_REC_USDT_NARGS; f++) /* absent ones: 0 */
            v[f].u = f < (int)ev->u.usdt.nargs ? I(ev->u.usdt.args[f]) : 0;
        break;
    default:
        break;
    }
}

/* Appends n bytes of src at *len (as far as cap allows); *len counts them all. */
static void put(uint8_t *buf, size_t cap, size_t *len, const void *src, size_t n)
{
    if (*len < cap)
        memcpy(buf + *len, src, n <= cap - *len ? n : cap - *len);
    *len += n;
}

static void put_le(uint8_t *buf, size_t cap, size_t *len, uint64_t v, size_t n)
{
    if (*len + n <= cap) { /* the usual case: room for it, no staging copy */
        for (size_t i = 0; i < n; i++)
            buf[*len + i] = (uint8_t)(v >> (8 * i));
        *len += n;
        return;
    }
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(buf, cap, len, b, n);
}

size_t sn_ctf_encode(const struct sn_ctf_class *c, const struct sn_rec_event *ev, uint8_t *buf,
                     size_t cap)
{
    struct val v[SN_CTF_CLASS_FIELDS] = {{0}};
    gather(c, ev, v);
    size_t len = 0;
    for (int f = 0; f < c->nfields; f++) {
        switch (c->fields[f].kind) {
        case SN_CTF_U8:
        case SN_CTF_X8:
            put_le(buf, cap, &len, v[f].u, 1);
            break;
        case SN_CTF_U16:
            put_le(buf, cap, &len, v[f].u, 2);
            break;
        case SN_CTF_ADDR16:
            put(buf, cap, &len, v[f].p, 16);
            break;
        case SN_CTF_I32:
        case SN_CTF_U32:
            put_le(buf, cap, &len, v[f].u, 4);
            break;
        case SN_CTF_I64:
        case SN_CTF_U64:
        case SN_CTF_X64:
            put_le(buf, cap, &len, v[f].u, 8);
            break;
        case SN_CTF_STRING: {
            const char *s = v[f].p ? v[f].p : "";
            put(buf, cap, &len, s, strnlen(s, SN_CTF_STR_MAX));
            put(buf, cap, &len, "", 1);
            break;
        }
        case SN_CTF_COMM:
            put(buf, cap, &len, v[f].p, SN_REC_COMM_LEN);
            break;
        case SN_CTF_ARGS6: {
            const uint64_t *a = v[f].p;
            for (int i = 0; i < SN_REC_ARGS; i++)
                put_le(buf, cap, &len, a[i], 8);
            break;
        }
        case SN_CTF_SEQ_I32: { /* its length is the previous field's value */
            const int32_t *a = v[f].p;
            for (uint64_t i = 0; f > 0 && i < v[f - 1].u; i++)
                put_le(buf, cap, &len, I(a[i]), 4);
            break;
        }
        default:
            break;
        }
    }
    return len;
}
