/*
 * The link to NATS (src/fleet/link.h) against real nats-server processes (support/nats.h):
 * option parsing and its messages; connecting to one server, to a list whose first server is
 * dead, and before any server is up; what ensure creates on JetStream (on one server and on a
 * three-server cluster), that it is idempotent and safe when two nodes run it at once, and
 * that the stream's duplicate window drops a re-sent message id; the down and up events when
 * the server is killed and restarted; and user/password, token, TLS with a client
 * certificate, a user nkey and a .creds file in operator mode, right and wrong.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet/link.h"
#include "fleet/names.h"
#include "http.h"
#include "nats.h"
#include "t.h"

#define WHY      512
#define OPEN_MS  5000
#define WAIT_MS  15000 /* for an event after a kill or a restart */
#define JWT_LINE 4096  /* a line of a .creds file */

/* A link's options from a NULL-terminated list of name, value pairs. */
static void opts_of(struct sn_link_opts *o, const char *const *kv)
{
    char why[WHY];
    memset(o, 0, sizeof(*o));
    for (int i = 0; kv && kv[i]; i += 2)
        if (sn_link_opt(o, kv[i], kv[i + 1], why, sizeof(why)) != 1)
            t_note("option %s %s: %s", kv[i], kv[i + 1], why);
}

static int open_url(const char *url, const struct sn_link_events *ev, int timeout_ms,
                    struct sn_link **l, char *why)
{
    struct sn_link_opts o;
    const char *kv[] = {"--nats", url, NULL};
    opts_of(&o, kv);
    int rc = sn_link_open(&o, ev, timeout_ms, l, why, WHY);
    sn_link_opts_fini(&o);
    return rc;
}

