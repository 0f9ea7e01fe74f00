/*
 * The CA API's client side shared by the command line clients (ca_conn.h): options, the
 * request and the mapping of failures (refused connections, 404, CA error bodies) to
 * messages and exit codes.
 */
#include "cli/ca_conn.h"

#include <ctype.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define SN_CA_TIMEOUT_MS 30000

const char sn_cli_exit_codes[] =
    "exit codes:\n"
    "  0  success\n"
    "  1  the command failed at run time: the server answered an error (its message is\n"
    "     shown), no such instrumentation, the server could not be reached, an I/O error\n"
    "  2  usage error: unknown command or option, missing or bad argument, malformed input\n";

void sn_ca_usage(FILE *f, const char *usage)
{
    fputs(usage, f);
    fputc('\n', f);
    fputs(sn_cli_exit_codes, f);
}

void sn_ca_init(struct sn_ca *ca, const char *cmd)
{
    const char *e;

    memset(ca, 0, sizeof(*ca));
    ca->cmd = cmd;
    ca->url = SN_CA_DEFAULT_URL;
    if ((e = getenv("SONDE_URL")) != NULL && *e)
        ca->url = e;
    if ((e = getenv("SONDE_TOKEN")) != NULL && *e)
        ca->token = e;
}

bool sn_ca_option(struct sn_ca *ca, int c, const char *arg)
{
    switch (c) {
    case SN_CA_O_URL:
        ca->url = arg;
        return true;
    case SN_CA_O_TOKEN:
        ca->token = arg;
        return true;
    case SN_CA_O_TENANT:
        ca->tenant = arg;
        return true;
    case SN_CA_O_JSON:
        ca->json = true;
        return true;
    default:
        return false;
    }
}

void sn_ca_bad_option(const struct sn_ca *ca, int c, const char *arg)
{
    if (c == ':')
        fprintf(stderr, "%s: option '%s' wants an argument\n\n", ca->cmd, arg);
    else
        fprintf(stderr, "%s: unknown option '%s'\n\n", ca->cmd, arg);
}

int sn_ca_ready(struct sn_ca *ca)
{
    if (sn_url_parse(ca->url, &ca->u) < 0) {
        fprintf(stderr, "%s: bad URL '%s' (want http://HOST[:PORT])\n", ca->cmd, ca->url);
        return SN_EXIT_USAGE;
    }
    if (ca->tenant) {
        const char *p = ca->tenant;
        size_t n = strlen(p);
        if (n == 0 || n > 63 ||
            strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789-_.") != n) {
            fprintf(stderr, "%s: bad tenant name '%s'\n", ca->cmd, p);
            return SN_EXIT_USAGE;
        }
    }
    if (ca->token && (strchr(ca->token, '\r') || strchr(ca->token, '\n'))) {
        fprintf(stderr, "%s: bad token\n", ca->cmd);
        return SN_EXIT_USAGE;
    }
    return SN_EXIT_OK;
}

/* Where a streamed body goes: the caller's sink, and whether it failed. */
struct stream_to {
    sn_http_sink_fn sink;
    void *arg;
    bool failed;
};

static int stream_to(void *arg, const void *p, size_t n)
{
    struct stream_to *t = arg;
    int rc = t->sink(t->arg, p, n);
    t->failed |= rc < 0;
    return rc;
}

/* One request to path (the whole path) at ca's host; sn_http_request()'s return (with to:
 * sn_http_request_stream()'s). */
static int request_to(struct sn_ca *ca, const char *method, const char *path, const char *body,
                      bool accept_json, struct stream_to *to, struct sn_http_resp *r)
{
    char auth[1024];
    const char *headers[4];
    size_t nh = 0;

    if (ca->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ca->token);
        headers[nh++] = auth;
    }
    if (body)
        headers[nh++] = "Content-Type: application/json";
    if (accept_json)
        headers[nh++] = "Accept: application/json";
    headers[nh] = NULL;
    if (to)
        return sn_http_request_stream(&ca->u, method, path, headers, body, body ? strlen(body) : 0,
                                      SN_CA_TIMEOUT_MS, stream_to, to, r);
    return sn_http_request(&ca->u, method, path, headers, body, body ? strlen(body) : 0,
                           SN_CA_TIMEOUT_MS, r);
}

