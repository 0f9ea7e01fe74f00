/*
 * `sonde serve` under hostile input and load (issue 12): what it acknowledges is durable, and
 * what it is sent cannot overflow it.
 *
 * Covered: a full disk (a small tmpfs as the data directory, filled; the definitions and data
 * are in the LMDB store, which reuses freed pages, so a change may still commit): changes are
 * made until one is refused (507, nothing changed, in memory or on disk, counted in
 * sonde_save_failures_total); data the full disk refuses is counted (sonde_store_*) and served
 * from memory; a stop whose last write fails exits 1 and says so; after space is freed the
 * same requests succeed, ids are not used up by the failures, and a restart finds exactly what
 * was acknowledged. An older version's instrumentations.json in a fresh data directory is
 * migrated into the store at the first start, checked as the API checks a create (duplicates,
 * ids out of range, a wrapping next_id, a scope that is a path, invalid properties): refused
 * entries are logged, the file as it was is kept as instrumentations.json.rejected-*, the file
 * itself left as it is, and a restart (reading the store) serves the same, ids never reused.
 * An older version's data/1.snds is migrated and served after the first and a second start.
 * *.tmp files left by a crash are removed at start, and an empty .snds file is logged. Time
 * parameters that overflowed (start_time=9223372036854776, INT64_MAX / 4, 2^63 and beyond) on
 * every route that takes times; over-long or too many transformations and selected keys; PUT
 * of an immutable property; /ui/<directory> with --ui-dir; /metrics counting a long poll once
 * however often it is woken, and the agent's series as zeros without the agent; SIGTERM with
 * parked long polls, every one of which gets its answer.
 *
 * The full-disk case mounts a tmpfs (root, as CI runs). Usage: test_serve_durable SONDE
 * [CASE-FILTER].
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg/dataset.h"
#include "http.h"
#include "http_json.h"
#include "t.h"

static const char *sonde;

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static const char *err_code(const json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *err_msg(const json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

#define T_INVAL(st, j, msg)                                                                        \
    do {                                                                                           \
        T_EQ(st, 409);                                                                             \
        T_STR(err_code(j), "ECA_INVAL");                                                           \
        T_STR(err_msg(j), msg);                                                                    \
    } while (0)

#define SYSCALLS "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"]}"

/* Creates an instrumentation; its id, or -1. */
static int create(int port, const char *props)
{
    int st;
    json_t *j = th_jreq(port, "POST", "/ca/instrumentations", props, &st);
    const char *id = json_string_value(json_object_get(j, "id"));
    int out = st == 201 && id ? atoi(id) : -1;
    if (out < 0)
        t_note("create %s: status %d %s", props, st, err_msg(j) ? err_msg(j) : "");
    json_decref(j);
    return out;
}

/* The ids listed by GET /ca/instrumentations, as "1,2,3" (in order), into out. */
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

