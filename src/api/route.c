/*
 * Routing, authorization and CA's transport rules (§1.1): every route exists under /ca
 * (operator scope) and /ca/customers/<tenant> (a tenant's); unknown paths are empty 404s;
 * OPTIONS is always 200 (CORS preflight); X-API-Version must read ca/A.B.C.
 *
 * Who may call: without a tenants file, loopback clients only, with no token. With one, the
 * operator's token opens every scope, a tenant's token its own; another tenant's scope is an
 * empty 404, as if it did not exist.
 *
 * Both are decided on a request's head alone: sn_api_admit() runs the same routing without
 * calling handlers, so that the server refuses a body it would not take before reading it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/assets.h"
#include "api/internal.h"
#include "serve/dash_store.h"
#include "serve/fleet.h"

static bool version_ok(const char *v)
{
    int dots = 0;
    if (strncmp(v, "ca/", 3) != 0)
        return false;
    for (const char *p = v + 3; *p; p++)
        dots += *p == '.';
    return dots == 2;
}

/* The bearer token of the request, or NULL. */
static const char *bearer(const struct sn_req *r)
{
    if (!r->auth || strncasecmp(r->auth, "Bearer ", 7) != 0)
        return NULL;
    return r->auth + 7;
}

enum access { ALLOW, DENY_401, DENY_403, HIDE_404 };

static enum access authorize(const struct sn_server *s, const struct sn_req *r, const char *scope)
{
    const char *tok = bearer(r);
    const struct sn_tenant *t;

    if (!s->tenants)
        return r->loopback ? ALLOW : DENY_403;
    if (!tok)
        return DENY_401;
    if (sn_token_eq(tok, s->tenants->operator_token))
        return !scope[0] || sn_tenants_find(s->tenants, scope) ? ALLOW : HIDE_404;
    if (!scope[0]) {
        for (size_t i = 0; i < s->tenants->n; i++)
            if (sn_token_eq(tok, s->tenants->t[i].token))
                return DENY_403;
        return DENY_401;
    }
    t = sn_tenants_find(s->tenants, scope);
    if (t && sn_token_eq(tok, t->token))
        return ALLOW;
    for (size_t i = 0; i < s->tenants->n; i++)
        if (sn_token_eq(tok, s->tenants->t[i].token))
            return HIDE_404; /* another tenant's token: this scope does not exist for it */
    return DENY_401;
}

/* Whether the client may call some scope: a loopback client without tenants, else one with
 * the operator's token or a tenant's. */
static bool known_client(const struct sn_server *s, const struct sn_req *r)
{
    const char *tok = bearer(r);

    if (!s->tenants)
        return r->loopback;
    if (!tok)
        return false;
    if (sn_token_eq(tok, s->tenants->operator_token))
        return true;
    for (size_t i = 0; i < s->tenants->n; i++)
        if (sn_token_eq(tok, s->tenants->t[i].token))
            return true;
    return false;
}

