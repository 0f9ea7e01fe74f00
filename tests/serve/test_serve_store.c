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
#include "http_json.h"
#include "t.h"

static const char *sonde;
static const char *const no_agent[] = {"--no-agent", NULL};

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
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

/* Creates an instrumentation; its id, or -1. */
static int create(int port, const char *props)
{
    int st;
    json_t *j = th_jreq(port, "POST", "/ca/instrumentations", props, &st);
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
        json_t *j = th_getf(port, &st,
                            "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                            "&duration=1&ndatapoints=%d&timeout=0",
                            ids[i], m->base, n);
        if (!T_EQ(json_array_size(j), (size_t)n)) {
            t_note("status %d", st);
            bad_values++;
            json_decref(j);
            return -1;
        }
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
    json_t *j = th_jreq(port, "GET", "/ca/instrumentations", NULL, &st), *e;
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
    json_t *j = th_getf(port, &st,
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
        th_getf(s.port, &st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64, ids[0], t0);
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
    th_sleep_ms(8000);
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
    T_OK(sure >= 3);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- 50 kill -9 during heavy writes -------------------------------------------------------- */

#define ROUNDS 50

/* Each round: a server on the same directory, ingest in a loop for 200..500 ms (frames of
 * every instrumentation for 3 seconds of the round's own, closed long ago, so that the store
 * has them to write at once), killed at a random moment 100..2600 ms after the ingest started,
 * during it or during the store's writes. A frame acknowledged 1.3 s before the kill (its slot
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
        /* each round its own 3 seconds, closed long ago (the rounds take ~2 s each) */
        struct feeder f = {.port = s.port,
                           .ids = ids,
                           .m = &m,
                           .first = m.base + 3 * r,
                           .spread = 3,
                           .inflight = -1};
        pthread_t th;
        int ingest_ms = 200 + rand() % 300, kill_at = 100 + rand() % 2500;
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
        after_kill(&m, &f, kill_ms, K, 1300);
        T_EQ(mdb_stat(dir), 0);
        T_REQUIRE(th_serve_start(sonde, no_agent, dir, &s) == 0);
        sure = check_model(s.port, ids, &m, m.base + 3 * ROUNDS);
        if (bad_values)
            break;
    }
    fprintf(stderr, "# %d seconds sure, %d kills during ingest, %.0f s\n", sure, killed_ingesting,
            (th_now_ms() - t_start) / 1000);
    T_OK(sure >= 5);
    T_OK(killed_ingesting >= 1);
    T_EQ(th_serve_stop(&s), 0);
}

/* ---- a full disk for data ------------------------------------------------------------------ */

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
    char dir[512];
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
    T_EQ(t_fill_disk(dir), 0);

    /* ingest until the store's writes fail: every frame is still acknowledged (memory) */
    int n = 0;
    int64_t t = 0;
    double until = th_now_ms() + 60000;
    while (n < 3000 && th_now_ms() < until &&
           th_metric(s.port, "sonde_store_write_errors_total") < 1) {
        t = now_s() - 4 - n % 30;
        big_frame(&b, id, t, n);
        T_EQ(post_frames(s.port, "/ca/ingest", b.p, b.len), 1);
        if (n++ % 20 == 19)
            th_sleep_ms(200);
    }
    t_note("%d frames until a write failed", n);
    T_OK(th_metric(s.port, "sonde_store_write_errors_total") >= 1);
    T_EQ(th_metric(s.port, "sonde_store_write_failing"), 1);
    json_t *j = th_jreq(s.port, "GET", "/ca/admin/status", NULL, &st);
    T_EQ(st, 200);
    json_t *store = json_object_get(j, "store");
    T_OK(json_integer_value(json_object_get(store, "write_errors")) >= 1);
    T_OK(json_is_string(json_object_get(store, "last_error")));
    json_decref(j);
    /* the server answers from memory: the last frame's second holds its keys */
    j = th_getf(s.port, &st,
                "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1&timeout=0", id,
                t);
    T_EQ(st, 200);
    char key[64];
    snprintf(key, sizeof(key), "process-with-a-long-name-%06d-%03d", n - 1, 7);
    T_EQ(json_integer_value(json_object_get(json_object_get(j, "value"), key)), 8);
    json_decref(j);

    /* space again: writing resumes */
    T_EQ(t_unfill_disk(dir), 0);
    double w0 = th_metric(s.port, "sonde_store_records_written_total");
    for (int i = 0; i < 100 && (th_metric(s.port, "sonde_store_write_failing") != 0 ||
                                th_metric(s.port, "sonde_store_records_written_total") <= w0);
         i++) {
        big_frame(&b, id, now_s() - 4, n++);
        T_EQ(post_frames(s.port, "/ca/ingest", b.p, b.len), 1);
        th_sleep_ms(200);
    }
    T_EQ(th_metric(s.port, "sonde_store_write_failing"), 0);
    T_OK(th_metric(s.port, "sonde_store_records_written_total") > w0);
    T_EQ(th_serve_stop(&s), 0);
    free(b.p);
    T_EQ(umount(dir), 0);
    rmdir(dir);
}

