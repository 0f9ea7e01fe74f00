/*
 * Zipkin v2 spans (src/trace/zipkin.h): the reference's example span round-trips through the
 * decoder and the writer to the same text (modulo the writer's field order); every
 * normalisation of Zipkin's server (ids, case, times, endpoints, nulls, unknown keys) and the
 * lenient ones (upper-case hex, fractional and exponent times, number and boolean tags); every
 * 400 message and the 413; proto3 bodies built by hand with sn_pbw_* (wrong wire types,
 * unknown fields, every truncation, bad id lengths); encode_proto -> decode_proto gives equal
 * spans; OTLP spans built by hand give §2.5's tags and remote endpoint; the writer's escaping
 * (control characters, quotes, NULs, invalid UTF-8) always gives JSON jansson reads. It prints
 * the time to decode and write 10 000 spans.
 *
 * Spans are mostly compared as the writer's text, so a failure prints both sides.
 *
 * With --write-corpus DIR it writes its JSON bodies to DIR/fuzz_zipkin_json and its proto3
 * bodies to DIR/fuzz_zipkin_proto: the seed corpora of fuzz/fuzz_zipkin_*.c were made so
 * (duplicates removed, renamed seedNN; otel_js.json, envoy.json and v1.json written by hand).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t.h"
#include "trace/pb.h"
#include "trace/zipkin.h"

static const char *corpus_dir; /* --write-corpus DIR */
static int corpus_n;

static void corpus_write(const char *kind, const void *p, size_t n)
{
    char path[512];
    if (!corpus_dir)
        return;
    snprintf(path, sizeof(path), "%s/fuzz_zipkin_%s/t%03d.%s", corpus_dir, kind, corpus_n++,
             strcmp(kind, "json") == 0 ? "json" : "bin");
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* ------------------------------------------------------------------------------------------
 * Helpers
 */

/* The reference's example span (tracing.md §1.1, from zipkin2-api.yaml), verbatim. */
static const char example[] =
    "{\"id\":\"352bff9a74ca9ad2\",\"traceId\":\"5af7183fb1d4cf5f\",\"parentId\":"
    "\"6b221d5bc9e6496c\",\"name\":\"get /api\",\"timestamp\":1556604172355737,\"duration\":1431,"
    "\"kind\":\"SERVER\",\"localEndpoint\":{\"serviceName\":\"backend\",\"ipv4\":\"192.168.99.1\","
    "\"port\":3306},\"remoteEndpoint\":{\"ipv4\":\"172.19.0.2\",\"port\":58648},\"tags\":{"
    "\"http.method\":\"GET\",\"http.path\":\"/api\"}}";
/* ... as the writer orders it */
static const char example_out[] =
    "{\"traceId\":\"5af7183fb1d4cf5f\",\"parentId\":\"6b221d5bc9e6496c\",\"id\":"
    "\"352bff9a74ca9ad2\",\"kind\":\"SERVER\",\"name\":\"get /api\",\"timestamp\":"
    "1556604172355737,\"duration\":1431,\"localEndpoint\":{\"serviceName\":\"backend\","
    "\"ipv4\":\"192.168.99.1\",\"port\":3306},\"remoteEndpoint\":{\"ipv4\":\"172.19.0.2\","
    "\"port\":58648},\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api\"}}";

static int dec_json(const char *body, struct sn_span_batch *b, char *why)
{
    corpus_write("json", body, strlen(body));
    return sn_zipkin_decode_json(body, strlen(body), b, why, 256);
}

/* Span s as the writer's text (malloc'd). */
static char *to_json(const struct sn_span *s)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (sn_zipkin_span_json(s, &buf, &len, &cap) != 0) {
        free(buf);
        return strdup("ENOMEM");
    }
    T_EQU(strlen(buf), len); /* NUL-terminated; no NUL inside */
    return buf;
}

/* The writer's text of a body of one span, or "ERR <rc>: <why>"; in a static buffer. */
static const char *one(const char *body)
{
    static char out[8192];
    char why[256] = "";
    struct sn_span_batch b = {0};
    int rc = dec_json(body, &b, why);
    if (rc < 0) {
        snprintf(out, sizeof(out), "ERR %d: %s", rc, why);
    } else if (b.n != 1) {
        snprintf(out, sizeof(out), "%zu spans", b.n);
    } else {
        char *j = to_json(&b.spans[0]);
        snprintf(out, sizeof(out), "%s", j);
        free(j);
    }
    sn_span_batch_fini(&b);
    return out;
}

/* A body of one span: "[{"traceId":..,"id":.., <more>}]". */
static const char *with(const char *more)
{
    static char body[4096];
    snprintf(body, sizeof(body),
             "[{\"traceId\":\"0000000000000001\",\"id\":\"0000000000000002\"%s%s}]",
             *more ? "," : "", more);
    return body;
}

/* What with() gives back with <more> written out (the writer's order). */
static const char *span_out(const char *more)
{
    static char s[4096];
    snprintf(s, sizeof(s), "{\"traceId\":\"0000000000000001\",\"id\":\"0000000000000002\"%s%s}",
             *more ? "," : "", more);
    return s;
}

/* Two decoded Zipkin spans hold the same (what the decoders fill). */

/* Whether text is JSON that jansson reads (NULs allowed in strings). */
static bool valid_json(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &je);
    if (!v)
        t_note("jansson: %s at %d: %s", je.text, je.position, text);
    json_decref(v);
    return v != NULL;
}

/* ------------------------------------------------------------------------------------------
 * JSON
 */

static void test_example(void)
{
    struct sn_span_batch b = {0};
    char why[256];
    char body[sizeof(example) + 2];

    snprintf(body, sizeof(body), "[%s]", example);
    T_REQUIRE(dec_json(body, &b, why) == 0);
    T_REQUIRE(b.n == 1);
    const struct sn_span *s = &b.spans[0];
    T_OK(s->flags & SN_SPAN_F_ZIPKIN);
    T_OK(s->flags & SN_SPAN_F_ID64);
    T_OK(s->flags & SN_SPAN_F_PARENT);
    T_OK(s->flags & SN_SPAN_F_REMOTE);
    T_OK(!(s->flags & SN_SPAN_F_NO_START));
    T_EQ(s->kind, SN_KIND_SERVER);
    T_STR(s->name, "get /api");
    T_STR(s->service, "backend");
    T_EQU(s->start_ns, 1556604172355737000ull);
    T_EQU(s->duration_ns, 1431000);
    T_EQ(s->local.port, 3306);
    T_EQ(s->remote.port, 58648);
    T_OK(s->local.has_ipv4 && !s->local.has_ipv6);
    T_EQ(s->nattrs, 2);
    T_EQ(s->status, SN_STATUS_UNSET);
    T_EQU(b.fixed_times, 0);
    char *out = to_json(s);
    T_STR(out, example_out);
    /* the same text, field order aside */
    json_t *a = json_loads(example, 0, NULL), *c = json_loads(out, 0, NULL);
    T_OK(a && c && json_equal(a, c));
    json_decref(a);
    json_decref(c);
    free(out);
    sn_span_batch_fini(&b);
}

