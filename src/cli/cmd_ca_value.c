/*
 * `sonde raw`, `heatmap`, `details` and `percentile`: the command line client of the Cloud
 * Analytics API's value resources (docs/api.md, "Values" and "Heatmaps"). Human output by
 * default (raw values sorted and charted, a heatmap written as PNG), the server's JSON with
 * --json.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/fmt.h"
#include "core/timespec.h"

enum {
    O_START = 256,
    O_DURATION,
    O_WIDTH,
    O_HEIGHT,
    O_YMIN,
    O_YMAX,
    O_LOG,
    O_X,
    O_Y,
    O_NBUCKETS,
    O_TOP,  /* raw, details: the N biggest keys (client side) */
    O_ROWS, /* percentile: CA's row-based computation, not method=exact */
    O_SELECTED,
    O_ISOLATE,
    O_EXCLUDE,
    O_DECOMPOSE_ALL,
    O_HUES,
    O_WEIGHTS,
    O_COLORING,
    O_ANNOTATE,
};

/* How an option's argument becomes its query parameter. */
enum vkind {
    V_TIME,     /* a point in time as sn_time_parse() reads it, sent as Unix seconds */
    V_DURATION, /* a duration as sn_duration_parse() reads it, sent as seconds */
    V_NUMBER,   /* a number */
    V_NUMBERS,  /* numbers separated by commas */
    V_STRING,   /* any non-empty text, sent as given: the server checks it */
    V_KEYS,     /* keys, comma-separated; repeatable, every occurrence is sent */
    V_FLAG,     /* no argument: the parameter is sent with the value `flag` */
};

/* Value options: the query parameter each sets, and how. Options given twice (but V_KEYS)
 * send the last value. */
static const struct {
    int opt;
    const char *param;
    enum vkind kind;
    const char *flag;
} value_params[] = {
    {O_START, "start_time", V_TIME, NULL},
    {O_DURATION, "duration", V_DURATION, NULL},
    {O_WIDTH, "width", V_NUMBER, NULL},
    {O_HEIGHT, "height", V_NUMBER, NULL},
    {O_YMIN, "ymin", V_NUMBER, NULL},
    {O_YMAX, "ymax", V_NUMBER, NULL},
    {O_LOG, "yscale", V_FLAG, "log"},
    {O_X, "x", V_NUMBER, NULL},
    {O_Y, "y", V_NUMBER, NULL},
    {O_NBUCKETS, "nbuckets", V_NUMBER, NULL},
    {'P', "percentile", V_NUMBERS, NULL},
    {O_SELECTED, "selected", V_KEYS, NULL},
    {O_ISOLATE, "isolate", V_FLAG, "true"},
    {O_EXCLUDE, "exclude", V_FLAG, "true"},
    {O_DECOMPOSE_ALL, "decompose_all", V_FLAG, "true"},
    {O_HUES, "hues", V_NUMBERS, NULL},
    {O_WEIGHTS, "weights", V_STRING, NULL},
    {O_COLORING, "coloring", V_STRING, NULL},
    {O_ANNOTATE, "annotate", V_FLAG, "true"},
};
#define NPARAMS (sizeof(value_params) / sizeof(value_params[0]))

static const struct option value_longopts[] = {
    SN_CA_COMMON_OPTS,
    {"start", required_argument, NULL, O_START},
    {"duration", required_argument, NULL, O_DURATION},
    {"width", required_argument, NULL, O_WIDTH},
    {"height", required_argument, NULL, O_HEIGHT},
    {"ymin", required_argument, NULL, O_YMIN},
    {"ymax", required_argument, NULL, O_YMAX},
    {"log", no_argument, NULL, O_LOG},
    {"x", required_argument, NULL, O_X},
    {"y", required_argument, NULL, O_Y},
    {"nbuckets", required_argument, NULL, O_NBUCKETS},
    {"top", required_argument, NULL, O_TOP},
    {"rows", no_argument, NULL, O_ROWS},
    {"percentile", required_argument, NULL, 'P'},
    {"output", required_argument, NULL, 'o'},
    {"selected", required_argument, NULL, O_SELECTED},
    {"isolate", no_argument, NULL, O_ISOLATE},
    {"exclude", no_argument, NULL, O_EXCLUDE},
    {"decompose-all", no_argument, NULL, O_DECOMPOSE_ALL},
    {"hues", required_argument, NULL, O_HUES},
    {"weights", required_argument, NULL, O_WEIGHTS},
    {"coloring", required_argument, NULL, O_COLORING},
    {"annotate", no_argument, NULL, O_ANNOTATE},
    {NULL, 0, NULL, 0},
};

