/*
 * Dashboards (docs/api.md "Dashboards"), through a real `sonde serve --no-agent`: create,
 * list, get, replace and delete; the document stored normalized; validation with CA's 409
 * ECA_INVAL and a message naming the member (name, body, panels, sizes, options, the cap on
 * panels and the body size's 413); the same auth as every other write; tenant isolation (a
 * tenant sees only its own, another tenant's are 404, the operator's scope is its own); and
 * persistence: across a restart, and across kill -9 in the middle of a stream of writes (the
 * file is the old document or the new one, never a torn one; a stale temporary file is
 * ignored).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static char tenants_file[512];

static int req(int port, const char *method, const char *path, const char *token, const char *body,
               struct th_resp *r)
{
    char auth[300];
    const char *h[4] = {"Content-Type: application/json", "Accept: application/json", NULL, NULL};
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[2] = auth;
    }
    return th_request(port, method, path, h, body, body ? strlen(body) : 0, 10000, r);
}

/* The status of a request; *j gets its JSON body (or NULL) when j is given. */
static int call(int port, const char *method, const char *path, const char *token, const char *body,
                json_t **j)
{
    struct th_resp r;
    int st;
    if (j)
        *j = NULL;
    if (req(port, method, path, token, body, &r) != 0)
        return -1;
    st = r.status;
    if (j && r.body && r.len)
        *j = json_loadb(r.body, r.len, 0, NULL);
    th_resp_free(&r);
    return st;
}