/* ---- 40 simulated days --------------------------------------------------------------------- */

/* The instrumentations of the history cases (persist-data: every tier), in creation order. */
enum { I_NUM, I_NUMKEY, I_DISC, I_SCALAR, I_POINT, NHIST };
static const char *const hist_props[NHIST] = {
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"],"
    "\"persist-data\":true}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\",\"latency\"],"
    "\"persist-data\":true}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\"],"
    "\"persist-data\":true}",
    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":true}",
    "{\"module\":\"memory\",\"stat\":\"rss\",\"persist-data\":true}",
};

#define DAYS  40
#define NOFFS 6
static const int64_t offs[NOFFS] = {3600 + 17,       5 * 3600 + 1234,  9 * 3600 + 59,
                                    13 * 3600 + 600, 17 * 3600 + 3599, 22 * 3600 + 61};
static const double lat[8] = {800, 2100, 9500, 47000, 120000, 650000, 3100000, 12000000};
static const char *const keys[3] = {"nginx", "postgres", "sh"};

/* One frame of the model: day d, offset k, host h (0 or 1); its contents follow from those. */
struct mframe {
    int64_t t;
    int d, k, h;
};

static struct {
    int64_t B; /* day 0, a multiple of 86400 */
    struct mframe f[DAYS * NOFFS * 2];
    size_t n;
    struct th_serve s, s2; /* the imported server, and the one its export went into */
    int ids[NHIST], ids2[NHIST];
    bool up, up2;
} H;

static bool key_on(const struct mframe *m, int j)
{
    return (m->d + m->k + j + m->h) % 3 != 0;
}

/* The frame's latencies (for key j; -1: no key) added into h. */
static void lat_into(const struct mframe *m, int j, struct sn_hist *h)
{
    for (int i = 0; i < 3; i++)
        sn_hist_insert(h, lat[(m->d + m->k + m->h + i + (j < 0 ? 0 : j)) % 8], (uint64_t)i + 1);
}

static json_int_t disc_count(const struct mframe *m, int j)
{
    return m->d % 7 + m->k + j + 1;
}

static json_int_t scalar_of(const struct mframe *m)
{
    return (m->d * 6 + m->k) % 13 + 1 + m->h;
}

static json_int_t point_of(const struct mframe *m)
{
    return 1000 * (m->d % 5 + 1) + 100 * m->k;
}

/* A histogram as CA's ranges [[lo,hi],count],... */
static json_t *ranges(const struct sn_hist *h)
{
    size_t nb = sn_hist_nbuckets(h);
    struct sn_hist_range *r = calloc(nb ? nb : 1, sizeof(*r));
    json_t *a = json_array();
    size_t n = sn_hist_ranges(h, r);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("[[I,I],I]", (json_int_t)r[i].lo, (json_int_t)r[i].hi,
                                           (json_int_t)r[i].count));
    free(r);
    return a;
}

