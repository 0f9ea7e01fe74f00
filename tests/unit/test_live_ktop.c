/*
 * Per-process activity per second (src/live/ktop.h) on events written as CTF packets by the
 * writer's encoder (live_packet.h) and read back by ctf_read.h, as `sonde top` reads them:
 *  - CPU time from sched_switch, cut at second boundaries when the task's process is known,
 *    and counted only from the current second when it was not (exact nanoseconds);
 *  - system calls counted at their exits; read and write bytes from the read and write
 *    families' positive return values (a failed read adds nothing);
 *  - rows sorted by CPU time, then system calls; names from the scheduler events, the main
 *    thread's first; empty seconds between events are emitted; the last second at the flush.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/syscall_tab.h"
#include "live/ctf_read.h"
#include "live/ktop.h"
#include "live/live_packet.h"
#include "t.h"

#define S  1000000000ULL
#define MS 1000000ULL

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static struct sn_ktop *k;

struct second {
    int64_t t;
    struct sn_ktop_row rows[8];
    size_t n;
};
static struct second sec[16];
static size_t nsec;

static void emit(void *ctx, int64_t second_ns, const struct sn_ktop_row *rows, size_t n)
{
    (void)ctx;
    if (nsec >= 16)
        return;
    sec[nsec].t = second_ns;
    sec[nsec].n = n;
    memcpy(sec[nsec].rows, rows, (n < 8 ? n : 8) * sizeof(*rows));
    nsec++;
}

/* ev through a packet and back, then counted. */
static void feed(unsigned cpu, struct sn_rec_event ev)
{
    static uint8_t *pkt;
    static size_t cap;
    struct sn_live_packet_info pi = {.classes = &cls, .cpu = cpu};
    ev.cpu = (uint16_t)cpu;
    ssize_t len = sn_live_packet(&pi, &ev, 1, &pkt, &cap);
    T_REQUIRE(len > 0);
    struct sn_ctf_rd_packet pk;
    struct sn_ctf_rd_event e;
    size_t off = 0;
    uint64_t prev = 0;
    T_REQUIRE(sn_ctf_rd_header(pkt, (size_t)len, &pk) == 0);
    T_REQUIRE(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e) == 1);
    T_EQ(sn_ktop_event(k, cpu, &e, emit, NULL), 0);
}

static struct sn_rec_event sw(uint64_t ts, int32_t prev_pid, int32_t prev, const char *pcomm,
                              int32_t next, const char *ncomm)
{
    struct sn_rec_event e = {.type = SN_REC_SCHED_SWITCH, .ts = ts, .tid = prev, .pid = prev_pid};
    snprintf(e.u.sw.prev_comm, sizeof(e.u.sw.prev_comm), "%s", pcomm);
    snprintf(e.u.sw.next_comm, sizeof(e.u.sw.next_comm), "%s", ncomm);
    e.u.sw.prev_tid = prev;
    e.u.sw.next_tid = next;
    return e;
}

static struct sn_rec_event ex(uint64_t ts, int32_t pid, int32_t tid, int64_t nr, int64_t ret)
{
    struct sn_rec_event e = {.type = SN_REC_SYS_EXIT, .ts = ts, .tid = tid, .pid = pid};
    e.u.sys.nr = nr;
    e.u.sys.ret = ret;
    return e;
}

static const struct sn_ktop_row *find(const struct second *s, int32_t pid)
{
    for (size_t i = 0; i < s->n && i < 8; i++)
        if (s->rows[i].pid == pid)
            return &s->rows[i];
    return NULL;
}

