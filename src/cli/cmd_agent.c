/*
 * `sonde agent`: runs instrumentations on this host and reports one frame per
 * instrumentation per second. Two modes: from a file (a JSON array of CA create bodies) with
 * frames printed on stdout, or in a fleet (--nats), where the definitions come from NATS's
 * key-value bucket and the frames go to JetStream (fleet/fleet_agent.h). This file is option
 * parsing and the stdout sink: the agent itself (its loop, its sources, its commands) is
 * agent/agent.h.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/definition.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/log.h"
#include "fleet/fleet_agent.h"
#include "fleet/link.h"
#include "fleet/names.h"
#include "fleet/span_relay.h"
#include "wire/frame.h"
#include "wire/frame_json.h"
#include "wire/stream.h"

static const char usage[] =
    "usage: sonde agent --inst FILE --stdout [--format json|binary] [--seconds N]\n"
    "                   [--key-cap N] [--trace-self] [--hostname NAME] [--cgroup PATH]\n"
    "       sonde agent --nats URL[,URL...] [NATS options] [--hostname NAME] [--cgroup PATH]\n"
    "                   [--zone Z] [--buffer-seconds N] [--buffer-bytes N] [--key-cap N]\n"
    "                   [--trace-self] [--otlp-listen [ADDR]] [--zipkin-listen [ADDR]]\n"
    "\n"
    "Instruments this host's kernel with BPF for the instrumentations in FILE and prints,\n"
    "once a second, one JSON frame per instrumentation (docs/agent.md). Needs root, but for\n"
    "sampled metrics (cpu.usage, memory.*, nic.*), which run without BPF.\n"
    "\n"
    "With --nats (instead of --inst and --stdout) the agent is a member of a fleet: it runs the\n"
    "instrumentations of the key-value bucket sonde_defs (enabled and disabled as they change)\n"
    "and publishes its frames to the JetStream stream SONDE_FRAMES, keeping up to\n"
    "--buffer-seconds of them while the broker is unreachable (docs/fleet.md).\n"
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
    "  --hostname NAME this host's name in frames and predicates (default: gethostname());\n"
    "                  letters, digits, '.', '-', '_'\n"
    "  --cgroup PATH   count only the cgroup v2 PATH and its descendants (every predicate is\n"
    "                  ANDed with {\"under\":[\"container\",PATH]}): one agent per container\n"
    "  -h, --help      this help\n"
    "\n"
    "fleet options:\n"
    "%s"
    "  --zone Z                this host's zone, shown in its heartbeat\n"
    "  --buffer-seconds N      frames kept while the broker is unreachable (default 120)\n"
    "  --buffer-bytes N        ... and at most N bytes of them (default 67108864, 64 MiB)\n"
    "  --otlp-listen [ADDR]    take OTLP/HTTP spans (POST /v1/traces) on ADDR (default\n"
    "                          127.0.0.1:4318) and relay them to the fleet's bus\n"
    "  --zipkin-listen [ADDR]  take Zipkin v2 spans (POST /api/v2/spans) on ADDR (default\n"
    "                          127.0.0.1:9411) and relay them likewise (docs/tracing.md)\n"
    "\n"
    "SIGHUP reads FILE again (with --nats: the whole set of definitions): new and changed\n"
    "instrumentations are enabled (their first frame comes with the next second), removed ones\n"
    "disabled, the others keep running untouched. With --nats, SIGUSR1 writes the agent's state\n"
    "(instrumentations, buffer, counters) to the log.\n"
    "\n"
    "exit codes: 0 ok, 1 runtime error (e.g. BPF cannot load), 2 usage error or bad FILE\n";

/* The stdout sink: frames as JSON lines or length-prefixed binary, flushed each second; after
 * --seconds N seconds (counted from the first with frames: the agent may collect a second
 * before FILE's instrumentations run) it writes nothing more and tells the main thread
 * (SIGUSR1). */
struct stdout_sink {
    bool binary;
    bool started; /* a frame was written */
    long seconds, done;
    int rc;
};

static void write_frame(void *arg, const struct sn_wire_frame *f)
{
    struct stdout_sink *o = arg;

    if (o->rc < 0 || (o->seconds && o->done >= o->seconds))
        return;
    o->started = true;
    if (o->binary) {
        if (sn_wire_stream_write(stdout, f) < 0)
            o->rc = -EIO;
    } else {
        json_t *j = sn_wire_frame_to_json(f);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (text)
            printf("%s\n", text);
        else
            o->rc = -ENOMEM;
        free(text);
        json_decref(j);
    }
}