static bool contains(const char *s, const char *part)
{
    bool ok = s && strstr(s, part);
    if (!ok)
        t_note("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
    return ok;
}

/* ---- options ------------------------------------------------------------------------------- */

static void expect_bad(const char *name, const char *value, const char *msg)
{
    struct sn_link_opts o = {0};
    char why[WHY] = "";
    t_note("%s %s", name, value ? value : "(null)");
    T_EQ(sn_link_opt(&o, name, value, why, sizeof(why)), -EINVAL);
    T_OK(contains(why, msg));
    sn_link_opts_fini(&o);
}

static void test_opt(void)
{
    struct sn_link_opts o = {0};
    char why[WHY];
    T_EQ(sn_link_opt(&o, "--listen", "x", why, sizeof(why)), 0);
    T_EQ(sn_link_opt(&o, "--nats", "nats://127.0.0.1:1,tls://h:2", why, sizeof(why)), 1);
    T_STR(o.urls, "nats://127.0.0.1:1,tls://h:2");
    T_EQ(sn_link_opt(&o, "nats", "127.0.0.1:3", why, sizeof(why)), 1); /* replaces */
    T_STR(o.urls, "127.0.0.1:3");
    T_EQ(sn_link_opt(&o, "--nats-user", "u", why, sizeof(why)), 1);
    T_EQ(sn_link_opt(&o, "--nats-password", "p", why, sizeof(why)), 1);
    T_EQ(sn_link_opt(&o, "--nats-replicas", "3", why, sizeof(why)), 1);
    T_EQ(o.replicas, 3);
    T_EQ(sn_link_opt(&o, "--nats-tls-ca", "/dev/null", why, sizeof(why)), 1);
    T_STR(o.tls_ca, "/dev/null");
    T_STR(o.user, "u");
    T_STR(o.password, "p");
    sn_link_opts_fini(&o);
    T_OK(o.urls == NULL && o.user == NULL && o.replicas == 0);

    expect_bad("--nats", "", "--nats: a value is needed");
    expect_bad("--nats", NULL, "--nats: a value is needed");
    expect_bad("--nats", "http://127.0.0.1:4222", "the scheme must be nats:// or tls://");
    expect_bad("--nats", "nats://a:1,,nats://b:2", "--nats: an empty URL");
    expect_bad("--nats", "nats://a:1,", "--nats: an empty URL");
    expect_bad("--nats", "nats://", "no host");
    expect_bad("--nats-user", "a b", "blanks and control characters are not allowed");
    expect_bad("--nats-token", "t\n", "blanks and control characters are not allowed");
    expect_bad("--nats-creds", "/nonexistent/x.creds",
               "--nats-creds /nonexistent/x.creds: No such file or directory");
    expect_bad("--nats-tls-key", "/nonexistent/k", "--nats-tls-key /nonexistent/k: No such file");
    expect_bad("--nats-replicas", "0", "a number of replicas from 1 to 5");
    expect_bad("--nats-replicas", "6", "a number of replicas from 1 to 5");
    expect_bad("--nats-replicas", "2x", "a number of replicas from 1 to 5");
    T_OK(strstr(sn_link_usage, "--nats-tls-cert") != NULL);
}

static void expect_check(const char *const *kv, int rc, const char *msg)
{
    struct sn_link_opts o;
    char why[WHY] = "";
    opts_of(&o, kv);
    T_EQ(sn_link_opts_check(&o, why, sizeof(why)), rc);
    if (msg)
        T_OK(contains(why, msg));
    sn_link_opts_fini(&o);
}

static void test_opts_check(void)
{
    const char *none[] = {"--nats-token", "t", NULL};
    expect_check(none, -EINVAL, "--nats URL[,URL...] is needed");
    const char *user[] = {"--nats", "nats://h:1", "--nats-user", "u", NULL};
    expect_check(user, -EINVAL, "--nats-user and --nats-password go together");
    const char *pass[] = {"--nats", "nats://h:1", "--nats-password", "p", NULL};
    expect_check(pass, -EINVAL, "--nats-user and --nats-password go together");
    const char *two[] = {"--nats", "nats://h:1",   "--nats-user", "u", "--nats-password",
                         "p",      "--nats-token", "t",           NULL};
    expect_check(two, -EINVAL, "one kind of NATS credentials only");
    const char *cert[] = {"--nats", "nats://h:1", "--nats-tls-cert", "/dev/null", NULL};
    expect_check(cert, -EINVAL, "--nats-tls-cert and --nats-tls-key go together");
    const char *ok[] = {"--nats",
                        "nats://h:1",
                        "--nats-user",
                        "u",
                        "--nats-password",
                        "p",
                        "--nats-tls-ca",
                        "/dev/null",
                        "--nats-tls-cert",
                        "/dev/null",
                        "--nats-tls-key",
                        "/dev/null",
                        NULL};
    expect_check(ok, 0, NULL);
    /* open checks too, before any connection */
    struct sn_link_opts o;
    struct sn_link *l = (struct sn_link *)1;
    char why[WHY];
    opts_of(&o, user);
    T_EQ(sn_link_open(&o, NULL, 100, &l, why, sizeof(why)), -EINVAL);
    T_OK(l == NULL);
    T_OK(contains(why, "go together"));
    sn_link_opts_fini(&o);
}

/* ---- connecting ---------------------------------------------------------------------------- */

static struct th_nats one; /* a plain single server, shared by the cases below */

static bool need_one(void)
{
    if (one.s[0].pid > 0)
        return true;
    if (th_nats_start(&one, 1, 0) != 0) {
        T_OK(!"th_nats_start 1 server");
        return false;
    }
    return true;
}

static void test_connect(void)
{
    T_REQUIRE(need_one());
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_url(th_nats_url(&one), NULL, OPEN_MS, &l, why), 0);
    t_note("%s", why);
    T_REQUIRE(l != NULL);
    T_OK(sn_link_up(l));
    T_OK(sn_link_conn(l) != NULL && sn_link_js(l) != NULL);
    T_OK(sn_link_kv(l, SN_FLEET_KV_DEFS) == NULL); /* before ensure */
    struct sn_link_stats st;
    sn_link_stats(l, &st);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", one.s[0].port);
    T_OK(contains(st.server, want));
    T_EQ(st.down_since_ms, 0);
    T_EQU(st.disconnects, 0);
    sn_link_close(l);
    sn_link_close(NULL);
}

/* A loopback port nobody listens on (taken from a server of our own, then stopped). */
static int dead_port(void)
{
    struct th_nats d;
    if (th_nats_start(&d, 1, 0) != 0)
        return -1;
    int port = d.s[0].port;
    th_nats_free(&d);
    return port;
}

static void test_first_dead(void)
{
    T_REQUIRE(need_one());
    int port = dead_port();
    T_REQUIRE(port > 0);
    char urls[256], why[WHY] = "";
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:%d,nats://127.0.0.1:%d", port, one.s[0].port);
    /* cnats shuffles the list: several rounds, so the dead one comes first in some */
    for (int k = 0; k < 4; k++) {
        struct sn_link *l = NULL;
        T_EQ(open_url(urls, NULL, OPEN_MS, &l, why), 0);
        T_OK(sn_link_up(l));
        sn_link_close(l);
    }
    /* only dead servers: -EHOSTUNREACH within the timeout (and not much later) */
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:%d", port);
    struct sn_link *l = (struct sn_link *)1;
    double t0 = th_now_ms();
    T_EQ(open_url(urls, NULL, 600, &l, why), -EHOSTUNREACH);
    double ms = th_now_ms() - t0;
    T_OK(ms >= 300 && ms < 5000);
    t_note("took %.0f ms", ms);
    T_OK(l == NULL);
    T_OK(contains(why, "no NATS server answered at nats://127.0.0.1:"));
}

