/*
 * The flight recorder's API (docs/api.md, "Recorder"): sessions started and stopped by name,
 * manual snapshots written under the server's data directory (DATA/snapshots/<id>/, never a
 * path the client chooses) and fetched as one ustar archive. The work is rec/recorder.h's;
 * this file parses, checks and answers.
 *
 * Who: the operator at /ca sees and acts on every session and snapshot; a tenant, at
 * /ca/customers/<tenant>/recorder/..., starts sessions scoped to its own cgroups (the kernel
 * records none of another's tasks, whatever its predicate) and sees, snapshots, stops, fetches
 * and deletes only its own sessions and their snapshots (others' are 404, as absent). A
 * snapshot's owner is in its index (sonde-snapshot.json's "tenant").
 *
 * In a fleet (`sonde serve --nats`), "hosts": "all" makes a fleet session (fleet/fleet_rec.h):
 * every host of the fleet records it, and deleting it here stops it everywhere. Operator only.
 *
 *   GET    /ca/recorder                         {sessions: [...], snapshots: [ids]}
 *   POST   /ca/recorder/sessions                {"name", "events": [...], "size-per-cpu",
 *                                                "predicate", "live": bool, "disk": true or
 *                                                {"chunk-size", "chunk-seconds", "max-size"}}
 *                                                -> 201
 *   GET    /ca/recorder/sessions/:name          the session
 *   DELETE /ca/recorder/sessions/:name          stops it -> 204
 *   POST   /ca/recorder/sessions/:name/snapshot -> 201 {id, path, events, overwritten, torn,
 *                                                       dropped}
 *   GET    /ca/recorder/snapshots               [ids]
 *   GET    /ca/recorder/snapshots/:name         its index (sonde-snapshot.json; a fleet
 *                                                snapshot's names its hosts)
 *   GET    /ca/recorder/snapshots/:name/archive application/x-tar of the snapshot's directory
 *   DELETE /ca/recorder/snapshots/:name         -> 204
 *   GET    /ca/recorder/recordings              [names]: disk mode's recordings (DATA/recordings)
 *   GET    /ca/recorder/recordings/:name        {name, tenant, recording, chunks: [{name, bytes,
 *                                                first_ns, last_ns, events}], bytes, lost}
 *   GET    /ca/recorder/recordings/:name/archive?chunk=CHUNK  application/x-tar of one chunk
 *   DELETE /ca/recorder/recordings/:name        -> 204 (409 while its session runs)
 *
 * A disk recording outlives its session until it is deleted; its owner is in its index
 * (DATA/recordings/NAME/sonde-recording.json's "tenant"), as a snapshot's.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "core/grow.h"
#include "core/tar.h"
#include "fleet/fleet_rec.h"
#include "fleet/names.h"
#include "http/request.h"
#include "rec/disk_sink.h"
#include "rec/recorder.h"
#include "rec/session.h"
#include "serve/fleet.h"

#define DEFAULT_SIZE (4u << 20)

static void not_found(struct sn_call *c, const char *what, const char *name)
{
    sn_resp_error(c->resp, 404, "ResourceNotFound", "no such %s \"%.64s\"", what, name);
}

/* Whether the caller's scope owns a session or snapshot of tenant (JSON null or absent: the
 * operator's); the operator's scope owns everything. */
static bool owns(const struct sn_call *c, const json_t *tenant)
{
    const char *t = json_string_value(tenant);
    return !c->scope[0] || (t && strcmp(t, c->scope) == 0);
}

/* Session name's JSON when the caller may see it, else NULL. */
static json_t *session_seen(struct sn_call *c, const char *name)
{
    json_t *j = sn_recorder_json(c->s->recorder, name);
    if (j && !owns(c, json_object_get(j, "tenant"))) {
        json_decref(j);
        j = NULL;
    }
    if (j && sn_fleet_rec_is_fleet(sn_fleet_recorder(c->s->fleet), name))
        json_object_set_new(j, "hosts", json_string("all"));
    return j;
}