static void end_second(void *arg, int64_t t)
{
    struct stdout_sink *o = arg;
    (void)t;

    if (!o->started || (o->seconds && o->done >= o->seconds))
        return;
    if (fflush(stdout) != 0)
        o->rc = -EIO;
    o->done++;
    if (o->rc < 0 || (o->seconds && o->done == o->seconds))
        kill(getpid(), SIGUSR1); /* the main thread stops the agent */
}

/* FILE as the agent's definitions: defs[i] borrows from *root (json_decref it). Returns
 * SN_EXIT_OK, or SN_EXIT_USAGE with the reason printed. */
static int load_defs(const char *path, const char *cgroup, json_t **root,
                     struct sn_agent_def **defs, char **ids, size_t *n)
{
    json_error_t jerr;
    json_t *arr;

    *root = json_load_file(path, 0, &jerr);
    if (!*root) {
        fprintf(stderr, "sonde agent: %s:%d: %s\n", path, jerr.line, jerr.text);
        return SN_EXIT_USAGE;
    }
    arr = json_is_array(*root) ? *root : NULL;
    if (!arr || json_array_size(arr) == 0 || json_array_size(arr) > SN_MAX_SLOTS) {
        fprintf(stderr, "sonde agent: %s: want a JSON array of 1 to %d instrumentations\n", path,
                SN_MAX_SLOTS);
        json_decref(*root);
        return SN_EXIT_USAGE;
    }
    *n = json_array_size(arr);
    *defs = calloc(*n, sizeof(**defs));
    *ids = calloc(*n, 32);
    if (!*defs || !*ids) {
        free(*defs);
        free(*ids);
        json_decref(*root);
        return SN_EXIT_FAILURE;
    }
    for (size_t i = 0; i < *n; i++) {
        if (cgroup) /* --cgroup: this cgroup and its descendants only */
            json_array_set_new(arr, i, sn_fleet_scope_def(json_array_get(arr, i), cgroup));
        json_t *body = json_array_get(arr, i);
        const char *id = json_string_value(json_object_get(body, "id"));
        snprintf(*ids + i * 32, 32, "%zu", i + 1);
        (*defs)[i] = (struct sn_agent_def){id ? id : *ids + i * 32, body};
    }
    return SN_EXIT_OK;
}

/* Makes the agent run FILE's instrumentations (sn_agent_sync()). Returns an exit code, with
 * the reason printed: SN_EXIT_USAGE for a bad file, SN_EXIT_FAILURE when one cannot run. */
static int run_file(struct sn_agent *a, const char *path, const char *cgroup, size_t *n)
{
    struct sn_agent_def *defs;
    json_t *root;
    char *ids, why[1024];
    int rc = load_defs(path, cgroup, &root, &defs, &ids, n);

    if (rc != SN_EXIT_OK)
        return rc;
    rc = sn_agent_sync(a, defs, *n, why, sizeof(why));
    if (rc == -EINVAL)
        fprintf(stderr, "sonde agent: %s: %s\n", path, why);
    else if (rc < 0)
        fprintf(stderr, "sonde agent: %s\n", why);
    free(defs);
    free(ids);
    json_decref(root);
    return rc == 0 ? SN_EXIT_OK : rc == -EINVAL ? SN_EXIT_USAGE : SN_EXIT_FAILURE;
}

/*
 * SIGHUP: reads FILE again and makes the agent match it (sn_agent_sync()): instrumentations
 * that did not change keep their slots (and their counts of the current second); removed ones
 * are disabled, new and changed ones enabled. A bad file leaves the running set as it was;
 * one that cannot be enabled is left out (logged).
 */
static void reload_file(struct sn_agent *a, const char *file, const char *cgroup)
{
    int64_t t0 = sn_mono_ns();
    size_t n = 0;
    int rc;

    rc = run_file(a, file, cgroup, &n);
    if (rc == SN_EXIT_USAGE) {
        sn_log(SN_LOG_WARN, "agent", "reload of %s failed; keeping the running set", file);
        return;
    }
    if (rc != SN_EXIT_OK)
        sn_log(SN_LOG_WARN, "agent", "reload of %s: some instrumentations are not running", file);
    sn_log(SN_LOG_INFO, "agent", "reloaded %s: %zu instrumentation(s) in %.1f ms", file, n,
           (double)(sn_mono_ns() - t0) / 1e6);
}

/* The fleet mode: runs until SIGINT or SIGTERM; SIGHUP reads the definitions again, SIGUSR1
 * dumps the state to the log. */
