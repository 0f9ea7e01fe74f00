/*
 * Conformance of `sonde serve` with Cloud Analytics' configuration API (../shared/ref/joyent-ca.md
 * §1.1-§1.4, §4.1 persistence): describe (GET /ca) and the legacy /ca/metrics and /ca/types;
 * instrumentations created from JSON and from forms with CA's defaults, derived values and field
 * order; CA's validation messages (409 ECA_INVAL); list, get, PUT, DELETE and clone; the
 * transport rules (empty 404s, OPTIONS, CORS headers, trailing newlines, 413, 415,
 * X-API-Version); ids and definitions across a restart; persist-data; idle reaping; tenants
 * (tokens, isolation, quota, the metrics they may use, idle-max 0); and one run with the local
 * BPF agent (as root).
 *
 * Every server runs on a free loopback port with its own data directory (tests/support/http.h);
 * most tests share one `--no-agent` server, so that nothing but ingest adds data.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve g; /* the shared --no-agent server */
static bool g_up;

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* t_note() applies to the next failure report: T_OKN sets it only when x fails, then clears
 * it, so that no later failure carries a stale note. */
__attribute__((format(printf, 2, 3))) static bool noted(bool ok, const char *fmt, ...)
{
    if (!ok) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        t_note("%s", buf);
    }
    return ok;
}
#define T_OKN(x, ...)                                                                              \
    (t_check(__FILE__, __LINE__, #x, noted((x), __VA_ARGS__)) ? true : (t_note("%s", ""), false))

static const char *const no_agent[] = {"--no-agent", NULL};

static int start_server(struct th_serve *s, const char *const *extra, const char *reuse)
{
    int rc = th_serve_start(sonde, extra, reuse, s);
    T_OKN(rc == 0, "th_serve_start: %s", strerror(-rc));
    return rc;
}

/* One request with an optional Content-Type, an optional bearer token and a few more headers
 * (NULL-terminated). */
static int req(int port, const char *method, const char *path, const char *ctype, const char *body,
               const char *token, const char *const *more, struct th_resp *r)
{
    char ct[256], auth[300];
    const char *h[8];
    int n = 0;
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h[n++] = ct;
    }
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    for (int i = 0; more && more[i] && n < 7; i++)
        h[n++] = more[i];
    h[n] = NULL;
    return th_request(port, method, path, h, body, body ? strlen(body) : 0, 10000, r);
}

static const char *JSON = "application/json";
static const char *FORM = "application/x-www-form-urlencoded";

/* The three CORS headers of §1.1, exactly. */
static void check_cors(const struct th_resp *r)
{
    char v[256];
    if (T_OK(th_header(r, "Access-Control-Allow-Origin", v, sizeof(v))))
        T_STR(v, "*");
    if (T_OK(th_header(r, "Access-Control-Allow-Headers", v, sizeof(v))))
        T_STR(v, "Content-type");
    if (T_OK(th_header(r, "Access-Control-Allow-Methods", v, sizeof(v))))
        T_STR(v, "POST, GET, DELETE, PUT");
}

/* The JSON body of r (Content-Type application/json, a trailing newline, CORS headers), or
 * NULL after reporting. New reference. */
static json_t *body_json(const struct th_resp *r)
{
    char v[256];
    json_error_t e;
    json_t *j;

    check_cors(r);
    if (T_OK(th_header(r, "Content-Type", v, sizeof(v))))
        T_OK(strncasecmp(v, "application/json", 16) == 0);
    if (!T_OK(r->body && r->len > 0))
        return NULL;
    T_OK(r->body[r->len - 1] == '\n');
    j = json_loadb(r->body, r->len, 0, &e);
    T_OKN(j != NULL, "body is not JSON (%s): %.300s", e.text, r->body);
    return j;
}

static bool is_empty_404(const struct th_resp *r)
{
    check_cors(r);
    T_EQ(r->status, 404);
    T_EQ(r->len, 0);
    return r->status == 404 && r->len == 0;
}

/* An error reply: status, {"error":{"code","message"}} exactly; message compared whole, or
 * only its start when prefix is set. */
static void check_error(const struct th_resp *r, int status, const char *code, const char *msg,
                        bool prefix)
{
    json_t *j = body_json(r), *e;
    const char *m;

    T_EQ(r->status, status);
    if (!j)
        return;
    T_EQ(json_object_size(j), 1);
    e = json_object_get(j, "error");
    if (T_OK(json_is_object(e))) {
        T_EQ(json_object_size(e), 2);
        T_STR(json_string_value(json_object_get(e, "code")), code);
        m = json_string_value(json_object_get(e, "message"));
        if (T_OK(m != NULL)) {
            if (prefix) {
                T_OKN(strncmp(m, msg, strlen(msg)) == 0, "message \"%s\" should start with \"%s\"",
                      m, msg);
            } else {
                T_STR(m, msg);
            }
        }
    }
    json_decref(j);
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t iget(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* Creates an instrumentation: 201, Location = uri; returns the property object (new
 * reference) or NULL. */
static json_t *create_at(int port, const char *base, const char *ctype, const char *body,
                         const char *token)
{
    struct th_resp r;
    char path[256], loc[256];
    json_t *j = NULL;

    snprintf(path, sizeof(path), "%s/instrumentations", base);
    if (!T_OK(req(port, "POST", path, ctype, body, token, NULL, &r) == 0))
        return NULL;
    T_OKN(r.status == 201, "create %s: %d %.300s", body ? body : "(no body)", r.status,
          r.body ? r.body : "");
    if (r.status == 201 && (j = body_json(&r)) != NULL) {
        if (T_OK(th_header(&r, "Location", loc, sizeof(loc))))
            T_STR(loc, sget(j, "uri"));
    }
    th_resp_free(&r);
    return j;
}

static json_t *create(int port, const char *json_body)
{
    return create_at(port, "/ca", JSON, json_body, NULL);
}

/* GET path: status, and the JSON body when 200 (else NULL). */
static json_t *get_json(int port, const char *path, const char *token, int *status)
{
    struct th_resp r;
    json_t *j = NULL;
    *status = 0;
    if (!T_OK(req(port, "GET", path, NULL, NULL, token, NULL, &r) == 0))
        return NULL;
    *status = r.status;
    if (r.status == 200)
        j = body_json(&r);
    else
        check_cors(&r);
    th_resp_free(&r);
    return j;
}

static json_t *get_instn(int port, const char *id, int *status)
{
    char path[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%s", id);
    return get_json(port, path, NULL, status);
}

/* Whether the list (a JSON array of property objects) holds id. */
static bool list_has(const json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (sget(v, "id") && strcmp(sget(v, "id"), id) == 0)
            return true;
    }
    return false;
}

/* CA's field order of a property object (§1.4). */
static const char *const prop_order[] = {
    "module",      "stat",        "predicate",      "decomposition", "value-dimension",
    "value-arity", "enabled",     "retention-time", "idle-max",      "transformations",
    "nsources",    "granularity", "persist-data",   "crtime",        "value-scope",
    "uri",         "id",          "uris",
};
#define NPROPS (sizeof(prop_order) / sizeof(prop_order[0]))

static void check_order(const json_t *o)
{
    size_t i = 0;
    for (void *it = json_object_iter((json_t *)o); it;
         it = json_object_iter_next((json_t *)o, it), i++) {
        const char *k = json_object_iter_key(it);
        if (i == NPROPS && strcmp(k, "warnings") == 0) { /* Sonde's, last */
            T_OK(json_object_iter_next((json_t *)o, it) == NULL);
            return;
        }
        if (i < NPROPS && strcmp(k, prop_order[i]) != 0) {
            T_OKN(false, "property %zu is \"%s\", CA's order has \"%s\" there", i, k,
                  prop_order[i]);
            return;
        }
    }
    T_EQ(i, NPROPS);
}

/* The derived values: uri, id (decimal string), uris by arity; value-dimension and arity. */
static void check_derived(const json_t *o, const char *base, const char *arity, int dim)
{
    char uri[256], u[320];
    const char *id = sget(o, "id");
    const json_t *uris = json_object_get(o, "uris");
    bool numeric = strcmp(arity, "numeric-decomposition") == 0;

    if (!T_OK(id != NULL && id[0] != '\0'))
        return;
    for (const char *p = id; *p; p++)
        T_OK(*p >= '0' && *p <= '9');
    T_OK(id[0] != '0');
    snprintf(uri, sizeof(uri), "%s/instrumentations/%s", base, id);
    T_STR(sget(o, "uri"), uri);
    T_STR(sget(o, "value-arity"), arity);
    T_EQ(iget(o, "value-dimension"), dim);
    T_OK(json_is_integer(json_object_get(o, "value-dimension")));
    if (!T_OK(json_is_array(uris)))
        return;
    T_EQ(json_array_size(uris), numeric ? 3 : 1);
    if (numeric && json_array_size(uris) == 3) {
        snprintf(u, sizeof(u), "%s/value/heatmap/image", uri);
        T_STR(sget(json_array_get(uris, 0), "uri"), u);
        T_STR(sget(json_array_get(uris, 0), "name"), "value_heatmap");
        snprintf(u, sizeof(u), "%s/value/heatmap/details", uri);
        T_STR(sget(json_array_get(uris, 1), "uri"), u);
        T_STR(sget(json_array_get(uris, 1), "name"), "details_heatmap");
    }
    if (json_array_size(uris) >= 1) {
        const json_t *last = json_array_get(uris, json_array_size(uris) - 1);
        snprintf(u, sizeof(u), "%s/value/raw", uri);
        T_STR(sget(last, "uri"), u);
        T_STR(sget(last, "name"), "value_raw");
        T_EQ(json_object_size(last), 2);
    }
}

/* Percent-encodes s for a form body. */
static void form_enc(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s && o + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
    }
    out[o] = '\0';
}

/* Ingests JSON frames; 200 with accepted == n. */
static void ingest(int port, const char *frames, int n)
{
    struct th_resp r;
    if (!T_OK(req(port, "POST", "/ca/ingest", JSON, frames, NULL, NULL, &r) == 0))
        return;
    T_EQ(r.status, 200);
    json_t *j = body_json(&r);
    if (j) {
        T_OKN(iget(j, "accepted") == n, "ingest reply %.300s", r.body);
        json_decref(j);
    }
    th_resp_free(&r);
}

/* The "value" of GET .../value/raw?start_time=&duration= (new reference), or NULL. */
static json_t *raw_value(int port, const char *id, int64_t start, int dur)
{
    char path[256];
    int st;
    json_t *j, *v = NULL;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%s/value/raw?start_time=%" PRId64 "&duration=%d", id, start,
             dur);
    j = get_json(port, path, NULL, &st);
    T_EQ(st, 200);
    if (j) {
        v = json_incref(json_object_get(j, "value"));
        T_OK(v != NULL);
        json_decref(j);
    }
    return v;
}

static char *dumps(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Compares two property objects, ignoring nsources (it follows the sources seen lately). */
static void same_props(const json_t *a, const json_t *b)
{
    json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
    json_object_del(x, "nsources");
    json_object_del(y, "nsources");
    char *s1 = dumps(x), *s2 = dumps(y);
    T_OKN(json_equal(x, y), "before: %s | after: %s", s1, s2);
    free(s1);
    free(s2);
    json_decref(x);
    json_decref(y);
}

/* ---- describe ------------------------------------------------------------------------------ */

static const json_t *find_metric(const json_t *metrics, const char *module, const char *stat)
{
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
    {
        if (sget(m, "module") && sget(m, "stat") && !strcmp(sget(m, "module"), module) &&
            !strcmp(sget(m, "stat"), stat))
            return m;
    }
    return NULL;
}

static bool array_has(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static void test_describe(void)
{
    int st;
    T_REQUIRE(g_up);
    json_t *d = get_json(g.port, "/ca", NULL, &st);
    T_EQ(st, 200);
    T_REQUIRE(d != NULL);

    /* exactly the five keys of §1.3 */
    const char *keys[] = {"modules", "fields", "types", "metrics", "transformations"};
    T_EQ(json_object_size(d), 5);
    for (size_t i = 0; i < 5; i++)
        T_OKN(json_object_get(d, keys[i]) != NULL, "missing key %s", keys[i]);
    const json_t *modules = json_object_get(d, "modules"), *fields = json_object_get(d, "fields");
    const json_t *types = json_object_get(d, "types"), *metrics = json_object_get(d, "metrics");
    T_OK(json_is_object(json_object_get(d, "transformations")));
    T_REQUIRE(json_is_object(modules) && json_is_object(fields) && json_is_object(types) &&
              json_is_array(metrics));

    /* modules: {name: {label}} */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)modules, k, v)
    {
        T_OK(json_is_string(json_object_get(v, "label")));
        T_EQ(json_object_size(v), 1);
    }
    T_STR(sget(json_object_get(modules, "syscall"), "label"), "System calls");

    /* fields: {name: {label, type}}, every type described in types */
    json_object_foreach((json_t *)fields, k, v)
    {
        T_OK(json_is_string(json_object_get(v, "label")));
        const char *ty = sget(v, "type");
        if (T_OK(ty != NULL))
            T_OKN(json_object_get(types, ty) != NULL, "field %s has type %s, not in types", k, ty);
    }
    T_STR(sget(json_object_get(fields, "latency"), "type"), "time");
    T_STR(sget(json_object_get(fields, "execname"), "type"), "string");
    T_STR(sget(json_object_get(fields, "syscall"), "type"), "string");
    T_STR(sget(json_object_get(fields, "subsecond"), "type"), "subsecond");
    T_STR(sget(json_object_get(fields, "cputime"), "type"), "time");
    T_STR(sget(json_object_get(fields, "pid"), "type"), "string"); /* an identifier (§2.2) */

    /* types: {name, arity, unit, [abbr, base, power, minmax]} (§1.3, §2.1) */
    json_object_foreach((json_t *)types, k, v)
    {
        T_STR(sget(v, "name"), k);
        const char *ar = sget(v, "arity");
        T_OK(ar && (!strcmp(ar, "discrete") || !strcmp(ar, "numeric")));
        T_OK(json_is_string(json_object_get(v, "unit")));
    }
    json_t *want_time = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "name", "time", "arity", "numeric",
                                  "unit", "seconds", "abbr", "s", "base", 10, "power", -9);
    json_t *want_sub =
        json_pack("{s:s,s:s,s:s,s:s,s:i,s:i}", "name", "subsecond", "arity", "numeric", "unit",
                  "seconds", "abbr", "s", "base", 10, "power", -3);
    json_t *want_size = json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", "size", "arity", "numeric",
                                  "unit", "bytes", "abbr", "B", "base", 2);
    json_t *want_str =
        json_pack("{s:s,s:s,s:s}", "name", "string", "arity", "discrete", "unit", "");
    T_OK(json_equal(json_object_get(types, "time"), want_time));
    T_OK(json_equal(json_object_get(types, "subsecond"), want_sub));
    T_OK(json_equal(json_object_get(types, "size"), want_size));
    T_OK(json_equal(json_object_get(types, "string"), want_str));
    json_decref(want_time);
    json_decref(want_sub);
    json_decref(want_size);
    json_decref(want_str);

    /* metrics: {module, stat, label, interval, fields, unit | type} */
    size_t i;
    json_t *m;
    json_array_foreach(metrics, i, m)
    {
        T_OK(json_is_string(json_object_get(m, "module")));
        T_OK(json_object_get(modules, sget(m, "module") ? sget(m, "module") : "") != NULL);
        T_OK(json_is_string(json_object_get(m, "stat")));
        T_OK(json_is_string(json_object_get(m, "label")));
        const char *iv = sget(m, "interval");
        T_OK(iv && (!strcmp(iv, "interval") || !strcmp(iv, "point")));
        bool has_unit = json_object_get(m, "unit") != NULL;
        bool has_type = json_object_get(m, "type") != NULL;
        T_OKN(has_unit != has_type, "%s.%s: exactly one of unit and type", sget(m, "module"),
              sget(m, "stat"));
        if (has_type)
            T_OK(json_object_get(types, sget(m, "type") ? sget(m, "type") : "") != NULL);
        size_t fi;
        json_t *f;
        json_array_foreach(json_object_get(m, "fields"), fi, f)
        {
            T_OKN(json_object_get(fields, json_string_value(f) ? json_string_value(f) : ""),
                  "%s.%s field %s not in fields", sget(m, "module"), sget(m, "stat"),
                  json_string_value(f));
        }
    }

    const json_t *sc = find_metric(metrics, "syscall", "syscalls");
    if (T_OK(sc != NULL)) {
        T_STR(sget(sc, "unit"), "syscalls");
        T_OK(json_object_get(sc, "type") == NULL);
        T_STR(sget(sc, "interval"), "interval");
        T_OK(json_is_string(json_object_get(sc, "label")));
        /* CA's fields of syscall.syscalls that Linux has, in CA's order (§2.3) */
        const char *ca[] = {"hostname",  "pid",     "execname",  "psargs",  "ppid",
                            "pexecname", "syscall", "subsecond", "latency", "cputime"};
        const json_t *sf = json_object_get(sc, "fields");
        size_t at = 0;
        for (size_t c = 0; c < sizeof(ca) / sizeof(ca[0]); c++) {
            size_t idx;
            json_t *f;
            bool found = false;
            json_array_foreach(sf, idx, f)
            {
                if (json_is_string(f) && !strcmp(json_string_value(f), ca[c])) {
                    found = true;
                    T_OKN(idx >= at, "field %s out of CA's order", ca[c]);
                    at = idx;
                }
            }
            T_OKN(found, "syscall.syscalls lacks field %s", ca[c]);
        }
    }
    const json_t *usage = find_metric(metrics, "cpu", "usage");
    if (T_OK(usage != NULL))
        T_STR(sget(usage, "interval"), "point");
    const json_t *rss = find_metric(metrics, "memory", "rss");
    if (T_OK(rss != NULL)) {
        T_STR(sget(rss, "type"), "size");
        T_OK(json_object_get(rss, "unit") == NULL);
        T_STR(sget(rss, "interval"), "point");
    }
    json_decref(d);
}