/* The key and drawing options heatmap, details and percentile share: for their `allowed`
 * lists, and their text for usage strings. */
#define KEY_DRAW_OPTS                                                                              \
    "log", "nbuckets", "selected", "isolate", "exclude", "decompose-all", "hues", "weights",       \
        "coloring"
#define KEY_DRAW_HELP                                                                              \
    "  --log              logarithmic y axis (yscale=log)\n"                                       \
    "  --nbuckets N       rows of buckets (1-100; default 100)\n"                                  \
    "  --selected KEY     a key to draw in its own color (repeat, or KEY,KEY,...)\n"               \
    "  --isolate          draw only the selected keys\n"                                           \
    "  --exclude          draw everything but the selected keys\n"                                 \
    "  --decompose-all    give every key present (up to 63) its own color\n"                       \
    "                     (at most one of --isolate, --exclude and --decompose-all)\n"             \
    "  --hues H[,H...]    hues in degrees (0-359): the rest's, then one per selected key\n"        \
    "                     (with --isolate, one per selected key only)\n"                           \
    "  --weights W        count (default), or weight: counts times their values\n"                 \
    "  --coloring C       rank (default) or linear: how counts map to color intensity\n"

#define VALUE_QUERY_MAX 3072
#define VALUE_REL_MAX   (VALUE_QUERY_MAX + 128)

struct value_args {
    struct sn_ca ca;
    const char *id, *output;
    long top;                 /* --top N, 0 for every key */
    bool rows;                /* --rows */
    const char *val[NPARAMS]; /* per value_params entry: the value given, or NULL */
    char query[VALUE_QUERY_MAX];
    char start[24], duration[24]; /* --start and --duration in seconds, as sent */
};

/* The forms --start and --duration take, for their error messages (core/timespec.h). */
#define TIME_FORMS                                                                                 \
    "Unix seconds, now, a time before now (-7d, -1h30m) or a UTC date (2026-12-01, "               \
    "2026-12-01T03:00Z)"
#define DURATION_FORMS "seconds or a number and a unit (90s, 5m, 1h30m, 2d, 1w; s m h d w y)"

/* True when s is a number (lists: numbers separated by commas). */
static bool numeric_arg(const char *s, bool list)
{
    char *end;
    do {
        errno = 0;
        double d = strtod(s, &end);
        if (errno || end == s || !isfinite(d))
            return false;
        s = end + (*end == ',');
    } while (list && *end == ',');
    return *end == '\0';
}

/* Checks one option's argument and records it (V_KEYS: appends it to the query). Returns -1
 * to carry on, or an exit code. */
static int value_param(struct value_args *a, size_t i, const char *name, const char *arg)
{
    const char *cmd = a->ca.cmd;
    int64_t t;

    switch (value_params[i].kind) {
    case V_TIME:
        if (sn_time_parse(arg, (int64_t)time(NULL), &t) < 0) {
            fprintf(stderr, "%s: --%s wants a time: " TIME_FORMS ", not '%s'\n", cmd, name, arg);
            return SN_EXIT_USAGE;
        }
        snprintf(a->start, sizeof(a->start), "%lld", (long long)t);
        arg = a->start;
        break;
    case V_DURATION:
        if (sn_duration_parse(arg, &t) < 0) {
            fprintf(stderr, "%s: --%s wants a duration: " DURATION_FORMS ", not '%s'\n", cmd, name,
                    arg);
            return SN_EXIT_USAGE;
        }
        snprintf(a->duration, sizeof(a->duration), "%lld", (long long)t);
        arg = a->duration;
        break;
    case V_NUMBER:
    case V_NUMBERS:
        if (!numeric_arg(arg, value_params[i].kind == V_NUMBERS)) {
            fprintf(stderr, "%s: --%s wants %s, not '%s'\n", cmd, name,
                    value_params[i].kind == V_NUMBERS ? "numbers separated by commas" : "a number",
                    arg);
            return SN_EXIT_USAGE;
        }
        break;
    case V_STRING:
    case V_KEYS:
        if (!*arg) {
            fprintf(stderr, "%s: --%s wants a value\n", cmd, name);
            return SN_EXIT_USAGE;
        }
        break;
    case V_FLAG:
        arg = value_params[i].flag;
        break;
    }
    if (value_params[i].kind == V_KEYS &&
        sn_ca_query(a->query, sizeof(a->query), value_params[i].param, arg) < 0) {
        fprintf(stderr, "%s: the options are too long\n", cmd);
        return SN_EXIT_USAGE;
    }
    a->val[i] = arg;
    return -1;
}

