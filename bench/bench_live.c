/*
 * make bench-live: the live relay (src/live) streaming to one real babeltrace2 viewer
 * (`babeltrace2 -c sink.utils.counter -i lttng-live net://127.0.0.1:PORT/host/bench/live`,
 * session-not-found-action="end"). LIVE_EVENTS events (default 2,000,000: read entry/exit
 * pairs, 2 CPUs, 4096 events a packet) are encoded (live_packet.h) and appended to a feed
 * first, timed on their own; then the feed ends and the viewer reads it all. Figures: encode
 * and append CPU per event; events per second of wall time to the viewer; the viewer's CPU per
 * event (getrusage of the child) and the relay's (this process' CPU while the viewer reads:
 * the main thread only waits). Wall figures are noisy on a shared machine; CPU ones hold.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "ctf/tsdl.h"
#include "live/live_feed.h"
#include "live/live_packet.h"
#include "live/relay.h"

#define PER_PACKET 4096

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void fmt(char *out, size_t len, double v, const char *unit)
{
    snprintf(out, len, "%.0f %s", v, unit);
}

int main(void)
{
    long nev = bench_env_int("LIVE_EVENTS", 2000000);
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    struct sn_ctf_env env;
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0 ||
        sn_ctf_env_host(&env, "live", "live") < 0)
        return 1;
    snprintf(env.hostname, sizeof(env.hostname), "bench");
    struct sn_live_feed *f = sn_live_feed_new(2, (size_t)1 << 30);
    size_t mlen;
    char *meta = sn_ctf_tsdl(&env, &cls, &mlen);
    if (!f || !meta || sn_live_feed_metadata(f, meta, mlen) < 0)
        return 1;
    free(meta);

    struct sn_rec_event *ev = calloc(PER_PACKET, sizeof(*ev));
    uint8_t *pkt = NULL;
    size_t cap = 0;
    uint64_t seq[2] = {0, 0}, ts = 1000000000ull, bytes = 0;
    double c0 = bench_thread_cpu_s();
    for (long done = 0; done < nev;) {
        unsigned cpu = (unsigned)(done / PER_PACKET) % 2;
        size_t n = (size_t)(nev - done < PER_PACKET ? nev - done : PER_PACKET);
        for (size_t i = 0; i < n; i++) {
            struct sn_rec_event *e = &ev[i];
            memset(e, 0, sizeof(*e));
            e->type = i % 2 ? SN_REC_SYS_EXIT : SN_REC_SYS_ENTER;
            e->cpu = (uint16_t)cpu, e->ts = ts += 100, e->tid = e->pid = 4242;
            e->u.sys.nr = 0, e->u.sys.ret = 1, e->u.sys.args[0] = 3, e->u.sys.args[2] = 1;
        }
        struct sn_live_packet_info pi = {.classes = &cls, .cpu = cpu, .seq = seq[cpu]++};
        memcpy(pi.uuid, env.uuid, 16);
        ssize_t len = sn_live_packet(&pi, ev, n, &pkt, &cap);
        if (len < 0 || sn_live_feed_append(f, cpu, pkt, (size_t)len) < 0)
            return 1;
        bytes += (uint64_t)len;
        done += (long)n;
    }
    double encode_s = bench_thread_cpu_s() - c0;
    sn_live_feed_end(f);

    struct sn_relay *r;
    if (sn_relay_start(&r, &(struct sn_relay_opts){0}) < 0 ||
        sn_relay_add(r, "bench", "live", 1000000, sn_live_feed_source(f)) < 0)
        return 1;
    char url[128];
    snprintf(url, sizeof(url), "net://127.0.0.1:%u/host/bench/live", sn_relay_port(r));
    printf("viewer: babeltrace2 -c sink.utils.counter -i lttng-live %s "
           "--params='session-not-found-action=\"end\"'\n",
           url);
    double self0 = bench_self_cpu_s(), kids0 = children_cpu_s(), w0 = bench_mono_s();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execlp("babeltrace2", "babeltrace2", "-c", "sink.utils.counter", "-i", "lttng-live", url,
               "--params=session-not-found-action=\"end\"", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    double limit = w0 + 600;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (bench_mono_s() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    double wall = bench_mono_s() - w0;
    double viewer_s = children_cpu_s() - kids0, relay_s = bench_self_cpu_s() - self0;
    struct sn_relay_stats st;
    sn_relay_stats(r, &st);
    sn_relay_stop(r);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "babeltrace2 failed (status %d)\n", status);
        return 1;
    }
    printf("%ld events, %.1f MiB of CTF in %llu packets served\n", nev, (double)bytes / (1 << 20),
           (unsigned long long)st.packets);
    bench_fig("encode + append, CPU per event", encode_s * 1e9 / (double)nev, NAN, "ns");
    bench_fig("events/s to one babeltrace2 (wall)", (double)nev / wall, NAN, "ev/s");
    bench_fig("babeltrace2 CPU per event", viewer_s * 1e9 / (double)nev, NAN, "ns");
    bench_fig("relay CPU per event", relay_s * 1e9 / (double)nev, NAN, "ns");
    bench_fig("events per viewer CPU-second", (double)nev / viewer_s, NAN, "ev/s");
    bench_fig_print(
        &(struct bench_table_style){.target_head = "target", .name_width = 40, .fmt = fmt});
    sn_live_feed_free(f);
    free(ev);
    free(pkt);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return 0;
}
