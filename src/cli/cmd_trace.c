/*
 * `sonde trace NAME`: prints the events of a live recording session as they come, one line
 * each (docs/recorder.md, "Live reading"):
 *
 *   TIME CPU COMM TID EVENT FIELD=VALUE ...
 *   22:49:01.123456789 1 perl 25964 syscall_exit_getppid ret=25950
 *
 * It is a viewer of the live relay of `sonde serve --live-listen` (live/viewer.h, LTTng's live
 * protocol, the relay's own wire code), so it needs no second path through the server: the
 * packets it reads are the ones babeltrace2 reads, decoded by live/ctf_read.h with the event
 * classes the session's metadata declares (Sonde's own TSDL, parsed back: no system call table
 * is needed, so it runs without root).
 * TIME is the wall clock (CLOCK_MONOTONIC plus the offset the session's metadata declares), COMM
 * the task's name from its last scheduler event in the stream, else /proc/TID/comm, else "?".
 * Filters are the client's: --pid, --tid, --execname (COMM), --event (a glob on the event's name);
 * the session's own predicate, in the kernel, is set when it starts. Events of one poll are printed
 * in time order across CPUs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ctf/event_class.h"
#include "ctf/writer.h"
#include "live/ctf_read.h"
#include "live/live_proto.h"
#include "live/viewer.h"

static const char usage[] =
    "usage: sonde trace NAME [--relay [ADDR:]PORT] [--host HOST] [--pid PID] [--tid TID]\n"
    "                   [--execname COMM] [--event GLOB] [--count N] [--duration S]\n"
    "\n"
    "Prints the events of live recording session NAME as they come (a session started with\n"
    "`sonde record start NAME --live` on a server run with --live-listen), one line each:\n"
    "TIME CPU COMM TID EVENT FIELD=VALUE... Exits when the session stops.\n"
    "\n"
    "options:\n"
    "  --relay [ADDR:]PORT  the server's live relay (default 127.0.0.1:5344)\n"
    "  --host HOST          the session's host as the relay lists it (default: any)\n"
    "  --pid PID            only events of process PID\n"
    "  --tid TID            only events of thread TID\n"
    "  --execname COMM      only events of tasks named COMM\n"
    "  --event GLOB         only events whose name matches GLOB (e.g. 'syscall_*_read')\n"
    "  --count N            exit after N events printed\n"
    "  --duration S         exit after S seconds\n"
    "  -h, --help           this help\n"
    "\n"
    "exit codes: 0 the session ended (or --count, --duration, SIGINT), 1 no relay or no such\n"
    "session, or a session that is not a Sonde recording's, 2 usage error\n";

#define COMM_SLOTS 4096

struct filt {
    long pid, tid;
    const char *comm, *event;
    uint64_t count;
};

struct line {
    uint64_t ts;
    char *text; /* malloc'd, without TIME */
};

struct state {
    const struct sn_ctf_classes *cls;
    struct filt f;
    int64_t offset_ns; /* realtime - monotonic */
    struct {
        int32_t tid;
        char comm[SN_REC_COMM_LEN + 1];
    } comm[COMM_SLOTS];
    struct line *lines;
    size_t n, cap;
    uint64_t printed, discarded;
    int64_t last_disc[SN_CTF_MAX_CPUS];
};

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void learn(struct state *st, int32_t tid, const char *comm)
{
    if (tid <= 0)
        return;
    unsigned k = (unsigned)tid % COMM_SLOTS;
    st->comm[k].tid = tid;
    snprintf(st->comm[k].comm, sizeof(st->comm[k].comm), "%s", comm);
}

static const char *comm_of(struct state *st, int32_t tid)
{
    unsigned k = (unsigned)tid % COMM_SLOTS;
    if (tid <= 0)
        return tid == 0 ? "swapper" : "?";
    if (st->comm[k].tid != tid) {
        char path[64], c[64] = "?";
        snprintf(path, sizeof(path), "/proc/%d/comm", tid);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(c, sizeof(c), f))
                c[strcspn(c, "\n")] = '\0';
            fclose(f);
        }
        learn(st, tid, c);
    }
    return st->comm[k].comm;
}

