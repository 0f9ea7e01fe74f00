/*
 * `sonde export` and `sonde import`: an instrumentation's stored history out as JSON lines,
 * and frames for past seconds back in (docs/api.md, "Export and import"; docs/cli.md).
 *
 * export GETs /ca/instrumentations/ID/export?start_time=S&end_time=E and writes the body as it
 * comes (http/client.h streams it: any size, memory bounded), one frame a line as `sonde agent
 * --format json` prints them, oldest first. A download that stops before the reply's end is an
 * error (exit 1); with -o FILE the bytes go to FILE.part, renamed to FILE only once complete,
 * so a FILE is always a whole export.
 *
 * import reads JSON lines (a file, or - for stdin) and POSTs them to /ca/import in bodies of at
 * most IMPORT_BODY_MAX bytes and IMPORT_LINES_MAX lines, split at line boundaries (blank lines
 * dropped), one after another, adding up the counts of the replies (whatever integer members
 * they have: accepted, late...). The first refused body stops it: the server's message, then
 * which lines that body held and what was accepted before it. It does not check frames itself:
 * the server does, whole body by whole body (a refused body adds nothing).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/timespec.h"

#define IMPORT_BODY_MAX  ((size_t)8 << 20) /* bytes of a POST body, at most */
#define IMPORT_LINES_MAX 50000             /* frames of a body, at most (the server's cap: 100k) */

#define TIME_FORMS                                                                                 \
    "Unix seconds, now, a time before now (-7d, -1h30m) or a UTC date (2026-12-01, "               \
    "2026-12-01T03:00Z)"

/* ---- export ------------------------------------------------------------------------------ */

static const char export_usage[] =
    "usage: sonde export [options] ID --start T [--end T] [-o FILE]\n"
    "\n"
    "Writes the stored history of instrumentation ID between --start and --end as JSON\n"
    "lines, one frame a line (the form of `sonde agent --format json`), oldest first: to\n"
    "standard output, or to FILE. `sonde import` takes them back (into this server or\n"
    "another one). A download that stops before its end is an error; FILE is then not\n"
    "written (the bytes go to FILE.part until the end).\n"
    "\n"
    "options:\n"
    "  --start T         the first second (required): Unix seconds, now, a time before\n"
    "                    now (-7d, -1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z)\n"
    "  --end T           the end, in the same forms (default now)\n"
    "  -o, --output FILE write to FILE (- for standard output), and say how many frames\n"
    "  --url URL         the server (default $SONDE_URL, else " SN_CA_DEFAULT_URL ")\n"
    "  --token T         send Authorization: Bearer T (default $SONDE_TOKEN)\n"
    "  --tenant NAME     export from the tenant's scope /ca/customers/NAME\n"
    "  -h, --help        this help\n";

/* Where the export goes, and what went there. */
struct out {
    FILE *f;
    const char *name; /* for messages: FILE, or "standard output" */
    uint64_t bytes, lines;
};

static int out_write(void *arg, const void *p, size_t n)
{
    struct out *o = arg;
    const char *c = p, *end = c + n;

    if (fwrite(p, 1, n, o->f) != n) {
        int e = errno ? errno : EIO;
        fprintf(stderr, "sonde export: %s: %s\n", o->name, strerror(e));
        return -e;
    }
    while ((c = memchr(c, '\n', (size_t)(end - c))) != NULL) {
        o->lines++;
        c++;
    }
    o->bytes += n;
    return 0;
}

/* One of --start and --end into *t; false (said) when it is not a time. */
static bool time_arg(const char *opt, const char *arg, int64_t now, int64_t *t)
{
    if (sn_time_parse(arg, now, t) == 0)
        return true;
    fprintf(stderr, "sonde export: %s wants a time: " TIME_FORMS ", not '%s'\n", opt, arg);
    return false;
}

