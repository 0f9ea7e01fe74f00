/*
 * The server's state: instrumentations, their definitions on disk, and the frames that feed
 * their datasets; see server.h.
 *
 * Files in the data directory:
 *   instrumentations.json   every definition and the next id of each scope, rewritten
 *                           (temporary file, fsync, rename) on every change, so a restart
 *                           finds the instrumentations and their ids as they were
 *   data/<id>.snds, data/<tenant>@<id>.snds
 *                           the dataset of a persist-data instrumentation (agg/dataset.h),
 *                           saved once a minute and at shutdown
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/catalog.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"
#include "serve/collector.h"
#include "serve/instn_def.h"
#include "serve/server.h"

struct sn_instn *sn_server_find(struct sn_server *s, const char *scope, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->insts[i]->id == id && strcmp(s->insts[i]->scope, scope) == 0)
            return s->insts[i];
    return NULL;
}

struct sn_instn *sn_server_find_key(struct sn_server *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->insts[i]->key, key) == 0)
            return s->insts[i];
    return NULL;
}

size_t sn_server_count(struct sn_server *s, const char *scope)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->insts[i]->scope, scope) == 0;
    return n;
}

void sn_instn_free(struct sn_instn *in)
{
    if (!in)
        return;
    json_decref(in->predicate);
    json_decref(in->decomposition);
    sn_ds_destroy(in->ds);
    free(in);
}

json_t *sn_instn_agent_def(const struct sn_server *s, const struct sn_instn *in)
{
    json_t *pred = json_incref(in->predicate);
    const struct sn_tenant *t = in->scope[0] ? sn_tenants_find(s->tenants, in->scope) : NULL;

    if (in->scope[0]) { /* the tenant's containers: (pred) and (container under any prefix) */
        json_t *any = json_array();
        for (size_t i = 0; t && i < t->ncgroups; i++)
            json_array_append_new(any, json_pack("{s:[s,s]}", "under", "container", t->cgroups[i]));
        json_t *scope = json_array_size(any) == 1 ? json_incref(json_array_get(any, 0))
                        : json_array_size(any) == 0
                            ? json_pack("{s:[s,s]}", "eq", "container", "/nonexistent-scope")
                            : json_pack("{s:O}", "or", any);
        json_decref(any);
        json_t *both = json_object_size(pred) ? json_pack("{s:[O,o]}", "and", pred, scope) : scope;
        json_decref(pred);
        pred = both;
    }
    return json_pack("{s:s,s:s,s:o,s:O}", "module", in->metric->module, "stat", in->metric->stat,
                     "predicate", pred, "decomposition", in->decomposition);
}

/* ------------------------------------------------------------------------------------------
 * Files
 */

static json_t *instn_def(const struct sn_instn *in)
{
    return json_pack("{s:s,s:I,s:s,s:s,s:O,s:O,s:I,s:I,s:I,s:b,s:I}", "scope", in->scope, "id",
                     (json_int_t)in->id, "module", in->metric->module, "stat", in->metric->stat,
                     "predicate", in->predicate, "decomposition", in->decomposition, "granularity",
                     (json_int_t)in->granularity, "retention-time", (json_int_t)in->retention,
                     "idle-max", (json_int_t)in->idle_max, "persist-data", in->persist, "crtime",
                     (json_int_t)in->crtime_ms);
}

int sn_server_save_defs(struct sn_server *s)
{
    json_t *arr = json_array(), *root;
    char path[600], *text;
    int rc;

    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(arr, instn_def(s->insts[i]));
    root =
        json_pack("{s:i,s:O,s:o}", "version", 1, "next_id", s->next_ids, "instrumentations", arr);
    text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
    json_decref(root);
    snprintf(path, sizeof(path), "%s/instrumentations.json", s->datadir);
    rc = text ? sn_file_write_atomic(path, text, strlen(text)) : -ENOMEM;
    free(text);
    if (rc < 0) {
        atomic_fetch_add(&s->c.save_failures, 1);
        if (!s->defs_unsaved) /* once, not once a second while the disk stays full */
            sn_log(SN_LOG_ERROR, "serve", "cannot save %s: %s", path, strerror(-rc));
        s->defs_unsaved = true;
    } else if (s->defs_unsaved) {
        sn_log(SN_LOG_INFO, "serve", "%s saved again", path);
        s->defs_unsaved = false;
    }
    return rc;
}