static void test_empty(void)
{
    static const char *const bodies[] = {"", "  \n", "[]", " [ ]\n", "\t[\n]"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct sn_span_batch b = {0};
        char why[256];
        T_EQ(dec_json(bodies[i], &b, why), 0);
        T_EQU(b.n, 0);
        sn_span_batch_fini(&b);
    }
    struct sn_span_batch b = {0};
    char why[8];
    T_EQ(sn_zipkin_decode_json(NULL, 0, &b, why, sizeof(why)), 0);
    T_EQ(sn_zipkin_decode_proto(NULL, 0, &b, why, sizeof(why)), 0);
    T_EQ(sn_zipkin_decode_proto("", 0, &b, NULL, 0), 0);
    T_EQU(b.n, 0);
}

static void test_ids(void)
{
    /* 64-bit, 128-bit, padded, reduced, upper-case */
    T_STR(one("[{\"traceId\":\"5AF7183FB1D4CF5F\",\"id\":\"352BFF9A74CA9AD2\"}]"),
          "{\"traceId\":\"5af7183fb1d4cf5f\",\"id\":\"352bff9a74ca9ad2\"}");
    T_STR(one("[{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":\"a\"}]"),
          "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":\"000000000000000a\"}");
    T_STR(one("[{\"traceId\":\"0000000000000000463ac35c9f6413ad\",\"id\":\"1\"}]"),
          "{\"traceId\":\"463ac35c9f6413ad\",\"id\":\"0000000000000001\"}");
    T_STR(one("[{\"traceId\":\"abc\",\"id\":\"1\"}]"),
          "{\"traceId\":\"0000000000000abc\",\"id\":\"0000000000000001\"}");
    T_STR(one("[{\"traceId\":\"10000000000000000\",\"id\":\"1\"}]"),
          "{\"traceId\":\"00000000000000010000000000000000\",\"id\":\"0000000000000001\"}");
    T_STR(one(with("\"parentId\":\"00000000000000AB\"")),
          "{\"traceId\":\"0000000000000001\",\"parentId\":\"00000000000000ab\",\"id\":"
          "\"0000000000000002\"}");
    T_STR(one(with("\"parentId\":\"0000000000000000\"")), span_out("")); /* zero: root */
    T_STR(one(with("\"parentId\":null")), span_out(""));

    /* refusals */
    T_STR(one("[{\"traceId\":\"463ac35c9f6413ad48485a3953bb61240\",\"id\":\"1\"}]"),
          "ERR -22: 463ac35c9f6413ad48485a3953bb61240 should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"0x463ac35c9f6413ad\",\"id\":\"1\"}]"),
          "ERR -22: 0x463ac35c9f6413ad should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"00000000000000000000000000000000\",\"id\":\"1\"}]"),
          "ERR -22: 00000000000000000000000000000000 should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"\",\"id\":\"1\"}]"),
          "ERR -22:  should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"00000000000000001\"}]"),
          "ERR -22: 00000000000000001 should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"0\"}]"),
          "ERR -22: 0 should be lower-hex encoded with no prefix");
    T_STR(one(with("\"parentId\":\"xyz\"")),
          "ERR -22: xyz should be lower-hex encoded with no prefix");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"12 4\"}]"),
          "ERR -22: 12 4 should be lower-hex encoded with no prefix");
    T_STR(one("[{\"id\":\"1\"}]"), "ERR -22: Missing: [traceId] at path $[0]");
    T_STR(one("[{\"traceId\":\"1\"}]"), "ERR -22: Missing: [id] at path $[0]");
    T_STR(one("[{}]"), "ERR -22: Missing: [traceId, id] at path $[0]");
    T_STR(one("[{\"traceId\":1,\"id\":\"1\"}]"),
          "ERR -22: Expected a string but was NUMBER at path $[0].traceId reading List<Span> "
          "from json");
}

static void test_normalisations(void)
{
    /* names and services lower-cased, "" is none, kinds */
    T_STR(one(with("\"name\":\"GET /Api\",\"kind\":\"CLIENT\"")),
          span_out("\"kind\":\"CLIENT\",\"name\":\"get /api\""));
    T_STR(one(with("\"name\":\"\"")), span_out(""));
    T_STR(one(with("\"kind\":\"PRODUCER\"")), span_out("\"kind\":\"PRODUCER\""));
    T_STR(one(with("\"kind\":\"CONSUMER\"")), span_out("\"kind\":\"CONSUMER\""));
    T_STR(one(with("\"kind\":\"server\"")), span_out("\"kind\":\"SERVER\"")); /* lenient */
    T_STR(one(with("\"kind\":\"LOCAL\"")),
          "ERR -22: No enum constant zipkin2.Span.Kind.LOCAL at path $[0].kind");
    T_STR(one(with("\"localEndpoint\":{\"serviceName\":\"FrontEnd\"}")),
          span_out("\"localEndpoint\":{\"serviceName\":\"frontend\"}"));
    T_STR(one(with("\"localEndpoint\":{\"serviceName\":\"\"}")), span_out(""));
    T_STR(one(with("\"localEndpoint\":{}")), span_out(""));
    T_STR(one(with("\"remoteEndpoint\":{\"serviceName\":null,\"port\":0}")), span_out(""));

    /* endpoints: either family in either field, mapped IPv4, bad addresses ignored */
    T_STR(
        one(with("\"remoteEndpoint\":{\"ipv6\":\"2001:DB8::C001\",\"ipv4\":\"bad\",\"port\":-1}")),
        span_out("\"remoteEndpoint\":{\"ipv6\":\"2001:db8::c001\"}"));
    T_STR(one(with("\"remoteEndpoint\":{\"ipv6\":\"::ffff:10.1.2.3\"}")),
          span_out("\"remoteEndpoint\":{\"ipv4\":\"10.1.2.3\"}"));
    T_STR(one(with("\"remoteEndpoint\":{\"ipv4\":\"::1\",\"port\":65535}")),
          span_out("\"remoteEndpoint\":{\"ipv6\":\"::1\",\"port\":65535}"));
    T_STR(one(with("\"remoteEndpoint\":{\"port\":65536}")),
          "ERR -22: invalid port 65536 at path $[0].remoteEndpoint.port");

    /* times: µs in, ns kept, negative or zero absent, a duration under 1 µs is 1 */
    struct sn_span_batch b = {0};
    char why[256];
    T_REQUIRE(dec_json(with("\"timestamp\":1,\"duration\":2"), &b, why) == 0);
    T_EQU(b.spans[0].start_ns, 1000);
    T_EQU(b.spans[0].duration_ns, 2000);
    T_OK(!(b.spans[0].flags & SN_SPAN_F_NO_START));
    sn_span_batch_fini(&b);
    T_REQUIRE(dec_json(with("\"timestamp\":-5,\"duration\":-1"), &b, why) == 0);
    T_OK(b.spans[0].flags & SN_SPAN_F_NO_START);
    T_EQU(b.spans[0].start_ns, 0);
    T_EQU(b.spans[0].duration_ns, 0);
    sn_span_batch_fini(&b);
    T_STR(one(with("\"timestamp\":0,\"duration\":0")), span_out(""));
    T_STR(one(with("\"timestamp\":null,\"duration\":null")), span_out(""));
    T_STR(one(with("\"timestamp\":18446744073709552")),
          "ERR -22: 18446744073709552 is out of range at path $[0].timestamp");
    T_STR(one(with("\"timestamp\":18446744073709551")),
          span_out("\"timestamp\":18446744073709551"));
    T_STR(one(with("\"timestamp\":\"1\"")),
          "ERR -22: Expected a long but was STRING at path $[0].timestamp reading List<Span> "
          "from json");

    /* flags */
    T_STR(one(with("\"shared\":true,\"debug\":true")), span_out("\"debug\":true,\"shared\":true"));
    T_STR(one(with("\"shared\":false,\"debug\":false")), span_out(""));
    T_STR(one(with("\"debug\":1")),
          "ERR -22: Expected a boolean but was NUMBER at path $[0].debug reading List<Span> from "
          "json");

    /* unknown keys (any value) and nulls skipped */
    T_STR(one(with("\"future\":{\"a\":[1,{\"b\":null}]},\"x\":null,\"name\":null,\"tags\":null,"
                   "\"annotations\":null,\"localEndpoint\":null,\"kind\":null")),
          span_out(""));

    /* annotations, in the order sent */
    T_STR(one(with("\"annotations\":[{\"timestamp\":20,\"value\":\"ws\"},{\"value\":\"cs\","
                   "\"timestamp\":10,\"extra\":1}]")),
          span_out("\"annotations\":[{\"timestamp\":20,\"value\":\"ws\"},{\"timestamp\":10,"
                   "\"value\":\"cs\"}]"));
}

