/*
 * What the benchmarks share: clocks, percentiles, the random stream, the table of figures, CPU
 * from /proc, a run's chores. The contract, and why it is one file, is in bench_util.h.
 */
#include "bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

/* ---- clocks ------------------------------------------------------------------------------- */

double bench_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int64_t bench_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_sleep_until(clockid_t clk, int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    while (clock_nanosleep(clk, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

double bench_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- statistics --------------------------------------------------------------------------- */

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)ceil(p * (double)n);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return n ? v[i - 1] : NAN;
}

double bench_pct_sort(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return bench_pct(v, n, p);
}

/* ---- random numbers ----------------------------------------------------------------------- */

static uint64_t rng = BENCH_RNG_SEED;
static pthread_mutex_t rng_mu = PTHREAD_MUTEX_INITIALIZER;

void bench_rng_seed(uint64_t seed)
{
    pthread_mutex_lock(&rng_mu);
    rng = seed;
    pthread_mutex_unlock(&rng_mu);
}

uint64_t bench_xrand(void)
{
    pthread_mutex_lock(&rng_mu);
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    uint64_t r = rng;
    pthread_mutex_unlock(&rng_mu);
    return r;
}

double bench_xrand01(void)
{
    return (double)(bench_xrand() >> 11) * 0x1.0p-53;
}

double bench_xnormal(void)
{
    double u = bench_xrand01(), v = bench_xrand01();
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* ---- the table of figures ----------------------------------------------------------------- */

struct figure {
    char name[80];
    double measured, target; /* target NAN: none (reported only) */
    const char *unit;
    bool measured_ok; /* false: not measured (the value column says why) */
    char why[48];
};

static struct figure figs[48];
static int nfigs;

void bench_fig(const char *name, double measured, double target, const char *unit)
{
    if (nfigs == (int)(sizeof(figs) / sizeof(figs[0])))
        return;
    struct figure *f = &figs[nfigs++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->measured = measured;
    f->target = target;
    f->unit = unit;
    f->measured_ok = !isnan(measured);
    if (!f->measured_ok)
        snprintf(f->why, sizeof(f->why), "not measured");
}

void bench_fig_missing(const char *name, double target, const char *unit, const char *why)
{
    int before = nfigs;
    bench_fig(name, NAN, target, unit);
    if (nfigs > before)
        snprintf(figs[nfigs - 1].why, sizeof(figs[nfigs - 1].why), "%s", why);
}

void bench_fig_print(const struct bench_table_style *style)
{
    int w = style->name_width;
    printf("\n%-*s %14s %12s %7s  %s\n", w, "figure", "measured", style->target_head, "ratio",
           "verdict");
    for (int i = 0; i < nfigs; i++) {
        const struct figure *f = &figs[i];
        char m[48], t[48], r[16] = "-";
        const char *verdict = "-";
        if (f->measured_ok)
            style->fmt(m, sizeof(m), f->measured, f->unit);
        else
            snprintf(m, sizeof(m), "%s", f->why);
        if (isnan(f->target)) {
            snprintf(t, sizeof(t), "-");
        } else {
            char v[40];
            style->fmt(v, sizeof(v), f->target, f->unit);
            snprintf(t, sizeof(t), "<= %s", v);
        }
        if (f->measured_ok && !isnan(f->target)) {
            if (f->target > 0)
                snprintf(r, sizeof(r), "%.2f", f->measured / f->target);
            verdict = f->measured <= f->target ? "met" : "MISSED";
        } else if (!f->measured_ok && !isnan(f->target)) {
            verdict = "not measured";
        }
        printf("%-*s %14s %12s %7s  %s\n", w, f->name, m, t, r, verdict);
    }
}

/* ---- the machine -------------------------------------------------------------------------- */

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    if (pid <= 0)
        return NAN;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after the comm: state (3), then fields 4..13, utime (14), stime (15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void bench_machine_cpu_s(double *busy, double *steal)
{
    unsigned long long u = 0, n = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    FILE *f = fopen("/proc/stat", "r");
    *busy = *steal = NAN;
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io, &irq,
                    &sirq, &st) == 8) {
        *busy = (double)(u + n + sy + irq + sirq) / (double)sysconf(_SC_CLK_TCK);
        *steal = (double)st / (double)sysconf(_SC_CLK_TCK);
    }
    if (f)
        fclose(f);
}

/* ---- a run's chores ----------------------------------------------------------------------- */

int bench_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bench_rmtree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
