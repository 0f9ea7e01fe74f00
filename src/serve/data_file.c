/*
 * An instrumentation's data at start: the store's raw records of its retention, put back into
 * its dataset so that memory answers as it did before the restart; and, once, the .snds file
 * an older version kept for a persist-data instrumentation (data/<id>.snds or
 * data/<tenant>@<id>.snds, docs/formats.md), loaded and written into the store, then left
 * alone (serve/server.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "serve/server.h"

static void data_path(const struct sn_server *s, const struct sn_instn *in, char *out, size_t len)
{
    /* tenant names cannot hold '@': the operator's files and a tenant's never meet */
    if (in->scope[0])
        snprintf(out, len, "%s/data/%s@%" PRIu64 ".snds", s->datadir, in->scope, in->id);
    else
        snprintf(out, len, "%s/data/%" PRIu64 ".snds", s->datadir, in->id);
}

int sn_server_store_inst(struct sn_server *s, const struct sn_instn *in)
{
    const struct sn_ds_opts *o = sn_ds_opts(in->ds);
    struct sn_store_inst si = {
        .arity = o->arity,
        .point = o->point,
        .persist = in->persist,
        .granularity = in->granularity,
        .retention = in->retention,
    };
    return sn_store_inst_set(s->store, in->key, &si);
}

/* The .snds file into in->ds; 0 when there is none. */
static int load_snds(struct sn_server *s, struct sn_instn *in, const char *path)
{
    struct stat st;
    unsigned char *buf = NULL;
    FILE *f;
    int rc = 0;

    if (!(f = fopen(path, "rb")))
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = -EINVAL;
    else if (st.st_size == 0) /* e.g. a crash between create and write on some filesystems */
        sn_log(SN_LOG_WARN, "serve", "%s: empty, ignored (the instrumentation starts without data)",
               path);
    else if (!(buf = malloc((size_t)st.st_size)))
        rc = -ENOMEM;
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = -EIO;
    else if ((rc = sn_ds_load(in->ds, buf, (size_t)st.st_size, sn_now())) == 0)
        rc = 1;
    free(buf);
    fclose(f);
    return rc;
}

/* Hands every slot of in->ds to the store (merged into its raw records). */
static int migrate_slots(struct sn_server *s, struct sn_instn *in)
{
    const struct sn_ds_opts *o = sn_ds_opts(in->ds);
    int64_t now = sn_now(), from = now - (int64_t)o->retention - o->granularity;
    const struct sn_ds_slot **sl = malloc(sn_ds_nslots(in->ds) * sizeof(*sl));
    size_t n;
    int rc = 0;

    if (!sl)
        return -ENOMEM;
    n = sn_ds_slots_ref(in->ds, from, now + SN_DS_MAX_FUTURE, sl);
    for (size_t i = 0; i < n; i++) {
        const char *names[64];
        uint32_t k = sl[i]->nsrc < 64 ? sl[i]->nsrc : 64;
        for (uint32_t j = 0; j < k; j++)
            names[j] = sn_ds_source_name(in->ds, sl[i]->src[j]);
        struct sn_ds_slot one = *sl[i];
        one.nsrc = k;
        if (rc == 0)
            rc = sn_store_merge(s->store, in->key, SN_TIER_RAW, &one, names);
        sn_ds_slot_unref(sl[i]);
    }
    free(sl);
    return rc;
}

/* The store's raw records of in's retention into in->ds. */
static void restore(struct sn_server *s, struct sn_instn *in)
{
    int64_t now = sn_now();
    struct sn_ds_slot **recs;
    size_t n;
    bool values;

    if (sn_store_read(s->store, in->key, SN_TIER_RAW, now - (int64_t)in->retention,
                      now + SN_DS_MAX_FUTURE, &recs, &n, &values) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char **names = NULL;
        if (sn_store_source_names(s->store, in->key, recs[i], &names) == 0)
            sn_ds_restore(in->ds, recs[i], (const char *const *)names, now);
        sn_agg_strings_free(names, recs[i]->nsrc);
        sn_ds_slot_unref(recs[i]);
    }
    free(recs);
}

void sn_server_load_data(struct sn_server *s, struct sn_instn *in, bool migrate)
{
    char path[700];
    int rc;

    restore(s, in);
    if (!migrate || !in->persist)
        return;
    data_path(s, in, path, sizeof(path));
    if ((rc = load_snds(s, in, path)) > 0 && (rc = migrate_slots(s, in)) == 0)
        sn_log(SN_LOG_INFO, "serve", "%s: migrated into the store (the file is left as it is)",
               path);
    if (rc < 0)
        sn_log(SN_LOG_WARN, "serve", "%s: not migrated: %s", path, sn_strerror(rc));
}
