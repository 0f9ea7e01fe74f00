/*
 * The live relay (src/live) end to end with the real babeltrace2 (Debian's 2.0.4, installed by
 * scripts/setup; not skipped when missing: it fails). A session of two streams (CPUs) is fed
 * real CTF packets (live_packet.h, over the src/ctf packet and event encoders) through a live feed;
 * babeltrace2 is started as a process on `-i lttng-live net://127.0.0.1:PORT/host/testhost/live1`
 * with session-not-found-action="end". The test is the producer: it appends a first batch before
 * the viewer attaches, a second one once the first is printed, beacons every flush period, and
 * ends the session. Asserted: the exact lines printed, the second batch printed within the
 * flush period + 1 s of its append, babeltrace2 exiting 0 once the session ended, and the
 * relay's counts (SN_KEEP_ERR=1 keeps babeltrace2's stderr in SN_TEST_OUT); again with packets
 * evicted before the viewer read them (babeltrace2 warns of the packet_seq_num gap, "discarded 2
 * packets"); and a live packet equal byte for byte to the trace writer's stream file. Every wait is
 * bounded; babeltrace2 is killed by its pid on a timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctf/event_class.h"
#include "ctf/writer.h"
#include "ctf/tsdl.h"
#include "live/live_feed.h"
#include "live/live_packet.h"
#include "live/relay.h"
#include "t.h"

#define T0         1000000000ULL /* CLOCK_MONOTONIC of the first event: 1 s after boot */
#define MS         1000000ULL
#define NR_GETPPID 110
#define NR_READ    0
#define PERIOD_MS  100 /* the flush period: a beacon each */

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;
static struct sn_ctf_env env;
static uint64_t seq[2];

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static struct sn_rec_event sys(int enter, int cpu, uint64_t ts, int64_t nr, int64_t ret,
                               uint64_t a0, uint64_t a2)
{
    struct sn_rec_event e = {.type = enter ? SN_REC_SYS_ENTER : SN_REC_SYS_EXIT,
                             .cpu = (uint16_t)cpu,
                             .ts = ts,
                             .tid = 4242 + cpu,
                             .pid = 4242};
    e.u.sys.nr = nr;
    e.u.sys.ret = ret;
    e.u.sys.args[0] = a0, e.u.sys.args[2] = a2;
    return e;
}

/* Appends ev[n] (one CPU's, in time order) to f as one packet (live_packet.h). */
static int append(struct sn_live_feed *f, const struct sn_rec_event *ev, size_t n, unsigned cpu)
{
    static uint8_t *pkt;
    static size_t cap;
    struct sn_live_packet_info pi = {.classes = &cls, .cpu = cpu, .seq = seq[cpu]++};
    memcpy(pi.uuid, env.uuid, 16);
    ssize_t len = sn_live_packet(&pi, ev, n, &pkt, &cap);
    if (len < 0)
        return (int)len;
    return sn_live_feed_append(f, cpu, pkt, (size_t)len);
}

/* babeltrace2 on url, its stdout (line-buffered through stdbuf) into a pipe: its pid. */
static pid_t start_bt2(const char *url, int *outfd, const char *errpath)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e >= 0)
            dup2(e, 2);
        execlp("stdbuf", "stdbuf", "-oL", "babeltrace2", "--clock-cycles", "--no-delta", "-i",
               "lttng-live", url, "--params=session-not-found-action=\"end\"", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *outfd = p[0];
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    return pid;
}

static char out[1 << 16];
static size_t out_len;

/* Reads what babeltrace2 printed, waiting at most ms. Returns -1 at its end of output. */
static int read_out(int fd, int ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, ms) <= 0)
        return 0;
    ssize_t n = read(fd, out + out_len, sizeof(out) - 1 - out_len);
    if (n == 0)
        return -1;
    if (n > 0) {
        out_len += (size_t)n;
        out[out_len] = '\0';
    }
    return 0;
}