/* Whether snapshot id (a valid name) is the caller's to see: its index names its owner. */
static bool snapshot_seen(struct sn_call *c, const char *id)
{
    char path[800];
    if (!c->scope[0])
        return true;
    snprintf(path, sizeof(path), "%s/" SN_RECORDER_SNAPDIR "/%s/sonde-snapshot.json", c->s->datadir,
             id);
    json_t *x = json_load_file(path, 0, NULL);
    bool ok = x && owns(c, json_object_get(x, "tenant"));
    json_decref(x);
    return ok;
}

/* DATA/snapshots into buf; created when absent (mkdir). */
static int snap_root(struct sn_call *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" SN_RECORDER_SNAPDIR, c->s->datadir);
    return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* A fleet snapshot another node took, brought here (DATA/snapshots/ID) when this node does not
 * hold it. 0, or -ENOENT. */
static int fleet_bring(struct sn_call *c, const char *id)
{
    static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER; /* one bring at a time: a second
                                                                request finds it here */
    char root[600], dir[800], why[256];
    struct stat st;
    int rc = 0;
    if (c->scope[0] || !sn_fleet_recorder(c->s->fleet))
        return 0;
    snprintf(dir, sizeof(dir), "%s/" SN_RECORDER_SNAPDIR "/%s", c->s->datadir, id);
    pthread_mutex_lock(&one);
    if (stat(dir, &st) != 0 && snap_root(c, root, sizeof(root)) == 0) {
        rc = sn_fleet_rec_fetch(sn_fleet_recorder(c->s->fleet), id, root, why, sizeof(why));
        rc = rc == 0 || rc == -ENODATA ? 0 : -ENOENT;
    }
    pthread_mutex_unlock(&one);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The snapshots' ids, sorted (an id begins with its session and a UTC time). */
static json_t *snap_ids(struct sn_call *c)
{
    char root[600];
    json_t *a = json_array();
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *d;

    snprintf(root, sizeof(root), "%s/" SN_RECORDER_SNAPDIR, c->s->datadir);
    d = opendir(root);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!sn_recorder_name_ok(e->d_name) || !snapshot_seen(c, e->d_name))
            continue;
        char **p = sn_grow(names, &cap, n + 1, sizeof(*names));
        if (!p)
            break;
        names = p;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    if (d)
        closedir(d);
    /* in a fleet, the fleet snapshots other nodes took too (their indexes on the bus) */
    json_t *fleet = c->scope[0] ? NULL : sn_fleet_rec_list(sn_fleet_recorder(c->s->fleet));
    size_t fi;
    json_t *fv;
    json_array_foreach(fleet, fi, fv)
    {
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(names[k], json_string_value(fv)) == 0;
        char **p = dup ? NULL : sn_grow(names, &cap, n + 1, sizeof(*names));
        if (p && (names = p) && (names[n] = strdup(json_string_value(fv))))
            n++;
    }
    json_decref(fleet);
    if (n) /* names is NULL when there is none */
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
        free(names[i]);
    }
    free(names);
    return a;
}

static int cmp_chunk(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "chunk"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "chunk"));
    return x < y ? -1 : x > y;
}

/* Disk mode's limits (docs/api.md, "Recorder"). */
#define DISK_SIZE_MIN    (64ull << 10)
#define DISK_SIZE_MAX    (1ull << 40)
#define DISK_SECONDS_MAX 86400

/* A size such as "64M", "1G", "65536" (K, M, G, T: powers of 1024) in [64 KiB, 1 TiB]. */
static int disk_size(const json_t *v, const char *what, uint64_t *out, char *why, size_t len)
{
    const char *s = json_string_value(v), *units = "KMGT";
    char *end;
    if (!s || s[0] < '0' || s[0] > '9') {
        snprintf(why, len, "\"%s\" must be a string such as \"64M\"", what);
        return -EINVAL;
    }
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    unsigned shift = 0;
    const char *u = *end ? strchr(units, *end & ~0x20) : NULL;
    if (u && *end) {
        shift = 10 * (unsigned)(u - units + 1);
        end++;
    }
    if (errno || *end || n == 0 || n > (DISK_SIZE_MAX >> shift) || (n << shift) < DISK_SIZE_MIN) {
        snprintf(why, len, "\"%s\" \"%.32s\" must be a size from 64K to 1T (K, M, G, T)", what, s);
        return -EINVAL;
    }
    *out = (uint64_t)n << shift;
    return 0;
}

