/*
 * Fuzz target: the whole HTTP API as a function (sn_api_handle(), src/api/api.h) on one
 * in-process server without HTTP and without an agent (the --no-agent set-up: no collector,
 * no HTTP server), with a few instrumentations of every arity created through the handler
 * and fed frames through ingest, so value and heatmap paths have data.
 *
 * The input picks a request: byte 0 the method, byte 1 a route from the list below, byte 2 the
 * Content-Type, byte 3 flags (bits 0-2 the Authorization header, bit 3 whether the server has
 * tenants for this request, bit 4 a non-loopback peer, bit 5 an X-API-Version header, bit 6
 * "Accept: image/png", bit 7 every '$' in the query replaced by the current Unix time, to reach
 * intervals near now and the long poll); then, separated by '\n': the route's fuzzed segments
 * (split at ','), the query string, a header value (the raw Authorization or X-API-Version),
 * and the body (everything after the third '\n').
 *
 * Properties: no crash, leak or undefined behaviour; every request is answered (a parked one
 * is called again past its deadline, as the server's parker does, and must then answer) with a
 * status in 100..599; an empty body has no Content-Type and a body has one; JSON bodies parse
 * as JSON and end in a newline; PNG bodies start with PNG's signature; 201 has a Location.
 * After a request that may change the server (anything but GET, HEAD and OPTIONS) the server
 * is put back as it was set up, so every input starts from the same state. With the
 * environment variable FUZZ_API_VERBOSE set, each request and its answer are printed (to see
 * what the seeds reach).
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/log.h"
#include "fuzz_check.h"
#include "serve/flow.h"
#include "serve/server.h"
#include "serve/tenants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sn_server *srv;
static struct sn_tenants *tenants;

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};

/* %t: a tenant (default "acme"), %i: an instrumentation id ("1"), %s: a segment ("x") */
static const char *const routes[] = {
    "/",
    "/ca",
    "/ca/",
    "/metrics",
    "/ca/metrics",
    "/ca/types",
    "/ca/transformations",
    "/ca/docs",
    "/ca/admin/status",
    "/ca/ingest",
    "/ca/instrumentations",
    "/ca/instrumentations/%i",
    "/ca/instrumentations/%i/clone",
    "/ca/instrumentations/%i/value",
    "/ca/instrumentations/%i/value/",
    "/ca/instrumentations/%i/value/raw",
    "/ca/instrumentations/%i/value/heatmap",
    "/ca/instrumentations/%i/value/heatmap/image",
    "/ca/instrumentations/%i/value/heatmap/details",
    "/ca/instrumentations/%i/value/heatmap/average",
    "/ca/instrumentations/%i/value/heatmap/percentile",
    "/ca/customers/%t",
    "/ca/customers/%t/instrumentations",
    "/ca/customers/%t/instrumentations/%i",
    "/ca/customers/%t/instrumentations/%i/clone",
    "/ca/customers/%t/instrumentations/%i/value",
    "/ca/customers/%t/instrumentations/%i/value/raw",
    "/ca/customers/%t/instrumentations/%i/value/heatmap/image",
    "/ca/customers/%t/instrumentations/%i/value/heatmap/details",
    "/ca/customers/%t/instrumentations/%i/value/heatmap/percentile",
    "/ca/customers/%t/ingest",
    "/ca/customers/%t/metrics",
    "/%t/analytics",
    "/%t/analytics/instrumentations",
    "/%t/analytics/instrumentations/%i",
    "/%t/analytics/instrumentations/%i/value/raw",
    "/%t/analytics/instrumentations/%i/value/heatmap/image",
    "/%t/analytics/instrumentations/%i/value/heatmap/details",
    "/%s",
    "/ca/%s",
    "/ca/%s/%s",
    "/ca/instrumentations/%i/%s/%s/%s",
    "/ca/customers/%t/%s",
    "%s",
    "/ui/%s", /* the web UI's files (src/api/ui.c) */
    "/ui/%s/%s",
    "/ca/dashboards", /* dashboards (src/api/dashboards.c) */
    "/ca/dashboards/%s",
    "/ca/customers/%t/dashboards",
    "/ca/customers/%t/dashboards/%s",
    "/ca/recorder/recordings", /* disk mode's recordings (src/api/recordings.c) */
    "/ca/recorder/recordings/%s",
    "/ca/recorder/recordings/%s/archive",
    "/ca/customers/%t/recorder/recordings/%s",
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *const ctypes[] = {
    NULL,
    "application/json",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "application/x-sonde-frames",
    "text/plain",
    "application/json; charset=utf-8",
    "multipart/form-data; boundary=x",
};
#define NCTYPES (sizeof(ctypes) / sizeof(ctypes[0]))

static const char *const auths[] = {
    NULL,
    "Bearer operator-token",
    "Bearer acme-token-1",
    "Bearer beta-token-2",
    "Bearer nope",
    "bearer acme-token-1",
    "Basic b3BlcmF0b3I=",
    NULL /* the input's header field */,
};

static const char tenants_json[] =
    "{\"operator\":{\"token\":\"operator-token\"},"
    "\"tenants\":{\"acme\":{\"token\":\"acme-token-1\",\"cgroups\":[\"/acme.slice\"]},"
    "\"beta\":{\"token\":\"beta-token-2\",\"cgroups\":[\"/beta.slice\",\"/shared/b\"]}}}";

/* ------------------------------------------------------------------------------------------
 * One request
 */

static void check_resp(const struct sn_req *req, const struct sn_resp *resp)
{
    FUZZ_CHECK(resp->status >= 100 && resp->status <= 599);
    if (resp->status == 201)
        FUZZ_CHECK(resp->location != NULL);
    if (resp->len == 0) { /* an empty body has no type */
        FUZZ_CHECK(resp->ctype == NULL);
        return;
    }
    FUZZ_CHECK(resp->body != NULL && resp->ctype != NULL);
    if (strncmp(resp->ctype, "application/json", 16) == 0) {
        json_error_t e;
        json_t *j = json_loadb((const char *)resp->body, resp->len, JSON_DECODE_ANY, &e);
        if (!j)
            fprintf(stderr, "%s %s: %d not JSON (%s): %.*s\n", req->method, req->path, resp->status,
                    e.text, (int)(resp->len > 500 ? 500 : resp->len), (const char *)resp->body);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(resp->body[resp->len - 1] == '\n');
        json_decref(j);
    } else if (strcmp(resp->ctype, "image/png") == 0) {
        FUZZ_CHECK(resp->len > 8 && memcmp(resp->body, "\x89PNG\r\n\x1a\n", 8) == 0);
    }
}

/* Runs req to its answer: parked requests are called again past their deadline. */
static void run(struct sn_req *req, struct sn_resp *resp)
{
    req->t0_ms = sn_now_ms();
    req->now_ms = req->t0_ms;
    resp->park_until_ms = 0;
    sn_api_handle(srv, req, resp);
    for (int k = 0; resp->status == 0 && k < 3; k++) {
        FUZZ_CHECK(resp->park_until_ms > 0);
        FUZZ_CHECK(resp->park_until_ms <= req->t0_ms + 5000 + 1000);
        req->now_ms = resp->park_until_ms; /* the parker's call at the deadline */
        resp->park_until_ms = 0;
        sn_api_handle(srv, req, resp);
    }
    FUZZ_CHECK(resp->status != 0);
    if (getenv("FUZZ_API_VERBOSE")) /* what the seeds reach */
        fprintf(stderr, "%s %s -> %d %.*s\n", req->method, req->path, resp->status,
                (int)(resp->ctype && strncmp(resp->ctype, "application/json", 16) == 0 &&
                              resp->len < 300
                          ? resp->len
                          : 0),
                resp->body ? (const char *)resp->body : "");
    check_resp(req, resp);
}

/* A request made by the set-up; must answer want. */
static void setup_call(const char *method, const char *path, const char *ctype, const char *auth,
                       const char *body, int want)
{
    struct sn_req req = {.method = method,
                         .path = path,
                         .ctype = ctype,
                         .auth = auth,
                         .body = (const unsigned char *)body,
                         .body_len = body ? strlen(body) : 0,
                         .loopback = true};
    struct sn_resp resp = {0};
    run(&req, &resp);
    if (resp.status != want)
        fprintf(stderr, "fuzz_api set-up: %s %s: %d, want %d: %.*s\n", method, path, resp.status,
                want, (int)resp.len, resp.body ? (const char *)resp.body : "");
    FUZZ_CHECK(resp.status == want);
    sn_req_fini(&req);
    sn_resp_fini(&resp);
}

/* ------------------------------------------------------------------------------------------
 * The server, and putting it back as it was
 */

static const char *const creates[] = {
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"]}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\",\"latency\"]}",
    ("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\"],"
     "\"granularity\":10}"),
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":true}",
    "{\"module\":\"memory\",\"stat\":\"rss\",\"decomposition\":[\"hostname\"]}",
};
#define NCREATES (sizeof(creates) / sizeof(creates[0]))

static void remove_tree(const char *dir);

static void reset(void)
{
    static char frames[65536];
    char dash[600], why[512];
    size_t at = 0;
    int64_t now = sn_now();

    snprintf(dash, sizeof(dash), "%s/dashboards", srv->datadir);
    remove_tree(dash);
    while (srv->n > 0)
        FUZZ_CHECK(sn_server_remove(srv, srv->insts[srv->n - 1]->scope, srv->insts[srv->n - 1]->id,
                                    why, sizeof(why)) == 0);
    json_object_clear(srv->next_ids);
    srv->tenants = tenants;
    for (size_t i = 0; i < NCREATES; i++)
        setup_call("POST", "/ca/instrumentations", "application/json", "Bearer operator-token",
                   creates[i], 201);
    setup_call("POST", "/ca/customers/acme/instrumentations", "application/json",
               "Bearer acme-token-1", creates[0], 201);
    setup_call("PUT", "/ca/dashboards/ops", "application/json", "Bearer operator-token",
               "{\"panels\":[{\"instrumentation\":1,\"w\":2}]}", 201);
    setup_call("PUT", "/ca/customers/acme/dashboards/mine", "application/json",
               "Bearer acme-token-1", "{\"panels\":[]}", 201);
    /* frames for the last 30 seconds, from two hosts */
    for (int64_t t = now - 30; t < now; t++) {
        for (int h = 0; h < 2; h++) {
            at += (size_t)snprintf(
                frames + at, sizeof(frames) - at,
                "{\"id\":\"1\",\"host\":\"h%d\",\"t\":%lld,\"arity\":\"numeric-decomposition\","
                "\"value\":[[[2000000,2099999],%d],[[100,109],1]]}\n"
                "{\"id\":\"2\",\"host\":\"h%d\",\"t\":%lld,\"arity\":\"numeric-decomposition\","
                "\"value\":{\"sh\":[[[3000,3099],2]],\"nginx\":[[[2000000,2099999],1]]}}\n",
                h, (long long)t, 1 + (int)(t % 7), h, (long long)t);
            if (t % 3 == 0)
                at += (size_t)snprintf(
                    frames + at, sizeof(frames) - at,
                    "{\"id\":\"3\",\"host\":\"h%d\",\"t\":%lld,\"arity\":\"discrete-"
                    "decomposition\","
                    "\"value\":{\"sh\":3,\"cat\":1}}\n"
                    "{\"id\":\"4\",\"host\":\"h%d\",\"t\":%lld,\"arity\":\"scalar\",\"value\":9}\n"
                    "{\"id\":\"5\",\"host\":\"h%d\",\"t\":%lld,\"arity\":\"discrete-"
                    "decomposition\","
                    "\"value\":{\"h%d\":4096}}\n"
                    "{\"id\":\"acme/1\",\"host\":\"h%d\",\"t\":%lld,\"arity\":"
                    "\"numeric-decomposition\",\"value\":[[[5000,5099],4]]}\n",
                    h, (long long)t, h, (long long)t, h, (long long)t, h, h, (long long)t);
            FUZZ_CHECK(at < sizeof(frames));
        }
    }
    setup_call("POST", "/ca/ingest", NULL, "Bearer operator-token", frames, 200);
    srv->tenants = NULL;
}

static void remove_tree(const char *dir)
{
    char path[1024];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            remove_tree(path);
        else
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    char why[512];
    while (srv->n > 0)
        sn_server_remove(srv, srv->insts[srv->n - 1]->scope, srv->insts[srv->n - 1]->id, why,
                         sizeof(why));
    sn_store_close(srv->store);
    remove_tree(srv->datadir);
    free(srv->insts);
    sn_flow_close(srv);
    sn_agg_destroy(srv->agg);
    json_decref(srv->next_ids);
    pthread_rwlock_destroy(&srv->lock);
    free(srv);
    sn_tenants_free(tenants);
}

static void setup(void)
{
    char why[256], dir[64], sub[600];

    setenv("SN_LOG_LEVEL", "error", 0);
    sn_log_init();
    FUZZ_CHECK(sn_tenants_parse(tenants_json, strlen(tenants_json), &tenants, why, sizeof(why)) ==
               0);
    srv = calloc(1, sizeof(*srv));
    FUZZ_CHECK(srv);
    pthread_rwlock_init(&srv->lock, NULL);
    srv->next_ids = json_object();
    FUZZ_CHECK(sn_agg_create(&srv->agg) == 0);
    FUZZ_CHECK(sn_flow_open(srv) == 0); /* the bus frames and control travel on */
    snprintf(dir, sizeof(dir), "%s/sonde-fuzz-api-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(srv->datadir, sizeof(srv->datadir), "%s", dir);
    snprintf(sub, sizeof(sub), "%s/data", dir);
    FUZZ_CHECK(mkdir(sub, 0700) == 0);
    snprintf(sub, sizeof(sub), "%s/store", dir);
    struct sn_store_opts so = {.dir = sub};
    sn_tiers_default(&so.tiers);
    FUZZ_CHECK(sn_store_open(&so, &srv->store, why, sizeof(why)) == 0);
    snprintf(srv->host, sizeof(srv->host), "fuzzhost");
    srv->started = sn_now();
    reset();
    atexit(teardown);
}

/* ------------------------------------------------------------------------------------------
 * The input
 */

/* The next field of [*p, end) up to '\n' (NUL-terminated copy, owned). */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    FUZZ_CHECK(s);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl ? 1 : 0);
    return s;
}