static int run_fleet(const struct sn_agent_opts *ao, const struct sn_fleet_agent_opts *fo,
                     const sigset_t *sigs)
{
    struct sn_fleet_agent *fa;
    char why[512] = "";
    int rc = sn_fleet_agent_open(ao, fo, &fa, why, sizeof(why));

    if (rc < 0) {
        fprintf(stderr, "sonde agent: %s\n", why[0] ? why : strerror(-rc));
        return rc == -EINVAL ? SN_EXIT_USAGE : SN_EXIT_FAILURE;
    }
    sn_log(SN_LOG_INFO, "agent", "in the fleet at %s as %s%s%s", fo->link->urls,
           ao->host ? ao->host : "this host", fo->cgroup ? ", cgroup " : "",
           fo->cgroup ? fo->cgroup : "");
    for (;;) {
        int sig = sigwaitinfo(sigs, NULL);
        if (sig == SIGHUP)
            sn_fleet_agent_resync(fa);
        else if (sig == SIGUSR1)
            sn_fleet_agent_dump(fa);
        else if (sig == SIGINT || sig == SIGTERM)
            break;
    }
    sn_fleet_agent_close(fa);
    return SN_EXIT_OK;
}

/* A decimal integer in [lo, hi] into *v; false otherwise. */
static bool parse_num(const char *text, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(text, &end, 10);
    return end != text && !*end && errno == 0 && *v >= lo && *v <= hi;
}

