/*
 * Ring consumers (rec/ring.h): per-CPU cursors, copy and validation of the slots, counts, a
 * stable sort by ts, and the decoding of records into struct sn_rec_event.
 *
 * The ring is written concurrently by BPF programs: every load from it is an atomic load
 * (relaxed for the payload, acquire for the heads and the first reading of a seq), and an
 * acquire fence sits between the copy and the second reading of the seqs, so a record kept has
 * not changed while it was copied.
 */
#include "rec/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SN_REC_USDT_ARGS == SN_REC_USDT_NARGS, "a USDT record holds what the event does");

struct sn_rec_consumer {
    unsigned ncpu;
    uint64_t cursor[];
};

int sn_rec_consumer_new(struct sn_rec_consumer **out, const struct sn_rec_ring_view *view,
                        int start_at_head)
{
    struct sn_rec_consumer *c;

    *out = NULL;
    if (!view->ncpu || !view->nslots || (view->nslots & (view->nslots - 1)))
        return -EINVAL;
    c = calloc(1, sizeof(*c) + view->ncpu * sizeof(c->cursor[0]));
    if (!c)
        return -ENOMEM;
    c->ncpu = view->ncpu;
    for (unsigned i = 0; start_at_head && i < view->ncpu; i++)
        c->cursor[i] = __atomic_load_n(&view->heads[i].head, __ATOMIC_ACQUIRE);
    *out = c;
    return 0;
}

void sn_rec_consumer_free(struct sn_rec_consumer *c)
{
    free(c);
}

uint64_t sn_rec_consumer_cursor(const struct sn_rec_consumer *c, unsigned cpu)
{
    return cpu < c->ncpu ? c->cursor[cpu] : 0;
}

static const struct sn_rec_slot *slot_at(const struct sn_rec_ring_view *v, unsigned cpu, uint64_t i)
{
    return &v->slots[(size_t)cpu * v->nslots + (i & (v->nslots - 1))];
}

static uint32_t seq_of(const struct sn_rec_slot *s, int order)
{
    return __atomic_load_n(&s->seq, order);
}

static void copy_slot(struct sn_rec_slot *dst, const struct sn_rec_slot *src)
{
    const uint64_t *s = (const uint64_t *)src;
    uint64_t *d = (uint64_t *)dst;

    for (size_t k = 0; k < sizeof(*src) / 8; k++)
        d[k] = __atomic_load_n(&s[k], __ATOMIC_RELAXED);
}

/* The type of the slot copied at dst (the header word is copied whole with the seq). */
static int is_cont(const struct sn_rec_slot *s)
{
    return s->type == SN_RK_CONT;
}

/* Stable insertion sort of rec[0..n) by the ts of their first slots (nearly sorted input: a
 * nested interrupt's record can come before the one it interrupted). */
static void sort_by_ts(const struct sn_rec_slot *slots, uint32_t *rec, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t r = rec[i];
        uint64_t ts = slots[r].ts;
        size_t j = i;

        while (j > 0 && slots[rec[j - 1]].ts > ts) {
            rec[j] = rec[j - 1];
            j--;
        }
        rec[j] = r;
    }
}

/* Copies one CPU's window into cs; returns the head read. */
static int copy_cpu(const struct sn_rec_ring_view *v, unsigned cpu, uint64_t cursor,
                    struct sn_rec_cpu_snap *cs, uint64_t *head)
{
    uint64_t h = __atomic_load_n(&v->heads[cpu].head, __ATOMIC_ACQUIRE), from = cursor, i;
    size_t used = 0;
    int lead = 1; /* no first slot seen yet in the window */