/* A failed save of the definitions as what add and remove return: -ENOSPC when space is
 * short, else -EIO; why says which and what was asked. */
static int unsaved(int rc, const char *what, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s: the definitions file cannot be written (%s); nothing was changed",
             what, strerror(-rc));
    return rc == -ENOSPC || rc == -EDQUOT ? -ENOSPC : -EIO;
}

static void data_path(const struct sn_server *s, const struct sn_instn *in, char *out, size_t len)
{
    /* tenant names cannot hold '@': the operator's files and a tenant's never meet */
    if (in->scope[0])
        snprintf(out, len, "%s/data/%s@%" PRIu64 ".snds", s->datadir, in->scope, in->id);
    else
        snprintf(out, len, "%s/data/%" PRIu64 ".snds", s->datadir, in->id);
}

void sn_server_unpersist(struct sn_server *s, struct sn_instn *in)
{
    char path[700];
    data_path(s, in, path, sizeof(path));
    unlink(path);
}

/* Saves the datasets of persist-data instrumentations. Call with the lock held (read). */
int sn_server_save_data(struct sn_server *s)
{
    int first = 0;

    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        unsigned char *buf;
        size_t len;
        char path[700];
        int rc;
        if (!in->persist)
            continue;
        data_path(s, in, path, sizeof(path));
        if ((rc = sn_ds_save(in->ds, &buf, &len)) == 0) {
            rc = sn_file_write_atomic(path, buf, len);
            free(buf);
        }
        if (rc < 0) {
            atomic_fetch_add(&s->c.save_failures, 1);
            sn_log(SN_LOG_ERROR, "serve", "cannot save %s: %s", path, strerror(-rc));
            if (!first)
                first = rc;
        }
    }
    return first;
}

int sn_server_save_final(struct sn_server *s)
{
    int rc, drc = 0;

    pthread_rwlock_wrlock(&s->lock);
    rc = sn_server_save_data(s);
    if (s->defs_unsaved)
        drc = sn_server_save_defs(s);
    pthread_rwlock_unlock(&s->lock);
    return rc ? rc : drc;
}

static void load_data(struct sn_server *s, struct sn_instn *in)
{
    char path[700];
    struct stat st;
    unsigned char *buf = NULL;
    FILE *f;
    int rc = 0;

    data_path(s, in, path, sizeof(path));
    if (!(f = fopen(path, "rb"))) {
        if (errno != ENOENT)
            sn_log(SN_LOG_WARN, "serve", "%s: not loaded: %s", path, strerror(errno));
        return;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size == 0) /* e.g. a crash between create and write on some filesystems */
        sn_log(SN_LOG_WARN, "serve", "%s: empty, ignored (the instrumentation starts without data)",
               path);
    else if (!(buf = malloc((size_t)st.st_size)))
        rc = -ENOMEM;
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = -EIO;
    else
        rc = sn_ds_load(in->ds, buf, (size_t)st.st_size, sn_now());
    if (rc < 0)
        sn_log(SN_LOG_WARN, "serve", "%s: not loaded: %s", path, sn_strerror(rc));
    free(buf);
    fclose(f);
}

static struct sn_dataset *new_dataset(const struct sn_server *s, const struct sn_instn *in)
{
    struct sn_ds_opts o = {
        .arity = in->arity == SN_ARITY_SCALAR     ? SN_WIRE_SCALAR
                 : in->arity == SN_ARITY_DISCRETE ? SN_WIRE_DISCRETE
                 : in->keyf                       ? SN_WIRE_NUMERIC_BY_KEY
                                                  : SN_WIRE_NUMERIC,
        .granularity = in->granularity,
        .retention = in->retention,
        .point = in->metric->point,
        .key_cap = s->key_cap,
    };
    return sn_ds_create(&o);
}

/* Appends in (lock held). */
static int append(struct sn_server *s, struct sn_instn *in)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct sn_instn **p = realloc(s->insts, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        s->insts = p;
        s->cap = cap;
    }
    s->insts[s->n++] = in;
    return 0;
}

static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id,
                                     bool force, int *save_rc);

/* Asks the local agent to run in; records why not. Returns 0, -ENOTSUP when the agent cannot
 * run it here for want of BPF (it stands, not running locally), or -EINVAL / -ENOMEM. Lock
 * not held. */
