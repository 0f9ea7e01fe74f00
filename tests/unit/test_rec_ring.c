/*
 * The flight recorder's ring consumers (src/rec/ring.c) on a fake ring in memory, written by a
 * writer that follows bpf/rec.bpf.c's protocol: wrap with the exact overwritten count, torn
 * slots skipped and counted, multi-slot records (whole, or cut at the window's start), the u32
 * sequence wrap, successive snapshots disjoint and consumers independent, the stable sort by
 * ts, and decoding into struct sn_rec_event.
 */
#include <stdlib.h>
#include <string.h>

#include "rec/ring.h"
#include "t.h"

static char str[SN_REC_STR_MAX]; /* decoded strings */

#define NCPU 2

static struct sn_rec_slot *slots;
static struct sn_rec_head heads[NCPU];
static struct sn_rec_ring_view view;

static void fake_init(uint32_t nslots)
{
    free(slots);
    slots = calloc((size_t)NCPU * nslots, sizeof(*slots));
    memset(heads, 0, sizeof(heads));
    view = (struct sn_rec_ring_view){slots, heads, NCPU, nslots};
}

static struct sn_rec_slot *at(unsigned cpu, uint64_t i)
{
    return &slots[(size_t)cpu * view.nslots + (i & (view.nslots - 1))];
}

/* Writes a record of n slots as the BPF writer does; returns its first index. */
static uint64_t put(unsigned cpu, uint16_t kind, uint8_t n, uint64_t ts, uint64_t a0)
{
    uint64_t h = heads[cpu].head;

    heads[cpu].head += n;
    for (uint8_t k = 0; k < n; k++)
        at(cpu, h + k)->seq = 0;
    struct sn_rec_slot *s = at(cpu, h);
    s->type = kind;
    s->nslots = n;
    s->flags = 0;
    s->ts = ts;
    s->tid = 100 + cpu;
    s->pid = 100;
    memset(s->a, 0, sizeof(s->a));
    s->a[0] = a0;
    for (uint8_t k = 1; k < n; k++) {
        struct sn_rec_cont *c = (struct sn_rec_cont *)at(cpu, h + k);
        c->type = SN_RK_CONT;
        c->part = k;
        c->flags = 0;
        memset(c->b, 'a' + k, sizeof(c->b));
        c->seq = sn_rec_seq(h + k);
    }
    s->seq = sn_rec_seq(h);
    return h;
}

static uint64_t one(unsigned cpu, uint64_t v)
{
    return put(cpu, SN_RK_SYS_EXIT, 1, 1000 + v, v);
}

static uint64_t a0_of(const struct sn_rec_snap *s, unsigned cpu, size_t k)
{
    return sn_rec_snap_record(s, cpu, k)->a[0];
}

static void test_wrap_overwritten_exact(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;

    fake_init(8);
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 1) == 0);
    for (uint64_t v = 0; v < 20; v++)
        one(0, v);
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 8);
    T_EQU(s.cpu[0].overwritten, 12);
    T_EQU(s.cpu[0].torn, 0);
    for (size_t k = 0; k < s.cpu[0].nrec; k++)
        T_EQU(a0_of(&s, 0, k), 12 + k); /* the newest 8 */
    T_EQ(s.cpu[1].nrec, 0);
    T_EQU(s.records, 8);
    T_EQU(s.overwritten, 12);
    T_EQU(sn_rec_consumer_cursor(c, 0), 20);
    sn_rec_snap_free(&s);

    for (uint64_t v = 20; v < 23; v++)
        one(0, v);
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 3); /* the next snapshot starts where the last one ended */
    T_EQU(s.cpu[0].overwritten, 0);
    for (size_t k = 0; k < s.cpu[0].nrec; k++)
        T_EQU(a0_of(&s, 0, k), 20 + k);
    sn_rec_snap_free(&s);

    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0); /* nothing new */
    T_EQU(s.records + s.overwritten + s.torn, 0);
    sn_rec_snap_free(&s);
    sn_rec_consumer_free(c);
}

