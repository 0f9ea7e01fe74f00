/*
 * JSON frames into wire frames (src/wire/frame_json.h): exact values of every arity, equality
 * with the binary frame of the same content (frames built by the agent's own code and by
 * hand), every bucket that holds integers, the three body forms, the messages of bad frames,
 * frame numbering in errors, and the bound on the number of frames.
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

/* Decodes one frame from text with sn_wire_frame_from_json(). */
static int from_text(const char *text, struct sn_wire_frame *f, char *why, size_t whylen)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    int rc;

    if (!j) {
        t_note("%s: %s", text, err.text);
        memset(f, 0, sizeof(*f));
        return -1000;
    }
    rc = sn_wire_frame_from_json(j, f, why, whylen);
    json_decref(j);
    return rc;
}

/* Encodes f and decodes it back: the binary path accepts what the JSON path produced. */
static bool binary_round_trip(const struct sn_wire_frame *f)
{
    size_t n = sn_wire_frame_len(f);
    unsigned char *buf = malloc(n);
    struct sn_wire_frame d;
    bool ok = buf && sn_wire_frame_encode(f, buf, n) == (ssize_t)n &&
              sn_wire_frame_decode(buf, n, &d) == 0;

    if (ok) {
        ok = sn_wire_frame_equal(f, &d);
        sn_wire_frame_fini(&d);
    }
    free(buf);
    return ok;
}

static uint64_t bucket_count_of(const struct sn_hist *h, uint64_t v)
{
    return sn_hist_bucket_count(h, sn_bucket_of_u64(v));
}

static void test_each_arity(void)
{
    struct sn_wire_frame f;
    char why[256];

    T_EQ(from_text("{\"v\":1,\"id\":\"1\",\"host\":\"web1\",\"t\":1763812345,\"arity\":\"scalar\","
                   "\"value\":42,\"drops\":{\"over_cap\":3,\"map_full\":4}}",
                   &f, why, sizeof(why)),
         0);
    T_STR(why, "");
    T_STR(f.id, "1");
    T_STR(f.host, "web1");
    T_EQ(f.t, 1763812345);
    T_EQ(f.arity, SN_WIRE_SCALAR);
    T_EQU(f.total, 42);
    T_EQU(f.over_cap, 3);
    T_EQU(f.map_full, 4);
    T_EQ(f.n, 0);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);

    /* no "v", no "drops", an unknown member */
    T_EQ(from_text("{\"id\":\"errs\",\"host\":\"db\",\"t\":0,\"arity\":\"discrete-decomposition\","
                   "\"value\":{\"read\":7,\"other\":4,\"\":0},\"future\":[1,2]}",
                   &f, why, sizeof(why)),
         0);
    T_EQ(f.arity, SN_WIRE_DISCRETE);
    T_EQ(f.t, 0);
    T_EQU(f.total, 11);
    T_EQU(f.over_cap, 0);
    T_EQU(f.map_full, 0);
    T_REQUIRE(f.n == 3);
    T_STR(f.entries[0].key, "read");
    T_EQU(f.entries[0].count, 7);
    T_STR(f.entries[1].key, "other");
    T_EQU(f.entries[1].count, 4);
    T_STR(f.entries[2].key, "");
    T_EQU(f.entries[2].count, 0);
    T_OK(f.entries[0].hist == NULL);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);

    /* numeric, no key: a repeated bucket adds, a zero count leaves no bucket */
    T_EQ(from_text("{\"v\":1,\"id\":\"2\",\"host\":\"web1\",\"t\":5,\"arity\":"
                   "\"numeric-decomposition\",\"value\":[[[2000000,2099999],18],[[2100000,"
                   "2199999],2],[[2000000,2099999],1],[[0,0],5],[[1,1],0]],\"drops\":{\"map_full\":"
                   "9}}",
                   &f, why, sizeof(why)),
         0);
    T_EQ(f.arity, SN_WIRE_NUMERIC);
    T_EQU(f.total, 26);
    T_EQU(f.over_cap, 0);
    T_EQU(f.map_full, 9);
    T_REQUIRE(f.n == 1);
    T_STR(f.entries[0].key, "");
    T_EQU(f.entries[0].count, 26);
    T_REQUIRE(f.entries[0].hist != NULL);
    T_EQ(sn_hist_nbuckets(f.entries[0].hist), 3);
    T_EQU(bucket_count_of(f.entries[0].hist, 2000000), 19);
    T_EQU(bucket_count_of(f.entries[0].hist, 2150000), 2);
    T_EQU(bucket_count_of(f.entries[0].hist, 0), 5);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);

    /* numeric by key, with an empty histogram and a negative bucket */
    T_EQ(from_text("{\"v\":1,\"id\":\"lat\",\"host\":\"web1\",\"t\":9,\"arity\":"
                   "\"numeric-decomposition\",\"value\":{\"nginx\":[[[2000000,2099999],18],"
                   "[[2100000,2199999],2]],\"idle\":[],\"neg\":[[[-109,-100],3]]}}",
                   &f, why, sizeof(why)),
         0);
    T_EQ(f.arity, SN_WIRE_NUMERIC_BY_KEY);
    T_EQU(f.total, 23);
    T_REQUIRE(f.n == 3);
    T_STR(f.entries[0].key, "nginx");
    T_EQU(f.entries[0].count, 20);
    T_EQU(bucket_count_of(f.entries[0].hist, 2099999), 18);
    T_EQU(bucket_count_of(f.entries[0].hist, 2100000), 2);
    T_STR(f.entries[1].key, "idle");
    T_EQU(f.entries[1].count, 0);
    T_EQ(sn_hist_nbuckets(f.entries[1].hist), 0);
    T_STR(f.entries[2].key, "neg");
    T_EQU(f.entries[2].count, 3);
    T_EQU(sn_hist_bucket_count(f.entries[2].hist, sn_bucket_make(-10, 2)), 3);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);

    /* numeric by key with no key at all */
    T_EQ(from_text("{\"id\":\"lat\",\"host\":\"h\",\"t\":9,\"arity\":\"numeric-decomposition\","
                   "\"value\":{}}",
                   &f, why, sizeof(why)),
         0);
    T_EQ(f.arity, SN_WIRE_NUMERIC_BY_KEY);
    T_EQ(f.n, 0);
    T_EQU(f.total, 0);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);
}