struct counts {
    atomic_int down, up;
};

static void count_down(void *arg)
{
    atomic_fetch_add(&((struct counts *)arg)->down, 1);
}

static void count_up(void *arg)
{
    atomic_fetch_add(&((struct counts *)arg)->up, 1);
}

static bool wait_count(atomic_int *c, int want, int ms)
{
    for (int k = 0; k < ms / 10; k++) {
        if (atomic_load(c) >= want)
            return true;
        th_sleep_ms(10);
    }
    return atomic_load(c) >= want;
}

static void test_down_up(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    struct counts c = {0};
    struct sn_link_events ev = {.down = count_down, .up = count_up, .arg = &c};
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_url(th_nats_url(&n), &ev, OPEN_MS, &l, why), 0);
    if (!l) {
        th_nats_free(&n);
        return;
    }
    T_EQ(atomic_load(&c.up), 0); /* not for the first connect */
    T_EQ(th_nats_kill(&n, 0, SIGKILL), 0);
    T_OK(wait_count(&c.down, 1, WAIT_MS));
    T_OK(!sn_link_up(l));
    struct sn_link_stats st;
    sn_link_stats(l, &st);
    T_OK(st.down_since_ms > 0);
    T_STR(st.server, "");
    T_EQU(st.disconnects, 1);
    T_EQ(th_nats_restart(&n, 0), 0);
    T_OK(wait_count(&c.up, 1, WAIT_MS));
    T_OK(sn_link_up(l));
    sn_link_stats(l, &st);
    T_EQ(st.down_since_ms, 0);
    T_EQU(st.reconnects, 1);
    /* and once more, with a graceful stop */
    T_EQ(th_nats_stop_all(&n), 0);
    T_OK(wait_count(&c.down, 2, WAIT_MS));
    T_EQ(th_nats_start_all(&n), 0);
    T_OK(wait_count(&c.up, 2, WAIT_MS));
    sn_link_close(l);
    T_EQ(atomic_load(&c.down), 2); /* closing tells nothing */
    T_EQ(atomic_load(&c.up), 2);
    th_nats_free(&n);
}

/* timeout < 0: returns at once with the link down, and connects when a server comes */
static void test_before_server(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    T_EQ(th_nats_stop_all(&n), 0);
    struct counts c = {0};
    struct sn_link_events ev = {.down = count_down, .up = count_up, .arg = &c};
    struct sn_link *l = NULL;
    char why[WHY] = "";
    double t0 = th_now_ms();
    T_EQ(open_url(th_nats_url(&n), &ev, -1, &l, why), 0);
    t_note("%s", why);
    T_OK(th_now_ms() - t0 < 2000);
    if (!l) {
        th_nats_free(&n);
        return;
    }
    T_OK(!sn_link_up(l));
    struct sn_link_stats st;
    sn_link_stats(l, &st);
    T_OK(st.down_since_ms > 0);
    /* ensure with a short bound: not connected */
    T_EQ(sn_link_ensure(l, 300, why, sizeof(why)), -ENOTCONN);
    T_OK(contains(why, "the connection"));
    T_EQ(th_nats_start_all(&n), 0);
    T_OK(wait_count(&c.up, 1, WAIT_MS));
    T_OK(sn_link_up(l));
    T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    sn_link_close(l);
    T_EQ(atomic_load(&c.down), 0);
    th_nats_free(&n);

    /* and closing a link that never connected */
    T_EQ(open_url("nats://127.0.0.1:1", NULL, -1, &l, why), 0);
    T_OK(l && !sn_link_up(l));
    sn_link_close(l);
}

/* ---- ensure -------------------------------------------------------------------------------- */

static void check_stream(jsCtx *js, const char *name, int replicas, int64_t max_age, int64_t dup,
                         int64_t per_subject)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    t_note("stream %s", name);
    T_EQ(js_GetStreamInfo(&si, js, name, NULL, &jerr), NATS_OK);
    if (!si)
        return;
    T_EQ(si->Config->Storage, js_FileStorage);
    T_EQ(si->Config->Replicas, replicas);
    if (max_age >= 0)
        T_EQ(si->Config->MaxAge, max_age);
    if (dup >= 0)
        T_EQ(si->Config->Duplicates, dup);
    if (per_subject)
        T_EQ(si->Config->MaxMsgsPerSubject, per_subject);
    if (replicas > 1) {
        T_OK(si->Cluster != NULL);
        if (si->Cluster)
            T_EQ(si->Cluster->ReplicasLen, replicas - 1);
    }
    jsStreamInfo_Destroy(si);
}

