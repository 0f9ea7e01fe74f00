/*
 * History in a fleet: JetStream is the record of truth for frames and rollups, and a node's
 * store is rebuildable from it. Real processes: one nats-server with JetStream
 * (support/nats.h) and `sonde serve --nats` nodes (SN_SONDE), each with its own data
 * directory.
 *
 *   import_and_rebuild   frames imported through one node (POST /ca/import) go onto the bus;
 *                        the owners store them and put their rollups on the bus; a node that
 *                        joins later with an empty data directory rebuilds the same history
 *                        from the streams (frames and rollup records), answering value/raw
 *                        as the first node does, at the 1 min and 1 h tiers.
 *   restart_fills_gap    a node stopped while history arrives (the other owner stores it),
 *                        started again on its data directory: it rebuilds only the seconds
 *                        after its store's newest from the streams, and answers as the
 *                        other node does (nothing missing, nothing counted twice).
 *   ingest_reaches_owners  a frame POSTed to any node is added by the owners (the bus's
 *                        path), and counted once however many nodes there are.
 *   tenants_from_the_bus a node started with --tenants shares them; a node started without
 *                        serves the same tenants' scopes with the same tokens, and a tenant's
 *                        instrumentation created on one is seen, scoped, on the other.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "http_json.h"
#include "nats.h"
#include "t.h"

static const char *sonde;

static int node_start(struct th_serve *s, const struct th_nats *n, const char *id)
{
    const char *extra[] = {"--nats", th_nats_url(n), "--node-id", id, NULL};
    return th_serve_start(sonde, extra, NULL, s);
}

/* The value of a /metrics series of node port (-1 when absent). */
static double metric(int port, const char *series)
{
    return th_metric(port, series);
}

/* Waits (bounded) until series at port reaches want; returns the last value. */
static double metric_reaches(int port, const char *series, double want, int ms)
{
    double v = -1, end = th_now_ms() + ms;
    while (th_now_ms() < end && (v = metric(port, series)) < want)
        th_sleep_ms(100);
    return v;
}

/* GET path at port answered by that node itself (X-Sonde-Proxied: no hop to another owner),
 * as JSON; NULL unless 200. */
static json_t *local_get(int port, const char *path)
{
    const char *hdr[] = {"X-Sonde-Proxied: 1", NULL};
    struct th_resp r = {0};
    json_t *j = NULL;
    if (th_request(port, "GET", path, hdr, NULL, 0, 30000, &r) == 0 && r.status == 200)
        j = json_loads(r.body, 0, NULL);
    th_resp_free(&r);
    return j;
}

static int create(int port, const char *body)
{
    int st = 0;
    json_t *j = th_jreq(port, "POST", "/ca/instrumentations", body, &st);
    const char *sid = j ? json_string_value(json_object_get(j, "id")) : NULL; /* CA: a string */
    int id = sid ? atoi(sid) : -1;
    if (st != 200 && st != 201)
        id = -1;
    json_decref(j);
    return id;
}

/* Frames of instrumentation id: the from-th to the to-th of 240 over two hours from t0, every
 * 30 s, alternating hosts h0 and h1, the i-th counting i + 1 under its host's key. */
static char *frames(int id, int64_t t0, int from, int to)
{
    size_t cap = 240 * 128, at = 0;
    char *b = malloc(cap);
    if (b)
        b[0] = '\0';
    for (int i = from; b && i < to; i++)
        at += (size_t)snprintf(b + at, cap - at,
                               "{\"id\":\"%d\",\"host\":\"h%d\",\"t\":%" PRId64
                               ",\"arity\":\"discrete-decomposition\",\"value\":{\"h%d\":%d}}\n",
                               id, i % 2, t0 + i * 30, i % 2, i + 1);
    return b;
}

/* POST /ca/import of frames from..to at node port: all of them accepted. */
static void import(int port, int id, int64_t t0, int from, int to)
{
    char *body = frames(id, t0, from, to);
    struct th_resp r = {0};
    const char *hdr[] = {"Content-Type: application/x-ndjson", NULL};
    T_REQUIRE(body);
    T_EQ(th_request(port, "POST", "/ca/import", hdr, body, strlen(body), 30000, &r), 0);
    T_EQ(r.status, 200);
    json_t *rep = json_loads(r.body ? r.body : "", 0, NULL);
    T_EQ(json_integer_value(json_object_get(rep, "accepted")), to - from);
    json_decref(rep);
    th_resp_free(&r);
    free(body);
}

