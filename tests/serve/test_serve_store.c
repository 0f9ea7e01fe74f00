/*
 * The store (issue 14) through real `sonde serve --no-agent` processes: what the server keeps
 * survives it, and history reads back exactly what was put in.
 *
 * Covered: restart (SIGTERM: values and ids identical; kill -9 during real-time ingest: every
 * second older than 3 s before the kill is there); 50 kill -9 at random moments during heavy
 * ingest and the store's writes (mdb_stat -a clean after each, every frame acknowledged well
 * before the kill there with its exact value, no torn record); a full disk for data (writes
 * fail and are counted, the server answers from memory, writing resumes when space returns);
 * 40 simulated days imported (every arity, several keys, two hosts, a point-scope metric):
 * value/raw and heatmap/details|average over 1 h, 1 d, 7 d and 30 d equal a plain model's
 * merge of the same frames over the reply's aligned interval, at the granularity and tier
 * store/history.h's rule picks; export -> import into a fresh server gives identical answers;
 * retention by tier (--tiers) and the deletion of an instrumentation's records; the size cap
 * (--store-max-bytes) dropping the oldest raw records first.
 *
 * The full-disk case mounts a tmpfs (root, as CI runs). Usage: test_serve_store SONDE
 * [CASE-FILTER].
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/hist.h"
#include "http.h"
#include "t.h"

static const char *sonde;
static const char *const no_agent[] = {"--no-agent", NULL};

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* A request with a JSON body (or none); the reply parsed as JSON (NULL when it is not). */
static json_t *jreq(int port, const char *method, const char *path, const char *body, int *status)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    struct th_resp r = {0};
    json_t *j = NULL;
    int rc =
        th_request(port, method, path, body ? h : NULL, body, body ? strlen(body) : 0, 30000, &r);

    *status = rc == 0 ? r.status : 0;
    if (rc == 0 && r.body && r.len)
        j = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    th_resp_free(&r);
    return j;
}

__attribute__((format(printf, 3, 4))) static json_t *getf(int port, int *status, const char *fmt,
                                                          ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return jreq(port, "GET", path, NULL, status);
}

/* The body of a GET (owned, NUL-terminated), or NULL unless 200. */
static char *get_text(int port, const char *path, size_t *len)
{
    struct th_resp r = {0};
    char *out = NULL;
    if (th_request(port, "GET", path, NULL, NULL, 0, 30000, &r) == 0 && r.status == 200) {
        out = r.body;
        *len = r.len;
        r.body = NULL;
    }
    th_resp_free(&r);
    return out;
}

/* A series of GET /metrics, or -1 when absent. */
static double metric(int port, const char *series)
{
    struct th_resp r = {0};
    double v = -1;
    size_t n = strlen(series);

    if (th_get(port, "/metrics", &r) == 0 && r.status == 200)
        for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
    th_resp_free(&r);
    return v;
}

/* Waits (bounded: 20 s) until the store has nothing pending, twice in a row 300 ms apart. */
static void settle(int port)
{
    int quiet = 0;
    for (int i = 0; i < 66 && quiet < 2; i++) {
        quiet = metric(port, "sonde_store_pending") == 0 ? quiet + 1 : 0;
        th_sleep_ms(300);
    }
    T_EQ(quiet, 2);
}

/* Creates an instrumentation; its id, or -1. */
static int create(int port, const char *props)
{
    int st;
    json_t *j = jreq(port, "POST", "/ca/instrumentations", props, &st);
    const char *id = json_string_value(json_object_get(j, "id"));
    int out = st == 201 && id ? atoi(id) : -1;
    if (out < 0)
        t_note("create %s: status %d", props, st);
    json_decref(j);
    return out;
}

/* POSTs a body of frames to path; the reply's "accepted" (or -status when not 200). */
static json_int_t post_frames(int port, const char *path, const char *body, size_t len)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    struct th_resp r = {0};
    json_int_t out = -1;
    if (th_request(port, "POST", path, h, body, len, 60000, &r) == 0) {
        json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        out = j ? json_integer_value(json_object_get(j, "accepted")) : -r.status;
        if (!j)
            t_note("POST %s: %d %.200s", path, r.status, r.body ? r.body : "");
        json_decref(j);
    }
    th_resp_free(&r);
    return out;
}

