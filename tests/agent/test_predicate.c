/*
 * CA predicates: every validation rule with its message, compilation shapes, and the postfix
 * interpreter against a direct recursive evaluation of the JSON on random predicates and
 * events; "under" (cgroup prefixes) included.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/predicate.h"
#include "t.h"
#include "cgpath_model.h"

enum { F_EXECNAME, F_PID, F_LATENCY, F_SIZE, F_SYSCALL, F_CONTAINER, NFIELDS };

static const struct sn_field_def fields[] = {
    {"execname", SN_FIELD_DISCRETE, F_EXECNAME, NULL, NULL},
    {"pid", SN_FIELD_NUMERIC, F_PID, NULL, NULL},
    {"latency", SN_FIELD_NUMERIC, F_LATENCY, NULL, NULL},
    {"size", SN_FIELD_NUMERIC, F_SIZE, NULL, NULL},
    {"syscall", SN_FIELD_DISCRETE, F_SYSCALL, NULL, NULL},
    {"container", SN_FIELD_CGROUP, F_CONTAINER, NULL, NULL},
};

static int compile_text(const char *text, struct sn_pred *p, char *why)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    int rc;
    if (!j)
        return -1000;
    rc = sn_pred_compile(j, fields, NFIELDS, p, why, 256);
    json_decref(j);
    return rc;
}

#define T_REJECT(text, msg)  T_REJECT_RC(text, msg, -EINVAL)
/* a field the metric lacks has a code of its own (CA words that message apart) */
#define T_NOFIELD(text, msg) T_REJECT_RC(text, msg, -ENOENT)
#define T_REJECT_RC(text, msg, rc)                                                                 \
    do {                                                                                           \
        struct sn_pred p_;                                                                         \
        char why_[256];                                                                            \
        t_note("%s", text);                                                                        \
        T_EQ(compile_text(text, &p_, why_), rc);                                                   \
        T_STR(why_, msg);                                                                          \
        T_EQ(p_.n, 0);                                                                             \
    } while (0)

static void test_rejects_with_messages(void)
{
    T_REJECT("[]", "predicate must be an object");
    T_REJECT("\"eq\"", "predicate must be an object");
    T_REJECT("{\"eq\":[\"pid\",1],\"ne\":[\"pid\",2]}", "found too many keys: 2. expected one");
    T_REJECT("{\"like\":[\"pid\",1]}", "invalid key: like");
    T_REJECT("{\"eq\":\"pid\"}", "predicate key does not point to an array");
    T_REJECT("{\"eq\":[\"pid\"]}", "predicate array must have exactly 2 elements, found 1");
    T_REJECT("{\"eq\":[\"pid\",1,2]}", "predicate array must have exactly 2 elements, found 3");
    T_REJECT("{\"eq\":[1,1]}", "first element of a predicate array must be a field name");
    T_REJECT("{\"eq\":[\"pid\",null]}",
             "second element of a predicate array must be a number or a string");
    T_NOFIELD("{\"eq\":[\"hostname\",\"a\"]}", "no such field for specified metric: hostname");
    T_REJECT("{\"eq\":[\"pid\",\"12\"]}",
             "field \"pid\" is numeric: its constant must be a number");
    T_REJECT("{\"eq\":[\"execname\",12]}",
             "field \"execname\" is discrete: its constant must be a string");
    T_REJECT("{\"lt\":[\"execname\",\"m\"]}",
             "field \"execname\" is discrete: only eq and ne apply");
    T_REJECT("{\"and\":[{\"eq\":[\"pid\",1]}]}", "\"and\" needs at least 2 predicates, found 1");
    T_REJECT("{\"or\":{}}", "predicate key does not point to an array");
    T_REJECT("{\"and\":[{},[]]}", "predicate must be an object");
}

/* ------------------------------------------------------------------------------------------
 * Constants with units (Sonde's extension)
 */

static const enum sn_field_unit units[NFIELDS] = {
    [F_LATENCY] = SN_UNIT_NS, [F_SIZE] = SN_UNIT_BYTES};

