/*
 * `sonde serve`: the local agent, the aggregator and the Cloud Analytics API in one process.
 * This file only parses and checks the options (and makes the data directory); the server
 * (serve/server.h) is opened with them, run until SIGINT or SIGTERM on this thread (the
 * once-a-second tick), and closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/timespec.h"
#include "http/client.h"
#include "http/httpd.h"
#include "fleet/link.h"
#include "serve/server.h"

static const char usage[] =
    "usage: sonde serve [--listen HOST:PORT] [--data DIR] [--tenants FILE] [--no-agent]\n"
    "                   [--threads N] [--key-cap N] [--ui-dir DIR] [--trace-self]\n"
    "                   [--max-connections N] [--max-connections-per-ip N]\n"
    "                   [--header-timeout S] [--body-timeout S] [--max-body-memory BYTES]\n"
    "                   [--tiers LIST] [--store-max-bytes BYTES] [--rollup-keys N]\n"
    "                   [--otlp-listen HOST:PORT] [--zipkin-listen HOST:PORT]\n"
    "                   [--trace-retention DURATION] [--trace-max-bytes BYTES]\n"
    "                   [--trace-queue N] [--live-listen [ADDR:]PORT] [--live-period MS]\n"
    "                   [--nats URL[,URL...] [--node-id ID] [--zone Z] [--advertise URL]\n"
    "                    [NATS options]]\n"
    "\n"
    "Runs the agent, the aggregator and the Cloud Analytics HTTP API in one process\n"
    "(docs/api.md), and the web UI at / (docs/ui.md); keeps every instrumentation's history\n"
    "in its store (docs/operations.md). Prints its URL on the first line of standard output.\n"
    "Stops cleanly on SIGINT or SIGTERM, after writing what memory holds into the store.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT  where to serve (default 127.0.0.1:23181; port 0 picks a free one;\n"
    "                      \":PORT\" listens on every address)\n"
    "  --data DIR          state directory: the store (definitions and history, DIR/store)\n"
    "                      and dashboards (default /var/lib/sonde as root, else\n"
    "                      ~/.local/share/sonde); DIR is created (mode 0700) when its parent\n"
    "                      exists\n"
    "  --tenants FILE      tokens and tenants (docs/api.md); without it only loopback clients\n"
    "                      are served and there are no tenant scopes\n"
    "  --no-agent          do not instrument this host: data comes only from ingest\n"
    "  --threads N         HTTP worker threads (default 4)\n"
    "  --key-cap N         distinct keys per instrumentation per second (default 1000)\n"
    "  --trace-self        let the local agent count this process's own events (its API\n"
    "                      threads and its collection); by default the kernel leaves them out\n"
    "  --ui-dir DIR        serve the web UI's files from DIR (a checkout's ui/) instead of\n"
    "                      the copy compiled in: edit, reload, no rebuild\n"
    "\n"
    "history (docs/operations.md):\n"
    "  --tiers LIST        how long each tier keeps data (default raw:2d,1m:90d,1h:5y,1d:10y;\n"
    "                      any subset; raw is each instrumentation's granularity, then 1-minute,\n"
    "                      1-hour and 1-day rollups; \"1m:0\" turns a tier off; coarser tiers\n"
    "                      keep at least as long). Without persist-data an instrumentation\n"
    "                      keeps only its raw tier, for its retention-time\n"
    "  --store-max-bytes BYTES  cap on the pages the store's data uses (K, M, G, T: powers\n"
    "                      of 1024; default none): past it the oldest raw records go first\n"
    "                      (counted); the file does not shrink, its free pages are reused\n"
    "  --rollup-keys N     keys a rollup record keeps before \"other\" (default 1000;\n"
    "                      1-1000000)\n"
    "\n"
    "spans (docs/tracing.md): OTLP/HTTP (POST /v1/traces) and Zipkin v2 (/api/v2/...) are\n"
    "served on --listen; these add listeners with the span routes alone, for exporters\n"
    "left at their defaults\n"
    "  --otlp-listen HOST:PORT    OTLP/HTTP's port (its default is 127.0.0.1:4318)\n"
    "  --zipkin-listen HOST:PORT  Zipkin's port (its default is 127.0.0.1:9411)\n"
    "  --trace-retention DURATION how long spans are kept (default 7d; 30m, 12h, 90d)\n"
    "  --trace-max-bytes BYTES    cap on the pages spans use (K, M, G, T; default none):\n"
    "                             past it the oldest spans go first (counted)\n"
    "  --trace-queue N            span requests waiting to be written at most (default\n"
    "                             256): past it 503 with Retry-After\n"
    "\n"
    "live reading (docs/recorder.md): recording sessions started with --live are served to\n"
    "`babeltrace2 -i lttng-live net://ADDR:PORT/host/HOST/NAME` and `sonde trace`\n"
    "  --live-listen [ADDR:]PORT  the live relay's IPv4 address and port (default off;\n"
    "                      ADDR defaults to 127.0.0.1; LTTng's port is 5344; 0 picks one)\n"
    "  --live-period MS    how often live sessions' rings are drained to the relay\n"
    "                      (default 100; 10-60000)\n"
    "\n"
    "fleet (docs/fleet.md): with --nats this server is a node of a fleet: definitions,\n"
    "membership and frames go through NATS JetStream; it aggregates and stores the\n"
    "instrumentations it owns and answers any request (no local agent: run `sonde agent\n"
    "--nats` on every host, this one too)\n"
    "  --node-id ID        this node's name in the fleet (default HOSTNAME-PORT)\n"
    "  --zone Z            its zone: each instrumentation's owners spread across zones\n"
    "  --advertise URL     where the other nodes reach this API (default http://HOST:PORT of\n"
    "                      --listen, this host's name when it listens on every address)\n"
    "%s"
    "\n"
    "limits on clients (docs/operations.md; refusals are counted in /metrics):\n"
    "  --max-connections N          open connections at most (default 1024); past it a new\n"
    "                               connection closes the longest idle one, or is refused\n"
    "  --max-connections-per-ip N   from one address (IPv6: one /64) at most (default 128)\n"
    "  --header-timeout S           seconds to send a whole request head, from connecting or\n"
    "                               from the end of the previous request (default 10)\n"
    "  --body-timeout S             seconds for a request's body to arrive after its head\n"
    "                               (default 60)\n"
    "  --max-body-memory BYTES      request bodies in memory, all together (default 64M;\n"
    "                               K, M, G suffixes); past it 503 with Retry-After\n"
    "  -h, --help          this help\n"
    "\n"
    "Without root (or BPF), the local agent cannot load: the server says so and serves data\n"
    "from ingest only.\n"
    "\n"
    "exit codes: 0 stopped by a signal, 1 runtime error (cannot listen, a data directory or\n"
    "store that cannot be created or opened, definitions that could not be written at the\n"
    "stop), 2 usage error (unknown option, bad value such as --listen without a port or a\n"
    "--tiers that does not parse, --data whose parent directory does not exist) or bad tenants\n"
    "file\n";

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/*
 * The data directory named by --data: created (0700) when missing if its parent exists; a
 * missing parent is the caller's mistake (a typo should not grow a tree of directories), said
 * in why. Returns 0, SN_EXIT_USAGE or SN_EXIT_FAILURE.
 */