/* kill -9, reaped; s can be started again on its directory. */
static void crash(struct th_serve *s)
{
    T_EQ(kill(s->pid, SIGKILL), 0);
    T_EQ(waitpid(s->pid, NULL, 0), s->pid);
    if (s->out)
        fclose(s->out);
    s->out = NULL;
    s->pid = 0;
}

/* mdb_stat -a on the store of a stopped server: its exit status. */
static int mdb_stat(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "mdb_stat -a '%s/store' >/dev/null 2>&1", dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A growing text buffer for request bodies. */
struct text {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void tprintf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 65536) + (size_t)n;
        char *p = realloc(t->p, cap);
        T_REQUIRE(p != NULL);
        t->p = p;
        t->cap = cap;
    }
}

/* ---- restart: SIGTERM and kill -9 ---------------------------------------------------------- */

#define NI    8 /* instrumentations of the crash rounds: NDISC discrete, the rest scalar */
#define NDISC 6
#define NK    20 /* keys of a discrete frame: "p00".."p19", key k counting k + 1 */
#define SPAN  600

/* What was acknowledged, per second since base, for the instrumentations of a crash run (each
 * request carries one frame of every instrumentation for one second, so one count holds). */
struct model {
    int64_t base;
    int acked[SPAN];   /* requests acknowledged for the second */
    int sent[SPAN];    /* requests sent for it (acknowledged or not) */
    bool unsure[SPAN]; /* a request for it was not surely written before a kill */
    double last[SPAN]; /* th_now_ms() of the last acknowledgement */
};

struct feeder {
    int port;
    const int *ids;
    struct model *m;
    int64_t first; /* frames are stamped first + n % spread; first 0: now (real time) */
    int spread;    /* */
    atomic_bool stop;
    int requests;     /* made */
    int bad;          /* answers other than 200 with every frame accepted, or no answer */
    int64_t inflight; /* the second of the request being made, or -1 */
};

/* One request of frames for second t, one per instrumentation. */
static void frames_for(struct text *b, const int *ids, int64_t t)
{
    b->len = 0;
    for (int i = 0; i < NI; i++) {
        if (i < NDISC) {
            tprintf(b,
                    "{\"id\":\"%d\",\"host\":\"h\",\"t\":%" PRId64
                    ",\"arity\":\"discrete-decomposition\",\"value\":{",
                    ids[i], t);
            for (int k = 0; k < NK; k++)
                tprintf(b, "%s\"p%02d\":%d", k ? "," : "", k, k + 1);
            tprintf(b, "}}\n");
        } else {
            tprintf(b,
                    "{\"id\":\"%d\",\"host\":\"h\",\"t\":%" PRId64
                    ",\"arity\":\"scalar\",\"value\":3}\n",
                    ids[i], t);
        }
    }
}

static void *feed(void *arg)
{
    struct feeder *f = arg;
    struct text b = {0};
    double until = th_now_ms() + 20000;
    for (int n = 0; n < 20000 && !atomic_load(&f->stop) && th_now_ms() < until; n++) {
        int64_t t = f->first ? f->first + n % f->spread : now_s();
        int64_t i = t - f->m->base;
        if (i < 0 || i >= SPAN)
            break;
        frames_for(&b, f->ids, t);
        f->m->sent[i]++;
        f->inflight = t;
        json_int_t acc = post_frames(f->port, "/ca/ingest", b.p, b.len);
        f->requests++;
        if (acc == NI) {
            f->m->acked[i]++;
            f->m->last[i] = th_now_ms();
            f->inflight = -1;
        } else if (!atomic_load(&f->stop)) {
            f->bad++;
        }
    }
    free(b.p);
    return NULL;
}

/* After a kill at kill_ms: seconds with a request in flight, or acknowledged within margin_ms of
 * the kill, or (real-time frames) not yet closed and written (t > K - 4), are not sure. */
static void after_kill(struct model *m, struct feeder *f, double kill_ms, int64_t K,
                       double margin_ms)
{
    if (f->inflight >= 0 && f->inflight - m->base < SPAN)
        m->unsure[f->inflight - m->base] = true;
    for (int i = 0; i < SPAN; i++)
        if (m->sent[i] != m->acked[i] || (m->acked[i] && m->last[i] > kill_ms - margin_ms) ||
            (m->sent[i] && m->base + i > K - 4))
            m->unsure[i] = true;
    /* a request sent and not answered stays counted as sent: its second stays unsure */
    for (int i = 0; i < SPAN; i++)
        if (m->unsure[i])
            m->sent[i] = m->acked[i] = -1000000;
}