static int compile_units_text(const char *text, struct sn_pred *p, char *why)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int rc;
    if (!j)
        return -1000;
    rc = sn_pred_compile_units(j, fields, units, NFIELDS, p, why, 256);
    json_decref(j);
    return rc;
}

static void test_unit_values(void)
{
    static const struct {
        const char *text;
        enum sn_field_unit unit;
        int rc;
        int64_t whole;
        bool frac;
    } cases[] = {
        {"1ms", SN_UNIT_NS, 0, 1000000, false},
        {"150us", SN_UNIT_NS, 0, 150000, false},
        {"150\xc2\xb5s", SN_UNIT_NS, 0, 150000, false}, /* MICRO SIGN */
        {"150\xce\xbcs", SN_UNIT_NS, 0, 150000, false}, /* GREEK SMALL LETTER MU */
        {"2s", SN_UNIT_NS, 0, 2000000000, false},
        {"500ns", SN_UNIT_NS, 0, 500, false},
        {"500", SN_UNIT_NS, 0, 500, false},
        {"1.5ms", SN_UNIT_NS, 0, 1500000, false},
        {"1.005ms", SN_UNIT_NS, 0, 1005000, false}, /* exact: no binary floating point */
        {".5ms", SN_UNIT_NS, 0, 500000, false},
        {"5.", SN_UNIT_NS, 0, 5, false},
        {"007", SN_UNIT_NS, 0, 7, false},
        {" 2 s ", SN_UNIT_NS, 0, 2000000000, false},
        {"0.5ns", SN_UNIT_NS, 0, 0, true},
        {"2.5", SN_UNIT_NS, 0, 2, true},
        {"1min", SN_UNIT_NS, 0, 60000000000LL, false},
        {"1.5h", SN_UNIT_NS, 0, 5400000000000LL, false},
        {"9223372036854775807", SN_UNIT_NS, 0, INT64_MAX, false},
        {"9223372036854775808", SN_UNIT_NS, -ERANGE, 0, false},
        {"2562048h", SN_UNIT_NS, -ERANGE, 0, false},
        {"12345678901234567890123", SN_UNIT_NS, -ERANGE, 0, false},
        {"4KiB", SN_UNIT_BYTES, 0, 4096, false},
        {"1MiB", SN_UNIT_BYTES, 0, 1048576, false},
        {"1GiB", SN_UNIT_BYTES, 0, 1073741824, false},
        {"1TiB", SN_UNIT_BYTES, 0, 1099511627776LL, false},
        {"4kB", SN_UNIT_BYTES, 0, 4000, false},
        {"2MB", SN_UNIT_BYTES, 0, 2000000, false},
        {"4096", SN_UNIT_BYTES, 0, 4096, false},
        {"4096B", SN_UNIT_BYTES, 0, 4096, false},
        {"1.5KiB", SN_UNIT_BYTES, 0, 1536, false},
        {"0.1B", SN_UNIT_BYTES, 0, 0, true},
        {"7", SN_UNIT_MS, 0, 7, false}, /* subsecond: milliseconds */
        {"2s", SN_UNIT_MS, 0, 2000, false},
        {"150us", SN_UNIT_MS, 0, 0, true},
        {"1500us", SN_UNIT_MS, 0, 1, true},
        {"3000000ns", SN_UNIT_MS, 0, 3, false},
        {"4KiB", SN_UNIT_NS, -EDOM, 0, false},
        {"4kB", SN_UNIT_MS, -EDOM, 0, false},
        {"1ms", SN_UNIT_BYTES, -EDOM, 0, false},
        {"1ms", SN_UNIT_NONE, -EDOM, 0, false},
        {"fast", SN_UNIT_NS, -EINVAL, 0, false},
        {"", SN_UNIT_NS, -EINVAL, 0, false},
        {"ms", SN_UNIT_NS, -EINVAL, 0, false},
        {".", SN_UNIT_NS, -EINVAL, 0, false},
        {"1 ms s", SN_UNIT_NS, -EINVAL, 0, false},
        {"-1ms", SN_UNIT_NS, -EINVAL, 0, false},
        {"+1ms", SN_UNIT_NS, -EINVAL, 0, false},
        {"1e3ns", SN_UNIT_NS, -EINVAL, 0, false},
        {"1.2.3ms", SN_UNIT_NS, -EINVAL, 0, false},
        {"1MS", SN_UNIT_NS, -EINVAL, 0, false},
        {"1KB", SN_UNIT_BYTES, -EINVAL, 0, false},
        {"0x10", SN_UNIT_BYTES, -EINVAL, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int64_t w = -1;
        bool f = false;
        t_note("\"%s\" unit %d", cases[i].text, cases[i].unit);
        int rc = sn_pred_unit_value(cases[i].text, cases[i].unit, &w, &f);
        t_note("\"%s\" unit %d", cases[i].text, cases[i].unit);
        T_EQ(rc, cases[i].rc);
        if (rc == 0 && cases[i].rc == 0) {
            t_note("\"%s\" unit %d", cases[i].text, cases[i].unit);
            T_EQ(w, cases[i].whole);
            t_note("\"%s\" unit %d", cases[i].text, cases[i].unit);
            T_EQ(f, cases[i].frac);
        }
    }
}

/* A predicate with a unit compiles to the program of its raw integer, and evaluates so. */
static void test_unit_predicates(void)
{
    static const struct {
        const char *with, *raw;
    } same[] = {
        {"{\"gt\":[\"latency\",\"1ms\"]}", "{\"gt\":[\"latency\",1000000]}"},
        {"{\"le\":[\"latency\",\"150us\"]}", "{\"le\":[\"latency\",150000]}"},
        {"{\"eq\":[\"latency\",\"500\"]}", "{\"eq\":[\"latency\",500]}"},
        {"{\"ge\":[\"size\",\"4KiB\"]}", "{\"ge\":[\"size\",4096]}"},
        {"{\"lt\":[\"size\",\"1.5kB\"]}", "{\"lt\":[\"size\",1500]}"},
        {"{\"lt\":[\"latency\",\"2.5ns\"]}", "{\"lt\":[\"latency\",2.5]}"},
        {"{\"eq\":[\"latency\",\"0.5ns\"]}", "{\"eq\":[\"latency\",0.5]}"},
        {"{\"ne\":[\"latency\",\"0.5ns\"]}", "{\"ne\":[\"latency\",0.5]}"},
        {"{\"and\":[{\"gt\":[\"latency\",\"1ms\"]},{\"lt\":[\"size\",\"1MiB\"]}]}",
         "{\"and\":[{\"gt\":[\"latency\",1000000]},{\"lt\":[\"size\",1048576]}]}"},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(*same); i++) {
        struct sn_pred a, b;
        char why[256];
        t_note("%s", same[i].with);
        T_EQ(compile_units_text(same[i].with, &a, why), 0);
        T_EQ(compile_units_text(same[i].raw, &b, why), 0);
        T_EQ(a.n, b.n);
        T_OK(memcmp(&a, &b, sizeof(a)) == 0);
    }
    struct sn_pred p;
    char why[256];
    T_EQ(compile_units_text("{\"gt\":[\"latency\",\"1ms\"]}", &p, why), 0);
    struct sn_event e;
    memset(&e, 0, sizeof(e));
    e.num[F_LATENCY] = 1000000;
    T_OK(!sn_pred_eval(&p, &e));
    e.num[F_LATENCY] = 1000001;
    T_OK(sn_pred_eval(&p, &e));

    /* the wrong kind, garbage, out of range, a field without a unit: clear reasons */
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"{\"gt\":[\"latency\",\"4KiB\"]}",
         "\"4KiB\" is a size, but field \"latency\" is a time: use ns, us (or \xc2\xb5s), ms, s, "
         "min or h"},
        {"{\"gt\":[\"size\",\"1ms\"]}",
         "\"1ms\" is a time, but field \"size\" is a size: use B, kB, MB, GB, TB, KiB, MiB, GiB "
         "or TiB"},
        {"{\"gt\":[\"latency\",\"fast\"]}",
         "\"fast\" is not a time for field \"latency\": use a number of nanoseconds, or a number "
         "with ns, us (or \xc2\xb5s), ms, s, min or h"},
        {"{\"gt\":[\"size\",\"4KB\"]}",
         "\"4KB\" is not a size for field \"size\": use a number of bytes, or a number with B, "
         "kB, MB, GB, TB, KiB, MiB, GiB or TiB"},
        {"{\"gt\":[\"latency\",\"-1ms\"]}",
         "\"-1ms\" is not a time for field \"latency\": use a number of nanoseconds, or a number "
         "with ns, us (or \xc2\xb5s), ms, s, min or h"},
        {"{\"gt\":[\"latency\",\"9999999h\"]}",
         "constant \"9999999h\" for field \"latency\" out of range"},
        {"{\"eq\":[\"pid\",\"12\"]}", "field \"pid\" is numeric: its constant must be a number"},
        {"{\"eq\":[\"pid\",\"1ms\"]}", "field \"pid\" is numeric: its constant must be a number"},
        {"{\"gt\":[\"latency\",\"1\\u0000ms\"]}",
         "\"1\" is not a time for field \"latency\": use a number of nanoseconds, or a number "
         "with ns, us (or \xc2\xb5s), ms, s, min or h"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        t_note("%s", bad[i].text);
        T_EQ(compile_units_text(bad[i].text, &p, why), -EINVAL);
        T_STR(why, bad[i].msg);
        T_EQ(p.n, 0);
    }
    /* without units (sn_pred_compile), CA's rule: strings refused on numeric fields */
    T_REJECT("{\"gt\":[\"latency\",\"1ms\"]}",
             "field \"latency\" is numeric: its constant must be a number");
}

