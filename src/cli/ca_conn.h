/*
 * What the CA API's command line clients (`sonde list`, `sonde raw`...) share: the server's
 * URL, token and tenant (options --url, --token, --tenant and the environment variables
 * SONDE_URL and SONDE_TOKEN), one request to a path under the scope, and the translation of
 * failures into messages and exit codes (cli.h).
 */
#ifndef SN_CLI_CA_CONN_H
#define SN_CLI_CA_CONN_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "core/fmt.h"
#include "http/client.h"

#define SN_CA_DEFAULT_URL "http://127.0.0.1:23181"

/* Long options every client command takes; its getopt_long table starts with them. */
enum { SN_CA_O_URL = 1000, SN_CA_O_TOKEN, SN_CA_O_TENANT, SN_CA_O_JSON };
#define SN_CA_COMMON_OPTS                                                                          \
    {"url", required_argument, NULL, SN_CA_O_URL},                                                 \
        {"token", required_argument, NULL, SN_CA_O_TOKEN},                                         \
        {"tenant", required_argument, NULL, SN_CA_O_TENANT},                                       \
        {"json", no_argument, NULL, SN_CA_O_JSON},                                                 \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

/* The text of the common options, for the end of a usage string's "options:" section. */
#define SN_CA_COMMON_HELP                                                                          \
    "  --url URL         the server (default $SONDE_URL, else " SN_CA_DEFAULT_URL ")\n"            \
    "  --token T         send Authorization: Bearer T (default $SONDE_TOKEN)\n"                    \
    "  --tenant NAME     use the tenant's scope /ca/customers/NAME instead of /ca\n"               \
    "  --json            print the server's JSON reply instead of the human form\n"                \
    "  -h, --help        this help\n"

/* The "exit codes:" section, the one text that `sonde --help` (main.c) and every client
 * command's help end with. */
extern const char sn_cli_exit_codes[];

/* Prints a command's usage string, then a blank line and sn_cli_exit_codes, on f. */
void sn_ca_usage(FILE *f, const char *usage);

struct sn_ca {
    const char *cmd; /* for messages: "sonde list" */
    const char *url, *token, *tenant;
    bool json;
    struct sn_url u;
};

/* Defaults from the environment. */
void sn_ca_init(struct sn_ca *ca, const char *cmd);
/* Handles one of the common options (returns true), or returns false. */
bool sn_ca_option(struct sn_ca *ca, int c, const char *arg);
/* After getopt_long returned '?' or ':' (c; optstring starting with ':', opterr 0): "CMD:
 * unknown option" or "CMD: option wants an argument". */
void sn_ca_bad_option(const struct sn_ca *ca, int c, const char *arg);
/* Parses the URL; SN_EXIT_OK or SN_EXIT_USAGE (with a message). */
int sn_ca_ready(struct sn_ca *ca);

/* Sends method to the scope's path + rel (e.g. "/instrumentations/3"), with a JSON body (may
 * be NULL). On a 2xx answer returns SN_EXIT_OK with *r filled (free it with
 * sn_http_resp_free); otherwise prints why on stderr ("sonde: MESSAGE"; is_inst: a 404 is "no
 * such instrumentation") and returns SN_EXIT_FAILURE. A failure without a CA error body (a
 * bare 404, a 501, HTML...) first asks the server who it is (`GET /`, as JSON): what does not
 * say it is Sonde is "sonde: URL: not a Sonde server (...)". */
int sn_ca_call(struct sn_ca *ca, const char *method, const char *rel, const char *body,
               bool is_inst, struct sn_http_resp *r);
/* The same, parsing a JSON reply into *out (a new reference). */
int sn_ca_call_json(struct sn_ca *ca, const char *method, const char *rel, const char *body,
                    bool is_inst, json_t **out);

/* The same for a download of any size (`sonde export`): a 2xx body goes to sink as it comes
 * (http/client.h), each wait bounded (30 s) rather than the whole exchange. Failures are said
 * as by sn_ca_call(), and a body cut short as "sonde: the download from URL was cut short
 * (...)"; a failure of sink itself is not said (sink says it). SN_EXIT_OK or SN_EXIT_FAILURE. */
int sn_ca_call_stream(struct sn_ca *ca, const char *method, const char *rel, bool is_inst,
                      sn_http_sink_fn sink, void *arg);

/* What the value commands need to know of an instrumentation besides its values. */
struct sn_ca_inst {
    json_t *props;        /* its properties (GET /instrumentations/ID) */
    bool numeric;         /* value-arity numeric-decomposition: it has heatmaps */
    const char *nfield;   /* the numeric field of its decomposition, or NULL */
    struct sn_unit unit;  /* the unit of that field's values (`GET /ca`'s types) */
    struct sn_unit vunit; /* the unit of the metric's values, the counts (bytes, or none) */
};

/* Fills *in for instrumentation id; with units, also asks `GET /ca` for the unit of the
 * numeric field (and sees whether the locale can write "µs"). On failure prints why and
 * returns its exit code; release with sn_ca_inst_free() either way. */
int sn_ca_inst_get(struct sn_ca *ca, const char *id, bool units, struct sn_ca_inst *in);
void sn_ca_inst_free(struct sn_ca_inst *in);

/* For a heatmap resource (what: "heatmaps", "percentiles", "heatmap details"): when in has
 * no numeric decomposition, prints "sonde: instrumentation ID has no numeric decomposition:
 * WHAT need one (it is decomposed by execname)" and returns false. */
bool sn_ca_need_numeric(const char *id, const struct sn_ca_inst *in, const char *what);

/* Prints j as indented JSON on stdout. */
void sn_ca_print_json(const json_t *j);

/* Appends "&name=value" (or "?name=value" first) to the query q, percent-encoding value. */
int sn_ca_query(char *q, size_t cap, const char *name, const char *value);

/* Checks that s is a plain instrumentation id (digits); prints a usage error otherwise. */
bool sn_ca_valid_id(const struct sn_ca *ca, const char *s);

#endif
