/*
 * The reader of Sonde's CTF packets (src/live/ctf_read.h) against the writer's bytes
 * (live_packet.h, the same bytes as a snapshot's streams), with the built-in system call
 * table's classes:
 *  - a packet of system calls (no argument, integers, a pointer, a string), a sched_switch, a
 *    wake-up and a fork with its vtids sequence reads back event by event: class, time, pid,
 *    tid, and each event's fields formatted to exact text; integer and string lookups;
 *  - times: the compact header's 32 low bits rebuilt across a 2^32 ns boundary, the extended
 *    header after a gap;
 *  - the metadata: the clock offset read back, the event classes parsed back equal to the
 *    table's (every class and field), and out-of-shape text refused;
 *  - every truncation of the packet and every flipped byte of its header and first event give
 *    -EINVAL or a well-formed read (never a read past the bytes: ASan runs it), and a packet
 *    header lying about its size is refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctf/event_class.h"
#include "ctf/syscall_tab.h"
#include "ctf/tsdl.h"
#include "live/ctf_read.h"
#include "live/live_packet.h"
#include "t.h"

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static uint8_t *pkt;
static size_t cap;

static struct sn_rec_event sys(int enter, uint64_t ts, int64_t nr)
{
    struct sn_rec_event e = {
        .type = enter ? SN_REC_SYS_ENTER : SN_REC_SYS_EXIT, .ts = ts, .tid = 4243, .pid = 4242};
    e.u.sys.nr = nr;
    return e;
}

static ssize_t encode(const struct sn_rec_event *ev, size_t n)
{
    struct sn_live_packet_info pi = {.classes = &cls, .cpu = 1, .seq = 7, .discarded = 3};
    memset(pi.uuid, 0xab, 16);
    return sn_live_packet(&pi, ev, n, &pkt, &cap);
}

static void test_round_trip(void)
{
    struct sn_rec_event ev[7];
    ev[0] = sys(1, 1000, 110); /* getppid */
    ev[1] = sys(0, 1500, 110);
    ev[1].u.sys.ret = 4000;
    ev[2] = sys(1, 2000, 0); /* read(3, buf, 4096) */
    ev[2].u.sys.args[0] = 3, ev[2].u.sys.args[1] = 0x7fff0000, ev[2].u.sys.args[2] = 4096;
    ev[3] = sys(0, 2500, 0);
    ev[3].u.sys.ret = -11, ev[3].u.sys.args[1] = 0x7fff0000;
    ev[4] = sys(1, 3000, 257); /* openat(AT_FDCWD, "/etc/a\"b", O_RDONLY, 0) */
    ev[4].u.sys.args[0] = (uint64_t)-100;
    ev[4].u.sys.str[1] = "/etc/a\"b";
    ev[5] =
        (struct sn_rec_event){.type = SN_REC_SCHED_SWITCH, .ts = 3500, .tid = 4243, .pid = 4242};
    strcpy(ev[5].u.sw.prev_comm, "worker");
    ev[5].u.sw.prev_tid = 4243, ev[5].u.sw.prev_prio = 20, ev[5].u.sw.prev_state = 1;
    strcpy(ev[5].u.sw.next_comm, "swapper/1");
    ev[5].u.sw.next_prio = 20;
    ev[6] = (struct sn_rec_event){.type = SN_REC_PROC_FORK, .ts = 4000, .tid = 4243, .pid = 4242};
    strcpy(ev[6].u.fork.parent_comm, "sh");
    strcpy(ev[6].u.fork.child_comm, "sh");
    ev[6].u.fork.parent_tid = ev[6].u.fork.parent_pid = 4243;
    ev[6].u.fork.child_tid = ev[6].u.fork.child_pid = 5000;
    ev[6].u.fork.nr_vtids = 2, ev[6].u.fork.vtids[0] = 5000, ev[6].u.fork.vtids[1] = 1;
    ssize_t len = encode(ev, 7);
    T_REQUIRE(len > 0);

    struct sn_ctf_rd_packet pk;
    T_EQ(sn_ctf_rd_header(pkt, (size_t)len, &pk), 0);
    T_EQ(pk.cpu, 1);
    T_EQ(pk.seq, 7);
    T_EQ(pk.discarded, 3);
    T_EQ(pk.ts_begin, 1000);
    T_EQ(pk.ts_end, 4000);
    T_EQ(pk.content, (size_t)len);

    static const char *const want[7][2] = {
        {"syscall_entry_getppid", ""},
        {"syscall_exit_getppid", "ret=4000"},
        {"syscall_entry_read", "fd=3 count=4096"},
        {"syscall_exit_read", "ret=-11 buf=0x7fff0000"},
        {"syscall_entry_openat", "dfd=-100 filename=\"/etc/a\\x22b\" flags=0 mode=0"},
        {"sched_switch", "prev_comm=\"worker\" prev_tid=4243 prev_prio=20 prev_state=1 "
                         "next_comm=\"swapper/1\" next_tid=0 next_prio=20"},
        {"sched_process_fork",
         "parent_comm=\"sh\" parent_tid=4243 parent_pid=4243 parent_ns_inum=0 "
         "child_comm=\"sh\" child_tid=5000 _vtids_length=2 vtids=[5000,1] child_pid=5000 "
         "child_ns_inum=0"},
    };
    size_t off = 0;
    uint64_t prev = 0;
    struct sn_ctf_rd_event e;
    char text[1024];
    for (int i = 0; i < 7; i++) {
        T_EQ(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e), 1);
        T_STR(e.cls->name, want[i][0]);
        T_EQ(e.ts, ev[i].ts);
        T_EQ(e.pid, 4242);
        T_EQ(e.tid, 4243);
        sn_ctf_rd_format(&e, text, sizeof(text));
        T_STR(text, want[i][1]);
        if (i == 3) {
            int64_t v;
            T_EQ(sn_ctf_rd_int(&e, "ret", &v), 0);
            T_EQ(v, -11);
            T_EQ(sn_ctf_rd_int(&e, "nosuch", &v), -ENOENT);
        }
        if (i == 5) {
            char c[17];
            T_EQ(sn_ctf_rd_str(&e, "next_comm", c, sizeof(c)), 0);
            T_STR(c, "swapper/1");
            T_EQ(sn_ctf_rd_str(&e, "prev_tid", c, sizeof(c)), -ENOENT);
        }
    }
    T_EQ(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e), 0);
    /* a formatted text is cut to fit, NUL-terminated */
    off = 0, prev = 0;
    for (int i = 0; i < 6; i++)
        T_EQ(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e), 1);
    T_EQ(sn_ctf_rd_format(&e, text, 12), 11);
    T_STR(text, "prev_comm=\"");
}