static int start_local(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen)
{
    json_t *def;
    int rc;

    if (!s->collector)
        return -ENOTSUP;
    if (!(def = sn_instn_agent_def(s, in))) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    rc = sn_collector_enable(s->collector, in->key, def, why, whylen);
    json_decref(def);
    return rc;
}

int sn_server_add(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen)
{
    json_t *had;
    json_int_t next;
    int rc;

    in->ds = new_dataset(s, in);
    if (!in->ds) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    pthread_rwlock_wrlock(&s->lock);
    if (in->scope[0] && sn_server_count(s, in->scope) >= SN_TENANT_QUOTA) {
        pthread_rwlock_unlock(&s->lock);
        return -EDQUOT;
    }
    had = json_incref(json_object_get(s->next_ids, in->scope)); /* to undo */
    next = json_integer_value(had);
    in->id = next > 0 ? (uint64_t)next : 1;
    if (in->id > (uint64_t)SN_INSTN_ID_MAX) {
        pthread_rwlock_unlock(&s->lock);
        json_decref(had);
        snprintf(why, whylen, "no instrumentation ids left in this scope (the largest is %lld)",
                 SN_INSTN_ID_MAX);
        return -EOVERFLOW;
    }
    if (in->scope[0])
        snprintf(in->key, sizeof(in->key), "%s/%" PRIu64, in->scope, in->id);
    else
        snprintf(in->key, sizeof(in->key), "%" PRIu64, in->id);
    json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
    rc = append(s, in);
    if (rc == 0 && (rc = sn_server_save_defs(s)) < 0) {
        s->n--; /* undone: neither the instrumentation nor its id was given out */
        rc = unsaved(rc, "cannot create the instrumentation", why, whylen);
    } else if (rc < 0) {
        snprintf(why, whylen, "out of memory");
    }
    if (rc < 0) {
        if (had)
            json_object_set(s->next_ids, in->scope, had);
        else
            json_object_del(s->next_ids, in->scope);
    }
    json_decref(had);
    pthread_rwlock_unlock(&s->lock);
    if (rc < 0)
        return rc;
    rc = start_local(s, in, why, whylen);
    /* this host cannot run it (e.g. a USDT probe it lacks): refuse it; without BPF here it
     * stands, not running locally */
    if (rc < 0 && rc != -ENOTSUP) {
        int src;
        /* forced: the refusal stands even when the file cannot say so yet (the tick saves
         * again; defs_unsaved) */
        if (unlink_instn(s, in->scope, in->id, true, &src) != in) /* deleted meanwhile */
            snprintf(why, whylen, "deleted while being created");
        sn_ds_destroy(in->ds);
        in->ds = NULL;
        return -EINVAL;
    }
    pthread_rwlock_wrlock(&s->lock);
    in->local = rc == 0;
    in->local_since_ms = sn_now_ms();
    if (in->local)
        sn_ds_touch(in->ds, s->host, sn_now());
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

/* Takes the instrumentation out of the list and saves the definitions; the caller owns it
 * then. NULL when there is none, or (unless force) when the save failed: it is put back where
 * it was and *save_rc says why. */
static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id,
                                     bool force, int *save_rc)
{
    struct sn_instn *in = NULL;
    size_t i;

    *save_rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    for (i = 0; i < s->n; i++)
        if (s->insts[i]->id == id && strcmp(s->insts[i]->scope, scope) == 0) {
            in = s->insts[i];
            memmove(&s->insts[i], &s->insts[i + 1], (s->n - i - 1) * sizeof(*s->insts));
            s->n--;
            break;
        }
    if (in && (*save_rc = sn_server_save_defs(s)) < 0 && !force) {
        memmove(&s->insts[i + 1], &s->insts[i], (s->n - i) * sizeof(*s->insts));
        s->insts[i] = in; /* the slot is there: n was one more a moment ago */
        s->n++;
        in = NULL;
    }
    if (in && in->persist)
        sn_server_unpersist(s, in);
    pthread_rwlock_unlock(&s->lock);
    return in;
}

