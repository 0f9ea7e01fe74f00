/*
 * Wire frames into JSON (sn_wire_frame_to_json(), src/wire/frame_json.h): the agent's exact
 * bytes (member order, arity names, drops, ranges), decode(encode(f)) equals f for every
 * arity and for every bucket that holds integers, encode(decode(text)) gives back the
 * documented examples byte for byte, and the edges: counts past INT64_MAX, buckets holding
 * no integer or NaN, keys that are not UTF-8, unknown arities.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/frame_build.h"
#include "agent/probe.h"
#include "agent_frames.h"
#include "core/hist.h"
#include "t.h"
#include "wire/frame.h"
#include "wire/frame_json.h"

/* The compact text of f's JSON form (owned), or NULL. */
static char *encode_text(const struct sn_wire_frame *f)
{
    json_t *j = sn_wire_frame_to_json(f);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return text;
}

/* encode then decode: the frame read back equals f. */
static bool json_round_trip(const struct sn_wire_frame *f)
{
    json_t *j = sn_wire_frame_to_json(f);
    struct sn_wire_frame d;
    char why[256] = "";
    bool ok = j && sn_wire_frame_from_json(j, &d, why, sizeof(why)) == 0;

    if (!ok)
        t_note("decode failed: %s", why);
    if (ok) {
        ok = sn_wire_frame_equal(f, &d);
        sn_wire_frame_fini(&d);
    }
    json_decref(j);
    return ok;
}

/* decode text then encode: the same bytes come back. */
static void check_text_round_trip(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    struct sn_wire_frame f;
    char why[256] = "", *out;

    T_REQUIRE(j != NULL);
    T_EQ(sn_wire_frame_from_json(j, &f, why, sizeof(why)), 0);
    T_STR(why, "");
    out = encode_text(&f);
    T_STR(out ? out : "(null)", text);
    free(out);
    sn_wire_frame_fini(&f);
    json_decref(j);
}

static void test_documented_examples(void)
{
    /* frame_json.h and agent/frame_build.h */
    check_text_round_trip(
        "{\"v\":1,\"id\":\"1\",\"host\":\"web1\",\"t\":1763812345,\"arity\":\"numeric-"
        "decomposition\",\"value\":{\"nginx\":[[[2000000,2099999],18],[[2100000,2199999],2]]},"
        "\"drops\":{\"over_cap\":0,\"map_full\":0}}");
    /* docs/api.md's ingest example */
    check_text_round_trip(
        "{\"v\":1,\"id\":\"3\",\"host\":\"web1\",\"t\":1763812345,\"arity\":\"numeric-"
        "decomposition\",\"value\":{\"nginx\":[[[2000000,2099999],18]]},\"drops\":{\"over_cap\":"
        "0,\"map_full\":0}}");
    /* one of each other arity */
    check_text_round_trip("{\"v\":1,\"id\":\"7\",\"host\":\"db2\",\"t\":0,\"arity\":\"scalar\","
                          "\"value\":42,\"drops\":{\"over_cap\":3,\"map_full\":4}}");
    check_text_round_trip(
        "{\"v\":1,\"id\":\"acme/2\",\"host\":\"h\",\"t\":9,\"arity\":\"discrete-decomposition\","
        "\"value\":{\"sh\":1,\"nginx\":5,\"other\":2},\"drops\":{\"over_cap\":2,\"map_full\":0}}");
    check_text_round_trip(
        "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":9,\"arity\":\"numeric-"
        "decomposition\",\"value\":[[[-1099,-1000],6],[[0,0],1],[[1,1],2],[[9,9],3]"
        ",[[10,10],4]],\"drops\":{\"over_cap\":0,\"map_full\":0}}");
    check_text_round_trip("{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":9,\"arity\":\"numeric-"
                          "decomposition\",\"value\":[],\"drops\":{\"over_cap\":0,\"map_full\":0}"
                          "}");
    check_text_round_trip("{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":9,\"arity\":\"discrete-"
                          "decomposition\",\"value\":{},\"drops\":{\"over_cap\":0,\"map_full\":0}"
                          "}");
}

/* The wire view of an agent frame encodes to expect, to what the agent's own encoder writes,
 * and decodes back equal. */
static void check_agent(const struct sn_frame *fr, const char *expect)
{
    struct sn_wire_frame w;
    json_t *old = t_agent_json(fr, "web1");
    char *old_text = old ? json_dumps(old, JSON_COMPACT) : NULL, *text;

    T_EQ(sn_frame_wire_view(fr, "web1", &w), 0);
    text = encode_text(&w);
    T_REQUIRE(text && old_text);
    T_STR(text, old_text);
    if (expect)
        T_STR(text, expect);
    T_OK(json_round_trip(&w));
    free(text);
    free(old_text);
    json_decref(old);
    free(w.entries);
}

