/*
 * Fuzz target: the definitions read at start (sn_server_load_defs, serve/server.h). The
 * input is an older version's instrumentations.json in a fresh data directory (migrated into
 * the store, then read back from it); the server must load it or refuse
 * it whole, never crash, and what it keeps must be what the API could have created:
 *   every id in 1..SN_INSTN_ID_MAX and unique in its scope, every scope a tenant's name or "",
 *   granularity 1 or a multiple of 5 up to 3600, retention within [granularity, 3600 x
 *   granularity], idle-max at most a week (and not 0 in a tenant's scope), at most
 *   SN_TENANT_QUOTA per tenant, and each scope's next_id past its ids and at most
 *   SN_INSTN_ID_MAX + 1.
 * Then the file is saved and loaded again into a second server, which must keep every one.
 * (The loader logs what it refuses: expect a noisy stderr.)
 */
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "fuzz_check.h"
#include "serve/instn_def.h"
#include "serve/flow.h"
#include "serve/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clear_dir(const char *d, bool self)
{
    char path[600];
    DIR *dp = opendir(d);
    struct dirent *e;
    while (dp && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", d, e->d_name);
        if (e->d_type == DT_DIR)
            clear_dir(path, true);
        else
            unlink(path);
    }
    if (dp)
        closedir(dp);
    if (self)
        rmdir(d);
}

static void cleanup(void)
{
    clear_dir(dir, true);
}

static struct sn_server *server_new(void)
{
    struct sn_server *s = calloc(1, sizeof(*s));
    FUZZ_CHECK(s);
    pthread_rwlock_init(&s->lock, NULL);
    s->next_ids = json_object();
    FUZZ_CHECK(sn_agg_create(&s->agg) == 0);
    FUZZ_CHECK(sn_flow_open(s) == 0); /* the bus frames and control travel on */
    snprintf(s->datadir, sizeof(s->datadir), "%s", dir);
    snprintf(s->host, sizeof(s->host), "fuzzhost");
    char sub[600], why[256];
    snprintf(sub, sizeof(sub), "%s/store", dir);
    struct sn_store_opts so = {.dir = sub};
    sn_tiers_default(&so.tiers);
    FUZZ_CHECK(sn_store_open(&so, &s->store, why, sizeof(why)) == 0);
    return s;
}

/* The store closed (one environment open at a time in a process). */
static void store_close(struct sn_server *s)
{
    sn_store_close(s->store);
    s->store = NULL;
}

static void server_free(struct sn_server *s)
{
    for (size_t i = 0; i < s->n; i++)
        sn_instn_free(s->insts[i]);
    free(s->insts);
    sn_flow_close(s);
    store_close(s);
    sn_agg_destroy(s->agg);
    json_decref(s->next_ids);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static void check_loaded(struct sn_server *s)
{
    const char *scope;
    json_t *v;

    for (size_t i = 0; i < s->n; i++) {
        const struct sn_instn *in = s->insts[i];
        FUZZ_CHECK(in->id >= 1 && in->id <= (uint64_t)SN_INSTN_ID_MAX);
        FUZZ_CHECK(sn_instn_scope_ok(in->scope));
        FUZZ_CHECK(sn_server_find(s, in->scope, in->id) == in); /* unique */
        FUZZ_CHECK(in->granularity == 1 || (in->granularity % 5 == 0 && in->granularity <= 3600));
        FUZZ_CHECK(in->retention >= in->granularity && in->retention <= 3600 * in->granularity);
        FUZZ_CHECK(in->idle_max <= SN_IDLE_MAX_MAX);
        FUZZ_CHECK(!in->scope[0] || in->idle_max > 0);
        FUZZ_CHECK(!in->scope[0] || sn_server_count(s, in->scope) <= SN_TENANT_QUOTA);
        FUZZ_CHECK(json_is_object(in->predicate) && json_is_array(in->decomposition));
        FUZZ_CHECK(in->metric != NULL && in->ds != NULL);
        json_int_t next = json_integer_value(json_object_get(s->next_ids, in->scope));
        FUZZ_CHECK(next > (json_int_t)in->id);
    }
    json_object_foreach(s->next_ids, scope, v)
    {
        FUZZ_CHECK(sn_instn_scope_ok(scope));
        FUZZ_CHECK(json_integer_value(v) >= 1 && json_integer_value(v) <= SN_INSTN_ID_MAX + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[600];
    FILE *f;

    if (!dir[0]) {
        setenv("SN_LOG_LEVEL", "error", 0);
        sn_log_init();
        snprintf(dir, sizeof(dir), "%s/sonde-fuzz-defs-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        FUZZ_CHECK(mkdtemp(dir) != NULL);
        atexit(cleanup);
    }
    clear_dir(dir, false);
    snprintf(path, sizeof(path), "%s/data", dir);
    FUZZ_CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof(path), "%s/instrumentations.json", dir);
    FUZZ_CHECK((f = fopen(path, "wb")) != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);

    struct sn_server *s = server_new();
    if (sn_server_load_defs(s) == 0) {
        check_loaded(s);
        /* saved and read again, every one stays */
        FUZZ_CHECK(sn_server_save_defs(s) == 0);
        store_close(s);
        struct sn_server *again = server_new();
        FUZZ_CHECK(sn_server_load_defs(again) == 0);
        FUZZ_CHECK(again->n == s->n);
        for (size_t i = 0; i < s->n; i++)
            FUZZ_CHECK(sn_server_find(again, s->insts[i]->scope, s->insts[i]->id) != NULL);
        check_loaded(again);
        server_free(again);
    }
    server_free(s);
    return 0;
}
