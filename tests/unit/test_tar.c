/*
 * core/tar.h against GNU tar: an archive sn_tar_dir writes lists and unpacks with `tar -t` and
 * `tar -x` to the same bytes (a name over 100 bytes split into ustar's prefix, an empty file,
 * a file of exactly one block, hidden files left out); an archive GNU tar writes in ustar
 * unpacks with sn_tar_extract to the same bytes; names that leave the directory ("../x",
 * "/x", "a/../../x"), symbolic links, bad checksums and truncated archives are refused and
 * write nothing outside it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tar.h"
#include "t.h"

static char out[1 << 16], err[1 << 16];
static char root[400];

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err));
    if (rc != 0)
        t_note("%s: rc %d %s", cmd, rc, err);
    return rc;
}

static void put(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    T_REQUIRE(f != NULL);
    T_EQ(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* a tree: kernel/{metadata, chan_0 (512 B), chan_1 (empty)}, a.json, a 122-byte path, .hidden */
static void make_tree(const char *dir)
{
    char p[1200], big[512], deep[200];
    memset(big, 'x', sizeof(big));
    snprintf(deep, sizeof(deep), "%090d", 1); /* the file's path: 122 bytes */
    T_EQ(sh("mkdir -p %s/kernel %s/deep/%s", dir, dir, deep), 0);
    snprintf(p, sizeof(p), "%s/kernel/metadata", dir);
    put(p, "/* CTF 1.8 */\n", 14);
    snprintf(p, sizeof(p), "%s/kernel/chan_0", dir);
    put(p, big, sizeof(big));
    snprintf(p, sizeof(p), "%s/kernel/chan_1", dir);
    put(p, "", 0);
    snprintf(p, sizeof(p), "%s/sonde-snapshot.json", dir);
    put(p, "{}\n", 3);
    snprintf(p, sizeof(p), "%s/deep/%s/file-with-a-long-name.txt", dir, deep);
    put(p, "deep\n", 5);
    snprintf(p, sizeof(p), "%s/.hidden", dir);
    put(p, "no\n", 3);
}

static void test_ours_read_by_gnu_tar(void)
{
    char src[700], dst[700], tarf[700];
    unsigned char *buf;
    size_t len;

    snprintf(src, sizeof(src), "%s/src", root);
    snprintf(dst, sizeof(dst), "%s/dst", root);
    snprintf(tarf, sizeof(tarf), "%s/ours.tar", root);
    make_tree(src);
    T_REQUIRE(sn_tar_dir(src, &buf, &len) == 0);
    T_EQ(len % 512, 0);
    put(tarf, buf, len);
    free(buf);
    T_EQ(sh("tar -tf %s > %s.list", tarf, tarf), 0);
    T_EQ(sh("grep -c . %s.list", tarf), 0);
    T_EQ(atoi(out), 8); /* deep/, deep/0..01/, its file, kernel/ and 3 files, the json */
    T_EQ(sh("grep -c hidden %s.list", tarf), 1);
    T_EQ(sh("mkdir -p %s && tar -xf %s -C %s", dst, tarf, dst), 0);
    T_EQ(sh("rm %s/.hidden && diff -r %s %s", src, src, dst), 0);
}

static void test_gnu_tar_read_by_ours(void)
{
    char src[700], dst[700], tarf[700];
    unsigned char *buf = malloc(1 << 20);
    size_t len;

    snprintf(src, sizeof(src), "%s/src2", root);
    snprintf(dst, sizeof(dst), "%s/dst2", root);
    snprintf(tarf, sizeof(tarf), "%s/gnu.tar", root);
    make_tree(src);
    T_EQ(sh("rm %s/.hidden && tar --format=ustar -C %s -cf %s .", src, src, tarf), 0);
    FILE *f = fopen(tarf, "rb");
    T_REQUIRE(f && buf);
    len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    T_EQ(sn_tar_extract(buf, len, dst), 5); /* its names begin with "./" */
    T_EQ(sh("diff -r %s %s", src, dst), 0);
    free(buf);
}

/* an archive of one entry named name (type typ) holding "evil" */
static size_t one_entry(unsigned char *buf, const char *name, char typ)
{
    memset(buf, 0, 3 * 512 + 512);
    snprintf((char *)buf, 100, "%s", name);
    memcpy(buf + 100, "0000644", 8);
    memcpy(buf + 108, "0000000", 8);
    memcpy(buf + 116, "0000000", 8);
    memcpy(buf + 124, "00000000004", 12);
    memcpy(buf + 136, "00000000000", 12);
    buf[156] = (unsigned char)typ;
    memcpy(buf + 257, "ustar", 6);
    memcpy(buf + 263, "00", 2);
    unsigned s = 0;
    for (int i = 0; i < 512; i++)
        s += (i >= 148 && i < 156) ? ' ' : buf[i];
    snprintf((char *)buf + 148, 8, "%06o", s);
    buf[155] = ' ';
    memcpy(buf + 512, "evil", 4);
    return 4 * 512;
}

static void test_refused(void)
{
    unsigned char buf[4096];
    char dst[700], cmd[1600];
    struct stat st;
    const char *names[] = {"../escaped", "/tmp/escaped-abs", "a/../../escaped", "..", "a//b"};

    snprintf(dst, sizeof(dst), "%s/jail/in", root);
    T_EQ(sh("mkdir -p %s", dst), 0);
    for (int i = 0; i < 5; i++) {
        size_t n = one_entry(buf, names[i], '0');
        T_EQ(sn_tar_extract(buf, n, dst), -EINVAL);
    }
    T_OK(stat("/tmp/escaped-abs", &st) != 0);
    snprintf(cmd, sizeof(cmd), "{ ls -A %s/jail | tr '\\n' ' '; }", root);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    T_STR(out, "in ");
    size_t n = one_entry(buf, "link", '2'); /* a symbolic link */
    T_EQ(sn_tar_extract(buf, n, dst), -EINVAL);
    n = one_entry(buf, "ok", '0');
    T_EQ(sn_tar_extract(buf, n, dst), 1);
    buf[0] = 'p'; /* the checksum no longer matches */
    T_EQ(sn_tar_extract(buf, n, dst), -EINVAL);
    n = one_entry(buf, "short", '0');
    T_EQ(sn_tar_extract(buf, 512 + 2, dst), -EINVAL); /* 4 bytes announced, 2 there */
    T_EQ(sn_tar_extract(buf, 100, dst), -EINVAL);     /* a piece of a header */
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    char tmpl[600], abs[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/test_tar.XXXXXX", t_outdir());
    if (!mkdtemp(tmpl) || !realpath(tmpl, abs) || strlen(abs) >= sizeof(root))
        return 1;
    memcpy(root, abs, strlen(abs) + 1);
    t_run("our archive: GNU tar lists and unpacks it whole", test_ours_read_by_gnu_tar);
    t_run("GNU tar's ustar archive: unpacked whole", test_gnu_tar_read_by_ours);
    t_run("names leaving the directory, links, bad sums, short archives: refused", test_refused);
    if (!getenv("SN_KEEP"))
        sh("rm -rf %s", root);
    return t_done();
}
