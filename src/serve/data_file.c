/*
 * The persisted datasets of persist-data instrumentations, one file each in the data
 * directory: data/<id>.snds (the operator's) and data/<tenant>@<id>.snds (tenant names
 * cannot hold '@'), in docs/formats.md's dataset format, saved once a minute and at shutdown
 * and loaded at start (serve/server.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/file.h"
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

void sn_server_unpersist(struct sn_server *s, struct sn_instn *in)
{
    char path[700];
    data_path(s, in, path, sizeof(path));
    unlink(path);
}

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
        if ((rc = sn_agg_save(s->agg, in->key, &buf, &len)) == 0) {
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

void sn_server_load_data(struct sn_server *s, struct sn_instn *in)
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
