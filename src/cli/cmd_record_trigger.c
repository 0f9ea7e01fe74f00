/*
 * `sonde record trigger`: the flight recorder's triggers on a server (docs/recorder.md,
 * "Triggers"), over the API's /ca/recorder/triggers routes:
 *
 *   sonde record trigger add NAME --session S --instn ID --when COND [--key K]
 *                                 [--min-interval SEC] [--post SEC]
 *   sonde record trigger list     the triggers and what they fired (with their snapshots)
 *   sonde record trigger rm NAME
 *
 * The server checks the names, the condition and the numbers; this only sends them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"

static const char usage[] =
    "usage: sonde record trigger add NAME --session S --instn ID --when COND [--key K]\n"
    "                                [--min-interval SEC] [--post SEC] [options]\n"
    "       sonde record trigger list [options]\n"
    "       sonde record trigger rm NAME [options]\n"
    "\n"
    "A trigger snapshots recording session S (the whole of its rings, SEC of --post after it\n"
    "fires) when instrumentation ID's condition COND holds:\n"
    "  'p99 > 10ms for 3s'               a percentile of the values over a threshold\n"
    "  'count > 5000 for 2s'             more operations per second than a rate\n"
    "  'count in [5ms, 20ms) > 10'       more per second in a heatmap band\n"
    "Values are in the instrumentation's unit or carry ns, us, ms, s; 'for Ns' (default 1 s)\n"
    "asks for N consecutive seconds.\n"
    "\n"
    "options:\n"
    "  --session S         add: the recording session to snapshot\n"
    "  --instn ID          add: the instrumentation (an id of `sonde list`)\n"
    "  --when COND         add: the condition\n"
    "  --key K             add: judge only key K of its decomposition ('*': any one key;\n"
    "                      default: the total)\n"
    "  --min-interval SEC  add: at most one snapshot per SEC seconds (default 60)\n"
    "  --post SEC          add: seconds after firing the snapshot is taken (default "
    "1)\n" SN_CA_COMMON_HELP;

enum { O_SESSION = 1, O_INSTN, O_WHEN, O_KEY, O_IVAL, O_POST };

static int add(struct sn_ca *ca, const char *name, const char *const opt[O_POST + 1])
{
    char *end;
    json_t *r;
    long long id = strtoll(opt[O_INSTN], &end, 10);

    if (*end || end == opt[O_INSTN] || id < 1) {
        fprintf(stderr, "sonde record trigger: --instn %s is not an instrumentation id\n",
                opt[O_INSTN]);
        return SN_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s,s:s,s:I,s:s}", "name", name, "session", opt[O_SESSION],
                             "instrumentation", (json_int_t)id, "when", opt[O_WHEN]);
    if (!body)
        return SN_EXIT_FAILURE;
    if (opt[O_KEY])
        json_object_set_new(body, "key", json_string(opt[O_KEY]));
    for (int o = O_IVAL; o <= O_POST; o++) {
        if (!opt[o])
            continue;
        long long v = strtoll(opt[o], &end, 10);
        if (*end || end == opt[o] || v < 0) {
            fprintf(stderr, "sonde record trigger: %s %s is not a number of seconds\n",
                    o == O_IVAL ? "--min-interval" : "--post", opt[o]);
            json_decref(body);
            return SN_EXIT_USAGE;
        }
        json_object_set_new(body, o == O_IVAL ? "min-interval" : "post", json_integer(v));
    }
    char *text = json_dumps(body, 0);
    json_decref(body);
    int rc = sn_ca_call_json(ca, "POST", "/recorder/triggers", text, false, &r);
    free(text);
    if (rc != SN_EXIT_OK)
        return rc;
    if (ca->json)
        sn_ca_print_json(r);
    else
        printf("trigger %s added: snapshots %s when %s\n", name, opt[O_SESSION], opt[O_WHEN]);
    json_decref(r);
    return SN_EXIT_OK;
}

static int list(struct sn_ca *ca)
{
    json_t *r, *t, *f;
    size_t i, k;

    int rc = sn_ca_call_json(ca, "GET", "/recorder/triggers", NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    if (ca->json) {
        sn_ca_print_json(r);
        json_decref(r);
        return SN_EXIT_OK;
    }
    printf("%-20s  %-16s  %5s  %-28s  %5s  %10s\n", "TRIGGER", "SESSION", "INSTN", "WHEN", "FIRES",
           "SUPPRESSED");
    json_array_foreach(r, i, t)
    {
        printf("%-20s  %-16s  %5lld  %-28s  %5lld  %10lld\n",
               json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "session")),
               (long long)json_integer_value(json_object_get(t, "instrumentation")),
               json_string_value(json_object_get(t, "when")),
               (long long)json_integer_value(json_object_get(t, "fires")),
               (long long)json_integer_value(json_object_get(t, "suppressed")));
        json_array_foreach(json_object_get(t, "fired"), k, f)
        {
            const char *key = json_string_value(json_object_get(f, "key"));
            const char *snap = json_string_value(json_object_get(f, "snapshot"));
            printf("  fired at second %lld: value %g%s%s; snapshot %s\n",
                   (long long)json_integer_value(json_object_get(f, "second")),
                   json_number_value(json_object_get(f, "value")), key ? ", key " : "",
                   key ? key : "", snap ? snap : json_string_value(json_object_get(f, "state")));
        }
    }
    json_decref(r);
    return SN_EXIT_OK;
}

static int rm(struct sn_ca *ca, const char *name)
{
    char rel[256];
    struct sn_http_resp r;

    snprintf(rel, sizeof(rel), "/recorder/triggers/%s", name);
    int rc = sn_ca_call(ca, "DELETE", rel, NULL, false, &r);
    if (rc != SN_EXIT_OK)
        return rc;
    sn_http_resp_free(&r);
    if (!ca->json)
        printf("trigger %s removed\n", name);
    return SN_EXIT_OK;
}

int sn_cmd_record_trigger(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"session", required_argument, NULL, O_SESSION},
        {"instn", required_argument, NULL, O_INSTN},
        {"when", required_argument, NULL, O_WHEN},
        {"key", required_argument, NULL, O_KEY},
        {"min-interval", required_argument, NULL, O_IVAL},
        {"post", required_argument, NULL, O_POST},
        SN_CA_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    const char *opt[O_POST + 1] = {0};
    struct sn_ca ca;
    int c, rc;

    sn_ca_init(&ca, "sonde record trigger");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c >= O_SESSION && c <= O_POST) {
            opt[c] = optarg;
            continue;
        }
        if (c == 'h') {
            sn_ca_usage(stdout, usage);
            return SN_EXIT_OK;
        }
        if (sn_ca_option(&ca, c, optarg))
            continue;
        sn_ca_bad_option(&ca, c, optarg);
        return SN_EXIT_USAGE;
    }
    const char *what = optind < argc ? argv[optind] : "";
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool is_add = strcmp(what, "add") == 0, any = false;
    for (int o = O_SESSION; o <= O_POST; o++)
        any |= opt[o] != NULL;
    bool ok = is_add || strcmp(what, "rm") == 0 ? name && optind + 2 == argc
                                                : strcmp(what, "list") == 0 && optind + 1 == argc;
    if (!ok || (is_add && (!opt[O_SESSION] || !opt[O_INSTN] || !opt[O_WHEN])) || (!is_add && any)) {
        fprintf(stderr, "%s", usage);
        return SN_EXIT_USAGE;
    }
    if (name && strcspn(name, "/?#%") != strlen(name)) {
        fprintf(stderr, "sonde record trigger: %s is not a trigger name (letters, digits, _ . -)\n",
                name);
        return SN_EXIT_USAGE;
    }
    if ((rc = sn_ca_ready(&ca)) != SN_EXIT_OK)
        return rc;
    if (is_add)
        return add(&ca, name, opt);
    if (strcmp(what, "rm") == 0)
        return rm(&ca, name);
    return list(&ca);
}
