/*
 * Instrumentations from CA create bodies (src/agent/definition.c and probe.c) and frames
 * (src/agent/frame_build.c), without the kernel: CA's messages for each invalid body, arities, the
 * kernel fields a spec needs, hostname folding, name and pid constants, and the JSON and binary
 * forms of frames of every arity built from cells.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/frame_build.h"
#include "agent/probe.h"
#include "agent_frames.h"
#include "agent/names.h"
#include "core/hist.h"
#include "t.h"
#include "wire/frame.h"
#include "wire/frame_json.h"

static int parse(const char *text, struct sn_probe *in, char *why)
{
    json_t *j = json_loads(text, 0, NULL);
    int rc;
    if (!j)
        return -1000;
    rc = sn_probe_compile(j, "7", "web1", 100, in, why, 512);
    json_decref(j);
    return rc;
}

/* sn_def_check(): the host-free check of text. */
static int check(const char *text, char *why)
{
    struct sn_def d;
    json_t *j = json_loads(text, 0, NULL);
    int rc;
    if (!j)
        return -1000;
    rc = sn_def_check(j, &d, why, 512);
    json_decref(j);
    return rc;
}

/* Refused when compiled for this host (only a host can say). */
#define T_BAD_HERE(text, msg)                                                                      \
    do {                                                                                           \
        struct sn_probe in_;                                                                       \
        char why_[512];                                                                            \
        t_note("%s", text);                                                                        \
        T_EQ(parse(text, &in_, why_), -EINVAL);                                                    \
        T_STR(why_, msg);                                                                          \
    } while (0)

/* Refused by the host-free check too, with the same message. */
#define T_BAD(text, msg)                                                                           \
    do {                                                                                           \
        char whyc_[512];                                                                           \
        T_BAD_HERE(text, msg);                                                                     \
        T_EQ(check(text, whyc_), -EINVAL); /* the same with no host */                             \
        T_STR(whyc_, msg);                                                                         \
    } while (0)

static void test_messages(void)
{
    T_BAD("{\"stat\":\"syscalls\"}", "missing value for required field: \"module\"");
    T_BAD("{\"module\":\"syscall\"}", "missing value for required field: \"stat\"");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"nope\"}",
          "value \"syscall.nope\" for field \"module.stat\" is invalid: not a valid module/stat "
          "pair");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"bogus\"]}",
          "value \"bogus\" for field \"field\" is invalid: no such field for specified "
          "metric");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"pid\",\"syscall\"]}",
          "value [\"pid\",\"syscall\"] for field \"decomposition\" is invalid: more than one "
          "discrete decomposition specified");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":7}",
          "value 7 for field \"decomposition\" is invalid: must be an array of field names");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"lt\":[\"execname\",\"m\"]"
          "}}",
          "value {\"lt\":[\"execname\",\"m\"]} for field \"predicate\" is invalid: field "
          "\"execname\" is discrete: only eq and ne apply");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":\"{not json\"}",
          "value \"{not json\" for field \"predicate\" is invalid: invalid JSON: string or '}' "
          "expected near 'not'");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"pid\",\"x1\"]}}",
          "value {\"eq\":[\"pid\",\"x1\"]} for field \"predicate\" is invalid: value \"x1\" is "
          "not a valid pid");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"under\":[\"execname\","
          "\"/a\"]}}",
          "value {\"under\":[\"execname\",\"/a\"]} for field \"predicate\" is invalid: \"under\" "
          "applies only to \"container\", not \"execname\"");
    T_BAD("{\"module\":\"disk\",\"stat\":\"physio_ops\",\"predicate\":{\"under\":[\"container\","
          "\"/a\"]}}",
          "value \"container\" for field \"field\" is invalid: no such field for specified "
          "metric");
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"under\":[\"container\","
          "\"a.slice\"]}}",
          "value {\"under\":[\"container\",\"a.slice\"]} for field \"predicate\" is invalid: "
          "\"under\" needs an absolute cgroup path, not \"a.slice\"");
}

/* What only a host can say: a container path that is no cgroup here passes the host-free
 * check (another host may have it) and is refused when compiled for this host; the check's
 * arity and fields are the compile's. */
static void test_host_free(void)
{
    static const char body[] = "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":"
                               "{\"eq\":[\"container\",\"/sonde-test-no-such.slice\"]},"
                               "\"decomposition\":[\"execname\",\"latency\"]}";
    struct sn_probe in;
    struct sn_def d;
    char why[512];
    json_t *j = json_loads(body, 0, NULL);

    T_REQUIRE(j != NULL);
    T_EQ(sn_def_check(j, &d, why, sizeof(why)), 0);
    T_EQ(d.arity, SN_ARITY_NUMERIC);
    T_STR(d.key->def.name, "execname");
    T_STR(d.num->def.name, "latency");
    T_STR(d.metric->stat, "syscalls");
    T_EQ(sn_probe_compile(j, "7", "web1", 100, &in, why, sizeof(why)), -EINVAL);
    T_STR(why, "value {\"eq\":[\"container\",\"/sonde-test-no-such.slice\"]} for field "
               "\"predicate\" is invalid: value \"/sonde-test-no-such.slice\" is not a valid "
               "container");
    json_decref(j);
}

