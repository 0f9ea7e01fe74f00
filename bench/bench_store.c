/*
 * The store's benchmarks (make bench-store): issue 14's Speed figures, each measured for the
 * store and for its baseline in the same run, on the same data, printed with the goal it is
 * held to and the ratio baseline / store.
 *
 *   write   1,000 instrumentations x 20 keys x 40 buckets (numeric by key, latency-like
 *           histograms) each simulated second, through the path the server's writer takes:
 *           frames ingested into a real sn_agg that the store follows, then
 *           sn_store_flush(st, now) once per simulated second (one write transaction).
 *           Time per commit (wall, median and p99, with the disk's syncs; and the writer's
 *           CPU, which the goal is about) and bytes written per second, against the same
 *           histograms written as circllhist binary blobs (sn_hist_encode), one file per
 *           second, written whole and fsync'd (core/file.h: what .snds files got).
 *   read    one day of 1-min records (1,440 records x 40 buckets) read and merged, against
 *           decoding the same histograms from circllhist binary (sn_hist_decode) and merging.
 *   size    bytes per non-empty bucket in the stored records against circllhist's encoded
 *           length, and per instrumentation-day at each tier.
 *   rollup  the commits that roll up a minute, and those that roll up an hour, of the write
 *           benchmark's data (flushes at the period's closing second until none rolls anything
 *           up: a tick spends a bounded time on rollups), in all and the longest.
 *
 * Simulated time starts an hour or more ahead of the clock, so the store's own writer thread
 * (started by sn_store_follow()) finds nothing closed and leaves every write to the flushes
 * timed here. STORE_SECONDS (10..60, default 60: the whole first minute) sets the write benchmark's
 * length; BENCH_DIR the directory the files go to (default ./build: the disk, not a tmpfs). A run
 * takes about a minute; speed is reported, never asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg/agg.h"
#include "agg/dataset.h"
#include "bench_util.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/hist.h"
#include "store/record.h"
#include "store/store.h"
#include "wire/frame.h"

#define NINST    1000
#define NKEYS    20
#define NBUCKETS 40
#define NVAR     8 /* frame variants: each instrumentation's second picks one */
#define DAY      86400

/* goals (issue 14, Speed) */
#define GOAL_COMMIT_MS 50.0
#define GOAL_READ_MS   0.5
#define GOAL_BUCKET_B  3.0

static _Noreturn void die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %d (%s)\n", what, rc, strerror(rc < 0 ? -rc : rc));
    exit(1);
}

/* A latency-like histogram of exactly nb non-empty buckets: log-normal around 200 us (in ns),
 * counts 1..50. */
static struct sn_hist *latency_hist(int nb)
{
    struct sn_hist *h = sn_hist_create();
    while ((int)sn_hist_nbuckets(h) < nb) {
        double u = 0;
        for (int i = 0; i < 6; i++)
            u += bench_xrand01();
        double v = 2e5 * exp((u - 3.0) * 1.6);
        sn_hist_insert(h, v, 1 + bench_xrand() % 50);
    }
    return h;
}

/* Flushes at now until a flush rolls nothing up (bounded): the time of them all, the longest. */
static void roll_until_done(struct sn_store *st, int64_t now, double *total, double *longest,
                            int *n)
{
    struct sn_store_stats ss;
    *total = *longest = 0;
    *n = 0;
    for (int i = 0; i < 1000; i++) {
        sn_store_stats(st, &ss);
        uint64_t before = ss.rollups_written;
        double a = bench_mono_ms();
        int rc = sn_store_flush(st, now);
        double t = bench_mono_ms() - a;
        if (rc)
            die("sn_store_flush (rollups)", rc);
        sn_store_stats(st, &ss);
        if (ss.rollups_written == before)
            break;
        *total += t;
        *longest = t > *longest ? t : *longest;
        (*n)++;
    }
}

static void report(const char *what, double sonde, const char *unit, double base, double goal,
                   bool lower)
{
    char ratio[32] = "-", g[32] = "-", verdict[16] = "";
    if (base > 0)
        snprintf(ratio, sizeof(ratio), "%.1fx", lower ? base / sonde : sonde / base);
    if (goal > 0) {
        snprintf(g, sizeof(g), "<= %g", goal);
        snprintf(verdict, sizeof(verdict), "%s", sonde <= goal ? "met" : "MISSED");
    }
    char b[32] = "-";
    if (base > 0)
        snprintf(b, sizeof(b), "%.3f", base);
    printf("%-46s %10.3f %-6s %10s %8s %10s %7s\n", what, sonde, unit, b, ratio, g, verdict);
}

