/*
 * The link to NATS (fleet/link.h): the shared options of the fleet commands, one cnats
 * connection that reconnects forever, and what the fleet needs on JetStream (the frames stream
 * and the two key-value buckets), created when missing.
 *
 * Why it is built this way:
 * - cnats delivers the connection's callbacks (disconnected, reconnected, connected, closed) in
 *   order on its own thread. The closed callback is the last one, so sn_link_close() waits for
 *   it (bounded) before freeing the link the callbacks point to.
 * - A first connect with a timeout is a loop of plain connects (each tries every server once),
 *   so that an authentication or TLS refusal is told at once (-EACCES) instead of retried;
 *   timeout < 0 hands the retrying to cnats (retry on failed connect) and returns at once.
 * - ensure() tells "JetStream has no leader yet" (a cluster just started, a server restarting:
 *   no responders, timeouts, "temporarily unavailable", "no suitable peers") from real
 *   refusals, and retries only the former, until its deadline.
 * - Nodes and agents may run ensure() at the same moment: a create that loses the race
 *   ("already in use") binds to what the winner created.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fleet/link.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "fleet/names.h"

#define NS_PER_S           1000000000LL
#define DEFAULT_KEEP_S     (2 * 86400) /* the frames stream keeps 2 days */
#define DEFAULT_DEDUP_S    180         /* the agent's 120 s buffer + 60 s */
#define MAX_REPLICAS       5           /* JetStream's limit */
#define MAX_URLS           64
#define RECONNECT_WAIT_MS  250
#define RECONNECT_BUF      (8 * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 2000 /* one TCP + handshake attempt at one server */
#define PING_INTERVAL_MS   5000 /* a silent server is dropped after 3 pings unanswered */
#define MAX_PINGS_OUT      3
#define RETRY_GAP_MS       250 /* between attempts of open and ensure */
#define FLUSH_MS           2000
#define CLOSE_WAIT_MS      5000 /* for cnats's closed callback */
#define JS_API_WAIT_MS     2000 /* one JetStream API request of ensure (then it asks again) */
#define DEFS_HISTORY       5
#define MEMBERS_TTL_S      30

const char sn_link_usage[] =
    "  --nats URL[,URL...]     NATS servers (nats://HOST:PORT, tls://HOST:PORT)\n"
    "  --nats-user USER        with --nats-password PASS: user and password\n"
    "  --nats-password PASS\n"
    "  --nats-token TOKEN      a token instead\n"
    "  --nats-creds FILE       a .creds file (user JWT and nkey seed) instead\n"
    "  --nats-nkey FILE        an nkey instead: FILE holds the seed (SU...) and the public\n"
    "                          key (U...), as `nk -gen user -pubout` writes them\n"
    "  --nats-tls-ca FILE      TLS, trusting the CA in FILE (PEM)\n"
    "  --nats-tls-cert FILE    with --nats-tls-key FILE: a client certificate (PEM)\n"
    "  --nats-tls-key FILE\n"
    "  --nats-replicas N       replicas of the stream and buckets created (1-5; default: the\n"
    "                          cluster's servers, at most 3)\n";

struct sn_link {
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    kvStore *defs, *members;
    struct sn_link_events ev;
    int replicas_opt, replicas;
    bool tls, tls_cert; /* TLS is used; with a client certificate */
    int64_t keep_ns, dedup_ns;

