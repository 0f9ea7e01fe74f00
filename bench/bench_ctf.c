/*
 * The CTF writer's cost (src/ctf/writer.h): what a snapshot of 64 MiB of rings costs to encode
 * and write, the part of issue 17's "snapshot of 64 MiB of rings to CTF" figure that is not the
 * ring copy (the design brief budgets <= 300 ms for it). 1,048,576 records (64 MiB of 64-byte
 * ring slots) on 2 CPUs: read entry/exit pairs with a sched_switch pair every 16 calls, in time
 * order, added, then closed (sorted, cut into packets, written, fsync'd, renamed) in a
 * directory under BENCH_DIR (default /tmp). CPU time of the thread (getrusage), the median of
 * BENCH_REPS runs (default 5), less the CPU of making the records (measured alone in each run);
 * wall-clock figures would not hold on the shared machine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "ctf/writer.h"

#define RECORDS (64u * 1024 * 1024 / 64)

static volatile uint64_t sink;

static void fill(struct sn_rec_event *ev, uint32_t i)
{
    memset(ev, 0, sizeof(*ev));
    uint32_t k = i / 2; /* one CPU's k-th record */
    ev->cpu = (uint16_t)(i & 1);
    ev->ts = 1000000000ULL + (uint64_t)k * 250; /* 4 M events/s per CPU */
    ev->tid = ev->pid = 4242 + (int32_t)(i & 1);
    if (k % 34 >= 32) { /* a switch out and back */
        ev->type = SN_REC_SCHED_SWITCH;
        memcpy(ev->u.sw.prev_comm, "bench", 6);
        memcpy(ev->u.sw.next_comm, "swapper/0", 10);
        ev->u.sw.prev_tid = ev->tid;
        ev->u.sw.prev_prio = ev->u.sw.next_prio = 20;
        ev->u.sw.prev_state = 1;
        return;
    }
    ev->type = (k & 1) ? SN_REC_SYS_EXIT : SN_REC_SYS_ENTER;
    ev->u.sys.nr = 0; /* read */
    ev->u.sys.ret = 1;
    ev->u.sys.args[0] = 3, ev->u.sys.args[1] = 0x7ffd1000, ev->u.sys.args[2] = 1;
}

static void fmt(char *out, size_t len, double v, const char *unit)
{
    snprintf(out, len, "%.1f %s", v, unit);
}

int main(void)
{
    const char *base = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp";
    int reps = bench_env_int("BENCH_REPS", 5);
    struct sn_syscall_tab tab;
    struct sn_ctf_classes cls;
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    double cpu[32], add_cpu[32], fill_cpu[32];
    uint64_t bytes = 0;
    if (reps > 32)
        reps = 32;
    for (int r = 0; r < reps; r++) {
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/bench-ctf-%d-%d", base, (int)getpid(), r);
        struct sn_ctf_env env = {0};
        snprintf(env.boot_id, sizeof(env.boot_id), "0b5e5e5e-1111-4222-8333-444455556666");
        struct sn_ctf_writer_opts o = {.ncpus = 2, .classes = &cls};
        struct sn_ctf_writer *w;
        /* the records' making alone, to take out of the figures */
        double f0 = bench_thread_cpu_s();
        struct sn_rec_event fe;
        for (uint32_t i = 0; i < RECORDS; i++) {
            fill(&fe, i);
            sink += fe.ts; /* keeps the loop */
        }
        fill_cpu[r] = bench_thread_cpu_s() - f0;
        double c0 = bench_thread_cpu_s();
        if (sn_ctf_writer_open(&w, dir, &env, &o) < 0)
            return 1;
        struct sn_rec_event ev;
        for (uint32_t i = 0; i < RECORDS; i++) {
            fill(&ev, i);
            if (sn_ctf_writer_add(w, ev.cpu, &ev) < 0)
                return 1;
        }
        double c1 = bench_thread_cpu_s();
        for (unsigned c = 0; c < 2; c++)
            if (sn_ctf_writer_flush_packet(w, c) < 0)
                return 1;
        bytes = sn_ctf_writer_bytes(w);
        if (sn_ctf_writer_close(w) < 0)
            return 1;
        double c2 = bench_thread_cpu_s();
        cpu[r] = c2 - c0 - fill_cpu[r];
        add_cpu[r] = c1 - c0 - fill_cpu[r];
        bench_rmtree(dir);
    }
    double med = bench_pct_sort(cpu, (size_t)reps, 50);
    double med_add = bench_pct_sort(add_cpu, (size_t)reps, 50);
    double med_fill = bench_pct_sort(fill_cpu, (size_t)reps, 50);
    bench_fig("64 MiB of rings (1,048,576 records) to CTF, CPU", med * 1e3, 300, "ms");
    bench_fig("  of which add (encode + stage)", med_add * 1e3, NAN, "ms");
    bench_fig("CPU per record", med * 1e9 / RECORDS, NAN, "ns");
    bench_fig("(the bench's own record making, taken out)", med_fill * 1e3, NAN, "ms");
    bench_fig("CTF bytes per record", (double)bytes / RECORDS, NAN, "B");
    bench_fig_print(
        &(struct bench_table_style){.target_head = "target", .name_width = 50, .fmt = fmt});
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return 0;
}