static void test_fractional(void)
{
    struct sn_span_batch b = {0};
    char why[256];

    /* OTel JS's fractional timestamp, Envoy's exponent, fractional durations and annotations */
    T_REQUIRE(
        dec_json(with("\"timestamp\":1700000000080000.5,\"duration\":1234.9,"
                      "\"annotations\":[{\"timestamp\":1.58266276796031e+15,\"value\":\"a\"}]"),
                 &b, why) == 0);
    T_EQU(b.spans[0].start_ns, 1700000000080000000ull);
    T_EQU(b.spans[0].duration_ns, 1234000);
    T_EQU(b.spans[0].events[0].t_ns, 1582662767960310000ull);
    T_EQU(b.fixed_times, 3);
    sn_span_batch_fini(&b);

    T_STR(one(with("\"timestamp\":1.58266276796031e+15,\"duration\":0.25")),
          span_out("\"timestamp\":1582662767960310,\"duration\":1"));
    T_STR(one(with("\"timestamp\":1E3")), span_out("\"timestamp\":1000"));
    T_STR(one(with("\"timestamp\":0.5")), span_out("")); /* under 1 µs: no timestamp */
    T_STR(one(with("\"timestamp\":-0.5,\"duration\":-3.5")), span_out(""));
    T_STR(one(with("\"timestamp\":1e300")), "ERR -22: 1.0000000000000001e+300 is out of range at "
                                            "path $[0].timestamp");
}

static void test_tags(void)
{
    /* kept in the order sent; numbers and booleans as their text */
    T_STR(one(with("\"tags\":{\"z\":\"1\",\"a\":\"\",\"n\":42,\"f\":0.1,\"neg\":-7,\"t\":true,"
                   "\"no\":false,\"big\":1e21}")),
          span_out("\"tags\":{\"z\":\"1\",\"a\":\"\",\"n\":\"42\",\"f\":\"0.1\",\"neg\":\"-7\","
                   "\"t\":\"true\",\"no\":\"false\",\"big\":\"1e+21\"}"));
    /* a repeated key: its first place, its last value */
    T_STR(one(with("\"tags\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}")),
          span_out("\"tags\":{\"a\":\"3\",\"b\":\"2\"}"));

    /* status from the tags, which stay as sent */
    struct sn_span_batch b = {0};
    char why[256];
    T_REQUIRE(dec_json(with("\"tags\":{\"error\":\"timeout\"}"), &b, why) == 0);
    T_EQ(b.spans[0].status, SN_STATUS_ERROR);
    T_STR(b.spans[0].status_msg, "timeout");
    sn_span_batch_fini(&b);
    T_REQUIRE(dec_json(with("\"tags\":{\"otel.status_code\":\"OK\"}"), &b, why) == 0);
    T_EQ(b.spans[0].status, SN_STATUS_OK);
    T_STR(b.spans[0].status_msg, "");
    char *out = to_json(&b.spans[0]);
    T_STR(out, span_out("\"tags\":{\"otel.status_code\":\"OK\"}"));
    free(out);
    sn_span_batch_fini(&b);
    T_REQUIRE(dec_json(with("\"tags\":{\"otel.status_code\":\"ERROR\"}"), &b, why) == 0);
    T_EQ(b.spans[0].status, SN_STATUS_ERROR);
    T_STR(b.spans[0].status_msg, "");
    sn_span_batch_fini(&b);
    T_STR(one(with("\"tags\":{\"error\":\"\",\"otel.status_code\":\"ERROR\"}")),
          span_out("\"tags\":{\"error\":\"\",\"otel.status_code\":\"ERROR\"}"));

    /* NULs and escapes survive */
    T_STR(one(with("\"tags\":{\"k\":\"a\\u0000b\\\"\\\\\\n\\u001f\\u00e9\"}")),
          span_out("\"tags\":{\"k\":\"a\\u0000b\\\"\\\\\\n\\u001f\xc3\xa9\"}"));
}

