/*
 * The span store (trace/span_store.h) and its blocks (trace/span_block.h), on real LMDB files
 * in a temporary directory (removed at the end): a block gives back every field of every
 * span, and refuses every truncation of itself; spans put are read back by trace id, equal;
 * the index scan gives each span newest first, by service and time range; the names of
 * services, spans and remote services; a reopened store holds everything and appends after
 * it; retention and the size cap remove the oldest blocks and count them; the packed index
 * values and chunks (exact bytes), the tags' Bloom filters (each kind of term), a tag search
 * over more traces than a search may read, and a store of the older format emptied.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/env.h"
#include "t.h"
#include "trace/span_block.h"
#include "trace/span_index.h"
#include "trace/query.h"
#include "trace/span_store.h"

static char root[512];
static int ndirs;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- Spans ------------------------------------------------------------------------------- */

static struct sn_span_kv *attrs(struct sn_span_batch *b, uint32_t n, const char *prefix, int salt)
{
    struct sn_span_kv *a = sn_arena_calloc(&b->arena, n, sizeof(*a));
    for (uint32_t i = 0; i < n; i++) {
        char k[64], v[64];
        snprintf(k, sizeof(k), "%s.%u", prefix, i);
        a[i].key = sn_arena_strndup(&b->arena, k, strlen(k));
        a[i].type = (uint8_t)(i % 4 == 1   ? SN_ATTR_INT
                              : i % 4 == 2 ? SN_ATTR_BOOL
                                           : SN_ATTR_STRING);
        if (a[i].type == SN_ATTR_INT)
            snprintf(v, sizeof(v), "%d", salt * 1000 + (int)i);
        else if (a[i].type == SN_ATTR_BOOL)
            snprintf(v, sizeof(v), "%s", (salt + i) % 2 ? "true" : "false");
        else
            snprintf(v, sizeof(v), "value-%d-%u", salt, i);
        a[i].val = sn_arena_strndup(&b->arena, v, strlen(v));
        a[i].vlen = (uint32_t)strlen(v);
        a[i].i = a[i].type == SN_ATTR_INT ? strtoll(v, NULL, 10)
                                          : a[i].type == SN_ATTR_BOOL && v[0] == 't';
    }
    return a;
}

/* Span s of trace t: trace ids 0x0t..., span ids (t << 8 | s); service and name given. */
static struct sn_span *add_span(struct sn_span_batch *b, int t, int s, const char *service,
                                const char *name, uint64_t start_ns, uint64_t dur_ns)
{
    struct sn_span *sp = sn_span_batch_add(b);
    memset(sp->trace_id, 0, 16);
    sp->trace_id[0] = 0xab;
    sp->trace_id[15] = (uint8_t)t;
    sp->trace_id[14] = (uint8_t)(t >> 8);
    sp->span_id[7] = (uint8_t)s;
    sp->span_id[6] = (uint8_t)t;
    sp->span_id[0] = 1;
    if (s > 0) {
        sp->flags |= SN_SPAN_F_PARENT;
        memcpy(sp->parent_id, sp->span_id, 8);
        sp->parent_id[7] = 0;
    }
    sp->kind = (uint8_t)(s == 0 ? SN_KIND_SERVER : SN_KIND_CLIENT);
    sp->start_ns = start_ns;
    sp->duration_ns = dur_ns;
    sp->service = sp->local.service = sn_arena_strndup(&b->arena, service, strlen(service));
    sp->name = sn_arena_strndup(&b->arena, name, strlen(name));
    sp->attrs = attrs(b, 6, "attr", t * 10 + s);
    sp->nattrs = 6;
    sp->res = attrs(b, 2, "res", 0);
    sp->nres = 2;
    if (s == 2) {
        sp->status = SN_STATUS_ERROR;
        sp->status_msg = "boom";
        sp->flags |= SN_SPAN_F_REMOTE;
        sp->remote.service = "db";
        sp->remote.has_ipv4 = true;
        memcpy(sp->remote.ipv4, "\x0a\x00\x00\x07", 4);
        sp->remote.port = 5432;
        sp->nevents = 2;
        sp->events = sn_arena_calloc(&b->arena, 2, sizeof(*sp->events));
        sp->events[0] = (struct sn_span_event){start_ns + 10, "retry", attrs(b, 1, "ev", 1), 1, 0};
        sp->events[1] = (struct sn_span_event){start_ns - 5, "early", NULL, 0, 3};
        sp->nlinks = 1;
        sp->links = sn_arena_calloc(&b->arena, 1, sizeof(*sp->links));
        memset(sp->links[0].trace_id, 7, 16);
        memset(sp->links[0].span_id, 8, 8);
        sp->links[0].trace_state = "k=v";
        sp->links[0].flags = 0x301;
        sp->dropped_attrs = 4;
    }
    return sp;
}

/* The span of b with span id of s, or NULL. */
static const struct sn_span *find(const struct sn_span_batch *b, const struct sn_span *s)
{
    for (size_t i = 0; i < b->n; i++)
        if (!memcmp(b->spans[i].span_id, s->span_id, 8) &&
            !memcmp(b->spans[i].trace_id, s->trace_id, 16))
            return &b->spans[i];
    return NULL;
}

/* ---- Blocks ------------------------------------------------------------------------------ */

