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
#include "core/file.h"
#include "core/log.h"
#include "serve/collector.h"
#include "serve/server.h"

int64_t sn_now(void)
{
    return (int64_t)time(NULL);
}

int64_t sn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

int sn_instn_compile(const struct sn_server *s, const struct sn_instn *in, struct sn_inst *out,
                     char *why, size_t whylen)
{
    json_t *body, *pred = json_incref(in->predicate);
    const struct sn_tenant *t = in->scope[0] ? sn_tenants_find(s->tenants, in->scope) : NULL;
    int rc;

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
    body = json_pack("{s:s,s:s,s:o,s:O}", "module", in->metric->module, "stat", in->metric->stat,
                     "predicate", pred, "decomposition", in->decomposition);
    if (!body)
        return -ENOMEM;
    rc = sn_inst_from_json(body, in->key, s->host, SN_DEFAULT_KEY_CAP, out, why, whylen);
    json_decref(body);
    return rc;
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
    if (!text)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/instrumentations.json", s->datadir);
    rc = sn_file_write_atomic(path, text, strlen(text));
    free(text);
    if (rc < 0)
        sn_log(SN_LOG_ERROR, "serve", "cannot save %s: %s", path, strerror(-rc));
    return rc;
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
void sn_server_save_data(struct sn_server *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        unsigned char *buf;
        size_t len;
        char path[700];
        if (!in->persist || sn_ds_save(in->ds, &buf, &len) < 0)
            continue;
        data_path(s, in, path, sizeof(path));
        int rc = sn_file_write_atomic(path, buf, len);
        if (rc < 0)
            sn_log(SN_LOG_ERROR, "serve", "cannot save %s: %s", path, strerror(-rc));
        free(buf);
    }
}

static void load_data(struct sn_server *s, struct sn_instn *in)
{
    char path[700];
    FILE *f;
    long len;
    unsigned char *buf;

    data_path(s, in, path, sizeof(path));
    if (!(f = fopen(path, "rb")))
        return;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    buf = len > 0 ? malloc((size_t)len) : NULL;
    if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        int rc = sn_ds_load(in->ds, buf, (size_t)len, sn_now());
        if (rc < 0)
            sn_log(SN_LOG_WARN, "serve", "%s: not loaded: %s", path, strerror(-rc));
    }
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

static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id);

/* Asks the local agent to run in; records why not. Lock not held. */
static int start_local(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen)
{
    struct sn_inst ai;
    int rc;

    if (!s->collector)
        return 0;
    rc = sn_instn_compile(s, in, &ai, why, whylen);
    if (rc == 0)
        rc = sn_collector_enable(s->collector, &ai, why, whylen);
    return rc;
}

int sn_server_add(struct sn_server *s, struct sn_instn *in, char *why, size_t whylen)
{
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
    next = json_integer_value(json_object_get(s->next_ids, in->scope));
    in->id = next > 0 ? (uint64_t)next : 1;
    if (in->scope[0])
        snprintf(in->key, sizeof(in->key), "%s/%" PRIu64, in->scope, in->id);
    else
        snprintf(in->key, sizeof(in->key), "%" PRIu64, in->id);
    json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
    rc = append(s, in);
    if (rc == 0 && (rc = sn_server_save_defs(s)) < 0)
        s->n--;
    pthread_rwlock_unlock(&s->lock);
    if (rc < 0) {
        snprintf(why, whylen, "cannot save the instrumentation: %s", strerror(-rc));
        return rc;
    }
    rc = start_local(s, in, why, whylen);
    if (rc < 0) { /* this host cannot run it (e.g. a USDT probe it lacks): refuse it */
        if (unlink_instn(s, in->scope, in->id) != in) /* deleted meanwhile: it is gone */
            snprintf(why, whylen, "deleted while being created");
        sn_ds_destroy(in->ds);
        in->ds = NULL;
        return -EINVAL;
    }
    pthread_rwlock_wrlock(&s->lock);
    in->local = s->collector != NULL;
    in->local_since_ms = sn_now_ms();
    if (in->local)
        sn_ds_touch(in->ds, s->host, sn_now());
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

/* Takes the instrumentation out of the list and saves the definitions; the caller owns it
 * then. NULL when there is none. */
static struct sn_instn *unlink_instn(struct sn_server *s, const char *scope, uint64_t id)
{
    struct sn_instn *in = NULL;

    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++)
        if (s->insts[i]->id == id && strcmp(s->insts[i]->scope, scope) == 0) {
            in = s->insts[i];
            memmove(&s->insts[i], &s->insts[i + 1], (s->n - i - 1) * sizeof(*s->insts));
            s->n--;
            break;
        }
    if (in) {
        sn_server_save_defs(s);
        if (in->persist)
            sn_server_unpersist(s, in);
    }
    pthread_rwlock_unlock(&s->lock);
    return in;
}