/* The frame m of instrumentation which, as JSON (appended to b). */
static void frame_json(struct text *b, int which, int id, const struct mframe *m)
{
    json_t *v = NULL;
    const char *arity = "scalar";
    switch (which) {
    case I_NUM: {
        struct sn_hist *h = sn_hist_create();
        lat_into(m, -1, h);
        v = ranges(h);
        sn_hist_destroy(h);
        arity = "numeric-decomposition";
        break;
    }
    case I_NUMKEY:
        v = json_object();
        for (int j = 0; j < 3; j++)
            if (key_on(m, j)) {
                struct sn_hist *h = sn_hist_create();
                lat_into(m, j, h);
                json_object_set_new(v, keys[j], ranges(h));
                sn_hist_destroy(h);
            }
        arity = "numeric-decomposition";
        break;
    case I_DISC:
        v = json_object();
        for (int j = 0; j < 3; j++)
            if (key_on(m, j))
                json_object_set_new(v, keys[j], json_integer(disc_count(m, j)));
        arity = "discrete-decomposition";
        break;
    case I_SCALAR:
        v = json_integer(scalar_of(m));
        break;
    default:
        v = json_integer(point_of(m));
        break;
    }
    char *vs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    tprintf(b, "{\"id\":\"%d\",\"host\":\"h%d\",\"t\":%" PRId64 ",\"arity\":\"%s\",\"value\":%s}\n",
            id, m->h + 1, m->t, arity, vs);
    free(vs);
    json_decref(v);
}

/* The model's merge over [a, b) for instrumentation which: the value value/raw gives (for the
 * point metric: the mean of its seconds, with their min and max into *mn, *mx). */
static json_t *model_value(int which, int64_t a, int64_t b, double *mn, double *mx)
{
    struct sn_hist *tot = sn_hist_create(),
                   *kh[3] = {sn_hist_create(), sn_hist_create(), sn_hist_create()};
    json_int_t sum = 0, kc[3] = {0, 0, 0}, nsec = 0;
    bool seen[3] = {false, false, false};
    *mn = INFINITY;
    *mx = -INFINITY;
    for (size_t i = 0; i < H.n; i++) {
        const struct mframe *m = &H.f[i];
        if (m->t < a || m->t >= b)
            continue;
        switch (which) {
        case I_NUM:
            lat_into(m, -1, tot);
            break;
        case I_NUMKEY:
        case I_DISC:
            for (int j = 0; j < 3; j++)
                if (key_on(m, j)) {
                    seen[j] = true;
                    if (which == I_NUMKEY)
                        lat_into(m, j, kh[j]);
                    else
                        kc[j] += disc_count(m, j);
                }
            break;
        case I_SCALAR:
            sum += scalar_of(m);
            break;
        default:
            if (m->h == 0) { /* one host: a second's value is its frame's */
                sum += point_of(m);
                nsec++;
                *mn = fmin(*mn, (double)point_of(m));
                *mx = fmax(*mx, (double)point_of(m));
            }
            break;
        }
    }
    json_t *v;
    if (which == I_NUM) {
        v = ranges(tot);
    } else if (which == I_NUMKEY || which == I_DISC) {
        v = json_object();
        for (int j = 0; j < 3; j++)
            if (seen[j])
                json_object_set_new(v, keys[j],
                                    which == I_DISC ? json_integer(kc[j]) : ranges(kh[j]));
    } else if (which == I_SCALAR) {
        v = json_integer(sum);
    } else {
        v = json_integer(nsec ? (sum + nsec / 2) / nsec : 0);
    }
    sn_hist_destroy(tot);
    for (int j = 0; j < 3; j++)
        sn_hist_destroy(kh[j]);
    return v;
}

/* The mean of the model's merged latencies over [a, b) (every key), or NAN. */
static double model_mean(int which, int64_t a, int64_t b)
{
    struct sn_hist *h = sn_hist_create();
    for (size_t i = 0; i < H.n; i++)
        if (H.f[i].t >= a && H.f[i].t < b) {
            if (which == I_NUM)
                lat_into(&H.f[i], -1, h);
            else
                for (int j = 0; j < 3; j++)
                    if (key_on(&H.f[i], j))
                        lat_into(&H.f[i], j, h);
        }
    double m = sn_hist_count(h) ? sn_hist_mean(h) : NAN;
    sn_hist_destroy(h);
    return m;
}

/* What store/history.h's rule picks for a request of span seconds from start at time now
 * (default tiers; every instrumentation here persist-data, granularity 1): the tier's name,
 * and the granularity for maxcols columns (0: one value). */
static const char *expect_tier(int64_t now, int64_t start, int64_t span, int64_t maxcols,
                               int64_t *gran)
{
    static const char *const names[4] = {"raw", "1m", "1h", "1d"};
    static const int64_t keep[4] = {2 * 86400, 90 * 86400, 5 * 365 * 86400LL, 10 * 365 * 86400LL};
    static const int64_t period[4] = {1, 60, 3600, 86400};
    for (int t = 0; t < 4; t++)
        if (start >= now - keep[t] && span / period[t] <= 4800) {
            int64_t k = 1, p = period[t];
            if (maxcols && span / p > maxcols)
                k = (span / p + maxcols - 1) / maxcols;
            *gran = p * k;
            return names[t];
        }
    *gran = 0;
    return "?";
}