static void test_block_round_trip(void)
{
    struct sn_span_batch in = {0}, out = {0};
    uint64_t t0 = 1700000000000000000ULL;
    for (int s = 0; s < 5; s++)
        add_span(&in, 1, s, "frontend", "GET /api", t0 + (uint64_t)s * 1000, 5000 - (uint64_t)s);
    /* the publisher that took a span in a fleet (none: this server) */
    in.spans[1].origin = in.spans[3].origin = "node-b";
    in.spans[4].origin = "agent.host-1";
    struct sn_span_batch cp = {0}; /* a copy keeps it, in its own arena */
    for (size_t i = 0; i < in.n; i++) {
        T_EQ(sn_span_copy(&cp, &in.spans[i]), 0);
        T_OK(sn_span_equal(&in.spans[i], &cp.spans[i]));
    }
    T_OK(cp.spans[0].origin == NULL && cp.spans[4].origin != in.spans[4].origin);
    sn_span_batch_fini(&cp);
    for (int level = 0; level <= 9; level += 3) {
        unsigned char *blk;
        size_t len;
        T_REQUIRE(sn_block_encode(in.spans, in.n, level, &blk, &len) == 0);
        T_EQ(sn_block_count(blk, len), 5);
        T_EQ(sn_block_decode(blk, len, &out), 0);
        T_EQ(out.n, 5);
        for (size_t i = 0; i < in.n && i < out.n; i++)
            T_OK(sn_span_equal(&in.spans[i], &out.spans[i]));
        T_OK(out.n == 5 && !out.spans[0].origin && !out.spans[2].origin);
        T_STR(out.n == 5 && out.spans[1].origin ? out.spans[1].origin : "", "node-b");
        T_STR(out.n == 5 && out.spans[3].origin ? out.spans[3].origin : "", "node-b");
        T_STR(out.n == 5 && out.spans[4].origin ? out.spans[4].origin : "", "agent.host-1");
        if (level == 6) /* every truncation is refused, never read past */
            for (size_t cut = 0; cut < len; cut++) {
                struct sn_span_batch x = {0};
                unsigned char *c = malloc(cut ? cut : 1);
                memcpy(c, blk, cut);
                if (sn_block_decode(c, cut, &x) == 0)
                    t_note("a block cut at %zu of %zu decoded", cut, len), T_OK(0);
                free(c);
                sn_span_batch_fini(&x);
            }
        sn_span_batch_fini(&out);
        free(blk);
    }
    sn_span_batch_fini(&in);
}

/* A store's block (sn_block_encode_tags()) leaves its trace ids to its chunk: they are not in
 * it, sn_block_decode() refuses it, sn_block_decode_ids() gives them back, and refuses a count
 * of ids other than its traces'. */
static void test_block_noids(void)
{
    struct sn_span_batch in = {0}, out = {0};
    uint64_t t0 = 1700000000000000000ULL;
    for (int t = 1; t <= 2; t++)
        for (int s = 0; s < 3; s++)
            add_span(&in, t, s, "frontend", "GET /api", t0 + (uint64_t)s * 1000, 5000);
    uint8_t ids[32];
    memcpy(ids, in.spans[0].trace_id, 16);
    memcpy(ids + 16, in.spans[3].trace_id, 16);
    unsigned char *blk;
    uint8_t *bloom;
    size_t len, blen;
    T_REQUIRE(sn_block_encode_tags(in.spans, in.n, 0, &blk, &len, &bloom, &blen) == 0);
    T_OK(!memmem(blk, len, ids, 16) && !memmem(blk, len, ids + 16, 16));
    T_EQ(sn_block_decode(blk, len, &out), -EINVAL);
    sn_span_batch_fini(&out);
    T_OK(sn_block_decode_ids(blk, len, ids, 1, &out) != 0);
    sn_span_batch_fini(&out);
    T_EQ(sn_block_decode_ids(blk, len, ids, 2, &out), 0);
    T_EQ(out.n, 6);
    for (size_t i = 0; i < in.n && i < out.n; i++)
        T_OK(sn_span_equal(&in.spans[i], &out.spans[i]));
    sn_span_batch_fini(&out);
    free(blk);
    free(bloom);
    sn_span_batch_fini(&in);
}

static void test_block_flips(void)
{
    struct sn_span_batch in = {0};
    unsigned char *blk;
    size_t len;
    for (int s = 0; s < 3; s++)
        add_span(&in, 2, s, "svc", "op", 1700000000000000000ULL, 1000);
    T_REQUIRE(sn_block_encode(in.spans, in.n, 0, &blk, &len) == 0);
    size_t refused = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            struct sn_span_batch x = {0};
            blk[i] ^= (unsigned char)(1 << bit);
            refused += sn_block_decode(blk, len, &x) != 0;
            blk[i] ^= (unsigned char)(1 << bit);
            sn_span_batch_fini(&x);
        }
    T_OK(refused > 0); /* no crash is the point; ASan watches the reads */
    free(blk);
    sn_span_batch_fini(&in);
}

/* A block's values as skeletons and runs (span_block.c), byte for byte: "a12-ff0e" is the
 * skeleton "\x01-\x01" in the table and the runs "a12,ff0e," after it; "9-9a", of the same key
 * and skeleton, refers to the skeleton one value before; a value holding a control character
 * is written whole; an int's runs give its number back; damaged runs and every truncation are
 * refused. */
