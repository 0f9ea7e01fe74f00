/*
 * The flight recorder in a fleet: fleet sessions from sonde_defs, snapshot requests answered
 * with archives on SONDE_TRACES, and the gathering of a fleet snapshot (the design is in
 * fleet/fleet_rec.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/tar.h"
#include "fleet/fleet_rec.h"
#include "fleet/names.h"
#include "rec/session.h"

#define POLL_MS  200 /* the watcher's wait: how soon it sees a stop */
#define NAME_LEN (SN_RECORDER_NAME_MAX + 1)
#define H_CHUNK  "Sonde-Chunk"
#define H_SIZE   "Sonde-Size"
#define H_ERROR  "Sonde-Error"

struct sn_fleet_rec {
    struct sn_link *link;
    struct sn_recorder *r;
    char host[SN_FLEET_HOST_MAX + 1];
    pthread_mutex_t mu;                    /* the fleet sessions' names */
    char names[SN_RECORDER_MAX][NAME_LEN]; /* "" when free */
    natsSubscription *sub;                 /* the snapshot requests */
    pthread_t thread;
    bool started;
    atomic_bool stop, traces_ok;
};

static void fmt_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (!why || !whylen)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- The fleet sessions' names -------------------------------------------------------------- */

static void names_set(struct sn_fleet_rec *fr, const char *name, bool on)
{
    pthread_mutex_lock(&fr->mu);
    int free_at = -1, at = -1;
    for (int i = 0; i < SN_RECORDER_MAX; i++) {
        if (strcmp(fr->names[i], name) == 0)
            at = i;
        else if (!fr->names[i][0] && free_at < 0)
            free_at = i;
    }
    if (on && at < 0 && free_at >= 0)
        snprintf(fr->names[free_at], NAME_LEN, "%s", name);
    if (!on && at >= 0)
        fr->names[at][0] = '\0';
    pthread_mutex_unlock(&fr->mu);
}

bool sn_fleet_rec_is_fleet(struct sn_fleet_rec *fr, const char *name)
{
    bool yes = false;
    if (!fr || !name)
        return false;
    pthread_mutex_lock(&fr->mu);
    for (int i = 0; i < SN_RECORDER_MAX && !yes; i++)
        yes = strcmp(fr->names[i], name) == 0;
    pthread_mutex_unlock(&fr->mu);
    return yes;
}

/* ---- Specs ---------------------------------------------------------------------------------- */

int sn_fleet_rec_start_spec(struct sn_recorder *r, const json_t *spec, char *why, size_t whylen)
{
    const char *name = json_string_value(json_object_get(spec, "name"));
    const json_t *ev = json_object_get(spec, "events"), *sz = json_object_get(spec, "size-per-cpu");
    const json_t *pred = json_object_get(spec, "predicate"), *v;
    unsigned groups = 0;
    uint64_t size = 4u << 20;
    size_t i, nusdt = 0;
    const char *usdt[SN_REC_USDT_MAX]; /* usdt groups' probes: "usdt:" and PATH:PROVIDER:PROBE */

    if (!name || !sn_fleet_rec_name_valid(name)) {
        fmt_why(why, whylen, "a fleet session's name is 1 to 63 of [A-Za-z0-9_-]");
        return -EINVAL;
    }
    if (!json_is_array(ev) || json_array_size(ev) == 0) {
        fmt_why(why, whylen, "\"events\" must be a non-empty list of event groups");
        return -EINVAL;
    }
    json_array_foreach(ev, i, v)
    {
        unsigned g;
        if (!json_is_string(v) ||
            sn_recorder_parse_group(json_string_value(v), &g, why, whylen) != 0)
            return -EINVAL;
        if (g == SN_REC_G_USDT && nusdt == SN_REC_USDT_MAX) {
            fmt_why(why, whylen, "at most %d usdt probes a session", SN_REC_USDT_MAX);
            return -EINVAL;
        }
        if (g == SN_REC_G_USDT)
            usdt[nusdt++] = json_string_value(v) + 5;
        groups |= g;
    }
    if (sz && (!json_is_string(sz) ||
               sn_recorder_parse_size(json_string_value(sz), &size, why, whylen) != 0))
        return -EINVAL;
    struct sn_recorder_start_opts so = {
        .predicate = json_is_object(pred) ? pred : NULL, .usdt = usdt, .nusdt = nusdt};
    return sn_recorder_start_opts(r, name, groups, size, &so, why, whylen);
}

