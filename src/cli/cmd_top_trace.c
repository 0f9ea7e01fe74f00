/*
 * `sonde top --trace DIR` and `sonde top --live NAME`: per-process CPU time, system calls and
 * bytes read and written per second (live/ktop.h), from a recorder snapshot's CTF trace or
 * from a live session, as lttngtop shows them (docs/recorder.md, "Live reading"). One table per
 * second, in order: a snapshot is stepped through from its first second to its last; a live
 * session prints each second once it is over (half a second after, for the drain's period).
 *
 *   22:50:15  3 processes: 0.48 CPU s, 1234 system calls, 4.0 KiB read, 1 B written
 *       PID COMM               CPU%  SYSCALLS     READ B    WRITE B
 *      1717 perl               47.1      1231       4096          1
 *
 * The trace is read with live/ctf_read.h (Sonde's own packets, with the event classes its
 * metadata declares): each CPU's stream file is read whole and the streams are merged by time.
 * Plain lines, no terminal control: it pipes.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ctf/event_class.h"
#include "live/ctf_read.h"
#include "live/ktop.h"
#include "live/live_proto.h"
#include "live/viewer.h"

static const char usage[] =
    "usage: sonde top --trace DIR [--rows N] [--pid PID]\n"
    "       sonde top --live NAME [--relay [ADDR:]PORT] [--host HOST] [--rows N] [--pid PID]\n"
    "                 [--duration S]\n"
    "\n"
    "Per-process CPU time (from sched_switch), system calls, and bytes read and written (the\n"
    "read and write families' return values) per second, from a flight recorder snapshot\n"
    "(DIR: what `sonde record snapshot -o DIR` wrote, or its kernel/ directory) or from a live\n"
    "session (`sonde record start NAME --live`). Record the sched group for CPU time.\n"
    "\n"
    "options:\n"
    "  --trace DIR          step through the trace in DIR, second by second\n"
    "  --live NAME          follow live session NAME until it stops\n"
    "  --relay [ADDR:]PORT  --live: the server's live relay (default 127.0.0.1:5344)\n"
    "  --host HOST          --live: the session's host (default: any)\n"
    "  --rows N             processes per second at most (default 10; 0: all)\n"
    "  --pid PID            only process PID\n"
    "  --duration S         --live: exit after S seconds\n";

#define MAX_FILE (4ull << 30)

struct out {
    long rows;
    long pid;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void human(uint64_t b, char *out, size_t len)
{
    if (b < 1024)
        snprintf(out, len, "%" PRIu64 " B", b);
    else if (b < 1024 * 1024)
        snprintf(out, len, "%.1f KiB", (double)b / 1024);
    else
        snprintf(out, len, "%.1f MiB", (double)b / (1024 * 1024));
}

static void emit(void *ctx, int64_t second_ns, const struct sn_ktop_row *rows, size_t n)
{
    const struct out *o = ctx;
    uint64_t cpu = 0, sys = 0, rd = 0, wr = 0;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        cpu += rows[i].cpu_ns, sys += rows[i].syscalls;
        rd += rows[i].read_bytes, wr += rows[i].write_bytes;
    }
    time_t secs = (time_t)(second_ns / 1000000000);
    struct tm tm;
    char r[32], w[32];
    localtime_r(&secs, &tm);
    human(rd, r, sizeof(r));
    human(wr, w, sizeof(w));
    printf("%02d:%02d:%02d  %zu processes: %.2f CPU s, %" PRIu64 " system calls, %s read, %s "
           "written\n",
           tm.tm_hour, tm.tm_min, tm.tm_sec, n, (double)cpu / 1e9, sys, r, w);
    printf("%8s %-16s %6s %9s %10s %10s\n", "PID", "COMM", "CPU%", "SYSCALLS", "READ B", "WRITE B");
    for (size_t i = 0; i < n && (o->rows == 0 || (long)shown < o->rows); i++) {
        if (o->pid >= 0 && rows[i].pid != o->pid)
            continue;
        printf("%8d %-16s %6.1f %9" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", rows[i].pid,
               rows[i].comm, (double)rows[i].cpu_ns / 1e7, rows[i].syscalls, rows[i].read_bytes,
               rows[i].write_bytes);
        shown++;
    }
    printf("\n");
    fflush(stdout);
}

/* The whole file path (at most MAX_FILE bytes, NUL-terminated) into *buf: 0 or -errno. */
static int slurp(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) < 0 || (uint64_t)st.st_size > MAX_FILE) {
        fclose(f);
        return -EFBIG;
    }
    *buf = malloc((size_t)st.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!*buf)
        return -ENOMEM;
    (*buf)[*len] = 0;
    return 0;
}