static const char *param_val(const struct value_args *a, int opt)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (value_params[i].opt == opt)
            return a->val[i];
    return NULL;
}

/* Parses the options of a value command; allowed lists the long names of the options it takes
 * (besides the common ones). Returns -1 to carry on, with the query built, or an exit code. */
static int value_args(int argc, char **argv, struct value_args *a, const char *cmd,
                      const char *usage, const char *const *allowed)
{
    int c, idx, rc;

    memset(a, 0, sizeof(*a));
    sn_ca_init(&a->ca, cmd);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:P:", value_longopts, &idx)) != -1) {
        const char *name = NULL;
        bool ok = false;
        if (sn_ca_option(&a->ca, c, optarg))
            continue;
        if (c == 'h') {
            sn_ca_usage(stdout, usage);
            return SN_EXIT_OK;
        }
        if (c == '?' || c == ':') {
            sn_ca_bad_option(&a->ca, c, argv[optind - 1]);
            sn_ca_usage(stderr, usage);
            return SN_EXIT_USAGE;
        }
        name = c == 'o' ? "output" : c == 'P' ? "percentile" : value_longopts[idx].name;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(allowed[i], name) == 0;
        if (!ok) {
            /* the option as written: before its argument, or before "=ARG" */
            const char *o =
                optarg && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
            int len = o[1] == '-' ? (int)strcspn(o, "=") : 2;
            fprintf(stderr, "%s: unknown option '%.*s'\n\n", cmd, len, o);
            sn_ca_usage(stderr, usage);
            return SN_EXIT_USAGE;
        }
        if (c == 'o') {
            a->output = optarg;
            continue;
        }
        if (c == O_ROWS) {
            a->rows = true;
            continue;
        }
        if (c == O_TOP) {
            char *end;
            errno = 0;
            a->top = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || a->top < 1) {
                fprintf(stderr, "%s: --top wants a positive integer, not '%s'\n", cmd, optarg);
                return SN_EXIT_USAGE;
            }
            continue;
        }
        for (size_t i = 0; i < NPARAMS; i++)
            if (value_params[i].opt == c && (rc = value_param(a, i, name, optarg)) >= 0)
                return rc;
    }
    if (!!param_val(a, O_ISOLATE) + !!param_val(a, O_EXCLUDE) + !!param_val(a, O_DECOMPOSE_ALL) >
        1) {
        fprintf(stderr, "%s: give at most one of --isolate, --exclude and --decompose-all\n", cmd);
        return SN_EXIT_USAGE;
    }
    for (size_t i = 0; i < NPARAMS; i++) {
        if (a->val[i] && value_params[i].kind != V_KEYS &&
            sn_ca_query(a->query, sizeof(a->query), value_params[i].param, a->val[i]) < 0) {
            fprintf(stderr, "%s: the options are too long\n", cmd);
            return SN_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "%s: want one instrumentation ID\n\n", cmd);
        sn_ca_usage(stderr, usage);
        return SN_EXIT_USAGE;
    }
    a->id = argv[optind];
    if (!sn_ca_valid_id(&a->ca, a->id))
        return SN_EXIT_USAGE;
    return sn_ca_ready(&a->ca) == SN_EXIT_OK ? -1 : SN_EXIT_USAGE;
}

/* The path of a value resource with the query; rel has VALUE_REL_MAX bytes. */
static void value_rel(const struct value_args *a, const char *what, char *rel)
{
    snprintf(rel, VALUE_REL_MAX, "/instrumentations/%s/value/%s%s", a->id, what, a->query);
}