int sn_server_remove(struct sn_server *s, const char *scope, uint64_t id, char *why, size_t whylen)
{
    int save_rc;
    struct sn_instn *in = unlink_instn(s, scope, id, false, &save_rc);

    if (!in && save_rc < 0)
        return unsaved(save_rc, "cannot delete the instrumentation", why, whylen);
    if (!in) {
        snprintf(why, whylen, "no such instrumentation");
        return -ENOENT;
    }
    if (s->collector)
        sn_collector_disable(s->collector, in->key);
    /* readers hold the lock while they use one, and frames being merged hold a reference
     * to its dataset (freed with the last of them): nobody can reach it any more */
    sn_instn_free(in);
    return 0;
}

static int ingest(struct sn_server *s, const struct sn_wire_frame *f, int64_t now,
                  struct sn_ds_fold *fold, bool try)
{
    struct sn_dataset *ds = NULL;
    struct sn_ds_fold fd;
    int rc;

    /* the lock only to find the dataset: a reference keeps it alive if it is deleted while
     * the frame is merged, and the merge takes the lock itself, only to publish */
    pthread_rwlock_rdlock(&s->lock);
    struct sn_instn *in = sn_server_find_key(s, f->id);
    if (in)
        ds = sn_ds_ref(in->ds);
    pthread_rwlock_unlock(&s->lock);
    if (fold)
        *fold = (struct sn_ds_fold){0, 0};
    if (!ds) {
        atomic_fetch_add(&s->c.frames_unknown, 1);
        return -ENOENT;
    }
    rc = (try ? sn_ds_add_shared_try : sn_ds_add_shared)(ds, f, now, &s->lock, &fd);
    sn_ds_destroy(ds); /* the reference */
    switch (rc) {
    case SN_DS_ADDED:
        atomic_fetch_add(&s->c.frames_in, 1);
        atomic_fetch_add(&s->c.events_over_cap, f->over_cap);
        atomic_fetch_add(&s->c.events_map_full, f->map_full);
        atomic_fetch_add(&s->c.keys_folded, fd.keys);
        atomic_fetch_add(&s->c.events_folded, fd.events);
        if (fold)
            *fold = fd;
        break;
    case SN_DS_LATE:
        atomic_fetch_add(&s->c.frames_late, 1);
        break;
    case SN_DS_FUTURE:
        atomic_fetch_add(&s->c.frames_future, 1);
        break;
    case SN_DS_DUPLICATE:
        atomic_fetch_add(&s->c.frames_duplicate, 1);
        break;
    case SN_DS_MISMATCH:
        atomic_fetch_add(&s->c.frames_mismatch, 1);
        break;
    }
    return rc;
}

int sn_server_ingest(struct sn_server *s, const struct sn_wire_frame *f, int64_t now,
                     struct sn_ds_fold *fold)
{
    return ingest(s, f, now, fold, false);
}

int sn_server_ingest_try(struct sn_server *s, const struct sn_wire_frame *f, int64_t now,
                         struct sn_ds_fold *fold)
{
    return ingest(s, f, now, fold, true);
}

/* ------------------------------------------------------------------------------------------
 * Start-up: the definitions file
 */

/* Removes the *.tmp files of dir that an interrupted sn_file_write_atomic left behind. */
static void remove_tmp(const char *dir)
{
    char path[1200];
    struct dirent *e;
    DIR *d = opendir(dir);

    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        struct stat st;
        if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlink(path) == 0)
            sn_log(SN_LOG_INFO, "serve", "removed %s, left by an interrupted save", path);
        else
            sn_log(SN_LOG_WARN, "serve", "cannot remove %s: %s", path, strerror(errno));
    }
    if (d)
        closedir(d);
}

/* The whole file at path into a new NUL-terminated buffer (*len bytes). -errno. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    int rc = 0;

    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        rc = -ENOMEM;
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = -EIO;
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

/* Definition v of the file into a new instrumentation, checked as a create through the API is
 * (serve/instn_def.h), plus what only a file can get wrong: the id, a duplicate, the quota.
 * NULL with why when refused. */
static struct sn_instn *instn_of_def(struct sn_server *s, const json_t *v, char *why, size_t whylen)
{
    const json_t *scope = json_object_get(v, "scope"), *id = json_object_get(v, "id");
    const json_t *crtime = json_object_get(v, "crtime");
    struct sn_instn *in;