static int make_datadir(const char *dir, char *why, size_t whylen)
{
    char parent[1024];
    struct stat st;
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/') /* "dir/" is dir */
        n--;
    snprintf(parent, sizeof(parent), "%.*s", (int)n, dir);
    if (stat(parent, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        snprintf(why, whylen, "%.400s is not a directory", parent);
        return SN_EXIT_USAGE;
    }
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0'; /* "/x": its parent is "/" */
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "the parent directory %.400s does not exist (create it first)",
                 parent);
        return SN_EXIT_USAGE;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %.400s: %s", dir, strerror(errno));
        return SN_EXIT_FAILURE;
    }
    return 0;
}

/* The value of limit option i (0 --max-connections, 1 --max-connections-per-ip,
 * 2 --header-timeout, 3 --body-timeout, 4 --max-body-memory): an integer in the option's range;
 * --max-body-memory also takes a K, M or G suffix (powers of 1024). Else says why on stderr. */
static bool limit_arg(int i, const char *arg, uint64_t *out)
{
    static const struct {
        const char *name;
        uint64_t min, max;
    } r[] = {
        {"max-connections", 1, 1000000},
        {"max-connections-per-ip", 1, 1000000},
        {"header-timeout", 1, 3600},
        {"body-timeout", 1, 86400},
        {"max-body-memory", 1u << 20, 1ull << 40},
    };
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (i == 4 && end != arg && end[0] && !end[1]) {
        int shift = end[0] == 'K' || end[0] == 'k'   ? 10
                    : end[0] == 'M' || end[0] == 'm' ? 20
                    : end[0] == 'G' || end[0] == 'g' ? 30
                                                     : -1;
        if (shift > 0 && v <= (1ull << 40) >> shift) {
            v <<= shift;
            end++;
        }
    }
    if (end == arg || *end || errno || arg[0] == '-' || v < r[i].min || v > r[i].max) {
        fprintf(stderr, "sonde serve: --%s wants %s from %llu to %llu\n", r[i].name,
                i == 4 ? "a size in bytes (K, M, G suffixes)" : "an integer",
                (unsigned long long)r[i].min, (unsigned long long)r[i].max);
        return false;
    }
    *out = v;
    return true;
}