static int count(const char *needle)
{
    int n = 0;
    for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static const char *expect1 =
    "[00000000001000001000] testhost syscall_entry_getppid: { cpu_id = 0 }, "
    "{ pid = 4242, tid = 4242 }, { }\n"
    "[00000000001000002000] testhost syscall_exit_getppid: { cpu_id = 0 }, "
    "{ pid = 4242, tid = 4242 }, { ret = 4000 }\n"
    "[00000000001000003000] testhost syscall_entry_read: { cpu_id = 1 }, "
    "{ pid = 4242, tid = 4243 }, { fd = 3, count = 1 }\n"
    "[00000000001000004000] testhost syscall_exit_read: { cpu_id = 1 }, "
    "{ pid = 4242, tid = 4243 }, { ret = 1, buf = 0x0 }\n";
static const char *expect2 =
    "[00000000001500001000] testhost syscall_entry_read: { cpu_id = 1 }, "
    "{ pid = 4242, tid = 4243 }, { fd = 5, count = 4096 }\n"
    "[00000000001500002000] testhost syscall_entry_getppid: { cpu_id = 0 }, "
    "{ pid = 4242, tid = 4242 }, { }\n"
    "[00000000001500003000] testhost syscall_exit_getppid: { cpu_id = 0 }, "
    "{ pid = 4242, tid = 4242 }, { ret = 4000 }\n"
    "[00000000001500004000] testhost syscall_exit_read: { cpu_id = 1 }, "
    "{ pid = 4242, tid = 4243 }, { ret = 4096, buf = 0x0 }\n";

/* Whether babeltrace2 asked nothing for the last 30 ms: it is then in its 100 ms retry delay,
 * and packets appended at once are all there when it asks again (they are evicted unread). */
static bool quiet(struct sn_relay *r)
{
    static uint64_t last_cmds, since;
    struct sn_relay_stats st;
    sn_relay_stats(r, &st);
    if (st.commands != last_cmds) {
        last_cmds = st.commands;
        since = now_ms();
        return false;
    }
    return now_ms() - since >= 30;
}

/* evict: each stream keeps only its newest packet, and two packets appended on CPU 0 just
 * before batch 2 are evicted unread: the same lines are printed, and babeltrace2 warns of the
 * packet_seq_num gap. */
static void run_bt2_live(bool evict)
{
    struct sn_relay *r = NULL;
    T_REQUIRE(sn_relay_start(&r, &(struct sn_relay_opts){0}) == 0);
    struct sn_live_feed *f = sn_live_feed_new(2, evict ? 1 : 0);
    T_REQUIRE(f != NULL);
    size_t mlen;
    char *meta = sn_ctf_tsdl(&env, &cls, &mlen);
    T_REQUIRE(meta && sn_live_feed_metadata(f, meta, mlen) == 0);
    free(meta);
    int64_t id = sn_relay_add(r, "testhost", "live1", PERIOD_MS * 1000, sn_live_feed_source(f));
    T_EQ(id, 1);
    T_EQ(sn_relay_add(r, "testhost", "live1", 1000, sn_live_feed_source(f)), -EEXIST);

    /* batch 1, before the viewer comes */
    struct sn_rec_event c0[] = {sys(1, 0, T0 + 1000, NR_GETPPID, 0, 0, 0),
                                sys(0, 0, T0 + 2000, NR_GETPPID, 4000, 0, 0)};
    struct sn_rec_event c1[] = {sys(1, 1, T0 + 3000, NR_READ, 0, 3, 1),
                                sys(0, 1, T0 + 4000, NR_READ, 1, 3, 1)};
    T_EQ(append(f, c0, 2, 0), 0);
    T_EQ(append(f, c1, 2, 1), 0);
    uint64_t vt = T0 + 4000; /* the producer's clock: a beacon each period */
    sn_live_feed_beacon(f, vt);

    char url[128], errpath[256];
    snprintf(url, sizeof(url), "net://127.0.0.1:%u/host/testhost/live1", sn_relay_port(r));
    const char *base = getenv("SN_TEST_OUT") ? getenv("SN_TEST_OUT") : "/tmp";
    snprintf(errpath, sizeof(errpath), "%s/test_live_bt2.%d.err", base, (int)getpid());
    int fd = -1;
    out_len = 0;
    out[0] = '\0';
    pid_t pid = start_bt2(url, &fd, errpath);
    T_REQUIRE(pid > 0);

    enum { WAIT1, WAIT2, ENDING } state = WAIT1;
    uint64_t start = now_ms(), t_append = 0, latency = 0, last_beacon = now_ms();
    int status = -1, eof = 0;
    while (now_ms() - start < 30000) {
        if (!eof && read_out(fd, 20) < 0)
            eof = 1;
        if (now_ms() - last_beacon >= PERIOD_MS) { /* the flush period */
            last_beacon = now_ms();
            vt += 10 * MS;
            if (state != ENDING && vt < T0 + 400 * MS)
                sn_live_feed_beacon(f, vt);
        }
        if (state == WAIT1 && count("\n") >= 4 && (!evict || quiet(r))) {
            struct sn_rec_event d0[] = {sys(1, 0, T0 + 500 * MS + 2000, NR_GETPPID, 0, 0, 0),
                                        sys(0, 0, T0 + 500 * MS + 3000, NR_GETPPID, 4000, 0, 0)};
            struct sn_rec_event d1[] = {sys(1, 1, T0 + 500 * MS + 1000, NR_READ, 0, 5, 4096),
                                        sys(0, 1, T0 + 500 * MS + 4000, NR_READ, 4096, 5, 4096)};
            if (evict) {
                struct sn_rec_event x[] = {sys(1, 0, T0 + 500 * MS, NR_GETPPID, 0, 0, 0),
                                           sys(0, 0, T0 + 500 * MS + 1, NR_GETPPID, 0, 0, 0)};
                T_EQ(append(f, &x[0], 1, 0), 0);
                T_EQ(append(f, &x[1], 1, 0), 0);
            }
            T_EQ(append(f, d0, 2, 0), 0);
            T_EQ(append(f, d1, 2, 1), 0);
            sn_live_feed_beacon(f, T0 + 500 * MS + 4000);
            t_append = now_ms();
            state = WAIT2;
        } else if (state == WAIT2 && count("\n") >= 8) {
            latency = now_ms() - t_append;
            sn_live_feed_end(f);
            state = ENDING;
        } else if (state == ENDING && eof) {
            if (waitpid(pid, &status, WNOHANG) == pid)
                break;
        }
    }
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        t_note("state %d after 30 s; printed:\n%s", (int)state, out);
        t_print_tail("babeltrace2", errpath, 4000);
    }
    close(fd);
    T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char want[4096];
    snprintf(want, sizeof(want), "%s%s", expect1, expect2);
    T_STR(out, want);
    T_OK(state == ENDING);
    if (!T_OK(latency <= PERIOD_MS + 1000))
        t_note("batch 2 printed %llu ms after its append", (unsigned long long)latency);
    else
        printf("# batch 2 printed %llu ms after its append\n", (unsigned long long)latency);

    struct sn_relay_stats st;
    sn_relay_stats(r, &st);
    printf("# %llu commands answered in %llu ms\n", (unsigned long long)st.commands,
           (unsigned long long)(now_ms() - start));
    T_EQU(st.attached, 1);
    T_EQU(st.packets, 4);
    T_EQU(st.refused, 0);
    sn_relay_stop(r);
    if (evict) {
        T_EQU(sn_live_feed_evicted(f) >= 2, 1);
        char err[8192] = "";
        FILE *fp = fopen(errpath, "r");
        if (fp) {
            size_t n = fread(err, 1, sizeof(err) - 1, fp);
            err[n] = '\0';
            fclose(fp);
        }
        if (!T_OK(strstr(err, "discarded 2 packets") != NULL))
            t_note("babeltrace2's stderr:\n%s", err);
    }
    sn_live_feed_free(f);
    if (!getenv("SN_KEEP_ERR"))
        unlink(errpath);
}

