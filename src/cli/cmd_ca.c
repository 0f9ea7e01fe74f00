/*
 * `sonde describe`, `list`, `get`, `delete`, `clone` and `create`: the command line client of
 * the Cloud Analytics API's metrics and instrumentations (docs/api.md), talking HTTP to
 * `sonde serve`. Human output by default, the server's JSON with --json. The value commands
 * (raw, heatmap, details, percentile) are in cmd_ca_value.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"
#include "core/timespec.h"

/* Parses argv for a command that takes only the common options. Returns -1 to carry on (the
 * operands start at optind), or an exit code. */
static int common_args(int argc, char **argv, struct sn_ca *ca, const char *usage, int min_ops,
                       int max_ops)
{
    static const struct option longopts[] = {SN_CA_COMMON_OPTS, {NULL, 0, NULL, 0}};
    int c, nops;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (sn_ca_option(ca, c, optarg))
            continue;
        if (c == 'h') {
            sn_ca_usage(stdout, usage);
            return SN_EXIT_OK;
        }
        sn_ca_bad_option(ca, c, argv[optind - 1]);
        sn_ca_usage(stderr, usage);
        return SN_EXIT_USAGE;
    }
    nops = argc - optind;
    if (nops < min_ops || (max_ops >= 0 && nops > max_ops)) {
        fprintf(stderr, "%s: %s\n\n", ca->cmd,
                nops < min_ops ? "missing argument" : "too many arguments");
        sn_ca_usage(stderr, usage);
        return SN_EXIT_USAGE;
    }
    return sn_ca_ready(ca) == SN_EXIT_OK ? -1 : SN_EXIT_USAGE;
}

static const char *str_or(const json_t *j, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : dflt;
}

/* ---- describe ---------------------------------------------------------------------------- */

static const char describe_usage[] =
    "usage: sonde describe [options]\n"
    "\n"
    "Lists the modules and metrics the server offers, each metric with the fields it can be\n"
    "decomposed or filtered by (and their types).\n"
    "\n"
    "options:\n" SN_CA_COMMON_HELP;

int sn_cmd_describe(int argc, char **argv)
{
    struct sn_ca ca;
    json_t *j, *metrics, *fields, *modules, *m;
    size_t i;
    int rc;

    sn_ca_init(&ca, "sonde describe");
    if ((rc = common_args(argc, argv, &ca, describe_usage, 0, 0)) >= 0)
        return rc;
    if ((rc = sn_ca_call_json(&ca, "GET", "", NULL, false, &j)) != SN_EXIT_OK)
        return rc;
    if (ca.json) {
        sn_ca_print_json(j);
        json_decref(j);
        return SN_EXIT_OK;
    }
    metrics = json_object_get(j, "metrics");
    fields = json_object_get(j, "fields");
    modules = json_object_get(j, "modules");
    printf("%-28s %-16s %s\n", "METRIC", "UNIT", "LABEL");
    json_array_foreach(metrics, i, m)
    {
        const char *mod = str_or(m, "module", "?");
        char name[256];
        size_t k;
        json_t *f;

        snprintf(name, sizeof(name), "%s.%s", mod, str_or(m, "stat", "?"));
        printf("%-28s %-16s %s: %s\n", name, str_or(m, "unit", str_or(m, "type", "")),
               str_or(json_object_get(modules, mod), "label", mod), str_or(m, "label", ""));
        json_array_foreach(json_object_get(m, "fields"), k, f)
        {
            const char *fn = json_string_value(f);
            json_t *fd = json_object_get(fields, fn ? fn : "");
            printf("    %-24s %-16s %s\n", fn ? fn : "?", str_or(fd, "type", ""),
                   str_or(fd, "label", ""));
        }
    }
    json_decref(j);
    return SN_EXIT_OK;
}

/* ---- list and get ------------------------------------------------------------------------ */

/* "a,b" from the decomposition array, "-" when empty. */
static void decomp_str(const json_t *inst, char *out, size_t cap)
{
    size_t i, n = 0;
    json_t *f;

    out[0] = '\0';
    json_array_foreach(json_object_get(inst, "decomposition"), i, f)
    {
        int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "", json_string_value(f));
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    if (n == 0)
        snprintf(out, cap, "-");
}