static void test_legacy(void)
{
    struct th_resp r;
    int st;
    T_REQUIRE(g_up);

    /* /ca/types: a fixed body */
    T_REQUIRE(req(g.port, "GET", "/ca/types", NULL, NULL, NULL, NULL, &r) == 0);
    T_EQ(r.status, 200);
    T_STR(r.body, "{\"latency\":\"numeric\",\"string\":\"discrete\",\"number\":\"numeric\"}\n");
    json_decref(body_json(&r));
    th_resp_free(&r);

    /* /ca/metrics: {module: {label, stats: {stat: {label, type:"unused", fields}}}} */
    json_t *m = get_json(g.port, "/ca/metrics", NULL, &st);
    T_EQ(st, 200);
    T_REQUIRE(m != NULL);
    const char *mod;
    json_t *mv;
    json_object_foreach(m, mod, mv)
    {
        T_OK(json_is_string(json_object_get(mv, "label")));
        const char *stat;
        json_t *sv;
        json_object_foreach(json_object_get(mv, "stats"), stat, sv)
        {
            T_OK(json_is_string(json_object_get(sv, "label")));
            T_STR(sget(sv, "type"), "unused");
            const char *fn;
            json_t *fv;
            json_object_foreach(json_object_get(sv, "fields"), fn, fv)
            {
                const char *ty = sget(fv, "type");
                T_OK(json_is_string(json_object_get(fv, "label")));
                T_OK(ty &&
                     (!strcmp(ty, "latency") || !strcmp(ty, "number") || !strcmp(ty, "string")));
            }
        }
    }
    T_STR(sget(json_object_get(m, "syscall"), "label"), "System calls");
    const json_t *sf = json_object_get(
        json_object_get(json_object_get(json_object_get(m, "syscall"), "stats"), "syscalls"),
        "fields");
    T_STR(sget(json_object_get(sf, "latency"), "type"), "latency");
    T_STR(sget(json_object_get(sf, "cputime"), "type"), "latency");
    T_STR(sget(json_object_get(sf, "subsecond"), "type"), "number");
    T_STR(sget(json_object_get(sf, "execname"), "type"), "string");
    T_STR(sget(json_object_get(sf, "pid"), "type"), "string");
    const json_t *tf = json_object_get(
        json_object_get(json_object_get(json_object_get(m, "cpu"), "stats"), "thread_executions"),
        "fields");
    T_STR(sget(json_object_get(tf, "runtime"), "type"), "latency");
    const json_t *df = json_object_get(
        json_object_get(json_object_get(json_object_get(m, "disk"), "stats"), "physio_ops"),
        "fields");
    T_STR(sget(json_object_get(df, "size"), "type"), "number");
    json_decref(m);

    /* /ca/transformations: an object */
    json_t *t = get_json(g.port, "/ca/transformations", NULL, &st);
    T_EQ(st, 200);
    T_OK(json_is_object(t));
    json_decref(t);
}