/* One CPU's stream file, read event by event. */
struct stream {
    uint8_t *buf;
    size_t len, at; /* at: the current packet's offset */
    struct sn_ctf_rd_packet pk;
    size_t off;
    uint64_t prev;
    bool has; /* ev is the next event */
    struct sn_ctf_rd_event ev;
};

/* Moves s to its next event: 0 (s->has says whether there is one) or -EINVAL. */
static int advance(const struct sn_ctf_classes *cls, struct stream *s)
{
    s->has = false;
    while (s->at < s->len) {
        if (s->off == 0 && sn_ctf_rd_header(s->buf + s->at, s->len - s->at, &s->pk) != 0)
            return -EINVAL;
        if (s->off == 0)
            s->prev = 0;
        int rc = sn_ctf_rd_next(cls, s->buf + s->at, &s->pk, &s->off, &s->prev, &s->ev);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            s->has = true;
            return 0;
        }
        s->at += s->pk.size;
        s->off = 0;
    }
    return 0;
}

static int run_trace(const char *dir, struct out *o)
{
    struct sn_ctf_rd_classes rcls;
    const struct sn_ctf_classes *cls = &rcls.cls;
    char kdir[4096], path[4200];
    struct stream *s = NULL;
    unsigned ncpu = 0;
    int rc = 0;

    snprintf(kdir, sizeof(kdir), "%s/kernel", dir);
    snprintf(path, sizeof(path), "%s/metadata", kdir);
    if (access(path, R_OK) != 0)
        snprintf(kdir, sizeof(kdir), "%s", dir);
    snprintf(path, sizeof(path), "%s/metadata", kdir);
    uint8_t *meta;
    size_t mlen;
    if ((rc = slurp(path, &meta, &mlen)) < 0) {
        fprintf(stderr, "sonde top: %s: %s (want a snapshot directory or its kernel/)\n", path,
                strerror(-rc));
        return SN_EXIT_FAILURE;
    }
    int64_t offset = 0;
    bool ok = sn_ctf_rd_clock_offset((const char *)meta, &offset) == 0 &&
              sn_ctf_rd_classes_parse((const char *)meta, &rcls) == 0;
    free(meta);
    if (!ok) {
        fprintf(stderr, "sonde top: %s: not a trace of Sonde's recorder (its metadata)\n", kdir);
        return SN_EXIT_FAILURE;
    }
    DIR *d = opendir(kdir);
    if (!d) {
        sn_ctf_rd_classes_free(&rcls);
        return SN_EXIT_FAILURE;
    }
    for (struct dirent *e; (e = readdir(d));) {
        unsigned cpu;
        char tail;
        if (sscanf(e->d_name, "chan_%u%c", &cpu, &tail) == 1 && cpu < 4096 && cpu + 1 > ncpu)
            ncpu = cpu + 1;
    }
    closedir(d);
    if (ncpu == 0) {
        fprintf(stderr, "sonde top: %s: no stream (chan_N)\n", kdir);
        sn_ctf_rd_classes_free(&rcls);
        return SN_EXIT_FAILURE;
    }
    s = calloc(ncpu, sizeof(*s));
    struct sn_ktop *k = NULL;
    if (!s || sn_ktop_new(&k, cls, ncpu, offset) != 0) {
        free(s);
        sn_ctf_rd_classes_free(&rcls);
        fprintf(stderr, "sonde top: out of memory\n");
        return SN_EXIT_FAILURE;
    }
    for (unsigned c = 0; c < ncpu && rc == 0; c++) {
        snprintf(path, sizeof(path), "%s/chan_%u", kdir, c);
        if (access(path, F_OK) != 0)
            continue;
        if ((rc = slurp(path, &s[c].buf, &s[c].len)) < 0)
            fprintf(stderr, "sonde top: %s: %s\n", path, strerror(-rc));
        else if ((rc = advance(cls, &s[c])) < 0)
            fprintf(stderr, "sonde top: %s: a bad packet at byte %zu\n", path, s[c].at);
    }
    while (rc == 0 && !stop) {
        int best = -1;
        for (unsigned c = 0; c < ncpu; c++)
            if (s[c].has && (best < 0 || s[c].ev.ts < s[best].ev.ts))
                best = (int)c;
        if (best < 0)
            break;
        if ((rc = sn_ktop_event(k, (unsigned)best, &s[best].ev, emit, o)) < 0)
            break;
        if ((rc = advance(cls, &s[best])) < 0)
            fprintf(stderr, "sonde top: %s/chan_%d: a bad packet at byte %zu\n", kdir, best,
                    s[best].at);
    }
    if (rc == 0)
        sn_ktop_flush(k, emit, o);
    for (unsigned c = 0; c < ncpu; c++)
        free(s[c].buf);
    free(s);
    sn_ktop_free(k);
    sn_ctf_rd_classes_free(&rcls);
    return rc == 0 ? SN_EXIT_OK : SN_EXIT_FAILURE;
}

