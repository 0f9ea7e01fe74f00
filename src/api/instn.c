/*
 * Instrumentations (§1.4): list, create, clone, get, change (PUT) and delete, with CA's
 * defaults, validation order and messages, and the property object in CA's field order.
 * Properties come from a JSON body if there is one, else from form or query fields.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/instn_def.h"
#include "api/internal.h"
#include "serve/transform.h"
#include "core/log.h"

struct sn_instn *sn_api_instn(struct sn_call *c)
{
    struct sn_instn *in = sn_server_get(c->s, c->scope, c->id, true);
    if (!in)
        sn_resp_empty(c->resp, 404);
    return in;
}

json_t *sn_api_props(struct sn_call *c, const struct sn_instn *in)
{
    char uri[256];
    int64_t now = sn_now();
    uint32_t nsrc = sn_agg_sources_since(c->s->agg, in->key, now - (int64_t)in->retention);
    json_t *uris = json_array(), *o;

    snprintf(uri, sizeof(uri), "%s/instrumentations/%" PRIu64, c->base, in->id);
    if (in->arity == SN_ARITY_NUMERIC) {
        char u[320];
        snprintf(u, sizeof(u), "%s/value/heatmap/image", uri);
        json_array_append_new(uris, json_pack("{s:s,s:s}", "uri", u, "name", "value_heatmap"));
        snprintf(u, sizeof(u), "%s/value/heatmap/details", uri);
        json_array_append_new(uris, json_pack("{s:s,s:s}", "uri", u, "name", "details_heatmap"));
    }
    {
        char u[320];
        snprintf(u, sizeof(u), "%s/value/raw", uri);
        json_array_append_new(uris, json_pack("{s:s,s:s}", "uri", u, "name", "value_raw"));
    }
    o = json_pack(
        "{s:s,s:s,s:O,s:O,s:I,s:s,s:b,s:I,s:I,s:{},s:I,s:I,s:b,s:I,s:s,s:s,s:s,s:o}", "module",
        in->metric->module, "stat", in->metric->stat, "predicate", in->predicate, "decomposition",
        in->decomposition, "value-dimension", (json_int_t)(1 + json_array_size(in->decomposition)),
        "value-arity", sn_arity_name(in->arity), "enabled", 1, "retention-time",
        (json_int_t)in->retention, "idle-max", (json_int_t)in->idle_max, "transformations",
        "nsources", (json_int_t)nsrc, "granularity", (json_int_t)in->granularity, "persist-data",
        in->persist, "crtime", (json_int_t)in->crtime_ms, "value-scope",
        in->metric->point ? "point" : "interval", "uri", uri, "id", "", "uris", uris);
    if (o) {
        char id[24];
        snprintf(id, sizeof(id), "%" PRIu64, in->id);
        json_object_set_new(o, "id", json_string(id));
        json_t *xf = c->s->xforms ? sn_xforms_describe(c->s->xforms) : json_object();
        const char *name;
        json_t *def, *tmp;
        json_object_foreach_safe(xf, tmp, name, def)
        {
            if (!in->keyf || !sn_xform_applies(c->s->xforms, name, in->keyf->def.name))
                json_object_del(xf, name);
        }
        json_object_set_new(o, "transformations", xf);
        size_t nwhy = 0; /* Sonde: why a source (this host's agent) does not run it */
        char **why = sn_agg_not_running(c->s->agg, in->key, &nwhy);
        if (nwhy) {
            json_t *w = json_array();
            for (size_t i = 0; i < nwhy; i++)
                json_array_append_new(w, json_string(why[i]));
            json_object_set_new(o, "warnings", w);
        }
        sn_agg_strings_free(why, nwhy);
    }
    return o;
}

void sn_api_list(struct sn_call *c)
{
    json_t *arr = json_array();
    const char *all = sn_req_param(c->req, "all");
    bool every = !c->scope[0] && all && strcmp(all, "true") == 0;

    size_t n;
    struct sn_instn **v = sn_server_list(c->s, every ? NULL : c->scope, &n);

    if (!v) {
        json_decref(arr);
        sn_resp_empty(c->resp, 500);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct sn_instn *in = v[i];
        struct sn_call ic = *c;
        if (in->scope[0])
            snprintf(ic.base, sizeof(ic.base), "/ca/customers/%s", in->scope);
        else
            snprintf(ic.base, sizeof(ic.base), "/ca");
        json_array_append_new(arr, sn_api_props(&ic, in));
        sn_instn_free(in);
    }
    free(v);
    sn_resp_json(c->resp, 200, arr);
}