static void test_bt2_live(void)
{
    run_bt2_live(false);
}

static void test_bt2_live_evicted(void)
{
    run_bt2_live(true);
}

/* A live packet is byte for byte what the trace writer puts in a stream file for the same
 * events (one packet's worth): one encoding of CTF, whichever way it leaves. */
static void test_same_bytes_as_writer(void)
{
    char dir[256], path[300];
    const char *base = getenv("SN_TEST_OUT") ? getenv("SN_TEST_OUT") : "/tmp";
    snprintf(dir, sizeof(dir), "%s/test_live_bt2.%d", base, (int)getpid());
    struct sn_rec_event ev[] = {sys(1, 0, T0 + 1000, NR_READ, 0, 3, 1),
                                sys(0, 0, T0 + 2000, NR_READ, 1, 3, 1),
                                sys(1, 0, T0 + 6000 * MS, NR_GETPPID, 0, 0, 0), /* extended */
                                sys(0, 0, T0 + 6000 * MS + 5, NR_GETPPID, 4000, 0, 0)};
    struct sn_ctf_writer *w;
    T_REQUIRE(sn_ctf_writer_open(&w, dir, &env,
                                 &(struct sn_ctf_writer_opts){.ncpus = 1,
                                                              .classes = &cls,
                                                              .max_packet_ns = 10000 * MS}) == 0);
    for (size_t i = 0; i < 4; i++)
        T_EQ(sn_ctf_writer_add(w, 0, &ev[i]), 0);
    T_REQUIRE(sn_ctf_writer_close(w) == 0);
    snprintf(path, sizeof(path), "%s/kernel/chan_0", dir);
    static uint8_t file[4096];
    FILE *fp = fopen(path, "rb");
    T_REQUIRE(fp != NULL);
    size_t flen = fread(file, 1, sizeof(file), fp);
    fclose(fp);
    uint8_t *pkt = NULL;
    size_t cap = 0;
    struct sn_live_packet_info pi = {.classes = &cls, .cpu = 0, .seq = 0};
    memcpy(pi.uuid, env.uuid, 16);
    ssize_t len = sn_live_packet(&pi, ev, 4, &pkt, &cap);
    T_EQ(len, (ssize_t)flen);
    if (len == (ssize_t)flen)
        T_MEM(pkt, file, flen);
    struct sn_rec_event back[] = {ev[1], ev[0]};
    T_EQ(sn_live_packet(&pi, back, 2, &pkt, &cap), -EINVAL);
    T_EQ(sn_live_packet(&pi, ev, 0, &pkt, &cap), -EINVAL);
    free(pkt);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ(system(cmd), 0);
}