static int bad_values; /* sure seconds that did not hold what was acknowledged */

/* Every instrumentation's values over the model's seconds up to end: a sure second holds
 * exactly what was acknowledged (nothing for a second never sent); an unsure one is whole
 * requests (every key the same multiple), never more than were sent. Returns the sure seconds
 * with data checked. */
static int check_model(int port, const int *ids, const struct model *m, int64_t end)
{
    int n = (int)(end - m->base), sure = 0, st;
    if (n > SPAN)
        n = SPAN;
    for (int i = 0; i < NI; i++) {
        json_t *j = getf(port, &st,
                         "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                         "&duration=1&ndatapoints=%d&timeout=0",
                         ids[i], m->base, n);
        if (!T_EQ(st, 200))
            t_note("%s", json_dumps(j, JSON_COMPACT));
        T_REQUIRE(json_array_size(j) == (size_t)n);
        for (int s = 0; s < n; s++) {
            const json_t *v = json_object_get(json_array_get(j, (size_t)s), "value");
            json_int_t got0 =
                i < NDISC ? json_integer_value(json_object_get(v, "p00")) : json_integer_value(v);
            if (m->acked[s] >= 0) { /* sure */
                sure += i == 0 && m->acked[s] > 0;
                if (got0 != (i < NDISC ? 1 : 3) * m->acked[s])
                    t_note("instrumentation %d, second base+%d: %lld, acknowledged %d", ids[i], s,
                           (long long)got0, m->acked[s]);
                if (!T_EQ(got0, (i < NDISC ? 1 : 3) * m->acked[s]))
                    bad_values++;
            }
            if (i < NDISC) { /* whole frames only: key k counts k + 1 per frame */
                T_EQ(json_object_size(v), got0 ? NK : 0);
                for (int k = 1; k < NK; k++) {
                    char key[8];
                    snprintf(key, sizeof(key), "p%02d", k);
                    T_EQ(json_integer_value(json_object_get(v, key)), (k + 1) * got0);
                }
            } else {
                T_EQ(got0 % 3, 0);
            }
        }
        json_decref(j);
    }
    return sure;
}

static void make_insts(int port, int *ids)
{
    for (int i = 0; i < NI; i++) {
        ids[i] = create(port, i < NDISC ? "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                                          "\"decomposition\":[\"execname\"]}"
                                        : "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
        T_REQUIRE(ids[i] > 0);
    }
}

/* The ids listed by GET /ca/instrumentations, as "1,2,3". */
static void list_ids(int port, char *out, size_t len)
{
    int st;
    json_t *j = jreq(port, "GET", "/ca/instrumentations", NULL, &st), *e;
    size_t i, at = 0;
    out[0] = '\0';
    json_array_foreach(j, i, e) at += (size_t)snprintf(out + at, len - at, "%s%s", i ? "," : "",
                                                       json_string_value(json_object_get(e, "id")));
    json_decref(j);
}

/* The "value" members of value/raw over n seconds from t0, as one JSON text (owned). */
static char *values_of(int port, int id, int64_t t0, int n)
{
    int st;
    json_t *j = getf(port, &st,
                     "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                     "&duration=1&ndatapoints=%d&timeout=0",
                     id, t0, n);
    json_t *vals = json_array(), *e;
    size_t i;
    json_array_foreach(j, i, e) json_array_append(vals, json_object_get(e, "value"));
    char *out = json_dumps(vals, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(vals);
    json_decref(j);
    return out;
}

static void test_restart(void)
{
    struct th_serve s;
    int ids[NI], st;
    char before[256], after[256], dir[256];
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &s) == 0);
    snprintf(dir, sizeof(dir), "%s", s.dir); /* th_serve_start() writes s.dir */
    make_insts(s.port, ids);

    /* SIGTERM: values and ids identical */
    struct text b = {0};
    int64_t t0 = now_s() - 100;
    for (int64_t t = t0; t < t0 + 60; t += 3) {
        frames_for(&b, ids, t);
        T_EQ(post_frames(s.port, "/ca/ingest", b.p, b.len), NI);
    }
    free(b.p);
    char *v1[NI];
    for (int i = 0; i < NI; i++)
        v1[i] = values_of(s.port, ids[i], t0, 60);
    list_ids(s.port, before, sizeof(before));
    T_EQ(th_serve_stop(&s), 0);
    T_REQUIRE(th_serve_start(sonde, no_agent, dir, &s) == 0);
    list_ids(s.port, after, sizeof(after));
    T_STR(after, before);
    for (int i = 0; i < NI; i++) {
        char *v2 = values_of(s.port, ids[i], t0, 60);
        T_STR(v2, v1[i]);
        free(v1[i]);
        free(v2);
    }
    json_t *j =
        getf(s.port, &st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64, ids[0], t0);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "value"), "p03")), 4);
    json_decref(j);

    /* kill -9 during real-time ingest (frames for the current second): every second older
     * than 3 s before the kill is there */
    static struct model m;
    memset(&m, 0, sizeof(m));
    m.base = now_s();
    struct feeder f = {.port = s.port, .ids = ids, .m = &m, .inflight = -1};
    pthread_t th;
    T_REQUIRE(pthread_create(&th, NULL, feed, &f) == 0);
    th_sleep_ms(6500);
    int64_t K = now_s();
    double kill_ms = th_now_ms();
    atomic_store(&f.stop, true); /* what fails from now on is the kill's */
    crash(&s);
    pthread_join(th, NULL);
    T_EQ(f.bad, 0);
    after_kill(&m, &f, kill_ms, K, 0);
    T_EQ(mdb_stat(dir), 0);
    T_REQUIRE(th_serve_start(sonde, no_agent, dir, &s) == 0);
    int sure = check_model(s.port, ids, &m, K);
    fprintf(stderr, "# kill -9 at base+%d: %d seconds sure\n", (int)(K - m.base), sure);
    T_OK(sure >= 2);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 50 kill -9 during heavy writes -------------------------------------------------------- */