/* The history cases' requests: (start, span) over the 40 days. */
struct hreq {
    int64_t start, span;
};

static size_t hist_requests(struct hreq *out)
{
    const int64_t B = H.B, D = 86400, h = 3600;
    const struct hreq r[] = {
        {B + 3 * D + 5 * h, h},       {B + 17 * D + 12 * h + 1800, h},
        {B + 25 * D + 13 * h + 7, h}, {B + 7 * D, D},
        {B + 20 * D + 3 * h + 17, D}, {B + 1 * D, 7 * D},
        {B + 30 * D + 12 * h, 7 * D}, {B, 30 * D},
        {B + 9 * D + 5 * h, 30 * D},
    };
    memcpy(out, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

/* Checks value/raw of every instrumentation against the model for every request. */
static void check_raw(int port, const int *ids)
{
    struct hreq rq[16];
    size_t nrq = hist_requests(rq);
    for (size_t q = 0; q < nrq; q++)
        for (int w = 0; w < NHIST; w++) {
            int st;
            int64_t now = now_s(), g;
            json_t *j = th_getf(port, &st,
                                "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                                "&duration=%" PRId64 "&timeout=0",
                                ids[w], rq[q].start, rq[q].span);
            t_note("instrumentation %d, start B+%" PRId64 ", span %" PRId64, ids[w],
                   rq[q].start - H.B, rq[q].span);
            T_EQ(st, 200);
            const char *tier = expect_tier(now, rq[q].start, rq[q].span, 0, &g);
            T_STR(json_string_value(json_object_get(j, "tier")), tier);
            T_EQ(json_integer_value(json_object_get(j, "granularity")), g);
            int64_t a = json_integer_value(json_object_get(j, "start_time"));
            int64_t d = json_integer_value(json_object_get(j, "duration"));
            T_EQ(a, rq[q].start - rq[q].start % g);
            T_EQ(d, (rq[q].span + g - 1) / g * g);
            double mn, mx;
            json_t *want = model_value(w, a, a + d, &mn, &mx);
            json_t *got = json_object_get(j, "value");
            if (!T_OK(json_equal(got, want))) {
                char *x = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY),
                     *y = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
                t_note("got %.400s, want %.400s", x, y);
                free(x);
                free(y);
            }
            if (w == I_POINT && isfinite(mn)) { /* a rollup: the values' distribution */
                const json_t *dist = json_object_get(j, "distribution");
                double dmin = json_number_value(json_object_get(dist, "min"));
                double p50 = json_number_value(json_object_get(dist, "p50"));
                double p99 = json_number_value(json_object_get(dist, "p99"));
                double dmax = json_number_value(json_object_get(dist, "max"));
                T_NEAR(dmin, mn, mn * 0.1); /* within the value's log-linear bucket */
                T_NEAR(dmax, mx, mx * 0.1);
                T_OK(dmin <= p50 && p50 <= p99 && p99 <= dmax);
            }
            json_decref(want);
            json_decref(j);
        }
}

/* Checks heatmap/average (exact) and heatmap/details of the numeric instrumentations. */
static void check_heatmaps(int port, const int *ids)
{
    struct hreq rq[16];
    size_t nrq = hist_requests(rq);
    for (size_t q = 0; q < nrq; q++)
        for (int w = I_NUM; w <= I_NUMKEY; w++) {
            int st;
            int64_t now = now_s(), g;
            t_note("heatmaps of %d, start B+%" PRId64 ", span %" PRId64, ids[w], rq[q].start - H.B,
                   rq[q].span);
            json_t *j = th_getf(port, &st,
                                "/ca/instrumentations/%d/value/heatmap/average?start_time=%" PRId64
                                "&duration=%" PRId64 "&method=exact&timeout=0",
                                ids[w], rq[q].start, rq[q].span);
            T_EQ(st, 200);
            const char *tier = expect_tier(now, rq[q].start, rq[q].span, 600, &g);
            T_STR(json_string_value(json_object_get(j, "tier")), tier);
            T_EQ(json_integer_value(json_object_get(j, "granularity")), g);
            int64_t a = json_integer_value(json_object_get(j, "start_time"));
            int64_t d = json_integer_value(json_object_get(j, "duration"));
            T_EQ(a, rq[q].start - rq[q].start % g);
            double want = model_mean(w, a, a + d);
            const json_t *avg = json_object_get(j, "average");
            if (isnan(want))
                T_OK(json_is_null(avg));
            else
                T_NEAR(json_number_value(avg), want, fabs(want) * 1e-9);
            json_decref(j);

            /* details at three columns of a 50-column image, one band over every value */
            static const int xs[3] = {0, 24, 49};
            for (int xi = 0; xi < 3; xi++) {
                j = th_getf(port, &st,
                            "/ca/instrumentations/%d/value/heatmap/details?start_time=%" PRId64
                            "&duration=%" PRId64 "&width=50&height=10&ymin=0&ymax=100000000"
                            "&nbuckets=1&x=%d&y=0&timeout=0",
                            ids[w], rq[q].start, rq[q].span, xs[xi]);
                T_EQ(st, 200);
                tier = expect_tier(now, rq[q].start, rq[q].span, 50, &g);
                T_STR(json_string_value(json_object_get(j, "tier")), tier);
                T_EQ(json_integer_value(json_object_get(j, "granularity")), g);
                a = json_integer_value(json_object_get(j, "start_time"));
                d = json_integer_value(json_object_get(j, "duration"));
                int64_t ncols = d / g, col = ((xs[xi] + 1) * ncols + 49) / 50 - 1;
                int64_t t = a + col * g;
                T_EQ(json_integer_value(json_object_get(j, "bucket_time")), t);
                /* the model's events per key in the column */
                json_int_t per[3] = {0, 0, 0}, total = 0;
                for (size_t i = 0; i < H.n; i++)
                    if (H.f[i].t >= t && H.f[i].t < t + g)
                        for (int k = 0; k < 3; k++)
                            if (w == I_NUM ? k == 0 : key_on(&H.f[i], k)) {
                                per[k] += 6; /* counts 1 + 2 + 3 */
                                total += 6;
                            }
                T_EQ(json_integer_value(json_object_get(j, "total")), total);
                if (w == I_NUMKEY) {
                    json_t *pw = json_object();
                    for (int k = 0; k < 3; k++)
                        if (per[k])
                            json_object_set_new(pw, keys[k], json_integer(per[k]));
                    T_OK(json_equal(json_object_get(j, "present"), pw));
                    json_decref(pw);
                }
                json_decref(j);
            }
        }
}

/* Waits (bounded: 30 s) until the store has written every rollup of an import: the records
 * and rollups written stay the same for 3 checks 300 ms apart, with nothing pending when all
 * (an import into periods still open leaves their rollups pending until they close). */
static void settle_rollups(int port, bool all)
{
    double last = -1;
    int same = 0;
    for (int i = 0; i < 100 && same < 3; i++) {
        double r = th_metric(port, "sonde_store_rollups_written_total") +
                   1e9 * th_metric(port, "sonde_store_records_written_total");
        same = r == last && (!all || th_metric(port, "sonde_store_pending") == 0) ? same + 1 : 0;
        last = r;
        th_sleep_ms(300);
    }
    T_EQ(same, 3);
}

static void test_forty_days(void)
{
    struct text b = {0};
    int64_t now = now_s();
    H.B = now - now % 86400 - DAYS * 86400;
    H.n = 0;
    for (int d = 0; d < DAYS; d++)
        for (int k = 0; k < NOFFS; k++)
            for (int h = 0; h < 2; h++)
                if (h == 0 || (d + k) % 2 == 0)
                    H.f[H.n++] = (struct mframe){H.B + d * 86400 + offs[k], d, k, h};
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &H.s) == 0);
    H.up = true;
    for (int w = 0; w < NHIST; w++)
        T_REQUIRE((H.ids[w] = create(H.s.port, hist_props[w])) > 0);
    size_t nframes = 0;
    for (int w = 0; w < NHIST; w++)
        for (size_t i = 0; i < H.n; i++)
            if (w != I_POINT || H.f[i].h == 0) {
                frame_json(&b, w, H.ids[w], &H.f[i]);
                nframes++;
            }
    double t0 = th_now_ms();
    T_EQ(post_frames(H.s.port, "/ca/import", b.p, b.len), (json_int_t)nframes);
    free(b.p);
    settle_rollups(H.s.port, true);
    fprintf(stderr, "# %zu frames over %d days imported and rolled up in %.1f s\n", nframes, DAYS,
            (th_now_ms() - t0) / 1000);
    check_raw(H.s.port, H.ids);
    check_heatmaps(H.s.port, H.ids);
}