/* Predicate constants with units convert by the catalog's types: time in ns, subsecond in
 * ms, size in bytes. */
static void test_units(void)
{
    struct sn_probe in;
    char why[512];
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"gt\":[\"latency\","
               "\"1ms\"]}}",
               &in, why),
         0);
    T_EQ(in.spec.pred.n, 1);
    T_EQ(in.spec.pred.insn[0].n, 1000000);
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"ge\":[\"subsecond\","
               "\"0.5s\"]}}",
               &in, why),
         0);
    T_EQ(in.spec.pred.insn[0].n, 500);
    T_EQ(parse("{\"module\":\"fs\",\"stat\":\"logical_ops\",\"predicate\":{\"and\":[{\"ge\":["
               "\"size\",\"4KiB\"]},{\"gt\":[\"latency\",\"150\xc2\xb5s\"]}]}}",
               &in, why),
         0);
    T_EQ(in.spec.pred.n, 3);
    T_EQ(in.spec.pred.insn[0].n, 4096);
    T_EQ(in.spec.pred.insn[1].n, 150000);
    /* the predicate may be a JSON string holding one */
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":\"{\\\"gt\\\":["
               "\\\"latency\\\",\\\"2s\\\"]}\"}",
               &in, why),
         0);
    T_EQ(in.spec.pred.insn[0].n, 2000000000);
    T_BAD("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"gt\":[\"latency\","
          "\"4KiB\"]}}",
          "value {\"gt\":[\"latency\",\"4KiB\"]} for field \"predicate\" is invalid: \"4KiB\" is "
          "a size, but field \"latency\" is a time: use ns, us (or \xc2\xb5s), ms, s, min or h");
    T_BAD("{\"module\":\"fs\",\"stat\":\"logical_ops\",\"predicate\":{\"gt\":[\"size\",\"big\"]}}",
          "value {\"gt\":[\"size\",\"big\"]} for field \"predicate\" is invalid: \"big\" is not a "
          "size for field \"size\": use a number of bytes, or a number with B, kB, MB, GB, TB, "
          "KiB, MiB, GiB or TiB");
}

/* "under" on the container of every metric that has one; a prefix need not exist (a tenant's
 * slice may come later), unlike an eq's container */
static void test_under(void)
{
    struct sn_probe in;
    char why[512];
    size_t n;
    const struct sn_metric_def *all = sn_catalog_all(&n);

    for (size_t i = 0; i < n; i++) {
        char body[512];
        if (!sn_catalog_field(&all[i], "container") || all[i].metric == SN_METRIC_USDT)
            continue;
        T_EQ(sn_catalog_field(&all[i], "container")->def.kind, SN_FIELD_CGROUP);
        snprintf(body, sizeof(body),
                 "{\"module\":\"%s\",\"stat\":\"%s\",\"predicate\":{\"under\":[\"container\","
                 "\"/no-such.slice/x\"]}}",
                 all[i].module, all[i].stat);
        t_note("%s", body);
        T_EQ(parse(body, &in, why), 0);
        T_EQ(in.spec.pred.insn[0].op, SN_PRED_UNDER);
        T_STR(sn_pred_under_path(&in.spec.pred, &in.spec.pred.insn[0]), "/no-such.slice/x");
        T_EQ(in.spec.needs, 1u << SN_SC_CONTAINER);
    }
    T_BAD_HERE("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"container\","
               "\"/no-such.slice/x\"]}}",
               "value {\"eq\":[\"container\",\"/no-such.slice/x\"]} for field \"predicate\" is "
               "invalid: value \"/no-such.slice/x\" is not a valid container");
    /* a tenant's wrapping of a user's predicate */
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"],"
               "\"predicate\":{\"and\":[{\"eq\":[\"execname\",\"nginx\"]},{\"or\":["
               "{\"under\":[\"container\",\"/acme.slice\"]},{\"under\":[\"container\","
               "\"/acme-db.slice\"]}]}]}}",
               &in, why),
         0);
    T_EQ(in.spec.pred.n, 5);
    T_EQ(in.spec.needs, 1u << SN_SC_EXECNAME | 1u << SN_SC_CONTAINER | 1u << SN_SC_LATENCY);
}

static void test_arities_and_needs(void)
{
    struct sn_probe in;
    char why[512];

    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\"}", &in, why), 0);
    T_EQ(in.arity, SN_ARITY_SCALAR);
    T_EQ(in.spec.pred.n, 1); /* {} compiles to TRUE */
    T_EQ(in.spec.needs, 0);
    T_EQ(in.spec.key_field, SN_NO_FIELD);
    T_EQ(in.spec.num_field, SN_NO_FIELD);

    T_EQ(parse(
             "{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":\"execname,latency\","
             "\"predicate\":\"{\\\"eq\\\":[\\\"syscall\\\",\\\"read\\\"]}\"}",
             &in, why),
         0);
    T_STR(in.id, "7");
    T_EQ(in.arity, SN_ARITY_NUMERIC);
    T_EQ(in.spec.key_field, SN_SC_EXECNAME);
    T_EQ(in.spec.num_field, SN_SC_LATENCY);
    T_EQ(in.spec.needs, (1u << SN_SC_EXECNAME) | (1u << SN_SC_LATENCY) | (1u << SN_SC_SYSCALL));
    T_EQ(in.spec.pred.insn[0].n, sn_syscall_number("read")); /* the name became a number */

    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"errno\"]}", &in,
               why),
         0);
    T_EQ(in.arity, SN_ARITY_DISCRETE);
}