/* The agent's JSON and binary forms of f decode to equal wire frames. */
static void check_agent_frame(const struct sn_frame *fr, enum sn_wire_arity arity)
{
    json_t *j = t_agent_json(fr, "web1");
    char *text = json_dumps(j, JSON_COMPACT);
    size_t len;
    unsigned char *bin = t_agent_wire(fr, "web1", &len);
    struct sn_wire_frame a, b;
    char why[256] = "";

    t_note("%s", text);
    T_EQ(sn_wire_frame_from_json(j, &a, why, sizeof(why)), 0);
    T_STR(why, "");
    T_EQ(sn_wire_frame_decode(bin, len, &b), 0);
    T_EQ(a.arity, arity);
    T_OK(a.id && b.id && sn_wire_frame_equal(&a, &b));
    T_OK(binary_round_trip(&a));
    sn_wire_frame_fini(&a);
    sn_wire_frame_fini(&b);
    free(bin);
    free(text);
    json_decref(j);
}

/* t_agent_frames_each()'s frames, in order: their arities. */
static void check_agent_each(const struct sn_frame *fr, int which, void *arg)
{
    static const enum sn_wire_arity arity[] = {SN_WIRE_SCALAR, SN_WIRE_DISCRETE, SN_WIRE_NUMERIC,
                                               SN_WIRE_NUMERIC_BY_KEY};
    (void)arg;
    check_agent_frame(fr, arity[which]);
}

static void test_agent_frames_equal_binary(void)
{
    t_agent_frames_each(check_agent_each, NULL);
}

/* Appends h's raw form, [[lo,hi],count],..., to out. */
static void raw_json(const struct sn_hist *h, char *out, size_t len)
{
    struct sn_bucket b;
    uint64_t c;
    size_t used = strlen(out);

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++) {
        int64_t lo, hi;
        T_EQ(sn_bucket_int_range(b, &lo, &hi), 0);
        used +=
            (size_t)snprintf(out + used, len - used, "%s[[%" PRId64 ",%" PRId64 "],%" PRIu64 "]",
                             i ? "," : "", lo, hi, c);
    }
}

