/*
 * `sonde record`: the flight recorder of a server's host (docs/recorder.md), over the API's
 * /ca/recorder routes:
 *
 *   sonde record start NAME --events LIST [--size-per-cpu SIZE] [--predicate JSON] [--hosts all]
 *                                       start a session (--tenant T: scoped to T's cgroups)
 *   sonde record snapshot NAME -o DIR   snapshot it: the server writes the trace, this fetches
 *                                       its archive and unpacks it into DIR
 *   sonde record list                   the sessions and the snapshots kept
 *   sonde record chunks NAME [-o DIR]   a disk recording's chunks (start --disk); with -o,
 *                                       each fetched and unpacked into DIR/CHUNK
 *   sonde record stop NAME              stop a session (its programs detached, rings freed)
 *   sonde record trigger ...            its triggers (cli/cmd_record_trigger.c)
 *
 * The server checks names, event groups and sizes; this only sends them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/grow.h"
#include "core/tar.h"

static const char usage[] =
    "usage: sonde record start NAME --events LIST [--size-per-cpu SIZE] [--predicate JSON]\n"
    "                          [--live] [--hosts all] [--disk [--chunk-size S]\n"
    "                          [--chunk-seconds N] [--max-size S]] [options]\n"
    "       sonde record snapshot NAME -o DIR [options]\n"
    "       sonde record list [options]\n"
    "       sonde record chunks NAME [-o DIR] [options]\n"
    "       sonde record stop NAME [options]\n"
    "       sonde record trigger add|list|rm ...  (sonde record trigger -h)\n"
    "\n"
    "The flight recorder of the server's host (docs/recorder.md): sessions record kernel\n"
    "events into per-CPU rings that keep the newest; a snapshot writes what they hold since\n"
    "the session's last snapshot as a CTF trace (read it with babeltrace2 DIR/kernel).\n"
    "  start     start session NAME (letters, digits, _ . -) recording the groups of LIST\n"
    "            (comma-separated: syscalls, sched, proc, block, tcp, faults)\n"
    "  snapshot  snapshot session NAME; the trace is unpacked into DIR (created; it must not\n"
    "            exist)\n"
    "  list      the sessions (events, ring size, events reserved per CPU) and snapshots\n"
    "  stop      stop session NAME\n"
    "  chunks    the closed chunks of disk recording NAME; with -o, each unpacked into\n"
    "            DIR/CHUNK (babeltrace2 DIR/*/kernel: one timeline)\n"
    "\n"
    "options:\n"
    "  --events LIST       start: the event groups\n"
    "  --size-per-cpu SIZE start: each CPU's ring, a power of 2 from 64K to 1G (default 4M)\n"
    "  --predicate JSON    start: record only the events it holds for (fields: container, pid,\n"
    "                      ppid, execname, pexecname, syscall), e.g.\n"
    "                      '{\"eq\":[\"execname\",\"nginx\"]}'\n"
    "  --live              start: also publish the session for live reading (the server\n"
    "                      runs with --live-listen): babeltrace2 -i lttng-live, sonde trace\n"
    "  --hosts all         start: a fleet session, recorded by every host of the fleet (a\n"
    "                      server started with --nats; docs/recorder.md, \"In a fleet\")\n"
    "  --disk              start: also write the session to the server's disk, in chunks\n"
    "                      (each a whole CTF trace) that outlive it until deleted\n"
    "  --chunk-size S      start: a chunk closes past S of packets (64K to 1T; default 64M)\n"
    "  --chunk-seconds N   start: ... or when its first event is N s old (default 60)\n"
    "  --max-size S        start: the oldest chunks are removed past S (default: none)\n"
    "  (with --tenant T, sessions are T's: they record only T's cgroups, and T sees only its\n"
    "  own sessions and snapshots)\n"
    "  -o, --output DIR    snapshot, chunks: where to unpack the trace(s)\n" SN_CA_COMMON_HELP;

