/*
 * The tenants file; see tenants.h.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/tenants.h"

void sn_tenants_free(struct sn_tenants *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->t[i].name);
        free(t->t[i].token);
        for (size_t k = 0; k < t->t[i].ncgroups; k++)
            free(t->t[i].cgroups[k]);
        free(t->t[i].cgroups);
    }
    free(t->t);
    free(t->operator_token);
    free(t);
}

static bool good_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SN_TENANT_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static int token_of(const json_t *o, const char *what, char **out, char *why, size_t whylen)
{
    const json_t *tok = json_object_get(o, "token");
    if (!json_is_string(tok) || json_string_length(tok) < 8 || json_string_length(tok) > 256) {
        snprintf(why, whylen, "%s: \"token\" must be a string of 8 to 256 characters", what);
        return -EINVAL;
    }
    *out = strdup(json_string_value(tok));
    return *out ? 0 : -ENOMEM;
}

static int parse_root(const json_t *root, struct sn_tenants *t, char *why, size_t whylen)
{
    const json_t *op = json_object_get(root, "operator"), *ts = json_object_get(root, "tenants");
    const char *name;
    json_t *v;
    int rc;

    if (!json_is_object(root)) {
        snprintf(why, whylen, "want a JSON object with \"operator\" and \"tenants\"");
        return -EINVAL;
    }
    if (!json_is_object(op)) {
        snprintf(why, whylen, "\"operator\" must be an object with a \"token\"");
        return -EINVAL;
    }
    if ((rc = token_of(op, "operator", &t->operator_token, why, whylen)) < 0)
        return rc;
    if (ts && !json_is_object(ts)) {
        snprintf(why, whylen, "\"tenants\" must be an object");
        return -EINVAL;
    }
    t->t = calloc(json_object_size(ts) + 1, sizeof(*t->t));
    if (!t->t)
        return -ENOMEM;
    json_object_foreach((json_t *)ts, name, v)
    {
        struct sn_tenant *x = &t->t[t->n];
        char what[128];
        const json_t *cg = json_object_get(v, "cgroups");
        snprintf(what, sizeof(what), "tenant \"%.64s\"", name);
        if (!good_name(name)) {
            snprintf(why, whylen, "%s: a name is 1 to %d letters, digits, '-', '_' or '.'", what,
                     SN_TENANT_NAME_MAX);
            return -EINVAL;
        }
        if (!json_is_object(v)) {
            snprintf(why, whylen, "%s must be an object", what);
            return -EINVAL;
        }
        if (!(x->name = strdup(name)))
            return -ENOMEM;
        t->n++;
        if ((rc = token_of(v, what, &x->token, why, whylen)) < 0)
            return rc;
        if (strcmp(x->token, t->operator_token) == 0) {
            snprintf(why, whylen, "%s: its token is the operator's", what);
            return -EINVAL;
        }
        for (size_t i = 0; i + 1 < t->n; i++)
            if (strcmp(t->t[i].token, x->token) == 0) {
                snprintf(why, whylen, "%s: its token is tenant \"%s\"'s too", what, t->t[i].name);
                return -EINVAL;
            }
        if (!json_is_array(cg) || json_array_size(cg) == 0 || json_array_size(cg) > 64) {
            snprintf(why, whylen, "%s: \"cgroups\" must be an array of 1 to 64 cgroup paths", what);
            return -EINVAL;
        }
        x->cgroups = calloc(json_array_size(cg), sizeof(char *));
        if (!x->cgroups)
            return -ENOMEM;
        for (size_t i = 0; i < json_array_size(cg); i++) {
            const char *p = json_string_value(json_array_get(cg, i));
            if (!p || p[0] != '/' || strlen(p) > 4096 || strstr(p, "/..") || strstr(p, "//")) {
                snprintf(why, whylen, "%s: cgroups[%zu] must be an absolute cgroup path", what, i);
                return -EINVAL;
            }
            if (!(x->cgroups[i] = strdup(p)))
                return -ENOMEM;
            x->ncgroups++;
        }
    }
    return 0;
}

int sn_tenants_parse(const char *text, size_t len, struct sn_tenants **out, char *why,
                     size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    struct sn_tenants *t;
    int rc;

    if (!root) {
        snprintf(why, whylen, "line %d: %s", jerr.line, jerr.text);
        return -EINVAL;
    }
    t = calloc(1, sizeof(*t));
    rc = t ? parse_root(root, t, why, whylen) : -ENOMEM;
    json_decref(root);
    if (rc < 0) {
        sn_tenants_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int sn_tenants_load(const char *path, struct sn_tenants **out, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long len;
    int rc;

    if (!f) {
        rc = -errno;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return rc;
    }
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    if (len < 0 || len > (1 << 20)) {
        fclose(f);
        snprintf(why, whylen, "%s: larger than 1 MiB", path);
        return -EINVAL;
    }
    buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        snprintf(why, whylen, "%s: cannot read", path);
        return -EIO;
    }
    fclose(f);
    rc = sn_tenants_parse(buf, (size_t)len, out, why, whylen);
    free(buf);
    return rc;
}

const struct sn_tenant *sn_tenants_find(const struct sn_tenants *t, const char *name)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0)
            return &t->t[i];
    return NULL;
}

bool sn_token_eq(const char *given, const char *expected)
{
    size_t gl = strlen(given), el = strlen(expected);
    unsigned char d = gl != el;
    for (size_t i = 0; i < el; i++)
        d |= (unsigned char)(given[i < gl ? i : 0] ^ expected[i]);
    return d == 0;
}

json_t *sn_tenants_json(const struct sn_tenants *t)
{
    json_t *all = json_object(), *root;
    for (size_t i = 0; all && i < t->n; i++) {
        json_t *cg = json_array();
        for (size_t j = 0; cg && j < t->t[i].ncgroups; j++)
            json_array_append_new(cg, json_string(t->t[i].cgroups[j]));
        json_object_set_new(all, t->t[i].name,
                            json_pack("{s:s,s:o}", "token", t->t[i].token, "cgroups", cg));
    }
    if (t->operator_token)
        root = json_pack("{s:{s:s},s:o}", "operator", "token", t->operator_token, "tenants", all);
    else
        root = json_pack("{s:o}", "tenants", all);
    return root;
}
