/*
 * Disk mode's sink (src/rec/disk_sink.h) driven as the drain drives it (events per CPU, then
 * a pass end), read by the real babeltrace2:
 *  - chunks rotate by time: three passes over 2.5 s with 1 s chunks give chunk-000000 (the
 *    first two passes' 40 events) and chunk-000001 (the last's 20), each a whole trace that
 *    babeltrace2 reads alone with exactly its events, both together as one timeline; no
 *    hidden part is left;
 *  - an event earlier than its CPU's last written one, and slots the drain lost, are counted
 *    in events_discarded (babeltrace2 warns; the packet holds the exact count), and
 *    packet_seq_num continues from chunk to chunk;
 *  - rotation by size, and the cap: the oldest closed chunks are removed, the newest kept;
 *  - bad options are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctf/syscall_tab.h"
#include "live/ctf_read.h"
#include "rec/disk_sink.h"
#include "t.h"

#define T0 5000000000ULL
#define MS 1000000ULL

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static char out[1 << 16], err[1 << 16];

static void pass(const struct sn_rec_sink *k, uint64_t t, int n, uint64_t lost)
{
    struct sn_rec_event ev[16];
    for (unsigned cpu = 0; cpu < 2; cpu++) {
        for (int i = 0; i < n; i++) {
            ev[i] = (struct sn_rec_event){.type = SN_REC_SYS_EXIT,
                                          .cpu = (uint16_t)cpu,
                                          .ts = t + (uint64_t)i * MS,
                                          .tid = 4242 + (int)cpu,
                                          .pid = 4242};
            ev[i].u.sys.nr = 110;
            ev[i].u.sys.ret = 4000 + i;
        }
        T_EQ(k->events(k->ctx, cpu, ev, (size_t)n, cpu == 0 ? lost : 0), 0);
    }
    k->pass_end(k->ctx, t + 500 * MS);
}

/* babeltrace2's count of getppid exits in the traces of cmd's arguments (-1: it failed). */
static long bt2_count(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "{ babeltrace2 %s | grep -c syscall_exit_getppid; }", args);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0 && rc != 1) {
        t_note("babeltrace2 %s: %d %s", args, rc, err);
        return -1;
    }
    return atol(out);
}

static void test_rotation(void)
{
    char dir[512], a[1100], b[1100], both[2300];
    snprintf(dir, sizeof(dir), "%s/disk-XXXXXX", t_outdir());
    T_REQUIRE(mkdtemp(dir) != NULL);
    struct sn_rec_sink k;
    struct sn_rec_disk *d;
    char why[256];
    struct sn_rec_disk_opts o = {
        .dir = dir, .session = "disk1", .cls = &cls, .ncpu = 2, .chunk_ns = 1000 * MS};
    T_REQUIRE(sn_rec_disk_sink(&o, &k, &d, why, sizeof(why)) == 0);
    pass(&k, T0, 10, 0);
    pass(&k, T0 + 1000 * MS, 10, 0); /* 1.5 s after the first event: chunk 0 closes */
    struct sn_rec_event early = {.type = SN_REC_SYS_EXIT, .ts = T0 + 1005 * MS, .tid = 1};
    early.u.sys.nr = 110;
    T_EQ(k.events(k.ctx, 0, &early, 1, 0), 0); /* before CPU 0's last: dropped, counted */
    pass(&k, T0 + 2000 * MS, 10, 3);           /* and 3 slots lost */
    struct sn_rec_disk_stats st;
    sn_rec_disk_stats(d, &st);
    T_EQU(st.chunks, 1);
    T_EQU(st.events, 60);
    T_EQU(st.lost, 4);
    k.end(k.ctx); /* closes chunk 1 */

    snprintf(a, sizeof(a), "%s/chunk-000000/kernel", dir);
    snprintf(b, sizeof(b), "%s/chunk-000001/kernel", dir);
    snprintf(both, sizeof(both), "%s %s", a, b);
    T_EQ(bt2_count(a), 40);
    T_EQ(bt2_count(b), 20);
    T_EQ(bt2_count(both), 60);
    T_OK(strstr(err, "discarded") != NULL); /* babeltrace2: "may have discarded events" */
    /* the count itself, in the packet's header (one packet per CPU in chunk 1) */
    char chan[1200];
    uint8_t pkt[4096];
    snprintf(chan, sizeof(chan), "%s/chan_0", b);
    FILE *f = fopen(chan, "rb");
    T_REQUIRE(f != NULL);
    size_t len = fread(pkt, 1, sizeof(pkt), f);
    fclose(f);
    struct sn_ctf_rd_packet pk;
    T_EQ(sn_ctf_rd_header(pkt, len, &pk), 0);
    T_EQU(pk.discarded, 4);
    T_EQ(pk.size, len);
    T_EQU(pk.seq, 2); /* continued: chunk 0 held packets 0 and 1 of CPU 0 */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls -A %s", dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "chunk-000000\nchunk-000001\n");
}

static void test_size_and_cap(void)
{
    char dir[512], cmd[1200];
    snprintf(dir, sizeof(dir), "%s/disk-XXXXXX", t_outdir());
    T_REQUIRE(mkdtemp(dir) != NULL);
    struct sn_rec_sink k;
    struct sn_rec_disk *d;
    char why[256];
    /* every pass fills a chunk (1 byte), and the cap keeps only the newest */
    struct sn_rec_disk_opts o = {
        .dir = dir, .session = "disk2", .cls = &cls, .ncpu = 2, .chunk_bytes = 1, .max_bytes = 1};
    T_REQUIRE(sn_rec_disk_sink(&o, &k, &d, why, sizeof(why)) == 0);
    for (int p = 0; p < 4; p++)
        pass(&k, T0 + (uint64_t)p * 100 * MS, 5, 0);
    struct sn_rec_disk_stats st;
    sn_rec_disk_stats(d, &st);
    T_EQU(st.chunks, 4);
    T_EQU(st.removed, 3);
    T_EQU(st.events, 40);
    k.end(k.ctx);
    snprintf(cmd, sizeof(cmd), "ls -A %s", dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "chunk-000003\n");
    snprintf(cmd, sizeof(cmd), "%s/chunk-000003/kernel", dir);
    T_EQ(bt2_count(cmd), 10);
}

static void test_bad(void)
{
    struct sn_rec_sink k;
    char why[256];
    struct sn_rec_disk_opts o = {.dir = "/proc/nope/x", .session = "s", .cls = &cls, .ncpu = 2};
    T_OK(sn_rec_disk_sink(&o, &k, NULL, why, sizeof(why)) < 0);
    T_OK(strstr(why, "cannot make /proc/nope/x") != NULL);
    o.ncpu = 0;
    T_EQ(sn_rec_disk_sink(&o, &k, NULL, why, sizeof(why)), -EINVAL);
    o.ncpu = 2, o.cls = NULL;
    T_EQ(sn_rec_disk_sink(&o, &k, NULL, why, sizeof(why)), -EINVAL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) != 0 || sn_ctf_classes_build(&cls, &tab) != 0)
        return 1;
    t_run("chunks by time, each a whole trace, one timeline; discarded counted", test_rotation);
    t_run("chunks by size; the cap removes the oldest", test_size_and_cap);
    t_run("bad options", test_bad);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
