/*
 * `sonde ctl`: the fleet's operator tools, as Cloud Analytics had cactl and amqpsnoop.
 *
 *   sonde ctl status --nats URL [--json]   every node and agent the members bucket holds:
 *                                          version, zone, what it owns or runs, its last
 *                                          frame, lag, buffered and dropped frames, pending
 *   sonde ctl snoop --nats URL [--subject S] [--instrumentation ID] [--host H] [--seconds N]
 *                                          tails the bus: frames decoded, one line each, and
 *                                          changes of the definitions
 *
 * Both read only what the fleet publishes (fleet/names.h); neither changes anything.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "fleet/link.h"
#include "fleet/names.h"
#include "wire/frame.h"

static const char usage[] =
    "usage: sonde ctl status --nats URL[,URL...] [--json] [NATS options]\n"
    "       sonde ctl snoop --nats URL[,URL...] [--subject S] [--instrumentation ID]\n"
    "                       [--host H] [--seconds N] [NATS options]\n"
    "\n"
    "The fleet's operator tools (docs/fleet.md). status lists every node and agent with its\n"
    "version, zone, what it owns or runs, its last frame, lag, buffered and dropped frames\n"
    "and its consumers' pending frames. snoop tails the bus: each frame decoded on one line\n"
    "(time, host, instrumentation, arity, total, keys), and each change of a definition.\n"
    "\n"
    "options:\n"
    "  --nats URL[,URL...]   the NATS servers\n"
    "  --json                status: the members' heartbeats as one JSON object\n"
    "  --subject S           snoop: a NATS subject (wildcards allowed) instead of every\n"
    "                        frame and definition\n"
    "  --instrumentation ID  snoop: the frames of one instrumentation (\"7\", \"acme/7\")\n"
    "  --host H              snoop: the frames of one host\n"
    "  --seconds N           snoop: stop after N seconds (default: until SIGINT)\n"
    "%s"
    "  -h, --help            this help\n"
    "\n"
    "exit codes: 0 ok, 1 the bus cannot be reached, 2 usage error\n";

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- status ------------------------------------------------------------------------------ */