static void check_ensured(struct sn_link *l, int replicas)
{
    jsCtx *js = sn_link_js(l);
    T_EQ(sn_link_replicas(l), replicas);
    check_stream(js, SN_FLEET_FRAMES_STREAM, replicas, 2LL * 86400 * 1000000000LL,
                 180LL * 1000000000LL, 0);
    check_stream(js, "KV_" SN_FLEET_KV_DEFS, replicas, 0, -1, 5);
    check_stream(js, "KV_" SN_FLEET_KV_MEMBERS, replicas, 30LL * 1000000000LL, -1, 1);
    T_OK(sn_link_kv(l, SN_FLEET_KV_DEFS) != NULL);
    T_OK(sn_link_kv(l, SN_FLEET_KV_MEMBERS) != NULL);
    T_OK(sn_link_kv(l, "other") == NULL);
    jsStreamInfo *si = NULL;
    T_EQ(js_GetStreamInfo(&si, js, SN_FLEET_FRAMES_STREAM, NULL, NULL), NATS_OK);
    if (si) {
        T_EQ(si->Config->SubjectsLen, 1);
        if (si->Config->SubjectsLen == 1)
            T_STR(si->Config->Subjects[0], SN_FLEET_FRAMES_ALL);
    }
    jsStreamInfo_Destroy(si);
    /* the buckets work: a put and a get */
    kvStore *kv = sn_link_kv(l, SN_FLEET_KV_DEFS);
    uint64_t rev = 0;
    T_EQ(kvStore_PutString(&rev, kv, "next._", "1"), NATS_OK);
    kvEntry *e = NULL;
    natsStatus gs = NATS_NOT_FOUND;
    /* a stream just made on 3 servers may answer a first read from a replica that has not the
     * put yet (not found), or time it out, on a loaded machine (seen in CI at -j2): a few tries
     * 100 ms apart, bounded */
    for (int i = 0; i < 20 && (gs == NATS_NOT_FOUND || gs == NATS_TIMEOUT); i++) {
        if (i)
            nats_Sleep(100);
        gs = kvStore_Get(&e, kv, "next._");
    }
    T_EQ(gs, NATS_OK);
    if (e)
        T_STR(kvEntry_ValueString(e), "1");
    kvEntry_Destroy(e);
}

struct racer {
    const char *url;
    int ensure_ms;
    int rc;
    char why[WHY];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct sn_link *l = NULL;
    r->rc = open_url(r->url, NULL, OPEN_MS, &l, r->why);
    if (r->rc == 0)
        r->rc = sn_link_ensure(l, r->ensure_ms, r->why, sizeof(r->why));
    sn_link_close(l);
    return NULL;
}