static void test_torn(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;

    fake_init(16);
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 0) == 0);
    for (uint64_t v = 0; v < 10; v++)
        one(1, v);
    at(1, 4)->seq = 0;                  /* still being written */
    at(1, 6)->seq = sn_rec_seq(6 + 16); /* overwritten by a later lap during the copy */
    at(1, 9)->seq = sn_rec_seq(9 - 16); /* stale: reserved, not yet invalidated */
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[1].nrec, 7);
    T_EQU(s.cpu[1].torn, 3);
    T_EQU(s.cpu[1].overwritten, 0);
    uint64_t want[] = {0, 1, 2, 3, 5, 7, 8};
    for (size_t k = 0; k < 7; k++)
        T_EQU(a0_of(&s, 1, k), want[k]);
    sn_rec_snap_free(&s);
    sn_rec_consumer_free(c);
}

static void test_multi_slot(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;
    struct sn_rec_event ev;

    fake_init(8);
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 0) == 0);
    one(0, 0);                        /* 0 */
    for (uint64_t v = 1; v <= 5; v++) /* 1-2 3-4 5-6 7-8 9-10 */
        put(0, SN_RK_SCHED_SWITCH, 2, 1000 + v, v);
    one(0, 6); /* 11 */
    /* window [4, 12): slot 4 is the tail of the record at 3 */
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 4);
    T_EQU(s.cpu[0].overwritten, 5);
    T_EQU(s.cpu[0].torn, 0);
    uint64_t want[] = {3, 4, 5, 6};
    for (size_t k = 0; k < 4; k++)
        T_EQU(a0_of(&s, 0, k), want[k]);
    T_EQ(sn_rec_slot_decode(sn_rec_snap_record(&s, 0, 0), 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_SCHED_SWITCH);
    T_EQ(ev.u.sw.prev_tid, 3);
    T_EQ(ev.u.sw.prev_comm[0], 'b');
    T_EQ(ev.u.sw.next_comm[15], 'b');
    T_EQU(ev.ts, 1003);
    T_EQ(ev.tid, 100);
    sn_rec_snap_free(&s);

    /* a continuation changed under the copy: the whole record is torn, the rest kept */
    put(0, SN_RK_SCHED_SWITCH, 2, 2000, 7); /* 12-13 */
    put(0, SN_RK_SCHED_SWITCH, 2, 2001, 8); /* 14-15 */
    at(0, 13)->seq = 0;
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 1);
    T_EQU(a0_of(&s, 0, 0), 8);
    T_EQU(s.cpu[0].torn, 2);
    sn_rec_snap_free(&s);

    /* a record whose slots are not all reserved yet: n > head - i cannot be kept */
    put(0, SN_RK_SCHED_SWITCH, 2, 3000, 9); /* 16-17 */
    heads[0].head--;
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 0);
    T_EQU(s.cpu[0].torn, 1);
    sn_rec_snap_free(&s);
    sn_rec_consumer_free(c);
}

static void test_seq_wrap(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;
    uint64_t start = (1ULL << 32) - 5;

    fake_init(16);
    heads[0].head = start;
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 1) == 0);
    for (uint64_t v = 0; v < 10; v++)
        one(0, v);
    T_EQU(at(0, (1ULL << 32) - 1)->seq, 1); /* not 0, which means "being written" */
    T_EQU(at(0, 1ULL << 32)->seq, 1);
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 10);
    T_EQU(s.cpu[0].torn, 0);
    for (size_t k = 0; k < 10; k++)
        T_EQU(a0_of(&s, 0, k), k);
    T_EQU(sn_rec_consumer_cursor(c, 0), start + 10);
    sn_rec_snap_free(&s);
    sn_rec_consumer_free(c);
}

static void test_consumers_disjoint_and_independent(void)
{
    struct sn_rec_consumer *a, *b;
    struct sn_rec_snap s1, s2, sb;

    fake_init(64);
    T_REQUIRE(sn_rec_consumer_new(&a, &view, 0) == 0);
    T_REQUIRE(sn_rec_consumer_new(&b, &view, 0) == 0);
    for (uint64_t v = 0; v < 30; v++)
        one(v % 2, v);
    T_REQUIRE(sn_rec_snapshot(a, &view, &s1) == 0);
    for (uint64_t v = 30; v < 50; v++)
        one(v % 2, v);
    T_REQUIRE(sn_rec_snapshot(a, &view, &s2) == 0);
    T_REQUIRE(sn_rec_snapshot(b, &view, &sb) == 0);
    T_EQU(s1.records, 30);
    T_EQU(s2.records, 20);
    T_EQU(sb.records, 50); /* b's cursors are its own */
    for (unsigned cpu = 0; cpu < NCPU; cpu++) {
        for (size_t k = 0; k < s1.cpu[cpu].nrec; k++)
            T_OK(a0_of(&s1, cpu, k) < 30);
        for (size_t k = 0; k < s2.cpu[cpu].nrec; k++)
            T_OK(a0_of(&s2, cpu, k) >= 30);
        T_EQU(s2.cpu[cpu].from, s1.cpu[cpu].to);
    }
    sn_rec_snap_free(&s1);
    sn_rec_snap_free(&s2);
    sn_rec_snap_free(&sb);
    sn_rec_consumer_free(a);
    sn_rec_consumer_free(b);
}

