/*
 * The CloudAPI facade of `sonde serve` (../shared/ref/joyent-ca.md §1.6): /LOGIN/analytics is
 * the tenant LOGIN's scope with CloudAPI's differences: create and clone answer 200, property
 * objects carry no "uri" and their "uris" point under /LOGIN/analytics, clone by `clone=ID`
 * or `action=clone`, errors in restify's {"code","message"} form, and another user's
 * instrumentations are 404 ResourceNotFound. Also /ca/docs and /ca/admin/status.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;

/* A request with a tenant's token; returns the status and the parsed body (or NULL). */
static json_t *req(const char *token, const char *method, const char *path, const char *body,
                   int *status)
{
    char auth[128];
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    json_t *j = NULL;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    *status = 0;
    if (th_request(srv.port, method, path, h, body, body ? strlen(body) : 0, 10000, &r) != 0)
        return NULL;
    *status = r.status;
    if (r.len)
        j = json_loads(r.body, 0, NULL);
    th_resp_free(&r);
    return j;
}

static void test_facade(void)
{
    int st;
    json_t *j;
    const char *body =
        "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"]}";

    j = req("acme-token-1", "GET", "/acme/analytics", NULL, &st);
    T_EQ(st, 200);
    T_OK(json_object_get(j, "metrics") != NULL);
    json_decref(j);

    j = req("acme-token-1", "POST", "/acme/analytics/instrumentations", body, &st);
    T_EQ(st, 200); /* CloudAPI: 200, not 201 */
    T_STR(json_string_value(json_object_get(j, "id")), "1");
    T_OK(json_object_get(j, "uri") == NULL);
    const char *u =
        json_string_value(json_object_get(json_array_get(json_object_get(j, "uris"), 0), "uri"));
    T_STR(u, "/acme/analytics/instrumentations/1/value/heatmap/image");
    json_decref(j);

    j = req("acme-token-1", "POST", "/acme/analytics/instrumentations/1?action=clone", NULL, &st);
    T_EQ(st, 200);
    T_STR(json_string_value(json_object_get(j, "id")), "2");
    json_decref(j);
    j = req("acme-token-1", "POST", "/acme/analytics/instrumentations?clone=1", NULL, &st);
    T_EQ(st, 200);
    T_STR(json_string_value(json_object_get(j, "id")), "3");
    json_decref(j);

    j = req("acme-token-1", "GET", "/acme/analytics/instrumentations", NULL, &st);
    T_EQ(st, 200);
    T_EQ(json_array_size(j), 3);
    T_OK(json_object_get(json_array_get(j, 0), "uri") == NULL);
    json_decref(j);

    j = req("acme-token-1", "GET", "/acme/analytics/instrumentations/1/value/raw", NULL, &st);
    T_EQ(st, 200);
    T_OK(json_is_array(json_object_get(j, "value")));
    json_decref(j);

    /* restify's errors */
    j = req("acme-token-1", "POST", "/acme/analytics/instrumentations", "{\"stat\":\"x\"}", &st);
    T_EQ(st, 409);
    T_STR(json_string_value(json_object_get(j, "code")), "MissingParameter");
    json_decref(j);
    j = req("acme-token-1", "POST", "/acme/analytics/instrumentations",
            "{\"module\":\"nope\",\"stat\":\"x\"}", &st);
    T_EQ(st, 409);
    T_STR(json_string_value(json_object_get(j, "code")), "InvalidArgument");
    json_decref(j);
    j = req("acme-token-1", "GET", "/acme/analytics/instrumentations/9", NULL, &st);
    T_EQ(st, 404);
    T_STR(json_string_value(json_object_get(j, "code")), "ResourceNotFound");
    json_decref(j);

    /* another user sees none of it */
    j = req("beta-token-1", "GET", "/acme/analytics/instrumentations/1", NULL, &st);
    T_EQ(st, 404);
    json_decref(j);
    j = req("beta-token-1", "GET", "/beta/analytics/instrumentations", NULL, &st);
    T_EQ(st, 200);
    T_EQ(json_array_size(j), 0);
    json_decref(j);

    j = req("acme-token-1", "DELETE", "/acme/analytics/instrumentations/2", NULL, &st);
    T_EQ(st, 204);
    json_decref(j);
}

static void test_docs_and_status(void)
{
    struct th_resp r;
    char ct[128];
    int st;
    T_REQUIRE(th_get(srv.port, "/ca/docs", &r) == 0);
    T_EQ(r.status, 200);
    T_OK(th_header(&r, "Content-Type", ct, sizeof(ct)) && strncmp(ct, "text/markdown", 13) == 0);
    T_OK(strstr(r.body, "# The HTTP API of `sonde serve`") == r.body);
    th_resp_free(&r);

    json_t *j = req("acme-token-1", "GET", "/ca/admin/status", NULL, &st);
    T_EQ(st, 403); /* operator only */
    json_decref(j);
    j = req("operator-token", "GET", "/ca/admin/status", NULL, &st);
    T_EQ(st, 200);
    T_OK(json_is_false(json_object_get(j, "agent")));
    T_OK(json_is_true(json_object_get(j, "tenants")));
    T_OK(json_integer_value(json_object_get(j, "ninstrumentations")) >= 2);
    json_decref(j);
}

int main(int argc, char **argv)
{
    char file[512];
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    snprintf(file, sizeof(file), "%s/facade-tenants-%d.json", t_outdir(), (int)getpid());
    FILE *f = fopen(file, "w");
    if (!f)
        return 1;
    fputs("{\"operator\":{\"token\":\"operator-token\"},\"tenants\":{"
          "\"acme\":{\"token\":\"acme-token-1\",\"cgroups\":[\"/acme.slice\"]},"
          "\"beta\":{\"token\":\"beta-token-1\",\"cgroups\":[\"/beta.slice\"]}}}",
          f);
    fclose(f);
    const char *extra[] = {"--no-agent", "--tenants", file, NULL};
    if (th_serve_start(sonde, extra, NULL, &srv) != 0)
        return 1;
    t_run("facade", test_facade);
    t_run("docs_and_status", test_docs_and_status);
    th_serve_stop(&srv);
    unlink(file);
    return t_done();
}