static void test_errors(void)
{
    /* not a list */
    T_STR(one("{\"traceId\":\"1\",\"id\":\"1\"}"), "ERR -22: Expected a JSON_V2 encoded list");
    T_STR(one("  \"spans\""), "ERR -22: Expected a JSON_V2 encoded list");
    T_STR(one("x["), "ERR -22: Expected a JSON_V2 encoded list");
    /* v1 */
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"1\",\"binaryAnnotations\":[]}]"),
          "ERR -22: Expected a JSON_V2 encoded list, but received: JSON_V1");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"1\"},{\"traceId\":\"zz\",\"annotations\":[{"
              "\"timestamp\":1,\"value\":\"cs\",\"endpoint\":{\"serviceName\":\"a\"}}]}]"),
          "ERR -22: Expected a JSON_V2 encoded list, but received: JSON_V1");
    /* malformed */
    T_STR(one("[{\"traceId\":\"1\",}]"),
          "ERR -22: string or '}' expected near '}' reading List<Span> from json");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"1\"}] x"),
          "ERR -22: end of file expected near 'x' reading List<Span> from json");
    T_STR(one("["), "ERR -22: ']' expected near end of file reading List<Span> from json");
    T_STR(
        one("[1]"),
        "ERR -22: Expected BEGIN_OBJECT but was NUMBER at path $[0] reading List<Span> from json");
    T_STR(one("[{\"traceId\":\"1\",\"id\":\"1\",\"name\":\"\xff\"}]"),
          "ERR -22: unable to decode byte 0xff near '\"' reading List<Span> from json");
    /* annotations */
    T_STR(one(with("\"annotations\":[{\"timestamp\":1,\"value\":\"a\"},{\"timestamp\":2}]")),
          "ERR -22: Incomplete annotation at $[0].annotations[1]");
    T_STR(one(with("\"annotations\":[{\"value\":\"a\"}]")),
          "ERR -22: Incomplete annotation at $[0].annotations[0]");
    T_STR(one(with("\"annotations\":[{\"timestamp\":0,\"value\":\"a\"}]")),
          "ERR -22: Incomplete annotation at $[0].annotations[0]");
    T_STR(one(with("\"annotations\":[{\"timestamp\":5,\"value\":null}]")),
          "ERR -22: Incomplete annotation at $[0].annotations[0]");
    T_STR(one(with("\"annotations\":{}")),
          "ERR -22: Expected BEGIN_ARRAY but was BEGIN_OBJECT at path $[0].annotations reading "
          "List<Span> from json");
    /* tags */
    T_STR(one(with("\"tags\":{\"http.path\":\"/\",\"http.status_code\":null}")),
          "ERR -22: No value at $[0].tags.http.status_code");
    T_STR(one(with("\"tags\":{\"a\":[\"x\"]}")),
          "ERR -22: Expected a string but was BEGIN_ARRAY at path $[0].tags.a reading List<Span> "
          "from json");
    /* the second span is bad: the batch keeps only what it had */
    struct sn_span_batch b = {0};
    char why[256];
    T_REQUIRE(dec_json(with(""), &b, why) == 0);
    T_EQ(dec_json("[{\"traceId\":\"1\",\"id\":\"1\",\"timestamp\":1.5},{\"traceId\":\"1\","
                  "\"id\":\"g\"}]",
                  &b, why),
         -EINVAL);
    T_STR(why, "g should be lower-hex encoded with no prefix");
    T_EQU(b.n, 1);
    T_EQU(b.fixed_times, 0);
    /* why may be NULL */
    T_EQ(sn_zipkin_decode_json("{", 1, &b, NULL, 0), -EINVAL);
    T_EQ(sn_zipkin_decode_json("[{]", 3, &b, NULL, 0), -EINVAL);
    /* a short why is cut, NUL-terminated */
    char small[8];
    T_EQ(sn_zipkin_decode_json("{", 1, &b, small, sizeof(small)), -EINVAL);
    T_STR(small, "Expecte");
    sn_span_batch_fini(&b);
}

