/*
 * `sonde traces`: dprof's questions about the spans a server received (docs/tracing.md), one
 * command each, over the API's GET /ca/traces/...:
 *
 *   sonde traces longest SERVICE   the longest traces of a service in a range
 *   sonde traces shortest SERVICE  the shortest
 *   sonde traces show ID           a trace's spans ranked by duration: min, avg, max and the
 *                                  slowest 1 %
 *   sonde traces ops [SERVICE]     per operation (service, span name): spans, errors and
 *                                  latency percentiles, over the range or in steps
 *
 * Durations print in their unit (µs, ms, s); --json prints the server's reply.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/fmt.h"
#include "core/timespec.h"

static const char usage[] =
    "usage: sonde traces longest|shortest SERVICE [options]\n"
    "       sonde traces show TRACE_ID [options]\n"
    "       sonde traces ops [SERVICE] [--step D] [options]\n"
    "\n"
    "dprof's questions about the spans this server received over OTLP and Zipkin\n"
    "(docs/tracing.md):\n"
    "  longest, shortest  the traces of SERVICE in the range ranked by their longest span of\n"
    "                     SERVICE (the trace as that service saw it), with each trace's own\n"
    "                     duration, spans, errors and root\n"
    "  show               the spans of a trace ranked by duration, with min, avg and max; the\n"
    "                     slowest 1 % (at least one span) are marked *\n"
    "  ops                per operation (service and span name): spans, errors and p50, p90,\n"
    "                     p99 latency, over the whole range, or per --step\n"
    "\n"
    "options:\n"
    "  --start T         start of the range: Unix seconds, now, a time before now (-7d,\n"
    "                    -1h30m) or a UTC date (2026-12-01T03:00Z); default: the last hour\n"
    "  --duration D      its length (30m, 2h, 7d; default 1h)\n"
    "  --limit N         traces to list (longest, shortest; default 10, at most 1000)\n"
    "  --step D          ops: one row per operation per D (default: the whole "
    "range)\n" SN_CA_COMMON_HELP;

enum { O_START = 1, O_DURATION, O_LIMIT, O_STEP };

static void fmt_us(char *buf, size_t len, json_int_t us)
{
    struct sn_unit u = sn_unit_of_ca("seconds", -9);
    sn_fmt_unit(buf, len, (double)us * 1000, &u);
}

static void fmt_ns(char *buf, size_t len, json_int_t ns)
{
    struct sn_unit u = sn_unit_of_ca("seconds", -9);
    sn_fmt_unit(buf, len, (double)ns, &u);
}

static void print_list(const json_t *r, bool longest)
{
    const json_t *a = json_object_get(r, "traces");
    size_t i;
    const json_t *t;
    printf("%s traces of %s%s\n", longest ? "longest" : "shortest",
           json_string_value(json_object_get(r, "service")),
           json_is_true(json_object_get(r, "truncated")) ? " (the range held too many traces: "
                                                           "the first 2,000,000 ranked)"
                                                         : "");
    if (!json_array_size(a)) {
        printf("no spans of this service in the range\n");
        return;
    }
    printf("%-32s  %10s  %10s  %5s  %4s  %s\n", "TRACE", "DURATION", "IN SERVICE", "SPANS", "ERR",
           "ROOT");
    json_array_foreach(a, i, t)
    {
        char d[32], sd[32];
        fmt_us(d, sizeof(d), json_integer_value(json_object_get(t, "duration")));
        fmt_us(sd, sizeof(sd), json_integer_value(json_object_get(t, "serviceDuration")));
        printf("%-32s  %10s  %10s  %5" JSON_INTEGER_FORMAT "  %4" JSON_INTEGER_FORMAT "  %s %s\n",
               json_string_value(json_object_get(t, "traceId")), d, sd,
               json_integer_value(json_object_get(t, "spans")),
               json_integer_value(json_object_get(t, "errors")),
               json_string_value(json_object_get(t, "rootService")),
               json_string_value(json_object_get(t, "rootName")));
    }
}

static void print_show(const json_t *r)
{
    char d[32], mn[32], av[32], mx[32];
    fmt_us(d, sizeof(d), json_integer_value(json_object_get(r, "duration")));
    fmt_us(mn, sizeof(mn), json_integer_value(json_object_get(r, "min")));
    fmt_us(av, sizeof(av), json_integer_value(json_object_get(r, "avg")));
    fmt_us(mx, sizeof(mx), json_integer_value(json_object_get(r, "max")));
    json_int_t slow = json_integer_value(json_object_get(r, "slowest"));
    printf("trace %s: %s %s, %s, %" JSON_INTEGER_FORMAT " spans, %" JSON_INTEGER_FORMAT
           " services, %" JSON_INTEGER_FORMAT " errors\n",
           json_string_value(json_object_get(r, "traceId")),
           json_string_value(json_object_get(r, "rootService")),
           json_string_value(json_object_get(r, "rootName")), d,
           json_integer_value(json_object_get(r, "spans")),
           json_integer_value(json_object_get(r, "services")),
           json_integer_value(json_object_get(r, "errors")));
    printf("spans: min %s, avg %s, max %s; the slowest 1 %% (%" JSON_INTEGER_FORMAT
           " span%s) marked *\n",
           mn, av, mx, slow, slow == 1 ? "" : "s");
    printf("%5s  %10s  %-20s  %s\n", "RANK", "DURATION", "SERVICE", "NAME");
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(r, "ranked"), i, s)
    {
        fmt_us(d, sizeof(d), json_integer_value(json_object_get(s, "duration")));
        printf("%s%4" JSON_INTEGER_FORMAT "  %10s  %-20s  %s%s\n",
               json_is_true(json_object_get(s, "slowest1pct")) ? "*" : " ",
               json_integer_value(json_object_get(s, "rank")), d,
               json_string_value(json_object_get(s, "service")),
               json_string_value(json_object_get(s, "name")),
               json_is_true(json_object_get(s, "error")) ? "  (error)" : "");
    }
}

static void print_ops(const json_t *r, bool steps)
{
    size_t i, k;
    const json_t *o, *p;
    if (!json_array_size(json_object_get(r, "operations"))) {
        printf("no spans in the range\n");
        return;
    }
    printf("%s%-20s  %-28s  %8s  %6s  %10s  %10s  %10s\n", steps ? "TIME                 " : "",
           "SERVICE", "OPERATION", "SPANS", "ERRORS", "P50", "P90", "P99");
    json_array_foreach(json_object_get(r, "operations"), i, o)
    {
        json_array_foreach(json_object_get(o, "points"), k, p)
        {
            char p50[32], p90[32], p99[32], when[SN_FMT_TIME_LEN] = "";
            fmt_ns(p50, sizeof(p50), json_integer_value(json_object_get(p, "p50")));
            fmt_ns(p90, sizeof(p90), json_integer_value(json_object_get(p, "p90")));
            fmt_ns(p99, sizeof(p99), json_integer_value(json_object_get(p, "p99")));
            if (steps)
                sn_fmt_time(when, json_integer_value(json_object_get(p, "t")));
            printf("%s%s%-20s  %-28s  %8" JSON_INTEGER_FORMAT "  %6" JSON_INTEGER_FORMAT
                   "  %10s  %10s  %10s\n",
                   when, steps ? "  " : "", json_string_value(json_object_get(o, "service")),
                   json_string_value(json_object_get(o, "name")),
                   json_integer_value(json_object_get(p, "count")),
                   json_integer_value(json_object_get(p, "errors")), p50, p90, p99);
        }
    }
}

int sn_cmd_traces(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"start", required_argument, NULL, O_START},
        {"duration", required_argument, NULL, O_DURATION},
        {"limit", required_argument, NULL, O_LIMIT},
        {"step", required_argument, NULL, O_STEP},
        SN_CA_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    struct sn_ca ca;
    int64_t now = (int64_t)time(NULL), start = 0, duration = 3600, step = 0;
    bool start_given = false;
    long limit = 10;
    int c, rc;

    sn_ca_init(&ca, "sonde traces");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_START:
            if (sn_time_parse(optarg, now, &start) < 0) {
                fprintf(stderr,
                        "sonde traces: --start %s: not a time (Unix seconds, now, -1h, "
                        "2026-12-01T03:00Z)\n",
                        optarg);
                return SN_EXIT_USAGE;
            }
            start_given = true;
            break;
        case O_DURATION:
        case O_STEP: {
            int64_t d;
            if (sn_duration_parse(optarg, &d) < 0 || d <= 0) {
                fprintf(stderr, "sonde traces: --%s %s: not a duration (30s, 5m, 2h, 7d)\n",
                        c == O_STEP ? "step" : "duration", optarg);
                return SN_EXIT_USAGE;
            }
            if (c == O_STEP)
                step = d;
            else
                duration = d;
            break;
        }
        case O_LIMIT: {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (end == optarg || *end || limit < 1 || limit > 1000) {
                fprintf(stderr, "sonde traces: --limit wants an integer from 1 to 1000\n");
                return SN_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            sn_ca_usage(stdout, usage);
            return SN_EXIT_OK;
        default:
            if (sn_ca_option(&ca, c, optarg))
                break;
            sn_ca_bad_option(&ca, c, optarg);
            return SN_EXIT_USAGE;
        }
    }
    const char *what = optind < argc ? argv[optind] : NULL;
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool list = what && (strcmp(what, "longest") == 0 || strcmp(what, "shortest") == 0);
    bool show = what && strcmp(what, "show") == 0, ops = what && strcmp(what, "ops") == 0;
    if (!(list || show || ops) || ((list || show) && !arg) || optind + 2 < argc) {
        fprintf(stderr, "%s", usage);
        return SN_EXIT_USAGE;
    }
    if ((rc = sn_ca_ready(&ca)) != SN_EXIT_OK)
        return rc;
    if (!start_given)
        start = now - duration;
    char rel[1024] = "", q[768] = "", num[32];
    if (!show) {
        snprintf(num, sizeof(num), "%" PRId64, start);
        sn_ca_query(q, sizeof(q), "start_time", num);
        snprintf(num, sizeof(num), "%" PRId64, duration);
        sn_ca_query(q, sizeof(q), "duration", num);
    }
    if (list) {
        sn_ca_query(q, sizeof(q), "service", arg);
        snprintf(num, sizeof(num), "%ld", limit);
        sn_ca_query(q, sizeof(q), "limit", num);
        snprintf(rel, sizeof(rel), "/traces/%s%s", what, q);
    } else if (ops) {
        if (arg)
            sn_ca_query(q, sizeof(q), "service", arg);
        snprintf(num, sizeof(num), "%" PRId64, step ? step : duration);
        sn_ca_query(q, sizeof(q), "step", num);
        snprintf(rel, sizeof(rel), "/traces/operations%s", q);
    } else {
        if (strspn(arg, "0123456789abcdefABCDEF") != strlen(arg) || strlen(arg) > 32) {
            fprintf(stderr, "sonde traces: %s is not a trace id (16 or 32 hex digits)\n", arg);
            return SN_EXIT_USAGE;
        }
        snprintf(rel, sizeof(rel), "/traces/%s", arg);
    }
    json_t *r;
    if ((rc = sn_ca_call_json(&ca, "GET", rel, NULL, false, &r)) != SN_EXIT_OK)
        return rc;
    if (ca.json)
        sn_ca_print_json(r);
    else if (list)
        print_list(r, what[0] == 'l');
    else if (show)
        print_show(r);
    else
        print_ops(r, step && step < duration);
    json_decref(r);
    return SN_EXIT_OK;
}