static void test_block_values(void)
{
    struct sn_span_batch in = {0}, out = {0};
    struct sn_span_kv a[3] = {{.key = "u", .val = "a12-ff0e", .vlen = 8, .type = SN_ATTR_STRING},
                              {.key = "c",
                               .val = "x\x01"
                                      "9",
                               .vlen = 3,
                               .type = SN_ATTR_STRING},
                              {.key = "i", .val = "-42", .vlen = 3, .type = SN_ATTR_INT, .i = -42}};
    struct sn_span_kv a2[1] = {{.key = "u", .val = "9-9a", .vlen = 4, .type = SN_ATTR_STRING}};
    for (int k = 0; k < 2; k++) {
        struct sn_span *sp = sn_span_batch_add(&in);
        sp->trace_id[0] = 1;
        sp->span_id[0] = (uint8_t)(2 + k);
        sp->start_ns = 1000;
        sp->name = "n";
        sp->service = sp->local.service = "s";
        sp->status_msg = sp->trace_state = sp->scope_name = sp->scope_version = "";
        sp->attrs = k ? a2 : a;
        sp->nattrs = k ? 1 : 3;
    }
    unsigned char *blk;
    size_t len;
    T_REQUIRE(sn_block_encode(in.spans, 2, 0, &blk, &len) == 0);
    /* the strings n s "" u c i, then their values: u's two (a skeleton: 0 and the skeleton,
     * then 1: the skeleton one value before), c's whole, i's skeleton; then the runs */
    static const unsigned char want[] = {6,   1,
                                         'n', 1,
                                         's', 0,
                                         1,   'u',
                                         1,   'c',
                                         1,   'i', /* strings */
                                         0,   0,
                                         0, /* n s "": none */
                                         2,   0x80 | SN_ATTR_STRING,
                                         0,   3,
                                         1,   '-',
                                         1,   0x80 | SN_ATTR_STRING,
                                         1, /* u */
                                         1,   SN_ATTR_STRING,
                                         3,   'x',
                                         1,   '9', /* c: whole */
                                         1,   0x80 | SN_ATTR_INT,
                                         0,   2,
                                         '-', 1, /* i: -42 */
                                         17,  'a',
                                         '1', '2',
                                         ',', 'f',
                                         'f', '0',
                                         'e', ',',
                                         '9', ',',
                                         '9', 'a',
                                         ',', '4',
                                         '2', ','}; /* the runs */
    T_EQ(blk[0], 3);                                /* the version */
    T_OK(len > sizeof(want) && memmem(blk, len, want, sizeof(want)) != NULL);
    T_EQ(sn_block_decode(blk, len, &out), 0);
    T_EQ(out.n, 2);
    if (out.n == 2) {
        T_OK(sn_span_equal(&in.spans[0], &out.spans[0]));
        T_OK(sn_span_equal(&in.spans[1], &out.spans[1]));
        T_OK(!strcmp(out.spans[1].attrs[0].val, "9-9a"));
        T_EQ(out.spans[0].nattrs, 3);
        T_EQ(out.spans[0].attrs[2].i, -42);
        T_OK(out.spans[0].attrs[0].vlen == 8 && !strcmp(out.spans[0].attrs[0].val, "a12-ff0e"));
    }
    sn_span_batch_fini(&out);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation is refused */
        struct sn_span_batch x = {0};
        T_OK(sn_block_decode(blk, cut, &x) != 0);
        sn_span_batch_fini(&x);
    }
    /* a run without its end, a run too many: refused */
    unsigned char *r = memmem(blk, len, want, sizeof(want));
    size_t at = (size_t)(r - blk) + sizeof(want) - 1; /* the last run's ',' */
    struct sn_span_batch x = {0};
    blk[at] = '7';
    T_OK(sn_block_decode(blk, len, &x) != 0);
    sn_span_batch_fini(&x);
    blk[at] = ',';
    blk[at - 2] = ','; /* "4,," : the value is "-4" and a run is left over */
    T_OK(sn_block_decode(blk, len, &x) != 0);
    sn_span_batch_fini(&x);
    blk[at - 2] = '4';
    size_t ref = (size_t)(r - blk) + 23; /* u's second: 2 values back, before the first */
    T_EQ(blk[ref], 1);
    blk[ref] = 2;
    T_OK(sn_block_decode(blk, len, &x) != 0);
    sn_span_batch_fini(&x);
    blk[ref] = 1;
    T_EQ(sn_block_decode(blk, len, &x), 0); /* as it was */
    sn_span_batch_fini(&x);
    free(blk);
    sn_span_batch_fini(&in);
}

/* ---- The store --------------------------------------------------------------------------- */

struct fixture {
    char dir[600];
    struct sn_env *env;
    struct sn_span_store *ss;
};

static bool open_fx(struct fixture *f, const struct sn_span_store_opts *o)
{
    char why[256] = "";
    if (!f->dir[0])
        snprintf(f->dir, sizeof(f->dir), "%s/s%d", root, ndirs++);
    int rc = sn_env_open(f->dir, 0, &f->env, why, sizeof(why));
    if (rc == 0)
        rc = sn_span_store_open(f->env, o, &f->ss, why, sizeof(why));
    if (rc)
        t_note("open: %d %s", rc, why);
    return T_EQ(rc, 0);
}

static void close_fx(struct fixture *f)
{
    T_EQ(sn_span_store_close(f->ss), 0);
    sn_env_close(f->env);
    f->ss = NULL;
    f->env = NULL;
}

struct seen {
    struct sn_span_ref r[256];
    size_t n;
};

static bool collect(void *arg, const struct sn_span_ref *r)
{
    struct seen *s = arg;
    if (s->n < 256)
        s->r[s->n++] = *r;
    return s->n < 256;
}