static bool parse_id(const char *seg, uint64_t *id)
{
    char *end;
    if (!seg || !*seg || *seg == '0' || strlen(seg) > 19)
        return false;
    for (const char *p = seg; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    *id = strtoull(seg, &end, 10);
    return true;
}

#define MAXSEG 10

/* ------------------------------------------------------------------------------------------
 * The route table: every endpoint of the server, in the three places routes live. A new family
 * of routes (OTLP's /v1/traces, Zipkin's /api/v2/...) is rows here, not another chain of
 * comparisons.
 */

enum family {
    ROOT,   /* "/": the server's own (its index, Prometheus' /metrics) */
    CA,     /* "/ca" (the operator's scope) and "/ca/customers/<tenant>" (a tenant's) */
    FACADE, /* "/<tenant>/analytics": CloudAPI's form of a tenant's scope (below) */
};

enum auth {
    AUTH_OPEN,     /* anyone (the handler decides what to show) */
    AUTH_OPERATOR, /* the operator's scope, whatever scope the path names */
    AUTH_SCOPE,    /* the scope the path names */
};

#define R_NO_HEAD   1u  /* GET only: HEAD is not answered (404) */
#define R_BASE_ONLY 2u  /* CA: at /ca only, not in a tenant's scope */
#define R_RAW_BODY  4u  /* the handler reads the body itself: no parameters are parsed from it */
#define R_DATA      8u  /* reads an instrumentation's data: in a fleet, an owner answers */
#define R_SPANS     16u /* a span route: served on --otlp-listen and --zipkin-listen too */
#define ZIPKIN_QUERIES                                                                             \
    "services|spans|remoteServices|traces|traceMany|dependencies|autocompleteKeys|"                \
    "autocompleteValues"

struct route {
    enum family family;
    const char *method; /* "GET" (HEAD too, unless R_NO_HEAD), "POST", "PUT", "DELETE" */
    /* The segments after the family's base, '/'-separated: a literal, alternatives "a|b" (the
     * segment is the handler's arg), ":id" (an instrumentation id, into c->id) or ":name" (any
     * segment, the handler's arg); "" is the base itself. */
    const char *pattern;
    enum auth auth;
    unsigned flags;
    size_t body_max; /* 0: SN_API_BODY_MAX */
    void (*fn)(struct sn_call *c, const char *arg);
};

static void root_index(struct sn_call *c, const char *arg);
static void docs(struct sn_call *c, const char *arg);
static void admin_status(struct sn_call *c, const char *arg);
static void facade_create(struct sn_call *c, const char *arg);
static void facade_action(struct sn_call *c, const char *arg);

/* Handlers that take no argument, or a fixed one. */
#define PLAIN(name, call)                                                                          \
    static void name(struct sn_call *c, const char *arg)                                           \
    {                                                                                              \
        (void)arg;                                                                                 \
        call;                                                                                      \
    }
PLAIN(prometheus, sn_api_prometheus(c))
PLAIN(describe, sn_api_describe(c))
PLAIN(legacy_metrics, sn_api_legacy_metrics(c))
PLAIN(legacy_types, sn_api_legacy_types(c))
PLAIN(transformations, sn_api_transformations(c))
PLAIN(ingest, sn_api_ingest(c, false))
PLAIN(import, sn_api_ingest(c, true))
PLAIN(inst_export, sn_api_export(c))
PLAIN(dash_list, sn_api_dash_list(c))
PLAIN(inst_list, sn_api_list(c))
PLAIN(inst_create, sn_api_create(c, 0))
PLAIN(inst_get, sn_api_get(c))
PLAIN(inst_put, sn_api_put(c))
PLAIN(inst_delete, sn_api_delete(c))
PLAIN(inst_clone, sn_api_create(c, c->id))
PLAIN(value_index, sn_api_value_index(c, false))
PLAIN(value_raw, sn_api_raw(c))
PLAIN(heatmap_index, sn_api_value_index(c, true))
PLAIN(otlp_ingest, sn_api_otlp_ingest(c))
PLAIN(zipkin_ingest, sn_api_zipkin_ingest(c))
PLAIN(otlp_get, sn_span_ingest_otlp_get(c->resp))
PLAIN(jaeger_sampling, sn_api_jaeger_sampling(c))
PLAIN(sampling_get, sn_api_sampling(c, false))
PLAIN(sampling_put, sn_api_sampling(c, true))
#undef PLAIN
/* The flight recorder's routes (api/recordings.c): the kind of route, and the path's name. */
#define RECORDER(name, what)                                                                       \
    static void name(struct sn_call *c, const char *arg)                                           \
    {                                                                                              \
        sn_api_recorder(c, what, arg);                                                             \
    }
RECORDER(rec_index, "index")
RECORDER(rec_create, "sessions")
RECORDER(rec_session, "session")
RECORDER(rec_snapshot, "snapshot")
RECORDER(rec_snapshots, "snapshots")
RECORDER(rec_archive, "archive")
RECORDER(rec_snapshot_index, "snapshot-index")
RECORDER(rec_snapshot_delete, "snapshot-delete")
RECORDER(rec_recordings, "recordings")
RECORDER(rec_recording, "recording")
RECORDER(rec_rec_archive, "recording-archive")
#undef RECORDER
#define TRIGGERS(name, what)                                                                       \
    static void name(struct sn_call *c, const char *arg)                                           \
    {                                                                                              \
        sn_api_triggers(c, what, arg);                                                             \
    }
TRIGGERS(trig_list, "list")
TRIGGERS(trig_create, "create")
TRIGGERS(trig_fired, "fired")
TRIGGERS(trig_one, "one")
#undef TRIGGERS
#define HM_CA     "instrumentations/:id/value/heatmap/image|details|average|percentile"
#define HM_FACADE "instrumentations/:id/value/heatmap/image|details"

static const struct route routes[] = {
    {ROOT, "GET", "", AUTH_OPEN, R_NO_HEAD, 0, root_index},
    {ROOT, "GET", "metrics", AUTH_OPERATOR, R_NO_HEAD, 0, prometheus},
    /* spans (api/trace.c): OTLP/HTTP and Zipkin v2, at Zipkin's /zipkin/ base path too */
    {ROOT, "POST", "v1/traces", AUTH_OPERATOR, R_RAW_BODY | R_SPANS, SN_TRACE_BODY_MAX,
     otlp_ingest},
    {ROOT, "POST", "api/v2/spans", AUTH_OPERATOR, R_RAW_BODY | R_SPANS, SN_TRACE_BODY_MAX,
     zipkin_ingest},
    {ROOT, "GET", "v1/traces", AUTH_OPERATOR, R_NO_HEAD | R_SPANS, 0, otlp_get},
    {ROOT, "GET", "api/v2/" ZIPKIN_QUERIES, AUTH_OPERATOR, R_SPANS, 0, sn_api_zipkin_query},
    {ROOT, "GET", "api/v2/trace/:name", AUTH_OPERATOR, R_SPANS, 0, sn_api_zipkin_trace},
    {ROOT, "GET", "api/sampling", AUTH_OPERATOR, R_SPANS, 0, jaeger_sampling},

    {CA, "GET", "docs", AUTH_OPEN, R_NO_HEAD | R_BASE_ONLY, 0, docs},
    {CA, "GET", "admin/status", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, admin_status},
    {CA, "GET", "", AUTH_SCOPE, 0, 0, describe},
    {CA, "GET", "metrics", AUTH_SCOPE, 0, 0, legacy_metrics},
    {CA, "GET", "types", AUTH_SCOPE, 0, 0, legacy_types},
    {CA, "GET", "transformations", AUTH_SCOPE, 0, 0, transformations},
    {CA, "POST", "ingest", AUTH_SCOPE, R_RAW_BODY, SN_INGEST_BODY_MAX, ingest},
    {CA, "POST", "import", AUTH_SCOPE, R_RAW_BODY, SN_INGEST_BODY_MAX, import},
    {CA, "GET", "sampling", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, sampling_get},
    {CA, "PUT", "sampling", AUTH_OPERATOR, R_RAW_BODY | R_BASE_ONLY, 65536, sampling_put},
    {CA, "GET", "traces/:name", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, sn_api_traces},
    /* the recorder's sessions and snapshots: a tenant's own, in its scope (api/recordings.c) */
    {CA, "GET", "recorder", AUTH_SCOPE, R_NO_HEAD, 0, rec_index},
    {CA, "POST", "recorder/sessions", AUTH_SCOPE, R_RAW_BODY, 65536, rec_create},
    {CA, "GET", "recorder/sessions/:name", AUTH_SCOPE, R_NO_HEAD, 0, rec_session},
    {CA, "DELETE", "recorder/sessions/:name", AUTH_SCOPE, 0, 0, rec_session},
    {CA, "POST", "recorder/sessions/:name/snapshot", AUTH_SCOPE, R_RAW_BODY, 0, rec_snapshot},
    {CA, "GET", "recorder/snapshots", AUTH_SCOPE, R_NO_HEAD, 0, rec_snapshots},
    {CA, "GET", "recorder/snapshots/:name/archive", AUTH_SCOPE, R_NO_HEAD, 0, rec_archive},
    {CA, "GET", "recorder/snapshots/:name", AUTH_SCOPE, R_NO_HEAD, 0, rec_snapshot_index},
    {CA, "DELETE", "recorder/snapshots/:name", AUTH_SCOPE, 0, 0, rec_snapshot_delete},
    {CA, "GET", "recorder/recordings", AUTH_SCOPE, R_NO_HEAD, 0, rec_recordings},
    {CA, "GET", "recorder/recordings/:name", AUTH_SCOPE, R_NO_HEAD, 0, rec_recording},
    {CA, "DELETE", "recorder/recordings/:name", AUTH_SCOPE, 0, 0, rec_recording},
    {CA, "GET", "recorder/recordings/:name/archive", AUTH_SCOPE, R_NO_HEAD, 0, rec_rec_archive},
    {CA, "GET", "recorder/triggers", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, trig_list},
    {CA, "POST", "recorder/triggers", AUTH_OPERATOR, R_RAW_BODY | R_BASE_ONLY, 65536, trig_create},
    {CA, "GET", "recorder/triggers/fired", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, trig_fired},
    {CA, "GET", "recorder/triggers/:name", AUTH_OPERATOR, R_NO_HEAD | R_BASE_ONLY, 0, trig_one},
    {CA, "DELETE", "recorder/triggers/:name", AUTH_OPERATOR, R_BASE_ONLY, 0, trig_one},
    {CA, "GET", "dashboards", AUTH_SCOPE, 0, 0, dash_list},
    {CA, "GET", "dashboards/:name", AUTH_SCOPE, 0, 0, sn_api_dash_get},
    {CA, "PUT", "dashboards/:name", AUTH_SCOPE, 0, SN_DASH_BODY_MAX, sn_api_dash_put},
    {CA, "DELETE", "dashboards/:name", AUTH_SCOPE, 0, 0, sn_api_dash_delete},
    {CA, "GET", "instrumentations", AUTH_SCOPE, 0, 0, inst_list},
    {CA, "POST", "instrumentations", AUTH_SCOPE, 0, 0, inst_create},
    {CA, "GET", "instrumentations/:id", AUTH_SCOPE, 0, 0, inst_get},
    {CA, "PUT", "instrumentations/:id", AUTH_SCOPE, 0, 0, inst_put},
    {CA, "DELETE", "instrumentations/:id", AUTH_SCOPE, 0, 0, inst_delete},
    {CA, "POST", "instrumentations/:id/clone", AUTH_SCOPE, 0, 0, inst_clone},
    {CA, "GET", "instrumentations/:id/export", AUTH_SCOPE, R_DATA, 0, inst_export},
    {CA, "GET", "instrumentations/:id/value", AUTH_SCOPE, 0, 0, value_index},
    {CA, "GET", "instrumentations/:id/value/raw", AUTH_SCOPE, R_DATA, 0, value_raw},
    {CA, "GET", "instrumentations/:id/value/heatmap", AUTH_SCOPE, 0, 0, heatmap_index},
    {CA, "GET", HM_CA, AUTH_SCOPE, R_DATA, 0, sn_api_heatmap},

    {FACADE, "GET", "", AUTH_SCOPE, 0, 0, describe},
    {FACADE, "GET", "instrumentations", AUTH_SCOPE, 0, 0, inst_list},
    {FACADE, "POST", "instrumentations", AUTH_SCOPE, 0, 0, facade_create},
    {FACADE, "GET", "instrumentations/:id", AUTH_SCOPE, 0, 0, inst_get},
    {FACADE, "DELETE", "instrumentations/:id", AUTH_SCOPE, 0, 0, inst_delete},
    {FACADE, "POST", "instrumentations/:id", AUTH_SCOPE, 0, 0, facade_action},
    {FACADE, "GET", "instrumentations/:id/value/raw", AUTH_SCOPE, R_DATA, 0, value_raw},
    {FACADE, "GET", HM_FACADE, AUTH_SCOPE, R_DATA, 0, sn_api_heatmap},
};

/* Whether segment seg is one of the '|'-separated words of alt[0..len). */
static bool one_of(const char *alt, size_t len, const char *seg)
{
    size_t sl = strlen(seg);
    for (const char *p = alt, *end = alt + len; p < end;) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        size_t wl = (size_t)((bar ? bar : end) - p);
        if (wl == sl && memcmp(p, seg, sl) == 0)
            return true;
        p += wl + 1;
    }
    return false;
}