/* `babeltrace2 -i lttng-live net://127.0.0.1:PORT` (no session) lists the sessions, and so does
 * its query of the source's "sessions" object. */
static void test_list(void)
{
    struct sn_relay *r = NULL;
    T_REQUIRE(sn_relay_start(&r, &(struct sn_relay_opts){0}) == 0);
    struct sn_live_feed *f = sn_live_feed_new(3, 0);
    T_REQUIRE(f != NULL);
    T_EQ(sn_relay_add(r, "testhost", "live1", 250000, sn_live_feed_source(f)), 1);
    static char o[8192], e[8192];
    char cmd[512], want[128];
    snprintf(cmd, sizeof(cmd), "timeout 20 babeltrace2 -i lttng-live net://127.0.0.1:%u",
             sn_relay_port(r));
    int rc = t_capture(cmd, NULL, o, sizeof(o), e, sizeof(e));
    snprintf(want, sizeof(want), "net://127.0.0.1:%u/host/testhost/live1", sn_relay_port(r));
    if (!T_OK(rc == 0 && strstr(o, want) != NULL))
        t_note("rc %d\nstdout:\n%s\nstderr:\n%s", rc, o, e);
    snprintf(cmd, sizeof(cmd),
             "timeout 20 babeltrace2 query src.ctf.lttng-live sessions -p "
             "'url=\"net://127.0.0.1:%u\"'",
             sn_relay_port(r));
    rc = t_capture(cmd, NULL, o, sizeof(o), e, sizeof(e));
    if (!T_OK(rc == 0 && strstr(o, want) != NULL && strstr(o, "stream-count: 4") != NULL &&
              strstr(o, "timer-us: 250000") != NULL))
        t_note("rc %d\nstdout:\n%s\nstderr:\n%s", rc, o, e);
    sn_relay_stop(r);
    sn_live_feed_free(f);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (getenv("SN_TEST_OUT"))
        mkdir(getenv("SN_TEST_OUT"), 0755); /* ctest's; the build tree may not hold it yet */
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    memset(&env, 0, sizeof(env));
    snprintf(env.hostname, sizeof(env.hostname), "testhost");
    snprintf(env.kernel_release, sizeof(env.kernel_release), "6.1.0-test");
    snprintf(env.kernel_version, sizeof(env.kernel_version), "#1 SMP");
    snprintf(env.trace_name, sizeof(env.trace_name), "live1");
    snprintf(env.session, sizeof(env.session), "live1");
    snprintf(env.creation, sizeof(env.creation), "20261207T000000+0000");
    for (int i = 0; i < 16; i++)
        env.uuid[i] = (uint8_t)(0xa0 + i);
    snprintf(env.boot_id, sizeof(env.boot_id), "0b5e5e5e-1111-4222-8333-444455556666");
    env.clock_offset_ns = 1796601600LL * 1000000000LL;
    t_run("same_bytes_as_writer", test_same_bytes_as_writer);
    t_run("list", test_list);
    t_run("bt2_live", test_bt2_live);
    t_run("bt2_live_evicted", test_bt2_live_evicted);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