static void test_put_read(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    struct sn_span_batch in = {0}, out = {0};
    uint64_t t0 = (now_ns() / 60000000000ULL - 10) * 60000000000ULL; /* 10 min ago, aligned */

    T_REQUIRE(open_fx(&f, &o));
    /* 40 traces of 3 spans: service front (root), then api, then api calling db */
    for (int t = 0; t < 40; t++) {
        uint64_t ts = t0 + (uint64_t)t * 15000000000ULL; /* every 15 s: 10 minutes */
        add_span(&in, t, 0, "Front", "GET /Home", ts, 9000000);
        add_span(&in, t, 1, "api", "list", ts + 1000000, 5000000 + (uint64_t)t * 1000);
        add_span(&in, t, 2, "api", "query", ts + 2000000, 1000000);
    }
    T_EQ(sn_span_store_put(f.ss, &in, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    for (int t = 0; t < 40; t += 13) {
        uint8_t id[16];
        memcpy(id, in.spans[t * 3].trace_id, 16);
        T_EQ(sn_span_store_trace(f.ss, id, &out), 0);
        T_EQ(out.n, 3);
        for (int s = 0; s < 3; s++) {
            const struct sn_span *got = find(&out, &in.spans[t * 3 + s]);
            T_OK(got && sn_span_equal(&in.spans[t * 3 + s], got));
        }
        sn_span_batch_fini(&out);
    }
    uint8_t none[16] = {1};
    T_EQ(sn_span_store_trace(f.ss, none, &out), -ENOENT);

    /* the scan: newest first, by service, in range */
    struct seen s = {0};
    T_EQ(sn_span_store_scan(f.ss, "api", t0 / 1000, t0 / 1000 + 3600000000ULL, collect, &s), 0);
    T_EQ(s.n, 80);
    for (size_t i = 1; i < s.n; i++)
        T_OK(s.r[i - 1].start_us >= s.r[i].start_us);
    T_EQ(s.r[0].start_us, (t0 + 39 * 15000000000ULL + 2000000) / 1000);
    T_STR(s.r[0].name, "query");
    T_STR(s.r[0].remote, "db");
    T_OK(s.r[0].error);
    T_EQ(s.r[1].duration_us, (5000000 + 39 * 1000) / 1000);
    T_EQ(s.r[1].kind, SN_KIND_CLIENT);
    s.n = 0; /* every service, a window of 2 minutes: 8 traces x 3 spans */
    T_EQ(sn_span_store_scan(f.ss, NULL, t0 / 1000 + 120000000, t0 / 1000 + 240000000, collect, &s),
         0);
    T_EQ(s.n, 24);
    T_STR(s.r[s.n - 1].service, "Front");
    s.n = 0; /* a service's name matches in any case */
    T_EQ(sn_span_store_scan(f.ss, "FRONT", 0, UINT64_MAX / 2, collect, &s), 0);
    T_EQ(s.n, 40);

    char **names;
    size_t n;
    T_EQ(sn_span_store_services(f.ss, &names, &n), 0);
    T_EQ(n, 2);
    if (n == 2) {
        T_STR(names[0], "api");
        T_STR(names[1], "front");
    }
    sn_span_store_strings_free(names, n);
    T_EQ(sn_span_store_names(f.ss, "api", false, &names, &n), 0);
    T_EQ(n, 2);
    if (n == 2) {
        T_STR(names[0], "list");
        T_STR(names[1], "query");
    }
    sn_span_store_strings_free(names, n);
    T_EQ(sn_span_store_names(f.ss, "api", true, &names, &n), 0);
    T_EQ(n, 1);
    if (n == 1)
        T_STR(names[0], "db");
    sn_span_store_strings_free(names, n);
    T_EQ(sn_span_store_names(f.ss, "nope", false, &names, &n), -ENOENT);

    /* reopened: everything is there, and new blocks go after the old ones */
    close_fx(&f);
    T_REQUIRE(open_fx(&f, &o));
    uint8_t id0[16];
    memcpy(id0, in.spans[0].trace_id, 16);
    T_EQ(sn_span_store_trace(f.ss, id0, &out), 0);
    T_EQ(out.n, 3);
    sn_span_batch_fini(&out);
    struct sn_span_batch more = {0};
    add_span(&more, 0, 7, "front", "late", t0, 1000); /* trace 0 again, another block */
    T_EQ(sn_span_store_put(f.ss, &more, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    T_EQ(sn_span_store_trace(f.ss, id0, &out), 0);
    T_EQ(out.n, 4);
    sn_span_batch_fini(&out);
    T_EQ(sn_span_store_names(f.ss, "front", false, &names, &n), 0);
    T_EQ(n, 2);
    sn_span_store_strings_free(names, n);
    /* the same request again (a client's retry): its index entries exist already; the write
     * succeeds, and the trace holds its spans twice (as Zipkin's stores do) */
    T_EQ(sn_span_store_put(f.ss, &in, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    s.n = 0; /* the index gives each span once */
    T_EQ(sn_span_store_scan(f.ss, "api", t0 / 1000, t0 / 1000 + 3600000000ULL, collect, &s), 0);
    T_EQ(s.n, 80);
    T_EQ(s.r[0].start_us, (t0 + 39 * 15000000000ULL + 2000000) / 1000);
    T_EQ(s.r[1].start_us, (t0 + 39 * 15000000000ULL + 1000000) / 1000);
    memcpy(id0, in.spans[3].trace_id, 16);
    T_EQ(sn_span_store_trace(f.ss, id0, &out), 0);
    T_EQ(out.n, 6);
    sn_span_batch_fini(&out);
    struct sn_span_store_stats st;
    sn_span_store_stats(f.ss, &st);
    T_EQ(st.write_errors, 0);
    T_EQ(st.spans_written, 121);
    T_EQ(st.services, 4); /* Front, api, db (a remote service is a service), front */
    close_fx(&f);
    sn_span_batch_fini(&in);
    sn_span_batch_fini(&more);
}

static void test_retention(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {.retention_s = 3600};
    struct sn_span_batch old = {0}, young = {0}, out = {0};
    uint64_t now = now_ns();

    T_REQUIRE(open_fx(&f, &o));
    for (int t = 0; t < 10; t++)
        add_span(&old, t, 0, t ? "svc" : "gone", "op", now - 7200000000000ULL, 1000);
    add_span(&young, 99, 0, "svc", "op", now - 60000000000ULL, 1000);
    T_EQ(sn_span_store_put(f.ss, &old, now), 0);
    T_EQ(sn_span_store_put(f.ss, &young, now), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    struct sn_span_store_stats st = {0};
    for (int i = 0; i < 40 && st.blocks_expired == 0; i++) { /* maintenance runs each second */
        usleep(100000);
        sn_span_store_stats(f.ss, &st);
    }
    T_EQ(st.blocks_expired, 1);
    T_EQ(sn_span_store_trace(f.ss, old.spans[3].trace_id, &out), -ENOENT);
    T_EQ(sn_span_store_trace(f.ss, young.spans[0].trace_id, &out), 0);
    sn_span_batch_fini(&out);
    struct seen s = {0};
    T_EQ(sn_span_store_scan(f.ss, "svc", 0, now / 1000 + 1, collect, &s), 0);
    T_EQ(s.n, 1); /* the old minutes of the index went too */
    char **names;
    size_t n;
    T_EQ(sn_span_store_services(f.ss, &names, &n), 0); /* and a service with nothing left */
    T_EQ(n, 1);
    if (n == 1)
        T_STR(names[0], "svc");
    sn_span_store_strings_free(names, n);
    close_fx(&f);
    sn_span_batch_fini(&old);
    sn_span_batch_fini(&young);
}

static void test_size_cap(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {.max_bytes = 1u << 20, .level = 1};
    uint64_t now = now_ns();

    T_REQUIRE(open_fx(&f, &o));
    /* 40 requests of 500 spans with incompressible attribute values: over 1.5 MiB */
    for (int r = 0; r < 40; r++) {
        struct sn_span_batch b = {0};
        for (int i = 0; i < 500; i++) {
            struct sn_span *s = add_span(&b, r * 500 + i, 0, "svc", "op",
                                         now - 600000000000ULL + (uint64_t)r * 1000000000ULL, 1000);
            char v[64];
            snprintf(v, sizeof(v), "%016llx%016llx", (unsigned long long)t_rand(),
                     (unsigned long long)t_rand());
            s->attrs[0].val = sn_arena_strndup(&b.arena, v, 32);
            s->attrs[0].vlen = 32;
        }
        T_EQ(sn_span_store_put(f.ss, &b, now), 0);
        T_EQ(sn_span_store_sync(f.ss), 0);
        sn_span_batch_fini(&b);
    }
    struct sn_span_store_stats st = {0};
    for (int i = 0; i < 40; i++) {
        usleep(100000);
        sn_span_store_stats(f.ss, &st);
        if (st.blocks_dropped && st.used_bytes <= o.max_bytes)
            break;
    }
    t_note("used %llu dropped %llu written %llu", (unsigned long long)st.used_bytes,
           (unsigned long long)st.blocks_dropped, (unsigned long long)st.bytes_written);
    T_OK(st.blocks_dropped > 0);
    T_OK(st.used_bytes <= o.max_bytes);
    /* the newest request is whole */
    struct sn_span_batch out = {0};
    struct sn_span_batch last = {0};
    add_span(&last, 39 * 500 + 499, 0, "svc", "op", 0, 0);
    T_EQ(sn_span_store_trace(f.ss, last.spans[0].trace_id, &out), 0);
    sn_span_batch_fini(&out);
    sn_span_batch_fini(&last);
    close_fx(&f);
}

/* Puts from many threads at once (a fleet's consumers put as their messages come): each span
 * is kept once, whatever the writer was doing while puts were queued. */
#define PUT_THREADS 8
#define PUT_EACH    150

struct putter {
    struct sn_span_store *ss;
    int base;
    int fails;
};

static void *put_many(void *arg)
{
    struct putter *p = arg;
    uint64_t t0 = now_ns() - 60000000000ULL;
    for (int i = 0; i < PUT_EACH; i++) {
        struct sn_span_batch b = {0};
        int t = p->base + i;
        add_span(&b, t, 0, "front", "root", t0 + (uint64_t)i * 1000, 5000);
        add_span(&b, t, 1, "api", "child", t0 + (uint64_t)i * 1000 + 10, 1000);
        if (sn_span_store_put_accepted(p->ss, &b, now_ns()) != 0)
            p->fails++;
        sn_span_batch_fini(&b);
    }
    return NULL;
}

static void test_concurrent_puts(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    pthread_t th[PUT_THREADS];
    struct putter pu[PUT_THREADS];

    T_REQUIRE(open_fx(&f, &o));
    for (int i = 0; i < PUT_THREADS; i++) {
        pu[i] = (struct putter){f.ss, i * PUT_EACH, 0};
        T_REQUIRE(pthread_create(&th[i], NULL, put_many, &pu[i]) == 0);
    }
    for (int i = 0; i < PUT_THREADS; i++) {
        pthread_join(th[i], NULL);
        T_EQ(pu[i].fails, 0);
    }
    T_EQ(sn_span_store_sync(f.ss), 0);
    int wrong = 0;
    for (int t = 0; t < PUT_THREADS * PUT_EACH; t++) {
        struct sn_span_batch probe = {0}, out = {0};
        add_span(&probe, t, 0, "x", "x", 1, 1);
        if (sn_span_store_trace(f.ss, probe.spans[0].trace_id, &out) != 0 || out.n != 2) {
            if (!wrong++)
                t_note("trace %d: %zu spans", t, out.n);
        }
        sn_span_batch_fini(&probe);
        sn_span_batch_fini(&out);
    }
    T_EQ(wrong, 0);
    struct sn_span_store_stats st;
    sn_span_store_stats(f.ss, &st);
    T_EQU(st.spans_written, 2 * PUT_THREADS * PUT_EACH);
    close_fx(&f);
}

/* ---- Packed values and tags ------------------------------------------------------------- */

static void test_index_values(void)
{
    struct sn_index_ent e[3] = {
        {.us = 70, .duration = 5, .name = 3, .kind = 2, .error = true, .remote = 0, .trace = 1},
        {.us = 7, .duration = 300, .name = 1, .kind = 1, .remote = 4, .trace = 0},
        {.us = 70, .duration = 5, .name = 3, .kind = 2, .error = true, .remote = 0, .trace = 1},
    };
    uint8_t buf[SN_INDEX_MAX(3)];
    size_t len = sn_index_encode(e, 3, buf);
    /* sorted by time, the repeat dropped: n, the widths of delta (63: 6 bits), duration (300:
     * 9), name (3: 2), remote + 1 (4: 3), trace (1: 1), then each entry's 6 + 9 + 2 + 3 (kind)
     * + 1 (error) + 3 + 1 bits, least significant first: (7, 300, 1, 1, 0, 4, 0) and (63, 5, 3,
     * 2, 1, 0, 1), 50 bits in 7 bytes */
    const uint8_t want[] = {2, 6, 9, 2, 3, 1, 0x07, 0xcb, 0x82, 0xfe, 0x02, 0x2b, 0x02};
    T_EQ(len, sizeof(want));
    T_OK(len == sizeof(want) && memcmp(buf, want, len) == 0);
    struct sn_index_ent d[2];
    T_EQ(sn_index_count(buf, len), 2);
    T_EQ(sn_index_decode(buf, len, d), 0);
    T_EQ(d[0].us, 7);
    T_EQ(d[0].duration, 300);
    T_EQ(d[0].remote, 4);
    T_EQ(d[1].us, 70);
    T_EQ(d[1].name, 3);
    T_EQ(d[1].kind, 2);
    T_OK(d[1].error);
    T_EQ(d[1].trace, 1);
    for (size_t cut = 0; cut < len; cut++) /* every truncation is refused */
        T_OK(sn_index_count(buf, cut) < 0 || sn_index_decode(buf, cut, d) < 0);

    /* a chunk of two blocks, three traces */
    uint8_t ids[3][16] = {{1}, {2}, {3}};
    uint8_t bl1[8] = {0xff, 0, 0, 0, 0, 0, 0, 0}, b1[3] = {'a', 'b', 'c'}, b2[2] = {'d', 'e'};
    struct sn_chunk_part parts[2] = {{bl1, b1, 8, 3, 2}, {NULL, b2, 0, 2, 1}};
    size_t clen = sn_chunk_size(parts, 2, 3);
    T_EQ(clen, 1 + 1 + 1 + 3 + 3 + 48 + 8 + 3 + 2);
    uint8_t chunk[128];
    sn_chunk_encode(parts, 2, ids[0], 3, chunk);
    struct sn_chunk c;
    struct sn_chunk_block cb;
    uint32_t bi;
    T_EQ(sn_chunk_parse(chunk, clen, &c), 0);
    T_EQ(c.nblocks, 2);
    T_EQ(c.ntraces, 3);
    T_EQ(sn_chunk_find(&c, ids[2]), 2);
    uint8_t none[16] = {9};
    T_EQ(sn_chunk_find(&c, none), -1);
    T_EQ(sn_chunk_block_of(&c, 2, &bi, &cb), 0);
    T_EQ(bi, 1);
    T_EQ(cb.first, 2);
    T_EQ(cb.blk_len, 2);
    T_OK(cb.blk[0] == 'd' && cb.bloom_len == 0);
    T_EQ(sn_chunk_block_of(&c, 1, &bi, &cb), 0);
    T_EQ(bi, 0);
    T_OK(cb.blk[2] == 'c' && cb.bloom_len == 8 && cb.bloom[0] == 0xff);
    for (size_t cut = 0; cut < clen; cut++)
        T_OK(sn_chunk_parse(chunk, cut, &c) < 0);
    memcpy(chunk + 6 + 16, ids[0], 16); /* ids out of order */
    T_OK(sn_chunk_parse(chunk, clen, &c) < 0);
}

static int tags_of(struct sn_span_store *ss, const uint8_t *id, const char *k, const char *v)
{
    const char *key[1] = {k}, *value[1] = {v};
    return sn_span_store_trace_tags(ss, id, key, value, 1);
}

static void test_tags(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    struct sn_span_batch a = {0}, b = {0};
    uint64_t t0 = now_ns() - 60000000000ULL;

    T_REQUIRE(open_fx(&f, &o));
    add_span(&a, 1, 0, "front", "root", t0, 5000); /* trace 1: attr.0 = value-10-0 */
    add_span(&b, 2, 2, "api", "query", t0, 5000);  /* trace 2: error "boom", event "retry" */
    add_span(&b, 2, 1, "api", "list", t0, 5000);   /* trace 2: attr.0 = value-21-0 */
    T_EQ(sn_span_store_put(f.ss, &a, now_ns()), 0);
    T_EQ(sn_span_store_put(f.ss, &b, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    const uint8_t *t1 = a.spans[0].trace_id, *t2 = b.spans[0].trace_id;
    T_EQ(tags_of(f.ss, t1, "attr.0", NULL), 1);
    T_EQ(tags_of(f.ss, t1, "attr.0", "value-10-0"), 1);
    T_EQ(tags_of(f.ss, t1, "attr.1", "10001"), 1); /* an integer as its text */
    T_EQ(tags_of(f.ss, t1, "attr.0", "value-21-0"), 0);
    T_EQ(tags_of(f.ss, t1, "retry", NULL), 0);
    T_EQ(tags_of(f.ss, t1, "error", NULL), 0);
    T_EQ(tags_of(f.ss, t2, "attr.0", "value-21-0"), 1);
    T_EQ(tags_of(f.ss, t2, "retry", NULL), 1); /* an event's name is a bare word */
    T_EQ(tags_of(f.ss, t2, "error", NULL), 1); /* an error status is Zipkin's error tag */
    T_EQ(tags_of(f.ss, t2, "error", "boom"), 1);
    T_EQ(tags_of(f.ss, t2, "error", "nope"), 0);
    T_EQ(tags_of(f.ss, t2, "res.0", NULL), 0); /* resource attributes are not tags */
    /* every term must be there */
    const char *key[2] = {"attr.0", "retry"}, *value[2] = {"value-21-0", NULL};
    T_EQ(sn_span_store_trace_tags(f.ss, t2, key, value, 2), 1);
    key[1] = "nothing";
    T_EQ(sn_span_store_trace_tags(f.ss, t2, key, value, 2), 0);
    T_EQ(sn_span_store_trace_tags(f.ss, t2, key, value, 0), 1);
    uint8_t none[16] = {1};
    T_EQ(tags_of(f.ss, none, "attr.0", NULL), 0);
    /* a trace over two requests: the union of its blocks' tags */
    struct sn_span_batch c = {0};
    add_span(&c, 1, 2, "db", "q", t0, 10);
    T_EQ(sn_span_store_put(f.ss, &c, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    key[0] = "attr.0";
    value[0] = "value-10-0";
    key[1] = "retry";
    T_EQ(sn_span_store_trace_tags(f.ss, t1, key, value, 2), 1);
    close_fx(&f);
    sn_span_batch_fini(&a);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
}

static int old_dbs(MDB_txn *txn, void *arg)
{
    MDB_dbi blocks, index;
    uint8_t kb[8] = {0, 0, 0, 0, 0, 0, 0, 1}, vb[32] = {0};
    MDB_val k = {8, kb}, v = {32, vb};
    int rc;
    const int *version = arg; /* 0: none (before chunks), else written in tnames */
    if ((rc = mdb_dbi_open(txn, "tblocks", MDB_CREATE, &blocks)) ||
        (rc = mdb_put(txn, blocks, &k, &v, 0)))
        return rc;
    if (*version) {
        MDB_dbi names;
        uint8_t ver[4] = {0, 0, 0, (uint8_t)*version};
        MDB_val vk = {1, "V"}, vv = {4, ver};
        if ((rc = mdb_dbi_open(txn, "tnames", MDB_CREATE, &names)))
            return rc;
        return mdb_put(txn, names, &vk, &vv, 0);
    }
    if ((rc = mdb_dbi_open(txn, "tindex", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &index)))
        return rc;
    return mdb_put(txn, index, &k, &v, 0);
}

/* annotationQuery over more candidate traces than a search reads (SN_QUERY_MAX_READ): the
 * tags' filters pass over the traces without the tag, so the one that has it is found. */
static void test_tag_search(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    uint64_t t0 = (now_ns() / 60000000000ULL - 30) * 60000000000ULL;
    int ntraces = SN_QUERY_MAX_READ + 5000;

    T_REQUIRE(open_fx(&f, &o));
    for (int r = 0; r * 500 < ntraces; r++) {
        struct sn_span_batch b = {0};
        for (int i = 0; i < 500 && r * 500 + i < ntraces; i++) {
            int t = r * 500 + i; /* trace 0 the oldest: the only one with the tag */
            struct sn_span *sp =
                add_span(&b, t, 0, "front", "root", t0 + (uint64_t)t * 50000000ULL, 1000000);
            sp->trace_id[13] = (uint8_t)(t >> 16);
            if (t == 0) {
                sp->attrs[0].val = "needle";
                sp->attrs[0].vlen = 6;
            }
        }
        T_EQ(sn_span_store_put(f.ss, &b, now_ns()), 0);
        T_EQ(sn_span_store_sync(f.ss), 0);
        sn_span_batch_fini(&b);
    }
    struct sn_trace_query q = {.service = "front", .limit = 10};
    q.end_ms = now_ns() / 1000000;
    q.lookback_ms = 3600000;
    char text[] = "attr.0=needle";
    T_EQ(sn_trace_query_terms(&q, text), 0);
    struct sn_span_batch *traces;
    size_t n;
    T_EQ(sn_trace_find(f.ss, &q, &traces, &n), 0);
    T_EQ(n, 1);
    if (n == 1) {
        T_EQ(traces[0].n, 1);
        T_EQ(traces[0].spans[0].start_ns, t0);
    }
    sn_trace_list_free(traces, n);
    char none[] = "attr.0=nothing";
    T_EQ(sn_trace_query_terms(&q, none), 0);
    T_EQ(sn_trace_find(f.ss, &q, &traces, &n), 0);
    T_EQ(n, 0);
    sn_trace_list_free(traces, n);
    close_fx(&f);
}

/* A trace's spans over two requests (two chunks): a search reads only the spans whose block's
 * filter has its first term, and still finds a trace whose tag is on the older request's span
 * of the service, or whose terms are on spans of two requests; a tag on another service's span
 * does not make a trace of this one (Zipkin's terms constrain the service's spans). */
static void test_tag_split_trace(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    uint64_t t0 = now_ns() - 600000000000ULL;
    struct sn_span_batch b1 = {0}, b2 = {0};
    T_REQUIRE(open_fx(&f, &o));
    /* trace 1: front's older span has needle, its newer one mark; trace 2: needle on back */
    struct sn_span *a = add_span(&b1, 1, 0, "front", "root", t0, 9000000);
    a->attrs[0].val = "needle";
    a->attrs[0].vlen = 6;
    struct sn_span *c = add_span(&b1, 2, 0, "front", "root", t0 + 1000, 9000000);
    (void)c;
    struct sn_span *d = add_span(&b1, 2, 1, "back", "get", t0 + 2000, 1000000);
    d->attrs[0].val = "needle";
    d->attrs[0].vlen = 6;
    T_EQ(sn_span_store_put(f.ss, &b1, now_ns()), 0);
    struct sn_span *e = add_span(&b2, 1, 1, "front", "call", t0 + 5000000, 1000000);
    e->attrs[3].val = "mark";
    e->attrs[3].vlen = 4;
    add_span(&b2, 3, 0, "front", "root", t0 + 6000000, 1000000);
    T_EQ(sn_span_store_put(f.ss, &b2, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);

    static const struct {
        const char *service, *terms;
        int want; /* the trace found (its id's last byte), 0: none */
    } cases[] = {
        {"front", "attr.0=needle", 1},
        {"front", "attr.3=mark", 1},
        {"front", "attr.3=mark and attr.0=needle", 1},
        {"front", "attr.0=needle and attr.3=mark", 1},
        {"back", "attr.0=needle", 2},
        {NULL, "attr.3=mark", 1},
        {"front", "attr.0=absent", 0},
        {"back", "attr.3=mark", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_trace_query q = {.service = cases[i].service, .limit = 10};
        q.end_ms = now_ns() / 1000000;
        q.lookback_ms = 3600000;
        char text[64];
        snprintf(text, sizeof(text), "%s", cases[i].terms);
        T_EQ(sn_trace_query_terms(&q, text), 0);
        struct sn_span_batch *traces;
        size_t n;
        T_EQ(sn_trace_find(f.ss, &q, &traces, &n), 0);
        T_EQ(n, cases[i].want ? 1 : 0);
        if (n == 1 && cases[i].want) {
            T_EQ(traces[0].spans[0].trace_id[15], cases[i].want);
            T_EQ(traces[0].n, 2); /* both of its spans */
        }
        sn_trace_list_free(traces, n);
    }
    sn_span_batch_fini(&b1);
    sn_span_batch_fini(&b2);
    close_fx(&f);
}

/* Trace ids whose last 8 bytes are the same share their ttrace key: each is still found alone
 * (and its tags), whether they are in one request (one chunk) or in two; an id of that key not
 * stored is not found. */
static void test_shared_keys(void)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    struct sn_span_batch a = {0}, b = {0}, out = {0};
    uint64_t t0 = now_ns() - 60000000000ULL;
    T_REQUIRE(open_fx(&f, &o));
    for (int s = 0; s < 3; s++) /* trace 1 with first byte 0xab, then 0xac: one chunk */
        add_span(&a, 1, s, "front", "root", t0 + (uint64_t)s, 1000);
    for (int s = 0; s < 2; s++)
        add_span(&a, 1, s, "front", "root", t0 + 10 + (uint64_t)s, 1000)->trace_id[0] = 0xac;
    add_span(&b, 1, 0, "front", "root", t0 + 20, 1000)->trace_id[1] = 7; /* another chunk */
    T_EQ(sn_span_store_put(f.ss, &a, now_ns()), 0);
    T_EQ(sn_span_store_put(f.ss, &b, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    T_EQ(sn_span_store_trace(f.ss, a.spans[0].trace_id, &out), 0);
    T_EQ(out.n, 3);
    sn_span_batch_fini(&out);
    T_EQ(sn_span_store_trace(f.ss, a.spans[3].trace_id, &out), 0);
    T_EQ(out.n, 2);
    T_OK(out.n == 2 && out.spans[0].trace_id[0] == 0xac && out.spans[1].trace_id[0] == 0xac);
    sn_span_batch_fini(&out);
    T_EQ(sn_span_store_trace(f.ss, b.spans[0].trace_id, &out), 0);
    T_EQ(out.n, 1);
    T_OK(out.n == 1 && out.spans[0].start_ns == t0 + 20);
    sn_span_batch_fini(&out);
    uint8_t none[16];
    memcpy(none, a.spans[0].trace_id, 16);
    none[2] = 9; /* the key of the three, another id */
    T_EQ(sn_span_store_trace(f.ss, none, &out), -ENOENT);
    T_EQ(out.n, 0);
    T_EQ(tags_of(f.ss, b.spans[0].trace_id, "attr.0", NULL), 1);
    close_fx(&f);
    sn_span_batch_fini(&a);
    sn_span_batch_fini(&b);
}

/* A store of the format before chunks (an index of dup entries, no version), or of format 2
 * (before values as skeletons and runs), is emptied. */
static void old_format(int version)
{
    struct fixture f = {0};
    struct sn_span_store_opts o = {0};
    char why[256];
    snprintf(f.dir, sizeof(f.dir), "%s/s%d", root, ndirs++);
    T_REQUIRE(sn_env_open(f.dir, 0, &f.env, why, sizeof(why)) == 0);
    T_EQ(sn_env_write(f.env, old_dbs, &version), 0);
    T_REQUIRE(sn_span_store_open(f.env, &o, &f.ss, why, sizeof(why)) == 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st = {0};
    T_REQUIRE(sn_env_read_begin(f.env, &txn) == 0);
    T_EQ(mdb_dbi_open(txn, "tblocks", 0, &dbi), 0);
    T_EQ(mdb_stat(txn, dbi, &st), 0);
    T_EQ(st.ms_entries, 0); /* the old block went */
    sn_env_read_end(f.env, txn);
    struct sn_span_batch in = {0}, out = {0};
    add_span(&in, 5, 0, "front", "root", now_ns() - 1000000000ULL, 5000);
    T_EQ(sn_span_store_put(f.ss, &in, now_ns()), 0);
    T_EQ(sn_span_store_sync(f.ss), 0);
    T_EQ(sn_span_store_trace(f.ss, in.spans[0].trace_id, &out), 0);
    T_EQ(out.n, 1);
    sn_span_batch_fini(&out);
    close_fx(&f);
    T_REQUIRE(open_fx(&f, &o)); /* the version is kept: nothing is dropped again */
    T_EQ(sn_span_store_trace(f.ss, in.spans[0].trace_id, &out), 0);
    T_EQ(out.n, 1);
    sn_span_batch_fini(&out);
    close_fx(&f);
    sn_span_batch_fini(&in);
}

static void test_old_format(void)
{
    old_format(0);
    old_format(2);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_seed(7);
    const char *base = getenv("SN_TEST_OUT") ? getenv("SN_TEST_OUT") : "/tmp";
    snprintf(root, sizeof(root), "%s/trace-store-XXXXXX", base);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", base);
    if (system(cmd) != 0 || !mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    t_run("block_round_trip", test_block_round_trip);
    t_run("block_flips", test_block_flips);
    t_run("block_values", test_block_values);
    t_run("block_noids", test_block_noids);
    t_run("put_read", test_put_read);
    t_run("retention", test_retention);
    t_run("size_cap", test_size_cap);
    t_run("concurrent_puts", test_concurrent_puts);
    t_run("index_values", test_index_values);
    t_run("tags", test_tags);
    t_run("tag_search", test_tag_search);
    t_run("tag_split_trace", test_tag_split_trace);
    t_run("shared_keys", test_shared_keys);
    t_run("old_format", test_old_format);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
