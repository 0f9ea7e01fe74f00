/*
 * Definitions checked with no host, and the predicate they compile to; see definition.h.
 * Validation follows CA's order: the metric, then the decomposition's fields (at most one
 * discrete and one numeric), then the predicate, whose messages come from agent/predicate.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/definition.h"

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* CA's message for a field the metric lacks, in a decomposition or a predicate:
 *   value "bogus" for field "field" is invalid: no such field for specified metric */
static int no_field(char *why, size_t len, const char *name)
{
    json_t *s = json_string(name);
    char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    int rc = fail(why, len,
                  "value %.200s for field \"field\" is invalid: no such field for specified metric",
                  text ? text : "?");
    free(text);
    json_decref(s);
    return rc;
}

const char *sn_arity_name(enum sn_arity a)
{
    return a == SN_ARITY_SCALAR     ? "scalar"
           : a == SN_ARITY_DISCRETE ? "discrete-decomposition"
                                    : "numeric-decomposition";
}

/* The decomposition as a list of names: an array, or a comma-separated string. */
static int decomposition(const json_t *d, const char **names, size_t max, size_t *n, char *buf,
                         size_t buflen)
{
    *n = 0;
    if (!d)
        return 0;
    if (json_is_string(d)) {
        snprintf(buf, buflen, "%s", json_string_value(d));
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (*n == max)
                return -E2BIG;
            names[(*n)++] = tok;
        }
        return 0;
    }
    if (!json_is_array(d))
        return -EINVAL;
    for (size_t i = 0; i < json_array_size(d); i++) {
        if (!json_is_string(json_array_get(d, i)))
            return -EINVAL;
        if (*n == max)
            return -E2BIG;
        names[(*n)++] = json_string_value(json_array_get(d, i));
    }
    return 0;
}

/* usdt.probes: the eq leaves on path, provider and probe at the top of the predicate (itself,
 * or the children of a top-level "and") name the probe pair to attach. */
static int usdt_target(const json_t *pred, struct sn_slot_spec *spec, char *why, size_t whylen)
{
    const json_t *and = json_object_get(pred, "and");
    size_t n = json_is_array(and) ? json_array_size(and) : 1;
    const char *path = NULL, *provider = NULL, *probe = NULL;

    for (size_t i = 0; i < n; i++) {
        const json_t *leaf = json_is_array(and) ? json_array_get(and, i) : pred;
        const json_t *eq = json_object_get(leaf, "eq");
        const char *f = json_string_value(json_array_get(eq, 0));
        const char *v = json_string_value(json_array_get(eq, 1));
        if (!f || !v)
            continue;
        if (strcmp(f, "path") == 0)
            path = v;
        else if (strcmp(f, "provider") == 0)
            provider = v;
        else if (strcmp(f, "probe") == 0)
            probe = v;
    }
    if (!path || !provider || !probe)
        return fail(why, whylen,
                    "value for field \"predicate\" is invalid: usdt.probes needs the predicate to "
                    "fix \"path\", \"provider\" and \"probe\" with eq (at its top or in a "
                    "top-level \"and\")");
    if (path[0] != '/' || strlen(path) >= sizeof(spec->usdt.path) ||
        strlen(provider) >= sizeof(spec->usdt.provider) ||
        strlen(probe) + sizeof("__start") > sizeof(spec->usdt.start))
        return fail(why, whylen,
                    "value for field \"predicate\" is invalid: usdt path must be absolute and "
                    "path, provider and probe not too long");
    snprintf(spec->usdt.path, sizeof(spec->usdt.path), "%s", path);
    snprintf(spec->usdt.provider, sizeof(spec->usdt.provider), "%s", provider);
    snprintf(spec->usdt.start, sizeof(spec->usdt.start), "%s__start", probe);
    snprintf(spec->usdt.done, sizeof(spec->usdt.done), "%s__done", probe);
    return 0;
}

/* the probe field's value: the start probe's name without "__start" */
static const char *probe_base(struct sn_slot_spec *spec)
{
    static _Thread_local char base[64];
    size_t n = strlen(spec->usdt.start);
    snprintf(base, sizeof(base), "%.*s", n > 7 ? (int)(n - 7) : 0, spec->usdt.start);
    return base;
}

/* A cgroup path's form only, with no host to resolve it on (sn_def_check()). */
static bool any_cgroup(const char *s, int64_t *out)
{
    (void)s;
    *out = 0;
    return true;
}

int sn_def_compile(const json_t *body, const char *hostname, struct sn_def *in,
                   struct sn_slot_spec *spec, char *why, size_t whylen)
{
    const char *module = json_string_value(json_object_get(body, "module"));
    const char *stat = json_string_value(json_object_get(body, "stat"));
    const json_t *pred = json_object_get(body, "predicate"), *dec;
    struct sn_field_def defs[32];
    enum sn_field_unit units[32];
    const char *names[8];
    char buf[512], *text;
    json_t *parsed = NULL;
    size_t n;
    int rc;

    memset(in, 0, sizeof(*in));
    memset(spec, 0, sizeof(*spec));
    if (!json_is_object(body))
        return fail(why, whylen, "instrumentation must be a JSON object");
    if (!module)
        return fail(why, whylen, "missing value for required field: \"module\"");
    if (!stat)
        return fail(why, whylen, "missing value for required field: \"stat\"");
    in->metric = sn_catalog_find(module, stat);
    if (!in->metric)
        return fail(why, whylen,
                    "value \"%.64s.%.64s\" for field \"module.stat\" is invalid: not a valid "
                    "module/stat pair",
                    module, stat);

