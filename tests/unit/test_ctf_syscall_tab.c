/*
 * ctf/syscall_tab.c: the built-in table as one golden listing (number, lttng's name, each
 * argument's kind and direction), the tracefs format parser on a real format's text and on
 * broken ones, and, when this host has tracefs, that its formats agree with the built-in list.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctf/field.h"
#include "ctf/syscall_tab.h"
#include "t.h"

static const char *const kind_name[] = {
    [SN_CTF_U8] = "u8",   [SN_CTF_I32] = "i32", [SN_CTF_U32] = "u32",    [SN_CTF_I64] = "i64",
    [SN_CTF_U64] = "u64", [SN_CTF_X64] = "x64", [SN_CTF_STRING] = "str",
};
static const char *const dir_name[] = {
    [SN_SC_IN] = "in", [SN_SC_OUT] = "out", [SN_SC_INOUT] = "inout"};

/* "0 read(fd u32 in, buf x64 out, count u64 in)\n" */
static size_t list(const struct sn_syscall *sc, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%lld %s(", (long long)sc->nr, sc->name);
    for (int i = 0; i < sc->nargs && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s %s %s", i ? ", " : "", sc->args[i].name,
                              kind_name[sc->args[i].kind], dir_name[sc->args[i].dir]);
    if (n < cap)
        n += (size_t)snprintf(out + n, cap - n, ")\n");
    return n;
}

static const char golden[] =
    "0 read(fd u32 in, buf x64 out, count u64 in)\n"
    "1 write(fd u32 in, buf x64 in, count u64 in)\n"
    "2 open(filename str in, flags i32 in, mode u32 in)\n"
    "3 close(fd u32 in)\n"
    "17 pread64(fd u32 in, buf x64 out, count u64 in, pos i64 in)\n"
    "18 pwrite64(fd u32 in, buf x64 in, count u64 in, pos i64 in)\n"
    "19 readv(fd u64 in, vec x64 in, vlen u64 in)\n"
    "20 writev(fd u64 in, vec x64 in, vlen u64 in)\n"
    "32 dup(fildes u32 in)\n"
    "33 dup2(oldfd u32 in, newfd u32 in)\n"
    "35 nanosleep(rqtp x64 in, rmtp x64 out)\n"
    "40 sendfile64(out_fd i32 in, in_fd i32 in, offset x64 inout, count u64 in)\n"
    "41 socket(family i32 in, type i32 in, protocol i32 in)\n"
    "44 sendto(fd i32 in, buff x64 in, len u64 in, flags u32 in, addr x64 in, addr_len i32 in)\n"
    "45 recvfrom(fd i32 in, ubuf x64 out, size u64 in, flags u32 in, addr x64 out, "
    "addr_len x64 inout)\n"
    "46 sendmsg(fd i32 in, msg x64 in, flags u32 in)\n"
    "47 recvmsg(fd i32 in, msg x64 inout, flags u32 in)\n"
    "72 fcntl(fd u32 in, cmd u32 in, arg u64 in)\n"
    "74 fsync(fd u32 in)\n"
    "75 fdatasync(fd u32 in)\n"
    "110 getppid()\n"
    "162 sync()\n"
    "230 clock_nanosleep(which_clock i32 in, flags i32 in, rqtp x64 in, rmtp x64 out)\n"
    "257 openat(dfd i32 in, filename str in, flags i32 in, mode u32 in)\n"
    "275 splice(fd_in i32 in, off_in x64 inout, fd_out i32 in, off_out x64 inout, len u64 in, "
    "flags u32 in)\n"
    "277 sync_file_range(fd i32 in, offset i64 in, nbytes i64 in, flags u32 in)\n"
    "292 dup3(oldfd u32 in, newfd u32 in, flags i32 in)\n"
    "295 preadv(fd u64 in, vec x64 in, vlen u64 in, pos_l u64 in, pos_h u64 in)\n"
    "296 pwritev(fd u64 in, vec x64 in, vlen u64 in, pos_l u64 in, pos_h u64 in)\n"
    "299 recvmmsg(fd i32 in, mmsg x64 inout, vlen u32 in, flags u32 in, timeout x64 in)\n"
    "307 sendmmsg(fd i32 in, mmsg x64 inout, vlen u32 in, flags u32 in)\n";

static void test_builtin(void)
{
    struct sn_syscall_tab t;
    T_REQUIRE(sn_syscall_tab_load(&t, NULL) == 0);
    static char buf[8192];
    size_t n = 0;
    for (size_t i = 0; i < t.n; i++)
        n += list(&t.sc[i], buf + n, sizeof(buf) - n);
    T_STR(buf, golden);
    T_OK(sn_syscall_tab_find(&t, 110) == &t.sc[20]);
    T_OK(sn_syscall_tab_find(&t, 39) == NULL);
    T_OK(sn_syscall_tab_find(&t, -1) == NULL);
    T_OK(sn_syscall_tab_find(&t, 100000) == NULL);
    sn_syscall_tab_free(&t);
    T_EQU(t.n, 0);
}

static const char openat_fmt[] =
    "name: sys_enter_openat\nID: 782\nformat:\n"
    "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
    "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
    "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
    "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
    "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    "\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n"
    "\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n"
    "\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;\n"
    "\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;\n\n"
    "print fmt: \"dfd: 0x%08lx, filename: 0x%08lx\", ((unsigned long)(REC->dfd))\n";

static void test_parse_format(void)
{
    struct sn_syscall sc;
    char buf[512];
    T_REQUIRE(sn_syscall_parse_format("openat", openat_fmt, strlen(openat_fmt), &sc) == 0);
    list(&sc, buf, sizeof(buf));
    T_STR(buf, "257 openat(dfd i32 in, filename str in, flags i32 in, mode u32 in)\n");
    T_EQ(sn_syscall_parse_format("nosuchcall", openat_fmt, strlen(openat_fmt), &sc), -ENOENT);
    T_EQ(sn_syscall_parse_format("sendfile64", "", 0, &sc), -EINVAL); /* no __syscall_nr */
    T_EQ(sn_syscall_parse_format("", openat_fmt, strlen(openat_fmt), &sc), -EINVAL);
    static const char no_semi[] = "\tfield:int __syscall_nr;\n\tfield:int dfd\n";
    T_EQ(sn_syscall_parse_format("openat", no_semi, strlen(no_semi), &sc), -EINVAL);
    static const char seven[] = "field:int __syscall_nr;\nfield:int a;\nfield:int b;\n"
                                "field:int c;\nfield:int d;\nfield:int e;\nfield:int f;\n"
                                "field:int g;\n";
    T_EQ(sn_syscall_parse_format("openat", seven, strlen(seven), &sc), -EINVAL);
    static const char noname[] = "field:int __syscall_nr;\nfield:int *;\n";
    T_EQ(sn_syscall_parse_format("openat", noname, strlen(noname), &sc), -EINVAL);
    /* only the bytes given are read: a cut between lines, a cut inside one */
    size_t cut = (size_t)(strstr(openat_fmt, "\tfield:const char") - openat_fmt);
    T_EQ(sn_syscall_parse_format("openat", openat_fmt, cut, &sc), 0);
    T_EQ(sc.nargs, 1);
    T_EQ(sn_syscall_parse_format("openat", openat_fmt, cut + 20, &sc), -EINVAL);
    /* sendfile64 is sendfile's number */
    static const char sf[] = "field:int __syscall_nr;\nfield:int out_fd;\n";
    T_EQ(sn_syscall_parse_format("sendfile64", sf, strlen(sf), &sc), 0);
    T_EQ(sc.nr, 40);
}

/* With tracefs mounted: every built-in entry reads the same from the kernel's formats. */
static void test_tracefs(void)
{
    struct sn_syscall_tab k, b;
    T_REQUIRE(sn_syscall_tab_load(&b, NULL) == 0);
    T_REQUIRE(sn_syscall_tab_load(&k, "/sys/kernel/tracing") == 0);
    if (k.n == b.n) {
        sn_syscall_tab_free(&k);
        sn_syscall_tab_free(&b);
        t_skip("no tracefs formats on this host");
        return;
    }
    T_OK(k.n > 300);
    for (size_t i = 0; i < b.n; i++) {
        const struct sn_syscall *x = sn_syscall_tab_find(&k, b.sc[i].nr);
        T_REQUIRE(x != NULL);
        char l1[512], l2[512];
        list(&b.sc[i], l1, sizeof(l1));
        list(x, l2, sizeof(l2));
        T_STR(l2, l1);
    }
    sn_syscall_tab_free(&k);
    sn_syscall_tab_free(&b);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("builtin", test_builtin);
    t_run("parse_format", test_parse_format);
    t_run("tracefs", test_tracefs);
    return t_done();
}
