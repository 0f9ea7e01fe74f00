/*
 * An instrumentation's definition checked with CA's rules and messages; see instn_def.h.
 * Integer properties are read JavaScript's parseInt way ("10.5" is 10, "7" in a form is 7),
 * and messages print the parsed number, or the JSON value when it is not one, as CA does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/catalog.h"
#include "serve/instn_def.h"

/* The text of a JSON value for messages: strings quoted, as CA prints them. */
static void value_text(const json_t *v, char *out, size_t len)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, len, "%s", t ? t : "null");
    free(t);
}

/* A property as an integer, JavaScript's parseInt way ("10.5" is 10); false when it has none. */
static bool prop_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -9e18 && d < 9e18))
            return false;
        *out = (int64_t)d;
        return true;
    }
    if (json_is_string(v)) {
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10); /* ERANGE: clamped, too large */
        if (end == json_string_value(v))
            return false;
        *out = x;
        return true;
    }
    return false;
}

/* An integer property: *out and its text for messages. */
static bool prop_int_text(const json_t *v, int64_t *out, char *text, size_t len)
{
    if (prop_int(v, out)) {
        snprintf(text, len, "%lld", (long long)*out);
        return true;
    }
    value_text(v, text, len);
    return false;
}

static bool prop_bool(const json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v) &&
        (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false"))) {
        *out = json_string_value(v)[0] == 't';
        return true;
    }
    return false;
}