/* ---- create -------------------------------------------------------------------------------- */

static void test_create_json(void)
{
    T_REQUIRE(g_up);
    int64_t before = real_ms();
    json_t *o = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    int64_t after = real_ms();
    T_REQUIRE(o != NULL);

    check_order(o);
    /* the defaults of §1.4 */
    T_STR(sget(o, "module"), "syscall");
    T_STR(sget(o, "stat"), "syscalls");
    T_OK(json_is_object(json_object_get(o, "predicate")) &&
         json_object_size(json_object_get(o, "predicate")) == 0);
    T_OK(json_is_array(json_object_get(o, "decomposition")) &&
         json_array_size(json_object_get(o, "decomposition")) == 0);
    T_OK(json_is_true(json_object_get(o, "enabled")));
    T_EQ(iget(o, "retention-time"), 600);
    T_EQ(iget(o, "idle-max"), 3600);
    T_OK(json_is_object(json_object_get(o, "transformations")) &&
         json_object_size(json_object_get(o, "transformations")) == 0);
    T_OK(json_is_integer(json_object_get(o, "nsources")));
    T_EQ(iget(o, "nsources"), 0); /* no agent, nothing ingested */
    T_EQ(iget(o, "granularity"), 1);
    T_OK(json_is_false(json_object_get(o, "persist-data")));
    T_OK(json_is_integer(json_object_get(o, "crtime")));
    T_OK(iget(o, "crtime") >= before && iget(o, "crtime") <= after);
    T_STR(sget(o, "value-scope"), "interval");
    check_derived(o, "/ca", "scalar", 1);
    T_OK(json_object_get(o, "warnings") == NULL);

    /* a discrete decomposition */
    json_t *d = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"execname\"]}");
    if (T_OK(d != NULL)) {
        check_order(d);
        check_derived(d, "/ca", "discrete-decomposition", 2);
        /* ids come from one counter */
        T_EQ(strtoll(sget(d, "id"), NULL, 10), strtoll(sget(o, "id"), NULL, 10) + 1);
    }
    /* a numeric one */
    json_t *n = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"latency\"]}");
    if (T_OK(n != NULL)) {
        check_order(n);
        check_derived(n, "/ca", "numeric-decomposition", 2);
    }
    /* both, with a predicate object and every optional property */
    json_t *b = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"execname\",\"latency\"],"
                               "\"predicate\":{\"and\":[{\"eq\":[\"execname\",\"ls\"]},"
                               "{\"gt\":[\"latency\",1000]}]},"
                               "\"granularity\":5,\"retention-time\":120,\"idle-max\":0,"
                               "\"persist-data\":false,\"enabled\":true}");
    if (T_OK(b != NULL)) {
        check_order(b);
        check_derived(b, "/ca", "numeric-decomposition", 3);
        json_t *want = json_loads("{\"and\":[{\"eq\":[\"execname\",\"ls\"]},"
                                  "{\"gt\":[\"latency\",1000]}]}",
                                  0, NULL);
        T_OK(json_equal(json_object_get(b, "predicate"), want));
        json_decref(want);
        char *dec = dumps(json_object_get(b, "decomposition"));
        T_STR(dec, "[\"execname\",\"latency\"]");
        free(dec);
        T_EQ(iget(b, "granularity"), 5);
        T_EQ(iget(b, "retention-time"), 120);
        T_EQ(iget(b, "idle-max"), 0); /* never expires: the operator may */
        T_OK(json_is_false(json_object_get(b, "persist-data")));
    }
    /* "10.5" is 10 (integer parsing), and retention-time/idle-max as strings */
    json_t *g10 = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                                 "\"granularity\":\"10.5\",\"retention-time\":\"3000\","
                                 "\"idle-max\":\"60\",\"persist-data\":\"false\","
                                 "\"enabled\":\"true\"}");
    if (T_OK(g10 != NULL)) {
        T_EQ(iget(g10, "granularity"), 10);
        T_OK(json_is_integer(json_object_get(g10, "granularity")));
        T_EQ(iget(g10, "retention-time"), 3000);
        T_OK(json_is_integer(json_object_get(g10, "retention-time")));
        T_EQ(iget(g10, "idle-max"), 60);
        T_OK(json_is_false(json_object_get(g10, "persist-data")));
        T_OK(json_is_true(json_object_get(g10, "enabled")));
    }
    /* a point metric: value-scope "point" */
    json_t *pt = create(g.port, "{\"module\":\"cpu\",\"stat\":\"usage\"}");
    if (T_OK(pt != NULL)) {
        check_order(pt);
        T_STR(sget(pt, "value-scope"), "point");
        check_derived(pt, "/ca", "scalar", 1);
    }
    json_decref(pt);
    /* with X-API-Version: ca/0.1.8 */
    {
        struct th_resp r;
        const char *hv[] = {"X-API-Version: ca/0.1.8", NULL};
        if (T_OK(req(g.port, "POST", "/ca/instrumentations", JSON,
                     "{\"module\":\"syscall\",\"stat\":\"syscalls\"}", NULL, hv, &r) == 0)) {
            T_EQ(r.status, 201);
            check_cors(&r);
        }
        th_resp_free(&r);
    }
    json_decref(o);
    json_decref(d);
    json_decref(n);
    json_decref(b);
    json_decref(g10);
}

static void test_create_form(void)
{
    char pred[256], body[1024];
    T_REQUIRE(g_up);

    /* predicate as a JSON string, decomposition comma-separated */
    form_enc("{\"eq\":[\"execname\",\"sshd\"]}", pred, sizeof(pred));
    snprintf(body, sizeof(body),
             "module=syscall&stat=syscalls&decomposition=execname%%2Clatency&predicate=%s"
             "&granularity=10.5&retention-time=1200&idle-max=30&persist-data=true&enabled=true",
             pred);
    json_t *o = create_at(g.port, "/ca", FORM, body, NULL);
    T_REQUIRE(o != NULL);
    check_order(o);
    check_derived(o, "/ca", "numeric-decomposition", 3);
    T_STR(sget(o, "module"), "syscall");
    T_STR(sget(o, "stat"), "syscalls");
    json_t *want = json_loads("{\"eq\":[\"execname\",\"sshd\"]}", 0, NULL);
    T_OK(json_equal(json_object_get(o, "predicate"), want)); /* an object, not the string */
    json_decref(want);
    char *dec = dumps(json_object_get(o, "decomposition"));
    T_STR(dec, "[\"execname\",\"latency\"]");
    free(dec);
    T_EQ(iget(o, "granularity"), 10);
    T_EQ(iget(o, "retention-time"), 1200);
    T_OK(json_is_integer(json_object_get(o, "retention-time")));
    T_EQ(iget(o, "idle-max"), 30);
    T_OK(json_is_integer(json_object_get(o, "idle-max")));
    T_OK(json_is_true(json_object_get(o, "persist-data")));
    T_OK(json_is_true(json_object_get(o, "enabled")));
    json_decref(o);

    /* the bare minimum from a form: every default */
    o = create_at(g.port, "/ca", FORM, "module=syscall&stat=syscalls&decomposition=syscall", NULL);
    if (T_OK(o != NULL)) {
        check_order(o);
        check_derived(o, "/ca", "discrete-decomposition", 2);
        T_EQ(iget(o, "granularity"), 1);
        T_EQ(iget(o, "retention-time"), 600);
        T_EQ(iget(o, "idle-max"), 3600);
        T_OK(json_is_false(json_object_get(o, "persist-data")));
        T_OK(json_is_object(json_object_get(o, "predicate")) &&
             json_object_size(json_object_get(o, "predicate")) == 0);
    }
    json_decref(o);
}

struct bad {
    const char *ctype, *body, *msg;
    bool prefix;
};