static void test_under_rejects(void)
{
    T_REJECT("{\"under\":\"container\"}", "predicate key does not point to an array");
    T_REJECT("{\"under\":[\"container\"]}",
             "predicate array must have exactly 2 elements, found 1");
    T_NOFIELD("{\"under\":[\"zone\",\"/a\"]}", "no such field for specified metric: zone");
    T_REJECT("{\"under\":[\"pid\",\"/a\"]}",
             "\"under\" applies only to \"container\", not \"pid\"");
    T_REJECT("{\"under\":[\"execname\",\"/a\"]}",
             "\"under\" applies only to \"container\", not \"execname\"");
    T_REJECT("{\"under\":[\"container\",5]}",
             "\"under\" takes a cgroup path: its constant must be a string");
    T_REJECT("{\"under\":[\"container\",\"acme.slice\"]}",
             "\"under\" needs an absolute cgroup path, not \"acme.slice\"");
    T_REJECT("{\"under\":[\"container\",\"\"]}",
             "\"under\" needs an absolute cgroup path, not \"\"");
    T_REJECT("{\"under\":[\"container\",\"/a/../b\"]}",
             "cgroup path \"/a/../b\" may not contain \".\" or \"..\"");
    T_REJECT("{\"under\":[\"container\",\"/a/.\"]}",
             "cgroup path \"/a/.\" may not contain \".\" or \"..\"");
    T_REJECT("{\"or\":[{\"eq\":[\"pid\",1]},{\"under\":[\"container\",\"..\"]}]}",
             "\"under\" needs an absolute cgroup path, not \"..\"");
    /* a metric without a cgroup field says which field "under" is for */
    static const struct sn_field_def no_cg[] = {{"pid", SN_FIELD_NUMERIC, 0, NULL, NULL}};
    struct sn_pred p;
    char why[256];
    json_t *j = json_loads("{\"under\":[\"pid\",\"/a\"]}", 0, NULL);
    T_EQ(sn_pred_compile(j, no_cg, 1, &p, why, sizeof(why)), -EINVAL);
    T_STR(why, "\"under\" applies only to \"container\", not \"pid\"");
    json_decref(j);
    /* JSON may hold a NUL in a string; a path may not */
    j = json_loads("{\"under\":[\"container\",\"/a\\u0000b\"]}", JSON_ALLOW_NUL, NULL);
    T_EQ(sn_pred_compile(j, fields, NFIELDS, &p, why, sizeof(why)), -EINVAL);
    T_STR(why, "cgroup path \"/a...\" may not contain a NUL byte");
    json_decref(j);
    /* more path text than a predicate holds */
    char big[4096] = "{\"or\":[";
    for (int i = 0; i < 12; i++) {
        char leaf[160];
        snprintf(leaf, sizeof(leaf), "%s{\"under\":[\"container\",\"/%d%0100d\"]}", i ? "," : "", i,
                 0);
        strcat(big, leaf);
    }
    strcat(big, "]}");
    T_EQ(compile_text(big, &p, why), -E2BIG);
    T_STR(why, "cgroup paths too long (at most 1023 bytes in all)");
    T_EQ(p.n, 0);
}

