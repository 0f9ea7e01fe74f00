/*
 * ctf/writer.c end to end: a synthetic recording (2 CPUs; getppid and read entry/exit with their
 * arguments; openat with its path; an unknown system call; sched_switch pairs 2 ms apart;
 * wakeup, exec, fork, exit; a 5 s gap) written as a trace, then a second "snapshot" continuing
 * the packet sequence numbers, and both read by the real babeltrace2 (Debian's, installed by
 * scripts/setup): exit code 0, the exact events and field values of its text output, and
 * sink.utils.counter's counts, and every field's type and value as babeltrace2's Python bindings
 * decode them (tests/support/ctf_fields.py). Not skipped when babeltrace2 or python3-bt2 is
 * missing: it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctf/packet.h"
#include "ctf/writer.h"
#include "t.h"

#define T0         1000000000ULL /* CLOCK_MONOTONIC of the first event: 1 s after boot */
#define MS         1000000ULL
#define NR_GETPPID 110
#define NR_READ    0
#define NR_OPENAT  257

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static char root[512];
static char out[1 << 20], err[1 << 16];

static void env_fixed(struct sn_ctf_env *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->hostname, sizeof(e->hostname), "testhost");
    snprintf(e->kernel_release, sizeof(e->kernel_release), "6.1.0-test");
    snprintf(e->kernel_version, sizeof(e->kernel_version), "#1 SMP PREEMPT_DYNAMIC");
    snprintf(e->trace_name, sizeof(e->trace_name), "%s", name);
    snprintf(e->session, sizeof(e->session), "s1");
    snprintf(e->creation, sizeof(e->creation), "20261207T000000+0000");
    for (int i = 0; i < 16; i++)
        e->uuid[i] = (uint8_t)(0xa0 + i + (name[4] == '2' ? 0x20 : 0));
    snprintf(e->boot_id, sizeof(e->boot_id), "0b5e5e5e-1111-4222-8333-444455556666");
    e->clock_offset_ns = 1796601600LL * 1000000000LL; /* 2026-12-07T00:00:00Z at boot */
}

static struct sn_rec_event sys(int enter, int cpu, uint64_t ts, int64_t nr, int64_t ret,
                               uint64_t a0, uint64_t a1, uint64_t a2)
{
    struct sn_rec_event e = {.type = enter ? SN_REC_SYS_ENTER : SN_REC_SYS_EXIT,
                             .cpu = (uint16_t)cpu,
                             .ts = ts,
                             .tid = 4242,
                             .pid = 4242};
    e.u.sys.nr = nr;
    e.u.sys.ret = ret;
    e.u.sys.args[0] = a0, e.u.sys.args[1] = a1, e.u.sys.args[2] = a2;
    return e;
}

/* A comm array from s (NUL-padded, as the kernel's). */
static void comm(char d[SN_REC_COMM_LEN], const char *s)
{
    memset(d, 0, SN_REC_COMM_LEN);
    memcpy(d, s, strnlen(s, SN_REC_COMM_LEN));
}

static struct sn_rec_event sw(int cpu, uint64_t ts, const char *pc, int pt, int64_t st,
                              const char *nc, int nt)
{
    struct sn_rec_event e = {
        .type = SN_REC_SCHED_SWITCH, .cpu = (uint16_t)cpu, .ts = ts, .tid = pt, .pid = pt};
    comm(e.u.sw.prev_comm, pc);
    comm(e.u.sw.next_comm, nc);
    e.u.sw.prev_tid = pt, e.u.sw.prev_prio = 20, e.u.sw.prev_state = st;
    e.u.sw.next_tid = nt, e.u.sw.next_prio = 20;
    return e;
}

static int add(struct sn_ctf_writer *w, struct sn_rec_event e)
{
    return sn_ctf_writer_add(w, e.cpu, &e);
}