struct live {
    struct sn_ktop *k;
    struct out *o;
    const struct sn_ctf_classes *cls;
    struct {
        uint8_t *bytes;
        size_t len;
    } * pkt; /* the packets of one poll, copied */
    size_t npkt, pkt_cap;
    struct item {
        struct sn_ctf_rd_event ev;
        unsigned cpu;
        size_t seq; /* ties keep the streams' order */
    } * it;
    size_t n, cap;
};

static int keep_packet(void *ctx, unsigned stream, const uint8_t *pkt, size_t len)
{
    struct live *l = ctx;
    (void)stream;
    if (l->npkt == l->pkt_cap) {
        size_t cap = l->pkt_cap * 2 + 16;
        void *g = realloc(l->pkt, cap * sizeof(*l->pkt));
        if (!g)
            return -ENOMEM;
        l->pkt = g;
        l->pkt_cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, pkt, len);
    l->pkt[l->npkt].bytes = copy;
    l->pkt[l->npkt++].len = len;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->ev.ts != y->ev.ts)
        return x->ev.ts < y->ev.ts ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Counts the events of the poll's packets in time order across CPUs, then frees them. */
static int count_poll(struct live *l)
{
    int rc = 0;
    l->n = 0;
    for (size_t p = 0; p < l->npkt && rc == 0; p++) {
        struct sn_ctf_rd_packet pk;
        size_t off = 0;
        uint64_t prev = 0;
        if (sn_ctf_rd_header(l->pkt[p].bytes, l->pkt[p].len, &pk) != 0) {
            rc = -EPROTO;
            break;
        }
        for (;;) {
            if (l->n == l->cap) {
                size_t cap = l->cap * 2 + 1024;
                struct item *g = realloc(l->it, cap * sizeof(*g));
                if (!g) {
                    rc = -ENOMEM;
                    break;
                }
                l->it = g;
                l->cap = cap;
            }
            int r = sn_ctf_rd_next(l->cls, l->pkt[p].bytes, &pk, &off, &prev, &l->it[l->n].ev);
            if (r < 0)
                rc = -EPROTO;
            if (r != 1)
                break;
            l->it[l->n].cpu = pk.cpu < 4096 ? pk.cpu : 0;
            l->it[l->n].seq = l->n;
            l->n++;
        }
    }
    if (rc == 0 && l->n > 1)
        qsort(l->it, l->n, sizeof(*l->it), by_time);
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        rc = sn_ktop_event(l->k, l->it[i].cpu, &l->it[i].ev, emit, l->o);
    for (size_t p = 0; p < l->npkt; p++)
        free(l->pkt[p].bytes);
    l->npkt = 0;
    return rc;
}