/* Whether seg[0..n) matches r's pattern; sets *id and *arg from its variable segments. */
static bool matches(const struct route *r, char **seg, int n, uint64_t *id, const char **arg)
{
    const char *p = r->pattern;
    int i = 0;

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (i == n)
            return false;
        if (len == 3 && memcmp(p, ":id", 3) == 0) {
            if (!parse_id(seg[i], id))
                return false;
        } else if (len == 5 && memcmp(p, ":name", 5) == 0) {
            *arg = seg[i];
        } else if (!one_of(p, len, seg[i])) {
            return false;
        } else if (memchr(p, '|', len)) {
            *arg = seg[i];
        }
        i++;
        p += len + (slash != NULL);
    }
    return i == n;
}

/* The route of family fam for method and seg[0..n) (in a tenant's scope when tenant), or NULL;
 * *id and *arg receive its variable segments. */
static const struct route *find_route(enum family fam, bool tenant, const char *method, char **seg,
                                      int n, uint64_t *id, const char **arg)
{
    bool head = strcmp(method, "HEAD") == 0;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (r->family != fam || (tenant && (r->flags & R_BASE_ONLY)))
            continue;
        if (strcmp(r->method, method) != 0 &&
            !(head && strcmp(r->method, "GET") == 0 && !(r->flags & R_NO_HEAD)))
            continue;
        if (matches(r, seg, n, id, arg))
            return r;
    }
    return NULL;
}