static void test_ensure(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_url(th_nats_url(&n), NULL, OPEN_MS, &l, why), 0);
    if (l) {
        T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
        t_note("%s", why);
        check_ensured(l, 1);
        /* a second ensure changes nothing */
        jsStreamInfo *a = NULL, *b = NULL;
        T_EQ(js_GetStreamInfo(&a, sn_link_js(l), SN_FLEET_FRAMES_STREAM, NULL, NULL), NATS_OK);
        T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
        T_EQ(js_GetStreamInfo(&b, sn_link_js(l), SN_FLEET_FRAMES_STREAM, NULL, NULL), NATS_OK);
        if (a && b) {
            T_EQ(a->Created, b->Created);
            T_EQ(a->Config->MaxAge, b->Config->MaxAge);
        }
        jsStreamInfo_Destroy(a);
        jsStreamInfo_Destroy(b);
        /* another link finds them */
        struct sn_link *l2 = NULL;
        T_EQ(open_url(th_nats_url(&n), NULL, OPEN_MS, &l2, why), 0);
        T_EQ(sn_link_ensure(l2, OPEN_MS, why, sizeof(why)), 0);
        check_ensured(l2, 1);
        sn_link_close(l2);
    }
    sn_link_close(l);
    th_nats_free(&n);

    /* two nodes at once on a fresh server, several times */
    for (int round = 0; round < 3; round++) {
        T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
        struct racer r[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            r[i] = (struct racer){.url = th_nats_url(&n), .ensure_ms = OPEN_MS};
            pthread_create(&th[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            t_note("racer %d: %s", i, r[i].why);
            T_EQ(r[i].rc, 0);
        }
        T_EQ(open_url(th_nats_url(&n), NULL, OPEN_MS, &l, why), 0);
        T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
        check_ensured(l, 1);
        sn_link_close(l);
        th_nats_free(&n);
    }
}

/* an existing stream with shorter limits is raised to ours; a longer one is kept */
static void test_ensure_update(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, 0) == 0);
    struct sn_link_opts o;
    const char *kv[] = {"--nats", th_nats_url(&n), NULL};
    opts_of(&o, kv);
    o.frames_keep_s = 600;
    o.dedup_s = 30;
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(sn_link_open(&o, NULL, OPEN_MS, &l, why, sizeof(why)), 0);
    T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    check_stream(sn_link_js(l), SN_FLEET_FRAMES_STREAM, 1, 600LL * 1000000000LL,
                 30LL * 1000000000LL, 0);
    sn_link_close(l);
    o.frames_keep_s = 0; /* the defaults: 2 days, 180 s */
    o.dedup_s = 0;
    T_EQ(sn_link_open(&o, NULL, OPEN_MS, &l, why, sizeof(why)), 0);
    T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    t_note("%s", why);
    check_ensured(l, 1);
    sn_link_close(l);
    o.frames_keep_s = 60;
    o.dedup_s = 10;
    T_EQ(sn_link_open(&o, NULL, OPEN_MS, &l, why, sizeof(why)), 0);
    T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    check_ensured(l, 1); /* not shortened */
    sn_link_close(l);
    /* 3 replicas asked of a lone server: a clear refusal, not a retry until the deadline */
    const char *kv3[] = {"--nats", th_nats_url(&n), "--nats-replicas", "3", NULL};
    sn_link_opts_fini(&o);
    opts_of(&o, kv3);
    struct th_nats fresh;
    T_REQUIRE(th_nats_start(&fresh, 1, 0) == 0);
    free(o.urls);
    o.urls = strdup(th_nats_url(&fresh));
    T_EQ(sn_link_open(&o, NULL, OPEN_MS, &l, why, sizeof(why)), 0);
    double t0 = th_now_ms();
    T_EQ(sn_link_ensure(l, 10000, why, sizeof(why)), -EIO);
    T_OK(th_now_ms() - t0 < 5000);
    T_OK(contains(why, "stream SONDE_FRAMES (replicas 3)"));
    T_OK(contains(why, "replicas > 1 not supported in non-clustered mode"));
    sn_link_close(l);
    sn_link_opts_fini(&o);
    th_nats_free(&fresh);
    th_nats_free(&n);
}

static void test_ensure_cluster(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 3, 0) == 0);
    struct sn_link *l = NULL;
    char why[WHY] = "", url0[64], urls[3][64];
    /* three nodes at once, each on its own server with that one URL only */
    struct racer r[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct racer){.url = th_nats_url_of(&n, i, urls[i], sizeof(urls[i])),
                              .ensure_ms = 15000};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        t_note("racer %d: %s", i, r[i].why);
        T_EQ(r[i].rc, 0);
    }
    /* one URL: the others are discovered, and the replicas follow (3) */
    T_EQ(open_url(th_nats_url_of(&n, 0, url0, sizeof(url0)), NULL, OPEN_MS, &l, why), 0);
    if (l) {
        T_EQ(sn_link_ensure(l, 15000, why, sizeof(why)), 0);
        t_note("%s", why);
        check_ensured(l, 3);
        /* with one server of three gone, ensure still finds everything (a quorum is left) */
        T_EQ(th_nats_kill(&n, 1, SIGKILL), 0);
        T_EQ(sn_link_ensure(l, 15000, why, sizeof(why)), 0);
        t_note("%s", why);
        /* a node connected to another server finds them */
        struct sn_link *l2 = NULL;
        char url2[64];
        T_EQ(open_url(th_nats_url_of(&n, 2, url2, sizeof(url2)), NULL, OPEN_MS, &l2, why), 0);
        T_EQ(sn_link_ensure(l2, 15000, why, sizeof(why)), 0);
        check_ensured(l2, 3);
        sn_link_close(l2);
    }
    sn_link_close(l);
    th_nats_free(&n);
}