static void test_limits(void)
{
    struct sn_span_batch b = {0};
    char why[256];
    size_t n = SN_SPAN_MAX_SPANS + 1, len = 0;
    const char *span = "{\"traceId\":\"1\",\"id\":\"1\"},";
    char *body = malloc(n * strlen(span) + 2);
    T_REQUIRE(body);
    body[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(body + len, span, strlen(span));
        len += strlen(span);
    }
    body[len - 1] = ']';
    T_EQ(sn_zipkin_decode_json(body, len, &b, why, sizeof(why)), -E2BIG);
    T_STR(why, "more than 65536 spans in one request");
    T_EQU(b.n, 0);
    /* one fewer is fine */
    len -= strlen(span);
    body[len - 1] = ']';
    T_EQ(sn_zipkin_decode_json(body, len, &b, why, sizeof(why)), 0);
    T_EQU(b.n, SN_SPAN_MAX_SPANS);
    sn_span_batch_fini(&b);
    free(body);

    /* 1025 annotations, 1025 tags */
    size_t cap = 64 << 10;
    char *more = malloc(cap);
    T_REQUIRE(more);
    len = (size_t)snprintf(more, cap, "\"annotations\":[");
    for (int i = 0; i < 1025; i++)
        len += (size_t)snprintf(more + len, cap - len, "%s{\"timestamp\":%d,\"value\":\"v\"}",
                                i ? "," : "", i + 1);
    snprintf(more + len, cap - len, "]");
    char *bb = malloc(cap + 64);
    snprintf(bb, cap + 64, "[{\"traceId\":\"1\",\"id\":\"1\",%s}]", more);
    T_EQ(sn_zipkin_decode_json(bb, strlen(bb), &b, why, sizeof(why)), -EINVAL);
    T_STR(why, "more than 1024 annotations at path $[0].annotations");
    len = (size_t)snprintf(more, cap, "\"tags\":{");
    for (int i = 0; i < 1025; i++)
        len += (size_t)snprintf(more + len, cap - len, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(more + len, cap - len, "}");
    snprintf(bb, cap + 64, "[{\"traceId\":\"1\",\"id\":\"1\",%s}]", more);
    T_EQ(sn_zipkin_decode_json(bb, strlen(bb), &b, why, sizeof(why)), -EINVAL);
    T_STR(why, "more than 1024 tags at path $[0].tags");
    T_EQU(b.n, 0);
    free(more);
    free(bb);

    /* a value past SN_SPAN_MAX_VALUE */
    size_t big = SN_SPAN_MAX_VALUE + 1;
    bb = malloc(big + 128);
    T_REQUIRE(bb);
    len = (size_t)sprintf(bb, "[{\"traceId\":\"1\",\"id\":\"1\",\"tags\":{\"k\":\"");
    memset(bb + len, 'x', big);
    strcpy(bb + len + big, "\"}}]");
    T_EQ(sn_zipkin_decode_json(bb, strlen(bb), &b, why, sizeof(why)), -EINVAL);
    T_STR(why, "tag longer than 65536 bytes at $[0].tags.k");
    bb[len + big - 1] = '"'; /* 65536 x: fine */
    strcpy(bb + len + big, "}}]");
    T_EQ(sn_zipkin_decode_json(bb, strlen(bb), &b, why, sizeof(why)), 0);
    T_EQU(b.spans[0].attrs[0].vlen, SN_SPAN_MAX_VALUE);
    free(bb);
    sn_span_batch_fini(&b);
}

/* ------------------------------------------------------------------------------------------
 * proto3
 */

static const uint8_t trace16[16] = {0x46, 0x3a, 0xc3, 0x5c, 0x9f, 0x64, 0x13, 0xad,
                                    0x48, 0x48, 0x5a, 0x39, 0x53, 0xbb, 0x61, 0x24};
static const uint8_t trace8[8] = {0x5a, 0xf7, 0x18, 0x3f, 0xb1, 0xd4, 0xcf, 0x5f};
static const uint8_t id8[8] = {0x35, 0x2b, 0xff, 0x9a, 0x74, 0xca, 0x9a, 0xd2};
static const uint8_t parent8[8] = {0x6b, 0x22, 0x1d, 0x5b, 0xc9, 0xe6, 0x49, 0x6c};

/* The example span as proto3, by hand. */
static void example_proto(struct sn_pbw *w, bool extras)
{
    static const uint8_t ip1[4] = {192, 168, 99, 1}, ip2[4] = {172, 19, 0, 2};
    size_t s = sn_pbw_begin(w, 1), m;
    sn_pbw_bytes(w, 1, trace8, 8);
    sn_pbw_bytes(w, 2, parent8, 8);
    sn_pbw_bytes(w, 3, id8, 8);
    sn_pbw_varint(w, 4, 2);
    sn_pbw_string(w, 5, "GET /api");
    sn_pbw_fixed64(w, 6, 1556604172355737ull);
    sn_pbw_varint(w, 7, 1431);
    m = sn_pbw_begin(w, 8);
    sn_pbw_string(w, 1, "backend");
    sn_pbw_bytes(w, 2, ip1, 4);
    sn_pbw_varint(w, 4, 3306);
    if (extras)
        sn_pbw_string(w, 9, "an unknown endpoint field");
    sn_pbw_end(w, m);
    m = sn_pbw_begin(w, 9);
    sn_pbw_bytes(w, 2, ip2, 4);
    sn_pbw_varint(w, 4, 58648);
    sn_pbw_end(w, m);
    m = sn_pbw_begin(w, 11);
    sn_pbw_string(w, 1, "http.method");
    sn_pbw_string(w, 2, "GET");
    sn_pbw_end(w, m);
    m = sn_pbw_begin(w, 11);
    sn_pbw_string(w, 1, "http.path");
    sn_pbw_string(w, 2, "/api");
    if (extras)
        sn_pbw_fixed32(w, 3, 7);
    sn_pbw_end(w, m);
    if (extras) {
        sn_pbw_fixed32(w, 14, 1);
        sn_pbw_fixed64(w, 99, 1);
        sn_pbw_varint(w, 12, 0); /* explicit defaults */
        sn_pbw_varint(w, 13, 0);
    }
    sn_pbw_end(w, s);
}

/* The proto body's one span as the writer's text, or "ERR <rc>: <why>". */
static const char *one_proto(const struct sn_pbw *w)
{
    static char out[8192];
    char why[256] = "";
    struct sn_span_batch b = {0};
    corpus_write("proto", w->buf, w->len);
    int rc = sn_zipkin_decode_proto(w->buf, w->len, &b, why, sizeof(why));
    if (rc < 0) {
        snprintf(out, sizeof(out), "ERR %d: %s", rc, why);
    } else if (b.n != 1) {
        snprintf(out, sizeof(out), "%zu spans", b.n);
    } else {
        char *j = to_json(&b.spans[0]);
        snprintf(out, sizeof(out), "%s", j);
        free(j);
    }
    sn_span_batch_fini(&b);
    return out;
}

static void test_proto_example(void)
{
    struct sn_pbw w = {0};
    example_proto(&w, false);
    T_REQUIRE(!w.err);
    T_EQ(w.buf[0], 0x0a); /* "A body therefore starts with byte 0x0a" */
    T_STR(one_proto(&w), example_out);
    sn_pbw_fini(&w);

    /* unknown fields everywhere, explicit defaults, unknown top-level fields */
    sn_pbw_string(&w, 7, "not a span");
    example_proto(&w, true);
    sn_pbw_varint(&w, 2, 5);
    T_STR(one_proto(&w), example_out);
    sn_pbw_fini(&w);

    /* the same spans from JSON and from proto3 */
    struct sn_span_batch a = {0}, b = {0};
    char why[256], body[sizeof(example) + 2];
    snprintf(body, sizeof(body), "[%s]", example);
    example_proto(&w, false);
    T_REQUIRE(dec_json(body, &a, why) == 0);
    T_REQUIRE(sn_zipkin_decode_proto(w.buf, w.len, &b, why, sizeof(why)) == 0);
    T_OK(a.n == 1 && b.n == 1 && sn_span_equal(&a.spans[0], &b.spans[0]));
    sn_pbw_fini(&w);
    sn_span_batch_fini(&a);
    sn_span_batch_fini(&b);
}

static void test_proto_truncated(void)
{
    struct sn_pbw w = {0};
    example_proto(&w, true);
    T_REQUIRE(!w.err);
    for (size_t n = 0; n < w.len; n++) {
        struct sn_span_batch b = {0};
        char why[256];
        int rc = sn_zipkin_decode_proto(w.buf, n, &b, why, sizeof(why));
        if (n == 0) {
            T_EQ(rc, 0);
        } else if (!T_EQ(rc, -EINVAL)) {
            t_note("truncated at %zu of %zu", n, w.len);
        }
        T_EQU(b.n, 0);
        sn_span_batch_fini(&b);
    }
    sn_pbw_fini(&w);

    /* a span truncated inside: its length fits, its content does not */
    uint8_t cut[] = {0x0a, 0x03, 0x0a, 0x08, 0x01};
    struct sn_span_batch b = {0};
    char why[256];
    T_EQ(sn_zipkin_decode_proto(cut, sizeof(cut), &b, why, sizeof(why)), -EINVAL);
    T_STR(why, "Malformed span at $[0] reading List<Span> from proto3");
    sn_span_batch_fini(&b);
}

static void test_proto_errors(void)
{
    struct sn_pbw w = {0};
    size_t s, m;
    static const uint8_t zero16[16] = {0}, five[5] = {1, 2, 3, 4, 5};

    /* ListOfSpans.spans with the wrong wire type */
    sn_pbw_varint(&w, 1, 3);
    T_STR(one_proto(&w),
          "ERR -22: Wrong wire type 0 for field 1 at $ reading List<Span> from proto3");
    sn_pbw_fini(&w);

#define SPAN(body)                                                                                 \
    do {                                                                                           \
        sn_pbw_fini(&w);                                                                           \
        s = sn_pbw_begin(&w, 1);                                                                   \
        body;                                                                                      \
        sn_pbw_end(&w, s);                                                                         \
    } while (0)

    /* ids */
    SPAN(sn_pbw_bytes(&w, 1, five, 5); sn_pbw_bytes(&w, 3, id8, 8));
    T_STR(one_proto(&w), "ERR -22: 0102030405 should be lower-hex encoded with no prefix");
    SPAN(sn_pbw_bytes(&w, 1, zero16, 16); sn_pbw_bytes(&w, 3, id8, 8));
    T_STR(one_proto(&w),
          "ERR -22: 00000000000000000000000000000000 should be lower-hex encoded with no prefix");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, zero16, 8));
    T_STR(one_proto(&w), "ERR -22: 0000000000000000 should be lower-hex encoded with no prefix");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16));
    T_STR(one_proto(&w), "ERR -22: Missing: [id] at $[0]");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8);
         sn_pbw_bytes(&w, 2, zero16, 8));
    T_STR(one_proto(&w), "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":"
                         "\"352bff9a74ca9ad2\"}");
    /* a 128-bit id with a zero upper half is 64-bit */
    {
        uint8_t t[16] = {0};
        memcpy(t + 8, id8, 8);
        SPAN(sn_pbw_bytes(&w, 1, t, 16); sn_pbw_bytes(&w, 3, id8, 8));
        T_STR(one_proto(&w), "{\"traceId\":\"352bff9a74ca9ad2\",\"id\":\"352bff9a74ca9ad2\"}");
    }

    /* wrong wire types for known fields */
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); sn_pbw_varint(&w, 6, 5));
    T_STR(one_proto(&w),
          "ERR -22: Wrong wire type 0 for field 6 at $[0] reading List<Span> from proto3");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8);
         sn_pbw_string(&w, 4, "CLIENT"));
    T_STR(one_proto(&w),
          "ERR -22: Wrong wire type 2 for field 4 at $[0] reading List<Span> from proto3");
    SPAN(sn_pbw_fixed32(&w, 1, 5));
    T_STR(one_proto(&w),
          "ERR -22: Wrong wire type 5 for field 1 at $[0] reading List<Span> from proto3");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 8);
         sn_pbw_fixed64(&w, 4, 80); sn_pbw_end(&w, m));
    T_STR(one_proto(&w), "ERR -22: Wrong wire type 1 for field 4 at $[0].localEndpoint reading "
                         "List<Span> from proto3");

    /* annotations and tags */
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 10);
         sn_pbw_fixed64(&w, 1, 5); sn_pbw_bytes(&w, 2, "", 0); sn_pbw_end(&w, m);
         m = sn_pbw_begin(&w, 10); sn_pbw_fixed64(&w, 1, 5); sn_pbw_end(&w, m));
    T_STR(one_proto(&w), "ERR -22: Incomplete annotation at $[0].annotations[1]");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 10);
         sn_pbw_string(&w, 2, "ws"); sn_pbw_end(&w, m));
    T_STR(one_proto(&w), "ERR -22: Incomplete annotation at $[0].annotations[0]");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 10);
         sn_pbw_fixed64(&w, 1, 7); sn_pbw_string(&w, 2, "WS"); sn_pbw_end(&w, m);
         m = sn_pbw_begin(&w, 11); sn_pbw_string(&w, 1, "k"); sn_pbw_end(&w, m);
         m = sn_pbw_begin(&w, 11); sn_pbw_string(&w, 2, "nokey"); sn_pbw_end(&w, m));
    T_STR(one_proto(&w),
          "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":"
          "\"352bff9a74ca9ad2\",\"annotations\":[{\"timestamp\":7,\"value\":\"WS\"}],"
          "\"tags\":{\"k\":\"\",\"\":\"nokey\"}}");

    /* endpoints: bad address lengths, mapped IPv4, ports */
    {
        uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 9};
        SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 9);
             sn_pbw_bytes(&w, 3, v6, 16); sn_pbw_varint(&w, 4, 443); sn_pbw_end(&w, m));
        T_STR(one_proto(&w),
              "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":\"352bff9a74ca9ad2\","
              "\"remoteEndpoint\":{\"ipv4\":\"10.0.0.9\",\"port\":443}}");
        SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 9);
             sn_pbw_bytes(&w, 2, v6, 16); sn_pbw_end(&w, m));
        T_STR(one_proto(&w), "ERR -22: Malformed ipv4 at $[0].remoteEndpoint reading List<Span> "
                             "from proto3");
        SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 9);
             sn_pbw_varint(&w, 4, 70000); sn_pbw_end(&w, m));
        T_STR(one_proto(&w), "ERR -22: invalid port 70000 at $[0].remoteEndpoint");
        SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); m = sn_pbw_begin(&w, 9);
             sn_pbw_varint(&w, 4, (uint64_t)-5); sn_pbw_end(&w, m));
        T_STR(one_proto(&w),
              "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":\"352bff9a74ca9ad2\"}");
    }

    /* invalid UTF-8 in strings becomes U+FFFD; names lower-cased */
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8);
         sn_pbw_bytes(&w, 5, "A\xff\xc3\xa9", 4); m = sn_pbw_begin(&w, 11);
         sn_pbw_string(&w, 1, "k\xc0"); sn_pbw_bytes(&w, 2, "v\0\xe2\x82", 4); sn_pbw_end(&w, m));
    T_STR(one_proto(&w), "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":"
                         "\"352bff9a74ca9ad2\",\"name\":\"a\xef\xbf\xbd\xc3\xa9\",\"tags\":{"
                         "\"k\xef\xbf\xbd\":\"v\\u0000\xef\xbf\xbd\xef\xbf\xbd\"}}");

    /* times out of range, timestamp 0 is none, debug/shared */
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8);
         sn_pbw_varint(&w, 7, UINT64_MAX));
    T_STR(one_proto(&w), "ERR -22: 18446744073709551615 is out of range at $[0]");
    SPAN(sn_pbw_bytes(&w, 1, trace16, 16); sn_pbw_bytes(&w, 3, id8, 8); sn_pbw_fixed64(&w, 6, 0);
         sn_pbw_varint(&w, 12, 1); sn_pbw_varint(&w, 13, 1); sn_pbw_varint(&w, 4, 9));
    T_STR(one_proto(&w), "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":"
                         "\"352bff9a74ca9ad2\",\"debug\":true,\"shared\":true}");