#define ROUNDS 50

/* Each round: a server on the same directory, ingest in a loop for 200..500 ms (frames of
 * every instrumentation for 3 seconds of the round's own, closed long ago, so that the store
 * has them to write at once), killed at a random moment 100..2000 ms after the ingest started,
 * during it or during the store's writes. A frame acknowledged 1.5 s before the kill (its slot
 * closed: the writer's tick once a second, and a commit) is sure to be written; the seconds of
 * the others are checked for whole frames only. Bounded: 50 rounds, ~70 s here. */
static void test_crash_rounds(void)
{
    static struct model m;
    struct th_serve s;
    int ids[NI], sure = 0, killed_ingesting = 0;
    double t_start = th_now_ms();
    char dir[256];

    memset(&m, 0, sizeof(m));
    m.base = now_s() - 3 * ROUNDS - 30;
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &s) == 0);
    snprintf(dir, sizeof(dir), "%s", s.dir);
    make_insts(s.port, ids);
    srand((unsigned)getpid());
    for (int r = 0; r < ROUNDS && th_now_ms() - t_start < 150000; r++) {
        /* each round its own 3 seconds, closed long ago (the rounds take ~1.3 s each) */
        struct feeder f = {.port = s.port,
                           .ids = ids,
                           .m = &m,
                           .first = m.base + 3 * r,
                           .spread = 3,
                           .inflight = -1};
        pthread_t th;
        int ingest_ms = 200 + rand() % 300, kill_at = 100 + rand() % 1900;
        T_REQUIRE(pthread_create(&th, NULL, feed, &f) == 0);
        th_sleep_ms(kill_at < ingest_ms ? kill_at : ingest_ms);
        if (kill_at >= ingest_ms) { /* the ingest ends; the store's writes go on */
            atomic_store(&f.stop, true);
            pthread_join(th, NULL);
            th_sleep_ms(kill_at - ingest_ms);
        }
        int64_t K = now_s();
        double kill_ms = th_now_ms();
        atomic_store(&f.stop, true); /* what fails from now on is the kill's */
        crash(&s);
        if (kill_at < ingest_ms) {
            killed_ingesting++;
            pthread_join(th, NULL);
        }
        t_note("round %d: %d requests, killed at %d ms", r, f.requests, kill_at);
        T_EQ(f.bad, 0);
        after_kill(&m, &f, kill_ms, K, 1500);
        T_EQ(mdb_stat(dir), 0);
        T_REQUIRE(th_serve_start(sonde, no_agent, dir, &s) == 0);
        sure = check_model(s.port, ids, &m, m.base + 3 * ROUNDS);
        if (bad_values)
            break;
    }
    fprintf(stderr, "# %d seconds sure, %d kills during ingest, %.0f s\n", sure, killed_ingesting,
            (th_now_ms() - t_start) / 1000);
    T_OK(sure >= 10);
    T_OK(killed_ingesting >= 1);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- a full disk for data ------------------------------------------------------------------ */

