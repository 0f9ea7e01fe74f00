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
#include "serve/dashboards.h"

size_t sn_api_limit(void *ctx, const char *method, const char *path)
{
    size_t n = strlen(path);
    (void)ctx;
    while (n > 1 && path[n - 1] == '/')
        n--;
    if (strcmp(method, "POST") == 0 && n >= 7 && strncmp(path + n - 7, "/ingest", 7) == 0)
        return SN_INGEST_BODY_MAX;
    if (strcmp(method, "PUT") == 0 && strstr(path, "/dashboards/"))
        return SN_DASH_BODY_MAX;
    return SN_API_BODY_MAX;
}

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

/*
 * A route's handler, unless admitting: then finding the route is the whole answer (the
 * request may go on to send its body). Only in dispatch() and facade_dispatch(), whose
 * admit parameter it reads.
 */
#define ROUTE(call)                                                                                \
    do {                                                                                           \
        if (!admit)                                                                                \
            call;                                                                                  \
        return;                                                                                    \
    } while (0)

/* Dispatches the segments after the scope's base (admit: see ROUTE). */
static void dispatch(struct sn_call *c, char **seg, int n, bool admit)
{
    const char *m = c->req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    bool post = strcmp(m, "POST") == 0;

    if (n == 0) {
        if (get)
            ROUTE(sn_api_describe(c));
    } else if (n == 1 && get && strcmp(seg[0], "metrics") == 0) {
        ROUTE(sn_api_legacy_metrics(c));
    } else if (n == 1 && get && strcmp(seg[0], "types") == 0) {
        ROUTE(sn_api_legacy_types(c));
    } else if (n == 1 && get && strcmp(seg[0], "transformations") == 0) {
        ROUTE(sn_api_transformations(c));
    } else if (n == 1 && post && strcmp(seg[0], "ingest") == 0) {
        ROUTE(sn_api_ingest(c));
    } else if (n >= 1 && n <= 2 && strcmp(seg[0], "dashboards") == 0) {
        if (n == 1 && get)
            ROUTE(sn_api_dash_list(c));
        if (n == 2 && get)
            ROUTE(sn_api_dash_get(c, seg[1]));
        if (n == 2 && strcmp(m, "PUT") == 0)
            ROUTE(sn_api_dash_put(c, seg[1]));
        if (n == 2 && strcmp(m, "DELETE") == 0)
            ROUTE(sn_api_dash_delete(c, seg[1]));
    } else if (n >= 1 && strcmp(seg[0], "instrumentations") == 0) {
        if (n == 1 && get)
            ROUTE(sn_api_list(c));
        if (n == 1 && post)
            ROUTE(sn_api_create(c, 0));
        if (n >= 2 && parse_id(seg[1], &c->id)) {
            if (n == 2 && get)
                ROUTE(sn_api_get(c));
            if (n == 2 && strcmp(m, "PUT") == 0)
                ROUTE(sn_api_put(c));
            if (n == 2 && strcmp(m, "DELETE") == 0)
                ROUTE(sn_api_delete(c));
            if (n == 3 && post && strcmp(seg[2], "clone") == 0)
                ROUTE(sn_api_create(c, c->id));
            if (n >= 3 && get && strcmp(seg[2], "value") == 0) {
                if (n == 3)
                    ROUTE(sn_api_value_index(c, false));
                if (n == 4 && strcmp(seg[3], "raw") == 0)
                    ROUTE(sn_api_raw(c));
                if (n == 4 && strcmp(seg[3], "heatmap") == 0)
                    ROUTE(sn_api_value_index(c, true));
                if (n == 5 && strcmp(seg[3], "heatmap") == 0 &&
                    (strcmp(seg[4], "image") == 0 || strcmp(seg[4], "details") == 0 ||
                     strcmp(seg[4], "average") == 0 || strcmp(seg[4], "percentile") == 0))
                    ROUTE(sn_api_heatmap(c, seg[4]));
            }
        }
    }
    sn_resp_empty(c->resp, 404);
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

static void facade_dispatch(struct sn_call *c, char **seg, int n, bool admit)
{
    const char *m = c->req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    bool post = strcmp(m, "POST") == 0;
    const char *clone = sn_req_param(c->req, "clone");
    const char *action = sn_req_param(c->req, "action");
    uint64_t src;

    if (n == 0 && get)
        ROUTE(sn_api_describe(c));
    if (n >= 1 && strcmp(seg[0], "instrumentations") == 0) {
        if (n == 1 && get)
            ROUTE(sn_api_list(c));
        if (n == 1 && post) {
            if (clone && !parse_id(clone, &src)) {
                sn_resp_empty(c->resp, 404);
                return;
            }
            c->id = clone ? src : 0;
            ROUTE(sn_api_create(c, c->id));
        }
        if (n >= 2 && parse_id(seg[1], &c->id)) {
            if (n == 2 && get)
                ROUTE(sn_api_get(c));
            if (n == 2 && strcmp(m, "DELETE") == 0)
                ROUTE(sn_api_delete(c));
            /* admitting, the parameters (which may come in the body) are not known yet */
            if (n == 2 && post && (admit || (action && strcmp(action, "clone") == 0)))
                ROUTE(sn_api_create(c, c->id));
            if (n == 4 && get && strcmp(seg[2], "value") == 0 && strcmp(seg[3], "raw") == 0)
                ROUTE(sn_api_raw(c));
            if (n == 5 && get && strcmp(seg[2], "value") == 0 && strcmp(seg[3], "heatmap") == 0 &&
                (strcmp(seg[4], "image") == 0 || strcmp(seg[4], "details") == 0))
                ROUTE(sn_api_heatmap(c, seg[4]));
        }
    }
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
static void admin_status(struct sn_call *c)
{
    struct sn_server *s = c->s;
    json_t *insts = json_array();
    int64_t now = sn_now();

    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        json_array_append_new(
            insts, json_pack("{s:s,s:s,s:b,s:I,s:I}", "key", in->key, "metric", in->metric->stat,
                             "local", sn_server_local(s, in->key), "nsources",
                             (json_int_t)sn_agg_sources_since(s->agg, in->key,
                                                              now - (int64_t)in->retention),
                             "idle", (json_int_t)(now - atomic_load(&in->last_access))));
    }
    size_t n = s->n;
    pthread_rwlock_unlock(&s->lock);
    sn_resp_json(c->resp, 200,
                 json_pack("{s:s,s:I,s:s,s:b,s:b,s:I,s:o}", "host", s->host, "uptime",
                           (json_int_t)(now - s->started), "datadir", s->datadir, "agent",
                           s->collector != NULL, "tenants", s->tenants != NULL, "ninstrumentations",
                           (json_int_t)n, "instrumentations", insts));
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

/*
 * One request: answered in resp. Admitting (the head only, from sn_api_admit), it stops where
 * a handler would be called: resp then holds a refusal (a bad version, 401, 403, 404) or
 * nothing (the request may send its body). Every refusal depends on the head only, so that
 * admitting and handling agree.
 */
static void handle(struct sn_server *s, struct sn_req *req, struct sn_resp *resp, bool admit)
{
    struct sn_call c = {.s = s, .req = req, .resp = resp, .scope = ""};
    char path[2048], *seg[MAXSEG + 1];
    bool get = strcmp(req->method, "GET") == 0;
    int n = 0;

    if (strcmp(req->method, "OPTIONS") == 0) {
        sn_resp_empty(resp, 200);
        return;
    }
    if (admit && (get || strcmp(req->method, "HEAD") == 0) &&
        (strcmp(req->path, "/") == 0 || strncmp(req->path, "/ui/", 4) == 0))
        return; /* the UI's: they read no body */
    if (!admit && sn_api_ui(c.s, req, resp))
        return;
    if (req->api_version && !version_ok(req->api_version)) {
        CA_INVAL(&c, "invalid API version string: %.200s", req->api_version);
        return;
    }
    if (strlen(req->path) >= sizeof(path)) {
        sn_resp_empty(resp, 404);
        return;
    }
    strcpy(path, req->path);
    for (char *save = NULL, *p = strtok_r(path, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (n == MAXSEG) {
            sn_resp_empty(resp, 404);
            return;
        }
        seg[n++] = p;
    }
    if (n == 1 && strcmp(seg[0], "metrics") == 0 && get) {
        enum access a = authorize(c.s, req, "");
        if (a != ALLOW)
            return deny(resp, a);
        if (!admit)
            sn_api_prometheus(&c);
        return;
    }
    if (n == 0 && get) {
        if (admit)
            return;
        json_t *self =
            json_pack("{s:s,s:s,s:s}", "name", "sonde", "api", "/ca", "metrics", "/metrics");
        if (self && known_client(c.s, req)) /* the host's name only to who may call a scope */
            json_object_set_new(self, "host", json_string(c.s->host));
        sn_resp_json(resp, 200, self);
        return;
    }
    if (n >= 2 && strcmp(seg[1], "analytics") == 0 && strlen(seg[0]) <= SN_TENANT_NAME_MAX) {
        c.scope = seg[0];
        snprintf(c.base, sizeof(c.base), "/%s/analytics", seg[0]);
        enum access a = authorize(c.s, req, c.scope);
        if (a != ALLOW)
            deny(resp, a);
        else if (!c.s->tenants)
            sn_resp_empty(resp, 404);
        else if (admit || parse_body(&c))
            facade_dispatch(&c, seg + 2, n - 2, admit);
        if (!admit || resp->status)
            facade_reply(resp);
        return;
    }
    if (n == 0 || strcmp(seg[0], "ca") != 0) {
        sn_resp_empty(resp, 404);
        return;
    }
    if (n == 2 && strcmp(seg[1], "docs") == 0 && get) {
        if (admit)
            return;
        const struct sn_asset *doc = sn_asset_find("docs/api.md");
        unsigned char *b = doc ? malloc(doc->len) : NULL;
        if (!b) {
            sn_resp_empty(resp, 500);
            return;
        }
        memcpy(b, doc->data, doc->len);
        sn_resp_bytes(resp, 200, "text/markdown; charset=utf-8", b, doc->len);
        return;
    }
    if (n == 3 && strcmp(seg[1], "admin") == 0 && strcmp(seg[2], "status") == 0 && get) {
        enum access a = authorize(c.s, req, "");
        if (a != ALLOW)
            return deny(resp, a);
        if (!admit)
            admin_status(&c);
        return;
    }
    int first = 1;
    if (n >= 3 && strcmp(seg[1], "customers") == 0) {
        if (strlen(seg[2]) > SN_TENANT_NAME_MAX) {
            sn_resp_empty(resp, 404);
            return;
        }
        c.scope = seg[2];
        first = 3;
        snprintf(c.base, sizeof(c.base), "/ca/customers/%s", seg[2]);
    } else if (n == 2 && strcmp(seg[1], "customers") == 0) {
        sn_resp_empty(resp, 404);
        return;
    } else {
        snprintf(c.base, sizeof(c.base), "/ca");
    }
    enum access a = authorize(c.s, req, c.scope);
    if (a != ALLOW)
        return deny(resp, a);
    if (c.scope[0] && !c.s->tenants) {
        sn_resp_empty(resp, 404); /* no tenants configured: no customer scopes */
        return;
    }
    if (!admit && !(n - first == 1 && strcmp(seg[first], "ingest") == 0) && !parse_body(&c))
        return;
    dispatch(&c, seg + first, n - first, admit);
}

void sn_api_handle(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    handle(ctx, req, resp, false);
}

size_t sn_api_admit(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    handle(ctx, req, resp, true);
    return resp->status ? 0 : sn_api_limit(ctx, req->method, req->path);
}