/* A JSON number as text: integers exactly, reals in the shortest round-trip form. */
static void num_str(const json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, cap, "%.17g", json_real_value(v));
    else if (json_is_null(v))
        snprintf(out, cap, "null");
    else
        snprintf(out, cap, "?");
}

/* The line that says which stored points answered, when the reply says it (its "granularity",
 * seconds a point or column covers, and "tier", "raw", "1m", "1h" or "1d": docs/api.md):
 * "granularity 1h (tier 1h)" on stdout. Nothing when the reply has neither, or when the raw
 * tier answered (memory's slots or the stored seconds: the instrumentation's own). */
static void print_granularity(const json_t *j)
{
    const json_t *g = json_object_get(j, "granularity");
    const char *tier = json_string_value(json_object_get(j, "tier"));
    char d[32] = "?";

    if ((!g && !tier) || (tier && strcmp(tier, "raw") == 0))
        return;
    if (json_is_integer(g))
        sn_duration_fmt(d, (int64_t)json_integer_value(g));
    if (tier)
        printf("granularity %s (tier %s)\n", d, tier);
    else
        printf("granularity %s\n", d);
}

/* ---- raw --------------------------------------------------------------------------------- */

/* How values are shown: the numeric field's unit, and how many keys. */
struct view {
    struct sn_unit unit;  /* of the numeric field's values */
    struct sn_unit vunit; /* of the metric's values, the counts: bytes, or none */
    long top;             /* --top N, 0: every key */
};

/* A printf width for s left-aligned in w cells (a multi-byte UTF-8 character takes one). */
static int wfix(const char *s, int w)
{
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) == 0x80;
    return w;
}

struct kc {
    const char *key;
    double count;
    json_t *v;
};