/* ---- export -> import ---------------------------------------------------------------------- */

/* The replies of s's history requests (value/raw of every instrumentation, the heatmaps'
 * average and details of the numeric ones), as one JSON array (owned). */
static json_t *answers(int port, const int *ids)
{
    struct hreq rq[16];
    size_t nrq = hist_requests(rq);
    json_t *all = json_array();
    for (size_t q = 0; q < nrq; q++)
        for (int w = 0; w < NHIST; w++) {
            int st;
            json_array_append_new(all,
                                  th_getf(port, &st,
                                          "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                                          "&duration=%" PRId64 "&timeout=0",
                                          ids[w], rq[q].start, rq[q].span));
            if (w > I_NUMKEY)
                continue;
            json_array_append_new(all, th_getf(port, &st,
                                               "/ca/instrumentations/%d/value/heatmap/average?"
                                               "start_time=%" PRId64 "&duration=%" PRId64
                                               "&method=exact&timeout=0",
                                               ids[w], rq[q].start, rq[q].span));
            for (int x = 0; x < 50; x += 7)
                json_array_append_new(
                    all, th_getf(port, &st,
                                 "/ca/instrumentations/%d/value/heatmap/details?start_time=%" PRId64
                                 "&duration=%" PRId64 "&width=50&height=10&ymax=20000000&"
                                 "nbuckets=4&x=%d&y=%d&timeout=0",
                                 ids[w], rq[q].start, rq[q].span, x, x % 10));
        }
    return all;
}