/* The scheduler events name tasks: remember them. */
static void learn_event(struct state *st, const struct sn_ctf_rd_event *ev)
{
    char c[SN_REC_COMM_LEN + 1];
    int64_t t;
    if (!sn_ctf_rd_str(ev, "next_comm", c, sizeof(c)) && !sn_ctf_rd_int(ev, "next_tid", &t))
        learn(st, (int32_t)t, c);
    if (!sn_ctf_rd_str(ev, "prev_comm", c, sizeof(c)) && !sn_ctf_rd_int(ev, "prev_tid", &t))
        learn(st, (int32_t)t, c);
    if (!sn_ctf_rd_str(ev, "comm", c, sizeof(c)) && !sn_ctf_rd_int(ev, "tid", &t))
        learn(st, (int32_t)t, c);
}

static int on_packet(void *ctx, unsigned stream, const uint8_t *pkt, size_t len)
{
    struct state *st = ctx;
    struct sn_ctf_rd_packet pk;
    struct sn_ctf_rd_event ev;
    size_t off = 0;
    uint64_t prev = 0;
    char fields[2048];
    int rc;

    if (sn_ctf_rd_header(pkt, len, &pk) != 0)
        return -EPROTO;
    if (stream < SN_CTF_MAX_CPUS) {
        if (pk.discarded > (uint64_t)st->last_disc[stream])
            st->discarded += pk.discarded - (uint64_t)st->last_disc[stream];
        st->last_disc[stream] = (int64_t)pk.discarded;
    }
    while ((rc = sn_ctf_rd_next(st->cls, pkt, &pk, &off, &prev, &ev)) == 1) {
        learn_event(st, &ev);
        const char *comm = comm_of(st, ev.tid);
        if ((st->f.pid >= 0 && ev.pid != st->f.pid) || (st->f.tid >= 0 && ev.tid != st->f.tid) ||
            (st->f.comm && strcmp(comm, st->f.comm) != 0) ||
            (st->f.event && fnmatch(st->f.event, ev.cls->name, 0) != 0))
            continue;
        sn_ctf_rd_format(&ev, fields, sizeof(fields));
        struct line *g =
            st->n == st->cap ? realloc(st->lines, (st->cap * 2 + 64) * sizeof(*g)) : st->lines;
        if (!g)
            return -ENOMEM;
        if (st->n == st->cap)
            st->cap = st->cap * 2 + 64;
        st->lines = g;
        char *text = NULL;
        if (asprintf(&text, "%u %s %d %s%s%s", pk.cpu, comm, ev.tid, ev.cls->name,
                     fields[0] ? " " : "", fields) < 0)
            return -ENOMEM;
        st->lines[st->n++] = (struct line){.ts = ev.ts, .text = text};
    }
    return rc < 0 ? -EPROTO : 0;
}