int sn_fleet_rec_create(struct sn_fleet_rec *fr, const json_t *spec, char *why, size_t whylen)
{
    char key[SN_FLEET_SUBJECT_MAX];
    const char *name = json_string_value(json_object_get(spec, "name"));
    kvStore *kv = sn_link_kv(fr->link, SN_FLEET_KV_DEFS);
    int rc;

    if (!name || sn_fleet_rec_key(name, key, sizeof(key)) < 0) {
        fmt_why(why, whylen, "a fleet session's name is 1 to 63 of [A-Za-z0-9_-]");
        return -EINVAL;
    }
    if (!kv || !sn_link_up(fr->link)) {
        fmt_why(why, whylen, "the fleet's bus (NATS) is down");
        return -ENOTCONN;
    }
    names_set(fr, name, true); /* before the watcher hears it: started here, not again */
    if ((rc = sn_fleet_rec_start_spec(fr->r, spec, why, whylen)) < 0) {
        names_set(fr, name, false);
        return rc;
    }
    char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t rev = 0;
    rc = text ? sn_link_err(kvStore_PutString(&rev, kv, key, text)) : -ENOMEM;
    free(text);
    if (rc < 0) {
        sn_recorder_stop(fr->r, name);
        names_set(fr, name, false);
        fmt_why(why, whylen, "the fleet's bus (NATS) did not take the session: %s", strerror(-rc));
        return rc == -ENOMEM ? rc : -ENOTCONN;
    }
    return 0;
}

int sn_fleet_rec_delete(struct sn_fleet_rec *fr, const char *name)
{
    char key[SN_FLEET_SUBJECT_MAX];
    kvStore *kv = sn_link_kv(fr->link, SN_FLEET_KV_DEFS);

    if (!sn_fleet_rec_is_fleet(fr, name) || sn_fleet_rec_key(name, key, sizeof(key)) < 0)
        return -ENOENT;
    if (!kv || !sn_link_up(fr->link))
        return -ENOTCONN;
    int rc = sn_link_err(kvStore_Delete(kv, key));
    if (rc < 0)
        return rc;
    names_set(fr, name, false);
    sn_recorder_stop(fr->r, name);
    return 0;
}

/* ---- The watcher ---------------------------------------------------------------------------- */

static void apply(struct sn_fleet_rec *fr, kvEntry *e, char (*seen)[NAME_LEN], size_t *nseen)
{
    char name[NAME_LEN], why[256];
    if (sn_fleet_parse_rec_key(kvEntry_Key(e), name, sizeof(name)) < 0)
        return;
    if (kvEntry_Operation(e) != kvOp_Put) {
        if (sn_fleet_rec_is_fleet(fr, name)) {
            names_set(fr, name, false);
            sn_recorder_stop(fr->r, name);
            sn_log(SN_LOG_INFO, "recorder", "fleet session %s stopped", name);
        }
        return;
    }
    if (seen && *nseen < SN_RECORDER_MAX)
        snprintf(seen[(*nseen)++], NAME_LEN, "%s", name);
    json_t *spec = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
    json_t *mine = sn_recorder_json(fr->r, name);
    if (mine) { /* already running: as the fleet's, or a local session of that name */
        if (!sn_fleet_rec_is_fleet(fr, name))
            sn_log(SN_LOG_WARN, "recorder",
                   "fleet session %s cannot start here: a local session has that name", name);
        json_decref(mine);
        json_decref(spec);
        return;
    }
    names_set(fr, name, true);
    int rc = spec ? sn_fleet_rec_start_spec(fr->r, spec, why, sizeof(why)) : -EINVAL;
    if (rc == 0)
        sn_log(SN_LOG_INFO, "recorder", "fleet session %s started", name);
    else
        sn_log(SN_LOG_WARN, "recorder", "fleet session %s cannot start here: %s", name,
               spec ? why : "its spec is not JSON");
    json_decref(spec);
}

