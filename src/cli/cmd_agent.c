/*
 * `sonde agent`: runs instrumentations on this host and reports one frame per
 * instrumentation per second. For now it takes them from a file (a JSON array of CA create
 * bodies) and prints frames as JSON lines on stdout (agent/frame.h); `sonde serve` and the
 * fleet mode will feed it instead.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/engine.h"
#include "agent/frame.h"
#include "agent/inst.h"
#include "cli/cli.h"
#include "core/log.h"

static const char usage[] =
    "usage: sonde agent --inst FILE --stdout [--format json|binary] [--seconds N]\n"
    "                   [--key-cap N] [--trace-self]\n"
    "\n"
    "Instruments this host's kernel with BPF for the instrumentations in FILE and prints,\n"
    "once a second, one JSON frame per instrumentation (docs/agent.md). Needs root.\n"
    "\n"
    "FILE holds a JSON array of Cloud Analytics create bodies, e.g.\n"
    "  [{\"module\":\"syscall\",\"stat\":\"syscalls\",\n"
    "    \"predicate\":{\"eq\":[\"execname\",\"nginx\"]},\"decomposition\":[\"latency\"]}]\n"
    "An \"id\" member names an instrumentation in its frames (default: its position, from 1).\n"
    "\n"
    "options:\n"
    "  --inst FILE     the instrumentations to run\n"
    "  --stdout        write frames to standard output\n"
    "  --format F      json: one JSON frame per line (default); binary: each frame in the\n"
    "                  checksummed binary form (src/wire/frame.h) behind its length as a\n"
    "                  little-endian u32\n"
    "  --seconds N     stop after N frames per instrumentation (default: until SIGINT/SIGTERM)\n"
    "  --key-cap N     distinct keys per instrumentation per second before counts go to\n"
    "                  \"other\" (default 1000)\n"
    "  --trace-self    count the agent's own events too (its collection's system calls, ...);\n"
    "                  by default the kernel leaves this process out of every instrumentation\n"
    "  -h, --help      this help\n"
    "\n"
    "SIGHUP reads FILE again: new and changed instrumentations are enabled (their first frame\n"
    "comes with the next second), removed ones disabled, the others keep running untouched.\n"
    "\n"
    "exit codes: 0 ok, 1 runtime error (e.g. BPF cannot load), 2 usage error or bad FILE\n";

static volatile sig_atomic_t stop, reload;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload = 1;
    else
        stop = 1;
}

struct collect_ctx {
    struct sn_frame *frames;
    const struct sn_inst *insts;
    size_t n;
    const char *host;
    int rc;
};

static void on_cell(const struct sn_cell *c, void *arg)
{
    struct collect_ctx *ctx = arg;
    for (size_t i = 0; i < ctx->n; i++)
        if (ctx->insts[i].slot == c->slot && sn_frame_add(&ctx->frames[i], c, ctx->host) < 0)
            ctx->rc = -ENOMEM;
}

static int load_insts(const char *path, const char *host, uint32_t cap, struct sn_inst **out,
                      size_t *n)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *arr;
    struct sn_inst *insts;

    if (!root) {
        fprintf(stderr, "sonde agent: %s:%d: %s\n", path, jerr.line, jerr.text);
        return SN_EXIT_USAGE;
    }
    arr = json_is_array(root) ? root : NULL;
    if (!arr || json_array_size(arr) == 0 || json_array_size(arr) > SN_MAX_SLOTS) {
        fprintf(stderr, "sonde agent: %s: want a JSON array of 1 to %d instrumentations\n", path,
                SN_MAX_SLOTS);
        json_decref(root);
        return SN_EXIT_USAGE;
    }
    insts = calloc(json_array_size(arr), sizeof(*insts));
    if (!insts) {
        json_decref(root);
        return SN_EXIT_FAILURE;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *body = json_array_get(arr, i);
        const char *id = json_string_value(json_object_get(body, "id"));
        char idbuf[32], why[512];
        snprintf(idbuf, sizeof(idbuf), "%zu", i + 1);
        if (sn_inst_from_json(body, id ? id : idbuf, host, cap, &insts[i], why, sizeof(why)) < 0) {
            fprintf(stderr, "sonde agent: %s: instrumentation %zu: %s\n", path, i + 1, why);
            free(insts);
            json_decref(root);
            return SN_EXIT_USAGE;
        }
    }
    *n = json_array_size(arr);
    *out = insts;
    json_decref(root);
    return SN_EXIT_OK;
}

/* Enables insts[0..n). On failure, disables what it enabled and returns the error. */
static int enable_all(struct sn_engine *eng, struct sn_inst *insts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (insts[i].slot >= 0)
            continue; /* kept from before a reload */
        insts[i].slot = sn_engine_enable(eng, &insts[i].spec);
        if (insts[i].slot < 0) {
            int rc = insts[i].slot;
            fprintf(stderr, "sonde agent: instrumentation %s: cannot enable: %s\n", insts[i].id,
                    strerror(-rc));
            insts[i].slot = -1;
            return rc;
        }
    }
    return 0;
}