/* Fills the filesystem of dir with dir/filler until it refuses a byte more. */
static void fill(const char *dir)
{
    char path[600], block[65536];
    snprintf(path, sizeof(path), "%s/filler", dir);
    memset(block, 'x', sizeof(block));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    T_REQUIRE(fd >= 0);
    for (size_t chunk = sizeof(block); chunk > 0; chunk /= 2)
        while (write(fd, block, chunk) == (ssize_t)chunk)
            ;
    close(fd);
}

/* A discrete frame of 100 long keys (distinct per n) for second t of instrumentation id. */
static void big_frame(struct text *b, int id, int64_t t, int n)
{
    b->len = 0;
    tprintf(b,
            "{\"id\":\"%d\",\"host\":\"h\",\"t\":%" PRId64
            ",\"arity\":\"discrete-decomposition\",\"value\":{",
            id, t);
    for (int k = 0; k < 100; k++)
        tprintf(b, "%s\"process-with-a-long-name-%06d-%03d\":%d", k ? "," : "", n, k, k + 1);
    tprintf(b, "}}\n");
}

static void test_full_disk(void)
{
    char dir[512], path[600];
    struct th_serve s;
    struct text b = {0};
    int st;

    if (geteuid() != 0) { /* CI runs as root; elsewhere this case cannot mount */
        t_skip("needs root to mount a tmpfs");
        return;
    }
    snprintf(dir, sizeof(dir), "%s/store-tmpfs-%d", t_outdir(), (int)getpid());
    mkdir(dir, 0700);
    T_REQUIRE(mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700") == 0);
    T_REQUIRE(th_serve_start(sonde, no_agent, dir, &s) == 0);
    int id = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                            "\"decomposition\":[\"execname\"]}");
    T_REQUIRE(id > 0);
    fill(dir);

    /* ingest until the store's writes fail: every frame is still acknowledged (memory) */
    int n = 0;
    int64_t t = 0;
    double until = th_now_ms() + 60000;
    while (n < 3000 && th_now_ms() < until &&
           metric(s.port, "sonde_store_write_errors_total") < 1) {
        t = now_s() - 4 - n % 30;
        big_frame(&b, id, t, n);
        T_EQ(post_frames(s.port, "/ca/ingest", b.p, b.len), 1);
        if (n++ % 20 == 19)
            th_sleep_ms(200);
    }
    t_note("%d frames until a write failed", n);
    T_OK(metric(s.port, "sonde_store_write_errors_total") >= 1);
    T_EQ(metric(s.port, "sonde_store_write_failing"), 1);
    json_t *j = jreq(s.port, "GET", "/ca/admin/status", NULL, &st);
    T_EQ(st, 200);
    json_t *store = json_object_get(j, "store");
    T_OK(json_integer_value(json_object_get(store, "write_errors")) >= 1);
    T_OK(json_is_string(json_object_get(store, "last_error")));
    json_decref(j);
    /* the server answers from memory: the last frame's second holds its keys */
    j = getf(s.port, &st,
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1&timeout=0", id,
             t);
    T_EQ(st, 200);
    char key[64];
    snprintf(key, sizeof(key), "process-with-a-long-name-%06d-%03d", n - 1, 7);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "value"), key)), 8);
    json_decref(j);

    /* space again: writing resumes */
    snprintf(path, sizeof(path), "%s/filler", dir);
    T_EQ(unlink(path), 0);
    double w0 = metric(s.port, "sonde_store_records_written_total");
    for (int i = 0; i < 100 && (metric(s.port, "sonde_store_write_failing") != 0 ||
                                metric(s.port, "sonde_store_records_written_total") <= w0);
         i++) {
        big_frame(&b, id, now_s() - 4, n++);
        T_EQ(post_frames(s.port, "/ca/ingest", b.p, b.len), 1);
        th_sleep_ms(200);
    }
    T_EQ(metric(s.port, "sonde_store_write_failing"), 0);
    T_OK(metric(s.port, "sonde_store_records_written_total") > w0);
    T_EQ(th_serve_stop(&s), 0);
    free(b.p);
    T_EQ(umount(dir), 0);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    signal(SIGPIPE, SIG_IGN);
    t_run("restart", test_restart);
    t_run("crash_rounds", test_crash_rounds);
    t_run("full_disk", test_full_disk);
    return t_done();
}
