/*
 * Dashboards (Sonde's extension, docs/api.md "Dashboards"): the web UI's saved views, named
 * JSON documents of a scope, kept by serve/dash_store.c.
 *
 *   GET    /dashboards          the scope's dashboards: [{name, title, npanels, mtime, uri}]
 *   GET    /dashboards/NAME     the document
 *   PUT    /dashboards/NAME     create (201, Location) or replace (200); answers the document
 *   DELETE /dashboards/NAME     204
 *
 * A document is checked member by member and stored normalized (defaults filled in, the name
 * and mtime set by the server), so what GET answers is always valid. Errors are CA's: 409
 * ECA_INVAL with a message naming the member; unknown names are empty 404s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "serve/dash_store.h"

#define TITLE_MAX    200
#define SELECTED_MAX 63 /* keys the server draws layers for */

/* --- checking a document -------------------------------------------------------------------- */

struct check {
    char why[300];
};

__attribute__((format(printf, 2, 3))) static bool fail(struct check *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->why, sizeof(k->why), fmt, ap);
    va_end(ap);
    return false;
}

/* Whether every member of o is one of names (NULL-terminated). */
static bool only(struct check *k, const json_t *o, const char *where, const char *const *names)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] && !known; i++)
            known = strcmp(key, names[i]) == 0;
        if (!known)
            return fail(k, "%s: unknown member \"%.64s\"", where, key);
    }
    return true;
}