/* After the whole set was read: the fleet sessions the bucket no longer has are stopped. */
static void forget_others(struct sn_fleet_rec *fr, char (*seen)[NAME_LEN], size_t nseen)
{
    char gone[SN_RECORDER_MAX][NAME_LEN];
    size_t ngone = 0;
    pthread_mutex_lock(&fr->mu);
    for (int i = 0; i < SN_RECORDER_MAX; i++) {
        bool kept = !fr->names[i][0];
        for (size_t k = 0; k < nseen && !kept; k++)
            kept = strcmp(fr->names[i], seen[k]) == 0;
        if (!kept)
            snprintf(gone[ngone++], NAME_LEN, "%s", fr->names[i]);
    }
    pthread_mutex_unlock(&fr->mu);
    for (size_t k = 0; k < ngone; k++) {
        names_set(fr, gone[k], false);
        sn_recorder_stop(fr->r, gone[k]);
        sn_log(SN_LOG_INFO, "recorder", "fleet session %s stopped (gone from the fleet)", gone[k]);
    }
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The watcher is made once and kept across reconnects: cnats's KV watcher is an ordered
 * consumer that makes itself again after an outage, from where it was (deletes included).
 * Destroying one while cnats resets it after a reconnect is the race of cnats 3.4.1 (a
 * heap-use-after-free in jsSub_deleteConsumer) that this avoids. */
static void *watch_main(void *arg)
{
    struct sn_fleet_rec *fr = arg;
    kvWatcher *w = NULL;
    char seen[SN_RECORDER_MAX][NAME_LEN];
    size_t nseen = 0;
    bool initial = false;

    while (!atomic_load(&fr->stop)) {
        kvStore *defs = sn_link_kv(fr->link, SN_FLEET_KV_DEFS);
        if (!w && (!sn_link_up(fr->link) || !defs)) {
            pause_ms(POLL_MS);
            continue;
        }
        if (!w) {
            if (kvStore_Watch(&w, defs, "rec.>", NULL) != NATS_OK) {
                w = NULL;
                pause_ms(500);
                continue;
            }
            initial = true;
            nseen = 0;
        }
        kvEntry *e = NULL;
        natsStatus s = kvWatcher_Next(&e, w, POLL_MS);
        if (s == NATS_OK && e) {
            apply(fr, e, initial ? seen : NULL, &nseen);
            kvEntry_Destroy(e);
        } else if (s == NATS_OK && initial) {
            forget_others(fr, seen, nseen);
            initial = false;
        } else if (s != NATS_OK && s != NATS_TIMEOUT) {
            pause_ms(POLL_MS); /* the bus is away: the watcher carries on when it is back */
        }
    }
    if (w) {
        kvWatcher_Stop(w);
        kvWatcher_Destroy(w);
    }
    return NULL;
}

/* ---- A host's answer to a request ------------------------------------------------------------ */

static int ensure_traces(struct sn_fleet_rec *fr, char *why, size_t whylen)
{
    if (atomic_load(&fr->traces_ok))
        return 0;
    /* the cap, or less when the servers' JetStream storage is smaller (a server refuses a
     * stream whose cap it could not hold): halved down to SN_FLEET_REC_STREAM_MIN */
    int rc = -EIO;
    for (int64_t cap = SN_FLEET_REC_STREAM_MAX; cap >= SN_FLEET_REC_STREAM_MIN && rc < 0;
         cap /= 2) {
        rc = sn_link_ensure_stream_capped(fr->link, SN_FLEET_TRACES_STREAM, SN_FLEET_TRACES_ALL,
                                          (int64_t)SN_FLEET_REC_KEEP_S * 1000000000, cap, why,
                                          whylen);
        if (rc == 0)
            sn_log(SN_LOG_INFO, "recorder", "stream %s: at most %" PRId64 " MiB",
                   SN_FLEET_TRACES_STREAM, cap >> 20);
        if (!sn_link_up(fr->link))
            break;
    }
    if (rc == 0)
        atomic_store(&fr->traces_ok, true);
    return rc;
}

/* Publishes one message of this host's answer to snapshot id; 0 or -errno. */
static int put_msg(struct sn_fleet_rec *fr, const char *id, const void *data, size_t len,
                   unsigned i, unsigned n, size_t total, const char *err)
{
    char subj[SN_FLEET_SUBJECT_MAX], msgid[SN_FLEET_SUBJECT_MAX + 16], v[64];
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    jsPubOptions po;

    if (sn_fleet_traces_subject(id, fr->host, subj, sizeof(subj)) < 0)
        return -EINVAL;
    if (natsMsg_Create(&m, subj, NULL, data, (int)len) != NATS_OK)
        return -ENOMEM;
    if (err) {
        natsMsgHeader_Set(m, H_ERROR, err);
    } else {
        snprintf(v, sizeof(v), "%u/%u", i, n);
        natsMsgHeader_Set(m, H_CHUNK, v);
        snprintf(v, sizeof(v), "%zu", total);
        natsMsgHeader_Set(m, H_SIZE, v);
    }
    snprintf(msgid, sizeof(msgid), "%s.%s.%u", id, fr->host, err ? 999999u : i);
    jsPubOptions_Init(&po);
    po.MsgId = msgid;
    po.MaxWait = 10000;
    natsStatus s = js_PublishMsg(&pa, sn_link_js(fr->link), m, &po, &jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return sn_link_err(s);
}

/* Takes session's whole ring into a temporary directory and archives it. 0 or -errno. */
static int take_archive(struct sn_fleet_rec *fr, const char *session, unsigned char **tar,
                        size_t *len, char *why, size_t whylen)
{
    char root[] = "/tmp/sonde-fleet-snap-XXXXXX", dir[64];
    struct sn_recorder_snap_info info;
    if (!mkdtemp(root)) {
        fmt_why(why, whylen, "cannot make a temporary directory: %s", strerror(errno));
        return -errno;
    }
    snprintf(dir, sizeof(dir), "%s/s", root);
    int rc = sn_recorder_snapshot_window(fr->r, session, dir, SN_RECORDER_WHOLE_RING, &info);
    if (rc == 0)
        rc = sn_tar_dir(dir, tar, len);
    if (rc == -ENOENT)
        fmt_why(why, whylen, "no session %s on this host", session);
    else if (rc < 0)
        fmt_why(why, whylen, "the snapshot failed: %s", strerror(-rc));
    else if (*len > SN_FLEET_REC_ARCHIVE_MAX) {
        fmt_why(why, whylen, "the archive (%zu bytes) is over the fleet's limit (%zu)", *len,
                SN_FLEET_REC_ARCHIVE_MAX);
        free(*tar);
        *tar = NULL;
        rc = -EFBIG;
    }
    sn_recorder_snapshot_delete(root, "s");
    rmdir(root);
    return rc;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct sn_fleet_rec *fr = closure;
    char why[256];
    unsigned char *tar = NULL;
    size_t len = 0;
    (void)nc;
    (void)sub;

    json_t *j = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *session = json_string_value(json_object_get(j, "session"));
    natsMsg_Destroy(msg);
    if (!id || !session || !sn_fleet_rec_name_valid(id) || !sn_recorder_name_ok(session) ||
        atomic_load(&fr->stop)) {
        json_decref(j);
        return;
    }
    if (ensure_traces(fr, why, sizeof(why)) < 0) {
        sn_log(SN_LOG_WARN, "recorder", "fleet snapshot %s: %s", id, why);
        json_decref(j);
        return;
    }
    int rc = -ENOENT;
    if (!sn_fleet_rec_is_fleet(fr, session)) /* never a local session (a tenant's, say) */
        snprintf(why, sizeof(why), "no fleet session %s on this host", session);
    else
        rc = take_archive(fr, session, &tar, &len, why, sizeof(why));
    if (rc < 0) {
        put_msg(fr, id, NULL, 0, 0, 0, 0, why);
    } else {
        unsigned n = (unsigned)((len + SN_FLEET_REC_CHUNK - 1) / SN_FLEET_REC_CHUNK);
        for (unsigned i = 0; i < n && rc == 0; i++) {
            size_t off = (size_t)i * SN_FLEET_REC_CHUNK;
            size_t l = len - off < SN_FLEET_REC_CHUNK ? len - off : SN_FLEET_REC_CHUNK;
            rc = put_msg(fr, id, tar + off, l, i, n, len, NULL);
        }
        if (rc < 0)
            sn_log(SN_LOG_WARN, "recorder", "fleet snapshot %s: publishing the archive: %s", id,
                   strerror(-rc));
        else
            sn_log(SN_LOG_INFO, "recorder", "fleet snapshot %s: %zu bytes of %s sent", id, len,
                   session);
    }
    free(tar);
    json_decref(j);
}

/* ---- Open, close ---------------------------------------------------------------------------- */

int sn_fleet_rec_open(struct sn_link *link, struct sn_recorder *r, const char *host,
                      struct sn_fleet_rec **out, char *why, size_t whylen)
{
    *out = NULL;
    if (!link || !r || !sn_fleet_host_valid(host)) {
        fmt_why(why, whylen, "the recorder in a fleet needs a link, a recorder and a host name");
        return -EINVAL;
    }
    struct sn_fleet_rec *fr = calloc(1, sizeof(*fr));
    if (!fr)
        return -ENOMEM;
    fr->link = link;
    fr->r = r;
    snprintf(fr->host, sizeof(fr->host), "%s", host);
    pthread_mutex_init(&fr->mu, NULL);
    natsStatus s =
        natsConnection_Subscribe(&fr->sub, sn_link_conn(link), SN_FLEET_REC_SNAP, on_request, fr);
    if (s != NATS_OK) {
        fmt_why(why, whylen, "subscribing to %s: %s", SN_FLEET_REC_SNAP, natsStatus_GetText(s));
        sn_fleet_rec_close(fr);
        return sn_link_err(s) ? sn_link_err(s) : -EIO;
    }
    if (pthread_create(&fr->thread, NULL, watch_main, fr) != 0) {
        fmt_why(why, whylen, "cannot start a thread");
        sn_fleet_rec_close(fr);
        return -EAGAIN;
    }
    fr->started = true;
    *out = fr;
    return 0;
}

void sn_fleet_rec_halt(struct sn_fleet_rec *fr)
{
    if (!fr || atomic_exchange(&fr->stop, true))
        return;
    if (fr->started)
        pthread_join(fr->thread, NULL);
    fr->started = false;
    if (fr->sub)
        natsSubscription_Unsubscribe(fr->sub);
}

void sn_fleet_rec_close(struct sn_fleet_rec *fr)
{
    if (!fr)
        return;
    sn_fleet_rec_halt(fr);
    natsSubscription_Destroy(fr->sub);
    pthread_mutex_destroy(&fr->mu);
    free(fr);
}

/* ---- Gathering a fleet snapshot ------------------------------------------------------------- */

struct part {
    const char *host;
    unsigned char *buf;
    size_t size, got;
    unsigned next, n;
    enum { P_WAIT, P_DONE, P_FAILED } state;
    char err[200];
};

/* One message of the answers into its host's part. */
static void gather_msg(struct part *p, size_t np, natsMsg *m)
{
    char snap[NAME_LEN], host[SN_FLEET_HOST_MAX + 1];
    const char *v = NULL;
    struct part *x = NULL;

    if (sn_fleet_parse_traces_subject(natsMsg_GetSubject(m), snap, sizeof(snap), host,
                                      sizeof(host)) < 0)
        return;
    for (size_t i = 0; i < np && !x; i++)
        if (strcmp(p[i].host, host) == 0)
            x = &p[i];
    if (!x || x->state != P_WAIT)
        return;
    if (natsMsgHeader_Get(m, H_ERROR, &v) == NATS_OK && v) {
        x->state = P_FAILED;
        snprintf(x->err, sizeof(x->err), "%s", v);
        return;
    }
    unsigned i = 0, n = 0;
    unsigned long long size = 0;
    const char *vs = NULL;
    if (natsMsgHeader_Get(m, H_CHUNK, &v) != NATS_OK || !v || sscanf(v, "%u/%u", &i, &n) != 2 ||
        natsMsgHeader_Get(m, H_SIZE, &vs) != NATS_OK || !vs || sscanf(vs, "%llu", &size) != 1 ||
        n == 0 || i >= n || size > SN_FLEET_REC_ARCHIVE_MAX)
        return;
    if (i != x->next) /* a chunk sent again, or one out of order: the stream's order rules */
        return;
    if (i == 0) {
        free(x->buf);
        x->buf = malloc(size ? size : 1);
        x->size = size;
        x->got = 0;
        x->n = n;
        if (!x->buf) {
            x->state = P_FAILED;
            snprintf(x->err, sizeof(x->err), "out of memory");
            return;
        }
    }
    size_t len = (size_t)natsMsg_GetDataLength(m);
    if (n != x->n || (uint64_t)size != x->size || len > x->size - x->got) {
        x->state = P_FAILED;
        snprintf(x->err, sizeof(x->err), "its archive's chunks do not agree");
        return;
    }
    memcpy(x->buf + x->got, natsMsg_GetData(m), len);
    x->got += len;
    if (++x->next == x->n)
        x->state = x->got == x->size ? P_DONE : P_FAILED;
    if (x->state == P_FAILED)
        snprintf(x->err, sizeof(x->err), "its archive is short");
}

static int mkdirs(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* Reads sonde.traces.<id>.> from the start of the stream until every host of expected is whole
 * or failed, or wait_ms is over, and writes root/ID: <host>/... of each host received and the
 * index, whose "hosts" is keep (a copy of the firing node's) or, when NULL, what came here.
 * *hosts: that object (owned). 0, -ENODATA (no host's trace), or -errno with why. */
static int gather(struct sn_fleet_rec *fr, const char *id, const char *session,
                  const json_t *expected, const json_t *keep, const char *root, int wait_ms,
                  json_t **hosts, char *why, size_t whylen)
{
    char filter[SN_FLEET_SUBJECT_MAX], part_dir[800], dir[800];
    size_t np = json_array_size(expected);
    struct part *p = calloc(np ? np : 1, sizeof(*p));
    natsSubscription *sub = NULL;
    natsStatus s = NATS_OK;
    int rc = 0;

    *hosts = NULL;
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < np; i++)
        p[i].host = json_string_value(json_array_get(expected, i));
    jsErrCode jerr = 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = SN_FLEET_TRACES_STREAM;
    so.Ordered = true;
    if (s == NATS_OK && (rc = sn_fleet_traces_subject(id, NULL, filter, sizeof(filter))) == 0)
        s = js_SubscribeSync(&sub, sn_link_js(fr->link), filter, NULL, &so, &jerr);
    if (s != NATS_OK || rc < 0) {
        fmt_why(why, whylen, "the fleet's bus (NATS): %s",
                rc < 0 ? strerror(-rc) : natsStatus_GetText(s));
        free(p);
        return rc < 0 ? rc : -ENOTCONN;
    }
    int64_t deadline = sn_mono_ms() + (wait_ms > 0 ? wait_ms : SN_FLEET_REC_WAIT_MS);
    for (int k = 0; k < 1000000; k++) {
        size_t waiting = 0;
        for (size_t i = 0; i < np; i++)
            waiting += p[i].state == P_WAIT;
        int64_t left = deadline - sn_mono_ms();
        if (waiting == 0 || left <= 0 || atomic_load(&fr->stop))
            break;
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, left < 500 ? left : 500);
        if (s == NATS_OK) {
            gather_msg(p, np, m);
            natsMsg_Destroy(m);
        } else if (s != NATS_TIMEOUT) { /* the bus went: wait for it, up to the deadline */
            pause_ms(100);
        }
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);

    /* root/.ID.part/<host>/..., the index, then the rename */
    json_t *received = json_array(), *failed = json_object(), *missing = json_array();
    size_t nrecv = 0;
    snprintf(part_dir, sizeof(part_dir), "%s/.%s.part", root, id);
    snprintf(dir, sizeof(dir), "%s/%s", root, id);
    if ((rc = mkdirs(root)) == 0)
        rc = mkdirs(part_dir);
    for (size_t i = 0; i < np && rc == 0; i++) {
        char hd[1100];
        if (p[i].state == P_DONE) {
            snprintf(hd, sizeof(hd), "%s/%s", part_dir, p[i].host);
            long nf = sn_tar_extract(p[i].buf, p[i].size, hd);
            if (nf >= 0) {
                json_array_append_new(received, json_string(p[i].host));
                nrecv++;
                continue;
            }
            p[i].state = P_FAILED;
            snprintf(p[i].err, sizeof(p[i].err), "its archive does not unpack: %s",
                     strerror((int)-nf));
        }
        if (p[i].state == P_FAILED)
            json_object_set_new(failed, p[i].host, json_string(p[i].err));
        else
            json_array_append_new(missing, json_string(p[i].host));
    }
    *hosts = keep ? json_deep_copy(keep)
                  : json_pack("{s:O,s:o,s:o,s:o}", "expected", expected, "received", received,
                              "failed", failed, "missing", missing);
    if (keep) {
        json_decref(received);
        json_decref(failed);
        json_decref(missing);
    }
    if (rc == 0) {
        char ip[1000];
        json_t *index = json_pack("{s:s,s:s,s:b,s:{s:s},s:n,s:O}", "id", id, "session", session,
                                  "fleet", 1, "window", "of", "ring", "tenant", "hosts", *hosts);
        snprintf(ip, sizeof(ip), "%s/sonde-snapshot.json", part_dir);
        if (!index || json_dump_file(index, ip, JSON_INDENT(1)) != 0)
            rc = -EIO;
        json_decref(index);
    }
    if (rc == 0 && rename(part_dir, dir) != 0)
        rc = -errno;
    if (rc < 0) {
        if (rename(part_dir, dir) == 0) /* removed under its own name (a valid one) */
            sn_recorder_snapshot_delete(root, id);
        fmt_why(why, whylen, "cannot write the snapshot under %s: %s", root, strerror(-rc));
    } else if (nrecv == 0) {
        fmt_why(why, whylen, "no host answered with its trace");
        rc = -ENODATA;
    }
    for (size_t i = 0; i < np; i++)
        free(p[i].buf);
    free(p);
    return rc;
}

int sn_fleet_rec_snapshot(struct sn_fleet_rec *fr, const char *session, const json_t *expected,
                          const char *root, int wait_ms, char *id, size_t idlen, json_t **hosts,
                          char *why, size_t whylen)
{
    char stamp[32], subj[SN_FLEET_SUBJECT_MAX];
    int rc;

    *hosts = NULL;
    if (id && idlen)
        id[0] = '\0';
    if (!sn_link_up(fr->link)) {
        fmt_why(why, whylen, "the fleet's bus (NATS) is down");
        return -ENOTCONN;
    }
    if ((rc = ensure_traces(fr, why, whylen)) < 0)
        return rc;
    /* the id: SESSION-YYYYMMDDTHHMMSSZ-fXXXXXX, a valid subject token */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(id, idlen, "%.32s-%s-f%06x", session, stamp,
             (unsigned)((uint64_t)sn_now_ms() * 2654435761u ^ (uint64_t)getpid()) & 0xffffffu);
    json_t *req = json_pack("{s:s,s:s}", "id", id, "session", session);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    natsStatus s =
        text ? natsConnection_PublishString(sn_link_conn(fr->link), SN_FLEET_REC_SNAP, text)
             : NATS_NO_MEMORY;
    free(text);
    if (s != NATS_OK) {
        fmt_why(why, whylen, "the fleet's bus (NATS): %s", natsStatus_GetText(s));
        return -ENOTCONN;
    }
    rc = gather(fr, id, session, expected, NULL, root, wait_ms, hosts, why, whylen);
    /* the index on the stream, for the other nodes (sonde.traces.<id>) */
    if (*hosts && (rc == 0 || rc == -ENODATA) &&
        snprintf(subj, sizeof(subj), SN_FLEET_TRACES_PREFIX "%s", id) < (int)sizeof(subj)) {
        json_t *x = json_pack("{s:s,s:s,s:O}", "id", id, "session", session, "hosts", *hosts);
        char *t = x ? json_dumps(x, JSON_COMPACT) : NULL;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        if (!t ||
            js_Publish(&pa, sn_link_js(fr->link), subj, t, (int)strlen(t), NULL, &jerr) != NATS_OK)
            sn_log(SN_LOG_WARN, "recorder",
                   "fleet snapshot %s: its index did not reach the bus: the other nodes will "
                   "not list it",
                   id);
        jsPubAck_Destroy(pa);
        free(t);
        json_decref(x);
    }
    return rc;
}

/* Snapshot id's index from the stream (owned), or NULL. */
static json_t *index_of(struct sn_fleet_rec *fr, const char *id)
{
    char subj[SN_FLEET_SUBJECT_MAX];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (!sn_fleet_rec_name_valid(id) || !sn_link_up(fr->link))
        return NULL;
    snprintf(subj, sizeof(subj), SN_FLEET_TRACES_PREFIX "%s", id);
    if (js_GetLastMsg(&m, sn_link_js(fr->link), SN_FLEET_TRACES_STREAM, subj, NULL, &jerr) !=
        NATS_OK)
        return NULL;
    json_t *x = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
    natsMsg_Destroy(m);
    if (!json_is_object(x) || !json_is_string(json_object_get(x, "session")) ||
        !json_is_object(json_object_get(x, "hosts"))) {
        json_decref(x);
        return NULL;
    }
    return x;
}

int sn_fleet_rec_fetch(struct sn_fleet_rec *fr, const char *id, const char *root, char *why,
                       size_t whylen)
{
    json_t *x = fr ? index_of(fr, id) : NULL, *hosts = NULL;
    if (!x) {
        fmt_why(why, whylen, "no fleet snapshot \"%.64s\" on the bus", id ? id : "");
        return -ENOENT;
    }
    const json_t *h = json_object_get(x, "hosts");
    int rc = gather(fr, id, json_string_value(json_object_get(x, "session")),
                    json_object_get(h, "received"), h, root, 10000, &hosts, why, whylen);
    json_decref(hosts);
    json_decref(x);
    return rc;
}

json_t *sn_fleet_rec_list(struct sn_fleet_rec *fr)
{
    json_t *a = json_array();
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    char why[256];

    if (!fr || !sn_link_up(fr->link) || ensure_traces(fr, why, sizeof(why)) < 0)
        return a;
    /* the stream's subjects sonde.traces.<id>: one per index (its state, no message read) */
    jsOptions_Init(&jo);
    jo.Stream.Info.SubjectsFilter = SN_FLEET_TRACES_PREFIX "*";
    if (js_GetStreamInfo(&si, sn_link_js(fr->link), SN_FLEET_TRACES_STREAM, &jo, &jerr) !=
            NATS_OK ||
        !si) {
        jsStreamInfo_Destroy(si);
        return a;
    }

    for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++) {
        const char *id = si->State.Subjects->List[i].Subject + strlen(SN_FLEET_TRACES_PREFIX);
        if (sn_fleet_rec_name_valid(id))
            json_array_append_new(a, json_string(id));
    }
    jsStreamInfo_Destroy(si);
    return a;
}