/* value/raw of id over the two hours from t0, from node port's own store. */
static json_t *two_hours(int port, int id, int64_t t0)
{
    char path[256];
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=7200", id, t0);
    json_t *j = local_get(port, path);
    json_t *v = j ? json_incref(json_object_get(j, "value")) : NULL;
    json_decref(j);
    return v;
}

static void test_restart_fills_gap(void)
{
    struct th_nats n;
    struct th_serve a = {0}, b = {0};

    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    T_REQUIRE(node_start(&a, &n, "node-a") == 0);
    T_REQUIRE(node_start(&b, &n, "node-b") == 0);
    int id = create(a.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                            "\"decomposition\":[\"hostname\"],\"retention-time\":10,"
                            "\"persist-data\":true}");
    T_REQUIRE(id > 0);
    int64_t now = (int64_t)time(NULL), t0 = (now - 3 * 3600) / 3600 * 3600;
    /* the first hour while both run: both store it */
    T_OK(metric_reaches(b.port, "sonde_fleet_owned", 1, 15000) >= 1);
    import(a.port, id, t0, 0, 120);
    T_OK(metric_reaches(a.port, "sonde_fleet_frames_late_total", 120, 15000) >= 120);
    T_OK(metric_reaches(b.port, "sonde_fleet_frames_late_total", 120, 15000) >= 120);
    th_sleep_ms(3000); /* b's writer: a second or two */
    T_EQ(th_serve_stop(&b), 0);
    /* the second hour while b is down: only a stores it (and puts its rollups on the bus) */
    import(a.port, id, t0, 120, 240);
    T_OK(metric_reaches(a.port, "sonde_fleet_frames_late_total", 240, 15000) >= 240);
    T_OK(metric_reaches(a.port, "sonde_fleet_rollups_sent_total", 122, 20000) >= 122);
    th_sleep_ms(11000); /* past the memory's 10 s: b's live consumer starts after them */

    /* b again, on its data directory: the 120 frames after its newest second, no others */
    char bdir[sizeof(b.dir)];
    snprintf(bdir, sizeof(bdir), "%s", b.dir);
    T_REQUIRE(th_serve_start(
                  sonde,
                  (const char *const[]){"--nats", th_nats_url(&n), "--node-id", "node-b", NULL},
                  bdir, &b) == 0);
    T_EQ(metric_reaches(b.port, "sonde_fleet_rebuilt_frames_total", 120, 20000), 120);
    th_sleep_ms(3000);
    T_EQ(metric(b.port, "sonde_fleet_rebuilt_frames_total"), 120);
    printf("# node-b rebuilt %.0f frames and %.0f rollup records after its restart\n",
           metric(b.port, "sonde_fleet_rebuilt_frames_total"),
           metric(b.port, "sonde_fleet_rollups_rebuilt_total"));
    json_t *va = two_hours(a.port, id, t0), *vb = two_hours(b.port, id, t0);
    T_OK(va && vb && json_equal(va, vb));
    T_EQ(json_integer_value(json_object_get(vb, "h0")), 14400);
    T_EQ(json_integer_value(json_object_get(vb, "h1")), 14520);
    json_decref(va);
    json_decref(vb);

    T_EQ(th_serve_stop(&b), 0);
    T_EQ(th_serve_stop(&a), 0);
    th_nats_free(&n);
}