bool sn_instn_scope_ok(const char *scope)
{
    size_t n = strlen(scope);
    if (n == 0)
        return true;
    if (n > SN_TENANT_NAME_MAX)
        return false;
    for (const char *p = scope; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* The predicate as given: an object, or a string holding one (a form's). New reference. */
static json_t *predicate_of(const json_t *p)
{
    const json_t *pred = json_object_get(p, "predicate");
    if (json_is_string(pred))
        return json_loads(json_string_value(pred), JSON_DECODE_ANY, NULL);
    return pred ? json_incref((json_t *)pred) : json_object();
}

/* The decomposition in the caller's order of the discrete (key) and numeric (num) fields.
 * New reference. */
static json_t *decomposition_of(const json_t *p, const struct sn_catalog_field *key,
                                const struct sn_catalog_field *num)
{
    const json_t *d = json_object_get(p, "decomposition");
    json_t *out = json_array();
    bool num_first = json_is_array(d) && json_array_size(d) == 2 && key && num &&
                     json_is_string(json_array_get(d, 0)) &&
                     strcmp(json_string_value(json_array_get(d, 0)), num->def.name) == 0;

    if (num_first)
        json_array_append_new(out, json_string(num->def.name));
    if (key)
        json_array_append_new(out, json_string(key->def.name));
    if (num && !num_first)
        json_array_append_new(out, json_string(num->def.name));
    return out;
}

/* Whether decomposition d (as a request gives it: an array, or a comma-separated string)
 * names the same fields as have (an array of names), in any order. */
static bool same_fields(const json_t *d, const json_t *have)
{
    size_t n = 0;
    char buf[512];

    if (json_is_string(d)) {
        snprintf(buf, sizeof(buf), "%s", json_string_value(d));
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            bool found = false;
            for (size_t i = 0; i < json_array_size(have); i++)
                found |= strcmp(t, json_string_value(json_array_get(have, i))) == 0;
            if (!found)
                return false;
            n++;
        }
        return n == json_array_size(have);
    }
    if (!json_is_array(d) || json_array_size(d) != json_array_size(have))
        return false;
    for (size_t i = 0; i < json_array_size(d); i++) {
        bool found = false;
        const char *name = json_string_value(json_array_get(d, i));
        for (size_t k = 0; name && k < json_array_size(have); k++)
            found |= strcmp(name, json_string_value(json_array_get(have, k))) == 0;
        if (!found)
            return false;
    }
    return true;
}

json_t *sn_instn_immutable_warnings(const json_t *p, const struct sn_instn *in)
{
    static const char *const fields[] = {"module", "stat", "granularity", "decomposition",
                                         "predicate"};
    json_t *w = NULL;

    for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
        const json_t *v = json_object_get(p, fields[i]);
        bool same = true;
        int64_t x;
        if (!v)
            continue;
        if (i == 0 || i == 1)
            same = json_is_string(v) && strcmp(json_string_value(v),
                                               i == 0 ? in->metric->module : in->metric->stat) == 0;
        else if (i == 2)
            same = prop_int(v, &x) && x == (int64_t)in->granularity;
        else if (i == 3)
            same = same_fields(v, in->decomposition);
        else {
            json_t *pred = predicate_of(p);
            same = pred && json_equal(pred, in->predicate);
            json_decref(pred);
        }
        if (same)
            continue;
        char text[160], msg[256];
        value_text(v, text, sizeof(text));
        snprintf(msg, sizeof(msg), "property \"%s\" cannot be changed after creation: %s ignored",
                 fields[i], text);
        if (!w)
            w = json_array();
        json_array_append_new(w, json_string(msg));
    }
    return w;
}

bool sn_instn_set_props(const json_t *p, struct sn_instn *in, bool create, char *why, size_t whylen)
{
    const json_t *v;
    char text[256];
    int64_t x;

    if (create && (v = json_object_get(p, "granularity"))) {
        if (!prop_int_text(v, &x, text, sizeof(text)) || x < 1) {
            snprintf(why, whylen,
                     "value %s for field \"granularity\" is invalid: not a positive integer", text);
            return false;
        }
        if (x != 1 && x % 5 != 0) {
            snprintf(why, whylen,
                     "value %s for field \"granularity\" is invalid: must be divisible by 5", text);
            return false;
        }
        if (x > 3600) {
            snprintf(why, whylen, "value %s for field \"granularity\" is invalid: maximum is 3600",
                     text);
            return false;
        }
        in->granularity = (uint32_t)x;
    }
    if ((v = json_object_get(p, "retention-time"))) {
        if (!prop_int_text(v, &x, text, sizeof(text))) {
            snprintf(why, whylen, "value %s for field \"retention-time\" is invalid: not a number",
                     text);
            return false;
        }
        if (x < 10) {
            snprintf(why, whylen, "value %s for field \"retention-time\" is invalid: minimum is 10",
                     text);
            return false;
        }
        if (x > 3600 * (int64_t)in->granularity) {
            snprintf(why, whylen,
                     "value %s for field \"retention-time\" is invalid: maximum for granularity "
                     "\"%u\" is %lld",
                     text, in->granularity, 3600LL * in->granularity);
            return false;
        }
        in->retention = (uint32_t)x;
    } else if (create && in->retention > 3600 * in->granularity) {
        in->retention = 3600 * in->granularity;
    }
    if (in->retention < in->granularity) /* at least one slot */
        in->retention = in->granularity;
    if ((v = json_object_get(p, "idle-max"))) {
        if (!prop_int_text(v, &x, text, sizeof(text))) {
            snprintf(why, whylen, "value %s for field \"idle-max\" is invalid: not a number", text);
            return false;
        }
        if (x < 0) {
            snprintf(why, whylen, "value %s for field \"idle-max\" is invalid: minimum is 0", text);
            return false;
        }
        if (x > SN_IDLE_MAX_MAX) {
            snprintf(why, whylen, "value %s for field \"idle-max\" is invalid: maximum is %d", text,
                     SN_IDLE_MAX_MAX);
            return false;
        }
        if (x == 0 && in->scope[0]) {
            snprintf(why, whylen, "value %s for field \"idle-max\" is invalid: zero not allowed",
                     text);
            return false;
        }
        in->idle_max = (uint32_t)x;
    }
    if ((v = json_object_get(p, "persist-data"))) {
        value_text(v, text, sizeof(text));
        if (!prop_bool(v, &in->persist)) {
            snprintf(why, whylen,
                     "value %s for field \"persist-data\" is invalid: must be a boolean", text);
            return false;
        }
    }
    /* kept history is history one comes back to: a persist-data instrumentation created
     * without an idle-max is never reaped (a tenant's: after a week, the most it may ask) */
    if (create && in->persist && !json_object_get(p, "idle-max"))
        in->idle_max = in->scope[0] ? SN_IDLE_MAX_MAX : 0;
    if ((v = json_object_get(p, "enabled"))) {
        bool b;
        value_text(v, text, sizeof(text));
        if (!prop_bool(v, &b) || !b) {
            snprintf(why, whylen, "value %s for field \"enabled\" is invalid: unsupported value",
                     text);
            return false;
        }
    }
    return true;
}

int sn_instn_from_props(const struct sn_server *s, const json_t *p, struct sn_instn *in, char *why,
                        size_t whylen)
{
    struct sn_def probe;
    json_t *pred;
    (void)s; /* the definition is checked with no host */

    /* module, stat, decomposition, predicate: the agent's validation and messages, with no
     * host (the agent that runs it compiles it for its own) */
    if (sn_def_check(p, &probe, why, whylen) < 0)
        return -EINVAL;
    if (in->scope[0] && !sn_catalog_field(probe.metric, "container")) {
        snprintf(why, whylen,
                 "value \"%s.%s\" for field \"module.stat\" is invalid: not a valid module/stat "
                 "pair",
                 probe.metric->module, probe.metric->stat);
        return -EINVAL;
    }
    in->metric = probe.metric;
    in->keyf = probe.key;
    in->numf = probe.num;
    in->arity = probe.arity;
    if (!sn_instn_set_props(p, in, true, why, whylen))
        return -EINVAL;
    if (!(pred = predicate_of(p))) {
        snprintf(why, whylen, "value for field \"predicate\" is invalid: not JSON");
        return -EINVAL;
    }
    in->predicate = pred;
    in->decomposition = decomposition_of(p, probe.key, probe.num);
    return 0;
}