/* The forty days exported from the first server and imported into a fresh one: the same
 * answers (the point metric too: each of its minutes holds one second, so the mean its export
 * carries is that second's value). */
static void test_export_import(void)
{
    if (!H.up) /* run alone (a case filter): the forty days first */
        test_forty_days();
    T_REQUIRE(H.up);
    T_REQUIRE(th_serve_start(sonde, no_agent, NULL, &H.s2) == 0);
    H.up2 = true;
    for (int w = 0; w < NHIST; w++)
        T_REQUIRE((H.ids2[w] = create(H.s2.port, hist_props[w])) == H.ids[w]);
    size_t lines = 0;
    for (int w = 0; w < NHIST; w++) {
        char path[256];
        size_t len = 0;
        snprintf(path, sizeof(path),
                 "/ca/instrumentations/%d/export?start_time=%" PRId64 "&end_time=%" PRId64,
                 H.ids[w], H.B, now_s() - 700);
        char *text = get_text(H.s.port, path, &len);
        T_REQUIRE(text != NULL);
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += text[i] == '\n';
        lines += n;
        T_OK(n > 0);
        T_EQ(post_frames(H.s2.port, "/ca/import", text, len), (json_int_t)n);
        free(text);
    }
    settle_rollups(H.s2.port, true);
    fprintf(stderr, "# %zu frames exported and imported\n", lines);
    json_t *a = answers(H.s.port, H.ids), *b = answers(H.s2.port, H.ids2), *e;
    size_t i;
    T_EQ(json_array_size(a), json_array_size(b));
    json_array_foreach(a, i, e)
    {
        const char *k;
        json_t *v, *o = json_array_get(b, i);
        json_object_foreach(e, k, v) if (!json_equal(v, json_object_get(o, k)))
        {
            char *x = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY),
                 *y = json_dumps(json_object_get(o, k), JSON_COMPACT | JSON_ENCODE_ANY);
            t_note("answer %zu, \"%s\": %.300s | imported: %.300s", i, k, x, y);
            free(x);
            free(y);
            T_OK(false);
        }
        T_EQ(json_object_size(o), json_object_size(e));
    }
    json_decref(a);
    json_decref(b);
    /* and both are the model's */
    check_raw(H.s2.port, H.ids2);
    check_heatmaps(H.s2.port, H.ids2);
}

/* ---- retention, deletion and the size cap --------------------------------------------------- */

/* The frames of key's export over [a, b): their count, the sum of their scalar values (or of
 * every key's count), and whether every one starts at a multiple of period; times[] (may be
 * NULL) receives their seconds. */
