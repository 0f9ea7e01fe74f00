/*
 * make bench-drain: the live drain's cost per event (src/rec/drain.h with the live sink of
 * live/live_rec.h on a real relay): a ring in memory of 2 CPUs, DRAIN_EVENTS records
 * (default 1,000,000: getppid exits, as the kernel writes them) written after the session is
 * added, then one pass: snapshot (copy and check of the slots), decode, CTF packets, appends
 * to the live feed. The figure is the pass's CPU time per event (this thread runs it:
 * sn_rec_drain_remove's last pass), median of DRAIN_REPS rounds (default 5). It is what a live
 * session costs `sonde serve` per recorded event, before any viewer reads (the relay's share
 * while a viewer reads is bench-live's).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ctf/syscall_tab.h"
#include "live/live_rec.h"
#include "live/relay.h"
#include "rec/drain.h"

#define NCPU 2

static void fmt(char *out, size_t len, double v, const char *unit)
{
    snprintf(out, len, "%.0f %s", v, unit);
}

int main(void)
{
    long nev = bench_env_int("DRAIN_EVENTS", 1000000), reps = bench_env_int("DRAIN_REPS", 5);
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    if (nev < 2 || reps < 1 || sn_syscall_tab_load(&tab, NULL) < 0 ||
        sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    uint32_t nslots = 1;
    while (nslots < (uint32_t)(nev / NCPU) + 1)
        nslots <<= 1;
    struct sn_rec_slot *slots = calloc((size_t)NCPU * nslots, sizeof(*slots));
    struct sn_rec_head heads[NCPU];
    memset(heads, 0, sizeof(heads));
    struct sn_rec_ring_view view = {slots, heads, NCPU, nslots};
    struct sn_relay *relay;
    struct sn_live_rec *pub;
    struct sn_rec_drain *d;
    if (!slots || sn_relay_start(&relay, &(struct sn_relay_opts){0}) < 0 ||
        sn_live_rec_new(&pub, &(struct sn_live_rec_opts){.relay = relay,
                                                         .hostname = "bench",
                                                         .period_ms = 100,
                                                         .max_bytes = (size_t)1 << 30}) < 0 ||
        sn_rec_drain_start(&d, &(struct sn_rec_drain_opts){.period_ms = 60000}) < 0)
        return 1;
    double *per = calloc((size_t)reps, sizeof(*per));
    for (long r = 0; r < reps; r++) {
        char why[256], name[32];
        struct sn_rec_sink sink;
        snprintf(name, sizeof(name), "bench%ld", r);
        if (sn_live_rec_sink(pub, name, NCPU, &cls, &sink, why, sizeof(why)) < 0) {
            fprintf(stderr, "%s\n", why);
            return 1;
        }
        int64_t id = sn_rec_drain_add(d, &view, &sink, 1);
        if (id < 0)
            return 1;
        for (long i = 0; i < nev; i++) { /* as bpf/rec.bpf.c writes a getppid exit */
            unsigned cpu = (unsigned)(i % NCPU);
            uint64_t h = heads[cpu].head++;
            struct sn_rec_slot *s = &slots[(size_t)cpu * nslots + (h & (nslots - 1))];
            *s = (struct sn_rec_slot){.type = SN_RK_SYS_EXIT,
                                      .nslots = 1,
                                      .ts = 1000000000ull + (uint64_t)i * 1000,
                                      .tid = 4242 + cpu,
                                      .pid = 4242,
                                      .a = {110, 4000}};
            s->seq = sn_rec_seq(h);
        }
        double c0 = bench_thread_cpu_s();
        sn_rec_drain_remove(d, id); /* the pass, on this thread */
        per[r] = (bench_thread_cpu_s() - c0) * 1e9 / (double)nev;
        sn_live_rec_reap(pub);
    }
    struct sn_rec_drain_stats st;
    sn_rec_drain_stats(d, &st);
    printf("%ld events a round on %d CPUs, %ld rounds; handed %llu, lost %llu\n", nev, NCPU, reps,
           (unsigned long long)st.events, (unsigned long long)st.lost);
    bench_fig("drain pass (snapshot, decode, CTF, feed), CPU per event",
              bench_pct_sort(per, (size_t)reps, 50), NAN, "ns");
    bench_fig_print(
        &(struct bench_table_style){.target_head = "target", .name_width = 56, .fmt = fmt});
    sn_rec_drain_stop(d);
    sn_live_rec_free(pub);
    sn_relay_stop(relay);
    free(per);
    free(slots);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return st.events == (unsigned long long)(nev * reps) && st.lost == 0 ? 0 : 1;
}
