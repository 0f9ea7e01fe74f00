/*
 * Sampling (trace/sampling.h): the configuration in Jaeger's strategies form, checked with a
 * message naming what is wrong; the strategy each service is told; and the tail sampler on a
 * simulated clock (a day ahead of the real one, which its own thread ticks with, so that only
 * the test's ticks decide): errors kept, the rest dropped at the configured rate by the trace
 * id's hash, a span slower than its operation's percentile kept, late spans following their
 * trace's decision, the oldest traces decided early past max_spans, and what waits decided at
 * close.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t.h"
#include "trace/sampling.h"

/* ---- Configuration ---------------------------------------------------------------------- */

/* The response for service of the configuration doc, compact. */
static char *strategy_of(const char *doc, const char *service)
{
    struct sn_sampling_cfg c;
    char why[256];
    json_t *d = json_loads(doc, 0, NULL);
    if (!d || sn_sampling_parse(d, &c, why, sizeof(why)) < 0) {
        json_decref(d);
        return strdup(why);
    }
    json_t *st = sn_sampling_strategy(&c, service);
    char *s = json_dumps(st, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(st);
    sn_sampling_cfg_fini(&c);
    json_decref(d);
    return s;
}

/* Per-operation strategies, merged as Jaeger's strategy store merges them: a service's own
 * first, then the default's it does not name; the probability of other operations. */
static void test_operations(void)
{
    static const char *doc =
        "{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":0.5,"
        "\"operation_strategies\":[{\"operation\":\"/health\",\"type\":\"probabilistic\","
        "\"param\":0},{\"operation\":\"/login\",\"type\":\"probabilistic\",\"param\":1}]},"
        "\"service_strategies\":["
        "{\"service\":\"cart\",\"type\":\"probabilistic\",\"param\":0.25,"
        "\"operation_strategies\":[{\"operation\":\"/login\",\"type\":\"probabilistic\","
        "\"param\":0.75},{\"operation\":\"GET /cart\",\"type\":\"probabilistic\","
        "\"param\":0.125}]},"
        "{\"service\":\"pay\",\"type\":\"probabilistic\",\"param\":0.8},"
        "{\"service\":\"ship\",\"type\":\"ratelimiting\",\"param\":10}]}";
    char *s = strategy_of(doc, "cart");
    T_STR(s, "{\"strategyType\":\"PROBABILISTIC\",\"probabilisticSampling\":{\"samplingRate\":"
             "0.25},\"operationSampling\":{\"defaultSamplingProbability\":0.25,"
             "\"defaultLowerBoundTracesPerSecond\":0.0,\"perOperationStrategies\":["
             "{\"operation\":\"/login\",\"probabilisticSampling\":{\"samplingRate\":0.75}},"
             "{\"operation\":\"GET /cart\",\"probabilisticSampling\":{\"samplingRate\":0.125}},"
             "{\"operation\":\"/health\",\"probabilisticSampling\":{\"samplingRate\":0.0}}]}}");
    free(s);
    s = strategy_of(doc, "pay"); /* none of its own: the default's, at its own probability */
    T_STR(s, "{\"strategyType\":\"PROBABILISTIC\",\"probabilisticSampling\":{\"samplingRate\":"
             "0.8},\"operationSampling\":{\"defaultSamplingProbability\":0.8,"
             "\"defaultLowerBoundTracesPerSecond\":0.0,\"perOperationStrategies\":["
             "{\"operation\":\"/health\",\"probabilisticSampling\":{\"samplingRate\":0.0}},"
             "{\"operation\":\"/login\",\"probabilisticSampling\":{\"samplingRate\":1.0}}]}}");
    free(s);
    s = strategy_of(doc, "ship"); /* a rate limit: other operations at the default's */
    T_STR(s, "{\"strategyType\":\"RATE_LIMITING\",\"rateLimitingSampling\":{\"maxTracesPerSecond\":"
             "10},\"operationSampling\":{\"defaultSamplingProbability\":0.5,"
             "\"defaultLowerBoundTracesPerSecond\":0.0,\"perOperationStrategies\":["
             "{\"operation\":\"/health\",\"probabilisticSampling\":{\"samplingRate\":0.0}},"
             "{\"operation\":\"/login\",\"probabilisticSampling\":{\"samplingRate\":1.0}}]}}");
    free(s);
    s = strategy_of(doc, "unknown"); /* the default strategy, with its operations */
    T_STR(s, "{\"strategyType\":\"PROBABILISTIC\",\"probabilisticSampling\":{\"samplingRate\":"
             "0.5},\"operationSampling\":{\"defaultSamplingProbability\":0.5,"
             "\"defaultLowerBoundTracesPerSecond\":0.0,\"perOperationStrategies\":["
             "{\"operation\":\"/health\",\"probabilisticSampling\":{\"samplingRate\":0.0}},"
             "{\"operation\":\"/login\",\"probabilisticSampling\":{\"samplingRate\":1.0}}]}}");
    free(s);
    /* a rate-limited service naming operations: others at Jaeger's 0.001 */
    s = strategy_of("{\"service_strategies\":[{\"service\":\"q\",\"type\":\"ratelimiting\","
                    "\"param\":3,\"operation_strategies\":[{\"operation\":\"poll\","
                    "\"type\":\"probabilistic\",\"param\":0.5}]}]}",
                    "q");
    T_STR(s, "{\"strategyType\":\"RATE_LIMITING\",\"rateLimitingSampling\":{\"maxTracesPerSecond\":"
             "3},\"operationSampling\":{\"defaultSamplingProbability\":0.001,"
             "\"defaultLowerBoundTracesPerSecond\":0.0,\"perOperationStrategies\":["
             "{\"operation\":\"poll\",\"probabilisticSampling\":{\"samplingRate\":0.5}}]}}");
    free(s);
}

static void test_parse(void)
{
    struct sn_sampling_cfg c;
    char why[256];
    json_t *doc =
        json_loads("{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":0.25},"
                   "\"service_strategies\":[{\"service\":\"Checkout\",\"type\":\"ratelimiting\","
                   "\"param\":42},{\"service\":\"cart\",\"type\":\"probabilistic\",\"param\":0.8}],"
                   "\"tail\":{\"drop_rate\":0.9,\"decision_wait\":3}}",
                   0, NULL);
    T_REQUIRE(doc);
    T_EQ(sn_sampling_parse(doc, &c, why, sizeof(why)), 0);
    T_OK(c.tail);
    T_OK(c.keep_errors);
    T_DEQ(c.slow_percentile, 99.0);
    T_DEQ(c.drop_rate, 0.9);
    T_EQ(c.decision_wait, 3);
    T_EQU(c.max_spans, 1000000);
    json_t *st = sn_sampling_strategy(&c, "checkout");
    char *s = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    T_STR(s, "{\"strategyType\":\"RATE_LIMITING\",\"rateLimitingSampling\":"
             "{\"maxTracesPerSecond\":42}}");
    free(s);
    json_t *j = sn_sampling_strategy(&c, "cart");
    T_DEQ(json_real_value(
              json_object_get(json_object_get(j, "probabilisticSampling"), "samplingRate")),
          0.8);
    json_decref(j);
    j = sn_sampling_strategy(&c, "other");
    T_STR(json_string_value(json_object_get(j, "strategyType")), "PROBABILISTIC");
    T_DEQ(json_real_value(
              json_object_get(json_object_get(j, "probabilisticSampling"), "samplingRate")),
          0.25);
    json_decref(j);
    sn_sampling_cfg_fini(&c);
    json_decref(doc);

    T_EQ(sn_sampling_parse(NULL, &c, why, sizeof(why)), 0); /* the default: everything */
    T_OK(!c.tail);
    j = sn_sampling_strategy(&c, "x");
    T_DEQ(json_real_value(
              json_object_get(json_object_get(j, "probabilisticSampling"), "samplingRate")),
          1.0);
    json_decref(j);
    sn_sampling_cfg_fini(&c);

    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"[]", "the sampling configuration is a JSON object"},
        {"{\"defaults\":{}}",
         "unknown member \"defaults\" (default_strategy, service_strategies, tail)"},
        {"{\"default_strategy\":{\"type\":\"always\",\"param\":1}}",
         "default_strategy.type: \"probabilistic\" or \"ratelimiting\""},
        {"{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":1.5}}",
         "default_strategy.param: a probability is in [0, 1]"},
        {"{\"default_strategy\":{\"type\":\"probabilistic\"}}",
         "default_strategy.param: a number is required"},
        {"{\"service_strategies\":{}}", "service_strategies: a list of {service, type, param}"},
        {"{\"service_strategies\":[{\"type\":\"ratelimiting\",\"param\":1}]}",
         "service_strategies[0].service: a service name is required"},
        {"{\"service_strategies\":[{\"service\":\"a\",\"type\":\"ratelimiting\",\"param\":-1}]}",
         "service_strategies[0].param: traces per second, from 0 to 1000000"},
        {"{\"tail\":{\"drop\":1}}", "tail: unknown member \"drop\" (keep_errors, "
                                    "slow_percentile, drop_rate, decision_wait, max_spans)"},
        {"{\"tail\":{\"drop_rate\":2}}", "tail.drop_rate: a number from 0 to 1"},
        {"{\"tail\":{\"decision_wait\":0}}", "tail.decision_wait: a number from 1 to 300"},
        {"{\"tail\":{\"keep_errors\":1}}", "tail.keep_errors: true or false"},
        {"{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":1,"
         "\"operation_strategies\":{}}}",
         "default_strategy.operation_strategies: a list of {operation, type, param}"},
        {"{\"service_strategies\":[{\"service\":\"a\",\"type\":\"ratelimiting\",\"param\":1,"
         "\"operation_strategies\":[{\"operation\":\"GET\",\"type\":\"ratelimiting\","
         "\"param\":5}]}]}",
         "service_strategies[0].operation_strategies[0].type: \"probabilistic\" (an operation's "
         "strategy has no rate limit in Jaeger's remote sampling)"},
        {"{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":1,"
         "\"operation_strategies\":[{\"type\":\"probabilistic\",\"param\":0.5}]}}",
         "default_strategy.operation_strategies[0].operation: an operation name is required"},
        {"{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":1,"
         "\"operation_strategies\":[{\"operation\":\"x\",\"type\":\"probabilistic\","
         "\"param\":2}]}}",
         "default_strategy.operation_strategies[0].param: a probability is in [0, 1]"},
        {"{\"default_strategy\":{\"type\":\"probabilistic\",\"param\":1,"
         "\"operation_strategies\":[{\"operation\":\"x\",\"type\":\"probabilistic\","
         "\"param\":0.5,\"operation_strategies\":[]}]}}",
         "default_strategy.operation_strategies[0]: unknown member \"operation_strategies\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *d = json_loads(bad[i].doc, JSON_DECODE_ANY, NULL);
        why[0] = '\0';
        T_EQ(sn_sampling_parse(d, &c, why, sizeof(why)), -EINVAL);
        T_STR(why, bad[i].why);
        json_decref(d);
    }
}