static int run_live(const char *addr, uint16_t port, const char *host, const char *name,
                    long duration, struct out *o)
{
    char why[512];
    struct sn_live_viewer *vw = NULL;
    struct sn_ctf_rd_classes rcls = {0};
    const struct sn_ctf_classes *cls = &rcls.cls;
    struct live l = {.o = o, .cls = cls};
    int64_t offset = 0;
    int rc = sn_live_viewer_open(&vw, addr, port, host, name, why, sizeof(why));
    size_t mlen;
    if (rc == 0 && (sn_ctf_rd_clock_offset(sn_live_viewer_metadata(vw, &mlen), &offset) != 0 ||
                    sn_ctf_rd_classes_parse(sn_live_viewer_metadata(vw, &mlen), &rcls) != 0)) {
        snprintf(why, sizeof(why), "the metadata of session \"%s\" is not a Sonde recording's",
                 name);
        rc = -EPROTO;
    }
    if (rc == 0 && sn_ktop_new(&l.k, cls, 4096, offset) != 0) {
        snprintf(why, sizeof(why), "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0) {
        fprintf(stderr, "sonde top: %s\n", why);
        sn_live_viewer_close(vw);
        sn_ctf_rd_classes_free(&rcls);
        return SN_EXIT_FAILURE;
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int code = SN_EXIT_OK;
    while (!stop) {
        int n = sn_live_viewer_poll(vw, keep_packet, &l);
        int crc = count_poll(&l);
        if (n >= 0 && crc < 0)
            n = crc;
        if (n == -EPIPE)
            break;
        if (n < 0) {
            fprintf(stderr, "sonde top: the relay: %s\n", strerror(-n));
            code = SN_EXIT_FAILURE;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* a second is over half a second after its end (the drain's period is 100 ms) */
        sn_ktop_advance(l.k, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + offset - 500000000,
                        emit, o);
        if (duration && now.tv_sec - t0.tv_sec >= duration)
            break;
        if (n == 0)
            usleep(100000);
    }
    if (code == SN_EXIT_OK)
        sn_ktop_flush(l.k, emit, o);
    sn_ktop_free(l.k);
    sn_ctf_rd_classes_free(&rcls);
    free(l.pkt);
    free(l.it);
    sn_live_viewer_close(vw);
    return code;
}

int sn_cmd_top_trace(int argc, char **argv)
{
    enum { O_TRACE = 1, O_LIVE, O_RELAY, O_HOST, O_ROWS, O_PID, O_DURATION };
    static const struct option longopts[] = {
        {"trace", required_argument, NULL, O_TRACE},
        {"live", required_argument, NULL, O_LIVE},
        {"relay", required_argument, NULL, O_RELAY},
        {"host", required_argument, NULL, O_HOST},
        {"rows", required_argument, NULL, O_ROWS},
        {"pid", required_argument, NULL, O_PID},
        {"duration", required_argument, NULL, O_DURATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *trace = NULL, *live = NULL, *host = NULL;
    char addr[64] = "127.0.0.1", why[256];
    uint16_t port = SN_LIVE_PORT;
    struct out o = {.rows = 10, .pid = -1};
    long duration = 0, v;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_TRACE:
            trace = optarg;
            break;
        case O_LIVE:
            live = optarg;
            break;
        case O_RELAY:
            if (sn_cli_live_addr(optarg, addr, sizeof(addr), &port, why, sizeof(why)) < 0) {
                fprintf(stderr, "sonde top: --relay %s: %s\n", optarg, why);
                return SN_EXIT_USAGE;
            }
            break;
        case O_HOST:
            host = optarg;
            break;
        case O_ROWS:
        case O_PID:
        case O_DURATION:
            v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "sonde top: --%s wants a number, not '%s'\n", longopts[c - 1].name,
                        optarg);
                return SN_EXIT_USAGE;
            }
            if (c == O_ROWS)
                o.rows = v;
            else if (c == O_PID)
                o.pid = v;
            else
                duration = v;
            break;
        case 'h':
            fputs(usage, stdout);
            return SN_EXIT_OK;
        default:
            fprintf(stderr, "sonde top: %s option '%s'\n%s",
                    c == ':' ? "missing value for" : "unknown", argv[optind - 1], usage);
            return SN_EXIT_USAGE;
        }
    }
    if (optind != argc || !trace == !live) {
        fputs(usage, stderr);
        return SN_EXIT_USAGE;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    return trace ? run_trace(trace, &o) : run_live(addr, port, host, live, duration, &o);
}