    pthread_mutex_t mu; /* the fields below */
    pthread_cond_t cond;
    uint64_t disconnects, reconnects;
    int64_t down_since_ms;
    bool closing, closed;
};

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...)
{
    if (!why || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

int sn_link_err(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_TIMEOUT:
        return -ETIMEDOUT;
    case NATS_NOT_FOUND:
        return -ENOENT;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
        return -ENOTCONN;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* ---- options ------------------------------------------------------------------------------- */

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || *s == 0x7f)
            return false;
    return true;
}

/* Each comma-separated URL: non-empty, no blanks or control characters, and a scheme (when
 * given) that cnats speaks: nats or tls. */
static int check_urls(const char *v, char *why, size_t len)
{
    int count = 0;
    const char *p = v;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0) {
            say(why, len, "--nats: an empty URL in \"%s\"", v);
            return -EINVAL;
        }
        if (++count > MAX_URLS) {
            say(why, len, "--nats: more than %d URLs", MAX_URLS);
            return -EINVAL;
        }
        const char *sep = memmem(p, n, "://", 3);
        if (sep && !((sep - p == 4 && strncmp(p, "nats", 4) == 0) ||
                     (sep - p == 3 && strncmp(p, "tls", 3) == 0))) {
            say(why, len, "--nats: \"%.*s\": the scheme must be nats:// or tls://", (int)n, p);
            return -EINVAL;
        }
        if (n <= (sep ? (size_t)(sep - p) + 3 : 0)) {
            say(why, len, "--nats: \"%.*s\": no host", (int)n, p);
            return -EINVAL;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

static int set_str(char **slot, const char *v)
{
    char *c = strdup(v);
    if (!c)
        return -ENOMEM;
    free(*slot);
    *slot = c;
    return 1;
}

int sn_link_opt(struct sn_link_opts *o, const char *name, const char *value, char *why,
                size_t whylen)
{
    static const struct {
        const char *name;
        size_t off;
        char kind; /* u: URLs, s: a secret or name, f: a readable file, n: replicas */
    } table[] = {
        {"nats", offsetof(struct sn_link_opts, urls), 'u'},
        {"nats-user", offsetof(struct sn_link_opts, user), 's'},
        {"nats-password", offsetof(struct sn_link_opts, password), 's'},
        {"nats-token", offsetof(struct sn_link_opts, token), 's'},
        {"nats-creds", offsetof(struct sn_link_opts, creds), 'f'},
        {"nats-nkey", offsetof(struct sn_link_opts, nkey_seed), 'f'},
        {"nats-tls-ca", offsetof(struct sn_link_opts, tls_ca), 'f'},
        {"nats-tls-cert", offsetof(struct sn_link_opts, tls_cert), 'f'},
        {"nats-tls-key", offsetof(struct sn_link_opts, tls_key), 'f'},
        {"nats-replicas", 0, 'n'},
    };
    if (!o || !name)
        return -EINVAL;
    if (strncmp(name, "--", 2) == 0)
        name += 2;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(name, table[i].name) != 0)
            continue;
        if (!value || !value[0]) {
            say(why, whylen, "--%s: a value is needed", name);
            return -EINVAL;
        }
        switch (table[i].kind) {
        case 'u': {
            int rc = check_urls(value, why, whylen);
            if (rc)
                return rc;
            break;
        }
        case 's':
            if (!printable(value)) {
                say(why, whylen, "--%s: blanks and control characters are not allowed", name);
                return -EINVAL;
            }
            break;
        case 'f':
            if (access(value, R_OK) != 0) {
                say(why, whylen, "--%s %s: %s", name, value, strerror(errno));
                return -EINVAL;
            }
            break;
        case 'n': {
            char *end;
            errno = 0;
            long r = strtol(value, &end, 10);
            if (errno || *end || end == value || r < 1 || r > MAX_REPLICAS) {
                say(why, whylen, "--%s %s: a number of replicas from 1 to %d", name, value,
                    MAX_REPLICAS);
                return -EINVAL;
            }
            o->replicas = (int)r;
            return 1;
        }
        }
        return set_str((char **)((char *)o + table[i].off), value);
    }
    return 0;
}

int sn_link_cli_opt(struct sn_link_opts *o, const char *cmd, const char *name, const char *value)
{
    char why[512] = "";
    int rc = sn_link_opt(o, name, value, why, sizeof(why));
    if (rc > 0)
        return 1;
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", cmd, why[0] ? why : strerror(-rc));
    return rc;
}

int sn_link_opts_check(const struct sn_link_opts *o, char *why, size_t whylen)
{
    if (!o || !o->urls || !o->urls[0]) {
        say(why, whylen, "--nats URL[,URL...] is needed");
        return -EINVAL;
    }
    if (!!o->user != !!o->password) {
        say(why, whylen, "--nats-user and --nats-password go together");
        return -EINVAL;
    }
    int kinds = !!o->user + !!o->token + !!o->creds + !!o->nkey_seed;
    if (kinds > 1) {
        say(why, whylen,
            "one kind of NATS credentials only: --nats-user/--nats-password, --nats-token, "
            "--nats-creds or --nats-nkey");
        return -EINVAL;
    }
    if (!!o->tls_cert != !!o->tls_key) {
        say(why, whylen, "--nats-tls-cert and --nats-tls-key go together");
        return -EINVAL;
    }
    if (o->replicas < 0 || o->replicas > MAX_REPLICAS) {
        say(why, whylen, "--nats-replicas: from 1 to %d", MAX_REPLICAS);
        return -EINVAL;
    }
    if (o->frames_keep_s < 0 || o->dedup_s < 0 ||
        (o->frames_keep_s && o->dedup_s && o->dedup_s > o->frames_keep_s)) {
        say(why, whylen, "the frames' duplicate window must be shorter than their age");
        return -EINVAL;
    }
    return 0;
}