/* Where a path's segments live: the family, its scope ("" or the tenant), the base of its URIs,
 * and the index of the first segment after the base. False when no family has it (404). */
static bool locate(char **seg, int n, enum family *fam, const char **scope, char *base,
                   size_t baselen, int *first)
{
    *scope = "";
    if (n >= 2 && strcmp(seg[1], "analytics") == 0 && strlen(seg[0]) <= SN_TENANT_NAME_MAX) {
        *fam = FACADE;
        *scope = seg[0];
        *first = 2;
        snprintf(base, baselen, "/%s/analytics", seg[0]);
        return true;
    }
    if (n == 0 || strcmp(seg[0], "ca") != 0) {
        *fam = ROOT;
        /* Zipkin's UI under its base path: /zipkin/api/v2/... is /api/v2/... */
        *first = n >= 2 && strcmp(seg[0], "zipkin") == 0 && strcmp(seg[1], "api") == 0;
        return true;
    }
    *fam = CA;
    if (n >= 2 && strcmp(seg[1], "customers") == 0) {
        if (n == 2 || strlen(seg[2]) > SN_TENANT_NAME_MAX)
            return false;
        *scope = seg[2];
        *first = 3;
        snprintf(base, baselen, "/ca/customers/%s", seg[2]);
        return true;
    }
    *first = 1;
    snprintf(base, baselen, "/ca");
    return true;
}