struct exported {
    size_t n;
    json_int_t sum;
    bool aligned;
};

static struct exported export_of(int port, int id, int64_t a, int64_t b, int64_t period,
                                 int64_t *times, size_t max)
{
    struct exported e = {0, 0, true};
    char path[256];
    size_t len = 0;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/export?start_time=%" PRId64 "&end_time=%" PRId64, id, a, b);
    char *text = get_text(port, path, &len);
    if (!T_OK(text != NULL))
        return e;
    for (char *line = text, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        json_t *f = json_loadb(line, end ? (size_t)(end - line) : strlen(line), 0, NULL);
        if (!f)
            continue;
        int64_t t = json_integer_value(json_object_get(f, "t"));
        json_t *v = json_object_get(f, "value"), *x;
        const char *k;
        if (json_is_integer(v))
            e.sum += json_integer_value(v);
        else
            json_object_foreach(v, k, x) e.sum += json_integer_value(x);
        if (period && t % period != 0)
            e.aligned = false;
        if (times && e.n < max)
            times[e.n] = t;
        e.n++;
        json_decref(f);
    }
    free(text);
    return e;
}

static void test_retention(void)
{
    const char *extra[] = {"--no-agent", "--tiers", "raw:1h,1m:2h,1h:1d,1d:2d", NULL};
    struct th_serve s;
    struct text b = {0};
    int st;
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    int id = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":true}");
    T_REQUIRE(id > 0);
    int64_t now = now_s();
    /* three seconds (values 1, 2, 3) at each age: kept raw, past raw (1m keeps), past 1m (1h
     * keeps), past 1h (1d keeps), past every tier */
    const int64_t age[5] = {30 * 60, 90 * 60, 5 * 3600, 30 * 3600, 3 * 86400};
    int64_t t[5];
    for (int i = 0; i < 5; i++) {
        t[i] = now - age[i];
        for (int k = 0; k < 3; k++)
            tprintf(&b,
                    "{\"id\":\"%d\",\"host\":\"h\",\"t\":%" PRId64
                    ",\"arity\":\"scalar\",\"value\":%d}\n",
                    id, t[i] + k, k + 1);
    }
    /* and three seconds the raw tier keeps for 2 s more: expired by the maintenance */
    for (int k = 0; k < 3; k++)
        tprintf(&b,
                "{\"id\":\"%d\",\"host\":\"h\",\"t\":%" PRId64
                ",\"arity\":\"scalar\",\"value\":%d}\n",
                id, now - 3600 + 2 + k, k + 1);
    json_int_t acc = post_frames(s.port, "/ca/import", b.p, b.len);
    T_OK(acc >= 15); /* the frames past every tier may be refused or dropped */
    free(b.p);
    settle_rollups(s.port, false);
    th_sleep_ms(6000); /* the maintenance runs each second */
    T_OK(th_metric(s.port, "sonde_store_records_expired_total") >= 3);

    /* each age as the tier that keeps it: raw seconds, then whole minutes, hours, days */
    static const int64_t period[5] = {1, 60, 3600, 86400, 0};
    for (int i = 0; i < 4; i++) { /* the periods that hold the three seconds */
        int64_t a = t[i] - t[i] % period[i], z = t[i] + 3 + period[i] - 1;
        z -= z % period[i];
        struct exported e = export_of(s.port, id, a, z, period[i], NULL, 0);
        t_note("age %" PRId64 " s: %zu frames, sum %lld", age[i], e.n, (long long)e.sum);
        T_EQ(e.sum, 6);
        T_OK(e.aligned);
        if (i == 0)
            T_EQ(e.n, 3);
        else /* one record, or two when the three seconds straddle a period */
            T_OK(e.n >= 1 && e.n <= 2);
    }
    struct exported gone = export_of(s.port, id, t[4] - 86400, t[4] + 86400, 0, NULL, 0);
    T_EQ(gone.n, 0);
    /* value/raw past the raw tier: the 1-minute tier's whole minutes */
    json_t *j =
        th_getf(s.port, &st,
                "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=180&timeout=0",
                id, t[1] - t[1] % 60);
    T_EQ(st, 200);
    T_STR(json_string_value(json_object_get(j, "tier")), "1m");
    T_EQ(json_integer_value(json_object_get(j, "value")), 6);
    json_decref(j);

    /* deleting the instrumentation removes its records; the next id starts empty */
    double d0 = th_metric(s.port, "sonde_store_records_deleted_total");
    j = th_jreq(s.port, "DELETE", "/ca/instrumentations/1", NULL, &st);
    T_EQ(st, 204);
    json_decref(j);
    for (int i = 0; i < 50 && th_metric(s.port, "sonde_store_records_deleted_total") <= d0; i++)
        th_sleep_ms(200);
    T_OK(th_metric(s.port, "sonde_store_records_deleted_total") > d0);
    int id2 =
        create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":true}");
    T_EQ(id2, id + 1);
    T_EQ(export_of(s.port, id2, now - 3 * 86400, now - 700, 0, NULL, 0).n, 0);
    j = th_getf(s.port, &st,
                "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=180&timeout=0",
                id2, t[1] - t[1] % 60);
    T_EQ(json_integer_value(json_object_get(j, "value")), 0);
    json_decref(j);
    T_EQ(th_serve_stop(&s), 0);
}