static void test_create_invalid(void)
{
    char pred_q[128], form_q[512];
    T_REQUIRE(g_up);
    form_enc("{\"eq\":", pred_q, sizeof(pred_q));
    snprintf(form_q, sizeof(form_q), "module=syscall&stat=syscalls&predicate=%s", pred_q);

    const struct bad bad[] = {
        {JSON, "{\"stat\":\"syscalls\"}", "missing value for required field: \"module\"", false},
        {JSON, "{\"module\":\"syscall\"}", "missing value for required field: \"stat\"", false},
        {NULL, NULL, "missing value for required field: \"module\"", false}, /* no body */
        {JSON, "{\"module\":\"syscall\",\"stat\":\"nope\"}",
         "value \"syscall.nope\" for field \"module.stat\" is invalid: not a valid module/stat "
         "pair",
         false},
        {JSON, "{\"module\":\"nope\",\"stat\":\"syscalls\"}",
         "value \"nope.syscalls\" for field \"module.stat\" is invalid: not a valid module/stat "
         "pair",
         false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"bogus\"]}",
         "value \"bogus\" for field \"field\" is invalid: no such field for specified metric",
         false},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"bogus\",\"x\"]}}",
         "value \"bogus\" for field \"field\" is invalid: no such field for specified metric",
         false},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\","
         "\"decomposition\":[\"execname\",\"syscall\"]}",
         "value [\"execname\",\"syscall\"] for field \"decomposition\" is invalid: more than one "
         "discrete decomposition specified",
         false},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\","
         "\"decomposition\":[\"latency\",\"cputime\"]}",
         "value [\"latency\",\"cputime\"] for field \"decomposition\" is invalid: more than one "
         "numeric decomposition specified",
         false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"granularity\":0}",
         "value 0 for field \"granularity\" is invalid: not a positive integer", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"granularity\":7}",
         "value 7 for field \"granularity\" is invalid: must be divisible by 5", false},
        /* CA prints the parsed granularity (parseInt), a number */
        {FORM, "module=syscall&stat=syscalls&granularity=7",
         "value 7 for field \"granularity\" is invalid: must be divisible by 5", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"retention-time\":5}",
         "value 5 for field \"retention-time\" is invalid: minimum is 10", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"retention-time\":3601}",
         "value 3601 for field \"retention-time\" is invalid: maximum for granularity \"1\" is "
         "3600",
         false},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"granularity\":5,"
         "\"retention-time\":18005}",
         "value 18005 for field \"retention-time\" is invalid: maximum for granularity \"5\" is "
         "18000",
         false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":-1}",
         "value -1 for field \"idle-max\" is invalid: minimum is 0", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":604801}",
         "value 604801 for field \"idle-max\" is invalid: maximum is 604800", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":\"abc\"}",
         "value \"abc\" for field \"idle-max\" is invalid: not a number", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":\"maybe\"}",
         "value \"maybe\" for field \"persist-data\" is invalid: must be a boolean", false},
        {FORM, "module=syscall&stat=syscalls&persist-data=maybe",
         "value \"maybe\" for field \"persist-data\" is invalid: must be a boolean", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"enabled\":false}",
         "value false for field \"enabled\" is invalid: unsupported value", false},
        {FORM, "module=syscall&stat=syscalls&enabled=false",
         "value \"false\" for field \"enabled\" is invalid: unsupported value", false},
        {JSON, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":\"{bad\"}",
         "value \"{bad\" for field \"predicate\" is invalid: invalid JSON: ", true},
        /* the value is JSON-encoded, so its quotes are escaped */
        {FORM, form_q,
         "value \"{\\\"eq\\\":\" for field \"predicate\" is invalid: invalid JSON: ", true},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"bogus\":[\"pid\",\"1\"]}}",
         "value {\"bogus\":[\"pid\",\"1\"]} for field \"predicate\" is invalid: invalid key: bogus",
         false},
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":"
         "{\"eq\":[\"execname\",\"a\"],\"ne\":[\"execname\",\"b\"]}}",
         "value {\"eq\":[\"execname\",\"a\"],\"ne\":[\"execname\",\"b\"]} for field \"predicate\" "
         "is invalid: found too many keys: 2. expected one",
         false},
        /* lt on a discrete field: rejected (§3.1, the documented behaviour) */
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"lt\":[\"execname\","
         "\"m\"]}}",
         "value {\"lt\":[\"execname\",\"m\"]} for field \"predicate\" is invalid: ", true},
        /* a numeric field needs a number */
        {JSON,
         "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"gt\":[\"latency\","
         "\"5x\"]}}", /* "5" is 5 ns (units in predicates, Sonde's) */
         "value {\"gt\":[\"latency\",\"5x\"]} for field \"predicate\" is invalid: ", true},
        {JSON, "{\"module\":\"syscall\",", "failed to parse JSON: ", true},
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    int st;

    json_t *before = get_json(g.port, "/ca/instrumentations", NULL, &st);
    T_REQUIRE(before != NULL);
    for (size_t i = 0; i < nbad; i++) {
        struct th_resp r;
        if (!T_OK(req(g.port, "POST", "/ca/instrumentations", bad[i].ctype, bad[i].body, NULL, NULL,
                      &r) == 0))
            continue;
        t_note("case %zu: %s", i, bad[i].body ? bad[i].body : "(no body)");
        check_error(&r, 409, "ECA_INVAL", bad[i].msg, bad[i].prefix);
        t_note("%s", "");
        th_resp_free(&r);
    }
    /* nothing was created, and no id was spent */
    json_t *after = get_json(g.port, "/ca/instrumentations", NULL, &st);
    if (T_OK(after != NULL))
        T_EQ(json_array_size(after), json_array_size(before));
    int64_t maxid = 0;
    size_t i;
    json_t *v;
    json_array_foreach(before, i, v)
    {
        int64_t id = strtoll(sget(v, "id") ? sget(v, "id") : "0", NULL, 10);
        if (id > maxid)
            maxid = id;
    }
    json_t *o = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    if (T_OK(o != NULL))
        T_EQ(strtoll(sget(o, "id"), NULL, 10), maxid + 1);
    json_decref(o);
    json_decref(before);
    json_decref(after);
}

/* ---- list, get, put, delete ---------------------------------------------------------------- */

static void put_expect(const char *path, const char *ctype, const char *body, int status,
                       const char *msg, json_t **out)
{
    struct th_resp r;
    if (!T_OK(req(g.port, "PUT", path, ctype, body, NULL, NULL, &r) == 0))
        return;
    t_note("PUT %s %s", path, body ? body : "");
    if (status == 200) {
        T_EQ(r.status, 200);
        json_t *j = body_json(&r);
        if (j)
            check_order(j);
        if (out)
            *out = j;
        else
            json_decref(j);
    } else {
        check_error(&r, status, "ECA_INVAL", msg, false);
    }
    t_note("%s", "");
    th_resp_free(&r);
}

static void test_crud(void)
{
    char path[128], id[32];
    int st;
    struct th_resp r;
    T_REQUIRE(g_up);

    json_t *o = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"syscall\",\"latency\"],\"granularity\":5}");
    T_REQUIRE(o != NULL);
    snprintf(id, sizeof(id), "%s", sget(o, "id"));
    snprintf(path, sizeof(path), "/ca/instrumentations/%s", id);

    /* list: an array of property objects, this one among them, as GET shows it */
    json_t *list = get_json(g.port, "/ca/instrumentations", NULL, &st);
    T_EQ(st, 200);
    T_REQUIRE(json_is_array(list));
    T_OK(list_has(list, id));
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        check_order(v);
        if (!strcmp(sget(v, "id"), id))
            same_props(v, o);
    }
    json_decref(list);

    json_t *got = get_json(g.port, path, NULL, &st);
    T_EQ(st, 200);
    if (T_OK(got != NULL)) {
        check_order(got);
        same_props(got, o);
    }
    json_decref(got);

    /* PUT the mutable properties (JSON, then a form) */
    json_t *p = NULL;
    put_expect(path, JSON, "{\"retention-time\":1200,\"idle-max\":7200,\"persist-data\":true}", 200,
               NULL, &p);
    if (T_OK(p != NULL)) {
        T_EQ(iget(p, "retention-time"), 1200);
        T_EQ(iget(p, "idle-max"), 7200);
        T_OK(json_is_true(json_object_get(p, "persist-data")));
        T_EQ(iget(p, "granularity"), 5);
        T_STR(sget(p, "id"), id);
        T_EQ(iget(p, "crtime"), iget(o, "crtime"));
        json_decref(p);
        p = NULL;
    }
    got = get_json(g.port, path, NULL, &st);
    if (T_OK(got != NULL)) {
        T_EQ(iget(got, "retention-time"), 1200);
        T_EQ(iget(got, "idle-max"), 7200);
        T_OK(json_is_true(json_object_get(got, "persist-data")));
    }
    json_decref(got);
    put_expect(path, FORM, "retention-time=300&persist-data=false&enabled=true", 200, NULL, &p);
    if (T_OK(p != NULL)) {
        T_EQ(iget(p, "retention-time"), 300);
        T_EQ(iget(p, "idle-max"), 7200);
        T_OK(json_is_false(json_object_get(p, "persist-data")));
        json_decref(p);
        p = NULL;
    }
    /* granularity (and the other immutable properties) cannot change: ignored, as CA did,
     * but the reply says so (a warning each; the same value sent back is none) */
    put_expect(path, JSON,
               "{\"granularity\":10,\"module\":\"disk\",\"stat\":\"physio_ops\","
               "\"decomposition\":[]}",
               200, NULL, &p);
    if (T_OK(p != NULL)) {
        json_t *w = json_object_get(p, "warnings");
        T_EQ(json_array_size(w), 4);
        T_STR(json_string_value(json_array_get(w, 0)),
              "property \"module\" cannot be changed after creation: \"disk\" ignored");
        T_STR(json_string_value(json_array_get(w, 2)),
              "property \"granularity\" cannot be changed after creation: 10 ignored");
        T_EQ(iget(p, "granularity"), 5);
        T_STR(sget(p, "module"), "syscall");
        T_STR(sget(p, "stat"), "syscalls");
        T_EQ(json_array_size(json_object_get(p, "decomposition")), 2);
        T_EQ(iget(p, "retention-time"), 300);
        json_decref(p);
        p = NULL;
    }
    /* invalid changes: 409, nothing changed */
    put_expect(path, JSON, "{\"retention-time\":5}", 409,
               "value 5 for field \"retention-time\" is invalid: minimum is 10", NULL);
    put_expect(path, JSON, "{\"idle-max\":604801}", 409,
               "value 604801 for field \"idle-max\" is invalid: maximum is 604800", NULL);
    put_expect(path, JSON, "{\"idle-max\":-1}", 409,
               "value -1 for field \"idle-max\" is invalid: minimum is 0", NULL);
    put_expect(path, JSON, "{\"persist-data\":\"maybe\"}", 409,
               "value \"maybe\" for field \"persist-data\" is invalid: must be a boolean", NULL);
    put_expect(path, JSON, "{\"enabled\":false}", 409,
               "value false for field \"enabled\" is invalid: unsupported value", NULL);
    got = get_json(g.port, path, NULL, &st);
    if (T_OK(got != NULL)) {
        T_EQ(iget(got, "retention-time"), 300);
        T_EQ(iget(got, "idle-max"), 7200);
        T_OK(json_is_false(json_object_get(got, "persist-data")));
    }
    json_decref(got);

    /* PUT on the collection: an empty 404 */
    if (T_OK(req(g.port, "PUT", "/ca/instrumentations", JSON, "{\"retention-time\":60}", NULL, NULL,
                 &r) == 0))
        is_empty_404(&r);
    th_resp_free(&r);

    /* DELETE: 204 with no body; then it is gone */
    if (T_OK(req(g.port, "DELETE", path, NULL, NULL, NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 204);
        T_EQ(r.len, 0);
        check_cors(&r);
    }
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", path, NULL, NULL, NULL, NULL, &r) == 0))
        is_empty_404(&r);
    th_resp_free(&r);
    if (T_OK(req(g.port, "DELETE", path, NULL, NULL, NULL, NULL, &r) == 0))
        is_empty_404(&r);
    th_resp_free(&r);
    if (T_OK(req(g.port, "PUT", path, JSON, "{\"retention-time\":60}", NULL, NULL, &r) == 0))
        is_empty_404(&r);
    th_resp_free(&r);
    list = get_json(g.port, "/ca/instrumentations", NULL, &st);
    if (T_OK(list != NULL))
        T_OK(!list_has(list, id));
    json_decref(list);
    json_decref(o);
}

/* ---- clone --------------------------------------------------------------------------------- */

static json_t *clone_of(const char *id, const char *ctype, const char *body, int *status)
{
    char path[128], loc[256];
    struct th_resp r;
    json_t *j = NULL;
    snprintf(path, sizeof(path), "/ca/instrumentations/%s/clone", id);
    *status = 0;
    if (!T_OK(req(g.port, "POST", path, ctype, body, NULL, NULL, &r) == 0))
        return NULL;
    *status = r.status;
    if (r.status == 201) {
        j = body_json(&r);
        if (j && T_OK(th_header(&r, "Location", loc, sizeof(loc))))
            T_STR(loc, sget(j, "uri"));
    } else if (r.status == 404) {
        is_empty_404(&r);
    } else {
        T_OKN(false, "clone: %d %.300s", r.status, r.body ? r.body : "");
    }
    th_resp_free(&r);
    return j;
}