/* Splits path (copied into buf) into at most MAXSEG segments. Returns their number, or -1
 * when the path is too long or has more. */
static int split(const char *path, char *buf, size_t len, char **seg)
{
    int n = 0;

    if (strlen(path) >= len)
        return -1;
    strcpy(buf, path);
    for (char *save = NULL, *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (n == MAXSEG)
            return -1;
        seg[n++] = p;
    }
    return n;
}

size_t sn_api_limit(void *ctx, const char *method, const char *path)
{
    char buf[2048], *seg[MAXSEG + 1], base[128];
    const char *scope, *arg = NULL;
    enum family fam;
    uint64_t id;
    int first, n = split(path, buf, sizeof(buf), seg);
    const struct route *r = NULL;

    (void)ctx;
    if (n >= 0 && locate(seg, n, &fam, &scope, base, sizeof(base), &first))
        r = find_route(fam, scope[0] != '\0', method, seg + first, n - first, &id, &arg);
    return r && r->body_max ? r->body_max : SN_API_BODY_MAX;
}

/* The body into parameters: JSON when it starts like JSON or is declared so (curl -d sends
 * JSON declared as a form), else a url-encoded form. Once per request (a parked one comes
 * back). False after answering 409. */
static bool parse_body(struct sn_call *c)
{
    struct sn_req *r = c->req;
    const char *ct = r->ctype ? r->ctype : "";
    size_t i = 0;
    json_error_t jerr;

    if (r->body_parsed || !r->body_len)
        return true;
    r->body_parsed = true;
    while (i < r->body_len &&
           (r->body[i] == ' ' || r->body[i] == '\n' || r->body[i] == '\r' || r->body[i] == '\t'))
        i++;
    if (strncasecmp(ct, "application/json", 16) != 0 &&
        !(i < r->body_len && (r->body[i] == '{' || r->body[i] == '['))) {
        if (sn_req_parse_form(r, (const char *)r->body, r->body_len, true) < 0) {
            CA_INVAL(c, "failed to parse form body");
            return false;
        }
        return true;
    }
    r->json = json_loadb((const char *)r->body, r->body_len, JSON_DECODE_ANY, &jerr);
    if (!r->json) {
        CA_INVAL(c, "failed to parse JSON: %s", jerr.text);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * The CloudAPI facade (§1.6): /LOGIN/analytics/... is the tenant LOGIN's scope, with
 * CloudAPI's differences: create and clone answer 200, property objects have no "uri", and
 * errors are restify's {"code","message"} (404 ResourceNotFound, 409 InvalidArgument or
 * MissingParameter, 401 InvalidCredentials, 403 NotAuthorized, 400 BadRequest, 413
 * RequestTooLarge).
 */

/* POST .../instrumentations, with ?clone=ID to clone one. */
static void facade_create(struct sn_call *c, const char *arg)
{
    const char *clone = sn_req_param(c->req, "clone");
    uint64_t src;

    (void)arg;
    if (clone && !parse_id(clone, &src)) {
        sn_resp_empty(c->resp, 404);
        return;
    }
    c->id = clone ? src : 0;
    sn_api_create(c, c->id);
}

/* POST .../instrumentations/ID?action=clone (admitted on the head alone: the parameters may
 * come in the body, which is read only then). */
static void facade_action(struct sn_call *c, const char *arg)
{
    const char *action = sn_req_param(c->req, "action");

    (void)arg;
    if (action && strcmp(action, "clone") == 0)
        sn_api_create(c, c->id);
    else
        sn_resp_empty(c->resp, 404);
}

/* CloudAPI's error code for a status (its docs' "Error Responses"). */
static const char *facade_code(int status, const char *msg)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "InvalidCredentials";
    case 403:
        return "NotAuthorized";
    case 404:
        return "ResourceNotFound";
    case 409:
        return msg && strncmp(msg, "missing value", 13) == 0 ? "MissingParameter"
                                                             : "InvalidArgument";
    case 413:
        return "RequestTooLarge";
    default:
        return status >= 400 && status < 500 ? "BadRequest" : "InternalError";
    }
}