/* "disk": true, or {"chunk-size", "chunk-seconds", "max-size"} (each optional). */
static int disk_parse(const json_t *d, struct sn_recorder_disk_opts *o, char *why, size_t len)
{
    if (json_is_true(d))
        return 0;
    if (!json_is_object(d)) {
        snprintf(why, len, "must be true or an object {chunk-size, chunk-seconds, max-size}");
        return -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)d, key, v)
    {
        int rc = 0;
        if (strcmp(key, "chunk-size") == 0)
            rc = disk_size(v, key, &o->chunk_bytes, why, len);
        else if (strcmp(key, "max-size") == 0)
            rc = disk_size(v, key, &o->max_bytes, why, len);
        else if (strcmp(key, "chunk-seconds") == 0) {
            json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
            if (n < 1 || n > DISK_SECONDS_MAX) {
                snprintf(why, len, "\"chunk-seconds\" must be an integer from 1 to %d",
                         DISK_SECONDS_MAX);
                rc = -EINVAL;
            }
            o->chunk_ns = (uint64_t)n * 1000000000ull;
        } else {
            snprintf(why, len, "unknown member \"%.64s\" (chunk-size, chunk-seconds, max-size)",
                     key);
            rc = -EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    uint64_t chunk = o->chunk_bytes ? o->chunk_bytes : SN_REC_DISK_CHUNK_BYTES;
    if (o->max_bytes && o->max_bytes < chunk) {
        snprintf(why, len, "\"max-size\" must be at least the chunk size (%llu bytes)",
                 (unsigned long long)chunk);
        return -EINVAL;
    }
    return 0;
}

/* DATA/recordings/name (or the root when name is NULL) into buf. */
static void disk_path(struct sn_call *c, const char *name, char *buf, size_t len)
{
    if (name)
        snprintf(buf, len, "%s/" SN_RECORDER_DISKDIR "/%s", c->s->datadir, name);
    else
        snprintf(buf, len, "%s/" SN_RECORDER_DISKDIR, c->s->datadir);
}

/* Whether recording name (a valid name) exists and is the caller's: its index names its owner. */
static bool recording_seen(struct sn_call *c, const char *name)
{
    char path[800];
    disk_path(c, name, path, sizeof(path));
    strcat(path, "/sonde-recording.json");
    json_t *x = json_load_file(path, 0, NULL);
    bool ok = x && owns(c, json_object_get(x, "tenant"));
    json_decref(x);
    return ok;
}

/* Makes DATA/recordings/name (into dir) with its index; -EEXIST when it exists. */
static int disk_make(struct sn_call *c, const char *name, char *dir, size_t len, char *why,
                     size_t wlen)
{
    char path[800];
    disk_path(c, NULL, path, sizeof(path));
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(why, wlen, "cannot make %.160s: %s", path, strerror(errno));
        return -EIO;
    }
    disk_path(c, name, dir, len);
    if (mkdir(dir, 0755) != 0) {
        int rc = -errno;
        if (rc == -EEXIST)
            snprintf(why, wlen, "recording \"%s\" exists (DELETE /ca/recorder/recordings/%s first)",
                     name, name);
        else
            snprintf(why, wlen, "cannot make %.160s: %s", dir, strerror(-rc));
        return rc == -EEXIST ? -EEXIST : -EIO;
    }
    json_t *ix = json_pack("{s:s,s:o}", "session", name, "tenant",
                           c->scope[0] ? json_string(c->scope) : json_null());
    snprintf(path, sizeof(path), "%s/sonde-recording.json", dir);
    int rc = ix && json_dump_file(ix, path, JSON_COMPACT) == 0 ? 0 : -EIO;
    json_decref(ix);
    if (rc != 0) {
        snprintf(why, wlen, "cannot write %.160s", path);
        disk_path(c, NULL, path, sizeof(path));
        sn_recorder_snapshot_delete(path, name);
    }
    return rc;
}