static void test_under_shapes(void)
{
    struct sn_pred p;
    char why[256];

    /* a path that exists nowhere is fine: it matches nothing until it does */
    T_EQ(compile_text("{\"under\":[\"container\",\"/acme.slice\"]}", &p, why), 0);
    T_EQ(p.n, 1);
    T_EQ(p.insn[0].op, SN_PRED_UNDER);
    T_EQ(p.insn[0].field, F_CONTAINER);
    T_EQ(p.insn[0].n, 0);
    T_STR(sn_pred_under_path(&p, &p.insn[0]), "/acme.slice");
    /* normalized: "//" and a trailing "/" drop out; names that merely start with dots stay */
    T_EQ(compile_text("{\"under\":[\"container\",\"//a///..b/.c/\"]}", &p, why), 0);
    T_STR(sn_pred_under_path(&p, &p.insn[0]), "/a/..b/.c");
    /* each distinct path once in the text */
    T_EQ(compile_text("{\"and\":[{\"eq\":[\"pid\",1]},{\"or\":[{\"under\":[\"container\",\"/a\"]},"
                      "{\"under\":[\"container\",\"/b\"]},{\"under\":[\"container\",\"/a/\"]}]}]}",
                      &p, why),
         0);
    T_EQ(p.n, 7); /* eq under under OR under OR AND */
    T_EQ(p.insn[1].op, SN_PRED_UNDER);
    T_EQ(p.insn[2].op, SN_PRED_UNDER);
    T_EQ(p.insn[4].op, SN_PRED_UNDER);
    T_STR(sn_pred_under_path(&p, &p.insn[1]), "/a");
    T_STR(sn_pred_under_path(&p, &p.insn[2]), "/b");
    T_EQ(p.insn[4].n, p.insn[1].n);
    T_EQ(p.insn[2].n, 3);
    T_OK(sn_pred_under_path(&p, &p.insn[0]) == NULL); /* not an UNDER leaf */
    /* under the root: everything, so no leaf at all */
    T_EQ(compile_text("{\"under\":[\"container\",\"/\"]}", &p, why), 0);
    T_EQ(p.n, 1);
    T_EQ(p.insn[0].op, SN_PRED_TRUE);
    T_EQ(compile_text("{\"under\":[\"container\",\"///\"]}", &p, why), 0);
    T_EQ(p.insn[0].op, SN_PRED_TRUE);
    /* the longest that fits: 1023 bytes of text with its NUL */
    char one[1200];
    snprintf(one, sizeof(one), "{\"under\":[\"container\",\"/%01021d\"]}", 7);
    T_EQ(compile_text(one, &p, why), 0);
    T_EQ(strlen(sn_pred_under_path(&p, &p.insn[0])), 1022);
    snprintf(one, sizeof(one), "{\"under\":[\"container\",\"/%01023d\"]}", 7);
    T_EQ(compile_text(one, &p, why), -E2BIG);
}