static void test_sort_stable(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;
    uint64_t ts[] = {10, 30, 20, 40, 20, 5};
    uint64_t want[] = {5, 0, 2, 4, 1, 3}; /* a0 = position written; equal ts keep their order */

    fake_init(16);
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 0) == 0);
    for (uint64_t v = 0; v < 6; v++)
        put(0, SN_RK_SYS_ENTRY, v == 3 ? 2 : 1, ts[v], v);
    T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
    T_EQ(s.cpu[0].nrec, 6);
    for (size_t k = 0; k < 6; k++)
        T_EQU(a0_of(&s, 0, k), want[k]);
    sn_rec_snap_free(&s);
    sn_rec_consumer_free(c);
}

static void test_invariant_random(void)
{
    struct sn_rec_consumer *c;
    struct sn_rec_snap s;

    t_seed(17);
    fake_init(32);
    T_REQUIRE(sn_rec_consumer_new(&c, &view, 0) == 0);
    for (int round = 0; round < 200; round++) {
        uint64_t before[NCPU];
        for (unsigned cpu = 0; cpu < NCPU; cpu++)
            before[cpu] = sn_rec_consumer_cursor(c, cpu);
        int nrec = (int)(t_rand() % 40);
        for (int r = 0; r < nrec; r++)
            put(t_rand() % NCPU, SN_RK_SYS_ENTRY, (uint8_t)(1 + t_rand() % 4), t_rand() % 1000, 0);
        if (t_rand() % 2) /* a slot being rewritten */
            at(t_rand() % NCPU, t_rand())->seq = 0;
        T_REQUIRE(sn_rec_snapshot(c, &view, &s) == 0);
        for (unsigned cpu = 0; cpu < NCPU; cpu++) {
            uint64_t kept = 0;
            for (size_t k = 0; k < s.cpu[cpu].nrec; k++)
                kept += sn_rec_snap_record(&s, cpu, k)->nslots;
            T_EQU(kept + s.cpu[cpu].overwritten + s.cpu[cpu].torn, heads[cpu].head - before[cpu]);
            for (size_t k = 1; k < s.cpu[cpu].nrec; k++)
                T_OK(sn_rec_snap_record(&s, cpu, k - 1)->ts <= sn_rec_snap_record(&s, cpu, k)->ts);
        }
        sn_rec_snap_free(&s);
    }
    sn_rec_consumer_free(c);
}

