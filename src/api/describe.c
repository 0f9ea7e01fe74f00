/*
 * Describe (`GET /ca`, §1.3) and the legacy /ca/metrics, /ca/types and /ca/transformations.
 * The catalog is the agent's (agent/catalog.h). A tenant sees only metrics that carry the
 * "container" field, since only those can be held to its containers (the role CA's customer
 * profile played).
 */
#include <string.h>

#include "agent/catalog.h"
#include "api/internal.h"
#include "serve/transform.h"

/* CA's types (§2.1) by name. */
static json_t *type_json(const char *name)
{
    if (strcmp(name, "time") == 0)
        return json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "name", "time", "arity", "numeric", "unit",
                         "seconds", "abbr", "s", "base", 10, "power", -9);
    if (strcmp(name, "subsecond") == 0)
        return json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "name", "subsecond", "arity", "numeric",
                         "unit", "seconds", "abbr", "s", "base", 10, "power", -3);
    if (strcmp(name, "size") == 0)
        return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", "size", "arity", "numeric", "unit",
                         "bytes", "abbr", "B", "base", 2);
    if (strcmp(name, "percent") == 0)
        return json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", "percent", "arity", "numeric", "unit",
                         "percent", "abbr", "%", "minmax", 100);
    if (strcmp(name, "number") == 0)
        return json_pack("{s:s,s:s,s:s}", "name", "number", "arity", "numeric", "unit", "");
    return json_pack("{s:s,s:s,s:s}", "name", name, "arity", "discrete", "unit", "");
}

static json_t *transformations(struct sn_call *c)
{
    return c->s->xforms ? sn_xforms_describe(c->s->xforms) : json_object();
}

/* Whether scope may use metric m. */
static bool visible(const struct sn_call *c, const struct sn_metric_def *m)
{
    return !c->scope[0] || sn_catalog_field(m, "container") != NULL;
}

/* A metric's value type: CA gives bytes-valued metrics the type "size", others a unit. */
static bool metric_is_size(const struct sn_metric_def *m)
{
    return strcmp(m->unit, "bytes") == 0;
}

void sn_api_describe(struct sn_call *c)
{
    size_t n;
    const struct sn_metric_def *all = sn_catalog_all(&n);
    json_t *modules = json_object(), *fields = json_object(), *types = json_object();
    json_t *metrics = json_array();

    for (size_t i = 0; i < n; i++) {
        const struct sn_metric_def *m = &all[i];
        json_t *mf, *mj;
        if (!visible(c, m))
            continue;
        mf = json_array();
        if (!json_object_get(modules, m->module))
            json_object_set_new(modules, m->module, json_pack("{s:s}", "label", m->module_label));
        for (size_t k = 0; k < m->nfields; k++) {
            const struct sn_catalog_field *f = &m->fields[k];
            json_array_append_new(mf, json_string(f->def.name));
            if (!json_object_get(fields, f->def.name))
                json_object_set_new(fields, f->def.name,
                                    json_pack("{s:s,s:s}", "label", f->label, "type", f->type));
            if (!json_object_get(types, f->type))
                json_object_set_new(types, f->type, type_json(f->type));
        }
        mj = json_pack("{s:s,s:s,s:s,s:s,s:o}", "module", m->module, "stat", m->stat, "label",
                       m->label, "interval", m->point ? "point" : "interval", "fields", mf);
        if (metric_is_size(m)) {
            json_object_set_new(mj, "type", json_string("size"));
            if (!json_object_get(types, "size"))
                json_object_set_new(types, "size", type_json("size"));
        } else {
            json_object_set_new(mj, "unit", json_string(m->unit));
        }
        json_array_append_new(metrics, mj);
    }
    sn_resp_json(c->resp, 200,
                 json_pack("{s:o,s:o,s:o,s:o,s:o}", "modules", modules, "fields", fields, "types",
                           types, "metrics", metrics, "transformations", transformations(c)));
}

void sn_api_legacy_metrics(struct sn_call *c)
{
    size_t n;
    const struct sn_metric_def *all = sn_catalog_all(&n);
    json_t *out = json_object();

    for (size_t i = 0; i < n; i++) {
        const struct sn_metric_def *m = &all[i];
        json_t *mod, *stats, *fields;
        if (!visible(c, m))
            continue;
        fields = json_object();
        mod = json_object_get(out, m->module);
        if (!mod) {
            mod = json_pack("{s:s,s:{}}", "label", m->module_label, "stats");
            json_object_set_new(out, m->module, mod);
        }
        stats = json_object_get(mod, "stats");
        for (size_t k = 0; k < m->nfields; k++) {
            const struct sn_catalog_field *f = &m->fields[k];
            const char *t = strcmp(f->type, "time") == 0      ? "latency"
                            : f->def.kind == SN_FIELD_NUMERIC ? "number"
                                                              : "string";
            json_object_set_new(fields, f->def.name,
                                json_pack("{s:s,s:s}", "label", f->label, "type", t));
        }
        json_object_set_new(
            stats, m->stat,
            json_pack("{s:s,s:s,s:o}", "label", m->label, "type", "unused", "fields", fields));
    }
    sn_resp_json(c->resp, 200, out);
}

void sn_api_legacy_types(struct sn_call *c)
{
    sn_resp_json(c->resp, 200,
                 json_pack("{s:s,s:s,s:s}", "latency", "numeric", "string", "discrete", "number",
                           "numeric"));
}

void sn_api_transformations(struct sn_call *c)
{
    sn_resp_json(c->resp, 200, transformations(c));
}