int sn_server_remove(struct sn_server *s, const char *scope, uint64_t id)
{
    struct sn_instn *in = unlink_instn(s, scope, id);

    if (!in)
        return -ENOENT;
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

int sn_server_load_defs(struct sn_server *s)
{
    char path[600], why[512];
    json_error_t jerr;
    json_t *root, *arr, *v;
    size_t i;

    snprintf(path, sizeof(path), "%s/instrumentations.json", s->datadir);
    if (access(path, F_OK) != 0)
        return 0;
    root = json_load_file(path, 0, &jerr);
    if (!root) {
        sn_log(SN_LOG_ERROR, "serve", "%s:%d: %s", path, jerr.line, jerr.text);
        return -EINVAL;
    }
    if (json_is_object(json_object_get(root, "next_id")))
        json_object_update(s->next_ids, json_object_get(root, "next_id"));
    arr = json_object_get(root, "instrumentations");
    json_array_foreach(arr, i, v)
    {
        struct sn_instn *in = calloc(1, sizeof(*in));
        struct sn_inst probe;
        const char *scope = json_string_value(json_object_get(v, "scope"));
        if (!in)
            break;
        snprintf(in->scope, sizeof(in->scope), "%s", scope ? scope : "");
        in->id = (uint64_t)json_integer_value(json_object_get(v, "id"));
        if (in->scope[0])
            snprintf(in->key, sizeof(in->key), "%s/%" PRIu64, in->scope, in->id);
        else
            snprintf(in->key, sizeof(in->key), "%" PRIu64, in->id);
        if (sn_inst_from_json(v, in->key, s->host, SN_DEFAULT_KEY_CAP, &probe, why, sizeof(why)) <
                0 ||
            in->id == 0) {
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation %s skipped: %s", path, in->key, why);
            free(in);
            continue;
        }
        in->metric = probe.metric;
        in->keyf = probe.key;
        in->numf = probe.num;
        in->arity = probe.arity;
        in->predicate = json_incref(json_object_get(v, "predicate"));
        in->decomposition = json_incref(json_object_get(v, "decomposition"));
        in->granularity = (uint32_t)json_integer_value(json_object_get(v, "granularity"));
        in->retention = (uint32_t)json_integer_value(json_object_get(v, "retention-time"));
        in->idle_max = (uint32_t)json_integer_value(json_object_get(v, "idle-max"));
        in->persist = json_is_true(json_object_get(v, "persist-data"));
        in->crtime_ms = json_integer_value(json_object_get(v, "crtime"));
        atomic_store(&in->last_access, sn_now()); /* idle clocks restart with the server */
        if (!in->predicate)
            in->predicate = json_object();
        if (!in->decomposition)
            in->decomposition = json_array();
        in->ds = new_dataset(s, in);
        if (!in->ds || append(s, in) < 0) {
            sn_instn_free(in);
            continue;
        }
        json_int_t next = json_integer_value(json_object_get(s->next_ids, in->scope));
        if (next <= (json_int_t)in->id)
            json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
        if (in->persist)
            load_data(s, in);
    }
    json_decref(root);
    sn_log(SN_LOG_INFO, "serve", "%zu instrumentation(s) restored from %s", s->n, path);
    return 0;
}

void sn_server_start_local_all(struct sn_server *s)
{
    char why[512];
    for (size_t i = 0; i < s->n; i++) {
        struct sn_instn *in = s->insts[i];
        if (start_local(s, in, why, sizeof(why)) < 0) {
            snprintf(in->local_error, sizeof(in->local_error), "not running on %.64s: %.160s",
                     s->host, why);
            sn_log(SN_LOG_WARN, "serve", "instrumentation %s: %s", in->key, in->local_error);
            continue;
        }
        in->local = s->collector != NULL;
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
    char scopes[64][SN_SCOPE_MAX];
    size_t nidle = 0;

    struct sn_ds_dead *dead = NULL; /* expired slots, freed after the lock */

    pthread_rwlock_wrlock(&s->lock);
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
    for (size_t i = 0; i < nidle; i++)
        if (sn_server_remove(s, scopes[i], idle[i]) == 0) {
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
