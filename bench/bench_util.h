/*
 * What the benchmarks share (bench_fleet, bench_serve, bench_store, bench_agent, bench_hist):
 * clocks, nearest-rank percentiles, one seeded random stream, the table of figures printed at
 * the end of a run, what the machine's and a process's CPU did (from /proc), and the chores of
 * a run (an integer from the environment, removing the run's temporary directory).
 *
 * Why one file: each benchmark had its own copy of these helpers, and copies drift apart; here
 * a figure, a percentile or a CPU second means the same thing in every benchmark.
 * What only one benchmark needs (the serve bench's kept-alive client, the fleet's nodes) stays
 * in that benchmark.
 *
 * Benchmarks only: never linked into sonde nor into a test. Nothing here asserts a speed.
 * Every function is safe to call from any thread except the table of figures (bench_fig*,
 * bench_fig_print), which the benchmark's main thread fills and prints.
 */
#ifndef SN_BENCH_UTIL_H
#define SN_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---- clocks ------------------------------------------------------------------------------- */

/* CLOCK_MONOTONIC in seconds, milliseconds or nanoseconds (for intervals only). */
double bench_mono_s(void);
double bench_mono_ms(void);
double bench_mono_ns(void);

/* CLOCK_REALTIME in nanoseconds since the epoch (comparable across processes). */
int64_t bench_real_ns(void);

/* Sleeps until clk (CLOCK_MONOTONIC or CLOCK_REALTIME) reads ns; returns at once when it is
 * past. Signals do not cut it short. */
void bench_sleep_until(clockid_t clk, int64_t ns);

/* CPU time of the calling thread, in seconds. */
double bench_thread_cpu_s(void);

/* ---- statistics --------------------------------------------------------------------------- */

/* qsort() comparator of doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/* Nearest-rank percentile (p in [0, 1]) of v[0, n), which must be sorted; NAN when n is 0. */
double bench_pct(const double *v, size_t n, double p);

/* The same of v[0, n) in any order: sorts v first. */
double bench_pct_sort(double *v, size_t n, double p);

/* ---- random numbers ----------------------------------------------------------------------- */

/* The stream's state when bench_rng_seed() was never called. */
#define BENCH_RNG_SEED 0x9E3779B97F4A7C15ULL

/* Restarts the stream (xorshift64) at seed, which must not be 0. The same seed gives the same
 * numbers, so a benchmark that seeds with a constant draws the same data in every run. */
void bench_rng_seed(uint64_t seed);

/* The next number of the stream; serialized, so threads may share it. */
uint64_t bench_xrand(void);

/* Uniform in [0, 1), from the top 53 bits of bench_xrand(). */
double bench_xrand01(void);

/* Standard normal (Box-Muller on two bench_xrand01()). */
double bench_xnormal(void);

/* ---- the table of figures ----------------------------------------------------------------- */

/* How a benchmark prints its table: the heading of the target column ("target", "anchor"),
 * the width of the name column, and how a value is written for its unit ("ms", "s", "%", ...;
 * into out[0, len), always terminated). */
struct bench_table_style {
    const char *target_head;
    int name_width;
    void (*fmt)(char *out, size_t len, double v, const char *unit);
};

/* Adds a figure: what was measured, the target it is held to (NAN: none, reported only) and
 * its unit (a static string). A measured NAN is shown as "not measured". Names are cut at 79
 * bytes; past 48 figures, more are dropped. */
void bench_fig(const char *name, double measured, double target, const char *unit);

/* Adds a figure that could not be measured; why (cut at 47 bytes) stands in its value. */
void bench_fig_missing(const char *name, double target, const char *unit, const char *why);

/* Prints every figure added, in order, as a table on stdout: name, measured, target ("<= T"),
 * ratio measured / target and verdict ("met", "MISSED", "not measured", or "-" without a
 * target). */
void bench_fig_print(const struct bench_table_style *style);

/* ---- the machine -------------------------------------------------------------------------- */

/* utime + stime of process pid (/proc/PID/stat) in seconds, or NAN (no such process, pid <= 0,
 * unreadable). */
double bench_proc_cpu_s(pid_t pid);

/* user + system CPU time of this process (getrusage), in seconds. */
double bench_self_cpu_s(void);

/* CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq) and stolen
 * by the hypervisor, over every CPU, since boot (/proc/stat); both NAN when unreadable. */
void bench_machine_cpu_s(double *busy, double *steal);

/* ---- a run's chores ----------------------------------------------------------------------- */

/* The environment variable name as an integer (atoi), or dflt when unset or empty. */
int bench_env_int(const char *name, int dflt);

/* Removes dir and everything below it (links not followed), as far as it can: an entry that
 * cannot be removed is left and the rest is still removed. */
void bench_rmtree(const char *dir);

#endif