/* ---- The tail sampler --------------------------------------------------------------------- */

static pthread_mutex_t kmu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t kept[20000][16];
static size_t nkept;

static void on_keep(void *arg, const struct sn_span_batch *b)
{
    (void)arg;
    pthread_mutex_lock(&kmu);
    for (size_t i = 0; i < b->n && nkept < 20000; i++)
        memcpy(kept[nkept++], b->spans[i].trace_id, 16);
    pthread_mutex_unlock(&kmu);
}

static size_t kept_of(unsigned t)
{
    size_t n = 0;
    pthread_mutex_lock(&kmu);
    for (size_t i = 0; i < nkept; i++)
        n += kept[i][12] == (uint8_t)(t >> 24) && kept[i][13] == (uint8_t)(t >> 16) &&
             kept[i][14] == (uint8_t)(t >> 8) && kept[i][15] == (uint8_t)t;
    pthread_mutex_unlock(&kmu);
    return n;
}

static void reset(void)
{
    pthread_mutex_lock(&kmu);
    nkept = 0;
    pthread_mutex_unlock(&kmu);
}

/* A span of trace t (its id's last 4 bytes), of operation op, lasting ms. */
static void add(struct sn_span_batch *b, unsigned t, const char *op, double ms, bool error)
{
    struct sn_span *s = sn_span_batch_add(b);
    s->trace_id[0] = 0x77;
    s->trace_id[12] = (uint8_t)(t >> 24);
    s->trace_id[13] = (uint8_t)(t >> 16);
    s->trace_id[14] = (uint8_t)(t >> 8);
    s->trace_id[15] = (uint8_t)t;
    s->span_id[7] = (uint8_t)b->n;
    s->span_id[0] = 1;
    s->service = s->local.service = "svc";
    s->name = op;
    s->start_ns = 1700000000000000000ULL;
    s->duration_ns = (uint64_t)(ms * 1e6);
    s->status = error ? SN_STATUS_ERROR : SN_STATUS_UNSET;
}