#define CAP_FRAMES 1200

/* --store-max-bytes: records of 100 keys (the same keys: the names stay small) for 1,200
 * seconds, 10 s apart, imported oldest first into a persist-data instrumentation, well over
 * the cap: raw records are dropped, counted, oldest first (what is left of them is the newest,
 * whole); the rollups stay. */
static void test_size_cap(void)
{
    const char *extra[] = {"--no-agent", "--store-max-bytes", "256K", NULL};
    struct th_serve s;
    struct text b = {0}, one = {0};
    static int64_t sent[CAP_FRAMES], got[CAP_FRAMES];
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    int id = create(s.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\","
                            "\"decomposition\":[\"execname\"],\"persist-data\":true}");
    T_REQUIRE(id > 0);
    int64_t t0 = now_s() - 86400;
    t0 -= t0 % 3600;
    for (int i = 0; i < CAP_FRAMES; i++) {
        sent[i] = t0 + 10 * i + 7; /* never on a minute: raw records only */
        big_frame(&one, id, sent[i], 0);
        tprintf(&b, "%s", one.p);
        if (i % 100 == 99) { /* oldest first, a body at a time */
            T_EQ(post_frames(s.port, "/ca/import", b.p, b.len), 100);
            b.len = 0;
            th_sleep_ms(300);
        }
    }
    free(b.p);
    free(one.p);
    for (int i = 0; i < 50 && th_metric(s.port, "sonde_store_records_dropped_total") <= 0; i++)
        th_sleep_ms(200);
    settle_rollups(s.port, false);
    th_sleep_ms(2000);
    double dropped = th_metric(s.port, "sonde_store_records_dropped_total");
    T_OK(dropped > 0);
    /* the raw records left are the newest (a suffix of what was sent); before them, whole
     * minutes of the 1-minute tier; every count still there */
    struct exported e = export_of(s.port, id, t0, now_s() - 700, 0, got, CAP_FRAMES);
    size_t nraw = 0, first_raw = e.n;
    for (size_t i = 0; i < e.n && i < CAP_FRAMES; i++)
        if (got[i] % 60 != 0) {
            if (first_raw == e.n)
                first_raw = i;
            nraw++;
        }
    fprintf(stderr, "# %zu of %d raw records left, %.0f dropped, %zu rollups before them\n", nraw,
            CAP_FRAMES, dropped, first_raw);
    T_OK(nraw > 0 && nraw < CAP_FRAMES);
    T_EQ(first_raw + nraw, e.n); /* no rollup after the first raw record */
    for (size_t i = 0; i < nraw; i++)
        T_EQ(got[first_raw + i], sent[CAP_FRAMES - nraw + i]);
    T_OK(first_raw > 0);
    T_EQ(e.sum, (json_int_t)CAP_FRAMES * 5050); /* keys count 1..100 in every frame */
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    signal(SIGPIPE, SIG_IGN);
    t_run("restart", test_restart);
    t_run("crash_rounds", test_crash_rounds);
    t_run("full_disk", test_full_disk);
    t_run("forty_days", test_forty_days);
    t_run("export_import", test_export_import);
    if (H.up2)
        T_EQ(th_serve_stop(&H.s2), 0);
    t_run("retention", test_retention);
    t_run("size_cap", test_size_cap);
    if (H.up)
        T_EQ(th_serve_stop(&H.s), 0);
    return t_done();
}