/* Rewrites a CA reply into CloudAPI's form. */
static void facade_reply(struct sn_resp *resp)
{
    json_t *j = NULL, *err;

    if (resp->park_until_ms > 0 && resp->status == 0)
        return;
    if (resp->status == 404) {
        sn_resp_json(
            resp, 404,
            json_pack("{s:s,s:s}", "code", "ResourceNotFound", "message", "no such resource"));
        return;
    }
    if (resp->ctype && strcmp(resp->ctype, "application/json") == 0 && resp->body)
        j = json_loadb((const char *)resp->body, resp->len, JSON_DECODE_ANY, NULL);
    if (!j)
        return;
    if ((err = json_object_get(j, "error"))) {
        const char *msg = json_string_value(json_object_get(err, "message"));
        const char *code = facade_code(resp->status, msg);
        int status = resp->status;
        sn_resp_json(resp, status, json_pack("{s:s,s:s}", "code", code, "message", msg ? msg : ""));
        json_decref(j);
        return;
    }
    if (json_is_object(j) && json_object_get(j, "uris"))
        json_object_del(j, "uri");
    for (size_t i = 0; json_is_array(j) && i < json_array_size(j); i++)
        if (json_object_get(json_array_get(j, i), "uris"))
            json_object_del(json_array_get(j, i), "uri");
    sn_resp_json(resp, resp->status == 201 ? 200 : resp->status, j);
}