static struct sn_tail *tail_with(const char *doc)
{
    struct sn_tail *t = NULL;
    struct sn_sampling_cfg c;
    char why[256];
    json_t *d = json_loads(doc, 0, NULL);
    T_OK(d && sn_sampling_parse(d, &c, why, sizeof(why)) == 0);
    T_OK(sn_tail_open(on_keep, NULL, &t) == 0);
    T_OK(sn_tail_configure(t, &c) == 0);
    sn_sampling_cfg_fini(&c);
    json_decref(d);
    reset();
    return t;
}

static int64_t day_ahead(void)
{
    return (int64_t)time(NULL) * 1000 + 86400000;
}

static void test_tail_rules(void)
{
    struct sn_tail *t = tail_with("{\"tail\":{\"drop_rate\":1,\"decision_wait\":2,"
                                  "\"slow_percentile\":99}}");
    int64_t T = day_ahead();
    struct sn_span_batch b = {0};
    T_REQUIRE(t);
    /* a minute of an operation at 1 ms: its p99 becomes known when the window turns */
    for (unsigned i = 0; i < 300; i++)
        add(&b, 1000 + i, "get", 1.0, false);
    T_EQ(sn_tail_take(t, &b, T), 0);
    sn_span_batch_fini(&b);
    sn_tail_tick(t, T + 1000);
    T_EQ(nkept, 0);            /* waiting */
    sn_tail_tick(t, T + 2000); /* decided: all dropped (drop_rate 1, no error, none slow) */
    struct sn_tail_stats st;
    sn_tail_stats(t, &st);
    T_EQU(st.traces_dropped, 300);
    T_EQU(st.spans_dropped, 300);
    T_EQ(nkept, 0);
    sn_tail_tick(t, T + 70000); /* the window turns: get's p99 is about 1 ms */

    add(&b, 1, "get", 1.0, false);   /* dropped */
    add(&b, 2, "get", 1.0, true);    /* kept: an error */
    add(&b, 2, "child", 0.5, false); /* kept with it */
    add(&b, 3, "get", 50.0, false);  /* kept: slower than get's p99 */
    T_EQ(sn_tail_take(t, &b, T + 71000), 0);
    sn_span_batch_fini(&b);
    sn_tail_tick(t, T + 73000);
    T_EQ(kept_of(1), 0);
    T_EQ(kept_of(2), 2);
    T_EQ(kept_of(3), 1);
    sn_tail_stats(t, &st);
    T_EQU(st.kept_error, 1);
    T_EQU(st.kept_slow, 1);
    T_EQU(st.kept_rate, 0);

    /* late spans follow their trace's decision at once */
    add(&b, 2, "late", 1.0, false);
    add(&b, 1, "late", 1.0, false);
    T_EQ(sn_tail_take(t, &b, T + 74000), 0);
    sn_span_batch_fini(&b);
    T_EQ(kept_of(2), 3);
    T_EQ(kept_of(1), 0);
    sn_tail_stats(t, &st);
    T_EQU(st.waiting_spans, 0);
    sn_tail_close(t);
}