enum {
    O_EVENTS = 1,
    O_SIZE,
    O_PREDICATE,
    O_LIVE,
    O_HOSTS,
    O_DISK,
    O_CHUNK_SIZE,
    O_CHUNK_SECONDS,
    O_MAX
};
static bool live_opt, disk_opt;                           /* --live, --disk */
static const char *chunk_size, *chunk_seconds, *max_size; /* --disk's, as given */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static int sink(void *arg, const void *p, size_t n)
{
    struct buf *b = arg;
    unsigned char *q = sn_grow(b->p, &b->cap, b->len + n, 1);
    if (!q)
        return -ENOMEM;
    b->p = q;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int start(struct sn_ca *ca, const char *name, const char *events, const char *size,
                 const char *predicate, const char *hosts)
{
    json_t *ev = json_array(), *r;
    char *list = strdup(events), *save = NULL;

    if (!ev || !list) {
        json_decref(ev);
        free(list);
        return SN_EXIT_FAILURE;
    }
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t)
            json_array_append_new(ev, json_string(t));
    free(list);
    json_t *body = json_pack("{s:s,s:o}", "name", name, "events", ev);
    if (size)
        json_object_set_new(body, "size-per-cpu", json_string(size));
    if (hosts)
        json_object_set_new(body, "hosts", json_string(hosts)); /* the server judges it */
    if (predicate) {
        json_error_t jerr;
        json_t *p = json_loads(predicate, JSON_DECODE_ANY, &jerr);
        if (!p) {
            fprintf(stderr, "sonde record: --predicate is not JSON: %s\n", jerr.text);
            json_decref(body);
            return SN_EXIT_USAGE;
        }
        json_object_set_new(body, "predicate", p); /* the server judges it */
    }
    if (live_opt)
        json_object_set_new(body, "live", json_true());
    if (disk_opt) { /* the server judges the values */
        json_t *d = json_object();
        char *end;
        long secs = chunk_seconds ? strtol(chunk_seconds, &end, 10) : 0;
        if (chunk_seconds && (*end || end == chunk_seconds)) {
            fprintf(stderr, "sonde record: --chunk-seconds %s is not a number\n", chunk_seconds);
            json_decref(d);
            json_decref(body);
            return SN_EXIT_USAGE;
        }
        if (chunk_size)
            json_object_set_new(d, "chunk-size", json_string(chunk_size));
        if (chunk_seconds)
            json_object_set_new(d, "chunk-seconds", json_integer(secs));
        if (max_size)
            json_object_set_new(d, "max-size", json_string(max_size));
        json_object_set_new(body, "disk", d);
    }
    char *text = json_dumps(body, 0);
    json_decref(body);
    int rc = sn_ca_call_json(ca, "POST", "/recorder/sessions", text, false, &r);
    free(text);
    if (rc != SN_EXIT_OK)
        return rc;
    if (ca->json)
        sn_ca_print_json(r);
    else
        printf("session %s started\n", name);
    json_decref(r);
    return SN_EXIT_OK;
}