static void test_shapes(void)
{
    struct sn_pred p;
    char why[256];

    T_EQ(compile_text("{}", &p, why), 0);
    T_EQ(p.n, 1);
    T_EQ(p.insn[0].op, SN_PRED_TRUE);
    T_EQ(compile_text("{\"and\":[{\"eq\":[\"execname\",\"nginx\"]},{\"gt\":[\"latency\",200]},{}]}",
                      &p, why),
         0);
    T_EQ(p.n, 5); /* eq gt AND TRUE AND */
    T_EQ(p.insn[0].op, SN_PRED_EQ);
    T_EQ(p.insn[0].is_str, 1);
    T_STR(p.insn[0].s, "nginx");
    T_EQ(p.insn[1].op, SN_PRED_GT);
    T_EQ(p.insn[1].field, F_LATENCY);
    T_EQ(p.insn[1].n, 200);
    T_EQ(p.insn[2].op, SN_PRED_AND);
    T_EQ(p.insn[3].op, SN_PRED_TRUE);
    T_EQ(p.insn[4].op, SN_PRED_AND);
    /* names longer than Linux's 15-byte comm compare on their first 15 bytes */
    T_EQ(compile_text("{\"eq\":[\"execname\",\"a-very-long-process-name\"]}", &p, why), 0);
    T_STR(p.insn[0].s, "a-very-long-pro");
    /* too large */
    char big[4096] = "{\"or\":[";
    for (int i = 0; i < 40; i++)
        strcat(big, i ? ",{\"eq\":[\"pid\",1]}" : "{\"eq\":[\"pid\",1]}");
    strcat(big, "]}");
    T_EQ(compile_text(big, &p, why), -E2BIG);
    T_EQ(p.n, 0);
}