static uint64_t stream_msgs(struct sn_link *l)
{
    jsStreamInfo *si = NULL;
    uint64_t n = UINT64_MAX;
    if (js_GetStreamInfo(&si, sn_link_js(l), SN_FLEET_FRAMES_STREAM, NULL, NULL) == NATS_OK)
        n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* The whole cluster down and back (the harness's outage), one server killed and restarted: the
 * link comes back each time, and what the stream holds survives (same store directories). */
static void test_cluster_outage(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 3, 0) == 0);
    struct counts c = {0};
    struct sn_link_events ev = {.down = count_down, .up = count_up, .arg = &c};
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_url(th_nats_url(&n), &ev, OPEN_MS, &l, why), 0);
    if (!l) {
        th_nats_free(&n);
        return;
    }
    T_EQ(sn_link_ensure(l, 15000, why, sizeof(why)), 0);
    jsPubAck *pa = NULL;
    T_EQ(js_Publish(&pa, sn_link_js(l), "sonde.frames.7.h1", "x", 1, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    T_EQU(stream_msgs(l), 1);

    T_EQ(th_nats_stop_all(&n), 0);
    T_OK(wait_count(&c.down, 1, WAIT_MS));
    T_OK(!sn_link_up(l));
    th_sleep_ms(1000);
    T_EQ(th_nats_start_all(&n), 0);
    T_OK(wait_count(&c.up, 1, WAIT_MS));
    T_EQ(sn_link_ensure(l, 15000, why, sizeof(why)), 0);
    t_note("%s", why);
    T_EQU(stream_msgs(l), 1);

    /* the server this link is on, killed and restarted: it moves to another one */
    struct sn_link_stats st;
    sn_link_stats(l, &st);
    int on = -1;
    for (int i = 0; i < n.n; i++) {
        char u[64];
        snprintf(u, sizeof(u), "127.0.0.1:%d", n.s[i].port);
        if (strstr(st.server, u))
            on = i;
    }
    T_REQUIRE(on >= 0);
    T_EQ(th_nats_kill(&n, on, SIGKILL), 0);
    T_OK(wait_count(&c.up, 2, WAIT_MS));
    T_EQ(th_nats_restart(&n, on), 0);
    T_EQ(sn_link_ensure(l, 15000, why, sizeof(why)), 0);
    T_EQU(stream_msgs(l), 1);
    sn_link_close(l);
    th_nats_free(&n);
}

/* the duplicate window: the same Nats-Msg-Id twice is stored once */
static void test_dedup(void)
{
    T_REQUIRE(need_one());
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_url(th_nats_url(&one), NULL, OPEN_MS, &l, why), 0);
    T_REQUIRE(l != NULL);
    T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    jsCtx *js = sn_link_js(l);
    const char *subj = "sonde.frames.7.host-a";
    bool dup[3] = {false, false, false};
    for (int i = 0; i < 3; i++) {
        natsMsg *m = NULL;
        T_EQ(natsMsg_Create(&m, subj, NULL, "frame", 5), NATS_OK);
        T_EQ(natsMsgHeader_Set(m, "Nats-Msg-Id", i < 2 ? "host-a.7.1700000000" : "host-a.7.1"),
             NATS_OK);
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        T_EQ(js_PublishMsg(&pa, js, m, NULL, &jerr), NATS_OK);
        if (pa) {
            dup[i] = pa->Duplicate;
            T_STR(pa->Stream, SN_FLEET_FRAMES_STREAM);
        }
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
    }
    T_OK(!dup[0] && dup[1] && !dup[2]);
    jsStreamInfo *si = NULL;
    T_EQ(js_GetStreamInfo(&si, js, SN_FLEET_FRAMES_STREAM, NULL, NULL), NATS_OK);
    if (si)
        T_EQU(si->State.Msgs, 2);
    jsStreamInfo_Destroy(si);
    sn_link_close(l);
}

/* ---- credentials --------------------------------------------------------------------------- */

static int open_with(const struct th_nats *n, const char *const *extra, struct sn_link **l,
                     char *why)
{
    struct sn_link_opts o;
    const char *kv[16] = {"--nats", th_nats_url(n)};
    int k = 2;
    for (int i = 0; extra && extra[i] && k < 14; i++)
        kv[k++] = extra[i];
    kv[k] = NULL;
    opts_of(&o, kv);
    *l = NULL;
    int rc = sn_link_open(&o, NULL, 3000, l, why, WHY);
    sn_link_opts_fini(&o);
    return rc;
}

static void expect_open(const struct th_nats *n, const char *const *extra, int want,
                        const char *msg)
{
    struct sn_link *l = NULL;
    char why[WHY] = "";
    double t0 = th_now_ms();
    int rc = open_with(n, extra, &l, why);
    t_note("%s -> %d: %s", extra && extra[0] ? extra[0] : "(no credentials)", rc, why);
    T_EQ(rc, want);
    if (rc == 0) {
        T_OK(sn_link_up(l));
        T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
    } else {
        T_OK(l == NULL);
        T_OK(th_now_ms() - t0 < 2500); /* told at once, not retried until the timeout */
    }
    if (msg)
        T_OK(contains(why, msg));
    sn_link_close(l);
}

