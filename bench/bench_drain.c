/*
 * make bench-drain: the live drain's cost per event (src/rec/drain.h with the live sink of
 * live/live_rec.h on a real relay): a ring in memory of 2 CPUs into which this thread writes
 * DRAIN_EVENTS records (default 1,000,000: getppid exits, as the kernel writes them) in batches
 * of DRAIN_BATCH (default 10,000, e.g. 100 ms at 100k events/s), each taken by the drain's
 * thread (10 ms period) before the next: snapshot (copy and check of the slots), decode, CTF
 * packets, appends to the live feed. The figure is the CPU time of the process minus this
 * thread's, per event (the drain's thread; the relay's is idle: no viewer), median of
 * DRAIN_REPS rounds (default 5). It is what a live session costs `sonde serve` per recorded
 * event before any viewer reads (the relay's share while one reads is bench-live's).
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
        sn_rec_drain_start(&d, &(struct sn_rec_drain_opts){.period_ms = 10}) < 0)
        return 1;
    double *per = calloc((size_t)reps, sizeof(*per));
    long batch = bench_env_int("DRAIN_BATCH", 10000), written = 0;
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
        double p0 = bench_self_cpu_s(), t0 = bench_thread_cpu_s();
        for (long i = 0; i < nev; i++) { /* as bpf/rec.bpf.c writes a getppid exit */
            unsigned cpu = (unsigned)(i % NCPU);
            uint64_t h = __atomic_load_n(&heads[cpu].head, __ATOMIC_RELAXED);
            struct sn_rec_slot *sl = &slots[(size_t)cpu * nslots + (h & (nslots - 1))];
            __atomic_store_n(&sl->seq, 0, __ATOMIC_RELEASE);
            __atomic_store_n(&heads[cpu].head, h + 1, __ATOMIC_RELEASE);
            sl->type = SN_RK_SYS_EXIT;
            sl->nslots = 1;
            sl->flags = 0;
            sl->ts = 1000000000ull + (uint64_t)(written + i) * 1000;
            sl->tid = 4242 + cpu;
            sl->pid = 4242;
            sl->a[0] = 110;
            sl->a[1] = 4000;
            __atomic_store_n(&sl->seq, sn_rec_seq(h), __ATOMIC_RELEASE);
            if ((i + 1) % batch == 0 || i + 1 == nev) { /* then the drain takes them */
                struct sn_rec_drain_stats now;
                for (int w = 0; w < 10000; w++) {
                    sn_rec_drain_stats(d, &now);
                    if ((long)now.events >= written + i + 1)
                        break;
                    bench_sleep_until(CLOCK_MONOTONIC, (int64_t)(bench_mono_ns() + 1e6));
                }
            }
        }
        written += nev;
        /* the process's CPU but this thread's: the drain's thread (and the idle relay's) */
        per[r] = ((bench_self_cpu_s() - p0) - (bench_thread_cpu_s() - t0)) * 1e9 / (double)nev;
        sn_rec_drain_remove(d, id);
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