#undef SPAN
    sn_pbw_fini(&w);

    /* too many spans: refused before any is decoded */
    for (size_t i = 0; i <= SN_SPAN_MAX_SPANS; i++) {
        s = sn_pbw_begin(&w, 1);
        sn_pbw_bytes(&w, 1, trace16, 16);
        sn_pbw_bytes(&w, 3, id8, 8);
        sn_pbw_end(&w, s);
    }
    struct sn_span_batch b = {0};
    char why[256];
    T_EQ(sn_zipkin_decode_proto(w.buf, w.len, &b, why, sizeof(why)), -E2BIG);
    T_EQU(b.n, 0);
    sn_pbw_fini(&w);
    sn_span_batch_fini(&b);
}

/* decode JSON -> encode proto3 -> decode: equal spans; and the JSON written decodes equal */
static void test_roundtrips(void)
{
    static const char *const bodies[] = {
        example,
        "{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"id\":\"1\",\"kind\":\"CLIENT\","
        "\"name\":\"Q\",\"timestamp\":1.5e15,\"duration\":0.5,\"localEndpoint\":{\"ipv6\":"
        "\"2001:db8::1\"},\"remoteEndpoint\":{\"serviceName\":\"DB\"},\"annotations\":[{"
        "\"timestamp\":3,\"value\":\"\"},{\"timestamp\":4,\"value\":\"x\\u0000y\"}],\"tags\":{"
        "\"error\":\"bad\",\"\":\"\",\"n\":3},\"debug\":true,\"shared\":true}",
        "{\"traceId\":\"1\",\"id\":\"2\",\"parentId\":\"3\",\"kind\":\"CONSUMER\"}",
        "{\"traceId\":\"1\",\"id\":\"2\",\"kind\":\"PRODUCER\",\"tags\":{\"otel.status_code\":"
        "\"OK\"}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct sn_span_batch a = {0}, b = {0}, c = {0};
        char why[256], body[2048];
        unsigned char *pb = NULL;
        size_t pblen = 0;
        snprintf(body, sizeof(body), "[%s,%s]", bodies[i], bodies[i]);
        T_REQUIRE(dec_json(body, &a, why) == 0);
        T_REQUIRE(a.n == 2);
        T_REQUIRE(sn_zipkin_encode_proto(a.spans, a.n, &pb, &pblen) == 0);
        corpus_write("proto", pb, pblen);
        T_REQUIRE(sn_zipkin_decode_proto(pb, pblen, &b, why, sizeof(why)) == 0);
        T_REQUIRE(b.n == 2);
        for (size_t k = 0; k < 2; k++) {
            if (!T_OK(sn_span_equal(&a.spans[k], &b.spans[k])))
                t_note("body %zu", i);
            char *text = to_json(&a.spans[k]);
            T_OK(valid_json(text));
            char list[4096];
            snprintf(list, sizeof(list), "[%s]", text);
            T_REQUIRE(sn_zipkin_decode_json(list, strlen(list), &c, why, sizeof(why)) == 0);
            T_OK(sn_span_equal(&a.spans[k], &c.spans[c.n - 1]));
            free(text);
        }
        free(pb);
        sn_span_batch_fini(&a);
        sn_span_batch_fini(&b);
        sn_span_batch_fini(&c);
    }
}