static void print_inst_row(const json_t *inst)
{
    char name[256], dec[256], *pred;
    json_t *p = json_object_get(inst, "predicate");

    snprintf(name, sizeof(name), "%s.%s", str_or(inst, "module", "?"), str_or(inst, "stat", "?"));
    decomp_str(inst, dec, sizeof(dec));
    pred = p && json_object_size(p) ? json_dumps(p, JSON_COMPACT) : NULL;
    printf("%-6s %-28s %-20s %5lld %9lld  %s\n", str_or(inst, "id", "?"), name, dec,
           json_integer_value(json_object_get(inst, "granularity")),
           json_integer_value(json_object_get(inst, "retention-time")), pred ? pred : "-");
    free(pred);
}

static const char list_usage[] =
    "usage: sonde list [options]\n"
    "\n"
    "Lists the instrumentations of the scope: id, metric, decomposition, granularity,\n"
    "retention and predicate.\n"
    "\n"
    "options:\n" SN_CA_COMMON_HELP;

int sn_cmd_list(int argc, char **argv)
{
    struct sn_ca ca;
    json_t *j, *inst;
    size_t i;
    int rc;

    sn_ca_init(&ca, "sonde list");
    if ((rc = common_args(argc, argv, &ca, list_usage, 0, 0)) >= 0)
        return rc;
    if ((rc = sn_ca_call_json(&ca, "GET", "/instrumentations", NULL, false, &j)) != SN_EXIT_OK)
        return rc;
    if (ca.json) {
        sn_ca_print_json(j);
    } else {
        printf("%-6s %-28s %-20s %5s %9s  %s\n", "ID", "METRIC", "DECOMPOSITION", "GRAN",
               "RETENTION", "PREDICATE");
        json_array_foreach(j, i, inst) print_inst_row(inst);
    }
    json_decref(j);
    return SN_EXIT_OK;
}

/* Every property on its own line, "name: value" (compact JSON for non-strings). */
static void print_props(const json_t *inst)
{
    const char *k;
    json_t *v;

    json_object_foreach((json_t *)inst, k, v)
    {
        if (json_is_string(v)) {
            printf("%-16s %s\n", k, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
            printf("%-16s %s\n", k, s ? s : "?");
            free(s);
        }
    }
}

static const char get_usage[] = "usage: sonde get [options] ID\n"
                                "\n"
                                "Prints the properties of instrumentation ID.\n"
                                "\n"
                                "options:\n" SN_CA_COMMON_HELP;

int sn_cmd_get(int argc, char **argv)
{
    struct sn_ca ca;
    char rel[64];
    json_t *j;
    int rc;

    sn_ca_init(&ca, "sonde get");
    if ((rc = common_args(argc, argv, &ca, get_usage, 1, 1)) >= 0)
        return rc;
    if (!sn_ca_valid_id(&ca, argv[optind]))
        return SN_EXIT_USAGE;
    snprintf(rel, sizeof(rel), "/instrumentations/%s", argv[optind]);
    if ((rc = sn_ca_call_json(&ca, "GET", rel, NULL, true, &j)) != SN_EXIT_OK)
        return rc;
    if (ca.json)
        sn_ca_print_json(j);
    else
        print_props(j);
    json_decref(j);
    return SN_EXIT_OK;
}

static const char delete_usage[] = "usage: sonde delete [options] ID\n"
                                   "\n"
                                   "Deletes instrumentation ID and its data.\n"
                                   "\n"
                                   "options:\n" SN_CA_COMMON_HELP;

int sn_cmd_delete(int argc, char **argv)
{
    struct sn_ca ca;
    struct sn_http_resp r;
    char rel[64];
    int rc;

    sn_ca_init(&ca, "sonde delete");
    if ((rc = common_args(argc, argv, &ca, delete_usage, 1, 1)) >= 0)
        return rc;
    if (!sn_ca_valid_id(&ca, argv[optind]))
        return SN_EXIT_USAGE;
    snprintf(rel, sizeof(rel), "/instrumentations/%s", argv[optind]);
    if ((rc = sn_ca_call(&ca, "DELETE", rel, NULL, true, &r)) != SN_EXIT_OK)
        return rc;
    sn_http_resp_free(&r);
    if (ca.json)
        printf("{\"deleted\": \"%s\"}\n", argv[optind]);
    else
        printf("deleted %s\n", argv[optind]);
    return SN_EXIT_OK;
}

/* ---- create and clone -------------------------------------------------------------------- */

/* Prints a new instrumentation: its id and URI, or the object with --json. */
static void print_created(const struct sn_ca *ca, const json_t *j)
{
    if (ca->json)
        sn_ca_print_json(j);
    else
        printf("%s %s\n", str_or(j, "id", "?"), str_or(j, "uri", ""));
}

/* The JSON value of a PROP=VALUE operand: VALUE itself when it parses as JSON (numbers,
 * booleans, objects, arrays, quoted strings), else VALUE as a string. */
static json_t *prop_value(const char *v)
{
    json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(v);
}

static const char clone_usage[] =
    "usage: sonde clone [options] ID [PROP=VALUE...]\n"
    "\n"
    "Creates a new instrumentation from ID's properties, overlaid with PROP=VALUE pairs\n"
    "(e.g. retention-time=1200 'predicate={\"eq\":[\"execname\",\"nginx\"]}'). VALUE is taken\n"
    "as JSON when it parses as JSON, else as a string. Prints the new id and its URI.\n"
    "\n"
    "options:\n" SN_CA_COMMON_HELP;

int sn_cmd_clone(int argc, char **argv)
{
    struct sn_ca ca;
    char rel[64], *body;
    json_t *props, *j;
    int rc;

    sn_ca_init(&ca, "sonde clone");
    if ((rc = common_args(argc, argv, &ca, clone_usage, 1, -1)) >= 0)
        return rc;
    if (!sn_ca_valid_id(&ca, argv[optind]))
        return SN_EXIT_USAGE;
    props = json_object();
    for (int i = optind + 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        char name[128];
        if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(name)) {
            fprintf(stderr, "sonde clone: want PROP=VALUE, not '%s'\n", argv[i]);
            json_decref(props);
            return SN_EXIT_USAGE;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - argv[i]), argv[i]);
        json_object_set_new(props, name, prop_value(eq + 1));
    }
    body = json_dumps(props, JSON_COMPACT);
    json_decref(props);
    if (!body)
        return SN_EXIT_FAILURE;
    snprintf(rel, sizeof(rel), "/instrumentations/%s/clone", argv[optind]);
    rc = sn_ca_call_json(&ca, "POST", rel, body, true, &j);
    free(body);
    if (rc != SN_EXIT_OK)
        return rc;
    print_created(&ca, j);
    json_decref(j);
    return SN_EXIT_OK;
}