/* Snapshot 1: 17 events, CPU 1's added out of order. */
static int write_snap1(const char *dir, uint64_t *seq)
{
    struct sn_ctf_env env;
    env_fixed(&env, "snap1");
    struct sn_ctf_writer_opts o = {.ncpus = 2,
                                   .classes = &cls,
                                   .packet_seq = seq,
                                   .max_packet_ns = 10000 * MS}; /* the 5 s gap in one packet */
    struct sn_ctf_writer *w;
    int rc = sn_ctf_writer_open(&w, dir, &env, &o);
    if (rc < 0)
        return rc;
    /* CPU 0 */
    rc |= add(w, sys(1, 0, T0 + 1000, NR_GETPPID, 0, 0, 0, 0));
    rc |= add(w, sys(0, 0, T0 + 2000, NR_GETPPID, 4000, 0, 0, 0));
    rc |= add(w, sys(1, 0, T0 + 3000, NR_READ, 0, 3, 0x7ffd1000, 1));
    rc |= add(w, sys(0, 0, T0 + 4000, NR_READ, 1, 3, 0x7ffd1000, 1));
    rc |= add(w, sw(0, T0 + 5000, "bench", 4242, 1, "swapper/0", 0));
    rc |= add(w, sw(0, T0 + 5000 + 2 * MS, "swapper/0", 0, 0, "bench", 4242));
    rc |= add(w, sys(1, 0, T0 + 5 * 1000 * MS, NR_GETPPID, 0, 0, 0, 0)); /* 5 s later */
    rc |= add(w, sys(0, 0, T0 + 5 * 1000 * MS + 700, NR_GETPPID, 4000, 0, 0, 0));
    /* CPU 1, out of order: sorted at the flush (stable for equal times) */
    struct sn_rec_event op = sys(1, 1, T0 + 30000, NR_OPENAT, 0, (uint64_t)-100, 0x5000, 0);
    op.u.sys.str[1] = "/etc/hostname";
    rc |= add(w, sys(0, 1, T0 + 31000, NR_OPENAT, 3, 0, 0, 0));
    rc |= add(w, op);
    struct sn_rec_event un = sys(1, 1, T0 + 32000, 999, 0, 7, 8, 9);
    rc |= add(w, un);
    rc |= add(w, sys(0, 1, T0 + 33000, 999, -38, 7, 8, 9));
    struct sn_rec_event wk = {
        .type = SN_REC_SCHED_WAKEUP, .cpu = 1, .ts = T0 + 20000, .tid = 0, .pid = 0};
    comm(wk.u.wakeup.comm, "bench");
    wk.u.wakeup.tid = 4242, wk.u.wakeup.prio = 20, wk.u.wakeup.target_cpu = 0;
    rc |= add(w, wk);
    struct sn_rec_event fk = {
        .type = SN_REC_PROC_FORK, .cpu = 1, .ts = T0 + 40000, .tid = 4242, .pid = 4242};
    comm(fk.u.fork.parent_comm, "bench");
    comm(fk.u.fork.child_comm, "bench");
    fk.u.fork.parent_tid = 4242, fk.u.fork.parent_pid = 4242;
    fk.u.fork.parent_ns_inum = 4026531836u, fk.u.fork.child_ns_inum = 4026531836u;
    fk.u.fork.child_tid = 4300, fk.u.fork.child_pid = 4300;
    fk.u.fork.nr_vtids = 2, fk.u.fork.vtids[0] = 4300, fk.u.fork.vtids[1] = 1;
    rc |= add(w, fk);
    struct sn_rec_event ex = {
        .type = SN_REC_PROC_EXEC, .cpu = 1, .ts = T0 + 50000, .tid = 4300, .pid = 4300};
    ex.u.exec.filename = "/usr/bin/true", ex.u.exec.tid = 4300, ex.u.exec.old_tid = 4300;
    rc |= add(w, ex);
    struct sn_rec_event xt = {
        .type = SN_REC_PROC_EXIT, .cpu = 1, .ts = T0 + 60000, .tid = 4300, .pid = 4300};
    comm(xt.u.exit.comm, "true");
    xt.u.exit.tid = 4300, xt.u.exit.prio = 20, xt.u.exit.group_dead = 1;
    rc |= add(w, xt);
    /* same time as the exit, added after it: stays after it */
    rc |= add(w, sw(1, T0 + 60000, "true", 4300, 16, "swapper/1", 0));
    if (rc) {
        sn_ctf_writer_abort(w);
        return -EINVAL;
    }
    T_EQ(sn_ctf_writer_flush_packet(w, 0), 0);
    /* a flush after the first: the stream's time cannot go back */
    struct sn_rec_event late = sys(1, 0, T0, NR_GETPPID, 0, 0, 0, 0);
    T_EQ(sn_ctf_writer_add(w, 0, &late), -ERANGE);
    T_EQ(sn_ctf_writer_add(w, 2, &late), -EINVAL);
    return sn_ctf_writer_close(w);
}