static int kc_cmp(const void *pa, const void *pb)
{
    const struct kc *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* Total count of a numeric distribution [[[lo,hi],count],...]. */
static double dist_total(const json_t *d)
{
    double t = 0;
    size_t i;
    json_t *b;
    json_array_foreach(d, i, b) t += json_number_value(json_array_get(b, 1));
    return t;
}

/* A count (or a sum of them): integers exactly, the rest with 15 digits; in the metric's
 * unit when it has one (bytes). */
static void count_str(double n, const struct view *v, char *out, size_t cap)
{
    if (v->vunit.kind != SN_FMT_UNIT_NONE)
        sn_fmt_unit(out, cap, n, &v->vunit);
    else
        snprintf(out, cap, "%.15g", n);
}

/* Ranges [lo, hi] (integers, inclusive) as [lo, hi + 1) in the field's unit, with their
 * counts and a bar scaled to the largest count. */
static void print_dist(const json_t *d, const char *indent, const struct view *v)
{
    double max = 0;
    size_t i;
    json_t *b;

    json_array_foreach(d, i, b)
    {
        double n = json_number_value(json_array_get(b, 1));
        if (n > max)
            max = n;
    }
    json_array_foreach(d, i, b)
    {
        json_t *r = json_array_get(b, 0);
        char lo[48], hi[48], n[32], range[112];
        double cnt = json_number_value(json_array_get(b, 1));
        int bar = max > 0 ? (int)ceil(cnt / max * 40) : 0;
        sn_fmt_unit(lo, sizeof(lo), json_number_value(json_array_get(r, 0)), &v->unit);
        sn_fmt_unit(hi, sizeof(hi), json_number_value(json_array_get(r, 1)) + 1, &v->unit);
        count_str(cnt, v, n, sizeof(n));
        snprintf(range, sizeof(range), "[%s, %s)", lo, hi);
        printf("%s%-*s %10s  ", indent, wfix(range, 28), range, n);
        for (int k = 0; k < bar; k++)
            putchar('#');
        putchar('\n');
    }
}

static int print_raw(const json_t *value, const struct view *view)
{
    char n[48];

    if (json_is_number(value)) {
        count_str(json_number_value(value), view, n, sizeof(n));
        printf("%s\n", n);
    } else if (json_is_null(value)) {
        num_str(value, n, sizeof(n));
        printf("%s\n", n);
    } else if (json_is_array(value)) {
        print_dist(value, "", view);
    } else if (json_is_object(value)) {
        size_t cnt = json_object_size(value), i = 0, shown;
        struct kc *kcs = calloc(cnt ? cnt : 1, sizeof(*kcs));
        double rest = 0;
        const char *k;
        json_t *v;
        if (!kcs)
            return SN_EXIT_FAILURE;
        json_object_foreach((json_t *)value, k, v)
        {
            kcs[i].key = k;
            kcs[i].v = v;
            kcs[i].count = json_is_array(v) ? dist_total(v) : json_number_value(v);
            i++;
        }
        qsort(kcs, cnt, sizeof(*kcs), kc_cmp);
        shown = view->top > 0 && (size_t)view->top < cnt ? (size_t)view->top : cnt;
        for (i = 0; i < cnt; i++) {
            if (i >= shown) {
                rest += kcs[i].count;
            } else if (json_is_array(kcs[i].v)) {
                count_str(kcs[i].count, view, n, sizeof(n));
                printf("%s (total %s)\n", kcs[i].key, n);
                print_dist(kcs[i].v, "    ", view);
            } else {
                count_str(kcs[i].count, view, n, sizeof(n));
                printf("%-32s %s\n", kcs[i].key, n);
            }
        }
        if (shown < cnt) {
            count_str(rest, view, n, sizeof(n));
            printf("%s and %zu more (%s%s)\n", view->unit.ascii ? "..." : "\xe2\x80\xa6",
                   cnt - shown, n,
                   view->vunit.kind != SN_FMT_UNIT_NONE ? ""
                   : rest == 1                          ? " event"
                                                        : " events");
        }
        free(kcs);
    } else {
        printf("?\n");
    }
    return SN_EXIT_OK;
}

static const char raw_usage[] =
    "usage: sonde raw [options] ID\n"
    "\n"
    "Prints the raw value of instrumentation ID over an interval (by default the last\n"
    "complete data point): a number (scalar), keys by count descending (discrete), or\n"
    "ranges [lo, hi) in the field's unit (ns, us, ms, s; B, KiB...) with counts and a bar\n"
    "(numeric). When the reply says which stored points answered (a store's history),\n"
    "a first line says it: \"granularity 1h (tier 1h)\".\n"
    "\n"
    "options:\n"
    "  --start T         start of the interval: Unix seconds, now, a time before now\n"
    "                    (-7d, -1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z)\n"
    "  --duration D      length of the interval: 90s, 5m, 1h30m, 7d... or seconds\n"
    "  --top N           only the N biggest keys, then \"... and M more (K "
    "events)\"\n" SN_CA_COMMON_HELP;

int sn_cmd_raw(int argc, char **argv)
{
    static const char *const allowed[] = {"start", "duration", "top", NULL};
    struct value_args a;
    struct sn_ca_inst in = {0};
    char rel[VALUE_REL_MAX];
    json_t *j;
    int rc;

    if ((rc = value_args(argc, argv, &a, "sonde raw", raw_usage, allowed)) >= 0)
        return rc;
    if (!a.ca.json && (rc = sn_ca_inst_get(&a.ca, a.id, true, &in)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    value_rel(&a, "raw", rel);
    if ((rc = sn_ca_call_json(&a.ca, "GET", rel, NULL, true, &j)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    if (a.ca.json) {
        sn_ca_print_json(j);
    } else {
        struct view v = {in.unit, in.vunit, a.top};
        print_granularity(j);
        rc = print_raw(json_object_get(j, "value"), &v);
    }
    json_decref(j);
    sn_ca_inst_free(&in);
    return rc;
}

/* ---- heatmap ----------------------------------------------------------------------------- */

static const char heatmap_usage[] =
    "usage: sonde heatmap [options] ID\n"
    "\n"
    "Draws the heatmap of numeric instrumentation ID. With -o, writes the PNG to FILE;\n"
    "without, prints the heatmap's properties (ymin, ymax...) and the keys present in the\n"
    "interval, one per line, but not the image.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  write the PNG image to FILE\n"
    "  --annotate         add a title, axes, a legend and the colour scale around it\n"
    "                     (the image grows; the heatmap itself stays as drawn)\n"
    "  --width W          image width in pixels (10-1000; default 600)\n"
    "  --height H         image height in pixels (10-1000; default 300)\n"
    "  --start T          start of the interval: Unix seconds, now, a time before now\n"
    "                     (-7d, -1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z)\n"
    "  --duration D       time shown: 90s, 5m, 1h30m, 7d... or seconds (default 60)\n"
    "                     (over history the server says its granularity and tier)\n"
    "  --ymin Y, --ymax Y the value range (ymax auto-scales when absent)\n" KEY_DRAW_HELP
        SN_CA_COMMON_HELP;

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "sonde heatmap: %s: %s\n", path, strerror(errno));
        return SN_EXIT_FAILURE;
    }
    return SN_EXIT_OK;
}

/* A Unix time as "local date and time (seconds)". */
static void time_str(const json_t *t, char *out, size_t cap)
{
    char d[SN_FMT_TIME_LEN];

    if (!json_is_integer(t)) {
        num_str(t, out, cap);
        return;
    }
    sn_fmt_time(d, (int64_t)json_integer_value(t));
    snprintf(out, cap, "%s (%lld)", d, (long long)json_integer_value(t));
}

/* The properties of a heatmap reply, "name value" a line (strings bare, times (*_time) as
 * local times, ymin and ymax in the field's unit, the rest as compact JSON), and the present keys
 * one a line ("-" when none). */
static void print_heatmap(const json_t *j, const struct sn_unit *unit)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)j, k, v)
    {
        char buf[96];
        size_t kl = strlen(k);
        if (kl > 5 && strcmp(k + kl - 5, "_time") == 0 && json_is_integer(v)) {
            time_str(v, buf, sizeof(buf));
            printf("%-22s %s\n", k, buf);
        } else if (strcmp(k, "granularity") == 0 && json_is_integer(v)) {
            sn_duration_fmt(buf, (int64_t)json_integer_value(v)); /* seconds a column covers */
            printf("%-22s %s (%lld)\n", k, buf, (long long)json_integer_value(v));
        } else if ((strcmp(k, "ymin") == 0 || strcmp(k, "ymax") == 0) && json_is_number(v)) {
            sn_fmt_unit(buf, sizeof(buf), json_number_value(v), unit);
            printf("%-22s %s\n", k, buf);
        } else if (strcmp(k, "present") == 0 && json_is_array(v)) {
            size_t i;
            json_t *key;
            if (json_array_size(v) == 0)
                printf("%-22s -\n", k);
            json_array_foreach(v, i, key) printf("%-22s %s\n", i ? "" : k, json_string_value(key));
        } else if (json_is_string(v)) {
            printf("%-22s %s\n", k, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-22s %s\n", k, s ? s : "?");
            free(s);
        }
    }
}

