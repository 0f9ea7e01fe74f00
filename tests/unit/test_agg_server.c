/*
 * The server object (serve/server.h) around the aggregator, in process and without an HTTP
 * client: open and close on a data directory, a create whose dataset the aggregator serves,
 * frames through the aggregator's ingest, copies handed out by the server, a change of
 * retention, persisted data across a close and an open, and a delete while a view of its data
 * is still open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "serve/instn_def.h"
#include "serve/server.h"
#include "t.h"

static char dir[128];

static int open_server(struct sn_server **s)
{
    struct sn_server_opts o = {.datadir = dir, .key_cap = 1000, .agent = false};
    o.http.listen = "127.0.0.1:0";
    o.http.threads = 1;
    return sn_server_open(&o, s);
}

/* Creates a discrete syscall instrumentation (by syscall) with persisted data; its id. */
static uint64_t create(struct sn_server *s)
{
    char why[512];
    json_t *p = json_pack("{s:s,s:s,s:[s],s:b}", "module", "syscall", "stat", "syscalls",
                          "decomposition", "syscall", "persist-data", 1);
    struct sn_instn *in = calloc(1, sizeof(*in));
    uint64_t id = 0;

    in->granularity = 1;
    in->retention = SN_DEFAULT_RETAIN;
    in->idle_max = SN_DEFAULT_IDLE;
    if (T_OK(sn_instn_from_props(s, p, in, why, sizeof(why)) == 0)) {
        in->crtime_ms = sn_now_ms();
        atomic_store(&in->last_access, sn_now());
        if (T_OK(sn_server_add(s, in, why, sizeof(why)) == 0))
            id = in->id; /* the server's from here on */
        else
            sn_instn_free(in);
    } else {
        free(in);
    }
    json_decref(p);
    return id;
}

static int frame(struct sn_server *s, const char *key, int64_t t, const char *k, uint64_t n)
{
    struct sn_wire_entry e = {(char *)k, n, NULL};
    struct sn_wire_frame f = {.id = (char *)key,
                              .host = "remote",
                              .t = t,
                              .arity = SN_WIRE_DISCRETE,
                              .total = n,
                              .n = 1,
                              .entries = &e};
    return sn_agg_ingest(s->agg, &f, sn_now(), NULL);
}

static uint64_t count_of(struct sn_server *s, const char *key, int64_t t, const char *k)
{
    struct sn_agg_view *v;
    struct sn_ds_slot sum;
    uint64_t n = UINT64_MAX;

    if (sn_agg_view_open(s->agg, key, t, t + 1, &v) < 0)
        return n;
    if (sn_agg_view_sum(v, t, 1, &sum) == 0) {
        n = 0;
        for (size_t i = 0; i < sum.n; i++)
            if (strcmp(sum.e[i].key, k) == 0)
                n = sum.e[i].count;
        sn_agg_sum_fini(&sum);
    }
    sn_agg_view_close(v);
    return n;
}

static void test_life(void)
{
    struct sn_server *s = NULL;
    struct sn_agg_view *v;
    int64_t t = sn_now() - 2;
    char why[512], key[32];

    T_REQUIRE(open_server(&s) == 0);
    T_OK(sn_server_port(s) > 0);
    uint64_t id = create(s);
    T_REQUIRE(id == 1);
    snprintf(key, sizeof(key), "%llu", (unsigned long long)id);
    T_EQ(sn_agg_arity(s->agg, key), SN_WIRE_DISCRETE);
    T_EQ(frame(s, key, t, "read", 5), SN_DS_ADDED);
    T_EQ(frame(s, key, t, "read", 2), SN_DS_ADDED);
    T_EQ(frame(s, "99", t, "read", 1), -ENOENT);
    T_EQU(count_of(s, key, t, "read"), 7);
    T_EQ(sn_agg_sources_since(s->agg, key, t), 1);
    T_OK(!sn_server_local(s, key)); /* no local agent */

    /* copies: the caller's, and the server's list unchanged by them */
    struct sn_instn *c = sn_server_get(s, "", id, true);
    T_REQUIRE(c != NULL);
    T_STR(c->key, key);
    T_OK(c->ds == NULL);
    T_EQ(json_array_size(c->decomposition), 1);
    sn_instn_free(c);
    size_t n;
    struct sn_instn **all = sn_server_list(s, NULL, &n);
    T_REQUIRE(all != NULL);
    T_EQ(n, 1);
    for (size_t i = 0; i < n; i++)
        sn_instn_free(all[i]);
    free(all);
    T_OK(sn_server_get(s, "acme", id, false) == NULL);

    /* a change of retention reaches the dataset; a bad one changes nothing */
    json_t *p = json_pack("{s:i}", "retention-time", 60);
    T_EQ(sn_server_change(s, "", id, p, &c, why, sizeof(why)), 0);
    T_EQ(c ? c->retention : 0, 60);
    sn_instn_free(c);
    json_decref(p);
    T_EQ(frame(s, key, sn_now() - 90, "read", 1), SN_DS_LATE);
    p = json_pack("{s:b}", "enabled", 0);
    T_EQ(sn_server_change(s, "", id, p, NULL, why, sizeof(why)), -EINVAL);
    json_decref(p);
    p = json_object();
    T_EQ(sn_server_change(s, "", 42, p, NULL, why, sizeof(why)), -ENOENT);
    json_decref(p);

    /* persisted data across a close and an open */
    T_EQ(sn_server_close(s), 0);
    T_REQUIRE(open_server(&s) == 0);
    T_EQU(count_of(s, key, t, "read"), 7);

    /* deleted while a view of its data is open: the view still reads it */
    T_REQUIRE(sn_agg_view_open(s->agg, key, t, t + 1, &v) == 0);
    T_EQ(sn_server_remove(s, "", id, why, sizeof(why)), 0);
    T_EQ(sn_server_remove(s, "", id, why, sizeof(why)), -ENOENT);
    T_EQ(frame(s, key, t, "read", 1), -ENOENT);
    T_EQ(sn_agg_view_nsrc(v, t), 1);
    sn_agg_view_close(v);
    T_EQ(sn_server_close(s), 0);
}

int main(int argc, char **argv)
{
    char sub[200];
    t_init(argc, argv);
    snprintf(dir, sizeof(dir), "/tmp/sonde-test-agg-server-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(sub, sizeof(sub), "%s/data", dir);
    mkdir(sub, 0700);
    t_run("open, create, ingest, change, persist, delete, close", test_life);
    /* the data directory: its files and the directory itself */
    snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
    if (system(sub) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return t_done();
}