/* Snapshot 2: 2 events on CPU 0, 2 packets on CPU 1 (1 s rule), 3 discarded on CPU 1. */
static int write_snap2(const char *dir, uint64_t *seq)
{
    struct sn_ctf_env env;
    env_fixed(&env, "snap2");
    struct sn_ctf_writer_opts o = {.ncpus = 2, .classes = &cls, .packet_seq = seq};
    struct sn_ctf_writer *w;
    int rc = sn_ctf_writer_open(&w, dir, &env, &o);
    if (rc < 0)
        return rc;
    uint64_t t = T0 + 10 * 1000 * MS;
    rc |= add(w, sys(1, 0, t, NR_GETPPID, 0, 0, 0, 0));
    rc |= add(w, sys(0, 0, t + 500, NR_GETPPID, 4000, 0, 0, 0));
    rc |= add(w, sys(1, 1, t + 100, NR_READ, 0, 5, 0x1000, 4096));
    rc |= add(w, sys(0, 1, t + 1500 * MS, NR_READ, 4096, 5, 0x1000, 4096)); /* 1.5 s later */
    if (rc) {
        sn_ctf_writer_abort(w);
        return -EINVAL;
    }
    T_EQ(sn_ctf_writer_flush_packet(w, 1), 0);
    sn_ctf_writer_discarded(w, 1, 3);
    T_EQ(sn_ctf_writer_flush_packet(w, 1), 0); /* an empty packet carrying the count */
    return sn_ctf_writer_close(w);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "%s/ctf-trace-%d", t_outdir(), (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", root, root);
    T_EQ(system(cmd), 0);
}

/* Bytes [off, off+8) of a stream file, little-endian. */
static uint64_t u64_at(const char *path, long off)
{
    uint8_t b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return UINT64_MAX;
    if (fseek(f, off, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8) {
        fclose(f);
        return UINT64_MAX;
    }
    fclose(f);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int bt2(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "babeltrace2 %s", args);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("babeltrace2 %s: rc %d\n%s", args, rc, err);
    return rc;
}

static int count_lines(const char *needle)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_snapshots(void)
{
    setup();
    char d1[600], d2[600], p[700];
    snprintf(d1, sizeof(d1), "%s/snap1", root);
    snprintf(d2, sizeof(d2), "%s/snap2", root);
    uint64_t seq[2] = {5, 0}; /* the session's counters: CPU 0 had 5 packets before */
    T_EQ(write_snap1(d1, seq), 0);
    T_EQU(seq[0], 6); /* 1 packet (the early flush; nothing left at close) */
    T_EQU(seq[1], 1); /* 1 packet */
    T_EQ(write_snap2(d2, seq), 0);
    T_EQU(seq[0], 7);
    T_EQU(seq[1], 4); /* 2 by the 1 s rule, 1 empty */

    /* no temporaries left; packet_seq_num continued from snapshot 1 */
    snprintf(p, sizeof(p), "%s/kernel/.chan_0.tmp", d1);
    T_EQ(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/kernel/.metadata", d1);
    T_EQ(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/kernel/chan_0", d1);
    T_EQU(u64_at(p, 64), 5);
    snprintf(p, sizeof(p), "%s/kernel/chan_0", d2);
    T_EQU(u64_at(p, 64), 6);
    snprintf(p, sizeof(p), "%s/kernel/chan_1", d2);
    T_EQU(u64_at(p, 64), 1);
    /* CPU 1's first packet ends at its first event: the next is 1.5 s later */
    T_EQU(u64_at(p, 40), T0 + 10 * 1000 * MS + 100);
    /* its last packet: empty (84 bytes), 3 discarded, stamped at the latest event */
    long sz = file_size(p);
    T_OK(sz > 84);
    T_EQU(u64_at(p, sz - 84 + 64), 3);
    T_EQU(u64_at(p, sz - 84 + 72), 3);
    T_EQU(u64_at(p, sz - 84 + 48), 84 * 8);
    T_EQU(u64_at(p, sz - 84 + 32), T0 + 10 * 1000 * MS + 1500 * MS);

    char args[1500];
    snprintf(args, sizeof(args), "--clock-cycles --no-delta %s/kernel", d1);
    T_REQUIRE(bt2(args) == 0);
#define H "[000000000010000"
    static const char *const want1 =
        H "01000] testhost syscall_entry_getppid: { cpu_id = 0 }, { pid = 4242, tid = 4242 }, "
          "{ }\n" H
          "02000] testhost syscall_exit_getppid: { cpu_id = 0 }, { pid = 4242, tid = 4242 }, "
          "{ ret = 4000 }\n" H
          "03000] testhost syscall_entry_read: { cpu_id = 0 }, { pid = 4242, tid = 4242 }, "
          "{ fd = 3, count = 1 }\n" H
          "04000] testhost syscall_exit_read: { cpu_id = 0 }, { pid = 4242, tid = 4242 }, "
          "{ ret = 1, buf = 0x7FFD1000 }\n" H
          "05000] testhost sched_switch: { cpu_id = 0 }, { pid = 4242, tid = 4242 }, "
          "{ prev_comm = \"bench\", prev_tid = 4242, prev_prio = 20, prev_state = 1, "
          "next_comm = \"swapper/0\", next_tid = 0, next_prio = 20 }\n" H
          "20000] testhost sched_wakeup: { cpu_id = 1 }, { pid = 0, tid = 0 }, "
          "{ comm = \"bench\", tid = 4242, prio = 20, target_cpu = 0 }\n" H
          "30000] testhost syscall_entry_openat: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
          "{ dfd = -100, filename = \"/etc/hostname\", flags = 0, mode = 0 }\n" H
          "31000] testhost syscall_exit_openat: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
          "{ ret = 3 }\n" H
          "32000] testhost syscall_entry_unknown: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
          "{ id = 999, args = [ [0] = 7, [1] = 8, [2] = 9, [3] = 0, [4] = 0, [5] = 0 ] }\n" H
          "33000] testhost syscall_exit_unknown: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
          "{ id = 999, ret = -38, args = [ [0] = 7, [1] = 8, [2] = 9, [3] = 0, [4] = 0, "
          "[5] = 0 ] }\n" H
          "40000] testhost sched_process_fork: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
          "{ parent_comm = \"bench\", parent_tid = 4242, parent_pid = 4242, "
          "parent_ns_inum = 4026531836, child_comm = \"bench\", child_tid = 4300, "
          "_vtids_length = 2, vtids = [ [0] = 4300, [1] = 1 ], child_pid = 4300, "
          "child_ns_inum = 4026531836 }\n" H
          "50000] testhost sched_process_exec: { cpu_id = 1 }, { pid = 4300, tid = 4300 }, "
          "{ filename = \"/usr/bin/true\", tid = 4300, old_tid = 4300 }\n" H
          "60000] testhost sched_process_exit: { cpu_id = 1 }, { pid = 4300, tid = 4300 }, "
          "{ comm = \"true\", tid = 4300, prio = 20, group_dead = 1 }\n" H
          "60000] testhost sched_switch: { cpu_id = 1 }, { pid = 4300, tid = 4300 }, "
          "{ prev_comm = \"true\", prev_tid = 4300, prev_prio = 20, prev_state = 16, "
          "next_comm = \"swapper/1\", next_tid = 0, next_prio = 20 }\n"
          "[00000000001002005000] testhost sched_switch: { cpu_id = 0 }, { pid = 0, tid = 0 }, "
          "{ prev_comm = \"swapper/0\", prev_tid = 0, prev_prio = 20, prev_state = 0, "
          "next_comm = \"bench\", next_tid = 4242, next_prio = 20 }\n"
          /* 5 s later, in the same packet: the extended header's full timestamp */
          "[00000000006000000000] testhost syscall_entry_getppid: { cpu_id = 0 }, "
          "{ pid = 4242, tid = 4242 }, { }\n"
          "[00000000006000000700] testhost syscall_exit_getppid: { cpu_id = 0 }, "
          "{ pid = 4242, tid = 4242 }, { ret = 4000 }\n";
#undef H
    T_STR(out, want1);
    T_EQ(count_lines("\n"), 17);
    T_OK(strstr(err, "discarded") == NULL);

    /* the field classes as babeltrace2's Python bindings see them: signedness, size, base */
    char cmd[1500];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s/kernel", SN_CTF_FIELDS_PY, d1);
    int prc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (prc != 0)
        t_note("%s: rc %d\n%s", cmd, prc, err);
    T_EQ(prc, 0);
    static const char *const want_py =
        "1000001000 0 syscall_entry_getppid \n"
        "1000002000 0 syscall_exit_getppid ret:i64=4000\n"
        "1000003000 0 syscall_entry_read fd:u32=3 count:u64=1\n"
        "1000004000 0 syscall_exit_read ret:i64=1 buf:x64=2147291136\n"
        "1000005000 0 sched_switch prev_comm:str=bench prev_tid:i32=4242 prev_prio:i32=20 "
        "prev_state:i64=1 next_comm:str=swapper/0 next_tid:i32=0 next_prio:i32=20\n"
        "1000020000 1 sched_wakeup comm:str=bench tid:i32=4242 prio:i32=20 target_cpu:i32=0\n"
        "1000030000 1 syscall_entry_openat dfd:i32=-100 filename:str=/etc/hostname flags:i32=0 "
        "mode:u32=0\n"
        "1000031000 1 syscall_exit_openat ret:i64=3\n"
        "1000032000 1 syscall_entry_unknown id:i32=999 "
        "args:[u64=7,u64=8,u64=9,u64=0,u64=0,u64=0]\n"
        "1000033000 1 syscall_exit_unknown id:i32=999 ret:i64=-38 "
        "args:[u64=7,u64=8,u64=9,u64=0,u64=0,u64=0]\n"
        "1000040000 1 sched_process_fork parent_comm:str=bench parent_tid:i32=4242 "
        "parent_pid:i32=4242 parent_ns_inum:u32=4026531836 child_comm:str=bench "
        "child_tid:i32=4300 _vtids_length:u8=2 vtids:[i32=4300,i32=1] child_pid:i32=4300 "
        "child_ns_inum:u32=4026531836\n"
        "1000050000 1 sched_process_exec filename:str=/usr/bin/true tid:i32=4300 "
        "old_tid:i32=4300\n"
        "1000060000 1 sched_process_exit comm:str=true tid:i32=4300 prio:i32=20 "
        "group_dead:u8=1\n"
        "1000060000 1 sched_switch prev_comm:str=true prev_tid:i32=4300 prev_prio:i32=20 "
        "prev_state:i64=16 next_comm:str=swapper/1 next_tid:i32=0 next_prio:i32=20\n"
        "1002005000 0 sched_switch prev_comm:str=swapper/0 prev_tid:i32=0 prev_prio:i32=20 "
        "prev_state:i64=0 next_comm:str=bench next_tid:i32=4242 next_prio:i32=20\n"
        "6000000000 0 syscall_entry_getppid \n"
        "6000000700 0 syscall_exit_getppid ret:i64=4000\n";
    T_STR(out, want_py);

    snprintf(args, sizeof(args), "--clock-cycles --no-delta %s/kernel", d2);
    T_REQUIRE(bt2(args) == 0);
    static const char *const want2 =
        "[00000000011000000000] testhost syscall_entry_getppid: { cpu_id = 0 }, "
        "{ pid = 4242, tid = 4242 }, { }\n"
        "[00000000011000000100] testhost syscall_entry_read: { cpu_id = 1 }, "
        "{ pid = 4242, tid = 4242 }, { fd = 5, count = 4096 }\n"
        "[00000000011000000500] testhost syscall_exit_getppid: { cpu_id = 0 }, "
        "{ pid = 4242, tid = 4242 }, { ret = 4000 }\n"
        "[00000000012500000000] testhost syscall_exit_read: { cpu_id = 1 }, "
        "{ pid = 4242, tid = 4242 }, { ret = 4096, buf = 0x1000 }\n";
    T_STR(out, want2);
    T_OK(strstr(err, "Tracer discarded 3 events") != NULL);
    T_OK(strstr(err, "discarded packet") == NULL);

    /* both snapshots in one timeline: the counter's exact counts */
    snprintf(args, sizeof(args), "-c sink.utils.counter %s/kernel %s/kernel", d1, d2);
    T_REQUIRE(bt2(args) == 0);
    T_OK(strstr(out, "             21 Event messages\n") != NULL);
    T_OK(strstr(out, "              4 Stream beginning messages\n") != NULL);
    T_OK(strstr(out, "              6 Packet beginning messages\n") != NULL);
    T_OK(strstr(out, "              1 Discarded event message\n") != NULL);
    T_OK(strstr(out, "              0 Discarded packet messages\n") != NULL);

    /* each stream's time range as readers index it (timestamp_begin/end + the offset) */
    snprintf(args, sizeof(args),
             "query source.ctf.fs babeltrace.trace-infos -p 'inputs=[\"%s/kernel\"]'", d1);
    T_REQUIRE(bt2(args) == 0);
    T_OK(strstr(out, "begin: 1796601601000001000\n        end: 1796601606000000700\n") != NULL);
    T_OK(strstr(out, "begin: 1796601601000020000\n        end: 1796601601000060000\n") != NULL);
}

/* The host's whole system call table from tracefs (every format the kernel has): its metadata
 * parses in babeltrace2 and an openat event of it decodes. Skipped without tracefs. */
static void test_tracefs_table(void)
{
    struct sn_syscall_tab kt;
    struct sn_ctf_classes kc;
    T_REQUIRE(sn_syscall_tab_load(&kt, "/sys/kernel/tracing") == 0);
    if (kt.n <= tab.n) {
        sn_syscall_tab_free(&kt);
        t_skip("no tracefs formats on this host");
        return;
    }
    T_REQUIRE(sn_ctf_classes_build(&kc, &kt) == 0);
    char d[600];
    snprintf(d, sizeof(d), "%s/tracefs", root);
    struct sn_ctf_env env;
    env_fixed(&env, "snap3");
    struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &kc};
    struct sn_ctf_writer *w;
    T_REQUIRE(sn_ctf_writer_open(&w, d, &env, &o) == 0);
    struct sn_rec_event op = sys(1, 0, T0, NR_OPENAT, 0, (uint64_t)-100, 0x5000, 0x80000);
    op.u.sys.args[3] = 0644;
    op.u.sys.str[1] = "/etc/passwd";
    T_EQ(add(w, op), 0);
    T_EQ(add(w, sys(0, 0, T0 + 1, NR_OPENAT, -2, 0, 0, 0)), 0);
    T_EQ(sn_ctf_writer_close(w), 0);
    char args[800];
    snprintf(args, sizeof(args), "--clock-cycles --no-delta --names=payload %s/kernel", d);
    if (bt2(args) == 0)
        T_STR(out, "[00000000001000000000] testhost syscall_entry_openat: { 0 }, { 4242, 4242 }, "
                   "{ dfd = -100, filename = \"/etc/passwd\", flags = 524288, mode = 420 }\n"
                   "[00000000001000000001] testhost syscall_exit_openat: { 0 }, { 4242, 4242 }, "
                   "{ ret = -2 }\n");
    sn_ctf_classes_free(&kc);
    sn_syscall_tab_free(&kt);
}

/* A fleet's snapshot: DIR/<host>/kernel for two hosts with their own boot ids (clock uuids) and
 * clock offsets; babeltrace2 finds both under DIR and merges them into one timeline by wall
 * clock: hostB's event, 1 ms earlier in real time, comes first although its monotonic time is
 * later. */
static void test_two_hosts(void)
{
    char d[600], h[700];
    snprintf(d, sizeof(d), "%s/fleet", root);
    T_EQ(mkdir(d, 0755), 0); /* the writer makes DIR, not its parents */
    static const char *const hosts[] = {"hostA", "hostB"};
    for (int i = 0; i < 2; i++) {
        struct sn_ctf_env env;
        env_fixed(&env, "snapF");
        snprintf(env.hostname, sizeof(env.hostname), "%s", hosts[i]);
        env.uuid[15] = (uint8_t)i;
        env.boot_id[0] = i ? 'b' : 'a';
        /* hostB booted 10 s after hostA: its monotonic times are 10 s less for one instant */
        env.clock_offset_ns += i * 10 * 1000 * (int64_t)MS;
        snprintf(h, sizeof(h), "%s/%s", d, hosts[i]);
        struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &cls};
        struct sn_ctf_writer *w;
        T_REQUIRE(sn_ctf_writer_open(&w, h, &env, &o) == 0);
        uint64_t t = i ? T0 + 5 * 1000 * MS - MS : T0 + 15 * 1000 * MS;
        T_EQ(add(w, sys(1, 0, t, NR_GETPPID, 0, 0, 0, 0)), 0);
        T_EQ(sn_ctf_writer_close(w), 0);
    }
    char args[800];
    snprintf(args, sizeof(args), "--clock-seconds --no-delta --clock-gmt %s", d);
    T_REQUIRE(bt2(args) == 0);
    T_STR(out, "[1796601615.999000000] hostB syscall_entry_getppid: { cpu_id = 0 }, "
               "{ pid = 4242, tid = 4242 }, { }\n"
               "[1796601616.000000000] hostA syscall_entry_getppid: { cpu_id = 0 }, "
               "{ pid = 4242, tid = 4242 }, { }\n");
}

/* babeltrace 1.5 (Debian's babeltrace, installed by scripts/setup) reads snapshot 1 too: rc 0,
 * 17 events, the same text as babeltrace2's for an event. */
static void test_babeltrace1(void)
{
    T_REQUIRE(access("/usr/bin/babeltrace", X_OK) == 0); /* scripts/setup installs it */
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "/usr/bin/babeltrace --clock-cycles --no-delta %s/snap1/kernel",
             root);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("%s: rc %d\n%s", cmd, rc, err);
    T_EQ(rc, 0);
    T_EQ(count_lines("\n"), 17);
    T_OK(strstr(out,
                "syscall_entry_openat: { cpu_id = 1 }, { pid = 4242, tid = 4242 }, "
                "{ dfd = -100, filename = \"/etc/hostname\", flags = 0, mode = 0 }\n") != NULL);
}

/* lttng-analyses (Debian's python3-lttnganalyses, installed by scripts/setup) reads a snapshot
 * as a kernel trace: bench (4242) switched in, then openat, read, getppid, counted by
 * lttng-syscallstats. */
static void test_lttng_analyses(void)
{
    T_REQUIRE(access("/usr/bin/lttng-syscallstats", X_OK) == 0); /* scripts/setup installs it */
    char d[600];
    snprintf(d, sizeof(d), "%s/analyses", root);
    struct sn_ctf_env env;
    env_fixed(&env, "snap4");
    struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &cls};
    struct sn_ctf_writer *w;
    T_REQUIRE(sn_ctf_writer_open(&w, d, &env, &o) == 0);
    T_EQ(add(w, sw(0, T0, "swapper/0", 0, 0, "bench", 4242)), 0);
    struct sn_rec_event op = sys(1, 0, T0 + 1000, NR_OPENAT, 0, (uint64_t)-100, 0x5000, 0);
    op.u.sys.str[1] = "/etc/hostname";
    T_EQ(add(w, op), 0);
    T_EQ(add(w, sys(0, 0, T0 + 2000, NR_OPENAT, 3, 0, 0, 0)), 0);
    T_EQ(add(w, sys(1, 0, T0 + 3000, NR_READ, 0, 3, 0x7ffd1000, 1)), 0);
    T_EQ(add(w, sys(0, 0, T0 + 4000, NR_READ, 1, 3, 0x7ffd1000, 1)), 0);
    T_EQ(add(w, sys(1, 0, T0 + 5000, NR_GETPPID, 0, 0, 0, 0)), 0);
    T_EQ(add(w, sys(0, 0, T0 + 6000, NR_GETPPID, 4000, 0, 0, 0)), 0);
    T_EQ(add(w, sw(0, T0 + 7000, "bench", 4242, 1, "swapper/0", 0)), 0);
    T_EQ(sn_ctf_writer_close(w), 0);
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "/usr/bin/lttng-syscallstats --skip-validation --no-progress %s", d);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("%s: rc %d\n%s\n%s", cmd, rc, out, err);
    T_EQ(rc, 0);
    T_OK(strstr(out, "Total syscalls: 3") != NULL);
    T_OK(strstr(out, "bench (4242, TID: 4242)") != NULL);
    T_OK(strstr(out, " - openat                                           1 ") != NULL);
}