/* b equals a except for id, uri, uris (by id) and crtime. */
static void inherits(const json_t *a, const json_t *b)
{
    const char *keys[] = {
        "module",      "stat",         "predicate",      "decomposition", "value-dimension",
        "value-arity", "enabled",      "retention-time", "idle-max",      "transformations",
        "granularity", "persist-data", "value-scope"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        T_OKN(json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i])),
              "property %s differs", keys[i]);
}

static void test_clone(void)
{
    int st;
    T_REQUIRE(g_up);
    json_t *src = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                                 "\"predicate\":{\"eq\":[\"execname\",\"ls\"]},"
                                 "\"decomposition\":[\"execname\",\"latency\"],"
                                 "\"granularity\":5,\"retention-time\":300,\"idle-max\":1200,"
                                 "\"persist-data\":true}");
    T_REQUIRE(src != NULL);
    const char *sid = sget(src, "id");

    /* no body: a copy with a new id */
    json_t *c = clone_of(sid, NULL, NULL, &st);
    T_EQ(st, 201);
    if (T_OK(c != NULL)) {
        check_order(c);
        inherits(src, c);
        check_derived(c, "/ca", "numeric-decomposition", 3);
        T_OK(strtoll(sget(c, "id"), NULL, 10) > strtoll(sid, NULL, 10));
        T_OK(iget(c, "crtime") >= iget(src, "crtime"));
    }

    /* overriding the decomposition recomputes dimension, arity and uris */
    json_t *d = clone_of(sid, JSON, "{\"decomposition\":[\"syscall\"]}", &st);
    T_EQ(st, 201);
    if (T_OK(d != NULL)) {
        check_order(d);
        check_derived(d, "/ca", "discrete-decomposition", 2);
        char *dec = dumps(json_object_get(d, "decomposition"));
        T_STR(dec, "[\"syscall\"]");
        free(dec);
        T_OK(json_equal(json_object_get(d, "predicate"), json_object_get(src, "predicate")));
        T_EQ(iget(d, "granularity"), 5);
        T_EQ(iget(d, "retention-time"), 300);
        T_EQ(iget(d, "idle-max"), 1200);
        T_OK(json_is_true(json_object_get(d, "persist-data")));
        T_OK(strcmp(sget(d, "id"), c ? sget(c, "id") : "") != 0);
    }
    /* form overrides: an empty predicate and decomposition, and another retention */
    json_t *e = clone_of(sid, FORM, "decomposition=&predicate=%7B%7D&retention-time=60", &st);
    T_EQ(st, 201);
    if (T_OK(e != NULL)) {
        check_derived(e, "/ca", "scalar", 1);
        T_EQ(json_array_size(json_object_get(e, "decomposition")), 0);
        T_EQ(json_object_size(json_object_get(e, "predicate")), 0);
        T_EQ(iget(e, "retention-time"), 60);
        T_EQ(iget(e, "granularity"), 5);
        T_EQ(iget(e, "idle-max"), 1200);
    }
    /* a numeric override on its own */
    json_t *f =
        clone_of(sid, JSON, "{\"decomposition\":[\"cputime\"],\"persist-data\":false}", &st);
    T_EQ(st, 201);
    if (T_OK(f != NULL)) {
        check_derived(f, "/ca", "numeric-decomposition", 2);
        T_OK(json_is_false(json_object_get(f, "persist-data")));
    }
    /* invalid overrides are validated like a create */
    struct th_resp r;
    char path[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%s/clone", sid);
    if (T_OK(req(g.port, "POST", path, JSON, "{\"granularity\":7}", NULL, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL",
                    "value 7 for field \"granularity\" is invalid: must be divisible by 5", false);
    th_resp_free(&r);
    if (T_OK(req(g.port, "POST", path, JSON, "{\"decomposition\":[\"execname\",\"syscall\"]}", NULL,
                 NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL",
                    "value [\"execname\",\"syscall\"] for field \"decomposition\" is invalid: "
                    "more than one discrete decomposition specified",
                    false);
    th_resp_free(&r);
    /* the source is unchanged */
    json_t *again = get_instn(g.port, sid, &st);
    if (T_OK(again != NULL))
        same_props(src, again);
    json_decref(again);
    /* of an unknown id: an empty 404 */
    json_t *none = clone_of("999999", JSON, "{}", &st);
    T_EQ(st, 404);
    json_decref(none);
    json_decref(src);
    json_decref(c);
    json_decref(d);
    json_decref(e);
    json_decref(f);
}

/* ---- transport ----------------------------------------------------------------------------- */

/* Unknown properties are ignored, as CA ignored them, but the reply says so in "warnings", with
 * the nearest property when it looks misspelled; create (JSON and form), clone and PUT. */
static void check_warnings(const json_t *o, const char *const *want, size_t n)
{
    const json_t *w = json_object_get(o, "warnings");
    char *txt = json_dumps(w, JSON_ENCODE_ANY | JSON_COMPACT);
    t_note("warnings: %s", txt ? txt : "(absent)");
    free(txt);
    if (n == 0) {
        T_OK(w == NULL);
        return;
    }
    if (!T_OK(json_is_array(w)) || !T_EQ(json_array_size(w), n))
        return;
    for (size_t i = 0; i < n; i++)
        T_STR(json_string_value(json_array_get(w, i)), want[i]);
}

static void test_unknown_props(void)
{
    char path[128];
    int st;
    T_REQUIRE(g_up);
    json_t *o = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decompositon\":[\"latency\"],\"colour\":\"red\"}");
    if (T_OK(o != NULL)) {
        static const char *const w[] = {
            "unknown property \"decompositon\" ignored (did you mean \"decomposition\"?)",
            "unknown property \"colour\" ignored"};
        T_STR(sget(o, "value-arity"), "scalar"); /* ignored: no decomposition */
        check_warnings(o, w, 2);
        /* not kept: a get has none */
        json_t *g2 = get_instn(g.port, sget(o, "id"), &st);
        T_EQ(st, 200);
        check_warnings(g2, NULL, 0);
        json_decref(g2);
    }
    /* a form, case and underscores */
    json_t *f = create_at(g.port, "/ca", FORM,
                          "module=syscall&stat=syscalls&Decomposition=latency&idle_max=60", NULL);
    if (T_OK(f != NULL)) {
        static const char *const w[] = {
            "unknown property \"Decomposition\" ignored (did you mean \"decomposition\"?)",
            "unknown property \"idle_max\" ignored (did you mean \"idle-max\"?)"};
        check_warnings(f, w, 2);
        T_EQ(iget(f, "idle-max"), 3600);
    }
    /* a property object sent back whole: nothing unknown */
    if (o) {
        json_t *back = json_deep_copy(o);
        json_object_del(back, "warnings");
        char *txt = json_dumps(back, JSON_COMPACT);
        json_t *again = create(g.port, txt);
        if (T_OK(again != NULL))
            check_warnings(again, NULL, 0);
        free(txt);
        json_decref(back);
        json_decref(again);
    }
    /* clone: the request's own unknown properties */
    if (o) {
        json_t *c =
            clone_of(sget(o, "id"), JSON, "{\"retention_time\":20,\"stat\":\"syscalls\"}", &st);
        T_EQ(st, 201);
        if (T_OK(c != NULL)) {
            static const char *const w[] = {
                "unknown property \"retention_time\" ignored (did you mean \"retention-time\"?)"};
            check_warnings(c, w, 1);
            T_EQ(iget(c, "retention-time"), 600);
        }
        json_decref(c);
        c = clone_of(sget(o, "id"), NULL, NULL, &st);
        if (T_OK(c != NULL))
            check_warnings(c, NULL, 0);
        json_decref(c);
    }
    /* PUT */
    if (o) {
        json_t *got = NULL;
        snprintf(path, sizeof(path), "/ca/instrumentations/%s", sget(o, "id"));
        put_expect(path, JSON, "{\"idle-max\":120,\"persist_data\":true}", 200, NULL, &got);
        if (T_OK(got != NULL)) {
            static const char *const w[] = {
                "unknown property \"persist_data\" ignored (did you mean \"persist-data\"?)"};
            check_warnings(got, w, 1);
            T_EQ(iget(got, "idle-max"), 120);
            T_OK(json_is_false(json_object_get(got, "persist-data")));
        }
        json_decref(got);
        got = NULL;
        put_expect(path, JSON, "{\"idle-max\":130}", 200, NULL, &got);
        if (T_OK(got != NULL))
            check_warnings(got, NULL, 0);
        json_decref(got);
    }
    json_decref(o);
    json_decref(f);
}

/* Predicate constants with units (Sonde's extension): accepted, kept as given; the wrong kind
 * or garbage is 409 naming the field and the value. */
static void test_predicate_units(void)
{
    struct th_resp r;
    int st;
    T_REQUIRE(g_up);
    json_t *o = create(g.port, "{\"module\":\"fs\",\"stat\":\"logical_ops\","
                               "\"predicate\":{\"and\":[{\"gt\":[\"latency\",\"1.5ms\"]},"
                               "{\"ge\":[\"size\",\"4KiB\"]}]},\"decomposition\":[\"latency\"]}");
    if (T_OK(o != NULL)) {
        char *p = json_dumps(json_object_get(o, "predicate"), JSON_COMPACT);
        T_STR(p, "{\"and\":[{\"gt\":[\"latency\",\"1.5ms\"]},{\"ge\":[\"size\",\"4KiB\"]}]}");
        free(p);
        json_t *g2 = get_instn(g.port, sget(o, "id"), &st);
        T_EQ(st, 200);
        T_OK(json_equal(json_object_get(g2, "predicate"), json_object_get(o, "predicate")));
        json_decref(g2);
    }
    json_decref(o);
    /* a form's predicate is a JSON string; micro as µs */
    o = create_at(g.port, "/ca", FORM,
                  "module=syscall&stat=syscalls&predicate=%7B%22lt%22%3A%5B%22latency%22%2C%22150"
                  "%C2%B5s%22%5D%7D",
                  NULL);
    if (T_OK(o != NULL)) {
        char *p = json_dumps(json_object_get(o, "predicate"), JSON_COMPACT);
        T_STR(p, "{\"lt\":[\"latency\",\"150\xc2\xb5s\"]}");
        free(p);
    }
    json_decref(o);
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"gt\":[\"latency\","
         "\"4KiB\"]}}",
         "value {\"gt\":[\"latency\",\"4KiB\"]} for field \"predicate\" is invalid: \"4KiB\" is a "
         "size, but field \"latency\" is a time: use ns, us (or \xc2\xb5s), ms, s, min or h"},
        {"{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"gt\":[\"latency\","
         "\"soon\"]}}",
         "value {\"gt\":[\"latency\",\"soon\"]} for field \"predicate\" is invalid: \"soon\" is "
         "not a time for field \"latency\": use a number of nanoseconds, or a number with ns, us "
         "(or \xc2\xb5s), ms, s, min or h"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        if (!T_OK(req(g.port, "POST", "/ca/instrumentations", JSON, bad[i].body, NULL, NULL, &r) ==
                  0))
            continue;
        check_error(&r, 409, "ECA_INVAL", bad[i].msg, false);
        th_resp_free(&r);
    }
}

static void test_not_found(void)
{
    struct th_resp r;
    T_REQUIRE(g_up);
    json_t *o = create(g.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    T_REQUIRE(o != NULL);
    char p1[128], p2[128];
    snprintf(p1, sizeof(p1), "/ca/instrumentations/%s/bogus", sget(o, "id"));
    snprintf(p2, sizeof(p2), "/ca/instrumentations/0%s", sget(o, "id"));
    const char *paths[] = {"/ca/bogus",
                           "/nope",
                           "/ca/instrumentations/abc",
                           "/ca/instrumentations/0",
                           "/ca/instrumentations/-1",
                           "/ca/instrumentations/999999",
                           "/ca/instrumentations/999999/value/raw",
                           "/ca/instrumentations/1x",
                           p1,
                           p2,
                           "/ca/customers",
                           "/ca/customers/acme/instrumentations",
                           "/ca/metrics/bogus"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!T_OK(req(g.port, "GET", paths[i], NULL, NULL, NULL, NULL, &r) == 0))
            continue;
        t_note("GET %s: %d %.200s", paths[i], r.status, r.body ? r.body : "");
        is_empty_404(&r);
        t_note("%s", "");
        th_resp_free(&r);
    }
    const char *dels[] = {"/ca/instrumentations/999999", "/ca/instrumentations/abc"};
    for (size_t i = 0; i < 2; i++) {
        if (T_OK(req(g.port, "DELETE", dels[i], NULL, NULL, NULL, NULL, &r) == 0))
            is_empty_404(&r);
        th_resp_free(&r);
    }
    json_decref(o);
}

static void test_options_cors(void)
{
    struct th_resp r;
    T_REQUIRE(g_up);
    const char *paths[] = {"/",
                           "/ca",
                           "/ca/instrumentations",
                           "/ca/instrumentations/999999",
                           "/ca/instrumentations/1/value/heatmap/image",
                           "/nowhere/at/all"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!T_OK(req(g.port, "OPTIONS", paths[i], NULL, NULL, NULL, NULL, &r) == 0))
            continue;
        t_note("OPTIONS %s", paths[i]);
        T_EQ(r.status, 200);
        check_cors(&r);
        t_note("%s", "");
        th_resp_free(&r);
    }
    /* a preflight as browsers send it */
    const char *pre[] = {"Origin: http://example.test", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-type", NULL};
    if (T_OK(req(g.port, "OPTIONS", "/ca/instrumentations", NULL, NULL, NULL, pre, &r) == 0)) {
        T_EQ(r.status, 200);
        check_cors(&r);
    }
    th_resp_free(&r);
}

static void test_body_limits(void)
{
    struct th_resp r;
    char *body;
    const char *head = "{\"module\":\"syscall\",\"stat\":\"syscalls\"";
    T_REQUIRE(g_up);

    /* exactly 4096 bytes: accepted */
    body = malloc(4098);
    T_REQUIRE(body != NULL);
    size_t hl = strlen(head);
    memcpy(body, head, hl);
    memset(body + hl, ' ', 4096 - hl - 1);
    body[4095] = '}';
    body[4096] = '\0';
    T_EQ(strlen(body), 4096);
    if (T_OK(req(g.port, "POST", "/ca/instrumentations", JSON, body, NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 201);
        check_cors(&r);
    }
    th_resp_free(&r);
    /* 4097: 413 */
    memmove(body + 1, body, 4097);
    body[0] = ' ';
    T_EQ(strlen(body), 4097);
    if (T_OK(req(g.port, "POST", "/ca/instrumentations", JSON, body, NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 413);
        check_cors(&r);
    }
    th_resp_free(&r);
    /* a PUT is held to the same bound */
    if (T_OK(req(g.port, "PUT", "/ca/instrumentations/1", JSON, body, NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 413);
        check_cors(&r);
    }
    th_resp_free(&r);
    free(body);

    /* multipart/form-data: 415 */
    const char *mp = "--XyZ\r\nContent-Disposition: form-data; name=\"module\"\r\n\r\nsyscall\r\n"
                     "--XyZ\r\nContent-Disposition: form-data; name=\"stat\"\r\n\r\nsyscalls\r\n"
                     "--XyZ--\r\n";
    if (T_OK(req(g.port, "POST", "/ca/instrumentations", "multipart/form-data; boundary=XyZ", mp,
                 NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 415);
        check_cors(&r);
    }
    th_resp_free(&r);
}

static void test_api_version(void)
{
    struct th_resp r;
    T_REQUIRE(g_up);
    const char *ok1[] = {"X-API-Version: ca/0.1.8", NULL};
    const char *ok2[] = {"x-api-version: ca/0.1.0", NULL};
    const char *bad1[] = {"X-API-Version: 0.1.8", NULL};
    const char *bad2[] = {"X-API-Version: ca/1.2", NULL};
    const char *bad3[] = {"x-api-version: ca/1.2.3.4", NULL};

    if (T_OK(req(g.port, "GET", "/ca", NULL, NULL, NULL, NULL, &r) == 0))
        T_EQ(r.status, 200);
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", "/ca", NULL, NULL, NULL, ok1, &r) == 0))
        T_EQ(r.status, 200);
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", "/ca/instrumentations", NULL, NULL, NULL, ok2, &r) == 0))
        T_EQ(r.status, 200);
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", "/ca", NULL, NULL, NULL, bad1, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "invalid API version string: 0.1.8", false);
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", "/ca", NULL, NULL, NULL, bad2, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "invalid API version string: ca/1.2", false);
    th_resp_free(&r);
    if (T_OK(req(g.port, "GET", "/ca/instrumentations", NULL, NULL, NULL, bad3, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "invalid API version string: ca/1.2.3.4", false);
    th_resp_free(&r);
    /* a create with a bad version creates nothing */
    if (T_OK(req(g.port, "POST", "/ca/instrumentations", JSON,
                 "{\"module\":\"syscall\",\"stat\":\"syscalls\"}", NULL, bad1, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "invalid API version string: 0.1.8", false);
    th_resp_free(&r);
}

/* A second server on a port in use refuses to start (it must not share the port silently) and
 * the first one keeps serving. */
static void test_port_taken(void)
{
    char cmd[1024], out[512], err[4096];
    struct th_resp r;
    T_REQUIRE(g_up);
    snprintf(cmd, sizeof(cmd), "%s serve --no-agent --listen 127.0.0.1:%d --data %s/second", sonde,
             g.port, g.dir);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 1);
    T_OK(strstr(err, "cannot listen on 127.0.0.1:") != NULL);
    T_OK(strstr(err, "Address already in use") != NULL);
    T_OK(strstr(out, "serving on") == NULL);
    if (T_OK(req(g.port, "GET", "/ca", NULL, NULL, NULL, NULL, &r) == 0))
        T_EQ(r.status, 200);
    th_resp_free(&r);
}

/* ---- restart, persistence, reaping --------------------------------------------------------- */

static void test_restart(void)
{
    struct th_serve s;
    int st;
    char keep[sizeof(s.dir)];
    T_REQUIRE(start_server(&s, no_agent, NULL) == 0);
    snprintf(keep, sizeof(keep), "%s", s.dir);

    json_t *a = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    json_t *b = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"execname\"]}");
    json_t *c = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"syscall\",\"latency\"],"
                               "\"predicate\":{\"ne\":[\"syscall\",\"read\"]},"
                               "\"granularity\":10,\"retention-time\":7200,\"idle-max\":0}");
    if (!T_OK(a && b && c)) {
        th_serve_stop(&s);
        json_decref(a);
        json_decref(b);
        json_decref(c);
        return;
    }
    T_STR(sget(a, "id"), "1");
    T_STR(sget(b, "id"), "2");
    T_STR(sget(c, "id"), "3");
    /* change one, delete the middle one */
    struct th_resp r;
    if (T_OK(req(s.port, "PUT", "/ca/instrumentations/1", JSON, "{\"retention-time\":900}", NULL,
                 NULL, &r) == 0))
        T_EQ(r.status, 200);
    th_resp_free(&r);
    if (T_OK(req(s.port, "DELETE", "/ca/instrumentations/2", NULL, NULL, NULL, NULL, &r) == 0))
        T_EQ(r.status, 204);
    th_resp_free(&r);
    json_t *a1 = get_instn(s.port, "1", &st);
    json_t *c1 = get_instn(s.port, "3", &st);
    T_EQ(th_serve_stop(&s), 0);

    T_REQUIRE(start_server(&s, no_agent, keep) == 0);
    json_t *a2 = get_instn(s.port, "1", &st);
    T_EQ(st, 200);
    json_t *c2 = get_instn(s.port, "3", &st);
    T_EQ(st, 200);
    if (T_OK(a1 && a2)) {
        same_props(a1, a2);
        T_EQ(iget(a2, "retention-time"), 900);
    }
    if (T_OK(c1 && c2))
        same_props(c1, c2);
    json_t *b2 = get_instn(s.port, "2", &st);
    T_EQ(st, 404);
    json_decref(b2);
    json_t *list = get_json(s.port, "/ca/instrumentations", NULL, &st);
    if (T_OK(list != NULL))
        T_EQ(json_array_size(list), 2);
    json_decref(list);
    /* ids go on increasing: none is reused */
    json_t *d = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    if (T_OK(d != NULL))
        T_STR(sget(d, "id"), "4");
    /* a second restart keeps counting */
    T_EQ(th_serve_stop(&s), 0);
    if (T_OK(start_server(&s, no_agent, keep) == 0)) {
        json_t *e = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
        if (T_OK(e != NULL))
            T_STR(sget(e, "id"), "5");
        json_decref(e);
        T_EQ(th_serve_stop(&s), 0);
    }
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(a1);
    json_decref(c1);
    json_decref(a2);
    json_decref(c2);
    json_decref(d);
}

static void test_persist(void)
{
    struct th_serve s;
    char keep[sizeof(s.dir)], frames[2048];
    T_REQUIRE(start_server(&s, no_agent, NULL) == 0);
    snprintf(keep, sizeof(keep), "%s", s.dir);

    json_t *p = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"persist-data\":true}");
    json_t *h = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"latency\"],\"persist-data\":true}");
    json_t *n = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    if (!T_OK(p && h && n)) {
        th_serve_stop(&s);
        json_decref(p);
        json_decref(h);
        json_decref(n);
        return;
    }
    int64_t t0 = (int64_t)time(NULL) - 30;
    snprintf(frames, sizeof(frames),
             "[{\"id\":\"%s\",\"host\":\"h1\",\"t\":%" PRId64 ",\"arity\":\"scalar\",\"value\":7},"
             "{\"id\":\"%s\",\"host\":\"h1\",\"t\":%" PRId64
             ",\"arity\":\"numeric-decomposition\",\"value\":[[[100,109],3]]},"
             "{\"id\":\"%s\",\"host\":\"h1\",\"t\":%" PRId64 ",\"arity\":\"scalar\",\"value\":5}]",
             sget(p, "id"), t0, sget(h, "id"), t0, sget(n, "id"), t0);
    ingest(s.port, frames, 3);
    json_t *v = raw_value(s.port, sget(p, "id"), t0, 1);
    T_EQ(json_integer_value(v), 7);
    json_decref(v);
    v = raw_value(s.port, sget(n, "id"), t0, 1);
    T_EQ(json_integer_value(v), 5);
    json_decref(v);

    /* restart: every instrumentation's data of its retention is back (the store writes the raw
     * tier of all of them; persist-data decides only the rollups beyond the retention) */
    T_EQ(th_serve_stop(&s), 0);
    T_REQUIRE(start_server(&s, no_agent, keep) == 0);
    v = raw_value(s.port, sget(p, "id"), t0, 1);
    T_OK(json_is_integer(v));
    T_EQ(json_integer_value(v), 7);
    json_decref(v);
    v = raw_value(s.port, sget(h, "id"), t0, 1);
    char *txt = dumps(v);
    T_STR(txt, "[[[100,109],3]]");
    free(txt);
    json_decref(v);
    v = raw_value(s.port, sget(n, "id"), t0, 1);
    T_EQ(json_integer_value(v), 5);
    json_decref(v);

    /* persist-data off keeps the retention's data (no rollups): after a restart it is there */
    struct th_resp r;
    char path[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%s", sget(p, "id"));
    if (T_OK(req(s.port, "PUT", path, JSON, "{\"persist-data\":false}", NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 200);
        json_t *j = body_json(&r);
        if (j)
            T_OK(json_is_false(json_object_get(j, "persist-data")));
        json_decref(j);
    }
    th_resp_free(&r);
    T_EQ(th_serve_stop(&s), 0);
    T_REQUIRE(start_server(&s, no_agent, keep) == 0);
    int st;
    json_t *pp = get_instn(s.port, sget(p, "id"), &st);
    if (T_OK(pp != NULL))
        T_OK(json_is_false(json_object_get(pp, "persist-data")));
    json_decref(pp);
    v = raw_value(s.port, sget(p, "id"), t0, 1);
    T_EQ(json_integer_value(v), 7);
    json_decref(v);
    v = raw_value(s.port, sget(h, "id"), t0, 1); /* the other persisted one is untouched */
    txt = dumps(v);
    T_STR(txt, "[[[100,109],3]]");
    free(txt);
    json_decref(v);
    T_EQ(th_serve_stop(&s), 0);
    json_decref(p);
    json_decref(h);
    json_decref(n);
}

static void test_idle_reap(void)
{
    struct th_serve s;
    int st;
    T_REQUIRE(start_server(&s, no_agent, NULL) == 0);
    json_t *a = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":2}");
    double t0 = th_now_ms();
    json_t *b = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":2}");
    json_t *z = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":0}");
    if (!T_OK(a && b && z)) {
        th_serve_stop(&s);
        json_decref(a);
        json_decref(b);
        json_decref(z);
        return;
    }
    double gone_at = -1;
    /* poll b (an access), list (not an access) until a is reaped; bounded to 8 s */
    for (int k = 0; k < 64 && th_now_ms() - t0 < 8000; k++) {
        json_t *bb = get_instn(s.port, sget(b, "id"), &st);
        T_EQ(st, 200);
        json_decref(bb);
        json_t *list = get_json(s.port, "/ca/instrumentations", NULL, &st);
        bool has = list && list_has(list, sget(a, "id"));
        json_decref(list);
        if (!has) {
            gone_at = th_now_ms() - t0;
            break;
        }
        th_sleep_ms(250);
    }
    if (T_OKN(gone_at >= 0, "instrumentation with idle-max 2 still there after 8 s"))
        T_OKN(gone_at >= 1500 && gone_at <= 6000, "reaped after %.0f ms", gone_at);
    /* the polled one and the one with idle-max 0 stay */
    json_t *bb = get_instn(s.port, sget(b, "id"), &st);
    T_EQ(st, 200);
    json_decref(bb);
    json_t *zz = get_instn(s.port, sget(z, "id"), &st);
    T_EQ(st, 200);
    json_decref(zz);
    json_t *aa = get_instn(s.port, sget(a, "id"), &st);
    T_EQ(st, 404);
    json_decref(aa);
    T_EQ(th_serve_stop(&s), 0);
    json_decref(a);
    json_decref(b);
    json_decref(z);
}

/* ---- tenants ------------------------------------------------------------------------------- */

#define OP_TOK   "operator-secret-1"
#define ACME_TOK "acme-token-12345"
#define BETA_TOK "beta-token-67890"

static int start_tenants(struct th_serve *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tenants-ca-%d.json", t_outdir(), (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "{\"operator\":{\"token\":\"" OP_TOK "\"},\"tenants\":{"
               "\"acme\":{\"token\":\"" ACME_TOK "\",\"cgroups\":[\"/acme.slice\"]},"
               "\"beta\":{\"token\":\"" BETA_TOK "\",\"cgroups\":[\"/beta.slice\"]}}}\n");
    fclose(f);
    const char *extra[] = {"--no-agent", "--tenants", path, NULL};
    return start_server(s, extra, NULL);
}

static int status_of(int port, const char *method, const char *path, const char *token,
                     const char *body)
{
    struct th_resp r;
    int st = 0;
    if (req(port, method, path, body ? JSON : NULL, body, token, NULL, &r) == 0) {
        st = r.status;
        check_cors(&r);
        if (st == 404)
            T_EQ(r.len, 0);
    }
    th_resp_free(&r);
    return st;
}

static void test_tenant_auth(void)
{
    struct th_serve s;
    T_REQUIRE(start_tenants(&s) == 0);
    struct th_resp r;

    /* the operator scope: the operator's token only */
    if (T_OK(req(s.port, "GET", "/ca", NULL, NULL, NULL, NULL, &r) == 0)) {
        T_EQ(r.status, 401);
        check_cors(&r);
    }
    th_resp_free(&r);
    T_EQ(status_of(s.port, "GET", "/ca", "wrong-token-000", NULL), 401);
    T_EQ(status_of(s.port, "GET", "/ca", ACME_TOK, NULL), 403);
    T_EQ(status_of(s.port, "GET", "/ca/instrumentations", ACME_TOK, NULL), 403);
    T_EQ(status_of(s.port, "POST", "/ca/instrumentations", ACME_TOK,
                   "{\"module\":\"syscall\",\"stat\":\"syscalls\"}"),
         403);
    T_EQ(status_of(s.port, "GET", "/ca", OP_TOK, NULL), 200);
    T_EQ(status_of(s.port, "GET", "/ca/instrumentations", OP_TOK, NULL), 200);
    /* a tenant's scope: its own token (or the operator's) */
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations", NULL, NULL), 401);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations", ACME_TOK, NULL), 200);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations", OP_TOK, NULL), 200);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme", ACME_TOK, NULL), 200);
    /* another tenant's scope does not exist for it */
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations", BETA_TOK, NULL), 404);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme", BETA_TOK, NULL), 404);
    /* nor does an unknown tenant, even for the operator */
    T_EQ(status_of(s.port, "GET", "/ca/customers/nobody/instrumentations", OP_TOK, NULL), 404);
    /* OPTIONS needs no token */
    T_EQ(status_of(s.port, "OPTIONS", "/ca/customers/acme/instrumentations", NULL, NULL), 200);

    /* a tenant's describe: only metrics that can be held to its containers */
    int st;
    json_t *d = get_json(s.port, "/ca/customers/acme", ACME_TOK, &st);
    if (T_OK(d != NULL)) {
        const json_t *metrics = json_object_get(d, "metrics");
        T_OK(find_metric(metrics, "syscall", "syscalls") != NULL);
        T_OK(find_metric(metrics, "disk", "physio_ops") == NULL);
        size_t i;
        json_t *m;
        json_array_foreach(metrics, i, m)
        {
            T_OK(array_has(json_object_get(m, "fields"), "container"));
        }
    }
    json_decref(d);
    T_EQ(th_serve_stop(&s), 0);
}