/* ------------------------------------------------------------------------------------------
 * OTLP spans out (§2.5)
 */

static struct sn_span_kv str_attr(const char *k, const char *v)
{
    struct sn_span_kv a = {k, v, (uint32_t)strlen(v), SN_ATTR_STRING, 0, 0};
    return a;
}

static void otlp_span(struct sn_span *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)(0x11 + i);
    s->name = s->service = s->status_msg = s->trace_state = s->scope_name = s->scope_version = "";
}

static void test_otlp(void)
{
    struct sn_span s;
    struct sn_span_kv attrs[12];
    struct sn_span_event ev = {1700000000200000999ull, "Retry", NULL, 0, 0};
    uint32_t n = 0;

    otlp_span(&s);
    s.kind = SN_KIND_CLIENT;
    s.name = "GET /Users";
    s.service = "Checkout";
    s.start_ns = 1700000000123456789ull;
    s.duration_ns = 1500;
    s.status = SN_STATUS_ERROR;
    s.status_msg = "boom";
    s.scope_name = "io.x";
    s.scope_version = "1.2";
    s.dropped_attrs = 3;
    s.dropped_links = 1;
    attrs[n++] = str_attr("http.method", "GET");
    attrs[n++] = (struct sn_span_kv){"retry", "true", 4, SN_ATTR_BOOL, 0, 0};
    attrs[n++] = (struct sn_span_kv){"count", "42", 2, SN_ATTR_INT, 42, 0};
    attrs[n++] = (struct sn_span_kv){"ratio", "0.5", 3, SN_ATTR_DOUBLE, 0, 0.5};
    attrs[n++] = (struct sn_span_kv){"raw", "\x00\x01\xff", 3, SN_ATTR_BYTES, 0, 0};
    attrs[n++] = (struct sn_span_kv){"list", "[1,\"a\"]", 7, SN_ATTR_ARRAY, 0, 0};
    attrs[n++] = (struct sn_span_kv){"kv", "{\"k\":\"v\"}", 9, SN_ATTR_KVLIST, 0, 0};
    attrs[n++] = (struct sn_span_kv){"nothing", "", 0, SN_ATTR_EMPTY, 0, 0};
    attrs[n++] = str_attr("peer.service", "Users-DB");
    attrs[n++] = str_attr("network.peer.address", "10.0.0.7");
    attrs[n++] = (struct sn_span_kv){"server.port", "5432", 4, SN_ATTR_INT, 5432, 0};
    attrs[n++] = str_attr("error", "overridden by the status");
    s.attrs = attrs;
    s.nattrs = n;
    s.events = &ev;
    s.nevents = 1;

    char *out = to_json(&s);
    T_STR(out,
          "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"id\":\"1112131415161718\","
          "\"kind\":\"CLIENT\",\"name\":\"get /users\",\"timestamp\":1700000000123456,"
          "\"duration\":1,\"localEndpoint\":{\"serviceName\":\"checkout\"},"
          "\"remoteEndpoint\":{\"serviceName\":\"users-db\",\"ipv4\":\"10.0.0.7\",\"port\":"
          "5432},\"annotations\":[{\"timestamp\":1700000000200000,\"value\":\"Retry\"}],"
          "\"tags\":{\"http.method\":\"GET\",\"retry\":\"true\",\"count\":\"42\",\"ratio\":"
          "\"0.5\",\"raw\":\"AAH/\",\"list\":\"[1,\\\"a\\\"]\",\"kv\":\"{\\\"k\\\":\\\"v\\\"}\","
          "\"nothing\":\"\",\"peer.service\":\"Users-DB\",\"network.peer.address\":"
          "\"10.0.0.7\",\"server.port\":\"5432\",\"otel.scope.name\":\"io.x\","
          "\"otel.scope.version\":\"1.2\",\"otel.status_code\":\"ERROR\",\"error\":\"boom\","
          "\"otel.dropped_attributes_count\":\"3\",\"otel.dropped_links_count\":\"1\"}}");
    T_OK(valid_json(out));
    free(out);

    /* proto3 of an OTLP span carries the same mapping */
    unsigned char *pb;
    size_t pblen;
    struct sn_span_batch b = {0};
    char why[256];
    T_REQUIRE(sn_zipkin_encode_proto(&s, 1, &pb, &pblen) == 0);
    T_REQUIRE(sn_zipkin_decode_proto(pb, pblen, &b, why, sizeof(why)) == 0);
    T_EQ(b.spans[0].status, SN_STATUS_ERROR);
    T_STR(b.spans[0].status_msg, "boom");
    T_STR(b.spans[0].remote.service, "users-db");
    T_EQ(b.spans[0].nattrs, 17);
    free(pb);
    sn_span_batch_fini(&b);

    /* the remote endpoint's other sources, in order; only CLIENT and PRODUCER */
    n = 0;
    attrs[n++] = str_attr("net.peer.name", "Legacy");
    attrs[n++] = str_attr("server.address", "api.example.com");
    attrs[n++] = str_attr("net.peer.ip", "2001:db8::7");
    attrs[n++] = str_attr("net.peer.port", "8443");
    otlp_span(&s);
    s.attrs = attrs;
    s.nattrs = n;
    s.kind = SN_KIND_PRODUCER;
    out = to_json(&s);
    T_STR(out, "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"id\":\"1112131415161718\","
               "\"kind\":\"PRODUCER\",\"remoteEndpoint\":{\"serviceName\":\"api.example.com\","
               "\"ipv6\":\"2001:db8::7\",\"port\":8443},\"tags\":{\"net.peer.name\":\"Legacy\","
               "\"server.address\":\"api.example.com\",\"net.peer.ip\":\"2001:db8::7\","
               "\"net.peer.port\":\"8443\"}}");
    free(out);
    s.kind = SN_KIND_SERVER;
    out = to_json(&s);
    T_OK(strstr(out, "remoteEndpoint") == NULL);
    free(out);

    /* INTERNAL and UNSPEC: no kind; OK: only otel.status_code; 64-bit ids; sub-µs duration */
    otlp_span(&s);
    s.kind = SN_KIND_INTERNAL;
    s.status = SN_STATUS_OK;
    s.flags = SN_SPAN_F_ID64 | SN_SPAN_F_PARENT;
    s.parent_id[7] = 9;
    s.duration_ns = 999;
    s.start_ns = 999; /* 0 µs: no timestamp */
    out = to_json(&s);
    T_STR(out, "{\"traceId\":\"090a0b0c0d0e0f10\",\"parentId\":\"0000000000000009\",\"id\":"
               "\"1112131415161718\",\"duration\":1,\"tags\":{\"otel.status_code\":\"OK\"}}");
    free(out);
}