/* 409 ECA_INVAL whose message contains want. */
static void refused(int port, const char *path, const char *body, const char *want)
{
    json_t *j;
    int st = call(port, "PUT", path, NULL, body, &j);
    T_EQ(st, 409);
    json_t *e = json_object_get(j, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    T_STR(json_string_value(json_object_get(e, "code")), "ECA_INVAL");
    if (!(msg && strstr(msg, want)))
        t_note("%s %s: message %s, want %s", path, body, msg ? msg : "(none)", want);
    T_OK(msg && strstr(msg, want));
    json_decref(j);
}

static const char *no_agent[] = {"--no-agent", NULL};

static void test_crud(void)
{
    struct th_serve s;
    json_t *j;
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &s) == 0);

    T_EQ(call(s.port, "GET", "/ca/dashboards", NULL, NULL, &j), 200);
    T_OK(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    T_EQ(call(s.port, "GET", "/ca/dashboards/ops", NULL, NULL, NULL), 404);
    T_EQ(call(s.port, "DELETE", "/ca/dashboards/ops", NULL, NULL, NULL), 404);

    /* create: 201, Location, the document normalized (ids as strings, defaults) */
    struct th_resp r;
    const char *doc =
        "{\"title\":\"Ops\",\"panels\":[{\"instrumentation\":3,\"w\":2,\"h\":3,"
        "\"options\":{\"yscale\":\"log\",\"ymax\":2e7,\"selected\":[\"bash\",\"sh\"],"
        "\"mode\":\"isolate\",\"coloring\":\"rank\"}},{\"instrumentation\":\"4\"},{\"definition\":{"
        "\"module\":\"syscall\",\"stat\":\"syscalls\"}}]}";
    T_REQUIRE(req(s.port, "PUT", "/ca/dashboards/ops", NULL, doc, &r) == 0);
    T_EQ(r.status, 201);
    char loc[256];
    T_OK(th_header(&r, "Location", loc, sizeof(loc)) && strcmp(loc, "/ca/dashboards/ops") == 0);
    th_resp_free(&r);

    T_EQ(call(s.port, "GET", "/ca/dashboards/ops", NULL, NULL, &j), 200);
    T_STR(json_string_value(json_object_get(j, "name")), "ops");
    T_STR(json_string_value(json_object_get(j, "title")), "Ops");
    T_STR(json_string_value(json_object_get(j, "uri")), "/ca/dashboards/ops");
    T_OK(json_integer_value(json_object_get(j, "mtime")) > 1700000000000LL);
    json_t *ps = json_object_get(j, "panels");
    T_EQ(json_array_size(ps), 3);
    json_t *p0 = json_array_get(ps, 0), *p1 = json_array_get(ps, 1);
    T_STR(json_string_value(json_object_get(p0, "instrumentation")), "3");
    T_EQ(json_integer_value(json_object_get(p0, "w")), 2);
    T_EQ(json_integer_value(json_object_get(p0, "h")), 3);
    json_t *o = json_object_get(p0, "options");
    T_STR(json_string_value(json_object_get(o, "yscale")), "log");
    T_STR(json_string_value(json_object_get(o, "mode")), "isolate");
    T_STR(json_string_value(json_object_get(o, "coloring")), "rank");
    T_EQ(json_array_size(json_object_get(o, "selected")), 2);
    T_STR(json_string_value(json_object_get(p1, "instrumentation")), "4");
    T_EQ(json_integer_value(json_object_get(p1, "w")), 1);
    T_EQ(json_integer_value(json_object_get(p1, "h")), 1);
    T_OK(json_is_object(json_object_get(p1, "options")));
    T_STR(json_string_value(
              json_object_get(json_object_get(json_array_get(ps, 2), "definition"), "module")),
          "syscall");
    json_decref(j);

    /* replace: 200; a second one; the list, sorted by name */
    T_EQ(call(s.port, "PUT", "/ca/dashboards/ops", NULL,
              "{\"name\":\"ops\",\"panels\":[{\"instrumentation\":\"9\"}]}", &j),
         200);
    T_STR(json_string_value(json_object_get(j, "title")), "ops"); /* the name when no title */
    json_decref(j);
    T_EQ(call(s.port, "PUT", "/ca/dashboards/a-first.one_1", NULL, "{\"panels\":[]}", NULL), 201);
    T_EQ(call(s.port, "GET", "/ca/dashboards", NULL, NULL, &j), 200);
    T_EQ(json_array_size(j), 2);
    T_STR(json_string_value(json_object_get(json_array_get(j, 0), "name")), "a-first.one_1");
    T_STR(json_string_value(json_object_get(json_array_get(j, 1), "name")), "ops");
    T_EQ(json_integer_value(json_object_get(json_array_get(j, 1), "npanels")), 1);
    T_STR(json_string_value(json_object_get(json_array_get(j, 1), "uri")), "/ca/dashboards/ops");
    json_decref(j);

    /* delete */
    T_EQ(call(s.port, "DELETE", "/ca/dashboards/a-first.one_1", NULL, NULL, NULL), 204);
    T_EQ(call(s.port, "GET", "/ca/dashboards/a-first.one_1", NULL, NULL, NULL), 404);

    /* a restart finds them as they were */
    T_EQ(th_serve_stop(&s), 0);
    struct th_serve s2;
    T_REQUIRE(th_serve_start(sonde, no_agent, s.dir, &s2) == 0);
    T_EQ(call(s2.port, "GET", "/ca/dashboards", NULL, NULL, &j), 200);
    T_EQ(json_array_size(j), 1);
    json_decref(j);
    T_EQ(call(s2.port, "GET", "/ca/dashboards/ops", NULL, NULL, &j), 200);
    T_STR(json_string_value(
              json_object_get(json_array_get(json_object_get(j, "panels"), 0), "instrumentation")),
          "9");
    json_decref(j);
    T_EQ(th_serve_stop(&s2), 0);
}