static void test_seconds(void)
{
    T_REQUIRE(sn_ktop_new(&k, &cls, 2, 0) == 0);
    feed(0, sw(500 * MS, 0, 0, "swapper/0", 100, "a"));
    feed(1, sw(1100 * MS - 1000 * MS, 0, 0, "swapper/1", 400, "d")); /* 0.1 s */
    feed(0, ex(600 * MS, 100, 100, 0, 4096));                        /* read */
    feed(0, ex(650 * MS, 100, 100, 0, -11));                         /* read failed */
    feed(0, ex(700 * MS, 100, 101, 1, 10));                          /* write, thread 101 */
    feed(0, sw(1200 * MS, 100, 100, "a", 200, "b"));
    feed(0, ex(1300 * MS, 200, 200, 110, 1)); /* getppid */
    feed(1, sw(2300 * MS, 400, 400, "d", 0, "swapper/1"));
    feed(0, sw(2500 * MS, 200, 200, "b", 0, "swapper/0"));
    feed(0, ex(5500 * MS, 300, 300, 110, 1));
    sn_ktop_flush(k, emit, NULL);
    sn_ktop_free(k);

    T_EQ(nsec, 6); /* seconds 0..5, 3 and 4 empty */
    for (size_t i = 0; i < nsec; i++)
        T_EQ(sec[i].t, (int64_t)(i * S));
    /* second 0: process 100 from 0.5 to the end (its process known at 0.6): 0.5 s */
    T_EQ(sec[0].n, 1);
    const struct sn_ktop_row *r = find(&sec[0], 100);
    T_REQUIRE(r != NULL);
    T_EQU(r->cpu_ns, 500 * MS);
    T_EQU(r->syscalls, 3);
    T_EQU(r->read_bytes, 4096);
    T_EQU(r->write_bytes, 10);
    T_STR(r->comm, "a");
    /* second 1: 200 from 1.2 to 2.0 (known at 1.3) first, then 100 from 1.0 to 1.2 */
    T_EQ(sec[1].n, 2);
    T_EQ(sec[1].rows[0].pid, 200);
    T_EQU(sec[1].rows[0].cpu_ns, 800 * MS);
    T_EQU(sec[1].rows[0].syscalls, 1);
    T_STR(sec[1].rows[0].comm, "b");
    T_EQ(sec[1].rows[1].pid, 100);
    T_EQU(sec[1].rows[1].cpu_ns, 200 * MS);
    T_EQU(sec[1].rows[1].syscalls, 0);
    /* second 2: 200 until 2.5; 400 (its process unknown until its switch-out at 2.3): only
     * from 2.0, the earlier seconds being closed */
    T_EQ(sec[2].n, 2);
    T_EQ(sec[2].rows[0].pid, 200);
    T_EQU(sec[2].rows[0].cpu_ns, 500 * MS);
    T_EQ(sec[2].rows[1].pid, 400);
    T_EQU(sec[2].rows[1].cpu_ns, 300 * MS);
    T_STR(sec[2].rows[1].comm, "d");
    T_EQ(sec[3].n, 0);
    T_EQ(sec[4].n, 0);
    T_EQ(sec[5].n, 1);
    T_EQ(sec[5].rows[0].pid, 300);
    T_EQU(sec[5].rows[0].syscalls, 1);
    T_EQU(sec[5].rows[0].cpu_ns, 0);
    T_STR(sec[5].rows[0].comm, "?");
}

static void test_bad(void)
{
    T_EQ(sn_ktop_new(&k, NULL, 2, 0), -EINVAL);
    T_EQ(sn_ktop_new(&k, &cls, 0, 0), -EINVAL);
    T_REQUIRE(sn_ktop_new(&k, &cls, 1, 0) == 0);
    struct sn_ctf_rd_event e = {.cls = &cls.c[0], .ts = 1};
    T_EQ(sn_ktop_event(k, 1, &e, emit, NULL), -EINVAL);
    sn_ktop_free(k);
    sn_ktop_free(NULL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) != 0 || sn_ctf_classes_build(&cls, &tab) != 0)
        return 1;
    t_run("seconds: CPU time cut at boundaries, system calls, bytes, names, order", test_seconds);
    t_run("bad arguments", test_bad);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