static void test_userpass(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, TH_NATS_USERPASS) == 0);
    const char *good[] = {"--nats-user", TH_NATS_USER, "--nats-password", TH_NATS_PASSWORD, NULL};
    expect_open(&n, good, 0, NULL);
    const char *bad[] = {"--nats-user", TH_NATS_USER, "--nats-password", "wrong", NULL};
    expect_open(&n, bad, -EACCES, "refused this client: Authorization Violation");
    expect_open(&n, NULL, -EACCES, "Authorization Violation");
    const char *tok[] = {"--nats-token", TH_NATS_PASSWORD, NULL};
    expect_open(&n, tok, -EACCES, "Authorization Violation");
    th_nats_free(&n);
}

static void test_token(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, TH_NATS_TOKEN) == 0);
    const char *good[] = {"--nats-token", TH_NATS_TOKEN_VALUE, NULL};
    expect_open(&n, good, 0, NULL);
    const char *bad[] = {"--nats-token", "wrong", NULL};
    expect_open(&n, bad, -EACCES, "Authorization Violation");
    expect_open(&n, NULL, -EACCES, "Authorization Violation");
    th_nats_free(&n);
}

static void test_tls(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, TH_NATS_TLS) == 0);
    const char *good[] = {"--nats-tls-ca", n.ca, "--nats-tls-cert", n.cert, "--nats-tls-key",
                          n.key,           NULL};
    expect_open(&n, good, 0, NULL);
    /* no client certificate: the server requires one */
    const char *nocert[] = {"--nats-tls-ca", n.ca, NULL};
    expect_open(&n, nocert, -EACCES, "refused this client");
    /* a CA that did not sign the server's certificate (the client's own certificate) */
    const char *badca[] = {"--nats-tls-ca", n.cert, "--nats-tls-cert", n.cert, "--nats-tls-key",
                           n.key,           NULL};
    expect_open(&n, badca, -EACCES, "refused this client");
    /* a key that is not the certificate's: refused before any connection */
    const char *badkey[] = {
        "--nats-tls-ca", n.ca, "--nats-tls-cert", n.cert, "--nats-tls-key", n.ca, NULL};
    expect_open(&n, badkey, -EINVAL, "--nats-tls-cert");
    th_nats_free(&n);
}

/* an nkey made without nsc (support/nats.c): the seed file signs the server's nonce */
static void test_nkey(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, TH_NATS_NKEY) == 0);
    t_note("nkey %s (%s)", n.nkey, n.nkey_pub);
    const char *good[] = {"--nats-nkey", n.nkey, NULL};
    expect_open(&n, good, 0, NULL);
    expect_open(&n, NULL, -EACCES, "Authorization Violation");
    /* another key (this one's public key, with the seed of a second server's key) */
    struct th_nats other;
    T_REQUIRE(th_nats_start(&other, 1, TH_NATS_NKEY) == 0);
    char mixed[400];
    snprintf(mixed, sizeof(mixed), "%s/mixed.nk", n.dir);
    FILE *f = fopen(mixed, "w"), *g = fopen(other.nkey, "r");
    char seed[128] = "";
    if (g && fgets(seed, sizeof(seed), g))
        seed[strcspn(seed, "\n")] = '\0';
    if (g)
        fclose(g);
    if (f) {
        fprintf(f, "%s\n%s\n", seed, n.nkey_pub);
        fclose(f);
    }
    const char *bad[] = {"--nats-nkey", mixed, NULL};
    expect_open(&n, bad, -EACCES, "Authorization Violation");
    /* a seed alone: told what the file needs */
    f = fopen(mixed, "w");
    if (f) {
        fprintf(f, "%s\n", seed);
        fclose(f);
    }
    expect_open(&n, bad, -EINVAL, "no public key (a line U...");
    th_nats_free(&other);
    th_nats_free(&n);
}

/* Whether server 0 of n lists stream name in account acc (its public key), as its /jsz says
 * (it lists an account while the account has clients): 1, 0, or -1 when it did not answer. */