static void test_validation(void)
{
    struct th_serve s;
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &s) == 0);
    const char *P = "/ca/dashboards/x";

    refused(s.port, "/ca/dashboards/.hidden", "{\"panels\":[]}", "invalid dashboard name");
    refused(s.port, "/ca/dashboards/a@b", "{\"panels\":[]}", "invalid dashboard name");
    refused(s.port,
            "/ca/dashboards/"
            "a12345678901234567890123456789012345678901234567890123456789012345",
            "{\"panels\":[]}", "invalid dashboard name");
    refused(s.port, P, "[1]", "must be a JSON object");
    refused(s.port, P, "{\"panels\":[], \"colour\":1}", "unknown member \"colour\"");
    refused(s.port, P, "{}", "\"panels\"");
    refused(s.port, P, "{\"panels\":{}}", "\"panels\" must be an array");
    refused(s.port, P, "{\"name\":\"y\",\"panels\":[]}", "\"name\" must be the name in the path");
    refused(s.port, P, "{\"title\":7,\"panels\":[]}", "\"title\"");
    refused(s.port, P, "{\"panels\":[7]}", "panels[0] must be an object");
    refused(s.port, P, "{\"panels\":[{}]}", "panels[0]: needs \"instrumentation\"");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":\"01\"}]}", "an instrumentation's id");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":-1}]}", "an instrumentation's id");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1},{\"instrumentation\":1,\"w\":4}]}",
            "panels[1]: \"w\" must be an integer from 1 to 3");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1,\"h\":0}]}", "\"h\" must be");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1,\"options\":{\"yscale\":\"sqrt\"}}]}",
            "\"yscale\" must be");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1,\"options\":{\"ymin\":-1}}]}",
            "\"ymin\" must be");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1,\"options\":{\"mode\":\"all\"}}]}",
            "\"mode\" must be \"isolate\", \"exclude\", \"decompose_all\" or null");
    refused(s.port, P, "{\"panels\":[{\"instrumentation\":1,\"options\":{\"coloring\":\"hsv\"}}]}",
            "panels[0]: \"coloring\" must be \"linear\" or \"rank\"");
    refused(s.port, P,
            "{\"panels\":[{\"instrumentation\":1,\"options\":{\"selected\":[\"a,b\"]}}]}",
            "without a comma");
    refused(s.port, P, "{\"panels\":[{\"definition\":{\"module\":\"syscall\"}}]}",
            "\"definition\" must be");
    refused(s.port, P, "panels=1", "failed to parse JSON");

    /* at most 24 panels */
    char body[4096];
    size_t at = (size_t)snprintf(body, sizeof(body), "{\"panels\":[");
    for (int i = 0; i < 25; i++)
        at += (size_t)snprintf(body + at, sizeof(body) - at, "%s{\"instrumentation\":%d}",
                               i ? "," : "", i + 1);
    snprintf(body + at, sizeof(body) - at, "]}");
    refused(s.port, P, body, "too many panels: 25 (at most 24)");

    /* bodies: up to 64 KiB (more than the API's 4 KiB), not beyond */
    size_t big = 70 * 1024;
    char *b = malloc(big + 64);
    T_REQUIRE(b != NULL);
    at = (size_t)snprintf(b, big + 64, "{\"title\":\"");
    memset(b + at, 'x', big - at);
    snprintf(b + big, 64, "\",\"panels\":[]}");
    T_EQ(call(s.port, "PUT", P, NULL, b, NULL), 413);
    at = (size_t)snprintf(b, big + 64,
                          "{\"panels\":[{\"instrumentation\":1,\"definition\":{"
                          "\"module\":\"m\",\"stat\":\"s\",\"pad\":\"");
    memset(b + at, 'y', 6000);
    snprintf(b + at + 6000, 64, "\"}}]}");
    T_EQ(call(s.port, "PUT", P, NULL, b, NULL), 201); /* over 4 KiB is fine here */
    free(b);

    /* nothing refused was stored */
    json_t *j;
    T_EQ(call(s.port, "GET", "/ca/dashboards", NULL, NULL, &j), 200);
    T_EQ(json_array_size(j), 1);
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
}