static void test_hand_built_equals_binary(void)
{
    struct sn_hist *h1 = sn_hist_create(), *h2 = sn_hist_create();
    char text[4096], why[256];
    struct sn_wire_frame a, b;

    t_wire_hists(h1, h2);

    struct sn_wire_entry e[] = {{"a", 30, h1}, {"b\"q", 14, h2}};
    struct sn_wire_frame f = {.id = "latency-by-app",
                              .host = "web1",
                              .t = 1,
                              .arity = SN_WIRE_NUMERIC_BY_KEY,
                              .total = 44,
                              .over_cap = 5,
                              .n = 2,
                              .entries = e};
    size_t n = sn_wire_frame_len(&f);
    unsigned char *buf = malloc(n);
    T_EQ(sn_wire_frame_encode(&f, buf, n), (ssize_t)n);
    T_EQ(sn_wire_frame_decode(buf, n, &b), 0);

    snprintf(text, sizeof(text),
             "{\"v\":1,\"id\":\"latency-by-app\",\"host\":\"web1\",\"t\":1,\"arity\":"
             "\"numeric-decomposition\",\"drops\":{\"over_cap\":5},\"value\":{\"a\":[");
    raw_json(h1, text, sizeof(text));
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "],\"b\\\"q\":[");
    raw_json(h2, text, sizeof(text));
    snprintf(text + strlen(text), sizeof(text) - strlen(text), "]}}");
    t_note("%s", text);
    T_EQ(from_text(text, &a, why, sizeof(why)), 0);
    T_STR(why, "");
    T_OK(a.id && b.id && sn_wire_frame_equal(&a, &b));
    T_OK(a.id && sn_wire_frame_equal(&a, &f));
    sn_wire_frame_fini(&a);
    sn_wire_frame_fini(&b);
    free(buf);
    sn_hist_destroy(h1);
    sn_hist_destroy(h2);
}

/* Every bucket that holds an integer is found again from its range; others never are. */
static void test_every_bucket(void)
{
    size_t found = 0, fails = 0;

    for (uint32_t ord = 0; ord < SN_BUCKET_NORD; ord++) {
        struct sn_bucket b = sn_bucket_from_ord(ord);
        int64_t lo, hi;
        char text[256], why[256];
        struct sn_wire_frame f;

        if (sn_bucket_int_range(b, &lo, &hi) != 0)
            continue;
        found++;
        snprintf(text, sizeof(text),
                 "{\"id\":\"1\",\"host\":\"h\",\"t\":1,\"arity\":\"numeric-decomposition\","
                 "\"value\":[[[%" PRId64 ",%" PRId64 "],2]]}",
                 lo, hi);
        if (from_text(text, &f, why, sizeof(why)) != 0 ||
            sn_hist_bucket_count(f.entries[0].hist, b) != 2) {
            if (fails++ < 5) {
                t_note("%s: %s", text, why);
                T_OK(false);
            }
        }
        sn_wire_frame_fini(&f);
        /* one integer more or less is no bucket (except where two buckets would merge) */
        if (hi < INT64_MAX && hi > lo) {
            snprintf(text, sizeof(text),
                     "{\"id\":\"1\",\"host\":\"h\",\"t\":1,\"arity\":\"numeric-decomposition\","
                     "\"value\":[[[%" PRId64 ",%" PRId64 "],2]]}",
                     lo, hi - 1);
            t_note("%s", text);
            T_EQ(from_text(text, &f, why, sizeof(why)), -EINVAL);
        }
    }
    T_EQU(fails, 0);
    t_note("%zu buckets hold integers", found);
    /* both signs: exponents 1..17, 10..92 at exponent 18, 10, 20 .. 90 at exponent 0; zero */
    T_EQU(found, 2 * (17 * 90 + 83 + 9) + 1);
}

#define T_BAD(text, sub)                                                                           \
    do {                                                                                           \
        struct sn_wire_frame f_;                                                                   \
        char why_[256] = "x";                                                                      \
        t_note("%s", text);                                                                        \
        T_EQ(from_text(text, &f_, why_, sizeof(why_)), -EINVAL);                                   \
        t_note("%s -> %s", text, why_);                                                            \
        T_OK(strstr(why_, sub) != NULL);                                                           \
        T_OK(f_.id == NULL && f_.host == NULL && f_.entries == NULL && f_.n == 0);                 \
        nbad++;                                                                                    \
    } while (0)

