/*
 * `sonde agent --inst FILE --stdout` end to end on the real kernel (argv[1] is the sonde
 * binary; needs root): this test process is the workload. It waits for the agent's first
 * frame, makes 20 nanosleeps of 2 ms, and reads the frames that follow: its sleeps appear,
 * exactly 20, in the [2000000, 2099999] ns range of its instrumentation, and a discrete
 * decomposition by syscall names clock_nanosleep. Bad instrumentation files are refused with
 * CA's messages and exit code 2, as are usage errors of `sonde agent` and `sonde serve`. The
 * agent's own system calls are not counted unless --trace-self.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "t.h"
#include "wire/frame.h"
#include "workload.h"

static const char *sonde;

static char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s.%d", t_outdir(), name, (int)getpid());
    f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_frames_from_a_workload(void)
{
    char comm[16], inst[1024], cmd[1024], line[65536];
    uint64_t total = 0, in2ms = 0, nano_by_syscall = 0, quick = 0;
    int frames = 0;
    FILE *p;

    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    snprintf(inst, sizeof(inst),
             "[{\"id\":\"sleeps\",\"module\":\"syscall\",\"stat\":\"syscalls\","
             "\"predicate\":{\"and\":[{\"eq\":[\"execname\",\"%s\"]},"
             "{\"eq\":[\"syscall\",\"clock_nanosleep\"]}]},\"decomposition\":[\"latency\"]},"
             "{\"id\":\"names\",\"module\":\"syscall\",\"stat\":\"syscalls\","
             "\"predicate\":{\"eq\":[\"execname\",\"%s\"]},\"decomposition\":\"syscall\"}]",
             comm, comm);
    const char *path = write_file("agent_inst", inst);
    T_REQUIRE(path != NULL);
    snprintf(cmd, sizeof(cmd), "%s agent --inst %s --stdout --seconds 4", sonde, path);
    p = popen(cmd, "r");
    T_REQUIRE(p != NULL);
    T_REQUIRE(t_realtime() == 0);
    while (fgets(line, sizeof(line), p)) {
        json_t *j = json_loads(line, 0, NULL);
        T_REQUIRE(j != NULL);
        frames++;
        if (frames == 2) /* both instrumentations reported once: the agent is running */
            for (int i = 0; i < 20; i++)
                quick += t_timed_sleep(2000000) < 2100000;
        const char *id = json_string_value(json_object_get(j, "id"));
        json_t *v = json_object_get(j, "value");
        T_OK(json_integer_value(json_object_get(j, "v")) == 1);
        if (id && !strcmp(id, "sleeps")) {
            T_STR(json_string_value(json_object_get(j, "arity")), "numeric-decomposition");
            for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *cell = json_array_get(v, i);
                json_int_t lo = json_integer_value(json_array_get(json_array_get(cell, 0), 0));
                json_int_t c = json_integer_value(json_array_get(cell, 1));
                total += (uint64_t)c;
                if (lo == 2000000)
                    in2ms += (uint64_t)c;
                T_OK(lo >= 2000000); /* never shorter than asked */
            }
        } else if (id && !strcmp(id, "names")) {
            nano_by_syscall += (uint64_t)json_integer_value(json_object_get(v, "clock_nanosleep"));
        }
        json_decref(j);
    }
    T_EQ(WEXITSTATUS(pclose(p)), 0);
    t_note("%d frames, %llu sleeps, %llu in [2.0, 2.1) ms", frames, (unsigned long long)total,
           (unsigned long long)in2ms);
    T_EQ(frames, 8);
    T_EQU(total, 20);
    T_EQU(nano_by_syscall, 20);
    T_OK(in2ms >= quick); /* see tests/bpf/test_bpf_syslat.c */
}