/* The agent's exact bytes of each frame of t_agent_frames_each() (by-key: no text given). */
static void check_agent_each(const struct sn_frame *fr, int which, void *arg)
{
    static const char *const expect[] = {
        "{\"v\":1,\"id\":\"7\",\"host\":\"web1\",\"t\":1700000000,\"arity\":"
        "\"scalar\",\"value\":9,\"drops\":{\"over_cap\":1,\"map_full\":2}}",
        "{\"v\":1,\"id\":\"7\",\"host\":\"web1\",\"t\":1700000001,\"arity\":"
        "\"discrete-decomposition\",\"value\":{\"nginx\":9,\"sh\":4,\"postgres\":5,"
        "\"other\":4},\"drops\":{\"over_cap\":4,\"map_full\":0}}",
        "{\"v\":1,\"id\":\"7\",\"host\":\"web1\",\"t\":1700000002,\"arity\":\"numeric-"
        "decomposition\",\"value\":[[[0,0],1],[[1,1],2],[[9,9],3],[[10,10],4],[[11,11],5]"
        ",[[99,99],6],[[100,109],7],[[2000000,2099999],17],[[120000000,129999999],10],"
        "[[1000000000000,1099999999999],11],[[100000000000000000,109999999999999999],12],"
        "[[9200000000000000000,9223372036854775807],13]],\"drops\":{\"over_cap\":0,"
        "\"map_full\":0}}",
        NULL,
    };
    (void)arg;
    check_agent(fr, expect[which]);
}

static void test_agent_bytes(void)
{
    t_agent_frames_each(check_agent_each, NULL);
}

/* Hand-built frames of every arity read back equal, histograms with negative, clamped and
 * zero buckets included. */
static void test_round_trip_each_arity(void)
{
    struct sn_hist *h1 = sn_hist_create(), *h2 = sn_hist_create(), *h3 = sn_hist_create();

    T_REQUIRE(h1 && h2 && h3);
    t_wire_hists(h1, h2);
    sn_hist_insert_u64(h2, 0, 3); /* and a zero bucket */

    struct sn_wire_frame s = {.id = "1",
                              .host = "web1",
                              .t = 1763812345,
                              .arity = SN_WIRE_SCALAR,
                              .total = 12345678901234,
                              .over_cap = 1,
                              .map_full = 2};
    T_OK(json_round_trip(&s));
    s.total = 0;
    T_OK(json_round_trip(&s));

    struct sn_wire_entry d[] = {
        {"a", 3, NULL}, {"b\"q\\", 0, NULL}, {"\xc3\xa9t\xc3\xa9", 7, NULL}, {"", 1, NULL}};
    struct sn_wire_frame df = {.id = "acme/12",
                               .host = "h",
                               .t = 5,
                               .arity = SN_WIRE_DISCRETE,
                               .total = 11,
                               .n = 4,
                               .entries = d};
    T_OK(json_round_trip(&df));
    df.n = 0, df.total = 0;
    T_OK(json_round_trip(&df));

    struct sn_wire_entry n1[] = {{"", 30, h1}};
    struct sn_wire_frame nf = {.id = "2",
                               .host = "h",
                               .t = 6,
                               .arity = SN_WIRE_NUMERIC,
                               .total = 30,
                               .map_full = 9,
                               .n = 1,
                               .entries = n1};
    T_OK(json_round_trip(&nf));
    n1[0] = (struct sn_wire_entry){"", 0, h3}; /* empty histogram */
    nf.total = 0;
    T_OK(json_round_trip(&nf));

    struct sn_wire_entry k[] = {{"a", 30, h1}, {"b", 17, h2}, {"c", 0, h3}};
    struct sn_wire_frame kf = {.id = "3",
                               .host = "h",
                               .t = 7,
                               .arity = SN_WIRE_NUMERIC_BY_KEY,
                               .total = 47,
                               .over_cap = 5,
                               .n = 3,
                               .entries = k};
    T_OK(json_round_trip(&kf));

    sn_hist_destroy(h1);
    sn_hist_destroy(h2);
    sn_hist_destroy(h3);
}