/* The properties of the request: its JSON body, or its form and query fields as JSON
 * strings. Returns a new reference, or NULL after answering 409. */
static json_t *request_props(struct sn_call *c)
{
    json_t *o;

    if (c->req->body_len && !c->req->json && c->req->ctype &&
        strncmp(c->req->ctype, "application/json", 16) == 0) {
        CA_INVAL(c, "failed to parse JSON: not valid JSON");
        return NULL;
    }
    if (c->req->json) {
        if (!json_is_object(c->req->json)) {
            CA_INVAL(c, "failed to parse JSON: instrumentation properties must be an object");
            return NULL;
        }
        return json_incref(c->req->json);
    }
    o = json_object();
    for (size_t i = 0; i < c->req->nparams; i++) {
        const char *name = c->req->params[i].name;
        if (strcmp(name, "decomposition") == 0) { /* repeated or comma-separated */
            json_t *d = json_object_get(o, "decomposition");
            if (!json_is_array(d)) {
                d = json_array();
                json_object_set_new(o, "decomposition", d);
            }
            char *v = strdup(c->req->params[i].value);
            for (char *save = NULL, *t = v ? strtok_r(v, ",", &save) : NULL; t;
                 t = strtok_r(NULL, ",", &save))
                json_array_append_new(d, json_string(t));
            free(v);
            continue;
        }
        json_object_set_new(o, name, json_string(sn_req_param(c->req, name)));
    }
    return o;
}

/* ------------------------------------------------------------------------------------------
 * Unknown properties: CA ignored them, and so does Sonde, but the reply says so ("warnings"),
 * with the nearest settable property when it is a likely misspelling.
 */

/* What create, clone and PUT read. */
static const char *const settable[] = {"module",        "stat",         "predicate",
                                       "decomposition", "granularity",  "retention-time",
                                       "idle-max",      "persist-data", "enabled"};
/* What they quietly ignore: the property object's other members (a client may send back what
 * it got) and the routes' own parameters (CloudAPI's ?action=clone, ?clone=ID). */
static const char *const ignored[] = {"value-dimension",
                                      "value-arity",
                                      "transformations",
                                      "nsources",
                                      "crtime",
                                      "value-scope",
                                      "uri",
                                      "id",
                                      "uris",
                                      "warnings",
                                      "action",
                                      "clone"};

/* Levenshtein distance of a and b, ASCII case folded; large for long strings. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            int ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1];
            int cb = b[j - 1] >= 'A' && b[j - 1] <= 'Z' ? b[j - 1] + 32 : b[j - 1];
            size_t best = diag + (ca != cb);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The warnings for p's unknown members, as a new array, or NULL when there are none. */
static json_t *unknown_props(const json_t *p)
{
    json_t *w = NULL, *v;
    const char *name;

    json_object_foreach((json_t *)p, name, v)
    {
        bool known = false;
        const char *near = NULL;
        size_t best = SIZE_MAX;
        char msg[256];

        for (size_t i = 0; !known && i < sizeof(settable) / sizeof(*settable); i++) {
            size_t d = edit_distance(name, settable[i]);
            known = strcmp(name, settable[i]) == 0;
            if (d < best) {
                best = d;
                near = settable[i];
            }
        }
        for (size_t i = 0; !known && i < sizeof(ignored) / sizeof(*ignored); i++)
            known = strcmp(name, ignored[i]) == 0;
        if (known)
            continue;
        /* a suggestion within 2 edits, and fewer than a third of the name's letters */
        if (near && best <= 2 && best * 3 < strlen(name))
            snprintf(msg, sizeof(msg), "unknown property \"%.100s\" ignored (did you mean \"%s\"?)",
                     name, near);
        else
            snprintf(msg, sizeof(msg), "unknown property \"%.100s\" ignored", name);
        if (!w)
            w = json_array();
        json_array_append_new(w, json_string(msg));
    }
    return w;
}

/* Appends the warnings w (taken; NULL is none) to the property object o's "warnings". */
static void add_warnings(json_t *o, json_t *w)
{
    json_t *have = o ? json_object_get(o, "warnings") : NULL;

    if (!w || !o) {
        json_decref(w);
        return;
    }
    if (json_is_array(have)) {
        json_array_extend(have, w);
        json_decref(w);
    } else {
        json_object_set_new(o, "warnings", w);
    }
}