    *head = h;
    if (h < cursor) /* a head never goes back: a consumer of another ring */
        return -EINVAL;
    if (h - cursor > v->nslots) {
        from = h - v->nslots;
        cs->overwritten = from - cursor;
    }
    cs->from = from;
    cs->to = h;
    cs->slots = malloc((h - from ? h - from : 1) * sizeof(*cs->slots));
    cs->rec = malloc((h - from ? h - from : 1) * sizeof(*cs->rec));
    if (!cs->slots || !cs->rec)
        return -ENOMEM;
    i = from;
    while (i < h) {
        const struct sn_rec_slot *s = slot_at(v, cpu, i);
        struct sn_rec_slot *d = &cs->slots[used];
        uint32_t n;
        int ok = 1;

        if (seq_of(s, __ATOMIC_ACQUIRE) != sn_rec_seq(i)) {
            cs->torn++; /* being written, or already overwritten again */
            lead = 0;
            i++;
            continue;
        }
        copy_slot(d, s);
        if (is_cont(d)) { /* leading: the tail of a record whose first slot is gone */
            if (lead)
                cs->overwritten++;
            else
                cs->torn++;
            i++;
            continue;
        }
        lead = 0;
        n = d->nslots;
        if (n < 1 || n > SN_REC_MAX_SLOTS || n > h - i) {
            cs->torn++;
            i++;
            continue;
        }
        for (uint32_t k = 1; k < n; k++) {
            const struct sn_rec_slot *sk = slot_at(v, cpu, i + k);
            const struct sn_rec_cont *ck = (const struct sn_rec_cont *)&d[k];

            if (seq_of(sk, __ATOMIC_ACQUIRE) != sn_rec_seq(i + k)) {
                ok = 0;
                break;
            }
            copy_slot(&d[k], sk);
            if (ck->type != SN_RK_CONT || ck->part != k) {
                ok = 0;
                break;
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        for (uint32_t k = 0; ok && k < n; k++)
            if (seq_of(slot_at(v, cpu, i + k), __ATOMIC_RELAXED) != sn_rec_seq(i + k))
                ok = 0;
        if (ok) {
            cs->rec[cs->nrec++] = (uint32_t)used;
            used += n;
        } else {
            cs->torn += n; /* the record's slots, skipped with it */
        }
        i += n;
    }
    sort_by_ts(cs->slots, cs->rec, cs->nrec);
    return 0;
}

void sn_rec_snap_free(struct sn_rec_snap *snap)
{
    for (unsigned c = 0; snap->cpu && c < snap->ncpu; c++) {
        free(snap->cpu[c].slots);
        free(snap->cpu[c].rec);
    }
    free(snap->cpu);
    memset(snap, 0, sizeof(*snap));
}

int sn_rec_snapshot(struct sn_rec_consumer *c, const struct sn_rec_ring_view *view,
                    struct sn_rec_snap *snap)
{
    uint64_t *heads;
    int rc = 0;

    memset(snap, 0, sizeof(*snap));
    if (view->ncpu != c->ncpu)
        return -EINVAL;
    snap->cpu = calloc(view->ncpu, sizeof(*snap->cpu));
    heads = calloc(view->ncpu, sizeof(*heads));
    if (!snap->cpu || !heads) {
        free(heads);
        free(snap->cpu);
        snap->cpu = NULL;
        return -ENOMEM;
    }
    snap->ncpu = view->ncpu;
    for (unsigned cpu = 0; cpu < view->ncpu && rc == 0; cpu++) {
        struct sn_rec_cpu_snap *cs = &snap->cpu[cpu];

        rc = copy_cpu(view, cpu, c->cursor[cpu], cs, &heads[cpu]);
        snap->records += cs->nrec;
        snap->overwritten += cs->overwritten;
        snap->torn += cs->torn;
    }
    if (rc == 0)
        memcpy(c->cursor, heads, view->ncpu * sizeof(*heads));
    else
        sn_rec_snap_free(snap);
    free(heads);
    return rc;
}

static void comm_copy(char dst[SN_REC_COMM_LEN], const void *src)
{
    memcpy(dst, src, SN_REC_COMM_LEN);
}

/* The text of a string argument from its two continuations (rec/rec.h). */
static void str_of(const struct sn_rec_cont *c, char *out)
{
    size_t l1 = strnlen((const char *)c[0].b, SN_REC_CONT_LEN - 1), l2 = 0;

    memcpy(out, c[0].b, l1);
    if (l1 == SN_REC_CONT_LEN - 1) {
        l2 = strnlen((const char *)c[1].b, SN_REC_CONT_LEN - 1);
        memcpy(out + l1, c[1].b, l2);
    }
    out[l1 + l2] = '\0';
}

int sn_rec_slot_decode(const struct sn_rec_slot *rec, unsigned cpu, struct sn_rec_event *ev,
                       char str[SN_REC_STR_MAX])
{
    const struct sn_rec_cont *c1 = (const struct sn_rec_cont *)&rec[1];

    memset(ev, 0, sizeof(*ev));
    ev->cpu = (uint16_t)cpu;
    ev->ts = rec->ts;
    ev->tid = (int32_t)rec->tid;
    ev->pid = (int32_t)rec->pid;
    switch (rec->type) {
    case SN_RK_SYS_ENTRY: {
        uint64_t w = rec->a[0];
        unsigned part = 1, need = 1;

        need += (w & SN_REC_E_ARGS45) ? 1 : 0;
        need += (w & SN_REC_E_STR) ? SN_REC_STR_PARTS : 0;
        if (rec->nslots != need)
            return -EINVAL;
        ev->type = SN_REC_SYS_ENTER;
        ev->u.sys.nr = (int32_t)(uint32_t)w;
        for (int k = 0; k < 4; k++)
            ev->u.sys.args[k] = rec->a[1 + k];
        if (w & SN_REC_E_ARGS45) {
            memcpy(&ev->u.sys.args[4], c1->b, 2 * sizeof(uint64_t));
            part++;
        }
        if (w & SN_REC_E_STR) {
            unsigned k = (unsigned)(w >> SN_REC_E_STRSHIFT) & 7;
            if (k >= SN_REC_ARGS)
                return -EINVAL;
            str_of((const struct sn_rec_cont *)&rec[part], str);
            ev->u.sys.str[k] = str;
        }
        return 0;
    }
    case SN_RK_SYS_EXIT:
        ev->type = SN_REC_SYS_EXIT;
        ev->u.sys.nr = (int32_t)(uint32_t)rec->a[0];
        ev->u.sys.ret = (int64_t)rec->a[1];
        /* the out args, back at their places in the call's arguments */
        for (int k = 0, j = 2; k < SN_REC_ARGS && j < 5; k++)
            if ((rec->a[0] >> 32) & (1u << k))
                ev->u.sys.args[k] = rec->a[j++];
        return 0;
    case SN_RK_SCHED_SWITCH:
        if (rec->nslots != 2 || c1->type != SN_RK_CONT)
            return -EINVAL;
        ev->type = SN_REC_SCHED_SWITCH;
        ev->u.sw.prev_tid = (int32_t)rec->a[0];
        ev->u.sw.prev_prio = (int32_t)rec->a[1];
        ev->u.sw.prev_state = (int64_t)rec->a[2];
        ev->u.sw.next_tid = (int32_t)rec->a[3];
        ev->u.sw.next_prio = (int32_t)rec->a[4];
        comm_copy(ev->u.sw.prev_comm, c1->b);
        comm_copy(ev->u.sw.next_comm, c1->b + SN_REC_COMM_LEN);
        return 0;
    case SN_RK_SCHED_WAKEUP:
    case SN_RK_SCHED_WAKEUP_NEW:
        ev->type = rec->type == SN_RK_SCHED_WAKEUP ? SN_REC_SCHED_WAKEUP : SN_REC_SCHED_WAKEUP_NEW;
        ev->u.wakeup.tid = (int32_t)rec->a[0];
        ev->u.wakeup.prio = (int32_t)rec->a[1];
        ev->u.wakeup.target_cpu = (int32_t)rec->a[2];
        comm_copy(ev->u.wakeup.comm, &rec->a[3]);
        return 0;
    case SN_RK_PROC_EXEC:
        if (rec->nslots != 1 + SN_REC_STR_PARTS)
            return -EINVAL;
        ev->type = SN_REC_PROC_EXEC;
        ev->u.exec.tid = (int32_t)rec->a[0];
        ev->u.exec.old_tid = (int32_t)rec->a[1];
        str_of(c1, str);
        ev->u.exec.filename = str;
        return 0;
    case SN_RK_PROC_FORK: {
        int32_t vt[SN_REC_VTIDS];

        if (rec->nslots != 2 || c1->type != SN_RK_CONT)
            return -EINVAL;
        ev->type = SN_REC_PROC_FORK;
        ev->u.fork.parent_tid = (int32_t)rec->a[0];
        ev->u.fork.parent_pid = (int32_t)rec->a[1];
        ev->u.fork.child_tid = (int32_t)rec->a[2];
        ev->u.fork.child_pid = (int32_t)rec->a[3];
        ev->u.fork.parent_ns_inum = (uint32_t)rec->a[4];
        ev->u.fork.child_ns_inum = (uint32_t)(rec->a[4] >> 32);
        comm_copy(ev->u.fork.parent_comm, c1->b);
        comm_copy(ev->u.fork.child_comm, c1->b + SN_REC_COMM_LEN);
        ev->u.fork.nr_vtids = c1->b[32] > SN_REC_VTIDS ? SN_REC_VTIDS : c1->b[32];
        memcpy(vt, c1->b + 36, sizeof(vt));
        memcpy(ev->u.fork.vtids, vt, sizeof(vt));
        return 0;
    }
    case SN_RK_PROC_EXIT:
        ev->type = SN_REC_PROC_EXIT;
        ev->u.exit.tid = (int32_t)rec->a[0];
        ev->u.exit.prio = (int32_t)rec->a[1];
        ev->u.exit.group_dead = (uint8_t)rec->a[2];
        comm_copy(ev->u.exit.comm, &rec->a[3]);
        return 0;
    case SN_RK_BLOCK_ISSUE:
    case SN_RK_BLOCK_COMPLETE:
        ev->type = rec->type == SN_RK_BLOCK_ISSUE ? SN_REC_BLOCK_ISSUE : SN_REC_BLOCK_COMPLETE;
        ev->u.blk.dev = (uint32_t)rec->a[0];
        ev->u.blk.rwbs = (uint32_t)(rec->a[0] >> 32);
        ev->u.blk.sector = rec->a[1];
        ev->u.blk.nr_sector = (uint32_t)rec->a[2];
        if (rec->type == SN_RK_BLOCK_ISSUE) {
            ev->u.blk.bytes = (uint32_t)(rec->a[2] >> 32);
            ev->u.blk.tid = (int32_t)rec->tid;
            comm_copy(ev->u.blk.comm, &rec->a[3]);
        } else {
            ev->u.blk.error = (int32_t)rec->a[3];
        }
        return 0;
    case SN_RK_TCP_CONNECT:
    case SN_RK_TCP_ACCEPT:
    case SN_RK_TCP_RETRANSMIT: {
        uint64_t w = rec->a[1];

        if (rec->nslots != 2 || c1->type != SN_RK_CONT)
            return -EINVAL;
        ev->type = rec->type == SN_RK_TCP_CONNECT  ? SN_REC_TCP_CONNECT
                   : rec->type == SN_RK_TCP_ACCEPT ? SN_REC_TCP_ACCEPT
                                                   : SN_REC_TCP_RETRANSMIT;
        ev->u.tcp.skaddr = rec->a[0];
        ev->u.tcp.sport = (uint16_t)w;
        ev->u.tcp.dport = (uint16_t)(w >> 16);
        ev->u.tcp.family = (uint16_t)((w >> 32) & 0xff);
        ev->u.tcp.oldstate = (int32_t)((w >> 40) & 0xff);
        ev->u.tcp.newstate = (int32_t)((w >> 48) & 0xff);
        ev->u.tcp.skbaddr = rec->a[2];
        ev->u.tcp.err = (int32_t)rec->a[3];
        memcpy(ev->u.tcp.saddr, c1->b, 16);
        memcpy(ev->u.tcp.daddr, c1->b + 16, 16);
        return 0;
    }
    case SN_RK_FAULT_USER:
    case SN_RK_FAULT_KERNEL:
        ev->type = rec->type == SN_RK_FAULT_USER ? SN_REC_FAULT_USER : SN_REC_FAULT_KERNEL;
        ev->u.fault.address = rec->a[0];
        ev->u.fault.ip = rec->a[1];
        ev->u.fault.error_code = (uint8_t)rec->a[2];
        return 0;
    case SN_RK_USDT: {
        uint32_t n = (uint32_t)(rec->a[0] >> 32);

        if (n > SN_REC_USDT_NARGS || rec->nslots != (n > 4 ? 2 : 1) ||
            (n > 4 && c1->type != SN_RK_CONT))
            return -EINVAL;
        ev->type = SN_REC_USDT;
        ev->u.usdt.probe = (uint32_t)rec->a[0];
        ev->u.usdt.nargs = n;
        for (uint32_t i = 0; i < n && i < 4; i++)
            ev->u.usdt.args[i] = (int64_t)rec->a[1 + i];
        if (n > 4)
            memcpy(&ev->u.usdt.args[4], c1->b, (n - 4) * sizeof(uint64_t));
        return 0;
    }
    default:
        return -EINVAL;
    }
}