#define HEAD "\"id\":\"1\",\"host\":\"h\",\"t\":5,"

static void test_bad_frames(void)
{
    int nbad = 0;
    char big[2000];

    T_BAD("[1]", "a frame must be a JSON object");
    T_BAD("{\"v\":2," HEAD "\"arity\":\"scalar\",\"value\":1}", "\"v\" must be 1");
    T_BAD("{\"v\":\"1\"," HEAD "\"arity\":\"scalar\",\"value\":1}", "\"v\" must be 1");
    T_BAD("{\"host\":\"h\",\"t\":5,\"arity\":\"scalar\",\"value\":1}", "\"id\" is missing");
    T_BAD("{\"id\":7,\"host\":\"h\",\"t\":5,\"arity\":\"scalar\",\"value\":1}",
          "\"id\" must be a string");
    T_BAD("{\"id\":\"\",\"host\":\"h\",\"t\":5,\"arity\":\"scalar\",\"value\":1}",
          "\"id\" must be 1 to 255 bytes long (is 0)");
    memset(big, 'x', 300);
    snprintf(big + 300, sizeof(big) - 300,
             "\",\"id\":\"1\",\"t\":5,\"arity\":\"scalar\",\"value\":1}");
    char text[2100] = "{\"host\":\"";
    strcat(text, big);
    T_BAD(text, "\"host\" must be 1 to 255 bytes long (is 300)");
    T_BAD("{\"id\":\"1\",\"host\":null,\"t\":5,\"arity\":\"scalar\",\"value\":1}",
          "\"host\" must be a string");
    T_BAD("{\"id\":\"1\",\"host\":\"h\",\"arity\":\"scalar\",\"value\":1}", "\"t\" is missing");
    T_BAD("{\"id\":\"1\",\"host\":\"h\",\"t\":\"now\",\"arity\":\"scalar\",\"value\":1}",
          "\"t\" must be an integer");
    T_BAD("{\"id\":\"1\",\"host\":\"h\",\"t\":1.5,\"arity\":\"scalar\",\"value\":1}",
          "\"t\" must be an integer");
    T_BAD("{\"id\":\"1\",\"host\":\"h\",\"t\":-1,\"arity\":\"scalar\",\"value\":1}",
          "\"t\" must not be negative");
    T_BAD("{" HEAD "\"value\":1}", "\"arity\" is missing");
    T_BAD("{" HEAD "\"arity\":\"histogram\",\"value\":1}",
          "\"arity\" must be \"scalar\", \"discrete-decomposition\" or \"numeric-decomposition\"");
    T_BAD("{" HEAD "\"arity\":3,\"value\":1}", "\"arity\" must be \"scalar\"");
    T_BAD("{" HEAD "\"arity\":\"scalar\"}", "\"value\" is missing");
    T_BAD("{" HEAD "\"arity\":\"scalar\",\"value\":-1}",
          "\"value\" must be a non-negative integer for a scalar frame");
    T_BAD("{" HEAD "\"arity\":\"scalar\",\"value\":{\"a\":1}}",
          "\"value\" must be a non-negative integer");
    T_BAD("{" HEAD "\"arity\":\"discrete-decomposition\",\"value\":[1]}",
          "\"value\" must be an object {key: count}");
    T_BAD("{" HEAD "\"arity\":\"discrete-decomposition\",\"value\":{\"a\":1,\"nginx\":\"3\"}}",
          "value: \"nginx\" must be a non-negative integer");
    T_BAD("{" HEAD "\"arity\":\"discrete-decomposition\",\"value\":{\"a\":9223372036854775807,"
          "\"b\":9223372036854775807,\"c\":2}}",
          "value: the counts add up to more than 2^64-1");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":7}",
          "\"value\" must be an array of [[lo,hi],count] or an object");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[10,20],1]]}",
          "value: range [10,20] is not a histogram bucket");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[20,10],1]]}",
          "value: range [20,10] is not a histogram bucket");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[1000,1099],1],[[2,3],1]]}",
          "value: range [2,3] is not a histogram bucket");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":{\"nginx\":[[[100,109],1],"
          "[[110,110],1]]}}",
          "value: \"nginx\": range [110,110] is not a histogram bucket");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":{\"nginx\":[[[100,109],1],"
          "[100,1]]}}",
          "value: \"nginx\": item 2: the range must be [lo,hi], two integers");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[100,109.5],1]]}",
          "value: item 1: the range must be [lo,hi], two integers");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[100,109],1,2]]}",
          "value: item 1 must be [[lo,hi],count]");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[100,109],-1]]}",
          "value: item 1: the count must be a non-negative integer");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":{\"k\":5}}",
          "value: \"k\" must be an array of [[lo,hi],count]");
    T_BAD("{" HEAD "\"arity\":\"numeric-decomposition\",\"value\":[[[1,1],9223372036854775807],"
          "[[1,1],9223372036854775807],[[1,1],2]]}",
          "value: the counts add up to more than 2^64-1");
    T_BAD("{" HEAD "\"arity\":\"scalar\",\"value\":1,\"drops\":[0,0]}",
          "\"drops\" must be an object");
    T_BAD("{" HEAD "\"arity\":\"scalar\",\"value\":1,\"drops\":{\"over_cap\":-1}}",
          "drops: \"over_cap\" must be a non-negative integer");
    T_BAD("{" HEAD "\"arity\":\"scalar\",\"value\":1,\"drops\":{\"map_full\":true}}",
          "drops: \"map_full\" must be a non-negative integer");

    /* a key of SN_WIRE_MAX_KEY bytes is fine, one more is not (and is shortened in messages) */
    char key[SN_WIRE_MAX_KEY + 2], body[SN_WIRE_MAX_KEY + 200];
    memset(key, 'k', sizeof(key));
    key[SN_WIRE_MAX_KEY] = '\0';
    snprintf(body, sizeof(body),
             "{" HEAD "\"arity\":\"discrete-decomposition\",\"value\":{\"%s\":1}}", key);
    struct sn_wire_frame f;
    char why[256];
    T_EQ(from_text(body, &f, why, sizeof(why)), 0);
    T_EQ(f.n, 1);
    T_OK(binary_round_trip(&f));
    sn_wire_frame_fini(&f);
    key[SN_WIRE_MAX_KEY] = 'k';
    key[SN_WIRE_MAX_KEY + 1] = '\0';
    snprintf(body, sizeof(body),
             "{" HEAD "\"arity\":\"discrete-decomposition\",\"value\":{\"%s\":1}}", key);
    T_BAD(body, "...\" is longer than 1023 bytes");

    /* NUL bytes that a JSON value built in memory can hold */
    json_t *j = json_pack("{s:s,s:s#,s:i,s:s,s:i}", "id", "1", "host", "a\0b", 3, "t", 1, "arity",
                          "scalar", "value", 1);
    T_EQ(sn_wire_frame_from_json(j, &f, why, sizeof(why)), -EINVAL);
    T_STR(why, "\"host\" must not contain a NUL byte");
    json_decref(j);
    j = json_pack("{s:s,s:s,s:i,s:s,s:{}}", "id", "1", "host", "h", "t", 1, "arity",
                  "discrete-decomposition", "value");
    json_object_setn_new(json_object_get(j, "value"), "a\0b", 3, json_integer(1));
    T_EQ(sn_wire_frame_from_json(j, &f, why, sizeof(why)), -EINVAL);
    T_OK(strstr(why, "contains a NUL byte") != NULL);
    T_OK(f.entries == NULL);
    json_decref(j);

    /* a NULL why is fine */
    j = json_integer(1);
    T_EQ(sn_wire_frame_from_json(j, &f, NULL, 0), -EINVAL);
    json_decref(j);

    T_OK(nbad >= 12);
    t_note("%d bad frames", nbad);
}