static bool same_inst(const struct sn_inst *a, const struct sn_inst *b)
{
    return strcmp(a->id, b->id) == 0 && a->metric == b->metric && a->key == b->key &&
           a->num == b->num && memcmp(&a->spec, &b->spec, sizeof(a->spec)) == 0;
}

/*
 * SIGHUP: reads FILE again and makes the engine match it. Instrumentations that did not change
 * keep their slots (and their counts of the current second); removed ones are disabled, new
 * and changed ones enabled. A bad file, or one that cannot be enabled, leaves the running set
 * as it was (logged).
 */
static void reload_insts(struct sn_engine *eng, const char *file, const char *host, uint32_t cap,
                         struct sn_inst **insts, size_t *n)
{
    struct sn_inst *next;
    size_t nn;
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (load_insts(file, host, cap, &next, &nn) != SN_EXIT_OK) {
        sn_log(SN_LOG_WARN, "agent", "reload of %s failed; keeping the running set", file);
        return;
    }
    for (size_t i = 0; i < nn; i++) /* carry over unchanged ones */
        for (size_t j = 0; j < *n; j++)
            if ((*insts)[j].slot >= 0 && same_inst(&next[i], &(*insts)[j])) {
                next[i].slot = (*insts)[j].slot;
                (*insts)[j].slot = -1;
            }
    for (size_t j = 0; j < *n; j++) /* the rest of the old set goes */
        if ((*insts)[j].slot >= 0)
            sn_engine_disable(eng, (*insts)[j].slot);
    if (enable_all(eng, next, nn) < 0)
        sn_log(SN_LOG_WARN, "agent", "reload of %s: some instrumentations are not running", file);
    free(*insts);
    *insts = next;
    *n = nn;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sn_log(SN_LOG_INFO, "agent", "reloaded %s: %zu instrumentation(s) in %.1f ms", file, nn,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

int sn_cmd_agent(int argc, char **argv)
{
    enum { O_INST = 256, O_STDOUT, O_SECONDS, O_KEYCAP, O_FORMAT, O_SELF };
    static const struct option longopts[] = {
        {"inst", required_argument, NULL, O_INST},
        {"stdout", no_argument, NULL, O_STDOUT},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"key-cap", required_argument, NULL, O_KEYCAP},
        {"format", required_argument, NULL, O_FORMAT},
        {"trace-self", no_argument, NULL, O_SELF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    bool to_stdout = false, binary = false, trace_self = false;
    long seconds = 0, cap = SN_DEFAULT_KEY_CAP;
    struct sn_inst *insts = NULL;
    struct sn_engine *eng = NULL;
    struct sn_slot_drops drops[SN_MAX_SLOTS];
    char host[256];
    size_t n = 0;
    int c, rc;
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_INST:
            file = optarg;
            break;
        case O_STDOUT:
            to_stdout = true;
            break;
        case O_SELF:
            trace_self = true;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "binary") != 0) {
                fprintf(stderr, "sonde agent: --format must be json or binary\n");
                return SN_EXIT_USAGE;
            }
            binary = optarg[0] == 'b';
            break;
        case O_SECONDS:
        case O_KEYCAP: {
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < (c == O_SECONDS ? 0 : 1) || v > 100000000) {
                fprintf(stderr, "sonde agent: --%s wants a %s integer\n",
                        c == O_SECONDS ? "seconds" : "key-cap",
                        c == O_SECONDS ? "non-negative" : "positive");
                return SN_EXIT_USAGE;
            }
            if (c == O_SECONDS)
                seconds = v;
            else
                cap = v;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return SN_EXIT_OK;
        default:
            fputs("run 'sonde agent --help' for usage\n", stderr);
            return SN_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sonde agent: unexpected argument '%s'\n", argv[optind]);
        return SN_EXIT_USAGE;
    }
    if (!file || !to_stdout) {
        fputs("sonde agent: --inst FILE and --stdout are required (for now)\n", stderr);
        return SN_EXIT_USAGE;
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    rc = load_insts(file, host, (uint32_t)cap, &insts, &n);
    if (rc != SN_EXIT_OK)
        return rc;

    struct sn_engine_opts eo = {.exclude_tgid = trace_self ? 0 : (uint32_t)getpid()};
    rc = sn_engine_open_opts(&eng, &eo);
    if (rc < 0) {
        fprintf(stderr,
                "sonde agent: cannot load BPF programs: %s (needs root and a kernel "
                "with BTF)\n",
                strerror(-rc));
        free(insts);
        return SN_EXIT_FAILURE;
    }
    if (enable_all(eng, insts, n) < 0) {
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sn_log(SN_LOG_INFO, "agent", "%zu instrumentation(s) enabled on %s", n, host);

    struct timespec next;
    clock_gettime(CLOCK_REALTIME, &next);
    next.tv_sec += 1;
    next.tv_nsec = 0;
    sn_engine_collect(eng, NULL, NULL, NULL); /* start from an empty second */
    rc = SN_EXIT_OK;
    for (long s = 0; !stop && (seconds == 0 || s < seconds); s++) {
        struct sn_frame *frames = calloc(n, sizeof(*frames));
        struct collect_ctx ctx = {frames, insts, n, host, 0};

        while (!stop) {
            if (reload) { /* between collections: the others' seconds are not disturbed */
                reload = 0;
                reload_insts(eng, file, host, (uint32_t)cap, &insts, &n);
                free(frames);
                frames = calloc(n, sizeof(*frames));
                ctx = (struct collect_ctx){frames, insts, n, host, 0};
            }
            if (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &next, NULL) != EINTR)
                break;
        }
        if (!frames) {
            rc = SN_EXIT_FAILURE;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            sn_frame_init(&frames[i], &insts[i], (int64_t)next.tv_sec - 1);
            frames[i].engine = eng;
        }
        memset(drops, 0, sizeof(drops));
        sn_engine_collect(eng, on_cell, &ctx, drops);
        for (size_t i = 0; i < n; i++) {
            if (insts[i].slot < 0) { /* failed to enable at a reload */
                sn_frame_fini(&frames[i]);
                continue;
            }
            frames[i].drops = drops[insts[i].slot];
            if (binary) {
                size_t len;
                unsigned char *b = sn_frame_to_wire(&frames[i], host, &len);
                uint32_t le = htole32((uint32_t)len);
                if (!b || fwrite(&le, 4, 1, stdout) != 1 || fwrite(b, 1, len, stdout) != len)
                    ctx.rc = -EIO;
                free(b);
            } else {
                json_t *j = sn_frame_to_json(&frames[i], host);
                char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
                if (text)
                    printf("%s\n", text);
                else
                    ctx.rc = -ENOMEM;
                free(text);
                json_decref(j);
            }
            sn_frame_fini(&frames[i]);
        }
        free(frames);
        if (fflush(stdout) != 0 || ctx.rc < 0) {
            rc = SN_EXIT_FAILURE;
            break;
        }
        next.tv_sec += 1;
    }
out:
    sn_engine_close(eng);
    free(insts);
    return rc;
}
