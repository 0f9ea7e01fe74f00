/*
 * `sonde serve`: the local agent, the aggregator and the Cloud Analytics API in one process
 * (serve/server.h). The main thread handles signals and runs the once-a-second tick (expiry,
 * idle reaping, persisted data every minute); libmicrohttpd's threads serve the API; the
 * collector's thread runs the agent.
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

#include "api/api.h"
#include "cli/cli.h"
#include "core/log.h"
#include "http/server.h"
#include "serve/collector.h"
#include "serve/server.h"
#include "serve/transform.h"

static const char usage[] =
    "usage: sonde serve [--listen HOST:PORT] [--data DIR] [--tenants FILE] [--no-agent]\n"
    "                   [--threads N] [--key-cap N] [--ui-dir DIR] [--trace-self]\n"
    "\n"
    "Runs the agent, the aggregator and the Cloud Analytics HTTP API in one process\n"
    "(docs/api.md), and the web UI at / (docs/ui.md). Prints its URL on the first line of standard "
    "output. Stops cleanly on\n"
    "SIGINT or SIGTERM, saving persisted data.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT  where to serve (default 127.0.0.1:23181; port 0 picks a free one;\n"
    "                      \":PORT\" listens on every address)\n"
    "  --data DIR          state directory: instrumentation definitions and persisted data\n"
    "                      (default /var/lib/sonde as root, else ~/.local/share/sonde); DIR\n"
    "                      is created (mode 0700) when its parent exists\n"
    "  --tenants FILE      tokens and tenants (docs/api.md); without it only loopback clients\n"
    "                      are served and there are no tenant scopes\n"
    "  --no-agent          do not instrument this host: data comes only from ingest\n"
    "  --threads N         HTTP worker threads (default 4)\n"
    "  --key-cap N         distinct keys per instrumentation per second (default 1000)\n"
    "  --trace-self        let the local agent count this process's own events (its API\n"
    "                      threads and its collection); by default the kernel leaves them out\n"
    "  --ui-dir DIR        serve the web UI's files from DIR (a checkout's ui/) instead of\n"
    "                      the copy compiled in: edit, reload, no rebuild\n"
    "  -h, --help          this help\n"
    "\n"
    "Without root (or BPF), the local agent cannot load: the server says so and serves data\n"
    "from ingest only.\n"
    "\n"
    "exit codes: 0 stopped by a signal, 1 runtime error (cannot listen, a data directory that\n"
    "cannot be created or read, a final save at the stop that failed), 2 usage error (unknown\n"
    "option, bad value such as --listen without a port, --data whose parent directory does not\n"
    "exist) or bad tenants file\n";

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

/* Is s "HOST:PORT", "[V6]:PORT" or ":PORT" with a numeric address or localhost and a port
 * 0-65535 (what the HTTP server accepts)? Else says why in why. */