static struct sn_event ev(const char *exec, int64_t pid, int64_t lat)
{
    struct sn_event e;
    memset(&e, 0, sizeof(e));
    strncpy(e.str[F_EXECNAME], exec, SN_PRED_STRLEN - 1);
    e.num[F_PID] = pid;
    e.num[F_LATENCY] = lat;
    return e;
}

static struct sn_event in_cgroup(const char *path)
{
    struct sn_event e = ev("x", 0, 0);
    e.cgroup = path;
    return e;
}

static bool eval_text(const char *text, struct sn_event e)
{
    struct sn_pred p;
    char why[256];
    if (compile_text(text, &p, why) != 0)
        return false;
    return sn_pred_eval(&p, &e);
}

static void test_evaluation(void)
{
    const char *nginx_slow =
        "{\"and\":[{\"eq\":[\"execname\",\"nginx\"]},{\"ge\":[\"latency\",1000]}]}";
    T_OK(eval_text(nginx_slow, ev("nginx", 1, 1000)));
    T_OK(!eval_text(nginx_slow, ev("nginx", 1, 999)));
    T_OK(!eval_text(nginx_slow, ev("nginx2", 1, 5000)));
    T_OK(eval_text("{\"or\":[{\"eq\":[\"pid\",7]},{\"ne\":[\"execname\",\"sh\"]}]}",
                   ev("sh", 7, 0)));
    T_OK(!eval_text("{\"or\":[{\"eq\":[\"pid\",7]},{\"ne\":[\"execname\",\"sh\"]}]}",
                    ev("sh", 8, 0)));
    T_OK(eval_text("{}", ev("x", 0, 0)));
    T_OK(eval_text("{\"lt\":[\"latency\",-5]}", ev("x", 0, -6)));
    /* fractional constants against integer fields */
    T_OK(eval_text("{\"lt\":[\"latency\",2.5]}", ev("x", 0, 2)));
    T_OK(!eval_text("{\"lt\":[\"latency\",2.5]}", ev("x", 0, 3)));
    T_OK(eval_text("{\"gt\":[\"latency\",2.5]}", ev("x", 0, 3)));
    T_OK(!eval_text("{\"ge\":[\"latency\",2.5]}", ev("x", 0, 2)));
    T_OK(eval_text("{\"gt\":[\"latency\",-2.5]}", ev("x", 0, -2)));
    T_OK(!eval_text("{\"gt\":[\"latency\",-2.5]}", ev("x", 0, -3)));
    T_OK(!eval_text("{\"eq\":[\"latency\",2.5]}", ev("x", 0, 2)));
    T_OK(eval_text("{\"ne\":[\"latency\",2.5]}", ev("x", 0, 2)));
    T_OK(eval_text("{\"eq\":[\"latency\",1e6]}", ev("x", 0, 1000000)));
    /* a malformed program is false, never a crash */
    struct sn_pred bad = {.n = 1, .insn = {{.op = SN_PRED_AND}}};
    T_OK(!sn_pred_eval(&bad, &(struct sn_event){0}));
    struct sn_pred bad_under = {.n = 1, .insn = {{.op = SN_PRED_UNDER, .n = SN_PRED_SCOPE_LEN}}};
    T_OK(!sn_pred_eval(&bad_under, &(struct sn_event){.cgroup = "/"}));
    memset(bad_under.scope, 'a', sizeof(bad_under.scope)); /* no NUL */
    bad_under.insn[0].n = 0;
    T_OK(!sn_pred_eval(&bad_under, &(struct sn_event){.cgroup = "/"}));
}