static void test_escaping(void)
{
    struct sn_span s;
    struct sn_span_kv attrs[3];
    struct sn_span_event ev = {5000, "tab\there", NULL, 0, 0};

    otlp_span(&s);
    s.flags = SN_SPAN_F_ZIPKIN;
    s.name = "A\"b\\c\n\x01\x7f/\r\b\f";
    attrs[0] = (struct sn_span_kv){"k\"\\", "x\0y", 3, SN_ATTR_STRING, 0, 0};
    /* lone byte, overlong, surrogate, truncated 3-byte, past U+10FFFF, then valid é € 😀 */
    attrs[1] = str_attr("bad", "\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xf4\x90\x80\x80|"
                               "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    attrs[2] = str_attr("\xfe", "\xe2\x82");
    s.attrs = attrs;
    s.nattrs = 3;
    s.events = &ev;
    s.nevents = 1;
    char *out = to_json(&s);
    T_STR(out,
          "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"id\":\"1112131415161718\","
          "\"name\":\"a\\\"b\\\\c\\n\\u0001\x7f/\\r\\b\\f\",\"annotations\":[{\"timestamp\":5,"
          "\"value\":\"tab\\there\"}],\"tags\":{\"k\\\"\\\\\":\"x\\u0000y\",\"bad\":"
          "\"\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
          "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
          "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"\xef\xbf\xbd\":\"\xef\xbf\xbd\xef\xbf\xbd\"}}");
    T_OK(valid_json(out));
    free(out);

    /* every byte value in a tag: the output is JSON and reads back as the bytes (valid UTF-8
     * ones) or U+FFFD */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    attrs[0] = (struct sn_span_kv){"all", all, 256, SN_ATTR_STRING, 0, 0};
    s.nattrs = 1;
    out = to_json(&s);
    T_OK(valid_json(out));
    free(out);

    /* appending to a buffer that holds something: the earlier bytes stay */
    char *buf = strdup("[");
    size_t len = 1, cap = 2;
    T_REQUIRE(sn_zipkin_span_json(&s, &buf, &len, &cap) == 0);
    buf[len++] = ','; /* there is room: the writer keeps a NUL past len */
    T_REQUIRE(sn_zipkin_span_json(&s, &buf, &len, &cap) == 0);
    T_OK(len < cap);
    buf[len++] = ']';
    buf[len] = '\0';
    T_OK(buf[0] == '[' && valid_json(buf));
    free(buf);
}

/* ------------------------------------------------------------------------------------------
 * Speed (printed, not asserted): 10 000 example spans decoded from JSON and from proto3, and
 * written back as JSON.
 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_speed(void)
{
    enum { N = 10000 };
    size_t one_len = strlen(example), len = 0;
    char *body = malloc(N * (one_len + 1) + 2);
    T_REQUIRE(body);
    body[len++] = '[';
    for (int i = 0; i < N; i++) {
        memcpy(body + len, example, one_len);
        len += one_len;
        body[len++] = ',';
    }
    body[len - 1] = ']';

    struct sn_span_batch b = {0}, p = {0};
    char why[256], *out = NULL;
    size_t olen = 0, ocap = 0, pblen;
    unsigned char *pb;
    double t0 = now_s();
    T_REQUIRE(sn_zipkin_decode_json(body, len, &b, why, sizeof(why)) == 0);
    double t1 = now_s();
    for (size_t i = 0; i < b.n; i++)
        T_REQUIRE(sn_zipkin_span_json(&b.spans[i], &out, &olen, &ocap) == 0);
    double t2 = now_s();
    T_REQUIRE(sn_zipkin_encode_proto(b.spans, b.n, &pb, &pblen) == 0);
    double t3 = now_s();
    T_REQUIRE(sn_zipkin_decode_proto(pb, pblen, &p, why, sizeof(why)) == 0);
    double t4 = now_s();
    T_EQU(p.n, N);
    printf("# %d spans: JSON decode %.2f us/span, JSON write %.2f us/span, proto3 decode %.2f "
           "us/span\n",
           N, (t1 - t0) * 1e6 / N, (t2 - t1) * 1e6 / N, (t4 - t3) * 1e6 / N);
    free(pb);
    free(out);
    free(body);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&p);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--write-corpus") == 0)
            corpus_dir = argv[i + 1];
    t_init(argc, argv);
    t_run("example", test_example);
    t_run("empty", test_empty);
    t_run("ids", test_ids);
    t_run("normalisations", test_normalisations);
    t_run("fractional", test_fractional);
    t_run("tags", test_tags);
    t_run("errors", test_errors);
    t_run("proto_example", test_proto_example);
    t_run("proto_errors", test_proto_errors);
    t_run("roundtrips", test_roundtrips);
    if (corpus_dir) /* the seeds: the bodies above; not the big and the truncated ones */
        corpus_dir = NULL;
    t_run("limits", test_limits);
    t_run("proto_truncated", test_proto_truncated);
    t_run("otlp", test_otlp);
    t_run("escaping", test_escaping);
    t_run("speed", test_speed);
    return t_done();
}