/* Collects what sn_wire_frames_from_text() hands over. */
struct seen {
    int n;
    char ids[16][8];
    int64_t t[16];
    int stop_at; /* return -42 on this frame (from 1), 0: never */
};

static int collect(const struct sn_wire_frame *f, void *arg)
{
    struct seen *s = arg;

    if (!binary_round_trip(f))
        return -1;
    if (s->n < 16) {
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", f->id);
        s->t[s->n] = f->t;
    }
    s->n++;
    return s->n == s->stop_at ? -42 : 0;
}

#define FR(id, t)                                                                                  \
    "{\"id\":\"" id "\",\"host\":\"h\",\"t\":" #t ",\"arity\":\"discrete-decomposition\","         \
    "\"value\":{\"a\":1,\"b\":2}}"

static int body(const char *text, size_t max, struct seen *s, char *why, size_t whylen)
{
    memset(s, 0, sizeof(*s));
    return sn_wire_frames_from_text(text, strlen(text), max, collect, s, why, whylen);
}

static void test_forms(void)
{
    struct seen s;
    char why[256];

    /* single object, compact and pretty-printed */
    T_EQ(body(FR("one", 1), 10, &s, why, sizeof(why)), 1);
    T_STR(s.ids[0], "one");
    T_EQ(body("\n  {\n  \"id\": \"p\",\n  \"host\": \"h\",\n  \"t\": 3,\n  \"arity\": \"scalar\","
              "\n  \"value\": 7\n}\n\n",
              10, &s, why, sizeof(why)),
         1);
    T_STR(s.ids[0], "p");
    T_EQ(s.t[0], 3);

    /* JSON lines: blank lines, CRLF, trailing spaces, no final newline */
    T_EQ(body(FR("a", 1) "\n\n" FR("b", 2) "  \r\n \t\r\n" FR("c", 3), 10, &s, why, sizeof(why)),
         3);
    T_STR(why, "");
    T_EQ(s.n, 3);
    T_STR(s.ids[0], "a");
    T_STR(s.ids[1], "b");
    T_STR(s.ids[2], "c");
    T_EQ(s.t[2], 3);

    /* an array */
    T_EQ(body(" [" FR("x", 7) ",\n" FR("y", 8) "]\n", 10, &s, why, sizeof(why)), 2);
    T_STR(s.ids[0], "x");
    T_STR(s.ids[1], "y");
    T_EQ(s.t[1], 8);
    T_EQ(body("[]", 10, &s, why, sizeof(why)), 0);

    /* nothing at all */
    T_EQ(body("", 10, &s, why, sizeof(why)), 0);
    T_EQ(body(" \n\r\n\t", 10, &s, why, sizeof(why)), 0);
    T_EQ(s.n, 0);

    /* no callback: validation only; a NULL why */
    T_EQ(sn_wire_frames_from_text(FR("a", 1) "\n" FR("b", 1), strlen(FR("a", 1) "\n" FR("b", 1)),
                                  10, NULL, NULL, NULL, 0),
         2);
    /* the length bounds the text: the second frame is cut off */
    const char *two = FR("a", 1) "\n" FR("b", 1);
    T_EQ(sn_wire_frames_from_text(two, strlen(FR("a", 1)) + 1, 10, NULL, NULL, why, sizeof(why)),
         1);
}