static void test_hostname_folds(void)
{
    struct sn_probe in;
    char why[512];

    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"hostname\","
               "\"web1\"]}}",
               &in, why),
         0);
    T_EQ(in.spec.pred.n, 1);
    T_EQ(in.spec.pred.insn[0].op, SN_PRED_TRUE); /* this host: always true */
    T_EQ(in.spec.needs, 0);
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"predicate\":{\"eq\":[\"hostname\","
               "\"db2\"]}}",
               &in, why),
         0);
    struct sn_event ev;
    memset(&ev, 0, sizeof(ev));
    T_OK(!sn_pred_eval(&in.spec.pred, &ev)); /* another host: never true */
}

static json_t *frame_json(struct sn_frame *f)
{
    json_t *j = t_agent_json(f, "web1");
    json_t *v = json_incref(json_object_get(j, "value"));
    json_decref(j);
    return v;
}

static void test_frames(void)
{
    struct sn_probe in;
    struct sn_frame f;
    char why[512];
    struct sn_cell c = {.slot = 3};

    /* discrete by syscall: keys rendered as names, "other" for the over-cap cell */
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"syscall\"]}",
               &in, why),
         0);
    T_EQ(sn_frame_init(&f, &in, 1700000000), 0);
    int64_t nr = sn_syscall_number("read");
    memcpy(c.key, &nr, sizeof(nr));
    c.count = 5;
    T_EQ(sn_frame_add(&f, &c, "web1"), 0);
    c.count = 2;
    T_EQ(sn_frame_add(&f, &c, "web1"), 0);
    struct sn_cell other = {.slot = 3, .other = true, .count = 4};
    T_EQ(sn_frame_add(&f, &other, "web1"), 0);
    json_t *v = frame_json(&f);
    T_EQ(json_integer_value(json_object_get(v, "read")), 7);
    T_EQ(json_integer_value(json_object_get(v, "other")), 4);
    json_decref(v);
    size_t len;
    unsigned char *bin = t_agent_wire(&f, "web1", &len);
    struct sn_wire_frame w;
    T_REQUIRE(bin != NULL);
    T_EQ(sn_wire_frame_decode(bin, len, &w), 0);
    T_EQ(w.arity, SN_WIRE_DISCRETE);
    T_EQU(w.total, 11);
    T_EQ(w.n, 2);
    sn_wire_frame_fini(&w);
    free(bin);
    sn_frame_fini(&f);

    /* numeric without a key: CA's [[lo,hi],count] */
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"]}",
               &in, why),
         0);
    T_EQ(sn_frame_init(&f, &in, 5), 0);
    struct sn_cell h = {.slot = 1, .ord = sn_ord_of_u64(2050000), .count = 3};
    T_EQ(sn_frame_add(&f, &h, "web1"), 0);
    v = frame_json(&f);
    char *text = json_dumps(v, JSON_COMPACT);
    T_STR(text, "[[[2000000,2099999],3]]");
    free(text);
    json_decref(v);
    bin = t_agent_wire(&f, "web1", &len);
    T_REQUIRE(bin != NULL);
    T_EQ(sn_wire_frame_decode(bin, len, &w), 0);
    T_EQ(w.arity, SN_WIRE_NUMERIC);
    T_EQU(sn_hist_count(w.entries[0].hist), 3);
    sn_wire_frame_fini(&w);
    free(bin);
    sn_frame_fini(&f);

    /* scalar */
    T_EQ(parse("{\"module\":\"syscall\",\"stat\":\"syscalls\"}", &in, why), 0);
    T_EQ(sn_frame_init(&f, &in, 5), 0);
    struct sn_cell s = {.slot = 0, .count = 9};
    T_EQ(sn_frame_add(&f, &s, "web1"), 0);
    v = frame_json(&f);
    T_EQ(json_integer_value(v), 9);
    json_decref(v);
    sn_frame_fini(&f);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("invalid create bodies: CA's messages", test_messages);
    t_run("definitions checked with no host, compiled for this one", test_host_free);
    t_run("predicate constants with units, by the catalog's types", test_units);
    t_run("arities, decomposition fields and the fields the kernel must read",
          test_arities_and_needs);
    t_run("hostname predicates fold on this host", test_hostname_folds);
    t_run("\"under\" on every metric's container, existing or not", test_under);
    t_run("frames of every arity, as JSON and binary", test_frames);
    return t_done();
}
