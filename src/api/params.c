/*
 * CA's request parameters and their messages (§1.2): integers, floats and booleans from the
 * query string, a form body, or (for value and heatmap parameters; heatmap ones are Sonde's
 * extension) a JSON body, where numbers and booleans may be JSON's own.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "core/fmt.h"

const char *sn_param_raw(struct sn_call *c, const char *name, char *buf, size_t len)
{
    const json_t *v = json_is_object(c->req->json) ? json_object_get(c->req->json, name) : NULL;

    if (!v)
        return sn_req_param(c->req, name);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        char d[SN_FMT_DOUBLE_LEN];
        sn_fmt_double(d, json_real_value(v));
        snprintf(buf, len, "%s", d);
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (json_is_null(v))
        return NULL;
    snprintf(buf, len, "%s", json_is_array(v) ? "[array]" : "[object]");
    return buf;
}

/* Integer text as JavaScript's parseInt reads it ("10.5" is 10, "12abc" is 12): false when
 * no digits lead. Beyond int64_t it is INT64_MAX or INT64_MIN, so that the range check says
 * "value too large" (or small) rather than "not a number". */
static bool parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;
    while (*s == ' ' || *s == '\t')
        s++;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || (errno && errno != ERANGE))
        return false;
    *out = v;
    return true;
}

bool sn_param_int(struct sn_call *c, const char *name, int64_t min, int64_t max, int64_t dflt,
                  int64_t *out, bool *given)
{
    char buf[64];
    const char *raw = sn_param_raw(c, name, buf, sizeof(buf));
    int64_t v;

    if (given)
        *given = raw != NULL;
    if (!raw) {
        *out = dflt;
        return true;
    }
    if (!parse_int(raw, &v)) {
        CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: not a number", raw, name);
        return false;
    }
    if (v < min) {
        CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: value too small (min: %lld)", raw,
                 name, (long long)min);
        return false;
    }
    if (v > max) {
        CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: value too large (max: %lld)", raw,
                 name, (long long)max);
        return false;
    }
    *out = v;
    return true;
}

bool sn_param_double(struct sn_call *c, const char *name, double min, double max, double dflt,
                     double *out, bool *given)
{
    char buf[64], lim[SN_FMT_DOUBLE_LEN];
    const char *raw = sn_param_raw(c, name, buf, sizeof(buf));
    char *end;
    double v;

    if (given)
        *given = raw != NULL;
    if (!raw) {
        *out = dflt;
        return true;
    }
    v = strtod(raw, &end);
    if (end == raw || *end || !isfinite(v)) {
        CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: not a number", raw, name);
        return false;
    }
    if (v < min || v > max) {
        sn_fmt_double(lim, v < min ? min : max);
        CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: value too %s (%s: %s)", raw, name,
                 v < min ? "small" : "large", v < min ? "min" : "max", lim);
        return false;
    }
    *out = v;
    return true;
}

bool sn_param_bool(struct sn_call *c, const char *name, bool dflt, bool *out)
{
    char buf[64];
    const char *raw = sn_param_raw(c, name, buf, sizeof(buf));

    if (!raw) {
        *out = dflt;
        return true;
    }
    if (strcmp(raw, "true") == 0 || strcmp(raw, "false") == 0) {
        *out = raw[0] == 't';
        return true;
    }
    CA_INVAL(c, "value \"%.100s\" for param \"%s\" not valid: not a boolean", raw, name);
    return false;
}

/* Appends item (len bytes) to the list out[*n] in buf; false when it does not fit. */
static bool list_add(const char *item, size_t l, const char **out, size_t max, char *buf,
                     size_t len, size_t *used, size_t *n)
{
    if (*n >= max || *used + l + 1 > len)
        return false;
    memcpy(buf + *used, item, l);
    buf[*used + l] = '\0';
    out[(*n)++] = buf + *used;
    *used += l + 1;
    return true;
}

/* Splits text at commas (empty items skipped) into the list; false when it does not fit. */
static bool list_split(const char *text, const char **out, size_t max, char *buf, size_t len,
                       size_t *used, size_t *n)
{
    for (const char *p = text; *p;) {
        size_t l = strcspn(p, ",");
        if (l && !list_add(p, l, out, max, buf, len, used, n))
            return false;
        p += l;
        if (*p == ',')
            p++;
    }
    return true;
}

bool sn_param_list(struct sn_call *c, const char *name, const char **out, size_t max, char *buf,
                   size_t len, size_t *n)
{
    const json_t *v = json_is_object(c->req->json) ? json_object_get(c->req->json, name) : NULL;
    size_t used = 0, i;
    bool form = false, ok = true;

    *n = 0;
    if (json_is_array(v)) {
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            char tmp[SN_FMT_DOUBLE_LEN];
            const char *s = json_string_value(e);
            if (!s && json_is_number(e)) {
                sn_fmt_double(tmp, json_number_value(e));
                s = tmp;
            }
            if (!s) {
                CA_INVAL(c, "value for param \"%s\" not valid: not a list of strings", name);
                return false;
            }
            if (!(ok = list_add(s, strlen(s), out, max, buf, len, &used, n)))
                break;
        }
    } else if (json_is_string(v)) {
        ok = list_split(json_string_value(v), out, max, buf, len, &used, n);
    } else if (v && !json_is_null(v)) {
        CA_INVAL(c, "value for param \"%s\" not valid: not a list of strings", name);
        return false;
    } else {
        /* the form's values when the form names it (CA's rule), else the query's */
        for (i = 0; i < c->req->nparams; i++)
            form |= c->req->params[i].form && strcmp(c->req->params[i].name, name) == 0;
        for (i = 0; ok && i < c->req->nparams; i++)
            if (c->req->params[i].form == form && strcmp(c->req->params[i].name, name) == 0)
                ok = list_split(c->req->params[i].value, out, max, buf, len, &used, n);
    }
    if (!ok) {
        if (*n >= max)
            CA_INVAL(c, "value for param \"%s\" not valid: at most %zu values", name, max);
        else
            CA_INVAL(c, "value for param \"%s\" not valid: longer than %zu bytes", name, len - 1);
        return false;
    }
    return true;
}