static bool listen_ok(const char *s, char *why, size_t whylen)
{
    char host[256], buf[16];
    const char *colon;
    char *end;
    long port;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host)) {
            snprintf(why, whylen, "want [IPV6]:PORT");
            return false;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(why, whylen, "no port: want HOST:PORT, e.g. %s:23181", s);
            return false;
        }
        if ((size_t)(colon - s) >= sizeof(host)) {
            snprintf(why, whylen, "host too long");
            return false;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    }
    port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535) {
        snprintf(why, whylen, "bad port '%s' (want 0-65535; 0 picks a free one)", colon + 1);
        return false;
    }
    if (!host[0] || strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, buf) == 1 ||
        inet_pton(AF_INET6, host, buf) == 1)
        return true;
    snprintf(why, whylen, "host '%s' is not an IPv4 or IPv6 address or localhost", host);
    return false;
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
    enum { O_LISTEN = 256, O_DATA, O_TENANTS, O_NOAGENT, O_THREADS, O_KEYCAP, O_UIDIR, O_SELF };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"data", required_argument, NULL, O_DATA},
        {"tenants", required_argument, NULL, O_TENANTS},
        {"no-agent", no_argument, NULL, O_NOAGENT},
        {"threads", required_argument, NULL, O_THREADS},
        {"key-cap", required_argument, NULL, O_KEYCAP},
        {"ui-dir", required_argument, NULL, O_UIDIR},
        {"trace-self", no_argument, NULL, O_SELF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:23181", *tenants = NULL;
    bool agent = true, trace_self = false, data_given = false;
    long threads = 4, cap = SN_DEFAULT_KEY_CAP;
    struct sn_server *s;
    char why[512], path[600];
    int c, rc;

    s = calloc(1, sizeof(*s));
    if (!s)
        return SN_EXIT_FAILURE;
    default_datadir(s->datadir, sizeof(s->datadir));
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            listen = optarg;
            break;
        case O_DATA:
            if (!optarg[0] || strlen(optarg) >= sizeof(s->datadir) - 8) {
                fprintf(stderr, "sonde serve: --data wants a directory\n");
                free(s);
                return SN_EXIT_USAGE;
            }
            snprintf(s->datadir, sizeof(s->datadir), "%s", optarg);
            data_given = true;
            break;
        case O_SELF:
            trace_self = true;
            break;
        case O_TENANTS:
            tenants = optarg;
            break;
        case O_UIDIR:
            snprintf(s->uidir, sizeof(s->uidir), "%s", optarg);
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
                free(s);
                return SN_EXIT_USAGE;
            }
            if (c == O_THREADS)
                threads = v;
            else
                cap = v;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            free(s);
            return SN_EXIT_OK;
        default:
            fputs("run 'sonde serve --help' for usage\n", stderr);
            free(s);
            return SN_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sonde serve: unexpected argument '%s'\n", argv[optind]);
        free(s);
        return SN_EXIT_USAGE;
    }
    if (!listen_ok(listen, why, sizeof(why))) {
        fprintf(stderr, "sonde serve: --listen %s: %s\n", listen, why);
        free(s);
        return SN_EXIT_USAGE;
    }
    if (tenants && sn_tenants_load(tenants, &s->tenants, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde serve: tenants file: %s\n", why);
        free(s);
        return SN_EXIT_USAGE;
    }
    if (data_given && (rc = make_datadir(s->datadir, why, sizeof(why))) != 0) {
        fprintf(stderr, "sonde serve: --data %s: %s\n", s->datadir, why);
        sn_tenants_free(s->tenants);
        free(s);
        return rc;
    }
    snprintf(path, sizeof(path), "%s/data", s->datadir);
    if ((rc = mkdirs(path)) < 0) {
        fprintf(stderr, "sonde serve: cannot create %s: %s\n", path, strerror(-rc));
        sn_tenants_free(s->tenants);
        free(s);
        return SN_EXIT_FAILURE;
    }
    if (gethostname(s->host, sizeof(s->host)) != 0)
        snprintf(s->host, sizeof(s->host), "localhost");
    s->host[sizeof(s->host) - 1] = '\0';
    /* frames (writers) must not wait behind a stream of heatmap readers */
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &la);
    pthread_rwlockattr_destroy(&la);
    s->next_ids = json_object();
    s->started = sn_now();

    /* signals go to this thread only: block them before any other thread exists */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sn_server_load_defs(s) < 0) {
        fprintf(stderr, "sonde serve: %s/instrumentations.json is unreadable; move it aside\n",
                s->datadir);
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    if (agent) {
        rc = sn_collector_start(s, (uint32_t)cap, trace_self, &s->collector);
        if (rc < 0) {
            sn_log(SN_LOG_WARN, "serve",
                   "the local agent cannot load BPF programs (%s; needs root and a kernel with "
                   "BTF): serving ingested data only",
                   strerror(-rc));
            s->collector = NULL;
        }
    }
    sn_server_start_local_all(s);
    s->xforms = sn_xforms_start();
    struct sn_http_opts ho = {.listen = listen,
                              .threads = (int)threads,
                              .handler = sn_api_handle,
                              .limit = sn_api_limit,
                              .ctx = s};
    if (sn_http_start(&ho, &s->http) < 0) {
        fprintf(stderr, "sonde serve: cannot listen on %s\n", listen);
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    {
        char host[256];
        const char *colon = strrchr(listen, ':');
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
        if (!host[0])
            snprintf(host, sizeof(host), "127.0.0.1");
        printf("sonde: serving on http://%s:%d/\n", host, sn_http_port(s->http));
        fflush(stdout);
    }
    sn_log(SN_LOG_INFO, "serve", "data in %s; local agent %s; %s", s->datadir,
           s->collector ? "on" : "off", s->tenants ? "tenants configured" : "loopback only");

    int64_t last_save = sn_now();
    for (;;) {
        struct timespec one = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &one);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        int64_t now = sn_now();
        bool save = now - last_save >= 60;
        if (save)
            last_save = now;
        sn_server_tick(s, now, save);
    }
    sn_log(SN_LOG_INFO, "serve", "stopping");
    rc = SN_EXIT_OK;
out:
    sn_http_stop(s->http);
    s->http = NULL;
    sn_collector_stop(s->collector);
    s->collector = NULL;
    sn_xforms_stop(s->xforms);
    /* what was acknowledged and is not on disk would be lost: say so, and exit non-zero */
    if (sn_server_save_final(s) < 0) {
        sn_log(SN_LOG_ERROR, "serve",
               "the final save failed (see above): persisted data or definitions are lost; "
               "exiting with status %d",
               SN_EXIT_FAILURE);
        rc = SN_EXIT_FAILURE;
    }
    for (size_t i = 0; i < s->n; i++)
        sn_instn_free(s->insts[i]);
    free(s->insts);
    json_decref(s->next_ids);
    sn_tenants_free(s->tenants);
    pthread_rwlock_destroy(&s->lock);
    free(s);
    return rc;
}
