/*
 * `sonde hist` end to end: runs the real binary (path in argv[1]) on inputs written to temp
 * files and checks exit codes, messages and output. The differential case feeds random
 * inputs and checks every figure of --json bit for bit against the model of libcircllhist
 * computed in this process.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hist.h"
#include "llmodel.h"
#include "http.h"
#include "t.h"

static const char *sonde;
static char out[1 << 20], err[1 << 16];

/* Runs "sonde ARGS < input" (input may be NULL); fills out/err; returns the exit code. */
static int run(const char *args, const char *input)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "%s %s", sonde, args);
    return t_capture(cmd, input, out, sizeof(out), err, sizeof(err));
}

/* The JSON value after "key": in out (first occurrence). */
static const char *field(const char *key)
{
    char k[64];
    const char *p;
    snprintf(k, sizeof(k), "\"%s\":", key);
    p = strstr(out, k);
    return p ? p + strlen(k) : NULL;
}

static double num(const char *key)
{
    const char *p = field(key);
    if (!p || strncmp(p, "null", 4) == 0)
        return NAN;
    return strtod(p, NULL);
}

static uint64_t unum(const char *key)
{
    const char *p = field(key);
    return p ? strtoull(p, NULL, 10) : UINT64_MAX;
}

static void str(const char *key, char *buf, size_t len)
{
    const char *p = field(key), *e;
    buf[0] = '\0';
    if (!p || *p != '"')
        return;
    e = strchr(p + 1, '"');
    if (!e || (size_t)(e - p - 1) >= len)
        return;
    memcpy(buf, p + 1, (size_t)(e - p - 1));
    buf[e - p - 1] = '\0';
}

/* parses the array after "key": in the quantiles object */
static int nums(const char *key, double *v, int max)
{
    const char *p = field(key);
    int n = 0;
    if (!p || *p != '[')
        return 0;
    p++;
    while (n < max && *p && *p != ']') {
        char *end;
        if (strncmp(p, "null", 4) == 0) {
            v[n++] = NAN;
            p += 4;
        } else {
            v[n++] = strtod(p, &end);
            p = end;
        }
        if (*p == ',')
            p++;
    }
    return n;
}

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_help_and_usage(void)
{
    T_EQ(run("--help", NULL), 0);
    T_OK(strstr(out, "hist") && strstr(out, "exit codes"));
    T_EQ(run("", NULL), 2);
    T_EQ(run("frobnicate", NULL), 2);
    T_OK(strstr(err, "unknown command 'frobnicate'") != NULL);
    T_EQ(run("hist --help", NULL), 0);
    T_OK(strstr(out, "--decode") && strstr(out, "--merge") && strstr(out, "--json"));
    T_EQ(run("help hist", NULL), 0);
    T_OK(strstr(out, "usage: sonde hist") != NULL);
    T_EQ(run("hist --bogus", NULL), 2);
    T_EQ(run("hist --type 3", NULL), 2);
    T_OK(strstr(err, "--type must be 1 or 7") != NULL);
    T_EQ(run("version", NULL), 0);
    T_OK(strncmp(out, "sonde ", 6) == 0);
}

static void test_worked_example(void)
{
    char b[256];
    double q[7];
    T_EQ(run("hist --json", "1\n9.9\n10\n99.99\n100\n0.01\n"), 0);
    str("binary", b, sizeof(b));
    T_STR(b, "00060afe00010a000001630000010a010001630100010a020001");
    str("base64", b, sizeof(b));
    T_STR(b, "AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=");
    T_OK(num("count") == 6);
    T_DEQ(num("min"), 0.01);
    T_DEQ(num("max"), 100.0);
    T_EQ(nums("type1", q, 7), 7);
    T_DEQ(q[0], 0.0105); /* one sample in [0.01, 0.011): its midpoint */
    T_DEQ(q[6], 105.0);
    T_OK(strstr(out, "\"bucket\":\"+99e+000\",\"val\":99,\"exp\":1") != NULL);
}

static void test_summary(void)
{
    T_EQ(run("hist", "# latencies\n2000000 3\n\n3000000\n"), 0);
    T_OK(strstr(out, "count   4\n") != NULL);
    T_OK(strstr(out, "[2e+06, 2.1e+06)") || strstr(out, "[2000000, 2100000)"));
    T_OK(strstr(out, "########################################") != NULL);
    T_OK(strstr(out, "p99.9") != NULL);
}

