/*
 * ctf/tsdl.c: the metadata of a trace with the built-in system call table and a fixed
 * environment, byte for byte against tests/unit/golden/ctf_metadata.tsdl (lttng-modules 2.13's
 * shape; test_ctf_trace has babeltrace2 read it), Sonde's version replaced by @SN_VERSION@.
 * SN_UPDATE_GOLDEN=1 rewrites the file after a deliberate change (review its diff). Also: env
 * strings escaped, the "sonde" tracer name, the host's environment (boot id, clock offset).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctf/tsdl.h"
#include "t.h"

static struct sn_syscall_tab tab;
static struct sn_ctf_classes cls;

static void env_fixed(struct sn_ctf_env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->hostname, sizeof(e->hostname), "testhost");
    snprintf(e->kernel_release, sizeof(e->kernel_release), "6.1.0-test");
    snprintf(e->kernel_version, sizeof(e->kernel_version), "#1 SMP PREEMPT_DYNAMIC");
    snprintf(e->trace_name, sizeof(e->trace_name), "snap1");
    snprintf(e->session, sizeof(e->session), "s1");
    snprintf(e->creation, sizeof(e->creation), "20261207T000000+0000");
    for (int i = 0; i < 16; i++)
        e->uuid[i] = (uint8_t)(0xa0 + i);
    snprintf(e->boot_id, sizeof(e->boot_id), "0b5e5e5e-1111-4222-8333-444455556666");
    e->clock_offset_ns = 1796601600LL * 1000000000LL;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = '\0';
        *len = (size_t)n;
    }
    return s;
}

static void test_golden(void)
{
    struct sn_ctf_env env;
    env_fixed(&env);
    size_t len = 0, glen = 0;
    char *meta = sn_ctf_tsdl(&env, &cls, &len);
    T_REQUIRE(meta != NULL);
    T_EQU(len, strlen(meta));
    /* the version as a placeholder, so that a release does not change the golden file */
    char ver[64];
    snprintf(ver, sizeof(ver), "sonde_version = \"%s\";", SN_VERSION);
    char *at = strstr(meta, ver);
    T_REQUIRE(at != NULL);
    static const char ph[] = "sonde_version = \"@SN_VERSION@\";";
    char *m2 = malloc(len + sizeof(ph));
    T_REQUIRE(m2 != NULL);
    size_t pre = (size_t)(at - meta);
    memcpy(m2, meta, pre);
    memcpy(m2 + pre, ph, sizeof(ph) - 1);
    strcpy(m2 + pre + sizeof(ph) - 1, at + strlen(ver));
    free(meta);
    meta = m2;
    len = strlen(meta);
    if (getenv("SN_UPDATE_GOLDEN")) {
        FILE *f = fopen(SN_CTF_GOLDEN, "wb");
        T_REQUIRE(f != NULL);
        fwrite(meta, 1, len, f);
        fclose(f);
    }
    char *golden = slurp(SN_CTF_GOLDEN, &glen);
    T_REQUIRE(golden != NULL);
    T_EQU(len, glen);
    T_STR(meta, golden);
    free(golden);
    free(meta);
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_classes(void)
{
    T_EQU(tab.n, 31);             /* IO_SYSCALLS on x86-64, getppid, nanosleep, clock_nanosleep */
    T_EQU(cls.n, 8 + 2 * 31 + 7); /* then block, tcp and fault classes */
    struct sn_rec_event ev = {.type = SN_REC_SYS_EXIT};
    ev.u.sys.nr = 0; /* read */
    const struct sn_ctf_class *c = sn_ctf_class_of(&cls, &ev);
    T_REQUIRE(c != NULL);
    T_STR(c->name, "syscall_exit_read");
    T_EQU(c->id, 9); /* read is the table's first: 8 + 2 * 0 + 1 */
    ev.u.sys.nr = 100000;
    T_STR(sn_ctf_class_of(&cls, &ev)->name, "syscall_exit_unknown");
    ev.type = 77;
    T_OK(sn_ctf_class_of(&cls, &ev) == NULL);
    for (size_t i = 0; i < cls.n; i++)
        T_EQU(cls.c[i].id, i);
    /* the other groups' classes, after the system calls' (whose ids they leave alone) */
    static const char *const grp[] = {"block_rq_issue",
                                      "block_rq_complete",
                                      "net_tcp_connect",
                                      "net_tcp_accept",
                                      "net_tcp_retransmit_skb",
                                      "x86_exceptions_page_fault_user",
                                      "x86_exceptions_page_fault_kernel"};
    for (int i = 0; i < 7; i++) {
        ev.type = (uint16_t)(SN_REC_BLOCK_ISSUE + i);
        c = sn_ctf_class_of(&cls, &ev);
        T_REQUIRE(c != NULL);
        T_STR(c->name, grp[i]);
        T_EQU(c->id, 70 + i);
    }
    /* usdt classes: one per probe of the session, named after it */
    struct sn_ctf_classes u;
    T_REQUIRE(sn_ctf_classes_build(&u, &tab) == 0);
    T_EQ(sn_ctf_classes_add_usdt(&u, 0, "pg", "query__start", 2), 0);
    T_EQ(sn_ctf_classes_add_usdt(&u, 3, "my-app", "a.b", 11), 0);
    T_EQ(sn_ctf_classes_add_usdt(&u, 0, "pg", "again", 1), -EINVAL); /* probe 0 has one */
    T_EQ(sn_ctf_classes_add_usdt(&u, 4, "x", "y", 12), -EINVAL);     /* too many arguments */
    ev.type = SN_REC_USDT;
    ev.u.usdt.probe = 3;
    c = sn_ctf_class_of(&u, &ev);
    T_REQUIRE(c != NULL);
    T_STR(c->name, "usdt_my_app_a_b");
    T_EQU(c->id, 78);
    T_EQ(c->nfields, 11);
    T_STR(c->fields[10].name, "arg10");
    ev.u.usdt.probe = 0;
    T_STR(sn_ctf_class_of(&u, &ev)->name, "usdt_pg_query__start");
    ev.u.usdt.probe = 1;
    T_OK(sn_ctf_class_of(&u, &ev) == NULL);
    ev.type = SN_REC_BLOCK_ISSUE; /* the group classes stay where they were */
    T_EQU(sn_ctf_class_of(&u, &ev)->id, 70);
    sn_ctf_classes_free(&u);
}