/* An integer member in [min, max], or dflt when absent. */
static bool int_member(struct check *k, const json_t *o, const char *where, const char *name,
                       json_int_t min, json_int_t max, json_int_t dflt, json_int_t *out)
{
    const json_t *v = json_object_get(o, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(k, "%s: \"%s\" must be an integer from %lld to %lld", where, name,
                    (long long)min, (long long)max);
    *out = json_integer_value(v);
    return true;
}

/* Option name of o, when present (and, with nullable, not null), is one of the strings of
 * allowed (NULL-terminated); else fails with what it must be. */
static bool one_of(struct check *k, const json_t *o, const char *name, bool nullable,
                   const char *const *allowed, const char *where)
{
    const json_t *v = json_object_get(o, name);
    char must[128];
    size_t n = 0;

    if (!v || (nullable && json_is_null(v)))
        return true;
    for (size_t i = 0; allowed[i]; i++) {
        if (json_is_string(v) && strcmp(json_string_value(v), allowed[i]) == 0)
            return true;
        n += (size_t)snprintf(must + n, sizeof(must) - n, "%s\"%s\"",
                              i == 0                       ? ""
                              : allowed[i + 1] || nullable ? ", "
                                                           : " or ",
                              allowed[i]);
        if (n >= sizeof(must))
            n = sizeof(must) - 1;
    }
    fail(k, "%s: \"%s\" must be %s%s", where, name, must, nullable ? " or null" : "");
    return false;
}

/* A panel's options: how its view is drawn. Returns the normalized copy or NULL. */
static json_t *check_options(struct check *k, const json_t *o, const char *where)
{
    static const char *const names[] = {"yscale", "ymin",     "ymax", "selected",
                                        "mode",   "coloring", NULL};
    static const char *const yscales[] = {"linear", "log", NULL};
    static const char *const modes[] = {"isolate", "exclude", "decompose_all", NULL};
    static const char *const colorings[] = {"linear", "rank", NULL};
    const json_t *v;
    json_t *out;

    if (!o)
        return json_object();
    if (!json_is_object(o))
        return fail(k, "%s: \"options\" must be an object", where), NULL;
    if (!only(k, o, where, names))
        return NULL;
    if (!one_of(k, o, "yscale", false, yscales, where) ||
        !one_of(k, o, "mode", true, modes, where) ||
        !one_of(k, o, "coloring", false, colorings, where))
        return NULL;
    for (int i = 0; i < 2; i++) {
        const char *n = i ? "ymax" : "ymin";
        v = json_object_get(o, n);
        if (v && !json_is_null(v) &&
            (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1e12))
            return fail(k, "%s: \"%s\" must be a number from 0 to 1e12, or null", where, n), NULL;
    }
    if ((v = json_object_get(o, "selected"))) {
        size_t i;
        const json_t *s;
        if (!json_is_array(v) || json_array_size(v) > SELECTED_MAX)
            return fail(k, "%s: \"selected\" must be an array of at most %d keys", where,
                        SELECTED_MAX),
                   NULL;
        json_array_foreach(
            v, i,
            s) if (!json_is_string(s) ||
                   strchr(
                       json_string_value(s),
                       ',')) return fail(k,
                                         "%s: \"selected\"[%zu] must be a string without a comma",
                                         where, i),
            NULL;
    }
    out = json_deep_copy(o);
    return out;
}

/* One panel: returns the normalized copy or NULL. */
static json_t *check_panel(struct check *k, const json_t *p, size_t i)
{
    static const char *const names[] = {"instrumentation", "definition", "w", "h", "options", NULL};
    char where[32];
    const json_t *id, *def;
    json_int_t w, hgt;
    json_t *out, *opts;

    snprintf(where, sizeof(where), "panels[%zu]", i);
    if (!json_is_object(p))
        return fail(k, "%s must be an object", where), NULL;
    if (!only(k, p, where, names))
        return NULL;
    id = json_object_get(p, "instrumentation");
    def = json_object_get(p, "definition");
    if (!id && !def)
        return fail(k, "%s: needs \"instrumentation\" (an id) or \"definition\"", where), NULL;
    out = json_object();
    if (id) {
        char buf[24];
        const char *s = buf;
        if (json_is_integer(id) && json_integer_value(id) > 0)
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(id));
        else if (json_is_string(id))
            s = json_string_value(id);
        else
            s = "";
        bool ok = s[0] && s[0] != '0' && strlen(s) <= 19 && strspn(s, "0123456789") == strlen(s);
        if (!ok) {
            json_decref(out);
            return fail(k, "%s: \"instrumentation\" must be an instrumentation's id", where), NULL;
        }
        json_object_set_new(out, "instrumentation", json_string(s));
    }
    if (def) {
        if (!json_is_object(def) || !json_is_string(json_object_get(def, "module")) ||
            !json_is_string(json_object_get(def, "stat"))) {
            json_decref(out);
            return fail(k, "%s: \"definition\" must be an object with \"module\" and \"stat\"",
                        where),
                   NULL;
        }
        json_object_set(out, "definition", (json_t *)def);
    }
    if (!int_member(k, p, where, "w", 1, 3, 1, &w) ||
        !int_member(k, p, where, "h", 1, 3, 1, &hgt) ||
        !(opts = check_options(k, json_object_get(p, "options"), where))) {
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "w", json_integer(w));
    json_object_set_new(out, "h", json_integer(hgt));
    json_object_set_new(out, "options", opts);
    return out;
}

/* The document to store for body under name, or NULL with k->why. */
static json_t *check_doc(struct check *k, const json_t *body, const char *name)
{
    static const char *const names[] = {"name", "title", "panels", "mtime", NULL};
    const json_t *v, *panels;
    json_t *out, *ps;
    size_t i;

    if (!json_is_object(body))
        return fail(k, "a dashboard must be a JSON object"), NULL;
    if (!only(k, body, "dashboard", names))
        return NULL;
    if ((v = json_object_get(body, "name")) &&
        (!json_is_string(v) || strcmp(json_string_value(v), name) != 0))
        return fail(k, "\"name\" must be the name in the path (\"%s\")", name), NULL;
    if ((v = json_object_get(body, "title")) &&
        (!json_is_string(v) || json_string_length(v) > TITLE_MAX))
        return fail(k, "\"title\" must be a string of at most %d bytes", TITLE_MAX), NULL;
    panels = json_object_get(body, "panels");
    if (!panels)
        return fail(k, "missing value for required param \"panels\""), NULL;
    if (!json_is_array(panels))
        return fail(k, "\"panels\" must be an array"), NULL;
    if (json_array_size(panels) > SN_DASH_PANELS_MAX)
        return fail(k, "too many panels: %zu (at most %d)", json_array_size(panels),
                    SN_DASH_PANELS_MAX),
               NULL;
    ps = json_array();
    json_array_foreach(panels, i, v)
    {
        json_t *p = check_panel(k, v, i);
        if (!p) {
            json_decref(ps);
            return NULL;
        }
        json_array_append_new(ps, p);
    }
    v = json_object_get(body, "title");
    out = json_pack("{s:s,s:s,s:o,s:I}", "name", name, "title", v ? json_string_value(v) : name,
                    "panels", ps, "mtime", (json_int_t)sn_now_ms());
    return out;
}