static void test_tenants(void)
{
    struct th_serve s;
    const char *extra[] = {"--no-agent", "--tenants", tenants_file, NULL};
    json_t *j;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    const char *body = "{\"panels\":[{\"instrumentation\":1}]}";

    /* the same auth as every other write */
    T_EQ(call(s.port, "PUT", "/ca/dashboards/d", NULL, body, NULL), 401);
    T_EQ(call(s.port, "PUT", "/ca/dashboards/d", "acme-secret-token", body, NULL), 403);
    T_EQ(call(s.port, "GET", "/ca/customers/acme/dashboards", "nope-nope-nope", NULL, NULL), 401);

    T_EQ(call(s.port, "PUT", "/ca/customers/acme/dashboards/d", "acme-secret-token",
              "{\"title\":\"acme's\",\"panels\":[]}", &j),
         201);
    T_STR(json_string_value(json_object_get(j, "uri")), "/ca/customers/acme/dashboards/d");
    json_decref(j);
    T_EQ(call(s.port, "PUT", "/ca/customers/beta/dashboards/d", "beta-secret-token",
              "{\"title\":\"beta's\",\"panels\":[]}", NULL),
         201);
    T_EQ(call(s.port, "PUT", "/ca/dashboards/d", "operator-secret", body, NULL), 201);

    /* each scope sees its own */
    T_EQ(call(s.port, "GET", "/ca/customers/acme/dashboards/d", "acme-secret-token", NULL, &j),
         200);
    T_STR(json_string_value(json_object_get(j, "title")), "acme's");
    json_decref(j);
    T_EQ(call(s.port, "GET", "/ca/customers/acme/dashboards", "acme-secret-token", NULL, &j), 200);
    T_EQ(json_array_size(j), 1);
    json_decref(j);
    T_EQ(call(s.port, "GET", "/ca/dashboards/d", "operator-secret", NULL, &j), 200);
    T_EQ(json_array_size(json_object_get(j, "panels")), 1);
    json_decref(j);
    /* another tenant's: as if it did not exist */
    T_EQ(call(s.port, "GET", "/ca/customers/beta/dashboards/d", "acme-secret-token", NULL, NULL),
         404);
    T_EQ(call(s.port, "DELETE", "/ca/customers/beta/dashboards/d", "acme-secret-token", NULL, NULL),
         404);
    T_EQ(call(s.port, "GET", "/ca/customers/beta/dashboards/d", "beta-secret-token", NULL, &j),
         200);
    T_STR(json_string_value(json_object_get(j, "title")), "beta's");
    json_decref(j);
    /* the operator's token opens a tenant's scope */
    T_EQ(call(s.port, "GET", "/ca/customers/acme/dashboards/d", "operator-secret", NULL, NULL),
         200);
    /* deleting one scope's leaves the others' */
    T_EQ(call(s.port, "DELETE", "/ca/customers/acme/dashboards/d", "acme-secret-token", NULL, NULL),
         204);
    T_EQ(call(s.port, "GET", "/ca/dashboards/d", "operator-secret", NULL, NULL), 200);
    T_EQ(call(s.port, "GET", "/ca/customers/beta/dashboards/d", "beta-secret-token", NULL, NULL),
         200);

    /* the host's name: in / for a client with a token, not for one without */
    T_EQ(call(s.port, "GET", "/", "acme-secret-token", NULL, &j), 200);
    T_OK(json_is_string(json_object_get(j, "host")) &&
         json_string_length(json_object_get(j, "host")) > 0);
    json_decref(j);
    {
        struct th_resp r;
        const char *h[] = {"Accept: application/json", NULL};
        T_REQUIRE(th_request(s.port, "GET", "/", h, NULL, 0, 10000, &r) == 0);
        j = json_loadb(r.body, r.len, 0, NULL);
        T_OK(j && !json_object_get(j, "host"));
        json_decref(j);
        th_resp_free(&r);
    }
    T_EQ(th_serve_stop(&s), 0);
}

