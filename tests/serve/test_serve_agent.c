/*
 * `sonde serve` end to end with its own agent on the real kernel (needs root, as CI runs):
 * this test process is the workload. It creates instrumentations filtered to its own comm,
 * makes 20 nanosleeps of 2 ms, and long-polls value/raw for the seconds they fell in: all 20
 * appear, by system call and in the 2 ms latency buckets, within 2 s of the last one. A
 * heatmap of them is drawn, and deleting the instrumentation detaches the probes. The server
 * leaves its own process out of what it traces, unless --trace-self.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"

static const char *sonde;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* POSTs a create body; returns the new id or -1. */
static int create(int port, const char *body)
{
    struct th_resp r;
    int id = -1;
    if (th_send(port, "POST", "/ca/instrumentations", "application/json", body, &r) != 0)
        return -1;
    if (r.status == 201) {
        json_t *j = json_loads(r.body, 0, NULL);
        id = atoi(json_string_value(json_object_get(j, "id")) ?: "-1");
        json_decref(j);
    } else {
        t_note("create: %d %s", r.status, r.body);
    }
    th_resp_free(&r);
    return id;
}

/* value/raw over [start, start+dur), waiting up to 5 s for this host's report. */
static json_t *raw(int port, int id, long start, long dur)
{
    char path[256];
    struct th_resp r;
    json_t *j = NULL;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/raw?start_time=%ld&duration=%ld&timeout=5000", id,
             start, dur);
    if (th_request(port, "GET", path, NULL, NULL, 0, 10000, &r) == 0 && r.status == 200)
        j = json_loads(r.body, 0, NULL);
    else
        t_note("raw: %d %s", r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return j;
}

static void test_syscalls_reach_the_api(void)
{
    struct th_serve s;
    char comm[16], body[512];
    T_REQUIRE(t_unique_comm() == 0);
    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(th_serve_start(sonde, NULL, NULL, &s) == 0);

    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"execname\","
             "\"%s\"]},\"decomposition\":[\"syscall\"]}",
             comm);
    int by_name = create(s.port, body);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"and\":[{\"eq\":["
             "\"execname\",\"%s\"]},{\"eq\":[\"syscall\",\"clock_nanosleep\"]}]},"
             "\"decomposition\":[\"latency\"]}",
             comm);
    int lat = create(s.port, body);
    T_REQUIRE(by_name > 0 && lat > 0);
    /* the probes are attached when create returns; begin with a new second, waiting without
     * system calls (the vDSO clock) so that nothing else of ours falls in the seconds asked */
    double t0 = now_s(), begin = (double)(long)t0 + 1.01;
    while ((t0 = now_s()) < begin)
        ;
    for (int i = 0; i < 20; i++)
        t_timed_sleep(2000000);
    double t1 = now_s();
    long start = (long)t0, dur = (long)t1 - (long)t0 + 1;

    json_t *names = raw(s.port, by_name, start, dur);
    double got_names = now_s();
    json_t *lats = raw(s.port, lat, start, dur);
    double got_all = now_s();
    T_REQUIRE(names && lats);
    json_t *v = json_object_get(names, "value");
    T_EQ(json_integer_value(json_object_get(v, "clock_nanosleep")), 20);
    T_EQ(json_integer_value(json_object_get(names, "minreporting")), 1);
    T_EQ(json_integer_value(json_object_get(names, "nsources")), 1);
    uint64_t total = 0, near2ms = 0;
    json_t *cells = json_object_get(lats, "value");
    for (size_t i = 0; i < json_array_size(cells); i++) {
        json_t *cell = json_array_get(cells, i);
        json_int_t lo = json_integer_value(json_array_get(json_array_get(cell, 0), 0));
        json_int_t n = json_integer_value(json_array_get(cell, 1));
        total += (uint64_t)n;
        near2ms += lo >= 2000000 && lo < 3000000 ? (uint64_t)n : 0;
        T_OK(lo >= 2000000); /* never shorter than asked */
    }
    T_EQU(total, 20);
    /* most in [2, 3) ms: a loaded machine (CI runs two tests at once) wakes some sleepers
     * late, which the histogram rightly shows (18 of 20 failed in CI once) */
    if (near2ms < 18)
        t_note("%" PRIu64 " of 20 sleeps in [2, 3) ms", near2ms);
    T_OK(near2ms >= 12);
    t_note("last sleep to both replies: %.3f s (names %.3f s)", got_all - t1, got_names - t1);
    T_OK(got_all - t1 <= 2.0);
    json_decref(names);
    json_decref(lats);

    /* the heatmap of those seconds shows them */
    char path[256];
    struct th_resp r;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/%d/value/heatmap/image?start_time=%ld&duration=%ld", lat, start,
             dur);
    T_REQUIRE(th_get(s.port, path, &r) == 0);
    T_EQ(r.status, 200);
    json_t *img = json_loads(r.body, 0, NULL);
    T_OK(json_integer_value(json_object_get(img, "ymax")) >= 2000000);
    T_OK(json_string_length(json_object_get(img, "image")) > 100);
    json_decref(img);
    th_resp_free(&r);

    snprintf(path, sizeof(path), "/ca/instrumentations/%d", lat);
    T_REQUIRE(th_send(s.port, "DELETE", path, NULL, NULL, &r) == 0);
    T_EQ(r.status, 204);
    th_resp_free(&r);
    T_EQ(th_serve_stop(&s), 0);
}

/* The server's system calls by execname, restricted to its own pid, while it serves requests:
 * none without --trace-self (the kernel leaves the whole process out), some with it. */
static uint64_t own_calls(bool trace_self)
{
    static const char *const self[] = {"--trace-self", NULL};
    struct th_serve s;
    char body[512];
    uint64_t total = 0;

    if (th_serve_start(sonde, trace_self ? self : NULL, NULL, &s) != 0)
        return UINT64_MAX;
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\","
             "\"%d\"]},\"decomposition\":[\"execname\"]}",
             (int)s.pid);
    int id = create(s.port, body);
    double t0 = now_s();
    for (int i = 0; i < 40; i++) { /* busy: requests served, a second's collections */
        struct th_resp r;
        if (th_get(s.port, "/ca", &r) == 0)
            th_resp_free(&r);
        usleep(50000);
    }
    long start = (long)t0 + 1, dur = (long)now_s() - start;
    json_t *j = id > 0 && dur > 0 ? raw(s.port, id, start, dur) : NULL;
    const char *k;
    json_t *c;
    json_object_foreach(json_object_get(j, "value"), k, c)
    {
        t_note("  %s: %lld", k, (long long)json_integer_value(c));
        total += (uint64_t)json_integer_value(c);
    }
    T_OK(j != NULL);
    json_decref(j);
    th_serve_stop(&s);
    return total;
}

static void test_server_leaves_itself_out(void)
{
    uint64_t n = own_calls(false);
    t_note("without --trace-self: %llu system calls of the server's own", (unsigned long long)n);
    T_EQU(n, 0);
    n = own_calls(true);
    t_note("with --trace-self: %llu", (unsigned long long)n);
    T_OK(n > 0 && n != UINT64_MAX);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("syscalls_reach_the_api", test_syscalls_reach_the_api);
    t_run("server_leaves_itself_out", test_server_leaves_itself_out);
    return t_done();
}
