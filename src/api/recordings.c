/*
 * The flight recorder's API (docs/api.md, "Recorder"; operator only, at /ca alone): sessions
 * started and stopped by name, manual snapshots written under the server's data directory
 * (DATA/snapshots/<id>/, never a path the client chooses) and fetched as one ustar archive.
 * The work is rec/recorder.h's; this file parses, checks and answers.
 *
 *   GET    /ca/recorder                         {sessions: [...], snapshots: [ids]}
 *   POST   /ca/recorder/sessions                {"name", "events": [...], "size-per-cpu",
 *                                                "live": bool} -> 201
 *   GET    /ca/recorder/sessions/:name          the session
 *   DELETE /ca/recorder/sessions/:name          stops it -> 204
 *   POST   /ca/recorder/sessions/:name/snapshot -> 201 {id, path, events, overwritten, torn,
 *                                                       dropped}
 *   GET    /ca/recorder/snapshots               [ids]
 *   GET    /ca/recorder/snapshots/:name/archive application/x-tar of the snapshot's directory
 *   DELETE /ca/recorder/snapshots/:name         -> 204
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "core/grow.h"
#include "core/tar.h"
#include "http/request.h"
#include "rec/recorder.h"
#include "rec/session.h"

#define DEFAULT_SIZE (4u << 20)

static void not_found(struct sn_call *c, const char *what, const char *name)
{
    sn_resp_error(c->resp, 404, "ResourceNotFound", "no such %s \"%.64s\"", what, name);
}

/* DATA/snapshots into buf; created when absent (mkdir). */
static int snap_root(struct sn_call *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/snapshots", c->s->datadir);
    return mkdir(buf, 0700) == 0 || errno == EEXIST ? 0 : -errno;
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

    snprintf(root, sizeof(root), "%s/snapshots", c->s->datadir);
    if (!(d = opendir(root)))
        return a;
    for (struct dirent *e; (e = readdir(d));) {
        if (!sn_recorder_name_ok(e->d_name))
            continue;
        char **p = sn_grow(names, &cap, n + 1, sizeof(*names));
        if (!p)
            break;
        names = p;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_string(names[i]));
        free(names[i]);
    }
    free(names);
    return a;
}

static void index_get(struct sn_call *c)
{
    json_t *sess = sn_recorder_json(c->s->recorder, NULL);
    sn_resp_json(
        c->resp, 200,
        json_pack("{s:o,s:o}", "sessions", sess ? sess : json_array(), "snapshots", snap_ids(c)));
}

static void session_create(struct sn_call *c)
{
    json_error_t jerr;
    char why[256];
    unsigned groups = 0;
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
                                       strcmp(key, "size-per-cpu") && strcmp(key, "live"))
    {
        CA_INVAL(c, "unknown member \"%.64s\" (this server takes name, events, size-per-cpu, live)",
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
        CA_INVAL(c, "\"events\" must be a non-empty list of event groups (syscalls, sched)");
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
    int rc = sn_recorder_start(c->s->recorder, name, groups, size, why, sizeof(why));
    if (rc == 0 && json_is_true(live) &&
        (rc = sn_recorder_live(c->s->recorder, name, why, sizeof(why))) != 0) {
        sn_recorder_stop(c->s->recorder, name); /* all or nothing */
        rc = rc == -ENOTSUP ? -EINVAL : rc;
    }
    if (rc == -EINVAL || rc == -EEXIST || rc == -ENOSPC || rc == -E2BIG)
        CA_INVAL(c, "%s", why);
    else if (rc != 0)
        sn_resp_error(c->resp, 503, "ECA_NORESOURCE", "%s", why);
    else
        sn_resp_json(c->resp, 201, sn_recorder_json(c->s->recorder, name));
out:
    json_decref(j);
}

static void session_get(struct sn_call *c, const char *name)
{
    json_t *j = sn_recorder_json(c->s->recorder, name);
    if (!j)
        return not_found(c, "session", name);
    sn_resp_json(c->resp, 200, j);
}

static void session_delete(struct sn_call *c, const char *name)
{
    if (sn_recorder_stop(c->s->recorder, name) != 0)
        return not_found(c, "session", name);
    sn_resp_empty(c->resp, 204);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void session_snapshot(struct sn_call *c, const char *name)
{
    static _Atomic unsigned seq;
    char root[600], id[128], tmp[800], dir[800], stamp[32];
    struct sn_recorder_snap_info info;
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    json_t *sess = sn_recorder_json(c->s->recorder, name);
    if (!sess)
        return not_found(c, "session", name);
    json_decref(sess);
    if ((rc = snap_root(c, root, sizeof(root))) != 0)
        return (void)sn_resp_error(c->resp, 507, "ECA_IO", "cannot create %s: %s", root,
                                   strerror(-rc));
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    do { /* a name no other snapshot has */
        snprintf(id, sizeof(id), "%.63s-%s-%u", name, stamp, ++seq);
        snprintf(dir, sizeof(dir), "%s/%s", root, id);
    } while (access(dir, F_OK) == 0);
    snprintf(tmp, sizeof(tmp), "%s/.%s.part", root, id); /* hidden: not listed, not served */
    rc = sn_recorder_snapshot(c->s->recorder, name, tmp, &info);
    if (rc == 0 && rename(tmp, dir) != 0)
        rc = -errno;
    if (rc == -ENOENT) {
        rm_tree(tmp);
        return not_found(c, "session", name); /* stopped meanwhile */
    }
    if (rc != 0) {
        rm_tree(tmp);
        return (void)sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "snapshot failed: %s",
                                   strerror(-rc));
    }
    sn_resp_json(c->resp, 201,
                 json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "id", id, "path", dir, "events",
                           (json_int_t)info.events, "overwritten", (json_int_t)info.overwritten,
                           "torn", (json_int_t)info.torn, "dropped", (json_int_t)info.dropped));
}

static void snapshot_archive(struct sn_call *c, const char *id)
{
    char dir[800];
    struct stat st;
    unsigned char *tar;
    size_t len;

    snprintf(dir, sizeof(dir), "%s/snapshots/%s", c->s->datadir, id);
    if (!sn_recorder_name_ok(id) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return not_found(c, "snapshot", id);
    int rc = sn_tar_dir(dir, &tar, &len);
    if (rc != 0)
        return (void)sn_resp_error(c->resp, 500, "ECA_UNKNOWN", "cannot archive %s: %s", id,
                                   strerror(-rc));
    sn_resp_bytes(c->resp, 200, "application/x-tar", tar, len);
}

static void snapshot_delete(struct sn_call *c, const char *id)
{
    char dir[800];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/snapshots/%s", c->s->datadir, id);
    if (!sn_recorder_name_ok(id) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return not_found(c, "snapshot", id);
    rm_tree(dir);
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
    else if (strcmp(what, "snapshot-delete") == 0)
        snapshot_delete(c, arg);
    else
        sn_resp_empty(c->resp, 404);
}