    if (!json_is_object(v)) {
        snprintf(why, whylen, "not an object");
        return NULL;
    }
    if ((scope && !json_is_string(scope)) ||
        (scope && (json_string_length(scope) >= SN_SCOPE_MAX ||
                   !sn_instn_scope_ok(json_string_value(scope))))) {
        snprintf(why, whylen, "\"scope\" is not a tenant's name");
        return NULL;
    }
    if (!json_is_integer(id) || json_integer_value(id) < 1 ||
        json_integer_value(id) > SN_INSTN_ID_MAX) {
        snprintf(why, whylen, "\"id\" is not an integer from 1 to %lld", SN_INSTN_ID_MAX);
        return NULL;
    }
    if (crtime && (!json_is_integer(crtime) || json_integer_value(crtime) < 0)) {
        snprintf(why, whylen, "\"crtime\" is not a time in milliseconds");
        return NULL;
    }
    if (!(in = calloc(1, sizeof(*in)))) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    snprintf(in->scope, sizeof(in->scope), "%s", scope ? json_string_value(scope) : "");
    in->id = (uint64_t)json_integer_value(id);
    if (in->scope[0])
        snprintf(in->key, sizeof(in->key), "%s/%" PRIu64, in->scope, in->id);
    else
        snprintf(in->key, sizeof(in->key), "%" PRIu64, in->id);
    if (sn_server_find(s, in->scope, in->id)) {
        snprintf(why, whylen, "a second definition of this id");
        free(in);
        return NULL;
    }
    if (in->scope[0] && sn_server_count(s, in->scope) >= SN_TENANT_QUOTA) {
        snprintf(why, whylen, "over the tenant's quota of %d", SN_TENANT_QUOTA);
        free(in);
        return NULL;
    }
    in->granularity = 1;
    in->retention = SN_DEFAULT_RETAIN;
    in->idle_max = SN_DEFAULT_IDLE;
    if (sn_instn_from_props(s, v, in, why, whylen) < 0) {
        free(in);
        return NULL;
    }
    in->crtime_ms = json_integer_value(crtime);
    atomic_store(&in->last_access, sn_now()); /* idle clocks restart with the server */
    if (in->scope[0] && s->tenants && !sn_tenants_find(s->tenants, in->scope))
        sn_log(SN_LOG_WARN, "serve",
               "instrumentation %s: tenant \"%s\" is not in the tenants file (kept, unreachable)",
               in->key, in->scope);
    return in;
}

/* Keeps text (the definitions file as read) as PATH.rejected-<UTC time>. */
static int keep_rejected(const char *path, const char *text, size_t len, int nrefused)
{
    char copy[700], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(copy, sizeof(copy), "%s.rejected-%s", path, stamp);
    rc = sn_file_write_atomic(copy, text, len);
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, "serve",
               "%s: %d refused definition(s), and no copy can be kept (%s: %s): not starting, "
               "to lose nothing",
               path, nrefused, copy, strerror(-rc));
        return rc;
    }
    sn_log(SN_LOG_WARN, "serve",
           "%s: %d definition(s) refused and left out; the file as it was is kept as %s", path,
           nrefused, copy);
    return 0;
}