static void test_binary_frames(void)
{
    char cmd[1024], comm[16], inst[512];
    unsigned char buf[1 << 16];
    int frames = 0;
    uint64_t getppids = 0;
    FILE *p;

    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    snprintf(inst, sizeof(inst),
             "[{\"id\":\"mine\",\"module\":\"syscall\",\"stat\":\"syscalls\","
             "\"predicate\":{\"eq\":[\"execname\",\"%s\"]},"
             "\"decomposition\":[\"syscall\",\"latency\"]}]",
             comm);
    const char *path = write_file("agent_bin", inst);
    T_REQUIRE(path != NULL);
    snprintf(cmd, sizeof(cmd), "%s agent --inst %s --stdout --format binary --seconds 3", sonde,
             path);
    p = popen(cmd, "r");
    T_REQUIRE(p != NULL);
    for (;;) {
        uint32_t len;
        struct sn_wire_frame f;
        if (fread(&len, 4, 1, p) != 1)
            break;
        T_REQUIRE(len <= sizeof(buf) && fread(buf, 1, len, p) == len);
        T_REQUIRE(sn_wire_frame_decode(buf, len, &f) == 0);
        frames++;
        if (frames == 1) /* the agent is running: make 30 calls it must count */
            for (int i = 0; i < 30; i++)
                getppid();
        T_STR(f.id, "mine");
        T_EQ(f.arity, SN_WIRE_NUMERIC_BY_KEY);
        for (size_t i = 0; i < f.n; i++)
            if (!strcmp(f.entries[i].key, "getppid"))
                getppids += f.entries[i].count;
        sn_wire_frame_fini(&f);
    }
    T_EQ(WEXITSTATUS(pclose(p)), 0);
    T_EQ(frames, 3);
    T_EQU(getppids, 30);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Enabling while running: SIGHUP with a second instrumentation in FILE. Its first frame comes
 * within 2 s; the first keeps reporting every second without a gap; removing it stops its
 * frames.
 */
static void test_reload_enables_and_disables(void)
{
    static const char a[] = "{\"id\":\"a\",\"module\":\"syscall\",\"stat\":\"syscalls\"}";
    static const char b[] = "{\"id\":\"b\",\"module\":\"cpu\",\"stat\":\"usage\","
                            "\"decomposition\":\"cpumode\"}";
    char text[1024], line[65536];
    int fds[2], a_frames = 0, a_after_removal = 0, b_frames = 0, phase = 0;
    json_int_t last_a = 0;
    double hup = 0, first_b = -1;
    const char *path;
    pid_t pid;
    FILE *p;

    snprintf(text, sizeof(text), "[%s]", a);
    path = write_file("agent_reload", text);
    T_REQUIRE(path != NULL && pipe(fds) == 0);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(sonde, sonde, "agent", "--inst", path, "--stdout", "--seconds", "9", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    p = fdopen(fds[0], "r");
    T_REQUIRE(pid > 0 && p != NULL);
    while (fgets(line, sizeof(line), p)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        json_int_t t = json_integer_value(json_object_get(j, "t"));
        if (id && strcmp(id, "a") == 0) {
            if (last_a)
                T_EQ(t, last_a + 1); /* one frame a second, reload or not */
            last_a = t;
            a_frames++;
            if (phase == 2)
                a_after_removal++;
        } else if (id && strcmp(id, "b") == 0) {
            b_frames++;
            if (first_b < 0)
                first_b = now_s() - hup;
        }
        json_decref(j);
        if (phase == 0 && a_frames == 2) { /* running: add b */
            snprintf(text, sizeof(text), "[%s,%s]", a, b);
            T_OK(write_file("agent_reload", text) != NULL);
            hup = now_s();
            kill(pid, SIGHUP);
            phase = 1;
        } else if (phase == 1 && b_frames == 2) { /* now remove a */
            snprintf(text, sizeof(text), "[%s]", b);
            T_OK(write_file("agent_reload", text) != NULL);
            kill(pid, SIGHUP);
            phase = 2;
        }
    }
    fclose(p);
    int st = -1;
    waitpid(pid, &st, 0);
    T_EQ(st, 0);
    t_note("first frame of the new instrumentation %.3f s after SIGHUP; %d frames of a, %d of b",
           first_b, a_frames, b_frames);
    T_OK(first_b >= 0 && first_b < 2.0);
    T_OK(b_frames >= 4);
    T_OK(a_after_removal <= 1); /* at most the second that was being collected */
}

static int run_status(const char *inst_text, char *err, size_t len)
{
    char cmd[1024];
    const char *path = write_file("agent_bad", inst_text);
    FILE *p;
    size_t n;
    if (!path)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s agent --inst %s --stdout --seconds 1 2>&1", sonde, path);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    n = fread(err, 1, len - 1, p);
    err[n] = '\0';
    return WEXITSTATUS(pclose(p));
}

static void test_bad_files(void)
{
    char err[4096];
    T_EQ(run_status("[{\"module\":\"syscall\",\"stat\":\"nope\"}]", err, sizeof(err)), 2);
    T_OK(strstr(err, "value \"syscall.nope\" for field \"module.stat\" is invalid: not a valid "
                     "module/stat pair") != NULL);
    T_EQ(run_status("[{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":"
                    "[\"pid\",\"execname\"]}]",
                    err, sizeof(err)),
         2);
    T_OK(strstr(err, "more than one discrete decomposition specified") != NULL);
    T_EQ(run_status("[{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":"
                    "{\"eq\":[\"syscall\",\"frobnicate\"]}}]",
                    err, sizeof(err)),
         2);
    T_OK(strstr(err, "value \"frobnicate\" is not a valid syscall") != NULL);
    T_EQ(run_status("not json", err, sizeof(err)), 2);
    T_EQ(run_status("{}", err, sizeof(err)), 2);
    T_OK(strstr(err, "want a JSON array") != NULL);
}

/* The agent's frames of one instrumentation over its own pid (the child writes FILE with its
 * pid, then becomes the agent): the total of frames 2..4, by syscall name in names. */
static uint64_t own_calls(bool trace_self, char *names, size_t len)
{
    char line[65536];
    uint64_t total = 0;
    int fds[2], frames = 0;
    pid_t pid;
    FILE *p;

    names[0] = '\0';
    if (pipe(fds) != 0)
        return 0;
    pid = fork();
    if (pid == 0) {
        char text[512];
        dup2(fds[1], 1);
        close(fds[0]);
        snprintf(text, sizeof(text),
                 "[{\"id\":\"me\",\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":"
                 "{\"eq\":[\"pid\",\"%d\"]},\"decomposition\":\"syscall\"}]",
                 (int)getpid());
        const char *path = write_file("agent_self", text);
        if (path)
            execl(sonde, sonde, "agent", "--inst", path, "--stdout", "--seconds", "4",
                  trace_self ? "--trace-self" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    p = fdopen(fds[0], "r");
    while (p && fgets(line, sizeof(line), p)) {
        json_t *j = json_loads(line, 0, NULL), *v = json_object_get(j, "value");
        const char *k;
        json_t *c;
        if (++frames >= 2) /* the first second includes the start */
            json_object_foreach(v, k, c)
            {
                total += (uint64_t)json_integer_value(c);
                if (!strstr(names, k) && strlen(names) + strlen(k) + 2 < len)
                    strcat(strcat(names, " "), k);
            }
        json_decref(j);
    }
    if (p)
        fclose(p);
    int st = -1;
    waitpid(pid, &st, 0);
    T_EQ(st, 0);
    T_EQ(frames, 4);
    return total;
}

/* The agent's own system calls (writing frames, sleeping, collecting) are left out in the
 * kernel unless --trace-self. */
static void test_trace_self(void)
{
    char names[1024];
    uint64_t n = own_calls(false, names, sizeof(names));
    t_note("without --trace-self: %llu of its own calls%s", (unsigned long long)n, names);
    T_EQU(n, 0);
    n = own_calls(true, names, sizeof(names));
    t_note("with --trace-self: %llu of its own calls:%s", (unsigned long long)n, names);
    T_OK(n >= 3); /* at least a frame written and a sleep a second */
    T_OK(strstr(names, "write") != NULL);
}

/* Runs sonde with args (a shell fragment), output in out; the exit status. */
static int run_cmd(const char *args, char *out, size_t len)
{
    char cmd[2048];
    FILE *p;
    size_t n;
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", sonde, args);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    char rest[4096]; /* the rest is read too: a writer must not die of a closed pipe */
    while (fread(rest, 1, sizeof(rest), p) > 0)
        ;
    return WEXITSTATUS(pclose(p));
}

static void test_usage_errors_exit_2(void)
{
    char out[4096], args[1024], dir[600];
    struct stat st;

    T_EQ(run_cmd("serve --listen 127.0.0.1 --no-agent", out, sizeof(out)), 2);
    T_OK(strstr(out, "no port") != NULL);
    T_EQ(run_cmd("serve --listen 127.0.0.1:65536 --no-agent", out, sizeof(out)), 2);
    T_EQ(run_cmd("serve --listen nohost.example:80 --no-agent", out, sizeof(out)), 2);
    T_EQ(run_cmd("serve --threads 0 --no-agent", out, sizeof(out)), 2);
    T_EQ(run_cmd("serve --frobnicate", out, sizeof(out)), 2);
    T_EQ(run_cmd("serve extra", out, sizeof(out)), 2);
    snprintf(dir, sizeof(dir), "%s/nodir.%d/sub/data", t_outdir(), (int)getpid());
    snprintf(args, sizeof(args), "serve --no-agent --listen 127.0.0.1:0 --data %s", dir);
    T_EQ(run_cmd(args, out, sizeof(out)), 2);
    t_note("%s", out);
    T_OK(strstr(out, "does not exist") != NULL && strstr(out, "/sub") != NULL);
    snprintf(dir, sizeof(dir), "%s/nodir.%d", t_outdir(), (int)getpid());
    T_OK(stat(dir, &st) != 0); /* nothing was created */
    T_EQ(run_cmd("agent --inst x --stdout extra", out, sizeof(out)), 2);
    T_EQ(run_cmd("agent --stdout", out, sizeof(out)), 2);
    T_EQ(run_cmd("agent --inst x --stdout --seconds -1", out, sizeof(out)), 2);
    T_EQ(run_cmd("agent --inst x --stdout --frobnicate", out, sizeof(out)), 2);
    /* the span relay: a fleet's, and its address checked before anything starts */
    T_EQ(run_cmd("agent --inst x --stdout --otlp-listen", out, sizeof(out)), 2);
    T_OK(strstr(out, "need --nats") != NULL);
    T_EQ(run_cmd("agent --nats nats://127.0.0.1:1 --otlp-listen 127.0.0.1", out, sizeof(out)), 2);
    T_OK(strstr(out, "--otlp-listen 127.0.0.1: no port") != NULL);
    T_EQ(run_cmd("agent --nats nats://127.0.0.1:1 --zipkin-listen=nohost.example:9411", out,
                 sizeof(out)),
         2);
    T_OK(strstr(out, "--zipkin-listen nohost.example:9411") != NULL);
    T_EQ(run_cmd("agent --nats nats://127.0.0.1:1 --otlp-listen extra", out, sizeof(out)), 2);
    T_EQ(run_cmd("agent --help", out, sizeof(out)), 0);
    T_OK(strstr(out, "--trace-self") != NULL);
    T_OK(strstr(out, "--otlp-listen [ADDR]") != NULL && strstr(out, "127.0.0.1:9411") != NULL);
    T_EQ(run_cmd("serve --help", out, sizeof(out)), 0);
    T_OK(strstr(out, "--trace-self") != NULL);
}

/* --data DIR whose parent exists: DIR is made (0700) and the server runs. */
static void test_data_dir_created(void)
{
    char dir[600], line[512];
    struct stat st;
    int fds[2];
    pid_t pid;

    snprintf(dir, sizeof(dir), "%s/newdata.%d", t_outdir(), (int)getpid());
    T_REQUIRE(pipe(fds) == 0);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(sonde, sonde, "serve", "--no-agent", "--listen", "127.0.0.1:0", "--data", dir,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *p = fdopen(fds[0], "r");
    T_REQUIRE(pid > 0 && p != NULL);
    T_OK(fgets(line, sizeof(line), p) != NULL && strstr(line, "serving on") != NULL);
    kill(pid, SIGTERM);
    fclose(p);
    int status = -1;
    waitpid(pid, &status, 0);
    T_EQ(status, 0);
    T_REQUIRE(stat(dir, &st) == 0);
    T_OK(S_ISDIR(st.st_mode));
    T_EQ((int)(st.st_mode & 0777), 0700);
}

/* The value of the Prometheus sample named exactly name (with its labels) in text, or -1. */
static long long prom_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == ' ')
            return atoll(l + n + 1);
    return -1;
}

/* `sonde serve --key-cap 2`: the cap reaches the local agent's kernel slots. Six processes of
 * this test's name make system calls by pid; the kernel counts those past 2 keys a second
 * under "other" and says so in the frames' over_cap, which the server adds up in /metrics.
 * (With the kernel's default cap of 1000, over_cap would stay 0 and the server fold keys.) */
static void test_serve_key_cap_reaches_the_kernel(void)
{
    static const char *const extra[] = {"--key-cap", "2", NULL};
    struct th_serve s;
    struct th_resp r;
    char comm[16], body[512];

    T_REQUIRE(prctl(PR_GET_NAME, comm) == 0);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    snprintf(body, sizeof(body),
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"execname\","
             "\"%s\"]},\"decomposition\":[\"pid\"]}",
             comm);
    T_EQ(th_send(s.port, "POST", "/ca/instrumentations", "application/json", body, &r), 0);
    T_EQ(r.status, 201);
    th_resp_free(&r);
    T_OK(t_forked_getppid(6, 200) == 0);
    long long over = 0;
    for (int w = 0; w < 50 && over <= 0; w++) { /* the second's frames: within 5 s */
        th_sleep_ms(100);
        if (th_get(s.port, "/metrics", &r) == 0 && r.status == 200 && r.body)
            over = prom_value(r.body, "sonde_events_dropped_total{reason=\"over_cap\"}");
        th_resp_free(&r);
    }
    t_note("events over the kernel's key cap: %lld", over);
    T_OK(over > 0);
    T_EQ(th_serve_stop(&s), 0);
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_unique_comm();
    t_run("a workload's 2 ms sleeps appear in the agent's frames", test_frames_from_a_workload);
    t_run("binary frames decode, checksums and all", test_binary_frames);
    t_run("SIGHUP enables and disables while the others keep reporting",
          test_reload_enables_and_disables);
    t_run("bad instrumentation files: CA messages, exit 2", test_bad_files);
    t_run("the agent's own events are left out unless --trace-self", test_trace_self);
    t_run("usage errors of serve and agent exit 2 and say why", test_usage_errors_exit_2);
    t_run("--data DIR is created when its parent exists", test_data_dir_created);
    t_run("serve --key-cap reaches the kernel", test_serve_key_cap_reaches_the_kernel);
    return t_done();
}