/* The route with its placeholders replaced by the pieces of segs (split at ','). */
static void build_path(const char *route, char *segs, char *out, size_t len)
{
    char *save = NULL, *piece = strtok_r(segs, ",", &save);
    size_t at = 0;

    for (const char *r = route; *r && at + 1 < len; r++) {
        if (r[0] == '%' && (r[1] == 't' || r[1] == 'i' || r[1] == 's')) {
            const char *v = piece ? piece : r[1] == 't' ? "acme" : r[1] == 'i' ? "1" : "x";
            at += (size_t)snprintf(out + at, len - at, "%s", v);
            if (at >= len)
                at = len - 1;
            piece = strtok_r(NULL, ",", &save);
            r++;
            continue;
        }
        out[at++] = *r;
    }
    out[at] = '\0';
}

/* The query's parameters as the server's HTTP library gives them: decoded when they decode,
 * else as they are. */
static void add_query(struct sn_req *req, const char *q)
{
    if (sn_req_parse_form(req, q, strlen(q), false) == 0)
        return;
    sn_req_fini(req);
    char *copy = strdup(q), *save = NULL;
    FUZZ_CHECK(copy);
    for (char *p = strtok_r(copy, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        if (*p)
            FUZZ_CHECK(sn_req_add_param(req, p, eq ? eq + 1 : "", false) == 0);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[4] = {0};
    char path[4096];

    if (!srv)
        setup();
    memcpy(hdr, data, size < 4 ? size : 4);
    const uint8_t *p = data + (size < 4 ? size : 4), *end = data + size;
    char *segs = field(&p, end), *query = field(&p, end), *hval = field(&p, end);
    size_t body_len = (size_t)(end - p);
    unsigned char *body = body_len ? malloc(body_len) : NULL; /* exact size: no NUL after it */
    if (body_len) {
        FUZZ_CHECK(body);
        memcpy(body, p, body_len);
    }

    const char *method = methods[hdr[0] % (sizeof(methods) / sizeof(methods[0]))];
    build_path(routes[hdr[1] % NROUTES], segs, path, sizeof(path));
    unsigned auth = hdr[3] & 7;
    struct sn_req req = {
        .method = method,
        .path = path,
        .ctype = ctypes[hdr[2] % NCTYPES],
        .auth = auth == 7 ? hval : auths[auth],
        .api_version = hdr[3] & 0x20 ? hval : NULL,
        .accept = hdr[3] & 0x40 ? "image/png" : NULL,
        .body = body,
        .body_len = body_len,
        .loopback = !(hdr[3] & 0x10),
    };
    struct sn_resp resp = {0};

    srv->tenants = hdr[3] & 8 ? tenants : NULL;
    if (hdr[3] & 0x80 && strchr(query, '$')) {
        char now[24], *q = malloc(strlen(query) * sizeof(now) + 1);
        size_t at = 0;
        FUZZ_CHECK(q);
        snprintf(now, sizeof(now), "%lld", (long long)sn_now());
        for (const char *c = query; *c; c++)
            at += (size_t)sprintf(q + at, "%s", *c == '$' ? now : (char[2]){*c, 0});
        free(query);
        query = q;
    }
    add_query(&req, query);
    if (body_len > sn_api_limit(srv, method, path)) {
        sn_req_fini(&req); /* the server answers 413 without calling the handler */
    } else {
        run(&req, &resp);
        sn_req_fini(&req);
        sn_resp_fini(&resp);
    }
    srv->tenants = NULL;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0)
        reset();
    free(body);
    free(segs);
    free(query);
    free(hval);
    return 0;
}