static int by_ts(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Prints the lines of a poll in time order (stably enough: ties keep no order). Returns
 * whether --count was reached. */
static bool flush_lines(struct state *st)
{
    bool done = false;
    if (st->n > 1)
        qsort(st->lines, st->n, sizeof(*st->lines), by_ts);
    for (size_t i = 0; i < st->n; i++) {
        if (!done) {
            int64_t wall = (int64_t)st->lines[i].ts + st->offset_ns;
            time_t secs = (time_t)(wall / 1000000000);
            struct tm tm;
            localtime_r(&secs, &tm);
            printf("%02d:%02d:%02d.%09lld %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (long long)(wall % 1000000000), st->lines[i].text);
            done = st->f.count && ++st->printed >= st->f.count;
        }
        free(st->lines[i].text);
    }
    st->n = 0;
    fflush(stdout);
    return done;
}

static bool num(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return end != s && !*end && !errno && *v >= 0;
}

int sn_cmd_trace(int argc, char **argv)
{
    enum { O_RELAY = 1, O_HOST, O_PID, O_TID, O_COMM, O_EVENT, O_COUNT, O_DURATION };
    static const struct option longopts[] = {
        {"relay", required_argument, NULL, O_RELAY},
        {"host", required_argument, NULL, O_HOST},
        {"pid", required_argument, NULL, O_PID},
        {"tid", required_argument, NULL, O_TID},
        {"execname", required_argument, NULL, O_COMM},
        {"event", required_argument, NULL, O_EVENT},
        {"count", required_argument, NULL, O_COUNT},
        {"duration", required_argument, NULL, O_DURATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct state st; /* large: the comm cache */
    char addr[64] = "127.0.0.1", why[512];
    uint16_t port = SN_LIVE_PORT;
    const char *host = NULL;
    long v, duration = 0;
    int c;

    st.f = (struct filt){.pid = -1, .tid = -1};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_RELAY:
            if (sn_cli_live_addr(optarg, addr, sizeof(addr), &port, why, sizeof(why)) < 0) {
                fprintf(stderr, "sonde trace: --relay %s: %s\n", optarg, why);
                return SN_EXIT_USAGE;
            }
            break;
        case O_HOST:
            host = optarg;
            break;
        case O_PID:
        case O_TID:
        case O_COUNT:
        case O_DURATION:
            if (!num(optarg, &v) || v > INT32_MAX) {
                fprintf(stderr, "sonde trace: --%s wants a number, not '%s'\n",
                        longopts[c - 1].name, optarg);
                return SN_EXIT_USAGE;
            }
            if (c == O_PID)
                st.f.pid = v;
            else if (c == O_TID)
                st.f.tid = v;
            else if (c == O_COUNT)
                st.f.count = (uint64_t)v;
            else
                duration = v;
            break;
        case O_COMM:
            st.f.comm = optarg;
            break;
        case O_EVENT:
            st.f.event = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return SN_EXIT_OK;
        default:
            fprintf(stderr, "sonde trace: %s option '%s'\n%s",
                    c == ':' ? "missing value for" : "unknown", argv[optind - 1], usage);
            return SN_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fputs(usage, stderr);
        return SN_EXIT_USAGE;
    }
    const char *name = argv[optind];

    struct sn_ctf_rd_classes cls = {0};
    struct sn_live_viewer *vw = NULL;
    int rc = sn_live_viewer_open(&vw, addr, port, host, name, why, sizeof(why));
    if (rc == 0) {
        size_t mlen;
        const char *meta = sn_live_viewer_metadata(vw, &mlen);
        if (sn_ctf_rd_clock_offset(meta, &st.offset_ns) != 0 ||
            sn_ctf_rd_classes_parse(meta, &cls) != 0) {
            snprintf(why, sizeof(why),
                     "the metadata of session \"%s\" is not a Sonde recording's (read it with "
                     "babeltrace2 -i lttng-live)",
                     name);
            rc = -EPROTO;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "sonde trace: %s\n", why);
        sn_live_viewer_close(vw);
        return SN_EXIT_FAILURE;
    }
    st.cls = &cls.cls;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int exit_code = SN_EXIT_OK;
    while (!stop) {
        int n = sn_live_viewer_poll(vw, on_packet, &st);
        if (flush_lines(&st))
            break;
        if (n == -EPIPE)
            break; /* the session ended and was read to its end */
        if (n < 0) {
            fprintf(stderr, "sonde trace: the relay: %s\n", strerror(-n));
            exit_code = SN_EXIT_FAILURE;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (duration && now.tv_sec - t0.tv_sec >= duration)
            break;
        if (n == 0)
            usleep(100000); /* babeltrace2's retry delay too */
    }
    if (st.discarded)
        fprintf(stderr, "sonde trace: %" PRIu64 " events lost before this viewer read them\n",
                st.discarded);
    for (size_t i = 0; i < st.n; i++)
        free(st.lines[i].text);
    free(st.lines);
    sn_live_viewer_close(vw);
    sn_ctf_rd_classes_free(&cls);
    return exit_code;
}