static void test_times(void)
{
    struct sn_rec_event ev[4] = {sys(1, 0xfffffff0ull, 110), sys(0, 0x100000010ull, 110),
                                 sys(1, 0x100000020ull, 110), sys(0, 0x900000000ull, 110)};
    ssize_t len = encode(ev, 4);
    T_REQUIRE(len > 0);
    struct sn_ctf_rd_packet pk;
    T_EQ(sn_ctf_rd_header(pkt, (size_t)len, &pk), 0);
    size_t off = 0;
    uint64_t prev = 0;
    struct sn_ctf_rd_event e;
    for (int i = 0; i < 4; i++) {
        T_EQ(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e), 1);
        T_EQ(e.ts, ev[i].ts);
    }
    T_EQ(sn_ctf_rd_next(&cls, pkt, &pk, &off, &prev, &e), 0);
}

/* Reads every event of p[len]; returns how many, or -EINVAL. */
static int read_all(const uint8_t *p, size_t len)
{
    struct sn_ctf_rd_packet pk;
    if (sn_ctf_rd_header(p, len, &pk) != 0)
        return -EINVAL;
    size_t off = 0;
    uint64_t prev = 0;
    struct sn_ctf_rd_event e;
    char text[256];
    int n = 0, rc;
    while ((rc = sn_ctf_rd_next(&cls, p, &pk, &off, &prev, &e)) == 1) {
        sn_ctf_rd_format(&e, text, sizeof(text));
        n++;
    }
    return rc < 0 ? rc : n;
}