/* GET /ca/admin/status (operator): what this server is doing. */
static void admin_status(struct sn_call *c, const char *arg)
{
    struct sn_server *s = c->s;
    json_t *insts = json_array();
    int64_t now = sn_now();

    size_t n = 0;
    struct sn_instn **list = sn_server_list(s, NULL, &n); /* copies */
    for (size_t i = 0; i < n; i++) {
        struct sn_instn *in = list[i];
        json_array_append_new(
            insts, json_pack("{s:s,s:s,s:b,s:I,s:I}", "key", in->key, "metric", in->metric->stat,
                             "local", sn_server_local(s, in->key), "nsources",
                             (json_int_t)sn_agg_sources_since(s->agg, in->key,
                                                              now - (int64_t)in->retention),
                             "idle", (json_int_t)(now - atomic_load(&in->last_access))));
        sn_instn_free(in);
    }
    free(list);
    (void)arg;
    json_t *store = json_null();
    if (s->store) {
        struct sn_store_stats ss;
        char tiers[160];
        sn_store_stats(s->store, &ss);
        sn_tiers_fmt(&sn_store_options(s->store)->tiers, tiers, sizeof(tiers));
        store = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:s?,s:I,s:I,s:I,s:I,s:I}", "tiers", tiers,
                          "commits", (json_int_t)ss.commits, "records_written",
                          (json_int_t)ss.records_written, "rollups_written",
                          (json_int_t)ss.rollups_written, "bytes_written",
                          (json_int_t)ss.bytes_written, "write_errors", (json_int_t)ss.write_errors,
                          "last_error", ss.last_error ? strerror(-ss.last_error) : NULL,
                          "records_dropped", (json_int_t)ss.records_dropped, "records_damaged",
                          (json_int_t)ss.records_damaged, "used_bytes", (json_int_t)ss.used_bytes,
                          "map_bytes", (json_int_t)ss.map_size, "pending", (json_int_t)ss.pending);
    }
    json_t *fleet = s->fleet ? sn_fleet_state(s->fleet) : json_null();
    sn_resp_json(c->resp, 200,
                 json_pack("{s:s,s:I,s:s,s:b,s:b,s:I,s:o,s:o,s:o}", "host", s->host, "uptime",
                           (json_int_t)(now - s->started), "datadir", s->datadir, "agent",
                           s->collector != NULL, "tenants", s->tenants != NULL, "ninstrumentations",
                           (json_int_t)n, "store", store, "fleet", fleet, "instrumentations",
                           insts));
}

static void deny(struct sn_resp *resp, enum access a)
{
    if (a == HIDE_404) {
        sn_resp_empty(resp, 404);
    } else if (a == DENY_401) {
        sn_resp_error(resp, 401, "ECA_UNAUTHORIZED",
                      "a valid token is required (Authorization: Bearer <token>)");
    } else {
        sn_resp_error(resp, 403, "ECA_FORBIDDEN", "this client may not use this scope");
    }
}

/* GET /: what this server is (its host's name only to a client that may call some scope). */
static void root_index(struct sn_call *c, const char *arg)
{
    json_t *self = json_pack("{s:s,s:s,s:s}", "name", "sonde", "api", "/ca", "metrics", "/metrics");

    (void)arg;
    if (self && known_client(c->s, c->req))
        json_object_set_new(self, "host", json_string(c->s->host));
    sn_resp_json(c->resp, 200, self);
}

/* GET /ca/docs: this API's document, compiled into the binary. */
static void docs(struct sn_call *c, const char *arg)
{
    const struct sn_asset *doc = sn_asset_find("docs/api.md");
    unsigned char *b = doc ? malloc(doc->len) : NULL;

    (void)arg;
    if (!b) {
        sn_resp_empty(c->resp, 500);
        return;
    }
    memcpy(b, doc->data, doc->len);
    sn_resp_bytes(c->resp, 200, "text/markdown; charset=utf-8", b, doc->len);
}

/*
 * One request: answered in resp. Admitting (the head only, from sn_api_admit), it stops where
 * a handler would be called: resp then holds a refusal (a bad version, 401, 403, 404) or
 * nothing (the request may send its body), and the route found is returned (for its body
 * limit). Every refusal depends on the head only, so that admitting and handling agree.
 *
 * Order: OPTIONS (CORS preflight), the UI's files, X-API-Version, the route; then who may call
 * (a path under a scope that matches no route is authorized first, so that a client without
 * the right learns nothing from a 404), the tenants' existence, the body's parameters, and the
 * handler.
 */