static int request(struct sn_ca *ca, const char *method, const char *path, const char *body,
                   bool accept_json, struct sn_http_resp *r)
{
    return request_to(ca, method, path, body, accept_json, NULL, r);
}

/* Prints why the server could not be reached (rc from sn_http_request). */
static void print_unreachable(const struct sn_ca *ca, int rc)
{
    if (rc == -EHOSTUNREACH)
        fprintf(stderr, "sonde: cannot reach %s: host not found\n", ca->url);
    else if (rc == -ECONNREFUSED)
        fprintf(stderr,
                "sonde: cannot connect to %s: nothing listens there (is `sonde serve` running "
                "there?)\n",
                ca->url);
    else if (rc == -EPROTO)
        fprintf(stderr, "sonde: %s: not a Sonde server (it does not answer HTTP)\n", ca->url);
    else
        fprintf(stderr, "sonde: cannot reach %s: %s\n", ca->url, strerror(-rc));
}

/* Whether a Sonde server answers `GET path` (its root, "/"): its {"name":"sonde"}. When not,
 * what does, in why. */
static bool is_sonde(struct sn_ca *ca, const char *path, char *why, size_t cap)
{
    struct sn_http_resp r;
    json_t *j;
    bool yes;
    int rc = request(ca, "GET", path, NULL, true, &r);

    if (rc < 0) {
        snprintf(why, cap, "GET %s: %s", path, strerror(-rc));
        return false;
    }
    j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    yes = r.status == 200 && json_is_object(j) && json_string_value(json_object_get(j, "name")) &&
          strcmp(json_string_value(json_object_get(j, "name")), "sonde") == 0;
    if (r.status != 200)
        snprintf(why, cap, "GET %s answers HTTP %d", path, r.status);
    else if (!j)
        snprintf(why, cap, "GET %s answers %s, not JSON", path, r.ctype[0] ? r.ctype : "no JSON");
    else
        snprintf(why, cap, "GET %s does not name Sonde", path);
    json_decref(j);
    sn_http_resp_free(&r);
    return yes;
}

/* After a reply that is not the CA API's: whether a Sonde server answers at ca's URL. If not,
 * says so ("URL: not a Sonde server (why; there is one at ROOT)") and returns false. */
static bool check_identity(struct sn_ca *ca)
{
    char path[1100], why[256], why_root[256];

    snprintf(path, sizeof(path), "%s/", ca->u.path);
    if (is_sonde(ca, path, why, sizeof(why)))
        return true;
    if (ca->u.path[0] && is_sonde(ca, "/", why_root, sizeof(why_root))) {
        bool v6 = strchr(ca->u.host, ':') != NULL;
        fprintf(stderr,
                "sonde: %s: not a Sonde server (%s; one answers at http://%s%s%s:%s, without "
                "the path %s)\n",
                ca->url, why, v6 ? "[" : "", ca->u.host, v6 ? "]" : "", ca->u.port, ca->u.path);
    } else {
        fprintf(stderr, "sonde: %s: not a Sonde server (%s)\n", ca->url, why);
    }
    return false;
}

/* The message of an error body: CA's {"error":{"message"}} or restify's {"message"}. Without
 * one, checks that the server is Sonde before saying what the status means. */
static void print_error(struct sn_ca *ca, const struct sn_http_resp *r, bool is_inst)
{
    json_t *j = r->len ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *msg = NULL;

    if (j) {
        msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "message"));
    }
    if (msg)
        fprintf(stderr, "sonde: %s\n", msg);
    else if (r->status == 401)
        fprintf(stderr, "sonde: unauthorized (give a token with --token or SONDE_TOKEN)\n");
    else if (!check_identity(ca))
        ; /* said */
    else if (r->status == 404 && is_inst)
        fprintf(stderr, "sonde: no such instrumentation\n");
    else if (r->status == 404)
        fprintf(stderr, "sonde: not found%s%s\n", ca->tenant ? ": no tenant " : "",
                ca->tenant ? ca->tenant : "");
    else
        fprintf(stderr, "sonde: the server answered HTTP %d\n", r->status);
    json_decref(j);
}