static int account_has_stream(const struct th_nats *n, const char *acc, const char *name)
{
    struct th_resp r;
    int has = -1;
    if (th_request(n->s[0].monitor_port, "GET", "/jsz?accounts=true&streams=true", NULL, NULL, 0,
                   2000, &r) == 0 &&
        r.status == 200) {
        /* as reals: reserved_memory is 2^64 - 1 (no limit), beyond jansson's integers */
        json_t *j = json_loadb(r.body, r.len, JSON_DECODE_INT_AS_REAL, NULL), *a, *st;
        size_t i, k;
        has = 0;
        json_array_foreach(json_object_get(j, "account_details"), i, a)
        {
            const char *id = json_string_value(json_object_get(a, "id"));
            if (!id || strcmp(id, acc) != 0)
                continue;
            json_array_foreach(json_object_get(a, "stream_detail"), k, st)
            {
                const char *sn = json_string_value(json_object_get(st, "name"));
                has |= sn && strcmp(sn, name) == 0;
            }
        }
        json_decref(j);
    }
    th_resp_free(&r);
    return has;
}

/* operator mode (support/nats.c makes the operator, account and user JWTs with openssl): the
 * .creds file opens the link and ensure makes the streams and buckets in the user's account; no
 * credentials, a user of another operator's account, and this user's JWT with another key's
 * seed are refused */
static void test_creds(void)
{
    struct th_nats n;
    T_REQUIRE(th_nats_start(&n, 1, TH_NATS_CREDS) == 0);
    t_note("creds %s (account %s)", n.creds, n.creds_account);
    const char *good[] = {"--nats-creds", n.creds, NULL};
    expect_open(&n, good, 0, NULL); /* and sn_link_ensure */
    /* what ensure made is in the user's account, and works (check_ensured: a bucket's put and
     * get) */
    struct sn_link *l = NULL;
    char why[WHY] = "";
    T_EQ(open_with(&n, good, &l, why), 0);
    if (l) {
        T_EQ(sn_link_ensure(l, OPEN_MS, why, sizeof(why)), 0);
        check_ensured(l, 1);
        const char *names[] = {SN_FLEET_FRAMES_STREAM, "KV_" SN_FLEET_KV_DEFS,
                               "KV_" SN_FLEET_KV_MEMBERS};
        for (int i = 0; i < 3; i++) {
            t_note("stream %s in account %s", names[i], n.creds_account);
            T_EQ(account_has_stream(&n, n.creds_account, names[i]), 1);
        }
    }
    sn_link_close(l);
    expect_open(&n, NULL, -EACCES, "Authorization Violation");
    /* a user of another operator's account: the server says "Account fetch failed: account
     * missing" in its log and refuses it */
    struct th_nats other;
    T_REQUIRE(th_nats_start(&other, 1, TH_NATS_CREDS) == 0);
    const char *bad[] = {"--nats-creds", other.creds, NULL};
    expect_open(&n, bad, -EACCES, "Authorization Violation");
    /* this user's JWT with the other user's seed: the nonce's signature does not match */
    char mixed[400], line[JWT_LINE];
    snprintf(mixed, sizeof(mixed), "%s/mixed.creds", n.dir);
    FILE *f = fopen(mixed, "w"), *mine = fopen(n.creds, "r"), *theirs = fopen(other.creds, "r");
    T_OK(f && mine && theirs);
    if (f && mine && theirs) {
        bool seed = false;
        while (fgets(line, sizeof(line), mine) && !strstr(line, "BEGIN USER NKEY SEED"))
            fputs(line, f);
        while (fgets(line, sizeof(line), theirs))
            if (seed || (seed = strstr(line, "BEGIN USER NKEY SEED") != NULL))
                fputs(line, f);
        T_OK(seed);
    }
    if (f)
        fclose(f);
    if (mine)
        fclose(mine);
    if (theirs)
        fclose(theirs);
    const char *wrong[] = {"--nats-creds", mixed, NULL};
    expect_open(&n, wrong, -EACCES, "Authorization Violation");
    th_nats_free(&other);
    th_nats_free(&n);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("opt", test_opt);
    t_run("opts_check", test_opts_check);
    t_run("connect", test_connect);
    t_run("first_dead", test_first_dead);
    t_run("down_up", test_down_up);
    t_run("before_server", test_before_server);
    t_run("ensure", test_ensure);
    t_run("ensure_update", test_ensure_update);
    t_run("ensure_cluster", test_ensure_cluster);
    t_run("dedup", test_dedup);
    t_run("cluster_outage", test_cluster_outage);
    t_run("userpass", test_userpass);
    t_run("token", test_token);
    t_run("tls", test_tls);
    t_run("nkey", test_nkey);
    t_run("creds", test_creds);
    th_nats_free(&one);
    nats_CloseAndWait(5000); /* cnats's threads and global state, for LeakSanitizer */
    return t_done();
}