static void test_escapes(void)
{
    struct sn_ctf_env env;
    env_fixed(&env);
    snprintf(env.hostname, sizeof(env.hostname), "we\"ird\\host\n");
    snprintf(env.session, sizeof(env.session), "a\tb");
    size_t len;
    char *meta = sn_ctf_tsdl(&env, &cls, &len);
    T_REQUIRE(meta != NULL);
    T_OK(strstr(meta, "\thostname = \"we\\\"ird\\\\host\";\n") != NULL);
    T_OK(strstr(meta, "\tsonde_session = \"ab\";\n") != NULL);
    free(meta);
}

static void test_tracer_sonde(void)
{
    struct sn_ctf_env env;
    env_fixed(&env);
    env.tracer_sonde = true;
    size_t len;
    char *meta = sn_ctf_tsdl(&env, &cls, &len);
    T_REQUIRE(meta != NULL);
    T_EQ(count(meta, "lttng-modules"), 0);
    char want[160];
    unsigned maj = 0, min = 0, pat = 0;
    T_EQ(sscanf(SN_VERSION, "%u.%u.%u", &maj, &min, &pat), 3);
    snprintf(want, sizeof(want),
             "\ttracer_name = \"sonde\";\n\ttracer_major = %u;\n\ttracer_minor = %u;\n"
             "\ttracer_patchlevel = %u;\n",
             maj, min, pat);
    T_OK(strstr(meta, want) != NULL);
    T_OK(strstr(meta, "\tdomain = \"kernel\";\n") != NULL);
    free(meta);
}

static void test_env_host(void)
{
    struct sn_ctf_env env;
    T_REQUIRE(sn_ctf_env_host(&env, "snap-x", "sess") == 0);
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r"); /* procfs: no size to seek */
    T_REQUIRE(f != NULL);
    T_OK(fgets(boot, sizeof(boot), f) != NULL);
    fclose(f);
    boot[36] = '\0';
    T_STR(env.boot_id, boot);
    T_STR(env.trace_name, "snap-x");
    T_STR(env.session, "sess");
    T_EQU(strlen(env.creation), 20);
    T_EQ(env.uuid[6] >> 4, 4);
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    int64_t off = (r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
    T_NEAR((double)env.clock_offset_ns, (double)off, 5e6); /* within 5 ms */
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (sn_syscall_tab_load(&tab, NULL) < 0 || sn_ctf_classes_build(&cls, &tab) < 0)
        return 1;
    t_run("golden", test_golden);
    t_run("classes", test_classes);
    t_run("escapes", test_escapes);
    t_run("tracer_sonde", test_tracer_sonde);
    t_run("env_host", test_env_host);
    sn_ctf_classes_free(&cls);
    sn_syscall_tab_free(&tab);
    return t_done();
}