void sn_api_create(struct sn_call *c, uint64_t clone_of)
{
    json_t *p = request_props(c), *body = NULL, *warn = NULL;
    struct sn_instn *in;
    char why[512], uri[256];
    int rc;

    if (!p)
        return;
    warn = unknown_props(p);
    if (clone_of) { /* the source's properties, overlaid with the request's */
        struct sn_instn *src = sn_api_instn(c);
        if (!src) {
            json_decref(p);
            json_decref(warn);
            return;
        }
        body = json_pack("{s:s,s:s,s:O,s:O,s:I,s:I,s:I,s:b}", "module", src->metric->module, "stat",
                         src->metric->stat, "predicate", src->predicate, "decomposition",
                         src->decomposition, "granularity", (json_int_t)src->granularity,
                         "retention-time", (json_int_t)src->retention, "idle-max",
                         (json_int_t)src->idle_max, "persist-data", src->persist);
        sn_instn_free(src);
        json_object_update(body, p);
        json_decref(p);
    } else {
        body = p;
    }
    in = calloc(1, sizeof(*in));
    if (!in) {
        json_decref(body);
        json_decref(warn);
        sn_resp_empty(c->resp, 500);
        return;
    }
    snprintf(in->scope, sizeof(in->scope), "%s", c->scope);
    in->granularity = 1;
    in->retention = SN_DEFAULT_RETAIN;
    in->idle_max = SN_DEFAULT_IDLE;
    /* every property, with the rules the definitions file is read with (serve/instn_def.h) */
    if (sn_instn_from_props(c->s, body, in, why, sizeof(why)) < 0) {
        CA_INVAL(c, "%s", why);
        goto fail;
    }
    in->crtime_ms = sn_now_ms();
    atomic_store(&in->last_access, sn_now());
    rc = sn_server_add(c->s, in, why, sizeof(why));
    if (rc == -EDQUOT) {
        CA_INVAL(c, "only %d instrumentations allowed", SN_TENANT_QUOTA);
        goto fail;
    }
    if (rc == -ENOSPC || rc == -EIO) {
        sn_resp_error(c->resp, rc == -ENOSPC ? 507 : 500, "ECA_IO", "%s", why);
        goto fail;
    }
    if (rc < 0) {
        CA_INVAL(c, "%s", why);
        goto fail;
    }
    json_decref(body);
    uint64_t id = in->id; /* in belongs to the server now: it may be deleted at any time */
    in = sn_server_get(c->s, c->scope, id, false);
    if (in) {
        snprintf(uri, sizeof(uri), "%s/instrumentations/%" PRIu64, c->base, id);
        c->resp->location = strdup(uri);
        json_t *o = sn_api_props(c, in);
        add_warnings(o, warn);
        sn_resp_json(c->resp, 201, o);
        sn_instn_free(in);
    } else {
        json_decref(warn);
        sn_resp_empty(c->resp, 404);
    }
    return;
fail:
    json_decref(warn);
    json_decref(body);
    sn_instn_free(in);
}

void sn_api_get(struct sn_call *c)
{
    struct sn_instn *in = sn_api_instn(c);
    if (in)
        sn_resp_json(c->resp, 200, sn_api_props(c, in));
    sn_instn_free(in);
}

/* PUT: the change is saved before it is applied or answered (sn_server_change()). A failed
 * save changes nothing (507 or 500); a retention that cannot change is a 500 with the old
 * properties kept. */
void sn_api_put(struct sn_call *c)
{
    json_t *p = request_props(c);
    struct sn_instn *in = NULL;
    char why[512];
    int rc;

    if (!p)
        return;
    rc = sn_server_change(c->s, c->scope, c->id, p, &in, why, sizeof(why));
    if (rc == -ENOENT) {
        sn_resp_empty(c->resp, 404);
    } else if (rc == -EINVAL) {
        CA_INVAL(c, "%s", why);
    } else if (rc == -ENOSPC || rc == -EIO) {
        sn_resp_error(c->resp, rc == -ENOSPC ? 507 : 500, "ECA_IO", "%s", why);
    } else if (rc < 0) {
        sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "%s", why);
    } else {
        json_t *o = sn_api_props(c, in);
        add_warnings(o, sn_instn_immutable_warnings(p, in));
        add_warnings(o, unknown_props(p));
        sn_resp_json(c->resp, 200, o);
    }
    sn_instn_free(in);
    json_decref(p);
}

void sn_api_delete(struct sn_call *c)
{
    char why[512];
    int rc = sn_server_remove(c->s, c->scope, c->id, why, sizeof(why));

    if (rc == -ENOENT)
        sn_resp_empty(c->resp, 404);
    else if (rc < 0)
        sn_resp_error(c->resp, rc == -ENOSPC ? 507 : 500, "ECA_IO", "%s", why);
    else
        sn_resp_empty(c->resp, 204);
}