static void test_numbering(void)
{
    struct seen s;
    char why[256];

    /* lines: the third frame is bad, the first two were delivered */
    T_EQ(body(FR("a", 1) "\n" FR("b", 2) "\n{\"id\":\"c\",\"host\":\"h\",\"t\":-3}\n" FR("d", 4),
              10, &s, why, sizeof(why)),
         -EINVAL);
    T_STR(why, "frame 3: \"t\" must not be negative");
    T_EQ(s.n, 2);

    /* a syntax error: the frame and the line */
    T_EQ(body(FR("a", 1) "\n\n{\"id\":\"b\",\n\"host\" \"h\"}\n", 10, &s, why, sizeof(why)),
         -EINVAL);
    T_OK(strncmp(why, "frame 2: line 4: invalid JSON: ", 31) == 0);
    t_note("%s", why);
    T_EQ(s.n, 1);

    /* not an object */
    T_EQ(body(FR("a", 1) "\n42\n", 10, &s, why, sizeof(why)), -EINVAL);
    T_STR(why, "frame 2: line 2: not a JSON object");
    T_EQ(body(FR("a", 1) "\n[" FR("b", 1) "]\n", 10, &s, why, sizeof(why)), -EINVAL);
    T_STR(why, "frame 2: line 2: not a JSON object");

    /* two objects on one line */
    T_EQ(body(FR("a", 1) " " FR("b", 1), 10, &s, why, sizeof(why)), -EINVAL);
    T_STR(why, "frame 2: line 1: a frame must start on a new line");
    T_EQ(s.n, 1);
    T_EQ(body(FR("a", 1) ",\n", 10, &s, why, sizeof(why)), -EINVAL);
    T_STR(why, "frame 2: line 1: a frame must start on a new line");

    /* duplicate keys */
    T_EQ(body("{\"id\":\"a\",\"id\":\"b\"}", 10, &s, why, sizeof(why)), -EINVAL);
    T_OK(strstr(why, "frame 1: line 1: invalid JSON: duplicate object key") == why);

    /* arrays: a bad element after good ones */
    T_EQ(body("[" FR("a", 1) "," FR("b", 1) ",7]", 10, &s, why, sizeof(why)), -EINVAL);
    T_STR(why, "frame 3: not a JSON object");
    T_EQ(s.n, 2);
    T_EQ(body("[" FR("a", 1) ",{\"id\":\"b\",\"host\":\"h\",\"t\":1,\"arity\":\"scalar\","
                             "\"value\":[[[10,20],1]]}]",
              10, &s, why, sizeof(why)),
         -EINVAL);
    T_STR(why, "frame 2: \"value\" must be a non-negative integer for a scalar frame");
    T_EQ(s.n, 1);
    T_EQ(body("[" FR("a", 1) ",\n{\"id\":\"b\",\"host\":\"h\",\"t\":1,\"arity\":"
                             "\"numeric-decomposition\",\"value\":{\"sh\":[[[10,20],1]]}}]",
              10, &s, why, sizeof(why)),
         -EINVAL);
    T_STR(why, "frame 2: value: \"sh\": range [10,20] is not a histogram bucket");
    /* a syntax error in an array fails it whole */
    T_EQ(body("[" FR("a", 1) ",\n" FR("b", 1) ",]", 10, &s, why, sizeof(why)), -EINVAL);
    T_OK(strncmp(why, "line 2: invalid JSON: ", 22) == 0);
    t_note("%s", why);
    T_EQ(s.n, 0);
    T_EQ(body("[" FR("a", 1) "] x", 10, &s, why, sizeof(why)), -EINVAL);
    T_OK(strncmp(why, "line 1: invalid JSON: ", 22) == 0);

    /* the callback stops the decoding, its value returned as is */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    const char *three = FR("a", 1) "\n" FR("b", 2) "\n" FR("c", 3);
    T_EQ(sn_wire_frames_from_text(three, strlen(three), 10, collect, &s, why, sizeof(why)), -42);
    T_STR(why, "");
    T_EQ(s.n, 2);

    /* a short why buffer is truncated, not overrun */
    char small[8];
    T_EQ(body("[7]", 10, &s, small, sizeof(small)), -EINVAL);
    T_STR(small, "frame 1");
}