static json_t *read_members(struct sn_link *l)
{
    kvStore *kv = NULL;
    kvKeysList keys = {0};
    json_t *nodes = json_array(), *agents = json_array();

    js_KeyValue(&kv, sn_link_js(l), SN_FLEET_KV_MEMBERS); /* none yet: an empty fleet */
    if (kv && kvStore_Keys(&keys, kv, NULL) == NATS_OK) {
        for (int i = 0; i < keys.Count; i++) {
            kvEntry *e = NULL;
            char kind, name[SN_FLEET_HOST_MAX + 1];
            if (sn_fleet_parse_member_key(keys.Keys[i], &kind, name, sizeof(name)) < 0 ||
                kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
                continue;
            json_t *v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
            if (json_is_object(v)) {
                int64_t age = unix_ms() - kvEntry_Created(e) / 1000000;
                json_object_set_new(v, "heard_ms_ago", json_integer(age));
                json_array_append(kind == 'n' ? nodes : agents, v);
            }
            json_decref(v);
            kvEntry_Destroy(e);
        }
        kvKeysList_Destroy(&keys);
    }
    kvStore_Destroy(kv);
    return json_pack("{s:o,s:o}", "nodes", nodes, "agents", agents);
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && s[0] ? s : "-";
}

static long long num(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_status(const json_t *st)
{
    size_t i;
    json_t *v;

    printf("%-24s %-8s %-10s %6s %9s %12s %s\n", "NODE", "ZONE", "VERSION", "HEARD", "FRAMES",
           "PENDING", "OWNS");
    json_array_foreach(json_object_get(st, "nodes"), i, v)
    {
        json_t *owned = json_object_get(v, "owned"), *o;
        size_t j;
        char list[512] = "";
        size_t at = 0;
        long long pending = 0;
        json_array_foreach(owned, j, o)
        {
            const char *k = json_is_string(o) ? json_string_value(o) : str(o, "key");
            pending += json_is_object(o) ? num(o, "pending") : 0;
            if (at < sizeof(list))
                at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", j ? "," : "", k);
        }
        printf("%-24s %-8s %-10s %5llds %9lld %12lld %s\n", str(v, "id"), str(v, "zone"),
               str(v, "version"), num(v, "heard_ms_ago") / 1000, num(v, "frames"), pending,
               list[0] ? list : "-");
    }
    printf("\n%-24s %-8s %-10s %6s %-8s %10s %9s %9s %s\n", "AGENT", "ZONE", "VERSION", "HEARD",
           "LAST", "SENT", "BUFFERED", "DROPPED", "RUNS");
    json_array_foreach(json_object_get(st, "agents"), i, v)
    {
        const char *key;
        json_t *r;
        char list[512] = "", last[32] = "-";
        size_t at = 0;
        json_object_foreach(json_object_get(v, "running"), key, r)
        {
            long long rc = num(r, "rc");
            if (at < sizeof(list))
                at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s%s", at ? "," : "", key,
                                       rc ? "(!)" : "");
        }
        long long lf = num(v, "last_frame");
        if (lf > 0)
            snprintf(last, sizeof(last), "%llds", (long long)(unix_ms() / 1000) - lf);
        printf("%-24s %-8s %-10s %5llds %-8s %10lld %9lld %9lld %s\n", str(v, "host"),
               str(v, "zone"), str(v, "version"), num(v, "heard_ms_ago") / 1000, last,
               num(v, "sent"), num(v, "buffered"), num(v, "dropped"), list[0] ? list : "-");
    }
}

/* ---- snoop ------------------------------------------------------------------------------- */

static void print_frame(const char *subject, const void *data, int len)
{
    struct sn_wire_frame f;
    char inst[SN_FLEET_SUBJECT_MAX], host[SN_FLEET_HOST_MAX + 1];

    if (sn_fleet_parse_frame_subject(subject, inst, sizeof(inst), host, sizeof(host)) < 0) {
        printf("%s: %d bytes (not a frame subject)\n", subject, len);
        return;
    }
    if (sn_wire_frame_decode(data, (size_t)(len < 0 ? 0 : len), &f) < 0) {
        printf("frame %s %s: %d bytes that do not decode\n", host, inst, len);
        return;
    }
    static const char *arity[] = {"scalar", "discrete", "numeric", "numeric-by-key"};
    printf("frame t=%" PRId64 " host=%s inst=%s %s total=%" PRIu64 " keys=%zu", f.t, f.host, f.id,
           f.arity < 4 ? arity[f.arity] : "?", f.total, f.n);
    if (f.over_cap)
        printf(" over_cap=%" PRIu64, f.over_cap);
    if (f.map_full)
        printf(" map_full=%" PRIu64, f.map_full);
    if (strcmp(f.host, host) != 0 || strcmp(f.id, inst) != 0)
        printf(" (subject says %s %s)", host, inst);
    printf("\n");
    sn_wire_frame_fini(&f);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    const char *subj = natsMsg_GetSubject(m);
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    (void)nc;
    (void)sub;
    (void)arg;

    if (strncmp(subj, SN_FLEET_FRAMES_PREFIX, strlen(SN_FLEET_FRAMES_PREFIX)) == 0) {
        print_frame(subj, data, len);
    } else if (strncmp(subj, "$KV." SN_FLEET_KV_DEFS ".", strlen("$KV." SN_FLEET_KV_DEFS ".")) ==
               0) {
        const char *op = NULL;
        const char *key = subj + strlen("$KV." SN_FLEET_KV_DEFS ".");
        natsMsgHeader_Get(m, "KV-Operation", &op);
        printf("definition %s %s%s%.*s\n", op ? op : "PUT", key, len ? " " : "",
               len > 400 ? 400 : len, data ? data : "");
    } else {
        printf("%s: %.*s\n", subj, len > 400 ? 400 : len, data ? data : "");
    }
    fflush(stdout);
    natsMsg_Destroy(m);
}

static int snoop(struct sn_link *l, const char *subject, const char *inst, const char *host,
                 long seconds)
{
    char subj[3][SN_FLEET_SUBJECT_MAX + 32], tok[SN_FLEET_SUBJECT_MAX / 2];
    natsSubscription *subs[3] = {0};
    int n = 0;

    if (subject) {
        snprintf(subj[n++], sizeof(subj[0]), "%s", subject);
    } else {
        if (inst && sn_fleet_inst_token(inst, tok, sizeof(tok)) < 0) {
            fprintf(stderr, "sonde ctl snoop: --instrumentation %s: not an instrumentation id\n",
                    inst);
            return SN_EXIT_USAGE;
        }
        if (host && !sn_fleet_host_valid(host)) {
            fprintf(stderr, "sonde ctl snoop: --host %s: not a host name\n", host);
            return SN_EXIT_USAGE;
        }
        snprintf(subj[n++], sizeof(subj[0]), "%s%s.%s", SN_FLEET_FRAMES_PREFIX, inst ? tok : "*",
                 host ? host : ">");
        if (!host)
            snprintf(subj[n++], sizeof(subj[0]), "$KV.%s.%s%s", SN_FLEET_KV_DEFS,
                     inst ? "inst." : ">", inst ? tok : "");
    }
    for (int i = 0; i < n; i++)
        if (natsConnection_Subscribe(&subs[i], sn_link_conn(l), subj[i], on_msg, NULL) != NATS_OK) {
            fprintf(stderr, "sonde ctl snoop: cannot subscribe to %s\n", subj[i]);
            for (int j = 0; j < i; j++)
                natsSubscription_Destroy(subs[j]);
            return SN_EXIT_FAILURE;
        }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int64_t end = seconds > 0 ? unix_ms() + seconds * 1000 : 0;
    for (;;) {
        struct timespec t = {0, 200 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &t);
        if (sig == SIGINT || sig == SIGTERM || (end && unix_ms() >= end))
            break;
    }
    for (int i = 0; i < n; i++) {
        natsSubscription_Unsubscribe(subs[i]);
        natsSubscription_Destroy(subs[i]);
    }
    return SN_EXIT_OK;
}

int sn_cmd_ctl(int argc, char **argv)
{
    enum { O_JSON = 256, O_SUBJECT, O_INST, O_HOST, O_SECONDS, O_LINK };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"instrumentation", required_argument, NULL, O_INST},
        {"host", required_argument, NULL, O_HOST},
        {"seconds", required_argument, NULL, O_SECONDS},
        SN_LINK_LONGOPTS(O_LINK),
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct sn_link_opts lo = {0};
    const char *subject = NULL, *inst = NULL, *host = NULL, *verb;
    bool json = false;
    long seconds = 0;
    char why[512];
    int c, li = 0, rc;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        printf(usage, sn_link_usage);
        return argc < 2 ? SN_EXIT_USAGE : SN_EXIT_OK;
    }
    verb = argv[1];
    if (strcmp(verb, "status") != 0 && strcmp(verb, "snoop") != 0) {
        fprintf(stderr, "sonde ctl: unknown command '%s' (status, snoop)\n", verb);
        return SN_EXIT_USAGE;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "+h", longopts, &li)) != -1) {
        switch (c) {
        case O_JSON:
            json = true;
            break;
        case O_SUBJECT:
            subject = optarg;
            break;
        case O_INST:
            inst = optarg;
            break;
        case O_HOST:
            host = optarg;
            break;
        case O_SECONDS: {
            char *end;
            seconds = strtol(optarg, &end, 10);
            if (*end || seconds < 1 || seconds > 86400 * 365) {
                fprintf(stderr, "sonde ctl: --seconds wants 1 to 31536000\n");
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            break;
        }
        case O_LINK:
            if (sn_link_cli_opt(&lo, "sonde ctl", longopts[li].name, optarg) != 1) {
                sn_link_opts_fini(&lo);
                return SN_EXIT_USAGE;
            }
            break;
        case 'h':
            printf(usage, sn_link_usage);
            sn_link_opts_fini(&lo);
            return SN_EXIT_OK;
        default:
            fprintf(stderr, "sonde ctl: unknown option or missing value: %s\n",
                    argv[optind] ? argv[optind] : "?");
            sn_link_opts_fini(&lo);
            return SN_EXIT_USAGE;
        }
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "sonde ctl: unexpected argument '%s'\n", argv[optind + 1]);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    if (sn_link_opts_check(&lo, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde ctl: %s\n", why);
        sn_link_opts_fini(&lo);
        return SN_EXIT_USAGE;
    }
    if (!lo.name && !(lo.name = strdup("sonde-ctl"))) {
        sn_link_opts_fini(&lo);
        return SN_EXIT_FAILURE;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before cnats's threads exist */
    struct sn_link *l = NULL;
    if (sn_link_open(&lo, NULL, 5000, &l, why, sizeof(why)) < 0) {
        fprintf(stderr, "sonde ctl: %s\n", why);
        sn_link_close(l);
        sn_link_opts_fini(&lo);
        return SN_EXIT_FAILURE;
    }
    if (strcmp(verb, "status") == 0) {
        json_t *st = read_members(l);
        if (json) {
            json_dumpf(st, stdout, JSON_INDENT(2));
            printf("\n");
        } else {
            print_status(st);
        }
        json_decref(st);
        rc = SN_EXIT_OK;
    } else {
        rc = snoop(l, subject, inst, host, seconds);
    }
    sn_link_close(l);
    sn_link_opts_fini(&lo);
    return rc;
}