static void test_decode_sys(void)
{
    struct sn_rec_slot r[2];
    struct sn_rec_cont *c = (struct sn_rec_cont *)&r[1];
    struct sn_rec_event ev;
    uint64_t a45[2] = {44, 55};

    memset(r, 0, sizeof(r));
    r[0] = (struct sn_rec_slot){.type = SN_RK_SYS_ENTRY,
                                .nslots = 2,
                                .ts = 7,
                                .tid = 5,
                                .pid = 4,
                                .a = {9 | SN_REC_E_ARGS45, 1, 2, 3, 4}};
    c->type = SN_RK_CONT;
    c->part = 1;
    memcpy(c->b, a45, sizeof(a45));
    T_EQ(sn_rec_slot_decode(r, 1, &ev, str), 0);
    T_EQ(ev.type, SN_REC_SYS_ENTER);
    T_EQ(ev.cpu, 1);
    T_EQ(ev.u.sys.nr, 9);
    T_EQU(ev.u.sys.args[0], 1);
    T_EQU(ev.u.sys.args[3], 4);
    T_EQU(ev.u.sys.args[4], 44);
    T_EQU(ev.u.sys.args[5], 55);
    T_EQ(ev.tid, 5);
    T_EQ(ev.pid, 4);

    /* out args 1 and 4 (mask 0x12): back at args[1] and args[4] */
    r[0] = (struct sn_rec_slot){
        .type = SN_RK_SYS_EXIT, .nslots = 1, .a = {0x12ULL << 32 | 61, (uint64_t)-14, 77, 88}};
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_SYS_EXIT);
    T_EQ(ev.u.sys.nr, 61);
    T_EQ(ev.u.sys.ret, -14);
    T_EQU(ev.u.sys.args[0], 0);
    T_EQU(ev.u.sys.args[1], 77);
    T_EQU(ev.u.sys.args[4], 88);
    r[0].a[0] = 0xffffffffULL; /* orig_ax -1 (no system call) */
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.u.sys.nr, -1);

    /* a path in two continuations after args 4 and 5: across both, then short */
    struct sn_rec_slot p[4];
    struct sn_rec_cont *pc = (struct sn_rec_cont *)p;
    memset(p, 0, sizeof(p));
    p[0] = (struct sn_rec_slot){
        .type = SN_RK_SYS_ENTRY,
        .nslots = 4,
        .a = {257 | SN_REC_E_ARGS45 | SN_REC_E_STR | 1ULL << SN_REC_E_STRSHIFT}};
    for (int k = 1; k < 4; k++)
        pc[k].type = SN_RK_CONT, pc[k].part = (uint8_t)k;
    memset(pc[2].b, 'x', 55); /* 55 bytes and the helper's NUL: the text goes on */
    memcpy(pc[3].b, "yz", 3);
    T_EQ(sn_rec_slot_decode(p, 0, &ev, str), 0);
    T_EQ(ev.u.sys.nr, 257);
    T_OK(ev.u.sys.str[0] == NULL);
    T_REQUIRE(ev.u.sys.str[1] != NULL);
    T_EQ(strlen(ev.u.sys.str[1]), 57);
    T_STR(ev.u.sys.str[1] + 55, "yz");
    memcpy(pc[2].b, "/etc", 5);
    T_EQ(sn_rec_slot_decode(p, 0, &ev, str), 0);
    T_STR(ev.u.sys.str[1], "/etc"); /* the second part is not read */
    memset(pc[3].b, 'w', 56);       /* no NUL at all: cut at 55 */
    memset(pc[2].b, 'v', 56);
    T_EQ(sn_rec_slot_decode(p, 0, &ev, str), 0);
    T_EQ(strlen(ev.u.sys.str[1]), 110);
    p[0].nslots = 3; /* the flags promise 4 slots */
    T_EQ(sn_rec_slot_decode(p, 0, &ev, str), -22);

    r[0].type = 77;
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22);
    r[0] = (struct sn_rec_slot){.type = SN_RK_SCHED_SWITCH, .nslots = 1};
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22); /* a switch without its comms */
}

/* The other groups' records: fork (its vtids), exec (its filename), block, tcp, faults, usdt
 * (arguments 4 and up in a continuation), as bpf/rec.h lays them out. */