static void test_import_and_rebuild(void)
{
    struct th_nats n;
    struct th_serve a = {0}, b = {0};
    char path[256];

    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    T_REQUIRE(node_start(&a, &n, "node-a") == 0);
    /* memory keeps 10 s: what arrived before the second node's start is history to it */
    int id = create(a.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                            "\"decomposition\":[\"hostname\"],\"retention-time\":10,"
                            "\"persist-data\":true}");
    T_REQUIRE(id > 0);
    int64_t now = (int64_t)time(NULL), t0 = (now - 3 * 3600) / 3600 * 3600;
    import(a.port, id, t0, 0, 240);
    /* the owner took them from the bus into its store, and put its rollups on the bus:
     * 120 of 1 min and 2 of 1 h (the 1 day record waits for its day to close) */
    T_OK(metric_reaches(a.port, "sonde_fleet_frames_late_total", 240, 15000) >= 240);
    T_OK(metric_reaches(a.port, "sonde_fleet_rollups_sent_total", 122, 20000) >= 122);
    th_sleep_ms(11000); /* past the memory's 10 s: the new node's live consumer starts after */

    T_REQUIRE(node_start(&b, &n, "node-b") == 0);
    T_OK(metric_reaches(b.port, "sonde_fleet_rebuilt_frames_total", 240, 20000) >= 240);
    T_OK(metric_reaches(b.port, "sonde_fleet_rollups_rebuilt_total", 122, 20000) >= 122);
    printf("# node-b rebuilt %.0f frames and %.0f rollup records\n",
           metric(b.port, "sonde_fleet_rebuilt_frames_total"),
           metric(b.port, "sonde_fleet_rollups_rebuilt_total"));
    th_sleep_ms(3000); /* the store's writer: a second or two */

    /* the same answers from both, each from its own store: 2 h at 1 min, a day at 1 h */
    const char *q[] = {"value/raw?duration=7200", "value/raw?duration=3600",
                       "value/raw?duration=60"};
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        char rel[200];
        snprintf(rel, sizeof(rel), "%s&start_time=%" PRId64, q[i], t0);
        snprintf(path, sizeof(path), "/ca/instrumentations/%d/%s", id, rel);
        json_t *ja = local_get(a.port, path), *jb = local_get(b.port, path);
        T_OK(ja && jb);
        if (!ja || !jb) {
            json_decref(ja);
            json_decref(jb);
            continue;
        }
        json_t *va = json_object_get(ja, "value"), *vb = json_object_get(jb, "value");
        if (!json_equal(va, vb)) {
            char *sa = json_dumps(va, JSON_COMPACT), *sb = json_dumps(vb, JSON_COMPACT);
            printf("# %s: %s vs %s\n", rel, sa ? sa : "?", sb ? sb : "?");
            free(sa);
            free(sb);
        }
        T_OK(json_equal(va, vb));
        json_decref(ja);
        json_decref(jb);
    }
    /* and the values themselves: h0 counted 1 + 3 + ... + 239, h1 2 + 4 + ... + 240 */
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=7200", id, t0);
    json_t *jb = local_get(b.port, path);
    json_t *v = json_object_get(jb, "value");
    T_EQ(json_integer_value(json_object_get(v, "h0")), 14400);
    T_EQ(json_integer_value(json_object_get(v, "h1")), 14520);
    T_EQ(json_string_value(json_object_get(jb, "tier")) ? 1 : 0, 1);
    json_decref(jb);
    /* a day of it at 1 h: the two hours' records rebuilt from the bus's 1 h records */
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=86400", id,
             t0 - 86400 + 7200);
    jb = local_get(b.port, path);
    json_t *ja = local_get(a.port, path);
    T_OK(jb && ja && json_equal(json_object_get(ja, "value"), json_object_get(jb, "value")));
    v = json_object_get(jb, "value");
    T_EQ(json_integer_value(json_object_get(v, "h0")), 14400);
    json_decref(ja);
    json_decref(jb);

    T_EQ(th_serve_stop(&b), 0);
    T_EQ(th_serve_stop(&a), 0);
    th_nats_free(&n);
}

static void test_ingest_reaches_owners(void)
{
    struct th_nats n;
    struct th_serve s[3] = {0};
    char path[200];

    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    T_REQUIRE(node_start(&s[0], &n, "n0") == 0);
    T_REQUIRE(node_start(&s[1], &n, "n1") == 0);
    T_REQUIRE(node_start(&s[2], &n, "n2") == 0);
    int id = create(s[1].port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                               "\"decomposition\":[\"hostname\"]}");
    T_REQUIRE(id > 0);
    th_sleep_ms(1500); /* every node has the definition and knows the others */
    int64_t t = (int64_t)time(NULL) - 5;
    for (int k = 0; k < 3; k++) { /* one frame through each node */
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"id\":\"%d\",\"host\":\"web%d\",\"t\":%" PRId64
                 ",\"arity\":\"discrete-decomposition\",\"value\":{\"web%d\":%d}}",
                 id, k, t, k, 10 * (k + 1));
        int st = 0;
        json_t *j = th_jreq(s[k].port, "POST", "/ca/ingest", body, &st);
        T_EQ(st, 200);
        T_EQ(json_integer_value(json_object_get(j, "accepted")), 1);
        json_decref(j);
    }
    /* from any node (proxied to an owner when it is not one): each host once */
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1", id, t);
    for (int k = 0; k < 3; k++) {
        json_t *v = NULL;
        for (int tries = 0; tries < 50; tries++) {
            int st = 0;
            json_t *j = th_jreq(s[k].port, "GET", path, NULL, &st);
            v = json_incref(json_object_get(j, "value"));
            json_decref(j);
            if (json_object_size(v) == 3)
                break;
            json_decref(v);
            v = NULL;
            th_sleep_ms(100);
        }
        T_OK(v != NULL);
        T_EQ(json_integer_value(json_object_get(v, "web0")), 10);
        T_EQ(json_integer_value(json_object_get(v, "web1")), 20);
        T_EQ(json_integer_value(json_object_get(v, "web2")), 30);
        json_decref(v);
    }
    /* exactly two nodes own it, and only they hold its frames */
    double owners = 0;
    for (int k = 0; k < 3; k++) {
        double f = metric(s[k].port, "sonde_fleet_frames_total");
        T_OK(f == 0 || f == 3);
        owners += f == 3;
    }
    T_EQ((int)owners, 2);
    for (int k = 0; k < 3; k++)
        T_EQ(th_serve_stop(&s[k]), 0);
    th_nats_free(&n);
}