static void test_tail_rate(void)
{
    /* drop half: the decision is the trace id's hash, so the same ids give the same share */
    struct sn_tail *t = tail_with("{\"tail\":{\"drop_rate\":0.5,\"keep_errors\":false,"
                                  "\"slow_percentile\":0,\"decision_wait\":1}}");
    int64_t T = day_ahead();
    struct sn_span_batch b = {0};
    T_REQUIRE(t);
    for (unsigned i = 0; i < 2000; i++)
        add(&b, 50000 + i, "op", 1.0, i % 7 == 0);
    T_EQ(sn_tail_take(t, &b, T), 0);
    sn_span_batch_fini(&b);
    sn_tail_tick(t, T + 1000);
    struct sn_tail_stats st;
    sn_tail_stats(t, &st);
    T_EQU(st.traces_kept + st.traces_dropped, 2000);
    T_OK(st.traces_kept > 900 && st.traces_kept < 1100);
    T_EQU(st.kept_error, 0); /* keep_errors false: errors take their chance too */
    T_EQ(nkept, st.spans_kept);
    sn_tail_close(t);
}

static void test_tail_full_and_close(void)
{
    struct sn_tail *t = tail_with("{\"tail\":{\"drop_rate\":0,\"decision_wait\":60,"
                                  "\"max_spans\":1000}}");
    int64_t T = day_ahead();
    struct sn_span_batch b = {0};
    T_REQUIRE(t);
    for (unsigned i = 0; i < 1500; i++)
        add(&b, 90000 + i, "op", 1.0, false);
    T_EQ(sn_tail_take(t, &b, T), 0);
    sn_span_batch_fini(&b);
    struct sn_tail_stats st;
    sn_tail_stats(t, &st);
    T_EQU(st.decided_early, 500); /* the oldest 500 traces, at once */
    T_EQU(st.waiting_spans, 1000);
    T_EQ(nkept, 500); /* drop_rate 0: kept */
    sn_tail_close(t); /* the 1000 waiting are decided at close, and kept */
    T_EQ(nkept, 1500);

    /* without a tail, spans pass through at once */
    t = tail_with("{}");
    add(&b, 7, "op", 1.0, false);
    T_EQ(sn_tail_take(t, &b, T), 0);
    sn_span_batch_fini(&b);
    T_EQ(nkept, 1);
    sn_tail_close(t);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("parse", test_parse);
    t_run("operations", test_operations);
    t_run("tail_rules", test_tail_rules);
    t_run("tail_rate", test_tail_rate);
    t_run("tail_full_and_close", test_tail_full_and_close);
    return t_done();
}