/* "under": component by component, as the kernel's cgroup_scope bits are (a walk of the
 * prefix's subtree) */
static void test_under_evaluation(void)
{
    static const struct {
        const char *path, *prefix;
        bool under;
    } t[] = {
        {"/a", "/a", true},
        {"/a/b", "/a", true},
        {"/a/b/c", "/a/b", true},
        {"/ab", "/a", false},
        {"/", "/a", false},
        {"/a", "/a/b", false},
        {"/b/a", "/a", false},
        {"/a.slice", "/a", false},
        {"/a", "/", true},
        {"/", "/", true},
        {"/x/y", "/", true},
        {"/a/b", "/a/", true},
        {"/acme.slice/x", "/acme.slice", true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        t_note("%s under %s", t[i].path, t[i].prefix);
        T_EQ(sn_cgroup_under(t[i].path, t[i].prefix), t[i].under);
    }
    const char *a = "{\"under\":[\"container\",\"/acme.slice\"]}";
    T_OK(eval_text(a, in_cgroup("/acme.slice")));
    T_OK(eval_text(a, in_cgroup("/acme.slice/web.scope")));
    T_OK(!eval_text(a, in_cgroup("/acme.slice2")));
    T_OK(!eval_text(a, in_cgroup("/")));
    T_OK(!eval_text(a, in_cgroup(NULL))); /* unknown: nothing's */
    T_OK(eval_text("{\"under\":[\"container\",\"/\"]}", in_cgroup(NULL)));
    /* a tenant's wrapping: the user's predicate and its containers */
    const char *t2 = "{\"and\":[{\"eq\":[\"execname\",\"x\"]},{\"or\":[{\"under\":[\"container\","
                     "\"/acme.slice\"]},{\"under\":[\"container\",\"/acme2.slice/db\"]}]}]}";
    T_OK(eval_text(t2, in_cgroup("/acme.slice/a")));
    T_OK(eval_text(t2, in_cgroup("/acme2.slice/db/x")));
    T_OK(!eval_text(t2, in_cgroup("/acme2.slice/web")));
    T_OK(!eval_text(t2, in_cgroup("/other.slice")));
}

/* --- differential: random trees, direct evaluation of the JSON vs the compiled program --- */

static const char *const names[] = {"nginx", "sh", "postgres", "a"};
static const char *const prefixes[] = {"/a", "/a/b", "/ab", "/b/", "//a", "/", "/a/b/c"};
static const char *const cgroups[] = {NULL, "/", "/a", "/a/b", "/a/bc", "/ab", "/b/a", "/b"};

static json_t *random_pred(int depth, int *leaves)
{
    int kind = (int)(t_rand() % (depth > 3 ? 2 : 4));
    if (kind < 2 || *leaves > 12) {
        static const char *const numops[] = {"eq", "ne", "lt", "le", "gt", "ge"};
        (*leaves)++;
        if (t_rand() % 5 == 0)
            return json_pack("{s:[s,s]}", "under", "container", prefixes[t_rand() % 7]);
        if (t_rand() % 3 == 0)
            return json_pack("{s:[s,s]}", t_rand() % 2 ? "eq" : "ne", "execname",
                             names[t_rand() % 4]);
        if (t_rand() % 10 == 0)
            return json_object();
        return json_pack("{s:[s,I]}", numops[t_rand() % 6], t_rand() % 2 ? "pid" : "latency",
                         (json_int_t)(t_rand() % 7) - 3);
    }
    json_t *arr = json_array();
    int n = 2 + (int)(t_rand() % 3);
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, random_pred(depth + 1, leaves));
    return json_pack("{s:o}", kind == 2 ? "and" : "or", arr);
}