    dec = json_object_get(body, "decomposition");
    rc = decomposition(dec, names, 8, &n, buf, sizeof(buf));
    if (rc < 0) {
        text = json_dumps(dec, JSON_ENCODE_ANY | JSON_COMPACT);
        rc = fail(why, whylen,
                  "value %.200s for field \"decomposition\" is invalid: must be an array of "
                  "field names",
                  text ? text : "?");
        free(text);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sn_catalog_field *f = sn_catalog_field(in->metric, names[i]);
        if (!f)
            return no_field(why, whylen, names[i]);
        if (f->def.kind == SN_FIELD_NUMERIC ? in->num != NULL : in->key != NULL) {
            /* CA names the whole decomposition, as a JSON array */
            json_t *all = json_array();
            for (size_t k = 0; k < n; k++)
                json_array_append_new(all, json_string(names[k]));
            text = json_dumps(all, JSON_COMPACT);
            json_decref(all);
            rc = fail(why, whylen,
                      "value %.200s for field \"decomposition\" is invalid: more than one %s "
                      "decomposition specified",
                      text ? text : "?", f->def.kind == SN_FIELD_NUMERIC ? "numeric" : "discrete");
            free(text);
            return rc;
        }
        if (f->def.kind == SN_FIELD_NUMERIC)
            in->num = f;
        else
            in->key = f;
    }
    in->arity = in->num ? SN_ARITY_NUMERIC : in->key ? SN_ARITY_DISCRETE : SN_ARITY_SCALAR;

    /* the predicate: an object, or a JSON string holding one; absent means {} */
    if (json_is_string(pred)) {
        json_error_t jerr;
        parsed = json_loads(json_string_value(pred), JSON_DECODE_ANY, &jerr);
        if (!parsed) {
            text = json_dumps(pred, JSON_ENCODE_ANY | JSON_COMPACT); /* quoted and escaped */
            rc = fail(why, whylen,
                      "value %.200s for field \"predicate\" is invalid: invalid JSON: %s",
                      text ? text : "?", jerr.text);
            free(text);
            return rc;
        }
        pred = parsed;
    }
    if (in->metric->metric == SN_METRIC_USDT) {
        if (in->key && in->key->render == SN_RENDER_HOST && strcmp(in->key->def.name, "hostname"))
            rc = fail(why, whylen,
                      "value \"%.64s\" for field \"decomposition\" is invalid: fixed by the "
                      "predicate",
                      in->key->def.name);
        else
            rc = usdt_target(pred, spec, why, whylen);
        if (rc < 0) {
            json_decref(parsed);
            return rc;
        }
    }
    for (size_t i = 0; i < in->metric->nfields && i < 32; i++) {
        const char *name = in->metric->fields[i].def.name, *type = in->metric->fields[i].type;
        defs[i] = in->metric->fields[i].def;
        /* the catalog's CA types: constants with units convert to their raw unit */
        units[i] = defs[i].kind != SN_FIELD_NUMERIC ? SN_UNIT_NONE
                   : strcmp(type, "time") == 0      ? SN_UNIT_NS
                   : strcmp(type, "subsecond") == 0 ? SN_UNIT_MS
                   : strcmp(type, "size") == 0      ? SN_UNIT_BYTES
                                                    : SN_UNIT_NONE;
        if (!hostname && defs[i].kind == SN_FIELD_CGROUP)
            defs[i].parse = any_cgroup;
        if (in->metric->fields[i].render != SN_RENDER_HOST)
            continue;
        defs[i].constant = strcmp(name, "path") == 0       ? spec->usdt.path
                           : strcmp(name, "provider") == 0 ? spec->usdt.provider
                           : strcmp(name, "probe") == 0    ? probe_base(spec)
                           : hostname                      ? hostname
                                                           : "";
    }
    {
        json_t *empty = pred ? NULL : json_object();
        char reason[256];
        rc = sn_pred_compile_units(pred ? pred : empty, defs, units, in->metric->nfields,
                                   &spec->pred, reason, sizeof(reason));
        static const char nofield[] = "no such field for specified metric: ";
        if (rc == -ENOENT && strncmp(reason, nofield, sizeof(nofield) - 1) == 0) {
            no_field(why, whylen, reason + sizeof(nofield) - 1);
            rc = -EINVAL;
        } else if (rc < 0) {
            text = json_dumps(pred, JSON_ENCODE_ANY | JSON_COMPACT);
            fail(why, whylen, "value %.200s for field \"predicate\" is invalid: %s",
                 text ? text : "?", reason);
            free(text);
        }
        json_decref(empty);
    }
    json_decref(parsed);
    if (rc < 0)
        return -EINVAL;
    return 0;
}

int sn_def_check(const json_t *def, struct sn_def *out, char *why, size_t whylen)
{
    struct sn_slot_spec *spec = malloc(sizeof(*spec));
    int rc;

    if (!spec)
        return fail(why, whylen, "out of memory");
    rc = sn_def_compile(def, NULL, out, spec, why, whylen);
    free(spec);
    return rc;
}