/* Removes recording name (its chunks and index). */
static int disk_remove(struct sn_call *c, const char *name)
{
    char root[700];
    disk_path(c, NULL, root, sizeof(root));
    return sn_recorder_snapshot_delete(root, name);
}

/* Recording dir's closed chunks, sorted: [{name, bytes, first_ns, last_ns, events}], with their
 * total bytes and the newest's lost count. */
static json_t *chunks_json(const char *dir, uint64_t *bytes, uint64_t *lost)
{
    json_t *a = json_array();
    DIR *d = opendir(dir);
    char path[1200];

    *bytes = *lost = 0;
    if (!d || !a)
        return d ? (closedir(d), a) : a;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "chunk-", 6) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s/" SN_REC_DISK_INDEX, dir, e->d_name);
        json_t *ix = json_load_file(path, 0, NULL);
        if (!ix)
            continue;
        json_object_set_new(ix, "name", json_string(e->d_name));
        json_array_append_new(a, ix);
    }
    closedir(d);
    size_t n = json_array_size(a);
    json_t **v = n ? malloc(n * sizeof(*v)) : NULL;
    if (v) {
        for (size_t i = 0; i < n; i++)
            v[i] = json_incref(json_array_get(a, i));
        qsort(v, n, sizeof(*v), cmp_chunk);
        json_array_clear(a);
        for (size_t i = 0; i < n; i++) {
            *bytes += (uint64_t)json_integer_value(json_object_get(v[i], "bytes"));
            *lost = (uint64_t)json_integer_value(json_object_get(v[i], "lost"));
            json_array_append_new(a, v[i]);
        }
        free(v);
    }
    return a;
}