void sn_link_opts_fini(struct sn_link_opts *o)
{
    if (!o)
        return;
    free(o->urls);
    free(o->user);
    free(o->password);
    free(o->token);
    free(o->creds);
    free(o->nkey_seed);
    free(o->tls_ca);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->name);
    memset(o, 0, sizeof(*o));
}

/* ---- callbacks (cnats's thread) ------------------------------------------------------------ */

static void on_down(natsConnection *nc, void *arg)
{
    (void)nc;
    struct sn_link *l = arg;
    pthread_mutex_lock(&l->mu);
    bool tell = !l->closing;
    l->disconnects++;
    if (!l->down_since_ms)
        l->down_since_ms = sn_now_ms();
    pthread_mutex_unlock(&l->mu);
    if (tell && l->ev.down)
        l->ev.down(l->ev.arg);
}

static void on_up(natsConnection *nc, void *arg)
{
    (void)nc;
    struct sn_link *l = arg;
    pthread_mutex_lock(&l->mu);
    bool tell = !l->closing;
    l->reconnects++;
    l->down_since_ms = 0;
    pthread_mutex_unlock(&l->mu);
    if (tell && l->ev.up)
        l->ev.up(l->ev.arg);
}

/* The first connect of a link opened with timeout < 0 (not counted as a reconnect). */
static void on_connected(natsConnection *nc, void *arg)
{
    (void)nc;
    struct sn_link *l = arg;
    pthread_mutex_lock(&l->mu);
    bool tell = !l->closing;
    l->down_since_ms = 0;
    pthread_mutex_unlock(&l->mu);
    if (tell && l->ev.up)
        l->ev.up(l->ev.arg);
}

static void on_closed(natsConnection *nc, void *arg)
{
    (void)nc;
    struct sn_link *l = arg;
    pthread_mutex_lock(&l->mu);
    l->closed = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
}

/* ---- open ---------------------------------------------------------------------------------- */

/* The public key (a line starting with 'U') of an nkey file, into pub[len]: 0 or -EINVAL. */
static int nkey_public(const char *file, char *pub, size_t len, char *why, size_t whylen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        say(why, whylen, "--nats-nkey %s: %s", file, strerror(errno));
        return -EINVAL;
    }
    char line[256];
    int rc = -EINVAL, seed = 0;
    for (int k = 0; k < 64 && fgets(line, sizeof(line), f); k++) {
        size_t n = strcspn(line, " \t\r\n");
        line[n] = '\0';
        if (n >= 2 && line[0] == 'S' && line[1] == 'U')
            seed = 1;
        else if (n > 1 && n < len && line[0] == 'U') {
            memcpy(pub, line, n + 1);
            rc = 0;
        }
    }
    fclose(f);
    if (!seed || rc != 0)
        say(why, whylen, "--nats-nkey %s: %s", file,
            !seed ? "no user seed (a line SU...)"
                  : "no public key (a line U... after the seed, as `nk -gen user -pubout` writes)");
    return seed ? rc : -EINVAL;
}

/* What cnats said last on this thread (without its "(conn.c:1905): " origin), or the
 * status's text. */
static const char *nats_why(natsStatus s)
{
    natsStatus ls;
    const char *t = nats_GetLastError(&ls);
    if (!t || !t[0])
        return natsStatus_GetText(s);
    if (t[0] == '(') {
        const char *e = strstr(t, "): ");
        if (e && e - t < 64)
            t = e + 3;
    }
    return t;
}

static bool refused(natsStatus s)
{
    return s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED || s == NATS_SSL_ERROR;
}