/* sn_ca_call(), streaming a 2xx body to `to` when not NULL. */
static int call(struct sn_ca *ca, const char *method, const char *rel, const char *body,
                bool is_inst, struct stream_to *to, struct sn_http_resp *r)
{
    char path[4096];
    int rc, n;

    if (ca->tenant)
        n = snprintf(path, sizeof(path), "%s/ca/customers/%s%s", ca->u.path, ca->tenant, rel);
    else
        n = snprintf(path, sizeof(path), "%s/ca%s", ca->u.path, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fprintf(stderr, "%s: request too long\n", ca->cmd);
        return SN_EXIT_FAILURE;
    }
    rc = request_to(ca, method, path, body, false, to, r);
    if (rc < 0 && to && to->failed)
        return SN_EXIT_FAILURE; /* the sink said why */
    if (rc < 0 && r->status) {
        fprintf(stderr, "sonde: the download from %s was cut short (%s)\n", ca->url,
                rc == -EPROTO ? "the connection closed before the end" : strerror(-rc));
        r->status = 0;
        return SN_EXIT_FAILURE;
    }
    if (rc < 0) {
        print_unreachable(ca, rc);
        return SN_EXIT_FAILURE;
    }
    if (r->status < 200 || r->status > 299) {
        print_error(ca, r, is_inst);
        sn_http_resp_free(r);
        return SN_EXIT_FAILURE;
    }
    return SN_EXIT_OK;
}

int sn_ca_call(struct sn_ca *ca, const char *method, const char *rel, const char *body,
               bool is_inst, struct sn_http_resp *r)
{
    return call(ca, method, rel, body, is_inst, NULL, r);
}

int sn_ca_call_stream(struct sn_ca *ca, const char *method, const char *rel, bool is_inst,
                      sn_http_sink_fn sink, void *arg)
{
    struct stream_to to = {sink, arg, false};
    struct sn_http_resp r;
    int rc = call(ca, method, rel, NULL, is_inst, &to, &r);

    if (rc == SN_EXIT_OK)
        sn_http_resp_free(&r);
    return rc;
}

int sn_ca_call_json(struct sn_ca *ca, const char *method, const char *rel, const char *body,
                    bool is_inst, json_t **out)
{
    struct sn_http_resp r;
    json_error_t jerr;
    int rc = sn_ca_call(ca, method, rel, body, is_inst, &r);

    *out = NULL;
    if (rc != SN_EXIT_OK)
        return rc;
    *out = json_loadb(r.body, r.len, 0, &jerr);
    sn_http_resp_free(&r);
    if (!*out) {
        if (check_identity(ca))
            fprintf(stderr, "sonde: the server's reply is not JSON: %s\n", jerr.text);
        return SN_EXIT_FAILURE;
    }
    return SN_EXIT_OK;
}