/* Adds a disk session's {chunks, bytes, lost} beside its dir to session j; returns j. */
static json_t *disk_json(struct sn_call *c, json_t *j)
{
    (void)c;
    json_t *d = json_object_get(j, "disk");
    const char *dir = json_string_value(json_object_get(d, "dir"));
    if (!dir)
        return j;
    uint64_t bytes, lost;
    json_t *ch = chunks_json(dir, &bytes, &lost);
    json_object_set_new(d, "chunks", json_integer((json_int_t)json_array_size(ch)));
    json_object_set_new(d, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(d, "lost", json_integer((json_int_t)lost));
    json_decref(ch);
    return j;
}

/* Whether a running session writes into recording name. */
static bool recording_live(struct sn_call *c, const char *name)
{
    char dir[800];
    json_t *j = sn_recorder_json(c->s->recorder, name);
    disk_path(c, name, dir, sizeof(dir));
    const char *d = json_string_value(json_object_get(json_object_get(j, "disk"), "dir"));
    bool yes = d && strcmp(d, dir) == 0;
    json_decref(j);
    return yes;
}

static void recordings_list(struct sn_call *c)
{
    char root[700];
    json_t *a = json_array();
    disk_path(c, NULL, root, sizeof(root));
    DIR *d = opendir(root);
    for (struct dirent *e; d && (e = readdir(d));)
        if (sn_recorder_name_ok(e->d_name) && recording_seen(c, e->d_name))
            json_array_append_new(a, json_string(e->d_name));
    if (d)
        closedir(d);
    size_t n = json_array_size(a);
    const char **v = n ? malloc(n * sizeof(*v)) : NULL;
    json_t *out = json_array();
    if (v) {
        for (size_t i = 0; i < n; i++)
            v[i] = json_string_value(json_array_get(a, i));
        qsort(v, n, sizeof(*v), cmp_str);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(out, json_string(v[i]));
        free(v);
    }
    json_decref(a);
    sn_resp_json(c->resp, 200, out);
}

static void recording_get(struct sn_call *c, const char *name)
{
    char dir[800], path[900];
    uint64_t bytes, lost;
    if (!sn_recorder_name_ok(name) || !recording_seen(c, name))
        return not_found(c, "recording", name);
    disk_path(c, name, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/sonde-recording.json", dir);
    json_t *ix = json_load_file(path, 0, NULL);
    const char *owner = json_string_value(json_object_get(ix, "tenant"));
    json_t *tenant = owner ? json_string(owner) : json_null();
    json_decref(ix);
    json_t *ch = chunks_json(dir, &bytes, &lost);
    sn_resp_json(c->resp, 200,
                 json_pack("{s:s,s:s,s:o,s:b,s:o,s:I,s:I}", "name", name, "dir", dir, "tenant",
                           tenant, "recording", recording_live(c, name), "chunks", ch, "bytes",
                           (json_int_t)bytes, "lost", (json_int_t)lost));
}

static void recording_archive(struct sn_call *c, const char *name)
{
    char dir[1000];
    struct stat st;
    unsigned char *tar;
    size_t len;
    const char *chunk = sn_req_param(c->req, "chunk");

    if (!sn_recorder_name_ok(name) || !recording_seen(c, name))
        return not_found(c, "recording", name);
    if (!chunk || strncmp(chunk, "chunk-", 6) != 0 || !sn_recorder_name_ok(chunk))
        return CA_INVAL(c, "?chunk= must name one of the recording's chunks (chunk-NNNNNN)");
    disk_path(c, name, dir, sizeof(dir));
    size_t k = strlen(dir);
    snprintf(dir + k, sizeof(dir) - k, "/%s", chunk);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return not_found(c, "chunk", chunk);
    int rc = sn_tar_dir(dir, &tar, &len);
    if (rc != 0)
        return (void)sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot archive %s: %s", chunk,
                                   strerror(-rc));
    sn_resp_bytes(c->resp, 200, "application/x-tar", tar, len);
}

static void recording_delete(struct sn_call *c, const char *name)
{
    if (!sn_recorder_name_ok(name) || !recording_seen(c, name))
        return not_found(c, "recording", name);
    if (recording_live(c, name))
        return CA_INVAL(c, "session \"%s\" still records into it: stop it first", name);
    if (disk_remove(c, name) != 0)
        return not_found(c, "recording", name);
    sn_resp_empty(c->resp, 204);
}

static void index_get(struct sn_call *c)
{
    json_t *all = sn_recorder_json(c->s->recorder, NULL), *sess = json_array(), *x;
    size_t i;
    json_array_foreach(all, i, x) if (owns(c, json_object_get(x, "tenant")))
        json_array_append(sess, disk_json(c, x));
    json_decref(all);
    sn_resp_json(
        c->resp, 200,
        json_pack("{s:o,s:o}", "sessions", sess ? sess : json_array(), "snapshots", snap_ids(c)));
}

static void session_create(struct sn_call *c)
{
    json_error_t jerr;
    char why[256];
    unsigned groups = 0;
    const char *usdt[SN_REC_USDT_MAX]; /* the usdt groups' probes, in the request */
    size_t nusdt = 0;
    uint64_t size = DEFAULT_SIZE;
    json_t *j = json_loadb((const char *)c->req->body, c->req->body_len, 0, &jerr);

    if (!j || !json_is_object(j)) {
        CA_INVAL(c, "the body must be a JSON object: %s", j ? "not an object" : jerr.text);
        json_decref(j);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) if (strcmp(key, "name") && strcmp(key, "events") &&
                                       strcmp(key, "size-per-cpu") && strcmp(key, "predicate") &&
                                       strcmp(key, "live") && strcmp(key, "hosts") &&
                                       strcmp(key, "disk"))
    {
        CA_INVAL(c,
                 "unknown member \"%.64s\" (this server takes name, events, size-per-cpu, "
                 "predicate, live, hosts, disk)",
                 key);
        json_decref(j);
        return;
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *ev = json_object_get(j, "events");
    json_t *sz = json_object_get(j, "size-per-cpu");
    if (!name || !sn_recorder_name_ok(name)) {
        CA_INVAL(c, "\"name\" must be 1 to %d of [A-Za-z0-9_.-], not starting with '.'",
                 SN_RECORDER_NAME_MAX);
        goto out;
    }
    if (!json_is_array(ev) || json_array_size(ev) == 0) {
        CA_INVAL(c, "\"events\" must be a non-empty list of event groups (syscalls, sched, "
                    "proc, block, tcp, faults, usdt:PATH:PROVIDER:PROBE)");
        goto out;
    }
    size_t i;
    json_array_foreach(ev, i, v)
    {
        unsigned g;
        if (!json_is_string(v)) {
            CA_INVAL(c, "\"events\" must be a list of strings");
            goto out;
        }
        if (sn_recorder_parse_group(json_string_value(v), &g, why, sizeof(why)) != 0) {
            CA_INVAL(c, "\"events\": %s", why);
            goto out;
        }
        if (g == SN_REC_G_USDT && nusdt == SN_REC_USDT_MAX) {
            CA_INVAL(c, "\"events\": at most %d usdt probes a session", SN_REC_USDT_MAX);
            goto out;
        }
        if (g == SN_REC_G_USDT) /* "usdt:" and the probe */
            usdt[nusdt++] = json_string_value(v) + 5;
        groups |= g;
    }
    if (sz && !json_is_string(sz)) {
        CA_INVAL(c, "\"size-per-cpu\" must be a string such as \"4M\"");
        goto out;
    }
    if (sz && sn_recorder_parse_size(json_string_value(sz), &size, why, sizeof(why)) != 0) {
        CA_INVAL(c, "\"size-per-cpu\": %s", why);
        goto out;
    }
    json_t *live = json_object_get(j, "live");
    if (live && !json_is_boolean(live)) {
        CA_INVAL(c, "\"live\" must be true or false");
        goto out;
    }
    struct sn_recorder_disk_opts dopts = {0};
    char ddir[700];
    json_t *disk = json_object_get(j, "disk");
    if (disk && !json_is_false(disk) && disk_parse(disk, &dopts, why, sizeof(why)) != 0) {
        CA_INVAL(c, "\"disk\": %s", why);
        goto out;
    }
    disk = disk && !json_is_false(disk) ? disk : NULL;
    json_t *pred = json_object_get(j, "predicate");
    struct sn_pred compiled;
    if (pred && !json_is_object(pred)) {
        CA_INVAL(c, "\"predicate\" must be a predicate object such as {\"eq\": [\"execname\", "
                    "\"nginx\"]}");
        goto out;
    }
    if (pred && sn_rec_pred_compile(pred, &compiled, why, sizeof(why)) != 0) {
        CA_INVAL(c, "\"predicate\": %s", why);
        goto out;
    }
    struct sn_recorder_start_opts so = {.predicate = pred, .usdt = usdt, .nusdt = nusdt};
    if (c->scope[0]) { /* a tenant's: its cgroups, always */
        const struct sn_tenant *t = c->s->tenants ? sn_tenants_find(c->s->tenants, c->scope) : NULL;
        if (!t || t->ncgroups == 0) {
            sn_resp_error(c->resp, 403, "ECA_NOTAUTHORIZED", "tenant \"%.64s\" owns no cgroups",
                          c->scope);
            goto out;
        }
        so.tenant = c->scope;
        so.scope = (const char *const *)t->cgroups;
        so.nscope = t->ncgroups;
    }
    json_t *hosts = json_object_get(j, "hosts");
    int rc = 0;
    if (hosts) { /* a fleet session */
        struct sn_fleet_rec *fr = sn_fleet_recorder(c->s->fleet);
        if (!json_is_string(hosts) || strcmp(json_string_value(hosts), "all") != 0) {
            CA_INVAL(c, "\"hosts\" takes \"all\" (every host of the fleet)");
            goto out;
        }
        if (!fr) {
            CA_INVAL(c, "\"hosts\": this server is not in a fleet (sonde serve --nats)");
            goto out;
        }
        if (c->scope[0]) {
            sn_resp_error(c->resp, 403, "ECA_NOTAUTHORIZED", "fleet sessions are the operator's");
            goto out;
        }
        if (live || disk) {
            CA_INVAL(c,
                     "\"%s\": a fleet session is not published for live reading nor written "
                     "to disk (each host's own sessions are)",
                     live ? "live" : "disk");
            goto out;
        }
        if (!sn_fleet_rec_name_valid(name)) {
            CA_INVAL(c, "a fleet session's \"name\" is 1 to 63 of [A-Za-z0-9_-] (no '.')");
            goto out;
        }
        json_object_del(j, "hosts");
        rc = sn_fleet_rec_create(fr, j, why, sizeof(why));
    } else {
        if (disk && (rc = disk_make(c, name, ddir, sizeof(ddir), why, sizeof(why))) != 0)
            goto answer;
        dopts.dir = ddir;
        rc = sn_recorder_start_opts(c->s->recorder, name, groups, size, &so, why, sizeof(why));
        bool started = rc == 0;
        if (rc == 0 && disk)
            rc = sn_recorder_disk(c->s->recorder, name, &dopts, json_is_true(live), why,
                                  sizeof(why));
        else if (rc == 0 && json_is_true(live))
            rc = sn_recorder_live(c->s->recorder, name, why, sizeof(why));
        if (rc != 0) { /* all or nothing */
            if (started)
                sn_recorder_stop(c->s->recorder, name);
            rc = rc == -ENOTSUP ? -EINVAL : rc;
            if (disk)
                disk_remove(c, name);
        }
    }
answer:
    if (rc == -EINVAL || rc == -EEXIST || rc == -ENOSPC || rc == -E2BIG)
        CA_INVAL(c, "%s", why);
    else if (rc != 0)
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE", "%s", why);
    else
        sn_resp_json(c->resp, 201, disk_json(c, session_seen(c, name)));
out:
    json_decref(j);
}

static void session_get(struct sn_call *c, const char *name)
{
    json_t *j = session_seen(c, name);
    if (!j)
        return not_found(c, "session", name);
    sn_resp_json(c->resp, 200, disk_json(c, j));
}

static void session_delete(struct sn_call *c, const char *name)
{
    json_t *j = session_seen(c, name);
    json_decref(j);
    if (!j)
        return not_found(c, "session", name);
    struct sn_fleet_rec *fr = sn_fleet_recorder(c->s->fleet);
    if (sn_fleet_rec_is_fleet(fr, name)) { /* every host stops it */
        int rc = sn_fleet_rec_delete(fr, name);
        if (rc == -ENOENT)
            return not_found(c, "session", name);
        if (rc < 0)
            return (void)sn_resp_error(c->resp, 503, "ECA_NORESOURCE",
                                       "the fleet's bus (NATS) did not take the stop: %s",
                                       strerror(-rc));
    } else if (sn_recorder_stop(c->s->recorder, name) != 0) {
        return not_found(c, "session", name);
    }
    sn_resp_empty(c->resp, 204);
}

static void session_snapshot(struct sn_call *c, const char *name)
{
    char root[600], id[128];
    struct sn_recorder_snap_info info;
    int rc;

    json_t *sess = session_seen(c, name);
    if (!sess)
        return not_found(c, "session", name);
    json_decref(sess);
    if ((rc = snap_root(c, root, sizeof(root))) != 0)
        return (void)sn_resp_error(c->resp, 507, "ECA_IO", "cannot create %s: %s", root,
                                   strerror(-rc));
    rc = sn_recorder_snapshot_new(c->s->recorder, name, root, SN_RECORDER_SINCE_LAST, id,
                                  sizeof(id), &info);
    if (rc == -ENOENT)
        return not_found(c, "session", name); /* stopped meanwhile */
    if (rc != 0)
        return (void)sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "snapshot failed: %s",
                                   strerror(-rc));
    sn_resp_json(c->resp, 201,
                 json_pack("{s:s,s:s++,s:I,s:I,s:I,s:I}", "id", id, "path", root, "/", id, "events",
                           (json_int_t)info.events, "overwritten", (json_int_t)info.overwritten,
                           "torn", (json_int_t)info.torn, "dropped", (json_int_t)info.dropped));
}

static void snapshot_archive(struct sn_call *c, const char *id)
{
    char dir[800];
    struct stat st;
    unsigned char *tar;
    size_t len;

    snprintf(dir, sizeof(dir), "%s/" SN_RECORDER_SNAPDIR "/%s", c->s->datadir, id);
    if (sn_recorder_name_ok(id))
        fleet_bring(c, id);
    if (!sn_recorder_name_ok(id) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        !snapshot_seen(c, id))
        return not_found(c, "snapshot", id);
    int rc = sn_tar_dir(dir, &tar, &len);
    if (rc != 0)
        return (void)sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot archive %s: %s", id,
                                   strerror(-rc));
    sn_resp_bytes(c->resp, 200, "application/x-tar", tar, len);
}