/* --- handlers --------------------------------------------------------------------------------- */

static void set_uri(struct sn_call *c, json_t *doc, const char *name)
{
    char uri[256];
    snprintf(uri, sizeof(uri), "%s/dashboards/%s", c->base, name);
    json_object_set_new(doc, "uri", json_string(uri));
}

void sn_api_dash_list(struct sn_call *c)
{
    json_t *names, *out = json_array(), *v;
    size_t i;

    if (sn_dash_names(c->s->datadir, c->scope, &names) < 0) {
        json_decref(out);
        sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot list the dashboards");
        return;
    }
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        json_t *doc;
        if (sn_dash_get(c->s->datadir, c->scope, name, &doc) < 0)
            continue;
        json_t *title = json_object_get(doc, "title");
        json_t *sum = json_pack(
            "{s:s,s:O,s:I,s:O}", "name", name, "title", title ? title : json_null(), "npanels",
            (json_int_t)json_array_size(json_object_get(doc, "panels")), "mtime",
            json_object_get(doc, "mtime") ? json_object_get(doc, "mtime") : json_null());
        if (sum) {
            set_uri(c, sum, name);
            json_array_append_new(out, sum);
        }
        json_decref(doc);
    }
    json_decref(names);
    sn_resp_json(c->resp, 200, out);
}

void sn_api_dash_get(struct sn_call *c, const char *name)
{
    json_t *doc;
    int rc = sn_dash_get(c->s->datadir, c->scope, name, &doc);

    if (rc == -ENOENT) {
        sn_resp_empty(c->resp, 404);
        return;
    }
    if (rc < 0) {
        sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "dashboard \"%s\" cannot be read", name);
        return;
    }
    set_uri(c, doc, name);
    sn_resp_json(c->resp, 200, doc);
}

void sn_api_dash_put(struct sn_call *c, const char *name)
{
    struct check k = {{0}};
    json_t *doc;
    bool created = false;
    int rc;

    if (!sn_dash_name_ok(name)) {
        CA_INVAL(
            c,
            "invalid dashboard name \"%.80s\": 1 to %d letters, digits, \"-\", \"_\" or \".\", "
            "not starting with \".\"",
            name, SN_DASH_NAME_MAX);
        return;
    }
    if (!c->req->json) {
        CA_INVAL(c, "a dashboard must be a JSON object");
        return;
    }
    if (!(doc = check_doc(&k, c->req->json, name))) {
        CA_INVAL(c, "%s", k.why);
        return;
    }
    rc = sn_dash_put(c->s->datadir, c->scope, name, doc, &created);
    if (rc == -EDQUOT) {
        json_decref(doc);
        CA_INVAL(c, "only %d dashboards allowed", SN_DASH_PER_SCOPE);
        return;
    }
    if (rc < 0) {
        json_decref(doc);
        sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot save the dashboard: %s", strerror(-rc));
        return;
    }
    set_uri(c, doc, name);
    if (created)
        c->resp->location = strdup(json_string_value(json_object_get(doc, "uri")));
    sn_resp_json(c->resp, created ? 201 : 200, doc);
}

void sn_api_dash_delete(struct sn_call *c, const char *name)
{
    int rc = sn_dash_delete(c->s->datadir, c->scope, name);
    if (rc == -ENOENT)
        sn_resp_empty(c->resp, 404);
    else if (rc < 0)
        sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot delete the dashboard: %s",
                      strerror(-rc));
    else
        sn_resp_empty(c->resp, 204);
}