static const char create_usage[] =
    "usage: sonde create [options] MODULE.STAT\n"
    "\n"
    "Creates an instrumentation of metric MODULE.STAT (see `sonde describe`) and prints its\n"
    "id and URI (the whole object with --json).\n"
    "\n"
    "options:\n"
    "  -d, --decompose FIELD  decompose by FIELD (repeat for a second field)\n"
    "  -p, --predicate P      a CA predicate, as JSON ('{\"eq\":[\"execname\",\"nginx\"]}') or\n"
    "                         FIELD OP VALUE, OP one of == != < <= > >= ('latency > 1ms',\n"
    "                         'execname == nginx'); a numeric field's VALUE may carry a\n"
    "                         unit (1ms, 250us, 4KiB) the server converts; several -p all\n"
    "                         hold (and)\n"
    "  --granularity N        seconds per data point (1, or a multiple of 5)\n"
    "  --retention N          seconds of data kept (retention-time)\n"
    "  --idle-max N           seconds without access before the server deletes it\n"
    "                         (each N: seconds, or a duration: 90s, 10m, 1h, 2d)\n"
    "  --persist              keep the data across restarts (persist-data)\n" SN_CA_COMMON_HELP;

/* A predicate "FIELD OP VALUE" (blanks around OP optional) as CA's {"OP":[FIELD, VALUE]}:
 * VALUE a JSON number or quoted string as such, any other text as a string (the server
 * reads unit strings such as "1ms" on numeric fields). NULL with *why when malformed. */
static json_t *infix_predicate(const char *s, const char **why)
{
    static const struct {
        const char *op, *ca;
    } ops[] = {{"==", "eq"}, {"!=", "ne"}, {"<=", "le"}, {">=", "ge"},
               {"=", "eq"},  {"<", "lt"},  {">", "gt"}};
    size_t flen, vlen;
    const char *o, *v;
    json_t *val;

    while (*s == ' ' || *s == '\t')
        s++;
    flen = strcspn(s, " \t=!<>");
    o = s + flen;
    while (*o == ' ' || *o == '\t')
        o++;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t ol = strlen(ops[i].op);
        if (strncmp(o, ops[i].op, ol) != 0)
            continue;
        v = o + ol;
        while (*v == ' ' || *v == '\t')
            v++;
        vlen = strlen(v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (flen == 0 || vlen == 0) {
            *why = flen ? "no value" : "no field";
            return NULL;
        }
        val = json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
        if (val && !json_is_number(val) && !json_is_string(val)) {
            json_decref(val);
            val = NULL;
        }
        if (!val)
            val = json_stringn(v, vlen);
        return json_pack("{s:[s%,o]}", ops[i].ca, s, flen, val);
    }
    *why = "want JSON or FIELD OP VALUE (OP one of == != < <= > >=)";
    return NULL;
}