/* --- kill -9 in the middle of writes ------------------------------------------------------ */

struct writer {
    int port;
    atomic_bool stop;
    int ok;
};

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    static char body[40000];
    for (int i = 0; !atomic_load(&w->stop) && i < 100000; i++) {
        size_t at = (size_t)snprintf(body, sizeof(body), "{\"title\":\"v%d\",\"panels\":[", i);
        for (int k = 0; k < 24; k++)
            at += (size_t)snprintf(body + at, sizeof(body) - at,
                                   "%s{\"instrumentation\":%d,\"definition\":{\"module\":\"m\","
                                   "\"stat\":\"s\",\"note\":\"%0900d\"}}",
                                   k ? "," : "", k + 1, i);
        snprintf(body + at, sizeof(body) - at, "]}");
        if (call(w->port, "PUT", "/ca/dashboards/hot", NULL, body, NULL) == 200)
            w->ok++;
    }
    return NULL;
}

static void test_kill9(void)
{
    struct th_serve s;
    struct writer w = {0};
    pthread_t th;
    json_t *j;
    char tmp[600];
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &s) == 0);
    T_EQ(call(s.port, "PUT", "/ca/dashboards/hot", NULL, "{\"panels\":[]}", NULL), 201);
    w.port = s.port;
    T_REQUIRE(pthread_create(&th, NULL, write_loop, &w) == 0);
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    kill(s.pid, SIGKILL);
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    th_serve_stop(&s); /* reaps it */
    t_note("%d writes before kill -9", w.ok);
    T_OK(w.ok > 0);

    /* a stale temporary file, as a crash in the middle of a write leaves */
    snprintf(tmp, sizeof(tmp), "%s/dashboards/hot.json.tmp", s.dir);
    FILE *f = fopen(tmp, "w");
    if (T_OK(f != NULL)) {
        fputs("{\"name\":\"hot\",\"panels\":[{\"instrumen", f);
        fclose(f);
    }
    struct th_serve s2;
    T_REQUIRE(th_serve_start(sonde, no_agent, s.dir, &s2) == 0);
    T_EQ(call(s2.port, "GET", "/ca/dashboards/hot", NULL, NULL, &j), 200);
    T_OK(j != NULL && json_is_array(json_object_get(j, "panels")));
    T_OK(json_array_size(json_object_get(j, "panels")) == 24 ||
         json_array_size(json_object_get(j, "panels")) == 0);
    json_decref(j);
    T_EQ(call(s2.port, "GET", "/ca/dashboards", NULL, NULL, &j), 200);
    T_EQ(json_array_size(j), 1); /* the .tmp is no dashboard */
    json_decref(j);
    T_EQ(call(s2.port, "PUT", "/ca/dashboards/hot", NULL, "{\"panels\":[]}", NULL), 200);
    T_EQ(th_serve_stop(&s2), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    signal(SIGPIPE, SIG_IGN);
    snprintf(tenants_file, sizeof(tenants_file), "%s/dash-tenants-%d.json", t_outdir(),
             (int)getpid());
    FILE *f = fopen(tenants_file, "w");
    if (!f) {
        perror(tenants_file);
        return 1;
    }
    fputs("{\"operator\":{\"token\":\"operator-secret\"},\"tenants\":{"
          "\"acme\":{\"token\":\"acme-secret-token\",\"cgroups\":[\"/acme.slice\"]},"
          "\"beta\":{\"token\":\"beta-secret-token\",\"cgroups\":[\"/beta.slice\"]}}}",
          f);
    fclose(f);
    t_run("create, list, get, replace, delete; across a restart", test_crud);
    t_run("validation: names, members, sizes, caps", test_validation);
    t_run("tenants: auth, isolation; the host's name", test_tenants);
    t_run("kill -9 during writes leaves a whole document", test_kill9);
    unlink(tenants_file);
    return t_done();
}