/* Starts a server with its stderr (the log) going to log (appended). */
static int start_logged(const char *const *extra, const char *dir, const char *log,
                        struct th_serve *s)
{
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600), rc;
    if (saved < 0 || fd < 0) {
        if (saved >= 0)
            close(saved);
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    fflush(stderr);
    dup2(fd, 2);
    rc = th_serve_start(sonde, extra, dir, s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    return rc;
}

/* The whole of a small file, NUL-terminated (static buffer), or "" when unreadable. */
static const char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static bool file_has(const char *path, const char *needle)
{
    return strstr(slurp(path), needle) != NULL;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A fresh directory under the test output directory. */
static void fresh_dir(const char *what, char *out, size_t len)
{
    snprintf(out, len, "%s/durable-%s-%d", t_outdir(), what, (int)getpid());
    mkdir(out, 0700);
}

/* ---- a full disk --------------------------------------------------------------------------- */

/* What the API acknowledged: the ids listed, and instrumentation 3's retention-time. */
struct acked {
    char ids[4096];
    int next, retention3;
    int eio; /* refusals answered 500 (EIO) rather than 507 */
};

static void ids_add(struct acked *m, int id)
{
    size_t at = strlen(m->ids);
    snprintf(m->ids + at, sizeof(m->ids) - at, "%s%d", at ? "," : "", id);
}

/* The model's id list without id (a delete acknowledged). */
static void ids_del(struct acked *m, int id)
{
    char out[sizeof(m->ids)] = "", *save = NULL;
    size_t at = 0;
    for (char *p = strtok_r(m->ids, ",", &save); p; p = strtok_r(NULL, ",", &save))
        if (atoi(p) != id)
            at += (size_t)snprintf(out + at, sizeof(out) - at, "%s%s", at ? "," : "", p);
    snprintf(m->ids, sizeof(m->ids), "%s", out);
}

/* One change of kind i % 3 (a create, a PUT of 3's retention-time, a clone of 3) on a disk
 * that may be full: acknowledged (the model follows) or refused with 507, changing nothing.
 * Returns 1 when refused, 0 when acknowledged, -1 on any other answer. */
static int change(int port, int i, struct acked *m)
{
    int st, out = -1;
    char body[128];
    json_t *j = NULL;
    switch (i % 3) {
    case 0:
        j = th_jreq(port, "POST", "/ca/instrumentations", SYSCALLS, &st);
        if (st == 201) {
            T_EQ(atoi(json_string_value(json_object_get(j, "id"))), m->next);
            ids_add(m, m->next++);
        }
        break;
    case 1:
        snprintf(body, sizeof(body), "{\"retention-time\":%d}", m->retention3 + 10);
        j = th_jreq(port, "PUT", "/ca/instrumentations/3", body, &st);
        if (st == 200)
            m->retention3 += 10;
        break;
    default:
        j = th_jreq(port, "POST", "/ca/instrumentations/3/clone", NULL, &st);
        if (st == 201) {
            T_EQ(atoi(json_string_value(json_object_get(j, "id"))), m->next);
            ids_add(m, m->next++);
        }
        break;
    }
    if (st == 201 || st == 200) {
        out = 0;
    } else if (st == 507 || (st == 500 && err_code(j) && strcmp(err_code(j), "ECA_IO") == 0)) {
        /* a full disk is 507 "(No space left on device)". LMDB reports a short write (a
         * commit that got part of its pages onto the full disk) as EIO, which the server
         * answers 500 "(Input/output error)": refused all the same (checked below), but the
         * wrong status, so counted apart and asserted against by the caller */
        T_STR(err_code(j), "ECA_IO");
        if (st == 507)
            T_OK(strstr(err_msg(j) ? err_msg(j) : "", "(No space left on device)") != NULL);
        else
            m->eio++;
        t_note("change %d refused: %d %s", i, st, err_msg(j) ? err_msg(j) : "");
        out = 1;
    } else {
        t_note("change %d: status %d %s", i, st, err_msg(j) ? err_msg(j) : "");
    }
    json_decref(j);
    return out;
}

/* The server's state is the model's: its ids, and 3's retention-time. */
static void same_as_acked(int port, const struct acked *m)
{
    char ids[4096];
    int st;
    list_ids(port, ids, sizeof(ids));
    T_STR(ids, m->ids);
    json_t *j = th_jreq(port, "GET", "/ca/instrumentations/3", NULL, &st);
    T_EQ(json_integer_value(json_object_get(j, "retention-time")), m->retention3);
    json_decref(j);
}

/* The value/raw of instrumentation id for second t. */
static json_int_t raw_at(int port, int id, int64_t t)
{
    int st;
    json_t *j = th_getf(
        port, &st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&duration=1", id, t);
    json_int_t v = st == 200 ? json_integer_value(json_object_get(j, "value")) : -1;
    json_decref(j);
    return v;
}

/* Ingests value v for second t of instrumentation 1 (scalar, host "h"). */
static void post_value(int port, int64_t t, int v)
{
    char frame[256];
    int st;
    snprintf(frame, sizeof(frame),
             "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":%" PRId64
             ",\"arity\":\"scalar\",\"value\":%d}",
             t, v);
    json_t *j = th_jreq(port, "POST", "/ca/ingest", frame, &st);
    T_EQ(st, 200);
    json_decref(j);
}

/*
 * LMDB reuses the pages a commit freed, so on a full disk a change may still commit: changes
 * are made until one is refused (507, nothing changed, counted), and every one acknowledged
 * must survive a restart exactly. Whether the definitions' own last save at the stop fails
 * depends on LMDB's free pages (it writes the document of the last commit again), so the stop
 * that must fail is provoked with data instead: a second that memory holds and the full disk
 * refuses (the store's writes fail, counted), which the stop's last write cannot write
 * either: the server exits 1 and says so.
 */
static void test_full_disk(void)
{
    char dir[512], log[600];
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve srv;
    struct acked m = {.next = 5, .retention3 = 600};
    int st;
    json_t *j;

    if (geteuid() != 0) { /* CI runs as root; elsewhere this case cannot mount */
        t_skip("needs root to mount a tmpfs");
        return;
    }
    fresh_dir("tmpfs", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s.log", dir);
    T_REQUIRE(mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700") == 0);
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);

    int a =
        create(srv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"persist-data\":true}");
    int b = create(srv.port, SYSCALLS);
    int c = create(srv.port, SYSCALLS);
    int e = create(srv.port, SYSCALLS);
    T_REQUIRE(a == 1 && b == 2 && c == 3 && e == 4);
    j = th_jreq(srv.port, "DELETE", "/ca/instrumentations/4", NULL, &st); /* acknowledged */
    T_EQ(st, 204);
    json_decref(j);
    snprintf(m.ids, sizeof(m.ids), "1,2,3");
    int64_t t7 = now_s() - 20, t9 = t7 + 1;
    post_value(srv.port, t7, 7);
    /* written by the store before the disk fills */
    for (int k = 0; k < 100 && th_metric(srv.port, "sonde_store_records_written_total") < 1; k++)
        th_sleep_ms(100);
    T_OK(th_metric(srv.port, "sonde_store_records_written_total") >= 1);

    T_EQ(t_fill_disk(dir), 0);
    /* changes until one is refused; the refused one changes nothing and is counted */
    double fails0 = th_metric(srv.port, "sonde_save_failures_total");
    int refused = 0, i;
    for (i = 0; i < 600 && !refused; i++) {
        int rc = change(srv.port, i, &m);
        T_REQUIRE(rc >= 0);
        refused = rc;
    }
    t_note("the disk refused change %d", i);
    T_EQ(refused, 1);
    T_EQ(m.eio, 0); /* a full disk is 507, whether LMDB's write was short or refused */
    same_as_acked(srv.port, &m);
    T_OK(th_metric(srv.port, "sonde_save_failures_total") >= fails0 + 1);
    /* a DELETE too is acknowledged or refused, never half done */
    j = th_jreq(srv.port, "DELETE", "/ca/instrumentations/2", NULL, &st);
    T_OK(st == 204 || st == 507);
    if (st == 204)
        ids_del(&m, 2);
    json_decref(j);
    same_as_acked(srv.port, &m);

    /* data that memory holds but the full disk refuses: the store's writes fail, counted; the
     * stop's last write of it fails too, so the stop exits 1 and says so */
    post_value(srv.port, t9, 9);
    for (int k = 0; k < 100 && th_metric(srv.port, "sonde_store_write_errors_total") < 1; k++)
        th_sleep_ms(100);
    T_OK(th_metric(srv.port, "sonde_store_write_errors_total") >= 1);
    T_EQ(th_metric(srv.port, "sonde_store_write_failing"), 1);
    T_EQ(raw_at(srv.port, 1, t9), 9); /* served from memory meanwhile */
    int stopped = th_serve_stop(&srv);
    T_EQ(stopped, 1);
    T_OK(file_has(log, "the final save failed"));
    T_EQ(t_unfill_disk(dir), 0);

    /* a restart finds exactly what was acknowledged, the ingested value too */
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    same_as_acked(srv.port, &m);
    T_EQ(raw_at(srv.port, 1, t7), 7);
    if (stopped == 0) /* a stop that said nothing failed wrote it */
        T_EQ(raw_at(srv.port, 1, t9), 9);
    /* space again: data is written, changes succeed, and the failures used up no id */
    double written = th_metric(srv.port, "sonde_store_records_written_total");
    post_value(srv.port, now_s() - 5, 5);
    for (int k = 0; k < 100 && th_metric(srv.port, "sonde_store_records_written_total") <= written;
         k++)
        th_sleep_ms(100);
    T_OK(th_metric(srv.port, "sonde_store_records_written_total") > written);
    T_EQ(th_metric(srv.port, "sonde_store_write_failing"), 0);
    int next = m.next;
    T_EQ(create(srv.port, SYSCALLS), next);
    j = th_jreq(srv.port, "PUT", "/ca/instrumentations/3", "{\"retention-time\":20}", &st);
    T_EQ(st, 200);
    json_decref(j);
    j = th_jreq(srv.port, "DELETE", "/ca/instrumentations/1", NULL, &st);
    T_EQ(st, 204);
    json_decref(j);
    T_EQ(th_serve_stop(&srv), 0);
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    j = th_jreq(srv.port, "GET", "/ca/instrumentations/3", NULL, &st);
    T_EQ(json_integer_value(json_object_get(j, "retention-time")), 20);
    json_decref(j);
    j = th_jreq(srv.port, "GET", "/ca/instrumentations/1", NULL, &st);
    T_EQ(st, 404);
    json_decref(j);
    T_EQ(create(srv.port, SYSCALLS), next + 1);
    T_EQ(th_serve_stop(&srv), 0);
    T_EQ(umount(dir), 0);
    rmdir(dir);
}

/* ---- the definitions file at start --------------------------------------------------------- */

#define DEF(scope, id, more)                                                                       \
    "{\"scope\":\"" scope "\",\"id\":" id ",\"module\":\"syscall\",\"stat\":\"syscalls\","         \
    "\"predicate\":{},\"decomposition\":[],\"granularity\":1,\"retention-time\":600,"              \
    "\"idle-max\":3600,\"persist-data\":false,\"crtime\":1" more "}"

static void test_defs_validated(void)
{
    char dir[512], log[600], path[700], ids[256];
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve srv;
    static const char file[] =
        "{\"version\":1,\"next_id\":{\"\":9223372036854775807,\"../"
        "x\":5},\"instrumentations\":[" DEF("", "1", "") "," DEF("", "1", "") "," DEF("", "-3", "") "," DEF(
            "", "9223372036854775807",
            "") "," DEF("../x", "2",
                        "") "," DEF("", "3",
                                    ",\"granularity\":7") "," DEF("", "4",
                                                                  ",\"module\":"
                                                                  "\"nope\"") "," DEF("", "5",
                                                                                      ",\"rete"
                                                                                      "ntion-"
                                                                                      "time\":"
                                                                                      "5") ","
                                                                                           "\""
                                                                                           "ju"
                                                                                           "nk"
                                                                                           "\""
                                                                                           "," DEF(
                                                                                               "",
                                                                                               "6",
                                                                                               "") "]}";

    fresh_dir("defs", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s.log", dir);
    snprintf(path, sizeof(path), "%s/instrumentations.json", dir);
    write_file(path, file);
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    list_ids(srv.port, ids, sizeof(ids));
    T_STR(ids, "1,6");
    T_EQ(create(srv.port, SYSCALLS), 7); /* past every id in use; the bad next_id refused */
    T_EQ(th_serve_stop(&srv), 0);

    /* each refusal logged with why (the log writes " as '), and the original kept */
    T_OK(file_has(log, "instrumentation #1 refused: a second definition of this id"));
    T_OK(file_has(log, "instrumentation #2 refused: 'id' is not an integer from 1 to"));
    T_OK(file_has(log, "instrumentation #3 refused: 'id' is not an integer from 1 to"));
    T_OK(file_has(log, "instrumentation #4 refused: 'scope' is not a tenant's name"));
    T_OK(file_has(log, "instrumentation #5 refused: value 7 for field 'granularity' is "
                       "invalid: must be divisible by 5"));
    T_OK(file_has(log, "instrumentation #6 refused: value 'nope.syscalls'"));
    T_OK(file_has(log, "instrumentation #7 refused: value 5 for field 'retention-time' is "
                       "invalid: minimum is 10"));
    T_OK(file_has(log, "instrumentation #8 refused: not an object"));
    T_OK(file_has(log, "next_id of scope '' refused"));
    T_OK(file_has(log, "next_id of scope '../x' refused"));
    T_OK(file_has(log, "10 definition(s) refused and left out; the file as it was is kept as"));
    DIR *d = opendir(dir);
    struct dirent *e;
    int kept = 0;
    while (d && (e = readdir(d)) != NULL)
        if (starts_with(e->d_name, "instrumentations.json.rejected-")) {
            char copy[1024];
            snprintf(copy, sizeof(copy), "%s/%s", dir, e->d_name);
            T_STR(slurp(copy), file);
            kept++;
        }
    if (d)
        closedir(d);
    T_EQ(kept, 1);
    /* migrated into the store; the file is left as it was */
    T_STR(slurp(path), file);
    T_OK(file_has(log, "instrumentations.json: migrated into the store (the file is left as it"));

    /* a restart reads the store's definitions (the file, still there, is not read again):
     * the same instrumentations, and ids never reused */
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    list_ids(srv.port, ids, sizeof(ids));
    T_STR(ids, "1,6,7");
    int st;
    json_t *j = th_jreq(srv.port, "GET", "/ca/instrumentations/6", NULL, &st);
    T_EQ(st, 200);
    T_EQ(json_integer_value(json_object_get(j, "retention-time")), 600);
    json_decref(j);
    j = th_jreq(srv.port, "DELETE", "/ca/instrumentations/7", NULL, &st);
    T_EQ(st, 204);
    json_decref(j);
    T_EQ(th_serve_stop(&srv), 0);
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    list_ids(srv.port, ids, sizeof(ids));
    T_STR(ids, "1,6");
    T_EQ(create(srv.port, SYSCALLS), 8); /* 7, deleted, is not given out again */
    T_EQ(th_serve_stop(&srv), 0);
    T_STR(slurp(path), file);
    d = opendir(dir);
    kept = 0;
    while (d && (e = readdir(d)) != NULL)
        kept += starts_with(e->d_name, "instrumentations.json.rejected-");
    if (d)
        closedir(d);
    T_EQ(kept, 1); /* refused once, at the migration */

    /* the last id: next_id at 2^53 leaves none to give out (a fresh data directory: the
     * file is read only when the store has no definitions) */
    fresh_dir("defs-last", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/instrumentations.json", dir);
    write_file(path,
               "{\"version\":1,\"next_id\":{\"\":9007199254740992},\"instrumentations\":[" DEF(
                   "", "9007199254740991", "") "]}");
    for (int round = 0; round < 2; round++) { /* migrated, then from the store */
        T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
        j = th_jreq(srv.port, "POST", "/ca/instrumentations", SYSCALLS, &st);
        T_INVAL(st, j,
                "no instrumentation ids left in this scope (the largest is 9007199254740991)");
        json_decref(j);
        j = th_jreq(srv.port, "GET", "/ca/instrumentations/9007199254740991", NULL, &st);
        T_EQ(st, 200);
        json_decref(j);
        T_EQ(th_serve_stop(&srv), 0);
    }
}

static void test_tmp_and_empty_files(void)
{
    char dir[512], log[600], path[700], ids[64];
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve srv;

    fresh_dir("tmp", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s.log", dir);
    snprintf(path, sizeof(path), "%s/data", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/dashboards", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/instrumentations.json", dir);
    write_file(path, "{\"version\":1,\"next_id\":{\"\":2},\"instrumentations\":[" DEF(
                         "", "1", ",\"persist-data\":true") "]}");
    static const char *const tmps[] = {"instrumentations.json.tmp", "data/1.snds.tmp",
                                       "dashboards/ops.json.tmp"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, tmps[i]);
        write_file(path, "torn");
    }
    snprintf(path, sizeof(path), "%s/data/1.snds", dir);
    write_file(path, "");
    T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
    list_ids(srv.port, ids, sizeof(ids));
    T_STR(ids, "1");
    T_EQ(th_serve_stop(&srv), 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, tmps[i]);
        T_OK(!exists(path));
        char want[800];
        snprintf(want, sizeof(want), "/durable-tmp-%d/%s, left by an interrupted save",
                 (int)getpid(), tmps[i]);
        T_OK(file_has(log, want));
    }
    T_OK(file_has(log, "1.snds: empty, ignored"));
}

/* ---- an older version's .snds file --------------------------------------------------------- */

/* An older version's data/1.snds for a persist-data scalar instrumentation (the dataset file
 * of docs/formats.md, as sn_ds_save() writes it) with values v0 + k at seconds ts[k] of host
 * "old" is migrated into the store at the first start (with instrumentations.json, which says
 * it is persist-data): its values are served then and after a second start, and the file is
 * left as it is. */
static void test_snds_migrated(void)
{
    char dir[512], log[600], path[700], ids[64];
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve srv;
    struct sn_ds_opts o = {.arity = SN_WIRE_SCALAR, .granularity = 1, .retention = 600};
    struct sn_dataset *ds = sn_ds_create(&o);
    int64_t now = now_s(), ts[6];
    unsigned char *buf = NULL;
    size_t len = 0;

    T_REQUIRE(ds != NULL);
    for (int k = 0; k < 6; k++) {
        ts[k] = now - 200 + 30 * k;
        struct sn_wire_frame f = {
            .id = "1", .host = "old", .t = ts[k], .arity = SN_WIRE_SCALAR, .total = 40 + k};
        T_EQ(sn_ds_add(ds, &f, now), SN_DS_ADDED);
    }
    T_EQ(sn_ds_save(ds, &buf, &len), 0);
    sn_ds_destroy(ds);
    T_REQUIRE(buf != NULL);

    fresh_dir("snds", dir, sizeof(dir));
    snprintf(log, sizeof(log), "%s.log", dir);
    snprintf(path, sizeof(path), "%s/data", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/instrumentations.json", dir);
    write_file(path, "{\"version\":1,\"next_id\":{\"\":2},\"instrumentations\":[" DEF(
                         "", "1", ",\"persist-data\":true") "]}");
    snprintf(path, sizeof(path), "%s/data/1.snds", dir);
    FILE *f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(buf, 1, len, f), len);
    fclose(f);

    for (int round = 0; round < 2; round++) { /* migrated, then from the store */
        t_note("start %d", round + 1);
        T_REQUIRE(start_logged(extra, dir, log, &srv) == 0);
        list_ids(srv.port, ids, sizeof(ids));
        T_STR(ids, "1");
        for (int k = 0; k < 6; k++)
            T_EQ(raw_at(srv.port, 1, ts[k]), 40 + k);
        T_EQ(raw_at(srv.port, 1, ts[0] + 1), 0); /* nothing between them */
        T_EQ(th_serve_stop(&srv), 0);
        /* the file as it was */
        f = fopen(path, "rb");
        unsigned char *back = malloc(len + 1);
        T_REQUIRE(f != NULL && back != NULL);
        T_EQ(fread(back, 1, len + 1, f), len);
        T_MEM(back, buf, len);
        fclose(f);
        free(back);
    }
    T_OK(file_has(log, "data/1.snds: migrated into the store (the file is left as it is)"));
    free(buf);
}

/* ---- parameters ---------------------------------------------------------------------------- */

static struct th_serve psrv; /* the parameters' server (--no-agent) */

/* The time parameters that overflowed, on every route that takes times. */
static void test_time_overflow(void)
{
    int id = create(psrv.port, SYSCALLS), st;
    T_REQUIRE(id > 0);
    static const char *const routes[] = {
        "value/raw?",
        "value/heatmap/image?",
        "value/heatmap/details?ymax=100&x=1&y=1&",
        "value/heatmap/average?",
        "value/heatmap/percentile?percentile=0.5&",
    };
    static const struct {
        const char *q, *msg;
    } cases[] = {
        {"start_time=9223372036854776", "requested data point is too far in the future"},
        {"end_time=9223372036854776", "requested data point is too far in the future"},
        {"start_time=9223372036854776&ndatapoints=3600&duration=3600",
         "requested data point is too far in the future"},
        {"start_time=2305843009213693951", "requested data point is too far in the future"},
        {"end_time=2305843009213693951", "requested data point is too far in the future"},
        {"start_time=2305843009213690351&end_time=2305843009213693951&ndatapoints=3600",
         "requested data point is too far in the future"},
        {"start_time=0&end_time=2305843009213693951&ndatapoints=3600",
         "\"end_time\" - \"start_time\" not valid: value too large (max: 315360000)"},
        {"start_time=0&end_time=400000000", "\"end_time\" - \"start_time\" not valid: value "
                                            "too large (max: 315360000)"},
        {"start_time=2305843009213693952", "value \"2305843009213693952\" for param "
                                           "\"start_time\" not valid: value too large (max: "
                                           "2305843009213693951)"},
        {"end_time=9223372036854775807", "value \"9223372036854775807\" for param \"end_time\" "
                                         "not valid: value too large (max: "
                                         "2305843009213693951)"},
        {"start_time=99999999999999999999", "value \"99999999999999999999\" for param "
                                            "\"start_time\" not valid: value too large (max: "
                                            "2305843009213693951)"},
        {"end_time=-9223372036854775809", "value \"-9223372036854775809\" for param "
                                          "\"end_time\" not valid: value too small (min: 0)"},
        {"duration=9223372036854775807", "value \"9223372036854775807\" for param \"duration\" "
                                         "not valid: value too large (max: 315360000)"},
        {"ndatapoints=9223372036854775807", "value \"9223372036854775807\" for param "
                                            "\"ndatapoints\" not valid: value too large (max: "
                                            "3600)"},
        {"timeout=9223372036854775807", "value \"9223372036854775807\" for param \"timeout\" "
                                        "not valid: value too large (max: 5000)"},
    };
    for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            json_t *j =
                th_getf(psrv.port, &st, "/ca/instrumentations/%d/%s%s", id, routes[r], cases[i].q);
            t_note("%s%s", routes[r], cases[i].q);
            T_INVAL(st, j, cases[i].msg);
            json_decref(j);
        }
    /* the heatmaps' own numbers at their extremes */
    static const struct {
        const char *q, *msg;
    } hm[] = {
        {"width=9223372036854775807", "value \"9223372036854775807\" for param \"width\" not "
                                      "valid: value too large (max: 1000)"},
        {"height=-9223372036854775808", "value \"-9223372036854775808\" for param \"height\" not "
                                        "valid: value too small (min: 10)"},
        {"ymax=9223372036854775807", "value \"9223372036854775807\" for param \"ymax\" not "
                                     "valid: value too large (max: 1000000000000)"},
        {"nbuckets=4294967297", "value \"4294967297\" for param \"nbuckets\" not valid: value "
                                "too large (max: 100)"},
    };
    for (size_t i = 0; i < sizeof(hm) / sizeof(hm[0]); i++) {
        json_t *j =
            th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/heatmap/image?%s", id, hm[i].q);
        t_note("%s", hm[i].q);
        T_INVAL(st, j, hm[i].msg);
        json_decref(j);
    }
    json_t *j =
        th_getf(psrv.port, &st,
                "/ca/instrumentations/%d/value/heatmap/details?ymax=100&x=4294967296&y=1", id);
    T_INVAL(st, j,
            "value \"4294967296\" for param \"x\" not valid: value too large (max: 2147483647)");
    json_decref(j);
    j = th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/heatmap/percentile?percentile=1e308",
                id);
    T_INVAL(st, j, "value \"1e308\" for param \"percentile\" not valid: value too large (max: 1)");
    json_decref(j);
}

static void test_long_lists(void)
{
    int id = create(psrv.port,
                    "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\","
                    "\"latency\"]}"),
        st;
    int64_t T = now_s() - 100;
    char q[8192];
    size_t at = 0;
    json_t *j;
    T_REQUIRE(id > 0);

    /* transformations: over 255 bytes, or more than 4 names, is refused like a bad name */
    at = (size_t)snprintf(q, sizeof(q), "transformations=reversedns&transformations=");
    for (int i = 0; i < 300; i++)
        q[at++] = 'x';
    q[at] = '\0';
    j = th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&%s", id,
                T, q);
    T_INVAL(st, j, "value for param \"transformations\" not valid: longer than 255 bytes");
    json_decref(j);
    j = th_getf(psrv.port, &st,
                "/ca/instrumentations/%d/value/raw?start_time=%" PRId64
                "&transformations=a,b,c,d,e",
                id, T);
    T_INVAL(st, j, "value for param \"transformations\" not valid: at most 4 values");
    json_decref(j);
    char path[128];
    snprintf(path, sizeof(path), "/ca/instrumentations/%d/value/raw", id);
    j = th_jreq(psrv.port, "GET", path, "{\"transformations\":[\"reversedns\",{}]}", &st);
    T_INVAL(st, j, "value for param \"transformations\" not valid: not a list of strings");
    json_decref(j);
    at = (size_t)snprintf(q, sizeof(q), "{\"transformations\":\"geolocate,");
    for (int i = 0; i < 300; i++)
        q[at++] = 'y';
    snprintf(q + at, sizeof(q) - at, "\"}");
    j = th_jreq(psrv.port, "GET", path, q, &st);
    T_INVAL(st, j, "value for param \"transformations\" not valid: longer than 255 bytes");
    json_decref(j);

    /* selected: over 4 KB, or more keys than layers */
    at = (size_t)snprintf(q, sizeof(q), "selected=");
    for (int i = 0; i < 60; i++)
        at += (size_t)snprintf(q + at, sizeof(q) - at, "%skey-%04d-%060d", i ? "," : "", i, 0);
    j = th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/heatmap/image?%s", id, q);
    T_INVAL(st, j, "value for param \"selected\" not valid: longer than 4095 bytes");
    json_decref(j);
    at = (size_t)snprintf(q, sizeof(q), "selected=");
    for (int i = 0; i < 64; i++)
        at += (size_t)snprintf(q + at, sizeof(q) - at, "%sk%d", i ? "," : "", i);
    j = th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/heatmap/image?%s", id, q);
    T_INVAL(st, j, "value for param \"selected\" not valid: at most 63 values");
    json_decref(j);
    j = th_getf(psrv.port, &st, "/ca/instrumentations/%d/value/heatmap/image?selected=a,b", id);
    T_EQ(st, 200); /* short lists as before */
    json_decref(j);
}

/* The warnings of a reply, joined by " | ". */
static const char *warnings_of(const json_t *j)
{
    static char buf[2048];
    const json_t *w = json_object_get(j, "warnings"), *e;
    size_t i, at = 0;
    buf[0] = '\0';
    json_array_foreach(w, i, e) at +=
        (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", i ? " | " : "", json_string_value(e));
    return buf;
}

/* PUT of an immutable property: ignored as CA ignored it, but the reply says so. */
static void test_put_immutable(void)
{
    int id = create(psrv.port, SYSCALLS), st;
    char path[128];
    json_t *j;
    T_REQUIRE(id > 0);
    snprintf(path, sizeof(path), "/ca/instrumentations/%d", id);

    j = th_jreq(psrv.port, "PUT", path, "{\"granularity\":5}", &st);
    T_EQ(st, 200);
    T_STR(warnings_of(j), "property \"granularity\" cannot be changed after creation: 5 ignored");
    T_EQ(json_integer_value(json_object_get(j, "granularity")), 1);
    json_decref(j);
    j = th_jreq(psrv.port, "PUT", path,
                "{\"stat\":\"rss\",\"idle-max\":10,\"decomposition\":[\"execname\"],"
                "\"predicate\":{\"eq\":[\"execname\",\"sh\"]},\"granularty\":5}",
                &st);
    T_EQ(st, 200);
    T_STR(warnings_of(j),
          "property \"stat\" cannot be changed after creation: \"rss\" ignored | property "
          "\"decomposition\" cannot be changed after creation: [\"execname\"] ignored | property "
          "\"predicate\" cannot be changed after creation: {\"eq\":[\"execname\",\"sh\"]} "
          "ignored | unknown property \"granularty\" ignored (did you mean \"granularity\"?)");
    T_EQ(json_integer_value(json_object_get(j, "idle-max")), 10); /* the mutable one applies */
    T_STR(json_string_value(json_object_get(j, "stat")), "syscalls");
    /* the property object sent back as it came: no warning */
    char *back = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    j = th_jreq(psrv.port, "PUT", path, back, &st);
    free(back);
    T_EQ(st, 200);
    T_OK(json_object_get(j, "warnings") == NULL);
    json_decref(j);
    j = th_jreq(psrv.port, "PUT", path, "{\"granularity\":\"1\",\"decomposition\":\"latency\"}",
                &st);
    T_EQ(st, 200);
    T_OK(json_object_get(j, "warnings") == NULL);
    json_decref(j);
}

static void test_metrics_without_agent(void)
{
    T_EQ(th_metric(psrv.port, "sonde_agent_collections_total"), 0);
    T_EQ(th_metric(psrv.port, "sonde_agent_collection_seconds"), 0);
    T_EQ(th_metric(psrv.port, "sonde_agent_instrumentations"), 0);
}

/* ---- long polls ---------------------------------------------------------------------------- */

#define NPOLLS 24

struct poll_arg {
    int port, id;
    int64_t T;
    int rc, status;
    char body[256];
};

static void *poll_fn(void *arg)
{
    struct poll_arg *p = arg;
    char path[256];
    struct th_resp r = {0};
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%" PRId64 "&timeout=5000", p->id, p->T);
    p->rc = th_request(p->port, "GET", path, NULL, NULL, 0, 15000, &r);
    p->status = r.status;
    snprintf(p->body, sizeof(p->body), "%s", r.body ? r.body : "");
    th_resp_free(&r);
    return NULL;
}

/* Frames of host "lp" for every second of now-14..now-3: the seconds after expect it. */
static void expect_source(int port, int id)
{
    char body[8192];
    size_t at = 0;
    int st;
    body[at++] = '[';
    for (int64_t t = now_s() - 14; t <= now_s() - 3; t++)
        at += (size_t)snprintf(body + at, sizeof(body) - at,
                               "%s{\"v\":1,\"id\":\"%d\",\"host\":\"lp\",\"t\":%" PRId64
                               ",\"arity\":\"scalar\",\"value\":1}",
                               at > 1 ? "," : "", id, t);
    snprintf(body + at, sizeof(body) - at, "]");
    json_t *j = th_jreq(port, "POST", "/ca/ingest", body, &st);
    T_EQ(st, 200);
    json_decref(j);
}

static void test_sigterm_long_polls(void)
{
    const char *extra[] = {"--no-agent", NULL};
    struct th_serve srv;
    struct poll_arg p[NPOLLS];
    pthread_t thr[NPOLLS];
    int st;

    T_REQUIRE(th_serve_start(sonde, extra, NULL, &srv) == 0);
    int id = create(srv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    int other = create(srv.port, "{\"module\":\"syscall\",\"stat\":\"syscalls\"}");
    T_REQUIRE(id > 0 && other > 0);
    expect_source(srv.port, id);
    int64_t T = now_s() + 1; /* waits for its source for 3 s at least */
    for (int i = 0; i < NPOLLS; i++) {
        p[i] = (struct poll_arg){.port = srv.port, .id = id, .T = T};
        T_REQUIRE(pthread_create(&thr[i], NULL, poll_fn, &p[i]) == 0);
    }
    th_sleep_ms(600);
    /* frames wake every parked poll, which parks again: still one long poll each */
    char frame[256];
    snprintf(frame, sizeof(frame),
             "{\"v\":1,\"id\":\"%d\",\"host\":\"lp\",\"t\":%" PRId64
             ",\"arity\":\"scalar\",\"value\":1}",
             other, now_s() - 1);
    json_t *j = th_jreq(srv.port, "POST", "/ca/ingest", frame, &st);
    T_EQ(st, 200);
    json_decref(j);
    th_sleep_ms(300);
    T_EQ(th_metric(srv.port, "sonde_http_long_polls_total"), NPOLLS);

    T_EQ(th_serve_stop(&srv), 0); /* SIGTERM while they wait */
    int answered = 0;
    for (int i = 0; i < NPOLLS; i++) {
        pthread_join(thr[i], NULL);
        if (p[i].rc != 0 || p[i].status != 200)
            t_note("poll %d: rc %d, status %d %s", i, p[i].rc, p[i].status, p[i].body);
        json_t *v = json_loads(p[i].body, 0, NULL);
        answered += p[i].rc == 0 && p[i].status == 200 && json_object_get(v, "value") &&
                    json_integer_value(json_object_get(v, "start_time")) == T;
        json_decref(v);
    }
    T_EQ(answered, NPOLLS);
}

/* ---- the UI's files from --ui-dir ---------------------------------------------------------- */

static void test_ui_dir(void)
{
    char dir[512], sub[600], uidir[600];
    struct th_serve srv;
    struct th_resp r = {0};

    fresh_dir("ui", dir, sizeof(dir));
    snprintf(sub, sizeof(sub), "%s/js", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/js/app.js", dir);
    write_file(sub, "export {};\n");
    snprintf(uidir, sizeof(uidir), "--ui-dir=%s", dir);
    const char *extra[] = {"--no-agent", uidir, NULL};
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &srv) == 0);
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/ui/js", 404}, {"/ui/js/app.js", 200}, {"/ui/nope.js", 404}, {"/ui/js/app.js/x", 404}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        T_EQ(th_get(srv.port, cases[i].path, &r), 0);
        t_note("%s", cases[i].path);
        T_EQ(r.status, cases[i].status);
        th_resp_free(&r);
    }
    T_EQ(th_serve_stop(&srv), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    signal(SIGPIPE, SIG_IGN);
    t_run("full_disk", test_full_disk);
    t_run("defs_validated", test_defs_validated);
    t_run("tmp_and_empty_files", test_tmp_and_empty_files);
    t_run("snds_migrated", test_snds_migrated);
    const char *extra[] = {"--no-agent", NULL};
    if (th_serve_start(sonde, extra, NULL, &psrv) != 0) {
        fprintf(stderr, "cannot start %s serve\n", sonde);
        return 1;
    }
    t_run("time_overflow", test_time_overflow);
    t_run("long_lists", test_long_lists);
    t_run("put_immutable", test_put_immutable);
    t_run("metrics_without_agent", test_metrics_without_agent);
    T_EQ(th_serve_stop(&psrv), 0);
    t_run("sigterm_long_polls", test_sigterm_long_polls);
    t_run("ui_dir", test_ui_dir);
    return t_done();
}