static bool direct(const json_t *p, const struct sn_event *e)
{
    const char *key;
    json_t *v;
    if (json_object_size(p) == 0)
        return true;
    json_object_foreach((json_t *)p, key, v)
    {
        if (!strcmp(key, "and") || !strcmp(key, "or")) {
            bool all = true, any = false;
            for (size_t i = 0; i < json_array_size(v); i++) {
                bool r = direct(json_array_get(v, i), e);
                all &= r;
                any |= r;
            }
            return !strcmp(key, "and") ? all : any;
        }
        const char *f = json_string_value(json_array_get(v, 0));
        if (!strcmp(key, "under"))
            return cgpath_under(e->cgroup, json_string_value(json_array_get(v, 1)));
        if (!strcmp(f, "execname")) {
            bool eq = !strcmp(e->str[F_EXECNAME], json_string_value(json_array_get(v, 1)));
            return !strcmp(key, "eq") ? eq : !eq;
        }
        int64_t x = e->num[!strcmp(f, "pid") ? F_PID : F_LATENCY];
        int64_t k = json_integer_value(json_array_get(v, 1));
        if (!strcmp(key, "eq"))
            return x == k;
        if (!strcmp(key, "ne"))
            return x != k;
        if (!strcmp(key, "lt"))
            return x < k;
        if (!strcmp(key, "le"))
            return x <= k;
        if (!strcmp(key, "gt"))
            return x > k;
        return x >= k;
    }
    return false;
}

static void test_differential(void)
{
    t_seed(9);
    int compiled = 0;
    for (int i = 0; i < 3000; i++) {
        int leaves = 0;
        json_t *p = random_pred(0, &leaves);
        struct sn_pred prog;
        char why[256];
        int rc = sn_pred_compile(p, fields, NFIELDS, &prog, why, sizeof(why));
        if (rc == -E2BIG) {
            json_decref(p);
            continue;
        }
        if (!T_EQ(rc, 0)) {
            json_decref(p);
            return;
        }
        compiled++;
        for (int j = 0; j < 20; j++) {
            struct sn_event e =
                ev(names[t_rand() % 4], (int64_t)(t_rand() % 7) - 3, (int64_t)(t_rand() % 7) - 3);
            e.cgroup = cgroups[t_rand() % 8];
            if (!T_EQ(sn_pred_eval(&prog, &e), direct(p, &e))) {
                char *s = json_dumps(p, 0);
                t_note("%s", s);
                free(s);
                json_decref(p);
                return;
            }
        }
        json_decref(p);
    }
    T_OK(compiled > 2500);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("invalid predicates are rejected with CA's messages", test_rejects_with_messages);
    t_run("invalid \"under\" leaves are rejected with clear messages", test_under_rejects);
    t_run("constants with units: values, kinds, errors", test_unit_values);
    t_run("constants with units compile to their raw integers", test_unit_predicates);
    t_run("compiled program shapes and limits", test_shapes);
    t_run("\"under\": normalized paths, kept once, root folds to true", test_under_shapes);
    t_run("evaluation by hand", test_evaluation);
    t_run("\"under\": component-wise cgroup prefixes", test_under_evaluation);
    t_run("3,000 random predicates: program == direct evaluation", test_differential);
    return t_done();
}