int sn_cmd_agent(int argc, char **argv)
{
    enum {
        O_INST = 256,
        O_STDOUT,
        O_SECONDS,
        O_KEYCAP,
        O_FORMAT,
        O_SELF,
        O_HOSTNAME,
        O_CGROUP,
        O_ZONE,
        O_BUFSEC,
        O_BUFBYTES,
        O_OTLPLISTEN,
        O_ZIPKINLISTEN,
        O_LINK, /* the link's options (fleet/link.h), handed to it by name */
    };
    static const struct option longopts[] = {
        {"inst", required_argument, NULL, O_INST},
        {"stdout", no_argument, NULL, O_STDOUT},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"key-cap", required_argument, NULL, O_KEYCAP},
        {"format", required_argument, NULL, O_FORMAT},
        {"trace-self", no_argument, NULL, O_SELF},
        {"hostname", required_argument, NULL, O_HOSTNAME},
        {"cgroup", required_argument, NULL, O_CGROUP},
        {"zone", required_argument, NULL, O_ZONE},
        {"buffer-seconds", required_argument, NULL, O_BUFSEC},
        {"buffer-bytes", required_argument, NULL, O_BUFBYTES},
        {"otlp-listen", optional_argument, NULL, O_OTLPLISTEN},
        {"zipkin-listen", optional_argument, NULL, O_ZIPKINLISTEN},
        SN_LINK_LONGOPTS(O_LINK),
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *host = NULL, *cgroup = NULL, *zone = NULL, *otlp = NULL,
               *zipkin = NULL;
    bool to_stdout = false, binary = false, trace_self = false, fleet_only = false,
         link_given = false;
    long seconds = 0, cap = SN_DEFAULT_KEY_CAP;
    long long buf_s = 120, buf_bytes = 64LL << 20;
    struct sn_link_opts lo = {0};
    struct sn_agent *agent = NULL;
    size_t n = 0;
    int c, rc, li = 0;
    char *end, why[512];

    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, &li)) != -1) {
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
        case O_HOSTNAME:
            if (!sn_fleet_host_valid(optarg)) {
                fprintf(stderr,
                        "sonde agent: --hostname \"%s\": want 1 to %d letters, digits, "
                        "'.', '-' or '_', not starting or ending with '.'\n",
                        optarg, SN_FLEET_HOST_MAX);
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            host = optarg;
            break;
        case O_CGROUP:
            if (optarg[0] != '/') {
                fprintf(stderr, "sonde agent: --cgroup wants an absolute cgroup path, e.g. "
                                "/system.slice/nginx.service\n");
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            cgroup = optarg;
            break;
        case O_ZONE:
            zone = optarg;
            fleet_only = true;
            break;
        case O_BUFSEC:
        case O_BUFBYTES: {
            long long v;
            bool secs = c == O_BUFSEC;
            if (!parse_num(optarg, 1, secs ? 86400 : (16LL << 30), &v)) {
                fprintf(stderr, "sonde agent: --%s wants an integer from 1 to %s\n",
                        secs ? "buffer-seconds" : "buffer-bytes", secs ? "86400" : "17179869184");
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            *(secs ? &buf_s : &buf_bytes) = v;
            fleet_only = true;
            break;
        }
        case O_OTLPLISTEN:
        case O_ZIPKINLISTEN: {
            /* the address is optional: --otlp-listen=ADDR, --otlp-listen ADDR (a next word
             * that is not an option), or none (the protocol's usual port on loopback) */
            const char *a = optarg;
            if (!a && optind < argc && argv[optind][0] != '-')
                a = argv[optind++];
            if (!a)
                a = c == O_OTLPLISTEN ? SN_SPAN_RELAY_OTLP_DEFAULT : SN_SPAN_RELAY_ZIPKIN_DEFAULT;
            if (!sn_cli_listen_ok(a, why, sizeof(why))) {
                fprintf(stderr, "sonde agent: --%s %s: %s\n",
                        c == O_OTLPLISTEN ? "otlp-listen" : "zipkin-listen", a, why);
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            *(c == O_OTLPLISTEN ? &otlp : &zipkin) = a;
            fleet_only = true;
            break;
        }
        case O_FORMAT:
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "binary") != 0) {
                fprintf(stderr, "sonde agent: --format must be json or binary\n");
                sn_link_opts_fini(&lo);
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
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            if (c == O_SECONDS)
                seconds = v;
            else
                cap = v;
            break;
        }
        case 'h':
            printf(usage, sn_link_usage);
            sn_link_opts_fini(&lo);
            return SN_EXIT_OK;
        case O_LINK:
            link_given = true;
            if ((rc = sn_link_cli_opt(&lo, "sonde agent", longopts[li].name, optarg)) == 1)
                break;
            sn_link_opts_fini(&lo);
            return rc == -ENOMEM ? SN_EXIT_FAILURE : SN_EXIT_USAGE;
        default:
            fputs("run 'sonde agent --help' for usage\n", stderr);
            sn_link_opts_fini(&lo);
            return SN_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sonde agent: unexpected argument '%s'\n", argv[optind]);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    bool fleet = lo.urls != NULL;
    if (fleet && (file || to_stdout || seconds || binary)) {
        fputs("sonde agent: --nats replaces --inst, --stdout, --format and --seconds: one mode "
              "or the other\n",
              stderr);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    if (!fleet && (!file || !to_stdout)) {
        fputs("sonde agent: either --nats URL or --inst FILE --stdout\n", stderr);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    if (!fleet && (fleet_only || link_given)) {
        fputs("sonde agent: --zone, --buffer-*, --otlp-listen, --zipkin-listen and the NATS "
              "options need --nats\n",
              stderr);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    if (fleet && sn_link_opts_check(&lo, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde agent: %s\n", why);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    /* before the agent's thread exists, so that it inherits the mask: signals are the main
     * thread's, taken with sigwaitinfo() */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct sn_agent_opts ao = {.host = host, .key_cap = (uint32_t)cap, .trace_self = trace_self};
    if (fleet) {
        struct sn_fleet_agent_opts fo = {
            .link = &lo,
            .cgroup = cgroup,
            .zone = zone,
            .version = SN_VERSION,
            .buffer_ms = (int64_t)buf_s * 1000,
            .buffer_bytes = (size_t)buf_bytes,
            .otlp_listen = otlp,
            .zipkin_listen = zipkin,
        };
        rc = run_fleet(&ao, &fo, &sigs);
        sn_link_opts_fini(&lo);
        return rc;
    }
    struct stdout_sink out = {.binary = binary, .seconds = seconds};
    struct sn_agent_sink sink = {write_frame, end_second, &out};
    rc = sn_agent_open(&ao, &sink, &agent);
    if (rc < 0) {
        fprintf(stderr, "sonde agent: cannot start: %s\n", strerror(-rc));
        return SN_EXIT_FAILURE;
    }
    rc = run_file(agent, file, cgroup, &n);
    if (rc != SN_EXIT_OK) {
        sn_agent_close(agent);
        return rc;
    }
    sn_log(SN_LOG_INFO, "agent", "%zu instrumentation(s) enabled on %s", n, sn_agent_host(agent));
    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGHUP)
            reload_file(agent, file, cgroup);
        else if (sig == SIGUSR1 || sig == SIGINT || sig == SIGTERM)
            break;
    }
    sn_agent_close(agent); /* no frame after this */
    return out.rc < 0 ? SN_EXIT_FAILURE : SN_EXIT_OK;
}