int sn_cmd_export(int argc, char **argv)
{
    enum { O_START = 256, O_END };
    static const struct option longopts[] = {
        SN_CA_COMMON_OPTS,
        {"start", required_argument, NULL, O_START},
        {"end", required_argument, NULL, O_END},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *start = NULL, *end = NULL, *output = NULL, *id;
    char rel[256], part[4096];
    int64_t now = (int64_t)time(NULL), s, e;
    struct out o = {stdout, "standard output", 0, 0};
    struct sn_ca ca;
    int c, rc;

    sn_ca_init(&ca, "sonde export");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        if (c != SN_CA_O_JSON && sn_ca_option(&ca, c, optarg))
            continue;
        switch (c) {
        case 'h':
            sn_ca_usage(stdout, export_usage);
            return SN_EXIT_OK;
        case O_START:
            start = optarg;
            break;
        case O_END:
            end = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        default:
            sn_ca_bad_option(&ca, c, argv[optind - 1]);
            sn_ca_usage(stderr, export_usage);
            return SN_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "sonde export: want one instrumentation ID\n\n");
        sn_ca_usage(stderr, export_usage);
        return SN_EXIT_USAGE;
    }
    id = argv[optind];
    if (!start) {
        fprintf(stderr, "sonde export: --start is required\n\n");
        sn_ca_usage(stderr, export_usage);
        return SN_EXIT_USAGE;
    }
    if (!sn_ca_valid_id(&ca, id) || !time_arg("--start", start, now, &s))
        return SN_EXIT_USAGE;
    e = now;
    if (end && !time_arg("--end", end, now, &e))
        return SN_EXIT_USAGE;
    if (s >= e) {
        fprintf(stderr, "sonde export: --start (%" PRId64 ") must be before --end (%" PRId64 ")\n",
                s, e);
        return SN_EXIT_USAGE;
    }
    if (output && !*output) {
        fprintf(stderr, "sonde export: -o wants a file name\n");
        return SN_EXIT_USAGE;
    }
    if (sn_ca_ready(&ca) != SN_EXIT_OK)
        return SN_EXIT_USAGE;
    /* first the instrumentation: "no such instrumentation" before any FILE.part */
    struct sn_ca_inst in;
    rc = sn_ca_inst_get(&ca, id, false, &in);
    sn_ca_inst_free(&in);
    if (rc != SN_EXIT_OK)
        return rc;
    snprintf(rel, sizeof(rel),
             "/instrumentations/%s/export?start_time=%" PRId64 "&end_time=%" PRId64, id, s, e);
    if (output && strcmp(output, "-") != 0) {
        if ((size_t)snprintf(part, sizeof(part), "%s.part", output) >= sizeof(part)) {
            fprintf(stderr, "sonde export: %s: file name too long\n", output);
            return SN_EXIT_USAGE;
        }
        if (!(o.f = fopen(part, "wb"))) {
            fprintf(stderr, "sonde export: %s: %s\n", part, strerror(errno));
            return SN_EXIT_FAILURE;
        }
        o.name = part;
    } else {
        output = NULL;
    }
    rc = sn_ca_call_stream(&ca, "GET", rel, false, out_write, &o);
    if (rc == SN_EXIT_OK && fflush(o.f) != 0) {
        fprintf(stderr, "sonde export: %s: %s\n", o.name, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    if (!output)
        return rc;
    if (fclose(o.f) != 0 && rc == SN_EXIT_OK) {
        fprintf(stderr, "sonde export: %s: %s\n", o.name, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    if (rc == SN_EXIT_OK && rename(part, output) != 0) {
        fprintf(stderr, "sonde export: %s: %s\n", output, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    if (rc != SN_EXIT_OK) {
        remove(part);
        return rc;
    }
    printf("%" PRIu64 " frame%s (%" PRIu64 " bytes) written to %s\n", o.lines,
           o.lines == 1 ? "" : "s", o.bytes, output);
    return SN_EXIT_OK;
}

/* ---- import ------------------------------------------------------------------------------ */

static const char import_usage[] =
    "usage: sonde import [options] FILE|-\n"
    "\n"
    "Sends the frames of FILE (- for standard input), JSON lines as `sonde export` and\n"
    "`sonde agent --format json` write them, to the server's store (POST /ca/import): past\n"
    "seconds, rolled up like live data. They go in bodies of at most 8 MiB and 50000 lines,\n"
    "split between lines; the server checks each body whole, and the first it refuses stops\n"
    "the import (the bodies before it stay imported). Prints the counts of the replies added\n"
    "up: frames accepted, and those that were not (late: past every tier's retention...).\n"
    "\n"
    "options:\n" SN_CA_COMMON_HELP;

struct import {
    struct sn_ca *ca;
    const char *name;  /* FILE, or "standard input" */
    char *body;        /* IMPORT_BODY_MAX + 1 bytes */
    size_t len, lines; /* of the body */
    uint64_t first;    /* the input's line number of the body's first line */
    size_t nbodies;    /* sent and accepted */
    json_t *sum;       /* the replies' counts added up */
};

/* Adds the integer members of reply (and of its objects, as "folded") into sum. */
static void add_counts(json_t *sum, const json_t *reply)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)reply, k, v)
    {
        json_t *have = json_object_get(sum, k);
        if (json_is_integer(v)) {
            json_int_t n = json_is_integer(have) ? json_integer_value(have) : 0;
            json_object_set_new(sum, k, json_integer(n + json_integer_value(v)));
        } else if (json_is_object(v)) {
            if (!json_is_object(have))
                json_object_set_new(sum, k, (have = json_object()));
            add_counts(have, v);
        }
    }
}

/* "accepted 1230 of 1234 frames (2 bodies)", then the other non-zero counts. */
static void print_counts(FILE *f, const struct import *im)
{
    const char *k;
    json_t *v;

    fprintf(f, "accepted %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " frames (%zu bod%s)",
            json_integer_value(json_object_get(im->sum, "accepted")),
            json_integer_value(json_object_get(im->sum, "frames")), im->nbodies,
            im->nbodies == 1 ? "y" : "ies");
    json_object_foreach(im->sum, k, v)
    {
        if (strcmp(k, "accepted") == 0 || strcmp(k, "frames") == 0)
            continue;
        if (json_is_integer(v) && json_integer_value(v))
            fprintf(f, ", %s %" JSON_INTEGER_FORMAT, k, json_integer_value(v));
        if (json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                if (json_is_integer(v2) && json_integer_value(v2))
                    fprintf(f, ", %s %s %" JSON_INTEGER_FORMAT, k, k2, json_integer_value(v2));
            }
        }
    }
    fputc('\n', f);
}

/* POSTs the body gathered (if any); SN_EXIT_OK, or the exit code after saying why. */
static int flush_body(struct import *im)
{
    json_t *reply;
    int rc;

    if (!im->lines)
        return SN_EXIT_OK;
    im->body[im->len] = '\0';
    rc = sn_ca_call_json(im->ca, "POST", "/import", im->body, false, &reply);
    if (rc != SN_EXIT_OK) {
        fprintf(stderr,
                "sonde import: %s: the body of lines %" PRIu64 "-%" PRIu64
                " was refused; before it, ",
                im->name, im->first, im->first + im->lines - 1);
        if (im->nbodies)
            print_counts(stderr, im);
        else
            fputs("nothing was sent\n", stderr);
        return rc;
    }
    add_counts(im->sum, reply);
    json_decref(reply);
    im->nbodies++;
    im->len = im->lines = 0;
    return SN_EXIT_OK;
}

/* Reads every line of f into bodies, sending each when full. */
static int import_lines(struct import *im, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    uint64_t lineno = 0;
    ssize_t n;
    int rc = SN_EXIT_OK;

    while ((n = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)n;
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue; /* blank */
        if (strlen(line) != len) {
            fprintf(stderr, "sonde import: %s: line %" PRIu64 " holds a NUL byte\n", im->name,
                    lineno);
            rc = SN_EXIT_USAGE;
            break;
        }
        if (line[len - 1] != '\n')
            line[len++] = '\n'; /* the last line, unterminated: getline left room for the NUL */
        if (len > IMPORT_BODY_MAX) {
            fprintf(stderr, "sonde import: %s: line %" PRIu64 " is longer than %zu MiB\n", im->name,
                    lineno, IMPORT_BODY_MAX >> 20);
            rc = SN_EXIT_USAGE;
            break;
        }
        if ((im->len + len > IMPORT_BODY_MAX || im->lines == IMPORT_LINES_MAX) &&
            (rc = flush_body(im)) != SN_EXIT_OK)
            break;
        if (!im->lines)
            im->first = lineno;
        memcpy(im->body + im->len, line, len);
        im->len += len;
        im->lines++;
    }
    if (rc == SN_EXIT_OK && ferror(f)) {
        fprintf(stderr, "sonde import: %s: %s\n", im->name, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    if (rc == SN_EXIT_OK)
        rc = flush_body(im);
    free(line);
    return rc;
}

int sn_cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {SN_CA_COMMON_OPTS, {NULL, 0, NULL, 0}};
    struct sn_ca ca;
    struct import im = {.ca = &ca};
    const char *path;
    FILE *f;
    int c, rc;

    sn_ca_init(&ca, "sonde import");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (sn_ca_option(&ca, c, optarg))
            continue;
        if (c == 'h') {
            sn_ca_usage(stdout, import_usage);
            return SN_EXIT_OK;
        }
        sn_ca_bad_option(&ca, c, argv[optind - 1]);
        sn_ca_usage(stderr, import_usage);
        return SN_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "sonde import: want one FILE (- for standard input)\n\n");
        sn_ca_usage(stderr, import_usage);
        return SN_EXIT_USAGE;
    }
    if (sn_ca_ready(&ca) != SN_EXIT_OK)
        return SN_EXIT_USAGE;
    path = argv[optind];
    if (strcmp(path, "-") == 0) {
        f = stdin;
        im.name = "standard input";
    } else if (!(f = fopen(path, "r"))) {
        fprintf(stderr, "sonde import: %s: %s\n", path, strerror(errno));
        return SN_EXIT_FAILURE;
    } else {
        im.name = path;
    }
    im.body = malloc(IMPORT_BODY_MAX + 1);
    im.sum = json_object();
    if (!im.body || !im.sum) {
        fprintf(stderr, "sonde import: out of memory\n");
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    rc = import_lines(&im, f);
    if (rc == SN_EXIT_OK && ca.json)
        sn_ca_print_json(im.sum);
    else if (rc == SN_EXIT_OK && !im.nbodies)
        printf("no frames in %s\n", im.name);
    else if (rc == SN_EXIT_OK)
        print_counts(stdout, &im);
out:
    if (f != stdin)
        fclose(f);
    free(im.body);
    json_decref(im.sum);
    return rc;
}