static int snapshot(struct sn_ca *ca, const char *name, const char *out)
{
    char rel[256];
    json_t *r;
    struct stat st;
    struct buf b = {0};

    if (stat(out, &st) == 0) {
        fprintf(stderr, "sonde record: %s exists: give a new directory\n", out);
        return SN_EXIT_USAGE;
    }
    snprintf(rel, sizeof(rel), "/recorder/sessions/%s/snapshot", name);
    int rc = sn_ca_call_json(ca, "POST", rel, NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    const char *id = json_string_value(json_object_get(r, "id"));
    if (!id) {
        fprintf(stderr, "sonde record: the server's reply has no snapshot id\n");
        json_decref(r);
        return SN_EXIT_FAILURE;
    }
    snprintf(rel, sizeof(rel), "/recorder/snapshots/%s/archive", id);
    rc = sn_ca_call_stream(ca, "GET", rel, false, sink, &b);
    long files = rc == SN_EXIT_OK ? sn_tar_extract(b.p, b.len, out) : 0;
    free(b.p);
    if (files < 0) {
        fprintf(stderr, "sonde record: cannot unpack snapshot %s into %s: %s\n", id, out,
                strerror((int)-files));
        rc = SN_EXIT_FAILURE;
    } else if (rc == SN_EXIT_OK && ca->json) {
        sn_ca_print_json(r);
    } else if (rc == SN_EXIT_OK) {
        printf("snapshot %s of session %s: %lld events, %lld overwritten, %lld torn, %lld "
               "dropped\ntrace in %s/kernel (babeltrace2 %s/kernel)\n",
               id, name, (long long)json_integer_value(json_object_get(r, "events")),
               (long long)json_integer_value(json_object_get(r, "overwritten")),
               (long long)json_integer_value(json_object_get(r, "torn")),
               (long long)json_integer_value(json_object_get(r, "dropped")), out, out);
    }
    json_decref(r);
    return rc;
}

static int list(struct sn_ca *ca)
{
    json_t *r, *s, *c;
    size_t i, k;

    int rc = sn_ca_call_json(ca, "GET", "/recorder", NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    if (ca->json) {
        sn_ca_print_json(r);
        json_decref(r);
        return SN_EXIT_OK;
    }
    printf("%-24s  %-16s  %12s  %9s  %s\n", "SESSION", "EVENTS", "SIZE/CPU", "SNAPSHOTS",
           "EVENTS RESERVED PER CPU");
    json_array_foreach(json_object_get(r, "sessions"), i, s)
    {
        char ev[128] = "";
        json_array_foreach(json_object_get(s, "events"), k, c)
        {
            size_t l = strlen(ev);
            snprintf(ev + l, sizeof(ev) - l, "%s%s", l ? "," : "", json_string_value(c));
        }
        printf("%-24s  %-16s  %12lld  %9lld ", json_string_value(json_object_get(s, "name")), ev,
               (long long)json_integer_value(json_object_get(s, "size-per-cpu")),
               (long long)json_integer_value(json_object_get(s, "snapshots")));
        json_array_foreach(json_object_get(s, "cpus"), k, c)
            printf(" %lld", (long long)json_integer_value(json_object_get(c, "head")));
        printf("\n");
    }
    printf("snapshots:%s\n", json_array_size(json_object_get(r, "snapshots")) ? "" : " none");
    json_array_foreach(json_object_get(r, "snapshots"), i, s)
        printf("  %s\n", json_string_value(s));
    json_decref(r);
    return SN_EXIT_OK;
}

/* Disk recording name's chunks: listed, or each unpacked into out/CHUNK. */
static int chunks(struct sn_ca *ca, const char *name, const char *out)
{
    char rel[256], dir[4096];
    json_t *r, *c;
    size_t i;

    snprintf(rel, sizeof(rel), "/recorder/recordings/%s", name);
    int rc = sn_ca_call_json(ca, "GET", rel, NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    if (!out && ca->json)
        sn_ca_print_json(r);
    else if (!out) {
        printf("%-14s  %12s  %20s  %20s\n", "CHUNK", "BYTES", "FIRST_NS", "LAST_NS");
        json_array_foreach(json_object_get(r, "chunks"), i, c)
            printf("%-14s  %12lld  %20lld  %20lld\n", json_string_value(json_object_get(c, "name")),
                   (long long)json_integer_value(json_object_get(c, "bytes")),
                   (long long)json_integer_value(json_object_get(c, "first_ns")),
                   (long long)json_integer_value(json_object_get(c, "last_ns")));
        printf("%s: %zu chunks, %lld bytes, %lld events lost%s\n", name,
               json_array_size(json_object_get(r, "chunks")),
               (long long)json_integer_value(json_object_get(r, "bytes")),
               (long long)json_integer_value(json_object_get(r, "lost")),
               json_is_true(json_object_get(r, "recording")) ? " (still recording)" : "");
    }
    if (out && mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "sonde record: cannot make %s: %s\n", out, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    json_array_foreach(json_object_get(r, "chunks"), i, c)
    {
        const char *cn = json_string_value(json_object_get(c, "name"));
        struct stat st;
        struct buf b = {0};
        if (!out || rc != SN_EXIT_OK || !cn)
            break;
        snprintf(dir, sizeof(dir), "%s/%s", out, cn);
        if (stat(dir, &st) == 0) { /* fetched before */
            printf("%s exists: kept\n", dir);
            continue;
        }
        snprintf(rel, sizeof(rel), "/recorder/recordings/%s/archive?chunk=%s", name, cn);
        rc = sn_ca_call_stream(ca, "GET", rel, false, sink, &b);
        long files = rc == SN_EXIT_OK ? sn_tar_extract(b.p, b.len, dir) : 0;
        free(b.p);
        if (files < 0) {
            fprintf(stderr, "sonde record: cannot unpack %s into %s: %s\n", cn, dir,
                    strerror((int)-files));
            rc = SN_EXIT_FAILURE;
        } else if (rc == SN_EXIT_OK) {
            printf("%s\n", dir);
        }
    }
    json_decref(r);
    return rc;
}

static int stop(struct sn_ca *ca, const char *name)
{
    char rel[256];
    struct sn_http_resp r;

    snprintf(rel, sizeof(rel), "/recorder/sessions/%s", name);
    int rc = sn_ca_call(ca, "DELETE", rel, NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    sn_http_resp_free(&r);
    if (!ca->json)
        printf("session %s stopped\n", name);
    return SN_EXIT_OK;
}

int sn_cmd_record(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"events", required_argument, NULL, O_EVENTS},
        {"size-per-cpu", required_argument, NULL, O_SIZE},
        {"predicate", required_argument, NULL, O_PREDICATE},
        {"live", no_argument, NULL, O_LIVE},
        {"hosts", required_argument, NULL, O_HOSTS},
        {"disk", no_argument, NULL, O_DISK},
        {"chunk-size", required_argument, NULL, O_CHUNK_SIZE},
        {"chunk-seconds", required_argument, NULL, O_CHUNK_SECONDS},
        {"max-size", required_argument, NULL, O_MAX},
        {"output", required_argument, NULL, 'o'},
        SN_CA_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    const char *events = NULL, *size = NULL, *out = NULL, *predicate = NULL, *hosts = NULL;
    struct sn_ca ca;
    int c, rc;

    if (argc > 1 && strcmp(argv[1], "trigger") == 0) /* its own options */
        return sn_cmd_record_trigger(argc - 1, argv + 1);
    sn_ca_init(&ca, "sonde record");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case O_EVENTS:
            events = optarg;
            break;
        case O_SIZE:
            size = optarg;
            break;
        case O_PREDICATE:
            predicate = optarg;
            break;
        case O_LIVE:
            live_opt = true;
            break;
        case O_HOSTS:
            hosts = optarg;
            break;
        case O_DISK:
            disk_opt = true;
            break;
        case O_CHUNK_SIZE:
            chunk_size = optarg;
            break;
        case O_CHUNK_SECONDS:
            chunk_seconds = optarg;
            break;
        case O_MAX:
            max_size = optarg;
            break;
        case 'o':
            out = optarg;
            break;
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
    const char *what = optind < argc ? argv[optind] : "";
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool named = strcmp(what, "start") == 0 || strcmp(what, "snapshot") == 0 ||
                 strcmp(what, "stop") == 0 || strcmp(what, "chunks") == 0;
    bool ok = named ? name && optind + 2 == argc : strcmp(what, "list") == 0 && optind + 1 == argc;
    if (!ok || (strcmp(what, "start") == 0) != (events != NULL) ||
        (strcmp(what, "snapshot") == 0 && out == NULL) ||
        (out && strcmp(what, "snapshot") != 0 && strcmp(what, "chunks") != 0) ||
        ((size || predicate || live_opt || disk_opt || hosts) && strcmp(what, "start") != 0) ||
        ((chunk_size || chunk_seconds || max_size) && !disk_opt)) {
        fprintf(stderr, "%s", usage);
        return SN_EXIT_USAGE;
    }
    if (name && strcspn(name, "/?#%") != strlen(name)) {
        fprintf(stderr, "sonde record: %s is not a session name (letters, digits, _ . -)\n", name);
        return SN_EXIT_USAGE;
    }
    if ((rc = sn_ca_ready(&ca)) != SN_EXIT_OK)
        return rc;
    if (strcmp(what, "start") == 0)
        return start(&ca, name, events, size, predicate, hosts);
    if (strcmp(what, "snapshot") == 0)
        return snapshot(&ca, name, out);
    if (strcmp(what, "stop") == 0)
        return stop(&ca, name);
    if (strcmp(what, "chunks") == 0)
        return chunks(&ca, name, out);
    return list(&ca);
}