static void default_datadir(char *out, size_t len)
{
    const char *home = getenv("HOME");
    if (geteuid() == 0 || !home)
        snprintf(out, len, "/var/lib/sonde");
    else
        snprintf(out, len, "%s/.local/share/sonde", home);
}

int sn_cmd_serve(int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_DATA,
        O_TENANTS,
        O_NOAGENT,
        O_THREADS,
        O_KEYCAP,
        O_UIDIR,
        O_SELF,
        O_MAXCONN,
        O_MAXCONNIP,
        O_HDRTIME,
        O_BODYTIME,
        O_BODYMEM,
        O_TIERS,
        O_STOREMAX,
        O_ROLLUPKEYS,
        O_NODEID,
        O_ZONE,
        O_ADVERTISE,
        O_OTLPLISTEN,
        O_ZIPKINLISTEN,
        O_TRACERET,
        O_TRACEMAX,
        O_TRACEQUEUE,
        O_LIVELISTEN,
        O_LIVEPERIOD,
        O_LINK, /* the NATS link's options: sn_link_opt() */
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"data", required_argument, NULL, O_DATA},
        {"tenants", required_argument, NULL, O_TENANTS},
        {"no-agent", no_argument, NULL, O_NOAGENT},
        {"threads", required_argument, NULL, O_THREADS},
        {"key-cap", required_argument, NULL, O_KEYCAP},
        {"ui-dir", required_argument, NULL, O_UIDIR},
        {"trace-self", no_argument, NULL, O_SELF},
        {"max-connections", required_argument, NULL, O_MAXCONN},
        {"max-connections-per-ip", required_argument, NULL, O_MAXCONNIP},
        {"header-timeout", required_argument, NULL, O_HDRTIME},
        {"body-timeout", required_argument, NULL, O_BODYTIME},
        {"max-body-memory", required_argument, NULL, O_BODYMEM},
        {"tiers", required_argument, NULL, O_TIERS},
        {"store-max-bytes", required_argument, NULL, O_STOREMAX},
        {"rollup-keys", required_argument, NULL, O_ROLLUPKEYS},
        {"node-id", required_argument, NULL, O_NODEID},
        {"zone", required_argument, NULL, O_ZONE},
        {"advertise", required_argument, NULL, O_ADVERTISE},
        {"otlp-listen", required_argument, NULL, O_OTLPLISTEN},
        {"zipkin-listen", required_argument, NULL, O_ZIPKINLISTEN},
        {"trace-retention", required_argument, NULL, O_TRACERET},
        {"trace-max-bytes", required_argument, NULL, O_TRACEMAX},
        {"trace-queue", required_argument, NULL, O_TRACEQUEUE},
        {"live-listen", required_argument, NULL, O_LIVELISTEN},
        {"live-period", required_argument, NULL, O_LIVEPERIOD},
        SN_LINK_LONGOPTS(O_LINK),
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:23181", *tenants = NULL;
    static char live_addr[INET_ADDRSTRLEN];
    bool agent = true, trace_self = false, data_given = false;
    long threads = 4, cap = SN_DEFAULT_KEY_CAP;
    struct sn_http_opts ho = {.max_conns = SN_HTTP_DEFAULT_MAX_CONNS,
                              .max_conns_per_ip = SN_HTTP_DEFAULT_MAX_CONNS_PER_IP,
                              .header_timeout_s = SN_HTTP_DEFAULT_HEADER_TIMEOUT_S,
                              .body_timeout_s = SN_HTTP_DEFAULT_BODY_TIMEOUT_S,
                              .max_body_memory = SN_HTTP_DEFAULT_MAX_BODY_MEMORY};
    struct sn_server_opts so = {0};
    struct sn_server *s;
    char why[512], path[600], datadir[512], uidir[512] = "";
    int c, rc;

    default_datadir(datadir, sizeof(datadir));
    optind = 1;
    struct sn_link_opts link = {0};
    const char *node_id = NULL, *zone = NULL, *advertise = NULL;
    int li = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, &li)) != -1) {
        switch (c) {
        case O_NODEID:
            node_id = optarg;
            break;
        case O_ZONE:
            zone = optarg;
            break;
        case O_ADVERTISE: {
            struct sn_url u;
            if (sn_url_parse(optarg, &u) < 0) {
                fprintf(stderr, "sonde serve: --advertise wants http://HOST:PORT\n");
                return SN_EXIT_USAGE;
            }
            advertise = optarg;
            break;
        }
        case O_LINK:
            if (sn_link_cli_opt(&link, "sonde serve", longopts[li].name, optarg) != 1) {
                sn_link_opts_fini(&link);
                return SN_EXIT_USAGE;
            }
            break;
        case O_LISTEN:
            listen = optarg;
            break;
        case O_DATA:
            if (!optarg[0] || strlen(optarg) >= sizeof(datadir) - 8) {
                fprintf(stderr, "sonde serve: --data wants a directory\n");
                return SN_EXIT_USAGE;
            }
            snprintf(datadir, sizeof(datadir), "%s", optarg);
            data_given = true;
            break;
        case O_SELF:
            trace_self = true;
            break;
        case O_OTLPLISTEN:
        case O_ZIPKINLISTEN:
            if (!sn_cli_listen_ok(optarg, why, sizeof(why))) {
                fprintf(stderr, "sonde serve: --%s %s: %s\n",
                        c == O_OTLPLISTEN ? "otlp-listen" : "zipkin-listen", optarg, why);
                return SN_EXIT_USAGE;
            }
            if (c == O_OTLPLISTEN)
                so.otlp_listen = optarg;
            else
                so.zipkin_listen = optarg;
            break;
        case O_LIVELISTEN:
            if (sn_cli_live_addr(optarg, live_addr, sizeof(live_addr), &so.live_port, why,
                                 sizeof(why)) < 0) {
                fprintf(stderr, "sonde serve: --live-listen %s: %s\n", optarg, why);
                return SN_EXIT_USAGE;
            }
            so.live_addr = live_addr;
            break;
        case O_LIVEPERIOD: {
            char *end;
            long ms = strtol(optarg, &end, 10);
            if (end == optarg || *end || ms < 10 || ms > 60000) {
                fprintf(stderr, "sonde serve: --live-period wants milliseconds, 10-60000\n");
                return SN_EXIT_USAGE;
            }
            so.live_period_ms = (uint32_t)ms;
            break;
        }
        case O_TRACERET: {
            int64_t secs;
            if (sn_duration_parse(optarg, &secs) < 0 || secs < 60) {
                fprintf(stderr, "sonde serve: --trace-retention wants a duration of a minute "
                                "at least (30m, 12h, 7d)\n");
                return SN_EXIT_USAGE;
            }
            so.trace_retention = secs;
            break;
        }
        case O_TRACEQUEUE: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 65536) {
                fprintf(stderr, "sonde serve: --trace-queue wants an integer from 1 to 65536\n");
                return SN_EXIT_USAGE;
            }
            so.trace_queue = (uint32_t)v;
            break;
        }
        case O_TIERS:
            if (sn_tiers_parse(optarg, &so.tiers, why, sizeof(why)) < 0) {
                fprintf(stderr, "sonde serve: --tiers: %s\n", why);
                return SN_EXIT_USAGE;
            }
            break;
        case O_STOREMAX:
        case O_TRACEMAX:
        case O_ROLLUPKEYS: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            int shift = c == O_ROLLUPKEYS || !*end ? 0
                        : strchr("kK", *end)       ? 10
                        : strchr("mM", *end)       ? 20
                        : strchr("gG", *end)       ? 30
                        : strchr("tT", *end)       ? 40
                                                   : -1;
            if (shift > 0 && !end[1])
                end++;
            if (end == optarg || *end || errno || optarg[0] == '-' || shift < 0 || v == 0 ||
                v > (c == O_ROLLUPKEYS ? 1000000ull : (1ull << 50) >> shift)) {
                fprintf(stderr, "sonde serve: --%s wants %s\n",
                        c == O_ROLLUPKEYS ? "rollup-keys"
                        : c == O_TRACEMAX ? "trace-max-bytes"
                                          : "store-max-bytes",
                        c == O_ROLLUPKEYS ? "an integer from 1 to 1000000"
                                          : "a size in bytes (K, M, G, T suffixes), at least 1");
                return SN_EXIT_USAGE;
            }
            if (c == O_ROLLUPKEYS)
                so.rollup_keys = (uint32_t)v;
            else if (c == O_TRACEMAX)
                so.trace_max_bytes = (uint64_t)v << shift;
            else
                so.store_max_bytes = (uint64_t)v << shift;
            break;
        }
        case O_TENANTS:
            tenants = optarg;
            break;
        case O_UIDIR:
            snprintf(uidir, sizeof(uidir), "%s", optarg);
            break;
        case O_NOAGENT:
            agent = false;
            break;
        case O_THREADS:
        case O_KEYCAP: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > (c == O_THREADS ? 64 : 100000)) {
                fprintf(stderr, "sonde serve: --%s wants a positive integer\n",
                        c == O_THREADS ? "threads" : "key-cap");
                return SN_EXIT_USAGE;
            }
            if (c == O_THREADS)
                threads = v;
            else
                cap = v;
            break;
        }
        case O_MAXCONN:
        case O_MAXCONNIP:
        case O_HDRTIME:
        case O_BODYTIME:
        case O_BODYMEM: {
            uint64_t v;
            if (!limit_arg(c - O_MAXCONN, optarg, &v)) {
                return SN_EXIT_USAGE;
            }
            if (c == O_MAXCONN)
                ho.max_conns = (unsigned)v;
            else if (c == O_MAXCONNIP)
                ho.max_conns_per_ip = (unsigned)v;
            else if (c == O_HDRTIME)
                ho.header_timeout_s = (unsigned)v;
            else if (c == O_BODYTIME)
                ho.body_timeout_s = (unsigned)v;
            else
                ho.max_body_memory = (size_t)v;
            break;
        }
        case 'h':
            printf(usage, sn_link_usage);
            return SN_EXIT_OK;
        default:
            fputs("run 'sonde serve --help' for usage\n", stderr);
            return SN_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sonde serve: unexpected argument '%s'\n", argv[optind]);
        return SN_EXIT_USAGE;
    }
    if ((link.urls || node_id || zone) && sn_link_opts_check(&link, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde serve: %s\n", why);
        sn_link_opts_fini(&link);
        return SN_EXIT_USAGE;
    }
    if (link.urls) {
        so.nats = &link;
        so.node_id = node_id;
        so.zone = zone;
        so.advertise = advertise;
        agent = false; /* in a fleet, `sonde agent --nats` instruments every host */
    }
    if (!sn_cli_listen_ok(listen, why, sizeof(why))) {
        fprintf(stderr, "sonde serve: --listen %s: %s\n", listen, why);
        return SN_EXIT_USAGE;
    }
    if (tenants && sn_tenants_load(tenants, &so.tenants, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde serve: tenants file: %s\n", why);
        return SN_EXIT_USAGE;
    }
    if (data_given && (rc = make_datadir(datadir, why, sizeof(why))) != 0) {
        fprintf(stderr, "sonde serve: --data %s: %s\n", datadir, why);
        sn_tenants_free(so.tenants);
        return rc;
    }
    snprintf(path, sizeof(path), "%s/data", datadir);
    if ((rc = mkdirs(path)) < 0) {
        fprintf(stderr, "sonde serve: cannot create %s: %s\n", path, strerror(-rc));
        sn_tenants_free(so.tenants);
        return SN_EXIT_FAILURE;
    }
    so.datadir = datadir;
    so.uidir = uidir;
    so.key_cap = (uint32_t)cap;
    so.agent = agent;
    so.trace_self = trace_self;
    ho.listen = listen;
    ho.threads = (int)threads;
    so.http = ho;

    /* signals go to this thread only: block them before any other thread exists */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1); /* a state dump to the log */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = sn_server_open(&so, &s); /* the tenants are the server's from here on */
    if (rc == -EADDRINUSE) {
        fprintf(stderr, "sonde serve: cannot listen on %s\n", listen);
        return SN_EXIT_FAILURE;
    }
    if (rc == -ENOMEM) {
        fprintf(stderr, "sonde serve: out of memory\n");
        return SN_EXIT_FAILURE;
    }
    if (rc == -ENOTCONN) {
        fprintf(stderr, "sonde serve: cannot join the fleet (see the log above)\n");
        sn_link_opts_fini(&link);
        return SN_EXIT_FAILURE;
    }
    if (rc < 0) {
        fprintf(stderr, "sonde serve: %s/instrumentations.json is unreadable; move it aside\n",
                datadir);
        sn_link_opts_fini(&link);
        return SN_EXIT_FAILURE;
    }
    {
        char host[256];
        const char *colon = strrchr(listen, ':');
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
        if (!host[0])
            snprintf(host, sizeof(host), "127.0.0.1");
        printf("sonde: serving on http://%s:%d/\n", host, sn_server_port(s));
        fflush(stdout);
    }
    sn_server_run(s, &sigs);
    sn_log(SN_LOG_INFO, "serve", "stopping");
    /* what was acknowledged and is not on disk would be lost: say so, and exit non-zero */
    if (sn_server_close(s) < 0) {
        sn_log(SN_LOG_ERROR, "serve",
               "the final save failed (see above): persisted data or definitions are lost; "
               "exiting with status %d",
               SN_EXIT_FAILURE);
        sn_link_opts_fini(&link);
        return SN_EXIT_FAILURE;
    }
    sn_link_opts_fini(&link);
    return SN_EXIT_OK;
}