static void test_bad_bytes(void)
{
    struct sn_rec_event ev[2] = {sys(1, 1000, 257), sys(0, 2000, 257)};
    ev[0].u.sys.str[1] = "/tmp/x";
    ssize_t len = encode(ev, 2);
    T_REQUIRE(len > 0);
    T_EQ(read_all(pkt, (size_t)len), 2);
    /* truncated: each length a copy of exactly that size, so ASan sees a read past it */
    for (size_t n = 0; n < (size_t)len; n++) {
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, pkt, n);
        T_EQ(read_all(c, n), -EINVAL); /* the header's size says more */
        free(c);
    }
    /* a header whose content size is cut: the events are cut with it */
    uint8_t *c = malloc((size_t)len);
    for (size_t k = 0; k + 84 < (size_t)len; k++) {
        memcpy(c, pkt, (size_t)len);
        uint64_t bits = (84 + k) * 8;
        for (int i = 0; i < 8; i++)
            c[48 + i] = (uint8_t)(bits >> (8 * i));
        int r = read_all(c, (size_t)len);
        T_OK(r == -EINVAL || (r >= 0 && r < 2));
    }
    /* every byte flipped in turn */
    for (size_t k = 0; k < (size_t)len; k++) {
        memcpy(c, pkt, (size_t)len);
        c[k] ^= 0xff;
        int r = read_all(c, (size_t)len);
        T_OK(r == -EINVAL || (r >= 0 && r <= 2));
    }
    free(c);
}

static void test_metadata(void)
{
    struct sn_ctf_env env = {.clock_offset_ns = -1234567890123LL};
    size_t len;
    char *meta = sn_ctf_tsdl(&env, &cls, &len);
    T_REQUIRE(meta != NULL);
    int64_t off = 0;
    T_EQ(sn_ctf_rd_clock_offset(meta, &off), 0);
    T_EQ(off, -1234567890123LL);
    /* the classes parsed back are the table's: names, ids, fields' names and kinds */
    struct sn_ctf_rd_classes rc;
    T_REQUIRE(sn_ctf_rd_classes_parse(meta, &rc) == 0);
    T_EQ(rc.cls.n, cls.n);
    size_t fields = 0, bad = 0;
    for (size_t i = 0; i < cls.n && i < rc.cls.n; i++) {
        const struct sn_ctf_class *a = &cls.c[i], *b = &rc.cls.c[i];
        bad += strcmp(a->name, b->name) != 0 || a->id != b->id || a->nfields != b->nfields;
        for (unsigned f = 0; f < a->nfields && f < b->nfields; f++, fields++)
            bad += strcmp(a->fields[f].name, b->fields[f].name) != 0 ||
                   a->fields[f].kind != b->fields[f].kind;
    }
    T_EQ(bad, 0);
    T_OK(fields > 100);
    sn_ctf_rd_classes_free(&rc);
    /* out of shape: an unknown declaration, a duplicate id */
    char *x = strstr(meta, "signed = 1; encoding = none; base = 10; } _fd;");
    T_REQUIRE(x != NULL);
    x[7] = '7';
    T_EQ(sn_ctf_rd_classes_parse(meta, &rc), -EINVAL);
    x[7] = '1';
    char *id1 = strstr(meta, "\tid = 1;");
    T_REQUIRE(id1 != NULL);
    id1[6] = '0';
    T_EQ(sn_ctf_rd_classes_parse(meta, &rc), -EINVAL);
    free(meta);
    T_EQ(sn_ctf_rd_classes_parse("", &rc), -EINVAL);
    T_EQ(sn_ctf_rd_clock_offset("clock { offset = 5; };", &off), -ENOENT);
    T_EQ(sn_ctf_rd_clock_offset("x\nclock {\n\toffset = ;\n};", &off), -ENOENT);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) != 0 || sn_ctf_classes_build(&cls, &tab) != 0)
        return 1;
    t_run("a packet reads back: classes, times, pids, fields as text", test_round_trip);
    t_run("times: compact headers across 2^32 ns, extended after a gap", test_times);
    t_run("truncated, lying and flipped bytes: -EINVAL or a bounded read", test_bad_bytes);
    t_run("metadata: the clock's offset, the event classes parsed back", test_metadata);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    free(pkt);
    return t_done();
}