static void test_tenant_isolation(void)
{
    struct th_serve s;
    int st;
    T_REQUIRE(start_tenants(&s) == 0);
    const char *mk = "{\"module\":\"syscall\",\"stat\":\"syscalls\"}";

    json_t *a1 = create_at(s.port, "/ca/customers/acme", JSON, mk, ACME_TOK);
    json_t *a2 = create_at(s.port, "/ca/customers/acme", FORM,
                           "module=syscall&stat=syscalls&decomposition=execname", ACME_TOK);
    json_t *b1 = create_at(s.port, "/ca/customers/beta", JSON, mk, BETA_TOK);
    json_t *g1 = create_at(s.port, "/ca", JSON, mk, OP_TOK);
    T_REQUIRE(a1 && a2 && b1 && g1);
    /* each tenant has its own counter from 1; uris under its scope */
    T_STR(sget(a1, "id"), "1");
    T_STR(sget(a2, "id"), "2");
    T_STR(sget(b1, "id"), "1");
    T_STR(sget(g1, "id"), "1");
    check_order(a1);
    check_derived(a1, "/ca/customers/acme", "scalar", 1);
    check_derived(a2, "/ca/customers/acme", "discrete-decomposition", 2);
    check_derived(b1, "/ca/customers/beta", "scalar", 1);

    /* a tenant sees its own only */
    json_t *l = get_json(s.port, "/ca/customers/acme/instrumentations", ACME_TOK, &st);
    if (T_OK(l != NULL)) {
        T_EQ(json_array_size(l), 2);
        T_STR(sget(json_array_get(l, 0), "uri"), "/ca/customers/acme/instrumentations/1");
    }
    json_decref(l);
    l = get_json(s.port, "/ca/customers/beta/instrumentations", BETA_TOK, &st);
    if (T_OK(l != NULL))
        T_EQ(json_array_size(l), 1);
    json_decref(l);
    /* beta cannot reach acme's: its scope, or acme's ids under its own scope */
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations/1", BETA_TOK, NULL), 404);
    T_EQ(status_of(s.port, "DELETE", "/ca/customers/acme/instrumentations/1", BETA_TOK, NULL), 404);
    T_EQ(status_of(s.port, "PUT", "/ca/customers/acme/instrumentations/1", BETA_TOK,
                   "{\"idle-max\":60}"),
         404);
    T_EQ(status_of(s.port, "POST", "/ca/customers/acme/instrumentations/1/clone", BETA_TOK, "{}"),
         404);
    T_EQ(
        status_of(s.port, "GET", "/ca/customers/acme/instrumentations/1/value/raw", BETA_TOK, NULL),
        404);
    T_EQ(status_of(s.port, "GET", "/ca/customers/beta/instrumentations/2", BETA_TOK, NULL), 404);
    T_EQ(status_of(s.port, "GET", "/ca/customers/beta/instrumentations/1", BETA_TOK, NULL), 200);
    /* nor are tenants' ids the operator's global ones */
    T_EQ(status_of(s.port, "GET", "/ca/instrumentations/2", OP_TOK, NULL), 404);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations/2", OP_TOK, NULL), 200);

    /* the global list holds the global scope; ?all=true every scope */
    l = get_json(s.port, "/ca/instrumentations", OP_TOK, &st);
    if (T_OK(l != NULL)) {
        T_EQ(json_array_size(l), 1);
        T_STR(sget(json_array_get(l, 0), "uri"), "/ca/instrumentations/1");
    }
    json_decref(l);
    l = get_json(s.port, "/ca/instrumentations?all=true", OP_TOK, &st);
    if (T_OK(l != NULL)) {
        T_EQ(json_array_size(l), 4);
        const char *want[] = {"/ca/instrumentations/1", "/ca/customers/acme/instrumentations/1",
                              "/ca/customers/acme/instrumentations/2",
                              "/ca/customers/beta/instrumentations/1"};
        for (size_t w = 0; w < 4; w++) {
            bool found = false;
            size_t i;
            json_t *v;
            json_array_foreach(l, i, v)
            {
                found |= sget(v, "uri") && !strcmp(sget(v, "uri"), want[w]);
            }
            T_OKN(found, "?all=true lacks %s", want[w]);
        }
    }
    json_decref(l);
    /* ?all=true means nothing in a tenant's scope */
    l = get_json(s.port, "/ca/customers/beta/instrumentations?all=true", BETA_TOK, &st);
    if (T_OK(l != NULL))
        T_EQ(json_array_size(l), 1);
    json_decref(l);

    /* delete in a tenant's scope */
    T_EQ(status_of(s.port, "DELETE", "/ca/customers/acme/instrumentations/2", ACME_TOK, NULL), 204);
    T_EQ(status_of(s.port, "GET", "/ca/customers/acme/instrumentations/2", ACME_TOK, NULL), 404);
    T_EQ(th_serve_stop(&s), 0);
    json_decref(a1);
    json_decref(a2);
    json_decref(b1);
    json_decref(g1);
}