static void test_decode_and_merge(void)
{
    char b[256];
    T_EQ(run("hist --json --decode AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=", NULL), 0);
    str("base64", b, sizeof(b));
    T_STR(b, "AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=");
    T_OK(field("min") == NULL); /* no raw values: no exact min */
    T_EQ(run("hist --json --merge AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE= AAFQ/gAB", NULL), 0);
    T_OK(num("count") == 7);
    T_OK(strstr(out, "\"val\":80,\"exp\":-2") != NULL); /* AAFQ/gAB = {80,-2} x1 (0.080) */
    T_EQ(run("hist --decode", NULL), 2);
    T_EQ(run("hist --merge", NULL), 2);
    T_EQ(run("hist --decode AA", NULL), 2);
    T_OK(strstr(err, "cannot decode histogram") && strstr(err, "input truncated"));
    /* lenient accepts whitespace and junk after the padding; strict does not */
    T_EQ(run("hist --json --decode 'AAFQ /gAB'", NULL), 0);
    T_OK(num("count") == 1);
    T_EQ(run("hist --strict --decode 'AAFQ /gAB'", NULL), 2);
    T_OK(strstr(err, "malformed input") != NULL);
}

static void test_bad_input(void)
{
    T_EQ(run("hist", "1\n2\nabc\n"), 2);
    T_OK(strstr(err, "<stdin>:3: not a number") != NULL);
    T_EQ(run("hist", "1 -3\n"), 2);
    T_OK(strstr(err, "count must be") != NULL);
    T_EQ(run("hist", "1 2 3\n"), 2);
    T_EQ(run("hist /nonexistent/file", NULL), 2);
    T_OK(strstr(err, "No such file") != NULL);
    T_EQ(run("hist --int-scale -9", "1.5\n"), 2);
    T_OK(strstr(err, "--int-scale needs a plain integer") != NULL);
    T_EQ(run("hist --int-scale x", NULL), 2);
}

static void test_empty_and_special(void)
{
    double q[7];
    /* no values: a clear message and exit 1; --json still prints its document */
    T_EQ(run("hist", ""), 1);
    T_STR(out, "");
    T_STR(err, "sonde hist: no values\n");
    T_EQ(run("hist", "# only a comment\n\n"), 1);
    T_STR(err, "sonde hist: no values\n");
    T_EQ(run("hist --json", ""), 1);
    T_STR(err, "sonde hist: no values\n");
    T_OK(num("count") == 0);
    T_OK(strncmp(field("mean"), "null", 4) == 0);
    T_EQ(nums("type1", q, 7), 7);
    T_OK(isnan(q[3]));
    T_EQ(run("hist --decode AAA=", NULL), 1);
    T_STR(err, "sonde hist: no values\n");

    /* values no bucket holds are skipped and counted, not put in the NaN bucket */
    T_EQ(run("hist --json", "nan\ninf\n-inf\n1e300\n0\n-0\n"), 0);
    T_STR(err, "sonde hist: skipped 4 values that are not finite or out of range (|v| >= 1e128)\n");
    T_OK(num("count") == 2);
    T_OK(unum("skipped") == 4);
    T_OK(strstr(out, "\"bucket\":\"NaN\"") == NULL);
    T_DEQ(num("max"), 0.0);
    T_EQ(run("hist", "1\n2\ninf\nnan 5\n1e300\n"), 0);
    T_STR(err, "sonde hist: skipped 7 values that are not finite or out of range (|v| >= 1e128)\n");
    T_OK(strncmp(out, "count   2\nmean    1.5482\n", 25) == 0);
    T_OK(strstr(out, "\nmax     2\n") != NULL);
    T_EQ(run("hist", "inf\n"), 1);
    T_STR(err, "sonde hist: skipped 1 value that is not finite or out of range (|v| >= 1e128)\n"
               "sonde hist: no values\n");
    T_EQ(run("hist --int-scale 200", "1\n"), 1);
    T_OK(strstr(err, "skipped 1 value ") != NULL);
    T_EQ(run("hist --json", "9.99e127\n"), 0); /* the largest bucket still holds it */
    T_OK(unum("skipped") == 0);
}

/* The summary's percentiles and mean never pass the values read (a bucket's samples are taken
 * as spread over it, which would put them up to a bucket's width beyond). */
static void test_within_data(void)
{
    T_EQ(run("hist", "100\n"), 0);
    T_STR(out,
          "count   1\nmean    100\nstddev  0\nmin     100\nmax     100\n"
          "p50     100\np90     100\np99     100\np99.9   100\n\n"
          "bucket                             count\n"
          "[100, 110)                             1  ########################################\n");
    T_EQ(run("hist", "100\n100\n100\n103\n"), 0);
    T_OK(strstr(out, "\nmax     103\np50     103\np90     103\np99     103\np99.9   103\n") !=
         NULL);
    T_EQ(run("hist --type 7", "100 3\n"), 0);
    T_OK(strstr(out, "\np99     100\n") != NULL);
    T_EQ(run("hist", "-100\n-5\n"), 0);
    T_OK(strstr(out, "\nmin     -100\nmax     -5\np50     -100\np90     -5.05\n") != NULL);
    /* --json keeps libcircllhist's figures, for comparing with it */
    T_EQ(run("hist --json", "100\n"), 0);
    T_OK(strstr(out, "\"type1\":[105,105,105,105,105,105,105]") != NULL);
}