static int get_auth(int port, const char *path, const char *token)
{
    char auth[128];
    const char *hdr[] = {auth, NULL};
    struct th_resp r = {0};
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    int st = th_request(port, "GET", path, hdr, NULL, 0, 30000, &r) == 0 ? r.status : 0;
    th_resp_free(&r);
    return st;
}

static void test_tenants_from_the_bus(void)
{
    struct th_nats n;
    struct th_serve a = {0}, b = {0};
    char file[300];

    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    snprintf(file, sizeof(file), "%s/tenants.json", n.dir);
    FILE *f = fopen(file, "w");
    T_REQUIRE(f);
    fputs("{\"operator\":{\"token\":\"op-token\"},\"tenants\":{\"acme\":"
          "{\"token\":\"acme-token\",\"cgroups\":[\"/acme.slice\"]}}}",
          f);
    fclose(f);
    const char *ea[] = {"--nats", th_nats_url(&n), "--node-id", "with", "--tenants", file, NULL};
    const char *eb[] = {"--nats", th_nats_url(&n), "--node-id", "without", NULL};
    T_REQUIRE(th_serve_start(sonde, ea, NULL, &a) == 0);
    T_REQUIRE(th_serve_start(sonde, eb, NULL, &b) == 0);
    /* the tenant's scope on the node without a file: its token opens it, another does not */
    T_EQ(get_auth(b.port, "/ca/customers/acme/instrumentations", "acme-token"), 200);
    T_EQ(get_auth(b.port, "/ca/customers/acme/instrumentations", "wrong"), 401);
    T_EQ(get_auth(b.port, "/ca/customers/nobody/instrumentations", "op-token"), 404);
    /* created on one, seen on the other, in its scope only */
    char auth[64];
    snprintf(auth, sizeof(auth), "Authorization: Bearer acme-token");
    const char *hdr[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r = {0};
    const char *body = "{\"module\":\"syscall\",\"stat\":\"syscalls\"}";
    T_EQ(th_request(a.port, "POST", "/ca/customers/acme/instrumentations", hdr, body, strlen(body),
                    30000, &r),
         0);
    T_OK(r.status == 200 || r.status == 201);
    th_resp_free(&r);
    int found = 0;
    for (int k = 0; k < 30 && found != 200; k++) {
        found = get_auth(b.port, "/ca/customers/acme/instrumentations/1", "acme-token");
        if (found != 200)
            th_sleep_ms(100);
    }
    T_EQ(found, 200);
    T_EQ(get_auth(b.port, "/ca/instrumentations/1", "op-token"), 404); /* not the operator's */
    T_EQ(th_serve_stop(&b), 0);
    T_EQ(th_serve_stop(&a), 0);
    th_nats_free(&n);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    sonde = getenv("SN_SONDE");
    if (!sonde) {
        fprintf(stderr, "SN_SONDE: the sonde binary (set by CTest)\n");
        return 1;
    }
    t_run("import_and_rebuild", test_import_and_rebuild);
    t_run("restart_fills_gap", test_restart_fills_gap);
    t_run("ingest_reaches_owners", test_ingest_reaches_owners);
    t_run("tenants_from_the_bus", test_tenants_from_the_bus);
    return t_done();
}