int sn_ca_inst_get(struct sn_ca *ca, const char *id, bool units, struct sn_ca_inst *in)
{
    char rel[64];
    const char *arity, *cs;
    json_t *desc, *f;
    size_t i;
    int rc;

    memset(in, 0, sizeof(*in));
    in->unit = sn_unit_of_ca(NULL, 0);
    snprintf(rel, sizeof(rel), "/instrumentations/%s", id);
    if ((rc = sn_ca_call_json(ca, "GET", rel, NULL, true, &in->props)) != SN_EXIT_OK)
        return rc;
    arity = json_string_value(json_object_get(in->props, "value-arity"));
    in->numeric = arity && strcmp(arity, "numeric-decomposition") == 0;
    setlocale(LC_CTYPE, "");
    cs = nl_langinfo(CODESET);
    in->unit.ascii = !cs || (strcmp(cs, "UTF-8") != 0 && strcmp(cs, "utf8") != 0);
    in->vunit = in->unit;
    if (!units)
        return SN_EXIT_OK;
    if ((rc = sn_ca_call_json(ca, "GET", "", NULL, false, &desc)) != SN_EXIT_OK)
        return rc;
    /* the metric's own values: CA gives those in bytes the type "size" */
    json_array_foreach(json_object_get(desc, "metrics"), i, f)
    {
        const char *mod = json_string_value(json_object_get(f, "module"));
        const char *stat = json_string_value(json_object_get(f, "stat"));
        const char *type = json_string_value(json_object_get(f, "type"));
        const char *imod = json_string_value(json_object_get(in->props, "module"));
        const char *istat = json_string_value(json_object_get(in->props, "stat"));
        if (mod && stat && imod && istat && strcmp(mod, imod) == 0 && strcmp(stat, istat) == 0 &&
            type && strcmp(type, "size") == 0)
            in->vunit.kind = SN_FMT_UNIT_SIZE;
    }
    json_array_foreach(json_object_get(in->props, "decomposition"), i, f)
    {
        const char *name = json_string_value(f);
        const char *type = json_string_value(json_object_get(
            json_object_get(json_object_get(desc, "fields"), name ? name : ""), "type"));
        json_t *ty = json_object_get(json_object_get(desc, "types"), type ? type : "");
        const char *ar = json_string_value(json_object_get(ty, "arity"));
        if (ar && strcmp(ar, "numeric") == 0) {
            bool ascii = in->unit.ascii;
            in->nfield = name;
            in->unit = sn_unit_of_ca(json_string_value(json_object_get(ty, "unit")),
                                     (int)json_integer_value(json_object_get(ty, "power")));
            in->unit.ascii = ascii;
        }
    }
    json_decref(desc);
    return SN_EXIT_OK;
}

void sn_ca_inst_free(struct sn_ca_inst *in)
{
    json_decref(in->props);
    in->props = NULL;
}

bool sn_ca_need_numeric(const char *id, const struct sn_ca_inst *in, const char *what)
{
    char dec[256];
    size_t i, n = 0;
    json_t *f;

    if (in->numeric)
        return true;
    dec[0] = '\0';
    json_array_foreach(json_object_get(in->props, "decomposition"), i, f)
    {
        int w = snprintf(dec + n, sizeof(dec) - n, "%s%s", n ? " and " : "",
                         json_string_value(f) ? json_string_value(f) : "?");
        if (w < 0 || (size_t)w >= sizeof(dec) - n)
            break;
        n += (size_t)w;
    }
    if (n)
        fprintf(stderr,
                "sonde: instrumentation %s has no numeric decomposition: %s need one (it is "
                "decomposed by %s)\n",
                id, what, dec);
    else
        fprintf(stderr,
                "sonde: instrumentation %s has no numeric decomposition: %s need one (it has no "
                "decomposition: its value is a scalar)\n",
                id, what);
    return false;
}

void sn_ca_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        puts(s);
        free(s);
    }
}

int sn_ca_query(char *q, size_t cap, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(q);
    int w = snprintf(q + n, cap - n, "%c%s=", n ? '&' : '?', name);

    if (w < 0 || (size_t)w >= cap - n)
        return -1;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (n + 4 > cap)
            return -1;
        if (isalnum(*p) || strchr("-_.~,", *p)) {
            q[n++] = (char)*p;
        } else {
            q[n++] = '%';
            q[n++] = hex[*p >> 4];
            q[n++] = hex[*p & 15];
        }
    }
    q[n] = '\0';
    return 0;
}

bool sn_ca_valid_id(const struct sn_ca *ca, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20 || strspn(s, "0123456789") != n) {
        fprintf(stderr, "%s: bad instrumentation id '%s' (want a number)\n", ca->cmd, s);
        return false;
    }
    return true;
}
