/*
 * The definitions: every instrumentation's definition and the next id of each scope, as one
 * JSON document (docs/formats.md) kept in the store under "definitions" and rewritten in one
 * transaction on every change, so that a restart finds the instrumentations and their ids as
 * they were; read back at start with every definition checked as a create is (serve/server.h:
 * sn_server_save_defs(), sn_server_load_defs()). An older version's instrumentations.json is
 * read when the store has no definitions yet (the first start after an upgrade), written into
 * the store, and left alone.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "serve/instn_def.h"
#include "serve/server.h"

json_t *sn_instn_def_json(const struct sn_instn *in)
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
        json_array_append_new(arr, sn_instn_def_json(s->insts[i]));
    root =
        json_pack("{s:i,s:O,s:o}", "version", 1, "next_id", s->next_ids, "instrumentations", arr);
    text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
    json_decref(root);
    snprintf(path, sizeof(path), "%s/store (definitions)", s->datadir);
    rc = text ? sn_store_meta_put(s->store, "definitions", text, strlen(text)) : -ENOMEM;
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

/* ---- Start-up ---------------------------------------------------------------------- */

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
    time_t now = (time_t)sn_now();
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
    /* the store's, or (once, after an upgrade) the older version's file */
    bool migrate = false;
    snprintf(path, sizeof(path), "%s/store (definitions)", s->datadir);
    if ((rc = sn_store_meta_get(s->store, "definitions", &text, &len)) == -ENOENT) {
        snprintf(path, sizeof(path), "%s/instrumentations.json", s->datadir);
        if ((rc = read_file(path, &text, &len)) == -ENOENT)
            return 0;
        migrate = true;
    }
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
        in->ds = sn_server_new_dataset(s, in);
        if (!in->ds || sn_server_append(s, in) < 0) {
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation %s: out of memory", path, in->key);
            sn_instn_free(in);
            nrefused++;
            continue;
        }
        if (sn_server_store_inst(s, in) < 0) {
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation %s: out of memory", path, in->key);
            s->n--;
            sn_instn_free(in);
            nrefused++;
            continue;
        }
        if (!s->fleet_mode) /* a fleet node's memory is rebuilt from the stream */
            sn_server_load_data(s, in, migrate);
        if (sn_agg_add(s->agg, in->key, in->ds) < 0) {
            sn_log(SN_LOG_ERROR, "serve", "%s: instrumentation %s: out of memory", path, in->key);
            s->n--;
            sn_instn_free(in);
            nrefused++;
        }
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
    if (nrefused) { /* the document as it was is kept beside the data, then rewritten */
        char copy[600];
        snprintf(copy, sizeof(copy), "%s", path);
        if (!migrate)
            snprintf(copy, sizeof(copy), "%s/definitions.json", s->datadir);
        rc = keep_rejected(copy, text, len, nrefused);
    }
    /* the migrated data is in the store before the definitions are: once they are, the older
     * files are never read again */
    if (rc == 0 && migrate && (rc = sn_store_sync(s->store)) < 0)
        sn_log(SN_LOG_ERROR, "serve", "cannot write the migrated data into the store: %s",
               strerror(-rc));
    /* a failed save leaves the tick to write them once it can (defs_unsaved) */
    if (rc == 0 && (nrefused || migrate) && sn_server_save_defs(s) == 0 && migrate)
        sn_log(SN_LOG_INFO, "serve", "%s: migrated into the store (the file is left as it is)",
               path);
    json_decref(root);
    free(text);
    if (rc < 0)
        return rc;
    sn_log(SN_LOG_INFO, "serve", "%zu instrumentation(s) restored from %s", s->n, path);
    return 0;
}

int sn_server_adopt(struct sn_server *s, const json_t *def, char *why, size_t whylen)
{
    const json_t *scope = json_object_get(def, "scope"), *id = json_object_get(def, "id");
    int rc = 0;

    if (!json_is_integer(id) || (scope && !json_is_string(scope))) {
        snprintf(why, whylen, "no \"scope\" and \"id\"");
        return -EINVAL;
    }
    pthread_rwlock_wrlock(&s->lock);
    struct sn_instn *had =
        sn_server_find(s, scope ? json_string_value(scope) : "", (uint64_t)json_integer_value(id));
    if (had) { /* known: what may change (a PUT on another node) */
        struct sn_instn next = *had;
        if (!sn_instn_set_props(def, &next, false, why, whylen)) {
            rc = -EINVAL;
        } else if (next.retention != had->retention || next.idle_max != had->idle_max ||
                   next.persist != had->persist) {
            if (next.retention != had->retention &&
                sn_agg_set_retention(s->agg, had->key, next.retention, sn_now()) < 0) {
                snprintf(why, whylen, "cannot change the retention: out of memory");
                rc = -ENOMEM;
            } else {
                had->retention = next.retention;
                had->idle_max = next.idle_max;
                had->persist = next.persist;
                sn_server_store_inst(s, had);
                sn_server_save_defs(s); /* the local copy; a failure: the tick saves again */
            }
        }
        pthread_rwlock_unlock(&s->lock);
        return rc;
    }
    struct sn_instn *in = instn_of_def(s, def, why, whylen);
    if (!in) {
        pthread_rwlock_unlock(&s->lock);
        return -EINVAL;
    }
    in->ds = sn_server_new_dataset(s, in);
    if (!in->ds || sn_server_append(s, in) < 0) {
        sn_instn_free(in);
        pthread_rwlock_unlock(&s->lock);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (sn_server_store_inst(s, in) < 0 || sn_agg_add(s->agg, in->key, in->ds) < 0) {
        s->n--;
        sn_store_inst_drop(s->store, in->key);
        sn_instn_free(in);
        pthread_rwlock_unlock(&s->lock);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    json_int_t next = json_integer_value(json_object_get(s->next_ids, in->scope));
    if (next <= (json_int_t)in->id)
        json_object_set_new(s->next_ids, in->scope, json_integer((json_int_t)in->id + 1));
    sn_server_save_defs(s); /* the local copy of the fleet's definitions */
    pthread_rwlock_unlock(&s->lock);
    return 1;
}

int sn_server_save_final(struct sn_server *s)
{
    int rc = 0;

    pthread_rwlock_wrlock(&s->lock);
    if (s->defs_unsaved)
        rc = sn_server_save_defs(s);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}