static const struct route *handle(struct sn_server *s, struct sn_req *req, struct sn_resp *resp,
                                  bool admit, bool spans_only)
{
    struct sn_call c = {.s = s, .req = req, .resp = resp, .scope = ""};
    char path[2048], *seg[MAXSEG + 1];
    const char *arg = NULL;
    const struct route *r = NULL;
    enum family fam;
    int n, first;

    if (spans_only && strcmp(req->method, "OPTIONS") == 0) { /* CORS preflight of span paths */
        static const char *const span_paths[] = {"/v1/traces", "/api/v2/", "/zipkin/api/v2/",
                                                 "/api/sampling"};
        bool ok = false;
        for (size_t i = 0; i < sizeof(span_paths) / sizeof(span_paths[0]) && !ok; i++)
            ok = strncmp(req->path, span_paths[i], strlen(span_paths[i])) == 0;
        sn_resp_empty(resp, ok ? 200 : 404);
        return NULL;
    }
    if (strcmp(req->method, "OPTIONS") == 0) {
        sn_resp_empty(resp, 200);
        return NULL;
    }
    if (spans_only) { /* --otlp-listen, --zipkin-listen: the span routes alone */
        n = split(req->path, path, sizeof(path), seg);
        if (n < 0 || !locate(seg, n, &fam, &c.scope, c.base, sizeof(c.base), &first) ||
            fam != ROOT ||
            !(r = find_route(fam, false, req->method, seg + first, n - first, &c.id, &arg)) ||
            !(r->flags & R_SPANS)) {
            sn_resp_empty(resp, 404);
            return NULL;
        }
    }
    if (admit && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
        (strcmp(req->path, "/") == 0 || strncmp(req->path, "/ui/", 4) == 0))
        return NULL; /* the UI's: they read no body */
    if (!admit && sn_api_ui(c.s, req, resp))
        return NULL;
    if (req->api_version && !version_ok(req->api_version)) {
        CA_INVAL(&c, "invalid API version string: %.200s", req->api_version);
        return NULL;
    }
    n = split(req->path, path, sizeof(path), seg);
    if (n < 0 || !locate(seg, n, &fam, &c.scope, c.base, sizeof(c.base), &first)) {
        sn_resp_empty(resp, 404);
        return NULL;
    }
    r = find_route(fam, c.scope[0] != '\0', req->method, seg + first, n - first, &c.id, &arg);
    if (!r && fam == ROOT) {
        sn_resp_empty(resp, 404);
        return NULL;
    }
    enum auth au = r ? r->auth : AUTH_SCOPE;
    enum access a = au == AUTH_OPEN ? ALLOW : authorize(s, req, au == AUTH_OPERATOR ? "" : c.scope);
    if (a != ALLOW)
        deny(resp, a);
    else if (au == AUTH_SCOPE && c.scope[0] && !s->tenants)
        sn_resp_empty(resp, 404); /* no tenants configured: no tenants' scopes */
    else if (!admit && au == AUTH_SCOPE && !(r && (r->flags & R_RAW_BODY)) && !parse_body(&c))
        ; /* answered */
    else if (!r)
        sn_resp_empty(resp, 404);
    else if (!admit && !((r->flags & R_DATA) && sn_api_proxy(&c)))
        r->fn(&c, arg);
    if (fam == FACADE && (!admit || resp->status))
        facade_reply(resp);
    return r;
}

void sn_api_handle(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    handle(ctx, req, resp, false, false);
}

size_t sn_api_admit(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    const struct route *r = handle(ctx, req, resp, true, false);
    return resp->status ? 0 : r && r->body_max ? r->body_max : SN_API_BODY_MAX;
}

void sn_api_handle_spans(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    handle(ctx, req, resp, false, true);
}

size_t sn_api_admit_spans(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    const struct route *r = handle(ctx, req, resp, true, true);
    return resp->status ? 0 : r && r->body_max ? r->body_max : SN_API_BODY_MAX;
}