int sn_server_load_defs(struct sn_server *s)
{
    char path[600], why[512], sub[600];
    json_error_t jerr;
    json_t *root, *arr, *next_ids, *v;
    const char *scope;
    char *text = NULL;
    size_t i, len = 0;
    int nrefused = 0, rc;

    remove_tmp(s->datadir);
    snprintf(sub, sizeof(sub), "%s/data", s->datadir);
    remove_tmp(sub);
    snprintf(sub, sizeof(sub), "%s/dashboards", s->datadir);
    remove_tmp(sub);
    snprintf(path, sizeof(path), "%s/instrumentations.json", s->datadir);
    if ((rc = read_file(path, &text, &len)) == -ENOENT)
        return 0;
    if (rc < 0) {
        sn_log(SN_LOG_ERROR, "serve", "%s: %s", path, strerror(-rc));
        return -EINVAL;
    }
    root = json_loadb(text, len, 0, &jerr);
    arr = json_object_get(root, "instrumentations");
    next_ids = json_object_get(root, "next_id");
    if (!root || !json_is_array(arr) || (next_ids && !json_is_object(next_ids))) {
        if (!root)
            sn_log(SN_LOG_ERROR, "serve", "%s:%d: %s", path, jerr.line, jerr.text);
        else
            sn_log(SN_LOG_ERROR, "serve",
                   "%s: not an object with an array \"instrumentations\" and an object "
                   "\"next_id\"",
                   path);
        json_decref(root);
        free(text);
        return -EINVAL;
    }
    json_array_foreach(arr, i, v)
    {
        struct sn_instn *in = instn_of_def(s, v, why, sizeof(why));
        if (!in) {
            char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation #%zu refused: %s: %.300s", path, i,
                   why, d ? d : "?");
            free(d);
            nrefused++;
            continue;
        }
        in->ds = new_dataset(s, in);
        if (!in->ds || append(s, in) < 0) {
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation %s: out of memory", path, in->key);
            sn_instn_free(in);
            nrefused++;
            continue;
        }
        if (in->persist)
            load_data(s, in);
    }
    /* next_id: the file's where it is valid, and past every id in use (never reused) */
    json_object_foreach(next_ids, scope, v)
    {
        if (!sn_instn_scope_ok(scope) || strlen(scope) >= SN_SCOPE_MAX || !json_is_integer(v) ||
            json_integer_value(v) < 1 || json_integer_value(v) > SN_INSTN_ID_MAX + 1) {
            char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            sn_log(SN_LOG_ERROR, "serve", "%s: next_id of scope \"%.64s\" refused: %.64s", path,
                   scope, d ? d : "?");
            free(d);
            nrefused++;
            continue;
        }
        json_object_set(s->next_ids, scope, v);
    }
    for (i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        json_int_t next = json_integer_value(json_object_get(s->next_ids, in->scope));
        if (next <= (json_int_t)in->id)
            json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
    }
    rc = 0;
    if (nrefused && (rc = keep_rejected(path, text, len, nrefused)) == 0 &&
        sn_server_save_defs(s) < 0)
        rc = 0; /* the copy is kept; the tick writes the file once it can (defs_unsaved) */
    json_decref(root);
    free(text);
    if (rc < 0)
        return rc;
    sn_log(SN_LOG_INFO, "serve", "%zu instrumentation(s) restored from %s", s->n, path);
    return 0;
}

void sn_server_start_local_all(struct sn_server *s)
{
    char why[512];
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        int rc = start_local(s, in, why, sizeof(why));
        if (rc < 0 && rc != -ENOTSUP) {
            snprintf(in->local_error, sizeof(in->local_error), "not running on %.64s: %.160s",
                     s->host, why);
            sn_log(SN_LOG_WARN, "serve", "instrumentation %s: %s", in->key, in->local_error);
            continue;
        }
        in->local = rc == 0;
        in->local_since_ms = sn_now_ms();
        if (in->local)
            sn_ds_touch(in->ds, s->host, sn_now());
    }
}

/* ------------------------------------------------------------------------------------------
 * The tick: expiry, idle reaping, saving
 */

void sn_server_tick(struct sn_server *s, int64_t now, bool save)
{
    uint64_t idle[64];
    char scopes[64][SN_SCOPE_MAX], why[512];
    size_t nidle = 0;

    struct sn_ds_dead *dead = NULL; /* expired slots, freed after the lock */

    pthread_rwlock_wrlock(&s->lock);
    if (s->defs_unsaved) /* a change that could not be undone is still to be written */
        sn_server_save_defs(s);
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        sn_ds_expire_defer(in->ds, now, &dead);
        if (in->idle_max && now - atomic_load(&in->last_access) > (int64_t)in->idle_max &&
            nidle < 64) {
            idle[nidle] = in->id;
            snprintf(scopes[nidle++], SN_SCOPE_MAX, "%s", in->scope);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    sn_ds_dead_free(dead);
    for (size_t i = 0; i < nidle; i++) /* a failed save keeps it: reaped on a later tick */
        if (sn_server_remove(s, scopes[i], idle[i], why, sizeof(why)) == 0) {
            atomic_fetch_add(&s->c.reaped, 1);
            sn_log(SN_LOG_INFO, "serve", "instrumentation %s%s%" PRIu64 " reaped: idle", scopes[i],
                   scopes[i][0] ? "/" : "", idle[i]);
        }
    if (save) {
        pthread_rwlock_rdlock(&s->lock);
        sn_server_save_data(s);
        pthread_rwlock_unlock(&s->lock);
    }
}