int sn_cmd_heatmap(int argc, char **argv)
{
    static const char *const allowed[] = {"output", "width", "height",      "start",    "duration",
                                          "ymin",   "ymax",  KEY_DRAW_OPTS, "annotate", NULL};
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    struct value_args a;
    struct sn_ca_inst in;
    char rel[VALUE_REL_MAX];
    int rc;

    if ((rc = value_args(argc, argv, &a, "sonde heatmap", heatmap_usage, allowed)) >= 0)
        return rc;
    rc = sn_ca_inst_get(&a.ca, a.id, !a.output && !a.ca.json, &in);
    if (rc == SN_EXIT_OK && !sn_ca_need_numeric(a.id, &in, "heatmaps"))
        rc = SN_EXIT_FAILURE;
    if (rc != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    if (a.output) {
        sn_ca_inst_free(&in);
        struct sn_http_resp r;
        if (sn_ca_query(a.query, sizeof(a.query), "format", "png") < 0) {
            fprintf(stderr, "sonde heatmap: the options are too long\n");
            return SN_EXIT_USAGE;
        }
        value_rel(&a, "heatmap/image", rel);
        if ((rc = sn_ca_call(&a.ca, "GET", rel, NULL, true, &r)) != SN_EXIT_OK)
            return rc;
        if (r.len < 8 || memcmp(r.body, png_sig, 8) != 0) {
            fprintf(stderr, "sonde heatmap: the server's reply is not a PNG\n");
            rc = SN_EXIT_FAILURE;
        } else {
            rc = write_file(a.output, r.body, r.len);
        }
        sn_http_resp_free(&r);
        return rc;
    }
    json_t *j;
    value_rel(&a, "heatmap/image", rel);
    if ((rc = sn_ca_call_json(&a.ca, "GET", rel, NULL, true, &j)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    json_object_del(j, "image");
    if (a.ca.json)
        sn_ca_print_json(j);
    else
        print_heatmap(j, &in.unit);
    json_decref(j);
    sn_ca_inst_free(&in);
    return SN_EXIT_OK;
}

/* ---- details ----------------------------------------------------------------------------- */

static const char details_usage[] =
    "usage: sonde details [options] ID --x X --y Y --ymax Y\n"
    "\n"
    "Prints what one pixel (X, Y from the top left) of ID's heatmap holds: its time (local),\n"
    "its value range (in the field's unit), and the count per key.\n"
    "\n"
    "options:\n"
    "  --x X, --y Y       the pixel (required)\n"
    "  --top N            only the N biggest keys, then \"... and M more (K events)\"\n"
    "  --ymax Y           the top of the value range (required), --ymin Y its bottom\n"
    "  --width W, --height H, --start T, --duration D\n"
    "                     as for `sonde heatmap`\n"
    "  the heatmap's options, sent to the server (the counts are of every key present,\n"
    "  whatever the selection):\n" KEY_DRAW_HELP SN_CA_COMMON_HELP;

int sn_cmd_details(int argc, char **argv)
{
    static const char *const allowed[] = {"x",     "y",           "ymin",  "ymax",
                                          "width", "height",      "start", "duration",
                                          "top",   KEY_DRAW_OPTS, NULL};
    struct value_args a;
    struct sn_ca_inst in;
    char rel[VALUE_REL_MAX], n[96];
    json_t *j;
    int rc;

    if ((rc = value_args(argc, argv, &a, "sonde details", details_usage, allowed)) >= 0)
        return rc;
    if (!param_val(&a, O_X) || !param_val(&a, O_Y) || !param_val(&a, O_YMAX)) {
        fprintf(stderr, "sonde details: --x, --y and --ymax are required\n\n");
        sn_ca_usage(stderr, details_usage);
        return SN_EXIT_USAGE;
    }
    rc = sn_ca_inst_get(&a.ca, a.id, !a.ca.json, &in);
    if (rc == SN_EXIT_OK && !sn_ca_need_numeric(a.id, &in, "heatmap details"))
        rc = SN_EXIT_FAILURE;
    value_rel(&a, "heatmap/details", rel);
    if (rc != SN_EXIT_OK ||
        (rc = sn_ca_call_json(&a.ca, "GET", rel, NULL, true, &j)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    if (a.ca.json) {
        sn_ca_print_json(j);
    } else {
        struct view v = {in.unit, in.vunit, a.top};
        char lo[48], hi[48];
        time_str(json_object_get(j, "bucket_time"), n, sizeof(n));
        sn_fmt_unit(lo, sizeof(lo), json_number_value(json_object_get(j, "bucket_ymin")), &in.unit);
        sn_fmt_unit(hi, sizeof(hi), json_number_value(json_object_get(j, "bucket_ymax")), &in.unit);
        printf("time     %s\n", n);
        print_granularity(j);
        printf("range    [%s, %s)\n", lo, hi);
        count_str(json_number_value(json_object_get(j, "total")), &v, n, sizeof(n));
        printf("total    %s\n", n);
        if (json_object_size(json_object_get(j, "present")))
            rc = print_raw(json_object_get(j, "present"), &v);
    }
    json_decref(j);
    sn_ca_inst_free(&in);
    return rc;
}

/* ---- percentile -------------------------------------------------------------------------- */

static const char percentile_usage[] =
    "usage: sonde percentile [options] ID -P P[,P...]\n"
    "\n"
    "Prints percentiles (0 to 1) of numeric instrumentation ID over an interval (default:\n"
    "the last data point), one per line, in the field's unit, of every key: computed by\n"
    "the server from the merged log-linear histograms (method=exact), so within one\n"
    "log-linear bucket (1 to 10%) of the true value. No data gives 0.\n"
    "\n"
    "options:\n"
    "  -P, --percentile L the percentiles, e.g. 0.5,0.9,0.99 (required)\n"
    "  --start T          start of the interval: Unix seconds, now, a time before now\n"
    "                     (-7d, -1h30m) or a UTC date (2026-12-01, 2026-12-01T03:00Z)\n"
    "  --duration D       length of the interval: 90s, 5m, 1h30m, 7d... or seconds\n"
    "                     (default 1 s)\n"
    "  --rows             compute them as Cloud Analytics did instead: over --nbuckets rows\n"
    "                     between ymin and ymax (log-spaced with --log); only then may\n"
    "                     --ymin, --ymax, --nbuckets and --log be given\n"
    "  --ymin Y, --ymax Y the value range of the rows (ymax auto-scales when absent)\n"
    "  the heatmap's options, sent to the server: with --rows, --weights weight weighs\n"
    "  each count by its value; the key options and colors are checked but change\n"
    "  nothing:\n" KEY_DRAW_HELP SN_CA_COMMON_HELP;

int sn_cmd_percentile(int argc, char **argv)
{
    static const char *const allowed[] = {"percentile", "start", "duration",    "ymin",
                                          "ymax",       "rows",  KEY_DRAW_OPTS, NULL};
    struct value_args a;
    struct sn_ca_inst in;
    char rel[VALUE_REL_MAX], n[48];
    const char *q; /* the percentiles as given, for labels */
    const char *q_method, *w;
    json_t *j, *p;
    int rc;

    if ((rc = value_args(argc, argv, &a, "sonde percentile", percentile_usage, allowed)) >= 0)
        return rc;
    if (!(q = param_val(&a, 'P'))) {
        fprintf(stderr, "sonde percentile: -P is required\n\n");
        sn_ca_usage(stderr, percentile_usage);
        return SN_EXIT_USAGE;
    }
    if (!a.rows && (param_val(&a, O_YMIN) || param_val(&a, O_YMAX) || param_val(&a, O_NBUCKETS) ||
                    param_val(&a, O_LOG))) {
        fprintf(stderr, "sonde percentile: --ymin, --ymax, --nbuckets and --log shape the rows "
                        "of --rows: give --rows with them\n");
        return SN_EXIT_USAGE;
    }
    if (!a.rows && (w = param_val(&a, O_WEIGHTS)) && strcmp(w, "count") != 0) {
        fprintf(stderr,
                "sonde percentile: --weights %s needs --rows (exact percentiles count "
                "events)\n",
                w);
        return SN_EXIT_USAGE;
    }
    if (!a.rows && sn_ca_query(a.query, sizeof(a.query), "method", "exact") < 0) {
        fprintf(stderr, "sonde percentile: the options are too long\n");
        return SN_EXIT_USAGE;
    }
    rc = sn_ca_inst_get(&a.ca, a.id, !a.ca.json, &in);
    if (rc == SN_EXIT_OK && !sn_ca_need_numeric(a.id, &in, "percentiles"))
        rc = SN_EXIT_FAILURE;
    value_rel(&a, "heatmap/percentile", rel);
    if (rc != SN_EXIT_OK ||
        (rc = sn_ca_call_json(&a.ca, "GET", rel, NULL, true, &j)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    p = json_object_get(j, "percentile");
    q_method = json_string_value(json_object_get(j, "method"));
    if (!a.rows && (!q_method || strcmp(q_method, "exact") != 0))
        fprintf(stderr, "sonde: warning: the server does not compute exact percentiles "
                        "(method=exact): these are from its rows, as with --rows\n");
    if (!a.ca.json)
        print_granularity(j);
    if (a.ca.json) {
        sn_ca_print_json(j);
    } else if (json_is_array(p)) {
        /* the same order as asked */
        size_t i;
        json_t *v;
        json_array_foreach(p, i, v)
        {
            size_t len = strcspn(q, ",");
            sn_fmt_unit(n, sizeof(n), json_is_number(v) ? json_number_value(v) : NAN, &in.unit);
            printf("p%-10.*s %s\n", (int)len, q, n);
            q += len + (q[len] == ',');
        }
    } else {
        sn_fmt_unit(n, sizeof(n), json_is_number(p) ? json_number_value(p) : NAN, &in.unit);
        printf("p%-10s %s\n", q, n);
    }
    json_decref(j);
    sn_ca_inst_free(&in);
    return SN_EXIT_OK;
}