/* Every bucket that holds integers encodes to its range and reads back as itself. */
static void test_every_bucket(void)
{
    size_t n = 0, fails = 0;
    struct sn_hist *h = sn_hist_create();
    struct sn_wire_entry e = {"", 0, h};
    struct sn_wire_frame f = {
        .id = "1", .host = "h", .t = 1, .arity = SN_WIRE_NUMERIC, .n = 1, .entries = &e};

    T_REQUIRE(h != NULL);
    for (uint32_t ord = 0; ord < SN_BUCKET_NORD; ord++) {
        struct sn_bucket b = sn_bucket_from_ord(ord);
        int64_t lo, hi;
        if (sn_bucket_int_range(b, &lo, &hi) != 0)
            continue;
        n++;
        sn_hist_clear(h);
        T_EQ(sn_hist_insert_raw(h, b, 2), 0);
        e.count = f.total = 2;
        if (!json_round_trip(&f) && fails++ < 5)
            t_note("bucket ord %" PRIu32 " [%" PRId64 ",%" PRId64 "]", ord, lo, hi);
    }
    T_EQU(fails, 0);
    sn_hist_clear(h); /* and all of them in one histogram */
    for (uint32_t ord = 0; ord < SN_BUCKET_NORD; ord++) {
        struct sn_bucket b = sn_bucket_from_ord(ord);
        int64_t lo, hi;
        if (sn_bucket_int_range(b, &lo, &hi) == 0)
            T_EQ(sn_hist_insert_raw(h, b, ord + 1), 0);
    }
    e.count = f.total = sn_hist_count(h);
    T_OK(json_round_trip(&f));
    t_note("%zu buckets", n);
    sn_hist_destroy(h);
}

static void test_edges(void)
{
    struct sn_hist *h = sn_hist_create();
    struct sn_wire_entry e = {"", 0, h};
    struct sn_wire_frame f = {
        .id = "1", .host = "h", .t = 1, .arity = SN_WIRE_NUMERIC, .n = 1, .entries = &e};
    char *text;

    /* buckets holding no integer fold into the range of the integer below them; NaN is out;
     * zero counts are skipped */
    T_REQUIRE(h != NULL);
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){10, 0}, 1), 0);  /* [1,1] */
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){11, 0}, 2), 0);  /* [1.1,1.2): none */
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){19, 0}, 3), 0);  /* [1.9,2): none */
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){20, 0}, 0), 0);  /* [2,2], empty */
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){-11, 0}, 4), 0); /* (-1.2,-1.1]: none */
    T_EQ(sn_hist_insert_raw(h, (struct sn_bucket){-10, 0}, 5), 0); /* [-1,-1] */
    T_EQ(sn_hist_insert(h, 0.0 / 0.0, 6), 0);                      /* NaN */
    text = encode_text(&f);
    T_STR(text ? text : "(null)",
          "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":1,\"arity\":\"numeric-decomposition\","
          "\"value\":[[[-1,-1],9],[[1,1],6]],\"drops\":{\"over_cap\":0,\"map_full\":0}}");
    free(text);
    sn_hist_destroy(h);

    /* counts past INT64_MAX saturate (a negative JSON count would not decode) */
    struct sn_wire_frame s = {.id = "1",
                              .host = "h",
                              .t = 1,
                              .arity = SN_WIRE_SCALAR,
                              .total = UINT64_MAX,
                              .over_cap = (uint64_t)INT64_MAX + 1,
                              .map_full = INT64_MAX};
    text = encode_text(&s);
    T_STR(text ? text : "(null)",
          "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":1,\"arity\":\"scalar\",\"value\":"
          "9223372036854775807,\"drops\":{\"over_cap\":9223372036854775807,\"map_full\":"
          "9223372036854775807}}");
    free(text);

    /* a key that is not UTF-8 is left out; a repeated key keeps the last value */
    struct sn_wire_entry d[] = {{"ok", 1, NULL}, {"bad\xff", 2, NULL}, {"ok", 3, NULL}};
    struct sn_wire_frame df = {.id = "1",
                               .host = "h",
                               .t = 1,
                               .arity = SN_WIRE_DISCRETE,
                               .total = 6,
                               .n = 3,
                               .entries = d};
    text = encode_text(&df);
    T_STR(text ? text : "(null)",
          "{\"v\":1,\"id\":\"1\",\"host\":\"h\",\"t\":1,\"arity\":\"discrete-decomposition\","
          "\"value\":{\"ok\":3},\"drops\":{\"over_cap\":0,\"map_full\":0}}");
    free(text);

    /* refused: an unknown arity, no id, a host that is not UTF-8 */
    s.arity = 4;
    T_OK(sn_wire_frame_to_json(&s) == NULL);
    s.arity = SN_WIRE_SCALAR;
    s.id = NULL;
    T_OK(sn_wire_frame_to_json(&s) == NULL);
    s.id = "1";
    s.host = "\xc0\x80";
    T_OK(sn_wire_frame_to_json(&s) == NULL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("documented examples: encode(decode(text)) == text", test_documented_examples);
    t_run("agent frames: the agent's bytes, and they read back", test_agent_bytes);
    t_run("decode(encode(f)) == f for every arity", test_round_trip_each_arity);
    t_run("every bucket holding integers reads back", test_every_bucket);
    t_run("edges: folded and NaN buckets, saturation, bad keys, refusals", test_edges);
    return t_done();
}