static natsStatus build_opts(struct sn_link *l, const struct sn_link_opts *o, int timeout_ms,
                             char *why, size_t whylen)
{
    natsOptions *op = NULL;
    natsStatus s = natsOptions_Create(&op);
    if (s != NATS_OK)
        return s;
    l->opts = op;

    char *list = strdup(o->urls);
    const char *urls[MAX_URLS];
    int n = 0;
    if (!list)
        return NATS_NO_MEMORY;
    for (char *save = NULL, *u = strtok_r(list, ",", &save); u && n < MAX_URLS;
         u = strtok_r(NULL, ",", &save))
        urls[n++] = u;
    bool tls = o->tls_ca || o->tls_cert;
    for (int i = 0; i < n; i++)
        tls = tls || strncmp(urls[i], "tls://", 6) == 0;
    s = natsOptions_SetServers(op, urls, n);
    free(list);
    l->tls = tls;
    l->tls_cert = o->tls_cert != NULL;

    if (s == NATS_OK)
        s = natsOptions_SetName(op, o->name && o->name[0] ? o->name : "sonde");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(op, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(op, RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(op, RECONNECT_BUF);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(op, timeout_ms >= 0 && timeout_ms < CONNECT_TIMEOUT_MS
                                           ? (timeout_ms > 100 ? timeout_ms : 100)
                                           : CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(op, PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(op, MAX_PINGS_OUT);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(op, on_down, l);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(op, on_up, l);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(op, on_closed, l);
    if (s == NATS_OK && timeout_ms < 0)
        s = natsOptions_SetRetryOnFailedConnect(op, true, on_connected, l);
    if (s != NATS_OK) {
        say(why, whylen, "NATS options: %s", nats_why(s));
        return s;
    }

    if (o->user)
        s = natsOptions_SetUserInfo(op, o->user, o->password);
    else if (o->token)
        s = natsOptions_SetToken(op, o->token);
    else if (o->creds)
        s = natsOptions_SetUserCredentialsFromFiles(op, o->creds, NULL);
    else if (o->nkey_seed) {
        char pub[128];
        if (nkey_public(o->nkey_seed, pub, sizeof(pub), why, whylen) != 0)
            return NATS_INVALID_ARG;
        s = natsOptions_SetNKeyFromSeed(op, pub, o->nkey_seed);
    }
    if (s != NATS_OK) {
        say(why, whylen, "NATS credentials: %s", nats_why(s));
        return s;
    }

    if (tls) {
        s = natsOptions_SetSecure(op, true);
        if (s == NATS_OK && o->tls_ca) {
            s = natsOptions_LoadCATrustedCertificates(op, o->tls_ca);
            if (s != NATS_OK)
                say(why, whylen, "--nats-tls-ca %s: %s", o->tls_ca, nats_why(s));
        }
        if (s == NATS_OK && o->tls_cert) {
            s = natsOptions_LoadCertificatesChain(op, o->tls_cert, o->tls_key);
            if (s != NATS_OK)
                say(why, whylen, "--nats-tls-cert %s / --nats-tls-key %s: %s", o->tls_cert,
                    o->tls_key, nats_why(s));
        }
        if (s != NATS_OK && why && !why[0])
            say(why, whylen, "NATS TLS: %s", nats_why(s));
    }
    return s;
}

static int open_fail(struct sn_link *l, int rc)
{
    if (l->opts)
        natsOptions_Destroy(l->opts);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return rc;
}

int sn_link_open(const struct sn_link_opts *o, const struct sn_link_events *ev, int timeout_ms,
                 struct sn_link **out, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!out)
        return -EINVAL;
    *out = NULL;
    int rc = sn_link_opts_check(o, why, whylen);
    if (rc)
        return rc;
    if (nats_Open(-1) != NATS_OK) {
        say(why, whylen, "cannot start the NATS library: %s", nats_why(NATS_ERR));
        return -EIO;
    }
    struct sn_link *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    if (ev)
        l->ev = *ev;
    l->replicas_opt = o->replicas;
    l->keep_ns = (o->frames_keep_s ? o->frames_keep_s : DEFAULT_KEEP_S) * NS_PER_S;
    l->dedup_ns = (o->dedup_s ? o->dedup_s : DEFAULT_DEDUP_S) * NS_PER_S;
    if (l->dedup_ns > l->keep_ns)
        l->dedup_ns = l->keep_ns;

    natsStatus s = build_opts(l, o, timeout_ms, why, whylen);
    if (s != NATS_OK)
        return open_fail(l, s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL);

    int64_t deadline = sn_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (int k = 0;; k++) {
        s = natsConnection_Connect(&l->nc, l->opts);
        if (s == NATS_OK || s == NATS_NOT_YET_CONNECTED)
            break;
        if (refused(s)) {
            say(why, whylen, "NATS at %s refused this client: %s", o->urls, nats_why(s));
            return open_fail(l, -EACCES);
        }
        if (s == NATS_PROTOCOL_ERROR && l->tls && !l->tls_cert) {
            /* TLS 1.3: a server that wants a client certificate closes after the handshake */
            say(why, whylen,
                "NATS at %s refused this client: %s (the server closed the connection after "
                "the TLS handshake: does it require a client certificate, --nats-tls-cert?)",
                o->urls, nats_why(s));
            return open_fail(l, -EACCES);
        }
        if (s == NATS_NO_MEMORY)
            return open_fail(l, -ENOMEM);
        if (timeout_ms < 0 || sn_mono_ms() + RETRY_GAP_MS > deadline || k > 100000) {
            say(why, whylen, "no NATS server answered at %s: %s", o->urls, nats_why(s));
            return open_fail(l, -EHOSTUNREACH);
        }
        nats_Sleep(RETRY_GAP_MS);
    }
    if (s == NATS_NOT_YET_CONNECTED)
        l->down_since_ms = sn_now_ms();
    s = natsConnection_JetStream(&l->js, l->nc, NULL);
    if (s != NATS_OK) {
        say(why, whylen, "NATS JetStream context: %s", nats_why(s));
        sn_link_close(l);
        return s == NATS_NO_MEMORY ? -ENOMEM : -EIO;
    }
    *out = l;
    return 0;
}

/* ---- ensure -------------------------------------------------------------------------------- */

/* Whether a JetStream error means "not ready yet, ask again" (no meta leader, a server
 * restarting, the connection down) rather than a refusal. */
static bool transient(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
        s == NATS_NOT_YET_CONNECTED)
        return true;
    return jerr == JSClusterNotAvailErr || jerr == JSClusterNoPeersErr ||
           jerr == JSClusterNotLeaderErr || jerr == JSInsufficientResourcesErr;
}

/* The replicas by default: the servers the connection knows (given and discovered), at most 3. */
static int default_replicas(struct sn_link *l)
{
    char **servers = NULL;
    int count = 0;
    if (natsConnection_GetServers(l->nc, &servers, &count) != NATS_OK)
        return 1;
    for (int i = 0; i < count; i++)
        free(servers[i]);
    free(servers);
    return count < 1 ? 1 : count > 3 ? 3 : count;
}

/* A stream as the fleet wants it: created when missing (file storage, the link's replicas),
 * else kept as it is but for limits shorter than wanted, which are raised. */
struct want_stream {
    const char *name, *subject;
    int64_t max_age_ns, dedup_ns; /* 0: none asked */
    int64_t per_subject;          /* messages kept per subject (0: no limit) */
    int64_t max_bytes;            /* the stream's size cap, oldest dropped first (0: none) */
};

static natsStatus ensure_stream(struct sn_link *l, const struct want_stream *w, int *replicas,
                                jsErrCode *jerr)
{
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_API_WAIT_MS;
    natsStatus s = js_GetStreamInfo(&si, l->js, w->name, &jo, jerr);
    if (s == NATS_NOT_FOUND) {
        const char *subjects[] = {w->subject};
        jsStreamConfig c;
        jsStreamConfig_Init(&c);
        c.Name = w->name;
        c.Subjects = subjects;
        c.SubjectsLen = 1;
        c.Storage = js_FileStorage;
        c.Replicas = l->replicas;
        c.MaxAge = w->max_age_ns;
        if (w->max_bytes)
            c.MaxBytes = w->max_bytes;
        if (w->dedup_ns)
            c.Duplicates = w->dedup_ns;
        if (w->per_subject)
            c.MaxMsgsPerSubject = w->per_subject;
        *jerr = 0;
        s = js_AddStream(&si, l->js, &c, &jo, jerr);
        if (s == NATS_OK || (*jerr != JSStreamNameExistErr && *jerr != JSStreamSubjectOverlapErr)) {
            jsStreamInfo_Destroy(si);
            return s;
        }
        /* another node created it meanwhile (a server that is still creating it says "subjects
         * overlap", not "name in use"): check its limits below. Overlap with a stream of
         * another name stays an error: ours is still not found. */
        jsErrCode first = *jerr;
        natsStatus fs = s;
        *jerr = 0;
        s = js_GetStreamInfo(&si, l->js, w->name, &jo, jerr);
        if (s == NATS_NOT_FOUND) {
            *jerr = first;
            return fs;
        }
    }
    if (s != NATS_OK)
        return s;
    if (replicas && si->Config->Replicas > 0)
        *replicas = (int)si->Config->Replicas;
    bool age_short = si->Config->MaxAge && si->Config->MaxAge < w->max_age_ns;
    bool dedup_short = w->dedup_ns && si->Config->Duplicates < w->dedup_ns;
    if (!age_short && !dedup_short) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    /* keep everything of the existing stream but the limits that are too short */
    jsStreamConfig c = *si->Config;
    if (age_short)
        c.MaxAge = w->max_age_ns;
    if (dedup_short)
        c.Duplicates = w->dedup_ns;
    jsStreamInfo *ui = NULL;
    s = js_UpdateStream(&ui, l->js, &c, &jo, jerr);
    jsStreamInfo_Destroy(ui);
    jsStreamInfo_Destroy(si);
    return s;
}

int sn_link_ensure_stream(struct sn_link *l, const char *name, const char *subject,
                          int64_t max_age_ns, int64_t per_subject, char *why, size_t whylen)
{
    struct want_stream w = {
        .name = name, .subject = subject, .max_age_ns = max_age_ns, .per_subject = per_subject};
    jsErrCode jerr = 0;
    natsStatus s = ensure_stream(l, &w, NULL, &jerr);
    if (s == NATS_OK)
        return 0;
    snprintf(why, whylen, "NATS JetStream: stream %s: %s (%d)", name, natsStatus_GetText(s),
             (int)jerr);
    return sn_link_err(s) ? sn_link_err(s) : -EIO;
}

int sn_link_ensure_stream_capped(struct sn_link *l, const char *name, const char *subject,
                                 int64_t max_age_ns, int64_t max_bytes, char *why, size_t whylen)
{
    struct want_stream w = {
        .name = name, .subject = subject, .max_age_ns = max_age_ns, .max_bytes = max_bytes};
    jsErrCode jerr = 0;
    natsStatus s = ensure_stream(l, &w, NULL, &jerr);
    if (s == NATS_OK)
        return 0;
    snprintf(why, whylen, "NATS JetStream: stream %s: %s (%d)", name, natsStatus_GetText(s),
             (int)jerr);
    return sn_link_err(s) ? sn_link_err(s) : -EIO;
}

static natsStatus ensure_bucket(struct sn_link *l, kvStore **kv, const char *bucket, int history,
                                int64_t ttl_ns)
{
    if (*kv)
        return NATS_OK;
    natsStatus s = js_KeyValue(kv, l->js, bucket);
    if (s != NATS_NOT_FOUND)
        return s;
    kvConfig c;
    kvConfig_Init(&c);
    c.Bucket = bucket;
    c.History = (uint8_t)history;
    c.TTL = ttl_ns; /* cnats 3.4 passes it on as the stream's MaxAge: nanoseconds */
    c.StorageType = js_FileStorage;
    c.Replicas = l->replicas;
    s = js_CreateKeyValue(kv, l->js, &c);
    if (s != NATS_OK && !*kv) /* lost a race with another node's create: bind to it */
        if (js_KeyValue(kv, l->js, bucket) == NATS_OK)
            s = NATS_OK;
    return s;
}

int sn_link_ensure(struct sn_link *l, int timeout_ms, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!l)
        return -EINVAL;
    int64_t deadline = sn_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    natsStatus s = NATS_OK;
    jsErrCode jerr = 0;
    const char *what = "";
    for (int k = 0; k < 100000; k++) {
        if (!sn_link_up(l)) {
            s = NATS_CONNECTION_DISCONNECTED;
            what = "the connection";
        } else {
            if (!l->replicas)
                l->replicas = l->replicas_opt ? l->replicas_opt : default_replicas(l);
            jerr = 0;
            what = "stream " SN_FLEET_FRAMES_STREAM;
            struct want_stream frames = {.name = SN_FLEET_FRAMES_STREAM,
                                         .subject = SN_FLEET_FRAMES_ALL,
                                         .max_age_ns = l->keep_ns,
                                         .dedup_ns = l->dedup_ns};
            /* the fleet's replicas are the existing stream's (the buckets follow them) */
            s = ensure_stream(l, &frames, &l->replicas, &jerr);
            if (s == NATS_OK) {
                what = "bucket " SN_FLEET_KV_DEFS;
                s = ensure_bucket(l, &l->defs, SN_FLEET_KV_DEFS, DEFS_HISTORY, 0);
            }
            if (s == NATS_OK) {
                what = "bucket " SN_FLEET_KV_MEMBERS;
                s = ensure_bucket(l, &l->members, SN_FLEET_KV_MEMBERS, 1,
                                  (int64_t)MEMBERS_TTL_S * NS_PER_S);
            }
            if (s == NATS_OK)
                return 0;
        }
        if (!transient(s, jerr) || sn_mono_ms() + RETRY_GAP_MS > deadline)
            break;
        nats_Sleep(RETRY_GAP_MS);
    }
    if (jerr)
        say(why, whylen, "NATS JetStream: %s (replicas %d): %s (JetStream error %d)", what,
            l->replicas, nats_why(s), (int)jerr);
    else
        say(why, whylen, "NATS JetStream: %s (replicas %d): %s", what, l->replicas, nats_why(s));
    if (s == NATS_NO_MEMORY)
        return -ENOMEM;
    if (transient(s, jerr))
        return s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED ? -ENOTCONN
                                                                                : -ETIMEDOUT;
    if (s == NATS_NOT_PERMITTED)
        return -EACCES;
    return -EIO;
}

/* ---- accessors and close ------------------------------------------------------------------- */

kvStore *sn_link_kv(struct sn_link *l, const char *bucket)
{
    if (!l || !bucket)
        return NULL;
    if (strcmp(bucket, SN_FLEET_KV_DEFS) == 0)
        return l->defs;
    if (strcmp(bucket, SN_FLEET_KV_MEMBERS) == 0)
        return l->members;
    return NULL;
}

natsConnection *sn_link_conn(struct sn_link *l)
{
    return l ? l->nc : NULL;
}

jsCtx *sn_link_js(struct sn_link *l)
{
    return l ? l->js : NULL;
}

bool sn_link_up(struct sn_link *l)
{
    return l && l->nc && natsConnection_Status(l->nc) == NATS_CONN_STATUS_CONNECTED;
}

int sn_link_replicas(struct sn_link *l)
{
    return l ? l->replicas : 0;
}

void sn_link_stats(struct sn_link *l, struct sn_link_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    out->disconnects = l->disconnects;
    out->reconnects = l->reconnects;
    out->down_since_ms = l->down_since_ms;
    pthread_mutex_unlock(&l->mu);
    if (sn_link_up(l) &&
        natsConnection_GetConnectedUrl(l->nc, out->server, sizeof(out->server)) != NATS_OK)
        out->server[0] = '\0';
}

void sn_link_shut(struct sn_link *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    bool again = l->closing;
    l->closing = true;
    pthread_mutex_unlock(&l->mu);
    if (again || !l->nc)
        return;
    if (sn_link_up(l))
        natsConnection_FlushTimeout(l->nc, FLUSH_MS);
    natsConnection_Close(l->nc);
    /* the closed callback is cnats's last word on this link: after it, l can go */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CLOSE_WAIT_MS / 1000;
    pthread_mutex_lock(&l->mu);
    for (int k = 0; k < 1000 && !l->closed; k++)
        if (pthread_cond_timedwait(&l->cond, &l->mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&l->mu);
}

void sn_link_close(struct sn_link *l)
{
    if (!l)
        return;
    sn_link_shut(l);
    kvStore_Destroy(l->defs);
    kvStore_Destroy(l->members);
    jsCtx_Destroy(l->js);
    pthread_mutex_lock(&l->mu);
    bool closed = l->closed || !l->nc;
    pthread_mutex_unlock(&l->mu);
    natsConnection_Destroy(l->nc);
    natsOptions_Destroy(l->opts);
    if (!closed)
        return; /* a callback may still come: leave l to it rather than free it */
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