static char dir[512];

int main(void)
{
    const char *env_s = getenv("STORE_SECONDS"), *env_d = getenv("BENCH_DIR");
    bench_rng_seed(88172645463325252ULL); /* the same data in every run */
    int nsec = env_s ? atoi(env_s) : 60;
    if (nsec < 10)
        nsec = 10;
    if (nsec > 60)
        nsec = 60; /* one minute at most: its rollup is timed on its own after the loop */
    snprintf(dir, sizeof(dir), "%s/bench-store-XXXXXX", env_d ? env_d : "build");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof(dir), "/tmp/bench-store-XXXXXX");
        if (!mkdtemp(dir))
            die("mkdtemp", -errno);
    }
    char store_dir[600], blob_dir[600];
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    snprintf(blob_dir, sizeof(blob_dir), "%s/blobs", dir);
    mkdir(blob_dir, 0750);

    /* the frames: NVAR variants of 20 keys x 40 buckets; an instrumentation's second uses one */
    static char keyname[NKEYS][16];
    struct sn_wire_entry var[NVAR][NKEYS];
    uint64_t var_total[NVAR];
    for (int k = 0; k < NKEYS; k++)
        snprintf(keyname[k], sizeof(keyname[k]), "syscall%02d", k);
    for (int v = 0; v < NVAR; v++) {
        var_total[v] = 0;
        for (int k = 0; k < NKEYS; k++) {
            var[v][k].key = keyname[k];
            var[v][k].hist = latency_hist(NBUCKETS);
            var[v][k].count = sn_hist_count(var[v][k].hist);
            var_total[v] += var[v][k].count;
        }
    }
    static char ids[NINST][16];
    for (int i = 0; i < NINST; i++)
        snprintf(ids[i], sizeof(ids[i]), "inst%04d", i);

    /* the aggregator and the store following it */
    int64_t t0 = (sn_now() / 3600 + 2) * 3600; /* an hour start, over an hour ahead */
    struct sn_agg *agg;
    struct sn_store *st;
    struct sn_store_opts o = {.dir = store_dir};
    char why[256] = "";
    int rc;
    sn_tiers_default(&o.tiers);
    if ((rc = sn_agg_create(&agg)))
        die("sn_agg_create", rc);
    if ((rc = sn_store_open(&o, &st, why, sizeof(why)))) {
        fprintf(stderr, "bench_store: %s\n", why);
        return 1;
    }
    struct sn_ds_opts dso = {.arity = SN_WIRE_NUMERIC_BY_KEY, .granularity = 1, .retention = 10};
    struct sn_store_inst sin = {SN_WIRE_NUMERIC_BY_KEY, false, true, 1, 10};
    for (int i = 0; i < NINST; i++) {
        struct sn_dataset *ds = sn_ds_create(&dso);
        if (!ds || (rc = sn_agg_add(agg, ids[i], ds)))
            die("sn_agg_add", ds ? rc : -ENOMEM);
        sn_ds_destroy(ds);
        if ((rc = sn_store_inst_set(st, ids[i], &sin)))
            die("sn_store_inst_set", rc);
    }
    if ((rc = sn_store_follow(st, agg)))
        die("sn_store_follow", rc);

    printf("sonde store benchmarks (make bench-store): %d instrumentations x %d keys x %d "
           "buckets per second, %d s simulated, files in %s\n",
           NINST, NKEYS, NBUCKETS, nsec, dir);
    printf("%-46s %10s %-6s %10s %8s %10s %7s\n", "figure", "sonde", "unit", "baseline", "ratio",
           "goal", "");

    /* ---- write ---------------------------------------------------------------------------- */
    double *commit = calloc((size_t)nsec + 4, sizeof(double));
    double *ccpu = calloc((size_t)nsec + 4, sizeof(double));
    double *blob = calloc((size_t)nsec, sizeof(double));
    size_t ncommit = 0, nblob = 0;
    size_t cap = (size_t)64 << 20, blen;
    unsigned char *buf = malloc(cap);
    uint64_t blob_bytes = 0, hist_bytes = 0, hist_buckets = 0;
    double ingest_ms = 0;
    for (int s = 0; s < nsec; s++) {
        int64_t t = t0 + s;
        double a = bench_mono_ms();
        for (int i = 0; i < NINST; i++) {
            int v = (i * 7 + s) % NVAR;
            struct sn_wire_frame f = {.id = ids[i],
                                      .host = "bench",
                                      .t = t,
                                      .arity = SN_WIRE_NUMERIC_BY_KEY,
                                      .total = var_total[v],
                                      .n = NKEYS,
                                      .entries = var[v]};
            if ((rc = sn_agg_ingest(agg, &f, t, NULL)) != SN_DS_ADDED)
                die("sn_agg_ingest", rc);
        }
        sn_agg_expire(agg, t);
        ingest_ms += bench_mono_ms() - a;

        /* the store: one commit of the slots closed by t + 1 (1,000 records from s = 2 on) */
        a = bench_mono_ms();
        double c = bench_thread_cpu_s(); /* the writer's CPU: the flush runs in this thread */
        if ((rc = sn_store_flush(st, t + 1)))
            die("sn_store_flush", rc);
        if (s >= 1 + SN_STORE_GRACE) {
            ccpu[ncommit] = (bench_thread_cpu_s() - c) * 1e3;
            commit[ncommit++] = bench_mono_ms() - a;
        }

        /* the baseline: this second's histograms as circllhist blobs (key, length, bytes), one
         * file, written whole and fsync'd */
        a = bench_mono_ms();
        blen = 0;
        for (int i = 0; i < NINST; i++) {
            int v = (i * 7 + s) % NVAR;
            for (int k = 0; k < NKEYS; k++) {
                size_t need = sn_hist_encoded_len(var[v][k].hist, 0);
                if (blen + need + 32 > cap)
                    die("blob buffer", -ENOSPC);
                buf[blen++] = (unsigned char)i;
                buf[blen++] = (unsigned char)(i >> 8);
                buf[blen++] = (unsigned char)k;
                buf[blen++] = (unsigned char)need;
                buf[blen++] = (unsigned char)(need >> 8);
                ssize_t n = sn_hist_encode(var[v][k].hist, buf + blen, cap - blen, 0);
                if (n < 0)
                    die("sn_hist_encode", (int)n);
                blen += (size_t)n;
                hist_bytes += (uint64_t)n;
                hist_buckets += sn_hist_nbuckets(var[v][k].hist);
            }
        }
        char path[700];
        snprintf(path, sizeof(path), "%s/%" PRId64 ".hist", blob_dir, t);
        if ((rc = sn_file_write_atomic(path, buf, blen)))
            die("sn_file_write_atomic", rc);
        blob[nblob++] = bench_mono_ms() - a;
        blob_bytes += blen;
    }
    /* the last seconds' slots: written at the minute's closing second, no rollup yet */
    if ((rc = sn_store_flush(st, t0 + nsec + SN_STORE_GRACE)))
        die("sn_store_flush", rc);
    struct sn_store_stats ss;
    sn_store_stats(st, &ss);
    uint64_t raw_bytes = ss.bytes_written;
    double c50 = bench_pct_sort(commit, ncommit, 0.5), c99 = bench_pct_sort(commit, ncommit, 0.99);
    double b50 = bench_pct_sort(blob, nblob, 0.5), b99 = bench_pct_sort(blob, nblob, 0.99);
    report("write: commit of 1,000 slots, wall, median", c50, "ms", b50, 0, true);
    report("write: commit of 1,000 slots, wall, p99", c99, "ms", b99, 0, true);
    report("write: bytes per second (records put)", (double)raw_bytes / nsec / 1e6, "MB/s",
           (double)blob_bytes / nsec / 1e6, 0, true);
    /* the goal is CPU: a commit's wall time also waits for the disk's two syncs */
    double cpu50 = bench_pct_sort(ccpu, ncommit, 0.5);
    report("write: CPU per commit (the writer's), median", cpu50, "ms", 0, GOAL_COMMIT_MS, true);
    report("write: share of one core, median commit", cpu50 / 10.0, "%", 0, 5.0, true);
    printf("  (ingesting the frames into the aggregator: %.1f ms per second, not counted; "
           "store commits %" PRIu64 ", %.2f ms mean in the write transaction; baseline "
           "files written whole with fsync)\n",
           ingest_ms / nsec, ss.commits, ss.commits ? (double)ss.commit_ns / 1e6 / ss.commits : 0);

    /* ---- rollup: a minute, then an hour ---------------------------------------------------- */
    /* a tick computes rollups for a budget of time, the rest in the next ticks: the flushes at
     * the closing second, until one rolls nothing up, all counted, the longest noted */
    double a, minute_ms, minute_max;
    int minute_tx;
    uint64_t rolled0 = ss.rollups_written;
    roll_until_done(st, t0 + 60 + SN_STORE_GRACE + 1, &minute_ms, &minute_max, &minute_tx);
    sn_store_stats(st, &ss);
    uint64_t nminute = ss.rollups_written - rolled0;
    /* the hour: the minute's 1m record merged into every other minute of the hour (as if the
     * write benchmark had run an hour), then the commit at the hour's closing second */
    double fill_ms = bench_mono_ms();
    for (int i = 0; i < NINST; i++) {
        struct sn_ds_slot **rec;
        size_t n;
        bool values;
        if ((rc = sn_store_read(st, ids[i], SN_TIER_1M, t0, t0 + 60, &rec, &n, &values)) || n != 1)
            die("sn_store_read (1m)", rc ? rc : -ENOENT);
        const char *names[1] = {"bench"};
        uint32_t nsrc = rec[0]->nsrc;
        for (int m = 1; m < 60; m++) {
            rec[0]->t = t0 + 60 * m;
            rec[0]->nsrc = nsrc ? 1 : 0; /* one source, named "bench" */
            if ((rc = sn_store_merge(st, ids[i], SN_TIER_1M, rec[0], names)))
                die("sn_store_merge", rc);
        }
        rec[0]->nsrc = nsrc;
        sn_ds_slot_unref(rec[0]);
        free(rec);
        if (i % 100 == 99 && (rc = sn_store_flush(st, t0 + 3600)))
            die("sn_store_flush (fill)", rc);
    }
    fill_ms = bench_mono_ms() - fill_ms;
    sn_store_stats(st, &ss);
    rolled0 = ss.rollups_written;
    double hour_ms, hour_max;
    int hour_tx;
    roll_until_done(st, t0 + 3600 + SN_STORE_GRACE + 1, &hour_ms, &hour_max, &hour_tx);
    sn_store_stats(st, &ss);
    uint64_t nhour = ss.rollups_written - rolled0;
    report("rollup: a minute's rollups, all 1,000 (1m records)", minute_ms, "ms", 0, 0, true);
    report("rollup: the longest of its commits", minute_max, "ms", 0, 0, true);
    report("rollup: an hour's rollups, all 1,000 (1h records)", hour_ms, "ms", 0, 0, true);
    report("rollup: the longest of its commits", hour_max, "ms", 0, 0, true);
    printf("  (%" PRIu64 " 1-min rollups of %d raw records each in %d commits, %" PRIu64
           " 1-h rollups of 60 1-min records each in %d commits; filling the other 59 minutes "
           "by merge took %.0f ms)\n",
           nminute, nsec, minute_tx, nhour, hour_tx, fill_ms);

    /* ---- read: a day of 1-min records, 40 buckets each ------------------------------------ */
    int64_t day = t0 + DAY; /* within the raw tier's 2 days of the write benchmark's data */
    struct sn_store_inst rin = {SN_WIRE_NUMERIC, false, true, 1, 10};
    if ((rc = sn_store_inst_set(st, "day", &rin)))
        die("sn_store_inst_set", rc);
    struct sn_hist **dh = calloc(1440, sizeof(*dh));
    unsigned char **enc = calloc(1440, sizeof(*enc));
    size_t *enclen = calloc(1440, sizeof(*enclen));
    for (int m = 0; m < 1440; m++) {
        dh[m] = latency_hist(NBUCKETS);
        struct sn_ds_slot s = {.t = day + 60 * m, .count = sn_hist_count(dh[m]), .total = dh[m]};
        if ((rc = sn_store_merge(st, "day", SN_TIER_1M, &s, NULL)))
            die("sn_store_merge (day)", rc);
        enclen[m] = sn_hist_encoded_len(dh[m], 0);
        enc[m] = malloc(enclen[m]);
        sn_hist_encode(dh[m], enc[m], enclen[m], 0);
    }
    if ((rc = sn_store_flush(st, day + 60)))
        die("sn_store_flush (day)", rc);
    enum { RREPS = 51 };
    double rs[RREPS], rb[RREPS];
    uint64_t check_s = 0, check_b = 0;
    for (int r = 0; r < RREPS; r++) {
        struct sn_ds_slot **rec;
        size_t n;
        bool values;
        a = bench_mono_ms();
        /* as value/raw sums a view's slots (sn_agg_view_sum(): sn_ds_slot_add_many()) */
        struct sn_ds_slot sum = {0};
        if ((rc = sn_store_read(st, "day", SN_TIER_1M, day, day + DAY, &rec, &n, &values)))
            die("sn_store_read (day)", rc);
        if ((rc = sn_ds_slot_add_many(&sum, (const struct sn_ds_slot *const *)rec, n, false)))
            die("sn_ds_slot_add_many", rc);
        for (size_t i = 0; i < n; i++)
            sn_ds_slot_unref(rec[i]);
        free(rec);
        rs[r] = bench_mono_ms() - a;
        check_s = (sum.total ? sn_hist_count(sum.total) : 0) + n;
        sn_ds_slot_fini(&sum);

        a = bench_mono_ms();
        struct sn_hist *bsum = sn_hist_create(), *one = sn_hist_create();
        for (int m = 0; m < 1440; m++) {
            sn_hist_clear(one);
            if (sn_hist_decode(one, enc[m], enclen[m], 0) < 0)
                die("sn_hist_decode", -EINVAL);
            sn_hist_merge(bsum, one);
        }
        rb[r] = bench_mono_ms() - a;
        check_b = sn_hist_count(bsum) + 1440;
        sn_hist_destroy(one);
        sn_hist_destroy(bsum);
    }
    if (check_s != check_b)
        fprintf(stderr, "bench_store: the day read back differs (%" PRIu64 " != %" PRIu64 ")\n",
                check_s, check_b);
    report("read: a day of 1-min records, merged, median", bench_pct_sort(rs, RREPS, 0.5), "ms",
           bench_pct_sort(rb, RREPS, 0.5), GOAL_READ_MS, true);
    report("read: the same, p99", bench_pct_sort(rs, RREPS, 0.99), "ms",
           bench_pct_sort(rb, RREPS, 0.99), GOAL_READ_MS, true);

    /* ---- size: every stored record, by tier, through liblmdb after the close ------------- */
    sn_store_close(st);
    sn_agg_destroy(agg);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t recs[SN_NTIERS] = {0}, bytes[SN_NTIERS] = {0}, buckets[SN_NTIERS] = {0};
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 8)) ||
        (rc = mdb_env_open(env, store_dir, MDB_RDONLY, 0640)) ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
        (rc = mdb_dbi_open(txn, "data", 0, &dbi)) || (rc = mdb_cursor_open(txn, dbi, &cur)))
        die(mdb_strerror(rc), rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != 13 || kp[4] >= SN_NTIERS)
            continue;
        int64_t at = 0;
        for (int i = 5; i < 13; i++)
            at = at << 8 | kp[i];
        if (at >= day) /* the read benchmark's records */
            continue;
        ssize_t nb = sn_rec_buckets(v.mv_data, v.mv_size);
        if (nb < 0)
            continue;
        recs[kp[4]]++;
        bytes[kp[4]] += v.mv_size;
        buckets[kp[4]] += (uint64_t)nb;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    double per_bucket = buckets[0] ? (double)bytes[0] / (double)buckets[0] : 0;
    report("size: bytes per non-empty bucket (raw records)", per_bucket, "B",
           hist_buckets ? (double)hist_bytes / (double)hist_buckets : 0, GOAL_BUCKET_B, true);
    static const double per_day[SN_NTIERS] = {DAY, 1440, 24, 1};
    for (int t = 0; t < SN_NTIERS; t++) {
        if (!recs[t])
            continue;
        char what[64];
        double rec_bytes = (double)bytes[t] / (double)recs[t];
        snprintf(what, sizeof(what), "size: per instrumentation-day, tier %s", sn_tier_name(t));
        report(what, rec_bytes * per_day[t] / 1e6, "MB", 0, 0, true);
        printf("  (tier %s: %" PRIu64 " records, %.0f B and %.1f buckets each, %.2f B/bucket)\n",
               sn_tier_name(t), recs[t], rec_bytes, (double)buckets[t] / (double)recs[t],
               buckets[t] ? (double)bytes[t] / (double)buckets[t] : 0);
    }
    printf("baseline: write = the histograms as circllhist binary blobs, one file per second "
           "written whole with fsync; read = sn_hist_decode + merge of the same 1,440 "
           "histograms from memory; size = sn_hist_encode's length. ratio = baseline / sonde "
           "(size: circllhist's bytes per bucket / the store's).\n");

    for (int vv = 0; vv < NVAR; vv++)
        for (int kk = 0; kk < NKEYS; kk++)
            sn_hist_destroy(var[vv][kk].hist);
    for (int m = 0; m < 1440; m++) {
        sn_hist_destroy(dh[m]);
        free(enc[m]);
    }
    free(dh);
    free(enc);
    free(enclen);
    free(buf);
    free(commit);
    free(ccpu);
    free(blob);
    bench_rmtree(dir);
    return 0;
}