static void test_decode_groups(void)
{
    struct sn_rec_slot r[3];
    struct sn_rec_cont *c = (struct sn_rec_cont *)&r[1];
    struct sn_rec_event ev;
    int32_t vt[4] = {300, 7, 0, 0};

    memset(r, 0, sizeof(r));
    r[0] = (struct sn_rec_slot){.type = SN_RK_PROC_FORK,
                                .nslots = 2,
                                .a = {10, 11, 300, 300, 0xf0000001ULL | 0xf0000002ULL << 32}};
    c->type = SN_RK_CONT;
    memcpy(c->b, "parent", 7);
    memcpy(c->b + 16, "child", 6);
    c->b[32] = 2;
    memcpy(c->b + 36, vt, sizeof(vt));
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_PROC_FORK);
    T_EQ(ev.u.fork.parent_tid, 10);
    T_EQ(ev.u.fork.parent_pid, 11);
    T_EQ(ev.u.fork.child_tid, 300);
    T_EQU(ev.u.fork.parent_ns_inum, 0xf0000001u);
    T_EQU(ev.u.fork.child_ns_inum, 0xf0000002u);
    T_STR(ev.u.fork.parent_comm, "parent");
    T_STR(ev.u.fork.child_comm, "child");
    T_EQ(ev.u.fork.nr_vtids, 2);
    T_EQ(ev.u.fork.vtids[1], 7);
    c->b[32] = 200; /* more levels than kept: 4 */
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.u.fork.nr_vtids, SN_REC_VTIDS);

    memset(r, 0, sizeof(r));
    r[0] = (struct sn_rec_slot){.type = SN_RK_PROC_EXEC, .nslots = 3, .a = {42, 41}};
    memcpy(c[0].b, "/bin/true", 10);
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_PROC_EXEC);
    T_EQ(ev.u.exec.tid, 42);
    T_EQ(ev.u.exec.old_tid, 41);
    T_STR(ev.u.exec.filename, "/bin/true");
    r[0].nslots = 2;
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22);

    r[0] = (struct sn_rec_slot){.type = SN_RK_BLOCK_ISSUE,
                                .nslots = 1,
                                .tid = 99,
                                .a = {(254u << 20) | 0x21ULL << 32, 2048, 8 | 4096ULL << 32}};
    memcpy(&r[0].a[3], "dd", 3);
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_BLOCK_ISSUE);
    T_EQU(ev.u.blk.dev, 254u << 20);
    T_EQU(ev.u.blk.rwbs, 0x21);
    T_EQU(ev.u.blk.sector, 2048);
    T_EQU(ev.u.blk.nr_sector, 8);
    T_EQU(ev.u.blk.bytes, 4096);
    T_EQ(ev.u.blk.tid, 99);
    T_STR(ev.u.blk.comm, "dd");
    r[0].type = SN_RK_BLOCK_COMPLETE;
    r[0].a[3] = (uint64_t)-5;
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_BLOCK_COMPLETE);
    T_EQ(ev.u.blk.error, -5);

    memset(r, 0, sizeof(r));
    r[0] = (struct sn_rec_slot){
        .type = SN_RK_TCP_RETRANSMIT,
        .nslots = 2,
        .a = {0xffff1, 80 | 443ULL << 16 | 10ULL << 32 | 1ULL << 40 | 1ULL << 48, 0xffff2, 0}};
    c->type = SN_RK_CONT;
    c->b[15] = 1; /* ::1 */
    c->b[31] = 1;
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_TCP_RETRANSMIT);
    T_EQ(ev.u.tcp.sport, 80);
    T_EQ(ev.u.tcp.dport, 443);
    T_EQ(ev.u.tcp.family, 10);
    T_EQ(ev.u.tcp.newstate, 1);
    T_EQU(ev.u.tcp.skbaddr, 0xffff2);
    T_EQ(ev.u.tcp.saddr[15], 1);
    r[0].nslots = 1;
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22);

    r[0] = (struct sn_rec_slot){
        .type = SN_RK_FAULT_USER, .nslots = 1, .a = {0x7f0000001000, 0x401000, 0x106}};
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_FAULT_USER);
    T_EQU(ev.u.fault.address, 0x7f0000001000);
    T_EQU(ev.u.fault.ip, 0x401000);
    T_EQ(ev.u.fault.error_code, 6); /* lttng-modules keeps the low byte */

    /* usdt: 7 arguments, 4 in the first slot, 3 in the continuation */
    int64_t more[7] = {-5, 6, 7};
    memset(r, 0, sizeof(r));
    r[0] = (struct sn_rec_slot){.type = SN_RK_USDT, .nslots = 2, .a = {3 | 7ULL << 32, 1, 2, 3, 4}};
    c->type = SN_RK_CONT;
    memcpy(c->b, more, sizeof(more));
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), 0);
    T_EQ(ev.type, SN_REC_USDT);
    T_EQU(ev.u.usdt.probe, 3);
    T_EQU(ev.u.usdt.nargs, 7);
    T_EQ(ev.u.usdt.args[3], 4);
    T_EQ(ev.u.usdt.args[4], -5);
    T_EQ(ev.u.usdt.args[6], 7);
    r[0].a[0] = 3 | 12ULL << 32; /* more than a record holds */
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22);
    r[0].a[0] = 3 | 2ULL << 32; /* 2 arguments take one slot */
    T_EQ(sn_rec_slot_decode(r, 0, &ev, str), -22);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("wrap_overwritten_exact", test_wrap_overwritten_exact);
    t_run("torn", test_torn);
    t_run("multi_slot", test_multi_slot);
    t_run("seq_wrap", test_seq_wrap);
    t_run("consumers_disjoint_and_independent", test_consumers_disjoint_and_independent);
    t_run("sort_stable", test_sort_stable);
    t_run("invariant_random", test_invariant_random);
    t_run("decode_sys", test_decode_sys);
    t_run("decode_groups", test_decode_groups);
    free(slots);
    return t_done();
}