static void test_tenant_rules(void)
{
    struct th_serve s;
    struct th_resp r;
    T_REQUIRE(start_tenants(&s) == 0);
    const char *mk = "{\"module\":\"syscall\",\"stat\":\"syscalls\"}";
    const char *path = "/ca/customers/acme/instrumentations";

    /* metrics without a container field are not a tenant's */
    if (T_OK(req(s.port, "POST", path, JSON, "{\"module\":\"disk\",\"stat\":\"physio_ops\"}",
                 ACME_TOK, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL",
                    "value \"disk.physio_ops\" for field \"module.stat\" is invalid: not a valid "
                    "module/stat pair",
                    false);
    th_resp_free(&r);
    /* (the operator may) */
    json_t *op =
        create_at(s.port, "/ca", JSON, "{\"module\":\"disk\",\"stat\":\"physio_ops\"}", OP_TOK);
    T_OK(op != NULL);
    json_decref(op);
    /* idle-max 0: never expiring is the operator's privilege */
    if (T_OK(req(s.port, "POST", path, JSON,
                 "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"idle-max\":0}", ACME_TOK, NULL,
                 &r) == 0))
        check_error(&r, 409, "ECA_INVAL",
                    "value 0 for field \"idle-max\" is invalid: zero not allowed", false);
    th_resp_free(&r);

    /* the quota: 10 live instrumentations */
    json_t *first = NULL;
    for (int i = 0; i < 10; i++) {
        json_t *o = create_at(s.port, "/ca/customers/acme", JSON, mk, ACME_TOK);
        if (!T_OK(o != NULL))
            break;
        char want[8];
        snprintf(want, sizeof(want), "%d", i + 1);
        T_STR(sget(o, "id"), want);
        if (i == 0)
            first = o;
        else
            json_decref(o);
    }
    if (T_OK(req(s.port, "POST", path, JSON, mk, ACME_TOK, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "only 10 instrumentations allowed", false);
    th_resp_free(&r);
    /* a clone counts too */
    if (T_OK(req(s.port, "POST", "/ca/customers/acme/instrumentations/1/clone", JSON, "{}",
                 ACME_TOK, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "only 10 instrumentations allowed", false);
    th_resp_free(&r);
    /* the operator creating in acme's scope is held to it as well */
    if (T_OK(req(s.port, "POST", path, JSON, mk, OP_TOK, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL", "only 10 instrumentations allowed", false);
    th_resp_free(&r);
    /* another tenant is not affected */
    json_t *b = create_at(s.port, "/ca/customers/beta", JSON, mk, BETA_TOK);
    T_OK(b != NULL);
    json_decref(b);
    /* a tenant's PUT of idle-max 0 is refused too */
    if (T_OK(req(s.port, "PUT", "/ca/customers/acme/instrumentations/1", JSON, "{\"idle-max\":0}",
                 ACME_TOK, NULL, &r) == 0))
        check_error(&r, 409, "ECA_INVAL",
                    "value 0 for field \"idle-max\" is invalid: zero not allowed", false);
    th_resp_free(&r);
    /* after a delete there is room again; the failed creates spent no id */
    T_EQ(status_of(s.port, "DELETE", "/ca/customers/acme/instrumentations/3", ACME_TOK, NULL), 204);
    json_t *o = create_at(s.port, "/ca/customers/acme", JSON, mk, ACME_TOK);
    if (T_OK(o != NULL))
        T_STR(sget(o, "id"), "11");
    json_decref(o);
    json_decref(first);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- the local agent ----------------------------------------------------------------------- */

static void test_agent(void)
{
    struct th_serve s;
    char body[512], path[256];
    int st;
    if (geteuid() != 0) {
        t_skip("needs root for the BPF agent");
        return;
    }
    T_REQUIRE(start_server(&s, NULL, NULL) == 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"syscall\"],"
             "\"predicate\":{\"eq\":[\"pid\",\"%d\"]}}",
             (int)getpid());
    json_t *o = create(s.port, body);
    if (!T_OK(o != NULL)) {
        th_serve_stop(&s);
        return;
    }
    check_order(o);
    check_derived(o, "/ca", "discrete-decomposition", 2);
    char *w = dumps(json_object_get(o, "warnings"));
    T_OKN(json_object_get(o, "warnings") == NULL, "the agent could not run it: %s", w);
    free(w);
    th_sleep_ms(500);
    /* N getppid calls within one second, then the value of that second */
    const int N = 777;
    time_t s0;
    do {
        s0 = time(NULL);
        th_sleep_ms(20);
    } while (time(NULL) == s0);
    s0 = time(NULL);
    for (int i = 0; i < N; i++)
        syscall(SYS_getppid);
    time_t s1 = time(NULL);
    th_sleep_ms(1500);
    json_t *v = raw_value(s.port, sget(o, "id"), (int64_t)s0, (int)(s1 - s0 + 1));
    if (T_OK(json_is_object(v))) {
        char *t = dumps(v);
        T_OKN(json_integer_value(json_object_get(v, "getppid")) == N, "value %s", t);
        free(t);
    }
    json_decref(v);
    /* this host is the one source */
    json_t *got = get_instn(s.port, sget(o, "id"), &st);
    if (T_OK(got != NULL)) {
        T_EQ(iget(got, "nsources"), 1);
        T_OK(json_object_get(got, "warnings") == NULL);
    }
    json_decref(got);
    snprintf(path, sizeof(path), "/ca/instrumentations/%s", sget(o, "id"));
    T_EQ(status_of(s.port, "DELETE", path, NULL, NULL), 204);
    T_EQ(th_serve_stop(&s), 0);
    json_decref(o);
}

int main(int argc, char **argv)
{
    /* argv[1] is the sonde binary; a case-name filter may follow */
    t_init(argc - 1, argv + 1);
    sonde = argc > 1 ? argv[1] : "sonde";
    g_up = start_server(&g, no_agent, NULL) == 0;
    if (!g_up)
        fprintf(stderr, "test_serve_ca: cannot start the shared server\n");

    t_run("describe", test_describe);
    t_run("legacy_metrics_types", test_legacy);
    t_run("create_json", test_create_json);
    t_run("create_form", test_create_form);
    t_run("create_invalid", test_create_invalid);
    t_run("list_get_put_delete", test_crud);
    t_run("clone", test_clone);
    t_run("unknown_properties_warned", test_unknown_props);
    t_run("predicate_units", test_predicate_units);
    t_run("not_found", test_not_found);
    t_run("options_cors", test_options_cors);
    t_run("body_limits", test_body_limits);
    t_run("api_version", test_api_version);
    t_run("port_taken", test_port_taken);
    if (g_up)
        th_serve_stop(&g);

    t_run("restart_ids_definitions", test_restart);
    t_run("persist_data", test_persist);
    t_run("idle_reap", test_idle_reap);
    t_run("tenant_auth", test_tenant_auth);
    t_run("tenant_isolation", test_tenant_isolation);
    t_run("tenant_rules", test_tenant_rules);
    t_run("agent", test_agent);
    return t_done();
}