static void test_int_scale_and_flags(void)
{
    T_EQ(run("hist --json --int-scale -9", "1300000000\n"), 0);
    T_OK(strstr(out, "\"bucket\":\"+13e-001\"") != NULL);
    /* 999999999999999 is moved to 1e15 by the double path's fuzz, not by the exact int path */
    T_EQ(run("hist --json", "999999999999999\n"), 0);
    T_OK(strstr(out, "\"val\":10,\"exp\":15") != NULL);
    T_EQ(run("hist --json --int-scale 0", "999999999999999\n"), 0);
    T_OK(strstr(out, "\"val\":99,\"exp\":14") != NULL);
    /* 2^32 samples: upstream's bytes truncate the count to 0; exact widths keep it */
    T_EQ(run("hist --json", "1 4294967296\n"), 0);
    T_OK(strstr(out, "\"binary\":\"00010a000300000000\"") != NULL);
    T_EQ(run("hist --json --exact-widths", "1 4294967296\n"), 0);
    T_OK(strstr(out, "\"binary\":\"00010a00040000000001\"") != NULL);
    /* a value in a NaN hole: just below 1e100 */
    T_EQ(run("hist --json", "9.99999999999989e99\n"), 0);
    T_OK(strstr(out, "\"bucket\":\"NaN\"") != NULL);
    T_EQ(run("hist --json --fix-nan-holes", "9.99999999999989e99\n"), 0);
    T_OK(strstr(out, "\"val\":99,\"exp\":99") != NULL);
}

/* Random inputs: every figure of --json equals the model's, bit for bit. */
static void test_matches_model(void)
{
    static const double qs[7] = {0, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
    static char input[1 << 18];
    t_seed(77);
    for (int iter = 0; iter < 60; iter++) {
        struct llm_hist *m = llm_create();
        int n = 1 + (int)(t_rand() % 2000);
        size_t len = 0;
        double lo = t_rand01() * 20 - 10, span = t_rand01() * 12;
        for (int i = 0; i < n; i++) {
            double v = pow(10, lo + t_rand01() * span);
            uint64_t c = t_rand() % 4 ? 1 : t_rand() % 100000;
            if (t_rand() % 10 == 0)
                v = -v;
            len += (size_t)snprintf(input + len, sizeof(input) - len, "%.17g %" PRIu64 "\n", v, c);
            llm_insert(m, v, c);
        }
        T_REQUIRE(run("hist --json", input) == 0);
        double q1[7], q7[7], g1[7], g7[7];
        llm_quantile(m, qs, 7, q1);
        llm_quantile7(m, qs, 7, q7);
        T_EQ(nums("type1", g1, 7), 7);
        T_EQ(nums("type7", g7, 7), 7);
        for (int i = 0; i < 7; i++) {
            t_note("iter %d q=%g", iter, qs[i]);
            T_OK(same(g1[i], q1[i]));
            T_OK(same(g7[i], q7[i]));
        }
        t_note("iter %d", iter);
        T_OK(same(num("mean"), llm_mean(m)));
        T_OK(same(num("sum"), llm_sum(m)));
        T_OK(same(num("stddev"), llm_stddev(m)));
        T_EQU(unum("count"), llm_sample_count(m));
        ssize_t sz = llm_serialize_size(m);
        unsigned char *bin = malloc((size_t)sz);
        char *b64 = malloc((size_t)sz * 2 + 8), *hex = malloc((size_t)sz * 2 + 1);
        char *got = malloc((size_t)sz * 2 + 8);
        T_EQ(llm_serialize(m, bin, sz), sz);
        for (ssize_t i = 0; i < sz; i++)
            sprintf(hex + 2 * i, "%02x", bin[i]);
        str("binary", got, (size_t)sz * 2 + 8);
        T_STR(got, hex);
        ssize_t bl = llm_serialize_b64(m, b64, sz * 2 + 8);
        T_REQUIRE(bl > 0 && bl < sz * 2 + 8);
        b64[bl] = '\0';
        str("base64", got, (size_t)sz * 2 + 8);
        T_STR(got, b64);
        free(bin);
        free(b64);
        free(hex);
        free(got);
        llm_destroy(m);
    }
}

int main(int argc, char **argv)
{
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    t_run("help, usage and exit codes", test_help_and_usage);
    t_run("worked example: bytes, base64, quantiles", test_worked_example);
    t_run("summary and bar chart", test_summary);
    t_run("--decode and --merge, lenient and strict", test_decode_and_merge);
    t_run("malformed input: clear error, exit 2", test_bad_input);
    t_run("empty input, NaN and infinities", test_empty_and_special);
    t_run("summary percentiles within the data", test_within_data);
    t_run("--int-scale, --exact-widths, --fix-nan-holes", test_int_scale_and_flags);
    t_run("--json equals the model on random inputs", test_matches_model);
    return t_done();
}