/* One event of each class of the proc's siblings (block, tcp, faults, usdt) through
 * babeltrace2's Python bindings: names, field order, signedness, size and base. */
static void test_group_events(void)
{
    struct sn_ctf_classes gc;
    struct sn_ctf_env env;
    struct sn_ctf_writer *w;
    char d[600], cmd[1500];
    uint64_t t = T0 + 50 * 1000 * MS;

    setup();
    snprintf(d, sizeof(d), "%s/groups", root);
    T_REQUIRE(sn_ctf_classes_build(&gc, &tab) == 0);
    T_REQUIRE(sn_ctf_classes_add_usdt(&gc, 0, "sonde_test", "work__start", 2) == 0);
    env_fixed(&env, "groups");
    struct sn_ctf_writer_opts o = {.ncpus = 1, .classes = &gc};
    T_REQUIRE(sn_ctf_writer_open(&w, d, &env, &o) == 0);
    struct sn_rec_event e = {.type = SN_REC_BLOCK_ISSUE, .ts = t, .tid = 4242, .pid = 4242};
    e.u.blk = (__typeof__(e.u.blk)){.dev = 254u << 20,
                                    .sector = 2048,
                                    .nr_sector = 8,
                                    .bytes = 4096,
                                    .tid = 4242,
                                    .rwbs = 0x21,
                                    .comm = "bench"};
    T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    e.type = SN_REC_BLOCK_COMPLETE, e.ts = t + 1000;
    e.u.blk = (__typeof__(e.u.blk)){
        .dev = 254u << 20, .sector = 2048, .nr_sector = 8, .error = -5, .rwbs = 0x21};
    T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    for (int k = 0; k < 3; k++) {
        e.type = (uint16_t)(SN_REC_TCP_CONNECT + k), e.ts = t + 2000 + (uint64_t)k;
        e.u.tcp = (__typeof__(e.u.tcp)){.skaddr = 0xffff1000,
                                        .skbaddr = k == 2 ? 0xffff2000 : 0,
                                        .sport = 40000,
                                        .dport = 80,
                                        .family = 2,
                                        .oldstate = k == 2 ? 1 : 2 + k,
                                        .newstate = 1,
                                        .err = k == 2 ? -11 : 0};
        e.u.tcp.saddr[10] = e.u.tcp.saddr[11] = e.u.tcp.daddr[10] = e.u.tcp.daddr[11] = 0xff;
        e.u.tcp.saddr[12] = e.u.tcp.daddr[12] = 127, e.u.tcp.saddr[15] = e.u.tcp.daddr[15] = 1;
        T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    }
    e.type = SN_REC_FAULT_USER, e.ts = t + 3000;
    e.u.fault = (__typeof__(e.u.fault)){.address = 0x7f0000001000, .ip = 0x401000, .error_code = 6};
    T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    e.type = SN_REC_FAULT_KERNEL, e.ts = t + 3001, e.u.fault.error_code = 2;
    T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    e.type = SN_REC_USDT, e.ts = t + 4000;
    e.u.usdt = (__typeof__(e.u.usdt)){.probe = 0, .nargs = 2, .args = {-1, 7}};
    T_EQ(sn_ctf_writer_add(w, 0, &e), 0);
    e.u.usdt.probe = 1; /* a probe without a class */
    T_EQ(sn_ctf_writer_add(w, 0, &e), -EINVAL);
    T_EQ(sn_ctf_writer_close(w), 0);

    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s/kernel", SN_CTF_FIELDS_PY, d);
    int prc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (prc != 0)
        t_note("%s: rc %d\n%s", cmd, prc, err);
    T_EQ(prc, 0);
#define ADDR                                                                                       \
    "[x8=0,x8=0,x8=0,x8=0,x8=0,x8=0,x8=0,x8=0,x8=0,x8=0,x8=255,x8=255,x8=127,x8=0,x8=0,x8=1]"
    static const char want[] =
        "51000000000 0 block_rq_issue dev:u32=266338304 sector:u64=2048 nr_sector:u32=8 "
        "bytes:u32=4096 tid:i32=4242 rwbs:u32=33 comm:str=bench\n"
        "51000001000 0 block_rq_complete dev:u32=266338304 sector:u64=2048 nr_sector:u32=8 "
        "error:i32=-5 rwbs:u32=33\n"
        "51000002000 0 net_tcp_connect skaddr:x64=4294905856 sport:u16=40000 dport:u16=80 "
        "family:u16=2 saddr:" ADDR " daddr:" ADDR " oldstate:i32=2 newstate:i32=1\n"
        "51000002001 0 net_tcp_accept skaddr:x64=4294905856 sport:u16=40000 dport:u16=80 "
        "family:u16=2 saddr:" ADDR " daddr:" ADDR " oldstate:i32=3 newstate:i32=1\n"
        "51000002002 0 net_tcp_retransmit_skb skaddr:x64=4294905856 skbaddr:x64=4294909952 "
        "sport:u16=40000 dport:u16=80 family:u16=2 saddr:" ADDR " daddr:" ADDR
        " state:i32=1 err:i32=-11\n"
        "51000003000 0 x86_exceptions_page_fault_user address:x64=139637976731648 "
        "ip:x64=4198400 error_code:x8=6\n"
        "51000003001 0 x86_exceptions_page_fault_kernel address:x64=139637976731648 "
        "ip:x64=4198400 error_code:x8=2\n"
        "51000004000 0 usdt_sonde_test_work__start arg0:i64=-1 arg1:i64=7\n";
#undef ADDR
    T_STR(out, want);
    sn_ctf_classes_free(&gc);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    t_run("snapshots", test_snapshots);
    t_run("tracefs_table", test_tracefs_table);
    t_run("two_hosts", test_two_hosts);
    t_run("babeltrace1", test_babeltrace1);
    t_run("lttng_analyses", test_lttng_analyses);
    t_run("group_events", test_group_events);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