static void snapshot_index(struct sn_call *c, const char *id)
{
    char path[800];
    if (sn_recorder_name_ok(id))
        fleet_bring(c, id);
    snprintf(path, sizeof(path), "%s/" SN_RECORDER_SNAPDIR "/%s/sonde-snapshot.json", c->s->datadir,
             id);
    json_t *x =
        sn_recorder_name_ok(id) && snapshot_seen(c, id) ? json_load_file(path, 0, NULL) : NULL;
    if (!json_is_object(x)) {
        json_decref(x);
        return not_found(c, "snapshot", id);
    }
    json_object_set_new(x, "id", json_string(id));
    sn_resp_json(c->resp, 200, x);
}

static void snapshot_delete(struct sn_call *c, const char *id)
{
    char root[600];

    snprintf(root, sizeof(root), "%s/" SN_RECORDER_SNAPDIR, c->s->datadir);
    if (!sn_recorder_name_ok(id) || !snapshot_seen(c, id) ||
        sn_recorder_snapshot_delete(root, id) != 0)
        return not_found(c, "snapshot", id);
    sn_resp_empty(c->resp, 204);
}

void sn_api_recorder(struct sn_call *c, const char *what, const char *arg)
{
    const char *m = c->req->method;

    if (strcmp(what, "index") == 0)
        index_get(c);
    else if (strcmp(what, "sessions") == 0)
        session_create(c);
    else if (strcmp(what, "session") == 0 && strcmp(m, "DELETE") == 0)
        session_delete(c, arg);
    else if (strcmp(what, "session") == 0)
        session_get(c, arg);
    else if (strcmp(what, "snapshot") == 0)
        session_snapshot(c, arg);
    else if (strcmp(what, "snapshots") == 0)
        sn_resp_json(c->resp, 200, snap_ids(c));
    else if (strcmp(what, "archive") == 0)
        snapshot_archive(c, arg);
    else if (strcmp(what, "snapshot-index") == 0)
        snapshot_index(c, arg);
    else if (strcmp(what, "snapshot-delete") == 0)
        snapshot_delete(c, arg);
    else if (strcmp(what, "recordings") == 0)
        recordings_list(c);
    else if (strcmp(what, "recording") == 0 && strcmp(m, "DELETE") == 0)
        recording_delete(c, arg);
    else if (strcmp(what, "recording") == 0)
        recording_get(c, arg);
    else if (strcmp(what, "recording-archive") == 0)
        recording_archive(c, arg);
    else
        sn_resp_empty(c->resp, 404);
}