/* Seconds as a non-negative integer or a duration (core/timespec.h: 90s, 1h, 2d). */
static bool parse_count(const char *cmd, const char *opt, const char *s, long long *out)
{
    char *end;
    int64_t d;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (!errno && end != s && !*end && *out >= 0)
        return true;
    if (s[0] != '-' && sn_duration_parse(s, &d) == 0) {
        *out = (long long)d;
        return true;
    }
    fprintf(stderr, "%s: %s wants seconds or a duration (90s, 5m, 1h, 2d), not '%s'\n", cmd, opt,
            s);
    return false;
}

int sn_cmd_create(int argc, char **argv)
{
    enum { O_GRAN = 256, O_RET, O_IDLE, O_PERSIST };
    static const struct option longopts[] = {
        SN_CA_COMMON_OPTS,
        {"decompose", required_argument, NULL, 'd'},
        {"predicate", required_argument, NULL, 'p'},
        {"granularity", required_argument, NULL, O_GRAN},
        {"retention", required_argument, NULL, O_RET},
        {"idle-max", required_argument, NULL, O_IDLE},
        {"persist", no_argument, NULL, O_PERSIST},
        {NULL, 0, NULL, 0},
    };
    struct sn_ca ca;
    json_t *body = json_object(), *dec = json_array(), *j = NULL;
    const char *dot;
    char *text = NULL;
    long long v;
    int c, rc = SN_EXIT_USAGE;

    sn_ca_init(&ca, "sonde create");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hd:p:", longopts, NULL)) != -1) {
        if (sn_ca_option(&ca, c, optarg))
            continue;
        switch (c) {
        case 'h':
            sn_ca_usage(stdout, create_usage);
            rc = SN_EXIT_OK;
            goto out;
        case 'd':
            json_array_append_new(dec, json_string(optarg));
            break;
        case 'p': {
            json_error_t jerr;
            const char *why = NULL;
            json_t *p, *prev = json_object_get(body, "predicate");
            if (optarg[strspn(optarg, " \t")] == '{') {
                p = json_loads(optarg, 0, &jerr);
                why = p ? "not an object" : jerr.text;
            } else {
                p = infix_predicate(optarg, &why);
            }
            if (!json_is_object(p)) {
                fprintf(stderr, "sonde create: bad predicate '%s': %s\n", optarg, why);
                json_decref(p);
                goto out;
            }
            if (prev && json_object_get(prev, "and") && json_object_size(prev) == 1) {
                json_array_append_new(json_object_get(prev, "and"), p);
            } else {
                if (prev)
                    p = json_pack("{s:[O,o]}", "and", prev, p);
                json_object_set_new(body, "predicate", p);
            }
            break;
        }
        case O_GRAN:
        case O_RET:
        case O_IDLE: {
            const char *name = c == O_GRAN  ? "granularity"
                               : c == O_RET ? "retention-time"
                                            : "idle-max";
            const char *opt = c == O_GRAN  ? "--granularity"
                              : c == O_RET ? "--retention"
                                           : "--idle-max";
            if (!parse_count(ca.cmd, opt, optarg, &v))
                goto out;
            json_object_set_new(body, name, json_integer(v));
            break;
        }
        case O_PERSIST:
            json_object_set_new(body, "persist-data", json_true());
            break;
        default:
            sn_ca_bad_option(&ca, c, argv[optind - 1]);
            sn_ca_usage(stderr, create_usage);
            goto out;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "sonde create: want one MODULE.STAT\n\n");
        sn_ca_usage(stderr, create_usage);
        goto out;
    }
    dot = strchr(argv[optind], '.');
    if (!dot || dot == argv[optind] || !dot[1]) {
        fprintf(stderr, "sonde create: want MODULE.STAT, not '%s'\n", argv[optind]);
        goto out;
    }
    if (sn_ca_ready(&ca) != SN_EXIT_OK)
        goto out;
    json_object_set_new(body, "module", json_stringn(argv[optind], (size_t)(dot - argv[optind])));
    json_object_set_new(body, "stat", json_string(dot + 1));
    if (json_array_size(dec))
        json_object_set(body, "decomposition", dec);
    text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    rc = sn_ca_call_json(&ca, "POST", "/instrumentations", text, false, &j);
    if (rc == SN_EXIT_OK)
        print_created(&ca, j);
out:
    free(text);
    json_decref(j);
    json_decref(dec);
    json_decref(body);
    return rc;
}