static void test_max(void)
{
    struct seen s;
    char why[256];
    const char *lines = FR("a", 1) "\n" FR("b", 2) "\n" FR("c", 3) "\n";
    const char *array = "[" FR("a", 1) "," FR("b", 2) "," FR("c", 3) "]";

    T_EQ(body(lines, 3, &s, why, sizeof(why)), 3);
    T_EQ(body(array, 3, &s, why, sizeof(why)), 3);
    T_EQ(body(lines, 2, &s, why, sizeof(why)), -E2BIG);
    T_STR(why, "more than 2 frames");
    T_EQ(s.n, 2);
    T_EQ(body(array, 2, &s, why, sizeof(why)), -E2BIG);
    T_STR(why, "more than 2 frames");
    T_EQ(s.n, 2);
    T_EQ(body(lines, 0, &s, why, sizeof(why)), -E2BIG);
    T_STR(why, "more than 0 frames");
    T_EQ(s.n, 0);
    T_EQ(body("", 0, &s, why, sizeof(why)), 0);
    /* text after the max-th frame is one frame too many */
    T_EQ(body(FR("a", 1) "\n" FR("b", 2) " junk", 1, &s, why, sizeof(why)), -E2BIG);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("each arity decodes to exact values", test_each_arity);
    t_run("the agent's JSON and binary frames decode equal", test_agent_frames_equal_binary);
    t_run("hand-written JSON equals the binary frame", test_hand_built_equals_binary);
    t_run("every bucket holding integers is found from its range", test_every_bucket);
    t_run("bad frames: -EINVAL and a message naming the member", test_bad_frames);
    t_run("bodies: one object, JSON lines, an array", test_forms);
    t_run("errors number the frame; the callback stops", test_numbering);
    t_run("max bounds the number of frames", test_max);
    return t_done();
}
